/*
 * bench_harmonize.c: CPU cost of the HDL mapping engine, samples per
 * second of one core (bench/harmonize.sh runs it).
 *
 *   bench_harmonize RULES PODS SCRAPES
 *
 * The testbed's own exposition with PODS pods is rendered for 50
 * consecutive 20 ms windows and parsed once (ingest's parser) into
 * samples; the timed loop then feeds SCRAPES scrapes, cycling through the
 * 50 with timestamps 20 ms apart (a cycle restarts the counters, which the
 * rate rules see as resets), ending a batch after each scrape with every
 * output built (points grouped, NGSI-LD fragments rendered) and handed to
 * no-op sinks.  Decoding Kafka messages and the UDR are not in the loop.
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
#include "ingest/expo.h"
#include "testbed/testbed.h"

#define WINDOWS 50

typedef struct scrape {
    hdl_sample *samples;
    size_t n, cap;
} scrape;

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
static int no_entity(void *ctx, const char *id, const char *json, size_t len)
{
    (void)id, (void)json;
    *(size_t *)ctx += len;
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
    if (argc != 4) {
        fprintf(stderr, "usage: bench_harmonize RULES PODS SCRAPES\n");
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
    hdl_engine *engine;
    if (hdl_engine_new(&rules, NULL, &engine, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    size_t json_bytes = 0;
    hdl_emit emit = { &json_bytes, no_points, no_relation, no_entity };
    hdl_engine_start(engine, 0, &emit);
    uint64_t samples = 0;
    double t0 = cpu_seconds();
    for (long k = 0; k < scrapes; k++) {
        scrape *s = &windows[k % WINDOWS];
        int64_t ts = 1767225600000 + k * 20;
        for (size_t i = 0; i < s->n; i++) {
            s->samples[i].ts_ms = ts;
            hdl_engine_feed(engine, &s->samples[i], &emit);
        }
        samples += s->n;
        hdl_engine_finish(engine, ts, &emit);
    }
    double cpu = cpu_seconds() - t0;
    hdl_engine_stats st;
    hdl_engine_get_stats(engine, &st);
    printf("samples=%llu per_scrape=%zu cpu_s=%.3f samples_per_s=%.0f points=%llu fragments=%llu "
           "json_bytes=%zu unmapped=%llu\n",
           (unsigned long long)samples, windows[0].n, cpu, (double)samples / cpu,
           (unsigned long long)st.points, (unsigned long long)st.fragments, json_bytes,
           (unsigned long long)st.samples_unmapped);
    hdl_engine_destroy(engine);
    hdl_rules_free(&rules);
    for (int w = 0; w < WINDOWS; w++) {
        free(windows[w].samples);
        ndt_buf_free(&text[w]);
    }
    ndt_arena_free(&arena);
    testbed_sim_destroy(sim);
    return 0;
}
