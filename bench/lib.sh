# Helpers for benchmark scripts (source it; bash only).
#
# Benchmarks run peers side by side in the same run and report ratios.
# Results go to stdout as Markdown so that docs/PERFORMANCE.md can quote
# them with the command.

# The process and port plumbing is the integration tests' (lib.sh there):
# every daemon started through bg is stopped at exit, ports never collide.
. "$(dirname "${BASH_SOURCE[0]}")/../tests/integration/lib.sh"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=$T
chmod 755 "$B" # nginx's workers run as nobody and read files from here

die() { echo "bench: $*" >&2; exit 1; }

# cpu_seconds PID: user + system CPU the process has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

# prom_metric URL NAME: sum of the values of a metric family in an exposition.
prom_metric() {
    curl -sf "$1" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }'
}

# capture_node_pages PREFIX COUNT: COUNT real node-exporter pages taken
# 0.5 s apart, as PREFIX-0.prom ... PREFIX-(COUNT-1).prom: the same series
# with the values a live target moves on to between scrapes.
capture_node_pages() {
    local port pid i
    port=$(free_port)
    bg node-exporter prometheus-node-exporter --web.listen-address="127.0.0.1:$port" --no-collector.systemd
    pid=$BG_PID
    wait_port "$port" || die "node-exporter did not start"
    sleep 1
    for i in $(seq 0 $(($2 - 1))); do
        [ "$i" -gt 0 ] && sleep 0.5
        curl -sf "http://127.0.0.1:$port/metrics" >"$1-$i.prom" || die "cannot scrape node-exporter"
    done
    kill "$pid"
}

# capture_node_exposition FILE: one real node-exporter page, captured once
# and then served statically (node-exporter itself would cost more CPU than
# the scrapers or receivers being measured).
capture_node_exposition() {
    capture_node_pages "$1.capture" 1
    mv "$1.capture-0.prom" "$1"
}

# start_nginx_targets N FILE...: serves /metrics on N ports; PORTS gets the
# list.  With one FILE every target serves it.  With several, each target
# serves them in turn, the next one on every request of its keep-alive
# connection (the last digit of nginx's $connection_requests picks it, so
# 2, 5 or 10 files rotate evenly), starting at a different file per target:
# every scrape sees other values than the one before it, and the targets
# do not serve the same bytes at the same time, as with live exporters.
start_nginx_targets() {
    local n=$1 i j d p
    shift
    local files=("$@") k=$#
    PORTS=()
    {
        echo "worker_processes 1; daemon off; pid $B/nginx.pid; error_log $B/nginx-error.log;"
        echo "events { worker_connections 8192; }"
        echo "http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s;"
        echo "  map \$connection_requests \$page {"
        for d in $(seq 0 9); do echo "    ~$d\$ $((d % k));"; done
        echo "  }"
        for i in $(seq 0 $((n - 1))); do
            mkdir -p "$B/www/t$i"
            for j in $(seq 0 $((k - 1))); do
                cp "${files[$(((i + j) % k))]}" "$B/www/t$i/metrics-$j.txt"
            done
            p=$(free_port)
            PORTS+=("$p")
            echo "  server { listen 127.0.0.1:$p; root $B/www/t$i;"
            echo "    location /metrics { default_type \"text/plain; version=0.0.4\"; try_files /metrics-\$page.txt =404; } }"
        done
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
