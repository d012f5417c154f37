/*
 * expo_internal.h: what expo.c, expo_text.c and expo_om.c share (private
 * to those three files).
 *
 * The parser state, the family table's entry, and the scanners every
 * grammar runs for every byte: they are static inline here so that the
 * hot loops of both grammars inline them (names and label values are
 * nearly all of a scrape's bytes).  Slow paths are ordinary functions in
 * expo.c.
 */
#ifndef INGEST_EXPO_INTERNAL_H
#define INGEST_EXPO_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/arena.h"
#include "ingest/expo.h"

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

#define EXPO_FAMILY_HAS_TYPE 0x01
#define EXPO_FAMILY_HAS_HELP 0x02
#define EXPO_FAMILY_HAS_UNIT 0x04
#define EXPO_FAMILY_HAS_SAMPLES 0x08

#define EXPO_EXEMPLAR_MAX_RUNES 128

typedef struct ingest_expo_family {
    ndt_str name;
    ndt_str help;
    ndt_str unit;
    uint32_t hash;
    uint8_t type;  /* ingest_metric_type */
    uint8_t flags; /* EXPO_FAMILY_* */
} ingest_expo_family;

/* How a sample name relates to its family (selects the le/quantile and
 * exemplar rules). */
typedef enum ingest_expo_suffix {
    EXPO_SUFFIX_NONE = 0,
    EXPO_SUFFIX_TOTAL,
    EXPO_SUFFIX_CREATED,
    EXPO_SUFFIX_BUCKET,
    EXPO_SUFFIX_COUNT,
    EXPO_SUFFIX_SUM,
    EXPO_SUFFIX_GCOUNT,
    EXPO_SUFFIX_GSUM,
    EXPO_SUFFIX_INFO,
} ingest_expo_suffix;

typedef struct ingest_expo_parser {
    const char *end; /* end of the whole input */
    int openmetrics;
    ndt_arena *arena;
    ingest_expo_sample_fn fn;
    void *ctx;
    ingest_expo_error *err;

    uint32_t line;
    const char *line_start;
    int line_complete; /* the current line ends with LF */
    int seen_eof;      /* OpenMetrics: "# EOF" was read */

    ingest_expo_family *families;
    size_t nfamilies, families_cap;
    uint32_t *index;      /* open addressing: family index + 1 */
    size_t index_cap;     /* power of two */
    size_t index_initial; /* first size, from the input size */

    /* Text: the last sample name and its family (most lines repeat it). */
    ndt_str cache_name;
    size_t cache_family;
    int cache_valid;
    /* OpenMetrics: the family samples currently belong to, and how the
     * previous sample name (cache_name) relates to it. */
    size_t current;
    int has_current;
    int om_last_valid;
    ingest_expo_suffix om_last_suffix;

    /* Recording the page's shape (expo_shape.c), or NULL. */
    ingest_expo_shape *shape;

    size_t nscratch;
    uint64_t label_filter; /* see expo_scratch_add */
    ingest_label scratch[INGEST_EXPO_MAX_LABELS];
} ingest_expo_parser;

/* The protobuf exposition (expo_proto.c); ingest_expo_parse dispatches. */
int ingest_expo_proto_parse(const char *buf, size_t len, ndt_arena *arena, ingest_expo_sample_fn fn,
                            void *ctx, ingest_expo_error *err);

/* ---- shared functions (expo.c) -------------------------------------- */

/* A sample's value and optional timestamp, from where its name and labels
 * end to the end of its line (text: vs is past the blanks before the
 * value; OpenMetrics: *sp is at the space before it, and is left where
 * the value and timestamp end, an exemplar may follow).  The grammars
 * parse with them, and a shape's replay reads values with them. */
int ingest_expo_text_value(ingest_expo_parser *p, const char *vs, const char *e, double *value,
                           int64_t *timestamp_ms);
int ingest_expo_om_value(ingest_expo_parser *p, const char **sp, const char *e, double *value,
                         int64_t *timestamp_ms);

/* Shape recording (expo_shape.c): a sample's name and labels end at
 * key_end on the line that ends at line_end (its LF). */
void ingest_expo_shape_note(ingest_expo_parser *p, const char *key_end, const char *line_end);
void ingest_expo_shape_begin(ingest_expo_shape *shape, const char *buf, ingest_expo_format format);
void ingest_expo_shape_end(ingest_expo_shape *shape, const char *end, int parsed);

int ingest_expo_fail(ingest_expo_parser *p, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ingest_expo_fail_eof(ingest_expo_parser *p, const char *at);
const char *ingest_expo_quote(char *out, size_t size, const char *s, size_t len);
const char *ingest_expo_quote_char(char *out, size_t size, const char *at, const char *e);
int ingest_expo_utf8_valid(const char *str, size_t len);
uint32_t ingest_expo_family_hash(const char *name, size_t len);
ingest_expo_family *ingest_expo_family_lookup_hashed(ingest_expo_parser *p, const char *name,
                                                     size_t len, uint32_t h, size_t *out_index);
ingest_expo_family *ingest_expo_family_lookup(ingest_expo_parser *p, const char *name, size_t len,
                                              size_t *out_index);
int ingest_expo_family_add(ingest_expo_parser *p, ndt_str name, uint32_t hash, size_t *out);
const char *ingest_expo_label_value_slow(ingest_expo_parser *p, const char *start, const char *s,
                                         const char *e, ndt_str *value);
int ingest_expo_scratch_duplicate(ingest_expo_parser *p, const char *at, ndt_str name,
                                  ndt_str family);
int ingest_expo_check_help_escapes(ingest_expo_parser *p, const char *s, const char *e,
                                   int openmetrics);
int ingest_expo_text_line(ingest_expo_parser *p, const char *s, const char *e);
int ingest_expo_om_line(ingest_expo_parser *p, const char *s, const char *e);

/* ---- character classes ---------------------------------------------- */

static inline int expo_is_blank(char c) { return c == ' ' || c == '\t'; }

static inline const char *expo_skip_blank(const char *s, const char *e)
{
    while (s < e && expo_is_blank(*s))
        s++;
    return s;
}

static inline const char *expo_scan_until_blank(const char *s, const char *e)
{
    while (s < e && !expo_is_blank(*s))
        s++;
    return s;
}

static inline const char *expo_scan_until_space(const char *s, const char *e)
{
    const char *sp = memchr(s, ' ', (size_t)(e - s));
    return sp ? sp : e;
}

/* Name character classes (one table lookup per byte). */
#define EXPO_CC_METRIC_START 1 /* [a-zA-Z_:] */
#define EXPO_CC_METRIC 2       /* [a-zA-Z0-9_:] */
#define EXPO_CC_LABEL_START 4  /* [a-zA-Z_] */
#define EXPO_CC_LABEL 8        /* [a-zA-Z0-9_] */

/* clang-format off */
static const uint8_t expo_char_class[256] = {
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
/* clang-format on */

static inline int expo_char_is(char c, uint8_t cls)
{
    return expo_char_class[(unsigned char)c] & cls;
}

#ifdef EXPO_SWAR
/* High bit of each byte of x (all bytes < 0x80) set iff lo <= byte <= hi. */
static inline uint64_t expo_swar_in_range(uint64_t x, unsigned lo, unsigned hi)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    uint64_t ge = x + ones * (0x80 - lo);
    uint64_t gt = x + ones * (0x7f - hi);
    return ge & ~gt & (ones * 0x80);
}

/* Length of the run of name characters at the start of an 8-byte word
 * (8 if all are); colon says whether ':' counts (metric names). */
static inline unsigned expo_swar_name_run(uint64_t w, int colon)
{
    const uint64_t high = UINT64_C(0x8080808080808080);
    uint64_t x = w & ~high;
    uint64_t ok = expo_swar_in_range(x | UINT64_C(0x2020202020202020), 0x61, 0x7a) |
                  expo_swar_in_range(x, 0x30, colon ? 0x3a : 0x39) |
                  expo_swar_in_range(x, 0x5f, 0x5f);
    uint64_t bad = ~ok & ~w & high; /* bytes >= 0x80 are never valid */
    bad |= w & high;
    return bad ? (unsigned)__builtin_ctzll(bad) >> 3 : 8;
}
#endif

/* Skips name characters from s (the first one is already checked). */
static inline const char *expo_scan_name_rest(const char *s, const char *e, int colon)
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
        ok = _mm_or_si128(ok,
                          _mm_and_si128(_mm_cmpgt_epi8(x, before_0), _mm_cmplt_epi8(x, after_9)));
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
        unsigned run = expo_swar_name_run(w, colon);
        s += run;
        if (run < 8)
            return s;
    }
#endif
    uint8_t cls = colon ? EXPO_CC_METRIC : EXPO_CC_LABEL;
    while (s < e && expo_char_is(*s, cls))
        s++;
    return s;
}

static inline const char *expo_scan_metric_name(const char *s, const char *e)
{
    if (s == e || !expo_char_is(*s, EXPO_CC_METRIC_START))
        return s;
    return expo_scan_name_rest(s + 1, e, 1);
}

static inline const char *expo_scan_label_name(const char *s, const char *e)
{
    if (s == e || !expo_char_is(*s, EXPO_CC_LABEL_START))
        return s;
    return expo_scan_name_rest(s + 1, e, 0);
}

static inline int expo_str_has_suffix(ndt_str s, const char *suffix, size_t n)
{
    /* n is a constant at every call: the compiler turns this memcmp into
     * one or two word compares. */
    return s.len > n && memcmp(s.ptr + s.len - n, suffix, n) == 0;
}

/* ndt_str_eq without a memcmp call: names are short and usually equal
 * (consecutive samples of one metric), so compare words inline. */
static inline int expo_str_eq_inline(ndt_str a, ndt_str b)
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

/* Whether [s, e) holds a backslash: HELP text is checked for escapes on
 * every HELP line, nearly always finding none, and a call of memchr per
 * line cost more than this inline scan of 50-100 bytes. */
static inline int expo_has_backslash(const char *s, const char *e)
{
#ifdef EXPO_SSE2
    if (e - s >= 16) {
        /* Whole blocks, the last one overlapping its predecessor. */
        const __m128i backslash = _mm_set1_epi8('\\');
        for (;;) {
            if (e - s < 16)
                s = e - 16;
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
            if (_mm_movemask_epi8(_mm_cmpeq_epi8(x, backslash)))
                return 1;
            s += 16;
            if (s >= e)
                return 0;
        }
    }
#endif
    while (s < e) {
        if (*s++ == '\\')
            return 1;
    }
    return 0;
}

/* ---- labels --------------------------------------------------------- */

/* First byte in [s, e) that is '"', '\\' or non-ASCII (e if none).
 * Eight bytes at a time: label values are most of a scrape's bytes. */
static inline const char *expo_scan_value_plain(const char *s, const char *e)
{
#ifdef EXPO_SSE2
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    while (e - s >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)), x);
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

/* Reads a quoted label value; s is just past the opening quote.  Returns
 * the position after the closing quote, or NULL with the error set. */
static inline const char *expo_read_label_value(ingest_expo_parser *p, const char *s, const char *e,
                                                ndt_str *value)
{
    const char *start = s;
    s = expo_scan_value_plain(s, e);
    if (s < e && *s == '"') {
        value->ptr = start;
        value->len = (size_t)(s - start);
        return s + 1;
    }
    return ingest_expo_label_value_slow(p, start, s, e, value);
}

/* Adds a label to the scratch set, refusing duplicates and overflow.
 * A 64-bit filter on (length, last byte) makes the duplicate check free
 * for the common case of distinct names; p->label_filter is cleared with
 * p->nscratch. */
static inline int expo_scratch_add(ingest_expo_parser *p, const char *at, ndt_str name,
                                   ndt_str value, ndt_str family)
{
    uint64_t bit = UINT64_C(1) << ((name.len * 7 + (unsigned char)name.ptr[name.len - 1]) & 63);
    if ((p->label_filter & bit) && ingest_expo_scratch_duplicate(p, at, name, family) != NDT_OK)
        return NDT_ERROR;
    if (p->nscratch == INGEST_EXPO_MAX_LABELS)
        return ingest_expo_fail(p, at, "too many labels (more than %d)", INGEST_EXPO_MAX_LABELS);
    p->label_filter |= bit;
    p->scratch[p->nscratch].name = name;
    p->scratch[p->nscratch].value = value;
    p->nscratch++;
    return NDT_OK;
}

/* ---- emitting ------------------------------------------------------- */

static inline int expo_emit(ingest_expo_parser *p, ingest_sample *sample, const char *line_end)
{
    if (!p->line_complete)
        return ingest_expo_fail_eof(p, line_end);
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

static inline void expo_sample_from_family(ingest_sample *s, const ingest_expo_family *f,
                                           uint32_t line)
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

/* Does the line at s start with the previous sample's name (and then
 * something that cannot continue a name)? */
static inline int expo_same_name(const ingest_expo_parser *p, const char *s, const char *e)
{
    size_t n = p->cache_name.len;
    return p->cache_valid && (size_t)(e - s) > n && !expo_char_is(s[n], EXPO_CC_METRIC) &&
           expo_str_eq_inline(p->cache_name, (ndt_str){ s, n });
}

/* Moves the scratch labels into the arena (the callback may keep them). */
static inline int ingest_expo_scratch_commit(ingest_expo_parser *p, const char *at,
                                             const ingest_label **out, size_t *n)
{
    *out = NULL;
    *n = p->nscratch;
    if (!p->nscratch)
        return NDT_OK;
    ingest_label *labels = ndt_arena_alloc(p->arena, p->nscratch * sizeof(*labels));
    if (!labels)
        return ingest_expo_fail(p, at, "out of memory for this scrape");
    memcpy(labels, p->scratch, p->nscratch * sizeof(*labels));
    *out = labels;
    p->nscratch = 0;
    p->label_filter = 0;
    return NDT_OK;
}

#endif
