/*
 * features.h: the regime-aware feature stage (paper 002, section III and
 * Table II), batch mode.
 *
 * Input is the dataset CSV of the contract (raw telemetry, one row per
 * sample).  This module reads it into memory under a row cap, groups rows
 * into regimes (users, pods), trims outliers of the target per regime, and
 * maps every row to the fixed feature vector of docs/FEATURES.md plus the
 * log-latency target.  Everything is pure computation on a feat_dataset,
 * so the streaming mode (later) can call feat_compute() on a window's row
 * and produce the same numbers as the batch mode.
 *
 * Promises: the feature order of feat_names[] is the feature spec; models
 * record it and refuse a model whose spec differs.  Trimming keeps the
 * surviving rows in their original order.  Errors in the input are
 * NDT_EBADCONF with "FILE:LINE: reason"; nothing is written on error.
 */
#ifndef NDT_FEATURES_H
#define NDT_FEATURES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/ndt.h"

/* The contract's dataset columns, in order (extra columns may follow). */
#define FEAT_RAW_HEADER                                                           \
    "timestamp_ms,users,pods,avg_depth_on_enqueue,avg_backlog_sec_est,"           \
    "avg_cpu_process_pct,avg_cpu_system_pct,avg_mem_system_pct,avg_total_infer_ms"
#define FEAT_RAW_COLUMNS 9

/* Bounds: a dataset larger than this is refused with a clear error rather
 * than exhausting memory (72 bytes a row: 5 M rows are 360 MB). */
#define FEAT_MAX_ROWS_DEFAULT 5000000u
#define FEAT_MAX_LINE 4096
/* A regime with fewer rows than this cannot be trimmed or evaluated. */
#define FEAT_MIN_REGIME_ROWS 5

/* The feature vector (docs/FEATURES.md). */
enum {
    FEAT_USERS = 0,
    FEAT_PODS,
    FEAT_WORKLOAD_INTENSITY,
    FEAT_CONGESTION_INDEX,
    FEAT_BACKLOG_FLOW,
    FEAT_COMPUTE_PRESSURE,
    FEAT_MEMORY_DENSITY,
    FEAT_QUEUE_DELAY,
    FEAT_DIM
};
extern const char *const feat_names[FEAT_DIM];
/* The direction latency takes when one feature grows and the others stay
 * (+1 up, -1 down, 0 either): queueing physics, docs/FEATURES.md.  XGBoost
 * is held to it (monotone constraints, docs/MODELS.md) so that a what-if's
 * sign cannot come from a tree's wiggle. */
extern const int feat_direction[FEAT_DIM];
/* One string naming the spec ("v1:users,pods,..."), stored with models. */
extern const char feat_spec[];

typedef struct feat_raw {
    int64_t timestamp_ms;
    int users;
    int pods;
    double depth;       /* avg_depth_on_enqueue */
    double backlog_s;   /* avg_backlog_sec_est */
    double cpu_process; /* avg_cpu_process_pct */
    double cpu_system;  /* avg_cpu_system_pct */
    double mem_system;  /* avg_mem_system_pct */
    double infer_ms;    /* avg_total_infer_ms, the target */
} feat_raw;

typedef struct feat_dataset {
    feat_raw *rows;
    size_t n;
    size_t cap;
} feat_dataset;

typedef enum feat_trim_mode {
    FEAT_TRIM_NONE = 0,
    FEAT_TRIM_IQR,   /* keep Q1 - 1.5 IQR <= y <= Q3 + 1.5 IQR */
    FEAT_TRIM_P1P99, /* keep P1 <= y <= P99 (the paper's V-B) */
} feat_trim_mode;

typedef struct feat_regime {
    int users;
    int pods;
    size_t n;
} feat_regime;

/* A row selector such as "users=200,400" or "pods=1,2" (train/test splits). */
#define FEAT_SELECTOR_MAX 32
typedef struct feat_selector {
    int by_pods; /* 0: users, 1: pods */
    int values[FEAT_SELECTOR_MAX];
    size_t n;
} feat_selector;

/* Reads a dataset CSV; "-" is stdin.  max_rows 0 means the default cap. */
int feat_csv_read(const char *path, size_t max_rows, feat_dataset *out, char *err, size_t errlen);
/* Parses one stream; name is used in messages. */
int feat_csv_read_stream(FILE *in, const char *name, size_t max_rows, feat_dataset *out, char *err,
                         size_t errlen);
void feat_dataset_free(feat_dataset *ds);

/* Fills x[FEAT_DIM] from one raw row (pods >= 1 is guaranteed by the reader). */
void feat_compute(const feat_raw *r, double x[FEAT_DIM]);
/* The target transform and its inverse: y = ln(1 + ms), ms = e^y - 1. */
double feat_target(double ms);
double feat_target_inverse(double y);

/* An optional physical baseline of the target (docs/MODELS.md): the model
 * then learns y - baseline and adds it back.  BACKLOG is the log of the
 * backlog estimate in ms, ln(1 + 1000 * backlog_flow * pods): it follows
 * saturated latencies beyond the training range, where trees alone are
 * capped at the largest target they saw.  Computed from the feature
 * vector so a what-if vector gets its baseline too. */
typedef enum feat_baseline {
    FEAT_BASELINE_NONE = 0,
    FEAT_BASELINE_BACKLOG,
} feat_baseline;
double feat_baseline_value(feat_baseline b, const double x[FEAT_DIM]);
int feat_baseline_parse(const char *s, feat_baseline *out);
const char *feat_baseline_name(feat_baseline b);

/* Writes the features CSV (docs/FEATURES.md) for every row of ds. */
int feat_csv_write(const feat_dataset *ds, FILE *out, char *err, size_t errlen);

/* The p-quantile (0 <= p <= 1) of v[0..n) by linear interpolation between
 * order statistics (numpy's default); sorts v in place.  n >= 1. */
double feat_quantile_sorted(const double *sorted, size_t n, double p);
double feat_quantile(double *v, size_t n, double p);

int feat_trim_parse(const char *s, feat_trim_mode *out);
const char *feat_trim_name(feat_trim_mode mode);
/* Drops, per regime, the rows whose target lies outside the mode's bounds;
 * keeps order.  NDT_EBADCONF if a regime has fewer than
 * FEAT_MIN_REGIME_ROWS rows (the bounds would be meaningless). */
int feat_trim(feat_dataset *ds, feat_trim_mode mode, size_t *dropped, char *err, size_t errlen);

/* The distinct (users, pods) regimes of ds, sorted; *out is malloc'ed. */
int feat_regimes(const feat_dataset *ds, feat_regime **out, size_t *nout, char *err, size_t errlen);

int feat_selector_parse(const char *s, feat_selector *out, char *err, size_t errlen);
int feat_selector_match(const feat_selector *sel, const feat_raw *r);
/* "users=200,400" back into text. */
void feat_selector_format(const feat_selector *sel, char *buf, size_t size);

/* Where the dataset's per-pod columns come from in the twin's entities
 * (docs/DATA-MODEL.md, "The dataset read back"): the ServiceComponent
 * attribute behind each avg_* column, in column order, and the Service's
 * users and pods.  One table for feat_udr.c (the UDR) and feat_stream.c
 * (the entity stream), so export and the streaming features read the same
 * attributes. */
enum {
    FEAT_POD_DEPTH = 0,
    FEAT_POD_BACKLOG,
    FEAT_POD_CPU_PROCESS,
    FEAT_POD_CPU_SYSTEM,
    FEAT_POD_MEM_SYSTEM,
    FEAT_POD_INFER,
    FEAT_POD_NATTR
};
extern const char *const feat_pod_attrs[FEAT_POD_NATTR];
#define FEAT_SERVICE_USERS_ATTR "currentUsers"
#define FEAT_SERVICE_PODS_ATTR "desiredReplicas"

/* One instant of a service, rebuilt from its member pods the same way by
 * both readers: each per-pod column is the mean over the member pods that
 * carry it, and the row exists only when every column was seen on at least
 * one member and the Service's users and pods are sane (pods >= 1, users
 * >= 0, both within an int).  pods is the Service's own count when it has
 * one, else the number of members observed. */
typedef struct feat_pod_mean {
    double sum[FEAT_POD_NATTR];
    unsigned n[FEAT_POD_NATTR];
    unsigned members;
} feat_pod_mean;
/* has: bit a set when v[a] was observed on this pod. */
void feat_pod_mean_add(feat_pod_mean *m, const double v[FEAT_POD_NATTR], unsigned has);
/* pods NULL: the Service has no count, the members observed stand in.
 * NDT_AGAIN (row untouched) when the instant makes no row. */
int feat_pod_mean_row(const feat_pod_mean *m, int64_t ts_ms, double users, const double *pods,
                      feat_raw *row);

/* The twin's state as the paper's raw telemetry, read back from the UDR
 * (features/feat_udr.c; docs/DATA-MODEL.md says which entity attribute
 * feeds each dataset column).  One row per instant at which the service's
 * entities were observed, in time order; service_id NULL means the only
 * Service entity (NDT_EBADCONF when there are none or several).  This is
 * what `export` writes, what the API's what-if starts from and what the
 * streaming feature mode windows. */
struct udr;
int feat_udr_read(struct udr *u, const char *service_id, int64_t from_ms, int64_t to_ms,
                  feat_dataset *out, char *err, size_t errlen);
/* The newest row (NDT_AGAIN when the UDR holds none yet). */
int feat_udr_latest(struct udr *u, const char *service_id, feat_raw *out, char *err,
                    size_t errlen);

/* ---- streaming mode (feat_stream.c: the logic; feat_stage.c: Kafka) ---- */

/* One window of one service: the mean feature vector of its rows. */
typedef struct feat_window {
    const char *service;        /* the Service entity id */
    int64_t start_ms, end_ms;   /* [start, end), aligned to the window length */
    int64_t first_ms, last_ms;  /* the first and last row's instants */
    int users, pods;            /* the regime of every row in it */
    size_t rows;
    double features[FEAT_DIM];  /* means over the rows, feat_names order */
    double log_latency;         /* mean target, ln(1 + ms) */
    double latency_ms;          /* mean avg_total_infer_ms */
} feat_window;

typedef int (*feat_window_fn)(void *ctx, const feat_window *w);
typedef int (*feat_row_fn)(void *ctx, const char *service, const feat_raw *row);

typedef struct feat_stream_options {
    int64_t window_ms;    /* window length; 0 = every row its own window */
    int64_t lateness_ms;  /* how long an instant waits for late fragments; 0 = 200 */
    size_t max_instants;  /* open instants at most; 0 = 4096 */
    feat_window_fn on_window;
    feat_row_fn on_row;   /* optional: every row rebuilt */
    void *ctx;
} feat_stream_options;

typedef struct feat_stream_stats {
    uint64_t fragments;      /* entity fragments read */
    uint64_t rows;           /* rows rebuilt */
    uint64_t windows;        /* windows emitted */
    uint64_t incomplete;     /* (service, instant) pairs without a full row */
    uint64_t late;           /* observations for instants already closed */
    uint64_t forced_closes;  /* instants closed early at max_instants */
    uint64_t dropped;        /* entities past the stage's bounds */
    uint64_t open_instants;
} feat_stream_stats;

typedef struct feat_stream feat_stream;

int feat_stream_new(const feat_stream_options *o, feat_stream **out);
/* One normalized NGSI-LD fragment (JSON) from source src (the input
 * partition, 0..255); NDT_EBADCONF with a reason for one that is not an
 * entity; other types than Service and ServiceComponent are read and
 * ignored.  A source delivering again is no longer idle. */
int feat_stream_add(feat_stream *s, int src, const char *json, size_t len, char *err,
                    size_t errlen);
/* A source is caught up (idle 1: it does not hold the watermark back) or
 * not.  Sources start idle until they deliver. */
void feat_stream_source_idle(feat_stream *s, int src, int idle);
/* Closes the instants the watermark allows; rows and windows go to the
 * callbacks (their errors are returned). */
int feat_stream_advance(feat_stream *s);
/* Closes everything still open (at stop). */
int feat_stream_finish(feat_stream *s);
/* The oldest instant whose data is still open (in an open instant or an
 * open window), INT64_MAX when none: input observed before it is done. */
int64_t feat_stream_open_from(const feat_stream *s);
/* The newest observation time in the fragment last added (INT64_MIN if
 * it held none): with feat_stream_open_from, when its input is done. */
int64_t feat_stream_fragment_ms(const feat_stream *s);
void feat_stream_get_stats(const feat_stream *s, feat_stream_stats *out);

/* The Kafka stage around it (feat_stage.c): consumes NGSI-LD fragments,
 * publishes one JSON object per window on the output topic (key: the
 * service id) and commits an input offset once every window its data
 * fed has been delivered. */
#define FEAT_DEFAULT_IN_TOPIC "ndt.sdm.entities"
#define FEAT_DEFAULT_OUT_TOPIC "ndt.features"
#define FEAT_DEFAULT_GROUP "ndtpipe-features"

struct ndt_kafka_opts;
typedef struct feat_stage_options {
    const char *brokers;                 /* resolved bootstrap list */
    const struct ndt_kafka_opts *xopts;  /* -X, may be NULL */
    const char *in_topic, *out_topic, *group; /* NULL: the defaults */
    int64_t window_ms;                   /* 0: one window per row */
    int64_t lateness_ms;
    const char *metrics_listen;          /* HOST:PORT or NULL */
    const volatile int *stop;
} feat_stage_options;

/* Runs until *stop; NDT_EBADCONF for options the user must fix. */
int feat_stage_run(const feat_stage_options *o, char *err, size_t errlen);
void feat_stream_free(feat_stream *s);

#endif
