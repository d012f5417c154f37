#!/bin/bash
# Scrape benchmarks (issue: TDL).
#
#  1. CPU per sample: ndtpipe scrape (into Kafka), vmagent (remote-writing to
#     VictoriaMetrics) and Prometheus scrape the same N cheap targets (five
#     real node-exporter pages taken 0.5 s apart, served by nginx in turn,
#     so that every scrape reads new values as from a live exporter, while
#     nginx costs far less than node-exporter would) at 20 ms, side by side
#     in the same run.  Each one's CPU time (from /proc, all threads) over a window
#     after a warm-up is divided by the samples it says it scraped in that
#     window (its own counter).  BENCH_ROUNDS rounds (default 3), each with
#     fresh processes started in a rotating order; every round's ratio is
#     printed, then the median and the spread.
#  2. Timing: ndtpipe alone scraping 10, 100 and 500 small targets at 20 ms
#     (and 500 at 100 ms): |actual - scheduled start| p50 / p99 and missed
#     ticks.  BENCH_TIMING_RUNS="targets:interval ..." picks other runs, an
#     empty BENCH_TIMING_RUNS skips part 2.
#
# BENCH_SECONDS (default 30) sets each measurement window; BENCH_TARGETS
# (default 10) the target count of part 1; BENCH_WARMUP (default 3 s) the
# time every scraper runs before its window opens.
. "$(dirname "$0")/lib.sh"
SECONDS_PER_RUN=${BENCH_SECONDS:-30}
NTARGETS=${BENCH_TARGETS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-3}
for c in nginx vmagent victoria-metrics prometheus prometheus-node-exporter curl jq; do
    command -v "$c" >/dev/null || die "$c missing (make deps)"
done

NPAGES=5
capture_node_pages "$B/node" "$NPAGES"
# Prometheus's samples are counted as scrapes x samples per page: the pages
# must agree on the count (node-exporter's series do not come and go).
SAMPLES_PER_TARGET=$("$NDTPIPE" check metrics --dump "$B/node-0.prom" | wc -l)
for i in $(seq 1 $((NPAGES - 1))); do
    n=$("$NDTPIPE" check metrics --dump "$B/node-$i.prom" | wc -l)
    [ "$n" = "$SAMPLES_PER_TARGET" ] || die "node-exporter pages differ in samples ($SAMPLES_PER_TARGET, $n)"
done

echo "## Scrape CPU per sample ($NTARGETS targets x $SAMPLES_PER_TARGET samples at 20 ms, $NPAGES pages in turn, $ROUNDS rounds of ${SECONDS_PER_RUN} s after ${WARMUP} s of warm-up)"
echo
start_nginx_targets "$NTARGETS" "$B"/node-*.prom
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

# ndtpipe re-renders its /metrics every 0.5 s: wait for a fresh rendering
# (the value moves) so that the window's ends are exact to a few ms.
fresh_metric() { # URL NAME
    local v0 v
    v0=$(prom_metric "$1" "$2")
    for _ in $(seq 1 100); do
        v=$(prom_metric "$1" "$2")
        [ "$v" != "$v0" ] && break
        sleep 0.01
    done
    echo "$v"
}

start_ndtpipe() {
    NDT_WEB=$(free_port)
    bg "ndtpipe-$round" "$NDTPIPE" scrape --config "$B/scrape.yml" --brokers "$BROKERS" \
        --web.listen-address "127.0.0.1:$NDT_WEB" --stats-file "$B/ndt-stats-$round.json"
    NDT_PID=$BG_PID
}
start_vmagent() {
    VMAGENT_PORT=$(free_port)
    bg "vmagent-$round" vmagent -promscrape.config="$B/scrape.yml" -httpListenAddr="127.0.0.1:$VMAGENT_PORT" \
        -remoteWrite.url="http://127.0.0.1:$VM_PORT/api/v1/write" -remoteWrite.tmpDataPath="$B/vmagent-data-$round"
    VMAGENT_PID=$BG_PID
}
start_prometheus() {
    PROM_PORT=$(free_port)
    bg "prometheus-$round" prometheus --config.file="$B/scrape.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
        --storage.tsdb.path="$B/prom-data-$round"
    PROM_PID=$BG_PID
}

# window: CPU seconds and samples of the three scrapers now, as "ndt_cpu
# ndt_samples vma_cpu vma_samples prom_cpu prom_samples".
window() {
    local ns vs ps
    ns=$(fresh_metric "http://127.0.0.1:$NDT_WEB/metrics" ndtpipe_scrape_samples_total)
    vs=$(prom_metric "http://127.0.0.1:$VMAGENT_PORT/metrics" vm_promscrape_scraped_samples_sum)
    ps=$(prom_metric "http://127.0.0.1:$PROM_PORT/metrics" prometheus_target_interval_length_seconds_count)
    echo "$(cpu_seconds "$NDT_PID") $ns $(cpu_seconds "$VMAGENT_PID") $vs $(cpu_seconds "$PROM_PID") $((ps * SAMPLES_PER_TARGET))"
}

echo "| round | start order | load avg | ndtpipe us CPU/sample | vmagent | Prometheus | ndtpipe / vmagent | ndtpipe / Prometheus |"
echo "|---|---|---|---|---|---|---|---|"
ORDERS=("ndtpipe vmagent prometheus" "vmagent prometheus ndtpipe" "prometheus ndtpipe vmagent")
: >"$B/ratios"
for round in $(seq 1 "$ROUNDS"); do
    order=${ORDERS[$(((round - 1) % 3))]}
    for who in $order; do "start_$who"; done
    wait_port "$NDT_WEB" 20 || die "ndtpipe did not start"
    wait_port "$VMAGENT_PORT" 20 || die "vmagent did not start"
    wait_port "$PROM_PORT" 20 || die "prometheus did not start"
    sleep "$WARMUP"
    w0=$(window)
    sleep "$SECONDS_PER_RUN"
    w1=$(window)
    load=$(cut -d' ' -f1 /proc/loadavg)
    kill -TERM "$NDT_PID"
    wait "$NDT_PID"
    kill "$VMAGENT_PID" "$PROM_PID" 2>/dev/null
    wait "$VMAGENT_PID" "$PROM_PID" 2>/dev/null
    awk -v r="$round" -v o="${order// /, }" -v l="$load" -v a="$w0" -v b="$w1" -v f="$B/ratios" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= 5; i += 2) { c = y[i] - x[i]; s = y[i + 1] - x[i + 1]; us[i] = s > 0 ? c / s * 1e6 : 0 }
        printf "| %d | %s | %s | %.3f | %.3f | %.3f | %.2f | %.2f |\n", r, o, l, us[1], us[3], us[5],
            us[1] / us[3], us[1] / us[5]
        printf "%.4f %.4f\n", us[1] / us[3], us[1] / us[5] >> f }'
    echo "ndtpipe stats, round $round: $(cat "$B/ndt-stats-$round.json")" >>"$B/ndt-stats.txt"
done
sort -n -k1,1 "$B/ratios" | awk '{ v[NR] = $1 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "\nndtpipe / vmagent CPU per sample: median %.2f (min %.2f, max %.2f, %d rounds)\n", m, v[1], v[NR], NR }'
sort -n -k2,2 "$B/ratios" | awk '{ v[NR] = $2 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "ndtpipe / prometheus CPU per sample: median %.2f (min %.2f, max %.2f)\n\n", m, v[1], v[NR] }'
cat "$B/ndt-stats.txt"
echo

if [ -z "${BENCH_TIMING_RUNS-x}" ]; then
    exit 0
fi
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
