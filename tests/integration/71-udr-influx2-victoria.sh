#!/bin/bash
# The UDR's InfluxDB 2.x write path (/api/v2/write, gzip, Token auth)
# against a real server that speaks it: Debian's VictoriaMetrics.  Points
# read back exactly through its Prometheus export API; the server stopped
# mid-stream and restarted: the outage's points are spooled and replayed,
# every point stored once.  (VictoriaMetrics is stopped with SIGTERM: it
# buffers acknowledged rows in memory for about a second, so SIGKILL would
# test its durability, not ours; 70-udr-influx.sh kills influxd with -9.)
. "$(dirname "$0")/lib.sh"
need victoria-metrics curl jq
TOOL=$(dirname "$NDTPIPE")/tools/udr_tool
[ -x "$TOOL" ] || fail "$TOOL not built (make)"

PORT=$(free_port)
start_vm() {
    bg "vm$1" victoria-metrics -httpListenAddr="127.0.0.1:$PORT" -storageDataPath="$T/vm" \
        -search.latencyOffset=0s -loggerLevel=WARN
    VM_PID=$BG_PID
    wait_port "$PORT" 15 || { cat "$T/vm$1.log" >&2; fail "victoria-metrics did not start"; }
}
start_vm 1

mkfifo "$T/cmd"
export INFLUX_TOKEN=tok-never-logged-7f3a
bg writer "$TOOL" --input "$T/cmd" --spool "$T/spool" --retries 1 "influx2:http://127.0.0.1:$PORT/ndt-org/ndt-bucket"
WRITER_PID=$BG_PID
exec 3>"$T/cmd"
# Timestamps inside VictoriaMetrics's default retention (one month).
BASE=$(( ($(date +%s) - 600) * 1000 ))
phase() { # FIRST_INDEX: 50 points, users = index, on two pods, 100 ms apart
    local i
    for i in $(seq "$1" $(($1 + 49))); do
        echo "p ServiceComponent urn:ngsi-ld:ServiceComponent:pod-$((i % 2)) $((BASE + i * 100)) users=$i cpuUsage=$i.5"
    done >&3
}

phase 0
udr_flush
echo "$out" | grep -q 'rc=0 written=50 sent=50 spooled=0' || fail "first flush: $out"
note "stopping victoria-metrics mid-stream"
kill -TERM "$VM_PID"; wait "$VM_PID" 2>/dev/null
phase 50
udr_flush
echo "$out" | grep -q 'rc=0 written=100 sent=50 spooled=50 replayed=0 dropped=0' || fail "flush during the outage: $out"
note "restarting victoria-metrics"
start_vm 2
phase 100
udr_flush
echo "$out" | grep -q 'rc=0 written=150 sent=150 spooled=50 replayed=50 dropped=0' || fail "flush after the restart: $out"

# Poll until everything is searchable (force_flush, then about a second).
for _ in $(seq 1 40); do
    curl -sf "http://127.0.0.1:$PORT/internal/force_flush" >/dev/null
    curl -sf -G "http://127.0.0.1:$PORT/api/v1/export" \
        --data-urlencode 'match[]={__name__=~"ServiceComponent_.*"}' >"$T/export.jsonl"
    n=$(jq -s '[.[] | select(.metric.__name__ == "ServiceComponent_users") | .timestamps[]] | length' "$T/export.jsonl")
    [ "$n" -ge 150 ] && break
    sleep 0.25
done
jq -s --argjson base "$BASE" '
  [ .[] | select(.metric.__name__ == "ServiceComponent_users") as $s
        | range(0; $s.timestamps | length)
        | { id: $s.metric.id, ts: $s.timestamps[.], v: $s.values[.] } ]
  | { total: length,
      distinct: (map(.ts) | unique | length),
      wrong: map(select(.v != ((.ts - $base) / 100)
                        or .id != "urn:ngsi-ld:ServiceComponent:pod-\(.v % 2)")) | length }' \
    "$T/export.jsonl" >"$T/summary.json"
[ "$(jq -c . "$T/summary.json")" = '{"total":150,"distinct":150,"wrong":0}' ] ||
    fail "VictoriaMetrics holds $(jq -c . "$T/summary.json"), want 150 distinct correct points"
cpu=$(jq -s '[.[] | select(.metric.__name__ == "ServiceComponent_cpuUsage") | .values[]] | add' "$T/export.jsonl")
[ "$cpu" = 11250 ] || fail "sum of cpuUsage is $cpu, want 11250 (sum of i + 0.5 for i < 150)"

echo quit >&3
exec 3>&-
wait "$WRITER_PID" || fail "the driver reported errors: $(grep '^error' "$T/writer.log")"

# The spool is bounded (a batch past the bound is dropped and counted) and
# outlives the process: a new handle on the same directory replays it.
note "bounded spool across processes"
kill -TERM "$VM_PID"; wait "$VM_PID" 2>/dev/null
for b in 0 1 2; do
    for i in $(seq $((200 + b * 10)) $((209 + b * 10))); do
        echo "p ServiceComponent urn:ngsi-ld:ServiceComponent:pod-$((i % 2)) $((BASE + i * 100)) users=$i"
    done
    echo flush
done | "$TOOL" --spool "$T/spool2" --retries 0 --spool-max 2000 \
    "influx2:http://127.0.0.1:$PORT/ndt-org/ndt-bucket" >"$T/bounded.out" 2>"$T/bounded.err"
grep -q '^closed rc=0 written=30 sent=0 spooled=20 replayed=0 dropped=10' "$T/bounded.out" ||
    fail "bounded spool: $(cat "$T/bounded.out")"
grep -q 'msg="spool full, batch dropped"' "$T/bounded.err" || fail "the drop was not logged"
start_vm 3
echo flush | "$TOOL" --spool "$T/spool2" "influx2:http://127.0.0.1:$PORT/ndt-org/ndt-bucket" >"$T/replay.out" 2>&1
grep -q '^flushed rc=0 written=0 sent=20 spooled=0 replayed=20 dropped=0' "$T/replay.out" ||
    fail "replay by a new process: $(cat "$T/replay.out")"
for _ in $(seq 1 40); do
    curl -sf "http://127.0.0.1:$PORT/internal/force_flush" >/dev/null
    n=$(curl -sf -G "http://127.0.0.1:$PORT/api/v1/export" --data-urlencode 'match[]=ServiceComponent_users' |
        jq -s '[.[].values[]] | length')
    [ "$n" -ge 170 ] && break
    sleep 0.25
done
got=$(curl -sf -G "http://127.0.0.1:$PORT/api/v1/export" --data-urlencode 'match[]=ServiceComponent_users' |
      jq -s -c '[.[].values[] | select(. >= 200)] | sort | [length, min, max]')
[ "$got" = '[20,200,219]' ] || fail "after the replay users >= 200 are $got, want 20 points 200..219"
grep -q 'tok-never-logged' "$T"/*.log && fail "the token appears in a log"
note "$(grep '^closed' "$T/writer.log")"
echo "ok: 150 points through /api/v2/write, 50 spooled during the outage, each stored once; bounded spool dropped 10 (counted), replayed 20 from a new process"
