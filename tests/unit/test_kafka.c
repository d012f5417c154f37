/*
 * test_kafka.c: the Kafka plumbing (common/kafka.c) and the ingest sink
 * against a real Kafka-protocol peer: librdkafka's mock cluster in this
 * process.  Messages are consumed back with a plain librdkafka consumer
 * (assign(), no group, so no rebalance wait) and compared with what the
 * encoders produce.  Fault tests take the mock broker down and up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <avro.h>
#include <math.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kafka.h"
#include "ingest/sink.h"

#define NSERIES 40

typedef struct fixture {
    ndt_broker *broker;
    ingest_label labels[NSERIES][4];
    char names[NSERIES][32];
    ingest_series series[NSERIES];
    ingest_batch batch;
} fixture;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char err[NDT_ERRBUF_SIZE];
    if (ndt_broker_start(1, &f->broker, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    for (int i = 0; i < NSERIES; i++) {
        snprintf(f->names[i], sizeof(f->names[i]), "metric_%d", i % 7);
        f->labels[i][0] = (ingest_label){ NDT_STR_LIT("__name__"), ndt_str_from_cstr(f->names[i]) };
        f->labels[i][1] = (ingest_label){ NDT_STR_LIT("instance"), NDT_STR_LIT("pod-1:8080") };
        f->labels[i][2] = (ingest_label){ NDT_STR_LIT("job"), NDT_STR_LIT("svc") };
        f->labels[i][3] = (ingest_label){ NDT_STR_LIT("seq"), ndt_str_from_cstr(f->names[i] + 7) };
        f->series[i] = (ingest_series){ f->labels[i], 4, i * 0.5, 1767323045678LL + i,
                                        INGEST_TYPE_GAUGE };
    }
    f->batch = (ingest_batch){ NDT_STR_LIT("svc"), NDT_STR_LIT("pod-1:8080"), 1767323045678LL,
                               f->series, NSERIES };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ndt_broker_stop(f->broker);
    free(f);
    return 0;
}

/* ---- a consumer that reads a whole topic back ---------------------------- */

typedef struct consumed {
    size_t n;
    char *keys[4096];
    char *payloads[4096];
    size_t lens[4096];
    int32_t partitions[4096];
} consumed;

static void consumed_free(consumed *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->keys[i]);
        free(c->payloads[i]);
    }
    free(c);
}

/* Reads topic (4 partitions) from the beginning until want messages or
 * timeout_ms; messages of one partition come in order. */
static consumed *consume_topic(const char *brokers, const char *topic, size_t want,
                               int timeout_ms)
{
    static const char *const defaults[] = { "group.id", "ndt-test-reader",
                                            "enable.auto.commit", "false", NULL };
    char err[NDT_ERRBUF_SIZE];
    rd_kafka_conf_t *conf = ndt_kafka_conf_new(brokers, defaults, NULL, err, sizeof(err));
    assert_non_null(conf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(4);
    for (int p = 0; p < 4; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);

    consumed *c = calloc(1, sizeof(*c));
    int64_t deadline = now_ms() + timeout_ms;
    while (c->n < want && now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err && c->n < NDT_ARRAY_LEN(c->keys)) {
            c->keys[c->n] = strndup(m->key ? m->key : "", m->key_len);
            c->payloads[c->n] = malloc(m->len + 1);
            memcpy(c->payloads[c->n], m->payload, m->len);
            c->lens[c->n] = m->len;
            c->partitions[c->n] = m->partition;
            c->n++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return c;
}

static ingest_sink *new_sink(fixture *f, const char *topic, ingest_format format, int32_t schema_id,
                             const ndt_kafka_opts *xopts, const volatile int *stop)
{
    ingest_sink_config cfg = { .brokers = ndt_broker_bootstraps(f->broker),
                               .xopts = xopts,
                               .topic = topic,
                               .format = format,
                               .schema_id = schema_id,
                               .stop = stop };
    ingest_sink *sink = NULL;
    char err[NDT_ERRBUF_SIZE];
    if (ingest_sink_new(&cfg, &sink, err, sizeof(err)) != NDT_OK)
        fail_msg("ingest_sink_new: %s", err);
    return sink;
}

/* ---- -X and configuration ------------------------------------------------ */

static void xopts_bad_key_is_named(void **state)
{
    fixture *f = *state;
    ndt_kafka_opts opts = { 0 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_kafka_opts_add(&opts, "no-equals-sign", err, sizeof(err)), NDT_ERROR);
    assert_non_null(strstr(err, "no-equals-sign"));
    assert_int_equal(ndt_kafka_opts_add(&opts, "=x", err, sizeof(err)), NDT_ERROR);
    assert_int_equal(ndt_kafka_opts_add(&opts, "linger.ms=7", err, sizeof(err)), NDT_OK);
    assert_int_equal(ndt_kafka_opts_add(&opts, "no.such.property=1", err, sizeof(err)), NDT_OK);

    rd_kafka_conf_t *conf = ndt_kafka_conf_new("127.0.0.1:1", NULL, &opts, err, sizeof(err));
    assert_null(conf);
    assert_non_null(strstr(err, "-X no.such.property"));

    ingest_sink_config cfg = { .brokers = ndt_broker_bootstraps(f->broker), .xopts = &opts,
                               .format = INGEST_FORMAT_JSON, .schema_id = -1 };
    ingest_sink *sink = NULL;
    err[0] = '\0';
    assert_int_equal(ingest_sink_new(&cfg, &sink, err, sizeof(err)), NDT_ERROR);
    assert_null(sink);
    assert_non_null(strstr(err, "no.such.property"));
    ndt_kafka_opts_free(&opts);

    /* A bad value is named too, and the -X value wins over defaults. */
    assert_int_equal(ndt_kafka_opts_add(&opts, "acks=banana", err, sizeof(err)), NDT_OK);
    assert_null(ndt_kafka_conf_new("127.0.0.1:1", NULL, &opts, err, sizeof(err)));
    assert_non_null(strstr(err, "-X acks"));
    ndt_kafka_opts_free(&opts);

    static const char *const defaults[] = { "linger.ms", "5", NULL };
    assert_int_equal(ndt_kafka_opts_add(&opts, "linger.ms=42", err, sizeof(err)), NDT_OK);
    conf = ndt_kafka_conf_new("127.0.0.1:1", defaults, &opts, err, sizeof(err));
    assert_non_null(conf);
    char value[32];
    size_t size = sizeof(value);
    assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", value, &size), RD_KAFKA_CONF_OK);
    assert_string_equal(value, "42");
    rd_kafka_conf_destroy(conf);

    /* A command's own list lies over the module's defaults, -X over both. */
    static const char *const overrides[] = { "linger.ms", "100", "batch.size", "2000000", NULL };
    conf = ndt_kafka_conf_new_layered("127.0.0.1:1", defaults, overrides, &opts, err, sizeof(err));
    assert_non_null(conf);
    size = sizeof(value);
    assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", value, &size), RD_KAFKA_CONF_OK);
    assert_string_equal(value, "42");
    size = sizeof(value);
    assert_int_equal(rd_kafka_conf_get(conf, "batch.size", value, &size), RD_KAFKA_CONF_OK);
    assert_string_equal(value, "2000000");
    rd_kafka_conf_destroy(conf);
    ndt_kafka_opts_free(&opts);
    conf = ndt_kafka_conf_new_layered("127.0.0.1:1", defaults, overrides, NULL, err, sizeof(err));
    size = sizeof(value);
    assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", value, &size), RD_KAFKA_CONF_OK);
    assert_string_equal(value, "100");
    rd_kafka_conf_destroy(conf);
}

static void embedded_bootstrap_is_shared(void **state)
{
    (void)state;
    char err[NDT_ERRBUF_SIZE];
    const char *a = ndt_kafka_bootstrap("embedded", err, sizeof(err));
    const char *b = ndt_kafka_bootstrap("embedded", err, sizeof(err));
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_true(strncmp(a, "127.0.0.1:", 10) == 0);
    assert_string_equal(ndt_kafka_bootstrap("kafka:9092", err, sizeof(err)), "kafka:9092");
    assert_null(ndt_kafka_bootstrap("", err, sizeof(err)));
}

/* ---- publish and read back ----------------------------------------------- */

static void publish_and_check_per_sample(fixture *f, ingest_format format, const char *topic)
{
    ingest_sink *sink = new_sink(f, topic, format, -1, NULL, NULL);
    assert_int_equal(ingest_sink_publish(sink, &f->batch), NDT_OK);
    assert_int_equal(ingest_sink_flush(sink, 10000), NDT_OK);
    ingest_sink_stats st;
    ingest_sink_get_stats(sink, &st);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.samples, NSERIES);
    assert_int_equal(st.messages, NSERIES);
    assert_int_equal(st.delivered, NSERIES);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.dropped, 0);
    ingest_sink_destroy(sink);

    consumed *c = consume_topic(ndt_broker_bootstraps(f->broker), topic, NSERIES, 10000);
    assert_int_equal(c->n, NSERIES);
    /* One key, so one partition, so the order of the batch. */
    ndt_buf want;
    ndt_buf_init(&want, 0);
    for (size_t i = 0; i < c->n; i++) {
        assert_string_equal(c->keys[i], "pod-1:8080");
        assert_int_equal(c->partitions[i], c->partitions[0]);
        ndt_buf_reset(&want);
        if (format == INGEST_FORMAT_JSON)
            assert_int_equal(ingest_encode_json(&f->series[i], &want), NDT_OK);
        else
            assert_int_equal(ingest_encode_influx(&f->series[i], &want), NDT_OK);
        assert_int_equal(c->lens[i], want.len);
        assert_memory_equal(c->payloads[i], want.data, want.len);
    }
    ndt_buf_free(&want);
    consumed_free(c);
}

static void json_messages_read_back(void **state)
{
    publish_and_check_per_sample(*state, INGEST_FORMAT_JSON, "t.json");
}

static void influx_messages_read_back(void **state)
{
    publish_and_check_per_sample(*state, INGEST_FORMAT_INFLUX, "t.influx");
}

static void influx_sink_counts_unrepresentable_values(void **state)
{
    fixture *f = *state;
    ingest_series three[3] = { f->series[0], f->series[1], f->series[2] };
    three[1].value = NAN;
    three[2].value = -INFINITY;
    ingest_batch b = f->batch;
    b.series = three;
    b.nseries = 3;
    ingest_sink *sink = new_sink(f, "t.influx.nan", INGEST_FORMAT_INFLUX, -1, NULL, NULL);
    assert_int_equal(ingest_sink_publish(sink, &b), NDT_OK);
    assert_int_equal(ingest_sink_flush(sink, 10000), NDT_OK);
    ingest_sink_stats st;
    ingest_sink_get_stats(sink, &st);
    assert_int_equal(st.samples, 3);
    assert_int_equal(st.messages, 1);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.unrepresentable, 2);
    assert_int_equal(st.dropped, 0);
    ingest_sink_destroy(sink);
}

/* Number of samples in an Avro body, read with Avro C. */
static size_t avro_sample_count(const char *payload, size_t len, char *instance, size_t isize)
{
    avro_schema_t schema;
    assert_int_equal(avro_schema_from_json_length(ingest_avro_schema_text(),
                                                  strlen(ingest_avro_schema_text()), &schema),
                     0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec, field;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    avro_reader_t reader = avro_reader_memory(payload, (int64_t)len);
    assert_int_equal(avro_value_read(reader, &rec), 0);
    size_t n, vlen;
    const char *s;
    assert_int_equal(avro_value_get_by_name(&rec, "samples", &field, NULL), 0);
    assert_int_equal(avro_value_get_size(&field, &n), 0);
    assert_int_equal(avro_value_get_by_name(&rec, "instance", &field, NULL), 0);
    assert_int_equal(avro_value_get_string(&field, &s, &vlen), 0);
    snprintf(instance, isize, "%s", s);
    avro_reader_free(reader);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    return n;
}

static void avro_batches_read_back_with_framing(void **state)
{
    fixture *f = *state;
    ingest_sink *sink = new_sink(f, "t.avro", INGEST_FORMAT_AVRO, 42, NULL, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ingest_sink_publish(sink, &f->batch), NDT_OK);
    assert_int_equal(ingest_sink_flush(sink, 10000), NDT_OK);
    ingest_sink_stats st;
    ingest_sink_get_stats(sink, &st);
    assert_int_equal(st.messages, 3);
    assert_int_equal(st.delivered, 3);
    ingest_sink_destroy(sink);

    ingest_avro_encoder *enc;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ingest_avro_encoder_new(&enc, err, sizeof(err)), NDT_OK);
    ndt_buf want;
    ndt_buf_init(&want, 0);
    assert_int_equal(ingest_encode_avro(enc, &f->batch, 42, &want), NDT_OK);
    consumed *c = consume_topic(ndt_broker_bootstraps(f->broker), "t.avro", 3, 10000);
    assert_int_equal(c->n, 3);
    for (size_t i = 0; i < c->n; i++) {
        assert_string_equal(c->keys[i], "pod-1:8080");
        assert_int_equal(c->lens[i], want.len);
        assert_memory_equal(c->payloads[i], "\0\0\0\0\x2a", 5);
        assert_memory_equal(c->payloads[i], want.data, want.len);
    }
    ndt_buf_free(&want);
    ingest_avro_encoder_free(enc);
    consumed_free(c);
}

/* A scrape larger than message.max.bytes becomes several valid records. */
static void avro_large_batch_is_split_not_lost(void **state)
{
    fixture *f = *state;
    enum { BIG = 1000 };
    ingest_series *many = calloc(BIG, sizeof(*many));
    for (int i = 0; i < BIG; i++)
        many[i] = f->series[i % NSERIES];
    ingest_batch big = f->batch;
    big.series = many;
    big.nseries = BIG;
    ndt_kafka_opts opts = { 0 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_kafka_opts_add(&opts, "message.max.bytes=8000", err, sizeof(err)), NDT_OK);
    ingest_sink *sink = new_sink(f, "t.avro.split", INGEST_FORMAT_AVRO, -1, &opts, NULL);
    assert_int_equal(ingest_sink_publish(sink, &big), NDT_OK);
    assert_int_equal(ingest_sink_flush(sink, 10000), NDT_OK);
    ingest_sink_stats st;
    ingest_sink_get_stats(sink, &st);
    assert_true(st.messages > 1);
    assert_int_equal(st.delivered, st.messages);
    assert_int_equal(st.dropped, 0);
    ingest_sink_destroy(sink);

    consumed *c = consume_topic(ndt_broker_bootstraps(f->broker), "t.avro.split", st.messages,
                                10000);
    assert_int_equal(c->n, st.messages);
    size_t total = 0;
    for (size_t i = 0; i < c->n; i++) {
        char instance[64];
        assert_true(c->lens[i] <= 8000);
        total += avro_sample_count(c->payloads[i], c->lens[i], instance, sizeof(instance));
        assert_string_equal(instance, "pod-1:8080");
    }
    assert_int_equal(total, BIG);
    consumed_free(c);
    ndt_kafka_opts_free(&opts);
    free(many);
}

/* ---- back-pressure and outages ------------------------------------------- */

typedef struct delayed {
    ndt_broker *broker;
    int delay_ms;
    volatile int *flag; /* set it, or bring broker 1 up if NULL */
} delayed;

static void *delayed_action(void *arg)
{
    delayed *d = arg;
    sleep_ms(d->delay_ms);
    if (d->flag)
        *d->flag = 1;
    else
        rd_kafka_mock_broker_set_up(ndt_broker_mock(d->broker), 1);
    return NULL;
}

static void full_queue_waits_then_delivers_everything(void **state)
{
    fixture *f = *state;
    ndt_kafka_opts opts = { 0 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_kafka_opts_add(&opts, "queue.buffering.max.messages=10", err, sizeof(err)),
                     NDT_OK);
    ingest_sink *sink = new_sink(f, "t.pressure", INGEST_FORMAT_JSON, -1, &opts, NULL);
    /* A first batch while the broker is up, so the topic exists. */
    assert_int_equal(ingest_sink_publish(sink, &f->batch), NDT_OK);
    assert_int_equal(ingest_sink_flush(sink, 10000), NDT_OK);

    rd_kafka_mock_broker_set_down(ndt_broker_mock(f->broker), 1);
    delayed up = { f->broker, 1500, NULL };
    pthread_t th;
    pthread_create(&th, NULL, delayed_action, &up);
    int64_t t0 = now_ms();
    assert_int_equal(ingest_sink_publish(sink, &f->batch), NDT_OK);
    int64_t waited = now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(ingest_sink_flush(sink, 20000), NDT_OK);

    ingest_sink_stats st;
    ingest_sink_get_stats(sink, &st);
    assert_true(waited >= 1000); /* publish really blocked on the full queue */
    assert_true(st.queue_full_waits >= 1);
    assert_int_equal(st.messages, 2 * NSERIES);
    assert_int_equal(st.delivered, 2 * NSERIES);
    assert_int_equal(st.delivery_failed, 0);
    assert_int_equal(st.dropped, 0);
    ingest_sink_destroy(sink);
    ndt_kafka_opts_free(&opts);

    /* Nothing lost, nothing duplicated (idempotence), order kept. */
    consumed *c = consume_topic(ndt_broker_bootstraps(f->broker), "t.pressure", 2 * NSERIES + 1,
                                3000);
    assert_int_equal(c->n, 2 * NSERIES);
    ndt_buf want;
    ndt_buf_init(&want, 0);
    for (size_t i = 0; i < c->n; i++) {
        ndt_buf_reset(&want);
        assert_int_equal(ingest_encode_json(&f->series[i % NSERIES], &want), NDT_OK);
        assert_int_equal(c->lens[i], want.len);
        assert_memory_equal(c->payloads[i], want.data, want.len);
    }
    ndt_buf_free(&want);
    consumed_free(c);
    fprintf(stderr, "# publish waited %lld ms, queue_full_waits=%llu\n", (long long)waited,
            (unsigned long long)st.queue_full_waits);
}

/* Avro messages are lent to librdkafka, not copied, and their buffers
 * reused once delivered: with the broker down, many distinct scrapes wait
 * in the producer at once (and publish blocks on the full queue), so a
 * buffer reused too early would show as a wrong payload on the topic. */
static void avro_buffers_in_flight_stay_intact(void **state)
{
    enum { NBATCH = 40 };
    fixture *f = *state;
    ndt_kafka_opts opts = { 0 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_kafka_opts_add(&opts, "queue.buffering.max.messages=8", err, sizeof(err)),
                     NDT_OK);
    ingest_sink *sink = new_sink(f, "t.avro.lent", INGEST_FORMAT_AVRO, -1, &opts, NULL);
    ingest_batch batch = f->batch;
    assert_int_equal(ingest_sink_publish(sink, &batch), NDT_OK); /* creates the topic */
    assert_int_equal(ingest_sink_flush(sink, 10000), NDT_OK);

    rd_kafka_mock_broker_set_down(ndt_broker_mock(f->broker), 1);
    delayed up = { f->broker, 800, NULL };
    pthread_t th;
    pthread_create(&th, NULL, delayed_action, &up);
    for (int i = 1; i < NBATCH; i++) {
        batch.scrape_timestamp_ms = f->batch.scrape_timestamp_ms + i; /* every message differs */
        batch.nseries = NSERIES - (size_t)(i % 5);
        assert_int_equal(ingest_sink_publish(sink, &batch), NDT_OK);
    }
    pthread_join(th, NULL);
    assert_int_equal(ingest_sink_flush(sink, 20000), NDT_OK);
    ingest_sink_stats st;
    ingest_sink_get_stats(sink, &st);
    assert_int_equal(st.delivered, NBATCH);
    assert_true(st.queue_full_waits >= 1);
    ingest_sink_destroy(sink);
    ndt_kafka_opts_free(&opts);

    consumed *c = consume_topic(ndt_broker_bootstraps(f->broker), "t.avro.lent", NBATCH + 1, 3000);
    assert_int_equal(c->n, NBATCH);
    ingest_avro_encoder *enc;
    assert_int_equal(ingest_avro_encoder_new(&enc, err, sizeof(err)), NDT_OK);
    ndt_buf want;
    ndt_buf_init(&want, 0);
    for (int i = 0; i < NBATCH; i++) {
        batch.scrape_timestamp_ms = f->batch.scrape_timestamp_ms + i;
        batch.nseries = i ? NSERIES - (size_t)(i % 5) : NSERIES;
        ndt_buf_reset(&want);
        assert_int_equal(ingest_encode_avro(enc, &batch, -1, &want), NDT_OK);
        assert_int_equal(c->lens[i], want.len);
        assert_memory_equal(c->payloads[i], want.data, want.len);
    }
    ndt_buf_free(&want);
    ingest_avro_encoder_free(enc);
    consumed_free(c);
}

/* Avro messages still lent to librdkafka when the sink goes are counted
 * as undelivered and their buffers freed (ASan's leak check runs here). */
static void avro_sink_destroyed_with_messages_in_flight(void **state)
{
    fixture *f = *state;
    ingest_sink *sink = new_sink(f, "t.avro.gone", INGEST_FORMAT_AVRO, -1, NULL, NULL);
    assert_int_equal(ingest_sink_publish(sink, &f->batch), NDT_OK);
    assert_int_equal(ingest_sink_flush(sink, 10000), NDT_OK);
    rd_kafka_mock_broker_set_down(ndt_broker_mock(f->broker), 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ingest_sink_publish(sink, &f->batch), NDT_OK);
    assert_int_equal(ingest_sink_flush(sink, 200), NDT_AGAIN);
    ingest_sink_stats st;
    ingest_sink_get_stats(sink, &st);
    assert_int_equal(st.in_flight, 5);
    ingest_sink_destroy(sink);
    rd_kafka_mock_broker_set_up(ndt_broker_mock(f->broker), 1);
}

static void stop_request_ends_the_wait(void **state)
{
    fixture *f = *state;
    ndt_kafka_opts opts = { 0 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_kafka_opts_add(&opts, "queue.buffering.max.messages=10", err, sizeof(err)),
                     NDT_OK);
    volatile int stop = 0;
    ingest_sink *sink = new_sink(f, "t.stop", INGEST_FORMAT_JSON, -1, &opts, &stop);
    rd_kafka_mock_broker_set_down(ndt_broker_mock(f->broker), 1);
    delayed d = { f->broker, 300, &stop };
    pthread_t th;
    pthread_create(&th, NULL, delayed_action, &d);
    assert_int_equal(ingest_sink_publish(sink, &f->batch), NDT_AGAIN);
    pthread_join(th, NULL);
    ingest_sink_stats st;
    ingest_sink_get_stats(sink, &st);
    assert_int_equal(st.messages, 10);
    assert_int_equal(st.dropped, NSERIES - 10);
    assert_int_equal(st.queue_full_waits, 1);
    assert_int_equal(ingest_sink_flush(sink, 200), NDT_AGAIN); /* broker still down */
    ingest_sink_destroy(sink);
    rd_kafka_mock_broker_set_up(ndt_broker_mock(f->broker), 1);
    ndt_kafka_opts_free(&opts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(xopts_bad_key_is_named),
        cmocka_unit_test(embedded_bootstrap_is_shared),
        cmocka_unit_test_setup_teardown(json_messages_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(influx_messages_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(influx_sink_counts_unrepresentable_values, setup, teardown),
        cmocka_unit_test_setup_teardown(avro_batches_read_back_with_framing, setup, teardown),
        cmocka_unit_test_setup_teardown(avro_large_batch_is_split_not_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(full_queue_waits_then_delivers_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_request_ends_the_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(avro_buffers_in_flight_stay_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(avro_sink_destroyed_with_messages_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
