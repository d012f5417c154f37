#!/bin/bash
# check_vs_promtool.sh: `ndtpipe check metrics` against `promtool check
# metrics` on the same large exposition, whole process: wall time and
# maximum RSS from /usr/bin/time -v, best of RUNS runs each, and the ratio.
# Then the parser's own throughput on node-exporter output (bench_expo),
# as text and rewritten as OpenMetrics (bench/gen_openmetrics.sh).
#
#   bench/check_vs_promtool.sh          (make bench runs it)
#   COPIES=166 RUNS=3 BENCH_DIR=build/bench
#
# The input is node-exporter's e2e-output.txt (3,027 samples) with every
# sample repeated COPIES times under added target labels
# (bench/gen_exposition.sh): ~100 MB and ~500,000 samples by default.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
NDT_FIXTURES=${NDT_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
COPIES=${COPIES:-166}
RUNS=${RUNS:-3}
dir=${BENCH_DIR:-$BUILD/bench}
src=$NDT_FIXTURES/node_exporter/e2e-output.txt
ndtpipe=$BUILD/ndtpipe
mkdir -p "$dir"

for tool in promtool /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench: $tool missing (make deps)" >&2; exit 1; }
done
[ -x "$ndtpipe" ] || { echo "bench: build first (make)" >&2; exit 1; }

big=$dir/node-exporter-x$COPIES.prom
[ -s "$big" ] || bench/gen_exposition.sh "$src" "$COPIES" >"$big"
bytes=$(stat -c %s "$big")
samples=$("$ndtpipe" check metrics --dump <"$big" | wc -l)

# measure NAME CMD...: best wall seconds and its max RSS (KiB) of RUNS runs;
# the command reads the exposition on stdin, as `promtool check metrics` does.
measure() {
    local name=$1 best_s= best_kb= r s kb rc; shift
    for r in $(seq 1 "$RUNS"); do
        rc=0
        /usr/bin/time -v -o "$dir/$name.time" "$@" <"$big" >/dev/null 2>"$dir/$name.err" || rc=$?
        # promtool exits 3 for lint findings only: the exposition is valid.
        [ $rc = 0 ] || [ $rc = 3 ] || { echo "bench: $name failed ($rc)" >&2; cat "$dir/$name.err" >&2; exit 1; }
        s=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); v = 0; for (i = 1; i <= n; i++) v = v * 60 + t[i]; print v }' "$dir/$name.time")
        kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$dir/$name.time")
        if [ -z "$best_s" ] || awk -v a="$s" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
            best_s=$s best_kb=$kb
        fi
    done
    echo "$best_s $best_kb"
}

read -r p_s p_kb < <(measure promtool promtool check metrics)
read -r n_s n_kb < <(measure ndtpipe "$ndtpipe" check metrics)

echo "## check metrics vs promtool"
echo "input: $big ($bytes bytes, $samples samples), best of $RUNS runs"
awk -v ps="$p_s" -v pk="$p_kb" -v ns="$n_s" -v nk="$n_kb" -v bytes="$bytes" 'BEGIN {
    printf "| tool | wall s | max RSS MiB | MB/s |\n|---|---|---|---|\n"
    printf "| promtool check metrics | %.2f | %.1f | %.0f |\n", ps, pk / 1024, bytes / ps / 1e6
    printf "| ndtpipe check metrics | %.3f | %.1f | %.0f |\n", ns, nk / 1024, bytes / ns / 1e6
    printf "ratio: ndtpipe is %.1fx faster and uses %.1fx less memory\n", ps / ns, pk / nk
}'

# Parser throughput, one core, node-exporter output parsed over and over.
make -s BUILD="$BUILD" "$BUILD/bench/bench_expo" >/dev/null
echo
echo "## parse throughput (one core)"
echo "text:        $("$BUILD/bench/bench_expo" --seconds 3 "$src")"
bench/gen_openmetrics.sh "$src" >"$dir/e2e-output.om.txt"
echo "openmetrics: $("$BUILD/bench/bench_expo" --openmetrics --seconds 3 "$dir/e2e-output.om.txt")"
