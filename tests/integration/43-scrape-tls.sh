#!/bin/bash
# Scraping over TLS from Debian's node-exporter serving HTTPS with a
# certificate of a test CA: ca_file plus server_name verifies, an unknown CA
# or a wrong server_name fails with a certificate error, and
# insecure_skip_verify accepts anything.
. "$(dirname "$0")/lib.sh"
need prometheus-node-exporter openssl kcat jq

# A test CA and a server certificate for the name scrape.test (not the
# address we connect to: server_name has to do the work).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ndtpipe test CA" \
    -keyout "$T/ca.key" -out "$T/ca.crt" 2>/dev/null || fail "cannot make a CA"
openssl req -newkey rsa:2048 -nodes -subj "/CN=scrape.test" \
    -keyout "$T/server.key" -out "$T/server.csr" 2>/dev/null || fail "cannot make a CSR"
printf 'subjectAltName=DNS:scrape.test\n' >"$T/san.ext"
openssl x509 -req -in "$T/server.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial \
    -days 2 -extfile "$T/san.ext" -out "$T/server.crt" 2>/dev/null || fail "cannot sign"
printf 'tls_server_config:\n  cert_file: %s\n  key_file: %s\n' "$T/server.crt" "$T/server.key" \
    >"$T/web.yml"

start_broker
PORT=$(free_port)
bg node-exporter prometheus-node-exporter --web.listen-address="127.0.0.1:$PORT" \
    --web.config.file="$T/web.yml" --collector.disable-defaults --collector.loadavg
wait_port "$PORT" 10 || fail "node-exporter did not start"

cat >"$T/scrape.yml" <<CONFIG
global:
  scrape_interval: 300ms
  scrape_timeout: 290ms
scrape_configs:
  - job_name: verified
    scheme: https
    tls_config: {ca_file: $T/ca.crt, server_name: scrape.test}
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
  - job_name: insecure
    scheme: https
    tls_config: {insecure_skip_verify: true}
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
  - job_name: unknown-ca
    scheme: https
    tls_config: {server_name: scrape.test}
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
  - job_name: wrong-name
    scheme: https
    tls_config: {ca_file: $T/ca.crt, server_name: other.test}
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
CONFIG
bg scrape "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS" --format json
SCRAPE_PID=$BG_PID
sleep 3
kill -TERM "$SCRAPE_PID"
wait "$SCRAPE_PID" || fail "scrape exited $?"
kcat -b "$BROKERS" -C -t ndt.telemetry.raw -e -q >"$T/all.json" || fail "kcat failed"

ups() { jq -r --arg j "$1" 'select(.name == "up" and .labels.job == $j) | .value' "$T/all.json" | sort -u | tr '\n' ' '; }
last_up() { jq -r --arg j "$1" 'select(.name == "up" and .labels.job == $j) | .value' "$T/all.json" | tail -n 1; }
# A TLS handshake on a loaded two-core machine can outlast the timeout
# once; what matters is that verified connections work (the latest scrape
# is up) and refused ones never do.
[ "$(last_up verified)" = 1 ] || fail "verified: up values '$(ups verified)', the last is not 1"
[ "$(last_up insecure)" = 1 ] || fail "insecure: up values '$(ups insecure)', the last is not 1"
[ "$(ups unknown-ca)" = "0 " ] || fail "unknown-ca: up '$(ups unknown-ca)', want 0"
[ "$(ups wrong-name)" = "0 " ] || fail "wrong-name: up '$(ups wrong-name)', want 0"
jq -e -s 'map(select(.labels.job == "verified" and .name == "node_load1")) | length > 0' \
    "$T/all.json" >/dev/null || fail "no samples through the verified TLS connection"
# The instance stays the address, not the TLS name.
jq -e -s --arg i "127.0.0.1:$PORT" 'map(select(.labels.job == "verified")) | all(.labels.instance == $i)' \
    "$T/all.json" >/dev/null || fail "instance label changed by server_name"
grep -E 'job=unknown-ca .*(certificate|SSL)' "$T/scrape.log" >/dev/null \
    || fail "no certificate error logged for the unknown CA: $(grep unknown-ca "$T/scrape.log" | head -2)"
echo ok
