/*
 * bench_remote_write.c: the receiver's per-request CPU outside HTTP and
 * Kafka: snappy, the wire decoding (ingest/remote_write.c) and the Avro
 * encoding of the request, grouped by instance as receive.c publishes it.
 *
 *   bench_remote_write BODY [ROUNDS]
 *
 * BODY is a request as Prometheus sends it (snappy-compressed
 * WriteRequest); bench/data/remote-write-node.snappy is one that Debian's
 * Prometheus 2.42 sent while remote-writing 10 node-exporter pages (500
 * samples, the bench/receive.sh stream).  Wall time on the shared machine
 * is noisy, so compare versions by instructions:
 *   valgrind --tool=callgrind build/bench/bench_remote_write BODY 200
 * and divide Ir by ROUNDS x samples.
 *
 * Output: `samples=... rounds=... ns_per_sample_decode=... ns_per_sample_encode=...`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/file.h"
#include "ingest/remote_write.h"
#include "ingest/sink.h"

/* The whole file, or NULL (the reason on stderr). */
static char *read_file(const char *path, size_t *len)
{
    char err[NDT_ERRBUF_SIZE], *data;
    if (ndt_file_read(path, (size_t)1 << 30, &data, len, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    return data;
}

static ndt_str instance_of(const ingest_series *s)
{
    for (size_t i = 1; i < s->nlabels; i++)
        if (ndt_str_eq_cstr(s->labels[i].name, "instance"))
            return s->labels[i].value;
    return (ndt_str){ "", 0 };
}

/* One Avro record per run of series of the same instance: the encoder's
 * share of the work, without receive.c's grouping (static there). */
static size_t encode_request(ingest_avro_encoder *enc, const ingest_rw_request *rw, ndt_buf *out)
{
    size_t bytes = 0;
    for (size_t start = 0; start < rw->nseries;) {
        ndt_str inst = instance_of(&rw->series[start]);
        size_t end = start + 1;
        while (end < rw->nseries && ndt_str_eq(instance_of(&rw->series[end]), inst))
            end++;
        ingest_batch batch = { .job = { "node", 4 }, .instance = inst,
                               .scrape_timestamp_ms = rw->series[start].timestamp_ms,
                               .series = &rw->series[start], .nseries = end - start };
        ndt_buf_reset(out);
        if (ingest_encode_avro(enc, &batch, -1, out) != NDT_OK)
            return 0;
        bytes += out->len;
        start = end;
    }
    return bytes;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_remote_write BODY [ROUNDS]\n");
        return 2;
    }
    long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 2000;
    size_t len;
    char *body = read_file(argv[1], &len);
    if (!body) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    char err[256];
    ndt_arena arena;
    ndt_arena_init(&arena, 4u << 20, 256u << 20);
    ingest_avro_encoder *enc;
    if (ingest_avro_encoder_new(&enc, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    ndt_buf out;
    ndt_buf_init(&out, 64u << 20);
    ingest_rw_request rw;
    size_t samples = 0;
    double decode_s = 0, encode_s = 0;
    for (long r = 0; r < rounds; r++) {
        double t0 = ndt_clock_mono_s();
        if (ingest_rw_decode(body, len, 64u << 20, &arena, &rw, err, sizeof(err)) != NDT_OK) {
            fprintf(stderr, "%s: %s\n", argv[1], err);
            return 1;
        }
        double t1 = ndt_clock_mono_s();
        if (!encode_request(enc, &rw, &out)) {
            fprintf(stderr, "encoding failed\n");
            return 1;
        }
        encode_s += ndt_clock_mono_s() - t1;
        decode_s += t1 - t0;
        samples = rw.nseries;
        ndt_arena_reset(&arena);
    }
    double total = (double)samples * (double)rounds;
    printf("samples=%zu rounds=%ld ns_per_sample_decode=%.1f ns_per_sample_encode=%.1f\n", samples,
           rounds, 1e9 * decode_s / total, 1e9 * encode_s / total);
    ndt_buf_free(&out);
    ingest_avro_encoder_free(enc);
    ndt_arena_free(&arena);
    free(body);
    return 0;
}
