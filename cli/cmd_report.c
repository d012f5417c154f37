/*
 * cmd_report.c: `ndtpipe report`: a registered model's evaluation as
 * Markdown and SVG (models/model_report.c).  Flags and exit codes only:
 * a missing flag, model or a foreign model.json exits 2, naming it.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "common/log.h"
#include "models/models.h"

static const char cli_report_help[] =
    "usage: ndtpipe report --registry DIR --model ID --out DIR\n\n"
    "Writes OUT/report.md (the paper's Tables III-VI analogues: grade bounds,\n"
    "accuracy, high-latency regions, per regime) and OUT/error-per-regime.svg\n"
    "from the model's registry entry.\n\n"
    "options:\n"
    "  --registry DIR   the model registry (required)\n"
    "  --model ID       the model id (required)\n"
    "  --out DIR        where to write the report (required; created)\n" CLI_COMMON_HELP;

int cli_cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        { "registry", required_argument, NULL, 'r' },
        { "model", required_argument, NULL, 'm' },
        { "out", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "report", *registry = NULL, *id = NULL, *out = NULL;
    char err[NDT_ERRBUF_SIZE];
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'r': registry = optarg; break;
        case 'm': id = optarg; break;
        case 'o': out = optarg; break;
        case 'h': fputs(cli_report_help, stdout); return NDT_EXIT_OK;
        default:
            if (cli_common_option(cmd, opt, optarg) == NDT_OK)
                break;
            return opt == '?' ? cli_usage_error(cmd, "unknown option") : NDT_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!registry)
        return cli_usage_error(cmd, "--registry: required");
    if (!id)
        return cli_usage_error(cmd, "--model: the model id is required");
    if (!out)
        return cli_usage_error(cmd, "--out: the report directory is required");
    int rc = model_report_write(registry, id, out, err, sizeof(err));
    if (rc != NDT_OK) {
        fprintf(stderr, "ndtpipe %s: %s\n", cmd, err);
        return rc == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
    }
    ndt_log(NDT_LOG_INFO, "report", "written", NDT_KV_STR("model_id", id), NDT_KV_STR("out", out));
    return NDT_EXIT_OK;
}
