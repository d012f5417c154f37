/*
 * test_features.c: the dataset reader, the feature values, regimes,
 * trimming (IQR and P1/P99, each checked against bounds computed here
 * independently) and row selectors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/features.h"

static int read_text(const char *text, feat_dataset *ds, char *err, size_t errlen)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    int rc = feat_csv_read_stream(f, "t.csv", 0, ds, err, errlen);
    fclose(f);
    return rc;
}

static void features_exact_on_hand_made_rows(void **state)
{
    (void)state;
    const char *csv = FEAT_RAW_HEADER ",extra\n"
                      "1000,400,4,6.0,0.5,120.0,30.5,40.0,99.0,x\n"
                      "1020,200,2,3.0,0.25,100.0,20.0,10.0,0\n";
    feat_dataset ds;
    char err[256];
    assert_int_equal(read_text(csv, &ds, err, sizeof(err)), NDT_OK);
    assert_int_equal(ds.n, 2);
    double x[FEAT_DIM];
    feat_compute(&ds.rows[0], x);
    assert_true(x[FEAT_USERS] == 400 && x[FEAT_PODS] == 4);
    assert_true(x[FEAT_WORKLOAD_INTENSITY] == 100.0);
    assert_true(x[FEAT_CONGESTION_INDEX] == 1.5);
    assert_true(x[FEAT_BACKLOG_FLOW] == 0.125);
    assert_true(x[FEAT_COMPUTE_PRESSURE] == 150.5);
    assert_true(x[FEAT_MEMORY_DENSITY] == 10.0);
    /* The queue delay is the backlog estimate in ms, not divided by the
     * pods: the column is already a per-pod average. */
    assert_true(x[FEAT_QUEUE_DELAY] == 500.0);
    assert_true(fabs(feat_target(ds.rows[0].infer_ms) - log(100.0)) < 1e-12);
    assert_true(fabs(feat_target_inverse(feat_target(99.0)) - 99.0) < 1e-9);
    /* 400 users on 4 pods and 200 on 2 share the scale-invariant indicators. */
    double x2[FEAT_DIM];
    feat_compute(&ds.rows[1], x2);
    assert_true(x2[FEAT_WORKLOAD_INTENSITY] == x[FEAT_WORKLOAD_INTENSITY]);
    assert_true(x2[FEAT_CONGESTION_INDEX] == x[FEAT_CONGESTION_INDEX]);
    assert_true(x2[FEAT_BACKLOG_FLOW] == x[FEAT_BACKLOG_FLOW]);
    assert_true(feat_target(0) == 0);
    /* The backlog baseline: ln(1 + 1000 * backlog_flow * pods) = ln(1 + 500). */
    assert_true(fabs(feat_baseline_value(FEAT_BASELINE_BACKLOG, x) - log(501.0)) < 1e-12);
    assert_true(feat_baseline_value(FEAT_BASELINE_NONE, x) == 0);
    feat_dataset_free(&ds);
}

static void reader_names_the_bad_line(void **state)
{
    (void)state;
    static const struct {
        const char *csv, *want;
    } cases[] = {
        { "timestamp_ms,users\n1,2\n", "t.csv:1: header" },
        { "", "t.csv:1: empty" },
        { FEAT_RAW_HEADER "\n1,200,1,1,1,1,1,1,5\n2,200,1,1,1,1,1,1\n", "t.csv:3: 8 fields" },
        { FEAT_RAW_HEADER "\n1,200,0,1,1,1,1,1,5\n", "t.csv:2: pods" },
        { FEAT_RAW_HEADER "\n1,200,1,nan,1,1,1,1,5\n", "t.csv:2: avg_depth_on_enqueue" },
        { FEAT_RAW_HEADER "\n1,2x0,1,1,1,1,1,1,5\n", "t.csv:2: users" },
        { FEAT_RAW_HEADER "\n1,200,1,1,1,1,1,1,-5\n", "t.csv:2: avg_total_infer_ms" },
        { FEAT_RAW_HEADER "\n1,200,1,1,1,1e308,1e308,1,5\n", "t.csv:2: avg_cpu_process_pct" },
        { FEAT_RAW_HEADER "\n", "no data rows" },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        feat_dataset ds;
        char err[256] = "";
        assert_int_equal(read_text(cases[i].csv, &ds, err, sizeof(err)), NDT_EBADCONF);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
    }
}

static void reader_enforces_the_row_cap(void **state)
{
    (void)state;
    const char *csv = FEAT_RAW_HEADER "\n1,1,1,1,1,1,1,1,1\n2,1,1,1,1,1,1,1,1\n3,1,1,1,1,1,1,1,1\n";
    FILE *f = fmemopen((void *)csv, strlen(csv), "r");
    feat_dataset ds;
    char err[256];
    assert_int_equal(feat_csv_read_stream(f, "t.csv", 2, &ds, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "t.csv:4: more than 2 rows"));
    fclose(f);
}

/* A dataset of two regimes whose targets are given; other columns fixed. */
static void make_dataset(feat_dataset *ds, const double *a, size_t na, const double *b, size_t nb)
{
    ds->n = ds->cap = na + nb;
    ds->rows = calloc(ds->n, sizeof(feat_raw));
    /* Interleave the regimes so trimming must keep order across them. */
    size_t ia = 0, ib = 0;
    for (size_t i = 0; i < ds->n; i++) {
        int take_a = (i % 2 == 0 && ia < na) || ib >= nb;
        feat_raw *r = &ds->rows[i];
        r->timestamp_ms = (int64_t)i;
        r->users = take_a ? 200 : 600;
        r->pods = take_a ? 1 : 3;
        r->infer_ms = take_a ? a[ia++] : b[ib++];
    }
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The independent reference: numpy-style linear quantile on a copy. */
static double ref_quantile(const double *v, size_t n, double p)
{
    double *s = malloc(n * sizeof(double));
    memcpy(s, v, n * sizeof(double));
    qsort(s, n, sizeof(double), cmp_d);
    double h = (double)(n - 1) * p, lo = floor(h);
    double q = s[(size_t)lo] + (h - lo) * ((size_t)lo + 1 < n ? s[(size_t)lo + 1] - s[(size_t)lo] : 0);
    free(s);
    return q;
}

static void check_trim(feat_trim_mode mode)
{
    double a[200], b[101];
    /* Regime a: a ramp with two far outliers; regime b: another spread. */
    for (size_t i = 0; i < 200; i++)
        a[i] = 50.0 + (double)((i * 37) % 200) * 0.1;
    a[7] = 5000.0;
    a[150] = 0.5;
    for (size_t i = 0; i < 101; i++)
        b[i] = 300.0 + (double)((i * 13) % 101);
    b[3] = 9000.0;
    feat_dataset ds;
    make_dataset(&ds, a, 200, b, 101);
    feat_dataset orig = { malloc(ds.n * sizeof(feat_raw)), ds.n, ds.n };
    memcpy(orig.rows, ds.rows, ds.n * sizeof(feat_raw));

    double lo[2], hi[2];
    const double *v[2] = { a, b };
    size_t nv[2] = { 200, 101 };
    for (int r = 0; r < 2; r++) {
        if (mode == FEAT_TRIM_IQR) {
            double q1 = ref_quantile(v[r], nv[r], 0.25), q3 = ref_quantile(v[r], nv[r], 0.75);
            lo[r] = q1 - 1.5 * (q3 - q1);
            hi[r] = q3 + 1.5 * (q3 - q1);
        } else {
            lo[r] = ref_quantile(v[r], nv[r], 0.01);
            hi[r] = ref_quantile(v[r], nv[r], 0.99);
        }
    }
    size_t dropped;
    char err[256];
    assert_int_equal(feat_trim(&ds, mode, &dropped, err, sizeof(err)), NDT_OK);
    /* Walk the original: every kept row appears next, in order; every
     * dropped row is outside its regime's bounds. */
    size_t k = 0, expect_dropped = 0;
    for (size_t i = 0; i < orig.n; i++) {
        int r = orig.rows[i].users == 600;
        double y = orig.rows[i].infer_ms;
        int keep = y >= lo[r] && y <= hi[r];
        if (keep) {
            assert_true(k < ds.n);
            assert_int_equal(ds.rows[k].timestamp_ms, orig.rows[i].timestamp_ms);
            k++;
        } else {
            expect_dropped++;
        }
    }
    assert_int_equal(k, ds.n);
    assert_int_equal(dropped, expect_dropped);
    assert_true(dropped >= 3); /* the planted outliers at least */
    for (size_t i = 0; i < ds.n; i++)
        assert_true(ds.rows[i].infer_ms != 5000.0 && ds.rows[i].infer_ms != 9000.0);
    feat_dataset_free(&ds);
    feat_dataset_free(&orig);
}

static void trim_iqr_drops_exactly_the_outliers(void **state)
{
    (void)state;
    check_trim(FEAT_TRIM_IQR);
}

static void trim_p1p99_drops_exactly_the_tails(void **state)
{
    (void)state;
    check_trim(FEAT_TRIM_P1P99);
}

static void trim_refuses_tiny_regimes_and_none_keeps_all(void **state)
{
    (void)state;
    double a[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 1000 }, b[2] = { 1, 2 };
    feat_dataset ds;
    size_t dropped = 99;
    char err[256];
    make_dataset(&ds, a, 10, b, 2);
    assert_int_equal(feat_trim(&ds, FEAT_TRIM_NONE, &dropped, err, sizeof(err)), NDT_OK);
    assert_int_equal(dropped, 0);
    assert_int_equal(ds.n, 12);
    assert_int_equal(feat_trim(&ds, FEAT_TRIM_IQR, &dropped, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "users=600 pods=3 has 2 rows"));
    assert_int_equal(ds.n, 12);
    feat_dataset_free(&ds);
}

static void regimes_group_and_sort(void **state)
{
    (void)state;
    const char *csv = FEAT_RAW_HEADER "\n"
                      "1,600,2,1,1,1,1,1,5\n2,200,3,1,1,1,1,1,5\n3,600,2,1,1,1,1,1,5\n"
                      "4,200,1,1,1,1,1,1,5\n5,200,3,1,1,1,1,1,5\n6,600,2,1,1,1,1,1,5\n";
    feat_dataset ds;
    char err[256];
    assert_int_equal(read_text(csv, &ds, err, sizeof(err)), NDT_OK);
    feat_regime *reg;
    size_t n;
    assert_int_equal(feat_regimes(&ds, &reg, &n, err, sizeof(err)), NDT_OK);
    assert_int_equal(n, 3);
    assert_true(reg[0].users == 200 && reg[0].pods == 1 && reg[0].n == 1);
    assert_true(reg[1].users == 200 && reg[1].pods == 3 && reg[1].n == 2);
    assert_true(reg[2].users == 600 && reg[2].pods == 2 && reg[2].n == 3);
    free(reg);
    feat_dataset_free(&ds);
}

static void selectors_parse_and_match(void **state)
{
    (void)state;
    feat_selector s;
    char err[256], text[64];
    assert_int_equal(feat_selector_parse("users=200,400", &s, err, sizeof(err)), NDT_OK);
    feat_raw r = { .users = 400, .pods = 1 };
    assert_true(feat_selector_match(&s, &r));
    r.users = 600;
    assert_false(feat_selector_match(&s, &r));
    feat_selector_format(&s, text, sizeof(text));
    assert_string_equal(text, "users=200,400");
    assert_int_equal(feat_selector_parse("pods=3", &s, err, sizeof(err)), NDT_OK);
    r.pods = 3;
    assert_true(feat_selector_match(&s, &r));
    assert_int_equal(feat_selector_parse("cpu=3", &s, err, sizeof(err)), NDT_EBADCONF);
    assert_int_equal(feat_selector_parse("users=", &s, err, sizeof(err)), NDT_EBADCONF);
    assert_int_equal(feat_selector_parse("users=2,,3", &s, err, sizeof(err)), NDT_EBADCONF);
    assert_int_equal(feat_selector_parse("users=-1", &s, err, sizeof(err)), NDT_EBADCONF);
}

static void quantile_matches_numpy_convention(void **state)
{
    (void)state;
    double v[] = { 4, 1, 3, 2 }; /* numpy.quantile([1,2,3,4], 0.25) == 1.75 */
    assert_true(fabs(feat_quantile(v, 4, 0.25) - 1.75) < 1e-12);
    assert_true(feat_quantile(v, 4, 0) == 1 && feat_quantile(v, 4, 1) == 4);
    assert_true(fabs(feat_quantile(v, 4, 0.5) - 2.5) < 1e-12);
}

/* The row two readers (export, streaming) rebuild from member pods. */
static void pod_mean_row_averages_members_and_refuses_what_is_not_a_row(void **state)
{
    (void)state;
    feat_pod_mean m = { 0 };
    feat_raw row = { .users = -7 };
    assert_int_equal(feat_pod_mean_row(&m, 1, 400, NULL, &row), NDT_AGAIN); /* no member */
    const double a[FEAT_POD_NATTR] = { 2, 0.5, 40, 10, 30, 100 };
    const double b[FEAT_POD_NATTR] = { 4, 1.5, 60, 20, 50, 999 };
    const double c[FEAT_POD_NATTR] = { 9, 9, 9, 9, 9, 200 };
    feat_pod_mean_add(&m, a, 0x3f);
    feat_pod_mean_add(&m, b, 0x1f);               /* no latency on this pod */
    assert_int_equal(feat_pod_mean_row(&m, 1, 400, NULL, &row), NDT_OK);
    assert_int_equal(row.pods, 2);                /* members stand in */
    assert_true(row.depth == 3 && row.backlog_s == 1 && row.cpu_process == 50);
    assert_true(row.cpu_system == 15 && row.mem_system == 40 && row.infer_ms == 100);
    feat_pod_mean_add(&m, c, 1u << FEAT_POD_INFER); /* latency only */
    double pods = 3;
    assert_int_equal(feat_pod_mean_row(&m, 77, 400.4, &pods, &row), NDT_OK);
    assert_int_equal(row.timestamp_ms, 77);
    assert_int_equal(row.users, 400);
    assert_int_equal(row.pods, 3);
    assert_true(row.depth == 3 && row.infer_ms == 150);

    feat_raw before = row;
    const double bad_pods[] = { 0, -1, NAN, 1e12 };
    for (size_t i = 0; i < sizeof(bad_pods) / sizeof(bad_pods[0]); i++)
        assert_int_equal(feat_pod_mean_row(&m, 1, 400, &bad_pods[i], &row), NDT_AGAIN);
    const double bad_users[] = { -1, NAN, INFINITY, 3e9 };
    for (size_t i = 0; i < sizeof(bad_users) / sizeof(bad_users[0]); i++)
        assert_int_equal(feat_pod_mean_row(&m, 1, bad_users[i], NULL, &row), NDT_AGAIN);
    assert_memory_equal(&row, &before, sizeof(row));

    feat_pod_mean partial = { 0 };
    feat_pod_mean_add(&partial, a, 0x3f & ~(1u << FEAT_POD_MEM_SYSTEM));
    assert_int_equal(feat_pod_mean_row(&partial, 1, 400, NULL, &row), NDT_AGAIN); /* a column unseen */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(features_exact_on_hand_made_rows),
        cmocka_unit_test(reader_names_the_bad_line),
        cmocka_unit_test(reader_enforces_the_row_cap),
        cmocka_unit_test(trim_iqr_drops_exactly_the_outliers),
        cmocka_unit_test(trim_p1p99_drops_exactly_the_tails),
        cmocka_unit_test(trim_refuses_tiny_regimes_and_none_keeps_all),
        cmocka_unit_test(regimes_group_and_sort),
        cmocka_unit_test(selectors_parse_and_match),
        cmocka_unit_test(quantile_matches_numpy_convention),
        cmocka_unit_test(pod_mean_row_averages_members_and_refuses_what_is_not_a_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
