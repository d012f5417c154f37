/*
 * log.h: structured logging to stderr, logfmt by default, JSON lines on
 * request (--log-format json).
 *
 * Every line carries ts, level, stage and msg, then typed key/value pairs:
 *
 *   ndt_log(NDT_LOG_WARN, "ingest", "scrape failed",
 *           NDT_KV_STR("target", url), NDT_KV_INT("status", 503));
 *
 * The pairs are a compound-literal array, so the call is type-checked and
 * needs no format string.  Values are quoted and escaped as the format
 * requires.  Secrets must never be passed in: callers log redacted URLs
 * (ndt_log_redact_url) and never tokens or passwords.
 */
#ifndef NDT_LOG_H
#define NDT_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum ndt_log_level {
    NDT_LOG_DEBUG = 0,
    NDT_LOG_INFO,
    NDT_LOG_WARN,
    NDT_LOG_ERROR,
} ndt_log_level;

typedef enum ndt_log_format {
    NDT_LOG_LOGFMT = 0,
    NDT_LOG_JSON,
} ndt_log_format;

typedef enum ndt_kv_type {
    NDT_KV_T_NONE = 0,
    NDT_KV_T_STR,
    NDT_KV_T_INT,
    NDT_KV_T_UINT,
    NDT_KV_T_DOUBLE,
    NDT_KV_T_BOOL,
} ndt_kv_type;

typedef struct ndt_kv {
    const char *key;
    ndt_kv_type type;
    const char *s;
    int64_t i;
    uint64_t u;
    double d;
} ndt_kv;

#define NDT_KV_STR(k, v) ((ndt_kv){ .key = (k), .type = NDT_KV_T_STR, .s = (v) })
#define NDT_KV_INT(k, v) ((ndt_kv){ .key = (k), .type = NDT_KV_T_INT, .i = (int64_t)(v) })
#define NDT_KV_UINT(k, v) ((ndt_kv){ .key = (k), .type = NDT_KV_T_UINT, .u = (uint64_t)(v) })
#define NDT_KV_DOUBLE(k, v) ((ndt_kv){ .key = (k), .type = NDT_KV_T_DOUBLE, .d = (double)(v) })
#define NDT_KV_BOOL(k, v) ((ndt_kv){ .key = (k), .type = NDT_KV_T_BOOL, .i = !!(v) })

/* The first element is a placeholder so that a call with no pairs compiles. */
#define ndt_log(level, stage, msg, ...)                                        \
    ndt_log_kv((level), (stage), (msg),                                        \
               (const ndt_kv[]){ { .type = NDT_KV_T_NONE }, ##__VA_ARGS__ },   \
               sizeof((const ndt_kv[]){ { .type = NDT_KV_T_NONE }, ##__VA_ARGS__ }) / sizeof(ndt_kv))

void ndt_log_kv(ndt_log_level level, const char *stage, const char *msg,
                const ndt_kv *kvs, size_t nkvs);

void ndt_log_set_level(ndt_log_level level);
void ndt_log_set_format(ndt_log_format format);
int ndt_log_enabled(ndt_log_level level);

/* Parses "debug|info|warn|error" and "logfmt|json"; NDT_OK or NDT_ERROR. */
int ndt_log_parse_level(const char *s, ndt_log_level *out);
int ndt_log_parse_format(const char *s, ndt_log_format *out);

/* Copies url into buf with any user:password@ part replaced by "xxx@". */
void ndt_log_redact_url(const char *url, char *buf, size_t size);

#endif
