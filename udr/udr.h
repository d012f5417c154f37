/*
 * udr.h: the Unified Data Repository, where harmonised entities live.
 *
 * One interface, several backends chosen by the URL at open time (the idea
 * of Redis's ae.c over ae_epoll.c / ae_kqueue.c):
 *
 *   sqlite:PATH                          embedded default (udr_sqlite.c)
 *   influx:http://HOST:PORT/DB           InfluxDB 1.x /write (udr_influx.c)
 *   influx2:http://HOST:PORT/ORG/BUCKET  InfluxDB 2.x /api/v2/write (udr_influx.c)
 *
 * The data model is the same everywhere: a point is one entity's attributes
 * at one instant (entity type = measurement, entity id = tag `id`, fields =
 * attributes, millisecond timestamps); a relationship is (subject,
 * predicate, object) valid over [valid_from, valid_to).  Writing the same
 * series (type, id, attribute) at the same timestamp twice stores one value,
 * the last written: a replay after a crash rewrites, it never duplicates.
 *
 * Promises:
 *   - Writes are buffered; udr_flush() returns NDT_OK only once every point
 *     written before it is durable in the backend or, for InfluxDB while it
 *     is unreachable, in the on-disk spool that is replayed in order before
 *     anything newer.  Callers commit their input offsets after udr_flush().
 *   - Everything a caller passes in is copied; nothing is retained.
 *   - A handle is not thread-safe: one thread uses it at a time.
 *   - Reads hand out views valid only during the callback.
 */
#ifndef NDT_UDR_H
#define NDT_UDR_H

#include <stddef.h>
#include <stdint.h>

#include "common/ndt.h"

/* A relationship still in force has valid_to_ms = UDR_OPEN. */
#define UDR_OPEN INT64_MAX

typedef struct udr udr;

typedef enum udr_field_kind {
    UDR_FIELD_DOUBLE = 0,
    UDR_FIELD_STRING,
} udr_field_kind;

typedef struct udr_field {
    const char *name;
    udr_field_kind kind;
    double number;       /* UDR_FIELD_DOUBLE */
    const char *text;    /* UDR_FIELD_STRING */
} udr_field;

typedef struct udr_point {
    const char *type;    /* entity type, e.g. "ServiceComponent" */
    const char *id;      /* entity id, urn:ngsi-ld:<Type>:<local-id> */
    int64_t ts_ms;
    const udr_field *fields;
    size_t nfields;
} udr_point;

typedef struct udr_relation {
    const char *subject;
    const char *predicate; /* e.g. "isHostedBy" */
    const char *object;
    int64_t valid_from_ms;
    int64_t valid_to_ms;   /* UDR_OPEN while in force */
} udr_relation;

typedef struct udr_options {
    const char *spool_dir;     /* InfluxDB: where batches wait while it is down */
    size_t spool_max_bytes;    /* bound of the spool; 0 = 64 MiB */
    size_t batch_max_bytes;    /* line protocol bytes per request; 0 = 1 MiB */
    int max_retries;           /* per request before spooling; 0 = 3, negative = none */
    int timeout_ms;            /* per request; 0 = 5000 */
    int gzip_level;            /* request bodies; 0 = 1 (fastest), negative = not compressed */
} udr_options;

/* Counters, for logs, /metrics and tests. */
typedef struct udr_stats {
    uint64_t points_written;   /* accepted by udr_write_points */
    uint64_t points_sent;      /* acknowledged by the backend */
    uint64_t points_spooled;   /* went to the on-disk spool */
    uint64_t points_replayed;  /* left the spool for the backend */
    uint64_t points_dropped;   /* lost at the spool's bound (counted, logged) */
    uint64_t requests;         /* HTTP requests made */
    uint64_t retries;          /* HTTP requests that were retries */
} udr_stats;

/* Called once per point read; a non-NDT_OK return stops the read. */
typedef int (*udr_point_fn)(void *ctx, const udr_point *p);
typedef int (*udr_relation_fn)(void *ctx, const udr_relation *r);

/* Opens url (see above).  opts may be NULL.  NDT_EBADCONF for a URL the
 * user must fix, NDT_ERROR when the backend cannot be opened. */
int udr_open(udr **out, const char *url, const udr_options *opts,
             char *err, size_t errlen);

int udr_write_points(udr *u, const udr_point *points, size_t n,
                     char *err, size_t errlen);

/* A relationship change.  A new object for (subject, predicate) closes the
 * interval of the previous one at the new one's valid_from_ms. */
int udr_write_relation(udr *u, const udr_relation *r, char *err, size_t errlen);

int udr_flush(udr *u, char *err, size_t errlen);

/* The same in two steps, so that a caller can go on encoding while a
 * flush is in flight (the harmonizer polls and encodes the next batch
 * while InfluxDB stores the previous one).  udr_flush_start() hands over
 * what was written so far and returns a ticket; udr_flush_done() says
 * whether everything up to that ticket is durable: NDT_OK, NDT_AGAIN
 * while in flight (wait = 0), or NDT_ERROR.  Only after NDT_OK may the
 * caller commit the input behind the ticket.  A failure is sticky: every
 * later start/done reports it until udr_flush() has returned it once.
 * Backends without a sender thread (sqlite:) flush in udr_flush_start(). */
int udr_flush_start(udr *u, uint64_t *ticket, char *err, size_t errlen);
int udr_flush_done(udr *u, uint64_t ticket, int wait, char *err, size_t errlen);

/* The latest value of every attribute of every entity of type, one point
 * per entity (its timestamp is the newest of its attributes'). */
int udr_read_latest(udr *u, const char *type, udr_point_fn fn, void *ctx,
                    char *err, size_t errlen);

/* Every point of type with from_ms <= ts < to_ms, by time then id. */
int udr_read_range(udr *u, const char *type, int64_t from_ms, int64_t to_ms,
                   udr_point_fn fn, void *ctx, char *err, size_t errlen);

/* Relationships in force at at_ms (valid_from <= at < valid_to), in no
 * particular order. */
int udr_read_relations(udr *u, int64_t at_ms, udr_relation_fn fn, void *ctx,
                       char *err, size_t errlen);

void udr_get_stats(const udr *u, udr_stats *out);

/* Flushes what it can (errors are logged) and frees the handle. */
void udr_close(udr *u);

#endif
