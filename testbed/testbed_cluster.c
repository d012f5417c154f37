/*
 * testbed_cluster.c: the cluster the inference service runs on: the three
 * nodes of the paper's Table I, where pods land, how a Deployment scales,
 * how kube-proxy spreads requests, and how pods on one node share its cores.
 *
 * Why processor sharing: an inference runs PyTorch's intra-op threads
 * (inference_threads of them, 3 by default: the pod's CPU limit), so the
 * third busy pod on an 8-core worker (pods 5 and 6 of the Deployment, as
 * placement alternates workers) asks for 9 of its ~7.8 free cores and
 * slows all three.  That adds to the queueing's own diminishing returns:
 * extra pods are worth less once the workers fill, instead of the ideal
 * 1/N of a textbook model.  With 4 threads two busy pods already fill a
 * worker and the fifth pod, landing on a worker that then carries 3/5 of
 * the requests, makes latency worse than four: the contention must stay
 * mild on this grid for pods to help at every step.
 *
 * Placement follows the default scheduler's spreading closely enough: the
 * control plane is tainted, a pod goes to the worker with the fewest pods
 * that still has memory for its request, ties to the one with most free
 * memory.  Scale-down removes not-yet-ready pods first, then the newest
 * (the ReplicaSet controller's order); a removed ready pod leaves the
 * endpoints at once and drains its queue before it disappears.
 */
#include <math.h>
#include <stdio.h>

#include "common/ndt.h"
#include "testbed/testbed_internal.h"

#define TESTBED_GIB (1024.0 * 1024.0 * 1024.0)
#define TESTBED_MIB (1024.0 * 1024.0)
#define TESTBED_POD_MEM_REQUEST (512.0 * TESTBED_MIB)
#define TESTBED_POD_MEM_BASE (420.0 * TESTBED_MIB)   /* torch + model weights */
#define TESTBED_POD_MEM_WARM (64.0 * TESTBED_MIB)    /* caches filled while warming */
#define TESTBED_POD_MEM_PER_REQ (1.5 * TESTBED_MIB)  /* decoded image + tensors */
#define TESTBED_POD_IDLE_CORES 0.01                  /* server loop, probes */
#define TESTBED_POD_STARTING_CORES 0.5               /* image unpack, model load */

void testbed_cluster_init(testbed_sim *sim)
{
    /* Table I: master 4 cores / 8 GB, two workers 8 cores / 8 and 32 GB. */
    static const testbed_node table[TESTBED_NODES] = {
        { .name = "master", .ip = "192.168.1.10", .cores = 4, .mem_bytes = 8 * TESTBED_GIB,
          .base_mem_bytes = 3.1 * TESTBED_GIB, .background_cores = 0.45, .schedulable = 0 },
        { .name = "worker-1", .ip = "192.168.1.11", .cores = 8, .mem_bytes = 8 * TESTBED_GIB,
          .base_mem_bytes = 1.4 * TESTBED_GIB, .background_cores = 0.20, .schedulable = 1 },
        { .name = "worker-2", .ip = "192.168.1.12", .cores = 8, .mem_bytes = 32 * TESTBED_GIB,
          .base_mem_bytes = 1.9 * TESTBED_GIB, .background_cores = 0.20, .schedulable = 1 },
    };
    for (int i = 0; i < TESTBED_NODES; i++) {
        sim->nodes[i] = table[i];
        sim->nodes[i].background_now = table[i].background_cores;
    }
}

int testbed_cluster_ready_pods(const testbed_sim *sim)
{
    int n = 0;
    for (int i = 0; i < TESTBED_MAX_PODS; i++)
        n += sim->pods_arr[i].state == TESTBED_POD_READY;
    return n;
}

/* Pods the Deployment counts: starting or ready (not terminating). */
int testbed_cluster_active_pods(const testbed_sim *sim)
{
    int n = 0;
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        testbed_pod_state s = sim->pods_arr[i].state;
        n += s == TESTBED_POD_STARTING || s == TESTBED_POD_READY;
    }
    return n;
}

double testbed_node_mem_used(const testbed_sim *sim, int node)
{
    double used = sim->nodes[node].base_mem_bytes;
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &sim->pods_arr[i];
        if (pod->state != TESTBED_POD_FREE && pod->node == node)
            used += pod->mem_bytes;
    }
    return used;
}

/* A pod's working set: the model, warm caches once it has served a while,
 * and a little per request it holds. */
void testbed_cluster_refresh_memory(testbed_sim *sim)
{
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        testbed_pod *pod = &sim->pods_arr[i];
        if (pod->state == TESTBED_POD_FREE)
            continue;
        double warm = 0;
        if (pod->state != TESTBED_POD_STARTING)
            warm = TESTBED_POD_MEM_WARM * (1.0 - exp(-(sim->now - pod->ready_at) / 10.0));
        double base = pod->state == TESTBED_POD_STARTING ? TESTBED_POD_MEM_BASE * 0.5
                                                         : TESTBED_POD_MEM_BASE;
        pod->mem_bytes = base + warm + TESTBED_POD_MEM_PER_REQ * pod->depth;
    }
}

static int testbed_node_pod_count(const testbed_sim *sim, int node, double *requested)
{
    int n = 0;
    *requested = 0;
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &sim->pods_arr[i];
        if (pod->state != TESTBED_POD_FREE && pod->node == node) {
            n++;
            *requested += TESTBED_POD_MEM_REQUEST;
        }
    }
    return n;
}

static int testbed_cluster_place(const testbed_sim *sim)
{
    int best = -1, best_count = 0;
    double best_free = 0;
    for (int node = 0; node < TESTBED_NODES; node++) {
        const testbed_node *n = &sim->nodes[node];
        if (!n->schedulable)
            continue;
        double requested;
        int count = testbed_node_pod_count(sim, node, &requested);
        double free_mem = n->mem_bytes - n->base_mem_bytes - requested;
        if (free_mem < TESTBED_POD_MEM_REQUEST)
            continue;
        if (best < 0 || count < best_count || (count == best_count && free_mem > best_free)) {
            best = node;
            best_count = count;
            best_free = free_mem;
        }
    }
    return best;
}

/* Deterministic names from the creation ordinal, in Kubernetes' alphabet
 * for generated suffixes (no vowels, no look-alike digits). */
static void testbed_pod_name(testbed_pod *pod, uint64_t ordinal, int node)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    uint64_t h = ordinal * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    char suffix[6];
    for (int i = 0; i < 5; i++) {
        suffix[i] = alphabet[h % (sizeof(alphabet) - 1)];
        h /= sizeof(alphabet) - 1;
    }
    suffix[5] = '\0';
    snprintf(pod->name, sizeof(pod->name), "cifar10-inference-6d5f8c9b7-%s", suffix);
    uint64_t u = h * 0x94d049bb133111ebULL + ordinal;
    snprintf(pod->uid, sizeof(pod->uid), "%08x-%04x-4%03x-a%03x-%012llx",
             (unsigned)(u >> 32), (unsigned)(u >> 16) & 0xffff, (unsigned)(u >> 4) & 0xfff,
             (unsigned)(ordinal & 0xfff), (unsigned long long)(u & 0xffffffffffffULL));
    snprintf(pod->ip, sizeof(pod->ip), "10.244.%u.%u", (unsigned)node % 8, (unsigned)(ordinal % 250) + 2);
}

static int testbed_cluster_add_pod(testbed_sim *sim)
{
    int slot = -1;
    for (int i = 0; i < TESTBED_MAX_PODS && slot < 0; i++)
        if (sim->pods_arr[i].state == TESTBED_POD_FREE)
            slot = i;
    int node = testbed_cluster_place(sim);
    if (slot < 0 || node < 0)
        return NDT_ERROR; /* stays Pending, like an unschedulable pod */
    testbed_pod *pod = &sim->pods_arr[slot];
    *pod = (testbed_pod){ 0 };
    testbed_pod_reset_average(sim, slot);
    pod->state = TESTBED_POD_STARTING;
    pod->node = node;
    pod->ordinal = sim->next_ordinal++;
    pod->head = pod->tail = -1;
    pod->speed = 1.0;
    pod->ewma_service_s = sim->p.service_mean_s;
    pod->created_at = sim->now;
    pod->ready_at = sim->now + sim->p.startup_delay_s +
                    sim->p.startup_jitter_s * testbed_rng_uniform(&sim->rng);
    testbed_pod_name(pod, pod->ordinal, node);
    return NDT_OK;
}

/* The newest pod in `state`, or -1. */
static int testbed_cluster_newest(const testbed_sim *sim, testbed_pod_state state)
{
    int found = -1;
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &sim->pods_arr[i];
        if (pod->state == state && (found < 0 || pod->ordinal > sim->pods_arr[found].ordinal))
            found = i;
    }
    return found;
}

int testbed_cluster_scale(testbed_sim *sim, int pods)
{
    int rc = NDT_OK;
    sim->pods = pods;
    while (testbed_cluster_active_pods(sim) < pods) {
        if (testbed_cluster_add_pod(sim) != NDT_OK) {
            rc = NDT_ERROR;
            break;
        }
    }
    while (testbed_cluster_active_pods(sim) > pods) {
        int victim = testbed_cluster_newest(sim, TESTBED_POD_STARTING);
        if (victim < 0)
            victim = testbed_cluster_newest(sim, TESTBED_POD_READY);
        testbed_pod *pod = &sim->pods_arr[victim];
        pod->state = pod->depth ? TESTBED_POD_TERMINATING : TESTBED_POD_FREE;
    }
    return rc;
}

/* kube-proxy (iptables mode) picks a ready endpoint uniformly at random. */
int testbed_cluster_pick_pod(testbed_sim *sim)
{
    int ready[TESTBED_MAX_PODS], n = 0;
    for (int i = 0; i < TESTBED_MAX_PODS; i++)
        if (sim->pods_arr[i].state == TESTBED_POD_READY)
            ready[n++] = i;
    if (n == 0)
        return -1;
    int k = (int)(testbed_rng_uniform(&sim->rng) * n);
    return ready[k < n ? k : n - 1];
}

/* Processor sharing on one node: busy pods want inference_threads cores
 * each; if together they want more than the cores left by the background,
 * each runs proportionally slower. */
void testbed_cluster_update_speeds(testbed_sim *sim, int node)
{
    testbed_node *n = &sim->nodes[node];
    int busy = 0;
    double other = 0;
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &sim->pods_arr[i];
        if (pod->state == TESTBED_POD_FREE || pod->node != node)
            continue;
        if (pod->depth > 0)
            busy++;
        else
            other += pod->state == TESTBED_POD_STARTING ? TESTBED_POD_STARTING_CORES
                                                        : TESTBED_POD_IDLE_CORES;
    }
    double available = n->cores - n->background_now;
    double demand = (double)busy * sim->p.inference_threads;
    double speed = demand <= available ? 1.0 : available / demand;
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        testbed_pod *pod = &sim->pods_arr[i];
        if (pod->state != TESTBED_POD_FREE && pod->node == node)
            pod->speed = speed;
    }
    n->busy_cores = demand * speed + other;
}

double testbed_pod_cores(const testbed_sim *sim, const testbed_pod *pod)
{
    switch (pod->state) {
    case TESTBED_POD_FREE:
        return 0;
    case TESTBED_POD_STARTING:
        return TESTBED_POD_STARTING_CORES;
    default:
        return pod->depth > 0 ? sim->p.inference_threads * pod->speed : TESTBED_POD_IDLE_CORES;
    }
}
