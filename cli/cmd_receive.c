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
#define TOKEN_FILE_MAX 4096

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ndtpipe receive --listen ADDR --brokers LIST [options]\n\n"
            "Prometheus remote-write 1.0 receiver: point Prometheus's or vmagent's remote_write\n"
            "at http://ADDR/api/v1/write and every sample goes to Kafka like a scraped one.\n\n"
            "options:\n"
            "  --listen ADDR       HOST:PORT to listen on (default " RECEIVE_DEFAULT_LISTEN ")\n"
            "  --brokers LIST      Kafka bootstrap servers, or 'embedded' (default 127.0.0.1:9092)\n"
            "  --topic T           topic (default ndt.telemetry.raw)\n"
            "  --format F          avro (default), json, influx (as for scrape)\n"
            "  --schema-id N       avro: Confluent framing with schema id N\n"
            "  -X key=value        librdkafka property, applied last (repeatable)\n"
            "  --token-file F      require 'Authorization: Bearer <token>' with the token in F\n"
            "  --max-body SIZE     compressed request limit, e.g. 32MB (default)\n"
            "  --backpressure-timeout D\n"
            "                      answer 503 (sender retries) after Kafka's queue is full this\n"
            "                      long (default 1s)\n"
            "  --flush-timeout D   how long SIGTERM waits for Kafka (default 30s)\n"
            "  --stats-file F      write a JSON summary at exit\n" CLI_COMMON_HELP);
}

/* Reads a token file: first line, surrounding whitespace removed. */
static char *read_token(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--token-file %s: cannot read it", path);
        return NULL;
    }
    char buf[TOKEN_FILE_MAX];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *start = buf;
    while (*start == ' ' || *start == '\t')
        start++;
    size_t len = strcspn(start, "\r\n");
    while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
        len--;
    if (!len) {
        snprintf(err, errlen, "--token-file %s: the file holds no token", path);
        return NULL;
    }
    return strndup(start, len);
}

int cli_cmd_receive(int argc, char **argv)
{
    enum { OPT_LISTEN = 1, OPT_BROKERS, OPT_TOPIC, OPT_FORMAT, OPT_SCHEMA_ID, OPT_TOKEN,
           OPT_MAX_BODY, OPT_BACKPRESSURE, OPT_STATS, OPT_FLUSH };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, OPT_LISTEN },
        { "brokers", required_argument, NULL, OPT_BROKERS },
        { "topic", required_argument, NULL, OPT_TOPIC },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "schema-id", required_argument, NULL, OPT_SCHEMA_ID },
        { "token-file", required_argument, NULL, OPT_TOKEN },
        { "max-body", required_argument, NULL, OPT_MAX_BODY },
        { "backpressure-timeout", required_argument, NULL, OPT_BACKPRESSURE },
        { "stats-file", required_argument, NULL, OPT_STATS },
        { "flush-timeout", required_argument, NULL, OPT_FLUSH },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ingest_receive_options opts;
    ndt_kafka_opts xopts = { 0 };
    char err[NDT_ERRBUF_SIZE];
    char *token = NULL;
    const char *brokers = "127.0.0.1:9092";
    int rc = NDT_EXIT_USAGE, c;

    memset(&opts, 0, sizeof(opts));
    opts.listen = RECEIVE_DEFAULT_LISTEN;
    opts.schema_id = -1;
    opts.stop = &cli_stop_flag;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hX:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN: opts.listen = optarg; break;
        case OPT_BROKERS: brokers = optarg; break;
        case OPT_TOPIC: opts.topic = optarg; break;
        case OPT_FORMAT: opts.format = optarg; break;
        case OPT_STATS: opts.stats_path = optarg; break;
        case OPT_SCHEMA_ID: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || v < 0 || v > INT32_MAX) {
                rc = cli_usage_error("receive", "--schema-id: expected a non-negative integer, got '%s'", optarg);
                goto out;
            }
            opts.schema_id = (int32_t)v;
            break;
        }
        case OPT_TOKEN:
            free(token);
            token = read_token(optarg, err, sizeof(err));
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
        case OPT_BACKPRESSURE: {
            int64_t ns;
            if (ndt_duration_parse(optarg, &ns) != NDT_OK || ns < 1000000 || ns / 1000000 > INT32_MAX) {
                rc = cli_usage_error("receive", "--backpressure-timeout: expected a duration like 1s, got '%s'", optarg);
                goto out;
            }
            opts.backpressure_ms = (int)(ns / 1000000);
            break;
        }
        case OPT_FLUSH: {
            int64_t ns;
            if (ndt_duration_parse(optarg, &ns) != NDT_OK || ns / 1000000 > INT32_MAX) {
                rc = cli_usage_error("receive", "--flush-timeout: expected a duration like 10s, got '%s'", optarg);
                goto out;
            }
            opts.flush_timeout_ms = ns > 0 && ns < 1000000 ? 1 : (int)(ns / 1000000);
            break;
        }
        case 'X':
            if (ndt_kafka_opts_add(&xopts, optarg, err, sizeof(err)) != NDT_OK) {
                rc = cli_usage_error("receive", "-X %s: %s", optarg, err);
                goto out;
            }
            break;
        case 'h': usage(stdout); rc = NDT_EXIT_OK; goto out;
        default: {
            int common = cli_common_option("receive", c, optarg);
            if (common == NDT_OK)
                break;
            if (common == NDT_AGAIN)
                usage(stderr);
            goto out;
        }
        }
    }
    if (optind < argc) {
        rc = cli_usage_error("receive", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    opts.token = token;
    opts.xopts = &xopts;
    const char *bootstrap = ndt_kafka_bootstrap(brokers, err, sizeof(err));
    if (!bootstrap) {
        ndt_log(NDT_LOG_ERROR, "ingest", "cannot start the embedded broker", NDT_KV_STR("error", err));
        rc = NDT_EXIT_FAILURE;
        goto out;
    }
    if (strcmp(brokers, "embedded") == 0) {
        printf("bootstrap=%s\n", bootstrap);
        fflush(stdout);
    }
    opts.brokers = bootstrap;

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
    ndt_kafka_opts_free(&xopts);
    return rc;
}
