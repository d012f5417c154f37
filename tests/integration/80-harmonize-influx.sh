#!/bin/bash
# The whole HDL path against real peers: testbed -> scrape -> broker ->
# harmonize -> InfluxDB 1.x (Debian's influxd).  The users and pods the
# testbed has arrive as entity attributes and follow a /control change;
# every fragment published on ndt.sdm.entities validates against its
# type's JSON Schema with an independent validator (python3-jsonschema)
# and its relationships point to published entities; the relationships
# are stored with their validity; the stage's /metrics passes promtool;
# when the testbed goes away its entities go out of sync (twin state,
# counted); SIGTERM exits 0; `ndtpipe export` reads the dataset back from
# InfluxDB with one row per successful scrape, carrying the testbed's users
# and pods before and after the change.  Request bodies go uncompressed
# here (content_encoding=identity); 81 writes the default gzip ones.
. "$(dirname "$0")/lib.sh"
need influxd curl jq kcat python3 promtool
python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema missing (make deps)"
root=$(cd "$(dirname "$0")/../.." && pwd)

influxql() { # QUERY: the first value of the first series, or null
    curl -sf -G "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode "db=ndt" \
        --data-urlencode "epoch=ms" --data-urlencode "q=$1" |
        jq -c '.results[0].series[0].values[0][1] // null'
}
# wait_for QUERY VALUE SECONDS: until the query answers VALUE.
wait_for() {
    local i got
    for i in $(seq 1 $(($3 * 5))); do
        got=$(influxql "$1")
        [ "$got" = "$2" ] && return 0
        sleep 0.2
    done
    fail "$1 answers $got, expected $2 (harmonize log: $(tail -n 5 "$T/harmonize.log"))"
}

start_influxd
curl -sf -XPOST "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode "q=CREATE DATABASE ndt" >/dev/null ||
    fail "CREATE DATABASE failed"
start_broker
TB=$(free_port)
bg testbed "$NDTPIPE" testbed --listen "127.0.0.1:$TB" --users 200 --pods 3 --seed 5
TESTBED_PID=$BG_PID
wait_port "$TB" 10 || fail "testbed did not listen"
printf 'global:\n  scrape_interval: 100ms\nscrape_configs:\n  - job_name: testbed\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$TB" >"$T/scrape.yml"
bg scrape "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS" --stats-file "$T/scrape-stats.json"
SCRAPE_PID=$BG_PID
WEB=$(free_port)
bg harmonize "$NDTPIPE" harmonize --brokers "$BROKERS" --udr "influx:http://127.0.0.1:$INFLUX_HTTP/ndt" \
    --mapping "$root/sdm-schemas/mapping/testbed.yaml" -o spool_dir="$T/spool" -o content_encoding=identity \
    -X session.timeout.ms=6000 --web.listen-address "127.0.0.1:$WEB" --log-level debug
HARMONIZE_PID=$BG_PID

wait_for 'SELECT last(currentUsers) FROM Service' 200 40
wait_for 'SELECT last(desiredReplicas) FROM Service' 3 10
pods=$(curl -sf -G "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode db=ndt \
       --data-urlencode 'q=SHOW TAG VALUES FROM ServiceComponent WITH KEY = "id"' | jq '.results[0].series[0].values | length')
[ "$pods" = 3 ] || fail "$pods pods in InfluxDB, the testbed has 3"

note "scaling the testbed to 300 users and 4 pods"
curl -sf -XPOST -d '{"users":300,"pods":4}' "http://127.0.0.1:$TB/control" >/dev/null || fail "POST /control"
wait_for 'SELECT last(currentUsers) FROM Service' 300 20
wait_for 'SELECT last(desiredReplicas) FROM Service' 4 20
for _ in $(seq 1 100); do
    pods=$(curl -sf -G "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode db=ndt \
           --data-urlencode 'q=SHOW TAG VALUES FROM ServiceComponent WITH KEY = "id"' | jq '.results[0].series[0].values | length')
    [ "$pods" = 4 ] && break
    sleep 0.2
done
[ "$pods" = 4 ] || fail "$pods pods in InfluxDB after scaling to 4"
hosted=$(influxql "SELECT count(object) FROM ndt_relationship WHERE predicate = 'infrastructureElement' AND subject =~ /ServiceComponent/")
[ "$hosted" -ge 4 ] || fail "$hosted isHostedBy relationships stored, expected one per pod (4)"
chain=$(influxql "SELECT last(object) FROM ndt_relationship WHERE predicate = 'functionChain_1'")
[ "$chain" = '"urn:ngsi-ld:NetworkFunction:ndt.image-classifier"' ] || fail "functionChain_1 is $chain"
state=$(influxql "SELECT last(twinState) FROM Service")
[ "$state" = '"synchronized"' ] || [ "$state" = '"bound"' ] || fail "the service's twin state is $state"

kcat -C -b "$BROKERS" -t ndt.sdm.entities -e -q -f '%s\n' >"$T/entities.jsonl" 2>"$T/kcat.err" ||
    fail "kcat could not read ndt.sdm.entities: $(cat "$T/kcat.err")"
python3 "$root/tests/integration/helpers/check_entities.py" "$root/sdm-schemas" "$T/entities.jsonl" \
    ServiceComponent=4 InfrastructureElement=2 Service=1 VirtualComputeElement=4 \
    NetworkFunction=1 NetworkService=1 || fail "published entities do not validate (above)"
# Keyed by entity id.
kcat -C -b "$BROKERS" -t ndt.sdm.entities -e -q -c 20 -f '%k %s\n' |
    while read -r key value; do
        [ "$key" = "$(echo "$value" | jq -r .id)" ] || fail "message keyed $key carries $(echo "$value" | jq -r .id)"
    done || exit 1

curl -sf "http://127.0.0.1:$WEB/metrics" >"$T/metrics.txt" || fail "GET /metrics"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 ||
    { cat "$T/promtool.out" >&2; fail "promtool check metrics failed"; }
grep -q '^ndtpipe_harmonize_twin_transitions_total{from="unbound",to="bound"} [1-9]' "$T/metrics.txt" ||
    fail "no unbound -> bound transition counted"
grep -q '^ndtpipe_harmonize_commits_total [1-9]' "$T/metrics.txt" || fail "no offset commit counted"

note "the testbed goes away: its entities go out of sync"
kill -TERM "$TESTBED_PID"; wait "$TESTBED_PID" 2>/dev/null
wait_for 'SELECT last(twinState) FROM Service' '"outOfSync"' 20
wait_for "SELECT last(twinState) FROM ServiceComponent WHERE id = '$(jq -r 'select(.type == "ServiceComponent") | .id' "$T/entities.jsonl" | head -n 1)'" '"outOfSync"' 10
curl -sf "http://127.0.0.1:$WEB/metrics" >"$T/metrics2.txt" || fail "GET /metrics"
grep -q '^ndtpipe_harmonize_twin_transitions_total{from="synchronized",to="outOfSync"} [1-9]' "$T/metrics2.txt" ||
    fail "synchronized -> outOfSync not counted"

# The dataset read back: stop the scraper, let harmonize drain and commit,
# then export everything from InfluxDB.
kill -TERM "$SCRAPE_PID"
wait "$SCRAPE_PID" || fail "scrape exited $? on SIGTERM"
sleep 1
kill -TERM "$HARMONIZE_PID"
wait "$HARMONIZE_PID"
rc=$?
[ "$rc" = 0 ] || fail "harmonize exited $rc on SIGTERM"
grep -q 'msg=stopped' "$T/harmonize.log" || fail "no clean stop logged"
"$NDTPIPE" export --udr "influx:http://127.0.0.1:$INFLUX_HTTP/ndt" --from 0 --to now \
    --out "$T/dataset.csv" || fail "export failed"
ok_scrapes=$(jq '.scrapes - .scrape_failures' "$T/scrape-stats.json")
rows=$(($(wc -l <"$T/dataset.csv") - 1))
note "export: $rows rows for $ok_scrapes successful scrapes"
# One row per successful scrape; the very first scrape has no rate yet
# (CPU from counters), so it may yield no complete row.
[ "$rows" -ge $((ok_scrapes - 1)) ] && [ "$rows" -le "$ok_scrapes" ] ||
    fail "export has $rows rows for $ok_scrapes successful scrapes"
cut -d, -f1 "$T/dataset.csv" | tail -n +2 | sort | uniq -d | grep -q . && fail "duplicate timestamps in the export"
# users,pods in order: 200,3 then 300,4 (the scale-up's transient may show
# 300 users on 3 pods while the Deployment rolls out), nothing else.
cut -d, -f2,3 "$T/dataset.csv" | tail -n +2 | uniq >"$T/regimes.txt"
head -n 1 "$T/regimes.txt" | grep -qx '200,3' || fail "export starts at $(head -n 1 "$T/regimes.txt"), not 200,3"
tail -n 1 "$T/regimes.txt" | grep -qx '300,4' || fail "export ends at $(tail -n 1 "$T/regimes.txt"), not 300,4"
grep -vqx -e '200,3' -e '300,3' -e '200,4' -e '300,4' "$T/regimes.txt" &&
    fail "export holds regimes the testbed never had: $(tr '\n' ' ' <"$T/regimes.txt")"
echo "ok: $(wc -l <"$T/entities.jsonl") fragments validated, $rows rows exported"
