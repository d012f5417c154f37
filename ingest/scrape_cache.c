/*
 * scrape_cache.c: a target's last fully parsed page; see scrape_cache.h.
 *
 * The series are copied into one block: the series array, then every
 * label array, then every string, so that a store is one allocation
 * (reused while it is large enough) and freeing the cache is one free.
 * A replay copies the series array into the scrape's arena (the batch
 * is the scrape's, and the sink may read it after the next page is
 * stored) and writes the page's values and timestamps into it.
 *
 * Churn: a store that is followed by a miss before any replay means the
 * target's shape did not last one scrape.  After two such stores in a row
 * the cache sits out 2, 4, ... up to 64 full parses before recording
 * again; one replay resets that.  A miss also drops the shape, so that a
 * page that changes every scrape costs one recording and one failed
 * replay in 64 pages, not on every page.
 */
#include "ingest/scrape_cache.h"

#include <stdlib.h>
#include <string.h>

#define SCRAPE_CACHE_MAX_SKIP 64

struct ingest_scrape_cache {
    ingest_expo_shape *shape;
    int valid;                /* shape and series belong together */
    char *block;              /* series, label arrays and strings */
    size_t block_cap;
    ingest_series *series;    /* in block */
    size_t nseries;
    int32_t *sample_series;   /* per sample */
    double *values;           /* replay's scratch, per sample */
    int64_t *timestamps;
    size_t nsamples, samples_cap;
    uint64_t post_relabel;
    /* churn */
    int stored;               /* a store happened */
    uint64_t replays_since_store;
    unsigned unstable;        /* stores in a row that saw no replay */
    unsigned skip;            /* pages to sit out before recording again */
};

ingest_scrape_cache *ingest_scrape_cache_new(void)
{
    ingest_scrape_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->shape = ingest_expo_shape_new();
    if (!c->shape) {
        free(c);
        return NULL;
    }
    return c;
}

void ingest_scrape_cache_free(ingest_scrape_cache *c)
{
    if (!c)
        return;
    ingest_expo_shape_free(c->shape);
    free(c->block);
    free(c->sample_series);
    free(c->values);
    free(c->timestamps);
    free(c);
}

size_t ingest_scrape_cache_bytes(const ingest_scrape_cache *c)
{
    if (!c)
        return 0;
    return sizeof(*c) + ingest_expo_shape_bytes(c->shape) + c->block_cap +
           c->samples_cap * (sizeof(*c->sample_series) + sizeof(*c->values) +
                             sizeof(*c->timestamps));
}

ingest_expo_shape *ingest_scrape_cache_recorder(ingest_scrape_cache *c)
{
    if (c->skip) {
        c->skip--;
        return NULL;
    }
    c->valid = 0; /* the shape is about to be overwritten */
    return c->shape;
}

static size_t block_size(const ingest_series *series, size_t n)
{
    size_t size = n * sizeof(ingest_series);
    for (size_t i = 0; i < n; i++) {
        size += series[i].nlabels * sizeof(ingest_label);
        for (size_t j = 0; j < series[i].nlabels; j++)
            size += series[i].labels[j].name.len + series[i].labels[j].value.len;
    }
    return size;
}

static ndt_str copy_str(char **at, ndt_str s)
{
    ndt_str out = { *at, s.len };
    if (s.len)
        memcpy(*at, s.ptr, s.len);
    *at += s.len;
    return out;
}

/* Copies the series and their labels into the block (grown if needed). */
static int copy_series(ingest_scrape_cache *c, const ingest_series *series, size_t n)
{
    size_t size = block_size(series, n);
    if (!size) {
        c->series = NULL;
        c->nseries = 0;
        return NDT_OK;
    }
    if (size > c->block_cap) {
        char *grown = malloc(size);
        if (!grown)
            return NDT_ERROR;
        free(c->block);
        c->block = grown;
        c->block_cap = size;
    }
    ingest_series *out = (ingest_series *)(void *)c->block;
    ingest_label *labels = (ingest_label *)(void *)(out + n);
    size_t nlabels = 0;
    for (size_t i = 0; i < n; i++)
        nlabels += series[i].nlabels;
    char *strings = (char *)(labels + nlabels);
    for (size_t i = 0; i < n; i++) {
        out[i] = series[i];
        out[i].labels = labels;
        for (size_t j = 0; j < series[i].nlabels; j++) {
            labels[j].name = copy_str(&strings, series[i].labels[j].name);
            labels[j].value = copy_str(&strings, series[i].labels[j].value);
        }
        labels += series[i].nlabels;
    }
    c->series = out;
    c->nseries = n;
    return NDT_OK;
}

static int size_samples(ingest_scrape_cache *c, size_t n)
{
    if (n <= c->samples_cap)
        return NDT_OK;
    int32_t *map = malloc(n * sizeof(*map));
    double *values = malloc(n * sizeof(*values));
    int64_t *timestamps = malloc(n * sizeof(*timestamps));
    if (!map || !values || !timestamps) {
        free(map);
        free(values);
        free(timestamps);
        return NDT_ERROR;
    }
    free(c->sample_series);
    free(c->values);
    free(c->timestamps);
    c->sample_series = map;
    c->values = values;
    c->timestamps = timestamps;
    c->samples_cap = n;
    return NDT_OK;
}

static void note_store(ingest_scrape_cache *c)
{
    if (c->stored && c->replays_since_store == 0)
        c->unstable++;
    else
        c->unstable = 0;
    c->stored = 1;
    c->replays_since_store = 0;
    if (c->unstable >= 2) {
        unsigned skip = 1u << (c->unstable - 1 < 6 ? c->unstable - 1 : 6);
        c->skip = skip < SCRAPE_CACHE_MAX_SKIP ? skip : SCRAPE_CACHE_MAX_SKIP;
    }
}

void ingest_scrape_cache_store(ingest_scrape_cache *c, const ingest_series *series,
                               size_t nseries, const int32_t *sample_series, size_t nsamples,
                               uint64_t post_relabel)
{
    c->valid = 0;
    if (!ingest_expo_shape_valid(c->shape) || ingest_expo_shape_samples(c->shape) != nsamples)
        return;
    if (size_samples(c, nsamples) != NDT_OK || copy_series(c, series, nseries) != NDT_OK)
        return;
    if (nsamples)
        memcpy(c->sample_series, sample_series, nsamples * sizeof(*sample_series));
    c->nsamples = nsamples;
    c->post_relabel = post_relabel;
    c->valid = 1;
    note_store(c);
}

int ingest_scrape_cache_replay(ingest_scrape_cache *c, const char *buf, size_t len,
                               ingest_expo_format format, int honor_timestamps, int64_t scrape_ms,
                               size_t extra, ndt_arena *arena, ingest_scrape_replay *out)
{
    if (!c->valid)
        return NDT_AGAIN;
    if (ingest_expo_shape_replay(c->shape, buf, len, format, c->values, c->timestamps) != NDT_OK) {
        c->valid = 0; /* the target moved on: no use trying this shape again */
        return NDT_AGAIN;
    }
    ingest_series *series = ndt_arena_alloc(arena, (c->nseries + extra) * sizeof(*series));
    if (!series)
        return NDT_ERROR;
    if (c->nseries)
        memcpy(series, c->series, c->nseries * sizeof(*series));
    for (size_t i = 0; i < c->nsamples; i++) {
        int32_t k = c->sample_series[i];
        if (k < 0)
            continue;
        series[k].value = c->values[i];
        series[k].timestamp_ms = honor_timestamps && c->timestamps[i] != INGEST_NO_TIMESTAMP
                                     ? c->timestamps[i]
                                     : scrape_ms;
    }
    c->replays_since_store++;
    c->unstable = 0; /* the shape lasted: record the next one at once */
    c->skip = 0;
    out->series = series;
    out->nseries = c->nseries;
    out->scraped = c->nsamples;
    out->post_relabel = c->post_relabel;
    return NDT_OK;
}
