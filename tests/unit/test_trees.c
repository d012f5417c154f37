/*
 * test_trees.c: the compiled tree predictor answers what XGBoost answers.
 * Boosters are trained here through XGBoost's C API (so base_score and
 * the training data, NaNs included, are under the test's control) and the
 * referee is XGBoost's own XGBoosterPredictFromDense on a fresh booster
 * loaded from the saved bytes.  Both layouts (complete and sparse) are
 * held to 1e-6 on random rows, rows with missing values (the learnt
 * default directions) and rows shaped like the feature stage's, in the
 * complete layout's SIMD (where the CPU has AVX2) and scalar walks; in
 * practice the outputs are bit-identical, which is asserted too.  Bad
 * JSON is refused with a reason.
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

#include <xgboost/c_api.h>

#include "models/models.h"

static uint64_t rng_state = 7;
static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Rows shaped like the feature stage's: a latency law over the regime and
 * the queue; with nan_rate > 0 some features are missing. */
static void make_rows(float *x, float *y, size_t n, double nan_rate)
{
    for (size_t i = 0; i < n; i++) {
        feat_raw r = { .users = 100 * (1 + (int)(uniform() * 6)), .pods = 1 + (int)(uniform() * 6) };
        r.backlog_s = uniform() * 0.3;
        r.depth = r.backlog_s * 25 + uniform();
        r.cpu_process = 50 + uniform() * 150;
        r.cpu_system = 10 + uniform() * 50;
        r.mem_system = 30 + uniform() * 10;
        r.infer_ms = 15 + 0.3 * r.users / r.pods + 700 * r.backlog_s / r.pods + 0.05 * r.cpu_process;
        double f[FEAT_DIM];
        feat_compute(&r, f);
        for (int j = 0; j < FEAT_DIM; j++)
            x[i * FEAT_DIM + j] = uniform() < nan_rate ? NAN : (float)f[j];
        y[i] = (float)feat_target(r.infer_ms);
    }
}

static BoosterHandle train_booster(const float *x, const float *y, size_t n, int rounds,
                                   const char *depth, const char *base_score)
{
    DMatrixHandle d;
    BoosterHandle b;
    assert_int_equal(XGDMatrixCreateFromMat(x, n, FEAT_DIM, NAN, &d), 0);
    assert_int_equal(XGDMatrixSetFloatInfo(d, "label", y, n), 0);
    assert_int_equal(XGBoosterCreate(&d, 1, &b), 0);
    const char *kv[][2] = { { "tree_method", "hist" }, { "max_depth", depth }, { "eta", "0.3" },
                            { "nthread", "1" },        { "seed", "3" },        { "verbosity", "0" },
                            { "base_score", base_score } };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        assert_int_equal(XGBoosterSetParam(b, kv[i][0], kv[i][1]), 0);
    for (int r = 0; r < rounds; r++)
        assert_int_equal(XGBoosterUpdateOneIter(b, r, d), 0);
    XGDMatrixFree(d);
    return b;
}

/* XGBoost's dense path on a second booster loaded from the saved bytes. */
static void xgb_dense(BoosterHandle trained, const float *x, size_t n, float *out)
{
    bst_ulong len;
    const char *raw;
    BoosterHandle b;
    assert_int_equal(XGBoosterSaveModelToBuffer(trained, "{\"format\":\"ubj\"}", &len, &raw), 0);
    assert_int_equal(XGBoosterCreate(NULL, 0, &b), 0);
    assert_int_equal(XGBoosterLoadModelFromBuffer(b, raw, len), 0);
    assert_int_equal(XGBoosterSetParam(b, "nthread", "1"), 0);
    char iface[256];
    snprintf(iface, sizeof(iface),
             "{\"data\":[%llu,true],\"shape\":[%zu,%d],\"typestr\":\"<f4\",\"version\":3}",
             (unsigned long long)(uintptr_t)x, n, FEAT_DIM);
    const char *config = "{\"type\":0,\"cache_id\":0,\"training\":false,\"iteration_begin\":0,"
                         "\"iteration_end\":0,\"strict_shape\":false,\"missing\":NaN}";
    const bst_ulong *shape;
    bst_ulong dim;
    const float *res;
    assert_int_equal(XGBoosterPredictFromDense(b, iface, config, NULL, &shape, &dim, &res), 0);
    assert_int_equal(shape[0], n);
    memcpy(out, res, n * sizeof(float));
    XGBoosterFree(b);
}

static model_trees *compile(BoosterHandle b, unsigned flags)
{
    bst_ulong len;
    const char *json;
    model_trees *t = NULL;
    char err[512];
    assert_int_equal(XGBoosterSaveModelToBuffer(b, "{\"format\":\"json\"}", &len, &json), 0);
    int rc = model_trees_from_json(json, len, flags, &t, err, sizeof(err));
    if (rc != NDT_OK)
        fail_msg("compile: %s", err);
    return t;
}

/* Compares every layout and walk with XGBoost on n rows. */
static void check_rows(BoosterHandle b, const float *x, size_t n)
{
    float *want = malloc(n * sizeof(float));
    double *got = malloc(n * sizeof(double));
    xgb_dense(b, x, n, want);
    static const unsigned layouts[] = { 0, MODEL_TREES_SCALAR, MODEL_TREES_SPARSE };
    for (int layout = 0; layout < 3; layout++) {
        model_trees *t = compile(b, layouts[layout]);
        assert_int_equal(model_trees_is_complete(t), layout < 2);
        if (layout > 0)
            assert_false(model_trees_is_simd(t));
        model_trees_predict(t, x, n, got);
        size_t exact = 0;
        for (size_t i = 0; i < n; i++) {
            if (!(fabs(got[i] - want[i]) <= 1e-6))
                fail_msg("layout %d row %zu: flat %.9g xgboost %.9g", layout, i, got[i], want[i]);
            exact += (float)got[i] == want[i];
            /* the single-row entry point is the same function */
            assert_true(model_trees_predict_row(t, x + i * FEAT_DIM) == (float)got[i]);
        }
        assert_int_equal(exact, n); /* same float sum in the same order */
        model_trees_free(t);
    }
    free(want);
    free(got);
}

static void equals_xgboost_on_feature_rows_and_random_rows(void **state)
{
    (void)state;
    enum { NTRAIN = 4000, NTEST = 3000 };
    float *x = malloc(NTRAIN * FEAT_DIM * sizeof(float)), *y = malloc(NTRAIN * sizeof(float));
    float *t = malloc(NTEST * FEAT_DIM * sizeof(float)), *ty = malloc(NTEST * sizeof(float));
    make_rows(x, y, NTRAIN, 0);
    /* base_score far from the targets: a predictor ignoring it fails. */
    BoosterHandle b = train_booster(x, y, NTRAIN, 80, "6", "2.75");
    make_rows(t, ty, NTEST, 0);
    check_rows(b, t, NTEST);
    /* Random rows over and beyond the training range, and on split values. */
    for (size_t i = 0; i < NTEST * FEAT_DIM; i++)
        t[i] = (float)((uniform() - 0.25) * 4 * (i % FEAT_DIM == 0 ? 600 : 50));
    memcpy(t, x, 500 * FEAT_DIM * sizeof(float));
    check_rows(b, t, NTEST);
    XGBoosterFree(b);
    free(x);
    free(y);
    free(t);
    free(ty);
}

static void missing_values_take_the_learnt_default_direction(void **state)
{
    (void)state;
    enum { NTRAIN = 4000, NTEST = 3000 };
    float *x = malloc(NTRAIN * FEAT_DIM * sizeof(float)), *y = malloc(NTRAIN * sizeof(float));
    float *t = malloc(NTEST * FEAT_DIM * sizeof(float)), *ty = malloc(NTEST * sizeof(float));
    /* 20% missing in training: splits learn both default directions. */
    make_rows(x, y, NTRAIN, 0.2);
    BoosterHandle b = train_booster(x, y, NTRAIN, 60, "5", "0.5");
    make_rows(t, ty, NTEST, 0.3);
    check_rows(b, t, NTEST);
    for (size_t i = 0; i < NTEST * FEAT_DIM; i++)
        t[i] = NAN; /* every feature missing: the all-defaults path */
    check_rows(b, t, 10);
    XGBoosterFree(b);
    free(x);
    free(y);
    free(t);
    free(ty);
}

/* A deeper ensemble whose trees differ in depth (one stump round too). */
static void deep_and_shallow_trees(void **state)
{
    (void)state;
    enum { NTRAIN = 3000, NTEST = 2000 };
    float *x = malloc(NTRAIN * FEAT_DIM * sizeof(float)), *y = malloc(NTRAIN * sizeof(float));
    float *t = malloc(NTEST * FEAT_DIM * sizeof(float)), *ty = malloc(NTEST * sizeof(float));
    make_rows(x, y, NTRAIN, 0.05);
    BoosterHandle b = train_booster(x, y, NTRAIN, 30, "10", "1");
    make_rows(t, ty, NTEST, 0.05);
    check_rows(b, t, NTEST);
    XGBoosterFree(b);
    free(x);
    free(y);
    free(t);
    free(ty);
}

/* Through ndtpipe's own training and predict path too. */
static void equals_model_xgb_predict(void **state)
{
    (void)state;
    enum { N = 2000 };
    float *x = malloc(N * FEAT_DIM * sizeof(float)), *y = malloc(N * sizeof(float));
    double *want = malloc(N * sizeof(double)), *got = malloc(N * sizeof(double));
    make_rows(x, y, N, 0);
    model_params p;
    model_params_default(&p);
    p.rounds = 50;
    p.depth = 8;
    p.threads = 1;
    model_xgb *m = NULL;
    model_trees *t = NULL;
    char err[512];
    assert_int_equal(model_xgb_train(x, y, N, &p, NULL, NULL, &m, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_xgb_predict(m, x, N, want, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_trees_from_xgb(m, 0, &t, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_trees_count(t), 50);
    assert_int_equal(model_trees_nfeatures(t), FEAT_DIM);
    model_trees_predict(t, x, N, got);
    assert_memory_equal(want, got, N * sizeof(double));
    model_trees_free(t);
    model_xgb_free(m);
    free(x);
    free(y);
    free(want);
    free(got);
}

static int refuses(const char *json, const char *why)
{
    model_trees *t = NULL;
    char err[512] = "";
    int rc = model_trees_from_json(json, strlen(json), 0, &t, err, sizeof(err));
    if (rc == NDT_OK || !strstr(err, why)) {
        print_error("json %s: rc %d err '%s', wanted '%s'\n", json, rc, err, why);
        model_trees_free(t);
        return 0;
    }
    return 1;
}

#define HEAD(booster, objective)                                                                  \
    "{\"learner\":{\"gradient_booster\":{\"name\":\"" booster "\",\"model\":{\"tree_info\":[0],"  \
    "\"trees\":["
#define TAIL(objective)                                                                           \
    "]}},\"learner_model_param\":{\"base_score\":\"5E-1\",\"num_feature\":\"2\"},"              \
    "\"objective\":{\"name\":\"" objective "\"}}}"
#define TREE(l, r, f, c, d, n)                                                                    \
    "{\"tree_param\":{\"num_nodes\":\"" n "\"},\"left_children\":[" l "],\"right_children\":[" r \
    "],\"split_indices\":[" f "],\"split_conditions\":[" c "],\"default_left\":[" d "]}"

static void bad_json_is_refused_with_a_reason(void **state)
{
    (void)state;
    const char *good = HEAD("gbtree", "") TREE("1,-1,-1", "2,-1,-1", "1,0,0", "0.5,1,2", "1,0,0", "3")
        TAIL("reg:squarederror");
    model_trees *t = NULL;
    char err[512];
    assert_int_equal(model_trees_from_json(good, strlen(good), 0, &t, err, sizeof(err)), NDT_OK);
    float row[2] = { 0, 0.25f }, row2[2] = { 0, 0.75f }, row3[2] = { 0, NAN };
    assert_true(model_trees_predict_row(t, row) == 1.5f);
    assert_true(model_trees_predict_row(t, row2) == 2.5f);
    assert_true(model_trees_predict_row(t, row3) == 1.5f); /* default left */
    model_trees_free(t);

    assert_true(refuses("", "not an XGBoost JSON model"));
    assert_true(refuses("{\"trees\":[", "not an XGBoost JSON model"));
    assert_true(refuses("{\"trees\":[]}", "not an XGBoost JSON model"));
    assert_true(refuses(HEAD("dart", "") TAIL("reg:squarederror"), "gbtree"));
    assert_true(refuses(HEAD("gbtree", "") TREE("1,-1,-1", "2,-1,-1", "1,0,0", "0.5,1,2", "1,0,0", "3")
                            TAIL("binary:logistic"), "objective binary:logistic"));
    /* feature 5 of a 2-feature model */
    assert_true(refuses(HEAD("gbtree", "") TREE("1,-1,-1", "2,-1,-1", "5,0,0", "0.5,1,2", "1,0,0", "3")
                            TAIL("reg:squarederror"), "out of range"));
    /* a cycle: node 1 points back at node 0's children */
    assert_true(refuses(HEAD("gbtree", "") TREE("1,1,-1", "2,2,-1", "0,0,0", "0.5,1,2", "1,0,0", "3")
                            TAIL("reg:squarederror"), "not a tree"));
    /* arrays shorter than num_nodes */
    assert_true(refuses(HEAD("gbtree", "") TREE("1,-1", "2,-1,-1", "1,0,0", "0.5,1,2", "1,0,0", "3")
                            TAIL("reg:squarederror"), "left_children"));
    /* more trees than tree_info */
    assert_true(refuses(HEAD("gbtree", "") TREE("-1", "-1", "0", "1", "0", "1") ","
                            TREE("-1", "-1", "0", "1", "0", "1") TAIL("reg:squarederror"),
                        "more trees"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(equals_xgboost_on_feature_rows_and_random_rows),
        cmocka_unit_test(missing_values_take_the_learnt_default_direction),
        cmocka_unit_test(deep_and_shallow_trees),
        cmocka_unit_test(equals_model_xgb_predict),
        cmocka_unit_test(bad_json_is_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
