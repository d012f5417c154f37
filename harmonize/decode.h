/*
 * decode.h: reading ndt.telemetry.raw back into samples, the harmonizer's
 * input side.
 *
 * The ingest stage publishes in three formats (docs/FORMATS.md): json (one
 * message per sample, prometheus-kafka-adapter's shape), avro (one message
 * per scrape, sdm-schemas/avro/ndt.telemetry.raw.avsc, optionally with
 * Confluent framing) and influx (line protocol, one line per sample, ms
 * precision).  A consumer cannot trust the producer's configuration, so the
 * format of each message is detected from its bytes (hdl_decode_detect)
 * unless the caller forces one.
 *
 * Promises: a decoder never reads outside the message and never allocates
 * without bound (labels per sample at most HDL_DECODE_MAX_LABELS, samples
 * per message bounded by the message's own size).  A malformed message is
 * NDT_EBADCONF with a reason in err that names the byte offset or line,
 * fit for the dead-letter topic; samples handed to the callback before the
 * error was found stay delivered (the caller decides whether a partly bad
 * message is dead-lettered whole).  The sample passed to the callback is a
 * view valid only during the call.
 */
#ifndef NDT_HARMONIZE_DECODE_H
#define NDT_HARMONIZE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/ndt.h"

#define HDL_DECODE_MAX_LABELS 128

typedef enum hdl_format {
    HDL_FORMAT_AUTO = 0,
    HDL_FORMAT_JSON,
    HDL_FORMAT_AVRO,
    HDL_FORMAT_INFLUX,
} hdl_format;

/* The metric type, when the format carries it (avro); UNKNOWN otherwise. */
typedef enum hdl_metric_type {
    HDL_TYPE_UNKNOWN = 0,
    HDL_TYPE_COUNTER,
    HDL_TYPE_GAUGE,
    HDL_TYPE_HISTOGRAM,
    HDL_TYPE_GAUGE_HISTOGRAM,
    HDL_TYPE_SUMMARY,
    HDL_TYPE_INFO,
    HDL_TYPE_STATESET,
} hdl_metric_type;

typedef struct hdl_label {
    ndt_str name;
    ndt_str value;
} hdl_label;

/* A native histogram bucket: index i covers (base^(i-1), base^i] with
 * base = 2^(2^-schema); count is absolute (docs/KAFKA.md). */
typedef struct hdl_native_bucket {
    int32_t index;
    double count;
} hdl_native_bucket;

/* A native histogram as the ingest stage carries it, on the histogram's
 * _count sample (protobuf scrapes only).  At most
 * HDL_DECODE_MAX_NATIVE_BUCKETS buckets per side. */
typedef struct hdl_native_histogram {
    int32_t schema;
    double zero_threshold;
    double zero_count;
    double count;
    double sum;
    const hdl_native_bucket *positive;
    size_t npositive;
    const hdl_native_bucket *negative;
    size_t nnegative;
} hdl_native_histogram;

#define HDL_DECODE_MAX_NATIVE_BUCKETS 4096

typedef struct hdl_sample {
    ndt_str name;              /* metric name (__name__) */
    const hdl_label *labels;   /* every label except __name__, sorted by name */
    size_t nlabels;
    double value;
    int64_t ts_ms;
    hdl_metric_type type;
    const hdl_native_histogram *native; /* NULL unless the message carries one */
} hdl_sample;

/* Called once per sample; a non-NDT_OK return stops decoding and is
 * returned by hdl_decode(). */
typedef int (*hdl_sample_fn)(void *ctx, const hdl_sample *s);

/* The format of one message: avro when it starts with the Confluent magic
 * byte 0 or decodes as a TelemetryRaw record, json when its first
 * non-blank byte is '{', influx otherwise. */
hdl_format hdl_decode_detect(const void *msg, size_t len);

/* Decodes one Kafka message value. */
int hdl_decode(hdl_format format, const void *msg, size_t len, hdl_sample_fn fn, void *ctx,
               char *err, size_t errlen);

const char *hdl_format_name(hdl_format format);
/* "json", "avro", "influx" or "auto"; NDT_EBADCONF otherwise. */
int hdl_format_parse(const char *s, hdl_format *out);

#endif
