/*
 * test_feat_stream.c: the streaming feature mode without Kafka
 * (features/feat_stream.c): rows rebuilt from NGSI-LD fragments by
 * feat_udr.c's rules, windows, lateness and bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "features/features.h"

#define SVC "urn:ngsi-ld:Service:ndt.inference"
#define T0 1767323045000LL /* 2026-01-02T03:04:05.000Z */

typedef struct got {
    feat_raw rows[64];
    size_t nrows;
    feat_window windows[64];
    size_t nwindows;
} got;

static int on_row(void *ctx, const char *service, const feat_raw *row)
{
    got *g = ctx;
    assert_string_equal(service, SVC);
    assert_true(g->nrows < 64);
    g->rows[g->nrows++] = *row;
    return NDT_OK;
}

static int on_window(void *ctx, const feat_window *w)
{
    got *g = ctx;
    assert_true(g->nwindows < 64);
    g->windows[g->nwindows] = *w;
    g->windows[g->nwindows].service = NULL; /* not retained past the call */
    g->nwindows++;
    return NDT_OK;
}

static void iso(int64_t ms, char *buf, size_t size)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}

/* A pod fragment: the six attributes at ts, v the base value. */
static void pod(feat_stream *s, const char *id, const char *service, int64_t ts, double v)
{
    char at[40], json[2048];
    iso(ts, at, sizeof(at));
    snprintf(json, sizeof(json),
             "{\"id\":\"urn:ngsi-ld:ServiceComponent:%s\",\"type\":\"ServiceComponent\","
             "\"avgDepthOnEnqueue\":{\"type\":\"Property\",\"value\":%g,\"observedAt\":\"%s\"},"
             "\"avgBacklogEstimate\":{\"type\":\"Property\",\"value\":%g,\"observedAt\":\"%s\"},"
             "\"processCpuUsage\":{\"type\":\"Property\",\"value\":%g,\"observedAt\":\"%s\"},"
             "\"systemCpuUsage\":{\"type\":\"Property\",\"value\":%g,\"observedAt\":\"%s\"},"
             "\"systemMemoryUsage\":{\"type\":\"Property\",\"value\":%g,\"observedAt\":\"%s\"},"
             "\"avgInferenceTime\":{\"type\":\"Property\",\"value\":%g,\"observedAt\":\"%s\"},"
             "\"service\":{\"type\":\"Relationship\",\"object\":\"%s\"},"
             "\"twinState\":{\"type\":\"Property\",\"value\":\"synchronized\"},"
             "\"@context\":\"x\"}",
             id, v, at, v / 100, at, v * 2, at, v * 3, at, v * 4, at, v * 10, at, service);
    char err[256];
    assert_int_equal(feat_stream_add(s, 0, json, strlen(json), err, sizeof(err)), NDT_OK);
}

static void service(feat_stream *s, int64_t ts, int users, int pods)
{
    char at[40], json[1024];
    iso(ts, at, sizeof(at));
    snprintf(json, sizeof(json),
             "{\"id\":\"" SVC "\",\"type\":\"Service\","
             "\"currentUsers\":{\"type\":\"Property\",\"value\":%d,\"observedAt\":\"%s\"},"
             "\"desiredReplicas\":{\"type\":\"Property\",\"value\":%d,\"observedAt\":\"%s\"},"
             "\"@context\":\"x\"}",
             users, at, pods, at);
    char err[256];
    assert_int_equal(feat_stream_add(s, 0, json, strlen(json), err, sizeof(err)), NDT_OK);
}

/* Like pod() but from a given source (input partition). */
static void pod_from(feat_stream *s, int src, const char *id, int64_t ts, double v)
{
    char at[40], json[2048];
    iso(ts, at, sizeof(at));
    snprintf(json, sizeof(json),
             "{\"id\":\"urn:ngsi-ld:ServiceComponent:%s\",\"type\":\"ServiceComponent\","
             "\"avgDepthOnEnqueue\":{\"type\":\"Property\",\"value\":%g,\"observedAt\":\"%s\"},"
             "\"avgBacklogEstimate\":{\"type\":\"Property\",\"value\":1,\"observedAt\":\"%s\"},"
             "\"processCpuUsage\":{\"type\":\"Property\",\"value\":1,\"observedAt\":\"%s\"},"
             "\"systemCpuUsage\":{\"type\":\"Property\",\"value\":1,\"observedAt\":\"%s\"},"
             "\"systemMemoryUsage\":{\"type\":\"Property\",\"value\":1,\"observedAt\":\"%s\"},"
             "\"avgInferenceTime\":{\"type\":\"Property\",\"value\":1,\"observedAt\":\"%s\"},"
             "\"service\":{\"type\":\"Relationship\",\"object\":\"" SVC "\"}}",
             id, v, at, at, at, at, at, at);
    char err[256];
    assert_int_equal(feat_stream_add(s, src, json, strlen(json), err, sizeof(err)), NDT_OK);
}

static feat_stream *stream(got *g, int64_t window_ms, int64_t lateness_ms, size_t max_instants)
{
    memset(g, 0, sizeof(*g));
    feat_stream_options o = { window_ms, lateness_ms, max_instants, on_window, on_row, g };
    feat_stream *s;
    assert_int_equal(feat_stream_new(&o, &s), NDT_OK);
    return s;
}

/* Means over the member pods; users and pods from the Service as of the
 * instant; the row's features are feat_compute's (the batch mode's). */
static void rows_are_means_over_member_pods(void **state)
{
    (void)state;
    got g;
    feat_stream *s = stream(&g, 0, 50, 0);
    service(s, T0, 400, 2);
    pod(s, "a", SVC, T0 + 20, 10);
    pod(s, "b", SVC, T0 + 20, 30);
    pod(s, "other", "urn:ngsi-ld:Service:else", T0 + 20, 1000); /* another service */
    pod(s, "a", SVC, T0 + 40, 12);
    assert_int_equal(feat_stream_advance(s), NDT_OK);
    assert_int_equal(g.nrows, 0); /* T0+20 is within the lateness of T0+40 */
    pod(s, "a", SVC, T0 + 100, 14);
    assert_int_equal(feat_stream_advance(s), NDT_OK);
    assert_int_equal(g.nrows, 2);
    feat_raw *r = &g.rows[0];
    assert_int_equal(r->timestamp_ms, T0 + 20);
    assert_int_equal(r->users, 400);
    assert_int_equal(r->pods, 2);
    assert_true(r->depth == 20 && fabs(r->backlog_s - 0.2) < 1e-12);
    assert_true(r->cpu_process == 40 && r->cpu_system == 60 && r->mem_system == 80);
    assert_true(r->infer_ms == 200);
    assert_true(g.rows[1].depth == 12); /* only a at T0+40 */
    /* One window per row with window 0, its features feat_compute's. */
    assert_int_equal(g.nwindows, 2);
    double x[FEAT_DIM];
    feat_compute(r, x);
    for (int k = 0; k < FEAT_DIM; k++)
        assert_true(g.windows[0].features[k] == x[k]);
    assert_true(g.windows[0].log_latency == feat_target(200));
    assert_int_equal(g.windows[0].users, 400);
    /* At the end, the rest is closed. */
    assert_int_equal(feat_stream_finish(s), NDT_OK);
    assert_int_equal(g.nrows, 3);
    feat_stream_free(s);
}

/* Service values hold as of the instant: a change applies from its own
 * observation on, not to earlier instants that close later. */
static void service_state_as_of_the_instant(void **state)
{
    (void)state;
    got g;
    feat_stream *s = stream(&g, 0, 1000, 0);
    service(s, T0, 200, 1);
    pod(s, "a", SVC, T0 + 20, 10);
    service(s, T0 + 30, 600, 3);
    pod(s, "a", SVC, T0 + 40, 10);
    assert_int_equal(feat_stream_finish(s), NDT_OK);
    assert_int_equal(g.nrows, 2);
    assert_int_equal(g.rows[0].users, 200);
    assert_int_equal(g.rows[0].pods, 1);
    assert_int_equal(g.rows[1].users, 600);
    assert_int_equal(g.rows[1].pods, 3);
    feat_stream_free(s);
}

/* Windows are aligned, hold the mean of their rows, and split where the
 * regime changes. */
static void windows_average_and_split_on_regime(void **state)
{
    (void)state;
    got g;
    feat_stream *s = stream(&g, 1000, 10, 0);
    service(s, T0, 400, 1);
    pod(s, "a", SVC, T0 + 100, 10);
    pod(s, "a", SVC, T0 + 300, 30);
    service(s, T0 + 500, 400, 2); /* scale-up inside the window */
    pod(s, "a", SVC, T0 + 600, 50);
    pod(s, "a", SVC, T0 + 1200, 70); /* next window */
    assert_int_equal(feat_stream_finish(s), NDT_OK);
    assert_int_equal(g.nwindows, 3);
    feat_window *w = &g.windows[0];
    assert_int_equal(w->start_ms, T0);
    assert_int_equal(w->end_ms, T0 + 1000);
    assert_int_equal(w->rows, 2);
    assert_int_equal(w->pods, 1);
    assert_int_equal(w->first_ms, T0 + 100);
    assert_int_equal(w->last_ms, T0 + 300);
    /* Mean of the two rows' congestion index (depth / pods). */
    assert_true(w->features[3] == 20);
    assert_true(fabs(w->latency_ms - 200) < 1e-9);
    assert_true(fabs(w->log_latency - (feat_target(100) + feat_target(300)) / 2) < 1e-12);
    assert_int_equal(g.windows[1].pods, 2);
    assert_int_equal(g.windows[1].rows, 1);
    assert_int_equal(g.windows[1].start_ms, T0);
    assert_int_equal(g.windows[2].start_ms, T0 + 1000);
    feat_stream_free(s);
}

/* Late observations are dropped and counted; incomplete rows are skipped;
 * the open-instant bound forces closes; garbage is refused with a reason. */
static void lateness_incomplete_bounds_and_garbage(void **state)
{
    (void)state;
    got g;
    feat_stream *s = stream(&g, 0, 20, 3);
    service(s, T0, 100, 1);
    pod(s, "a", SVC, T0 + 20, 10);
    pod(s, "a", SVC, T0 + 100, 10);
    assert_int_equal(feat_stream_advance(s), NDT_OK);
    pod(s, "b", SVC, T0 + 20, 10); /* after T0+20 closed */
    feat_stream_stats st;
    feat_stream_get_stats(s, &st);
    assert_int_equal(st.late, 6); /* its six attributes */
    /* A pod without avgInferenceTime yields no row for that instant. */
    const char *partial = "{\"id\":\"urn:ngsi-ld:ServiceComponent:c\",\"type\":\"ServiceComponent\","
                          "\"avgDepthOnEnqueue\":{\"type\":\"Property\",\"value\":1,"
                          "\"observedAt\":\"2026-01-02T03:04:06.000Z\"},"
                          "\"service\":{\"type\":\"Relationship\",\"object\":\"" SVC "\"}}";
    char err[256];
    assert_int_equal(feat_stream_add(s, 0, partial, strlen(partial), err, sizeof(err)), NDT_OK);
    for (int i = 0; i < 6; i++)
        pod(s, "a", SVC, T0 + 2000 + 1000 * i, 10); /* more than 3 open instants */
    assert_int_equal(feat_stream_advance(s), NDT_OK);
    feat_stream_get_stats(s, &st);
    assert_true(st.incomplete >= 1);
    assert_true(st.open_instants <= 3);
    assert_int_equal(feat_stream_add(s, 0, "{nope", 5, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "not JSON"));
    assert_int_equal(feat_stream_add(s, 0, "[1]", 3, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "NGSI-LD"));
    feat_stream_free(s);
}

/* A consumer catching up reads one partition far ahead of another: the
 * slow partition holds the watermark back until it delivers or is caught
 * up, so no pod's data is judged late for that. */
static void slowest_source_holds_the_watermark(void **state)
{
    (void)state;
    got g;
    feat_stream *s = stream(&g, 0, 20, 0);
    feat_stream_source_idle(s, 0, 0); /* both assigned, neither caught up */
    feat_stream_source_idle(s, 1, 0);
    service(s, T0, 100, 2); /* source 0 */
    for (int i = 1; i <= 50; i++)
        pod_from(s, 0, "a", T0 + 20 * i, 1);
    assert_int_equal(feat_stream_advance(s), NDT_OK);
    assert_int_equal(g.nrows, 0); /* source 1 has delivered nothing yet */
    pod_from(s, 1, "b", T0 + 20, 3);
    assert_int_equal(feat_stream_advance(s), NDT_OK);
    assert_int_equal(g.nrows, 0); /* the watermark is source 1's T0+20 */
    for (int i = 2; i <= 50; i++)
        pod_from(s, 1, "b", T0 + 20 * i, 3);
    assert_int_equal(feat_stream_advance(s), NDT_OK);
    feat_stream_stats st;
    feat_stream_get_stats(s, &st);
    assert_int_equal(st.late, 0);
    assert_true(g.nrows >= 40);
    assert_true(g.rows[0].depth == 2); /* both pods, (1 + 3) / 2 */
    feat_stream_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_are_means_over_member_pods),
        cmocka_unit_test(service_state_as_of_the_instant),
        cmocka_unit_test(windows_average_and_split_on_regime),
        cmocka_unit_test(lateness_incomplete_bounds_and_garbage),
        cmocka_unit_test(slowest_source_holds_the_watermark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
