/*
 * api_registry.c: what the API reads from the model registry
 * (models/model_registry.c writes it): the list of model.json files for
 * GET /v1/models and the deployment gate.
 *
 * The gate is the top-level "deployment_grade" that `ndtpipe validate`
 * adds to model.json: only "Excellent" and "Reliable" models are served
 * (paper 002's matched-pairs validation); a model never validated, or
 * graded "Unreliable", is listed but never answers a what-if.  Entries are
 * read fresh on every call: they are a few kB, the listing is rare, and
 * `validate` may grade a model while the server runs.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "common/file.h"
#include "api/api_internal.h"

#define API_MODEL_JSON_MAX (4u << 20)
#define API_REGISTRY_MAX_MODELS 4096

int api_grade_servable(const char *grade)
{
    return strcmp(grade, "Excellent") == 0 || strcmp(grade, "Reliable") == 0;
}

/* A registry entry name: what model_registry_load accepts. */
static int entry_name_ok(const char *id)
{
    return id[0] && id[0] != '.' && !strchr(id, '/') && strlen(id) < 64;
}

static int load_entry(const char *dir, const char *id, api_model_entry *e, char **text,
                      size_t *len)
{
    char path[PATH_MAX];
    if (!entry_name_ok(id))
        return NDT_EBADCONF;
    snprintf(path, sizeof(path), "%s/%s/model.json", dir, id);
    char *buf = NULL;
    size_t n = 0;
    char why[NDT_ERRBUF_SIZE];
    if (ndt_file_read(path, API_MODEL_JSON_MAX, &buf, &n, why, sizeof(why)) != NDT_OK)
        return NDT_EBADCONF; /* the callers skip or name the entry themselves */
    cJSON *root = cJSON_ParseWithLength(buf, n);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        free(buf);
        return NDT_ERROR;
    }
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    const cJSON *grade = cJSON_GetObjectItemCaseSensitive(root, "deployment_grade");
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(root, "created");
    if (cJSON_IsString(grade))
        snprintf(e->grade, sizeof(e->grade), "%s", grade->valuestring);
    if (cJSON_IsString(created))
        snprintf(e->created, sizeof(e->created), "%s", created->valuestring);
    cJSON_Delete(root);
    if (text) {
        *text = buf;
        *len = n;
    } else {
        free(buf);
    }
    return NDT_OK;
}

/* Newest first: by creation time, then id (ids embed the time too). */
static int entry_newer_first(const void *a, const void *b)
{
    const api_model_entry *x = a, *y = b;
    int c = strcmp(y->created, x->created);
    return c ? c : strcmp(y->id, x->id);
}

/* Every readable entry of dir, newest first (*out malloc'ed). */
static int scan(const char *dir, api_model_entry **out, size_t *n, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "--registry %s: %s", dir, strerror(errno));
        return NDT_EBADCONF;
    }
    api_model_entry *list = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) && count < API_REGISTRY_MAX_MODELS) {
        api_model_entry e;
        if (load_entry(dir, de->d_name, &e, NULL, NULL) != NDT_OK)
            continue; /* temporary directories, stray files, foreign entries */
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            api_model_entry *grown = realloc(list, ncap * sizeof(*list));
            if (!grown)
                break;
            list = grown;
            cap = ncap;
        }
        list[count++] = e;
    }
    closedir(d);
    if (count)
        qsort(list, count, sizeof(*list), entry_newer_first);
    *out = list;
    *n = count;
    return NDT_OK;
}

int api_registry_pick(const char *dir, const char *want_id, api_model_entry *out, char *err,
                      size_t errlen)
{
    if (want_id) {
        int rc = load_entry(dir, want_id, out, NULL, NULL);
        if (rc != NDT_OK) {
            snprintf(err, errlen, "--model %s: no such model in %s", want_id, dir);
            return NDT_AGAIN;
        }
        if (!api_grade_servable(out->grade)) {
            snprintf(err, errlen, "model %s has deployment grade '%s'; only Excellent or Reliable "
                     "models are served (ndtpipe validate grades them)", want_id,
                     out->grade[0] ? out->grade : "none");
            return NDT_AGAIN;
        }
        return NDT_OK;
    }
    api_model_entry *list;
    size_t n;
    int rc = scan(dir, &list, &n, err, errlen);
    if (rc != NDT_OK)
        return rc;
    rc = NDT_AGAIN;
    for (size_t i = 0; i < n; i++) {
        if (api_grade_servable(list[i].grade)) {
            *out = list[i];
            rc = NDT_OK;
            break;
        }
    }
    if (rc == NDT_AGAIN)
        snprintf(err, errlen, "no model in %s has a deployment grade of Excellent or Reliable "
                 "(%zu model(s); ndtpipe validate grades them)", dir, n);
    free(list);
    return rc;
}

int api_registry_list(const char *dir, const char *served, ndt_buf *out, char *err, size_t errlen)
{
    api_model_entry *list;
    size_t n;
    int rc = scan(dir, &list, &n, err, errlen);
    if (rc != NDT_OK)
        return rc;
    int ok = ndt_buf_append_str(out, "{\"served\":") == NDT_OK;
    ok = ok && (served ? api_json_string(out, served) : ndt_buf_append_str(out, "null")) == NDT_OK;
    ok = ok && ndt_buf_append_str(out, ",\"models\":[") == NDT_OK;
    size_t written = 0;
    for (size_t i = 0; ok && i < n; i++) {
        char *text;
        size_t len;
        api_model_entry e;
        if (load_entry(dir, list[i].id, &e, &text, &len) != NDT_OK)
            continue; /* removed since the scan */
        ok = (!written || ndt_buf_append_char(out, ',') == NDT_OK) &&
             ndt_buf_append(out, text, len) == NDT_OK;
        written++;
        free(text);
    }
    ok = ok && ndt_buf_append_str(out, "]}\n") == NDT_OK;
    free(list);
    if (!ok) {
        snprintf(err, errlen, "the registry listing is larger than the response limit");
        return NDT_ERROR;
    }
    return NDT_OK;
}

int api_registry_get(const char *dir, const char *id, ndt_buf *out, char *err, size_t errlen)
{
    api_model_entry e;
    char *text;
    size_t len;
    int rc = load_entry(dir, id, &e, &text, &len);
    if (rc != NDT_OK) {
        snprintf(err, errlen, "no model '%.100s' in the registry", id);
        return NDT_EBADCONF;
    }
    rc = ndt_buf_append(out, text, len) == NDT_OK && ndt_buf_append_char(out, '\n') == NDT_OK
             ? NDT_OK : NDT_ERROR;
    free(text);
    if (rc != NDT_OK)
        snprintf(err, errlen, "model.json is larger than the response limit");
    return rc;
}
