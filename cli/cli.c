/*
 * cli.c: helpers shared by the commands, see cli.h.
 */
#include "cli/cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

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
