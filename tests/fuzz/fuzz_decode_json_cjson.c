/*
 * fuzz_decode_json_cjson.c: the json decoder (decode_json.c, a reader
 * written for the adapter's shape) differential against cJSON, the
 * design's JSON library.
 *
 * Whenever decode_json accepts a message, cJSON must parse the same bytes
 * as one JSON object, and what cJSON finds there must be what decode_json
 * handed out: the name ("name", else labels.__name__), every other label
 * with its value, the value bit for bit (a string read with ingest's
 * number parser, a bare number as cJSON's strtod reads it; NaN as NaN)
 * and the timestamp (cJSON's string, re-encoded by cJSON into a minimal
 * message, reads to the same millisecond).  decode_json is stricter than
 * cJSON (repeated keys, control bytes in strings, blanks other than
 * JSON's, nesting past 32, numbers cJSON's strtod would take such as 01
 * or 1.), so it may refuse what cJSON accepts, never the other way round,
 * with two exceptions on purpose: a lone UTF-16 surrogate in a \u escape
 * (decode_json reads U+FFFD, as Go's decoder does; cJSON refuses) and a
 * bare number longer than cJSON 1.7.15's 63-byte number buffer.  cJSON
 * hands C strings, so strings are compared up to an escaped NUL.
 *
 * fuzz-sources: harmonize/decode*.c harmonize/histogram.c common/number.c common/buf.c
 * fuzz-libs: -lcjson
 * fuzz-seeds: tests/fuzz/seeds-decode tests/fuzz/seeds-json
 */
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harmonize/decode.h"
#include "common/number.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LABELS HDL_DECODE_MAX_LABELS

/* A deep copy of the sample decode_json handed out (a view dies with the
 * call). */
typedef struct got {
    int n;
    char *name;
    size_t nlabels;
    char *lname[MAX_LABELS], *lvalue[MAX_LABELS];
    double value;
    int64_t ts_ms;
} got;

static char *upto_nul_dup(ndt_str s)
{
    size_t n = 0;
    while (n < s.len && s.ptr[n])
        n++;
    char *p = malloc(n + 1);
    if (!p)
        abort();
    memcpy(p, s.ptr, n);
    p[n] = 0;
    return p;
}

static int keep(void *ctx, const hdl_sample *s)
{
    got *g = ctx;
    g->n++;
    g->name = upto_nul_dup(s->name);
    g->nlabels = s->nlabels;
    for (size_t i = 0; i < s->nlabels; i++) {
        g->lname[i] = upto_nul_dup(s->labels[i].name);
        g->lvalue[i] = upto_nul_dup(s->labels[i].value);
    }
    g->value = s->value;
    g->ts_ms = s->ts_ms;
    return NDT_OK;
}

static void got_free(got *g)
{
    free(g->name);
    for (size_t i = 0; i < g->nlabels; i++) {
        free(g->lname[i]);
        free(g->lvalue[i]);
    }
}

/* The two documented differences: a \u escape of a surrogate, a digit run
 * longer than cJSON's number buffer. */
static int cjson_may_refuse(const uint8_t *p, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 3 < n && p[i] == '\\' && p[i + 1] == 'u' && (p[i + 2] | 0x20) == 'd' &&
            strchr("89abcdefABCDEF", p[i + 3]) && p[i + 3])
            return 1;
        run = (p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == 'e' || p[i] == 'E' ||
                      p[i] == '+' || p[i] == '-'
                  ? run + 1
                  : 0;
        if (run >= 60)
            return 1;
    }
    return 0;
}

static int cmp_label(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static int64_t timestamp_via_decoder(const char *ts)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "timestamp", ts) ||
        !cJSON_AddStringToObject(o, "value", "0") || !cJSON_AddStringToObject(o, "name", "x"))
        abort();
    char *text = cJSON_PrintUnformatted(o);
    if (!text)
        abort();
    got g = { 0 };
    char err[NDT_ERRBUF_SIZE];
    if (hdl_decode(HDL_FORMAT_JSON, text, strlen(text), keep, &g, err, sizeof(err)) != NDT_OK ||
        g.n != 1)
        abort(); /* the same string was read as a timestamp before */
    int64_t ms = g.ts_ms;
    got_free(&g);
    free(text);
    cJSON_Delete(o);
    return ms;
}

static void compare(const got *g, const cJSON *root)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(root, "labels");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(root, "value");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "timestamp");
    if (!value || !cJSON_IsString(ts))
        abort();
    const char *want_name = NULL;
    const cJSON *l;
    size_t n = 0;
    static const cJSON *sorted[MAX_LABELS + 1];
    cJSON_ArrayForEach(l, labels)
    {
        if (!cJSON_IsString(l))
            abort();
        if (strcmp(l->string, "__name__") == 0) {
            want_name = l->valuestring;
            continue;
        }
        if (n == MAX_LABELS)
            abort();
        sorted[n++] = l;
    }
    if (cJSON_IsString(name))
        want_name = name->valuestring;
    if (!want_name || strcmp(want_name, g->name) != 0)
        abort();
    /* Byte order equals strcmp order for strings without a NUL; two names
     * equal up to an escaped NUL cannot be told apart here. */
    qsort(sorted, n, sizeof(sorted[0]), cmp_label);
    if (n != g->nlabels)
        abort();
    for (size_t i = 0; i < n; i++) {
        int same_order = strcmp(sorted[i]->string, g->lname[i]) == 0 &&
                         strcmp(sorted[i]->valuestring, g->lvalue[i]) == 0;
        if (!same_order) {
            int found = 0; /* names that differ only past a NUL */
            for (size_t k = 0; k < n && !found; k++)
                found = strcmp(sorted[k]->string, g->lname[i]) == 0 &&
                        strcmp(sorted[k]->valuestring, g->lvalue[i]) == 0;
            if (!found)
                abort();
        }
    }
    double want;
    if (cJSON_IsNumber(value)) {
        want = value->valuedouble;
    } else if (cJSON_IsString(value)) {
        if (ndt_number_parse_float(value->valuestring, strlen(value->valuestring), &want) !=
            NDT_OK) {
            /* Only an escaped NUL can make the C string differ. */
            return;
        }
    } else {
        abort();
    }
    if (isnan(want) ? !isnan(g->value) : memcmp(&want, &g->value, sizeof(want)) != 0)
        abort();
    if (strlen(ts->valuestring) >= 20 && timestamp_via_decoder(ts->valuestring) != g->ts_ms)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    got g = { 0 };
    char err[NDT_ERRBUF_SIZE];
    int rc = hdl_decode(HDL_FORMAT_JSON, data, size, keep, &g, err, sizeof(err));
    if (rc == NDT_OK) {
        char *copy = malloc(size + 1); /* cJSON wants the NUL inside its length */
        if (!copy)
            abort();
        memcpy(copy, data, size);
        copy[size] = 0;
        cJSON *root = cJSON_ParseWithLengthOpts(copy, size + 1, NULL, 1);
        if (!root) {
            if (!cjson_may_refuse(data, size))
                abort(); /* decode_json accepted what a JSON parser refuses */
        } else {
            if (!cJSON_IsObject(root) || g.n != 1)
                abort();
            compare(&g, root);
            cJSON_Delete(root);
        }
        free(copy);
    }
    got_free(&g);
    return 0;
}
