/*
 * model_eval.c: how good a model is, in ms: MAE, RMSE, R^2, P95 absolute
 * error, overall, per regime (paper Table VI) and above high-latency
 * thresholds (Table V), and the quality grade (Table III).
 *
 * The grade bounds live in one table, model_grade_bounds[], and are
 * explained in docs/MODELS.md: a grade needs R^2 at or above its bound AND
 * an MAE within its absolute bound (ms) or its relative bound (fraction of
 * the mean observed latency).  The relative arm keeps the grade meaningful
 * when the service is slow overall (a 15 ms MAE on 900 ms latencies is
 * excellent; on 20 ms it is not).  The grades are checked best first.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"

const model_grade_bound model_grade_bounds[2] = {
    { MODEL_GRADE_EXCELLENT, 0.99, 10.0, 0.05 },
    { MODEL_GRADE_GOOD, 0.95, 25.0, 0.15 },
};

const double model_threshold_quantiles[MODEL_NTHRESHOLDS] = { 0.95, 0.975 };

int model_metrics_compute(const double *observed, const double *predicted, size_t n,
                          model_metrics *out, char *err, size_t errlen)
{
    double *abs_err;
    double sum_abs = 0, sum_sq = 0, sum_obs = 0, ss_tot = 0;
    if (n == 0) {
        snprintf(err, errlen, "no rows to evaluate");
        return NDT_EBADCONF;
    }
    abs_err = malloc(n * sizeof(*abs_err));
    if (!abs_err) {
        snprintf(err, errlen, "out of memory evaluating %zu rows", n);
        return NDT_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        double e = predicted[i] - observed[i];
        abs_err[i] = fabs(e);
        sum_abs += fabs(e);
        sum_sq += e * e;
        sum_obs += observed[i];
    }
    double mean = sum_obs / (double)n;
    for (size_t i = 0; i < n; i++)
        ss_tot += (observed[i] - mean) * (observed[i] - mean);
    *out = (model_metrics){
        .n = n,
        .mae = sum_abs / (double)n,
        .rmse = sqrt(sum_sq / (double)n),
        /* Undefined (NaN) when every observation is the same. */
        .r2 = ss_tot > 0 ? 1.0 - sum_sq / ss_tot : NAN,
        .p95_abs = feat_quantile(abs_err, n, 0.95),
        .mean_observed = mean,
    };
    free(abs_err);
    return NDT_OK;
}

model_grade model_grade_of(const model_metrics *m)
{
    for (size_t i = 0; i < NDT_ARRAY_LEN(model_grade_bounds); i++) {
        const model_grade_bound *b = &model_grade_bounds[i];
        int r2_ok = m->r2 >= b->min_r2; /* false for NaN */
        int mae_ok = m->mae <= b->max_mae_ms || m->mae <= b->max_mae_relative * m->mean_observed;
        if (r2_ok && mae_ok)
            return b->grade;
    }
    return MODEL_GRADE_WEAK;
}

const char *model_grade_name(model_grade g)
{
    switch (g) {
    case MODEL_GRADE_EXCELLENT: return "Excellent";
    case MODEL_GRADE_GOOD: return "Good";
    default: return "Weak";
    }
}

/* Metrics of the rows i where keep(i) holds, gathered into scratch arrays. */
static int model_metrics_subset(const double *obs, const double *pred, size_t n,
                                const unsigned char *keep, double *so, double *sp,
                                model_metrics *out, char *err, size_t errlen)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keep[i])
            continue;
        so[m] = obs[i];
        sp[m] = pred[i];
        m++;
    }
    return model_metrics_compute(so, sp, m, out, err, errlen);
}

int model_evaluate(const feat_raw *rows, const double *observed, const double *predicted, size_t n,
                   model_eval *out, char *err, size_t errlen)
{
    feat_dataset view = { (feat_raw *)rows, n, n };
    double *so = malloc((n ? n : 1) * sizeof(double));
    double *sp = malloc((n ? n : 1) * sizeof(double));
    unsigned char *keep = malloc(n ? n : 1);
    int rc = NDT_ERROR;
    *out = (model_eval){ 0 };
    if (!so || !sp || !keep) {
        snprintf(err, errlen, "out of memory evaluating %zu rows", n);
        goto done;
    }
    if ((rc = model_metrics_compute(observed, predicted, n, &out->overall, err, errlen)) != NDT_OK)
        goto done;
    out->grade = model_grade_of(&out->overall);

    feat_regime *regimes;
    if ((rc = feat_regimes(&view, &regimes, &out->nregimes, err, errlen)) != NDT_OK)
        goto done;
    out->regimes = calloc(out->nregimes ? out->nregimes : 1, sizeof(*out->regimes));
    if (!out->regimes) {
        free(regimes);
        snprintf(err, errlen, "out of memory");
        rc = NDT_ERROR;
        goto done;
    }
    for (size_t r = 0; r < out->nregimes; r++) {
        out->regimes[r].users = regimes[r].users;
        out->regimes[r].pods = regimes[r].pods;
        for (size_t i = 0; i < n; i++)
            keep[i] = rows[i].users == regimes[r].users && rows[i].pods == regimes[r].pods;
        rc = model_metrics_subset(observed, predicted, n, keep, so, sp, &out->regimes[r].metrics,
                                  err, errlen);
        if (rc != NDT_OK)
            break;
    }
    free(regimes);
    if (rc != NDT_OK)
        goto done;

    for (int t = 0; t < MODEL_NTHRESHOLDS; t++) {
        memcpy(so, observed, n * sizeof(double));
        double thr = feat_quantile(so, n, model_threshold_quantiles[t]);
        out->thresholds[t].quantile = model_threshold_quantiles[t];
        out->thresholds[t].threshold_ms = thr;
        for (size_t i = 0; i < n; i++)
            keep[i] = observed[i] >= thr;
        rc = model_metrics_subset(observed, predicted, n, keep, so, sp,
                                  &out->thresholds[t].metrics, err, errlen);
        if (rc != NDT_OK)
            goto done;
    }
    rc = NDT_OK;
done:
    if (rc != NDT_OK)
        model_eval_free(out);
    free(so);
    free(sp);
    free(keep);
    return rc;
}

void model_eval_free(model_eval *e)
{
    free(e->regimes);
    e->regimes = NULL;
    e->nregimes = 0;
}
