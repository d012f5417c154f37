/*
 * udr.c: URL dispatch, argument checks and the stats every backend shares.
 *
 * Checks live here, once, so that the SQLite and InfluxDB backends accept
 * and refuse exactly the same input: a point whose type or attribute name
 * is not an identifier, or that has no id, is refused with a reason before
 * any backend sees it (InfluxDB would otherwise need escaping rules the
 * SQLite backend does not, and the two would drift).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "udr/udr_internal.h"

#define UDR_DEFAULT_SPOOL_MAX (64u << 20)
#define UDR_DEFAULT_BATCH_MAX (1u << 20)

int udr_name_is_valid(const char *s)
{
    if (!s || !*s || strlen(s) > 128)
        return 0;
    for (const char *c = s; *c; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' ||
                 (c != s && *c >= '0' && *c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

/* Ids become tag values and SQL values: any printable text without
 * control characters is fine, but not empty, and no backslash: InfluxDB's
 * line protocol has no unambiguous escape for one before a comma, space or
 * equals sign, and a URN cannot contain one anyway (RFC 8141). */
static int udr_id_is_valid(const char *s)
{
    if (!s || !*s || strlen(s) > 1024)
        return 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '\\')
            return 0;
    return 1;
}

static void udr_apply_defaults(udr_options *o)
{
    if (!o->spool_max_bytes)
        o->spool_max_bytes = UDR_DEFAULT_SPOOL_MAX;
    if (!o->batch_max_bytes)
        o->batch_max_bytes = UDR_DEFAULT_BATCH_MAX;
    if (o->max_retries == 0)
        o->max_retries = 3;
    else if (o->max_retries < 0)
        o->max_retries = 0;
    if (o->gzip_level == 0)
        o->gzip_level = 1;
    if (o->timeout_ms <= 0)
        o->timeout_ms = 5000;
    if (!o->spool_dir)
        o->spool_dir = "data/udr-spool";
}

int udr_open(udr **out, const char *url, const udr_options *opts, char *err, size_t errlen)
{
    *out = NULL;
    if (!url || !*url) {
        snprintf(err, errlen, "--udr: empty URL (expected sqlite:PATH, "
                 "influx:http://HOST:PORT/DB or influx2:http://HOST:PORT/ORG/BUCKET)");
        return NDT_EBADCONF;
    }
    udr *u = calloc(1, sizeof(*u));
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    if (opts)
        u->opts = *opts;
    udr_apply_defaults(&u->opts);

    int rc;
    if (strncmp(url, "sqlite:", 7) == 0) {
        rc = udr_sqlite_open(u, url + 7, err, errlen);
    } else if (strncmp(url, "influx:", 7) == 0) {
        rc = udr_influx_open(u, 1, url + 7, err, errlen);
    } else if (strncmp(url, "influx2:", 8) == 0) {
        rc = udr_influx_open(u, 2, url + 8, err, errlen);
    } else {
        char safe[256];
        ndt_log_redact_url(url, safe, sizeof(safe));
        snprintf(err, errlen, "--udr %s: unknown scheme (expected sqlite:, influx: or influx2:)",
                 safe);
        rc = NDT_EBADCONF;
    }
    if (rc != NDT_OK) {
        free(u);
        return rc;
    }
    *out = u;
    return NDT_OK;
}

static int udr_check_point(const udr_point *p, char *err, size_t errlen)
{
    if (!udr_name_is_valid(p->type)) {
        snprintf(err, errlen, "entity type \"%s\" is not an identifier", p->type ? p->type : "");
        return NDT_EBADCONF;
    }
    if (!udr_id_is_valid(p->id)) {
        snprintf(err, errlen, "entity of type %s has an empty id, or one with a control "
                 "character or a backslash", p->type);
        return NDT_EBADCONF;
    }
    if (p->nfields == 0) {
        snprintf(err, errlen, "entity %s: a point needs at least one attribute", p->id);
        return NDT_EBADCONF;
    }
    for (size_t i = 0; i < p->nfields; i++) {
        const udr_field *f = &p->fields[i];
        if (!udr_name_is_valid(f->name) || strcmp(f->name, "id") == 0 ||
            strcmp(f->name, "time") == 0) {
            snprintf(err, errlen, "entity %s: attribute \"%s\" is not an identifier "
                     "(or is the reserved id/time)", p->id, f->name ? f->name : "");
            return NDT_EBADCONF;
        }
        if (f->kind == UDR_FIELD_STRING && !f->text) {
            snprintf(err, errlen, "entity %s: attribute %s has no text", p->id, f->name);
            return NDT_EBADCONF;
        }
    }
    return NDT_OK;
}

int udr_write_points(udr *u, const udr_point *points, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        int rc = udr_check_point(&points[i], err, errlen);
        if (rc != NDT_OK)
            return rc;
    }
    int rc = u->ops->write_points(u, points, n, err, errlen);
    if (rc == NDT_OK)
        u->stats.points_written += n;
    return rc;
}

int udr_write_relation(udr *u, const udr_relation *r, char *err, size_t errlen)
{
    if (!udr_id_is_valid(r->subject) || !udr_id_is_valid(r->object) ||
        !udr_name_is_valid(r->predicate)) {
        snprintf(err, errlen, "relationship needs a subject, an identifier predicate and an object");
        return NDT_EBADCONF;
    }
    if (r->valid_to_ms <= r->valid_from_ms) {
        snprintf(err, errlen, "relationship %s %s %s: valid_to must be after valid_from",
                 r->subject, r->predicate, r->object);
        return NDT_EBADCONF;
    }
    return u->ops->write_relation(u, r, err, errlen);
}

int udr_flush(udr *u, char *err, size_t errlen)
{
    return u->ops->flush(u, err, errlen);
}

int udr_flush_start(udr *u, uint64_t *ticket, char *err, size_t errlen)
{
    *ticket = 0;
    if (!u->ops->flush_start)
        return u->ops->flush(u, err, errlen);
    return u->ops->flush_start(u, ticket, err, errlen);
}

int udr_flush_done(udr *u, uint64_t ticket, int wait, char *err, size_t errlen)
{
    if (!u->ops->flush_done)
        return NDT_OK; /* flush_start was synchronous */
    return u->ops->flush_done(u, ticket, wait, err, errlen);
}

static int udr_unsupported(const udr *u, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "the %s backend cannot serve %s (use sqlite: or influx:)",
             u->ops->name, what);
    return NDT_ERROR;
}

int udr_read_latest(udr *u, const char *type, udr_point_fn fn, void *ctx, char *err, size_t errlen)
{
    if (!udr_name_is_valid(type)) {
        snprintf(err, errlen, "entity type \"%s\" is not an identifier", type ? type : "");
        return NDT_EBADCONF;
    }
    if (!u->ops->read_latest)
        return udr_unsupported(u, "reads of the latest state", err, errlen);
    return u->ops->read_latest(u, type, fn, ctx, err, errlen);
}

int udr_read_range(udr *u, const char *type, int64_t from_ms, int64_t to_ms,
                   udr_point_fn fn, void *ctx, char *err, size_t errlen)
{
    if (!udr_name_is_valid(type)) {
        snprintf(err, errlen, "entity type \"%s\" is not an identifier", type ? type : "");
        return NDT_EBADCONF;
    }
    if (!u->ops->read_range)
        return udr_unsupported(u, "range reads", err, errlen);
    return u->ops->read_range(u, type, from_ms, to_ms, fn, ctx, err, errlen);
}

int udr_read_relations(udr *u, int64_t at_ms, udr_relation_fn fn, void *ctx,
                       char *err, size_t errlen)
{
    if (!u->ops->read_relations)
        return udr_unsupported(u, "relationship reads", err, errlen);
    return u->ops->read_relations(u, at_ms, fn, ctx, err, errlen);
}

void udr_get_stats(const udr *u, udr_stats *out)
{
    *out = u->stats;
}

void udr_close(udr *u)
{
    if (!u)
        return;
    u->ops->close(u);
    free(u);
}

/* ---- row to point assembly, shared by every backend's reads ---- */

void udr_assembler_init(udr_assembler *a, const char *type, int by_id,
                        udr_point_fn fn, void *ctx)
{
    memset(a, 0, sizeof(*a));
    ndt_arena_init(&a->arena, 4096, 0);
    a->type = type;
    a->by_id = by_id;
    a->fn = fn;
    a->ctx = ctx;
}

static int udr_assembler_emit(udr_assembler *a)
{
    if (!a->id)
        return NDT_OK;
    udr_point p = { .type = a->type, .id = a->id, .ts_ms = a->ts_ms,
                    .fields = a->fields, .nfields = a->nfields };
    int rc = a->fn(a->ctx, &p);
    a->id = NULL;
    a->nfields = 0;
    ndt_arena_reset(&a->arena);
    return rc;
}

int udr_assembler_add(udr_assembler *a, const char *id, int64_t ts_ms, const udr_field *f)
{
    int same = a->id && strcmp(a->id, id) == 0 && (a->by_id || a->ts_ms == ts_ms);
    if (!same) {
        int rc = udr_assembler_emit(a);
        if (rc != NDT_OK)
            return rc;
        a->id = ndt_arena_strndup(&a->arena, id, strlen(id));
        if (!a->id)
            return NDT_ERROR;
        a->ts_ms = ts_ms;
    } else if (ts_ms > a->ts_ms) {
        a->ts_ms = ts_ms;
    }
    if (a->nfields == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        udr_field *grown = realloc(a->fields, cap * sizeof(*grown));
        if (!grown)
            return NDT_ERROR;
        a->fields = grown;
        a->cap = cap;
    }
    udr_field *dst = &a->fields[a->nfields];
    *dst = *f;
    dst->name = ndt_arena_strndup(&a->arena, f->name, strlen(f->name));
    if (!dst->name)
        return NDT_ERROR;
    if (f->kind == UDR_FIELD_STRING) {
        dst->text = ndt_arena_strndup(&a->arena, f->text, strlen(f->text));
        if (!dst->text)
            return NDT_ERROR;
    }
    a->nfields++;
    return NDT_OK;
}

int udr_assembler_finish(udr_assembler *a)
{
    return udr_assembler_emit(a);
}

void udr_assembler_free(udr_assembler *a)
{
    free(a->fields);
    a->fields = NULL;
    ndt_arena_free(&a->arena);
}
