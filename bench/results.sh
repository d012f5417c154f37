#!/bin/bash
# The paper's experiment end to end (docs/RESULTS.md), results as Markdown:
# a testbed campaign (200/400/600 users x 1..6 pods), XGBoost trained on
# 200/400 users and tested on the unseen 600 (Tables IV-VI), then the
# matched-pairs validation (Table VII) on the same campaign; then the same
# for the DNN.
#
#   bench/results.sh [DWELL] [ROUNDS]   (default 4m per regime, as the paper's
#                                        259k samples; 2000 rounds)
#   NDTPIPE=path  SEED=n  THREADS=n     (defaults build/ndtpipe, 1, 2)
#   EPOCHS=n                            (the DNN's, default 60)
#   AVG_WINDOW=dur                      (the testbed's averaging window, default its own 5s)
#   KEEP=dir                            (keep the dataset, models and JSON there)
# Paper-size: ~2 min on 2 cores for the campaign and validation, plus the
# training (20-60 s).  Writes only under a temporary directory.
set -u
cd "$(dirname "$0")/.."
NDTPIPE=${NDTPIPE:-$PWD/build/ndtpipe}
DWELL=${1:-4m}
ROUNDS=${2:-2000}
SEED=${SEED:-1}
THREADS=${THREADS:-2}
EPOCHS=${EPOCHS:-60}
AVG_WINDOW=${AVG_WINDOW:-}
KEEP=${KEEP:-}
T=$(mktemp -d "${TMPDIR:-/tmp}/ndt-results.XXXXXX")
trap 'rm -rf "$T"' EXIT
command -v jq >/dev/null || { echo "bench/results.sh needs jq" >&2; exit 1; }

echo "## Paper experiment (bench/results.sh $DWELL $ROUNDS, seed $SEED)"
echo
echo "Machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%d)."
echo
"$NDTPIPE" testbed campaign --dwell "$DWELL" --seed "$SEED" ${AVG_WINDOW:+--avg-window "$AVG_WINDOW"} --out "$T/d.csv" 2>/dev/null || { echo "campaign failed" >&2; exit 1; }
report_model() {
    MODEL=$1 MODEL_OPTS=$2
    start=$(date +%s%N)
    nice -n 19 "$NDTPIPE" train --data "$T/d.csv" --model "$MODEL" --train users=200,400 --test users=600 \
        --registry "$T/reg" --json $MODEL_OPTS --threads "$THREADS" >"$T/m-$MODEL.json" 2>"$T/train-$MODEL.log" \
        || { cat "$T/train-$MODEL.log" >&2; exit 1; }
    train_s=$(( ($(date +%s%N) - start) / 1000000 ))
    id=$(jq -r .model_id "$T/m-$MODEL.json")
    nice -n 19 "$NDTPIPE" validate --registry "$T/reg" --model "$id" --data "$T/d.csv" --json \
        --threads "$THREADS" >"$T/v-$MODEL.json" 2>"$T/validate-$MODEL.log" || { cat "$T/validate-$MODEL.log" >&2; exit 1; }

    echo "### $MODEL"
    echo
    echo "Rows: $(( $(wc -l <"$T/d.csv") - 1 )); train $(jq .n_train "$T/m-$MODEL.json"), test $(jq .n_test "$T/m-$MODEL.json") (after p1p99 trimming); training ${train_s} ms wall."
    echo
    echo "| R^2 | MAE (ms) | RMSE (ms) | P95 error (ms) | mean latency (ms) | grade |"
    echo "|---|---|---|---|---|---|"
    jq -r '.metrics | "| \(.r2 * 10000 | round / 10000) | \(.mae_ms * 100 | round / 100) | \(.rmse_ms * 100 | round / 100) | \(.p95_abs_error_ms * 100 | round / 100) | \(.mean_observed_ms * 10 | round / 10) |"' "$T/m-$MODEL.json" \
        | sed "s/|\$/| $(jq -r .grade "$T/m-$MODEL.json") |/"
    echo
    echo "| high latency | threshold (ms) | samples | MAE (ms) | RMSE (ms) | R^2 |"
    echo "|---|---|---|---|---|---|"
    jq -r '.high_latency[] | "| >= P\(.quantile * 1000 | round / 10) | \(.threshold_ms * 10 | round / 10) | \(.n) | \(.mae_ms * 100 | round / 100) | \(.rmse_ms * 100 | round / 100) | \(if .r2 == null then "-" else (.r2 * 10000 | round / 10000) end) |"' "$T/m-$MODEL.json"
    echo
    echo "| users | pods | samples | MAE (ms) | RMSE (ms) | mean (ms) |"
    echo "|---|---|---|---|---|---|"
    jq -r '.per_regime[] | "| \(.users) | \(.pods) | \(.n) | \(.mae_ms * 100 | round / 100) | \(.rmse_ms * 100 | round / 100) | \(.mean_observed_ms * 10 | round / 10) |"' "$T/m-$MODEL.json"
    echo
    echo "Validation: deployment grade **$(jq -r .deployment_grade "$T/v-$MODEL.json")** (counterfactual), $(jq -r .matched_grade "$T/v-$MODEL.json") on matched samples."
    echo
    echo "| scenario | method | mean predicted delta (ms) | mean observed delta (ms) | sign agreement | MAE of deltas (ms) | sensitivity |"
    echo "|---|---|---|---|---|---|---|"
    jq -r '.scenarios[] | . as $s | ("matched", "counterfactual") as $m | $s[$m] |
        "| \($s.name) | \($m) | \(.mean_predicted_delta_ms * 100 | round / 100) | \(.mean_observed_delta_ms * 100 | round / 100) | \(.sign_agreement * 1000 | round / 1000) | \(.mae_delta_ms * 100 | round / 100) | \(.sensitivity_category) (\(.sensitivity * 100 | round / 100)) |"' "$T/v-$MODEL.json"
    echo
    echo "| transition | pairs | observed delta (ms) | matched (ms) | counterfactual (ms) | sign agreement matched / counterfactual |"
    echo "|---|---|---|---|---|---|"
    jq -r 'def r3: if . == null then "-" else (. * 1000 | round / 1000) end;
        .scenarios[].transitions[] | "| \(.from_users) x \(.from_pods) -> \(.to_users) x \(.to_pods) | \(.n_pairs) | \(.mean_observed_delta_ms * 10 | round / 10) +- \(.se_observed_delta_ms * 10 | round / 10)\(if .direction == 0 then " (none)" else "" end) | \(.matched_mean_predicted_delta_ms * 10 | round / 10) | \(.counterfactual_mean_predicted_delta_ms * 10 | round / 10) | \(.matched_sign_agreement | r3) / \(.counterfactual_sign_agreement | r3) |"' "$T/v-$MODEL.json"
}

report_model xgboost "--rounds $ROUNDS"
echo
report_model dnn "--epochs $EPOCHS --seed 1"
[ -z "$KEEP" ] || { mkdir -p "$KEEP" && cp -r "$T"/. "$KEEP"/; }
