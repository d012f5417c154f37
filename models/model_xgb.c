/*
 * model_xgb.c: the XGBoost functional model through libxgboost's C API.
 *
 * Training boosts one round at a time (XGBoosterUpdateOneIter) instead of
 * handing XGBoost the whole schedule, so the caller can show progress and
 * stop on a signal between rounds.  The parameters are the paper's
 * (V-C1: squared error on the log target, hist, depth 8, eta 0.05, 2000
 * rounds) unless the caller shrinks them.  Predictions go through a
 * DMatrix (XGBoosterPredictFromDMatrix) with training=false; the
 * integration test checks them against XGBoost's other path,
 * XGBoosterPredictFromDense, on a model loaded back from the registry.
 *
 * Every C API call is checked; a failure carries XGBGetLastError()'s text.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xgboost/c_api.h>

#include "models/models.h"

struct model_xgb {
    BoosterHandle booster;
};

void model_params_default(model_params *p)
{
    *p = (model_params){ .rounds = MODEL_DEFAULT_ROUNDS, .depth = MODEL_DEFAULT_DEPTH,
                         .eta = MODEL_DEFAULT_ETA, .threads = 0, .seed = 1, .monotone = 1 };
}

void model_monotone_constraints(char *buf, size_t size)
{
    size_t used = 0;
    for (int j = 0; j < FEAT_DIM && used < size; j++)
        used += (size_t)snprintf(buf + used, size - used, "%s%d", j ? "," : "(", feat_direction[j]);
    if (used < size)
        snprintf(buf + used, size - used, ")");
}

static int model_xgb_fail(const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "xgboost: %s: %s", what, XGBGetLastError());
    return NDT_ERROR;
}

static int model_xgb_matrix(const float *x, size_t n, DMatrixHandle *out, char *err, size_t errlen)
{
    /* NaN is "missing"; the feature stage never produces one. */
    if (XGDMatrixCreateFromMat(x, (bst_ulong)n, FEAT_DIM, NAN, out) != 0)
        return model_xgb_fail("creating the matrix", err, errlen);
    return NDT_OK;
}

static int model_xgb_set_params(BoosterHandle b, const model_params *p, char *err, size_t errlen)
{
    char depth[16], eta[32], threads[16], seed[32], monotone[4 * FEAT_DIM + 8];
    snprintf(depth, sizeof(depth), "%d", p->depth);
    snprintf(eta, sizeof(eta), "%.17g", p->eta);
    snprintf(threads, sizeof(threads), "%d", p->threads);
    snprintf(seed, sizeof(seed), "%llu", (unsigned long long)p->seed);
    const char *kv[][2] = {
        { "objective", "reg:squarederror" }, { "tree_method", "hist" },
        { "max_depth", depth },              { "eta", eta },
        { "nthread", threads },              { "seed", seed },
        { "verbosity", "0" },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(kv); i++)
        if (XGBoosterSetParam(b, kv[i][0], kv[i][1]) != 0)
            return model_xgb_fail(kv[i][0], err, errlen);
    /* Latency moves with each feature only in its physical direction
     * (feat_direction): a what-if changes several features at once, and
     * unconstrained trees let a small change (5 -> 6 pods) come out with
     * the wrong sign for some states (docs/MODELS.md, "Monotone"). */
    if (p->monotone) {
        model_monotone_constraints(monotone, sizeof(monotone));
        if (XGBoosterSetParam(b, "monotone_constraints", monotone) != 0)
            return model_xgb_fail("monotone_constraints", err, errlen);
    }
    return NDT_OK;
}

int model_xgb_train(const float *x, const float *y, size_t n, const model_params *p,
                    model_progress_fn progress, void *ctx, model_xgb **out, char *err,
                    size_t errlen)
{
    DMatrixHandle dtrain = NULL;
    model_xgb *m = calloc(1, sizeof(*m));
    int rc = NDT_ERROR;
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    if (n == 0) {
        snprintf(err, errlen, "no training rows");
        goto fail;
    }
    if (model_xgb_matrix(x, n, &dtrain, err, errlen) != NDT_OK)
        goto fail;
    if (XGDMatrixSetFloatInfo(dtrain, "label", y, (bst_ulong)n) != 0) {
        model_xgb_fail("setting the labels", err, errlen);
        goto fail;
    }
    if (XGBoosterCreate(&dtrain, 1, &m->booster) != 0) {
        model_xgb_fail("creating the booster", err, errlen);
        goto fail;
    }
    if (model_xgb_set_params(m->booster, p, err, errlen) != NDT_OK)
        goto fail;
    for (int round = 0; round < p->rounds; round++) {
        if (XGBoosterUpdateOneIter(m->booster, round, dtrain) != 0) {
            model_xgb_fail("boosting", err, errlen);
            goto fail;
        }
        if (progress && progress(ctx, round + 1, p->rounds) != 0) {
            snprintf(err, errlen, "training stopped after %d of %d rounds", round + 1, p->rounds);
            goto fail;
        }
    }
    XGDMatrixFree(dtrain);
    *out = m;
    return NDT_OK;
fail:
    if (dtrain)
        XGDMatrixFree(dtrain);
    model_xgb_free(m);
    return rc;
}

int model_xgb_predict(model_xgb *m, const float *x, size_t n, double *out, char *err, size_t errlen)
{
    static const char config[] = "{\"type\":0,\"training\":false,\"iteration_begin\":0,"
                                 "\"iteration_end\":0,\"strict_shape\":false}";
    DMatrixHandle d = NULL;
    const bst_ulong *shape;
    bst_ulong dim;
    const float *result;
    if (n == 0)
        return NDT_OK;
    if (model_xgb_matrix(x, n, &d, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (XGBoosterPredictFromDMatrix(m->booster, d, config, &shape, &dim, &result) != 0) {
        XGDMatrixFree(d);
        return model_xgb_fail("predicting", err, errlen);
    }
    if (dim != 1 || shape[0] != n) {
        XGDMatrixFree(d);
        snprintf(err, errlen, "xgboost: prediction of unexpected shape (dim %llu)",
                 (unsigned long long)dim);
        return NDT_ERROR;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (double)result[i];
    XGDMatrixFree(d);
    return NDT_OK;
}

int model_xgb_save_buffer(model_xgb *m, char **buf, size_t *len, char *err, size_t errlen)
{
    bst_ulong n;
    const char *raw;
    if (XGBoosterSaveModelToBuffer(m->booster, "{\"format\":\"ubj\"}", &n, &raw) != 0)
        return model_xgb_fail("saving the model", err, errlen);
    /* The API's buffer lives only until the next call on the booster. */
    *buf = malloc(n ? n : 1);
    if (!*buf) {
        snprintf(err, errlen, "out of memory copying a %llu-byte model", (unsigned long long)n);
        return NDT_ERROR;
    }
    memcpy(*buf, raw, n);
    *len = n;
    return NDT_OK;
}

int model_xgb_load_file(const char *path, int threads, model_xgb **out, char *err, size_t errlen)
{
    model_xgb *m = calloc(1, sizeof(*m));
    char nthread[16];
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    snprintf(nthread, sizeof(nthread), "%d", threads);
    if (XGBoosterCreate(NULL, 0, &m->booster) != 0) {
        model_xgb_fail("creating the booster", err, errlen);
        goto fail;
    }
    if (XGBoosterLoadModel(m->booster, path) != 0) {
        snprintf(err, errlen, "%s: not a loadable XGBoost model: %s", path, XGBGetLastError());
        goto fail;
    }
    if (XGBoosterSetParam(m->booster, "nthread", nthread) != 0) {
        model_xgb_fail("nthread", err, errlen);
        goto fail;
    }
    *out = m;
    return NDT_OK;
fail:
    model_xgb_free(m);
    return NDT_EBADCONF;
}

/* The flat predictor from XGBoost's own JSON of this booster: the JSON
 * is the documented, stable description of the trees (UBJSON is the same
 * document in binary). */
int model_trees_from_xgb(model_xgb *m, unsigned flags, model_trees **out, char *err, size_t errlen)
{
    bst_ulong n;
    const char *raw;
    if (XGBoosterSaveModelToBuffer(m->booster, "{\"format\":\"json\"}", &n, &raw) != 0)
        return model_xgb_fail("saving the model as JSON", err, errlen);
    return model_trees_from_json(raw, (size_t)n, flags, out, err, errlen);
}

void model_xgb_free(model_xgb *m)
{
    if (!m)
        return;
    if (m->booster)
        XGBoosterFree(m->booster);
    free(m);
}
