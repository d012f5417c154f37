/*
 * fuzz_decode_common.h: what every decoder's fuzz target checks
 * (harmonize/decode.h).  Any input: no crash, no read outside the
 * message (ASan), and the promises of every sample handed out: a
 * non-empty name, at most HDL_DECODE_MAX_LABELS labels, sorted by name
 * with no repeats and none named __name__, a known metric type, a native
 * histogram's quantiles ordered.  An
 * error always comes with a reason naming the format; decoding the same
 * bytes twice gives the same result (no hidden state).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harmonize/decode.h"
#include "harmonize/histogram.h"

typedef struct fuzz_decode_count {
    size_t n;
    double sum_ts; /* a cheap fingerprint of what was delivered */
} fuzz_decode_count;

static int fuzz_decode_check(void *ctx, const hdl_sample *s)
{
    fuzz_decode_count *c = ctx;
    if (s->name.len == 0 || s->nlabels > HDL_DECODE_MAX_LABELS)
        abort();
    if ((unsigned)s->type > HDL_TYPE_STATESET)
        abort();
    for (size_t i = 0; i < s->nlabels; i++) {
        if (ndt_str_eq_cstr(s->labels[i].name, "__name__"))
            abort();
        if (i && ndt_str_cmp(s->labels[i - 1].name, s->labels[i].name) >= 0)
            abort();
        /* Touch every byte: ASan sees a view pointing outside its buffer. */
        volatile char sink = 0;
        for (size_t k = 0; k < s->labels[i].value.len; k++)
            sink ^= s->labels[i].value.ptr[k];
        (void)sink;
    }
    /* A decoded native histogram is something the harmonizer estimates
     * quantiles from: any buckets give a number within the bounds or NaN. */
    if (s->native) {
        double lo = hdl_native_quantile(s->native, 0), hi = hdl_native_quantile(s->native, 1);
        double mid = hdl_native_quantile(s->native, 0.5);
        if (mid == mid && lo == lo && hi == hi && (mid < lo || mid > hi))
            abort();
    }
    c->n++;
    c->sum_ts += (double)s->ts_ms;
    return NDT_OK;
}

static void fuzz_decode(const uint8_t *data, size_t size, hdl_format format)
{
    /* A copy of exactly size bytes, so reading one past it is caught. */
    char *msg = malloc(size ? size : 1);
    if (!msg)
        return;
    memcpy(msg, data, size);
    char err[NDT_ERRBUF_SIZE] = "";
    fuzz_decode_count a = { 0 }, b = { 0 };
    int rc = hdl_decode(format, msg, size, fuzz_decode_check, &a, err, sizeof(err));
    if (rc != NDT_OK && (rc != NDT_EBADCONF || err[0] == 0))
        abort();
    char err2[NDT_ERRBUF_SIZE] = "";
    int rc2 = hdl_decode(format, msg, size, fuzz_decode_check, &b, err2, sizeof(err2));
    if (rc2 != rc || a.n != b.n || strcmp(err, err2) != 0)
        abort();
    if (a.sum_ts != b.sum_ts && a.sum_ts == a.sum_ts)
        abort();
    /* Detection never crashes and always names a real format. */
    hdl_format f = hdl_decode_detect(msg, size);
    if (f != HDL_FORMAT_JSON && f != HDL_FORMAT_AVRO && f != HDL_FORMAT_INFLUX)
        abort();
    free(msg);
}
