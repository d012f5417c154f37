/*
 * cmd_validate.c: `ndtpipe validate`: matched-pairs consistency of a
 * registered model's what-if answers and its deployment grade
 * (models/model_validate.c, docs/MODELS.md "Validation").
 *
 * Everything that can be wrong with the input (flags, the model entry, the
 * dataset, a dataset that cannot show a scenario) is found before anything
 * is written, and exits 2 naming it; only a complete validation rewrites
 * the model's model.json (atomically).  The dataset is trimmed the way the
 * model's training data was (model.json features.trim), so the samples it
 * is judged on look like the samples it learnt from.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"
#include "features/features.h"
#include "models/model_validate.h"
#include "models/models.h"

enum {
    CLI_VALIDATE_OPT_USERS = 2300,
    CLI_VALIDATE_OPT_THREADS,
    CLI_VALIDATE_OPT_MAX_ROWS,
};

static const char cli_validate_help[] =
    "usage: ndtpipe validate --registry DIR --model ID --data FILE.csv [--json]\n\n"
    "Matched-pairs validation of a model's what-if answers (paper 002, Table VII):\n"
    "for pods +1, pods -1 and users -> each lower users value at the largest users\n"
    "value of the data, pairs of observed samples from the two regimes; Sign\n"
    "Agreement, MAE of the deltas, mean predicted and observed delta, Directional\n"
    "Sensitivity, on the matched after-sample and through the counterfactual\n"
    "engine (what the API answers).  The deployment grade (Excellent, Reliable,\n"
    "Unreliable; docs/MODELS.md) and the results are written into the model's\n"
    "model.json; the API serves only Excellent and Reliable models.\n\n"
    "options:\n"
    "  --registry DIR   the model registry (required)\n"
    "  --model ID       the model id (required)\n"
    "  --data FILE      a dataset CSV with the regimes to compare (required)\n"
    "  --json           print the results as one JSON object\n"
    "  --users N        the load the scenarios start from (default: the largest)\n"
    "  --threads T      prediction threads, 0 = all cores (default 0)\n"
    "  --max-rows N     refuse datasets with more rows (default 5000000)\n" CLI_COMMON_HELP;

typedef struct cli_validate_opts {
    const char *registry, *id, *data;
    int json, users, threads;
    size_t max_rows;
} cli_validate_opts;

/* XGBoost through libxgboost (threaded batches, as trained); any other
 * kind (the DNN) through the served predictor, which adds its baseline. */
typedef struct cli_predictor {
    model_xgb *model;
    feat_baseline baseline;
    model_predictor *served;
} cli_predictor;

static int cli_validate_predict_served(const cli_predictor *p, const feat_raw *rows, size_t n,
                                       double *ms, char *err, size_t errlen)
{
    double (*x)[FEAT_DIM] = calloc(n ? n : 1, sizeof(*x));
    if (!x) {
        snprintf(err, errlen, "out of memory predicting %zu rows", n);
        return NDT_ERROR;
    }
    for (size_t i = 0; i < n; i++)
        feat_compute(&rows[i], x[i]);
    int rc = model_predictor_predict_log(p->served, (const double (*)[FEAT_DIM])x, n, ms, err,
                                         errlen);
    for (size_t i = 0; rc == NDT_OK && i < n; i++)
        ms[i] = feat_target_inverse(ms[i]);
    free(x);
    return rc;
}

/* The one prediction path: features, XGBoost, the baseline, back to ms. */
static int cli_validate_predict(void *ctx, const feat_raw *rows, size_t n, double *ms, char *err,
                                size_t errlen)
{
    cli_predictor *p = ctx;
    if (p->served)
        return cli_validate_predict_served(p, rows, n, ms, err, errlen);
    float *x = calloc((n ? n : 1) * FEAT_DIM, sizeof(float));
    double *base = malloc((n ? n : 1) * sizeof(double));
    int rc = NDT_ERROR;
    if (!x || !base) {
        snprintf(err, errlen, "out of memory predicting %zu rows", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        double v[FEAT_DIM];
        feat_compute(&rows[i], v);
        for (int j = 0; j < FEAT_DIM; j++)
            x[i * FEAT_DIM + j] = (float)v[j];
        base[i] = feat_baseline_value(p->baseline, v);
    }
    if ((rc = model_xgb_predict(p->model, x, n, ms, err, errlen)) != NDT_OK)
        goto done;
    for (size_t i = 0; i < n; i++)
        ms[i] = feat_target_inverse(ms[i] + base[i]);
done:
    free(x);
    free(base);
    return rc;
}

static int cli_validate_parse_long(const char *flag, const char *arg, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max)
        return cli_usage_error("validate", "%s: expected an integer %ld..%ld, got '%s'", flag, min,
                               max, arg);
    *out = v;
    return NDT_EXIT_OK;
}

static int cli_validate_parse(int argc, char **argv, cli_validate_opts *o)
{
    static const struct option opts[] = {
        { "registry", required_argument, NULL, 'r' },
        { "model", required_argument, NULL, 'm' },
        { "data", required_argument, NULL, 'd' },
        { "json", no_argument, NULL, 'j' },
        { "users", required_argument, NULL, CLI_VALIDATE_OPT_USERS },
        { "threads", required_argument, NULL, CLI_VALIDATE_OPT_THREADS },
        { "max-rows", required_argument, NULL, CLI_VALIDATE_OPT_MAX_ROWS },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "validate";
    long v;
    int opt, rc = NDT_EXIT_OK;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'r': o->registry = optarg; break;
        case 'm': o->id = optarg; break;
        case 'd': o->data = optarg; break;
        case 'j': o->json = 1; break;
        case CLI_VALIDATE_OPT_USERS:
            if ((rc = cli_validate_parse_long("--users", optarg, 1, 1000000, &v)) == NDT_EXIT_OK)
                o->users = (int)v;
            break;
        case CLI_VALIDATE_OPT_THREADS:
            if ((rc = cli_validate_parse_long("--threads", optarg, 0, 1024, &v)) == NDT_EXIT_OK)
                o->threads = (int)v;
            break;
        case CLI_VALIDATE_OPT_MAX_ROWS:
            if ((rc = cli_validate_parse_long("--max-rows", optarg, 1, 1000000000, &v)) == NDT_EXIT_OK)
                o->max_rows = (size_t)v;
            break;
        case 'h': fputs(cli_validate_help, stdout); return -1;
        default:
            if (cli_common_option(cmd, opt, optarg) == NDT_OK)
                break;
            return opt == '?' ? cli_usage_error(cmd, "unknown option") : NDT_EXIT_USAGE;
        }
        if (rc != NDT_EXIT_OK)
            return rc;
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->registry)
        return cli_usage_error(cmd, "--registry: required");
    if (!o->id)
        return cli_usage_error(cmd, "--model: the model id is required");
    if (!o->data)
        return cli_usage_error(cmd, "--data: the dataset CSV is required");
    return NDT_EXIT_OK;
}

static void cli_validate_print(const model_validation *v, const char *id)
{
    printf("model %s at %d users: deployment grade %s (counterfactual), %s on matched samples\n\n",
           id, v->users, model_deploy_grade_name(v->grade),
           model_deploy_grade_name(v->matched_grade));
    printf("| scenario | method | mean predicted (ms) | mean observed (ms) | sign agreement | "
           "MAE delta (ms) | sensitivity | pairs |\n|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < v->nscenarios; i++) {
        const model_scenario *s = &v->scenarios[i];
        const model_delta_stats *st[2] = { &s->matched, &s->counterfactual };
        static const char *const method[2] = { "matched", "counterfactual" };
        for (int m = 0; m < 2; m++)
            printf("| %s | %s | %.2f | %.2f | %.3f | %.2f | %s (%.2f) | %zu |\n", s->name,
                   method[m], st[m]->mean_predicted, st[m]->mean_observed, st[m]->sign_agreement,
                   st[m]->mae_delta, model_sensitivity_name(st[m]->category), st[m]->sensitivity,
                   st[m]->n_pairs);
    }
    printf("\n| transition | pairs | observed (ms) | matched (ms) | counterfactual (ms) | "
           "sign agreement matched / counterfactual |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < v->nscenarios; i++)
        for (size_t j = 0; j < v->scenarios[i].ntransitions; j++) {
            const model_transition *t = &v->scenarios[i].transitions[j];
            printf("| %d x %d -> %d x %d | %zu | %.2f +- %.2f%s | %.2f | %.2f | %.3f / %.3f |\n",
                   t->from_users, t->from_pods, t->to_users, t->to_pods, t->n_pairs,
                   t->mean_observed, t->se_observed, t->direction ? "" : " (no direction)",
                   t->mean_matched, t->mean_counterfactual, t->sa_matched, t->sa_counterfactual);
        }
}

int cli_cmd_validate(int argc, char **argv)
{
    cli_validate_opts o = { 0 };
    char err[NDT_ERRBUF_SIZE];
    feat_dataset ds = { 0 };
    cli_predictor pred = { 0 };
    model_validation v = { 0 };
    feat_trim_mode trim = FEAT_TRIM_P1P99;
    size_t dropped = 0;
    int exit_code = NDT_EXIT_FAILURE, rc;

    rc = cli_validate_parse(argc, argv, &o);
    if (rc != NDT_EXIT_OK)
        return rc < 0 ? NDT_EXIT_OK : rc;

    const char *where = "";
    rc = model_registry_trim(o.registry, o.id, &trim, err, sizeof(err));
    char kind[16] = "";
    if (rc == NDT_OK)
        rc = model_registry_meta(o.registry, o.id, kind, sizeof(kind), &pred.baseline, err,
                                 sizeof(err));
    if (rc == NDT_OK && strcmp(kind, "xgboost") != 0)
        rc = model_predictor_load(o.registry, o.id, &pred.served, err, sizeof(err));
    else if (rc == NDT_OK)
        rc = model_registry_load(o.registry, o.id, o.threads, &pred.model, &pred.baseline, err,
                                 sizeof(err));
    if (rc == NDT_OK)
        rc = feat_csv_read(o.data, o.max_rows, &ds, err, sizeof(err));
    if (rc == NDT_OK && (rc = feat_trim(&ds, trim, &dropped, err, sizeof(err))) != NDT_OK)
        where = o.data;
    if (rc == NDT_OK && (rc = model_validate(&ds, o.users, cli_validate_predict, &pred, &v, err,
                                             sizeof(err))) != NDT_OK)
        where = o.data;
    if (rc != NDT_OK) {
        fprintf(stderr, "ndtpipe validate: %s%s%s\n", where, *where ? ": " : "", err);
        exit_code = rc == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
        goto done;
    }
    if (model_registry_set_validation(o.registry, o.id, &v, err, sizeof(err)) != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, "validate", "cannot record the validation",
                NDT_KV_STR("error", err));
        goto done;
    }
    ndt_log(NDT_LOG_INFO, "validate", "validated", NDT_KV_STR("model_id", o.id),
            NDT_KV_STR("deployment_grade", model_deploy_grade_name(v.grade)),
            NDT_KV_INT("users", v.users), NDT_KV_UINT("rows", ds.n),
            NDT_KV_UINT("rows_trimmed", dropped));
    if (o.json) {
        char *json = model_validation_json(&v, o.id);
        if (!json) {
            ndt_log(NDT_LOG_ERROR, "validate", "out of memory");
            goto done;
        }
        puts(json);
        free(json);
    } else {
        cli_validate_print(&v, o.id);
    }
    exit_code = fflush(stdout) == 0 ? NDT_EXIT_OK : NDT_EXIT_FAILURE;
done:
    model_validation_free(&v);
    model_xgb_free(pred.model);
    model_predictor_free(pred.served);
    feat_dataset_free(&ds);
    return exit_code;
}
