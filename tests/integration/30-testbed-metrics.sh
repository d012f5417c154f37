#!/bin/bash
# The live testbed's /metrics: promtool accepts it, with the real families
# and label sets, gzip when asked, and values that move between 20 ms scrapes.
. "$(dirname "$0")/lib.sh"
need promtool curl

port=$(free_port)
started=$(date +%s)
bg testbed "$NDTPIPE" testbed --listen "127.0.0.1:$port" --users 400 --pods 3 --seed 7
wait_port "$port" 10 || { cat "$T/testbed.log" >&2; fail "testbed did not listen"; }
url="http://127.0.0.1:$port/metrics"

curl -sS -D "$T/headers" -o "$T/m1.txt" "$url" || fail "scrape failed"
grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' "$T/headers" || fail "content type: $(cat "$T/headers")"

# promtool: 0 clean, 3 lint problems only.  The only lint complaints
# allowed are node-exporter's own CamelCase names, which are kept real.
promtool check metrics <"$T/m1.txt" >"$T/lint" 2>&1
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 3 ] || { cat "$T/lint" >&2; fail "promtool exit $rc"; }
grep -v "^node_memory_Mem[A-Za-z]*_bytes metric names should be written in 'snake_case' not 'camelCase'$" "$T/lint" >"$T/other" || true
[ ! -s "$T/other" ] || { cat "$T/other" >&2; fail "unexpected lint problems"; }
note "promtool exit $rc; lint lines: $(wc -l <"$T/lint") (all node-exporter CamelCase)"

# Every family named by the contract, with its real label names.
for re in \
    '^inference_current_users 400$' \
    '^inference_pods 3$' \
    '^inference_avg_depth_on_enqueue\{namespace="ndt",node="worker-[12]",pod="cifar10-inference-[a-z0-9-]+"\} ' \
    '^inference_avg_backlog_est_seconds\{' \
    '^inference_avg_cpu_process_percent\{' \
    '^inference_avg_cpu_system_percent\{' \
    '^inference_avg_mem_system_percent\{' \
    '^inference_avg_total_infer_seconds\{' \
    '^inference_total_infer_seconds_bucket\{.*le="\+Inf"\} ' \
    '^inference_requests_rejected_total\{namespace="ndt",node="worker-[12]",pod="cifar10-inference-[a-z0-9-]+",reason="queue_full"\} [0-9]+$' \
    '^inference_max_queue_size 16$' \
    '^inference_avg_window_seconds 5$' \
    '^container_cpu_usage_seconds_total\{container="inference",id="/kubepods/[^"]+",image="[^"]+",name="k8s_[^"]+",namespace="ndt",pod="[^"]+",cpu="total"\} ' \
    '^container_memory_working_set_bytes\{container="inference",' \
    '^kube_deployment_status_replicas_available\{deployment="cifar10-inference",namespace="ndt"\} 3$' \
    '^kube_pod_info\{namespace="ndt",pod="[^"]+",uid="[^"]+",host_ip="[^"]+",pod_ip="[^"]+",node="worker-[12]",created_by_kind="ReplicaSet",' \
    '^kube_pod_status_phase\{namespace="ndt",pod="[^"]+",uid="[^"]+",phase="Running"\} 1$' \
    '^node_cpu_seconds_total\{cpu="7",mode="idle",node="worker-2"\} ' \
    '^node_memory_MemAvailable_bytes\{node="worker-1"\} '; do
    grep -Eq "$re" "$T/m1.txt" || fail "no line matches $re"
done
[ "$(grep -c '^# HELP ' "$T/m1.txt")" -eq "$(grep -c '^# TYPE ' "$T/m1.txt")" ] || fail "HELP/TYPE mismatch"
[ "$(grep -c '^kube_pod_info{' "$T/m1.txt")" -eq 3 ] || fail "expected 3 pods in kube_pod_info"

# gzip when accepted, same exposition format.
curl -sS -H 'Accept-Encoding: gzip' -D "$T/gzh" -o "$T/m.gz" "$url" || fail "gzip scrape failed"
grep -qi '^content-encoding: gzip' "$T/gzh" || fail "no Content-Encoding: gzip"
gunzip -c "$T/m.gz" >"$T/m.unz" || fail "body is not gzip"
promtool check metrics <"$T/m.unz" >/dev/null 2>&1; rc=$?
[ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "gzip body: promtool exit $rc"

# The simulation follows the wall clock: counters move between scrapes 20 ms apart.
total() { curl -sS "$url" | awk '/^inference_requests_total\{/ { s += $2 } END { print s + 0 }'; }
first=$(total)
moved=0
for _ in $(seq 1 50); do
    sleep 0.02
    [ "$(total)" != "$first" ] && { moved=1; break; }
done
[ $moved = 1 ] || fail "inference_requests_total did not move within 1 s of 20 ms scrapes"
# ~400 users / 7.5 s think time: about 53 requests/s in steady state; at
# 6-9 s after start 60-67/s, as the spawn burst (100 users/s, each sends at
# once) still echoes through the users' think times.
while [ $(( $(date +%s) - started )) -lt 6 ]; do sleep 0.2; done
a=$(total); sleep 3; b=$(total)
rate=$(( (b - a) / 3 ))
[ $rate -ge 35 ] && [ $rate -le 90 ] || fail "request rate $rate/s, expected about 60/s"
note "request rate ${rate}/s"

# A second testbed on the same port is a runtime failure (exit 1), not a hang.
"$NDTPIPE" testbed --listen "127.0.0.1:$port" 2>"$T/second.log" &
second=$!
for _ in $(seq 1 50); do kill -0 "$second" 2>/dev/null || break; sleep 0.1; done
kill -0 "$second" 2>/dev/null && { kill "$second"; fail "second testbed on a busy port kept running"; }
wait "$second"; rc=$?
[ $rc -eq 1 ] || fail "busy port: exit $rc, expected 1"
grep -q 'cannot listen' "$T/second.log" || fail "busy port: $(cat "$T/second.log")"

# SIGTERM: clean exit 0.
kill -TERM "$BG_PID"
wait "$BG_PID"; rc=$?
[ $rc -eq 0 ] || fail "exit $rc on SIGTERM"
exit 0
