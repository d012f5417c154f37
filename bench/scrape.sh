#!/bin/bash
# Scrape benchmarks (issue: TDL).
#
#  1. CPU per sample: ndtpipe scrape (into Kafka), vmagent (remote-writing to
#     VictoriaMetrics) and Prometheus scrape the same N cheap targets (a real
#     node-exporter exposition served by nginx) at 20 ms, side by side in the
#     same run.  Each one's CPU time (from /proc) is divided by the samples it
#     says it scraped (its own counter).
#  2. Timing: ndtpipe alone scraping 10, 100 and 500 small targets at 20 ms
#     (and 500 at 100 ms): |actual - scheduled start| p50 / p99 and missed
#     ticks.  BENCH_TIMING_RUNS="targets:interval ..." picks other runs.
#
# BENCH_SECONDS (default 30) sets each run's length; BENCH_TARGETS (default
# 10) the target count of part 1.
. "$(dirname "$0")/lib.sh"
SECONDS_PER_RUN=${BENCH_SECONDS:-30}
NTARGETS=${BENCH_TARGETS:-10}
for c in nginx vmagent victoria-metrics prometheus prometheus-node-exporter curl jq; do
    command -v "$c" >/dev/null || die "$c missing (make deps)"
done

capture_node_exposition "$B/node.prom"
SAMPLES_PER_TARGET=$("$NDTPIPE" check metrics --dump "$B/node.prom" | wc -l)

echo "## Scrape CPU per sample ($NTARGETS targets x $SAMPLES_PER_TARGET samples at 20 ms, ${SECONDS_PER_RUN} s)"
echo
start_nginx_targets "$NTARGETS" "$B/node.prom"
TARGETS=$(targets_yaml)
cat >"$B/scrape.yml" <<CONFIG
global:
  scrape_interval: 20ms
  scrape_timeout: 20ms
scrape_configs:
  - job_name: node
    static_configs:
      - targets: $TARGETS
CONFIG

bg broker "$NDTPIPE" broker --bootstrap-file "$B/bootstrap"
for _ in $(seq 1 100); do [ -s "$B/bootstrap" ] && break; sleep 0.1; done
BROKERS=$(cat "$B/bootstrap")
VM_PORT=$(free_port)
bg victoria-metrics victoria-metrics -httpListenAddr="127.0.0.1:$VM_PORT" -storageDataPath="$B/vm-data"
wait_port "$VM_PORT" 20 || die "victoria-metrics did not start"
VMAGENT_PORT=$(free_port)
PROM_PORT=$(free_port)

bg ndtpipe "$NDTPIPE" scrape --config "$B/scrape.yml" --brokers "$BROKERS" --stats-file "$B/ndt-stats.json"
NDT_PID=$BG_PID
bg vmagent vmagent -promscrape.config="$B/scrape.yml" -httpListenAddr="127.0.0.1:$VMAGENT_PORT" \
    -remoteWrite.url="http://127.0.0.1:$VM_PORT/api/v1/write" -remoteWrite.tmpDataPath="$B/vmagent-data"
VMAGENT_PID=$BG_PID
bg prometheus prometheus --config.file="$B/scrape.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --storage.tsdb.path="$B/prom-data"
PROM_PID=$BG_PID
wait_port "$VMAGENT_PORT" 20 || die "vmagent did not start"
wait_port "$PROM_PORT" 20 || die "prometheus did not start"
sleep "$SECONDS_PER_RUN"

ndt_cpu=$(cpu_seconds "$NDT_PID")
vma_cpu=$(cpu_seconds "$VMAGENT_PID")
prom_cpu=$(cpu_seconds "$PROM_PID")
vma_samples=$(prom_metric "http://127.0.0.1:$VMAGENT_PORT/metrics" vm_promscrape_scraped_samples_sum)
prom_scrapes=$(prom_metric "http://127.0.0.1:$PROM_PORT/metrics" prometheus_target_interval_length_seconds_count)
prom_samples=$((prom_scrapes * SAMPLES_PER_TARGET))
kill -TERM "$NDT_PID"
wait "$NDT_PID"
ndt_samples=$(jq .samples_scraped "$B/ndt-stats.json")

row() { # name cpu samples
    awk -v n="$1" -v c="$2" -v s="$3" 'BEGIN {
        printf "| %s | %.2f | %d | %.3f |\n", n, c, s, (s > 0 ? c / s * 1e6 : 0) }'
}
echo "| scraper | CPU s | samples scraped | us CPU / sample |"
echo "|---|---|---|---|"
row "ndtpipe scrape -> Kafka (avro)" "$ndt_cpu" "$ndt_samples"
row "vmagent -> remote write" "$vma_cpu" "$vma_samples"
row "prometheus (TSDB)" "$prom_cpu" "$prom_samples"
awk -v a="$ndt_cpu" -v as="$ndt_samples" -v b="$vma_cpu" -v bs="$vma_samples" -v c="$prom_cpu" -v cs="$prom_samples" 'BEGIN {
    na = a / as; nb = b / bs; nc = c / cs
    printf "\nndtpipe / vmagent CPU per sample: %.2f; ndtpipe / prometheus: %.2f\n\n", na / nb, na / nc }'
echo "ndtpipe stats: $(cat "$B/ndt-stats.json")"
kill "$VMAGENT_PID" "$PROM_PID" 2>/dev/null
echo

echo "## Scrape start timing (small targets, ${SECONDS_PER_RUN} s each)"
echo
printf '# HELP demo_value A value.\n# TYPE demo_value gauge\n' >"$B/small.prom"
for i in $(seq 1 10); do echo "demo_value{shard=\"$i\"} $i"; done >>"$B/small.prom"
echo "| targets | interval | scrapes/s | failed | start error p50 (us) | p99 (us) | max (us) | missed ticks |"
echo "|---|---|---|---|---|---|---|---|"
for run in ${BENCH_TIMING_RUNS:-10:20ms 100:20ms 500:20ms 500:100ms}; do
    n=${run%%:*}
    interval=${run#*:}
    kill "$(cat "$B/nginx.pid" 2>/dev/null)" 2>/dev/null
    sleep 0.5
    start_nginx_targets "$n" "$B/small.prom"
    TARGETS=$(targets_yaml)
    printf 'global:\n  scrape_interval: %s\nscrape_configs:\n  - job_name: small\n    static_configs:\n      - targets: %s\n' \
        "$interval" "$TARGETS" >"$B/timing.yml"
    bg timing "$NDTPIPE" scrape --config "$B/timing.yml" --brokers "$BROKERS" --stats-file "$B/timing-$n.json"
    pid=$BG_PID
    sleep "$SECONDS_PER_RUN"
    kill -TERM "$pid"
    wait "$pid"
    jq -r --arg n "$n" --arg i "$interval" --arg s "$SECONDS_PER_RUN" \
        '"| \($n) | \($i) | \(.scrapes / ($s | tonumber) | floor) | \(.scrape_failures) | \(.start_jitter_us.p50) | \(.start_jitter_us.p99) | \(.start_jitter_us.max) | \(.missed_ticks) |"' \
        "$B/timing-$n.json"
done
