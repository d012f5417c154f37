/*
 * test_feat_udr.c: the dataset rebuilt from the UDR (feat_udr_read,
 * feat_udr_latest) on a real SQLite UDR filled through udr_write_points
 * and udr_write_relation, as the harmonizer fills it: per-pod attributes
 * averaged over the service's pods present at each instant (belongsTo as
 * of that instant: pods joining, leaving, of another service), the
 * Service's users and pods as of the instant, incomplete instants left
 * out, the range's bounds, which service, the newest row.
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
#include "udr/udr.h"

#define SVC "urn:ngsi-ld:Service:ndt.cifar10-inference"
#define OTHER_SVC "urn:ngsi-ld:Service:ndt.other"
#define POD(x) "urn:ngsi-ld:ServiceComponent:ndt." x

typedef struct fixture {
    char dir[64];
    udr *u;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ndt-featudr-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    char url[128], err[NDT_ERRBUF_SIZE];
    snprintf(url, sizeof(url), "sqlite:%s/udr.db", f->dir);
    if (udr_open(&f->u, url, NULL, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    udr_close(f->u);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void write_service(udr *u, const char *id, int64_t ts, double users, double replicas)
{
    udr_field fields[3];
    size_t n = 0;
    if (users >= 0)
        fields[n++] = (udr_field){ .name = "currentUsers", .number = users };
    if (replicas >= 0)
        fields[n++] = (udr_field){ .name = "desiredReplicas", .number = replicas };
    fields[n++] = (udr_field){ .name = "serviceType", .kind = UDR_FIELD_STRING, .text = "inference" };
    udr_point p = { "Service", id, ts, fields, n };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(udr_write_points(u, &p, 1, err, sizeof(err)), NDT_OK);
}

/* A pod's six attributes, each base + k (k = 0..5), so averages are easy
 * to check; nattrs < 6 writes only the first ones. */
static void write_pod(udr *u, const char *id, int64_t ts, double base, int nattrs)
{
    static const char *const names[] = { "avgDepthOnEnqueue", "avgBacklogEstimate",
                                         "processCpuUsage",   "systemCpuUsage",
                                         "systemMemoryUsage", "avgInferenceTime" };
    udr_field fields[8];
    size_t n = 0;
    for (int k = 0; k < nattrs; k++)
        fields[n++] = (udr_field){ .name = names[k], .number = base + k };
    fields[n++] = (udr_field){ .name = "queueDepth", .number = 99 }; /* not a column */
    fields[n++] = (udr_field){ .name = "serviceComponentStatus", .kind = UDR_FIELD_STRING,
                               .text = "Running" };
    udr_point p = { "ServiceComponent", id, ts, fields, n };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(udr_write_points(u, &p, 1, err, sizeof(err)), NDT_OK);
}

static void belongs(udr *u, const char *pod, const char *svc, int64_t from)
{
    udr_relation r = { pod, "service", svc, from, UDR_OPEN };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(udr_write_relation(u, &r, err, sizeof(err)), NDT_OK);
    /* A hosting relationship too: other predicates must not confuse it. */
    udr_relation h = { pod, "infrastructureElement", "urn:ngsi-ld:InfrastructureElement:n1", from,
                       UDR_OPEN };
    assert_int_equal(udr_write_relation(u, &h, err, sizeof(err)), NDT_OK);
}

static void flush(udr *u)
{
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(udr_flush(u, err, sizeof(err)), NDT_OK);
}

static void assert_row(const feat_raw *r, int64_t ts, int users, int pods, double base)
{
    assert_int_equal(r->timestamp_ms, ts);
    assert_int_equal(r->users, users);
    assert_int_equal(r->pods, pods);
    const double got[] = { r->depth,      r->backlog_s,  r->cpu_process,
                           r->cpu_system, r->mem_system, r->infer_ms };
    for (int k = 0; k < 6; k++) {
        if (fabs(got[k] - (base + k)) > 1e-9)
            fail_msg("ts %lld column %d: %.17g, want %.17g", (long long)ts, k, got[k], base + k);
    }
}

static feat_dataset read_ok(udr *u, const char *svc, int64_t from, int64_t to)
{
    feat_dataset ds;
    char err[NDT_ERRBUF_SIZE];
    if (feat_udr_read(u, svc, from, to, &ds, err, sizeof(err)) != NDT_OK)
        fail_msg("%s", err);
    return ds;
}

/* Two pods of the service and one of another at each instant: averages
 * over the two, rows in time order, from inclusive, to exclusive. */
static void averages_over_the_services_pods(void **state)
{
    fixture *f = *state;
    write_service(f->u, SVC, 1000, 400, 2);
    write_service(f->u, OTHER_SVC, 1000, 7, 9);
    belongs(f->u, POD("a"), SVC, 0);
    belongs(f->u, POD("b"), SVC, 0);
    belongs(f->u, POD("x"), OTHER_SVC, 0);
    for (int i = 0; i < 4; i++) {
        int64_t ts = 1000 + 20 * i;
        write_pod(f->u, POD("a"), ts, 10 * i, 6);
        write_pod(f->u, POD("b"), ts, 10 * i + 2, 6);
        write_pod(f->u, POD("x"), ts, 1000, 6);
    }
    flush(f->u);
    feat_dataset ds = read_ok(f->u, SVC, 1000, 1060); /* 1060 itself excluded */
    assert_int_equal(ds.n, 3);
    for (int i = 0; i < 3; i++)
        assert_row(&ds.rows[i], 1000 + 20 * i, 400, 2, 10 * i + 1);
    feat_dataset_free(&ds);
    /* The bare local id names the same service. */
    ds = read_ok(f->u, "ndt.cifar10-inference", 1020, 1021);
    assert_int_equal(ds.n, 1);
    assert_row(&ds.rows[0], 1020, 400, 2, 11);
    feat_dataset_free(&ds);
    /* And the other service has its own rows. */
    ds = read_ok(f->u, OTHER_SVC, 0, 2000);
    assert_int_equal(ds.n, 4);
    assert_row(&ds.rows[3], 1060, 7, 9, 1000);
    feat_dataset_free(&ds);
}

/* A pod joins at 2040, another moves to another service at 2080: the
 * averages follow the membership of each instant. */
static void membership_changes_over_time(void **state)
{
    fixture *f = *state;
    write_service(f->u, SVC, 2000, 200, 1);
    write_service(f->u, SVC, 2040, -1, 2); /* scaled up: users unchanged, carried forward */
    belongs(f->u, POD("a"), SVC, 2000);
    belongs(f->u, POD("b"), SVC, 2040);
    belongs(f->u, POD("a"), OTHER_SVC, 2080);
    for (int i = 0; i < 6; i++) {
        int64_t ts = 2000 + 20 * i;
        write_pod(f->u, POD("a"), ts, 100, 6);
        if (ts >= 2020) /* b reports before it belongs: not counted at 2020 */
            write_pod(f->u, POD("b"), ts, 200, 6);
    }
    flush(f->u);
    feat_dataset ds = read_ok(f->u, NULL, 0, 10000);
    assert_int_equal(ds.n, 6);
    assert_row(&ds.rows[0], 2000, 200, 1, 100);
    assert_row(&ds.rows[1], 2020, 200, 1, 100);
    assert_row(&ds.rows[2], 2040, 200, 2, 150);
    assert_row(&ds.rows[3], 2060, 200, 2, 150);
    assert_row(&ds.rows[4], 2080, 200, 2, 200);
    assert_row(&ds.rows[5], 2100, 200, 2, 200);
    feat_dataset_free(&ds);
}

/* Users before the range (within the look-back) apply to its first rows;
 * without desiredReplicas, pods is the number of member pods observed. */
static void service_state_as_of_the_instant(void **state)
{
    fixture *f = *state;
    write_service(f->u, SVC, 5000, 600, -1);
    belongs(f->u, POD("a"), SVC, 0);
    belongs(f->u, POD("b"), SVC, 0);
    write_pod(f->u, POD("a"), 9000, 1, 6);
    write_pod(f->u, POD("b"), 9000, 3, 6);
    write_pod(f->u, POD("a"), 9020, 1, 6);
    flush(f->u);
    feat_dataset ds = read_ok(f->u, SVC, 8000, 10000);
    assert_int_equal(ds.n, 2);
    assert_row(&ds.rows[0], 9000, 600, 2, 2);
    assert_row(&ds.rows[1], 9020, 600, 1, 1);
    feat_dataset_free(&ds);
}

/* An instant is a complete row or no row: no users yet, an attribute no
 * member pod carries, pods without a belongsTo relationship. */
static void incomplete_instants_are_left_out(void **state)
{
    fixture *f = *state;
    belongs(f->u, POD("a"), SVC, 0);
    write_pod(f->u, POD("a"), 100, 1, 6); /* before the Service's first value */
    write_service(f->u, SVC, 200, 400, 3);
    write_pod(f->u, POD("a"), 200, 1, 5);  /* no avgInferenceTime */
    write_pod(f->u, POD("a"), 220, 5, 6);  /* complete */
    write_pod(f->u, POD("z"), 240, 7, 6);  /* a pod nobody said belongs anywhere */
    write_pod(f->u, POD("z"), 260, 7, 6);
    flush(f->u);
    feat_dataset ds = read_ok(f->u, SVC, 0, 1000);
    assert_int_equal(ds.n, 1);
    assert_row(&ds.rows[0], 220, 400, 3, 5);
    feat_dataset_free(&ds);
}

static void which_service(void **state)
{
    fixture *f = *state;
    feat_dataset ds;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(feat_udr_read(f->u, NULL, 0, 10, &ds, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "no Service entity"));
    write_service(f->u, SVC, 1, 1, 1);
    write_service(f->u, OTHER_SVC, 1, 1, 1);
    flush(f->u);
    assert_int_equal(feat_udr_read(f->u, NULL, 0, 10, &ds, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "2 Service entities"));
    assert_non_null(strstr(err, "--service"));
    assert_int_equal(feat_udr_read(f->u, SVC, 10, 10, &ds, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "empty"));
    /* A service with no pods: an empty dataset, not an error. */
    ds = read_ok(f->u, SVC, 0, 10);
    assert_int_equal(ds.n, 0);
    feat_dataset_free(&ds);
}

static void latest_is_the_newest_complete_row(void **state)
{
    fixture *f = *state;
    feat_raw row;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(feat_udr_latest(f->u, SVC, &row, err, sizeof(err)), NDT_AGAIN);
    write_service(f->u, SVC, 1000, 400, 2);
    belongs(f->u, POD("a"), SVC, 0);
    belongs(f->u, POD("b"), SVC, 0);
    write_pod(f->u, POD("a"), 1000, 10, 6);
    write_pod(f->u, POD("b"), 1000, 20, 6);
    write_pod(f->u, POD("a"), 1020, 30, 6);
    write_pod(f->u, POD("b"), 1020, 40, 6);
    write_pod(f->u, POD("a"), 1040, 50, 3); /* newest instant, incomplete */
    flush(f->u);
    if (feat_udr_latest(f->u, NULL, &row, err, sizeof(err)) != NDT_OK)
        fail_msg("%s", err);
    assert_row(&row, 1020, 400, 2, 35);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(averages_over_the_services_pods, setup, teardown),
        cmocka_unit_test_setup_teardown(membership_changes_over_time, setup, teardown),
        cmocka_unit_test_setup_teardown(service_state_as_of_the_instant, setup, teardown),
        cmocka_unit_test_setup_teardown(incomplete_instants_are_left_out, setup, teardown),
        cmocka_unit_test_setup_teardown(which_service, setup, teardown),
        cmocka_unit_test_setup_teardown(latest_is_the_newest_complete_row, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
