/*
 * test_dnn.c: the DNN recovers a known law on held-out rows, a fixed seed
 * gives the same model bytes (and another seed other bytes), a saved
 * model predicts exactly as before saving, a registered one is served
 * (model_predictor) with the same numbers, and corrupt, truncated or
 * foreign model files are refused with a reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"

static uint64_t rng_state = 5;
static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* The synthetic service of test_models.c: smooth in the features. */
static double law_ms(const feat_raw *r) { return 20.0 + 0.4 * r->users / r->pods + 800.0 * r->backlog_s / r->pods; }

static void make_rows(feat_raw *rows, float *x, float *y, size_t n)
{
    static const int users[] = { 100, 200, 300, 400 };
    for (size_t i = 0; i < n; i++) {
        feat_raw *r = &rows[i];
        *r = (feat_raw){ .users = users[i % 4], .pods = 1 + (int)((i / 4) % 6) };
        r->backlog_s = uniform() * 0.2;
        r->depth = r->backlog_s * 30;
        r->cpu_process = 100 + uniform() * 100;
        r->cpu_system = 20 + uniform() * 30;
        r->mem_system = 30 + uniform() * 5;
        r->infer_ms = law_ms(r);
        double f[FEAT_DIM];
        feat_compute(r, f);
        for (int j = 0; j < FEAT_DIM; j++)
            x[i * FEAT_DIM + j] = (float)f[j];
        y[i] = (float)feat_target(r->infer_ms);
    }
}

typedef struct data {
    feat_raw *rows;
    float *x, *y;
    size_t n;
} data;

static data data_make(size_t n)
{
    data d = { calloc(n, sizeof(feat_raw)), calloc(n * FEAT_DIM, sizeof(float)), calloc(n, sizeof(float)), n };
    make_rows(d.rows, d.x, d.y, n);
    return d;
}

static void data_free(data *d)
{
    free(d->rows);
    free(d->x);
    free(d->y);
}

static model_dnn_params small_params(void)
{
    model_dnn_params p;
    model_dnn_params_default(&p);
    p.epochs = 40;
    p.batch = 64;
    p.lr = 3e-3;
    p.dropout = 0.1;
    p.threads = 1;
    p.seed = 9;
    return p;
}

static int epochs_seen;
static int count_epochs(void *ctx, int epoch, int epochs)
{
    (void)ctx;
    assert_true(epoch >= 1 && epoch <= epochs);
    epochs_seen = epoch;
    return 0;
}

static void dnn_recovers_a_known_law(void **state)
{
    (void)state;
    data train = data_make(3000), test = data_make(600);
    model_dnn_params p = small_params();
    model_dnn *m = NULL;
    char err[512];
    epochs_seen = 0;
    if (model_dnn_train(train.x, train.y, train.n, &p, count_epochs, NULL, &m, err, sizeof(err)) != NDT_OK)
        fail_msg("train: %s", err);
    assert_int_equal(epochs_seen, p.epochs);
    double *pred = malloc(test.n * sizeof(double)), *pred_ms = malloc(test.n * sizeof(double));
    double *obs = malloc(test.n * sizeof(double));
    assert_int_equal(model_dnn_predict(m, test.x, test.n, pred, err, sizeof(err)), NDT_OK);
    for (size_t i = 0; i < test.n; i++) {
        pred_ms[i] = feat_target_inverse(pred[i]);
        obs[i] = test.rows[i].infer_ms;
    }
    model_metrics mm;
    assert_int_equal(model_metrics_compute(obs, pred_ms, test.n, &mm, err, sizeof(err)), NDT_OK);
    /* Latencies span ~25..~330 ms. */
    print_message("dnn on held-out rows: r2 %.4f mae %.2f ms (mean %.1f ms)\n", mm.r2, mm.mae, mm.mean_observed);
    if (!(mm.r2 > 0.97 && mm.mae < 0.06 * mm.mean_observed))
        fail_msg("r2 %.4f mae %.2f ms (mean %.1f ms)", mm.r2, mm.mae, mm.mean_observed);
    /* Far outside the training rows (a what-if no campaign covered) the
     * answer stays bounded: within 6 standard deviations of the training
     * targets, never the 1e13 ms a linear extrapolation exponentiated
     * gives. */
    float far[FEAT_DIM];
    for (int k = 0; k < FEAT_DIM; k++)
        far[k] = train.x[k] * 1e4f;
    double y_far, y_max = -1e300;
    for (size_t i = 0; i < train.n; i++)
        y_max = train.y[i] > y_max ? train.y[i] : y_max;
    assert_int_equal(model_dnn_predict(m, far, 1, &y_far, err, sizeof(err)), NDT_OK);
    assert_true(isfinite(y_far) && feat_target_inverse(y_far) < 1e7);
    print_message("dnn far outside the training rows: %.3g ms (largest trained %.3g ms)\n",
                  feat_target_inverse(y_far), feat_target_inverse(y_max));
    free(pred);
    free(pred_ms);
    free(obs);
    model_dnn_free(m);
    data_free(&train);
    data_free(&test);
}

static void same_seed_same_bytes_and_round_trip(void **state)
{
    (void)state;
    data train = data_make(800);
    model_dnn_params p = small_params();
    p.epochs = 5;
    model_dnn *a = NULL, *b = NULL, *c = NULL, *loaded = NULL;
    char err[512], *ba, *bb, *bc;
    size_t la, lb, lc;
    assert_int_equal(model_dnn_train(train.x, train.y, train.n, &p, NULL, NULL, &a, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_dnn_train(train.x, train.y, train.n, &p, NULL, NULL, &b, err, sizeof(err)), NDT_OK);
    p.seed++;
    assert_int_equal(model_dnn_train(train.x, train.y, train.n, &p, NULL, NULL, &c, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_dnn_save_buffer(a, &ba, &la, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_dnn_save_buffer(b, &bb, &lb, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_dnn_save_buffer(c, &bc, &lc, err, sizeof(err)), NDT_OK);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    assert_int_equal(la, lc);
    assert_memory_not_equal(ba, bc, la);

    /* Loaded back: the same predictions, exactly. */
    assert_int_equal(model_dnn_load_buffer(ba, la, &loaded, err, sizeof(err)), NDT_OK);
    double *before = malloc(train.n * sizeof(double)), *after = malloc(train.n * sizeof(double));
    assert_int_equal(model_dnn_predict(a, train.x, train.n, before, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_dnn_predict(loaded, train.x, train.n, after, err, sizeof(err)), NDT_OK);
    assert_memory_equal(before, after, train.n * sizeof(double));
    assert_true(model_dnn_get_params(loaded)->dropout > 0.09);
    model_dnn_free(loaded);
    loaded = NULL;

    /* Corrupt: one flipped bit in the weights, a truncation, another magic. */
    ba[la / 2] ^= 0x10;
    assert_int_equal(model_dnn_load_buffer(ba, la, &loaded, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "checksum"));
    ba[la / 2] ^= 0x10;
    assert_int_equal(model_dnn_load_buffer(ba, la - 100, &loaded, err, sizeof(err)), NDT_EBADCONF);
    assert_int_equal(model_dnn_load_buffer("{\"learner\":{}}", 14, &loaded, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "magic"));
    assert_int_equal(model_dnn_load_buffer(ba, 3, &loaded, err, sizeof(err)), NDT_EBADCONF);
    assert_null(loaded);

    free(ba);
    free(bb);
    free(bc);
    free(before);
    free(after);
    model_dnn_free(a);
    model_dnn_free(b);
    model_dnn_free(c);
    data_free(&train);
}

/* Registered and served: model_predictor_load answers what the trained
 * model answered, baseline included; XGBoost's loader refuses the entry. */
static void registry_entry_serves_the_same_numbers(void **state)
{
    (void)state;
    data train = data_make(600);
    model_dnn_params p = small_params();
    p.epochs = 3;
    model_dnn *m = NULL;
    model_predictor *served = NULL;
    model_xgb *xgb = NULL;
    char err[512], dir[] = "/tmp/ndt-test-dnn-registry-XXXXXX", cmd[600], *bytes;
    size_t len;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(model_dnn_train(train.x, train.y, train.n, &p, NULL, NULL, &m, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_dnn_save_buffer(m, &bytes, &len, err, sizeof(err)), NDT_OK);
    model_info info = { .kind = "dnn", .dnn = &p, .n_train = train.n, .created_s = 1767225600,
                        .baseline = FEAT_BASELINE_BACKLOG };
    model_make_id("dnn", info.created_s, bytes, len, info.id, sizeof(info.id));
    assert_int_equal(model_registry_save(dir, &info, bytes, len, err, sizeof(err)), NDT_OK);
    assert_int_equal(model_predictor_load(dir, info.id, &served, err, sizeof(err)), NDT_OK);
    assert_string_equal(model_predictor_kind(served), "dnn");
    for (size_t i = 0; i < 50; i++) {
        double want, got, x[FEAT_DIM];
        float xf[FEAT_DIM];
        feat_compute(&train.rows[i], x);
        for (int j = 0; j < FEAT_DIM; j++)
            xf[j] = (float)x[j];
        assert_int_equal(model_dnn_predict(m, xf, 1, &want, err, sizeof(err)), NDT_OK);
        want = feat_target_inverse(want + feat_baseline_value(FEAT_BASELINE_BACKLOG, x));
        assert_int_equal(model_predictor_predict_ms(served, &train.rows[i], &got, err, sizeof(err)), NDT_OK);
        assert_true(got == want);
    }
    assert_int_equal(model_registry_load(dir, info.id, 1, &xgb, &info.baseline, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "dnn"));
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(bytes);
    model_predictor_free(served);
    model_dnn_free(m);
    data_free(&train);
}

static void bad_parameters_are_refused(void **state)
{
    (void)state;
    data train = data_make(10);
    model_dnn_params p = small_params();
    model_dnn *m = NULL;
    char err[512];
    p.dropout = 1;
    assert_int_equal(model_dnn_train(train.x, train.y, train.n, &p, NULL, NULL, &m, err, sizeof(err)), NDT_EBADCONF);
    p = small_params();
    assert_int_equal(model_dnn_train(train.x, train.y, 1, &p, NULL, NULL, &m, err, sizeof(err)), NDT_EBADCONF);
    assert_null(m);
    data_free(&train);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dnn_recovers_a_known_law),
        cmocka_unit_test(same_seed_same_bytes_and_round_trip),
        cmocka_unit_test(registry_entry_serves_the_same_numbers),
        cmocka_unit_test(bad_parameters_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
