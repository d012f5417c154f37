/*
 * test_expo_proto.c: the protobuf exposition parser (ingest/expo_proto.c).
 *
 * Bodies are built with protobuf-c's packer from the same .proto, so the
 * tests check our reading of the messages, not our writing of them; the
 * integration test 48 checks the parser against real targets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "ingest/expo.h"
#include "ingest/metrics.pb-c.h"

/* ---- building bodies ------------------------------------------------ */

static void append_family(ndt_buf *body, const NdtPromexpo__MetricFamily *f)
{
    size_t n = ndt_promexpo__metric_family__get_packed_size(f);
    uint8_t prefix[10];
    size_t k = 0;
    uint64_t v = n;
    do {
        prefix[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            prefix[k] |= 0x80;
        k++;
    } while (v);
    ndt_buf_append(body, prefix, k);
    uint8_t *packed = malloc(n ? n : 1);
    assert_non_null(packed);
    ndt_promexpo__metric_family__pack(f, packed);
    ndt_buf_append(body, packed, n);
    free(packed);
}

/* Every sample as one line "name{l=v,...} value [ts]" in order, so a test
 * compares against a text rendering it can read. */
typedef struct collected {
    ndt_buf text;
    size_t n;
    const ingest_native_histogram *native; /* copy of the last one seen */
    ingest_native_histogram native_copy;
    int32_t pos_index[16];
    double pos_count[16];
    int32_t neg_index[16];
    double neg_count[16];
    int exemplars;
    double exemplar_value;
} collected;

static int collect(void *ctx, const ingest_sample *s)
{
    collected *c = ctx;
    char num[64];
    ndt_buf_append(&c->text, s->name.ptr, s->name.len);
    ndt_buf_append_char(&c->text, '{');
    for (size_t i = 0; i < s->nlabels; i++) {
        if (i)
            ndt_buf_append_char(&c->text, ',');
        ndt_buf_append(&c->text, s->labels[i].name.ptr, s->labels[i].name.len);
        ndt_buf_append_char(&c->text, '=');
        ndt_buf_append(&c->text, s->labels[i].value.ptr, s->labels[i].value.len);
    }
    snprintf(num, sizeof(num), "} %g", s->value);
    ndt_buf_append_str(&c->text, num);
    if (s->timestamp_ms != INGEST_NO_TIMESTAMP) {
        snprintf(num, sizeof(num), " %lld", (long long)s->timestamp_ms);
        ndt_buf_append_str(&c->text, num);
    }
    ndt_buf_append_char(&c->text, '\n');
    c->n++;
    if (s->exemplar) {
        c->exemplars++;
        c->exemplar_value = s->exemplar->value;
    }
    if (s->native) {
        const ingest_native_histogram *h = s->native;
        assert_true(h->positive.n <= 16 && h->negative.n <= 16);
        c->native_copy = *h;
        memcpy(c->pos_index, h->positive.index, h->positive.n * sizeof(int32_t));
        memcpy(c->pos_count, h->positive.count, h->positive.n * sizeof(double));
        memcpy(c->neg_index, h->negative.index, h->negative.n * sizeof(int32_t));
        memcpy(c->neg_count, h->negative.count, h->negative.n * sizeof(double));
        c->native = &c->native_copy;
    }
    return NDT_OK;
}

static int parse(const ndt_buf *body, collected *c, ingest_expo_error *err)
{
    ndt_arena arena;
    ndt_arena_init(&arena, 4096, 1 << 20);
    memset(c, 0, sizeof(*c));
    ndt_buf_init(&c->text, 0);
    ndt_buf_append_char(&c->text, '\0');
    c->text.len = 0;
    int rc = ingest_expo_parse(body->data ? body->data : "", body->len, INGEST_EXPO_PROTOBUF,
                               &arena, collect, c, err);
    ndt_buf_append_char(&c->text, '\0');
    ndt_arena_free(&arena);
    return rc;
}

static NdtPromexpo__LabelPair *label(const char *name, const char *value)
{
    NdtPromexpo__LabelPair *l = malloc(sizeof(*l));
    ndt_promexpo__label_pair__init(l);
    l->name = (char *)name;
    l->value = (char *)value;
    return l;
}

/* ---- tests ---------------------------------------------------------- */

static void counter_gauge_untyped_and_timestamps(void **state)
{
    (void)state;
    ndt_buf body;
    ndt_buf_init(&body, 0);

    NdtPromexpo__LabelPair *lp[2] = { label("method", "get"), label("code", "200") };
    NdtPromexpo__Counter counter = NDT_PROMEXPO__COUNTER__INIT;
    counter.has_value = 1;
    counter.value = 1027;
    NdtPromexpo__Exemplar ex = NDT_PROMEXPO__EXEMPLAR__INIT;
    NdtPromexpo__LabelPair *exl[1] = { label("trace_id", "abc") };
    ex.n_label = 1;
    ex.label = exl;
    ex.has_value = 1;
    ex.value = 0.5;
    counter.exemplar = &ex;
    NdtPromexpo__Metric m1 = NDT_PROMEXPO__METRIC__INIT;
    m1.n_label = 2;
    m1.label = lp;
    m1.counter = &counter;
    m1.has_timestamp_ms = 1;
    m1.timestamp_ms = 1395066363000;
    NdtPromexpo__Metric *ms1[1] = { &m1 };
    NdtPromexpo__MetricFamily f1 = NDT_PROMEXPO__METRIC_FAMILY__INIT;
    f1.name = "http_requests_total";
    f1.help = "Requests.";
    f1.has_type = 1;
    f1.type = NDT_PROMEXPO__METRIC_TYPE__COUNTER;
    f1.n_metric = 1;
    f1.metric = ms1;
    append_family(&body, &f1);

    NdtPromexpo__Gauge gauge = NDT_PROMEXPO__GAUGE__INIT;
    gauge.has_value = 1;
    gauge.value = -INFINITY;
    NdtPromexpo__Metric m2 = NDT_PROMEXPO__METRIC__INIT;
    m2.gauge = &gauge;
    NdtPromexpo__Metric *ms2[1] = { &m2 };
    NdtPromexpo__MetricFamily f2 = NDT_PROMEXPO__METRIC_FAMILY__INIT;
    f2.name = "temperature";
    f2.has_type = 1;
    f2.type = NDT_PROMEXPO__METRIC_TYPE__GAUGE;
    f2.n_metric = 1;
    f2.metric = ms2;
    append_family(&body, &f2);

    NdtPromexpo__Untyped untyped = NDT_PROMEXPO__UNTYPED__INIT;
    untyped.has_value = 1;
    untyped.value = 3;
    NdtPromexpo__Metric m3 = NDT_PROMEXPO__METRIC__INIT;
    m3.untyped = &untyped;
    NdtPromexpo__Metric *ms3[1] = { &m3 };
    NdtPromexpo__MetricFamily f3 = NDT_PROMEXPO__METRIC_FAMILY__INIT;
    f3.name = "legacy";
    f3.has_type = 1;
    f3.type = NDT_PROMEXPO__METRIC_TYPE__UNTYPED;
    f3.n_metric = 1;
    f3.metric = ms3;
    append_family(&body, &f3);

    collected c;
    ingest_expo_error err;
    assert_int_equal(parse(&body, &c, &err), NDT_OK);
    assert_string_equal(c.text.data, "http_requests_total{method=get,code=200} 1027 1395066363000\n"
                                     "temperature{} -inf\n"
                                     "legacy{} 3\n");
    assert_int_equal(c.exemplars, 1);
    assert_true(c.exemplar_value == 0.5);
    ndt_buf_free(&c.text);
    ndt_buf_free(&body);
    free(lp[0]);
    free(lp[1]);
    free(exl[0]);
}

static void summary_and_classic_histogram_as_text_spells_them(void **state)
{
    (void)state;
    ndt_buf body;
    ndt_buf_init(&body, 0);

    NdtPromexpo__Quantile q[3] = { NDT_PROMEXPO__QUANTILE__INIT, NDT_PROMEXPO__QUANTILE__INIT,
                                   NDT_PROMEXPO__QUANTILE__INIT };
    double qs[3] = { 0, 0.25, 1 }, vs[3] = { 1e-05, 2, 3 };
    /* The text format's spelling of le and quantile (Go's shortest 'g'). */
    NdtPromexpo__Quantile *qp[3];
    for (int i = 0; i < 3; i++) {
        q[i].has_quantile = q[i].has_value = 1;
        q[i].quantile = qs[i];
        q[i].value = vs[i];
        qp[i] = &q[i];
    }
    NdtPromexpo__Summary sum = NDT_PROMEXPO__SUMMARY__INIT;
    sum.n_quantile = 3;
    sum.quantile = qp;
    sum.has_sample_count = sum.has_sample_sum = 1;
    sum.sample_count = 7;
    sum.sample_sum = 12.5;
    NdtPromexpo__Metric sm = NDT_PROMEXPO__METRIC__INIT;
    sm.summary = &sum;
    NdtPromexpo__Metric *sms[1] = { &sm };
    NdtPromexpo__MetricFamily sf = NDT_PROMEXPO__METRIC_FAMILY__INIT;
    sf.name = "rpc_seconds";
    sf.has_type = 1;
    sf.type = NDT_PROMEXPO__METRIC_TYPE__SUMMARY;
    sf.n_metric = 1;
    sf.metric = sms;
    append_family(&body, &sf);

    /* client_golang leaves the +Inf bucket out; the parser adds it. */
    NdtPromexpo__Bucket b[2] = { NDT_PROMEXPO__BUCKET__INIT, NDT_PROMEXPO__BUCKET__INIT };
    NdtPromexpo__Bucket *bp[2] = { &b[0], &b[1] };
    b[0].has_upper_bound = b[0].has_cumulative_count = 1;
    b[0].upper_bound = 0.1;
    b[0].cumulative_count = 4;
    b[1].has_upper_bound = b[1].has_cumulative_count = 1;
    b[1].upper_bound = 120;
    b[1].cumulative_count = 9;
    NdtPromexpo__Histogram h = NDT_PROMEXPO__HISTOGRAM__INIT;
    h.has_sample_count = h.has_sample_sum = 1;
    h.sample_count = 10;
    h.sample_sum = 4.25;
    h.n_bucket = 2;
    h.bucket = bp;
    NdtPromexpo__LabelPair *hl[1] = { label("handler", "/") };
    NdtPromexpo__Metric hm = NDT_PROMEXPO__METRIC__INIT;
    hm.histogram = &h;
    hm.n_label = 1;
    hm.label = hl;
    NdtPromexpo__Metric *hms[1] = { &hm };
    NdtPromexpo__MetricFamily hf = NDT_PROMEXPO__METRIC_FAMILY__INIT;
    hf.name = "req_seconds";
    hf.has_type = 1;
    hf.type = NDT_PROMEXPO__METRIC_TYPE__HISTOGRAM;
    hf.n_metric = 1;
    hf.metric = hms;
    append_family(&body, &hf);

    collected c;
    ingest_expo_error err;
    assert_int_equal(parse(&body, &c, &err), NDT_OK);
    assert_string_equal(c.text.data, "rpc_seconds{quantile=0} 1e-05\n"
                                     "rpc_seconds{quantile=0.25} 2\n"
                                     "rpc_seconds{quantile=1} 3\n"
                                     "rpc_seconds_sum{} 12.5\n"
                                     "rpc_seconds_count{} 7\n"
                                     "req_seconds_bucket{handler=/,le=0.1} 4\n"
                                     "req_seconds_bucket{handler=/,le=120} 9\n"
                                     "req_seconds_bucket{handler=/,le=+Inf} 10\n"
                                     "req_seconds_sum{handler=/} 4.25\n"
                                     "req_seconds_count{handler=/} 10\n");
    assert_null(c.native);
    ndt_buf_free(&c.text);
    ndt_buf_free(&body);
    free(hl[0]);
}

/* Spans [offset 0, length 2], [offset 2, length 1] over deltas 3, -1, 4:
 * buckets 0 and 1 hold 3 and 2, bucket 4 holds 6. */
static void native_histogram_spans_and_deltas(void **state)
{
    (void)state;
    ndt_buf body;
    ndt_buf_init(&body, 0);
    NdtPromexpo__BucketSpan s[2] = { NDT_PROMEXPO__BUCKET_SPAN__INIT,
                                     NDT_PROMEXPO__BUCKET_SPAN__INIT };
    NdtPromexpo__BucketSpan *sp[2] = { &s[0], &s[1] };
    s[0].has_offset = s[0].has_length = 1;
    s[0].offset = 0;
    s[0].length = 2;
    s[1].has_offset = s[1].has_length = 1;
    s[1].offset = 2;
    s[1].length = 1;
    int64_t deltas[3] = { 3, -1, 4 };
    NdtPromexpo__BucketSpan ns = NDT_PROMEXPO__BUCKET_SPAN__INIT;
    NdtPromexpo__BucketSpan *nsp[1] = { &ns };
    ns.has_offset = ns.has_length = 1;
    ns.offset = -2;
    ns.length = 1;
    int64_t ndeltas[1] = { 1 };
    NdtPromexpo__Histogram h = NDT_PROMEXPO__HISTOGRAM__INIT;
    h.has_sample_count = h.has_sample_sum = h.has_schema = 1;
    h.has_zero_threshold = h.has_zero_count = 1;
    h.sample_count = 14;
    h.sample_sum = 30;
    h.schema = 3;
    h.zero_threshold = 1e-128;
    h.zero_count = 2;
    h.n_positive_span = 2;
    h.positive_span = sp;
    h.n_positive_delta = 3;
    h.positive_delta = deltas;
    h.n_negative_span = 1;
    h.negative_span = nsp;
    h.n_negative_delta = 1;
    h.negative_delta = ndeltas;
    NdtPromexpo__Metric m = NDT_PROMEXPO__METRIC__INIT;
    m.histogram = &h;
    NdtPromexpo__Metric *ms[1] = { &m };
    NdtPromexpo__MetricFamily f = NDT_PROMEXPO__METRIC_FAMILY__INIT;
    f.name = "latency_seconds";
    f.has_type = 1;
    f.type = NDT_PROMEXPO__METRIC_TYPE__HISTOGRAM;
    f.n_metric = 1;
    f.metric = ms;
    append_family(&body, &f);

    collected c;
    ingest_expo_error err;
    assert_int_equal(parse(&body, &c, &err), NDT_OK);
    /* No classic buckets: only _sum and _count, as Prometheus ingests a
     * native-only histogram without native-histogram support. */
    assert_string_equal(c.text.data, "latency_seconds_sum{} 30\n"
                                     "latency_seconds_count{} 14\n");
    assert_non_null(c.native);
    assert_int_equal(c.native->schema, 3);
    assert_true(c.native->zero_count == 2 && c.native->count == 14 && c.native->sum == 30);
    assert_int_equal(c.native->positive.n, 3);
    assert_int_equal(c.pos_index[0], 0);
    assert_int_equal(c.pos_index[1], 1);
    assert_int_equal(c.pos_index[2], 4);
    assert_true(c.pos_count[0] == 3 && c.pos_count[1] == 2 && c.pos_count[2] == 6);
    assert_int_equal(c.native->negative.n, 1);
    assert_int_equal(c.neg_index[0], -2);
    assert_true(c.neg_count[0] == 1);
    ndt_buf_free(&c.text);

    /* Spans that promise more buckets than the deltas give. */
    s[1].length = 2;
    ndt_buf_reset(&body);
    append_family(&body, &f);
    assert_int_equal(parse(&body, &c, &err), NDT_ERROR);
    assert_non_null(strstr(err.reason, "spans cover 4 buckets but 3 counts"));
    ndt_buf_free(&c.text);
    /* A delta that drives a count below zero. */
    s[1].length = 1;
    deltas[1] = -5;
    ndt_buf_reset(&body);
    append_family(&body, &f);
    assert_int_equal(parse(&body, &c, &err), NDT_ERROR);
    assert_non_null(strstr(err.reason, "negative count"));
    ndt_buf_free(&c.text);
    ndt_buf_free(&body);
}

static void expect_error(const ndt_buf *body, const char *reason, size_t offset)
{
    collected c;
    ingest_expo_error err;
    assert_int_equal(parse(body, &c, &err), NDT_ERROR);
    if (!strstr(err.reason, reason))
        fail_msg("reason \"%s\" lacks \"%s\"", err.reason, reason);
    assert_true(err.binary);
    assert_int_equal(err.offset, offset);
    char shown[300];
    ingest_expo_error_format(&err, shown, sizeof(shown));
    assert_memory_equal(shown, "byte ", 5);
    ndt_buf_free(&c.text);
}

static void bad_bodies_fail_with_a_reason_and_an_offset(void **state)
{
    (void)state;
    ndt_buf body;
    ndt_buf_init(&body, 0);
    NdtPromexpo__Gauge gauge = NDT_PROMEXPO__GAUGE__INIT;
    NdtPromexpo__Metric m = NDT_PROMEXPO__METRIC__INIT;
    m.gauge = &gauge;
    NdtPromexpo__Metric *ms[1] = { &m };
    NdtPromexpo__MetricFamily f = NDT_PROMEXPO__METRIC_FAMILY__INIT;
    f.name = "ok_gauge";
    f.has_type = 1;
    f.type = NDT_PROMEXPO__METRIC_TYPE__GAUGE;
    f.n_metric = 1;
    f.metric = ms;
    append_family(&body, &f);
    size_t first = body.len;

    /* A truncated second family: its length runs past the end. */
    append_family(&body, &f);
    body.len--;
    expect_error(&body, "runs past the end", first);

    /* A length prefix that never ends. */
    body.len = first;
    ndt_buf_append(&body, "\xff\xff", 2);
    expect_error(&body, "length prefix", first);

    /* Bytes that are not a MetricFamily (field 1 with wire type 7). */
    body.len = first;
    ndt_buf_append(&body, "\x02\x0f\x00", 3);
    expect_error(&body, "not a valid MetricFamily", first);

    /* A gauge family whose metric carries a counter. */
    NdtPromexpo__Counter counter = NDT_PROMEXPO__COUNTER__INIT;
    m.gauge = NULL;
    m.counter = &counter;
    body.len = first;
    append_family(&body, &f);
    expect_error(&body, "has no gauge value", first);
    m.gauge = &gauge;
    m.counter = NULL;

    /* Invalid names, duplicate and reserved labels. */
    f.name = "9starts_with_digit";
    body.len = 0;
    append_family(&body, &f);
    expect_error(&body, "invalid metric name", 0);
    f.name = "ok_gauge";
    NdtPromexpo__LabelPair *dup[2] = { label("a", "1"), label("a", "2") };
    m.n_label = 2;
    m.label = dup;
    body.len = 0;
    append_family(&body, &f);
    expect_error(&body, "duplicate label name", 0);
    dup[1]->name = "__name__";
    body.len = 0;
    append_family(&body, &f);
    expect_error(&body, "reserved", 0);
    dup[1]->name = "b";
    dup[1]->value = "\xc3\x28";
    body.len = 0;
    append_family(&body, &f);
    expect_error(&body, "invalid UTF-8", 0);
    free(dup[0]);
    free(dup[1]);
    ndt_buf_free(&body);
}

static void content_type_negotiation(void **state)
{
    (void)state;
    assert_int_equal(ingest_expo_format_from_content_type(
                         "application/vnd.google.protobuf; "
                         "proto=io.prometheus.client.MetricFamily; encoding=delimited"),
                     INGEST_EXPO_PROTOBUF);
    assert_int_equal(ingest_expo_format_from_content_type(INGEST_EXPO_PROTOBUF_MEDIA_TYPE),
                     INGEST_EXPO_PROTOBUF);
    /* Another message type or the text encoding of it is not ours. */
    assert_int_equal(ingest_expo_format_from_content_type(
                         "application/vnd.google.protobuf; proto=other.Message; "
                         "encoding=delimited"),
                     INGEST_EXPO_TEXT);
    assert_int_equal(ingest_expo_format_from_content_type(
                         "application/vnd.google.protobuf; "
                         "proto=io.prometheus.client.MetricFamily; encoding=text"),
                     INGEST_EXPO_TEXT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_gauge_untyped_and_timestamps),
        cmocka_unit_test(summary_and_classic_histogram_as_text_spells_them),
        cmocka_unit_test(native_histogram_spans_and_deltas),
        cmocka_unit_test(bad_bodies_fail_with_a_reason_and_an_offset),
        cmocka_unit_test(content_type_negotiation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
