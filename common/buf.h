/*
 * buf.h: growable byte buffer with a hard limit.
 *
 * Used for HTTP bodies and encoded Kafka payloads.  The limit is part of
 * the buffer: an append that would pass it fails with NDT_ERROR and leaves
 * the buffer unchanged, so every producer of bytes is bounded by
 * construction (a gzip bomb or a runaway target stops at the limit).
 */
#ifndef NDT_BUF_H
#define NDT_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct ndt_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t limit; /* 0 = unlimited */
} ndt_buf;

void ndt_buf_init(ndt_buf *b, size_t limit);
void ndt_buf_free(ndt_buf *b);
static inline void ndt_buf_reset(ndt_buf *b) { b->len = 0; }
int ndt_buf_reserve(ndt_buf *b, size_t extra);
int ndt_buf_append(ndt_buf *b, const void *data, size_t len);
int ndt_buf_append_str(ndt_buf *b, const char *s);
int ndt_buf_append_char(ndt_buf *b, char c);
int ndt_buf_printf(ndt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a NUL without counting it in len, so data is a C string. */
int ndt_buf_terminate(ndt_buf *b);
/* Appends the shortest text that reads back as the same double
 * (Prometheus style: NaN, +Inf, -Inf for the special values). */
int ndt_buf_append_double(ndt_buf *b, double v);
int ndt_buf_append_int(ndt_buf *b, int64_t v);

#endif
