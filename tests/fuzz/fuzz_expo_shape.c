/*
 * fuzz_expo_shape.c: differential libFuzzer target for page shapes
 * (ingest/expo_shape.c): a replay must never claim what a full parse
 * would not give.
 *
 * The input is two pages, A and B, split at the first "\n\x00\x00\n";
 * without that marker B is A with every digit moved on by one (new values,
 * and new names or labels where those hold digits, which replays must
 * decline).  The format is OpenMetrics when the input holds "# EOF", text
 * otherwise.  A is parsed in full while its shape is recorded; when the
 * shape is valid and its replay over B says NDT_OK, B's full parse must
 * succeed with as many samples, each with the replay's value (bit for bit,
 * any NaN for a NaN) and timestamp, and with A's name and labels at the
 * same position.  Anything else aborts.
 *
 * fuzz-sources: common/arena.c common/number.c ingest/expo*.c ingest/sample.c GEN/ingest/metrics.pb-c.c
 * fuzz-libs: -lprotobuf-c
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "ingest/expo.h"

#define FUZZ_MAX_SAMPLES 4096

typedef struct fuzz_sample {
    ndt_str name;
    const ingest_label *labels;
    size_t nlabels;
    double value;
    int64_t timestamp_ms;
} fuzz_sample;

typedef struct fuzz_page {
    fuzz_sample samples[FUZZ_MAX_SAMPLES];
    size_t n;
    int overflow;
} fuzz_page;

static fuzz_page page_a, page_b;
static double values[FUZZ_MAX_SAMPLES];
static int64_t timestamps[FUZZ_MAX_SAMPLES];

static int keep_sample(void *arg, const ingest_sample *s)
{
    fuzz_page *page = arg;
    if (page->n == FUZZ_MAX_SAMPLES) {
        page->overflow = 1;
        return NDT_OK;
    }
    fuzz_sample *out = &page->samples[page->n++];
    out->name = s->name;
    out->labels = s->labels;
    out->nlabels = s->nlabels;
    out->value = s->value;
    out->timestamp_ms = s->timestamp_ms;
    return NDT_OK;
}

static int same_value(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof(a)) == 0;
}

static void check(const fuzz_sample *a, const fuzz_sample *b, double value, int64_t ts)
{
    if (!ndt_str_eq(a->name, b->name) || a->nlabels != b->nlabels)
        abort();
    for (size_t i = 0; i < a->nlabels; i++) {
        if (!ndt_str_eq(a->labels[i].name, b->labels[i].name) ||
            !ndt_str_eq(a->labels[i].value, b->labels[i].value))
            abort();
    }
    if (!same_value(b->value, value) || b->timestamp_ms != ts)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char marker[] = "\n\0\0\n";
    const char *in = (const char *)data;
    const char *split = memmem(in, size, marker, sizeof(marker) - 1);
    size_t alen = split ? (size_t)(split - in) : size;
    size_t blen = split ? size - alen - (sizeof(marker) - 1) : size;
    ingest_expo_format format =
        memmem(in, size, "# EOF", 5) ? INGEST_EXPO_OPENMETRICS : INGEST_EXPO_TEXT;

    /* Own copies, so that ASan sees any read past either page. */
    char *a = malloc(alen ? alen : 1), *b = malloc(blen ? blen : 1);
    if (!a || !b)
        abort();
    memcpy(a, in, alen);
    if (split) {
        memcpy(b, split + sizeof(marker) - 1, blen);
    } else {
        for (size_t i = 0; i < blen; i++)
            b[i] = in[i] >= '0' && in[i] <= '9' ? (char)('0' + (in[i] - '0' + 1) % 10) : in[i];
    }

    ndt_arena arena_a, arena_b;
    ndt_arena_init(&arena_a, 64 * 1024, 64u << 20);
    ndt_arena_init(&arena_b, 64 * 1024, 64u << 20);
    ingest_expo_shape *shape = ingest_expo_shape_new();
    if (!shape)
        abort();
    page_a.n = page_b.n = 0;
    page_a.overflow = page_b.overflow = 0;
    int rc = ingest_expo_parse_recording(a, alen, format, &arena_a, keep_sample, &page_a, NULL,
                                         shape);
    if (rc != NDT_OK && ingest_expo_shape_valid(shape))
        abort(); /* a failed parse leaves no shape */
    if (ingest_expo_shape_valid(shape) && !page_a.overflow) {
        if (ingest_expo_shape_samples(shape) != page_a.n)
            abort();
        /* The shape is the page less its values: never larger. */
        if (ingest_expo_shape_bytes(shape) > 2 * alen + 64 * 1024)
            abort();
        if (ingest_expo_shape_replay(shape, b, blen, format, values, timestamps) == NDT_OK) {
            if (ingest_expo_parse(b, blen, format, &arena_b, keep_sample, &page_b, NULL) != NDT_OK)
                abort();
            if (page_b.n != page_a.n)
                abort();
            for (size_t i = 0; i < page_b.n; i++)
                check(&page_a.samples[i], &page_b.samples[i], values[i], timestamps[i]);
        }
    }
    ingest_expo_shape_free(shape);
    ndt_arena_free(&arena_a);
    ndt_arena_free(&arena_b);
    free(a);
    free(b);
    return 0;
}
