/*
 * cli.h: what the command-line front end shares between commands.
 *
 * Each command lives in cli/cmd_<name>.c as `int cli_cmd_<name>(argc, argv)`
 * returning a process exit code (NDT_EXIT_*).  argv[0] is the command name.
 * Commands parse their own flags with getopt_long; the options every
 * command accepts (--log-format, --log-level) are handled by
 * cli_common_option() so they behave the same everywhere.
 */
#ifndef CLI_H
#define CLI_H

#include <stdio.h>

#include "common/ndt.h"

typedef int (*cli_cmd_fn)(int argc, char **argv);

/* Long options every command accepts; append to a command's own table. */
#define CLI_OPT_LOG_FORMAT 1000
#define CLI_OPT_LOG_LEVEL 1001
#define CLI_COMMON_LONG_OPTIONS                                        \
    { "log-format", required_argument, NULL, CLI_OPT_LOG_FORMAT },     \
    { "log-level", required_argument, NULL, CLI_OPT_LOG_LEVEL }

#define CLI_COMMON_HELP                                                \
    "  --log-format F   logfmt (default) or json\n"                    \
    "  --log-level L    debug, info (default), warn, error\n"          \
    "  -h, --help       this help\n"

/* Handles a common option; NDT_OK if it was one and valid, NDT_ERROR
 * (message printed) if invalid, NDT_AGAIN if opt is not a common one. */
int cli_common_option(const char *cmd, int opt, const char *arg);

/* Prints "ndtpipe CMD: message" and a pointer to --help; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Installs SIGINT/SIGTERM handlers that set the flag returned by
 * cli_stop_requested(); a second signal exits at once. */
void cli_install_signal_handlers(void);
int cli_stop_requested(void);
/* The flag itself, for loops that want to pass a pointer down. */
extern volatile int cli_stop_flag;

int cli_cmd_broker(int argc, char **argv);
int cli_cmd_scrape(int argc, char **argv);
int cli_cmd_receive(int argc, char **argv);
int cli_cmd_check(int argc, char **argv);
int cli_cmd_testbed(int argc, char **argv);
int cli_cmd_harmonize(int argc, char **argv);
int cli_cmd_features(int argc, char **argv);
int cli_cmd_export(int argc, char **argv);
int cli_cmd_train(int argc, char **argv);
int cli_cmd_validate(int argc, char **argv);
int cli_cmd_report(int argc, char **argv);
int cli_cmd_serve(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);

/* For commands not built yet: a clear message and exit 1. */
int cli_not_built(const char *cmd, const char *what);

#endif
