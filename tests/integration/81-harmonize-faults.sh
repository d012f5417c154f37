#!/bin/bash
# harmonize under faults, exact counts: testbed -> scrape (line protocol on
# Kafka) -> harmonize -> influxd.  influxd is killed mid-run and restarted
# (the UDR spools, the stage goes on, nothing is lost); harmonize is killed
# with -9 while its UDR write hangs, and restarted (offsets are committed
# only after the UDR flushed: the batch is consumed again, nothing is lost,
# and the replay rewrites the same points: no duplicate);
# garbage on the input topic lands in the dead-letter topic with its
# reason and the stage keeps going.  At the end InfluxDB holds exactly one
# currentUsers point per scrape that reached Kafka.
. "$(dirname "$0")/lib.sh"
need influxd curl jq kcat
root=$(cd "$(dirname "$0")/../.." && pwd)

influxql() { # QUERY: the first value of the first series, or null
    curl -sf -G "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode "db=ndt" \
        --data-urlencode "epoch=ms" --data-urlencode "q=$1" |
        jq -c '.results[0].series[0].values[0][1] // null'
}
stored() { influxql 'SELECT count(currentUsers) FROM Service'; }
# Scrapes that reached Kafka: one inference_current_users line each.
scrapes() {
    kcat -C -b "$BROKERS" -t ndt.telemetry.raw -e -q -f '%s\n' 2>/dev/null |
        grep -c '^inference_current_users[, ]'
}
harmonize() { # NAME: starts the stage (same group, same spool every time)
    bg "$1" "$NDTPIPE" harmonize --brokers "$BROKERS" --udr "influx:http://127.0.0.1:$INFLUX_HTTP/ndt" \
        --mapping "$root/sdm-schemas/mapping/testbed.yaml" -o spool_dir="$T/spool" \
        -X session.timeout.ms=6000 --web.listen-address "127.0.0.1:$WEB"
    HARMONIZE_PID=$BG_PID
}
grows() { # SECONDS: waits until the stored count grows
    local before after i
    before=$(stored)
    for i in $(seq 1 $(($1 * 5))); do
        after=$(stored)
        [ "$after" != null ] && { [ "$before" = null ] || [ "$after" -gt "$before" ]; } && return 0
        sleep 0.2
    done
    fail "InfluxDB stopped growing at $before points (harmonize log: $(tail -n 3 "$T"/h*.log))"
}

start_influxd
curl -sf -XPOST "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode "q=CREATE DATABASE ndt" >/dev/null ||
    fail "CREATE DATABASE failed"
start_broker
TB=$(free_port)
bg testbed "$NDTPIPE" testbed --listen "127.0.0.1:$TB" --users 200 --pods 3 --seed 9
wait_port "$TB" 10 || fail "testbed did not listen"
printf 'global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\nscrape_configs:\n  - job_name: testbed\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$TB" >"$T/scrape.yml"
bg scrape "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS" --format influx
SCRAPE_PID=$BG_PID
WEB=$(free_port)
harmonize h1
grows 30

note "influxd killed mid-run"
kill -KILL "$INFLUXD_PID"; wait "$INFLUXD_PID" 2>/dev/null
sleep 3
grep -q 'ndtpipe_harmonize_udr_points_spooled_total [1-9]' <(curl -sf "http://127.0.0.1:$WEB/metrics") ||
    fail "nothing spooled while influxd was down"
start_influxd 2
for _ in $(seq 1 150); do
    grep -q 'spool replayed' "$T/h1.log" && break
    sleep 0.2
done
grep -q 'spool replayed' "$T/h1.log" || fail "the spool was not replayed after influxd came back"
grows 20

note "harmonize killed with -9 in the middle of a UDR write (influxd stopped)"
# With influxd stopped (SIGSTOP) the stage's next udr_flush() hangs in its
# HTTP request, so the batch it holds cannot have been committed: the kill
# lands between consuming and committing.  The request may still complete
# when influxd resumes; the replay then writes the same points again.
kill -STOP "$INFLUXD_PID"
sleep 1.5
kill -KILL "$HARMONIZE_PID"; wait "$HARMONIZE_PID" 2>/dev/null
kill -CONT "$INFLUXD_PID"
[ "$(grep -c 'spooling to disk' "$T/h1.log")" = 1 ] ||
    fail "the stage spooled instead of hanging in its write"
harmonize h2
grows 40

note "garbage on the input topic"
printf 'this is not telemetry\n' | kcat -P -b "$BROKERS" -t ndt.telemetry.raw -k garbage || fail "kcat -P"
printf '{"name":"up","value":' | kcat -P -b "$BROKERS" -t ndt.telemetry.raw -k garbage || fail "kcat -P"
for _ in $(seq 1 100); do
    n=$(kcat -C -b "$BROKERS" -t ndt.telemetry.raw.dlq -e -q -f 'x\n' 2>/dev/null | grep -c x)
    [ "$n" -ge 2 ] && break
    sleep 0.2
done
[ "$n" = 2 ] || fail "$n messages in the dead-letter topic, expected 2"
kcat -C -b "$BROKERS" -t ndt.telemetry.raw.dlq -e -q -f '%k|%h|%s\n' >"$T/dlq.txt" 2>/dev/null
grep -q '^garbage|ndt.error=influx: .*ndt.source.topic=ndt.telemetry.raw,.*|this is not telemetry$' "$T/dlq.txt" ||
    fail "dead letter without its reason: $(cat "$T/dlq.txt")"
grep -q '^garbage|ndt.error=json: .*|{"name":"up","value":$' "$T/dlq.txt" ||
    fail "malformed JSON not dead-lettered with a reason: $(cat "$T/dlq.txt")"
grows 20 # the stage went on

note "stopping the scraper; every scrape must arrive exactly once"
kill -TERM "$SCRAPE_PID"; wait "$SCRAPE_PID"
want=$(scrapes)
[ "$want" -gt 20 ] || fail "only $want scrapes reached Kafka"
for _ in $(seq 1 150); do
    got=$(stored)
    [ "$got" = "$want" ] && break
    sleep 0.2
done
[ "$got" = "$want" ] || fail "InfluxDB holds $got currentUsers points for $want scrapes"
grep -q '^ndtpipe_harmonize_dead_letters_total 2$' <(curl -sf "http://127.0.0.1:$WEB/metrics") ||
    fail "dead letters not counted"
kill -TERM "$HARMONIZE_PID"; wait "$HARMONIZE_PID" || fail "harmonize exited $? on SIGTERM"
echo "ok: $want scrapes, $got points, 2 dead letters"
