#!/bin/bash
# `ndtpipe receive` on bad input and under back-pressure: corrupt snappy, a
# truncated protobuf, a wrong content type, a huge body, a missing token, a
# wrong method or path each get their 4xx with a reason and are counted; a
# Kafka that does not take samples turns into 503 (the sender retries);
# the receiver never stops serving.
. "$(dirname "$0")/lib.sh"
need curl jq

# A minimal valid request, written out byte by byte from the wire format:
# WriteRequest{timeseries{labels{__name__="x"} samples{value=1 timestamp=1}}}.
proto='\x0a\x1c\x0a\x0d\x0a\x08__name__\x12\x01x\x12\x0b\x09\x00\x00\x00\x00\x00\x00\xf0\x3f\x10\x01'
# Snappy block format: varint(length) then one literal (tag (len-1)<<2).
printf '\x1e\x74'"$proto" >"$T/valid.snappy"
printf '\x04\x0c\x0a\x10\x0a\x05' >"$T/truncated.snappy"   # a protobuf cut short
printf '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff' >"$T/corrupt.snappy" # no valid length
head -c 3M /dev/zero >"$T/huge.bin"
printf 'tok-3141\n' >"$T/token"

DEAD=$(free_port) # no broker there: Kafka takes nothing
PORT=$(free_port)
bg receive "$NDTPIPE" receive --listen "127.0.0.1:$PORT" --brokers "127.0.0.1:$DEAD" --format json \
    --max-body 1MB --token-file "$T/token" --backpressure-timeout 300ms --flush-timeout 1s \
    -X queue.buffering.max.messages=3 --stats-file "$T/stats.json"
RECV_PID=$BG_PID
wait_port "$PORT" 10 || fail "receiver did not start"

post() { # file content-type [auth] -> "status body"
    local auth=${3:-Bearer tok-3141}
    curl -s -o "$T/body" -w '%{http_code}' -X POST --data-binary "@$1" -H "Content-Type: $2" \
        -H 'Content-Encoding: snappy' -H "Authorization: $auth" "http://127.0.0.1:$PORT/api/v1/write"
}
expect() { # what status file content-type [auth]
    local what=$1 want=$2 got
    shift 2
    got=$(post "$@")
    [ "$got" = "$want" ] || fail "$what: HTTP $got, want $want ($(cat "$T/body"))"
    if [ "$want" != 204 ]; then
        jq -e '.error and .detail' "$T/body" >/dev/null || fail "$what: no JSON reason: $(cat "$T/body")"
    fi
}
PB=application/x-protobuf
expect "valid request" 204 "$T/valid.snappy" $PB
expect "corrupt snappy" 400 "$T/corrupt.snappy" $PB
grep -q snappy "$T/body" || fail "the reason does not name snappy: $(cat "$T/body")"
expect "truncated protobuf" 400 "$T/truncated.snappy" $PB
grep -q protobuf "$T/body" || fail "the reason does not name protobuf: $(cat "$T/body")"
expect "wrong content type" 415 "$T/valid.snappy" application/json
expect "huge body" 413 "$T/huge.bin" $PB
expect "no token" 401 "$T/valid.snappy" $PB "Basic Zm9vOmJhcg=="
expect "wrong token" 401 "$T/valid.snappy" $PB "Bearer nope"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/write")
[ "$code" = 405 ] || fail "GET: HTTP $code, want 405"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/metrics")
[ "$code" = 404 ] || fail "unknown path: HTTP $code, want 404"

# Back-pressure: three messages fill the queue, the next request waits
# 300 ms and is told to come back later.
expect "valid request" 204 "$T/valid.snappy" $PB
expect "valid request" 204 "$T/valid.snappy" $PB
expect "back-pressure" 503 "$T/valid.snappy" $PB
kill -0 "$RECV_PID" || fail "the receiver died"

kill -TERM "$RECV_PID"
wait "$RECV_PID"
jq -e '.bad_requests == 8 and .backpressure_rejections == 1 and .samples == 3' "$T/stats.json" >/dev/null \
    || fail "counters: $(cat "$T/stats.json")"
grep -q 'tok-3141' "$T/receive.log" && fail "the token appears in the log"
echo ok
