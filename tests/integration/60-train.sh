#!/bin/bash
# campaign -> features -> train --json: the out-of-distribution split
# (train on 200/400 users, test on the unseen 600), the registry entry,
# XGBoost's own dense predictor agreeing with ndtpipe bit for bit, the
# determinism of a fixed seed, and bad inputs exiting 2 with nothing
# registered.  Small model (100 rounds, depth 4, eta 0.3, 2 threads) so
# it runs in seconds; the bound on R^2 is from measurement (see below).
. "$(dirname "$0")/lib.sh"
need jq
tool=$(dirname "$NDTPIPE")/tools/xgb_predict_dense
[ -x "$tool" ] || fail "missing $tool (make)"
run() { nice -n 19 "$NDTPIPE" "$@"; }

run testbed campaign --users 200,400,600 --pods 1-6 --dwell 30s --seed 3 --out "$T/d.csv" 2>/dev/null || fail "campaign"
rows=$(( $(wc -l <"$T/d.csv") - 1 ))

# features: one output row per kept row, the documented header, values.
run features --in "$T/d.csv" --out "$T/f.csv" --trim none 2>"$T/f.log" || fail "features: $(cat "$T/f.log")"
[ "$(head -n 1 "$T/f.csv")" = "timestamp_ms,users,pods,workload_intensity,congestion_index,backlog_flow,compute_pressure,memory_density,queue_delay_ms,log_latency,avg_total_infer_ms" ] \
    || fail "features header: $(head -n 1 "$T/f.csv")"
[ $(( $(wc -l <"$T/f.csv") - 1 )) -eq "$rows" ] || fail "--trim none dropped rows"
# Recompute every indicator with awk from the raw columns and compare.
paste -d, "$T/d.csv" "$T/f.csv" | awk -F, 'NR > 1 {
    # dataset: $1..$11 (9 contract columns + 2 extra); features: $12..$22
    p = $3
    if ($12 != $1 || $13 != $2 || $14 != $3) { print "key columns row " NR; exit 1 }
    d[1] = $15 - $2 / p; d[2] = $16 - $4 / p; d[3] = $17 - $5 / p; d[4] = $18 - ($6 + $7); d[5] = $19 - $8 / p
    d[6] = $20 - 1000 * $5; d[7] = $21 - log(1 + $9)
    for (i = 1; i <= 7; i++) if (d[i] > 1e-9 || d[i] < -1e-9) { print "row " NR " feature " i " off by " d[i]; exit 1 }
}' || fail "feature values differ from the documented formulas"
run features --in "$T/d.csv" --out "$T/p.csv" 2>"$T/p.log" || fail "features p1p99"
kept=$(( $(wc -l <"$T/p.csv") - 1 ))
grep -q "rows_trimmed=$(( rows - kept ))" "$T/p.log" || fail "trim count not logged: $(cat "$T/p.log")"
[ "$kept" -lt "$rows" ] && [ "$kept" -gt $(( rows * 95 / 100 )) ] || fail "p1p99 kept $kept of $rows"

# train --json on the unseen regime.
small=(--rounds 100 --depth 4 --eta 0.3 --threads 2 --seed 7)
start=$(date +%s%N)
run train --data "$T/d.csv" --model xgboost --train users=200,400 --test users=600 \
    --registry "$T/reg" --json "${small[@]}" --predictions "$T/pred.csv" >"$T/m.json" 2>"$T/train.log" \
    || fail "train: $(cat "$T/train.log")"
note "train: $(( ($(date +%s%N) - start) / 1000000 )) ms"
jq -e . "$T/m.json" >/dev/null || fail "--json is not one JSON object: $(cat "$T/m.json")"
id=$(jq -r .model_id "$T/m.json")
[[ "$id" =~ ^xgb-[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$ ]] || fail "model_id '$id'"
r2=$(jq .metrics.r2 "$T/m.json")
note "R^2 on users=600: $r2, MAE $(jq .metrics.mae_ms "$T/m.json") ms, grade $(jq -r .grade "$T/m.json")"
# Measured 0.978 on this exact input (campaign seed 3, model seed 7: both
# deterministic; 0.970 without the monotone constraints); 0.89 as last
# measured with the v1 features (no queue_delay_ms), 0.62
# before the testbed's admission bound, and other campaign seeds gave
# 0.05..0.54 then: the saturated 600-user regimes reached latencies beyond
# anything in the training regimes, which trees cannot extrapolate
# (docs/MODELS.md, docs/RESULTS.md).  0.93 fails a model that lost the
# queue delay's scale-invariant reading of the backlog (0.89) and one that
# learned nothing; the regimes inside the training range (5-6 pods) are
# held to a tight MAE below.
jq -e '.metrics.r2 > 0.93' "$T/m.json" >/dev/null || fail "R^2 $r2 <= 0.93"
jq -e '[.per_regime[] | select(.users == 600)] | length == 6' "$T/m.json" >/dev/null || fail "per-regime table"
jq -e '[.per_regime[] | select(.pods >= 5) | .mae_ms < 40] | all' "$T/m.json" >/dev/null \
    || fail "MAE on 600 users x 5-6 pods: $(jq -c '[.per_regime[] | .mae_ms]' "$T/m.json")"
jq -e '(.high_latency | length == 2) and .high_latency[0].n > .high_latency[1].n' "$T/m.json" >/dev/null || fail "threshold table"
jq -e '.n_test == ([.per_regime[].n] | add)' "$T/m.json" >/dev/null || fail "n_test != sum of regimes"

# The registry entry.
[ -s "$T/reg/$id/model.ubj" ] || fail "no model.ubj"
jq -e --arg id "$id" '.model_id == $id and (.features.names | length == 8) and .parameters.rounds == 100
    and .training.train == "users=200,400" and (.training.regimes | length == 12) and .grade != null' \
    "$T/reg/$id/model.json" >/dev/null || fail "model.json: $(cat "$T/reg/$id/model.json")"
[ -z "$(ls -A "$T/reg" | grep -v "^$id\$")" ] || fail "registry has leftovers: $(ls -A "$T/reg")"
# predictions.csv: every k-th test row, k = ceil(n_test / 5000).
n_test=$(jq .n_test "$T/m.json")
stride=$(( (n_test + 4999) / 5000 )); want=$(( (n_test + stride - 1) / stride ))
[ $(( $(wc -l <"$T/reg/$id/predictions.csv") - 1 )) -eq "$want" ] || fail "predictions.csv: $(wc -l <"$T/reg/$id/predictions.csv") lines, want $want + 1"
[ "$(sed -n 2p "$T/reg/$id/predictions.csv" | cut -d, -f2)" = 600 ] || fail "predictions.csv holds non-test rows"

# XGBoost's own dense predictor on a second load agrees bit for bit.
"$tool" "$T/reg/$id/model.ubj" "$T/pred.csv" 8 >"$T/dense.txt" || fail "dense predictor disagrees: $(cat "$T/dense.txt")"
note "$(cat "$T/dense.txt")"

# --baseline backlog: the trees learn a correction of ln(1 + backlog ms),
# which follows the saturated regimes past the training range.  Measured
# on this input: R^2 0.98 (0.97 without; with the v1 features 0.94 and
# 0.89; 0.84 and 0.62 before the testbed's admission bound).  XGBoost's own output still
# agrees bit for bit, and predicted_log is that output plus the baseline.
run train --data "$T/d.csv" --model xgboost --train users=200,400 --test users=600 --baseline backlog \
    --registry "$T/reg" --json "${small[@]}" --predictions "$T/predb.csv" >"$T/mb.json" 2>"$T/trainb.log" \
    || fail "train --baseline: $(cat "$T/trainb.log")"
idb=$(jq -r .model_id "$T/mb.json")
note "--baseline backlog: R^2 $(jq .metrics.r2 "$T/mb.json")"
jq -e '.features.baseline == "backlog"' "$T/reg/$idb/model.json" >/dev/null || fail "model.json lacks the baseline"
jq -e '.features.baseline == "none"' "$T/reg/$id/model.json" >/dev/null || fail "model.json: baseline none"
# Monotone constraints (docs/MODELS.md): on by default, recorded; off with a
# baseline (the trees then learn a ratio that falls with the queue).
jq -e '.parameters.monotone_constraints == "(1,-1,1,1,1,0,0,1)"' "$T/reg/$id/model.json" >/dev/null \
    || fail "model.json: monotone_constraints $(jq -c .parameters "$T/reg/$id/model.json")"
jq -e '.parameters.monotone_constraints == "none"' "$T/reg/$idb/model.json" >/dev/null \
    || fail "model.json (baseline): monotone_constraints $(jq -c .parameters "$T/reg/$idb/model.json")"
jq -e --slurpfile a "$T/m.json" '.metrics.r2 > 0.7 and .metrics.r2 > $a[0].metrics.r2' "$T/mb.json" >/dev/null \
    || fail "--baseline backlog: R^2 $(jq .metrics.r2 "$T/mb.json") not above 0.7 and the plain model's"
"$tool" "$T/reg/$idb/model.ubj" "$T/predb.csv" 8 >"$T/denseb.txt" || fail "dense predictor (baseline): $(cat "$T/denseb.txt")"
awk -F, 'NR > 1 { d = $11 + log(1 + 1000 * $6 * $3) - $12; if (d > 1e-5 || d < -1e-5) { print "row " NR ": " d; exit 1 } }' \
    "$T/predb.csv" || fail "predicted_log != model_output + baseline"

# report: the tables carry the registered numbers.
"$NDTPIPE" report --registry "$T/reg" --model "$id" --out "$T/rep" 2>"$T/rep.log" || fail "report: $(cat "$T/rep.log")"
mae=$(printf '%.2f' "$(jq .metrics.mae_ms "$T/m.json")")
grep -q "^| $mae | " "$T/rep/report.md" || fail "report lacks MAE $mae: $(cat "$T/rep/report.md")"
[ "$(grep -c '^| 600 | [1-6] | ' "$T/rep/report.md")" -eq 6 ] || fail "report: per-regime table"
grep -q 'P97.5' "$T/rep/report.md" || fail "report: threshold table"
[ "$(grep -c '<rect ' "$T/rep/error-per-regime.svg")" -eq 6 ] || fail "report: SVG bars"
[ "$(grep -c '<circle ' "$T/rep/predicted-vs-observed.svg")" -eq "$want" ] || fail "report: scatter points"

# Same seed, same data: same metrics.
run train --data "$T/d.csv" --model xgboost --train users=200,400 --test users=600 \
    --registry "$T/reg2" --json "${small[@]}" >"$T/m2.json" 2>/dev/null || fail "second train"
[ "$(jq -c .metrics "$T/m.json")" = "$(jq -c .metrics "$T/m2.json")" ] || fail "same seed, different metrics"
[ "$(jq -r .model_id "$T/m.json" | cut -d- -f3)" = "$(jq -r .model_id "$T/m2.json" | cut -d- -f3)" ] || fail "same seed, different model bytes"

# Bad inputs: exit 2, the problem named, nothing registered.
expect2() { # expected-substring args...
    local want=$1; shift
    "$NDTPIPE" "$@" >"$T/out" 2>"$T/err"; local rc=$?
    [ $rc -eq 2 ] || fail "'$*': exit $rc, expected 2"
    grep -q -- "$want" "$T/err" || fail "'$*': message lacks '$want': $(cat "$T/err")"
}
base=(--model xgboost --train users=200,400 --test users=600 --registry "$T/bad" --rounds 5)
sed '1s/avg_cpu_system_pct,//' "$T/d.csv" >"$T/hdr.csv"
expect2 'hdr.csv:1: header' train --data "$T/hdr.csv" "${base[@]}"
awk 'NR == 5 { $0 = "1,200,1,nan,1,1,1,1,5" } { print }' "$T/d.csv" >"$T/nan.csv"
expect2 'nan.csv:5: avg_depth_on_enqueue' train --data "$T/nan.csv" "${base[@]}"
awk -F, 'NR == 7 { print "1,200,1,1,1,1,1" ; next } { print }' "$T/d.csv" >"$T/short.csv"
expect2 'short.csv:7: 7 fields' train --data "$T/short.csv" "${base[@]}"
printf '%s\n' "$(head -n 1 "$T/d.csv")" "1,200,1,1,1,1,1,1,5" "2,200,1,1,1,1,1,1,6" >"$T/tiny.csv"
expect2 'users=200 pods=1 has 2 rows' train --data "$T/tiny.csv" "${base[@]}"
{ cat "$T/tiny.csv"; grep '^[0-9]*,600,' "$T/d.csv" | head -n 20; } >"$T/tiny2.csv"
expect2 'users=200 pods=1 has 2 rows' train --data "$T/tiny2.csv" "${base[@]}" --trim none
expect2 'no rows match --test users=800' train --data "$T/d.csv" --model xgboost --train users=200 --test users=800 --registry "$T/bad"
expect2 '--train' train --data "$T/d.csv" --model xgboost --train cpu=3 --test users=600 --registry "$T/bad"
expect2 '--monotone on: the constraints hold the log latency' train --data "$T/d.csv" "${base[@]}" --baseline backlog --monotone on
expect2 '--monotone: expected on or off' train --data "$T/d.csv" "${base[@]}" --monotone maybe
expect2 '--rounds' train --data "$T/d.csv" "${base[@]}" --rounds 0
expect2 '--depth' train --data "$T/d.csv" "${base[@]}" --depth x
expect2 '--trim' train --data "$T/d.csv" "${base[@]}" --trim median
expect2 '--baseline' train --data "$T/d.csv" "${base[@]}" --baseline physics
expect2 '--model' train --data "$T/d.csv" --model forest --train users=200 --test users=600 --registry "$T/bad"
expect2 '--registry' train --data "$T/d.csv" --model xgboost --train users=200 --test users=600
expect2 '--data' train --model xgboost --train users=200 --test users=600 --registry "$T/bad"
expect2 'unknown option' train --data "$T/d.csv" "${base[@]}" --frobnicate
expect2 'model.json' report --registry "$T/reg" --model xgb-nonexistent --out "$T/rep2"
expect2 '--out' report --registry "$T/reg" --model "$id"
expect2 '--in' features --out "$T/x.csv"
expect2 'nan.csv:5' features --in "$T/nan.csv" --out "$T/x.csv"
[ ! -e "$T/bad" ] || fail "bad input registered something: $(ls -R "$T/bad")"
[ ! -e "$T/x.csv" ] && [ ! -e "$T/x.csv.tmp" ] || fail "bad features input wrote a file"
"$NDTPIPE" train --help | grep -q -- '--registry' || fail "train --help"
"$NDTPIPE" features --help | grep -q -- '--trim' || fail "features --help"
exit 0
