#!/bin/bash
# The scraper's failure paths against real HTTP servers (tests/tools/
# test_target): slow targets, error statuses, HTML error pages, gzip bombs,
# sample_limit, authentication, and the Accept header it negotiates with.
# Each failure must give up 0 with a clear error, be counted, and never stop
# the other targets; credentials must never appear in the logs.
. "$(dirname "$0")/lib.sh"
need kcat jq gzip
TARGET=${NDTPIPE%/ndtpipe}/tools/test_target
[ -x "$TARGET" ] || fail "test_target not built (make)"

start_broker
FIX=$NDT_FIXTURES/prometheus/alltypes.237mfs.prom.txt
printf '<html><body><h1>502 Bad Gateway</h1></body></html>\n' >"$T/error.html"
head -c 64M /dev/zero | gzip -1 >"$T/bomb.gz"

declare -A PORT
start_target() { # name args...
    local name=$1; shift
    PORT[$name]=$(free_port)
    bg "target-$name" "$TARGET" --port "${PORT[$name]}" "$@"
}
start_target good --file "$FIX" --gzip --log "$T/good-requests.log"
start_target slow --file "$FIX" --delay-ms 300
start_target status --file "$FIX" --status 503
start_target html --file "$T/error.html" --content-type "text/html"
start_target bomb --file "$T/bomb.gz" --raw-gzip
start_target limited --file "$FIX"
start_target bearer --file "$FIX" --bearer s3cr3t-t0ken
start_target basic --file "$FIX" --basic "alice:pa55w0rd"
start_target badauth --file "$FIX" --bearer other-token
start_target om --file "$NDT_FIXTURES/prometheus/alltypes.5mfs.om.txt" \
    --content-type "application/openmetrics-text; version=1.0.0; charset=utf-8"
for name in "${!PORT[@]}"; do
    wait_port "${PORT[$name]}" 10 || { cat "$T/target-$name.log" >&2; fail "test target $name on ${PORT[$name]} did not start"; }
done
printf 's3cr3t-t0ken\n' >"$T/token"

cat >"$T/scrape.yml" <<CONFIG
global:
  scrape_interval: 100ms
  scrape_timeout: 80ms
scrape_configs:
  - job_name: good
    static_configs: [{targets: ["127.0.0.1:${PORT[good]}"]}]
  - job_name: slow
    static_configs: [{targets: ["127.0.0.1:${PORT[slow]}"]}]
  - job_name: status
    static_configs: [{targets: ["127.0.0.1:${PORT[status]}"]}]
  - job_name: html
    static_configs: [{targets: ["127.0.0.1:${PORT[html]}"]}]
  - job_name: bomb
    body_size_limit: 10MB
    static_configs: [{targets: ["127.0.0.1:${PORT[bomb]}"]}]
  - job_name: limited
    sample_limit: 100
    static_configs: [{targets: ["127.0.0.1:${PORT[limited]}"]}]
  - job_name: bearer
    authorization: {credentials_file: $T/token}
    static_configs: [{targets: ["127.0.0.1:${PORT[bearer]}"]}]
  - job_name: basic
    basic_auth: {username: alice, password: pa55w0rd}
    static_configs: [{targets: ["127.0.0.1:${PORT[basic]}"]}]
  - job_name: badauth
    authorization: {credentials: s3cr3t-t0ken}
    static_configs: [{targets: ["127.0.0.1:${PORT[badauth]}"]}]
  - job_name: om
    static_configs: [{targets: ["127.0.0.1:${PORT[om]}"]}]
  - job_name: relabeled
    metric_relabel_configs:
      - {source_labels: [__name__], regex: "go_.*", action: drop}
    static_configs: [{targets: ["127.0.0.1:${PORT[good]}"]}]
CONFIG
bg scrape "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS" --format json \
    --stats-file "$T/stats.json"
SCRAPE_PID=$BG_PID
sleep 3
kill -TERM "$SCRAPE_PID"
wait "$SCRAPE_PID" || fail "scrape exited $? on SIGTERM"
kcat -b "$BROKERS" -C -t ndt.telemetry.raw -e -q -f '%s\n' >"$T/all.json" || fail "kcat failed"
# One file per job: the jq checks below then read only their job's lines.
mkdir -p "$T/jobs"
jq -r '.labels.job' "$T/all.json" | paste -d '\t' - "$T/all.json" |
    awk -F'\t' -v d="$T/jobs" '{ print $2 > (d "/" $1 ".json") }'
job() { cat "$T/jobs/$1.json" 2>/dev/null; }
LOG=$T/scrape.log

up_of() { # job -> "min max" of its up values
    job "$1" | jq -r 'select(.name == "up") | .value' |
        sort -u | tr '\n' ' '
}
expect_up() { # job expected-set
    local got
    got=$(up_of "$1")
    [ "$got" = "$2" ] || fail "job $1: up values '$got', want '$2'"
}
expect_log() { # job pattern
    grep -E "job=$1 .*$2" "$LOG" >/dev/null || { grep "job=$1" "$LOG" | head -3 >&2; fail "job $1: no log line matching '$2'"; }
}

expect_up good "1 "
expect_up om "1 "
expect_up bearer "1 "
expect_up basic "1 "
expect_up relabeled "1 "
for j in slow status html bomb limited badauth; do expect_up "$j" "0 "; done
expect_log slow "timed out"
expect_log status "HTTP status 503"
expect_log html "error=\"?1:1: "
expect_log bomb "body size limit"
expect_log limited "sample_limit exceeded"
expect_log badauth "HTTP status 401"

# Failed scrapes publish their health but no partial data.
for j in slow status html bomb limited badauth; do
    n=$(job "$j" | jq -r 'select(.name | test("^(up|scrape_.*)$") | not) | .name' | wc -l)
    [ "$n" -eq 0 ] || fail "job $j published $n samples from a failed scrape"
done

# Every scrape of the good target carries every sample of the exposition.
want=$("$NDTPIPE" check metrics --dump "$FIX" | wc -l)
job good | jq -r 'select(.name == "scrape_samples_scraped") | .value' | sort -u >"$T/scraped.txt"
[ "$(cat "$T/scraped.txt")" = "$want" ] || fail "good target: scrape_samples_scraped $(cat "$T/scraped.txt"), want $want"
scrapes=$(job good | jq -r 'select(.name == "up") | .timestamp' | wc -l)
got=$(job good | jq -r 'select(.name | test("^(up|scrape_.*)$") | not) | .name' | wc -l)
[ "$got" -eq $((want * scrapes)) ] || fail "good target: $got samples for $scrapes scrapes of $want"

# metric_relabel_configs dropped go_* and the post-relabeling count says so.
gos=$("$NDTPIPE" check metrics --dump "$FIX" | jq -r .name | grep -c '^go_')
post=$(job relabeled | jq -r 'select(.name == "scrape_samples_post_metric_relabeling") | .value' | sort -u)
[ "$post" = $((want - gos)) ] || fail "relabeled: post-relabeling count $post, want $((want - gos))"
job relabeled | jq -e -s 'map(select(.name | startswith("go_"))) | length == 0' >/dev/null \
    || fail "relabeled: go_* samples were published"

# OpenMetrics was negotiated and parsed as OpenMetrics (exemplars, _created).
om_want=$("$NDTPIPE" check metrics --openmetrics --dump "$NDT_FIXTURES/prometheus/alltypes.5mfs.om.txt" | wc -l)
om_got=$(job om | jq -r 'select(.name == "scrape_samples_scraped") | .value' | sort -u)
[ "$om_got" = "$om_want" ] || fail "om target: scraped $om_got samples, want $om_want"
grep -q 'accept=application/openmetrics-text;version=1.0.0' "$T/good-requests.log" \
    || fail "the Accept header does not prefer OpenMetrics: $(head -1 "$T/good-requests.log")"

# Failures are counted; secrets never reach the logs.
[ "$(jq .parse_errors "$T/stats.json")" -ge 1 ] || fail "parse errors not counted"
[ "$(jq .sample_limit_hits "$T/stats.json")" -ge 1 ] || fail "sample_limit hits not counted"
! grep -E 's3cr3t|pa55w0rd' "$LOG" || fail "a credential appears in the log"
echo "ok"
