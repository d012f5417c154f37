/*
 * cmd_serve.c: `ndtpipe serve`, the what-if API (api/api.h, docs/API.md).
 * Flags and exit codes only: a bad flag, an unreadable registry or a bad
 * UDR URL exits 2; a port already taken exits 1.  No gated model is not
 * an error: the server runs and answers 503 until one is graded.
 * Actuation (--objective-ms) publishes on Kafka only when --brokers is
 * given; without it the recommendations are served over HTTP alone.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cli/cli.h"
#include "common/config.h"
#include "common/kafka.h"
#include "common/log.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ndtpipe serve --registry DIR --udr URL [options]\n\n"
            "The what-if API: the twin's entities (NGSI-LD), its graph, the model registry,\n"
            "predictions and what-if answers from the newest gated model (deployment grade\n"
            "Excellent or Reliable, written by `ndtpipe validate`).  See docs/API.md.\n\n"
            "options:\n"
            "  --registry DIR        the model registry (required)\n"
            "  --udr URL             the twin's state: sqlite:PATH, influx:http://HOST:PORT/DB (required)\n"
            "  --listen ADDR         HOST:PORT (default " API_DEFAULT_LISTEN ")\n"
            "  --token-file F        require 'Authorization: Bearer <token>' on /v1/ and /ngsi-ld/\n"
            "  --model ID            serve this model (it must be gated) instead of the newest\n"
            "  --max-body SIZE       request body limit (default 64KB)\n"
            "  --timeout D           cut idle or slow connections after D (default 10s)\n"
            "  --threads N           HTTP threads (default 2)\n"
            "  --max-state-age D     older twin state is stale: 503, not ready (default 60s)\n"
            "  --state-refresh D     read the twin's state again this often (default 100ms)\n"
            CLI_ACTUATION_HELP
            "  --brokers LIST       Kafka bootstrap servers for the actions topic, or 'embedded'\n"
            "                       (default: none, recommendations over HTTP only)\n"
            "  -X key=value         librdkafka property of the actions producer (repeatable)\n"
            CLI_COMMON_HELP);
}

/* Shared with `run` (cli.h). */
int cli_actuation_flag(const char *cmd, int opt, const char *arg, struct api_options *o)
{
    char *end;
    switch (opt) {
    case CLI_OPT_OBJECTIVE:
        o->objective_ms = strtod(arg, &end);
        if (!arg[0] || *end || !(o->objective_ms > 0) || o->objective_ms > 1e9) {
            cli_usage_error(cmd, "--objective-ms: expected a positive latency in ms, got '%s'", arg);
            return NDT_ERROR;
        }
        return NDT_OK;
    case CLI_OPT_MIN_REPLICAS:
    case CLI_OPT_MAX_REPLICAS: {
        long n = strtol(arg, &end, 10);
        const char *flag = opt == CLI_OPT_MIN_REPLICAS ? "--min-replicas" : "--max-replicas";
        if (!arg[0] || *end || n < 1 || n > API_MAX_PODS) {
            cli_usage_error(cmd, "%s: expected 1 to %d, got '%s'", flag, API_MAX_PODS, arg);
            return NDT_ERROR;
        }
        *(opt == CLI_OPT_MIN_REPLICAS ? &o->min_replicas : &o->max_replicas) = (int)n;
        return NDT_OK;
    }
    case CLI_OPT_SCALE_DOWN_MARGIN: {
        double f = strtod(arg, &end);
        if (!arg[0] || *end || !(f >= 0 && f < 1)) {
            cli_usage_error(cmd, "--scale-down-margin: expected a fraction in [0, 1), got '%s'", arg);
            return NDT_ERROR;
        }
        o->scale_down_margin = f > 0 ? f : -1; /* 0 in the options means the default */
        return NDT_OK;
    }
    case CLI_OPT_ACTIONS_INTERVAL:
        if (cli_duration_ms(cmd, "--actions-interval", arg, &o->actions_interval_ms) != NDT_OK)
            return NDT_ERROR;
        if (o->actions_interval_ms <= 0) {
            cli_usage_error(cmd, "--actions-interval: expected a positive duration");
            return NDT_ERROR;
        }
        return NDT_OK;
    case CLI_OPT_SCALE_DOWN_WINDOW: {
        int ms;
        if (cli_duration_ms(cmd, "--scale-down-window", arg, &ms) != NDT_OK)
            return NDT_ERROR;
        if (ms > API_MAX_SCALE_DOWN_WINDOW_MS) {
            cli_usage_error(cmd, "--scale-down-window: at most 5m, got '%s'", arg);
            return NDT_ERROR;
        }
        o->scale_down_window_ms = ms > 0 ? ms : -1; /* 0 in the options means the default */
        return NDT_OK;
    }
    case CLI_OPT_ACTIONS_TOPIC:
        if (!arg[0]) {
            cli_usage_error(cmd, "--actions-topic: expected a topic name");
            return NDT_ERROR;
        }
        o->actions_topic = arg;
        return NDT_OK;
    }
    return NDT_AGAIN;
}

static int positive_ms(const char *flag, const char *arg, int *out)
{
    if (cli_duration_ms("serve", flag, arg, out) != NDT_OK)
        return NDT_ERROR;
    if (*out <= 0) {
        cli_usage_error("serve", "%s: expected a positive duration", flag);
        return NDT_ERROR;
    }
    return NDT_OK;
}

int cli_cmd_serve(int argc, char **argv)
{
    enum { OPT_REGISTRY = 1, OPT_UDR, OPT_LISTEN, OPT_TOKEN, OPT_MODEL, OPT_MAX_BODY, OPT_TIMEOUT,
           OPT_THREADS, OPT_MAX_AGE, OPT_REFRESH, OPT_BROKERS };
    static const struct option longopts[] = {
        { "registry", required_argument, NULL, OPT_REGISTRY },
        { "udr", required_argument, NULL, OPT_UDR },
        { "listen", required_argument, NULL, OPT_LISTEN },
        { "token-file", required_argument, NULL, OPT_TOKEN },
        { "model", required_argument, NULL, OPT_MODEL },
        { "max-body", required_argument, NULL, OPT_MAX_BODY },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "max-state-age", required_argument, NULL, OPT_MAX_AGE },
        { "state-refresh", required_argument, NULL, OPT_REFRESH },
        { "brokers", required_argument, NULL, OPT_BROKERS },
        CLI_ACTUATION_LONG_OPTIONS,
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    api_options opts;
    char err[NDT_ERRBUF_SIZE];
    char *token = NULL;
    const char *brokers = NULL;
    ndt_kafka_opts xopts = { 0 };
    int rc = NDT_EXIT_USAGE, c, ms;

    memset(&opts, 0, sizeof(opts));
    opts.stop = &cli_stop_flag;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hX:", longopts, NULL)) != -1) {
        int k = cli_actuation_flag("serve", c, optarg, &opts);
        if (k == NDT_ERROR)
            goto out;
        if (k == NDT_OK)
            continue;
        switch (c) {
        case OPT_BROKERS: brokers = optarg; break;
        case 'X':
            if (ndt_kafka_opts_add(&xopts, optarg, err, sizeof(err)) != NDT_OK) {
                rc = cli_usage_error("serve", "-X: %s", err);
                goto out;
            }
            break;
        case OPT_REGISTRY: opts.registry = optarg; break;
        case OPT_UDR: opts.udr_url = optarg; break;
        case OPT_LISTEN: opts.listen = optarg; break;
        case OPT_MODEL: opts.model_id = optarg; break;
        case OPT_TOKEN:
            free(token);
            token = cli_read_token(optarg, err, sizeof(err));
            if (!token) {
                rc = cli_usage_error("serve", "%s", err);
                goto out;
            }
            break;
        case OPT_MAX_BODY: {
            uint64_t bytes;
            if (ndt_size_parse(optarg, &bytes) != NDT_OK || bytes == 0 || bytes > (64u << 20)) {
                rc = cli_usage_error("serve", "--max-body: expected a size like 64KB (at most 64MB), got '%s'", optarg);
                goto out;
            }
            opts.max_body_bytes = (size_t)bytes;
            break;
        }
        case OPT_TIMEOUT:
            if (positive_ms("--timeout", optarg, &ms) != NDT_OK)
                goto out;
            opts.timeout_s = ms < 1000 ? 1 : ms / 1000;
            break;
        case OPT_THREADS: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (!optarg[0] || *end || n < 1 || n > 64) {
                rc = cli_usage_error("serve", "--threads: expected 1 to 64, got '%s'", optarg);
                goto out;
            }
            opts.threads = (int)n;
            break;
        }
        case OPT_MAX_AGE:
            if (positive_ms("--max-state-age", optarg, &opts.max_state_age_ms) != NDT_OK)
                goto out;
            break;
        case OPT_REFRESH:
            if (positive_ms("--state-refresh", optarg, &opts.state_refresh_ms) != NDT_OK)
                goto out;
            break;
        case 'h': usage(stdout); rc = NDT_EXIT_OK; goto out;
        default:
            if (cli_default_option("serve", c, optarg, usage) != NDT_OK)
                goto out;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!opts.registry) {
        rc = cli_usage_error("serve", "--registry: the model registry is required");
        goto out;
    }
    if (!opts.udr_url) {
        rc = cli_usage_error("serve", "--udr: the twin's UDR URL is required (e.g. sqlite:data/udr.db)");
        goto out;
    }
    if ((brokers || opts.min_replicas || opts.max_replicas || opts.actions_topic || opts.actions_interval_ms) &&
        !(opts.objective_ms > 0)) {
        rc = cli_usage_error("serve", "the actuation flags need --objective-ms");
        goto out;
    }
    if (brokers) {
        opts.actions_brokers = ndt_kafka_bootstrap(brokers, err, sizeof(err));
        if (!opts.actions_brokers) {
            fprintf(stderr, "ndtpipe serve: --brokers: %s\n", err);
            rc = NDT_EXIT_FAILURE;
            goto out;
        }
        opts.actions_xopts = &xopts;
    }
    opts.token = token;

    cli_install_signal_handlers();
    api_server *server = NULL;
    int status = api_server_new(&opts, &server, err, sizeof(err));
    if (status != NDT_OK) {
        fprintf(stderr, "ndtpipe serve: %s\n", err);
        rc = status == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
        goto out;
    }
    rc = api_server_run(server) == NDT_OK ? NDT_EXIT_OK : NDT_EXIT_FAILURE;
    api_server_destroy(server);
out:
    if (token)
        explicit_bzero(token, strlen(token));
    free(token);
    ndt_kafka_opts_free(&xopts);
    return rc;
}
