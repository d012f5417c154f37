/*
 * cli.c: helpers shared by the commands, see cli.h.
 */
#include "cli/cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/kafka.h"
#include "common/log.h"
#include "ingest/ingest.h"

volatile int cli_stop_flag = 0;

int cli_common_option(const char *cmd, int opt, const char *arg)
{
    if (opt == CLI_OPT_LOG_FORMAT) {
        ndt_log_format f;
        if (ndt_log_parse_format(arg, &f) != NDT_OK) {
            cli_usage_error(cmd, "--log-format: expected logfmt or json, got '%s'", arg);
            return NDT_ERROR;
        }
        ndt_log_set_format(f);
        return NDT_OK;
    }
    if (opt == CLI_OPT_LOG_LEVEL) {
        ndt_log_level l;
        if (ndt_log_parse_level(arg, &l) != NDT_OK) {
            cli_usage_error(cmd, "--log-level: expected debug, info, warn or error, got '%s'", arg);
            return NDT_ERROR;
        }
        ndt_log_set_level(l);
        return NDT_OK;
    }
    return NDT_AGAIN;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ndtpipe %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see: ndtpipe %s --help)\n", cmd);
    return NDT_EXIT_USAGE;
}

static void on_stop_signal(int sig)
{
    if (cli_stop_flag) {
        /* Second signal: the user insists; leave without flushing. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    cli_stop_flag = 1;
}

void cli_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int cli_stop_requested(void) { return cli_stop_flag; }

int cli_not_built(const char *cmd, const char *what)
{
    fprintf(stderr, "ndtpipe %s: %s is not built yet in this version\n", cmd, what);
    return NDT_EXIT_FAILURE;
}

void cli_kafka_flags_init(cli_kafka_flags *f)
{
    memset(f, 0, sizeof(*f));
    f->brokers = "127.0.0.1:9092";
    f->schema_id = -1;
}

void cli_kafka_flags_free(cli_kafka_flags *f) { ndt_kafka_opts_free(&f->xopts); }

int cli_duration_ms(const char *cmd, const char *flag, const char *arg, int *out_ms)
{
    int64_t ns;
    if (ndt_duration_parse(arg, &ns) != NDT_OK || ns / 1000000 > INT32_MAX) {
        cli_usage_error(cmd, "%s: expected a duration like 10s, got '%s'", flag, arg);
        return NDT_ERROR;
    }
    *out_ms = ns > 0 && ns < 1000000 ? 1 : (int)(ns / 1000000);
    return NDT_OK;
}

int cli_kafka_flag(const char *cmd, int opt, const char *arg, cli_kafka_flags *f)
{
    char err[NDT_ERRBUF_SIZE];
    switch (opt) {
    case CLI_OPT_BROKERS: f->brokers = arg; return NDT_OK;
    case CLI_OPT_TOPIC: f->topic = arg; return NDT_OK;
    case CLI_OPT_FORMAT: f->format = arg; return NDT_OK;
    case CLI_OPT_FLUSH_TIMEOUT: return cli_duration_ms(cmd, "--flush-timeout", arg, &f->flush_timeout_ms);
    case CLI_OPT_SCHEMA_ID: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*arg == '\0' || *end || v < 0 || v > INT32_MAX) {
            cli_usage_error(cmd, "--schema-id: expected a non-negative integer, got '%s'", arg);
            return NDT_ERROR;
        }
        f->schema_id = (int32_t)v;
        return NDT_OK;
    }
    case 'X':
        if (ndt_kafka_opts_add(&f->xopts, arg, err, sizeof(err)) != NDT_OK) {
            cli_usage_error(cmd, "-X %s: %s", arg, err);
            return NDT_ERROR;
        }
        return NDT_OK;
    default:
        return NDT_AGAIN;
    }
}

const char *cli_kafka_bootstrap(const char *cmd, const cli_kafka_flags *f)
{
    char err[NDT_ERRBUF_SIZE];
    const char *bootstrap = ndt_kafka_bootstrap(f->brokers, err, sizeof(err));
    if (!bootstrap) {
        ndt_log(NDT_LOG_ERROR, cmd, "cannot start the embedded broker", NDT_KV_STR("error", err));
        return NULL;
    }
    if (strcmp(f->brokers, "embedded") == 0) {
        printf("bootstrap=%s\n", bootstrap);
        fflush(stdout);
    }
    return bootstrap;
}

int cli_default_option(const char *cmd, int opt, const char *arg, void (*usage)(FILE *))
{
    int common = cli_common_option(cmd, opt, arg);
    if (common == NDT_OK)
        return NDT_OK;
    if (common == NDT_AGAIN)
        usage(stderr);
    return NDT_ERROR;
}

int cli_kafka_output(const char *cmd, const cli_kafka_flags *f, ingest_output *out)
{
    memset(out, 0, sizeof(*out));
    out->brokers = cli_kafka_bootstrap(cmd, f);
    if (!out->brokers)
        return NDT_ERROR;
    out->xopts = &f->xopts;
    out->topic = f->topic;
    out->format = f->format;
    out->schema_id = f->schema_id;
    out->flush_timeout_ms = f->flush_timeout_ms;
    return NDT_OK;
}

char *cli_read_token(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--token-file %s: cannot read it", path);
        return NULL;
    }
    char buf[CLI_TOKEN_FILE_MAX];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *start = buf;
    while (*start == ' ' || *start == '\t')
        start++;
    size_t len = strcspn(start, "\r\n");
    while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
        len--;
    char *token = len ? strndup(start, len) : NULL;
    explicit_bzero(buf, sizeof(buf)); /* a secret does not linger on the stack */
    if (!len)
        snprintf(err, errlen, "--token-file %s: the file holds no token", path);
    return token;
}
