#!/bin/bash
# Decode throughput of the three ndt.telemetry.raw readers
# (harmonize/decode.h) beside Avro C's reader and cJSON, on the messages
# the ingest stage publishes for one scrape of a real exposition.
#
#   bench/decode.sh [EXPOSITION] [SECONDS]
#
# Builds the release library (make), links bench/bench_decode.c against it
# into $BUILD/bench/, runs it.  docs/PERFORMANCE.md records the results.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
NDT_FIXTURES=${NDT_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
input=${1:-$NDT_FIXTURES/node_exporter/e2e-output.txt}
seconds=${2:-2}
make -s BUILD="$BUILD" all "$BUILD/bench/bench_decode" >/dev/null
exec "$BUILD/bench/bench_decode" "$input" "$seconds"
