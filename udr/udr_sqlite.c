/*
 * udr_sqlite.c: the embedded UDR backend (sqlite:PATH), the default.
 *
 * Layout (one file, WAL so that readers such as `export` or the API never
 * block the writer):
 *
 *   entities(id PK, type, first_ms, last_ms)        one row per entity
 *   samples(type, ts_ms, id, attr, num, txt)        PK (type, ts_ms, id, attr)
 *   latest(id, attr, type, ts_ms, num, txt)         PK (id, attr): the newest value
 *   relationships(subject, predicate, valid_from_ms, object, valid_to_ms)
 *                                                   PK (subject, predicate, valid_from_ms)
 *
 * Promises:
 *   - Idempotence by primary key: writing a sample whose (type, ts, id,
 *     attribute) exists replaces its value, so replays never duplicate.
 *     `latest` only moves forward in time, so a late replay of an old point
 *     does not roll the current state back.
 *   - Writes go into one open transaction committed by udr_flush() (or
 *     every UDR_SQLITE_COMMIT_ROWS rows, to bound the WAL); flush returns
 *     after COMMIT, i.e. durable with synchronous=NORMAL in WAL mode
 *     (survives a process crash; a power loss may lose the last commit).
 *   - The samples key puts type and time first: a range read of one type is
 *     one index range in (time, id, attribute) order, which is the order
 *     export and the feature stage want.
 *   - Checkpoints run beside the writer, not inside its commits.  SQLite's
 *     auto-checkpoint copies the WAL into the database from within the
 *     COMMIT that crosses 1000 pages, with two fsyncs: 15-35 ms on this
 *     project's VM, every ~0.8 s at 3 pods and 20 ms scrapes, which was
 *     most of the harmonize stage's freshness p99 (docs/PERFORMANCE.md).
 *     A writer's connection instead signals a checkpointer thread with its
 *     own connection (started on the first commit, so read-only users such
 *     as export never start one), which runs a PASSIVE checkpoint: it never
 *     blocks the writer, and the writer restarts the WAL from its start once
 *     it has been copied.  Bounded: past UDR_SQLITE_WAL_MAX_FRAMES (the
 *     checkpointer stuck or behind) the writer checkpoints inline as SQLite
 *     would, so the WAL cannot grow without limit.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "udr/udr_internal.h"

#define UDR_SQLITE_COMMIT_ROWS 100000
/* WAL pages after which a checkpoint is due (SQLite's own default). */
#define UDR_SQLITE_WAL_CKPT_FRAMES 1000
/* WAL pages after which the writer checkpoints itself (~64 MiB at 4 KiB). */
#define UDR_SQLITE_WAL_MAX_FRAMES 16000

/* The checkpointer thread and what it shares with the writer. */
typedef struct udr_sqlite_ckpt {
    pthread_t thread;
    int started;
    int failed;                   /* could not start: the writer checkpoints */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int due;                      /* a checkpoint was asked for */
    int stop;
    sqlite3 *db;                  /* the thread's own connection */
} udr_sqlite_ckpt;

typedef struct udr_sqlite {
    sqlite3 *db;
    sqlite3_stmt *put_sample, *put_latest, *put_entity;
    sqlite3_stmt *rel_continue, *rel_close_others, *rel_put;
    int in_txn;
    size_t rows_in_txn;
    char *path;
    udr_sqlite_ckpt ckpt;
} udr_sqlite;

static const char udr_sqlite_schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS entities("
    "  id TEXT PRIMARY KEY, type TEXT NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS entities_type ON entities(type);"
    "CREATE TABLE IF NOT EXISTS samples("
    "  type TEXT NOT NULL, ts_ms INTEGER NOT NULL, id TEXT NOT NULL, attr TEXT NOT NULL,"
    "  num REAL, txt TEXT, PRIMARY KEY(type, ts_ms, id, attr)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS latest("
    "  id TEXT NOT NULL, attr TEXT NOT NULL, type TEXT NOT NULL, ts_ms INTEGER NOT NULL,"
    "  num REAL, txt TEXT, PRIMARY KEY(id, attr)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS latest_type ON latest(type, id);"
    "CREATE TABLE IF NOT EXISTS relationships("
    "  subject TEXT NOT NULL, predicate TEXT NOT NULL, valid_from_ms INTEGER NOT NULL,"
    "  object TEXT NOT NULL, valid_to_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(subject, predicate, valid_from_ms)) WITHOUT ROWID;";

static int udr_sqlite_fail(udr_sqlite *s, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
    return NDT_ERROR;
}

static int udr_sqlite_prepare(udr_sqlite *s, sqlite3_stmt **st, const char *sql,
                              char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return udr_sqlite_fail(s, sql, err, errlen);
    return NDT_OK;
}

static int udr_sqlite_exec(udr_sqlite *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return NDT_ERROR;
    }
    return NDT_OK;
}

static int udr_sqlite_begin(udr_sqlite *s, char *err, size_t errlen)
{
    if (s->in_txn)
        return NDT_OK;
    if (udr_sqlite_exec(s, "BEGIN", err, errlen) != NDT_OK)
        return NDT_ERROR;
    s->in_txn = 1;
    s->rows_in_txn = 0;
    return NDT_OK;
}

static int udr_sqlite_commit(udr_sqlite *s, char *err, size_t errlen)
{
    if (!s->in_txn)
        return NDT_OK;
    if (udr_sqlite_exec(s, "COMMIT", err, errlen) != NDT_OK)
        return NDT_ERROR;
    s->in_txn = 0;
    return NDT_OK;
}

static int udr_sqlite_step_done(udr_sqlite *s, sqlite3_stmt *st, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return udr_sqlite_fail(s, "write", err, errlen);
    return NDT_OK;
}

static void udr_sqlite_bind_value(sqlite3_stmt *st, int col, const udr_field *f)
{
    if (f->kind == UDR_FIELD_STRING) {
        sqlite3_bind_null(st, col);
        sqlite3_bind_text(st, col + 1, f->text, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_double(st, col, f->number);
        sqlite3_bind_null(st, col + 1);
    }
}

static int udr_sqlite_write_field(udr_sqlite *s, const udr_point *p, const udr_field *f,
                                  char *err, size_t errlen)
{
    sqlite3_stmt *st = s->put_sample;
    sqlite3_bind_text(st, 1, p->type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, p->ts_ms);
    sqlite3_bind_text(st, 3, p->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, f->name, -1, SQLITE_STATIC);
    udr_sqlite_bind_value(st, 5, f);
    if (udr_sqlite_step_done(s, st, err, errlen) != NDT_OK)
        return NDT_ERROR;

    st = s->put_latest;
    sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, f->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, p->ts_ms);
    udr_sqlite_bind_value(st, 5, f);
    return udr_sqlite_step_done(s, st, err, errlen);
}

static int udr_sqlite_write_points(udr *u, const udr_point *points, size_t n,
                                   char *err, size_t errlen)
{
    udr_sqlite *s = u->backend;
    if (udr_sqlite_begin(s, err, errlen) != NDT_OK)
        return NDT_ERROR;
    for (size_t i = 0; i < n; i++) {
        const udr_point *p = &points[i];
        sqlite3_stmt *st = s->put_entity;
        sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, p->type, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, p->ts_ms);
        if (udr_sqlite_step_done(s, st, err, errlen) != NDT_OK)
            return NDT_ERROR;
        for (size_t j = 0; j < p->nfields; j++)
            if (udr_sqlite_write_field(s, p, &p->fields[j], err, errlen) != NDT_OK)
                return NDT_ERROR;
        s->rows_in_txn += p->nfields;
    }
    u->stats.points_sent += n;
    if (s->rows_in_txn >= UDR_SQLITE_COMMIT_ROWS)
        return udr_sqlite_commit(s, err, errlen);
    return NDT_OK;
}

/*
 * A relationship change, in three statements:
 *   1. the same object already in force at valid_from (an earlier interval
 *      covers it): a repeat, nothing new starts; only an explicit end is
 *      recorded (an open end never reopens an interval a later change
 *      closed, so replaying the history in order is harmless);
 *   2. otherwise every other interval of (subject, predicate) that covers
 *      valid_from ends there: a pod hosted by a new node is no longer
 *      hosted by the old one;
 *   3. the interval is stored, keyed by its start, so a replay rewrites it.
 */
static int udr_sqlite_write_relation(udr *u, const udr_relation *r, char *err, size_t errlen)
{
    udr_sqlite *s = u->backend;
    if (udr_sqlite_begin(s, err, errlen) != NDT_OK)
        return NDT_ERROR;

    sqlite3_stmt *st = s->rel_continue;
    sqlite3_bind_text(st, 1, r->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->predicate, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->object, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, r->valid_from_ms);
    sqlite3_bind_int64(st, 5, r->valid_to_ms);
    sqlite3_bind_int64(st, 6, UDR_OPEN);
    if (udr_sqlite_step_done(s, st, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (sqlite3_changes(s->db) > 0)
        return NDT_OK;

    st = s->rel_close_others;
    sqlite3_bind_text(st, 1, r->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->predicate, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->valid_from_ms);
    if (udr_sqlite_step_done(s, st, err, errlen) != NDT_OK)
        return NDT_ERROR;

    st = s->rel_put;
    sqlite3_bind_text(st, 1, r->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->predicate, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->valid_from_ms);
    sqlite3_bind_text(st, 4, r->object, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->valid_to_ms);
    return udr_sqlite_step_done(s, st, err, errlen);
}

static int udr_sqlite_flush(udr *u, char *err, size_t errlen)
{
    return udr_sqlite_commit(u->backend, err, errlen);
}

/* Rows (id, ts_ms, attr, num, txt) into points. */
static int udr_sqlite_read_rows(udr_sqlite *s, sqlite3_stmt *st, const char *type, int by_id,
                                udr_point_fn fn, void *ctx, char *err, size_t errlen)
{
    udr_assembler a;
    udr_assembler_init(&a, type, by_id, fn, ctx);
    int rc = NDT_OK, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        udr_field f = { .name = (const char *)sqlite3_column_text(st, 2) };
        if (sqlite3_column_type(st, 4) == SQLITE_TEXT) {
            f.kind = UDR_FIELD_STRING;
            f.text = (const char *)sqlite3_column_text(st, 4);
        } else {
            f.kind = UDR_FIELD_DOUBLE;
            f.number = sqlite3_column_double(st, 3);
        }
        rc = udr_assembler_add(&a, (const char *)sqlite3_column_text(st, 0),
                               sqlite3_column_int64(st, 1), &f);
        if (rc != NDT_OK)
            goto out;
    }
    if (step != SQLITE_DONE) {
        rc = udr_sqlite_fail(s, "read", err, errlen);
        goto out;
    }
    rc = udr_assembler_finish(&a);
out:
    if (rc != NDT_OK && !err[0])
        snprintf(err, errlen, "read of %s stopped (status %d)", type, rc);
    udr_assembler_free(&a);
    return rc;
}

static int udr_sqlite_read_latest(udr *u, const char *type, udr_point_fn fn, void *ctx,
                                  char *err, size_t errlen)
{
    udr_sqlite *s = u->backend;
    sqlite3_stmt *st = NULL;
    err[0] = '\0';
    if (udr_sqlite_prepare(s, &st, "SELECT id, ts_ms, attr, num, txt FROM latest "
                           "WHERE type = ?1 ORDER BY id, attr", err, errlen) != NDT_OK)
        return NDT_ERROR;
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    int rc = udr_sqlite_read_rows(s, st, type, 1, fn, ctx, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

static int udr_sqlite_read_range(udr *u, const char *type, int64_t from_ms, int64_t to_ms,
                                 udr_point_fn fn, void *ctx, char *err, size_t errlen)
{
    udr_sqlite *s = u->backend;
    sqlite3_stmt *st = NULL;
    err[0] = '\0';
    if (udr_sqlite_prepare(s, &st, "SELECT id, ts_ms, attr, num, txt FROM samples "
                           "WHERE type = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 "
                           "ORDER BY ts_ms, id, attr", err, errlen) != NDT_OK)
        return NDT_ERROR;
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from_ms);
    sqlite3_bind_int64(st, 3, to_ms);
    int rc = udr_sqlite_read_rows(s, st, type, 0, fn, ctx, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

static int udr_sqlite_read_relations(udr *u, int64_t at_ms, udr_relation_fn fn, void *ctx,
                                     char *err, size_t errlen)
{
    udr_sqlite *s = u->backend;
    sqlite3_stmt *st = NULL;
    if (udr_sqlite_prepare(s, &st, "SELECT subject, predicate, object, valid_from_ms, valid_to_ms "
                           "FROM relationships WHERE valid_from_ms <= ?1 AND ?1 < valid_to_ms "
                           "ORDER BY subject, predicate", err, errlen) != NDT_OK)
        return NDT_ERROR;
    sqlite3_bind_int64(st, 1, at_ms);
    int rc = NDT_OK, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        udr_relation r = {
            .subject = (const char *)sqlite3_column_text(st, 0),
            .predicate = (const char *)sqlite3_column_text(st, 1),
            .object = (const char *)sqlite3_column_text(st, 2),
            .valid_from_ms = sqlite3_column_int64(st, 3),
            .valid_to_ms = sqlite3_column_int64(st, 4),
        };
        rc = fn(ctx, &r);
        if (rc != NDT_OK) {
            snprintf(err, errlen, "relationship read stopped (status %d)", rc);
            goto out;
        }
    }
    if (step != SQLITE_DONE)
        rc = udr_sqlite_fail(s, "read relationships", err, errlen);
out:
    sqlite3_finalize(st);
    return rc;
}

/* ---- checkpoints beside the writer ------------------------------------ */

static void *udr_sqlite_ckpt_main(void *arg)
{
    udr_sqlite_ckpt *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->due && !c->stop)
            pthread_cond_wait(&c->cond, &c->lock);
        if (c->stop)
            break;
        c->due = 0;
        pthread_mutex_unlock(&c->lock);
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            ndt_log(NDT_LOG_WARN, "udr", "sqlite checkpoint failed (the writer will checkpoint)",
                    NDT_KV_STR("error", sqlite3_errmsg(c->db)));
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* Opens the checkpointer's connection and starts it; NDT_ERROR leaves the
 * checkpoints to the writer. */
static int udr_sqlite_ckpt_start(udr_sqlite *s)
{
    udr_sqlite_ckpt *c = &s->ckpt;
    /* A connection learns that the file is in WAL mode on its first read;
     * until then a checkpoint through it does nothing. */
    if (sqlite3_open_v2(s->path, &c->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(c->db, 5000) != SQLITE_OK ||
        sqlite3_exec(c->db, "PRAGMA journal_mode", NULL, NULL, NULL) != SQLITE_OK) {
        ndt_log(NDT_LOG_WARN, "udr", "sqlite checkpointer: cannot open the database",
                NDT_KV_STR("error", c->db ? sqlite3_errmsg(c->db) : "out of memory"));
        sqlite3_close(c->db);
        c->db = NULL;
        return NDT_ERROR;
    }
    if (pthread_create(&c->thread, NULL, udr_sqlite_ckpt_main, c) != 0) {
        sqlite3_close(c->db);
        c->db = NULL;
        return NDT_ERROR;
    }
    c->started = 1;
    return NDT_OK;
}

static void udr_sqlite_ckpt_stop(udr_sqlite *s)
{
    udr_sqlite_ckpt *c = &s->ckpt;
    if (c->started) {
        pthread_mutex_lock(&c->lock);
        c->stop = 1;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
        c->started = 0;
    }
    sqlite3_close(c->db);
    c->db = NULL;
}

/* Runs after every commit on the writer's connection, with the WAL's size
 * in pages.  Replaces SQLite's auto-checkpoint (see the top of the file). */
static int udr_sqlite_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    udr_sqlite *s = arg;
    udr_sqlite_ckpt *c = &s->ckpt;
    if (frames < UDR_SQLITE_WAL_CKPT_FRAMES)
        return SQLITE_OK;
    if (!c->started && !c->failed && udr_sqlite_ckpt_start(s) != NDT_OK)
        c->failed = 1; /* checkpoints stay with the writer, as SQLite's own */
    if (!c->started || frames >= UDR_SQLITE_WAL_MAX_FRAMES) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    pthread_mutex_lock(&c->lock);
    c->due = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    return SQLITE_OK;
}

static void udr_sqlite_close(udr *u)
{
    udr_sqlite *s = u->backend;
    char err[NDT_ERRBUF_SIZE];
    if (udr_sqlite_commit(s, err, sizeof(err)) != NDT_OK)
        ndt_log(NDT_LOG_ERROR, "udr", "final commit failed", NDT_KV_STR("error", err));
    udr_sqlite_ckpt_stop(s);
    sqlite3_finalize(s->put_sample);
    sqlite3_finalize(s->put_latest);
    sqlite3_finalize(s->put_entity);
    sqlite3_finalize(s->rel_continue);
    sqlite3_finalize(s->rel_close_others);
    sqlite3_finalize(s->rel_put);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->ckpt.lock);
    pthread_cond_destroy(&s->ckpt.cond);
    free(s->path);
    free(s);
}

static const udr_backend_ops udr_sqlite_ops = {
    .name = "sqlite",
    .write_points = udr_sqlite_write_points,
    .write_relation = udr_sqlite_write_relation,
    .flush = udr_sqlite_flush,
    .read_latest = udr_sqlite_read_latest,
    .read_range = udr_sqlite_read_range,
    .read_relations = udr_sqlite_read_relations,
    .close = udr_sqlite_close,
};

static int udr_sqlite_prepare_all(udr_sqlite *s, char *err, size_t errlen)
{
    struct { sqlite3_stmt **st; const char *sql; } stmts[] = {
        { &s->put_sample,
          "INSERT INTO samples(type, ts_ms, id, attr, num, txt) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
          "ON CONFLICT(type, ts_ms, id, attr) DO UPDATE SET num = excluded.num, txt = excluded.txt" },
        { &s->put_latest,
          "INSERT INTO latest(id, attr, type, ts_ms, num, txt) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
          "ON CONFLICT(id, attr) DO UPDATE SET type = excluded.type, ts_ms = excluded.ts_ms, "
          "num = excluded.num, txt = excluded.txt WHERE excluded.ts_ms >= latest.ts_ms" },
        { &s->put_entity,
          "INSERT INTO entities(id, type, first_ms, last_ms) VALUES(?1, ?2, ?3, ?3) "
          "ON CONFLICT(id) DO UPDATE SET first_ms = min(first_ms, excluded.first_ms), "
          "last_ms = max(last_ms, excluded.last_ms)" },
        { &s->rel_continue,
          "UPDATE relationships SET valid_to_ms = CASE WHEN ?5 = ?6 THEN valid_to_ms ELSE ?5 END "
          "WHERE subject = ?1 AND predicate = ?2 AND object = ?3 "
          "AND valid_from_ms <= ?4 AND ?4 < valid_to_ms" },
        { &s->rel_close_others,
          "UPDATE relationships SET valid_to_ms = ?3 WHERE subject = ?1 AND predicate = ?2 "
          "AND valid_from_ms < ?3 AND ?3 < valid_to_ms" },
        { &s->rel_put,
          "INSERT INTO relationships(subject, predicate, valid_from_ms, object, valid_to_ms) "
          "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(subject, predicate, valid_from_ms) "
          "DO UPDATE SET object = excluded.object, valid_to_ms = excluded.valid_to_ms" },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(stmts); i++)
        if (udr_sqlite_prepare(s, stmts[i].st, stmts[i].sql, err, errlen) != NDT_OK)
            return NDT_ERROR;
    return NDT_OK;
}

int udr_sqlite_open(udr *u, const char *path, char *err, size_t errlen)
{
    if (!*path) {
        snprintf(err, errlen, "--udr sqlite: needs a file path (sqlite:PATH)");
        return NDT_EBADCONF;
    }
    udr_sqlite *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    pthread_mutex_init(&s->ckpt.lock, NULL);
    pthread_cond_init(&s->ckpt.cond, NULL);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite:%s: cannot open: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (udr_sqlite_exec(s, udr_sqlite_schema, err, errlen) != NDT_OK)
        goto fail;
    if (udr_sqlite_prepare_all(s, err, errlen) != NDT_OK)
        goto fail;
    sqlite3_wal_hook(s->db, udr_sqlite_wal_hook, s);
    u->backend = s;
    u->ops = &udr_sqlite_ops;
    return NDT_OK;
fail:
    u->backend = s;
    u->ops = &udr_sqlite_ops;
    s->in_txn = 0;
    udr_sqlite_close(u);
    u->backend = NULL;
    u->ops = NULL;
    return NDT_ERROR;
}
