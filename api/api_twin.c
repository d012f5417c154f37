/*
 * api_twin.c: the twin's entities and graph as the API shows them, read
 * from the UDR (docs/DATA-MODEL.md).
 *
 * NGSI-LD's normalized form is rebuilt from what the UDR keeps: the latest
 * value of every attribute (udr_read_latest) and the relationships in force
 * now (udr_read_relations).  The UDR keeps neither units nor per-attribute
 * times, so unitCode comes from the table below (DATA-MODEL.md's, which
 * the schemas enforce) and observedAt is the entity's newest observation.
 * A predicate with several objects in force (functionChain) is rendered
 * as an array of objects.  Every response is bounded by API_MAX_RESPONSE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"

#define API_CONTEXT "https://ndtpipe.example.org/sdm-schemas/context.jsonld"
#define API_MAX_RELATIONS 200000

/* Attribute -> unitCode (docs/DATA-MODEL.md, "Units"); an attribute whose
 * unit depends on its type is listed with the type. */
static const struct {
    const char *type; /* NULL: every type */
    const char *attr;
    const char *unit;
} units[] = {
    { "ServiceComponent", "currentCpuUsage", "C62" },
    { "InfrastructureElement", "currentCpuUsage", "P1" },
    { NULL, "cpuCores", "C62" },
    { NULL, "ramCapacity", "4L" },
    { NULL, "availableRam", "4L" },
    { NULL, "currentRamUsage", "4L" },
    { NULL, "currentRamUsagePct", "P1" },
    { NULL, "currentMemoryUsage", "4L" },
    { NULL, "queueDepth", "C62" },
    { NULL, "avgDepthOnEnqueue", "C62" },
    { NULL, "avgBacklogEstimate", "SEC" },
    { NULL, "processCpuUsage", "P1" },
    { NULL, "systemCpuUsage", "P1" },
    { NULL, "systemMemoryUsage", "P1" },
    { NULL, "avgInferenceTime", "C26" },
    { NULL, "requestRate", "HTZ" },
    { NULL, "currentUsers", "C62" },
    { NULL, "desiredReplicas", "C62" },
    { NULL, "readyReplicas", "C62" },
    { NULL, "virtualCpuAllocation", "C62" },
    { NULL, "virtualMemoryAllocation", "4L" },
    { NULL, "virtualStorageAllocation", "4L" },
    { NULL, "cpuUsageOfAllocation", "P1" },
    { NULL, "memoryUsageOfAllocation", "P1" },
    { NULL, "endToEndLatency", "C26" },
};

static const char *unit_of(const char *type, const char *attr)
{
    for (size_t i = 0; i < NDT_ARRAY_LEN(units); i++)
        if (strcmp(units[i].attr, attr) == 0 && (!units[i].type || strcmp(units[i].type, type) == 0))
            return units[i].unit;
    return NULL;
}

int api_twin_type_of(const char *id, char *type, size_t size)
{
    static const char prefix[] = "urn:ngsi-ld:";
    if (strncmp(id, prefix, sizeof(prefix) - 1) != 0)
        return NDT_EBADCONF;
    const char *t = id + sizeof(prefix) - 1;
    const char *colon = strchr(t, ':');
    if (!colon || colon == t || (size_t)(colon - t) >= size || !colon[1])
        return NDT_EBADCONF;
    memcpy(type, t, (size_t)(colon - t));
    type[colon - t] = '\0';
    return NDT_OK;
}

/* ---- relationships in force, copied out of the read callback ---------- */

typedef struct rel_copy {
    char *subject, *predicate, *object;
    int64_t from_ms, to_ms;
} rel_copy;

typedef struct rel_set {
    rel_copy *items;
    size_t n, cap;
    int overflow;
} rel_set;

static int rel_collect(void *ctx, const udr_relation *r)
{
    rel_set *s = ctx;
    if (s->n == API_MAX_RELATIONS) {
        s->overflow = 1;
        return NDT_ERROR;
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        rel_copy *grown = realloc(s->items, ncap * sizeof(*grown));
        if (!grown)
            return NDT_ERROR;
        s->items = grown;
        s->cap = ncap;
    }
    rel_copy *c = &s->items[s->n];
    c->subject = strdup(r->subject);
    c->predicate = strdup(r->predicate);
    c->object = strdup(r->object);
    c->from_ms = r->valid_from_ms;
    c->to_ms = r->valid_to_ms;
    s->n++;
    return c->subject && c->predicate && c->object ? NDT_OK : NDT_ERROR;
}

static void rel_free(rel_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].subject);
        free(s->items[i].predicate);
        free(s->items[i].object);
    }
    free(s->items);
}

/* By subject, then predicate, then object: an entity's relationships are
 * one run, and the rendering is the same from run to run. */
static int rel_cmp(const void *a, const void *b)
{
    const rel_copy *x = a, *y = b;
    int c = strcmp(x->subject, y->subject);
    if (!c)
        c = strcmp(x->predicate, y->predicate);
    return c ? c : strcmp(x->object, y->object);
}

static int rel_read(udr *u, int64_t at_ms, rel_set *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    int rc = udr_read_relations(u, at_ms, rel_collect, s, err, errlen);
    if (s->overflow) {
        snprintf(err, errlen, "more than %d relationships in force", API_MAX_RELATIONS);
        rc = NDT_ERROR;
    }
    if (rc != NDT_OK) {
        rel_free(s);
        return NDT_ERROR;
    }
    if (s->n)
        qsort(s->items, s->n, sizeof(*s->items), rel_cmp);
    return NDT_OK;
}

/* The first relationship of subject (binary search), or n. */
static size_t rel_first(const rel_set *s, const char *subject)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(s->items[mid].subject, subject) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- entities --------------------------------------------------------- */

typedef struct entity_ctx {
    ndt_buf *out;
    const rel_set *rels;
    const char *id; /* NULL: every entity of the type */
    int key_values;
    size_t written;
    int failed;
} entity_ctx;

static int put(entity_ctx *c, int ok)
{
    if (!ok)
        c->failed = 1;
    return ok;
}

static int write_relationships(entity_ctx *c, const char *subject)
{
    ndt_buf *b = c->out;
    size_t i = rel_first(c->rels, subject);
    while (i < c->rels->n && strcmp(c->rels->items[i].subject, subject) == 0) {
        const char *pred = c->rels->items[i].predicate;
        size_t end = i;
        while (end < c->rels->n && strcmp(c->rels->items[end].subject, subject) == 0 &&
               strcmp(c->rels->items[end].predicate, pred) == 0)
            end++;
        int ok = ndt_buf_append_char(b, ',') == NDT_OK && api_json_string(b, pred) == NDT_OK &&
                 ndt_buf_append_str(b, c->key_values ? ":" : ":{\"type\":\"Relationship\",\"object\":") == NDT_OK;
        if (ok && end - i > 1)
            ok = ndt_buf_append_char(b, '[') == NDT_OK;
        for (size_t k = i; ok && k < end; k++)
            ok = (k == i || ndt_buf_append_char(b, ',') == NDT_OK) &&
                 api_json_string(b, c->rels->items[k].object) == NDT_OK;
        if (ok && end - i > 1)
            ok = ndt_buf_append_char(b, ']') == NDT_OK;
        if (ok && !c->key_values)
            ok = ndt_buf_append_char(b, '}') == NDT_OK;
        if (!put(c, ok))
            return NDT_ERROR;
        i = end;
    }
    return NDT_OK;
}

static int write_entity(void *ctx, const udr_point *p)
{
    entity_ctx *c = ctx;
    ndt_buf *b = c->out;
    if (c->id && strcmp(p->id, c->id) != 0)
        return NDT_OK;
    char observed[40];
    api_format_rfc3339(p->ts_ms, observed, sizeof(observed));
    int ok = (c->written == 0 || ndt_buf_append_char(b, ',') == NDT_OK) &&
             ndt_buf_append_str(b, "{\"id\":") == NDT_OK && api_json_string(b, p->id) == NDT_OK &&
             ndt_buf_append_str(b, ",\"type\":") == NDT_OK && api_json_string(b, p->type) == NDT_OK;
    for (size_t i = 0; ok && i < p->nfields; i++) {
        const udr_field *f = &p->fields[i];
        ok = ndt_buf_append_char(b, ',') == NDT_OK && api_json_string(b, f->name) == NDT_OK &&
             ndt_buf_append_str(b, c->key_values ? ":" : ":{\"type\":\"Property\",\"value\":") == NDT_OK;
        ok = ok && (f->kind == UDR_FIELD_STRING ? api_json_string(b, f->text)
                                                : api_json_number(b, f->number)) == NDT_OK;
        if (ok && !c->key_values) {
            const char *unit = f->kind == UDR_FIELD_DOUBLE ? unit_of(p->type, f->name) : NULL;
            ok = ndt_buf_printf(b, ",\"observedAt\":\"%s\"", observed) == NDT_OK &&
                 (!unit || ndt_buf_printf(b, ",\"unitCode\":\"%s\"", unit) == NDT_OK) &&
                 ndt_buf_append_char(b, '}') == NDT_OK;
        }
    }
    if (!put(c, ok) || write_relationships(c, p->id) != NDT_OK)
        return NDT_ERROR;
    ok = (c->key_values || ndt_buf_append_str(b, ",\"@context\":\"" API_CONTEXT "\"") == NDT_OK) &&
         ndt_buf_append_char(b, '}') == NDT_OK;
    c->written++;
    return put(c, ok) ? NDT_OK : NDT_ERROR;
}

int api_twin_entities(udr *u, const char *type, const char *id, int key_values, int64_t now_ms,
                      ndt_buf *out, char *err, size_t errlen)
{
    rel_set rels;
    if (rel_read(u, now_ms, &rels, err, errlen) != NDT_OK)
        return NDT_ERROR;
    entity_ctx c = { .out = out, .rels = &rels, .id = id, .key_values = key_values };
    int rc = NDT_OK;
    if (!id && ndt_buf_append_char(out, '[') != NDT_OK)
        c.failed = 1;
    if (!c.failed)
        rc = udr_read_latest(u, type, write_entity, &c, err, errlen);
    if (!c.failed && rc == NDT_OK && !id && ndt_buf_append_char(out, ']') != NDT_OK)
        c.failed = 1;
    if (!c.failed && rc == NDT_OK && ndt_buf_append_char(out, '\n') != NDT_OK)
        c.failed = 1;
    rel_free(&rels);
    if (c.failed) {
        snprintf(err, errlen, "the entities do not fit the response limit");
        return NDT_ERROR;
    }
    if (rc != NDT_OK)
        return NDT_ERROR;
    if (id && c.written == 0) {
        snprintf(err, errlen, "no entity '%.200s' in the twin", id);
        return NDT_EBADCONF;
    }
    return NDT_OK;
}

/* ---- the graph -------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int api_twin_graph(udr *u, int64_t at_ms, ndt_buf *out, char *err, size_t errlen)
{
    rel_set rels;
    if (rel_read(u, at_ms, &rels, err, errlen) != NDT_OK)
        return NDT_ERROR;
    /* The nodes are the ends of the relationships in force at at_ms. */
    char **nodes = malloc((2 * rels.n + 1) * sizeof(*nodes));
    size_t nn = 0;
    if (!nodes) {
        rel_free(&rels);
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    for (size_t i = 0; i < rels.n; i++) {
        nodes[nn++] = rels.items[i].subject;
        nodes[nn++] = rels.items[i].object;
    }
    if (nn)
        qsort(nodes, nn, sizeof(*nodes), cmp_str);
    char at[40];
    api_format_rfc3339(at_ms, at, sizeof(at));
    int ok = ndt_buf_printf(out, "{\"at\":\"%s\",\"entities\":[", at) == NDT_OK;
    size_t written = 0;
    for (size_t i = 0; ok && i < nn; i++) {
        if (i && strcmp(nodes[i], nodes[i - 1]) == 0)
            continue;
        char type[96];
        if (api_twin_type_of(nodes[i], type, sizeof(type)) != NDT_OK)
            snprintf(type, sizeof(type), "unknown");
        ok = (written++ == 0 || ndt_buf_append_char(out, ',') == NDT_OK) &&
             ndt_buf_append_str(out, "{\"id\":") == NDT_OK && api_json_string(out, nodes[i]) == NDT_OK &&
             ndt_buf_append_str(out, ",\"type\":") == NDT_OK && api_json_string(out, type) == NDT_OK &&
             ndt_buf_append_char(out, '}') == NDT_OK;
    }
    ok = ok && ndt_buf_append_str(out, "],\"relationships\":[") == NDT_OK;
    for (size_t i = 0; ok && i < rels.n; i++) {
        const rel_copy *r = &rels.items[i];
        char from[40];
        api_format_rfc3339(r->from_ms, from, sizeof(from));
        ok = (i == 0 || ndt_buf_append_char(out, ',') == NDT_OK) &&
             ndt_buf_append_str(out, "{\"subject\":") == NDT_OK && api_json_string(out, r->subject) == NDT_OK &&
             ndt_buf_append_str(out, ",\"predicate\":") == NDT_OK && api_json_string(out, r->predicate) == NDT_OK &&
             ndt_buf_append_str(out, ",\"object\":") == NDT_OK && api_json_string(out, r->object) == NDT_OK &&
             ndt_buf_printf(out, ",\"validFrom\":\"%s\",\"validTo\":", from) == NDT_OK;
        if (ok && r->to_ms == UDR_OPEN) {
            ok = ndt_buf_append_str(out, "null}") == NDT_OK;
        } else if (ok) {
            char to[40];
            api_format_rfc3339(r->to_ms, to, sizeof(to));
            ok = ndt_buf_printf(out, "\"%s\"}", to) == NDT_OK;
        }
    }
    ok = ok && ndt_buf_append_str(out, "]}\n") == NDT_OK;
    free(nodes);
    rel_free(&rels);
    if (!ok) {
        snprintf(err, errlen, "the graph does not fit the response limit");
        return NDT_ERROR;
    }
    return NDT_OK;
}

/* ---- services --------------------------------------------------------- */

typedef struct services_ctx {
    char (*ids)[API_ID_MAX];
    size_t max, n;
} services_ctx;

static int collect_service(void *ctx, const udr_point *p)
{
    services_ctx *c = ctx;
    if (c->n < c->max && strlen(p->id) < API_ID_MAX)
        snprintf(c->ids[c->n++], API_ID_MAX, "%s", p->id);
    return NDT_OK;
}

int api_twin_services(udr *u, char ids[][API_ID_MAX], size_t max, size_t *n, char *err,
                      size_t errlen)
{
    services_ctx c = { .ids = ids, .max = max };
    int rc = udr_read_latest(u, "Service", collect_service, &c, err, errlen);
    *n = c.n;
    return rc;
}
