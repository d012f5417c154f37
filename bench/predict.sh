#!/bin/bash
# Single-row prediction latency: ndtpipe's compiled tree predictor against
# XGBoost's own XGBoosterPredictFromDense, same booster (the paper's 2000
# trees of depth 8, eta 0.05, hist), same rows, same run.  The harness
# also checks both give the same numbers (max |diff| must be <= 1e-6).
#
#   bench/predict.sh                       (make bench runs it)
#   ROWS=50000 SAMPLES=2000 MODEL=file.ubj (a saved booster skips training)
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
ROWS=${ROWS:-50000}
SAMPLES=${SAMPLES:-2000}
make -s BUILD="$BUILD" "$BUILD/bench/bench_predict" >/dev/null || die "build failed"
args=(--rows "$ROWS" --samples "$SAMPLES")
[ -n "${MODEL:-}" ] && args+=(--model "$MODEL")
"$BUILD/bench/bench_predict" "${args[@]}" >"$B/out" 2>"$B/err" || die "bench_predict: $(cat "$B/out" "$B/err")"
get() { sed -n "s/.*method=$1 .*$2=\([0-9.]*\).*/\1/p" "$B/out"; }
xgb1=$(get xgboost_dense_nthread1 p50_us); xgb2=$(get xgboost_dense_nthread2 p50_us)
best=$(awk -v a="$xgb1" -v b="$xgb2" 'BEGIN { print (a < b ? a : b) }')
echo "$(grep '^trees=' "$B/out"); $(cat "$B/err")"
echo
echo "| predictor (one row, 2000 trees, depth 8) | p50 (us) | p99 (us) | speed-up vs XGBoost's best p50 |"
echo "|---|---|---|---|"
for m in xgboost_dense_nthread1 xgboost_dense_nthread2 flat_complete flat_complete_scalar flat_sparse; do
    p50=$(get "$m" p50_us); p99=$(get "$m" p99_us)
    echo "| $m | $p50 | $p99 | $(awk -v x="$best" -v y="$p50" 'BEGIN { printf "%.1fx", x / y }') |"
done
echo
echo "batch: $(get flat_complete_batch us_per_row) us/row for $SAMPLES rows, one thread; $(grep max_abs_diff "$B/out")"
