/*
 * harmonize.h: the Harmonization Data Layer (paper 002, II-D), the public
 * face of harmonize/.
 *
 * One stage instance (Fluent Bit's idea: one entry struct, its options in
 * one declarative table, create / run / destroy) consumes
 * ndt.telemetry.raw in a consumer group, maps every sample with the rules
 * of a mapping file (sdm-schemas/mapping/, docs/DATA-MODEL.md) into
 * NGSI-LD entities with their twin state, writes them to the UDR and
 * publishes each entity touched as a normalized fragment on
 * ndt.sdm.entities (key: entity id).
 *
 * Delivery (docs/HARMONIZE.md): at least once.  The input offsets of a
 * batch are committed only after udr_flush() returned NDT_OK and the
 * fragments and dead letters of the batch were delivered to Kafka; a
 * restart replays what was not committed and the UDR keeps one value per
 * series and timestamp, so a replay rewrites, it never duplicates.  A
 * message that cannot be decoded goes to the dead-letter topic with the
 * reason in its `ndt.error` header and the stage goes on.
 *
 * Threads: hdl_stage_run() runs the whole stage on the caller's thread;
 * only the /metrics endpoint (common/httpd.h) runs on its own.
 */
#ifndef NDT_HARMONIZE_H
#define NDT_HARMONIZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/config.h"
#include "common/kafka.h"

#define HDL_DEFAULT_IN_TOPIC "ndt.telemetry.raw"
#define HDL_DEFAULT_OUT_TOPIC "ndt.sdm.entities"
#define HDL_DEFAULT_DLQ_TOPIC "ndt.telemetry.raw.dlq"
#define HDL_DEFAULT_GROUP "ndtpipe-harmonize"
#define HDL_DEFAULT_UDR "sqlite:data/udr.db"
#define HDL_DEFAULT_MAPPING "sdm-schemas/mapping/testbed.yaml"

typedef struct hdl_options {
    char *brokers;            /* bootstrap list (already resolved) */
    char *in_topic;
    char *out_topic;
    char *dlq_topic;
    char *group;
    char *udr;                /* udr.h URL */
    char *mapping;            /* rule file */
    char *format;             /* auto | json | avro | influx */
    char *listen;             /* /metrics and /healthz; empty = none */
    char *spool_dir;          /* InfluxDB spool; empty = <udr-less default> */
    char *content_encoding;   /* InfluxDB request bodies: gzip | identity */
    uint64_t batch_messages;  /* messages per batch at most */
    int64_t batch_wait_ns;    /* how long a batch waits to fill once begun */
    int64_t scrape_interval_ns; /* assumed interval until one is observed */
    int64_t fidelity_ns;      /* fixed twin fidelity threshold; 0 = 2 intervals */
    int64_t max_lag_ns;       /* staleness clock: at most this far behind real time */
    uint64_t max_entities;
    uint64_t max_series;
    /* not in the table */
    ndt_kafka_opts xopts;     /* -X, applied to the consumer and the producer */
    const volatile int *stop; /* set by a signal handler */
} hdl_options;

/* The option table (name, type, default, field, description): defaults,
 * --config's `harmonize:` section, flags and --help come from it. */
extern const ndt_conf_entry hdl_option_map[];

int hdl_options_init(hdl_options *o, char *err, size_t errlen);
/* Applies the `harmonize:` mapping of a YAML file (other top-level keys
 * are other stages' and ignored); NDT_EBADCONF naming file:line:col. */
int hdl_options_load_yaml(hdl_options *o, const char *path, char *err, size_t errlen);
void hdl_options_free(hdl_options *o);

typedef struct hdl_stage hdl_stage;

/* Loads the rules, opens the UDR and the Kafka clients.  NDT_EBADCONF for
 * a configuration the user must fix (rule file, URL), NDT_ERROR otherwise. */
int hdl_stage_new(const hdl_options *o, hdl_stage **out, char *err, size_t errlen);
/* Runs until *stop; then flushes, commits and returns NDT_OK, or NDT_ERROR
 * when what was consumed could not be made durable (nothing committed). */
int hdl_stage_run(hdl_stage *st);
void hdl_stage_destroy(hdl_stage *st);

#endif
