/*
 * sink.c: the Kafka output of the ingest stage, see sink.h.
 *
 * One librdkafka producer per sink.  The settings and why:
 *   enable.idempotence=true, acks=all
 *       exactly-once, in-order writes per partition across retries; the
 *       telemetry is a time series, duplicates and reordering would be
 *       visible downstream.
 *   message.timeout.ms=0 (forever)
 *       a broker outage delays delivery, it does not lose samples; the
 *       bounded queue below is what keeps memory in check meanwhile.
 *   linger.ms=5
 *       a scrape every 20 ms must be on the broker well within the next
 *       interval: 5 ms of batching gathers a whole scrape's messages (and
 *       those of other targets) into one request while leaving 15 ms for
 *       the round trip.  NOTES.md measured ~1.4 M msgs/s with it.
 *   compression.type=lz4
 *       cheapest CPU per byte saved; -X compression.type=zstd for a WAN.
 *   queue.buffering.max.messages=100000, queue.buffering.max.kbytes=65536
 *       at most 64 MiB or 100k messages wait in the producer (seconds of
 *       a large deployment's output, minutes of a small one); beyond that
 *       publish waits instead of growing without bound.
 *   message.max.bytes=1000000
 *       what a default Kafka broker accepts; an Avro scrape that would
 *       be larger is split into several records of the same scrape.
 *   reconnect.backoff.max.ms=1000
 *       librdkafka backs off up to 10 s between reconnects by default; a
 *       broker that is back should drain the queue within a second, not
 *       leave scrapes waiting on a full queue for ten.
 * Every one of them can be overridden with -X.  A stage may lay its own
 * defaults over these (role_defaults, still under -X): the remote-write
 * receiver is not on a 20 ms schedule and batches longer (receive.c).
 *
 * Back-pressure: when rd_kafka_produce() says the queue is full, publish
 * serves delivery reports with rd_kafka_poll(rk, 5 ms) and retries,
 * counting one queue_full_wait per message that had to wait.  A stop
 * request ends the wait: the rest of the batch is counted as dropped and
 * NDT_AGAIN returned.
 *
 * Avro messages (one per scrape, tens of kB) are not copied: the encode
 * buffer is lent to librdkafka and comes back through the delivery report
 * into a small pool (sink_produce_avro_buf).  json and influx messages
 * (one per sample, small) are copied (RD_KAFKA_MSG_F_COPY).
 *
 * Broker errors arrive through error_cb while polling.  An unreachable
 * broker makes librdkafka report the same error every retry, so the sink
 * logs an error code at most once per SINK_LOG_INTERVAL_MS and says how
 * many it suppressed in between.
 *
 * Not thread-safe: one thread publishes and polls (librdkafka's callbacks
 * run inside rd_kafka_poll/flush on that thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "ingest/sink.h"

#define SINK_QUEUE_FULL_POLL_MS 5
#define SINK_LOG_INTERVAL_MS 10000
#define SINK_DEFAULT_MAX_MESSAGE_BYTES 1000000
/* Room for the record overhead librdkafka counts against message.max.bytes. */
#define SINK_MESSAGE_OVERHEAD 512
/* An encoded message never exceeds this, whatever -X says. */
#define SINK_ENCODE_LIMIT (64u * 1024 * 1024)
/* Free Avro message buffers kept for reuse, at most this many bytes. */
#define SINK_POOL_MAX_BYTES (8u * 1024 * 1024)

/* An Avro message buffer lent to librdkafka (see sink_produce_avro_buf). */
typedef struct sink_msgbuf {
    char *data;
    size_t cap;
    struct sink_msgbuf *next_free; /* in the pool while not lent */
    struct sink_msgbuf *next_all;  /* every buffer, to free them all at the end */
} sink_msgbuf;

static const char *const sink_defaults[] = {
    "client.id", "ndtpipe-ingest",
    "enable.idempotence", "true",
    "acks", "all",
    "message.timeout.ms", "0",
    "linger.ms", "5",
    "compression.type", "lz4",
    "queue.buffering.max.messages", "100000",
    "queue.buffering.max.kbytes", "65536",
    "message.max.bytes", "1000000",
    "reconnect.backoff.max.ms", "1000",
    NULL,
};

struct ingest_sink {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    ingest_format format;
    int32_t schema_id;
    const volatile int *stop;
    int max_wait_ms;
    ingest_avro_encoder *avro;
    ndt_buf buf;
    ingest_label *full;    /* an inheriting series' full labels, for json/influx */
    size_t full_cap;
    sink_msgbuf *pool;     /* free message buffers */
    size_t pool_bytes;
    sink_msgbuf *all_msgbufs;
    size_t max_message_bytes;
    ingest_sink_stats stats;
    /* error_cb rate limit */
    int in_outage;                /* errors seen since the last delivery */
    int64_t last_error_log_ms;
    uint64_t errors_suppressed;
};

static const char *const format_names[] = { "avro", "json", "influx" };

int ingest_format_parse(const char *s, ingest_format *out)
{
    for (size_t i = 0; i < NDT_ARRAY_LEN(format_names); i++) {
        if (strcmp(s, format_names[i]) == 0) {
            *out = (ingest_format)i;
            return NDT_OK;
        }
    }
    return NDT_ERROR;
}

const char *ingest_format_name(ingest_format format)
{
    return (unsigned)format < NDT_ARRAY_LEN(format_names) ? format_names[format] : "unknown";
}

/* ---- Avro message buffers ------------------------------------------------ */

/* Back into the pool once librdkafka is done with it; beyond the pool's
 * bound only the memory goes (the descriptor stays on the all-list). */
static void sink_msgbuf_release(ingest_sink *sink, sink_msgbuf *mb)
{
    if (sink->pool_bytes + mb->cap > SINK_POOL_MAX_BYTES) {
        free(mb->data);
        mb->data = NULL;
        mb->cap = 0;
    }
    sink->pool_bytes += mb->cap;
    mb->next_free = sink->pool;
    sink->pool = mb;
}

/* A free buffer descriptor, from the pool or new; NULL when out of memory. */
static sink_msgbuf *sink_msgbuf_get(ingest_sink *sink)
{
    sink_msgbuf *mb = sink->pool;
    if (mb) {
        sink->pool = mb->next_free;
        sink->pool_bytes -= mb->cap;
        return mb;
    }
    mb = calloc(1, sizeof(*mb));
    if (mb) {
        mb->next_all = sink->all_msgbufs;
        sink->all_msgbufs = mb;
    }
    return mb;
}

static void sink_msgbufs_free(ingest_sink *sink)
{
    while (sink->all_msgbufs) {
        sink_msgbuf *mb = sink->all_msgbufs;
        sink->all_msgbufs = mb->next_all;
        free(mb->data);
        free(mb);
    }
    sink->pool = NULL;
    sink->pool_bytes = 0;
}

/* ---- librdkafka callbacks (run inside rd_kafka_poll on our thread) ---- */

static void sink_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    NDT_UNUSED(rk);
    ingest_sink *sink = opaque;
    if (msg->_private)
        sink_msgbuf_release(sink, msg->_private);
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        sink->stats.delivered++;
        if (sink->in_outage) {
            sink->in_outage = 0;
            ndt_log(NDT_LOG_INFO, "ingest", "kafka delivery resumed",
                    NDT_KV_UINT("errors_suppressed", sink->errors_suppressed));
            sink->errors_suppressed = 0;
            sink->last_error_log_ms = 0;
        }
        return;
    }
    sink->stats.delivery_failed++;
    /* Permanent failures are rare (message.timeout.ms=0) and each one is
     * data lost: rate-limit like broker errors, but never silently. */
    int64_t now = ndt_clock_mono_ms();
    if (now - sink->last_error_log_ms >= SINK_LOG_INTERVAL_MS) {
        sink->last_error_log_ms = now;
        ndt_log(NDT_LOG_ERROR, "ingest", "kafka delivery failed",
                NDT_KV_STR("topic", rd_kafka_topic_name(msg->rkt)),
                NDT_KV_STR("error", rd_kafka_err2str(msg->err)),
                NDT_KV_UINT("failed_total", sink->stats.delivery_failed));
    }
}

static void sink_on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    ingest_sink *sink = opaque;
    int64_t now = ndt_clock_mono_ms();
    int fatal = code == RD_KAFKA_RESP_ERR__FATAL;
    char fatal_reason[256];
    if (fatal) {
        code = rd_kafka_fatal_error(rk, fatal_reason, sizeof(fatal_reason));
        reason = fatal_reason;
    }
    sink->in_outage = 1;
    /* One line per interval whatever the code: a broker that is away
     * alternates _TRANSPORT and _ALL_BROKERS_DOWN on every retry. */
    if (!fatal && now - sink->last_error_log_ms < SINK_LOG_INTERVAL_MS) {
        sink->errors_suppressed++;
        return;
    }
    ndt_log(fatal ? NDT_LOG_ERROR : NDT_LOG_WARN, "ingest",
            fatal ? "kafka producer failed (fatal)" : "kafka broker error (retrying)",
            NDT_KV_STR("error", rd_kafka_err2name((rd_kafka_resp_err_t)code)),
            NDT_KV_STR("reason", reason), NDT_KV_UINT("suppressed", sink->errors_suppressed),
            NDT_KV_UINT("in_flight", sink->stats.messages - sink->stats.delivered -
                                         sink->stats.delivery_failed));
    sink->last_error_log_ms = now;
    sink->errors_suppressed = 0;
}

/* ---- creation --------------------------------------------------------- */

static size_t sink_conf_max_message_bytes(rd_kafka_conf_t *conf)
{
    char value[32];
    size_t size = sizeof(value);
    if (rd_kafka_conf_get(conf, "message.max.bytes", value, &size) != RD_KAFKA_CONF_OK)
        return SINK_DEFAULT_MAX_MESSAGE_BYTES;
    long n = strtol(value, NULL, 10);
    return n > SINK_MESSAGE_OVERHEAD * 2 ? (size_t)n : SINK_DEFAULT_MAX_MESSAGE_BYTES;
}

int ingest_sink_new(const ingest_sink_config *config, ingest_sink **out, char *err, size_t errlen)
{
    char why[512];
    *out = NULL;
    ingest_sink *sink = calloc(1, sizeof(*sink));
    if (!sink) {
        snprintf(err, errlen, "kafka sink: out of memory");
        return NDT_ERROR;
    }
    sink->format = config->format;
    sink->schema_id = config->schema_id;
    sink->stop = config->stop;
    sink->max_wait_ms = config->max_wait_ms;
    ndt_buf_init(&sink->buf, SINK_ENCODE_LIMIT);
    if (sink->format == INGEST_FORMAT_AVRO &&
        ingest_avro_encoder_new(&sink->avro, err, errlen) != NDT_OK)
        goto fail;

    const char *brokers = ndt_kafka_bootstrap(config->brokers, err, errlen);
    if (!brokers)
        goto fail;
    rd_kafka_conf_t *conf = ndt_kafka_conf_new_layered(brokers, sink_defaults, config->role_defaults,
                                                       config->xopts, err, errlen);
    if (!conf)
        goto fail;
    sink->max_message_bytes = sink_conf_max_message_bytes(conf) - SINK_MESSAGE_OVERHEAD;
    rd_kafka_conf_set_opaque(conf, sink);
    rd_kafka_conf_set_dr_msg_cb(conf, sink_on_delivery);
    rd_kafka_conf_set_error_cb(conf, sink_on_error);
    sink->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!sink->rk) {
        snprintf(err, errlen, "kafka producer: %s", why);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    const char *topic = config->topic ? config->topic : INGEST_DEFAULT_TOPIC;
    sink->rkt = rd_kafka_topic_new(sink->rk, topic, NULL);
    if (!sink->rkt) {
        snprintf(err, errlen, "kafka topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    ndt_log(NDT_LOG_INFO, "ingest", "kafka sink ready", NDT_KV_STR("topic", topic),
            NDT_KV_STR("format", ingest_format_name(sink->format)),
            NDT_KV_INT("schema_id", sink->schema_id));
    *out = sink;
    return NDT_OK;
fail:
    ingest_sink_destroy(sink);
    return NDT_ERROR;
}

int ingest_sink_new_for_output(const ingest_output *output, const volatile int *stop, int max_wait_ms,
                               ingest_sink **out, char *err, size_t errlen)
{
    return ingest_sink_new_for_role(output, stop, max_wait_ms, NULL, out, err, errlen);
}

int ingest_sink_new_for_role(const ingest_output *output, const volatile int *stop, int max_wait_ms,
                             const char *const *role_defaults, ingest_sink **out, char *err,
                             size_t errlen)
{
    ingest_sink_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.brokers = output->brokers;
    sc.xopts = output->xopts;
    sc.topic = output->topic ? output->topic : INGEST_DEFAULT_TOPIC;
    sc.schema_id = output->schema_id;
    sc.stop = stop;
    sc.max_wait_ms = max_wait_ms;
    sc.role_defaults = role_defaults;
    if (ingest_format_parse(output->format ? output->format : "avro", &sc.format) != NDT_OK) {
        snprintf(err, errlen, "--format: expected avro, json or influx, got '%s'", output->format);
        return NDT_EBADCONF;
    }
    return ingest_sink_new(&sc, out, err, errlen) == NDT_OK ? NDT_OK : NDT_ERROR;
}

/* ---- publishing --------------------------------------------------------- */

/* Hands one payload to librdkafka, waiting while its queue is full.
 * With msgflags 0 librdkafka keeps pointing at the payload until its
 * delivery report (which gets msg_opaque), with RD_KAFKA_MSG_F_COPY it
 * copies it.  NDT_OK accepted, NDT_AGAIN stopped while waiting, NDT_ERROR
 * refused. */
static int sink_produce(ingest_sink *sink, const ndt_str *key, const char *payload, size_t len,
                        int msgflags, void *msg_opaque)
{
    int waited = 0;
    int64_t give_up = 0;
    for (;;) {
        if (rd_kafka_produce(sink->rkt, RD_KAFKA_PARTITION_UA, msgflags, (void *)payload, len,
                             key->ptr, key->len, msg_opaque) == 0) {
            sink->stats.messages++;
            sink->stats.bytes += len;
            return NDT_OK;
        }
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            sink->stats.produce_errors++;
            sink_on_error(sink->rk, e, "produce refused the message", sink);
            return NDT_ERROR;
        }
        if (!waited) {
            sink->stats.queue_full_waits++;
            waited = 1;
            if (sink->max_wait_ms > 0)
                give_up = ndt_clock_mono_ns() + (int64_t)sink->max_wait_ms * 1000000;
        }
        if (sink->stop && *sink->stop)
            return NDT_AGAIN;
        if (give_up && ndt_clock_mono_ns() >= give_up)
            return NDT_AGAIN;
        rd_kafka_poll(sink->rk, SINK_QUEUE_FULL_POLL_MS);
    }
}

/* Samples left unpublished by an NDT_AGAIN: lost if we are stopping,
 * deferred (the sender will resend them) if the wait bound ran out. */
static void sink_count_unpublished(ingest_sink *sink, uint64_t n)
{
    if (sink->stop && *sink->stop)
        sink->stats.dropped += n;
    else
        sink->stats.deferred += n;
}

/* One message per sample (json, influx). */
/* The series with all its labels: an inheriting series gets the batch's
 * common labels merged in, in the sink's scratch array (json and influx
 * write every label with every sample).  NULL when out of memory. */
static const ingest_series *full_series(ingest_sink *sink, const ingest_batch *batch,
                                        const ingest_series *s, ingest_series *tmp)
{
    if (!s->inherits)
        return s;
    size_t need = s->nlabels + batch->ncommon;
    if (need > sink->full_cap) {
        ingest_label *grown = realloc(sink->full, need * sizeof(*grown));
        if (!grown)
            return NULL;
        sink->full = grown;
        sink->full_cap = need;
    }
    *tmp = *s;
    tmp->labels = sink->full;
    tmp->nlabels = ingest_series_full_labels(s, batch->common, batch->ncommon, sink->full);
    tmp->inherits = 0;
    return tmp;
}

static int sink_publish_per_sample(ingest_sink *sink, const ingest_batch *batch)
{
    int rc = NDT_OK;
    for (size_t i = 0; i < batch->nseries; i++) {
        ingest_series tmp;
        const ingest_series *s = full_series(sink, batch, &batch->series[i], &tmp);
        if (!s) {
            sink->stats.dropped++;
            rc = NDT_ERROR;
            continue;
        }
        ndt_buf_reset(&sink->buf);
        int enc = sink->format == INGEST_FORMAT_JSON ? ingest_encode_json(s, &sink->buf)
                                                     : ingest_encode_influx(s, &sink->buf);
        if (enc == NDT_AGAIN) {
            sink->stats.unrepresentable++;
            continue;
        }
        if (enc != NDT_OK) {
            sink->stats.dropped++;
            rc = NDT_ERROR;
            continue;
        }
        int p = sink_produce(sink, &batch->instance, sink->buf.data, sink->buf.len,
                             RD_KAFKA_MSG_F_COPY, NULL);
        if (p == NDT_AGAIN) {
            sink_count_unpublished(sink, batch->nseries - i);
            return NDT_AGAIN;
        }
        if (p != NDT_OK) {
            sink->stats.dropped++;
            rc = NDT_ERROR;
        }
    }
    return rc;
}

/* Produces the encoded Avro message in sink->buf without copying it: the
 * buffer is lent to librdkafka (no F_COPY) and comes back to the pool in
 * its delivery report; the next scrape encodes into a pooled buffer.  A
 * scrape's message is tens of kB: the copy librdkafka would otherwise make
 * was ~2 % of the scraper's CPU, and a fresh malloc per message instead
 * (F_FREE) cost more in page faults (glibc trims the freed heap top and
 * the next message touches new pages).  Memory stays bounded by the
 * producer queue's limits, which count these payloads, plus the pool's. */
static int sink_produce_avro_buf(ingest_sink *sink, const ndt_str *key)
{
    sink_msgbuf *mb = sink_msgbuf_get(sink);
    if (!mb) /* out of memory for a descriptor: copy as before */
        return sink_produce(sink, key, sink->buf.data, sink->buf.len, RD_KAFKA_MSG_F_COPY, NULL);
    /* The descriptor carries the encoded buffer away; the pooled memory it
     * held (if any) becomes the encode buffer of the next scrape. */
    char *spare = mb->data;
    size_t spare_cap = mb->cap;
    mb->data = sink->buf.data;
    mb->cap = sink->buf.cap;
    int p = sink_produce(sink, key, mb->data, sink->buf.len, 0, mb);
    if (p != NDT_OK) {
        mb->data = spare;
        mb->cap = spare_cap;
        sink_msgbuf_release(sink, mb);
        return p;
    }
    sink->buf.data = spare;
    sink->buf.cap = spare_cap;
    sink->buf.len = 0;
    return NDT_OK;
}

/* Avro: the whole batch as one record, halved until each part fits in a
 * message (a scrape of many thousands of series can pass 1 MB). */
static int sink_publish_avro(ingest_sink *sink, const ingest_batch *batch)
{
    ndt_buf_reset(&sink->buf);
    int enc = ingest_encode_avro(sink->avro, batch, sink->schema_id, &sink->buf);
    if (enc == NDT_OK && sink->buf.len + batch->instance.len <= sink->max_message_bytes) {
        int p = sink_produce_avro_buf(sink, &batch->instance);
        if (p == NDT_AGAIN)
            sink_count_unpublished(sink, batch->nseries);
        else if (p != NDT_OK)
            sink->stats.dropped += batch->nseries;
        return p;
    }
    if (batch->nseries <= 1) {
        sink->stats.dropped += batch->nseries;
        sink_on_error(sink->rk, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
                      "one sample does not fit in message.max.bytes", sink);
        return NDT_ERROR;
    }
    ingest_batch half = *batch;
    half.nseries = batch->nseries / 2;
    int rc = sink_publish_avro(sink, &half);
    if (rc == NDT_AGAIN) {
        sink_count_unpublished(sink, batch->nseries - half.nseries);
        return NDT_AGAIN;
    }
    half.series = batch->series + half.nseries;
    half.nseries = batch->nseries - half.nseries;
    int rc2 = sink_publish_avro(sink, &half);
    return rc2 != NDT_OK ? rc2 : rc;
}

int ingest_sink_publish(ingest_sink *sink, const ingest_batch *batch)
{
    sink->stats.batches++;
    sink->stats.samples += batch->nseries;
    int rc = sink->format == INGEST_FORMAT_AVRO ? sink_publish_avro(sink, batch)
                                                : sink_publish_per_sample(sink, batch);
    /* Serve delivery reports and errors without blocking the scrape. */
    rd_kafka_poll(sink->rk, 0);
    return rc;
}

void ingest_sink_poll(ingest_sink *sink) { rd_kafka_poll(sink->rk, 0); }

int ingest_sink_flush(ingest_sink *sink, int timeout_ms)
{
    uint64_t failed_before = sink->stats.delivery_failed;
    rd_kafka_flush(sink->rk, timeout_ms);
    if (sink->stats.messages > sink->stats.delivered + sink->stats.delivery_failed)
        return NDT_AGAIN;
    return sink->stats.delivery_failed == failed_before ? NDT_OK : NDT_ERROR;
}

void ingest_sink_get_stats(const ingest_sink *sink, ingest_sink_stats *out)
{
    *out = sink->stats;
    out->in_flight = sink->stats.messages - sink->stats.delivered - sink->stats.delivery_failed;
}

void ingest_sink_destroy(ingest_sink *sink)
{
    if (!sink)
        return;
    if (sink->rkt)
        rd_kafka_topic_destroy(sink->rkt);
    if (sink->rk) {
        /* Whatever the caller did not flush is given up now, and counted:
         * purge reports each message as failed through sink_on_delivery. */
        rd_kafka_purge(sink->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(sink->rk, 0);
        if (sink->stats.messages > sink->stats.delivered)
            ndt_log(NDT_LOG_WARN, "ingest", "kafka sink closed with undelivered messages",
                    NDT_KV_UINT("undelivered", sink->stats.messages - sink->stats.delivered));
        rd_kafka_destroy(sink->rk);
    }
    /* After rd_kafka_destroy nothing points at a lent buffer any more. */
    sink_msgbufs_free(sink);
    ingest_avro_encoder_free(sink->avro);
    ndt_buf_free(&sink->buf);
    free(sink->full);
    free(sink);
}
