/*
 * models.h: functional models (paper 002, V-C): training, prediction,
 * evaluation and the model registry.
 *
 * A model maps the feature vector of features.h to the log latency
 * ln(1 + ms).  XGBoost is reached through libxgboost's C API; the handle
 * is opaque so callers never include <xgboost/c_api.h>.  Evaluation is in
 * ms, after inverting the log, because that is the unit an operator reads.
 *
 * Promises: training with the same data, parameters and seed gives the
 * same model.  Predictions take two verified paths: model_xgb_predict()
 * (XGBoost itself: train and evaluation) and the served predictor
 * (model_predictor_*: an XGBoost model compiled into the flat tree layout,
 * tested equal to XGBoost's own output to the bit on random, real and
 * missing-value rows, ~13x faster per row), which `serve` uses.  The registry writes a model's directory
 * atomically (temp directory + rename): a reader sees all of it or none.
 * Nothing here is thread-safe; one model handle belongs to one thread.
 */
#ifndef NDT_MODELS_H
#define NDT_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "common/ndt.h"
#include "features/features.h"

/* The paper's configuration (V-C1) is the default. */
#define MODEL_DEFAULT_ROUNDS 2000
#define MODEL_DEFAULT_DEPTH 8
#define MODEL_DEFAULT_ETA 0.05
#define MODEL_MAX_ROUNDS 100000
#define MODEL_MAX_DEPTH 32

typedef struct model_params {
    int rounds;
    int depth;
    double eta;
    int threads; /* 0: all cores */
    uint64_t seed;
    int monotone; /* 1 (default): trees held to feat_direction; 0: free (the paper's) */
} model_params;

void model_params_default(model_params *p);
/* XGBoost's monotone_constraints for feat_direction, "(1,-1,...)". */
void model_monotone_constraints(char *buf, size_t size);

/* Called after each boosting round; return non-zero to stop training. */
typedef int (*model_progress_fn)(void *ctx, int round, int rounds);

typedef struct model_xgb model_xgb;

/* Trains on x[n][FEAT_DIM] (row-major) and targets y[n] (log latency). */
int model_xgb_train(const float *x, const float *y, size_t n, const model_params *p,
                    model_progress_fn progress, void *ctx, model_xgb **out, char *err,
                    size_t errlen);
/* out[i] is the predicted log latency of row i. */
int model_xgb_predict(model_xgb *m, const float *x, size_t n, double *out, char *err, size_t errlen);
/* The model as XGBoost's UBJSON bytes (malloc'ed copy). */
int model_xgb_save_buffer(model_xgb *m, char **buf, size_t *len, char *err, size_t errlen);
int model_xgb_load_file(const char *path, int threads, model_xgb **out, char *err, size_t errlen);
void model_xgb_free(model_xgb *m);

/* The DNN (models/model_dnn.c, docs/MODELS.md): 256-128-64 ReLU units
 * with batch normalisation and dropout, Huber loss, Adam, mini-batches,
 * standardised inputs and target; OpenBLAS does the matrix products.
 * Same data, parameters and seed: same model bytes. */
#define MODEL_DNN_DEFAULT_EPOCHS 60
#define MODEL_DNN_DEFAULT_BATCH 256
#define MODEL_DNN_DEFAULT_LR 1e-3
#define MODEL_DNN_DEFAULT_DROPOUT 0.3
#define MODEL_DNN_MAX_EPOCHS 100000
#define MODEL_DNN_MAX_BATCH 65536

typedef struct model_dnn_params {
    int epochs;
    int batch;
    double lr;
    double dropout;     /* 0 <= p < 1, after every hidden layer */
    double huber_delta; /* in standard deviations of the target */
    int threads;        /* OpenBLAS threads; 0: its default */
    uint64_t seed;
} model_dnn_params;

void model_dnn_params_default(model_dnn_params *p);

typedef struct model_dnn model_dnn;

/* Trains on x[n][FEAT_DIM] and targets y[n]; progress is per epoch. */
int model_dnn_train(const float *x, const float *y, size_t n, const model_dnn_params *p,
                    model_progress_fn progress, void *ctx, model_dnn **out, char *err,
                    size_t errlen);
int model_dnn_predict(const model_dnn *m, const float *x, size_t n, double *out, char *err,
                      size_t errlen);
/* The versioned, checksummed model.dnn bytes (malloc'ed). */
int model_dnn_save_buffer(const model_dnn *m, char **buf, size_t *len, char *err, size_t errlen);
/* NDT_EBADCONF naming the problem for a corrupt or foreign file. */
int model_dnn_load_buffer(const char *buf, size_t len, model_dnn **out, char *err, size_t errlen);
int model_dnn_load_file(const char *path, model_dnn **out, char *err, size_t errlen);
const model_dnn_params *model_dnn_get_params(const model_dnn *m);
void model_dnn_free(model_dnn *m);

/* The compiled tree predictor (models/model_trees.c): an XGBoost model
 * laid out flat and walked without XGBoost.  Its output equals XGBoost's
 * (same float comparisons, missing = NaN takes the default direction, same
 * float sum from base_score in tree order); only gbtree models with an
 * identity-link objective (reg:squarederror, ...) compile.  Immutable
 * once built: predictions may run from several threads at once. */
typedef struct model_trees model_trees;
#define MODEL_TREES_SPARSE 1u /* force the general layout (tests, bench) */
#define MODEL_TREES_SCALAR 2u /* no SIMD walk even where the CPU has one */
/* From XGBoost's JSON model text (XGBoosterSaveModelToBuffer "json");
 * NDT_EBADCONF with the reason when it is not one that compiles. */
int model_trees_from_json(const char *json, size_t len, unsigned flags, model_trees **out,
                          char *err, size_t errlen);
int model_trees_from_xgb(model_xgb *m, unsigned flags, model_trees **out, char *err, size_t errlen);
/* x has model_trees_nfeatures() floats; NaN means missing. */
float model_trees_predict_row(const model_trees *t, const float *x);
void model_trees_predict(const model_trees *t, const float *x, size_t n, double *out);
int model_trees_nfeatures(const model_trees *t);
size_t model_trees_count(const model_trees *t);
int model_trees_is_complete(const model_trees *t);
int model_trees_is_simd(const model_trees *t);
void model_trees_free(model_trees *t);

/* Pointwise metrics in ms. */
typedef struct model_metrics {
    size_t n;
    double mae;
    double rmse;
    double r2;
    double p95_abs;
    double mean_observed;
} model_metrics;

int model_metrics_compute(const double *observed, const double *predicted, size_t n,
                          model_metrics *out, char *err, size_t errlen);

/* The quality grade (paper Table III; bounds in docs/MODELS.md). */
typedef enum model_grade {
    MODEL_GRADE_EXCELLENT = 0,
    MODEL_GRADE_GOOD,
    MODEL_GRADE_WEAK,
} model_grade;

typedef struct model_grade_bound {
    model_grade grade;
    double min_r2;
    double max_mae_ms;       /* absolute: MAE at most this many ms ... */
    double max_mae_relative; /* ... or at most this fraction of the mean latency */
} model_grade_bound;

extern const model_grade_bound model_grade_bounds[2];
model_grade model_grade_of(const model_metrics *m);
const char *model_grade_name(model_grade g);

/* One row of the per-regime table (paper Table VI). */
typedef struct model_regime_row {
    int users;
    int pods;
    model_metrics metrics;
} model_regime_row;

/* One row of the high-latency table (paper Table V): rows whose observed
 * latency is at or above the test set's `quantile` of latency. */
typedef struct model_threshold_row {
    double quantile;
    double threshold_ms;
    model_metrics metrics;
} model_threshold_row;

#define MODEL_NTHRESHOLDS 2
extern const double model_threshold_quantiles[MODEL_NTHRESHOLDS];

/* The whole evaluation of a model on a test set. */
typedef struct model_eval {
    model_metrics overall;
    model_grade grade;
    model_regime_row *regimes;
    size_t nregimes;
    model_threshold_row thresholds[MODEL_NTHRESHOLDS];
} model_eval;

/* rows[i] is the raw test row of observed/predicted ms i. */
int model_evaluate(const feat_raw *rows, const double *observed, const double *predicted, size_t n,
                   model_eval *out, char *err, size_t errlen);
void model_eval_free(model_eval *e);

/* What the registry stores beside the model file. */
typedef struct model_info {
    char id[64];
    const char *kind; /* "xgboost" or "dnn" */
    model_params params;
    const model_dnn_params *dnn; /* the DNN's parameters (kind "dnn") */
    char train_selector[256];
    char test_selector[256];
    feat_trim_mode trim;
    feat_baseline baseline;
    size_t n_train;
    size_t n_test;
    int64_t train_from_ms, train_to_ms;
    feat_regime *train_regimes;
    size_t ntrain_regimes;
    double train_seconds;
    const model_eval *eval;
    /* The test rows and their predictions (ms); the registry keeps an
     * evenly spaced sample of at most MODEL_SAMPLE_MAX for plots. */
    const feat_raw *test_rows;
    const double *test_predicted_ms;
    int64_t created_s; /* Unix time */
} model_info;

#define MODEL_SAMPLE_MAX 5000

/* Builds "xgb-YYYYmmddTHHMMSS-<8 hex of the model bytes>". */
void model_make_id(const char *prefix, int64_t created_s, const char *bytes, size_t len,
                   char *id, size_t size);
/* Writes DIR/<info->id>/{model.ubj,model.json,predictions.csv} atomically
 * (predictions.csv only when info->test_rows is set); a DNN's bytes go to
 * model.dnn instead of model.ubj (model_file_name). */
const char *model_file_name(const char *kind);
int model_registry_save(const char *dir, const model_info *info, const char *ubj, size_t ubj_len,
                        char *err, size_t errlen);
/* Checks DIR/<id>/model.json (feature spec, kind, baseline) without
 * loading the model; kind is "xgboost" or "dnn". */
int model_registry_meta(const char *dir, const char *id, char *kind, size_t kind_size,
                        feat_baseline *baseline, char *err, size_t errlen);
/* Loads DIR/<id>/model.ubj after checking model.json's feature spec;
 * *baseline tells what to add to the model's output (feat_baseline_value).
 * NDT_EBADCONF for a DNN entry (model_predictor_load serves both kinds). */
int model_registry_load(const char *dir, const char *id, int threads, model_xgb **out,
                        feat_baseline *baseline, char *err, size_t errlen);
/* The served predictor (models/model_predictor.c): one registered model,
 * XGBoost or DNN, loaded for answering single rows fast.  An XGBoost
 * model is compiled into the flat tree predictor (model_trees, verified
 * equal to XGBoost's own prediction to the bit), so serving needs no
 * XGBoost call per request; a DNN is evaluated by model_dnn_predict.  The
 * baseline recorded with the model is added back.  Immutable once loaded:
 * several threads may predict at once. */
typedef struct model_predictor model_predictor;
/* NDT_EBADCONF naming the problem for a missing, foreign or corrupt entry. */
int model_predictor_load(const char *dir, const char *id, model_predictor **out, char *err,
                         size_t errlen);
/* Log latency (baseline included) for feature vectors x[n][FEAT_DIM]. */
int model_predictor_predict_log(const model_predictor *p, const double (*x)[FEAT_DIM], size_t n,
                                double *out, char *err, size_t errlen);
/* The predicted latency in ms for one raw state (e.g. model_counterfactual's). */
int model_predictor_predict_ms(const model_predictor *p, const feat_raw *state, double *ms,
                               char *err, size_t errlen);
const char *model_predictor_kind(const model_predictor *p);
void model_predictor_free(model_predictor *p);

/* Writes OUT/report.md (the paper's Tables III-VI analogues from
 * DIR/<id>/model.json) and OUT/error-per-regime.svg.  NDT_EBADCONF when
 * the model is missing or its model.json is not ndtpipe's. */
int model_report_write(const char *dir, const char *id, const char *out_dir, char *err,
                       size_t errlen);
/* model.json's text for info (malloc'ed); also what `train --json` builds on. */
char *model_info_json(const model_info *info, int with_params);

/* The counterfactual engine (models/model_whatif.c; rules in
 * docs/MODELS.md): a what-if changes the configuration, and the raw state
 * the model would see afterwards is derived from the current one.  Pods
 * and users are absolute values after the change (the API turns "+1" into
 * pods + 1).  Shared by `validate` and the API so that what is validated
 * is what is served.  NDT_EBADCONF for a change that cannot exist (pods or
 * users below 1). */
typedef struct model_change {
    int has_pods;
    int pods;
    int has_users;
    int users;
} model_change;

int model_counterfactual(const feat_raw *current, const model_change *change, feat_raw *out,
                         char *err, size_t errlen);

/* The same answer in two steps, for many changes asked of one state: the
 * fit (the part that depends on the current row only, ~15 MVA passes)
 * once, then one MVA pass per change.  apply gives model_counterfactual's
 * result and error to the bit.  A state the engine refuses still fits
 * (fitted = 0); every apply then refuses it with the reason. */
typedef struct model_counterfactual_state {
    feat_raw current;
    int fitted;            /* MVA fitted; 0: the light-load rule (or a refused row) */
    double service_s;      /* S: the service time per request */
    double think_s;        /* Z: the think time fitted to the row's depth */
    double throughput;     /* MVA at the current state: requests/s */
    double response_s;     /*   response time */
    double utilisation;    /*   of one pod */
} model_counterfactual_state;

void model_counterfactual_fit(const feat_raw *current, model_counterfactual_state *fit);
int model_counterfactual_apply(const model_counterfactual_state *fit, const model_change *change,
                               feat_raw *out, char *err, size_t errlen);

#endif
