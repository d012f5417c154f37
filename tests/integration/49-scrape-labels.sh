#!/bin/bash
# The labels of every published series, exactly, against a real HTTP target
# (tests/tools/test_target): exposition labels out of name order, labels
# that clash with target labels (exported_<name> unless honor_labels), empty
# values, target labels from static_configs and external_labels; published
# in line protocol, whose tags keep the series' label order (sorted by
# name), so a merge that misses, doubles or misorders a label shows.  Both
# of the scraper's label paths run here: the fast merge (no clash) and the
# label-set path (clashes).
. "$(dirname "$0")/lib.sh"
need kcat jq
TARGET=${NDTPIPE%/ndtpipe}/tools/test_target
[ -x "$TARGET" ] || fail "test_target not built (make)"

start_broker
cat >"$T/labels.prom" <<'EXPO'
# TYPE m gauge
m{zeta="z",alpha="a",instance="exp",empty=""} 1
m{alpha="b",team=""} 2
m{job="expjob"} 3
plain 4
m{zeta="y",alpha="c"} 5
EXPO
PORT=$(free_port)
bg target "$TARGET" --port "$PORT" --file "$T/labels.prom"
wait_port "$PORT" 10 || fail "test target did not start"

cat >"$T/scrape.yml" <<CONFIG
global:
  scrape_interval: 100ms
  scrape_timeout: 80ms
  external_labels: {cluster: c1}
scrape_configs:
  - job_name: clash
    static_configs: [{targets: ["127.0.0.1:$PORT"], labels: {team: t}}]
  - job_name: honor
    honor_labels: true
    static_configs: [{targets: ["127.0.0.1:$PORT"], labels: {team: t}}]
CONFIG
bg scrape "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS" --format influx \
    --stats-file "$T/stats.json"
SCRAPE_PID=$BG_PID
sleep 1.5
kill -TERM "$SCRAPE_PID"
wait "$SCRAPE_PID" || fail "scrape exited $? on SIGTERM"
kcat -b "$BROKERS" -C -t ndt.telemetry.raw -e -q -f '%s' >"$T/all.lp" || fail "kcat failed"

# Every scrape publishes the same series: drop the timestamps, keep one of each.
I="127.0.0.1:$PORT"
awk '$1 ~ /^(m|plain),/ { print $1, $2 }' "$T/all.lp" | sort -u >"$T/got.txt"
sort >"$T/want.txt" <<WANT
m,alpha=a,cluster=c1,exported_instance=exp,instance=$I,job=clash,team=t,zeta=z value=1
m,alpha=b,cluster=c1,instance=$I,job=clash,team=t value=2
m,cluster=c1,exported_job=expjob,instance=$I,job=clash,team=t value=3
plain,cluster=c1,instance=$I,job=clash,team=t value=4
m,alpha=c,cluster=c1,instance=$I,job=clash,team=t,zeta=y value=5
m,alpha=a,cluster=c1,instance=exp,job=honor,team=t,zeta=z value=1
m,alpha=b,cluster=c1,instance=$I,job=honor,team=t value=2
m,cluster=c1,instance=$I,job=expjob,team=t value=3
plain,cluster=c1,instance=$I,job=honor,team=t value=4
m,alpha=c,cluster=c1,instance=$I,job=honor,team=t,zeta=y value=5
WANT
diff "$T/want.txt" "$T/got.txt" >&2 || fail "published label sets differ from Prometheus's rules"
[ "$(jq .scrapes "$T/stats.json")" -ge 4 ] || fail "too few scrapes: $(cat "$T/stats.json")"
note "$(wc -l <"$T/got.txt") distinct series, labels exact"
