/*
 * log.c: logfmt / JSON line writer, see log.h.
 *
 * A line is assembled in a stack buffer and written with one write(2), so
 * lines from different threads (librdkafka callbacks log too) never
 * interleave.  Over-long lines are truncated with "..." rather than split.
 */
#include "log.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ndt.h"

#define LOG_LINE_MAX 4096

static ndt_log_level log_min_level = NDT_LOG_INFO;
static ndt_log_format log_format = NDT_LOG_LOGFMT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void ndt_log_set_level(ndt_log_level level) { log_min_level = level; }
void ndt_log_set_format(ndt_log_format format) { log_format = format; }
int ndt_log_enabled(ndt_log_level level) { return level >= log_min_level; }

int ndt_log_parse_level(const char *s, ndt_log_level *out)
{
    for (size_t i = 0; i < NDT_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (ndt_log_level)i;
            return NDT_OK;
        }
    }
    return NDT_ERROR;
}

int ndt_log_parse_format(const char *s, ndt_log_format *out)
{
    if (strcmp(s, "logfmt") == 0) {
        *out = NDT_LOG_LOGFMT;
        return NDT_OK;
    }
    if (strcmp(s, "json") == 0) {
        *out = NDT_LOG_JSON;
        return NDT_OK;
    }
    return NDT_ERROR;
}

typedef struct line_buf {
    char data[LOG_LINE_MAX];
    size_t len;
    int truncated;
} line_buf;

static void put_bytes(line_buf *b, const char *s, size_t n)
{
    size_t room = sizeof(b->data) - 5 - b->len; /* keep space for "...\n" */
    if (n > room) {
        n = room;
        b->truncated = 1;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void put_str(line_buf *b, const char *s) { put_bytes(b, s, strlen(s)); }

static void put_char(line_buf *b, char c) { put_bytes(b, &c, 1); }

static int logfmt_needs_quotes(const char *s)
{
    if (*s == '\0')
        return 1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c >= 0x7f)
            return 1;
    }
    return 0;
}

/* Escapes for a double-quoted string; shared by logfmt and JSON. */
static void put_quoted(line_buf *b, const char *s)
{
    put_char(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        switch (c) {
        case '"': put_str(b, "\\\""); break;
        case '\\': put_str(b, "\\\\"); break;
        case '\n': put_str(b, "\\n"); break;
        case '\r': put_str(b, "\\r"); break;
        case '\t': put_str(b, "\\t"); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                put_str(b, esc);
            } else {
                put_char(b, (char)c);
            }
        }
    }
    put_char(b, '"');
}

static void format_value(const ndt_kv *kv, char *tmp, size_t size)
{
    switch (kv->type) {
    case NDT_KV_T_INT: snprintf(tmp, size, "%lld", (long long)kv->i); break;
    case NDT_KV_T_UINT: snprintf(tmp, size, "%llu", (unsigned long long)kv->u); break;
    case NDT_KV_T_DOUBLE:
        if (isfinite(kv->d))
            snprintf(tmp, size, "%.17g", kv->d);
        else
            snprintf(tmp, size, "%s", isnan(kv->d) ? "NaN" : (kv->d > 0 ? "+Inf" : "-Inf"));
        break;
    case NDT_KV_T_BOOL: snprintf(tmp, size, "%s", kv->i ? "true" : "false"); break;
    default: tmp[0] = '\0'; break;
    }
}

static void put_pair(line_buf *b, const char *key, const ndt_kv *kv, const char *str)
{
    char tmp[64];
    int is_string = !kv || kv->type == NDT_KV_T_STR;
    const char *value = str;

    if (!is_string) {
        format_value(kv, tmp, sizeof(tmp));
        value = tmp;
        /* JSON has no NaN/Inf literal: emit them as strings. */
        if (log_format == NDT_LOG_JSON && kv->type == NDT_KV_T_DOUBLE && !isfinite(kv->d))
            is_string = 1;
    }
    if (!value)
        value = "";
    if (log_format == NDT_LOG_JSON) {
        put_str(b, b->len > 1 ? "," : "");
        put_quoted(b, key);
        put_char(b, ':');
        if (is_string)
            put_quoted(b, value);
        else
            put_str(b, value);
    } else {
        if (b->len)
            put_char(b, ' ');
        put_str(b, key);
        put_char(b, '=');
        if (logfmt_needs_quotes(value))
            put_quoted(b, value);
        else
            put_str(b, value);
    }
}

void ndt_log_kv(ndt_log_level level, const char *stage, const char *msg,
                const ndt_kv *kvs, size_t nkvs)
{
    if (!ndt_log_enabled(level))
        return;

    line_buf b;
    b.len = 0;
    b.truncated = 0;

    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

    if (log_format == NDT_LOG_JSON)
        put_char(&b, '{');
    put_pair(&b, "ts", NULL, ts);
    put_pair(&b, "level", NULL, level_names[level]);
    if (stage)
        put_pair(&b, "stage", NULL, stage);
    put_pair(&b, "msg", NULL, msg);
    for (size_t i = 0; i < nkvs; i++) {
        if (kvs[i].type == NDT_KV_T_NONE || !kvs[i].key)
            continue;
        put_pair(&b, kvs[i].key, &kvs[i], kvs[i].s);
    }
    if (log_format == NDT_LOG_JSON)
        put_char(&b, '}');
    if (b.truncated) {
        memcpy(b.data + b.len, "...", 3);
        b.len += 3;
    }
    b.data[b.len++] = '\n';

    ssize_t off = 0;
    while ((size_t)off < b.len) {
        ssize_t w = write(STDERR_FILENO, b.data + off, b.len - (size_t)off);
        if (w <= 0)
            break;
        off += w;
    }
}

void ndt_log_redact_url(const char *url, char *buf, size_t size)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    const char *at = NULL;
    for (const char *p = host; *p && *p != '/' && *p != '?' && *p != '#'; p++) {
        if (*p == '@')
            at = p;
    }
    if (!at) {
        snprintf(buf, size, "%s", url);
        return;
    }
    snprintf(buf, size, "%.*sxxx%s", (int)(host - url), url, at);
}
