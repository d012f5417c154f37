/*
 * test_whatif.c: the counterfactual engine (models/model_whatif.c).
 * It refuses changes that cannot exist, returns the current state for a
 * change to the current configuration, moves every load column the way
 * queueing physics says, respects the closed loop's saturation bound, and
 * predicts the raw state the emulated testbed actually shows after a
 * change (the strongest check: a real closed-loop simulation, not MVA's
 * own assumptions: lognormal work, CPU contention, random balancing).
 * The API's split engine (fit once per state, apply per change) gives
 * the one-call engine's bits, against a frozen copy of the latter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/models.h"
#include "testbed/testbed.h"

static char err[256];

/* 600 users on 5 pods of the testbed, means over 10 minutes. */
static const feat_raw state_600x5 = {
    .timestamp_ms = 1767225600000, .users = 600, .pods = 5, .depth = 1.045, .backlog_s = 0.0392,
    .cpu_process = 165.3, .cpu_system = 56.3, .mem_system = 18.0, .infer_ms = 70.2,
};

static void rejects_changes_that_cannot_exist(void **state)
{
    (void)state;
    feat_raw out;
    model_change no_pods = { .has_pods = 1, .pods = 0 };
    model_change no_users = { .has_users = 1, .users = 0 };
    model_change too_many = { .has_users = 1, .users = 10000000 };
    assert_int_equal(model_counterfactual(&state_600x5, &no_pods, &out, err, sizeof err), NDT_EBADCONF);
    assert_non_null(strstr(err, "at least 1 pod"));
    assert_int_equal(model_counterfactual(&state_600x5, &no_users, &out, err, sizeof err), NDT_EBADCONF);
    assert_int_equal(model_counterfactual(&state_600x5, &too_many, &out, err, sizeof err), NDT_EBADCONF);
    feat_raw bad = state_600x5;
    bad.pods = 0;
    model_change plus = { .has_pods = 1, .pods = 2 };
    assert_int_equal(model_counterfactual(&bad, &plus, &out, err, sizeof err), NDT_EBADCONF);
    bad = state_600x5;
    bad.depth = NAN;
    assert_int_equal(model_counterfactual(&bad, &plus, &out, err, sizeof err), NDT_EBADCONF);
    assert_non_null(strstr(err, "non-finite"));
}

static void no_change_returns_the_current_state(void **state)
{
    (void)state;
    feat_raw out;
    model_change same = { .has_pods = 1, .pods = 5, .has_users = 1, .users = 600 };
    assert_int_equal(model_counterfactual(&state_600x5, &same, &out, err, sizeof err), NDT_OK);
    assert_int_equal(out.users, 600);
    assert_int_equal(out.pods, 5);
    assert_true(fabs(out.depth - state_600x5.depth) < 1e-6);
    assert_true(fabs(out.backlog_s - state_600x5.backlog_s) < 1e-6);
    assert_true(fabs(out.cpu_process - state_600x5.cpu_process) < 1e-4);
    assert_true(fabs(out.cpu_system - state_600x5.cpu_system) < 1e-4);
    assert_true(fabs(out.infer_ms - state_600x5.infer_ms) < 1e-4);
}

static void columns_move_as_queueing_says(void **state)
{
    (void)state;
    feat_raw more, fewer, less_load;
    model_change plus = { .has_pods = 1, .pods = 6 };
    model_change minus = { .has_pods = 1, .pods = 4 };
    model_change users = { .has_users = 1, .users = 200 };
    assert_int_equal(model_counterfactual(&state_600x5, &plus, &more, err, sizeof err), NDT_OK);
    assert_int_equal(model_counterfactual(&state_600x5, &minus, &fewer, err, sizeof err), NDT_OK);
    assert_int_equal(model_counterfactual(&state_600x5, &users, &less_load, err, sizeof err), NDT_OK);
    assert_int_equal(more.pods, 6);
    assert_int_equal(more.users, 600);
    assert_int_equal(less_load.users, 200);
    assert_int_equal(less_load.pods, 5);
    /* One pod more: each pod queues, works and waits less ... */
    assert_true(more.depth < state_600x5.depth && fewer.depth > state_600x5.depth);
    assert_true(more.backlog_s < state_600x5.backlog_s && fewer.backlog_s > state_600x5.backlog_s);
    assert_true(more.cpu_process < state_600x5.cpu_process);
    assert_true(more.infer_ms < state_600x5.infer_ms && fewer.infer_ms > state_600x5.infer_ms);
    /* ... with diminishing returns: removing one costs more than adding one gains. */
    assert_true(fewer.infer_ms - state_600x5.infer_ms > state_600x5.infer_ms - more.infer_ms);
    /* Fewer users: less work everywhere, node CPU with the throughput. */
    assert_true(less_load.depth < more.depth);
    assert_true(less_load.cpu_system < state_600x5.cpu_system * 0.5);
    /* Memory follows the replicas (each loads its own model), not the load. */
    assert_true(fabs(more.mem_system - state_600x5.mem_system * 6 / 5) < 1e-9);
    assert_true(less_load.mem_system == state_600x5.mem_system);
    assert_true(more.timestamp_ms == state_600x5.timestamp_ms);
    /* The feature vector of a derived row: queue_delay_ms (docs/MODELS.md,
     * the rules) is MVA's queue times the fitted service time, in ms, so it
     * falls with a pod more and with fewer users, rises with a pod less,
     * while backlog_flow also divides by the changed pod count. */
    double x_now[FEAT_DIM], x_more[FEAT_DIM], x_fewer[FEAT_DIM], x_less[FEAT_DIM];
    feat_compute(&state_600x5, x_now);
    feat_compute(&more, x_more);
    feat_compute(&fewer, x_fewer);
    feat_compute(&less_load, x_less);
    double s = state_600x5.backlog_s / state_600x5.depth;
    assert_true(fabs(x_more[FEAT_QUEUE_DELAY] - 1000.0 * more.depth * s) < 1e-9);
    assert_true(x_more[FEAT_QUEUE_DELAY] < x_now[FEAT_QUEUE_DELAY]);
    assert_true(x_fewer[FEAT_QUEUE_DELAY] > x_now[FEAT_QUEUE_DELAY]);
    assert_true(x_less[FEAT_QUEUE_DELAY] < x_more[FEAT_QUEUE_DELAY]);
}

static void saturation_is_bounded_by_capacity(void **state)
{
    (void)state;
    feat_raw out;
    /* One pod at 600 users: the closed loop's asymptote R = U S / N - Z. */
    model_change one = { .has_pods = 1, .pods = 1 };
    assert_int_equal(model_counterfactual(&state_600x5, &one, &out, err, sizeof err), NDT_OK);
    double s = state_600x5.backlog_s / state_600x5.depth;
    assert_true(out.depth < 600.0);
    assert_true(out.depth > 300.0);
    assert_true(out.cpu_process <= state_600x5.cpu_process / 0.5); /* at most a busy server */
    double per_request_s = out.backlog_s / out.depth;
    assert_true(fabs(per_request_s - s) < 1e-9); /* the work of one request does not change */
}

/* Whatever the state (idle, saturated, extreme), a result is finite,
 * non-negative and within its bounds, or a clear refusal. */
static void any_state_gives_a_bounded_answer(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 600; i++) {
        double u[8];
        for (int j = 0; j < 8; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            u[j] = (double)(x >> 11) / 9007199254740992.0;
        }
        feat_raw r = { .users = 1 + (int)(u[0] * 20000), .pods = 1 + (int)(u[1] * 32),
                       .depth = u[2] < 0.2 ? 0 : pow(10, 6 * u[2] - 3),
                       .backlog_s = u[3] < 0.1 ? 0 : pow(10, 5 * u[3] - 4),
                       .cpu_process = 300 * u[4], .cpu_system = 100 * u[5], .mem_system = 100 * u[6],
                       .infer_ms = u[7] < 0.1 ? 0 : pow(10, 5 * u[7] - 1) };
        model_change c = { .has_pods = (i & 1) != 0, .pods = 1 + (int)(u[4] * 32),
                           .has_users = (i & 2) != 0, .users = 1 + (int)(u[5] * 20000) };
        feat_raw out;
        int rc = model_counterfactual(&r, &c, &out, err, sizeof err);
        assert_int_equal(rc, NDT_OK);
        assert_true(isfinite(out.depth) && out.depth >= 0);
        assert_true(isfinite(out.backlog_s) && out.backlog_s >= 0);
        assert_true(isfinite(out.cpu_process) && out.cpu_process >= 0);
        assert_true(isfinite(out.cpu_system) && out.cpu_system >= 0 && out.cpu_system <= 100);
        assert_true(isfinite(out.mem_system) && out.mem_system >= 0 && out.mem_system <= 100);
        assert_true(isfinite(out.infer_ms) && out.infer_ms >= 0);
        /* An arrival cannot find more requests than there are other users. */
        assert_true(out.depth <= out.users);
    }
}

/* Means of the testbed's columns over `seconds` after a 60 s warm-up. */
typedef struct means {
    double n, depth, backlog, cpu_process, cpu_system, ms;
} means;

static void add_window(void *ctx, const testbed_sample *s)
{
    means *m = ctx;
    if (s->t <= 60)
        return;
    m->n++;
    m->depth += s->avg_depth_on_enqueue;
    m->backlog += s->avg_backlog_sec_est;
    m->cpu_process += s->avg_cpu_process_pct;
    m->cpu_system += s->avg_cpu_system_pct;
    m->ms += s->avg_total_infer_ms;
}

static feat_raw testbed_state(int users, int pods)
{
    testbed_params p;
    testbed_params_default(&p);
    p.users = users;
    p.pods = pods;
    p.seed = 11;
    p.sample_interval_s = 1.0;
    testbed_sim *sim;
    assert_int_equal(testbed_sim_create(&p, &sim, err, sizeof err), NDT_OK);
    means m = { 0 };
    testbed_sim_on_sample(sim, add_window, &m);
    testbed_sim_advance(sim, 60 + 900);
    testbed_sim_destroy(sim);
    return (feat_raw){ .users = users, .pods = pods, .depth = m.depth / m.n,
                       .backlog_s = m.backlog / m.n, .cpu_process = m.cpu_process / m.n,
                       .cpu_system = m.cpu_system / m.n, .infer_ms = m.ms / m.n };
}

static int misses;

static void near(const char *what, const feat_raw *from, const feat_raw *to, double got,
                 double want, double rel)
{
    if (fabs(got - want) > rel * fabs(want)) {
        print_error("%dx%d -> %dx%d %s: counterfactual %.4f, testbed %.4f (allowed %.0f%%)\n",
                    from->users, from->pods, to->users, to->pods, what, got, want, rel * 100);
        misses++;
    }
}

static void check_against(const feat_raw *from, const model_change *c, const feat_raw *truth,
                          int check_node_cpu)
{
    feat_raw cf;
    assert_int_equal(model_counterfactual(from, c, &cf, err, sizeof err), NDT_OK);
    near("depth", from, truth, cf.depth, truth->depth, 0.15);
    /* The engine holds the work of a request fixed; the testbed's pods
     * also slow down by up to 13% when their node is busy (contention),
     * which shows in the backlog estimate when the users change. */
    near("backlog", from, truth, cf.backlog_s, truth->backlog_s, 0.25);
    near("process cpu", from, truth, cf.cpu_process, truth->cpu_process, 0.10);
    if (check_node_cpu)
        near("node cpu", from, truth, cf.cpu_system, truth->cpu_system, 0.15);
    near("latency", from, truth, cf.infer_ms, truth->infer_ms, 0.15);
}

static void predicts_what_the_testbed_shows(void **state)
{
    (void)state;
    feat_raw s600[7], s400_5 = testbed_state(400, 5), s200_4 = testbed_state(200, 4);
    for (int pods = 4; pods <= 6; pods++)
        s600[pods] = testbed_state(600, pods);
    model_change to4 = { .has_pods = 1, .pods = 4 }, to5 = { .has_pods = 1, .pods = 5 },
                 to6 = { .has_pods = 1, .pods = 6 };
    model_change to400 = { .has_users = 1, .users = 400 }, to200 = { .has_users = 1, .users = 200 };
    check_against(&s600[5], &to6, &s600[6], 1);
    check_against(&s600[5], &to4, &s600[4], 1);
    check_against(&s600[4], &to5, &s600[5], 1);
    check_against(&s600[6], &to5, &s600[5], 1);
    check_against(&s600[5], &to400, &s400_5, 1);
    check_against(&s600[4], &to200, &s200_4, 1);
    assert_int_equal(misses, 0);
}


/* ---- the engine as it was before the fit/apply split -------------------
 * A frozen copy of model_counterfactual as one call (fit and change
 * together, commit d30d2b9), so that the split engine can be compared
 * with it bit for bit: the API answers through model_counterfactual_apply
 * on a fit made once per state, and must give exactly what `validate`
 * graded. */
#define REF_WHATIF_MAX_USERS 100000
#define REF_WHATIF_MIN_DEPTH 1e-6
#define REF_WHATIF_FIT_STEPS 60

typedef struct ref_mva_point {
    double throughput; /* requests/s over all pods */
    double response_s; /* time in a pod's queue + service */
    double depth;      /* requests an arrival finds at its pod (arrival theorem) */
    double utilisation; /* of one pod, 0..1 */
} ref_mva_point;

/* Exact MVA of U users, think time z, over `pods` identical FIFO servers
 * each visited with probability 1/pods and service time s. */
static ref_mva_point ref_mva(int users, int pods, double s, double z)
{
    double queue = 0; /* per pod, with n - 1 users in the loop */
    ref_mva_point p = { 0 };
    for (int n = 1; n <= users; n++) {
        p.depth = queue;
        p.response_s = s * (1.0 + queue);
        p.throughput = n / (z + p.response_s);
        queue = p.throughput * p.response_s / pods;
    }
    p.utilisation = p.throughput * s / pods;
    if (p.utilisation > 1.0)
        p.utilisation = 1.0;
    return p;
}

/* The think time whose MVA depth at (users, pods) equals `depth`.  Depth
 * falls as think time grows: a doubling bracket, then the Illinois
 * variant of regula falsi (superlinear, never leaves the bracket), so a
 * fit costs about a dozen MVA passes.  A depth above what z = 0 gives
 * (noise in a saturated row) fits z = 0. */
static double ref_fit_think(int users, int pods, double s, double depth)
{
    double f_lo = ref_mva(users, pods, s, 0).depth - depth;
    if (f_lo <= 0)
        return 0;
    double lo = 0, hi = s, f_hi = ref_mva(users, pods, s, hi).depth - depth;
    for (int i = 0; i < 200 && f_hi > 0; i++) {
        lo = hi;
        f_lo = f_hi;
        hi *= 2;
        f_hi = ref_mva(users, pods, s, hi).depth - depth;
    }
    int side = 0;
    for (int i = 0; i < REF_WHATIF_FIT_STEPS && hi - lo > 1e-9 * hi; i++) {
        double z = (lo * f_hi - hi * f_lo) / (f_hi - f_lo);
        double f = ref_mva(users, pods, s, z).depth - depth;
        if (f == 0)
            return z;
        if (f > 0) {
            lo = z;
            f_lo = f;
            if (side == 1)
                f_hi /= 2;
            side = 1;
        } else {
            hi = z;
            f_hi = f;
            if (side == -1)
                f_lo /= 2;
            side = -1;
        }
        if (fabs(f) < 1e-9 * (depth > 1 ? depth : 1))
            return z;
    }
    return 0.5 * (lo + hi);
}

static int ref_check_state(const feat_raw *r, const model_change *c, char *err, size_t errlen)
{
    if (r->pods < 1 || r->users < 1) {
        snprintf(err, errlen, "current state has users=%d pods=%d; both must be at least 1",
                 r->users, r->pods);
        return NDT_EBADCONF;
    }
    if ((c->has_pods && c->pods < 1) || (c->has_users && c->users < 1)) {
        snprintf(err, errlen, "a what-if needs at least 1 pod and 1 user (asked: %s%d %s%d)",
                 c->has_pods ? "pods=" : "", c->has_pods ? c->pods : r->pods,
                 c->has_users ? "users=" : "", c->has_users ? c->users : r->users);
        return NDT_EBADCONF;
    }
    int users = c->has_users ? c->users : r->users;
    if (users > REF_WHATIF_MAX_USERS || r->users > REF_WHATIF_MAX_USERS) {
        snprintf(err, errlen, "users above %d are beyond the counterfactual engine",
                 REF_WHATIF_MAX_USERS);
        return NDT_EBADCONF;
    }
    if (!isfinite(r->depth) || !isfinite(r->backlog_s) || !isfinite(r->cpu_process) ||
        !isfinite(r->cpu_system) || !isfinite(r->mem_system) || !isfinite(r->infer_ms) ||
        r->depth < 0 || r->backlog_s < 0 || r->infer_ms < 0) {
        snprintf(err, errlen, "current state has a negative or non-finite telemetry value");
        return NDT_EBADCONF;
    }
    return NDT_OK;
}

/* The service time per request, in seconds: the exporter's backlog
 * estimate is depth x its EWMA service time, so their ratio is that
 * EWMA.  Without a queue, the latency itself (an arrival that finds
 * `depth` requests waits for them and its own service). */
static double ref_service_time(const feat_raw *r)
{
    if (r->depth > REF_WHATIF_MIN_DEPTH && r->backlog_s > 0)
        return r->backlog_s / r->depth;
    return r->infer_ms / 1000.0 / (1.0 + r->depth);
}

static int ref_counterfactual(const feat_raw *current, const model_change *change, feat_raw *out,
                         char *err, size_t errlen)
{
    int rc = ref_check_state(current, change, err, errlen);
    if (rc != NDT_OK)
        return rc;
    feat_raw after = *current;
    after.users = change->has_users ? change->users : current->users;
    after.pods = change->has_pods ? change->pods : current->pods;
    /* Each replica loads its own runtime and model: memory in use follows
     * the pod count, so the memory per pod (memory density) is kept. */
    after.mem_system = current->mem_system * after.pods / current->pods;
    if (after.mem_system > 100)
        after.mem_system = 100;
    double s = ref_service_time(current);
    if (!(s > 0) || current->depth <= REF_WHATIF_MIN_DEPTH) {
        /* No load signal (an idle service, or every arrival found an
         * empty pod): MVA cannot be fitted.  Light load is the honest
         * reading: the queue stays empty and the columns that measure
         * load scale with users per pod, bounded by one busy server. */
        double ratio = ((double)after.users / after.pods) / ((double)current->users / current->pods);
        after.cpu_process = current->cpu_process * ratio;
        after.cpu_system = current->cpu_system * (double)after.users / current->users;
        if (after.cpu_system > 100)
            after.cpu_system = 100;
        *out = after;
        return NDT_OK;
    }
    double z = ref_fit_think(current->users, current->pods, s, current->depth);
    ref_mva_point before = ref_mva(current->users, current->pods, s, z);
    ref_mva_point then = ref_mva(after.users, after.pods, s, z);

    after.depth = then.depth;
    after.backlog_s = then.depth * s;
    /* A pod's process CPU is its busy fraction times the cores one
     * inference uses; node CPU follows the work done per second. */
    if (before.utilisation > 0)
        after.cpu_process = current->cpu_process * then.utilisation / before.utilisation;
    if (before.throughput > 0)
        after.cpu_system = current->cpu_system * then.throughput / before.throughput;
    if (after.cpu_system > 100)
        after.cpu_system = 100;
    /* Latency: MVA's response time, scaled by how far the row's own
     * latency is from MVA's at the current state (CPU contention, cold
     * pods and per-row noise MVA does not see carry over). */
    double scale = current->infer_ms > 0 ? current->infer_ms / 1000.0 / before.response_s : 1.0;
    after.infer_ms = 1000.0 * then.response_s * scale;
    *out = after;
    return NDT_OK;
}

/* Deterministic states over the whole domain: idle rows (depth 0), rows
 * without a backlog, saturated and light ones, refused ones (pods 0,
 * NaN, negative), and for each many changes: fit once, apply each, and
 * compare with the one-call engine to the bit (result bytes, status and
 * error text). */
static void split_engine_gives_the_same_bits(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    size_t compared = 0, refused = 0, fitted = 0;
    for (int i = 0; i < 400; i++) {
        double u[9];
        for (int j = 0; j < 9; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            u[j] = (double)(x >> 11) / 9007199254740992.0;
        }
        feat_raw r = { .timestamp_ms = 1767225600000 + i, .users = 1 + (int)(u[0] * 3000),
                       .pods = 1 + (int)(u[1] * 16),
                       .depth = u[2] < 0.15 ? 0 : pow(10, 5 * u[2] - 3),
                       .backlog_s = u[3] < 0.1 ? 0 : pow(10, 4 * u[3] - 4),
                       .cpu_process = 300 * u[4], .cpu_system = 100 * u[5], .mem_system = 100 * u[6],
                       .infer_ms = u[7] < 0.1 ? 0 : pow(10, 4 * u[7] - 1) };
        if (i % 50 == 7)
            r.pods = 0;
        if (i % 50 == 17)
            r.depth = NAN;
        if (i % 50 == 27)
            r.backlog_s = -1;
        if (i % 50 == 37)
            r.users = 200000;
        model_counterfactual_state fit;
        model_counterfactual_fit(&r, &fit);
        fitted += fit.fitted != 0;
        /* A controller's sweep: pods 0..12, users around the current
         * and beyond the engine's bound, each alone and both. */
        for (int pods = 0; pods <= 12; pods++) {
            for (int k = 0; k < 6; k++) {
                static const double user_factor[6] = { 0, 0.5, 1, 1.5, 3, 100 };
                model_change c = { .has_pods = pods > 0, .pods = pods,
                                   .has_users = k > 0, .users = (int)(r.users * user_factor[k]) };
                if (!c.has_pods && k == 0)
                    c = (model_change){ .has_pods = 1, .pods = 0 }; /* refused */
                feat_raw want, got, one_call;
                char want_err[256] = "", got_err[256] = "", one_err[256] = "";
                memset(&want, 0xA5, sizeof(want));
                memset(&got, 0xA5, sizeof(got));
                memset(&one_call, 0xA5, sizeof(one_call));
                int want_rc = ref_counterfactual(&r, &c, &want, want_err, sizeof(want_err));
                int got_rc = model_counterfactual_apply(&fit, &c, &got, got_err, sizeof(got_err));
                int one_rc = model_counterfactual(&r, &c, &one_call, one_err, sizeof(one_err));
                assert_int_equal(got_rc, want_rc);
                assert_int_equal(one_rc, want_rc);
                assert_string_equal(got_err, want_err);
                assert_string_equal(one_err, want_err);
                assert_memory_equal(&got, &want, sizeof(want));
                assert_memory_equal(&one_call, &want, sizeof(want));
                refused += want_rc != NDT_OK;
                compared++;
            }
        }
    }
    /* The sample reaches every branch: fitted, light-load and refused. */
    assert_int_equal(compared, 400 * 13 * 6);
    assert_true(fitted > 100 && fitted < 390);
    assert_true(refused > 400 && refused < compared / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rejects_changes_that_cannot_exist),
        cmocka_unit_test(no_change_returns_the_current_state),
        cmocka_unit_test(columns_move_as_queueing_says),
        cmocka_unit_test(saturation_is_bounded_by_capacity),
        cmocka_unit_test(any_state_gives_a_bounded_answer),
        cmocka_unit_test(predicts_what_the_testbed_shows),
        cmocka_unit_test(split_engine_gives_the_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
