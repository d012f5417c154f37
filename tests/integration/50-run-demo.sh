#!/bin/bash
# `ndtpipe run --demo` (what `make run` starts), the whole pipeline in one
# process, checked from outside with independent clients:
#  - with an empty data directory it bootstraps a model (campaign, train,
#    validate) and /readyz turns 200 within a minute;
#  - the banner's Kafka bootstrap works for kcat: telemetry on
#    ndt.telemetry.raw, NGSI-LD entities on ndt.sdm.entities (the Service
#    with the testbed's users), windows on ndt.features;
#  - the banner's API answers a what-if: pods +1 gives a delta at or below
#    zero and pods -1 a larger one; /metrics holds every stage's families
#    and passes promtool;
#  - the testbed's /control changes the cluster and the twin follows (the
#    entities' desiredReplicas, the what-if's starting state);
#  - SIGINT stops everything with exit 0; a second start reuses the
#    registered model (no bootstrap), a start on a registry of an older
#    feature spec bootstraps a new one;
#  - actuation (--objective-ms): recommendations on ndt.actions and /v1/scale.
. "$(dirname "$0")/lib.sh"
need kcat jq curl promtool

API_PORT=$(free_port)
start_run() { # name
    bg "$1" "$NDTPIPE" run --demo --users 600 --pods 4 --data-dir "$T/data" \
        --listen "127.0.0.1:$API_PORT" --objective-ms 200
    RUN_PID=$BG_PID
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$API_PORT/readyz" >/dev/null && return 0
        kill -0 "$RUN_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$T/$1.log" >&2
    fail "/readyz did not turn 200 within 60 s"
}
stop_run() { # name
    kill -INT "$RUN_PID"
    wait "$RUN_PID"
    local rc=$?
    [ $rc -eq 0 ] || { tail -20 "$T/$1.log" >&2; fail "run exited $rc on SIGINT"; }
    grep -q 'stage=run msg=stopped' "$T/$1.log" || fail "no clean stop in the log"
}

start_run run
grep -q 'bootstrap 3/3' "$T/run.log" || fail "an empty registry did not bootstrap a model"
API=http://127.0.0.1:$API_PORT
grep -q "what-if API      $API" "$T/run.log" || fail "the banner lacks the API address"
BOOTSTRAP=$(awk '$1 == "kafka" && $2 == "bootstrap" {print $3}' "$T/run.log")
TESTBED=$(grep -o 'http://127.0.0.1:[0-9]*/metrics' "$T/run.log" | head -1)
[ -n "$BOOTSTRAP" ] && [ -n "$TESTBED" ] || fail "banner lacks the addresses: $(cat "$T/run.log")"

# What-ifs: adding a pod cannot make latency worse; removing one costs more.
sleep 2
plus=$(curl -sf -d '{"change":{"pods":"+1"}}' "$API/v1/whatif") || fail "what-if pods +1 failed"
minus=$(curl -sf -d '{"change":{"pods":"-1"}}' "$API/v1/whatif") || fail "what-if pods -1 failed"
note "pods +1: $(echo "$plus" | jq -c '{baseline_ms, delta_ms, deployment_grade}')"
note "pods -1: $(echo "$minus" | jq -c '{baseline_ms, delta_ms}')"
jq -n --argjson p "$plus" --argjson m "$minus" -e \
    '$p.delta_ms <= 0 and $m.delta_ms > $p.delta_ms and $p.state.pods == 4 and
     ($p.deployment_grade == "Excellent" or $p.deployment_grade == "Reliable")' >/dev/null \
    || fail "what-ifs: $plus / $minus"

# Every stage's families on one /metrics, clean for promtool.
curl -sf "$API/metrics" >"$T/metrics.txt" || fail "GET /metrics failed"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 \
    || { cat "$T/promtool.out" >&2; fail "promtool check metrics failed"; }
for family in process_cpu_seconds_total ndtpipe_scrapes_total ndtpipe_harmonize_samples_total \
    ndtpipe_features_windows_published_total ndtpipe_api_requests_total; do
    grep -q "^$family" "$T/metrics.txt" || fail "/metrics lacks $family"
done

# Scale the testbed; the twin follows.
curl -sf -X POST -d '{"pods":5}' "${TESTBED%/metrics}/control" >/dev/null || fail "POST /control failed"
for _ in $(seq 1 100); do
    [ "$(curl -sf -d '{"change":{"pods":"+1"}}' "$API/v1/whatif" | jq .state.pods)" = 5 ] && break
    sleep 0.2
done
[ "$(curl -sf -d '{"change":{"pods":"+1"}}' "$API/v1/whatif" | jq .state.pods)" = 5 ] \
    || fail "the what-if's state did not follow the scale-up"

kcat -b "$BOOTSTRAP" -C -t ndt.telemetry.raw -o beginning -e -q -c 200 >"$T/raw.bin" \
    || fail "kcat could not read ndt.telemetry.raw"
[ -s "$T/raw.bin" ] || fail "nothing on ndt.telemetry.raw"
kcat -b "$BOOTSTRAP" -C -t ndt.sdm.entities -o beginning -e -q >"$T/entities.json" \
    || fail "kcat could not read ndt.sdm.entities"
# (A Service's first fragment may carry only its relationships.)
jq -e -s 'map(select(.type == "Service" and .currentUsers)) | length > 0 and
          (map(.currentUsers.value) | unique == [600]) and
          (map(.desiredReplicas.value) | unique | index(5) != null)' \
    "$T/entities.json" >/dev/null || fail "the Service entities do not carry the testbed's users and the scale-up"
kcat -b "$BOOTSTRAP" -C -t ndt.features -o beginning -e -q >"$T/features.json" \
    || fail "kcat could not read ndt.features"
jq -e -s 'length > 0 and all(.regime.users == 600) and (map(.regime.pods) | index(4) != null)' \
    "$T/features.json" >/dev/null || fail "ndt.features: $(head -c 300 "$T/features.json")"
# Actuation (--objective-ms): recommendations on run's own broker, keyed
# by the service, and the same number for KEDA (docs/API.md).
for _ in $(seq 1 100); do
    kcat -b "$BOOTSTRAP" -C -t ndt.actions -o beginning -e -q -f '%k\t%s\n' >"$T/actions.tsv" 2>/dev/null
    [ -s "$T/actions.tsv" ] && break
    sleep 0.1
done
svc=$(tail -n 1 "$T/actions.tsv" | cut -f1)
case "$svc" in urn:ngsi-ld:Service:*) ;; *) fail "ndt.actions: $(head -c 300 "$T/actions.tsv")" ;; esac
tail -n 1 "$T/actions.tsv" | cut -f2- | jq -e --arg s "$svc" '.service == $s and .objective_ms == 200
    and .recommended_replicas >= 1 and .recommended_replicas <= 10 and (.deployment_grade == "Excellent"
    or .deployment_grade == "Reliable")' >/dev/null || fail "ndt.actions: $(tail -n 1 "$T/actions.tsv")"
curl -sf "$API/v1/scale/$svc" | jq -e '.replicas >= 1 and .replicas <= 10' >/dev/null || fail "/v1/scale/$svc"
stop_run run

# A second start serves the registered model without training again.
start_run again
grep -q 'serving the newest gated model' "$T/again.log" || fail "the second start bootstrapped again"
stop_run again

# A registry kept from an older feature spec (docs/FEATURES.md, v1) holds a
# gated model this build cannot load: run trains a new one beside it and
# serves that, rather than starting without a servable model.
old=$(ls "$T/data/registry")
[ "$(echo "$old" | wc -l)" -eq 1 ] || fail "registry: $old"
jq '.features.spec |= sub("^ndt-features-v2:(?<a>[^;]*),queue_delay_ms;"; "ndt-features-v1:\(.a);")' \
    "$T/data/registry/$old/model.json" >"$T/v1.json" && mv "$T/v1.json" "$T/data/registry/$old/model.json"
jq -e '.features.spec | startswith("ndt-features-v1:")' "$T/data/registry/$old/model.json" >/dev/null \
    || fail "could not age the model's spec"
start_run old
grep -q 'bootstrap 3/3' "$T/old.log" || fail "a registry of an older feature spec did not bootstrap a model"
curl -sf "$API/v1/models" | jq -e --arg old "$old" '.served != null and .served != $old' >/dev/null \
    || fail "served: $(curl -s "$API/v1/models" | jq -c .served)"
stop_run old
echo ok
