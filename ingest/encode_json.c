/*
 * encode_json.c: one sample as prometheus-kafka-adapter's JSON message.
 *
 *   {"timestamp":"2026-01-02T03:04:05.678Z","value":"1.5","name":"up",
 *    "labels":{"__name__":"up","job":"j","instance":"h:p"}}
 *
 * Consumers written for prometheus-kafka-adapter (Telefonica) read these
 * messages unchanged.  Where we differ from it, we do so on purpose:
 *   - the timestamp keeps milliseconds (always three digits); the adapter
 *     truncates to seconds, which loses the 20 ms scrape resolution;
 *   - keys come in the order above and labels in series order (__name__
 *     first, then sorted), where Go's map encoding sorts them: the same
 *     JSON object, and a fixed order is cheaper and easier to test;
 *   - <, > and & are not \u-escaped (Go's HTML-safe default): valid JSON
 *     either way.
 * The value is a string formatted like Go's strconv.FormatFloat(v, 'f',
 * -1, 64), which the adapter uses: the shortest digits that read back as
 * the same double, never an exponent, NaN/+Inf/-Inf spelled as Go spells
 * them.  Label bytes that are not valid UTF-8 become \ufffd (as Go's
 * encoder does, one per bad byte) so the message is always valid JSON.
 *
 * Stateless except for a per-thread cache of the last formatted
 * timestamp (all samples of a scrape usually share one).  On a buffer
 * limit the buffer is left as it was and NDT_ERROR returned.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/sink.h"

/* ---- numbers ---------------------------------------------------------- */

/* Lays out the significant digits (no leading/trailing zeros) with
 * decimal exponent exp10 (value = 0.d1d2d3... * 10^(exp10+1)) in fixed
 * notation. */
static int append_fixed(ndt_buf *out, int negative, const char *digits, int ndigits, int exp10)
{
    size_t need = (size_t)ndigits + (size_t)abs(exp10) + 4;
    if (ndt_buf_reserve(out, need) != NDT_OK)
        return NDT_ERROR;
    char *p = out->data + out->len;
    if (negative)
        *p++ = '-';
    if (exp10 < 0) {
        *p++ = '0';
        *p++ = '.';
        for (int i = 0; i < -exp10 - 1; i++)
            *p++ = '0';
        memcpy(p, digits, (size_t)ndigits);
        p += ndigits;
    } else if (exp10 >= ndigits - 1) {
        memcpy(p, digits, (size_t)ndigits);
        p += ndigits;
        for (int i = 0; i < exp10 - (ndigits - 1); i++)
            *p++ = '0';
    } else {
        memcpy(p, digits, (size_t)exp10 + 1);
        p += exp10 + 1;
        *p++ = '.';
        memcpy(p, digits + exp10 + 1, (size_t)(ndigits - exp10 - 1));
        p += ndigits - exp10 - 1;
    }
    out->len = (size_t)(p - out->data);
    return NDT_OK;
}

int ingest_append_go_float(ndt_buf *out, double v)
{
    if (isnan(v))
        return ndt_buf_append(out, "NaN", 3);
    if (isinf(v))
        return ndt_buf_append(out, v > 0 ? "+Inf" : "-Inf", 4);
    if (v == 0)
        return ndt_buf_append_str(out, signbit(v) ? "-0" : "0");
    /* Integers below 2^53 are exact: the common case of counters. */
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v)
        return ndt_buf_append_int(out, (int64_t)v);

    /* Up to 15 significant digits every decimal survives the round trip
     * (DBL_DIG), so the 15-digit rounding, stripped of trailing zeros, is
     * the shortest form when one that short exists; otherwise 16, then 17
     * (always exact). */
    /* Subnormals carry fewer bits: their shortest form can be much
     * shorter than 15 digits (5e-324), so search from one digit up. */
    char tmp[40];
    for (int prec = fabs(v) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    const char *p = tmp;
    int negative = *p == '-';
    if (negative)
        p++;
    char digits[20];
    int ndigits = 0;
    for (; *p != 'e'; p++) {
        if (*p != '.')
            digits[ndigits++] = *p;
    }
    while (ndigits > 1 && digits[ndigits - 1] == '0')
        ndigits--;
    int exp10 = atoi(p + 1);
    return append_fixed(out, negative, digits, ndigits, exp10);
}

/* ---- time ------------------------------------------------------------- */

/* Civil date from days since 1970-01-01 (proleptic Gregorian), by the
 * 400-year era decomposition: no table, no libc time zone machinery. */
static void civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    days += 719468; /* shift the epoch to 0000-03-01 */
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;                                 /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);            /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                  /* [0, 11] from March */
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

int ingest_format_rfc3339_ms(int64_t ms, char *buf, size_t size)
{
    int64_t secs = ms / 1000, milli = ms % 1000;
    if (milli < 0) {
        milli += 1000;
        secs -= 1;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t year;
    int month, day;
    civil_from_days(days, &year, &month, &day);
    return snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)year, month,
                    day, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)milli);
}

/* ---- strings ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid:
 * no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

int ingest_append_json_string(ndt_buf *out, ndt_str s)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case: every byte becomes \ufffd (6 bytes), plus the quotes. */
    if (s.len > (SIZE_MAX - 2) / 6 || ndt_buf_reserve(out, s.len * 6 + 2) != NDT_OK)
        return NDT_ERROR;
    char *p = out->data + out->len;
    const unsigned char *in = (const unsigned char *)s.ptr;
    *p++ = '"';
    for (size_t i = 0; i < s.len;) {
        unsigned char c = in[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *p++ = (char)c;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_valid_len(in + i, s.len - i);
            if (n) {
                memcpy(p, in + i, n);
                p += n;
                i += n;
            } else {
                memcpy(p, "\\ufffd", 6);
                p += 6;
                i++;
            }
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        default:
            memcpy(p, "u00", 3);
            p[3] = hex[c >> 4];
            p[4] = hex[c & 15];
            p += 5;
        }
        i++;
    }
    *p++ = '"';
    out->len = (size_t)(p - out->data);
    return NDT_OK;
}

/* ---- the message ------------------------------------------------------ */

static _Thread_local int64_t cached_ts_ms = INT64_MIN;
static _Thread_local char cached_ts[40];

static int append_timestamp(ndt_buf *out, int64_t ms)
{
    if (ms != cached_ts_ms) {
        ingest_format_rfc3339_ms(ms, cached_ts, sizeof(cached_ts));
        cached_ts_ms = ms;
    }
    return ndt_buf_append_str(out, cached_ts);
}

/* __name__ is the first label by construction; anything else has no name. */
static ndt_str series_metric_name(const ingest_series *series)
{
    if (series->nlabels && ndt_str_eq_cstr(series->labels[0].name, "__name__"))
        return series->labels[0].value;
    return (ndt_str){ "", 0 };
}

static int append_native_side(ndt_buf *out, const char *key, const ingest_native_buckets *b)
{
    int rc = ndt_buf_append_str(out, key);
    for (size_t i = 0; rc == NDT_OK && i < b->n; i++) {
        rc |= ndt_buf_append_str(out, i ? ",[" : "[");
        rc |= ndt_buf_append_int(out, b->index[i]);
        rc |= ndt_buf_append(out, ",\"", 2);
        rc |= ingest_append_go_float(out, b->count[i]);
        rc |= ndt_buf_append(out, "\"]", 2);
    }
    return rc | ndt_buf_append_char(out, ']');
}

/* "native_histogram": numbers that may be fractional are strings in Go's
 * spelling, like "value"; buckets are [index, "count"] pairs. */
static int append_native(ndt_buf *out, const ingest_native_histogram *h)
{
    int rc = ndt_buf_append_str(out, ",\"native_histogram\":{\"schema\":");
    rc |= ndt_buf_append_int(out, h->schema);
    rc |= ndt_buf_append_str(out, ",\"zero_threshold\":\"");
    rc |= ingest_append_go_float(out, h->zero_threshold);
    rc |= ndt_buf_append_str(out, "\",\"zero_count\":\"");
    rc |= ingest_append_go_float(out, h->zero_count);
    rc |= ndt_buf_append_str(out, "\",\"count\":\"");
    rc |= ingest_append_go_float(out, h->count);
    rc |= ndt_buf_append_str(out, "\",\"sum\":\"");
    rc |= ingest_append_go_float(out, h->sum);
    rc |= ndt_buf_append_char(out, '"');
    rc |= append_native_side(out, ",\"positive\":[", &h->positive);
    rc |= append_native_side(out, ",\"negative\":[", &h->negative);
    return rc | ndt_buf_append_char(out, '}');
}

int ingest_encode_json(const ingest_series *series, ndt_buf *out)
{
    size_t start = out->len;
    int rc = ndt_buf_append(out, "{\"timestamp\":\"", 14);
    rc |= append_timestamp(out, series->timestamp_ms);
    rc |= ndt_buf_append(out, "\",\"value\":\"", 11);
    rc |= ingest_append_go_float(out, series->value);
    rc |= ndt_buf_append(out, "\",\"name\":", 9);
    rc |= ingest_append_json_string(out, series_metric_name(series));
    rc |= ndt_buf_append(out, ",\"labels\":{", 11);
    for (size_t i = 0; rc == NDT_OK && i < series->nlabels; i++) {
        if (i)
            rc |= ndt_buf_append_char(out, ',');
        rc |= ingest_append_json_string(out, series->labels[i].name);
        rc |= ndt_buf_append_char(out, ':');
        rc |= ingest_append_json_string(out, series->labels[i].value);
    }
    rc |= ndt_buf_append_char(out, '}');
    if (series->native)
        rc |= append_native(out, series->native);
    rc |= ndt_buf_append_char(out, '}');
    if (rc != NDT_OK) {
        out->len = start;
        return NDT_ERROR;
    }
    return NDT_OK;
}
