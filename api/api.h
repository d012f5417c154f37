/*
 * api.h: the what-if API of `ndtpipe serve` (docs/API.md), the twin's face
 * to controllers and people: its current entities (NGSI-LD), its graph,
 * the model registry, predictions and what-if answers.
 *
 * One server (api_server.c) on libmicrohttpd; an engine behind it that
 * owns the UDR handle and the served model (api_engine.c), neither of
 * which is thread-safe (udr.h, models.h): every use of them happens under
 * one lock, while HTTP parsing, authentication and metrics run in
 * parallel on MHD's thread pool.  Answers are computed from the gated
 * model only: a model whose registry entry has no deployment_grade of
 * Excellent or Reliable (written by `ndtpipe validate`) is never served.
 *
 * The request parsers are pure functions of the body so that they can be
 * unit-tested and fuzzed without a server.  They never read outside the
 * body, never allocate without bound (bodies are capped before parsing),
 * and on failure name the problem in err and hand back a short error code.
 */
#ifndef NDT_API_H
#define NDT_API_H

#include <stddef.h>
#include <stdint.h>

#include "common/ndt.h"
#include "features/features.h"
#include "models/models.h"

#define API_DEFAULT_LISTEN "127.0.0.1:8080"
#define API_DEFAULT_MAX_BODY (64u << 10)
#define API_DEFAULT_TIMEOUT_S 10
#define API_DEFAULT_THREADS 2
#define API_DEFAULT_MAX_STATE_AGE_MS 60000
#define API_DEFAULT_STATE_REFRESH_MS 100
/* An id (service, model) longer than this is refused, not truncated. */
#define API_ID_MAX 256
/* Bounds of what a what-if may ask for: beyond them the model has never
 * seen anything alike, and a typo ("pods":4000) should not look valid. */
#define API_MAX_PODS 10000
#define API_MAX_USERS 100000
/* Actuation (api_actuate.c): replicas searched, the scale-down band, how
 * often an unchanged recommendation is published again. */
#define API_DEFAULT_MAX_REPLICAS 10
#define API_MAX_REPLICAS_SPAN 64
#define API_DEFAULT_SCALE_DOWN_MARGIN 0.10
#define API_DEFAULT_ACTIONS_INTERVAL_MS 10000
#define API_DEFAULT_SCALE_DOWN_WINDOW_MS 60000
#define API_MAX_SCALE_DOWN_WINDOW_MS 300000
#define API_DEFAULT_ACTIONS_TOPIC "ndt.actions"

struct ndt_kafka_opts;

typedef struct api_options {
    const char *listen;        /* HOST:PORT; NULL: API_DEFAULT_LISTEN */
    const char *registry;      /* the model registry directory */
    const char *udr_url;       /* the twin's state (udr.h URL) */
    const char *token;         /* NULL: no authentication */
    const char *model_id;      /* NULL: the newest gated model */
    size_t max_body_bytes;     /* 0: API_DEFAULT_MAX_BODY */
    int timeout_s;             /* idle connection timeout; 0: default */
    int threads;               /* MHD thread pool; 0: default */
    int max_state_age_ms;      /* older twin state is stale; 0: default */
    int state_refresh_ms;      /* how often the state is read again; 0: default */
    const volatile int *stop;  /* api_server_run returns once *stop */
    /* Actuation: off unless objective_ms > 0 (docs/API.md, "Actuation"). */
    double objective_ms;       /* mean latency objective */
    int min_replicas;          /* 0: 1 */
    int max_replicas;          /* 0: API_DEFAULT_MAX_REPLICAS */
    double scale_down_margin;  /* 0: API_DEFAULT_SCALE_DOWN_MARGIN; <0: none */
    int scale_down_window_ms;  /* 0: API_DEFAULT_SCALE_DOWN_WINDOW_MS; <0: none */
    int actions_interval_ms;   /* 0: API_DEFAULT_ACTIONS_INTERVAL_MS */
    const char *actions_brokers; /* NULL: recommendations over HTTP only */
    const char *actions_topic;   /* NULL: API_DEFAULT_ACTIONS_TOPIC */
    const struct ndt_kafka_opts *actions_xopts; /* -X, may be NULL */
} api_options;

typedef struct api_server api_server;

/* Opens the UDR, loads the model (or notes why none is servable: the
 * server then runs and answers 503) and starts serving on MHD's threads
 * at once.  NDT_EBADCONF for options the user must fix.  A process that
 * runs several stages (`ndtpipe run`) needs only new, port and destroy;
 * api_server_run is the foreground loop of `ndtpipe serve`. */
int api_server_new(const api_options *opts, api_server **out, char *err, size_t errlen);
int api_server_port(const api_server *s);
/* Serves until *opts->stop, then stops taking connections. */
int api_server_run(api_server *s);
void api_server_destroy(api_server *s);

/* ---- request parsing (api_request.c) ---------------------------------- */

typedef enum api_change_kind {
    API_CHANGE_NONE = 0,
    API_CHANGE_ABSOLUTE, /* 4 or "4" */
    API_CHANGE_RELATIVE, /* "+1", "-2" */
} api_change_kind;

typedef struct api_change_value {
    api_change_kind kind;
    int value;
} api_change_value;

typedef struct api_whatif_request {
    char service[API_ID_MAX]; /* "" when omitted */
    char model[API_ID_MAX];   /* "" when omitted */
    api_change_value pods;
    api_change_value users;
} api_whatif_request;

/* The state fields of /v1/predict, named like the dataset's columns. */
enum {
    API_STATE_USERS = 1u << 0,
    API_STATE_PODS = 1u << 1,
    API_STATE_DEPTH = 1u << 2,
    API_STATE_BACKLOG = 1u << 3,
    API_STATE_CPU_PROCESS = 1u << 4,
    API_STATE_CPU_SYSTEM = 1u << 5,
    API_STATE_MEM_SYSTEM = 1u << 6,
    API_STATE_ALL = (1u << 7) - 1,
};

typedef struct api_predict_request {
    char service[API_ID_MAX];
    char model[API_ID_MAX];
    feat_raw state;     /* the fields given (bits in present) */
    unsigned present;
} api_predict_request;

/* Parse errors: NDT_EBADCONF with *code one of "malformed-json",
 * "unknown-field", "bad-value" (all answered 400) and a sentence in err. */
int api_parse_whatif(const char *body, size_t len, api_whatif_request *out, const char **code,
                     char *err, size_t errlen);
int api_parse_predict(const char *body, size_t len, api_predict_request *out, const char **code,
                      char *err, size_t errlen);
/* Fills the missing fields of req->state from current (NULL: none). */
void api_predict_fill(api_predict_request *req, const feat_raw *current);

/* Turns a what-if's change into the absolute change of models.h ("+1"
 * becomes current pods + 1).  NDT_EBADCONF when the result is out of
 * [1, API_MAX_*] or the request changes nothing. */
int api_whatif_change(const api_whatif_request *req, const feat_raw *current, model_change *out,
                      char *err, size_t errlen);

/* "2026-01-02T03:04:05[.678](Z|+01:00)" to Unix ms; NDT_EBADCONF otherwise. */
int api_parse_rfc3339(const char *s, int64_t *out_ms);
/* Unix ms to "2026-01-02T03:04:05.678Z" (buf of at least 32 bytes). */
void api_format_rfc3339(int64_t ms, char *buf, size_t size);

/* Compares a presented secret with the expected one in time that depends
 * only on the lengths, so a client cannot find the token byte by byte. */
int api_token_equal(const char *given, size_t given_len, const char *want, size_t want_len);

#endif
