#!/bin/bash
# Protobuf scraping: the delimited io.prometheus.client.MetricFamily
# exposition negotiated through scrape_protocols, against Debian's
# node-exporter and Prometheus (both serve it), with kcat reading back.
#
# Asserts:
#  - the Accept header follows scrape_protocols (PrometheusProto first);
#  - a protobuf capture of Prometheus's own metrics (histograms, summaries,
#    counters, gauges) served by a test target is published exactly as
#    `ndtpipe check metrics --protobuf --dump` reads the file: same
#    series, same values;
#  - for node-exporter and Prometheus scraped at the same time by a
#    protobuf job and a text job, both jobs publish the same series (names
#    and labels, le and quantile spelled alike), and series that are
#    constant by nature have the same values;
#  - a native histogram (no Debian target serves one: tests/tools/
#    native_histogram_pb writes it) reaches the topic with its buckets
#    expanded, in the json and the influx formats;
#  - `check metrics --protobuf` rejects a truncated capture with a byte
#    offset and exit 1.
. "$(dirname "$0")/lib.sh"
need prometheus-node-exporter prometheus kcat jq curl
TARGET=${NDTPIPE%/ndtpipe}/tools/test_target
[ -x "$TARGET" ] || fail "test_target not built (make)"
PB='application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited'

start_broker
NE_PORT=$(free_port)
PROM_PORT=$(free_port)
bg node-exporter prometheus-node-exporter --web.listen-address="127.0.0.1:$NE_PORT" \
    --collector.disable-defaults --collector.cpu --collector.meminfo --collector.loadavg \
    --collector.time
printf 'global:\n  scrape_interval: 1m\n' >"$T/prometheus.yml"
bg prometheus prometheus --config.file="$T/prometheus.yml" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.path="$T/tsdb"
wait_port "$NE_PORT" 10 || fail "node-exporter did not start"
wait_port "$PROM_PORT" 20 || fail "prometheus did not start"

# A real protobuf capture, served as a file so that its content is fixed.
curl -sf -H "Accept: $PB" -D "$T/capture.headers" -o "$T/capture.pb" \
    "http://127.0.0.1:$PROM_PORT/metrics" || fail "protobuf capture of Prometheus failed"
grep -qi '^content-type: application/vnd.google.protobuf' "$T/capture.headers" \
    || fail "Prometheus did not answer with protobuf: $(grep -i content-type "$T/capture.headers")"
"$NDTPIPE" check metrics --protobuf --dump "$T/capture.pb" >"$T/capture.json" \
    || fail "check metrics --protobuf rejected Prometheus's own exposition"
jq -e -s 'map(select(.type == "histogram")) | length > 0' "$T/capture.json" >/dev/null \
    || fail "the capture holds no histogram (nothing to compare le on)"
FILE_PORT=$(free_port)
bg target "$TARGET" --port "$FILE_PORT" --file "$T/capture.pb" \
    --content-type "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited" \
    --log "$T/requests.log"
wait_port "$FILE_PORT" 10 || fail "test target did not start"

cat >"$T/scrape.yml" <<CONFIG
global:
  scrape_interval: 250ms
scrape_configs:
  - job_name: file
    scrape_protocols: [PrometheusProto, PrometheusText0.0.4]
    static_configs: [{targets: ["127.0.0.1:$FILE_PORT"]}]
  - job_name: node-pb
    scrape_protocols: [PrometheusProto]
    static_configs: [{targets: ["127.0.0.1:$NE_PORT"]}]
  - job_name: node-text
    scrape_protocols: [PrometheusText0.0.4]
    static_configs: [{targets: ["127.0.0.1:$NE_PORT"]}]
  - job_name: prom-pb
    scrape_protocols: [PrometheusProto]
    static_configs: [{targets: ["127.0.0.1:$PROM_PORT"]}]
  - job_name: prom-text
    scrape_protocols: [PrometheusText0.0.4]
    static_configs: [{targets: ["127.0.0.1:$PROM_PORT"]}]
CONFIG
bg scrape "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS" --format json \
    --stats-file "$T/stats.json"
SCRAPE_PID=$BG_PID
sleep 3
kill -TERM "$SCRAPE_PID"
wait "$SCRAPE_PID" || fail "scrape exited $? on SIGTERM"
[ "$(jq .parse_errors "$T/stats.json")" -eq 0 ] || fail "parse errors: $(cat "$T/stats.json")"

# 1. Negotiation.
head -n 1 "$T/requests.log" | grep -q "accept=application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0\.[0-9],text/plain" \
    || fail "Accept header does not follow scrape_protocols: $(head -n 1 "$T/requests.log")"

kcat -b "$BROKERS" -C -t ndt.telemetry.raw -e -q >"$T/all.json" || fail "kcat failed"

# series_of JOB TS: "name{sorted labels}\tvalue" of one scrape, without
# the target and synthetic labels and series.
series_key='to_entries | map("\(.key)=\(.value)") | sort | join(",")'
series_of() {
    jq -r --arg job "$1" --arg ts "$2" "select(.labels.job == \$job and .timestamp == \$ts
            and .name != \"up\" and (.name | startswith(\"scrape_\") | not))
        | \"\(.labels | del(.job, .instance) | $series_key)\t\(.value)\"" "$T/all.json" | sort
}
last_scrape() { # job: timestamp of its last successful scrape
    jq -r --arg job "$1" 'select(.name == "up" and .labels.job == $job and .value == "1") | .timestamp' \
        "$T/all.json" | tail -n 1
}

# 2. The file target: published exactly as check --dump reads it.
ts=$(last_scrape file)
[ -n "$ts" ] || fail "the protobuf file target was never scraped successfully"
series_of file "$ts" >"$T/file-published.txt"
jq -r "\"\(.labels + {__name__: .name} | $series_key)\t\(.value | tostring)\"" \
    "$T/capture.json" | sort >"$T/file-expected.txt"
# Values as strings on both sides: kafka's json carries Prometheus's
# spelling, --dump JSON numbers; compare them as numbers.
join -t $'\t' -a1 -a2 -e MISSING -o 0,1.2,2.2 "$T/file-expected.txt" "$T/file-published.txt" |
    awk -F'\t' '$2 == "MISSING" || $3 == "MISSING" || ($2 + 0 != $3 + 0 && !($2 ~ /NaN/ && $3 ~ /NaN/)) {
        print; bad++ } END { exit bad > 0 }' >"$T/file.diff" \
    || { head -20 "$T/file.diff" >&2; fail "published samples differ from the protobuf file"; }
echo "file target: $(wc -l <"$T/file-expected.txt") samples published as read"

# 3. Protobuf and text scrapes of the same targets give the same series.
compare_jobs() { # pb-job text-job constant-regex
    local a b
    a=$(last_scrape "$1"); b=$(last_scrape "$2")
    [ -n "$a" ] && [ -n "$b" ] || fail "no successful scrape for $1 or $2"
    series_of "$1" "$a" >"$T/$1.txt"
    series_of "$2" "$b" >"$T/$2.txt"
    diff <(cut -f1 "$T/$1.txt") <(cut -f1 "$T/$2.txt") >"$T/$1.diff" \
        || { head -20 "$T/$1.diff" >&2; fail "$1 and $2 publish different series"; }
    join -t $'\t' "$T/$1.txt" "$T/$2.txt" | awk -F'\t' -v re="$3" '
        $1 ~ re { n++; if ($2 + 0 != $3 + 0) { print "differs: " $0; bad++ } }
        END { print n " constant series compared"; exit bad > 0 || n == 0 }' >&2 \
        || fail "$1 and $2 disagree on constant values"
    echo "$1: $(wc -l <"$T/$1.txt") series, same as $2"
}
compare_jobs node-pb node-text '__name__=(node_memory_MemTotal_bytes|process_max_fds|node_exporter_build_info|go_info)(,|$)'
compare_jobs prom-pb prom-text '__name__=(prometheus_build_info|go_info|process_max_fds|prometheus_config_last_reload_successful)(,|$)'
grep -q 'le=' "$T/prom-pb.txt" || fail "no histogram bucket among Prometheus's series"

# 4. A truncated body is rejected with an offset.
head -c $(( $(stat -c %s "$T/capture.pb") - 3 )) "$T/capture.pb" >"$T/truncated.pb"
rc=0
"$NDTPIPE" check metrics --protobuf "$T/truncated.pb" 2>"$T/truncated.err" || rc=$?
[ $rc -eq 1 ] || fail "truncated protobuf: exit $rc, want 1"
grep -q "truncated.pb:byte [0-9]*: metric family #[0-9]*: length" "$T/truncated.err" \
    || fail "truncated protobuf: $(cat "$T/truncated.err")"
# 5. A native histogram through the TDL, json and influx.
NH_PORT=$(free_port)
"${NDTPIPE%/ndtpipe}/tools/native_histogram_pb" >"$T/native.pb" || fail "native_histogram_pb failed"
bg native "$TARGET" --port "$NH_PORT" --file "$T/native.pb" \
    --content-type "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
wait_port "$NH_PORT" 10 || fail "native target did not start"
for format in json influx; do
    cat >"$T/native.yml" <<CONFIG
global: {scrape_interval: 200ms}
scrape_configs:
  - job_name: native
    scrape_protocols: [PrometheusProto]
    static_configs: [{targets: ["127.0.0.1:$NH_PORT"]}]
CONFIG
    bg "scrape-$format" "$NDTPIPE" scrape --config "$T/native.yml" --brokers "$BROKERS" \
        --format "$format" --topic "native.$format"
    pid=$BG_PID
    sleep 1
    kill -TERM "$pid"
    wait "$pid" || fail "scrape --format $format exited $?"
    kcat -b "$BROKERS" -C -t "native.$format" -e -q >"$T/native.$format" || fail "kcat native.$format"
done
jq -e -s 'map(select(.name == "rpc_duration_seconds_count")) | length > 0 and all(
        .native_histogram == {"schema": 3, "zero_threshold": "0.001", "zero_count": "2",
            "count": "14", "sum": "30.5", "positive": [[0, "3"], [1, "2"], [4, "6"]],
            "negative": [[-2, "1"]]})' "$T/native.json" >/dev/null \
    || fail "native histogram in json: $(grep -m1 rpc_duration_seconds_count "$T/native.json")"
jq -e -s 'map(select(.name == "rpc_duration_seconds_bucket")) | map(.labels.le) | unique == ["+Inf", "0.5", "1"]' \
    "$T/native.json" >/dev/null || fail "classic buckets of the native histogram missing"
grep -q '^rpc_duration_seconds_count,instance=127.0.0.1:[0-9]*,job=native,service=api value=14,nh_schema=3i,nh_zero_threshold=0.001,nh_zero_count=2,nh_sum=30.5,nh_p0=3,nh_p1=2,nh_p4=6,nh_n-2=1 [0-9]*$' \
    "$T/native.influx" || fail "native histogram in influx: $(grep -m1 rpc_duration_seconds_count "$T/native.influx")"
echo "ok"
