/*
 * model_predictor.c: the served predictor, one registered model loaded to
 * answer single rows (the API's /v1/predict and /v1/whatif).
 *
 * An XGBoost entry is loaded through XGBoost once (model.ubj), compiled
 * into the flat tree layout (model_trees.c) and the booster is freed: a
 * request then costs a tree walk (~18 us for the paper's 2000 trees)
 * instead of XGBoost's ~240 us, with the same output to the bit.  A DNN
 * entry is its model.dnn.  Either way model.json is checked first (feature
 * spec, kind, baseline), and the recorded baseline is added to the model's
 * output, as `train` did when it evaluated the model.
 *
 * Features reach the model as floats, as in training (cmd_train.c casts
 * feat_compute's doubles the same way), so a state predicts here exactly
 * what the training run predicted for it.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"

struct model_predictor {
    char kind[16];
    feat_baseline baseline;
    model_trees *trees;
    model_dnn *dnn;
};

int model_predictor_load(const char *dir, const char *id, model_predictor **out, char *err,
                         size_t errlen)
{
    char path[PATH_MAX + 32], why[NDT_ERRBUF_SIZE];
    model_predictor *p = calloc(1, sizeof(*p));
    model_xgb *xgb = NULL;
    int rc;
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    rc = model_registry_meta(dir, id, p->kind, sizeof(p->kind), &p->baseline, err, errlen);
    if (rc != NDT_OK)
        goto fail;
    snprintf(path, sizeof(path), "%s/%s/%s", dir, id, model_file_name(p->kind));
    if (strcmp(p->kind, "dnn") == 0) {
        rc = model_dnn_load_file(path, &p->dnn, err, errlen);
    } else if ((rc = model_xgb_load_file(path, 1, &xgb, err, errlen)) == NDT_OK) {
        rc = model_trees_from_xgb(xgb, 0, &p->trees, why, sizeof(why));
        if (rc != NDT_OK)
            snprintf(err, errlen, "%s: cannot compile the trees: %s", path, why);
        else if (model_trees_nfeatures(p->trees) != FEAT_DIM) {
            snprintf(err, errlen, "%s: %d features, this build computes %d", path,
                     model_trees_nfeatures(p->trees), FEAT_DIM);
            rc = NDT_EBADCONF;
        }
        model_xgb_free(xgb);
    }
    if (rc != NDT_OK)
        goto fail;
    *out = p;
    return NDT_OK;
fail:
    model_predictor_free(p);
    return rc;
}

int model_predictor_predict_log(const model_predictor *p, const double (*x)[FEAT_DIM], size_t n,
                                double *out, char *err, size_t errlen)
{
    float row[FEAT_DIM];
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < FEAT_DIM; j++)
            row[j] = (float)x[i][j];
        if (p->trees) {
            out[i] = (double)model_trees_predict_row(p->trees, row);
        } else if (model_dnn_predict(p->dnn, row, 1, &out[i], err, errlen) != NDT_OK) {
            return NDT_ERROR;
        }
        out[i] += feat_baseline_value(p->baseline, x[i]);
    }
    return NDT_OK;
}

int model_predictor_predict_ms(const model_predictor *p, const feat_raw *state, double *ms,
                               char *err, size_t errlen)
{
    double x[1][FEAT_DIM], y;
    feat_compute(state, x[0]);
    if (model_predictor_predict_log(p, (const double(*)[FEAT_DIM])x, 1, &y, err, errlen) != NDT_OK)
        return NDT_ERROR;
    *ms = feat_target_inverse(y);
    return NDT_OK;
}

const char *model_predictor_kind(const model_predictor *p) { return p->kind; }

void model_predictor_free(model_predictor *p)
{
    if (!p)
        return;
    model_trees_free(p->trees);
    model_dnn_free(p->dnn);
    free(p);
}
