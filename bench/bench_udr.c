/*
 * bench_udr.c: UDR write throughput through the library, one thread.
 *
 *   bench_udr URL POINTS FLUSH_EVERY [SPOOL_DIR]
 *
 * Writes POINTS points of six pods (five numeric attributes each, one
 * instant every 20 ms per pod, as the testbed produces them) with a
 * udr_flush() every FLUSH_EVERY points (what harmonize does per consumed
 * batch), then prints "points=N seconds=S points_per_s=R".  With
 * BENCH_PIPELINE=1 the flushes are udr_flush_start() and the previous
 * ticket is awaited only at the next one (the input behind it could be
 * committed then), so encoding overlaps the request in flight.
 * bench/udr.sh runs it against SQLite and a live influxd, next to a plain
 * bulk writer (curl) on the same influxd.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/clock.h"
#include "udr/udr.h"

#define BENCH_BATCH 1000

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_udr URL POINTS FLUSH_EVERY [SPOOL_DIR]\n");
        return 2;
    }
    long total = atol(argv[2]), flush_every = atol(argv[3]), since_flush = 0;
    udr_options o = { .spool_dir = argc > 4 ? argv[4] : NULL,
                      .gzip_level = getenv("BENCH_GZIP") ? atoi(getenv("BENCH_GZIP")) : 0 };
    int pipeline = getenv("BENCH_PIPELINE") && atoi(getenv("BENCH_PIPELINE"));
    uint64_t ticket = 0, previous = 0;
    char err[NDT_ERRBUF_SIZE];
    udr *u;
    if (udr_open(&u, argv[1], &o, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "bench_udr: %s\n", err);
        return 1;
    }
    static char ids[6][64];
    for (int p = 0; p < 6; p++)
        snprintf(ids[p], sizeof(ids[p]), "urn:ngsi-ld:ServiceComponent:ndt.pod-%d", p);
    udr_field fields[BENCH_BATCH][5];
    udr_point points[BENCH_BATCH];
    double start = ndt_clock_mono_s();
    for (long i = 0; i < total;) {
        size_t n = 0;
        for (; n < BENCH_BATCH && i < total; n++, i++) {
            udr_field *f = fields[n];
            f[0] = (udr_field){ .name = "queueDepth", .number = (double)(i % 17) };
            f[1] = (udr_field){ .name = "avgDepthOnEnqueue", .number = (double)(i % 13) + 0.25 };
            f[2] = (udr_field){ .name = "processCpuUsage", .number = (double)(i % 300) + 0.5 };
            f[3] = (udr_field){ .name = "systemCpuUsage", .number = (double)(i % 100) };
            f[4] = (udr_field){ .name = "avgInferenceTime", .number = (double)(i % 900) + 0.125 };
            points[n] = (udr_point){ .type = "ServiceComponent", .id = ids[i % 6],
                                     .ts_ms = 1767225600000 + (i / 6) * 20, .fields = f,
                                     .nfields = 5 };
        }
        since_flush += (long)n;
        int flush = since_flush >= flush_every || i == total;
        if (flush)
            since_flush = 0;
        int rc = udr_write_points(u, points, n, err, sizeof(err));
        if (rc == NDT_OK && flush && pipeline) {
            rc = udr_flush_done(u, previous, 1, err, sizeof(err));
            if (rc == NDT_OK)
                rc = udr_flush_start(u, &ticket, err, sizeof(err));
            previous = ticket;
            if (rc == NDT_OK && i == total)
                rc = udr_flush(u, err, sizeof(err));
        } else if (rc == NDT_OK && flush) {
            rc = udr_flush(u, err, sizeof(err));
        }
        if (rc != NDT_OK) {
            fprintf(stderr, "bench_udr: %s\n", err);
            udr_close(u);
            return 1;
        }
    }
    double secs = ndt_clock_mono_s() - start;
    udr_stats s;
    udr_get_stats(u, &s);
    udr_close(u);
    printf("points=%ld seconds=%.3f points_per_s=%.0f sent=%" PRIu64 " spooled=%" PRIu64 "\n",
           total, secs, (double)total / secs, s.points_sent, s.points_spooled);
    return 0;
}
