/*
 * test_models.c: XGBoost through the C API recovers a known law, the
 * metrics match hand computation, the grade bounds cut where documented,
 * the evaluation tables count the right rows, and the registry round trip
 * gives bit-identical predictions (and refuses foreign or corrupt models).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/models.h"

/* A synthetic "service": latency from the regime and the queue, no noise. */
static double law_ms(const feat_raw *r) { return 20.0 + 0.4 * r->users / r->pods + 800.0 * r->backlog_s / r->pods; }

static uint64_t rng_state = 42;
static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

typedef struct synth {
    feat_raw *rows;
    float *x, *y;
    size_t n;
} synth;

static void synth_make(synth *s, size_t n)
{
    static const int users[] = { 100, 200, 300, 400 };
    s->n = n;
    s->rows = calloc(n, sizeof(feat_raw));
    s->x = calloc(n * FEAT_DIM, sizeof(float));
    s->y = calloc(n, sizeof(float));
    for (size_t i = 0; i < n; i++) {
        feat_raw *r = &s->rows[i];
        r->users = users[i % 4];
        r->pods = 1 + (int)((i / 4) % 6);
        r->backlog_s = uniform() * 0.2;
        r->depth = r->backlog_s * 30;
        r->cpu_process = 100 + uniform() * 100;
        r->cpu_system = 20 + uniform() * 30;
        r->mem_system = 30 + uniform() * 5;
        r->infer_ms = law_ms(r);
        double x[FEAT_DIM];
        feat_compute(r, x);
        for (int j = 0; j < FEAT_DIM; j++)
            s->x[i * FEAT_DIM + j] = (float)x[j];
        s->y[i] = (float)feat_target(r->infer_ms);
    }
}

static void synth_free(synth *s)
{
    free(s->rows);
    free(s->x);
    free(s->y);
}

static model_params small_params(void)
{
    model_params p;
    model_params_default(&p);
    p.rounds = 60;
    p.depth = 4;
    p.eta = 0.3;
    p.threads = 1;
    return p;
}

static void xgboost_recovers_a_known_law(void **state)
{
    (void)state;
    synth train, test;
    synth_make(&train, 3000);
    synth_make(&test, 600);
    model_params p = small_params();
    model_xgb *m = NULL;
    char err[512];
    assert_int_equal(model_xgb_train(train.x, train.y, train.n, &p, NULL, NULL, &m, err, sizeof(err)), NDT_OK);
    double *pred = malloc(test.n * sizeof(double)), *pred_ms = malloc(test.n * sizeof(double));
    double *obs = malloc(test.n * sizeof(double));
    assert_int_equal(model_xgb_predict(m, test.x, test.n, pred, err, sizeof(err)), NDT_OK);
    for (size_t i = 0; i < test.n; i++) {
        pred_ms[i] = feat_target_inverse(pred[i]);
        obs[i] = test.rows[i].infer_ms;
    }
    model_metrics mm;
    assert_int_equal(model_metrics_compute(obs, pred_ms, test.n, &mm, err, sizeof(err)), NDT_OK);
    /* Latencies span ~25..~330 ms; a 60-round model must be close. */
    if (!(mm.r2 > 0.98 && mm.mae < 0.05 * mm.mean_observed))
        fail_msg("r2 %.4f mae %.2f ms (mean %.1f ms)", mm.r2, mm.mae, mm.mean_observed);
    free(pred);
    free(pred_ms);
    free(obs);
    model_xgb_free(m);
    synth_free(&train);
    synth_free(&test);
}

/* How many of the test rows' predictions move against feat_direction when
 * one constrained feature alone is pushed its way. */
static size_t count_wrong_direction(model_xgb *m, const synth *t)
{
    static const struct {
        int feature;
        float step;
    } pushes[] = { { FEAT_USERS, 100 }, { FEAT_PODS, 1 }, { FEAT_WORKLOAD_INTENSITY, 20 },
                   { FEAT_CONGESTION_INDEX, 0.5f }, { FEAT_BACKLOG_FLOW, 0.02f }, { FEAT_QUEUE_DELAY, 20 } };
    float *moved = malloc(t->n * FEAT_DIM * sizeof(float));
    double *before = malloc(t->n * sizeof(double)), *after = malloc(t->n * sizeof(double));
    char err[512];
    size_t wrong = 0;
    assert_int_equal(model_xgb_predict(m, t->x, t->n, before, err, sizeof(err)), NDT_OK);
    for (size_t k = 0; k < sizeof(pushes) / sizeof(pushes[0]); k++) {
        int f = pushes[k].feature, dir = feat_direction[f];
        assert_true(dir != 0);
        memcpy(moved, t->x, t->n * FEAT_DIM * sizeof(float));
        for (size_t i = 0; i < t->n; i++)
            moved[i * FEAT_DIM + f] += pushes[k].step;
        assert_int_equal(model_xgb_predict(m, moved, t->n, after, err, sizeof(err)), NDT_OK);
        for (size_t i = 0; i < t->n; i++)
            wrong += (after[i] - before[i]) * dir < 0;
    }
    free(moved);
    free(before);
    free(after);
    return wrong;
}

/* Monotone constraints (the default): on noisy data, pushing any one
 * constrained feature its physical way never moves a prediction the other
 * way; the same data without them does (so the check can fail). */
static void monotone_model_follows_feat_direction(void **state)
{
    (void)state;
    char buf[64];
    model_monotone_constraints(buf, sizeof(buf));
    assert_string_equal(buf, "(1,-1,1,1,1,0,0,1)");
    synth train, test;
    synth_make(&train, 3000);
    synth_make(&test, 600);
    for (size_t i = 0; i < train.n; i++) /* +-15% noise: free trees chase it */
        train.y[i] = (float)feat_target(train.rows[i].infer_ms * (0.85 + 0.3 * uniform()));
    char err[512];
    model_params p = small_params();
    model_xgb *m = NULL;
    assert_true(p.monotone == 1);
    assert_int_equal(model_xgb_train(train.x, train.y, train.n, &p, NULL, NULL, &m, err, sizeof(err)), NDT_OK);
    assert_int_equal(count_wrong_direction(m, &test), 0);
    model_xgb_free(m);
    p.monotone = 0;
    assert_int_equal(model_xgb_train(train.x, train.y, train.n, &p, NULL, NULL, &m, err, sizeof(err)), NDT_OK);
    assert_true(count_wrong_direction(m, &test) > 0);
    model_xgb_free(m);
    synth_free(&train);
    synth_free(&test);
}

static void metrics_match_hand_computation(void **state)
{
    (void)state;
    const double obs[] = { 10, 20, 30, 40 }, pred[] = { 12, 18, 33, 40 };
    model_metrics m;
    char err[128];
    assert_int_equal(model_metrics_compute(obs, pred, 4, &m, err, sizeof(err)), NDT_OK);
    /* errors +2 -2 +3 0: MAE 7/4, MSE 17/4, mean 25, SS_tot 500. */
    assert_true(fabs(m.mae - 1.75) < 1e-12);
    assert_true(fabs(m.rmse - sqrt(4.25)) < 1e-12);
    assert_true(fabs(m.r2 - (1.0 - 17.0 / 500.0)) < 1e-12);
    /* |e| sorted 0 2 2 3: position 0.95 * 3 = 2.85 -> 2 + 0.85 * (3 - 2). */
    assert_true(fabs(m.p95_abs - 2.85) < 1e-12);
    assert_true(m.mean_observed == 25);
    assert_int_equal(model_metrics_compute(obs, pred, 0, &m, err, sizeof(err)), NDT_EBADCONF);
    const double flat[] = { 5, 5 }, near[] = { 5, 6 };
    assert_int_equal(model_metrics_compute(flat, near, 2, &m, err, sizeof(err)), NDT_OK);
    assert_true(isnan(m.r2));
    assert_int_equal(model_grade_of(&m), MODEL_GRADE_WEAK);
}

static model_grade grade(double r2, double mae, double mean)
{
    model_metrics m = { .n = 10, .r2 = r2, .mae = mae, .mean_observed = mean };
    return model_grade_of(&m);
}

static void grade_boundaries(void **state)
{
    (void)state;
    const model_grade_bound *ex = &model_grade_bounds[0], *good = &model_grade_bounds[1];
    assert_int_equal(ex->grade, MODEL_GRADE_EXCELLENT);
    assert_int_equal(good->grade, MODEL_GRADE_GOOD);
    /* On the bounds is inside; just past them falls a grade. */
    assert_int_equal(grade(ex->min_r2, ex->max_mae_ms, 1e9), MODEL_GRADE_EXCELLENT);
    assert_int_equal(grade(nextafter(ex->min_r2, 0), ex->max_mae_ms, 1e9), MODEL_GRADE_GOOD);
    /* The MAE bound: absolute OR relative to the mean latency. */
    double mae = ex->max_mae_ms * 1.5;
    assert_int_equal(grade(0.999, mae, mae / ex->max_mae_relative), MODEL_GRADE_EXCELLENT);
    assert_int_equal(grade(0.999, mae, mae / ex->max_mae_relative * 0.99), MODEL_GRADE_GOOD);
    assert_int_equal(grade(good->min_r2, good->max_mae_ms, 1), MODEL_GRADE_GOOD);
    assert_int_equal(grade(nextafter(good->min_r2, 0), 0.1, 100), MODEL_GRADE_WEAK);
    assert_int_equal(grade(0.999, good->max_mae_ms * 2, good->max_mae_ms * 2), MODEL_GRADE_WEAK);
    assert_string_equal(model_grade_name(MODEL_GRADE_EXCELLENT), "Excellent");
    assert_string_equal(model_grade_name(MODEL_GRADE_WEAK), "Weak");
}

static void evaluation_tables_count_the_right_rows(void **state)
{
    (void)state;
    enum { N = 200 };
    feat_raw rows[N];
    double obs[N], pred[N];
    for (int i = 0; i < N; i++) {
        rows[i] = (feat_raw){ .users = 600, .pods = 4 + i % 3 };
        obs[i] = 10.0 + i;     /* distinct: the 95th percentile is 199.05 */
        pred[i] = obs[i] + (i % 3); /* pods 4 exact, 5 off by 1, 6 by 2 */
    }
    model_eval e;
    char err[128];
    assert_int_equal(model_evaluate(rows, obs, pred, N, &e, err, sizeof(err)), NDT_OK);
    assert_int_equal(e.nregimes, 3);
    for (int r = 0; r < 3; r++) {
        assert_int_equal(e.regimes[r].pods, 4 + r);
        assert_true(fabs(e.regimes[r].metrics.mae - r) < 1e-12);
    }
    assert_int_equal(e.regimes[0].metrics.n + e.regimes[1].metrics.n + e.regimes[2].metrics.n, N);
    /* obs >= P95 (10 + 0.95 * 199 = 199.05): 200..209, 10 rows; P97.5: 204.025 -> 5 rows. */
    assert_true(fabs(e.thresholds[0].threshold_ms - 199.05) < 1e-9);
    assert_int_equal(e.thresholds[0].metrics.n, 10);
    assert_int_equal(e.thresholds[1].metrics.n, 5);
    model_eval_free(&e);
}

static void registry_round_trip_is_bit_identical(void **state)
{
    (void)state;
    synth train;
    synth_make(&train, 1500);
    model_params p = small_params();
    model_xgb *m = NULL, *again = NULL, *loaded = NULL;
    char err[512], dir[] = "/tmp/ndt-test-registry-XXXXXX", path[512];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(model_xgb_train(train.x, train.y, train.n, &p, NULL, NULL, &m, err, sizeof(err)), NDT_OK);
    double *before = malloc(train.n * sizeof(double)), *after = malloc(train.n * sizeof(double));
    assert_int_equal(model_xgb_predict(m, train.x, train.n, before, err, sizeof(err)), NDT_OK);

    char *ubj, *ubj2;
    size_t len, len2;
    assert_int_equal(model_xgb_save_buffer(m, &ubj, &len, err, sizeof(err)), NDT_OK);
    /* A fixed seed gives the same model, byte for byte. */
    assert_int_equal(model_xgb_train(train.x, train.y, train.n, &p, NULL, NULL, &again, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_xgb_save_buffer(again, &ubj2, &len2, err, sizeof(err)), NDT_OK);
    assert_int_equal(len, len2);
    assert_memory_equal(ubj, ubj2, len);

    model_info info = { .kind = "xgboost", .params = p, .n_train = train.n, .created_s = 1767225600,
                        .baseline = FEAT_BASELINE_BACKLOG };
    feat_baseline baseline = FEAT_BASELINE_NONE;
    model_make_id("xgb", info.created_s, ubj, len, info.id, sizeof(info.id));
    assert_int_equal(strncmp(info.id, "xgb-20260101T000000-", 20), 0);
    assert_int_equal(strlen(info.id), 28);
    assert_int_equal(model_registry_save(dir, &info, ubj, len, err, sizeof(err)), NDT_OK);
    /* Never overwritten. */
    assert_int_equal(model_registry_save(dir, &info, ubj, len, err, sizeof(err)), NDT_ERROR);
    assert_int_equal(model_registry_load(dir, info.id, 1, &loaded, &baseline, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_xgb_predict(loaded, train.x, train.n, after, err, sizeof(err)), NDT_OK);
    assert_memory_equal(before, after, train.n * sizeof(double));
    assert_int_equal(baseline, FEAT_BASELINE_BACKLOG); /* what to add back travels with it */

    /* A corrupt model file: a clear error, exit-2 class. */
    model_xgb *bad = NULL;
    snprintf(path, sizeof(path), "%s/%s/model.ubj", dir, info.id);
    FILE *f = fopen(path, "w");
    fputs("not a model", f);
    fclose(f);
    assert_int_equal(model_registry_load(dir, info.id, 1, &bad, &baseline, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "model.ubj"));
    /* Another feature spec: refused before the model is even read. */
    snprintf(path, sizeof(path), "%s/%s/model.json", dir, info.id);
    f = fopen(path, "w");
    fputs("{\"features\":{\"spec\":\"ndt-features-v0:users\"}}", f);
    fclose(f);
    assert_int_equal(model_registry_load(dir, info.id, 1, &bad, &baseline, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "ndt-features-v0"));
    assert_int_equal(model_registry_load(dir, "../x", 1, &bad, &baseline, err, sizeof(err)), NDT_EBADCONF);

    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
    free(ubj);
    free(ubj2);
    free(before);
    free(after);
    model_xgb_free(m);
    model_xgb_free(again);
    model_xgb_free(loaded);
    synth_free(&train);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(xgboost_recovers_a_known_law),
        cmocka_unit_test(monotone_model_follows_feat_direction),
        cmocka_unit_test(metrics_match_hand_computation),
        cmocka_unit_test(grade_boundaries),
        cmocka_unit_test(evaluation_tables_count_the_right_rows),
        cmocka_unit_test(registry_round_trip_is_bit_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
