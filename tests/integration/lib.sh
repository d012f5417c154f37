# Shared helpers for integration tests (source it; bash only).
#
# Every test gets a private temporary directory ($T) and a cleanup trap
# that stops every daemon started through bg (SIGTERM, then SIGKILL), so a
# failing test never leaves peers running.  Peers bind 127.0.0.1 only.
# Exit 77 means skipped (see tests/run.sh).

set -u
NDTPIPE=${NDTPIPE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/ndtpipe}
NDT_FIXTURES=${NDT_FIXTURES:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared/fixtures}
T=$(mktemp -d "${TMPDIR:-/tmp}/ndt-it.XXXXXX")
_ndt_pids=()

_ndt_cleanup() {
    local pid
    for pid in "${_ndt_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${_ndt_pids[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    if [ "${NDT_KEEP_TMP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap _ndt_cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skipped: $*"; exit 77; }
note() { echo "-- $*" >&2; }

# bg NAME CMD...: starts CMD in the background, output to $T/NAME.log;
# its pid is in $BG_PID and it is stopped at exit.
bg() {
    local name=$1; shift
    "$@" >"$T/$name.log" 2>&1 &
    BG_PID=$!
    _ndt_pids+=("$BG_PID")
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
# Ports come from below Linux's ephemeral range (32768-60999), where
# client sockets of earlier tests, lingering in TIME_WAIT, cannot collide
# with them.  Ports already handed out are remembered (in a file, since callers use
# $(free_port) subshells) so two peers started back to back never get the
# same one before the first has bound it.
free_port() {
    local p taken=${T:-${B:-/tmp}}/.ports
    while :; do
        p=$(( 10000 + RANDOM % 22000 ))
        grep -qx "$p" "$taken" 2>/dev/null && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        echo "$p" >>"$taken"
        echo "$p"
        return
    done
}

# wait_port PORT [SECONDS]: waits until 127.0.0.1:PORT accepts connections.
wait_port() {
    local port=$1 limit=${2:-10} i
    for i in $(seq 1 $((limit * 20))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# wait_file FILE [SECONDS]: waits until FILE exists and is not empty.
wait_file() {
    local f=$1 limit=${2:-10} i
    for i in $(seq 1 $((limit * 20))); do
        [ -s "$f" ] && return 0
        sleep 0.05
    done
    return 1
}

# need CMD...: skips the test when a peer program is missing.
need() {
    local c
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c not installed (make deps)"; done
}

# start_broker: runs `ndtpipe broker` and sets BROKERS to its bootstrap list.
start_broker() {
    bg broker "$NDTPIPE" broker --bootstrap-file "$T/bootstrap"
    wait_file "$T/bootstrap" 15 || { cat "$T/broker.log" >&2; fail "broker did not start"; }
    BROKERS=$(cat "$T/bootstrap")
    BROKER_PID=$BG_PID
}

# start_influxd [NAME]: runs Debian's influxd (1.x) on 127.0.0.1 with its
# data in $T, every listener overridden (its defaults bind all interfaces);
# sets INFLUX_HTTP (port) and INFLUXD_PID, waits for /ping.  Calling it again
# restarts the same server on the same ports and data.
start_influxd() {
    local name=influxd${1:-}
    if [ -z "${INFLUX_HTTP:-}" ]; then
        INFLUX_HTTP=$(free_port)
        cat >"$T/influxdb.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:$(free_port)"
[meta]
  dir = "$T/influx/meta"
[data]
  dir = "$T/influx/data"
  wal-dir = "$T/influx/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_HTTP"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
    fi
    bg "$name" influxd run -config "$T/influxdb.conf"
    INFLUXD_PID=$BG_PID
    for _ in $(seq 1 300); do
        curl -sf "http://127.0.0.1:$INFLUX_HTTP/ping" >/dev/null && return 0
        sleep 0.05
    done
    cat "$T/$name.log" >&2
    fail "influxd did not answer /ping"
}

# udr_flush: asks the udr_tool driver started as "writer" (commands on fd 3)
# to flush, waits for its answer and sets $out to it.
UDR_FLUSHES=0
udr_flush() {
    echo flush >&3
    UDR_FLUSHES=$((UDR_FLUSHES + 1))
    for _ in $(seq 1 200); do
        [ "$(grep -c '^flushed' "$T/writer.log")" -ge "$UDR_FLUSHES" ] && break
        sleep 0.05
    done
    out=$(grep '^flushed' "$T/writer.log" | sed -n "${UDR_FLUSHES}p")
    [ -n "$out" ] || fail "flush $UDR_FLUSHES unanswered"
}
