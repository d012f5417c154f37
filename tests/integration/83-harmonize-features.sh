#!/bin/bash
# The HDL feeds the next stage: testbed -> scrape -> harmonize (SQLite UDR)
# -> ndt.sdm.entities -> features (streaming) -> ndt.features.  The
# feature stage rebuilds each instant's row from the harmonizer's
# fragments (pods through their `service` relationship, users and pods
# from the Service): windows arrive with the testbed's regime, every scrape
# of a closed window a complete row.
. "$(dirname "$0")/lib.sh"
need kcat jq
root=$(cd "$(dirname "$0")/../.." && pwd)

start_broker
TB=$(free_port)
bg testbed "$NDTPIPE" testbed --listen "127.0.0.1:$TB" --users 200 --pods 3 --seed 2
wait_port "$TB" 10 || fail "testbed did not listen"
printf 'global:\n  scrape_interval: 100ms\nscrape_configs:\n  - job_name: testbed\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$TB" >"$T/scrape.yml"
bg scrape "$NDTPIPE" scrape --config "$T/scrape.yml" --brokers "$BROKERS"
bg harmonize "$NDTPIPE" harmonize --brokers "$BROKERS" --udr "sqlite:$T/udr.db" \
    --mapping "$root/sdm-schemas/mapping/testbed.yaml" -X session.timeout.ms=6000
bg features "$NDTPIPE" features --brokers "$BROKERS" -X session.timeout.ms=6000

# Until two windows lie wholly inside the run (the first ones are cut by
# the start: no rate before a counter's second scrape); under load that can
# take a while, so wait for them rather than for a window count.
full=0
for _ in $(seq 1 150); do
    kcat -C -b "$BROKERS" -t ndt.features -e -q 2>/dev/null >"$T/features.jsonl"
    full=$(jq -s '[.[] | select(.rows >= 8)] | length' "$T/features.jsonl" 2>/dev/null)
    [ "${full:-0}" -ge 2 ] && break
    sleep 0.2
done
[ -s "$T/features.jsonl" ] ||
    fail "no feature windows from the harmonizer's entities (features log: $(tail -n 3 "$T/features.log"))"
jq -e -s 'all(.[]; .service == "urn:ngsi-ld:Service:ndt.cifar10-inference"
              and .regime.users == 200 and .regime.pods == 3 and .latency_ms > 0)' \
    "$T/features.jsonl" >/dev/null || fail "windows do not carry the testbed's regime: $(head -n 2 "$T/features.jsonl")"
# A window wholly inside the run holds one row per 100 ms scrape.
[ "${full:-0}" -ge 2 ] || fail "windows with a row per scrape: $full ($(jq -c '.rows' "$T/features.jsonl" | tr '\n' ' '))"
echo "ok: $(wc -l <"$T/features.jsonl") windows"
