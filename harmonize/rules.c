/*
 * rules.c: loading and compiling mapping rules, see rules.h.
 *
 * The loader is strict on purpose: a rule file is code that decides what
 * the twin believes, so an unknown key, a transform it does not know, a
 * template naming an entity of another type or a regex PCRE2 rejects is an
 * error with the file, line and column, never a rule silently skipped.
 * Regexes are fully anchored (Prometheus matcher semantics) and the three
 * forms the rule files use most (".*", ".+", a plain word) are recognised
 * so the hot path compares strings instead of running a regex.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "harmonize/rules.h"

#define RULES_URN_PREFIX "urn:ngsi-ld:"

typedef struct loader {
    ndt_yaml *y;
    hdl_rules *r;
    char *err;
    size_t errlen;
} loader;

static int fail(loader *l, yaml_node_t *node, const char *key, const char *fmt, const char *arg)
{
    ndt_yaml_error(l->y, node, key, l->err, l->errlen, fmt, arg ? arg : "");
    return NDT_EBADCONF;
}

static size_t seq_len(yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static yaml_node_t *seq_item(loader *l, yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(&l->y->doc, seq->data.sequence.items.start[i]);
}

/* Rejects keys outside known, with a "did you mean". */
static int check_keys(loader *l, yaml_node_t *map, const char *const *known, size_t n,
                      const char *what)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return fail(l, map, what, "expected a mapping%s", NULL);
    if (ndt_yaml_check_unique_keys(l->y, map, l->err, l->errlen) != NDT_OK)
        return NDT_EBADCONF;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&l->y->doc, p->key);
        const char *key = ndt_yaml_scalar(k);
        size_t i;
        for (i = 0; i < n && (!key || strcmp(key, known[i]) != 0); i++)
            ;
        if (i < n)
            continue;
        const char *hint = key ? ndt_config_closest(key, known, n) : NULL;
        char msg[256];
        snprintf(msg, sizeof(msg), "unknown key '%s'%s%s%s", key ? key : "?",
                 hint ? ", did you mean " : "", hint ? hint : "", hint ? "?" : "");
        return fail(l, k, what, "%s", msg);
    }
    return NDT_OK;
}

static int scalar(loader *l, yaml_node_t *map, const char *key, int required, char **out)
{
    yaml_node_t *v = ndt_yaml_map_get(l->y, map, key);
    *out = NULL;
    if (!v) {
        if (required)
            return fail(l, map, key, "missing (required)%s", NULL);
        return NDT_OK;
    }
    const char *s = ndt_yaml_scalar(v);
    if (!s)
        return fail(l, v, key, "expected a string%s", NULL);
    if (!(*out = strdup(s)))
        return fail(l, v, key, "out of memory%s", NULL);
    return NDT_OK;
}

static int number(loader *l, yaml_node_t *map, const char *key, double def, double *out)
{
    yaml_node_t *v = ndt_yaml_map_get(l->y, map, key);
    *out = def;
    if (!v)
        return NDT_OK;
    const char *s = ndt_yaml_scalar(v);
    char *end = NULL;
    double d = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || !isfinite(d))
        return fail(l, v, key, "expected a finite number, got '%s'", s ? s : "?");
    *out = d;
    return NDT_OK;
}

static int label_name_valid(const char *s, size_t n)
{
    if (!n || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

static void *compile_anchored(loader *l, yaml_node_t *node, const char *key, const char *re)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                  PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &code, &off,
                                  NULL);
    if (!c) {
        PCRE2_UCHAR why[128];
        pcre2_get_error_message(code, why, sizeof(why));
        char msg[300];
        snprintf(msg, sizeof(msg), "invalid regex '%s': %s at offset %zu", re, (char *)why,
                 (size_t)off);
        fail(l, node, key, "%s", msg);
        return NULL;
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if it cannot */
    return c;
}

static int compile_matchers(loader *l, yaml_node_t *map, hdl_matcher **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!map || ndt_yaml_is_null(map))
        return NDT_OK;
    if (map->type != YAML_MAPPING_NODE)
        return fail(l, map, "match", "expected a mapping of label: regex%s", NULL);
    if (ndt_yaml_check_unique_keys(l->y, map, l->err, l->errlen) != NDT_OK)
        return NDT_EBADCONF;
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (n && !(*out = calloc(n, sizeof(**out))))
        return fail(l, map, "match", "out of memory%s", NULL);
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&l->y->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->y->doc, p->value);
        const char *name = ndt_yaml_scalar(k), *re = ndt_yaml_scalar(v);
        if (!name || !label_name_valid(name, strlen(name)))
            return fail(l, k, "match", "expected a label name, got '%s'", name);
        if (!re)
            return fail(l, v, name, "expected a regular expression%s", NULL);
        hdl_matcher *m = &(*out)[(*nout)++];
        m->label = strdup(name);
        m->text = strdup(re);
        if (!m->label || !m->text)
            return fail(l, v, name, "out of memory%s", NULL);
        if (strcmp(re, ".*") == 0)
            m->kind = HDL_MATCH_ANY;
        else if (strcmp(re, ".+") == 0)
            m->kind = HDL_MATCH_NONEMPTY;
        else if (strpbrk(re, ".^$*+?()[]{}|\\") == NULL)
            m->kind = HDL_MATCH_LITERAL;
        else {
            m->kind = HDL_MATCH_REGEX;
            if (!(m->re = compile_anchored(l, v, name, re)))
                return NDT_EBADCONF;
        }
    }
    return NDT_OK;
}

static int compile_derives(loader *l, yaml_node_t *map, hdl_rule *rule)
{
    static const char *const keys[] = { "from", "regex", "replacement" };
    if (!map || ndt_yaml_is_null(map))
        return NDT_OK;
    if (map->type != YAML_MAPPING_NODE)
        return fail(l, map, "derive", "expected a mapping of label: {from, regex, replacement}%s",
                    NULL);
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (n && !(rule->derive = calloc(n, sizeof(*rule->derive))))
        return fail(l, map, "derive", "out of memory%s", NULL);
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&l->y->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->y->doc, p->value);
        const char *name = ndt_yaml_scalar(k);
        if (!name || !label_name_valid(name, strlen(name)))
            return fail(l, k, "derive", "expected a label name, got '%s'", name);
        int rc = check_keys(l, v, keys, NDT_ARRAY_LEN(keys), name);
        if (rc != NDT_OK)
            return rc;
        hdl_derive *d = &rule->derive[rule->nderive++];
        char *re = NULL;
        if ((d->label = strdup(name)) == NULL)
            return fail(l, k, "derive", "out of memory%s", NULL);
        if ((rc = scalar(l, v, "from", 1, &d->from)) != NDT_OK ||
            (rc = scalar(l, v, "regex", 0, &re)) != NDT_OK ||
            (rc = scalar(l, v, "replacement", 0, &d->replacement)) != NDT_OK) {
            free(re);
            return rc;
        }
        if (!d->replacement && !(d->replacement = strdup("$1")))
            return fail(l, v, name, "out of memory%s", NULL);
        d->re = compile_anchored(l, ndt_yaml_map_get(l->y, v, "regex") ? ndt_yaml_map_get(l->y, v, "regex") : v,
                                 "regex", re ? re : "(.*)");
        free(re);
        if (!d->re)
            return NDT_EBADCONF;
    }
    return NDT_OK;
}

static int fixed_labels(loader *l, yaml_node_t *map, hdl_rule *rule)
{
    if (!map || ndt_yaml_is_null(map))
        return NDT_OK;
    if (map->type != YAML_MAPPING_NODE)
        return fail(l, map, "labels", "expected a mapping of label: value%s", NULL);
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (n && !(rule->labels = calloc(n, sizeof(*rule->labels))))
        return fail(l, map, "labels", "out of memory%s", NULL);
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&l->y->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->y->doc, p->value);
        const char *name = ndt_yaml_scalar(k), *value = ndt_yaml_scalar(v);
        if (!name || !label_name_valid(name, strlen(name)))
            return fail(l, k, "labels", "expected a label name, got '%s'", name);
        if (!value)
            return fail(l, v, name, "expected a string%s", NULL);
        hdl_fixed_label *f = &rule->labels[rule->nlabels++];
        if (!(f->name = strdup(name)) || !(f->value = strdup(value)))
            return fail(l, v, name, "out of memory%s", NULL);
    }
    return NDT_OK;
}

static size_t type_index(loader *l, const char *name, size_t len)
{
    for (size_t i = 0; i < l->r->ntypes; i++)
        if (strlen(l->r->types[i].name) == len && memcmp(l->r->types[i].name, name, len) == 0)
            return i;
    hdl_type *t = realloc(l->r->types, (l->r->ntypes + 1) * sizeof(*t));
    if (!t)
        return SIZE_MAX;
    l->r->types = t;
    t[l->r->ntypes].name = strndup(name, len);
    t[l->r->ntypes].nslots = 0;
    if (!t[l->r->ntypes].name)
        return SIZE_MAX;
    return l->r->ntypes++;
}

/* Splits "urn:ngsi-ld:T:{a}.{b}" and checks it names an entity of the
 * type given (or, with *type == SIZE_MAX, learns the type from it). */
static int compile_template(loader *l, yaml_node_t *node, const char *key, const char *text,
                            hdl_template *t, size_t *type)
{
    size_t plen = strlen(RULES_URN_PREFIX);
    const char *colon = strncmp(text, RULES_URN_PREFIX, plen) == 0 ? strchr(text + plen, ':') : NULL;
    if (!colon || colon == text + plen || memchr(text + plen, '{', (size_t)(colon - text - plen)))
        return fail(l, node, key, "expected an id like urn:ngsi-ld:<Type>:<local-id>, got '%s'",
                    text);
    size_t tlen = (size_t)(colon - text - plen);
    if (!label_name_valid(text + plen, tlen))
        return fail(l, node, key, "the entity type in '%s' must be an identifier", text);
    if (*type == SIZE_MAX) {
        if ((*type = type_index(l, text + plen, tlen)) == SIZE_MAX)
            return fail(l, node, key, "out of memory%s", NULL);
    } else {
        const char *want = l->r->types[*type].name;
        if (strlen(want) != tlen || memcmp(want, text + plen, tlen) != 0)
            return fail(l, node, key, "the id must start with urn:ngsi-ld:%s:", want);
    }
    const char *p = text;
    while (*p) {
        hdl_segment seg = { 0 };
        size_t n;
        if (*p == '{') {
            const char *end = strchr(p, '}');
            if (!end || !label_name_valid(p + 1, (size_t)(end - p - 1)))
                return fail(l, node, key, "expected {label} in the template '%s'", text);
            seg.is_label = 1;
            seg.text = strndup(p + 1, (size_t)(end - p - 1));
            p = end + 1;
        } else {
            n = strcspn(p, "{}");
            if (p[n] == '}')
                return fail(l, node, key, "unbalanced '}' in the template '%s'", text);
            seg.text = strndup(p, n);
            p += n;
        }
        hdl_segment *segs = realloc(t->segs, (t->nsegs + 1) * sizeof(*segs));
        if (!seg.text || !segs) {
            free(seg.text);
            return fail(l, node, key, "out of memory%s", NULL);
        }
        t->segs = segs;
        t->segs[t->nsegs++] = seg;
    }
    return NDT_OK;
}

static hdl_rule *new_rule(loader *l)
{
    hdl_rule *rules = realloc(l->r->rules, (l->r->nrules + 1) * sizeof(*rules));
    if (!rules)
        return NULL;
    l->r->rules = rules;
    hdl_rule *rule = &rules[l->r->nrules++];
    memset(rule, 0, sizeof(*rule));
    rule->divisor = -1;
    rule->scale = 1;
    rule->type = SIZE_MAX;
    rule->subject_type = SIZE_MAX;
    return rule;
}

static int common_selectors(loader *l, yaml_node_t *node, hdl_rule *rule)
{
    int rc;
    rule->line = (int)node->start_mark.line + 1;
    if ((rc = scalar(l, node, "metric", 1, &rule->metric)) != NDT_OK)
        return rc;
    if ((rc = compile_matchers(l, ndt_yaml_map_get(l->y, node, "match"), &rule->match,
                               &rule->nmatch)) != NDT_OK)
        return rc;
    if ((rc = compile_derives(l, ndt_yaml_map_get(l->y, node, "derive"), rule)) != NDT_OK)
        return rc;
    return fixed_labels(l, ndt_yaml_map_get(l->y, node, "labels"), rule);
}

static int value_map(loader *l, yaml_node_t *node, hdl_rule *rule)
{
    static const char *const keys[] = { "label", "values" };
    int rc = check_keys(l, node, keys, NDT_ARRAY_LEN(keys), "value_map");
    if (rc != NDT_OK)
        return rc;
    if ((rc = scalar(l, node, "label", 1, &rule->value_map.label)) != NDT_OK)
        return rc;
    yaml_node_t *values = ndt_yaml_map_get(l->y, node, "values");
    if (!values || values->type != YAML_MAPPING_NODE)
        return fail(l, values ? values : node, "values", "expected a mapping of label value: "
                    "attribute value%s", NULL);
    size_t n = (size_t)(values->data.mapping.pairs.top - values->data.mapping.pairs.start);
    hdl_value_map *vm = &rule->value_map;
    if (!n)
        return fail(l, values, "values", "expected at least one entry%s", NULL);
    vm->from = calloc(n, sizeof(char *));
    vm->to = calloc(n, sizeof(char *));
    if (!vm->from || !vm->to)
        return fail(l, values, "values", "out of memory%s", NULL);
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &values->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&l->y->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->y->doc, p->value);
        const char *from = ndt_yaml_scalar(k), *to = ndt_yaml_scalar(v);
        if (!from || !to)
            return fail(l, from ? v : k, "values", "expected strings%s", NULL);
        vm->from[vm->n] = strdup(from);
        vm->to[vm->n++] = strdup(to);
        if (!vm->from[vm->n - 1] || !vm->to[vm->n - 1])
            return fail(l, v, "values", "out of memory%s", NULL);
    }
    return NDT_OK;
}

/* divide_by {metric, match}: a hidden rule storing the divisor in a slot of
 * the same entity (same type, same id template). */
static int divisor_rule(loader *l, yaml_node_t *node, size_t parent)
{
    static const char *const keys[] = { "metric", "match" };
    int rc = check_keys(l, node, keys, NDT_ARRAY_LEN(keys), "divide_by");
    if (rc != NDT_OK)
        return rc;
    hdl_rule *d = new_rule(l);
    if (!d)
        return fail(l, node, "divide_by", "out of memory%s", NULL);
    size_t di = l->r->nrules - 1;
    hdl_rule *p = &l->r->rules[parent];
    d->kind = HDL_RULE_DIVISOR;
    d->line = (int)node->start_mark.line + 1;
    d->type = p->type;
    d->aggregate_sum = 1; /* several series of one entity at one instant add up */
    if ((rc = scalar(l, node, "metric", 1, &d->metric)) != NDT_OK)
        return rc;
    if ((rc = compile_matchers(l, ndt_yaml_map_get(l->y, node, "match"), &d->match,
                               &d->nmatch)) != NDT_OK)
        return rc;
    if (!(d->attribute = strdup("__divisor")))
        return fail(l, node, "divide_by", "out of memory%s", NULL);
    /* Same template as the parent: copy its segments. */
    d->id.segs = calloc(p->id.nsegs, sizeof(hdl_segment));
    if (!d->id.segs)
        return fail(l, node, "divide_by", "out of memory%s", NULL);
    for (size_t i = 0; i < p->id.nsegs; i++) {
        d->id.segs[i].is_label = p->id.segs[i].is_label;
        if (!(d->id.segs[i].text = strdup(p->id.segs[i].text)))
            return fail(l, node, "divide_by", "out of memory%s", NULL);
        d->id.nsegs++;
    }
    /* The parent's derived and fixed labels build the same id. */
    d->derive = NULL;
    l->r->rules[parent].divisor = (long)di;
    return NDT_OK;
}

/* The quantiles of a native_histogram rule: [0.5, 0.95, 0.99] unless
 * given, each in [0, 1], no repeats. */
static int quantile_list(loader *l, yaml_node_t *node, double *q, size_t *n)
{
    yaml_node_t *seq = ndt_yaml_map_get(l->y, node, "quantiles");
    static const double defaults[] = { 0.5, 0.95, 0.99 };
    *n = 0;
    if (!seq) {
        for (; *n < NDT_ARRAY_LEN(defaults); (*n)++)
            q[*n] = defaults[*n];
        return NDT_OK;
    }
    if (seq->type != YAML_SEQUENCE_NODE)
        return fail(l, seq, "quantiles", "expected a list of numbers in [0, 1]%s", NULL);
    if (seq_len(seq) > HDL_RULES_MAX_QUANTILES)
        return fail(l, seq, "quantiles", "at most 16 quantiles%s", NULL);
    for (size_t i = 0; i < seq_len(seq); i++) {
        yaml_node_t *item = seq_item(l, seq, i);
        const char *s = ndt_yaml_scalar(item);
        char *end = NULL;
        double d = s ? strtod(s, &end) : NAN;
        if (!s || end == s || *end || !(d >= 0 && d <= 1))
            return fail(l, item, "quantiles", "expected a number in [0, 1], got '%s'", s ? s : "?");
        for (size_t j = 0; j < *n; j++)
            if (q[j] == d)
                return fail(l, item, "quantiles", "'%s' is listed twice", s);
        q[(*n)++] = d;
    }
    return NDT_OK;
}

/* "latency" and 0.999 -> "latency_p99_9". */
static char *quantile_attribute(const char *base, double q)
{
    char pct[32], *name;
    snprintf(pct, sizeof(pct), "%g", q * 100);
    for (char *c = pct; *c; c++)
        if (*c == '.')
            *c = '_';
    return asprintf(&name, "%s_p%s", base, pct) < 0 ? NULL : name;
}

/* transform: native_histogram.  The rule matches the histogram's _count
 * sample (the one carrying the native histogram) and becomes the _sum
 * output; borrowed copies output _count, _mean and the quantiles.  The
 * count is a number of observations: scale, offset, min and max (a unit
 * conversion of the observed values) do not apply to it. */
static int native_histogram_rule(loader *l, yaml_node_t *node, size_t ri)
{
    static const char *const refused[] = { "divide_by", "aggregate", "value_map",
                                           "value_from_label" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(refused); i++)
        if (ndt_yaml_map_get(l->y, node, refused[i]))
            return fail(l, ndt_yaml_map_get(l->y, node, refused[i]), refused[i],
                        "does not apply to transform: native_histogram%s", NULL);
    double q[HDL_RULES_MAX_QUANTILES];
    size_t nq;
    int rc = quantile_list(l, node, q, &nq);
    if (rc != NDT_OK)
        return rc;
    char *window = NULL;
    if ((rc = scalar(l, node, "window", 0, &window)) != NDT_OK)
        return rc;
    int interval = window && strcmp(window, "interval") == 0;
    if (window && !interval && strcmp(window, "cumulative") != 0) {
        rc = fail(l, ndt_yaml_map_get(l->y, node, "window"), "window",
                  "expected cumulative or interval, got '%s'", window);
        free(window);
        return rc;
    }
    free(window);
    hdl_rule *rule = &l->r->rules[ri];
    rule->histogram_interval = interval;
    rule->histogram_parent = ri;
    char *base = rule->attribute, *metric = NULL;
    if (asprintf(&metric, "%s_count", rule->metric) < 0)
        return fail(l, node, "metric", "out of memory%s", NULL);
    free(rule->metric);
    rule->metric = metric;
    if (asprintf(&rule->attribute, "%s_sum", base) < 0) {
        rule->attribute = base;
        return fail(l, node, "attribute", "out of memory%s", NULL);
    }
    rule->histogram_output = HDL_HISTOGRAM_SUM;
    rule->slot = l->r->types[rule->type].nslots++;
    for (size_t k = 0; k < 2 + nq && rc == NDT_OK; k++) {
        hdl_rule *copy = new_rule(l);
        if (!copy) {
            rc = fail(l, node, "rules", "out of memory%s", NULL);
            break;
        }
        *copy = l->r->rules[ri];
        copy->borrowed = 1;
        if (k == 0) {
            copy->histogram_output = HDL_HISTOGRAM_COUNT;
            copy->unit_code = NULL;
            copy->scale = 1;
            copy->offset = 0;
            copy->min = -INFINITY;
            copy->max = INFINITY;
            if (asprintf(&copy->attribute, "%s_count", base) < 0)
                copy->attribute = NULL;
        } else if (k == 1) {
            copy->histogram_output = HDL_HISTOGRAM_MEAN;
            if (asprintf(&copy->attribute, "%s_mean", base) < 0)
                copy->attribute = NULL;
        } else {
            copy->histogram_output = HDL_HISTOGRAM_QUANTILE;
            copy->quantile = q[k - 2];
            copy->attribute = quantile_attribute(base, q[k - 2]);
        }
        if (!copy->attribute)
            rc = fail(l, node, "attribute", "out of memory%s", NULL);
        copy->slot = l->r->types[copy->type].nslots++;
    }
    free(base);
    return rc;
}

static int attribute_rule(loader *l, yaml_node_t *node)
{
    static const char *const keys[] = { "metric", "match", "derive", "labels", "entity",
                                        "attribute", "unitCode", "transform", "aggregate",
                                        "divide_by", "scale", "offset", "min", "max",
                                        "value_map", "value_from_label", "quantiles", "window" };
    static const char *const entity_keys[] = { "type", "id" };
    int rc = check_keys(l, node, keys, NDT_ARRAY_LEN(keys), "rules");
    if (rc != NDT_OK)
        return rc;
    hdl_rule *rule = new_rule(l);
    if (!rule)
        return fail(l, node, "rules", "out of memory%s", NULL);
    size_t ri = l->r->nrules - 1;
    rule->kind = HDL_RULE_ATTRIBUTE;
    if ((rc = common_selectors(l, node, rule)) != NDT_OK)
        return rc;
    yaml_node_t *entity = ndt_yaml_map_get(l->y, node, "entity");
    if (!entity)
        return fail(l, node, "entity", "missing (required)%s", NULL);
    if ((rc = check_keys(l, entity, entity_keys, NDT_ARRAY_LEN(entity_keys), "entity")) != NDT_OK)
        return rc;
    char *type = NULL, *id = NULL, *transform = NULL, *aggregate = NULL;
    if ((rc = scalar(l, entity, "type", 1, &type)) != NDT_OK ||
        (rc = scalar(l, entity, "id", 1, &id)) != NDT_OK)
        goto out;
    rule = &l->r->rules[ri];
    if ((rule->type = type_index(l, type, strlen(type))) == SIZE_MAX) {
        rc = fail(l, entity, "type", "out of memory%s", NULL);
        goto out;
    }
    if ((rc = compile_template(l, ndt_yaml_map_get(l->y, entity, "id"), "id", id, &rule->id,
                               &rule->type)) != NDT_OK)
        goto out;
    if ((rc = scalar(l, node, "attribute", 1, &rule->attribute)) != NDT_OK ||
        (rc = scalar(l, node, "unitCode", 0, &rule->unit_code)) != NDT_OK ||
        (rc = scalar(l, node, "transform", 0, &transform)) != NDT_OK ||
        (rc = scalar(l, node, "aggregate", 0, &aggregate)) != NDT_OK ||
        (rc = scalar(l, node, "value_from_label", 0, &rule->value_from_label)) != NDT_OK ||
        (rc = number(l, node, "scale", 1, &rule->scale)) != NDT_OK ||
        (rc = number(l, node, "offset", 0, &rule->offset)) != NDT_OK ||
        (rc = number(l, node, "min", -INFINITY, &rule->min)) != NDT_OK ||
        (rc = number(l, node, "max", INFINITY, &rule->max)) != NDT_OK)
        goto out;
    if (rule->min > rule->max) {
        rc = fail(l, ndt_yaml_map_get(l->y, node, "max"), "max", "is below min%s", NULL);
        goto out;
    }
    /* id and type are the entity's own members, time is InfluxDB's, and
     * twinState is the engine's. */
    static const char *const reserved[] = { "id", "type", "time", "twinState" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(reserved); i++)
        if (strcmp(rule->attribute, reserved[i]) == 0) {
            rc = fail(l, ndt_yaml_map_get(l->y, node, "attribute"), "attribute",
                      "'%s' is reserved", rule->attribute);
            goto out;
        }
    if (!label_name_valid(rule->attribute, strlen(rule->attribute)) || rule->attribute[0] == '_') {
        rc = fail(l, ndt_yaml_map_get(l->y, node, "attribute"), "attribute",
                  "expected an attribute name, got '%s'", rule->attribute);
        goto out;
    }
    if (!transform || strcmp(transform, "identity") == 0)
        rule->transform = HDL_TRANSFORM_IDENTITY;
    else if (strcmp(transform, "rate") == 0)
        rule->transform = HDL_TRANSFORM_RATE;
    else if (strcmp(transform, "info") == 0)
        rule->transform = HDL_TRANSFORM_INFO;
    else if (strcmp(transform, "native_histogram") == 0)
        rule->transform = HDL_TRANSFORM_NATIVE_HISTOGRAM;
    else {
        rc = fail(l, ndt_yaml_map_get(l->y, node, "transform"), "transform",
                  "expected identity, rate, info or native_histogram, got '%s'", transform);
        goto out;
    }
    if (rule->transform == HDL_TRANSFORM_NATIVE_HISTOGRAM) {
        rc = native_histogram_rule(l, node, ri);
        goto out;
    }
    static const char *const histogram_only[] = { "quantiles", "window" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(histogram_only); i++)
        if (ndt_yaml_map_get(l->y, node, histogram_only[i])) {
            rc = fail(l, ndt_yaml_map_get(l->y, node, histogram_only[i]), histogram_only[i],
                      "needs transform: native_histogram%s", NULL);
            goto out;
        }
    if (aggregate && strcmp(aggregate, "sum") != 0) {
        rc = fail(l, ndt_yaml_map_get(l->y, node, "aggregate"), "aggregate",
                  "expected sum, got '%s'", aggregate);
        goto out;
    }
    rule->aggregate_sum = aggregate != NULL;
    if (rule->value_from_label && rule->transform != HDL_TRANSFORM_INFO) {
        rc = fail(l, ndt_yaml_map_get(l->y, node, "value_from_label"), "value_from_label",
                  "needs transform: info%s", NULL);
        goto out;
    }
    yaml_node_t *vm = ndt_yaml_map_get(l->y, node, "value_map");
    if (vm && (rc = value_map(l, vm, rule)) != NDT_OK)
        goto out;
    rule->slot = l->r->types[rule->type].nslots++;
    yaml_node_t *div = ndt_yaml_map_get(l->y, node, "divide_by");
    if (div) {
        if ((rc = divisor_rule(l, div, ri)) != NDT_OK)
            goto out;
        hdl_rule *d = &l->r->rules[l->r->rules[ri].divisor];
        d->slot = l->r->types[d->type].nslots++;
    }
    rc = NDT_OK;
out:
    free(type);
    free(id);
    free(transform);
    free(aggregate);
    return rc;
}

static int relationship_rule(loader *l, yaml_node_t *node)
{
    static const char *const keys[] = { "metric", "match", "derive", "labels",
                                        "subject", "predicate", "object" };
    int rc = check_keys(l, node, keys, NDT_ARRAY_LEN(keys), "relationships");
    if (rc != NDT_OK)
        return rc;
    hdl_rule *rule = new_rule(l);
    if (!rule)
        return fail(l, node, "relationships", "out of memory%s", NULL);
    rule->kind = HDL_RULE_RELATIONSHIP;
    if ((rc = common_selectors(l, node, rule)) != NDT_OK)
        return rc;
    char *subject = NULL, *object = NULL;
    size_t object_type = SIZE_MAX;
    if ((rc = scalar(l, node, "subject", 1, &subject)) != NDT_OK ||
        (rc = scalar(l, node, "predicate", 1, &rule->predicate)) != NDT_OK ||
        (rc = scalar(l, node, "object", 1, &object)) != NDT_OK)
        goto out;
    if ((rc = compile_template(l, ndt_yaml_map_get(l->y, node, "subject"), "subject", subject,
                               &rule->subject, &rule->subject_type)) != NDT_OK ||
        (rc = compile_template(l, ndt_yaml_map_get(l->y, node, "object"), "object", object,
                               &rule->object, &object_type)) != NDT_OK)
        goto out;
    if (!label_name_valid(rule->predicate, strlen(rule->predicate)))
        rc = fail(l, ndt_yaml_map_get(l->y, node, "predicate"), "predicate",
                  "expected an attribute name, got '%s'", rule->predicate);
out:
    free(subject);
    free(object);
    return rc;
}

static int static_entity(loader *l, yaml_node_t *node, hdl_static_entity *e)
{
    static const char *const keys[] = { "id", "type", "attributes", "relationships" };
    int rc = check_keys(l, node, keys, NDT_ARRAY_LEN(keys), "static_entities");
    char *type = NULL;
    if (rc != NDT_OK)
        return rc;
    if ((rc = scalar(l, node, "id", 1, &e->id)) != NDT_OK ||
        (rc = scalar(l, node, "type", 1, &type)) != NDT_OK)
        return rc;
    e->type = type_index(l, type, strlen(type));
    hdl_template t = { 0 };
    if (e->type == SIZE_MAX)
        rc = fail(l, node, "type", "out of memory%s", NULL);
    else
        rc = compile_template(l, ndt_yaml_map_get(l->y, node, "id"), "id", e->id, &t, &e->type);
    for (size_t i = 0; i < t.nsegs; i++) {
        if (t.segs[i].is_label && rc == NDT_OK)
            rc = fail(l, ndt_yaml_map_get(l->y, node, "id"), "id",
                      "a static entity's id cannot hold a {label}%s", NULL);
        free(t.segs[i].text);
    }
    free(t.segs);
    free(type);
    if (rc != NDT_OK)
        return rc;
    yaml_node_t *attrs = ndt_yaml_map_get(l->y, node, "attributes");
    if (attrs && attrs->type == YAML_MAPPING_NODE) {
        size_t n = (size_t)(attrs->data.mapping.pairs.top - attrs->data.mapping.pairs.start);
        if (n && !(e->attrs = calloc(n, sizeof(*e->attrs))))
            return fail(l, attrs, "attributes", "out of memory%s", NULL);
        for (size_t i = 0; i < n; i++) {
            yaml_node_pair_t *p = &attrs->data.mapping.pairs.start[i];
            yaml_node_t *k = yaml_document_get_node(&l->y->doc, p->key);
            yaml_node_t *v = yaml_document_get_node(&l->y->doc, p->value);
            const char *name = ndt_yaml_scalar(k), *value = ndt_yaml_scalar(v);
            if (!name || !value)
                return fail(l, name ? v : k, "attributes", "expected name: string value%s", NULL);
            if (!label_name_valid(name, strlen(name)) || strcmp(name, "id") == 0 ||
                strcmp(name, "type") == 0 || strcmp(name, "time") == 0 ||
                strcmp(name, "twinState") == 0)
                return fail(l, k, "attributes", "'%s' is not an attribute name (or is reserved)",
                            name);
            hdl_static_attr *a = &e->attrs[e->nattrs++];
            if (!(a->name = strdup(name)) || !(a->value = strdup(value)))
                return fail(l, v, name, "out of memory%s", NULL);
        }
    } else if (attrs && !ndt_yaml_is_null(attrs)) {
        return fail(l, attrs, "attributes", "expected a mapping%s", NULL);
    }
    yaml_node_t *rels = ndt_yaml_map_get(l->y, node, "relationships");
    if (rels && rels->type == YAML_MAPPING_NODE) {
        size_t n = (size_t)(rels->data.mapping.pairs.top - rels->data.mapping.pairs.start);
        if (n && !(e->rels = calloc(n, sizeof(*e->rels))))
            return fail(l, rels, "relationships", "out of memory%s", NULL);
        for (size_t i = 0; i < n; i++) {
            yaml_node_pair_t *p = &rels->data.mapping.pairs.start[i];
            yaml_node_t *k = yaml_document_get_node(&l->y->doc, p->key);
            yaml_node_t *v = yaml_document_get_node(&l->y->doc, p->value);
            const char *name = ndt_yaml_scalar(k);
            if (!name || !label_name_valid(name, strlen(name)))
                return fail(l, k, "relationships", "expected a relationship name, got '%s'", name);
            hdl_static_rel *r = &e->rels[e->nrels++];
            if (!(r->predicate = strdup(name)))
                return fail(l, k, name, "out of memory%s", NULL);
            size_t nobj = v->type == YAML_SEQUENCE_NODE ? seq_len(v) : 1;
            r->is_list = v->type == YAML_SEQUENCE_NODE;
            if (!nobj || !(r->objects = calloc(nobj, sizeof(char *))))
                return fail(l, v, name, "expected one or more entity ids%s", NULL);
            for (size_t j = 0; j < nobj; j++) {
                yaml_node_t *o = r->is_list ? seq_item(l, v, j) : v;
                const char *s = ndt_yaml_scalar(o);
                if (!s || strncmp(s, RULES_URN_PREFIX, strlen(RULES_URN_PREFIX)) != 0)
                    return fail(l, o, name, "expected an entity id urn:ngsi-ld:..., got '%s'", s);
                if (!(r->objects[r->nobjects++] = strdup(s)))
                    return fail(l, o, name, "out of memory%s", NULL);
            }
        }
    } else if (rels && !ndt_yaml_is_null(rels)) {
        return fail(l, rels, "relationships", "expected a mapping%s", NULL);
    }
    return NDT_OK;
}

static int load(loader *l)
{
    static const char *const keys[] = { "version", "derive", "rules", "relationships",
                                        "static_entities" };
    yaml_node_t *root = ndt_yaml_root(l->y);
    int rc;
    if (!root)
        return fail(l, NULL, NULL, "empty rule file%s", NULL);
    if ((rc = check_keys(l, root, keys, NDT_ARRAY_LEN(keys), NULL)) != NDT_OK)
        return rc;
    yaml_node_t *version = ndt_yaml_map_get(l->y, root, "version");
    const char *v = version ? ndt_yaml_scalar(version) : NULL;
    if (!v || strcmp(v, "1") != 0)
        return fail(l, version ? version : root, "version", "expected 1, got '%s'", v ? v : "");
    const char *sections[] = { "rules", "relationships", "static_entities" };
    for (size_t s = 0; s < NDT_ARRAY_LEN(sections); s++) {
        yaml_node_t *seq = ndt_yaml_map_get(l->y, root, sections[s]);
        if (!seq || ndt_yaml_is_null(seq))
            continue;
        if (seq->type != YAML_SEQUENCE_NODE)
            return fail(l, seq, sections[s], "expected a list%s", NULL);
        size_t n = seq_len(seq);
        if (s == 2 && n && !(l->r->statics = calloc(n, sizeof(*l->r->statics))))
            return fail(l, seq, sections[s], "out of memory%s", NULL);
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *item = seq_item(l, seq, i);
            if (s == 0)
                rc = attribute_rule(l, item);
            else if (s == 1)
                rc = relationship_rule(l, item);
            else
                rc = static_entity(l, item, &l->r->statics[l->r->nstatics++]);
            if (rc != NDT_OK)
                return rc;
        }
    }
    return NDT_OK;
}

static int load_yaml(hdl_rules *out, ndt_yaml *y, char *err, size_t errlen)
{
    loader l = { y, out, err, errlen };
    int rc = load(&l);
    if (rc != NDT_OK)
        hdl_rules_free(out);
    return rc == NDT_OK ? NDT_OK : NDT_EBADCONF;
}

int hdl_rules_load_file(hdl_rules *out, const char *path, char *err, size_t errlen)
{
    ndt_yaml y;
    memset(out, 0, sizeof(*out));
    memset(&y, 0, sizeof(y));
    if (ndt_yaml_load_file(&y, path, err, errlen) != NDT_OK)
        return NDT_EBADCONF;
    int rc = load_yaml(out, &y, err, errlen);
    if (rc == NDT_OK && !(out->path = strdup(path)))
        rc = NDT_ERROR;
    ndt_yaml_free(&y);
    return rc;
}

int hdl_rules_load_string(hdl_rules *out, const char *name, const char *text, size_t len,
                          char *err, size_t errlen)
{
    ndt_yaml y;
    memset(out, 0, sizeof(*out));
    memset(&y, 0, sizeof(y));
    if (ndt_yaml_load_string(&y, name, text, len, err, errlen) != NDT_OK)
        return NDT_EBADCONF;
    int rc = load_yaml(out, &y, err, errlen);
    if (rc == NDT_OK && !(out->path = strdup(name)))
        rc = NDT_ERROR;
    ndt_yaml_free(&y);
    return rc;
}

static void template_free(hdl_template *t)
{
    for (size_t i = 0; i < t->nsegs; i++)
        free(t->segs[i].text);
    free(t->segs);
}

void hdl_rules_free(hdl_rules *r)
{
    for (size_t i = 0; i < r->nrules; i++) {
        hdl_rule *rule = &r->rules[i];
        free(rule->attribute);
        if (rule->borrowed)
            continue; /* the rest belongs to the rule it copies */
        free(rule->metric);
        for (size_t j = 0; j < rule->nmatch; j++) {
            free(rule->match[j].label);
            free(rule->match[j].text);
            pcre2_code_free(rule->match[j].re);
        }
        free(rule->match);
        for (size_t j = 0; j < rule->nderive; j++) {
            free(rule->derive[j].label);
            free(rule->derive[j].from);
            free(rule->derive[j].replacement);
            pcre2_code_free(rule->derive[j].re);
        }
        free(rule->derive);
        for (size_t j = 0; j < rule->nlabels; j++) {
            free(rule->labels[j].name);
            free(rule->labels[j].value);
        }
        free(rule->labels);
        template_free(&rule->id);
        template_free(&rule->subject);
        template_free(&rule->object);
        free(rule->unit_code);
        for (size_t j = 0; j < rule->value_map.n; j++) {
            free(rule->value_map.from[j]);
            free(rule->value_map.to[j]);
        }
        free(rule->value_map.from);
        free(rule->value_map.to);
        free(rule->value_map.label);
        free(rule->value_from_label);
        free(rule->predicate);
    }
    free(r->rules);
    for (size_t i = 0; i < r->ntypes; i++)
        free(r->types[i].name);
    free(r->types);
    for (size_t i = 0; i < r->nstatics; i++) {
        hdl_static_entity *e = &r->statics[i];
        free(e->id);
        for (size_t j = 0; j < e->nattrs; j++) {
            free(e->attrs[j].name);
            free(e->attrs[j].value);
        }
        free(e->attrs);
        for (size_t j = 0; j < e->nrels; j++) {
            for (size_t k = 0; k < e->rels[j].nobjects; k++)
                free(e->rels[j].objects[k]);
            free(e->rels[j].objects);
            free(e->rels[j].predicate);
        }
        free(e->rels);
    }
    free(r->statics);
    free(r->path);
    memset(r, 0, sizeof(*r));
}

int hdl_matcher_match(const hdl_matcher *m, ndt_str value, void *match_data)
{
    switch (m->kind) {
    case HDL_MATCH_ANY: return 1;
    case HDL_MATCH_NONEMPTY: return value.len > 0;
    case HDL_MATCH_LITERAL: return ndt_str_eq_cstr(value, m->text);
    case HDL_MATCH_REGEX:
        return pcre2_match(m->re, (PCRE2_SPTR)(value.ptr ? value.ptr : ""), value.len, 0, 0,
                           match_data, NULL) >= 0;
    }
    return 0;
}
