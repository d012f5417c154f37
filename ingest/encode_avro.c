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
    "  \"doc\": \"One scrape (or remote-write request) of one target, as published by ndtpipe's ingest stage on ndt.telemetry.raw. Evolution: new fields are added only as a union with null first and \\\"default\\\": null, so readers with an older or newer schema keep decoding (BACKWARD and FORWARD compatible).\",\n"
    "  \"fields\": [\n"
    "    {\"name\": \"job\", \"type\": \"string\", \"doc\": \"The scrape job (job label of the target).\"},\n"
    "    {\"name\": \"instance\", \"type\": \"string\", \"doc\": \"The target's instance label; also the Kafka message key.\"},\n"
    "    {\"name\": \"scrape_timestamp\", \"type\": {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}, \"doc\": \"When the scrape started.\"},\n"
    "    {\"name\": \"samples\", \"type\": {\"type\": \"array\", \"items\": {\n"
    "      \"type\": \"record\",\n"
    "      \"name\": \"Sample\",\n"
    "      \"fields\": [\n"
    "        {\"name\": \"name\", \"type\": \"string\", \"doc\": \"The metric name (value of __name__).\"},\n"
    "        {\"name\": \"labels\", \"type\": {\"type\": \"array\", \"items\": {\n"
    "          \"type\": \"record\",\n"
    "          \"name\": \"Label\",\n"
    "          \"fields\": [\n"
    "            {\"name\": \"name\", \"type\": \"string\"},\n"
    "            {\"name\": \"value\", \"type\": \"string\"}\n"
    "          ]}}, \"doc\": \"Every label except __name__, sorted by name.\"},\n"
    "        {\"name\": \"value\", \"type\": \"double\"},\n"
    "        {\"name\": \"timestamp\", \"type\": {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}, \"doc\": \"The sample's own timestamp, or the scrape's.\"},\n"
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

static const char *const top_fields[] = { "job", "instance", "scrape_timestamp", "samples" };
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
    avro_schema_t label = avro_schema_array_items(avro_schema_record_field_get(sample, "labels"));
    if (check_record(label, label_fields, NDT_ARRAY_LEN(label_fields), err, errlen) != NDT_OK)
        return NDT_ERROR;
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
 * 16 bytes, where a call into the library's memcpy (through its ifunc)
 * costs more than the copy.  Every load stays inside [src, src + n). */
static inline void copy_short(char *dst, const char *src, size_t n)
{
    if (n >= 8) {
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
    if (s.len <= 16)
        copy_short(p, s.ptr, s.len);
    else
        memcpy(p, s.ptr, s.len);
    return p + s.len;
}

/* Bytes needed for a series, an upper bound computed before writing, so
 * each series costs one reserve call and the writes need no checks. */
static size_t series_bound(const ingest_series *s)
{
    /* name len, label count, end, ts, type, value, union branch */
    size_t n = 5 * AVRO_LONG_MAX_BYTES + 8 + 1;
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

/* The zig-zag varint of the batch's last timestamp: a scrape's samples
 * nearly all carry the scrape's own, so it is encoded once per batch. */
typedef struct ts_cache {
    int64_t ts;
    size_t len;
    char bytes[AVRO_LONG_MAX_BYTES];
} ts_cache;

static inline char *put_timestamp(char *p, int64_t ts, ts_cache *c)
{
    if (ts != c->ts || !c->len) {
        c->ts = ts;
        c->len = (size_t)(put_long(c->bytes, ts) - c->bytes);
    }
    memcpy(p, c->bytes, AVRO_LONG_MAX_BYTES); /* the bound leaves room for all 10 */
    return p + c->len;
}

static int encode_series(const ingest_series *s, ndt_buf *out, ts_cache *tsc)
{
    /* The pooled output buffer is usually large enough already: call
     * reserve only when it is not (+1: ndt_buf keeps room for a NUL). */
    size_t bound = series_bound(s);
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
    if (s->nlabels > first) {
        p = put_long(p, (int64_t)(s->nlabels - first));
        for (size_t i = first; i < s->nlabels; i++) {
            p = put_string(p, s->labels[i].name);
            p = put_string(p, s->labels[i].value);
        }
    }
    p = put_long(p, 0); /* end of the labels array */
    p = put_double(p, s->value);
    p = put_timestamp(p, s->timestamp_ms, tsc);
    unsigned type = (unsigned)s->type < NDT_ARRAY_LEN(type_symbols) ? (unsigned)s->type : 0;
    p = put_long(p, (int64_t)type);
    p = put_native(p, s->native);
    out->len = (size_t)(p - out->data);
    return NDT_OK;
}

static int encode_header(const ingest_batch *batch, int32_t schema_id, ndt_buf *out)
{
    size_t bound = 5 + batch->job.len + batch->instance.len + 4 * AVRO_LONG_MAX_BYTES;
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
    ts_cache tsc = { 0, 0, { 0 } };
    for (size_t i = 0; i < batch->nseries; i++) {
        if (encode_series(&batch->series[i], out, &tsc) != NDT_OK)
            goto fail;
    }
    if (ndt_buf_append_char(out, 0) != NDT_OK) /* end of the samples array */
        goto fail;
    return NDT_OK;
fail:
    out->len = start;
    return NDT_ERROR;
}
