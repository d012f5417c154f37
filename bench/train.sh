#!/bin/bash
# Training time of the two functional models on a testbed campaign, same
# rows, same run: XGBoost in the paper's configuration (2000 trees, depth
# 8, eta 0.05, hist) and the DNN (256-128-64, 60 epochs of batch 256),
# both on all cores, through `ndtpipe train` (so the times include what a
# user waits for: features, the split and the evaluation, which are
# small next to the training itself; train_seconds is training alone).
#
#   bench/train.sh                 (make bench runs it: ~250k training rows)
#   DWELL=430s EPOCHS=60 ROUNDS=2000
# DWELL sets the size: each (users, pods) regime gets DWELL / 20 ms rows
# and the 12 training regimes (200 and 400 users x 1..6 pods) keep ~98%
# of them after trimming, so 430s gives ~252k training rows.
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
DWELL=${DWELL:-430s}
EPOCHS=${EPOCHS:-60}
ROUNDS=${ROUNDS:-2000}
make -s BUILD="$BUILD" all >/dev/null || die "build failed"
"$BUILD/ndtpipe" testbed campaign --users 200,400,600 --pods 1-6 --dwell "$DWELL" --seed 1 \
    --out "$B/d.csv" 2>"$B/campaign.log" || die "campaign: $(cat "$B/campaign.log")"
split=(--data "$B/d.csv" --train users=200,400 --test users=600 --registry "$B/reg" --json)
echo "| model | training rows | train_seconds | wall s (whole command) | R^2 on users=600 |"
echo "|---|---|---|---|---|"
for model in xgboost dnn; do
    if [ "$model" = xgboost ]; then args=(--rounds "$ROUNDS" --depth 8 --eta 0.05); else args=(--epochs "$EPOCHS"); fi
    t0=$(date +%s%N)
    "$BUILD/ndtpipe" train "${split[@]}" --model "$model" "${args[@]}" >"$B/$model.json" 2>"$B/$model.log" \
        || die "train $model: $(cat "$B/$model.log")"
    t1=$(date +%s%N)
    jq -r --arg m "$model ${args[*]}" --arg wall "$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", ns / 1e9 }')" \
        '"| \($m) | \(.n_train) | \(.train_seconds * 10 | round / 10) | \($wall) | \(.metrics.r2 * 1000 | round / 1000) |"' "$B/$model.json"
done
