/*
 * scrape_target.h: one scrape target: its HTTP request, its schedule
 * slot and what it does with a response (internal to ingest/).
 *
 * A target owns one curl easy handle for its whole life, so the
 * connection to it stays alive between 20 ms scrapes (keep-alive), and one
 * body buffer, bounded by body_size_limit (after gzip decoding, which is
 * where a gzip bomb would hurt).  Turning a response into a batch
 * (parse, merge target labels, metric_relabel_configs, limits, synthetic
 * series) happens in ingest_target_finish with memory from the scraper's
 * per-scrape arena; a page with the previous page's shape is read
 * through the target's scrape cache instead (scrape_cache.h).
 */
#ifndef INGEST_SCRAPE_TARGET_H
#define INGEST_SCRAPE_TARGET_H

#include <stdint.h>

#include <curl/curl.h>

#include "common/arena.h"
#include "common/buf.h"
#include "ingest/scrape_cache.h"
#include "ingest/scrape_config.h"
#include "ingest/sink.h"

/* Default cap on a response body when body_size_limit is 0: bounded memory
 * even for a target that streams forever. */
#define INGEST_DEFAULT_BODY_LIMIT (64u * 1024 * 1024)

typedef struct ingest_target_counters {
    uint64_t scrapes;
    uint64_t failures;
    uint64_t parse_errors;
    uint64_t missed_ticks;
    uint64_t samples_scraped;
    uint64_t samples_published;
    uint64_t sample_limit_hits;
    uint64_t pages_replayed;    /* read through the previous page's shape */
} ingest_target_counters;

typedef struct ingest_target {
    ingest_target_def def;      /* owned */
    char *key;                  /* identity across rediscovery */
    const ingest_job *job;

    /* schedule (CLOCK_MONOTONIC ns) */
    int64_t offset_ns;          /* phase within the interval, from the target's hash */
    int64_t next_tick_ns;
    size_t heap_index;

    /* the transfer */
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to; /* tls_config.server_name: where to really connect */
    char *request_url;             /* the URL curl is given (differs with server_name) */
    ndt_buf body;
    int in_flight;
    int body_over_limit;
    int64_t scheduled_ns;       /* the tick this scrape belongs to */
    int64_t started_ns;         /* when it actually left */
    int64_t started_real_ms;    /* scrape timestamp of its samples */
    char *content_type;         /* malloc'ed copy of the response's header */

    /* health */
    int up;                     /* -1 before the first scrape */
    char last_error[256];
    size_t last_nseries;       /* series of the last scrape: sizes the next one's array */
    ingest_scrape_cache *cache; /* the last fully parsed page (NULL: none, no memory) */
    ingest_target_counters counters;
} ingest_target;

/* Everything a target needs from the scraper to publish a scrape. */
typedef struct ingest_publish_ctx {
    ingest_sink *sink;
    ndt_arena *arena;           /* reset after every publish */
    const ingest_owned_labels *external_labels;
} ingest_publish_ctx;

/* Creates a target from a discovered definition (ownership of def moves
 * in).  NDT_ERROR if curl cannot be set up. */
int ingest_target_new(ingest_target_def *def, ingest_target **out, char *err, size_t errlen);
void ingest_target_free(ingest_target *target);

/* Prepares the request for the next scrape (resets the body). */
void ingest_target_prepare(ingest_target *target, int64_t scheduled_ns, int64_t now_ns);

/* Processes a finished transfer: publishes the samples and the synthetic
 * series.  Returns the publish status of the sink. */
int ingest_target_finish(ingest_target *target, CURLcode result, const ingest_publish_ctx *ctx);

#endif
