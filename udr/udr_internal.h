/*
 * udr_internal.h: the contract between udr.c and its backends.
 *
 * A backend is a table of functions over its own state (udr->backend);
 * udr.c parses the URL, picks the table and checks arguments once, so a
 * backend only implements storage.  A backend may leave a read as NULL when
 * it cannot serve it; udr.c then answers with a clear error.
 */
#ifndef NDT_UDR_INTERNAL_H
#define NDT_UDR_INTERNAL_H

#include "common/arena.h"
#include "udr/udr.h"

typedef struct udr_backend_ops {
    const char *name;
    int (*write_points)(udr *u, const udr_point *p, size_t n, char *err, size_t errlen);
    int (*write_relation)(udr *u, const udr_relation *r, char *err, size_t errlen);
    int (*flush)(udr *u, char *err, size_t errlen);
    /* Optional: asynchronous flush (udr.h); NULL means flush() serves. */
    int (*flush_start)(udr *u, uint64_t *ticket, char *err, size_t errlen);
    int (*flush_done)(udr *u, uint64_t ticket, int wait, char *err, size_t errlen);
    int (*read_latest)(udr *u, const char *type, udr_point_fn fn, void *ctx,
                       char *err, size_t errlen);
    int (*read_range)(udr *u, const char *type, int64_t from_ms, int64_t to_ms,
                      udr_point_fn fn, void *ctx, char *err, size_t errlen);
    int (*read_relations)(udr *u, int64_t at_ms, udr_relation_fn fn, void *ctx,
                          char *err, size_t errlen);
    void (*close)(udr *u);
} udr_backend_ops;

struct udr {
    const udr_backend_ops *ops;
    void *backend;
    udr_options opts;
    udr_stats stats;
};

/*
 * Readers get rows (one attribute of one entity at one instant) in key
 * order; the assembler groups consecutive rows of the same entity and
 * instant (or, with by_id, of the same entity) into one udr_point and
 * hands it to the caller's callback.  Strings are copied into an arena
 * reset after every point, so rows may come from buffers that change.
 */
typedef struct udr_assembler {
    ndt_arena arena;
    const char *type;
    int by_id;               /* latest state: one point per entity */
    char *id;
    int64_t ts_ms;
    udr_field *fields;
    size_t nfields, cap;
    udr_point_fn fn;
    void *ctx;
} udr_assembler;

void udr_assembler_init(udr_assembler *a, const char *type, int by_id,
                        udr_point_fn fn, void *ctx);
/* NDT_OK, or the callback's status, or NDT_ERROR when out of memory. */
int udr_assembler_add(udr_assembler *a, const char *id, int64_t ts_ms, const udr_field *f);
int udr_assembler_finish(udr_assembler *a);
void udr_assembler_free(udr_assembler *a);

/* Backend constructors: rest is the URL after the scheme and colon. */
int udr_sqlite_open(udr *u, const char *rest, char *err, size_t errlen);
int udr_influx_open(udr *u, int version, const char *rest, char *err, size_t errlen);

/* An entity type or attribute name must be a plain identifier so that it
 * is safe as a measurement, a field key and an SQL value alike. */
int udr_name_is_valid(const char *s);

#endif
