/*
 * api_request.c: the bodies of POST /v1/whatif and POST /v1/predict, parsed
 * strictly (see api.h).
 *
 * Strict because a controller acts on the answer: an unknown field is most
 * likely a typo ("pod" for "pods") that would otherwise be silently ignored
 * and answered as a different question, so it is a 400 naming the field.
 * Numbers must be finite, integers where the model sees integers, and
 * within the bounds of api.h.  cJSON parses the (already size-capped)
 * body; nothing else here allocates.
 */
#include "api/api.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char CODE_MALFORMED[] = "malformed-json";
static const char CODE_UNKNOWN[] = "unknown-field";
static const char CODE_VALUE[] = "bad-value";

static int fail(const char **code, const char *what, char *err, size_t errlen, const char *fmt,
                const char *arg)
{
    *code = what;
    snprintf(err, errlen, fmt, arg);
    return NDT_EBADCONF;
}

/* Parses the whole body as one JSON object (trailing blanks allowed). */
static cJSON *parse_object(const char *body, size_t len, const char **code, char *err,
                           size_t errlen)
{
    const char *end = NULL;
    cJSON *root = len ? cJSON_ParseWithLengthOpts(body, len, &end, 0) : NULL;
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        if (!len)
            fail(code, CODE_MALFORMED, err, errlen, "the body is empty; expected a JSON object%s", "");
        else {
            *code = CODE_MALFORMED;
            snprintf(err, errlen, "the body is not valid JSON (near byte %zu)", at);
        }
        return NULL;
    }
    while (end && (size_t)(end - body) < len && isspace((unsigned char)*end))
        end++;
    if (end && (size_t)(end - body) < len && *end != '\0') {
        *code = CODE_MALFORMED;
        snprintf(err, errlen, "unexpected bytes after the JSON object (byte %zu)", (size_t)(end - body));
        cJSON_Delete(root);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        fail(code, CODE_MALFORMED, err, errlen, "expected a JSON object%s", "");
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* An id: a non-empty printable string shorter than API_ID_MAX. */
static int parse_id(const cJSON *item, const char *field, char *out, const char **code, char *err,
                    size_t errlen)
{
    if (!cJSON_IsString(item) || !item->valuestring[0])
        return fail(code, CODE_VALUE, err, errlen, "%s: expected a non-empty string", field);
    size_t n = strlen(item->valuestring);
    if (n >= API_ID_MAX)
        return fail(code, CODE_VALUE, err, errlen, "%s: longer than 255 bytes", field);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)item->valuestring[i] < 0x20 || item->valuestring[i] == 0x7f)
            return fail(code, CODE_VALUE, err, errlen, "%s: control characters are not allowed", field);
    memcpy(out, item->valuestring, n + 1);
    return NDT_OK;
}

/* An integer in [lo, hi] given as a JSON number. */
static int parse_int(const cJSON *item, const char *field, int lo, int hi, int *out,
                     const char **code, char *err, size_t errlen)
{
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) ||
        item->valuedouble != floor(item->valuedouble) || item->valuedouble < lo ||
        item->valuedouble > hi) {
        *code = CODE_VALUE;
        snprintf(err, errlen, "%s: expected an integer from %d to %d", field, lo, hi);
        return NDT_EBADCONF;
    }
    *out = (int)item->valuedouble;
    return NDT_OK;
}

/* A change: a number (absolute) or a string "+N" / "-N" (relative) or "N". */
static int parse_change(const cJSON *item, const char *field, int max, int allow_relative,
                        api_change_value *out, const char **code, char *err, size_t errlen)
{
    if (cJSON_IsNumber(item)) {
        out->kind = API_CHANGE_ABSOLUTE;
        return parse_int(item, field, 1, max, &out->value, code, err, errlen);
    }
    if (!cJSON_IsString(item) || !allow_relative) {
        *code = CODE_VALUE;
        snprintf(err, errlen, "%s: expected %s", field,
                 allow_relative ? "an integer, or a string \"+N\" or \"-N\"" : "an integer");
        return NDT_EBADCONF;
    }
    const char *s = item->valuestring;
    int sign = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '+' ? 1 : -1;
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 8 || s[digits] != '\0') {
        *code = CODE_VALUE;
        snprintf(err, errlen, "%s: expected \"+N\", \"-N\" or a number, got \"%.40s\"", field,
                 item->valuestring);
        return NDT_EBADCONF;
    }
    long v = strtol(s, NULL, 10);
    out->kind = sign ? API_CHANGE_RELATIVE : API_CHANGE_ABSOLUTE;
    out->value = (int)(sign ? sign * v : v);
    if (!sign && (v < 1 || v > max)) {
        *code = CODE_VALUE;
        snprintf(err, errlen, "%s: expected an integer from 1 to %d", field, max);
        return NDT_EBADCONF;
    }
    return NDT_OK;
}

int api_parse_whatif(const char *body, size_t len, api_whatif_request *out, const char **code,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    cJSON *root = parse_object(body, len, code, err, errlen);
    if (!root)
        return NDT_EBADCONF;
    int rc = NDT_OK, has_change = 0;
    for (const cJSON *f = root->child; f && rc == NDT_OK; f = f->next) {
        if (strcmp(f->string, "service") == 0) {
            rc = parse_id(f, "service", out->service, code, err, errlen);
        } else if (strcmp(f->string, "model") == 0) {
            rc = parse_id(f, "model", out->model, code, err, errlen);
        } else if (strcmp(f->string, "change") == 0) {
            has_change = 1;
            if (!cJSON_IsObject(f)) {
                rc = fail(code, CODE_VALUE, err, errlen, "change: expected an object like {\"pods\":\"+1\"}%s", "");
                break;
            }
            for (const cJSON *c = f->child; c && rc == NDT_OK; c = c->next) {
                if (strcmp(c->string, "pods") == 0)
                    rc = parse_change(c, "change.pods", API_MAX_PODS, 1, &out->pods, code, err, errlen);
                else if (strcmp(c->string, "users") == 0)
                    rc = parse_change(c, "change.users", API_MAX_USERS, 0, &out->users, code, err, errlen);
                else
                    rc = fail(code, CODE_UNKNOWN, err, errlen,
                              "change.%.60s: unknown field (a change has pods and users)", c->string);
            }
        } else {
            rc = fail(code, CODE_UNKNOWN, err, errlen,
                      "%.60s: unknown field (a what-if has service, change and model)", f->string);
        }
    }
    if (rc == NDT_OK && (!has_change || (!out->pods.kind && !out->users.kind)))
        rc = fail(code, CODE_VALUE, err, errlen,
                  "change: required, with pods and/or users, e.g. {\"change\":{\"pods\":\"+1\"}}%s", "");
    cJSON_Delete(root);
    return rc;
}

/* The state fields of /v1/predict: the dataset's column names. */
static const struct {
    const char *name;
    unsigned bit;
    size_t offset;
    int integer;
} state_fields[] = {
    { "users", API_STATE_USERS, offsetof(feat_raw, users), 1 },
    { "pods", API_STATE_PODS, offsetof(feat_raw, pods), 1 },
    { "avg_depth_on_enqueue", API_STATE_DEPTH, offsetof(feat_raw, depth), 0 },
    { "avg_backlog_sec_est", API_STATE_BACKLOG, offsetof(feat_raw, backlog_s), 0 },
    { "avg_cpu_process_pct", API_STATE_CPU_PROCESS, offsetof(feat_raw, cpu_process), 0 },
    { "avg_cpu_system_pct", API_STATE_CPU_SYSTEM, offsetof(feat_raw, cpu_system), 0 },
    { "avg_mem_system_pct", API_STATE_MEM_SYSTEM, offsetof(feat_raw, mem_system), 0 },
};

static int parse_state(const cJSON *state, api_predict_request *out, const char **code, char *err,
                       size_t errlen)
{
    if (!cJSON_IsObject(state))
        return fail(code, CODE_VALUE, err, errlen, "state: expected an object of dataset columns%s", "");
    for (const cJSON *f = state->child; f; f = f->next) {
        size_t i = 0;
        while (i < NDT_ARRAY_LEN(state_fields) && strcmp(f->string, state_fields[i].name) != 0)
            i++;
        if (i == NDT_ARRAY_LEN(state_fields))
            return fail(code, CODE_UNKNOWN, err, errlen,
                        "state.%.60s: unknown field (see docs/API.md for the state's columns)", f->string);
        char field[64];
        snprintf(field, sizeof(field), "state.%s", state_fields[i].name);
        char *dst = (char *)&out->state + state_fields[i].offset;
        if (state_fields[i].integer) {
            int max = state_fields[i].bit == API_STATE_PODS ? API_MAX_PODS : API_MAX_USERS;
            if (parse_int(f, field, 1, max, (int *)dst, code, err, errlen) != NDT_OK)
                return NDT_EBADCONF;
        } else {
            if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble) || f->valuedouble < 0 ||
                f->valuedouble > 1e12)
                return fail(code, CODE_VALUE, err, errlen, "%s: expected a finite number >= 0", field);
            *(double *)dst = f->valuedouble;
        }
        out->present |= state_fields[i].bit;
    }
    return NDT_OK;
}

int api_parse_predict(const char *body, size_t len, api_predict_request *out, const char **code,
                      char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    cJSON *root = parse_object(body, len, code, err, errlen);
    if (!root)
        return NDT_EBADCONF;
    int rc = NDT_OK;
    for (const cJSON *f = root->child; f && rc == NDT_OK; f = f->next) {
        if (strcmp(f->string, "service") == 0)
            rc = parse_id(f, "service", out->service, code, err, errlen);
        else if (strcmp(f->string, "model") == 0)
            rc = parse_id(f, "model", out->model, code, err, errlen);
        else if (strcmp(f->string, "state") == 0)
            rc = parse_state(f, out, code, err, errlen);
        else
            rc = fail(code, CODE_UNKNOWN, err, errlen,
                      "%.60s: unknown field (a prediction has service, state and model)", f->string);
    }
    cJSON_Delete(root);
    return rc;
}

void api_predict_fill(api_predict_request *req, const feat_raw *current)
{
    if (!current)
        return;
    for (size_t i = 0; i < NDT_ARRAY_LEN(state_fields); i++) {
        if (req->present & state_fields[i].bit)
            continue;
        size_t size = state_fields[i].integer ? sizeof(int) : sizeof(double);
        memcpy((char *)&req->state + state_fields[i].offset,
               (const char *)current + state_fields[i].offset, size);
        req->present |= state_fields[i].bit;
    }
    req->state.timestamp_ms = current->timestamp_ms;
}

static int resolve(const api_change_value *v, int current, int max, const char *field, int *out,
                   char *err, size_t errlen)
{
    long value = v->kind == API_CHANGE_RELATIVE ? (long)current + v->value : v->value;
    if (value < 1 || value > max) {
        snprintf(err, errlen, "change.%s: the result would be %ld %s; it must be from 1 to %d", field,
                 value, field, max);
        return NDT_EBADCONF;
    }
    *out = (int)value;
    return NDT_OK;
}

int api_whatif_change(const api_whatif_request *req, const feat_raw *current, model_change *out,
                      char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (req->pods.kind) {
        out->has_pods = 1;
        if (resolve(&req->pods, current->pods, API_MAX_PODS, "pods", &out->pods, err, errlen) != NDT_OK)
            return NDT_EBADCONF;
    }
    if (req->users.kind) {
        out->has_users = 1;
        if (resolve(&req->users, current->users, API_MAX_USERS, "users", &out->users, err, errlen) != NDT_OK)
            return NDT_EBADCONF;
    }
    if (!out->has_pods && !out->has_users) {
        snprintf(err, errlen, "change: nothing to change");
        return NDT_EBADCONF;
    }
    return NDT_OK;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil), so parsing never depends on the process's TZ. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

int api_parse_rfc3339(const char *s, int64_t *out_ms)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, mo, d, h, mi, sec, frac_ms = 0;
    if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return NDT_EBADCONF;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return NDT_EBADCONF;
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        if (n == 0)
            return NDT_EBADCONF;
        for (; n < 3; n++)
            frac_ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return NDT_EBADCONF;
        offset_min = (oh * 60 + om) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return NDT_EBADCONF;
    }
    if (*p)
        return NDT_EBADCONF;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return NDT_OK;
}

void api_format_rfc3339(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Four-digit years whatever strftime's %Y does before year 1000. */
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - (int64_t)t * 1000));
}

int api_token_equal(const char *given, size_t given_len, const char *want, size_t want_len)
{
    /* Every byte of the expected token is looked at whatever the input;
     * a length mismatch only changes the final answer. */
    unsigned char diff = given_len != want_len;
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)want[i]);
    }
    return diff == 0;
}
