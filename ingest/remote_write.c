/*
 * remote_write.c: decoding remote-write requests, see remote_write.h.
 *
 * Why a hand-written protobuf reader: with protobuf-c's generic unpacker
 * the receiver spent a third of its CPU in protobuf_c_message_unpack (one
 * allocation per Label and Sample message, a copy of every string), and
 * the goal (twice vmagent's samples per CPU second) was out of
 * reach (bench/receive.sh, docs/PERFORMANCE.md).  WriteRequest is a small,
 * fixed schema, so this reader walks the wire format once and points label
 * views straight into the decompressed buffer.  protobuf-c stays the
 * reference: the unit tests build requests with its packer, and a
 * differential fuzzer (tests/fuzz/fuzz_remote_write.c) checks that both
 * decoders accept the same inputs and produce the same series.
 *
 * Wire rules followed (proto3): fields in any order, unknown fields skipped
 * by wire type (field number 0 included, as protobuf-c does), a repeated scalar field's last occurrence wins, a known
 * field with the wrong wire type is an error, groups are an error,
 * lengths and varints are bounds-checked against the enclosing message.
 */
#include "ingest/remote_write.h"

#include <snappy-c.h>
#include <stdio.h>
#include <string.h>

#include "common/ndt.h"

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

typedef struct pb_reader {
    const uint8_t *p;
    const uint8_t *end;
} pb_reader;

typedef struct pb_field {
    uint32_t number;
    int wire;
    uint64_t varint;        /* WIRE_VARINT, WIRE_I64 (raw bits), WIRE_I32 */
    const uint8_t *data;    /* WIRE_LEN */
    size_t len;
} pb_field;

static int read_varint_slow(pb_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return NDT_ERROR;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return NDT_OK;
        }
    }
    return NDT_ERROR; /* more than 10 bytes */
}

/* Keys and most lengths are one byte: that case inline. */
static inline int read_varint(pb_reader *r, uint64_t *out)
{
    if (r->p < r->end && *r->p < 0x80) {
        *out = *r->p++;
        return NDT_OK;
    }
    return read_varint_slow(r, out);
}

/* Next field of the message r walks; NDT_AGAIN at its end. */
__attribute__((always_inline)) static inline int next_field(pb_reader *r, pb_field *f)
{
    uint64_t key;
    if (r->p >= r->end)
        return NDT_AGAIN;
    if (read_varint(r, &key) != NDT_OK || key >> 3 > UINT32_MAX)
        return NDT_ERROR;
    f->number = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    switch (f->wire) {
    case WIRE_VARINT:
        return read_varint(r, &f->varint);
    case WIRE_I64:
        if (r->end - r->p < 8)
            return NDT_ERROR;
        memcpy(&f->varint, r->p, 8); /* little-endian on the wire and here (x86-64, arm64) */
        r->p += 8;
        return NDT_OK;
    case WIRE_I32: {
        uint32_t v;
        if (r->end - r->p < 4)
            return NDT_ERROR;
        memcpy(&v, r->p, 4);
        f->varint = v;
        r->p += 4;
        return NDT_OK;
    }
    case WIRE_LEN: {
        uint64_t len;
        if (read_varint(r, &len) != NDT_OK || len > (uint64_t)(r->end - r->p))
            return NDT_ERROR;
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        return NDT_OK;
    }
    default:
        return NDT_ERROR; /* groups (3, 4) and reserved wire types */
    }
}

static pb_reader sub_reader(const pb_field *f) { return (pb_reader){ f->data, f->data + f->len }; }

/* Label { string name = 1; string value = 2; }
 * NDT_AGAIN for a name or value holding a NUL byte.  One memchr over the
 * whole Label usually settles that: without a 0 byte anywhere in it, no
 * string inside has one (an empty value's length byte is a 0, and then
 * each string is checked on its own). */
static int read_label(const pb_field *f, ndt_str *name, ndt_str *value)
{
    const uint8_t *p = f->data;
    int check_strings = memchr(p, '\0', f->len) != NULL;
    /* The layout every sender writes: name (key 0x0a) then value (0x12),
     * each shorter than 128 bytes, nothing else.  Read it in place. */
    if (f->len >= 4 && p[0] == 0x0a && p[1] < 0x80 && (size_t)p[1] + 4 <= f->len) {
        const uint8_t *q = p + 2 + p[1];
        if (q[0] == 0x12 && q[1] < 0x80 && (size_t)(q + 2 + q[1] - p) == f->len) {
            *name = (ndt_str){ (const char *)p + 2, p[1] };
            *value = (ndt_str){ (const char *)q + 2, q[1] };
            if (check_strings && (memchr(name->ptr, '\0', name->len) || memchr(value->ptr, '\0', value->len)))
                return NDT_AGAIN;
            return NDT_OK;
        }
    }
    /* Any other layout: field by field (repeats, unknown fields, long strings). */
    pb_reader r = sub_reader(f);
    pb_field g = { 0 }; /* gcc cannot see that data and len are set for WIRE_LEN */
    int rc;
    *name = *value = (ndt_str){ "", 0 };
    while ((rc = next_field(&r, &g)) == NDT_OK) {
        if (g.number != 1 && g.number != 2)
            continue;
        if (g.wire != WIRE_LEN)
            return NDT_ERROR;
        ndt_str s = { (const char *)g.data, g.len };
        if (check_strings && memchr(g.data, '\0', g.len))
            return NDT_AGAIN; /* no label name or value may hold NUL: every consumer reads C strings */
        if (g.number == 1)
            *name = s;
        else
            *value = s;
    }
    return rc == NDT_AGAIN ? NDT_OK : NDT_ERROR;
}

/* Sample { double value = 1; int64 timestamp = 2; } */
static int read_sample(const pb_field *f, double *value, int64_t *timestamp)
{
    /* The usual layout: value (key 0x09, 8 bytes), then timestamp (0x10). */
    if (f->len >= 11 && f->data[0] == 0x09 && f->data[9] == 0x10) {
        pb_reader t = { f->data + 10, f->data + f->len };
        uint64_t ts;
        if (read_varint(&t, &ts) == NDT_OK && t.p == t.end) {
            memcpy(value, f->data + 1, sizeof(*value));
            *timestamp = (int64_t)ts;
            return NDT_OK;
        }
    }
    pb_reader r = sub_reader(f);
    pb_field g;
    int rc;
    *value = 0;
    *timestamp = 0;
    while ((rc = next_field(&r, &g)) == NDT_OK) {
        if (g.number == 1) {
            if (g.wire != WIRE_I64)
                return NDT_ERROR;
            memcpy(value, &g.varint, sizeof(*value));
        } else if (g.number == 2) {
            if (g.wire != WIRE_VARINT)
                return NDT_ERROR;
            *timestamp = (int64_t)g.varint;
        }
    }
    return rc == NDT_AGAIN ? NDT_OK : NDT_ERROR;
}

static int is_metric_name(ndt_str name)
{
    return name.len == 8 && memcmp(name.ptr, "__name__", 8) == 0;
}

/* Lays a label into ingest's order: __name__ first, the rest sorted by name
 * (senders sort already; insertion keeps that cheap and copes when they do
 * not), empty values dropped.  Names are taken as sent: a sender that
 * repeats one gets it twice. */
static void place_label(ingest_label *labels, size_t *count, int *named, ndt_str name, ndt_str value)
{
    if (is_metric_name(name)) {
        labels[0].name = name;
        labels[0].value = value;
        *named = value.len > 0;
        return;
    }
    if (!value.len)
        return;
    size_t j = (*count)++;
    while (j > 1 && ingest_label_name_cmp(labels[j - 1].name, name) > 0) {
        labels[j] = labels[j - 1];
        j--;
    }
    labels[j].name = name;
    labels[j].value = value;
}

/* The request's series array, grown by doubling inside the arena (the
 * old copy stays there until the reset: at most as much again), so the
 * request is read in one pass instead of being counted first. */
static ingest_series *next_series(ndt_arena *arena, ingest_rw_request *out, size_t *cap)
{
    if (out->nseries == *cap) {
        size_t grown = *cap * 2;
        ingest_series *bigger = ndt_arena_alloc(arena, grown * sizeof(*bigger));
        if (!bigger)
            return NULL;
        if (out->nseries)
            memcpy(bigger, out->series, out->nseries * sizeof(*bigger));
        out->series = bigger;
        *cap = grown;
    }
    return &out->series[out->nseries++];
}

/* Label views of one TimeSeries are gathered on the stack, then copied
 * into the arena at their exact count; a series with more labels than
 * this (none that Prometheus sends) is counted first instead. */
#define RW_STACK_LABELS 64

/* TimeSeries { repeated Label labels = 1; repeated Sample samples = 2;
 *              repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
 * NDT_AGAIN: the arena's cap; NDT_EBADCONF: a NUL in a label. */
static int read_timeseries(const pb_field *f, ndt_arena *arena, ingest_rw_request *out, size_t *cap)
{
    ingest_label stack_labels[RW_STACK_LABELS];
    ingest_label *labels = stack_labels;
    size_t max_labels = RW_STACK_LABELS;
    size_t nlabels = 1;
    int named = 0;
    pb_reader r;
    pb_field g;
    int rc;

    for (int attempt = 0; attempt < 2; attempt++) {
        r = sub_reader(f);
        nlabels = 1;
        named = 0;
        labels[0].name = (ndt_str){ "__name__", 8 };
        labels[0].value = (ndt_str){ "", 0 };
        size_t first = out->nseries;
        size_t histograms = 0;
        while ((rc = next_field(&r, &g)) == NDT_OK) {
            if (g.number < 1 || g.number > 4)
                continue;
            if (g.wire != WIRE_LEN)
                return NDT_ERROR;
            if (g.number == 1) {
                if (nlabels == max_labels)
                    break; /* more labels than the stack holds */
                ndt_str name, value;
                int lrc = read_label(&g, &name, &value);
                if (lrc != NDT_OK)
                    return lrc == NDT_AGAIN ? NDT_EBADCONF : NDT_ERROR;
                place_label(labels, &nlabels, &named, name, value);
            } else if (g.number == 2) {
                ingest_series *s = next_series(arena, out, cap);
                if (!s)
                    return NDT_AGAIN;
                if (read_sample(&g, &s->value, &s->timestamp_ms) != NDT_OK)
                    return NDT_ERROR;
                s->type = INGEST_TYPE_UNKNOWN;
                s->native = NULL;
                s->inherits = 0;
            } else if (g.number == 4) {
                histograms++;
            }
        }
        if (rc == NDT_OK) {
            /* Too many labels for the stack: count them, start over with
             * room for all of them in the arena. */
            out->nseries = first;
            pb_reader count = sub_reader(f);
            size_t total = 1;
            while (next_field(&count, &g) == NDT_OK)
                total += g.number == 1;
            labels = ndt_arena_alloc(arena, total * sizeof(*labels));
            if (!labels)
                return NDT_AGAIN;
            max_labels = total + 1; /* never reached: the pass reads them all */
            continue;
        }
        if (rc != NDT_AGAIN)
            return NDT_ERROR;
        out->histograms_skipped += histograms;
        if (!named) {
            out->unnamed_skipped += out->nseries - first;
            out->nseries = first;
            return NDT_OK;
        }
        if (first == out->nseries)
            return NDT_OK; /* no samples: the labels are not needed */
        if (labels == stack_labels) {
            labels = ndt_arena_alloc(arena, nlabels * sizeof(*labels));
            if (!labels)
                return NDT_AGAIN;
            memcpy(labels, stack_labels, nlabels * sizeof(*labels));
        }
        for (size_t i = first; i < out->nseries; i++) {
            out->series[i].labels = labels;
            out->series[i].nlabels = nlabels;
        }
        return NDT_OK;
    }
    return NDT_ERROR; /* not reached */
}

/* A first guess at the series count: the TimeSeries in the request
 * (senders put one sample in each, mostly), counted without looking
 * inside them; next_series grows the array when there are more. */
static size_t initial_series_capacity(const uint8_t *buf, size_t len)
{
    pb_reader r = { buf, buf + len };
    pb_field f;
    size_t n = 0;
    while (next_field(&r, &f) == NDT_OK)
        n += f.number == 1;
    return n < 16 ? 16 : n;
}

/* WriteRequest { repeated TimeSeries timeseries = 1; ... metadata = 3; } */
static int read_request(const uint8_t *buf, size_t len, ndt_arena *arena, ingest_rw_request *out,
                        char *err, size_t errlen)
{
    size_t cap = initial_series_capacity(buf, len);
    out->series = ndt_arena_alloc(arena, cap * sizeof(*out->series));
    if (!out->series)
        goto too_large;
    pb_reader r = { buf, buf + len };
    pb_field f;
    int rc;
    while ((rc = next_field(&r, &f)) == NDT_OK) {
        if ((f.number == 1 || f.number == 3) && f.wire != WIRE_LEN)
            goto bad;
        if (f.number != 1)
            continue;
        out->ntimeseries++;
        int ts = read_timeseries(&f, arena, out, &cap);
        if (ts == NDT_AGAIN)
            goto too_large;
        if (ts == NDT_EBADCONF) {
            snprintf(err, errlen, "a label name or value contains a NUL byte");
            return NDT_ERROR;
        }
        if (ts != NDT_OK)
            goto bad;
    }
    if (rc != NDT_AGAIN)
        goto bad;
    return NDT_OK;
bad:
    snprintf(err, errlen, "body is not a valid remote-write WriteRequest (protobuf)");
    return NDT_ERROR;
too_large:
    snprintf(err, errlen, "request too large for this receiver's memory limit");
    return NDT_ERROR;
}

int ingest_rw_decode(const char *body, size_t len, size_t max_decoded, ndt_arena *arena,
                     ingest_rw_request *out, char *err, size_t errlen)
{
    size_t decoded_len = 0;
    memset(out, 0, sizeof(*out));
    if (snappy_uncompressed_length(body, len, &decoded_len) != SNAPPY_OK) {
        snprintf(err, errlen, "body is not snappy-compressed (block format)");
        return NDT_ERROR;
    }
    if (decoded_len > max_decoded) {
        snprintf(err, errlen, "decompressed body of %zu bytes exceeds the limit of %zu", decoded_len,
                 max_decoded);
        return NDT_ERROR;
    }
    char *decoded = ndt_arena_alloc(arena, decoded_len ? decoded_len : 1);
    if (!decoded) {
        snprintf(err, errlen, "request too large for this receiver's memory limit");
        return NDT_ERROR;
    }
    size_t got = decoded_len;
    if (snappy_uncompress(body, len, decoded, &got) != SNAPPY_OK || got != decoded_len) {
        snprintf(err, errlen, "corrupt snappy data");
        return NDT_ERROR;
    }
    return read_request((const uint8_t *)decoded, got, arena, out, err, errlen);
}
