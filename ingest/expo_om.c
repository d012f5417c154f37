/*
 * expo_om.c: the OpenMetrics 1.0 text grammar (one line at a time, called
 * by expo.c's line loop; see expo.c for what the parser promises about
 * memory and bounds).
 *
 * It follows the specification's ABNF (promtool 2.42 has no
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
 *     between families of different types. */
#include "ingest/expo_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/number.h"

/* Characters (runes) in a valid UTF-8 string. */
static size_t utf8_runes(ndt_str s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += ((unsigned char)s.ptr[i] & 0xc0) != 0x80;
    return n;
}

static const ingest_label *scratch_find(const ingest_expo_parser *p, const char *name)
{
    for (size_t i = 0; i < p->nscratch; i++) {
        if (ndt_str_eq_cstr(p->scratch[i].name, name))
            return &p->scratch[i];
    }
    return NULL;
}

/* ---- OpenMetrics 1.0 ------------------------------------------------ */

typedef struct om_suffix_rule {
    const char *text;
    size_t len;
    ingest_expo_suffix suffix;
} om_suffix_rule;

static const om_suffix_rule om_suffixes[] = {
    { "_total", 6, EXPO_SUFFIX_TOTAL },   { "_created", 8, EXPO_SUFFIX_CREATED },
    { "_bucket", 7, EXPO_SUFFIX_BUCKET }, { "_count", 6, EXPO_SUFFIX_COUNT },
    { "_sum", 4, EXPO_SUFFIX_SUM },       { "_gcount", 7, EXPO_SUFFIX_GCOUNT },
    { "_gsum", 5, EXPO_SUFFIX_GSUM },     { "_info", 5, EXPO_SUFFIX_INFO },
};

static int om_suffix_allowed(uint8_t type, ingest_expo_suffix suffix)
{
    switch ((ingest_metric_type)type) {
    case INGEST_TYPE_COUNTER:
        return suffix == EXPO_SUFFIX_TOTAL || suffix == EXPO_SUFFIX_CREATED;
    case INGEST_TYPE_HISTOGRAM:
        return suffix == EXPO_SUFFIX_BUCKET || suffix == EXPO_SUFFIX_COUNT ||
               suffix == EXPO_SUFFIX_SUM || suffix == EXPO_SUFFIX_CREATED;
    case INGEST_TYPE_GAUGE_HISTOGRAM:
        return suffix == EXPO_SUFFIX_BUCKET || suffix == EXPO_SUFFIX_GCOUNT ||
               suffix == EXPO_SUFFIX_GSUM;
    case INGEST_TYPE_SUMMARY:
        return suffix == EXPO_SUFFIX_NONE || suffix == EXPO_SUFFIX_COUNT ||
               suffix == EXPO_SUFFIX_SUM || suffix == EXPO_SUFFIX_CREATED;
    case INGEST_TYPE_INFO:
        return suffix == EXPO_SUFFIX_INFO;
    default:
        return suffix == EXPO_SUFFIX_NONE;
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
        return EXPO_SUFFIX_NONE;
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
        { "counter", 7, INGEST_TYPE_COUNTER },
        { "gauge", 5, INGEST_TYPE_GAUGE },
        { "histogram", 9, INGEST_TYPE_HISTOGRAM },
        { "gaugehistogram", 14, INGEST_TYPE_GAUGE_HISTOGRAM },
        { "stateset", 8, INGEST_TYPE_STATESET },
        { "info", 4, INGEST_TYPE_INFO },
        { "summary", 7, INGEST_TYPE_SUMMARY },
        { "unknown", 7, INGEST_TYPE_UNKNOWN },
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
static int om_new_family(ingest_expo_parser *p, const char *at, ndt_str name)
{
    char q[80];
    uint32_t hash = ingest_expo_family_hash(name.ptr, name.len);
    if (ingest_expo_family_lookup_hashed(p, name.ptr, name.len, hash, NULL))
        return ingest_expo_fail(p, at,
                                "metric family %s appears twice (families must not be interleaved)",
                                ingest_expo_quote(q, sizeof(q), name.ptr, name.len));
    if (ingest_expo_family_add(p, name, hash, &p->current) != NDT_OK)
        return NDT_ERROR;
    p->has_current = 1;
    p->om_last_valid = 0;
    return NDT_OK;
}

static int om_metadata(ingest_expo_parser *p, const char *kw, const char *s, const char *e)
{
    char q[80], q2[80];
    const char *ns = s;
    s = expo_scan_metric_name(s, e);
    if (s == ns)
        return ingest_expo_fail(p, ns, "invalid metric name in comment");
    if (s == e || *s != ' ')
        return ingest_expo_fail(p, s, "expected a space after the metric name");
    ndt_str name = { ns, (size_t)(s - ns) };
    s++;
    if (p->has_current && ndt_str_eq(p->families[p->current].name, name)) {
        if (p->families[p->current].flags & EXPO_FAMILY_HAS_SAMPLES)
            return ingest_expo_fail(p, kw, "metadata for %s after its samples",
                                    ingest_expo_quote(q, sizeof(q), name.ptr, name.len));
    } else if (om_new_family(p, ns, name) != NDT_OK) {
        return NDT_ERROR;
    }
    ingest_expo_family *f = &p->families[p->current];
    ndt_str text = { s, (size_t)(e - s) };
    if (*kw == 'H') {
        if (f->flags & EXPO_FAMILY_HAS_HELP)
            return ingest_expo_fail(p, kw, "second HELP line for metric name %s",
                                    ingest_expo_quote(q, sizeof(q), name.ptr, name.len));
        if (expo_has_backslash(s, e) && ingest_expo_check_help_escapes(p, s, e, 1) != NDT_OK)
            return NDT_ERROR;
        if (!ingest_expo_utf8_valid(s, text.len))
            return ingest_expo_fail(p, s, "HELP text is not valid UTF-8");
        f->help = text;
        f->flags |= EXPO_FAMILY_HAS_HELP;
    } else if (*kw == 'T') {
        if (f->flags & EXPO_FAMILY_HAS_TYPE)
            return ingest_expo_fail(p, kw, "second TYPE line for metric name %s",
                                    ingest_expo_quote(q, sizeof(q), name.ptr, name.len));
        if (om_type_from(s, text.len, &f->type) != NDT_OK)
            return ingest_expo_fail(p, s, "unknown metric type %s",
                                    ingest_expo_quote(q, sizeof(q), s, text.len));
        f->flags |= EXPO_FAMILY_HAS_TYPE;
    } else {
        if (f->flags & EXPO_FAMILY_HAS_UNIT)
            return ingest_expo_fail(p, kw, "second UNIT line for metric name %s",
                                    ingest_expo_quote(q, sizeof(q), name.ptr, name.len));
        for (const char *c = s; c < e; c++) {
            if (!expo_char_is(*c, EXPO_CC_METRIC))
                return ingest_expo_fail(p, c, "invalid unit %s",
                                        ingest_expo_quote(q, sizeof(q), s, text.len));
        }
        if (text.len &&
            !(name.len > text.len + 1 && memcmp(name.ptr + name.len - text.len, s, text.len) == 0 &&
              name.ptr[name.len - text.len - 1] == '_'))
            return ingest_expo_fail(p, s, "unit %s is not a suffix of metric name %s",
                                    ingest_expo_quote(q, sizeof(q), s, text.len),
                                    ingest_expo_quote(q2, sizeof(q2), name.ptr, name.len));
        f->unit = text;
        f->flags |= EXPO_FAMILY_HAS_UNIT;
    }
    return p->line_complete ? NDT_OK : ingest_expo_fail_eof(p, e);
}

static int om_comment(ingest_expo_parser *p, const char *s, const char *e)
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
    return ingest_expo_fail(
        p, s, "only '# HELP', '# TYPE', '# UNIT' and '# EOF' comments are allowed in OpenMetrics");
}

/* {name="value",...}: s is just past '{'; returns past '}' in *sp. */
static int om_labels(ingest_expo_parser *p, const char **sp, const char *e, ndt_str family)
{
    const char *s = *sp;
    if (s < e && *s == '}') {
        *sp = s + 1;
        return NDT_OK;
    }
    for (;;) {
        const char *ln = s;
        s = expo_scan_label_name(s, e);
        if (s == ln)
            return ingest_expo_fail(p, ln, "invalid label name");
        ndt_str name = { ln, (size_t)(s - ln) };
        if (ndt_str_eq_cstr(name, "__name__"))
            return ingest_expo_fail(p, ln, "label name \"__name__\" is reserved");
        if (s == e || *s != '=')
            return ingest_expo_fail(p, s, "expected '=' after label name");
        s++;
        if (s == e || *s != '"')
            return ingest_expo_fail(p, s, "expected '\"' at start of label value");
        ndt_str value;
        s = expo_read_label_value(p, s + 1, e, &value);
        if (!s)
            return NDT_ERROR;
        if (expo_scratch_add(p, ln, name, value, family) != NDT_OK)
            return NDT_ERROR;
        if (s < e && *s == '}') {
            *sp = s + 1;
            return NDT_OK;
        }
        if (s == e || *s != ',')
            return ingest_expo_fail(p, s, "expected ',' or '}' after label value");
        s++;
        if (s < e && *s == '}')
            return ingest_expo_fail(p, s, "trailing comma in label set");
    }
}

/* Value and optional timestamp after "{...}" or the name; s at the space. */
int ingest_expo_om_value(ingest_expo_parser *p, const char **sp, const char *e, double *value,
                         int64_t *ts)
{
    char q[80];
    const char *s = *sp;
    if (s == e || *s != ' ')
        return ingest_expo_fail(p, s, "expected a space before the value");
    const char *vs = ++s;
    s = ndt_number_scan_decimal(vs, e, value);
    if (!s || (s < e && *s != ' ')) {
        s = expo_scan_until_space(vs, e);
        if (ndt_number_parse_float(vs, (size_t)(s - vs), value) != NDT_OK)
            return ingest_expo_fail(p, vs, "expected number as value, got %s",
                                    ingest_expo_quote(q, sizeof(q), vs, (size_t)(s - vs)));
    }
    *ts = INGEST_NO_TIMESTAMP;
    if (s + 1 < e && s[1] != '#') {
        const char *ts_start = ++s;
        s = expo_scan_until_space(s, e);
        if (ndt_number_parse_om_timestamp(ts_start, (size_t)(s - ts_start), ts) != NDT_OK)
            return ingest_expo_fail(
                p, ts_start, "expected timestamp (seconds), got %s",
                ingest_expo_quote(q, sizeof(q), ts_start, (size_t)(s - ts_start)));
    }
    *sp = s;
    return NDT_OK;
}

static int om_exemplar(ingest_expo_parser *p, const char *s, const char *e,
                       const ingest_expo_family *f, ingest_expo_suffix suffix,
                       ingest_exemplar **out)
{
    int allowed = (f->type == INGEST_TYPE_COUNTER && suffix == EXPO_SUFFIX_TOTAL) ||
                  ((f->type == INGEST_TYPE_HISTOGRAM || f->type == INGEST_TYPE_GAUGE_HISTOGRAM) &&
                   suffix == EXPO_SUFFIX_BUCKET);
    if (e - s < 4 || memcmp(s, " # {", 4) != 0)
        return ingest_expo_fail(
            p, s, "unexpected text after the sample (expected ' # {' of an exemplar)");
    if (!allowed)
        return ingest_expo_fail(
            p, s + 1, "exemplars are only allowed on counter _total and histogram _bucket samples");
    ingest_exemplar *x = ndt_arena_alloc(p->arena, sizeof(*x));
    if (!x)
        return ingest_expo_fail(p, s, "out of memory for this scrape");
    s += 4;
    const char *ls = s;
    if (om_labels(p, &s, e, f->name) != NDT_OK)
        return NDT_ERROR;
    size_t runes = 0;
    for (size_t i = 0; i < p->nscratch; i++)
        runes += utf8_runes(p->scratch[i].name) + utf8_runes(p->scratch[i].value);
    if (runes > EXPO_EXEMPLAR_MAX_RUNES)
        return ingest_expo_fail(p, ls, "exemplar labels are longer than %d characters",
                                EXPO_EXEMPLAR_MAX_RUNES);
    if (ingest_expo_scratch_commit(p, ls, &x->labels, &x->nlabels) != NDT_OK)
        return NDT_ERROR;
    if (ingest_expo_om_value(p, &s, e, &x->value, &x->timestamp_ms) != NDT_OK)
        return NDT_ERROR;
    if (s != e)
        return ingest_expo_fail(p, s, "unexpected text after the exemplar");
    *out = x;
    return NDT_OK;
}

/* Finds the family of a sample name, opening a new one if needed. */
static int om_resolve(ingest_expo_parser *p, const char *at, ndt_str name,
                      ingest_expo_suffix *suffix)
{
    char q[80], q2[80];
    if (p->has_current) {
        const ingest_expo_family *f = &p->families[p->current];
        int sfx = om_suffix_of(f->name, name);
        if (sfx >= 0 && om_suffix_allowed(f->type, (ingest_expo_suffix)sfx)) {
            *suffix = (ingest_expo_suffix)sfx;
            return NDT_OK;
        }
        /* The bare name of a family that needs a suffix, or a suffix its
         * type reserves but does not allow, is a clash; families without
         * suffixes (gauge, stateset, unknown) leave foo_total to others. */
        int has_suffixes = f->type != INGEST_TYPE_GAUGE && f->type != INGEST_TYPE_STATESET &&
                           f->type != INGEST_TYPE_UNKNOWN;
        if (sfx >= 0 && (sfx == EXPO_SUFFIX_NONE || has_suffixes))
            return ingest_expo_fail(p, at, "sample %s is not valid in %s family %s",
                                    ingest_expo_quote(q, sizeof(q), name.ptr, name.len),
                                    ingest_metric_type_name((ingest_metric_type)f->type),
                                    ingest_expo_quote(q2, sizeof(q2), f->name.ptr, f->name.len));
    }
    *suffix = EXPO_SUFFIX_NONE;
    return om_new_family(p, at, name);
}

static int om_check_bound(ingest_expo_parser *p, const char *at, const char *label,
                          const char *kind)
{
    const ingest_label *l = scratch_find(p, label);
    double v;
    char q[80];
    if (!l)
        return ingest_expo_fail(p, at, "%s without '%s' label", kind, label);
    if (ndt_number_parse_float(l->value.ptr, l->value.len, &v) != NDT_OK)
        return ingest_expo_fail(p, at, "expected float as value for '%s' label, got %s", label,
                                ingest_expo_quote(q, sizeof(q), l->value.ptr, l->value.len));
    return NDT_OK;
}

static int om_sample(ingest_expo_parser *p, const char *s, const char *e)
{
    const char *ns = s;
    ingest_expo_suffix suffix;
    ingest_sample sample;
    ingest_exemplar *exemplar = NULL;

    ndt_str name;
    if (p->om_last_valid && expo_same_name(p, s, e)) {
        /* Same name as the previous sample, same family: no scan. */
        name = (ndt_str){ ns, p->cache_name.len };
        s += name.len;
        suffix = p->om_last_suffix;
    } else {
        s = expo_scan_metric_name(s, e);
        if (s == ns)
            return ingest_expo_fail(p, ns, "invalid metric name");
        name = (ndt_str){ ns, (size_t)(s - ns) };
        if (om_resolve(p, ns, name, &suffix) != NDT_OK)
            return NDT_ERROR;
        p->cache_name = name;
        p->cache_valid = 1;
        p->om_last_suffix = suffix;
        p->om_last_valid = 1;
    }
    ingest_expo_family *f = &p->families[p->current];
    f->flags |= EXPO_FAMILY_HAS_SAMPLES;

    p->nscratch = 0;
    p->label_filter = 0;
    if (s < e && *s == '{') {
        s++;
        if (om_labels(p, &s, e, f->name) != NDT_OK)
            return NDT_ERROR;
    }
    if ((f->type == INGEST_TYPE_HISTOGRAM || f->type == INGEST_TYPE_GAUGE_HISTOGRAM) &&
        suffix == EXPO_SUFFIX_BUCKET && om_check_bound(p, ns, "le", "histogram bucket") != NDT_OK)
        return NDT_ERROR;
    if (f->type == INGEST_TYPE_SUMMARY && suffix == EXPO_SUFFIX_NONE &&
        om_check_bound(p, ns, "quantile", "summary quantile") != NDT_OK)
        return NDT_ERROR;

    expo_sample_from_family(&sample, f, p->line);
    sample.name = name;
    sample.native = NULL; /* text formats carry no native histogram */
    if (ingest_expo_scratch_commit(p, ns, &sample.labels, &sample.nlabels) != NDT_OK)
        return NDT_ERROR;
    const char *key_end = s;
    if (ingest_expo_om_value(p, &s, e, &sample.value, &sample.timestamp_ms) != NDT_OK)
        return NDT_ERROR;
    if (p->shape) /* a line with an exemplar cannot be replayed */
        ingest_expo_shape_note(p, s < e ? NULL : key_end, e);
    if (s < e) {
        if (om_exemplar(p, s, e, f, suffix, &exemplar) != NDT_OK)
            return NDT_ERROR;
        sample.exemplar = exemplar;
    }
    return expo_emit(p, &sample, e);
}

int ingest_expo_om_line(ingest_expo_parser *p, const char *s, const char *e)
{
    if (p->seen_eof)
        return ingest_expo_fail(p, s, "unexpected data after # EOF");
    if (s == e)
        return ingest_expo_fail(p, s, "empty line (not allowed in OpenMetrics)");
    if (*s == '#')
        return om_comment(p, s, e);
    return om_sample(p, s, e);
}
