/*
 * model_validate.c: matched-pairs consistency (paper 002, IV-C, Table VII)
 * and the deployment grade.
 *
 * Why matched pairs: pointwise accuracy says nothing about whether a model
 * knows what adding a pod does (the paper's DNN scores R^2 0.9945 and
 * answers what-ifs at random).  So the ground truth for a what-if is taken
 * from the data itself: two observed regimes that differ in one control
 * variable, their samples paired at the same phase of each regime's steady
 * part (the transient after a change skipped, so a new pod's cold start or
 * a draining queue is compared with the same age in the other regime, and
 * the per-window noise averages out over many pairs).
 *
 * Why a transition's direction rather than each pair's: a 20 ms sample
 * scatters by 10-40 ms around its regime (docs/TESTBED.md), more than many
 * real effects (600 users, 5 -> 6 pods: -10 ms).  A single pair's observed
 * sign is mostly noise; the transition's mean delta, once it is two
 * standard errors from zero, is the direction a correct answer must have.
 * Sign Agreement is the share of pairs whose predicted delta has it.
 *
 * Cost is bounded: at most MODEL_VALIDATE_MAX_PAIRS pairs per transition,
 * so a long campaign costs what a short one does.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "common/file.h"
#include "models/model_validate.h"

const model_deploy_bound model_deploy_bounds[2] = {
    { MODEL_DEPLOY_EXCELLENT, 0.90, MODEL_SENSITIVITY_HIGH },
    { MODEL_DEPLOY_RELIABLE, 0.75, MODEL_SENSITIVITY_LOW },
};

model_sensitivity model_sensitivity_of(double ratio)
{
    if (ratio >= MODEL_SENSITIVITY_HIGH_MIN)
        return MODEL_SENSITIVITY_HIGH;
    if (ratio >= MODEL_SENSITIVITY_LOW_MIN)
        return MODEL_SENSITIVITY_LOW;
    return MODEL_SENSITIVITY_NEGLIGIBLE; /* also NaN and a reversed response */
}

const char *model_sensitivity_name(model_sensitivity s)
{
    static const char *const names[] = { "High", "Low", "Negligible" };
    return (unsigned)s < 3 ? names[s] : "?";
}

const char *model_deploy_grade_name(model_deploy_grade g)
{
    static const char *const names[] = { "Excellent", "Reliable", "Unreliable" };
    return (unsigned)g < 3 ? names[g] : "?";
}

model_deploy_grade model_deploy_grade_of(const model_scenario *s, size_t n, int counterfactual)
{
    for (size_t b = 0; b < NDT_ARRAY_LEN(model_deploy_bounds); b++) {
        const model_deploy_bound *bound = &model_deploy_bounds[b];
        int ok = n > 0;
        for (size_t i = 0; i < n && ok; i++) {
            const model_delta_stats *st = counterfactual ? &s[i].counterfactual : &s[i].matched;
            /* NaN (no pair with a direction) fails every bound. */
            ok = st->sign_agreement >= bound->min_sign_agreement &&
                 st->category <= bound->min_sensitivity;
        }
        if (ok)
            return bound->grade;
    }
    return MODEL_DEPLOY_UNRELIABLE;
}

void model_delta_stats_compute(const model_transition *t, size_t nt, const double *predicted,
                               model_delta_stats *out)
{
    size_t k = 0, all = 0, agree = 0, directed = 0;
    double abs_sum = 0, pred_sum = 0, obs_sum = 0, cross = 0, square = 0;
    for (size_t i = 0; i < nt; i++) {
        double p_sum = 0;
        for (size_t j = 0; j < t[i].n_pairs; j++, k++) {
            double p = predicted[k];
            p_sum += p;
            abs_sum += fabs(p - t[i].mean_observed);
            if (t[i].direction != 0) {
                directed++;
                agree += (p > 0 && t[i].direction > 0) || (p < 0 && t[i].direction < 0);
            }
        }
        all += t[i].n_pairs;
        pred_sum += p_sum;
        obs_sum += t[i].mean_observed * (double)t[i].n_pairs;
        /* Regression through the origin of the transitions' predicted
         * means on their observed means, weighted by pairs: how much of the
         * observed effect the model reproduces across regime pairs. */
        if (t[i].n_pairs) {
            double p_mean = p_sum / (double)t[i].n_pairs;
            cross += (double)t[i].n_pairs * p_mean * t[i].mean_observed;
            square += (double)t[i].n_pairs * t[i].mean_observed * t[i].mean_observed;
        }
    }
    *out = (model_delta_stats){
        .n_pairs = directed,
        .sign_agreement = directed ? (double)agree / (double)directed : NAN,
        .mae_delta = all ? abs_sum / (double)all : NAN,
        .mean_predicted = all ? pred_sum / (double)all : NAN,
        .mean_observed = all ? obs_sum / (double)all : NAN,
        .sensitivity = square > 0 ? cross / square : NAN,
    };
    out->category = model_sensitivity_of(out->sensitivity);
}

/* ---- pairs ------------------------------------------------------------ */

/* Indices of regime (users, pods) in dataset order, after its transient. */
static size_t *steady_rows(const feat_dataset *ds, int users, int pods, size_t *n)
{
    size_t count = 0;
    for (size_t i = 0; i < ds->n; i++)
        count += ds->rows[i].users == users && ds->rows[i].pods == pods;
    size_t skip = (size_t)floor(MODEL_VALIDATE_TRANSIENT * (double)count);
    *n = count - skip;
    if (*n == 0)
        return NULL;
    size_t *idx = malloc(*n * sizeof(*idx));
    if (!idx)
        return NULL;
    size_t seen = 0, k = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->rows[i].users == users && ds->rows[i].pods == pods && seen++ >= skip)
            idx[k++] = i;
    return idx;
}

int model_validate_pairs(const feat_dataset *ds, int users_a, int pods_a, int users_b, int pods_b,
                         size_t max_pairs, size_t **before, size_t **after, size_t *n, char *err,
                         size_t errlen)
{
    size_t na = 0, nb = 0;
    *before = *after = NULL;
    *n = 0;
    size_t *a = steady_rows(ds, users_a, pods_a, &na);
    size_t *b = steady_rows(ds, users_b, pods_b, &nb);
    if ((na && !a) || (nb && !b))
        goto oom;
    if (na < FEAT_MIN_REGIME_ROWS || nb < FEAT_MIN_REGIME_ROWS) {
        free(a);
        free(b);
        return NDT_OK;
    }
    size_t m = na < max_pairs ? na : max_pairs;
    *before = malloc(m * sizeof(size_t));
    *after = malloc(m * sizeof(size_t));
    if (!*before || !*after)
        goto oom;
    /* The i-th of m evenly spaced phases of both steady parts. */
    for (size_t i = 0; i < m; i++) {
        (*before)[i] = a[(size_t)((double)i * (double)na / (double)m)];
        (*after)[i] = b[(size_t)((double)i * (double)nb / (double)m)];
    }
    *n = m;
    free(a);
    free(b);
    return NDT_OK;
oom:
    free(a);
    free(b);
    free(*before);
    free(*after);
    *before = *after = NULL;
    snprintf(err, errlen, "out of memory pairing regimes");
    return NDT_ERROR;
}

/* ---- scenarios -------------------------------------------------------- */

static int has_regime(const feat_regime *r, size_t n, int users, int pods)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].users == users && r[i].pods == pods)
            return 1;
    return 0;
}

static int add_transition(model_scenario *s, int fu, int fp, int tu, int tp)
{
    model_transition *t = realloc(s->transitions, (s->ntransitions + 1) * sizeof(*t));
    if (!t)
        return NDT_ERROR;
    s->transitions = t;
    t[s->ntransitions++] = (model_transition){ .from_users = fu, .from_pods = fp, .to_users = tu,
                                               .to_pods = tp };
    return NDT_OK;
}

/* The scenarios the data can show at the focus load. */
static int plan_scenarios(const feat_regime *r, size_t nr, int users, model_validation *v,
                          char *err, size_t errlen)
{
    model_scenario *plus = &v->scenarios[0], *minus = &v->scenarios[1];
    snprintf(plus->name, sizeof(plus->name), "pods+1");
    plus->pods_step = 1;
    snprintf(minus->name, sizeof(minus->name), "pods-1");
    minus->pods_step = -1;
    v->nscenarios = 2;
    for (size_t i = 0; i < nr; i++) {
        if (r[i].users != users)
            continue;
        if (has_regime(r, nr, users, r[i].pods + 1) &&
            add_transition(plus, users, r[i].pods, users, r[i].pods + 1) != NDT_OK)
            goto oom;
        if (r[i].pods > 1 && has_regime(r, nr, users, r[i].pods - 1) &&
            add_transition(minus, users, r[i].pods, users, r[i].pods - 1) != NDT_OK)
            goto oom;
    }
    if (!plus->ntransitions) {
        snprintf(err, errlen, "the data has no two adjacent pod counts at %d users: "
                 "pods +1 and -1 cannot be validated", users);
        return NDT_EBADCONF;
    }
    /* users -> every lower users value, highest first (regimes are sorted). */
    for (size_t i = nr; i-- > 0;) {
        int lower = r[i].users;
        if (lower >= users || (i + 1 < nr && r[i + 1].users == lower))
            continue;
        if (v->nscenarios == MODEL_VALIDATE_MAX_SCENARIOS)
            break;
        model_scenario *s = &v->scenarios[v->nscenarios];
        snprintf(s->name, sizeof(s->name), "users %d->%d", users, lower);
        s->to_users = lower;
        for (size_t j = 0; j < nr; j++)
            if (r[j].users == users && has_regime(r, nr, lower, r[j].pods) &&
                add_transition(s, users, r[j].pods, lower, r[j].pods) != NDT_OK)
                goto oom;
        if (s->ntransitions)
            v->nscenarios++;
    }
    if (v->nscenarios == 2) {
        snprintf(err, errlen, "the data has no lower users value on the pod counts of %d users: "
                 "no users scenario can be validated", users);
        return NDT_EBADCONF;
    }
    return NDT_OK;
oom:
    snprintf(err, errlen, "out of memory planning scenarios");
    return NDT_ERROR;
}

typedef struct run_ctx {
    const feat_dataset *ds;
    const double *ms; /* model's prediction of every row */
    model_predict_fn predict;
    void *pctx;
} run_ctx;

/* Pairs, observed deltas and both predicted deltas of one scenario. */
static int run_scenario(const run_ctx *c, model_scenario *s, char *err, size_t errlen)
{
    double *matched = NULL, *cf = NULL, *cf_ms = NULL;
    feat_raw *cf_rows = NULL;
    size_t total = 0;
    int rc = NDT_ERROR;
    for (size_t t = 0; t < s->ntransitions; t++) {
        model_transition *tr = &s->transitions[t];
        size_t *before, *after, n;
        if ((rc = model_validate_pairs(c->ds, tr->from_users, tr->from_pods, tr->to_users,
                                       tr->to_pods, MODEL_VALIDATE_MAX_PAIRS, &before, &after, &n,
                                       err, errlen)) != NDT_OK)
            goto done;
        rc = NDT_ERROR;
        double *m2 = realloc(matched, (total + n + 1) * sizeof(double));
        if (m2)
            matched = m2;
        double *c2 = realloc(cf, (total + n + 1) * sizeof(double));
        if (c2)
            cf = c2;
        feat_raw *r2 = realloc(cf_rows, (n + 1) * sizeof(feat_raw));
        if (r2)
            cf_rows = r2;
        double *ms2 = realloc(cf_ms, (n + 1) * sizeof(double));
        if (ms2)
            cf_ms = ms2;
        if (!m2 || !c2 || !r2 || !ms2) {
            free(before);
            free(after);
            snprintf(err, errlen, "out of memory validating %s", s->name);
            goto done;
        }
        model_change change = { 0 };
        if (s->pods_step) {
            change.has_pods = 1;
            change.pods = tr->to_pods;
        } else {
            change.has_users = 1;
            change.users = tr->to_users;
        }
        double sum = 0, sum2 = 0;
        for (size_t i = 0; i < n; i++) {
            const feat_raw *a = &c->ds->rows[before[i]], *b = &c->ds->rows[after[i]];
            double d = b->infer_ms - a->infer_ms;
            sum += d;
            sum2 += d * d;
            matched[total + i] = c->ms[after[i]] - c->ms[before[i]];
            if ((rc = model_counterfactual(a, &change, &cf_rows[i], err, errlen)) != NDT_OK) {
                free(before);
                free(after);
                goto done;
            }
            rc = NDT_ERROR;
        }
        if (n && c->predict(c->pctx, cf_rows, n, cf_ms, err, errlen) != NDT_OK) {
            free(before);
            free(after);
            goto done;
        }
        double msum = 0, csum = 0;
        for (size_t i = 0; i < n; i++) {
            cf[total + i] = cf_ms[i] - c->ms[before[i]];
            msum += matched[total + i];
            csum += cf[total + i];
        }
        free(before);
        free(after);
        tr->n_pairs = n;
        if (n) {
            double mean = sum / (double)n;
            double var = n > 1 ? (sum2 - (double)n * mean * mean) / (double)(n - 1) : 0;
            tr->mean_observed = mean;
            tr->se_observed = sqrt(var > 0 ? var : 0) / sqrt((double)n);
            tr->direction = fabs(mean) >= MODEL_VALIDATE_MIN_T * tr->se_observed && mean != 0
                                ? (mean > 0 ? 1 : -1)
                                : 0;
            tr->mean_matched = msum / (double)n;
            tr->mean_counterfactual = csum / (double)n;
        }
        tr->sa_matched = tr->sa_counterfactual = NAN;
        if (tr->direction) {
            size_t am = 0, ac = 0;
            for (size_t i = 0; i < n; i++) {
                am += matched[total + i] * tr->direction > 0;
                ac += cf[total + i] * tr->direction > 0;
            }
            tr->sa_matched = (double)am / (double)n;
            tr->sa_counterfactual = (double)ac / (double)n;
        }
        total += n;
    }
    model_delta_stats_compute(s->transitions, s->ntransitions, matched, &s->matched);
    model_delta_stats_compute(s->transitions, s->ntransitions, cf, &s->counterfactual);
    if (s->matched.n_pairs == 0) {
        snprintf(err, errlen, "scenario %s: no transition has %d steady rows on both sides and a "
                 "change beyond its noise (%.0f standard errors); the data needs longer regimes",
                 s->name, FEAT_MIN_REGIME_ROWS, MODEL_VALIDATE_MIN_T);
        rc = NDT_EBADCONF;
        goto done;
    }
    rc = NDT_OK;
done:
    free(matched);
    free(cf);
    free(cf_rows);
    free(cf_ms);
    return rc;
}

int model_validate(const feat_dataset *ds, int users, model_predict_fn predict, void *ctx,
                   model_validation *out, char *err, size_t errlen)
{
    feat_regime *regimes = NULL;
    size_t nr = 0;
    double *ms = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = feat_regimes(ds, &regimes, &nr, err, errlen)) != NDT_OK)
        return rc;
    if (users == 0)
        for (size_t i = 0; i < nr; i++)
            users = regimes[i].users > users ? regimes[i].users : users;
    out->users = users;
    out->n_rows = ds->n;
    if ((rc = plan_scenarios(regimes, nr, users, out, err, errlen)) != NDT_OK)
        goto done;
    ms = malloc((ds->n ? ds->n : 1) * sizeof(*ms));
    if (!ms) {
        snprintf(err, errlen, "out of memory predicting %zu rows", ds->n);
        rc = NDT_ERROR;
        goto done;
    }
    if ((rc = predict(ctx, ds->rows, ds->n, ms, err, errlen)) != NDT_OK)
        goto done;
    run_ctx c = { .ds = ds, .ms = ms, .predict = predict, .pctx = ctx };
    for (size_t i = 0; i < out->nscenarios; i++)
        if ((rc = run_scenario(&c, &out->scenarios[i], err, errlen)) != NDT_OK)
            goto done;
    out->grade = model_deploy_grade_of(out->scenarios, out->nscenarios, 1);
    out->matched_grade = model_deploy_grade_of(out->scenarios, out->nscenarios, 0);
done:
    free(regimes);
    free(ms);
    if (rc != NDT_OK)
        model_validation_free(out);
    return rc;
}

void model_validation_free(model_validation *v)
{
    for (size_t i = 0; i < MODEL_VALIDATE_MAX_SCENARIOS; i++) {
        free(v->scenarios[i].transitions);
        v->scenarios[i].transitions = NULL;
        v->scenarios[i].ntransitions = 0;
    }
    v->nscenarios = 0;
}

/* ---- JSON and the registry --------------------------------------------- */

static void add_number(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

static cJSON *stats_json(const model_delta_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    add_number(o, "sign_agreement", s->sign_agreement);
    add_number(o, "mae_delta_ms", s->mae_delta);
    add_number(o, "mean_predicted_delta_ms", s->mean_predicted);
    add_number(o, "mean_observed_delta_ms", s->mean_observed);
    add_number(o, "sensitivity", s->sensitivity);
    cJSON_AddStringToObject(o, "sensitivity_category", model_sensitivity_name(s->category));
    cJSON_AddNumberToObject(o, "n_pairs", (double)s->n_pairs);
    return o;
}

static cJSON *validation_object(const model_validation *v)
{
    cJSON *root = cJSON_CreateObject();
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(root, "validated", when);
    cJSON_AddStringToObject(root, "deployment_grade", model_deploy_grade_name(v->grade));
    cJSON_AddStringToObject(root, "matched_grade", model_deploy_grade_name(v->matched_grade));
    cJSON_AddStringToObject(root, "graded_on", "counterfactual");
    cJSON_AddNumberToObject(root, "users", v->users);
    cJSON_AddNumberToObject(root, "n_rows", (double)v->n_rows);
    cJSON *arr = cJSON_AddArrayToObject(root, "scenarios");
    for (size_t i = 0; i < v->nscenarios; i++) {
        const model_scenario *s = &v->scenarios[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", s->name);
        add_number(o, "sign_agreement", s->counterfactual.sign_agreement);
        cJSON_AddItemToObject(o, "matched", stats_json(&s->matched));
        cJSON_AddItemToObject(o, "counterfactual", stats_json(&s->counterfactual));
        cJSON *ts = cJSON_AddArrayToObject(o, "transitions");
        for (size_t j = 0; j < s->ntransitions; j++) {
            const model_transition *t = &s->transitions[j];
            cJSON *to = cJSON_CreateObject();
            cJSON_AddNumberToObject(to, "from_users", t->from_users);
            cJSON_AddNumberToObject(to, "from_pods", t->from_pods);
            cJSON_AddNumberToObject(to, "to_users", t->to_users);
            cJSON_AddNumberToObject(to, "to_pods", t->to_pods);
            cJSON_AddNumberToObject(to, "n_pairs", (double)t->n_pairs);
            add_number(to, "mean_observed_delta_ms", t->mean_observed);
            add_number(to, "se_observed_delta_ms", t->se_observed);
            cJSON_AddNumberToObject(to, "direction", t->direction);
            add_number(to, "matched_mean_predicted_delta_ms", t->mean_matched);
            add_number(to, "counterfactual_mean_predicted_delta_ms", t->mean_counterfactual);
            add_number(to, "matched_sign_agreement", t->sa_matched);
            add_number(to, "counterfactual_sign_agreement", t->sa_counterfactual);
            cJSON_AddItemToArray(ts, to);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return root;
}

char *model_validation_json(const model_validation *v, const char *model_id)
{
    cJSON *root = validation_object(v);
    if (model_id)
        cJSON_AddStringToObject(root, "model_id", model_id);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

#define MODEL_JSON_MAX (4u << 20)

static int read_model_json(const char *dir, const char *id, char *path, size_t size, cJSON **out,
                           char *err, size_t errlen)
{
    if (!id[0] || id[0] == '.' || strchr(id, '/')) {
        snprintf(err, errlen, "model id '%s' is not a registry entry name", id);
        return NDT_EBADCONF;
    }
    snprintf(path, size, "%s/%s/model.json", dir, id);
    char *buf;
    size_t n;
    if (ndt_file_read(path, MODEL_JSON_MAX, &buf, &n, err, errlen) != NDT_OK)
        return NDT_EBADCONF;
    *out = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        snprintf(err, errlen, "%s: not a JSON object", path);
        return NDT_EBADCONF;
    }
    return NDT_OK;
}

int model_registry_trim(const char *dir, const char *id, feat_trim_mode *out, char *err,
                        size_t errlen)
{
    char path[PATH_MAX + 32];
    cJSON *root;
    int rc = read_model_json(dir, id, path, sizeof(path), &root, err, errlen);
    if (rc != NDT_OK)
        return rc;
    const cJSON *trim = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "features"), "trim");
    if (!cJSON_IsString(trim) || feat_trim_parse(trim->valuestring, out) != NDT_OK) {
        snprintf(err, errlen, "%s: features.trim: expected p1p99, iqr or none", path);
        rc = NDT_EBADCONF;
    }
    cJSON_Delete(root);
    return rc;
}

int model_registry_set_validation(const char *dir, const char *id, const model_validation *v,
                                  char *err, size_t errlen)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 64];
    cJSON *root;
    int rc = read_model_json(dir, id, path, sizeof(path), &root, err, errlen);
    if (rc != NDT_OK)
        return rc;
    cJSON_DeleteItemFromObjectCaseSensitive(root, "deployment_grade");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "validation");
    cJSON_AddStringToObject(root, "deployment_grade", model_deploy_grade_name(v->grade));
    cJSON_AddItemToObject(root, "validation", validation_object(v));
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        snprintf(err, errlen, "out of memory writing %s", path);
        return NDT_ERROR;
    }
    /* A temporary file beside it, synced, renamed over it: a reader (the
     * API) sees the old model.json or the new one, never half of one. */
    snprintf(tmp, sizeof(tmp), "%s/%s/.model.json.XXXXXX", dir, id);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        free(text);
        return NDT_ERROR;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    int ok = off == len && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "writing %s: %s", path, strerror(errno));
        unlink(tmp);
        return NDT_ERROR;
    }
    return NDT_OK;
}
