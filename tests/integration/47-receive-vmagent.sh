#!/bin/bash
# Remote write from Debian's vmagent into `ndtpipe receive`: everything
# vmagent says it sent arrives on the topic, counted by kcat.  vmagent
# counts rows (vmagent_remotewrite_block_size_rows_sum), and a row is a time
# series in a block, which can carry more than one sample, so the topic must
# hold at least that many samples, exactly what the receiver accepted, and
# vmagent must have dropped nothing.
. "$(dirname "$0")/lib.sh"
need vmagent kcat jq curl

start_broker
RECV_PORT=$(free_port)
VMA_PORT=$(free_port)
bg receive "$NDTPIPE" receive --listen "127.0.0.1:$RECV_PORT" --brokers "$BROKERS" --format json \
    --stats-file "$T/receive.json"
RECV_PID=$BG_PID
wait_port "$RECV_PORT" 10 || fail "receiver did not start"
printf 'global:\n  scrape_interval: 200ms\nscrape_configs:\n  - job_name: self\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$VMA_PORT" >"$T/vmagent.yml"
bg vmagent vmagent -promscrape.config="$T/vmagent.yml" -httpListenAddr="127.0.0.1:$VMA_PORT" \
    -remoteWrite.url="http://127.0.0.1:$RECV_PORT/api/v1/write" -remoteWrite.tmpDataPath="$T/vmagent-data" \
    -remoteWrite.flushInterval=100ms
VMA_PID=$BG_PID
wait_port "$VMA_PORT" 20 || fail "vmagent did not start"

vma_counter() {
    curl -sf "http://127.0.0.1:$VMA_PORT/metrics" | awk -v n="$1" 'index($0, n) == 1 { s += $NF } END { printf "%.0f\n", s }'
}
sleep 3
# Stop scraping (reload an empty configuration), let vmagent's queue drain.
printf 'scrape_configs: []\n' >"$T/vmagent.yml"
kill -HUP "$VMA_PID"
for _ in $(seq 1 60); do
    a=$(vma_counter vmagent_remotewrite_block_size_rows_sum)
    sleep 0.5
    b=$(vma_counter vmagent_remotewrite_block_size_rows_sum)
    [ "$a" -eq "$b" ] && [ "$(vma_counter vmagent_remotewrite_pending_data_bytes)" -eq 0 ] && break
done
sent=$(vma_counter vmagent_remotewrite_block_size_rows_sum)
[ "$sent" -gt 100 ] || fail "vmagent sent only $sent rows"
kill -TERM "$RECV_PID"
wait "$RECV_PID" || fail "receiver exited $?"
dropped=$(vma_counter vmagent_remotewrite_packets_dropped_total)
got=$(kcat -b "$BROKERS" -C -t ndt.telemetry.raw -e -q | wc -l)
accepted=$(jq .samples "$T/receive.json")
note "vmagent sent $sent rows (dropped $dropped packets); the receiver accepted $accepted samples; the topic holds $got"
[ "$dropped" -eq 0 ] || fail "vmagent dropped $dropped packets"
[ "$got" -eq "$accepted" ] || fail "the topic holds $got samples, the receiver accepted $accepted"
[ "$got" -ge "$sent" ] || fail "the topic holds $got samples, fewer than the $sent rows vmagent sent"
jq -e '.bad_requests == 0' "$T/receive.json" >/dev/null || fail "vmagent's requests were refused: $(cat "$T/receive.json")"
echo "ok: $sent rows"
