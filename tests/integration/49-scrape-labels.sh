#!/bin/bash
# The labels of every published series, exactly, against a real HTTP target
# (tests/tools/test_target): exposition labels out of name order, labels
# that clash with target labels (exported_<name> unless honor_labels), empty
# values, target labels from static_configs and external_labels; published
# in line protocol, whose tags keep the series' label order (sorted by
# name), so a merge that misses, doubles or misorders a label shows.  Both
# of the scraper's label paths run here: the fast merge (no clash) and the
# label-set path (clashes).  Label limits count and measure every label a
# series is published with, target and external labels included: a second
# target without clashes (the fast path only) is scraped by jobs whose
# limits it just meets or just misses.
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
printf '# TYPE m gauge\nm{zeta="y",alpha="c"} 5\nplain 4\n' >"$T/plain.prom"
PORT2=$(free_port)
bg target2 "$TARGET" --port "$PORT2" --file "$T/plain.prom"
wait_port "$PORT2" 10 || fail "second test target did not start"

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
  - job_name: limit7
    label_limit: 7
    static_configs: [{targets: ["127.0.0.1:$PORT2"], labels: {team: t}}]
  - job_name: limit6
    label_limit: 6
    static_configs: [{targets: ["127.0.0.1:$PORT2"], labels: {team: t}}]
  - job_name: vlen15
    label_value_length_limit: 15
    static_configs: [{targets: ["127.0.0.1:$PORT2"], labels: {team: t}}]
  - job_name: vlen14
    label_value_length_limit: 14
    static_configs: [{targets: ["127.0.0.1:$PORT2"], labels: {team: t}}]
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
awk -v other="instance=127.0.0.1:$PORT2" '$1 ~ /^(m|plain),/ && !index($1, other) { print $1, $2 }' "$T/all.lp" |
    sort -u >"$T/got.txt"
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

# Limits: m of the second target has 7 labels with __name__ (alpha, cluster,
# instance, job, team, zeta) and its longest value is the instance,
# "127.0.0.1:PORT2": 15 bytes with a five-digit port.
I2="127.0.0.1:$PORT2"
[ ${#I2} -eq 15 ] || skip "port $PORT2 is not five digits"
awk '$1 ~ /job=(limit|vlen)/ && $1 ~ /^(m|plain|up),/ { print $1, $2 }' "$T/all.lp" | sort -u >"$T/got-limits.txt"
sort >"$T/want-limits.txt" <<WANT
m,alpha=c,cluster=c1,instance=$I2,job=limit7,team=t,zeta=y value=5
plain,cluster=c1,instance=$I2,job=limit7,team=t value=4
up,cluster=c1,instance=$I2,job=limit7,team=t value=1
up,cluster=c1,instance=$I2,job=limit6,team=t value=0
m,alpha=c,cluster=c1,instance=$I2,job=vlen15,team=t,zeta=y value=5
plain,cluster=c1,instance=$I2,job=vlen15,team=t value=4
up,cluster=c1,instance=$I2,job=vlen15,team=t value=1
up,cluster=c1,instance=$I2,job=vlen14,team=t value=0
WANT
diff "$T/want-limits.txt" "$T/got-limits.txt" >&2 || fail "label limits: published series differ"
[ "$(jq .scrapes "$T/stats.json")" -ge 4 ] || fail "too few scrapes: $(cat "$T/stats.json")"
note "$(wc -l <"$T/got.txt") distinct series, labels exact"
