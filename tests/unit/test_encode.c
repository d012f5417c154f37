/*
 * test_encode.c: the three Kafka payload encoders (json, influx, avro)
 * and their helpers: exact bytes for known inputs, escaping of hostile
 * bytes, Go's float spelling, millisecond timestamps, Avro output decoded
 * with Avro C's own reader, Confluent framing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <avro.h>
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/sink.h"

#define L(n, v) { NDT_STR_LIT(n), NDT_STR_LIT(v) }
#define S(lit) ((ndt_str){ (lit), sizeof(lit) - 1 })

/* 2026-01-02T03:04:05.678Z */
#define TS_EXAMPLE 1767323045678LL

static char *encode_json_cstr(const ingest_series *s)
{
    ndt_buf b;
    ndt_buf_init(&b, 0);
    assert_int_equal(ingest_encode_json(s, &b), NDT_OK);
    assert_int_equal(ndt_buf_terminate(&b), NDT_OK);
    return b.data;
}

static char *go_float(double v)
{
    ndt_buf b;
    ndt_buf_init(&b, 0);
    assert_int_equal(ingest_append_go_float(&b, v), NDT_OK);
    assert_int_equal(ndt_buf_terminate(&b), NDT_OK);
    return b.data;
}

/* ---- json ------------------------------------------------------------- */

static void json_matches_prometheus_kafka_adapter_shape(void **state)
{
    (void)state;
    const ingest_label labels[] = { L("__name__", "up"), L("instance", "h:p"), L("job", "j") };
    ingest_series s = { labels, 3, 1.5, TS_EXAMPLE, INGEST_TYPE_GAUGE };
    char *got = encode_json_cstr(&s);
    assert_string_equal(got, "{\"timestamp\":\"2026-01-02T03:04:05.678Z\",\"value\":\"1.5\","
                             "\"name\":\"up\",\"labels\":{\"__name__\":\"up\",\"instance\":"
                             "\"h:p\",\"job\":\"j\"}}");
    free(got);
}

static void json_special_values_and_whole_seconds(void **state)
{
    (void)state;
    const ingest_label labels[] = { L("__name__", "x") };
    const struct {
        double v;
        const char *value;
    } cases[] = { { NAN, "NaN" }, { INFINITY, "+Inf" }, { -INFINITY, "-Inf" } };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        ingest_series s = { labels, 1, cases[i].v, 1767225600000LL, INGEST_TYPE_UNKNOWN };
        char *got = encode_json_cstr(&s);
        char want[256];
        snprintf(want, sizeof(want),
                 "{\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"value\":\"%s\",\"name\":\"x\","
                 "\"labels\":{\"__name__\":\"x\"}}",
                 cases[i].value);
        assert_string_equal(got, want);
        free(got);
    }
}

static void json_escapes_hostile_bytes_and_stays_valid(void **state)
{
    (void)state;
    /* quote, backslash, newline, tab, a control byte, valid 2- and 3-byte
     * UTF-8, a stray 0xff, a truncated sequence, an encoded surrogate, an
     * overlong '/' */
    const ingest_label labels[] = {
        L("__name__", "m"),
        { S("path"), S("a\"b\\c\nd\te\x01" "f\xc3\xa9g\xe2\x82\xach\xffi\xe2\x82") },
        { S("s"), S("\xed\xa0\x80|\xc0\xaf") },
    };
    ingest_series s = { labels, 3, 2, 0, INGEST_TYPE_UNKNOWN };
    char *got = encode_json_cstr(&s);
    assert_string_equal(got,
                        "{\"timestamp\":\"1970-01-01T00:00:00.000Z\",\"value\":\"2\",\"name\":\"m\","
                        "\"labels\":{\"__name__\":\"m\",\"path\":\"a\\\"b\\\\c\\nd\\te\\u0001f"
                        "\xc3\xa9g\xe2\x82\xach\\ufffdi\\ufffd\\ufffd\",\"s\":\"\\ufffd\\ufffd\\ufffd|"
                        "\\ufffd\\ufffd\"}}");
    /* And a real JSON parser agrees on the decoded values. */
    cJSON *doc = cJSON_Parse(got);
    assert_non_null(doc);
    cJSON *l = cJSON_GetObjectItemCaseSensitive(doc, "labels");
    const char *path = cJSON_GetObjectItemCaseSensitive(l, "path")->valuestring;
    assert_string_equal(path, "a\"b\\c\nd\te\x01" "f\xc3\xa9g\xe2\x82\xach\xef\xbf\xbdi"
                              "\xef\xbf\xbd\xef\xbf\xbd");
    cJSON_Delete(doc);
    free(got);
}

static void json_refuses_at_buffer_limit_and_keeps_buffer(void **state)
{
    (void)state;
    const ingest_label labels[] = { L("__name__", "up"), L("job", "a-rather-long-job-name") };
    ingest_series s = { labels, 2, 1, 0, INGEST_TYPE_UNKNOWN };
    ndt_buf b;
    ndt_buf_init(&b, 64);
    assert_int_equal(ndt_buf_append_str(&b, "prefix"), NDT_OK);
    assert_int_equal(ingest_encode_json(&s, &b), NDT_ERROR);
    assert_int_equal(b.len, 6);
    ndt_buf_free(&b);
}

/* ---- Go's strconv.FormatFloat(v, 'f', -1, 64) -------------------------- */

static void go_float_spelling(void **state)
{
    (void)state;
    /* Expected strings are what Go 1.21 prints for these values. */
    const struct {
        double v;
        const char *s;
    } cases[] = {
        { 1.5, "1.5" },
        { 0.1, "0.1" },
        { -2.5, "-2.5" },
        { 100, "100" },
        { 0, "0" },
        { -0.0, "-0" },
        { 1.0 / 3, "0.3333333333333333" },
        { 2.0 / 3, "0.6666666666666666" },
        { 123456789.123, "123456789.123" },
        { 1e21, "1000000000000000000000" },
        { 1e-7, "0.0000001" },
        { 9007199254740993.0, "9007199254740992" },
        { 1606393397.123, "1606393397.123" },
        { 0.000123, "0.000123" },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        char *got = go_float(cases[i].v);
        assert_string_equal(got, cases[i].s);
        free(got);
    }
    /* The extremes: DBL_MAX is 17976931348623157 and 292 zeros, the
     * smallest subnormal is 0. then 323 zeros and a 5. */
    char want[400];
    memset(want, '0', sizeof(want));
    memcpy(want, "17976931348623157", 17);
    want[17 + 292] = '\0';
    char *got = go_float(1.7976931348623157e308);
    assert_string_equal(got, want);
    free(got);
    memset(want, '0', sizeof(want));
    memcpy(want, "0.", 2);
    memcpy(want + 2 + 323, "5", 2);
    got = go_float(5e-324);
    assert_string_equal(got, want);
    free(got);
}

/* Significant digits of a fixed-notation number (no leading/trailing zeros). */
static int significant_digits(const char *s)
{
    int first = -1, last = -1, pos = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            continue;
        if (*s != '0') {
            if (first < 0)
                first = pos;
            last = pos;
        }
        pos++;
    }
    return first < 0 ? 1 : last - first + 1;
}

static void go_float_round_trips_without_exponent(void **state)
{
    (void)state;
    srand(42);
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = ((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 11) ^ (uint64_t)rand();
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (isnan(v) || isinf(v))
            continue;
        char *got = go_float(v);
        assert_null(strpbrk(got, "eE"));
        assert_true(strtod(got, NULL) == v);
        /* Shortest: one significant digit fewer does not survive the round trip. */
        int sig = significant_digits(got);
        if (sig > 1) {
            char shorter[40];
            snprintf(shorter, sizeof(shorter), "%.*e", sig - 2, v);
            assert_true(strtod(shorter, NULL) != v);
        }
        free(got);
    }
}

/* ---- timestamps --------------------------------------------------------- */

static void rfc3339_ms_known_instants(void **state)
{
    (void)state;
    const struct {
        int64_t ms;
        const char *s;
    } cases[] = {
        { 0, "1970-01-01T00:00:00.000Z" },
        { -1, "1969-12-31T23:59:59.999Z" },
        { 951782400000LL, "2000-02-29T00:00:00.000Z" },
        { 4107542399999LL, "2100-02-28T23:59:59.999Z" },
        { TS_EXAMPLE, "2026-01-02T03:04:05.678Z" },
        { 5, "1970-01-01T00:00:00.005Z" },
    };
    char buf[40];
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        assert_int_equal(ingest_format_rfc3339_ms(cases[i].ms, buf, sizeof(buf)), 24);
        assert_string_equal(buf, cases[i].s);
    }
}

static void rfc3339_ms_agrees_with_libc(void **state)
{
    (void)state;
    srand(7);
    for (int i = 0; i < 100000; i++) {
        /* 1900 .. 2300 */
        int64_t ms = ((int64_t)rand() * 4096 + rand() % 4096) % 13569465600000LL - 2208988800000LL;
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char want[40], got[40];
        size_t n = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + n, sizeof(want) - n, ".%03dZ", (int)(((ms % 1000) + 1000) % 1000));
        ingest_format_rfc3339_ms(ms, got, sizeof(got));
        assert_string_equal(got, want);
    }
}

/* ---- influx ------------------------------------------------------------- */

static char *encode_influx_cstr(const ingest_series *s)
{
    ndt_buf b;
    ndt_buf_init(&b, 0);
    assert_int_equal(ingest_encode_influx(s, &b), NDT_OK);
    assert_int_equal(ndt_buf_terminate(&b), NDT_OK);
    return b.data;
}

static void influx_exact_lines(void **state)
{
    (void)state;
    const ingest_label a[] = { L("__name__", "node_cpu_seconds_total"), L("cpu", "0"),
                               L("instance", "h:9100"), L("job", "node"), L("mode", "idle") };
    ingest_series s = { a, 5, 1234.5, TS_EXAMPLE, INGEST_TYPE_COUNTER };
    char *got = encode_influx_cstr(&s);
    assert_string_equal(got, "node_cpu_seconds_total,cpu=0,instance=h:9100,job=node,mode=idle "
                             "value=1234.5 1767323045678\n");
    free(got);

    /* Escapes, an empty value skipped, a trailing backslash dropped, a
     * huge value without exponent. */
    const ingest_label b[] = { L("__name__", "we ird,name=x"), L("a=b", "c d,e=f"), L("empty", ""),
                               L("nl", "x\ny\tz"), L("win", "C:\\dir\\") };
    ingest_series t = { b, 5, 1e21, -5, INGEST_TYPE_UNKNOWN };
    got = encode_influx_cstr(&t);
    assert_string_equal(got, "we\\ ird\\,name=x,a\\=b=c\\ d\\,e\\=f,nl=x\\ny\\tz,win=C:\\dir "
                             "value=1000000000000000000000 -5\n");
    free(got);
}

static void influx_skips_nan_and_inf(void **state)
{
    (void)state;
    const ingest_label a[] = { L("__name__", "x") };
    const double bad[] = { NAN, INFINITY, -INFINITY };
    ndt_buf b;
    ndt_buf_init(&b, 0);
    for (size_t i = 0; i < NDT_ARRAY_LEN(bad); i++) {
        ingest_series s = { a, 1, bad[i], 1, INGEST_TYPE_GAUGE };
        assert_int_equal(ingest_encode_influx(&s, &b), NDT_AGAIN);
        assert_int_equal(b.len, 0);
    }
    ndt_buf_free(&b);
}

/* Unescapes one line-protocol token of Telegraf's output. */
static size_t unescape_token(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\\' && i + 1 < n && strchr(", =", in[i + 1]))
            i++;
        out[o++] = in[i];
    }
    return o;
}

/* Telegraf's serializer wrote expected_v1.out; rebuilding each line's
 * series from its (unescaped) measurement and tags and encoding it must
 * give Telegraf's bytes up to the fields. */
static void influx_escaping_matches_telegraf_fixture(void **state)
{
    (void)state;
    const char *dir = getenv("NDT_FIXTURES");
    if (!dir)
        skip();
    char path[1024];
    snprintf(path, sizeof(path), "%s/telegraf/dovecot/expected_v1.out", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int checked = 0, escaped = 0;
    while (fgets(line, sizeof(line), f)) {
        /* Split measurement,tags at unescaped commas up to the first unescaped space. */
        size_t end = 0, nparts = 0, starts[64], lens[64];
        size_t start = 0;
        for (;; end++) {
            char c = line[end];
            if (c == '\\' && line[end + 1]) {
                end++;
                continue;
            }
            if (c == ',' || c == ' ' || c == '\0' || c == '\n') {
                starts[nparts] = start;
                lens[nparts++] = end - start;
                start = end + 1;
                if (c != ',')
                    break;
            }
        }
        if (strstr(line, "\\ "))
            escaped++;
        static char store[64][512];
        ingest_label labels[64];
        for (size_t i = 0; i < nparts; i++) {
            size_t n = unescape_token(line + starts[i], lens[i], store[i]);
            if (i == 0) {
                labels[0].name = NDT_STR_LIT("__name__");
                labels[0].value = (ndt_str){ store[0], n };
                continue;
            }
            char *eq = store[i];
            while (eq < store[i] + n && *eq != '=')
                eq++;
            labels[i].name = (ndt_str){ store[i], (size_t)(eq - store[i]) };
            labels[i].value = (ndt_str){ eq + 1, n - (size_t)(eq - store[i]) - 1 };
        }
        ingest_series s = { labels, nparts, 1, 0, INGEST_TYPE_UNKNOWN };
        char *got = encode_influx_cstr(&s);
        assert_memory_equal(got, line, end + 1); /* through the separating space */
        free(got);
        checked++;
    }
    fclose(f);
    assert_true(checked >= 40);
    assert_true(escaped >= 2);
}

/* ---- avro --------------------------------------------------------------- */

static void avro_schema_is_the_avsc_file(void **state)
{
    (void)state;
    FILE *f = fopen("sdm-schemas/avro/ndt.telemetry.raw.avsc", "rb");
    assert_non_null(f); /* tests run from the repository root */
    static char file[65536];
    size_t n = fread(file, 1, sizeof(file), f);
    fclose(f);
    const char *embedded = ingest_avro_schema_text();
    assert_int_equal(strlen(embedded), n);
    assert_memory_equal(embedded, file, n);
}

static void check_avro_string(avro_value_t *rec, const char *field, ndt_str want)
{
    avro_value_t v;
    const char *s;
    size_t size;
    assert_int_equal(avro_value_get_by_name(rec, field, &v, NULL), 0);
    assert_int_equal(avro_value_get_string(&v, &s, &size), 0);
    assert_int_equal(size - 1, want.len); /* Avro C counts the NUL */
    assert_memory_equal(s, want.ptr, want.len);
}

static int64_t get_long(avro_value_t *rec, const char *field)
{
    avro_value_t v;
    int64_t out;
    assert_int_equal(avro_value_get_by_name(rec, field, &v, NULL), 0);
    assert_int_equal(avro_value_get_long(&v, &out), 0);
    return out;
}

/* A string field of an Avro C record as an ndt_str (Avro C counts the NUL). */
static ndt_str avro_str(avro_value_t *rec, const char *field)
{
    avro_value_t v;
    const char *s;
    size_t size;
    assert_int_equal(avro_value_get_by_name(rec, field, &v, NULL), 0);
    assert_int_equal(avro_value_get_string(&v, &s, &size), 0);
    return (ndt_str){ s, size - 1 };
}

/* An array of Label records read into out (at most cap). */
static size_t avro_labels(avro_value_t *rec, const char *field, ingest_label *out, size_t cap)
{
    avro_value_t arr, l;
    size_t n;
    assert_int_equal(avro_value_get_by_name(rec, field, &arr, NULL), 0);
    assert_int_equal(avro_value_get_size(&arr, &n), 0);
    assert_true(n <= cap);
    for (size_t j = 0; j < n; j++) {
        assert_int_equal(avro_value_get_by_index(&arr, j, &l, NULL), 0);
        out[j].name = avro_str(&l, "name");
        out[j].value = avro_str(&l, "value");
    }
    return n;
}

/* The schema's rule for a sample's full label set, written independently
 * of both the encoder and the harmonizer's decoder: its own labels, plus
 * each record label it does not name; an own label with the empty value
 * that names a record label removes it.  Order: by name. */
static size_t full_labels(const ingest_label *own, size_t nown, const ingest_label *rec,
                          size_t nrec, ingest_label *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nown; i++) {
        int names_record = 0;
        for (size_t j = 0; j < nrec; j++)
            names_record |= ndt_str_eq(own[i].name, rec[j].name);
        if (own[i].value.len || !names_record)
            out[n++] = own[i];
    }
    for (size_t j = 0; j < nrec; j++) {
        int named = 0;
        for (size_t i = 0; i < nown; i++)
            named |= ndt_str_eq(own[i].name, rec[j].name);
        if (!named)
            out[n++] = rec[j];
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort by name */
        for (size_t k = i; k > 0 && ndt_str_cmp(out[k - 1].name, out[k].name) > 0; k--) {
            ingest_label t = out[k];
            out[k] = out[k - 1];
            out[k - 1] = t;
        }
    }
    return n;
}

/* Decodes payload with Avro C against the schema and compares with batch
 * (every sample's full label set, value, timestamp, type); re-encoding the
 * decoded value with Avro C must give the same bytes.  Returns the number
 * of labels written with the samples, over all samples. */
static size_t check_avro_decodes_to(const char *payload, size_t len, const ingest_batch *batch)
{
    avro_schema_t schema;
    assert_int_equal(avro_schema_from_json_length(ingest_avro_schema_text(),
                                                  strlen(ingest_avro_schema_text()), &schema),
                     0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    avro_reader_t reader = avro_reader_memory(payload, (int64_t)len);
    assert_int_equal(avro_value_read(reader, &rec), 0);

    check_avro_string(&rec, "job", batch->job);
    check_avro_string(&rec, "instance", batch->instance);
    int64_t scrape_ts = get_long(&rec, "scrape_timestamp");
    assert_int_equal(scrape_ts, batch->scrape_timestamp_ms);
    static ingest_label common[128], own[128], full[256];
    size_t ncommon = avro_labels(&rec, "labels", common, 128), written = 0;
    assert_int_equal(ncommon, batch->ncommon);
    for (size_t j = 0; j < ncommon; j++) {
        assert_true(ndt_str_eq(common[j].name, batch->common[j].name));
        assert_true(ndt_str_eq(common[j].value, batch->common[j].value));
    }
    avro_value_t samples;
    size_t n;
    assert_int_equal(avro_value_get_by_name(&rec, "samples", &samples, NULL), 0);
    assert_int_equal(avro_value_get_size(&samples, &n), 0);
    assert_int_equal(n, batch->nseries);
    for (size_t i = 0; i < n; i++) {
        const ingest_series *want = &batch->series[i];
        avro_value_t s, v, ts;
        assert_int_equal(avro_value_get_by_index(&samples, i, &s, NULL), 0);
        check_avro_string(&s, "name", want->labels[0].value);
        assert_int_equal(avro_value_get_by_name(&s, "value", &v, NULL), 0);
        double d;
        assert_int_equal(avro_value_get_double(&v, &d), 0);
        assert_true(memcmp(&d, &want->value, sizeof(d)) == 0 || d == want->value);
        int branch;
        int64_t t = scrape_ts;
        assert_int_equal(avro_value_get_by_name(&s, "timestamp", &v, NULL), 0);
        assert_int_equal(avro_value_get_discriminant(&v, &branch), 0);
        if (branch == 1) {
            assert_int_equal(avro_value_get_current_branch(&v, &ts), 0);
            assert_int_equal(avro_value_get_long(&ts, &t), 0);
            assert_true(t != scrape_ts); /* the scrape's own is written as null */
        }
        assert_int_equal(t, want->timestamp_ms);
        int type;
        assert_int_equal(avro_value_get_by_name(&s, "type", &v, NULL), 0);
        assert_int_equal(avro_value_get_enum(&v, &type), 0);
        assert_int_equal(type, want->type);
        size_t nown = avro_labels(&s, "labels", own, 128);
        written += nown;
        size_t nl = full_labels(own, nown, common, ncommon, full);
        assert_int_equal(nl, want->nlabels - 1); /* __name__ is the name field */
        for (size_t j = 0; j < nl; j++) {
            assert_true(ndt_str_eq(full[j].name, want->labels[j + 1].name));
            assert_true(ndt_str_eq(full[j].value, want->labels[j + 1].value));
        }
    }
    size_t size;
    assert_int_equal(avro_value_sizeof(&rec, &size), 0);
    assert_int_equal(size, len);
    char *again = malloc(len + 1);
    avro_writer_t writer = avro_writer_memory(again, (int64_t)len + 1);
    assert_int_equal(avro_value_write(writer, &rec), 0);
    assert_memory_equal(again, payload, len);
    free(again);
    avro_writer_free(writer);
    avro_reader_free(reader);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    return written;
}

static const ingest_label avro_l1[] = { L("__name__", "node_load1"), L("instance", "h:9100"),
                                        L("job", "node") };
static const ingest_label avro_l2[] = { { S("__name__"), S("weird") },
                                        { S("v"), S("\xc3\xa9t\xc3\xa9 \"q\"\n") } };
static const ingest_label avro_l3[] = { L("__name__", "up") };

static void avro_round_trips_through_avro_c(void **state)
{
    (void)state;
    const ingest_series series[] = {
        { avro_l1, 3, 0.25, TS_EXAMPLE, INGEST_TYPE_GAUGE },
        { avro_l2, 2, -1e300, TS_EXAMPLE + 1, INGEST_TYPE_STATESET },
        { avro_l3, 1, NAN, -1, INGEST_TYPE_UNKNOWN },
        { avro_l3, 1, INFINITY, INT64_MAX, INGEST_TYPE_COUNTER },
    };
    ingest_batch batch = { NDT_STR_LIT("node"), NDT_STR_LIT("h:9100"), TS_EXAMPLE, series, 4 };
    ingest_avro_encoder *enc;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ingest_avro_encoder_new(&enc, err, sizeof(err)), NDT_OK);
    ndt_buf b;
    ndt_buf_init(&b, 0);
    assert_int_equal(ingest_encode_avro(enc, &batch, -1, &b), NDT_OK);
    check_avro_decodes_to(b.data, b.len, &batch);

    /* An empty scrape is a valid record too. */
    ingest_batch empty = { NDT_STR_LIT("j"), NDT_STR_LIT("i"), 0, NULL, 0 };
    ndt_buf_reset(&b);
    assert_int_equal(ingest_encode_avro(enc, &empty, -1, &b), NDT_OK);
    check_avro_decodes_to(b.data, b.len, &empty);
    ndt_buf_free(&b);
    ingest_avro_encoder_free(enc);
}

/* Record labels (version 3): what every sample shares is written once;
 * a sample keeps what differs, and names a record label it lacks with the
 * empty value.  The strings of the common labels are other copies than
 * the series' (no shared pointers), so the byte comparison is what finds
 * them; the series' labels in series[0] are the very same strings. */
static void avro_record_labels_written_once(void **state)
{
    (void)state;
    static const ingest_label common[] = { L("env", "prod"), L("instance", "h:9100"),
                                           L("job", "node") };
    static const ingest_label same[] = { L("__name__", "a"), L("cpu", "0"), L("env", "prod"),
                                         L("instance", "h:9100"), L("job", "node") };
    /* Another job value (honor_labels), env dropped by relabeling. */
    static const ingest_label other[] = { L("__name__", "b"), L("instance", "h:9100"),
                                          L("job", "exporter"), L("zone", "z1") };
    /* None of the record's labels, labels before and after them by name. */
    static const ingest_label bare[] = { L("__name__", "c"), L("a", "1"), L("z", "2") };
    ingest_label wide[80];
    static char names[70][16];
    wide[0] = (ingest_label)L("__name__", "wide");
    for (int k = 0; k < 70; k++) { /* over 63 labels: a two-byte block count */
        snprintf(names[k], sizeof(names[k]), "l%02d", k);
        wide[k + 1] = (ingest_label){ ndt_str_from_cstr(names[k]), S("v") };
    }
    ingest_label shared[3];
    memcpy(shared, &same[2], sizeof(shared)); /* the same strings, as a scrape has them */
    const ingest_series series[] = {
        { same, 5, 1, TS_EXAMPLE, INGEST_TYPE_GAUGE },
        { other, 4, 2, TS_EXAMPLE - 5, INGEST_TYPE_COUNTER },
        { bare, 3, 3, TS_EXAMPLE, INGEST_TYPE_UNKNOWN },
        { wide, 71, 4, TS_EXAMPLE, INGEST_TYPE_GAUGE },
    };
    ingest_avro_encoder *enc;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ingest_avro_encoder_new(&enc, err, sizeof(err)), NDT_OK);
    ndt_buf b;
    ndt_buf_init(&b, 0);
    for (int pass = 0; pass < 2; pass++) {
        ingest_batch batch = { NDT_STR_LIT("node"), NDT_STR_LIT("h:9100"), TS_EXAMPLE, series, 4,
                               pass ? shared : common, 3 };
        ndt_buf_reset(&b);
        assert_int_equal(ingest_encode_avro(enc, &batch, -1, &b), NDT_OK);
        /* same: cpu; other: env "", job, zone; bare: a, env "", instance "",
         * job "", z; wide: its 70 and the record's three as "". */
        assert_int_equal(check_avro_decodes_to(b.data, b.len, &batch), 1 + 3 + 5 + 73);
    }
    /* Without record labels every label goes with its sample. */
    ingest_batch plain = { NDT_STR_LIT("node"), NDT_STR_LIT("h:9100"), TS_EXAMPLE, series, 4 };
    ndt_buf_reset(&b);
    assert_int_equal(ingest_encode_avro(enc, &plain, -1, &b), NDT_OK);
    assert_int_equal(check_avro_decodes_to(b.data, b.len, &plain), 4 + 3 + 2 + 70);
    ndt_buf_free(&b);
    ingest_avro_encoder_free(enc);
}

/* A series that inherits the common labels (its labels only its own, as
 * the scraper builds them) encodes to the very bytes of the same series
 * with every label written out; and ingest_series_full_labels, which the
 * sink uses for json and influx, gives back the full set. */
static void avro_inheriting_series_same_bytes(void **state)
{
    (void)state;
    static const ingest_label common[] = { L("env", "prod"), L("instance", "h:9100"),
                                           L("job", "node") };
    static const ingest_label full_a[] = { L("__name__", "a"), L("cpu", "0"), L("env", "prod"),
                                           L("instance", "h:9100"), L("job", "node") };
    static const ingest_label own_a[] = { L("__name__", "a"), L("cpu", "0") };
    /* An own label that overrides a common one (an external label). */
    static const ingest_label full_b[] = { L("__name__", "b"), L("env", "dev"),
                                           L("instance", "h:9100"), L("job", "node"), L("z", "1") };
    static const ingest_label own_b[] = { L("__name__", "b"), L("env", "dev"), L("z", "1") };
    const ingest_series full[] = { { full_a, 5, 1, TS_EXAMPLE, INGEST_TYPE_GAUGE },
                                   { full_b, 5, 2, TS_EXAMPLE, INGEST_TYPE_GAUGE } };
    const ingest_series own[] = { { own_a, 2, 1, TS_EXAMPLE, INGEST_TYPE_GAUGE, NULL, 1 },
                                  { own_b, 3, 2, TS_EXAMPLE, INGEST_TYPE_GAUGE, NULL, 1 } };
    ingest_avro_encoder *enc;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ingest_avro_encoder_new(&enc, err, sizeof(err)), NDT_OK);
    ndt_buf a, b;
    ndt_buf_init(&a, 0);
    ndt_buf_init(&b, 0);
    ingest_batch fb = { NDT_STR_LIT("node"), NDT_STR_LIT("h:9100"), TS_EXAMPLE, full, 2, common, 3 };
    ingest_batch ob = { NDT_STR_LIT("node"), NDT_STR_LIT("h:9100"), TS_EXAMPLE, own, 2, common, 3 };
    assert_int_equal(ingest_encode_avro(enc, &fb, -1, &a), NDT_OK);
    assert_int_equal(ingest_encode_avro(enc, &ob, -1, &b), NDT_OK);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    for (int k = 0; k < 2; k++) {
        ingest_label out[8];
        size_t n = ingest_series_full_labels(&own[k], common, 3, out);
        assert_int_equal(n, full[k].nlabels);
        for (size_t i = 0; i < n; i++) {
            assert_true(ndt_str_eq(out[i].name, full[k].labels[i].name));
            assert_true(ndt_str_eq(out[i].value, full[k].labels[i].value));
        }
    }
    ndt_buf_free(&a);
    ndt_buf_free(&b);
    ingest_avro_encoder_free(enc);
}

static void avro_confluent_framing(void **state)
{
    (void)state;
    const ingest_series series[] = { { avro_l1, 3, 1, 1, INGEST_TYPE_GAUGE } };
    ingest_batch batch = { NDT_STR_LIT("node"), NDT_STR_LIT("h:9100"), 1, series, 1 };
    ingest_avro_encoder *enc;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ingest_avro_encoder_new(&enc, err, sizeof(err)), NDT_OK);
    ndt_buf plain, framed;
    ndt_buf_init(&plain, 0);
    ndt_buf_init(&framed, 0);
    assert_int_equal(ingest_encode_avro(enc, &batch, -1, &plain), NDT_OK);
    assert_int_equal(ingest_encode_avro(enc, &batch, 0x01020304, &framed), NDT_OK);
    assert_int_equal(framed.len, plain.len + 5);
    const unsigned char head[] = { 0x00, 0x01, 0x02, 0x03, 0x04 };
    assert_memory_equal(framed.data, head, 5);
    assert_memory_equal(framed.data + 5, plain.data, plain.len);
    check_avro_decodes_to(framed.data + 5, framed.len - 5, &batch);
    /* Schema id 0 is a valid registry id: framing is on for any id >= 0. */
    ndt_buf_reset(&framed);
    assert_int_equal(ingest_encode_avro(enc, &batch, 0, &framed), NDT_OK);
    assert_int_equal(framed.len, plain.len + 5);
    assert_memory_equal(framed.data, "\0\0\0\0\0", 5);
    /* First bytes of the body, by hand: job "node" = zigzag(4)=0x08 'n' 'o' 'd' 'e'. */
    assert_memory_equal(plain.data, "\x08node\x0ch:9100\x02", 12);
    ndt_buf_free(&plain);
    ndt_buf_free(&framed);
    ingest_avro_encoder_free(enc);
}

static void avro_refuses_at_buffer_limit_and_keeps_buffer(void **state)
{
    (void)state;
    const ingest_series series[] = { { avro_l1, 3, 1, 1, INGEST_TYPE_GAUGE } };
    ingest_batch batch = { NDT_STR_LIT("node"), NDT_STR_LIT("h:9100"), 1, series, 1 };
    ingest_avro_encoder *enc;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ingest_avro_encoder_new(&enc, err, sizeof(err)), NDT_OK);
    ndt_buf b;
    ndt_buf_init(&b, 40);
    assert_int_equal(ingest_encode_avro(enc, &batch, 7, &b), NDT_ERROR);
    assert_int_equal(b.len, 0);
    ndt_buf_free(&b);
    ingest_avro_encoder_free(enc);
}

static void format_names_parse_back(void **state)
{
    (void)state;
    ingest_format f;
    const char *names[] = { "avro", "json", "influx" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(names); i++) {
        assert_int_equal(ingest_format_parse(names[i], &f), NDT_OK);
        assert_string_equal(ingest_format_name(f), names[i]);
    }
    assert_int_equal(ingest_format_parse("protobuf", &f), NDT_ERROR);
}

/* A native histogram as the protobuf parser hands it over: schema 3,
 * positive buckets 0, 1 and 4, one negative bucket -2. */
static const int32_t nh_pos_index[] = { 0, 1, 4 };
static const double nh_pos_count[] = { 3, 2, 6.5 };
static const int32_t nh_neg_index[] = { -2 };
static const double nh_neg_count[] = { 1 };
static const ingest_native_histogram nh_example = {
    3, 0.001, 2, 14.5, 30.25, { nh_pos_index, nh_pos_count, 3 }, { nh_neg_index, nh_neg_count, 1 },
};
static const ingest_label nh_labels[] = { L("__name__", "rpc_seconds_count"), L("job", "j") };

static void native_histogram_in_json_and_influx(void **state)
{
    (void)state;
    ingest_series s = { nh_labels, 2, 14.5, TS_EXAMPLE, INGEST_TYPE_HISTOGRAM, &nh_example };
    char *got = encode_json_cstr(&s);
    assert_string_equal(got, "{\"timestamp\":\"2026-01-02T03:04:05.678Z\",\"value\":\"14.5\","
                             "\"name\":\"rpc_seconds_count\",\"labels\":{\"__name__\":"
                             "\"rpc_seconds_count\",\"job\":\"j\"},\"native_histogram\":"
                             "{\"schema\":3,\"zero_threshold\":\"0.001\",\"zero_count\":\"2\","
                             "\"count\":\"14.5\",\"sum\":\"30.25\",\"positive\":[[0,\"3\"],"
                             "[1,\"2\"],[4,\"6.5\"]],\"negative\":[[-2,\"1\"]]}}");
    free(got);
    got = encode_influx_cstr(&s);
    assert_string_equal(got, "rpc_seconds_count,job=j value=14.5,nh_schema=3i,"
                             "nh_zero_threshold=0.001,nh_zero_count=2,nh_sum=30.25,nh_p0=3,"
                             "nh_p1=2,nh_p4=6.5,nh_n-2=1 1767323045678\n");
    free(got);
    /* A NaN sum has no line-protocol spelling: left out, the rest kept. */
    ingest_native_histogram nan_sum = nh_example;
    nan_sum.sum = NAN;
    s.native = &nan_sum;
    got = encode_influx_cstr(&s);
    assert_null(strstr(got, "nh_sum"));
    assert_non_null(strstr(got, "nh_p4=6.5"));
    free(got);
}

/* Avro C reads the native histogram back field by field; the re-encoding
 * check of check_avro_decodes_to covers the byte layout of both union
 * branches. */
static void native_histogram_in_avro(void **state)
{
    (void)state;
    const ingest_series series[] = {
        { avro_l1, 3, 0.25, TS_EXAMPLE, INGEST_TYPE_GAUGE, NULL },
        { nh_labels, 2, 14.5, TS_EXAMPLE, INGEST_TYPE_HISTOGRAM, &nh_example },
    };
    ingest_batch batch = { NDT_STR_LIT("j"), NDT_STR_LIT("i"), TS_EXAMPLE, series, 2 };
    ingest_avro_encoder *enc;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ingest_avro_encoder_new(&enc, err, sizeof(err)), NDT_OK);
    ndt_buf b;
    ndt_buf_init(&b, 0);
    assert_int_equal(ingest_encode_avro(enc, &batch, -1, &b), NDT_OK);
    check_avro_decodes_to(b.data, b.len, &batch);

    avro_schema_t schema;
    assert_int_equal(avro_schema_from_json_length(ingest_avro_schema_text(),
                                                  strlen(ingest_avro_schema_text()), &schema),
                     0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec, samples, sample, u, nh, v, buckets, bucket;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    avro_reader_t reader = avro_reader_memory(b.data, (int64_t)b.len);
    assert_int_equal(avro_value_read(reader, &rec), 0);
    assert_int_equal(avro_value_get_by_name(&rec, "samples", &samples, NULL), 0);
    int branch;
    assert_int_equal(avro_value_get_by_index(&samples, 0, &sample, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&sample, "native_histogram", &u, NULL), 0);
    assert_int_equal(avro_value_get_discriminant(&u, &branch), 0);
    assert_int_equal(branch, 0);
    assert_int_equal(avro_value_get_by_index(&samples, 1, &sample, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&sample, "native_histogram", &u, NULL), 0);
    assert_int_equal(avro_value_get_discriminant(&u, &branch), 0);
    assert_int_equal(branch, 1);
    assert_int_equal(avro_value_get_current_branch(&u, &nh), 0);
    int32_t i32;
    double d;
    assert_int_equal(avro_value_get_by_name(&nh, "schema", &v, NULL), 0);
    assert_int_equal(avro_value_get_int(&v, &i32), 0);
    assert_int_equal(i32, 3);
    assert_int_equal(avro_value_get_by_name(&nh, "sum", &v, NULL), 0);
    assert_int_equal(avro_value_get_double(&v, &d), 0);
    assert_true(d == 30.25);
    size_t n;
    assert_int_equal(avro_value_get_by_name(&nh, "positive", &buckets, NULL), 0);
    assert_int_equal(avro_value_get_size(&buckets, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(avro_value_get_by_index(&buckets, 2, &bucket, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&bucket, "index", &v, NULL), 0);
    assert_int_equal(avro_value_get_int(&v, &i32), 0);
    assert_int_equal(i32, 4);
    assert_int_equal(avro_value_get_by_name(&bucket, "count", &v, NULL), 0);
    assert_int_equal(avro_value_get_double(&v, &d), 0);
    assert_true(d == 6.5);
    assert_int_equal(avro_value_get_by_name(&nh, "negative", &buckets, NULL), 0);
    assert_int_equal(avro_value_get_by_index(&buckets, 0, &bucket, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&bucket, "index", &v, NULL), 0);
    assert_int_equal(avro_value_get_int(&v, &i32), 0);
    assert_int_equal(i32, -2);
    avro_reader_free(reader);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    ndt_buf_free(&b);
    ingest_avro_encoder_free(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_matches_prometheus_kafka_adapter_shape),
        cmocka_unit_test(json_special_values_and_whole_seconds),
        cmocka_unit_test(json_escapes_hostile_bytes_and_stays_valid),
        cmocka_unit_test(json_refuses_at_buffer_limit_and_keeps_buffer),
        cmocka_unit_test(go_float_spelling),
        cmocka_unit_test(go_float_round_trips_without_exponent),
        cmocka_unit_test(rfc3339_ms_known_instants),
        cmocka_unit_test(rfc3339_ms_agrees_with_libc),
        cmocka_unit_test(influx_exact_lines),
        cmocka_unit_test(influx_skips_nan_and_inf),
        cmocka_unit_test(influx_escaping_matches_telegraf_fixture),
        cmocka_unit_test(avro_schema_is_the_avsc_file),
        cmocka_unit_test(avro_round_trips_through_avro_c),
        cmocka_unit_test(avro_record_labels_written_once),
        cmocka_unit_test(avro_inheriting_series_same_bytes),
        cmocka_unit_test(avro_confluent_framing),
        cmocka_unit_test(avro_refuses_at_buffer_limit_and_keeps_buffer),
        cmocka_unit_test(format_names_parse_back),
        cmocka_unit_test(native_histogram_in_json_and_influx),
        cmocka_unit_test(native_histogram_in_avro),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
