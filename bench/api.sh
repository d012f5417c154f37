#!/bin/bash
# The what-if API (issue 6): wrk on loopback against `ndtpipe serve`
# answering POST /v1/whatif, side by side with a ceiling peer in the same
# run: nginx answering the same path with a static JSON body of the same
# size (no parsing, no model: what an HTTP server alone costs here).
#
# The model is the paper's configuration (2000 rounds, depth 8, backlog
# baseline) trained on a short campaign; the twin's state is one Service
# with three pods in a SQLite UDR (as tests/integration/80-serve.sh).
# Four loads:
#   nginx      the ceiling
#   hit        the same question again and again ({"change":{"pods":"+1"}}):
#              answered from the memo after the first request
#   miss       a different question every request (users 200..600 x pods
#              1..48 in turn, 19248 questions, over four times the memo's
#              4096 slots): the counterfactual and the prediction run
#              every time (under 1% hits, shown)
#   mixed      a controller sweeping its candidates while the twin moves:
#              a feeder writes a new state every 100 ms (the harmonizer's
#              pace; each is a new memo key), and the requests cycle
#              through pods 1..8 x users 100..1000 by 50 (152 questions),
#              so each state answers the sweep once computed, then from
#              the memo (less the memo's collisions)
#
# BENCH_SECONDS (default 5) per run, BENCH_CONNECTIONS (default 4),
# BENCH_THREADS (server threads, default 1: wrk takes the other core),
# BENCH_REPEAT (default 2) rounds of the four loads, BENCH_ROUNDS
# (default 2000) boosting rounds of the model.  BENCH_CACHE=DIR keeps the
# campaign and the trained model there for the next run (they do not
# depend on the code under test).  BENCH_PERF=miss (or hit, mixed)
# records the server with `perf record -g` during the first run of that
# load and prints its top symbols.
. "$(dirname "$0")/lib.sh"
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-4}
THREADS=${BENCH_THREADS:-1}
REPEAT=${BENCH_REPEAT:-2}
ROUNDS=${BENCH_ROUNDS:-2000}
for c in wrk nginx jq curl; do command -v "$c" >/dev/null || die "$c missing (make deps)"; done
# perf is optional (Debian's linux-perf, not in make deps: only profiling needs it).
[ -z "${BENCH_PERF:-}" ] || command -v perf >/dev/null || die "BENCH_PERF needs perf (apt-get install linux-perf)"
udr_tool=$(dirname "$NDTPIPE")/tools/udr_tool
[ -x "$udr_tool" ] || die "missing $udr_tool (make)"

if [ -n "${BENCH_CACHE:-}" ] && [ "$(cat "$BENCH_CACHE/rounds" 2>/dev/null)" = "$ROUNDS" ]; then
    cp -r "$BENCH_CACHE/d.csv" "$BENCH_CACHE/reg" "$BENCH_CACHE/m.json" "$B/"
else
    nice -n 19 "$NDTPIPE" testbed campaign --users 200,400,600 --pods 1-6 --dwell 20s --seed 3 --out "$B/d.csv" 2>/dev/null \
        || die "campaign"
    nice -n 19 "$NDTPIPE" train --data "$B/d.csv" --model xgboost --train users=200,400 --test users=600 \
        --baseline backlog --registry "$B/reg" --json --rounds "$ROUNDS" --threads 2 --seed 7 >"$B/m.json" 2>"$B/train.log" \
        || die "train: $(cat "$B/train.log")"
    if [ -n "${BENCH_CACHE:-}" ]; then
        mkdir -p "$BENCH_CACHE" && rm -rf "$BENCH_CACHE/reg" && cp -r "$B/d.csv" "$B/reg" "$B/m.json" "$BENCH_CACHE/" &&
            echo "$ROUNDS" >"$BENCH_CACHE/rounds"
    fi
fi
id=$(jq -r .model_id "$B/m.json")
# The grade is written directly: what is measured is serving, and a
# validate verdict on this short campaign would make the run depend on it.
jq '.deployment_grade = "Reliable"' "$B/reg/$id/model.json" >"$B/mj" && mv "$B/mj" "$B/reg/$id/model.json"

read -r depth backlog cpu_p cpu_s mem infer < <(awk -F, 'NR > 1 && $2 == 400 && $3 == 3 {
    n++; for (i = 4; i <= 9; i++) s[i] += $i } END { for (i = 4; i <= 9; i++) printf "%.6f ", s[i] / n; print "" }' "$B/d.csv")
now=$(date +%s%3N)
svc=urn:ngsi-ld:Service:ndt.inference
# pods_state TS K: the three pods' points at TS, the depth moved by K
# thousandths (so that each state is new to the counterfactual's fit).
pods_state() {
    local d i
    d=$(awk -v d="$depth" -v k="$2" 'BEGIN { printf "%.6f", d * (1 + (k % 7) / 1000) }')
    for i in 0 1 2; do
        echo "p ServiceComponent urn:ngsi-ld:ServiceComponent:ndt.inference-$i $1 avgDepthOnEnqueue=$d avgBacklogEstimate=$backlog processCpuUsage=$cpu_p systemCpuUsage=$cpu_s systemMemoryUsage=$mem avgInferenceTime=$infer"
    done
}
{
    echo "p Service $svc $now currentUsers=400 desiredReplicas=3 readyReplicas=3"
    pods_state "$now" 0
    for i in 0 1 2; do
        echo "r urn:ngsi-ld:ServiceComponent:ndt.inference-$i service $svc $now"
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
  local body = string.format('{"change":{"users":%d,"pods":%d}}', 200 + n % 401, 1 + math.floor(n / 401) % 48)
  return wrk.format("POST", nil, nil, body)
end
LUA
cat >"$B/sweep.lua" <<'LUA'
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"change":{"users":%d,"pods":%d}}', 100 + 50 * (n % 19), 1 + math.floor(n / 19) % 8)
  return wrk.format("POST", nil, nil, body)
end
LUA

# The twin moving: a new state every 100 ms while the mixed load runs.
feeder_start() {
    {
        local k=1
        while :; do
            pods_state "$(date +%s%3N)" "$k"
            echo flush
            k=$((k + 1))
            sleep 0.1
        done
    } | "$udr_tool" "sqlite:$B/udr.db" >"$B/feeder.log" 2>&1 &
    FEEDER_PID=$!
    _ndt_pids+=("$FEEDER_PID")
}
feeder_stop() {
    kill "$FEEDER_PID" 2>/dev/null
    wait "$FEEDER_PID" 2>/dev/null
}

# wrk's latency ("132.00us", "2.44ms", "1.01s") in ms.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }

# The memo's counters on /metrics: "hits misses".
memo_counts() {
    curl -s "http://127.0.0.1:$PORT/metrics" |
        awk '/^ndtpipe_api_whatif_memo_hits_total/ { h = $2 } /^ndtpipe_api_whatif_memo_misses_total/ { m = $2 }
             END { print h + 0, m + 0 }'
}

# run NAME URL SCRIPT [SERVER_PID [perf]]: one wrk run, one table row.
# With the server's pid, the row also has the server's CPU per request
# (user + system, what the load average cannot blur as much as latency)
# and the share of what-ifs the memo did not answer.
run() {
    local out perf_pid= cpu0 cpu1 h0 m0 h1 m1
    if [ -n "${5:-}" ]; then
        perf record -g -o "$B/perf.data" -p "$4" -- sleep "$SECS" >"$B/perf.log" 2>&1 &
        perf_pid=$!
    fi
    [ -n "${4:-}" ] && { cpu0=$(cpu_seconds "$4"); read -r h0 m0 < <(memo_counts); }
    out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$3" "$2") || die "wrk failed"
    [ -n "${4:-}" ] && { cpu1=$(cpu_seconds "$4"); read -r h1 m1 < <(memo_counts); }
    [ -n "$perf_pid" ] && wait "$perf_pid"
    if grep -q 'Non-2xx' <<<"$out"; then die "$1: errors: $out"; fi
    local p50 p99 rps n cpu=- missed=-
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    rps=$(awk '$1 == "Requests/sec:" { printf "%.0f", $2 }' <<<"$out")
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    if [ -n "${4:-}" ]; then
        cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$n" 'BEGIN { printf "%.1f", n ? (b - a) * 1e6 / n : 0 }')
        missed=$(awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) 'BEGIN { printf "%.1f%%", h + m ? 100 * m / (h + m) : 0 }')
    fi
    echo "| $1 | $(to_ms "$p50") | $(to_ms "$p99") | $rps | $cpu | $missed |"
}

echo "wrk -t1 -c$CONNS -d${SECS}s, serve --threads $THREADS, model $ROUNDS rounds depth 8 ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "| load | p50 ms | p99 ms | requests/s | server CPU us/request | memo misses |"
echo "|---|---|---|---|---|---|"
url=http://127.0.0.1:$PORT/v1/whatif
perf_hit= perf_miss= perf_mixed=
case "${BENCH_PERF:-}" in hit) perf_hit=perf ;; miss | 1) perf_miss=perf ;; mixed) perf_mixed=perf ;; esac
for _ in $(seq 1 "$REPEAT"); do
    run "nginx, static body (ceiling)" "http://127.0.0.1:$NGINX_PORT/v1/whatif" "$B/warm.lua"
    run "what-if, same question (hit)" "$url" "$B/warm.lua" "$SERVE_PID" $perf_hit
    run "what-if, new question each time (miss)" "$url" "$B/cold.lua" "$SERVE_PID" $perf_miss
    feeder_start
    sleep 0.3
    run "what-if, controller sweep, new state every 100 ms (mixed)" "$url" "$B/sweep.lua" "$SERVE_PID" $perf_mixed
    feeder_stop
    perf_hit= perf_miss= perf_mixed=
done
echo "(load $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
if [ -n "${BENCH_PERF:-}" ]; then
    echo
    echo "perf record -g of the server during the first $BENCH_PERF run (self time, top symbols):"
    perf report -i "$B/perf.data" --no-children --stdio --sort symbol 2>/dev/null |
        awk '/^ +[0-9.]+%/ { print; if (++n == 25) exit }'
fi
