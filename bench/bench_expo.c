/*
 * bench_expo.c: parse throughput of ingest_expo_parse on one core.
 *
 *   bench_expo [--openmetrics] [--seconds S | --rounds N] FILE
 *
 * Loads FILE once and parses it again and again for about S seconds (a
 * scraper parses the same-sized body every 20 ms, so the input is warm in
 * cache like a freshly received HTTP body).  Each round resets the arena,
 * as the scraper does after publishing a batch; the callback touches every
 * sample (sums the values) so the work cannot be optimised away.  Prints
 * one line: bytes, samples, rounds, MB/s (10^6 bytes), samples/s.
 * --rounds N parses exactly N times (for instruction counts under
 * valgrind --tool=callgrind, which stay comparable on a busy machine).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/clock.h"
#include "common/file.h"
#include "ingest/expo.h"

typedef struct bench_ctx {
    size_t samples;
    size_t labels;
    double sum;
} bench_ctx;

static int bench_on_sample(void *ctx, const ingest_sample *s)
{
    bench_ctx *c = ctx;
    c->samples++;
    c->labels += s->nlabels;
    c->sum += s->value;
    return NDT_OK;
}

/* The whole file, or NULL (the reason on stderr). */
static char *bench_load(const char *path, size_t *len)
{
    char err[NDT_ERRBUF_SIZE], *data;
    if (ndt_file_read(path, (size_t)1 << 30, &data, len, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    return data;
}

int main(int argc, char **argv)
{
    ingest_expo_format format = INGEST_EXPO_TEXT;
    double seconds = 3.0;
    long max_rounds = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--openmetrics") == 0)
            format = INGEST_EXPO_OPENMETRICS;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            max_rounds = atol(argv[++i]);
        else
            path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: bench_expo [--openmetrics] [--seconds S | --rounds N] FILE\n");
        return 2;
    }
    size_t len;
    char *data = bench_load(path, &len);
    if (!data) {
        fprintf(stderr, "bench_expo: cannot read %s\n", path);
        return 1;
    }
    ndt_arena arena;
    ndt_arena_init(&arena, 1 << 20, 0);
    bench_ctx ctx = { 0 };
    ingest_expo_error err;
    size_t rounds = 0;
    double start = ndt_clock_mono_s(), elapsed;
    do {
        for (int k = 0; k < 16 && (!max_rounds || (long)rounds < max_rounds); k++, rounds++) {
            if (ingest_expo_parse(data, len, format, &arena, bench_on_sample, &ctx, &err) !=
                NDT_OK) {
                fprintf(stderr, "bench_expo: %s:%u:%u: %s\n", path, err.line, err.col, err.reason);
                return 1;
            }
            ndt_arena_reset(&arena);
        }
        elapsed = ndt_clock_mono_s() - start;
    } while (max_rounds ? (long)rounds < max_rounds : elapsed < seconds);
    double bytes = (double)len * (double)rounds;
    printf("bytes=%zu samples=%zu rounds=%zu seconds=%.3f MB/s=%.0f samples/s=%.0f\n", len,
           ctx.samples / rounds, rounds, elapsed, bytes / elapsed / 1e6,
           (double)ctx.samples / elapsed);
    ndt_arena_free(&arena);
    free(data);
    return ctx.sum == 12345.678 ? 3 : 0; /* keeps the sum alive */
}
