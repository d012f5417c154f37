#!/bin/bash
# Actuation stability: how often the recommendation of the live demo twin
# changes, with and without the two scale-down guards of docs/API.md
# ("Hysteresis"): the band (--scale-down-margin) and the stabilization
# window (--scale-down-window).
#
# `ndtpipe run --demo --objective-ms OBJ` (400 users on 3 pods, the
# bootstrap model) runs once per variant for DURATION; GET
# /v1/recommendation is read once a second and every change of
# recommended_replicas counted.  The first variant trains the bootstrap
# model; the others reuse it from the same data directory, so every
# variant answers with the same model.
#
#   bench/actuate.sh          (make bench runs it)
#   DURATION=180 OBJECTIVE=150
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
DURATION=${DURATION:-180}
OBJECTIVE=${OBJECTIVE:-150}
command -v jq >/dev/null || die "jq missing (make deps)"
make -s BUILD="$BUILD" all >/dev/null || die "build failed"

# variant TAG NAME FLAGS...: one run; prints a Markdown row.
variant() {
    local tag=$1 name=$2 port pid t reads=0 changes=0 prev="" rec lo=999 hi=0 ups=0 downs=0
    shift 2
    port=$(free_port)
    bg "run-$tag" "$NDTPIPE" run --demo --data-dir "$B/data" --listen "127.0.0.1:$port" \
        --objective-ms "$OBJECTIVE" "$@"
    pid=$BG_PID
    for _ in $(seq 1 600); do # the first run trains the bootstrap model
        curl -sf "http://127.0.0.1:$port/v1/recommendation" >"$B/rec.json" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || die "run --demo ($name) exited: $(tail -3 "$B/run-$tag.log" 2>/dev/null)"
        sleep 0.5
    done
    t=$(($(date +%s) + DURATION))
    while [ "$(date +%s)" -lt "$t" ]; do
        if curl -sf "http://127.0.0.1:$port/v1/recommendation" >"$B/rec.json" 2>/dev/null; then
            rec=$(jq -r '.recommended_replicas // empty' "$B/rec.json" 2>/dev/null)
            if [ -n "$rec" ]; then
                reads=$((reads + 1))
                [ "$rec" -lt "$lo" ] && lo=$rec
                [ "$rec" -gt "$hi" ] && hi=$rec
                if [ -n "$prev" ] && [ "$rec" != "$prev" ]; then
                    changes=$((changes + 1))
                    if [ "$rec" -gt "$prev" ]; then ups=$((ups + 1)); else downs=$((downs + 1)); fi
                fi
                prev=$rec
            fi
        fi
        sleep 1
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ "$reads" -gt 0 ] || die "no recommendation read ($name)"
    echo "| $name | $reads | $changes ($ups up, $downs down) | $lo-$hi |"
}

echo "## Actuation stability: run --demo --objective-ms $OBJECTIVE, ${DURATION} s per variant, one read a second"
echo
echo "| scale-down guards | reads | changes of the recommendation | replicas seen |"
echo "|---|---:|---:|---|"
variant default "band and 60 s window (default)"
variant band "band only (--scale-down-window 0)" --scale-down-window 0
variant none "none (--scale-down-margin 0 --scale-down-window 0)" --scale-down-margin 0 --scale-down-window 0
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
