/*
 * expo_number.c: number parsing for the exposition parsers, see
 * expo_number.h for the grammar and the exactness promise.
 *
 * Why a hand-written fast path: a node-exporter scrape is ~3,000 samples
 * whose values are mostly short decimals ("0", "1.5", "3.2768e+06").
 * strtod needs a NUL-terminated copy, honours the locale and parses hex and
 * "nan(...)" forms we must reject anyway; doing the grammar check and the
 * common conversions here keeps the parser near memory speed.  Anything
 * the fast path cannot do exactly falls back to strtod on a validated,
 * NUL-terminated copy, so correctness never depends on the fast path.
 */
#include "ingest/expo_number.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/ndt.h"

/* Exactly representable powers of ten (10^22 is the last one). */
static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define NUMBER_MAX_FALLBACK 4096 /* longest token copied for strtod */

static int lower(int c) { return c | 0x20; }

/* Case-insensitive match of s[0..len) against a lower-case word. */
static int word_eq(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len != n || len == 0 || lower((unsigned char)s[0]) != word[0])
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)s[i]) != word[i])
            return 0;
    }
    return 1;
}

/* Inf, Infinity (signed or not) and NaN (unsigned), any case. */
static int parse_special(const char *s, size_t len, double *out)
{
    double sign = 1.0;
    const char *p = s;
    size_t n = len;
    if (n && (*p == '+' || *p == '-')) {
        sign = *p == '-' ? -1.0 : 1.0;
        p++;
        n--;
        if (word_eq(p, n, "inf") || word_eq(p, n, "infinity")) {
            *out = sign * INFINITY;
            return NDT_OK;
        }
        return NDT_ERROR;
    }
    if (word_eq(p, n, "inf") || word_eq(p, n, "infinity")) {
        *out = INFINITY;
        return NDT_OK;
    }
    if (word_eq(p, n, "nan")) {
        *out = NAN;
        return NDT_OK;
    }
    return NDT_ERROR;
}

/* Decimal scanned into its parts; see scan_decimal. */
typedef struct decimal {
    int negative;
    uint64_t mantissa;     /* first significant digits */
    int digits;            /* significant digits seen (capped counting) */
    int truncated;         /* more than 19 significant digits */
    int64_t exponent10;    /* value = mantissa * 10^exponent10 (if !truncated) */
} decimal;

/* Reads the longest [+-] digits [. digits] [e [+-] digits] (at least one
 * mantissa digit) at s, collecting its parts.  Returns where it stopped,
 * or NULL if there is no such number at s. */
static const char *scan_decimal_prefix(const char *s, const char *end, decimal *d)
{
    const char *p = s;
    int seen_digit = 0;
    int64_t frac_digits = 0;

    memset(d, 0, sizeof(*d));
    if (p < end && (*p == '+' || *p == '-')) {
        d->negative = *p == '-';
        p++;
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        seen_digit = 1;
        if (d->mantissa == 0 && *p == '0')
            continue;
        if (d->digits < 19)
            d->mantissa = d->mantissa * 10 + (uint64_t)(*p - '0');
        else {
            d->truncated = 1;
            d->exponent10++;
        }
        d->digits++;
    }
    if (p < end && *p == '.') {
        p++;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            seen_digit = 1;
            if (d->mantissa == 0 && *p == '0') {
                frac_digits++;
                continue;
            }
            if (d->digits < 19) {
                d->mantissa = d->mantissa * 10 + (uint64_t)(*p - '0');
                frac_digits++;
            } else {
                d->truncated = 1;
            }
            d->digits++;
        }
    }
    if (!seen_digit)
        return NULL;
    d->exponent10 -= frac_digits;
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        int eneg = 0;
        int64_t e = 0;
        if (q < end && (*q == '+' || *q == '-')) {
            eneg = *q == '-';
            q++;
        }
        if (q == end || *q < '0' || *q > '9')
            return p; /* "1e" is "1" followed by junk: the caller decides */
        for (; q < end && *q >= '0' && *q <= '9'; q++) {
            if (e < 100000000)
                e = e * 10 + (*q - '0');
        }
        d->exponent10 += eneg ? -e : e;
        p = q;
    }
    return p;
}

/* The whole of s[0..len) is a decimal. */
static int scan_decimal(const char *s, size_t len, decimal *d)
{
    return scan_decimal_prefix(s, s + len, d) == s + len ? NDT_OK : NDT_ERROR;
}

static int fallback_strtod(const char *s, size_t len, double *out)
{
    char small[128];
    char *copy = small;
    int rc = NDT_ERROR;

    if (len >= NUMBER_MAX_FALLBACK)
        return NDT_ERROR;
    if (len >= sizeof(small)) {
        copy = malloc(len + 1);
        if (!copy)
            return NDT_ERROR;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    errno = 0;
    char *endp;
    double v = strtod(copy, &endp);
    /* ERANGE on underflow is fine (Go returns the rounded value too);
     * only overflow to infinity is an error. */
    if (endp == copy + len && !isinf(v)) {
        *out = v;
        rc = NDT_OK;
    }
    if (copy != small)
        free(copy);
    return rc;
}

/* The value of a scanned decimal; s[0..len) is its text for strtod. */
static int decimal_value(const decimal *d, const char *s, size_t len, double *out)
{
    if (d->mantissa == 0 && !d->truncated) {
        *out = d->negative ? -0.0 : 0.0;
        return NDT_OK;
    }
    if (!d->truncated && d->mantissa <= (UINT64_C(1) << 53) &&
        d->exponent10 >= -22 && d->exponent10 <= 22) {
        double v = (double)d->mantissa;
        if (d->exponent10 < 0)
            v /= pow10_exact[-d->exponent10];
        else
            v *= pow10_exact[d->exponent10];
        *out = d->negative ? -v : v;
        return NDT_OK;
    }
    return fallback_strtod(s, len, out);
}

int ingest_number_parse_float(const char *s, size_t len, double *out)
{
    decimal d;

    if (len == 0)
        return NDT_ERROR;
    if (scan_decimal(s, len, &d) != NDT_OK)
        return parse_special(s, len, out);
    return decimal_value(&d, s, len, out);
}

const char *ingest_number_scan_decimal(const char *s, const char *end, double *out)
{
    decimal d;
    /* Most sample values are small integers ("0", "1", "4096"): up to
     * nine digits convert exactly without the general machinery. */
    uint32_t v = 0;
    const char *p = s;
    while (p < end && p - s < 9 && (unsigned)(*p - '0') < 10)
        v = v * 10 + (uint32_t)(*p++ - '0');
    if (p > s && (p == end || (*p != '.' && *p != 'e' && *p != 'E' &&
                               (unsigned)(*p - '0') >= 10))) {
        *out = (double)v;
        return p;
    }
    const char *stop = scan_decimal_prefix(s, end, &d);
    if (!stop || decimal_value(&d, s, (size_t)(stop - s), out) != NDT_OK)
        return NULL;
    return stop;
}

int ingest_number_parse_int64(const char *s, size_t len, int64_t *out)
{
    const char *p = s, *end = s + len;
    int negative = 0;
    uint64_t v = 0;
    /* Magnitude limit: INT64_MAX, or INT64_MAX + 1 for a negative. */
    uint64_t limit = (uint64_t)INT64_MAX;

    if (p < end && (*p == '+' || *p == '-')) {
        negative = *p == '-';
        p++;
    }
    if (p == end)
        return NDT_ERROR;
    if (negative)
        limit++;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return NDT_ERROR;
        unsigned digit = (unsigned)(*p - '0');
        if (v > (limit - digit) / 10)
            return NDT_ERROR;
        v = v * 10 + digit;
    }
    *out = negative ? (int64_t)(0 - v) : (int64_t)v;
    return NDT_OK;
}

/* [-]digits[.digits] converted exactly; NDT_AGAIN if not of that form. */
static int om_timestamp_exact(const char *s, size_t len, int64_t *out_ms)
{
    const char *p = s, *end = s + len;
    int negative = 0;
    uint64_t ms = 0;
    const uint64_t limit = (uint64_t)INT64_MAX;

    if (p < end && (*p == '+' || *p == '-')) {
        negative = *p == '-';
        p++;
    }
    const char *int_start = p;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (ms > (limit / 1000 - 9) / 10)
            return NDT_AGAIN; /* let the double path decide on range */
        ms = ms * 10 + (uint64_t)(*p - '0');
    }
    int int_digits = (int)(p - int_start);
    ms *= 1000;
    int frac_digits = 0;
    if (p < end && *p == '.') {
        p++;
        static const uint64_t scale[] = { 100, 10, 1 };
        for (; p < end && *p >= '0' && *p <= '9'; p++, frac_digits++) {
            if (frac_digits < 3)
                ms += (uint64_t)(*p - '0') * scale[frac_digits];
        }
    }
    if (p != end || (int_digits == 0 && frac_digits == 0))
        return NDT_AGAIN;
    *out_ms = negative ? -(int64_t)ms : (int64_t)ms;
    return NDT_OK;
}

int ingest_number_parse_om_timestamp(const char *s, size_t len, int64_t *out_ms)
{
    int rc = om_timestamp_exact(s, len, out_ms);
    if (rc != NDT_AGAIN)
        return rc;
    decimal d;
    if (len == 0 || scan_decimal(s, len, &d) != NDT_OK)
        return NDT_ERROR; /* Inf and NaN are no timestamps */
    double seconds;
    if (ingest_number_parse_float(s, len, &seconds) != NDT_OK)
        return NDT_ERROR;
    double ms = seconds * 1000.0;
    if (!(ms > -9.2e18 && ms < 9.2e18))
        return NDT_ERROR;
    *out_ms = (int64_t)ms;
    return NDT_OK;
}
