#!/bin/bash
# ndtpipe export: the dataset CSV rebuilt from the UDR, from both backends.
# Known entities are written through the UDR library (tests/tools/udr_tool)
# into a SQLite UDR and into a real influxd: two services, pods that belong
# to one or the other, a pod joining mid-run, the service scaled up and its
# users changed.  The export must equal, byte for byte, the CSV computed
# here from what was written (per-pod attributes averaged over the
# service's pods of each instant); sub-ranges with RFC 3339 and Unix-ms
# bounds select exactly their rows; bad usage exits 2 with a clear message.
. "$(dirname "$0")/lib.sh"
need influxd curl awk
TOOL=$(dirname "$NDTPIPE")/tools/udr_tool
[ -x "$TOOL" ] || fail "$TOOL not built (make)"

BASE=1767225600000 # 2026-01-01T00:00:00.000Z; instants every 20 ms
SVC=urn:ngsi-ld:Service:ndt.cifar10-inference
OTHER=urn:ngsi-ld:Service:ndt.other
POD=urn:ngsi-ld:ServiceComponent:ndt

# The commands for udr_tool and, alongside, the CSV export must produce.
# Pod p (1 = a, 2 = b, 3 = c) at instant i carries values that are exact
# in binary (multiples of 1/8), so both sides print the same digits
# (timestamps with %.0f: some awks' %d stops at 2^31).
awk -v base=$BASE -v svc=$SVC -v other=$OTHER -v pod=$POD -v cmds="$T/cmds" -v want="$T/want.csv" '
function attrs(p, i) {
    return sprintf("avgDepthOnEnqueue=%.15g avgBacklogEstimate=%.15g processCpuUsage=%.15g " \
                   "systemCpuUsage=%.15g systemMemoryUsage=%.15g avgInferenceTime=%.15g " \
                   "queueDepth=7 serviceComponentStatus=s:Running",
                   i + p / 4, p * 0.125 + i / 8, 10 * p + i, 50 + p / 2, 30 + i / 4, 100 * p + i * 0.5)
}
BEGIN {
    print "timestamp_ms,users,pods,avg_depth_on_enqueue,avg_backlog_sec_est,avg_cpu_process_pct,avg_cpu_system_pct,avg_mem_system_pct,avg_total_infer_ms" > want
    printf "r %s.a service %s %.0f\n", pod, svc, base > cmds
    printf "r %s.a infrastructureElement urn:ngsi-ld:InfrastructureElement:n1 %.0f\n", pod, base > cmds
    printf "r %s.b service %s %.0f\n", pod, svc, base + 200 > cmds
    printf "r %s.c service %s %.0f\n", pod, other, base > cmds
    for (i = 0; i < 30; i++) {
        ts = base + 20 * i
        users = i < 15 ? 200 : 400
        replicas = i < 10 ? 1 : 2
        printf "p Service %s %.0f currentUsers=%d desiredReplicas=%d serviceType=s:inference\n", svc, ts, users, replicas > cmds
        printf "p Service %s %.0f currentUsers=5 desiredReplicas=9\n", other, ts > cmds
        for (p = 1; p <= 3; p++)
            printf "p ServiceComponent %s.%c %.0f %s\n", pod, substr("abc", p, 1), ts, attrs(p, i) > cmds
        # members: a always, b from instant 10 on (c is the other service)
        n = i < 10 ? 1 : 2
        d = 0; bl = 0; cp = 0; cs = 0; ms = 0; inf = 0
        for (p = 1; p <= n; p++) {
            d += i + p / 4; bl += p * 0.125 + i / 8; cp += 10 * p + i
            cs += 50 + p / 2; ms += 30 + i / 4; inf += 100 * p + i * 0.5
        }
        printf "%.0f,%d,%d,%.15g,%.15g,%.15g,%.15g,%.15g,%.15g\n", ts, users, replicas,
               d / n, bl / n, cp / n, cs / n, ms / n, inf / n > want
    }
    print "quit" > cmds
}'
[ "$(wc -l <"$T/want.csv")" = 31 ] || fail "the expected CSV has $(wc -l <"$T/want.csv") lines"

# ---- SQLite -----------------------------------------------------------------
"$TOOL" "sqlite:$T/udr.db" <"$T/cmds" >"$T/sqlite-writer.log" 2>&1 || {
    cat "$T/sqlite-writer.log" >&2; fail "udr_tool could not fill the SQLite UDR"; }
grep -q '^closed rc=0 written=150 ' "$T/sqlite-writer.log" || fail "SQLite fill: $(tail -n 1 "$T/sqlite-writer.log")"

export_ok() { # NAME ARGS...: runs export, fails the test on a non-zero exit
    local name=$1; shift
    "$NDTPIPE" export "$@" >"$T/$name.out" 2>"$T/$name.err" || {
        cat "$T/$name.err" >&2; fail "export $name exited $?"; }
}
export_ok sqlite-all --udr "sqlite:$T/udr.db" --service "$SVC" --from $BASE --to $((BASE + 580)) --out "$T/sqlite.csv"
diff -u "$T/want.csv" "$T/sqlite.csv" >&2 || fail "SQLite export differs from what was written"
[ -e "$T/sqlite.csv.tmp" ] && fail "a temporary file was left behind"
# The export is a dataset the feature stage reads as it is.
"$NDTPIPE" features --in "$T/sqlite.csv" --out "$T/features.csv" --trim none 2>"$T/features.err" ||
    { cat "$T/features.err" >&2; fail "features refused the export"; }
[ "$(wc -l <"$T/features.csv")" = 31 ] || fail "features kept $(wc -l <"$T/features.csv") lines of 31"

# A sub-range in RFC 3339 (both ends inclusive, one with an offset), the
# service by its local id, to stdout.
export_ok sqlite-sub --udr "sqlite:$T/udr.db" --service ndt.cifar10-inference \
    --from 2026-01-01T00:00:00.200Z --to 2026-01-01T01:00:00.300+01:00 --out -
{ head -n 1 "$T/want.csv"; sed -n '12,17p' "$T/want.csv"; } >"$T/want-sub.csv"
diff -u "$T/want-sub.csv" "$T/sqlite-sub.out" >&2 || fail "RFC 3339 sub-range differs"

# The other service has its own rows (one pod, its own users).
export_ok sqlite-other --udr "sqlite:$T/udr.db" --service "$OTHER" --from $BASE --to $((BASE + 20)) --out -
[ "$(sed -n 2p "$T/sqlite-other.out")" = "$BASE,5,9,0.75,0.375,30,51.5,30,300" ] ||
    fail "other service: $(sed -n 2p "$T/sqlite-other.out")"

# A range with nothing in it: the header only, exit 0.
export_ok sqlite-empty --udr "sqlite:$T/udr.db" --service "$SVC" --from 0 --to 1000 --out "$T/empty.csv"
[ "$(cat "$T/empty.csv")" = "$(head -n 1 "$T/want.csv")" ] || fail "an empty range is not the header alone"

# ---- InfluxDB 1.x (its 'sent' also counts the 4 relationship points) ---------
start_influxd
curl -sf -XPOST "http://127.0.0.1:$INFLUX_HTTP/query" --data-urlencode "q=CREATE DATABASE ndt" >/dev/null ||
    fail "CREATE DATABASE failed"
INFLUX="influx:http://127.0.0.1:$INFLUX_HTTP/ndt"
"$TOOL" "$INFLUX" <"$T/cmds" >"$T/influx-writer.log" 2>&1 || {
    cat "$T/influx-writer.log" >&2; fail "udr_tool could not fill InfluxDB"; }
grep -q '^closed rc=0 written=150 sent=154 spooled=0 ' "$T/influx-writer.log" || fail "InfluxDB fill: $(tail -n 1 "$T/influx-writer.log")"
export_ok influx-all --udr "$INFLUX" --service "$SVC" --from 2026-01-01T00:00:00Z --to $((BASE + 580)) --out "$T/influx.csv"
diff -u "$T/want.csv" "$T/influx.csv" >&2 || fail "InfluxDB export differs from what was written"

# ---- bad usage: exit 2 and a message naming the problem -------------------------
usage_error() { # WANT_SUBSTRING ARGS...
    local want=$1 rc; shift
    "$NDTPIPE" export "$@" >"$T/bad.out" 2>"$T/bad.err"
    rc=$?
    [ $rc = 2 ] || fail "export $* exited $rc, not 2: $(cat "$T/bad.err")"
    grep -qF -- "$want" "$T/bad.err" || fail "export $*: no '$want' in: $(cat "$T/bad.err")"
}
usage_error "--udr: the UDR URL is required" --from 0 --to now --out -
usage_error "--from and --to are required" --udr "sqlite:$T/udr.db" --to now --out -
usage_error "--out: the dataset CSV is required" --udr "sqlite:$T/udr.db" --from 0 --to now
usage_error "--from: expected RFC 3339" --udr "sqlite:$T/udr.db" --from yesterday --to now --out -
usage_error "--to: expected RFC 3339" --udr "sqlite:$T/udr.db" --from 0 --to 2026-02-30T00:00:00Z --out -
usage_error "is after --to" --udr "sqlite:$T/udr.db" --from now --to -1h --out -
usage_error "unknown option" --udr "sqlite:$T/udr.db" --from 0 --to now --out - --bogus
usage_error "no UDR at $T/missing.db" --udr "sqlite:$T/missing.db" --from 0 --to now --out -
[ -e "$T/missing.db" ] && fail "export created the missing SQLite UDR"
usage_error "unknown scheme" --udr "mysql://x/y" --from 0 --to now --out -
usage_error "only writes" --udr "influx2:http://127.0.0.1:1/org/bucket" --from 0 --to now --out -
usage_error "2 Service entities" --udr "$INFLUX" --from 0 --to now --out -
usage_error "2 Service entities" --udr "sqlite:$T/udr.db" --from 0 --to now --out "$T/no.csv"
grep -qF -- "--service" "$T/bad.err" || fail "the ambiguity does not point to --service"
[ -e "$T/no.csv" ] && fail "a failed export wrote its output"
"$NDTPIPE" export --help | grep -q "usage: ndtpipe export" || fail "--help"
# Relative times and 'now' parse (which rows they select depends on the clock).
export_ok relative --udr "sqlite:$T/udr.db" --service "$SVC" --from -1h --to now --out /dev/null
# A UDR that cannot be reached is a runtime failure, exit 1.
"$NDTPIPE" export --udr "influx:http://127.0.0.1:$(free_port)/ndt" --service "$SVC" --from 0 --to now \
    --out - >/dev/null 2>"$T/down.err"
[ $? = 1 ] || fail "an unreachable InfluxDB did not exit 1: $(cat "$T/down.err")"
echo "ok: SQLite and InfluxDB exports equal the 30 rows written; ranges, services and usage errors"
