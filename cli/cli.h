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

#include <stdint.h>
#include <stdio.h>

#include "common/kafka.h"
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

/* The flags of every command that produces to Kafka, parsed one way:
 * --brokers, --topic, --format, --schema-id, -X key=value, --flush-timeout. */
typedef struct cli_kafka_flags {
    const char *brokers;       /* default 127.0.0.1:9092 */
    const char *topic;         /* NULL: the stage's default */
    const char *format;        /* NULL: avro */
    int32_t schema_id;         /* -1: no Confluent framing */
    int flush_timeout_ms;      /* 0: the stage's default */
    ndt_kafka_opts xopts;
} cli_kafka_flags;

#define CLI_OPT_BROKERS 1100
#define CLI_OPT_TOPIC 1101
#define CLI_OPT_FORMAT 1102
#define CLI_OPT_SCHEMA_ID 1103
#define CLI_OPT_FLUSH_TIMEOUT 1104
#define CLI_KAFKA_LONG_OPTIONS                                               \
    { "brokers", required_argument, NULL, CLI_OPT_BROKERS },                 \
    { "topic", required_argument, NULL, CLI_OPT_TOPIC },                     \
    { "format", required_argument, NULL, CLI_OPT_FORMAT },                   \
    { "schema-id", required_argument, NULL, CLI_OPT_SCHEMA_ID },             \
    { "flush-timeout", required_argument, NULL, CLI_OPT_FLUSH_TIMEOUT }

#define CLI_KAFKA_HELP                                                                        \
    "  --brokers LIST    Kafka bootstrap servers, or 'embedded' (default 127.0.0.1:9092)\n"   \
    "  --topic T         topic (default ndt.telemetry.raw)\n"                                 \
    "  --format F        avro (default, one message per scrape or request), json (one per\n" \
    "                    sample, prometheus-kafka-adapter's shape), influx (line protocol)\n" \
    "  --schema-id N     avro: prefix Confluent framing with schema id N\n"                   \
    "  -X key=value      librdkafka property, applied last (repeatable)\n"                    \
    "  --flush-timeout D how long SIGTERM waits for Kafka to take what is in flight\n"        \
    "                    (default 30s)\n"

void cli_kafka_flags_init(cli_kafka_flags *flags);
void cli_kafka_flags_free(cli_kafka_flags *flags);
/* Handles opt if it is one of the flags above ('X' included): NDT_OK,
 * NDT_ERROR (bad value, message printed), or NDT_AGAIN (not one of them). */
int cli_kafka_flag(const char *cmd, int opt, const char *arg, cli_kafka_flags *flags);
/* Resolves --brokers: 'embedded' starts the in-process broker and prints
 * "bootstrap=HOST:PORT" on stdout for other clients.  NULL (logged) on
 * failure. */
const char *cli_kafka_bootstrap(const char *cmd, const cli_kafka_flags *flags);

/* Resolves the brokers (cli_kafka_bootstrap) and fills an ingest output
 * description from the flags; NDT_ERROR (logged) if the broker cannot start. */
struct ingest_output;
int cli_kafka_output(const char *cmd, const cli_kafka_flags *flags, struct ingest_output *out);

/* Actuation flags of serve and run (api.h, docs/API.md "Actuation"). */
#define CLI_OPT_OBJECTIVE 1200
#define CLI_OPT_MIN_REPLICAS 1201
#define CLI_OPT_MAX_REPLICAS 1202
#define CLI_OPT_SCALE_DOWN_MARGIN 1203
#define CLI_OPT_ACTIONS_INTERVAL 1204
#define CLI_OPT_ACTIONS_TOPIC 1205
#define CLI_OPT_SCALE_DOWN_WINDOW 1206
#define CLI_ACTUATION_LONG_OPTIONS                                                   \
    { "objective-ms", required_argument, NULL, CLI_OPT_OBJECTIVE },                  \
    { "min-replicas", required_argument, NULL, CLI_OPT_MIN_REPLICAS },               \
    { "max-replicas", required_argument, NULL, CLI_OPT_MAX_REPLICAS },               \
    { "scale-down-margin", required_argument, NULL, CLI_OPT_SCALE_DOWN_MARGIN },     \
    { "actions-interval", required_argument, NULL, CLI_OPT_ACTIONS_INTERVAL },       \
    { "actions-topic", required_argument, NULL, CLI_OPT_ACTIONS_TOPIC },             \
    { "scale-down-window", required_argument, NULL, CLI_OPT_SCALE_DOWN_WINDOW }
#define CLI_ACTUATION_HELP                                                                   \
    "actuation (off without --objective-ms):\n"                                              \
    "  --objective-ms MS    mean latency objective: recommend the fewest replicas\n"         \
    "                       predicted to meet it (GET /v1/recommendation, /v1/scale/ID)\n"    \
    "  --min-replicas N     smallest count recommended (default 1)\n"                        \
    "  --max-replicas N     largest count recommended (default 10, at most min + 63)\n"      \
    "  --scale-down-margin F  scale down only to a count predicted under objective x (1-F)\n" \
    "                       (default 0.1; 0: no band)\n"                                     \
    "  --scale-down-window D  scale down only when no read of the last D asked for more\n"   \
    "                       (default 60s, at most 5m; 0: none)\n"                             \
    "  --actions-interval D publish an unchanged recommendation again after D (default 10s)\n" \
    "  --actions-topic T    Kafka topic of recommendations (default ndt.actions)\n"
struct api_options;
/* Handles opt if it is one of the actuation flags: NDT_OK, NDT_ERROR (bad
 * value, message printed) or NDT_AGAIN (not one of them). */
int cli_actuation_flag(const char *cmd, int opt, const char *arg, struct api_options *o);

/* "--flag: expected a duration" parsing to milliseconds (at least 1 for a
 * non-zero duration); NDT_ERROR with the message printed. */
int cli_duration_ms(const char *cmd, const char *flag, const char *arg, int *out_ms);

/* Handles what every command's getopt default case does: the common
 * options, else usage to stderr.  NDT_OK if handled, NDT_ERROR otherwise. */
int cli_default_option(const char *cmd, int opt, const char *arg, void (*usage)(FILE *));

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

/* A bearer token from a file (--token-file): its first line without
 * surrounding blanks, malloc'ed; NULL with the reason in err. */
#define CLI_TOKEN_FILE_MAX 4096
char *cli_read_token(const char *path, char *err, size_t errlen);

/* For commands not built yet: a clear message and exit 1. */
int cli_not_built(const char *cmd, const char *what);

/* `run`'s model bootstrap (run_bootstrap.c).  Finds the newest model of
 * the registry graded Excellent or Reliable (1 if any, its id in id). */
int cli_run_find_gated_model(const char *registry, char *id, size_t size);
/* Makes sure the registry has a gated model: if none, campaign, train and
 * validate as child processes.  NDT_OK with its id; NDT_AGAIN when the new
 * model was graded Unreliable (registered, not servable); NDT_ERROR. */
int cli_run_bootstrap(const char *registry, const char *data_dir, const char *dwell,
                      const char *rounds, char *id, size_t size, char *err, size_t errlen);

#endif
