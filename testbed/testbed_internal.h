/*
 * testbed_internal.h: the simulation's state, shared by the files of
 * testbed/ only (the model, the exposition writer, the server).  Nothing
 * outside testbed/ includes it; the public interface is testbed.h.
 *
 * Layout: every array is sized once at creation (users to
 * TESTBED_MAX_USERS, pods to TESTBED_MAX_PODS), so the simulation never
 * allocates while it runs.  A pod's FIFO queue is a singly linked list
 * threaded through the users' `next` field: a user has at most one request
 * in flight, so a queue needs no storage of its own.
 */
#ifndef TESTBED_INTERNAL_H
#define TESTBED_INTERNAL_H

#include <stdint.h>

#include "testbed/testbed.h"

/* xoshiro256** (Blackman and Vigna): small, fast, good enough for a model. */
typedef struct testbed_rng {
    uint64_t s[4];
} testbed_rng;

void testbed_rng_seed(testbed_rng *r, uint64_t seed);
uint64_t testbed_rng_next(testbed_rng *r);
double testbed_rng_uniform(testbed_rng *r);             /* [0, 1) */
double testbed_rng_exponential(testbed_rng *r, double mean);
double testbed_rng_normal(testbed_rng *r);              /* N(0, 1) */
double testbed_rng_lognormal(testbed_rng *r, double mean, double cv);

/* Min-heap of user timers (think time over): one entry per thinking user. */
typedef struct testbed_timer {
    double t;
    uint64_t seq;               /* insertion order breaks ties: determinism */
    int user;
} testbed_timer;

typedef struct testbed_heap {
    testbed_timer *items;
    int len, cap;
    uint64_t seq;
} testbed_heap;

int testbed_heap_init(testbed_heap *h, int cap);
void testbed_heap_free(testbed_heap *h);
int testbed_heap_push(testbed_heap *h, double t, int user);
const testbed_timer *testbed_heap_peek(const testbed_heap *h);
void testbed_heap_pop(testbed_heap *h);

/* One telemetry window of a pod's requests, kept for the averaging window.
 * Sums are integers (depth in requests, times in nanoseconds) so the sliding
 * sums add and subtract exactly: no drift over hours of saturation. */
typedef struct testbed_avg_tick {
    uint32_t enq, done;
    uint64_t depth_sum;
    int64_t backlog_ns, total_ns;
} testbed_avg_tick;

#define TESTBED_NODES 3
#define TESTBED_HIST_BUCKETS 14

typedef struct testbed_node {
    const char *name;
    const char *ip;
    int cores;
    double mem_bytes;
    double base_mem_bytes;      /* OS, kubelet, system pods */
    double background_cores;    /* mean CPU of the same */
    int schedulable;            /* control plane is tainted NoSchedule */
    double background_now;      /* background_cores with noise, per window */
    double busy_cores;          /* pods' cores in use right now */
    /* cumulative, for node_cpu_seconds_total */
    double cpu_user_s, cpu_system_s, cpu_iowait_s, cpu_softirq_s;
    double window_busy_s;       /* busy core-seconds in the current window */
    double cpu_pct;             /* last window's utilisation, 0..100 */
} testbed_node;

typedef enum testbed_pod_state {
    TESTBED_POD_FREE = 0,
    TESTBED_POD_STARTING,       /* scheduled, container starting */
    TESTBED_POD_READY,          /* in the Service's endpoints */
    TESTBED_POD_TERMINATING,    /* out of endpoints, draining its queue */
} testbed_pod_state;

typedef struct testbed_pod {
    testbed_pod_state state;
    int node;
    uint64_t ordinal;           /* creation order: names and scale-down choice */
    char name[64];
    char uid[40];
    char ip[16];
    double created_at, ready_at;
    /* FIFO queue of users (through testbed_sim.user_next), in service first */
    int head, tail, depth;
    double remaining;           /* full-speed seconds left of the head request */
    double service_start;       /* when the head request started service */
    double speed;               /* fraction of full speed under contention */
    double ewma_service_s;      /* the service's own service-time estimate */
    /* cumulative, for counters */
    uint64_t requests_total;
    uint64_t rejected_total;    /* arrivals refused by a full queue */
    double infer_sum_s;
    uint64_t hist[TESTBED_HIST_BUCKETS];
    double cpu_s;
    double mem_bytes;
    /* current window */
    uint64_t w_enq, w_done;
    double w_depth_sum, w_backlog_sum, w_total_sum, w_cpu_s;
    /* sliding sums over the averaging window (ring in testbed_sim.avg_ring) */
    uint64_t a_enq, a_done, a_depth_sum;
    int64_t a_backlog_ns, a_total_ns;
    /* gauges of the last window (the paper's avg_* per pod) */
    double g_depth, g_backlog_s, g_cpu_pct, g_total_s;
} testbed_pod;

typedef enum testbed_user_state {
    TESTBED_USER_IDLE = 0,      /* not part of the load (beyond users) */
    TESTBED_USER_THINKING,
    TESTBED_USER_WAITING,       /* request queued or in service */
} testbed_user_state;

struct testbed_sim {
    testbed_params p;
    testbed_rng rng;
    double now;
    int users;                  /* target users */
    int pods;                   /* desired replicas */
    uint64_t next_ordinal;
    testbed_node nodes[TESTBED_NODES];
    testbed_pod pods_arr[TESTBED_MAX_PODS];
    testbed_heap timers;
    uint8_t *user_state;
    int *user_next;
    double *user_sent_at;
    /* telemetry windows */
    double next_window;
    int avg_ticks;              /* telemetry windows per averaging window */
    testbed_avg_tick *avg_ring; /* [TESTBED_MAX_PODS][avg_ticks] */
    uint64_t windows;
    testbed_sample last;
    testbed_sample_fn on_sample;
    void *on_sample_ctx;
    /* accounting */
    uint64_t sent, completed, rejected, rejected_full, in_system;
    double response_sum_s, in_system_area;
    double epoch_s;             /* unix time of t=0 (kube_pod_start_time) */
};

extern const double testbed_hist_bounds[TESTBED_HIST_BUCKETS];

/* The cluster (testbed_cluster.c): nodes, placement, scaling, contention. */
void testbed_cluster_init(testbed_sim *sim);
int testbed_cluster_scale(testbed_sim *sim, int pods);
int testbed_cluster_pick_pod(testbed_sim *sim);
int testbed_cluster_ready_pods(const testbed_sim *sim);
int testbed_cluster_active_pods(const testbed_sim *sim);
void testbed_cluster_update_speeds(testbed_sim *sim, int node);
void testbed_cluster_refresh_memory(testbed_sim *sim);
double testbed_node_mem_used(const testbed_sim *sim, int node);
/* Empties a slot's averaging ring (a new pod starts with no history). */
void testbed_pod_reset_average(testbed_sim *sim, int slot);
/* Cores a pod uses right now (its process CPU). */
double testbed_pod_cores(const testbed_sim *sim, const testbed_pod *pod);

#endif
