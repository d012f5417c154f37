#!/bin/bash
# campaign -> train --model dnn: the registry entry (kind dnn, model.dnn),
# its accuracy on the unseen 600 users, the same model bytes for the same
# seed (OpenBLAS on its default threads), the served predictor
# (model_predictor_load) giving the training run's outputs back for both
# kinds on the campaign's real rows (the XGBoost one through the compiled
# tree layout), and corrupt or foreign model files refused with exit 2.
# validate works on the DNN entry too.  Small DNN (8 epochs) so it runs in seconds; bounds from measurement.
. "$(dirname "$0")/lib.sh"
need jq
check=$(dirname "$NDTPIPE")/tools/predictor_check
[ -x "$check" ] || fail "missing $check (make)"
run() { nice -n 19 "$NDTPIPE" "$@"; }

run testbed campaign --users 200,400,600 --pods 1-6 --dwell 30s --seed 3 --out "$T/d.csv" 2>/dev/null || fail "campaign"
small=(--epochs 8 --seed 7 --baseline backlog)
split=(--data "$T/d.csv" --train users=200,400 --test users=600)
run train "${split[@]}" --model dnn --registry "$T/reg" --json "${small[@]}" --predictions "$T/pred.csv" \
    >"$T/m.json" 2>"$T/train.log" || fail "train --model dnn: $(cat "$T/train.log")"
id=$(jq -r .model_id "$T/m.json")
[[ "$id" =~ ^dnn-[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$ ]] || fail "model_id '$id'"
grep -q 'model=dnn .*epochs=8' "$T/train.log" || fail "training log: $(cat "$T/train.log")"
r2=$(jq .metrics.r2 "$T/m.json")
note "DNN R^2 on users=600: $r2, MAE $(jq .metrics.mae_ms "$T/m.json") ms, grade $(jq -r .grade "$T/m.json")"
# Measured 0.85 on this input (campaign seed 3, DNN seed 7, 8 epochs, the
# backlog baseline; 0.85 with seed 8).  Without the baseline the saturated
# 600-user regimes lie beyond the training range and R^2 swings from -0.35
# to 0.74 with the epoch count: an extrapolation lottery, not a test.  0.6
# fails a model that learned nothing or a broken backward pass; the
# regimes inside the training range are held to a tight MAE (measured
# 24-30 ms at 5-6 pods).
jq -e '.metrics.r2 > 0.6' "$T/m.json" >/dev/null || fail "R^2 $r2 <= 0.6"
jq -e '[.per_regime[] | select(.pods >= 5) | .mae_ms < 80] | all' "$T/m.json" >/dev/null \
    || fail "MAE on 600 users x 5-6 pods: $(jq -c '[.per_regime[] | .mae_ms]' "$T/m.json")"
jq -e '.per_regime | length == 6' "$T/m.json" >/dev/null || fail "per-regime table"

# The registry entry.
[ -s "$T/reg/$id/model.dnn" ] && [ ! -e "$T/reg/$id/model.ubj" ] || fail "registry files: $(ls "$T/reg/$id")"
jq -e '.kind == "dnn" and .model == "dnn" and .parameters.hidden_layers == [256,128,64]
    and .parameters.epochs == 8 and .parameters.loss == "huber" and .parameters.dropout == 0.3
    and (.features.names | length == 8)' "$T/reg/$id/model.json" >/dev/null \
    || fail "model.json: $(cat "$T/reg/$id/model.json")"

# report reads the DNN's entry like XGBoost's, with the DNN's parameters.
"$NDTPIPE" report --registry "$T/reg" --model "$id" --out "$T/rep" 2>"$T/rep.log" || fail "report: $(cat "$T/rep.log")"
grep -q '256-128-64, 8 epochs, batch 256' "$T/rep/report.md" || fail "report: $(head -n 3 "$T/rep/report.md")"
[ "$(grep -c '^| 600 | [1-6] | ' "$T/rep/report.md")" -eq 6 ] || fail "report: per-regime table"

# validate serves the DNN through the served predictor: the deployment
# grade is recorded, and the network knows which way a large load change
# goes (600 -> 200 users, measured: -232 ms predicted against -217 observed
# on matched pairs, sign agreement 0.99 matched and 1.0 through the engine).
run validate --registry "$T/reg" --model "$id" --data "$T/d.csv" --json --threads 2 >"$T/v.json" 2>"$T/v.log" \
    || fail "validate the DNN: $(cat "$T/v.log")"
note "DNN validation: $(jq -c '{deployment_grade, sa: [.scenarios[] | .counterfactual.sign_agreement], to200: (.scenarios[3].matched | {mean_predicted_delta_ms, mean_observed_delta_ms, sign_agreement})}' "$T/v.json")"
jq -e '.scenarios | length == 4' "$T/v.json" >/dev/null || fail "validate: $(head -c 300 "$T/v.json")"
jq -e '.scenarios[] | select(.name == "users 600->200") | .matched.mean_predicted_delta_ms < 0
    and .counterfactual.sign_agreement > 0.8' "$T/v.json" >/dev/null \
    || fail "DNN blind to users 600 -> 200: $(jq -c '.scenarios[3]' "$T/v.json" | head -c 400)"
grade=$(jq -r .deployment_grade "$T/v.json")
[[ "$grade" =~ ^(Excellent|Reliable|Unreliable)$ ]] || fail "deployment grade '$grade'"
[ "$grade" = "$(jq -r .deployment_grade "$T/reg/$id/model.json")" ] \
    && jq -e '.validation | type == "object"' "$T/reg/$id/model.json" >/dev/null \
    || fail "validation not recorded in model.json"

# Same seed, same data: the same bytes and metrics.
run train "${split[@]}" --model dnn --registry "$T/reg2" --json "${small[@]}" >"$T/m2.json" 2>/dev/null || fail "second train"
id2=$(jq -r .model_id "$T/m2.json")
cmp -s "$T/reg/$id/model.dnn" "$T/reg2/$id2/model.dnn" || fail "same seed, different model.dnn"
[ "$(jq -c .metrics "$T/m.json")" = "$(jq -c .metrics "$T/m2.json")" ] || fail "same seed, different metrics"
run train "${split[@]}" --model dnn --registry "$T/reg3" --json --epochs 8 --seed 8 --baseline backlog >"$T/m3.json" 2>/dev/null || fail "third train"
! cmp -s "$T/reg/$id/model.dnn" "$T/reg3/$(jq -r .model_id "$T/m3.json")/model.dnn" || fail "another seed, same bytes"

# The served predictor gives the training run's outputs back, for the DNN ...
"$check" "$T/reg" "$id" "$T/pred.csv" >"$T/check.txt" 2>&1 || fail "served DNN disagrees: $(cat "$T/check.txt")"
note "$(cat "$T/check.txt")"
# ... and for XGBoost through the compiled trees (with a baseline, depth 6).
run train "${split[@]}" --model xgboost --registry "$T/reg" --json --rounds 150 --depth 6 --eta 0.2 --threads 2 \
    --baseline backlog --predictions "$T/predx.csv" >"$T/mx.json" 2>/dev/null || fail "train xgboost"
idx=$(jq -r .model_id "$T/mx.json")
"$check" "$T/reg" "$idx" "$T/predx.csv" >"$T/checkx.txt" 2>&1 || fail "compiled trees disagree: $(cat "$T/checkx.txt")"
note "$(cat "$T/checkx.txt")"

# Corrupt and foreign model files: exit 2, the reason named.
expect2() { # expected-substring id
    "$check" "$T/reg" "$2" "$T/pred.csv" >"$T/out" 2>"$T/err"; local rc=$?
    [ $rc -eq 2 ] || fail "$2: exit $rc, expected 2 ($(cat "$T/out" "$T/err"))"
    grep -q -- "$1" "$T/err" || fail "$2: message lacks '$1': $(cat "$T/err")"
}
cp -r "$T/reg/$id" "$T/reg/flip"
printf '\x7f' | dd of="$T/reg/flip/model.dnn" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect2 'model.dnn: not a usable ndtpipe DNN model: checksum' flip
cp -r "$T/reg/$id" "$T/reg/short"
head -c 1000 "$T/reg/$id/model.dnn" >"$T/reg/short/model.dnn"
expect2 'checksum' short
cp -r "$T/reg/$id" "$T/reg/foreign"
cp "$T/reg/$idx/model.ubj" "$T/reg/foreign/model.dnn"
expect2 'wrong magic' foreign
cp -r "$T/reg/$id" "$T/reg/spec"
sed -i 's/"spec":"[^"]*"/"spec":"ndt-features-v0:users"/' "$T/reg/spec/model.json"
expect2 'ndt-features-v0' spec
cp -r "$T/reg/$id" "$T/reg/kind"
sed -i 's/"kind":"dnn"/"kind":"forest"/' "$T/reg/kind/model.json"
expect2 'kind' kind
cp -r "$T/reg/$idx" "$T/reg/badubj"
echo 'not a model' >"$T/reg/badubj/model.ubj"
expect2 'model.ubj' badubj

# Bad DNN flags: exit 2, nothing registered.
bad() { # expected-substring args...
    local want=$1; shift
    "$NDTPIPE" train "${split[@]}" --model dnn --registry "$T/bad" "$@" >"$T/out" 2>"$T/err"; local rc=$?
    [ $rc -eq 2 ] || fail "'$*': exit $rc, expected 2"
    grep -q -- "$want" "$T/err" || fail "'$*': message lacks '$want': $(cat "$T/err")"
}
bad '--epochs' --epochs 0
bad '--batch' --batch 1
bad '--lr' --lr 0
bad '--dropout' --dropout 1
bad '--dropout' --dropout x
[ ! -e "$T/bad" ] || fail "bad flags registered something"
"$NDTPIPE" train --help | grep -q -- '--dropout' || fail "train --help lacks the DNN flags"
exit 0
