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
 * UNKNOWN (the schema's enum default).  Every length and count is checked
 * against the bytes left before it is used, and the record must end
 * exactly at the end of the message.
 *
 * Versions: 2 added Sample.native_histogram (a union, null first); 3 added
 * the record's labels (what every sample carries unless it names the
 * label itself; an own empty value removes it) and made a sample's
 * timestamp null when it is the scrape's.  Version 3 is read first and,
 * when that fails before any sample, version 2 (records from before an
 * upgrade); a version 1 record needs a version 1 reader (Avro's schema
 * resolution, with the registry's schema id under Confluent framing).
 * Each sample's labels are merged with the record's here, so the engine
 * sees full label sets whatever the version.
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
    int version;                /* 3, or 2 for records written before version 3 */
    int64_t scrape_ts;          /* the record's scrape_timestamp */
    size_t nsamples;            /* samples read so far, delivered or only checked */
    hdl_label common[HDL_DECODE_MAX_LABELS]; /* the record's labels (version 3) */
    size_t ncommon;
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

/* Sample.timestamp: ["null", long] in version 3, null meaning the
 * record's scrape_timestamp; a plain long in version 2. */
static int read_timestamp(avro_reader *r, int64_t *ts)
{
    if (r->version == 2)
        return read_long(r, ts);
    int64_t branch;
    int rc = read_long(r, &branch);
    if (rc != NDT_OK)
        return rc;
    if (branch == 0) {
        *ts = r->scrape_ts;
        return NDT_OK;
    }
    if (branch != 1)
        return fail_at(r, "timestamp: union branch is neither null nor long");
    return read_long(r, ts);
}

/* The sample's full label set (version 3): its own labels (sorted) with
 * the record's labels it does not name merged in; an own label with the
 * empty value that names a record label says the sample lacks it. */
static int merge_common(avro_reader *r, const hdl_label *own, size_t nown, hdl_label *out,
                        size_t *nout)
{
    size_t i = 0, j = 0, n = 0;
    while (i < nown || j < r->ncommon) {
        int c = i == nown ? 1 : j == r->ncommon ? -1 : ndt_str_cmp(own[i].name, r->common[j].name);
        const hdl_label *take = NULL;
        if (c < 0) {
            take = &own[i++];
        } else if (c > 0) {
            take = &r->common[j++];
        } else {
            if (own[i].value.len)
                take = &own[i];
            i++;
            j++;
        }
        if (!take)
            continue;
        if (n == HDL_DECODE_MAX_LABELS) {
            char why[80];
            snprintf(why, sizeof(why), "more than %d labels with the record's",
                     HDL_DECODE_MAX_LABELS);
            return fail_at(r, why);
        }
        out[n++] = *take;
    }
    *nout = n;
    return NDT_OK;
}

/* One Sample; fn NULL only checks it. */
static int read_sample(avro_reader *r, hdl_sample_fn fn, void *ctx, size_t *delivered)
{
    hdl_label labels[HDL_DECODE_MAX_LABELS];
    hdl_label merged[HDL_DECODE_MAX_LABELS];
    hdl_sample s = { .labels = labels };
    hdl_native_histogram native;
    int has_native = 0;
    const unsigned char *at = r->p;
    int64_t type;
    int rc;
    if ((rc = read_string(r, &s.name, "sample name")) != NDT_OK ||
        (rc = read_labels(r, labels, &s.nlabels)) != NDT_OK ||
        (rc = read_double(r, &s.value)) != NDT_OK || (rc = read_timestamp(r, &s.ts_ms)) != NDT_OK ||
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
    if (r->ncommon) {
        if (s.nlabels == 0) {
            s.labels = r->common; /* the usual sample of a scrape without labels of its own */
            s.nlabels = r->ncommon;
        } else {
            if ((rc = merge_common(r, labels, s.nlabels, merged, &s.nlabels)) != NDT_OK)
                return rc;
            s.labels = merged;
        }
    }
    r->nsamples++;
    if (!fn)
        return NDT_OK;
    (*delivered)++;
    return fn(ctx, &s);
}

/* TelemetryRaw.labels (version 3): sorted, no repeats, no __name__; an
 * empty value is no label and is left out. */
static int read_common(avro_reader *r)
{
    const unsigned char *at = r->p;
    size_t n, dup;
    int rc = read_labels(r, r->common, &n);
    if (rc != NDT_OK)
        return rc;
    if (hdl_labels_sort(r->common, n, &dup) != NDT_OK) {
        char why[120];
        ndt_str name = r->common[dup].name;
        snprintf(why, sizeof(why), "record label '%.*s' repeated",
                 name.len > 64 ? 64 : (int)name.len, name.ptr);
        r->p = at;
        return fail_at(r, why);
    }
    r->ncommon = 0;
    for (size_t i = 0; i < n; i++) {
        if (r->common[i].value.len)
            r->common[r->ncommon++] = r->common[i];
    }
    return NDT_OK;
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
    r->scrape_ts = scrape_ts;
    r->ncommon = 0;
    if (r->version >= 3 && (rc = read_common(r)) != NDT_OK)
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

static int decode_from(const char *msg, size_t len, size_t offset, int version, hdl_sample_fn fn,
                       void *ctx, size_t *delivered, size_t *nsamples, char *err, size_t errlen)
{
    avro_reader r; /* ~4 KiB with the record's labels: the stack, not a malloc a message */
    r.start = (const unsigned char *)msg;
    r.p = r.start + offset;
    r.end = r.start + len;
    r.err = err;
    r.errlen = errlen;
    r.version = version;
    r.scrape_ts = 0;
    r.ncommon = 0;
    r.nsamples = 0;
    r.buckets = NULL;
    r.buckets_cap = 0;
    int rc = read_record(&r, fn, ctx, delivered);
    if (nsamples)
        *nsamples = r.nsamples;
    free(r.buckets);
    return rc;
}

/* Version 3 first.  A record that is no version 3 record from its first
 * sample on is read as version 2 if it is one with samples (records
 * written before version 3 may still be in the topic); else version 3's
 * error stands.  An empty version 2 record is refused because every
 * version 3 record cut right after its labels looks like one, and the
 * empty scrape it would stand for publishes nothing anyway. */
static int decode_versions(const char *msg, size_t len, size_t offset, hdl_sample_fn fn,
                           void *ctx, size_t *delivered, char *err, size_t errlen)
{
    int rc = decode_from(msg, len, offset, 3, fn, ctx, delivered, NULL, err, errlen);
    if (rc != NDT_EBADCONF || *delivered > 0)
        return rc;
    char other[8];
    size_t none = 0, nsamples = 0;
    if (decode_from(msg, len, offset, 2, NULL, NULL, &none, &nsamples, other, sizeof(other)) !=
            NDT_OK ||
        nsamples == 0)
        return rc;
    return decode_from(msg, len, offset, 2, fn, ctx, delivered, NULL, err, errlen);
}

/* Whether msg is one whole record of either version (format detection). */
int hdl_avro_is_record(const char *msg, size_t len)
{
    char err[8];
    size_t delivered = 0, nsamples = 0;
    if (decode_from(msg, len, 0, 3, NULL, NULL, &delivered, NULL, err, sizeof(err)) == NDT_OK)
        return 1;
    return decode_from(msg, len, 0, 2, NULL, NULL, &delivered, &nsamples, err, sizeof(err)) ==
               NDT_OK &&
           nsamples > 0;
}

int hdl_decode_avro(const char *msg, size_t len, hdl_sample_fn fn, void *ctx, char *err,
                    size_t errlen)
{
    size_t delivered = 0;
    if (len >= 5 && msg[0] == 0) {
        int rc = decode_versions(msg, len, 5, fn, ctx, &delivered, err, errlen);
        if (rc != NDT_EBADCONF || delivered > 0)
            return rc;
        /* Maybe an unframed record with an empty job; the framed reading's
         * error stands unless the unframed one succeeds. */
        char other[8];
        if (hdl_avro_is_record(msg, len))
            return decode_versions(msg, len, 0, fn, ctx, &delivered, other, sizeof(other));
        return rc;
    }
    if (len == 0) {
        snprintf(err, errlen, "avro: empty message");
        return NDT_EBADCONF;
    }
    return decode_versions(msg, len, 0, fn, ctx, &delivered, err, errlen);
}
