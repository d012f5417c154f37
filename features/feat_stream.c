/*
 * feat_stream.c: the streaming mode of the feature stage, without Kafka
 * (feat_stage.c feeds it): NGSI-LD entity fragments in, the paper's raw
 * rows rebuilt per service and instant, features per row (feat_compute,
 * the batch mode's own function) and windows of them out.
 *
 * Rows are rebuilt by the rules of feat_udr.c (docs/DATA-MODEL.md, "The
 * dataset read back"), so that the stream and `export` + batch features
 * give the same numbers for the same data:
 *   - a pod (ServiceComponent) counts for a service at an instant when
 *     its `service` (or `belongsTo`) relationship names that service and
 *     it has a value observed at that instant;
 *   - the six avg_* columns are means over those pods, each over the pods
 *     that carry it; a row needs all six and the users value;
 *   - users and pods come from the Service as of the instant (its newest
 *     value observed at or before it); pods falls back to the number of
 *     member pods observed at the instant.
 *
 * Fragments arrive keyed by entity, so across partitions in no global
 * order, and a consumer catching up reads one partition far ahead of
 * another.  Each source (partition) has its own progress, the newest
 * observation it delivered; the watermark is the smallest progress among
 * the sources still delivering (one that is caught up, told by
 * feat_stream_source_idle, holds nothing back), as in Flink and Kafka
 * Streams.  An instant is closed once the watermark is `lateness` past
 * it; an observation for an instant already closed is late: dropped and
 * counted.  At most max_instants are
 * open; past that the oldest is closed early (counted), which bounds
 * memory whatever the input.
 *
 * Windows: rows are grouped per service into windows aligned to
 * multiples of window_ms, split where the regime (users, pods) changes,
 * since a window mixing regimes would average physically different
 * states.  window_ms 0 emits every row as its own window (what the
 * batch-equality test reads).
 */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "features/features.h"

#define STREAM_DEFAULT_LATENESS_MS 200
#define STREAM_DEFAULT_MAX_INSTANTS 4096
#define STREAM_MAX_PODS 1024
#define STREAM_MAX_SERVICES 64
#define STREAM_SERVICE_HISTORY 64
#define STREAM_MAX_SOURCES 256

/* The columns are features.h's FEAT_POD_* (feat_pod_attrs). */
enum {
    COL_DEPTH = FEAT_POD_DEPTH,
    COL_BACKLOG = FEAT_POD_BACKLOG,
    COL_CPU_PROCESS = FEAT_POD_CPU_PROCESS,
    COL_CPU_SYSTEM = FEAT_POD_CPU_SYSTEM,
    COL_MEM = FEAT_POD_MEM_SYSTEM,
    COL_INFER = FEAT_POD_INFER,
    NCOLS = FEAT_POD_NATTR
};

typedef struct pod_info {
    char *id;
    int service; /* index into services, -1 unknown */
} pod_info;

/* One pod's values at one instant. */
typedef struct pod_obs {
    int pod;
    unsigned has;
    double v[NCOLS];
} pod_obs;

typedef struct instant {
    int64_t ts_ms;
    pod_obs *obs;
    size_t nobs, cap;
} instant;

typedef struct service_value {
    int64_t ts_ms;
    double v;
} service_value;

typedef struct open_window {
    int open;
    int64_t start_ms, end_ms, first_ms, last_ms;
    int users, pods;
    size_t rows;
    double sum[FEAT_DIM];
    double sum_target, sum_ms;
} open_window;

typedef struct service_info {
    char *id;
    service_value users[STREAM_SERVICE_HISTORY], pods[STREAM_SERVICE_HISTORY];
    size_t nusers, npods;
    open_window w;
} service_info;

/* An input partition: how far its data has got, and whether it is
 * caught up (nothing to read: it cannot hold the watermark back). */
typedef struct source {
    int64_t max_ms;
    int idle;
} source;

struct feat_stream {
    feat_stream_options o;
    source sources[STREAM_MAX_SOURCES];
    size_t nsources;
    int current;         /* the source of the fragment being added */
    pod_info pods[STREAM_MAX_PODS];
    size_t npods;
    service_info services[STREAM_MAX_SERVICES];
    size_t nservices;
    instant *instants; /* sorted by ts, oldest first */
    size_t ninstants, instants_cap;
    int64_t newest_ms;   /* newest observation seen */
    int64_t fragment_max_ms; /* newest observation of the last fragment added */
    int64_t closed_ms;   /* instants at or before this are closed */
    feat_stream_stats st;
};

/* ---- small helpers ------------------------------------------------------ */

/* "2026-01-02T03:04:05.678Z" (fraction and Z optional digits, UTC only:
 * what the harmonizer writes). */
static int parse_time_ms(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return NDT_EBADCONF;
    int ms = 0;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        }
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return NDT_EBADCONF;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = sec };
    *out = (int64_t)timegm(&tm) * 1000 + ms;
    return NDT_OK;
}

static int find_service(feat_stream *s, const char *id, int add)
{
    for (size_t i = 0; i < s->nservices; i++) {
        if (strcmp(s->services[i].id, id) == 0)
            return (int)i;
    }
    if (!add || s->nservices == STREAM_MAX_SERVICES)
        return -1;
    service_info *sv = &s->services[s->nservices];
    memset(sv, 0, sizeof(*sv));
    if (!(sv->id = strdup(id)))
        return -1;
    return (int)s->nservices++;
}

static int find_pod(feat_stream *s, const char *id)
{
    for (size_t i = 0; i < s->npods; i++) {
        if (strcmp(s->pods[i].id, id) == 0)
            return (int)i;
    }
    if (s->npods == STREAM_MAX_PODS)
        return -1;
    if (!(s->pods[s->npods].id = strdup(id)))
        return -1;
    s->pods[s->npods].service = -1;
    return (int)s->npods++;
}

/* Keeps the changes of a value, sorted by time (an equal time
 * overwrites): a Service reports its users every scrape but changes them
 * rarely, so a short history covers a long backlog. */
static void history_put(service_value *h, size_t *n, int64_t ts, double v)
{
    size_t i = *n;
    while (i > 0 && h[i - 1].ts_ms > ts)
        i--;
    if (i > 0 && h[i - 1].ts_ms == ts) {
        h[i - 1].v = v;
        return;
    }
    if (i > 0 && h[i - 1].v == v && (i == *n || h[i].v != v))
        return; /* no change at ts */
    if (*n == STREAM_SERVICE_HISTORY) {
        if (i == 0)
            return; /* older than everything kept */
        memmove(h, h + 1, (size_t)(i - 1) * sizeof(*h));
        i--;
    } else {
        memmove(h + i + 1, h + i, (*n - i) * sizeof(*h));
        (*n)++;
    }
    h[i] = (service_value){ ts, v };
}

/* The newest value at or before ts. */
static int history_at(const service_value *h, size_t n, int64_t ts, double *v)
{
    for (size_t i = n; i > 0; i--) {
        if (h[i - 1].ts_ms <= ts) {
            *v = h[i - 1].v;
            return 1;
        }
    }
    return 0;
}

/* ---- instants ------------------------------------------------------------ */

static instant *instant_get(feat_stream *s, int64_t ts)
{
    size_t i = s->ninstants;
    while (i > 0 && s->instants[i - 1].ts_ms > ts)
        i--;
    if (i > 0 && s->instants[i - 1].ts_ms == ts)
        return &s->instants[i - 1];
    if (s->ninstants == s->instants_cap) {
        size_t cap = s->instants_cap ? 2 * s->instants_cap : 64;
        instant *grown = realloc(s->instants, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        s->instants = grown;
        s->instants_cap = cap;
    }
    memmove(s->instants + i + 1, s->instants + i, (s->ninstants - i) * sizeof(*s->instants));
    s->ninstants++;
    s->instants[i] = (instant){ .ts_ms = ts };
    return &s->instants[i];
}

static int instant_put(instant *in, int pod, int col, double v)
{
    for (size_t i = 0; i < in->nobs; i++) {
        if (in->obs[i].pod == pod) {
            in->obs[i].v[col] = v;
            in->obs[i].has |= 1u << col;
            return NDT_OK;
        }
    }
    if (in->nobs == in->cap) {
        size_t cap = in->cap ? 2 * in->cap : 8;
        pod_obs *grown = realloc(in->obs, cap * sizeof(*grown));
        if (!grown)
            return NDT_ERROR;
        in->obs = grown;
        in->cap = cap;
    }
    pod_obs *o = &in->obs[in->nobs++];
    memset(o, 0, sizeof(*o));
    o->pod = pod;
    o->v[col] = v;
    o->has = 1u << col;
    return NDT_OK;
}

/* ---- windows ---------------------------------------------------------------- */

static int window_emit(feat_stream *s, service_info *sv)
{
    open_window *w = &sv->w;
    if (!w->open)
        return NDT_OK;
    feat_window out = { .service = sv->id, .start_ms = w->start_ms, .end_ms = w->end_ms,
                        .first_ms = w->first_ms, .last_ms = w->last_ms, .users = w->users,
                        .pods = w->pods, .rows = w->rows };
    for (int k = 0; k < FEAT_DIM; k++)
        out.features[k] = w->sum[k] / (double)w->rows;
    out.log_latency = w->sum_target / (double)w->rows;
    out.latency_ms = w->sum_ms / (double)w->rows;
    w->open = 0;
    s->st.windows++;
    return s->o.on_window ? s->o.on_window(s->o.ctx, &out) : NDT_OK;
}

static int window_add(feat_stream *s, service_info *sv, const feat_raw *row)
{
    int64_t start = row->timestamp_ms, end = row->timestamp_ms + 1;
    if (s->o.window_ms > 0) {
        int64_t q = row->timestamp_ms / s->o.window_ms;
        if (row->timestamp_ms < 0 && row->timestamp_ms % s->o.window_ms)
            q--;
        start = q * s->o.window_ms;
        end = start + s->o.window_ms;
    }
    open_window *w = &sv->w;
    if (w->open && (w->start_ms != start || w->users != row->users || w->pods != row->pods)) {
        int rc = window_emit(s, sv);
        if (rc != NDT_OK)
            return rc;
    }
    if (!w->open) {
        memset(w, 0, sizeof(*w));
        w->open = 1;
        w->start_ms = start;
        w->end_ms = end;
        w->first_ms = row->timestamp_ms;
        w->users = row->users;
        w->pods = row->pods;
    }
    double x[FEAT_DIM];
    feat_compute(row, x);
    for (int k = 0; k < FEAT_DIM; k++)
        w->sum[k] += x[k];
    w->sum_target += feat_target(row->infer_ms);
    w->sum_ms += row->infer_ms;
    w->rows++;
    w->last_ms = row->timestamp_ms;
    if (s->o.window_ms == 0)
        return window_emit(s, sv);
    return NDT_OK;
}

/* ---- closing an instant: one row per service ---------------------------- */

static int close_service_row(feat_stream *s, const instant *in, int svc)
{
    service_info *sv = &s->services[svc];
    feat_pod_mean mean = { 0 };
    for (size_t i = 0; i < in->nobs; i++) {
        const pod_obs *o = &in->obs[i];
        if (s->pods[o->pod].service == svc)
            feat_pod_mean_add(&mean, o->v, o->has);
    }
    if (!mean.members)
        return NDT_OK;
    double users = 0, pods = 0;
    int have_pods = history_at(sv->pods, sv->npods, in->ts_ms, &pods);
    feat_raw row;
    if (!history_at(sv->users, sv->nusers, in->ts_ms, &users) ||
        feat_pod_mean_row(&mean, in->ts_ms, users, have_pods ? &pods : NULL, &row) != NDT_OK) {
        s->st.incomplete++;
        return NDT_OK;
    }
    s->st.rows++;
    if (s->o.on_row) {
        int rc = s->o.on_row(s->o.ctx, sv->id, &row);
        if (rc != NDT_OK)
            return rc;
    }
    return window_add(s, sv, &row);
}

static int close_oldest(feat_stream *s)
{
    instant *in = &s->instants[0];
    int rc = NDT_OK;
    for (size_t svc = 0; svc < s->nservices && rc == NDT_OK; svc++)
        rc = close_service_row(s, in, (int)svc);
    s->closed_ms = in->ts_ms;
    free(in->obs);
    memmove(s->instants, s->instants + 1, (s->ninstants - 1) * sizeof(*s->instants));
    s->ninstants--;
    return rc;
}

/* ---- fragments ------------------------------------------------------------------ */

/* A Property's number and observedAt; 0 when it is not one. */
static int property(const cJSON *attr, double *v, int64_t *ts)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(attr, "value");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(attr, "observedAt");
    if (!cJSON_IsNumber(value) || !cJSON_IsString(at) || !isfinite(value->valuedouble))
        return 0;
    return parse_time_ms(at->valuestring, ts) == NDT_OK ? (*v = value->valuedouble, 1) : 0;
}

/* A Service value counts for progress too: rows wait for it. */
static void note_time(feat_stream *s, int64_t ts)
{
    if (ts > s->fragment_max_ms)
        s->fragment_max_ms = ts;
    if (ts > s->sources[s->current].max_ms)
        s->sources[s->current].max_ms = ts;
    if (ts > s->newest_ms)
        s->newest_ms = ts;
}

static int observe(feat_stream *s, int64_t ts, int pod, int col, double v)
{
    note_time(s, ts);
    if (s->closed_ms != INT64_MIN && ts <= s->closed_ms) {
        s->st.late++;
        return NDT_OK;
    }
    instant *in = instant_get(s, ts);
    if (!in || instant_put(in, pod, col, v) != NDT_OK)
        return NDT_ERROR;
    return NDT_OK;
}

static int add_pod(feat_stream *s, const cJSON *e, const char *id)
{
    int pod = find_pod(s, id);
    if (pod < 0) {
        s->st.dropped++;
        return NDT_OK;
    }
    const cJSON *rel = cJSON_GetObjectItemCaseSensitive(e, "service");
    if (!rel)
        rel = cJSON_GetObjectItemCaseSensitive(e, "belongsTo");
    const cJSON *obj = rel ? cJSON_GetObjectItemCaseSensitive(rel, "object") : NULL;
    if (cJSON_IsString(obj)) {
        int svc = find_service(s, obj->valuestring, 1);
        if (svc >= 0)
            s->pods[pod].service = svc;
    }
    for (int c = 0; c < NCOLS; c++) {
        double v;
        int64_t ts;
        const cJSON *attr = cJSON_GetObjectItemCaseSensitive(e, feat_pod_attrs[c]);
        if (attr && property(attr, &v, &ts) && observe(s, ts, pod, c, v) != NDT_OK)
            return NDT_ERROR;
    }
    return NDT_OK;
}

static void add_service(feat_stream *s, const cJSON *e, const char *id)
{
    int svc = find_service(s, id, 1);
    if (svc < 0) {
        s->st.dropped++;
        return;
    }
    service_info *sv = &s->services[svc];
    double v;
    int64_t ts;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, FEAT_SERVICE_USERS_ATTR);
    if (a && property(a, &v, &ts)) {
        history_put(sv->users, &sv->nusers, ts, v);
        note_time(s, ts);
    }
    a = cJSON_GetObjectItemCaseSensitive(e, FEAT_SERVICE_PODS_ATTR);
    if (a && property(a, &v, &ts)) {
        history_put(sv->pods, &sv->npods, ts, v);
        note_time(s, ts);
    }
}

static int source_index(feat_stream *s, int src)
{
    if (src < 0 || src >= STREAM_MAX_SOURCES)
        src = 0;
    while (s->nsources <= (size_t)src)
        s->sources[s->nsources++] = (source){ INT64_MIN, 1 };
    return src;
}

void feat_stream_source_idle(feat_stream *s, int src, int idle)
{
    src = source_index(s, src);
    s->sources[src].idle = idle;
}

/* How far every input has got: the smallest progress among the sources
 * still delivering (a caught-up source holds nothing back), or the
 * newest observation when all are caught up. */
static int64_t watermark(const feat_stream *s)
{
    int64_t w = INT64_MAX;
    for (size_t i = 0; i < s->nsources; i++) {
        if (!s->sources[i].idle && s->sources[i].max_ms < w)
            w = s->sources[i].max_ms;
    }
    return w == INT64_MAX ? s->newest_ms : w;
}

int feat_stream_add(feat_stream *s, int src, const char *json, size_t len, char *err,
                    size_t errlen)
{
    s->fragment_max_ms = INT64_MIN;
    s->current = source_index(s, src);
    s->sources[s->current].idle = 0;
    cJSON *e = cJSON_ParseWithLength(json, len);
    if (!e) {
        snprintf(err, errlen, "not JSON");
        return NDT_EBADCONF;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
    int rc = NDT_OK;
    if (!cJSON_IsObject(e) || !cJSON_IsString(id) || !cJSON_IsString(type)) {
        snprintf(err, errlen, "not an NGSI-LD entity (no string id and type)");
        rc = NDT_EBADCONF;
    } else if (strcmp(type->valuestring, "ServiceComponent") == 0) {
        rc = add_pod(s, e, id->valuestring);
        if (rc != NDT_OK)
            snprintf(err, errlen, "out of memory");
    } else if (strcmp(type->valuestring, "Service") == 0) {
        add_service(s, e, id->valuestring);
    }
    s->st.fragments += rc == NDT_OK;
    cJSON_Delete(e);
    return rc;
}

int feat_stream_advance(feat_stream *s)
{
    int rc = NDT_OK;
    int64_t w = watermark(s);
    while (rc == NDT_OK && s->ninstants > 0 &&
           ((w != INT64_MIN && w - s->instants[0].ts_ms >= s->o.lateness_ms) ||
            s->ninstants > s->o.max_instants)) {
        if (s->ninstants > s->o.max_instants)
            s->st.forced_closes++;
        rc = close_oldest(s);
    }
    return rc;
}

int feat_stream_finish(feat_stream *s)
{
    int rc = NDT_OK;
    while (rc == NDT_OK && s->ninstants > 0)
        rc = close_oldest(s);
    for (size_t i = 0; rc == NDT_OK && i < s->nservices; i++)
        rc = window_emit(s, &s->services[i]);
    return rc;
}

int64_t feat_stream_open_from(const feat_stream *s)
{
    int64_t from = s->ninstants ? s->instants[0].ts_ms : INT64_MAX;
    for (size_t i = 0; i < s->nservices; i++) {
        const open_window *w = &s->services[i].w;
        if (w->open && w->first_ms < from)
            from = w->first_ms;
    }
    return from;
}

int64_t feat_stream_fragment_ms(const feat_stream *s)
{
    return s->fragment_max_ms;
}

void feat_stream_get_stats(const feat_stream *s, feat_stream_stats *out)
{
    *out = s->st;
    out->open_instants = s->ninstants;
}

int feat_stream_new(const feat_stream_options *o, feat_stream **out)
{
    feat_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NDT_ERROR;
    s->o = *o;
    if (s->o.window_ms < 0)
        s->o.window_ms = 0;
    if (s->o.lateness_ms <= 0)
        s->o.lateness_ms = STREAM_DEFAULT_LATENESS_MS;
    if (!s->o.max_instants)
        s->o.max_instants = STREAM_DEFAULT_MAX_INSTANTS;
    s->newest_ms = INT64_MIN;
    s->closed_ms = INT64_MIN;
    *out = s;
    return NDT_OK;
}

void feat_stream_free(feat_stream *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ninstants; i++)
        free(s->instants[i].obs);
    free(s->instants);
    for (size_t i = 0; i < s->npods; i++)
        free(s->pods[i].id);
    for (size_t i = 0; i < s->nservices; i++)
        free(s->services[i].id);
    free(s);
}
