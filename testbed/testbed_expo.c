/*
 * testbed_expo.c: renders the simulated cluster as one Prometheus text
 * exposition (format 0.0.4), the way the paper's Prometheus saw it:
 *
 *   inference_*   the service's own metrics (the paper's raw telemetry),
 *                 per pod, labelled {namespace, pod, node} as Prometheus'
 *                 kubernetes_sd relabeling would leave them;
 *   container_*   cAdvisor as served by the kubelet (/metrics/cadvisor);
 *   kube_*        kube-state-metrics v2 names and label sets;
 *   node_*        node-exporter, labelled {node} since one endpoint here
 *                 stands for the three nodes' exporters.
 *
 * Units follow Prometheus conventions (seconds, bytes, percent where the
 * paper uses percent): the paper's avg_total_infer_ms is
 * 1000 * inference_avg_total_infer_seconds.  Every family gets HELP and
 * TYPE once and its samples contiguously.  The only promtool lint
 * complaints are node-exporter's own CamelCase names
 * (node_memory_MemAvailable_bytes, ...), kept because that is what
 * dashboards and queries use.
 *
 * The writer appends into a caller-owned ndt_buf (reused across scrapes by
 * the server), so a steady scrape allocates nothing.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/ndt.h"
#include "testbed/testbed_internal.h"

#define TESTBED_NAMESPACE "ndt"
#define TESTBED_DEPLOYMENT "cifar10-inference"
#define TESTBED_CONTAINER "inference"
#define TESTBED_IMAGE "registry.local/ndt/cifar10-inference:1.4.2"
#define TESTBED_CPU_PERIOD_US 100000
#define TESTBED_MEM_LIMIT_BYTES (1024.0 * 1024.0 * 1024.0)
#define TESTBED_NODE_UPTIME_S (3 * 86400.0) /* nodes booted before the test */

typedef struct testbed_writer {
    ndt_buf *out;
    int failed;
    const testbed_sim *sim;
} testbed_writer;

static void testbed_w(testbed_writer *w, const char *s)
{
    if (ndt_buf_append_str(w->out, s) != NDT_OK)
        w->failed = 1;
}

static void testbed_wf(testbed_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void testbed_wf(testbed_writer *w, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) || ndt_buf_append(w->out, line, (size_t)n) != NDT_OK)
        w->failed = 1;
}

static void testbed_value(testbed_writer *w, double v)
{
    if (ndt_buf_append_char(w->out, ' ') != NDT_OK || ndt_buf_append_double(w->out, v) != NDT_OK ||
        ndt_buf_append_char(w->out, '\n') != NDT_OK)
        w->failed = 1;
}

static void testbed_family(testbed_writer *w, const char *name, const char *type, const char *help)
{
    testbed_wf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int testbed_pod_visible(const testbed_pod *pod)
{
    return pod->state != TESTBED_POD_FREE;
}

/* ---- the service's own metrics ----------------------------------------- */

static void testbed_pod_gauge(testbed_writer *w, const char *name, const char *help,
                              double (*get)(const testbed_sim *, const testbed_pod *))
{
    testbed_family(w, name, "gauge", help);
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &w->sim->pods_arr[i];
        if (pod->state != TESTBED_POD_READY && pod->state != TESTBED_POD_TERMINATING)
            continue;
        testbed_wf(w, "%s{namespace=\"" TESTBED_NAMESPACE "\",node=\"%s\",pod=\"%s\"}", name,
                   w->sim->nodes[pod->node].name, pod->name);
        testbed_value(w, get(w->sim, pod));
    }
}

static double testbed_get_depth_now(const testbed_sim *s, const testbed_pod *p) { (void)s; return p->depth; }
static double testbed_get_depth(const testbed_sim *s, const testbed_pod *p) { (void)s; return p->g_depth; }
static double testbed_get_backlog(const testbed_sim *s, const testbed_pod *p) { (void)s; return p->g_backlog_s; }
static double testbed_get_cpu_process(const testbed_sim *s, const testbed_pod *p) { (void)s; return p->g_cpu_pct; }
static double testbed_get_cpu_system(const testbed_sim *s, const testbed_pod *p) { return s->nodes[p->node].cpu_pct; }
static double testbed_get_total(const testbed_sim *s, const testbed_pod *p) { (void)s; return p->g_total_s; }
static double testbed_get_requests(const testbed_sim *s, const testbed_pod *p) { (void)s; return (double)p->requests_total; }
static double testbed_get_mem_system(const testbed_sim *s, const testbed_pod *p)
{
    return 100.0 * testbed_node_mem_used(s, p->node) / s->nodes[p->node].mem_bytes;
}

static void testbed_write_histogram(testbed_writer *w)
{
    const char *name = "inference_total_infer_seconds";
    testbed_family(w, name, "histogram",
                   "Time from enqueue to response of inference requests (queue wait plus inference).");
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &w->sim->pods_arr[i];
        if (pod->state != TESTBED_POD_READY && pod->state != TESTBED_POD_TERMINATING)
            continue;
        const char *node = w->sim->nodes[pod->node].name;
        for (int b = 0; b < TESTBED_HIST_BUCKETS; b++) {
            testbed_wf(w, "%s_bucket{namespace=\"" TESTBED_NAMESPACE "\",node=\"%s\",pod=\"%s\",le=\"%g\"}",
                       name, node, pod->name, testbed_hist_bounds[b]);
            testbed_value(w, (double)pod->hist[b]);
        }
        testbed_wf(w, "%s_bucket{namespace=\"" TESTBED_NAMESPACE "\",node=\"%s\",pod=\"%s\",le=\"+Inf\"}",
                   name, node, pod->name);
        testbed_value(w, (double)pod->requests_total);
        testbed_wf(w, "%s_sum{namespace=\"" TESTBED_NAMESPACE "\",node=\"%s\",pod=\"%s\"}", name, node,
                   pod->name);
        testbed_value(w, pod->infer_sum_s);
        testbed_wf(w, "%s_count{namespace=\"" TESTBED_NAMESPACE "\",node=\"%s\",pod=\"%s\"}", name,
                   node, pod->name);
        testbed_value(w, (double)pod->requests_total);
    }
}

static void testbed_write_service(testbed_writer *w)
{
    testbed_family(w, "inference_current_users", "gauge",
                   "Concurrent users of the load generator (the paper's current_users).");
    testbed_w(w, "inference_current_users");
    testbed_value(w, w->sim->users);
    testbed_family(w, "inference_pods", "gauge",
                   "Replicas the inference Deployment is scaled to (the paper's pods).");
    testbed_w(w, "inference_pods");
    testbed_value(w, w->sim->pods);
    testbed_pod_gauge(w, "inference_queue_depth", "Requests queued or in service in the pod now.",
                      testbed_get_depth_now);
    testbed_pod_gauge(w, "inference_avg_depth_on_enqueue",
                      "Average queue depth seen by requests enqueued in the averaging window.",
                      testbed_get_depth);
    testbed_pod_gauge(w, "inference_avg_backlog_est_seconds",
                      "Average backlog estimate (depth times service-time estimate) at enqueue, over the averaging window.",
                      testbed_get_backlog);
    testbed_pod_gauge(w, "inference_avg_cpu_process_percent",
                      "CPU of the inference process over the last window, percent of one core.",
                      testbed_get_cpu_process);
    testbed_pod_gauge(w, "inference_avg_cpu_system_percent",
                      "CPU utilisation of the pod's node over the last window, percent.",
                      testbed_get_cpu_system);
    testbed_pod_gauge(w, "inference_avg_mem_system_percent",
                      "Memory in use on the pod's node, percent of its total.",
                      testbed_get_mem_system);
    testbed_pod_gauge(w, "inference_avg_total_infer_seconds",
                      "Average total inference time of requests completed in the averaging window.",
                      testbed_get_total);
    testbed_family(w, "inference_requests_total", "counter", "Inference requests answered.");
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &w->sim->pods_arr[i];
        if (pod->state != TESTBED_POD_READY && pod->state != TESTBED_POD_TERMINATING)
            continue;
        testbed_wf(w, "inference_requests_total{namespace=\"" TESTBED_NAMESPACE "\",node=\"%s\",pod=\"%s\"}",
                   w->sim->nodes[pod->node].name, pod->name);
        testbed_value(w, testbed_get_requests(w->sim, pod));
    }
    /* Triton's nv_inference_request_failure and TF-Serving's status-coded
     * request counts play this role; the reason label says which bound. */
    testbed_family(w, "inference_requests_rejected_total", "counter",
                   "Inference requests refused with 503 because the pod's queue was full.");
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &w->sim->pods_arr[i];
        if (pod->state != TESTBED_POD_READY && pod->state != TESTBED_POD_TERMINATING)
            continue;
        testbed_wf(w,
                   "inference_requests_rejected_total{namespace=\"" TESTBED_NAMESPACE
                   "\",node=\"%s\",pod=\"%s\",reason=\"queue_full\"}",
                   w->sim->nodes[pod->node].name, pod->name);
        testbed_value(w, (double)pod->rejected_total);
    }
    testbed_family(w, "inference_max_queue_size", "gauge",
                   "Requests a pod queues beyond the one in service before refusing (0: unbounded).");
    testbed_w(w, "inference_max_queue_size");
    testbed_value(w, w->sim->p.max_queue);
    /* The window the avg_* gauges cover, as whole telemetry windows: what a
     * reader needs to know how smooth they are. */
    testbed_family(w, "inference_avg_window_seconds", "gauge",
                   "Trailing window the inference_avg_* request averages cover (depth, backlog, total time).");
    testbed_w(w, "inference_avg_window_seconds");
    /* to the microsecond: 250 x 0.02 s is 5.000000000000001 in doubles */
    testbed_value(w, 1e-6 * (double)llround(1e6 * w->sim->avg_ticks * w->sim->p.sample_interval_s));
    testbed_write_histogram(w);
}

/* ---- cAdvisor (kubelet /metrics/cadvisor) ------------------------------ */

static void testbed_container_labels(testbed_writer *w, const char *name, const testbed_pod *pod)
{
    testbed_wf(w,
               "%s{container=\"" TESTBED_CONTAINER "\",id=\"/kubepods/burstable/pod%s/%.12s\","
               "image=\"" TESTBED_IMAGE "\",name=\"k8s_" TESTBED_CONTAINER "_%s_" TESTBED_NAMESPACE
               "_%s_0\",namespace=\"" TESTBED_NAMESPACE "\",pod=\"%s\"",
               name, pod->uid, pod->uid, pod->name, pod->uid, pod->name);
}

static double testbed_get_cpu_s(const testbed_sim *s, const testbed_pod *p) { (void)s; return p->cpu_s; }
static double testbed_get_mem_usage(const testbed_sim *s, const testbed_pod *p) { (void)s; return floor(p->mem_bytes * 1.12); /* + page cache */ }
static double testbed_get_working_set(const testbed_sim *s, const testbed_pod *p) { (void)s; return floor(p->mem_bytes); }
static double testbed_get_cpu_period(const testbed_sim *s, const testbed_pod *p) { (void)s; (void)p; return TESTBED_CPU_PERIOD_US; }
static double testbed_get_cpu_quota(const testbed_sim *s, const testbed_pod *p) { (void)p; return (double)TESTBED_CPU_PERIOD_US * s->p.inference_threads; }
static double testbed_get_mem_limit(const testbed_sim *s, const testbed_pod *p) { (void)s; (void)p; return TESTBED_MEM_LIMIT_BYTES; }

static void testbed_write_cadvisor(testbed_writer *w)
{
    /* HELP texts are cAdvisor's own. */
    static const struct {
        const char *name, *type, *help, *extra_labels;
        double (*get)(const testbed_sim *, const testbed_pod *);
    } families[] = {
        { "container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.",
          ",cpu=\"total\"", testbed_get_cpu_s },
        { "container_memory_usage_bytes", "gauge",
          "Current memory usage in bytes, including all memory regardless of when it was accessed",
          "", testbed_get_mem_usage },
        { "container_memory_working_set_bytes", "gauge", "Current working set in bytes.", "",
          testbed_get_working_set },
        { "container_spec_cpu_period", "gauge", "CPU period of the container.", "",
          testbed_get_cpu_period },
        { "container_spec_cpu_quota", "gauge", "CPU quota of the container.", "",
          testbed_get_cpu_quota },
        { "container_spec_memory_limit_bytes", "gauge", "Memory limit for the container.", "",
          testbed_get_mem_limit },
    };
    for (size_t f = 0; f < NDT_ARRAY_LEN(families); f++) {
        testbed_family(w, families[f].name, families[f].type, families[f].help);
        for (int i = 0; i < TESTBED_MAX_PODS; i++) {
            const testbed_pod *pod = &w->sim->pods_arr[i];
            if (!testbed_pod_visible(pod))
                continue;
            testbed_container_labels(w, families[f].name, pod);
            testbed_wf(w, "%s}", families[f].extra_labels);
            testbed_value(w, families[f].get(w->sim, pod));
        }
    }
}

/* ---- kube-state-metrics v2 -------------------------------------------- */

static void testbed_write_deployment(testbed_writer *w)
{
    const testbed_sim *sim = w->sim;
    int ready = testbed_cluster_ready_pods(sim);
    int total = 0;
    for (int i = 0; i < TESTBED_MAX_PODS; i++)
        total += testbed_pod_visible(&sim->pods_arr[i]);
    struct { const char *name, *help; double v; } rows[] = {
        { "kube_deployment_spec_replicas", "Number of desired pods for a deployment.", sim->pods },
        { "kube_deployment_status_replicas", "The number of replicas per deployment.", total },
        { "kube_deployment_status_replicas_available",
          "The number of available replicas per deployment.", ready },
        { "kube_deployment_status_replicas_ready", "The number of ready replicas per deployment.",
          ready },
        { "kube_deployment_status_replicas_unavailable",
          "The number of unavailable replicas per deployment.",
          sim->pods > ready ? sim->pods - ready : 0 },
        { "kube_deployment_status_replicas_updated",
          "The number of updated replicas per deployment.", total },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(rows); i++) {
        testbed_family(w, rows[i].name, "gauge", rows[i].help);
        testbed_wf(w, "%s{deployment=\"" TESTBED_DEPLOYMENT "\",namespace=\"" TESTBED_NAMESPACE "\"}",
                   rows[i].name);
        testbed_value(w, rows[i].v);
    }
}

static void testbed_pod_ksm_labels(testbed_writer *w, const char *name, const testbed_pod *pod)
{
    testbed_wf(w, "%s{namespace=\"" TESTBED_NAMESPACE "\",pod=\"%s\",uid=\"%s\"", name, pod->name,
               pod->uid);
}

static void testbed_write_pod_info(testbed_writer *w)
{
    const testbed_sim *sim = w->sim;
    testbed_family(w, "kube_pod_info", "gauge", "Information about pod.");
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &sim->pods_arr[i];
        if (!testbed_pod_visible(pod))
            continue;
        const testbed_node *n = &sim->nodes[pod->node];
        testbed_pod_ksm_labels(w, "kube_pod_info", pod);
        testbed_wf(w, ",host_ip=\"%s\",pod_ip=\"%s\",node=\"%s\",created_by_kind=\"ReplicaSet\","
                      "created_by_name=\"" TESTBED_DEPLOYMENT "-6d5f8c9b7\",priority_class=\"\","
                      "host_network=\"false\"}",
                   n->ip, pod->ip, n->name);
        testbed_value(w, 1);
    }
    testbed_family(w, "kube_pod_start_time", "gauge", "Start time in unix timestamp for a pod.");
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &sim->pods_arr[i];
        if (!testbed_pod_visible(pod))
            continue;
        testbed_pod_ksm_labels(w, "kube_pod_start_time", pod);
        testbed_w(w, "}");
        testbed_value(w, floor(sim->epoch_s + pod->created_at));
    }
}

/* One series per possible value of `label`, 1 for the pod's current one
 * (KSM's enum encoding of phase and readiness). */
static void testbed_write_pod_enum(testbed_writer *w, const char *name, const char *help,
                                   const char *label, const char *const *values, size_t nvalues,
                                   const char *(*current)(const testbed_pod *))
{
    testbed_family(w, name, "gauge", help);
    for (int i = 0; i < TESTBED_MAX_PODS; i++) {
        const testbed_pod *pod = &w->sim->pods_arr[i];
        if (!testbed_pod_visible(pod))
            continue;
        const char *now = current(pod);
        for (size_t k = 0; k < nvalues; k++) {
            testbed_pod_ksm_labels(w, name, pod);
            testbed_wf(w, ",%s=\"%s\"}", label, values[k]);
            testbed_value(w, strcmp(values[k], now) == 0);
        }
    }
}

static const char *testbed_pod_phase(const testbed_pod *pod)
{
    return pod->state == TESTBED_POD_STARTING ? "Pending" : "Running";
}

static const char *testbed_pod_ready(const testbed_pod *pod)
{
    return pod->state == TESTBED_POD_READY ? "true" : "false";
}

static void testbed_write_pod_resources(testbed_writer *w)
{
    /* The pod spec: requests 1 CPU / 512 MiB, limits 1 GiB and as many CPUs
     * as the inference's threads (the service sizes its thread pool to its
     * limit; cAdvisor's container_spec_cpu_quota says the same). */
    char cpu_limit[16];
    snprintf(cpu_limit, sizeof(cpu_limit), "%d", w->sim->p.inference_threads);
    const char *res[2][3] = { { "cpu", "core", "1" }, { "memory", "byte", "536870912" } };
    const char *lim[2][3] = { { "cpu", "core", cpu_limit }, { "memory", "byte", "1073741824" } };
    for (int kind = 0; kind < 2; kind++) {
        const char *name = kind ? "kube_pod_container_resource_limits"
                                : "kube_pod_container_resource_requests";
        testbed_family(w, name, "gauge",
                       kind ? "The number of requested limit resource by a container."
                            : "The number of requested request resource by a container.");
        for (int i = 0; i < TESTBED_MAX_PODS; i++) {
            const testbed_pod *pod = &w->sim->pods_arr[i];
            if (!testbed_pod_visible(pod))
                continue;
            for (int r = 0; r < 2; r++) {
                const char *const *row = kind ? lim[r] : res[r];
                testbed_pod_ksm_labels(w, name, pod);
                testbed_wf(w, ",container=\"" TESTBED_CONTAINER "\",node=\"%s\",resource=\"%s\","
                              "unit=\"%s\"} %s\n",
                           w->sim->nodes[pod->node].name, row[0], row[1], row[2]);
            }
        }
    }
}

static void testbed_write_pods_ksm(testbed_writer *w)
{
    static const char *const phases[] = { "Pending", "Running", "Succeeded", "Failed", "Unknown" };
    static const char *const conditions[] = { "true", "false", "unknown" };
    testbed_write_pod_info(w);
    testbed_write_pod_enum(w, "kube_pod_status_phase", "The pods current phase.", "phase", phases,
                           NDT_ARRAY_LEN(phases), testbed_pod_phase);
    testbed_write_pod_enum(w, "kube_pod_status_ready",
                           "Describes whether the pod is ready to serve requests.", "condition",
                           conditions, NDT_ARRAY_LEN(conditions), testbed_pod_ready);
    testbed_write_pod_resources(w);
}

static void testbed_write_nodes_ksm(testbed_writer *w)
{
    const testbed_sim *sim = w->sim;
    for (int kind = 0; kind < 2; kind++) {
        const char *name = kind ? "kube_node_status_allocatable" : "kube_node_status_capacity";
        testbed_family(w, name, "gauge",
                       kind ? "The allocatable for different resources of a node that are available for scheduling."
                            : "The capacity for different resources of a node.");
        for (int node = 0; node < TESTBED_NODES; node++) {
            const testbed_node *n = &sim->nodes[node];
            double cpu = kind ? n->cores - 0.1 : n->cores;
            double mem = kind ? n->mem_bytes - 256.0 * 1024 * 1024 : n->mem_bytes;
            testbed_wf(w, "%s{node=\"%s\",resource=\"cpu\",unit=\"core\"}", name, n->name);
            testbed_value(w, cpu);
            testbed_wf(w, "%s{node=\"%s\",resource=\"memory\",unit=\"byte\"}", name, n->name);
            testbed_value(w, mem);
            testbed_wf(w, "%s{node=\"%s\",resource=\"pods\",unit=\"integer\"}", name, n->name);
            testbed_value(w, 110);
        }
    }
}

/* ---- node-exporter ------------------------------------------------------- */

static void testbed_write_node_exporter(testbed_writer *w)
{
    const testbed_sim *sim = w->sim;
    testbed_family(w, "node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.");
    for (int node = 0; node < TESTBED_NODES; node++) {
        const testbed_node *n = &sim->nodes[node];
        /* The simulation tracks a node's modes in total; cores share them evenly. */
        double uptime = sim->now + TESTBED_NODE_UPTIME_S;
        double user = n->cpu_user_s / n->cores, system = n->cpu_system_s / n->cores;
        double softirq = n->cpu_softirq_s / n->cores, iowait = n->cpu_iowait_s / n->cores;
        double idle = uptime - user - system - softirq - iowait;
        const struct { const char *mode; double v; } modes[] = {
            { "idle", idle }, { "iowait", iowait }, { "irq", 0 },          { "nice", 0 },
            { "softirq", softirq }, { "steal", 0 },  { "system", system }, { "user", user },
        };
        for (int cpu = 0; cpu < n->cores; cpu++) {
            for (size_t m = 0; m < NDT_ARRAY_LEN(modes); m++) {
                testbed_wf(w, "node_cpu_seconds_total{cpu=\"%d\",mode=\"%s\",node=\"%s\"}", cpu,
                           modes[m].mode, n->name);
                testbed_value(w, modes[m].v);
            }
        }
    }
    const char *mem_help[][2] = {
        { "node_memory_MemTotal_bytes", "Memory information field MemTotal_bytes." },
        { "node_memory_MemFree_bytes", "Memory information field MemFree_bytes." },
        { "node_memory_MemAvailable_bytes", "Memory information field MemAvailable_bytes." },
        { "node_memory_Cached_bytes", "Memory information field Cached_bytes." },
    };
    for (size_t f = 0; f < NDT_ARRAY_LEN(mem_help); f++) {
        testbed_family(w, mem_help[f][0], "gauge", mem_help[f][1]);
        for (int node = 0; node < TESTBED_NODES; node++) {
            const testbed_node *n = &sim->nodes[node];
            double used = testbed_node_mem_used(sim, node);
            double cached = 0.12 * n->mem_bytes;
            double v = f == 0 ? n->mem_bytes
                     : f == 1 ? n->mem_bytes - used - cached
                     : f == 2 ? n->mem_bytes - used
                              : cached;
            testbed_wf(w, "%s{node=\"%s\"}", mem_help[f][0], n->name);
            testbed_value(w, floor(v));
        }
    }
}

int testbed_expo_render(const testbed_sim *sim, ndt_buf *out)
{
    testbed_writer w = { .out = out, .sim = sim };
    ndt_buf_reset(out);
    testbed_write_service(&w);
    testbed_write_cadvisor(&w);
    testbed_write_deployment(&w);
    testbed_write_pods_ksm(&w);
    testbed_write_nodes_ksm(&w);
    testbed_write_node_exporter(&w);
    return w.failed ? NDT_ERROR : NDT_OK;
}
