/*
 * bench_kafka_hop.c: produce -> delivery latency through the embedded
 * broker, with and without TCP_NODELAY on the broker's sockets.
 *
 *   bench_kafka_hop [TICKS] [MESSAGES_PER_TICK]
 *
 * The harmonize stage's output pattern: every 20 ms, MESSAGES_PER_TICK
 * (default 10) small keyed messages (one NGSI-LD fragment per entity)
 * spread over the topic's 4 partitions, produced with the stage's
 * producer settings (idempotent, acks=all, linger.ms=5, lz4).  Delivery
 * reports are served continuously, so each latency is produce() to the
 * broker's acknowledgement.  Two brokers run side by side in the same
 * process and alternate tick by tick:
 *   - `nagle`: librdkafka's mock cluster on a host handle with default
 *     settings (what ndtpipe's embedded broker was before),
 *   - `nodelay`: ndt_broker_start(), whose host handle sets
 *     socket.nagle.disable=true, so the mock's sockets set TCP_NODELAY.
 * librdkafka sends one ProduceRequest per partition; with Nagle on the
 * broker side, the last response of such a burst waits until the client
 * sends again (the next tick) or acknowledges (its delayed ACK, 40 ms on
 * Linux): docs/PERFORMANCE.md, "Freshness: the Kafka hop".
 *
 * Output: a Markdown table (p50 / p90 / p99 / max in ms per broker, per
 * message and per tick's whole burst, which is what the stage's offset
 * commit waits for) and the ratio of the bursts' p90.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/kafka.h"
#include "common/ndt.h"

#define HOP_INTERVAL_US 20000
#define HOP_MAX_SAMPLES 200000

typedef struct hop_side {
    const char *name;
    rd_kafka_t *producer;
    double *lat_ms;               /* per message */
    size_t n;
    double *burst_ms;             /* per tick: until its last message was delivered */
    int ticks;
} hop_side;

static int64_t now_us(void)
{
    return ndt_clock_mono_ns() / 1000;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_kafka_hop: %s: %s\n", what, why);
    exit(1);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    hop_side *side = opaque;
    int64_t sent;
    int32_t tick;
    if (m->err || m->len < sizeof(sent) + sizeof(tick) || side->n >= HOP_MAX_SAMPLES)
        return;
    memcpy(&sent, m->payload, sizeof(sent));
    memcpy(&tick, (const char *)m->payload + sizeof(sent), sizeof(tick));
    double ms = (double)(now_us() - sent) / 1000.0;
    side->lat_ms[side->n++] = ms;
    if (tick >= 0 && tick < side->ticks && ms > side->burst_ms[tick])
        side->burst_ms[tick] = ms;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac, (void)buf;
}

static rd_kafka_t *hop_producer(const char *bootstraps, hop_side *side)
{
    static const char *const settings[] = {
        "enable.idempotence", "true", "acks", "all", "linger.ms", "5",
        "compression.type", "lz4", "message.timeout.ms", "0", NULL,
    };
    char why[256];
    rd_kafka_conf_t *conf = ndt_kafka_conf_new(bootstraps, settings, NULL, why, sizeof(why));
    if (!conf)
        die("producer configuration", why);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, side);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk)
        die("producer", why);
    return rk;
}

/* One tick's burst: n keyed messages stamped with their produce time. */
static void hop_burst(hop_side *side, int32_t tick, int n)
{
    char payload[600], key[32];
    memset(payload, 'x', sizeof(payload));
    memcpy(payload + sizeof(int64_t), &tick, sizeof(tick));
    for (int k = 0; k < n; k++) {
        snprintf(key, sizeof(key), "urn:ngsi-ld:Entity:%d", k);
        int64_t t = now_us();
        memcpy(payload, &t, sizeof(t));
        rd_kafka_resp_err_t e = rd_kafka_producev(
            side->producer, RD_KAFKA_V_TOPIC("hop"), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE(payload, sizeof(payload)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e)
            die("produce", rd_kafka_err2str(e));
    }
}

/* Serves both producers' delivery reports until the absolute time. */
static void hop_serve_until(hop_side *sides, int64_t until)
{
    /* Both are polled alike (a blocking poll on one would delay the
     * other's reports): without waiting, then a 100 us nap. */
    const struct timespec nap = { 0, 100 * 1000 };
    while (now_us() < until) {
        rd_kafka_poll(sides[0].producer, 0);
        rd_kafka_poll(sides[1].producer, 0);
        nanosleep(&nap, NULL);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *v, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n);
    return n ? v[i < n ? i : n - 1] : 0;
}

static void row(const char *name, const char *what, double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    printf("| %s | %s | %zu | %.1f | %.1f | %.1f | %.1f |\n", name, what, n, quantile(v, n, 0.5),
           quantile(v, n, 0.9), quantile(v, n, 0.99), n ? v[n - 1] : 0);
}

int main(int argc, char **argv)
{
    int ticks = argc > 1 ? atoi(argv[1]) : 250;
    int per_tick = argc > 2 ? atoi(argv[2]) : 10;
    if (ticks < 10 || per_tick < 1)
        die("usage", "bench_kafka_hop [TICKS >= 10] [MESSAGES_PER_TICK >= 1]");
    char why[256];

    /* The broker as it was: a mock on a host handle with default settings. */
    rd_kafka_conf_t *hc = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(hc, quiet_log);
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, hc, why, sizeof(why));
    if (!host)
        die("mock host", why);
    rd_kafka_mock_cluster_t *nagle = rd_kafka_mock_cluster_new(host, 1);
    ndt_broker *nodelay;
    if (!nagle || ndt_broker_start(1, &nodelay, why, sizeof(why)) != NDT_OK)
        die("mock cluster", nagle ? why : "cannot start");

    hop_side sides[2] = {
        { .name = "nagle (librdkafka's default)" },
        { .name = "nodelay (ndtpipe broker)" },
    };
    for (int i = 0; i < 2; i++) {
        sides[i].ticks = ticks;
        sides[i].lat_ms = calloc(HOP_MAX_SAMPLES, sizeof(double));
        sides[i].burst_ms = calloc((size_t)ticks, sizeof(double));
        if (!sides[i].lat_ms || !sides[i].burst_ms)
            die("memory", "out of memory");
    }
    sides[0].producer = hop_producer(rd_kafka_mock_cluster_bootstraps(nagle), &sides[0]);
    sides[1].producer = hop_producer(ndt_broker_bootstraps(nodelay), &sides[1]);

    /* Warm-up: metadata, producer ids, the topics' partitions. */
    for (int i = 0; i < 2; i++) {
        hop_burst(&sides[i], -1, per_tick);
        rd_kafka_flush(sides[i].producer, 10000);
        sides[i].n = 0;
    }
    /* The two alternate by half a tick, so both see the same machine. */
    int64_t next = now_us();
    for (int t = 0; t < ticks; t++) {
        hop_serve_until(sides, next += HOP_INTERVAL_US / 2);
        hop_burst(&sides[0], t, per_tick);
        hop_serve_until(sides, next += HOP_INTERVAL_US / 2);
        hop_burst(&sides[1], t, per_tick);
    }
    for (int i = 0; i < 2; i++)
        rd_kafka_flush(sides[i].producer, 10000);

    printf("| broker sockets | produce -> delivered | n | p50 ms | p90 ms | p99 ms | max ms |\n");
    printf("|---|---|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < 2; i++) {
        row(sides[i].name, "each message", sides[i].lat_ms, sides[i].n);
        row(sides[i].name, "whole burst (a tick)", sides[i].burst_ms, (size_t)ticks);
    }
    double p90_nodelay = quantile(sides[1].burst_ms, (size_t)ticks, 0.9);
    printf("\nwhole burst p90, nagle / nodelay: %.1fx (%d ticks of %d messages every 20 ms, "
           "4 partitions)\n",
           p90_nodelay > 0 ? quantile(sides[0].burst_ms, (size_t)ticks, 0.9) / p90_nodelay : 0,
           ticks, per_tick);

    for (int i = 0; i < 2; i++) {
        rd_kafka_destroy(sides[i].producer);
        free(sides[i].lat_ms);
        free(sides[i].burst_ms);
    }
    ndt_broker_stop(nodelay);
    rd_kafka_mock_cluster_destroy(nagle);
    rd_kafka_destroy(host);
    return 0;
}
