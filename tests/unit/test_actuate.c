/*
 * test_actuate.c: the replica search and its hysteresis (api_actuate.c):
 * the smallest count meeting the objective, searched upward from min
 * whatever the shape of the predictions; the maximum when none meets it;
 * scale up at once, down only with the margin; and no flapping on a
 * state that hovers at the objective (while the same sequence without a
 * margin does flap, so the test would see a broken band); the
 * scale-down stabilization window (the largest candidate of the window,
 * up at once, down only once the window has passed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "api/api.h"
#include "api/api_internal.h"

static api_decision decide(const double *ms, int lo, int hi, double objective, double margin, int prev)
{
    api_decision d;
    memset(&d, 0xff, sizeof(d));
    assert_int_equal(api_actuate_decide(ms, lo, hi, objective, margin, prev, &d), NDT_OK);
    assert_true(d.replicas >= lo && d.replicas <= hi);
    return d;
}

static void test_search_smallest(void **state)
{
    (void)state;
    /* Pods 1..6 under a fixed load: saturation, then diminishing returns. */
    const double ms[] = { 900, 300, 120, 80, 60, 55 };
    api_decision d = decide(ms, 1, 6, 100, 0.1, 0);
    assert_int_equal(d.kind, API_DECIDE_FIRST);
    assert_int_equal(d.replicas, 4);
    assert_int_equal(d.needed, 4);
    assert_int_equal(d.comfortable, 4); /* 80 <= 90 */
    d = decide(ms, 1, 6, 120, 0.1, 0);   /* equal meets */
    assert_int_equal(d.replicas, 3);
    assert_int_equal(d.comfortable, 4);
    d = decide(ms, 1, 6, 5000, 0.1, 0);
    assert_int_equal(d.replicas, 1);
    /* A range that starts higher: the search starts at its min. */
    d = decide(ms + 2, 3, 6, 1000, 0.1, 0);
    assert_int_equal(d.replicas, 3);
}

static void test_search_unreachable(void **state)
{
    (void)state;
    const double ms[] = { 900, 300, 120, 80, 60, 55 };
    api_decision d = decide(ms, 1, 6, 50, 0.1, 3);
    assert_int_equal(d.kind, API_DECIDE_UNREACHABLE);
    assert_int_equal(d.replicas, 6);
    assert_int_equal(d.needed, 6);
    /* A NaN prediction never meets the objective. */
    const double nan_ms[] = { NAN, NAN, 40 };
    d = decide(nan_ms, 1, 3, 100, 0.1, 0);
    assert_int_equal(d.replicas, 3);
}

static void test_search_not_monotone(void **state)
{
    (void)state;
    /* The model is a black box: the first count that meets the objective
     * is the answer even when a larger one predicts worse. */
    const double ms[] = { 150, 90, 130, 70 };
    api_decision d = decide(ms, 1, 4, 100, 0.0, 0);
    assert_int_equal(d.replicas, 2);
}

static void test_hysteresis_rules(void **state)
{
    (void)state;
    const double ms[] = { 900, 300, 120, 80, 60, 55 };
    /* prev 2 misses 100 ms: up at once to the needed 4. */
    api_decision d = decide(ms, 1, 6, 100, 0.1, 2);
    assert_int_equal(d.kind, API_DECIDE_UP);
    assert_int_equal(d.replicas, 4);
    /* prev 6 while 4 meets with the margin: down to 4, not to 3. */
    d = decide(ms, 1, 6, 125, 0.1, 6);
    assert_int_equal(d.needed, 3);
    assert_int_equal(d.kind, API_DECIDE_DOWN);
    assert_int_equal(d.replicas, 4);
    /* prev 4 with 3 meeting 125 ms but not 112.5: hold 4. */
    d = decide(ms, 1, 6, 125, 0.1, 4);
    assert_int_equal(d.kind, API_DECIDE_HOLD);
    assert_int_equal(d.replicas, 4);
    /* Without a margin the same state goes down to 3. */
    d = decide(ms, 1, 6, 125, 0.0, 4);
    assert_int_equal(d.kind, API_DECIDE_DOWN);
    assert_int_equal(d.replicas, 3);
    /* prev outside the range is taken within it. */
    d = decide(ms, 1, 6, 100, 0.1, 40);
    assert_int_equal(d.kind, API_DECIDE_DOWN);
    assert_int_equal(d.replicas, 4);
}

/* A state hovering at the objective: at 3 pods 98 then 102 ms, 4 pods
 * 70 ms.  Returns how often the recommendation changed over 20 reads. */
static int changes_over_hovering(double margin)
{
    int prev = 0, changes = 0;
    for (int i = 0; i < 20; i++) {
        const double ms[] = { 400, 200, i % 2 ? 102 : 98, 70, 60 };
        api_decision d = decide(ms, 1, 5, 100, margin, prev);
        if (prev && d.replicas != prev)
            changes++;
        prev = d.replicas;
    }
    return changes;
}

static void test_no_flapping(void **state)
{
    (void)state;
    assert_true(changes_over_hovering(0.0) >= 18); /* flaps 3, 4, 3, 4, ... */
    assert_int_equal(changes_over_hovering(0.1), 1); /* 3, then 4 and stays */
}

static void test_window(void **state)
{
    (void)state;
    static api_window w; /* 8 kB: off the stack */
    memset(&w, 0, sizeof(w));
    /* Reads every second, window 5 s. */
    assert_int_equal(api_window_push_max(&w, 1000, 5000, 3), 3);
    assert_int_equal(api_window_push_max(&w, 2000, 5000, 1), 3); /* down waits */
    assert_int_equal(api_window_push_max(&w, 3000, 5000, 5), 5); /* up at once */
    assert_int_equal(api_window_push_max(&w, 4000, 5000, 2), 5);
    assert_int_equal(api_window_push_max(&w, 7000, 5000, 2), 5); /* 3000 is within (2000, 7000] */
    assert_int_equal(api_window_push_max(&w, 8000, 5000, 2), 2); /* 5 left the window */
    /* A noisy candidate sequence: the output never goes down inside the
     * window and changes far less often than the input. */
    memset(&w, 0, sizeof(w));
    int in_changes = 0, out_changes = 0, last_in = 0, last_out = 0;
    for (int i = 0; i < 100; i++) {
        int cand = 1 + (i * 7 + i / 3) % 3; /* 1..3, jumping around */
        int out = api_window_push_max(&w, (int64_t)i * 1000, 10000, cand);
        assert_true(out >= cand);
        in_changes += i && cand != last_in;
        out_changes += i && out != last_out;
        last_in = cand;
        last_out = out;
    }
    assert_true(in_changes > 50);
    assert_true(out_changes <= 2);
    /* More records than slots: the oldest are forgotten, no overflow. */
    memset(&w, 0, sizeof(w));
    for (int i = 0; i < 3 * API_WINDOW_SLOTS; i++)
        assert_int_equal(api_window_push_max(&w, i, 1000000, i == 0 ? 9 : 1), i < API_WINDOW_SLOTS ? 9 : 1);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    double ms[API_MAX_REPLICAS_SPAN + 1] = { 0 };
    api_decision d;
    assert_int_equal(api_actuate_decide(ms, 0, 3, 100, 0.1, 0, &d), NDT_EBADCONF);
    assert_int_equal(api_actuate_decide(ms, 3, 2, 100, 0.1, 0, &d), NDT_EBADCONF);
    assert_int_equal(api_actuate_decide(ms, 1, API_MAX_REPLICAS_SPAN + 1, 100, 0.1, 0, &d), NDT_EBADCONF);
    assert_int_equal(api_actuate_decide(ms, 1, API_MAX_REPLICAS_SPAN, 100, 0.1, 0, &d), NDT_OK);
    assert_int_equal(api_actuate_decide(ms, 1, 3, 0, 0.1, 0, &d), NDT_EBADCONF);
    assert_int_equal(api_actuate_decide(ms, 1, 3, NAN, 0.1, 0, &d), NDT_EBADCONF);
    assert_int_equal(api_actuate_decide(ms, 1, 3, 100, 1.0, 0, &d), NDT_EBADCONF);
    assert_int_equal(api_actuate_decide(ms, 1, 3, 100, -0.1, 0, &d), NDT_EBADCONF);
    assert_int_equal(api_actuate_decide(NULL, 1, 3, 100, 0.1, 0, &d), NDT_EBADCONF);
}

static void test_decision_names(void **state)
{
    (void)state;
    assert_string_equal(api_decision_name(API_DECIDE_FIRST), "initial");
    assert_string_equal(api_decision_name(API_DECIDE_UP), "scale-up");
    assert_string_equal(api_decision_name(API_DECIDE_DOWN), "scale-down");
    assert_string_equal(api_decision_name(API_DECIDE_HOLD), "hold");
    assert_string_equal(api_decision_name(API_DECIDE_UNREACHABLE), "objective-unreachable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_smallest),
        cmocka_unit_test(test_search_unreachable),
        cmocka_unit_test(test_search_not_monotone),
        cmocka_unit_test(test_hysteresis_rules),
        cmocka_unit_test(test_no_flapping),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_decision_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
