#!/bin/bash
# `ndtpipe broker` is a Kafka-protocol peer for other programs: kcat reads
# its metadata, produces to it and consumes back; the bootstrap file holds
# exactly what the stdout line announced; SIGTERM ends it with exit 0.
. "$(dirname "$0")/lib.sh"
need kcat

"$NDTPIPE" broker --help | grep -q -- '--bootstrap-file' || fail "broker --help lacks --bootstrap-file"
"$NDTPIPE" broker --brokers-count 0 2>/dev/null; [ $? -eq 2 ] || fail "--brokers-count 0 is not a usage error"

bg broker "$NDTPIPE" broker --bootstrap-file "$T/bootstrap" --brokers-count 2
BROKER_PID=$BG_PID
wait_file "$T/bootstrap" 15 || { cat "$T/broker.log" >&2; fail "broker did not start"; }
BROKERS=$(cat "$T/bootstrap")
note "brokers: $BROKERS"

# stdout line == file content (stdout and stderr share broker.log).
line=$(grep '^bootstrap=' "$T/broker.log")
[ "$line" = "bootstrap=$BROKERS" ] || fail "stdout '$line' != file '$BROKERS'"
[[ "$BROKERS" =~ ^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$ ]] || fail "unexpected bootstrap list '$BROKERS'"
grep -q 'level=info stage=broker msg="embedded broker running"' "$T/broker.log" || fail "no logfmt start line"

# Metadata: both brokers listed.
kcat -b "$BROKERS" -L -m 5 >"$T/meta" || fail "kcat -L failed"
grep -c 'broker [0-9]* at 127.0.0.1:' "$T/meta" | grep -qx 2 || { cat "$T/meta" >&2; fail "metadata lacks 2 brokers"; }

# Produce 100 keyed messages, consume them back.
for i in $(seq 1 100); do echo "k$((i % 5)):value-$i"; done >"$T/in"
kcat -b "$BROKERS" -P -t it.kcat -K: -l "$T/in" -m 5 || fail "kcat produce failed"
timeout 20 kcat -b "$BROKERS" -C -t it.kcat -o beginning -e -q -f '%k:%s\n' -m 5 >"$T/out" ||
    fail "kcat consume failed"
[ "$(wc -l <"$T/out")" -eq 100 ] || fail "consumed $(wc -l <"$T/out") of 100"
diff <(sort "$T/in") <(sort "$T/out") >&2 || fail "consumed messages differ"
# Auto-created topics have 4 partitions.
kcat -b "$BROKERS" -L -t it.kcat -m 5 | grep -q 'with 4 partitions' || fail "topic not 4 partitions"

kill -TERM "$BROKER_PID"
for _ in $(seq 1 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$BROKER_PID" 2>/dev/null && fail "broker still running 5 s after SIGTERM"
wait "$BROKER_PID"; rc=$?
[ $rc -eq 0 ] || fail "broker exited $rc after SIGTERM"
grep -q 'msg=stopping' "$T/broker.log" || fail "no stop log line"
echo "ok"
