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
. "$(dirname "$0")/lib.sh"
SECONDS_PER_RUN=${BENCH_SECONDS:-30}
NTARGETS=${BENCH_TARGETS:-10}
INTERVAL=${BENCH_INTERVAL:-100ms}
for c in nginx vmagent victoria-metrics prometheus prometheus-node-exporter curl jq; do
    command -v "$c" >/dev/null || die "$c missing (make deps)"
done

capture_node_exposition "$B/node.prom"
start_nginx_targets "$NTARGETS" "$B/node.prom"

bg broker "$NDTPIPE" broker --bootstrap-file "$B/bootstrap"
for _ in $(seq 1 100); do [ -s "$B/bootstrap" ] && break; sleep 0.1; done
RECV_PORT=$(free_port)
bg receive "$NDTPIPE" receive --listen "127.0.0.1:$RECV_PORT" --brokers "$(cat "$B/bootstrap")" \
    --stats-file "$B/receive.json"
RECV_PID=$BG_PID
VM_PORT=$(free_port)
bg victoria-metrics victoria-metrics -httpListenAddr="127.0.0.1:$VM_PORT" -storageDataPath="$B/vm-data"
VMA_PORT=$(free_port)
bg vmagent vmagent -httpListenAddr="127.0.0.1:$VMA_PORT" -remoteWrite.url="http://127.0.0.1:$VM_PORT/api/v1/write" \
    -remoteWrite.tmpDataPath="$B/vmagent-data"
VMA_PID=$BG_PID
wait_port "$RECV_PORT" 10 && wait_port "$VM_PORT" 20 && wait_port "$VMA_PORT" 20 || die "a receiver did not start"

PROM_PORT=$(free_port)
cat >"$B/prometheus.yml" <<CONFIG
global:
  scrape_interval: $INTERVAL
scrape_configs:
  - job_name: node
    static_configs:
      - targets: $(targets_yaml)
remote_write:
  - url: http://127.0.0.1:$RECV_PORT/api/v1/write
  - url: http://127.0.0.1:$VMA_PORT/api/v1/write
CONFIG
bg prometheus prometheus --config.file="$B/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --storage.tsdb.path="$B/prom-data"
wait_port "$PROM_PORT" 20 || die "prometheus did not start"
sleep "$SECONDS_PER_RUN"

ndt_cpu=$(cpu_seconds "$RECV_PID")
vma_cpu=$(cpu_seconds "$VMA_PID")
vma_samples=$(curl -sf "http://127.0.0.1:$VMA_PORT/metrics" |
    awk '/^vmagent_rows_inserted_total\{type="promremotewrite"\}/ { print $NF }')
kill -TERM "$RECV_PID"
wait "$RECV_PID"
ndt_samples=$(jq .samples "$B/receive.json")

echo "## Remote-write ingest: ndtpipe receive vs vmagent ($NTARGETS pages x $(grep -c '^[a-z]' "$B/node.prom") samples every $INTERVAL, ${SECONDS_PER_RUN} s)"
echo
echo "| receiver | CPU s | samples received | samples per CPU second |"
echo "|---|---|---|---|"
awk -v c="$ndt_cpu" -v s="$ndt_samples" 'BEGIN { printf "| ndtpipe receive -> Kafka (avro) | %.2f | %d | %.0f |\n", c, s, s / c }'
awk -v c="$vma_cpu" -v s="$vma_samples" 'BEGIN { printf "| vmagent -> VictoriaMetrics | %.2f | %d | %.0f |\n", c, s, s / c }'
awk -v a="$ndt_cpu" -v as="$ndt_samples" -v b="$vma_cpu" -v bs="$vma_samples" 'BEGIN {
    printf "\nndtpipe samples per CPU second / vmagent: %.2fx\n", (as / a) / (bs / b) }'
