/*
 * fuzz_decode_influx.c: libFuzzer target for the line-protocol reader
 * (decode_influx.c).  Besides what fuzz_decode_common.h checks, a
 * differential round trip: every sample the reader accepts is written
 * again by ingest's encoder and read back, and must come back the same
 * (escapes undone exactly as they are done).  NaN and the infinities,
 * which line protocol cannot carry, are skipped.
 *
 * fuzz-sources: harmonize/decode*.c harmonize/histogram.c common/number.c ingest/encode_influx.c ingest/encode_json.c common/buf.c
 * fuzz-seeds: tests/fuzz/seeds-decode
 */
#include <math.h>

#include "fuzz_decode_common.h"
#include "ingest/sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_str(ndt_str a, ndt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int encode_sample(const hdl_sample *s, ndt_buf *out)
{
    ingest_label labels[HDL_DECODE_MAX_LABELS + 1];
    labels[0] = (ingest_label){ NDT_STR_LIT("__name__"), s->name };
    for (size_t i = 0; i < s->nlabels; i++)
        labels[i + 1] = (ingest_label){ s->labels[i].name, s->labels[i].value };
    ingest_series series = { labels, s->nlabels + 1, s->value, s->ts_ms, INGEST_TYPE_UNKNOWN };
    return ingest_encode_influx(&series, out);
}

typedef struct check {
    ndt_buf first;  /* the encoder's bytes of the sample read from the input */
    ndt_buf second; /* ... and of the sample read back from those bytes */
    int seen;
} check;

static int encode_into_second(void *ctx, const hdl_sample *s)
{
    check *c = ctx;
    c->seen++;
    if (encode_sample(s, &c->second) != NDT_OK)
        abort();
    return NDT_OK;
}

/* One sample of the input: encode it, decode that, encode the result:
 * both encodings must be the same bytes. */
static int round_trip(void *ctx, const hdl_sample *s)
{
    check *c = ctx;
    ndt_buf_reset(&c->first);
    ndt_buf_reset(&c->second);
    int rc = encode_sample(s, &c->first);
    if (rc == NDT_AGAIN)
        return NDT_OK; /* NaN or an infinity */
    if (rc != NDT_OK)
        abort();
    char err[NDT_ERRBUF_SIZE];
    c->seen = 0;
    if (hdl_decode(HDL_FORMAT_INFLUX, c->first.data, c->first.len, encode_into_second, c, err,
                   sizeof(err)) != NDT_OK || c->seen != 1)
        abort(); /* the encoder's line must read back, as one sample */
    if (!same_str((ndt_str){ c->first.data, c->first.len },
                  (ndt_str){ c->second.data, c->second.len }))
        abort();
    return NDT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size, HDL_FORMAT_INFLUX);
    check c;
    ndt_buf_init(&c.first, 0);
    ndt_buf_init(&c.second, 0);
    char err[NDT_ERRBUF_SIZE];
    hdl_decode(HDL_FORMAT_INFLUX, data, size, round_trip, &c, err, sizeof(err));
    ndt_buf_free(&c.first);
    ndt_buf_free(&c.second);
    return 0;
}
