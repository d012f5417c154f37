/*
 * kafka.h: what every Kafka-facing stage shares: the -X passthrough,
 * bootstrap resolution (including --brokers embedded) and the embedded
 * broker built on librdkafka's mock cluster.
 *
 * `--brokers embedded` starts one in-process broker for the whole process
 * (the first caller creates it, later callers share it) so that `ndtpipe
 * run` and tests need no external Kafka.  Its address is ephemeral;
 * ndt_kafka_bootstrap() tells it.
 */
#ifndef NDT_KAFKA_H
#define NDT_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* Ordered key=value pairs given with -X, applied after ndtpipe's defaults
 * so that the user always has the last word (as with kcat). */
typedef struct ndt_kafka_opts {
    char **keys;
    char **values;
    size_t n;
} ndt_kafka_opts;

/* Adds "key=value"; NDT_ERROR with a message if there is no '='. */
int ndt_kafka_opts_add(ndt_kafka_opts *opts, const char *key_value, char *err, size_t errlen);
void ndt_kafka_opts_free(ndt_kafka_opts *opts);

/* Resolves --brokers: "embedded" starts (once) the in-process broker and
 * yields its bootstrap list; anything else is returned as given.  The
 * returned string is owned by the module.  NULL and a message on failure. */
const char *ndt_kafka_bootstrap(const char *brokers, char *err, size_t errlen);

/* A librdkafka configuration with bootstrap.servers, the given defaults
 * (a NULL-terminated list of key, value pairs, may be NULL) and then the
 * -X options.  A bad key or value gives NULL and a message naming it. */
rd_kafka_conf_t *ndt_kafka_conf_new(const char *brokers, const char *const *defaults,
                                    const ndt_kafka_opts *opts, char *err, size_t errlen);
/* The same with a second list laid over the defaults (a command's own,
 * over its module's), still under -X. */
rd_kafka_conf_t *ndt_kafka_conf_new_layered(const char *brokers, const char *const *defaults,
                                            const char *const *overrides, const ndt_kafka_opts *opts,
                                            char *err, size_t errlen);

/* The embedded broker as an object, for `ndtpipe broker` and for tests
 * that need fault injection. */
typedef struct ndt_broker ndt_broker;

int ndt_broker_start(int nbrokers, ndt_broker **out, char *err, size_t errlen);
const char *ndt_broker_bootstraps(const ndt_broker *broker);
/* The mock cluster handle, for rd_kafka_mock_* fault injection. */
struct rd_kafka_mock_cluster_s *ndt_broker_mock(ndt_broker *broker);
void ndt_broker_stop(ndt_broker *broker);

#endif
