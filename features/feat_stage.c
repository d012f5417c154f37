/*
 * feat_stage.c: the streaming feature stage, ndt.sdm.entities ->
 * ndt.features, around feat_stream.c.
 *
 * Delivery: at least once.  Each input message's newest observation is
 * remembered per partition in consumption order; once every window that
 * data fed has been published and acknowledged by Kafka (feat_stream's
 * open_from has moved past it and the producer has been flushed), the
 * offsets are committed.  A restart re-reads what was not committed, so a
 * window may be published twice, never lost.  Windows are keyed by the
 * service id, so a consumer of ndt.features reads a service in order.
 *
 * One process per consumer group: a service's pods are spread over the
 * partitions by entity id, and a row needs all of them in one place.
 * Memory is bounded by feat_stream's limits and by the commit queue,
 * which holds one entry per message not yet committed (capped: past the
 * cap the oldest entries are committed early and counted).
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/httpd.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "features/features.h"

#define STAGE "features"
#define STAGE_POLL_MS 50
#define STAGE_COMMIT_EVERY_MS 1000
#define STAGE_PENDING_MAX 1000000

typedef struct pending {
    int32_t partition;
    int64_t offset;
    int64_t max_ms;
} pending;

typedef struct stage {
    const feat_stage_options *o;
    rd_kafka_t *consumer, *producer;
    rd_kafka_topic_t *out;
    feat_stream *stream;
    pending *q;               /* ring of messages not yet committed */
    size_t head, n, cap;
    ndt_buf json;
    uint64_t published, delivery_failures, bad_fragments, commits, early_commits;
    ndt_buf metrics;          /* snapshot for the HTTP thread */
    pthread_mutex_t metrics_lock;
} stage;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    stage *st = opaque;
    if (m->err) {
        st->delivery_failures++;
        ndt_log(NDT_LOG_ERROR, STAGE, "window not delivered",
                NDT_KV_STR("error", rd_kafka_err2str(m->err)));
    }
}

static void json_time(ndt_buf *b, int64_t ms)
{
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    char buf[40];
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, sizeof(buf), "\"%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ\"", (int)(((ms % 1000) + 1000) % 1000));
    ndt_buf_append_str(b, buf);
}

/* The window as docs/FEATURES.md shows it. */
static int window_json(ndt_buf *b, const feat_window *w)
{
    ndt_buf_reset(b);
    ndt_buf_append_str(b, "{\"service\":\"");
    ndt_buf_append_str(b, w->service); /* entity ids are URNs: no escaping needed */
    ndt_buf_append_str(b, "\",\"window\":{\"start\":");
    json_time(b, w->start_ms);
    ndt_buf_append_str(b, ",\"end\":");
    json_time(b, w->end_ms);
    ndt_buf_append_str(b, ",\"first\":");
    json_time(b, w->first_ms);
    ndt_buf_append_str(b, ",\"last\":");
    json_time(b, w->last_ms);
    ndt_buf_printf(b, "},\"regime\":{\"users\":%d,\"pods\":%d},\"rows\":%zu,\"features\":{",
                   w->users, w->pods, w->rows);
    for (int k = 0; k < FEAT_DIM; k++) {
        ndt_buf_printf(b, "%s\"%s\":", k ? "," : "", feat_names[k]);
        ndt_buf_append_double(b, w->features[k]);
    }
    ndt_buf_append_str(b, "},\"log_latency\":");
    ndt_buf_append_double(b, w->log_latency);
    ndt_buf_append_str(b, ",\"latency_ms\":");
    ndt_buf_append_double(b, w->latency_ms);
    ndt_buf_append_str(b, ",\"spec\":\"");
    ndt_buf_append_str(b, feat_spec);
    return ndt_buf_append_str(b, "\"}");
}

static int on_window(void *ctx, const feat_window *w)
{
    stage *st = ctx;
    if (window_json(&st->json, w) != NDT_OK)
        return NDT_ERROR;
    for (;;) {
        if (rd_kafka_produce(st->out, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, st->json.data,
                             st->json.len, w->service, strlen(w->service), NULL) == 0)
            break;
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            ndt_log(NDT_LOG_ERROR, STAGE, "cannot publish a window",
                    NDT_KV_STR("error", rd_kafka_err2str(rd_kafka_last_error())));
            return NDT_ERROR;
        }
        rd_kafka_poll(st->producer, 10); /* back-pressure: wait for room */
    }
    st->published++;
    return NDT_OK;
}

/* ---- commits ------------------------------------------------------------- */

static int queue_push(stage *st, int32_t partition, int64_t offset, int64_t max_ms)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 1024;
        if (cap > STAGE_PENDING_MAX)
            return NDT_AGAIN;
        pending *q = malloc(cap * sizeof(*q));
        if (!q)
            return NDT_ERROR;
        for (size_t i = 0; i < st->n; i++)
            q[i] = st->q[(st->head + i) % st->cap];
        free(st->q);
        st->q = q;
        st->head = 0;
        st->cap = cap;
    }
    st->q[(st->head + st->n) % st->cap] = (pending){ partition, offset, max_ms };
    st->n++;
    return NDT_OK;
}

/* Commits every message at the head whose data no open window holds
 * (or every one, with all); windows are flushed to Kafka first. */
static void commit_done(stage *st, int all)
{
    int64_t open_from = feat_stream_open_from(st->stream);
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(8);
    size_t done = 0;
    while (done < st->n) {
        const pending *p = &st->q[(st->head + done) % st->cap];
        if (!all && p->max_ms >= open_from)
            break;
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
            offsets, st->o->in_topic ? st->o->in_topic : FEAT_DEFAULT_IN_TOPIC, p->partition);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(
                offsets, st->o->in_topic ? st->o->in_topic : FEAT_DEFAULT_IN_TOPIC,
                p->partition);
        tp->offset = p->offset + 1;
        done++;
    }
    if (done && rd_kafka_flush(st->producer, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_commit(st->consumer, offsets, 0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        st->head = (st->head + done) % st->cap;
        st->n -= done;
        st->commits++;
    }
    rd_kafka_topic_partition_list_destroy(offsets);
}

/* ---- own metrics ------------------------------------------------------------ */

static void render_metrics(stage *st)
{
    feat_stream_stats s;
    feat_stream_get_stats(st->stream, &s);
    ndt_buf b;
    ndt_buf_init(&b, 0);
    ndt_metrics_value(&b, "ndtpipe_features_fragments_total", "counter", "Entity fragments read.",
            s.fragments);
    ndt_metrics_value(&b, "ndtpipe_features_bad_fragments_total", "counter",
            "Messages on the input topic that are not NGSI-LD entities (skipped).",
            st->bad_fragments);
    ndt_metrics_value(&b, "ndtpipe_features_rows_total", "counter", "Raw rows rebuilt per service.",
            s.rows);
    ndt_metrics_value(&b, "ndtpipe_features_incomplete_rows_total", "counter",
            "Service instants without a full row (a column or the users value missing).",
            s.incomplete);
    ndt_metrics_value(&b, "ndtpipe_features_late_observations_total", "counter",
            "Observations that arrived after their instant was closed (dropped).", s.late);
    ndt_metrics_value(&b, "ndtpipe_features_forced_closes_total", "counter",
            "Instants closed early because too many were open.", s.forced_closes);
    ndt_metrics_value(&b, "ndtpipe_features_windows_published_total", "counter",
            "Windows published on the output topic.", st->published);
    ndt_metrics_value(&b, "ndtpipe_features_delivery_failures_total", "counter",
            "Windows Kafka did not acknowledge.", st->delivery_failures);
    ndt_metrics_value(&b, "ndtpipe_features_commits_total", "counter", "Input offset commits.",
            st->commits);
    ndt_metrics_value(&b, "ndtpipe_features_open_instants", "gauge", "Instants waiting for late data.",
            s.open_instants);
    pthread_mutex_lock(&st->metrics_lock);
    ndt_buf tmp = st->metrics;
    st->metrics = b;
    pthread_mutex_unlock(&st->metrics_lock);
    ndt_buf_free(&tmp);
}

static int serve_metrics(void *ctx, ndt_buf *out)
{
    stage *st = ctx;
    pthread_mutex_lock(&st->metrics_lock);
    int rc = ndt_buf_append(out, st->metrics.data ? st->metrics.data : "", st->metrics.len);
    pthread_mutex_unlock(&st->metrics_lock);
    return rc;
}

/* ---- the loop ---------------------------------------------------------------- */

/* An assigned partition holds the watermark back until it has caught up
 * (EOF): otherwise the first partition read would close instants the
 * others still have data for.  A revoked one no longer counts. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    stage *st = opaque;
    int assigned = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    for (int i = 0; i < parts->cnt; i++)
        feat_stream_source_idle(st->stream, (int)parts->elems[i].partition, !assigned);
    if (assigned)
        rd_kafka_assign(rk, parts);
    else
        rd_kafka_assign(rk, NULL);
}

static int open_clients(stage *st, char *err, size_t errlen)
{
    const feat_stage_options *o = st->o;
    const char *consumer_defaults[] = {
        "group.id", o->group ? o->group : FEAT_DEFAULT_GROUP,
        "client.id", "ndtpipe-features",
        "enable.auto.commit", "false",
        "auto.offset.reset", "earliest",
        "fetch.wait.max.ms", "10",
        "enable.partition.eof", "true",
        NULL,
    };
    const char *producer_defaults[] = {
        "client.id", "ndtpipe-features",
        "enable.idempotence", "true",
        "acks", "all",
        "linger.ms", "5",
        "message.timeout.ms", "0",
        NULL,
    };
    char why[512];
    rd_kafka_conf_t *cc = ndt_kafka_conf_new(o->brokers, consumer_defaults, o->xopts, err, errlen);
    if (!cc)
        return NDT_EBADCONF;
    rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
    rd_kafka_conf_set_opaque(cc, st);
    if (!(st->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, why, sizeof(why)))) {
        rd_kafka_conf_destroy(cc);
        snprintf(err, errlen, "kafka consumer: %s", why);
        return NDT_ERROR;
    }
    rd_kafka_poll_set_consumer(st->consumer);
    rd_kafka_conf_t *pc = ndt_kafka_conf_new(o->brokers, producer_defaults, o->xopts, err, errlen);
    if (!pc)
        return NDT_EBADCONF;
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_conf_set_opaque(pc, st);
    if (!(st->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof(why)))) {
        rd_kafka_conf_destroy(pc);
        snprintf(err, errlen, "kafka producer: %s", why);
        return NDT_ERROR;
    }
    st->out = rd_kafka_topic_new(st->producer, o->out_topic ? o->out_topic : FEAT_DEFAULT_OUT_TOPIC,
                                 NULL);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, o->in_topic ? o->in_topic : FEAT_DEFAULT_IN_TOPIC,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(st->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        snprintf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(e));
        return NDT_ERROR;
    }
    return st->out ? NDT_OK : NDT_ERROR;
}

static void consume_one(stage *st, rd_kafka_message_t *m)
{
    char err[256];
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* Caught up on this partition: it no longer holds the watermark. */
        feat_stream_source_idle(st->stream, (int)m->partition, 1);
        return;
    }
    if (m->err) {
        ndt_log(NDT_LOG_WARN, STAGE, "consumer error",
                NDT_KV_STR("error", rd_kafka_message_errstr(m)));
        return;
    }
    int rc = feat_stream_add(st->stream, (int)m->partition, m->payload, m->len, err, sizeof(err));
    if (rc != NDT_OK) {
        st->bad_fragments++;
        ndt_log(NDT_LOG_DEBUG, STAGE, "skipped a message", NDT_KV_STR("error", err),
                NDT_KV_INT("partition", m->partition), NDT_KV_INT("offset", m->offset));
    }
    int64_t ts = rc == NDT_OK ? feat_stream_fragment_ms(st->stream) : INT64_MIN;
    if (queue_push(st, m->partition, m->offset, ts) == NDT_AGAIN) {
        /* The commit queue is full: commit what it holds (at-least-once
         * becomes at-most-once for the open windows, counted). */
        st->early_commits++;
        commit_done(st, 1);
        queue_push(st, m->partition, m->offset, ts);
    }
}

int feat_stage_run(const feat_stage_options *o, char *err, size_t errlen)
{
    static const volatile int never = 0;
    const volatile int *stop = o->stop ? o->stop : &never;
    stage st = { .o = o };
    ndt_buf_init(&st.json, 0);
    ndt_buf_init(&st.metrics, 0);
    pthread_mutex_init(&st.metrics_lock, NULL);
    ndt_httpd *httpd = NULL;
    feat_stream_options so = { o->window_ms, o->lateness_ms, 0, on_window, NULL, &st };
    int rc = feat_stream_new(&so, &st.stream);
    if (rc == NDT_OK)
        rc = open_clients(&st, err, errlen);
    if (rc == NDT_OK) {
        render_metrics(&st);
        rc = ndt_metrics_register(serve_metrics, &st);
    }
    if (rc == NDT_OK && o->metrics_listen)
        rc = ndt_httpd_start(o->metrics_listen, NULL, NULL, &httpd, err, errlen);
    if (rc == NDT_OK)
        ndt_log(NDT_LOG_INFO, STAGE, "streaming features",
                NDT_KV_STR("in", o->in_topic ? o->in_topic : FEAT_DEFAULT_IN_TOPIC),
                NDT_KV_STR("out", o->out_topic ? o->out_topic : FEAT_DEFAULT_OUT_TOPIC),
                NDT_KV_INT("window_ms", o->window_ms), NDT_KV_INT("lateness_ms", o->lateness_ms));
    int64_t next_commit = 0;
    while (rc == NDT_OK && !*stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(st.consumer, STAGE_POLL_MS);
        if (m) {
            consume_one(&st, m);
            rd_kafka_message_destroy(m);
        }
        rc = feat_stream_advance(st.stream);
        rd_kafka_poll(st.producer, 0);
        int64_t now = ndt_clock_mono_ns() / 1000000;
        if (now >= next_commit) {
            commit_done(&st, 0);
            render_metrics(&st);
            next_commit = now + STAGE_COMMIT_EVERY_MS;
        }
    }
    if (rc == NDT_OK && st.stream) {
        /* A stop closes what is open: every consumed fragment has fed a
         * published window, so everything is committed. */
        rc = feat_stream_finish(st.stream);
        if (rc == NDT_OK)
            commit_done(&st, 1);
        ndt_log(NDT_LOG_INFO, STAGE, "stopped", NDT_KV_UINT("windows", st.published),
                NDT_KV_UINT("commits", st.commits));
    }
    ndt_httpd_stop(httpd);
    ndt_metrics_unregister(&st);
    if (st.consumer) {
        rd_kafka_consumer_close(st.consumer);
        rd_kafka_destroy(st.consumer);
    }
    if (st.out)
        rd_kafka_topic_destroy(st.out);
    if (st.producer) {
        rd_kafka_flush(st.producer, 10000);
        rd_kafka_destroy(st.producer);
    }
    feat_stream_free(st.stream);
    free(st.q);
    ndt_buf_free(&st.json);
    ndt_buf_free(&st.metrics);
    pthread_mutex_destroy(&st.metrics_lock);
    return rc;
}
