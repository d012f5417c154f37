/*
 * metrics.h: the process's own metrics, one exposition for every stage
 * that runs in it.
 *
 * `ndtpipe scrape` alone and `ndtpipe run` (every stage in one process)
 * must expose the same families under one /metrics, so stages do not
 * render their metrics into a server of their own: each registers a
 * source, and whichever endpoint serves /metrics (common/httpd.h with a
 * NULL render, or the API server) renders the registry.  The registry
 * starts with the process families every Prometheus client library
 * exports (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds), read from /proc at render time.
 *
 * Sources are called on the HTTP server's thread, under the registry's
 * lock: a source must only copy data its stage made safe to read there
 * (the scraper renders a snapshot on its own thread and the source copies
 * it under its mutex).  Each source owns distinct metric family names.
 */
#ifndef NDT_METRICS_H
#define NDT_METRICS_H

#include "common/buf.h"
#include "common/ndt.h"

#define NDT_METRICS_MAX_SOURCES 16

/* Appends the source's families to out; NDT_OK or NDT_ERROR. */
typedef int (*ndt_metrics_source_fn)(void *ctx, ndt_buf *out);

/* NDT_ERROR when NDT_METRICS_MAX_SOURCES are registered already. */
int ndt_metrics_register(ndt_metrics_source_fn fn, void *ctx);
/* Removes every registration with this ctx; waits for a render in progress. */
void ndt_metrics_unregister(void *ctx);
/* The process families, then every source in registration order. */
int ndt_metrics_render(ndt_buf *out);

/* For sources: a family's # HELP and # TYPE lines; and a whole family of
 * one unlabelled integer sample (most counters and gauges of a stage). */
void ndt_metrics_family(ndt_buf *b, const char *name, const char *type, const char *help);
void ndt_metrics_value(ndt_buf *b, const char *name, const char *type, const char *help, uint64_t v);

#endif
