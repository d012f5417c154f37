/*
 * fuzz_remote_write.c: libFuzzer target for the remote-write decoder.
 * The first input byte picks what the rest is: odd, a request body as it
 * arrives (snappy-compressed); even, a protobuf WriteRequest that the
 * target compresses first, so that the fuzzer reaches protobuf decoding
 * and label layout instead of stopping at snappy's checks.  Checks, beyond
 * the sanitizers, that decoded series have __name__ first and the other
 * labels strictly sorted.
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
#include "ingest/remote_write.h"

static void check_layout(const ingest_rw_request *rw)
{
    for (size_t i = 0; i < rw->nseries; i++) {
        const ingest_series *s = &rw->series[i];
        if (!s->nlabels || !ndt_str_eq_cstr(s->labels[0].name, "__name__"))
            abort();
        for (size_t k = 2; k < s->nlabels; k++) {
            ndt_str a = s->labels[k - 1].name, b = s->labels[k].name;
            size_t n = a.len < b.len ? a.len : b.len;
            int c = memcmp(a.ptr, b.ptr, n);
            if (c > 0 || (c == 0 && a.len > b.len))
                abort();
        }
    }
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
    if (!(data[0] & 1)) {
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
    if (ingest_rw_decode(body, len, 16 << 20, &arena, &rw, err, sizeof(err)) == NDT_OK)
        check_layout(&rw);
    free(packed);
    ndt_arena_free(&arena);
    return 0;
}
