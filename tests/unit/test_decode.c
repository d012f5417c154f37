/*
 * test_decode.c: reading ndt.telemetry.raw back (harmonize/decode.h).
 * Round trips through ingest's own encoders (what was encoded decodes to
 * the same samples, labels sorted, __name__ out of the labels), escapes,
 * NaN and the infinities, Confluent framing and its ambiguous corner, a
 * record written by Avro C itself, format detection, the liberal corners
 * of the json and line-protocol readers, and malformed inputs: every one
 * is NDT_EBADCONF with a reason naming what and where, never a crash
 * (every prefix of a valid message is tried under ASan).  The fast paths
 * get their own: a special byte at every offset of strings and names of
 * every length (the 16-byte scanners), values bit-exact with strtod,
 * the per-thread timestamp cache.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <avro.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harmonize/decode.h"
#include "ingest/sink.h"

#define L(n, v) { NDT_STR_LIT(n), NDT_STR_LIT(v) }
#define S(lit) ((ndt_str){ (lit), sizeof(lit) - 1 })
#define TS_EXAMPLE 1767323045678LL /* 2026-01-02T03:04:05.678Z */

/* ---- collecting decoded samples (deep copies: the view dies with the call) */

#define MAX_GOT 64

typedef struct got_sample {
    char *name;
    size_t name_len;
    size_t nlabels;
    char *lname[HDL_DECODE_MAX_LABELS], *lvalue[HDL_DECODE_MAX_LABELS];
    size_t lname_len[HDL_DECODE_MAX_LABELS], lvalue_len[HDL_DECODE_MAX_LABELS];
    double value;
    int64_t ts_ms;
    hdl_metric_type type;
    int has_native;
    hdl_native_histogram native; /* bucket pointers point into pos/neg */
    hdl_native_bucket pos[8], neg[8];
} got_sample;

typedef struct collector {
    got_sample s[MAX_GOT];
    size_t n;
    size_t stop_after; /* 0 = never */
} collector;

static char *dup_str(ndt_str s)
{
    char *p = malloc(s.len + 1);
    assert_non_null(p);
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    return p;
}

static int collect(void *ctx, const hdl_sample *s)
{
    collector *c = ctx;
    if (c->stop_after && c->n == c->stop_after)
        return NDT_ERROR;
    assert_true(c->n < MAX_GOT);
    got_sample *g = &c->s[c->n++];
    g->name = dup_str(s->name);
    g->name_len = s->name.len;
    g->nlabels = s->nlabels;
    for (size_t i = 0; i < s->nlabels; i++) {
        g->lname[i] = dup_str(s->labels[i].name);
        g->lvalue[i] = dup_str(s->labels[i].value);
        g->lname_len[i] = s->labels[i].name.len;
        g->lvalue_len[i] = s->labels[i].value.len;
    }
    g->value = s->value;
    g->ts_ms = s->ts_ms;
    g->type = s->type;
    g->has_native = s->native != NULL;
    if (s->native) {
        assert_true(s->native->npositive <= 8 && s->native->nnegative <= 8);
        g->native = *s->native;
        memcpy(g->pos, s->native->positive, s->native->npositive * sizeof(g->pos[0]));
        memcpy(g->neg, s->native->negative, s->native->nnegative * sizeof(g->neg[0]));
        g->native.positive = g->pos;
        g->native.negative = g->neg;
    }
    return NDT_OK;
}

static void collector_free(collector *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->s[i].name);
        for (size_t j = 0; j < c->s[i].nlabels; j++) {
            free(c->s[i].lname[j]);
            free(c->s[i].lvalue[j]);
        }
    }
    memset(c, 0, sizeof(*c));
}

static int mem_eq(const char *a, size_t alen, ndt_str b)
{
    return alen == b.len && (alen == 0 || memcmp(a, b.ptr, alen) == 0);
}

/* The decoded sample equals the series: name = __name__, the other
 * labels in the same (sorted) order, same value bits, time, type. */
static void assert_same(const got_sample *g, const ingest_series *want, int check_type)
{
    assert_true(want->nlabels >= 1);
    assert_true(mem_eq(g->name, g->name_len, want->labels[0].value));
    assert_int_equal(g->nlabels, want->nlabels - 1);
    for (size_t i = 0; i < g->nlabels; i++) {
        assert_true(mem_eq(g->lname[i], g->lname_len[i], want->labels[i + 1].name));
        assert_true(mem_eq(g->lvalue[i], g->lvalue_len[i], want->labels[i + 1].value));
    }
    if (isnan(want->value))
        assert_true(isnan(g->value));
    else
        assert_memory_equal(&g->value, &want->value, sizeof(double));
    assert_int_equal(g->ts_ms, want->timestamp_ms);
    if (check_type)
        assert_int_equal((int)g->type, (int)want->type);
}

static int decode(hdl_format f, const void *msg, size_t len, collector *c, char *err)
{
    err[0] = 0;
    return hdl_decode(f, msg, len, collect, c, err, NDT_ERRBUF_SIZE);
}

/* Decoding must fail with NDT_EBADCONF and a reason containing want. */
static void assert_bad(hdl_format f, const void *msg, size_t len, const char *want)
{
    collector c = { 0 };
    char err[NDT_ERRBUF_SIZE];
    int rc = decode(f, msg, len, &c, err);
    if (rc != NDT_EBADCONF || !strstr(err, want))
        fail_msg("input '%.*s': rc %d, err '%s', wanted '%s'", (int)len, (const char *)msg, rc,
                 err, want);
    collector_free(&c);
}

/* ---- test data ------------------------------------------------------------ */

static const ingest_label l_up[] = { L("__name__", "up"), L("instance", "h:9100"), L("job", "node") };
static const ingest_label l_cpu[] = { L("__name__", "node_cpu_seconds_total"), L("cpu", "0"),
                                      L("instance", "h:9100"), L("job", "node"),
                                      L("mode", "idle") };
/* Every byte the encoders escape, in names that stay valid for each format. */
static const ingest_label l_hostile[] = {
    L("__name__", "m,with space"),
    { S("a=b"), S("x,y z=w\tt\nn\rr\ff") },
    { S("job"), S("back\\slash \\, and \"quote\"") },
    { S("utf8"), S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") },
};

static const ingest_series series_set[] = {
    { l_up, 3, 1, TS_EXAMPLE, INGEST_TYPE_GAUGE },
    { l_cpu, 5, 1234.5, TS_EXAMPLE + 20, INGEST_TYPE_COUNTER },
    { l_cpu, 5, 0.1, -1, INGEST_TYPE_COUNTER },
    { l_up, 3, -2.5e-300, 0, INGEST_TYPE_UNKNOWN },
    { l_up, 3, 1.7976931348623157e308, 4102444800000LL, INGEST_TYPE_SUMMARY },
    { l_hostile, 4, 5e-324, TS_EXAMPLE, INGEST_TYPE_STATESET },
};

/* ---- json ----------------------------------------------------------------- */

static void json_round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < NDT_ARRAY_LEN(series_set); i++) {
        ndt_buf b;
        ndt_buf_init(&b, 0);
        assert_int_equal(ingest_encode_json(&series_set[i], &b), NDT_OK);
        collector c = { 0 };
        char err[NDT_ERRBUF_SIZE];
        assert_int_equal(hdl_decode_detect(b.data, b.len), HDL_FORMAT_JSON);
        if (decode(HDL_FORMAT_AUTO, b.data, b.len, &c, err) != NDT_OK)
            fail_msg("%s", err);
        assert_int_equal(c.n, 1);
        assert_same(&c.s[0], &series_set[i], 0);
        assert_int_equal(c.s[0].type, HDL_TYPE_UNKNOWN);
        collector_free(&c);
        ndt_buf_free(&b);
    }
}

static void json_special_values(void **state)
{
    (void)state;
    const double values[] = { NAN, INFINITY, -INFINITY, -0.0 };
    for (size_t i = 0; i < NDT_ARRAY_LEN(values); i++) {
        ingest_series s = { l_up, 3, values[i], TS_EXAMPLE, INGEST_TYPE_GAUGE };
        ndt_buf b;
        ndt_buf_init(&b, 0);
        assert_int_equal(ingest_encode_json(&s, &b), NDT_OK);
        collector c = { 0 };
        char err[NDT_ERRBUF_SIZE];
        assert_int_equal(decode(HDL_FORMAT_JSON, b.data, b.len, &c, err), NDT_OK);
        assert_same(&c.s[0], &s, 0);
        collector_free(&c);
        ndt_buf_free(&b);
    }
}

static void json_unescapes_like_a_json_parser(void **state)
{
    (void)state;
    /* \u escapes, a surrogate pair, a lone surrogate (U+FFFD, as Go), \/ */
    const char msg[] = "{\"labels\":{\"b\":\"\\u00e9\\ud83d\\ude00\\ud800x\\/\\b\\f\\u0000\","
                       "\"__name__\":\"m\",\"a\":\"plain\"},\"value\":\"2\","
                       "\"timestamp\":\"2026-01-02T03:04:05.678Z\"}";
    collector c = { 0 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(decode(HDL_FORMAT_JSON, msg, sizeof(msg) - 1, &c, err), NDT_OK);
    assert_string_equal(c.s[0].name, "m");
    assert_int_equal(c.s[0].nlabels, 2);
    assert_string_equal(c.s[0].lname[0], "a"); /* sorted, whatever the message's order */
    assert_string_equal(c.s[0].lname[1], "b");
    const char want[] = "\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx/\b\f";
    assert_int_equal(c.s[0].lvalue_len[1], sizeof(want)); /* the \u0000 is kept */
    assert_memory_equal(c.s[0].lvalue[1], want, sizeof(want));
    collector_free(&c);
}

static void json_reads_what_the_adapter_writes(void **state)
{
    (void)state;
    /* prometheus-kafka-adapter: whole seconds, labels sorted by Go's map
     * order, keys in any order; a numeric offset; extra keys skipped; a
     * bare number as value. */
    const struct {
        const char *msg;
        int64_t ts;
        double value;
    } cases[] = {
        { "{\"timestamp\":\"2026-01-02T03:04:05Z\",\"value\":\"1\",\"name\":\"up\","
          "\"labels\":{\"__name__\":\"up\",\"instance\":\"h:9100\",\"job\":\"node\"}}",
          TS_EXAMPLE - 678, 1 },
        { " {\"name\":\"up\",\"labels\":{\"job\":\"node\",\"instance\":\"h:9100\"},"
          "\"value\":1e3,\"timestamp\":\"2026-01-02T05:04:05.6789+02:00\"}\n",
          TS_EXAMPLE, 1000 },
        { "{\"extra\":[1,{\"x\":[true,false,null]},\"s\\\"\"],\"name\":\"up\",\"value\":\"-Inf\","
          "\"labels\":{\"instance\":\"h:9100\",\"job\":\"node\"},"
          "\"timestamp\":\"2026-01-02t01:04:05.6z\",\"more\":{}}",
          TS_EXAMPLE - 2 * 3600000 - 78, -INFINITY },
        { "{\"value\":\"0.5\",\"timestamp\":\"1969-12-31T23:59:59.999Z\","
          "\"labels\":{\"job\":\"node\",\"__name__\":\"up\",\"instance\":\"h:9100\"}}",
          -1, 0.5 },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        collector c = { 0 };
        char err[NDT_ERRBUF_SIZE];
        if (decode(HDL_FORMAT_AUTO, cases[i].msg, strlen(cases[i].msg), &c, err) != NDT_OK)
            fail_msg("case %zu: %s", i, err);
        ingest_series want = { l_up, 3, cases[i].value, cases[i].ts, INGEST_TYPE_UNKNOWN };
        assert_same(&c.s[0], &want, 0);
        collector_free(&c);
    }
}

static void json_malformed_is_badconf_with_reason(void **state)
{
    (void)state;
    const char *ts = "\"timestamp\":\"2026-01-02T03:04:05.678Z\"";
    char buf[512];
    const struct {
        const char *fmt;
        const char *want;
    } cases[] = {
        { "", "json: byte 0: message ends early" },
        { "{", "message ends early" },
        { "[]", "byte 0: expected '{'" },
        { "{\"name\":\"m\",\"value\":\"1\"}", "no \"timestamp\"" },
        { "{\"name\":\"m\",%s}", "no \"value\"" },
        { "{\"value\":\"1\",%s}", "no metric name" },
        { "{\"name\":\"m\",\"value\":\"1\",%s,}", "expected a string" },
        { "{\"name\":\"m\",\"value\":\"1\",%s} x", "bytes after the object" },
        { "{\"name\":\"m\",\"value\":\"0x1p3\",%s}", "value is not a number" },
        { "{\"name\":\"m\",\"value\":\"1_000\",%s}", "value is not a number" },
        { "{\"name\":\"m\",\"value\":01,%s}", "byte 21: expected ',' or '}'" },
        { "{\"name\":\"m\",\"value\":\"1\",\"timestamp\":\"2026-02-30T00:00:00Z\"}",
          "timestamp is not RFC 3339" },
        { "{\"name\":\"m\",\"value\":\"1\",\"timestamp\":\"2026-01-02 03:04:05Z\"}",
          "timestamp is not RFC 3339" },
        { "{\"name\":\"m\",\"value\":\"1\",\"timestamp\":\"2026-01-02T03:04:05\"}",
          "timestamp is not RFC 3339" },
        { "{\"name\":\"m\",\"value\":\"1\",\"timestamp\":1767323045678}", "expected a string" },
        { "{\"name\":\"m\",\"name\":\"m\",\"value\":\"1\",%s}", "byte 12: key repeated" },
        { "{\"name\":\"m\",\"value\":\"1\",%s,\"labels\":{\"a\":\"1\",\"a\":\"2\"}}",
          "label 'a' repeated" },
        { "{\"name\":\"m\",\"value\":\"1\",%s,\"labels\":{\"__name__\":\"n\"}}",
          "\"name\" and labels.__name__ differ" },
        { "{\"name\":\"m\",\"value\":\"1\",%s,\"labels\":{\"a\":1}}", "expected a string" },
        { "{\"name\":\"m\\x\",\"value\":\"1\",%s}", "unknown escape" },
        { "{\"name\":\"m\\u12\",\"value\":\"1\",%s}", "four hex digits" },
        { "{\"name\":\"m\nn\",\"value\":\"1\",%s}", "control byte" },
        { "{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"
          "\"name\":\"m\",\"value\":\"1\",%s}",
          "nested too deep" },
        { "{\"x\":tru,\"name\":\"m\",\"value\":\"1\",%s}", "expected a value" },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        snprintf(buf, sizeof(buf), cases[i].fmt, ts);
        assert_bad(HDL_FORMAT_JSON, buf, strlen(buf), cases[i].want);
    }
    /* More labels than HDL_DECODE_MAX_LABELS. */
    ndt_buf b;
    ndt_buf_init(&b, 0);
    ndt_buf_printf(&b, "{\"name\":\"m\",\"value\":\"1\",%s,\"labels\":{", ts);
    for (int i = 0; i <= HDL_DECODE_MAX_LABELS; i++)
        ndt_buf_printf(&b, "%s\"l%d\":\"v\"", i ? "," : "", i);
    ndt_buf_append_str(&b, "}}");
    assert_bad(HDL_FORMAT_JSON, b.data, b.len, "more than 128 labels");
    ndt_buf_free(&b);
}

/* The string scanner looks at 16 bytes at a time and decides from its
 * masks whether the closing quote came first: a special byte at every
 * offset of strings of every length, in the middle of the message (the
 * name) and at its very end (the last label value), must read as a byte
 * by byte reader would. */
static void json_strings_at_every_offset(void **state)
{
    (void)state;
    const char *ts = "\"timestamp\":\"2026-01-02T03:04:05.678Z\"";
    static const struct {
        const char *in;  /* inserted at offset k of a run of 'a' */
        const char *out; /* what it reads as; NULL: refused */
    } specials[] = {
        { "", "" },
        { "\\n", "\n" },
        { "\\\"", "\"" },
        { "\\\\", "\\" },
        { "\\u00e9", "\xc3\xa9" },
        { "\\ud83d\\ude00", "\xf0\x9f\x98\x80" },
        { "\xc3\xa9", "\xc3\xa9" }, /* UTF-8 is plain */
        { "\x7f", "\x7f" },
        { "\x01", NULL },
        { "\x1f", NULL },
        { "\t", NULL },
    };
    char msg[512], want[128];
    for (size_t i = 0; i < NDT_ARRAY_LEN(specials); i++) {
        for (int len = 0; len <= 40; len++) {
            for (int k = 0; k <= len; k++) {
                char str[128];
                int n = snprintf(str, sizeof(str), "%.*s%s%.*s", k, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                 specials[i].in, len - k, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
                int wn = specials[i].out
                             ? snprintf(want, sizeof(want), "%.*s%s%.*s", k,
                                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", specials[i].out,
                                        len - k, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
                             : 0;
                for (int where = 0; where < 2; where++) {
                    int m = where == 0
                                ? snprintf(msg, sizeof(msg),
                                           "{%s,\"value\":\"1\",\"name\":\"x%.*s\","
                                           "\"labels\":{\"job\":\"j\"}}", ts, n, str)
                                : snprintf(msg, sizeof(msg),
                                           "{%s,\"value\":\"1\",\"name\":\"x\","
                                           "\"labels\":{\"job\":\"%.*s\"}}", ts, n, str);
                    if (!specials[i].out) {
                        assert_bad(HDL_FORMAT_JSON, msg, (size_t)m, "control byte in a string");
                        continue;
                    }
                    collector c = { 0 };
                    char err[NDT_ERRBUF_SIZE];
                    if (decode(HDL_FORMAT_JSON, msg, (size_t)m, &c, err) != NDT_OK)
                        fail_msg("%s: %s", msg, err);
                    if (where == 0) {
                        assert_int_equal(c.s[0].name_len, (size_t)wn + 1);
                        assert_memory_equal(c.s[0].name + 1, want, (size_t)wn);
                    } else {
                        assert_int_equal(c.s[0].lvalue_len[0], (size_t)wn);
                        assert_memory_equal(c.s[0].lvalue[0], want, (size_t)wn);
                    }
                    collector_free(&c);
                }
            }
        }
    }
}

/* Values as the adapter and other producers write them: Go's 'f' format
 * (up to 309 integer digits, 17 significant ones, no exponent), NaN and
 * the infinities spelled as Go spells them, bare JSON numbers with
 * exponents; each read to strtod's bits.  Out of range is refused,
 * underflow reads as Go reads it. */
static void json_values_exact_as_strtod(void **state)
{
    (void)state;
    static const char *values[] = {
        "0", "-0", "1", "1.5", "0.1", "6.259740259740259", "0.19358974368831172",
        "300.0000000000003", "4123168604", "9007199254740993", "18446744073709551616",
        "12345678901234567890123", "0.000000000000000000000000000001",
        "179769313486231570000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "00000000000000000000000000000000000000000000000000000000",
        "1e308", "1E+2", "-2.5e-300", "4.9e-324", "1e-400", "123456789012345678e-20",
    };
    char msg[512];
    for (size_t i = 0; i < NDT_ARRAY_LEN(values); i++) {
        for (int bare = 0; bare < 2; bare++) {
            int m = snprintf(msg, sizeof(msg),
                             "{\"timestamp\":\"2026-01-02T03:04:05.678Z\",\"value\":%s%s%s,"
                             "\"name\":\"up\"}", bare ? "" : "\"", values[i], bare ? "" : "\"");
            collector c = { 0 };
            char err[NDT_ERRBUF_SIZE];
            if (decode(HDL_FORMAT_JSON, msg, (size_t)m, &c, err) != NDT_OK)
                fail_msg("%s: %s", values[i], err);
            double want = strtod(values[i], NULL);
            if (memcmp(&want, &c.s[0].value, sizeof(want)) != 0)
                fail_msg("%s: got %.17g want %.17g", values[i], c.s[0].value, want);
            collector_free(&c);
        }
    }
    static const struct {
        const char *text;
        double want;
    } specials[] = { { "\"NaN\"", NAN }, { "\"+Inf\"", INFINITY }, { "\"-Inf\"", -INFINITY },
                     { "\"Inf\"", INFINITY } };
    for (size_t i = 0; i < NDT_ARRAY_LEN(specials); i++) {
        int m = snprintf(msg, sizeof(msg),
                         "{\"timestamp\":\"2026-01-02T03:04:05.678Z\",\"value\":%s,\"name\":\"up\"}",
                         specials[i].text);
        collector c = { 0 };
        char err[NDT_ERRBUF_SIZE];
        assert_int_equal(decode(HDL_FORMAT_JSON, msg, (size_t)m, &c, err), NDT_OK);
        if (isnan(specials[i].want))
            assert_true(isnan(c.s[0].value));
        else
            assert_true(c.s[0].value == specials[i].want);
        collector_free(&c);
    }
    static const char *bad[] = { "\"2e308\"", "2e308", "\"nan\\u0000\"", "\"+NaN\"", "\"1e\"",
                                 "\"0x1p3\"", "\" 1\"", "-", "1.", ".5", "+1" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(bad); i++) {
        int m = snprintf(msg, sizeof(msg),
                         "{\"timestamp\":\"2026-01-02T03:04:05.678Z\",\"value\":%s,\"name\":\"up\"}",
                         bad[i]);
        collector c = { 0 };
        char err[NDT_ERRBUF_SIZE];
        if (decode(HDL_FORMAT_JSON, msg, (size_t)m, &c, err) != NDT_EBADCONF)
            fail_msg("value %s accepted", bad[i]);
        collector_free(&c);
    }
}

/* The last timestamp parsed is kept per thread: a different one, one that
 * failed, and one too long to keep must all still read right. */
static void json_timestamp_cache_never_answers_wrong(void **state)
{
    (void)state;
    static const struct {
        const char *ts;
        int64_t want; /* INT64_MIN: refused */
    } seq[] = {
        { "2026-01-02T03:04:05.678Z", TS_EXAMPLE },
        { "2026-01-02T03:04:05.678Z", TS_EXAMPLE },
        { "2026-01-02T03:04:05.679Z", TS_EXAMPLE + 1 },
        { "2026-02-30T03:04:05.678Z", INT64_MIN },
        { "2026-02-30T03:04:05.678Z", INT64_MIN },
        { "2026-01-02T03:04:05.678Z", TS_EXAMPLE },
        { "2026-01-02T05:04:05.678901234567890123456789+02:00", TS_EXAMPLE },
        { "2026-01-02T05:04:05.678901234567890123456789+02:00", TS_EXAMPLE },
        { "2026-01-02T03:04:05.678", INT64_MIN },
        { "2026-01-02T03:04:05.678Z", TS_EXAMPLE },
        { "", INT64_MIN },
    };
    char msg[256];
    for (size_t i = 0; i < NDT_ARRAY_LEN(seq); i++) {
        int m = snprintf(msg, sizeof(msg), "{\"timestamp\":\"%s\",\"value\":\"1\",\"name\":\"up\"}",
                         seq[i].ts);
        if (seq[i].want == INT64_MIN) {
            assert_bad(HDL_FORMAT_JSON, msg, (size_t)m, "timestamp is not RFC 3339");
            continue;
        }
        collector c = { 0 };
        char err[NDT_ERRBUF_SIZE];
        if (decode(HDL_FORMAT_JSON, msg, (size_t)m, &c, err) != NDT_OK)
            fail_msg("%s: %s", seq[i].ts, err);
        assert_int_equal(c.s[0].ts_ms, seq[i].want);
        collector_free(&c);
    }
}

/* ---- avro ----------------------------------------------------------------- */

static void encode_avro(const ingest_batch *batch, int32_t schema_id, ndt_buf *b)
{
    ingest_avro_encoder *enc;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ingest_avro_encoder_new(&enc, err, sizeof(err)), NDT_OK);
    ndt_buf_init(b, 0);
    assert_int_equal(ingest_encode_avro(enc, batch, schema_id, b), NDT_OK);
    ingest_avro_encoder_free(enc);
}

static void avro_round_trips_framed_and_unframed(void **state)
{
    (void)state;
    const int32_t ids[] = { -1, 0, 7, 0x7fffffff };
    /* With record labels (version 3's, as a scrape writes them: the
     * hostile series has another job and no instance) and without. */
    static const ingest_label common[] = { L("instance", "h:9100"), L("job", "node") };
    for (size_t k = 0; k < 2 * NDT_ARRAY_LEN(ids); k++) {
        ingest_batch batch = { S("node"), S("h:9100"), TS_EXAMPLE, series_set,
                               NDT_ARRAY_LEN(series_set), common, k % 2 ? 2 : 0 };
        ndt_buf b;
        encode_avro(&batch, ids[k / 2], &b);
        assert_int_equal(hdl_decode_detect(b.data, b.len), HDL_FORMAT_AVRO);
        collector c = { 0 };
        char err[NDT_ERRBUF_SIZE];
        if (decode(HDL_FORMAT_AUTO, b.data, b.len, &c, err) != NDT_OK)
            fail_msg("schema id %d: %s", ids[k / 2], err);
        assert_int_equal(c.n, NDT_ARRAY_LEN(series_set));
        for (size_t i = 0; i < c.n; i++)
            assert_same(&c.s[i], &series_set[i], 1);
        collector_free(&c);
        ndt_buf_free(&b);
    }
}

static void avro_empty_job_unframed_is_not_mistaken_for_framing(void **state)
{
    (void)state;
    /* Starts with byte 0 (empty job) like a framed message does. */
    ingest_batch batch = { S(""), S("h:9100"), TS_EXAMPLE, series_set, 2 };
    ndt_buf b;
    encode_avro(&batch, -1, &b);
    assert_int_equal(b.data[0], 0);
    collector c = { 0 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(decode(HDL_FORMAT_AUTO, b.data, b.len, &c, err), NDT_OK);
    assert_int_equal(c.n, 2);
    assert_same(&c.s[1], &series_set[1], 1);
    collector_free(&c);
    ndt_buf_free(&b);
    /* An empty scrape decodes to nothing, framed or not. */
    batch.nseries = 0;
    encode_avro(&batch, 3, &b);
    assert_int_equal(decode(HDL_FORMAT_AVRO, b.data, b.len, &c, err), NDT_OK);
    assert_int_equal(c.n, 0);
    ndt_buf_free(&b);
}

/* Schema version 2 (before record labels and the null timestamp), as
 * ndtpipe wrote it until then; docs left out. */
static const char avro_schema_v2[] =
    "{\"type\":\"record\",\"name\":\"TelemetryRaw\",\"namespace\":\"org.ndtpipe\",\"fields\":[{\"name\":\"job\""
    ",\"type\":\"string\"},{\"name\":\"instance\",\"type\":\"string\"},{\"name\":\"scrape_timestamp\",\"type\":"
    "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},{\"name\":\"samples\",\"type\":{\"type\":\"arra"
    "y\",\"items\":{\"type\":\"record\",\"name\":\"Sample\",\"fields\":[{\"name\":\"name\",\"type\":\"string\"},{\""
    "name\":\"labels\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"Label\",\"fields\":["
    "{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"value\",\"type\":\"string\"}]}}},{\"name\":\"value\",\"ty"
    "pe\":\"double\"},{\"name\":\"timestamp\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\""
    "}},{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"MetricType\",\"symbols\":[\"UNKNOWN\",\"COUNTE"
    "R\",\"GAUGE\",\"HISTOGRAM\",\"GAUGE_HISTOGRAM\",\"SUMMARY\",\"INFO\",\"STATESET\"],\"default\":\"UNKNOWN"
    "\"}},{\"name\":\"native_histogram\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"NativeHistogram\","
    "\"fields\":[{\"name\":\"schema\",\"type\":\"int\"},{\"name\":\"zero_threshold\",\"type\":\"double\"},{\"nam"
    "e\":\"zero_count\",\"type\":\"double\"},{\"name\":\"count\",\"type\":\"double\"},{\"name\":\"sum\",\"type\":\""
    "double\"},{\"name\":\"positive\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"Nati"
    "veBucket\",\"fields\":[{\"name\":\"index\",\"type\":\"int\"},{\"name\":\"count\",\"type\":\"double\"}]}}},{"
    "\"name\":\"negative\",\"type\":{\"type\":\"array\",\"items\":\"NativeBucket\"}}]}],\"default\":null}]}}}"
    "]}";

/* Whether a label of a sample goes into a version 3 record's labels
 * instead (instance and job of series_set's first two series). */
static int is_record_label(const ingest_label *l)
{
    return (ndt_str_eq_cstr(l->name, "instance") && ndt_str_eq_cstr(l->value, "h:9100")) ||
           (ndt_str_eq_cstr(l->name, "job") && ndt_str_eq_cstr(l->value, "node"));
}

/* A record written by Avro C's generic writer, not by our encoder, with
 * the current schema (version 3) or version 2's. */
static void reads_what_avro_c_writes(const char *text, int version)
{
    avro_schema_t schema;
    assert_int_equal(avro_schema_from_json_length(text, strlen(text), &schema), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec, v, samples, s, labels, l;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    avro_value_get_by_name(&rec, "job", &v, NULL);
    avro_value_set_string(&v, "node");
    avro_value_get_by_name(&rec, "instance", &v, NULL);
    avro_value_set_string(&v, "h:9100");
    avro_value_get_by_name(&rec, "scrape_timestamp", &v, NULL);
    avro_value_set_long(&v, TS_EXAMPLE);
    if (version >= 3) {
        avro_value_get_by_name(&rec, "labels", &labels, NULL);
        const char *const kv[] = { "instance", "h:9100", "job", "node" };
        for (int k = 0; k < 4; k += 2) {
            avro_value_append(&labels, &l, NULL);
            avro_value_get_by_name(&l, "name", &v, NULL);
            avro_value_set_string(&v, kv[k]);
            avro_value_get_by_name(&l, "value", &v, NULL);
            avro_value_set_string(&v, kv[k + 1]);
        }
    }
    avro_value_get_by_name(&rec, "samples", &samples, NULL);
    for (size_t i = 0; i < 2; i++) {
        const ingest_series *want = &series_set[i];
        avro_value_append(&samples, &s, NULL);
        avro_value_get_by_name(&s, "name", &v, NULL);
        avro_value_set_string_len(&v, want->labels[0].value.ptr, want->labels[0].value.len + 1);
        avro_value_get_by_name(&s, "labels", &labels, NULL);
        for (size_t j = 1; j < want->nlabels; j++) {
            if (version >= 3 && is_record_label(&want->labels[j]))
                continue;
            avro_value_append(&labels, &l, NULL);
            avro_value_get_by_name(&l, "name", &v, NULL);
            avro_value_set_string_len(&v, want->labels[j].name.ptr, want->labels[j].name.len + 1);
            avro_value_get_by_name(&l, "value", &v, NULL);
            avro_value_set_string_len(&v, want->labels[j].value.ptr,
                                      want->labels[j].value.len + 1);
        }
        avro_value_get_by_name(&s, "value", &v, NULL);
        avro_value_set_double(&v, want->value);
        avro_value_get_by_name(&s, "timestamp", &v, NULL);
        if (version >= 3) {
            avro_value_t ts;
            /* null is the scrape's timestamp: the first sample's */
            if (want->timestamp_ms == TS_EXAMPLE) {
                assert_int_equal(avro_value_set_branch(&v, 0, &ts), 0);
                avro_value_set_null(&ts);
            } else {
                assert_int_equal(avro_value_set_branch(&v, 1, &ts), 0);
                avro_value_set_long(&ts, want->timestamp_ms);
            }
        } else {
            avro_value_set_long(&v, want->timestamp_ms);
        }
        avro_value_get_by_name(&s, "type", &v, NULL);
        avro_value_set_enum(&v, (int)want->type);
        /* The first sample without a native histogram, the second with one
         * (two positive buckets, one negative). */
        avro_value_t u, nh, buckets, bk;
        avro_value_get_by_name(&s, "native_histogram", &u, NULL);
        if (i == 0) {
            assert_int_equal(avro_value_set_branch(&u, 0, &nh), 0);
            avro_value_set_null(&nh);
            continue;
        }
        assert_int_equal(avro_value_set_branch(&u, 1, &nh), 0);
        avro_value_get_by_name(&nh, "schema", &v, NULL);
        avro_value_set_int(&v, -2);
        avro_value_get_by_name(&nh, "zero_threshold", &v, NULL);
        avro_value_set_double(&v, 0.5);
        avro_value_get_by_name(&nh, "zero_count", &v, NULL);
        avro_value_set_double(&v, 1);
        avro_value_get_by_name(&nh, "count", &v, NULL);
        avro_value_set_double(&v, 9);
        avro_value_get_by_name(&nh, "sum", &v, NULL);
        avro_value_set_double(&v, 77.5);
        avro_value_get_by_name(&nh, "positive", &buckets, NULL);
        for (int k = 0; k < 2; k++) {
            avro_value_append(&buckets, &bk, NULL);
            avro_value_get_by_name(&bk, "index", &v, NULL);
            avro_value_set_int(&v, 3 + 4 * k);
            avro_value_get_by_name(&bk, "count", &v, NULL);
            avro_value_set_double(&v, 2.5 + k);
        }
        avro_value_get_by_name(&nh, "negative", &buckets, NULL);
        avro_value_append(&buckets, &bk, NULL);
        avro_value_get_by_name(&bk, "index", &v, NULL);
        avro_value_set_int(&v, -70000);
        avro_value_get_by_name(&bk, "count", &v, NULL);
        avro_value_set_double(&v, 1);
    }
    char out[4096];
    avro_writer_t w = avro_writer_memory(out, sizeof(out));
    assert_int_equal(avro_value_write(w, &rec), 0);
    size_t len = (size_t)avro_writer_tell(w);
    collector c = { 0 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(hdl_decode_detect(out, len), HDL_FORMAT_AVRO);
    if (decode(HDL_FORMAT_AUTO, out, len, &c, err) != NDT_OK)
        fail_msg("%s", err);
    assert_int_equal(c.n, 2);
    assert_same(&c.s[0], &series_set[0], 1);
    assert_same(&c.s[1], &series_set[1], 1);
    assert_false(c.s[0].has_native);
    assert_true(c.s[1].has_native);
    const hdl_native_histogram *h = &c.s[1].native;
    assert_int_equal(h->schema, -2);
    assert_true(h->zero_threshold == 0.5 && h->zero_count == 1 && h->count == 9 && h->sum == 77.5);
    assert_int_equal(h->npositive, 2);
    assert_int_equal(h->positive[1].index, 7);
    assert_true(h->positive[1].count == 3.5);
    assert_int_equal(h->nnegative, 1);
    assert_int_equal(h->negative[0].index, -70000);
    collector_free(&c);
    avro_writer_free(w);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

static void avro_reads_what_avro_c_writes(void **state)
{
    (void)state;
    reads_what_avro_c_writes(ingest_avro_schema_text(), 3);
    /* Records written before version 3 may still be in the topic. */
    reads_what_avro_c_writes(avro_schema_v2, 2);
}

/* Version 3's record labels by hand: an own label with the empty value
 * removes the record label it names and is itself no label; an empty own
 * label that names no record label stays (as version 2 kept it). */
static void avro_record_labels_by_hand(void **state)
{
    (void)state;
    const unsigned char msg[] = {
        2, 'j', 0, 0,             /* job "j", instance "", scrape_timestamp 0 */
        4, 2, 'a', 2, '1', 2, 'c', 2, '3', 0, /* record labels a=1, c=3 */
        4,                        /* samples: 2 */
        2, 'm', 0,                /* "m", no labels of its own */
        0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, /* 1.0, null timestamp, UNKNOWN, no native */
        2, 'n',                   /* "n" */
        6, 2, 'a', 0, 2, 'b', 0, 2, 'c', 2, '9', 0, /* a="", b="", c=9 */
        0, 0, 0, 0, 0, 0, 0, 0x40, 2, 10, 2, 0, /* 2.0, timestamp 5, COUNTER, no native */
        0,                        /* end of samples */
    };
    collector c = { 0 };
    char err[NDT_ERRBUF_SIZE];
    if (decode(HDL_FORMAT_AUTO, msg, sizeof(msg), &c, err) != NDT_OK)
        fail_msg("%s", err);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.s[0].nlabels, 2);
    assert_string_equal(c.s[0].lname[0], "a");
    assert_string_equal(c.s[0].lvalue[0], "1");
    assert_string_equal(c.s[0].lname[1], "c");
    assert_int_equal(c.s[0].ts_ms, 0);
    assert_int_equal(c.s[1].nlabels, 2);
    assert_string_equal(c.s[1].lname[0], "b");
    assert_string_equal(c.s[1].lvalue[0], "");
    assert_string_equal(c.s[1].lname[1], "c");
    assert_string_equal(c.s[1].lvalue[1], "9");
    assert_int_equal(c.s[1].ts_ms, 5);
    assert_int_equal(c.s[1].type, HDL_TYPE_COUNTER);
    collector_free(&c);

    /* A repeated record label and an unknown timestamp branch. */
    unsigned char bad[sizeof(msg)];
    memcpy(bad, msg, sizeof(msg));
    bad[10] = 'a'; /* record labels a=1, a=3 */
    assert_bad(HDL_FORMAT_AVRO, bad, sizeof(bad), "record label 'a' repeated");
    memcpy(bad, msg, sizeof(msg));
    bad[26] = 4; /* the first sample's timestamp: union branch 2 */
    assert_bad(HDL_FORMAT_AVRO, bad, sizeof(bad), "timestamp: union branch");
}

/* Hand-built records for the rules our encoder never exercises. */
static void avro_negative_block_counts_unsorted_labels_new_symbols(void **state)
{
    (void)state;
    const unsigned char msg[] = {
        2, 'j', 0, 0,           /* job "j", instance "", scrape_timestamp 0 */
        1, 28,                  /* samples: block of -(-1) = 1 item, 14 bytes */
        2, 'm',                 /* name "m" */
        4, 2, 'b', 2, '2', 2, 'a', 2, '1', 0, /* labels b=2, a=1 (unsorted) */
        0, 0, 0, 0, 0, 0, 0xf0, 0x3f, /* 1.0 */
        4,                      /* timestamp 2 */
        20,                     /* MetricType 10: a newer writer's symbol */
        0,                      /* native_histogram: null */
        0,                      /* end of samples */
    };
    collector c = { 0 };
    char err[NDT_ERRBUF_SIZE];
    if (decode(HDL_FORMAT_AUTO, msg, sizeof(msg), &c, err) != NDT_OK)
        fail_msg("%s", err);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.s[0].lname[0], "a");
    assert_string_equal(c.s[0].lname[1], "b");
    assert_true(c.s[0].value == 1.0);
    assert_int_equal(c.s[0].ts_ms, 2);
    assert_int_equal(c.s[0].type, HDL_TYPE_UNKNOWN);
    collector_free(&c);
}

static void avro_malformed_is_badconf_never_a_crash(void **state)
{
    (void)state;
    ingest_batch batch = { S("node"), S("h:9100"), TS_EXAMPLE, series_set,
                           NDT_ARRAY_LEN(series_set) };
    ndt_buf b;
    encode_avro(&batch, 9, &b);
    /* Every proper prefix, framed and unframed, under ASan (the first
     * five bytes 0 0 0 0 0 would be a valid empty unframed record). */
    for (size_t start = 0; start <= 5; start += 5) {
        for (size_t len = start + 5; len < b.len; len++) {
            collector c = { 0 };
            char err[NDT_ERRBUF_SIZE];
            int rc = decode(HDL_FORMAT_AVRO, b.data + start, len - start, &c, err);
            if (rc != NDT_EBADCONF || strncmp(err, "avro: byte ", 11) != 0)
                fail_msg("prefix %zu..%zu: rc %d err '%s'", start, len, rc, err);
            collector_free(&c);
        }
    }
    /* Trailing bytes. */
    ndt_buf_append_char(&b, 'x');
    assert_bad(HDL_FORMAT_AVRO, b.data, b.len, "1 bytes after the end of the record");
    ndt_buf_free(&b);

    const struct {
        const char *msg;
        size_t len;
        const char *want;
    } cases[] = {
        { "", 0, "avro: empty message" },
        { "\x03", 1, "avro: byte 0: job: length -2 does not fit" },
        { "\x02j\x00\x00\x00\x7e", 6, "samples: 63 items cannot fit the 0 bytes left" },
        { "\x02j\x00\x00\x00\x02\x02m\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x80", 19,
          "message ends inside a number" },
        { "\x02j\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 15,
          "number longer than 64 bits" },
        { "\x02j\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 19,
          "byte 6: sample without a name" },
        { "\x02j\x00\x00\x00\x02\x02m\x02\x10__name__\x02v\x00", 21, "__name__ among the labels" },
        { "\x02j\x00\x00\x00\x02\x02m\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00", 20,
          "negative MetricType" },
        { "\x02j\x00\x00\x00\x02\x02m\x04\x02" "a\x02x\x02" "a\x02y\x00"
          "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
          29, "byte 6: label 'a' repeated" },
        { "\x02j\x00\x00\x00\x02\x02m\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00", 21,
          "union branch is neither null nor NativeHistogram" },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++)
        assert_bad(HDL_FORMAT_AVRO, cases[i].msg, cases[i].len, cases[i].want);

    /* Too many labels: one block of 129. */
    ndt_buf_init(&b, 0);
    ndt_buf_append(&b, "\x02j\x00\x00\x00\x02\x02m\x82\x02", 10); /* 129 labels */
    for (int i = 0; i < 129; i++)
        ndt_buf_append(&b, "\x02n\x02v", 4);
    ndt_buf_append(&b, "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 12);
    assert_bad(HDL_FORMAT_AVRO, b.data, b.len, "more than 128 labels");
    ndt_buf_free(&b);
}

/* ---- influx --------------------------------------------------------------- */

static void influx_round_trips_with_escapes(void **state)
{
    (void)state;
    /* Many samples in one message: concatenated lines, as a /write body. */
    ndt_buf b;
    ndt_buf_init(&b, 0);
    for (size_t i = 0; i < NDT_ARRAY_LEN(series_set); i++)
        assert_int_equal(ingest_encode_influx(&series_set[i], &b), NDT_OK);
    assert_int_equal(hdl_decode_detect(b.data, b.len), HDL_FORMAT_INFLUX);
    collector c = { 0 };
    char err[NDT_ERRBUF_SIZE];
    if (decode(HDL_FORMAT_AUTO, b.data, b.len, &c, err) != NDT_OK)
        fail_msg("%s", err);
    assert_int_equal(c.n, NDT_ARRAY_LEN(series_set));
    for (size_t i = 0; i < c.n; i++)
        assert_same(&c.s[i], &series_set[i], 0);
    collector_free(&c);
    ndt_buf_free(&b);
}

static void influx_reads_other_producers_lines(void **state)
{
    (void)state;
    const char msg[] = "# a comment\n"
                       "\n"
                       "disk,path=/,host=h used=1i,free=2u,ro=true,label=\"a \\\"b\\\",\n c\","
                       "value=0.5 1767323045678\r\n"
                       "  up,job=node value=1 -5";
    collector c = { 0 };
    char err[NDT_ERRBUF_SIZE];
    if (decode(HDL_FORMAT_AUTO, msg, sizeof(msg) - 1, &c, err) != NDT_OK)
        fail_msg("%s", err);
    assert_int_equal(c.n, 5);
    const char *names[] = { "disk_used", "disk_free", "disk_ro", "disk", "up" };
    const double values[] = { 1, 2, 1, 0.5, 1 };
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(c.s[i].name, names[i]);
        assert_true(c.s[i].value == values[i]);
    }
    assert_int_equal(c.s[0].nlabels, 2);
    assert_string_equal(c.s[0].lname[0], "host"); /* sorted */
    assert_string_equal(c.s[0].lname[1], "path");
    assert_int_equal(c.s[3].ts_ms, TS_EXAMPLE);
    assert_int_equal(c.s[4].ts_ms, -5);
    collector_free(&c);
}

static void influx_malformed_is_badconf_with_line(void **state)
{
    (void)state;
    const struct {
        const char *msg;
        const char *want;
    } cases[] = {
        { "", "influx: line 1: no line in the message" },
        { "# only\n\n", "no line in the message" },
        { "m value=1", "line 1: no timestamp" },
        { "m value=1 12x", "timestamp is not an integer" },
        { "m value=1 1 2", "timestamp is not an integer" },
        { "m\n", "expected a space before the fields" },
        { "ok value=1 1\nm,a value=1 1", "line 2: tag without '='" },
        { "m,a= value=1 1", "empty tag key or value" },
        { "m,__name__=x value=1 1", "tag __name__" },
        { "m,a=1,a=2 value=1 1", "line 1: tag 'a' repeated" },
        { "m value 1", "field without '='" },
        { "m value= 1", "field without a value" },
        { "m =1 1", "empty field key" },
        { "m value=abc 1", "field value is not a number" },
        { "m value=1.5i 1", "field value is not an integer" },
        { "m value=-1u 1", "field value is not an integer" },
        { "m s=\"open 1", "unterminated string field" },
        { ",a=b value=1 1", "line without a measurement" },
        { "m value=1 1\rx", "bytes after the timestamp" },
        { "\rm value=1 1", "carriage return without a newline" },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++)
        assert_bad(HDL_FORMAT_INFLUX, cases[i].msg, strlen(cases[i].msg), cases[i].want);
    ndt_buf b;
    ndt_buf_init(&b, 0);
    ndt_buf_append_str(&b, "m");
    for (int i = 0; i <= HDL_DECODE_MAX_LABELS; i++)
        ndt_buf_printf(&b, ",t%d=v", i);
    ndt_buf_append_str(&b, " value=1 1");
    assert_bad(HDL_FORMAT_INFLUX, b.data, b.len, "more than 128 tags");
    ndt_buf_free(&b);
}

/* Names are views into the message unless they hold an escape: every
 * escaped byte at every offset of tag keys, tag values, field keys and
 * measurements of every length round-trips through ingest's encoder. */
static void influx_names_at_every_offset(void **state)
{
    (void)state;
    const char specials[] = { ',', ' ', '=', '\\', '\t', '\n', 'z' };
    const char *run = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    for (size_t i = 0; i < sizeof(specials); i++) {
        for (int len = 0; len <= 36; len++) {
            for (int k = 0; k <= len; k += (len > 20 ? 3 : 1)) {
                if (specials[i] == '\\' && k == len)
                    continue; /* the encoder drops a trailing backslash (encode_influx.c) */
                char v[128];
                snprintf(v, sizeof(v), "b%.*s%c%.*s", k, run, specials[i], len - k, run);
                ndt_str sv = { v, strlen(v) }; /* "b...": sorts between "a" and "~last" */
                ingest_label l[4] = {
                    { NDT_STR_LIT("__name__"), sv },
                    { NDT_STR_LIT("a"), sv },
                    { sv, NDT_STR_LIT("x") },
                    { NDT_STR_LIT("~last"), sv },
                };
                ingest_series series = { l, 4, 0.19358974368831172, 1767323045678LL,
                                         INGEST_TYPE_UNKNOWN };
                ndt_buf b;
                ndt_buf_init(&b, 0);
                assert_int_equal(ingest_encode_influx(&series, &b), NDT_OK);
                collector c = { 0 };
                char err[NDT_ERRBUF_SIZE];
                if (decode(HDL_FORMAT_INFLUX, b.data, b.len, &c, err) != NDT_OK)
                    fail_msg("%.*s: %s", (int)b.len, b.data, err);
                assert_int_equal(c.n, 1);
                assert_same(&c.s[0], &series, 0);
                collector_free(&c);
                ndt_buf_free(&b);
            }
        }
    }
    /* A measurement may hold an unescaped '='; timestamps past 18 digits
     * take the general integer parser. */
    const char msg[] = "m=x,t=v value=1 9223372036854775807\n"
                       "n value=2 -9223372036854775808\n"
                       "o value=3 -1767323045678";
    collector c = { 0 };
    char err[NDT_ERRBUF_SIZE];
    if (decode(HDL_FORMAT_INFLUX, msg, sizeof(msg) - 1, &c, err) != NDT_OK)
        fail_msg("%s", err);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.s[0].name, "m=x");
    assert_true(c.s[0].ts_ms == INT64_MAX);
    assert_true(c.s[1].ts_ms == INT64_MIN);
    assert_int_equal(c.s[2].ts_ms, -1767323045678LL);
    collector_free(&c);
    assert_bad(HDL_FORMAT_INFLUX, "m value=1 9223372036854775808", 29, "timestamp is not an integer");
    assert_bad(HDL_FORMAT_INFLUX, "m value=1 -", 11, "timestamp is not an integer");
    assert_bad(HDL_FORMAT_INFLUX, "m value=1 12345678901234567890", 30, "timestamp is not an integer");
}

/* ---- detection, names, the callback's say ---------------------------------- */

static void detection_and_names(void **state)
{
    (void)state;
    assert_int_equal(hdl_decode_detect("\x00\x00\x00\x00\x01", 5), HDL_FORMAT_AVRO);
    assert_int_equal(hdl_decode_detect("  \n{\"a\":1}", 10), HDL_FORMAT_JSON);
    assert_int_equal(hdl_decode_detect("up value=1 1", 12), HDL_FORMAT_INFLUX);
    assert_int_equal(hdl_decode_detect("", 0), HDL_FORMAT_INFLUX);
    /* Garbage is neither avro nor json: it goes to the line reader, which
     * names the line. */
    assert_int_equal(hdl_decode_detect("\x05garbage", 8), HDL_FORMAT_INFLUX);
    assert_bad(HDL_FORMAT_AUTO, "\x05garbage", 8, "influx: line 1:");

    const char *names[] = { "auto", "json", "avro", "influx" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(names); i++) {
        hdl_format f;
        assert_int_equal(hdl_format_parse(names[i], &f), NDT_OK);
        assert_string_equal(hdl_format_name(f), names[i]);
    }
    hdl_format f;
    assert_int_equal(hdl_format_parse("protobuf", &f), NDT_EBADCONF);
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(hdl_decode(HDL_FORMAT_JSON, "{}", 2, NULL, NULL, err, sizeof(err)),
                     NDT_ERROR);
    assert_non_null(strstr(err, "no sample callback"));
    assert_int_equal(hdl_format_parse(NULL, &f), NDT_EBADCONF);
}

static void callback_error_stops_decoding(void **state)
{
    (void)state;
    ingest_batch batch = { S("node"), S("h:9100"), TS_EXAMPLE, series_set, 4 };
    ndt_buf b;
    encode_avro(&batch, -1, &b);
    collector c = { .stop_after = 2 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(decode(HDL_FORMAT_AVRO, b.data, b.len, &c, err), NDT_ERROR);
    assert_int_equal(c.n, 2);
    collector_free(&c);
    ndt_buf_free(&b);
}

/* A native histogram written by each of ingest's encoders reads back
 * whole: schema, zero bucket, count, sum and every bucket. */
static void native_histograms_round_trip_in_every_format(void **state)
{
    (void)state;
    static const int32_t pos_index[] = { 0, 1, 4 };
    static const double pos_count[] = { 3, 2, 6.5 };
    static const int32_t neg_index[] = { -2 };
    static const double neg_count[] = { 1 };
    static const ingest_native_histogram nh = {
        3, 0.001, 2, 14.5, 30.25, { pos_index, pos_count, 3 }, { neg_index, neg_count, 1 },
    };
    static const ingest_label labels[] = { { S("__name__"), S("rpc_seconds_count") },
                                           { S("job"), S("j") } };
    const ingest_series series = { labels, 2, 14.5, TS_EXAMPLE, INGEST_TYPE_HISTOGRAM, &nh };
    ingest_batch batch = { S("j"), S("i"), TS_EXAMPLE, &series, 1 };
    for (int f = 0; f < 3; f++) {
        ndt_buf b;
        ndt_buf_init(&b, 0);
        if (f == 0)
            assert_int_equal(ingest_encode_json(&series, &b), NDT_OK);
        else if (f == 1)
            assert_int_equal(ingest_encode_influx(&series, &b), NDT_OK);
        else
            encode_avro(&batch, -1, &b);
        collector c = { 0 };
        char err[NDT_ERRBUF_SIZE];
        if (decode(HDL_FORMAT_AUTO, b.data, b.len, &c, err) != NDT_OK)
            fail_msg("format %d: %s", f, err);
        assert_int_equal(c.n, 1);
        assert_true(c.s[0].has_native);
        const hdl_native_histogram *h = &c.s[0].native;
        assert_int_equal(h->schema, 3);
        assert_true(h->zero_threshold == 0.001 && h->zero_count == 2);
        assert_true(h->count == 14.5 && h->sum == 30.25);
        assert_int_equal(h->npositive, 3);
        for (int k = 0; k < 3; k++) {
            assert_int_equal(h->positive[k].index, pos_index[k]);
            assert_true(h->positive[k].count == pos_count[k]);
        }
        assert_int_equal(h->nnegative, 1);
        assert_int_equal(h->negative[0].index, -2);
        assert_true(h->negative[0].count == 1);
        collector_free(&c);
        ndt_buf_free(&b);
    }
    /* Broken flattenings are refused with a reason. */
    const char *l1 = "h_count value=1,nh_p0=1 1\n";
    assert_bad(HDL_FORMAT_INFLUX, l1, strlen(l1), "without nh_schema");
    const char *l2 = "h_count value=1,nh_schema=1i,nh_zero_threshold=0,nh_zero_count=0,nh_sum=0,"
                     "nh_px=1 1\n";
    assert_bad(HDL_FORMAT_INFLUX, l2, strlen(l2), "integer index");
    const char *j = "{\"timestamp\":\"2026-01-02T03:04:05.678Z\",\"value\":\"1\",\"name\":\"h\","
                    "\"native_histogram\":{\"schema\":1}}";
    assert_bad(HDL_FORMAT_JSON, j, strlen(j), "native_histogram lacks");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_round_trips),
        cmocka_unit_test(json_special_values),
        cmocka_unit_test(json_unescapes_like_a_json_parser),
        cmocka_unit_test(json_reads_what_the_adapter_writes),
        cmocka_unit_test(json_malformed_is_badconf_with_reason),
        cmocka_unit_test(json_strings_at_every_offset),
        cmocka_unit_test(json_values_exact_as_strtod),
        cmocka_unit_test(json_timestamp_cache_never_answers_wrong),
        cmocka_unit_test(avro_round_trips_framed_and_unframed),
        cmocka_unit_test(avro_empty_job_unframed_is_not_mistaken_for_framing),
        cmocka_unit_test(avro_reads_what_avro_c_writes),
        cmocka_unit_test(avro_record_labels_by_hand),
        cmocka_unit_test(avro_negative_block_counts_unsorted_labels_new_symbols),
        cmocka_unit_test(avro_malformed_is_badconf_never_a_crash),
        cmocka_unit_test(influx_round_trips_with_escapes),
        cmocka_unit_test(influx_reads_other_producers_lines),
        cmocka_unit_test(influx_malformed_is_badconf_with_line),
        cmocka_unit_test(influx_names_at_every_offset),
        cmocka_unit_test(detection_and_names),
        cmocka_unit_test(callback_error_stops_decoding),
        cmocka_unit_test(native_histograms_round_trip_in_every_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
