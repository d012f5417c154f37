#!/bin/bash
# /control: reads and changes users and pods; a scale-up behaves like a
# Deployment (ready after the startup delay); bad bodies get 400 and change nothing.
. "$(dirname "$0")/lib.sh"
need curl

port=$(free_port)
bg testbed "$NDTPIPE" testbed --listen "127.0.0.1:$port" --users 200 --pods 1
wait_port "$port" 10 || { cat "$T/testbed.log" >&2; fail "testbed did not listen"; }
base="http://127.0.0.1:$port"

post() { curl -sS -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$1" "$base/control"; }
metric() { curl -sS "$base/metrics" | awk -v n="$1" '$1 ~ "^"n"[{ ]" || $1 == n { print $2; exit }'; }

[ "$(curl -sS "$base/control")" = '{"users":200,"pods":1}' ] || fail "initial state: $(curl -sS "$base/control")"

for body in '{"users":-1}' '{"pods":0}' '{"pods":1000}' '{"users":100000000}' '{"users":1.5}' \
            '{"replicas":3}' '{"users":300,"color":"red"}' '{"users":300,"pods":-2}' \
            '{"users":"300"}' 'not json' '{"users":300' '[1,2]' '{}' '' '{"max_queue":4}'; do
    code=$(post "$body")
    [ "$code" = 400 ] || fail "body '$body': status $code, expected 400"
    grep -q '"error":"bad-request"' "$T/body" || fail "body '$body': $(cat "$T/body")"
    grep -q '"detail":"[^"]\+' "$T/body" || fail "body '$body': no detail"
done
[ "$(curl -sS "$base/control")" = '{"users":200,"pods":1}' ] || fail "a bad body changed the state"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$base/control"); [ "$code" = 405 ] || fail "DELETE: $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$base/nope"); [ "$code" = 404 ] || fail "unknown path: $code"

# Scale up to 3: desired at once, available only after the startup delay (6-9 s).
[ "$(post '{"users":500,"pods":3}')" = 200 ] || fail "valid body refused: $(cat "$T/body")"
[ "$(cat "$T/body")" = '{"users":500,"pods":3}' ] || fail "reply: $(cat "$T/body")"
[ "$(metric kube_deployment_spec_replicas)" = 3 ] || fail "spec replicas not 3"
[ "$(metric kube_deployment_status_replicas_available)" = 1 ] || fail "new pods ready at once"
[ "$(metric inference_current_users)" = 500 ] || fail "users not 500"
ready=0
for _ in $(seq 1 150); do
    [ "$(metric kube_deployment_status_replicas_available)" = 3 ] && { ready=1; break; }
    sleep 0.1
done
[ $ready = 1 ] || fail "3 pods not available within 15 s"
[ "$(curl -sS "$base/metrics" | grep -c '^inference_requests_total{')" = 3 ] || fail "service metrics not per pod"

# Scale down: pods leave the endpoints at once.
[ "$(post '{"pods":2}')" = 200 ] || fail "scale down refused"
[ "$(metric kube_deployment_status_replicas_available)" = 2 ] || fail "scale down not visible"
[ "$(curl -sS "$base/control")" = '{"users":500,"pods":2}' ] || fail "final state"

# The admission bound is the server's configuration (--max-queue), not a
# /control knob: 2000 users on one pod fill its queue and get 503s, counted.
[ "$(post '{"users":2000,"pods":1}')" = 200 ] || fail "2000 users refused"
rejected=0
for _ in $(seq 1 100); do
    n=$(curl -sS "$base/metrics" | awk '/^inference_requests_rejected_total\{/ { s += $2 } END { print s + 0 }')
    [ "$n" -gt 0 ] && { rejected=1; break; }
    sleep 0.1
done
[ $rejected = 1 ] || fail "no request refused at 2000 users on 1 pod within 10 s"
[ "$(metric inference_max_queue_size)" = 16 ] || fail "max queue size: $(metric inference_max_queue_size)"
exit 0
