/*
 * fuzz_remote_write.c: libFuzzer target for the remote-write decoder,
 * differential against protobuf-c.
 *
 * The first input byte picks what the rest is: odd, a request body as it
 * arrives (snappy-compressed); even, a protobuf WriteRequest that the
 * target compresses first, so that the fuzzer reaches the wire decoding.
 * For the latter, protobuf-c's generated unpacker is the reference: when it
 * accepts the bytes, ndtpipe's decoder must accept them too and produce
 * the same series (same labels in ingest's order, values bit for bit,
 * timestamps).  protobuf-c validates the inside of fields ndtpipe only
 * skips (exemplars, histograms, metadata), so ndtpipe may accept what it
 * rejects, never the other way round.
 *
 * fuzz-sources: common/arena.c ingest/remote_write.c GEN/ingest/remote.pb-c.c
 * fuzz-libs: -lprotobuf-c -lsnappy
 * fuzz-seeds: none
 */
#include <snappy-c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "ingest/remote.pb-c.h"
#include "ingest/remote_write.h"

static int str_cmp(ndt_str a, ndt_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* ndtpipe's labels of a series as the reference computes them from
 * protobuf-c's message: __name__ first, empty values dropped, the rest
 * stably sorted by name.  protobuf-c hands C strings, so the decoder's
 * views are compared up to their first NUL. */
static ndt_str upto_nul(ndt_str s)
{
    const char *nul = memchr(s.ptr, '\0', s.len);
    if (nul)
        s.len = (size_t)(nul - s.ptr);
    return s;
}

static void compare_series(const NdtPrompb__TimeSeries *ts, const ingest_series *s)
{
    ingest_label want[1024];
    size_t n = 1;
    int named = 0;
    if (ts->n_labels + 1 > 1024)
        return;
    for (size_t i = 0; i < ts->n_labels; i++) {
        ndt_str name = ndt_str_from_cstr(ts->labels[i]->name);
        ndt_str value = ndt_str_from_cstr(ts->labels[i]->value);
        if (ndt_str_eq_cstr(name, "__name__")) {
            want[0].name = name;
            want[0].value = value;
            named = value.len > 0;
            continue;
        }
        if (!value.len)
            continue;
        size_t j = n++;
        while (j > 1 && str_cmp(want[j - 1].name, name) > 0) {
            want[j] = want[j - 1];
            j--;
        }
        want[j].name = name;
        want[j].value = value;
    }
    if (!named)
        abort(); /* the caller only compares named series */
    if (s->nlabels != n)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (!ndt_str_eq(upto_nul(s->labels[i].name), want[i].name) ||
            !ndt_str_eq(upto_nul(s->labels[i].value), want[i].value))
            abort();
    }
}

/* ndtpipe refuses labels holding NUL; protobuf-c hands them over as C
 * strings cut at the NUL, so there is nothing to compare. */
static void differential(const uint8_t *raw, size_t raw_len, const ingest_rw_request *rw, int ok,
                         const char *err)
{
    if (!ok && strstr(err, "NUL"))
        return;
    NdtPrompb__WriteRequest *req = ndt_prompb__write_request__unpack(NULL, raw_len, raw);
    if (!req)
        return; /* the reference rejects: ndtpipe may accept (it skips more) */
    if (!ok)
        abort(); /* the reference accepts what ndtpipe rejects */
    size_t k = 0;
    for (size_t i = 0; i < req->n_timeseries; i++) {
        const NdtPrompb__TimeSeries *ts = req->timeseries[i];
        int named = 0; /* the last __name__ counts */
        for (size_t l = 0; l < ts->n_labels; l++)
            if (!strcmp(ts->labels[l]->name, "__name__"))
                named = ts->labels[l]->value[0] != '\0';
        if (!named)
            continue;
        for (size_t j = 0; j < ts->n_samples; j++, k++) {
            if (k >= rw->nseries)
                abort();
            compare_series(ts, &rw->series[k]);
            if (memcmp(&rw->series[k].value, &ts->samples[j]->value, sizeof(double)) != 0 ||
                rw->series[k].timestamp_ms != ts->samples[j]->timestamp)
                abort();
        }
    }
    if (k != rw->nseries || req->n_timeseries != rw->ntimeseries)
        abort();
    ndt_prompb__write_request__free_unpacked(req, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ndt_arena arena;
    ndt_arena_init(&arena, 1 << 16, 64 << 20);
    ingest_rw_request rw;
    char err[256];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char *packed = NULL;
    int raw_mode = !(data[0] & 1);
    if (raw_mode) {
        size_t cap = snappy_max_compressed_length(len);
        packed = malloc(cap ? cap : 1);
        if (!packed || snappy_compress(body, len, packed, &cap) != SNAPPY_OK) {
            free(packed);
            ndt_arena_free(&arena);
            return 0;
        }
        body = packed;
        len = cap;
    }
    int ok = ingest_rw_decode(body, len, 16 << 20, &arena, &rw, err, sizeof(err)) == NDT_OK;
    if (raw_mode)
        differential(data + 1, size - 1, &rw, ok, err);
    free(packed);
    ndt_arena_free(&arena);
    return 0;
}
