/*
 * cmd_broker.c: `ndtpipe broker`, an embedded Kafka-protocol broker
 * (librdkafka's mock cluster) on 127.0.0.1 for demos, tests and the
 * stages of other ndtpipe processes.
 *
 * The ports are ephemeral (the mock cannot be told which), so the address
 * is announced twice: one `bootstrap=HOST:PORT[,...]` line on stdout,
 * flushed at once for a parent reading the pipe, and the bare list in
 * --bootstrap-file for scripts.  The file is written to a temporary name
 * and renamed into place, so a reader polling for it never sees half a
 * line.  The broker keeps everything in memory; it is not durable (see
 * docs/KAFKA.md for its limits).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/kafka.h"
#include "common/log.h"

static const char broker_help[] =
    "usage: ndtpipe broker [--bootstrap-file F] [--brokers-count N]\n"
    "\n"
    "Runs an embedded Kafka-protocol broker (librdkafka's mock cluster) on\n"
    "127.0.0.1 until SIGINT/SIGTERM.  Prints `bootstrap=HOST:PORT[,...]` on\n"
    "stdout; topics are created on first use with 4 partitions.  Data lives\n"
    "in memory only (about 5 MiB retained per partition).\n"
    "\n"
    "  --bootstrap-file F  also write the bootstrap list to F (atomically)\n"
    "  --brokers-count N   number of brokers in the cluster (default 1, max 16)\n" CLI_COMMON_HELP;

/* Writes value and a newline to path through path.tmp + rename(2). */
static int broker_write_bootstrap_file(const char *path, const char *value, char *err,
                                       size_t errlen)
{
    char *tmp = NULL;
    int rc = NDT_ERROR;
    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
        tmp = NULL;
        snprintf(err, errlen, "--bootstrap-file: out of memory");
        goto out;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "--bootstrap-file %s: %m", path);
        goto out;
    }
    int bad = fprintf(f, "%s\n", value) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "--bootstrap-file %s: %m", path);
        unlink(tmp);
        goto out;
    }
    rc = NDT_OK;
out:
    free(tmp);
    return rc;
}

static int broker_parse_count(const char *s, int *out)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || n < 1 || n > 16)
        return NDT_ERROR;
    *out = (int)n;
    return NDT_OK;
}

int cli_cmd_broker(int argc, char **argv)
{
    enum { OPT_BOOTSTRAP_FILE = 1, OPT_BROKERS_COUNT };
    static const struct option options[] = {
        { "bootstrap-file", required_argument, NULL, OPT_BOOTSTRAP_FILE },
        { "brokers-count", required_argument, NULL, OPT_BROKERS_COUNT },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *bootstrap_file = NULL;
    int nbrokers = 1, opt;
    char err[NDT_ERRBUF_SIZE];

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(broker_help, stdout);
            return NDT_EXIT_OK;
        case OPT_BOOTSTRAP_FILE:
            bootstrap_file = optarg;
            break;
        case OPT_BROKERS_COUNT:
            if (broker_parse_count(optarg, &nbrokers) != NDT_OK)
                return cli_usage_error("broker", "--brokers-count: expected 1..16, got '%s'",
                                       optarg);
            break;
        default: {
            int rc = cli_common_option("broker", opt, optarg);
            if (rc == NDT_OK)
                break;
            if (rc == NDT_AGAIN)
                cli_usage_error("broker", "unknown option");
            return NDT_EXIT_USAGE;
        }
        }
    }
    if (optind < argc)
        return cli_usage_error("broker", "unexpected argument '%s'", argv[optind]);

    cli_install_signal_handlers();
    ndt_broker *broker = NULL;
    int exit_code = NDT_EXIT_FAILURE;
    if (ndt_broker_start(nbrokers, &broker, err, sizeof(err)) != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, "broker", "cannot start", NDT_KV_STR("error", err));
        goto out;
    }
    const char *bootstraps = ndt_broker_bootstraps(broker);
    if (bootstrap_file &&
        broker_write_bootstrap_file(bootstrap_file, bootstraps, err, sizeof(err)) != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, "broker", "cannot write the bootstrap file",
                NDT_KV_STR("error", err));
        goto out;
    }
    printf("bootstrap=%s\n", bootstraps);
    fflush(stdout);
    ndt_log(NDT_LOG_INFO, "broker", "embedded broker running", NDT_KV_STR("bootstrap", bootstraps),
            NDT_KV_INT("brokers", nbrokers));

    /* The mock serves on its own thread; this one only waits for a signal. */
    const struct timespec tick = { 0, 50 * 1000 * 1000 };
    while (!cli_stop_requested())
        nanosleep(&tick, NULL);
    ndt_log(NDT_LOG_INFO, "broker", "stopping");
    exit_code = NDT_EXIT_OK;
out:
    ndt_broker_stop(broker);
    return exit_code;
}
