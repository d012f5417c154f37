/*
 * encode_avro.c: one scrape as one Avro record of the schema
 * org.ndtpipe.TelemetryRaw (sdm-schemas/avro/ndt.telemetry.raw.avsc),
 * optionally in Confluent's wire framing (byte 0, the 4-byte big-endian
 * schema id, then the Avro binary body).
 *
 * Why a hand-written encoder: this runs for every scrape of every target
 * at 20 ms intervals.  Avro C's generic value API builds a tree of
 * heap-allocated values per record and copies every string into it
 * before writing; the binary encoding itself is a handful of rules
 * (zig-zag varints, length-prefixed bytes, little-endian doubles, arrays
 * as one counted block plus a 0 terminator), so writing it straight into
 * the output buffer is several times faster (bench/encode.sh measures
 * both; docs/PERFORMANCE.md has the numbers).  Correctness is anchored in
 * Avro C itself: the encoder parses the embedded schema with Avro C at
 * creation and checks that its fields are the ones written here, in this
 * order, and tests/unit/test_encode.c decodes the output with Avro C's
 * reader and compares it with the batch.
 *
 * Schema version 3 writes what a scrape's samples share once: the batch's
 * common labels (target and external labels) go into the record's
 * labels, and each sample keeps only the labels that differ, found by one
 * merge walk over two name-sorted lists; a sample's timestamp is null when
 * it is the scrape's.  That is 40 % fewer bytes for a node-exporter scrape,
 * which librdkafka's lz4 would otherwise compress again on every message.
 * A series built that way by the scraper (ingest_series.inherits) holds
 * only its own labels already and is written as it is; other series
 * (remote-write, relabeled, synthetic) hold all their labels.
 *
 * The schema text lives below byte for byte as in the .avsc (a unit test
 * compares them), so the binary needs no file at run time.
 *
 * An encoder is immutable after creation and may be shared by threads.
 * On a buffer limit the buffer is left as it was and NDT_ERROR returned.
 */
#include <avro.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/sink.h"

static const char avro_schema_text[] =
    "{\n"
    "  \"type\": \"record\",\n"
    "  \"name\": \"TelemetryRaw\",\n"
    "  \"namespace\": \"org.ndtpipe\",\n"
    "  \"doc\": \"One scrape (or remote-write request) of one target, as published by ndtpipe's ingest stage on ndt.telemetry.raw. Version 3: labels every sample shares are written once, in the record's labels; a sample's timestamp is null when it is the scrape's. A version 3 reader reads version 2 records through Avro's schema resolution (BACKWARD compatible).\",\n"
    "  \"fields\": [\n"
    "    {\"name\": \"job\", \"type\": \"string\", \"doc\": \"The scrape job (job label of the target).\"},\n"
    "    {\"name\": \"instance\", \"type\": \"string\", \"doc\": \"The target's instance label; also the Kafka message key.\"},\n"
    "    {\"name\": \"scrape_timestamp\", \"type\": {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}, \"doc\": \"When the scrape started.\"},\n"
    "    {\"name\": \"labels\", \"type\": {\"type\": \"array\", \"items\": {\n"
    "      \"type\": \"record\",\n"
    "      \"name\": \"Label\",\n"
    "      \"fields\": [\n"
    "        {\"name\": \"name\", \"type\": \"string\"},\n"
    "        {\"name\": \"value\", \"type\": \"string\"}\n"
    "      ]}}, \"default\": [], \"doc\": \"Added in schema version 3: the labels every sample carries unless it says otherwise (a scrape's target and external labels, including job and instance), sorted by name, none empty.\"},\n"
    "    {\"name\": \"samples\", \"type\": {\"type\": \"array\", \"items\": {\n"
    "      \"type\": \"record\",\n"
    "      \"name\": \"Sample\",\n"
    "      \"fields\": [\n"
    "        {\"name\": \"name\", \"type\": \"string\", \"doc\": \"The metric name (value of __name__).\"},\n"
    "        {\"name\": \"labels\", \"type\": {\"type\": \"array\", \"items\": \"Label\"}, \"doc\": \"The sample's labels except __name__ and except those it shares with the record's labels (same name and value), sorted by name. A record label the sample does not have is listed with the empty value. The sample's full label set is therefore its labels plus the record's labels it does not name, less the empty ones that name a record label.\"},\n"
    "        {\"name\": \"value\", \"type\": \"double\"},\n"
    "        {\"name\": \"timestamp\", \"type\": [\"null\", {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}], \"default\": null, \"doc\": \"The sample's timestamp; null when it is the record's scrape_timestamp (a long in version 2).\"},\n"
    "        {\"name\": \"type\", \"type\": {\"type\": \"enum\", \"name\": \"MetricType\",\n"
    "          \"symbols\": [\"UNKNOWN\", \"COUNTER\", \"GAUGE\", \"HISTOGRAM\", \"GAUGE_HISTOGRAM\", \"SUMMARY\", \"INFO\", \"STATESET\"],\n"
    "          \"default\": \"UNKNOWN\"}, \"doc\": \"The type of the metric family.\"},\n"
    "        {\"name\": \"native_histogram\", \"type\": [\"null\", {\n"
    "          \"type\": \"record\",\n"
    "          \"name\": \"NativeHistogram\",\n"
    "          \"doc\": \"A native (exponential) histogram from a protobuf scrape, carried on the histogram's _count sample. Bucket i covers (base^(i-1), base^i] with base = 2^(2^-schema); negative buckets mirror it below zero.\",\n"
    "          \"fields\": [\n"
    "            {\"name\": \"schema\", \"type\": \"int\"},\n"
    "            {\"name\": \"zero_threshold\", \"type\": \"double\"},\n"
    "            {\"name\": \"zero_count\", \"type\": \"double\"},\n"
    "            {\"name\": \"count\", \"type\": \"double\"},\n"
    "            {\"name\": \"sum\", \"type\": \"double\"},\n"
    "            {\"name\": \"positive\", \"type\": {\"type\": \"array\", \"items\": {\n"
    "              \"type\": \"record\",\n"
    "              \"name\": \"NativeBucket\",\n"
    "              \"fields\": [\n"
    "                {\"name\": \"index\", \"type\": \"int\"},\n"
    "                {\"name\": \"count\", \"type\": \"double\", \"doc\": \"Absolute count of the bucket (spans and deltas expanded).\"}\n"
    "              ]}}},\n"
    "            {\"name\": \"negative\", \"type\": {\"type\": \"array\", \"items\": \"NativeBucket\"}}\n"
    "          ]}], \"default\": null, \"doc\": \"Added in schema version 2; null on every other sample.\"}\n"
    "      ]}}}\n"
    "  ]\n"
    "}\n";

const char *ingest_avro_schema_text(void) { return avro_schema_text; }

struct ingest_avro_encoder {
    avro_schema_t schema;
};

/* ---- what the hand-written encoder assumes about the schema ---------- */

static const char *const top_fields[] = { "job", "instance", "scrape_timestamp", "labels",
                                          "samples" };
static const char *const sample_fields[] = { "name",      "labels", "value",
                                             "timestamp", "type",   "native_histogram" };
static const char *const native_fields[] = { "schema", "zero_threshold", "zero_count", "count",
                                             "sum",    "positive",       "negative" };
static const char *const bucket_fields[] = { "index", "count" };
static const char *const label_fields[] = { "name", "value" };
/* Enum index = ingest_metric_type value. */
static const char *const type_symbols[] = { "UNKNOWN",         "COUNTER", "GAUGE", "HISTOGRAM",
                                            "GAUGE_HISTOGRAM", "SUMMARY", "INFO",  "STATESET" };

static int check_record(avro_schema_t record, const char *const *names, size_t n, char *err,
                        size_t errlen)
{
    if (!is_avro_record(record)) {
        snprintf(err, errlen, "avro schema: expected a record where %s is", names[0]);
        return NDT_ERROR;
    }
    /* Count first: Avro C does not bounds-check field indexes. */
    if (avro_schema_record_size(record) != n) {
        snprintf(err, errlen, "avro schema: record %s has %zu fields, the encoder writes %zu",
                 avro_schema_name(record), avro_schema_record_size(record), n);
        return NDT_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        const char *got = avro_schema_record_field_name(record, (int)i);
        if (!got || strcmp(got, names[i]) != 0) {
            snprintf(err, errlen, "avro schema: field %zu is '%s', the encoder writes '%s'", i,
                     got ? got : "(none)", names[i]);
            return NDT_ERROR;
        }
    }
    return NDT_OK;
}

static int check_schema(avro_schema_t schema, char *err, size_t errlen)
{
    if (check_record(schema, top_fields, NDT_ARRAY_LEN(top_fields), err, errlen) != NDT_OK)
        return NDT_ERROR;
    avro_schema_t sample = avro_schema_array_items(avro_schema_record_field_get(schema, "samples"));
    if (check_record(sample, sample_fields, NDT_ARRAY_LEN(sample_fields), err, errlen) != NDT_OK)
        return NDT_ERROR;
    avro_schema_t label = avro_schema_array_items(avro_schema_record_field_get(schema, "labels"));
    if (check_record(label, label_fields, NDT_ARRAY_LEN(label_fields), err, errlen) != NDT_OK)
        return NDT_ERROR;
    avro_schema_t items = avro_schema_array_items(avro_schema_record_field_get(sample, "labels"));
    if (is_avro_link(items))
        items = avro_schema_link_target(items); /* a named type's second use is a link */
    if (items != label) {
        snprintf(err, errlen, "avro schema: Sample.labels must be an array of the record's Label");
        return NDT_ERROR;
    }
    /* timestamp: ["null", long]; the encoder writes branch 0 or 1. */
    avro_schema_t ts = avro_schema_record_field_get(sample, "timestamp");
    if (!is_avro_union(ts) || avro_schema_union_size(ts) != 2 ||
        !is_avro_null(avro_schema_union_branch(ts, 0)) ||
        !is_avro_int64(avro_schema_union_branch(ts, 1))) {
        snprintf(err, errlen, "avro schema: Sample.timestamp must be [null, long]");
        return NDT_ERROR;
    }
    /* native_histogram: ["null", NativeHistogram]; the encoder writes
     * branch 0 or 1 and the record's fields in this order. */
    avro_schema_t nh = avro_schema_record_field_get(sample, "native_histogram");
    if (!is_avro_union(nh) || avro_schema_union_size(nh) != 2 ||
        !is_avro_null(avro_schema_union_branch(nh, 0))) {
        snprintf(err, errlen, "avro schema: native_histogram must be [null, NativeHistogram]");
        return NDT_ERROR;
    }
    avro_schema_t native = avro_schema_union_branch(nh, 1);
    if (check_record(native, native_fields, NDT_ARRAY_LEN(native_fields), err, errlen) != NDT_OK)
        return NDT_ERROR;
    avro_schema_t bucket = avro_schema_array_items(avro_schema_record_field_get(native, "positive"));
    if (check_record(bucket, bucket_fields, NDT_ARRAY_LEN(bucket_fields), err, errlen) != NDT_OK)
        return NDT_ERROR;
    avro_schema_t type = avro_schema_record_field_get(sample, "type");
    if (!is_avro_enum(type) ||
        avro_schema_enum_number_of_symbols(type) != (int)NDT_ARRAY_LEN(type_symbols)) {
        snprintf(err, errlen, "avro schema: MetricType must have %zu symbols",
                 NDT_ARRAY_LEN(type_symbols));
        return NDT_ERROR;
    }
    for (size_t i = 0; i < NDT_ARRAY_LEN(type_symbols); i++) {
        const char *sym = avro_schema_enum_get(type, (int)i);
        if (!sym || strcmp(sym, type_symbols[i]) != 0) {
            snprintf(err, errlen, "avro schema: MetricType symbol %zu is not %s", i,
                     type_symbols[i]);
            return NDT_ERROR;
        }
    }
    return NDT_OK;
}

int ingest_avro_encoder_new(ingest_avro_encoder **out, char *err, size_t errlen)
{
    *out = NULL;
    ingest_avro_encoder *enc = calloc(1, sizeof(*enc));
    if (!enc) {
        snprintf(err, errlen, "avro: out of memory");
        return NDT_ERROR;
    }
    if (avro_schema_from_json_length(avro_schema_text, sizeof(avro_schema_text) - 1,
                                     &enc->schema) != 0) {
        snprintf(err, errlen, "avro schema: %s", avro_strerror());
        free(enc);
        return NDT_ERROR;
    }
    if (check_schema(enc->schema, err, errlen) != NDT_OK) {
        ingest_avro_encoder_free(enc);
        return NDT_ERROR;
    }
    *out = enc;
    return NDT_OK;
}

void ingest_avro_encoder_free(ingest_avro_encoder *enc)
{
    if (!enc)
        return;
    avro_schema_decref(enc->schema);
    free(enc);
}

/* ---- Avro binary encoding --------------------------------------------- */

/* Worst case bytes of a long: 10 (64 bits in 7-bit groups). */
#define AVRO_LONG_MAX_BYTES 10

static inline char *put_long(char *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); /* zig-zag */
    while (z > 0x7F) {
        *p++ = (char)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    *p++ = (char)z;
    return p;
}

static inline char *put_double(char *p, double v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 8); /* Avro's byte order is the host's: one store */
#else
    uint64_t bits;
    memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (char)(bits >> (8 * i)); /* little-endian, whatever the host */
#endif
    return p + 8;
}

/* Copies a short string inline: label names and values are mostly under
 * 16 bytes and metric names under 32, where a call into the library's
 * memcpy (through its ifunc) costs more than the copy.  Every load stays
 * inside [src, src + n). */
static inline void copy_short(char *dst, const char *src, size_t n)
{
    if (n >= 16) {
        char a[16], b[16];
        memcpy(a, src, 16);
        memcpy(b, src + n - 16, 16);
        memcpy(dst, a, 16);
        memcpy(dst + n - 16, b, 16);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, src, 8);
        memcpy(&b, src + n - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + n - 4, 4);
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i];
    }
}

static inline char *put_string(char *p, ndt_str s)
{
    p = put_long(p, (int64_t)s.len);
    if (s.len <= 32)
        copy_short(p, s.ptr, s.len);
    else
        memcpy(p, s.ptr, s.len);
    return p + s.len;
}

/* Bytes needed for a series, an upper bound computed before writing, so
 * each series costs one reserve call and the writes need no checks. */
static size_t series_bound(const ingest_series *s, size_t common_bound)
{
    /* name len, label count, end, ts branch, ts, type, value, union branch,
     * and the common labels it may lack (computed once per batch) */
    size_t n = 6 * AVRO_LONG_MAX_BYTES + 8 + 1 + common_bound;
    for (size_t i = 0; i < s->nlabels; i++)
        n += s->labels[i].name.len + s->labels[i].value.len + 2 * AVRO_LONG_MAX_BYTES;
    if (s->native) /* schema, 4 doubles, 2 x (count, end), buckets */
        n += 5 * AVRO_LONG_MAX_BYTES + 4 * 8 +
             (s->native->positive.n + s->native->negative.n) * (AVRO_LONG_MAX_BYTES + 8);
    return n;
}

static char *put_native_buckets(char *p, const ingest_native_buckets *b)
{
    if (b->n) {
        p = put_long(p, (int64_t)b->n);
        for (size_t i = 0; i < b->n; i++) {
            p = put_long(p, b->index[i]);
            p = put_double(p, b->count[i]);
        }
    }
    return put_long(p, 0);
}

static char *put_native(char *p, const ingest_native_histogram *h)
{
    if (!h)
        return put_long(p, 0); /* the union's null branch */
    p = put_long(p, 1);
    p = put_long(p, h->schema);
    p = put_double(p, h->zero_threshold);
    p = put_double(p, h->zero_count);
    p = put_double(p, h->count);
    p = put_double(p, h->sum);
    p = put_native_buckets(p, &h->positive);
    return put_native_buckets(p, &h->negative);
}

/* Sample.timestamp: null (branch 0) when it is the record's
 * scrape_timestamp, as it is for nearly every sample of a scrape. */
static inline char *put_timestamp(char *p, int64_t ts, int64_t scrape_ts)
{
    if (ts == scrape_ts) {
        *p++ = 0;
        return p;
    }
    *p++ = 2; /* branch 1, zig-zag */
    return put_long(p, ts);
}

/* Same string: the same bytes in memory (the common case, where the
 * series' label was copied from the target's) or equal bytes. */
static inline int str_same(ndt_str a, ndt_str b)
{
    if (a.len != b.len)
        return 0;
    return a.ptr == b.ptr || memcmp(a.ptr, b.ptr, a.len) == 0;
}

static inline char *put_label(char *p, ndt_str name, ndt_str value, size_t *n)
{
    p = put_string(p, name);
    (*n)++;
    return put_string(p, value);
}

/* Sample.labels: the series' labels after __name__ (from index first)
 * less the batch's common labels it carries unchanged, plus each common
 * label it lacks with the empty value; both lists are in name order, so
 * one merge walk finds them.  The block count goes in front of the
 * items: one byte is reserved for it and the items moved in the rare
 * case (over 63 labels) that it needs more. */
static char *put_sample_labels(char *p, const ingest_series *s, size_t first,
                               const ingest_batch *batch)
{
    static const ndt_str empty = { "", 0 };
    if (s->inherits) {
        /* Its labels are already only its own: nothing to compare. */
        size_t n = s->nlabels - first;
        if (n) {
            p = put_long(p, (int64_t)n);
            for (size_t i = first; i < s->nlabels; i++) {
                p = put_string(p, s->labels[i].name);
                p = put_string(p, s->labels[i].value);
            }
        }
        *p++ = 0; /* end of the labels array */
        return p;
    }
    const ingest_label *common = batch->common;
    size_t ncommon = batch->ncommon, j = 0, n = 0;
    char *count_at = p++;
    for (size_t i = first; i < s->nlabels; i++) {
        const ingest_label *l = &s->labels[i];
        int shared = 0;
        while (j < ncommon) {
            int c = ingest_label_name_cmp(common[j].name, l->name);
            if (c > 0)
                break;
            if (c == 0) {
                shared = str_same(common[j].value, l->value);
                j++;
                break;
            }
            p = put_label(p, common[j++].name, empty, &n); /* the series lacks it */
        }
        if (!shared)
            p = put_label(p, l->name, l->value, &n);
    }
    while (j < ncommon)
        p = put_label(p, common[j++].name, empty, &n);
    if (n == 0) {
        *count_at = 0; /* the reserved byte is the array's end */
        return count_at + 1;
    }
    char count[AVRO_LONG_MAX_BYTES];
    size_t clen = (size_t)(put_long(count, (int64_t)n) - count);
    if (clen > 1) {
        memmove(count_at + clen, count_at + 1, (size_t)(p - count_at - 1));
        p += clen - 1;
    }
    memcpy(count_at, count, clen);
    *p++ = 0; /* end of the labels array */
    return p;
}

static int encode_series(const ingest_series *s, const ingest_batch *batch, size_t common_bound,
                         ndt_buf *out)
{
    /* The pooled output buffer is usually large enough already: call
     * reserve only when it is not (+1: ndt_buf keeps room for a NUL). */
    size_t bound = series_bound(s, common_bound);
    if (out->cap - out->len < bound + 1 && ndt_buf_reserve(out, bound) != NDT_OK)
        return NDT_ERROR;
    char *p = out->data + out->len;
    size_t first = 0;
    ndt_str name = { "", 0 };
    if (s->nlabels && ndt_str_eq_cstr(s->labels[0].name, "__name__")) {
        name = s->labels[0].value;
        first = 1;
    }
    p = put_string(p, name);
    p = put_sample_labels(p, s, first, batch);
    p = put_double(p, s->value);
    p = put_timestamp(p, s->timestamp_ms, batch->scrape_timestamp_ms);
    unsigned type = (unsigned)s->type < NDT_ARRAY_LEN(type_symbols) ? (unsigned)s->type : 0;
    p = put_long(p, (int64_t)type);
    p = put_native(p, s->native);
    out->len = (size_t)(p - out->data);
    return NDT_OK;
}

static int encode_header(const ingest_batch *batch, int32_t schema_id, ndt_buf *out)
{
    size_t bound = 5 + batch->job.len + batch->instance.len + 5 * AVRO_LONG_MAX_BYTES;
    for (size_t i = 0; i < batch->ncommon; i++)
        bound += batch->common[i].name.len + batch->common[i].value.len + 2 * AVRO_LONG_MAX_BYTES;
    if (ndt_buf_reserve(out, bound) != NDT_OK)
        return NDT_ERROR;
    char *p = out->data + out->len;
    if (schema_id >= 0) {
        uint32_t id = (uint32_t)schema_id;
        *p++ = 0; /* Confluent magic byte */
        *p++ = (char)(id >> 24);
        *p++ = (char)(id >> 16);
        *p++ = (char)(id >> 8);
        *p++ = (char)id;
    }
    p = put_string(p, batch->job);
    p = put_string(p, batch->instance);
    p = put_long(p, batch->scrape_timestamp_ms);
    if (batch->ncommon) {
        p = put_long(p, (int64_t)batch->ncommon);
        for (size_t i = 0; i < batch->ncommon; i++) {
            p = put_string(p, batch->common[i].name);
            p = put_string(p, batch->common[i].value);
        }
    }
    p = put_long(p, 0); /* end of the record's labels */
    if (batch->nseries)
        p = put_long(p, (int64_t)batch->nseries); /* one block holding every sample */
    out->len = (size_t)(p - out->data);
    return NDT_OK;
}

int ingest_encode_avro(ingest_avro_encoder *enc, const ingest_batch *batch, int32_t schema_id,
                       ndt_buf *out)
{
    NDT_UNUSED(enc); /* the layout is fixed at compile time, checked at creation */
    size_t start = out->len;
    if (encode_header(batch, schema_id, out) != NDT_OK)
        goto fail;
    size_t common_bound = 0; /* each common label as (name, "") */
    for (size_t i = 0; i < batch->ncommon; i++)
        common_bound += batch->common[i].name.len + 2 * AVRO_LONG_MAX_BYTES;
    for (size_t i = 0; i < batch->nseries; i++) {
        if (encode_series(&batch->series[i], batch, common_bound, out) != NDT_OK)
            goto fail;
    }
    if (ndt_buf_append_char(out, 0) != NDT_OK) /* end of the samples array */
        goto fail;
    return NDT_OK;
fail:
    out->len = start;
    return NDT_ERROR;
}
