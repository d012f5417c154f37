/*
 * fuzz_decode_json.c: libFuzzer target for the prometheus-kafka-adapter
 * JSON reader (decode_json.c).  Besides what fuzz_decode_common.h checks,
 * a differential round trip: a sample the reader accepts is written again
 * by ingest's encoder and read back, and must come back the same (NaN as
 * NaN).  Skipped where the encoder cannot be faithful by design: label
 * bytes that are not valid UTF-8 (it writes U+FFFD) and instants outside
 * years 0000-9999 (RFC 3339 has four year digits).
 *
 * fuzz-sources: harmonize/decode*.c harmonize/histogram.c common/number.c ingest/encode_json.c common/buf.c
 * fuzz-seeds: tests/fuzz/seeds-decode
 */
#include <math.h>

#include "fuzz_decode_common.h"
#include "ingest/sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* -62167219200000 ms is 0000-01-01T00:00:00Z, 253402300799999 the last ms of 9999. */
#define FUZZ_MIN_MS (-62167219200000LL)
#define FUZZ_MAX_MS 253402300799999LL

static int valid_utf8(ndt_str s)
{
    const unsigned char *p = (const unsigned char *)s.ptr, *end = p + s.len;
    while (p < end) {
        unsigned c = *p;
        size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!n || (size_t)(end - p) < n)
            return 0;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
        }
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) ||
            (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return 0;
        p += n;
    }
    return 1;
}

typedef struct first_sample {
    ingest_label labels[HDL_DECODE_MAX_LABELS + 1];
    ingest_series series;
    ndt_buf encoded;
    int skip;
} first_sample;

static int same_str(ndt_str a, ndt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The first decode: encode the sample again (the view is valid only now). */
static int encode_again(void *ctx, const hdl_sample *s)
{
    first_sample *f = ctx;
    if (s->ts_ms < FUZZ_MIN_MS || s->ts_ms > FUZZ_MAX_MS || !valid_utf8(s->name)) {
        f->skip = 1;
        return NDT_OK;
    }
    f->labels[0] = (ingest_label){ NDT_STR_LIT("__name__"), s->name };
    for (size_t i = 0; i < s->nlabels; i++) {
        if (!valid_utf8(s->labels[i].name) || !valid_utf8(s->labels[i].value)) {
            f->skip = 1;
            return NDT_OK;
        }
        f->labels[i + 1] = (ingest_label){ s->labels[i].name, s->labels[i].value };
    }
    f->series = (ingest_series){ f->labels, s->nlabels + 1, s->value, s->ts_ms, INGEST_TYPE_UNKNOWN };
    if (ingest_encode_json(&f->series, &f->encoded) != NDT_OK)
        abort();
    return NDT_OK;
}

typedef struct second_check {
    ndt_buf *first_encoded;
    int seen;
} second_check;

/* The second decode must give what the first gave: compared through the
 * encoder's bytes, which are a function of the sample. */
static int encode_compare(void *ctx, const hdl_sample *s)
{
    second_check *c = ctx;
    ingest_label labels[HDL_DECODE_MAX_LABELS + 1];
    labels[0] = (ingest_label){ NDT_STR_LIT("__name__"), s->name };
    for (size_t i = 0; i < s->nlabels; i++)
        labels[i + 1] = (ingest_label){ s->labels[i].name, s->labels[i].value };
    ingest_series series = { labels, s->nlabels + 1, s->value, s->ts_ms, INGEST_TYPE_UNKNOWN };
    ndt_buf again;
    ndt_buf_init(&again, 0);
    if (ingest_encode_json(&series, &again) != NDT_OK)
        abort();
    if (!same_str((ndt_str){ again.data, again.len },
                  (ndt_str){ c->first_encoded->data, c->first_encoded->len }))
        abort();
    ndt_buf_free(&again);
    c->seen++;
    return NDT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size, HDL_FORMAT_JSON);
    first_sample *f = calloc(1, sizeof(*f));
    if (!f)
        return 0;
    ndt_buf_init(&f->encoded, 0);
    char err[NDT_ERRBUF_SIZE];
    if (hdl_decode(HDL_FORMAT_JSON, data, size, encode_again, f, err, sizeof(err)) == NDT_OK &&
        !f->skip) {
        second_check c = { &f->encoded, 0 };
        if (hdl_decode(HDL_FORMAT_AUTO, f->encoded.data, f->encoded.len, encode_compare, &c, err,
                       sizeof(err)) != NDT_OK || c.seen != 1)
            abort(); /* the encoder's output must read back */
    }
    ndt_buf_free(&f->encoded);
    free(f);
    return 0;
}
