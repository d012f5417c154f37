#!/bin/bash
# A native histogram from scrape to the UDR: tests/tools/native_histogram_pb
# writes a protobuf exposition with one native histogram (schema 3, zero,
# positive and negative buckets; see that file), test_target serves it,
# `ndtpipe scrape` fetches it with scrape_protocols [PrometheusProto] and
# publishes it in each Kafka format (json, avro, influx), and `ndtpipe
# harmonize` maps it with sdm-schemas/mapping/native-histograms.yaml
# (transform: native_histogram, scale 1000 to milliseconds) into a SQLite
# UDR.  Asserts that the Service entity holds, whatever the format:
#   count 14 (not scaled), sum 30500 ms, mean 30500/14 ms, and
#   p50 = 1000 x 2^(1/16)            (rank 7 halfway into (1, 2^(1/8)])
#   p95 = 1000 x 2^((3 + 5.3/6)/8)   (rank 13.3, 5.3 of 6 into (2^(3/8), 2^(1/2)])
#   p99 = 1000 x 2^((3 + 5.86/6)/8)
# worked out by hand from the buckets (harmonize/histogram.h's rule).
. "$(dirname "$0")/lib.sh"
need kcat
root=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=${NDTPIPE%/ndtpipe}/tools
[ -x "$TOOLS/test_target" ] && [ -x "$TOOLS/udr_tool" ] || fail "test tools not built (make)"

start_broker
"$TOOLS/native_histogram_pb" >"$T/native.pb" || fail "native_histogram_pb failed"
NH_PORT=$(free_port)
bg target "$TOOLS/test_target" --port "$NH_PORT" --file "$T/native.pb" \
    --content-type "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
wait_port "$NH_PORT" 10 || fail "test target did not start"
cat >"$T/scrape.yml" <<CONFIG
global: {scrape_interval: 200ms}
scrape_configs:
  - job_name: native
    scrape_protocols: [PrometheusProto]
    static_configs: [{targets: ["127.0.0.1:$NH_PORT"]}]
CONFIG

latest() { # DB: the Service's latest point as udr_tool prints it
    printf 'latest Service\nquit\n' | "$TOOLS/udr_tool" "sqlite:$1" 2>/dev/null | grep '^point '
}
field() { # NAME: its value in $point
    sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$point"
}
near() { # GOT WANT: |got - want| <= 1e-9 x want
    awk -v g="$1" -v w="$2" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(g != "" && d <= 1e-9 * w) }'
}

for format in json avro influx; do
    bg "scrape-$format" "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS" \
        --format "$format" --topic "native.$format"
    pid=$BG_PID
    sleep 1
    kill -TERM "$pid"
    wait "$pid" || fail "scrape --format $format exited $?"
    bg "harmonize-$format" "$NDTPIPE" harmonize --brokers "$BROKERS" --in "native.$format" \
        --group "h-$format" --udr "sqlite:$T/$format.db" \
        --mapping "$root/sdm-schemas/mapping/native-histograms.yaml" -X session.timeout.ms=6000
    pid=$BG_PID
    point=
    for _ in $(seq 1 100); do
        point=$(latest "$T/$format.db")
        [[ "$point" == *rpcLatency_p99=* ]] && break
        sleep 0.2
    done
    kill -TERM "$pid"
    wait "$pid" || fail "harmonize ($format) exited $?"
    point=$(latest "$T/$format.db")
    [[ "$point" == "point urn:ngsi-ld:Service:api "* ]] ||
        fail "$format: no Service api in the UDR: '$point' (log: $(tail -n 3 "$T/harmonize-$format.log"))"
    [ "$(field rpcLatency_count)" = 14 ] || fail "$format: count $(field rpcLatency_count), want 14: $point"
    near "$(field rpcLatency_sum)" 30500 || fail "$format: sum: $point"
    near "$(field rpcLatency_mean)" 2178.5714285714284 || fail "$format: mean: $point"
    near "$(field rpcLatency_p50)" 1044.2737824274138 || fail "$format: p50: $point"
    near "$(field rpcLatency_p95)" 1399.9901402205512 || fail "$format: p95: $point"
    near "$(field rpcLatency_p99)" 1411.357364252405 || fail "$format: p99: $point"
    echo "$format: $point"
done
echo "ok"
