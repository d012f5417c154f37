/*
 * test_histogram.c: native histograms in the HDL.  Quantile estimates
 * against values worked out by hand from the bucket bounds (schema 0:
 * bucket i is (2^(i-1), 2^i]; schema 3: (2^((i-1)/8), 2^(i/8)]) with the
 * interpolation rule of harmonize/histogram.h, then a rule file with
 * `transform: native_histogram` driving the engine: the attributes it
 * expands to, scale applied to values but not to the count, classic
 * histograms skipped, window: interval (increase since the previous
 * sample, a reset, an empty interval), and the loader's errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harmonize/engine.h"
#include "harmonize/histogram.h"
#include "harmonize/rules.h"

static hdl_native_histogram hist(int schema, double zt, double zc, const hdl_native_bucket *pos,
                                 size_t npos, const hdl_native_bucket *neg, size_t nneg)
{
    hdl_native_histogram h = { 0 };
    h.schema = schema;
    h.zero_threshold = zt;
    h.zero_count = zc;
    h.positive = pos;
    h.npositive = npos;
    h.negative = neg;
    h.nnegative = nneg;
    h.count = zc;
    for (size_t i = 0; i < npos; i++)
        h.count += pos[i].count;
    for (size_t i = 0; i < nneg; i++)
        h.count += neg[i].count;
    return h;
}

static void test_bucket_bounds(void **state)
{
    (void)state;
    assert_float_equal(hdl_native_bucket_upper(0, 3), 8, 0);
    assert_float_equal(hdl_native_bucket_upper(0, 0), 1, 0);
    assert_float_equal(hdl_native_bucket_upper(3, 8), 2, 0);
    assert_float_equal(hdl_native_bucket_upper(3, -8), 0.5, 0);
    assert_float_equal(hdl_native_bucket_upper(-1, 2), 16, 0); /* base 4 */
}

/* Schema 0, (1,2]: 2, (2,4]: 4, (4,8]: 2. */
static void test_quantiles_positive(void **state)
{
    (void)state;
    hdl_native_bucket pos[] = { { 1, 2 }, { 2, 4 }, { 3, 2 } };
    hdl_native_histogram h = hist(0, 0, 0, pos, 3, NULL, 0);
    /* rank 4: 2 below, the middle of (2,4]: 2 x 2^0.5 */
    assert_float_equal(hdl_native_quantile(&h, 0.5), 2.8284271247461903, 1e-12);
    /* rank 7.6: 6 below, 0.8 into (4,8]: 4 x 2^0.8 */
    assert_float_equal(hdl_native_quantile(&h, 0.95), 6.964404506368993, 1e-12);
    assert_float_equal(hdl_native_quantile(&h, 0.99), 7.781239579298284, 1e-12);
    assert_float_equal(hdl_native_quantile(&h, 0), 1, 0);
    assert_float_equal(hdl_native_quantile(&h, 1), 8, 0);
    /* rank 2 exactly: the top of (1,2] */
    assert_float_equal(hdl_native_quantile(&h, 0.25), 2, 1e-12);
    /* schema -1, base 4: (1,4] alone, its middle is 4^0.5 */
    hdl_native_bucket one[] = { { 1, 10 } };
    hdl_native_histogram h4 = hist(-1, 0, 0, one, 1, NULL, 0);
    assert_float_equal(hdl_native_quantile(&h4, 0.5), 2, 1e-12);
}

/* The zero bucket is linear; without negative buckets it starts at 0. */
static void test_quantiles_zero_bucket(void **state)
{
    (void)state;
    hdl_native_bucket pos[] = { { 0, 4 } };
    hdl_native_histogram h = hist(0, 0.001, 4, pos, 1, NULL, 0);
    assert_float_equal(hdl_native_quantile(&h, 0.25), 0.0005, 1e-15);
    assert_float_equal(hdl_native_quantile(&h, 0), 0, 0);
    assert_float_equal(hdl_native_quantile(&h, 0.75), 0.7071067811865476, 1e-12);
    /* only the zero bucket: [0, 0] */
    hdl_native_histogram z = hist(0, 0.001, 5, NULL, 0, NULL, 0);
    assert_float_equal(hdl_native_quantile(&z, 0.9), 0, 0);
}

/* Negative bucket i covers [-2^i, -2^(i-1)), mirrored. */
static void test_quantiles_negative(void **state)
{
    (void)state;
    hdl_native_bucket neg[] = { { 1, 2 } }, pos[] = { { 1, 2 } };
    hdl_native_histogram h = hist(0, 0, 0, pos, 1, neg, 1);
    assert_float_equal(hdl_native_quantile(&h, 0), -2, 0);
    assert_float_equal(hdl_native_quantile(&h, 0.25), -1.4142135623730951, 1e-12);
    assert_float_equal(hdl_native_quantile(&h, 0.75), 1.4142135623730951, 1e-12);
}

/* tests/tools/native_histogram_pb's histogram (schema 3): negative -2: 1,
 * zero (threshold 0.001): 2, positive 0: 3, 1: 2, 4: 6; 14 in all. */
static const hdl_native_bucket tool_pos[] = { { 0, 3 }, { 1, 2 }, { 4, 6 } };
static const hdl_native_bucket tool_neg[] = { { -2, 1 } };

static void test_quantiles_tool_histogram(void **state)
{
    (void)state;
    hdl_native_histogram h = hist(3, 0.001, 2, tool_pos, 3, tool_neg, 1);
    /* rank 7: 6 below, the middle of (1, 2^(1/8)]: 2^(1/16) */
    assert_float_equal(hdl_native_quantile(&h, 0.5), 1.0442737824274138, 1e-12);
    /* rank 13.3: 8 below, 5.3/6 into (2^(3/8), 2^(4/8)] */
    assert_float_equal(hdl_native_quantile(&h, 0.95), 1.3999901402205512, 1e-12);
    assert_float_equal(hdl_native_quantile(&h, 0.99), 1.411357364252405, 1e-12);
    /* rank 2.8: 1 below, 0.9 into [-0.001, 0.001] */
    assert_float_equal(hdl_native_quantile(&h, 0.2), 0.0008, 1e-15);
}

static void test_quantiles_refused(void **state)
{
    (void)state;
    hdl_native_bucket pos[] = { { 2, 1 }, { 1, 1 } };
    hdl_native_histogram unordered = hist(0, 0, 0, pos, 2, NULL, 0);
    assert_true(isnan(hdl_native_quantile(&unordered, 0.5)));
    hdl_native_histogram empty = hist(0, 0.001, 0, NULL, 0, NULL, 0);
    assert_true(isnan(hdl_native_quantile(&empty, 0.5)));
    hdl_native_histogram h = hist(0, 0, 0, tool_pos, 3, NULL, 0);
    assert_true(isnan(hdl_native_quantile(&h, 1.5)));
    assert_true(isnan(hdl_native_quantile(&h, NAN)));
    assert_true(isnan(hdl_native_quantile(NULL, 0.5)));
    /* Found by fuzz_decode_avro: a zero bucket reaching above the first
     * populated bucket (the exposition forbids it, an Avro record can
     * carry it) made p50 fall below p0.  Such a histogram, a schema out
     * of [-4, 8] and a non-finite zero threshold give no estimate. */
    hdl_native_histogram wide = hist(0, 1e9, 5, tool_pos, 3, NULL, 0);
    assert_true(isnan(hdl_native_quantile(&wide, 0.5)));
    hdl_native_histogram schema = hist(40, 0, 0, tool_pos, 3, NULL, 0);
    assert_true(isnan(hdl_native_quantile(&schema, 0.5)));
    hdl_native_histogram inf = hist(0, INFINITY, 0, tool_pos, 3, NULL, 0);
    assert_true(isnan(hdl_native_quantile(&inf, 0.5)));
    /* Found by fuzz_decode_avro again: the same on the negative side when
     * the positive side is well placed (only the positive side's first
     * bucket was checked): the negative bucket (-0.0625, -0.03125] lies
     * inside the zero bucket [-0.5, 0.5], and p50 fell below p0. */
    hdl_native_bucket inside[] = { { -4, 3 } };
    hdl_native_bucket above[] = { { 1, 1 } };
    hdl_native_histogram twosided = hist(0, 0.5, 4, above, 1, inside, 1);
    assert_true(isnan(hdl_native_quantile(&twosided, 0.5)));
    /* Both sides outside the zero bucket: an estimate, growing with q. */
    hdl_native_bucket outside[] = { { 1, 3 } };
    hdl_native_histogram fine = hist(0, 0.5, 4, above, 1, outside, 1);
    double q0 = hdl_native_quantile(&fine, 0), q5 = hdl_native_quantile(&fine, 0.5),
           q1 = hdl_native_quantile(&fine, 1);
    assert_true(q0 <= q5 && q5 <= q1);
    assert_true(q0 >= -2 && q1 <= 2);
}

/* ---- the rule and the engine --------------------------------------------- */

static const char rules_yaml[] =
    "version: 1\n"
    "rules:\n"
    "  - metric: rpc_duration_seconds\n"
    "    match: { service: \".+\" }\n"
    "    entity: { type: Service, id: \"urn:ngsi-ld:Service:{service}\" }\n"
    "    attribute: latency\n"
    "    unitCode: C26\n"
    "    transform: native_histogram\n"
    "    quantiles: [0.5, 0.95, 0.99, 0.999]\n"
    "    scale: 1000\n";

typedef struct captured {
    char names[16][64];
    double values[16];
    size_t n;
    size_t points;
} captured;

static int capture_points(void *ctx, const udr_point *p, size_t n)
{
    captured *c = ctx;
    for (size_t i = 0; i < n; i++, c->points++)
        for (size_t j = 0; j < p[i].nfields; j++) {
            if (p[i].fields[j].kind != UDR_FIELD_DOUBLE || c->n == 16)
                continue;
            snprintf(c->names[c->n], sizeof(c->names[0]), "%s", p[i].fields[j].name);
            c->values[c->n++] = p[i].fields[j].number;
        }
    return NDT_OK;
}

static double field(const captured *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->names[i], name) == 0)
            return c->values[i];
    fail_msg("no field %s", name);
    return NAN;
}

static void test_rule_native_histogram(void **state)
{
    (void)state;
    hdl_rules rules;
    hdl_engine *e;
    char err[NDT_ERRBUF_SIZE];
    if (hdl_rules_load_string(&rules, "h.yaml", rules_yaml, strlen(rules_yaml), err,
                              sizeof(err)) != NDT_OK)
        fail_msg("%s", err);
    assert_int_equal(rules.types[0].nslots, 7); /* sum count mean p50 p95 p99 p99_9 */
    assert_int_equal(hdl_engine_new(&rules, NULL, &e, err, sizeof(err)), NDT_OK);
    captured c = { 0 };
    hdl_emit emit = { &c, capture_points, NULL, NULL };

    hdl_native_histogram h = hist(3, 0.001, 2, tool_pos, 3, tool_neg, 1);
    h.sum = 30.5;
    hdl_label labels[] = { { ndt_str_from_cstr("service"), ndt_str_from_cstr("api") } };
    hdl_sample s = { 0 };
    s.name = ndt_str_from_cstr("rpc_duration_seconds_count");
    s.labels = labels;
    s.nlabels = 1;
    s.value = 14;
    s.ts_ms = 1000;
    s.type = HDL_TYPE_HISTOGRAM;
    s.native = &h;
    assert_int_equal(hdl_engine_feed(e, &s, &emit), NDT_OK);
    assert_int_equal(hdl_engine_finish(e, 1000, &emit), NDT_OK);
    assert_int_equal(c.points, 1);
    assert_float_equal(field(&c, "latency_count"), 14, 0);          /* not scaled */
    assert_float_equal(field(&c, "latency_sum"), 30500, 1e-9);
    assert_float_equal(field(&c, "latency_mean"), 30500.0 / 14, 1e-9);
    assert_float_equal(field(&c, "latency_p50"), 1044.2737824274138, 1e-9);
    assert_float_equal(field(&c, "latency_p95"), 1399.9901402205512, 1e-9);
    assert_float_equal(field(&c, "latency_p99"), 1411.357364252405, 1e-9);
    assert_true(field(&c, "latency_p99_9") > 1411.357364252405 &&
                field(&c, "latency_p99_9") <= 1414.2135623730951);

    /* A classic histogram's _count carries no native one: no value, the
     * values skipped counted; the bare family name is no rule's metric. */
    hdl_engine_stats before, after;
    hdl_engine_get_stats(e, &before);
    memset(&c, 0, sizeof(c));
    s.native = NULL;
    s.ts_ms = 2000;
    assert_int_equal(hdl_engine_feed(e, &s, &emit), NDT_OK);
    s.name = ndt_str_from_cstr("rpc_duration_seconds");
    assert_int_equal(hdl_engine_feed(e, &s, &emit), NDT_OK);
    assert_int_equal(hdl_engine_finish(e, 2000, &emit), NDT_OK);
    hdl_engine_get_stats(e, &after);
    assert_int_equal(after.values_skipped - before.values_skipped, 7);
    assert_int_equal(after.samples_unmapped - before.samples_unmapped, 1);
    assert_int_equal(c.n, 0);
    hdl_engine_destroy(e);
    hdl_rules_free(&rules);
}

/* window: interval: the observations since the previous sample. */
static void test_rule_window_interval(void **state)
{
    (void)state;
    static const char yaml[] =
        "version: 1\n"
        "rules:\n"
        "  - metric: rpc_duration_seconds\n"
        "    entity: { type: Service, id: \"urn:ngsi-ld:Service:{service}\" }\n"
        "    attribute: latency\n"
        "    transform: native_histogram\n"
        "    window: interval\n"
        "    quantiles: [0.25, 0.75]\n";
    hdl_rules rules;
    hdl_engine *e;
    char err[NDT_ERRBUF_SIZE];
    if (hdl_rules_load_string(&rules, "w.yaml", yaml, strlen(yaml), err, sizeof(err)) != NDT_OK)
        fail_msg("%s", err);
    assert_int_equal(hdl_engine_new(&rules, NULL, &e, err, sizeof(err)), NDT_OK);
    captured c = { 0 };
    hdl_emit emit = { &c, capture_points, NULL, NULL };
    hdl_label labels[] = { { ndt_str_from_cstr("service"), ndt_str_from_cstr("api") } };
    hdl_sample s = { 0 };
    s.name = ndt_str_from_cstr("rpc_duration_seconds_count");
    s.labels = labels;
    s.nlabels = 1;

    /* 1: (1,2]: 2, (2,4]: 4, sum 15: the first sample gives nothing. */
    hdl_native_bucket b1[] = { { 1, 2 }, { 2, 4 } };
    hdl_native_histogram h1 = hist(0, 0, 0, b1, 2, NULL, 0);
    h1.sum = 15;
    s.native = &h1;
    s.ts_ms = 1000;
    assert_int_equal(hdl_engine_feed(e, &s, &emit), NDT_OK);
    assert_int_equal(hdl_engine_finish(e, 1000, &emit), NDT_OK);
    assert_int_equal(c.n, 0);

    /* 2: (1,2]: 2, (2,4]: 6, (4,8]: 2, sum 30.  Since 1: 0, 2, 2, sum 15.
     * p25: rank 1, halfway into (2,4]; p75: rank 3, halfway into (4,8]. */
    hdl_native_bucket b2[] = { { 1, 2 }, { 2, 6 }, { 3, 2 } };
    hdl_native_histogram h2 = hist(0, 0, 0, b2, 3, NULL, 0);
    h2.sum = 30;
    s.native = &h2;
    s.ts_ms = 2000;
    assert_int_equal(hdl_engine_feed(e, &s, &emit), NDT_OK);
    assert_int_equal(hdl_engine_finish(e, 2000, &emit), NDT_OK);
    assert_float_equal(field(&c, "latency_count"), 4, 0);
    assert_float_equal(field(&c, "latency_sum"), 15, 0);
    assert_float_equal(field(&c, "latency_mean"), 3.75, 0);
    assert_float_equal(field(&c, "latency_p25"), 2.8284271247461903, 1e-12);
    assert_float_equal(field(&c, "latency_p75"), 5.656854249492381, 1e-12);

    /* The same instant again: nothing new. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(hdl_engine_feed(e, &s, &emit), NDT_OK);
    assert_int_equal(hdl_engine_finish(e, 2000, &emit), NDT_OK);
    assert_int_equal(c.n, 0);

    /* 3: a restart, (1,2]: 1 only: a reset, the histogram is the increase;
     * p25: rank 0.25, a quarter into (1,2]: 2^0.25. */
    hdl_engine_stats before, after;
    hdl_engine_get_stats(e, &before);
    hdl_native_bucket b3[] = { { 1, 1 } };
    hdl_native_histogram h3 = hist(0, 0, 0, b3, 1, NULL, 0);
    h3.sum = 1.5;
    s.native = &h3;
    s.ts_ms = 3000;
    assert_int_equal(hdl_engine_feed(e, &s, &emit), NDT_OK);
    assert_int_equal(hdl_engine_finish(e, 3000, &emit), NDT_OK);
    hdl_engine_get_stats(e, &after);
    assert_int_equal(after.counter_resets - before.counter_resets, 1);
    assert_float_equal(field(&c, "latency_count"), 1, 0);
    assert_float_equal(field(&c, "latency_sum"), 1.5, 0);
    assert_float_equal(field(&c, "latency_p25"), 1.189207115002721, 1e-12);

    /* 4: nothing observed since 3: count and sum 0, no mean or quantile. */
    memset(&c, 0, sizeof(c));
    s.ts_ms = 4000;
    assert_int_equal(hdl_engine_feed(e, &s, &emit), NDT_OK);
    assert_int_equal(hdl_engine_finish(e, 4000, &emit), NDT_OK);
    assert_float_equal(field(&c, "latency_count"), 0, 0);
    assert_float_equal(field(&c, "latency_sum"), 0, 0);
    for (size_t i = 0; i < c.n; i++)
        assert_null(strstr("latency_mean latency_p25 latency_p75", c.names[i]));
    hdl_engine_destroy(e);
    hdl_rules_free(&rules);
}

static void test_rule_errors(void **state)
{
    (void)state;
    static const struct {
        const char *tail;
        const char *message;
    } cases[] = {
        { "    quantiles: [0.5]\n", "h.yaml:6:16: quantiles: needs transform: native_histogram" },
        { "    transform: native_histogram\n    quantiles: [0.5, 1.5]\n",
          "h.yaml:7:22: quantiles: expected a number in [0, 1], got '1.5'" },
        { "    transform: native_histogram\n    quantiles: [0.5, 0.5]\n",
          "h.yaml:7:22: quantiles: '0.5' is listed twice" },
        { "    transform: native_histogram\n    quantiles: 0.5\n",
          "h.yaml:7:16: quantiles: expected a list of numbers in [0, 1]" },
        { "    transform: native_histogram\n    aggregate: sum\n",
          "h.yaml:7:16: aggregate: does not apply to transform: native_histogram" },
        { "    window: interval\n", "h.yaml:6:13: window: needs transform: native_histogram" },
        { "    transform: native_histogram\n    window: sliding\n",
          "h.yaml:7:13: window: expected cumulative or interval, got 'sliding'" },
        { "    transform: native_histgram\n",
          "h.yaml:6:16: transform: expected identity, rate, info or native_histogram, got "
          "'native_histgram'" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[1024], err[NDT_ERRBUF_SIZE] = "";
        snprintf(yaml, sizeof(yaml),
                 "version: 1\nrules:\n  - metric: m\n    entity: { type: T, id: \"urn:ngsi-ld:T:{a}\" }\n"
                 "    attribute: x\n%s", cases[i].tail);
        hdl_rules r;
        int rc = hdl_rules_load_string(&r, "h.yaml", yaml, strlen(yaml), err, sizeof(err));
        if (rc != NDT_EBADCONF || strncmp(err, cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("case %zu: rc %d, got \"%s\", want \"%s\"", i, rc, err, cases[i].message);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_bounds),
        cmocka_unit_test(test_quantiles_positive),
        cmocka_unit_test(test_quantiles_zero_bucket),
        cmocka_unit_test(test_quantiles_negative),
        cmocka_unit_test(test_quantiles_tool_histogram),
        cmocka_unit_test(test_quantiles_refused),
        cmocka_unit_test(test_rule_native_histogram),
        cmocka_unit_test(test_rule_window_interval),
        cmocka_unit_test(test_rule_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
