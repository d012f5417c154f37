#!/bin/bash
# Bad configuration and an unreachable broker: exit 2 naming file, line and
# key for a configuration mistake; for a broker that is not there, a clear
# error, no crash, bounded memory, and a clean exit on SIGTERM.
. "$(dirname "$0")/lib.sh"
TARGET=${NDTPIPE%/ndtpipe}/tools/test_target

# A typo in a key: exit 2, and the message names the file, the line and the key.
cat >"$T/typo.yml" <<'CONFIG'
global:
  scrape_interval: 20ms
scrape_configs:
  - job_name: node
    scrape_intervl: 1s
    static_configs:
      - targets: ["127.0.0.1:9100"]
CONFIG
"$NDTPIPE" scrape --config "$T/typo.yml" --brokers 127.0.0.1:1 >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 2 ] || fail "a typo'd key gave exit $rc, want 2"
grep -q "typo.yml:5:" "$T/err" || fail "the message does not name file and line: $(cat "$T/err")"
grep -q "scrape_intervl" "$T/err" || fail "the message does not name the key: $(cat "$T/err")"

# A bad duration value, a missing file, a bad flag: all exit 2.
printf 'global:\n  scrape_interval: 20 ms\nscrape_configs: []\n' >"$T/baddur.yml"
"$NDTPIPE" scrape --config "$T/baddur.yml" --brokers 127.0.0.1:1 2>"$T/err"; rc1=$?
"$NDTPIPE" scrape --config "$T/missing.yml" --brokers 127.0.0.1:1 2>/dev/null; rc2=$?
"$NDTPIPE" scrape --config "$T/typo.yml" --format protobuf 2>/dev/null; rc3=$?
"$NDTPIPE" scrape --config "$T/baddur.yml" --check-config 2>/dev/null; rc4=$?
[ $rc1 -eq 2 ] && grep -q "baddur.yml:2:" "$T/err" || fail "bad duration: exit $rc1, $(cat "$T/err")"
[ $rc2 -eq 2 ] || fail "missing config file: exit $rc2, want 2"
[ $rc3 -eq 2 ] || fail "unknown format: exit $rc3, want 2"
[ $rc4 -eq 2 ] || fail "--check-config on a bad file: exit $rc4, want 2"

# An unreachable broker: the scraper keeps scraping, says clearly what is
# wrong, and SIGTERM ends it within the flush timeout.
PORT=$(free_port)
bg target "$TARGET" --port "$PORT" --file "$NDT_FIXTURES/prometheus/alltypes.237mfs.prom.txt"
wait_port "$PORT" 5 || fail "test target did not start"
printf 'global:\n  scrape_interval: 20ms\nscrape_configs:\n  - job_name: t\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$PORT" >"$T/ok.yml"
"$NDTPIPE" scrape --config "$T/ok.yml" --check-config >/dev/null || fail "--check-config rejects a valid file"
# `check config` does the same for several files, like promtool check config.
"$NDTPIPE" check config "$T/ok.yml" >/dev/null || fail "check config rejects a valid file"
"$NDTPIPE" check config "$T/ok.yml" "$T/typo.yml" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 2 ] && grep -q "typo.yml:5:" "$T/err" && grep -q "ok.yml: ok" "$T/out" \
    || fail "check config on a good and a bad file: exit $rc, $(cat "$T/out" "$T/err")"
DEAD=$(free_port)
bg scrape "$NDTPIPE" scrape --config "$T/ok.yml" --brokers "127.0.0.1:$DEAD" --flush-timeout 2s \
    --stats-file "$T/stats.json"
pid=$BG_PID
sleep 4
kill -0 "$pid" || fail "the scraper died with the broker unreachable"
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
note "RSS with the broker unreachable for 4 s: ${rss_kb} kB"
[ "$rss_kb" -lt 400000 ] || fail "memory grew to $rss_kb kB with the broker away"
start=$(date +%s)
kill -TERM "$pid"
wait "$pid"
elapsed=$(( $(date +%s) - start ))
[ "$elapsed" -le 10 ] || fail "SIGTERM took $elapsed s with the broker away"
grep -Eiq "broker|kafka" "$T/scrape.log" || fail "no message says the broker is unreachable"
[ "$(grep -ci 'broker' "$T/scrape.log")" -lt 50 ] || fail "the broker error is logged without rate limit"
jq -e '.scrapes > 50' "$T/stats.json" >/dev/null || fail "the scraper stopped scraping: $(cat "$T/stats.json")"
echo ok
