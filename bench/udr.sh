#!/bin/bash
# UDR write throughput: the library into SQLite (file, WAL) and into a live
# influxd 1.6.7, next to the ceiling a plain bulk writer reaches on the same
# influxd in the same run (curl posting the same points as line protocol in
# 5000-line batches over one keep-alive connection, as NOTES.md measured).
#
#   bench/udr.sh            (make bench runs it)
#   POINTS=300000 SQLITE_POINTS=100000
#   ROUNDS=3     then the plain writer and the pipelined UDR alternate this many
#                times (fresh databases each), so a change of load between the
#                rows of one table cannot decide the ratio; the median is the
#                number to quote
set -u   # not -e: lib.sh's exit trap kills peers that may be gone already
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
POINTS=${POINTS:-300000}
ROUNDS=${ROUNDS:-3}
SQLITE_POINTS=${SQLITE_POINTS:-100000}
command -v influxd >/dev/null || die "influxd missing (make deps)"
make -s BUILD="$BUILD" all "$BUILD/bench/bench_udr" >/dev/null || die "build failed"

start_influxd
http=$INFLUX_HTTP
for db in plain lib; do
    curl -sf -XPOST "http://127.0.0.1:$http/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
done

# The plain writer's input: the same points, generated independently.
awk -v n="$POINTS" 'BEGIN { for (i = 0; i < n; i++)
    printf "ServiceComponent,id=urn:ngsi-ld:ServiceComponent:ndt.pod-%d queueDepth=%d,avgDepthOnEnqueue=%.2f,processCpuUsage=%.1f,systemCpuUsage=%d,avgInferenceTime=%.3f %.0f\n",
        i % 6, i % 17, i % 13 + 0.25, i % 300 + 0.5, i % 100, i % 900 + 0.125, 1767225600000 + int(i / 6) * 20 }' |
    split -l 5000 - "$B/chunk."
# plain_write DB: the plain writer's points/s into database DB.
plain_write() {
    local args=() f t0 t1
    for f in "$B"/chunk.*; do
        args+=(--data-binary "@$f" "http://127.0.0.1:$http/write?db=$1&precision=ms" --next)
    done
    unset 'args[${#args[@]}-1]'
    t0=$(date +%s%N)
    curl -sf -o /dev/null "${args[@]}" || die "plain writer failed"
    t1=$(date +%s%N)
    awk -v n="$POINTS" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }'
}
plain=$(plain_write plain)

rate() { sed 's/.*points_per_s=\([0-9]*\).*/\1/'; }
lib_rate=$("$BUILD/bench/bench_udr" "influx:http://127.0.0.1:$http/lib" "$POINTS" 5000 "$B/spool" | rate)
for db in lib600 libraw libpipe; do
    curl -sf -XPOST "http://127.0.0.1:$http/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
done
libraw_rate=$(BENCH_GZIP=-1 "$BUILD/bench/bench_udr" "influx:http://127.0.0.1:$http/libraw" "$POINTS" 5000 "$B/spool" | rate)
lib600_rate=$("$BUILD/bench/bench_udr" "influx:http://127.0.0.1:$http/lib600" "$POINTS" 600 "$B/spool" | rate)
pipe_rate=$(BENCH_PIPELINE=1 "$BUILD/bench/bench_udr" "influx:http://127.0.0.1:$http/libpipe" "$POINTS" 5000 "$B/spool" | rate)
count() {
    curl -sf -G "http://127.0.0.1:$http/query" --data-urlencode "db=$1" \
        --data-urlencode 'q=SELECT count("queueDepth") FROM ServiceComponent' |
        sed 's/.*,\([0-9]*\)\]\]}\]}\]}/\1/'
}
sqlite_rate=$("$BUILD/bench/bench_udr" "sqlite:$B/udr.db" "$SQLITE_POINTS" 600 | rate)

echo "| writer (points of 5 attributes, one thread) | points | stored | points/s |"
echo "|---|---:|---:|---:|"
echo "| plain bulk writer: curl, 5000-line batches, influxd 1.6.7 | $POINTS | $(count plain) | $plain |"
echo "| ndtpipe UDR, influx: (gzip, flush every 5000 points) | $POINTS | $(count lib) | $lib_rate |"
echo "| ndtpipe UDR, influx: (no gzip, flush every 5000 points) | $POINTS | $(count libraw) | $libraw_rate |"
echo "| ndtpipe UDR, influx: (gzip, flush every 600 points) | $POINTS | $(count lib600) | $lib600_rate |"
echo "| ndtpipe UDR, influx: (gzip, pipelined flush every 5000 points) | $POINTS | $(count libpipe) | $pipe_rate |"
echo "| ndtpipe UDR, sqlite: (WAL, commit every 600 points) | $SQLITE_POINTS | | $sqlite_rate |"
awk -v a="$lib_rate" -v r="$libraw_rate" -v p="$pipe_rate" -v b="$plain" 'BEGIN {
    printf "\nInfluxDB ratio to the plain bulk writer, 5000-point flushes: %.2f gzip, %.2f uncompressed, %.2f gzip pipelined (goal >= 0.9)\n", a / b, r / b, p / b }'

[ "$ROUNDS" -gt 0 ] || exit 0
echo
echo "| round | plain writer points/s | UDR pipelined gzip points/s | ratio | UDR pipelined uncompressed points/s | ratio | stored (plain / gzip / uncompressed) |"
echo "|---:|---:|---:|---:|---:|---:|---|"
ratios=() raw_ratios=()
for r in $(seq 1 "$ROUNDS"); do
    for db in "plain$r" "pipe$r" "raw$r"; do
        curl -sf -XPOST "http://127.0.0.1:$http/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
    done
    p=$(plain_write "plain$r")
    u=$(BENCH_PIPELINE=1 "$BUILD/bench/bench_udr" "influx:http://127.0.0.1:$http/pipe$r" "$POINTS" 5000 "$B/spool" | rate)
    w=$(BENCH_GZIP=-1 BENCH_PIPELINE=1 "$BUILD/bench/bench_udr" "influx:http://127.0.0.1:$http/raw$r" "$POINTS" 5000 "$B/spool" | rate)
    ratio=$(awk -v u="$u" -v p="$p" 'BEGIN { printf "%.2f", u / p }')
    raw_ratio=$(awk -v u="$w" -v p="$p" 'BEGIN { printf "%.2f", u / p }')
    ratios+=("$ratio") raw_ratios+=("$raw_ratio")
    echo "| $r | $p | $u | $ratio | $w | $raw_ratio | $(count "plain$r") / $(count "pipe$r") / $(count "raw$r") |"
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo
echo "Median ratio over $ROUNDS alternating rounds (goal >= 0.9): $(printf '%s\n' "${ratios[@]}" | median) gzip," \
    "$(printf '%s\n' "${raw_ratios[@]}" | median) uncompressed; load average $(cut -d' ' -f1-3 /proc/loadavg)"
