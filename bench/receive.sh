#!/bin/bash
# Remote-write ingest (issue 7): Debian's Prometheus scrapes N static
# node-exporter pages and remote-writes the same stream to two receivers
# side by side: `ndtpipe receive` (into `ndtpipe broker`, avro) and Debian's
# vmagent (its /api/v1/write, forwarding to VictoriaMetrics).  Each
# receiver's CPU time (from /proc) is divided by the samples it says it
# received.
#
# BENCH_SECONDS (default 30) sets the run length, BENCH_TARGETS (default 10)
# the scraped pages, BENCH_INTERVAL (default 100ms) their scrape interval.
# Before any traffic each receiver's idle CPU is measured for IDLE_SECONDS
# (default 5; it stays in the totals, as it would in production), to show
# whether threads waking up with nothing to do weigh on either at this light
# a stream (in docs/PERFORMANCE.md's runs they did not).
# BENCH_PROFILE=DIR records `perf record -g` of both receivers during the
# traffic into DIR/ndtpipe.data and DIR/vmagent.data.  RECEIVE_ARGS adds
# options to `ndtpipe receive` (e.g. "-X linger.ms=5" to compare settings).
#
# Two rows by default: the stream above, and a heavier one (BENCH_HEAVY=0
# skips it) as a bigger fleet sends it: 30 pages (~150k samples/s) in
# requests of up to 2000 samples (max_samples_per_send; newer Prometheus
# releases default to 2000, Debian's 2.42 to 500), where fixed per-request
# and idle costs weigh less.  BENCH_TARGETS or BENCH_MAX_SAMPLES set one
# row by hand.
if [ -z "${BENCH_ROW:-}" ]; then
    if [ -n "${BENCH_TARGETS:-}${BENCH_MAX_SAMPLES:-}" ] || [ "${BENCH_HEAVY:-1}" = 0 ]; then
        BENCH_ROW=1 exec "$0"
    fi
    BENCH_ROW=1 "$0" || exit 1
    echo
    BENCH_ROW=1 BENCH_TARGETS=30 BENCH_MAX_SAMPLES=2000 BENCH_PROFILE=${BENCH_PROFILE:+$BENCH_PROFILE/heavy} "$0"
    exit
fi
. "$(dirname "$0")/lib.sh"
SECONDS_PER_RUN=${BENCH_SECONDS:-30}
IDLE_SECONDS=${IDLE_SECONDS:-5}
NTARGETS=${BENCH_TARGETS:-10}
INTERVAL=${BENCH_INTERVAL:-100ms}
MAX_SAMPLES=${BENCH_MAX_SAMPLES:-}
for c in nginx vmagent victoria-metrics prometheus prometheus-node-exporter curl jq; do
    command -v "$c" >/dev/null || die "$c missing (make deps)"
done

capture_node_exposition "$B/node.prom"
start_nginx_targets "$NTARGETS" "$B/node.prom"

bg broker "$NDTPIPE" broker --bootstrap-file "$B/bootstrap"
for _ in $(seq 1 100); do [ -s "$B/bootstrap" ] && break; sleep 0.1; done
RECV_PORT=$(free_port)
bg receive "$NDTPIPE" receive --listen "127.0.0.1:$RECV_PORT" --brokers "$(cat "$B/bootstrap")" \
    --stats-file "$B/receive.json" ${RECEIVE_ARGS:-}
RECV_PID=$BG_PID
VM_PORT=$(free_port)
bg victoria-metrics victoria-metrics -httpListenAddr="127.0.0.1:$VM_PORT" -storageDataPath="$B/vm-data"
VMA_PORT=$(free_port)
bg vmagent vmagent -httpListenAddr="127.0.0.1:$VMA_PORT" -remoteWrite.url="http://127.0.0.1:$VM_PORT/api/v1/write" \
    -remoteWrite.tmpDataPath="$B/vmagent-data"
VMA_PID=$BG_PID
wait_port "$RECV_PORT" 10 && wait_port "$VM_PORT" 20 && wait_port "$VMA_PORT" 20 || die "a receiver did not start"
sleep 1 # past startup
ndt_idle0=$(cpu_seconds "$RECV_PID")
vma_idle0=$(cpu_seconds "$VMA_PID")
sleep "$IDLE_SECONDS"
ndt_idle=$(awk -v a="$ndt_idle0" -v b="$(cpu_seconds "$RECV_PID")" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.2f", 100 * (b - a) / s }')
vma_idle=$(awk -v a="$vma_idle0" -v b="$(cpu_seconds "$VMA_PID")" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.2f", 100 * (b - a) / s }')

PROM_PORT=$(free_port)
QUEUE_CONFIG=""
[ -n "$MAX_SAMPLES" ] && QUEUE_CONFIG="queue_config: { max_samples_per_send: $MAX_SAMPLES, capacity: $((MAX_SAMPLES * 5)) }"
cat >"$B/prometheus.yml" <<CONFIG
global:
  scrape_interval: $INTERVAL
scrape_configs:
  - job_name: node
    static_configs:
      - targets: $(targets_yaml)
remote_write:
  - url: http://127.0.0.1:$RECV_PORT/api/v1/write
    $QUEUE_CONFIG
  - url: http://127.0.0.1:$VMA_PORT/api/v1/write
    $QUEUE_CONFIG
CONFIG
bg prometheus prometheus --config.file="$B/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --storage.tsdb.path="$B/prom-data"
wait_port "$PROM_PORT" 20 || die "prometheus did not start"
if [ -n "${BENCH_PROFILE:-}" ]; then
    mkdir -p "$BENCH_PROFILE"
    sleep 2 # past Prometheus's first remote-write shards
    perf record -q -g -F 499 -p "$RECV_PID" -o "$BENCH_PROFILE/ndtpipe.data" -- sleep "$((SECONDS_PER_RUN - 2))" 2>/dev/null &
    perf_ndt=$!
    perf record -q -g -F 499 -p "$VMA_PID" -o "$BENCH_PROFILE/vmagent.data" -- sleep "$((SECONDS_PER_RUN - 2))" 2>/dev/null &
    wait "$perf_ndt" $!
else
    sleep "$SECONDS_PER_RUN"
fi

ndt_cpu=$(cpu_seconds "$RECV_PID")
vma_cpu=$(cpu_seconds "$VMA_PID")
vma_metrics=$(curl -sf "http://127.0.0.1:$VMA_PORT/metrics")
vma_samples=$(awk '/^vmagent_rows_inserted_total\{type="promremotewrite"\}/ { print $NF }' <<<"$vma_metrics")
vma_requests=$(awk '/^vmagent_http_requests_total\{path="\/api\/v1\/write"/ { s += $NF } END { print s + 0 }' <<<"$vma_metrics")
kill -TERM "$RECV_PID"
wait "$RECV_PID"
ndt_samples=$(jq .samples "$B/receive.json")
ndt_requests=$(jq .requests "$B/receive.json")

echo "## Remote-write ingest: ndtpipe receive vs vmagent ($NTARGETS pages x $(grep -c '^[a-z]' "$B/node.prom") samples every $INTERVAL, max_samples_per_send ${MAX_SAMPLES:-500 (default)}, ${SECONDS_PER_RUN} s)"
echo
echo "| receiver | CPU s | samples received | requests | samples per CPU second | idle CPU (% of a core) |"
echo "|---|---|---|---|---|---|"
awk -v c="$ndt_cpu" -v s="$ndt_samples" -v q="$ndt_requests" -v i="$ndt_idle" 'BEGIN {
    printf "| ndtpipe receive -> Kafka (avro) | %.2f | %d | %d | %.0f | %s |\n", c, s, q, s / c, i }'
awk -v c="$vma_cpu" -v s="$vma_samples" -v q="$vma_requests" -v i="$vma_idle" 'BEGIN {
    printf "| vmagent -> VictoriaMetrics | %.2f | %d | %d | %.0f | %s |\n", c, s, q, s / c, i }'
awk -v a="$ndt_cpu" -v as="$ndt_samples" -v b="$vma_cpu" -v bs="$vma_samples" 'BEGIN {
    printf "\nndtpipe samples per CPU second / vmagent: %.2fx\n", (as / a) / (bs / b) }'
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
