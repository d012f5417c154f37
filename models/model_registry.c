/*
 * model_registry.c: the model registry, one versioned directory per model.
 *
 *   DIR/<model-id>/model.ubj    XGBoost's own UBJSON save (loads in ms), or
 *   DIR/<model-id>/model.dnn    the DNN's checksummed binary (model_dnn.c)
 *   DIR/<model-id>/model.json   metadata: feature spec, training window and
 *                               regimes, parameters, metrics, grade, time
 *   DIR/<model-id>/predictions.csv  a sample (<= MODEL_SAMPLE_MAX rows) of
 *                               the test rows, observed and predicted ms,
 *                               for `ndtpipe report`'s plots
 *
 * model.json's "kind" says which ("xgboost" or "dnn").
 * The id is "xgb-YYYYmmddTHHMMSS-<8 hex>" ("dnn-..." for a DNN), the hex an FNV-1a hash of the
 * model bytes, so two models trained in the same second still differ and a
 * reader can tell a model file from the id.  A model is written into a
 * temporary directory beside its final place and renamed, so a crash or a
 * full disk never leaves a half-registered model; an existing id is never
 * overwritten.  Loading checks the feature spec first: a model trained on
 * another feature vector would answer nonsense without any error.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "common/file.h"
#include "models/models.h"

#define MODEL_JSON_MAX (4u << 20) /* model.json is metadata: a few kB */

void model_make_id(const char *prefix, int64_t created_s, const char *bytes, size_t len, char *id,
                   size_t size)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)bytes[i]) * 16777619u;
    time_t t = (time_t)created_s;
    struct tm tm;
    char when[32];
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y%m%dT%H%M%S", &tm);
    snprintf(id, size, "%s-%s-%08x", prefix, when, h);
}

static cJSON *model_metrics_json(const model_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)m->n);
    cJSON_AddNumberToObject(o, "mae_ms", m->mae);
    cJSON_AddNumberToObject(o, "rmse_ms", m->rmse);
    if (m->r2 == m->r2)
        cJSON_AddNumberToObject(o, "r2", m->r2);
    else
        cJSON_AddNullToObject(o, "r2");
    cJSON_AddNumberToObject(o, "p95_abs_error_ms", m->p95_abs);
    cJSON_AddNumberToObject(o, "mean_observed_ms", m->mean_observed);
    return o;
}

static void model_eval_json(cJSON *root, const model_eval *e)
{
    cJSON_AddItemToObject(root, "metrics", model_metrics_json(&e->overall));
    cJSON_AddStringToObject(root, "grade", model_grade_name(e->grade));
    cJSON *regimes = cJSON_AddArrayToObject(root, "per_regime");
    for (size_t i = 0; i < e->nregimes; i++) {
        cJSON *r = model_metrics_json(&e->regimes[i].metrics);
        cJSON_AddNumberToObject(r, "users", e->regimes[i].users);
        cJSON_AddNumberToObject(r, "pods", e->regimes[i].pods);
        cJSON_AddItemToArray(regimes, r);
    }
    cJSON *thresholds = cJSON_AddArrayToObject(root, "high_latency");
    for (int t = 0; t < MODEL_NTHRESHOLDS; t++) {
        cJSON *r = model_metrics_json(&e->thresholds[t].metrics);
        cJSON_AddNumberToObject(r, "quantile", e->thresholds[t].quantile);
        cJSON_AddNumberToObject(r, "threshold_ms", e->thresholds[t].threshold_ms);
        cJSON_AddItemToArray(thresholds, r);
    }
}

char *model_info_json(const model_info *info, int with_params)
{
    cJSON *root = cJSON_CreateObject();
    char created[32];
    time_t t = (time_t)info->created_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(root, "model_id", info->id);
    cJSON_AddStringToObject(root, "model", info->kind);
    cJSON_AddStringToObject(root, "kind", info->kind);
    cJSON_AddStringToObject(root, "created", created);
    cJSON_AddNumberToObject(root, "n_train", (double)info->n_train);
    cJSON_AddNumberToObject(root, "n_test", (double)info->n_test);
    cJSON_AddNumberToObject(root, "train_seconds", info->train_seconds);
    if (info->eval)
        model_eval_json(root, info->eval);
    if (with_params) {
        cJSON *spec = cJSON_AddObjectToObject(root, "features");
        cJSON_AddStringToObject(spec, "spec", feat_spec);
        cJSON *names = cJSON_AddArrayToObject(spec, "names");
        for (int j = 0; j < FEAT_DIM; j++)
            cJSON_AddItemToArray(names, cJSON_CreateString(feat_names[j]));
        cJSON_AddStringToObject(spec, "target", "ln(1 + avg_total_infer_ms)");
        cJSON_AddStringToObject(spec, "trim", feat_trim_name(info->trim));
        cJSON_AddStringToObject(spec, "baseline", feat_baseline_name(info->baseline));
        cJSON *train = cJSON_AddObjectToObject(root, "training");
        cJSON_AddStringToObject(train, "train", info->train_selector);
        cJSON_AddStringToObject(train, "test", info->test_selector);
        cJSON_AddNumberToObject(train, "from_ms", (double)info->train_from_ms);
        cJSON_AddNumberToObject(train, "to_ms", (double)info->train_to_ms);
        cJSON *regimes = cJSON_AddArrayToObject(train, "regimes");
        for (size_t i = 0; i < info->ntrain_regimes; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, "users", info->train_regimes[i].users);
            cJSON_AddNumberToObject(r, "pods", info->train_regimes[i].pods);
            cJSON_AddNumberToObject(r, "n", (double)info->train_regimes[i].n);
            cJSON_AddItemToArray(regimes, r);
        }
        cJSON *p = cJSON_AddObjectToObject(root, "parameters");
        if (info->dnn) {
            cJSON *layers = cJSON_AddArrayToObject(p, "hidden_layers");
            static const int hidden[] = { 256, 128, 64 };
            for (size_t i = 0; i < NDT_ARRAY_LEN(hidden); i++)
                cJSON_AddItemToArray(layers, cJSON_CreateNumber(hidden[i]));
            cJSON_AddStringToObject(p, "loss", "huber");
            cJSON_AddStringToObject(p, "optimizer", "adam");
            cJSON_AddNumberToObject(p, "epochs", info->dnn->epochs);
            cJSON_AddNumberToObject(p, "batch", info->dnn->batch);
            cJSON_AddNumberToObject(p, "learning_rate", info->dnn->lr);
            cJSON_AddNumberToObject(p, "dropout", info->dnn->dropout);
            cJSON_AddNumberToObject(p, "huber_delta", info->dnn->huber_delta);
            cJSON_AddNumberToObject(p, "threads", info->dnn->threads);
            cJSON_AddNumberToObject(p, "seed", (double)info->dnn->seed);
            goto params_done;
        }
        cJSON_AddStringToObject(p, "objective", "reg:squarederror");
        cJSON_AddStringToObject(p, "tree_method", "hist");
        cJSON_AddNumberToObject(p, "rounds", info->params.rounds);
        cJSON_AddNumberToObject(p, "max_depth", info->params.depth);
        cJSON_AddNumberToObject(p, "eta", info->params.eta);
        cJSON_AddNumberToObject(p, "nthread", info->params.threads);
        cJSON_AddNumberToObject(p, "seed", (double)info->params.seed);
        char monotone[4 * FEAT_DIM + 8] = "none";
        if (info->params.monotone)
            model_monotone_constraints(monotone, sizeof(monotone));
        cJSON_AddStringToObject(p, "monotone_constraints", monotone);
    params_done:;
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* Every k-th test row, k chosen so at most MODEL_SAMPLE_MAX remain: an
 * even sample over time and regimes, bounded whatever the dataset size. */
static int model_write_sample(const char *path, const model_info *info, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NDT_ERROR;
    }
    size_t stride = (info->n_test + MODEL_SAMPLE_MAX - 1) / MODEL_SAMPLE_MAX;
    fputs("timestamp_ms,users,pods,observed_ms,predicted_ms\n", f);
    for (size_t i = 0; i < info->n_test; i += stride ? stride : 1) {
        const feat_raw *r = &info->test_rows[i];
        fprintf(f, "%lld,%d,%d,%.17g,%.17g\n", (long long)r->timestamp_ms, r->users, r->pods,
                r->infer_ms, info->test_predicted_ms[i]);
    }
    if (ferror(f) | (fclose(f) != 0)) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return NDT_ERROR;
    }
    return NDT_OK;
}

static int model_write_file(const char *path, const char *data, size_t len, char *err,
                            size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NDT_ERROR;
    }
    size_t w = fwrite(data, 1, len, f);
    int flushed = fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0 || w != len || !flushed) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return NDT_ERROR;
    }
    return NDT_OK;
}

const char *model_file_name(const char *kind)
{
    return kind && strcmp(kind, "dnn") == 0 ? "model.dnn" : "model.ubj";
}

int model_registry_save(const char *dir, const model_info *info, const char *ubj, size_t ubj_len,
                        char *err, size_t errlen)
{
    char tmp[PATH_MAX], final[PATH_MAX], file[PATH_MAX + 32];
    char *json = NULL;
    struct stat st;
    int rc = NDT_ERROR;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "--registry %s: %s", dir, strerror(errno));
        return NDT_EBADCONF;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--registry %s: not a directory", dir);
        return NDT_EBADCONF;
    }
    snprintf(final, sizeof(final), "%s/%s", dir, info->id);
    if (stat(final, &st) == 0) {
        snprintf(err, errlen, "%s: already exists; a registered model is never overwritten", final);
        return NDT_ERROR;
    }
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-XXXXXX", dir, info->id);
    if (!mkdtemp(tmp)) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return NDT_ERROR;
    }
    /* mkdtemp makes it 0700; a registry is read by other processes (serve). */
    if (chmod(tmp, 0755) != 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    snprintf(file, sizeof(file), "%s/%s", tmp, model_file_name(info->kind));
    if (model_write_file(file, ubj, ubj_len, err, errlen) != NDT_OK)
        goto fail;
    json = model_info_json(info, 1);
    if (!json) {
        snprintf(err, errlen, "out of memory writing model.json");
        goto fail;
    }
    snprintf(file, sizeof(file), "%s/model.json", tmp);
    if (model_write_file(file, json, strlen(json), err, errlen) != NDT_OK)
        goto fail;
    snprintf(file, sizeof(file), "%s/predictions.csv", tmp);
    if (info->test_rows && model_write_sample(file, info, err, errlen) != NDT_OK)
        goto fail;
    if (rename(tmp, final) != 0) {
        snprintf(err, errlen, "renaming %s to %s: %s", tmp, final, strerror(errno));
        goto fail;
    }
    free(json);
    return NDT_OK;
fail:
    free(json);
    snprintf(file, sizeof(file), "%s/%s", tmp, model_file_name(info->kind));
    unlink(file);
    snprintf(file, sizeof(file), "%s/model.json", tmp);
    unlink(file);
    snprintf(file, sizeof(file), "%s/predictions.csv", tmp);
    unlink(file);
    rmdir(tmp);
    return rc;
}

/* Reads DIR/<id>/model.json: checks the feature spec, gives the kind
 * ("xgboost" when absent: models registered before the DNN) and baseline. */
int model_registry_meta(const char *dir, const char *id, char *kind, size_t kind_size,
                        feat_baseline *baseline, char *err, size_t errlen)
{
    char path[PATH_MAX + 32], *text = NULL;
    cJSON *root = NULL;
    int rc;
    if (!id[0] || id[0] == '.' || strchr(id, '/')) {
        snprintf(err, errlen, "model id '%s' is not a registry entry name", id);
        return NDT_EBADCONF;
    }
    snprintf(path, sizeof(path), "%s/%s/model.json", dir, id);
    size_t text_len;
    if (ndt_file_read(path, MODEL_JSON_MAX, &text, &text_len, err, errlen) != NDT_OK)
        return NDT_EBADCONF;
    root = cJSON_Parse(text);
    const cJSON *features = cJSON_GetObjectItemCaseSensitive(root, "features");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(features, "spec");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(features, "baseline");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "kind");
    rc = NDT_EBADCONF;
    if (!root || !cJSON_IsString(spec)) {
        snprintf(err, errlen, "%s: not a model.json (no features.spec)", path);
    } else if (strcmp(spec->valuestring, feat_spec) != 0) {
        snprintf(err, errlen, "%s: the model was trained on features '%s', this build computes '%s'",
                 path, spec->valuestring, feat_spec);
    } else if (base && (!cJSON_IsString(base) || feat_baseline_parse(base->valuestring, baseline) != NDT_OK)) {
        snprintf(err, errlen, "%s: features.baseline: expected \"none\" or \"backlog\"", path);
    } else if (k && (!cJSON_IsString(k) || (strcmp(k->valuestring, "xgboost") != 0 &&
                                            strcmp(k->valuestring, "dnn") != 0))) {
        snprintf(err, errlen, "%s: kind: expected \"xgboost\" or \"dnn\"", path);
    } else {
        if (!base)
            *baseline = FEAT_BASELINE_NONE;
        snprintf(kind, kind_size, "%s", k ? k->valuestring : "xgboost");
        rc = NDT_OK;
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}

int model_registry_load(const char *dir, const char *id, int threads, model_xgb **out,
                        feat_baseline *baseline, char *err, size_t errlen)
{
    char path[PATH_MAX + 32], kind[16];
    int rc = model_registry_meta(dir, id, kind, sizeof(kind), baseline, err, errlen);
    if (rc != NDT_OK)
        return rc;
    if (strcmp(kind, "xgboost") != 0) {
        snprintf(err, errlen, "%s/%s: a %s model, not XGBoost (model_predictor_load serves both)",
                 dir, id, kind);
        return NDT_EBADCONF;
    }
    snprintf(path, sizeof(path), "%s/%s/model.ubj", dir, id);
    return model_xgb_load_file(path, threads, out, err, errlen);
}
