/*
 * scrape_cache.h: a target's last fully parsed page, kept so that the
 * next page of the same shape is published without parsing names and
 * labels or building series again (internal to ingest/).
 *
 * It holds the page's shape (expo.h) and the series the page became
 * after target labels, metric_relabel_configs and external labels, with
 * their labels copied out of the scrape's memory, and for every sample
 * the series it became (or none: relabeling dropped it).  A page that
 * replays over the shape has the same names and labels line by line, so
 * the same rules give the same series and the same limit verdicts (the
 * job's configuration never changes under a target); only values and
 * timestamps are new.  Prometheus's scrape cache keeps the same thing per
 * target (series by their exposition bytes) for the same reason.
 */
#ifndef INGEST_SCRAPE_CACHE_H
#define INGEST_SCRAPE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "ingest/expo.h"
#include "ingest/sample.h"

typedef struct ingest_scrape_cache ingest_scrape_cache;

/* A page's series as the cache hands them back. */
typedef struct ingest_scrape_replay {
    ingest_series *series;   /* from the arena, room for nseries + extra */
    size_t nseries;
    uint64_t scraped;        /* samples in the page */
    uint64_t post_relabel;   /* samples after metric_relabel_configs */
} ingest_scrape_replay;

ingest_scrape_cache *ingest_scrape_cache_new(void);
void ingest_scrape_cache_free(ingest_scrape_cache *cache);

/* Heap bytes the cache holds: the shape (less than the page), the series
 * with their labels, and a few bytes per sample: 159 kB for a 57.6 kB
 * node-exporter page.  Like the page, bounded by body_size_limit. */
size_t ingest_scrape_cache_bytes(const ingest_scrape_cache *cache);

/* The shape the next full parse should record into, or NULL when the
 * cache sits this page out: a target whose pages keep changing shape is
 * recorded less and less often (up to one page in 64) instead of paying
 * for a recording that is never replayed. */
ingest_expo_shape *ingest_scrape_cache_recorder(ingest_scrape_cache *cache);

/* After a successful full parse into the recorder's shape: keeps copies
 * of the batch's series and which series each sample became
 * (sample_series[i] is an index into series, or -1).  post_relabel is the
 * page's count.  Out of memory only leaves the cache empty. */
void ingest_scrape_cache_store(ingest_scrape_cache *cache, const ingest_series *series,
                               size_t nseries, const int32_t *sample_series, size_t nsamples,
                               uint64_t post_relabel);

/* The page read through the cached shape: NDT_OK with out filled (every
 * series' value and timestamp from the page; timestamps from the page
 * when honor_timestamps and it has one, else scrape_ms), NDT_AGAIN when
 * the page is not of the cached shape (the caller parses it in full),
 * NDT_ERROR when the arena is out of memory. */
int ingest_scrape_cache_replay(ingest_scrape_cache *cache, const char *buf, size_t len,
                               ingest_expo_format format, int honor_timestamps, int64_t scrape_ms,
                               size_t extra, ndt_arena *arena, ingest_scrape_replay *out);

#endif
