/*
 * api_actuate.c: actuation, what-if answers turned into recommendations
 * (docs/API.md, "Actuation").
 *
 * Given a mean latency objective and a replica range [min, max], the
 * recommender asks the served model, for each service of the twin, what
 * the latency would be at every pod count of the range, through exactly
 * the what-if path (api_engine_sweep: model_counterfactual from the
 * twin's current row, then the served predictor), and recommends the
 * smallest count that meets the objective (api_actuate_decide).  Only a
 * gated model recommends: without one, the endpoints answer 503 like the
 * what-ifs and nothing is published.
 *
 * Why a search upward from min and not a formula: the model is a black
 * box (trees or a DNN over regime-aware features), not monotone by
 * construction; the first count that meets the objective is the cheapest
 * answer whatever its shape, and a range of at most API_MAX_REPLICAS_SPAN
 * counts costs that many counterfactuals (~0.17 ms each) once a second.
 *
 * Hysteresis, two guards.  A state that hovers at the objective would
 * make "the smallest count that meets it" flap between two values at
 * every read.  First, a band: a recommendation goes up at once (a missed
 * objective is the costly error) but a candidate below it is only the
 * count that meets the objective with a margin to spare (objective x
 * (1 - margin)).  Second, a scale-down stabilization window (HPA's idea):
 * the recommendation is the largest candidate of the last window, so it
 * comes down only once no read in the window asked for more.  The band
 * alone was not enough on the live demo twin: each read is one 20 ms
 * sample, and the predictions at one or two pods swing more than 10%
 * from sample to sample (measured: 71 changes in ~137 reads; see
 * docs/API.md).  Going up is never delayed.
 *
 * Threads.  One evaluation thread (every API_ACTUATE_EVAL_MS) owns the
 * hysteresis memory and the Kafka producer; it builds the next table of
 * recommendations privately and swaps it in under act->lock, which the
 * HTTP threads take only to copy one entry.  Publishing on ndt.actions
 * (key: the service's entity id) happens when a service's recommendation
 * changes and every actions_interval_ms otherwise, so a consumer that
 * joins late learns the current answer.  The producer's queue is bounded:
 * a message it refuses is counted, not waited for, since the next
 * evaluation publishes a fresher one anyway.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "api/api_internal.h"
#include "common/clock.h"
#include "common/kafka.h"
#include "common/log.h"

#define API_ACTUATE_EVAL_MS 1000
#define API_ACTUATE_MAX_SERVICES 64
#define API_ACTUATE_FLUSH_MS 5000

/* ---- the rule ------------------------------------------------------------ */

const char *api_decision_name(api_decision_kind k)
{
    switch (k) {
    case API_DECIDE_FIRST: return "initial";
    case API_DECIDE_UP: return "scale-up";
    case API_DECIDE_DOWN: return "scale-down";
    case API_DECIDE_HOLD: return "hold";
    case API_DECIDE_UNREACHABLE: return "objective-unreachable";
    }
    return "unknown";
}

/* The smallest k in [lo, hi] with ms[k - lo] <= limit; hi + 1 if none.  A
 * NaN prediction never meets anything. */
static int first_meeting(const double *ms, int lo, int hi, double limit)
{
    for (int k = lo; k <= hi; k++)
        if (ms[k - lo] <= limit)
            return k;
    return hi + 1;
}

int api_actuate_decide(const double *ms, int lo, int hi, double objective_ms, double margin,
                       int prev, api_decision *out)
{
    if (!ms || !out || lo < 1 || hi < lo || hi - lo >= API_MAX_REPLICAS_SPAN || !(objective_ms > 0) ||
        !(margin >= 0 && margin < 1))
        return NDT_EBADCONF;
    int needed = first_meeting(ms, lo, hi, objective_ms);
    int comfortable = first_meeting(ms, lo, hi, objective_ms * (1.0 - margin));
    out->needed = needed > hi ? hi : needed;
    out->comfortable = comfortable > hi ? hi : comfortable;
    if (needed > hi) {
        out->kind = API_DECIDE_UNREACHABLE;
        out->replicas = hi;
        return NDT_OK;
    }
    if (prev <= 0) {
        out->kind = API_DECIDE_FIRST;
        out->replicas = needed;
        return NDT_OK;
    }
    /* A range changed under a running recommender: prev is taken within it. */
    if (prev < lo)
        prev = lo;
    if (prev > hi)
        prev = hi;
    if (needed > prev) {
        out->kind = API_DECIDE_UP;
        out->replicas = needed;
    } else if (out->comfortable < prev) {
        out->kind = API_DECIDE_DOWN;
        out->replicas = out->comfortable;
    } else {
        out->kind = API_DECIDE_HOLD;
        out->replicas = prev;
    }
    return NDT_OK;
}

int api_window_push_max(api_window *w, int64_t now_ms, int64_t window_ms, int candidate)
{
    w->head = (w->head + 1) % API_WINDOW_SLOTS;
    w->t_ms[w->head] = now_ms;
    w->replicas[w->head] = candidate;
    if (w->n < API_WINDOW_SLOTS)
        w->n++;
    int best = candidate;
    for (size_t i = 1; i < w->n; i++) {
        size_t k = (w->head + API_WINDOW_SLOTS - i) % API_WINDOW_SLOTS;
        if (w->t_ms[k] <= now_ms - window_ms)
            break; /* older records are older still */
        if (w->replicas[k] > best)
            best = w->replicas[k];
    }
    return best;
}

/* ---- state --------------------------------------------------------------- */

/* What the evaluation thread remembers of a service between rounds. */
typedef struct svc_memory {
    char service[API_ID_MAX];
    int used;
    uint64_t seen_round;
    int prev;                 /* last recommendation, 0: none */
    api_window window;        /* candidates of the stabilization window */
    int published_replicas;   /* 0: never published */
    int64_t published_ns;
} svc_memory;

/* One service's last evaluation: an answer (status 200) or why not. */
typedef struct rec_entry {
    char service[API_ID_MAX];
    unsigned status;
    const char *code;         /* a string literal of api_fail's callers */
    char detail[384];
    api_sweep sweep;
    api_decision decision;    /* replicas: after the stabilization window */
    int candidate;            /* before it (api_actuate_decide's) */
    int from;                 /* the previous recommendation, 0: none */
    int64_t decided_ms;
} rec_entry;

typedef struct rec_table {
    size_t n;
    rec_entry e[API_ACTUATE_MAX_SERVICES];
    /* No service to evaluate: why (the engine's readiness answer). */
    unsigned status;
    const char *code;         /* a string literal, as above */
    char detail[384];
} rec_table;

struct api_actuator {
    api_engine *engine;
    double objective_ms;
    int lo, hi;
    double margin;
    int64_t window_ms;        /* 0: no stabilization window */
    int64_t interval_ns;
    char topic_name[128];

    pthread_mutex_t lock;     /* guards cur and stopping */
    pthread_cond_t wake;
    int stopping;
    pthread_t thread;
    int started;
    rec_table *cur, *next;    /* readers see cur; the thread fills next */

    rd_kafka_t *producer;     /* NULL: HTTP only */
    rd_kafka_topic_t *topic;
    atomic_ullong delivered, failed, dropped;
    char ids[API_ACTUATE_MAX_SERVICES][API_ID_MAX]; /* the evaluation's scratch */
    svc_memory mem[API_ACTUATE_MAX_SERVICES];        /* the evaluation thread's */
    uint64_t round;
};

/* The memory of service id, a fresh one if it has none (a slot not seen
 * in the last round is reused: its service left the twin). */
static svc_memory *memory_of(api_actuator *act, const char *id)
{
    svc_memory *free_slot = NULL;
    for (size_t i = 0; i < API_ACTUATE_MAX_SERVICES; i++) {
        svc_memory *m = &act->mem[i];
        if (m->used && strcmp(m->service, id) == 0)
            return m;
        if (!free_slot && (!m->used || m->seen_round + 1 < act->round))
            free_slot = m;
    }
    if (!free_slot)
        return NULL; /* cannot happen: at most API_ACTUATE_MAX_SERVICES ids a round */
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = 1;
    snprintf(free_slot->service, sizeof(free_slot->service), "%s", id);
    return free_slot;
}

static const rec_entry *find_entry(const rec_table *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].service, id) == 0)
            return &t->e[i];
    return NULL;
}

/* ---- rendering ----------------------------------------------------------- */

static int render_reason(const api_actuator *act, const rec_entry *r, ndt_buf *b)
{
    const api_sweep *sw = &r->sweep;
    const api_decision *d = &r->decision;
    double at_rec = sw->ms[d->replicas - sw->lo];
    int ok = ndt_buf_printf(b, "%d users on %d pods are predicted %.1f ms against a %.1f ms objective; ",
                            sw->users, sw->pods, sw->current_ms, act->objective_ms) == NDT_OK;
    if (!ok)
        return NDT_ERROR;
    switch (d->kind) {
    case API_DECIDE_FIRST:
        ok = ndt_buf_printf(b, "%d pods are the fewest in [%d, %d] predicted to meet it (%.1f ms)", d->replicas,
                            sw->lo, sw->hi, at_rec) == NDT_OK;
        break;
    case API_DECIDE_UP:
        ok = ndt_buf_printf(b, "the previous %d pods would miss it (%.1f ms); %d pods are the fewest predicted "
                            "to meet it (%.1f ms)", r->from, sw->ms[r->from - sw->lo], d->replicas, at_rec) == NDT_OK;
        break;
    case API_DECIDE_DOWN:
        ok = ndt_buf_printf(b, "%d pods meet it with the %.0f%% margin (%.1f ms) and no read of the last %lld s "
                            "asked for more; previously %d", d->replicas, act->margin * 100, at_rec,
                            (long long)(act->window_ms / 1000), r->from) == NDT_OK;
        break;
    case API_DECIDE_HOLD:
        if (d->needed == d->replicas)
            ok = ndt_buf_printf(b, "keeping %d pods, the fewest predicted to meet it (%.1f ms)", d->replicas,
                                at_rec) == NDT_OK;
        else
            ok = ndt_buf_printf(b, "keeping %d pods (%.1f ms): %d would meet it now (%.1f ms), but a scale-down "
                                "needs the %.0f%% margin on every read of the last %lld s", d->replicas, at_rec,
                                d->needed, sw->ms[d->needed - sw->lo], act->margin * 100,
                                (long long)(act->window_ms / 1000)) == NDT_OK;
        break;
    case API_DECIDE_UNREACHABLE:
        ok = ndt_buf_printf(b, "no count in [%d, %d] is predicted to meet it; %d pods, the maximum, are "
                            "predicted %.1f ms", sw->lo, sw->hi, d->replicas, at_rec) == NDT_OK;
        break;
    }
    return ok ? NDT_OK : NDT_ERROR;
}

/* The recommendation as published on ndt.actions and answered by GET
 * /v1/recommendation; scale_only: KEDA's {"replicas":N,...}. */
static int render(const api_actuator *act, const rec_entry *r, int scale_only, ndt_buf *b)
{
    const api_sweep *sw = &r->sweep;
    char at[40], decided[40];
    api_format_rfc3339(sw->state_ms, at, sizeof(at));
    api_format_rfc3339(r->decided_ms, decided, sizeof(decided));
    if (scale_only)
        return ndt_buf_printf(b, "{\"replicas\":%d,\"service\":", r->decision.replicas) == NDT_OK &&
               api_json_string(b, sw->service) == NDT_OK &&
               ndt_buf_append_str(b, ",\"objective_ms\":") == NDT_OK &&
               api_json_number(b, act->objective_ms) == NDT_OK &&
               ndt_buf_append_str(b, ",\"model\":") == NDT_OK && api_json_string(b, sw->model) == NDT_OK &&
               ndt_buf_printf(b, ",\"state_at\":\"%s\"}\n", at) == NDT_OK ? NDT_OK : NDT_ERROR;
    int ok = ndt_buf_append_str(b, "{\"service\":") == NDT_OK && api_json_string(b, sw->service) == NDT_OK &&
             ndt_buf_printf(b, ",\"current_pods\":%d,\"current_users\":%d,\"recommended_replicas\":%d",
                            sw->pods, sw->users, r->decision.replicas) == NDT_OK &&
             ndt_buf_append_str(b, ",\"predicted_ms_current\":") == NDT_OK &&
             api_json_number(b, sw->current_ms) == NDT_OK &&
             ndt_buf_append_str(b, ",\"predicted_ms_recommended\":") == NDT_OK &&
             api_json_number(b, sw->ms[r->decision.replicas - sw->lo]) == NDT_OK &&
             ndt_buf_append_str(b, ",\"objective_ms\":") == NDT_OK && api_json_number(b, act->objective_ms) == NDT_OK &&
             ndt_buf_printf(b, ",\"min_replicas\":%d,\"max_replicas\":%d,\"decision\":\"%s\",\"reason\":\"",
                            sw->lo, sw->hi, api_decision_name(r->decision.kind)) == NDT_OK &&
             render_reason(act, r, b) == NDT_OK && /* plain ASCII: no escaping needed */
             ndt_buf_append_str(b, "\",\"model\":") == NDT_OK && api_json_string(b, sw->model) == NDT_OK &&
             ndt_buf_append_str(b, ",\"deployment_grade\":") == NDT_OK && api_json_string(b, sw->grade) == NDT_OK &&
             ndt_buf_printf(b, ",\"state_at\":\"%s\",\"decided_at\":\"%s\"}\n", at, decided) == NDT_OK;
    return ok ? NDT_OK : NDT_ERROR;
}

/* ---- evaluation and publishing -------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    NDT_UNUSED(rk);
    api_actuator *act = opaque;
    if (m->err) {
        atomic_fetch_add(&act->failed, 1);
        ndt_log(NDT_LOG_WARN, "api", "recommendation not delivered", NDT_KV_STR("topic", act->topic_name),
                NDT_KV_STR("error", rd_kafka_err2str(m->err)));
    } else {
        atomic_fetch_add(&act->delivered, 1);
    }
}

static void publish(api_actuator *act, const rec_entry *r, svc_memory *m, int64_t now_ns)
{
    char text[4096];
    ndt_buf b = { .data = text, .len = 0, .cap = sizeof(text), .limit = sizeof(text) - 1 };
    if (render(act, r, 0, &b) != NDT_OK) {
        atomic_fetch_add(&act->dropped, 1);
        return;
    }
    if (b.len && text[b.len - 1] == '\n')
        b.len--; /* one JSON object per message, no trailing newline */
    if (rd_kafka_produce(act->topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, text, b.len, r->service,
                         strlen(r->service), NULL) != 0) {
        atomic_fetch_add(&act->dropped, 1);
        ndt_log(NDT_LOG_WARN, "api", "recommendation dropped", NDT_KV_STR("service", r->service),
                NDT_KV_STR("error", rd_kafka_err2str(rd_kafka_last_error())));
        return;
    }
    m->published_replicas = r->decision.replicas;
    m->published_ns = now_ns;
}

/* The band's candidate through the stabilization window, the decision
 * named after what happened to the recommendation. */
static void stabilize(api_actuator *act, svc_memory *m, rec_entry *r)
{
    api_decision *d = &r->decision;
    r->from = m->prev;
    r->candidate = d->replicas;
    int64_t now = ndt_clock_mono_ns() / 1000000;
    int replicas = act->window_ms > 0 ? api_window_push_max(&m->window, now, act->window_ms, d->replicas)
                                      : d->replicas;
    if (replicas > act->hi)
        replicas = act->hi;
    d->replicas = replicas;
    if (d->kind != API_DECIDE_UNREACHABLE && m->prev > 0)
        d->kind = replicas > m->prev ? API_DECIDE_UP : replicas < m->prev ? API_DECIDE_DOWN : API_DECIDE_HOLD;
    m->prev = replicas;
}

/* One round: every service's sweep and decision into act->next, published
 * when due, then swapped in for the readers. */
static void evaluate(api_actuator *act)
{
    char (*ids)[API_ID_MAX] = act->ids;
    rec_table *prev = act->cur, *t = act->next;
    size_t n = api_engine_service_ids(act->engine, ids, API_ACTUATE_MAX_SERVICES);
    int64_t now_ns = ndt_clock_mono_ns();
    memset(t, 0, sizeof(*t));
    t->status = 200;
    if (n == 0) {
        ndt_buf tmp;
        ndt_buf_init(&tmp, 4096);
        api_answer a = { .status = 200, .body = &tmp };
        if (api_engine_ready(act->engine, &a) == 200 || !a.code) /* services appeared since */
            api_fail(&a, 503, "no-state", "the twin has no Service entity yet");
        ndt_buf_free(&tmp);
        t->status = a.status;
        t->code = a.code;
        snprintf(t->detail, sizeof(t->detail), "%s", a.detail);
    }
    act->round++;
    for (size_t i = 0; i < n; i++) {
        rec_entry *r = &t->e[t->n++];
        svc_memory *m = memory_of(act, ids[i]);
        snprintf(r->service, sizeof(r->service), "%s", ids[i]);
        if (m)
            m->seen_round = act->round; /* kept while in the twin, even failing */
        api_answer a = { .status = 200 };
        r->status = m ? api_engine_sweep(act->engine, r->service, act->lo, act->hi, &r->sweep, &a)
                      : api_fail(&a, 500, "internal", "no memory slot for this service");
        if (r->status == 200 && api_actuate_decide(r->sweep.ms, act->lo, act->hi, act->objective_ms, act->margin,
                                                   m->prev, &r->decision) != NDT_OK)
            r->status = api_fail(&a, 500, "internal", "the replica search refused its arguments");
        if (r->status != 200) { /* the memory survives a failed round */
            r->code = a.code ? a.code : "internal";
            snprintf(r->detail, sizeof(r->detail), "%s", a.detail);
            continue;
        }
        stabilize(act, m, r);
        r->decided_ms = ndt_clock_real_ms();
        if (r->decision.replicas != r->from)
            ndt_log(NDT_LOG_INFO, "api", "recommendation", NDT_KV_STR("service", r->service),
                    NDT_KV_INT("current_pods", r->sweep.pods), NDT_KV_INT("replicas", r->decision.replicas),
                    NDT_KV_STR("decision", api_decision_name(r->decision.kind)),
                    NDT_KV_STR("model", r->sweep.model));
        if (act->producer && (m->published_replicas != r->decision.replicas ||
                              now_ns - m->published_ns >= act->interval_ns))
            publish(act, r, m, now_ns);
    }
    pthread_mutex_lock(&act->lock);
    act->cur = t;
    act->next = prev;
    pthread_mutex_unlock(&act->lock);
    if (act->producer)
        rd_kafka_poll(act->producer, 0);
}

static void *actuator_thread(void *arg)
{
    api_actuator *act = arg;
    for (;;) {
        pthread_mutex_lock(&act->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (int64_t)API_ACTUATE_EVAL_MS * 1000000;
        until.tv_sec += ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        while (!act->stopping && pthread_cond_timedwait(&act->wake, &act->lock, &until) == 0)
            ;
        int stopping = act->stopping;
        pthread_mutex_unlock(&act->lock);
        if (stopping)
            return NULL;
        evaluate(act);
    }
}

/* ---- lifecycle ----------------------------------------------------------- */

static int start_producer(api_actuator *act, const api_options *o, char *err, size_t errlen)
{
    const char *defaults[] = {
        "client.id", "ndtpipe-actuate",
        "enable.idempotence", "true",
        "acks", "all",
        "linger.ms", "5",
        /* A recommendation older than this is worth less than the next one. */
        "message.timeout.ms", "30000",
        "queue.buffering.max.messages", "10000",
        NULL,
    };
    char why[512];
    rd_kafka_conf_t *conf = ndt_kafka_conf_new(o->actions_brokers, defaults, o->actions_xopts, err, errlen);
    if (!conf)
        return NDT_EBADCONF;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, act);
    if (!(act->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why)))) {
        snprintf(err, errlen, "kafka producer for %s: %s", act->topic_name, why);
        rd_kafka_conf_destroy(conf);
        return NDT_ERROR;
    }
    if (!(act->topic = rd_kafka_topic_new(act->producer, act->topic_name, NULL))) {
        snprintf(err, errlen, "kafka: cannot create the topic handle of %s", act->topic_name);
        return NDT_ERROR;
    }
    return NDT_OK;
}

int api_actuator_new(const api_options *o, api_engine *e, api_actuator **out, char *err, size_t errlen)
{
    int lo = o->min_replicas > 0 ? o->min_replicas : 1;
    int hi = o->max_replicas > 0 ? o->max_replicas : API_DEFAULT_MAX_REPLICAS;
    double margin = o->scale_down_margin > 0 ? o->scale_down_margin
                    : o->scale_down_margin < 0 ? 0 : API_DEFAULT_SCALE_DOWN_MARGIN;
    if (!(o->objective_ms > 0) || o->objective_ms > 1e9) {
        snprintf(err, errlen, "--objective-ms: expected a positive latency in ms");
        return NDT_EBADCONF;
    }
    if (hi < lo || hi > API_MAX_PODS || hi - lo >= API_MAX_REPLICAS_SPAN) {
        snprintf(err, errlen, "--min-replicas %d / --max-replicas %d: expected min <= max, at most %d apart",
                 lo, hi, API_MAX_REPLICAS_SPAN - 1);
        return NDT_EBADCONF;
    }
    if (o->scale_down_window_ms > API_MAX_SCALE_DOWN_WINDOW_MS) {
        snprintf(err, errlen, "--scale-down-window: at most %ds", API_MAX_SCALE_DOWN_WINDOW_MS / 1000);
        return NDT_EBADCONF;
    }
    if (!(margin < 1)) {
        snprintf(err, errlen, "--scale-down-margin: expected a fraction below 1");
        return NDT_EBADCONF;
    }
    api_actuator *act = calloc(1, sizeof(*act));
    if (!act || !(act->cur = calloc(1, sizeof(rec_table))) || !(act->next = calloc(1, sizeof(rec_table)))) {
        api_actuator_free(act);
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    pthread_mutex_init(&act->lock, NULL);
    pthread_cond_init(&act->wake, NULL);
    act->engine = e;
    act->objective_ms = o->objective_ms;
    act->lo = lo;
    act->hi = hi;
    act->margin = margin;
    act->window_ms = o->scale_down_window_ms > 0 ? o->scale_down_window_ms
                     : o->scale_down_window_ms < 0 ? 0 : API_DEFAULT_SCALE_DOWN_WINDOW_MS;
    act->interval_ns = (int64_t)(o->actions_interval_ms > 0 ? o->actions_interval_ms
                                                            : API_DEFAULT_ACTIONS_INTERVAL_MS) * 1000000;
    snprintf(act->topic_name, sizeof(act->topic_name), "%s",
             o->actions_topic ? o->actions_topic : API_DEFAULT_ACTIONS_TOPIC);
    int rc = o->actions_brokers ? start_producer(act, o, err, errlen) : NDT_OK;
    if (rc != NDT_OK) {
        api_actuator_free(act);
        return rc;
    }
    evaluate(act); /* the first answers are there when the server starts */
    if (pthread_create(&act->thread, NULL, actuator_thread, act) != 0) {
        snprintf(err, errlen, "cannot start the actuation thread");
        api_actuator_free(act);
        return NDT_ERROR;
    }
    act->started = 1;
    ndt_log(NDT_LOG_INFO, "api", "actuation on", NDT_KV_INT("min_replicas", lo), NDT_KV_INT("max_replicas", hi),
            NDT_KV_STR("topic", act->producer ? act->topic_name : "(none: HTTP only)"));
    *out = act;
    return NDT_OK;
}

void api_actuator_free(api_actuator *act)
{
    if (!act)
        return;
    if (act->started) {
        pthread_mutex_lock(&act->lock);
        act->stopping = 1;
        pthread_cond_signal(&act->wake);
        pthread_mutex_unlock(&act->lock);
        pthread_join(act->thread, NULL);
    }
    if (act->producer) {
        if (rd_kafka_flush(act->producer, API_ACTUATE_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
            ndt_log(NDT_LOG_WARN, "api", "recommendations still in flight at exit",
                    NDT_KV_INT("messages", rd_kafka_outq_len(act->producer)));
        if (act->topic)
            rd_kafka_topic_destroy(act->topic);
        rd_kafka_destroy(act->producer);
    }
    if (act->cur || act->next) {
        pthread_cond_destroy(&act->wake);
        pthread_mutex_destroy(&act->lock);
    }
    free(act->cur);
    free(act->next);
    free(act);
}

/* ---- HTTP ---------------------------------------------------------------- */

unsigned api_actuator_recommendation(api_actuator *act, const char *service, int scale_only, api_answer *a)
{
    if (!act)
        return api_fail(a, 404, "no-objective",
                        "actuation is off: start serve (or run) with --objective-ms to get recommendations");
    char full[API_ID_MAX + 32] = "";
    if (service && service[0])
        snprintf(full, sizeof(full), "%s%s", strncmp(service, "urn:ngsi-ld:", 12) == 0 ? "" : "urn:ngsi-ld:Service:",
                 service);
    rec_entry r;
    unsigned st = 200;
    pthread_mutex_lock(&act->lock);
    const rec_table *t = act->cur;
    const rec_entry *found = NULL;
    if (t->n == 0)
        st = api_fail(a, t->status == 200 ? 503 : t->status, t->code ? t->code : "no-state", "%s",
                      t->detail[0] ? t->detail : "the twin has no Service entity yet");
    else if (full[0] && !(found = find_entry(t, full)))
        st = api_fail(a, 404, "unknown-service", "no service '%.200s' in the twin", service);
    else if (!full[0] && t->n > 1)
        st = api_fail(a, 400, "service-required",
                      "the twin has %zu services; name one (?service=ID, or /v1/scale/ID)", t->n);
    else if (!found)
        found = &t->e[0];
    if (found)
        r = *found;
    pthread_mutex_unlock(&act->lock);
    if (st != 200)
        return st;
    if (r.status != 200)
        return api_fail(a, r.status, r.code, "%s", r.detail);
    if (render(act, &r, scale_only, a->body) != NDT_OK)
        return api_fail(a, 500, "internal", "the answer does not fit the response buffer");
    return 200;
}

int api_actuator_render_metrics(api_actuator *act, ndt_buf *out)
{
    if (!act)
        return NDT_OK;
    int ok = ndt_buf_printf(out,
                            "# HELP ndtpipe_api_actions_delivered_total Recommendations Kafka acknowledged on the actions topic.\n"
                            "# TYPE ndtpipe_api_actions_delivered_total counter\n"
                            "ndtpipe_api_actions_delivered_total %llu\n"
                            "# HELP ndtpipe_api_actions_failed_total Recommendations Kafka failed to deliver.\n"
                            "# TYPE ndtpipe_api_actions_failed_total counter\n"
                            "ndtpipe_api_actions_failed_total %llu\n"
                            "# HELP ndtpipe_api_actions_dropped_total Recommendations refused by the full producer queue.\n"
                            "# TYPE ndtpipe_api_actions_dropped_total counter\n"
                            "ndtpipe_api_actions_dropped_total %llu\n"
                            "# HELP ndtpipe_api_latency_objective_seconds The mean latency objective of actuation.\n"
                            "# TYPE ndtpipe_api_latency_objective_seconds gauge\n"
                            "ndtpipe_api_latency_objective_seconds %g\n",
                            (unsigned long long)atomic_load(&act->delivered),
                            (unsigned long long)atomic_load(&act->failed),
                            (unsigned long long)atomic_load(&act->dropped), act->objective_ms / 1000.0) == NDT_OK;
    pthread_mutex_lock(&act->lock);
    int header = 0;
    for (size_t i = 0; ok && i < act->cur->n; i++) {
        const rec_entry *r = &act->cur->e[i];
        if (r->status != 200 || strchr(r->service, '"') || strchr(r->service, '\\') || strchr(r->service, '\n'))
            continue;
        if (!header++)
            ok = ndt_buf_append_str(out,
                                    "# HELP ndtpipe_api_recommended_replicas The replicas recommended to meet the objective.\n"
                                    "# TYPE ndtpipe_api_recommended_replicas gauge\n") == NDT_OK;
        ok = ok && ndt_buf_printf(out, "ndtpipe_api_recommended_replicas{service=\"%s\"} %d\n", r->service,
                                  r->decision.replicas) == NDT_OK;
    }
    pthread_mutex_unlock(&act->lock);
    return ok ? NDT_OK : NDT_ERROR;
}
