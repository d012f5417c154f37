/*
 * cmd_train.c: `ndtpipe train`: dataset CSV -> features -> out-of-
 * distribution split -> model -> evaluation -> registry.
 *
 * Every flag and the dataset are validated before training starts, so bad
 * usage or a bad CSV exits 2 (the flag or FILE:LINE named) and nothing is
 * registered.  The split is by regime, not by random rows (paper V-B:
 * train on 200 and 400 users, test on the unseen 600), because a random
 * split would let a model score well by memorising regimes it will never
 * be asked about in production.  Progress with an ETA goes to stderr only
 * when it is a terminal, so logs and pipes stay clean.  --json prints one
 * JSON object (metrics, tables, grade, model_id) and nothing else on stdout.
 * --model xgboost and --model dnn share everything but the trainer, its
 * flags and the bytes registered (model.ubj or model.dnn).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/log.h"
#include "features/features.h"
#include "models/models.h"

enum {
    CLI_TRAIN_OPT_ROUNDS = 2200,
    CLI_TRAIN_OPT_DEPTH,
    CLI_TRAIN_OPT_THREADS,
    CLI_TRAIN_OPT_ETA,
    CLI_TRAIN_OPT_SEED,
    CLI_TRAIN_OPT_TRIM,
    CLI_TRAIN_OPT_PREDICTIONS,
    CLI_TRAIN_OPT_MAX_ROWS,
    CLI_TRAIN_OPT_BASELINE,
    CLI_TRAIN_OPT_MONOTONE,
    CLI_TRAIN_OPT_EPOCHS,
    CLI_TRAIN_OPT_BATCH,
    CLI_TRAIN_OPT_LR,
    CLI_TRAIN_OPT_DROPOUT,
};

static const char cli_train_help[] =
    "usage: ndtpipe train --data FILE.csv --model xgboost|dnn --train SEL --test SEL\n"
    "                     --registry DIR [options]\n\n"
    "Trains a functional model on the regime-aware features (docs/FEATURES.md)\n"
    "to predict ln(1 + latency ms), evaluates it on the test regimes in ms\n"
    "(MAE, RMSE, R^2, P95 absolute error, per regime, high-latency thresholds,\n"
    "grade: docs/MODELS.md) and registers it as DIR/<model-id>/.\n\n"
    "options:\n"
    "  --data FILE      the dataset CSV (contract header; required)\n"
    "  --model M        xgboost or dnn (docs/MODELS.md)\n"
    "  --train SEL      training regimes, e.g. users=200,400 (required)\n"
    "  --test SEL       test regimes, e.g. users=600 (required)\n"
    "  --registry DIR   where the model is registered (required)\n"
    "  --json           print the evaluation as one JSON object with model_id\n"
    "  --rounds N       boosting rounds (default 2000)\n"
    "  --depth D        maximum tree depth (default 8)\n"
    "  --eta X          learning rate (default 0.05)\n"
    "  --threads T      training threads, 0 = all cores (default 0)\n"
    "  --monotone M     on (default without --baseline): latency only rises with\n"
    "                   users, load and queue and falls with pods (docs/MODELS.md);\n"
    "                   off: free trees, the paper's configuration\n"
    "dnn options (256-128-64, batch normalisation, Huber loss, Adam):\n"
    "  --epochs N       passes over the training rows (default 60)\n"
    "  --batch N        mini-batch rows (default 256)\n"
    "  --lr X           Adam's learning rate (default 0.001)\n"
    "  --dropout X      dropout after every hidden layer, 0 <= X < 1 (default 0.3)\n"
    "  --seed S         the model's seed (default 1)\n"
    "  --trim MODE      outlier trimming per regime: p1p99 (default), iqr, none\n"
    "  --baseline B     none (default) or backlog: learn the log latency as a\n"
    "                   correction of ln(1 + backlog estimate in ms)\n"
    "  --predictions F  also write the test rows' features and predictions (CSV)\n"
    "  --max-rows N     refuse datasets with more rows (default 5000000)\n" CLI_COMMON_HELP;

typedef struct cli_train_opts {
    const char *data, *model, *registry, *predictions;
    feat_selector train, test;
    int have_train, have_test, json;
    feat_trim_mode trim;
    feat_baseline baseline;
    size_t max_rows;
    model_params params;
    model_dnn_params dnn;
    int is_dnn;
    int monotone_set; /* --monotone given */
} cli_train_opts;

typedef struct cli_progress {
    int tty;
    const char *unit; /* "round" or "epoch" */
    struct timespec start;
    double last_print;
} cli_progress;

static double cli_elapsed(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* A progress line with an ETA, at most 10 times a second; stops on a signal. */
static int cli_train_progress(void *ctx, int round, int rounds)
{
    cli_progress *p = ctx;
    if (p->tty) {
        double t = cli_elapsed(&p->start);
        if (t - p->last_print >= 0.1 || round == rounds) {
            double eta = round > 0 ? t / round * (rounds - round) : 0;
            fprintf(stderr, "\rtraining: %s %d/%d (%3d%%), %.1fs elapsed, ETA %.1fs   ", p->unit,
                    round, rounds, (int)(100.0 * round / rounds), t, eta);
            if (round == rounds)
                fputc('\n', stderr);
            p->last_print = t;
        }
    }
    return cli_stop_requested();
}

static int cli_parse_int(const char *cmd, const char *flag, const char *arg, long min, long max,
                         long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max)
        return cli_usage_error(cmd, "%s: expected an integer %ld..%ld, got '%s'", flag, min, max,
                               arg);
    *out = v;
    return NDT_EXIT_OK;
}

static int cli_train_parse(int argc, char **argv, cli_train_opts *o)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "model", required_argument, NULL, 'm' },
        { "train", required_argument, NULL, 'T' },
        { "test", required_argument, NULL, 'E' },
        { "registry", required_argument, NULL, 'r' },
        { "json", no_argument, NULL, 'j' },
        { "rounds", required_argument, NULL, CLI_TRAIN_OPT_ROUNDS },
        { "depth", required_argument, NULL, CLI_TRAIN_OPT_DEPTH },
        { "threads", required_argument, NULL, CLI_TRAIN_OPT_THREADS },
        { "eta", required_argument, NULL, CLI_TRAIN_OPT_ETA },
        { "seed", required_argument, NULL, CLI_TRAIN_OPT_SEED },
        { "trim", required_argument, NULL, CLI_TRAIN_OPT_TRIM },
        { "predictions", required_argument, NULL, CLI_TRAIN_OPT_PREDICTIONS },
        { "max-rows", required_argument, NULL, CLI_TRAIN_OPT_MAX_ROWS },
        { "baseline", required_argument, NULL, CLI_TRAIN_OPT_BASELINE },
        { "monotone", required_argument, NULL, CLI_TRAIN_OPT_MONOTONE },
        { "epochs", required_argument, NULL, CLI_TRAIN_OPT_EPOCHS },
        { "batch", required_argument, NULL, CLI_TRAIN_OPT_BATCH },
        { "lr", required_argument, NULL, CLI_TRAIN_OPT_LR },
        { "dropout", required_argument, NULL, CLI_TRAIN_OPT_DROPOUT },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "train";
    char err[NDT_ERRBUF_SIZE], *end;
    long v;
    int opt, rc;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        rc = NDT_EXIT_OK;
        switch (opt) {
        case 'd': o->data = optarg; break;
        case 'm': o->model = optarg; break;
        case 'r': o->registry = optarg; break;
        case 'j': o->json = 1; break;
        case CLI_TRAIN_OPT_PREDICTIONS: o->predictions = optarg; break;
        case 'T':
        case 'E':
            if (feat_selector_parse(optarg, opt == 'T' ? &o->train : &o->test, err, sizeof(err)) != NDT_OK)
                return cli_usage_error(cmd, "%s: %s", opt == 'T' ? "--train" : "--test", err);
            *(opt == 'T' ? &o->have_train : &o->have_test) = 1;
            break;
        case CLI_TRAIN_OPT_ROUNDS:
            if ((rc = cli_parse_int(cmd, "--rounds", optarg, 1, MODEL_MAX_ROUNDS, &v)) == 0)
                o->params.rounds = (int)v;
            break;
        case CLI_TRAIN_OPT_DEPTH:
            if ((rc = cli_parse_int(cmd, "--depth", optarg, 1, MODEL_MAX_DEPTH, &v)) == 0)
                o->params.depth = (int)v;
            break;
        case CLI_TRAIN_OPT_THREADS:
            if ((rc = cli_parse_int(cmd, "--threads", optarg, 0, 1024, &v)) == 0)
                o->params.threads = o->dnn.threads = (int)v;
            break;
        case CLI_TRAIN_OPT_SEED:
            if ((rc = cli_parse_int(cmd, "--seed", optarg, 0, 2147483647L, &v)) == 0)
                o->params.seed = o->dnn.seed = (uint64_t)v;
            break;
        case CLI_TRAIN_OPT_EPOCHS:
            if ((rc = cli_parse_int(cmd, "--epochs", optarg, 1, MODEL_DNN_MAX_EPOCHS, &v)) == 0)
                o->dnn.epochs = (int)v;
            break;
        case CLI_TRAIN_OPT_BATCH:
            if ((rc = cli_parse_int(cmd, "--batch", optarg, 2, MODEL_DNN_MAX_BATCH, &v)) == 0)
                o->dnn.batch = (int)v;
            break;
        case CLI_TRAIN_OPT_LR:
            errno = 0;
            o->dnn.lr = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(o->dnn.lr > 0 && o->dnn.lr <= 1))
                return cli_usage_error(cmd, "--lr: expected a number in (0, 1], got '%s'", optarg);
            break;
        case CLI_TRAIN_OPT_DROPOUT:
            errno = 0;
            o->dnn.dropout = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(o->dnn.dropout >= 0 && o->dnn.dropout < 1))
                return cli_usage_error(cmd, "--dropout: expected a number in [0, 1), got '%s'", optarg);
            break;
        case CLI_TRAIN_OPT_MAX_ROWS:
            if ((rc = cli_parse_int(cmd, "--max-rows", optarg, 1, 1000000000L, &v)) == 0)
                o->max_rows = (size_t)v;
            break;
        case CLI_TRAIN_OPT_ETA:
            errno = 0;
            o->params.eta = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(o->params.eta > 0 && o->params.eta <= 1))
                return cli_usage_error(cmd, "--eta: expected a number in (0, 1], got '%s'", optarg);
            break;
        case CLI_TRAIN_OPT_TRIM:
            if (feat_trim_parse(optarg, &o->trim) != NDT_OK)
                return cli_usage_error(cmd, "--trim: expected iqr, p1p99 or none, got '%s'", optarg);
            break;
        case CLI_TRAIN_OPT_BASELINE:
            if (feat_baseline_parse(optarg, &o->baseline) != NDT_OK)
                return cli_usage_error(cmd, "--baseline: expected none or backlog, got '%s'", optarg);
            break;
        case CLI_TRAIN_OPT_MONOTONE:
            o->monotone_set = 1;
            if (strcmp(optarg, "on") == 0)
                o->params.monotone = 1;
            else if (strcmp(optarg, "off") == 0)
                o->params.monotone = 0;
            else
                return cli_usage_error(cmd, "--monotone: expected on or off, got '%s'", optarg);
            break;
        case 'h': fputs(cli_train_help, stdout); return -1;
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
    if (!o->data)
        return cli_usage_error(cmd, "--data: the dataset CSV is required");
    if (!o->model)
        return cli_usage_error(cmd, "--model: required (xgboost or dnn)");
    o->is_dnn = strcmp(o->model, "dnn") == 0;
    if (!o->is_dnn && strcmp(o->model, "xgboost") != 0)
        return cli_usage_error(cmd, "--model: expected xgboost or dnn, got '%s'", o->model);
    if (!o->have_train)
        return cli_usage_error(cmd, "--train: required, e.g. users=200,400");
    if (!o->have_test)
        return cli_usage_error(cmd, "--test: required, e.g. users=600");
    if (!o->registry)
        return cli_usage_error(cmd, "--registry: the registry directory is required");
    /* The directions hold for the log latency itself; with a baseline the
     * trees learn latency / backlog, which falls as the queue grows. */
    if (o->baseline != FEAT_BASELINE_NONE) {
        if (o->monotone_set && o->params.monotone)
            return cli_usage_error(cmd, "--monotone on: the constraints hold the log latency, and with "
                                        "--baseline backlog the trees learn its ratio to the backlog");
        o->params.monotone = 0;
    }
    return NDT_EXIT_OK;
}

/* The rows of ds that sel selects, as a float matrix, the targets the
 * model learns (log latency minus the baseline), the baselines, raw rows. */
typedef struct cli_split {
    float *x, *y;
    double *base;
    feat_raw *rows;
    size_t n;
} cli_split;

static int cli_split_make(const feat_dataset *ds, const feat_selector *sel, feat_baseline baseline,
                          cli_split *s)
{
    size_t n = 0;
    for (size_t i = 0; i < ds->n; i++)
        n += (size_t)feat_selector_match(sel, &ds->rows[i]);
    *s = (cli_split){ 0 };
    s->x = malloc((n ? n : 1) * FEAT_DIM * sizeof(float));
    s->y = malloc((n ? n : 1) * sizeof(float));
    s->rows = malloc((n ? n : 1) * sizeof(feat_raw));
    s->base = malloc((n ? n : 1) * sizeof(double));
    if (!s->x || !s->y || !s->rows || !s->base)
        return NDT_ERROR;
    for (size_t i = 0; i < ds->n; i++) {
        if (!feat_selector_match(sel, &ds->rows[i]))
            continue;
        double x[FEAT_DIM];
        feat_compute(&ds->rows[i], x);
        for (int j = 0; j < FEAT_DIM; j++)
            s->x[s->n * FEAT_DIM + j] = (float)x[j];
        s->base[s->n] = feat_baseline_value(baseline, x);
        s->y[s->n] = (float)(feat_target(ds->rows[i].infer_ms) - s->base[s->n]);
        s->rows[s->n++] = ds->rows[i];
    }
    return NDT_OK;
}

static void cli_split_free(cli_split *s)
{
    free(s->x);
    free(s->y);
    free(s->rows);
    free(s->base);
}

static void cli_train_print(const model_info *info)
{
    const model_eval *e = info->eval;
    const model_metrics *m = &e->overall;
    printf("model %s (%s), trained on %s (%zu rows) in %.1f s, tested on %s (%zu rows)\n\n",
           info->id, info->kind, info->train_selector, info->n_train, info->train_seconds,
           info->test_selector, info->n_test);
    printf("| MAE (ms) | RMSE (ms) | R^2 | P95 error (ms) | grade |\n|---|---|---|---|---|\n");
    printf("| %.2f | %.2f | %.4f | %.2f | %s |\n\n", m->mae, m->rmse, m->r2, m->p95_abs,
           model_grade_name(e->grade));
    printf("| threshold | samples | MAE (ms) | RMSE (ms) | R^2 |\n|---|---|---|---|---|\n");
    for (int t = 0; t < MODEL_NTHRESHOLDS; t++)
        printf("| >= %.1f ms (P%.1f) | %zu | %.2f | %.2f | %.4f |\n", e->thresholds[t].threshold_ms,
               100 * e->thresholds[t].quantile, e->thresholds[t].metrics.n,
               e->thresholds[t].metrics.mae, e->thresholds[t].metrics.rmse,
               e->thresholds[t].metrics.r2);
    printf("\n| users | pods | n | MAE (ms) | R^2 |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < e->nregimes; i++)
        printf("| %d | %d | %zu | %.2f | %.4f |\n", e->regimes[i].users, e->regimes[i].pods,
               e->regimes[i].metrics.n, e->regimes[i].metrics.mae, e->regimes[i].metrics.r2);
}

static int cli_train_write_predictions(const char *path, const cli_split *test, const double *out)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        ndt_log(NDT_LOG_ERROR, "train", "cannot write the predictions", NDT_KV_STR("file", path),
                NDT_KV_STR("error", strerror(errno)));
        return NDT_ERROR;
    }
    fputs("timestamp_ms", f);
    for (int j = 0; j < FEAT_DIM; j++)
        fprintf(f, ",%s", feat_names[j]);
    fputs(",observed_ms,model_output,predicted_log,predicted_ms\n", f);
    for (size_t i = 0; i < test->n; i++) {
        fprintf(f, "%lld", (long long)test->rows[i].timestamp_ms);
        /* %.9g: the floats the model saw, read back exactly. */
        for (int j = 0; j < FEAT_DIM; j++)
            fprintf(f, ",%.9g", test->x[i * FEAT_DIM + j]);
        /* model_output is the model's own number (XGBoost's float, or the DNN's), before the baseline. */
        fprintf(f, ",%.17g,%.9g,%.17g,%.17g\n", test->rows[i].infer_ms, (float)out[i],
                out[i] + test->base[i], feat_target_inverse(out[i] + test->base[i]));
    }
    if (fclose(f) != 0)
        return NDT_ERROR;
    return NDT_OK;
}

/* Every regime of both sides needs enough rows to be learnt or judged
 * (also with --trim none, which skips the trimmer's own check); a regime
 * on both sides makes the test in-sample, which is allowed but said. */
static int cli_train_check_regimes(const char *data, const cli_split *train, const cli_split *test)
{
    const cli_split *sides[2] = { train, test };
    feat_regime *reg[2] = { NULL, NULL };
    size_t nreg[2] = { 0, 0 };
    char err[NDT_ERRBUF_SIZE];
    int rc = NDT_EXIT_OK;
    for (int s = 0; s < 2 && rc == NDT_EXIT_OK; s++) {
        feat_dataset view = { sides[s]->rows, sides[s]->n, sides[s]->n };
        if (feat_regimes(&view, &reg[s], &nreg[s], err, sizeof(err)) != NDT_OK) {
            ndt_log(NDT_LOG_ERROR, "train", "out of memory");
            rc = NDT_EXIT_FAILURE;
            break;
        }
        for (size_t i = 0; i < nreg[s]; i++) {
            if (reg[s][i].n < FEAT_MIN_REGIME_ROWS) {
                fprintf(stderr, "ndtpipe train: %s: regime users=%d pods=%d has %zu rows, fewer "
                        "than the %d needed\n", data, reg[s][i].users, reg[s][i].pods, reg[s][i].n,
                        FEAT_MIN_REGIME_ROWS);
                rc = NDT_EXIT_USAGE;
                break;
            }
        }
    }
    for (size_t i = 0; rc == NDT_EXIT_OK && i < nreg[1]; i++)
        for (size_t j = 0; j < nreg[0]; j++)
            if (reg[1][i].users == reg[0][j].users && reg[1][i].pods == reg[0][j].pods) {
                ndt_log(NDT_LOG_WARN, "train", "test regime also in training: in-sample evaluation",
                        NDT_KV_INT("users", reg[1][i].users), NDT_KV_INT("pods", reg[1][i].pods));
                break;
            }
    free(reg[0]);
    free(reg[1]);
    return rc;
}

/* Runs everything after parsing; returns an exit code. */
static int cli_train_run(const cli_train_opts *o)
{
    char err[NDT_ERRBUF_SIZE], *ubj = NULL, *json = NULL;
    size_t ubj_len = 0, dropped = 0;
    feat_dataset ds = { 0 };
    cli_split train = { 0 }, test = { 0 };
    model_xgb *model = NULL;
    model_dnn *dnn = NULL;
    model_eval eval = { 0 };
    model_info info = { .kind = o->is_dnn ? "dnn" : "xgboost", .params = o->params, .trim = o->trim,
                        .baseline = o->baseline, .dnn = o->is_dnn ? &o->dnn : NULL };
    double *pred = NULL, *pred_ms = NULL, *obs_ms = NULL;
    cli_progress progress = { .tty = isatty(STDERR_FILENO), .unit = o->is_dnn ? "epoch" : "round" };
    int exit_code = NDT_EXIT_FAILURE, rc;

    /* The reader's messages carry FILE:LINE; the trimmer's need the file. */
    const char *where = "";
    rc = feat_csv_read(o->data, o->max_rows, &ds, err, sizeof(err));
    if (rc == NDT_OK && (rc = feat_trim(&ds, o->trim, &dropped, err, sizeof(err))) != NDT_OK)
        where = o->data;
    if (rc != NDT_OK) {
        fprintf(stderr, "ndtpipe train: %s%s%s\n", where, *where ? ": " : "", err);
        exit_code = rc == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
        goto done;
    }
    feat_selector_format(&o->train, info.train_selector, sizeof(info.train_selector));
    feat_selector_format(&o->test, info.test_selector, sizeof(info.test_selector));
    if (cli_split_make(&ds, &o->train, o->baseline, &train) != NDT_OK ||
        cli_split_make(&ds, &o->test, o->baseline, &test) != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, "train", "out of memory splitting the dataset");
        goto done;
    }
    if (train.n == 0 || test.n == 0) {
        fprintf(stderr, "ndtpipe train: %s: no rows match %s %s\n", o->data,
                train.n == 0 ? "--train" : "--test", train.n == 0 ? info.train_selector : info.test_selector);
        exit_code = NDT_EXIT_USAGE;
        goto done;
    }
    if ((rc = cli_train_check_regimes(o->data, &train, &test)) != NDT_EXIT_OK) {
        exit_code = rc;
        goto done;
    }
    if (o->is_dnn)
        ndt_log(NDT_LOG_INFO, "train", "training", NDT_KV_STR("model", info.kind),
                NDT_KV_UINT("rows_train", train.n), NDT_KV_UINT("rows_test", test.n),
                NDT_KV_UINT("rows_trimmed", dropped), NDT_KV_INT("epochs", o->dnn.epochs),
                NDT_KV_INT("batch", o->dnn.batch), NDT_KV_DOUBLE("lr", o->dnn.lr),
                NDT_KV_DOUBLE("dropout", o->dnn.dropout), NDT_KV_INT("threads", o->dnn.threads));
    else
        ndt_log(NDT_LOG_INFO, "train", "training", NDT_KV_STR("model", info.kind),
                NDT_KV_UINT("rows_train", train.n), NDT_KV_UINT("rows_test", test.n),
                NDT_KV_UINT("rows_trimmed", dropped), NDT_KV_INT("rounds", o->params.rounds),
                NDT_KV_INT("depth", o->params.depth), NDT_KV_INT("threads", o->params.threads));

    clock_gettime(CLOCK_MONOTONIC, &progress.start);
    rc = o->is_dnn ? model_dnn_train(train.x, train.y, train.n, &o->dnn, cli_train_progress,
                                     &progress, &dnn, err, sizeof(err))
                   : model_xgb_train(train.x, train.y, train.n, &o->params, cli_train_progress,
                                     &progress, &model, err, sizeof(err));
    if (rc != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, "train", "training failed", NDT_KV_STR("error", err));
        goto done;
    }
    info.train_seconds = cli_elapsed(&progress.start);

    pred = malloc(test.n * sizeof(double));
    pred_ms = malloc(test.n * sizeof(double));
    obs_ms = malloc(test.n * sizeof(double));
    if (!pred || !pred_ms || !obs_ms) {
        ndt_log(NDT_LOG_ERROR, "train", "out of memory");
        goto done;
    }
    rc = o->is_dnn ? model_dnn_predict(dnn, test.x, test.n, pred, err, sizeof(err))
                   : model_xgb_predict(model, test.x, test.n, pred, err, sizeof(err));
    if (rc != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, "train", "prediction failed", NDT_KV_STR("error", err));
        goto done;
    }
    for (size_t i = 0; i < test.n; i++) {
        pred_ms[i] = feat_target_inverse(pred[i] + test.base[i]);
        obs_ms[i] = test.rows[i].infer_ms;
    }
    if (model_evaluate(test.rows, obs_ms, pred_ms, test.n, &eval, err, sizeof(err)) != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, "train", "evaluation failed", NDT_KV_STR("error", err));
        goto done;
    }
    rc = o->is_dnn ? model_dnn_save_buffer(dnn, &ubj, &ubj_len, err, sizeof(err))
                   : model_xgb_save_buffer(model, &ubj, &ubj_len, err, sizeof(err));
    if (rc != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, "train", "cannot save the model", NDT_KV_STR("error", err));
        goto done;
    }
    /* The training window and regimes, for the registry. */
    feat_dataset train_view = { train.rows, train.n, train.n };
    if (feat_regimes(&train_view, &info.train_regimes, &info.ntrain_regimes, err, sizeof(err)) != NDT_OK)
        goto done;
    info.train_from_ms = info.train_to_ms = train.rows[0].timestamp_ms;
    for (size_t i = 1; i < train.n; i++) {
        if (train.rows[i].timestamp_ms < info.train_from_ms)
            info.train_from_ms = train.rows[i].timestamp_ms;
        if (train.rows[i].timestamp_ms > info.train_to_ms)
            info.train_to_ms = train.rows[i].timestamp_ms;
    }
    info.n_train = train.n;
    info.n_test = test.n;
    info.eval = &eval;
    info.test_rows = test.rows;
    info.test_predicted_ms = pred_ms;
    info.created_s = (int64_t)time(NULL);
    model_make_id(o->is_dnn ? "dnn" : "xgb", info.created_s, ubj, ubj_len, info.id, sizeof(info.id));
    if ((rc = model_registry_save(o->registry, &info, ubj, ubj_len, err, sizeof(err))) != NDT_OK) {
        fprintf(stderr, "ndtpipe train: cannot register the model: %s\n", err);
        exit_code = rc == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
        goto done;
    }
    if (o->predictions && cli_train_write_predictions(o->predictions, &test, pred) != NDT_OK)
        goto done;
    ndt_log(NDT_LOG_INFO, "train", "registered", NDT_KV_STR("model_id", info.id),
            NDT_KV_DOUBLE("r2", eval.overall.r2), NDT_KV_DOUBLE("mae_ms", eval.overall.mae),
            NDT_KV_STR("grade", model_grade_name(eval.grade)),
            NDT_KV_DOUBLE("train_seconds", info.train_seconds));
    if (o->json) {
        json = model_info_json(&info, 0);
        if (!json)
            goto done;
        puts(json);
    } else {
        cli_train_print(&info);
    }
    exit_code = NDT_EXIT_OK;
done:
    free(json);
    free(info.train_regimes);
    free(ubj);
    free(pred);
    free(pred_ms);
    free(obs_ms);
    model_eval_free(&eval);
    model_xgb_free(model);
    model_dnn_free(dnn);
    cli_split_free(&train);
    cli_split_free(&test);
    feat_dataset_free(&ds);
    return exit_code;
}

int cli_cmd_train(int argc, char **argv)
{
    cli_train_opts o = { .trim = FEAT_TRIM_P1P99, .max_rows = FEAT_MAX_ROWS_DEFAULT };
    model_params_default(&o.params);
    model_dnn_params_default(&o.dnn);
    int rc = cli_train_parse(argc, argv, &o);
    if (rc == -1)
        return NDT_EXIT_OK; /* --help */
    if (rc != NDT_EXIT_OK)
        return rc;
    cli_install_signal_handlers();
    return cli_train_run(&o);
}
