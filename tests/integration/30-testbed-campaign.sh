#!/bin/bash
# `ndtpipe testbed campaign`: the dataset CSV, byte-identical for one seed,
# far faster than real time, an SVG plot; bad usage exits 2.
. "$(dirname "$0")/lib.sh"

header='timestamp_ms,users,pods,avg_depth_on_enqueue,avg_backlog_sec_est,avg_cpu_process_pct,avg_cpu_system_pct,avg_mem_system_pct,avg_total_infer_ms'

"$NDTPIPE" testbed campaign --users 200,600 --pods 1-3 --dwell 30s --seed 5 --out "$T/a.csv" 2>"$T/a.log" || fail "campaign a: $(cat "$T/a.log")"
"$NDTPIPE" testbed campaign --users 200,600 --pods 1-3 --dwell 30s --seed 5 --out "$T/b.csv" 2>/dev/null || fail "campaign b"
"$NDTPIPE" testbed campaign --users 200,600 --pods 1-3 --dwell 30s --seed 6 --out "$T/c.csv" 2>/dev/null || fail "campaign c"
cmp "$T/a.csv" "$T/b.csv" || fail "same seed, different files"
cmp -s "$T/a.csv" "$T/c.csv" && fail "different seeds, same file"
[ "$(head -n 1 "$T/a.csv" | cut -d, -f1-9)" = "$header" ] || fail "header: $(head -n 1 "$T/a.csv")"
rows=$(( $(wc -l <"$T/a.csv") - 1 ))
[ $rows -eq $(( 6 * 30 * 50 )) ] || fail "$rows rows, expected 9000 (6 regimes x 30 s / 20 ms)"
# 20 ms apart, every row has 11 fields.
awk -F, 'NR == 2 { prev = $1; next } NR > 2 { if ($1 - prev != 20) { print "step " $1 - prev; exit 1 } prev = $1 }' "$T/a.csv" || fail "timestamps not 20 ms apart"
awk -F, 'NF != 11 { exit 1 }' "$T/a.csv" || fail "ragged rows"
# Saturation shows in the data: 600 users on 1 pod queue up to the
# admission bound (16 by default: an arrival finds at most 17), far deeper
# than 200 users on 3 pods.
d1=$(awk -F, '$2 == 600 && $3 == 1 { s += $4; n++ } END { print int(s / n) }' "$T/a.csv")
d3=$(awk -F, '$2 == 200 && $3 == 3 { s += $4; n++ } END { print int(s / n) }' "$T/a.csv")
[ "$d1" -ge 12 ] && [ "$d1" -le 17 ] && [ "$d3" -le 2 ] || fail "depth: 600 users on 1 pod ${d1}, 200 on 3 pods ${d3}"
awk -F, 'NR > 1 && $4 > 17 { exit 1 }' "$T/a.csv" || fail "a depth above the admission bound"
# Without the bound (--max-queue 0) the queue grows past it, latency with it.
# Latency is compared over each regime's second half (rows 751-1500): 3 pods
# first drain the backlog 2 pods left, and the 5 s averaging window carries
# the previous regime for its first 5 s.
"$NDTPIPE" testbed campaign --users 600 --pods 1-3 --dwell 30s --seed 5 --max-queue 0 --out "$T/u.csv" 2>/dev/null || fail "campaign --max-queue 0"
m1=$(awk -F, '$2 == 600 && $3 == 1 && ++n > 750 { s += $9; k++ } END { print int(s / k) }' "$T/u.csv")
m3=$(awk -F, '$2 == 600 && $3 == 3 && ++n > 750 { s += $9; k++ } END { print int(s / k) }' "$T/u.csv")
[ "$m1" -gt $(( 4 * m3 )) ] || fail "600 users unbounded: 1 pod ${m1} ms vs 3 pods ${m3} ms"
awk -F, 'NR > 1 && $4 > 100 { found = 1 } END { exit !found }' "$T/u.csv" || fail "--max-queue 0 still bounded"

# Speed: the paper's full grid (18 regimes of 60 s = 1080 simulated s)
# must take under 1/100 of that in wall time.
start=$(date +%s%N)
"$NDTPIPE" testbed campaign --dwell 1m --out "$T/full.csv" --plot "$T/plot.svg" 2>/dev/null || fail "full campaign"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
note "1080 simulated s in ${ms} ms (x$(( 1080000 / (ms > 0 ? ms : 1) )) real time)"
[ $ms -lt 10800 ] || fail "campaign slower than 100x real time (${ms} ms)"
grep -q '^<svg ' "$T/plot.svg" || fail "no SVG"
[ "$(grep -c '<polyline' "$T/plot.svg")" -eq 3 ] || fail "expected 3 lines in the plot"
"$NDTPIPE" testbed campaign --dwell 1s --interval 100ms --users 300 --pods 2 --out - >"$T/stdout.csv" 2>/dev/null || fail "--out -"
[ $(( $(wc -l <"$T/stdout.csv") - 1 )) -eq 10 ] || fail "--interval 100ms over 1s: $(wc -l <"$T/stdout.csv") lines"

# An output that exists and is not a regular file (a FIFO here; /dev/null
# alike) is written in place: renaming FILE.tmp over it would replace it.
mkfifo "$T/fifo"
timeout 20 cat "$T/fifo" >"$T/fifo.csv" &
reader=$!
"$NDTPIPE" testbed campaign --dwell 1s --users 300 --pods 2 --out "$T/fifo" 2>"$T/fifo.log" || fail "--out FIFO: $(cat "$T/fifo.log")"
wait "$reader"
[ -p "$T/fifo" ] || fail "--out FIFO: the FIFO was replaced by a file"
[ $(( $(wc -l <"$T/fifo.csv") - 1 )) -eq 50 ] || fail "--out FIFO: $(wc -l <"$T/fifo.csv") lines through the pipe"
[ ! -e "$T/fifo.tmp" ] || fail "--out FIFO: left $T/fifo.tmp"

# Bad usage: exit 2 with a message naming the flag, nothing written.
expect2() { # expected-substring args...
    local want=$1; shift
    "$NDTPIPE" "$@" >"$T/out" 2>"$T/err"; local rc=$?
    [ $rc -eq 2 ] || fail "'$*': exit $rc, expected 2"
    grep -q -- "$want" "$T/err" || fail "'$*': message lacks '$want': $(cat "$T/err")"
}
expect2 '--users' testbed campaign --users '' --dwell 1s --out "$T/x.csv"
expect2 '--users' testbed campaign --users 200,,400 --dwell 1s --out "$T/x.csv"
expect2 '--dwell' testbed campaign --dwell 10 --out "$T/x.csv"
expect2 '--dwell' testbed campaign --dwell 5parsecs --out "$T/x.csv"
expect2 '--dwell' testbed campaign --out "$T/x.csv"
expect2 '--interval' testbed campaign --dwell 1s --interval fast --out "$T/x.csv"
expect2 '--pods' testbed campaign --dwell 1s --pods 6-1 --out "$T/x.csv"
expect2 '--out' testbed campaign --dwell 1s
expect2 '--seed' testbed campaign --dwell 1s --seed -3 --out "$T/x.csv"
expect2 '--max-queue' testbed campaign --dwell 1s --max-queue -1 --out "$T/x.csv"
expect2 '--max-queue' testbed campaign --dwell 1s --max-queue lots --out "$T/x.csv"
expect2 '--avg-window' testbed campaign --dwell 1s --avg-window soon --out "$T/x.csv"
expect2 '--avg-window' testbed campaign --dwell 1s --avg-window 2m --out "$T/x.csv"
expect2 'unknown option' testbed campaign --dwell 1s --out "$T/x.csv" --frobnicate
[ ! -e "$T/x.csv" ] || fail "bad usage wrote a file"
expect2 '--users' testbed --users -5
expect2 '--pods' testbed --pods 0
expect2 '--max-queue' testbed --max-queue 20001
expect2 '--avg-window' testbed --avg-window -1s
expect2 '--listen' testbed --listen nonsense
"$NDTPIPE" testbed --help | grep -q 'POST /control' || fail "testbed --help"
"$NDTPIPE" testbed campaign --help | grep -q -- '--dwell' || fail "campaign --help"
exit 0
