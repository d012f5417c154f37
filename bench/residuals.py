#!/usr/bin/env python3
"""Where a model's error is: per regime and per time since the regime began.

    bench/residuals.py DATASET.csv PREDICTIONS.csv

DATASET is the campaign CSV the model was trained and tested on (its regimes
follow each other in time, so a regime's first row is its transition);
PREDICTIONS is `ndtpipe train --predictions`.  Prints R^2 and RMSE over the
test rows, then per pod count and window since the transition: rows, bias
(predicted - observed, ms), RMSE and the share of the squared error, and R^2
without every regime's first minute (a diagnosis, not a result: the paper's
trimming is P1/P99 per regime and nothing else).  docs/RESULTS.md, "What
changed", was measured with it.  Plain Python 3, no packages.
"""
import csv
import math
import sys

WINDOWS = [0, 5, 10, 20, 30, 60, 120, math.inf]


def window_name(t):
    for lo, hi in zip(WINDOWS, WINDOWS[1:]):
        if t < hi:
            return f"{lo}-{hi}s" if hi != math.inf else f"{lo}s-end"
    return "?"


def main(dataset, predictions):
    start, prev = {}, None
    with open(dataset) as f:
        rows = csv.reader(f)
        next(rows)
        for row in rows:
            key = (int(row[1]), int(row[2]))
            if key != prev and key not in start:
                start[key] = int(row[0])
            prev = key
    test = []
    with open(predictions) as f:
        for row in csv.DictReader(f):
            key = (int(float(row["users"])), int(float(row["pods"])))
            test.append((int(row["timestamp_ms"]), key, float(row["observed_ms"]),
                         float(row["predicted_ms"])))
    if not test:
        sys.exit("no test rows in " + predictions)
    mean = sum(r[2] for r in test) / len(test)
    sst = sum((r[2] - mean) ** 2 for r in test)
    sse = sum((r[3] - r[2]) ** 2 for r in test)
    print(f"rows {len(test)}  R^2 {1 - sse / sst:.4f}  RMSE {math.sqrt(sse / len(test)):.2f} ms")
    groups = {}
    for ts, key, obs, pred in test:
        since = (ts - start[key]) / 1000
        for name in ("all", window_name(since)):
            g = groups.setdefault((key, name), [0, 0.0, 0.0])
            g[0] += 1
            g[1] += pred - obs
            g[2] += (pred - obs) ** 2
    print("users pods window      rows   bias_ms  rmse_ms  share")
    def order(group):
        key, name = group
        return key, name != "all", 0 if name == "all" else float(name.split("-")[0].rstrip("s"))
    for key, name in sorted(groups, key=order):
        n, bias, sq = groups[(key, name)]
        print(f"{key[0]:5} {key[1]:4} {name:9} {n:6} {bias / n:9.1f} {math.sqrt(sq / n):8.1f} {100 * sq / sse:5.1f}%")
    late = [r for r in test if (r[0] - start[r[1]]) / 1000 >= 60]
    if late:
        m = sum(r[2] for r in late) / len(late)
        r2 = 1 - sum((r[3] - r[2]) ** 2 for r in late) / sum((r[2] - m) ** 2 for r in late)
        print(f"R^2 without every regime's first minute: {r2:.4f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
