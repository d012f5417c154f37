#!/bin/bash
# The scraper's own /metrics (--web.listen-address): clean under
# `promtool check metrics` (exit 0, no lint problem), counters that agree
# with what the scraper did, and Debian's Prometheus can scrape it.
. "$(dirname "$0")/lib.sh"
need promtool prometheus curl jq
TARGET=${NDTPIPE%/ndtpipe}/tools/test_target

start_broker
UP_PORT=$(free_port)
bg target "$TARGET" --port "$UP_PORT" --file "$NDT_FIXTURES/prometheus/metrics-test.prom"
wait_port "$UP_PORT" 10 || fail "test target did not start"
DOWN_PORT=$(free_port) # nothing listens there
WEB_PORT=$(free_port)
cat >"$T/scrape.yml" <<CONFIG
global:
  scrape_interval: 20ms
scrape_configs:
  - job_name: 'quoted "job"'
    static_configs: [{targets: ["127.0.0.1:$UP_PORT"]}]
  - job_name: down
    static_configs: [{targets: ["127.0.0.1:$DOWN_PORT"]}]
CONFIG
bg scrape "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS" \
    --web.listen-address "127.0.0.1:$WEB_PORT" --stats-file "$T/stats.json"
SCRAPE_PID=$BG_PID
wait_port "$WEB_PORT" 10 || fail "the scraper does not serve its metrics"

PROM_PORT=$(free_port)
printf 'global:\n  scrape_interval: 100ms\nscrape_configs:\n  - job_name: ndtpipe\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$WEB_PORT" >"$T/prometheus.yml"
bg prometheus prometheus --config.file="$T/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --storage.tsdb.path="$T/tsdb"
wait_port "$PROM_PORT" 20 || fail "prometheus did not start"
sleep 2

curl -sf "http://127.0.0.1:$WEB_PORT/healthz" | grep -qx ok || fail "/healthz"
curl -sf "http://127.0.0.1:$WEB_PORT/metrics" >"$T/metrics.txt" || fail "GET /metrics failed"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 \
    || { cat "$T/promtool.out" >&2; fail "promtool check metrics: exit $?"; }
"$NDTPIPE" check metrics "$T/metrics.txt" || fail "ndtpipe check metrics rejects its own /metrics"

value() { # name label-substring
    awk -v n="$1" -v l="$2" 'index($0, n "{") == 1 && index($0, l) { print $NF }' "$T/metrics.txt"
}
up_scrapes=$(value ndtpipe_scrapes_total "instance=\"127.0.0.1:$UP_PORT\"")
[ -n "$up_scrapes" ] && [ "$up_scrapes" -ge 50 ] || fail "scrapes of the live target: '$up_scrapes'"
[ "$(value ndtpipe_scrape_target_up "instance=\"127.0.0.1:$UP_PORT\"")" = 1 ] || fail "live target not up"
[ "$(value ndtpipe_scrape_target_up "instance=\"127.0.0.1:$DOWN_PORT\"")" = 0 ] || fail "dead target up"
down_failures=$(value ndtpipe_scrape_failures_total "instance=\"127.0.0.1:$DOWN_PORT\"")
[ -n "$down_failures" ] && [ "$down_failures" -ge 50 ] || fail "failures of the dead target: '$down_failures'"
grep -q 'job="quoted \\"job\\""' "$T/metrics.txt" || fail "label value not escaped"
grep -q '^ndtpipe_scrape_start_delay_seconds_bucket{le="+Inf"}' "$T/metrics.txt" || fail "no start-delay histogram"
# The process families of every Prometheus client, read from /proc: the
# scraper has used some CPU, holds more than 1 MB, opened descriptors,
# and started within the last minute.
awk -v now="$(date +%s)" '
    $1 == "process_cpu_seconds_total" { cpu = $2 }
    $1 == "process_resident_memory_bytes" { rss = $2 }
    $1 == "process_open_fds" { fds = $2 }
    $1 == "process_start_time_seconds" { start = $2 }
    END { exit !(cpu > 0 && rss > 1e6 && fds > 3 && start > now - 60 && start <= now + 1) }' \
    "$T/metrics.txt" || fail "process metrics: $(grep '^process_' "$T/metrics.txt" | tr '\n' ' ')"

# Prometheus scraped it and stored the scraper's counters (its first
# scrape can take a few seconds after start-up).
for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=up{job="ndtpipe"}' >"$T/up.json"
    jq -e '.data.result | length > 0' "$T/up.json" >/dev/null && break
    sleep 0.2
done
jq -e '.data.result[0].value[1] == "1"' "$T/up.json" >/dev/null || fail "Prometheus cannot scrape it: $(cat "$T/up.json")"
curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" \
    --data-urlencode 'query=sum(ndtpipe_scrapes_total{job="ndtpipe"})' >"$T/q.json"
jq -e '(.data.result[0].value[1] | tonumber) > 0' "$T/q.json" >/dev/null \
    || fail "Prometheus has no ndtpipe_scrapes_total: $(cat "$T/q.json")"

kill -TERM "$SCRAPE_PID"
wait "$SCRAPE_PID" || fail "scrape exited $?"
echo ok
