#!/bin/bash
# Streaming features against a real Kafka client: kcat publishes NGSI-LD
# fragments (two pods of one service and the service itself, every 20 ms
# for 2 s, values known in advance) on ndt.sdm.entities, keyed by entity
# as the harmonizer does; `ndtpipe features --brokers` publishes windows
# on ndt.features; kcat reads them back.
#
# Asserts: with --window 0 one object per instant, each with the regime
# and the features computed by hand (awk) from the fragments; with
# --window 1s rows add up to the instants, split where the regime
# changes; a restart of the stage with the same group publishes nothing
# again (the offsets were committed); garbage on the input is skipped and
# counted, never fatal; --in and --brokers together are a usage error.
. "$(dirname "$0")/lib.sh"
need kcat jq awk
start_broker

T0=1767323045000
iso() { date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%S.$(printf %03d $(($1 % 1000)))Z; }
fragments() { # instants at T0 + 20 i; users 400 then 600 from i = 50; 2 pods
    local i ts at users
    for i in $(seq 0 99); do
        ts=$((T0 + 20 * i)); at=$(iso "$ts")
        users=400; [ "$i" -ge 50 ] && users=600
        printf 'urn:ngsi-ld:Service:ndt.svc\t{"id":"urn:ngsi-ld:Service:ndt.svc","type":"Service","currentUsers":{"type":"Property","value":%d,"observedAt":"%s"},"desiredReplicas":{"type":"Property","value":2,"observedAt":"%s"}}\n' "$users" "$at" "$at"
        for p in 0 1; do
            # depth = i + p, backlog = depth / 10, cpu = 10 + p, sys = 20, mem = 30, ms = 100 + i
            printf 'urn:ngsi-ld:ServiceComponent:ndt.p%d\t{"id":"urn:ngsi-ld:ServiceComponent:ndt.p%d","type":"ServiceComponent","avgDepthOnEnqueue":{"type":"Property","value":%d,"observedAt":"%s"},"avgBacklogEstimate":{"type":"Property","value":%s,"observedAt":"%s"},"processCpuUsage":{"type":"Property","value":%d,"observedAt":"%s"},"systemCpuUsage":{"type":"Property","value":20,"observedAt":"%s"},"systemMemoryUsage":{"type":"Property","value":30,"observedAt":"%s"},"avgInferenceTime":{"type":"Property","value":%d,"observedAt":"%s"},"service":{"type":"Relationship","object":"urn:ngsi-ld:Service:ndt.svc"}}\n' \
                "$p" "$p" $((i + p)) "$at" "$(awk -v d=$((i + p)) 'BEGIN { print d / 10 }')" "$at" $((10 + p)) "$at" "$at" "$at" $((100 + i)) "$at"
        done
    done
}
fragments >"$T/fragments.tsv"
echo 'not json at all' >>"$T/fragments.tsv"
kcat -b "$BROKERS" -P -t ndt.sdm.entities -K $'\t' -l "$T/fragments.tsv" || fail "kcat could not publish"

count() { kcat -b "$BROKERS" -C -t "$1" -e -q 2>/dev/null | wc -l; }
# run_stage NAME TOPIC N args...: runs until the stage has read N fragments
# (its own /metrics says so; joining the consumer group takes a few
# seconds), then stops it with SIGTERM, which closes what is still open.
run_stage() {
    local name=$1 topic=$2 n=$3 port read=0; shift 3
    port=$(free_port)
    bg "$name" "$NDTPIPE" features --brokers "$BROKERS" --out-topic "$topic" \
        --web.listen-address "127.0.0.1:$port" "$@"
    local pid=$BG_PID
    for _ in $(seq 1 150); do
        read=$(curl -sf "http://127.0.0.1:$port/metrics" |
               awk '$1 == "ndtpipe_features_fragments_total" { print $2 }')
        [ "${read:-0}" -ge "$n" ] && break
        sleep 0.2
    done
    [ "${read:-0}" -ge "$n" ] || fail "features $name read ${read:-no} fragments, want $n"
    kill -TERM "$pid"
    wait "$pid" || { cat "$T/$name.log" >&2; fail "features $name exited $?"; }
}
# A short session timeout lets the restart below rejoin the group quickly
# even if the mock broker keeps the first member until it expires.
run_stage rows rows 300 --window 0 --group g-rows -X session.timeout.ms=6000 -X heartbeat.interval.ms=500
kcat -b "$BROKERS" -C -t rows -e -q >"$T/rows.json" || fail "kcat rows"
[ "$(wc -l <"$T/rows.json")" -eq 100 ] || fail "$(wc -l <"$T/rows.json") row windows, want 100"
# Expected per instant i: depth 0.5 + i, backlog (0.5 + i) / 10, cpu 10.5 + 20,
# mem 30, latency 100 + i; users 400/600, pods 2.
jq -r '[.window.first, .regime.users, .regime.pods, .rows, .features.workload_intensity,
        .features.congestion_index, .features.backlog_flow, .features.compute_pressure,
        .features.memory_density, .features.queue_delay_ms, .latency_ms, .log_latency] | @tsv' "$T/rows.json" \
    | sort >"$T/got.tsv"
awk -F'\t' -v t0=$T0 'BEGIN { bad = 0 } {
        i = NR - 1; users = i >= 50 ? 600 : 400
        want = sprintf("%d %d 1 %.6f %.6f %.6f %.6f %.6f %.6f %.6f %.6f", users, 2, users / 2,
                       (i + 0.5) / 2, (i + 0.5) / 20, 30.5, 15, 100 * (i + 0.5), 100 + i, log(101 + i))
        got = sprintf("%d %d %d %.6f %.6f %.6f %.6f %.6f %.6f %.6f %.6f", $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        if (got != want) { print "instant " i ": got " got ", want " want; bad++ }
    } END { exit bad > 0 }' "$T/got.tsv" >&2 || fail "streamed features differ from the hand computation"

run_stage windows windows 300 --window 1s --group g-windows
kcat -b "$BROKERS" -C -t windows -e -q >"$T/windows.json" || fail "kcat windows"
jq -e -s '(map(.rows) | add) == 100 and all(.spec | startswith("ndt-features-v2:"))' "$T/windows.json" >/dev/null \
    || fail "windows hold $(jq -s 'map(.rows) | add' "$T/windows.json") rows, want 100"
jq -e -s 'map(.regime.users) | unique == [400, 600]' "$T/windows.json" >/dev/null \
    || fail "the regime change did not split the windows"
jq -e -s 'all(.window.start <= .window.first and .window.last < .window.end)' "$T/windows.json" >/dev/null \
    || fail "a window's rows fall outside its bounds"

# Same group again with one more instant: only that one is published (the
# first run committed what it had published), and the stage reads only
# the three new fragments.
fragments | tail -n 3 | sed "s/$(iso $((T0 + 1980)))/$(iso $((T0 + 2000)))/g" >"$T/more.tsv"
kcat -b "$BROKERS" -P -t ndt.sdm.entities -K $'\t' -l "$T/more.tsv" || fail "kcat could not publish"
run_stage again rows 3 --window 0 --group g-rows -X session.timeout.ms=6000 -X heartbeat.interval.ms=500
[ "$(count rows)" -eq 101 ] || fail "after a restart rows holds $(count rows) windows, want 101"
grep -q 'msg=stopped' "$T/rows.log" || fail "no clean stop"

rc=0; "$NDTPIPE" features --brokers "$BROKERS" --in x.csv 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "--in with --brokers: exit $rc, want 2"
echo "ok: 100 rows, $(wc -l <"$T/windows.json") windows"
