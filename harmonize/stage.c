/*
 * stage.c: the harmonize stage's lifecycle and loop, see harmonize.h.
 *
 * One loop on one thread, in batches:
 *   1. poll the consumer until batch_messages arrived or batch_wait passed
 *      since the first one; each message is decoded (decode.h, format
 *      detected per message unless forced) straight into the engine; a
 *      message that does not decode is produced to the dead-letter topic
 *      as it came, with headers ndt.error (the reason), ndt.source.topic,
 *      ndt.source.partition and ndt.source.offset;
 *   2. hdl_engine_finish(): points go to udr_write_points(), relationship
 *      changes to udr_write_relation(), fragments to ndt.sdm.entities;
 *   3. udr_flush_start() hands the batch to the UDR and the loop goes on
 *      consuming and encoding the next batch while InfluxDB stores it
 *      (its sender thread; SQLite flushes at once); once udr_flush_done()
 *      says the ticket is durable, and the producer has delivered the
 *      batch's fragments and dead letters, its offsets are committed
 *      (asynchronously: Kafka's answer is counted when consumer_poll
 *      serves it; a stop or a long-pending commit waits for it).  A
 *      failed flush falls back to udr_flush() until it returns NDT_OK
 *      (retried with backoff: a UDR that refuses makes the stage wait,
 *      never skip).
 * A crash anywhere before the commit leaves the offsets where they were,
 * so the batch is consumed again (at least once); the UDR's idempotence by
 * series and timestamp turns the replay into rewrites.  One flush is in
 * flight at a time (the UDR's hand-over waits for the previous one), so
 * at most two batches are between the consumer and a commit.  Offsets are committed
 * explicitly per partition (enable.auto.commit=false,
 * enable.auto.offset.store=false): what is committed is exactly what was
 * flushed.
 *
 * Why batches: udr_flush() is a transaction (SQLite) or an HTTP request
 * (InfluxDB); one per message would cap the stage at a few hundred
 * messages a second under load.  A batch is what the consumer already
 * holds (up to batch_messages), so batches grow with the load by
 * themselves and an idle stage adds no wait; batch_wait (default 0) can
 * trade latency for fewer flushes.
 *
 * Bounded: a batch holds at most batch_messages messages; the producer
 * queue is librdkafka's (bounded, back-pressure by polling); the engine
 * bounds entities and series and counts what it drops.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/metrics.h"
#include "harmonize/decode.h"
#include "harmonize/engine.h"
#include "harmonize/harmonize.h"
#include "harmonize/rules.h"
#include "udr/udr.h"

#define STAGE "harmonize"
#define STAGE_POLL_IDLE_MS 100
#define STAGE_POLL_INFLIGHT_MS 1
#define STAGE_IDLE_FINISH_MS 100
#define STAGE_LOG_INTERVAL_MS 10000
#define STAGE_FLUSH_BACKOFF_MAX_MS 5000
#define STAGE_PRODUCER_FLUSH_MS 30000
#define STAGE_COMMIT_MAX_WAIT_MS 1000
#define STAGE_REASON_MAX 400
#define STAGE_MAX_INSTANTS 64

/* Freshness buckets (seconds): a 20 ms scrape wants resolution below it. */
static const double freshness_buckets[] = { 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05,
                                            0.075, 0.1, 0.2, 0.5, 1, 2, 5, 10 };
#define STAGE_NBUCKETS (sizeof(freshness_buckets) / sizeof(freshness_buckets[0]))

const ndt_conf_entry hdl_option_map[] = {
    { "in_topic", NDT_CONF_STRING, HDL_DEFAULT_IN_TOPIC, offsetof(hdl_options, in_topic),
      "topic to consume (--in)" },
    { "out_topic", NDT_CONF_STRING, HDL_DEFAULT_OUT_TOPIC, offsetof(hdl_options, out_topic),
      "topic of the NGSI-LD entity fragments (--out)" },
    { "dlq_topic", NDT_CONF_STRING, HDL_DEFAULT_DLQ_TOPIC, offsetof(hdl_options, dlq_topic),
      "dead-letter topic for messages that cannot be used (--dlq)" },
    { "group", NDT_CONF_STRING, HDL_DEFAULT_GROUP, offsetof(hdl_options, group),
      "Kafka consumer group id (--group)" },
    { "udr", NDT_CONF_STRING, HDL_DEFAULT_UDR, offsetof(hdl_options, udr),
      "UDR URL: sqlite:PATH, influx:http://HOST:PORT/DB, influx2:http://HOST:PORT/ORG/BUCKET" },
    { "mapping", NDT_CONF_STRING, HDL_DEFAULT_MAPPING, offsetof(hdl_options, mapping),
      "mapping rule file (--mapping)" },
    { "format", NDT_CONF_STRING, "auto", offsetof(hdl_options, format),
      "input format: auto (detected per message), json, avro or influx" },
    { "web_listen_address", NDT_CONF_STRING, "", offsetof(hdl_options, listen),
      "HOST:PORT serving /metrics and /healthz (--web.listen-address); empty = none" },
    { "spool_dir", NDT_CONF_STRING, "", offsetof(hdl_options, spool_dir),
      "InfluxDB UDR: where batches wait while it is unreachable; empty = data/udr-spool" },
    { "content_encoding", NDT_CONF_STRING, "gzip", offsetof(hdl_options, content_encoding),
      "InfluxDB UDR: request bodies gzip (less bandwidth on a network) or identity (no compression work on either side, faster on loopback)" },
    { "batch_messages", NDT_CONF_UINT, "10000", offsetof(hdl_options, batch_messages),
      "messages per batch (one UDR flush and one offset commit per batch)" },
    { "batch_wait", NDT_CONF_DURATION, "0s", offsetof(hdl_options, batch_wait_ns),
      "how long a batch may wait for more messages than are already there (latency for fewer flushes)" },
    { "scrape_interval", NDT_CONF_DURATION, "20ms", offsetof(hdl_options, scrape_interval_ns),
      "interval assumed for an entity until its own is observed" },
    { "fidelity_threshold", NDT_CONF_DURATION, "0s", offsetof(hdl_options, fidelity_ns),
      "twin state: synchronized while updated this often; 0s = two observed intervals" },
    { "max_lag", NDT_CONF_DURATION, "1s", offsetof(hdl_options, max_lag_ns),
      "staleness clock: the newest sample time, but at most this far behind real time" },
    { "max_entities", NDT_CONF_UINT, "100000", offsetof(hdl_options, max_entities),
      "entities kept at most (samples for more are dropped and counted)" },
    { "max_series", NDT_CONF_UINT, "1048576", offsetof(hdl_options, max_series),
      "counter series with rate state at most (more are dropped and counted)" },
    { NULL },
};

typedef struct stage_stats {
    uint64_t messages[4];         /* by hdl_format */
    uint64_t dead_letters;
    uint64_t batches;
    uint64_t commits;
    uint64_t commit_failures;
    uint64_t udr_flush_failures;
    uint64_t fragments_produced;
    uint64_t produce_failed;
    uint64_t consumer_errors;
    /* scrape instant -> durable in the UDR, one observation per instant */
    uint64_t freshness_buckets[STAGE_NBUCKETS];
    uint64_t freshness_count;
    double freshness_sum;
} stage_stats;

struct hdl_stage {
    hdl_options o;
    hdl_format format;
    hdl_rules rules;
    hdl_engine *engine;
    udr *u;
    rd_kafka_t *consumer;
    rd_kafka_queue_t *commit_q;   /* the consumer's: answers to async commits */
    rd_kafka_t *producer;
    rd_kafka_topic_t *out_topic;
    rd_kafka_topic_t *dlq_topic;
    rd_kafka_topic_partition_list_t *offsets; /* of the batch being built */
    rd_kafka_topic_partition_list_t *pending; /* durable in the UDR, waiting for Kafka */
    /* the batch whose UDR flush is in flight */
    int inflight;
    uint64_t inflight_ticket;
    rd_kafka_topic_partition_list_t *inflight_offsets;
    int64_t inflight_instants[STAGE_MAX_INSTANTS];
    size_t ninflight_instants;
    int64_t pending_since_ms;
    ndt_httpd *httpd;
    hdl_emit emit;
    stage_stats stats;
    int64_t stream_ms;            /* newest sample time seen */
    int64_t last_finish_ms;
    int64_t last_log_ms;
    int emit_failed;
    int registered;               /* in the process's metrics registry */
    int64_t instants[STAGE_MAX_INSTANTS]; /* sample times written this batch */
    size_t ninstants;
    /* /metrics: rendered on the loop thread, copied out under the lock */
    pthread_mutex_t lock;
    ndt_buf published;
    ndt_buf scratch;
};

static const volatile int never_stop = 0;

/* ---- options ----------------------------------------------------------- */

int hdl_options_init(hdl_options *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    return ndt_confmap_set_defaults(hdl_option_map, o, err, errlen);
}

void hdl_options_free(hdl_options *o)
{
    ndt_confmap_free(hdl_option_map, o);
    free(o->brokers);
    o->brokers = NULL;
    ndt_kafka_opts_free(&o->xopts);
}

int hdl_options_load_yaml(hdl_options *o, const char *path, char *err, size_t errlen)
{
    ndt_yaml y;
    memset(&y, 0, sizeof(y));
    if (ndt_yaml_load_file(&y, path, err, errlen) != NDT_OK)
        return NDT_EBADCONF;
    int rc = NDT_OK;
    yaml_node_t *root = ndt_yaml_root(&y);
    yaml_node_t *section = root && root->type == YAML_MAPPING_NODE
                               ? ndt_yaml_map_get(&y, root, "harmonize") : NULL;
    if (section && !ndt_yaml_is_null(section) &&
        ndt_confmap_apply_yaml(hdl_option_map, o, &y, section, NULL, err, errlen) != NDT_OK)
        rc = NDT_EBADCONF;
    ndt_yaml_free(&y);
    return rc;
}

/* ---- time -------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    return ndt_clock_mono_ns() / 1000000;
}

/* The clock staleness is judged by: the stream's own time while messages
 * flow, so catching up on a backlog does not make the whole twin stale;
 * once the input is idle, never more than max_lag behind real time, so a
 * silent source still ages its entities. */
static int64_t staleness_clock(const hdl_stage *st, int idle)
{
    int64_t floor = wall_ms() - st->o.max_lag_ns / 1000000;
    return !idle || st->stream_ms > floor ? st->stream_ms : floor;
}

/* ---- emit: the engine's outputs ---------------------------------------- */

/* Remembers the sample instants a batch wrote (twin-state-only points are
 * the stage's own clock, not a scrape), for the freshness histogram. */
static void note_instants(hdl_stage *st, const udr_point *points, size_t n)
{
    for (size_t i = 0; i < n && st->ninstants < STAGE_MAX_INSTANTS; i++) {
        if (points[i].nfields == 1 && strcmp(points[i].fields[0].name, "twinState") == 0)
            continue;
        size_t k;
        for (k = 0; k < st->ninstants && st->instants[k] != points[i].ts_ms; k++)
            ;
        if (k == st->ninstants)
            st->instants[st->ninstants++] = points[i].ts_ms;
    }
}

/* The instants of a batch that has just become durable. */
static void observe_freshness(hdl_stage *st, const int64_t *instants, size_t n)
{
    int64_t now = wall_ms();
    for (size_t i = 0; i < n; i++) {
        double s = (double)(now - instants[i]) / 1000.0;
        st->stats.freshness_count++;
        st->stats.freshness_sum += s;
        for (size_t b = 0; b < STAGE_NBUCKETS; b++)
            if (s <= freshness_buckets[b])
                st->stats.freshness_buckets[b]++;
    }
}

static int emit_points(void *ctx, const udr_point *points, size_t n)
{
    hdl_stage *st = ctx;
    char err[NDT_ERRBUF_SIZE];
    note_instants(st, points, n);
    if (udr_write_points(st->u, points, n, err, sizeof(err)) != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, STAGE, "UDR write failed", NDT_KV_STR("error", err));
        return NDT_ERROR;
    }
    return NDT_OK;
}

static int emit_relation(void *ctx, const udr_relation *r)
{
    hdl_stage *st = ctx;
    char err[NDT_ERRBUF_SIZE];
    if (udr_write_relation(st->u, r, err, sizeof(err)) != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, STAGE, "UDR relationship write failed", NDT_KV_STR("error", err));
        return NDT_ERROR;
    }
    return NDT_OK;
}

/* Produces with back-pressure: a full queue is served, not dropped. */
static int produce(hdl_stage *st, rd_kafka_topic_t *topic, const void *key, size_t keylen,
                   const void *value, size_t len, rd_kafka_headers_t *headers)
{
    for (;;) {
        rd_kafka_headers_t *h = headers ? rd_kafka_headers_copy(headers) : NULL;
        rd_kafka_resp_err_t e = rd_kafka_producev(
            st->producer, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return NDT_OK;
        if (h)
            rd_kafka_headers_destroy(h);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            ndt_log(NDT_LOG_ERROR, STAGE, "produce failed",
                    NDT_KV_STR("topic", rd_kafka_topic_name(topic)),
                    NDT_KV_STR("error", rd_kafka_err2str(e)));
            st->stats.produce_failed++;
            st->emit_failed = 1; /* blocks the commit: the output would be lost */
            return NDT_ERROR;
        }
        rd_kafka_poll(st->producer, 5);
    }
}

static int emit_entity(void *ctx, const char *id, const char *json, size_t len)
{
    hdl_stage *st = ctx;
    if (produce(st, st->out_topic, id, strlen(id), json, len, NULL) != NDT_OK)
        return NDT_ERROR;
    st->stats.fragments_produced++;
    return NDT_OK;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    NDT_UNUSED(rk);
    hdl_stage *st = opaque;
    if (m->err) {
        st->stats.produce_failed++;
        st->emit_failed = 1;
        ndt_log(NDT_LOG_ERROR, STAGE, "kafka delivery failed",
                NDT_KV_STR("topic", rd_kafka_topic_name(m->rkt)),
                NDT_KV_STR("error", rd_kafka_err2str(m->err)));
    }
}

/* ---- input --------------------------------------------------------------- */

typedef struct decode_ctx {
    hdl_stage *st;
    int failed;
} decode_ctx;

static int on_sample(void *ctx, const hdl_sample *s)
{
    decode_ctx *d = ctx;
    if (s->ts_ms > d->st->stream_ms)
        d->st->stream_ms = s->ts_ms;
    int rc = hdl_engine_feed(d->st->engine, s, &d->st->emit);
    if (rc != NDT_OK)
        d->failed = 1;
    return rc;
}

static void dead_letter(hdl_stage *st, const rd_kafka_message_t *m, const char *reason)
{
    char partition[16], offset[24];
    snprintf(partition, sizeof(partition), "%d", (int)m->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)m->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "ndt.error", -1, reason, -1);
    rd_kafka_header_add(h, "ndt.source.topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "ndt.source.partition", -1, partition, -1);
    rd_kafka_header_add(h, "ndt.source.offset", -1, offset, -1);
    if (produce(st, st->dlq_topic, m->key, m->key_len, m->payload, m->len, h) == NDT_OK)
        st->stats.dead_letters++;
    rd_kafka_headers_destroy(h);
    int64_t now = mono_ms();
    if (now - st->last_log_ms >= STAGE_LOG_INTERVAL_MS) {
        st->last_log_ms = now;
        ndt_log(NDT_LOG_WARN, STAGE, "message dead-lettered", NDT_KV_STR("reason", reason),
                NDT_KV_STR("dlq", st->o.dlq_topic),
                NDT_KV_UINT("dead_letters_total", st->stats.dead_letters));
    }
}

static void remember_offset(hdl_stage *st, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_topic_partition_t *p =
        rd_kafka_topic_partition_list_find(st->offsets, topic, m->partition);
    if (!p)
        p = rd_kafka_topic_partition_list_add(st->offsets, topic, m->partition);
    p->offset = m->offset + 1;
}

static int consume_one(hdl_stage *st, const rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            st->stats.consumer_errors++;
            int64_t now = mono_ms();
            if (now - st->last_log_ms >= STAGE_LOG_INTERVAL_MS) {
                st->last_log_ms = now;
                ndt_log(NDT_LOG_WARN, STAGE, "consumer error",
                        NDT_KV_STR("error", rd_kafka_message_errstr(m)));
            }
        }
        return NDT_OK;
    }
    char err[STAGE_REASON_MAX];
    hdl_format f = st->format != HDL_FORMAT_AUTO ? st->format
                                                  : hdl_decode_detect(m->payload, m->len);
    decode_ctx d = { st, 0 };
    int rc = m->len ? hdl_decode(f, m->payload, m->len, on_sample, &d, err, sizeof(err))
                    : (snprintf(err, sizeof(err), "empty message"), NDT_EBADCONF);
    if ((unsigned)f < NDT_ARRAY_LEN(st->stats.messages))
        st->stats.messages[f]++;
    if (d.failed)
        return NDT_ERROR; /* the engine failed (out of memory, UDR write): not the input's fault */
    if (rc != NDT_OK) {
        /* The reason names the format the message was read as, once. */
        char reason[STAGE_REASON_MAX + 16];
        const char *name = hdl_format_name(f);
        if (strncmp(err, name, strlen(name)) == 0 && err[strlen(name)] == ':')
            snprintf(reason, sizeof(reason), "%s", err);
        else
            snprintf(reason, sizeof(reason), "%s: %s", name, err);
        dead_letter(st, m, reason);
    }
    remember_offset(st, m);
    return NDT_OK;
}

/* ---- /metrics ---------------------------------------------------------- */

static int serve_metrics(void *ctx, ndt_buf *out)
{
    hdl_stage *st = ctx;
    pthread_mutex_lock(&st->lock);
    int rc = ndt_buf_append(out, st->published.data ? st->published.data : "", st->published.len);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static void render_metrics(hdl_stage *st)
{
    if (!st->registered)
        return;
    hdl_engine_stats es;
    udr_stats us;
    hdl_engine_get_stats(st->engine, &es);
    udr_get_stats(st->u, &us);
    ndt_buf *b = &st->scratch;
    ndt_buf_reset(b);
    ndt_metrics_family(b, "ndtpipe_harmonize_messages_total", "counter", "Kafka messages consumed, by detected format.");
    for (int f = HDL_FORMAT_JSON; f <= HDL_FORMAT_INFLUX; f++)
        ndt_buf_printf(b, "ndtpipe_harmonize_messages_total{format=\"%s\"} %llu\n",
                       hdl_format_name((hdl_format)f), (unsigned long long)st->stats.messages[f]);
    ndt_metrics_value(b, "ndtpipe_harmonize_dead_letters_total", "counter", "Messages sent to the dead-letter topic.",
                      st->stats.dead_letters);
    ndt_metrics_value(b, "ndtpipe_harmonize_samples_total", "counter", "Samples decoded and mapped.",
                      es.samples);
    ndt_metrics_value(b, "ndtpipe_harmonize_samples_unmapped_total", "counter", "Samples no rule matched.",
                      es.samples_unmapped);
    ndt_metrics_value(b, "ndtpipe_harmonize_values_total", "counter", "Attribute values computed.",
                      es.values);
    ndt_metrics_value(b, "ndtpipe_harmonize_values_skipped_total", "counter", "Values not computable (no divisor yet, NaN, unknown state).",
                      es.values_skipped);
    ndt_metrics_value(b, "ndtpipe_harmonize_values_clamped_total", "counter", "Values outside their rule's min / max, set to the bound.",
                      es.values_clamped);
    ndt_metrics_value(b, "ndtpipe_harmonize_rate_resets_total", "counter", "Counter resets seen by rate rules.",
                      es.counter_resets);
    ndt_metrics_value(b, "ndtpipe_harmonize_relationship_changes_total", "counter", "Relationships whose object changed.",
                      es.relation_changes);
    ndt_metrics_value(b, "ndtpipe_harmonize_points_total", "counter", "Points written to the UDR.",
                      es.points);
    ndt_metrics_value(b, "ndtpipe_harmonize_fragments_total", "counter", "NGSI-LD fragments published.",
                      st->stats.fragments_produced);
    ndt_metrics_family(b, "ndtpipe_harmonize_dropped_total", "counter", "Samples dropped at a bound, by bound.");
    ndt_buf_printf(b, "ndtpipe_harmonize_dropped_total{bound=\"entities\"} %llu\n", (unsigned long long)es.entities_dropped);
    ndt_buf_printf(b, "ndtpipe_harmonize_dropped_total{bound=\"series\"} %llu\n", (unsigned long long)es.series_dropped);
    ndt_metrics_family(b, "ndtpipe_harmonize_entities", "gauge", "Entities known, by twin state.");
    for (int s = 0; s < HDL_TWIN_NSTATES; s++)
        ndt_buf_printf(b, "ndtpipe_harmonize_entities{state=\"%s\"} %llu\n",
                       hdl_twin_state_name((hdl_twin_state)s), (unsigned long long)es.in_state[s]);
    ndt_metrics_family(b, "ndtpipe_harmonize_twin_transitions_total", "counter", "Twin state transitions, by from and to state.");
    for (int from = 0; from < HDL_TWIN_NSTATES; from++)
        for (int to = 0; to < HDL_TWIN_NSTATES; to++)
            if (from != to)
                ndt_buf_printf(b, "ndtpipe_harmonize_twin_transitions_total{from=\"%s\",to=\"%s\"} %llu\n",
                               hdl_twin_state_name((hdl_twin_state)from),
                               hdl_twin_state_name((hdl_twin_state)to),
                               (unsigned long long)es.transitions[from][to]);
    ndt_metrics_family(b, "ndtpipe_harmonize_freshness_seconds", "histogram",
           "From a sample's scrape time to its entity being durable in the UDR, one observation per scrape instant.");
    for (size_t i = 0; i < STAGE_NBUCKETS; i++) {
        ndt_buf_append_str(b, "ndtpipe_harmonize_freshness_seconds_bucket{le=\"");
        ndt_buf_append_double(b, freshness_buckets[i]);
        ndt_buf_printf(b, "\"} %llu\n", (unsigned long long)st->stats.freshness_buckets[i]);
    }
    ndt_buf_printf(b, "ndtpipe_harmonize_freshness_seconds_bucket{le=\"+Inf\"} %llu\n",
                   (unsigned long long)st->stats.freshness_count);
    ndt_buf_append_str(b, "ndtpipe_harmonize_freshness_seconds_sum ");
    ndt_buf_append_double(b, st->stats.freshness_sum);
    ndt_buf_printf(b, "\nndtpipe_harmonize_freshness_seconds_count %llu\n",
                   (unsigned long long)st->stats.freshness_count);
    ndt_metrics_value(b, "ndtpipe_harmonize_batches_total", "counter", "Batches flushed to the UDR.",
                      st->stats.batches);
    ndt_metrics_value(b, "ndtpipe_harmonize_commits_total", "counter", "Offset commits after a durable flush.",
                      st->stats.commits);
    ndt_metrics_value(b, "ndtpipe_harmonize_commit_failures_total", "counter", "Offset commits Kafka refused (the batch is consumed again).",
                      st->stats.commit_failures);
    ndt_metrics_value(b, "ndtpipe_harmonize_udr_flush_failures_total", "counter", "UDR flushes that failed and were retried.",
                      st->stats.udr_flush_failures);
    ndt_metrics_value(b, "ndtpipe_harmonize_udr_points_spooled_total", "counter", "Points the InfluxDB UDR spooled to disk.",
                      us.points_spooled);
    ndt_metrics_value(b, "ndtpipe_harmonize_udr_points_dropped_total", "counter", "Points the UDR dropped at its spool bound.",
                      us.points_dropped);
    pthread_mutex_lock(&st->lock);
    ndt_buf_reset(&st->published);
    ndt_buf_append(&st->published, b->data ? b->data : "", b->len);
    pthread_mutex_unlock(&st->lock);
}

/* ---- the batch ------------------------------------------------------------ */

/* Makes the batch durable in the UDR: udr_flush() retried until it
 * succeeds or a stop is requested; NDT_OK means its offsets may be
 * committed once Kafka has the batch's fragments and dead letters. */
static int udr_durable(hdl_stage *st)
{
    char err[NDT_ERRBUF_SIZE];
    int backoff = 100;
    while (udr_flush(st->u, err, sizeof(err)) != NDT_OK) {
        st->stats.udr_flush_failures++;
        ndt_log(NDT_LOG_WARN, STAGE, "UDR flush failed, retrying (offsets not committed)",
                NDT_KV_STR("error", err), NDT_KV_INT("retry_in_ms", backoff));
        if (*st->o.stop)
            return NDT_ERROR;
        struct timespec ts = { backoff / 1000, (long)(backoff % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        backoff = backoff * 2 > STAGE_FLUSH_BACKOFF_MAX_MS ? STAGE_FLUSH_BACKOFF_MAX_MS : backoff * 2;
    }
    return NDT_OK;
}

/* Moves a durable batch's offsets to the set waiting for Kafka (the
 * highest offset per partition wins: a later batch supersedes an earlier
 * one) and leaves *offsets empty. */
static void offsets_to_pending(hdl_stage *st, rd_kafka_topic_partition_list_t **offsets)
{
    for (int i = 0; i < (*offsets)->cnt; i++) {
        const rd_kafka_topic_partition_t *o = &(*offsets)->elems[i];
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(st->pending, o->topic, o->partition);
        if (!p)
            p = rd_kafka_topic_partition_list_add(st->pending, o->topic, o->partition);
        if (o->offset > p->offset)
            p->offset = o->offset;
    }
    if ((*offsets)->cnt && st->pending_since_ms == 0)
        st->pending_since_ms = mono_ms();
    rd_kafka_topic_partition_list_destroy(*offsets);
    *offsets = rd_kafka_topic_partition_list_new(16);
}

/* The batch in flight is durable: its instants are observed, its offsets
 * wait for Kafka. */
static void inflight_durable(hdl_stage *st)
{
    if (!st->inflight)
        return;
    observe_freshness(st, st->inflight_instants, st->ninflight_instants);
    offsets_to_pending(st, &st->inflight_offsets);
    st->inflight = 0;
    st->ninflight_instants = 0;
}

/* The batch just handed to the UDR (ticket) becomes the one in flight. */
static void batch_to_inflight(hdl_stage *st, uint64_t ticket)
{
    rd_kafka_topic_partition_list_t *t = st->inflight_offsets;
    st->inflight_offsets = st->offsets;
    st->offsets = t;
    memcpy(st->inflight_instants, st->instants, st->ninstants * sizeof(st->instants[0]));
    st->ninflight_instants = st->ninstants;
    st->ninstants = 0;
    st->inflight_ticket = ticket;
    st->inflight = 1;
}

/* A flush failed (err): udr_flush() until everything written so far is
 * durable, the batch in flight and the one being ended alike. */
static int flush_failed(hdl_stage *st, const char *err)
{
    st->stats.udr_flush_failures++;
    ndt_log(NDT_LOG_WARN, STAGE, "UDR flush failed, retrying (offsets not committed)",
            NDT_KV_STR("error", err));
    if (udr_durable(st) != NDT_OK)
        return NDT_ERROR;
    inflight_durable(st);
    return NDT_OK;
}

/* Whether the flush in flight is done: NDT_OK once it is durable (or
 * there is none), NDT_AGAIN while InfluxDB still has it (wait = 0). */
static int inflight_check(hdl_stage *st, int wait)
{
    char err[NDT_ERRBUF_SIZE];
    if (!st->inflight)
        return NDT_OK;
    int rc = udr_flush_done(st->u, st->inflight_ticket, wait, err, sizeof(err));
    if (rc == NDT_AGAIN)
        return NDT_AGAIN;
    if (rc != NDT_OK)
        return flush_failed(st, err);
    inflight_durable(st);
    return NDT_OK;
}

/* Counts a commit's outcome: its return (synchronous) or Kafka's answer. */
static void commit_result(hdl_stage *st, rd_kafka_resp_err_t e)
{
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        st->stats.commits++;
        return;
    }
    st->stats.commit_failures++;
    ndt_log(NDT_LOG_WARN, STAGE, "offset commit failed (the batch will be consumed again)",
            NDT_KV_STR("error", rd_kafka_err2str(e)));
}

/* Kafka's answer to an asynchronous commit, served by consumer_poll. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    NDT_UNUSED(rk);
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && offsets && i < offsets->cnt; i++)
        err = offsets->elems[i].err;
    commit_result(opaque, err);
}

/* Commits what the UDR has once the producer has delivered everything
 * produced before (fragments, dead letters).  Waiting for the producer is
 * not on the path to the UDR: a delivery round trip of the embedded broker
 * sometimes takes tens of milliseconds, which would delay the next batch.
 * force (a stop, or offsets pending too long) flushes the producer first.
 * NDT_ERROR when a delivery failed: committing would lose it. */
static int try_commit(hdl_stage *st, int force)
{
    rd_kafka_poll(st->producer, 0);
    if (!st->pending->cnt)
        return NDT_OK;
    if (force && rd_kafka_outq_len(st->producer) > 0)
        rd_kafka_flush(st->producer, STAGE_PRODUCER_FLUSH_MS);
    if (st->emit_failed) {
        ndt_log(NDT_LOG_ERROR, STAGE, "fragments or dead letters not delivered: offsets not committed");
        return NDT_ERROR;
    }
    if (rd_kafka_outq_len(st->producer) > 0)
        return NDT_OK; /* later */
    /* Asynchronous unless forced: a synchronous commit is a round trip
     * through three librdkafka threads and the coordinator, in front of
     * the next batch (end_batch commits before it finishes that batch). */
    if (force)
        commit_result(st, rd_kafka_commit(st->consumer, st->pending, 0));
    else
        commit_result(st, rd_kafka_commit_queue(st->consumer, st->pending, st->commit_q,
                                                on_commit, st));
    rd_kafka_topic_partition_list_destroy(st->pending);
    st->pending = rd_kafka_topic_partition_list_new(16);
    st->pending_since_ms = 0;
    return NDT_OK;
}

/* Ends a batch; NDT_ERROR only when it could not be made durable. */
static int end_batch(hdl_stage *st, int idle)
{
    st->last_finish_ms = mono_ms();
    /* Earlier batches' outputs have had a loop's time to be delivered:
     * commit them before this batch's fragments fill the queue again. */
    if (try_commit(st, 0) != NDT_OK)
        return NDT_ERROR;
    if (hdl_engine_finish(st->engine, staleness_clock(st, idle), &st->emit) != NDT_OK)
        return NDT_ERROR;
    st->stats.batches++;
    /* The hand-over waits for the previous flush, so that one is done
     * (or failed) by the time it returns. */
    char err[NDT_ERRBUF_SIZE];
    uint64_t ticket;
    if (udr_flush_start(st->u, &ticket, err, sizeof(err)) != NDT_OK) {
        if (flush_failed(st, err) != NDT_OK)
            return NDT_ERROR;
        ticket = 0; /* everything written is durable */
    } else if (inflight_check(st, 1) != NDT_OK) {
        return NDT_ERROR;
    }
    batch_to_inflight(st, ticket);
    /* SQLite flushed in udr_flush_start(): durable already. */
    if (inflight_check(st, 0) == NDT_ERROR)
        return NDT_ERROR;
    int rc = try_commit(st, 0);
    render_metrics(st);
    return rc;
}

int hdl_stage_run(hdl_stage *st)
{
    const volatile int *stop = st->o.stop;
    int64_t wait_ms = st->o.batch_wait_ns / 1000000;
    ndt_log(NDT_LOG_INFO, STAGE, "harmonizing", NDT_KV_STR("in", st->o.in_topic),
            NDT_KV_STR("out", st->o.out_topic), NDT_KV_STR("group", st->o.group),
            NDT_KV_STR("mapping", st->o.mapping), NDT_KV_UINT("rules", st->rules.nrules));
    if (hdl_engine_start(st->engine, wall_ms(), &st->emit) != NDT_OK || udr_durable(st) != NDT_OK)
        return NDT_ERROR;
    render_metrics(st);
    int rc = NDT_OK;
    while (!*stop && rc == NDT_OK) {
        size_t n = 0;
        int64_t deadline = 0;
        while (n < st->o.batch_messages && !*stop) {
            /* Once begun, a batch takes what is already there and waits
             * at most batch_wait for more. */
            int timeout = STAGE_POLL_IDLE_MS;
            if (n > 0) {
                int64_t left = deadline - mono_ms();
                timeout = left > 0 ? (int)left : 0;
            }
            /* A flush in flight is looked at between polls, so that its
             * batch counts as durable (freshness, commit) when it is. */
            if (st->inflight) {
                if ((rc = inflight_check(st, 0)) == NDT_AGAIN) {
                    rc = NDT_OK;
                    if (timeout > STAGE_POLL_INFLIGHT_MS)
                        timeout = STAGE_POLL_INFLIGHT_MS;
                } else if (rc != NDT_OK) {
                    break;
                }
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(st->consumer, timeout);
            if (!m) {
                if (n == 0 || timeout == 0)
                    break;
                continue;
            }
            if (n == 0)
                deadline = mono_ms() + wait_ms;
            rc = consume_one(st, m);
            rd_kafka_message_destroy(m);
            if (rc != NDT_OK)
                break;
            n++;
        }
        if (rc != NDT_OK)
            break;
        /* Idle: still end a batch now and then, so staleness shows. */
        if (n > 0 || mono_ms() - st->last_finish_ms >= STAGE_IDLE_FINISH_MS)
            rc = end_batch(st, n == 0);
        if (rc == NDT_OK && st->pending_since_ms &&
            mono_ms() - st->pending_since_ms >= STAGE_COMMIT_MAX_WAIT_MS)
            rc = try_commit(st, 1);
    }
    if (rc == NDT_OK)
        rc = end_batch(st, 0); /* a stop: flush and commit what was consumed */
    if (rc == NDT_OK)
        rc = inflight_check(st, 1);
    if (rc == NDT_OK)
        rc = try_commit(st, 1);
    hdl_engine_stats es;
    hdl_engine_get_stats(st->engine, &es);
    ndt_log(rc == NDT_OK ? NDT_LOG_INFO : NDT_LOG_ERROR, STAGE,
            rc == NDT_OK ? "stopped" : "stopped without committing the last batch",
            NDT_KV_UINT("samples", es.samples), NDT_KV_UINT("points", es.points),
            NDT_KV_UINT("fragments", st->stats.fragments_produced),
            NDT_KV_UINT("dead_letters", st->stats.dead_letters),
            NDT_KV_UINT("commits", st->stats.commits));
    return rc;
}

/* ---- creation --------------------------------------------------------------- */

static int kafka_clients(hdl_stage *st, char *err, size_t errlen)
{
    const char *consumer_defaults[] = {
        "group.id", st->o.group,
        "client.id", "ndtpipe-harmonize",
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "auto.offset.reset", "earliest",
        /* A scrape every 20 ms must not wait for librdkafka's default
         * 500 ms fetch long-poll: the embedded broker answers an empty
         * fetch only when the wait ends, so this bounds the added latency
         * (a real broker answers as soon as data arrives). */
        "fetch.wait.max.ms", "5",
        NULL,
    };
    const char *producer_defaults[] = {
        "client.id", "ndtpipe-harmonize",
        "enable.idempotence", "true",
        "acks", "all",
        "linger.ms", "5",
        "compression.type", "lz4",
        "message.timeout.ms", "0",
        "queue.buffering.max.messages", "100000",
        "queue.buffering.max.kbytes", "65536",
        "reconnect.backoff.max.ms", "1000",
        NULL,
    };
    char why[512];
    rd_kafka_conf_t *cc = ndt_kafka_conf_new(st->o.brokers, consumer_defaults, &st->o.xopts, err, errlen);
    if (!cc)
        return NDT_EBADCONF;
    if (!(st->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, why, sizeof(why)))) {
        snprintf(err, errlen, "kafka consumer: %s", why);
        rd_kafka_conf_destroy(cc);
        return NDT_ERROR;
    }
    rd_kafka_poll_set_consumer(st->consumer);
    st->commit_q = rd_kafka_queue_get_consumer(st->consumer);
    rd_kafka_conf_t *pc = ndt_kafka_conf_new(st->o.brokers, producer_defaults, &st->o.xopts, err, errlen);
    if (!pc)
        return NDT_EBADCONF;
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_conf_set_opaque(pc, st);
    if (!(st->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof(why)))) {
        snprintf(err, errlen, "kafka producer: %s", why);
        rd_kafka_conf_destroy(pc);
        return NDT_ERROR;
    }
    st->out_topic = rd_kafka_topic_new(st->producer, st->o.out_topic, NULL);
    st->dlq_topic = rd_kafka_topic_new(st->producer, st->o.dlq_topic, NULL);
    if (!st->out_topic || !st->dlq_topic) {
        snprintf(err, errlen, "kafka: cannot create topic handles");
        return NDT_ERROR;
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, st->o.in_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(st->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        snprintf(err, errlen, "kafka: subscribe to %s: %s", st->o.in_topic, rd_kafka_err2str(e));
        return NDT_ERROR;
    }
    return NDT_OK;
}

static int copy_options(hdl_options *dst, const hdl_options *src)
{
    *dst = *src;
    memset(&dst->xopts, 0, sizeof(dst->xopts));
    for (const ndt_conf_entry *e = hdl_option_map; e->name; e++) {
        if (e->type != NDT_CONF_STRING)
            continue;
        char **field = (char **)((char *)dst + e->offset);
        if (*field && !(*field = strdup(*field)))
            return NDT_ERROR;
    }
    if (src->brokers && !(dst->brokers = strdup(src->brokers)))
        return NDT_ERROR;
    char err[64];
    for (size_t i = 0; i < src->xopts.n; i++) {
        char kv[1024];
        snprintf(kv, sizeof(kv), "%s=%s", src->xopts.keys[i], src->xopts.values[i]);
        if (ndt_kafka_opts_add(&dst->xopts, kv, err, sizeof(err)) != NDT_OK)
            return NDT_ERROR;
    }
    if (!dst->stop)
        dst->stop = &never_stop;
    return NDT_OK;
}

int hdl_stage_new(const hdl_options *o, hdl_stage **out, char *err, size_t errlen)
{
    int rc = NDT_ERROR;
    *out = NULL;
    hdl_stage *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    pthread_mutex_init(&st->lock, NULL);
    ndt_buf_init(&st->published, 0);
    ndt_buf_init(&st->scratch, 0);
    st->stream_ms = INT64_MIN / 2;
    if (copy_options(&st->o, o) != NDT_OK) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!st->o.brokers || !*st->o.brokers) {
        snprintf(err, errlen, "no Kafka brokers given (--brokers)");
        rc = NDT_EBADCONF;
        goto fail;
    }
    if (hdl_format_parse(st->o.format, &st->format) != NDT_OK) {
        snprintf(err, errlen, "format: expected auto, json, avro or influx, got '%s'", st->o.format);
        rc = NDT_EBADCONF;
        goto fail;
    }
    int gzip_level = 0; /* udr.h: the fastest level */
    if (strcmp(st->o.content_encoding, "identity") == 0) {
        gzip_level = -1;
    } else if (strcmp(st->o.content_encoding, "gzip") != 0) {
        snprintf(err, errlen, "content_encoding: expected gzip or identity, got '%s'", st->o.content_encoding);
        rc = NDT_EBADCONF;
        goto fail;
    }
    if (st->o.batch_messages == 0)
        st->o.batch_messages = 1;
    if ((rc = hdl_rules_load_file(&st->rules, st->o.mapping, err, errlen)) != NDT_OK)
        goto fail;
    hdl_engine_options eo = { 0 };
    eo.max_entities = st->o.max_entities;
    eo.max_series = st->o.max_series;
    eo.fidelity_ms = st->o.fidelity_ns / 1000000;
    eo.default_interval_ms = st->o.scrape_interval_ns / 1000000;
    if ((rc = hdl_engine_new(&st->rules, &eo, &st->engine, err, errlen)) != NDT_OK)
        goto fail;
    udr_options uo = { 0 };
    uo.spool_dir = st->o.spool_dir && *st->o.spool_dir ? st->o.spool_dir : NULL;
    uo.gzip_level = gzip_level;
    if ((rc = udr_open(&st->u, st->o.udr, &uo, err, errlen)) != NDT_OK)
        goto fail;
    if ((rc = kafka_clients(st, err, errlen)) != NDT_OK)
        goto fail;
    st->offsets = rd_kafka_topic_partition_list_new(16);
    st->inflight_offsets = rd_kafka_topic_partition_list_new(16);
    st->pending = rd_kafka_topic_partition_list_new(16);
    st->emit = (hdl_emit){ st, emit_points, emit_relation, emit_entity };
    /* The stage's families join the process's registry (common/metrics.h),
     * so one /metrics serves every stage of `ndtpipe run`. */
    if (ndt_metrics_register(serve_metrics, st) != NDT_OK) {
        snprintf(err, errlen, "too many metrics sources in this process");
        rc = NDT_ERROR;
        goto fail;
    }
    st->registered = 1;
    render_metrics(st);
    if (st->o.listen && *st->o.listen) {
        if ((rc = ndt_httpd_start(st->o.listen, NULL, NULL, &st->httpd, err, errlen)) != NDT_OK)
            goto fail;
        ndt_log(NDT_LOG_INFO, STAGE, "serving own metrics", NDT_KV_STR("listen", st->o.listen),
                NDT_KV_INT("port", ndt_httpd_port(st->httpd)));
    }
    *out = st;
    return NDT_OK;
fail:
    hdl_stage_destroy(st);
    return rc;
}

void hdl_stage_destroy(hdl_stage *st)
{
    if (!st)
        return;
    if (st->httpd)
        ndt_httpd_stop(st->httpd);
    if (st->registered)
        ndt_metrics_unregister(st);
    if (st->commit_q)
        rd_kafka_queue_destroy(st->commit_q);
    if (st->consumer) {
        rd_kafka_consumer_close(st->consumer);
        rd_kafka_destroy(st->consumer);
    }
    if (st->out_topic)
        rd_kafka_topic_destroy(st->out_topic);
    if (st->dlq_topic)
        rd_kafka_topic_destroy(st->dlq_topic);
    if (st->producer) {
        rd_kafka_flush(st->producer, STAGE_PRODUCER_FLUSH_MS);
        rd_kafka_destroy(st->producer);
    }
    if (st->offsets)
        rd_kafka_topic_partition_list_destroy(st->offsets);
    if (st->pending)
        rd_kafka_topic_partition_list_destroy(st->pending);
    if (st->inflight_offsets)
        rd_kafka_topic_partition_list_destroy(st->inflight_offsets);
    if (st->u)
        udr_close(st->u);
    hdl_engine_destroy(st->engine);
    hdl_rules_free(&st->rules);
    hdl_options_free(&st->o);
    ndt_buf_free(&st->published);
    ndt_buf_free(&st->scratch);
    pthread_mutex_destroy(&st->lock);
    free(st);
}
