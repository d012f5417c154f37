/*
 * engine.c: the mapping engine, see engine.h for what it promises.
 *
 * Data layout, chosen for the hot path (a sample whose metric no rule
 * names must cost one hash lookup):
 *   - metric name -> the rules naming it: an open-addressing table built
 *     once from the rules;
 *   - entity id -> entity: open addressing on a 64-bit hash, the
 *     entity holding one slot per attribute rule of its type (rules.h
 *     numbers them), so an attribute update is an array store;
 *   - (rule, series) -> previous counter value for rates, or previous
 *     native histogram for `window: interval`: open addressing on a 64-bit
 *     hash of the rule and the series' name and labels, no strings kept
 *     (a collision needs 2^32 series to become likely).
 * Values of a batch are first accumulated in their slot (pending sum and
 * instant) and become outputs when the instant changes or the batch ends;
 * outputs go to an outbox in the batch arena, sorted by entity and
 * instant at the end so that one UDR point carries every attribute an
 * entity had at one instant.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/log.h"
#include "harmonize/engine.h"
#include "harmonize/histogram.h"

#define ENGINE_DEFAULT_MAX_ENTITIES 100000
#define ENGINE_DEFAULT_MAX_SERIES (1u << 20)
#define ENGINE_DEFAULT_INTERVAL_MS 20
#define ENGINE_MAX_DERIVED 16
#define ENGINE_ID_MAX 1024
#define ENGINE_CONTEXT "https://ndtpipe.example.org/sdm-schemas/context.jsonld"
#define ENGINE_FRAGMENT_LIMIT (1u << 20)

static const char *const twin_names[] = { "unbound", "bound", "synchronized", "outOfSync" };

const char *hdl_twin_state_name(hdl_twin_state s)
{
    return (unsigned)s < HDL_TWIN_NSTATES ? twin_names[s] : "unknown";
}

typedef struct slot {
    int64_t pending_ts;
    double pending_sum;
    int pending;           /* pending_sum holds the value of pending_ts */
    int dirty;             /* pending changed since it was last output */
    int have;              /* latest is set */
    int is_text;
    int64_t ts;            /* latest */
    double num;
    char *text;            /* malloc'ed */
    /* num as JSON text, kept while it does not change (capacities,
     * limits and states repeat scrape after scrape; formatting a double
     * the shortest way is the costliest part of a fragment) */
    char num_text[32];
    uint8_t num_text_len;  /* 0 = not formatted */
    double num_text_of;
} slot;

typedef struct relation {
    const char *predicate; /* owned by the rules */
    char *object;          /* malloc'ed; for a static list, objects joined by '\n' */
    int is_list;
    int64_t since_ms;
} relation;

typedef struct entity {
    char *id;
    uint64_t hash;
    uint64_t seq;          /* creation order: points come out in a stable order */
    size_t type;
    slot *slots;
    relation *rels;
    size_t nrels;
    const hdl_static_entity *statics;
    hdl_twin_state state;
    int64_t state_since_ms;
    int64_t last_obs_ms;   /* newest instant observed, INT64_MIN if none */
    int64_t interval_ms;   /* observed scrape interval, 0 until known */
    uint64_t source;       /* hash of the instance label of its last sample, 0 = none */
    struct entity *next_touched;
    int touched;
} entity;

/* The previous native histogram of a series (window: interval). */
typedef struct hist_snapshot {
    int32_t schema;
    double zero_threshold, zero_count, count, sum;
    size_t npositive, nnegative;
    hdl_native_bucket buckets[]; /* positive, then negative */
} hist_snapshot;

typedef struct series {
    uint64_t key;          /* 0 = empty */
    double prev;
    int64_t prev_ts;
    hist_snapshot *hist;   /* native_histogram rules with window: interval */
} series;

typedef struct outbox_entry {
    entity *e;
    int64_t ts;
    const char *name;
    int is_text;
    double num;
    const char *text;      /* in the batch arena */
    size_t seq;            /* keeps the order of equal keys */
} outbox_entry;

typedef struct metric_bucket {
    const char *metric;    /* NULL = empty */
    size_t len;
    uint64_t hash;
    size_t *rules;
    size_t nrules;
} metric_bucket;

struct hdl_engine {
    const hdl_rules *rules;
    hdl_engine_options opts;
    metric_bucket *metrics;
    size_t metrics_cap;    /* power of two */
    entity **entities;
    size_t entities_cap;   /* power of two, kept at most half full */
    size_t nentities;
    series *series;
    size_t series_cap;
    size_t nseries;
    entity *touched;
    outbox_entry *outbox;
    size_t noutbox, outbox_cap;
    ndt_arena arena;       /* per batch */
    ndt_buf json;
    pcre2_match_data *md;
    size_t **type_rules;   /* per entity type: its attribute and divisor rules */
    size_t *ntype_rules;
    char *shadowable;      /* per rule: another rule of its type sets the same attribute */
    int64_t last_stale_scan_ms;
    int64_t min_threshold_ms;  /* smallest threshold of any entity: how often to scan */
    /* window: interval: the increase of the sample being fed, computed
     * once for every rule of its expansion */
    uint64_t window_sample;    /* stats.samples when computed, 0 = never */
    size_t window_parent;
    int window_have;
    hdl_native_histogram window;
    hdl_native_bucket *window_buckets;
    size_t window_cap;
    hdl_engine_stats stats;
};

/* ---- hashing ------------------------------------------------------------ */

/* A multiply-fold hash, eight bytes a step: the 128-bit product of the
 * state (with the next word mixed in) and an odd constant, its halves
 * folded.  FNV-1a, its predecessor here, is a chain of one multiply per
 * byte; over metric names, entity ids and series it was about a tenth of
 * the engine's time.  A value is only ever compared within one process
 * (tables, series identity), never stored. */
static inline uint64_t hash_fold(uint64_t x)
{
    __uint128_t r = (__uint128_t)x * 0x9e3779b97f4a7c15ull;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = hash_fold(h ^ w);
    }
    /* The tail in the low bytes, its length in the top one ("a" and "a\0"
     * differ), loaded 4 + 2 + 1 without a variable-length memcpy call. */
    uint64_t w = (uint64_t)len << 56;
    unsigned shift = 0;
    if (len & 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        w |= v;
        p += 4, shift = 32;
    }
    if (len & 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        w |= (uint64_t)v << shift;
        p += 2, shift += 16;
    }
    if (len & 1)
        w |= (uint64_t)*p << shift;
    return hash_fold(h ^ w ^ 0x5851f42d4c957f2dull);
}

#define HASH_INIT 0xcbf29ce484222325ull

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* ---- the metric index ------------------------------------------------- */

static metric_bucket *metric_find(const hdl_engine *e, const char *name, size_t len)
{
    size_t mask = e->metrics_cap - 1;
    uint64_t h = hash_bytes(HASH_INIT, name, len);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        metric_bucket *b = &e->metrics[i];
        if (!b->metric)
            return b;
        if (b->hash == h && b->len == len && memcmp(b->metric, name, len) == 0)
            return b;
    }
}

/* Per type, the rules with a slot in its entities; per rule, whether
 * another rule of the type sets the same attribute. */
static int build_type_index(hdl_engine *e)
{
    const hdl_rules *rs = e->rules;
    e->type_rules = calloc(rs->ntypes + 1, sizeof(*e->type_rules));
    e->ntype_rules = calloc(rs->ntypes + 1, sizeof(*e->ntype_rules));
    e->shadowable = calloc(rs->nrules + 1, 1);
    if (!e->type_rules || !e->ntype_rules || !e->shadowable)
        return NDT_ERROR;
    for (size_t i = 0; i < rs->nrules; i++) {
        const hdl_rule *r = &rs->rules[i];
        if (r->kind == HDL_RULE_RELATIONSHIP)
            continue;
        size_t *list = realloc(e->type_rules[r->type], (e->ntype_rules[r->type] + 1) * sizeof(*list));
        if (!list)
            return NDT_ERROR;
        e->type_rules[r->type] = list;
        list[e->ntype_rules[r->type]++] = i;
        for (size_t j = 0; j < rs->nrules; j++)
            if (j != i && rs->rules[j].kind == HDL_RULE_ATTRIBUTE && r->kind == HDL_RULE_ATTRIBUTE &&
                rs->rules[j].type == r->type && strcmp(rs->rules[j].attribute, r->attribute) == 0)
                e->shadowable[i] = 1;
    }
    return NDT_OK;
}

static int build_metric_index(hdl_engine *e)
{
    e->metrics_cap = pow2_at_least(e->rules->nrules * 2 + 1);
    if (!(e->metrics = calloc(e->metrics_cap, sizeof(*e->metrics))))
        return NDT_ERROR;
    for (size_t i = 0; i < e->rules->nrules; i++) {
        const char *m = e->rules->rules[i].metric;
        metric_bucket *b = metric_find(e, m, strlen(m));
        size_t *r = realloc(b->rules, (b->nrules + 1) * sizeof(*r));
        if (!r)
            return NDT_ERROR;
        b->metric = m;
        b->len = strlen(m);
        b->hash = hash_bytes(HASH_INIT, m, b->len);
        b->rules = r;
        b->rules[b->nrules++] = i;
    }
    return NDT_OK;
}

/* ---- entities --------------------------------------------------------- */

static entity **entity_bucket(const hdl_engine *e, const char *id, size_t len, uint64_t h)
{
    size_t mask = e->entities_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        entity **b = &e->entities[i];
        if (!*b || ((*b)->hash == h && strncmp((*b)->id, id, len) == 0 && !(*b)->id[len]))
            return b;
    }
}

static int entities_grow(hdl_engine *e)
{
    size_t cap = e->entities_cap * 2;
    entity **old = e->entities;
    size_t oldcap = e->entities_cap;
    entity **t = calloc(cap, sizeof(*t));
    if (!t)
        return NDT_ERROR;
    e->entities = t;
    e->entities_cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            *entity_bucket(e, old[i]->id, strlen(old[i]->id), old[i]->hash) = old[i];
    free(old);
    return NDT_OK;
}

static entity *entity_get(hdl_engine *e, const char *id, size_t len, size_t type)
{
    uint64_t h = hash_bytes(HASH_INIT, id, len);
    entity **b = entity_bucket(e, id, len, h);
    if (*b)
        return *b;
    if (e->nentities >= e->opts.max_entities) {
        e->stats.entities_dropped++;
        return NULL;
    }
    if ((e->nentities + 1) * 2 > e->entities_cap) {
        if (entities_grow(e) != NDT_OK)
            return NULL;
        b = entity_bucket(e, id, len, h);
    }
    entity *en = calloc(1, sizeof(*en));
    size_t nslots = e->rules->types[type].nslots;
    if (!en || !(en->id = strndup(id, len)) ||
        (nslots && !(en->slots = calloc(nslots, sizeof(slot))))) {
        if (en)
            free(en->id);
        free(en);
        e->stats.entities_dropped++;
        return NULL;
    }
    en->hash = h;
    en->seq = e->stats.entities;
    en->type = type;
    en->state = HDL_TWIN_UNBOUND;
    en->last_obs_ms = INT64_MIN;
    *b = en;
    e->nentities++;
    e->stats.entities++;
    e->stats.in_state[HDL_TWIN_UNBOUND]++;
    return en;
}

static void touch(hdl_engine *e, entity *en)
{
    if (en->touched)
        return;
    en->touched = 1;
    en->next_touched = e->touched;
    e->touched = en;
}

/* ---- outbox ----------------------------------------------------------- */

static int outbox_add(hdl_engine *e, entity *en, int64_t ts, const char *name, double num,
                      const char *text)
{
    if (e->noutbox == e->outbox_cap) {
        size_t cap = e->outbox_cap ? e->outbox_cap * 2 : 256;
        outbox_entry *o = realloc(e->outbox, cap * sizeof(*o));
        if (!o)
            return NDT_ERROR;
        e->outbox = o;
        e->outbox_cap = cap;
    }
    outbox_entry *o = &e->outbox[e->noutbox];
    o->e = en;
    o->ts = ts;
    o->name = name;
    o->is_text = text != NULL;
    o->num = num;
    o->text = NULL;
    if (text && !(o->text = ndt_arena_strndup(&e->arena, text, strlen(text))))
        return NDT_ERROR;
    o->seq = e->noutbox++;
    touch(e, en);
    return NDT_OK;
}

/* ---- twin state ------------------------------------------------------- */

static int twin_set(hdl_engine *e, entity *en, hdl_twin_state to, int64_t ts)
{
    if (en->state == to)
        return NDT_OK;
    if (ndt_log_enabled(NDT_LOG_DEBUG))
        ndt_log(NDT_LOG_DEBUG, "harmonize", "twin state", NDT_KV_STR("id", en->id),
                NDT_KV_STR("from", twin_names[en->state]), NDT_KV_STR("to", twin_names[to]),
                NDT_KV_INT("at", ts), NDT_KV_INT("last_observed", en->last_obs_ms),
                NDT_KV_INT("interval_ms", en->interval_ms));
    e->stats.transitions[en->state][to]++;
    e->stats.in_state[en->state]--;
    e->stats.in_state[to]++;
    en->state = to;
    en->state_since_ms = ts;
    return outbox_add(e, en, ts, "twinState", 0, twin_names[to]);
}

static int64_t twin_threshold(const hdl_engine *e, const entity *en)
{
    if (e->opts.fidelity_ms > 0)
        return e->opts.fidelity_ms;
    int64_t interval = en->interval_ms > 0 ? en->interval_ms : e->opts.default_interval_ms;
    return (int64_t)((double)interval * e->opts.fidelity_intervals);
}

/* A sample of instant ts reached the entity. */
static int twin_observe(hdl_engine *e, entity *en, int64_t ts)
{
    if (en->last_obs_ms != INT64_MIN && ts <= en->last_obs_ms)
        return NDT_OK; /* same instant (another attribute) or a late sample */
    int64_t delta = en->last_obs_ms == INT64_MIN ? -1 : ts - en->last_obs_ms;
    hdl_twin_state to;
    if (en->state == HDL_TWIN_UNBOUND || en->state == HDL_TWIN_OUT_OF_SYNC || delta < 0) {
        to = HDL_TWIN_BOUND;
    } else {
        to = delta <= twin_threshold(e, en) ? HDL_TWIN_SYNCHRONIZED : HDL_TWIN_BOUND;
        /* The interval is learnt from updates that were not a gap, so an
         * outage does not stretch the threshold. */
        if (en->interval_ms == 0 || delta <= 4 * en->interval_ms)
            en->interval_ms = en->interval_ms == 0 ? delta : (en->interval_ms * 3 + delta) / 4;
    }
    en->last_obs_ms = ts;
    int64_t threshold = twin_threshold(e, en);
    if (threshold > 0 && threshold < e->min_threshold_ms)
        e->min_threshold_ms = threshold;
    return twin_set(e, en, to, ts);
}

/* ---- label access ------------------------------------------------------ */

typedef struct sample_view {
    const hdl_sample *s;
    const hdl_rule *rule;
    ndt_str derived_name[ENGINE_MAX_DERIVED];
    ndt_str derived_value[ENGINE_MAX_DERIVED];
    char derived_buf[ENGINE_MAX_DERIVED][256];
    size_t nderived;
} sample_view;

/* ndt_str_cmp(a, name) for a NUL-terminated name, without the strlen
 * and memcmp calls: it runs for every matcher and template label of
 * every sample, and label names differ in their first bytes.  A NUL
 * inside a (sorts below any byte, as memcmp has it). */
static inline int label_cmp_cstr(ndt_str a, const char *name)
{
    size_t i = 0;
    for (; i < a.len && name[i]; i++) {
        if (a.ptr[i] != name[i])
            return (unsigned char)a.ptr[i] < (unsigned char)name[i] ? -1 : 1;
    }
    if (i < a.len)
        return 1; /* name ended first */
    return name[i] ? -1 : 0;
}

static int sample_label(const hdl_sample *s, const char *name, ndt_str *out)
{
    size_t lo = 0, hi = s->nlabels;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = label_cmp_cstr(s->labels[mid].name, name);
        if (c == 0) {
            *out = s->labels[mid].value;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Decoders sort labels, but a linear pass keeps an unsorted input right. */
    for (size_t i = 0; i < s->nlabels; i++)
        if (label_cmp_cstr(s->labels[i].name, name) == 0) {
            *out = s->labels[i].value;
            return 1;
        }
    out->ptr = "";
    out->len = 0;
    return 0;
}

/* A label as the rule sees it: derived, then fixed, then the sample's. */
static ndt_str view_label(const sample_view *v, const char *name)
{
    ndt_str out;
    for (size_t i = v->nderived; i-- > 0;)
        if (ndt_str_eq_cstr(v->derived_name[i], name))
            return v->derived_value[i];
    for (size_t i = 0; i < v->rule->nlabels; i++)
        if (strcmp(v->rule->labels[i].name, name) == 0)
            return ndt_str_from_cstr(v->rule->labels[i].value);
    sample_label(v->s, name, &out);
    return out;
}

/* Relabel "replace": $1, ${1}, $name are groups of the anchored match. */
static void derive_labels(hdl_engine *e, sample_view *v)
{
    const hdl_rule *r = v->rule;
    for (size_t i = 0; i < r->nderive && v->nderived < ENGINE_MAX_DERIVED; i++) {
        const hdl_derive *d = &r->derive[i];
        ndt_str from = view_label(v, d->from);
        PCRE2_SIZE outlen = sizeof(v->derived_buf[0]);
        int rc = pcre2_substitute(d->re, (PCRE2_SPTR)(from.ptr ? from.ptr : ""), from.len, 0,
                                  0, e->md, NULL, (PCRE2_SPTR)d->replacement,
                                  PCRE2_ZERO_TERMINATED,
                                  (PCRE2_UCHAR *)v->derived_buf[v->nderived], &outlen);
        if (rc <= 0)
            continue; /* no match: the label is not set (relabel semantics) */
        v->derived_name[v->nderived] = ndt_str_from_cstr(d->label);
        v->derived_value[v->nderived].ptr = v->derived_buf[v->nderived];
        v->derived_value[v->nderived].len = outlen;
        v->nderived++;
    }
}

/* A label value an id can carry: an NGSI-LD id is a URI without blanks
 * (the schemas' pattern), and the UDR refuses control characters and
 * backslashes (line protocol cannot escape one in a tag).  A hostile
 * label must cost a counted sample, not the stage. */
static int id_part_valid(ndt_str part)
{
    for (size_t i = 0; i < part.len; i++) {
        unsigned char c = (unsigned char)part.ptr[i];
        if (c <= 0x20 || c == 0x7f || c == '\\' || c == '"')
            return 0;
    }
    return 1;
}

/* Expands a template; 0 when a label it needs is empty or unfit for an id. */
static int expand(const sample_view *v, const hdl_template *t, char *out, size_t size,
                  size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nsegs; i++) {
        ndt_str part = t->segs[i].is_label ? view_label(v, t->segs[i].text)
                                           : ndt_str_from_cstr(t->segs[i].text);
        if (t->segs[i].is_label && (part.len == 0 || !id_part_valid(part)))
            return 0;
        if (n + part.len >= size)
            return 0;
        memcpy(out + n, part.ptr, part.len);
        n += part.len;
    }
    out[n] = '\0';
    *len = n;
    return 1;
}

static int rule_matches(hdl_engine *e, const hdl_rule *r, const hdl_sample *s)
{
    for (size_t i = 0; i < r->nmatch; i++) {
        ndt_str value;
        sample_label(s, r->match[i].label, &value);
        if (!hdl_matcher_match(&r->match[i], value, e->md))
            return 0;
    }
    return 1;
}

/* ---- values ------------------------------------------------------------ */

static uint64_t series_key(size_t rule, const hdl_sample *s)
{
    uint64_t h = hash_bytes(HASH_INIT, &rule, sizeof(rule));
    h = hash_bytes(h, s->name.ptr, s->name.len);
    for (size_t i = 0; i < s->nlabels; i++) {
        h = hash_bytes(h, "\xff", 1);
        h = hash_bytes(h, s->labels[i].name.ptr, s->labels[i].name.len);
        h = hash_bytes(h, "\xfe", 1);
        h = hash_bytes(h, s->labels[i].value.ptr, s->labels[i].value.len);
    }
    return h ? h : 1;
}

static series *series_get(hdl_engine *e, uint64_t key, int *created)
{
    *created = 0;
    if (!e->series) {
        e->series_cap = 1024;
        if (!(e->series = calloc(e->series_cap, sizeof(*e->series))))
            return NULL;
    }
    size_t mask = e->series_cap - 1;
    size_t i;
    for (i = key & mask; e->series[i].key && e->series[i].key != key; i = (i + 1) & mask)
        ;
    if (e->series[i].key)
        return &e->series[i];
    if (e->nseries >= e->opts.max_series) {
        e->stats.series_dropped++;
        return NULL;
    }
    if ((e->nseries + 1) * 2 > e->series_cap) {
        size_t cap = e->series_cap * 2;
        series *t = calloc(cap, sizeof(*t));
        if (!t)
            return NULL;
        for (size_t j = 0; j < e->series_cap; j++) {
            if (!e->series[j].key)
                continue;
            size_t k;
            for (k = e->series[j].key & (cap - 1); t[k].key; k = (k + 1) & (cap - 1))
                ;
            t[k] = e->series[j];
        }
        free(e->series);
        e->series = t;
        e->series_cap = cap;
        mask = cap - 1;
        for (i = key & mask; e->series[i].key; i = (i + 1) & mask)
            ;
    }
    e->series[i].key = key;
    e->nseries++;
    *created = 1;
    return &e->series[i];
}

/* The per-second rate of a counter; 0 when there is none yet. */
static int rate_of(hdl_engine *e, size_t rule, const hdl_sample *s, double *out)
{
    int created;
    series *se = series_get(e, series_key(rule, s), &created);
    if (!se)
        return 0;
    if (created) {
        se->prev = s->value;
        se->prev_ts = s->ts_ms;
        e->stats.rate_first++;
        return 0;
    }
    if (s->ts_ms <= se->prev_ts)
        return 0; /* the same scrape again, or out of order: nothing new */
    double delta = s->value - se->prev;
    if (delta < 0) {
        /* A reset: the counter restarted from zero since the last sample. */
        delta = s->value;
        e->stats.counter_resets++;
    }
    *out = delta * 1000.0 / (double)(s->ts_ms - se->prev_ts);
    se->prev = s->value;
    se->prev_ts = s->ts_ms;
    return 1;
}

static int slot_set_text(hdl_engine *e, entity *en, const hdl_rule *r, int64_t ts,
                         const char *text, size_t len)
{
    slot *sl = &en->slots[r->slot];
    if (sl->have && ts < sl->ts)
        return NDT_OK; /* a late sample never rolls the state back */
    if (!sl->text || strlen(sl->text) != len || memcmp(sl->text, text, len) != 0) {
        char *copy = strndup(text, len);
        if (!copy)
            return NDT_ERROR;
        free(sl->text);
        sl->text = copy;
    }
    sl->have = 1;
    sl->is_text = 1;
    sl->ts = ts;
    e->stats.values++;
    return outbox_add(e, en, ts, r->attribute, 0, sl->text);
}

/* Turns a slot's pending sum into its value: divisor, scale, offset. */
static int slot_output(hdl_engine *e, entity *en, const hdl_rule *r)
{
    slot *sl = &en->slots[r->slot];
    double v = sl->pending_sum;
    sl->dirty = 0;
    if (r->kind == HDL_RULE_DIVISOR) {
        if (!sl->have || sl->pending_ts >= sl->ts) {
            sl->have = 1;
            sl->ts = sl->pending_ts;
            sl->num = v;
        }
        return NDT_OK;
    }
    if (r->divisor >= 0) {
        const hdl_rule *dr = &e->rules->rules[r->divisor];
        const slot *ds = &en->slots[dr->slot];
        double d;
        if (ds->pending && ds->pending_ts == sl->pending_ts)
            d = ds->pending_sum;
        else if (ds->have)
            d = ds->num;
        else {
            e->stats.values_skipped++;
            return NDT_OK;
        }
        v /= d;
    }
    v = v * r->scale + r->offset;
    if (!isfinite(v)) {
        e->stats.values_skipped++;
        return NDT_OK;
    }
    /* A rate over jittered scrape times can overshoot a physical bound
     * (idle time a little above the cores); the rule states the bound. */
    if (v < r->min || v > r->max) {
        v = v < r->min ? r->min : r->max;
        e->stats.values_clamped++;
    }
    if (!sl->have || sl->pending_ts >= sl->ts) {
        sl->have = 1;
        sl->is_text = 0;
        sl->ts = sl->pending_ts;
        sl->num = v;
    }
    e->stats.values++;
    return outbox_add(e, en, sl->pending_ts, r->attribute, v, NULL);
}

static int slot_accumulate(hdl_engine *e, entity *en, const hdl_rule *r, int64_t ts, double v)
{
    slot *sl = &en->slots[r->slot];
    if (sl->pending && sl->pending_ts != ts) {
        if (ts < sl->pending_ts)
            return NDT_OK; /* older than what is being built: too late to matter */
        if (sl->dirty && slot_output(e, en, r) != NDT_OK)
            return NDT_ERROR;
        sl->pending = 0;
    }
    if (!sl->pending) {
        sl->pending = 1;
        sl->pending_ts = ts;
        sl->pending_sum = v;
    } else if (r->aggregate_sum) {
        sl->pending_sum += v;
    } else {
        sl->pending_sum = v;
    }
    sl->dirty = 1;
    touch(e, en);
    return NDT_OK;
}

/* One side's increase: cur - prev bucket by bucket into out; 1 when a
 * bucket decreased or vanished (a reset), -1 when the indexes are not
 * increasing (histogram.c refuses those too). */
static int side_increase(const hdl_native_bucket *cur, size_t nc, const hdl_native_bucket *prev,
                         size_t np, hdl_native_bucket *out)
{
    size_t j = 0;
    for (size_t i = 0; i < nc; i++) {
        if (i && cur[i].index <= cur[i - 1].index)
            return -1;
        double before = 0;
        for (; j < np && prev[j].index < cur[i].index; j++)
            if (prev[j].count > 0)
                return 1; /* gone from the newer histogram */
        if (j < np && prev[j].index == cur[i].index)
            before = prev[j++].count;
        if (cur[i].count < before)
            return 1;
        out[i].index = cur[i].index;
        out[i].count = cur[i].count - before;
    }
    for (; j < np; j++)
        if (prev[j].count > 0)
            return 1;
    return 0;
}

/* Keeps h as the series' previous histogram. */
static int snapshot_store(series *se, const hdl_native_histogram *h)
{
    size_t n = h->npositive + h->nnegative;
    hist_snapshot *sn = se->hist;
    if (!sn || sn->npositive + sn->nnegative < n) {
        sn = realloc(se->hist, sizeof(*sn) + n * sizeof(sn->buckets[0]));
        if (!sn)
            return NDT_ERROR;
        se->hist = sn;
    }
    sn->schema = h->schema;
    sn->zero_threshold = h->zero_threshold;
    sn->zero_count = h->zero_count;
    sn->count = h->count;
    sn->sum = h->sum;
    sn->npositive = h->npositive;
    sn->nnegative = h->nnegative;
    if (h->npositive)
        memcpy(sn->buckets, h->positive, h->npositive * sizeof(sn->buckets[0]));
    if (h->nnegative)
        memcpy(sn->buckets + h->npositive, h->negative, h->nnegative * sizeof(sn->buckets[0]));
    return NDT_OK;
}

/* window: interval.  The observations since the series' previous sample,
 * as a histogram in e->window: 1 when there is one, 0 when not (first
 * sample, same or older instant, a changed schema or zero threshold,
 * buckets out of order), -1 out of memory.  A decrease is a reset, as for
 * rates: the histogram counts from zero again, so the increase is the
 * histogram itself.  Computed once per sample for all rules of one
 * expansion (they follow each other in the metric's rule list). */
static int histogram_increase(hdl_engine *e, const hdl_rule *r, const hdl_sample *s)
{
    if (e->window_sample == e->stats.samples && e->window_parent == r->histogram_parent)
        return e->window_have;
    e->window_sample = e->stats.samples;
    e->window_parent = r->histogram_parent;
    e->window_have = 0;
    const hdl_native_histogram *h = s->native;
    int created;
    series *se = series_get(e, series_key(r->histogram_parent, s), &created);
    if (!se)
        return 0;
    if (created)
        e->stats.rate_first++;
    else if (s->ts_ms <= se->prev_ts)
        return 0; /* the same scrape again, or out of order: nothing new */
    const hist_snapshot *prev = se->hist;
    size_t n = h->npositive + h->nnegative;
    if (n > e->window_cap) {
        hdl_native_bucket *b = realloc(e->window_buckets, n * sizeof(*b));
        if (!b)
            return e->window_have = -1;
        e->window_buckets = b;
        e->window_cap = n;
    }
    if (prev && prev->schema == h->schema && prev->zero_threshold == h->zero_threshold) {
        int rp = side_increase(h->positive, h->npositive, prev->buckets, prev->npositive,
                               e->window_buckets);
        int rn = rp < 0 ? -1 : side_increase(h->negative, h->nnegative,
                                             prev->buckets + prev->npositive, prev->nnegative,
                                             e->window_buckets + h->npositive);
        if (rp >= 0 && rn >= 0) {
            e->window = *h;
            if (rp || rn || h->count < prev->count || h->zero_count < prev->zero_count) {
                e->stats.counter_resets++;
            } else {
                e->window.positive = e->window_buckets;
                e->window.negative = e->window_buckets + h->npositive;
                e->window.count = h->count - prev->count;
                e->window.sum = h->sum - prev->sum;
                e->window.zero_count = h->zero_count - prev->zero_count;
            }
            e->window_have = 1;
        }
    }
    se->prev = h->count;
    se->prev_ts = s->ts_ms;
    if (snapshot_store(se, h) != NDT_OK)
        return e->window_have = -1;
    return e->window_have;
}

/* The number a native_histogram rule outputs; NaN when there is none
 * (the sample carries no native histogram, or it is empty). */
static double histogram_value(const hdl_rule *r, const hdl_native_histogram *h)
{
    if (!h)
        return NAN;
    switch (r->histogram_output) {
    case HDL_HISTOGRAM_SUM: return h->sum;
    case HDL_HISTOGRAM_COUNT: return h->count;
    case HDL_HISTOGRAM_MEAN: return h->count > 0 ? h->sum / h->count : NAN;
    case HDL_HISTOGRAM_QUANTILE: return hdl_native_quantile(h, r->quantile);
    }
    return NAN;
}

static int apply_attribute(hdl_engine *e, size_t ri, const hdl_rule *r, const sample_view *v,
                           const char *id, size_t idlen)
{
    const hdl_sample *s = v->s;
    double value = s->value;
    const char *text = NULL;
    size_t textlen = 0;
    char mapped[256];

    if (r->value_map.n) {
        if (s->value != 1)
            return NDT_OK; /* a state series holds 1 for the current state only */
        ndt_str state = view_label(v, r->value_map.label);
        for (size_t i = 0; i < r->value_map.n && !text; i++)
            if (ndt_str_eq_cstr(state, r->value_map.from[i]))
                text = r->value_map.to[i];
        if (!text) {
            e->stats.values_skipped++;
            return NDT_OK;
        }
        textlen = strlen(text);
    } else if (r->transform == HDL_TRANSFORM_INFO) {
        if (r->value_from_label) {
            ndt_str l = view_label(v, r->value_from_label);
            if (!l.len || l.len >= sizeof(mapped)) {
                e->stats.values_skipped++;
                return NDT_OK;
            }
            memcpy(mapped, l.ptr, l.len);
            mapped[l.len] = '\0';
            text = mapped;
            textlen = l.len;
        }
    } else if (r->transform == HDL_TRANSFORM_NATIVE_HISTOGRAM) {
        /* A classic histogram's _count, or a native one with nothing to
         * estimate from: no value, and the entity is not observed. */
        const hdl_native_histogram *h = s->native;
        if (h && r->histogram_interval) {
            int w = histogram_increase(e, r, s);
            if (w < 0)
                return NDT_ERROR;
            if (w == 0)
                return NDT_OK; /* a first sample: an increase needs two */
            h = &e->window;
        }
        value = histogram_value(r, h);
        if (!isfinite(value)) {
            e->stats.values_skipped++;
            return NDT_OK;
        }
    } else if (r->transform == HDL_TRANSFORM_RATE || !isfinite(value)) {
        if (!isfinite(value)) {
            e->stats.values_skipped++;
            return NDT_OK;
        }
    }

    entity *en = entity_get(e, id, idlen, r->type);
    if (!en)
        return NDT_OK;
    if (r->kind == HDL_RULE_ATTRIBUTE) {
        ndt_str instance;
        if (sample_label(s, "instance", &instance))
            en->source = hash_bytes(HASH_INIT, instance.ptr, instance.len) | 1;
        if (twin_observe(e, en, s->ts_ms) != NDT_OK)
            return NDT_ERROR;
    }
    if (r->transform == HDL_TRANSFORM_RATE && !rate_of(e, ri, s, &value))
        return NDT_OK;
    if (text)
        return slot_set_text(e, en, r, s->ts_ms, text, textlen);
    if (r->transform == HDL_TRANSFORM_INFO) {
        touch(e, en); /* the sample only asserts the entity exists */
        return NDT_OK;
    }
    return slot_accumulate(e, en, r, s->ts_ms, value);
}

static relation *relation_find(entity *en, const char *predicate)
{
    for (size_t i = 0; i < en->nrels; i++)
        if (strcmp(en->rels[i].predicate, predicate) == 0)
            return &en->rels[i];
    return NULL;
}

static relation *relation_add(entity *en, const char *predicate)
{
    relation *rels = realloc(en->rels, (en->nrels + 1) * sizeof(*rels));
    if (!rels)
        return NULL;
    en->rels = rels;
    relation *rel = &rels[en->nrels++];
    memset(rel, 0, sizeof(*rel));
    rel->predicate = predicate;
    return rel;
}

static int apply_relationship(hdl_engine *e, const hdl_rule *r, const sample_view *v,
                              const hdl_emit *emit)
{
    char subject[ENGINE_ID_MAX], object[ENGINE_ID_MAX];
    size_t slen, olen;
    if (!expand(v, &r->subject, subject, sizeof(subject), &slen) ||
        !expand(v, &r->object, object, sizeof(object), &olen)) {
        e->stats.samples_incomplete++;
        return NDT_OK;
    }
    entity *en = entity_get(e, subject, slen, r->subject_type);
    if (!en)
        return NDT_OK;
    relation *rel = relation_find(en, r->predicate);
    if (rel && strcmp(rel->object, object) == 0)
        return NDT_OK; /* restated, unchanged */
    if (rel && v->s->ts_ms < rel->since_ms)
        return NDT_OK; /* older than the relationship in force */
    char *copy = strdup(object);
    if (!copy || (!rel && !(rel = relation_add(en, r->predicate)))) {
        free(copy);
        return NDT_ERROR;
    }
    free(rel->object);
    rel->object = copy;
    rel->since_ms = v->s->ts_ms;
    e->stats.relation_changes++;
    touch(e, en);
    if (emit && emit->relation) {
        udr_relation ur = { en->id, r->predicate, copy, v->s->ts_ms, UDR_OPEN };
        return emit->relation(emit->ctx, &ur);
    }
    return NDT_OK;
}

/* up == 0: the scrape of that instance failed, so every entity it feeds
 * has lost its source now, without waiting for the threshold. */
static int source_down(hdl_engine *e, const hdl_sample *s)
{
    ndt_str instance;
    if (!sample_label(s, "instance", &instance))
        return NDT_OK;
    uint64_t source = hash_bytes(HASH_INIT, instance.ptr, instance.len) | 1;
    for (size_t i = 0; i < e->entities_cap; i++) {
        entity *en = e->entities[i];
        if (en && en->source == source &&
            (en->state == HDL_TWIN_BOUND || en->state == HDL_TWIN_SYNCHRONIZED) &&
            twin_set(e, en, HDL_TWIN_OUT_OF_SYNC, s->ts_ms) != NDT_OK)
            return NDT_ERROR;
    }
    return NDT_OK;
}

int hdl_engine_feed(hdl_engine *e, const hdl_sample *s, const hdl_emit *emit)
{
    e->stats.samples++;
    if (s->value == 0 && ndt_str_eq_cstr(s->name, "up") && source_down(e, s) != NDT_OK)
        return NDT_ERROR;
    metric_bucket *b = metric_find(e, s->name.ptr, s->name.len);
    int mapped = 0;
    for (size_t k = 0; b->metric && k < b->nrules; k++) {
        size_t ri = b->rules[k];
        const hdl_rule *r = &e->rules->rules[ri];
        if (!rule_matches(e, r, s))
            continue;
        mapped = 1;
        sample_view v;
        v.s = s;
        v.rule = r;
        v.nderived = 0;
        derive_labels(e, &v);
        int rc;
        if (r->kind == HDL_RULE_RELATIONSHIP) {
            rc = apply_relationship(e, r, &v, emit);
        } else {
            char id[ENGINE_ID_MAX];
            size_t idlen;
            if (!expand(&v, &r->id, id, sizeof(id), &idlen)) {
                e->stats.samples_incomplete++;
                continue;
            }
            rc = apply_attribute(e, ri, r, &v, id, idlen);
        }
        if (rc != NDT_OK)
            return rc;
    }
    if (!mapped)
        e->stats.samples_unmapped++;
    return NDT_OK;
}

/* ---- end of a batch ----------------------------------------------------- */

static int outbox_cmp(const void *a, const void *b)
{
    const outbox_entry *x = a, *y = b;
    if (x->e != y->e)
        return x->e->seq < y->e->seq ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int emit_points(hdl_engine *e, const hdl_emit *emit)
{
    if (!e->noutbox)
        return NDT_OK;
    qsort(e->outbox, e->noutbox, sizeof(*e->outbox), outbox_cmp);
    udr_point *points = ndt_arena_alloc(&e->arena, e->noutbox * sizeof(*points));
    udr_field *fields = ndt_arena_alloc(&e->arena, e->noutbox * sizeof(*fields));
    if (!points || !fields)
        return NDT_ERROR;
    size_t np = 0;
    for (size_t i = 0; i < e->noutbox;) {
        size_t j = i;
        udr_point *p = &points[np++];
        p->type = e->rules->types[e->outbox[i].e->type].name;
        p->id = e->outbox[i].e->id;
        p->ts_ms = e->outbox[i].ts;
        p->fields = &fields[i];
        p->nfields = 0;
        for (; j < e->noutbox && e->outbox[j].e == e->outbox[i].e && e->outbox[j].ts == e->outbox[i].ts;
             j++) {
            /* One value per attribute and instant: a refined value replaces. */
            udr_field *f = NULL;
            for (size_t k = 0; k < p->nfields; k++)
                if (strcmp(p->fields[k].name, e->outbox[j].name) == 0)
                    f = (udr_field *)&p->fields[k];
            if (!f)
                f = &fields[i + p->nfields++];
            f->name = e->outbox[j].name;
            f->kind = e->outbox[j].is_text ? UDR_FIELD_STRING : UDR_FIELD_DOUBLE;
            f->number = e->outbox[j].num;
            f->text = e->outbox[j].text;
        }
        i = j;
    }
    e->stats.points += np;
    return emit && emit->points ? emit->points(emit->ctx, points, np) : NDT_OK;
}

static int json_string(ndt_buf *b, const char *s)
{
    size_t n = 0;
    while (s[n] && s[n] != '"' && s[n] != '\\' && (unsigned char)s[n] >= 0x20)
        n++;
    if (!s[n]) { /* nothing to escape: the common case, one copy */
        if (ndt_buf_reserve(b, n + 2) != NDT_OK)
            return NDT_ERROR;
        b->data[b->len++] = '"';
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len++] = '"';
        return NDT_OK;
    }
    int rc = ndt_buf_append_char(b, '"');
    for (; *s && rc == NDT_OK; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            rc = ndt_buf_append_char(b, '\\');
            if (rc == NDT_OK)
                rc = ndt_buf_append_char(b, (char)c);
        } else if (c < 0x20) {
            rc = ndt_buf_printf(b, "\\u%04x", c);
        } else {
            rc = ndt_buf_append_char(b, (char)c);
        }
    }
    return rc == NDT_OK ? ndt_buf_append_char(b, '"') : rc;
}

/* RFC 3339 UTC with milliseconds; the attributes of a batch share a few
 * instants, so the last ones formatted are kept.  Four of them: a fragment
 * alternates between its attributes' instant and its twin state's older
 * one, which a single entry would format again for every fragment. */
#define JSON_TIME_CACHE 4

static int json_time(ndt_buf *b, int64_t ms)
{
    static __thread int64_t cached_ms[JSON_TIME_CACHE] = { INT64_MIN, INT64_MIN, INT64_MIN,
                                                           INT64_MIN };
    static __thread char cached[JSON_TIME_CACHE][40];
    static __thread size_t cached_len[JSON_TIME_CACHE];
    static __thread unsigned next;
    for (unsigned i = 0; i < JSON_TIME_CACHE; i++) {
        if (cached_ms[i] == ms && cached_len[i]) /* a length: INT64_MIN is a time too */
            return ndt_buf_append(b, cached[i], cached_len[i]);
    }
    unsigned k = next++ % JSON_TIME_CACHE;
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int n = snprintf(cached[k], sizeof(cached[k]), "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(ms - (int64_t)secs * 1000));
    if (n <= 0 || (size_t)n >= sizeof(cached[k])) {
        cached_len[k] = 0;
        return NDT_ERROR;
    }
    cached_len[k] = (size_t)n;
    cached_ms[k] = ms;
    return ndt_buf_append(b, cached[k], cached_len[k]);
}

/* The entity whole, NGSI-LD normalized. */
static int json_number(ndt_buf *b, slot *sl)
{
    if (!sl->num_text_len || memcmp(&sl->num_text_of, &sl->num, sizeof(double)) != 0) {
        /* A buffer over the slot's array: its limit (one less than the
         * array, for the NUL ndt_buf keeps room for) refuses before it
         * would ever grow, so it never reallocates the array. */
        ndt_buf tmp;
        ndt_buf_init(&tmp, sizeof(sl->num_text) - 1);
        tmp.data = sl->num_text;
        tmp.cap = sizeof(sl->num_text);
        if (ndt_buf_append_double(&tmp, sl->num) != NDT_OK)
            return ndt_buf_append_double(b, sl->num);
        sl->num_text_len = (uint8_t)tmp.len;
        sl->num_text_of = sl->num;
    }
    return ndt_buf_append(b, sl->num_text, sl->num_text_len);
}

static int fragment(hdl_engine *e, const entity *en, ndt_buf *b)
{
    int rc = ndt_buf_append_str(b, "{\"id\":");
    rc |= json_string(b, en->id);
    rc |= ndt_buf_append_str(b, ",\"type\":");
    rc |= json_string(b, e->rules->types[en->type].name);
    for (size_t i = 0; en->statics && i < en->statics->nattrs; i++) {
        const hdl_static_attr *a = &en->statics->attrs[i];
        rc |= ndt_buf_append_char(b, ',');
        rc |= json_string(b, a->name);
        rc |= ndt_buf_append_str(b, ":{\"type\":\"Property\",\"value\":");
        rc |= json_string(b, a->value);
        rc |= ndt_buf_append_char(b, '}');
    }
    for (size_t k = 0; k < e->ntype_rules[en->type]; k++) {
        size_t i = e->type_rules[en->type][k];
        const hdl_rule *r = &e->rules->rules[i];
        if (r->kind != HDL_RULE_ATTRIBUTE)
            continue;
        slot *sl = &en->slots[r->slot];
        if (!sl->have)
            continue;
        /* Two rules may set one attribute: the newest value is published. */
        int newer = 0;
        for (size_t j = 0; e->shadowable[i] && j < e->rules->nrules && !newer; j++) {
            const hdl_rule *o = &e->rules->rules[j];
            if (j != i && o->kind == HDL_RULE_ATTRIBUTE && o->type == en->type &&
                strcmp(o->attribute, r->attribute) == 0 && en->slots[o->slot].have &&
                (en->slots[o->slot].ts > sl->ts || (en->slots[o->slot].ts == sl->ts && j > i)))
                newer = 1;
        }
        if (newer)
            continue;
        rc |= ndt_buf_append_char(b, ',');
        rc |= json_string(b, r->attribute);
        rc |= ndt_buf_append_str(b, ":{\"type\":\"Property\",\"value\":");
        if (sl->is_text)
            rc |= json_string(b, sl->text);
        else
            rc |= json_number(b, sl);
        rc |= ndt_buf_append_str(b, ",\"observedAt\":");
        rc |= json_time(b, sl->ts);
        if (r->unit_code && !sl->is_text) {
            rc |= ndt_buf_append_str(b, ",\"unitCode\":");
            rc |= json_string(b, r->unit_code);
        }
        rc |= ndt_buf_append_char(b, '}');
    }
    for (size_t i = 0; i < en->nrels; i++) {
        const relation *rel = &en->rels[i];
        rc |= ndt_buf_append_char(b, ',');
        rc |= json_string(b, rel->predicate);
        rc |= ndt_buf_append_str(b, ":{\"type\":\"Relationship\",\"object\":");
        if (rel->is_list) {
            rc |= ndt_buf_append_char(b, '[');
            const char *p = rel->object;
            for (int first = 1; *p; first = 0) {
                size_t n = strcspn(p, "\n");
                char one[ENGINE_ID_MAX];
                snprintf(one, sizeof(one), "%.*s", (int)n, p);
                if (!first)
                    rc |= ndt_buf_append_char(b, ',');
                rc |= json_string(b, one);
                p += n + (p[n] == '\n');
            }
            rc |= ndt_buf_append_char(b, ']');
        } else {
            rc |= json_string(b, rel->object);
        }
        rc |= ndt_buf_append_char(b, '}');
    }
    rc |= ndt_buf_append_str(b, ",\"twinState\":{\"type\":\"Property\",\"value\":");
    rc |= json_string(b, twin_names[en->state]);
    if (en->state != HDL_TWIN_UNBOUND) {
        rc |= ndt_buf_append_str(b, ",\"observedAt\":");
        rc |= json_time(b, en->state_since_ms);
    }
    rc |= ndt_buf_append_str(b, "},\"@context\":");
    rc |= json_string(b, e->opts.context);
    rc |= ndt_buf_append_char(b, '}');
    return rc == NDT_OK ? NDT_OK : NDT_ERROR;
}

static int stale_scan(hdl_engine *e, int64_t now_ms)
{
    for (size_t i = 0; i < e->entities_cap; i++) {
        entity *en = e->entities[i];
        if (!en || (en->state != HDL_TWIN_BOUND && en->state != HDL_TWIN_SYNCHRONIZED))
            continue;
        if (now_ms - en->last_obs_ms > twin_threshold(e, en) &&
            twin_set(e, en, HDL_TWIN_OUT_OF_SYNC, now_ms) != NDT_OK)
            return NDT_ERROR;
    }
    return NDT_OK;
}

int hdl_engine_finish(hdl_engine *e, int64_t now_ms, const hdl_emit *emit)
{
    int rc = NDT_OK;
    /* Divisors first, so a ratio sees the divisor of its own instant. */
    for (int pass = 0; pass < 2; pass++)
        for (entity *en = e->touched; en; en = en->next_touched)
            for (size_t k = 0; k < e->ntype_rules[en->type] && rc == NDT_OK; k++) {
                const hdl_rule *r = &e->rules->rules[e->type_rules[en->type][k]];
                if ((r->kind == HDL_RULE_DIVISOR) != (pass == 0))
                    continue;
                if (en->slots[r->slot].dirty)
                    rc = slot_output(e, en, r);
            }
    /* Staleness is checked about twice per threshold, not every batch. */
    int64_t every = e->min_threshold_ms / 2;
    if (rc == NDT_OK && now_ms - e->last_stale_scan_ms >= every) {
        e->last_stale_scan_ms = now_ms;
        rc = stale_scan(e, now_ms);
    }
    if (rc == NDT_OK)
        rc = emit_points(e, emit);
    for (entity *en = e->touched, *next; en; en = next) {
        next = en->next_touched;
        en->touched = 0;
        en->next_touched = NULL;
        /* An entity only a divisor or a relationship named is not
         * published until a sample of its own describes it. */
        if (rc != NDT_OK || !emit || !emit->entity ||
            (en->state == HDL_TWIN_UNBOUND && !en->statics))
            continue;
        ndt_buf_reset(&e->json);
        if (fragment(e, en, &e->json) != NDT_OK) {
            ndt_log(NDT_LOG_WARN, "harmonize", "entity fragment too large, not published",
                    NDT_KV_STR("id", en->id));
            continue;
        }
        e->stats.fragments++;
        rc = emit->entity(emit->ctx, en->id, e->json.data, e->json.len);
    }
    e->touched = NULL;
    e->noutbox = 0;
    ndt_arena_reset(&e->arena);
    return rc;
}

int hdl_engine_start(hdl_engine *e, int64_t now_ms, const hdl_emit *emit)
{
    const hdl_rules *rules = e->rules;
    for (size_t i = 0; i < rules->nstatics; i++) {
        const hdl_static_entity *st = &rules->statics[i];
        entity *en = entity_get(e, st->id, strlen(st->id), st->type);
        if (!en)
            return NDT_ERROR;
        en->statics = st;
        for (size_t j = 0; j < st->nattrs; j++)
            if (outbox_add(e, en, now_ms, st->attrs[j].name, 0, st->attrs[j].value) != NDT_OK)
                return NDT_ERROR;
        for (size_t j = 0; j < st->nrels; j++) {
            const hdl_static_rel *sr = &st->rels[j];
            relation *rel = relation_find(en, sr->predicate);
            if (!rel && !(rel = relation_add(en, sr->predicate)))
                return NDT_ERROR;
            size_t len = 0;
            for (size_t k = 0; k < sr->nobjects; k++)
                len += strlen(sr->objects[k]) + 1;
            free(rel->object);
            if (!(rel->object = calloc(1, len + 1)))
                return NDT_ERROR;
            for (size_t k = 0; k < sr->nobjects; k++) {
                if (k)
                    strcat(rel->object, "\n");
                strcat(rel->object, sr->objects[k]);
                /* A list keeps its order in the UDR as predicate_<position>. */
                char predicate[256];
                if (sr->is_list)
                    snprintf(predicate, sizeof(predicate), "%s_%zu", sr->predicate, k + 1);
                else
                    snprintf(predicate, sizeof(predicate), "%s", sr->predicate);
                udr_relation ur = { st->id, predicate, sr->objects[k], now_ms, UDR_OPEN };
                if (emit && emit->relation && emit->relation(emit->ctx, &ur) != NDT_OK)
                    return NDT_ERROR;
            }
            rel->is_list = sr->is_list;
            rel->since_ms = now_ms;
        }
        touch(e, en);
    }
    return hdl_engine_finish(e, now_ms, emit);
}

int hdl_engine_new(const hdl_rules *rules, const hdl_engine_options *opts, hdl_engine **out,
                   char *err, size_t errlen)
{
    hdl_engine *e = calloc(1, sizeof(*e));
    *out = NULL;
    if (!e) {
        snprintf(err, errlen, "harmonize: out of memory");
        return NDT_ERROR;
    }
    e->rules = rules;
    if (opts)
        e->opts = *opts;
    if (!e->opts.max_entities)
        e->opts.max_entities = ENGINE_DEFAULT_MAX_ENTITIES;
    if (!e->opts.max_series)
        e->opts.max_series = ENGINE_DEFAULT_MAX_SERIES;
    if (e->opts.fidelity_intervals <= 0)
        e->opts.fidelity_intervals = 2;
    if (e->opts.default_interval_ms <= 0)
        e->opts.default_interval_ms = ENGINE_DEFAULT_INTERVAL_MS;
    if (!e->opts.context)
        e->opts.context = ENGINE_CONTEXT;
    e->last_stale_scan_ms = INT64_MIN / 2;
    e->min_threshold_ms = e->opts.fidelity_ms > 0 ? e->opts.fidelity_ms
                                                   : e->opts.default_interval_ms * 2;
    e->entities_cap = 1024;
    ndt_arena_init(&e->arena, 64 * 1024, 0);
    ndt_buf_init(&e->json, ENGINE_FRAGMENT_LIMIT);
    e->entities = calloc(e->entities_cap, sizeof(*e->entities));
    e->md = pcre2_match_data_create(32, NULL);
    if (!e->entities || !e->md || build_metric_index(e) != NDT_OK ||
        build_type_index(e) != NDT_OK) {
        hdl_engine_destroy(e);
        snprintf(err, errlen, "harmonize: out of memory");
        return NDT_ERROR;
    }
    *out = e;
    return NDT_OK;
}

void hdl_engine_get_stats(const hdl_engine *e, hdl_engine_stats *out)
{
    *out = e->stats;
}

hdl_twin_state hdl_engine_twin_state(const hdl_engine *e, const char *id)
{
    entity *const *b = entity_bucket(e, id, strlen(id), hash_bytes(HASH_INIT, id, strlen(id)));
    return *b ? (*b)->state : HDL_TWIN_NSTATES;
}

void hdl_engine_destroy(hdl_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; e->entities && i < e->entities_cap; i++) {
        entity *en = e->entities[i];
        if (!en)
            continue;
        size_t nslots = e->rules->types[en->type].nslots;
        for (size_t j = 0; j < nslots; j++)
            free(en->slots[j].text);
        for (size_t j = 0; j < en->nrels; j++)
            free(en->rels[j].object);
        free(en->rels);
        free(en->slots);
        free(en->id);
        free(en);
    }
    free(e->entities);
    for (size_t i = 0; e->metrics && i < e->metrics_cap; i++)
        free(e->metrics[i].rules);
    free(e->metrics);
    for (size_t i = 0; e->type_rules && i < e->rules->ntypes; i++)
        free(e->type_rules[i]);
    free(e->type_rules);
    free(e->ntype_rules);
    free(e->shadowable);
    for (size_t i = 0; e->series && i < e->series_cap; i++)
        free(e->series[i].hist);
    free(e->series);
    free(e->window_buckets);
    free(e->outbox);
    ndt_arena_free(&e->arena);
    ndt_buf_free(&e->json);
    pcre2_match_data_free(e->md);
    free(e);
}
