/*
 * test_testbed.c: the emulated cluster's physics and contracts, on fixed
 * seeds: queueing behaviour the paper's campaign shows (latency against
 * users and pods, saturation, diminishing returns, transients), the
 * invariants any queueing model must keep (Little's law, conservation of
 * requests), determinism, Deployment-like scaling, /control validation,
 * the exposition's counters and the campaign's CSV.
 *
 * Regimes are measured after a warm-up, each from a fresh simulation on a
 * fixed seed, in two ways:
 *   - the request-weighted mean response time (what users see), over long
 *     simulated dwells with 1 s telemetry windows (windows cost events, the
 *     mean does not need them).  At 200 users one pod more changes it by
 *     1-2 ms, so that row gets 2 h per regime: the standard error of each
 *     step's gain is then ~0.15 ms, several times below the gaps asserted;
 *   - the dataset's column, the per-window mean of avg_total_infer_ms at
 *     the paper's 20 ms, for the 600-user deltas of Table VII and the
 *     per-sample scatter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/ndt.h"
#include "testbed/testbed.h"
#include "testbed/testbed_internal.h"

#define WARMUP_S 60.0

typedef struct regime {
    double latency_ms;   /* mean response time of requests completed */
    double depth;        /* mean of avg_depth_on_enqueue over windows */
    double backlog_s;    /* mean of avg_backlog_sec_est over windows */
    double cpu_process;  /* mean of avg_cpu_process_pct over windows */
    double cpu_system;   /* mean of avg_cpu_system_pct over windows */
    double throughput;   /* completions per second */
    double sample_ms;    /* mean of avg_total_infer_ms over windows */
    double sample_sd_ms; /* ... and its standard deviation */
    double rejected;     /* share of requests sent that a full queue refused */
} regime;

typedef struct window_acc {
    double depth, backlog, cpu, node_cpu, ms, ms2;
    long n;
} window_acc;

static void accumulate(void *ctx, const testbed_sample *s)
{
    window_acc *acc = ctx;
    acc->depth += s->avg_depth_on_enqueue;
    acc->backlog += s->avg_backlog_sec_est;
    acc->cpu += s->avg_cpu_process_pct;
    acc->node_cpu += s->avg_cpu_system_pct;
    acc->ms += s->avg_total_infer_ms;
    acc->ms2 += s->avg_total_infer_ms * s->avg_total_infer_ms;
    acc->n++;
}

/* Averaging window of the avg_* gauges for new simulations; < 0: the default. */
static double avg_window_s = -1;

/* max_queue < 0: the default admission bound. */
static testbed_sim *new_sim_bounded(int users, int pods, uint64_t seed, double interval_s,
                                    int max_queue)
{
    testbed_params p;
    testbed_params_default(&p);
    if (max_queue >= 0)
        p.max_queue = max_queue;
    if (avg_window_s >= 0)
        p.avg_window_s = avg_window_s;
    p.users = users;
    p.pods = pods;
    p.seed = seed;
    p.sample_interval_s = interval_s;
    testbed_sim *sim = NULL;
    char err[256];
    assert_int_equal(testbed_sim_create(&p, &sim, err, sizeof(err)), 0);
    return sim;
}

static testbed_sim *new_sim_every(int users, int pods, uint64_t seed, double interval_s)
{
    return new_sim_bounded(users, pods, seed, interval_s, -1);
}

static testbed_sim *new_sim(int users, int pods, uint64_t seed)
{
    return new_sim_every(users, pods, seed, 0.020);
}

static regime measure_bounded(int users, int pods, uint64_t seed, double interval_s,
                              double measure_s, int max_queue)
{
    testbed_sim *sim = new_sim_bounded(users, pods, seed, interval_s, max_queue);
    window_acc acc = { 0 };
    testbed_totals a, b;
    testbed_sim_advance(sim, WARMUP_S);
    testbed_sim_totals(sim, &a);
    testbed_sim_on_sample(sim, accumulate, &acc);
    testbed_sim_advance(sim, WARMUP_S + measure_s);
    testbed_sim_totals(sim, &b);
    testbed_sim_destroy(sim);
    double mean = acc.ms / acc.n;
    regime r = {
        .latency_ms = 1000.0 * (b.response_sum_s - a.response_sum_s) / (double)(b.completed - a.completed),
        .depth = acc.depth / acc.n,
        .backlog_s = acc.backlog / acc.n,
        .cpu_process = acc.cpu / acc.n,
        .cpu_system = acc.node_cpu / acc.n,
        .throughput = (double)(b.completed - a.completed) / measure_s,
        .sample_ms = mean,
        .sample_sd_ms = sqrt(acc.ms2 / acc.n - mean * mean),
        .rejected = (double)(b.rejected_full - a.rejected_full) / (double)(b.sent - a.sent),
    };
    return r;
}

static regime measure(int users, int pods, uint64_t seed, double interval_s, double measure_s)
{
    return measure_bounded(users, pods, seed, interval_s, measure_s, -1);
}

/* The 3 x 6 grid of the paper's campaign, measured once for all tests:
 * request-weighted means on long dwells (longest where the effects are
 * smallest), and the dataset's 20 ms column at 200 and 600 users on 4-6
 * pods, the regimes of the paper's Tables VI and VII. */
static regime grid[3][7];
static regime dataset[3][7];
static regime dataset_tick[3][7]; /* the same with one-window gauges (--avg-window 0) */
static regime unbounded600[3]; /* 600 users on 1-2 pods, no admission bound */
static const int grid_users[3] = { 200, 400, 600 };
static const double grid_dwell_s[3] = { 7200.0, 2400.0, 1200.0 };
#define DATASET_DWELL_S 900.0

static int grid_setup(void **state)
{
    (void)state;
    for (int u = 0; u < 3; u++)
        for (int pods = 1; pods <= 6; pods++)
            grid[u][pods] = measure(grid_users[u], pods, 42, 1.0, grid_dwell_s[u]);
    for (int u = 0; u < 3; u += 2)
        for (int pods = 4; pods <= 6; pods++)
            dataset[u][pods] = measure(grid_users[u], pods, 42, 0.020, DATASET_DWELL_S);
    avg_window_s = 0;
    for (int u = 0; u < 3; u += 2)
        for (int pods = 4; pods <= 6; pods++)
            dataset_tick[u][pods] = measure(grid_users[u], pods, 42, 0.020, DATASET_DWELL_S);
    avg_window_s = -1;
    for (int pods = 1; pods <= 2; pods++)
        unbounded600[pods] = measure_bounded(600, pods, 42, 1.0, grid_dwell_s[2], 0);
    return 0;
}

static void latency_falls_with_pods(void **state)
{
    (void)state;
    /* Strictly, at every step and every load: each pod more takes work
     * off the others (random balancing: per-pod utilisation falls as 1/N). */
    for (int u = 0; u < 3; u++)
        for (int pods = 1; pods < 6; pods++)
            assert_true(grid[u][pods].latency_ms > grid[u][pods + 1].latency_ms);
    /* ... by more than noise: the smallest step (200 users, 5 -> 6) is a
     * ~1.3 ms gain whose standard error over 2 h is ~0.1 ms. */
    assert_true(grid[0][5].latency_ms - grid[0][6].latency_ms > 0.5);
}

static void latency_rises_with_users(void **state)
{
    (void)state;
    for (int pods = 1; pods <= 6; pods++) {
        assert_true(grid[0][pods].latency_ms < grid[1][pods].latency_ms);
        assert_true(grid[1][pods].latency_ms < grid[2][pods].latency_ms);
    }
}

static void diminishing_returns(void **state)
{
    (void)state;
    /* Each pod more gains less than the one before, at every load, once
     * the step before starts below the admission bound (>= 1 pod at 200
     * users, 2 at 400, 3 at 600).  Between two regimes at the bound the
     * latency of answered requests is capped by the queue: the capacity a
     * pod adds shows as fewer refusals instead (below). */
    for (int u = 0; u < 3; u++)
        for (int pods = u + 2; pods < 6; pods++) {
            double before = grid[u][pods - 1].latency_ms - grid[u][pods].latency_ms;
            double gain = grid[u][pods].latency_ms - grid[u][pods + 1].latency_ms;
            assert_true(gain < before);
        }
    for (int pods = 1; pods < 3; pods++)
        assert_true(grid[2][pods + 1].rejected < 0.8 * grid[2][pods].rejected);
    for (int pods = 1; pods < 6; pods++)
        assert_true(unbounded600[1].latency_ms - unbounded600[2].latency_ms >
                    grid[2][pods].latency_ms - grid[2][pods + 1].latency_ms);
}

static void saturation_with_few_pods(void **state)
{
    (void)state;
    testbed_params p;
    testbed_params_default(&p);
    for (int pods = 1; pods <= 2; pods++) {
        const regime *r = &unbounded600[pods];
        /* Without an admission bound, 600 users on 1-2 pods: every pod busy
         * all the time (each alone on its worker, at full speed), so
         * throughput sits at capacity ... */
        double capacity = pods / p.service_mean_s;
        assert_true(r->throughput > 0.97 * capacity && r->throughput < 1.03 * capacity);
        /* ... and the closed loop's asymptote sets latency: R = N / X - Z,
         * hundreds of ms at least (seconds here). */
        double asymptote_ms = 1000.0 * (600.0 / r->throughput - p.think_mean_s);
        assert_true(fabs(r->latency_ms - asymptote_ms) < 0.05 * asymptote_ms);
        assert_true(r->latency_ms > 500.0);
        assert_true(r->depth > 20.0);
        assert_true(r->rejected == 0);
        /* With the default bound: still at capacity, but the queue stops at
         * the bound, answered requests wait for at most max_queue + 1
         * ahead of them, and the surplus is refused. */
        const regime *b = &grid[2][pods];
        assert_true(b->throughput > 0.97 * capacity && b->throughput < 1.03 * capacity);
        assert_true(b->depth > 0.8 * p.max_queue && b->depth <= p.max_queue + 1);
        assert_true(b->latency_ms > 0.8 * p.max_queue * 1000.0 * p.service_mean_s);
        assert_true(b->latency_ms < 1.1 * (p.max_queue + 2) * 1000.0 * p.service_mean_s);
        assert_true(b->rejected > 0.2);
    }
    /* 4-6 pods almost never reach the bound. */
    for (int pods = 4; pods <= 6; pods++)
        assert_true(grid[2][pods].rejected < 0.01);
    /* Three pods are not saturated: far below two, above four. */
    assert_true(grid[2][3].throughput < 0.95 * 3 / p.service_mean_s);
    assert_true(grid[2][3].latency_ms < 0.5 * grid[2][2].latency_ms);
    assert_true(grid[2][3].latency_ms < 0.2 * unbounded600[2].latency_ms);
    assert_true(grid[2][3].rejected < 0.05);
    /* "several times": one pod under 600 users is far beyond six pods. */
    assert_true(grid[2][1].latency_ms > 8.0 * grid[2][6].latency_ms);
    assert_true(unbounded600[1].latency_ms > 20.0 * grid[2][6].latency_ms);
}

static void paper_deltas_at_600_users(void **state)
{
    (void)state;
    /* The dataset's column (20 ms windows) at 600 users on 4-6 pods: tens
     * of ms, and Table VII's order of magnitude for the what-if deltas
     * (pods +1: -13 ms; users 600 -> 200: -20 ms in the paper). */
    const regime *hi = dataset[2], *lo = dataset[0];
    for (int pods = 4; pods <= 6; pods++)
        assert_true(hi[pods].sample_ms > 40.0 && hi[pods].sample_ms < 120.0);
    assert_true(hi[4].sample_ms > hi[5].sample_ms && hi[5].sample_ms > hi[6].sample_ms);
    assert_true(hi[4].sample_ms - hi[5].sample_ms > hi[5].sample_ms - hi[6].sample_ms);
    double pods_plus_one = (hi[6].sample_ms - hi[4].sample_ms) / 2;
    assert_true(pods_plus_one < -10.0 && pods_plus_one > -30.0);
    double users_to_200 = 0;
    for (int pods = 4; pods <= 6; pods++)
        users_to_200 += (lo[pods].sample_ms - hi[pods].sample_ms) / 3;
    assert_true(users_to_200 < -15.0 && users_to_200 > -40.0);
}

static void samples_vary_like_measurements(void **state)
{
    (void)state;
    /* With one-window gauges a 20 ms sample is a handful of requests: it
     * scatters around its regime's mean by 10-20 ms at moderate load, more
     * as load grows. */
    const regime (*tick)[7] = dataset_tick;
    assert_true(tick[0][4].sample_sd_ms > 8.0 && tick[0][4].sample_sd_ms < 25.0);
    assert_true(tick[2][6].sample_sd_ms > 10.0 && tick[2][6].sample_sd_ms < 30.0);
    assert_true(tick[2][4].sample_sd_ms > tick[2][6].sample_sd_ms);
    assert_true(tick[2][6].sample_sd_ms > tick[0][6].sample_sd_ms);
    /* The default 5 s window averages ~100-300 requests per pod: the same
     * regimes scatter 2-3 times less, still more under more load, and
     * around the request-weighted mean users see (one-window gauges sit
     * 10-20% below it: every quiet window counts as much as a busy one,
     * and busy windows are the slow ones). */
    for (int u = 0; u < 3; u += 2)
        for (int pods = 4; pods <= 6; pods++) {
            assert_true(dataset[u][pods].sample_sd_ms < 0.5 * tick[u][pods].sample_sd_ms);
            assert_true(dataset[u][pods].sample_sd_ms > 0.5);
            assert_true(fabs(dataset[u][pods].sample_ms - grid[u][pods].latency_ms) <
                        0.06 * grid[u][pods].latency_ms);
            assert_true(tick[u][pods].sample_ms < 0.95 * grid[u][pods].latency_ms);
        }
    assert_true(dataset[2][4].sample_sd_ms > dataset[0][4].sample_sd_ms);
}

static void telemetry_tracks_latency(void **state)
{
    (void)state;
    /* Queue depth, backlog and process CPU order like latency along the
     * pods axis at every load (less work per pod, shorter queues). */
    for (int u = 0; u < 3; u++)
        for (int pods = 1; pods < 6; pods++) {
            assert_true(grid[u][pods].depth > grid[u][pods + 1].depth);
            assert_true(grid[u][pods].backlog_s > grid[u][pods + 1].backlog_s);
            assert_true(grid[u][pods].cpu_process > grid[u][pods + 1].cpu_process);
        }
    /* Node CPU rises with users: more work on the same workers (at 1 pod,
     * 400 and 600 users both keep its three threads busy all the time). */
    for (int pods = 2; pods <= 6; pods++) {
        assert_true(grid[0][pods].cpu_system < grid[1][pods].cpu_system);
        assert_true(grid[1][pods].cpu_system < grid[2][pods].cpu_system);
    }
    /* Backlog correlates with latency over the whole grid (on the
     * log scale, so the saturated regimes do not decide it alone). */
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    int n = 0;
    for (int u = 0; u < 3; u++)
        for (int pods = 1; pods <= 6; pods++, n++) {
            double x = log(grid[u][pods].latency_ms), y = log(grid[u][pods].backlog_s);
            sx += x; sy += y; sxx += x * x; syy += y * y; sxy += x * y;
        }
    double r = (n * sxy - sx * sy) / sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
    assert_true(r > 0.95);
}

typedef struct trace {
    double t[4000];
    double ms[4000];
    int n;
} trace;

static void record(void *ctx, const testbed_sample *s)
{
    trace *tr = ctx;
    if (tr->n < 4000) {
        tr->t[tr->n] = s->t;
        tr->ms[tr->n++] = s->avg_total_infer_ms;
    }
}

static double trace_mean(const trace *tr, double from, double to)
{
    double sum = 0;
    int n = 0;
    for (int i = 0; i < tr->n; i++)
        if (tr->t[i] > from && tr->t[i] <= to) {
            sum += tr->ms[i];
            n++;
        }
    return n ? sum / n : NAN;
}

typedef struct depth_trace {
    double t0;
    double depth[30];
    int n[30];
} depth_trace;

static void record_depth(void *ctx, const testbed_sample *s)
{
    depth_trace *tr = ctx;
    int second = (int)(s->t - tr->t0);
    if (second >= 0 && second < 30) {
        tr->depth[second] += s->avg_depth_on_enqueue;
        tr->n[second]++;
    }
}

static double depth_mean(const depth_trace *tr, int from, int to)
{
    double sum = 0;
    int n = 0;
    for (int i = from; i < to; i++) {
        sum += tr->depth[i];
        n += tr->n[i];
    }
    return sum / n;
}

static double steady_ms(testbed_sim *sim, double from, double to)
{
    testbed_totals a, b;
    testbed_sim_advance(sim, from);
    testbed_sim_totals(sim, &a);
    testbed_sim_advance(sim, to);
    testbed_sim_totals(sim, &b);
    return 1000.0 * (b.response_sum_s - a.response_sum_s) / (double)(b.completed - a.completed);
}

typedef struct tick_trace {
    double ms[3000];
    uint64_t done[3000];
    int n;
} tick_trace;

static void record_ticks(void *ctx, const testbed_sample *s)
{
    tick_trace *tr = ctx;
    if (tr->n < 3000) {
        tr->ms[tr->n] = s->avg_total_infer_ms;
        tr->done[tr->n++] = s->completed;
    }
}

static void averaging_window_is_the_last_requests(void **state)
{
    (void)state;
    /* One pod, light load (many 20 ms windows without a completion): the
     * window only changes what the gauges report, not the events, so the
     * same seed with one-window gauges gives every window's requests.
     * The 1 s gauge must be their request-weighted mean over the last 50
     * windows, and keep its value while no request completed in them. */
    tick_trace *one = calloc(1, sizeof(*one)), *avg = calloc(1, sizeof(*avg));
    assert_non_null(one);
    assert_non_null(avg);
    avg_window_s = 0;
    testbed_sim *a = new_sim_every(20, 1, 11, 0.020);
    avg_window_s = 1.0;
    testbed_sim *b = new_sim_every(20, 1, 11, 0.020);
    avg_window_s = -1;
    testbed_sim_on_sample(a, record_ticks, one);
    testbed_sim_on_sample(b, record_ticks, avg);
    testbed_sim_advance(a, 60);
    testbed_sim_advance(b, 60);
    assert_int_equal(one->n, 3000);
    assert_int_equal(avg->n, 3000);
    int checked = 0, carried = 0;
    double last = 0;
    for (int i = 0; i < 3000; i++) {
        assert_true(one->done[i] == avg->done[i]);
        double sum = 0;
        uint64_t n = 0;
        for (int j = i - 49 < 0 ? 0 : i - 49; j <= i; j++) {
            sum += one->ms[j] * (double)one->done[j];
            n += one->done[j];
        }
        double want = n ? sum / (double)n : last;
        assert_true(fabs(avg->ms[i] - want) < 1e-4); /* ns-rounded sums */
        checked += n > 0;
        carried += n == 0 && i > 0;
        last = want;
    }
    /* Both cases occurred: averages over several requests, and quiet
     * seconds that kept the previous value. */
    assert_true(checked > 2000);
    assert_true(carried > 0);
    testbed_sim_destroy(a);
    testbed_sim_destroy(b);
    free(one);
    free(avg);

    /* More history than a pod keeps is refused. */
    testbed_params p;
    testbed_params_default(&p);
    p.avg_window_s = (TESTBED_MAX_AVG_TICKS + 1) * p.sample_interval_s;
    testbed_sim *sim = NULL;
    char err[256];
    assert_int_equal(testbed_sim_create(&p, &sim, err, sizeof(err)), NDT_ERROR);
    assert_null(sim);
    assert_non_null(strstr(err, "averaging window"));
}

static void transient_after_a_change(void **state)
{
    (void)state;
    char err[256];
    testbed_params p;
    testbed_params_default(&p);
    trace *tr = calloc(1, sizeof(*tr));
    assert_non_null(tr);

    /* Users jump 200 -> 600 on 6 pods: the load generator's new users send
     * at once (a burst the pods queue up), then the load settles. */
    testbed_sim *sim = new_sim(200, 6, 7);
    testbed_sim_advance(sim, 60);
    assert_int_equal(testbed_sim_set_users(sim, 600, err, sizeof(err)), 0);
    testbed_sim_on_sample(sim, record, tr);
    testbed_sim_advance(sim, 60 + 5);
    double early = trace_mean(tr, 61, 65);
    testbed_sim_on_sample(sim, NULL, NULL);
    assert_true(early > 2.0 * steady_ms(sim, 150, 450));
    testbed_sim_destroy(sim);

    /* Scale-up 2 -> 4 pods at 600 users: nothing changes until the new
     * pods are ready, then the backlog built on two pods drains. */
    sim = new_sim(600, 2, 7);
    testbed_sim_advance(sim, 120);
    assert_int_equal(testbed_sim_set_pods(sim, 4, err, sizeof(err)), 0);
    tr->n = 0;
    testbed_sim_on_sample(sim, record, tr);
    double settle = p.startup_delay_s + p.startup_jitter_s + 10;
    testbed_sim_advance(sim, 120 + settle);
    double after = trace_mean(tr, 120, 120 + settle);
    testbed_sim_on_sample(sim, NULL, NULL);
    /* The backlog is capped by the admission bound (16 per pod: ~0.5 s),
     * so the transient is several times the steady state, not tens. */
    assert_true(after > 3.0 * steady_ms(sim, 250, 550));
    testbed_sim_destroy(sim);
    free(tr);

    /* Scale-down 3 -> 1 pod at 600 users without an admission bound:
     * saturation, and the backlog grows for tens of seconds until the
     * closed loop's asymptote. */
    depth_trace *dt = calloc(1, sizeof(*dt));
    assert_non_null(dt);
    sim = new_sim_bounded(600, 3, 7, 0.020, 0);
    testbed_sim_advance(sim, 120);
    assert_int_equal(testbed_sim_set_pods(sim, 1, err, sizeof(err)), 0);
    dt->t0 = 120;
    testbed_sim_on_sample(sim, record_depth, dt);
    testbed_sim_advance(sim, 150);
    double d0 = depth_mean(dt, 0, 2), d1 = depth_mean(dt, 5, 10), d2 = depth_mean(dt, 20, 30);
    assert_true(d0 < 0.5 * d1 && d1 < 0.8 * d2);
    testbed_sim_destroy(sim);
    /* With the bound the queue fills to it within seconds and stays. */
    memset(dt, 0, sizeof(*dt));
    sim = new_sim(600, 3, 7);
    testbed_sim_advance(sim, 120);
    assert_int_equal(testbed_sim_set_pods(sim, 1, err, sizeof(err)), 0);
    dt->t0 = 120;
    testbed_sim_on_sample(sim, record_depth, dt);
    testbed_sim_advance(sim, 150);
    d1 = depth_mean(dt, 3, 10);
    d2 = depth_mean(dt, 20, 30);
    assert_true(d1 > 0.8 * p.max_queue && d2 > 0.8 * p.max_queue && d2 <= p.max_queue + 1);
    testbed_sim_destroy(sim);
    free(dt);
}

static void cold_start_slows_new_pods(void **state)
{
    (void)state;
    char err[256];
    testbed_sim *sim = new_sim(400, 1, 11);
    testbed_sim_advance(sim, 30);
    assert_int_equal(testbed_sim_set_pods(sim, 6, err, sizeof(err)), 0);
    /* Per new pod: its first 3 s after ready (cold) against the next 60 s. */
    double snap_sum[TESTBED_MAX_PODS] = { 0 };
    uint64_t snap_n[TESTBED_MAX_PODS] = { 0 };
    int snapped[TESTBED_MAX_PODS] = { 0 };
    for (double t = 30; t < 110; t += 0.05) {
        testbed_sim_advance(sim, t);
        for (int i = 0; i < TESTBED_MAX_PODS; i++) {
            const testbed_pod *pod = &sim->pods_arr[i];
            if (pod->state == TESTBED_POD_READY && pod->ready_at > 0 && !snapped[i] &&
                t >= pod->ready_at + 3.0) {
                snapped[i] = 1;
                snap_sum[i] = pod->infer_sum_s;
                snap_n[i] = pod->requests_total;
            }
        }
    }
    double cold_sum = 0, late_sum = 0;
    uint64_t cold_n = 0, late_n = 0;
    int pods = 0;
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        if (!snapped[i])
            continue;
        const testbed_pod *pod = &sim->pods_arr[i];
        pods++;
        cold_sum += snap_sum[i];
        cold_n += snap_n[i];
        late_sum += pod->infer_sum_s - snap_sum[i];
        late_n += pod->requests_total - snap_n[i];
    }
    testbed_sim_destroy(sim);
    assert_int_equal(pods, 5);
    assert_true(cold_n > 20 && late_n > 500);
    assert_true(cold_sum / cold_n > 1.5 * (late_sum / late_n));
}

static void littles_law_and_conservation(void **state)
{
    (void)state;
    const int cases[][2] = { { 600, 1 }, { 400, 2 }, { 600, 6 } };
    for (size_t c = 0; c < 3; c++) {
        testbed_sim *sim = new_sim(cases[c][0], cases[c][1], 5);
        testbed_totals a, b;
        testbed_sim_advance(sim, 100);
        testbed_sim_totals(sim, &a);
        testbed_sim_advance(sim, 700);
        testbed_sim_totals(sim, &b);
        double T = b.t - a.t;
        double L = (b.in_system_area - a.in_system_area) / T;
        double lambda = (double)(b.completed - a.completed) / T;
        double W = (b.response_sum_s - a.response_sum_s) / (double)(b.completed - a.completed);
        assert_true(fabs(L - lambda * W) <= 0.05 * L + 0.01);
        /* Closed loop: users = thinking + in the service; every refusal
         * is the admission bound's (a pod is always ready here). */
        assert_int_equal(b.sent, b.completed + b.rejected + b.in_system);
        assert_int_equal((uint64_t)b.waiting, b.in_system);
        assert_int_equal(b.thinking + b.waiting, cases[c][0]);
        assert_int_equal(b.rejected, b.rejected_full);
        /* Interactive response time law, N = X (R + Z), with refused
         * requests cycling through think time only: N = X R + X_sent Z. */
        testbed_params p;
        testbed_params_default(&p);
        double sent_rate = (double)(b.sent - a.sent) / T;
        double n_est = lambda * W + sent_rate * p.think_mean_s;
        assert_true(fabs(n_est - cases[c][0]) < 0.06 * cases[c][0]);
        testbed_sim_destroy(sim);
    }
}

static void users_leave_and_requests_are_conserved(void **state)
{
    (void)state;
    char err[256];
    testbed_sim *sim = new_sim(600, 2, 3);
    testbed_sim_advance(sim, 30);
    assert_int_equal(testbed_sim_set_users(sim, 100, err, sizeof(err)), 0);
    assert_int_equal(testbed_sim_set_pods(sim, 1, err, sizeof(err)), 0);
    testbed_sim_advance(sim, 200);
    testbed_totals t;
    testbed_sim_totals(sim, &t);
    assert_int_equal(t.sent, t.completed + t.rejected + t.in_system);
    assert_int_equal(t.thinking + t.waiting, 100);
    assert_int_equal(testbed_cluster_ready_pods(sim), 1);
    assert_int_equal(testbed_cluster_active_pods(sim), 1);
    /* Back up: the users who left come back. */
    assert_int_equal(testbed_sim_set_users(sim, 300, err, sizeof(err)), 0);
    testbed_sim_advance(sim, 300);
    testbed_sim_totals(sim, &t);
    assert_int_equal(t.thinking + t.waiting, 300);
    assert_int_equal(t.sent, t.completed + t.rejected + t.in_system);
    testbed_sim_destroy(sim);
}

static void scale_up_waits_for_startup(void **state)
{
    (void)state;
    char err[256];
    testbed_params p;
    testbed_params_default(&p);
    testbed_sim *sim = new_sim(200, 1, 9);
    testbed_sim_advance(sim, 10);
    assert_int_equal(testbed_sim_set_pods(sim, 4, err, sizeof(err)), 0);
    assert_int_equal(testbed_cluster_active_pods(sim), 4);
    testbed_sim_advance(sim, 10 + p.startup_delay_s - 0.01);
    assert_int_equal(testbed_cluster_ready_pods(sim), 1);
    testbed_sim_advance(sim, 10 + p.startup_delay_s + p.startup_jitter_s + 0.01);
    assert_int_equal(testbed_cluster_ready_pods(sim), 4);
    /* Spread over both workers, never on the tainted control plane. */
    int per_node[TESTBED_NODES] = { 0 };
    for (int i = 0; i < TESTBED_MAX_PODS; i++)
        if (sim->pods_arr[i].state == TESTBED_POD_READY)
            per_node[sim->pods_arr[i].node]++;
    assert_int_equal(per_node[0], 0);
    assert_int_equal(per_node[1], 2);
    assert_int_equal(per_node[2], 2);
    /* Out of range changes nothing. */
    assert_int_equal(testbed_sim_set_pods(sim, 0, err, sizeof(err)), -1);
    assert_int_equal(testbed_sim_set_pods(sim, TESTBED_MAX_PODS + 1, err, sizeof(err)), -1);
    assert_int_equal(testbed_sim_set_users(sim, -1, err, sizeof(err)), -1);
    assert_int_equal(testbed_sim_pods(sim), 4);
    assert_int_equal(testbed_sim_users(sim), 200);
    testbed_sim_destroy(sim);
}

typedef struct sample_log {
    testbed_sample s[600];
    int n;
} sample_log;

static void keep(void *ctx, const testbed_sample *s)
{
    sample_log *log = ctx;
    if (log->n < 600)
        log->s[log->n++] = *s;
}

static void same_seed_same_run(void **state)
{
    (void)state;
    sample_log *a = calloc(3, sizeof(*a));
    assert_non_null(a);
    uint64_t seeds[3] = { 77, 77, 78 };
    for (int k = 0; k < 3; k++) {
        testbed_sim *sim = new_sim(400, 2, seeds[k]);
        testbed_sim_on_sample(sim, keep, &a[k]);
        testbed_sim_advance(sim, 12.0);
        testbed_sim_destroy(sim);
    }
    assert_int_equal(a[0].n, 600);
    assert_memory_equal(a[0].s, a[1].s, sizeof(a[0].s));
    assert_true(memcmp(a[0].s, a[2].s, sizeof(a[0].s)) != 0);
    free(a);
}

static void control_validates_before_applying(void **state)
{
    (void)state;
    char err[256];
    testbed_sim *sim = new_sim(200, 2, 1);
    const char *bad[] = {
        "",   "{", "[]", "{}", "{\"users\":-1}", "{\"pods\":0}", "{\"pods\":33}",
        "{\"users\":20001}", "{\"users\":1.5}", "{\"users\":\"5\"}", "{\"replicas\":3}",
        "{\"users\":300,\"pods\":99}", "{\"users\":300,\"color\":1}", "{\"users\":1}x",
        "{\"users\":1e300}", "{\"pods\":2,\"pods\":3}", "null",
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_int_equal(testbed_control_apply(sim, bad[i], strlen(bad[i]), err, sizeof(err)), -1);
        assert_true(strlen(err) > 5);
        assert_int_equal(testbed_sim_users(sim), 200);
        assert_int_equal(testbed_sim_pods(sim), 2);
    }
    const char *good = "{\"users\":450,\"pods\":3}";
    assert_int_equal(testbed_control_apply(sim, good, strlen(good), err, sizeof(err)), 0);
    assert_int_equal(testbed_sim_users(sim), 450);
    assert_int_equal(testbed_sim_pods(sim), 3);
    const char *one = " { \"pods\" : 1 } ";
    assert_int_equal(testbed_control_apply(sim, one, strlen(one), err, sizeof(err)), 0);
    assert_int_equal(testbed_sim_users(sim), 450);
    assert_int_equal(testbed_sim_pods(sim), 1);
    testbed_sim_destroy(sim);
}

/* Sums a family's samples in an exposition (lines "name{...} value"). */
static double sum_family(const char *text, const char *name)
{
    double sum = 0;
    size_t len = strlen(name);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, name, len) == 0 && (line[len] == '{' || line[len] == ' ')) {
            const char *sp = strchr(line, ' ');
            const char *brace = strchr(line, '}');
            const char *nl = strchr(line, '\n');
            if (brace && (!nl || brace < nl))
                sp = brace + 1;
            sum += strtod(sp, NULL);
        }
    }
    return sum;
}

static void exposition_counts_what_the_model_did(void **state)
{
    (void)state;
    testbed_sim *sim = new_sim(400, 3, 4);
    testbed_sim_advance(sim, 90.0);
    ndt_buf b;
    ndt_buf_init(&b, 8u << 20);
    assert_int_equal(testbed_expo_render(sim, &b), 0);
    assert_int_equal(ndt_buf_terminate(&b), 0);
    testbed_totals t;
    testbed_sim_totals(sim, &t);
    assert_true(t.completed > 1000);
    assert_true(fabs(sum_family(b.data, "inference_requests_total") - (double)t.completed) < 0.5);
    assert_true(fabs(sum_family(b.data, "inference_total_infer_seconds_count") - (double)t.completed) < 0.5);
    assert_true(fabs(sum_family(b.data, "inference_total_infer_seconds_sum") - t.response_sum_s) < 1e-6 * t.response_sum_s);
    assert_true(fabs(sum_family(b.data, "inference_queue_depth") - (double)t.in_system) < 0.5);
    assert_true(sum_family(b.data, "kube_deployment_status_replicas_available") == 3);
    assert_true(sum_family(b.data, "inference_current_users") == 400);
    /* cAdvisor CPU: busy time of 3 pods over 90 s, bounded by their threads. */
    testbed_params p;
    testbed_params_default(&p);
    double cpu = sum_family(b.data, "container_cpu_usage_seconds_total");
    assert_true(cpu > 0 && cpu < 3 * p.inference_threads * 90.0);
    /* The pod's CPU limit is its thread count, in KSM and cAdvisor alike. */
    char limit[64];
    snprintf(limit, sizeof(limit), "resource=\"cpu\",unit=\"core\"} %d\n", p.inference_threads);
    assert_non_null(strstr(b.data, limit));
    assert_true(sum_family(b.data, "container_spec_cpu_quota") ==
                3 * 100000.0 * p.inference_threads);
    /* node-exporter: each node's CPU seconds add up to cores x uptime. */
    double node_cpu = sum_family(b.data, "node_cpu_seconds_total");
    assert_true(fabs(node_cpu - (4 + 8 + 8) * (3 * 86400.0 + 90.0)) < 1.0);
    assert_non_null(strstr(b.data, "# TYPE inference_total_infer_seconds histogram\n"));
    assert_non_null(strstr(b.data, "# TYPE kube_pod_info gauge\n"));
    assert_non_null(strstr(b.data, "# TYPE node_memory_MemAvailable_bytes gauge\n"));
    ndt_buf_free(&b);
    testbed_sim_destroy(sim);

    /* 600 users on one pod fill its queue: refusals counted per pod, the
     * bound exposed, and the counters match the model's totals. */
    sim = new_sim(600, 1, 4);
    testbed_sim_advance(sim, 30.0);
    ndt_buf_init(&b, 8u << 20);
    assert_int_equal(testbed_expo_render(sim, &b), 0);
    assert_int_equal(ndt_buf_terminate(&b), 0);
    testbed_sim_totals(sim, &t);
    assert_true(t.rejected_full > 100);
    assert_true(fabs(sum_family(b.data, "inference_requests_rejected_total") -
                     (double)t.rejected_full) < 0.5);
    assert_true(sum_family(b.data, "inference_max_queue_size") == p.max_queue);
    assert_non_null(strstr(b.data, "reason=\"queue_full\"} "));
    assert_non_null(strstr(b.data, "# TYPE inference_requests_rejected_total counter\n"));
    ndt_buf_free(&b);
    testbed_sim_destroy(sim);
}

static char *run_campaign(uint64_t seed, size_t *len, testbed_regime_result *res)
{
    testbed_campaign c = { .users = { 200, 600 }, .nusers = 2, .pods_min = 1, .pods_max = 3,
                           .dwell_s = 20.0, .interval_s = 0.02, .epoch_ms = 1767225600000.0 };
    testbed_params_default(&c.params);
    c.params.seed = seed;
    char *data = NULL;
    FILE *out = open_memstream(&data, len);
    char err[256];
    assert_non_null(out);
    assert_int_equal(testbed_campaign_run(&c, out, res, err, sizeof(err)), 0);
    fclose(out);
    return data;
}

static void campaign_is_deterministic(void **state)
{
    (void)state;
    size_t la, lb, lc;
    testbed_regime_result res[6];
    char *a = run_campaign(9, &la, res);
    char *b = run_campaign(9, &lb, NULL);
    char *c = run_campaign(10, &lc, NULL);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_true(la != lc || memcmp(a, c, la) != 0);
    const char *header = "timestamp_ms,users,pods,avg_depth_on_enqueue,avg_backlog_sec_est,"
                         "avg_cpu_process_pct,avg_cpu_system_pct,avg_mem_system_pct,avg_total_infer_ms";
    assert_memory_equal(a, header, strlen(header));
    long rows = -1;
    for (const char *p = a; *p; p++)
        rows += *p == '\n';
    assert_int_equal(rows, 6 * 1000); /* 6 regimes x 20 s / 20 ms */
    assert_int_equal(res[3].users, 600);
    assert_int_equal(res[3].pods, 1);
    assert_true(res[3].mean_infer_ms > res[5].mean_infer_ms);
    free(a);
    free(b);
    free(c);
}

static void campaign_refuses_bad_plans(void **state)
{
    (void)state;
    char err[256];
    testbed_campaign c = { .nusers = 0, .pods_min = 1, .pods_max = 6, .dwell_s = 1, .interval_s = 0.02 };
    testbed_params_default(&c.params);
    assert_int_equal(testbed_campaign_run(&c, stdout, NULL, err, sizeof(err)), -1);
    c.nusers = 1;
    c.users[0] = 200;
    c.dwell_s = 0;
    assert_int_equal(testbed_campaign_run(&c, stdout, NULL, err, sizeof(err)), -1);
    c.dwell_s = 1;
    c.pods_min = 4;
    c.pods_max = 2;
    assert_int_equal(testbed_campaign_run(&c, stdout, NULL, err, sizeof(err)), -1);
}

static void parses_durations_lists_ranges(void **state)
{
    (void)state;
    char err[256];
    double s;
    assert_int_equal(testbed_parse_duration("20ms", &s, err, sizeof(err)), 0);
    assert_true(fabs(s - 0.02) < 1e-12);
    assert_int_equal(testbed_parse_duration("1m30s", &s, err, sizeof(err)), 0);
    assert_true(s == 90.0);
    assert_int_equal(testbed_parse_duration("2h", &s, err, sizeof(err)), 0);
    assert_true(s == 7200.0);
    assert_int_equal(testbed_parse_duration("1s500ms", &s, err, sizeof(err)), 0);
    assert_true(s == 1.5);
    const char *bad[] = { "", "20", "ms", "20 ms", "1.5s", "-1s", "30s1m", "1x", "1s1s", "10msx" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(bad); i++)
        assert_int_equal(testbed_parse_duration(bad[i], &s, err, sizeof(err)), -1);
    int v[16], lo, hi;
    size_t n;
    assert_int_equal(testbed_parse_int_list("200,400,600", v, 16, &n, 0, 20000, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[2], 600);
    const char *bad_lists[] = { "", ",", "200,", "200,,400", "a", "-5", "20001", "1 2" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(bad_lists); i++)
        assert_int_equal(testbed_parse_int_list(bad_lists[i], v, 16, &n, 0, 20000, err, sizeof(err)), -1);
    assert_int_equal(testbed_parse_range("1-6", &lo, &hi, 1, 32, err, sizeof(err)), 0);
    assert_true(lo == 1 && hi == 6);
    assert_int_equal(testbed_parse_range("4", &lo, &hi, 1, 32, err, sizeof(err)), 0);
    assert_true(lo == 4 && hi == 4);
    const char *bad_ranges[] = { "", "0-3", "3-1", "1-33", "1-", "-3", "a-b", "1-2-3" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(bad_ranges); i++)
        assert_int_equal(testbed_parse_range(bad_ranges[i], &lo, &hi, 1, 32, err, sizeof(err)), -1);
}

static void rng_is_seeded_and_distributions_fit(void **state)
{
    (void)state;
    testbed_rng a, b;
    testbed_rng_seed(&a, 123);
    testbed_rng_seed(&b, 123);
    for (int i = 0; i < 100; i++)
        assert_true(testbed_rng_next(&a) == testbed_rng_next(&b));
    double se = 0, sl = 0, sl2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = testbed_rng_uniform(&a);
        assert_true(u >= 0 && u < 1);
        se += testbed_rng_exponential(&a, 2.0);
        double l = testbed_rng_lognormal(&a, 0.03, 0.8);
        sl += l;
        sl2 += l * l;
    }
    double mean_l = sl / n, sd_l = sqrt(sl2 / n - mean_l * mean_l);
    assert_true(fabs(se / n - 2.0) < 0.03);
    assert_true(fabs(mean_l - 0.03) < 0.0005);
    assert_true(fabs(sd_l / mean_l - 0.8) < 0.05);
}

static void heap_pops_in_time_then_insertion_order(void **state)
{
    (void)state;
    testbed_heap h;
    assert_int_equal(testbed_heap_init(&h, 8), 0);
    const double t[] = { 5, 1, 3, 1, 9, 3, 0.5, 1 };
    for (int i = 0; i < 8; i++)
        assert_int_equal(testbed_heap_push(&h, t[i], i), 0);
    assert_int_equal(testbed_heap_push(&h, 1, 99), -1); /* full: bounded */
    const int expect[] = { 6, 1, 3, 7, 2, 5, 0, 4 };
    for (int i = 0; i < 8; i++) {
        assert_int_equal(testbed_heap_peek(&h)->user, expect[i]);
        testbed_heap_pop(&h);
    }
    assert_null(testbed_heap_peek(&h));
    testbed_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(rng_is_seeded_and_distributions_fit),
        cmocka_unit_test(heap_pops_in_time_then_insertion_order),
        cmocka_unit_test(parses_durations_lists_ranges),
        cmocka_unit_test(same_seed_same_run),
        cmocka_unit_test(scale_up_waits_for_startup),
        cmocka_unit_test(users_leave_and_requests_are_conserved),
        cmocka_unit_test(littles_law_and_conservation),
        cmocka_unit_test(averaging_window_is_the_last_requests),
        cmocka_unit_test(transient_after_a_change),
        cmocka_unit_test(cold_start_slows_new_pods),
        cmocka_unit_test(control_validates_before_applying),
        cmocka_unit_test(exposition_counts_what_the_model_did),
        cmocka_unit_test(campaign_is_deterministic),
        cmocka_unit_test(campaign_refuses_bad_plans),
    };
    const struct CMUnitTest physics[] = {
        cmocka_unit_test(latency_falls_with_pods),
        cmocka_unit_test(latency_rises_with_users),
        cmocka_unit_test(diminishing_returns),
        cmocka_unit_test(saturation_with_few_pods),
        cmocka_unit_test(paper_deltas_at_600_users),
        cmocka_unit_test(samples_vary_like_measurements),
        cmocka_unit_test(telemetry_tracks_latency),
    };
    int failed = cmocka_run_group_tests_name("testbed", unit, NULL, NULL);
    failed += cmocka_run_group_tests_name("testbed physics", physics, grid_setup, NULL);
    return failed;
}
