#!/bin/bash
# Actuation (docs/API.md, "Actuation"): `ndtpipe serve --objective-ms`
# recommends the fewest replicas the gated model predicts to meet a mean
# latency objective, answers GET /v1/recommendation and KEDA's
# GET /v1/scale/{service}, and publishes on ndt.actions, read back with
# kcat.  The registry and the UDR are built as 80-serve.sh builds them
# (a small XGBoost model on a short testbed campaign, graded by
# `ndtpipe validate`; a twin at 400 users on 3 pods written by udr_tool).
# Every recommendation is checked against the what-if endpoint: the count
# recommended meets the objective there, and one fewer does not.
. "$(dirname "$0")/lib.sh"
need jq curl kcat promtool
udr_tool=$(dirname "$NDTPIPE")/tools/udr_tool
[ -x "$udr_tool" ] || fail "missing $udr_tool (make)"

nice -n 19 "$NDTPIPE" testbed campaign --users 200,400,600 --pods 1-6 --dwell 20s --seed 3 \
    --out "$T/d.csv" 2>/dev/null || fail "campaign"
nice -n 19 "$NDTPIPE" train --data "$T/d.csv" --model xgboost --train users=200,400 --test users=600 \
    --registry "$T/reg" --json --rounds 100 --depth 4 --eta 0.3 --threads 2 --seed 7 \
    >"$T/m.json" 2>"$T/train.log" || fail "train: $(cat "$T/train.log")"
id=$(jq -r .model_id "$T/m.json")

read -r depth backlog cpu_p cpu_s mem infer < <(awk -F, 'NR > 1 && $2 == 400 && $3 == 3 {
    n++; for (i = 4; i <= 9; i++) s[i] += $i } END { for (i = 4; i <= 9; i++) printf "%.6f ", s[i] / n; print "" }' "$T/d.csv")
now=$(date +%s%3N)
svc=urn:ngsi-ld:Service:ndt.inference
{
    echo "p Service $svc $now serviceType=s:inference currentUsers=400 desiredReplicas=3 readyReplicas=3 twinState=s:synchronized"
    for i in 0 1 2; do
        pod=urn:ngsi-ld:ServiceComponent:ndt.inference-$i
        echo "p ServiceComponent $pod $now serviceComponentStatus=s:Running avgDepthOnEnqueue=$depth avgBacklogEstimate=$backlog processCpuUsage=$cpu_p systemCpuUsage=$cpu_s systemMemoryUsage=$mem avgInferenceTime=$infer twinState=s:synchronized"
        echo "r $pod service $svc $((now - 60000))"
    done
    echo quit
} | "$udr_tool" "sqlite:$T/udr.db" >"$T/udr.log" 2>&1 || fail "udr_tool: $(cat "$T/udr.log")"
grep -q '^closed rc=0' "$T/udr.log" || fail "udr_tool: $(cat "$T/udr.log")"

start_broker
PORT=$(free_port)
API=http://127.0.0.1:$PORT

# req METHOD PATH [BODY]: sets $code and $body.
req() {
    if [ -n "${3-}" ]; then
        code=$(curl -s -o "$T/body" -w '%{http_code}' -X "$1" --data-binary "$3" "$API$2")
    else
        code=$(curl -s -o "$T/body" -w '%{http_code}' -X "$1" "$API$2")
    fi
    body=$(cat "$T/body")
}
expect() { # STATUS ERROR-CODE METHOD PATH [BODY]
    local want=$1 err=$2; shift 2
    req "$@"
    [ "$code" = "$want" ] || fail "$1 $2: status $code, expected $want: $body"
    [ -z "$err" ] || jq -e --arg e "$err" '.error == $e and (.detail | length > 10)' "$T/body" >/dev/null \
        || fail "$1 $2: expected error $err with a detail: $body"
}
# actions: the recommendations on ndt.actions so far, one "key<TAB>value" a line.
actions() { timeout 20 kcat -b "$BROKERS" -C -t ndt.actions -o beginning -e -q -f '%k\t%s\n' 2>/dev/null; }
# whatif_ms PODS: the what-if endpoint's prediction at PODS.
whatif_ms() {
    req POST /v1/whatif "{\"change\":{\"pods\":$1}}"
    [ "$code" = 200 ] || fail "whatif pods=$1: $code $body"
    jq .predicted_ms "$T/body"
}
# check_minimal OBJECTIVE MIN: the recommendation in $T/rec.json is what
# the what-if endpoint says: its count meets the objective (or is the
# maximum, unreachable), and one fewer (if allowed) does not.
check_minimal() {
    local objective=$1 min=$2 rec cur pred
    rec=$(jq .recommended_replicas "$T/rec.json")
    cur=$(jq .current_pods "$T/rec.json")
    if [ "$rec" != "$cur" ]; then
        pred=$(whatif_ms "$rec")
        jq -e --argjson p "$pred" '(.predicted_ms_recommended - $p | fabs) < 1e-9' "$T/rec.json" >/dev/null \
            || fail "the recommendation's prediction at $rec pods differs from the what-if's $pred: $(cat "$T/rec.json")"
    fi
    if jq -e '.decision != "objective-unreachable"' "$T/rec.json" >/dev/null; then
        jq -e --argjson o "$objective" '.predicted_ms_recommended <= $o' "$T/rec.json" >/dev/null \
            || fail "the recommended count misses the objective: $(cat "$T/rec.json")"
        if [ "$rec" -gt "$min" ] && [ $((rec - 1)) != "$cur" ]; then
            pred=$(whatif_ms $((rec - 1)))
            awk -v p="$pred" -v o="$objective" 'BEGIN { exit !(p > o) }' \
                || fail "$((rec - 1)) pods also meet the objective ($pred ms <= $objective): $(cat "$T/rec.json")"
        fi
    fi
}

# 1. No gated model: 503 everywhere, nothing published.
bg serve "$NDTPIPE" serve --registry "$T/reg" --udr "sqlite:$T/udr.db" --listen "127.0.0.1:$PORT" \
    --objective-ms 100000 --brokers "$BROKERS" --actions-interval 1s
SERVE_PID=$BG_PID
wait_port "$PORT" || fail "serve did not start: $(cat "$T/serve.log")"
expect 503 no-gated-model GET /v1/recommendation
expect 503 no-gated-model GET /v1/scale/ndt.inference
expect 503 no-gated-model GET "/v1/recommendation?service=$svc"
sleep 2.5 # two evaluations
[ "$(actions | wc -l)" = 0 ] || fail "published without a gated model: $(actions)"

# 2. Graded: an objective met with room to spare gives the fewest pods
# that meet it, at most the current 3.
"$NDTPIPE" validate --registry "$T/reg" --model "$id" --data "$T/d.csv" --json >"$T/v.json" 2>"$T/validate.log" \
    || fail "validate: $(cat "$T/validate.log")"
grade=$(jq -r .deployment_grade "$T/reg/$id/model.json")
[ "$grade" = Excellent ] || [ "$grade" = Reliable ] || fail "validate graded the model '$grade'"
for _ in $(seq 1 100); do req GET /v1/recommendation; [ "$code" = 200 ] && break; sleep 0.1; done
[ "$code" = 200 ] || fail "no recommendation after grading: $body"
cp "$T/body" "$T/rec.json"
jq -e --arg svc "$svc" --arg id "$id" --arg g "$grade" '.service == $svc and .current_pods == 3 and .current_users == 400
    and .objective_ms == 100000 and .min_replicas == 1 and .max_replicas == 10 and .model == $id
    and .deployment_grade == $g and .recommended_replicas >= 1 and .recommended_replicas <= 3
    and .decision == "initial" and (.reason | length > 20) and (.state_at | test("Z$"))' "$T/rec.json" >/dev/null \
    || fail "comfortable objective: $(cat "$T/rec.json")"
check_minimal 100000 1
note "objective 100 s: $(jq -c '{recommended_replicas, predicted_ms_current, predicted_ms_recommended}' "$T/rec.json")"
req POST /v1/predict '{}'
baseline=$(jq .latency_ms "$T/body")
jq -e --argjson b "$baseline" '(.predicted_ms_current - $b | fabs) < 1e-9' "$T/rec.json" >/dev/null \
    || fail "predicted_ms_current differs from /v1/predict's $baseline"
# KEDA's endpoint: the same number, by local id or entity id.
expect 200 "" GET /v1/scale/ndt.inference
jq -e --slurpfile r "$T/rec.json" '.replicas == $r[0].recommended_replicas and (.replicas | type) == "number"' \
    "$T/body" >/dev/null || fail "/v1/scale: $body"
expect 200 "" GET "/v1/scale/$svc"
expect 404 unknown-service GET /v1/scale/nope
expect 404 unknown-service GET '/v1/recommendation?service=nope'
expect 405 method-not-allowed POST /v1/recommendation '{}'
# ndt.actions: keyed by the service, the same recommendation, republished
# every --actions-interval while unchanged.
for _ in $(seq 1 50); do [ "$(actions | wc -l)" -ge 2 ] && break; sleep 0.2; done
actions >"$T/actions1.tsv"
[ "$(wc -l <"$T/actions1.tsv")" -ge 2 ] || fail "expected a recommendation republished every 1s: $(cat "$T/actions1.tsv")"
awk -F'\t' -v k="$svc" '$1 != k { exit 1 }' "$T/actions1.tsv" || fail "a message not keyed by $svc: $(cat "$T/actions1.tsv")"
cut -f2- "$T/actions1.tsv" | jq -es --slurpfile r "$T/rec.json" 'all(.[]; .recommended_replicas == $r[0].recommended_replicas
    and .model == $r[0].model and .deployment_grade == $r[0].deployment_grade and .objective_ms == 100000
    and .current_pods == 3 and .state_at == $r[0].state_at and (.reason | length > 20))' >/dev/null \
    || fail "ndt.actions: $(cat "$T/actions1.tsv")"
# /metrics: the new families, clean under promtool.
curl -sf "$API/metrics" >"$T/metrics.txt" || fail "/metrics"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 || fail "promtool: $(cat "$T/promtool.out")"
[ ! -s "$T/promtool.out" ] || fail "promtool lint: $(cat "$T/promtool.out")"
grep -q "^ndtpipe_api_recommended_replicas{service=\"$svc\"} $(jq .recommended_replicas "$T/rec.json")$" "$T/metrics.txt" \
    || fail "recommended_replicas gauge: $(grep recommended "$T/metrics.txt")"
grep -q '^ndtpipe_api_actions_delivered_total [1-9]' "$T/metrics.txt" || fail "delivered count: $(grep actions_ "$T/metrics.txt")"
grep -q '^ndtpipe_api_requests_total{code="200",endpoint="scale"} 2$' "$T/metrics.txt" || fail "scale request count"
kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || fail "serve exited $? on SIGTERM"

# 3. An objective the current state violates (10% under the latency
# predicted now): more pods than the current 3.
objective=$(awk -v b="$baseline" 'BEGIN { printf "%.3f", b * 0.9 }')
bg serve2 "$NDTPIPE" serve --registry "$T/reg" --udr "sqlite:$T/udr.db" --listen "127.0.0.1:$PORT" \
    --objective-ms "$objective" --min-replicas 2 --max-replicas 8 --brokers "$BROKERS" --actions-topic ndt.actions
SERVE_PID=$BG_PID
wait_port "$PORT" || fail "serve (violated) did not start: $(cat "$T/serve2.log")"
expect 200 "" GET /v1/recommendation
cp "$T/body" "$T/rec.json"
jq -e --argjson o "$objective" '.recommended_replicas > .current_pods and .current_pods == 3 and .predicted_ms_current > $o
    and .min_replicas == 2 and .max_replicas == 8 and .recommended_replicas <= 8' "$T/rec.json" >/dev/null \
    || fail "violated objective $objective: $(cat "$T/rec.json")"
check_minimal "$objective" 2
note "objective $objective ms (baseline $baseline): $(jq -c '{recommended_replicas, predicted_ms_recommended, decision}' "$T/rec.json")"
for _ in $(seq 1 50); do
    actions >"$T/actions2.tsv"
    tail -n 1 "$T/actions2.tsv" | cut -f2- | jq -e --argjson o "$objective" '.objective_ms == $o' >/dev/null 2>&1 && break
    sleep 0.2
done
tail -n 1 "$T/actions2.tsv" | cut -f2- | jq -e --slurpfile r "$T/rec.json" '.recommended_replicas == $r[0].recommended_replicas
    and .recommended_replicas > .current_pods' >/dev/null || fail "ndt.actions (violated): $(tail -n 2 "$T/actions2.tsv")"
kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || fail "serve exited $? on SIGTERM"

# 4. Without an objective actuation is off; without --brokers it is HTTP only.
bg serve3 "$NDTPIPE" serve --registry "$T/reg" --udr "sqlite:$T/udr.db" --listen "127.0.0.1:$PORT"
wait_port "$PORT" || fail "serve (no objective) did not start"
expect 404 no-objective GET /v1/recommendation
kill -TERM "$BG_PID"; wait "$BG_PID"
n_before=$(actions | wc -l)
bg serve4 "$NDTPIPE" serve --registry "$T/reg" --udr "sqlite:$T/udr.db" --listen "127.0.0.1:$PORT" --objective-ms 100000
wait_port "$PORT" || fail "serve (HTTP only) did not start"
expect 200 "" GET /v1/scale/ndt.inference
sleep 1.5
kill -TERM "$BG_PID"; wait "$BG_PID"
[ "$(actions | wc -l)" = "$n_before" ] || fail "published without --brokers"

# Usage errors exit 2 naming the flag.
"$NDTPIPE" serve --registry "$T/reg" --udr "sqlite:$T/udr.db" --brokers "$BROKERS" 2>"$T/err"
[ $? -eq 2 ] && grep -q -- --objective-ms "$T/err" || fail "--brokers without --objective-ms: $(cat "$T/err")"
"$NDTPIPE" serve --registry "$T/reg" --udr "sqlite:$T/udr.db" --objective-ms 50 --min-replicas 5 --max-replicas 3 2>"$T/err"
[ $? -eq 2 ] && grep -q -- --max-replicas "$T/err" || fail "min > max: $(cat "$T/err")"
"$NDTPIPE" serve --registry "$T/reg" --udr "sqlite:$T/udr.db" --objective-ms -3 2>"$T/err"
[ $? -eq 2 ] && grep -q -- --objective-ms "$T/err" || fail "negative objective: $(cat "$T/err")"
"$NDTPIPE" serve --registry "$T/reg" --udr "sqlite:$T/udr.db" --objective-ms 50 --scale-down-margin 1 2>"$T/err"
[ $? -eq 2 ] || fail "margin 1: $(cat "$T/err")"
"$NDTPIPE" serve --registry "$T/reg" --udr "sqlite:$T/udr.db" --objective-ms 50 --scale-down-window 6m 2>"$T/err"
[ $? -eq 2 ] && grep -q -- --scale-down-window "$T/err" || fail "window 6m: $(cat "$T/err")"
exit 0
