#!/bin/bash
# The Grafana dashboards of deploy/grafana against a real influxd:
#  1. structure: the dashboards are what deploy/grafana/generate.py
#     writes; every dashboard is JSON with a schemaVersion and a unique
#     uid, panel ids are unique, every datasource reference (panels,
#     targets, variables, annotations) is the provisioned datasource's uid,
#     every data panel has raw InfluxQL targets;
#  2. data: influxd (Debian's 1.6.7) is filled through the UDR library
#     (tests/tools/udr_tool, the harmonizer's write path) with the testbed's
#     entities, attributes and relationships as docs/DATA-MODEL.md and
#     sdm-schemas/mapping/testbed.yaml define them, over the last ten
#     minutes; every variable query, annotation query and panel query is
#     expanded the way Grafana expands it ($timeFilter, $__interval,
#     $__interval_ms, $interval, $__from, $__to, template variables with their first value
#     and with "All") for the dashboard's default time range, run against
#     /query, and must return at least one value neither null nor 0.
# NDT_GRAFANA_INFLUX=http://HOST:PORT (and NDT_GRAFANA_DB, default the
# datasource's) runs step 3 against an InfluxDB 1.x that something else
# filled, e.g. a running harmonizer, instead of starting and filling one;
# NDT_GRAFANA_EMPTY_OK and NDT_GRAFANA_ONLY (EREs on "panel TITLE [A]")
# say which panels may be empty at that moment (test 92).
# A query that names an attribute nobody writes, and a count of a state
# nobody enters filled with zeros, must fail that check: the test tries
# both first, so it cannot pass by accident.
. "$(dirname "$0")/lib.sh"
shopt -u patsub_replacement 2>/dev/null # bash 5.2: "&" in ${x//p/r} is literal
need influxd curl jq python3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
G=$ROOT/deploy/grafana
TOOL=$(dirname "$NDTPIPE")/tools/udr_tool
[ -x "$TOOL" ] || fail "$TOOL not built (make)"
DASHBOARDS=("$G"/dashboards/*.json)
[ -e "${DASHBOARDS[0]}" ] || fail "no dashboards in $G/dashboards"

# ---- 1. structure ----
DS_UID=$(python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))["datasources"]
assert len(d) == 1 and d[0]["type"] == "influxdb", "want one influxdb datasource"
print(d[0]["uid"])' "$G/provisioning/datasources/ndtpipe.yaml") || fail "datasource provisioning unreadable"
DB=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["datasources"][0]["jsonData"]["dbName"])' \
     "$G/provisioning/datasources/ndtpipe.yaml")
python3 -c '
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))["providers"]
assert p and all(x["type"] == "file" and x["options"]["path"] for x in p)' \
    "$G/provisioning/dashboards/ndtpipe.yaml" || fail "dashboard provider unreadable"
for f in "${DASHBOARDS[@]}"; do
    n=$(basename "$f")
    jq -e . "$f" >/dev/null || fail "$n: not JSON"
    jq -e '.schemaVersion | type == "number"' "$f" >/dev/null || fail "$n: no schemaVersion"
    jq -e '.uid | type == "string" and length > 0' "$f" >/dev/null || fail "$n: no uid"
    dup=$(jq -r '[.panels[], (.panels[].panels[]?)] | map(.id) | group_by(.) | map(select(length > 1)[0]) | .[]' "$f")
    [ -z "$dup" ] || fail "$n: panel ids used twice: $dup"
    # Every datasource object anywhere but Grafana's built-in annotation.
    bad=$(jq -r --arg uid "$DS_UID" '[.. | objects | select(has("datasource")) | .datasource
          | select(type == "object" and .type != "grafana" and .uid != $uid)] | length' "$f")
    [ "$bad" = 0 ] || fail "$n: $bad datasource references are not the provisioned uid $DS_UID"
    bad=$(jq -r '[.panels[] | select(.type != "row" and .type != "text")
          | select((.targets | length) == 0 or any(.targets[]; .rawQuery != true or (.query | length) == 0))
          | .title] | join(", ")' "$f")
    [ -z "$bad" ] || fail "$n: panels without raw InfluxQL queries: $bad"
    bad=$(jq -r '[.annotations.list[] | select(.builtIn != 1)
          | select(.target.rawQuery != true or (.target.query | length) == 0 or
                   (.query != null and .query != .target.query)) | .name] | join(", ")' "$f")
    [ -z "$bad" ] || fail "$n: annotations without one raw InfluxQL target query: $bad"
done
python3 "$G/generate.py" "$T/generated" >/dev/null || fail "deploy/grafana/generate.py failed"
diff -r "$G/dashboards" "$T/generated" >&2 ||
    fail "deploy/grafana/dashboards differ from what generate.py writes (run it)"
dup=$(jq -r '.uid' "${DASHBOARDS[@]}" | sort | uniq -d)
[ -z "$dup" ] || fail "dashboard uid used twice: $dup"
note "structure: ${#DASHBOARDS[@]} dashboards, datasource $DS_UID, database $DB"

# ---- 2. data through the UDR ----
NOW=$(date +%s%3N)
if [ -n "${NDT_GRAFANA_INFLUX:-}" ]; then
    INFLUX_URL=$NDT_GRAFANA_INFLUX DB=${NDT_GRAFANA_DB:-$DB}
    note "querying $INFLUX_URL database $DB as it is"
else # (the else branch runs to the "fi" after the fill; its heredoc cannot be indented)
start_influxd
INFLUX_URL=http://127.0.0.1:$INFLUX_HTTP
curl -sf -XPOST "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode "q=CREATE DATABASE $DB" >/dev/null ||
    fail "CREATE DATABASE failed"
T0=$((NOW - 600000))
python3 - "$T0" >"$T/fill.cmd" <<'PY'
# Ten minutes of the testbed as the harmonizer stores it (docs/DATA-MODEL.md,
# harmonize/): one update per second: 400 users on 2 pods, a third pod from
# minute 5 (desired first, ready 10 s later), 600 users from minute 7,
# node-2 lost at minute 9 (its pod rescheduled to node-1), the third pod's
# last two scrapes missed (its next update comes late).  twinState is
# written on transitions only (bound at an entity's first update,
# synchronized at the next, outOfSync when its source is lost, bound again
# after an update later than the fidelity threshold) and a
# relationship only when its object changes; the static network function
# and network service get their attributes once at start, an ordered list
# as predicate_<position>.
import math, sys
t0 = int(sys.argv[1])
NS, DEP = "ndt", "cifar10-inference"
svc = f"urn:ngsi-ld:Service:{NS}.{DEP}"
pods = [f"{DEP}-7d9f8b6c5d-{s}" for s in ("x7k2p", "m4q9z", "b8n3r")]
node_of = {pods[0]: "node-1", pods[1]: "node-2", pods[2]: "node-1"}
nf, ns = f"urn:ngsi-ld:NetworkFunction:{NS}.image-classifier", f"urn:ngsi-ld:NetworkService:{NS}.image-classification"
pod_id = lambda p: f"urn:ngsi-ld:ServiceComponent:{NS}.{p}"
vce_id = lambda p: f"urn:ngsi-ld:VirtualComputeElement:{NS}.{p}.inference"
node_id = lambda n: f"urn:ngsi-ld:InfrastructureElement:{n}"
out, state, rel = [], {}, {}
def p(typ, id, ts, **f):
    # the harmonizer's twin state: bound, then synchronized; forced states pass through
    forced = f.pop("twinState", None)
    new = forced or ("synchronized" if state.get(id) in ("bound", "synchronized") else "bound")
    if state.get(id) != new:
        f["twinState"] = state[id] = new
    out.append(f"p {typ} {id} {ts} " + " ".join(
        f"{k}=s:{v}" if isinstance(v, str) else f"{k}={v:.6g}" for k, v in f.items()))
def r(s, pr, o, ts):
    if rel.get((s, pr)) != o:
        rel[(s, pr)] = o
        out.append(f"r {s} {pr} {o} {ts}")
out.append(f"p NetworkFunction {nf} {t0} functionType=s:inference operationalState=s:ENABLED "
           "administrativeState=s:UNLOCKED")
out.append(f"p NetworkService {ns} {t0} nsState=s:INSTANTIATED")
out.append(f"p Service {svc} {t0} serviceType=s:inference")
r(nf, "realizedBy", svc, t0); r(ns, "functionChain_1", nf, t0); r(svc, "partOf", ns, t0)
for i in range(600):
    ts, sec = t0 + i * 1000, i
    users = 400 if sec < 420 else 600
    desired = 2 if sec < 300 else 3
    ready = 2 if sec < 310 else 3
    live = [q for q in pods if q != pods[2] or sec >= 310]
    p("Service", svc, ts, currentUsers=users, desiredReplicas=desired, readyReplicas=ready)
    load = users / ready
    for k, q in enumerate(live):
        if q == pods[2] and sec in (597, 598):
            continue
        late = {"twinState": "bound"} if q == pods[2] and sec == 599 else {}
        depth = load / 40 + (k + sec % 7) / 10
        infer = 40 + 3.1 * load + 5 * math.sin(sec / 9 + k)
        p("ServiceComponent", pod_id(q), ts, queueDepth=round(depth), avgDepthOnEnqueue=depth,
          avgBacklogEstimate=depth * 0.021, processCpuUsage=min(100, load / 2.5),
          systemCpuUsage=35 + load / 10, systemMemoryUsage=41 + k, avgInferenceTime=infer,
          requestRate=users / ready / (infer / 1000 + 1), currentCpuUsage=min(1, load / 250),
          currentMemoryUsage=512 + k * 3, serviceComponentStatus="Running", **late)
        p("VirtualComputeElement", vce_id(q), ts, virtualCpuAllocation=1,
          virtualMemoryAllocation=2048, virtualStorageAllocation=10240,
          cpuUsageOfAllocation=min(100, load / 2.5), memoryUsageOfAllocation=25 + k,
          operationalState="ENABLED", **late)
        n = "node-1" if q == pods[1] and sec >= 540 else node_of[q]
        r(pod_id(q), "infrastructureElement", node_id(n), ts)
        r(pod_id(q), "service", svc, ts)
        r(vce_id(q), "serviceComponent", pod_id(q), ts)
        r(vce_id(q), "infrastructureElement", node_id(n), ts)
    for n in ("node-1", "node-2"):
        if n == "node-2" and sec >= 540:
            if sec == 545:  # two missed scrapes and more: the harmonizer ages it
                out.append(f"p InfrastructureElement {node_id(n)} {ts} twinState=s:outOfSync")
            continue
        p("InfrastructureElement", node_id(n), ts, hostname=n, cpuCores=4, ramCapacity=16384,
          availableRam=9000 - sec, currentRamUsage=7384 + sec, currentRamUsagePct=45 + sec / 100,
          currentCpuUsage=30 + load / 10)
print("\n".join(out))
PY
[ -s "$T/fill.cmd" ] || fail "fill generator failed"
"$TOOL" "influx:http://127.0.0.1:$INFLUX_HTTP/$DB" <"$T/fill.cmd" >"$T/fill.log" 2>&1 ||
    { cat "$T/fill.log" >&2; fail "udr_tool failed"; }
grep -q '^closed rc=0 .* dropped=0' "$T/fill.log" || { cat "$T/fill.log" >&2; fail "points not all written"; }
note "filled: $(tail -n 1 "$T/fill.log")"
fi

# ---- 3. every query ----
influxql() { # QUERY: the JSON answer
    curl -sf -G "$INFLUX_URL/query" --data-urlencode "db=$DB" \
        --data-urlencode "epoch=ms" --data-urlencode "q=$1"
}
# has_data JSON: true when some series holds a value besides time that is
# neither null nor 0 (fill(0) would make an empty count look like data).
has_data() {
    jq -e '[.results[]? | .series[]? | .values[]? | .[1:][] | select(. != null and . != 0)]
           | length > 0' >/dev/null <<<"$1"
}
# Grafana's escaping of a variable value inside a regex (influx datasource,
# multi-value variables): regex metacharacters get a backslash.
regex_escape() { sed 's/[][\\^$*+?.()|{}\/]/\\&/g' <<<"$1"; }
# duration_ms SPEC: "now-15m" -> 900000
duration_ms() {
    local s=${1#now-} n u
    n=${s%[smhd]} u=${s#"$n"}
    case $u in s) echo $((n * 1000)) ;; m) echo $((n * 60000)) ;; h) echo $((n * 3600000)) ;;
               d) echo $((n * 86400000)) ;; *) fail "time range $1 not understood" ;; esac
}
# Grafana's interval: range / max data points (the panel's width, about
# 1000 px), rounded to a "nice" step the way Grafana's roundInterval does.
nice_interval_ms() {
    local raw=$1 limit step
    for pair in 15:10 35:20 75:50 150:100 350:200 750:500 1500:1000 3500:2000 7500:5000 \
                12500:10000 17500:15000 25000:20000 45000:30000 90000:60000 210000:120000 \
                450000:300000 750000:600000 1050000:900000 1500000:1200000 2700000:1800000 \
                5400000:3600000; do
        limit=${pair%:*} step=${pair#*:}
        [ "$raw" -lt "$limit" ] && { echo "$step"; return; }
    done
    echo 7200000
}
fmt_interval() { # ms -> Grafana's text (1s, 500ms, 2m)
    local ms=$1
    if [ $((ms % 60000)) = 0 ]; then echo "$((ms / 60000))m"
    elif [ $((ms % 1000)) = 0 ]; then echo "$((ms / 1000))s"
    else echo "${ms}ms"; fi
}
# expand QUERY: Grafana's macros and the variables in VARS (name -> value).
declare -A VARS
expand() {
    local q=$1 name
    q=${q//\$timeFilter/time >= ${FROM}ms and time <= ${TO}ms}
    q=${q//\$\{__from\}/$FROM} q=${q//\$__from/$FROM}
    q=${q//\$\{__to\}/$TO} q=${q//\$__to/$TO}
    q=${q//\$__interval_ms/$INTERVAL_MS}
    q=${q//\$__interval/$INTERVAL}
    q=${q//\$interval/$INTERVAL}
    for name in "${!VARS[@]}"; do q=${q//\$$name/${VARS[$name]}}; done
    [[ $q =~ \$[A-Za-z_] ]] && fail "unexpanded variable in: $q"
    printf '%s' "$q"
}

checked=0 valid=0
# check WHERE QUERY [any]: runs the expanded query; fails on an error and,
# unless "any" is given, without data.
check() {
    local where=$1 q=$2 answer err
    answer=$(influxql "$q") || fail "$where: HTTP error for: $q"
    err=$(jq -r '[.results[]?.error // empty, .error // empty] | join("; ")' <<<"$answer")
    [ -z "$err" ] || fail "$where: influxd says '$err' for: $q"
    if [ "${3:-}" = any ]; then valid=$((valid + 1)); return; fi
    has_data "$answer" || fail "$where: no data for: $q"
    checked=$((checked + 1))
}

# The harness must be able to fail: a query of an attribute that does not exist.
FROM=$((NOW - 900000)) TO=$((NOW + 1000)) INTERVAL_MS=1000 INTERVAL=1s
q='SELECT mean("noSuchAttribute") FROM "ServiceComponent" WHERE $timeFilter GROUP BY time($__interval)'
( check "self-test" "$(expand "$q")" ) 2>/dev/null && fail "a query without data passed the check"
q='SELECT count("twinState") FROM "ServiceComponent" WHERE "twinState" = '"'nosuchstate'"' AND $timeFilter GROUP BY time($__interval) fill(0)'
( check "self-test" "$(expand "$q")" ) 2>/dev/null && fail "a count of nothing filled with 0 passed the check"

for f in "${DASHBOARDS[@]}"; do
    n=$(basename "$f" .json)
    range=$(duration_ms "$(jq -r '.time.from' "$f")")
    [ "$(jq -r '.time.to' "$f")" = now ] || fail "$n: time range does not end now"
    TO=$(date +%s%3N) FROM=$((TO - range))
    INTERVAL_MS=$(nice_interval_ms $((range / 1000)))
    INTERVAL=$(fmt_interval "$INTERVAL_MS")
    # Variables, in order (a later one may use an earlier one): values
    # through their regex (capture group 1 when there is one), sorted.
    declare -A FIRST=() ALL=()
    VARS=()
    nvars=$(jq '.templating.list | length' "$f")
    for i in $(seq 0 $((nvars - 1))); do
        v=$(jq -c ".templating.list[$i]" "$f")
        name=$(jq -r .name <<<"$v")
        [ "$(jq -r .type <<<"$v")" = query ] || fail "$n: variable $name is not a query variable"
        answer=$(influxql "$(expand "$(jq -r .query <<<"$v")")") || fail "$n: variable $name: HTTP error"
        regex=$(jq -r '.regex // ""' <<<"$v")
        re=""
        [ -n "$regex" ] && re=${regex:1:${#regex}-2}
        mapfile -t values < <(jq -r --arg re "$re" '
            [.results[]?.series[]?.values[]? | .[-1] | tostring
             | if $re == "" then . else (match($re)
                 | if (.captures | length) > 0 then .captures[0].string else .string end) end]
            | unique | .[]' <<<"$answer")
        [ ${#values[@]} -gt 0 ] || fail "$n: variable $name has no values"
        FIRST[$name]=$(regex_escape "${values[0]}")
        all=""
        for x in "${values[@]}"; do all+="${all:+|}$(regex_escape "$x")"; done
        ALL[$name]="($all)"
        VARS[$name]=${FIRST[$name]}
        checked=$((checked + 1))
        note "$n: \$$name = ${values[*]}"
    done
    # Every panel query and annotation query with the variables as the
    # dashboard opens (All, the JSON's current value) must return data; with
    # each variable on its first value alone it must still be valid InfluxQL
    # (a count of "bound" nodes may rightly be empty).
    mapfile -t queries < <(jq -r '
        (.panels[] | select(.targets) | .title as $t | .targets[] | "panel \($t) [\(.refId)]\t\(.query)"),
        (.annotations.list[] | select(.target.query) | "annotation \(.name)\t\(.target.query)")' "$f")
    for mode in all first; do
        for name in "${!FIRST[@]}"; do
            if [ $mode = first ]; then VARS[$name]=${FIRST[$name]}; else VARS[$name]=${ALL[$name]}; fi
        done
        for entry in "${queries[@]}"; do
            # A caller filling influxd with live data may allow some
            # panels to be empty now (NDT_GRAFANA_EMPTY_OK, an ERE on
            # "panel TITLE [A]") or ask data of some only (NDT_GRAFANA_ONLY).
            lax=""
            [ $mode = first ] && lax=any
            [ -n "${NDT_GRAFANA_EMPTY_OK:-}" ] && [[ ${entry%%	*} =~ $NDT_GRAFANA_EMPTY_OK ]] && lax=any
            [ -n "${NDT_GRAFANA_ONLY:-}" ] && ! [[ ${entry%%	*} =~ $NDT_GRAFANA_ONLY ]] && lax=any
            check "$n: ${entry%%	*} ($mode)" "$(expand "${entry#*	}")" "$lax"
        done
    done
    note "$n: ${#queries[@]} queries return data (range $range ms, interval $INTERVAL)"
    unset FIRST ALL
done
note "$checked queries returned data, $valid more were valid with first values"
