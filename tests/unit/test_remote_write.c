/*
 * test_remote_write.c: decoding remote-write requests.  Requests are built
 * with protobuf-c's own packer and libsnappy's compressor (independent of
 * the decoder under test), then decoded and compared field by field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "ingest/remote.pb-c.h"
#include "ingest/remote_write.h"

/* Packs and snappy-compresses a request; caller frees. */
static char *build_body(const NdtPrompb__WriteRequest *req, size_t *len)
{
    size_t raw_len = ndt_prompb__write_request__get_packed_size(req);
    uint8_t *raw = malloc(raw_len ? raw_len : 1);
    ndt_prompb__write_request__pack(req, raw);
    size_t cap = snappy_max_compressed_length(raw_len);
    char *out = malloc(cap);
    assert_int_equal(snappy_compress((const char *)raw, raw_len, out, &cap), SNAPPY_OK);
    free(raw);
    *len = cap;
    return out;
}

static void decodes_series_and_orders_labels(void **state)
{
    (void)state;
    NdtPrompb__Label l_job = NDT_PROMPB__LABEL__INIT, l_name = NDT_PROMPB__LABEL__INIT,
                     l_inst = NDT_PROMPB__LABEL__INIT, l_empty = NDT_PROMPB__LABEL__INIT,
                     l_upper = NDT_PROMPB__LABEL__INIT;
    l_job.name = "job";
    l_job.value = "node";
    l_name.name = "__name__";
    l_name.value = "node_load1";
    l_inst.name = "instance";
    l_inst.value = "h:9100";
    l_empty.name = "empty";
    l_empty.value = "";
    l_upper.name = "Zone";
    l_upper.value = "a";
    /* Deliberately unsorted, with an empty label and an uppercase name. */
    NdtPrompb__Label *labels[] = { &l_job, &l_inst, &l_name, &l_empty, &l_upper };
    NdtPrompb__Sample s1 = NDT_PROMPB__SAMPLE__INIT, s2 = NDT_PROMPB__SAMPLE__INIT;
    s1.value = 0.25;
    s1.timestamp = 1767225600123;
    s2.value = NAN;
    s2.timestamp = 1767225600143;
    NdtPrompb__Sample *samples[] = { &s1, &s2 };
    NdtPrompb__TimeSeries ts = NDT_PROMPB__TIME_SERIES__INIT;
    ts.n_labels = 5;
    ts.labels = labels;
    ts.n_samples = 2;
    ts.samples = samples;
    NdtPrompb__TimeSeries nameless = NDT_PROMPB__TIME_SERIES__INIT;
    nameless.n_labels = 1;
    nameless.labels = &labels[0];
    nameless.n_samples = 1;
    nameless.samples = samples;
    NdtPrompb__TimeSeries *series[] = { &ts, &nameless };
    NdtPrompb__WriteRequest req = NDT_PROMPB__WRITE_REQUEST__INIT;
    req.n_timeseries = 2;
    req.timeseries = series;

    size_t len;
    char *body = build_body(&req, &len);
    ndt_arena arena;
    ndt_arena_init(&arena, 4096, 1 << 20);
    ingest_rw_request out;
    char err[256];
    assert_int_equal(ingest_rw_decode(body, len, 1 << 20, &arena, &out, err, sizeof(err)), 0);
    assert_int_equal(out.ntimeseries, 2);
    assert_int_equal(out.nseries, 2);
    assert_int_equal(out.unnamed_skipped, 1);
    const ingest_series *s = &out.series[0];
    assert_int_equal(s->nlabels, 4); /* the empty label is gone */
    const char *want[][2] = { { "__name__", "node_load1" }, { "Zone", "a" }, { "instance", "h:9100" },
                              { "job", "node" } };
    for (size_t i = 0; i < 4; i++) {
        assert_true(ndt_str_eq_cstr(s->labels[i].name, want[i][0]));
        assert_true(ndt_str_eq_cstr(s->labels[i].value, want[i][1]));
    }
    assert_true(s->value == 0.25);
    assert_int_equal(s->timestamp_ms, 1767225600123);
    assert_true(isnan(out.series[1].value));
    assert_int_equal(out.series[1].timestamp_ms, 1767225600143);
    free(body);
    ndt_arena_free(&arena);
}

static void rejects_bad_bodies_with_reasons(void **state)
{
    (void)state;
    ndt_arena arena;
    ndt_arena_init(&arena, 4096, 1 << 20);
    ingest_rw_request out;
    char err[256];

    /* Not snappy at all. */
    assert_int_equal(ingest_rw_decode("\xff\xff\xff\xff\xff", 5, 1 << 20, &arena, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "snappy"));

    /* Valid snappy around bytes that are not a WriteRequest. */
    const char junk[] = "\x0a\xff\xff\xff\xff\x0f";
    char packed[64];
    size_t plen = sizeof(packed);
    assert_int_equal(snappy_compress(junk, sizeof(junk) - 1, packed, &plen), SNAPPY_OK);
    assert_int_equal(ingest_rw_decode(packed, plen, 1 << 20, &arena, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "protobuf"));

    /* A truncated valid request. */
    NdtPrompb__Label l = NDT_PROMPB__LABEL__INIT;
    l.name = "__name__";
    l.value = "up";
    NdtPrompb__Label *ls[] = { &l };
    NdtPrompb__Sample smp = NDT_PROMPB__SAMPLE__INIT;
    NdtPrompb__Sample *ss[] = { &smp };
    NdtPrompb__TimeSeries ts = NDT_PROMPB__TIME_SERIES__INIT;
    ts.n_labels = 1;
    ts.labels = ls;
    ts.n_samples = 1;
    ts.samples = ss;
    NdtPrompb__TimeSeries *tss[] = { &ts };
    NdtPrompb__WriteRequest req = NDT_PROMPB__WRITE_REQUEST__INIT;
    req.n_timeseries = 1;
    req.timeseries = tss;
    uint8_t raw[128];
    size_t raw_len = ndt_prompb__write_request__pack(&req, raw);
    plen = sizeof(packed);
    assert_int_equal(snappy_compress((const char *)raw, raw_len - 3, packed, &plen), SNAPPY_OK);
    assert_int_equal(ingest_rw_decode(packed, plen, 1 << 20, &arena, &out, err, sizeof(err)), -1);

    /* A NUL byte inside a label value is refused with its own reason. */
    const char nul_label[] = "\x0a\x0f\x0a\x0d\x0a\x08__name__\x12\x01\x00";
    plen = sizeof(packed);
    assert_int_equal(snappy_compress(nul_label, sizeof(nul_label) - 1, packed, &plen), SNAPPY_OK);
    assert_int_equal(ingest_rw_decode(packed, plen, 1 << 20, &arena, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NUL"));

    /* A decoded size over the limit is refused before decompressing. */
    size_t len;
    char *body = build_body(&req, &len);
    assert_int_equal(ingest_rw_decode(body, len, 4, &arena, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "exceeds the limit"));
    free(body);
    ndt_arena_free(&arena);
}

static void arena_cap_bounds_a_request(void **state)
{
    (void)state;
    enum { N = 2000 };
    NdtPrompb__Label l = NDT_PROMPB__LABEL__INIT;
    l.name = "__name__";
    l.value = "a_fairly_long_metric_name_to_take_some_room";
    NdtPrompb__Label *ls[] = { &l };
    NdtPrompb__Sample smp = NDT_PROMPB__SAMPLE__INIT;
    NdtPrompb__Sample *ss[] = { &smp };
    NdtPrompb__TimeSeries ts = NDT_PROMPB__TIME_SERIES__INIT;
    ts.n_labels = 1;
    ts.labels = ls;
    ts.n_samples = 1;
    ts.samples = ss;
    NdtPrompb__TimeSeries *tss[N];
    for (size_t i = 0; i < N; i++)
        tss[i] = &ts;
    NdtPrompb__WriteRequest req = NDT_PROMPB__WRITE_REQUEST__INIT;
    req.n_timeseries = N;
    req.timeseries = tss;
    size_t len;
    char *body = build_body(&req, &len);
    ndt_arena arena;
    ndt_arena_init(&arena, 4096, 64 * 1024); /* far too small for 2000 series */
    ingest_rw_request out;
    char err[256];
    assert_int_equal(ingest_rw_decode(body, len, 1 << 20, &arena, &out, err, sizeof(err)), -1);
    assert_true(arena.allocated <= 64 * 1024);
    ndt_arena_free(&arena);
    ndt_arena_init(&arena, 1 << 16, 16 << 20);
    assert_int_equal(ingest_rw_decode(body, len, 1 << 20, &arena, &out, err, sizeof(err)), 0);
    assert_int_equal(out.nseries, N);
    free(body);
    ndt_arena_free(&arena);
}

/* The decoder reads a series' labels on the stack up to 64 of them and
 * starts over with room in the arena beyond: a series of 100 labels, sent
 * in reverse order, comes out whole and sorted, and so does the ordinary
 * series after it. */
static void many_labels_and_many_series(void **state)
{
    (void)state;
    enum { NLABELS = 100, NSERIES = 300 };
    static char names[NLABELS][16];
    NdtPrompb__Label big[NLABELS + 1], small[2];
    NdtPrompb__Label *big_ls[NLABELS + 1], *small_ls[2];
    for (size_t i = 0; i < NLABELS; i++) {
        ndt_prompb__label__init(&big[i]);
        snprintf(names[i], sizeof(names[i]), "l%03zu", NLABELS - 1 - i); /* l099 first */
        big[i].name = names[i];
        big[i].value = "v";
        big_ls[i] = &big[i];
    }
    ndt_prompb__label__init(&big[NLABELS]);
    big[NLABELS].name = "__name__";
    big[NLABELS].value = "wide";
    big_ls[NLABELS] = &big[NLABELS];
    ndt_prompb__label__init(&small[0]);
    small[0].name = "__name__";
    small[0].value = "narrow";
    ndt_prompb__label__init(&small[1]);
    small[1].name = "instance";
    small[1].value = "h:1";
    small_ls[0] = &small[0];
    small_ls[1] = &small[1];

    /* 300 series, each one sample of its own value: the series array
     * grows several times past its first guess. */
    NdtPrompb__Sample samples[NSERIES];
    NdtPrompb__Sample *sample_ptrs[NSERIES];
    NdtPrompb__TimeSeries ts[NSERIES];
    NdtPrompb__TimeSeries *ts_ptrs[NSERIES];
    for (size_t i = 0; i < NSERIES; i++) {
        ndt_prompb__sample__init(&samples[i]);
        samples[i].value = (double)i;
        samples[i].timestamp = 1000 + (int64_t)i;
        sample_ptrs[i] = &samples[i];
        ndt_prompb__time_series__init(&ts[i]);
        ts[i].n_labels = i == 0 ? NLABELS + 1 : 2;
        ts[i].labels = i == 0 ? big_ls : small_ls;
        ts[i].n_samples = 1;
        ts[i].samples = &sample_ptrs[i];
        ts_ptrs[i] = &ts[i];
    }
    NdtPrompb__WriteRequest req = NDT_PROMPB__WRITE_REQUEST__INIT;
    req.n_timeseries = NSERIES;
    req.timeseries = ts_ptrs;
    size_t len;
    char *body = build_body(&req, &len);
    ndt_arena arena;
    ndt_arena_init(&arena, 4096, 4 << 20);
    ingest_rw_request out;
    char err[256];
    assert_int_equal(ingest_rw_decode(body, len, 1 << 20, &arena, &out, err, sizeof(err)), 0);
    assert_int_equal(out.nseries, NSERIES);
    const ingest_series *s = &out.series[0];
    assert_int_equal(s->nlabels, NLABELS + 1);
    assert_true(ndt_str_eq_cstr(s->labels[0].value, "wide"));
    for (size_t i = 1; i <= NLABELS; i++) {
        char want[16];
        snprintf(want, sizeof(want), "l%03zu", i - 1);
        assert_true(ndt_str_eq_cstr(s->labels[i].name, want));
    }
    for (size_t i = 1; i < NSERIES; i++) {
        s = &out.series[i];
        assert_int_equal(s->nlabels, 2);
        assert_true(ndt_str_eq_cstr(s->labels[0].value, "narrow"));
        assert_true(ndt_str_eq_cstr(s->labels[1].value, "h:1"));
        assert_true(s->value == (double)i);
        assert_int_equal(s->timestamp_ms, 1000 + (int64_t)i);
    }
    free(body);
    ndt_arena_free(&arena);
}

/* Layouts the decoder's in-place fast paths do not take, written byte by
 * byte: a Label with its value before its name, a name of 200 bytes (a
 * two-byte length), a Sample with its timestamp first, and one whose value
 * is 0 (proto3 leaves the field out). */
static void decodes_the_uncommon_layouts(void **state)
{
    (void)state;
    unsigned char raw[512];
    size_t n = 0;
    char longname[200];
    memset(longname, 'x', sizeof(longname));
    /* TimeSeries body, length patched in below */
    raw[n++] = 0x0a;
    size_t ts_len_at = n;
    raw[n++] = 0x81; /* two-byte length placeholder */
    raw[n++] = 0x00;
    size_t ts_start = n;
    /* Label { value = "up", name = "__name__" } (reversed) */
    const unsigned char l1[] = { 0x0a, 0x0e, 0x12, 0x02, 'u', 'p', 0x0a, 0x08, '_', '_', 'n', 'a', 'm', 'e', '_', '_' };
    memcpy(raw + n, l1, sizeof(l1));
    n += sizeof(l1);
    /* Label { name = 200 x 'x', value = "v" } */
    raw[n++] = 0x0a;
    raw[n++] = 3 + 200 + 3 - 128 + 0x80; /* 206 = 0xce 0x01 */
    raw[n++] = 0x01;
    raw[n++] = 0x0a;
    raw[n++] = 0xc8; /* 200 */
    raw[n++] = 0x01;
    memcpy(raw + n, longname, sizeof(longname));
    n += sizeof(longname);
    raw[n++] = 0x12;
    raw[n++] = 0x01;
    raw[n++] = 'v';
    /* Sample { timestamp = 5, value = 1.5 } (reversed) */
    const unsigned char s1[] = { 0x12, 0x0b, 0x10, 0x05, 0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f };
    memcpy(raw + n, s1, sizeof(s1));
    n += sizeof(s1);
    /* Sample { timestamp = 7 } (value 0 left out) */
    const unsigned char s2[] = { 0x12, 0x02, 0x10, 0x07 };
    memcpy(raw + n, s2, sizeof(s2));
    n += sizeof(s2);
    size_t ts_len = n - ts_start;
    raw[ts_len_at] = (unsigned char)(0x80 | (ts_len & 0x7f));
    raw[ts_len_at + 1] = (unsigned char)(ts_len >> 7);

    char packed[1024];
    size_t plen = sizeof(packed);
    assert_int_equal(snappy_compress((const char *)raw, n, packed, &plen), SNAPPY_OK);
    ndt_arena arena;
    ndt_arena_init(&arena, 4096, 1 << 20);
    ingest_rw_request out;
    char err[256];
    assert_int_equal(ingest_rw_decode(packed, plen, 1 << 20, &arena, &out, err, sizeof(err)), 0);
    assert_int_equal(out.nseries, 2);
    for (size_t i = 0; i < 2; i++) {
        const ingest_series *s = &out.series[i];
        assert_int_equal(s->nlabels, 2);
        assert_true(ndt_str_eq_cstr(s->labels[0].value, "up"));
        assert_int_equal(s->labels[1].name.len, 200);
        assert_memory_equal(s->labels[1].name.ptr, longname, 200);
        assert_true(ndt_str_eq_cstr(s->labels[1].value, "v"));
    }
    assert_true(out.series[0].value == 1.5);
    assert_int_equal(out.series[0].timestamp_ms, 5);
    assert_true(out.series[1].value == 0);
    assert_int_equal(out.series[1].timestamp_ms, 7);
    ndt_arena_free(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_series_and_orders_labels),
        cmocka_unit_test(rejects_bad_bodies_with_reasons),
        cmocka_unit_test(arena_cap_bounds_a_request),
        cmocka_unit_test(many_labels_and_many_series),
        cmocka_unit_test(decodes_the_uncommon_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
