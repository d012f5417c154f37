/*
 * cmd_receive.c: `ndtpipe receive`, the Prometheus remote-write receiver.
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

#define RECEIVE_DEFAULT_LISTEN "127.0.0.1:9201"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ndtpipe receive --listen ADDR --brokers LIST [options]\n\n"
            "Prometheus remote-write 1.0 receiver: point Prometheus's or vmagent's remote_write\n"
            "at http://ADDR/api/v1/write and every sample goes to Kafka like a scraped one.\n\n"
            "options:\n"
            "  --listen ADDR     HOST:PORT to listen on (default " RECEIVE_DEFAULT_LISTEN ")\n" CLI_KAFKA_HELP
            "  --token-file F    require 'Authorization: Bearer <token>' with the token in F\n"
            "  --max-body SIZE   compressed request limit, e.g. 32MB (default)\n"
            "  --backpressure-timeout D\n"
            "                    answer 503 (sender retries) after Kafka's queue is full this\n"
            "                    long (default 1s)\n"
            "  --stats-file F    write a JSON summary at exit\n" CLI_COMMON_HELP);
}

int cli_cmd_receive(int argc, char **argv)
{
    enum { OPT_LISTEN = 1, OPT_TOKEN, OPT_MAX_BODY, OPT_BACKPRESSURE, OPT_STATS };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, OPT_LISTEN },
        { "token-file", required_argument, NULL, OPT_TOKEN },
        { "max-body", required_argument, NULL, OPT_MAX_BODY },
        { "backpressure-timeout", required_argument, NULL, OPT_BACKPRESSURE },
        { "stats-file", required_argument, NULL, OPT_STATS },
        { "help", no_argument, NULL, 'h' },
        CLI_KAFKA_LONG_OPTIONS,
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ingest_receive_options opts;
    cli_kafka_flags kafka;
    char err[NDT_ERRBUF_SIZE];
    char *token = NULL;
    int rc = NDT_EXIT_USAGE, c;

    memset(&opts, 0, sizeof(opts));
    cli_kafka_flags_init(&kafka);
    opts.listen = RECEIVE_DEFAULT_LISTEN;
    opts.stop = &cli_stop_flag;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hX:", longopts, NULL)) != -1) {
        int k = cli_kafka_flag("receive", c, optarg, &kafka);
        if (k == NDT_ERROR)
            goto out;
        if (k == NDT_OK)
            continue;
        switch (c) {
        case OPT_LISTEN: opts.listen = optarg; break;
        case OPT_STATS: opts.stats_path = optarg; break;
        case OPT_TOKEN:
            free(token);
            token = cli_read_token(optarg, err, sizeof(err));
            if (!token) {
                rc = cli_usage_error("receive", "%s", err);
                goto out;
            }
            break;
        case OPT_MAX_BODY: {
            uint64_t bytes;
            if (ndt_size_parse(optarg, &bytes) != NDT_OK || bytes == 0 || bytes > (1ull << 30)) {
                rc = cli_usage_error("receive", "--max-body: expected a size like 32MB (at most 1GB), got '%s'", optarg);
                goto out;
            }
            opts.max_body_bytes = (size_t)bytes;
            break;
        }
        case OPT_BACKPRESSURE:
            if (cli_duration_ms("receive", "--backpressure-timeout", optarg, &opts.backpressure_ms) != NDT_OK)
                goto out;
            break;
        case 'h': usage(stdout); rc = NDT_EXIT_OK; goto out;
        default:
            if (cli_default_option("receive", c, optarg, usage) != NDT_OK)
                goto out;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error("receive", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    opts.token = token;
    if (cli_kafka_output("ingest", &kafka, &opts.output) != NDT_OK) {
        rc = NDT_EXIT_FAILURE;
        goto out;
    }

    cli_install_signal_handlers();
    ingest_receiver *receiver = NULL;
    int status = ingest_receiver_new(&opts, &receiver, err, sizeof(err));
    if (status != NDT_OK) {
        fprintf(stderr, "ndtpipe receive: %s\n", err);
        rc = status == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
        goto out;
    }
    rc = ingest_receiver_run(receiver) == NDT_OK ? NDT_EXIT_OK : NDT_EXIT_FAILURE;
    ingest_receiver_destroy(receiver);
out:
    free(token);
    cli_kafka_flags_free(&kafka);
    return rc;
}
