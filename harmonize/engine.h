/*
 * engine.h: the mapping engine of the Harmonization Data Layer, internal
 * to harmonize/ (the stage in stage.c feeds it; unit tests drive it with
 * hdl_sample structs directly).
 *
 * The engine is a pure function of the samples it is fed, in order, plus
 * its own state: the entities it knows (attributes, relationships, twin
 * state) and, per counter series, the previous value for rates.  It does
 * no I/O: what it produces goes to three callbacks (points for the UDR,
 * relationship changes, NGSI-LD fragments), so the stage decides batching
 * and delivery and a test sees exactly what would be written.
 *
 * Lifecycle of a batch: hdl_engine_feed() for every sample, then
 * hdl_engine_finish() once: values are final at that point (an aggregate
 * sums every series of its instant seen so far, a ratio uses the divisor
 * of the same instant if seen, else the latest one), points are grouped
 * per entity and instant, twin states are updated and every entity touched
 * is published whole.  Samples of an instant that arrive in a later batch
 * refine the value already written (same series and timestamp: the UDR
 * keeps the last one).
 *
 * Twin state (paper 001), per entity:
 *   unbound       declared (static entity) but no sample yet
 *   bound         a sample arrived: the entity is attached to its source
 *   synchronized  a sample arrived within the fidelity threshold of the
 *                 previous one (default two observed scrape intervals)
 *   outOfSync     nothing for longer than the threshold (stale), or its
 *                 source is down (`up` == 0 for the instance its last
 *                 sample came from); the next sample binds it again
 * Transitions are counted (hdl_engine_stats.transitions) and stored as the
 * twinState attribute at the instant they happen.
 *
 * Bounded: at most max_entities entities and max_series counter series;
 * beyond, samples for new ones are dropped and counted.  Not thread-safe.
 */
#ifndef HDL_ENGINE_H
#define HDL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/ndt.h"
#include "harmonize/decode.h"
#include "harmonize/rules.h"
#include "udr/udr.h"

typedef enum hdl_twin_state {
    HDL_TWIN_UNBOUND = 0,
    HDL_TWIN_BOUND,
    HDL_TWIN_SYNCHRONIZED,
    HDL_TWIN_OUT_OF_SYNC,
    HDL_TWIN_NSTATES,
} hdl_twin_state;

const char *hdl_twin_state_name(hdl_twin_state s);

typedef struct hdl_engine_options {
    size_t max_entities;          /* 0 = 100000 */
    size_t max_series;            /* counter series with rate state; 0 = 1 << 20 */
    int64_t fidelity_ms;          /* fixed threshold; 0 = fidelity_intervals x observed interval */
    double fidelity_intervals;    /* 0 = 2 */
    int64_t default_interval_ms;  /* before an entity's interval is known; 0 = 20 (ndtpipe's scrape default) */
    const char *context;          /* @context URL; NULL = ndtpipe's */
} hdl_engine_options;

typedef struct hdl_emit {
    void *ctx;
    /* Points of one batch, grouped per entity and instant. */
    int (*points)(void *ctx, const udr_point *points, size_t n);
    /* A relationship whose object changed (or is seen for the first time). */
    int (*relation)(void *ctx, const udr_relation *r);
    /* An entity's NGSI-LD normalized fragment (JSON, not NUL-terminated). */
    int (*entity)(void *ctx, const char *id, const char *json, size_t len);
} hdl_emit;

typedef struct hdl_engine_stats {
    uint64_t samples;             /* fed */
    uint64_t samples_unmapped;    /* no rule for the metric or no matcher accepted it */
    uint64_t samples_incomplete;  /* a rule matched but a label its template needs is empty
                                     or unfit for an id (blank, control, backslash, quote) */
    uint64_t values;              /* attribute values computed */
    uint64_t values_skipped;      /* no divisor yet, division by zero, NaN/Inf, unknown state */
    uint64_t values_clamped;      /* outside the rule's min / max, set to the bound */
    uint64_t rate_first;          /* first sample of a counter: a rate needs two */
    uint64_t counter_resets;
    uint64_t relation_changes;
    uint64_t points;
    uint64_t fragments;
    uint64_t entities;
    uint64_t entities_dropped;    /* samples for new entities past max_entities */
    uint64_t series_dropped;      /* samples for new counters past max_series */
    uint64_t transitions[HDL_TWIN_NSTATES][HDL_TWIN_NSTATES];
    uint64_t in_state[HDL_TWIN_NSTATES];
} hdl_engine_stats;

typedef struct hdl_engine hdl_engine;

/* rules must outlive the engine. */
int hdl_engine_new(const hdl_rules *rules, const hdl_engine_options *opts, hdl_engine **out,
                   char *err, size_t errlen);
/* Declares the rule file's static entities (unbound until a sample names
 * them) and writes them with their relationships valid from now_ms. */
int hdl_engine_start(hdl_engine *e, int64_t now_ms, const hdl_emit *emit);
/* Maps one sample; relationship changes are emitted at once. */
int hdl_engine_feed(hdl_engine *e, const hdl_sample *s, const hdl_emit *emit);
/* Ends a batch (see above).  now_ms is the stream's clock for staleness. */
int hdl_engine_finish(hdl_engine *e, int64_t now_ms, const hdl_emit *emit);
void hdl_engine_get_stats(const hdl_engine *e, hdl_engine_stats *out);
/* The twin state of an entity; HDL_TWIN_NSTATES when unknown. */
hdl_twin_state hdl_engine_twin_state(const hdl_engine *e, const char *id);
void hdl_engine_destroy(hdl_engine *e);

#endif
