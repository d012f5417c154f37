/*
 * encode_influx.c: one sample as one InfluxDB line-protocol line, ms
 * precision, newline-terminated so that messages concatenate into a
 * valid /write body:
 *
 *   node_cpu_seconds_total,cpu=0,instance=h:9100,job=node,mode=idle value=1234.5 1767323045678
 *
 * measurement = metric name; tags = every other label in series order
 * (already sorted by name, which is what InfluxDB wants), labels with an
 * empty value skipped (Prometheus treats them as absent, InfluxDB rejects
 * them); one float field `value`; the timestamp in milliseconds (write
 * with precision=ms).
 *
 * Escaping follows the line-protocol spec and Telegraf's serializer (see
 * the dovecot fixture: `cmd_name=UID\ FETCH`): commas and spaces in the
 * measurement, commas, equals signs and spaces in tag keys and values get
 * a backslash; tab, newline, carriage return and form feed, which would
 * break the line, are written as the two characters \t \n \r \f (as
 * Telegraf does; InfluxDB keeps them literally).  A trailing backslash
 * would escape the separator after it, so trailing backslashes are
 * dropped.
 *
 * The field is formatted like Go's strconv.FormatFloat(v, 'f', -1, 64)
 * (shortest round-trip, no exponent), which InfluxDB parses as a float
 * even without a decimal point.  NaN and +-Inf have no line-protocol
 * spelling: such a sample yields NDT_AGAIN and nothing, and the sink
 * counts it (stats.unrepresentable) instead of writing a line InfluxDB
 * would reject with the whole batch.
 */
#include <math.h>
#include <stdio.h>

#include "ingest/sink.h"

/* Which bytes get a backslash: measurement vs tag keys/values. */
enum influx_context { INFLUX_MEASUREMENT, INFLUX_TAG };

static int append_escaped(ndt_buf *out, ndt_str s, enum influx_context ctx)
{
    while (s.len && s.ptr[s.len - 1] == '\\')
        s.len--;
    if (s.len > (SIZE_MAX - 1) / 2 || ndt_buf_reserve(out, s.len * 2) != NDT_OK)
        return NDT_ERROR;
    char *p = out->data + out->len;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        switch (c) {
        case ',':
        case ' ':
            *p++ = '\\';
            *p++ = c;
            break;
        case '=':
            if (ctx == INFLUX_TAG)
                *p++ = '\\';
            *p++ = c;
            break;
        case '\t': *p++ = '\\'; *p++ = 't'; break;
        case '\n': *p++ = '\\'; *p++ = 'n'; break;
        case '\r': *p++ = '\\'; *p++ = 'r'; break;
        case '\f': *p++ = '\\'; *p++ = 'f'; break;
        default:
            *p++ = c;
        }
    }
    out->len = (size_t)(p - out->data);
    return NDT_OK;
}

/* ",KEY=" then the value; non-finite values have no spelling and are
 * left out (only the sum can be one). */
static int append_float_field(ndt_buf *out, const char *key, double v)
{
    if (isnan(v) || isinf(v))
        return NDT_OK;
    int rc = ndt_buf_append_char(out, ',');
    rc |= ndt_buf_append_str(out, key);
    rc |= ndt_buf_append_char(out, '=');
    return rc | ingest_append_go_float(out, v);
}

static int append_bucket_fields(ndt_buf *out, char side, const ingest_native_buckets *b)
{
    int rc = NDT_OK;
    char key[24];
    for (size_t i = 0; rc == NDT_OK && i < b->n; i++) {
        snprintf(key, sizeof(key), "nh_%c%d", side, (int)b->index[i]);
        rc |= append_float_field(out, key, b->count[i]);
    }
    return rc;
}

/* A native histogram flattened into more fields of its _count line
 * (docs/FORMATS.md): nh_schema (integer), nh_zero_threshold,
 * nh_zero_count, nh_sum, and one field per bucket, nh_p<index> and
 * nh_n<index>, holding absolute counts. */
static int append_native_fields(ndt_buf *out, const ingest_native_histogram *h)
{
    int rc = ndt_buf_append_str(out, ",nh_schema=");
    rc |= ndt_buf_append_int(out, h->schema);
    rc |= ndt_buf_append_char(out, 'i');
    rc |= append_float_field(out, "nh_zero_threshold", h->zero_threshold);
    rc |= append_float_field(out, "nh_zero_count", h->zero_count);
    rc |= append_float_field(out, "nh_sum", h->sum);
    rc |= append_bucket_fields(out, 'p', &h->positive);
    return rc | append_bucket_fields(out, 'n', &h->negative);
}

int ingest_encode_influx(const ingest_series *series, ndt_buf *out)
{
    if (isnan(series->value) || isinf(series->value))
        return NDT_AGAIN;
    size_t first = 0;
    ndt_str name = { "", 0 };
    if (series->nlabels && ndt_str_eq_cstr(series->labels[0].name, "__name__")) {
        name = series->labels[0].value;
        first = 1;
    }
    size_t start = out->len;
    int rc = append_escaped(out, name, INFLUX_MEASUREMENT);
    for (size_t i = first; rc == NDT_OK && i < series->nlabels; i++) {
        const ingest_label *l = &series->labels[i];
        if (l->value.len == 0 || l->name.len == 0)
            continue;
        rc |= ndt_buf_append_char(out, ',');
        rc |= append_escaped(out, l->name, INFLUX_TAG);
        rc |= ndt_buf_append_char(out, '=');
        rc |= append_escaped(out, l->value, INFLUX_TAG);
    }
    rc |= ndt_buf_append(out, " value=", 7);
    rc |= ingest_append_go_float(out, series->value);
    if (series->native)
        rc |= append_native_fields(out, series->native);
    rc |= ndt_buf_append_char(out, ' ');
    rc |= ndt_buf_append_int(out, series->timestamp_ms);
    rc |= ndt_buf_append_char(out, '\n');
    if (rc != NDT_OK || name.len == 0) {
        /* A line without a measurement is invalid: refuse it like a limit. */
        out->len = start;
        return NDT_ERROR;
    }
    return NDT_OK;
}
