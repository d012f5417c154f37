/*
 * test_expo_shape.c: page shapes (ingest/expo.h, ingest/expo_shape.c).
 *
 * A replay may only say NDT_OK where a full parse of the same page gives
 * the same samples; the values and timestamps it reads must be the full
 * parse's, bit for bit.  Real pages from the fixtures are recorded, then
 * rewritten with other values and timestamps (other widths, so that no
 * byte offset after the first value lines up) and replayed; small crafted
 * pages check that every kind of change that is not a value makes the
 * replay decline.  Each page is copied into a buffer of its exact size,
 * so that a replay reading one byte too far trips ASan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/ndt.h"
#include "ingest/expo.h"

#define MAX_SAMPLES 200000

/* ---- what a full parse gives ------------------------------------------ */

typedef struct page_samples {
    size_t n;
    double *values;
    int64_t *timestamps;
    uint32_t *lines;
} page_samples;

static void samples_init(page_samples *ps)
{
    ps->n = 0;
    ps->values = calloc(MAX_SAMPLES, sizeof(double));
    ps->timestamps = calloc(MAX_SAMPLES, sizeof(int64_t));
    ps->lines = calloc(MAX_SAMPLES, sizeof(uint32_t));
    assert_non_null(ps->values);
    assert_non_null(ps->timestamps);
    assert_non_null(ps->lines);
}

static void samples_free(page_samples *ps)
{
    free(ps->values);
    free(ps->timestamps);
    free(ps->lines);
}

static int keep(void *ctx, const ingest_sample *s)
{
    page_samples *ps = ctx;
    assert_true(ps->n < MAX_SAMPLES);
    ps->values[ps->n] = s->value;
    ps->timestamps[ps->n] = s->timestamp_ms;
    ps->lines[ps->n] = s->line;
    ps->n++;
    return NDT_OK;
}

/* An exact-size heap copy of text[0..len). */
static char *copy_page(const char *text, size_t len)
{
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, text, len);
    return buf;
}

static int parse(const char *text, size_t len, ingest_expo_format format, page_samples *ps,
                 ingest_expo_shape *shape)
{
    ndt_arena arena;
    ndt_arena_init(&arena, 64 * 1024, 256u << 20);
    char *buf = copy_page(text, len);
    ps->n = 0;
    int rc = shape ? ingest_expo_parse_recording(buf, len, format, &arena, keep, ps, NULL, shape)
                   : ingest_expo_parse(buf, len, format, &arena, keep, ps, NULL);
    free(buf);
    ndt_arena_free(&arena);
    return rc;
}

static int same_value(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof(a)) == 0;
}

/* Replays shape over text; returns its code, and on NDT_OK checks that a
 * full parse agrees on every value and timestamp. */
static int replay_checked(const ingest_expo_shape *shape, const char *text, size_t len,
                          ingest_expo_format format)
{
    size_t n = ingest_expo_shape_samples(shape);
    double *values = calloc(n + 1, sizeof(double));
    int64_t *timestamps = calloc(n + 1, sizeof(int64_t));
    assert_non_null(values);
    assert_non_null(timestamps);
    char *buf = copy_page(text, len);
    int rc = ingest_expo_shape_replay(shape, buf, len, format, values, timestamps);
    free(buf);
    if (rc == NDT_OK) {
        page_samples full;
        samples_init(&full);
        assert_int_equal(parse(text, len, format, &full, NULL), NDT_OK);
        assert_int_equal(full.n, n);
        for (size_t i = 0; i < n; i++) {
            if (!same_value(values[i], full.values[i]))
                fail_msg("sample %zu (line %u): replay read %.17g, the parse %.17g", i,
                         full.lines[i], values[i], full.values[i]);
            assert_int_equal(timestamps[i], full.timestamps[i]);
        }
        samples_free(&full);
    }
    free(values);
    free(timestamps);
    return rc;
}

static ingest_expo_shape *record(const char *text, ingest_expo_format format)
{
    ingest_expo_shape *shape = ingest_expo_shape_new();
    assert_non_null(shape);
    page_samples ps;
    samples_init(&ps);
    assert_int_equal(parse(text, strlen(text), format, &ps, shape), NDT_OK);
    assert_true(ingest_expo_shape_valid(shape));
    assert_int_equal(ingest_expo_shape_samples(shape), ps.n);
    samples_free(&ps);
    return shape;
}

/* ---- fixtures, rewritten with new values -------------------------------- */

static const char *fixtures(void)
{
    const char *d = getenv("NDT_FIXTURES");
    return d && *d ? d : "../shared/fixtures";
}

static char *read_fixture(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", fixtures(), rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read fixture %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    data[size] = '\0';
    *len = (size_t)size;
    return data;
}

/* Appends to a growing page. */
typedef struct out_page {
    char *buf;
    size_t len, cap;
} out_page;

static void out_add(out_page *o, const char *s, size_t n)
{
    if (o->cap - o->len < n + 1) {
        while (o->cap - o->len < n + 1)
            o->cap = o->cap ? o->cap * 2 : 4096;
        o->buf = realloc(o->buf, o->cap);
        assert_non_null(o->buf);
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

/*
 * The page with every sample's value (and timestamp, where it has one)
 * written anew: value i becomes i * 1.25 + 0.5 (other widths than most
 * counters'), or NaN every seventh sample; timestamps move on by a second.
 * A sample line's value is its last token, or the one before its
 * timestamp: fixtures have no exemplars, and a token is spaces apart.
 * The new values and timestamps, as the page now says, go to *want.
 */
static char *rewrite_values(const char *page, const page_samples *was, ingest_expo_format format,
                            page_samples *want, size_t *len)
{
    out_page o = { 0 };
    const char *line = page;
    uint32_t lineno = 1;
    size_t k = 0;
    while (*line) {
        const char *nl = strchr(line, '\n');
        const char *end = nl ? nl : line + strlen(line);
        if (k < was->n && was->lines[k] == lineno) {
            int has_ts = was->timestamps[k] != INGEST_NO_TIMESTAMP;
            const char *cut = end;
            for (int tokens = has_ts ? 2 : 1; tokens > 0; tokens--) {
                while (cut > line && cut[-1] != ' ')
                    cut--;
                if (tokens > 1)
                    cut--; /* the space before the timestamp */
            }
            assert_true(cut > line);
            out_add(&o, line, (size_t)(cut - line));
            char value[64];
            double v = k % 7 == 3 ? NAN : (double)k * 1.25 + 0.5;
            snprintf(value, sizeof(value), k % 7 == 3 ? "NaN" : "%.17g", v);
            out_add(&o, value, strlen(value));
            want->values[k] = v;
            want->timestamps[k] = INGEST_NO_TIMESTAMP;
            if (has_ts) {
                int64_t ts = was->timestamps[k] + 1000;
                if (format == INGEST_EXPO_OPENMETRICS)
                    snprintf(value, sizeof(value), " %lld.%03lld", (long long)(ts / 1000),
                             (long long)(ts % 1000));
                else
                    snprintf(value, sizeof(value), " %lld", (long long)ts);
                out_add(&o, value, strlen(value));
                want->timestamps[k] = ts;
            }
            k++;
        } else {
            out_add(&o, line, (size_t)(end - line));
        }
        if (!nl)
            break;
        out_add(&o, "\n", 1);
        line = nl + 1;
        lineno++;
    }
    assert_int_equal(k, was->n);
    want->n = k;
    *len = o.len;
    return o.buf;
}

static void check_fixture(const char *rel, ingest_expo_format format)
{
    size_t len;
    char *page = read_fixture(rel, &len);
    ingest_expo_shape *shape = ingest_expo_shape_new();
    assert_non_null(shape);
    page_samples was, want;
    samples_init(&was);
    samples_init(&want);
    assert_int_equal(parse(page, len, format, &was, shape), NDT_OK);
    assert_true(ingest_expo_shape_valid(shape));
    assert_true(was.n > 0);
    assert_int_equal(ingest_expo_shape_samples(shape), was.n);
    /* The same page again: the replay reads the recorded values. */
    assert_int_equal(replay_checked(shape, page, len, format), NDT_OK);

    size_t newlen;
    char *next = rewrite_values(page, &was, format, &want, &newlen);
    assert_int_not_equal(newlen, len);
    double *values = calloc(was.n, sizeof(double));
    int64_t *timestamps = calloc(was.n, sizeof(int64_t));
    assert_non_null(values);
    assert_non_null(timestamps);
    char *buf = copy_page(next, newlen);
    assert_int_equal(ingest_expo_shape_replay(shape, buf, newlen, format, values, timestamps),
                     NDT_OK);
    for (size_t i = 0; i < was.n; i++) {
        if (!same_value(values[i], want.values[i]))
            fail_msg("%s sample %zu (line %u): replay read %.17g, the page says %.17g", rel, i,
                     was.lines[i], values[i], want.values[i]);
        assert_int_equal(timestamps[i], want.timestamps[i]);
    }
    /* And a full parse of the new page agrees. */
    assert_int_equal(replay_checked(shape, next, newlen, format), NDT_OK);
    /* The shape is the page less its values: no larger than twice it. */
    assert_true(ingest_expo_shape_bytes(shape) <= 2 * len + 64 * 1024);

    free(buf);
    free(values);
    free(timestamps);
    free(next);
    samples_free(&was);
    samples_free(&want);
    ingest_expo_shape_free(shape);
    free(page);
}

static void fixtures_replay_new_values(void **state)
{
    (void)state;
    check_fixture("node_exporter/e2e-output.txt", INGEST_EXPO_TEXT);
    check_fixture("node_exporter/e2e-64k-page-output.txt", INGEST_EXPO_TEXT);
    check_fixture("kube-state-metrics/kube-state-metrics", INGEST_EXPO_TEXT);
    check_fixture("cadvisor/prometheus_metrics", INGEST_EXPO_TEXT);
    check_fixture("prometheus/promtestdata.txt", INGEST_EXPO_TEXT);
    check_fixture("prometheus/alltypes.237mfs.prom.txt", INGEST_EXPO_TEXT);
    check_fixture("prometheus/1histogram.om.txt", INGEST_EXPO_OPENMETRICS);
}

/* ---- crafted pages: every change but a value declines ------------------ */

static const char text_page[] =
    "# HELP http_requests_total Requests served.\n"
    "# TYPE http_requests_total counter\n"
    "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
    "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
    "# A comment the parser skips.\n"
    "# TYPE temperature gauge\n"
    "temperature 21.5\n";

static const char om_page[] =
    "# TYPE rpc_seconds histogram\n"
    "# UNIT rpc_seconds seconds\n"
    "rpc_seconds_bucket{le=\"0.1\"} 3 1520879607.789\n"
    "rpc_seconds_bucket{le=\"+Inf\"} 8 1520879607.789\n"
    "rpc_seconds_count 8 1520879607.789\n"
    "rpc_seconds_sum 1.5 1520879607.789\n"
    "# TYPE jobs counter\n"
    "jobs_total 17\n"
    "# EOF\n";

static int replay_text(const ingest_expo_shape *shape, const char *page)
{
    return replay_checked(shape, page, strlen(page), INGEST_EXPO_TEXT);
}

static int replay_om(const ingest_expo_shape *shape, const char *page)
{
    return replay_checked(shape, page, strlen(page), INGEST_EXPO_OPENMETRICS);
}

static void text_values_replay(void **state)
{
    (void)state;
    ingest_expo_shape *shape = record(text_page, INGEST_EXPO_TEXT);
    assert_int_equal(ingest_expo_shape_samples(shape), 3);
    /* Values of other widths, special values, a timestamp dropped and one
     * added: all in the value part. */
    assert_int_equal(replay_text(shape, "# HELP http_requests_total Requests served.\n"
                                        "# TYPE http_requests_total counter\n"
                                        "http_requests_total{code=\"200\",method=\"get\"} "
                                        "+Inf 1395066364000\n"
                                        "http_requests_total{code=\"400\",method=\"post\"} 3e3\n"
                                        "# A comment the parser skips.\n"
                                        "# TYPE temperature gauge\n"
                                        "temperature NaN -5\n"),
                     NDT_OK);
    ingest_expo_shape_free(shape);
}

static void text_changes_decline(void **state)
{
    (void)state;
    ingest_expo_shape *shape = record(text_page, INGEST_EXPO_TEXT);
    static const struct {
        const char *what, *page;
    } cases[] = {
        { "a series added",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
          "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
          "http_requests_total{code=\"500\",method=\"post\"} 1 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature gauge\ntemperature 21.5\n" },
        { "a series gone",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature gauge\ntemperature 21.5\n" },
        { "a label value changed",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"201\",method=\"get\"} 1027 1395066363000\n"
          "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature gauge\ntemperature 21.5\n" },
        { "the HELP changed",
          "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
          "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature gauge\ntemperature 21.5\n" },
        { "the TYPE changed",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
          "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature untyped\ntemperature 21.5\n" },
        { "a comment changed",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
          "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
          "# Another comment.\n# TYPE temperature gauge\ntemperature 21.5\n" },
        { "lines swapped",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature gauge\ntemperature 21.5\n" },
        { "not a number",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
          "http_requests_total{code=\"400\",method=\"post\"} three 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature gauge\ntemperature 21.5\n" },
        { "a bad timestamp",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000.5\n"
          "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature gauge\ntemperature 21.5\n" },
        { "a CR before the LF",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\r\n"
          "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature gauge\ntemperature 21.5\n" },
        { "no final LF",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
          "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature gauge\ntemperature 21.5" },
        { "a line after the last sample",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
          "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
          "# A comment the parser skips.\n# TYPE temperature gauge\ntemperature 21.5\n"
          "# trailing comment\n" },
        { "the page cut short",
          "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"get\"} 1027 1395066363000\n"
          "http_requests_total{code=\"400\",method=\"po" },
        { "an empty page", "" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (replay_text(shape, cases[i].page) != NDT_AGAIN)
            fail_msg("the replay took a page with %s", cases[i].what);
    }
    /* Another format over a text shape. */
    assert_int_equal(replay_om(shape, text_page), NDT_AGAIN);
    ingest_expo_shape_free(shape);
}

static void text_spacing_agrees(void **state)
{
    (void)state;
    /* Blanks inside the value part: whatever the replay says, it must be
     * what the full parse reads (replay_checked compares). */
    ingest_expo_shape *shape = record("a 1\nb 2 3\n", INGEST_EXPO_TEXT);
    static const char *pages[] = { "a  1\nb 2 3\n", "a 1 \nb 2 3\n", "a 1\nb 2  3\n",
                                   "a\t1\nb 2 3\n", "a 1\nb 2 3 \n" };
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        (void)replay_text(shape, pages[i]);
    ingest_expo_shape_free(shape);
}

static void om_values_replay_and_changes_decline(void **state)
{
    (void)state;
    ingest_expo_shape *shape = record(om_page, INGEST_EXPO_OPENMETRICS);
    assert_int_equal(ingest_expo_shape_samples(shape), 5);
    assert_int_equal(replay_om(shape, "# TYPE rpc_seconds histogram\n"
                                      "# UNIT rpc_seconds seconds\n"
                                      "rpc_seconds_bucket{le=\"0.1\"} 30 1520879608\n"
                                      "rpc_seconds_bucket{le=\"+Inf\"} 80 1520879608.5\n"
                                      "rpc_seconds_count 80\n"
                                      "rpc_seconds_sum 15.25 1520879608.789\n"
                                      "# TYPE jobs counter\n"
                                      "jobs_total 1.7e1\n"
                                      "# EOF\n"),
                     NDT_OK);
    static const struct {
        const char *what, *page;
    } cases[] = {
        { "an exemplar",
          "# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\n"
          "rpc_seconds_bucket{le=\"0.1\"} 3 1520879607.789 # {trace_id=\"ab\"} 0.05\n"
          "rpc_seconds_bucket{le=\"+Inf\"} 8 1520879607.789\n"
          "rpc_seconds_count 8 1520879607.789\nrpc_seconds_sum 1.5 1520879607.789\n"
          "# TYPE jobs counter\njobs_total 17\n# EOF\n" },
        { "bytes after # EOF",
          "# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\n"
          "rpc_seconds_bucket{le=\"0.1\"} 3 1520879607.789\n"
          "rpc_seconds_bucket{le=\"+Inf\"} 8 1520879607.789\n"
          "rpc_seconds_count 8 1520879607.789\nrpc_seconds_sum 1.5 1520879607.789\n"
          "# TYPE jobs counter\njobs_total 17\n# EOF\njunk\n" },
        { "the tail changed, at the same length",
          "# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\n"
          "rpc_seconds_bucket{le=\"0.1\"} 3 1520879607.789\n"
          "rpc_seconds_bucket{le=\"+Inf\"} 8 1520879607.789\n"
          "rpc_seconds_count 8 1520879607.789\nrpc_seconds_sum 1.5 1520879607.789\n"
          "# TYPE jobs counter\njobs_total 17\n# EOFx" },
        { "no # EOF",
          "# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\n"
          "rpc_seconds_bucket{le=\"0.1\"} 3 1520879607.789\n"
          "rpc_seconds_bucket{le=\"+Inf\"} 8 1520879607.789\n"
          "rpc_seconds_count 8 1520879607.789\nrpc_seconds_sum 1.5 1520879607.789\n"
          "# TYPE jobs counter\njobs_total 17\n" },
        { "the UNIT gone",
          "# TYPE rpc_seconds histogram\n"
          "rpc_seconds_bucket{le=\"0.1\"} 3 1520879607.789\n"
          "rpc_seconds_bucket{le=\"+Inf\"} 8 1520879607.789\n"
          "rpc_seconds_count 8 1520879607.789\nrpc_seconds_sum 1.5 1520879607.789\n"
          "# TYPE jobs counter\njobs_total 17\n# EOF\n" },
        { "a bucket bound changed",
          "# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\n"
          "rpc_seconds_bucket{le=\"0.2\"} 3 1520879607.789\n"
          "rpc_seconds_bucket{le=\"+Inf\"} 8 1520879607.789\n"
          "rpc_seconds_count 8 1520879607.789\nrpc_seconds_sum 1.5 1520879607.789\n"
          "# TYPE jobs counter\njobs_total 17\n# EOF\n" },
        { "two spaces (OpenMetrics allows one)",
          "# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\n"
          "rpc_seconds_bucket{le=\"0.1\"}  3 1520879607.789\n"
          "rpc_seconds_bucket{le=\"+Inf\"} 8 1520879607.789\n"
          "rpc_seconds_count 8 1520879607.789\nrpc_seconds_sum 1.5 1520879607.789\n"
          "# TYPE jobs counter\njobs_total 17\n# EOF\n" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (replay_om(shape, cases[i].page) != NDT_AGAIN)
            fail_msg("the replay took a page with %s", cases[i].what);
    }
    assert_int_equal(replay_text(shape, om_page), NDT_AGAIN);
    ingest_expo_shape_free(shape);
}

static void unreplayable_recordings_leave_no_shape(void **state)
{
    (void)state;
    ingest_expo_shape *shape = record(text_page, INGEST_EXPO_TEXT);
    page_samples ps;
    samples_init(&ps);
    /* A page that fails to parse replaces the shape with none. */
    static const char bad[] = "ok 1\nbad{ 2\n";
    assert_int_equal(parse(bad, strlen(bad), INGEST_EXPO_TEXT, &ps, shape), NDT_ERROR);
    assert_false(ingest_expo_shape_valid(shape));
    assert_int_equal(ingest_expo_shape_samples(shape), 0);
    assert_int_equal(replay_text(shape, text_page), NDT_AGAIN);
    /* A page with an exemplar parses, but its shape cannot be replayed. */
    static const char exemplar[] = "# TYPE a counter\na_total 1 # {x=\"y\"} 1\n# EOF\n";
    assert_int_equal(parse(exemplar, strlen(exemplar), INGEST_EXPO_OPENMETRICS, &ps, shape),
                     NDT_OK);
    assert_int_equal(ps.n, 1);
    assert_false(ingest_expo_shape_valid(shape));
    assert_int_equal(replay_om(shape, exemplar), NDT_AGAIN);
    /* Protobuf has no lines to keep: an empty message is a valid page of
     * no families, and leaves no shape. */
    assert_int_equal(parse("", 0, INGEST_EXPO_PROTOBUF, &ps, shape), NDT_OK);
    assert_false(ingest_expo_shape_valid(shape));
    /* And a later good page records again. */
    assert_int_equal(parse(text_page, strlen(text_page), INGEST_EXPO_TEXT, &ps, shape), NDT_OK);
    assert_true(ingest_expo_shape_valid(shape));
    assert_int_equal(replay_text(shape, text_page), NDT_OK);
    samples_free(&ps);
    ingest_expo_shape_free(shape);
}

static void empty_pages(void **state)
{
    (void)state;
    /* A page of no samples is a shape too (a target between two runs of
     * a job): it replays over itself and nothing else. */
    ingest_expo_shape *shape = record("", INGEST_EXPO_TEXT);
    assert_int_equal(ingest_expo_shape_samples(shape), 0);
    assert_int_equal(replay_text(shape, ""), NDT_OK);
    assert_int_equal(replay_text(shape, "a 1\n"), NDT_AGAIN);
    ingest_expo_shape_free(shape);

    shape = record("# only a comment\n", INGEST_EXPO_TEXT);
    assert_int_equal(replay_text(shape, "# only a comment\n"), NDT_OK);
    assert_int_equal(replay_text(shape, ""), NDT_AGAIN);
    ingest_expo_shape_free(shape);

    shape = record("# EOF\n", INGEST_EXPO_OPENMETRICS);
    assert_int_equal(replay_om(shape, "# EOF\n"), NDT_OK);
    assert_int_equal(replay_om(shape, "# EOF"), NDT_AGAIN);
    ingest_expo_shape_free(shape);
}

/* The replay keeps the parser's line bound: a value part that takes a
 * line past INGEST_EXPO_MAX_LINE is declined (the full parse refuses it). */
static void long_lines_keep_the_bound(void **state)
{
    (void)state;
    size_t label = INGEST_EXPO_MAX_LINE - 64;
    size_t cap = label + 256;
    char *a = malloc(cap), *b = malloc(cap + 64);
    assert_non_null(a);
    assert_non_null(b);
    int n = snprintf(a, cap, "long{l=\"");
    memset(a + n, 'x', label);
    size_t len = (size_t)n + label;
    len += (size_t)snprintf(a + len, cap - len, "\"} 1\n");
    ingest_expo_shape *shape = record(a, INGEST_EXPO_TEXT);

    memcpy(b, a, len - 2); /* all but "1\n" */
    size_t blen = len - 2;
    blen += (size_t)snprintf(b + blen, 64, "2\n");
    assert_int_equal(replay_checked(shape, b, blen, INGEST_EXPO_TEXT), NDT_OK);

    blen = len - 2;
    memset(b + blen, '0', 60); /* 000...01: the same number, 60 bytes longer */
    blen += 60;
    blen += (size_t)snprintf(b + blen, 64, "1\n");
    assert_true(blen - 1 > INGEST_EXPO_MAX_LINE);
    assert_int_equal(replay_checked(shape, b, blen, INGEST_EXPO_TEXT), NDT_AGAIN);
    page_samples ps;
    samples_init(&ps);
    assert_int_equal(parse(b, blen, INGEST_EXPO_TEXT, &ps, NULL), NDT_ERROR);
    samples_free(&ps);
    ingest_expo_shape_free(shape);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixtures_replay_new_values),
        cmocka_unit_test(text_values_replay),
        cmocka_unit_test(text_changes_decline),
        cmocka_unit_test(text_spacing_agrees),
        cmocka_unit_test(om_values_replay_and_changes_decline),
        cmocka_unit_test(unreplayable_recordings_leave_no_shape),
        cmocka_unit_test(empty_pages),
        cmocka_unit_test(long_lines_keep_the_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
