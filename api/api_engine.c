/*
 * api_engine.c: what answers a prediction or a what-if: the served model,
 * a snapshot of the twin's current state, and a memo of answers.
 *
 * Thread model.  MHD runs requests on a small thread pool; UDR handles are
 * not thread-safe (udr.h), and the served model may be replaced while
 * the server runs.  So:
 *   - engine->lock guards the served model, the memo and the snapshot of
 *     the twin's state; a what-if holds it for a snapshot lookup and, on
 *     a memo miss, one MVA pass of the counterfactual and one prediction
 *     (two for the first question asked of a state);
 *   - a refresher thread owns a UDR handle of its own and rebuilds the
 *     snapshot every state_refresh_ms (the services, each one's latest
 *     raw row, feat_udr_latest, and the counterfactual's fit to that row),
 *     taking the lock only to swap it in: a UDR read (a window of rows,
 *     milliseconds on a busy twin) and the fit never delay an answer;
 *   - the entity and graph endpoints use a third UDR handle under
 *     engine->view_lock, so a large listing never blocks a what-if.
 * Parsing, authentication, formatting and metrics stay outside the locks.
 * A state older than max_state_age_ms is stale: what-ifs get 503 and
 * /readyz is not ready.
 *
 * Answers are memoised: a what-if is a pure function of (model, state
 * row, change), and the state row only changes when the UDR has a newer
 * one, so a controller asking the same few questions between two state
 * updates gets the computed answer again, bit for bit, from a
 * direct-mapped table (API_MEMO_SLOTS; a collision just recomputes).  It
 * has room for a controller's whole sweep (a hundred or two candidate
 * changes) with few collisions: 4096 slots of 288 bytes, 1.2 MB.  A slot
 * keeps the answer's numbers as text, so a hit formats no number.
 * A miss costs what depends on the change only: the state's share (the
 * MVA fit of its unknowns, the prediction for the row itself) is computed
 * once per state and kept in the snapshot, so a controller sweeping many
 * candidate changes against one state pays one MVA pass and one
 * prediction of the 2000-tree model per new question (docs/PERFORMANCE.md
 * has the numbers); a hit costs a hash and a compare.
 *
 * The served model is the registry's newest gated one (or --model),
 * looked up again at most every two seconds: a model graded by `ndtpipe
 * validate` while the server runs is picked up, and one regraded below
 * the gate stops answering (503) rather than keep serving unvalidated
 * answers.  A lookup reads the model.json files (a few kB each).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "common/clock.h"
#include "common/log.h"

#define API_MAX_SERVICES 64
#define API_MEMO_SLOTS 4096
#define API_PICK_RETRY_NS 2000000000LL

typedef struct service_state {
    char id[API_ID_MAX];
    feat_raw row;
    int rc;             /* of feat_udr_latest: NDT_OK, NDT_AGAIN (no data yet), an error */
    char err[200];      /* why, when rc is not NDT_OK */
    /* What every what-if against this row shares: the counterfactual's
     * fit (by the refresher, outside the lock) and the served model's
     * prediction for the row itself (the answer's baseline_ms, computed
     * on first use; valid while baseline_model is the served model's
     * generation, 0: not yet). */
    model_counterfactual_state fit;
    uint64_t baseline_model;
    double baseline_ms;
} service_state;

/* What the refresher read last: the services and their states. */
typedef struct state_snapshot {
    int rc;             /* of listing the services */
    char err[200];
    size_t n;
    service_state services[API_MAX_SERVICES];
} state_snapshot;

/* The served model's handle (see "the one prediction path" below). */
typedef model_predictor served_model;

/* The numbers of an answer as text: three shortest round-trip doubles
 * and four ints fit with room to spare. */
#define API_MEMO_TEXT 192

/* One remembered what-if: the key (state row, change) and its answer,
 * as the text of the answer's first part (the numbers: formatting them
 * as shortest round-trip doubles costs more than the rest of a hit). */
typedef struct whatif_memo {
    int used;
    feat_raw state;
    model_change change;
    unsigned short text_len;
    char text[API_MEMO_TEXT];
} whatif_memo;

struct api_engine {
    pthread_mutex_t lock;
    udr *state_udr;            /* the refresher thread's */
    udr *view_udr;             /* entities and graph, under view_lock */
    pthread_mutex_t view_lock;
    pthread_t refresher;
    int refresher_started;
    int stopping;              /* under lock */
    pthread_cond_t wake;       /* wakes the refresher to stop */
    const char *registry;
    const char *want_model;
    int64_t max_age_ms;
    int64_t refresh_ns;

    /* The served model (NULL: none servable yet). */
    served_model *served;
    uint64_t served_generation; /* bumped whenever `served` changes */
    api_model_entry model;
    char why_no_model[NDT_ERRBUF_SIZE];
    int64_t picked_ns;

    /* The twin's state as last read (under lock); the refresher builds
     * the next one in `next` (its own) and swaps it in. */
    state_snapshot snap;
    state_snapshot next;

    /* Memoised what-ifs of the served model (cleared when it changes). */
    whatif_memo memo[API_MEMO_SLOTS];
    uint64_t memo_hits, memo_misses;
};

/* ---- the one prediction path ------------------------------------------- */

/* The served model is reached only through the three functions below, on
 * models.h's served predictor: an XGBoost entry compiled into the flat
 * tree layout (bit-identical to XGBoost, ~13x faster per row) or a DNN,
 * with the model's baseline added back.  Nothing else in the API sees
 * the model. */
static int served_load(api_engine *e, const char *id, served_model **out, char *err, size_t errlen)
{
    return model_predictor_load(e->registry, id, out, err, errlen);
}

static void served_free(served_model *m) { model_predictor_free(m); }

/* Latency in ms of each raw row (feature vector, model, baseline, inverse
 * target: exactly what `train` fitted). */
static int engine_predict_ms(api_engine *e, const feat_raw *rows, size_t n, double *ms, char *err,
                             size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (model_predictor_predict_ms(e->served, &rows[i], &ms[i], err, errlen) != NDT_OK)
            return NDT_ERROR;
    return NDT_OK;
}

/* The prediction for the service's current row, once per (row, served
 * model): every what-if against one state shares it (caller holds
 * e->lock). */
static int engine_baseline_ms(api_engine *e, service_state *s, double *ms, char *err, size_t errlen)
{
    if (s->baseline_model != e->served_generation) {
        if (engine_predict_ms(e, &s->row, 1, &s->baseline_ms, err, errlen) != NDT_OK)
            return NDT_ERROR;
        s->baseline_model = e->served_generation;
    }
    *ms = s->baseline_ms;
    return NDT_OK;
}

/* ---- lifecycle --------------------------------------------------------- */

/* Drops the served model (it lost its gate); answers turn 503. */
static void engine_unload(api_engine *e, const char *why)
{
    ndt_log(NDT_LOG_WARN, "api", "model no longer served", NDT_KV_STR("model", e->model.id),
            NDT_KV_STR("reason", why));
    served_free(e->served);
    e->served = NULL;
    e->served_generation++;
    memset(&e->model, 0, sizeof(e->model));
}

/* The model to serve, looked up in the registry at most once per
 * API_PICK_RETRY_NS: the newest gated one (or --model) is loaded when it
 * differs from the one served, and a served model whose grade fell below
 * the gate is dropped.  NDT_OK while one is served. */
static int engine_model(api_engine *e)
{
    int64_t now = ndt_clock_mono_ns();
    if (e->picked_ns && now - e->picked_ns < API_PICK_RETRY_NS)
        return e->served ? NDT_OK : NDT_AGAIN;
    e->picked_ns = now;
    char err[NDT_ERRBUF_SIZE];
    api_model_entry entry;
    int rc = api_registry_pick(e->registry, e->want_model, &entry, err, sizeof(err));
    if (rc == NDT_OK && e->served && strcmp(entry.id, e->model.id) == 0) {
        e->model = entry; /* the same model, perhaps regraded within the gate */
        return NDT_OK;
    }
    served_model *next = NULL;
    if (rc == NDT_OK)
        rc = served_load(e, entry.id, &next, err, sizeof(err));
    if (rc != NDT_OK) {
        if (strcmp(err, e->why_no_model) != 0)
            ndt_log(NDT_LOG_WARN, "api", "no model to serve", NDT_KV_STR("reason", err));
        snprintf(e->why_no_model, sizeof(e->why_no_model), "%s", err);
        if (e->served)
            engine_unload(e, err);
        return NDT_AGAIN;
    }
    served_free(e->served);
    e->served = next;
    e->served_generation++;
    e->model = entry;
    e->why_no_model[0] = '\0';
    memset(e->memo, 0, sizeof(e->memo));
    ndt_log(NDT_LOG_INFO, "api", "serving model", NDT_KV_STR("model", entry.id),
            NDT_KV_STR("deployment_grade", entry.grade),
            NDT_KV_STR("kind", model_predictor_kind(e->served)));
    return NDT_OK;
}

/* ---- the twin's state --------------------------------------------------- */

/* Reads every service's latest state into e->next, then swaps it in. */
static void engine_refresh(api_engine *e)
{
    state_snapshot *n = &e->next;
    char ids[API_MAX_SERVICES][API_ID_MAX];
    size_t count = 0;
    n->rc = api_twin_services(e->state_udr, ids, API_MAX_SERVICES, &count, n->err, sizeof(n->err));
    n->n = n->rc == NDT_OK ? count : 0;
    for (size_t i = 0; i < n->n; i++) {
        service_state *s = &n->services[i];
        /* The fit is a function of the row's bytes alone, and most
         * refreshes read the row they read last time: that row's fit is
         * kept rather than computed again (O(users) x ~15 per service). */
        model_counterfactual_state last_fit = s->fit;
        memset(s, 0, sizeof(*s));
        snprintf(s->id, sizeof(s->id), "%s", ids[i]);
        s->rc = feat_udr_latest(e->state_udr, s->id, &s->row, s->err, sizeof(s->err));
        if (s->rc == NDT_OK && memcmp(&last_fit.current, &s->row, sizeof(s->row)) == 0)
            s->fit = last_fit;
        else if (s->rc == NDT_OK)
            model_counterfactual_fit(&s->row, &s->fit);
        if (s->rc != NDT_OK && s->rc != NDT_AGAIN)
            ndt_log(NDT_LOG_WARN, "api", "reading the twin's state failed", NDT_KV_STR("service", s->id),
                    NDT_KV_STR("error", s->err));
    }
    if (n->rc != NDT_OK)
        ndt_log(NDT_LOG_WARN, "api", "listing the twin's services failed", NDT_KV_STR("error", n->err));
    pthread_mutex_lock(&e->lock);
    /* A row the twin still holds keeps its cached baseline prediction. */
    for (size_t i = 0; i < n->n && i < e->snap.n; i++) {
        const service_state *old = &e->snap.services[i];
        if (old->rc == NDT_OK && n->services[i].rc == NDT_OK && strcmp(old->id, n->services[i].id) == 0 &&
            memcmp(&old->row, &n->services[i].row, sizeof(old->row)) == 0) {
            n->services[i].baseline_model = old->baseline_model;
            n->services[i].baseline_ms = old->baseline_ms;
        }
    }
    e->snap.rc = n->rc;
    memcpy(e->snap.err, n->err, sizeof(n->err));
    e->snap.n = n->n;
    memcpy(e->snap.services, n->services, n->n * sizeof(n->services[0]));
    pthread_mutex_unlock(&e->lock);
}

static void *engine_refresher(void *arg)
{
    api_engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + e->refresh_ns;
        until.tv_sec += ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        while (!e->stopping && pthread_cond_timedwait(&e->wake, &e->lock, &until) == 0)
            ;
        int stopping = e->stopping;
        pthread_mutex_unlock(&e->lock);
        if (stopping)
            return NULL;
        engine_refresh(e);
    }
}

int api_engine_new(const api_options *o, api_engine **out, char *err, size_t errlen)
{
    api_engine *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->view_lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    e->registry = o->registry;
    e->want_model = o->model_id;
    e->max_age_ms = o->max_state_age_ms > 0 ? o->max_state_age_ms : API_DEFAULT_MAX_STATE_AGE_MS;
    e->refresh_ns = (int64_t)(o->state_refresh_ms > 0 ? o->state_refresh_ms : API_DEFAULT_STATE_REFRESH_MS) * 1000000;
    int rc = udr_open(&e->state_udr, o->udr_url, NULL, err, errlen);
    if (rc == NDT_OK)
        rc = udr_open(&e->view_udr, o->udr_url, NULL, err, errlen);
    if (rc != NDT_OK) {
        api_engine_free(e);
        return rc;
    }
    /* A registry that cannot be read at all is the user's to fix now; an
     * ungated model only means 503 until one is graded. */
    api_model_entry probe;
    char why[NDT_ERRBUF_SIZE];
    if (api_registry_pick(e->registry, NULL, &probe, why, sizeof(why)) == NDT_EBADCONF) {
        snprintf(err, errlen, "%s", why);
        api_engine_free(e);
        return NDT_EBADCONF;
    }
    engine_model(e);
    engine_refresh(e); /* the first answers see the twin, not an empty snapshot */
    if (pthread_create(&e->refresher, NULL, engine_refresher, e) != 0) {
        snprintf(err, errlen, "cannot start the state refresher thread");
        api_engine_free(e);
        return NDT_ERROR;
    }
    e->refresher_started = 1;
    *out = e;
    return NDT_OK;
}

void api_engine_free(api_engine *e)
{
    if (!e)
        return;
    if (e->refresher_started) {
        pthread_mutex_lock(&e->lock);
        e->stopping = 1;
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->refresher, NULL);
    }
    served_free(e->served);
    if (e->state_udr)
        udr_close(e->state_udr);
    if (e->view_udr)
        udr_close(e->view_udr);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->view_lock);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

/* The service a request names ("" = the only one) and its state, from the
 * snapshot (caller holds e->lock).  A status other than 200 is an error
 * answer. */
static unsigned engine_state(api_engine *e, const char *want, service_state **out, api_answer *a)
{
    state_snapshot *snap = &e->snap;
    service_state *s = NULL;
    if (snap->rc != NDT_OK)
        return api_fail(a, 500, "udr-error", "reading the twin's services failed: %s", snap->err);
    if (!want[0]) {
        if (snap->n == 0)
            return api_fail(a, 503, "no-state", "the twin has no Service entity yet");
        if (snap->n > 1)
            return api_fail(a, 400, "service-required",
                            "the twin has %zu services; name one in \"service\" (GET "
                            "/ngsi-ld/v1/entities?type=Service lists them)", snap->n);
        s = &snap->services[0];
    } else {
        char full[API_ID_MAX + 32];
        if (strncmp(want, "urn:ngsi-ld:", 12) == 0)
            snprintf(full, sizeof(full), "%s", want);
        else
            snprintf(full, sizeof(full), "urn:ngsi-ld:Service:%s", want);
        for (size_t i = 0; i < snap->n && !s; i++)
            if (strcmp(snap->services[i].id, full) == 0)
                s = &snap->services[i];
        if (!s)
            return api_fail(a, 404, "unknown-service", "no service '%.200s' in the twin", want);
    }
    if (s->rc == NDT_AGAIN)
        return api_fail(a, 503, "no-state", "the twin holds no state of %.200s yet: %s", s->id, s->err);
    if (s->rc != NDT_OK)
        return api_fail(a, 500, "udr-error", "reading the state of %.200s failed: %s", s->id, s->err);
    int64_t age = ndt_clock_real_ms() - s->row.timestamp_ms;
    if (age > e->max_age_ms)
        return api_fail(a, 503, "stale-state",
                        "the state of %.200s is %lld ms old (limit %lld ms); is the harmonizer running?",
                        s->id, (long long)age, (long long)e->max_age_ms);
    *out = s;
    return 200;
}

static unsigned engine_check_model(api_engine *e, const char *want, api_answer *a)
{
    if (engine_model(e) != NDT_OK)
        return api_fail(a, 503, "no-gated-model", "%s", e->why_no_model);
    if (want[0] && strcmp(want, e->model.id) != 0)
        return api_fail(a, 404, "unknown-model", "model '%.100s' is not served; this server serves %s",
                        want, e->model.id);
    return 200;
}

/* ---- answers ------------------------------------------------------------ */

static int answer_tail(api_engine *e, ndt_buf *b, const service_state *s)
{
    int ok = ndt_buf_append_str(b, ",\"model\":") == NDT_OK && api_json_string(b, e->model.id) == NDT_OK &&
             ndt_buf_append_str(b, ",\"deployment_grade\":") == NDT_OK &&
             api_json_string(b, e->model.grade) == NDT_OK;
    if (ok && s) {
        char at[40];
        api_format_rfc3339(s->row.timestamp_ms, at, sizeof(at));
        ok = ndt_buf_append_str(b, ",\"service\":") == NDT_OK && api_json_string(b, s->id) == NDT_OK &&
             ndt_buf_printf(b, ",\"state_at\":\"%s\"", at) == NDT_OK;
    }
    return ok && ndt_buf_append_str(b, "}\n") == NDT_OK ? NDT_OK : NDT_ERROR;
}

/* FNV-1a over the key's bytes; both structs are padding-free, so equal
 * values are equal bytes. */
_Static_assert(sizeof(feat_raw) == 2 * sizeof(int64_t) + 6 * sizeof(double), "feat_raw has padding");
_Static_assert(sizeof(model_change) == 4 * sizeof(int), "model_change has padding");
static size_t memo_slot(const feat_raw *state, const model_change *change)
{
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)state;
    for (size_t i = 0; i < sizeof(*state); i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    p = (const unsigned char *)change;
    for (size_t i = 0; i < sizeof(*change); i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return (size_t)(h % API_MEMO_SLOTS);
}

static unsigned engine_whatif_locked(api_engine *e, const api_whatif_request *req, api_answer *a)
{
    char err[NDT_ERRBUF_SIZE];
    unsigned st = engine_check_model(e, req->model, a);
    service_state *s = NULL;
    if (st == 200)
        st = engine_state(e, req->service, &s, a);
    if (st != 200)
        return st;
    model_change change;
    if (api_whatif_change(req, &s->row, &change, err, sizeof(err)) != NDT_OK)
        return api_fail(a, 400, "bad-value", "%s", err);
    ndt_buf *b = a->body;
    whatif_memo *m = &e->memo[memo_slot(&s->row, &change)];
    int ok;
    if (m->used && memcmp(&m->state, &s->row, sizeof(m->state)) == 0 &&
        memcmp(&m->change, &change, sizeof(change)) == 0) {
        e->memo_hits++;
        ok = ndt_buf_append(b, m->text, m->text_len) == NDT_OK;
    } else {
        feat_raw after;
        double ms[2];
        if (model_counterfactual_apply(&s->fit, &change, &after, err, sizeof(err)) != NDT_OK)
            return api_fail(a, 400, "bad-value", "%s", err);
        if (engine_baseline_ms(e, s, &ms[0], err, sizeof(err)) != NDT_OK ||
            engine_predict_ms(e, &after, 1, &ms[1], err, sizeof(err)) != NDT_OK)
            return api_fail(a, 500, "predict-failed", "%s", err);
        e->memo_misses++;
        size_t start = b->len;
        ok = ndt_buf_append_str(b, "{\"baseline_ms\":") == NDT_OK && api_json_number(b, ms[0]) == NDT_OK &&
             ndt_buf_append_str(b, ",\"predicted_ms\":") == NDT_OK && api_json_number(b, ms[1]) == NDT_OK &&
             ndt_buf_append_str(b, ",\"delta_ms\":") == NDT_OK && api_json_number(b, ms[1] - ms[0]) == NDT_OK &&
             ndt_buf_printf(b, ",\"state\":{\"users\":%d,\"pods\":%d},\"counterfactual\":{\"users\":%d,\"pods\":%d}",
                            s->row.users, s->row.pods, after.users, after.pods) == NDT_OK;
        /* Remembered only whole; a text that does not fit (it always
         * should) is simply computed again next time. */
        m->used = ok && b->len - start <= sizeof(m->text);
        if (m->used) {
            m->state = s->row;
            m->change = change;
            m->text_len = (unsigned short)(b->len - start);
            memcpy(m->text, b->data + start, m->text_len);
        }
    }
    if (!ok || answer_tail(e, b, s) != NDT_OK)
        return api_fail(a, 500, "internal", "the answer does not fit the response buffer");
    return 200;
}

unsigned api_engine_whatif(api_engine *e, const api_whatif_request *req, api_answer *a)
{
    pthread_mutex_lock(&e->lock);
    unsigned st = engine_whatif_locked(e, req, a);
    pthread_mutex_unlock(&e->lock);
    return st;
}

static unsigned engine_predict_locked(api_engine *e, api_predict_request *req, api_answer *a)
{
    char err[NDT_ERRBUF_SIZE];
    unsigned st = engine_check_model(e, req->model, a);
    if (st != 200)
        return st;
    service_state *s = NULL;
    /* A complete state needs nothing from the twin unless a service is named. */
    if (req->present != API_STATE_ALL || req->service[0]) {
        st = engine_state(e, req->service, &s, a);
        if (st != 200)
            return st;
        api_predict_fill(req, &s->row);
    }
    double ms;
    if (engine_predict_ms(e, &req->state, 1, &ms, err, sizeof(err)) != NDT_OK)
        return api_fail(a, 500, "predict-failed", "%s", err);
    ndt_buf *b = a->body;
    int ok = ndt_buf_append_str(b, "{\"latency_ms\":") == NDT_OK && api_json_number(b, ms) == NDT_OK;
    if (!ok || answer_tail(e, b, s) != NDT_OK)
        return api_fail(a, 500, "internal", "the answer does not fit the response buffer");
    return 200;
}

unsigned api_engine_predict(api_engine *e, api_predict_request *req, api_answer *a)
{
    pthread_mutex_lock(&e->lock);
    unsigned st = engine_predict_locked(e, req, a);
    pthread_mutex_unlock(&e->lock);
    return st;
}

size_t api_engine_service_ids(api_engine *e, char ids[][API_ID_MAX], size_t max)
{
    pthread_mutex_lock(&e->lock);
    size_t n = e->snap.rc == NDT_OK ? e->snap.n : 0;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        snprintf(ids[i], API_ID_MAX, "%s", e->snap.services[i].id);
    pthread_mutex_unlock(&e->lock);
    return n;
}

/* Each count goes through exactly what POST /v1/whatif {"pods":k} runs
 * (the counterfactual, then the served predictor) but past the memo: a
 * sweep would evict the answers controllers ask for.  The current count
 * is the baseline prediction itself, as in a what-if's baseline_ms. */
static unsigned engine_sweep_locked(api_engine *e, const char *service, int lo, int hi, api_sweep *out,
                                    api_answer *a)
{
    char err[NDT_ERRBUF_SIZE];
    service_state *s = NULL;
    unsigned st = engine_check_model(e, "", a);
    if (st == 200)
        st = engine_state(e, service, &s, a);
    if (st != 200)
        return st;
    if (lo < 1 || hi < lo || hi - lo >= API_MAX_REPLICAS_SPAN)
        return api_fail(a, 500, "internal", "bad replica range [%d, %d]", lo, hi);
    memset(out, 0, sizeof(*out));
    snprintf(out->service, sizeof(out->service), "%s", s->id);
    snprintf(out->model, sizeof(out->model), "%s", e->model.id);
    snprintf(out->grade, sizeof(out->grade), "%s", e->model.grade);
    out->state_ms = s->row.timestamp_ms;
    out->users = s->row.users;
    out->pods = s->row.pods;
    out->lo = lo;
    out->hi = hi;
    if (engine_baseline_ms(e, s, &out->current_ms, err, sizeof(err)) != NDT_OK)
        return api_fail(a, 500, "predict-failed", "%s", err);
    for (int k = lo; k <= hi; k++) {
        if (k == s->row.pods) {
            out->ms[k - lo] = out->current_ms;
            continue;
        }
        model_change change = { .has_pods = 1, .pods = k };
        feat_raw after;
        if (model_counterfactual_apply(&s->fit, &change, &after, err, sizeof(err)) != NDT_OK)
            return api_fail(a, 500, "counterfactual-failed", "%s", err);
        if (engine_predict_ms(e, &after, 1, &out->ms[k - lo], err, sizeof(err)) != NDT_OK)
            return api_fail(a, 500, "predict-failed", "%s", err);
    }
    return 200;
}

unsigned api_engine_sweep(api_engine *e, const char *service, int lo, int hi, api_sweep *out,
                          api_answer *a)
{
    pthread_mutex_lock(&e->lock);
    unsigned st = engine_sweep_locked(e, service, lo, hi, out, a);
    pthread_mutex_unlock(&e->lock);
    return st;
}

static unsigned engine_ready_locked(api_engine *e, api_answer *a)
{
    if (engine_model(e) != NDT_OK)
        return api_fail(a, 503, "no-gated-model", "%s", e->why_no_model);
    if (e->snap.rc == NDT_OK && e->snap.n == 0)
        return api_fail(a, 503, "no-state", "the twin has no Service entity yet");
    unsigned st = e->snap.rc == NDT_OK ? 200 : 503;
    if (st != 200)
        api_fail(a, 503, "udr-error", "reading the twin's services failed: %s", e->snap.err);
    for (size_t i = 0; st == 200 && i < e->snap.n; i++) {
        service_state *s;
        st = engine_state(e, e->snap.services[i].id, &s, a);
    }
    if (st != 200)
        return st;
    ndt_buf_printf(a->body, "{\"status\":\"ready\",\"model\":\"%s\",\"deployment_grade\":\"%s\",\"services\":%zu}\n",
                   e->model.id, e->model.grade, e->snap.n);
    return 200;
}

unsigned api_engine_ready(api_engine *e, api_answer *a)
{
    pthread_mutex_lock(&e->lock);
    unsigned st = engine_ready_locked(e, a);
    pthread_mutex_unlock(&e->lock);
    if (st != 200)
        a->status = st = 503; /* not ready, whatever the reason */
    return st;
}

unsigned api_engine_entities(api_engine *e, const char *type, const char *id, int key_values,
                             api_answer *a)
{
    char err[NDT_ERRBUF_SIZE], id_type[96];
    if (id) {
        if (api_twin_type_of(id, id_type, sizeof(id_type)) != NDT_OK)
            return api_fail(a, 400, "bad-request",
                            "'%.200s' is not an entity id (urn:ngsi-ld:<Type>:<local-id>)", id);
        type = id_type;
    }
    pthread_mutex_lock(&e->view_lock);
    int rc = api_twin_entities(e->view_udr, type, id, key_values, ndt_clock_real_ms(), a->body, err, sizeof(err));
    pthread_mutex_unlock(&e->view_lock);
    if (rc == NDT_EBADCONF)
        return api_fail(a, 404, "not-found", "%s", err);
    if (rc != NDT_OK)
        return api_fail(a, 500, "udr-error", "%s", err);
    return 200;
}

unsigned api_engine_graph(api_engine *e, const char *at, api_answer *a)
{
    char err[NDT_ERRBUF_SIZE];
    int64_t at_ms = ndt_clock_real_ms();
    if (at && api_parse_rfc3339(at, &at_ms) != NDT_OK)
        return api_fail(a, 400, "bad-value", "at: expected an RFC 3339 time like 2026-01-02T03:04:05Z, got '%.60s'", at);
    pthread_mutex_lock(&e->view_lock);
    int rc = api_twin_graph(e->view_udr, at_ms, a->body, err, sizeof(err));
    pthread_mutex_unlock(&e->view_lock);
    if (rc != NDT_OK)
        return api_fail(a, 500, "udr-error", "%s", err);
    return 200;
}

unsigned api_engine_models(api_engine *e, const char *id, api_answer *a)
{
    char err[NDT_ERRBUF_SIZE], served[64] = "";
    pthread_mutex_lock(&e->lock);
    if (engine_model(e) == NDT_OK)
        snprintf(served, sizeof(served), "%s", e->model.id);
    pthread_mutex_unlock(&e->lock);
    int rc = id ? api_registry_get(e->registry, id, a->body, err, sizeof(err))
                : api_registry_list(e->registry, served[0] ? served : NULL, a->body, err, sizeof(err));
    if (rc == NDT_EBADCONF && id)
        return api_fail(a, 404, "unknown-model", "%s", err);
    if (rc != NDT_OK)
        return api_fail(a, 500, "registry-error", "%s", err);
    return 200;
}

/* A label value in the text format's quoting: only \\, \" and \n are
 * escapes there, so other control bytes (never in a URN) are dropped. */
static int prom_label_value(ndt_buf *out, const char *v)
{
    int ok = ndt_buf_append_char(out, '"') == NDT_OK;
    for (; ok && *v; v++) {
        if (*v == '\\' || *v == '"')
            ok = ndt_buf_append_char(out, '\\') == NDT_OK && ndt_buf_append_char(out, *v) == NDT_OK;
        else if (*v == '\n')
            ok = ndt_buf_append_str(out, "\\n") == NDT_OK;
        else if ((unsigned char)*v >= 0x20)
            ok = ndt_buf_append_char(out, *v) == NDT_OK;
    }
    return ok && ndt_buf_append_char(out, '"') == NDT_OK ? NDT_OK : NDT_ERROR;
}

int api_engine_render_metrics(api_engine *e, ndt_buf *out)
{
    pthread_mutex_lock(&e->lock);
    int loaded = e->served != NULL;
    int ok = ndt_buf_printf(out,
                            "# HELP ndtpipe_api_model_loaded 1 when a gated model is loaded and served.\n"
                            "# TYPE ndtpipe_api_model_loaded gauge\n"
                            "ndtpipe_api_model_loaded %d\n", loaded) == NDT_OK;
    if (ok && loaded)
        ok = ndt_buf_printf(out,
                            "# HELP ndtpipe_api_model_info The served model and its deployment grade.\n"
                            "# TYPE ndtpipe_api_model_info gauge\n"
                            "ndtpipe_api_model_info{deployment_grade=\"%s\",model=\"%s\"} 1\n",
                            e->model.grade, e->model.id) == NDT_OK;
    ok = ok && ndt_buf_printf(out,
                              "# HELP ndtpipe_api_twin_services Service entities of the twin at the last read.\n"
                              "# TYPE ndtpipe_api_twin_services gauge\n"
                              "ndtpipe_api_twin_services %zu\n", e->snap.n) == NDT_OK;
    ok = ok && ndt_buf_printf(out,
                              "# HELP ndtpipe_api_whatif_memo_hits_total What-ifs answered from the memo (same state row and change).\n"
                              "# TYPE ndtpipe_api_whatif_memo_hits_total counter\n"
                              "ndtpipe_api_whatif_memo_hits_total %llu\n"
                              "# HELP ndtpipe_api_whatif_memo_misses_total What-ifs computed (counterfactual and prediction).\n"
                              "# TYPE ndtpipe_api_whatif_memo_misses_total counter\n"
                              "ndtpipe_api_whatif_memo_misses_total %llu\n",
                              (unsigned long long)e->memo_hits, (unsigned long long)e->memo_misses) == NDT_OK;
    int64_t now = ndt_clock_real_ms();
    int header = 0;
    for (size_t i = 0; ok && i < e->snap.n; i++) {
        const service_state *s = &e->snap.services[i];
        if (s->rc != NDT_OK)
            continue;
        if (!header++)
            ok = ndt_buf_append_str(out,
                                    "# HELP ndtpipe_api_state_age_seconds Age of the twin state a what-if would start from.\n"
                                    "# TYPE ndtpipe_api_state_age_seconds gauge\n") == NDT_OK;
        ok = ok && ndt_buf_append_str(out, "ndtpipe_api_state_age_seconds{service=") == NDT_OK &&
             prom_label_value(out, s->id) == NDT_OK &&
             ndt_buf_printf(out, "} %.3f\n", (double)(now - s->row.timestamp_ms) / 1000.0) == NDT_OK;
    }
    pthread_mutex_unlock(&e->lock);
    return ok ? NDT_OK : NDT_ERROR;
}
