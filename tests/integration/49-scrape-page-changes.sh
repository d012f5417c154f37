#!/bin/bash
# What a target publishes while its page changes, scrape after scrape at
# 20 ms: most pages are read through the previous page's shape (the
# scrape cache: only the values are read, the series are the previous
# page's), so this pins that every published scrape is exactly one page's
# series with that page's values, never a mix, never stale labels with new
# values, never a value on the wrong series.
#
# tests/tools/test_target serves a file that the test replaces (mv) in
# phases: A1, A2 (same lines, new values and a new explicit timestamp), B
# (a series added in the middle, a label value changed), C (one value
# malformed: the scrape fails), A again, D (only the end of a long label
# value changed, far into its line).  Value i of version k is k*1000+i, so
# every value names its series and its page.  Two jobs scrape the target:
# `plain` (labels out of name order, a label clashing with a target label
# -> exported_team) and `relabeled` (metric_relabel_configs drop one series
# and add a label from another), so that samples and series do not line up
# one to one.  The expected series of each version come from the table
# below, not from ndtpipe; line protocol keeps every label in name order.
. "$(dirname "$0")/lib.sh"
need kcat jq python3
TARGET=${NDTPIPE%/ndtpipe}/tools/test_target
[ -x "$TARGET" ] || fail "test_target not built (make)"

start_broker

# page VERSION [b|c|d]: the exposition of a version; b adds a series and
# changes a label value, c spoils one value, d changes the last bytes of a
# long label value.
page() {
    local k=$1 kind=${2:-a} v2 extra="" node=n1 tail=one
    v2=$((k * 1000 + 2))
    [ "$kind" = d ] && tail=two
    [ "$kind" = c ] && v2="1.2.3"
    [ "$kind" = b ] && extra="http_requests_total{code=\"404\",method=\"get\"} $((k * 1000 + 10))
" && node=n2
    cat <<EXPO
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{method="get",code="200",path="/api/v1/query_range/with/a/long/tail/$tail"} $((k * 1000 + 1))
${extra}http_requests_total{code="500",method="post"} $v2
debug_value{team="x"} $((k * 1000 + 3))
# TYPE rtt_seconds histogram
rtt_seconds_bucket{le="0.1"} $((k * 1000 + 4))
rtt_seconds_bucket{le="+Inf"} $((k * 1000 + 5))
rtt_seconds_sum $((k * 1000 + 6)).5
rtt_seconds_count $((k * 1000 + 7))
last_seen{node="$node"} $((k * 1000 + 8)) $((1700000000000 + k))
temperature -$((k * 1000 + 9)).25
EXPO
}

serve() { # VERSION [KIND]
    page "$@" >"$T/next.prom"
    mv "$T/next.prom" "$T/page.prom"
}

serve 1
PORT=$(free_port)
bg target "$TARGET" --port "$PORT" --file "$T/page.prom"
wait_port "$PORT" 10 || fail "test target did not start"

cat >"$T/scrape.yml" <<CONFIG
global:
  scrape_interval: 20ms
  scrape_timeout: 20ms
scrape_configs:
  - job_name: plain
    static_configs: [{targets: ["127.0.0.1:$PORT"], labels: {team: t}}]
  - job_name: relabeled
    static_configs: [{targets: ["127.0.0.1:$PORT"], labels: {team: t}}]
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: debug_value
        action: drop
      - source_labels: [method]
        regex: (.+)
        target_label: verb
        replacement: \${1}_verb
CONFIG
WEB=$(free_port)
bg scrape "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS" --format influx \
    --stats-file "$T/stats.json" --web.listen-address "127.0.0.1:$WEB"
SCRAPE_PID=$BG_PID
wait_port "$WEB" 10 || fail "scraper did not start"

# Each phase is held long enough for dozens of scrapes per job.
sleep 1
serve 2
sleep 1
serve 3 b
sleep 1
serve 4 c
sleep 1
serve 5
sleep 1
serve 6 d
sleep 1
replayed=$(curl -sf "http://127.0.0.1:$WEB/metrics" |
    awk '$1 ~ /^ndtpipe_scrape_pages_replayed_total/ { s += $2 } END { print s + 0 }')
kill -TERM "$SCRAPE_PID"
wait "$SCRAPE_PID" || fail "scrape exited $? on SIGTERM"
kcat -b "$BROKERS" -C -t ndt.telemetry.raw -e -q -f '%s' >"$T/all.lp" || fail "kcat failed"

python3 - "$T/all.lp" "127.0.0.1:$PORT" >"$T/verdict.txt" <<'PY' || { cat "$T/verdict.txt" >&2; fail "published scrapes differ from the pages"; }
import sys
from collections import Counter, defaultdict

path, inst = sys.argv[1], sys.argv[2]

def expected(job, k, kind):
    """The series (line-protocol key -> (value, explicit ts or None)) of version k."""
    def key(name, labels):
        labels = dict(labels, instance=inst, job=job)
        if job == "plain":
            labels.setdefault("team", "t")
        else:
            labels.setdefault("team", "t")
        return name + "".join(f",{n}={labels[n]}" for n in sorted(labels))
    v = lambda i: float(k * 1000 + i)
    path = "/api/v1/query_range/with/a/long/tail/" + ("two" if kind == "d" else "one")
    rows = [("http_requests_total", {"code": "200", "method": "get", "path": path}, v(1), None)]
    if kind == "b":
        rows.append(("http_requests_total", {"code": "404", "method": "get"}, v(10), None))
    rows += [
        ("http_requests_total", {"code": "500", "method": "post"}, v(2), None),
        ("debug_value", {"exported_team": "x"}, v(3), None),
        ("rtt_seconds_bucket", {"le": "0.1"}, v(4), None),
        ("rtt_seconds_bucket", {"le": "+Inf"}, v(5), None),
        ("rtt_seconds_sum", {}, v(6) + 0.5, None),
        ("rtt_seconds_count", {}, v(7), None),
        ("last_seen", {"node": "n2" if kind == "b" else "n1"}, v(8), 1700000000000 + k),
        ("temperature", {}, -(v(9) + 0.25), None),
    ]
    out = {}
    for name, labels, value, ts in rows:
        labels = dict(labels)
        if job == "relabeled":
            if name == "debug_value":
                continue
            if "method" in labels:
                labels["verb"] = labels["method"] + "_verb"
        out[key(name, labels)] = (value, ts)
    return out

VERSIONS = {1: "a", 2: "a", 3: "b", 5: "a", 6: "d"}
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling"}

# A job's messages of one scrape are contiguous (one producer, one key per
# target and job... the key is the instance): split each job's stream at
# its last synthetic series.
scrapes = defaultdict(list)
current = defaultdict(list)
for line in open(path):
    line = line.rstrip("\n")
    if not line:
        continue
    head, field, ts = line.rsplit(" ", 2)
    job = [t.split("=", 1)[1] for t in head.split(",")[1:] if t.startswith("job=")][0]
    name = head.split(",", 1)[0]
    current[job].append((head, float(field.split("=", 1)[1]), int(ts), name))
    if name == "scrape_samples_post_metric_relabeling":
        scrapes[job].append(current[job])
        current[job] = []

seen = Counter()
for job in ("plain", "relabeled"):
    if len(scrapes[job]) < 100:
        print(f"{job}: only {len(scrapes[job])} scrapes"); sys.exit(1)
    for n, rows in enumerate(scrapes[job]):
        synth = {r[3]: r for r in rows if r[3] in SYNTHETIC and r[0].split(",", 1)[0] == r[3]}
        page = [r for r in rows if r[3] not in SYNTHETIC]
        up = synth["up"]
        scrape_ts = up[2]
        if up[1] == 0:
            if page:
                print(f"{job} scrape {n}: up 0 with {len(page)} samples"); sys.exit(1)
            seen[(job, "failed")] += 1
            continue
        got = {r[0]: (r[1], r[2]) for r in page}
        if len(got) != len(page):
            print(f"{job} scrape {n}: a series twice"); sys.exit(1)
        k = int(page[0][1]) // 1000
        if k not in VERSIONS:
            print(f"{job} scrape {n}: values of no served version: {page[0]}"); sys.exit(1)
        want = {key: (value, ts if ts is not None else scrape_ts)
                for key, (value, ts) in expected(job, k, VERSIONS[k]).items()}
        if got != want:
            print(f"{job} scrape {n} (version {k}):")
            for key in sorted(set(got) | set(want)):
                if got.get(key) != want.get(key):
                    print(f"  {key}: got {got.get(key)} want {want.get(key)}")
            sys.exit(1)
        if synth["scrape_samples_scraped"][1] != (10 if VERSIONS[k] == "b" else 9):
            print(f"{job} scrape {n}: scrape_samples_scraped {synth['scrape_samples_scraped'][1]}"); sys.exit(1)
        post = len(want)
        if synth["scrape_samples_post_metric_relabeling"][1] != post:
            print(f"{job} scrape {n}: post-relabeling count {synth['scrape_samples_post_metric_relabeling'][1]}, want {post}"); sys.exit(1)
        seen[(job, k)] += 1

for job in ("plain", "relabeled"):
    for k in (1, 2, 3, 5, 6, "failed"):
        if seen[(job, k)] < 10:
            print(f"{job}: version {k} seen in {seen[(job, k)]} scrapes only"); sys.exit(1)
print(" ".join(f"{j}/{k}:{n}" for (j, k), n in sorted(seen.items(), key=str)))
PY

scrapes=$(jq .scrapes "$T/stats.json")
pages=$(jq .pages_replayed "$T/stats.json")
[ "$pages" -gt 0 ] && [ "$pages" -lt "$scrapes" ] ||
    fail "pages_replayed $pages of $scrapes scrapes: the cache did not take part (or never declined)"
[ "$replayed" -gt 0 ] || fail "ndtpipe_scrape_pages_replayed_total is $replayed"
[ "$(jq .parse_errors "$T/stats.json")" -ge 10 ] || fail "version C's parse errors not counted: $(cat "$T/stats.json")"
note "scrapes per job and version: $(cat "$T/verdict.txt"); $pages of $scrapes pages replayed"
