/*
 * receive.c: the Prometheus remote-write 1.0 receiver (ingest.h), the
 * TDL's second way in: Prometheus or vmagent point remote_write at
 * ndtpipe and their samples go to the same topic, key and formats as
 * scraped ones.
 *
 * Answers follow the protocol's retry rules, because they decide whether a
 * sample can be lost: 204 only once every sample of the request is in
 * librdkafka's queue (from there the idempotent producer delivers it); 400
 * for a payload that can never succeed (the sender drops it, so the reason
 * is logged and counted); 429/5xx make the sender retry the whole request,
 * which is what back-pressure from Kafka turns into (503 after
 * backpressure_ms of a full queue).  A retried request may publish some
 * samples twice: remote write is at-least-once.
 *
 * One libmicrohttpd thread runs every request, so the sink is only ever
 * used from that thread, plus the main thread's delivery-report polling,
 * serialised by sink_lock.  Bodies are bounded before decompression
 * (max_body_bytes) and after (max_decoded), and decoding uses an arena
 * reset after each request.
 */
#include "ingest/ingest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/httpd.h"
#include "common/log.h"
#include "ingest/remote_write.h"
#include "ingest/sink.h"

#define RECEIVE_DEFAULT_MAX_BODY (32u << 20)
#define RECEIVE_DECODED_FACTOR 8 /* snappy rarely compresses remote write more than ~5x */
#define RECEIVE_ARENA_BLOCK (4u << 20)
#define RECEIVE_DEFAULT_BACKPRESSURE_MS 1000
#define RECEIVE_MAX_CONNECTIONS 256
/* How often the main thread serves delivery reports; publishing serves
 * them too, so this only matters when no request comes. */
#define RECEIVE_POLL_INTERVAL_US 100000

/* The producer of a receiver batches longer than the scraper's 5 ms: a
 * remote-write sender already batched for up to seconds (Prometheus's
 * batch_send_deadline is 5 s) and the 204 does not wait for Kafka, so
 * 100 ms adds no latency to any answer and little to the samples' age,
 * while it turns a produce request every few ms (each a wake-up of
 * librdkafka's broker thread, system calls and an lz4 frame) into ten a
 * second: 1.86x vmagent at 5 ms, ~2x at 50 ms, 2.2x at 200 ms in
 * bench/receive.sh (docs/PERFORMANCE.md).  -X linger.ms=N overrides it. */
static const char *const receive_kafka_defaults[] = {
    "linger.ms", "100",
    NULL,
};

struct ingest_receiver {
    ingest_receive_options options;
    struct MHD_Daemon *daemon;
    ingest_sink *sink;
    pthread_mutex_t sink_lock;
    ndt_arena arena;
    size_t max_body;
    size_t max_decoded;
    int per_sample_format;     /* json, influx: one message per sample */
    struct MHD_Response *no_content; /* the 204, built once and shared by every answer */
    ingest_receive_totals totals;
};

/* Per-connection state: the body as it arrives, or the early answer. */
typedef struct receive_request {
    ndt_buf body;
    unsigned early_status;     /* non-zero: answered before the body was read */
    char early_detail[160];
} receive_request;

/* ---- answers ---------------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *code,
                              const char *detail)
{
    char body[512];
    size_t len = 0;
    if (code) {
        char safe[300];
        size_t j = 0;
        for (size_t i = 0; detail && detail[i] && j < sizeof(safe) - 2; i++) {
            if (detail[i] == '"' || detail[i] == '\\')
                safe[j++] = '\\';
            safe[j++] = (detail[i] == '\n') ? ' ' : detail[i];
        }
        safe[j] = '\0';
        len = (size_t)snprintf(body, sizeof(body), "{\"error\":\"%s\",\"detail\":\"%s\"}\n", code, safe);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (code)
        MHD_add_response_header(r, "Content-Type", "application/json");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_TOO_MANY_REQUESTS)
        MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int header_has(struct MHD_Connection *conn, const char *name, const char *want)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    return v && strncasecmp(v, want, strlen(want)) == 0;
}

/* Checks made before reading the body; fills the early answer if any. */
static void check_request(ingest_receiver *r, struct MHD_Connection *conn, const char *url,
                          const char *method, receive_request *req)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (strcmp(url, "/api/v1/write") != 0) {
        req->early_status = MHD_HTTP_NOT_FOUND;
        snprintf(req->early_detail, sizeof(req->early_detail), "no such path; POST /api/v1/write");
    } else if (strcmp(method, "POST") != 0) {
        req->early_status = MHD_HTTP_METHOD_NOT_ALLOWED;
        snprintf(req->early_detail, sizeof(req->early_detail), "remote write takes POST");
    } else if (r->options.token &&
               (!auth || strncmp(auth, "Bearer ", 7) != 0 || strcmp(auth + 7, r->options.token) != 0)) {
        req->early_status = MHD_HTTP_UNAUTHORIZED;
        snprintf(req->early_detail, sizeof(req->early_detail), "a valid bearer token is required");
    } else if (!header_has(conn, "Content-Type", "application/x-protobuf")) {
        req->early_status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
        snprintf(req->early_detail, sizeof(req->early_detail),
                 "Content-Type must be application/x-protobuf (remote write 1.0)");
    } else if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding") &&
               !header_has(conn, "Content-Encoding", "snappy")) {
        req->early_status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
        snprintf(req->early_detail, sizeof(req->early_detail), "Content-Encoding must be snappy");
    } else if (length && strtoull(length, NULL, 10) > r->max_body) {
        req->early_status = MHD_HTTP_CONTENT_TOO_LARGE;
        snprintf(req->early_detail, sizeof(req->early_detail), "body over the limit of %zu bytes",
                 r->max_body);
    }
}

/* The body's buffer at its announced size (checked against max_body above),
 * so it is read without growing and copying; a sender that announces none
 * (chunked) grows it as it comes. */
static void reserve_body(struct MHD_Connection *conn, receive_request *req)
{
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (req->early_status || !length)
        return;
    unsigned long long n = strtoull(length, NULL, 10);
    if (n > RECEIVE_ARENA_BLOCK)
        n = RECEIVE_ARENA_BLOCK; /* a false announcement reserves no more than this */
    if (n > 0)
        (void)ndt_buf_reserve(&req->body, (size_t)n); /* on failure append still grows it */
}

/* ---- publishing ------------------------------------------------------- */

static ndt_str label_of(const ingest_series *s, const char *name)
{
    for (size_t i = 1; i < s->nlabels; i++)
        if (ndt_str_eq_cstr(s->labels[i].name, name))
            return s->labels[i].value;
    return (ndt_str){ "", 0 };
}

/* Grouping by instance.  A request holds a few instances' series,
 * interleaved (Prometheus shards by series hash), or, from an aggregating
 * vmagent, thousands; one pass puts each series in its instance's group
 * through a hash table of the instances seen (the previous series' instance
 * is tried first: neighbours mostly share it), then a counting placement
 * lays the groups out in order of first appearance, each in request order.
 * Linear in the series, no comparison sort. */
typedef struct instance_slot {
    ndt_str instance;
    size_t group;          /* index into the groups, + 1; 0 = empty slot */
} instance_slot;

static uint64_t instance_hash(ndt_str s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.ptr[i]) * 1099511628211ull;
    return h;
}

/* The group of each series (group_of[i]) and each group's size
 * (sizes[g]); returns the number of groups, or 0 on the arena's cap. */
static size_t group_by_instance(ndt_arena *arena, const ingest_rw_request *rw, ndt_str *instances,
                                size_t *group_of, size_t *sizes)
{
    size_t nslots = 16;
    while (nslots < 2 * rw->nseries)
        nslots *= 2;
    instance_slot *slots = ndt_arena_alloc(arena, nslots * sizeof(*slots));
    if (!slots)
        return 0;
    memset(slots, 0, nslots * sizeof(*slots));
    size_t ngroups = 0;
    for (size_t i = 0; i < rw->nseries; i++) {
        ndt_str inst = label_of(&rw->series[i], "instance");
        if (i && ndt_str_eq(inst, instances[group_of[i - 1]])) {
            group_of[i] = group_of[i - 1];
            sizes[group_of[i]]++;
            continue;
        }
        size_t at = (size_t)instance_hash(inst) & (nslots - 1);
        while (slots[at].group && !ndt_str_eq(slots[at].instance, inst))
            at = (at + 1) & (nslots - 1);
        if (!slots[at].group) {
            slots[at].instance = inst;
            slots[at].group = ++ngroups;
            instances[ngroups - 1] = inst;
            sizes[ngroups - 1] = 0;
        }
        group_of[i] = slots[at].group - 1;
        sizes[group_of[i]]++;
    }
    return ngroups;
}

static int publish_batch(ingest_receiver *r, const ingest_series *series, size_t n, ndt_str instance)
{
    ingest_batch batch;
    ingest_label common[2]; /* in name order: instance, job */
    batch.job = label_of(&series[0], "job");
    batch.instance = instance;
    batch.scrape_timestamp_ms = series[0].timestamp_ms;
    batch.series = series;
    batch.nseries = n;
    /* Every series of the group has this instance, and senders mostly
     * give one job per instance: the Avro record carries both once. */
    batch.common = common;
    batch.ncommon = 0;
    if (instance.len)
        common[batch.ncommon++] = (ingest_label){ NDT_STR_LIT("instance"), instance };
    if (batch.job.len)
        common[batch.ncommon++] = (ingest_label){ NDT_STR_LIT("job"), batch.job };
    return ingest_sink_publish(r->sink, &batch);
}

/* Publishes the request with each sample keyed by its instance.  Avro
 * carries one record per batch, so there the samples are grouped into one
 * batch per instance, like a scrape's (group_by_instance); the per-sample
 * formats need no grouping. */
static int publish_request(ingest_receiver *r, const ingest_rw_request *rw, int per_sample)
{
    int rc = NDT_OK;
    if (!rw->nseries)
        return NDT_OK;
    pthread_mutex_lock(&r->sink_lock);
    if (per_sample) {
        for (size_t i = 0; i < rw->nseries && rc == NDT_OK; i++)
            rc = publish_batch(r, &rw->series[i], 1, label_of(&rw->series[i], "instance"));
        goto out;
    }
    size_t n = rw->nseries;
    ndt_str *instances = ndt_arena_alloc(&r->arena, n * sizeof(*instances));
    size_t *group_of = ndt_arena_alloc(&r->arena, n * sizeof(*group_of));
    size_t *starts = ndt_arena_alloc(&r->arena, (n + 1) * sizeof(*starts));
    ingest_series *grouped = ndt_arena_alloc(&r->arena, n * sizeof(*grouped));
    size_t ngroups = instances && group_of && starts && grouped
                         ? group_by_instance(&r->arena, rw, instances, group_of, starts)
                         : 0;
    if (!ngroups) {
        rc = NDT_ERROR;
        goto out;
    }
    /* sizes -> start offsets, then place; starts[g] ends as group g's end */
    for (size_t g = 0, at = 0; g < ngroups; g++) {
        size_t size = starts[g];
        starts[g] = at;
        at += size;
    }
    for (size_t i = 0; i < n; i++)
        grouped[starts[group_of[i]]++] = rw->series[i];
    for (size_t g = 0, start = 0; g < ngroups && rc == NDT_OK; g++) {
        rc = publish_batch(r, &grouped[start], starts[g] - start, instances[g]);
        start = starts[g];
    }
out:
    pthread_mutex_unlock(&r->sink_lock);
    return rc;
}

static enum MHD_Result finish_request(ingest_receiver *r, struct MHD_Connection *conn,
                                      receive_request *req)
{
    char err[NDT_ERRBUF_SIZE];
    ingest_rw_request rw;
    enum MHD_Result ret;

    r->totals.requests++;
    if (ingest_rw_decode(req->body.data ? req->body.data : "", req->body.len, r->max_decoded,
                         &r->arena, &rw, err, sizeof(err)) != NDT_OK) {
        r->totals.bad_requests++;
        ndt_log(NDT_LOG_WARN, "ingest", "remote-write request rejected", NDT_KV_STR("error", err));
        ret = answer(conn, MHD_HTTP_BAD_REQUEST, "bad-payload", err);
        goto out;
    }
    r->totals.histograms_skipped += rw.histograms_skipped;
    int rc = publish_request(r, &rw, r->per_sample_format);
    if (rc == NDT_OK) {
        r->totals.samples += rw.nseries;
        ret = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, r->no_content);
    } else if (rc == NDT_AGAIN) {
        r->totals.backpressure_rejections++;
        ret = answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "backpressure",
                     "Kafka is not taking samples fast enough; retry later");
    } else {
        r->totals.server_errors++;
        ret = answer(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "publish-failed",
                     "the samples could not be handed to Kafka");
    }
out:
    ndt_arena_reset(&r->arena);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
    ingest_receiver *r = cls;
    receive_request *req = *state;
    NDT_UNUSED(version);

    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        ndt_buf_init(&req->body, r->max_body);
        check_request(r, conn, url, method, req);
        reserve_body(conn, req);
        *state = req;
        return MHD_YES;
    }
    if (*data_size) {
        if (!req->early_status && ndt_buf_append(&req->body, data, *data_size) != NDT_OK) {
            req->early_status = MHD_HTTP_CONTENT_TOO_LARGE;
            snprintf(req->early_detail, sizeof(req->early_detail),
                     "body over the limit of %zu bytes", r->max_body);
        }
        *data_size = 0; /* consumed (or discarded after an early answer) */
        return MHD_YES;
    }
    if (req->early_status) {
        r->totals.requests++;
        r->totals.bad_requests++;
        const char *code = req->early_status == MHD_HTTP_UNAUTHORIZED ? "unauthorized"
                           : req->early_status == MHD_HTTP_NOT_FOUND ? "not-found"
                           : req->early_status == MHD_HTTP_CONTENT_TOO_LARGE ? "too-large"
                                                                              : "bad-request";
        return answer(conn, req->early_status, code, req->early_detail);
    }
    return finish_request(r, conn, req);
}

static void on_request_done(void *cls, struct MHD_Connection *conn, void **state,
                            enum MHD_RequestTerminationCode code)
{
    NDT_UNUSED(cls);
    NDT_UNUSED(conn);
    NDT_UNUSED(code);
    receive_request *req = *state;
    if (!req)
        return;
    ndt_buf_free(&req->body);
    free(req);
    *state = NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

int ingest_receiver_new(const ingest_receive_options *options, ingest_receiver **out, char *err,
                        size_t errlen)
{
    struct sockaddr_in sa;
    int rc = ndt_httpd_parse_listen(options->listen, &sa, err, errlen);
    if (rc != NDT_OK)
        return rc;
    ingest_receiver *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    r->options = *options;
    r->max_body = options->max_body_bytes ? options->max_body_bytes : RECEIVE_DEFAULT_MAX_BODY;
    r->max_decoded = r->max_body * RECEIVE_DECODED_FACTOR;
    pthread_mutex_init(&r->sink_lock, NULL);
    /* Decoded body, protobuf-c's messages and the series: a few times the
     * decoded size at most. */
    ndt_arena_init(&r->arena, RECEIVE_ARENA_BLOCK, 4 * r->max_decoded);

    int max_wait = options->backpressure_ms > 0 ? options->backpressure_ms
                                                : RECEIVE_DEFAULT_BACKPRESSURE_MS;
    rc = ingest_sink_new_for_role(&options->output, options->stop, max_wait, receive_kafka_defaults,
                                  &r->sink, err, errlen);
    if (rc != NDT_OK)
        goto fail;
    ingest_format format = INGEST_FORMAT_AVRO;
    ingest_format_parse(options->output.format ? options->output.format : "avro", &format);
    r->per_sample_format = format != INGEST_FORMAT_AVRO;
    r->no_content = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r->no_content) {
        snprintf(err, errlen, "out of memory");
        rc = NDT_ERROR;
        goto fail;
    }
    r->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
                                 on_request, r, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)RECEIVE_MAX_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_request_done, NULL, MHD_OPTION_END);
    if (!r->daemon) {
        snprintf(err, errlen, "cannot listen on %s: %s", options->listen, strerror(errno));
        rc = NDT_ERROR;
        goto fail;
    }
    *out = r;
    return NDT_OK;
fail:
    ingest_receiver_destroy(r);
    return rc;
}

int ingest_receiver_port(const ingest_receiver *r)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

int ingest_receiver_run(ingest_receiver *r)
{
    static const volatile int never = 0;
    const volatile int *stop = r->options.stop ? r->options.stop : &never;
    ndt_log(NDT_LOG_INFO, "ingest", "receiving remote write",
            NDT_KV_STR("listen", r->options.listen), NDT_KV_INT("port", ingest_receiver_port(r)),
            NDT_KV_STR("format", r->options.output.format ? r->options.output.format : "avro"));
    while (!*stop) {
        pthread_mutex_lock(&r->sink_lock);
        ingest_sink_poll(r->sink);
        pthread_mutex_unlock(&r->sink_lock);
        usleep(RECEIVE_POLL_INTERVAL_US);
    }
    /* Stop taking requests (senders retry elsewhere or later), then flush
     * what was accepted. */
    MHD_stop_daemon(r->daemon);
    r->daemon = NULL;
    int timeout = r->options.output.flush_timeout_ms ? r->options.output.flush_timeout_ms : 30000;
    if (ingest_sink_flush(r->sink, timeout) != NDT_OK)
        ndt_log(NDT_LOG_ERROR, "ingest", "Kafka did not take everything before the flush timeout",
                NDT_KV_INT("timeout_ms", timeout));
    ingest_sink_stats st;
    ingest_sink_get_stats(r->sink, &st);
    ndt_log(NDT_LOG_INFO, "ingest", "stopped", NDT_KV_UINT("requests", r->totals.requests),
            NDT_KV_UINT("samples", r->totals.samples), NDT_KV_UINT("bad_requests", r->totals.bad_requests),
            NDT_KV_UINT("backpressure_rejections", r->totals.backpressure_rejections),
            NDT_KV_UINT("delivered", st.delivered), NDT_KV_UINT("delivery_failed", st.delivery_failed));
    if (r->options.stats_path) {
        FILE *f = fopen(r->options.stats_path, "w");
        if (f) {
            fprintf(f,
                    "{\"requests\":%llu,\"samples\":%llu,\"bad_requests\":%llu,"
                    "\"backpressure_rejections\":%llu,\"histograms_skipped\":%llu,"
                    "\"messages\":%llu,\"delivered\":%llu,\"delivery_failed\":%llu}\n",
                    (unsigned long long)r->totals.requests, (unsigned long long)r->totals.samples,
                    (unsigned long long)r->totals.bad_requests,
                    (unsigned long long)r->totals.backpressure_rejections,
                    (unsigned long long)r->totals.histograms_skipped,
                    (unsigned long long)st.messages, (unsigned long long)st.delivered,
                    (unsigned long long)st.delivery_failed);
            fclose(f);
        }
    }
    return NDT_OK;
}

void ingest_receiver_get_totals(const ingest_receiver *r, ingest_receive_totals *out)
{
    *out = r->totals;
}

void ingest_receiver_destroy(ingest_receiver *r)
{
    if (!r)
        return;
    if (r->daemon)
        MHD_stop_daemon(r->daemon);
    if (r->sink)
        ingest_sink_destroy(r->sink);
    if (r->no_content)
        MHD_destroy_response(r->no_content);
    ndt_arena_free(&r->arena);
    pthread_mutex_destroy(&r->sink_lock);
    free(r);
}
