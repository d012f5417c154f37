/*
 * metrics.c: the registry of own-metrics sources and the process
 * families (metrics.h).  A fixed array under one mutex: sources are a
 * handful per process and registration happens at stage start and stop,
 * so nothing here needs to be clever.
 */
#include "common/metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/ndt.h"

typedef struct metrics_source {
    ndt_metrics_source_fn fn;
    void *ctx;
} metrics_source;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static metrics_source sources[NDT_METRICS_MAX_SOURCES];
static size_t nsources;

int ndt_metrics_register(ndt_metrics_source_fn fn, void *ctx)
{
    int rc = NDT_ERROR;
    pthread_mutex_lock(&registry_lock);
    if (nsources < NDT_METRICS_MAX_SOURCES) {
        sources[nsources++] = (metrics_source){ fn, ctx };
        rc = NDT_OK;
    }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

void ndt_metrics_unregister(void *ctx)
{
    pthread_mutex_lock(&registry_lock);
    size_t kept = 0;
    for (size_t i = 0; i < nsources; i++) {
        if (sources[i].ctx != ctx)
            sources[kept++] = sources[i];
    }
    nsources = kept;
    pthread_mutex_unlock(&registry_lock);
}

/* ---- process families (as Prometheus's client libraries name them) --- */

void ndt_metrics_family(ndt_buf *b, const char *name, const char *type, const char *help)
{
    ndt_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void ndt_metrics_value(ndt_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    ndt_metrics_family(b, name, type, help);
    ndt_buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void family(ndt_buf *b, const char *name, const char *type, const char *help, double v)
{
    ndt_metrics_family(b, name, type, help);
    ndt_buf_printf(b, "%s ", name);
    ndt_buf_append_double(b, v);
    ndt_buf_append_char(b, '\n');
}

static size_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n > 0 ? n - 1 : 0; /* the descriptor opendir itself holds */
}

/* utime, stime (ticks), starttime (ticks since boot), vsize (bytes) and
 * rss (pages) from /proc/self/stat: fields 14, 15, 22, 23, 24. */
static int read_stat(double *cpu_s, double *start_ticks, double *vsize, double *rss_pages)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return NDT_ERROR;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start
     * after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return NDT_ERROR;
    unsigned long long utime, stime, start, vs;
    long long rss;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                      "%*d %*d %llu %llu %lld",
               &utime, &stime, &start, &vs, &rss) != 5)
        return NDT_ERROR;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *cpu_s = (double)(utime + stime) / hz;
    *start_ticks = (double)start / hz;
    *vsize = (double)vs;
    *rss_pages = (double)rss;
    return NDT_OK;
}

static double boot_time_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    double btime = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "btime ", 6) == 0) {
            btime = strtod(line + 6, NULL);
            break;
        }
    }
    fclose(f);
    return btime;
}

static void render_process(ndt_buf *b)
{
    double cpu, start, vsize, rss;
    if (read_stat(&cpu, &start, &vsize, &rss) == NDT_OK) {
        family(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.", cpu);
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               rss * (double)sysconf(_SC_PAGESIZE));
        family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize);
        family(b, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", boot_time_s() + start);
    }
    family(b, "process_open_fds", "gauge", "Number of open file descriptors.", (double)open_fds());
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
               (double)rl.rlim_cur);
}

int ndt_metrics_render(ndt_buf *out)
{
    render_process(out);
    int rc = NDT_OK;
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < nsources && rc == NDT_OK; i++)
        rc = sources[i].fn(sources[i].ctx, out);
    pthread_mutex_unlock(&registry_lock);
    return rc;
}
