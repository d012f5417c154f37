/*
 * kafka.c: the -X passthrough, configuration building, bootstrap
 * resolution and the embedded broker, see kafka.h.
 *
 * Configuration is layered like kcat's: bootstrap.servers, then the
 * caller's defaults, then every -X in the order given, so the user always
 * has the last word.  librdkafka validates each key as it is set, which is
 * how a typo in -X becomes an error naming the key instead of a silently
 * ignored option.
 *
 * librdkafka logs on its own threads in its own format; every
 * configuration built here routes those lines through ndt_log (logfmt or
 * JSON like the rest of ndtpipe).  A broker that is away makes librdkafka
 * repeat the same complaint every retry, so warnings are rate-limited
 * process-wide (one line per NDT_KAFKA_LOG_INTERVAL_MS, with a count of
 * what was suppressed); everything else goes to debug.
 *
 * The embedded broker is librdkafka's mock cluster.  It needs an
 * rd_kafka_t to live in: a producer with no bootstrap.servers is enough,
 * and its one "no bootstrap.servers configured" warning is expected, so
 * that handle's log lines go to debug.  `--brokers embedded` shares one
 * such cluster per process, created on first use under a mutex and never
 * destroyed (it lives as long as the process, like a daemon thread).
 */
#include "common/kafka.h"

#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/ndt.h"

#define NDT_KAFKA_LOG_INTERVAL_MS 10000

struct ndt_broker {
    rd_kafka_t *rk;                   /* hosts the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    char *bootstraps;
};

static pthread_mutex_t embedded_lock = PTHREAD_MUTEX_INITIALIZER;
static ndt_broker *embedded_broker;

/* ---- -X options ------------------------------------------------------ */

int ndt_kafka_opts_add(ndt_kafka_opts *opts, const char *key_value, char *err, size_t errlen)
{
    const char *eq = strchr(key_value, '=');
    if (!eq || eq == key_value) {
        snprintf(err, errlen, "-X %s: expected key=value", key_value);
        return NDT_ERROR;
    }
    char **keys = realloc(opts->keys, (opts->n + 1) * sizeof(*keys));
    if (!keys)
        goto oom;
    opts->keys = keys;
    char **values = realloc(opts->values, (opts->n + 1) * sizeof(*values));
    if (!values)
        goto oom;
    opts->values = values;
    char *key = strndup(key_value, (size_t)(eq - key_value));
    char *value = strdup(eq + 1);
    if (!key || !value) {
        free(key);
        free(value);
        goto oom;
    }
    opts->keys[opts->n] = key;
    opts->values[opts->n] = value;
    opts->n++;
    return NDT_OK;
oom:
    snprintf(err, errlen, "-X %s: out of memory", key_value);
    return NDT_ERROR;
}

void ndt_kafka_opts_free(ndt_kafka_opts *opts)
{
    for (size_t i = 0; i < opts->n; i++) {
        free(opts->keys[i]);
        free(opts->values[i]);
    }
    free(opts->keys);
    free(opts->values);
    opts->keys = opts->values = NULL;
    opts->n = 0;
}

/* ---- librdkafka's log lines ------------------------------------------ */

static _Atomic int64_t log_last_warn_ms = INT64_MIN / 2;
static _Atomic uint64_t log_suppressed;

static void log_to_ndt(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    NDT_UNUSED(rk);
    if (level > LOG_WARNING) {
        ndt_log(NDT_LOG_DEBUG, "kafka", buf, NDT_KV_STR("facility", fac));
        return;
    }
    int64_t now = ndt_clock_mono_ms();
    int64_t last = atomic_load(&log_last_warn_ms);
    if (now - last < NDT_KAFKA_LOG_INTERVAL_MS ||
        !atomic_compare_exchange_strong(&log_last_warn_ms, &last, now)) {
        atomic_fetch_add(&log_suppressed, 1);
        ndt_log(NDT_LOG_DEBUG, "kafka", buf, NDT_KV_STR("facility", fac));
        return;
    }
    ndt_log(level <= LOG_ERR ? NDT_LOG_ERROR : NDT_LOG_WARN, "kafka", buf,
            NDT_KV_STR("facility", fac),
            NDT_KV_UINT("suppressed_since_last", atomic_exchange(&log_suppressed, 0)));
}

/* The mock's host handle has no brokers by design; its complaints are noise. */
static void log_to_debug(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    NDT_UNUSED(rk);
    NDT_UNUSED(level);
    ndt_log(NDT_LOG_DEBUG, "kafka", buf, NDT_KV_STR("facility", fac));
}

/* ---- configuration --------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const char *origin, const char *key,
                    const char *value, char *err, size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
        return NDT_OK;
    snprintf(err, errlen, "%s%s: %s", origin, key, why);
    return NDT_ERROR;
}

static int conf_set_pairs(rd_kafka_conf_t *conf, const char *const *pairs, char *err, size_t errlen)
{
    for (size_t i = 0; pairs && pairs[i] && pairs[i + 1]; i += 2) {
        if (conf_set(conf, "", pairs[i], pairs[i + 1], err, errlen) != NDT_OK)
            return NDT_ERROR;
    }
    return NDT_OK;
}

rd_kafka_conf_t *ndt_kafka_conf_new(const char *brokers, const char *const *defaults,
                                    const ndt_kafka_opts *opts, char *err, size_t errlen)
{
    return ndt_kafka_conf_new_layered(brokers, defaults, NULL, opts, err, errlen);
}

rd_kafka_conf_t *ndt_kafka_conf_new_layered(const char *brokers, const char *const *defaults,
                                            const char *const *overrides, const ndt_kafka_opts *opts,
                                            char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        snprintf(err, errlen, "kafka: out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_to_ndt);
    if (brokers && conf_set(conf, "", "bootstrap.servers", brokers, err, errlen) != NDT_OK)
        goto fail;
    if (conf_set_pairs(conf, defaults, err, errlen) != NDT_OK ||
        conf_set_pairs(conf, overrides, err, errlen) != NDT_OK)
        goto fail;
    for (size_t i = 0; opts && i < opts->n; i++) {
        if (conf_set(conf, "-X ", opts->keys[i], opts->values[i], err, errlen) != NDT_OK)
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ---- the embedded broker --------------------------------------------- */

int ndt_broker_start(int nbrokers, ndt_broker **out, char *err, size_t errlen)
{
    char why[256];
    *out = NULL;
    if (nbrokers < 1 || nbrokers > 16) {
        snprintf(err, errlen, "broker: broker count must be 1..16, got %d", nbrokers);
        return NDT_ERROR;
    }
    ndt_broker *b = calloc(1, sizeof(*b));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!b || !conf) {
        snprintf(err, errlen, "broker: out of memory");
        goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, log_to_debug);
    /* The mock's sockets take this handle's settings.  With Nagle on, a
     * response written while an earlier one is still unacknowledged waits
     * for the client's next request or its delayed ACK (40 ms on Linux):
     * the last ProduceResponse of a burst, a commit answered right after a
     * heartbeat.  Kafka's own broker sets TCP_NODELAY on every socket. */
    if (conf_set(conf, "broker: ", "socket.nagle.disable", "true", err, errlen) != NDT_OK)
        goto fail;
    b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!b->rk) {
        snprintf(err, errlen, "broker: cannot create the host handle: %s", why);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    b->mcluster = rd_kafka_mock_cluster_new(b->rk, nbrokers);
    if (!b->mcluster) {
        snprintf(err, errlen, "broker: cannot start the mock cluster (ports on 127.0.0.1?)");
        goto fail;
    }
    b->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(b->mcluster));
    if (!b->bootstraps) {
        snprintf(err, errlen, "broker: out of memory");
        goto fail;
    }
    *out = b;
    return NDT_OK;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    ndt_broker_stop(b);
    return NDT_ERROR;
}

const char *ndt_broker_bootstraps(const ndt_broker *broker) { return broker->bootstraps; }

struct rd_kafka_mock_cluster_s *ndt_broker_mock(ndt_broker *broker) { return broker->mcluster; }

void ndt_broker_stop(ndt_broker *broker)
{
    if (!broker)
        return;
    if (broker->mcluster)
        rd_kafka_mock_cluster_destroy(broker->mcluster);
    if (broker->rk)
        rd_kafka_destroy(broker->rk);
    free(broker->bootstraps);
    free(broker);
}

const char *ndt_kafka_bootstrap(const char *brokers, char *err, size_t errlen)
{
    if (!brokers || !*brokers) {
        snprintf(err, errlen, "--brokers: empty (give host:port[,...] or embedded)");
        return NULL;
    }
    if (strcmp(brokers, "embedded") != 0)
        return brokers;
    pthread_mutex_lock(&embedded_lock);
    if (!embedded_broker && ndt_broker_start(1, &embedded_broker, err, errlen) == NDT_OK)
        ndt_log(NDT_LOG_INFO, "kafka", "embedded broker started",
                NDT_KV_STR("bootstrap", embedded_broker->bootstraps));
    const char *out = embedded_broker ? embedded_broker->bootstraps : NULL;
    pthread_mutex_unlock(&embedded_lock);
    return out;
}
