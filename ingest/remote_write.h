/*
 * remote_write.h: decoding Prometheus remote-write 1.0 requests (internal
 * to ingest/).
 *
 * A request body is a snappy-compressed (block format) protobuf
 * WriteRequest.  Decoding turns it into ingest_series, one per sample, with
 * the sender's labels laid out as everywhere in ingest/ (__name__ first,
 * the others sorted by name).  All memory, protobuf-c's included, comes from
 * the caller's arena, so a request costs no malloc and its size is bounded
 * by the arena's cap as well as by max_decoded.
 */
#ifndef INGEST_REMOTE_WRITE_H
#define INGEST_REMOTE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "ingest/sample.h"

typedef struct ingest_rw_request {
    ingest_series *series;      /* one per sample, in request order */
    size_t nseries;
    size_t ntimeseries;
    size_t histograms_skipped;  /* native histograms: not carried yet */
    size_t unnamed_skipped;     /* series without __name__ */
} ingest_rw_request;

/* Decodes body[0..len).  NDT_OK, or NDT_ERROR with a reason meant for the
 * sender (it becomes the 400 response): bad snappy, a decoded size over
 * max_decoded, bad protobuf, or the arena's cap. */
int ingest_rw_decode(const char *body, size_t len, size_t max_decoded, ndt_arena *arena,
                     ingest_rw_request *out, char *err, size_t errlen);

#endif
