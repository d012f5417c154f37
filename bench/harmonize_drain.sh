#!/bin/bash
# The harmonize stage draining a backlog into InfluxDB: how many samples
# and UDR points per second the whole stage (consume, decode, map, write
# to influxd 1.x, commit) sustains when it is not waiting for scrapes.
# A scraper fills ndt.telemetry.raw first (testbed, 12 pods, 5 ms
# scrapes, avro), then each binary drains the same backlog in its own
# consumer group into its own database, one after the other, alternating
# BASE and NDTPIPE so that both see the same load drift.  With
# BASE_NDTPIPE unset only NDTPIPE runs.
#
#   bench/harmonize_drain.sh
#   FILL=30 ROUNDS=2 BASE_NDTPIPE=/path/to/an/older/build/ndtpipe
#   BATCH=1                  batch_messages of the stage (default 10000: the
#                            backlog fits in few batches; 1 = one flush per
#                            scrape, as the live stage does at 20 ms scrapes)
# The embedded broker (librdkafka's mock) keeps about 5 MB per partition,
# so the backlog is some 450 scrapes of 12 pods whatever FILL is.
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
FILL=${FILL:-30}
ROUNDS=${ROUNDS:-2}
BATCH=${BATCH:-10000}
make -s all >/dev/null || die "build failed"
command -v influxd >/dev/null || die "influxd missing (make deps)"

start_broker
start_influxd
TB=$(free_port)
bg testbed "$NDTPIPE" testbed --listen "127.0.0.1:$TB" --users 300 --pods 12 --seed 1
wait_port "$TB" 10 || die "testbed did not listen"
printf 'global:\n  scrape_interval: 5ms\nscrape_configs:\n  - job_name: testbed\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$TB" >"$B/scrape.yml"
bg scrape "$NDTPIPE" scrape --config "$B/scrape.yml" --brokers "$BROKERS"
sleep "$FILL"
kill -TERM "$BG_PID"; wait "$BG_PID" 2>/dev/null
messages=$(kcat -C -b "$BROKERS" -t ndt.telemetry.raw -e -q -f 'x\n' 2>/dev/null | grep -c x)
[ "$messages" -gt 100 ] || die "only $messages messages in the backlog"

drain() { # NAME BINARY: prints "seconds samples points cpu_seconds" from its first message to the last
    local web db=$1 h t0 t1 c0 c1 got=0 m
    curl -sf -XPOST "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode "q=CREATE DATABASE $db" >/dev/null
    web=$(free_port)
    bg "h-$db" "$2" harmonize --brokers "$BROKERS" --group "g-$db" \
        --udr "influx:http://127.0.0.1:$INFLUX_HTTP/$db" -o spool_dir="$B/spool-$db" \
        -o batch_messages="$BATCH" -X session.timeout.ms=6000 --web.listen-address "127.0.0.1:$web"
    h=$BG_PID
    wait_port "$web" 10 || die "harmonize did not serve its metrics"
    # The clock starts at the first message (the group join is not the stage's speed).
    while [ "$got" -eq 0 ]; do
        curl -sf "http://127.0.0.1:$web/metrics" >"$B/m0-$db"
        got=$(awk '$1 ~ /^ndtpipe_harmonize_messages_total/ { s += $2 } END { printf "%d", s }' "$B/m0-$db")
    done
    t0=$(date +%s%N)
    c0=$(cpu_seconds "$h")
    # Drained before the first reading: too fast to time (a row of zeros).
    [ "$got" -ge "$messages" ] && { kill -TERM "$h"; wait "$h" 2>/dev/null; echo "1 0 0 0"; return; }
    while [ "$got" -lt "$messages" ]; do
        sleep 0.05
        got=$(prom_metric "http://127.0.0.1:$web/metrics" ndtpipe_harmonize_messages_total)
    done
    t1=$(date +%s%N)
    c1=$(cpu_seconds "$h")
    curl -sf "http://127.0.0.1:$web/metrics" >"$B/m1-$db"
    kill -TERM "$h"; wait "$h" 2>/dev/null
    awk -v ns=$((t1 - t0)) -v c0="$c0" -v c1="$c1" '
        $1 == "ndtpipe_harmonize_samples_total" { s[FILENAME] = $2 }
        $1 == "ndtpipe_harmonize_points_total" { p[FILENAME] = $2 }
        END { printf "%.2f %d %d %.2f\n", ns / 1e9, s[ARGV[2]] - s[ARGV[1]], p[ARGV[2]] - p[ARGV[1]], c1 - c0 }' \
        "$B/m0-$db" "$B/m1-$db"
}

echo "backlog: $messages messages (one avro scrape each), batch_messages $BATCH, load average $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| binary | round | seconds | samples | points | samples/s | points/s | CPU s of the stage |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for round in $(seq 1 "$ROUNDS"); do
    for which in base new; do
        [ "$which" = base ] && { [ -n "${BASE_NDTPIPE:-}" ] || continue; bin=$BASE_NDTPIPE; } || bin=$NDTPIPE
        read -r secs samples points cpu < <(drain "${which}$round" "$bin")
        awk -v w="$which" -v r="$round" -v t="$secs" -v s="$samples" -v p="$points" -v c="$cpu" \
            'BEGIN { printf "| %s | %d | %.2f | %d | %d | %.0f | %.0f | %.2f |\n", w, r, t, s, p, s / t, p / t, c }'
    done
done
