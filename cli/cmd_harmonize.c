/*
 * cmd_harmonize.c: `ndtpipe harmonize`, the Harmonization Data Layer
 * (harmonize/harmonize.h, docs/HARMONIZE.md).
 *
 * Flags override --config's `harmonize:` section whatever their order on
 * the command line, so they are collected first and applied after it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/config.h"
#include "common/kafka.h"
#include "common/log.h"
#include "harmonize/harmonize.h"

#define HARMONIZE_MAX_SETTINGS 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ndtpipe harmonize --brokers LIST [--in T] [--out T] [--udr URL] [options]\n\n"
            "The Harmonization Data Layer: consumes raw telemetry (json, avro or influx,\n"
            "detected per message), maps it with the rules of --mapping into NGSI-LD entities\n"
            "with their twin state, writes them to the UDR and publishes each entity touched\n"
            "on --out.  Offsets are committed only once the UDR has the data (at least once;\n"
            "a replay rewrites the same points).  Unusable messages go to --dlq with the\n"
            "reason in their ndt.error header.\n\n"
            "options:\n"
            "  --brokers LIST    Kafka bootstrap servers, or 'embedded'\n"
            "  --in T            input topic (default " HDL_DEFAULT_IN_TOPIC ")\n"
            "  --out T           entity topic (default " HDL_DEFAULT_OUT_TOPIC ")\n"
            "  --dlq T           dead-letter topic (default " HDL_DEFAULT_DLQ_TOPIC ")\n"
            "  --group ID        consumer group (default " HDL_DEFAULT_GROUP ")\n"
            "  --udr URL         sqlite:PATH (default " HDL_DEFAULT_UDR "), influx:http://H:P/DB,\n"
            "                    influx2:http://H:P/ORG/BUCKET\n"
            "  --mapping FILE    rule file (default " HDL_DEFAULT_MAPPING ")\n"
            "  --format F        auto (default), json, avro or influx\n"
            "  --config FILE     YAML; its harmonize: section sets the options below\n"
            "  -o name=value     set any option below (repeatable)\n"
            "  --web.listen-address HOST:PORT\n"
            "                    serve /metrics and /healthz\n"
            "  -X key=value      librdkafka property for the consumer and producer (repeatable)\n"
            CLI_COMMON_HELP
            "\nconfiguration options (--config harmonize: section, or -o):\n");
    ndt_confmap_print_help(hdl_option_map, out);
}

typedef struct setting {
    const char *name;
    const char *value;
} setting;

int cli_cmd_harmonize(int argc, char **argv)
{
    enum { OPT_BROKERS = 1, OPT_IN, OPT_OUT, OPT_DLQ, OPT_GROUP, OPT_UDR, OPT_MAPPING,
           OPT_FORMAT, OPT_CONFIG, OPT_WEB };
    static const struct option longopts[] = {
        { "brokers", required_argument, NULL, OPT_BROKERS },
        { "in", required_argument, NULL, OPT_IN },
        { "out", required_argument, NULL, OPT_OUT },
        { "dlq", required_argument, NULL, OPT_DLQ },
        { "group", required_argument, NULL, OPT_GROUP },
        { "udr", required_argument, NULL, OPT_UDR },
        { "mapping", required_argument, NULL, OPT_MAPPING },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "config", required_argument, NULL, OPT_CONFIG },
        { "web.listen-address", required_argument, NULL, OPT_WEB },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    static const char *const flag_option[] = {
        [OPT_IN] = "in_topic", [OPT_OUT] = "out_topic", [OPT_DLQ] = "dlq_topic",
        [OPT_GROUP] = "group", [OPT_UDR] = "udr", [OPT_MAPPING] = "mapping",
        [OPT_FORMAT] = "format", [OPT_WEB] = "web_listen_address",
    };
    hdl_options opts;
    setting settings[HARMONIZE_MAX_SETTINGS];
    size_t nsettings = 0;
    const char *config = NULL, *brokers = NULL;
    char err[NDT_ERRBUF_SIZE];
    int rc = NDT_EXIT_USAGE, c;
    char *owned[HARMONIZE_MAX_SETTINGS];
    size_t nowned = 0;

    if (hdl_options_init(&opts, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "ndtpipe harmonize: %s\n", err);
        return NDT_EXIT_FAILURE;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "hX:o:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BROKERS: brokers = optarg; break;
        case OPT_CONFIG: config = optarg; break;
        case 'X':
            if (ndt_kafka_opts_add(&opts.xopts, optarg, err, sizeof(err)) != NDT_OK) {
                rc = cli_usage_error("harmonize", "-X: %s", err);
                goto out;
            }
            break;
        case 'o': {
            const char *eq = strchr(optarg, '=');
            if (!eq || nsettings == HARMONIZE_MAX_SETTINGS) {
                rc = cli_usage_error("harmonize", "-o: expected name=value, got '%s'", optarg);
                goto out;
            }
            char *name = strndup(optarg, (size_t)(eq - optarg));
            if (!name)
                goto out;
            owned[nowned++] = name;
            settings[nsettings++] = (setting){ name, eq + 1 };
            break;
        }
        case OPT_IN: case OPT_OUT: case OPT_DLQ: case OPT_GROUP: case OPT_UDR:
        case OPT_MAPPING: case OPT_FORMAT: case OPT_WEB:
            if (nsettings == HARMONIZE_MAX_SETTINGS) {
                rc = cli_usage_error("harmonize", "too many options");
                goto out;
            }
            settings[nsettings++] = (setting){ flag_option[c], optarg };
            break;
        case 'h': usage(stdout); rc = NDT_EXIT_OK; goto out;
        default:
            if (cli_default_option("harmonize", c, optarg, usage) != NDT_OK)
                goto out;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error("harmonize", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!brokers) {
        rc = cli_usage_error("harmonize", "--brokers is required");
        goto out;
    }
    if (config && hdl_options_load_yaml(&opts, config, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "ndtpipe harmonize: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < nsettings; i++) {
        if (ndt_confmap_set(hdl_option_map, &opts, settings[i].name, settings[i].value, err,
                            sizeof(err)) != NDT_OK) {
            rc = cli_usage_error("harmonize", "%s", err);
            goto out;
        }
    }
    cli_kafka_flags kafka;
    cli_kafka_flags_init(&kafka);
    kafka.brokers = brokers;
    const char *bootstrap = cli_kafka_bootstrap("harmonize", &kafka);
    cli_kafka_flags_free(&kafka);
    if (!bootstrap) {
        rc = NDT_EXIT_FAILURE;
        goto out;
    }
    if (!(opts.brokers = strdup(bootstrap))) {
        rc = NDT_EXIT_FAILURE;
        goto out;
    }
    cli_install_signal_handlers();
    opts.stop = &cli_stop_flag;
    hdl_stage *stage = NULL;
    int status = hdl_stage_new(&opts, &stage, err, sizeof(err));
    if (status != NDT_OK) {
        fprintf(stderr, "ndtpipe harmonize: %s\n", err);
        rc = status == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
        goto out;
    }
    rc = hdl_stage_run(stage) == NDT_OK ? NDT_EXIT_OK : NDT_EXIT_FAILURE;
    hdl_stage_destroy(stage);
out:
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    hdl_options_free(&opts);
    return rc;
}
