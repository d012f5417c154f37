/*
 * test_scrape_cache.c: a target's scrape cache (ingest/scrape_cache.h).
 *
 * The series a replay hands back must be the series a full parse of the
 * same page builds.  The tests build series from samples with a small
 * rule of their own (name plus labels, one name dropped the way
 * metric_relabel_configs drops, so that samples and series do not line
 * up one to one), store a fully parsed page, then compare the replay of
 * a second page with a full parse of it through the same rule: labels,
 * values, timestamps, counts.  The pages' buffers and the arena are
 * freed or overwritten before a replay, so that a cache that kept a
 * reference instead of a copy reads freed memory (ASan) or wrong labels.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/ndt.h"
#include "ingest/expo.h"
#include "ingest/scrape_cache.h"

#define SCRAPE_MS 1700000000000LL

/* Builds series like a scraper: __name__ then the sample's labels;
 * samples named drop_me become none. */
typedef struct builder {
    ndt_arena *arena;
    int honor_timestamps;
    ingest_series series[64];
    size_t n;
    int32_t map[64];
    size_t nsamples;
    uint64_t post_relabel;
} builder;

static int build(void *ctx, const ingest_sample *sample)
{
    builder *b = ctx;
    assert_true(b->nsamples < 64);
    if (ndt_str_eq_cstr(sample->name, "drop_me")) {
        b->map[b->nsamples++] = -1;
        return NDT_OK;
    }
    ingest_label *labels = ndt_arena_alloc(b->arena, (sample->nlabels + 1) * sizeof(*labels));
    assert_non_null(labels);
    labels[0].name = NDT_STR_LIT("__name__");
    labels[0].value = sample->name;
    if (sample->nlabels)
        memcpy(labels + 1, sample->labels, sample->nlabels * sizeof(*labels));
    ingest_series *s = &b->series[b->n];
    memset(s, 0, sizeof(*s));
    s->labels = labels;
    s->nlabels = sample->nlabels + 1;
    s->value = sample->value;
    s->type = sample->type;
    s->timestamp_ms = b->honor_timestamps && sample->timestamp_ms != INGEST_NO_TIMESTAMP
                          ? sample->timestamp_ms
                          : SCRAPE_MS;
    b->post_relabel++;
    b->map[b->nsamples++] = (int32_t)b->n++;
    return NDT_OK;
}

/* A full parse of page into b (recording into shape when given). */
static int full_parse(const char *page, ingest_expo_format format, ingest_expo_shape *shape,
                      builder *b)
{
    size_t len = strlen(page);
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, page, len + 1);
    b->n = b->nsamples = 0;
    b->post_relabel = 0;
    int rc = ingest_expo_parse_recording(copy, len, format, b->arena, build, b, NULL, shape);
    /* The series point into copy: the caller compares them while it lives,
     * so it is freed by free_page (kept in b->series' first label). */
    b->series[63].labels = (const ingest_label *)(void *)copy;
    return rc;
}

static void free_page(builder *b)
{
    free((void *)b->series[63].labels);
    b->series[63].labels = NULL;
}

static void store_page(ingest_scrape_cache *cache, const char *page, ingest_expo_format format,
                       builder *b)
{
    ingest_expo_shape *shape = ingest_scrape_cache_recorder(cache);
    assert_non_null(shape);
    assert_int_equal(full_parse(page, format, shape, b), NDT_OK);
    ingest_scrape_cache_store(cache, b->series, b->n, b->map, b->nsamples, b->post_relabel);
    /* Whatever the stored series pointed at is gone now. */
    free_page(b);
    ndt_arena_reset(b->arena);
}

static void assert_same_series(const ingest_series *a, const ingest_series *b)
{
    assert_int_equal(a->nlabels, b->nlabels);
    for (size_t j = 0; j < a->nlabels; j++) {
        assert_true(ndt_str_eq(a->labels[j].name, b->labels[j].name));
        assert_true(ndt_str_eq(a->labels[j].value, b->labels[j].value));
    }
    if (isnan(a->value))
        assert_true(isnan(b->value));
    else
        assert_memory_equal(&a->value, &b->value, sizeof(double));
    assert_int_equal(a->timestamp_ms, b->timestamp_ms);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->inherits, b->inherits);
}

/* Replays page through the cache and checks it against a full parse. */
static void check_replay(ingest_scrape_cache *cache, const char *page, ingest_expo_format format,
                         builder *b, ndt_arena *replay_arena)
{
    size_t len = strlen(page);
    char *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, page, len);
    ingest_scrape_replay r;
    assert_int_equal(ingest_scrape_cache_replay(cache, copy, len, format, b->honor_timestamps,
                                                SCRAPE_MS, 4, replay_arena, &r),
                     NDT_OK);
    free(copy);
    /* The room for the synthetic series is there (ASan sees a write past). */
    memset(&r.series[r.nseries + 3], 0, sizeof(r.series[0]));

    assert_int_equal(full_parse(page, format, NULL, b), NDT_OK);
    assert_int_equal(r.nseries, b->n);
    assert_int_equal(r.scraped, b->nsamples);
    assert_int_equal(r.post_relabel, b->post_relabel);
    for (size_t i = 0; i < b->n; i++)
        assert_same_series(&r.series[i], &b->series[i]);
    free_page(b);
    ndt_arena_reset(b->arena);
}

static const char page_a1[] =
    "# HELP http_requests_total Requests.\n"
    "# TYPE http_requests_total counter\n"
    "http_requests_total{code=\"200\",method=\"get\"} 1027 1700000000123\n"
    "drop_me{x=\"1\"} 5\n"
    "http_requests_total{code=\"500\",method=\"get\"} 3\n"
    "# TYPE rtt histogram\n"
    "rtt_bucket{le=\"0.1\"} 1\n"
    "rtt_bucket{le=\"+Inf\"} 2\n"
    "rtt_sum 0.25\n"
    "rtt_count 2\n"
    "temperature NaN\n";

static const char page_a2[] =
    "# HELP http_requests_total Requests.\n"
    "# TYPE http_requests_total counter\n"
    "http_requests_total{code=\"200\",method=\"get\"} 2054.5 1700000000999\n"
    "drop_me{x=\"1\"} 6\n"
    "http_requests_total{code=\"500\",method=\"get\"} 1e3\n"
    "# TYPE rtt histogram\n"
    "rtt_bucket{le=\"0.1\"} 17\n"
    "rtt_bucket{le=\"+Inf\"} 19\n"
    "rtt_sum 12.0000000000000004\n"
    "rtt_count 19\n"
    "temperature -Inf\n";

/* A label value changed: not the same shape. */
static const char page_b[] =
    "# HELP http_requests_total Requests.\n"
    "# TYPE http_requests_total counter\n"
    "http_requests_total{code=\"200\",method=\"put\"} 2054.5 1700000000999\n"
    "drop_me{x=\"1\"} 6\n"
    "http_requests_total{code=\"500\",method=\"get\"} 1e3\n"
    "# TYPE rtt histogram\n"
    "rtt_bucket{le=\"0.1\"} 17\n"
    "rtt_bucket{le=\"+Inf\"} 19\n"
    "rtt_sum 12\n"
    "rtt_count 19\n"
    "temperature -Inf\n";

typedef struct fixture {
    ndt_arena arena, replay_arena;
    builder b;
    ingest_scrape_cache *cache;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    ndt_arena_init(&f->arena, 4096, 0);
    ndt_arena_init(&f->replay_arena, 4096, 0);
    f->b.arena = &f->arena;
    f->b.honor_timestamps = 1;
    f->cache = ingest_scrape_cache_new();
    assert_non_null(f->cache);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ingest_scrape_cache_free(f->cache);
    ndt_arena_free(&f->arena);
    ndt_arena_free(&f->replay_arena);
    free(f);
    return 0;
}

static void replay_equals_full_parse(void **state)
{
    fixture *f = *state;
    store_page(f->cache, page_a1, INGEST_EXPO_TEXT, &f->b);
    check_replay(f->cache, page_a2, INGEST_EXPO_TEXT, &f->b, &f->replay_arena);
    check_replay(f->cache, page_a1, INGEST_EXPO_TEXT, &f->b, &f->replay_arena);
}

static void replay_without_honor_timestamps(void **state)
{
    fixture *f = *state;
    f->b.honor_timestamps = 0;
    store_page(f->cache, page_a1, INGEST_EXPO_TEXT, &f->b);
    check_replay(f->cache, page_a2, INGEST_EXPO_TEXT, &f->b, &f->replay_arena);
}

static void replay_openmetrics(void **state)
{
    fixture *f = *state;
    static const char om1[] = "# TYPE jobs counter\n"
                              "jobs_total{queue=\"a\"} 1 1700000000.5\n"
                              "jobs_created{queue=\"a\"} 1600000000\n"
                              "drop_me 1\n"
                              "# TYPE temp_celsius gauge\n"
                              "# UNIT temp_celsius celsius\n"
                              "temp_celsius 21.5\n"
                              "# EOF\n";
    static const char om2[] = "# TYPE jobs counter\n"
                              "jobs_total{queue=\"a\"} 4 1700000001.25\n"
                              "jobs_created{queue=\"a\"} 1600000000\n"
                              "drop_me 2\n"
                              "# TYPE temp_celsius gauge\n"
                              "# UNIT temp_celsius celsius\n"
                              "temp_celsius 22\n"
                              "# EOF\n";
    store_page(f->cache, om1, INGEST_EXPO_OPENMETRICS, &f->b);
    check_replay(f->cache, om2, INGEST_EXPO_OPENMETRICS, &f->b, &f->replay_arena);
    /* The same bytes announced as text are another page. */
    ingest_scrape_replay r;
    assert_int_equal(ingest_scrape_cache_replay(f->cache, om2, strlen(om2), INGEST_EXPO_TEXT, 1,
                                                SCRAPE_MS, 4, &f->replay_arena, &r),
                     NDT_AGAIN);
}

static int replay_rc(fixture *f, const char *page)
{
    ingest_scrape_replay r;
    return ingest_scrape_cache_replay(f->cache, page, strlen(page), INGEST_EXPO_TEXT, 1, SCRAPE_MS,
                                      4, &f->replay_arena, &r);
}

static void other_shape_declines_until_recorded(void **state)
{
    fixture *f = *state;
    assert_int_equal(replay_rc(f, page_a1), NDT_AGAIN); /* empty cache */
    store_page(f->cache, page_a1, INGEST_EXPO_TEXT, &f->b);
    check_replay(f->cache, page_a2, INGEST_EXPO_TEXT, &f->b, &f->replay_arena);
    assert_int_equal(replay_rc(f, page_b), NDT_AGAIN);
    /* A miss drops the shape: the target has moved on. */
    assert_int_equal(replay_rc(f, page_a2), NDT_AGAIN);
    store_page(f->cache, page_b, INGEST_EXPO_TEXT, &f->b);
    check_replay(f->cache, page_b, INGEST_EXPO_TEXT, &f->b, &f->replay_arena);
    assert_int_equal(replay_rc(f, page_a2), NDT_AGAIN);
}

/* A full parse that fails leaves nothing to replay. */
static void failed_recording_leaves_nothing(void **state)
{
    fixture *f = *state;
    store_page(f->cache, page_a1, INGEST_EXPO_TEXT, &f->b);
    ingest_expo_shape *shape = ingest_scrape_cache_recorder(f->cache);
    assert_non_null(shape);
    assert_int_equal(full_parse("up{a=\"1\"} x\n", INGEST_EXPO_TEXT, shape, &f->b), NDT_ERROR);
    free_page(&f->b);
    ingest_scrape_replay r;
    assert_int_equal(ingest_scrape_cache_replay(f->cache, page_a2, strlen(page_a2),
                                                INGEST_EXPO_TEXT, 1, SCRAPE_MS, 4,
                                                &f->replay_arena, &r),
                     NDT_AGAIN);
}

static void empty_page(void **state)
{
    fixture *f = *state;
    store_page(f->cache, "# nothing yet\n", INGEST_EXPO_TEXT, &f->b);
    check_replay(f->cache, "# nothing yet\n", INGEST_EXPO_TEXT, &f->b, &f->replay_arena);
}

/* A page that changes shape every scrape is recorded less and less; a
 * page that lasts is replayed and ends that at once. */
static void churn_backs_off(void **state)
{
    fixture *f = *state;
    ingest_scrape_replay r;
    store_page(f->cache, page_a1, INGEST_EXPO_TEXT, &f->b); /* first store */
    store_page(f->cache, page_b, INGEST_EXPO_TEXT, &f->b);  /* the first was never replayed */
    store_page(f->cache, page_a1, INGEST_EXPO_TEXT, &f->b); /* twice: sit out 2 */
    assert_int_equal(ingest_scrape_cache_replay(f->cache, page_b, strlen(page_b),
                                                INGEST_EXPO_TEXT, 1, SCRAPE_MS, 4,
                                                &f->replay_arena, &r),
                     NDT_AGAIN);
    /* The miss dropped the shape: even a page of it is parsed in full now. */
    assert_int_equal(ingest_scrape_cache_replay(f->cache, page_a2, strlen(page_a2),
                                                INGEST_EXPO_TEXT, 1, SCRAPE_MS, 4,
                                                &f->replay_arena, &r),
                     NDT_AGAIN);
    assert_null(ingest_scrape_cache_recorder(f->cache));
    assert_null(ingest_scrape_cache_recorder(f->cache));
    store_page(f->cache, page_b, INGEST_EXPO_TEXT, &f->b); /* three: sit out 4 */
    for (int i = 0; i < 4; i++)
        assert_null(ingest_scrape_cache_recorder(f->cache));
    store_page(f->cache, page_a1, INGEST_EXPO_TEXT, &f->b); /* four: sit out 8 */
    /* The page stays: it replays, and the next change is recorded at once. */
    check_replay(f->cache, page_a2, INGEST_EXPO_TEXT, &f->b, &f->replay_arena);
    store_page(f->cache, page_b, INGEST_EXPO_TEXT, &f->b);
    check_replay(f->cache, page_b, INGEST_EXPO_TEXT, &f->b, &f->replay_arena);
    store_page(f->cache, page_a1, INGEST_EXPO_TEXT, &f->b); /* b was replayed: no backoff */
    assert_non_null(ingest_scrape_cache_recorder(f->cache));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(replay_equals_full_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_without_honor_timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_openmetrics, setup, teardown),
        cmocka_unit_test_setup_teardown(other_shape_declines_until_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_recording_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_page, setup, teardown),
        cmocka_unit_test_setup_teardown(churn_backs_off, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
