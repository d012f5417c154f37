# Helpers for benchmark scripts (source it; bash only).
#
# Benchmarks run peers side by side in the same run and report ratios;
# every daemon they start is stopped at exit.  Results go to stdout as
# Markdown so that docs/PERFORMANCE.md can quote them with the command.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NDTPIPE=${NDTPIPE:-$ROOT/build/ndtpipe}
NDT_FIXTURES=${NDT_FIXTURES:-$(cd "$ROOT/.." && pwd)/shared/fixtures}
B=$(mktemp -d "${TMPDIR:-/tmp}/ndt-bench.XXXXXX")
chmod 755 "$B"
_bench_pids=()

_bench_cleanup() {
    local pid
    for pid in "${_bench_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${_bench_pids[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    [ "${NDT_KEEP_TMP:-0}" = 1 ] && echo "kept $B" >&2 || rm -rf "$B"
}
trap _bench_cleanup EXIT

die() { echo "bench: $*" >&2; exit 1; }

bg() {
    local name=$1; shift
    "$@" >"$B/$name.log" 2>&1 &
    BG_PID=$!
    _bench_pids+=("$BG_PID")
}

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

wait_port() {
    local port=$1 limit=${2:-10} i
    for i in $(seq 1 $((limit * 20))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# cpu_seconds PID: user + system CPU the process has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

# prom_metric URL NAME: sum of the values of a metric family in an exposition.
prom_metric() {
    curl -sf "$1" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }'
}

# start_nginx_targets N FILE: serves FILE as /metrics on N ports; PORTS gets the list.
start_nginx_targets() {
    local n=$1 file=$2 i p
    mkdir -p "$B/www"
    cp "$file" "$B/www/metrics.txt"
    PORTS=()
    {
        echo "worker_processes 1; daemon off; pid $B/nginx.pid; error_log $B/nginx-error.log;"
        echo "events { worker_connections 8192; }"
        echo "http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;"
        echo "  server {"
        for i in $(seq 1 "$n"); do
            p=$(free_port)
            PORTS+=("$p")
            echo "    listen 127.0.0.1:$p;"
        done
        echo "    root $B/www;"
        echo "    location /metrics { default_type \"text/plain; version=0.0.4\"; try_files /metrics.txt =404; }"
        echo "  }"
        echo "}"
    } >"$B/nginx.conf"
    bg nginx nginx -c "$B/nginx.conf" -e "$B/nginx-error.log"
    wait_port "${PORTS[0]}" 10 || die "nginx did not start: $(cat "$B/nginx.log" "$B/nginx-error.log")"
}

# targets_yaml: the PORTS as a YAML flow list of 127.0.0.1:port.
targets_yaml() {
    local out="" p
    for p in "${PORTS[@]}"; do out+="\"127.0.0.1:$p\","; done
    echo "[${out%,}]"
}
