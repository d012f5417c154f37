#!/bin/bash
# ndtpipe serve over the InfluxDB 1.x UDR (Debian's influxd) gives the same
# answers as over SQLite: the same twin written to both backends through
# udr_tool, one server on each, and every what-if, prediction and entity
# listing compared.  What-ifs are compared exactly: the same state row and
# the same model give the same bits, whichever backend the row came from.
. "$(dirname "$0")/lib.sh"
need influxd jq curl
udr_tool=$(dirname "$NDTPIPE")/tools/udr_tool
[ -x "$udr_tool" ] || fail "missing $udr_tool (make)"

nice -n 19 "$NDTPIPE" testbed campaign --users 200,400,600 --pods 1-6 --dwell 20s --seed 3 \
    --out "$T/d.csv" 2>/dev/null || fail "campaign"
nice -n 19 "$NDTPIPE" train --data "$T/d.csv" --model xgboost --train users=200,400 --test users=600 \
    --registry "$T/reg" --json --rounds 100 --depth 4 --eta 0.3 --threads 2 --seed 7 \
    >"$T/m.json" 2>"$T/train.log" || fail "train: $(cat "$T/train.log")"
id=$(jq -r .model_id "$T/m.json")
"$NDTPIPE" validate --registry "$T/reg" --model "$id" --data "$T/d.csv" >/dev/null 2>"$T/validate.log" \
    || fail "validate: $(cat "$T/validate.log")"

start_influxd
curl -sf -XPOST "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode "q=CREATE DATABASE ndt" >/dev/null ||
    fail "CREATE DATABASE failed"

# The same twin for both backends: two services this time (so "service"
# is required), pods with their relationships, observed now.
now=$(date +%s%3N)
{
    for s in a b; do
        users=$([ $s = a ] && echo 400 || echo 200)
        echo "p Service urn:ngsi-ld:Service:ndt.$s $now currentUsers=$users desiredReplicas=3 readyReplicas=3"
        for i in 0 1 2; do
            pod=urn:ngsi-ld:ServiceComponent:ndt.$s-$i
            echo "p ServiceComponent $pod $now avgDepthOnEnqueue=$((i + 5)).5 avgBacklogEstimate=0.2$i processCpuUsage=22$i systemCpuUsage=44 systemMemoryUsage=14 avgInferenceTime=30$i"
            echo "r $pod service urn:ngsi-ld:Service:ndt.$s $((now - 60000))"
        done
    done
    echo quit
} >"$T/twin.cmds"
"$udr_tool" "sqlite:$T/udr.db" <"$T/twin.cmds" >"$T/sqlite.log" 2>&1 && grep -q '^closed rc=0' "$T/sqlite.log" \
    || fail "udr_tool sqlite: $(cat "$T/sqlite.log")"
# 8 points and 6 relationship changes (points of ndt_relationship there).
"$udr_tool" "influx:http://127.0.0.1:$INFLUX_HTTP/ndt" <"$T/twin.cmds" >"$T/influx.log" 2>&1 &&
    grep -q '^closed rc=0 written=8 sent=14 spooled=0' "$T/influx.log" || fail "udr_tool influx: $(cat "$T/influx.log")"

P1=$(free_port); P2=$(free_port)
bg serve-sqlite "$NDTPIPE" serve --registry "$T/reg" --udr "sqlite:$T/udr.db" --listen "127.0.0.1:$P1"
bg serve-influx "$NDTPIPE" serve --registry "$T/reg" --udr "influx:http://127.0.0.1:$INFLUX_HTTP/ndt" --listen "127.0.0.1:$P2"
wait_port "$P1" && wait_port "$P2" || fail "serve did not start: $(cat "$T/serve-sqlite.log" "$T/serve-influx.log")"
for p in $P1 $P2; do
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$p/readyz" | jq -e '.services == 2' >/dev/null || fail "port $p not ready: $(curl -s "http://127.0.0.1:$p/readyz")"
done

post() { curl -s -X POST -d "$2" "http://127.0.0.1:$1$3"; }
n=0
for body in '{"service":"ndt.a","change":{"pods":"+1"}}' '{"service":"ndt.a","change":{"pods":"-1"}}' \
            '{"service":"urn:ngsi-ld:Service:ndt.b","change":{"users":600}}' '{"service":"ndt.b","change":{"pods":6,"users":300}}'; do
    a=$(post "$P1" "$body" /v1/whatif); b=$(post "$P2" "$body" /v1/whatif)
    jq -e '.baseline_ms > 0' <<<"$a" >/dev/null || fail "sqlite what-if $body: $a"
    [ "$(jq -c 'del(.state_at)' <<<"$a")" = "$(jq -c 'del(.state_at)' <<<"$b")" ] \
        || fail "what-if $body differs: sqlite $a, influx $b"
    n=$((n + 1))
done
note "$n what-ifs identical over SQLite and InfluxDB"
a=$(post "$P2" '{"change":{"pods":"+1"}}' /v1/whatif)
jq -e '.error == "service-required" and (.detail | test("2 services"))' <<<"$a" >/dev/null || fail "two services, none named: $a"
a=$(post "$P1" '{"service":"ndt.a","state":{"users":500}}' /v1/predict); b=$(post "$P2" '{"service":"ndt.a","state":{"users":500}}' /v1/predict)
[ "$(jq -c 'del(.state_at)' <<<"$a")" = "$(jq -c 'del(.state_at)' <<<"$b")" ] || fail "predict differs: $a vs $b"

# Entities and the graph: the same content (order aside).
norm='sort_by(.id) | map(with_entries(select(.key != "@context")))'
for t in Service ServiceComponent; do
    a=$(curl -s "http://127.0.0.1:$P1/ngsi-ld/v1/entities?type=$t&options=keyValues" | jq -cS "$norm")
    b=$(curl -s "http://127.0.0.1:$P2/ngsi-ld/v1/entities?type=$t&options=keyValues" | jq -cS "$norm")
    [ "$a" = "$b" ] && [ "$(jq length <<<"$a")" -gt 1 ] || fail "$t entities differ: sqlite $a, influx $b"
done
a=$(curl -s "http://127.0.0.1:$P2/ngsi-ld/v1/entities/urn:ngsi-ld:ServiceComponent:ndt.b-2")
jq -e '.service.object == "urn:ngsi-ld:Service:ndt.b" and .avgInferenceTime.value == 302 and .avgInferenceTime.unitCode == "C26"' \
    <<<"$a" >/dev/null || fail "influx entity: $a"
a=$(curl -s "http://127.0.0.1:$P1/v1/graph" | jq -cS '.relationships | map(del(.validFrom)) | sort_by(.subject)')
b=$(curl -s "http://127.0.0.1:$P2/v1/graph" | jq -cS '.relationships | map(del(.validFrom)) | sort_by(.subject)')
[ "$a" = "$b" ] && [ "$(jq length <<<"$a")" -eq 6 ] || fail "graphs differ: sqlite $a, influx $b"
exit 0
