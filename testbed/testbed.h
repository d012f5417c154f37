/*
 * testbed.h: the emulated Kubernetes inference cluster (ndtpipe testbed).
 *
 * What it is: a seeded discrete-event simulation of the paper's testbed
 * (paper 002, Table I): a CIFAR-10 inference Deployment whose pods are
 * spread over two 8-core workers, loaded by U closed-loop users with think
 * time, each pod a FIFO queue behind kube-proxy's random load balancing,
 * pods sharing a node's cores (processor sharing), new pods ready after a
 * startup delay and slow while they warm up.  Docs: docs/TESTBED.md.
 *
 * Two ways to drive it, one model:
 *   - live (`ndtpipe testbed`): testbed_server_start() steps the simulation
 *     to the wall clock and serves /metrics and /control over HTTP;
 *   - campaign (`ndtpipe testbed campaign`): testbed_campaign_run() steps a
 *     simulated clock as fast as it can and writes the dataset CSV.
 *
 * Promises:
 *   - determinism: the same parameters and seed give the same event
 *     sequence and the same samples, bit for bit, on any machine with
 *     IEEE doubles (no wall clock, no global state inside the model);
 *   - bounded memory: everything is sized at creation from the limits
 *     below (users <= TESTBED_MAX_USERS, pods <= TESTBED_MAX_PODS);
 *   - thread-safety: a testbed_sim is not thread-safe; the live server
 *     serialises every access under its own mutex.
 */
#ifndef TESTBED_H
#define TESTBED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"

#define TESTBED_MAX_USERS 20000
#define TESTBED_MAX_PODS 32
#define TESTBED_MAX_AVG_TICKS 4096
#define TESTBED_DEFAULT_LISTEN "127.0.0.1:9101"

/* Model parameters; testbed_params_default() documents where each comes from. */
typedef struct testbed_params {
    uint64_t seed;
    int users;                  /* initial concurrent users */
    int pods;                   /* initial replicas, ready and warm at t=0 */
    double think_mean_s;        /* exponential think time of a user */
    double service_mean_s;      /* inference work of one request, full speed */
    double service_cv;          /* its coefficient of variation (lognormal) */
    int inference_threads;      /* cores one inference wants (intra-op threads) */
    double startup_delay_s;     /* new pod: scheduled -> ready */
    double startup_jitter_s;    /* + uniform [0, jitter) */
    double cold_extra;          /* first requests of a pod cost (1 + extra) x */
    double cold_tau_s;          /* ... decaying with this time constant */
    double spawn_rate;          /* new users per second (load generator ramp) */
    double sample_interval_s;   /* telemetry window (the paper's 20 ms) */
    int max_queue;              /* per pod: requests waiting beyond the one in
                                   service; an arrival finding it full gets 503
                                   and retries after thinking (0: unbounded) */
    double avg_window_s;        /* the service's avg_* gauges average the
                                   requests of the last avg_window_s seconds
                                   (rounded to whole telemetry windows, at most
                                   TESTBED_MAX_AVG_TICKS of them); 0: only the
                                   last telemetry window (docs/TESTBED.md,
                                   "Averaging window") */
} testbed_params;

void testbed_params_default(testbed_params *p);

/* One telemetry window: the paper's raw columns, averaged over the pods. */
typedef struct testbed_sample {
    double t;                   /* simulated seconds at the end of the window */
    int users;
    int pods;                   /* desired replicas */
    int pods_ready;
    double avg_depth_on_enqueue;
    double avg_backlog_sec_est;
    double avg_cpu_process_pct;
    double avg_cpu_system_pct;
    double avg_mem_system_pct;
    double avg_total_infer_ms;
    uint64_t completed;         /* requests completed in the window */
} testbed_sample;

/* Cumulative accounting, for conservation and Little's law. */
typedef struct testbed_totals {
    double t;
    uint64_t sent;              /* requests users have sent */
    uint64_t completed;         /* ... answered */
    uint64_t rejected;          /* ... refused (no ready pod, or queue full) */
    uint64_t rejected_full;     /* ... of which by a full queue (max_queue) */
    uint64_t in_system;         /* queued or in service now */
    double response_sum_s;      /* sum of response times of completed requests */
    double in_system_area;      /* integral of in_system over time (request-seconds) */
    int thinking, waiting, idle;/* users by state */
} testbed_totals;

typedef struct testbed_sim testbed_sim;
typedef void (*testbed_sample_fn)(void *ctx, const testbed_sample *sample);

/* Creates a simulation at t=0 with p->pods ready pods and p->users users. */
int testbed_sim_create(const testbed_params *p, testbed_sim **out, char *err, size_t errlen);
void testbed_sim_destroy(testbed_sim *sim);
/* Called at the end of every telemetry window (may be NULL). */
void testbed_sim_on_sample(testbed_sim *sim, testbed_sample_fn fn, void *ctx);
/* Runs every event up to simulated time `until` (seconds). */
void testbed_sim_advance(testbed_sim *sim, double until);
double testbed_sim_now(const testbed_sim *sim);
/* Users in [0, TESTBED_MAX_USERS], pods in [1, TESTBED_MAX_PODS]. */
int testbed_sim_set_users(testbed_sim *sim, int users, char *err, size_t errlen);
int testbed_sim_set_pods(testbed_sim *sim, int pods, char *err, size_t errlen);
int testbed_sim_users(const testbed_sim *sim);
int testbed_sim_pods(const testbed_sim *sim);
const testbed_sample *testbed_sim_last_sample(const testbed_sim *sim);
void testbed_sim_totals(const testbed_sim *sim, testbed_totals *out);
/* Bumped at every telemetry window: a render cache key. */
uint64_t testbed_sim_windows(const testbed_sim *sim);

/* Renders the whole exposition (text format 0.0.4) into out (reset first). */
int testbed_expo_render(const testbed_sim *sim, ndt_buf *out);

/* The live server: a thread stepping the simulation to the wall clock and
 * an HTTP server on listen ("HOST:PORT", 127.0.0.1 unless told). */
typedef struct testbed_server testbed_server;
int testbed_server_start(const testbed_params *p, const char *listen, testbed_server **out,
                         char *err, size_t errlen);
void testbed_server_stop(testbed_server *srv);
/* The port actually bound (useful with port 0). */
int testbed_server_port(const testbed_server *srv);

/* Applies a /control JSON body; NDT_ERROR with the reason, nothing changed. */
int testbed_control_apply(testbed_sim *sim, const char *body, size_t len, char *err,
                          size_t errlen);

/* The measurement campaign on a simulated clock. */
typedef struct testbed_campaign {
    testbed_params params;      /* seed, model; users/pods are overridden */
    int users[16];
    size_t nusers;
    int pods_min, pods_max;
    double dwell_s;             /* per regime */
    double interval_s;          /* sampling interval */
    double epoch_ms;            /* timestamp_ms of simulated t=0 */
} testbed_campaign;

/* Mean latency of one regime after its transient, for plots and tests. */
typedef struct testbed_regime_result {
    int users, pods;
    double mean_infer_ms;       /* samples after the first 25% of the dwell */
    uint64_t samples;
} testbed_regime_result;

/* Writes the dataset CSV to out; results (may be NULL, room for nusers x
 * pod count entries) receive one mean per regime. */
int testbed_campaign_run(const testbed_campaign *c, FILE *out, testbed_regime_result *results,
                         char *err, size_t errlen);
/* Writes an SVG of mean latency against pods, one line per users value. */
int testbed_plot_svg(const testbed_regime_result *results, size_t n, FILE *out, char *err,
                     size_t errlen);

/* Argument parsing shared by the CLI and tests. */
int testbed_parse_duration(const char *s, double *out_s, char *err, size_t errlen);
int testbed_parse_int_list(const char *s, int *out, size_t cap, size_t *n, int min, int max,
                           char *err, size_t errlen);
int testbed_parse_range(const char *s, int *lo, int *hi, int min, int max, char *err,
                        size_t errlen);

#endif
