/*
 * api_metrics.c: the API's own metrics: requests by endpoint and status
 * code, and a latency histogram per endpoint (docs/METRICS.md).
 *
 * Every request of every MHD thread updates these, so they are plain
 * arrays of relaxed atomic counters indexed by fixed enums: no lock, no
 * allocation, and a bounded label set (an unknown path counts as
 * endpoint "other", an unusual status as code "other") so that a client
 * cannot grow the exposition.  The latency sum is kept in nanoseconds as
 * an integer for the same reason (no atomic double).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"

static const char *const endpoint_names[API_EP_COUNT] = {
    [API_EP_HEALTHZ] = "healthz", [API_EP_READYZ] = "readyz",   [API_EP_METRICS] = "metrics",
    [API_EP_ENTITIES] = "entities", [API_EP_ENTITY] = "entity", [API_EP_GRAPH] = "graph",
    [API_EP_MODELS] = "models",   [API_EP_MODEL] = "model",     [API_EP_PREDICT] = "predict",
    [API_EP_WHATIF] = "whatif",   [API_EP_RECOMMENDATION] = "recommendation",
    [API_EP_SCALE] = "scale",     [API_EP_OTHER] = "other",
};

static const unsigned codes[] = { 200, 400, 401, 404, 405, 413, 414, 500, 503 };
#define NCODES (NDT_ARRAY_LEN(codes) + 1) /* the last: "other" */

static const double buckets[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                  0.01,   0.025,   0.05,   0.1,   0.25,   1.0 };
#define NBUCKETS NDT_ARRAY_LEN(buckets)

struct api_metrics {
    uint64_t requests[API_EP_COUNT][NCODES];
    uint64_t bucket[API_EP_COUNT][NBUCKETS]; /* non-cumulative; summed when rendered */
    uint64_t count[API_EP_COUNT];
    uint64_t sum_ns[API_EP_COUNT];
};

const char *api_endpoint_name(api_endpoint ep)
{
    return ep < API_EP_COUNT ? endpoint_names[ep] : "other";
}

api_metrics *api_metrics_new(void) { return calloc(1, sizeof(api_metrics)); }

void api_metrics_free(api_metrics *m) { free(m); }

static void add(uint64_t *counter, uint64_t v) { __atomic_fetch_add(counter, v, __ATOMIC_RELAXED); }

static uint64_t load(const uint64_t *counter) { return __atomic_load_n(counter, __ATOMIC_RELAXED); }

void api_metrics_observe(api_metrics *m, api_endpoint ep, unsigned status, double seconds)
{
    if (ep >= API_EP_COUNT)
        ep = API_EP_OTHER;
    size_t c = 0;
    while (c < NDT_ARRAY_LEN(codes) && codes[c] != status)
        c++;
    add(&m->requests[ep][c], 1);
    size_t b = 0;
    while (b < NBUCKETS && seconds > buckets[b])
        b++;
    if (b < NBUCKETS)
        add(&m->bucket[ep][b], 1);
    add(&m->count[ep], 1);
    add(&m->sum_ns[ep], seconds > 0 ? (uint64_t)(seconds * 1e9) : 0);
}

int api_metrics_render(const api_metrics *m, ndt_buf *out)
{
    int ok = ndt_buf_append_str(out,
                                "# HELP ndtpipe_api_requests_total HTTP requests answered, by endpoint and status code.\n"
                                "# TYPE ndtpipe_api_requests_total counter\n") == NDT_OK;
    for (size_t ep = 0; ok && ep < API_EP_COUNT; ep++) {
        for (size_t c = 0; ok && c < NCODES; c++) {
            uint64_t v = load(&m->requests[ep][c]);
            if (!v)
                continue;
            char code[16];
            if (c < NDT_ARRAY_LEN(codes))
                snprintf(code, sizeof(code), "%u", codes[c]);
            else
                snprintf(code, sizeof(code), "other");
            ok = ndt_buf_printf(out, "ndtpipe_api_requests_total{code=\"%s\",endpoint=\"%s\"} %llu\n", code,
                                endpoint_names[ep], (unsigned long long)v) == NDT_OK;
        }
    }
    ok = ok && ndt_buf_append_str(out,
                                  "# HELP ndtpipe_api_request_duration_seconds Time from a request's headers to its answer being queued.\n"
                                  "# TYPE ndtpipe_api_request_duration_seconds histogram\n") == NDT_OK;
    for (size_t ep = 0; ok && ep < API_EP_COUNT; ep++) {
        uint64_t count = load(&m->count[ep]);
        if (!count)
            continue;
        uint64_t cumulative = 0;
        for (size_t b = 0; ok && b < NBUCKETS; b++) {
            cumulative += load(&m->bucket[ep][b]);
            ok = ndt_buf_printf(out, "ndtpipe_api_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
                                endpoint_names[ep], buckets[b], (unsigned long long)cumulative) == NDT_OK;
        }
        /* count is read after the buckets: +Inf never falls below the last bucket. */
        count = load(&m->count[ep]);
        if (count < cumulative)
            count = cumulative;
        ok = ok && ndt_buf_printf(out,
                                  "ndtpipe_api_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n"
                                  "ndtpipe_api_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n"
                                  "ndtpipe_api_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
                                  endpoint_names[ep], (unsigned long long)count, endpoint_names[ep],
                                  (double)load(&m->sum_ns[ep]) / 1e9, endpoint_names[ep],
                                  (unsigned long long)count) == NDT_OK;
    }
    return ok ? NDT_OK : NDT_ERROR;
}
