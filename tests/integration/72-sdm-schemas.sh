#!/bin/bash
# sdm-schemas/: every NGSI-LD example validates against its JSON Schema
# (draft 2020-12) with an independent validator (Debian's
# python3-jsonschema), broken copies are rejected, relationships resolve,
# the @context covers every term, and the mapping rules match the live
# testbed's exposition and build schema-valid entities (helpers/check_sdm.py).
. "$(dirname "$0")/lib.sh"
need python3 curl
python3 -c 'import jsonschema, yaml' 2>/dev/null || skip "python3-jsonschema or python3-yaml missing (make deps)"
root=$(cd "$(dirname "$0")/../.." && pwd)

port=$(free_port)
bg testbed "$NDTPIPE" testbed --listen "127.0.0.1:$port" --users 200 --pods 3 --seed 3
wait_port "$port" 10 || { cat "$T/testbed.log" >&2; fail "testbed did not listen"; }
curl -sSf -o "$T/metrics.txt" "http://127.0.0.1:$port/metrics" || fail "scrape failed"

python3 "$root/tests/integration/helpers/check_sdm.py" "$root/sdm-schemas" "$T/metrics.txt" ||
    fail "sdm-schemas has problems (listed above)"
