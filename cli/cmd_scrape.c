/*
 * cmd_scrape.c: `ndtpipe scrape`, the Telemetry Data Layer as a command.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/config.h"
#include "common/kafka.h"
#include "common/log.h"
#include "ingest/ingest.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ndtpipe scrape --config FILE --brokers LIST [options]\n\n"
            "Scrapes the targets of FILE's scrape_configs (Prometheus's format: an existing\n"
            "prometheus.yml works) on a fixed schedule and publishes every sample to Kafka.\n\n"
            "options:\n"
            "  --config FILE     scrape configuration (required)\n" CLI_KAFKA_HELP
            "  --check-config    validate the configuration and its targets, then exit\n"
            "  --stats-file F    write a JSON summary (scrapes, ticks, jitter) at exit\n"
            "  --web.listen-address HOST:PORT\n"
            "                    serve the scraper's own /metrics and /healthz there\n" CLI_COMMON_HELP);
}

static int check_config(const char *path)
{
    char err[NDT_ERRBUF_SIZE];
    if (ingest_scrape_config_check(path, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return NDT_EXIT_USAGE;
    }
    printf("%s: ok\n", path);
    return NDT_EXIT_OK;
}

int cli_cmd_scrape(int argc, char **argv)
{
    enum { OPT_CONFIG = 1, OPT_CHECK, OPT_STATS, OPT_WEB };
    static const struct option longopts[] = {
        { "config", required_argument, NULL, OPT_CONFIG },
        { "check-config", no_argument, NULL, OPT_CHECK },
        { "stats-file", required_argument, NULL, OPT_STATS },
        { "web.listen-address", required_argument, NULL, OPT_WEB },
        { "help", no_argument, NULL, 'h' },
        CLI_KAFKA_LONG_OPTIONS,
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ingest_scrape_options opts;
    cli_kafka_flags kafka;
    char err[NDT_ERRBUF_SIZE];
    int check_only = 0, rc = NDT_EXIT_USAGE, c;

    memset(&opts, 0, sizeof(opts));
    cli_kafka_flags_init(&kafka);
    opts.stop = &cli_stop_flag;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hX:", longopts, NULL)) != -1) {
        int k = cli_kafka_flag("scrape", c, optarg, &kafka);
        if (k == NDT_ERROR)
            goto out;
        if (k == NDT_OK)
            continue;
        switch (c) {
        case OPT_CONFIG: opts.config_path = optarg; break;
        case OPT_STATS: opts.stats_path = optarg; break;
        case OPT_CHECK: check_only = 1; break;
        case OPT_WEB: opts.metrics_listen = optarg; break;
        case 'h': usage(stdout); rc = NDT_EXIT_OK; goto out;
        default:
            if (cli_default_option("scrape", c, optarg, usage) != NDT_OK)
                goto out;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error("scrape", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!opts.config_path) {
        rc = cli_usage_error("scrape", "--config FILE is required");
        goto out;
    }
    if (check_only) {
        rc = check_config(opts.config_path);
        goto out;
    }
    if (cli_kafka_output("ingest", &kafka, &opts.output) != NDT_OK) {
        rc = NDT_EXIT_FAILURE;
        goto out;
    }

    cli_install_signal_handlers();
    ingest_scraper *scraper = NULL;
    int status = ingest_scraper_new(&opts, &scraper, err, sizeof(err));
    if (status != NDT_OK) {
        fprintf(stderr, "ndtpipe scrape: %s\n", err);
        rc = status == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
        goto out;
    }
    rc = ingest_scraper_run(scraper) == NDT_OK ? NDT_EXIT_OK : NDT_EXIT_FAILURE;
    ingest_scraper_destroy(scraper);
out:
    cli_kafka_flags_free(&kafka);
    return rc;
}
