/*
 * sink.h: the Kafka output of the ingest stage (internal to ingest/).
 *
 * A sink encodes each batch in the configured format and produces it to
 * one topic, keyed by the batch's instance:
 *   json    one message per sample, prometheus-kafka-adapter's shape
 *   avro    one message per batch (schema sdm-schemas/avro/), optionally
 *           with Confluent framing (magic 0, 4-byte big-endian schema id)
 *   influx  one line-protocol line per sample, ms precision
 *
 * Delivery guarantees: an idempotent producer with acks=all, so a message
 * librdkafka accepted is written exactly once in order per partition.
 * message.timeout.ms defaults to 0 (retry forever): a broker that is away
 * delays delivery, it does not lose it.  librdkafka's queue is bounded;
 * when it is full ingest_sink_publish() waits (serving delivery reports)
 * instead of dropping, and counts the wait: that is the back-pressure the
 * scraper sees as a late scrape.  Only a stop request (*stop set) ends the
 * wait early, and then publish returns NDT_AGAIN with the unpublished
 * remainder counted as dropped; or, when the caller has someone to push the
 * back-pressure to (a remote-write sender), max_wait_ms bounds the wait and
 * the remainder is counted as deferred.
 *
 * Not thread-safe: one thread publishes and polls.
 */
#ifndef INGEST_SINK_H
#define INGEST_SINK_H

#include <stdint.h>

#include "common/buf.h"
#include "common/kafka.h"
#include "common/ndt.h"
#include "ingest/ingest.h"
#include "ingest/sample.h"

typedef enum ingest_format {
    INGEST_FORMAT_AVRO = 0,
    INGEST_FORMAT_JSON,
    INGEST_FORMAT_INFLUX,
} ingest_format;

int ingest_format_parse(const char *s, ingest_format *out);
const char *ingest_format_name(ingest_format format);

#define INGEST_DEFAULT_TOPIC "ndt.telemetry.raw"

typedef struct ingest_sink_config {
    const char *brokers;          /* bootstrap list or "embedded" */
    const ndt_kafka_opts *xopts;  /* -X passthrough, may be NULL */
    const char *topic;            /* default INGEST_DEFAULT_TOPIC */
    ingest_format format;
    int32_t schema_id;            /* Confluent framing for avro; -1 = none */
    const volatile int *stop;     /* set by the signal handler; may be NULL */
    int max_wait_ms;              /* >0: give up waiting on a full queue after this long
                                   * (NDT_AGAIN, counted as deferred: a remote-write
                                   * sender retries); 0: wait until stopped */
    const char *const *role_defaults; /* key, value pairs (NULL-terminated) laid over the
                                       * sink's defaults, under -X; may be NULL */
} ingest_sink_config;

typedef struct ingest_sink_stats {
    uint64_t batches;             /* publish calls */
    uint64_t samples;             /* samples handed to publish */
    uint64_t messages;            /* messages accepted by librdkafka */
    uint64_t bytes;               /* payload bytes accepted */
    uint64_t delivered;           /* delivery reports: success */
    uint64_t delivery_failed;     /* delivery reports: permanent failure */
    uint64_t queue_full_waits;    /* times publish waited on a full queue */
    uint64_t dropped;             /* samples not published (stop during a wait, encode error) */
    uint64_t deferred;            /* samples refused after max_wait_ms, for the sender to resend */
    uint64_t in_flight;           /* accepted, not yet reported */
    uint64_t unrepresentable;     /* influx: NaN/Inf samples skipped (not in dropped) */
    uint64_t produce_errors;      /* produce calls refused for another reason than a full queue */
} ingest_sink_stats;

typedef struct ingest_sink ingest_sink;

int ingest_sink_new(const ingest_sink_config *config, ingest_sink **out, char *err, size_t errlen);
/* The sink an ingest_output describes (ingest.h); NDT_EBADCONF for an
 * unknown format, NDT_ERROR otherwise. */
int ingest_sink_new_for_output(const ingest_output *output, const volatile int *stop, int max_wait_ms,
                               ingest_sink **out, char *err, size_t errlen);
/* The same with a stage's own producer defaults (ingest_sink_config.role_defaults). */
int ingest_sink_new_for_role(const ingest_output *output, const volatile int *stop, int max_wait_ms,
                             const char *const *role_defaults, ingest_sink **out, char *err,
                             size_t errlen);
int ingest_sink_publish(ingest_sink *sink, const ingest_batch *batch);
/* Serves delivery reports without blocking. */
void ingest_sink_poll(ingest_sink *sink);
/* Waits up to timeout_ms for everything in flight; NDT_OK if all delivered. */
int ingest_sink_flush(ingest_sink *sink, int timeout_ms);
void ingest_sink_get_stats(const ingest_sink *sink, ingest_sink_stats *out);
void ingest_sink_destroy(ingest_sink *sink);

/* The encoders, exposed for tests, benchmarks and the remote-write path.
 * Each appends to out and returns NDT_OK or NDT_ERROR (buffer limit). */
int ingest_encode_json(const ingest_series *series, ndt_buf *out);
/* Line protocol cannot carry NaN or +-Inf: for such a value nothing is
 * appended and NDT_AGAIN returned (the sink counts it as unrepresentable). */
int ingest_encode_influx(const ingest_series *series, ndt_buf *out);

/* Helpers of the encoders, shared with the remote-write path and tests.
 * ingest_append_go_float: Go's strconv.FormatFloat(v, 'f', -1, 64).
 * ingest_append_json_string: a quoted JSON string; invalid UTF-8 -> \ufffd.
 * ingest_format_rfc3339_ms: "2026-01-02T03:04:05.678Z" (UTC, always 3
 * fraction digits); returns the length like snprintf. */
int ingest_append_go_float(ndt_buf *out, double v);
int ingest_append_json_string(ndt_buf *out, ndt_str s);
int ingest_format_rfc3339_ms(int64_t ms, char *buf, size_t size);

/* The Avro schema (sdm-schemas/avro/ndt.telemetry.raw.avsc, embedded). */
const char *ingest_avro_schema_text(void);

typedef struct ingest_avro_encoder ingest_avro_encoder;
int ingest_avro_encoder_new(ingest_avro_encoder **out, char *err, size_t errlen);
int ingest_encode_avro(ingest_avro_encoder *enc, const ingest_batch *batch, int32_t schema_id,
                       ndt_buf *out);
void ingest_avro_encoder_free(ingest_avro_encoder *enc);

#endif
