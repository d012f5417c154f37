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
            "  --config FILE     scrape configuration (required)\n"
            "  --brokers LIST    Kafka bootstrap servers, or 'embedded' (default 127.0.0.1:9092)\n"
            "  --topic T         topic (default ndt.telemetry.raw)\n"
            "  --format F        avro (default, one message per scrape), json (one per sample,\n"
            "                    prometheus-kafka-adapter's shape), influx (line protocol)\n"
            "  --schema-id N     avro: prefix Confluent framing with schema id N\n"
            "  -X key=value      librdkafka property, applied last (repeatable)\n"
            "  --check-config    validate the configuration and its targets, then exit\n"
            "  --stats-file F    write a JSON summary (scrapes, ticks, jitter) at exit\n"
            "  --web.listen-address HOST:PORT\n"
            "                    serve the scraper's own /metrics and /healthz there\n"
            "  --flush-timeout D how long SIGTERM waits for Kafka to take what is in flight\n"
            "                    (default 30s)\n" CLI_COMMON_HELP);
}

int cli_cmd_scrape(int argc, char **argv)
{
    enum { OPT_CONFIG = 1, OPT_BROKERS, OPT_TOPIC, OPT_FORMAT, OPT_SCHEMA_ID, OPT_CHECK, OPT_STATS,
           OPT_FLUSH, OPT_WEB };
    static const struct option longopts[] = {
        { "config", required_argument, NULL, OPT_CONFIG },
        { "brokers", required_argument, NULL, OPT_BROKERS },
        { "topic", required_argument, NULL, OPT_TOPIC },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "schema-id", required_argument, NULL, OPT_SCHEMA_ID },
        { "check-config", no_argument, NULL, OPT_CHECK },
        { "stats-file", required_argument, NULL, OPT_STATS },
        { "flush-timeout", required_argument, NULL, OPT_FLUSH },
        { "web.listen-address", required_argument, NULL, OPT_WEB },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ingest_scrape_options opts;
    ndt_kafka_opts xopts = { 0 };
    char err[NDT_ERRBUF_SIZE];
    int check_only = 0, rc = NDT_EXIT_USAGE, c;

    memset(&opts, 0, sizeof(opts));
    opts.brokers = "127.0.0.1:9092";
    opts.schema_id = -1;
    opts.stop = &cli_stop_flag;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hX:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG: opts.config_path = optarg; break;
        case OPT_BROKERS: opts.brokers = optarg; break;
        case OPT_TOPIC: opts.topic = optarg; break;
        case OPT_FORMAT: opts.format = optarg; break;
        case OPT_STATS: opts.stats_path = optarg; break;
        case OPT_CHECK: check_only = 1; break;
        case OPT_WEB: opts.metrics_listen = optarg; break;
        case OPT_FLUSH: {
            int64_t ns;
            if (ndt_duration_parse(optarg, &ns) != NDT_OK || ns / 1000000 > INT32_MAX) {
                rc = cli_usage_error("scrape", "--flush-timeout: expected a duration like 10s, got '%s'", optarg);
                goto out;
            }
            opts.flush_timeout_ms = ns > 0 && ns < 1000000 ? 1 : (int)(ns / 1000000);
            break;
        }
        case OPT_SCHEMA_ID: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > INT32_MAX) {
                rc = cli_usage_error("scrape", "--schema-id: expected a non-negative integer, got '%s'", optarg);
                goto out;
            }
            opts.schema_id = (int32_t)v;
            break;
        }
        case 'X':
            if (ndt_kafka_opts_add(&xopts, optarg, err, sizeof(err)) != NDT_OK) {
                rc = cli_usage_error("scrape", "-X %s: %s", optarg, err);
                goto out;
            }
            break;
        case 'h': usage(stdout); rc = NDT_EXIT_OK; goto out;
        default: {
            int common = cli_common_option("scrape", c, optarg);
            if (common == NDT_OK)
                break;
            if (common == NDT_AGAIN)
                usage(stderr);
            goto out;
        }
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
        if (ingest_scrape_config_check(opts.config_path, err, sizeof(err)) != NDT_OK) {
            fprintf(stderr, "%s\n", err);
            rc = NDT_EXIT_USAGE;
        } else {
            printf("%s: ok\n", opts.config_path);
            rc = NDT_EXIT_OK;
        }
        goto out;
    }

    const char *bootstrap = ndt_kafka_bootstrap(opts.brokers, err, sizeof(err));
    if (!bootstrap) {
        ndt_log(NDT_LOG_ERROR, "ingest", "cannot start the embedded broker", NDT_KV_STR("error", err));
        rc = NDT_EXIT_FAILURE;
        goto out;
    }
    if (strcmp(opts.brokers, "embedded") == 0) {
        printf("bootstrap=%s\n", bootstrap);
        fflush(stdout);
    }
    opts.brokers = bootstrap;
    opts.xopts = &xopts;

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
    ndt_kafka_opts_free(&xopts);
    return rc;
}
