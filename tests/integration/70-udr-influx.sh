#!/bin/bash
# The UDR's InfluxDB 1.x backend against a real influxd (Debian's 1.6.7):
# points written through the library read back exactly with InfluxQL and
# through the library's own reads; influxd killed mid-stream and restarted:
# the points written meanwhile wait in the on-disk spool and arrive exactly
# once and in order (a point rewritten later during the outage keeps the
# later value); credentials never reach the logs.
. "$(dirname "$0")/lib.sh"
need influxd curl jq
TOOL=$(dirname "$NDTPIPE")/tools/udr_tool
[ -x "$TOOL" ] || fail "$TOOL not built (make)"

influxql() { # QUERY: prints the JSON answer
    curl -sf -G "http://127.0.0.1:$HTTP/query" --data-urlencode "db=ndt" \
        --data-urlencode "epoch=ms" --data-urlencode "q=$1"
}
start_influxd 1
HTTP=$INFLUX_HTTP
curl -sf -XPOST "http://127.0.0.1:$HTTP/query" --data-urlencode "q=CREATE DATABASE ndt" >/dev/null ||
    fail "CREATE DATABASE failed"

# The driver reads commands from a fifo so that the test can interleave
# writes with stopping and starting the server.
mkfifo "$T/cmd"
export INFLUX_USERNAME=ndt INFLUX_PASSWORD=s3cret-pw-never-logged
bg writer "$TOOL" --input "$T/cmd" --spool "$T/spool" --retries 1 "influx:http://127.0.0.1:$HTTP/ndt"
WRITER_PID=$BG_PID
exec 3>"$T/cmd"
# phase FIRST_TS: 100 points of three pods, users = ts, cpu = ts / 4.
phase() {
    local ts
    for ts in $(seq "$1" $(($1 + 99))); do
        echo "p ServiceComponent urn:ngsi-ld:ServiceComponent:pod-$((ts % 3)) $ts users=$ts cpu=$(echo "scale=2; $ts / 4" | bc) phase=s:$2"
    done >&3
}
command -v bc >/dev/null || need bc

phase 1000000 a
udr_flush
echo "$out" | grep -q 'rc=0 written=100 sent=100 spooled=0' || fail "first flush: $out"
n=$(influxql 'SELECT count("users") FROM ServiceComponent' | jq '.results[0].series[0].values[0][1]')
[ "$n" = 100 ] || fail "after the first phase InfluxDB has $n points, not 100"
# Exact points, one of them in full.
got=$(influxql "SELECT * FROM ServiceComponent WHERE time = 1000042ms" |
      jq -c '.results[0].series[0] | [.columns, .values]')
[ "$got" = '[["time","cpu","id","phase","users"],[[1000042,250010.5,"urn:ngsi-ld:ServiceComponent:pod-1","a",1000042]]]' ] ||
    fail "point 1000042 reads back as $got"

note "killing influxd mid-stream"
kill -KILL "$INFLUXD_PID"; wait "$INFLUXD_PID" 2>/dev/null
phase 2000000 b
udr_flush
echo "$out" | grep -q 'rc=0 written=200 sent=100 spooled=100' || fail "flush during the outage: $out"
# A second outage batch rewrites ten points of the first: replay in order
# must leave the later values.
for ts in $(seq 2000000 2000009); do
    echo "p ServiceComponent urn:ngsi-ld:ServiceComponent:pod-$((ts % 3)) $ts users=-$ts cpu=0 phase=s:b2"
done >&3
udr_flush
echo "$out" | grep -q 'spooled=110 replayed=0 dropped=0' || fail "second flush during the outage: $out"
[ -s "$T/spool/spool.lp" ] || fail "no spool file on disk"

note "restarting influxd"
start_influxd 2
phase 3000000 c
udr_flush
echo "$out" | grep -q 'rc=0 written=310 sent=310 spooled=110 replayed=110 dropped=0' ||
    fail "flush after the restart: $out"
[ -s "$T/spool/spool.lp" ] && fail "spool not emptied after the replay"

# A pipelined flush: the next batch is written while the first is in
# flight; once its ticket is done the first 100 points are stored, and
# a flush stores the rest.
phase 4000000 p
echo start >&3
for _ in $(seq 1 200); do grep -q '^started' "$T/writer.log" && break; sleep 0.05; done
ticket=$(sed -n 's/^started rc=0 ticket=\([0-9]*\)$/\1/p' "$T/writer.log" | tail -n 1)
[ -n "$ticket" ] || fail "flush_start: $(grep '^started' "$T/writer.log")"
phase 4000100 q
echo "done $ticket" >&3
for _ in $(seq 1 200); do grep -q '^done' "$T/writer.log" && break; sleep 0.05; done
grep -q '^done rc=0 written=510 sent=410' "$T/writer.log" || fail "flush_done: $(grep '^done' "$T/writer.log")"
n=$(influxql 'SELECT count("users") FROM ServiceComponent WHERE time >= 4000000ms' |
    jq '.results[0].series[0].values[0][1]')
[ "$n" = 100 ] || fail "after flush_done InfluxDB holds $n of the pipelined points, not 100"
udr_flush
echo "$out" | grep -q 'rc=0 written=510 sent=510' || fail "flush after the pipelined batch: $out"
influxql 'DELETE FROM ServiceComponent WHERE time >= 4000000ms' >/dev/null

# Every point exactly once: 300 distinct timestamps, each once.
answer=$(influxql 'SELECT "users", phase FROM ServiceComponent ORDER BY time')
total=$(echo "$answer" | jq '.results[0].series[0].values | length')
distinct=$(echo "$answer" | jq '[.results[0].series[0].values[][0]] | unique | length')
[ "$total" = 300 ] && [ "$distinct" = 300 ] || fail "$total points, $distinct distinct timestamps (want 300, 300)"
# users equals the timestamp except the ten rewritten points, which hold -ts.
bad=$(echo "$answer" | jq '[.results[0].series[0].values[] |
      select((.[0] >= 2000000 and .[0] <= 2000009 and (.[1] != -.[0] or .[2] != "b2")) or
             ((.[0] < 2000000 or .[0] > 2000009) and .[1] != .[0]))] | length')
[ "$bad" = 0 ] || fail "$bad points hold the wrong value (spool replayed out of order?)"

# The library's own read path agrees with InfluxQL.
echo "range ServiceComponent 2000000 2000003" >&3
echo "latest ServiceComponent" >&3
for _ in $(seq 1 100); do [ "$(grep -c '^end' "$T/writer.log")" -ge 2 ] && break; sleep 0.05; done
sed -n '/^point/,/^end/p' "$T/writer.log" | head -4 >"$T/range.txt"
cat >"$T/range.want" <<WANT
point urn:ngsi-ld:ServiceComponent:pod-2 2000000 cpu=0 phase=s:b2 users=-2000000
point urn:ngsi-ld:ServiceComponent:pod-0 2000001 cpu=0 phase=s:b2 users=-2000001
point urn:ngsi-ld:ServiceComponent:pod-1 2000002 cpu=0 phase=s:b2 users=-2000002
end rc=0
WANT
diff -u "$T/range.want" "$T/range.txt" || fail "udr_read_range disagrees with what was written"
grep -A3 '^end rc=0' "$T/writer.log" | grep '^point' | sort >"$T/latest.txt"
cat >"$T/latest.want" <<WANT
point urn:ngsi-ld:ServiceComponent:pod-0 3000099 cpu=750024.75 phase=s:c users=3000099
point urn:ngsi-ld:ServiceComponent:pod-1 3000097 cpu=750024.25 phase=s:c users=3000097
point urn:ngsi-ld:ServiceComponent:pod-2 3000098 cpu=750024.5 phase=s:c users=3000098
WANT
diff -u "$T/latest.want" "$T/latest.txt" || fail "udr_read_latest disagrees"

# Relationship changes with validity, read back as of two instants.
{
    echo 'r urn:ngsi-ld:ServiceComponent:p1 infrastructureElement urn:ngsi-ld:InfrastructureElement:n1 5000000'
    echo 'r urn:ngsi-ld:ServiceComponent:p2 infrastructureElement urn:ngsi-ld:InfrastructureElement:n1 5000000 5000150'
    echo 'r urn:ngsi-ld:ServiceComponent:p1 infrastructureElement urn:ngsi-ld:InfrastructureElement:n2 5000100'
    # Line protocol escaping against the real parser: , = in a tag value, " and \ in a string field.
    echo 'p InfrastructureElement urn:ngsi-ld:InfrastructureElement:a,b=c 5000000 cpuCores=8 hostname=s:say"hi"\'
} >&3
udr_flush
echo "relations 5000050" >&3
echo "relations 5000200" >&3
for _ in $(seq 1 100); do [ "$(grep -c '^end' "$T/writer.log")" -ge 4 ] && break; sleep 0.05; done
awk '/^end/ { n++ } n >= 2 && /^rel / { print n ": " $0 }' "$T/writer.log" | sort >"$T/rel.txt"
cat >"$T/rel.want" <<'WANT'
2: rel urn:ngsi-ld:ServiceComponent:p1 infrastructureElement urn:ngsi-ld:InfrastructureElement:n1 5000000 9223372036854775807
2: rel urn:ngsi-ld:ServiceComponent:p2 infrastructureElement urn:ngsi-ld:InfrastructureElement:n1 5000000 5000150
3: rel urn:ngsi-ld:ServiceComponent:p1 infrastructureElement urn:ngsi-ld:InfrastructureElement:n2 5000100 9223372036854775807
WANT
diff -u "$T/rel.want" "$T/rel.txt" || fail "relationships as of 5000050 and 5000200 differ"
got=$(influxql 'SELECT "hostname", "cpuCores", "id" FROM InfrastructureElement' | jq -c '.results[0].series[0].values')
[ "$got" = '[[5000000,"say\"hi\"\\",8,"urn:ngsi-ld:InfrastructureElement:a,b=c"]]' ] ||
    fail "escaped point reads back as $got"

echo quit >&3
exec 3>&-
wait "$WRITER_PID" || fail "the driver reported errors: $(grep '^error' "$T/writer.log")"
grep -q 's3cret-pw' "$T"/*.log && fail "the password appears in a log"
note "$(grep '^closed' "$T/writer.log")"
echo "ok: 300 points, 110 spooled during the outage and replayed in order, none lost or duplicated"
