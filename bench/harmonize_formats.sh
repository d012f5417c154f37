#!/bin/bash
# The harmonize stage's per-sample work in every format it consumes
# (issue 4's goal: at least 2 M samples/s per core in each): the mapping
# engine alone, then avro, json and influx decoding in front of it
# (bench_harmonize, testbed 3 pods, messages encoded once by ingest's own
# encoders, decoded in the timed loop).  Rounds alternate the modes and,
# with BASE_BENCH set, an older build's bench_harmonize against this one,
# so both see the same load drift; the table gives every round, the
# median and the ratio new/base.  BENCH_DIGEST=1 runs first show that
# both builds and all formats render the very same fragments.
#
#   bench/harmonize_formats.sh
#   ROUNDS=3 SCRAPES=3000 BASE_BENCH=/path/to/older/build/bench/bench_harmonize
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
SCRAPES=${SCRAPES:-3000}
RULES=sdm-schemas/mapping/testbed.yaml
make -s BUILD="$BUILD" "$BUILD/bench/bench_harmonize" >/dev/null || { echo "bench: build failed" >&2; exit 1; }
NEW=$BUILD/bench/bench_harmonize
BASE=${BASE_BENCH:-}
modes="engine engine12 avro json influx"
builds=new
[ -n "$BASE" ] && builds="base new"

bin() { [ "$1" = base ] && echo "$BASE" || echo "$NEW"; }
# run BUILD MODE SCRAPES: one bench_harmonize run; engine12 is the engine
# alone on a 12-pod exposition (half the scrapes: each is ~2x larger).
run() {
    if [ "$2" = engine12 ]; then
        "$(bin "$1")" "$RULES" 12 $(($3 / 2)) engine
    else
        "$(bin "$1")" "$RULES" 3 "$3" "$2"
    fi
}
field() { sed -n "s/.* $1=\([0-9a-f.]*\).*/\1/p"; }

# Same output everywhere: one digest per build and mode (an older build
# without BENCH_DIGEST support prints none).
digests=""
for b in $builds; do
    for m in engine avro json influx; do # the same 3-pod input in every format
        d=$(BENCH_DIGEST=1 run "$b" "$m" 300 | field digest)
        digests="$digests ${d:--}"
    done
done
distinct=$(echo "$digests" | tr ' ' '\n' | grep -v '^-*$' | sort -u | wc -l)

declare -A got
for r in $(seq 1 "$ROUNDS"); do
    for m in $modes; do
        for b in $builds; do
            got[$b,$m]="${got[$b,$m]:-} $(run "$b" "$m" "$SCRAPES" | field samples_per_s)"
        done
    done
done
median() { echo "$@" | tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); fragment digests: $distinct distinct over$digests"
echo
if [ -n "$BASE" ]; then
    echo "| samples/s per core, 3 pods unless said | base rounds | base median | new rounds | new median | new/base | goal |"
    echo "|---|---|---:|---|---:|---:|---:|"
else
    echo "| samples/s per core, 3 pods unless said | rounds | median | goal |"
    echo "|---|---|---:|---:|"
fi
for m in $modes; do
    case $m in
        engine) label="engine" ;;
        engine12) label="engine, 12 pods" ;;
        *) label="decode $m + engine" ;;
    esac
    n=$(median ${got[new,$m]})
    if [ -n "$BASE" ]; then
        o=$(median ${got[base,$m]})
        echo "| $label | ${got[base,$m]# } | $o | ${got[new,$m]# } | $n | $(awk -v a="$n" -v b="$o" 'BEGIN { printf "%.2f", a / b }') | 2000000 |"
    else
        echo "| $label | ${got[new,$m]# } | $n | 2000000 |"
    fi
done
