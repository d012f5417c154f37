#!/bin/bash
# Encode throughput per Kafka payload format (json, influx, avro, and Avro
# C's generic API for comparison) plus the whole sink into the in-process
# mock broker, on a batch read from a real exposition.
#
#   bench/encode.sh [EXPOSITION] [SECONDS]
#
# Builds the release library (make), links bench/bench_encode.c against it
# into $BUILD/bench/, runs it.  Results go to stdout; docs/PERFORMANCE.md
# records them with the machine they were measured on.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
NDT_FIXTURES=${NDT_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
input=${1:-$NDT_FIXTURES/node_exporter/e2e-output.txt}
seconds=${2:-2}
make -s BUILD="$BUILD" all "$BUILD/bench/bench_encode" >/dev/null
exec "$BUILD/bench/bench_encode" "$input" "$seconds" 2> >(grep -v 'level=info' >&2)
