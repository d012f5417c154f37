/*
 * testbed_sim.c: the discrete-event simulation core: closed-loop users,
 * per-pod FIFO queues, and the telemetry windows the paper samples.
 *
 * Events are few and known, so there is no general event queue: the next
 * event is the earliest of (a) the end of the current telemetry window,
 * (b) the completion of a pod's head request (remaining work / speed, at
 * most TESTBED_MAX_PODS candidates), (c) a starting pod becoming ready and
 * (d) the earliest user timer in a heap.  Completion times are derived, not
 * stored, so a change of speed under contention needs no rescheduling.
 * Between events every rate is constant, so integrals (CPU seconds, work
 * done, requests in system) are exact.  Ties resolve in a fixed order
 * (window, pods by slot, ready, timers by insertion), which with the seeded
 * generator makes a run reproducible bit for bit.
 *
 * Units: simulated seconds as doubles; the public samples carry the
 * paper's units (ms, %).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ndt.h"
#include "testbed/testbed_internal.h"

/* Inference-time histogram bounds (seconds), around the 20-500 ms range. */
const double testbed_hist_bounds[TESTBED_HIST_BUCKETS] = {
    0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5,
};

void testbed_params_default(testbed_params *p)
{
    /* Calibration (docs/TESTBED.md, "Calibration"): a CIFAR-10 CNN on 3
     * threads of an i5-7260U takes ~35 ms (CV 0.8: GC pauses, cache
     * misses); a 7.5 s think time makes 600 users offer ~2.8 pods of work
     * (600 x 35 ms / 7.5 s), so 1-2 pods saturate, 3 are near the knee and
     * 4-6 sit where one pod more or less moves latency by tens of ms, the
     * paper's Table VII.  3 threads (the pod's CPU limit) let three busy
     * pods just overfill a worker: contention for the third pod on each. */
    *p = (testbed_params){
        .seed = 1,
        .users = 200,
        .pods = 1,
        .think_mean_s = 7.5,
        .service_mean_s = 0.035,
        .service_cv = 0.8,
        .inference_threads = 3,
        .startup_delay_s = 6.0,
        .startup_jitter_s = 3.0,
        .cold_extra = 2.0,
        .cold_tau_s = 4.0,
        .spawn_rate = 100.0,
        .sample_interval_s = 0.020,
        /* An inference server bounds its queue (docs/TESTBED.md, "Admission
         * bound"): 16 waiting requests is ~0.6 s of work, so saturated
         * regimes answer in ~0.5-0.6 s and refuse the rest with 503,
         * while 4-6 pods at 600 users almost never reach it. */
        .max_queue = 16,
        /* The avg_* gauges average the requests of the last 5 s, as a
         * service's "recent average" does (docs/TESTBED.md, "Averaging
         * window"): Envoy flushes its stats every 5 s, HAProxy averages its
         * queue and response times over the last 1024 requests (~10-50 s
         * per server here), and 5 s spans several relaxation times of a
         * pod's queue at 4-6 pods while staying short beside a regime's
         * dwell and a new pod's 6-9 s startup. */
        .avg_window_s = 5.0,
    };
}

static int testbed_params_check(const testbed_params *p, char *err, size_t errlen)
{
    const char *bad = NULL;
    if (p->users < 0 || p->users > TESTBED_MAX_USERS)
        bad = "users out of range";
    else if (p->pods < 1 || p->pods > TESTBED_MAX_PODS)
        bad = "pods out of range";
    else if (!(p->think_mean_s > 0) || !(p->service_mean_s > 0) || !(p->service_cv >= 0))
        bad = "think and service times must be positive";
    else if (p->inference_threads < 1 || p->inference_threads > 8)
        bad = "inference_threads must be 1..8";
    else if (!(p->startup_delay_s >= 0) || !(p->startup_jitter_s >= 0) || !(p->cold_extra >= 0) ||
             !(p->cold_tau_s > 0) || !(p->spawn_rate > 0))
        bad = "startup, cold-start and spawn parameters must be positive";
    else if (!(p->sample_interval_s >= 0.001) || p->sample_interval_s > 3600)
        bad = "sample interval must be 1ms..1h";
    else if (p->max_queue < 0 || p->max_queue > TESTBED_MAX_USERS)
        bad = "max_queue out of range";
    else if (!(p->avg_window_s >= 0) ||
             p->avg_window_s / p->sample_interval_s > TESTBED_MAX_AVG_TICKS)
        bad = "the averaging window must be 0 or positive and at most 4096 telemetry windows";
    if (!bad)
        return NDT_OK;
    snprintf(err, errlen, "%s", bad);
    return NDT_ERROR;
}

/* ---- users ---------------------------------------------------------- */

static void testbed_user_think(testbed_sim *sim, int user, double delay)
{
    sim->user_state[user] = TESTBED_USER_THINKING;
    /* Cannot fail: the heap holds one slot per user and a user thinks once. */
    (void)testbed_heap_push(&sim->timers, sim->now + delay, user);
}

/* Starts users [from, to) at the load generator's spawn rate. */
static void testbed_users_spawn(testbed_sim *sim, int from, int to)
{
    for (int u = from; u < to; u++) {
        if (sim->user_state[u] != TESTBED_USER_IDLE)
            continue; /* still finishing a request from before: keeps going */
        testbed_user_think(sim, u, (u - from) / sim->p.spawn_rate);
    }
}

/* ---- pods ----------------------------------------------------------- */

static void testbed_pod_start_service(testbed_sim *sim, testbed_pod *pod)
{
    double warmup = sim->p.cold_extra * exp(-(sim->now - pod->ready_at) / sim->p.cold_tau_s);
    pod->remaining = testbed_rng_lognormal(&sim->rng, sim->p.service_mean_s, sim->p.service_cv) *
                     (1.0 + warmup);
    pod->service_start = sim->now;
}

static void testbed_pod_enqueue(testbed_sim *sim, int slot, int user)
{
    testbed_pod *pod = &sim->pods_arr[slot];
    pod->w_enq++;
    pod->w_depth_sum += pod->depth;
    pod->w_backlog_sum += pod->depth * pod->ewma_service_s;
    sim->user_next[user] = -1;
    if (pod->tail >= 0)
        sim->user_next[pod->tail] = user;
    else
        pod->head = user;
    pod->tail = user;
    pod->depth++;
    sim->in_system++;
    if (pod->depth == 1) {
        testbed_pod_start_service(sim, pod);
        testbed_cluster_update_speeds(sim, pod->node);
    }
}

static void testbed_pod_record(testbed_pod *pod, double response_s)
{
    pod->requests_total++;
    pod->infer_sum_s += response_s;
    for (int b = 0; b < TESTBED_HIST_BUCKETS; b++)
        if (response_s <= testbed_hist_bounds[b])
            pod->hist[b]++;
    pod->w_done++;
    pod->w_total_sum += response_s;
}

static void testbed_pod_complete(testbed_sim *sim, int slot)
{
    testbed_pod *pod = &sim->pods_arr[slot];
    int user = pod->head;
    double response = sim->now - sim->user_sent_at[user];
    /* The service's own estimate of its service time, as a real one would keep. */
    pod->ewma_service_s += 0.1 * ((sim->now - pod->service_start) - pod->ewma_service_s);
    testbed_pod_record(pod, response);
    sim->completed++;
    sim->response_sum_s += response;
    sim->in_system--;

    pod->head = sim->user_next[user];
    if (pod->head < 0)
        pod->tail = -1;
    pod->depth--;
    if (pod->depth > 0)
        testbed_pod_start_service(sim, pod);
    else if (pod->state == TESTBED_POD_TERMINATING)
        pod->state = TESTBED_POD_FREE;
    testbed_cluster_update_speeds(sim, pod->node);

    if (user < sim->users)
        testbed_user_think(sim, user, testbed_rng_exponential(&sim->rng, sim->p.think_mean_s));
    else
        sim->user_state[user] = TESTBED_USER_IDLE;
}

static void testbed_user_send(testbed_sim *sim, int user)
{
    if (user >= sim->users) {
        sim->user_state[user] = TESTBED_USER_IDLE;
        return;
    }
    sim->sent++;
    int slot = testbed_cluster_pick_pod(sim);
    if (slot < 0) {
        sim->rejected++; /* connection refused: try again after thinking */
        testbed_user_think(sim, user, testbed_rng_exponential(&sim->rng, sim->p.think_mean_s));
        return;
    }
    testbed_pod *pod = &sim->pods_arr[slot];
    if (sim->p.max_queue > 0 && pod->depth > sim->p.max_queue) {
        /* Admission control, as inference servers bound their queues
         * (Triton's max_queue_size, TF-Serving's max_enqueued_batches):
         * 503 at once, and the user tries again after thinking. */
        pod->rejected_total++;
        sim->rejected++;
        sim->rejected_full++;
        testbed_user_think(sim, user, testbed_rng_exponential(&sim->rng, sim->p.think_mean_s));
        return;
    }
    sim->user_state[user] = TESTBED_USER_WAITING;
    sim->user_sent_at[user] = sim->now;
    testbed_pod_enqueue(sim, slot, user);
}

/* ---- telemetry windows ---------------------------------------------- */

/* Telemetry windows in one averaging window (at least the current one). */
static int testbed_avg_ticks(const testbed_params *p)
{
    long k = lround(p->avg_window_s / p->sample_interval_s);
    return k < 1 ? 1 : (int)k;
}

/* Moves the pod's window sums into its ring, dropping the oldest window,
 * and refreshes the gauges from what remains: the average over the
 * requests of the last avg_ticks windows. */
static void testbed_pod_average(testbed_sim *sim, int slot)
{
    testbed_pod *pod = &sim->pods_arr[slot];
    testbed_avg_tick *old =
        &sim->avg_ring[(size_t)slot * (size_t)sim->avg_ticks + sim->windows % (uint64_t)sim->avg_ticks];
    testbed_avg_tick now = {
        .enq = (uint32_t)pod->w_enq,
        .done = (uint32_t)pod->w_done,
        .depth_sum = (uint64_t)llround(pod->w_depth_sum),
        .backlog_ns = llround(pod->w_backlog_sum * 1e9),
        .total_ns = llround(pod->w_total_sum * 1e9),
    };
    pod->a_enq = pod->a_enq + now.enq - old->enq;
    pod->a_done = pod->a_done + now.done - old->done;
    pod->a_depth_sum += now.depth_sum - old->depth_sum;
    pod->a_backlog_ns += now.backlog_ns - old->backlog_ns;
    pod->a_total_ns += now.total_ns - old->total_ns;
    *old = now;
    /* Gauges keep their last value through a window without requests,
     * as a service's "average over recent requests" gauge does. */
    if (pod->a_enq) {
        pod->g_depth = (double)pod->a_depth_sum / (double)pod->a_enq;
        pod->g_backlog_s = 1e-9 * (double)pod->a_backlog_ns / (double)pod->a_enq;
    }
    if (pod->a_done)
        pod->g_total_s = 1e-9 * (double)pod->a_total_ns / (double)pod->a_done;
}

void testbed_pod_reset_average(testbed_sim *sim, int slot)
{
    memset(&sim->avg_ring[(size_t)slot * (size_t)sim->avg_ticks], 0,
           (size_t)sim->avg_ticks * sizeof(*sim->avg_ring));
}

static void testbed_window_close(testbed_sim *sim)
{
    double interval = sim->p.sample_interval_s;
    testbed_sample s = { .t = sim->now, .users = sim->users, .pods = sim->pods };
    testbed_cluster_refresh_memory(sim);
    for (int node = 0; node < TESTBED_NODES; node++) {
        testbed_node *n = &sim->nodes[node];
        n->cpu_pct = 100.0 * n->window_busy_s / (n->cores * interval);
        n->window_busy_s = 0;
    }
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        testbed_pod *pod = &sim->pods_arr[i];
        if (pod->state == TESTBED_POD_FREE)
            continue;
        testbed_pod_average(sim, i);
        /* CPU stays per telemetry window: a utilisation since the last
         * read, as psutil's cpu_percent reports it. */
        pod->g_cpu_pct = 100.0 * pod->w_cpu_s / interval;
        s.completed += pod->w_done;
        pod->w_enq = pod->w_done = 0;
        pod->w_depth_sum = pod->w_backlog_sum = pod->w_total_sum = pod->w_cpu_s = 0;
        if (pod->state != TESTBED_POD_READY)
            continue;
        const testbed_node *n = &sim->nodes[pod->node];
        s.pods_ready++;
        s.avg_depth_on_enqueue += pod->g_depth;
        s.avg_backlog_sec_est += pod->g_backlog_s;
        s.avg_cpu_process_pct += pod->g_cpu_pct;
        s.avg_cpu_system_pct += n->cpu_pct;
        s.avg_mem_system_pct += 100.0 * testbed_node_mem_used(sim, pod->node) / n->mem_bytes;
        s.avg_total_infer_ms += 1000.0 * pod->g_total_s;
    }
    if (s.pods_ready) {
        s.avg_depth_on_enqueue /= s.pods_ready;
        s.avg_backlog_sec_est /= s.pods_ready;
        s.avg_cpu_process_pct /= s.pods_ready;
        s.avg_cpu_system_pct /= s.pods_ready;
        s.avg_mem_system_pct /= s.pods_ready;
        s.avg_total_infer_ms /= s.pods_ready;
    }
    sim->last = s;
    sim->windows++;
    sim->next_window = (double)(sim->windows + 1) * interval;
    /* Background load (kubelet, system daemons) wanders from window to window. */
    for (int node = 0; node < TESTBED_NODES; node++) {
        testbed_node *n = &sim->nodes[node];
        double noise = 1.0 + 0.15 * testbed_rng_normal(&sim->rng);
        n->background_now = n->background_cores * (noise > 0.2 ? noise : 0.2);
        testbed_cluster_update_speeds(sim, node);
    }
    if (sim->on_sample)
        sim->on_sample(sim->on_sample_ctx, &s);
}

/* ---- time ----------------------------------------------------------- */

/* Moves the clock to t; every rate is constant in between. */
static void testbed_integrate(testbed_sim *sim, double t)
{
    double dt = t - sim->now;
    if (dt <= 0)
        return;
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        testbed_pod *pod = &sim->pods_arr[i];
        if (pod->state == TESTBED_POD_FREE)
            continue;
        double cores = testbed_pod_cores(sim, pod);
        pod->cpu_s += cores * dt;
        pod->w_cpu_s += cores * dt;
        if (pod->depth > 0)
            pod->remaining -= pod->speed * dt;
    }
    for (int node = 0; node < TESTBED_NODES; node++) {
        testbed_node *n = &sim->nodes[node];
        double busy = n->busy_cores + n->background_now;
        if (busy > n->cores)
            busy = n->cores;
        n->window_busy_s += busy * dt;
        /* Inference is user time; the kernel's share is the network stack. */
        n->cpu_user_s += 0.86 * busy * dt;
        n->cpu_system_s += 0.11 * busy * dt;
        n->cpu_softirq_s += 0.02 * busy * dt;
        n->cpu_iowait_s += 0.01 * busy * dt;
    }
    sim->in_system_area += (double)sim->in_system * dt;
    sim->now = t;
}

typedef enum testbed_event {
    TESTBED_EV_WINDOW,
    TESTBED_EV_COMPLETE,
    TESTBED_EV_READY,
    TESTBED_EV_TIMER,
} testbed_event;

static testbed_event testbed_next_event(const testbed_sim *sim, double *t, int *slot)
{
    testbed_event ev = TESTBED_EV_WINDOW;
    *t = sim->next_window;
    *slot = -1;
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &sim->pods_arr[i];
        if (pod->state == TESTBED_POD_FREE)
            continue;
        if (pod->depth > 0 && pod->state != TESTBED_POD_STARTING) {
            double done = sim->now + (pod->remaining > 0 ? pod->remaining / pod->speed : 0);
            if (done < *t) {
                *t = done;
                ev = TESTBED_EV_COMPLETE;
                *slot = i;
            }
        } else if (pod->state == TESTBED_POD_STARTING && pod->ready_at < *t) {
            *t = pod->ready_at < sim->now ? sim->now : pod->ready_at;
            ev = TESTBED_EV_READY;
            *slot = i;
        }
    }
    const testbed_timer *timer = testbed_heap_peek(&sim->timers);
    if (timer && timer->t < *t) {
        *t = timer->t < sim->now ? sim->now : timer->t;
        ev = TESTBED_EV_TIMER;
        *slot = timer->user;
    }
    return ev;
}

void testbed_sim_advance(testbed_sim *sim, double until)
{
    for (;;) {
        double t;
        int slot;
        testbed_event ev = testbed_next_event(sim, &t, &slot);
        if (t > until) {
            testbed_integrate(sim, until);
            return;
        }
        testbed_integrate(sim, t);
        switch (ev) {
        case TESTBED_EV_WINDOW:
            testbed_window_close(sim);
            break;
        case TESTBED_EV_COMPLETE:
            testbed_pod_complete(sim, slot);
            break;
        case TESTBED_EV_READY:
            sim->pods_arr[slot].state = TESTBED_POD_READY;
            sim->pods_arr[slot].ready_at = sim->now;
            testbed_cluster_update_speeds(sim, sim->pods_arr[slot].node);
            break;
        case TESTBED_EV_TIMER:
            testbed_heap_pop(&sim->timers);
            testbed_user_send(sim, slot);
            break;
        }
    }
}

/* ---- lifecycle and control ------------------------------------------ */

int testbed_sim_create(const testbed_params *p, testbed_sim **out, char *err, size_t errlen)
{
    *out = NULL;
    if (testbed_params_check(p, err, errlen) != NDT_OK)
        return NDT_ERROR;
    testbed_sim *sim = calloc(1, sizeof(*sim));
    if (!sim)
        goto oom;
    sim->p = *p;
    testbed_rng_seed(&sim->rng, p->seed);
    sim->user_state = calloc(TESTBED_MAX_USERS, sizeof(*sim->user_state));
    sim->user_next = calloc(TESTBED_MAX_USERS, sizeof(*sim->user_next));
    sim->user_sent_at = calloc(TESTBED_MAX_USERS, sizeof(*sim->user_sent_at));
    if (!sim->user_state || !sim->user_next || !sim->user_sent_at ||
        testbed_heap_init(&sim->timers, TESTBED_MAX_USERS) != NDT_OK)
        goto oom;
    sim->avg_ticks = testbed_avg_ticks(p);
    sim->avg_ring = calloc((size_t)TESTBED_MAX_PODS * (size_t)sim->avg_ticks, sizeof(*sim->avg_ring));
    if (!sim->avg_ring)
        goto oom;
    testbed_cluster_init(sim);
    sim->next_window = p->sample_interval_s;
    /* The Deployment exists and is warm before the experiment starts. */
    if (testbed_cluster_scale(sim, p->pods) != NDT_OK) {
        snprintf(err, errlen, "cannot place %d pods on the workers", p->pods);
        testbed_sim_destroy(sim);
        return NDT_ERROR;
    }
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        testbed_pod *pod = &sim->pods_arr[i];
        if (pod->state == TESTBED_POD_STARTING) {
            pod->state = TESTBED_POD_READY;
            pod->created_at = pod->ready_at = -600.0;
        }
    }
    for (int node = 0; node < TESTBED_NODES; node++)
        testbed_cluster_update_speeds(sim, node);
    sim->users = p->users;
    testbed_users_spawn(sim, 0, p->users);
    *out = sim;
    return NDT_OK;
oom:
    testbed_sim_destroy(sim);
    snprintf(err, errlen, "out of memory creating the simulation");
    return NDT_ERROR;
}

void testbed_sim_destroy(testbed_sim *sim)
{
    if (!sim)
        return;
    testbed_heap_free(&sim->timers);
    free(sim->user_state);
    free(sim->user_next);
    free(sim->user_sent_at);
    free(sim->avg_ring);
    free(sim);
}

void testbed_sim_on_sample(testbed_sim *sim, testbed_sample_fn fn, void *ctx)
{
    sim->on_sample = fn;
    sim->on_sample_ctx = ctx;
}

int testbed_sim_set_users(testbed_sim *sim, int users, char *err, size_t errlen)
{
    if (users < 0 || users > TESTBED_MAX_USERS) {
        snprintf(err, errlen, "users must be 0..%d, got %d", TESTBED_MAX_USERS, users);
        return NDT_ERROR;
    }
    int old = sim->users;
    sim->users = users;
    if (users > old)
        testbed_users_spawn(sim, old, users);
    /* Fewer users: the surplus leave after their current request or think. */
    return NDT_OK;
}

int testbed_sim_set_pods(testbed_sim *sim, int pods, char *err, size_t errlen)
{
    if (pods < 1 || pods > TESTBED_MAX_PODS) {
        snprintf(err, errlen, "pods must be 1..%d, got %d", TESTBED_MAX_PODS, pods);
        return NDT_ERROR;
    }
    if (testbed_cluster_scale(sim, pods) != NDT_OK) {
        snprintf(err, errlen, "only %d of %d pods fit on the workers",
                 testbed_cluster_active_pods(sim), pods);
        return NDT_ERROR;
    }
    for (int node = 0; node < TESTBED_NODES; node++)
        testbed_cluster_update_speeds(sim, node);
    return NDT_OK;
}

double testbed_sim_now(const testbed_sim *sim) { return sim->now; }
int testbed_sim_users(const testbed_sim *sim) { return sim->users; }
int testbed_sim_pods(const testbed_sim *sim) { return sim->pods; }
uint64_t testbed_sim_windows(const testbed_sim *sim) { return sim->windows; }
const testbed_sample *testbed_sim_last_sample(const testbed_sim *sim) { return &sim->last; }

void testbed_sim_totals(const testbed_sim *sim, testbed_totals *out)
{
    *out = (testbed_totals){
        .t = sim->now,
        .sent = sim->sent,
        .completed = sim->completed,
        .rejected = sim->rejected,
        .rejected_full = sim->rejected_full,
        .in_system = sim->in_system,
        .response_sum_s = sim->response_sum_s,
        .in_system_area = sim->in_system_area,
    };
    for (int u = 0; u < TESTBED_MAX_USERS; u++) {
        out->thinking += sim->user_state[u] == TESTBED_USER_THINKING;
        out->waiting += sim->user_state[u] == TESTBED_USER_WAITING;
    }
    out->idle = TESTBED_MAX_USERS - out->thinking - out->waiting;
}
