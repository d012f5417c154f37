/*
 * httpd.c: /metrics and /healthz for a stage, see httpd.h.
 *
 * Deliberately small: two GET routes, bounded responses, a connection
 * limit and timeout, one internal thread.  The what-if API, with its
 * routes, authentication and limits, is a different server.
 */
#include "common/httpd.h"
#include "common/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ndt.h"

#define HTTPD_MAX_RESPONSE (64u << 20)
#define HTTPD_MAX_CONNECTIONS 64

struct ndt_httpd {
    struct MHD_Daemon *daemon;
    ndt_httpd_render_fn render;
    void *ctx;
    int port;
};

int ndt_httpd_parse_listen(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    char *end;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (!colon || (size_t)(colon - listen) >= sizeof(host))
        goto bad;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || port < 0 || port > 65535)
        goto bad;
    sa->sin_port = htons((uint16_t)port);
    if (host[0] == '\0' || strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        goto bad;
    return NDT_OK;
bad:
    snprintf(err, errlen, "expected HOST:PORT with an IPv4 host, e.g. 127.0.0.1:9464, got '%s'",
             listen);
    return NDT_EBADCONF;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
    ndt_httpd *h = cls;
    NDT_UNUSED(version);
    NDT_UNUSED(data);
    if (!*state) {
        *state = h; /* first call: headers only */
        return MHD_YES;
    }
    if (*data_size) {
        *data_size = 0; /* no route takes a body */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char msg[] = "{\"error\":\"method-not-allowed\",\"detail\":\"only GET\"}\n";
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json", msg, sizeof(msg) - 1);
    }
    if (strcmp(url, "/healthz") == 0)
        return respond(conn, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n", 3);
    if (strcmp(url, "/metrics") == 0) {
        ndt_buf out;
        ndt_buf_init(&out, HTTPD_MAX_RESPONSE);
        enum MHD_Result ret;
        int rendered = h->render ? h->render(h->ctx, &out) : ndt_metrics_render(&out);
        if (rendered == NDT_OK)
            ret = respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                          out.data ? out.data : "", out.len);
        else
            ret = respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "render failed\n", 14);
        ndt_buf_free(&out);
        return ret;
    }
    static const char msg[] = "{\"error\":\"not-found\",\"detail\":\"try /metrics or /healthz\"}\n";
    return respond(conn, MHD_HTTP_NOT_FOUND, "application/json", msg, sizeof(msg) - 1);
}

int ndt_httpd_start(const char *listen, ndt_httpd_render_fn render, void *ctx, ndt_httpd **out,
                    char *err, size_t errlen)
{
    struct sockaddr_in sa;
    int rc = ndt_httpd_parse_listen(listen, &sa, err, errlen);
    if (rc != NDT_OK)
        return rc;
    ndt_httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    h->render = render;
    h->ctx = ctx;
    h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
                                 on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPD_MAX_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
        free(h);
        return NDT_ERROR;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : ntohs(sa.sin_port);
    *out = h;
    return NDT_OK;
}

int ndt_httpd_port(const ndt_httpd *h) { return h->port; }

void ndt_httpd_stop(ndt_httpd *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
