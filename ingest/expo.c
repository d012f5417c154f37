/*
 * expo.c: the Prometheus text 0.0.4 and OpenMetrics 1.0 text parsers,
 * the part both share: the line loop and its bounds, errors, the family
 * table and label handling.  The grammars are in expo_text.c and
 * expo_om.c (their top comments list what each accepts and rejects), the
 * scanners they share inline in expo_internal.h.
 *
 * What it promises
 *   - One pass over the buffer, line by line (memchr finds the end of the
 *     line, then the line is parsed inside those bounds, so no scanner can
 *     run past a line and the line-length bound costs nothing extra).
 *     memchr stays: an inline SSE2 scan and a 64-byte-block bit mask of
 *     line ends measured no faster on node-exporter pages (session 4,
 *     docs/PERFORMANCE.md).
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
 */
#include "ingest/expo_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- errors --------------------------------------------------------- */

/* Go-%q-like quoting of at most 64 bytes, for error messages. */
const char *ingest_expo_quote(char *out, size_t size, const char *s, size_t len)
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

int ingest_expo_fail(ingest_expo_parser *p, const char *at, const char *fmt, ...)
{
    va_list ap;
    p->err->line = p->line;
    p->err->col = (uint32_t)(at - p->line_start) + 1;
    va_start(ap, fmt);
    vsnprintf(p->err->reason, sizeof(p->err->reason), fmt, ap);
    va_end(ap);
    return NDT_ERROR;
}

int ingest_expo_fail_eof(ingest_expo_parser *p, const char *at)
{
    return ingest_expo_fail(p, at, "unexpected end of input stream");
}

/* Go-%q-like quoting of one byte: 'x', '\n'. */
const char *ingest_expo_quote_char(char *out, size_t size, const char *at, const char *e)
{
    if (at >= e)
        snprintf(out, size, "'\\n'");
    else if ((unsigned char)*at < 0x20 || (unsigned char)*at >= 0x7f)
        snprintf(out, size, "'\\x%02x'", (unsigned char)*at);
    else
        snprintf(out, size, "'%c'", *at);
    return out;
}

/* Go's utf8.ValidString: no overlongs, no surrogates, <= U+10FFFF. */
int ingest_expo_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *e = s + len;
    while (s < e) {
#ifdef EXPO_SSE2
        while (e - s >= 16 && !_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)s)))
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

/* ---- family table --------------------------------------------------- */

/* Eight bytes per step: family names are long (node_filesystem_...).
 * The tail is the last eight bytes of the name, loaded overlapping (no
 * variable-length copy), or the bytes themselves for short names. */
uint32_t ingest_expo_family_hash(const char *name, size_t len)
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

ingest_expo_family *ingest_expo_family_lookup_hashed(ingest_expo_parser *p, const char *name,
                                                     size_t len, uint32_t h, size_t *out_index)
{
    if (!p->index_cap)
        return NULL;
    size_t mask = p->index_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t slot = p->index[i];
        if (!slot)
            return NULL;
        ingest_expo_family *f = &p->families[slot - 1];
        if (f->hash == h && f->name.len == len && memcmp(f->name.ptr, name, len) == 0) {
            if (out_index)
                *out_index = slot - 1;
            return f;
        }
    }
}

ingest_expo_family *ingest_expo_family_lookup(ingest_expo_parser *p, const char *name, size_t len,
                                              size_t *out_index)
{
    return ingest_expo_family_lookup_hashed(p, name, len, ingest_expo_family_hash(name, len),
                                            out_index);
}

static int family_index_grow(ingest_expo_parser *p)
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
int ingest_expo_family_add(ingest_expo_parser *p, ndt_str name, uint32_t hash, size_t *out)
{
    if (p->nfamilies == p->families_cap) {
        size_t cap = p->families_cap ? p->families_cap * 2 : p->index_initial / 2;
        if (cap > UINT32_MAX / 2)
            return ingest_expo_fail(p, name.ptr, "too many metric families");
        ingest_expo_family *f = realloc(p->families, cap * sizeof(*f));
        if (!f)
            return ingest_expo_fail(p, name.ptr, "out of memory for the family table");
        p->families = f;
        p->families_cap = cap;
    }
    if ((p->nfamilies + 1) * 2 > p->index_cap && family_index_grow(p) != NDT_OK)
        return ingest_expo_fail(p, name.ptr, "out of memory for the family table");
    ingest_expo_family *f = &p->families[p->nfamilies];
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

/* ---- labels: slow paths (the fast ones are inline in expo_internal.h) */

/* The slow path of expo_read_label_value: escapes or non-ASCII bytes from s. */
const char *ingest_expo_label_value_slow(ingest_expo_parser *p, const char *start, const char *s,
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
                    return ingest_expo_fail_eof(p, s + 1), NULL;
                ingest_expo_fail(p, s,
                                 "invalid escape sequence '\\\\n' (backslash at end of line)");
                return NULL;
            }
            if (s[1] != '\\' && s[1] != '"' && s[1] != 'n') {
                ingest_expo_fail(p, s, "invalid escape sequence '\\%c'", s[1]);
                return NULL;
            }
            escaped = 1;
            s++;
        }
    }
    if (s == e) {
        if (!p->line_complete)
            return ingest_expo_fail_eof(p, s), NULL;
        ingest_expo_fail(p, start - 1, "label value %s contains unescaped new-line",
                         ingest_expo_quote(q, sizeof(q), start, (size_t)(s - start)));
        return NULL;
    }
    if (high && !ingest_expo_utf8_valid(start, (size_t)(s - start))) {
        ingest_expo_fail(p, start - 1, "invalid label value %s (not valid UTF-8)",
                         ingest_expo_quote(q, sizeof(q), start, (size_t)(s - start)));
        return NULL;
    }
    if (!escaped) {
        value->ptr = start;
        value->len = (size_t)(s - start);
        return s + 1;
    }
    char *out = ndt_arena_alloc(p->arena, (size_t)(s - start));
    if (!out) {
        ingest_expo_fail(p, start, "out of memory for this scrape");
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

int ingest_expo_scratch_duplicate(ingest_expo_parser *p, const char *at, ndt_str name,
                                  ndt_str family)
{
    char q[80];
    for (size_t i = 0; i < p->nscratch; i++) {
        if (ndt_str_eq(p->scratch[i].name, name))
            return ingest_expo_fail(p, at, "duplicate label names for metric %s",
                                    ingest_expo_quote(q, sizeof(q), family.ptr, family.len));
    }
    return NDT_OK;
}

/* HELP text: only \\ and \n (text) or also \" (OpenMetrics) are escapes. */
int ingest_expo_check_help_escapes(ingest_expo_parser *p, const char *s, const char *e,
                                   int openmetrics)
{
    while ((s = memchr(s, '\\', (size_t)(e - s))) != NULL) {
        if (s + 1 == e) {
            if (!p->line_complete)
                return ingest_expo_fail_eof(p, e);
            return ingest_expo_fail(p, s,
                                    "invalid escape sequence '\\\\n' (backslash at end of line)");
        }
        if (s[1] != '\\' && s[1] != 'n' && !(openmetrics && s[1] == '"'))
            return ingest_expo_fail(p, s, "invalid escape sequence '\\%c'", s[1]);
        s += 2;
    }
    return NDT_OK;
}

/* ---- entry points --------------------------------------------------- */

static int parse_lines(ingest_expo_parser *p, const char *s)
{
    while (s < p->end) {
        const char *nl = memchr(s, '\n', (size_t)(p->end - s));
        const char *e = nl ? nl : p->end;
        p->line++;
        p->line_start = s;
        p->line_complete = nl != NULL;
        if ((size_t)(e - s) > INGEST_EXPO_MAX_LINE)
            return ingest_expo_fail(p, s + INGEST_EXPO_MAX_LINE, "line longer than %d bytes",
                                    INGEST_EXPO_MAX_LINE);
        int rc = p->openmetrics ? ingest_expo_om_line(p, s, e) : ingest_expo_text_line(p, s, e);
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
        return ingest_expo_fail(p, p->end, "missing # EOF at end of input");
    }
    return NDT_OK;
}

int ingest_expo_parse(const char *buf, size_t len, ingest_expo_format format, ndt_arena *arena,
                      ingest_expo_sample_fn fn, void *ctx, ingest_expo_error *err)
{
    return ingest_expo_parse_recording(buf, len, format, arena, fn, ctx, err, NULL);
}

int ingest_expo_parse_recording(const char *buf, size_t len, ingest_expo_format format,
                                ndt_arena *arena, ingest_expo_sample_fn fn, void *ctx,
                                ingest_expo_error *err, ingest_expo_shape *shape)
{
    /* The parser state is large (the 16 KiB label scratch) but lives on
     * the stack: only the family table is heap memory, freed below. */
    ingest_expo_parser p;
    ingest_expo_error unused;

    if (shape)
        ingest_expo_shape_begin(shape, buf, format);
    if (format == INGEST_EXPO_PROTOBUF) {
        ingest_expo_error *e = err ? err : &unused;
        memset(e, 0, sizeof(*e));
        return ingest_expo_proto_parse(buf, len, arena, fn, ctx, e);
    }
    memset(&p, 0, offsetof(ingest_expo_parser, scratch));
    p.end = buf + len;
    p.openmetrics = format == INGEST_EXPO_OPENMETRICS;
    p.arena = arena;
    p.fn = fn;
    p.ctx = ctx;
    p.err = err ? err : &unused;
    p.line_start = buf;
    memset(p.err, 0, sizeof(*p.err));
    /* Size the family table from the input so that it does not grow
     * during a parse of a real exposition: growing costs a realloc copy
     * and a rehash, which measured 7 % of a node-exporter page's parse.
     * A family takes 200-300 bytes there (HELP, TYPE and its samples), so
     * room for one family per 128 bytes (the index twice that) covers it;
     * a hostile page of tiny families still grows by doubling. */
    p.index_initial = 512;
    while (p.index_initial < len / 64 && p.index_initial < ((size_t)1 << 16))
        p.index_initial *= 2;

    p.shape = shape;
    int rc = parse_lines(&p, buf);
    if (shape)
        ingest_expo_shape_end(shape, p.end, rc == NDT_OK);
    free(p.families);
    free(p.index);
    return rc;
}

/* Whether the parameters after a media type (";k=v; k2=v2") hold key=want
 * (keys case-insensitive, values exact, optional quotes). */
static int content_type_param_is(const char *params, const char *key, const char *want)
{
    size_t klen = strlen(key), wlen = strlen(want);
    const char *s = params;
    while ((s = strchr(s, ';')) != NULL) {
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        if (strncasecmp(s, key, klen) != 0 || s[klen] != '=')
            continue;
        const char *v = s + klen + 1;
        int quoted = *v == '"';
        v += quoted;
        if (strncmp(v, want, wlen) != 0)
            return 0;
        char end = v[wlen];
        if (quoted)
            return end == '"';
        return end == '\0' || end == ';' || end == ' ' || end == '\t';
    }
    return 0;
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
    static const char pb[] = "application/vnd.google.protobuf";
    n = sizeof(pb) - 1;
    if (strncasecmp(s, pb, n) == 0 && (s[n] == ';' || s[n] == ' ') &&
        content_type_param_is(s + n, "proto", "io.prometheus.client.MetricFamily") &&
        content_type_param_is(s + n, "encoding", "delimited"))
        return INGEST_EXPO_PROTOBUF;
    return INGEST_EXPO_TEXT;
}

void ingest_expo_error_format(const ingest_expo_error *err, char *buf, size_t size)
{
    if (err->binary)
        snprintf(buf, size, "byte %zu: %s", err->offset, err->reason);
    else
        snprintf(buf, size, "%u:%u: %s", err->line, err->col, err->reason);
}
