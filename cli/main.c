/*
 * main.c: the ndtpipe binary, a dispatcher over subcommands.
 *
 * One binary keeps deployment simple (one container image, one package):
 * `ndtpipe scrape`, `ndtpipe harmonize`, ... run one stage each, and
 * `ndtpipe run` runs them all in one process.  The command table below is
 * the single list of commands; `ndtpipe --help` prints it.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define NDTPIPE_VERSION "0.1.0"

typedef struct cli_command {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} cli_command;

static const cli_command commands[] = {
    { "broker", cli_cmd_broker, "run an embedded Kafka-protocol broker on 127.0.0.1" },
    { "scrape", cli_cmd_scrape, "scrape Prometheus/OpenMetrics targets into Kafka (TDL)" },
    { "receive", cli_cmd_receive, "Prometheus remote-write receiver into Kafka (TDL)" },
    { "check", cli_cmd_check, "validate an exposition (check metrics), like promtool" },
    { "testbed", cli_cmd_testbed, "the emulated Kubernetes inference cluster" },
    { "harmonize", cli_cmd_harmonize, "telemetry into Smart Data Model entities (HDL)" },
    { "features", cli_cmd_features, "regime-aware features, streaming or batch" },
    { "export", cli_cmd_export, "the dataset CSV from what the pipeline stored" },
    { "train", cli_cmd_train, "train and evaluate a functional model" },
    { "validate", cli_cmd_validate, "matched-pairs validation and deployment grade" },
    { "report", cli_cmd_report, "Markdown tables and plots of a model's evaluation" },
    { "serve", cli_cmd_serve, "the what-if HTTP API" },
    { "bench", cli_cmd_bench, "benchmarks behind make bench" },
    { "run", cli_cmd_run, "every stage in one process on embedded defaults" },
};

static void print_usage(FILE *out)
{
    fprintf(out,
            "ndtpipe %s: the data path of a Network Digital Twin\n\n"
            "usage: ndtpipe <command> [options]   (ndtpipe <command> --help for its options)\n\n"
            "commands:\n",
            NDTPIPE_VERSION);
    for (size_t i = 0; i < NDT_ARRAY_LEN(commands); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return NDT_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        print_usage(stdout);
        return NDT_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("ndtpipe %s\n", NDTPIPE_VERSION);
        return NDT_EXIT_OK;
    }
    for (size_t i = 0; i < NDT_ARRAY_LEN(commands); i++) {
        if (strcmp(name, commands[i].name) != 0)
            continue;
        /* libcurl's global state is not thread-safe to set up lazily, and
         * several stages of one process (ndtpipe run) use curl: once here. */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = commands[i].fn(argc - 1, argv + 1);
        curl_global_cleanup();
        return rc;
    }
    fprintf(stderr, "ndtpipe: unknown command '%s'\n\n", name);
    print_usage(stderr);
    return NDT_EXIT_USAGE;
}
