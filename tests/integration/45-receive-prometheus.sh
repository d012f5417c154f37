#!/bin/bash
# Remote write from Debian's Prometheus into `ndtpipe receive`: every sample
# Prometheus says it sent arrives on the topic (kcat count), with the labels
# and values Prometheus itself stored; the receiver is stopped while
# Prometheus keeps sending and restarted, and still nothing is lost.
. "$(dirname "$0")/lib.sh"
need prometheus kcat jq curl

start_broker
RECV_PORT=$(free_port)
PROM_PORT=$(free_port)
start_receiver() {
    bg "receive-$1" "$NDTPIPE" receive --listen "127.0.0.1:$RECV_PORT" --brokers "$BROKERS" \
        --format json --stats-file "$T/receive-$1.json"
    RECV_PID=$BG_PID
    wait_port "$RECV_PORT" 10 || fail "receiver did not start"
}
write_config() { # with or without the scrape job
    {
        printf 'global:\n  scrape_interval: 200ms\n'
        if [ "$1" = scrape ]; then
            printf 'scrape_configs:\n  - job_name: self\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' "$PROM_PORT"
        fi
        printf 'remote_write:\n  - url: http://127.0.0.1:%s/api/v1/write\n' "$RECV_PORT"
        printf '    queue_config: {batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}\n'
    } >"$T/prometheus.yml"
}
prom_counter() { # metric name -> value summed over series
    curl -sf "http://127.0.0.1:$PROM_PORT/metrics" | awk -v n="$1" 'index($0, n) == 1 { s += $NF } END { printf "%.0f\n", s }'
}

start_receiver 1
write_config scrape
bg prometheus prometheus --config.file="$T/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --storage.tsdb.path="$T/tsdb" --web.enable-lifecycle
wait_port "$PROM_PORT" 20 || fail "prometheus did not start"

# Wait until Prometheus has sent something, then take the receiver away.
for _ in $(seq 1 200); do
    [ "$(prom_counter prometheus_remote_storage_samples_total)" -gt 500 ] && break
    sleep 0.1
done
[ "$(prom_counter prometheus_remote_storage_samples_total)" -gt 500 ] || fail "Prometheus sent nothing in 20 s"
kill -TERM "$RECV_PID"
wait "$RECV_PID" || fail "receiver exited $? on SIGTERM"
sleep 2
start_receiver 2
sleep 3

# Stop producing new samples, let the queue drain, then count.
write_config none
curl -sf -X POST "http://127.0.0.1:$PROM_PORT/-/reload" || fail "reload failed"
for _ in $(seq 1 100); do
    a=$(prom_counter prometheus_remote_storage_samples_total)
    p=$(prom_counter prometheus_remote_storage_samples_pending)
    sleep 0.5
    b=$(prom_counter prometheus_remote_storage_samples_total)
    [ "$p" -eq 0 ] && [ "$a" -eq "$b" ] && break
done
sent=$(prom_counter prometheus_remote_storage_samples_total)
failed=$(prom_counter prometheus_remote_storage_samples_failed_total)
retried=$(prom_counter prometheus_remote_storage_samples_retried_total)
kill -TERM "$RECV_PID"
wait "$RECV_PID" || fail "receiver exited $?"

kcat -b "$BROKERS" -C -t ndt.telemetry.raw -e -q >"$T/all.json" || fail "kcat failed"
got=$(wc -l <"$T/all.json")
note "Prometheus sent $sent (failed $failed, retried $retried); the topic holds $got"
[ "$failed" -eq 0 ] || fail "Prometheus gave up on $failed samples"
[ "$retried" -gt 0 ] || fail "stopping the receiver made Prometheus retry nothing (the outage was not tested)"
# Prometheus 2.42 counts a sample again in samples_total at every retry, so
# the samples it sent are total - retried.  A retried request may publish
# some samples twice (remote write is at-least-once): count distinct ones.
want=$((sent - retried))
distinct=$(jq -c '[.name, .labels, .timestamp, .value]' "$T/all.json" | sort -u | wc -l)
[ "$distinct" -eq "$want" ] || fail "distinct samples on the topic $distinct, Prometheus sent $want"

# Labels and values are Prometheus's own: check a sample of series against its query API.
jq -r 'select(.name == "prometheus_build_info" or .name == "prometheus_tsdb_head_series") |
       "\(.name)\t\(.labels | del(.__name__) | to_entries | map("\(.key)=\"\(.value)\"") | join(","))\t\(.timestamp)\t\(.value)"' \
    "$T/all.json" | head -n 10 >"$T/check.tsv"
[ -s "$T/check.tsv" ] || fail "no known series on the topic"
while IFS=$'\t' read -r name labels ts value; do
    t=$(date -u -d "$ts" +%s.%3N)
    q=$(curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$name{$labels}" \
        --data-urlencode "time=$t" | jq -r '.data.result[0].value[1]')
    [ "$q" = "$value" ] || fail "$name{$labels} at $ts: topic has $value, Prometheus has $q"
done <"$T/check.tsv"
echo "ok: $want samples sent, all on the topic"
