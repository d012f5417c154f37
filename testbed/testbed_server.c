/*
 * testbed_server.c: the live testbed: the simulation stepped to the wall
 * clock, served over HTTP (libmicrohttpd).
 *
 *   GET  /metrics   the exposition (testbed_expo.c), gzip if accepted
 *   GET  /control   {"users":U,"pods":N}
 *   POST /control   {"users":U,"pods":N} (either field; testbed_control.c)
 *
 * Why this shape: the simulation is cheap per simulated second but must
 * look continuous to 20 ms scrapers, so a stepping thread advances it every
 * TESTBED_STEP_MS and each request also advances it to "now" before
 * reading.  One mutex guards the simulation and the render cache; nothing
 * else is shared.  The exposition only changes at the end of a telemetry
 * window, so it is rendered at most once per window into a reused buffer
 * (and gzipped at most once per window): many scrapers cost one render.
 *
 * Bounds: request bodies are capped (TESTBED_MAX_BODY), the exposition
 * buffer is capped (TESTBED_MAX_EXPOSITION), at most
 * TESTBED_MAX_CONNECTIONS connections are open, served by a fixed pool of
 * two threads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <microhttpd.h>
#include <zlib.h>

#include "common/log.h"
#include "common/ndt.h"
#include "testbed/testbed_internal.h"

#define TESTBED_STEP_MS 5
#define TESTBED_MAX_BODY 4096
#define TESTBED_MAX_CONNECTIONS 256
#define TESTBED_MAX_EXPOSITION (8u << 20)
#define TESTBED_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct testbed_server {
    struct MHD_Daemon *daemon;
    pthread_t stepper;
    int stepper_started;
    atomic_int stopping;
    pthread_mutex_t lock;
    testbed_sim *sim;
    struct timespec started;
    /* render cache, valid for one telemetry window */
    ndt_buf text, gz;
    uint64_t text_window, gz_window;
    int text_valid, gz_valid;
    int port;
};

typedef struct testbed_request {
    char body[TESTBED_MAX_BODY];
    size_t len;
    int too_large;
} testbed_request;

static double testbed_wall_elapsed(const testbed_server *srv)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - srv->started.tv_sec) +
           (double)(now.tv_nsec - srv->started.tv_nsec) / 1e9;
}

/* Caller holds the lock. */
static void testbed_catch_up(testbed_server *srv)
{
    double now = testbed_wall_elapsed(srv);
    if (now > testbed_sim_now(srv->sim))
        testbed_sim_advance(srv->sim, now);
}

static void *testbed_stepper_main(void *arg)
{
    testbed_server *srv = arg;
    struct timespec pause = { 0, TESTBED_STEP_MS * 1000000L };
    while (!srv->stopping) {
        pthread_mutex_lock(&srv->lock);
        testbed_catch_up(srv);
        pthread_mutex_unlock(&srv->lock);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/* ---- responses -------------------------------------------------------- */

static enum MHD_Result testbed_reply(struct MHD_Connection *conn, unsigned status,
                                     const char *type, const char *body, size_t len,
                                     const char *encoding)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (encoding)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, encoding);
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result testbed_reply_error(struct MHD_Connection *conn, unsigned status,
                                           const char *code, const char *detail)
{
    char body[1024];
    cJSON_bool ok = 0;
    cJSON *obj = cJSON_CreateObject();
    if (obj && cJSON_AddStringToObject(obj, "error", code) &&
        cJSON_AddStringToObject(obj, "detail", detail))
        ok = cJSON_PrintPreallocated(obj, body, sizeof(body), 0);
    cJSON_Delete(obj);
    if (!ok)
        snprintf(body, sizeof(body), "{\"error\":\"%s\"}", code);
    return testbed_reply(conn, status, "application/json", body, strlen(body), NULL);
}

static enum MHD_Result testbed_reply_state(testbed_server *srv, struct MHD_Connection *conn)
{
    char body[64];
    pthread_mutex_lock(&srv->lock);
    int n = snprintf(body, sizeof(body), "{\"users\":%d,\"pods\":%d}",
                     testbed_sim_users(srv->sim), testbed_sim_pods(srv->sim));
    pthread_mutex_unlock(&srv->lock);
    return testbed_reply(conn, MHD_HTTP_OK, "application/json", body, (size_t)n, NULL);
}

/* ---- /metrics --------------------------------------------------------- */

static int testbed_gzip(const ndt_buf *in, ndt_buf *out)
{
    z_stream z = { 0 };
    int rc = NDT_ERROR;
    /* 15 + 16: zlib's gzip wrapper, which Content-Encoding: gzip means. */
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NDT_ERROR;
    size_t bound = deflateBound(&z, (uLong)in->len);
    ndt_buf_reset(out);
    if (ndt_buf_reserve(out, bound) != NDT_OK)
        goto done;
    z.next_in = (Bytef *)in->data;
    z.avail_in = (uInt)in->len;
    z.next_out = (Bytef *)out->data;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        goto done;
    out->len = z.total_out;
    rc = NDT_OK;
done:
    deflateEnd(&z);
    return rc;
}

static int testbed_accepts_gzip(struct MHD_Connection *conn)
{
    const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_ACCEPT_ENCODING);
    return ae && strstr(ae, "gzip") != NULL;
}

/* Caller holds the lock: brings the cached text (and gzip) to this window. */
static int testbed_render(testbed_server *srv, int want_gzip)
{
    uint64_t window = testbed_sim_windows(srv->sim);
    if (!srv->text_valid || srv->text_window != window) {
        srv->gz_valid = 0;
        srv->text_valid = testbed_expo_render(srv->sim, &srv->text) == NDT_OK;
        srv->text_window = window;
        if (!srv->text_valid)
            return NDT_ERROR;
    }
    if (want_gzip && (!srv->gz_valid || srv->gz_window != window)) {
        srv->gz_valid = testbed_gzip(&srv->text, &srv->gz) == NDT_OK;
        srv->gz_window = window;
        if (!srv->gz_valid)
            return NDT_ERROR;
    }
    return NDT_OK;
}

static enum MHD_Result testbed_serve_metrics(testbed_server *srv, struct MHD_Connection *conn)
{
    int gzip = testbed_accepts_gzip(conn);
    enum MHD_Result ret;
    pthread_mutex_lock(&srv->lock);
    testbed_catch_up(srv);
    if (testbed_render(srv, gzip) != NDT_OK) {
        pthread_mutex_unlock(&srv->lock);
        return testbed_reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "render-failed",
                                   "the exposition could not be rendered within its bound");
    }
    const ndt_buf *b = gzip ? &srv->gz : &srv->text;
    ret = testbed_reply(conn, MHD_HTTP_OK, TESTBED_CONTENT_TYPE, b->data, b->len,
                        gzip ? "gzip" : NULL);
    pthread_mutex_unlock(&srv->lock);
    return ret;
}

/* ---- /control ---------------------------------------------------------- */

static enum MHD_Result testbed_serve_control_post(testbed_server *srv,
                                                  struct MHD_Connection *conn,
                                                  testbed_request *req)
{
    char err[NDT_ERRBUF_SIZE];
    if (req->too_large) {
        snprintf(err, sizeof(err), "body larger than %d bytes", TESTBED_MAX_BODY);
        return testbed_reply_error(conn, MHD_HTTP_BAD_REQUEST, "bad-request", err);
    }
    pthread_mutex_lock(&srv->lock);
    testbed_catch_up(srv);
    int rc = testbed_control_apply(srv->sim, req->body, req->len, err, sizeof(err));
    int users = testbed_sim_users(srv->sim), pods = testbed_sim_pods(srv->sim);
    /* A change must show in the very next scrape, not at the next window:
     * a client that reads /metrics right after /control sees its effect. */
    if (rc == NDT_OK)
        srv->text_valid = srv->gz_valid = 0;
    pthread_mutex_unlock(&srv->lock);
    if (rc != NDT_OK)
        return testbed_reply_error(conn, MHD_HTTP_BAD_REQUEST, "bad-request", err);
    ndt_log(NDT_LOG_INFO, "testbed", "control applied", NDT_KV_INT("users", users),
            NDT_KV_INT("pods", pods));
    return testbed_reply_state(srv, conn);
}

static enum MHD_Result testbed_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_size,
                                      void **con_cls)
{
    testbed_server *srv = cls;
    (void)version;
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                 strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (strcmp(url, "/control") == 0 && is_post) {
        testbed_request *req = *con_cls;
        if (!req) {
            req = calloc(1, sizeof(*req));
            if (!req)
                return MHD_NO;
            *con_cls = req;
            return MHD_YES;
        }
        if (*upload_size) {
            if (req->len + *upload_size > sizeof(req->body))
                req->too_large = 1;
            else {
                memcpy(req->body + req->len, upload_data, *upload_size);
                req->len += *upload_size;
            }
            *upload_size = 0;
            return MHD_YES;
        }
        return testbed_serve_control_post(srv, conn, req);
    }
    if (strcmp(url, "/metrics") == 0 && is_get)
        return testbed_serve_metrics(srv, conn);
    if (strcmp(url, "/control") == 0 && is_get)
        return testbed_reply_state(srv, conn);
    if (strcmp(url, "/metrics") == 0 || strcmp(url, "/control") == 0)
        return testbed_reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method-not-allowed",
                                   "use GET /metrics, GET or POST /control");
    return testbed_reply_error(conn, MHD_HTTP_NOT_FOUND, "not-found",
                               "the testbed serves /metrics and /control");
}

static void testbed_request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                                 enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

static int testbed_parse_listen(const char *listen, struct sockaddr_in *sa, char *err,
                                size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host))
        goto bad;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
        goto bad;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        goto bad;
    return NDT_OK;
bad:
    snprintf(err, errlen, "--listen: expected HOST:PORT with an IPv4 host, e.g. %s, got '%s'",
             TESTBED_DEFAULT_LISTEN, listen);
    return NDT_ERROR;
}

int testbed_server_start(const testbed_params *p, const char *listen, testbed_server **out,
                         char *err, size_t errlen)
{
    struct sockaddr_in sa;
    *out = NULL;
    if (testbed_parse_listen(listen, &sa, err, errlen) != NDT_OK)
        return NDT_ERROR;
    testbed_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    pthread_mutex_init(&srv->lock, NULL);
    ndt_buf_init(&srv->text, TESTBED_MAX_EXPOSITION);
    ndt_buf_init(&srv->gz, TESTBED_MAX_EXPOSITION);
    if (testbed_sim_create(p, &srv->sim, err, errlen) != NDT_OK)
        goto fail;
    srv->sim->epoch_s = (double)time(NULL);
    clock_gettime(CLOCK_MONOTONIC, &srv->started);
    srv->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        testbed_handle, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)TESTBED_MAX_CONNECTIONS,
        MHD_OPTION_NOTIFY_COMPLETED, testbed_request_done, NULL, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : ntohs(sa.sin_port);
    if (pthread_create(&srv->stepper, NULL, testbed_stepper_main, srv) != 0) {
        snprintf(err, errlen, "cannot start the simulation thread");
        goto fail;
    }
    srv->stepper_started = 1;
    *out = srv;
    return NDT_OK;
fail:
    testbed_server_stop(srv);
    return NDT_ERROR;
}

void testbed_server_stop(testbed_server *srv)
{
    if (!srv)
        return;
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon); /* no request runs after this */
    srv->stopping = 1;
    if (srv->stepper_started)
        pthread_join(srv->stepper, NULL);
    testbed_sim_destroy(srv->sim);
    ndt_buf_free(&srv->text);
    ndt_buf_free(&srv->gz);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

int testbed_server_port(const testbed_server *srv) { return srv->port; }
