/*
 * api_internal.h: how the pieces of the API module talk to each other.
 *
 *   api_server.c    HTTP: routes, limits, authentication, errors (MHD threads)
 *   api_metrics.c   request counters and the latency histogram (lock-free)
 *   api_engine.c    the served model, the twin's state (refresher thread), the memo
 *   api_registry.c  the registry's model.json files: listing, the gate
 *   api_twin.c      NGSI-LD entities and the graph, read from the UDR
 *   api_actuate.c   recommendations: the replica search, ndt.actions, KEDA
 *
 * An answer is a status plus either a JSON body or an error code and a
 * sentence; api_server.c turns the latter into {"error","detail"}.
 */
#ifndef NDT_API_INTERNAL_H
#define NDT_API_INTERNAL_H

#include <stdint.h>

#include "api/api.h"
#include "common/buf.h"
#include "udr/udr.h"

/* Responses larger than this are refused with 500 rather than building
 * an unbounded body (a twin of a few thousand entities is ~2 MB). */
#define API_MAX_RESPONSE (64u << 20)

typedef struct api_answer {
    unsigned status;     /* HTTP status */
    const char *code;    /* non-NULL: an error; detail says why */
    char detail[384];
    ndt_buf *body;       /* the JSON body of a success */
} api_answer;

/* Sets an error answer; returns status for `return api_fail(...)`. */
unsigned api_fail(api_answer *a, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* JSON text helpers over ndt_buf (the hot path avoids building trees). */
int api_json_string(ndt_buf *b, const char *s);
int api_json_number(ndt_buf *b, double v);

/* ---- metrics ---------------------------------------------------------- */

typedef enum api_endpoint {
    API_EP_HEALTHZ = 0,
    API_EP_READYZ,
    API_EP_METRICS,
    API_EP_ENTITIES,
    API_EP_ENTITY,
    API_EP_GRAPH,
    API_EP_MODELS,
    API_EP_MODEL,
    API_EP_PREDICT,
    API_EP_WHATIF,
    API_EP_RECOMMENDATION,
    API_EP_SCALE,
    API_EP_OTHER,
    API_EP_COUNT
} api_endpoint;

const char *api_endpoint_name(api_endpoint ep);

typedef struct api_metrics api_metrics;
api_metrics *api_metrics_new(void);
void api_metrics_free(api_metrics *m);
void api_metrics_observe(api_metrics *m, api_endpoint ep, unsigned status, double seconds);
int api_metrics_render(const api_metrics *m, ndt_buf *out);

/* ---- registry --------------------------------------------------------- */

typedef struct api_model_entry {
    char id[64];
    char grade[16]; /* deployment_grade, "" when not validated */
    char created[32];
} api_model_entry;

/* A deployment grade that may be served: "Excellent" or "Reliable". */
int api_grade_servable(const char *grade);
/* The model to serve: want_id when given (it must be gated), else the
 * newest gated entry.  NDT_AGAIN with the reason in err when none is
 * servable (the server answers 503 and looks again later); NDT_EBADCONF
 * when the registry cannot be read. */
int api_registry_pick(const char *dir, const char *want_id, api_model_entry *out, char *err,
                      size_t errlen);
/* {"served":ID|null,"models":[model.json...]} newest first. */
int api_registry_list(const char *dir, const char *served, ndt_buf *out, char *err, size_t errlen);
/* DIR/<id>/model.json as is (checked to be JSON); NDT_EBADCONF: no such model. */
int api_registry_get(const char *dir, const char *id, ndt_buf *out, char *err, size_t errlen);

/* ---- the twin (NGSI-LD, graph) ------------------------------------------ */

/* Entities of type (or the one entity id when id is set) in normalized
 * or keyValues form.  NDT_EBADCONF: id unknown; NDT_ERROR: UDR failure. */
int api_twin_entities(udr *u, const char *type, const char *id, int key_values, int64_t now_ms,
                      ndt_buf *out, char *err, size_t errlen);
/* {"at":...,"entities":[{id,type}],"relationships":[...]} as of at_ms. */
int api_twin_graph(udr *u, int64_t at_ms, ndt_buf *out, char *err, size_t errlen);
/* The type of an id "urn:ngsi-ld:<Type>:<local>" into type; NDT_EBADCONF otherwise. */
int api_twin_type_of(const char *id, char *type, size_t size);
/* The ids of the Service entities (at most max) into ids. */
int api_twin_services(udr *u, char ids[][API_ID_MAX], size_t max, size_t *n, char *err,
                      size_t errlen);

/* ---- the engine ------------------------------------------------------- */

typedef struct api_engine api_engine;
int api_engine_new(const api_options *o, api_engine **out, char *err, size_t errlen);
void api_engine_free(api_engine *e);
/* 200 when a gated model is loaded and the state fresh; 503 with why. */
unsigned api_engine_ready(api_engine *e, api_answer *a);
unsigned api_engine_whatif(api_engine *e, const api_whatif_request *req, api_answer *a);
unsigned api_engine_predict(api_engine *e, api_predict_request *req, api_answer *a);
unsigned api_engine_entities(api_engine *e, const char *type, const char *id, int key_values,
                             api_answer *a);
unsigned api_engine_graph(api_engine *e, const char *at, api_answer *a);
unsigned api_engine_models(api_engine *e, const char *id, api_answer *a);
/* The ids of the twin's services at the last read (at most max). */
size_t api_engine_service_ids(api_engine *e, char ids[][API_ID_MAX], size_t max);

/* What the served model predicts for one service at every pod count of
 * [lo, hi], each through the what-if path (model_counterfactual from the
 * twin's current row, then the served predictor). */
typedef struct api_sweep {
    char service[API_ID_MAX];
    char model[64];
    char grade[16];
    int64_t state_ms;  /* the state row's timestamp */
    int users;
    int pods;          /* current */
    double current_ms; /* predicted at the current state */
    int lo, hi;
    double ms[API_MAX_REPLICAS_SPAN]; /* ms[k - lo] at k pods */
} api_sweep;

/* 200, or an error answer (no gated model, stale or missing state, ...). */
unsigned api_engine_sweep(api_engine *e, const char *service, int lo, int hi, api_sweep *out,
                          api_answer *a);

/* The engine's gauges (model loaded, its grade, state age) for /metrics. */
int api_engine_render_metrics(api_engine *e, ndt_buf *out);

/* ---- actuation (api_actuate.c) ----------------------------------------- */

typedef enum api_decision_kind {
    API_DECIDE_FIRST = 0,  /* no previous recommendation: the needed count */
    API_DECIDE_UP,         /* the previous count misses the objective */
    API_DECIDE_DOWN,       /* fewer pods meet it with the margin to spare */
    API_DECIDE_HOLD,       /* within the band: keep the previous count */
    API_DECIDE_UNREACHABLE /* not even hi pods meet it: hi */
} api_decision_kind;

typedef struct api_decision {
    int replicas;          /* recommended */
    int needed;            /* smallest count meeting the objective (hi if none) */
    int comfortable;       /* smallest meeting objective x (1 - margin) (hi if none) */
    api_decision_kind kind;
} api_decision;

const char *api_decision_name(api_decision_kind k);

/* The rule (docs/API.md, "Actuation"): search upward from lo for the
 * smallest count whose predicted latency ms[k - lo] meets the objective
 * (needed), and the smallest that meets it with the margin to spare
 * (comfortable).  Scale up at once to needed when prev misses it; scale
 * down only to comfortable, and only when that is below prev; otherwise
 * hold prev.  prev <= 0: no previous recommendation.  NDT_EBADCONF on
 * bad arguments (empty range, span over API_MAX_REPLICAS_SPAN). */
int api_actuate_decide(const double *ms, int lo, int hi, double objective_ms, double margin,
                       int prev, api_decision *out);

/* Scale-down stabilization: the candidates of the last window_ms, so
 * that a recommendation comes down only once no read in the window
 * asked for more (HPA's downscale stabilization window, same reason: a
 * noisy state must not walk the count down and up again). */
#define API_WINDOW_SLOTS 512
typedef struct api_window {
    int64_t t_ms[API_WINDOW_SLOTS];
    int replicas[API_WINDOW_SLOTS];
    size_t head, n;
} api_window;
/* Records candidate at now_ms; returns the largest candidate recorded in
 * (now_ms - window_ms, now_ms], candidate included.  Past
 * API_WINDOW_SLOTS records the oldest are forgotten. */
int api_window_push_max(api_window *w, int64_t now_ms, int64_t window_ms, int candidate);

typedef struct api_actuator api_actuator;
/* Starts the evaluation thread (and the Kafka producer when
 * o->actions_brokers is set); the first evaluation happens before it
 * returns.  NDT_EBADCONF on a bad objective or replica range. */
int api_actuator_new(const api_options *o, api_engine *e, api_actuator **out, char *err,
                     size_t errlen);
void api_actuator_free(api_actuator *act);
/* GET /v1/recommendation[?service=] and GET /v1/scale/{service}. */
unsigned api_actuator_recommendation(api_actuator *act, const char *service, int scale_only,
                                     api_answer *a);
int api_actuator_render_metrics(api_actuator *act, ndt_buf *out);

#endif
