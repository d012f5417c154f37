/*
 * expo_shape.c: a page's shape, recorded by a full parse and replayed
 * over the next page of a target (see expo.h for why that is sound).
 *
 * What is kept: the page's bytes less every sample's value part (from
 * the end of its name and labels to its LF, exclusive), and per sample
 * one entry: how many kept bytes come before the sample's value part
 * since the previous sample's LF (the HELP and TYPE lines in between,
 * then the sample's own name and labels), and how long its name and
 * labels are (for the line-length bound).  The bytes after the last
 * sample's LF are the tail.
 *
 * A replay is then one memcmp per sample, which finds the same lines
 * with the same names and labels, and one value read with the grammar's
 * own function; a page of node-exporter's 505 samples costs about a
 * fifth of its full parse.  The replay never reports an error: anything
 * unexpected is NDT_AGAIN, and the full parse that follows says what is
 * wrong, at which line and column.
 *
 * Memory: the kept bytes and the entries grow by doubling while
 * recording and are reused by the next recording; a page's shape is
 * smaller than the page.  Running out of memory while recording only
 * leaves the shape invalid.
 */
#include <stdlib.h>
#include <string.h>

#include "ingest/expo_internal.h"

typedef struct shape_entry {
    uint32_t prefix; /* kept bytes since the previous sample's LF, this key included */
    uint32_t key;    /* length of the sample's name and labels (its line's start to key end) */
} shape_entry;

struct ingest_expo_shape {
    int valid;
    int broken;      /* recording ran out of memory or met a line it cannot replay */
    ingest_expo_format format;
    char *bytes;     /* the page less its value parts */
    size_t nbytes, bytes_cap;
    shape_entry *entries;
    size_t nentries, entries_cap;
    size_t tail;     /* kept bytes after the last sample's LF */
    const char *mark; /* recording: first byte of the page not yet kept */
};

ingest_expo_shape *ingest_expo_shape_new(void)
{
    return calloc(1, sizeof(ingest_expo_shape));
}

void ingest_expo_shape_free(ingest_expo_shape *shape)
{
    if (!shape)
        return;
    free(shape->bytes);
    free(shape->entries);
    free(shape);
}

int ingest_expo_shape_valid(const ingest_expo_shape *shape)
{
    return shape && shape->valid;
}

size_t ingest_expo_shape_samples(const ingest_expo_shape *shape)
{
    return shape && shape->valid ? shape->nentries : 0;
}

size_t ingest_expo_shape_bytes(const ingest_expo_shape *shape)
{
    if (!shape)
        return 0;
    return sizeof(*shape) + shape->bytes_cap + shape->entries_cap * sizeof(shape_entry);
}

/* ---- recording -------------------------------------------------------- */

static int keep_bytes(ingest_expo_shape *shape, const char *from, size_t n)
{
    if (n == 0) /* an empty page: nothing to keep, and bytes may be NULL */
        return NDT_OK;
    if (shape->bytes_cap - shape->nbytes < n) {
        size_t cap = shape->bytes_cap ? shape->bytes_cap : 4096;
        while (cap - shape->nbytes < n) {
            if (cap > SIZE_MAX / 2)
                return NDT_ERROR;
            cap *= 2;
        }
        char *grown = realloc(shape->bytes, cap);
        if (!grown)
            return NDT_ERROR;
        shape->bytes = grown;
        shape->bytes_cap = cap;
    }
    memcpy(shape->bytes + shape->nbytes, from, n);
    shape->nbytes += n;
    return NDT_OK;
}

static int add_entry(ingest_expo_shape *shape, size_t prefix, size_t key)
{
    if (prefix > UINT32_MAX || key > UINT32_MAX)
        return NDT_ERROR;
    if (shape->nentries == shape->entries_cap) {
        size_t cap = shape->entries_cap ? shape->entries_cap * 2 : 256;
        shape_entry *grown = realloc(shape->entries, cap * sizeof(*grown));
        if (!grown)
            return NDT_ERROR;
        shape->entries = grown;
        shape->entries_cap = cap;
    }
    shape->entries[shape->nentries].prefix = (uint32_t)prefix;
    shape->entries[shape->nentries].key = (uint32_t)key;
    shape->nentries++;
    return NDT_OK;
}

void ingest_expo_shape_begin(ingest_expo_shape *shape, const char *buf, ingest_expo_format format)
{
    shape->valid = 0;
    shape->broken = format == INGEST_EXPO_PROTOBUF; /* no lines to keep */
    shape->format = format;
    shape->nbytes = 0;
    shape->nentries = 0;
    shape->tail = 0;
    shape->mark = buf;
}

void ingest_expo_shape_note(ingest_expo_parser *p, const char *key_end, const char *line_end)
{
    ingest_expo_shape *shape = p->shape;
    if (shape->broken)
        return;
    if (!key_end) {
        shape->broken = 1;
        return;
    }
    size_t prefix = (size_t)(key_end - shape->mark);
    if (keep_bytes(shape, shape->mark, prefix) != NDT_OK ||
        add_entry(shape, prefix, (size_t)(key_end - p->line_start)) != NDT_OK) {
        shape->broken = 1;
        return;
    }
    /* A sample is only ever passed on with its LF (expo_emit), and a parse
     * that fails leaves no shape: past line_end is the next line. */
    shape->mark = line_end + 1;
}

void ingest_expo_shape_end(ingest_expo_shape *shape, const char *end, int parsed)
{
    if (!parsed || shape->broken || shape->mark > end)
        return;
    shape->tail = (size_t)(end - shape->mark);
    if (keep_bytes(shape, shape->mark, shape->tail) != NDT_OK)
        return;
    shape->valid = 1;
}

/* ---- replaying -------------------------------------------------------- */

int ingest_expo_shape_replay(const ingest_expo_shape *shape, const char *buf, size_t len,
                             ingest_expo_format format, double *values, int64_t *timestamps_ms)
{
    if (!ingest_expo_shape_valid(shape) || format != shape->format)
        return NDT_AGAIN;
    /* The value functions report errors through a parser; only the
     * fields they read are set (the label scratch is left alone). */
    ingest_expo_parser p;
    ingest_expo_error unused;
    memset(&p, 0, offsetof(ingest_expo_parser, scratch));
    p.err = &unused;
    p.line_complete = 1;
    p.openmetrics = format == INGEST_EXPO_OPENMETRICS;

    if (len == 0)
        buf = ""; /* no offsets from a NULL body */
    const char *s = buf, *end = buf + len;
    const char *kept = shape->bytes;
    for (size_t i = 0; i < shape->nentries; i++) {
        const shape_entry *en = &shape->entries[i];
        if ((size_t)(end - s) < en->prefix || memcmp(s, kept, en->prefix) != 0)
            return NDT_AGAIN;
        s += en->prefix;
        kept += en->prefix;
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl || en->key + (size_t)(nl - s) > INGEST_EXPO_MAX_LINE)
            return NDT_AGAIN;
        p.line_start = s - en->key;
        if (p.openmetrics) {
            const char *v = s;
            if (ingest_expo_om_value(&p, &v, nl, &values[i], &timestamps_ms[i]) != NDT_OK ||
                v != nl)
                return NDT_AGAIN; /* not a number, or an exemplar follows */
        } else if (ingest_expo_text_value(&p, s, nl, &values[i], &timestamps_ms[i]) != NDT_OK) {
            return NDT_AGAIN;
        }
        s = nl + 1;
    }
    if ((size_t)(end - s) != shape->tail)
        return NDT_AGAIN;
    if (shape->tail && memcmp(s, kept, shape->tail) != 0)
        return NDT_AGAIN;
    return NDT_OK;
}
