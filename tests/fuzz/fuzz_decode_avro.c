/*
 * fuzz_decode_avro.c: libFuzzer target for the TelemetryRaw Avro reader
 * with and without Confluent framing (decode_avro.c).  Besides what
 * fuzz_decode_common.h checks, a differential round trip: whatever the
 * reader accepts is written again by ingest's encoder and read back, and
 * must give the same samples, bit for bit (Avro carries every byte, so
 * nothing may be lost or invented on either side).
 *
 * fuzz-sources: harmonize/decode*.c harmonize/histogram.c common/number.c ingest/encode_avro.c common/buf.c
 * fuzz-seeds: tests/fuzz/seeds-decode
 */
#include <avro.h>

#include "fuzz_decode_common.h"
#include "ingest/sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_SAMPLES 512

/* Deep copies of the decoded samples, as ingest series (__name__ first). */
typedef struct copied {
    ingest_series series[FUZZ_MAX_SAMPLES];
    ingest_label *labels[FUZZ_MAX_SAMPLES];
    char *bytes[FUZZ_MAX_SAMPLES];
    size_t n;
    int too_many;
} copied;

static ndt_str copy_str(char **at, ndt_str s)
{
    if (s.len)
        memcpy(*at, s.ptr, s.len);
    ndt_str out = { *at, s.len };
    *at += s.len;
    return out;
}

static int copy_sample(void *ctx, const hdl_sample *s)
{
    copied *c = ctx;
    if (c->n == FUZZ_MAX_SAMPLES) {
        c->too_many = 1;
        return NDT_ERROR;
    }
    size_t bytes = s->name.len;
    for (size_t i = 0; i < s->nlabels; i++)
        bytes += s->labels[i].name.len + s->labels[i].value.len;
    ingest_label *l = malloc((s->nlabels + 1) * sizeof(*l));
    char *b = malloc(bytes + 1), *at = b;
    if (!l || !b)
        abort();
    l[0] = (ingest_label){ NDT_STR_LIT("__name__"), copy_str(&at, s->name) };
    for (size_t i = 0; i < s->nlabels; i++)
        l[i + 1] = (ingest_label){ copy_str(&at, s->labels[i].name),
                                   copy_str(&at, s->labels[i].value) };
    c->labels[c->n] = l;
    c->bytes[c->n] = b;
    c->series[c->n++] = (ingest_series){ l, s->nlabels + 1, s->value, s->ts_ms,
                                         (ingest_metric_type)s->type };
    return NDT_OK;
}

static void copied_free(copied *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->labels[i]);
        free(c->bytes[i]);
    }
}

static int same_str(ndt_str a, ndt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int same_series(const ingest_series *a, const ingest_series *b)
{
    if (a->nlabels != b->nlabels || a->timestamp_ms != b->timestamp_ms || a->type != b->type ||
        memcmp(&a->value, &b->value, sizeof(double)) != 0)
        return 0;
    for (size_t i = 0; i < a->nlabels; i++) {
        if (!same_str(a->labels[i].name, b->labels[i].name) ||
            !same_str(a->labels[i].value, b->labels[i].value))
            return 0;
    }
    return 1;
}

static void round_trip(const uint8_t *data, size_t size)
{
    static ingest_avro_encoder *enc;
    char err[NDT_ERRBUF_SIZE];
    if (!enc && ingest_avro_encoder_new(&enc, err, sizeof(err)) != NDT_OK)
        abort();
    static copied first, second;
    first.n = second.n = 0;
    first.too_many = second.too_many = 0;
    if (hdl_decode(HDL_FORMAT_AVRO, data, size, copy_sample, &first, err, sizeof(err)) != NDT_OK)
        goto done;
    ingest_batch batch = { NDT_STR_LIT("j"), NDT_STR_LIT("i"), 0, first.series, first.n };
    ndt_buf out;
    ndt_buf_init(&out, 0);
    if (ingest_encode_avro(enc, &batch, 3, &out) != NDT_OK)
        abort();
    if (hdl_decode(HDL_FORMAT_AUTO, out.data, out.len, copy_sample, &second, err, sizeof(err)) !=
        NDT_OK)
        abort(); /* what we wrote must read back */
    if (second.n != first.n)
        abort();
    for (size_t i = 0; i < first.n; i++) {
        if (!same_series(&first.series[i], &second.series[i]))
            abort();
    }
    ndt_buf_free(&out);
done:
    copied_free(&first);
    copied_free(&second);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size, HDL_FORMAT_AVRO);
    round_trip(data, size);
    return 0;
}
