/*
 * httpd.h: the operational HTTP endpoint of a stage: GET /metrics (the
 * stage's own metrics, Prometheus text format 0.0.4) and GET /healthz.
 *
 * libmicrohttpd runs it on its own thread, so the render callback is called
 * from that thread: the stage must hand it data that is safe to read there
 * (the scraper renders a snapshot on its loop thread and the callback copies
 * it under a mutex).  Binds 127.0.0.1 unless told otherwise.
 */
#ifndef NDT_HTTPD_H
#define NDT_HTTPD_H

#include <stddef.h>

#include "common/buf.h"

/* Fills out with the exposition; NDT_OK or NDT_ERROR (answered with 500). */
typedef int (*ndt_httpd_render_fn)(void *ctx, ndt_buf *out);

typedef struct ndt_httpd ndt_httpd;

struct sockaddr_in;
/* "HOST:PORT" (IPv4 or localhost; empty host = 127.0.0.1) into sa;
 * NDT_EBADCONF with a message otherwise.  Shared by every listener. */
int ndt_httpd_parse_listen(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen);

/* listen is "HOST:PORT" (IPv4 or localhost; port 0 picks a free one).
 * render NULL serves the process's registry (common/metrics.h). */
int ndt_httpd_start(const char *listen, ndt_httpd_render_fn render, void *ctx, ndt_httpd **out,
                    char *err, size_t errlen);
int ndt_httpd_port(const ndt_httpd *httpd);
void ndt_httpd_stop(ndt_httpd *httpd);

#endif
