/*
 * model_whatif.c: the counterfactual engine.  Given the service's current
 * raw state (one row of the paper's telemetry) and a change of
 * configuration (pods and/or users, absolute), derive the raw state the
 * service would show afterwards, so that a functional model can predict
 * its latency.  `validate` and the API both call model_counterfactual(),
 * so what is validated is what is served.
 *
 * Why a queueing model and not "scale every column by users/pods": the
 * columns respond to the load per pod non-linearly (queue depth explodes
 * near saturation, CPU saturates at the server's capacity, throughput is
 * bounded by pods / service time).  The service is a closed loop (users
 * wait for their answer, think, send again) over N pods picked at random,
 * each a FIFO server: the textbook closed queueing network.  Its exact
 * Mean Value Analysis (Reiser and Lavenberg, 1980) gives, for U users,
 * N pods, service time S and think time Z, the throughput X, the response
 * time R and the queue an arriving request sees, with the saturation
 * bound built in (X <= N / S, R -> U S / N - Z).
 *
 * The two parameters the telemetry does not carry are fitted to the
 * current row: S is the service's own estimate (backlog estimate / queue
 * depth, which is how the exporter computes the backlog), Z is the think
 * time for which MVA's queue seen on arrival equals the observed depth.
 * The other columns then scale with what MVA says about the change: CPU of
 * a pod with its utilisation, node CPU with the total throughput, memory
 * with the pod count (each replica brings its own runtime and model).
 * The rules and their limits are in docs/MODELS.md ("Counterfactual
 * engine").
 *
 * The work is split in two because the API asks many changes of one
 * state: the fit (about 15 MVA passes at the current users) depends only
 * on the current row, so model_counterfactual_fit runs once per twin
 * state and model_counterfactual_apply answers each change with one MVA
 * pass at the changed users.  model_counterfactual is the two in a row;
 * the arithmetic is the same operations in the same order either way, so
 * every path gives the same bits (tests/unit/test_whatif.c holds the
 * one-call engine as it was and compares).
 *
 * Pure computation, no allocation, thread-safe.  Cost O(users) per MVA
 * pass.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/models.h"

/* MVA is O(users); beyond this a what-if is refused rather than slow. */
#define WHATIF_MAX_USERS 100000
/* Below this depth a row carries no usable queue signal (an idle pod). */
#define WHATIF_MIN_DEPTH 1e-6
#define WHATIF_FIT_STEPS 60

typedef struct mva_point {
    double throughput; /* requests/s over all pods */
    double response_s; /* time in a pod's queue + service */
    double depth;      /* requests an arrival finds at its pod (arrival theorem) */
    double utilisation; /* of one pod, 0..1 */
} mva_point;

/* Exact MVA of U users, think time z, over `pods` identical FIFO servers
 * each visited with probability 1/pods and service time s. */
static mva_point mva(int users, int pods, double s, double z)
{
    double queue = 0; /* per pod, with n - 1 users in the loop */
    mva_point p = { 0 };
    for (int n = 1; n <= users; n++) {
        p.depth = queue;
        p.response_s = s * (1.0 + queue);
        p.throughput = n / (z + p.response_s);
        queue = p.throughput * p.response_s / pods;
    }
    p.utilisation = p.throughput * s / pods;
    if (p.utilisation > 1.0)
        p.utilisation = 1.0;
    return p;
}

/* The think time whose MVA depth at (users, pods) equals `depth`.  Depth
 * falls as think time grows: a doubling bracket, then the Illinois
 * variant of regula falsi (superlinear, never leaves the bracket), so a
 * fit costs about a dozen MVA passes.  A depth above what z = 0 gives
 * (noise in a saturated row) fits z = 0. */
static double fit_think(int users, int pods, double s, double depth)
{
    double f_lo = mva(users, pods, s, 0).depth - depth;
    if (f_lo <= 0)
        return 0;
    double lo = 0, hi = s, f_hi = mva(users, pods, s, hi).depth - depth;
    for (int i = 0; i < 200 && f_hi > 0; i++) {
        lo = hi;
        f_lo = f_hi;
        hi *= 2;
        f_hi = mva(users, pods, s, hi).depth - depth;
    }
    int side = 0;
    for (int i = 0; i < WHATIF_FIT_STEPS && hi - lo > 1e-9 * hi; i++) {
        double z = (lo * f_hi - hi * f_lo) / (f_hi - f_lo);
        double f = mva(users, pods, s, z).depth - depth;
        if (f == 0)
            return z;
        if (f > 0) {
            lo = z;
            f_lo = f;
            if (side == 1)
                f_hi /= 2;
            side = 1;
        } else {
            hi = z;
            f_hi = f;
            if (side == -1)
                f_lo /= 2;
            side = -1;
        }
        if (fabs(f) < 1e-9 * (depth > 1 ? depth : 1))
            return z;
    }
    return 0.5 * (lo + hi);
}

static int check_state(const feat_raw *r, const model_change *c, char *err, size_t errlen)
{
    if (r->pods < 1 || r->users < 1) {
        snprintf(err, errlen, "current state has users=%d pods=%d; both must be at least 1",
                 r->users, r->pods);
        return NDT_EBADCONF;
    }
    if ((c->has_pods && c->pods < 1) || (c->has_users && c->users < 1)) {
        snprintf(err, errlen, "a what-if needs at least 1 pod and 1 user (asked: %s%d %s%d)",
                 c->has_pods ? "pods=" : "", c->has_pods ? c->pods : r->pods,
                 c->has_users ? "users=" : "", c->has_users ? c->users : r->users);
        return NDT_EBADCONF;
    }
    int users = c->has_users ? c->users : r->users;
    if (users > WHATIF_MAX_USERS || r->users > WHATIF_MAX_USERS) {
        snprintf(err, errlen, "users above %d are beyond the counterfactual engine",
                 WHATIF_MAX_USERS);
        return NDT_EBADCONF;
    }
    if (!isfinite(r->depth) || !isfinite(r->backlog_s) || !isfinite(r->cpu_process) ||
        !isfinite(r->cpu_system) || !isfinite(r->mem_system) || !isfinite(r->infer_ms) ||
        r->depth < 0 || r->backlog_s < 0 || r->infer_ms < 0) {
        snprintf(err, errlen, "current state has a negative or non-finite telemetry value");
        return NDT_EBADCONF;
    }
    return NDT_OK;
}

/* The service time per request, in seconds: the exporter's backlog
 * estimate is depth x its EWMA service time, so their ratio is that
 * EWMA.  Without a queue, the latency itself (an arrival that finds
 * `depth` requests waits for them and its own service). */
static double service_time(const feat_raw *r)
{
    if (r->depth > WHATIF_MIN_DEPTH && r->backlog_s > 0)
        return r->backlog_s / r->depth;
    return r->infer_ms / 1000.0 / (1.0 + r->depth);
}

void model_counterfactual_fit(const feat_raw *current, model_counterfactual_state *fit)
{
    static const model_change none = { 0 };
    char why[8];
    memset(fit, 0, sizeof(*fit));
    fit->current = *current;
    /* A row the engine refuses is refused again, with its reason, by
     * every apply (check_state runs there); nothing to fit. */
    if (check_state(current, &none, why, sizeof(why)) != NDT_OK)
        return;
    double s = service_time(current);
    if (!(s > 0) || current->depth <= WHATIF_MIN_DEPTH)
        return; /* the light-load rule: nothing to fit either */
    double z = fit_think(current->users, current->pods, s, current->depth);
    mva_point before = mva(current->users, current->pods, s, z);
    fit->fitted = 1;
    fit->service_s = s;
    fit->think_s = z;
    fit->throughput = before.throughput;
    fit->response_s = before.response_s;
    fit->utilisation = before.utilisation;
}

int model_counterfactual_apply(const model_counterfactual_state *fit, const model_change *change,
                               feat_raw *out, char *err, size_t errlen)
{
    const feat_raw *current = &fit->current;
    int rc = check_state(current, change, err, errlen);
    if (rc != NDT_OK)
        return rc;
    feat_raw after = *current;
    after.users = change->has_users ? change->users : current->users;
    after.pods = change->has_pods ? change->pods : current->pods;
    /* Each replica loads its own runtime and model: memory in use follows
     * the pod count, so the memory per pod (memory density) is kept. */
    after.mem_system = current->mem_system * after.pods / current->pods;
    if (after.mem_system > 100)
        after.mem_system = 100;
    if (!fit->fitted) {
        /* No load signal (an idle service, or every arrival found an
         * empty pod): MVA cannot be fitted.  Light load is the honest
         * reading: the queue stays empty and the columns that measure
         * load scale with users per pod, bounded by one busy server. */
        double ratio = ((double)after.users / after.pods) / ((double)current->users / current->pods);
        after.cpu_process = current->cpu_process * ratio;
        after.cpu_system = current->cpu_system * (double)after.users / current->users;
        if (after.cpu_system > 100)
            after.cpu_system = 100;
        *out = after;
        return NDT_OK;
    }
    double s = fit->service_s;
    mva_point then = mva(after.users, after.pods, s, fit->think_s);

    after.depth = then.depth;
    after.backlog_s = then.depth * s;
    /* A pod's process CPU is its busy fraction times the cores one
     * inference uses; node CPU follows the work done per second. */
    if (fit->utilisation > 0)
        after.cpu_process = current->cpu_process * then.utilisation / fit->utilisation;
    if (fit->throughput > 0)
        after.cpu_system = current->cpu_system * then.throughput / fit->throughput;
    if (after.cpu_system > 100)
        after.cpu_system = 100;
    /* Latency: MVA's response time, scaled by how far the row's own
     * latency is from MVA's at the current state (CPU contention, cold
     * pods and per-row noise MVA does not see carry over). */
    double scale = current->infer_ms > 0 ? current->infer_ms / 1000.0 / fit->response_s : 1.0;
    after.infer_ms = 1000.0 * then.response_s * scale;
    *out = after;
    return NDT_OK;
}

int model_counterfactual(const feat_raw *current, const model_change *change, feat_raw *out,
                         char *err, size_t errlen)
{
    model_counterfactual_state fit;
    int rc = check_state(current, change, err, errlen);
    if (rc != NDT_OK)
        return rc;
    model_counterfactual_fit(current, &fit);
    return model_counterfactual_apply(&fit, change, out, err, errlen);
}
