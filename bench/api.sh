#!/bin/bash
# The what-if API (issue 6): wrk on loopback against `ndtpipe serve`
# answering POST /v1/whatif, side by side with a ceiling peer in the same
# run: nginx answering the same path with a static JSON body of the same
# size (no parsing, no model: what an HTTP server alone costs here).
#
# The model is the paper's configuration (2000 rounds, depth 8, backlog
# baseline) trained on a short campaign; the twin's state is one Service
# with three pods in a SQLite UDR (as tests/integration/80-serve.sh).
# Three loads:
#   nginx      the ceiling
#   warm       the same question again and again ({"change":{"pods":"+1"}}):
#              answered from the memo after the first request
#   cold       a different question every request (users 200..600 x pods
#              1..6 in turn, 2406 questions > the memo's 256 slots): the
#              counterfactual and the prediction run every time
#
# BENCH_SECONDS (default 5) per run, BENCH_CONNECTIONS (default 4),
# BENCH_THREADS (server threads, default 1: wrk takes the other core),
# BENCH_REPEAT (default 2) rounds of the three loads, BENCH_ROUNDS
# (default 2000) boosting rounds of the model.
. "$(dirname "$0")/lib.sh"
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-4}
THREADS=${BENCH_THREADS:-1}
REPEAT=${BENCH_REPEAT:-2}
ROUNDS=${BENCH_ROUNDS:-2000}
for c in wrk nginx jq curl; do command -v "$c" >/dev/null || die "$c missing (make deps)"; done
udr_tool=$(dirname "$NDTPIPE")/tools/udr_tool
[ -x "$udr_tool" ] || die "missing $udr_tool (make)"

nice -n 19 "$NDTPIPE" testbed campaign --users 200,400,600 --pods 1-6 --dwell 20s --seed 3 --out "$B/d.csv" 2>/dev/null \
    || die "campaign"
nice -n 19 "$NDTPIPE" train --data "$B/d.csv" --model xgboost --train users=200,400 --test users=600 \
    --baseline backlog --registry "$B/reg" --json --rounds "$ROUNDS" --threads 2 --seed 7 >"$B/m.json" 2>"$B/train.log" \
    || die "train: $(cat "$B/train.log")"
id=$(jq -r .model_id "$B/m.json")
# The grade is written directly: what is measured is serving, and a
# validate verdict on this short campaign would make the run depend on it.
jq '.deployment_grade = "Reliable"' "$B/reg/$id/model.json" >"$B/mj" && mv "$B/mj" "$B/reg/$id/model.json"

read -r depth backlog cpu_p cpu_s mem infer < <(awk -F, 'NR > 1 && $2 == 400 && $3 == 3 {
    n++; for (i = 4; i <= 9; i++) s[i] += $i } END { for (i = 4; i <= 9; i++) printf "%.6f ", s[i] / n; print "" }' "$B/d.csv")
now=$(date +%s%3N)
svc=urn:ngsi-ld:Service:ndt.inference
{
    echo "p Service $svc $now currentUsers=400 desiredReplicas=3 readyReplicas=3"
    for i in 0 1 2; do
        pod=urn:ngsi-ld:ServiceComponent:ndt.inference-$i
        echo "p ServiceComponent $pod $now avgDepthOnEnqueue=$depth avgBacklogEstimate=$backlog processCpuUsage=$cpu_p systemCpuUsage=$cpu_s systemMemoryUsage=$mem avgInferenceTime=$infer"
        echo "r $pod service $svc $now"
    done
    echo quit
} | "$udr_tool" "sqlite:$B/udr.db" >"$B/udr.log" 2>&1 || die "udr_tool: $(cat "$B/udr.log")"

PORT=$(free_port)
bg serve "$NDTPIPE" serve --registry "$B/reg" --udr "sqlite:$B/udr.db" --listen "127.0.0.1:$PORT" \
    --threads "$THREADS" --max-state-age 1h
SERVE_PID=$BG_PID
wait_port "$PORT" || die "serve did not start: $(cat "$B/serve.log")"
answer=$(curl -sf -d '{"change":{"pods":"+1"}}' "http://127.0.0.1:$PORT/v1/whatif") || die "no what-if answer"

# nginx: the same path, a static body of the same length, one worker.
NGINX_PORT=$(free_port)
cat >"$B/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $B/nginx.pid; error_log $B/nginx-error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:$NGINX_PORT;
    location = /v1/whatif { default_type application/json; return 200 '$answer'; } } }
CONF
bg nginx nginx -c "$B/nginx.conf" -e "$B/nginx-error.log"
wait_port "$NGINX_PORT" || die "nginx did not start: $(cat "$B/nginx.log")"
[ "$(curl -s -d x "http://127.0.0.1:$NGINX_PORT/v1/whatif" | wc -c)" = "$(printf '%s' "$answer" | wc -c)" ] \
    || die "nginx body differs in size"

cat >"$B/warm.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"change":{"pods":"+1"}}'
wrk.headers["Content-Type"] = "application/json"
LUA
cat >"$B/cold.lua" <<'LUA'
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"change":{"users":%d,"pods":%d}}', 200 + n % 401, 1 + math.floor(n / 401) % 6)
  return wrk.format("POST", nil, nil, body)
end
LUA

# wrk's latency ("132.00us", "2.44ms", "1.01s") in ms.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }

run() { # name url script
    local out
    out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$3" "$2") || die "wrk failed"
    if grep -q 'Non-2xx' <<<"$out"; then die "$1: errors: $out"; fi
    local p50 p99 rps
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    rps=$(awk '$1 == "Requests/sec:" { printf "%.0f", $2 }' <<<"$out")
    echo "| $1 | $(to_ms "$p50") | $(to_ms "$p99") | $rps |"
}

echo "wrk -t1 -c$CONNS -d${SECS}s, serve --threads $THREADS, model $ROUNDS rounds depth 8 ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "| load | p50 ms | p99 ms | requests/s |"
echo "|---|---|---|---|"
for _ in $(seq 1 "$REPEAT"); do
    run "nginx, static body (ceiling)" "http://127.0.0.1:$NGINX_PORT/v1/whatif" "$B/warm.lua"
    run "ndtpipe what-if, same question (memo)" "http://127.0.0.1:$PORT/v1/whatif" "$B/warm.lua"
    run "ndtpipe what-if, new question each time" "http://127.0.0.1:$PORT/v1/whatif" "$B/cold.lua"
done
echo
curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^ndtpipe_api_whatif_memo_(hits|misses)_total/ { printf "%s=%s ", $1, $2 } END { print "" }'
