/*
 * cmd_features.c: `ndtpipe features`, batch mode (dataset CSV in,
 * features CSV out).
 *
 * Flags and exit codes only; the features live in features/.  Bad flags
 * or a bad dataset exit 2 with the flag or FILE:LINE named and nothing
 * written; the output is written to FILE.tmp and renamed, so a failed run
 * never leaves a truncated file under the real name.  The streaming mode
 * (Kafka ndt.sdm.entities -> ndt.features) comes with the HDL.
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

static const char cli_features_help[] =
    "usage: ndtpipe features --in DATASET.csv --out FEATURES.csv [--trim MODE]\n\n"
    "Regime-aware features (docs/FEATURES.md), batch mode: reads the dataset CSV\n"
    "(the contract's raw telemetry), trims outliers of the latency per regime\n"
    "(users, pods) and writes one row of features and log-latency target per\n"
    "sample kept.\n\n"
    "options:\n"
    "  --in FILE        the dataset CSV, - for stdin (required)\n"
    "  --out FILE       the features CSV, - for stdout (required)\n"
    "  --trim MODE      p1p99 (default, paper V-B), iqr, or none\n"
    "  --max-rows N     refuse datasets with more rows (default 5000000)\n" CLI_COMMON_HELP;

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

int cli_cmd_features(int argc, char **argv)
{
    static const struct option opts[] = {
        { "in", required_argument, NULL, 'i' },
        { "out", required_argument, NULL, 'o' },
        { "trim", required_argument, NULL, 't' },
        { "max-rows", required_argument, NULL, CLI_FEATURES_OPT_MAX_ROWS },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "features", *in_path = NULL, *out_path = NULL;
    feat_trim_mode trim = FEAT_TRIM_P1P99;
    size_t max_rows = FEAT_MAX_ROWS_DEFAULT;
    char err[NDT_ERRBUF_SIZE], *end;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
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
