/*
 * expo.h: parsers for the Prometheus text exposition format 0.0.4 and the
 * OpenMetrics 1.0 text format (internal to ingest/).
 *
 * Zero-copy: names, label names and label values that need no unescaping
 * point into the input buffer; unescaped values, label arrays and
 * exemplars are allocated from the caller's arena.  Everything passed to
 * the callback stays valid until that arena is reset, so the scraper can
 * keep references while it assembles a batch.  The parser itself keeps no
 * arena memory across callbacks: a callback that retains nothing may reset
 * the arena after each sample to parse a huge input in constant memory.
 *
 * The parser is strict in the way promtool and Prometheus's own scrape
 * parsers are (what one rejects, the other should reject too); the first
 * error stops the parse and is reported as line:col: reason.
 */
#ifndef INGEST_EXPO_H
#define INGEST_EXPO_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/ndt.h"
#include "ingest/sample.h"

/* Bounds: a longer line, or a sample with more labels, is rejected. */
#define INGEST_EXPO_MAX_LINE (1024 * 1024)
#define INGEST_EXPO_MAX_LABELS 512

typedef enum ingest_expo_format {
    INGEST_EXPO_TEXT = 0,     /* text/plain; version=0.0.4 */
    INGEST_EXPO_OPENMETRICS,  /* application/openmetrics-text; version=1.0.0 */
    INGEST_EXPO_PROTOBUF,     /* delimited io.prometheus.client.MetricFamily */
} ingest_expo_format;

typedef struct ingest_expo_error {
    uint32_t line;            /* 1-based (protobuf: the metric family's number) */
    uint32_t col;             /* 1-based, in bytes */
    int binary;               /* protobuf: no lines, offset says where */
    size_t offset;            /* protobuf: byte offset of the family in the body */
    char reason[200];
} ingest_expo_error;

/* "line:col: reason", or "byte N: reason" for the protobuf format. */
void ingest_expo_error_format(const ingest_expo_error *err, char *buf, size_t size);

/* Called once per sample, in exposition order.  Return NDT_OK to go on,
 * anything else to stop the parse (ingest_expo_parse then returns it). */
typedef int (*ingest_expo_sample_fn)(void *ctx, const ingest_sample *sample);

/* Parses buf[0..len).  fn may be NULL (validation only); err may be NULL.
 * Returns NDT_OK, NDT_ERROR with *err filled in
 * (including when the arena's cap is hit: "out of memory for this scrape"),
 * or whatever non-NDT_OK value the callback returned. */
int ingest_expo_parse(const char *buf, size_t len, ingest_expo_format format,
                      ndt_arena *arena, ingest_expo_sample_fn fn, void *ctx,
                      ingest_expo_error *err);

/* ---- page shapes: parsing a page again without its names and labels --
 *
 * A target serves the same lines scrape after scrape: only the values (and
 * timestamps) change, the names, labels, HELP and TYPE lines do not.  A
 * shape is what a successful parse of a text or OpenMetrics page leaves of
 * it: every byte but the samples' values and timestamps, and where each
 * sample's name and labels end.  A later page that has those very bytes in
 * that order, values and timestamps aside, yields the same samples with
 * the same names, labels and families: the grammar decides a line's name
 * and labels from those bytes alone, and nothing that comes after a value
 * depends on it.  Replaying the shape over such a page reads only the
 * values and timestamps (with the parser's own functions, so a value the
 * parser would refuse is refused).  Anything else in the page (a line
 * added, removed or changed, an exemplar, another format) makes the
 * replay decline; the caller then parses in full, which judges the page
 * and records a new shape.  Prometheus's scrape cache rests on the same
 * observation (the series of a known line are not built again). */
typedef struct ingest_expo_shape ingest_expo_shape;

ingest_expo_shape *ingest_expo_shape_new(void);
void ingest_expo_shape_free(ingest_expo_shape *shape);
/* Whether the shape holds a page (a successful recording). */
int ingest_expo_shape_valid(const ingest_expo_shape *shape);
/* The number of samples of the recorded page. */
size_t ingest_expo_shape_samples(const ingest_expo_shape *shape);
/* Bytes the shape holds (its part of a target's memory). */
size_t ingest_expo_shape_bytes(const ingest_expo_shape *shape);

/* ingest_expo_parse, also recording the page's shape into `shape` (which
 * is valid afterwards only if the parse returned NDT_OK and the format is
 * text or OpenMetrics; a recording that runs out of memory leaves it
 * invalid without failing the parse). */
int ingest_expo_parse_recording(const char *buf, size_t len, ingest_expo_format format,
                                ndt_arena *arena, ingest_expo_sample_fn fn, void *ctx,
                                ingest_expo_error *err, ingest_expo_shape *shape);

/* Reads a page of the recorded shape: on NDT_OK values[i] and
 * timestamps_ms[i] (INGEST_NO_TIMESTAMP if absent) hold the i-th sample's,
 * for every sample of the shape, exactly as ingest_expo_parse would have
 * passed them.  NDT_AGAIN (arrays partly written) when the page is not of
 * that shape or anything in it needs the full parser. */
int ingest_expo_shape_replay(const ingest_expo_shape *shape, const char *buf, size_t len,
                             ingest_expo_format format, double *values, int64_t *timestamps_ms);

/* The format a Content-Type header announces; text 0.0.4 for anything
 * unknown or missing, as Prometheus does.  Protobuf only when the header
 * names the delimited MetricFamily encoding exactly. */
ingest_expo_format ingest_expo_format_from_content_type(const char *content_type);

/* The media type of the protobuf exposition, as Prometheus asks for it. */
#define INGEST_EXPO_PROTOBUF_MEDIA_TYPE                                                    \
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"             \
    "encoding=delimited"

/* Accept header a scraper sends: OpenMetrics preferred, text fallback. */
#define INGEST_EXPO_ACCEPT_HEADER                                                          \
    "application/openmetrics-text;version=1.0.0;q=0.5,"                                    \
    "application/openmetrics-text;version=0.0.1;q=0.4,"                                    \
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"

#endif
