/*
 * bench_predict.c: single-row prediction latency of the compiled tree
 * predictor against XGBoost's own XGBoosterPredictFromDense, same model,
 * same rows, same run.
 *
 *   bench_predict [--rows N] [--rounds R] [--depth D] [--samples S] [--model M.ubj]
 *                 [--save M.ubj]
 *
 * Trains the paper's configuration (2000 rounds, depth 8, eta 0.05, hist)
 * on N synthetic feature rows (default 50000; the trees are full depth-8
 * trees whatever N above a few thousand) unless --model gives a saved
 * booster.  Then predicts S rows one at a time (default 2000) with:
 * XGBoost's dense path (nthread 1, then 2: one row cannot use two threads,
 * and OpenMP's fork costs), the flat predictor in its complete layout
 * (AVX2 walk where the CPU has it, then the scalar walk) and its sparse
 * layout, and a batch of all S rows.  Checks the outputs agree (max |diff| printed) and
 * prints one Markdown-friendly line per method: p50 and p99 in us.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xgboost/c_api.h>

#include "common/clock.h"
#include "models/models.h"

static double now_us(void)
{
    return (double)ndt_clock_mono_ns() / 1e3;
}

static uint64_t rng = 11;
static double uniform(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void make_rows(float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        feat_raw r = { .users = 200 * (1 + (int)(uniform() * 3)), .pods = 1 + (int)(uniform() * 6) };
        r.backlog_s = uniform() * 0.3;
        r.depth = r.backlog_s * 25 + uniform();
        r.cpu_process = 50 + uniform() * 150;
        r.cpu_system = 10 + uniform() * 50;
        r.mem_system = 30 + uniform() * 10;
        r.infer_ms = (15 + 0.3 * r.users / r.pods + 700 * r.backlog_s / r.pods) * (0.9 + 0.2 * uniform());
        double f[FEAT_DIM];
        feat_compute(&r, f);
        for (int j = 0; j < FEAT_DIM; j++)
            x[i * FEAT_DIM + j] = (float)f[j];
        if (y)
            y[i] = (float)feat_target(r.infer_ms);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, double *t, size_t n)
{
    qsort(t, n, sizeof(double), cmp_double);
    printf("method=%s p50_us=%.2f p99_us=%.2f\n", name, t[n / 2], t[n * 99 / 100]);
}

static int die(const char *what)
{
    fprintf(stderr, "bench_predict: %s: %s\n", what, XGBGetLastError());
    return 1;
}

int main(int argc, char **argv)
{
    size_t rows = 50000, samples = 2000;
    int rounds = MODEL_DEFAULT_ROUNDS, depth = MODEL_DEFAULT_DEPTH;
    const char *model_path = NULL, *save_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rows"))
            rows = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--depth"))
            depth = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--samples"))
            samples = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--model"))
            model_path = argv[i + 1];
        else if (!strcmp(argv[i], "--save"))
            save_path = argv[i + 1];
    }
    BoosterHandle b;
    if (model_path) {
        if (XGBoosterCreate(NULL, 0, &b) != 0 || XGBoosterLoadModel(b, model_path) != 0)
            return die(model_path);
    } else {
        float *x = malloc(rows * FEAT_DIM * sizeof(float)), *y = malloc(rows * sizeof(float));
        DMatrixHandle d;
        char sdepth[16];
        make_rows(x, y, rows);
        snprintf(sdepth, sizeof(sdepth), "%d", depth);
        if (XGDMatrixCreateFromMat(x, rows, FEAT_DIM, NAN, &d) != 0 ||
            XGDMatrixSetFloatInfo(d, "label", y, rows) != 0 || XGBoosterCreate(&d, 1, &b) != 0)
            return die("matrix");
        const char *kv[][2] = { { "tree_method", "hist" }, { "max_depth", sdepth },
                                { "eta", "0.05" },         { "nthread", "2" },
                                { "seed", "1" },           { "verbosity", "0" } };
        for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
            if (XGBoosterSetParam(b, kv[i][0], kv[i][1]) != 0)
                return die(kv[i][0]);
        double t0 = now_us();
        for (int r = 0; r < rounds; r++)
            if (XGBoosterUpdateOneIter(b, r, d) != 0)
                return die("training");
        fprintf(stderr, "bench_predict: trained %d rounds depth %d on %zu rows in %.1f s\n", rounds,
                depth, rows, (now_us() - t0) / 1e6);
        XGDMatrixFree(d);
        free(x);
        free(y);
        if (save_path && XGBoosterSaveModel(b, save_path) != 0)
            return die(save_path);
    }

    bst_ulong len;
    const char *json;
    model_trees *flat = NULL, *scalar = NULL, *sparse = NULL;
    char err[NDT_ERRBUF_SIZE];
    double t0 = now_us();
    if (XGBoosterSaveModelToBuffer(b, "{\"format\":\"json\"}", &len, &json) != 0)
        return die("json");
    if (model_trees_from_json(json, len, 0, &flat, err, sizeof(err)) != NDT_OK ||
        model_trees_from_json(json, len, MODEL_TREES_SCALAR, &scalar, err, sizeof(err)) != NDT_OK ||
        model_trees_from_json(json, len, MODEL_TREES_SPARSE, &sparse, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "bench_predict: %s\n", err);
        return 1;
    }
    printf("trees=%zu simd=%d json_bytes=%llu compile_s=%.2f (json save + three layouts)\n",
           model_trees_count(flat), model_trees_is_simd(flat), (unsigned long long)len, (now_us() - t0) / 1e6);

    float *x = malloc(samples * FEAT_DIM * sizeof(float));
    float *want = malloc(samples * sizeof(float));
    double *t = malloc(samples * sizeof(double)), *batch = malloc(samples * sizeof(double));
    make_rows(x, NULL, samples);
    const char *config = "{\"type\":0,\"cache_id\":0,\"training\":false,\"iteration_begin\":0,"
                         "\"iteration_end\":0,\"strict_shape\":false,\"missing\":NaN}";
    for (int threads = 1; threads <= 2; threads++) {
        char nt[8];
        snprintf(nt, sizeof(nt), "%d", threads);
        XGBoosterSetParam(b, "nthread", nt);
        for (size_t i = 0; i < samples; i++) {
            char iface[256];
            const bst_ulong *shape;
            bst_ulong dim;
            const float *out;
            snprintf(iface, sizeof(iface),
                     "{\"data\":[%llu,true],\"shape\":[1,%d],\"typestr\":\"<f4\",\"version\":3}",
                     (unsigned long long)(uintptr_t)(x + i * FEAT_DIM), FEAT_DIM);
            double s = now_us();
            if (XGBoosterPredictFromDense(b, iface, config, NULL, &shape, &dim, &out) != 0)
                return die("predict");
            t[i] = now_us() - s;
            want[i] = out[0];
        }
        report(threads == 1 ? "xgboost_dense_nthread1" : "xgboost_dense_nthread2", t, samples);
    }
    double max_diff = 0;
    volatile float sink = 0;
    const model_trees *layouts[3] = { flat, scalar, sparse };
    const char *names[3] = { "flat_complete", "flat_complete_scalar", "flat_sparse" };
    for (int l = 0; l < 3; l++) {
        for (size_t i = 0; i < samples; i++) {
            double s = now_us();
            float v = model_trees_predict_row(layouts[l], x + i * FEAT_DIM);
            t[i] = now_us() - s;
            sink += v;
            double d = fabs((double)v - (double)want[i]);
            max_diff = d > max_diff ? d : max_diff;
        }
        report(names[l], t, samples);
    }
    double s = now_us();
    model_trees_predict(flat, x, samples, batch);
    printf("method=flat_complete_batch rows=%zu us_per_row=%.2f\n", samples,
           (now_us() - s) / (double)samples);
    printf("max_abs_diff_vs_xgboost=%g\n", max_diff);
    (void)sink;
    model_trees_free(flat);
    model_trees_free(scalar);
    model_trees_free(sparse);
    XGBoosterFree(b);
    free(x);
    free(want);
    free(t);
    free(batch);
    return max_diff <= 1e-6 ? 0 : 1;
}
