/*
 * bench_harmonize.c: CPU cost of the HDL mapping engine, samples per
 * second of one core (bench/harmonize.sh runs it).
 *
 *   bench_harmonize RULES PODS SCRAPES [engine|avro|json|influx]
 *
 * The testbed's own exposition with PODS pods is rendered for 50
 * consecutive 20 ms windows and parsed once (ingest's parser) into
 * samples; the timed loop then feeds SCRAPES scrapes, cycling through the
 * 50 with timestamps 20 ms apart (a cycle restarts the counters, which the
 * rate rules see as resets), ending a batch after each scrape with every
 * output built (points grouped, NGSI-LD fragments rendered) and handed to
 * no-op sinks.  With a format, every scrape is first encoded once by
 * ingest's own encoder (avro: one message per scrape; json, influx: one
 * message per sample, as the scraper publishes them) and the timed loop
 * decodes the messages (harmonize/decode.h) into the engine: the stage's
 * per-sample work without Kafka and the UDR.
 * Prints one line: samples, cpu seconds, samples per cpu second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/buf.h"
#include "harmonize/engine.h"
#include "harmonize/rules.h"
#include "harmonize/decode.h"
#include "ingest/expo.h"
#include "ingest/sink.h"
#include "testbed/testbed.h"

#define WINDOWS 50

typedef struct scrape {
    hdl_sample *samples;
    size_t n, cap;
    ndt_buf messages;       /* encoded, back to back */
    size_t *ends;           /* end offset of each message */
    size_t nmessages;
} scrape;

/* The samples of one scrape as ingest publishes them: __name__ first,
 * then the labels sorted, job and instance added. */
static int encode_scrape(scrape *s, hdl_format format, ingest_avro_encoder *avro, ndt_arena *arena)
{
    ingest_series *series = ndt_arena_alloc(arena, s->n * sizeof(*series));
    if (!series)
        return NDT_ERROR;
    for (size_t i = 0; i < s->n; i++) {
        const hdl_sample *h = &s->samples[i];
        ingest_label *labels = ndt_arena_alloc(arena, (h->nlabels + 3) * sizeof(*labels));
        if (!labels)
            return NDT_ERROR;
        size_t n = 0;
        labels[n++] = (ingest_label){ NDT_STR_LIT("__name__"), h->name };
        int added = 0;
        for (size_t j = 0; j <= h->nlabels; j++) {
            ndt_str inst = NDT_STR_LIT("instance"), job = NDT_STR_LIT("job");
            /* merge instance and job into the sorted labels */
            if (!(added & 1) && (j == h->nlabels || ndt_str_cmp(inst, h->labels[j].name) < 0)) {
                labels[n++] = (ingest_label){ inst, NDT_STR_LIT("127.0.0.1:9100") };
                added |= 1;
            }
            if (!(added & 2) && (added & 1) &&
                (j == h->nlabels || ndt_str_cmp(job, h->labels[j].name) < 0)) {
                labels[n++] = (ingest_label){ job, NDT_STR_LIT("testbed") };
                added |= 2;
            }
            if (j < h->nlabels)
                labels[n++] = (ingest_label){ h->labels[j].name, h->labels[j].value };
        }
        series[i] = (ingest_series){ labels, n, h->value, 1767225600000, INGEST_TYPE_UNKNOWN };
    }
    ndt_buf_init(&s->messages, 0);
    s->ends = malloc((s->n + 1) * sizeof(*s->ends));
    if (!s->ends)
        return NDT_ERROR;
    if (format == HDL_FORMAT_AVRO) {
        /* The record labels a scrape writes (schema version 3). */
        static const ingest_label common[] = {
            { NDT_STR_LIT("instance"), NDT_STR_LIT("127.0.0.1:9100") },
            { NDT_STR_LIT("job"), NDT_STR_LIT("testbed") },
        };
        ingest_batch b = { NDT_STR_LIT("testbed"), NDT_STR_LIT("127.0.0.1:9100"), 1767225600000,
                           series, s->n, common, 2 };
        if (ingest_encode_avro(avro, &b, -1, &s->messages) != NDT_OK)
            return NDT_ERROR;
        s->ends[s->nmessages++] = s->messages.len;
        return NDT_OK;
    }
    for (size_t i = 0; i < s->n; i++) {
        int rc = format == HDL_FORMAT_JSON ? ingest_encode_json(&series[i], &s->messages)
                                           : ingest_encode_influx(&series[i], &s->messages);
        if (rc == NDT_ERROR)
            return NDT_ERROR;
        if (rc == NDT_OK)
            s->ends[s->nmessages++] = s->messages.len;
    }
    return NDT_OK;
}

typedef struct feed_ctx {
    hdl_engine *engine;
    const hdl_emit *emit;
    int64_t ts;
    uint64_t samples;
} feed_ctx;

/* Decoded samples carry the encoding's timestamp: restamp them so the
 * cycled scrapes advance in time like live ones. */
static int feed_decoded(void *ctx, const hdl_sample *s)
{
    feed_ctx *f = ctx;
    hdl_sample copy = *s;
    copy.ts_ms = f->ts;
    f->samples++;
    return hdl_engine_feed(f->engine, &copy, f->emit);
}

typedef struct loader {
    scrape *s;
    ndt_arena *arena;
} loader;

static int label_cmp(const void *a, const void *b)
{
    return ndt_str_cmp(((const hdl_label *)a)->name, ((const hdl_label *)b)->name);
}

static int keep(void *ctx, const ingest_sample *is)
{
    loader *l = ctx;
    scrape *s = l->s;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 512;
        s->samples = realloc(s->samples, s->cap * sizeof(*s->samples));
        if (!s->samples)
            return NDT_ERROR;
    }
    hdl_label *labels = ndt_arena_alloc(l->arena, (is->nlabels + 1) * sizeof(*labels));
    if (!labels)
        return NDT_ERROR;
    for (size_t i = 0; i < is->nlabels; i++) {
        labels[i].name = is->labels[i].name;
        labels[i].value = is->labels[i].value;
    }
    qsort(labels, is->nlabels, sizeof(*labels), label_cmp);
    hdl_sample *out = &s->samples[s->n++];
    memset(out, 0, sizeof(*out));
    out->name = is->name;
    out->labels = labels;
    out->nlabels = is->nlabels;
    out->value = is->value;
    return NDT_OK;
}

static int no_points(void *ctx, const udr_point *p, size_t n)
{
    (void)ctx, (void)p, (void)n;
    return NDT_OK;
}
static int no_relation(void *ctx, const udr_relation *r)
{
    (void)ctx, (void)r;
    return NDT_OK;
}
typedef struct outputs {
    size_t json_bytes;
    int digest_on;
    uint64_t digest; /* FNV-1a of every fragment, in order */
} outputs;

static int no_entity(void *ctx, const char *id, const char *json, size_t len)
{
    outputs *o = ctx;
    o->json_bytes += len;
    if (o->digest_on) {
        for (const char *p = id; *p; p++)
            o->digest = (o->digest ^ (unsigned char)*p) * 1099511628211ULL;
        for (size_t i = 0; i < len; i++)
            o->digest = (o->digest ^ (unsigned char)json[i]) * 1099511628211ULL;
    }
    return NDT_OK;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: bench_harmonize RULES PODS SCRAPES [engine|avro|json|influx]\n");
        return 2;
    }
    hdl_format format = HDL_FORMAT_AUTO; /* = engine only */
    if (argc == 5 && strcmp(argv[4], "engine") != 0 &&
        (hdl_format_parse(argv[4], &format) != NDT_OK || format == HDL_FORMAT_AUTO)) {
        fprintf(stderr, "bench_harmonize: unknown mode %s\n", argv[4]);
        return 2;
    }
    char err[NDT_ERRBUF_SIZE];
    hdl_rules rules;
    if (hdl_rules_load_file(&rules, argv[1], err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    testbed_params p;
    testbed_params_default(&p);
    p.pods = atoi(argv[2]);
    p.users = 100 * p.pods;
    long scrapes = atol(argv[3]);
    testbed_sim *sim;
    if (testbed_sim_create(&p, &sim, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    static ndt_buf text[WINDOWS];
    scrape windows[WINDOWS];
    ndt_arena arena;
    ndt_arena_init(&arena, 1 << 20, 0);
    memset(windows, 0, sizeof(windows));
    for (int w = 0; w < WINDOWS; w++) {
        ndt_buf_init(&text[w], 0);
        testbed_sim_advance(sim, 30.0 + 0.02 * w);
        ingest_expo_error perr;
        loader l = { &windows[w], &arena };
        if (testbed_expo_render(sim, &text[w]) != NDT_OK ||
            ingest_expo_parse(text[w].data, text[w].len, INGEST_EXPO_TEXT, &arena, keep, &l,
                              &perr) != NDT_OK) {
            fprintf(stderr, "exposition: %u:%u: %s\n", perr.line, perr.col, perr.reason);
            return 1;
        }
    }
    ingest_avro_encoder *avro = NULL;
    if (format == HDL_FORMAT_AVRO && ingest_avro_encoder_new(&avro, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (int w = 0; format != HDL_FORMAT_AUTO && w < WINDOWS; w++)
        if (encode_scrape(&windows[w], format, avro, &arena) != NDT_OK) {
            fprintf(stderr, "encoding failed\n");
            return 1;
        }
    hdl_engine *engine;
    if (hdl_engine_new(&rules, NULL, &engine, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* BENCH_DIGEST=1: a digest of every fragment (every attribute value
     * and id), to show that two builds map the same input to the same
     * output; off by default, as it costs time inside the measurement. */
    outputs out = { 0, getenv("BENCH_DIGEST") != NULL, 14695981039346656037ULL };
    hdl_emit emit = { &out, no_points, no_relation, no_entity };
    hdl_engine_start(engine, 0, &emit);
    uint64_t samples = 0;
    double t0 = cpu_seconds();
    feed_ctx fc = { engine, &emit, 0, 0 };
    for (long k = 0; k < scrapes; k++) {
        scrape *s = &windows[k % WINDOWS];
        int64_t ts = 1767225600000 + k * 20;
        if (format == HDL_FORMAT_AUTO) {
            for (size_t i = 0; i < s->n; i++) {
                s->samples[i].ts_ms = ts;
                hdl_engine_feed(engine, &s->samples[i], &emit);
            }
            samples += s->n;
        } else {
            fc.ts = ts;
            size_t start = 0;
            for (size_t m = 0; m < s->nmessages; m++) {
                if (hdl_decode(format, s->messages.data + start, s->ends[m] - start, feed_decoded,
                               &fc, err, sizeof(err)) != NDT_OK) {
                    fprintf(stderr, "decode: %s\n", err);
                    return 1;
                }
                start = s->ends[m];
            }
        }
        hdl_engine_finish(engine, ts, &emit);
    }
    samples += fc.samples;
    double cpu = cpu_seconds() - t0;
    hdl_engine_stats st;
    hdl_engine_get_stats(engine, &st);
    printf("samples=%llu per_scrape=%zu cpu_s=%.3f samples_per_s=%.0f points=%llu fragments=%llu "
           "json_bytes=%zu unmapped=%llu digest=%016llx\n",
           (unsigned long long)samples, windows[0].n, cpu, (double)samples / cpu,
           (unsigned long long)st.points, (unsigned long long)st.fragments, out.json_bytes,
           (unsigned long long)st.samples_unmapped, (unsigned long long)out.digest);
    hdl_engine_destroy(engine);
    hdl_rules_free(&rules);
    for (int w = 0; w < WINDOWS; w++) {
        free(windows[w].samples);
        free(windows[w].ends);
        ndt_buf_free(&windows[w].messages);
        ndt_buf_free(&text[w]);
    }
    ndt_arena_free(&arena);
    testbed_sim_destroy(sim);
    if (avro)
        ingest_avro_encoder_free(avro);
    return 0;
}
