#!/bin/bash
# Benchmarks of the emulated testbed (issue 3), results as Markdown on stdout:
#   1. campaign speed: simulated seconds per wall second over the paper's
#      grid (200/400/600 users x 1..6 pods), 20 ms sampling;
#   2. the live exposition's cost: the testbed process's CPU (utime+stime
#      from /proc) while idle, while scraped every 20 ms (each scrape then
#      sees a new window, so each one renders), and under a burst of
#      back-to-back scrapes, with and without gzip.
#
#   bench/testbed.sh [DWELL]     (default 5m per regime)
#   NDTPIPE=path                 binary (default build/ndtpipe)
# Needs curl >= 7.84 (--rate).  Binds 127.0.0.1 only; stops what it starts.
set -u
cd "$(dirname "$0")/.."
NDTPIPE=${NDTPIPE:-$PWD/build/ndtpipe}
DWELL=${1:-5m}
T=$(mktemp -d "${TMPDIR:-/tmp}/ndt-bench.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

now_ns() { date +%s%N; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

echo "## Testbed (bench/testbed.sh)"
echo
echo "Machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%d)."
echo

# ---- 1. campaign speed ------------------------------------------------
dwell_s=$("$NDTPIPE" testbed campaign --dwell "$DWELL" --users 1 --pods 1 --out - 2>/dev/null | tail -n 1 | cut -d, -f1)
dwell_s=$(( (dwell_s - 1767225600000) / 1000 ))
sim_s=$(( dwell_s * 18 ))
start=$(now_ns)
"$NDTPIPE" testbed campaign --dwell "$DWELL" --seed 1 --out "$T/campaign.csv" 2>/dev/null || { echo "campaign failed" >&2; exit 1; }
wall_ms=$(( ($(now_ns) - start) / 1000000 ))
rows=$(( $(wc -l <"$T/campaign.csv") - 1 ))
bytes=$(stat -c %s "$T/campaign.csv")
echo "### Campaign speed"
echo
echo "| grid | simulated | wall | speed | rows | CSV |"
echo "|---|---|---|---|---|---|"
echo "| 3 users x 6 pods, dwell $DWELL, 20 ms | ${sim_s} s | ${wall_ms} ms | $(( sim_s * 1000 / (wall_ms > 0 ? wall_ms : 1) ))x real time | $rows | $(( bytes / 1024 )) KiB |"
echo

# ---- 2. live exposition cost -------------------------------------------
port=$(( 20000 + RANDOM % 40000 ))
"$NDTPIPE" testbed --listen "127.0.0.1:$port" --users 600 --pods 6 2>"$T/testbed.log" &
pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/control" && break; sleep 0.05; done
sleep 10 # past the load generator's spawn ramp and the first windows
url="http://127.0.0.1:$port/metrics"
size=$(curl -s "$url" | wc -c)
gzsize=$(curl -s -H 'Accept-Encoding: gzip' "$url" | wc -c)
series=$(curl -s "$url" | grep -vc '^#')

measure() { # label seconds curl-args...: CPU of the testbed during the run
    local label=$1 secs=$2; shift 2
    local c0 c1 t0 t1 n
    c0=$(cpu_ticks "$pid"); t0=$(now_ns)
    if [ $# -gt 0 ]; then "$@" >/dev/null 2>&1; else sleep "$secs"; fi
    c1=$(cpu_ticks "$pid"); t1=$(now_ns)
    local wall_ms=$(( (t1 - t0) / 1000000 ))
    local cpu_ms=$(( (c1 - c0) * 1000 / hz ))
    echo "$label $wall_ms $cpu_ms"
}
urls() { # n gzip: a curl config with n requests of the exposition
    local i
    for i in $(seq 1 "$1"); do
        echo "url = \"$url\""
        echo "output = \"/dev/null\""
    done
    [ "$2" = 1 ] && echo 'header = "Accept-Encoding: gzip"'
}
urls 500 0 >"$T/u500"; urls 500 1 >"$T/u500gz"; urls 3000 0 >"$T/u3000"; urls 3000 1 >"$T/u3000gz"

read -r _ idle_wall idle_cpu < <(measure idle 10)
read -r _ s20_wall s20_cpu < <(measure s20 0 curl -s --rate 50/s -K "$T/u500")
read -r _ s20g_wall s20g_cpu < <(measure s20g 0 curl -s --rate 50/s -K "$T/u500gz" -H 'Accept-Encoding: gzip')
read -r _ burst_wall burst_cpu < <(measure burst 0 curl -s -K "$T/u3000")
read -r _ burstg_wall burstg_cpu < <(measure burstg 0 curl -s -K "$T/u3000gz" -H 'Accept-Encoding: gzip')

pct() { echo "$(( $1 * 1000 / ($2 > 0 ? $2 : 1) / 10 )).$(( $1 * 1000 / ($2 > 0 ? $2 : 1) % 10 ))"; }
per_scrape_us() { # cpu_ms idle_cpu_ms wall_ms idle_wall_ms n
    local extra=$(( $1 * 1000 - $2 * 1000 * $3 / $4 ))
    [ $extra -lt 0 ] && extra=0
    echo $(( extra * 1000 / 1000 / $5 ))
}
echo "### Live exposition cost (600 users, 6 pods)"
echo
echo "Exposition: $series series, $(( size / 1024 )) KiB plain, $(( gzsize / 1024 )) KiB gzip."
echo
echo "| load on /metrics | wall | testbed CPU | CPU of one core | CPU per scrape (above idle) |"
echo "|---|---|---|---|---|"
echo "| none (simulation stepping every 5 ms) | ${idle_wall} ms | ${idle_cpu} ms | $(pct "$idle_cpu" "$idle_wall")% | - |"
echo "| 1 scraper every 20 ms, 500 scrapes | ${s20_wall} ms | ${s20_cpu} ms | $(pct "$s20_cpu" "$s20_wall")% | $(per_scrape_us "$s20_cpu" "$idle_cpu" "$s20_wall" "$idle_wall" 500) us |"
echo "| same, gzip | ${s20g_wall} ms | ${s20g_cpu} ms | $(pct "$s20g_cpu" "$s20g_wall")% | $(per_scrape_us "$s20g_cpu" "$idle_cpu" "$s20g_wall" "$idle_wall" 500) us |"
echo "| 3000 back-to-back scrapes ($(( 3000 * 1000 / (burst_wall > 0 ? burst_wall : 1) ))/s) | ${burst_wall} ms | ${burst_cpu} ms | $(pct "$burst_cpu" "$burst_wall")% | $(per_scrape_us "$burst_cpu" "$idle_cpu" "$burst_wall" "$idle_wall" 3000) us |"
echo "| same, gzip ($(( 3000 * 1000 / (burstg_wall > 0 ? burstg_wall : 1) ))/s) | ${burstg_wall} ms | ${burstg_cpu} ms | $(pct "$burstg_cpu" "$burstg_wall")% | $(per_scrape_us "$burstg_cpu" "$idle_cpu" "$burstg_wall" "$idle_wall" 3000) us |"
echo
echo "CPU is utime+stime of the testbed process from /proc (10 ms ticks); the client (curl) is not counted."
