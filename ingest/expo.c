/*
 * expo.c: the Prometheus text 0.0.4 and OpenMetrics 1.0 text parsers.
 *
 * What it promises
 *   - One pass over the buffer, line by line (memchr finds the end of the
 *     line, then the line is parsed inside those bounds, so no scanner can
 *     run past a line and the line-length bound costs nothing extra).
 *   - Zero-copy: names, label values without escapes and HELP text point
 *     into the input.  Only escaped label values and the per-sample label
 *     arrays (and exemplars) are allocated, from the caller's arena.  The
 *     parser keeps no arena memory of its own across callbacks, so a
 *     callback that retains nothing may reset the arena after each sample
 *     (`ndtpipe check` does, to stay flat on huge files).
 *   - Its own bookkeeping is the family table (one entry per metric
 *     family, grown by doubling, freed before returning): memory is
 *     O(families), bounded by the input size, never O(samples).
 *   - Bounds: lines longer than INGEST_EXPO_MAX_LINE bytes and samples
 *     with more than INGEST_EXPO_MAX_LABELS labels are rejected with a
 *     clear error (Prometheus has neither bound; a hostile target has).
 *   - Not thread-safe per call, but calls share nothing: run one parse per
 *     thread as you like.
 *
 * Text format 0.0.4: the verdicts mirror promtool `check metrics` (Go's
 * expfmt.TextParser), which we compared case by case:
 *   - Blanks are spaces and tabs, any number of them, also at the start of
 *     a line and around `{`, `,`, `=`, `}`; `{}` and a trailing comma are
 *     fine.  CR is not a blank: with CRLF line ends a comment is fine but a
 *     sample's value or timestamp token ends in "\r" and is rejected, as
 *     promtool does.  Every non-blank line must end with LF (a missing LF
 *     on the last line is "unexpected end of input stream").
 *   - `#` lines other than `# HELP name ...` / `# TYPE name ...` are
 *     comments (so `# EOF` is one); `# HELP`/`# TYPE` without a name or
 *     text are ignored, like the Go parser does.
 *   - Rejected: invalid metric or label names, `__name__` as a label,
 *     duplicate label names, label values that are not valid UTF-8 or hold
 *     escapes other than \\ \" \n, HELP escapes other than \\ \n, a second
 *     HELP or TYPE for a family, a TYPE after samples of the family, an
 *     unknown type (counter, gauge, histogram, summary, untyped and
 *     gauge_histogram are known, any case), a missing or non-float value
 *     (hex floats and `_` are rejected like Go does), a non-integer
 *     timestamp, anything after the timestamp, an `le` (histogram) or
 *     `quantile` (summary) label that is not a float.
 *   - Families are found the Go way: a sample belongs to the family of its
 *     exact name, else to a summary family named without `_count`/`_sum`,
 *     else to a histogram family named without `_bucket`/`_count`/`_sum`,
 *     else it starts an untyped family.  A family may reappear later in
 *     the file (promtool merges it).
 *   - Deliberate differences from promtool: duplicate `le`/`quantile`
 *     labels are rejected (Go ignores them), and the two bounds above.
 *     A histogram sample without `le` is accepted, as promtool does.
 *
 * OpenMetrics 1.0: follows the specification's ABNF (promtool 2.42 has no
 * OpenMetrics checker to compare with):
 *   - Single spaces as separators, no blank lines, no blanks inside label
 *     sets, no trailing comma, only `# HELP`, `# TYPE`, `# UNIT` and
 *     `# EOF` comments; `# EOF` is required, may be followed by one LF and
 *     nothing else.  HELP escapes: \\ \" \n; HELP must be valid UTF-8.
 *   - Metadata comes before the samples of its family, at most once per
 *     kind; a family must not appear twice (no interleaving); a UNIT must
 *     be a suffix of the family name.  Types are lower-case.
 *   - Sample names map to their family by the suffixes of its type
 *     (counter: _total, _created; histogram: _bucket, _count, _sum,
 *     _created; gaugehistogram: _bucket, _gcount, _gsum; summary: bare,
 *     _count, _sum, _created; info: _info; gauge, stateset, unknown:
 *     bare).  A name made of the current family plus a reserved suffix that
 *     its type does not allow (a counter's `_count`), or the bare name of a
 *     family that needs a suffix, is an error; other names start a new
 *     family of type unknown.
 *   - Histogram buckets need a float `le`, summary quantiles a float
 *     `quantile`.  Timestamps are float seconds, converted to ms
 *     (truncated).  Exemplars (` # {labels} value [timestamp]`) only on
 *     counter `_total` and (gauge)histogram `_bucket` samples, with at most
 *     128 characters of label names and values.
 *   - Not checked: bucket order, the presence of the +Inf bucket, value
 *     ranges (negative counters), stateset/info values, name collisions
 *     between families of different types.
 */
#include "ingest/expo.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/expo_number.h"

/* Sixteen bytes at a time with SSE2 (every x86-64 has it), eight with
 * plain 64-bit words on other little-endian machines, else byte by byte.
 * Names and label values are nearly all of a scrape's bytes. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EXPO_SWAR 1
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#define EXPO_SSE2 1
#endif

#define FAMILY_HAS_TYPE 0x01
#define FAMILY_HAS_HELP 0x02
#define FAMILY_HAS_UNIT 0x04
#define FAMILY_HAS_SAMPLES 0x08

#define EXEMPLAR_MAX_RUNES 128

typedef struct expo_family {
    ndt_str name;
    ndt_str help;
    ndt_str unit;
    uint32_t hash;
    uint8_t type;  /* ingest_metric_type */
    uint8_t flags; /* FAMILY_* */
} expo_family;

/* How a sample name relates to its family (selects the le/quantile and
 * exemplar rules). */
typedef enum expo_suffix {
    SUFFIX_NONE = 0,
    SUFFIX_TOTAL,
    SUFFIX_CREATED,
    SUFFIX_BUCKET,
    SUFFIX_COUNT,
    SUFFIX_SUM,
    SUFFIX_GCOUNT,
    SUFFIX_GSUM,
    SUFFIX_INFO,
} expo_suffix;

typedef struct expo_parser {
    const char *end;               /* end of the whole input */
    int openmetrics;
    ndt_arena *arena;
    ingest_expo_sample_fn fn;
    void *ctx;
    ingest_expo_error *err;

    uint32_t line;
    const char *line_start;
    int line_complete;             /* the current line ends with LF */
    int seen_eof;                  /* OpenMetrics: "# EOF" was read */

    expo_family *families;
    size_t nfamilies, families_cap;
    uint32_t *index;               /* open addressing: family index + 1 */
    size_t index_cap;              /* power of two */
    size_t index_initial;          /* first size, from the input size */

    /* Text: the last sample name and its family (most lines repeat it). */
    ndt_str cache_name;
    size_t cache_family;
    int cache_valid;
    /* OpenMetrics: the family samples currently belong to, and how the
     * previous sample name (cache_name) relates to it. */
    size_t current;
    int has_current;
    int om_last_valid;
    expo_suffix om_last_suffix;

    size_t nscratch;
    uint64_t label_filter;         /* see scratch_add */
    ingest_label scratch[INGEST_EXPO_MAX_LABELS];
} expo_parser;

/* ---- errors --------------------------------------------------------- */

/* Go-%q-like quoting of at most 64 bytes, for error messages. */
static const char *expo_quote(char *out, size_t size, const char *s, size_t len)
{
    size_t o = 0, i;
    out[o++] = '"';
    for (i = 0; i < len && i < 64 && o + 8 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c == '\r') {
            out[o++] = '\\';
            out[o++] = 'r';
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    if (i < len && o + 4 < size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

static int expo_fail(expo_parser *p, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int expo_fail(expo_parser *p, const char *at, const char *fmt, ...)
{
    va_list ap;
    p->err->line = p->line;
    p->err->col = (uint32_t)(at - p->line_start) + 1;
    va_start(ap, fmt);
    vsnprintf(p->err->reason, sizeof(p->err->reason), fmt, ap);
    va_end(ap);
    return NDT_ERROR;
}

static int expo_fail_eof(expo_parser *p, const char *at)
{
    return expo_fail(p, at, "unexpected end of input stream");
}

/* Go-%q-like quoting of one byte: 'x', '\n'. */
static const char *expo_quote_char(char *out, size_t size, const char *at, const char *e)
{
    if (at >= e)
        snprintf(out, size, "'\\n'");
    else if ((unsigned char)*at < 0x20 || (unsigned char)*at >= 0x7f)
        snprintf(out, size, "'\\x%02x'", (unsigned char)*at);
    else
        snprintf(out, size, "'%c'", *at);
    return out;
}

/* ---- character classes ---------------------------------------------- */

static inline int is_blank(char c) { return c == ' ' || c == '\t'; }

static inline const char *skip_blank(const char *s, const char *e)
{
    while (s < e && is_blank(*s))
        s++;
    return s;
}

static inline const char *scan_until_blank(const char *s, const char *e)
{
    while (s < e && !is_blank(*s))
        s++;
    return s;
}

static inline const char *scan_until_space(const char *s, const char *e)
{
    const char *sp = memchr(s, ' ', (size_t)(e - s));
    return sp ? sp : e;
}

/* Name character classes (one table lookup per byte). */
#define CC_METRIC_START 1 /* [a-zA-Z_:] */
#define CC_METRIC 2       /* [a-zA-Z0-9_:] */
#define CC_LABEL_START 4  /* [a-zA-Z_] */
#define CC_LABEL 8        /* [a-zA-Z0-9_] */

static const uint8_t char_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3, 0, 0, 0, 0, 0,
    0, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 0, 0, 0, 0, 15,
    0, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 0, 0, 0, 0, 0,
    /* bytes >= 0x80: none */
};

static inline int char_is(char c, uint8_t cls)
{
    return char_class[(unsigned char)c] & cls;
}

#ifdef EXPO_SWAR
/* High bit of each byte of x (all bytes < 0x80) set iff lo <= byte <= hi. */
static inline uint64_t swar_in_range(uint64_t x, unsigned lo, unsigned hi)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    uint64_t ge = x + ones * (0x80 - lo);
    uint64_t gt = x + ones * (0x7f - hi);
    return ge & ~gt & (ones * 0x80);
}

/* Length of the run of name characters at the start of an 8-byte word
 * (8 if all are); colon says whether ':' counts (metric names). */
static inline unsigned swar_name_run(uint64_t w, int colon)
{
    const uint64_t high = UINT64_C(0x8080808080808080);
    uint64_t x = w & ~high;
    uint64_t ok = swar_in_range(x | UINT64_C(0x2020202020202020), 0x61, 0x7a) |
                  swar_in_range(x, 0x30, colon ? 0x3a : 0x39) |
                  swar_in_range(x, 0x5f, 0x5f);
    uint64_t bad = ~ok & ~w & high; /* bytes >= 0x80 are never valid */
    bad |= w & high;
    return bad ? (unsigned)__builtin_ctzll(bad) >> 3 : 8;
}
#endif

/* Skips name characters from s (the first one is already checked). */
static inline const char *scan_name_rest(const char *s, const char *e, int colon)
{
#ifdef EXPO_SSE2
    /* Signed compares: bytes >= 0x80 are negative, so never in a range. */
    const __m128i case_bit = _mm_set1_epi8(0x20);
    const __m128i before_a = _mm_set1_epi8('a' - 1), after_z = _mm_set1_epi8('z' + 1);
    const __m128i before_0 = _mm_set1_epi8('0' - 1);
    const __m128i after_9 = _mm_set1_epi8((char)(colon ? ':' + 1 : '9' + 1));
    const __m128i underscore = _mm_set1_epi8('_');
    while (e - s >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i lower = _mm_or_si128(x, case_bit);
        __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(lower, before_a), _mm_cmplt_epi8(lower, after_z));
        ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(x, before_0), _mm_cmplt_epi8(x, after_9)));
        ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, underscore));
        unsigned bad = ~(unsigned)_mm_movemask_epi8(ok) & 0xffffu;
        if (bad)
            return s + __builtin_ctz(bad);
        s += 16;
    }
#endif
#ifdef EXPO_SWAR
    while (e - s >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        unsigned run = swar_name_run(w, colon);
        s += run;
        if (run < 8)
            return s;
    }
#endif
    uint8_t cls = colon ? CC_METRIC : CC_LABEL;
    while (s < e && char_is(*s, cls))
        s++;
    return s;
}

static inline const char *scan_metric_name(const char *s, const char *e)
{
    if (s == e || !char_is(*s, CC_METRIC_START))
        return s;
    return scan_name_rest(s + 1, e, 1);
}

static inline const char *scan_label_name(const char *s, const char *e)
{
    if (s == e || !char_is(*s, CC_LABEL_START))
        return s;
    return scan_name_rest(s + 1, e, 0);
}

static inline int str_has_suffix(ndt_str s, const char *suffix, size_t n)
{
    if (s.len <= n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s.ptr[s.len - n + i] != suffix[i])
            return 0;
    }
    return 1;
}

/* ndt_str_eq without a memcmp call: names are short and usually equal
 * (consecutive samples of one metric), so compare words inline. */
static inline int str_eq_inline(ndt_str a, ndt_str b)
{
    if (a.len != b.len)
        return 0;
    size_t i = 0;
    for (; i + 8 <= a.len; i += 8) {
        uint64_t x, y;
        memcpy(&x, a.ptr + i, 8);
        memcpy(&y, b.ptr + i, 8);
        if (x != y)
            return 0;
    }
    if (i == a.len)
        return 1;
    if (a.len >= 8) { /* the last, overlapping word */
        uint64_t x, y;
        memcpy(&x, a.ptr + a.len - 8, 8);
        memcpy(&y, b.ptr + b.len - 8, 8);
        return x == y;
    }
    for (; i < a.len; i++) {
        if (a.ptr[i] != b.ptr[i])
            return 0;
    }
    return 1;
}

/* Go's utf8.ValidString: no overlongs, no surrogates, <= U+10FFFF. */
static int utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *e = s + len;
    while (s < e) {
#ifdef EXPO_SSE2
        while (e - s >= 16 &&
               !_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)s)))
            s += 16;
#endif
        while (e - s >= 8) {
            uint64_t w;
            memcpy(&w, s, 8);
            if (w & UINT64_C(0x8080808080808080))
                break;
            s += 8;
        }
        if (s == e)
            break;
        unsigned c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return 0;
        }
        if ((size_t)(e - s) <= n)
            return 0;
        if (s[1] < lo || s[1] > hi)
            return 0;
        for (size_t i = 2; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
        }
        s += n + 1;
    }
    return 1;
}

/* Characters (runes) in a valid UTF-8 string. */
static size_t utf8_runes(ndt_str s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += ((unsigned char)s.ptr[i] & 0xc0) != 0x80;
    return n;
}

/* ---- family table --------------------------------------------------- */

/* Eight bytes per step: family names are long (node_filesystem_...).
 * The tail is the last eight bytes of the name, loaded overlapping (no
 * variable-length copy), or the bytes themselves for short names. */
static uint32_t family_hash(const char *name, size_t len)
{
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ len;
    const char *s = name;
    size_t n = len;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n && len >= 8) {
        memcpy(&w, name + len - 8, 8);
    } else {
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    }
    h = (h ^ w) * UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 29;
    return (uint32_t)h;
}

static expo_family *family_lookup_hashed(expo_parser *p, const char *name, size_t len,
                                         uint32_t h, size_t *out_index)
{
    if (!p->index_cap)
        return NULL;
    size_t mask = p->index_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t slot = p->index[i];
        if (!slot)
            return NULL;
        expo_family *f = &p->families[slot - 1];
        if (f->hash == h && f->name.len == len && memcmp(f->name.ptr, name, len) == 0) {
            if (out_index)
                *out_index = slot - 1;
            return f;
        }
    }
}

static expo_family *family_lookup(expo_parser *p, const char *name, size_t len,
                                  size_t *out_index)
{
    return family_lookup_hashed(p, name, len, family_hash(name, len), out_index);
}

static int family_index_grow(expo_parser *p)
{
    size_t cap = p->index_cap ? p->index_cap * 2 : p->index_initial;
    uint32_t *index = calloc(cap, sizeof(*index));
    if (!index)
        return NDT_ERROR;
    for (size_t f = 0; f < p->nfamilies; f++) {
        size_t i = p->families[f].hash & (cap - 1);
        while (index[i])
            i = (i + 1) & (cap - 1);
        index[i] = (uint32_t)(f + 1);
    }
    free(p->index);
    p->index = index;
    p->index_cap = cap;
    return NDT_OK;
}

/* Adds a family (the caller checked it is new); its index in *out. */
static int family_add(expo_parser *p, ndt_str name, uint32_t hash, size_t *out)
{
    if (p->nfamilies == p->families_cap) {
        size_t cap = p->families_cap ? p->families_cap * 2 : p->index_initial / 2;
        if (cap > UINT32_MAX / 2)
            return expo_fail(p, name.ptr, "too many metric families");
        expo_family *f = realloc(p->families, cap * sizeof(*f));
        if (!f)
            return expo_fail(p, name.ptr, "out of memory for the family table");
        p->families = f;
        p->families_cap = cap;
    }
    if ((p->nfamilies + 1) * 2 > p->index_cap && family_index_grow(p) != NDT_OK)
        return expo_fail(p, name.ptr, "out of memory for the family table");
    expo_family *f = &p->families[p->nfamilies];
    f->name = name;
    f->help = (ndt_str){ NULL, 0 };
    f->unit = (ndt_str){ NULL, 0 };
    f->type = INGEST_TYPE_UNKNOWN;
    f->flags = 0;
    f->hash = hash;
    size_t mask = p->index_cap - 1, i = f->hash & mask;
    while (p->index[i])
        i = (i + 1) & mask;
    p->index[i] = (uint32_t)(p->nfamilies + 1);
    *out = p->nfamilies++;
    return NDT_OK;
}

/* ---- labels --------------------------------------------------------- */

/* First byte in [s, e) that is '"', '\\' or non-ASCII (e if none).
 * Eight bytes at a time: label values are most of a scrape's bytes. */
static inline const char *scan_value_plain(const char *s, const char *e)
{
#ifdef EXPO_SSE2
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    while (e - s >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)), x);
        unsigned mask = (unsigned)_mm_movemask_epi8(hit); /* x's own high bit: non-ASCII */
        if (mask)
            return s + __builtin_ctz(mask);
        s += 16;
    }
#endif
#ifdef EXPO_SWAR
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t high = UINT64_C(0x8080808080808080);
    while (e - s >= 8) {
        uint64_t w, q, b;
        memcpy(&w, s, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | w;
        hit &= high;
        if (hit)
            return s + (__builtin_ctzll(hit) >> 3);
        s += 8;
    }
#endif
    while (s < e && *s != '"' && *s != '\\' && !((unsigned char)*s & 0x80))
        s++;
    return s;
}

/* The slow path of read_label_value: escapes or non-ASCII bytes from s. */
static const char *read_label_value_slow(expo_parser *p, const char *start, const char *s,
                                         const char *e, ndt_str *value)
{
    char q[80];
    int escaped = 0, high = 0;
    for (; s < e && *s != '"'; s++) {
        if ((unsigned char)*s & 0x80) {
            high = 1;
        } else if (*s == '\\') {
            if (s + 1 == e) {
                if (!p->line_complete)
                    return expo_fail_eof(p, s + 1), NULL;
                expo_fail(p, s, "invalid escape sequence '\\\\n' (backslash at end of line)");
                return NULL;
            }
            if (s[1] != '\\' && s[1] != '"' && s[1] != 'n') {
                expo_fail(p, s, "invalid escape sequence '\\%c'", s[1]);
                return NULL;
            }
            escaped = 1;
            s++;
        }
    }
    if (s == e) {
        if (!p->line_complete)
            return expo_fail_eof(p, s), NULL;
        expo_fail(p, start - 1, "label value %s contains unescaped new-line",
                  expo_quote(q, sizeof(q), start, (size_t)(s - start)));
        return NULL;
    }
    if (high && !utf8_valid(start, (size_t)(s - start))) {
        expo_fail(p, start - 1, "invalid label value %s (not valid UTF-8)",
                  expo_quote(q, sizeof(q), start, (size_t)(s - start)));
        return NULL;
    }
    if (!escaped) {
        value->ptr = start;
        value->len = (size_t)(s - start);
        return s + 1;
    }
    char *out = ndt_arena_alloc(p->arena, (size_t)(s - start));
    if (!out) {
        expo_fail(p, start, "out of memory for this scrape");
        return NULL;
    }
    size_t n = 0;
    for (const char *c = start; c < s; c++) {
        if (*c != '\\') {
            out[n++] = *c;
            continue;
        }
        c++;
        out[n++] = *c == 'n' ? '\n' : *c;
    }
    value->ptr = out;
    value->len = n;
    return s + 1;
}

/* Reads a quoted label value; s is just past the opening quote.  Returns
 * the position after the closing quote, or NULL with the error set. */
static inline const char *read_label_value(expo_parser *p, const char *s, const char *e,
                                           ndt_str *value)
{
    const char *start = s;
    s = scan_value_plain(s, e);
    if (s < e && *s == '"') {
        value->ptr = start;
        value->len = (size_t)(s - start);
        return s + 1;
    }
    return read_label_value_slow(p, start, s, e, value);
}

static int scratch_duplicate(expo_parser *p, const char *at, ndt_str name, ndt_str family)
{
    char q[80];
    for (size_t i = 0; i < p->nscratch; i++) {
        if (ndt_str_eq(p->scratch[i].name, name))
            return expo_fail(p, at, "duplicate label names for metric %s",
                             expo_quote(q, sizeof(q), family.ptr, family.len));
    }
    return NDT_OK;
}

/* Adds a label to the scratch set, refusing duplicates and overflow.
 * A 64-bit filter on (length, last byte) makes the duplicate check free
 * for the common case of distinct names; p->label_filter is cleared with
 * p->nscratch. */
static inline int scratch_add(expo_parser *p, const char *at, ndt_str name, ndt_str value,
                              ndt_str family)
{
    uint64_t bit = UINT64_C(1) << ((name.len * 7 + (unsigned char)name.ptr[name.len - 1]) & 63);
    if ((p->label_filter & bit) && scratch_duplicate(p, at, name, family) != NDT_OK)
        return NDT_ERROR;
    if (p->nscratch == INGEST_EXPO_MAX_LABELS)
        return expo_fail(p, at, "too many labels (more than %d)", INGEST_EXPO_MAX_LABELS);
    p->label_filter |= bit;
    p->scratch[p->nscratch].name = name;
    p->scratch[p->nscratch].value = value;
    p->nscratch++;
    return NDT_OK;
}

/* Moves the scratch labels into the arena (the callback may keep them). */
static int scratch_commit(expo_parser *p, const char *at, const ingest_label **out,
                          size_t *n)
{
    *out = NULL;
    *n = p->nscratch;
    if (!p->nscratch)
        return NDT_OK;
    ingest_label *labels = ndt_arena_alloc(p->arena, p->nscratch * sizeof(*labels));
    if (!labels)
        return expo_fail(p, at, "out of memory for this scrape");
    memcpy(labels, p->scratch, p->nscratch * sizeof(*labels));
    *out = labels;
    p->nscratch = 0;
    p->label_filter = 0;
    return NDT_OK;
}

static const ingest_label *scratch_find(const expo_parser *p, const char *name)
{
    for (size_t i = 0; i < p->nscratch; i++) {
        if (ndt_str_eq_cstr(p->scratch[i].name, name))
            return &p->scratch[i];
    }
    return NULL;
}

/* ---- emitting ------------------------------------------------------- */

static int emit(expo_parser *p, ingest_sample *sample, const char *line_end)
{
    if (!p->line_complete)
        return expo_fail_eof(p, line_end);
    if (!p->fn)
        return NDT_OK;
    int rc = p->fn(p->ctx, sample);
    if (rc != NDT_OK) {
        p->err->line = p->line;
        p->err->col = 1;
        snprintf(p->err->reason, sizeof(p->err->reason), "stopped by the sample callback");
    }
    return rc;
}

static void sample_from_family(ingest_sample *s, const expo_family *f, uint32_t line)
{
    /* Field by field, not memset: this runs once per sample. */
    s->family = f->name;
    s->type = (ingest_metric_type)f->type;
    s->help = f->help;
    s->unit = f->unit;
    s->labels = NULL;
    s->nlabels = 0;
    s->value = 0;
    s->timestamp_ms = INGEST_NO_TIMESTAMP;
    s->exemplar = NULL;
    s->line = line;
}

/* ---- text format 0.0.4 ---------------------------------------------- */

/* The Go parser's setOrCreateCurrentMF: exact name, then a summary without
 * _count/_sum, then a histogram without _bucket/_count/_sum, else new. */
static int text_resolve_slow(expo_parser *p, ndt_str name, size_t *out)
{
    uint32_t hash = family_hash(name.ptr, name.len);
    expo_family *f = family_lookup_hashed(p, name.ptr, name.len, hash, out);
    if (!f) {
        size_t cut = 0;
        if (str_has_suffix(name, "_count", 6))
            cut = 6;
        else if (str_has_suffix(name, "_sum", 4))
            cut = 4;
        if (cut) {
            f = family_lookup(p, name.ptr, name.len - cut, out);
            if (f && f->type != INGEST_TYPE_SUMMARY)
                f = NULL;
        }
        if (!f && str_has_suffix(name, "_bucket", 7))
            cut = 7;
        if (!f && cut) {
            f = family_lookup(p, name.ptr, name.len - cut, out);
            if (f && f->type != INGEST_TYPE_HISTOGRAM)
                f = NULL;
        }
    }
    if (!f && family_add(p, name, hash, out) != NDT_OK)
        return NDT_ERROR;
    p->cache_name = name;
    p->cache_family = *out;
    p->cache_valid = 1;
    return NDT_OK;
}

/* Does the line at s start with the previous sample's name (and then
 * something that cannot continue a name)? */
static inline int text_same_name(const expo_parser *p, const char *s, const char *e)
{
    size_t n = p->cache_name.len;
    return p->cache_valid && (size_t)(e - s) > n && !char_is(s[n], CC_METRIC) &&
           str_eq_inline(p->cache_name, (ndt_str){ s, n });
}

static inline int text_resolve(expo_parser *p, ndt_str name, size_t *out)
{
    if (p->cache_valid && str_eq_inline(p->cache_name, name)) {
        *out = p->cache_family;
        return NDT_OK;
    }
    return text_resolve_slow(p, name, out);
}

/* Moves s to c, across blanks; NULL (error set) if something else is
 * there.  The direct hit is tested first: labels are rarely spaced. */
static inline const char *text_expect(expo_parser *p, const char *s, const char *e, char c,
                                      const char *what)
{
    char q[16];
    if (s < e && *s == c)
        return s;
    s = skip_blank(s, e);
    if (s < e && *s == c)
        return s;
    if (s == e && !p->line_complete)
        expo_fail_eof(p, s);
    else
        expo_fail(p, s, "%s, found %s", what, expo_quote_char(q, sizeof(q), s, e));
    return NULL;
}

/* le (histogram) and quantile (summary) must be floats, as in Go. */
static int text_check_bound(expo_parser *p, const expo_family *f, ndt_str name, ndt_str value,
                            const char *at)
{
    char q[80];
    double bound;
    const char *label = NULL;
    if (f->type == INGEST_TYPE_HISTOGRAM && ndt_str_eq_cstr(name, "le"))
        label = "le";
    else if (f->type == INGEST_TYPE_SUMMARY && ndt_str_eq_cstr(name, "quantile"))
        label = "quantile";
    if (label && ingest_number_parse_float(value.ptr, value.len, &bound) != NDT_OK)
        return expo_fail(p, at, "expected float as value for '%s' label, got %s", label,
                         expo_quote(q, sizeof(q), value.ptr, value.len));
    return NDT_OK;
}

static int text_labels(expo_parser *p, const expo_family *f, const char **sp, const char *e)
{
    const char *s = *sp;
    char q[80];
    int bounded = f->type == INGEST_TYPE_HISTOGRAM || f->type == INGEST_TYPE_SUMMARY;

    for (;;) {
        if (!(s < e && char_is(*s, CC_LABEL_START))) {
            s = skip_blank(s, e);
            if (s < e && *s == '}')
                break;
        }
        const char *ln = s;
        s = scan_label_name(s, e);
        if (s == ln) {
            if (s == e && !p->line_complete)
                return expo_fail_eof(p, s);
            return expo_fail(p, ln, "invalid label name for metric %s",
                             expo_quote(q, sizeof(q), f->name.ptr, f->name.len));
        }
        ndt_str name = { ln, (size_t)(s - ln) };
        if (name.len == 8 && ndt_str_eq_cstr(name, "__name__"))
            return expo_fail(p, ln, "label name \"__name__\" is reserved");
        s = text_expect(p, s, e, '=', "expected '=' after label name");
        if (!s)
            return NDT_ERROR;
        s = text_expect(p, s + 1, e, '"', "expected '\"' at start of label value");
        if (!s)
            return NDT_ERROR;
        const char *vstart = s;
        ndt_str value;
        s = read_label_value(p, s + 1, e, &value);
        if (!s)
            return NDT_ERROR;
        if (bounded && text_check_bound(p, f, name, value, vstart) != NDT_OK)
            return NDT_ERROR;
        if (scratch_add(p, ln, name, value, f->name) != NDT_OK)
            return NDT_ERROR;
        if (!(s < e && (*s == ',' || *s == '}')))
            s = skip_blank(s, e);
        if (s < e && *s == ',') {
            s++;
            continue;
        }
        if (s < e && *s == '}')
            break;
        if (s == e && !p->line_complete)
            return expo_fail_eof(p, s);
        return expo_fail(p, s, "unexpected end of label value %s",
                         expo_quote(q, sizeof(q), value.ptr, value.len));
    }
    *sp = skip_blank(s + 1, e);
    return NDT_OK;
}

static int text_sample(expo_parser *p, const char *s, const char *e)
{
    char q[80];
    const char *ns = s;
    size_t fi;
    ingest_sample sample;

    ndt_str name;
    if (text_same_name(p, s, e)) {
        /* Same metric as the previous sample: no scan, no lookup. */
        name = (ndt_str){ ns, p->cache_name.len };
        s += name.len;
        fi = p->cache_family;
    } else {
        s = scan_metric_name(s, e);
        if (s == ns)
            return expo_fail(p, ns, "invalid metric name");
        name = (ndt_str){ ns, (size_t)(s - ns) };
        if (text_resolve(p, name, &fi) != NDT_OK)
            return NDT_ERROR;
    }
    expo_family *f = &p->families[fi];
    if (!(f->flags & FAMILY_HAS_TYPE)) {
        f->flags |= FAMILY_HAS_TYPE;
        f->type = INGEST_TYPE_UNKNOWN;
    }
    f->flags |= FAMILY_HAS_SAMPLES;

    s = skip_blank(s, e);
    p->nscratch = 0;
    p->label_filter = 0;
    if (s < e && *s == '{') {
        s++;
        if (text_labels(p, f, &s, e) != NDT_OK)
            return NDT_ERROR;
    }
    sample_from_family(&sample, f, p->line);
    sample.name = name;

    const char *vs = s;
    s = ingest_number_scan_decimal(vs, e, &sample.value);
    if (s && (s == e || is_blank(*s)))
        goto value_done; /* the common case: one pass over the digits */
    s = scan_until_blank(vs, e);
    if (ingest_number_parse_float(vs, (size_t)(s - vs), &sample.value) != NDT_OK) {
        if (s == e && !p->line_complete)
            return expo_fail_eof(p, s);
        return expo_fail(p, vs, "expected float as value, got %s",
                         expo_quote(q, sizeof(q), vs, (size_t)(s - vs)));
    }
value_done:
    if (s < e) {
        const char *ts = skip_blank(s, e);
        s = scan_until_blank(ts, e);
        if (ingest_number_parse_int64(ts, (size_t)(s - ts), &sample.timestamp_ms) != NDT_OK) {
            if (s == e && !p->line_complete)
                return expo_fail_eof(p, s);
            return expo_fail(p, ts, "expected integer as timestamp, got %s",
                             expo_quote(q, sizeof(q), ts, (size_t)(s - ts)));
        }
        if (s < e)
            return expo_fail(p, s, "spurious string after timestamp: %s",
                             expo_quote(q, sizeof(q), s, (size_t)(e - s)));
    }
    if (scratch_commit(p, ns, &sample.labels, &sample.nlabels) != NDT_OK)
        return NDT_ERROR;
    return emit(p, &sample, e);
}

/* HELP text: only \\ and \n (text) or also \" (OpenMetrics) are escapes. */
static int check_help_escapes(expo_parser *p, const char *s, const char *e, int openmetrics)
{
    while ((s = memchr(s, '\\', (size_t)(e - s))) != NULL) {
        if (s + 1 == e) {
            if (!p->line_complete)
                return expo_fail_eof(p, e);
            return expo_fail(p, s, "invalid escape sequence '\\\\n' (backslash at end of line)");
        }
        if (s[1] != '\\' && s[1] != 'n' && !(openmetrics && s[1] == '"'))
            return expo_fail(p, s, "invalid escape sequence '\\%c'", s[1]);
        s += 2;
    }
    return NDT_OK;
}

/* Lower-case word against any-case input (strncasecmp, minus locale). */
static int ascii_case_eq(const char *word, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        if (c != word[i])
            return 0;
    }
    return 1;
}

static int text_type_from(const char *s, size_t len, uint8_t *type)
{
    static const struct {
        const char *name;
        size_t len;
        ingest_metric_type type;
    } types[] = {
        { "counter", 7, INGEST_TYPE_COUNTER },     { "gauge", 5, INGEST_TYPE_GAUGE },
        { "histogram", 9, INGEST_TYPE_HISTOGRAM }, { "summary", 7, INGEST_TYPE_SUMMARY },
        { "untyped", 7, INGEST_TYPE_UNKNOWN },
        { "gauge_histogram", 15, INGEST_TYPE_GAUGE_HISTOGRAM },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(types); i++) {
        if (types[i].len == len && ascii_case_eq(types[i].name, s, len)) {
            *type = (uint8_t)types[i].type;
            return NDT_OK;
        }
    }
    return NDT_ERROR;
}

/* Ends a comment line: fine if it had its LF. */
static int text_comment_done(expo_parser *p, const char *e)
{
    return p->line_complete ? NDT_OK : expo_fail_eof(p, e);
}

static int text_comment(expo_parser *p, const char *s, const char *e)
{
    char q[80];
    s = skip_blank(s + 1, e);
    const char *kw = s;
    /* Only "HELP" or "TYPE" followed by a blank matter; anything else is
     * a comment whose bytes need no look. */
    if (e - s < 5 || !is_blank(s[4]))
        return text_comment_done(p, e);
    int help = memcmp(kw, "HELP", 4) == 0;
    int type = !help && memcmp(kw, "TYPE", 4) == 0;
    if (!help && !type)
        return text_comment_done(p, e);
    s = skip_blank(s + 4, e);
    const char *ns = s;
    s = scan_metric_name(s, e);
    if (s == e)
        return text_comment_done(p, e);
    if (!is_blank(*s))
        return expo_fail(p, ns, "invalid metric name in comment");
    size_t fi;
    if (text_resolve(p, (ndt_str){ ns, (size_t)(s - ns) }, &fi) != NDT_OK)
        return NDT_ERROR;
    /* The cache stays valid: a name's family never changes once found
     * (exact names win, and a stripped match is already typed). */
    s = skip_blank(s, e);
    if (s == e)
        return text_comment_done(p, e);
    expo_family *f = &p->families[fi];
    if (help) {
        if (f->flags & FAMILY_HAS_HELP)
            return expo_fail(p, kw, "second HELP line for metric name %s",
                             expo_quote(q, sizeof(q), f->name.ptr, f->name.len));
        if (check_help_escapes(p, s, e, 0) != NDT_OK)
            return NDT_ERROR;
        f->help = (ndt_str){ s, (size_t)(e - s) };
        f->flags |= FAMILY_HAS_HELP;
        return text_comment_done(p, e);
    }
    if (f->flags & FAMILY_HAS_TYPE)
        return expo_fail(p, kw,
                         "second TYPE line for metric name %s, or TYPE reported after samples",
                         expo_quote(q, sizeof(q), f->name.ptr, f->name.len));
    if (text_type_from(s, (size_t)(e - s), &f->type) != NDT_OK) {
        if (!p->line_complete)
            return expo_fail_eof(p, e);
        return expo_fail(p, s, "unknown metric type %s",
                         expo_quote(q, sizeof(q), s, (size_t)(e - s)));
    }
    f->flags |= FAMILY_HAS_TYPE;
    return text_comment_done(p, e);
}

static int text_line(expo_parser *p, const char *s, const char *e)
{
    s = skip_blank(s, e);
    if (s == e)
        return NDT_OK; /* blank line, or trailing blanks at the very end */
    if (*s == '#')
        return text_comment(p, s, e);
    return text_sample(p, s, e);
}

/* ---- OpenMetrics 1.0 ------------------------------------------------ */

typedef struct om_suffix_rule {
    const char *text;
    size_t len;
    expo_suffix suffix;
} om_suffix_rule;

static const om_suffix_rule om_suffixes[] = {
    { "_total", 6, SUFFIX_TOTAL },   { "_created", 8, SUFFIX_CREATED },
    { "_bucket", 7, SUFFIX_BUCKET }, { "_count", 6, SUFFIX_COUNT },
    { "_sum", 4, SUFFIX_SUM },       { "_gcount", 7, SUFFIX_GCOUNT },
    { "_gsum", 5, SUFFIX_GSUM },     { "_info", 5, SUFFIX_INFO },
};

static int om_suffix_allowed(uint8_t type, expo_suffix suffix)
{
    switch ((ingest_metric_type)type) {
    case INGEST_TYPE_COUNTER:
        return suffix == SUFFIX_TOTAL || suffix == SUFFIX_CREATED;
    case INGEST_TYPE_HISTOGRAM:
        return suffix == SUFFIX_BUCKET || suffix == SUFFIX_COUNT || suffix == SUFFIX_SUM ||
               suffix == SUFFIX_CREATED;
    case INGEST_TYPE_GAUGE_HISTOGRAM:
        return suffix == SUFFIX_BUCKET || suffix == SUFFIX_GCOUNT || suffix == SUFFIX_GSUM;
    case INGEST_TYPE_SUMMARY:
        return suffix == SUFFIX_NONE || suffix == SUFFIX_COUNT || suffix == SUFFIX_SUM ||
               suffix == SUFFIX_CREATED;
    case INGEST_TYPE_INFO:
        return suffix == SUFFIX_INFO;
    default:
        return suffix == SUFFIX_NONE;
    }
}

/* Which suffix (if any) turns family into name; -1 if name is not the
 * family's name plus one of the known suffixes. */
static int om_suffix_of(ndt_str family, ndt_str name)
{
    if (name.len < family.len || memcmp(name.ptr, family.ptr, family.len) != 0)
        return -1;
    size_t rest = name.len - family.len;
    if (rest == 0)
        return SUFFIX_NONE;
    for (size_t i = 0; i < NDT_ARRAY_LEN(om_suffixes); i++) {
        if (om_suffixes[i].len == rest &&
            memcmp(name.ptr + family.len, om_suffixes[i].text, rest) == 0)
            return (int)om_suffixes[i].suffix;
    }
    return -1;
}

static int om_type_from(const char *s, size_t len, uint8_t *type)
{
    static const struct {
        const char *name;
        size_t len;
        ingest_metric_type type;
    } types[] = {
        { "counter", 7, INGEST_TYPE_COUNTER },     { "gauge", 5, INGEST_TYPE_GAUGE },
        { "histogram", 9, INGEST_TYPE_HISTOGRAM },
        { "gaugehistogram", 14, INGEST_TYPE_GAUGE_HISTOGRAM },
        { "stateset", 8, INGEST_TYPE_STATESET },   { "info", 4, INGEST_TYPE_INFO },
        { "summary", 7, INGEST_TYPE_SUMMARY },     { "unknown", 7, INGEST_TYPE_UNKNOWN },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(types); i++) {
        if (types[i].len == len && memcmp(types[i].name, s, len) == 0) {
            *type = (uint8_t)types[i].type;
            return NDT_OK;
        }
    }
    return NDT_ERROR;
}

/* Starts a new family; a name seen before means interleaving. */
static int om_new_family(expo_parser *p, const char *at, ndt_str name)
{
    char q[80];
    uint32_t hash = family_hash(name.ptr, name.len);
    if (family_lookup_hashed(p, name.ptr, name.len, hash, NULL))
        return expo_fail(p, at, "metric family %s appears twice (families must not be interleaved)",
                         expo_quote(q, sizeof(q), name.ptr, name.len));
    if (family_add(p, name, hash, &p->current) != NDT_OK)
        return NDT_ERROR;
    p->has_current = 1;
    p->om_last_valid = 0;
    return NDT_OK;
}

static int om_metadata(expo_parser *p, const char *kw, const char *s, const char *e)
{
    char q[80], q2[80];
    const char *ns = s;
    s = scan_metric_name(s, e);
    if (s == ns)
        return expo_fail(p, ns, "invalid metric name in comment");
    if (s == e || *s != ' ')
        return expo_fail(p, s, "expected a space after the metric name");
    ndt_str name = { ns, (size_t)(s - ns) };
    s++;
    if (p->has_current && ndt_str_eq(p->families[p->current].name, name)) {
        if (p->families[p->current].flags & FAMILY_HAS_SAMPLES)
            return expo_fail(p, kw, "metadata for %s after its samples",
                             expo_quote(q, sizeof(q), name.ptr, name.len));
    } else if (om_new_family(p, ns, name) != NDT_OK) {
        return NDT_ERROR;
    }
    expo_family *f = &p->families[p->current];
    ndt_str text = { s, (size_t)(e - s) };
    if (*kw == 'H') {
        if (f->flags & FAMILY_HAS_HELP)
            return expo_fail(p, kw, "second HELP line for metric name %s",
                             expo_quote(q, sizeof(q), name.ptr, name.len));
        if (check_help_escapes(p, s, e, 1) != NDT_OK)
            return NDT_ERROR;
        if (!utf8_valid(s, text.len))
            return expo_fail(p, s, "HELP text is not valid UTF-8");
        f->help = text;
        f->flags |= FAMILY_HAS_HELP;
    } else if (*kw == 'T') {
        if (f->flags & FAMILY_HAS_TYPE)
            return expo_fail(p, kw, "second TYPE line for metric name %s",
                             expo_quote(q, sizeof(q), name.ptr, name.len));
        if (om_type_from(s, text.len, &f->type) != NDT_OK)
            return expo_fail(p, s, "unknown metric type %s",
                             expo_quote(q, sizeof(q), s, text.len));
        f->flags |= FAMILY_HAS_TYPE;
    } else {
        if (f->flags & FAMILY_HAS_UNIT)
            return expo_fail(p, kw, "second UNIT line for metric name %s",
                             expo_quote(q, sizeof(q), name.ptr, name.len));
        for (const char *c = s; c < e; c++) {
            if (!char_is(*c, CC_METRIC))
                return expo_fail(p, c, "invalid unit %s", expo_quote(q, sizeof(q), s, text.len));
        }
        if (text.len && !(name.len > text.len + 1 &&
                          memcmp(name.ptr + name.len - text.len, s, text.len) == 0 &&
                          name.ptr[name.len - text.len - 1] == '_'))
            return expo_fail(p, s, "unit %s is not a suffix of metric name %s",
                             expo_quote(q, sizeof(q), s, text.len),
                             expo_quote(q2, sizeof(q2), name.ptr, name.len));
        f->unit = text;
        f->flags |= FAMILY_HAS_UNIT;
    }
    return p->line_complete ? NDT_OK : expo_fail_eof(p, e);
}

static int om_comment(expo_parser *p, const char *s, const char *e)
{
    size_t len = (size_t)(e - s);
    if (len == 5 && memcmp(s, "# EOF", 5) == 0) {
        p->seen_eof = 1;
        return NDT_OK;
    }
    if (len >= 7 && s[1] == ' ' && s[6] == ' ' &&
        (memcmp(s + 2, "HELP", 4) == 0 || memcmp(s + 2, "TYPE", 4) == 0 ||
         memcmp(s + 2, "UNIT", 4) == 0))
        return om_metadata(p, s + 2, s + 7, e);
    return expo_fail(p, s, "only '# HELP', '# TYPE', '# UNIT' and '# EOF' comments are allowed in OpenMetrics");
}

/* {name="value",...}: s is just past '{'; returns past '}' in *sp. */
static int om_labels(expo_parser *p, const char **sp, const char *e, ndt_str family)
{
    const char *s = *sp;
    if (s < e && *s == '}') {
        *sp = s + 1;
        return NDT_OK;
    }
    for (;;) {
        const char *ln = s;
        s = scan_label_name(s, e);
        if (s == ln)
            return expo_fail(p, ln, "invalid label name");
        ndt_str name = { ln, (size_t)(s - ln) };
        if (ndt_str_eq_cstr(name, "__name__"))
            return expo_fail(p, ln, "label name \"__name__\" is reserved");
        if (s == e || *s != '=')
            return expo_fail(p, s, "expected '=' after label name");
        s++;
        if (s == e || *s != '"')
            return expo_fail(p, s, "expected '\"' at start of label value");
        ndt_str value;
        s = read_label_value(p, s + 1, e, &value);
        if (!s)
            return NDT_ERROR;
        if (scratch_add(p, ln, name, value, family) != NDT_OK)
            return NDT_ERROR;
        if (s < e && *s == '}') {
            *sp = s + 1;
            return NDT_OK;
        }
        if (s == e || *s != ',')
            return expo_fail(p, s, "expected ',' or '}' after label value");
        s++;
        if (s < e && *s == '}')
            return expo_fail(p, s, "trailing comma in label set");
    }
}

/* Value and optional timestamp after "{...}" or the name; s at the space. */
static int om_value_and_timestamp(expo_parser *p, const char **sp, const char *e,
                                  double *value, int64_t *ts)
{
    char q[80];
    const char *s = *sp;
    if (s == e || *s != ' ')
        return expo_fail(p, s, "expected a space before the value");
    const char *vs = ++s;
    s = ingest_number_scan_decimal(vs, e, value);
    if (!s || (s < e && *s != ' ')) {
        s = scan_until_space(vs, e);
        if (ingest_number_parse_float(vs, (size_t)(s - vs), value) != NDT_OK)
            return expo_fail(p, vs, "expected number as value, got %s",
                             expo_quote(q, sizeof(q), vs, (size_t)(s - vs)));
    }
    *ts = INGEST_NO_TIMESTAMP;
    if (s + 1 < e && s[1] != '#') {
        const char *ts_start = ++s;
        s = scan_until_space(s, e);
        if (ingest_number_parse_om_timestamp(ts_start, (size_t)(s - ts_start), ts) != NDT_OK)
            return expo_fail(p, ts_start, "expected timestamp (seconds), got %s",
                             expo_quote(q, sizeof(q), ts_start, (size_t)(s - ts_start)));
    }
    *sp = s;
    return NDT_OK;
}

static int om_exemplar(expo_parser *p, const char *s, const char *e, const expo_family *f,
                       expo_suffix suffix, ingest_exemplar **out)
{
    int allowed = (f->type == INGEST_TYPE_COUNTER && suffix == SUFFIX_TOTAL) ||
                  ((f->type == INGEST_TYPE_HISTOGRAM || f->type == INGEST_TYPE_GAUGE_HISTOGRAM) &&
                   suffix == SUFFIX_BUCKET);
    if (e - s < 4 || memcmp(s, " # {", 4) != 0)
        return expo_fail(p, s, "unexpected text after the sample (expected ' # {' of an exemplar)");
    if (!allowed)
        return expo_fail(p, s + 1, "exemplars are only allowed on counter _total and histogram _bucket samples");
    ingest_exemplar *x = ndt_arena_alloc(p->arena, sizeof(*x));
    if (!x)
        return expo_fail(p, s, "out of memory for this scrape");
    s += 4;
    const char *ls = s;
    if (om_labels(p, &s, e, f->name) != NDT_OK)
        return NDT_ERROR;
    size_t runes = 0;
    for (size_t i = 0; i < p->nscratch; i++)
        runes += utf8_runes(p->scratch[i].name) + utf8_runes(p->scratch[i].value);
    if (runes > EXEMPLAR_MAX_RUNES)
        return expo_fail(p, ls, "exemplar labels are longer than %d characters", EXEMPLAR_MAX_RUNES);
    if (scratch_commit(p, ls, &x->labels, &x->nlabels) != NDT_OK)
        return NDT_ERROR;
    if (om_value_and_timestamp(p, &s, e, &x->value, &x->timestamp_ms) != NDT_OK)
        return NDT_ERROR;
    if (s != e)
        return expo_fail(p, s, "unexpected text after the exemplar");
    *out = x;
    return NDT_OK;
}

/* Finds the family of a sample name, opening a new one if needed. */
static int om_resolve(expo_parser *p, const char *at, ndt_str name, expo_suffix *suffix)
{
    char q[80], q2[80];
    if (p->has_current) {
        const expo_family *f = &p->families[p->current];
        int sfx = om_suffix_of(f->name, name);
        if (sfx >= 0 && om_suffix_allowed(f->type, (expo_suffix)sfx)) {
            *suffix = (expo_suffix)sfx;
            return NDT_OK;
        }
        /* The bare name of a family that needs a suffix, or a suffix its
         * type reserves but does not allow, is a clash; families without
         * suffixes (gauge, stateset, unknown) leave foo_total to others. */
        int has_suffixes = f->type != INGEST_TYPE_GAUGE && f->type != INGEST_TYPE_STATESET &&
                           f->type != INGEST_TYPE_UNKNOWN;
        if (sfx >= 0 && (sfx == SUFFIX_NONE || has_suffixes))
            return expo_fail(p, at, "sample %s is not valid in %s family %s",
                             expo_quote(q, sizeof(q), name.ptr, name.len),
                             ingest_metric_type_name((ingest_metric_type)f->type),
                             expo_quote(q2, sizeof(q2), f->name.ptr, f->name.len));
    }
    *suffix = SUFFIX_NONE;
    return om_new_family(p, at, name);
}

static int om_check_bound(expo_parser *p, const char *at, const char *label, const char *kind)
{
    const ingest_label *l = scratch_find(p, label);
    double v;
    char q[80];
    if (!l)
        return expo_fail(p, at, "%s without '%s' label", kind, label);
    if (ingest_number_parse_float(l->value.ptr, l->value.len, &v) != NDT_OK)
        return expo_fail(p, at, "expected float as value for '%s' label, got %s", label,
                         expo_quote(q, sizeof(q), l->value.ptr, l->value.len));
    return NDT_OK;
}

static int om_sample(expo_parser *p, const char *s, const char *e)
{
    const char *ns = s;
    expo_suffix suffix;
    ingest_sample sample;
    ingest_exemplar *exemplar = NULL;

    ndt_str name;
    if (p->om_last_valid && text_same_name(p, s, e)) {
        /* Same name as the previous sample, same family: no scan. */
        name = (ndt_str){ ns, p->cache_name.len };
        s += name.len;
        suffix = p->om_last_suffix;
    } else {
        s = scan_metric_name(s, e);
        if (s == ns)
            return expo_fail(p, ns, "invalid metric name");
        name = (ndt_str){ ns, (size_t)(s - ns) };
        if (om_resolve(p, ns, name, &suffix) != NDT_OK)
            return NDT_ERROR;
        p->cache_name = name;
        p->cache_valid = 1;
        p->om_last_suffix = suffix;
        p->om_last_valid = 1;
    }
    expo_family *f = &p->families[p->current];
    f->flags |= FAMILY_HAS_SAMPLES;

    p->nscratch = 0;
    p->label_filter = 0;
    if (s < e && *s == '{') {
        s++;
        if (om_labels(p, &s, e, f->name) != NDT_OK)
            return NDT_ERROR;
    }
    if ((f->type == INGEST_TYPE_HISTOGRAM || f->type == INGEST_TYPE_GAUGE_HISTOGRAM) &&
        suffix == SUFFIX_BUCKET && om_check_bound(p, ns, "le", "histogram bucket") != NDT_OK)
        return NDT_ERROR;
    if (f->type == INGEST_TYPE_SUMMARY && suffix == SUFFIX_NONE &&
        om_check_bound(p, ns, "quantile", "summary quantile") != NDT_OK)
        return NDT_ERROR;

    sample_from_family(&sample, f, p->line);
    sample.name = name;
    if (scratch_commit(p, ns, &sample.labels, &sample.nlabels) != NDT_OK)
        return NDT_ERROR;
    if (om_value_and_timestamp(p, &s, e, &sample.value, &sample.timestamp_ms) != NDT_OK)
        return NDT_ERROR;
    if (s < e) {
        if (om_exemplar(p, s, e, f, suffix, &exemplar) != NDT_OK)
            return NDT_ERROR;
        sample.exemplar = exemplar;
    }
    return emit(p, &sample, e);
}

static int om_line(expo_parser *p, const char *s, const char *e)
{
    if (p->seen_eof)
        return expo_fail(p, s, "unexpected data after # EOF");
    if (s == e)
        return expo_fail(p, s, "empty line (not allowed in OpenMetrics)");
    if (*s == '#')
        return om_comment(p, s, e);
    return om_sample(p, s, e);
}

/* ---- entry points --------------------------------------------------- */

static int parse_lines(expo_parser *p, const char *s)
{
    while (s < p->end) {
        const char *nl = memchr(s, '\n', (size_t)(p->end - s));
        const char *e = nl ? nl : p->end;
        p->line++;
        p->line_start = s;
        p->line_complete = nl != NULL;
        if ((size_t)(e - s) > INGEST_EXPO_MAX_LINE)
            return expo_fail(p, s + INGEST_EXPO_MAX_LINE,
                             "line longer than %d bytes", INGEST_EXPO_MAX_LINE);
        int rc = p->openmetrics ? om_line(p, s, e) : text_line(p, s, e);
        if (rc != NDT_OK)
            return rc;
        s = nl ? nl + 1 : p->end;
    }
    if (p->openmetrics && !p->seen_eof) {
        /* Point just past the last line. */
        if (p->line_complete || p->line == 0) {
            p->line++;
            p->line_start = p->end;
        }
        return expo_fail(p, p->end, "missing # EOF at end of input");
    }
    return NDT_OK;
}

int ingest_expo_parse(const char *buf, size_t len, ingest_expo_format format,
                      ndt_arena *arena, ingest_expo_sample_fn fn, void *ctx,
                      ingest_expo_error *err)
{
    /* The parser state is large (the label scratch) but lives on the
     * stack: nothing to free, and the scraper's threads have room. */
    expo_parser p;
    ingest_expo_error unused;

    memset(&p, 0, offsetof(expo_parser, scratch));
    p.end = buf + len;
    p.openmetrics = format == INGEST_EXPO_OPENMETRICS;
    p.arena = arena;
    p.fn = fn;
    p.ctx = ctx;
    p.err = err ? err : &unused;
    p.line_start = buf;
    memset(p.err, 0, sizeof(*p.err));
    /* Size the family table from the input (a family takes >= 100 bytes
     * in real expositions) so that it rarely grows during a parse. */
    p.index_initial = 512;
    while (p.index_initial < len / 128 && p.index_initial < ((size_t)1 << 16))
        p.index_initial *= 2;

    int rc = parse_lines(&p, buf);
    free(p.families);
    free(p.index);
    return rc;
}

ingest_expo_format ingest_expo_format_from_content_type(const char *content_type)
{
    if (!content_type)
        return INGEST_EXPO_TEXT;
    const char *s = content_type;
    while (*s == ' ' || *s == '\t')
        s++;
    static const char om[] = "application/openmetrics-text";
    size_t n = sizeof(om) - 1;
    if (strncasecmp(s, om, n) == 0 && (s[n] == '\0' || s[n] == ';' || s[n] == ' '))
        return INGEST_EXPO_OPENMETRICS;
    return INGEST_EXPO_TEXT;
}
