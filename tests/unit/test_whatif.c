/*
 * test_whatif.c: the counterfactual engine (models/model_whatif.c).
 * It refuses changes that cannot exist, returns the current state for a
 * change to the current configuration, moves every load column the way
 * queueing physics says, respects the closed loop's saturation bound, and
 * predicts the raw state the emulated testbed actually shows after a
 * change (the strongest check: a real closed-loop simulation, not MVA's
 * own assumptions: lognormal work, CPU contention, random balancing).
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rejects_changes_that_cannot_exist),
        cmocka_unit_test(no_change_returns_the_current_state),
        cmocka_unit_test(columns_move_as_queueing_says),
        cmocka_unit_test(saturation_is_bounded_by_capacity),
        cmocka_unit_test(any_state_gives_a_bounded_answer),
        cmocka_unit_test(predicts_what_the_testbed_shows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
