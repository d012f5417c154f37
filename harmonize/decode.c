/*
 * decode.c: reading ndt.telemetry.raw back (decode.h): format detection,
 * dispatch to the three decoders, format names, and the label handling
 * they share.
 *
 * Detection looks at as few bytes as it can and never guesses between two
 * readings that both make sense: a leading byte 0 is the Confluent magic
 * byte (neither json nor line protocol can start with NUL); a first
 * non-blank '{' is json (as Avro a '{' would be a negative string length,
 * so no TelemetryRaw record starts with it); anything else is Avro only
 * if the whole message decodes as exactly one TelemetryRaw record, which
 * line protocol text in practice never does, and line protocol otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "harmonize/decode_internal.h"

static const char *const format_names[] = {
    [HDL_FORMAT_AUTO] = "auto",
    [HDL_FORMAT_JSON] = "json",
    [HDL_FORMAT_AVRO] = "avro",
    [HDL_FORMAT_INFLUX] = "influx",
};

const char *hdl_format_name(hdl_format format)
{
    if ((unsigned)format < NDT_ARRAY_LEN(format_names))
        return format_names[format];
    return "unknown";
}

int hdl_format_parse(const char *s, hdl_format *out)
{
    for (size_t i = 0; s && i < NDT_ARRAY_LEN(format_names); i++) {
        if (strcmp(s, format_names[i]) == 0) {
            *out = (hdl_format)i;
            return NDT_OK;
        }
    }
    return NDT_EBADCONF;
}

hdl_format hdl_decode_detect(const void *msg, size_t len)
{
    const char *p = msg;
    if (len == 0)
        return HDL_FORMAT_INFLUX;
    if (p[0] == 0)
        return HDL_FORMAT_AVRO;
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    if (i < len && p[i] == '{')
        return HDL_FORMAT_JSON;
    if (hdl_avro_is_record(p, len))
        return HDL_FORMAT_AVRO;
    return HDL_FORMAT_INFLUX;
}

int hdl_decode(hdl_format format, const void *msg, size_t len, hdl_sample_fn fn, void *ctx,
               char *err, size_t errlen)
{
    if ((!msg && len) || !fn) {
        snprintf(err, errlen, "decode: %s", fn ? "no message" : "no sample callback");
        return NDT_ERROR;
    }
    if (format == HDL_FORMAT_AUTO)
        format = hdl_decode_detect(msg, len);
    switch (format) {
    case HDL_FORMAT_JSON: return hdl_decode_json(msg, len, fn, ctx, err, errlen);
    case HDL_FORMAT_AVRO: return hdl_decode_avro(msg, len, fn, ctx, err, errlen);
    case HDL_FORMAT_INFLUX: return hdl_decode_influx(msg, len, fn, ctx, err, errlen);
    default:
        snprintf(err, errlen, "decode: unknown format %d", (int)format);
        return NDT_EBADCONF;
    }
}

/* Whether a sorts strictly before b, in ndt_str_cmp's order, without a
 * memcmp call: label names nearly always differ in their first bytes. */
static inline int name_before(ndt_str a, ndt_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    for (size_t i = 0; i < n; i++) {
        if (a.ptr[i] != b.ptr[i])
            return (unsigned char)a.ptr[i] < (unsigned char)b.ptr[i];
    }
    return a.len < b.len;
}

int hdl_labels_sort(hdl_label *labels, size_t n, size_t *repeated)
{
    size_t i = 1;
    while (i < n && name_before(labels[i - 1].name, labels[i].name))
        i++;
    if (i >= n)
        return NDT_OK; /* strictly ascending: sorted and no repeats, one compare a label */
    for (; i < n; i++) {
        if (ndt_str_cmp(labels[i - 1].name, labels[i].name) < 0)
            continue;
        hdl_label cur = labels[i];
        size_t j = i;
        while (j > 0 && ndt_str_cmp(labels[j - 1].name, cur.name) > 0) {
            labels[j] = labels[j - 1];
            j--;
        }
        labels[j] = cur;
    }
    for (size_t k = 1; k < n; k++) {
        if (ndt_str_eq(labels[k - 1].name, labels[k].name)) {
            *repeated = k;
            return NDT_EBADCONF;
        }
    }
    return NDT_OK;
}

/* Days since 1970-01-01 of a civil date, the inverse of the era
 * decomposition encode_json.c formats with (no libc time zone state). */
int64_t hdl_days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t yoe = year - era * 400;                                           /* [0, 399] */
    int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                      /* [0, 146096] */
    return era * 146097 + doe - 719468;
}
