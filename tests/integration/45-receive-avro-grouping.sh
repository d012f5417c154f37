#!/bin/bash
# `ndtpipe receive --format avro` (the default) turns one remote-write
# request into one Avro record per instance: a request whose series of
# three instances are interleaved (as Prometheus's shards send them) comes
# out as three messages, each keyed by its instance, holding that
# instance's samples in request order with their labels (instance and job
# once, in the record's labels: schema version 3); a series of 70 labels
# (more than the decoder reads on its stack, and a label count that takes
# two bytes) comes out whole.  The
# request is written byte by byte from the wire format, the records are
# read with kcat and decoded here from the Avro spec, independently of
# ndtpipe's encoder.
. "$(dirname "$0")/lib.sh"
need curl kcat python3

start_broker
PORT=$(free_port)
bg receive "$NDTPIPE" receive --listen "127.0.0.1:$PORT" --brokers "$BROKERS" \
    --stats-file "$T/stats.json"
RECV_PID=$BG_PID
wait_port "$PORT" 10 || fail "receiver did not start"

# The request: (instance, value) in this order; the 5th series is the wide one.
python3 - "$T/request.snappy" <<'PY' || fail "cannot write the request"
import struct, sys
def varint(n):
    out = b""
    while n > 0x7f:
        out += bytes([(n & 0x7f) | 0x80]); n >>= 7
    return out + bytes([n])
def field(num, payload): return varint(num << 3 | 2) + varint(len(payload)) + payload
def label(name, value): return field(1, field(1, name.encode()) + field(2, value.encode()))
def series(instance, value, extra=0):
    labels = [("__name__", "up"), ("instance", instance), ("job", "j")]
    labels += [("x%02d" % i, "v%d" % i) for i in range(extra)]
    body = b"".join(label(n, v) for n, v in labels)
    sample = b"\x09" + struct.pack("<d", value) + b"\x10" + varint(1767225600000 + int(value))
    return field(1, body + field(2, sample))
order = [("a:1", 1), ("b:1", 2), ("a:1", 3), ("c:1", 4), ("b:1", 5, 67), ("a:1", 6)]
proto = b"".join(series(*s) for s in order)
# Snappy block format: varint(length), then literals of at most 65536 bytes
# (tag 61<<2 and a two-byte little-endian length - 1).
out = varint(len(proto))
for i in range(0, len(proto), 65536):
    chunk = proto[i:i + 65536]
    out += bytes([61 << 2]) + struct.pack("<H", len(chunk) - 1) + chunk
open(sys.argv[1], "wb").write(out)
PY
code=$(curl -s -o "$T/answer" -w '%{http_code}' -X POST --data-binary "@$T/request.snappy" \
    -H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy' \
    "http://127.0.0.1:$PORT/api/v1/write")
[ "$code" = 204 ] || fail "HTTP $code: $(cat "$T/answer")"
kill -TERM "$RECV_PID"
wait "$RECV_PID" || fail "receiver exited $?"

kcat -b "$BROKERS" -C -t ndt.telemetry.raw -e -q -f '%K\n%k%R%s' >"$T/records" || fail "kcat failed"
python3 - "$T/records" <<'PY' || fail "records differ"
import struct, sys
data = open(sys.argv[1], "rb").read()
pos = 0
def long_at(buf, i):
    shift = n = 0
    while True:
        b = buf[i]; i += 1
        n |= (b & 0x7f) << shift; shift += 7
        if not b & 0x80:
            return (n >> 1) ^ -(n & 1), i
def string_at(buf, i):
    n, i = long_at(buf, i)
    return buf[i:i + n].decode(), i + n
got = {}
while pos < len(data):
    nl = data.index(b"\n", pos)
    klen = int(data[pos:nl]); pos = nl + 1
    key = data[pos:pos + klen].decode(); pos += klen
    (plen,) = struct.unpack(">i", data[pos:pos + 4]); pos += 4
    rec = data[pos:pos + plen]; pos += plen
    job, i = string_at(rec, 0)
    instance, i = string_at(rec, i)
    scrape_ts, i = long_at(rec, i)
    def labels_at(i):
        out = []
        while True:
            nlab, i = long_at(rec, i)
            if nlab == 0:
                return out, i
            for _ in range(nlab):
                ln, i = string_at(rec, i)
                lv, i = string_at(rec, i)
                out.append((ln, lv))
    # Schema version 3: the record's labels, then each sample's own; the
    # sample's full set is its own plus the record's it does not name, an
    # own empty value removing the record label it names.
    common, i = labels_at(i)
    assert common == [("instance", instance), ("job", "j")], common
    samples = []
    while True:
        count, i = long_at(rec, i)
        if count == 0:
            break
        for _ in range(count):
            name, i = string_at(rec, i)
            own, i = labels_at(i)
            labels = dict(common)
            for ln, lv in own:
                if lv == "" and ln in labels:
                    del labels[ln]
                else:
                    labels[ln] = lv
            assert len(own) == len(labels) - 2, own  # instance and job only once, in the record
            (value,) = struct.unpack("<d", rec[i:i + 8]); i += 8
            branch, i = long_at(rec, i)     # timestamp: null is the record's
            if branch == 0:
                ts = scrape_ts
            else:
                ts, i = long_at(rec, i)
            _, i = long_at(rec, i)          # type
            branch, i = long_at(rec, i)     # native_histogram: null
            assert branch == 0, "unexpected native histogram"
            assert name == "up" and labels["instance"] == instance and labels["job"] == "j", labels
            assert ts == 1767225600000 + int(value), ts
            samples.append((value, len(labels)))
    assert i == len(rec), "trailing bytes in the record of %s" % key
    assert key == instance, "key %s, instance %s" % (key, instance)
    assert key not in got, "two records for %s" % key
    got[key] = samples
want = {"a:1": [(1.0, 2), (3.0, 2), (6.0, 2)], "b:1": [(2.0, 2), (5.0, 69)], "c:1": [(4.0, 2)]}
assert got == want, "got %r" % got
PY
jq -e '.samples == 6 and .delivered == 3' "$T/stats.json" >/dev/null || fail "stats: $(cat "$T/stats.json")"
echo ok
