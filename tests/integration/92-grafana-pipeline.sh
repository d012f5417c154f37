#!/bin/bash
# The Grafana dashboards against an InfluxDB filled by the pipeline itself
# (test 90 fills it through the UDR library as the harmonizer writes):
# testbed -> scrape -> broker -> harmonize -> influxd for ~20 s with a
# scale-up, a change of load and the loss of the source, then every panel, variable and annotation
# query of deploy/grafana runs against it through test 90's checks
# (NDT_GRAFANA_INFLUX) and must return data.
. "$(dirname "$0")/lib.sh"
need influxd curl jq python3 kcat
root=$(cd "$(dirname "$0")/../.." && pwd)

start_influxd
curl -sf -XPOST "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode "q=CREATE DATABASE ndt" >/dev/null ||
    fail "CREATE DATABASE failed"
start_broker
TB=$(free_port)
bg testbed "$NDTPIPE" testbed --listen "127.0.0.1:$TB" --users 200 --pods 3 --seed 4
TESTBED_PID=$BG_PID
wait_port "$TB" 10 || fail "testbed did not listen"
printf 'global:\n  scrape_interval: 100ms\nscrape_configs:\n  - job_name: testbed\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$TB" >"$T/scrape.yml"
bg scrape "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS"
bg harmonize "$NDTPIPE" harmonize --brokers "$BROKERS" --udr "influx:http://127.0.0.1:$INFLUX_HTTP/ndt" \
    --mapping "$root/sdm-schemas/mapping/testbed.yaml" -o spool_dir="$T/spool" -X session.timeout.ms=6000
HARMONIZE_PID=$BG_PID
sleep 8
curl -sf -XPOST -d '{"pods":4}' "http://127.0.0.1:$TB/control" >/dev/null || fail "POST /control"
sleep 6
curl -sf -XPOST -d '{"users":400}' "http://127.0.0.1:$TB/control" >/dev/null || fail "POST /control"
sleep 6
n=$(curl -sf -G "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode db=ndt \
    --data-urlencode 'q=SELECT count(currentUsers) FROM Service' | jq '.results[0].series[0].values[0][1] // 0')
[ "$n" -gt 50 ] || fail "the pipeline wrote only $n Service points (harmonize log: $(tail -n 3 "$T/harmonize.log"))"
# The panels that count entities out of sync (or transitions into it).
DOWN_PANELS='^panel (Sources down|Entities outOfSync|State transitions) '
queries() { # env...: test 90's query checks against this influxd
    env NDT_GRAFANA_INFLUX="http://127.0.0.1:$INFLUX_HTTP" NDT_GRAFANA_DB=ndt "$@" \
        bash "$(dirname "$0")/90-grafana-queries.sh" >"$T/queries.log" 2>&1 \
        || { tail -n 30 "$T/queries.log" >&2; fail "dashboard queries against the pipeline's data"; }
    tail -n 1 "$T/queries.log"
}
# While the source is up nothing is out of sync: the panels counting that
# state may be empty, and so may "Entities bound": an entity is bound only
# until its second observation, so in a steady state none is (test 90's
# crafted data covers it).
queries NDT_GRAFANA_EMPTY_OK="$DOWN_PANELS|^panel Entities bound "
# The source goes away, as on a real testbed when a node is lost: now the
# twin-state panel has entities out of sync to count.
kill -TERM "$TESTBED_PID"; wait "$TESTBED_PID" 2>/dev/null
for _ in $(seq 1 50); do
    curl -sf -G "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode db=ndt \
        --data-urlencode "q=SELECT count(twinState) FROM Service WHERE twinState = 'outOfSync'" |
        jq -e '.results[0].series[0].values[0][1] > 0' >/dev/null 2>&1 && break
    sleep 0.2
done
queries NDT_GRAFANA_ONLY="$DOWN_PANELS"
