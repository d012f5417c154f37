/*
 * fuzz_expo_common.h: the body shared by the exposition fuzz targets.
 *
 * Parses the input with a capped arena and checks what must hold for any
 * input: the parse ends with a status (no crash, no sanitizer report), an
 * error has a 1-based position and a reason, and every sample handed out
 * is well formed (valid names, readable labels: the callback reads every
 * byte so ASan sees any pointer outside the input or the arena), and a
 * successful text parse yields exactly one sample per sample line (the
 * protobuf format has no lines: its errors name a byte offset instead).
 */
#ifndef FUZZ_EXPO_COMMON_H
#define FUZZ_EXPO_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "ingest/expo.h"

static int fuzz_name_ok(ndt_str s, int metric)
{
    if (s.len == 0)
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (metric && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

typedef struct fuzz_ctx {
    unsigned sum;
    size_t samples;
} fuzz_ctx;

/* Lines whose first non-blank byte is not '#' (blank lines excluded). */
static size_t fuzz_sample_lines(const char *buf, size_t size)
{
    size_t n = 0;
    const char *s = buf, *end = buf + size;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        n += s < e && *s != '#';
        s = nl ? nl + 1 : end;
    }
    return n;
}

static int fuzz_on_sample(void *arg, const ingest_sample *s)
{
    fuzz_ctx *ctx = arg;
    unsigned *sum = &ctx->sum;
    ctx->samples++;
    if (!fuzz_name_ok(s->name, 1) || !fuzz_name_ok(s->family, 1) || s->line == 0)
        abort();
    for (size_t i = 0; i < s->nlabels; i++) {
        if (!fuzz_name_ok(s->labels[i].name, 0))
            abort();
        for (size_t k = 0; k < s->labels[i].value.len; k++)
            *sum += (unsigned char)s->labels[i].value.ptr[k];
    }
    for (size_t k = 0; k < s->help.len; k++)
        *sum += (unsigned char)s->help.ptr[k];
    if (s->exemplar) {
        for (size_t i = 0; i < s->exemplar->nlabels; i++) {
            if (!fuzz_name_ok(s->exemplar->labels[i].name, 0))
                abort();
            *sum += (unsigned)s->exemplar->labels[i].value.len;
        }
    }
    return NDT_OK;
}

static void fuzz_expo(const uint8_t *data, size_t size, ingest_expo_format format)
{
    /* A private copy of exactly size bytes: ASan catches a read past it. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return;
    memcpy(buf, data, size);
    ndt_arena arena;
    ndt_arena_init(&arena, 4096, 1 << 20);
    ingest_expo_error err;
    fuzz_ctx ctx = { 0, 0 };
    int rc = ingest_expo_parse(buf, size, format, &arena, fuzz_on_sample, &ctx, &err);
    if (format == INGEST_EXPO_PROTOBUF) {
        /* No lines: an error names the offset of a family in the body. */
        if (rc != NDT_OK && (rc != NDT_ERROR || !err.binary || err.offset >= size || !err.reason[0]))
            abort();
    } else {
        if (rc != NDT_OK && (rc != NDT_ERROR || err.line == 0 || err.col == 0 || !err.reason[0]))
            abort();
        if (rc == NDT_OK && ctx.samples != fuzz_sample_lines(buf, size))
            abort();
    }
    ndt_arena_free(&arena);
    free(buf);
}

#endif
