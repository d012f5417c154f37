/*
 * api_server.c: the HTTP side of `ndtpipe serve` (api.h, docs/API.md):
 * routes, limits, authentication, error answers and metrics.
 *
 * libmicrohttpd runs a pool of `threads` threads, each with its own epoll
 * loop; a request is handled entirely on the thread that accepted it.
 * What is shared between threads is either read-only after start (the
 * options, the token), lock-free (api_metrics.c) or behind the engine's
 * lock (api_engine.c).  Limits: a request body above max_body gets 413
 * before it is buffered whole (the Content-Length is checked first), an
 * idle or slow client is cut after timeout_s (MHD's connection timeout),
 * connections beyond API_MAX_CONNECTIONS are refused, and every response
 * is bounded (API_MAX_RESPONSE).  Errors are always
 * {"error":"short-code","detail":"sentence"}.
 *
 * Authentication: with a token, every /v1/ and /ngsi-ld/ request needs
 * "Authorization: Bearer <token>", compared in constant time; /healthz,
 * /readyz and /metrics stay open for probes and scrapers.  The token is
 * never logged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "common/clock.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/metrics.h"

#define API_MAX_CONNECTIONS 1024
#define API_MAX_URL 2048
#define API_MAX_THREADS 64
/* How much of an oversized body without Content-Length is read (and
 * dropped) to answer 413, in multiples of the limit, before closing. */
#define API_DROP_FACTOR 16

struct api_server {
    api_options opts;
    struct MHD_Daemon *daemon;
    api_engine *engine;
    api_actuator *actuator; /* NULL: no objective, actuation off */
    api_metrics *metrics;
    size_t max_body;
    size_t token_len;
    int port;
    int registered; /* in the process's metrics registry */
};

typedef enum api_method { API_GET, API_POST } api_method;

/* Per-request state, from the headers to the answer. */
typedef struct api_request {
    api_endpoint endpoint;
    int64_t start_ns;
    ndt_buf body;
    api_answer early; /* code set: answered without running the handler */
    size_t dropped;   /* body bytes read past the limit and dropped */
} api_request;

/* ---- answers ------------------------------------------------------------ */

static enum MHD_Result send_body(api_server *s, struct MHD_Connection *conn, api_request *req,
                                 unsigned status, const char *type, const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"ndtpipe\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", req->endpoint == API_EP_PREDICT || req->endpoint == API_EP_WHATIF
                                                ? "POST" : "GET, HEAD");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    double seconds = (double)(ndt_clock_mono_ns() - req->start_ns) / 1e9;
    api_metrics_observe(s->metrics, req->endpoint, status, seconds);
    return ret;
}

static enum MHD_Result send_error(api_server *s, struct MHD_Connection *conn, api_request *req,
                                  const api_answer *a)
{
    char body[768];
    ndt_buf b = { .data = body, .len = 0, .cap = sizeof(body), .limit = sizeof(body) - 1 };
    /* A fixed buffer: ndt_buf never reallocates within its limit's capacity. */
    if (ndt_buf_append_str(&b, "{\"error\":") != NDT_OK || api_json_string(&b, a->code) != NDT_OK ||
        ndt_buf_append_str(&b, ",\"detail\":") != NDT_OK || api_json_string(&b, a->detail) != NDT_OK ||
        ndt_buf_append_str(&b, "}\n") != NDT_OK) {
        static const char fallback[] = "{\"error\":\"internal\",\"detail\":\"error too long\"}\n";
        return send_body(s, conn, req, a->status, "application/json", fallback, sizeof(fallback) - 1);
    }
    if (a->status >= 500 && a->status != MHD_HTTP_SERVICE_UNAVAILABLE)
        ndt_log(NDT_LOG_WARN, "api", "request failed", NDT_KV_STR("endpoint", api_endpoint_name(req->endpoint)),
                NDT_KV_INT("status", a->status), NDT_KV_STR("error", a->code), NDT_KV_STR("detail", a->detail));
    return send_body(s, conn, req, a->status, "application/json", body, b.len);
}

/* ---- routing ------------------------------------------------------------ */

static const struct {
    const char *path;
    int prefix; /* the path is followed by "/<id>" */
    api_endpoint endpoint;
    api_method method;
} routes[] = {
    { "/healthz", 0, API_EP_HEALTHZ, API_GET },
    { "/readyz", 0, API_EP_READYZ, API_GET },
    { "/metrics", 0, API_EP_METRICS, API_GET },
    { "/ngsi-ld/v1/entities", 0, API_EP_ENTITIES, API_GET },
    { "/ngsi-ld/v1/entities/", 1, API_EP_ENTITY, API_GET },
    { "/v1/graph", 0, API_EP_GRAPH, API_GET },
    { "/v1/models", 0, API_EP_MODELS, API_GET },
    { "/v1/models/", 1, API_EP_MODEL, API_GET },
    { "/v1/predict", 0, API_EP_PREDICT, API_POST },
    { "/v1/whatif", 0, API_EP_WHATIF, API_POST },
    { "/v1/recommendation", 0, API_EP_RECOMMENDATION, API_GET },
    { "/v1/scale/", 1, API_EP_SCALE, API_GET },
};

/* The route of url (API_EP_OTHER if none) and, for "/<id>" routes, the id. */
static api_endpoint route(const char *url, api_method *method, const char **id)
{
    *id = NULL;
    for (size_t i = 0; i < NDT_ARRAY_LEN(routes); i++) {
        size_t n = strlen(routes[i].path);
        if (routes[i].prefix ? strncmp(url, routes[i].path, n) == 0 && url[n] && !strchr(url + n, '/')
                             : strcmp(url, routes[i].path) == 0) {
            *method = routes[i].method;
            if (routes[i].prefix)
                *id = url + n;
            return routes[i].endpoint;
        }
    }
    return API_EP_OTHER;
}

static int authorized(const api_server *s, struct MHD_Connection *conn)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return 0;
    const char *given = auth + 7;
    return api_token_equal(given, strlen(given), s->opts.token, s->token_len);
}

/* What can be decided from the request line and headers alone. */
static void check_headers(api_server *s, struct MHD_Connection *conn, const char *url, const char *method,
                          api_request *req)
{
    api_method want = API_GET;
    const char *id;
    req->endpoint = route(url, &want, &id);
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int is_post = strcmp(method, "POST") == 0;
    int protected = strncmp(url, "/v1/", 4) == 0 || strncmp(url, "/ngsi-ld/", 9) == 0;
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (protected && s->opts.token && !authorized(s, conn))
        api_fail(&req->early, 401, "unauthorized", "this endpoint needs 'Authorization: Bearer <token>'");
    else if (req->endpoint == API_EP_OTHER)
        api_fail(&req->early, 404, "not-found", "no such endpoint; see docs/API.md");
    else if ((want == API_GET && !is_get) || (want == API_POST && !is_post))
        api_fail(&req->early, 405, "method-not-allowed", "%s takes %s", url, want == API_GET ? "GET" : "POST");
    else if (length && strtoull(length, NULL, 10) > s->max_body)
        api_fail(&req->early, 413, "too-large", "the body is over the limit of %zu bytes", s->max_body);
}

/* The API's families in the process's metrics registry (common/metrics.h). */
static int source_render(void *ctx, ndt_buf *out)
{
    api_server *s = ctx;
    if (api_metrics_render(s->metrics, out) != NDT_OK || api_actuator_render_metrics(s->actuator, out) != NDT_OK)
        return NDT_ERROR;
    return api_engine_render_metrics(s->engine, out);
}

static const char *query(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result handle(api_server *s, struct MHD_Connection *conn, const char *url, api_request *req)
{
    ndt_buf out;
    ndt_buf_init(&out, API_MAX_RESPONSE);
    api_answer a = { .status = 200, .body = &out };
    const char *type = "application/json";
    const char *perr = NULL;
    char err[NDT_ERRBUF_SIZE];
    api_method method;
    const char *id = NULL;
    route(url, &method, &id);
    switch (req->endpoint) {
    case API_EP_HEALTHZ:
        ndt_buf_append_str(&out, "ok\n");
        type = "text/plain; charset=utf-8";
        break;
    case API_EP_READYZ:
        api_engine_ready(s->engine, &a);
        break;
    case API_EP_METRICS:
        /* The process's registry: the process families, the API's own
         * (source_render below) and those of any stage in the process. */
        type = "text/plain; version=0.0.4; charset=utf-8";
        if (ndt_metrics_render(&out) != NDT_OK)
            api_fail(&a, 500, "internal", "the metrics do not fit the response limit");
        break;
    case API_EP_ENTITIES: {
        const char *t = query(conn, "type");
        const char *options = query(conn, "options");
        if (!t || !t[0])
            api_fail(&a, 400, "bad-request", "type is required, e.g. ?type=ServiceComponent");
        else
            api_engine_entities(s->engine, t, NULL, options && strcmp(options, "keyValues") == 0, &a);
        break;
    }
    case API_EP_ENTITY: {
        const char *options = query(conn, "options");
        api_engine_entities(s->engine, NULL, id, options && strcmp(options, "keyValues") == 0, &a);
        break;
    }
    case API_EP_GRAPH:
        api_engine_graph(s->engine, query(conn, "at"), &a);
        break;
    case API_EP_MODELS:
        api_engine_models(s->engine, NULL, &a);
        break;
    case API_EP_MODEL:
        api_engine_models(s->engine, id, &a);
        break;
    case API_EP_PREDICT: {
        api_predict_request pr;
        if (api_parse_predict(req->body.data ? req->body.data : "", req->body.len, &pr, &perr, err,
                              sizeof(err)) != NDT_OK)
            api_fail(&a, 400, perr, "%s", err);
        else
            api_engine_predict(s->engine, &pr, &a);
        break;
    }
    case API_EP_WHATIF: {
        api_whatif_request wr;
        if (api_parse_whatif(req->body.data ? req->body.data : "", req->body.len, &wr, &perr, err,
                             sizeof(err)) != NDT_OK)
            api_fail(&a, 400, perr, "%s", err);
        else
            api_engine_whatif(s->engine, &wr, &a);
        break;
    }
    case API_EP_RECOMMENDATION:
        api_actuator_recommendation(s->actuator, query(conn, "service"), 0, &a);
        break;
    case API_EP_SCALE:
        api_actuator_recommendation(s->actuator, id, 1, &a);
        break;
    default:
        api_fail(&a, 404, "not-found", "no such endpoint");
    }
    enum MHD_Result ret = a.code ? send_error(s, conn, req, &a)
                                 : send_body(s, conn, req, a.status, type, out.data ? out.data : "", out.len);
    ndt_buf_free(&out);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
    api_server *s = cls;
    api_request *req = *state;
    NDT_UNUSED(version);
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        req->start_ns = ndt_clock_mono_ns();
        ndt_buf_init(&req->body, s->max_body);
        check_headers(s, conn, url, method, req);
        *state = req;
        /* Refused on its headers: answered now, so a body that will not be
         * used (an oversized upload, say) is never read; MHD then closes
         * the connection rather than skip the body. */
        if (req->early.code)
            return send_error(s, conn, req, &req->early);
        return MHD_YES;
    }
    if (*data_size) {
        /* Bodies of GET routes are read and dropped. */
        if (!req->early.code && (req->endpoint == API_EP_PREDICT || req->endpoint == API_EP_WHATIF) &&
            ndt_buf_append(&req->body, data, *data_size) != NDT_OK)
            api_fail(&req->early, 413, "too-large", "the body is over the limit of %zu bytes", s->max_body);
        /* A body without Content-Length that outgrew the limit is read
         * and dropped so that the client gets its 413 (MHD cannot answer
         * in the middle of an upload), but only up to a bound: past it
         * the connection is closed. */
        req->dropped += req->early.code ? *data_size : 0;
        *data_size = 0;
        return req->dropped > API_DROP_FACTOR * s->max_body ? MHD_NO : MHD_YES;
    }
    if (req->early.code) /* the body outgrew the limit */
        return send_error(s, conn, req, &req->early);
    return handle(s, conn, url, req);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode code)
{
    NDT_UNUSED(cls);
    NDT_UNUSED(conn);
    NDT_UNUSED(code);
    api_request *req = *state;
    if (!req)
        return;
    ndt_buf_free(&req->body);
    free(req);
    *state = NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

int api_server_new(const api_options *opts, api_server **out, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    const char *listen = opts->listen ? opts->listen : API_DEFAULT_LISTEN;
    int rc = ndt_httpd_parse_listen(listen, &sa, err, errlen);
    if (rc != NDT_OK)
        return rc;
    if (!opts->registry || !opts->udr_url) {
        snprintf(err, errlen, "%s is required", opts->registry ? "--udr" : "--registry");
        return NDT_EBADCONF;
    }
    api_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    s->opts = *opts;
    s->opts.listen = listen;
    s->max_body = opts->max_body_bytes ? opts->max_body_bytes : API_DEFAULT_MAX_BODY;
    s->token_len = opts->token ? strlen(opts->token) : 0;
    unsigned threads = (unsigned)(opts->threads > 0 ? opts->threads : API_DEFAULT_THREADS);
    unsigned timeout = (unsigned)(opts->timeout_s > 0 ? opts->timeout_s : API_DEFAULT_TIMEOUT_S);
    if (threads > API_MAX_THREADS)
        threads = API_MAX_THREADS;
    s->metrics = api_metrics_new();
    if (!s->metrics) {
        snprintf(err, errlen, "out of memory");
        rc = NDT_ERROR;
        goto fail;
    }
    rc = api_engine_new(&s->opts, &s->engine, err, errlen);
    if (rc != NDT_OK)
        goto fail;
    if (opts->objective_ms > 0) {
        rc = api_actuator_new(&s->opts, s->engine, &s->actuator, err, errlen);
        if (rc != NDT_OK)
            goto fail;
    }
    if (ndt_metrics_register(source_render, s) != NDT_OK) {
        snprintf(err, errlen, "too many metrics sources in this process");
        rc = NDT_ERROR;
        goto fail;
    }
    s->registered = 1;
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                 MHD_OPTION_THREAD_POOL_SIZE, threads,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32u << 10),
                                 MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
        rc = NDT_ERROR;
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : ntohs(sa.sin_port);
    *out = s;
    return NDT_OK;
fail:
    api_server_destroy(s);
    return rc;
}

int api_server_port(const api_server *s) { return s->port; }

int api_server_run(api_server *s)
{
    static const volatile int never = 0;
    const volatile int *stop = s->opts.stop ? s->opts.stop : &never;
    ndt_log(NDT_LOG_INFO, "api", "serving", NDT_KV_STR("listen", s->opts.listen), NDT_KV_INT("port", s->port),
            NDT_KV_BOOL("auth", s->opts.token != NULL), NDT_KV_STR("registry", s->opts.registry));
    while (!*stop)
        usleep(50000);
    /* Requests in flight finish; new connections are refused. */
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    ndt_log(NDT_LOG_INFO, "api", "stopped");
    return NDT_OK;
}

void api_server_destroy(api_server *s)
{
    if (!s)
        return;
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    if (s->registered)
        ndt_metrics_unregister(s);
    api_actuator_free(s->actuator); /* before the engine it asks */
    api_engine_free(s->engine);
    api_metrics_free(s->metrics);
    free(s);
}
