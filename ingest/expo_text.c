/*
 * expo_text.c: the Prometheus text format 0.0.4 grammar (one line at a
 * time, called by expo.c's line loop; see expo.c for what the parser
 * promises about memory and bounds).
 *
 * The verdicts mirror promtool `check metrics` (Go's
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
 * */
#include "ingest/expo_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/number.h"

/* ---- text format 0.0.4 ---------------------------------------------- */

/* The Go parser's setOrCreateCurrentMF: exact name, then a summary without
 * _count/_sum, then a histogram without _bucket/_count/_sum, else new. */
static int text_resolve_slow(ingest_expo_parser *p, ndt_str name, size_t *out)
{
    uint32_t hash = ingest_expo_family_hash(name.ptr, name.len);
    ingest_expo_family *f = ingest_expo_family_lookup_hashed(p, name.ptr, name.len, hash, out);
    if (!f) {
        size_t cut = 0;
        if (expo_str_has_suffix(name, "_count", 6))
            cut = 6;
        else if (expo_str_has_suffix(name, "_sum", 4))
            cut = 4;
        if (cut) {
            f = ingest_expo_family_lookup(p, name.ptr, name.len - cut, out);
            if (f && f->type != INGEST_TYPE_SUMMARY)
                f = NULL;
        }
        if (!f && expo_str_has_suffix(name, "_bucket", 7))
            cut = 7;
        if (!f && cut) {
            f = ingest_expo_family_lookup(p, name.ptr, name.len - cut, out);
            if (f && f->type != INGEST_TYPE_HISTOGRAM)
                f = NULL;
        }
    }
    if (!f && ingest_expo_family_add(p, name, hash, out) != NDT_OK)
        return NDT_ERROR;
    p->cache_name = name;
    p->cache_family = *out;
    p->cache_valid = 1;
    return NDT_OK;
}

static inline int text_resolve(ingest_expo_parser *p, ndt_str name, size_t *out)
{
    if (p->cache_valid && expo_str_eq_inline(p->cache_name, name)) {
        *out = p->cache_family;
        return NDT_OK;
    }
    return text_resolve_slow(p, name, out);
}

/* Moves s to c, across blanks; NULL (error set) if something else is
 * there.  The direct hit is tested first: labels are rarely spaced. */
static inline const char *text_expect(ingest_expo_parser *p, const char *s, const char *e, char c,
                                      const char *what)
{
    char q[16];
    if (s < e && *s == c)
        return s;
    s = expo_skip_blank(s, e);
    if (s < e && *s == c)
        return s;
    if (s == e && !p->line_complete)
        ingest_expo_fail_eof(p, s);
    else
        ingest_expo_fail(p, s, "%s, found %s", what, ingest_expo_quote_char(q, sizeof(q), s, e));
    return NULL;
}

/* le (histogram) and quantile (summary) must be floats, as in Go. */
static int text_check_bound(ingest_expo_parser *p, const ingest_expo_family *f, ndt_str name,
                            ndt_str value, const char *at)
{
    char q[80];
    double bound;
    const char *label = NULL;
    if (f->type == INGEST_TYPE_HISTOGRAM && ndt_str_eq_cstr(name, "le"))
        label = "le";
    else if (f->type == INGEST_TYPE_SUMMARY && ndt_str_eq_cstr(name, "quantile"))
        label = "quantile";
    if (label && ndt_number_parse_float(value.ptr, value.len, &bound) != NDT_OK)
        return ingest_expo_fail(p, at, "expected float as value for '%s' label, got %s", label,
                                ingest_expo_quote(q, sizeof(q), value.ptr, value.len));
    return NDT_OK;
}

static int text_labels(ingest_expo_parser *p, const ingest_expo_family *f, const char **sp,
                       const char *e)
{
    const char *s = *sp;
    char q[80];
    int bounded = f->type == INGEST_TYPE_HISTOGRAM || f->type == INGEST_TYPE_SUMMARY;

    for (;;) {
        if (!(s < e && expo_char_is(*s, EXPO_CC_LABEL_START))) {
            s = expo_skip_blank(s, e);
            if (s < e && *s == '}')
                break;
        }
        const char *ln = s;
        s = expo_scan_label_name(s, e);
        if (s == ln) {
            if (s == e && !p->line_complete)
                return ingest_expo_fail_eof(p, s);
            return ingest_expo_fail(p, ln, "invalid label name for metric %s",
                                    ingest_expo_quote(q, sizeof(q), f->name.ptr, f->name.len));
        }
        ndt_str name = { ln, (size_t)(s - ln) };
        if (name.len == 8 && ndt_str_eq_cstr(name, "__name__"))
            return ingest_expo_fail(p, ln, "label name \"__name__\" is reserved");
        s = text_expect(p, s, e, '=', "expected '=' after label name");
        if (!s)
            return NDT_ERROR;
        s = text_expect(p, s + 1, e, '"', "expected '\"' at start of label value");
        if (!s)
            return NDT_ERROR;
        const char *vstart = s;
        ndt_str value;
        s = expo_read_label_value(p, s + 1, e, &value);
        if (!s)
            return NDT_ERROR;
        if (bounded && text_check_bound(p, f, name, value, vstart) != NDT_OK)
            return NDT_ERROR;
        if (expo_scratch_add(p, ln, name, value, f->name) != NDT_OK)
            return NDT_ERROR;
        if (!(s < e && (*s == ',' || *s == '}')))
            s = expo_skip_blank(s, e);
        if (s < e && *s == ',') {
            s++;
            continue;
        }
        if (s < e && *s == '}')
            break;
        if (s == e && !p->line_complete)
            return ingest_expo_fail_eof(p, s);
        return ingest_expo_fail(p, s, "unexpected end of label value %s",
                                ingest_expo_quote(q, sizeof(q), value.ptr, value.len));
    }
    *sp = expo_skip_blank(s + 1, e);
    return NDT_OK;
}

int ingest_expo_text_value(ingest_expo_parser *p, const char *vs, const char *e, double *value,
                           int64_t *timestamp_ms)
{
    char q[80];
    const char *s = ndt_number_scan_decimal(vs, e, value);
    if (s && (s == e || expo_is_blank(*s)))
        goto value_done; /* the common case: one pass over the digits */
    s = expo_scan_until_blank(vs, e);
    if (ndt_number_parse_float(vs, (size_t)(s - vs), value) != NDT_OK) {
        if (s == e && !p->line_complete)
            return ingest_expo_fail_eof(p, s);
        return ingest_expo_fail(p, vs, "expected float as value, got %s",
                                ingest_expo_quote(q, sizeof(q), vs, (size_t)(s - vs)));
    }
value_done:
    *timestamp_ms = INGEST_NO_TIMESTAMP;
    if (s < e) {
        const char *ts = expo_skip_blank(s, e);
        s = expo_scan_until_blank(ts, e);
        if (ndt_number_parse_int64(ts, (size_t)(s - ts), timestamp_ms) != NDT_OK) {
            if (s == e && !p->line_complete)
                return ingest_expo_fail_eof(p, s);
            return ingest_expo_fail(p, ts, "expected integer as timestamp, got %s",
                                    ingest_expo_quote(q, sizeof(q), ts, (size_t)(s - ts)));
        }
        if (s < e)
            return ingest_expo_fail(p, s, "spurious string after timestamp: %s",
                                    ingest_expo_quote(q, sizeof(q), s, (size_t)(e - s)));
    }
    return NDT_OK;
}

static int text_sample(ingest_expo_parser *p, const char *s, const char *e)
{
    const char *ns = s;
    size_t fi;
    ingest_sample sample;

    ndt_str name;
    if (expo_same_name(p, s, e)) {
        /* Same metric as the previous sample: no scan, no lookup. */
        name = (ndt_str){ ns, p->cache_name.len };
        s += name.len;
        fi = p->cache_family;
    } else {
        s = expo_scan_metric_name(s, e);
        if (s == ns)
            return ingest_expo_fail(p, ns, "invalid metric name");
        name = (ndt_str){ ns, (size_t)(s - ns) };
        if (text_resolve(p, name, &fi) != NDT_OK)
            return NDT_ERROR;
    }
    ingest_expo_family *f = &p->families[fi];
    if (!(f->flags & EXPO_FAMILY_HAS_TYPE)) {
        f->flags |= EXPO_FAMILY_HAS_TYPE;
        f->type = INGEST_TYPE_UNKNOWN;
    }
    f->flags |= EXPO_FAMILY_HAS_SAMPLES;

    s = expo_skip_blank(s, e);
    p->nscratch = 0;
    p->label_filter = 0;
    if (s < e && *s == '{') {
        s++;
        if (text_labels(p, f, &s, e) != NDT_OK)
            return NDT_ERROR;
    }
    expo_sample_from_family(&sample, f, p->line);
    sample.name = name;
    sample.native = NULL; /* text formats carry no native histogram */
    if (ingest_expo_text_value(p, s, e, &sample.value, &sample.timestamp_ms) != NDT_OK)
        return NDT_ERROR;
    if (ingest_expo_scratch_commit(p, ns, &sample.labels, &sample.nlabels) != NDT_OK)
        return NDT_ERROR;
    if (p->shape)
        ingest_expo_shape_note(p, s, e);
    return expo_emit(p, &sample, e);
}

/* Whether s[0..n) spells word (lower-case letters, n <= 16) in any ASCII
 * case.  Both sides are loaded as words with the case bit (0x20) set in
 * every byte: for a lower-case letter t, c | 0x20 == t holds exactly for
 * c == t and c == t - 0x20 (its capital), so this is strncasecmp without
 * the locale or a loop.  '_' would alias DEL this way: callers compare it
 * on its own. */
static inline uint64_t text_fold_load(const char *s, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, s, n);
    return w | UINT64_C(0x2020202020202020);
}

static inline int text_word_case_eq(const char *s, const char *word, size_t n)
{
    if (n <= 8)
        return text_fold_load(s, n) == text_fold_load(word, n);
    return text_fold_load(s, 8) == text_fold_load(word, 8) &&
           text_fold_load(s + n - 8, 8) == text_fold_load(word + n - 8, 8);
}

/* The type words (counter, gauge, histogram, summary, untyped and
 * gauge_histogram, any case), told apart by length and first letter so
 * that one word compare decides. */
static int text_type_from(const char *s, size_t len, uint8_t *type)
{
    ingest_metric_type t;
    switch (len) {
    case 5:
        if (!text_word_case_eq(s, "gauge", 5))
            return NDT_ERROR;
        t = INGEST_TYPE_GAUGE;
        break;
    case 7:
        switch (s[0] | 0x20) {
        case 'c':
            t = INGEST_TYPE_COUNTER;
            if (!text_word_case_eq(s, "counter", 7))
                return NDT_ERROR;
            break;
        case 's':
            t = INGEST_TYPE_SUMMARY;
            if (!text_word_case_eq(s, "summary", 7))
                return NDT_ERROR;
            break;
        case 'u':
            t = INGEST_TYPE_UNKNOWN;
            if (!text_word_case_eq(s, "untyped", 7))
                return NDT_ERROR;
            break;
        default:
            return NDT_ERROR;
        }
        break;
    case 9:
        if (!text_word_case_eq(s, "histogram", 9))
            return NDT_ERROR;
        t = INGEST_TYPE_HISTOGRAM;
        break;
    case 15:
        if (!(text_word_case_eq(s, "gauge", 5) && s[5] == '_' &&
              text_word_case_eq(s + 6, "histogram", 9)))
            return NDT_ERROR;
        t = INGEST_TYPE_GAUGE_HISTOGRAM;
        break;
    default:
        return NDT_ERROR;
    }
    *type = (uint8_t)t;
    return NDT_OK;
}

/* Ends a comment line: fine if it had its LF. */
static int text_comment_done(ingest_expo_parser *p, const char *e)
{
    return p->line_complete ? NDT_OK : ingest_expo_fail_eof(p, e);
}

static int text_comment(ingest_expo_parser *p, const char *s, const char *e)
{
    char q[80];
    const char *kw;
    int help;
    if (e - s > 7 && !expo_is_blank(s[7]) &&
        (memcmp(s, "# HELP ", 7) == 0 || memcmp(s, "# TYPE ", 7) == 0)) {
        /* How every exporter spaces it: the same as the general path below
         * finds, without its three blank skips and two keyword compares. */
        kw = s + 2;
        help = s[2] == 'H';
        s += 7;
    } else {
        s = expo_skip_blank(s + 1, e);
        kw = s;
        /* Only "HELP" or "TYPE" followed by a blank matter; anything else
         * is a comment whose bytes need no look. */
        if (e - s < 5 || !expo_is_blank(s[4]))
            return text_comment_done(p, e);
        help = memcmp(kw, "HELP", 4) == 0;
        if (!help && memcmp(kw, "TYPE", 4) != 0)
            return text_comment_done(p, e);
        s = expo_skip_blank(s + 4, e);
    }
    const char *ns = s;
    size_t fi;
    if (expo_same_name(p, s, e)) {
        /* TYPE after HELP (or HELP after TYPE) of one family, the order
         * every exporter writes: a word compare, no scan, no lookup. */
        s += p->cache_name.len;
        if (!expo_is_blank(*s))
            return ingest_expo_fail(p, ns, "invalid metric name in comment");
        fi = p->cache_family;
    } else {
        s = expo_scan_metric_name(s, e);
        if (s == e)
            return text_comment_done(p, e);
        if (!expo_is_blank(*s))
            return ingest_expo_fail(p, ns, "invalid metric name in comment");
        /* Not the cached name (expo_same_name said so): the full lookup. */
        if (text_resolve_slow(p, (ndt_str){ ns, (size_t)(s - ns) }, &fi) != NDT_OK)
            return NDT_ERROR;
    }
    /* The cache stays valid: a name's family never changes once found
     * (exact names win, and a stripped match is already typed). */
    s = expo_skip_blank(s, e);
    if (s == e)
        return text_comment_done(p, e);
    ingest_expo_family *f = &p->families[fi];
    if (help) {
        if (f->flags & EXPO_FAMILY_HAS_HELP)
            return ingest_expo_fail(p, kw, "second HELP line for metric name %s",
                                    ingest_expo_quote(q, sizeof(q), f->name.ptr, f->name.len));
        if (expo_has_backslash(s, e) && ingest_expo_check_help_escapes(p, s, e, 0) != NDT_OK)
            return NDT_ERROR;
        f->help = (ndt_str){ s, (size_t)(e - s) };
        f->flags |= EXPO_FAMILY_HAS_HELP;
        return text_comment_done(p, e);
    }
    if (f->flags & EXPO_FAMILY_HAS_TYPE)
        return ingest_expo_fail(
            p, kw, "second TYPE line for metric name %s, or TYPE reported after samples",
            ingest_expo_quote(q, sizeof(q), f->name.ptr, f->name.len));
    if (text_type_from(s, (size_t)(e - s), &f->type) != NDT_OK) {
        if (!p->line_complete)
            return ingest_expo_fail_eof(p, e);
        return ingest_expo_fail(p, s, "unknown metric type %s",
                                ingest_expo_quote(q, sizeof(q), s, (size_t)(e - s)));
    }
    f->flags |= EXPO_FAMILY_HAS_TYPE;
    return text_comment_done(p, e);
}

int ingest_expo_text_line(ingest_expo_parser *p, const char *s, const char *e)
{
    s = expo_skip_blank(s, e);
    if (s == e)
        return NDT_OK; /* blank line, or trailing blanks at the very end */
    if (*s == '#')
        return text_comment(p, s, e);
    return text_sample(p, s, e);
}
