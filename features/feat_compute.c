/*
 * feat_compute.c: the feature vector, the target transform, quantiles,
 * regimes, per-regime trimming and row selectors.
 *
 * The indicators divide raw telemetry by the pod count so that equivalent
 * operating states look alike (400 users on 4 pods and 200 on 2 share a
 * workload intensity), which is what lets a model trained on 200 and 400
 * users answer for 600 (paper 002, V-B).  The definitions and their
 * reasons are in docs/FEATURES.md; this file is their only implementation,
 * shared by the batch command, training and (later) the streaming stage.
 *
 * Trimming works on the raw latency in ms, per regime, with quantiles by
 * linear interpolation (numpy's default, so a reader can check a result
 * with one line of Python).  Both bounds are inclusive.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "features/features.h"

const char *const feat_pod_attrs[FEAT_POD_NATTR] = {
    "avgDepthOnEnqueue", "avgBacklogEstimate", "processCpuUsage",
    "systemCpuUsage",    "systemMemoryUsage",  "avgInferenceTime",
};

void feat_pod_mean_add(feat_pod_mean *m, const double v[FEAT_POD_NATTR], unsigned has)
{
    m->members++;
    for (int a = 0; a < FEAT_POD_NATTR; a++) {
        if (has & (1u << a)) {
            m->sum[a] += v[a];
            m->n[a]++;
        }
    }
}

static double pod_mean(const feat_pod_mean *m, int a)
{
    return m->sum[a] / (double)m->n[a];
}

int feat_pod_mean_row(const feat_pod_mean *m, int64_t ts_ms, double users, const double *service_pods,
                      feat_raw *row)
{
    if (m->members == 0)
        return NDT_AGAIN;
    for (int a = 0; a < FEAT_POD_NATTR; a++) {
        if (m->n[a] == 0)
            return NDT_AGAIN;
    }
    double pods = service_pods ? *service_pods : (double)m->members;
    /* Written so that NaN fails too. */
    if (!(users >= 0 && users <= INT_MAX && pods >= 1 && pods <= INT_MAX))
        return NDT_AGAIN;
    *row = (feat_raw){
        .timestamp_ms = ts_ms,
        .users = (int)llround(users),
        .pods = (int)llround(pods),
        .depth = pod_mean(m, FEAT_POD_DEPTH),
        .backlog_s = pod_mean(m, FEAT_POD_BACKLOG),
        .cpu_process = pod_mean(m, FEAT_POD_CPU_PROCESS),
        .cpu_system = pod_mean(m, FEAT_POD_CPU_SYSTEM),
        .mem_system = pod_mean(m, FEAT_POD_MEM_SYSTEM),
        .infer_ms = pod_mean(m, FEAT_POD_INFER),
    };
    return NDT_OK;
}

const char *const feat_names[FEAT_DIM] = {
    "users",         "pods",           "workload_intensity", "congestion_index",
    "backlog_flow",  "compute_pressure", "memory_density",     "queue_delay_ms",
};

/* More users, more load per pod, longer queues, more backlog: slower; more
 * pods: faster.  CPU and memory are left free: both rise with load but
 * also with background work and cold pods that say nothing of the queue. */
const int feat_direction[FEAT_DIM] = {
    [FEAT_USERS] = 1,         [FEAT_PODS] = -1,           [FEAT_WORKLOAD_INTENSITY] = 1,
    [FEAT_CONGESTION_INDEX] = 1, [FEAT_BACKLOG_FLOW] = 1, [FEAT_COMPUTE_PRESSURE] = 0,
    [FEAT_MEMORY_DENSITY] = 0, [FEAT_QUEUE_DELAY] = 1,
};

const char feat_spec[] = "ndt-features-v2:users,pods,workload_intensity,congestion_index,"
                         "backlog_flow,compute_pressure,memory_density,queue_delay_ms;"
                         "target=ln(1+ms)";

void feat_compute(const feat_raw *r, double x[FEAT_DIM])
{
    double pods = (double)r->pods;
    x[FEAT_USERS] = (double)r->users;
    x[FEAT_PODS] = pods;
    x[FEAT_WORKLOAD_INTENSITY] = (double)r->users / pods;
    x[FEAT_CONGESTION_INDEX] = r->depth / pods;
    x[FEAT_BACKLOG_FLOW] = r->backlog_s / pods;
    x[FEAT_COMPUTE_PRESSURE] = r->cpu_process + r->cpu_system;
    x[FEAT_MEMORY_DENSITY] = r->mem_system / pods;
    x[FEAT_QUEUE_DELAY] = 1000.0 * r->backlog_s;
}

/* log1p rather than ln(ms): defined at 0 ms, and equal to ln(ms) within
 * 1/ms for the tens of ms the service takes. */
double feat_target(double ms) { return log1p(ms); }
double feat_target_inverse(double y) { return expm1(y); }

double feat_baseline_value(feat_baseline b, const double x[FEAT_DIM])
{
    if (b != FEAT_BASELINE_BACKLOG)
        return 0.0;
    double backlog_ms = 1000.0 * x[FEAT_BACKLOG_FLOW] * x[FEAT_PODS];
    return log1p(backlog_ms > 0 ? backlog_ms : 0);
}

int feat_baseline_parse(const char *s, feat_baseline *out)
{
    if (strcmp(s, "none") == 0)
        *out = FEAT_BASELINE_NONE;
    else if (strcmp(s, "backlog") == 0)
        *out = FEAT_BASELINE_BACKLOG;
    else
        return NDT_ERROR;
    return NDT_OK;
}

const char *feat_baseline_name(feat_baseline b) { return b == FEAT_BASELINE_BACKLOG ? "backlog" : "none"; }

static int feat_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double feat_quantile_sorted(const double *v, size_t n, double p)
{
    if (n == 1)
        return v[0];
    double h = p * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

double feat_quantile(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), feat_cmp_double);
    return feat_quantile_sorted(v, n, p);
}

int feat_trim_parse(const char *s, feat_trim_mode *out)
{
    if (strcmp(s, "none") == 0)
        *out = FEAT_TRIM_NONE;
    else if (strcmp(s, "iqr") == 0)
        *out = FEAT_TRIM_IQR;
    else if (strcmp(s, "p1p99") == 0)
        *out = FEAT_TRIM_P1P99;
    else
        return NDT_ERROR;
    return NDT_OK;
}

const char *feat_trim_name(feat_trim_mode mode)
{
    switch (mode) {
    case FEAT_TRIM_IQR: return "iqr";
    case FEAT_TRIM_P1P99: return "p1p99";
    default: return "none";
    }
}

static int feat_cmp_regime(const void *a, const void *b)
{
    const feat_regime *x = a, *y = b;
    if (x->users != y->users)
        return (x->users > y->users) - (x->users < y->users);
    return (x->pods > y->pods) - (x->pods < y->pods);
}

int feat_regimes(const feat_dataset *ds, feat_regime **out, size_t *nout, char *err, size_t errlen)
{
    /* Sort a copy of every row's key, then collapse runs: O(n log n), no hash. */
    feat_regime *keys = malloc((ds->n ? ds->n : 1) * sizeof(*keys));
    if (!keys) {
        snprintf(err, errlen, "out of memory grouping %zu rows into regimes", ds->n);
        return NDT_ERROR;
    }
    for (size_t i = 0; i < ds->n; i++)
        keys[i] = (feat_regime){ ds->rows[i].users, ds->rows[i].pods, 1 };
    qsort(keys, ds->n, sizeof(*keys), feat_cmp_regime);
    size_t m = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (m > 0 && feat_cmp_regime(&keys[m - 1], &keys[i]) == 0)
            keys[m - 1].n++;
        else
            keys[m++] = keys[i];
    }
    feat_regime *shrunk = realloc(keys, (m ? m : 1) * sizeof(*keys));
    *out = shrunk ? shrunk : keys;
    *nout = m;
    return NDT_OK;
}

/* The inclusive [lo, hi] bounds of one regime's sorted targets. */
static void feat_trim_bounds(feat_trim_mode mode, const double *sorted, size_t n, double *lo,
                             double *hi)
{
    if (mode == FEAT_TRIM_IQR) {
        double q1 = feat_quantile_sorted(sorted, n, 0.25);
        double q3 = feat_quantile_sorted(sorted, n, 0.75);
        *lo = q1 - 1.5 * (q3 - q1);
        *hi = q3 + 1.5 * (q3 - q1);
    } else {
        *lo = feat_quantile_sorted(sorted, n, 0.01);
        *hi = feat_quantile_sorted(sorted, n, 0.99);
    }
}

typedef struct feat_bound {
    feat_regime key;
    double lo, hi;
    size_t filled;
    double *values;
} feat_bound;

int feat_trim(feat_dataset *ds, feat_trim_mode mode, size_t *dropped, char *err, size_t errlen)
{
    feat_regime *regimes = NULL;
    feat_bound *bounds = NULL;
    double *values = NULL;
    size_t nreg = 0, kept = 0;
    int rc = NDT_ERROR;
    *dropped = 0;
    if (mode == FEAT_TRIM_NONE)
        return NDT_OK;
    if (feat_regimes(ds, &regimes, &nreg, err, errlen) != NDT_OK)
        return NDT_ERROR;
    for (size_t r = 0; r < nreg; r++) {
        if (regimes[r].n < FEAT_MIN_REGIME_ROWS) {
            snprintf(err, errlen, "regime users=%d pods=%d has %zu rows, fewer than the %d "
                     "needed to trim outliers", regimes[r].users, regimes[r].pods, regimes[r].n,
                     FEAT_MIN_REGIME_ROWS);
            rc = NDT_EBADCONF;
            goto done;
        }
    }
    bounds = calloc(nreg ? nreg : 1, sizeof(*bounds));
    values = malloc((ds->n ? ds->n : 1) * sizeof(*values));
    if (!bounds || !values) {
        snprintf(err, errlen, "out of memory trimming %zu rows", ds->n);
        goto done;
    }
    /* Lay each regime's targets out contiguously, then sort each slice. */
    for (size_t r = 0, off = 0; r < nreg; off += regimes[r].n, r++)
        bounds[r] = (feat_bound){ .key = regimes[r], .values = values + off };
    for (size_t i = 0; i < ds->n; i++) {
        feat_regime key = { ds->rows[i].users, ds->rows[i].pods, 0 };
        feat_bound *b = bsearch(&key, bounds, nreg, sizeof(*bounds), feat_cmp_regime);
        b->values[b->filled++] = ds->rows[i].infer_ms;
    }
    for (size_t r = 0; r < nreg; r++) {
        qsort(bounds[r].values, bounds[r].filled, sizeof(double), feat_cmp_double);
        feat_trim_bounds(mode, bounds[r].values, bounds[r].filled, &bounds[r].lo, &bounds[r].hi);
    }
    for (size_t i = 0; i < ds->n; i++) {
        feat_regime key = { ds->rows[i].users, ds->rows[i].pods, 0 };
        const feat_bound *b = bsearch(&key, bounds, nreg, sizeof(*bounds), feat_cmp_regime);
        double y = ds->rows[i].infer_ms;
        if (y >= b->lo && y <= b->hi)
            ds->rows[kept++] = ds->rows[i];
    }
    *dropped = ds->n - kept;
    ds->n = kept;
    rc = NDT_OK;
done:
    free(values);
    free(bounds);
    free(regimes);
    return rc;
}

int feat_selector_parse(const char *s, feat_selector *out, char *err, size_t errlen)
{
    feat_selector sel = { 0 };
    const char *p;
    if (strncmp(s, "users=", 6) == 0) {
        p = s + 6;
    } else if (strncmp(s, "pods=", 5) == 0) {
        sel.by_pods = 1;
        p = s + 5;
    } else {
        snprintf(err, errlen, "expected users=N[,N...] or pods=N[,N...], got '%s'", s);
        return NDT_EBADCONF;
    }
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 1000000000 || (*end && *end != ',')) {
            snprintf(err, errlen, "expected a list of non-negative integers in '%s'", s);
            return NDT_EBADCONF;
        }
        if (sel.n == FEAT_SELECTOR_MAX) {
            snprintf(err, errlen, "more than %d values in '%s'", FEAT_SELECTOR_MAX, s);
            return NDT_EBADCONF;
        }
        sel.values[sel.n++] = (int)v;
        if (!*end)
            break;
        p = end + 1;
    }
    *out = sel;
    return NDT_OK;
}

int feat_selector_match(const feat_selector *sel, const feat_raw *r)
{
    int v = sel->by_pods ? r->pods : r->users;
    for (size_t i = 0; i < sel->n; i++)
        if (sel->values[i] == v)
            return 1;
    return 0;
}

void feat_selector_format(const feat_selector *sel, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "%s=", sel->by_pods ? "pods" : "users");
    for (size_t i = 0; i < sel->n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? "," : "", sel->values[i]);
}
