/*
 * model_validate.h: matched-pairs validation of what-if answers (paper
 * 002, IV-C and Table VII) and the deployment grade that gates serving.
 *
 * A scenario is a change of one control variable at the focus load (the
 * largest users value in the data, 600 in the paper's campaign): pods +1,
 * pods -1, users -> each lower users value.  Each scenario is a set of
 * transitions between two observed regimes (600 x 4 -> 600 x 5, ...), and
 * each transition a set of matched pairs of samples (same phase of their
 * regime's steady part).  A model's predicted delta for a pair is computed
 * twice: on the matched after-sample, f(after) - f(before), as the paper
 * does, and through the counterfactual engine, f(cf(before)) - f(before),
 * which is what the API answers.  The deployment grade uses the second.
 * Definitions and bounds: docs/MODELS.md ("Validation").
 *
 * The model is reached through a callback so the rules can be tested
 * without XGBoost.  Nothing here is thread-safe.
 */
#ifndef NDT_MODEL_VALIDATE_H
#define NDT_MODEL_VALIDATE_H

#include <stddef.h>

#include "common/ndt.h"
#include "features/features.h"
#include "models/models.h"

/* Share of a regime's rows (in time order) skipped as its transient. */
#define MODEL_VALIDATE_TRANSIENT 0.25
/* Pairs per transition are capped (evenly spaced) so validation costs
 * the same whatever the dwell. */
#define MODEL_VALIDATE_MAX_PAIRS 1000
#define MODEL_VALIDATE_MAX_SCENARIOS 16
/* An observed mean delta counts as a direction when it is at least this
 * many standard errors away from zero. */
#define MODEL_VALIDATE_MIN_T 2.0

typedef enum model_sensitivity {
    MODEL_SENSITIVITY_HIGH = 0,
    MODEL_SENSITIVITY_LOW,
    MODEL_SENSITIVITY_NEGLIGIBLE,
} model_sensitivity;

typedef enum model_deploy_grade {
    MODEL_DEPLOY_EXCELLENT = 0,
    MODEL_DEPLOY_RELIABLE,
    MODEL_DEPLOY_UNRELIABLE,
} model_deploy_grade;

/* The bounds (docs/MODELS.md), best first: every scenario needs a sign
 * agreement at or above min_sign_agreement and a sensitivity at least
 * min_sensitivity. */
typedef struct model_deploy_bound {
    model_deploy_grade grade;
    double min_sign_agreement;
    model_sensitivity min_sensitivity;
} model_deploy_bound;
extern const model_deploy_bound model_deploy_bounds[2];
/* Sensitivity categories by the ratio of predicted to observed deltas. */
#define MODEL_SENSITIVITY_HIGH_MIN 0.5
#define MODEL_SENSITIVITY_LOW_MIN 0.1

/* One method's result over a scenario's pairs. */
typedef struct model_delta_stats {
    size_t n_pairs;            /* pairs in transitions with an observed direction */
    double sign_agreement;     /* NaN when n_pairs is 0 */
    double mae_delta;          /* mean |predicted - observed mean of its transition|, ms */
    double mean_predicted;     /* ms */
    double mean_observed;      /* ms */
    double sensitivity;        /* slope of predicted on observed transition means */
    model_sensitivity category;
} model_delta_stats;

typedef struct model_transition {
    int from_users, from_pods, to_users, to_pods;
    size_t n_pairs;
    double mean_observed, se_observed; /* ms */
    int direction;                     /* -1, +1, or 0 (not significant) */
    double mean_matched, mean_counterfactual; /* predicted, ms */
    double sa_matched, sa_counterfactual;     /* sign agreement (NaN without a direction) */
} model_transition;

typedef struct model_scenario {
    char name[32];  /* "pods+1", "pods-1", "users 600->400" */
    int pods_step;  /* +1 / -1, or 0 for a users scenario */
    int to_users;   /* users scenarios */
    model_transition *transitions;
    size_t ntransitions;
    model_delta_stats matched, counterfactual;
} model_scenario;

typedef struct model_validation {
    int users;      /* the focus load */
    size_t n_rows;  /* dataset rows used (after trimming) */
    model_scenario scenarios[MODEL_VALIDATE_MAX_SCENARIOS];
    size_t nscenarios;
    model_deploy_grade grade;         /* from the counterfactual results */
    model_deploy_grade matched_grade; /* the same rule on the matched results */
} model_validation;

/* Latency in ms predicted for each of rows[0..n). */
typedef int (*model_predict_fn)(void *ctx, const feat_raw *rows, size_t n, double *ms, char *err,
                                size_t errlen);

/* The matched pairs between regimes a and b: indices into ds->rows, the
 * i-th steady row of a (after its transient) with the row of b at the same
 * phase of its steady part; at most max_pairs, evenly spaced.  *before and
 * *after are malloc'ed; *n is 0 when either regime has too few rows. */
int model_validate_pairs(const feat_dataset *ds, int users_a, int pods_a, int users_b, int pods_b,
                         size_t max_pairs, size_t **before, size_t **after, size_t *n, char *err,
                         size_t errlen);

/* Fills out->matched or ->counterfactual style stats from per-pair
 * predicted deltas, the pair counts of each transition (pairs are stored
 * transition after transition) and the transitions' observed means and
 * directions. */
void model_delta_stats_compute(const model_transition *t, size_t nt, const double *predicted,
                               model_delta_stats *out);
model_sensitivity model_sensitivity_of(double ratio);
const char *model_sensitivity_name(model_sensitivity s);
/* The grade of a validation's scenarios by one method (counterfactual != 0). */
model_deploy_grade model_deploy_grade_of(const model_scenario *s, size_t n, int counterfactual);
const char *model_deploy_grade_name(model_deploy_grade g);

/* Validates a model on ds (already trimmed).  users 0: the largest users
 * value in ds.  NDT_EBADCONF (nothing computed) when ds cannot show a
 * scenario: a missing regime, or no transition with an observed direction. */
int model_validate(const feat_dataset *ds, int users, model_predict_fn predict, void *ctx,
                   model_validation *out, char *err, size_t errlen);
void model_validation_free(model_validation *v);

/* The "validation" object (malloc'ed JSON text, compact). */
char *model_validation_json(const model_validation *v, const char *model_id);
/* Rewrites DIR/<id>/model.json with top-level "deployment_grade" and
 * "validation" (replacing earlier ones), atomically (temp file + rename). */
int model_registry_set_validation(const char *dir, const char *id, const model_validation *v,
                                  char *err, size_t errlen);
/* Reads the trimming mode recorded in DIR/<id>/model.json. */
int model_registry_trim(const char *dir, const char *id, feat_trim_mode *out, char *err,
                        size_t errlen);

#endif
