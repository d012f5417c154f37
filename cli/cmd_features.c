/*
 * cmd_features.c: `ndtpipe features`, batch mode (dataset CSV in,
 * features CSV out) or, with --brokers, streaming mode (ndt.sdm.entities
 * in, ndt.features out: features/feat_stage.c).
 *
 * Flags and exit codes only; the features live in features/.  Bad flags
 * or a bad dataset exit 2 with the flag or FILE:LINE named and nothing
 * written; the output is written to FILE.tmp and renamed, so a failed run
 * never leaves a truncated file under the real name.  Both modes compute
 * a row's features with the same function (feat_compute).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"
#include "features/features.h"

#define CLI_FEATURES_OPT_MAX_ROWS 2100
#define CLI_FEATURES_OPT_IN_TOPIC 2101
#define CLI_FEATURES_OPT_OUT_TOPIC 2102
#define CLI_FEATURES_OPT_GROUP 2103
#define CLI_FEATURES_OPT_WINDOW 2104
#define CLI_FEATURES_OPT_LATENESS 2105
#define CLI_FEATURES_OPT_WEB 2106

static const char cli_features_help[] =
    "usage: ndtpipe features --in DATASET.csv --out FEATURES.csv [--trim MODE]\n"
    "       ndtpipe features --brokers B [--window D] [--lateness D] [options]\n\n"
    "Regime-aware features (docs/FEATURES.md), batch mode: reads the dataset CSV\n"
    "(the contract's raw telemetry), trims outliers of the latency per regime\n"
    "(users, pods) and writes one row of features and log-latency target per\n"
    "sample kept.\n\n"
    "options:\n"
    "  --in FILE        the dataset CSV, - for stdin (required)\n"
    "  --out FILE       the features CSV, - for stdout (required)\n"
    "  --trim MODE      p1p99 (default, paper V-B), iqr, or none\n"
    "  --max-rows N     refuse datasets with more rows (default 5000000)\n\n"
    "Streaming mode (--brokers): reads the twin's entities (NGSI-LD fragments) from\n"
    "Kafka, rebuilds the raw row of each service at each instant as `export` does,\n"
    "and publishes one JSON object per service and window: the mean features, the\n"
    "regime and the window's bounds (docs/FEATURES.md).  Runs until SIGINT/SIGTERM.\n"
    "  --brokers LIST   Kafka bootstrap servers, or 'embedded'\n"
    "  --in-topic T     input topic (default ndt.sdm.entities)\n"
    "  --out-topic T    output topic (default ndt.features)\n"
    "  --group G        consumer group (default ndtpipe-features)\n"
    "  --window D       window length (default 1s); 0 publishes every row\n"
    "  --lateness D     how long an instant waits for late fragments (default 200ms)\n"
    "  --web.listen-address HOST:PORT   serve /metrics and /healthz\n"
    "  -X key=value     librdkafka property, applied last (repeatable)\n" CLI_COMMON_HELP;

static int cli_features_write(const feat_dataset *ds, const char *out_path)
{
    char err[NDT_ERRBUF_SIZE], tmp[4096];
    FILE *out = stdout;
    int to_stdout = strcmp(out_path, "-") == 0;
    if (!to_stdout) {
        snprintf(tmp, sizeof(tmp), "%s.tmp", out_path);
        out = fopen(tmp, "w");
        if (!out) {
            ndt_log(NDT_LOG_ERROR, "features", "cannot write the features", NDT_KV_STR("file", tmp),
                    NDT_KV_STR("error", strerror(errno)));
            return NDT_EXIT_FAILURE;
        }
    }
    int rc = feat_csv_write(ds, out, err, sizeof(err));
    if (!to_stdout && fclose(out) != 0 && rc == NDT_OK) {
        snprintf(err, sizeof(err), "closing the features: %s", strerror(errno));
        rc = NDT_ERROR;
    }
    if (rc == NDT_OK && !to_stdout && rename(tmp, out_path) != 0) {
        snprintf(err, sizeof(err), "renaming into place: %s", strerror(errno));
        rc = NDT_ERROR;
    }
    if (rc != NDT_OK) {
        if (!to_stdout)
            remove(tmp);
        ndt_log(NDT_LOG_ERROR, "features", "cannot write the features", NDT_KV_STR("error", err));
        return NDT_EXIT_FAILURE;
    }
    return NDT_EXIT_OK;
}

static int cli_features_stream(const char *cmd, const feat_stage_options *o)
{
    char err[NDT_ERRBUF_SIZE];
    cli_install_signal_handlers();
    int rc = feat_stage_run(o, err, sizeof(err));
    if (rc != NDT_OK) {
        fprintf(stderr, "ndtpipe %s: %s\n", cmd, err);
        return rc == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
    }
    return NDT_EXIT_OK;
}

int cli_cmd_features(int argc, char **argv)
{
    static const struct option opts[] = {
        { "in", required_argument, NULL, 'i' },
        { "out", required_argument, NULL, 'o' },
        { "trim", required_argument, NULL, 't' },
        { "max-rows", required_argument, NULL, CLI_FEATURES_OPT_MAX_ROWS },
        { "brokers", required_argument, NULL, CLI_OPT_BROKERS },
        { "in-topic", required_argument, NULL, CLI_FEATURES_OPT_IN_TOPIC },
        { "out-topic", required_argument, NULL, CLI_FEATURES_OPT_OUT_TOPIC },
        { "group", required_argument, NULL, CLI_FEATURES_OPT_GROUP },
        { "window", required_argument, NULL, CLI_FEATURES_OPT_WINDOW },
        { "lateness", required_argument, NULL, CLI_FEATURES_OPT_LATENESS },
        { "web.listen-address", required_argument, NULL, CLI_FEATURES_OPT_WEB },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "features", *in_path = NULL, *out_path = NULL;
    feat_trim_mode trim = FEAT_TRIM_P1P99;
    size_t max_rows = FEAT_MAX_ROWS_DEFAULT;
    char err[NDT_ERRBUF_SIZE], *end;
    int opt, window_ms = 1000, lateness_ms = 200;
    cli_kafka_flags kafka;
    feat_stage_options so = { 0 };
    cli_kafka_flags_init(&kafka);
    kafka.brokers = NULL;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "hX:", opts, NULL)) != -1) {
        switch (opt) {
        case CLI_OPT_BROKERS:
        case 'X':
            if (cli_kafka_flag(cmd, opt, optarg, &kafka) != NDT_OK)
                return NDT_EXIT_USAGE;
            break;
        case CLI_FEATURES_OPT_IN_TOPIC: so.in_topic = optarg; break;
        case CLI_FEATURES_OPT_OUT_TOPIC: so.out_topic = optarg; break;
        case CLI_FEATURES_OPT_GROUP: so.group = optarg; break;
        case CLI_FEATURES_OPT_WEB: so.metrics_listen = optarg; break;
        case CLI_FEATURES_OPT_WINDOW:
            if (strcmp(optarg, "0") == 0)
                window_ms = 0;
            else if (cli_duration_ms(cmd, "--window", optarg, &window_ms) != NDT_OK)
                return NDT_EXIT_USAGE;
            break;
        case CLI_FEATURES_OPT_LATENESS:
            if (cli_duration_ms(cmd, "--lateness", optarg, &lateness_ms) != NDT_OK)
                return NDT_EXIT_USAGE;
            break;
        case 'i': in_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 't':
            if (feat_trim_parse(optarg, &trim) != NDT_OK)
                return cli_usage_error(cmd, "--trim: expected iqr, p1p99 or none, got '%s'", optarg);
            break;
        case CLI_FEATURES_OPT_MAX_ROWS:
            errno = 0;
            max_rows = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-' || max_rows == 0)
                return cli_usage_error(cmd, "--max-rows: expected a positive integer, got '%s'", optarg);
            break;
        case 'h': fputs(cli_features_help, stdout); return NDT_EXIT_OK;
        default:
            if (cli_common_option(cmd, opt, optarg) == NDT_OK)
                break;
            return opt == '?' ? cli_usage_error(cmd, "unknown option") : NDT_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (kafka.brokers) {
        if (in_path || out_path)
            return cli_usage_error(cmd, "--in/--out (batch) and --brokers (streaming) exclude "
                                        "each other");
        so.brokers = cli_kafka_bootstrap(cmd, &kafka);
        if (!so.brokers)
            return NDT_EXIT_FAILURE;
        so.xopts = &kafka.xopts;
        so.window_ms = window_ms;
        so.lateness_ms = lateness_ms;
        so.stop = &cli_stop_flag;
        int code = cli_features_stream(cmd, &so);
        cli_kafka_flags_free(&kafka);
        return code;
    }
    cli_kafka_flags_free(&kafka);
    if (!in_path)
        return cli_usage_error(cmd, "--in: the dataset CSV is required");
    if (!out_path)
        return cli_usage_error(cmd, "--out: the features CSV is required");

    feat_dataset ds;
    size_t dropped = 0, read_rows;
    int rc = feat_csv_read(in_path, max_rows, &ds, err, sizeof(err));
    if (rc != NDT_OK) {
        fprintf(stderr, "ndtpipe %s: %s\n", cmd, err);
        return rc == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
    }
    read_rows = ds.n;
    rc = feat_trim(&ds, trim, &dropped, err, sizeof(err));
    if (rc != NDT_OK) {
        fprintf(stderr, "ndtpipe %s: %s: %s\n", cmd, in_path, err);
        feat_dataset_free(&ds);
        return rc == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
    }
    int exit_code = cli_features_write(&ds, out_path);
    if (exit_code == NDT_EXIT_OK)
        ndt_log(NDT_LOG_INFO, "features", "written", NDT_KV_STR("file", out_path),
                NDT_KV_UINT("rows_read", read_rows), NDT_KV_UINT("rows_trimmed", dropped),
                NDT_KV_UINT("rows_written", ds.n), NDT_KV_STR("trim", feat_trim_name(trim)));
    feat_dataset_free(&ds);
    return exit_code;
}
