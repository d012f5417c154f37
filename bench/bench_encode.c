/*
 * bench_encode.c: encode throughput of the three Kafka payload formats,
 * and of the whole sink against the in-process mock broker.
 *
 *   bench_encode EXPOSITION [SECONDS]
 *
 * The batch comes from a real exposition (node_exporter's e2e output by
 * default, see bench/encode.sh).  The exposition parser lives elsewhere
 * (ingest/expo.h); this reader understands only the simple subset the
 * fixture uses (name{k="v",...} value, escapes in values) and is good
 * enough to give the encoders realistic names, label sets and values.
 *
 * It also encodes the same batch with Avro C's generic value API, the
 * alternative to encode_avro.c's hand-written encoder, so the reason for
 * that choice stays measurable.
 *
 * Output: one line per measurement, `format=... samples_per_sec=...
 * bytes_per_sample=...`, for docs/PERFORMANCE.md.
 */
#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/kafka.h"
#include "ingest/sink.h"

#define BENCH_MAX_SERIES 20000
#define BENCH_MAX_LABELS 16

/* The target's labels, on every series and once in the Avro record. */
static const ingest_label bench_common[] = {
    { NDT_STR_LIT("instance"), NDT_STR_LIT("node-1.example:9100") },
    { NDT_STR_LIT("job"), NDT_STR_LIT("node") },
};

typedef struct bench_data {
    char *text;
    ingest_label labels[BENCH_MAX_SERIES][BENCH_MAX_LABELS];
    ingest_series series[BENCH_MAX_SERIES];
    ingest_batch batch;
} bench_data;

static int label_cmp(const void *a, const void *b)
{
    const ingest_label *x = a, *y = b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = memcmp(x->name.ptr, y->name.ptr, n);
    return c ? c : (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

/* Parses `name{k="v",...} value` lines in place (values unescaped by
 * compacting the text); returns the number of series. */
static size_t bench_parse(bench_data *d)
{
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(d->text, "\n", &save); line && n < BENCH_MAX_SERIES;
         line = strtok_r(NULL, "\n", &save)) {
        if (*line == '#' || *line == '\0')
            continue;
        ingest_label *l = d->labels[n];
        size_t nl = 0;
        char *p = line;
        while (*p && *p != '{' && *p != ' ')
            p++;
        l[nl++] = (ingest_label){ NDT_STR_LIT("__name__"), { line, (size_t)(p - line) } };
        l[nl++] = bench_common[0]; /* the same strings, as a scrape's series share them */
        l[nl++] = bench_common[1];
        if (*p == '{') {
            p++;
            while (*p && *p != '}' && nl < BENCH_MAX_LABELS) {
                char *k = p;
                while (*p && *p != '=')
                    p++;
                size_t klen = (size_t)(p - k);
                p += 2; /* =" */
                char *v = p, *w = p;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1]) {
                        p++;
                        *w++ = *p == 'n' ? '\n' : *p;
                        p++;
                        continue;
                    }
                    *w++ = *p++;
                }
                l[nl++] = (ingest_label){ { k, klen }, { v, (size_t)(w - v) } };
                p++; /* closing quote */
                if (*p == ',')
                    p++;
            }
            p++; /* } */
        }
        qsort(l + 1, nl - 1, sizeof(*l), label_cmp);
        d->series[n] = (ingest_series){ l, nl, strtod(p, NULL), 1767323045678LL,
                                        INGEST_TYPE_GAUGE };
        n++;
    }
    return n;
}

typedef int (*bench_fn)(bench_data *d, ndt_buf *out, void *ctx);

static int run_json(bench_data *d, ndt_buf *out, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < d->batch.nseries; i++) {
        ndt_buf_reset(out);
        if (ingest_encode_json(&d->series[i], out) != NDT_OK)
            return -1;
    }
    return 0;
}

static int run_influx(bench_data *d, ndt_buf *out, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < d->batch.nseries; i++) {
        ndt_buf_reset(out);
        if (ingest_encode_influx(&d->series[i], out) == NDT_ERROR)
            return -1;
    }
    return 0;
}

static int run_avro(bench_data *d, ndt_buf *out, void *ctx)
{
    ndt_buf_reset(out);
    return ingest_encode_avro(ctx, &d->batch, -1, out) == NDT_OK ? 0 : -1;
}

/* The same record through Avro C's generic value API. */
typedef struct avro_c_ctx {
    avro_value_iface_t *iface;
    avro_value_t value;
    avro_writer_t writer;
    char *mem;
    size_t memsize;
} avro_c_ctx;

static int run_avro_c(bench_data *d, ndt_buf *out, void *arg)
{
    avro_c_ctx *c = arg;
    avro_value_t *rec = &c->value, f, samples, s, labels, l, x;
    avro_value_reset(rec);
    avro_value_get_by_index(rec, 0, &f, NULL);
    avro_value_set_string_len(&f, d->batch.job.ptr, d->batch.job.len + 1);
    avro_value_get_by_index(rec, 1, &f, NULL);
    avro_value_set_string_len(&f, d->batch.instance.ptr, d->batch.instance.len + 1);
    avro_value_get_by_index(rec, 2, &f, NULL);
    avro_value_set_long(&f, d->batch.scrape_timestamp_ms);
    /* Record labels, written once; a sample leaves out the ones it
     * shares (compared by content, as a caller of Avro C must). */
    avro_value_get_by_index(rec, 3, &labels, NULL);
    for (size_t j = 0; j < d->batch.ncommon; j++) {
        avro_value_append(&labels, &l, NULL);
        avro_value_get_by_index(&l, 0, &x, NULL);
        avro_value_set_string_len(&x, d->batch.common[j].name.ptr, d->batch.common[j].name.len + 1);
        avro_value_get_by_index(&l, 1, &x, NULL);
        avro_value_set_string_len(&x, d->batch.common[j].value.ptr,
                                  d->batch.common[j].value.len + 1);
    }
    avro_value_get_by_index(rec, 4, &samples, NULL);
    char tmp[512];
    for (size_t i = 0; i < d->batch.nseries; i++) {
        const ingest_series *se = &d->series[i];
        avro_value_append(&samples, &s, NULL);
        avro_value_get_by_index(&s, 0, &x, NULL);
        /* Avro C wants NUL-terminated strings: copy, as a caller must. */
        snprintf(tmp, sizeof(tmp), "%.*s", (int)se->labels[0].value.len, se->labels[0].value.ptr);
        avro_value_set_string(&x, tmp);
        avro_value_get_by_index(&s, 1, &labels, NULL);
        for (size_t j = 1; j < se->nlabels; j++) {
            int shared = 0;
            for (size_t k = 0; k < d->batch.ncommon; k++)
                shared |= ndt_str_eq(se->labels[j].name, d->batch.common[k].name) &&
                          ndt_str_eq(se->labels[j].value, d->batch.common[k].value);
            if (shared)
                continue;
            avro_value_append(&labels, &l, NULL);
            avro_value_get_by_index(&l, 0, &x, NULL);
            snprintf(tmp, sizeof(tmp), "%.*s", (int)se->labels[j].name.len, se->labels[j].name.ptr);
            avro_value_set_string(&x, tmp);
            avro_value_get_by_index(&l, 1, &x, NULL);
            snprintf(tmp, sizeof(tmp), "%.*s", (int)se->labels[j].value.len,
                     se->labels[j].value.ptr);
            avro_value_set_string(&x, tmp);
        }
        avro_value_get_by_index(&s, 2, &x, NULL);
        avro_value_set_double(&x, se->value);
        avro_value_t ts;
        avro_value_get_by_index(&s, 3, &x, NULL);
        if (se->timestamp_ms == d->batch.scrape_timestamp_ms) {
            avro_value_set_branch(&x, 0, &ts);
            avro_value_set_null(&ts);
        } else {
            avro_value_set_branch(&x, 1, &ts);
            avro_value_set_long(&ts, se->timestamp_ms);
        }
        avro_value_get_by_index(&s, 4, &x, NULL);
        avro_value_set_enum(&x, (int)se->type);
        avro_value_get_by_index(&s, 5, &x, NULL); /* native_histogram: null */
        avro_value_set_branch(&x, 0, &ts);
        avro_value_set_null(&ts);
    }
    avro_writer_reset(c->writer);
    if (avro_value_write(c->writer, rec) != 0) {
        fprintf(stderr, "avro-c: %s\n", avro_strerror());
        return -1;
    }
    out->len = (size_t)avro_writer_tell(c->writer);
    return 0;
}

static void bench_one(const char *name, bench_fn fn, bench_data *d, void *ctx, double seconds,
                      size_t *bytes_out)
{
    ndt_buf out;
    ndt_buf_init(&out, 0);
    size_t rounds = 0, bytes = 0;
    double t0 = ndt_clock_mono_s(), t;
    do {
        if (fn(d, &out, ctx) != 0) {
            fprintf(stderr, "%s: encode failed\n", name);
            exit(1);
        }
        rounds++;
        t = ndt_clock_mono_s();
    } while (t - t0 < seconds);
    /* Bytes of one whole batch, measured separately from the timing loop. */
    if (fn == run_json || fn == run_influx) {
        for (size_t i = 0; i < d->batch.nseries; i++) {
            ndt_buf_reset(&out);
            if (fn == run_json)
                ingest_encode_json(&d->series[i], &out);
            else
                ingest_encode_influx(&d->series[i], &out);
            bytes += out.len;
        }
    } else {
        bytes = out.len;
    }
    double rate = (double)(rounds * d->batch.nseries) / (t - t0);
    printf("format=%-8s samples_per_sec=%.0f ns_per_sample=%.1f bytes_per_sample=%.1f "
           "batch_us=%.1f\n",
           name, rate, 1e9 / rate, (double)bytes / d->batch.nseries,
           1e6 * (t - t0) / (double)rounds);
    if (bytes_out)
        *bytes_out = bytes;
    ndt_buf_free(&out);
}

/* The whole sink (encode + produce + delivery) into the in-process mock. */
static void bench_sink(bench_data *d, ingest_format format, double seconds)
{
    char err[NDT_ERRBUF_SIZE];
    ndt_broker *broker;
    if (ndt_broker_start(1, &broker, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    ingest_sink_config cfg = { .brokers = ndt_broker_bootstraps(broker),
                               .topic = "bench",
                               .format = format,
                               .schema_id = -1 };
    ingest_sink *sink;
    if (ingest_sink_new(&cfg, &sink, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    double t0 = ndt_clock_mono_s(), t;
    size_t rounds = 0;
    do {
        ingest_sink_publish(sink, &d->batch);
        rounds++;
        t = ndt_clock_mono_s();
    } while (t - t0 < seconds);
    ingest_sink_flush(sink, 60000);
    t = ndt_clock_mono_s();
    ingest_sink_stats st;
    ingest_sink_get_stats(sink, &st);
    printf("sink=%-8s samples_per_sec=%.0f messages=%llu delivered=%llu queue_full_waits=%llu\n",
           ingest_format_name(format), (double)(rounds * d->batch.nseries) / (t - t0),
           (unsigned long long)st.messages, (unsigned long long)st.delivered,
           (unsigned long long)st.queue_full_waits);
    ingest_sink_destroy(sink);
    ndt_broker_stop(broker);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_encode EXPOSITION [SECONDS]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    static bench_data d;
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    d.text = calloc(1, (size_t)size + 1);
    if (fread(d.text, 1, (size_t)size, f) != (size_t)size)
        return 1;
    fclose(f);
    d.batch = (ingest_batch){ NDT_STR_LIT("node"), NDT_STR_LIT("node-1.example:9100"),
                              1767323045678LL, d.series, bench_parse(&d), bench_common,
                              NDT_ARRAY_LEN(bench_common) };
    printf("batch: %zu series from %s\n", d.batch.nseries, argv[1]);

    char err[NDT_ERRBUF_SIZE];
    ingest_avro_encoder *enc;
    if (ingest_avro_encoder_new(&enc, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    avro_schema_t schema;
    avro_schema_from_json_length(ingest_avro_schema_text(), strlen(ingest_avro_schema_text()),
                                 &schema);
    avro_c_ctx c = { .iface = avro_generic_class_from_schema(schema), .memsize = 64 << 20 };
    avro_generic_value_new(c.iface, &c.value);
    c.mem = malloc(c.memsize);
    c.writer = avro_writer_memory(c.mem, (int64_t)c.memsize);

    bench_one("json", run_json, &d, NULL, seconds, NULL);
    bench_one("influx", run_influx, &d, NULL, seconds, NULL);
    bench_one("avro", run_avro, &d, enc, seconds, NULL);
    bench_one("avro-c", run_avro_c, &d, &c, seconds, NULL);
    if (!getenv("BENCH_NO_SINK")) {
        bench_sink(&d, INGEST_FORMAT_AVRO, seconds);
        bench_sink(&d, INGEST_FORMAT_JSON, seconds);
        bench_sink(&d, INGEST_FORMAT_INFLUX, seconds);
    }

    avro_writer_free(c.writer);
    free(c.mem);
    avro_value_decref(&c.value);
    avro_value_iface_decref(c.iface);
    avro_schema_decref(schema);
    ingest_avro_encoder_free(enc);
    free(d.text);
    return 0;
}
