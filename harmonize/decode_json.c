/*
 * decode_json.c: one prometheus-kafka-adapter message back into a sample:
 *
 *   {"timestamp":"2026-01-02T03:04:05.678Z","value":"1.5","name":"up",
 *    "labels":{"__name__":"up","job":"j","instance":"h:p"}}
 *
 * A hand parser rather than cJSON: every sample of the json format is a
 * message of its own, and a tree of heap nodes per sample costs more than
 * the parse.  It reads RFC 8259 JSON strictly (no trailing commas, no
 * comments, no control bytes in strings, nothing after the object) but is
 * liberal in what the adapter's consumers meet: keys in any order, keys it
 * does not know skipped (any JSON value, nested at most 32 deep), the
 * value as a string or a bare number, the name from "name" or from
 * labels.__name__ (both present must agree), timestamps with any number
 * of fraction digits (truncated to ms, as Go's UnixMilli does) and a Z or
 * a numeric offset.  "native_histogram" (docs/KAFKA.md) is read into
 * hdl_sample.native.  Values use the exposition grammar (Go's ParseFloat
 * without hex: NaN, +Inf, -Inf, decimals).
 *
 * Strings without escapes are views into the message; escaped ones are
 * unescaped into one scratch area the size of the message (unescaping
 * never makes a string longer: \uXXXX is 6 bytes for at most 3, a
 * surrogate pair 12 for 4), on the stack for small messages.  A lone
 * surrogate becomes U+FFFD, as Go's decoder does.
 *
 * Speed (docs/PERFORMANCE.md, bench/harmonize.sh): a message is a sample,
 * so its fixed costs count as much as its bytes.  Strings are scanned 16
 * bytes at a time and the common one (no blank before it, no escape) is
 * read inline; punctuation is checked inline before any blank skipping;
 * keys are compared without strlen; the last timestamp string is kept
 * per thread (a scrape's samples share one); nothing is cleared or copied
 * that is written before it is read.  What it accepts and reads is held
 * to cJSON's reading of the same bytes by tests/fuzz/fuzz_decode_json_cjson.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/number.h"
#include "harmonize/decode_internal.h"

/* Strings are scanned sixteen bytes at a time with SSE2 (every x86-64 has
 * it), eight with 64-bit words on other little-endian machines, else byte
 * by byte: label names and values are most of a message's bytes. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSON_SWAR 1
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#define JSON_SSE2 1
#endif

#define JSON_MAX_DEPTH 32
#define JSON_STACK_SCRATCH 2048

typedef struct json_reader {
    const char *start;
    const char *p;
    const char *end;
    char *scratch; /* unescaped strings, never more than the message */
    size_t scratch_used;
    char *err;
    size_t errlen;
} json_reader;

static int fail_at(json_reader *r, const char *p, const char *what)
{
    snprintf(r->err, r->errlen, "json: byte %zu: %s", (size_t)(p - r->start), what);
    return NDT_EBADCONF;
}

static void skip_ws(json_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int expect_slow(json_reader *r, char c)
{
    skip_ws(r);
    if (r->p >= r->end || *r->p != c) {
        char why[32];
        snprintf(why, sizeof(why), "expected '%c'", c);
        return fail_at(r, r->p, r->p >= r->end ? "message ends early" : why);
    }
    r->p++;
    return NDT_OK;
}

/* The punctuation at r->p, inline when no blank precedes it (the
 * encoders write none): a message is mostly punctuation and strings. */
static inline int expect(json_reader *r, char c)
{
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return NDT_OK;
    }
    return expect_slow(r, c);
}

static int comma_or_close_slow(json_reader *r, char close, int *more)
{
    skip_ws(r);
    if (r->p < r->end && (*r->p == ',' || *r->p == close)) {
        *more = *r->p++ == ',';
        return NDT_OK;
    }
    char why[32];
    snprintf(why, sizeof(why), "expected ',' or '%c'", close);
    return fail_at(r, r->p, r->p >= r->end ? "message ends early" : why);
}

/* After a member or an element: a comma (*more = 1) or the closing
 * bracket (*more = 0). */
static inline int comma_or_close(json_reader *r, char close, int *more)
{
    if (r->p < r->end && (*r->p == ',' || *r->p == close)) {
        *more = *r->p++ == ',';
        return NDT_OK;
    }
    return comma_or_close_slow(r, close, more);
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return NDT_ERROR;
    }
    *out = v;
    return NDT_OK;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* A \u escape at p (pointing at the 'u'); advances p past it, and past a
 * low surrogate that completes a pair. */
static int unescape_u(json_reader *r, const char **pp, char **oo)
{
    const char *p = *pp;
    unsigned cp, lo;
    if (r->end - p < 5 || hex4(p + 1, &cp) != NDT_OK)
        return fail_at(r, p - 1, "\\u needs four hex digits");
    p += 5;
    if (cp >= 0xD800 && cp <= 0xDBFF && r->end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
        hex4(p + 2, &lo) == NDT_OK && lo >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        cp = 0xFFFD;
    }
    *oo = put_utf8(*oo, cp);
    *pp = p;
    return NDT_OK;
}

/* The first byte in [p, end) that ends the plain part of a string: '"',
 * '\\' or a control byte (end if none). */
static inline const char *plain_end(const char *p, const char *end)
{
#ifdef JSON_SSE2
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i below_space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* Signed compare: bytes >= 0x80 are negative, so mask them out of
         * "below 0x20" with x's own high bit (UTF-8 is plain). */
        __m128i control = _mm_andnot_si128(x, _mm_cmplt_epi8(x, below_space));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                _mm_cmpeq_epi8(x, backslash)), control);
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
#ifdef JSON_SWAR
    const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
    while (end - p >= 8) {
        uint64_t w, q, b;
        memcpy(&w, p, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        /* The lowest flagged byte is exact (borrows only run upwards). */
        uint64_t hit = (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w)) & high;
        if (hit)
            return p + (__builtin_ctzll(hit) >> 3);
        p += 8;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    return p;
}

/* A string at r->p (after blanks, on its opening quote), the general
 * case: escapes are undone into the scratch area. */
static int read_string_slow(json_reader *r, ndt_str *out)
{
    skip_ws(r);
    if (r->p >= r->end || *r->p != '"')
        return fail_at(r, r->p, r->p >= r->end ? "message ends early" : "expected a string");
    const char *p = plain_end(++r->p, r->end);
    if (p < r->end && *p == '"') {
        *out = (ndt_str){ r->p, (size_t)(p - r->p) };
        r->p = p + 1;
        return NDT_OK;
    }
    char *o = r->scratch + r->scratch_used, *first = o;
    memcpy(o, r->p, (size_t)(p - r->p));
    o += p - r->p;
    while (p < r->end && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return fail_at(r, p, "control byte in a string (must be escaped)");
        if (c != '\\') {
            *o++ = *p++;
            continue;
        }
        if (++p >= r->end)
            break;
        switch (*p) {
        case '"': *o++ = '"'; p++; break;
        case '\\': *o++ = '\\'; p++; break;
        case '/': *o++ = '/'; p++; break;
        case 'b': *o++ = '\b'; p++; break;
        case 'f': *o++ = '\f'; p++; break;
        case 'n': *o++ = '\n'; p++; break;
        case 'r': *o++ = '\r'; p++; break;
        case 't': *o++ = '\t'; p++; break;
        case 'u': {
            int rc = unescape_u(r, &p, &o);
            if (rc != NDT_OK)
                return rc;
            break;
        }
        default:
            return fail_at(r, p - 1, "unknown escape in a string");
        }
    }
    if (p >= r->end)
        return fail_at(r, p, "message ends inside a string");
    *out = (ndt_str){ first, (size_t)(o - first) };
    r->scratch_used += (size_t)(o - first);
    r->p = p + 1;
    return NDT_OK;
}

/* A string at r->p; inline for the common case, a view into the message
 * (no blank before it, nothing to unescape).  With SSE2 the first sixteen
 * bytes are looked at here, and whether the first special byte is the
 * closing quote comes from the compare masks rather than from loading
 * that byte again (most strings are keys and short label values). */
__attribute__((always_inline)) static inline int read_string(json_reader *r, ndt_str *out)
{
    if (r->p < r->end && *r->p == '"') {
        const char *s = r->p + 1, *p;
#ifdef JSON_SSE2
        if (r->end - s >= 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
            unsigned quote = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')));
            __m128i control = _mm_andnot_si128(x, _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
            __m128i other = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('\\')), control);
            unsigned mask = quote | (unsigned)_mm_movemask_epi8(other);
            if (mask && (quote & (mask & -mask))) {
                p = s + __builtin_ctz(mask);
                *out = (ndt_str){ s, (size_t)(p - s) };
                r->p = p + 1;
                return NDT_OK;
            }
            if (mask)
                return read_string_slow(r, out);
        }
#endif
        p = plain_end(s, r->end);
        if (p < r->end && *p == '"') {
            *out = (ndt_str){ s, (size_t)(p - s) };
            r->p = p + 1;
            return NDT_OK;
        }
    }
    return read_string_slow(r, out);
}

/* The extent of a JSON number at r->p (RFC 8259 grammar). */
static int read_number_token(json_reader *r, ndt_str *out)
{
    const char *p = r->p, *s = p;
    if (p < r->end && *p == '-')
        p++;
    if (p < r->end && *p == '0') {
        p++;
    } else if (p < r->end && *p >= '1' && *p <= '9') {
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return fail_at(r, s, "expected a value");
    }
    if (p < r->end && *p == '.') {
        if (++p >= r->end || *p < '0' || *p > '9')
            return fail_at(r, p, "expected a digit after '.'");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return fail_at(r, p, "expected a digit in the exponent");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    *out = (ndt_str){ s, (size_t)(p - s) };
    r->p = p;
    return NDT_OK;
}

static int skip_value(json_reader *r, int depth);

static int skip_container(json_reader *r, int depth, char close)
{
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return NDT_OK;
    }
    for (;;) {
        int rc;
        if (close == '}') {
            ndt_str key;
            if ((rc = read_string(r, &key)) != NDT_OK || (rc = expect(r, ':')) != NDT_OK)
                return rc;
        }
        if ((rc = skip_value(r, depth + 1)) != NDT_OK)
            return rc;
        int more;
        if ((rc = comma_or_close(r, close, &more)) != NDT_OK || !more)
            return rc;
    }
}

static int skip_literal(json_reader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return fail_at(r, r->p, "expected a value");
    r->p += n;
    return NDT_OK;
}

static int skip_value(json_reader *r, int depth)
{
    skip_ws(r);
    if (depth > JSON_MAX_DEPTH)
        return fail_at(r, r->p, "values nested too deep");
    if (r->p >= r->end)
        return fail_at(r, r->p, "message ends early");
    ndt_str ignored;
    switch (*r->p) {
    case '{': return skip_container(r, depth, '}');
    case '[': return skip_container(r, depth, ']');
    case '"': return read_string(r, &ignored);
    case 't': return skip_literal(r, "true");
    case 'f': return skip_literal(r, "false");
    case 'n': return skip_literal(r, "null");
    default: return read_number_token(r, &ignored);
    }
}

/* ---- timestamps ---------------------------------------------------------- */

static int digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return NDT_ERROR;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return NDT_OK;
}

static int days_in_month(int year, int month)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return days[month - 1] + (month == 2 && leap);
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
static int parse_rfc3339_ms(ndt_str s, int64_t *out)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    int year, month, day, hour, minute, second;
    if (s.len < 20 || digits(p, 4, &year) || p[4] != '-' || digits(p + 5, 2, &month) ||
        p[7] != '-' || digits(p + 8, 2, &day) || (p[10] != 'T' && p[10] != 't') ||
        digits(p + 11, 2, &hour) || p[13] != ':' || digits(p + 14, 2, &minute) ||
        p[16] != ':' || digits(p + 17, 2, &second))
        return NDT_ERROR;
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 59)
        return NDT_ERROR;
    p += 19;
    int ms = 0;
    if (p < end && *p == '.') {
        const char *f = ++p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (p - f < 3)
                ms = ms * 10 + (*p - '0');
            p++;
        }
        if (p == f)
            return NDT_ERROR;
        for (long i = p - f; i < 3; i++)
            ms *= 10;
    }
    int offset_min = 0;
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int oh, om;
        if (end - p < 6 || digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) ||
            oh > 23 || om > 59)
            return NDT_ERROR;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return NDT_ERROR;
    }
    if (p != end)
        return NDT_ERROR;
    int64_t secs = hdl_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 +
                   second - (int64_t)offset_min * 60;
    *out = secs * 1000 + ms;
    return NDT_OK;
}

/* Every sample of a scrape carries the same timestamp, so the last one
 * parsed (per thread: the decoder is otherwise stateless) is kept and a
 * byte-equal string reuses its value; only strings that parsed are kept. */
#define JSON_TS_CACHE 40

static int parse_timestamp_ms(ndt_str s, int64_t *out)
{
    static _Thread_local char cached[JSON_TS_CACHE];
    static _Thread_local size_t cached_len;
    static _Thread_local int64_t cached_ms;
    if (s.len == cached_len && s.len && memcmp(s.ptr, cached, s.len) == 0) {
        *out = cached_ms;
        return NDT_OK;
    }
    if (parse_rfc3339_ms(s, out) != NDT_OK)
        return NDT_ERROR;
    if (s.len <= sizeof(cached)) {
        memcpy(cached, s.ptr, s.len);
        cached_len = s.len;
        cached_ms = *out;
    }
    return NDT_OK;
}

/* ---- the message ------------------------------------------------------- */

/* Key compare without strlen or a memcmp call: keys are a handful of
 * short literals, checked once per member. */
#define KEY_IS(key, lit) ((key).len == sizeof(lit) - 1 && memcmp((key).ptr, lit, sizeof(lit) - 1) == 0)

/* The flags, counts and names are cleared per message; labels[] is
 * filled up to nlabels and is the bulk of the struct. */
typedef struct json_message {
    ndt_str name;
    int has_name, has_value, has_timestamp, has_labels;
    ndt_str name_label; /* labels.__name__ */
    int has_name_label;
    double value;
    int64_t ts_ms;
    int has_native;
    hdl_native_histogram native;
    hdl_native_bucket *buckets; /* positive then negative, malloc'ed */
    size_t nbuckets, buckets_cap;
    size_t nlabels;
    hdl_label labels[HDL_DECODE_MAX_LABELS];
} json_message;

static int read_labels(json_reader *r, json_message *m)
{
    int rc;
    if ((rc = expect(r, '{')) != NDT_OK)
        return rc;
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return NDT_OK;
    }
    for (;;) {
        const char *at = r->p;
        /* Read straight into the next slot: a copy through locals costs a
         * failed store-to-load forwarding per label. */
        hdl_label spare, *l = m->nlabels < HDL_DECODE_MAX_LABELS ? &m->labels[m->nlabels] : &spare;
        if ((rc = read_string(r, &l->name)) != NDT_OK || (rc = expect(r, ':')) != NDT_OK ||
            (rc = read_string(r, &l->value)) != NDT_OK)
            return rc;
        if (KEY_IS(l->name, "__name__")) {
            if (m->has_name_label)
                return fail_at(r, at, "label '__name__' repeated");
            m->name_label = l->value;
            m->has_name_label = 1;
        } else {
            if (l == &spare) {
                char why[64];
                snprintf(why, sizeof(why), "more than %d labels", HDL_DECODE_MAX_LABELS);
                return fail_at(r, at, why);
            }
            m->nlabels++;
        }
        int more;
        if ((rc = comma_or_close(r, '}', &more)) != NDT_OK || !more)
            return rc;
    }
}

static int read_value(json_reader *r, json_message *m)
{
    skip_ws(r);
    const char *at = r->p;
    ndt_str tok;
    int rc = r->p < r->end && *r->p == '"' ? read_string(r, &tok) : read_number_token(r, &tok);
    if (rc != NDT_OK)
        return rc;
    if (ndt_number_parse_float(tok.ptr, tok.len, &m->value) != NDT_OK)
        return fail_at(r, at, "value is not a number (Go float syntax, NaN, +Inf, -Inf)");
    return NDT_OK;
}

/* A number that may come as a string ("0.25", "+Inf") or bare. */
static int read_float(json_reader *r, double *out, const char *what)
{
    skip_ws(r);
    const char *at = r->p;
    ndt_str tok;
    int rc = r->p < r->end && *r->p == '"' ? read_string(r, &tok) : read_number_token(r, &tok);
    if (rc != NDT_OK)
        return rc;
    if (ndt_number_parse_float(tok.ptr, tok.len, out) != NDT_OK) {
        char why[80];
        snprintf(why, sizeof(why), "%s is not a number", what);
        return fail_at(r, at, why);
    }
    return NDT_OK;
}

static int read_int32(json_reader *r, int32_t *out, const char *what)
{
    skip_ws(r);
    const char *at = r->p;
    ndt_str tok;
    int rc = read_number_token(r, &tok);
    int64_t v;
    if (rc != NDT_OK)
        return rc;
    if (ndt_number_parse_int64(tok.ptr, tok.len, &v) != NDT_OK || v < INT32_MIN ||
        v > INT32_MAX) {
        char why[80];
        snprintf(why, sizeof(why), "%s is not a 32-bit integer", what);
        return fail_at(r, at, why);
    }
    *out = (int32_t)v;
    return NDT_OK;
}

/* [[index, "count"], ...] appended to m->buckets; *n counts this side. */
static int read_native_side(json_reader *r, json_message *m, size_t *n)
{
    int rc, more;
    *n = 0;
    if ((rc = expect(r, '[')) != NDT_OK)
        return rc;
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return NDT_OK;
    }
    for (;;) {
        if (*n == HDL_DECODE_MAX_NATIVE_BUCKETS)
            return fail_at(r, r->p, "more native buckets than a side may hold");
        if (m->nbuckets == m->buckets_cap) {
            size_t cap = m->buckets_cap ? 2 * m->buckets_cap : 32;
            hdl_native_bucket *grown = realloc(m->buckets, cap * sizeof(*grown));
            if (!grown) {
                snprintf(r->err, r->errlen, "json: out of memory for native buckets");
                return NDT_ERROR;
            }
            m->buckets = grown;
            m->buckets_cap = cap;
        }
        hdl_native_bucket *b = &m->buckets[m->nbuckets];
        if ((rc = expect(r, '[')) != NDT_OK || (rc = read_int32(r, &b->index, "bucket index")) ||
            (rc = expect(r, ',')) != NDT_OK || (rc = read_float(r, &b->count, "bucket count")) ||
            (rc = expect(r, ']')) != NDT_OK)
            return rc;
        m->nbuckets++;
        (*n)++;
        if ((rc = comma_or_close(r, ']', &more)) != NDT_OK || !more)
            return rc;
    }
}

/* "native_histogram" (docs/KAFKA.md): every key required, others skipped. */
static int read_native(json_reader *r, json_message *m)
{
    hdl_native_histogram *h = &m->native;
    const char *at = r->p;
    unsigned seen = 0;
    size_t npos = 0, nneg = 0;
    int rc, more;
    if ((rc = expect(r, '{')) != NDT_OK)
        return rc;
    skip_ws(r);
    if (r->p < r->end && *r->p == '}')
        return fail_at(r, at, "native_histogram is empty");
    for (;;) {
        ndt_str key;
        if ((rc = read_string(r, &key)) != NDT_OK || (rc = expect(r, ':')) != NDT_OK)
            return rc;
        if (ndt_str_eq_cstr(key, "schema"))
            seen |= 1, rc = read_int32(r, &h->schema, "schema");
        else if (ndt_str_eq_cstr(key, "zero_threshold"))
            seen |= 2, rc = read_float(r, &h->zero_threshold, "zero_threshold");
        else if (ndt_str_eq_cstr(key, "zero_count"))
            seen |= 4, rc = read_float(r, &h->zero_count, "zero_count");
        else if (ndt_str_eq_cstr(key, "count"))
            seen |= 8, rc = read_float(r, &h->count, "count");
        else if (ndt_str_eq_cstr(key, "sum"))
            seen |= 16, rc = read_float(r, &h->sum, "sum");
        else if (ndt_str_eq_cstr(key, "positive") && !(seen & 32))
            seen |= 32, rc = read_native_side(r, m, &npos);
        else if (ndt_str_eq_cstr(key, "negative") && !(seen & 64) && (seen & 32))
            seen |= 64, rc = read_native_side(r, m, &nneg);
        else if (ndt_str_eq_cstr(key, "positive") || ndt_str_eq_cstr(key, "negative"))
            return fail_at(r, r->p, "native_histogram: positive must come once, before negative");
        else
            rc = skip_value(r, 2);
        if (rc != NDT_OK)
            return rc;
        if ((rc = comma_or_close(r, '}', &more)) != NDT_OK)
            return rc;
        if (!more)
            break;
    }
    if (seen != 127)
        return fail_at(r, at, "native_histogram lacks one of schema, zero_threshold, zero_count, "
                              "count, sum, positive, negative");
    h->positive = m->buckets;
    h->npositive = npos;
    h->negative = m->buckets ? m->buckets + npos : NULL; /* NULL + 0 is undefined */
    h->nnegative = nneg;
    m->has_native = 1;
    return NDT_OK;
}

static int read_member(json_reader *r, json_message *m)
{
    const char *at = r->p;
    ndt_str key, s;
    int rc;
    if ((rc = read_string(r, &key)) != NDT_OK || (rc = expect(r, ':')) != NDT_OK)
        return rc;
    int *seen = NULL;
    if (KEY_IS(key, "timestamp"))
        seen = &m->has_timestamp;
    else if (KEY_IS(key, "value"))
        seen = &m->has_value;
    else if (KEY_IS(key, "name"))
        seen = &m->has_name;
    else if (KEY_IS(key, "labels"))
        seen = &m->has_labels;
    else if (KEY_IS(key, "native_histogram"))
        seen = &m->has_native;
    else
        return skip_value(r, 1);
    if (*seen)
        return fail_at(r, at, "key repeated");
    *seen = 1;
    if (seen == &m->has_value)
        return read_value(r, m);
    if (seen == &m->has_labels)
        return read_labels(r, m);
    if (seen == &m->has_native) {
        *seen = 0; /* read_native sets it once the object is whole */
        return read_native(r, m);
    }
    skip_ws(r);
    at = r->p;
    if ((rc = read_string(r, &s)) != NDT_OK)
        return rc;
    if (seen == &m->has_name) {
        m->name = s;
        return NDT_OK;
    }
    if (parse_timestamp_ms(s, &m->ts_ms) != NDT_OK)
        return fail_at(r, at, "timestamp is not RFC 3339 (2006-01-02T15:04:05.000Z)");
    return NDT_OK;
}

static int read_message(json_reader *r, json_message *m)
{
    int rc;
    if ((rc = expect(r, '{')) != NDT_OK)
        return rc;
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
    } else {
        for (;;) {
            int more;
            if ((rc = read_member(r, m)) != NDT_OK ||
                (rc = comma_or_close(r, '}', &more)) != NDT_OK)
                return rc;
            if (!more)
                break;
        }
    }
    skip_ws(r);
    if (r->p != r->end)
        return fail_at(r, r->p, "bytes after the object");
    if (!m->has_timestamp)
        return fail_at(r, r->p, "no \"timestamp\"");
    if (!m->has_value)
        return fail_at(r, r->p, "no \"value\"");
    if (m->has_name && m->has_name_label && !ndt_str_eq(m->name, m->name_label))
        return fail_at(r, r->p, "\"name\" and labels.__name__ differ");
    if (!m->has_name)
        m->name = m->name_label;
    if (m->name.len == 0)
        return fail_at(r, r->p, "no metric name (\"name\" or labels.__name__)");
    size_t dup;
    if (hdl_labels_sort(m->labels, m->nlabels, &dup) != NDT_OK) {
        ndt_str name = m->labels[dup].name;
        snprintf(r->err, r->errlen, "json: label '%.*s' repeated",
                 name.len > 64 ? 64 : (int)name.len, name.ptr);
        return NDT_EBADCONF;
    }
    return NDT_OK;
}

int hdl_decode_json(const char *msg, size_t len, hdl_sample_fn fn, void *ctx, char *err,
                    size_t errlen)
{
    char stack_scratch[JSON_STACK_SCRATCH];
    json_message m;
    /* Field by field: a memset of the head is a slow `rep stos`, and the
     * rest is written before it is read (value, ts_ms and native only
     * once their has_ flag is set). */
    m.name = m.name_label = (ndt_str){ NULL, 0 };
    m.has_name = m.has_value = m.has_timestamp = m.has_labels = m.has_name_label = 0;
    m.has_native = 0;
    m.buckets = NULL;
    m.nbuckets = m.buckets_cap = m.nlabels = 0;
    json_reader r = { msg, msg, msg + len, stack_scratch, 0, err, errlen };
    if (len > sizeof(stack_scratch) && !(r.scratch = malloc(len))) {
        snprintf(err, errlen, "json: out of memory for a %zu-byte message", len);
        return NDT_ERROR;
    }
    int rc = read_message(&r, &m);
    if (rc == NDT_OK) {
        hdl_sample s = { m.name, m.labels, m.nlabels, m.value, m.ts_ms, HDL_TYPE_UNKNOWN,
                         m.has_native ? &m.native : NULL };
        rc = fn(ctx, &s);
    }
    free(m.buckets);
    if (r.scratch != stack_scratch)
        free(r.scratch);
    return rc;
}
