/*
 * relabel.c: Prometheus relabeling, compiled once and applied per target
 * (relabel_configs) and per sample (metric_relabel_configs).
 *
 * Semantics are Prometheus's (model/relabel in prometheus/prometheus):
 * each rule reads the label set as the previous rule left it; source
 * labels are joined with the separator (a missing label reads as ""); the
 * regex must match the whole joined value; a label set to "" is deleted.
 * See relabel.h for the list of actions and docs/CONFIGURATION.md for the
 * user-facing reference.
 *
 * Cost model: metric relabeling runs for every sample of every 20 ms
 * scrape, so a rule is compiled once (PCRE2 with JIT, anchored at both
 * ends by compile options rather than by pasting "^(?:...)$" around the
 * user's text), keeps its own match data, and works on a stack buffer:
 * the arena is touched only when a rule actually changes a label to a
 * value that does not already exist somewhere.  A rule that changes
 * nothing allocates nothing.
 *
 * Thread-safety: compiled rules carry their match data and MD5 context,
 * so one ingest_relabel_rules may be applied by one thread at a time.
 * The scraper drives all targets from one event loop, which fits; a
 * second thread needs its own copy (compiling is cheap).
 */
#include "ingest/relabel.h"

#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <openssl/evp.h>
#include <pcre2.h>

#include "common/ndt.h"

/* Joined source values and expanded templates shorter than this never
 * touch the arena unless they are stored. */
#define RELABEL_STACK_BUF 1024
/* Backtracking budget of one match (about 0.3 ms).  RE2 (Prometheus) is
 * linear time; PCRE2 is not, so a pathological pattern on a long value is
 * cut off here instead of stalling the scrape loop.  Measured: (.*)-(.*)
 * and .*foo.* style rules stay far below it on 64 KiB values; three
 * greedy groups that fail, (.+)_(.+)_(.+)_total, reach it from about
 * 1 KiB of value full of '_'. */
#define RELABEL_MATCH_LIMIT 100000

struct ingest_relabel_rule {
    ingest_relabel_action action;
    ndt_str *source_labels;      /* names, each a malloc'ed C string */
    size_t nsource;
    ndt_str separator;
    ndt_str target_label;
    ndt_str replacement;
    int target_has_ref;          /* '$' in target_label: expand per match */
    int replacement_has_ref;
    uint64_t modulus;
    pcre2_code *re;
    pcre2_match_data *match;
    pcre2_match_context *limits; /* bounds backtracking (RE2 never backtracks) */
    int jit;                     /* JIT code available: use the fast entry */
    uint64_t match_errors;       /* matches abandoned at the limit, read as no match */
    EVP_MD_CTX *md5;
};

static const char *const action_names[] = {
    [INGEST_RELABEL_REPLACE] = "replace",     [INGEST_RELABEL_KEEP] = "keep",
    [INGEST_RELABEL_DROP] = "drop",           [INGEST_RELABEL_KEEPEQUAL] = "keepequal",
    [INGEST_RELABEL_DROPEQUAL] = "dropequal", [INGEST_RELABEL_HASHMOD] = "hashmod",
    [INGEST_RELABEL_LABELMAP] = "labelmap",   [INGEST_RELABEL_LABELDROP] = "labeldrop",
    [INGEST_RELABEL_LABELKEEP] = "labelkeep", [INGEST_RELABEL_LOWERCASE] = "lowercase",
    [INGEST_RELABEL_UPPERCASE] = "uppercase",
};

/* ------------------------------------------------------------------ */
/* Label sets                                                          */
/* ------------------------------------------------------------------ */

void ingest_labelset_init(ingest_labelset *ls, ndt_arena *arena)
{
    ls->labels = NULL;
    ls->n = 0;
    ls->cap = 0;
    ls->arena = arena;
}

/* Index of name, or of where it would be inserted (*found = 0). */
static size_t labelset_find(const ingest_labelset *ls, ndt_str name, int *found)
{
    size_t lo = 0, hi = ls->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = ndt_str_cmp(ls->labels[mid].name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static int labelset_reserve(ingest_labelset *ls, size_t need)
{
    if (need <= ls->cap)
        return NDT_OK;
    size_t cap = ls->cap ? ls->cap * 2 : 16;
    while (cap < need)
        cap *= 2;
    ingest_label *labels = ndt_arena_alloc(ls->arena, cap * sizeof(*labels));
    if (!labels)
        return NDT_ERROR;
    if (ls->n)
        memcpy(labels, ls->labels, ls->n * sizeof(*labels));
    ls->labels = labels; /* the old array stays in the arena until its reset */
    ls->cap = cap;
    return NDT_OK;
}

const ingest_label *ingest_labelset_get(const ingest_labelset *ls, ndt_str name)
{
    int found;
    size_t i = labelset_find(ls, name, &found);
    return found ? &ls->labels[i] : NULL;
}

static void labelset_remove_at(ingest_labelset *ls, size_t i)
{
    memmove(&ls->labels[i], &ls->labels[i + 1], (ls->n - i - 1) * sizeof(ls->labels[0]));
    ls->n--;
}

void ingest_labelset_del(ingest_labelset *ls, ndt_str name)
{
    int found;
    size_t i = labelset_find(ls, name, &found);
    if (found)
        labelset_remove_at(ls, i);
}

int ingest_labelset_set(ingest_labelset *ls, ndt_str name, ndt_str value)
{
    if (value.len == 0) {
        ingest_labelset_del(ls, name);
        return NDT_OK;
    }
    int found;
    size_t i = labelset_find(ls, name, &found);
    if (found) {
        ls->labels[i].value = value;
        return NDT_OK;
    }
    if (labelset_reserve(ls, ls->n + 1) != NDT_OK)
        return NDT_ERROR;
    memmove(&ls->labels[i + 1], &ls->labels[i], (ls->n - i) * sizeof(ls->labels[0]));
    ls->labels[i].name = name;
    ls->labels[i].value = value;
    ls->n++;
    return NDT_OK;
}

int ingest_labelset_append(ingest_labelset *ls, ndt_str name, ndt_str value)
{
    if (labelset_reserve(ls, ls->n + 1) != NDT_OK)
        return NDT_ERROR;
    ls->labels[ls->n].name = name;
    ls->labels[ls->n].value = value;
    ls->n++;
    return NDT_OK;
}

static int label_cmp(const void *a, const void *b)
{
    return ndt_str_cmp(((const ingest_label *)a)->name, ((const ingest_label *)b)->name);
}

/* Label sets are small and usually nearly sorted already (expositions list
 * labels in order): insertion sort is linear then and allocates nothing,
 * unlike glibc's qsort, which merge-sorts through a malloc'ed buffer. */
#define LABELSET_INSERTION_SORT_MAX 32

void ingest_labelset_sort(ingest_labelset *ls)
{
    if (ls->n > LABELSET_INSERTION_SORT_MAX) {
        qsort(ls->labels, ls->n, sizeof(ls->labels[0]), label_cmp);
        return;
    }
    for (size_t i = 1; i < ls->n; i++) {
        ingest_label key = ls->labels[i];
        size_t j = i;
        while (j > 0 && ndt_str_cmp(ls->labels[j - 1].name, key.name) > 0) {
            ls->labels[j] = ls->labels[j - 1];
            j--;
        }
        ls->labels[j] = key;
    }
}

/* ------------------------------------------------------------------ */
/* Template expansion (Go's regexp.Expand)                             */
/* ------------------------------------------------------------------ */

static int is_word_char(unsigned char c)
{
    return isalnum(c) || c == '_';
}

typedef struct expand_out {
    char *buf;
    size_t cap;
    size_t len; /* may exceed cap: the caller retries with a bigger buffer */
} expand_out;

static void out_put(expand_out *o, const char *s, size_t n)
{
    if (o->len < o->cap)
        memcpy(o->buf + o->len, s, o->len + n <= o->cap ? n : o->cap - o->len);
    o->len += n;
}

/* Group number a $name refers to, or -1: digits without a leading zero
 * are a number, anything else a named group (Go's rules). */
static int expand_group(const pcre2_code *re, const char *name, size_t len)
{
    int num = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)name[i]) || num >= 100000000) {
            num = -1;
            break;
        }
        num = num * 10 + (name[i] - '0');
    }
    if (len > 1 && name[0] == '0')
        num = -1;
    if (num >= 0)
        return num;
    char cname[64];
    if (len >= sizeof(cname))
        return -1;
    memcpy(cname, name, len);
    cname[len] = '\0';
    int n = pcre2_substring_number_from_name(re, (PCRE2_SPTR)cname);
    return n >= 0 ? n : -1;
}

static void expand(const pcre2_code *re, ndt_str tmpl, ndt_str subject, const PCRE2_SIZE *ov,
                   int ngroups, expand_out *o)
{
    const char *p = tmpl.ptr, *end = tmpl.ptr + tmpl.len;
    while (p < end) {
        const char *dollar = memchr(p, '$', (size_t)(end - p));
        if (!dollar) {
            out_put(o, p, (size_t)(end - p));
            return;
        }
        out_put(o, p, (size_t)(dollar - p));
        p = dollar + 1;
        if (p < end && *p == '$') { /* "$$" is a literal '$' */
            out_put(o, "$", 1);
            p++;
            continue;
        }
        const char *name = p, *name_end;
        int braced = p < end && *p == '{';
        if (braced)
            name = ++p;
        name_end = name;
        while (name_end < end && is_word_char((unsigned char)*name_end))
            name_end++;
        if (name_end == name || (braced && (name_end >= end || *name_end != '}'))) {
            /* Malformed reference: Go keeps the '$' as text. */
            out_put(o, "$", 1);
            p = braced ? name - 1 : name;
            continue;
        }
        p = braced ? name_end + 1 : name_end;
        int g = expand_group(re, name, (size_t)(name_end - name));
        if (g < 0 || g >= ngroups || ov[2 * g] == PCRE2_UNSET)
            continue; /* an invalid or unset group expands to nothing */
        out_put(o, subject.ptr + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
    }
}

/* Expands into stack (cap bytes) or, when longer, into the arena.
 * NDT_ERROR only when the arena is exhausted. */
static int expand_into(ingest_relabel_rule *r, ndt_str tmpl, ndt_str subject, int ngroups,
                       char *stack, size_t cap, ndt_arena *arena, ndt_str *out)
{
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->match);
    expand_out o = { stack, cap, 0 };
    expand(r->re, tmpl, subject, ov, ngroups, &o);
    if (o.len > cap) {
        size_t need = o.len;
        o = (expand_out){ ndt_arena_alloc(arena, need), need, 0 };
        if (!o.buf)
            return NDT_ERROR;
        expand(r->re, tmpl, subject, ov, ngroups, &o);
    }
    *out = (ndt_str){ o.buf, o.len };
    return NDT_OK;
}

/* ------------------------------------------------------------------ */
/* Applying rules                                                      */
/* ------------------------------------------------------------------ */

/* Number of groups matched (>0), 0 for no match.  Matching errors (for
 * instance a pathological pattern hitting PCRE2's match limit) count as
 * no match: a bad regex must not stop the scrape. */
static int rule_match(ingest_relabel_rule *r, ndt_str s)
{
    PCRE2_SPTR subject = (PCRE2_SPTR)(s.ptr ? s.ptr : "");
    int rc = r->jit ? pcre2_jit_match(r->re, subject, s.len, 0, 0, r->match, r->limits)
                    : pcre2_match(r->re, subject, s.len, 0, 0, r->match, r->limits);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
        r->match_errors++;
    return rc > 0 ? rc : 0;
}

/* The separator-joined source values; borrowed when there is one source. */
static int join_sources(ingest_relabel_rule *r, const ingest_labelset *ls, char *stack,
                        size_t cap, ndt_str *out)
{
    if (r->nsource == 1) {
        const ingest_label *l = ingest_labelset_get(ls, r->source_labels[0]);
        *out = l ? l->value : (ndt_str){ "", 0 };
        return NDT_OK;
    }
    size_t total = 0;
    for (size_t i = 0; i < r->nsource; i++) {
        const ingest_label *l = ingest_labelset_get(ls, r->source_labels[i]);
        total += (l ? l->value.len : 0) + (i ? r->separator.len : 0);
    }
    char *buf = stack;
    if (total > cap && !(buf = ndt_arena_alloc(ls->arena, total)))
        return NDT_ERROR;
    size_t used = 0;
    for (size_t i = 0; i < r->nsource; i++) {
        const ingest_label *l = ingest_labelset_get(ls, r->source_labels[i]);
        if (i) {
            memcpy(buf + used, r->separator.ptr, r->separator.len);
            used += r->separator.len;
        }
        if (l && l->value.len) {
            memcpy(buf + used, l->value.ptr, l->value.len);
            used += l->value.len;
        }
    }
    *out = (ndt_str){ buf, used };
    return NDT_OK;
}

int ingest_label_name_valid(ndt_str s)
{
    if (s.len == 0 || !(isalpha((unsigned char)s.ptr[0]) || s.ptr[0] == '_'))
        return 0;
    for (size_t i = 1; i < s.len; i++)
        if (!is_word_char((unsigned char)s.ptr[i]))
            return 0;
    return 1;
}

/* Sets name=value, copying into the arena whatever is not already owned
 * by it or the rule (copy_name / copy_value), and only when the label
 * would actually change. */
static int set_if_changed(ingest_labelset *ls, ndt_str name, int copy_name, ndt_str value,
                          int copy_value)
{
    const ingest_label *cur = ingest_labelset_get(ls, name);
    if (value.len == 0) {
        if (cur)
            ingest_labelset_del(ls, name);
        return NDT_OK;
    }
    if (cur && ndt_str_eq(cur->value, value))
        return NDT_OK;
    if (cur)
        name = cur->name; /* keep the existing name string, no copy needed */
    else if (copy_name && !(name.ptr = ndt_arena_strndup(ls->arena, name.ptr, name.len)))
        return NDT_ERROR;
    if (copy_value && !(value.ptr = ndt_arena_strndup(ls->arena, value.ptr, value.len)))
        return NDT_ERROR;
    return ingest_labelset_set(ls, name, value);
}

static int apply_replace(ingest_relabel_rule *r, ingest_labelset *ls, ndt_str val)
{
    char tbuf[256], rbuf[RELABEL_STACK_BUF];
    int ngroups = rule_match(r, val);
    if (!ngroups)
        return NDT_OK;
    ndt_str target = r->target_label, res = r->replacement;
    if (r->target_has_ref) {
        if (expand_into(r, r->target_label, val, ngroups, tbuf, sizeof(tbuf), ls->arena,
                        &target) != NDT_OK)
            return NDT_ERROR;
        if (!ingest_label_name_valid(target))
            return NDT_OK;
    }
    if (r->replacement_has_ref &&
        expand_into(r, r->replacement, val, ngroups, rbuf, sizeof(rbuf), ls->arena, &res) !=
            NDT_OK)
        return NDT_ERROR;
    return set_if_changed(ls, target, r->target_has_ref, res, r->replacement_has_ref);
}

/* One rune of s as Go's utf8.DecodeRune reads it: U+FFFD and width 1
 * for a byte that does not start a valid, shortest-form sequence. */
static uint32_t utf8_decode(const unsigned char *s, size_t n, size_t *width)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp, min;
    *width = 1;
    if (c < 0x80)
        return c;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2, cp = c & 0x1Fu, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3, cp = c & 0x0Fu, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4, cp = c & 0x07u, min = 0x10000;
    else
        return 0xFFFD;
    if (n < need)
        return 0xFFFD;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0xFFFD;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0xFFFD;
    *width = need;
    return cp;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* glibc's C.UTF-8 case tables give the simple (one rune to one rune)
 * mappings Go's unicode.ToLower/ToUpper use; (locale_t)0 if missing. */
static locale_t case_locale;
static pthread_once_t case_locale_once = PTHREAD_ONCE_INIT;

static void case_locale_init(void)
{
    case_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Go's strings.ToLower / ToUpper: ASCII stays a byte loop; otherwise
 * rune by rune, an invalid byte becoming U+FFFD. */
static size_t case_convert(ndt_str val, int upper, char *out)
{
    size_t used = 0;
    const unsigned char *p = (const unsigned char *)val.ptr;
    pthread_once(&case_locale_once, case_locale_init);
    for (size_t i = 0; i < val.len;) {
        size_t width;
        uint32_t cp = utf8_decode(p + i, val.len - i, &width);
        if (cp < 0x80)
            cp = (uint32_t)(upper ? toupper((int)cp) : tolower((int)cp));
        else if (case_locale)
            cp = (uint32_t)(upper ? towupper_l((wint_t)cp, case_locale)
                                  : towlower_l((wint_t)cp, case_locale));
        used += utf8_encode(cp, out + used);
        i += width;
    }
    return used;
}

static int apply_case(ingest_relabel_rule *r, ingest_labelset *ls, ndt_str val)
{
    char buf[RELABEL_STACK_BUF];
    char *out = buf;
    /* A rune never grows by more than 3x (an invalid byte -> U+FFFD). */
    if (val.len * 3 > sizeof(buf) && !(out = ndt_arena_alloc(ls->arena, val.len * 3)))
        return NDT_ERROR;
    size_t len = case_convert(val, r->action == INGEST_RELABEL_UPPERCASE, out);
    return set_if_changed(ls, r->target_label, 0, (ndt_str){ out, len }, 1);
}

/* Prometheus's sum64 over the MD5 digest: shifts past 63 bits vanish in
 * Go, so only the last 8 bytes count, big-endian. */
static int apply_hashmod(ingest_relabel_rule *r, ingest_labelset *ls, ndt_str val)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (!EVP_DigestInit_ex(r->md5, EVP_md5(), NULL) ||
        !EVP_DigestUpdate(r->md5, val.ptr ? val.ptr : "", val.len) ||
        !EVP_DigestFinal_ex(r->md5, digest, &dlen) || dlen != 16)
        return NDT_ERROR;
    uint64_t sum = 0;
    for (int i = 8; i < 16; i++)
        sum = (sum << 8) | digest[i];
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)(sum % r->modulus));
    return set_if_changed(ls, r->target_label, 0, (ndt_str){ num, (size_t)n }, 1);
}

static int apply_labelmap(ingest_relabel_rule *r, ingest_labelset *ls)
{
    size_t first = ls->n;
    for (size_t i = 0; i < ls->n; i++) {
        if (rule_match(r, ls->labels[i].name)) {
            first = i;
            break;
        }
    }
    if (first == ls->n)
        return NDT_OK;
    /* New names land anywhere in the sorted array: walk a snapshot. */
    size_t n = ls->n;
    ingest_label *snap = ndt_arena_alloc(ls->arena, n * sizeof(*snap));
    if (!snap)
        return NDT_ERROR;
    memcpy(snap, ls->labels, n * sizeof(*snap));
    for (size_t i = first; i < n; i++) {
        int ngroups = rule_match(r, snap[i].name);
        if (!ngroups)
            continue;
        char buf[256];
        ndt_str name;
        if (expand_into(r, r->replacement, snap[i].name, ngroups, buf, sizeof(buf), ls->arena,
                        &name) != NDT_OK)
            return NDT_ERROR;
        if (name.len == 0)
            continue;
        if (set_if_changed(ls, name, name.ptr == buf, snap[i].value, 0) != NDT_OK)
            return NDT_ERROR;
    }
    return NDT_OK;
}

static void apply_labelfilter(ingest_relabel_rule *r, ingest_labelset *ls)
{
    int keep_matching = r->action == INGEST_RELABEL_LABELKEEP;
    for (size_t i = ls->n; i-- > 0;) {
        int matched = rule_match(r, ls->labels[i].name) > 0;
        if (matched != keep_matching)
            labelset_remove_at(ls, i);
    }
}

static int rule_apply(ingest_relabel_rule *r, ingest_labelset *ls, int *keep)
{
    char joined[RELABEL_STACK_BUF];
    ndt_str val = { "", 0 };

    if (r->nsource && join_sources(r, ls, joined, sizeof(joined), &val) != NDT_OK)
        return NDT_ERROR;

    switch (r->action) {
    case INGEST_RELABEL_REPLACE:
        return apply_replace(r, ls, val);
    case INGEST_RELABEL_KEEP:
        *keep = rule_match(r, val) > 0;
        return NDT_OK;
    case INGEST_RELABEL_DROP:
        *keep = rule_match(r, val) == 0;
        return NDT_OK;
    case INGEST_RELABEL_KEEPEQUAL:
    case INGEST_RELABEL_DROPEQUAL: {
        const ingest_label *t = ingest_labelset_get(ls, r->target_label);
        int equal = ndt_str_eq(t ? t->value : (ndt_str){ "", 0 }, val);
        *keep = r->action == INGEST_RELABEL_KEEPEQUAL ? equal : !equal;
        return NDT_OK;
    }
    case INGEST_RELABEL_HASHMOD:
        return apply_hashmod(r, ls, val);
    case INGEST_RELABEL_LABELMAP:
        return apply_labelmap(r, ls);
    case INGEST_RELABEL_LABELDROP:
    case INGEST_RELABEL_LABELKEEP:
        apply_labelfilter(r, ls);
        return NDT_OK;
    case INGEST_RELABEL_LOWERCASE:
    case INGEST_RELABEL_UPPERCASE:
        return apply_case(r, ls, val);
    }
    return NDT_OK;
}

int ingest_relabel_apply(const ingest_relabel_rules *rules, ingest_labelset *ls, int *keep)
{
    *keep = 1;
    for (size_t i = 0; i < rules->n; i++) {
        if (rule_apply(&rules->rules[i], ls, keep) != NDT_OK)
            return NDT_ERROR;
        if (!*keep)
            return NDT_OK;
    }
    return NDT_OK;
}

/* ------------------------------------------------------------------ */
/* Parsing and validation                                              */
/* ------------------------------------------------------------------ */

/* The flat keys of one relabel config, decoded through a confmap. */
typedef struct relabel_yaml {
    char *separator;
    char *regex;
    char *target_label;
    char *replacement;
    char *action;
    uint64_t modulus;
} relabel_yaml;

#define RELABEL_DEFAULT_SEPARATOR ";"
#define RELABEL_DEFAULT_REGEX "(.*)"
#define RELABEL_DEFAULT_REPLACEMENT "$1"

static const ndt_conf_entry relabel_map[] = {
    { "separator", NDT_CONF_STRING, RELABEL_DEFAULT_SEPARATOR, offsetof(relabel_yaml, separator),
      "joins the source label values" },
    { "regex", NDT_CONF_STRING, RELABEL_DEFAULT_REGEX, offsetof(relabel_yaml, regex),
      "matched against the joined value (anchored at both ends)" },
    { "target_label", NDT_CONF_STRING, NULL, offsetof(relabel_yaml, target_label),
      "label the result is written to" },
    { "replacement", NDT_CONF_STRING, RELABEL_DEFAULT_REPLACEMENT,
      offsetof(relabel_yaml, replacement), "value written on a match, with $1 / ${name}" },
    { "action", NDT_CONF_STRING, "replace", offsetof(relabel_yaml, action),
      "replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, "
      "lowercase, uppercase" },
    { "modulus", NDT_CONF_UINT, NULL, offsetof(relabel_yaml, modulus), "hashmod's modulus" },
    { "source_labels", NDT_CONF_EXTERNAL, NULL, 0, "labels whose values are joined" },
    { NULL },
};

static int str_eq0(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Prometheus's relabelTarget: label-name characters and $name / ${name}
 * references, not starting with a digit. */
static int template_name_valid(const char *s)
{
    if (!*s || isdigit((unsigned char)*s))
        return 0;
    while (*s) {
        if (*s == '$') {
            s++;
            int braced = *s == '{';
            if (braced)
                s++;
            const char *start = s;
            while (is_word_char((unsigned char)*s))
                s++;
            if (s == start || (braced && *s++ != '}'))
                return 0;
        } else if (is_word_char((unsigned char)*s)) {
            s++;
        } else {
            return 0;
        }
    }
    return 1;
}

static ndt_str owned_str(char **s)
{
    if (!*s)
        *s = strdup("");
    return (ndt_str){ *s, *s ? strlen(*s) : 0 };
}

/* The node of key in the rule, or the rule itself, for error positions. */
static yaml_node_t *rule_node(ndt_yaml *y, yaml_node_t *rule, const char *key)
{
    yaml_node_t *n = ndt_yaml_map_get(y, rule, key);
    return n ? n : rule;
}

static int parse_action(ndt_yaml *y, yaml_node_t *node, const char *text,
                        ingest_relabel_action *out, char *err, size_t errlen)
{
    char lower[32];
    size_t i;
    for (i = 0; text[i] && i < sizeof(lower) - 1; i++)
        lower[i] = (char)tolower((unsigned char)text[i]);
    lower[i] = '\0';
    for (size_t a = 0; a < NDT_ARRAY_LEN(action_names); a++) {
        if (strcmp(lower, action_names[a]) == 0) {
            *out = (ingest_relabel_action)a;
            return NDT_OK;
        }
    }
    const char *hint = ndt_config_closest(lower, action_names, NDT_ARRAY_LEN(action_names));
    return ndt_yaml_error(y, node, "action", err, errlen, "unknown relabel action '%s'%s%s%s",
                          text, hint ? ", did you mean " : "", hint ? hint : "", hint ? "?" : "");
}

static int parse_source_labels(ndt_yaml *y, yaml_node_t *seq, ingest_relabel_rule *r, char *err,
                               size_t errlen)
{
    if (ndt_yaml_is_null(seq))
        return NDT_OK;
    if (seq->type != YAML_SEQUENCE_NODE)
        return ndt_yaml_error(y, seq, "source_labels", err, errlen,
                              "expected a list of label names like [job, instance]");
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    r->source_labels = calloc(n ? n : 1, sizeof(*r->source_labels));
    if (!r->source_labels)
        return ndt_yaml_error(y, seq, "source_labels", err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(&y->doc, seq->data.sequence.items.start[i]);
        const char *name = ndt_yaml_scalar(item);
        if (!name || !ingest_label_name_valid(ndt_str_from_cstr(name)))
            return ndt_yaml_error(y, item, "source_labels", err, errlen,
                                  "'%s' is not a valid label name", name ? name : "(not a string)");
        char *copy = strdup(name);
        if (!copy)
            return ndt_yaml_error(y, item, "source_labels", err, errlen, "out of memory");
        r->source_labels[r->nsource++] = (ndt_str){ copy, strlen(copy) };
    }
    return NDT_OK;
}

/* Prometheus's relabel.Config.Validate, with errors pointing at a key. */
static int validate_rule(ndt_yaml *y, yaml_node_t *node, const relabel_yaml *c,
                         ingest_relabel_rule *r, char *err, size_t errlen)
{
    ingest_relabel_action a = r->action;
    const char *an = action_names[a];
    const char *target = c->target_label ? c->target_label : "";
    int needs_target = a == INGEST_RELABEL_REPLACE || a == INGEST_RELABEL_HASHMOD ||
                       a == INGEST_RELABEL_LOWERCASE || a == INGEST_RELABEL_UPPERCASE ||
                       a == INGEST_RELABEL_KEEPEQUAL || a == INGEST_RELABEL_DROPEQUAL;
    int equal_kind = a == INGEST_RELABEL_KEEPEQUAL || a == INGEST_RELABEL_DROPEQUAL;

    if (a == INGEST_RELABEL_HASHMOD && c->modulus == 0)
        return ndt_yaml_error(y, rule_node(y, node, "modulus"), "modulus", err, errlen,
                              "relabel configuration for hashmod requires non-zero modulus");
    if (needs_target && !*target)
        return ndt_yaml_error(y, rule_node(y, node, "action"), "target_label", err, errlen,
                              "relabel configuration for %s action requires 'target_label' value",
                              an);
    int target_ok = a == INGEST_RELABEL_REPLACE ? template_name_valid(target)
                                                : ingest_label_name_valid(ndt_str_from_cstr(target));
    if (needs_target && !target_ok)
        return ndt_yaml_error(y, rule_node(y, node, "target_label"), "target_label", err, errlen,
                              "'%s' is invalid 'target_label' for %s action", target, an);
    if ((a == INGEST_RELABEL_LOWERCASE || a == INGEST_RELABEL_UPPERCASE || equal_kind) &&
        !str_eq0(c->replacement, RELABEL_DEFAULT_REPLACEMENT))
        return ndt_yaml_error(y, rule_node(y, node, "replacement"), "replacement", err, errlen,
                              "'replacement' can not be set for %s action", an);
    if (a == INGEST_RELABEL_LABELMAP && !template_name_valid(c->replacement ? c->replacement : ""))
        return ndt_yaml_error(y, rule_node(y, node, "replacement"), "replacement", err, errlen,
                              "'%s' is invalid 'replacement' for %s action",
                              c->replacement ? c->replacement : "", an);
    if (equal_kind && (!str_eq0(c->regex, RELABEL_DEFAULT_REGEX) || c->modulus ||
                       !str_eq0(c->separator, RELABEL_DEFAULT_SEPARATOR)))
        return ndt_yaml_error(y, rule_node(y, node, "action"), "action", err, errlen,
                              "%s action requires only 'source_labels' and 'target_label', and "
                              "no other fields",
                              an);
    if ((a == INGEST_RELABEL_LABELDROP || a == INGEST_RELABEL_LABELKEEP) &&
        (ndt_yaml_map_get(y, node, "source_labels") || *target || c->modulus ||
         !str_eq0(c->separator, RELABEL_DEFAULT_SEPARATOR) ||
         !str_eq0(c->replacement, RELABEL_DEFAULT_REPLACEMENT)))
        return ndt_yaml_error(y, rule_node(y, node, "action"), "action", err, errlen,
                              "%s action requires only 'regex', and no other fields", an);
    return NDT_OK;
}

static int compile_regex(ndt_yaml *y, yaml_node_t *node, const char *regex,
                         ingest_relabel_rule *r, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE offset;
    /* Anchoring by option keeps the user's text intact (offsets in
     * errors are theirs) and cannot be defeated by a stray ')' or '|'. */
    uint32_t opts = PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    r->re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, opts, &code, &offset, NULL);
    if (!r->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof(msg));
        return ndt_yaml_error(y, rule_node(y, node, "regex"), "regex", err, errlen,
                              "invalid regular expression '%s': %s at offset %zu", regex,
                              (const char *)msg, (size_t)offset);
    }
    /* Without JIT the interpreter still gives the same answers. */
    r->jit = pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0;
    r->match = pcre2_match_data_create_from_pattern(r->re, NULL);
    r->limits = pcre2_match_context_create(NULL);
    if (r->limits)
        pcre2_set_match_limit(r->limits, RELABEL_MATCH_LIMIT);
    if (!r->match || !r->limits)
        return ndt_yaml_error(y, node, "regex", err, errlen, "out of memory");
    return NDT_OK;
}

static void rule_free(ingest_relabel_rule *r)
{
    for (size_t i = 0; i < r->nsource; i++)
        free((char *)r->source_labels[i].ptr);
    free(r->source_labels);
    free((char *)r->separator.ptr);
    free((char *)r->target_label.ptr);
    free((char *)r->replacement.ptr);
    pcre2_match_data_free(r->match);
    pcre2_match_context_free(r->limits);
    pcre2_code_free(r->re);
    EVP_MD_CTX_free(r->md5);
    memset(r, 0, sizeof(*r));
}

static int rule_from_yaml(ndt_yaml *y, yaml_node_t *node, ingest_relabel_rule *r, char *err,
                          size_t errlen)
{
    relabel_yaml c = { 0 };
    int rc = NDT_ERROR;

    if (node->type != YAML_MAPPING_NODE)
        return ndt_yaml_error(y, node, NULL, err, errlen,
                              "expected a relabel config (a mapping with source_labels, regex, "
                              "action, ...)");
    if (ndt_confmap_set_defaults(relabel_map, &c, err, errlen) != NDT_OK)
        goto out;
    if (ndt_confmap_apply_yaml(relabel_map, &c, y, node, NULL, err, errlen) !=
        NDT_OK)
        goto out;
    if (parse_action(y, rule_node(y, node, "action"), c.action, &r->action, err, errlen) !=
        NDT_OK)
        goto out;
    if (parse_source_labels(y, ndt_yaml_map_get(y, node, "source_labels"), r, err, errlen) !=
        NDT_OK)
        goto out;
    if (validate_rule(y, node, &c, r, err, errlen) != NDT_OK)
        goto out;
    if (compile_regex(y, node, c.regex ? c.regex : "", r, err, errlen) != NDT_OK)
        goto out;
    if (r->action == INGEST_RELABEL_HASHMOD && !(r->md5 = EVP_MD_CTX_new())) {
        ndt_yaml_error(y, node, NULL, err, errlen, "out of memory");
        goto out;
    }
    r->modulus = c.modulus;
    r->separator = owned_str(&c.separator);
    r->target_label = owned_str(&c.target_label);
    r->replacement = owned_str(&c.replacement);
    c.separator = c.target_label = c.replacement = NULL; /* now owned by the rule */
    if (!r->separator.ptr || !r->target_label.ptr || !r->replacement.ptr) {
        ndt_yaml_error(y, node, NULL, err, errlen, "out of memory");
        goto out;
    }
    r->target_has_ref = memchr(r->target_label.ptr, '$', r->target_label.len) != NULL;
    r->replacement_has_ref = memchr(r->replacement.ptr, '$', r->replacement.len) != NULL;
    rc = NDT_OK;
out:
    ndt_confmap_free(relabel_map, &c);
    return rc;
}

int ingest_relabel_rules_from_yaml(ndt_yaml *y, yaml_node_t *seq, ingest_relabel_rules *out,
                                   char *err, size_t errlen)
{
    out->rules = NULL;
    out->n = 0;
    if (ndt_yaml_is_null(seq))
        return NDT_OK;
    if (seq->type != YAML_SEQUENCE_NODE)
        return ndt_yaml_error(y, seq, NULL, err, errlen, "expected a list of relabel configs");
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    out->rules = calloc(n ? n : 1, sizeof(*out->rules));
    if (!out->rules)
        return ndt_yaml_error(y, seq, NULL, err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(&y->doc, seq->data.sequence.items.start[i]);
        out->n = i + 1; /* so a failure frees the partly built rule too */
        if (rule_from_yaml(y, item, &out->rules[i], err, errlen) != NDT_OK) {
            ingest_relabel_rules_free(out);
            return NDT_ERROR;
        }
    }
    return NDT_OK;
}

uint64_t ingest_relabel_match_errors(const ingest_relabel_rules *rules)
{
    uint64_t total = 0;
    for (size_t i = 0; i < rules->n; i++)
        total += rules->rules[i].match_errors;
    return total;
}

void ingest_relabel_rules_free(ingest_relabel_rules *rules)
{
    for (size_t i = 0; i < rules->n; i++)
        rule_free(&rules->rules[i]);
    free(rules->rules);
    rules->rules = NULL;
    rules->n = 0;
}
