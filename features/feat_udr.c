/*
 * feat_udr.c: the twin's state read back from the UDR as the paper's raw
 * telemetry rows (feat_udr_read, feat_udr_latest in features.h): what
 * `export` writes, what the what-if API starts from.
 *
 * Where each column comes from (docs/DATA-MODEL.md, "The dataset read
 * back"):
 *   users                 Service.currentUsers
 *   pods                  Service.desiredReplicas (the configured pods, the
 *                         campaign's column); the number of the service's
 *                         pods observed at that instant when it is absent
 *   avg_depth_on_enqueue  ServiceComponent.avgDepthOnEnqueue
 *   avg_backlog_sec_est   ServiceComponent.avgBacklogEstimate
 *   avg_cpu_process_pct   ServiceComponent.processCpuUsage
 *   avg_cpu_system_pct    ServiceComponent.systemCpuUsage
 *   avg_mem_system_pct    ServiceComponent.systemMemoryUsage
 *   avg_total_infer_ms    ServiceComponent.avgInferenceTime
 * The avg_* columns are means over the service's pods present at that
 * instant, as the paper's are: a pod counts when it has a point at that
 * timestamp and its belongsTo relationship (predicate `service`, or
 * `belongsTo`) points to the service at that instant.  The Service's
 * values are taken as of the instant (its newest point at or before it,
 * looking back at most FEAT_UDR_LOOKBACK_MS before `from`), since a
 * deployment's size and its load are states, not events.
 *
 * One row per instant at which at least one of the service's pods was
 * observed.  An instant is skipped (and counted in the debug log) when
 * the Service has no users value yet or when no member pod carries one of
 * the six attributes: a row is complete or absent, never NaN-filled.
 *
 * How it reads: both ranges are read whole first (the UDR forbids nothing,
 * but a backend's read callback is no place for a second query), bounded
 * by FEAT_UDR_MAX_POINTS pod points.  Relationships are asked as of an
 * instant; each answer carries its validity interval, which is cached per
 * pod, so the UDR is asked again only when an instant falls outside a
 * pod's cached interval: once per membership change, not once per row.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "features/features.h"
#include "udr/udr.h"

#define FEAT_UDR_LOOKBACK_MS (5 * 60 * 1000)
#define FEAT_UDR_LATEST_WINDOW_MS (60 * 1000)
/* 64 bytes each: 4 M pod points are 256 MB. */
#define FEAT_UDR_MAX_POINTS 4000000u
#define FEAT_UDR_SERVICE_PREFIX "urn:ngsi-ld:Service:"
#define FEAT_UDR_MAX_ID 512


typedef struct pod_point {
    int64_t ts_ms;
    uint32_t pod; /* index into the pod table */
    uint32_t has; /* bit i: v[i] is set */
    double v[FEAT_POD_NATTR];
} pod_point;

/* What the UDR last said about a pod's belongsTo relationship. */
typedef struct pod_entry {
    char *id;
    int known;           /* a relationship was in force when last asked */
    int member;          /* ... and it pointed to our service */
    int64_t from_ms, to_ms;
    int64_t absent_at;   /* asked at this instant: no relationship in force */
} pod_entry;

typedef struct service_point {
    int64_t ts_ms;
    int has_users, has_pods;
    double users, pods;
} service_point;

typedef struct udr_reader {
    char service[FEAT_UDR_MAX_ID];
    pod_entry *pods;
    size_t npods, pods_cap;
    uint32_t *slots; /* open addressing, index + 1, 0 = empty */
    size_t nslots;
    pod_point *points;
    size_t npoints, points_cap;
    service_point *svc;
    size_t nsvc, svc_cap;
    int overflow;
    uint64_t relation_queries;
} udr_reader;

/* ---- growing arrays and the pod table ----------------------------------- */

static int grow(void **data, size_t *cap, size_t n, size_t size, size_t max)
{
    if (n < *cap)
        return NDT_OK;
    if (*cap >= max)
        return NDT_ERROR;
    size_t want = *cap ? *cap * 2 : 256;
    if (want > max)
        want = max;
    void *p = realloc(*data, want * size);
    if (!p)
        return NDT_ERROR;
    *data = p;
    *cap = want;
    return NDT_OK;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int rehash(udr_reader *r, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return NDT_ERROR;
    for (size_t i = 0; i < r->npods; i++) {
        size_t j = hash_str(r->pods[i].id) & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(r->slots);
    r->slots = slots;
    r->nslots = nslots;
    return NDT_OK;
}

/* The pod's index, or -1 if unknown (and not added). */
static long pod_find(const udr_reader *r, const char *id)
{
    if (!r->nslots)
        return -1;
    for (size_t j = hash_str(id) & (r->nslots - 1); r->slots[j]; j = (j + 1) & (r->nslots - 1)) {
        if (strcmp(r->pods[r->slots[j] - 1].id, id) == 0)
            return (long)r->slots[j] - 1;
    }
    return -1;
}

static long pod_intern(udr_reader *r, const char *id)
{
    long i = pod_find(r, id);
    if (i >= 0)
        return i;
    if ((r->npods + 1) * 2 > r->nslots && rehash(r, r->nslots ? r->nslots * 2 : 64) != NDT_OK)
        return -1;
    if (grow((void **)&r->pods, &r->pods_cap, r->npods, sizeof(*r->pods), UINT32_MAX - 1) !=
        NDT_OK)
        return -1;
    char *copy = strdup(id);
    if (!copy)
        return -1;
    r->pods[r->npods] = (pod_entry){ .id = copy, .absent_at = INT64_MIN };
    size_t j = hash_str(id) & (r->nslots - 1);
    while (r->slots[j])
        j = (j + 1) & (r->nslots - 1);
    r->slots[j] = (uint32_t)r->npods + 1;
    return (long)r->npods++;
}

static void reader_free(udr_reader *r)
{
    for (size_t i = 0; i < r->npods; i++)
        free(r->pods[i].id);
    free(r->pods);
    free(r->slots);
    free(r->points);
    free(r->svc);
}

/* ---- which service ------------------------------------------------------ */

typedef struct service_scan {
    char first[FEAT_UDR_MAX_ID];
    char second[FEAT_UDR_MAX_ID];
    size_t n;
} service_scan;

static int service_scan_fn(void *ctx, const udr_point *p)
{
    service_scan *s = ctx;
    if (s->n == 0)
        snprintf(s->first, sizeof(s->first), "%s", p->id);
    else if (s->n == 1)
        snprintf(s->second, sizeof(s->second), "%s", p->id);
    s->n++;
    return NDT_OK;
}

/* The service's full id: given (a bare local id gets the URN prefix), or
 * the only Service entity the UDR holds. */
static int resolve_service(udr *u, const char *service_id, char *out, size_t size, char *err,
                           size_t errlen)
{
    if (service_id) {
        if (!*service_id) {
            snprintf(err, errlen, "the service id is empty");
            return NDT_EBADCONF;
        }
        int n = strncmp(service_id, "urn:", 4) == 0
                    ? snprintf(out, size, "%s", service_id)
                    : snprintf(out, size, "%s%s", FEAT_UDR_SERVICE_PREFIX, service_id);
        if (n < 0 || (size_t)n >= size) {
            snprintf(err, errlen, "the service id is longer than %zu bytes", size - 1);
            return NDT_EBADCONF;
        }
        return NDT_OK;
    }
    service_scan scan = { 0 };
    int rc = udr_read_latest(u, "Service", service_scan_fn, &scan, err, errlen);
    if (rc != NDT_OK)
        return rc;
    if (scan.n == 0) {
        snprintf(err, errlen, "the UDR holds no Service entity (has harmonize written to it?)");
        return NDT_EBADCONF;
    }
    if (scan.n > 1) {
        snprintf(err, errlen, "the UDR holds %zu Service entities (%s, %s%s): name one with --service",
                 scan.n, scan.first, scan.second, scan.n > 2 ? ", ..." : "");
        return NDT_EBADCONF;
    }
    snprintf(out, size, "%s", scan.first);
    return NDT_OK;
}

/* ---- reading the ranges ------------------------------------------------- */

static int number_field(const udr_point *p, const char *name, double *out)
{
    for (size_t i = 0; i < p->nfields; i++) {
        const udr_field *f = &p->fields[i];
        if (f->kind == UDR_FIELD_DOUBLE && strcmp(f->name, name) == 0 && isfinite(f->number)) {
            *out = f->number;
            return 1;
        }
    }
    return 0;
}

static int service_point_fn(void *ctx, const udr_point *p)
{
    udr_reader *r = ctx;
    if (strcmp(p->id, r->service) != 0)
        return NDT_OK;
    service_point sp = { .ts_ms = p->ts_ms };
    sp.has_users = number_field(p, FEAT_SERVICE_USERS_ATTR, &sp.users);
    sp.has_pods = number_field(p, FEAT_SERVICE_PODS_ATTR, &sp.pods);
    if (!sp.has_users && !sp.has_pods)
        return NDT_OK;
    if (grow((void **)&r->svc, &r->svc_cap, r->nsvc, sizeof(*r->svc), FEAT_UDR_MAX_POINTS) !=
        NDT_OK) {
        r->overflow = 1;
        return NDT_ERROR;
    }
    r->svc[r->nsvc++] = sp;
    return NDT_OK;
}

static int pod_point_fn(void *ctx, const udr_point *p)
{
    udr_reader *r = ctx;
    pod_point pp = { .ts_ms = p->ts_ms };
    for (int i = 0; i < FEAT_POD_NATTR; i++) {
        if (number_field(p, feat_pod_attrs[i], &pp.v[i]))
            pp.has |= 1u << i;
    }
    if (!pp.has)
        return NDT_OK;
    if (grow((void **)&r->points, &r->points_cap, r->npoints, sizeof(*r->points),
             FEAT_UDR_MAX_POINTS) != NDT_OK) {
        r->overflow = 1;
        return NDT_ERROR;
    }
    long pod = pod_intern(r, p->id);
    if (pod < 0) {
        r->overflow = 1;
        return NDT_ERROR;
    }
    pp.pod = (uint32_t)pod;
    r->points[r->npoints++] = pp;
    return NDT_OK;
}

static int cmp_pod_point(const void *a, const void *b)
{
    const pod_point *x = a, *y = b;
    if (x->ts_ms != y->ts_ms)
        return x->ts_ms < y->ts_ms ? -1 : 1;
    return x->pod < y->pod ? -1 : x->pod > y->pod;
}

static int cmp_service_point(const void *a, const void *b)
{
    const service_point *x = a, *y = b;
    return x->ts_ms < y->ts_ms ? -1 : x->ts_ms > y->ts_ms;
}

static int read_ranges(udr *u, udr_reader *r, int64_t from_ms, int64_t to_ms, char *err,
                       size_t errlen)
{
    int64_t svc_from = from_ms < INT64_MIN + FEAT_UDR_LOOKBACK_MS ? INT64_MIN
                                                                  : from_ms - FEAT_UDR_LOOKBACK_MS;
    int rc = udr_read_range(u, "Service", svc_from, to_ms, service_point_fn, r, err, errlen);
    if (rc == NDT_OK)
        rc = udr_read_range(u, "ServiceComponent", from_ms, to_ms, pod_point_fn, r, err, errlen);
    if (r->overflow) {
        snprintf(err, errlen,
                 "more than %u points between --from and --to (or out of memory): read a "
                 "shorter range",
                 FEAT_UDR_MAX_POINTS);
        return NDT_EBADCONF;
    }
    if (rc != NDT_OK)
        return rc;
    /* Backends return time order; the rows' correctness must not hang on it. */
    if (r->npoints)
        qsort(r->points, r->npoints, sizeof(*r->points), cmp_pod_point);
    if (r->nsvc)
        qsort(r->svc, r->nsvc, sizeof(*r->svc), cmp_service_point);
    return NDT_OK;
}

/* ---- membership ---------------------------------------------------------- */

typedef struct relation_scan {
    udr_reader *r;
    int64_t at_ms;
    unsigned char *seen;
} relation_scan;

static int is_belongs_to(const char *predicate)
{
    return strcmp(predicate, "service") == 0 || strcmp(predicate, "belongsTo") == 0;
}

static int relation_fn(void *ctx, const udr_relation *rel)
{
    relation_scan *s = ctx;
    if (!is_belongs_to(rel->predicate))
        return NDT_OK;
    long i = pod_find(s->r, rel->subject);
    if (i < 0)
        return NDT_OK;
    pod_entry *pod = &s->r->pods[i];
    pod->known = 1;
    pod->member = strcmp(rel->object, s->r->service) == 0;
    pod->from_ms = rel->valid_from_ms;
    pod->to_ms = rel->valid_to_ms;
    s->seen[i] = 1;
    return NDT_OK;
}

/* Asks the UDR which relationships are in force at at_ms and refreshes
 * every pod's cache from the answer. */
static int refresh_membership(udr *u, udr_reader *r, int64_t at_ms, char *err, size_t errlen)
{
    relation_scan s = { r, at_ms, calloc(r->npods ? r->npods : 1, 1) };
    if (!s.seen) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    r->relation_queries++;
    int rc = udr_read_relations(u, at_ms, relation_fn, &s, err, errlen);
    for (size_t i = 0; rc == NDT_OK && i < r->npods; i++) {
        if (!s.seen[i]) {
            r->pods[i].known = 0;
            r->pods[i].absent_at = at_ms;
        }
    }
    free(s.seen);
    return rc;
}

static int pod_answered(const pod_entry *pod, int64_t t)
{
    return (pod->known && pod->from_ms <= t && t < pod->to_ms) || pod->absent_at == t;
}

/* ---- rows ------------------------------------------------------------------ */

typedef struct row_stats {
    uint64_t rows, no_service, incomplete, no_member;
} row_stats;

static int push_row(feat_dataset *out, const feat_raw *row)
{
    if (grow((void **)&out->rows, &out->cap, out->n, sizeof(*out->rows), FEAT_MAX_ROWS_DEFAULT) !=
        NDT_OK)
        return NDT_ERROR;
    out->rows[out->n++] = *row;
    return NDT_OK;
}

/* The row of the instant of points[begin, end) (all the same ts). */
static int build_row(udr *u, udr_reader *r, size_t begin, size_t end, const service_point *svc,
                     feat_dataset *out, row_stats *st, char *err, size_t errlen)
{
    int64_t t = r->points[begin].ts_ms;
    for (size_t i = begin; i < end; i++) {
        if (!pod_answered(&r->pods[r->points[i].pod], t)) {
            int rc = refresh_membership(u, r, t, err, errlen);
            if (rc != NDT_OK)
                return rc;
            break;
        }
    }
    feat_pod_mean mean = { 0 };
    for (size_t i = begin; i < end; i++) {
        const pod_point *pp = &r->points[i];
        const pod_entry *pod = &r->pods[pp->pod];
        if (pod->known && pod->member && pod->from_ms <= t && t < pod->to_ms)
            feat_pod_mean_add(&mean, pp->v, pp->has);
    }
    if (!mean.members) {
        st->no_member++;
        return NDT_OK;
    }
    if (!svc || !svc->has_users) {
        st->no_service++;
        return NDT_OK;
    }
    feat_raw row;
    if (feat_pod_mean_row(&mean, t, svc->users, svc->has_pods ? &svc->pods : NULL, &row) != NDT_OK) {
        st->incomplete++;
        return NDT_OK;
    }
    if (push_row(out, &row) != NDT_OK) {
        snprintf(err, errlen, "more than %u rows (or out of memory): read a shorter range",
                 FEAT_MAX_ROWS_DEFAULT);
        return NDT_EBADCONF;
    }
    st->rows++;
    return NDT_OK;
}

static int build_rows(udr *u, udr_reader *r, feat_dataset *out, char *err, size_t errlen)
{
    row_stats st = { 0 };
    /* The Service's state as of each instant: its values carried forward. */
    service_point state = { 0 };
    size_t next_svc = 0;
    for (size_t begin = 0; begin < r->npoints;) {
        int64_t t = r->points[begin].ts_ms;
        size_t end = begin + 1;
        while (end < r->npoints && r->points[end].ts_ms == t)
            end++;
        for (; next_svc < r->nsvc && r->svc[next_svc].ts_ms <= t; next_svc++) {
            const service_point *sp = &r->svc[next_svc];
            if (sp->has_users) {
                state.has_users = 1;
                state.users = sp->users;
            }
            if (sp->has_pods) {
                state.has_pods = 1;
                state.pods = sp->pods;
            }
        }
        int rc = build_row(u, r, begin, end, state.has_users || state.has_pods ? &state : NULL,
                           out, &st, err, errlen);
        if (rc != NDT_OK)
            return rc;
        begin = end;
    }
    ndt_log(NDT_LOG_DEBUG, "features", "read the twin's state from the UDR",
            NDT_KV_STR("service", r->service), NDT_KV_UINT("rows", st.rows),
            NDT_KV_UINT("pod_points", r->npoints), NDT_KV_UINT("pods", r->npods),
            NDT_KV_UINT("skipped_no_service_value", st.no_service),
            NDT_KV_UINT("skipped_incomplete", st.incomplete),
            NDT_KV_UINT("instants_without_member_pods", st.no_member),
            NDT_KV_UINT("relationship_queries", r->relation_queries));
    return NDT_OK;
}

int feat_udr_read(struct udr *u, const char *service_id, int64_t from_ms, int64_t to_ms,
                  feat_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (from_ms >= to_ms) {
        snprintf(err, errlen, "the time range is empty (from %" PRId64 " >= to %" PRId64 ")",
                 from_ms, to_ms);
        return NDT_EBADCONF;
    }
    udr_reader r = { 0 };
    int rc = resolve_service(u, service_id, r.service, sizeof(r.service), err, errlen);
    if (rc == NDT_OK)
        rc = read_ranges(u, &r, from_ms, to_ms, err, errlen);
    if (rc == NDT_OK)
        rc = build_rows(u, &r, out, err, errlen);
    reader_free(&r);
    if (rc != NDT_OK)
        feat_dataset_free(out);
    return rc;
}

/* ---- the newest row ------------------------------------------------------- */

typedef struct latest_pod {
    char *id;
    int64_t ts_ms;
} latest_pod;

typedef struct latest_scan {
    const char *service;
    latest_pod *pods;
    size_t n, cap;
    int overflow;
    int64_t newest;
} latest_scan;

static int latest_pod_fn(void *ctx, const udr_point *p)
{
    latest_scan *s = ctx;
    char *id = NULL;
    if (grow((void **)&s->pods, &s->cap, s->n, sizeof(*s->pods), FEAT_UDR_MAX_POINTS) != NDT_OK ||
        !(id = strdup(p->id))) {
        s->overflow = 1;
        return NDT_ERROR;
    }
    s->pods[s->n++] = (latest_pod){ id, p->ts_ms };
    return NDT_OK;
}

static int latest_member_fn(void *ctx, const udr_relation *rel)
{
    latest_scan *s = ctx;
    if (!is_belongs_to(rel->predicate) || strcmp(rel->object, s->service) != 0)
        return NDT_OK;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->pods[i].id, rel->subject) == 0 && s->pods[i].ts_ms > s->newest)
            s->newest = s->pods[i].ts_ms;
    }
    return NDT_OK;
}

int feat_udr_latest(struct udr *u, const char *service_id, feat_raw *out, char *err,
                    size_t errlen)
{
    char service[FEAT_UDR_MAX_ID];
    int rc = resolve_service(u, service_id, service, sizeof(service), err, errlen);
    if (rc != NDT_OK)
        return rc;
    /* The newest instant of a pod that belongs to the service now. */
    latest_scan s = { .service = service, .newest = INT64_MIN };
    rc = udr_read_latest(u, "ServiceComponent", latest_pod_fn, &s, err, errlen);
    if (s.overflow) {
        snprintf(err, errlen, "out of memory reading the latest pods");
        rc = NDT_ERROR;
    }
    if (rc == NDT_OK)
        rc = udr_read_relations(u, INT64_MAX - 1, latest_member_fn, &s, err, errlen);
    for (size_t i = 0; i < s.n; i++)
        free(s.pods[i].id);
    free(s.pods);
    if (rc != NDT_OK)
        return rc;
    if (s.newest == INT64_MIN) {
        snprintf(err, errlen, "no pod of %s in the UDR yet", service);
        return NDT_AGAIN;
    }
    /* A window, not the instant alone: the newest instant may be one whose
     * row is incomplete (attributes written at different times). */
    int64_t from = s.newest < INT64_MIN + FEAT_UDR_LATEST_WINDOW_MS
                       ? INT64_MIN
                       : s.newest - FEAT_UDR_LATEST_WINDOW_MS;
    feat_dataset ds;
    rc = feat_udr_read(u, service, from, s.newest + 1, &ds, err, errlen);
    if (rc != NDT_OK)
        return rc;
    if (ds.n == 0) {
        feat_dataset_free(&ds);
        snprintf(err, errlen, "no complete row of %s in the last %d s of its data", service,
                 FEAT_UDR_LATEST_WINDOW_MS / 1000);
        return NDT_AGAIN;
    }
    *out = ds.rows[ds.n - 1];
    feat_dataset_free(&ds);
    return NDT_OK;
}
