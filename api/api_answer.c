/*
 * api_answer.c: the small JSON writers every answer uses, and error
 * answers.  Hand-written on ndt_buf rather than through cJSON trees
 * because a what-if answer is a handful of fields and sits on the hot path.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "api/api_internal.h"

unsigned api_fail(api_answer *a, unsigned status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->detail, sizeof(a->detail), fmt, ap);
    va_end(ap);
    a->status = status;
    a->code = code;
    return status;
}

int api_json_string(ndt_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (ndt_buf_append_char(b, '"') != NDT_OK)
        return NDT_ERROR;
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (ndt_buf_append(b, run, (size_t)(s - run)) != NDT_OK)
            return NDT_ERROR;
        char esc[7] = { '\\', (char)c, 0 };
        size_t n = 2;
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\t')
            esc[1] = 't';
        else if (c < 0x20) {
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            n = 6;
        }
        if (ndt_buf_append(b, esc, n) != NDT_OK)
            return NDT_ERROR;
        run = s + 1;
    }
    if (ndt_buf_append(b, run, (size_t)(s - run)) != NDT_OK)
        return NDT_ERROR;
    return ndt_buf_append_char(b, '"');
}

int api_json_number(ndt_buf *b, double v)
{
    /* JSON has no NaN or infinity: an unknown number is null. */
    if (!isfinite(v))
        return ndt_buf_append_str(b, "null");
    return ndt_buf_append_double(b, v);
}
