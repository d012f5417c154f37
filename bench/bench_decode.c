/*
 * bench_decode.c: decode throughput of the three ndt.telemetry.raw
 * readers (harmonize/decode.h), each beside a general-purpose peer doing
 * the same job.
 *
 *   bench_decode EXPOSITION [SECONDS]
 *
 * The messages are what the ingest stage publishes for one scrape of a
 * real exposition (parsed by ingest's own parser, `instance` and `job`
 * added, encoded by ingest's encoders): one Avro record, one json message
 * per sample, one line-protocol line per sample.  Peers:
 *   avro  Avro C's reader into a reused generic value, then every
 *         sample's name, labels, value and timestamp fetched from it;
 *   json  cJSON_ParseWithLength per message, then name, every label and
 *         the value (strtod) fetched; the peer does not parse the RFC 3339
 *         timestamp, so it does less work than hdl_decode.
 * Line protocol has no C reader on this machine to compare with.
 *
 * Output: `reader=... samples_per_sec=... ns_per_sample=...` lines.
 */
#include <avro.h>
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/clock.h"
#include "harmonize/decode.h"
#include "ingest/expo.h"
#include "ingest/sink.h"

#define BENCH_MAX_SERIES 20000
#define BENCH_MAX_LABELS 32

typedef struct bench_batch {
    ingest_label labels[BENCH_MAX_SERIES][BENCH_MAX_LABELS];
    ingest_series series[BENCH_MAX_SERIES];
    size_t n;
} bench_batch;

typedef struct bench_msgs {
    ndt_buf avro;       /* one record */
    ndt_buf json;       /* messages back to back */
    size_t *json_off;   /* n + 1 offsets */
    ndt_buf influx;     /* lines, one message */
    size_t n;
} bench_msgs;

static int label_cmp(const void *a, const void *b)
{
    const ingest_label *x = a, *y = b;
    return ndt_str_cmp(x->name, y->name);
}

static int add_sample(void *ctx, const ingest_sample *s)
{
    bench_batch *b = ctx;
    if (b->n == BENCH_MAX_SERIES || s->nlabels + 3 > BENCH_MAX_LABELS)
        return NDT_OK;
    ingest_label *l = b->labels[b->n];
    size_t nl = 0;
    l[nl++] = (ingest_label){ NDT_STR_LIT("__name__"), s->name };
    l[nl++] = (ingest_label){ NDT_STR_LIT("instance"), NDT_STR_LIT("node-1.example:9100") };
    l[nl++] = (ingest_label){ NDT_STR_LIT("job"), NDT_STR_LIT("node") };
    for (size_t i = 0; i < s->nlabels; i++)
        l[nl++] = s->labels[i];
    qsort(l + 1, nl - 1, sizeof(*l), label_cmp);
    b->series[b->n++] = (ingest_series){ l, nl, s->value, 1767323045678LL, s->type };
    return NDT_OK;
}

static void encode_all(const bench_batch *b, bench_msgs *m)
{
    char err[NDT_ERRBUF_SIZE];
    ingest_avro_encoder *enc;
    if (ingest_avro_encoder_new(&enc, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    /* The record labels a scrape writes (schema version 3). */
    static const ingest_label common[] = {
        { NDT_STR_LIT("instance"), NDT_STR_LIT("node-1.example:9100") },
        { NDT_STR_LIT("job"), NDT_STR_LIT("node") },
    };
    ingest_batch batch = { NDT_STR_LIT("node"), NDT_STR_LIT("node-1.example:9100"),
                           1767323045678LL, b->series, b->n, common, 2 };
    ndt_buf_init(&m->avro, 0);
    ndt_buf_init(&m->json, 0);
    ndt_buf_init(&m->influx, 0);
    ingest_encode_avro(enc, &batch, -1, &m->avro);
    ingest_avro_encoder_free(enc);
    m->json_off = calloc(b->n + 1, sizeof(size_t));
    m->n = 0;
    for (size_t i = 0; i < b->n; i++) {
        /* NaN/Inf have no line-protocol spelling: keep the series every format carries. */
        size_t before = m->influx.len;
        if (ingest_encode_influx(&b->series[i], &m->influx) != NDT_OK) {
            m->influx.len = before;
            continue;
        }
        m->json_off[m->n++] = m->json.len;
        ingest_encode_json(&b->series[i], &m->json);
    }
    m->json_off[m->n] = m->json.len;
}

/* ---- ours -------------------------------------------------------------------- */

static int count_sample(void *ctx, const hdl_sample *s)
{
    size_t *n = ctx;
    *n += s->nlabels ? 1 : 1;
    return NDT_OK;
}

static size_t run_hdl_avro(const bench_msgs *m)
{
    size_t n = 0;
    char err[NDT_ERRBUF_SIZE];
    if (hdl_decode(HDL_FORMAT_AVRO, m->avro.data, m->avro.len, count_sample, &n, err,
                   sizeof(err)) != NDT_OK) {
        fprintf(stderr, "avro: %s\n", err);
        exit(1);
    }
    return n;
}

static size_t run_hdl_json(const bench_msgs *m)
{
    size_t n = 0;
    char err[NDT_ERRBUF_SIZE];
    for (size_t i = 0; i < m->n; i++) {
        if (hdl_decode(HDL_FORMAT_JSON, m->json.data + m->json_off[i],
                       m->json_off[i + 1] - m->json_off[i], count_sample, &n, err,
                       sizeof(err)) != NDT_OK) {
            fprintf(stderr, "json: %s\n", err);
            exit(1);
        }
    }
    return n;
}

static size_t run_hdl_influx(const bench_msgs *m)
{
    size_t n = 0;
    char err[NDT_ERRBUF_SIZE];
    if (hdl_decode(HDL_FORMAT_INFLUX, m->influx.data, m->influx.len, count_sample, &n, err,
                   sizeof(err)) != NDT_OK) {
        fprintf(stderr, "influx: %s\n", err);
        exit(1);
    }
    return n;
}

/* ---- peers ------------------------------------------------------------------ */

static avro_value_iface_t *peer_iface;
static avro_value_t peer_value;
static volatile double peer_sink;

static size_t run_avro_c(const bench_msgs *m)
{
    avro_reader_t r = avro_reader_memory(m->avro.data, (int64_t)m->avro.len);
    avro_value_reset(&peer_value);
    if (avro_value_read(r, &peer_value) != 0) {
        fprintf(stderr, "avro c: %s\n", avro_strerror());
        exit(1);
    }
    avro_reader_free(r);
    avro_value_t samples, s, f, labels, l;
    size_t n = 0, nl;
    avro_value_get_by_index(&peer_value, 3, &samples, NULL);
    avro_value_get_size(&samples, &n);
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *str;
        size_t len;
        double v;
        int64_t ts;
        avro_value_get_by_index(&samples, i, &s, NULL);
        avro_value_get_by_index(&s, 0, &f, NULL);
        avro_value_get_string(&f, &str, &len);
        avro_value_get_by_index(&s, 1, &labels, NULL);
        avro_value_get_size(&labels, &nl);
        for (size_t j = 0; j < nl; j++) {
            avro_value_get_by_index(&labels, j, &l, NULL);
            avro_value_get_by_index(&l, 0, &f, NULL);
            avro_value_get_string(&f, &str, &len);
            avro_value_get_by_index(&l, 1, &f, NULL);
            avro_value_get_string(&f, &str, &len);
        }
        avro_value_get_by_index(&s, 2, &f, NULL);
        avro_value_get_double(&f, &v);
        avro_value_get_by_index(&s, 3, &f, NULL);
        avro_value_get_long(&f, &ts);
        acc += v + (double)ts;
    }
    peer_sink = acc;
    return n;
}

static size_t run_cjson(const bench_msgs *m)
{
    double acc = 0;
    for (size_t i = 0; i < m->n; i++) {
        cJSON *doc = cJSON_ParseWithLength(m->json.data + m->json_off[i],
                                           m->json_off[i + 1] - m->json_off[i]);
        if (!doc) {
            fprintf(stderr, "cjson: parse failed\n");
            exit(1);
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(doc, "value");
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(doc, "labels"), *l;
        cJSON_ArrayForEach(l, labels) acc += (double)(l->string[0] + l->valuestring[0]);
        acc += strtod(value->valuestring, NULL) + (double)name->valuestring[0];
        cJSON_Delete(doc);
    }
    peer_sink = acc;
    return m->n;
}

static void bench_one(const char *name, size_t (*fn)(const bench_msgs *), const bench_msgs *m,
                      double seconds)
{
    size_t samples = 0, rounds = 0;
    double t0 = ndt_clock_mono_s(), t;
    do {
        samples += fn(m);
        rounds++;
        t = ndt_clock_mono_s();
    } while (t - t0 < seconds);
    double rate = (double)samples / (t - t0);
    printf("reader=%-14s samples_per_sec=%.0f ns_per_sample=%.1f scrape_us=%.1f\n", name, rate,
           1e9 / rate, 1e6 * (t - t0) / (double)rounds);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_decode EXPOSITION [SECONDS]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 2;
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static char text[16 << 20];
    size_t len = fread(text, 1, sizeof(text), f);
    fclose(f);
    static bench_batch batch;
    ndt_arena arena;
    ndt_arena_init(&arena, 1 << 20, 0);
    ingest_expo_error perr;
    if (ingest_expo_parse(text, len, INGEST_EXPO_TEXT, &arena, add_sample, &batch, &perr) !=
        NDT_OK) {
        fprintf(stderr, "%s:%u: %s\n", argv[1], perr.line, perr.reason);
        return 1;
    }
    bench_msgs m;
    encode_all(&batch, &m);
    printf("series=%zu (every format carries %zu) avro_bytes=%zu json_bytes=%zu influx_bytes=%zu\n",
           batch.n, m.n, m.avro.len, m.json.len, m.influx.len);

    avro_schema_t schema;
    const char *st = ingest_avro_schema_text();
    avro_schema_from_json_length(st, strlen(st), &schema);
    peer_iface = avro_generic_class_from_schema(schema);
    avro_generic_value_new(peer_iface, &peer_value);

    bench_one("avro", run_hdl_avro, &m, seconds);
    bench_one("avro-c", run_avro_c, &m, seconds);
    bench_one("json", run_hdl_json, &m, seconds);
    bench_one("json-cjson", run_cjson, &m, seconds);
    bench_one("influx", run_hdl_influx, &m, seconds);

    avro_value_decref(&peer_value);
    avro_value_iface_decref(peer_iface);
    avro_schema_decref(schema);
    ndt_buf_free(&m.avro);
    ndt_buf_free(&m.json);
    ndt_buf_free(&m.influx);
    free(m.json_off);
    ndt_arena_free(&arena);
    return 0;
}
