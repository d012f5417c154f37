/*
 * model_report.c: `ndtpipe report`: a registered model's evaluation as
 * Markdown tables and an SVG, the analogues of paper 002's Tables III-VI.
 *
 * The report is built from model.json alone (not by re-running the model),
 * so it shows exactly what was measured when the model was registered and
 * needs neither the dataset nor libxgboost's time.  The predicted-against-
 * observed scatter comes from the sample of test rows the registry keeps
 * (predictions.csv), when the entry has one.  Table VII (what-if deltas)
 * comes from the "validation" object `ndtpipe validate` adds to the
 * registry entry; without one the report says how to get it.  The Markdown and bar chart are written as NAME.tmp
 * and renamed.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "common/file.h"
#include "models/models.h"

#define MODEL_REPORT_JSON_MAX (4u << 20)

static double jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

/* Table VII: the matched-pairs validation, when the model has one. */
static void model_report_validation(FILE *f, const cJSON *v)
{
    const cJSON *sc;
    if (!cJSON_IsObject(v)) {
        fprintf(f, "## What-if validation (Table VII)\n\nNot validated yet: "
                   "`ndtpipe validate --registry DIR --model ID --data FILE.csv`.\n");
        return;
    }
    fprintf(f, "## What-if validation (Table VII)\n\nDeployment grade **%s** (on the "
               "counterfactual answers; %s on matched samples), %.0f users, validated %s.\n\n",
            jstr(v, "deployment_grade"), jstr(v, "matched_grade"), jnum(v, "users"),
            jstr(v, "validated"));
    fprintf(f, "| scenario | method | mean predicted delta (ms) | mean observed delta (ms) | "
               "sign agreement | MAE of deltas (ms) | sensitivity |\n|---|---|---|---|---|---|---|\n");
    cJSON_ArrayForEach(sc, cJSON_GetObjectItemCaseSensitive(v, "scenarios"))
    {
        static const char *const methods[] = { "matched", "counterfactual" };
        for (int i = 0; i < 2; i++) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(sc, methods[i]);
            fprintf(f, "| %s | %s | %.2f | %.2f | %.3f | %.2f | %s (%.2f) |\n", jstr(sc, "name"),
                    methods[i], jnum(m, "mean_predicted_delta_ms"),
                    jnum(m, "mean_observed_delta_ms"), jnum(m, "sign_agreement"),
                    jnum(m, "mae_delta_ms"), jstr(m, "sensitivity_category"),
                    jnum(m, "sensitivity"));
        }
    }
    fprintf(f, "\n");
}

static void model_report_tables(FILE *f, const cJSON *root)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(root, "training");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    const cJSON *row;
    fprintf(f, "# Model %s\n\n", jstr(root, "model_id"));
    char how[128];
    if (cJSON_GetObjectItemCaseSensitive(params, "epochs")) /* the DNN */
        snprintf(how, sizeof(how), "256-128-64, %.0f epochs, batch %.0f, lr %g, dropout %g",
                 jnum(params, "epochs"), jnum(params, "batch"), jnum(params, "learning_rate"),
                 jnum(params, "dropout"));
    else
        snprintf(how, sizeof(how), "%.0f rounds, depth %.0f, eta %g", jnum(params, "rounds"),
                 jnum(params, "max_depth"), jnum(params, "eta"));
    fprintf(f, "%s, created %s; trained on `%s` (%.0f rows), tested on `%s` (%.0f rows); "
               "%s; trim `%s`; training took %.1f s.\n\n",
            jstr(root, "model"), jstr(root, "created"), jstr(train, "train"), jnum(root, "n_train"),
            jstr(train, "test"), jnum(root, "n_test"), how,
            jstr(cJSON_GetObjectItemCaseSensitive(root, "features"), "trim"),
            jnum(root, "train_seconds"));
    fprintf(f, "## Quality grade bounds (Table III)\n\n| grade | R^2 at least | MAE at most | "
               "or MAE at most (of mean latency) |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NDT_ARRAY_LEN(model_grade_bounds); i++)
        fprintf(f, "| %s | %g | %g ms | %g%% |\n", model_grade_name(model_grade_bounds[i].grade),
                model_grade_bounds[i].min_r2, model_grade_bounds[i].max_mae_ms,
                100 * model_grade_bounds[i].max_mae_relative);
    fprintf(f, "| Weak | otherwise | | |\n\n");
    fprintf(f, "## Accuracy on the test regimes (Table IV)\n\n| MAE (ms) | RMSE (ms) | R^2 | "
               "P95 error (ms) | grade |\n|---|---|---|---|---|\n");
    fprintf(f, "| %.2f | %.2f | %.4f | %.2f | %s |\n\n", jnum(m, "mae_ms"), jnum(m, "rmse_ms"),
            jnum(m, "r2"), jnum(m, "p95_abs_error_ms"), jstr(root, "grade"));
    fprintf(f, "## High-latency regions (Table V)\n\n| threshold | samples | MAE (ms) | RMSE (ms) "
               "| R^2 |\n|---|---|---|---|---|\n");
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(root, "high_latency"))
        fprintf(f, "| >= %.1f ms (P%g) | %.0f | %.2f | %.2f | %.4f |\n", jnum(row, "threshold_ms"),
                100 * jnum(row, "quantile"), jnum(row, "n"), jnum(row, "mae_ms"),
                jnum(row, "rmse_ms"), jnum(row, "r2"));
    fprintf(f, "\n## Per regime (Table VI)\n\n| users | pods | n | MAE (ms) | RMSE (ms) | R^2 |\n"
               "|---|---|---|---|---|---|\n");
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(root, "per_regime"))
        fprintf(f, "| %.0f | %.0f | %.0f | %.2f | %.2f | %.4f |\n", jnum(row, "users"),
                jnum(row, "pods"), jnum(row, "n"), jnum(row, "mae_ms"), jnum(row, "rmse_ms"),
                jnum(row, "r2"));
    fprintf(f, "\n![MAE per regime](error-per-regime.svg)\n\n"
               "![Predicted against observed](predicted-vs-observed.svg)\n\n");
    model_report_validation(f, cJSON_GetObjectItemCaseSensitive(root, "validation"));
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "validation")))
        fprintf(f, "\n![What-if deltas](whatif-deltas.svg)\n");
}

/* Bars of MAE per test regime on a log scale (errors span 10 ms .. 10 s). */
static void model_report_svg(FILE *f, const cJSON *root)
{
    const cJSON *regimes = cJSON_GetObjectItemCaseSensitive(root, "per_regime"), *row;
    int n = cJSON_GetArraySize(regimes), i = 0;
    double max = 1;
    cJSON_ArrayForEach(row, regimes)
        if (jnum(row, "mae_ms") > max)
            max = jnum(row, "mae_ms");
    double top = pow(10, ceil(log10(max))), w = 60, h = 240, left = 60;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n", left + w * (n ? n : 1) + 20, h + 60);
    fprintf(f, "<text x=\"%.0f\" y=\"14\">MAE per regime (ms, log scale)</text>\n", left);
    for (double t = 1; t <= top; t *= 10) {
        double y = 20 + h - h * log10(t) / log10(top);
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"4\" y=\"%.1f\">%g</text>\n", left, left + w * n, y, y, y + 4, t);
    }
    cJSON_ArrayForEach(row, regimes) {
        double mae = jnum(row, "mae_ms"), v = mae > 1 ? log10(mae) / log10(top) : 0;
        double x = left + w * i + 8, y = 20 + h - h * v;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.1f\" fill=\"#4477aa\"/>"
                   "<text x=\"%.1f\" y=\"%.0f\">%.0fx%.0f</text>\n", x, y, w - 16, 20 + h - y, x,
                h + 36, jnum(row, "users"), jnum(row, "pods"));
        i++;
    }
    fputs("</svg>\n", f);
}

/* Signed log axis: deltas span -500 .. +600 ms and the small ones matter. */
static double model_symlog(double v) { return v < 0 ? -log10(1 - v) : log10(1 + v); }

/* What-if deltas (Table VII's transitions): each transition's mean
 * predicted delta against its mean observed delta, by both methods; the
 * diagonal is a perfect answer, the off-sign quadrants wrong directions. */
static void model_report_whatif_svg(FILE *f, const cJSON *root)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "validation"), *sc, *t;
    double size = 360, pad = 50, lim = 1;
    cJSON_ArrayForEach(sc, cJSON_GetObjectItemCaseSensitive(v, "scenarios"))
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(sc, "transitions"))
    {
        const char *keys[] = { "mean_observed_delta_ms", "matched_mean_predicted_delta_ms",
                               "counterfactual_mean_predicted_delta_ms" };
        for (int k = 0; k < 3; k++) {
            double m = fabs(model_symlog(jnum(t, keys[k])));
            if (isfinite(m) && m > lim)
                lim = m;
        }
    }
    lim = ceil(lim);
#define WHATIF_AXIS(val) (pad + size / 2 + size / 2 * model_symlog(val) / lim)
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n", size + 2 * pad, size + 2 * pad);
    fprintf(f, "<text x=\"%.0f\" y=\"16\">What-if deltas per transition (ms, signed log): "
               "predicted against observed</text>\n", pad);
    fprintf(f, "<text x=\"%.0f\" y=\"32\" fill=\"#4477aa\">o matched</text>"
               "<text x=\"%.0f\" y=\"32\" fill=\"#cc6677\">+ counterfactual</text>\n",
            pad, pad + 90);
    for (double e = -1; e < lim; e++)
        for (int sign = -1; sign <= (e < 0 ? -1 : 1); sign += 2) {
            double val = e < 0 ? 0 : sign * pow(10, e), p = WHATIF_AXIS(val);
            fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#eee\"/>"
                       "<text x=\"%.1f\" y=\"%.0f\" font-size=\"9\">%g</text>\n",
                    p, p, pad, pad + size, p - 6, pad + size + 14, val);
            fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                       "<text x=\"4\" y=\"%.1f\" font-size=\"9\">%g</text>\n",
                    pad, pad + size, size + 2 * pad - p, size + 2 * pad - p,
                    size + 2 * pad - p + 3, val);
        }
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#999\"/>\n", pad,
            pad + size, pad + size, pad);
    cJSON_ArrayForEach(sc, cJSON_GetObjectItemCaseSensitive(v, "scenarios"))
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(sc, "transitions"))
    {
        double x = WHATIF_AXIS(jnum(t, "mean_observed_delta_ms"));
        double ym = size + 2 * pad - WHATIF_AXIS(jnum(t, "matched_mean_predicted_delta_ms"));
        double yc = size + 2 * pad - WHATIF_AXIS(jnum(t, "counterfactual_mean_predicted_delta_ms"));
        if (isfinite(x) && isfinite(ym))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"none\" stroke=\"#4477aa\"/>\n",
                    x, ym);
        if (isfinite(x) && isfinite(yc))
            fprintf(f, "<path d=\"M%.1f %.1fh6M%.1f %.1fv6\" stroke=\"#cc6677\"/>\n", x - 3, yc,
                    x, yc - 3);
    }
#undef WHATIF_AXIS
    fputs("</svg>\n", f);
}

/* The sample of test rows (predictions.csv), for the scatter plot. */
typedef struct model_sample {
    double *observed, *predicted;
    size_t n;
} model_sample;

static int model_sample_load(const char *path, model_sample *s)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f)
        return NDT_ERROR;
    s->observed = malloc(MODEL_SAMPLE_MAX * sizeof(double));
    s->predicted = malloc(MODEL_SAMPLE_MAX * sizeof(double));
    if (!s->observed || !s->predicted || !fgets(line, sizeof(line), f)) {
        fclose(f);
        return NDT_ERROR;
    }
    while (s->n < MODEL_SAMPLE_MAX && fgets(line, sizeof(line), f)) {
        long long ts;
        int users, pods;
        if (sscanf(line, "%lld,%d,%d,%lf,%lf", &ts, &users, &pods, &s->observed[s->n],
                   &s->predicted[s->n]) == 5 && isfinite(s->observed[s->n]) &&
            isfinite(s->predicted[s->n]))
            s->n++;
    }
    fclose(f);
    return NDT_OK;
}

/* Position of v (ms, at least 1) on a log axis spanning 10^l0 .. 10^l1. */
static double model_log_axis(double v, double l0, double l1, double size)
{
    return size * (log10(fmax(v, 1)) - l0) / (l1 - l0);
}

/* Log-log scatter of predicted against observed ms, with the y = x line. */
static void model_report_scatter(FILE *f, const model_sample *s)
{
    double lo = INFINITY, hi = -INFINITY, size = 320, pad = 50;
    for (size_t i = 0; i < s->n; i++) {
        lo = fmin(lo, fmax(fmin(s->observed[i], s->predicted[i]), 1));
        hi = fmax(hi, fmax(s->observed[i], s->predicted[i]));
    }
    double l0 = s->n ? floor(log10(lo)) : 0, l1 = s->n ? ceil(log10(fmax(hi, 1))) : 1;
    if (l1 <= l0)
        l1 = l0 + 1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n", size + 2 * pad, size + 2 * pad);
    fprintf(f, "<text x=\"%.0f\" y=\"16\">predicted against observed latency (ms, log-log, %zu "
               "test rows)</text>\n", pad, s->n);
    for (double e = l0; e <= l1; e++) {
        double p = model_log_axis(pow(10, e), l0, l1, size);
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#ddd\"/>"
                   "<text x=\"%.1f\" y=\"%.0f\">%g</text>\n", pad + p, pad + p, pad, pad + size,
                pad + p - 8, pad + size + 16, pow(10, e));
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"2\" y=\"%.1f\">%g</text>\n", pad, pad + size, pad + size - p,
                pad + size - p, pad + size - p + 4, pow(10, e));
    }
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#aa3377\"/>\n", pad,
            pad + size, pad + size, pad);
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.5\" fill=\"#4477aa\" "
                   "fill-opacity=\"0.4\"/>\n", pad + model_log_axis(s->observed[i], l0, l1, size),
                pad + size - model_log_axis(s->predicted[i], l0, l1, size));
    fputs("</svg>\n", f);
}

static int model_report_scatter_file(const char *out_dir, const model_sample *s, char *err,
                                     size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/predicted-vs-observed.svg", out_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return NDT_ERROR;
    }
    model_report_scatter(f, s);
    if (ferror(f) | (fclose(f) != 0) || rename(tmp, path) != 0) {
        snprintf(err, errlen, "writing %s: %s", path, strerror(errno));
        remove(tmp);
        return NDT_ERROR;
    }
    return NDT_OK;
}

typedef void (*model_report_fn)(FILE *f, const cJSON *root);

static int model_report_file(const char *out_dir, const char *name, model_report_fn fn,
                             const cJSON *root, char *err, size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return NDT_ERROR;
    }
    fn(f, root);
    if (ferror(f) | (fclose(f) != 0) || rename(tmp, path) != 0) {
        snprintf(err, errlen, "writing %s: %s", path, strerror(errno));
        remove(tmp);
        return NDT_ERROR;
    }
    return NDT_OK;
}

int model_report_write(const char *dir, const char *id, const char *out_dir, char *err,
                       size_t errlen)
{
    char path[PATH_MAX + 32];
    cJSON *root = NULL;
    char *text = NULL;
    model_sample sample = { 0 };
    int rc = NDT_EBADCONF;
    if (!id[0] || id[0] == '.' || strchr(id, '/')) {
        snprintf(err, errlen, "--model: '%s' is not a registry entry name", id);
        return NDT_EBADCONF;
    }
    snprintf(path, sizeof(path), "%s/%s/model.json", dir, id);
    size_t n;
    if (ndt_file_read(path, MODEL_REPORT_JSON_MAX, &text, &n, err, errlen) != NDT_OK)
        return NDT_EBADCONF;
    root = cJSON_ParseWithLength(text, n);
    if (!root || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "metrics")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "per_regime"))) {
        snprintf(err, errlen, "%s: not an ndtpipe model.json (no metrics or per_regime)", path);
        goto done;
    }
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "--out %s: %s", out_dir, strerror(errno));
        goto done;
    }
    rc = model_report_file(out_dir, "report.md", model_report_tables, root, err, errlen);
    if (rc == NDT_OK)
        rc = model_report_file(out_dir, "error-per-regime.svg", model_report_svg, root, err, errlen);
    if (rc == NDT_OK && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "validation")))
        rc = model_report_file(out_dir, "whatif-deltas.svg", model_report_whatif_svg, root, err,
                               errlen);
    snprintf(path, sizeof(path), "%s/%s/predictions.csv", dir, id);
    if (rc == NDT_OK && model_sample_load(path, &sample) == NDT_OK)
        rc = model_report_scatter_file(out_dir, &sample, err, errlen);
done:
    free(sample.observed);
    free(sample.predicted);
    cJSON_Delete(root);
    free(text);
    return rc;
}
