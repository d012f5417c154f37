/*
 * config.c: YAML with positions, Prometheus durations and sizes, and the
 * declarative option maps (see config.h for the why).
 *
 * The YAML side loads a whole document with libyaml's document API, so
 * every node keeps its start mark and errors can point at the exact line
 * and column of the offending key or value.  Configuration files are
 * small (kilobytes), so holding the whole tree is cheap, and the tree is
 * freed as soon as the caller has copied what it needs.
 *
 * Durations and sizes are parsed exactly as Prometheus parses them
 * (prometheus/common model.ParseDuration, alecthomas/units
 * ParseBase2Bytes) because the same file must mean the same thing to both
 * programs.  The one deliberate extension is sub-millisecond duration
 * units (us, µs, ns), documented in docs/CONFIGURATION.md.
 *
 * Nothing here is thread-safe on a shared object; configuration is
 * loaded once, before the threads that use it start.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ndt.h"

#define NDT_YAML_MAX_BYTES (16 << 20)

/* ------------------------------------------------------------------ */
/* YAML documents                                                      */
/* ------------------------------------------------------------------ */

static int yaml_parse_error(const yaml_parser_t *parser, const char *name, char *err, size_t errlen)
{
    const char *problem = parser->problem ? parser->problem : "malformed YAML";
    if (parser->context) {
        snprintf(err, errlen, "%s:%zu:%zu: invalid YAML: %s (%s at line %zu)", name,
                 parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem,
                 parser->context, parser->context_mark.line + 1);
    } else {
        snprintf(err, errlen, "%s:%zu:%zu: invalid YAML: %s", name,
                 parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem);
    }
    return NDT_ERROR;
}

/* YAML merge keys ("<<: *defaults"), which Prometheus's YAML library
 * honours and prometheus.yml files use to share job settings.  libyaml's
 * document API leaves "<<" as an ordinary key, so it is resolved here,
 * once, after loading: the merged mapping's keys are appended unless the
 * mapping already has them (explicit keys win, and in a list of merged
 * mappings the earlier one wins). */
static int yaml_is_merge_key(yaml_node_t *k)
{
    return k && k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           strcmp((const char *)k->data.scalar.value, "<<") == 0;
}

static int yaml_merge_from(ndt_yaml *y, int map_id, yaml_node_t *src, char *err, size_t errlen)
{
    if (!src || src->type != YAML_MAPPING_NODE)
        return ndt_yaml_error(y, src, "<<", err, errlen,
                              "a merge key needs a mapping or a list of mappings");
    yaml_node_t *map = yaml_document_get_node(&y->doc, map_id);
    size_t n = (size_t)(src->data.mapping.pairs.top - src->data.mapping.pairs.start);
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t pair = src->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&y->doc, pair.key);
        const char *key = ndt_yaml_scalar(k);
        if (key && !yaml_is_merge_key(k) && ndt_yaml_map_get(y, map, key))
            continue;
        if (!yaml_document_append_mapping_pair(&y->doc, map_id, pair.key, pair.value))
            return ndt_yaml_error(y, src, "<<", err, errlen, "out of memory");
        map = yaml_document_get_node(&y->doc, map_id);
    }
    return NDT_OK;
}

/* Removes the first "<<" pair of the mapping and merges its value;
 * *found says whether there was one. */
static int yaml_merge_one(ndt_yaml *y, int map_id, int *found, char *err, size_t errlen)
{
    yaml_node_t *map = yaml_document_get_node(&y->doc, map_id);
    yaml_node_pair_t *start = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
    *found = 0;
    for (yaml_node_pair_t *p = start; p < top; p++) {
        if (!yaml_is_merge_key(yaml_document_get_node(&y->doc, p->key)))
            continue;
        yaml_node_t *value = yaml_document_get_node(&y->doc, p->value);
        memmove(p, p + 1, (size_t)(top - p - 1) * sizeof(*p));
        map->data.mapping.pairs.top--;
        *found = 1;
        if (value && value->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = value->data.sequence.items.start;
                 it < value->data.sequence.items.top; it++)
                if (yaml_merge_from(y, map_id, yaml_document_get_node(&y->doc, *it), err,
                                    errlen) != NDT_OK)
                    return NDT_ERROR;
            return NDT_OK;
        }
        return yaml_merge_from(y, map_id, value, err, errlen);
    }
    return NDT_OK;
}

static int yaml_resolve_merges(ndt_yaml *y, char *err, size_t errlen)
{
    int nodes = (int)(y->doc.nodes.top - y->doc.nodes.start);
    /* A merged mapping may carry its own "<<": a few passes settle chains
     * of defaults; a cycle (impossible with anchors) cannot loop forever. */
    for (int pass = 0; pass < 16; pass++) {
        int changed = 0;
        for (int id = 1; id <= nodes; id++) {
            yaml_node_t *node = yaml_document_get_node(&y->doc, id);
            int found = 1, rounds = 0;
            while (node->type == YAML_MAPPING_NODE && found && rounds++ < 64) {
                if (yaml_merge_one(y, id, &found, err, errlen) != NDT_OK)
                    return NDT_ERROR;
                changed |= found;
            }
        }
        if (!changed)
            return NDT_OK;
    }
    return ndt_yaml_error(y, NULL, "<<", err, errlen, "merge keys nested too deeply");
}

/* Loads the first document of the parser's input into y. */
static int yaml_load(ndt_yaml *y, const char *name, yaml_parser_t *parser, char *err,
                     size_t errlen)
{
    memset(y, 0, sizeof(*y));
    y->path = strdup(name ? name : "<config>");
    if (!y->path) {
        snprintf(err, errlen, "%s: out of memory", name ? name : "<config>");
        return NDT_ERROR;
    }
    if (!yaml_parser_load(parser, &y->doc)) {
        yaml_parse_error(parser, y->path, err, errlen);
        free(y->path);
        y->path = NULL;
        return NDT_ERROR;
    }
    y->loaded = 1;
    if (yaml_resolve_merges(y, err, errlen) != NDT_OK) {
        ndt_yaml_free(y);
        return NDT_ERROR;
    }
    return NDT_OK;
}

int ndt_yaml_load_file(ndt_yaml *y, const char *path, char *err, size_t errlen)
{
    yaml_parser_t parser;
    int rc = NDT_ERROR;
    FILE *f = fopen(path, "rb");

    memset(y, 0, sizeof(*y)); /* safe to ndt_yaml_free whatever happens */
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NDT_ERROR;
    }
    /* The whole tree is held in memory: refuse what no config needs. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > NDT_YAML_MAX_BYTES) {
        snprintf(err, errlen, "%s: larger than %d MiB, not a configuration file", path,
                 NDT_YAML_MAX_BYTES >> 20);
        goto out_close;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: cannot initialise the YAML parser", path);
        goto out_close;
    }
    yaml_parser_set_input_file(&parser, f);
    rc = yaml_load(y, path, &parser, err, errlen);
    yaml_parser_delete(&parser);
out_close:
    fclose(f);
    return rc;
}

int ndt_yaml_load_string(ndt_yaml *y, const char *name, const char *text, size_t len,
                         char *err, size_t errlen)
{
    yaml_parser_t parser;
    memset(y, 0, sizeof(*y));
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: cannot initialise the YAML parser", name);
        return NDT_ERROR;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = yaml_load(y, name, &parser, err, errlen);
    yaml_parser_delete(&parser);
    return rc;
}

void ndt_yaml_free(ndt_yaml *y)
{
    if (y->loaded)
        yaml_document_delete(&y->doc);
    free(y->path);
    y->path = NULL;
    y->loaded = 0;
}

yaml_node_t *ndt_yaml_root(ndt_yaml *y)
{
    return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

yaml_node_t *ndt_yaml_map_get(ndt_yaml *y, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
        const char *ks = ndt_yaml_scalar(k);
        if (ks && strcmp(ks, key) == 0)
            return yaml_document_get_node(&y->doc, p->value);
    }
    return NULL;
}

const char *ndt_yaml_scalar(yaml_node_t *node)
{
    if (!node || node->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)node->data.scalar.value;
}

int ndt_yaml_is_null(yaml_node_t *node)
{
    if (!node)
        return 1;
    if (node->type != YAML_SCALAR_NODE)
        return 0;
    if (node->tag && strcmp((const char *)node->tag, YAML_NULL_TAG) == 0)
        return 1;
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)node->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

int ndt_yaml_error(const ndt_yaml *y, const yaml_node_t *node, const char *key, char *err,
                   size_t errlen, const char *fmt, ...)
{
    char msg[NDT_ERRBUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    const char *path = y && y->path ? y->path : "<config>";
    char where[64] = "";
    if (node)
        snprintf(where, sizeof(where), ":%zu:%zu", node->start_mark.line + 1,
                 node->start_mark.column + 1);
    if (key)
        snprintf(err, errlen, "%s%s: %s: %s", path, where, key, msg);
    else
        snprintf(err, errlen, "%s%s: %s", path, where, msg);
    return NDT_ERROR;
}

int ndt_yaml_check_unique_keys(ndt_yaml *y, yaml_node_t *map, char *err, size_t errlen)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NDT_OK;
    yaml_node_pair_t *start = map->data.mapping.pairs.start;
    yaml_node_pair_t *top = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = start; p < top; p++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
        const char *ks = ndt_yaml_scalar(k);
        if (!ks)
            return ndt_yaml_error(y, k, NULL, err, errlen, "mapping keys must be strings");
        for (yaml_node_pair_t *q = start; q < p; q++) {
            const char *qs = ndt_yaml_scalar(yaml_document_get_node(&y->doc, q->key));
            if (qs && strcmp(qs, ks) == 0)
                return ndt_yaml_error(y, k, ks, err, errlen, "key already set in this mapping");
        }
    }
    return NDT_OK;
}

/* ------------------------------------------------------------------ */
/* "did you mean"                                                      */
/* ------------------------------------------------------------------ */

/* Optimal string alignment distance (Levenshtein plus transpositions),
 * bounded to short words: config keys are under 64 bytes. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXW = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAXW || lb >= MAXW)
        return SIZE_MAX;
    size_t d[MAXW][MAXW];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *ndt_config_closest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    size_t wl = strlen(word);
    /* A typo is a couple of keystrokes; beyond that a suggestion misleads. */
    size_t limit = wl < 6 ? 1 : wl < 12 ? 2 : 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best_d <= limit ? best : NULL;
}

/* ------------------------------------------------------------------ */
/* Durations                                                           */
/* ------------------------------------------------------------------ */

typedef struct duration_unit {
    const char *name;
    int rank;       /* units must appear in increasing rank (decreasing size) */
    uint64_t ns;
} duration_unit;

static const duration_unit duration_units[] = {
    { "y", 1, 365ULL * 24 * 3600 * 1000000000ULL },
    { "w", 2, 7ULL * 24 * 3600 * 1000000000ULL },
    { "d", 3, 24ULL * 3600 * 1000000000ULL },
    { "h", 4, 3600ULL * 1000000000ULL },
    { "m", 5, 60ULL * 1000000000ULL },
    { "s", 6, 1000000000ULL },
    { "ms", 7, 1000000ULL },
    { "us", 8, 1000ULL },
    { "\xc2\xb5s", 8, 1000ULL }, /* U+00B5 MICRO SIGN */
    { "\xce\xbcs", 8, 1000ULL }, /* U+03BC GREEK SMALL LETTER MU */
    { "ns", 9, 1ULL },
};

static const duration_unit *duration_unit_find(const char *s, size_t len)
{
    for (size_t i = 0; i < NDT_ARRAY_LEN(duration_units); i++) {
        const char *name = duration_units[i].name;
        if (strlen(name) == len && memcmp(name, s, len) == 0)
            return &duration_units[i];
    }
    return NULL;
}

int ndt_duration_parse(const char *s, int64_t *out_ns)
{
    if (!s || !*s)
        return NDT_ERROR;
    if (strcmp(s, "0") == 0) { /* the one number allowed without a unit */
        *out_ns = 0;
        return NDT_OK;
    }
    uint64_t total = 0;
    int last_rank = 0;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return NDT_ERROR;
        uint64_t v = 0;
        while (isdigit((unsigned char)*p)) {
            if (v > (UINT64_MAX - 9) / 10)
                return NDT_ERROR;
            v = v * 10 + (uint64_t)(*p - '0');
            p++;
        }
        const char *u = p;
        while (*p && !isdigit((unsigned char)*p))
            p++;
        const duration_unit *unit = duration_unit_find(u, (size_t)(p - u));
        if (!unit || unit->rank <= last_rank)
            return NDT_ERROR;
        last_rank = unit->rank;
        if (v > (uint64_t)INT64_MAX / unit->ns)
            return NDT_ERROR;
        total += v * unit->ns;
        if (total > (uint64_t)INT64_MAX)
            return NDT_ERROR;
    }
    *out_ns = (int64_t)total;
    return NDT_OK;
}

void ndt_duration_format(int64_t ns, char *buf, size_t size)
{
    static const struct { const char *name; uint64_t ns; } parts[] = {
        { "y", 365ULL * 24 * 3600 * 1000000000ULL }, { "w", 7ULL * 24 * 3600 * 1000000000ULL },
        { "d", 24ULL * 3600 * 1000000000ULL },       { "h", 3600ULL * 1000000000ULL },
        { "m", 60ULL * 1000000000ULL },              { "s", 1000000000ULL },
        { "ms", 1000000ULL },                        { "us", 1000ULL },
        { "ns", 1ULL },
    };
    if (size == 0)
        return;
    buf[0] = '\0';
    if (ns <= 0) {
        snprintf(buf, size, ns == 0 ? "0s" : "-");
        return;
    }
    uint64_t left = (uint64_t)ns;
    size_t used = 0;
    for (size_t i = 0; i < NDT_ARRAY_LEN(parts) && left; i++) {
        uint64_t v = left / parts[i].ns;
        if (!v)
            continue;
        left -= v * parts[i].ns;
        int n = snprintf(buf + used, size - used, "%" PRIu64 "%s", v, parts[i].name);
        if (n < 0 || (size_t)n >= size - used)
            return;
        used += (size_t)n;
    }
}

/* ------------------------------------------------------------------ */
/* Sizes                                                               */
/* ------------------------------------------------------------------ */

/* alecthomas/units ParseBase2Bytes: "KiB" and "KB" both mean 1024; "kB"
 * is refused (it would mean 1000 to a careful reader). */
static double size_unit(const char *u, size_t len)
{
    static const char prefixes[] = "KMGTPE";
    if (len == 1 && u[0] == 'B')
        return 1;
    const char *pos = len >= 2 ? memchr(prefixes, u[0], sizeof(prefixes) - 1) : NULL;
    if (!pos)
        return 0;
    if (!((len == 2 && u[1] == 'B') || (len == 3 && u[1] == 'i' && u[2] == 'B')))
        return 0;
    return pow(1024.0, (double)(pos - prefixes + 1));
}

int ndt_size_parse(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return NDT_ERROR;
    if (*s == '+')
        s++;
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return NDT_OK;
    }
    if (!*s)
        return NDT_ERROR;
    double total = 0;
    const char *p = s;
    while (*p) {
        if (!(isdigit((unsigned char)*p) || *p == '.'))
            return NDT_ERROR;
        double v = 0;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        if (*p == '.') {
            double scale = 0.1;
            p++;
            while (isdigit((unsigned char)*p)) {
                v += (*p++ - '0') * scale;
                scale /= 10;
                digits++;
            }
        }
        if (!digits)
            return NDT_ERROR;
        const char *u = p;
        while (*p && !(isdigit((unsigned char)*p) || *p == '.'))
            p++;
        double mult = size_unit(u, (size_t)(p - u));
        if (mult == 0)
            return NDT_ERROR;
        total += v * mult;
    }
    if (!(total < 0x1p63))
        return NDT_ERROR;
    *out = (uint64_t)total;
    return NDT_OK;
}

/* ------------------------------------------------------------------ */
/* Option maps                                                         */
/* ------------------------------------------------------------------ */

static const char *conf_type_name(ndt_conf_type type)
{
    switch (type) {
    case NDT_CONF_STRING: return "string";
    case NDT_CONF_BOOL: return "bool";
    case NDT_CONF_INT: return "int";
    case NDT_CONF_DOUBLE: return "float";
    case NDT_CONF_DURATION: return "duration";
    case NDT_CONF_SIZE: return "size";
    case NDT_CONF_UINT: return "uint";
    case NDT_CONF_EXTERNAL: return "section";
    }
    return "?";
}

static const char *conf_type_expectation(ndt_conf_type type)
{
    switch (type) {
    case NDT_CONF_STRING: return "a string";
    case NDT_CONF_BOOL: return "true or false";
    case NDT_CONF_INT: return "an integer";
    case NDT_CONF_DOUBLE: return "a number";
    case NDT_CONF_DURATION: return "a duration like 20ms, 15s or 1m30s";
    case NDT_CONF_SIZE: return "a size like 0, 512KiB or 10MB";
    case NDT_CONF_UINT: return "a non-negative integer";
    case NDT_CONF_EXTERNAL: return "a section";
    }
    return "?";
}

static const ndt_conf_entry *confmap_find(const ndt_conf_entry *map, const char *name)
{
    for (; map->name; map++)
        if (strcmp(map->name, name) == 0)
            return map;
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On",
                                       "ON", "1" };
    static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off",
                                      "OFF", "0" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(yes); i++) {
        if (strcmp(v, yes[i]) == 0) {
            *out = 1;
            return NDT_OK;
        }
        if (strcmp(v, no[i]) == 0) {
            *out = 0;
            return NDT_OK;
        }
    }
    return NDT_ERROR;
}

static int parse_int64(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || isspace((unsigned char)*v))
        return NDT_ERROR;
    *out = n;
    return NDT_OK;
}

static int parse_uint64(const char *v, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)v[0]) && !(v[0] == '+' && isdigit((unsigned char)v[1])))
        return NDT_ERROR;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || errno)
        return NDT_ERROR;
    *out = n;
    return NDT_OK;
}

/* Parses text into the entry's field; on failure writes the expectation
 * (without position) into err. */
static int confmap_set_entry(const ndt_conf_entry *e, void *obj, const char *value, char *err,
                             size_t errlen)
{
    char *field = (char *)obj + e->offset;
    int rc = NDT_ERROR;

    switch (e->type) {
    case NDT_CONF_STRING: {
        char *copy = value ? strdup(value) : NULL;
        if (value && !copy) {
            snprintf(err, errlen, "out of memory");
            return NDT_ERROR;
        }
        char *old;
        memcpy(&old, field, sizeof(old));
        free(old);
        memcpy(field, &copy, sizeof(copy));
        return NDT_OK;
    }
    case NDT_CONF_BOOL: {
        int b;
        if ((rc = parse_bool(value, &b)) == NDT_OK)
            memcpy(field, &b, sizeof(b));
        break;
    }
    case NDT_CONF_INT: {
        int64_t n;
        if ((rc = parse_int64(value, &n)) == NDT_OK)
            memcpy(field, &n, sizeof(n));
        break;
    }
    case NDT_CONF_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        if (*value && !*end && !errno && !isspace((unsigned char)*value)) {
            memcpy(field, &d, sizeof(d));
            rc = NDT_OK;
        }
        break;
    }
    case NDT_CONF_DURATION: {
        int64_t ns;
        if ((rc = ndt_duration_parse(value, &ns)) == NDT_OK)
            memcpy(field, &ns, sizeof(ns));
        break;
    }
    case NDT_CONF_SIZE: {
        uint64_t n;
        if ((rc = ndt_size_parse(value, &n)) == NDT_OK)
            memcpy(field, &n, sizeof(n));
        break;
    }
    case NDT_CONF_UINT: {
        uint64_t n;
        if ((rc = parse_uint64(value, &n)) == NDT_OK)
            memcpy(field, &n, sizeof(n));
        break;
    }
    case NDT_CONF_EXTERNAL:
        snprintf(err, errlen, "cannot be set from text");
        return NDT_ERROR;
    }
    if (rc != NDT_OK)
        snprintf(err, errlen, "expected %s, got '%s'", conf_type_expectation(e->type), value);
    return rc;
}

static void confmap_zero_entry(const ndt_conf_entry *e, void *obj)
{
    char *field = (char *)obj + e->offset;
    switch (e->type) {
    case NDT_CONF_STRING: {
        char *old;
        memcpy(&old, field, sizeof(old));
        free(old);
        old = NULL;
        memcpy(field, &old, sizeof(old));
        break;
    }
    case NDT_CONF_BOOL: memset(field, 0, sizeof(int)); break;
    case NDT_CONF_INT:
    case NDT_CONF_DURATION: memset(field, 0, sizeof(int64_t)); break;
    case NDT_CONF_DOUBLE: memset(field, 0, sizeof(double)); break;
    case NDT_CONF_SIZE:
    case NDT_CONF_UINT: memset(field, 0, sizeof(uint64_t)); break;
    case NDT_CONF_EXTERNAL: break;
    }
}

int ndt_confmap_set_defaults(const ndt_conf_entry *map, void *obj, char *err, size_t errlen)
{
    for (const ndt_conf_entry *e = map; e->name; e++) {
        confmap_zero_entry(e, obj);
        if (!e->default_value)
            continue;
        char why[NDT_ERRBUF_SIZE];
        if (confmap_set_entry(e, obj, e->default_value, why, sizeof(why)) != NDT_OK) {
            snprintf(err, errlen, "%s: bad built-in default: %s", e->name, why);
            return NDT_ERROR;
        }
    }
    return NDT_OK;
}

static int confmap_unknown(const ndt_conf_entry *map, const char *name, char *msg, size_t size)
{
    const char *names[128];
    size_t n = 0;
    for (const ndt_conf_entry *e = map; e->name && n < NDT_ARRAY_LEN(names); e++)
        names[n++] = e->name;
    const char *hint = ndt_config_closest(name, names, n);
    if (hint)
        snprintf(msg, size, "unknown key '%s', did you mean %s?", name, hint);
    else
        snprintf(msg, size, "unknown key '%s'", name);
    return NDT_ERROR;
}

int ndt_confmap_set(const ndt_conf_entry *map, void *obj, const char *name, const char *value,
                    char *err, size_t errlen)
{
    char why[NDT_ERRBUF_SIZE];
    const ndt_conf_entry *e = confmap_find(map, name);
    if (!e) {
        confmap_unknown(map, name, why, sizeof(why));
        snprintf(err, errlen, "%s", why);
        return NDT_ERROR;
    }
    if (confmap_set_entry(e, obj, value, why, sizeof(why)) != NDT_OK) {
        snprintf(err, errlen, "%s: %s", name, why);
        return NDT_ERROR;
    }
    return NDT_OK;
}

int ndt_confmap_apply_yaml(const ndt_conf_entry *map, void *obj, ndt_yaml *y, yaml_node_t *mapping,
                           int (*is_known_elsewhere)(const char *key), char *err, size_t errlen)
{
    char why[NDT_ERRBUF_SIZE];

    if (ndt_yaml_is_null(mapping))
        return NDT_OK;
    if (mapping->type != YAML_MAPPING_NODE)
        return ndt_yaml_error(y, mapping, NULL, err, errlen, "expected a mapping of options");
    if (ndt_yaml_check_unique_keys(y, mapping, err, errlen) != NDT_OK)
        return NDT_ERROR;

    for (yaml_node_pair_t *p = mapping->data.mapping.pairs.start;
         p < mapping->data.mapping.pairs.top; p++) {
        yaml_node_t *knode = yaml_document_get_node(&y->doc, p->key);
        yaml_node_t *vnode = yaml_document_get_node(&y->doc, p->value);
        const char *key = ndt_yaml_scalar(knode);
        const ndt_conf_entry *e = confmap_find(map, key);
        if (!e) {
            if (is_known_elsewhere && is_known_elsewhere(key))
                continue;
            confmap_unknown(map, key, why, sizeof(why));
            return ndt_yaml_error(y, knode, NULL, err, errlen, "%s", why);
        }
        if (e->type == NDT_CONF_EXTERNAL || ndt_yaml_is_null(vnode))
            continue; /* an empty value keeps the default, as in Prometheus */
        const char *text = ndt_yaml_scalar(vnode);
        if (!text)
            return ndt_yaml_error(y, vnode, key, err, errlen, "expected %s, got a %s",
                                  conf_type_expectation(e->type),
                                  vnode->type == YAML_MAPPING_NODE ? "mapping" : "list");
        if (confmap_set_entry(e, obj, text, why, sizeof(why)) != NDT_OK)
            return ndt_yaml_error(y, vnode, key, err, errlen, "%s", why);
    }
    return NDT_OK;
}

void ndt_confmap_free(const ndt_conf_entry *map, void *obj)
{
    for (const ndt_conf_entry *e = map; e->name; e++)
        if (e->type == NDT_CONF_STRING)
            confmap_zero_entry(e, obj);
}

void ndt_confmap_print_help(const ndt_conf_entry *map, FILE *out)
{
    for (const ndt_conf_entry *e = map; e->name; e++) {
        fprintf(out, "  %-28s %-9s %s", e->name, conf_type_name(e->type),
                e->description ? e->description : "");
        if (e->default_value)
            fprintf(out, " (default %s)", e->default_value);
        fputc('\n', out);
    }
}
