#!/bin/bash
# `ndtpipe run --demo` (what `make run` starts): the banner gives a Kafka
# bootstrap address that an independent client (kcat) can read the testbed's
# telemetry from while it runs, the testbed's /control changes the cluster and
# the change shows up on the topic, and SIGINT stops everything with exit 0.
. "$(dirname "$0")/lib.sh"
need kcat jq curl

bg run "$NDTPIPE" run --demo --format json --users 200 --pods 2
RUN_PID=$BG_PID
for _ in $(seq 1 100); do grep -q "Ctrl-C" "$T/run.log" && break; sleep 0.1; done
grep -q "Ctrl-C" "$T/run.log" || { cat "$T/run.log" >&2; fail "no banner"; }
BOOTSTRAP=$(awk '$1 == "kafka" && $2 == "bootstrap" {print $3}' "$T/run.log")
TESTBED=$(grep -o 'http://127.0.0.1:[0-9]*/metrics' "$T/run.log" | head -1)
[ -n "$BOOTSTRAP" ] && [ -n "$TESTBED" ] || fail "banner lacks the addresses: $(cat "$T/run.log")"

sleep 1
curl -sf -X POST -d '{"pods":4}' "${TESTBED%/metrics}/control" >/dev/null || fail "POST /control failed"
sleep 1
kcat -b "$BOOTSTRAP" -C -t ndt.telemetry.raw -o beginning -e -q >"$T/msgs.json" || fail "kcat could not read the topic"
n=$(wc -l <"$T/msgs.json")
[ "$n" -gt 1000 ] || fail "only $n messages on the topic"
jq -e -s 'map(select(.name == "up" and .labels.job == "testbed" and .value == "1")) | length >= 50' \
    "$T/msgs.json" >/dev/null || fail "fewer than 50 successful scrapes of the testbed in 2 s"
# The scale-up is visible in kube-state-metrics' desired replicas.
jq -r 'select(.name == "kube_deployment_spec_replicas") | .value' "$T/msgs.json" | sort -u >"$T/replicas.txt"
grep -qx 2 "$T/replicas.txt" && grep -qx 4 "$T/replicas.txt" \
    || fail "desired replicas on the topic: $(tr '\n' ' ' <"$T/replicas.txt"), want 2 then 4"

METRICS=$(awk '$1 == "own" && $2 == "metrics" {print $3}' "$T/run.log")
curl -sf "$METRICS" | grep -q '^ndtpipe_scrapes_total{job="testbed"' || fail "own metrics not served at '$METRICS'"

kill -INT "$RUN_PID"
wait "$RUN_PID"
rc=$?
[ $rc -eq 0 ] || fail "run exited $rc on SIGINT"
grep -q 'msg=stopped' "$T/run.log" || fail "no clean stop in the log"
echo ok
