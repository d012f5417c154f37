/*
 * testbed_campaign.c: the paper's measurement campaign on a simulated
 * clock: for each users value, scale the Deployment through the pods range,
 * hold each regime for a dwell, and write one dataset row per telemetry
 * window (the contract's CSV header, then the extra columns pods_ready and
 * completed).
 *
 * The clock is simulated, so the campaign runs as fast as the CPU allows
 * (thousands of simulated seconds per wall second) and never reads the
 * wall clock: timestamps are epoch_ms + simulated time, numbers are printed
 * with fixed precision, so the same seed writes the same bytes.  Regimes
 * follow each other without a reset, like the real campaign: each change
 * shows its transient (new pods starting cold, queues draining), which is
 * why the paper trims per regime.
 */
#include <math.h>
#include <stdio.h>

#include "common/ndt.h"
#include "testbed/testbed_internal.h"

#define TESTBED_CSV_HEADER                                                                  \
    "timestamp_ms,users,pods,avg_depth_on_enqueue,avg_backlog_sec_est,avg_cpu_process_pct," \
    "avg_cpu_system_pct,avg_mem_system_pct,avg_total_infer_ms,pods_ready,completed\n"

/* Portion of a dwell treated as transient in the per-regime means. */
#define TESTBED_TRANSIENT_FRACTION 0.25

typedef struct testbed_campaign_ctx {
    FILE *out;
    double epoch_ms;
    double regime_start, steady_from;
    double sum_ms;
    uint64_t steady_samples;
} testbed_campaign_ctx;

static void testbed_campaign_row(void *arg, const testbed_sample *s)
{
    testbed_campaign_ctx *ctx = arg;
    long long ts = (long long)llround(ctx->epoch_ms + s->t * 1000.0);
    fprintf(ctx->out, "%lld,%d,%d,%.4f,%.6f,%.3f,%.3f,%.3f,%.3f,%d,%llu\n", ts, s->users, s->pods,
            s->avg_depth_on_enqueue, s->avg_backlog_sec_est, s->avg_cpu_process_pct,
            s->avg_cpu_system_pct, s->avg_mem_system_pct, s->avg_total_infer_ms, s->pods_ready,
            (unsigned long long)s->completed);
    if (s->t > ctx->steady_from) {
        ctx->sum_ms += s->avg_total_infer_ms;
        ctx->steady_samples++;
    }
}

static int testbed_campaign_check(const testbed_campaign *c, char *err, size_t errlen)
{
    if (c->nusers == 0 || c->nusers > NDT_ARRAY_LEN(c->users)) {
        snprintf(err, errlen, "the users list must hold 1..%zu values", NDT_ARRAY_LEN(c->users));
        return NDT_ERROR;
    }
    if (c->pods_min < 1 || c->pods_max > TESTBED_MAX_PODS || c->pods_min > c->pods_max) {
        snprintf(err, errlen, "the pods range must lie within 1..%d", TESTBED_MAX_PODS);
        return NDT_ERROR;
    }
    if (!(c->dwell_s > 0) || !(c->interval_s > 0) || c->interval_s > c->dwell_s) {
        snprintf(err, errlen, "dwell and interval must be positive, interval <= dwell");
        return NDT_ERROR;
    }
    return NDT_OK;
}

int testbed_campaign_run(const testbed_campaign *c, FILE *out, testbed_regime_result *results,
                         char *err, size_t errlen)
{
    if (testbed_campaign_check(c, err, errlen) != NDT_OK)
        return NDT_ERROR;
    testbed_params p = c->params;
    p.users = c->users[0];
    p.pods = c->pods_min;
    p.sample_interval_s = c->interval_s;
    testbed_sim *sim;
    if (testbed_sim_create(&p, &sim, err, errlen) != NDT_OK)
        return NDT_ERROR;
    testbed_campaign_ctx ctx = { .out = out, .epoch_ms = c->epoch_ms };
    testbed_sim_on_sample(sim, testbed_campaign_row, &ctx);
    fputs(TESTBED_CSV_HEADER, out);

    int rc = NDT_OK;
    size_t k = 0;
    for (size_t i = 0; i < c->nusers && rc == NDT_OK; i++) {
        for (int pods = c->pods_min; pods <= c->pods_max; pods++) {
            if (testbed_sim_set_users(sim, c->users[i], err, errlen) != NDT_OK ||
                testbed_sim_set_pods(sim, pods, err, errlen) != NDT_OK) {
                rc = NDT_ERROR;
                break;
            }
            ctx.regime_start = testbed_sim_now(sim);
            ctx.steady_from = ctx.regime_start + TESTBED_TRANSIENT_FRACTION * c->dwell_s;
            ctx.sum_ms = 0;
            ctx.steady_samples = 0;
            testbed_sim_advance(sim, ctx.regime_start + c->dwell_s);
            if (results) {
                results[k].users = c->users[i];
                results[k].pods = pods;
                results[k].samples = ctx.steady_samples;
                results[k].mean_infer_ms =
                    ctx.steady_samples ? ctx.sum_ms / (double)ctx.steady_samples : NAN;
            }
            k++;
        }
    }
    testbed_sim_destroy(sim);
    if (rc == NDT_OK && (fflush(out) != 0 || ferror(out))) {
        snprintf(err, errlen, "writing the dataset failed");
        rc = NDT_ERROR;
    }
    return rc;
}
