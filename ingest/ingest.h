/*
 * ingest.h: the Telemetry Data Layer, the public face of ingest/.
 *
 * Two ways in: the scraper reads a Prometheus configuration
 * (scrape_configs), scrapes every target on its own fixed schedule and
 * publishes every sample to Kafka (ndt.telemetry.raw by default) in one of
 * three formats; the receiver takes Prometheus remote-write requests and
 * publishes their samples the same way.  Other folders use only this
 * header; everything else in ingest/ is internal.
 *
 * Lifecycle, as for every stage: new (validates configuration, connects
 * nothing yet that could block), run (until *stop becomes non-zero), then
 * destroy (flushes Kafka, frees everything).
 */
#ifndef INGEST_H
#define INGEST_H

#include <stdint.h>

#include "common/kafka.h"
#include "common/ndt.h"

/* Where and how both ways in publish: one description, one sink. */
typedef struct ingest_output {
    const char *brokers;          /* bootstrap list (resolved, not "embedded") */
    const ndt_kafka_opts *xopts;  /* -X passthrough, may be NULL */
    const char *topic;            /* NULL = ndt.telemetry.raw */
    const char *format;           /* "avro" (default), "json", "influx" */
    int32_t schema_id;            /* avro Confluent framing, -1 = none */
    int flush_timeout_ms;         /* how long shutdown waits for Kafka; 0 = 30 s */
} ingest_output;

typedef struct ingest_scrape_options {
    const char *config_path;      /* prometheus.yml-style file (required) */
    ingest_output output;
    const volatile int *stop;     /* run() returns once this is non-zero */
    const char *stats_path;       /* optional: JSON summary written at exit */
    const char *metrics_listen;   /* optional HOST:PORT serving the scraper's own /metrics */
} ingest_scrape_options;

typedef struct ingest_scrape_totals {
    uint64_t scrapes;             /* scrapes completed (success or failure) */
    uint64_t scrape_failures;     /* up == 0 */
    uint64_t parse_errors;        /* failures because of a malformed exposition */
    uint64_t missed_ticks;        /* ticks skipped because a scrape overran */
    uint64_t samples_scraped;     /* samples in expositions */
    uint64_t samples_published;   /* series handed to Kafka, synthetic ones included */
    uint64_t sample_limit_hits;   /* scrapes failed by sample_limit */
    uint64_t pages_replayed;      /* pages read through the previous page's shape */
    uint64_t publish_waits;       /* back-pressure waits on Kafka's queue */
    uint64_t publish_dropped;     /* samples not published (only on forced stop) */
    uint64_t delivered;           /* Kafka delivery reports: success */
    uint64_t delivery_failed;     /* Kafka delivery reports: failure */
} ingest_scrape_totals;

typedef struct ingest_scraper ingest_scraper;

/* NDT_OK, NDT_EBADCONF (configuration invalid: exit 2) or NDT_ERROR. */
int ingest_scraper_new(const ingest_scrape_options *options, ingest_scraper **out, char *err,
                       size_t errlen);
/* Runs until *options->stop; then stops starting scrapes, lets the ones
 * in flight finish, publishes them and flushes Kafka.  NDT_OK or NDT_ERROR. */
int ingest_scraper_run(ingest_scraper *scraper);
void ingest_scraper_get_totals(const ingest_scraper *scraper, ingest_scrape_totals *out);
/* Port of the own-metrics endpoint (useful with port 0), 0 if none. */
int ingest_scraper_metrics_port(const ingest_scraper *scraper);
void ingest_scraper_destroy(ingest_scraper *scraper);

/* ---- the remote-write receiver ------------------------------------- */

typedef struct ingest_receive_options {
    const char *listen;           /* HOST:PORT, 127.0.0.1 unless told */
    ingest_output output;
    const volatile int *stop;
    size_t max_body_bytes;        /* compressed body limit; 0 = 32 MiB */
    const char *token;            /* bearer token senders must present; NULL = none */
    int backpressure_ms;          /* full Kafka queue for this long -> 503; 0 = 1 s */
    const char *stats_path;       /* optional JSON summary at exit */
} ingest_receive_options;

typedef struct ingest_receive_totals {
    uint64_t requests;
    uint64_t samples;             /* samples accepted (204) */
    uint64_t bad_requests;        /* 4xx answers */
    uint64_t backpressure_rejections; /* 503 answers */
    uint64_t server_errors;       /* 500 answers */
    uint64_t histograms_skipped;  /* native histograms, not carried yet */
} ingest_receive_totals;

typedef struct ingest_receiver ingest_receiver;

int ingest_receiver_new(const ingest_receive_options *options, ingest_receiver **out, char *err,
                        size_t errlen);
int ingest_receiver_port(const ingest_receiver *receiver);
/* Serves until *options->stop; then stops listening and flushes Kafka. */
int ingest_receiver_run(ingest_receiver *receiver);
void ingest_receiver_get_totals(const ingest_receiver *receiver, ingest_receive_totals *out);
void ingest_receiver_destroy(ingest_receiver *receiver);

/* Validates a configuration file without scraping (scrape --check-config). */
int ingest_scrape_config_check(const char *path, char *err, size_t errlen);

#endif
