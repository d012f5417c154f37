#!/bin/bash
# 15-config-promtool.sh: ndtpipe reads prometheus.yml the way Prometheus does.
#
#  1. Debian's `promtool check config` gives every file of tests/data/configs
#     the verdict the MANIFEST's promtool column records (the ndtpipe column
#     is checked by tests/unit/test_scrape_config.c, with exact messages);
#     ndtpipe's parser gives the ndtpipe column, rejects with exit 2 and a
#     FILE:LINE:COL message.
#  2. Prometheus 2.42 itself, started on the realistic prometheus.yml,
#     derives exactly the targets ndtpipe's discovery derives: the same
#     scrape URLs, intervals and timeouts, the same target labels (every
#     relabel action is used), the same number of targets
#     dropped by relabeling per job (static, file_sd, hashmod sharding,
#     blackbox-style __param_ rewriting, default ports).
#
# ndtpipe's side is printed by tests/integration/helpers/config_dump.c,
# compiled here against build/libndt.a.
. "$(dirname "$0")/lib.sh"
need promtool prometheus jq cc pkg-config openssl

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LIBNDT=$(dirname "$NDTPIPE")/libndt.a
[ -f "$LIBNDT" ] || skip "$LIBNDT not built (make)"
cc -std=c11 -D_GNU_SOURCE -I"$ROOT" $(pkg-config --cflags libcjson) \
    -o "$T/config_dump" "$ROOT/tests/integration/helpers/config_dump.c" "$LIBNDT" \
    $(pkg-config --libs yaml-0.1 libcjson libpcre2-8 libcrypto) -lm ||
    fail "cannot build the config_dump helper"

# A private copy, so the test can add the CA file the secure job names.
cp -r "$ROOT/tests/data/configs" "$T/configs"
mkdir -p "$T/configs/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=ndt-test-ca \
    -keyout "$T/configs/tls/ca.key" -out "$T/configs/tls/ca.pem" 2>/dev/null ||
    fail "openssl could not make a test CA"
cd "$T/configs" || fail "no config copy"

# --- 1. verdicts -----------------------------------------------------------
checked=0
while read -r file ours theirs _; do
    case "$file" in ''|'#'*) continue ;; esac
    [ -f "$file" ] || fail "MANIFEST names a missing file: $file"
    promtool check config "$file" >"$T/promtool.out" 2>&1
    rc=$?
    case "$theirs:$rc" in
        accept:0|reject:1) ;;
        *) cat "$T/promtool.out" >&2; fail "$file: promtool exit $rc, MANIFEST says $theirs" ;;
    esac
    "$T/config_dump" "$file" >/dev/null 2>"$T/ours.err"
    rc=$?
    case "$ours:$rc" in
        accept:0) ;;
        reject:2)
            grep -Eq "^$file:[0-9]+:[0-9]+: " "$T/ours.err" ||
                fail "$file: ndtpipe's error lacks FILE:LINE:COL: $(cat "$T/ours.err")" ;;
        *) cat "$T/ours.err" >&2; fail "$file: ndtpipe exit $rc, MANIFEST says $ours" ;;
    esac
    checked=$((checked + 1))
done < MANIFEST
[ "$checked" -ge 19 ] || fail "only $checked files in the MANIFEST"
note "verdicts agree with the MANIFEST for $checked files"

# --- 2. targets as Prometheus derives them ---------------------------------
"$T/config_dump" prometheus.yml >"$T/ours.jsonl" || fail "ndtpipe discovery failed"
jq -c 'select(.url) | {url, interval, timeout, labels}' "$T/ours.jsonl" | sort >"$T/ours.targets"
jq -c 'select(.dropped != null) | select(.dropped > 0) | {job, n: .dropped}' "$T/ours.jsonl" |
    sort >"$T/ours.dropped"
want=$(wc -l <"$T/ours.targets")
[ "$want" -ge 15 ] || fail "ndtpipe found only $want targets"

port=$(free_port)
bg prometheus prometheus --config.file="$T/configs/prometheus.yml" \
    --web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$T/tsdb" \
    --storage.remote.flush-deadline=1s
wait_port "$port" 15 || { cat "$T/prometheus.log" >&2; fail "prometheus did not start"; }
# Discovery results reach the scrape manager in batches (every 5 s).
got=0
for _ in $(seq 1 50); do
    curl -s "http://127.0.0.1:$port/api/v1/targets" >"$T/targets.json"
    got=$(jq '.data.activeTargets | length' "$T/targets.json" 2>/dev/null || echo 0)
    [ "$got" -ge "$want" ] && break
    sleep 0.5
done
jq -c '.data.activeTargets[] |
       {url: .scrapeUrl, interval: .scrapeInterval, timeout: .scrapeTimeout, labels}' \
    "$T/targets.json" | sort \
    >"$T/prom.targets"
jq -c '[.data.droppedTargets[] | .discoveredLabels.job] | group_by(.) |
       map({job: .[0], n: length}) | .[]' "$T/targets.json" | sort >"$T/prom.dropped"
diff -u "$T/prom.targets" "$T/ours.targets" >&2 ||
    fail "targets differ (- Prometheus, + ndtpipe)"
diff -u "$T/prom.dropped" "$T/ours.dropped" >&2 ||
    fail "dropped targets differ (- Prometheus, + ndtpipe)"
note "Prometheus and ndtpipe derive the same $want targets and drops"
exit 0
