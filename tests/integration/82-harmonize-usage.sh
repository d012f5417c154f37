#!/bin/bash
# ndtpipe harmonize's command line: --help exits 0 and lists the options
# table; a missing --brokers or an unknown flag exits 2; a broken rule file
# exits 2 naming file:line:col before any connection is attempted; an
# unknown -o option exits 2 with a "did you mean".
. "$(dirname "$0")/lib.sh"

"$NDTPIPE" harmonize --help >"$T/help.txt" || fail "--help exited $?"
for opt in --brokers --in --out --dlq --group --udr --mapping --web.listen-address -X batch_wait fidelity_threshold; do
    grep -q -- "$opt" "$T/help.txt" || fail "--help does not mention $opt"
done

"$NDTPIPE" harmonize 2>"$T/err.txt"; rc=$?
[ $rc = 2 ] || fail "no --brokers: exit $rc, expected 2"
grep -q -- '--brokers is required' "$T/err.txt" || fail "no --brokers: $(cat "$T/err.txt")"

"$NDTPIPE" harmonize --brokers 127.0.0.1:1 --bogus 2>/dev/null; rc=$?
[ $rc = 2 ] || fail "unknown flag: exit $rc, expected 2"

printf 'version: 1\nrules:\n  - metric: up\n    entity: { type: Service, id: "urn:ngsi-ld:Service:{job}" }\n    attribute: up\n    transform: sum\n' >"$T/bad.yaml"
"$NDTPIPE" harmonize --brokers 127.0.0.1:1 --mapping "$T/bad.yaml" 2>"$T/err.txt"; rc=$?
[ $rc = 2 ] || fail "bad rule file: exit $rc, expected 2"
grep -q "bad.yaml:6:16: transform: expected identity, rate, info or native_histogram, got 'sum'" "$T/err.txt" ||
    fail "bad rule file: $(cat "$T/err.txt")"

"$NDTPIPE" harmonize --brokers 127.0.0.1:1 -o batch_wiat=1ms 2>"$T/err.txt"; rc=$?
[ $rc = 2 ] || fail "unknown -o option: exit $rc, expected 2"
grep -q "batch_wait" "$T/err.txt" || fail "unknown -o option: $(cat "$T/err.txt")"

"$NDTPIPE" harmonize --brokers 127.0.0.1:1 -o content_encoding=br 2>"$T/err.txt"; rc=$?
[ $rc = 2 ] || fail "unknown content_encoding: exit $rc, expected 2"
grep -q "content_encoding: expected gzip or identity, got 'br'" "$T/err.txt" || fail "content_encoding: $(cat "$T/err.txt")"

printf 'harmonize:\n  batch_wait: soon\n' >"$T/config.yaml"
"$NDTPIPE" harmonize --brokers 127.0.0.1:1 --config "$T/config.yaml" 2>"$T/err.txt"; rc=$?
[ $rc = 2 ] || fail "bad --config: exit $rc, expected 2"
grep -q "config.yaml:2:15" "$T/err.txt" || fail "bad --config: $(cat "$T/err.txt")"
echo ok
