#!/bin/bash
# The Harmonization Data Layer live: how fresh the twin is.  (Samples per
# core of the engine and of each format's decoding: bench/harmonize_formats.sh.)
#
# Embedded broker, testbed (3 pods), `ndtpipe scrape` every 20 ms
#    (avro), `ndtpipe harmonize` into SQLite.  Freshness is the stage's own
#    histogram ndtpipe_harmonize_freshness_seconds (sample's scrape time ->
#    durable in the UDR and offsets about to be committed), read after a
#    warm-up and at the end, so the group join's backlog is not counted;
#    p50/p99 are interpolated within its buckets and compared with the
#    scrape interval.  The stage's CPU over the same window gives its live
#    samples per core.
#
#   bench/harmonize.sh      (make bench runs it)
#   DURATION=20
#   HARMONIZE_ARGS="-X fetch.wait.max.ms=1 -o batch_wait=1ms"   extra flags for the stage
#   SCRAPE_ARGS="-X socket.nagle.disable=true"                   extra flags for the scraper
#   UDR=influx               the live stage writes to a local influxd 1.x instead of SQLite
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
DURATION=${DURATION:-20}
make -s BUILD="$BUILD" all >/dev/null || die "build failed"
start_broker
udr_url="sqlite:$B/udr.db" udr_name=SQLite
if [ "${UDR:-sqlite}" = influx ]; then
    command -v influxd >/dev/null || die "influxd missing (make deps)"
    start_influxd
    curl -sf -XPOST "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode "q=CREATE DATABASE ndt" >/dev/null ||
        die "CREATE DATABASE failed"
    udr_url="influx:http://127.0.0.1:$INFLUX_HTTP/ndt" udr_name="InfluxDB 1.x"
fi
TB=$(free_port)
bg testbed "$NDTPIPE" testbed --listen "127.0.0.1:$TB" --users 300 --pods 3 --seed 1
wait_port "$TB" 10 || die "testbed did not listen"
printf 'global:\n  scrape_interval: 20ms\nscrape_configs:\n  - job_name: testbed\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$TB" >"$B/scrape.yml"
bg scrape "$NDTPIPE" scrape --config "$B/scrape.yml" --brokers "$BROKERS" ${SCRAPE_ARGS:-}
S=$BG_PID
WEB=$(free_port)
bg harmonize "$NDTPIPE" harmonize --brokers "$BROKERS" --udr "$udr_url" -o spool_dir="$B/spool" \
    -X session.timeout.ms=6000 --web.listen-address "127.0.0.1:$WEB" ${HARMONIZE_ARGS:-}
H=$BG_PID
wait_port "$WEB" 10 || die "harmonize did not serve its metrics"
for _ in $(seq 1 100); do
    [ "$(prom_metric "http://127.0.0.1:$WEB/metrics" ndtpipe_harmonize_commits_total)" -gt 0 ] && break
    sleep 0.1
done
sleep 3 # the backlog of the group join drains
curl -sf "http://127.0.0.1:$WEB/metrics" >"$B/m0"
c0=$(cpu_seconds "$H") s0=$(cpu_seconds "$S") load=$(cut -d' ' -f1 /proc/loadavg)
sleep "$DURATION"
curl -sf "http://127.0.0.1:$WEB/metrics" >"$B/m1"
c1=$(cpu_seconds "$H") s1=$(cpu_seconds "$S")

# quantile Q: from the bucket counts' difference between m1 and m0.
quantile() {
    awk -v q="$1" '
        FNR == NR && /^ndtpipe_harmonize_freshness_seconds_bucket/ { base[$1] = $2; next }
        /^ndtpipe_harmonize_freshness_seconds_bucket/ {
            le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
            n++; bound[n] = (le == "+Inf") ? 1e9 : le + 0; cum[n] = $2 - base[$1]
        }
        END {
            total = cum[n]; want = q * total; prev_b = 0; prev_c = 0
            for (i = 1; i <= n; i++) {
                if (cum[i] >= want) {
                    f = (cum[i] == prev_c) ? 1 : (want - prev_c) / (cum[i] - prev_c)
                    printf "%.1f", 1000 * (prev_b + f * (bound[i] - prev_b)); exit
                }
                prev_b = bound[i]; prev_c = cum[i]
            }
        }' "$B/m0" "$B/m1"
}
delta() { echo $(( $(awk -v m="$1" '$1 == m { print $2 }' "$B/m1") - $(awk -v m="$1" '$1 == m { print $2 }' "$B/m0") )); }
p50=$(quantile 0.5)
p99=$(quantile 0.99)
instants=$(delta ndtpipe_harmonize_freshness_seconds_count)
samples=$(delta ndtpipe_harmonize_samples_total)
live=$(awk -v s="$samples" -v c0="$c0" -v c1="$c1" 'BEGIN { printf "%.0f", s / (c1 - c0) }')
cpu=$(awk -v d="$DURATION" -v c0="$c0" -v c1="$c1" 'BEGIN { printf "%.1f", 100 * (c1 - c0) / d }')
scpu=$(awk -v d="$DURATION" -v c0="$s0" -v c1="$s1" 'BEGIN { printf "%.1f", 100 * (c1 - c0) / d }')

echo "| harmonize | samples/scrape | samples/s per core |"
echo "|---|---:|---:|"
echo "| live stage (decode + engine + $udr_name + Kafka), 20 ms scrapes, ${cpu}% of a core | $(awk -v s="$samples" -v n="$instants" 'BEGIN { printf "%.0f", (n > 0 ? s / n : 0) }') | $live |"
echo
echo "| freshness, scrape -> durable in the UDR ($udr_name), 20 ms scrapes, ${DURATION} s | scrape instants | p50 ms | p99 ms | p99 / scrape interval | stage CPU | scraper CPU | load |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
echo "| embedded broker, avro | $instants | $p50 | $p99 | $(awk -v p="$p99" 'BEGIN { printf "%.2f", p / 20 }') | ${cpu}% | ${scpu}% | $load |"
