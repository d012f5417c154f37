/*
 * ndt.h: the few definitions every ndtpipe module shares.
 *
 * Return codes follow one convention everywhere (nginx's idea): a function
 * that can fail returns an int status, NDT_OK on success, NDT_ERROR on a
 * failure whose reason was written to the caller's error buffer, NDT_AGAIN
 * when the operation would block and should be retried later, NDT_EBADCONF
 * when the user's configuration is invalid (the command then exits 2).  Values are
 * returned through out-parameters, never mixed with the status.
 *
 * ndt_str is a borrowed view of bytes (not NUL-terminated).  It is how the
 * hot path passes names and label values around without copying them out of
 * the scrape buffer.
 */
#ifndef NDT_H
#define NDT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NDT_OK 0
#define NDT_ERROR (-1)
#define NDT_AGAIN (-2)
#define NDT_EBADCONF (-3) /* the user's configuration or input is invalid (exit 2) */

/* Exit codes of the contract. */
#define NDT_EXIT_OK 0
#define NDT_EXIT_FAILURE 1
#define NDT_EXIT_USAGE 2

#define NDT_ERRBUF_SIZE 512

typedef struct ndt_str {
    const char *ptr;
    size_t len;
} ndt_str;

#define NDT_STR_LIT(s) ((ndt_str){ (s), sizeof(s) - 1 })

static inline ndt_str ndt_str_from_cstr(const char *s)
{
    ndt_str out = { s, s ? strlen(s) : 0 };
    return out;
}

static inline int ndt_str_eq(ndt_str a, ndt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Byte-wise order (memcmp, then the shorter first): the order Prometheus
 * sorts label names in, and the one every sorted label list here uses. */
static inline int ndt_str_cmp(ndt_str a, ndt_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static inline int ndt_str_eq_cstr(ndt_str a, const char *b)
{
    return ndt_str_eq(a, ndt_str_from_cstr(b));
}

#define NDT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NDT_UNUSED(x) ((void)(x))

#endif
