/*
 * test_udr.c: the UDR interface over its embedded SQLite backend (the
 * InfluxDB backend is tested against real servers in
 * tests/integration/70-udr-influx.sh and 71-udr-influx2-victoria.sh).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "udr/udr.h"

typedef struct collected {
    char text[8192];
    size_t n;
} collected;

/* Renders every point read as "id@ts name=value,..;" so a whole read is
 * compared with one string. */
static int collect_point(void *ctx, const udr_point *p)
{
    collected *c = ctx;
    size_t used = strlen(c->text);
    used += (size_t)snprintf(c->text + used, sizeof(c->text) - used, "%s@%lld", p->id,
                             (long long)p->ts_ms);
    for (size_t i = 0; i < p->nfields; i++) {
        const udr_field *f = &p->fields[i];
        if (f->kind == UDR_FIELD_STRING)
            used += (size_t)snprintf(c->text + used, sizeof(c->text) - used, " %s=%s", f->name,
                                     f->text);
        else
            used += (size_t)snprintf(c->text + used, sizeof(c->text) - used, " %s=%g", f->name,
                                     f->number);
    }
    snprintf(c->text + used, sizeof(c->text) - used, ";");
    c->n++;
    return 0;
}

static int collect_relation(void *ctx, const udr_relation *r)
{
    collected *c = ctx;
    size_t used = strlen(c->text);
    if (r->valid_to_ms == UDR_OPEN)
        snprintf(c->text + used, sizeof(c->text) - used, "%s %s %s [%lld,open);", r->subject,
                 r->predicate, r->object, (long long)r->valid_from_ms);
    else
        snprintf(c->text + used, sizeof(c->text) - used, "%s %s %s [%lld,%lld);", r->subject,
                 r->predicate, r->object, (long long)r->valid_from_ms, (long long)r->valid_to_ms);
    c->n++;
    return 0;
}

typedef struct fixture {
    char dir[64];
    char url[128];
    udr *u;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ndt-udr-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->url, sizeof(f->url), "sqlite:%s/udr.db", f->dir);
    char err[NDT_ERRBUF_SIZE];
    if (udr_open(&f->u, f->url, NULL, err, sizeof(err)) != NDT_OK) {
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
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void write_pod(udr *u, const char *id, int64_t ts, double cpu, const char *status)
{
    udr_field fields[2] = {
        { .name = "cpuUsage", .kind = UDR_FIELD_DOUBLE, .number = cpu },
        { .name = "status", .kind = UDR_FIELD_STRING, .text = status },
    };
    udr_point p = { .type = "ServiceComponent", .id = id, .ts_ms = ts, .fields = fields,
                    .nfields = status ? 2 : 1 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(udr_write_points(u, &p, 1, err, sizeof(err)), NDT_OK);
}

static void points_round_trip_in_time_then_id_order(void **state)
{
    fixture *f = *state;
    char err[NDT_ERRBUF_SIZE];
    write_pod(f->u, "urn:ngsi-ld:ServiceComponent:b", 2000, 20, "running");
    write_pod(f->u, "urn:ngsi-ld:ServiceComponent:a", 2000, 10, "running");
    write_pod(f->u, "urn:ngsi-ld:ServiceComponent:a", 1000, 5, "pending");
    write_pod(f->u, "urn:ngsi-ld:ServiceComponent:a", 3000, 7.25, NULL);
    assert_int_equal(udr_flush(f->u, err, sizeof(err)), NDT_OK);

    collected c = { 0 };
    assert_int_equal(udr_read_range(f->u, "ServiceComponent", 1000, 3000, collect_point, &c,
                                     err, sizeof(err)), NDT_OK);
    assert_string_equal(c.text,
                        "urn:ngsi-ld:ServiceComponent:a@1000 cpuUsage=5 status=pending;"
                        "urn:ngsi-ld:ServiceComponent:a@2000 cpuUsage=10 status=running;"
                        "urn:ngsi-ld:ServiceComponent:b@2000 cpuUsage=20 status=running;");

    /* The latest state keeps each attribute's newest value. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(udr_read_latest(f->u, "ServiceComponent", collect_point, &c, err, sizeof(err)),
                     NDT_OK);
    assert_string_equal(c.text,
                        "urn:ngsi-ld:ServiceComponent:a@3000 cpuUsage=7.25 status=running;"
                        "urn:ngsi-ld:ServiceComponent:b@2000 cpuUsage=20 status=running;");

    /* Another type sees nothing. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(udr_read_range(f->u, "Service", 0, INT64_MAX, collect_point, &c, err,
                                    sizeof(err)), NDT_OK);
    assert_int_equal(c.n, 0);
}

static void same_series_and_timestamp_store_one_point(void **state)
{
    fixture *f = *state;
    char err[NDT_ERRBUF_SIZE];
    for (int replay = 0; replay < 3; replay++)
        for (int i = 0; i < 50; i++)
            write_pod(f->u, "urn:ngsi-ld:ServiceComponent:a", 1000 + i, i + replay, NULL);
    assert_int_equal(udr_flush(f->u, err, sizeof(err)), NDT_OK);

    collected c = { 0 };
    assert_int_equal(udr_read_range(f->u, "ServiceComponent", 0, INT64_MAX, collect_point, &c,
                                    err, sizeof(err)), NDT_OK);
    assert_int_equal(c.n, 50);
    /* The last write wins. */
    assert_non_null(strstr(c.text, "a@1000 cpuUsage=2;"));
    assert_non_null(strstr(c.text, "a@1049 cpuUsage=51;"));

    /* A late replay of an old point does not roll the latest state back. */
    write_pod(f->u, "urn:ngsi-ld:ServiceComponent:a", 1000, -1, NULL);
    memset(&c, 0, sizeof(c));
    assert_int_equal(udr_read_latest(f->u, "ServiceComponent", collect_point, &c, err, sizeof(err)),
                     NDT_OK);
    assert_string_equal(c.text, "urn:ngsi-ld:ServiceComponent:a@1049 cpuUsage=51;");
}

static void relate(udr *u, const char *s, const char *o, int64_t from, int64_t to)
{
    udr_relation r = { .subject = s, .predicate = "isHostedBy", .object = o,
                       .valid_from_ms = from, .valid_to_ms = to };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(udr_write_relation(u, &r, err, sizeof(err)), NDT_OK);
}

static void relations_at(udr *u, int64_t at, collected *c)
{
    char err[NDT_ERRBUF_SIZE];
    memset(c, 0, sizeof(*c));
    assert_int_equal(udr_read_relations(u, at, collect_relation, c, err, sizeof(err)), NDT_OK);
}

static void relationship_changes_close_the_previous_interval(void **state)
{
    fixture *f = *state;
    collected c;
    relate(f->u, "pod1", "node1", 1000, UDR_OPEN);
    relate(f->u, "pod1", "node1", 1500, UDR_OPEN); /* a repeat: same interval */
    relate(f->u, "pod2", "node1", 1000, UDR_OPEN);
    relate(f->u, "pod1", "node2", 2000, UDR_OPEN); /* pod1 moves */
    relate(f->u, "pod2", "node1", 1000, 2500);     /* pod2 ends */

    relations_at(f->u, 999, &c);
    assert_int_equal(c.n, 0);
    relations_at(f->u, 1500, &c);
    assert_string_equal(c.text, "pod1 isHostedBy node1 [1000,2000);pod2 isHostedBy node1 [1000,2500);");
    relations_at(f->u, 2000, &c);
    assert_string_equal(c.text, "pod1 isHostedBy node2 [2000,open);pod2 isHostedBy node1 [1000,2500);");
    relations_at(f->u, 2500, &c);
    assert_string_equal(c.text, "pod1 isHostedBy node2 [2000,open);");

    /* A replay of the whole history changes nothing. */
    relate(f->u, "pod1", "node1", 1000, UDR_OPEN);
    relate(f->u, "pod1", "node2", 2000, UDR_OPEN);
    relations_at(f->u, 1500, &c);
    assert_string_equal(c.text, "pod1 isHostedBy node1 [1000,2000);pod2 isHostedBy node1 [1000,2500);");
    relations_at(f->u, 3000, &c);
    assert_string_equal(c.text, "pod1 isHostedBy node2 [2000,open);");
}

static void data_survives_reopen(void **state)
{
    fixture *f = *state;
    char err[NDT_ERRBUF_SIZE];
    write_pod(f->u, "urn:ngsi-ld:ServiceComponent:a", 1000, 1, NULL);
    relate(f->u, "pod1", "node1", 1000, UDR_OPEN);
    udr_close(f->u); /* close commits */
    assert_int_equal(udr_open(&f->u, f->url, NULL, err, sizeof(err)), NDT_OK);
    collected c = { 0 };
    assert_int_equal(udr_read_range(f->u, "ServiceComponent", 0, INT64_MAX, collect_point, &c,
                                    err, sizeof(err)), NDT_OK);
    assert_string_equal(c.text, "urn:ngsi-ld:ServiceComponent:a@1000 cpuUsage=1;");
    relations_at(f->u, 1000, &c);
    assert_int_equal(c.n, 1);
}

/* The WAL's size in frames and how many of them a checkpoint has copied
 * into the database, read from the wal-index (the -shm file) in SQLite's
 * documented format: mxFrame at byte 16 of its header, nBackfill at 96. */
static void wal_state(const fixture *f, uint32_t *frames, uint32_t *backfilled)
{
    char path[128];
    unsigned char hdr[100];
    snprintf(path, sizeof(path), "%s/udr.db-shm", f->dir);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(hdr, 1, sizeof(hdr), fp), sizeof(hdr));
    fclose(fp);
    memcpy(frames, hdr + 16, sizeof(*frames));
    memcpy(backfilled, hdr + 96, sizeof(*backfilled));
}

/* A batch of points wide enough to fill a few WAL pages, then a flush. */
static void write_wide_batch(udr *u, int batch)
{
    static const char *names[] = { "a", "b", "c", "d", "e", "f", "g", "h" };
    udr_field fields[8];
    char text[8][160];
    char id[64];
    char err[NDT_ERRBUF_SIZE];
    for (int i = 0; i < 8; i++) {
        memset(text[i], 'x', sizeof(text[i]) - 1);
        text[i][sizeof(text[i]) - 1] = '\0';
        fields[i] = (udr_field){ .name = names[i], .kind = UDR_FIELD_STRING, .text = text[i] };
    }
    for (int k = 0; k < 20; k++) {
        snprintf(id, sizeof(id), "urn:ngsi-ld:ServiceComponent:pod-%d", k);
        udr_point p = { .type = "ServiceComponent", .id = id, .ts_ms = 1000 + batch,
                        .fields = fields, .nfields = 8 };
        assert_int_equal(udr_write_points(u, &p, 1, err, sizeof(err)), NDT_OK);
    }
    assert_int_equal(udr_flush(u, err, sizeof(err)), NDT_OK);
}

static int count_point(void *ctx, const udr_point *p)
{
    (void)p;
    (*(size_t *)ctx)++;
    return 0;
}

/* Checkpoints run beside the writer (udr_sqlite.c): once the WAL passes
 * 1000 pages another thread copies it into the database while the writer
 * goes on, and the writer then starts the WAL over; nothing is lost. */
static void checkpoints_run_beside_the_writer(void **state)
{
    fixture *f = *state;
    uint32_t frames = 0, backfilled = 0;
    int batches = 0;
    while (frames < 1100 && batches < 2000) {
        write_wide_batch(f->u, batches++);
        wal_state(f, &frames, &backfilled);
    }
    assert_true(frames >= 1100);
    /* The checkpointer catches up on its own (nothing here checkpoints). */
    const struct timespec tick = { 0, 20 * 1000 * 1000 };
    for (int i = 0; i < 500 && backfilled < frames; i++) {
        nanosleep(&tick, NULL);
        wal_state(f, &frames, &backfilled);
    }
    assert_true(backfilled > 0);
    assert_int_equal(backfilled, frames);
    /* The next transaction writes from the start of the WAL again. */
    write_wide_batch(f->u, batches++);
    wal_state(f, &frames, &backfilled);
    assert_true(frames < 100);
    /* Every point is there, after a reopen too. */
    char err[NDT_ERRBUF_SIZE];
    udr_close(f->u);
    assert_int_equal(udr_open(&f->u, f->url, NULL, err, sizeof(err)), NDT_OK);
    size_t n = 0;
    assert_int_equal(udr_read_range(f->u, "ServiceComponent", 0, INT64_MAX, count_point, &n,
                                    err, sizeof(err)), NDT_OK);
    assert_int_equal(n, (size_t)batches * 20);
}

static void bad_input_is_refused_with_a_reason(void **state)
{
    fixture *f = *state;
    char err[NDT_ERRBUF_SIZE];
    udr_field ok = { .name = "cpuUsage", .number = 1 };
    udr_field reserved = { .name = "time", .number = 1 };
    udr_field dashed = { .name = "cpu-usage", .number = 1 };
    const udr_point bad[] = {
        { .type = "Service Component", .id = "x", .ts_ms = 1, .fields = &ok, .nfields = 1 },
        { .type = "ServiceComponent", .id = "", .ts_ms = 1, .fields = &ok, .nfields = 1 },
        { .type = "ServiceComponent", .id = "a\nb", .ts_ms = 1, .fields = &ok, .nfields = 1 },
        { .type = "ServiceComponent", .id = "a\\,b", .ts_ms = 1, .fields = &ok, .nfields = 1 },
        { .type = "ServiceComponent", .id = "x", .ts_ms = 1, .fields = &ok, .nfields = 0 },
        { .type = "ServiceComponent", .id = "x", .ts_ms = 1, .fields = &reserved, .nfields = 1 },
        { .type = "ServiceComponent", .id = "x", .ts_ms = 1, .fields = &dashed, .nfields = 1 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(udr_write_points(f->u, &bad[i], 1, err, sizeof(err)), NDT_EBADCONF);
        assert_true(strlen(err) > 10);
    }
    /* The whole batch is refused before anything is stored. */
    const udr_point mixed[] = { { .type = "T", .id = "good", .ts_ms = 1, .fields = &ok, .nfields = 1 },
                                bad[0] };
    assert_int_equal(udr_write_points(f->u, mixed, 2, err, sizeof(err)), NDT_EBADCONF);
    collected c = { 0 };
    assert_int_equal(udr_read_range(f->u, "T", 0, INT64_MAX, collect_point, &c, err, sizeof(err)),
                     NDT_OK);
    assert_int_equal(c.n, 0);

    udr_relation backwards = { .subject = "a", .predicate = "isHostedBy", .object = "b",
                               .valid_from_ms = 10, .valid_to_ms = 10 };
    assert_int_equal(udr_write_relation(f->u, &backwards, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "valid_to"));
}

static void bad_urls_are_refused_with_a_reason(void **state)
{
    (void)state;
    struct { const char *url; const char *says; } cases[] = {
        { "", "empty URL" },
        { "postgres://h/db", "unknown scheme" },
        { "sqlite:", "needs a file path" },
        { "influx:h:8086/db", "expected influx:http://HOST:PORT/DB" },
        { "influx:http://127.0.0.1:8086", "expected influx:http://HOST:PORT/DB" },
        { "influx:http://127.0.0.1:8086/db/extra", "expected influx:" },
        { "influx2:http://127.0.0.1:8086/org", "expected influx2:http://HOST:PORT/ORG/BUCKET" },
        { "influx2:http://127.0.0.1:8086/org/", "ORG/BUCKET" },
        { "influx:http://user:hunter2@127.0.0.1:8086/db", "from the environment" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        udr *u = NULL;
        char err[NDT_ERRBUF_SIZE] = "";
        assert_int_equal(udr_open(&u, cases[i].url, NULL, err, sizeof(err)), NDT_EBADCONF);
        assert_null(u);
        if (!strstr(err, cases[i].says))
            fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].url, err, cases[i].says);
        assert_null(strstr(err, "hunter2")); /* never echo a secret */
    }
    udr *u = NULL;
    char err[NDT_ERRBUF_SIZE] = "";
    assert_int_equal(udr_open(&u, "sqlite:/nonexistent-dir/x/udr.db", NULL, err, sizeof(err)),
                     NDT_ERROR);
    assert_non_null(strstr(err, "cannot open"));
}

static void influx2_backend_refuses_reads_clearly(void **state)
{
    fixture *f = *state;
    char spool[128], err[NDT_ERRBUF_SIZE];
    snprintf(spool, sizeof(spool), "%s/spool", f->dir);
    udr_options o = { .spool_dir = spool };
    udr *u = NULL;
    /* Nothing listens on port 9 of 127.0.0.1; opening does not connect. */
    assert_int_equal(udr_open(&u, "influx2:http://127.0.0.1:9/org/bucket", &o, err, sizeof(err)),
                     NDT_OK);
    collected c = { 0 };
    assert_int_equal(udr_read_range(u, "T", 0, 1, collect_point, &c, err, sizeof(err)), NDT_ERROR);
    assert_non_null(strstr(err, "influx2 backend cannot serve range reads"));
    udr_close(u);
    assert_int_equal(access(spool, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(points_round_trip_in_time_then_id_order, setup, teardown),
        cmocka_unit_test_setup_teardown(same_series_and_timestamp_store_one_point, setup, teardown),
        cmocka_unit_test_setup_teardown(relationship_changes_close_the_previous_interval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(data_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(checkpoints_run_beside_the_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_input_is_refused_with_a_reason, setup, teardown),
        cmocka_unit_test(bad_urls_are_refused_with_a_reason),
        cmocka_unit_test_setup_teardown(influx2_backend_refuses_reads_clearly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
