#!/bin/sh
# Installs the Debian packages ndtpipe builds, tests and benchmarks with,
# but only those missing, so `make test` on a ready machine costs nothing.
set -eu

PACKAGES="
build-essential pkg-config clang libclang-rt-14-dev
librdkafka-dev libcurl4-openssl-dev libprotobuf-c-dev protobuf-c-compiler
libcjson-dev libavro-dev libmicrohttpd-dev libyaml-dev libsqlite3-dev
libxgboost-dev libopenblas-dev zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
libpcre2-dev libcmocka-dev libssl-dev
kcat prometheus prometheus-node-exporter influxdb victoria-metrics nginx-light
python3-jsonschema python3-yaml
wrk hyperfine docker-compose curl ca-certificates jq openssl time
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
