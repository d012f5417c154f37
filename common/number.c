/*
 * number.c: number parsing for the exposition parsers and the harmonizer's
 * decoders, see number.h for the grammar and the exactness promise.
 *
 * Why a hand-written fast path: a node-exporter scrape is ~3,000 samples
 * whose values are mostly short decimals ("0", "1.5", "3.2768e+06").
 * strtod needs a NUL-terminated copy, honours the locale and parses hex and
 * "nan(...)" forms we must reject anyway; doing the grammar check and the
 * common conversions here keeps the parser near memory speed.  Anything
 * the fast path cannot do exactly falls back to strtod on a validated,
 * NUL-terminated copy, so correctness never depends on the fast path.
 */
#include "common/number.h"

#include <errno.h>
#include <float.h>
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
    int64_t frac_digits = 0;

    memset(d, 0, sizeof(*d));
    if (p < end && (*p == '+' || *p == '-')) {
        d->negative = *p == '-';
        p++;
    }
    /* Leading zeros, then the significant digits: the first 19 go into
     * the mantissa, the rest only count (one loop per run of digits, no
     * per-digit bookkeeping: values are most of what is parsed). */
    const char *start = p;
    while (p < end && *p == '0')
        p++;
    const char *sig = p;
    while (p < end && (unsigned)(*p - '0') < 10)
        p++;
    int seen_digit = p > start;
    int64_t n = p - sig;
    for (const char *q = sig; q < sig + (n < 19 ? n : 19); q++)
        d->mantissa = d->mantissa * 10 + (uint64_t)(*q - '0');
    if (n > 19) {
        d->truncated = 1;
        d->exponent10 += n - 19;
    }
    d->digits = n > INT32_MAX ? INT32_MAX : (int)n;
    if (p < end && *p == '.') {
        start = ++p;
        if (d->mantissa == 0) { /* zeros right of the point are not significant yet */
            while (p < end && *p == '0')
                p++;
            frac_digits = p - start;
        }
        sig = p;
        while (p < end && (unsigned)(*p - '0') < 10)
            p++;
        seen_digit |= p > start;
        n = p - sig;
        int64_t room = d->digits < 19 ? 19 - d->digits : 0;
        int64_t take = n < room ? n : room;
        for (const char *q = sig; q < sig + take; q++)
            d->mantissa = d->mantissa * 10 + (uint64_t)(*q - '0');
        frac_digits += take;
        if (n > take)
            d->truncated = 1;
        d->digits = (int64_t)d->digits + n > INT32_MAX ? INT32_MAX : (int)(d->digits + n);
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

#if defined(__x86_64__) && LDBL_MANT_DIG == 64
/* Up to 19 digits and a power of ten up to 27 in the x87's 64-bit
 * significand, for the shortest round-trip decimals (17 digits, such as
 * "0.19358974368831172") that Clinger's path cannot take.  The mantissa
 * and 10^|e| (5^27 < 2^64) are exact there, so m * 10^e or m / 10^e is
 * rounded once, to within half an extended ulp of the true value; the
 * second rounding to double then gives the correctly rounded result,
 * which is strtod's, unless the extended result sits exactly on a
 * double's halfway point (its 11 low bits are 0x400), where the true
 * value may lie on either side: strtod decides those.  Only while the
 * x87 computes with 64-bit precision (another precision control setting
 * would round to 53 bits first). */
static const long double pow10_extended[] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L,
};

static int extended_value(const decimal *d, double *out)
{
    int64_t e = d->exponent10;
    if (d->truncated || e < -27 || e > 27)
        return NDT_AGAIN;
    volatile long double one = 1.0L, tiny = 0x1p-63L;
    if (one + tiny == one)
        return NDT_AGAIN; /* the x87 rounds to fewer than 64 bits */
    long double m = (long double)d->mantissa;
    long double x = e < 0 ? m / pow10_extended[-e] : m * pow10_extended[e];
    uint64_t significand;
    memcpy(&significand, &x, sizeof(significand)); /* the low 8 bytes */
    if ((significand & 0x7FF) == 0x400)
        return NDT_AGAIN;
    double v = (double)x;
    *out = d->negative ? -v : v;
    return NDT_OK;
}
#else
static int extended_value(const decimal *d, double *out)
{
    (void)d, (void)out;
    return NDT_AGAIN;
}
#endif

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
    if (extended_value(d, out) == NDT_OK)
        return NDT_OK;
    return fallback_strtod(s, len, out);
}

int ndt_number_parse_float(const char *s, size_t len, double *out)
{
    decimal d;

    if (len == 0)
        return NDT_ERROR;
    if (scan_decimal(s, len, &d) != NDT_OK)
        return parse_special(s, len, out);
    return decimal_value(&d, s, len, out);
}

/* The rest of a short unsigned decimal such as "1.445721e+06" or
 * "17538.17" (node-exporter's values): p is at the '.', whole the value
 * of the fewer than nine digits before it.  Up to nine fraction digits
 * and a three-digit exponent, read in one pass, then Clinger's exact
 * path, as decimal_value would take it with the same mantissa and power
 * (the same digits, so the same bits); NULL for anything else (more
 * digits, no fraction digit, "1.5e" and the like), which the general
 * scanner then reads from the start.  The general path scans the digits
 * twice and fills a decimal first: this one costs a third of it. */
static const char *scan_short_fraction(const char *p, const char *end, uint32_t whole,
                                       double *out)
{
    const char *f = ++p;
    uint64_t m = whole;
    while (p < end && p - f < 9 && (unsigned)(*p - '0') < 10)
        m = m * 10 + (uint64_t)(*p++ - '0');
    if (p == f || (p < end && (unsigned)(*p - '0') < 10))
        return NULL;
    int e10 = -(int)(p - f);
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        int negative = 0, e = 0;
        if (q < end && (*q == '+' || *q == '-'))
            negative = *q++ == '-';
        const char *digits = q;
        while (q < end && q - digits < 3 && (unsigned)(*q - '0') < 10)
            e = e * 10 + (*q++ - '0');
        if (q == digits || (q < end && (unsigned)(*q - '0') < 10))
            return NULL;
        e10 += negative ? -e : e;
        p = q;
    }
    if (m > (UINT64_C(1) << 53) || e10 < -22 || e10 > 22)
        return NULL; /* not exact in a double, or not an exact power */
    double v = (double)m;
    *out = e10 < 0 ? v / pow10_exact[-e10] : v * pow10_exact[e10];
    return p;
}

const char *ndt_number_scan_decimal(const char *s, const char *end, double *out)
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
    if (p > s && p - s < 9 && *p == '.') {
        const char *stop = scan_short_fraction(p, end, v, out);
        if (stop)
            return stop;
    }
    const char *stop = scan_decimal_prefix(s, end, &d);
    if (!stop || decimal_value(&d, s, (size_t)(stop - s), out) != NDT_OK)
        return NULL;
    return stop;
}

int ndt_number_parse_int64(const char *s, size_t len, int64_t *out)
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

int ndt_number_parse_om_timestamp(const char *s, size_t len, int64_t *out_ms)
{
    int rc = om_timestamp_exact(s, len, out_ms);
    if (rc != NDT_AGAIN)
        return rc;
    decimal d;
    if (len == 0 || scan_decimal(s, len, &d) != NDT_OK)
        return NDT_ERROR; /* Inf and NaN are no timestamps */
    double seconds;
    if (ndt_number_parse_float(s, len, &seconds) != NDT_OK)
        return NDT_ERROR;
    double ms = seconds * 1000.0;
    if (!(ms > -9.2e18 && ms < 9.2e18))
        return NDT_ERROR;
    *out_ms = (int64_t)ms;
    return NDT_OK;
}
