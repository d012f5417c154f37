/*
 * decode_influx.c: InfluxDB line protocol back into samples, as
 * ingest/encode_influx.c writes it (and as Telegraf and other producers
 * of the same topic write it):
 *
 *   node_cpu_seconds_total,cpu=0,instance=h:9100,job=node,mode=idle value=1234.5 1767323045678
 *
 * One sample per numeric field: the field `value` is the measurement
 * itself (ndtpipe's own lines), any other field f is the sample
 * `measurement_f` (Telegraf's prometheus_client naming); integers (`1i`,
 * `1u`) and floats are numbers, booleans are 1 and 0, string fields carry
 * no sample and are skipped.  The nh_* fields of ndtpipe's native-
 * histogram flattening (docs/KAFKA.md) are not samples: they become the
 * native histogram of the line's value sample.  Tags are the labels.  The timestamp is
 * required and read as milliseconds (the topic's precision); a line
 * without one has no time the twin could use.  Blank lines and `#`
 * comments are skipped; a line may end in CRLF.
 *
 * Escapes are undone as the encoder writes them: `\,` and `\ ` everywhere,
 * `\=` in tag keys, tag values and field keys, and the two-character `\t`
 * `\n` `\r` `\f` become the control byte (the encoder's spelling; InfluxDB
 * itself would keep them as two characters).  A backslash before anything
 * else is a literal backslash, as in the line-protocol spec, which is what
 * makes `a\\,b` read back as `a\,b`.  String field values may hold
 * escaped quotes and raw newlines.
 *
 * Names without escapes are views into the message; unescaped ones live
 * in a scratch area twice the message's size (one half for the line's
 * names, one for `measurement_field` names), on the stack for small
 * messages, so nothing is allocated per line.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/number.h"
#include "harmonize/decode_internal.h"

/* Names are scanned sixteen bytes at a time with SSE2 (every x86-64 has
 * it), else byte by byte. */
#if defined(__SSE2__)
#include <emmintrin.h>
#define INFLUX_SSE2 1
#endif

#define INFLUX_MAX_FIELDS 128
#define INFLUX_STACK_SCRATCH 4096

/* Compare with a literal without strlen or a memcmp call (per tag and
 * per field). */
#define NAME_IS(name, lit) \
    ((name).len == sizeof(lit) - 1 && memcmp((name).ptr, lit, sizeof(lit) - 1) == 0)

typedef struct influx_field {
    ndt_str key;
    double value;
} influx_field;

typedef struct influx_reader {
    const char *p;
    const char *end;
    unsigned line;
    char *scratch; /* names of the current line */
    size_t used;
    char *name_area; /* measurement_field, one at a time */
    char *err;
    size_t errlen;
    /* The line's native histogram (nh_* fields), buckets malloc'ed. */
    unsigned nh_seen;
    hdl_native_histogram nh;
    hdl_native_bucket *pos, *neg;
    size_t npos, nneg, pos_cap, neg_cap;
} influx_reader;

static int fail(influx_reader *r, const char *what)
{
    snprintf(r->err, r->errlen, "influx: line %u: %s", r->line, what);
    return NDT_EBADCONF;
}

/* The first byte in [p, end) that may end a name or start an escape:
 * ' ', '\n', ',', '=' or '\\' (end if none).  '=' does not end a
 * measurement: the caller steps over it. */
static inline const char *name_special(const char *p, const char *end)
{
#ifdef INFLUX_SSE2
    const __m128i space = _mm_set1_epi8(' '), newline = _mm_set1_epi8('\n');
    const __m128i comma = _mm_set1_epi8(','), equals = _mm_set1_epi8('=');
    const __m128i backslash = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(x, space), _mm_cmpeq_epi8(x, newline)),
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, comma), _mm_cmpeq_epi8(x, equals)),
                         _mm_cmpeq_epi8(x, backslash)));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
    while (p < end && *p != ' ' && *p != '\n' && *p != ',' && *p != '=' && *p != '\\')
        p++;
    return p;
}

/* The rest of a name whose first backslash is at p, unescaped into the
 * scratch area (see read_name). */
static ndt_str read_name_escaped(influx_reader *r, const char *start, const char *p, int in_tag)
{
    char *first = r->scratch + r->used, *o = first;
    memcpy(o, start, (size_t)(p - start));
    o += p - start;
    r->p = p;
    while (r->p < r->end) {
        char c = *r->p;
        if (c == ' ' || c == '\n' || c == ',' || (c == '=' && in_tag))
            break;
        if (c == '\\' && r->end - r->p >= 2) {
            char n = r->p[1], out = 0;
            switch (n) {
            case ',': case ' ': out = n; break;
            case '=': out = in_tag ? '=' : 0; break;
            case 't': out = '\t'; break;
            case 'n': out = '\n'; break;
            case 'r': out = '\r'; break;
            case 'f': out = '\f'; break;
            default: break;
            }
            if (out) {
                *o++ = out;
                r->p += 2;
                continue;
            }
        }
        *o++ = c;
        r->p++;
    }
    r->used += (size_t)(o - first);
    return (ndt_str){ first, (size_t)(o - first) };
}

/* A name up to an unescaped comma, space or newline (or '=' for tags and
 * field keys).  in_tag: `=` ends the name and `\=` is an escape (tags and
 * field keys, not the measurement).  A name without a backslash, nearly
 * every one, is a view into the message; one with escapes is unescaped
 * into the scratch area. */
__attribute__((always_inline)) static inline ndt_str read_name(influx_reader *r, int in_tag)
{
    const char *start = r->p, *p = r->p;
    for (;;) {
        p = name_special(p, r->end);
        if (p < r->end && *p == '=' && !in_tag) {
            p++;
            continue;
        }
        break;
    }
    if (p < r->end && *p == '\\')
        return read_name_escaped(r, start, p, in_tag);
    r->p = p;
    return (ndt_str){ start, (size_t)(p - start) };
}

static int read_tags(influx_reader *r, hdl_label *labels, size_t *nlabels)
{
    *nlabels = 0;
    while (r->p < r->end && *r->p == ',') {
        r->p++;
        if (*nlabels == HDL_DECODE_MAX_LABELS) {
            char why[48];
            snprintf(why, sizeof(why), "more than %d tags", HDL_DECODE_MAX_LABELS);
            return fail(r, why);
        }
        hdl_label *l = &labels[*nlabels];
        l->name = read_name(r, 1);
        if (r->p >= r->end || *r->p != '=')
            return fail(r, "tag without '='");
        r->p++;
        l->value = read_name(r, 1);
        if (l->name.len == 0 || l->value.len == 0)
            return fail(r, "empty tag key or value");
        if (NAME_IS(l->name, "__name__"))
            return fail(r, "tag __name__ (the measurement is the name)");
        (*nlabels)++;
    }
    return NDT_OK;
}

/* The token of a field value: up to an unescaped comma, space or newline;
 * a string value is skipped whole and yields skip = 1. */
static int read_field_value(influx_reader *r, double *value, int *skip)
{
    *skip = 0;
    if (r->p < r->end && *r->p == '"') {
        for (r->p++; r->p < r->end && *r->p != '"'; r->p++) {
            if (*r->p == '\\' && r->end - r->p >= 2)
                r->p++;
            else if (*r->p == '\n')
                r->line++;
        }
        if (r->p >= r->end)
            return fail(r, "unterminated string field");
        r->p++;
        *skip = 1;
        return NDT_OK;
    }
    const char *s = r->p;
    while (r->p < r->end && *r->p != ',' && *r->p != ' ' && *r->p != '\n' && *r->p != '\r')
        r->p++;
    size_t n = (size_t)(r->p - s);
    if (n == 0)
        return fail(r, "field without a value");
    static const char *const trues[] = { "t", "T", "true", "True", "TRUE" };
    static const char *const falses[] = { "f", "F", "false", "False", "FALSE" };
    for (size_t i = 0; (*s == 't' || *s == 'T' || *s == 'f' || *s == 'F') &&
                       i < NDT_ARRAY_LEN(trues); i++) {
        if (ndt_str_eq_cstr((ndt_str){ s, n }, trues[i]) ||
            ndt_str_eq_cstr((ndt_str){ s, n }, falses[i])) {
            *value = ndt_str_eq_cstr((ndt_str){ s, n }, trues[i]);
            return NDT_OK;
        }
    }
    if (s[n - 1] == 'i' || s[n - 1] == 'u') {
        int64_t v;
        if (ndt_number_parse_int64(s, n - 1, &v) != NDT_OK || (s[n - 1] == 'u' && v < 0))
            return fail(r, "field value is not an integer");
        *value = (double)v;
        return NDT_OK;
    }
    if (ndt_number_parse_float(s, n, value) != NDT_OK)
        return fail(r, "field value is not a number");
    return NDT_OK;
}

static int push_bucket(influx_reader *r, hdl_native_bucket **b, size_t *n, size_t *cap,
                       int32_t index, double count)
{
    if (*n == HDL_DECODE_MAX_NATIVE_BUCKETS)
        return fail(r, "more native buckets than a side may hold");
    if (*n == *cap) {
        size_t want = *cap ? 2 * *cap : 32;
        hdl_native_bucket *grown = realloc(*b, want * sizeof(*grown));
        if (!grown) {
            snprintf(r->err, r->errlen, "influx: out of memory for native buckets");
            return NDT_ERROR;
        }
        *b = grown;
        *cap = want;
    }
    (*b)[(*n)++] = (hdl_native_bucket){ index, count };
    return NDT_OK;
}

/* A field of the native-histogram flattening (docs/KAFKA.md): nh_schema,
 * nh_zero_threshold, nh_zero_count, nh_sum, nh_p<index>, nh_n<index>.
 * NDT_AGAIN: not one of them (an ordinary field). */
static int native_field(influx_reader *r, ndt_str key, double value)
{
    if (key.len < 4 || memcmp(key.ptr, "nh_", 3) != 0)
        return NDT_AGAIN;
    ndt_str k = { key.ptr + 3, key.len - 3 };
    if (ndt_str_eq_cstr(k, "schema")) {
        if (value != (double)(int32_t)value)
            return fail(r, "nh_schema is not an integer");
        r->nh.schema = (int32_t)value;
        r->nh_seen |= 1;
    } else if (ndt_str_eq_cstr(k, "zero_threshold")) {
        r->nh.zero_threshold = value;
        r->nh_seen |= 2;
    } else if (ndt_str_eq_cstr(k, "zero_count")) {
        r->nh.zero_count = value;
        r->nh_seen |= 4;
    } else if (ndt_str_eq_cstr(k, "sum")) {
        r->nh.sum = value;
        r->nh_seen |= 8;
    } else if ((k.ptr[0] == 'p' || k.ptr[0] == 'n') && k.len > 1) {
        int64_t index;
        if (ndt_number_parse_int64(k.ptr + 1, k.len - 1, &index) != NDT_OK ||
            index < INT32_MIN || index > INT32_MAX)
            return fail(r, "native bucket field without an integer index");
        return k.ptr[0] == 'p'
                   ? push_bucket(r, &r->pos, &r->npos, &r->pos_cap, (int32_t)index, value)
                   : push_bucket(r, &r->neg, &r->nneg, &r->neg_cap, (int32_t)index, value);
    } else {
        return NDT_AGAIN;
    }
    return NDT_OK;
}

static int cmp_bucket(const void *a, const void *b)
{
    const hdl_native_bucket *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int read_fields(influx_reader *r, influx_field *fields, size_t *nfields)
{
    *nfields = 0;
    r->nh_seen = 0;
    r->npos = r->nneg = 0;
    for (;;) {
        ndt_str key = read_name(r, 1);
        if (r->p >= r->end || *r->p != '=')
            return fail(r, "field without '='");
        if (key.len == 0)
            return fail(r, "empty field key");
        r->p++;
        double value;
        int skip;
        int rc = read_field_value(r, &value, &skip);
        if (rc != NDT_OK)
            return rc;
        if (!skip && (rc = native_field(r, key, value)) != NDT_AGAIN) {
            if (rc != NDT_OK)
                return rc;
        } else if (!skip) {
            if (*nfields == INFLUX_MAX_FIELDS) {
                char why[48];
                snprintf(why, sizeof(why), "more than %d fields", INFLUX_MAX_FIELDS);
                return fail(r, why);
            }
            fields[(*nfields)++] = (influx_field){ key, value };
        }
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        return NDT_OK;
    }
}

static int read_timestamp(influx_reader *r, int64_t *ts_ms)
{
    if (r->p >= r->end || *r->p != ' ')
        return fail(r, "no timestamp (the topic's lines carry one, in ms)");
    r->p++;
    const char *s = r->p;
    /* Up to 18 digits cannot overflow: the common case without the
     * general parser's checks. */
    int64_t v = 0;
    const char *digits = s + (s < r->end && *s == '-');
    const char *p = digits;
    while (p < r->end && p - digits < 18 && (unsigned)(*p - '0') < 10)
        v = v * 10 + (*p++ - '0');
    if (p > digits && (p == r->end || *p == '\n' || *p == '\r')) {
        *ts_ms = digits > s ? -v : v;
        r->p = p;
    } else {
        while (r->p < r->end && *r->p != '\n' && *r->p != '\r')
            r->p++;
        if (ndt_number_parse_int64(s, (size_t)(r->p - s), ts_ms) != NDT_OK)
            return fail(r, "timestamp is not an integer (ms)");
    }
    if (r->p < r->end && *r->p == '\r')
        r->p++;
    if (r->p < r->end && *r->p != '\n')
        return fail(r, "bytes after the timestamp");
    return NDT_OK;
}

static int emit(influx_reader *r, ndt_str measurement, const hdl_label *labels, size_t nlabels,
                const influx_field *f, int64_t ts_ms, hdl_sample_fn fn, void *ctx)
{
    hdl_sample s = { measurement, labels, nlabels, f->value, ts_ms, HDL_TYPE_UNKNOWN, NULL };
    int is_value = NAME_IS(f->key, "value");
    if (is_value && r->nh_seen)
        s.native = &r->nh;
    if (!is_value) {
        memcpy(r->name_area, measurement.ptr, measurement.len);
        r->name_area[measurement.len] = '_';
        memcpy(r->name_area + measurement.len + 1, f->key.ptr, f->key.len);
        s.name = (ndt_str){ r->name_area, measurement.len + 1 + f->key.len };
    }
    return fn(ctx, &s);
}

static int read_line(influx_reader *r, hdl_sample_fn fn, void *ctx)
{
    hdl_label labels[HDL_DECODE_MAX_LABELS];
    influx_field fields[INFLUX_MAX_FIELDS];
    size_t nlabels, nfields;
    int64_t ts_ms;
    r->used = 0;
    ndt_str measurement = read_name(r, 0);
    if (measurement.len == 0)
        return fail(r, "line without a measurement");
    int rc = read_tags(r, labels, &nlabels);
    if (rc != NDT_OK)
        return rc;
    if (r->p >= r->end || *r->p != ' ')
        return fail(r, "expected a space before the fields");
    r->p++;
    if ((rc = read_fields(r, fields, &nfields)) != NDT_OK ||
        (rc = read_timestamp(r, &ts_ms)) != NDT_OK)
        return rc;
    size_t dup;
    if (hdl_labels_sort(labels, nlabels, &dup) != NDT_OK) {
        char why[120];
        snprintf(why, sizeof(why), "tag '%.*s' repeated",
                 labels[dup].name.len > 64 ? 64 : (int)labels[dup].name.len, labels[dup].name.ptr);
        return fail(r, why);
    }
    if (r->nh_seen || r->npos || r->nneg) {
        /* The histogram's count is the line's own value field. */
        if (r->nh_seen != 15)
            return fail(r, "native histogram fields without nh_schema, nh_zero_threshold, "
                           "nh_zero_count and nh_sum");
        int has_value = 0;
        for (size_t i = 0; i < nfields; i++) {
            if (ndt_str_eq_cstr(fields[i].key, "value")) {
                r->nh.count = fields[i].value;
                has_value = 1;
            }
        }
        if (!has_value)
            return fail(r, "native histogram fields on a line without a value field");
        qsort(r->pos, r->npos, sizeof(*r->pos), cmp_bucket);
        qsort(r->neg, r->nneg, sizeof(*r->neg), cmp_bucket);
        r->nh.positive = r->pos;
        r->nh.npositive = r->npos;
        r->nh.negative = r->neg;
        r->nh.nnegative = r->nneg;
    }
    for (size_t i = 0; i < nfields; i++) {
        if ((rc = emit(r, measurement, labels, nlabels, &fields[i], ts_ms, fn, ctx)) != NDT_OK)
            return rc;
    }
    return NDT_OK;
}

int hdl_decode_influx(const char *msg, size_t len, hdl_sample_fn fn, void *ctx, char *err,
                      size_t errlen)
{
    char stack_scratch[INFLUX_STACK_SCRATCH];
    /* Field by field: an initializer clears the whole struct with a slow
     * `rep stos`; nh and its counts are set per line by read_fields. */
    influx_reader r;
    r.p = msg;
    r.end = msg + len;
    r.line = 1;
    r.scratch = stack_scratch;
    r.used = 0;
    r.name_area = NULL;
    r.err = err;
    r.errlen = errlen;
    r.nh_seen = 0;
    r.pos = r.neg = NULL;
    r.npos = r.nneg = r.pos_cap = r.neg_cap = 0;
    if (len > SIZE_MAX / 2 - 2)
        return fail(&r, "message too large");
    if (2 * len + 2 > sizeof(stack_scratch) && !(r.scratch = malloc(2 * len + 2))) {
        snprintf(err, errlen, "influx: out of memory for a %zu-byte message", len);
        return NDT_ERROR;
    }
    r.name_area = r.scratch + len + 1;
    int rc = NDT_OK, lines = 0;
    while (rc == NDT_OK && r.p < r.end) {
        while (r.p < r.end && (*r.p == ' ' || *r.p == '\t'))
            r.p++;
        if (r.p < r.end && *r.p == '#') {
            while (r.p < r.end && *r.p != '\n')
                r.p++;
        } else if (r.p < r.end && *r.p != '\n' && *r.p != '\r') {
            rc = read_line(&r, fn, ctx);
            lines++;
        } else if (r.p < r.end && *r.p == '\r' && (r.end - r.p < 2 || r.p[1] != '\n')) {
            rc = fail(&r, "carriage return without a newline");
        }
        if (rc == NDT_OK && r.p < r.end && *r.p == '\r')
            r.p++;
        if (rc == NDT_OK && r.p < r.end && *r.p == '\n') {
            r.p++;
            r.line++;
        }
    }
    if (rc == NDT_OK && lines == 0)
        rc = fail(&r, "no line in the message");
    free(r.pos);
    free(r.neg);
    if (r.scratch != stack_scratch)
        free(r.scratch);
    return rc;
}
