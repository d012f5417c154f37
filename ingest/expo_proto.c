/*
 * expo_proto.c: the Prometheus protobuf exposition (a stream of
 * io.prometheus.client.MetricFamily messages, each preceded by its length
 * as a varint), turned into the same ingest_sample stream the text parsers
 * produce.
 *
 * Why protobuf-c and not a hand-written reader: this is not the hot path
 * of a 20 ms scrape (targets speak text unless asked), and the library's
 * unpacker already checks wire types, lengths and required structure.
 * Each family is unpacked into a private arena that is reset before the
 * next one, so memory stays O(largest family), whatever the body size.
 * What the callback receives (names, labels) is copied into the caller's
 * arena, because the scraper keeps references until it publishes.
 *
 * The samples are the classic series a text scrape of the same target
 * yields, so that series identity does not depend on the negotiated format:
 *   counter, gauge, untyped   name{labels} value
 *   summary                   name{quantile="q"}, name_sum, name_count
 *   histogram                 name_bucket{le="b"} (and le="+Inf" from the
 *                             count when the target leaves it out, as
 *                             client_golang does), name_sum, name_count
 * Numbers in le and quantile are spelled as the text format spells them
 * (shortest round-trip form, "+Inf"), not OpenMetrics's "1.0": Prometheus
 * itself spells them differently per format, which splits series.
 * A native histogram (schema present) is decoded and checked (spans agree
 * with the bucket counts, counts are not negative) and handed over through
 * ingest_sample.native on its _count sample; its classic buckets, if the
 * target also sends them, are emitted as above.
 *
 * Errors name the family by number and its byte offset in the body
 * (ingest_expo_error.binary): a body has no lines.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/expo_internal.h"
#include "ingest/metrics.pb-c.h"

/* A family larger than this is refused (Prometheus has no bound; a
 * hostile target could send one huge message). */
#define EXPO_PROTO_MAX_FAMILY ((size_t)64 << 20)
#define EXPO_PROTO_MAX_NAME 4096
#define EXPO_PROTO_ARENA_BLOCK ((size_t)64 << 10)

typedef struct expo_proto {
    const char *buf;
    size_t len;
    size_t family_offset;    /* where the current family's length starts */
    uint32_t family_no;      /* 1-based */
    ndt_arena unpack;        /* the current family's unpacked message */
    int unpack_oom;          /* the unpack arena hit its cap */
    ndt_arena *out;          /* the caller's: what callbacks receive */
    ingest_expo_sample_fn fn;
    void *ctx;
    ingest_expo_error *err;
    ingest_label labels[INGEST_EXPO_MAX_LABELS + 1];
} expo_proto;

static int proto_fail(expo_proto *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int proto_fail(expo_proto *p, const char *fmt, ...)
{
    int n = snprintf(p->err->reason, sizeof(p->err->reason), "metric family #%u: ", p->family_no);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(p->err->reason))
        vsnprintf(p->err->reason + n, sizeof(p->err->reason) - (size_t)n, fmt, ap);
    va_end(ap);
    p->err->binary = 1;
    p->err->line = p->family_no;
    p->err->col = 0;
    p->err->offset = p->family_offset;
    return NDT_ERROR;
}

/* ---- protobuf-c's allocator over the unpack arena ------------------- */

static void *proto_alloc(void *data, size_t size)
{
    expo_proto *p = data;
    void *m = ndt_arena_alloc(&p->unpack, size ? size : 1);
    if (!m)
        p->unpack_oom = 1;
    return m;
}

static void proto_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* the arena is reset per family */
}

/* ---- numbers as the text format spells them ------------------------- */

/* Go's strconv.FormatFloat(v, 'g', -1, 64), which client_golang uses for
 * le and quantile in the text format: the fewest significant digits that
 * read back as v, in exponent form only when the decimal exponent is
 * below -4 or at least 6 (Go's rule for the shortest form), so 120 is
 * "120", 1e+06 is "1e+06" and 1e-05 is "1e-05". */
static void format_float(double v, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    int digits = 17;
    for (int p = 1; p <= 17; p++) {
        snprintf(out, size, "%.*e", p - 1, v);
        if (strtod(out, NULL) == v) {
            digits = p;
            break;
        }
    }
    const char *e = strchr(out, 'e');
    int exp = e ? atoi(e + 1) : 0;
    if (exp < -4 || exp >= 6)
        return; /* C's %e already writes two exponent digits, as Go does */
    int decimals = digits - 1 - exp;
    snprintf(out, size, "%.*f", decimals > 0 ? decimals : 0, v);
}

/* ---- checks --------------------------------------------------------- */

static int valid_metric_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static int valid_label_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static ingest_metric_type family_type(const NdtPromexpo__MetricFamily *f)
{
    switch (f->has_type ? f->type : NDT_PROMEXPO__METRIC_TYPE__COUNTER) {
    case NDT_PROMEXPO__METRIC_TYPE__COUNTER: return INGEST_TYPE_COUNTER;
    case NDT_PROMEXPO__METRIC_TYPE__GAUGE: return INGEST_TYPE_GAUGE;
    case NDT_PROMEXPO__METRIC_TYPE__SUMMARY: return INGEST_TYPE_SUMMARY;
    case NDT_PROMEXPO__METRIC_TYPE__HISTOGRAM: return INGEST_TYPE_HISTOGRAM;
    case NDT_PROMEXPO__METRIC_TYPE__GAUGE_HISTOGRAM: return INGEST_TYPE_GAUGE_HISTOGRAM;
    case NDT_PROMEXPO__METRIC_TYPE__UNTYPED: return INGEST_TYPE_UNKNOWN;
    default: return (ingest_metric_type)-1;
    }
}

/* Copies the metric's labels into p->labels (room is left for one more:
 * le or quantile); checks names, UTF-8 and duplicates. */
static int metric_labels(expo_proto *p, const NdtPromexpo__Metric *m, size_t metric_no,
                         const char *reserved, size_t *nout)
{
    if (m->n_label > INGEST_EXPO_MAX_LABELS)
        return proto_fail(p, "metric %zu has %zu labels, more than %d", metric_no, m->n_label,
                          INGEST_EXPO_MAX_LABELS);
    for (size_t i = 0; i < m->n_label; i++) {
        const NdtPromexpo__LabelPair *l = m->label[i];
        const char *name = l->name ? l->name : "";
        const char *value = l->value ? l->value : "";
        if (!valid_label_name(name))
            return proto_fail(p, "metric %zu: invalid label name \"%.64s\"", metric_no, name);
        if (strcmp(name, "__name__") == 0 || (reserved && strcmp(name, reserved) == 0))
            return proto_fail(p, "metric %zu: label name \"%s\" is reserved here", metric_no,
                              name);
        size_t vlen = strlen(value);
        if (!ingest_expo_utf8_valid(value, vlen))
            return proto_fail(p, "metric %zu: label %s: invalid UTF-8 in value", metric_no, name);
        for (size_t j = 0; j < i; j++)
            if (ndt_str_eq_cstr(p->labels[j].name, name))
                return proto_fail(p, "metric %zu: duplicate label name \"%s\"", metric_no, name);
        p->labels[i].name = ndt_str_from_cstr(name);
        p->labels[i].value = (ndt_str){ value, vlen };
    }
    *nout = m->n_label;
    return NDT_OK;
}

/* ---- emitting ------------------------------------------------------- */

/* Hands one sample to the callback, with its strings copied into the
 * caller's arena (the unpack arena dies with this family). */
/* An exemplar, copied into the caller's arena. */
static int exemplar_copy(expo_proto *p, const NdtPromexpo__Exemplar *e,
                         const ingest_exemplar **out)
{
    *out = NULL;
    if (!e)
        return NDT_OK;
    ingest_exemplar *x = ndt_arena_alloc(p->out, sizeof(*x));
    ingest_label *l = e->n_label ? ndt_arena_alloc(p->out, e->n_label * sizeof(*l)) : NULL;
    if (!x || (e->n_label && !l))
        return proto_fail(p, "out of memory for this scrape");
    if (e->n_label > INGEST_EXPO_MAX_LABELS)
        return proto_fail(p, "an exemplar has more than %d labels", INGEST_EXPO_MAX_LABELS);
    for (size_t i = 0; i < e->n_label; i++) {
        const char *n = e->label[i]->name ? e->label[i]->name : "";
        const char *v = e->label[i]->value ? e->label[i]->value : "";
        if (!valid_label_name(n) || !ingest_expo_utf8_valid(v, strlen(v)))
            return proto_fail(p, "invalid exemplar label \"%.64s\"", n);
        char *nc = ndt_arena_strndup(p->out, n, strlen(n));
        char *vc = ndt_arena_strndup(p->out, v, strlen(v));
        if (!nc || !vc)
            return proto_fail(p, "out of memory for this scrape");
        l[i].name = (ndt_str){ nc, strlen(nc) };
        l[i].value = (ndt_str){ vc, strlen(vc) };
    }
    x->labels = l;
    x->nlabels = e->n_label;
    x->value = e->has_value ? e->value : 0;
    x->timestamp_ms = INGEST_NO_TIMESTAMP;
    if (e->timestamp)
        x->timestamp_ms = e->timestamp->seconds * 1000 + e->timestamp->nanos / 1000000;
    *out = x;
    return NDT_OK;
}

static int emit(expo_proto *p, const NdtPromexpo__MetricFamily *f, ingest_metric_type type,
                const char *suffix, const ingest_label *labels, size_t nlabels, double value,
                const NdtPromexpo__Metric *m, const ingest_native_histogram *native,
                const NdtPromexpo__Exemplar *exemplar)
{
    size_t flen = strlen(f->name), slen = strlen(suffix);
    ingest_sample s;
    memset(&s, 0, sizeof(s));
    char *name = ndt_arena_alloc(p->out, flen + slen + 1);
    ingest_label *copy = nlabels ? ndt_arena_alloc(p->out, nlabels * sizeof(*copy)) : NULL;
    if (!name || (nlabels && !copy))
        return proto_fail(p, "out of memory for this scrape");
    memcpy(name, f->name, flen);
    memcpy(name + flen, suffix, slen + 1);
    for (size_t i = 0; i < nlabels; i++) {
        char *n = ndt_arena_strndup(p->out, labels[i].name.ptr, labels[i].name.len);
        char *v = ndt_arena_strndup(p->out, labels[i].value.ptr, labels[i].value.len);
        if (!n || !v)
            return proto_fail(p, "out of memory for this scrape");
        copy[i].name = (ndt_str){ n, labels[i].name.len };
        copy[i].value = (ndt_str){ v, labels[i].value.len };
    }
    s.name = (ndt_str){ name, flen + slen };
    s.family = (ndt_str){ name, flen };
    s.type = type;
    s.help = ndt_str_from_cstr(f->help ? f->help : "");
    s.unit = ndt_str_from_cstr(f->unit ? f->unit : "");
    s.labels = copy;
    s.nlabels = nlabels;
    s.value = value;
    s.timestamp_ms = m->has_timestamp_ms ? m->timestamp_ms : INGEST_NO_TIMESTAMP;
    s.line = p->family_no;
    s.native = native;
    int rc = exemplar_copy(p, exemplar, &s.exemplar);
    if (rc != NDT_OK)
        return rc;
    /* help and unit point into the unpack arena: copy them too, they are
     * part of what the scraper may keep. */
    if (s.help.len && !(s.help.ptr = ndt_arena_strndup(p->out, s.help.ptr, s.help.len)))
        return proto_fail(p, "out of memory for this scrape");
    if (s.unit.len && !(s.unit.ptr = ndt_arena_strndup(p->out, s.unit.ptr, s.unit.len)))
        return proto_fail(p, "out of memory for this scrape");
    return p->fn ? p->fn(p->ctx, &s) : NDT_OK;
}

/* Labels plus one extra (le or quantile) with a formatted number. */
static int emit_with(expo_proto *p, const NdtPromexpo__MetricFamily *f, ingest_metric_type type,
                     const char *suffix, size_t nlabels, const char *extra, double bound,
                     double value, const NdtPromexpo__Metric *m,
                     const NdtPromexpo__Exemplar *exemplar)
{
    char num[64];
    format_float(bound, num, sizeof(num));
    p->labels[nlabels].name = ndt_str_from_cstr(extra);
    p->labels[nlabels].value = ndt_str_from_cstr(num);
    return emit(p, f, type, suffix, p->labels, nlabels + 1, value, m, NULL, exemplar);
}

static int emit_summary(expo_proto *p, const NdtPromexpo__MetricFamily *f,
                        const NdtPromexpo__Metric *m, size_t metric_no, size_t nlabels)
{
    const NdtPromexpo__Summary *s = m->summary;
    if (!s)
        return proto_fail(p, "metric %zu of summary %s has no summary value", metric_no, f->name);
    for (size_t i = 0; i < s->n_quantile; i++) {
        const NdtPromexpo__Quantile *q = s->quantile[i];
        if (!q->has_quantile || isnan(q->quantile) || q->quantile < 0 || q->quantile > 1)
            return proto_fail(p, "metric %zu: quantile %zu is not within [0, 1]", metric_no, i + 1);
        int rc = emit_with(p, f, INGEST_TYPE_SUMMARY, "", nlabels, "quantile", q->quantile,
                           q->has_value ? q->value : NAN, m, NULL);
        if (rc != NDT_OK)
            return rc;
    }
    int rc = emit(p, f, INGEST_TYPE_SUMMARY, "_sum", p->labels, nlabels,
                  s->has_sample_sum ? s->sample_sum : 0, m, NULL, NULL);
    if (rc != NDT_OK)
        return rc;
    return emit(p, f, INGEST_TYPE_SUMMARY, "_count", p->labels, nlabels,
                s->has_sample_count ? (double)s->sample_count : 0, m, NULL, NULL);
}

/* Expands one side's spans and deltas (or absolute counts) into absolute
 * bucket counts with their indexes, into the caller's arena. */
static int native_side(expo_proto *p, size_t metric_no, const char *side, size_t nspans,
                       NdtPromexpo__BucketSpan **spans, size_t ndeltas, const int64_t *deltas,
                       size_t ncounts, const double *counts, ingest_native_buckets *out)
{
    size_t total = 0;
    for (size_t i = 0; i < nspans; i++) {
        if (i > 0 && spans[i]->offset < 0)
            return proto_fail(p, "metric %zu: %s span %zu has a negative offset", metric_no, side,
                              i + 1);
        total += spans[i]->length;
        if (total > ((size_t)1 << 20))
            return proto_fail(p, "metric %zu: more than 2^20 %s buckets", metric_no, side);
    }
    int is_float = ncounts > 0;
    size_t given = is_float ? ncounts : ndeltas;
    if (given != total)
        return proto_fail(p, "metric %zu: %s spans cover %zu buckets but %zu counts are given",
                          metric_no, side, total, given);
    memset(out, 0, sizeof(*out));
    if (!total)
        return NDT_OK;
    int32_t *idx = ndt_arena_alloc(p->out, total * sizeof(*idx));
    double *cnt = ndt_arena_alloc(p->out, total * sizeof(*cnt));
    if (!idx || !cnt)
        return proto_fail(p, "out of memory for this scrape");
    int64_t index = 0, running = 0;
    size_t k = 0;
    for (size_t i = 0; i < nspans; i++) {
        index += spans[i]->offset;
        for (uint32_t j = 0; j < spans[i]->length; j++, k++, index++) {
            double c;
            if (is_float) {
                c = counts[k];
            } else {
                running += deltas[k];
                c = (double)running;
            }
            if (!(c >= 0))
                return proto_fail(p, "metric %zu: %s bucket %lld has a negative count", metric_no,
                                  side, (long long)index);
            idx[k] = (int32_t)index;
            cnt[k] = c;
        }
    }
    out->index = idx;
    out->count = cnt;
    out->n = total;
    return NDT_OK;
}

static int native_decode(expo_proto *p, const NdtPromexpo__Histogram *h, size_t metric_no,
                         const ingest_native_histogram **out)
{
    *out = NULL;
    if (!h->has_schema)
        return NDT_OK;
    if (h->schema < -4 || h->schema > 8)
        return proto_fail(p, "metric %zu: native histogram schema %d outside [-4, 8]", metric_no,
                          h->schema);
    ingest_native_histogram *nh = ndt_arena_alloc(p->out, sizeof(*nh));
    if (!nh)
        return proto_fail(p, "out of memory for this scrape");
    memset(nh, 0, sizeof(*nh));
    nh->schema = h->schema;
    nh->zero_threshold = h->has_zero_threshold ? h->zero_threshold : 0;
    nh->zero_count = h->has_zero_count_float ? h->zero_count_float : (double)h->zero_count;
    nh->count = h->has_sample_count_float ? h->sample_count_float : (double)h->sample_count;
    nh->sum = h->has_sample_sum ? h->sample_sum : 0;
    int rc = native_side(p, metric_no, "positive", h->n_positive_span, h->positive_span,
                         h->n_positive_delta, h->positive_delta, h->n_positive_count,
                         h->positive_count, &nh->positive);
    if (rc == NDT_OK)
        rc = native_side(p, metric_no, "negative", h->n_negative_span, h->negative_span,
                         h->n_negative_delta, h->negative_delta, h->n_negative_count,
                         h->negative_count, &nh->negative);
    if (rc == NDT_OK)
        *out = nh;
    return rc;
}

static int emit_histogram(expo_proto *p, const NdtPromexpo__MetricFamily *f,
                          ingest_metric_type type, const NdtPromexpo__Metric *m, size_t metric_no,
                          size_t nlabels)
{
    const NdtPromexpo__Histogram *h = m->histogram;
    if (!h)
        return proto_fail(p, "metric %zu of histogram %s has no histogram value", metric_no,
                          f->name);
    double count = h->has_sample_count_float ? h->sample_count_float : (double)h->sample_count;
    double prev_bound = -INFINITY, prev_count = 0;
    for (size_t i = 0; i < h->n_bucket; i++) {
        const NdtPromexpo__Bucket *b = h->bucket[i];
        double bound = b->has_upper_bound ? b->upper_bound : NAN;
        double c = b->has_cumulative_count_float ? b->cumulative_count_float
                                                 : (double)b->cumulative_count;
        if (isnan(bound) || bound <= prev_bound)
            return proto_fail(p, "metric %zu: bucket %zu's upper bound is not above the previous",
                              metric_no, i + 1);
        if (c < prev_count)
            return proto_fail(p, "metric %zu: bucket %zu's cumulative count decreases", metric_no,
                              i + 1);
        int rc = emit_with(p, f, type, "_bucket", nlabels, "le", bound, c, m, b->exemplar);
        if (rc != NDT_OK)
            return rc;
        prev_bound = bound;
        prev_count = c;
    }
    if (h->n_bucket > 0 && !isinf(prev_bound)) {
        int rc = emit_with(p, f, type, "_bucket", nlabels, "le", INFINITY, count, m, NULL);
        if (rc != NDT_OK)
            return rc;
    }
    int rc = emit(p, f, type, "_sum", p->labels, nlabels, h->has_sample_sum ? h->sample_sum : 0,
                  m, NULL, NULL);
    if (rc != NDT_OK)
        return rc;
    /* Decoded only now: a callback may reset its arena after each sample,
     * so what _count carries is allocated right before it. */
    const ingest_native_histogram *native;
    rc = native_decode(p, h, metric_no, &native);
    if (rc != NDT_OK)
        return rc;
    return emit(p, f, type, "_count", p->labels, nlabels, count, m, native, NULL);
}

static double simple_value(const NdtPromexpo__Metric *m, ingest_metric_type type, int *found)
{
    *found = 1;
    if (type == INGEST_TYPE_COUNTER && m->counter)
        return m->counter->has_value ? m->counter->value : 0;
    if (type == INGEST_TYPE_GAUGE && m->gauge)
        return m->gauge->has_value ? m->gauge->value : 0;
    if (type == INGEST_TYPE_UNKNOWN && m->untyped)
        return m->untyped->has_value ? m->untyped->value : 0;
    *found = 0;
    return 0;
}

static int emit_family(expo_proto *p, const NdtPromexpo__MetricFamily *f)
{
    if (!valid_metric_name(f->name))
        return proto_fail(p, "invalid metric name \"%.64s\"", f->name ? f->name : "");
    if (strlen(f->name) > EXPO_PROTO_MAX_NAME)
        return proto_fail(p, "metric name longer than %d bytes", EXPO_PROTO_MAX_NAME);
    ingest_metric_type type = family_type(f);
    if ((int)type < 0)
        return proto_fail(p, "%s: unknown metric type %d", f->name, (int)f->type);
    if (f->help && !ingest_expo_utf8_valid(f->help, strlen(f->help)))
        return proto_fail(p, "%s: invalid UTF-8 in help", f->name);
    const char *reserved = type == INGEST_TYPE_SUMMARY ? "quantile"
                           : (type == INGEST_TYPE_HISTOGRAM || type == INGEST_TYPE_GAUGE_HISTOGRAM)
                               ? "le"
                               : NULL;
    for (size_t i = 0; i < f->n_metric; i++) {
        const NdtPromexpo__Metric *m = f->metric[i];
        size_t nlabels = 0;
        int rc = metric_labels(p, m, i + 1, reserved, &nlabels);
        if (rc != NDT_OK)
            return rc;
        if (type == INGEST_TYPE_SUMMARY) {
            rc = emit_summary(p, f, m, i + 1, nlabels);
        } else if (type == INGEST_TYPE_HISTOGRAM || type == INGEST_TYPE_GAUGE_HISTOGRAM) {
            rc = emit_histogram(p, f, type, m, i + 1, nlabels);
        } else {
            int found;
            double v = simple_value(m, type, &found);
            if (!found)
                return proto_fail(p, "metric %zu of %s %s has no %s value", i + 1,
                                  ingest_metric_type_name(type), f->name,
                                  ingest_metric_type_name(type));
            const NdtPromexpo__Exemplar *ex = type == INGEST_TYPE_COUNTER ? m->counter->exemplar
                                                                          : NULL;
            rc = emit(p, f, type, "", p->labels, nlabels, v, m, NULL, ex);
        }
        if (rc != NDT_OK)
            return rc;
    }
    return NDT_OK;
}

/* ---- the stream ----------------------------------------------------- */

/* A base-128 varint of at most 10 bytes; 0 bytes consumed = truncated or
 * overlong. */
static size_t read_varint(const unsigned char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        v |= (uint64_t)(s[i] & 0x7f) << (7 * i);
        if (!(s[i] & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

int ingest_expo_proto_parse(const char *buf, size_t len, ndt_arena *arena, ingest_expo_sample_fn fn,
                            void *ctx, ingest_expo_error *err)
{
    expo_proto *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err->reason, sizeof(err->reason), "out of memory");
        return NDT_ERROR;
    }
    p->buf = buf;
    p->len = len;
    p->out = arena;
    p->fn = fn;
    p->ctx = ctx;
    p->err = err;
    /* An unpacked message takes a few times its wire size. */
    ndt_arena_init(&p->unpack, EXPO_PROTO_ARENA_BLOCK, 8 * EXPO_PROTO_MAX_FAMILY);
    ProtobufCAllocator allocator = { proto_alloc, proto_free, p };

    int rc = NDT_OK;
    size_t off = 0;
    while (rc == NDT_OK && off < len) {
        p->family_no++;
        p->family_offset = off;
        uint64_t n;
        size_t used = read_varint((const unsigned char *)buf + off, len - off, &n);
        if (used == 0) {
            rc = proto_fail(p, "truncated or invalid length prefix");
            break;
        }
        off += used;
        if (n > len - off) {
            rc = proto_fail(p, "length %llu runs past the end of the body (%zu bytes left)",
                            (unsigned long long)n, len - off);
            break;
        }
        if (n > EXPO_PROTO_MAX_FAMILY) {
            rc = proto_fail(p, "%llu bytes, more than the %zu a family may take",
                            (unsigned long long)n, EXPO_PROTO_MAX_FAMILY);
            break;
        }
        ndt_arena_reset(&p->unpack);
        p->unpack_oom = 0;
        NdtPromexpo__MetricFamily *f = ndt_promexpo__metric_family__unpack(
            &allocator, (size_t)n, (const uint8_t *)buf + off);
        if (!f) {
            rc = proto_fail(p, p->unpack_oom ? "out of memory unpacking the message"
                                             : "not a valid MetricFamily message");
            break;
        }
        rc = emit_family(p, f);
        off += (size_t)n;
    }
    ndt_arena_free(&p->unpack);
    free(p);
    return rc;
}
