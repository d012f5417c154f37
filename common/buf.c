/*
 * buf.c: growable byte buffer with a hard limit, see buf.h.
 */
#include "buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ndt.h"

void ndt_buf_init(ndt_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void ndt_buf_free(ndt_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int ndt_buf_reserve(ndt_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return NDT_ERROR;
    size_t need = b->len + extra + 1; /* room for a terminating NUL */
    if (b->limit && need > b->limit + 1)
        return NDT_ERROR;
    if (need <= b->cap)
        return NDT_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->limit && cap > b->limit + 1)
        cap = b->limit + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return NDT_ERROR;
    b->data = p;
    b->cap = cap;
    return NDT_OK;
}

int ndt_buf_append(ndt_buf *b, const void *data, size_t len)
{
    if (ndt_buf_reserve(b, len) != NDT_OK)
        return NDT_ERROR;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return NDT_OK;
}

int ndt_buf_append_str(ndt_buf *b, const char *s) { return ndt_buf_append(b, s, strlen(s)); }

int ndt_buf_append_char(ndt_buf *b, char c) { return ndt_buf_append(b, &c, 1); }

int ndt_buf_printf(ndt_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || ndt_buf_reserve(b, (size_t)n) != NDT_OK)
        return NDT_ERROR;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return NDT_OK;
}

int ndt_buf_terminate(ndt_buf *b)
{
    if (ndt_buf_reserve(b, 0) != NDT_OK)
        return NDT_ERROR;
    b->data[b->len] = '\0';
    return NDT_OK;
}

int ndt_buf_append_double(ndt_buf *b, double v)
{
    char tmp[32];
    if (isnan(v))
        return ndt_buf_append(b, "NaN", 3);
    if (isinf(v))
        return ndt_buf_append_str(b, v > 0 ? "+Inf" : "-Inf");
    /* Integers print exactly; otherwise find the shortest round-trip form. */
    if (fabs(v) < 1e15 && v == (double)(int64_t)v) { /* range first: the cast is UB past int64 */
        snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
        return ndt_buf_append_str(b, tmp);
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return ndt_buf_append_str(b, tmp);
}

int ndt_buf_append_int(ndt_buf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    return ndt_buf_append(b, tmp, (size_t)n);
}
