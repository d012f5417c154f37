#!/bin/bash
# The embedded broker's produce -> delivery hop, with Nagle on the broker's
# sockets (librdkafka's mock as configured by default) and with TCP_NODELAY
# (`ndtpipe broker`), side by side in one process: bench/bench_kafka_hop.c.
#
#   bench/kafka_hop.sh [TICKS] [MESSAGES_PER_TICK]     (default 250 10: 5 s)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -s BUILD="$BUILD" "$BUILD/bench/bench_kafka_hop" >/dev/null || { echo "bench: build failed" >&2; exit 1; }
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
exec "$BUILD/bench/bench_kafka_hop" "$@"
