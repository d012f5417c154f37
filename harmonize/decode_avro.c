/*
 * decode_avro.c: one TelemetryRaw record (sdm-schemas/avro/
 * ndt.telemetry.raw.avsc) back into samples, with or without Confluent's
 * framing (byte 0, then the 4-byte big-endian schema id).
 *
 * Why by hand and not through Avro C's reader: the harmonizer decodes
 * every scrape of every target, and Avro C's generic values copy every
 * string into a heap-allocated tree; the binary encoding is a handful of
 * rules, and reading them straight from the message gives zero-copy
 * strings (every name and label in the sample is a view into the
 * message).  The layout read here is the one ingest/encode_avro.c writes,
 * and that encoder checks it against the schema through Avro C at start;
 * tests/unit/test_decode.c round-trips through both.
 *
 * Rules: longs are zig-zag varints of at most 10 bytes; strings a length
 * then bytes; doubles 8 bytes little-endian; arrays are blocks of
 * (count, items) ended by count 0, a negative count being followed by
 * the block's byte size (the writer may emit either); an enum index past
 * the last symbol known here is a newer writer's symbol and reads as
 * UNKNOWN (the schema's enum default).  Schema version 2 added
 * Sample.native_histogram (a union, null first); this reader reads
 * version 2 records, which is what ndtpipe writes since native histograms
 * were added (a version 1 record needs a version 1 reader: Avro's schema
 * resolution, with the registry's schema id under Confluent framing).  Every length and count is checked
 * against the bytes left before it is used, and the record must end
 * exactly at the end of the message.
 *
 * Framing is ambiguous in one corner: an unframed record whose job is the
 * empty string also starts with byte 0.  The framed reading is tried
 * first; if it fails before any sample was delivered, the unframed one is
 * tried, and if both fail the framed reading's error is reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harmonize/decode_internal.h"

/* Smallest encoding of one Sample (empty name, no labels, value,
 * timestamp, type) and of one Label: bounds item counts by bytes left. */
#define AVRO_MIN_SAMPLE_BYTES 13
#define AVRO_MIN_BUCKET_BYTES 9
#define AVRO_MIN_LABEL_BYTES 2
#define AVRO_SYMBOLS 8 /* MetricType symbols known here = hdl_metric_type values */

typedef struct avro_reader {
    const unsigned char *start;
    const unsigned char *p;
    const unsigned char *end;
    char *err;
    size_t errlen;
    hdl_native_bucket *buckets; /* a native histogram's, grown as needed */
    size_t buckets_cap;
} avro_reader;

static int fail_at(avro_reader *r, const char *what)
{
    snprintf(r->err, r->errlen, "avro: byte %zu: %s", (size_t)(r->p - r->start), what);
    return NDT_EBADCONF;
}

static int read_long(avro_reader *r, int64_t *out)
{
    if (r->p < r->end && *r->p < 0x80) { /* lengths, counts, types: one byte */
        unsigned b = *r->p++;
        *out = (int64_t)(b >> 1) ^ -(int64_t)(b & 1);
        return NDT_OK;
    }
    uint64_t z = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return fail_at(r, "message ends inside a number");
        unsigned char b = *r->p++;
        if (shift == 63 && b > 1)
            return fail_at(r, "number longer than 64 bits");
        z |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
            return NDT_OK;
        }
    }
    return fail_at(r, "number longer than 64 bits");
}

static int read_string(avro_reader *r, ndt_str *out, const char *what)
{
    const unsigned char *at = r->p;
    int64_t n;
    int rc = read_long(r, &n);
    if (rc != NDT_OK)
        return rc;
    if (n < 0 || (uint64_t)n > (uint64_t)(r->end - r->p)) {
        char why[96];
        snprintf(why, sizeof(why), "%s: length %lld does not fit the %zu bytes left", what,
                 (long long)n, (size_t)(r->end - r->p));
        r->p = at;
        return fail_at(r, why);
    }
    out->ptr = (const char *)r->p;
    out->len = (size_t)n;
    r->p += n;
    return NDT_OK;
}

static int read_double(avro_reader *r, double *out)
{
    if (r->end - r->p < 8)
        return fail_at(r, "message ends inside a double");
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits |= (uint64_t)r->p[i] << (8 * i);
    memcpy(out, &bits, 8);
    r->p += 8;
    return NDT_OK;
}

/* The item count of the next array block (0 = end of the array),
 * checked against the bytes left. */
static int read_block_count(avro_reader *r, size_t min_item_bytes, const char *what,
                            int64_t *count)
{
    int rc = read_long(r, count);
    if (rc != NDT_OK)
        return rc;
    if (*count < 0) {
        if (*count == INT64_MIN)
            return fail_at(r, "array block count out of range");
        *count = -*count;
        int64_t size;
        if ((rc = read_long(r, &size)) != NDT_OK)
            return rc;
        if (size < 0)
            return fail_at(r, "negative array block size");
    }
    if ((uint64_t)*count > (uint64_t)(r->end - r->p) / min_item_bytes) {
        char why[96];
        snprintf(why, sizeof(why), "%s: %lld items cannot fit the %zu bytes left", what,
                 (long long)*count, (size_t)(r->end - r->p));
        return fail_at(r, why);
    }
    return NDT_OK;
}

static int read_labels(avro_reader *r, hdl_label *labels, size_t *nlabels)
{
    *nlabels = 0;
    for (;;) {
        int64_t count;
        int rc = read_block_count(r, AVRO_MIN_LABEL_BYTES, "labels", &count);
        if (rc != NDT_OK)
            return rc;
        if (count == 0)
            return NDT_OK;
        if ((uint64_t)count > HDL_DECODE_MAX_LABELS - *nlabels) {
            char why[80];
            snprintf(why, sizeof(why), "more than %d labels", HDL_DECODE_MAX_LABELS);
            return fail_at(r, why);
        }
        for (int64_t i = 0; i < count; i++) {
            hdl_label *l = &labels[(*nlabels)++];
            if ((rc = read_string(r, &l->name, "label name")) != NDT_OK ||
                (rc = read_string(r, &l->value, "label value")) != NDT_OK)
                return rc;
            if (ndt_str_eq_cstr(l->name, "__name__"))
                return fail_at(r, "__name__ among the labels (it is the sample's name)");
        }
    }
}

/* One side's NativeBucket array, appended to r->buckets from *n on. */
static int read_native_buckets(avro_reader *r, const char *what, size_t *n)
{
    size_t first = *n;
    for (;;) {
        int64_t count;
        int rc = read_block_count(r, AVRO_MIN_BUCKET_BYTES, what, &count);
        if (rc != NDT_OK)
            return rc;
        if (count == 0)
            return NDT_OK;
        if ((uint64_t)count > HDL_DECODE_MAX_NATIVE_BUCKETS - (*n - first)) {
            char why[80];
            snprintf(why, sizeof(why), "%s: more than %d buckets", what,
                     HDL_DECODE_MAX_NATIVE_BUCKETS);
            return fail_at(r, why);
        }
        if (*n + (size_t)count > r->buckets_cap) {
            size_t cap = r->buckets_cap ? r->buckets_cap : 64;
            while (cap < *n + (size_t)count)
                cap *= 2;
            hdl_native_bucket *grown = realloc(r->buckets, cap * sizeof(*grown));
            if (!grown) {
                snprintf(r->err, r->errlen, "avro: out of memory for native buckets");
                return NDT_ERROR;
            }
            r->buckets = grown;
            r->buckets_cap = cap;
        }
        for (int64_t i = 0; i < count; i++) {
            int64_t index;
            if ((rc = read_long(r, &index)) != NDT_OK ||
                (rc = read_double(r, &r->buckets[*n].count)) != NDT_OK)
                return rc;
            if (index < INT32_MIN || index > INT32_MAX)
                return fail_at(r, "native bucket index out of the int range");
            r->buckets[(*n)++].index = (int32_t)index;
        }
    }
}

/* Sample.native_histogram: ["null", NativeHistogram] (schema version 2). */
static int read_native(avro_reader *r, hdl_native_histogram *h, int *present)
{
    int64_t branch, schema;
    int rc = read_long(r, &branch);
    if (rc != NDT_OK)
        return rc;
    *present = branch == 1;
    if (branch == 0)
        return NDT_OK;
    if (branch != 1)
        return fail_at(r, "native_histogram: union branch is neither null nor NativeHistogram");
    size_t n = 0, npositive;
    if ((rc = read_long(r, &schema)) != NDT_OK || (rc = read_double(r, &h->zero_threshold)) ||
        (rc = read_double(r, &h->zero_count)) || (rc = read_double(r, &h->count)) ||
        (rc = read_double(r, &h->sum)) ||
        (rc = read_native_buckets(r, "positive buckets", &n)) != NDT_OK)
        return rc;
    npositive = n;
    if ((rc = read_native_buckets(r, "negative buckets", &n)) != NDT_OK)
        return rc;
    if (schema < INT32_MIN || schema > INT32_MAX)
        return fail_at(r, "native histogram schema out of the int range");
    h->schema = (int32_t)schema;
    h->positive = r->buckets;
    h->npositive = npositive;
    h->negative = r->buckets ? r->buckets + npositive : NULL; /* NULL + 0 is undefined */
    h->nnegative = n - npositive;
    return NDT_OK;
}

/* One Sample; fn NULL only checks it. */
static int read_sample(avro_reader *r, hdl_sample_fn fn, void *ctx, size_t *delivered)
{
    hdl_label labels[HDL_DECODE_MAX_LABELS];
    hdl_sample s = { .labels = labels };
    hdl_native_histogram native;
    int has_native = 0;
    const unsigned char *at = r->p;
    int64_t type;
    int rc;
    if ((rc = read_string(r, &s.name, "sample name")) != NDT_OK ||
        (rc = read_labels(r, labels, &s.nlabels)) != NDT_OK ||
        (rc = read_double(r, &s.value)) != NDT_OK || (rc = read_long(r, &s.ts_ms)) != NDT_OK ||
        (rc = read_long(r, &type)) != NDT_OK || (rc = read_native(r, &native, &has_native)) != NDT_OK)
        return rc;
    if (has_native)
        s.native = &native;
    if (type < 0)
        return fail_at(r, "negative MetricType index");
    s.type = type < AVRO_SYMBOLS ? (hdl_metric_type)type : HDL_TYPE_UNKNOWN;
    if (s.name.len == 0) {
        r->p = at;
        return fail_at(r, "sample without a name");
    }
    size_t dup;
    if (hdl_labels_sort(labels, s.nlabels, &dup) != NDT_OK) {
        char why[120];
        ndt_str name = labels[dup].name;
        snprintf(why, sizeof(why), "label '%.*s' repeated", name.len > 64 ? 64 : (int)name.len,
                 name.ptr);
        r->p = at;
        return fail_at(r, why);
    }
    if (!fn)
        return NDT_OK;
    (*delivered)++;
    return fn(ctx, &s);
}

static int read_record(avro_reader *r, hdl_sample_fn fn, void *ctx, size_t *delivered)
{
    ndt_str job, instance;
    int64_t scrape_ts;
    int rc;
    if ((rc = read_string(r, &job, "job")) != NDT_OK ||
        (rc = read_string(r, &instance, "instance")) != NDT_OK ||
        (rc = read_long(r, &scrape_ts)) != NDT_OK)
        return rc;
    for (;;) {
        int64_t count;
        if ((rc = read_block_count(r, AVRO_MIN_SAMPLE_BYTES, "samples", &count)) != NDT_OK)
            return rc;
        if (count == 0)
            break;
        for (int64_t i = 0; i < count; i++) {
            if ((rc = read_sample(r, fn, ctx, delivered)) != NDT_OK)
                return rc;
        }
    }
    if (r->p != r->end) {
        char why[80];
        snprintf(why, sizeof(why), "%zu bytes after the end of the record",
                 (size_t)(r->end - r->p));
        return fail_at(r, why);
    }
    return NDT_OK;
}

static int decode_from(const char *msg, size_t len, size_t offset, hdl_sample_fn fn, void *ctx,
                       size_t *delivered, char *err, size_t errlen)
{
    avro_reader r = { (const unsigned char *)msg, (const unsigned char *)msg + offset,
                      (const unsigned char *)msg + len, err, errlen, NULL, 0 };
    int rc = read_record(&r, fn, ctx, delivered);
    free(r.buckets);
    return rc;
}

int hdl_avro_is_record(const char *msg, size_t len)
{
    char err[8];
    size_t delivered = 0;
    return decode_from(msg, len, 0, NULL, NULL, &delivered, err, sizeof(err)) == NDT_OK;
}

int hdl_decode_avro(const char *msg, size_t len, hdl_sample_fn fn, void *ctx, char *err,
                    size_t errlen)
{
    size_t delivered = 0;
    if (len >= 5 && msg[0] == 0) {
        int rc = decode_from(msg, len, 5, fn, ctx, &delivered, err, errlen);
        if (rc != NDT_EBADCONF || delivered > 0)
            return rc;
        /* Maybe an unframed record with an empty job; the framed reading's
         * error stands unless the unframed one succeeds. */
        char other[8];
        if (hdl_avro_is_record(msg, len))
            return decode_from(msg, len, 0, fn, ctx, &delivered, other, sizeof(other));
        return rc;
    }
    if (len == 0) {
        snprintf(err, errlen, "avro: empty message");
        return NDT_EBADCONF;
    }
    return decode_from(msg, len, 0, fn, ctx, &delivered, err, errlen);
}
