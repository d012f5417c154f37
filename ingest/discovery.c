/*
 * discovery.c: a job's current targets, derived exactly as Prometheus
 * derives them (scrape.PopulateLabels in Prometheus 2.x).
 *
 * For every address of every target group (static_configs, then the
 * file_sd files as they are now) the labels are, in order of precedence:
 * the target's own __address__, the group's labels (file_sd adds
 * __meta_filepath), then job, __scheme__, __metrics_path__,
 * __scrape_interval__, __scrape_timeout__ and __param_<name> from the job
 * where the group did not set them.  relabel_configs run on that set; a
 * dropped target is counted.  Then, as Prometheus 2.x does, an address
 * without a port gets the scheme's default one (80 / 443), intervals are
 * read back from the labels (relabeling may change them), instance
 * defaults to __address__, the URL is built from __scheme__,
 * __address__, __metrics_path__ and the parameters, and every label
 * starting with "__" is removed.
 *
 * A target that relabeling leaves invalid (no address, a bad interval)
 * is skipped with a warning, as Prometheus skips it with an error in its
 * target page; a file that cannot be read or parsed fails the whole call,
 * so the scraper keeps its previous targets instead of losing them all.
 *
 * Memory: one arena per call, reset after each target, with a hard cap;
 * the results are malloc'ed copies owned by the caller.  file_sd files
 * are read whole, up to FILE_SD_MAX_BYTES each.
 */
#include "ingest/scrape_config.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/file.h"
#include "common/log.h"
#include "common/ndt.h"
#include "ingest/scrape_config_internal.h"

#define FILE_SD_MAX_BYTES (16u << 20)
#define DISCOVERY_ARENA_CAP (64u << 20)

/* Target groups of one discovery round: borrowed static ones followed by
 * the file_sd ones this call owns. */
typedef struct group_list {
    const ingest_target_group **groups;
    size_t n;
    ingest_target_group *owned;
    size_t nowned;
} group_list;

static int group_list_push(group_list *gl, const ingest_target_group *g)
{
    const ingest_target_group **grown = realloc(gl->groups, (gl->n + 1) * sizeof(*grown));
    if (!grown)
        return NDT_ERROR;
    gl->groups = grown;
    gl->groups[gl->n++] = g;
    return NDT_OK;
}

static ingest_target_group *group_list_new_owned(group_list *gl)
{
    ingest_target_group *grown = realloc(gl->owned, (gl->nowned + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    gl->owned = grown;
    memset(&gl->owned[gl->nowned], 0, sizeof(gl->owned[0]));
    return &gl->owned[gl->nowned++];
}

static void group_list_free(group_list *gl)
{
    for (size_t i = 0; i < gl->nowned; i++)
        ingest_scrape_target_group_free(&gl->owned[i]);
    free(gl->owned);
    free(gl->groups);
}

/* ------------------------------------------------------------------ */
/* file_sd                                                             */
/* ------------------------------------------------------------------ */

static void json_position(const char *text, const char *at, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Adds __meta_filepath as Prometheus's file discovery does. */
static int add_filepath_label(ingest_target_group *g, const char *path)
{
    return ingest_scrape_owned_labels_add(&g->labels, NDT_STR_LIT("__meta_filepath"),
                                          ndt_str_from_cstr(path));
}

static int json_group(const cJSON *item, const char *path, size_t index, ingest_target_group *g,
                      char *err, size_t errlen)
{
    if (!cJSON_IsObject(item)) {
        snprintf(err, errlen, "%s: group %zu: expected an object with targets and labels", path,
                 index);
        return NDT_ERROR;
    }
    if (!(g->source = strdup(path)))
        goto oom;
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(item, "targets");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(item, "labels");
    if (targets && !cJSON_IsArray(targets)) {
        snprintf(err, errlen, "%s: group %zu: targets: expected a list of strings", path, index);
        return NDT_ERROR;
    }
    size_t n = targets ? (size_t)cJSON_GetArraySize(targets) : 0;
    if (!(g->targets = calloc(n ? n : 1, sizeof(char *))))
        goto oom;
    const cJSON *t;
    cJSON_ArrayForEach(t, targets)
    {
        if (!cJSON_IsString(t)) {
            snprintf(err, errlen, "%s: group %zu: targets: expected strings", path, index);
            return NDT_ERROR;
        }
        if (!(g->targets[g->ntargets] = strdup(t->valuestring)))
            goto oom;
        g->ntargets++;
    }
    if (labels && !cJSON_IsObject(labels)) {
        snprintf(err, errlen, "%s: group %zu: labels: expected an object", path, index);
        return NDT_ERROR;
    }
    const cJSON *l;
    cJSON_ArrayForEach(l, labels)
    {
        if (!ingest_label_name_valid(ndt_str_from_cstr(l->string))) {
            snprintf(err, errlen, "%s: group %zu: labels: '%s' is not a valid label name", path,
                     index, l->string);
            return NDT_ERROR;
        }
        if (!cJSON_IsString(l)) {
            snprintf(err, errlen, "%s: group %zu: labels: %s: expected a string", path, index,
                     l->string);
            return NDT_ERROR;
        }
        if (ingest_scrape_owned_labels_add(&g->labels, ndt_str_from_cstr(l->string),
                                           ndt_str_from_cstr(l->valuestring)) != NDT_OK)
            goto oom;
    }
    if (add_filepath_label(g, path) != NDT_OK)
        goto oom;
    return NDT_OK;
oom:
    snprintf(err, errlen, "%s: out of memory", path);
    return NDT_ERROR;
}

static int load_json_file(const char *path, group_list *gl, char *err, size_t errlen)
{
    char *text;
    size_t len;
    int rc = NDT_ERROR;
    if (ndt_file_read(path, FILE_SD_MAX_BYTES, &text, &len, err, errlen) != NDT_OK)
        return NDT_ERROR;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t line, col;
        json_position(text, end ? end : text, &line, &col);
        snprintf(err, errlen, "%s:%zu:%zu: invalid JSON", path, line, col);
        goto out;
    }
    if (!cJSON_IsArray(root)) {
        snprintf(err, errlen, "%s: expected a list of target groups", path);
        goto out;
    }
    size_t index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        ingest_target_group *g = group_list_new_owned(gl);
        if (!g) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto out;
        }
        if (json_group(item, path, index++, g, err, errlen) != NDT_OK)
            goto out;
    }
    rc = NDT_OK;
out:
    cJSON_Delete(root);
    free(text);
    return rc;
}

static int load_yaml_file(const char *path, group_list *gl, char *err, size_t errlen)
{
    ndt_yaml y;
    int rc = NDT_ERROR;
    if (ndt_yaml_load_file(&y, path, err, errlen) != NDT_OK)
        return NDT_ERROR;
    yaml_node_t *root = ndt_yaml_root(&y);
    if (ndt_yaml_is_null(root)) {
        rc = NDT_OK; /* an empty file has no targets */
        goto out;
    }
    if (root->type != YAML_SEQUENCE_NODE) {
        ndt_yaml_error(&y, root, NULL, err, errlen, "expected a list of target groups");
        goto out;
    }
    for (size_t i = 0; i < ingest_scrape_seq_len(root); i++) {
        ingest_target_group *g = group_list_new_owned(gl);
        if (!g) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto out;
        }
        if (ingest_scrape_target_group_from_yaml(&y, ingest_scrape_seq_item(&y, root, i), path,
                                                 g, err, errlen) != NDT_OK ||
            add_filepath_label(g, path) != NDT_OK)
            goto out;
    }
    rc = NDT_OK;
out:
    ndt_yaml_free(&y);
    return rc;
}

static int has_suffix_ci(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcasecmp(s + ls - lx, suffix) == 0;
}

static int load_file_sd(const ingest_file_sd *sd, group_list *gl, char *err, size_t errlen)
{
    for (size_t i = 0; i < sd->nfiles; i++) {
        glob_t g;
        int rc = glob(sd->files[i], 0, NULL, &g);
        if (rc == GLOB_NOMATCH)
            continue; /* a pattern matching nothing yet is not an error */
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot list the files of this pattern", sd->files[i]);
            return NDT_ERROR;
        }
        for (size_t f = 0; f < g.gl_pathc; f++) {
            const char *path = g.gl_pathv[f];
            rc = has_suffix_ci(path, ".json") ? load_json_file(path, gl, err, errlen)
                                              : load_yaml_file(path, gl, err, errlen);
            if (rc != NDT_OK) {
                globfree(&g);
                return NDT_ERROR;
            }
        }
        globfree(&g);
    }
    return NDT_OK;
}

/* ------------------------------------------------------------------ */
/* URLs                                                                */
/* ------------------------------------------------------------------ */

typedef struct strbuf {
    char *buf;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_put(strbuf *sb, const char *s, size_t n)
{
    if (sb->failed)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap * 2 : 128;
        while (cap < sb->len + n + 1)
            cap *= 2;
        char *grown = realloc(sb->buf, cap);
        if (!grown) {
            sb->failed = 1;
            return;
        }
        sb->buf = grown;
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

/* Go's url.PathEscape rules for a whole path, and url.QueryEscape. */
static void sb_escape(strbuf *sb, ndt_str s, int query)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        int keep = isalnum(c) || strchr("-_.~", c);
        if (!query && c && strchr("$&+,/:;=@", c))
            keep = 1;
        if (keep) {
            sb_put(sb, (const char *)&c, 1);
        } else if (query && c == ' ') {
            sb_put(sb, "+", 1);
        } else {
            char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
            sb_put(sb, esc, 3);
        }
    }
}

typedef struct query_param {
    ndt_str name;
    const ndt_str *values; /* job values, or NULL */
    size_t nvalues;
    ndt_str first;         /* overrides values[0] when set from a label */
    int has_first;
} query_param;

static int query_param_cmp(const void *a, const void *b)
{
    const query_param *x = a, *y = b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = memcmp(x->name.ptr, y->name.ptr, n);
    return c ? c : (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

/* scheme://address/path?query where the query holds the job's params
 * with each __param_<name> label replacing the first value (Prometheus's
 * Target.URL), keys sorted as Go's url.Values.Encode sorts them. */
static char *build_url(const ingest_job *job, const ingest_labelset *ls, ndt_arena *arena)
{
    strbuf sb = { 0 };
    static const ndt_str prefix = NDT_STR_LIT("__param_");
    size_t max = job->nparams + ls->n;
    query_param *qp = ndt_arena_alloc(arena, (max ? max : 1) * sizeof(*qp));
    size_t nqp = 0;
    if (!qp)
        return NULL;
    for (size_t i = 0; i < job->nparams; i++) {
        ndt_str *vals = ndt_arena_alloc(arena, (job->params[i].nvalues + 1) * sizeof(*vals));
        if (!vals)
            return NULL;
        for (size_t v = 0; v < job->params[i].nvalues; v++)
            vals[v] = ndt_str_from_cstr(job->params[i].values[v]);
        qp[nqp++] = (query_param){ ndt_str_from_cstr(job->params[i].name), vals,
                                   job->params[i].nvalues, { "", 0 }, 0 };
    }
    for (size_t i = 0; i < ls->n; i++) {
        ndt_str name = ls->labels[i].name;
        if (name.len < prefix.len || memcmp(name.ptr, prefix.ptr, prefix.len) != 0)
            continue;
        ndt_str key = { name.ptr + prefix.len, name.len - prefix.len };
        size_t j;
        for (j = 0; j < nqp && !ndt_str_eq(qp[j].name, key); j++)
            ;
        if (j == nqp)
            qp[nqp++] = (query_param){ key, NULL, 0, { "", 0 }, 0 };
        qp[j].first = ls->labels[i].value;
        qp[j].has_first = 1;
    }
    qsort(qp, nqp, sizeof(*qp), query_param_cmp);

    const ingest_label *scheme = ingest_labelset_get(ls, NDT_STR_LIT("__scheme__"));
    const ingest_label *addr = ingest_labelset_get(ls, NDT_STR_LIT("__address__"));
    const ingest_label *path = ingest_labelset_get(ls, NDT_STR_LIT("__metrics_path__"));
    sb_put(&sb, scheme->value.ptr, scheme->value.len);
    sb_put(&sb, "://", 3);
    sb_put(&sb, addr->value.ptr, addr->value.len);
    if (path && path->value.len) {
        if (path->value.ptr[0] != '/')
            sb_put(&sb, "/", 1);
        sb_escape(&sb, path->value, 0);
    }
    int first = 1;
    for (size_t i = 0; i < nqp; i++) {
        size_t n = qp[i].nvalues ? qp[i].nvalues : 1;
        for (size_t v = 0; v < n; v++) {
            ndt_str value = v == 0 && qp[i].has_first ? qp[i].first
                            : qp[i].nvalues           ? qp[i].values[v]
                                                      : (ndt_str){ "", 0 };
            sb_put(&sb, first ? "?" : "&", 1);
            first = 0;
            sb_escape(&sb, qp[i].name, 1);
            sb_put(&sb, "=", 1);
            sb_escape(&sb, value, 1);
        }
    }
    if (sb.failed) {
        free(sb.buf);
        return NULL;
    }
    return sb.buf;
}

/* ------------------------------------------------------------------ */
/* One target                                                          */
/* ------------------------------------------------------------------ */


typedef enum target_outcome {
    TARGET_KEPT,
    TARGET_DROPPED, /* by relabeling */
    TARGET_INVALID, /* skipped with a warning */
} target_outcome;

static char *arena_duration(ndt_arena *arena, int64_t ns)
{
    char buf[64];
    ndt_duration_format(ns, buf, sizeof(buf));
    return ndt_arena_strndup(arena, buf, strlen(buf));
}

static int set_if_absent(ingest_labelset *ls, ndt_str name, ndt_str value)
{
    if (ingest_labelset_get(ls, name))
        return NDT_OK;
    return ingest_labelset_set(ls, name, value);
}

/* The label set before relabeling (see the comment at the top). */
static int initial_labels(const ingest_job *job, const ingest_target_group *g, const char *addr,
                          ingest_labelset *ls)
{
    ndt_arena *arena = ls->arena;
    if (ingest_labelset_set(ls, NDT_STR_LIT("__address__"), ndt_str_from_cstr(addr)) != NDT_OK)
        return NDT_ERROR;
    for (size_t i = 0; i < g->labels.n; i++)
        if (set_if_absent(ls, g->labels.labels[i].name, g->labels.labels[i].value) != NDT_OK)
            return NDT_ERROR;
    char *interval = arena_duration(arena, job->scrape_interval_ns);
    char *timeout = arena_duration(arena, job->scrape_timeout_ns);
    if (!interval || !timeout ||
        set_if_absent(ls, NDT_STR_LIT("job"), ndt_str_from_cstr(job->job_name)) != NDT_OK ||
        set_if_absent(ls, NDT_STR_LIT("__scrape_interval__"), ndt_str_from_cstr(interval)) !=
            NDT_OK ||
        set_if_absent(ls, NDT_STR_LIT("__scrape_timeout__"), ndt_str_from_cstr(timeout)) !=
            NDT_OK ||
        set_if_absent(ls, NDT_STR_LIT("__metrics_path__"),
                      ndt_str_from_cstr(job->metrics_path)) != NDT_OK ||
        set_if_absent(ls, NDT_STR_LIT("__scheme__"), ndt_str_from_cstr(job->scheme)) != NDT_OK)
        return NDT_ERROR;
    for (size_t i = 0; i < job->nparams; i++) {
        if (!job->params[i].nvalues)
            continue;
        size_t len = strlen("__param_") + strlen(job->params[i].name);
        char *name = ndt_arena_alloc(arena, len + 1);
        if (!name)
            return NDT_ERROR;
        snprintf(name, len + 1, "__param_%s", job->params[i].name);
        /* Unlike the labels above, Prometheus 2.x sets these over whatever
         * the group says (checked against Prometheus 2.42). */
        if (ingest_labelset_set(ls, (ndt_str){ name, len },
                                ndt_str_from_cstr(job->params[i].values[0])) != NDT_OK)
            return NDT_ERROR;
    }
    return NDT_OK;
}

static void warn_invalid(const ingest_job *job, const ingest_target_group *g, const char *addr,
                         const char *why)
{
    ndt_log(NDT_LOG_WARN, "ingest", "target skipped", NDT_KV_STR("job", job->job_name),
            NDT_KV_STR("source", g->source), NDT_KV_STR("target", addr), NDT_KV_STR("reason", why));
}

/* Prometheus 2.x adds the scheme's port to an address without one. */
static int add_default_port(ingest_labelset *ls, ndt_str addr, ndt_str scheme, char *why,
                            size_t whylen)
{
    int has_port;
    if (addr.len && addr.ptr[0] == '[') {
        const char *close = memchr(addr.ptr, ']', addr.len);
        has_port = close && close + 1 < addr.ptr + addr.len;
    } else {
        has_port = memchr(addr.ptr, ':', addr.len) != NULL;
    }
    if (has_port)
        return NDT_OK;
    const char *port;
    if (ndt_str_eq_cstr(scheme, "http") || scheme.len == 0)
        port = ":80";
    else if (ndt_str_eq_cstr(scheme, "https"))
        port = ":443";
    else {
        snprintf(why, whylen, "invalid __scheme__ '%.*s' (expected http or https)",
                 (int)scheme.len, scheme.ptr);
        return NDT_AGAIN;
    }
    char *full = ndt_arena_alloc(ls->arena, addr.len + strlen(port) + 1);
    if (!full)
        return NDT_ERROR;
    memcpy(full, addr.ptr, addr.len);
    strcpy(full + addr.len, port);
    return ingest_labelset_set(ls, NDT_STR_LIT("__address__"), ndt_str_from_cstr(full));
}

static int label_duration(const ingest_labelset *ls, ndt_str name, int64_t *out)
{
    const ingest_label *l = ingest_labelset_get(ls, name);
    char buf[64];
    if (!l || l->value.len >= sizeof(buf))
        return NDT_ERROR;
    memcpy(buf, l->value.ptr, l->value.len);
    buf[l->value.len] = '\0';
    return ndt_duration_parse(buf, out);
}

/* Checks what relabeling left and completes address, instance and
 * intervals.  NDT_AGAIN with the reason in why for an invalid target. */
static int finish_target(ingest_labelset *ls, ingest_target_def *def, char *why, size_t whylen)
{
    const ingest_label *addr = ingest_labelset_get(ls, NDT_STR_LIT("__address__"));
    const ingest_label *scheme = ingest_labelset_get(ls, NDT_STR_LIT("__scheme__"));
    ndt_str scheme_value = scheme ? scheme->value : NDT_STR_LIT("http");
    if (!addr) {
        snprintf(why, whylen, "no address (__address__ is empty after relabeling)");
        return NDT_AGAIN;
    }
    if (!ndt_str_eq_cstr(scheme_value, "http") && !ndt_str_eq_cstr(scheme_value, "https")) {
        snprintf(why, whylen, "invalid __scheme__ '%.*s' (expected http or https)",
                 (int)scheme_value.len, scheme_value.ptr);
        return NDT_AGAIN;
    }
    int rc = add_default_port(ls, addr->value, scheme_value, why, whylen);
    if (rc != NDT_OK)
        return rc;
    if (!scheme && ingest_labelset_set(ls, NDT_STR_LIT("__scheme__"), scheme_value) != NDT_OK)
        return NDT_ERROR;
    addr = ingest_labelset_get(ls, NDT_STR_LIT("__address__"));
    char address[512];
    if (addr->value.len >= sizeof(address)) {
        snprintf(why, whylen, "__address__ longer than %zu bytes", sizeof(address) - 1);
        return NDT_AGAIN;
    }
    memcpy(address, addr->value.ptr, addr->value.len);
    address[addr->value.len] = '\0';
    if (ingest_scrape_check_address(address, why, whylen) != NDT_OK)
        return NDT_AGAIN;
    if (label_duration(ls, NDT_STR_LIT("__scrape_interval__"), &def->interval_ns) != NDT_OK ||
        label_duration(ls, NDT_STR_LIT("__scrape_timeout__"), &def->timeout_ns) != NDT_OK) {
        snprintf(why, whylen, "__scrape_interval__ or __scrape_timeout__ is not a duration");
        return NDT_AGAIN;
    }
    if (def->interval_ns == 0 || def->timeout_ns == 0) {
        snprintf(why, whylen, "scrape interval and timeout cannot be 0");
        return NDT_AGAIN;
    }
    if (def->timeout_ns > def->interval_ns) {
        snprintf(why, whylen, "scrape timeout cannot be greater than scrape interval");
        return NDT_AGAIN;
    }
    if (!ingest_labelset_get(ls, NDT_STR_LIT("instance")) &&
        ingest_labelset_set(ls, NDT_STR_LIT("instance"), addr->value) != NDT_OK)
        return NDT_ERROR;
    return NDT_OK;
}

static int copy_public_labels(const ingest_labelset *ls, ingest_target_def *def)
{
    for (size_t i = 0; i < ls->n; i++) {
        ndt_str name = ls->labels[i].name;
        if (name.len >= 2 && name.ptr[0] == '_' && name.ptr[1] == '_')
            continue;
        if (ingest_scrape_owned_labels_add(&def->labels, name, ls->labels[i].value) != NDT_OK)
            return NDT_ERROR;
        if (ndt_str_eq_cstr(name, "instance"))
            def->instance = def->labels.labels[def->labels.n - 1].value.ptr;
    }
    return NDT_OK;
}

/* NDT_OK with *outcome, NDT_ERROR when the arena or malloc fails; for an
 * invalid target why holds the reason. */
static int build_target(const ingest_job *job, const ingest_target_group *g, const char *addr,
                        ndt_arena *arena, ingest_target_def *def, target_outcome *outcome,
                        char *why, size_t whylen)
{
    ingest_labelset ls;
    int keep;
    ingest_labelset_init(&ls, arena);
    memset(def, 0, sizeof(*def));
    if (initial_labels(job, g, addr, &ls) != NDT_OK ||
        ingest_relabel_apply(&job->relabel_configs, &ls, &keep) != NDT_OK)
        return NDT_ERROR;
    if (!keep) {
        *outcome = TARGET_DROPPED;
        return NDT_OK;
    }
    int rc = finish_target(&ls, def, why, whylen);
    if (rc == NDT_AGAIN) {
        *outcome = TARGET_INVALID;
        return NDT_OK;
    }
    if (rc != NDT_OK || !(def->url = build_url(job, &ls, arena)) ||
        copy_public_labels(&ls, def) != NDT_OK) {
        ingest_target_def_clear(def);
        return NDT_ERROR;
    }
    def->job = job;
    *outcome = TARGET_KEPT;
    return NDT_OK;
}

int ingest_discovery_check_target(const ingest_job *job, const ingest_target_group *g,
                                  const char *addr, char *why, size_t whylen)
{
    ndt_arena arena;
    ingest_target_def def;
    target_outcome outcome;
    ndt_arena_init(&arena, 4096, DISCOVERY_ARENA_CAP);
    int rc = build_target(job, g, addr, &arena, &def, &outcome, why, whylen);
    if (rc == NDT_OK && outcome == TARGET_INVALID)
        rc = NDT_AGAIN;
    if (rc == NDT_OK && outcome == TARGET_KEPT)
        ingest_target_def_clear(&def);
    ndt_arena_free(&arena);
    return rc;
}

void ingest_target_def_clear(ingest_target_def *def)
{
    free(def->url);
    ingest_scrape_owned_labels_free(&def->labels);
    memset(def, 0, sizeof(*def));
}

void ingest_target_defs_free(ingest_target_def *defs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ingest_target_def_clear(&defs[i]);
    free(defs);
}

/* The targets found so far, deduplicated as Prometheus does (one target
 * per distinct URL and label set) through a hash table of indexes, so a
 * job with many thousands of targets stays linear. */
typedef struct target_set {
    ingest_target_def *defs;
    uint64_t *hashes; /* parallel to defs */
    size_t n, cap;
    size_t *slots;    /* index + 1, 0 = empty; nslots is a power of two */
    size_t nslots;
} target_set;

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t target_hash(const ingest_target_def *d)
{
    uint64_t h = fnv1a(14695981039346656037ULL, d->url, strlen(d->url) + 1);
    for (size_t i = 0; i < d->labels.n; i++) {
        h = fnv1a(h, d->labels.labels[i].name.ptr, d->labels.labels[i].name.len + 1);
        h = fnv1a(h, d->labels.labels[i].value.ptr, d->labels.labels[i].value.len + 1);
    }
    return h;
}

static int same_target(const ingest_target_def *a, const ingest_target_def *b)
{
    if (strcmp(a->url, b->url) != 0 || a->labels.n != b->labels.n)
        return 0;
    for (size_t i = 0; i < a->labels.n; i++)
        if (!ndt_str_eq(a->labels.labels[i].name, b->labels.labels[i].name) ||
            !ndt_str_eq(a->labels.labels[i].value, b->labels.labels[i].value))
            return 0;
    return 1;
}

/* Slot of def's hash: where an equal target sits, or the free slot. */
static size_t *target_set_slot(target_set *ts, const ingest_target_def *def, uint64_t h)
{
    size_t mask = ts->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        size_t *slot = &ts->slots[i];
        if (!*slot || (ts->hashes[*slot - 1] == h && same_target(&ts->defs[*slot - 1], def)))
            return slot;
    }
}

static int target_set_grow(target_set *ts)
{
    size_t cap = ts->cap ? ts->cap * 2 : 16;
    ingest_target_def *defs = realloc(ts->defs, cap * sizeof(*defs));
    if (!defs)
        return NDT_ERROR;
    ts->defs = defs;
    uint64_t *hashes = realloc(ts->hashes, cap * sizeof(*hashes));
    if (!hashes)
        return NDT_ERROR;
    ts->hashes = hashes;
    size_t *slots = calloc(cap * 2, sizeof(*slots)); /* load factor <= 1/2 */
    if (!slots)
        return NDT_ERROR;
    free(ts->slots);
    ts->slots = slots;
    ts->nslots = cap * 2;
    ts->cap = cap;
    for (size_t i = 0; i < ts->n; i++)
        *target_set_slot(ts, &ts->defs[i], ts->hashes[i]) = i + 1;
    return NDT_OK;
}

/* Takes def (NDT_OK), or clears it when it is a duplicate (NDT_AGAIN). */
static int target_set_add(target_set *ts, ingest_target_def *def)
{
    if (ts->n == ts->cap && target_set_grow(ts) != NDT_OK) {
        ingest_target_def_clear(def);
        return NDT_ERROR;
    }
    uint64_t h = target_hash(def);
    size_t *slot = target_set_slot(ts, def, h);
    if (*slot) {
        ingest_target_def_clear(def);
        return NDT_AGAIN;
    }
    ts->defs[ts->n] = *def;
    ts->hashes[ts->n] = h;
    *slot = ++ts->n;
    return NDT_OK;
}

static void target_set_free(target_set *ts)
{
    ingest_target_defs_free(ts->defs, ts->n);
    free(ts->hashes);
    free(ts->slots);
    memset(ts, 0, sizeof(*ts));
}

static int collect_groups(const ingest_job *job, group_list *gl, char *err, size_t errlen)
{
    for (size_t i = 0; i < job->nfile_sd; i++)
        if (load_file_sd(&job->file_sd_configs[i], gl, err, errlen) != NDT_OK)
            return NDT_ERROR;
    for (size_t i = 0; i < job->nstatic; i++)
        if (group_list_push(gl, &job->static_configs[i]) != NDT_OK)
            goto oom;
    for (size_t i = 0; i < gl->nowned; i++)
        if (group_list_push(gl, &gl->owned[i]) != NDT_OK)
            goto oom;
    return NDT_OK;
oom:
    snprintf(err, errlen, "job %s: out of memory", job->job_name);
    return NDT_ERROR;
}

int ingest_job_discover(const ingest_job *job, ingest_target_def **out, size_t *n,
                        size_t *ndropped, char *err, size_t errlen)
{
    group_list gl = { 0 };
    target_set ts = { 0 };
    ndt_arena arena;
    size_t dropped = 0;
    int rc = NDT_ERROR;

    ndt_arena_init(&arena, 64 * 1024, DISCOVERY_ARENA_CAP);
    *out = NULL;
    *n = 0;
    if (ndropped)
        *ndropped = 0;
    if (collect_groups(job, &gl, err, errlen) != NDT_OK)
        goto out;
    for (size_t gi = 0; gi < gl.n; gi++) {
        const ingest_target_group *g = gl.groups[gi];
        for (size_t ti = 0; ti < g->ntargets; ti++) {
            ingest_target_def def;
            target_outcome outcome;
            char why[NDT_ERRBUF_SIZE];
            ndt_arena_reset(&arena);
            if (build_target(job, g, g->targets[ti], &arena, &def, &outcome, why, sizeof(why)) !=
                    NDT_OK ||
                (outcome == TARGET_KEPT && target_set_add(&ts, &def) == NDT_ERROR)) {
                snprintf(err, errlen, "job %s: target %s: out of memory", job->job_name,
                         g->targets[ti]);
                goto out;
            }
            if (outcome == TARGET_DROPPED)
                dropped++;
            if (outcome == TARGET_INVALID)
                warn_invalid(job, g, g->targets[ti], why);
        }
    }
    if (job->target_limit && ts.n > job->target_limit) {
        snprintf(err, errlen, "job %s: target_limit exceeded (number of targets: %zu, limit: %llu)",
                 job->job_name, ts.n, (unsigned long long)job->target_limit);
        goto out;
    }
    *out = ts.defs;
    *n = ts.n;
    ts.defs = NULL;
    ts.n = 0;
    if (ndropped)
        *ndropped = dropped;
    rc = NDT_OK;
out:
    target_set_free(&ts);
    group_list_free(&gl);
    ndt_arena_free(&arena);
    return rc;
}
