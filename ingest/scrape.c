/*
 * scrape.c: the scraper, the ingest stage's entry point (ingest.h).
 *
 * Scheduling.  Every target has a fixed phase inside its interval (a hash
 * of its URL and labels, as Prometheus spreads targets), and its k-th
 * scrape is due at phase + k * interval on the monotonic clock: ticks are
 * computed, never accumulated, so there is no drift.  Due targets come off
 * a binary min-heap ordered by next tick; the event loop sleeps on a
 * timerfd armed for the heap's top.  A target whose previous scrape is
 * still running when its tick comes skips that tick and counts it
 * (missed_ticks): scrapes never pile up on a slow target.
 *
 * One thread does the I/O, parsing, encoding and producing.  At 20 ms and
 * the target counts of a testbed this leaves the thread idle most of the
 * time (see docs/PERFORMANCE.md); librdkafka's own threads do the network
 * side of Kafka.  Memory per scrape comes from one arena reset after each
 * publish, so a steady state allocates nothing.
 *
 * Shutdown: when *stop is set the scraper starts nothing new, lets the
 * scrapes in flight finish (bounded by their timeouts), publishes them and
 * flushes Kafka before returning.
 */
#include "ingest/ingest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/arena.h"
#include "common/clock.h"
#include "common/httpd.h"
#include "common/metrics.h"
#include "common/log.h"
#include "ingest/scrape_config.h"
#include "ingest/scrape_loop.h"
#include "ingest/scrape_target.h"
#include "ingest/sink.h"

#define SCRAPE_ARENA_BLOCK (1u << 20)
#define SCRAPE_ARENA_CAP (256u << 20)
#define FLUSH_TIMEOUT_MS 30000
/* How often file_sd files are re-read.  Prometheus watches them with
 * inotify and also re-reads them every refresh_interval; re-reading small
 * files once a second gives the same "changes apply within seconds" at a
 * cost far below one scrape. */
#define REDISCOVERY_NS 1000000000LL
#define METRICS_REFRESH_NS 500000000LL
/* Start a scrape this early rather than sleep for less than the timer's
 * own resolution. */
#define TICK_SLACK_NS 20000
/* Jitter histogram: 10 us buckets up to 2 ms, then 1 ms buckets to 100 ms. */
#define JITTER_FINE_BUCKETS 200
#define JITTER_COARSE_BUCKETS 98
#define JITTER_BUCKETS (JITTER_FINE_BUCKETS + JITTER_COARSE_BUCKETS + 1)

struct ingest_scraper {
    ingest_scrape_options options;
    ingest_scrape_config *config;
    ingest_sink *sink;
    ingest_loop *loop;
    ndt_arena arena;

    ingest_target **targets;   /* all targets, owned */
    size_t ntargets;
    ingest_target **heap;      /* min-heap on next_tick_ns */
    size_t nheap;

    int64_t next_rediscovery_ns; /* file_sd jobs are re-read on this beat */

    ingest_scrape_totals totals;
    uint64_t jitter_hist[JITTER_BUCKETS];
    uint64_t jitter_count;
    int64_t jitter_sum_ns;
    int64_t jitter_max_ns;

    /* Own metrics: rendered on the loop thread every METRICS_REFRESH_NS
     * into `rendering`, then swapped with `published` under the lock that
     * the HTTP thread takes to copy it.  The loop never waits on HTTP. */
    ndt_httpd *httpd;
    int metrics_registered;
    pthread_mutex_t metrics_lock;
    ndt_buf rendering;
    ndt_buf published;
    int64_t next_metrics_ns;
};

/* ---- the schedule heap ----------------------------------------------- */

static void heap_swap(ingest_scraper *s, size_t a, size_t b)
{
    ingest_target *t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->heap_index = a;
    s->heap[b]->heap_index = b;
}

static void heap_up(ingest_scraper *s, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent]->next_tick_ns <= s->heap[i]->next_tick_ns)
            break;
        heap_swap(s, parent, i);
        i = parent;
    }
}

static void heap_down(ingest_scraper *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && s->heap[l]->next_tick_ns < s->heap[m]->next_tick_ns)
            m = l;
        if (r < s->nheap && s->heap[r]->next_tick_ns < s->heap[m]->next_tick_ns)
            m = r;
        if (m == i)
            break;
        heap_swap(s, i, m);
        i = m;
    }
}

static void heap_push(ingest_scraper *s, ingest_target *t)
{
    t->heap_index = s->nheap;
    s->heap[s->nheap++] = t;
    heap_up(s, t->heap_index);
}

static void heap_remove(ingest_scraper *s, ingest_target *t)
{
    size_t i = t->heap_index;
    s->nheap--;
    if (i == s->nheap)
        return;
    s->heap[i] = s->heap[s->nheap];
    s->heap[i]->heap_index = i;
    heap_up(s, i);
    heap_down(s, s->heap[i]->heap_index);
}

/* ---- targets --------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t target_hash(const ingest_target_def *def)
{
    uint64_t h = 14695981039346656037ULL;
    h = fnv1a(h, def->url, strlen(def->url));
    for (size_t i = 0; i < def->labels.n; i++) {
        h = fnv1a(h, def->labels.labels[i].name.ptr, def->labels.labels[i].name.len);
        h = fnv1a(h, "=", 1);
        h = fnv1a(h, def->labels.labels[i].value.ptr, def->labels.labels[i].value.len);
    }
    return h;
}

/* What identifies a target across rediscoveries: its URL and labels. */
static char *target_key(const ingest_target_def *def)
{
    size_t len = strlen(def->url) + 1;
    for (size_t i = 0; i < def->labels.n; i++)
        len += def->labels.labels[i].name.len + def->labels.labels[i].value.len + 2;
    char *key = malloc(len + 1), *p = key;
    if (!key)
        return NULL;
    p += sprintf(p, "%s", def->url);
    for (size_t i = 0; i < def->labels.n; i++) {
        *p++ = '\x1f';
        memcpy(p, def->labels.labels[i].name.ptr, def->labels.labels[i].name.len);
        p += def->labels.labels[i].name.len;
        *p++ = '=';
        memcpy(p, def->labels.labels[i].value.ptr, def->labels.labels[i].value.len);
        p += def->labels.labels[i].value.len;
    }
    *p = '\0';
    return key;
}

/* First tick after now with the target's phase. */
static int64_t first_tick(int64_t now, int64_t interval, int64_t offset)
{
    int64_t base = now - now % interval + offset;
    while (base <= now)
        base += interval;
    return base;
}

static int grow_target_arrays(ingest_scraper *s, size_t extra)
{
    ingest_target **grown = realloc(s->targets, (s->ntargets + extra) * sizeof(*grown));
    if (!grown)
        return NDT_ERROR;
    s->targets = grown;
    ingest_target **heap = realloc(s->heap, (s->ntargets + extra) * sizeof(*heap));
    if (!heap)
        return NDT_ERROR;
    s->heap = heap;
    return NDT_OK;
}

/* Makes a target of def (moved in) and schedules it. */
static int add_target(ingest_scraper *s, ingest_target_def *def, char *err, size_t errlen)
{
    ingest_target *t = NULL;
    uint64_t hash = target_hash(def);
    char *key = target_key(def);
    if (!key || ingest_target_new(def, &t, err, errlen) != NDT_OK) {
        free(key);
        ingest_target_def_clear(def);
        return NDT_ERROR;
    }
    t->key = key;
    t->offset_ns = (int64_t)(hash % (uint64_t)t->def.interval_ns);
    t->next_tick_ns = first_tick(ndt_clock_mono_ns(), t->def.interval_ns, t->offset_ns);
    s->targets[s->ntargets++] = t;
    heap_push(s, t);
    /* Room for every target's connection, and a redirect's, in curl's cache. */
    ingest_loop_set_connection_cache(s->loop, 2 * s->ntargets + 8);
    return NDT_OK;
}

static void remove_target(ingest_scraper *s, size_t index)
{
    ingest_target *t = s->targets[index];
    if (t->in_flight)
        ingest_loop_abort(s->loop, t->easy);
    heap_remove(s, t);
    s->targets[index] = s->targets[--s->ntargets];
    ingest_target_free(t);
}

static int discover_job(const ingest_job *job, ingest_target_def **defs, size_t *n,
                        size_t *dropped, char *err, size_t errlen)
{
    if (ingest_job_discover(job, defs, n, dropped, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (job->target_limit && *n > job->target_limit) {
        snprintf(err, errlen, "job %s: %zu targets exceed target_limit %llu", job->job_name, *n,
                 (unsigned long long)job->target_limit);
        ingest_target_defs_free(*defs, *n);
        return NDT_EBADCONF;
    }
    return NDT_OK;
}

static int add_targets_of_job(ingest_scraper *s, const ingest_job *job, char *err, size_t errlen)
{
    ingest_target_def *defs = NULL;
    size_t n = 0, dropped = 0;
    int rc = discover_job(job, &defs, &n, &dropped, err, errlen);
    if (rc != NDT_OK)
        return rc;
    if (grow_target_arrays(s, n) != NDT_OK) {
        ingest_target_defs_free(defs, n);
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        if (rc != NDT_OK || add_target(s, &defs[i], err, errlen) != NDT_OK)
            rc = NDT_ERROR;
    }
    ingest_target_defs_free(defs, n);
    ndt_log(NDT_LOG_INFO, "ingest", "job loaded", NDT_KV_STR("job", job->job_name),
            NDT_KV_UINT("targets", n), NDT_KV_UINT("dropped_by_relabeling", dropped));
    return rc;
}

/* Re-reads a file_sd job and applies the difference: targets that stay
 * keep their schedule and connection, gone ones stop, new ones start.
 * On a read error the current targets are kept. */
static void rediscover_job(ingest_scraper *s, const ingest_job *job)
{
    char err[NDT_ERRBUF_SIZE];
    ingest_target_def *defs = NULL;
    size_t n = 0, dropped = 0, added = 0, removed = 0;
    if (discover_job(job, &defs, &n, &dropped, err, sizeof(err)) != NDT_OK) {
        ndt_log(NDT_LOG_WARN, "ingest", "target discovery failed; keeping current targets",
                NDT_KV_STR("job", job->job_name), NDT_KV_STR("error", err));
        return;
    }
    char **keys = calloc(n ? n : 1, sizeof(*keys));
    char *seen = calloc(n ? n : 1, 1);
    if (!keys || !seen || grow_target_arrays(s, n) != NDT_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        keys[i] = target_key(&defs[i]);
    for (size_t t = s->ntargets; t-- > 0;) {
        if (s->targets[t]->job != job)
            continue;
        int found = 0;
        for (size_t i = 0; i < n && !found; i++) {
            if (keys[i] && !seen[i] && strcmp(keys[i], s->targets[t]->key) == 0)
                seen[i] = found = 1;
        }
        if (!found) {
            remove_target(s, t);
            removed++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (seen[i])
            continue;
        if (add_target(s, &defs[i], err, sizeof(err)) == NDT_OK)
            added++;
        else
            ndt_log(NDT_LOG_WARN, "ingest", "cannot add target", NDT_KV_STR("error", err));
    }
    if (added || removed)
        ndt_log(NDT_LOG_INFO, "ingest", "targets changed", NDT_KV_STR("job", job->job_name),
                NDT_KV_UINT("added", added), NDT_KV_UINT("removed", removed),
                NDT_KV_UINT("targets", n));
out:
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
    free(seen);
    ingest_target_defs_free(defs, n);
}

static void rediscover_if_due(ingest_scraper *s)
{
    int64_t now = ndt_clock_mono_ns();
    if (now < s->next_rediscovery_ns)
        return;
    s->next_rediscovery_ns = now + REDISCOVERY_NS;
    for (size_t i = 0; i < s->config->njobs; i++) {
        if (s->config->jobs[i].nfile_sd)
            rediscover_job(s, &s->config->jobs[i]);
    }
}

/* ---- running --------------------------------------------------------- */

static void record_jitter(ingest_scraper *s, int64_t late_ns)
{
    if (late_ns < 0)
        late_ns = -late_ns;
    size_t bucket;
    if (late_ns < 10000LL * JITTER_FINE_BUCKETS)
        bucket = (size_t)(late_ns / 10000);
    else if (late_ns < 2000000LL + 1000000LL * JITTER_COARSE_BUCKETS)
        bucket = JITTER_FINE_BUCKETS + (size_t)((late_ns - 2000000) / 1000000);
    else
        bucket = JITTER_BUCKETS - 1;
    s->jitter_hist[bucket]++;
    s->jitter_count++;
    s->jitter_sum_ns += late_ns;
    if (late_ns > s->jitter_max_ns)
        s->jitter_max_ns = late_ns;
}

/* Upper bound of the bucket holding quantile q, in microseconds. */
static double jitter_quantile_us(const ingest_scraper *s, double q)
{
    if (!s->jitter_count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)s->jitter_count);
    uint64_t seen = 0;
    for (size_t i = 0; i < JITTER_BUCKETS; i++) {
        seen += s->jitter_hist[i];
        if (seen > rank) {
            if (i < JITTER_FINE_BUCKETS)
                return (double)(i + 1) * 10.0;
            if (i < JITTER_BUCKETS - 1)
                return 2000.0 + (double)(i - JITTER_FINE_BUCKETS + 1) * 1000.0;
            return (double)s->jitter_max_ns / 1000.0;
        }
    }
    return (double)s->jitter_max_ns / 1000.0;
}

static void on_transfer_done(void *ctx, CURL *easy, CURLcode result)
{
    ingest_scraper *s = ctx;
    ingest_target *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    if (!t)
        return;
    t->in_flight = 0;

    ingest_publish_ctx pub = { s->sink, &s->arena, &s->config->external_labels };
    uint64_t published_before = t->counters.samples_published;
    int rc = ingest_target_finish(t, result, &pub);
    ndt_arena_reset(&s->arena);

    s->totals.scrapes++;
    if (t->up != 1)
        s->totals.scrape_failures++;
    s->totals.samples_published += t->counters.samples_published - published_before;
    if (rc != NDT_OK && rc != NDT_AGAIN)
        ndt_log(NDT_LOG_ERROR, "ingest", "publishing a scrape failed",
                NDT_KV_STR("job", t->job->job_name), NDT_KV_STR("instance", t->def.instance));
}

static void start_scrape(ingest_scraper *s, ingest_target *t, int64_t now)
{
    ingest_target_prepare(t, t->next_tick_ns, now);
    record_jitter(s, now - t->next_tick_ns);
    /* Set before starting, so that a completion reported from inside
     * the loop always finds the flag it clears. */
    t->in_flight = 1;
    if (ingest_loop_start(s->loop, t->easy) != NDT_OK) {
        t->in_flight = 0;
        ndt_log(NDT_LOG_ERROR, "ingest", "could not start a scrape",
                NDT_KV_STR("instance", t->def.instance));
    }
}

/* Starts every scrape due by now and moves each to its next tick.  The
 * bound is fixed on entry, so a round that takes long cannot keep the loop
 * here (and away from I/O and the stop flag) by making more targets due. */
static void run_due(ingest_scraper *s)
{
    int64_t now = ndt_clock_mono_ns();
    while (s->nheap && s->heap[0]->next_tick_ns <= now + TICK_SLACK_NS) {
        ingest_target *t = s->heap[0];
        if (t->in_flight) {
            t->counters.missed_ticks++;
            s->totals.missed_ticks++;
        } else {
            start_scrape(s, t, ndt_clock_mono_ns());
        }
        t->next_tick_ns += t->def.interval_ns;
        /* After a stall (a suspended process, a blocked Kafka queue) skip
         * the ticks that are already past instead of bursting them. */
        while (t->next_tick_ns <= now) {
            t->next_tick_ns += t->def.interval_ns;
            t->counters.missed_ticks++;
            s->totals.missed_ticks++;
        }
        heap_down(s, 0);
    }
}

static void drain(ingest_scraper *s)
{
    int64_t give_up = ndt_clock_mono_ns() + 30LL * 1000000000;
    while (ingest_loop_running(s->loop) > 0 && ndt_clock_mono_ns() < give_up)
        ingest_loop_wait(s->loop, ndt_clock_mono_ns() + 10000000);
    for (size_t i = 0; i < s->ntargets; i++) {
        if (s->targets[i]->in_flight) {
            ingest_loop_abort(s->loop, s->targets[i]->easy);
            s->targets[i]->in_flight = 0;
        }
    }
    int timeout = s->options.output.flush_timeout_ms ? s->options.output.flush_timeout_ms
                                                     : FLUSH_TIMEOUT_MS;
    if (ingest_sink_flush(s->sink, timeout) != NDT_OK) {
        ingest_sink_stats st;
        ingest_sink_get_stats(s->sink, &st);
        ndt_log(NDT_LOG_ERROR, "ingest", "Kafka did not take everything before the flush timeout",
                NDT_KV_UINT("undelivered_messages", st.in_flight), NDT_KV_INT("timeout_ms", timeout));
    }
}

static void collect_sink_totals(ingest_scraper *s)
{
    ingest_sink_stats st;
    ingest_sink_get_stats(s->sink, &st);
    s->totals.publish_waits = st.queue_full_waits;
    s->totals.publish_dropped = st.dropped;
    s->totals.delivered = st.delivered;
    s->totals.delivery_failed = st.delivery_failed;
}

static void collect_target_totals(ingest_scraper *s)
{
    s->totals.parse_errors = 0;
    s->totals.samples_scraped = 0;
    s->totals.sample_limit_hits = 0;
    s->totals.pages_replayed = 0;
    for (size_t i = 0; i < s->ntargets; i++) {
        s->totals.parse_errors += s->targets[i]->counters.parse_errors;
        s->totals.samples_scraped += s->targets[i]->counters.samples_scraped;
        s->totals.sample_limit_hits += s->targets[i]->counters.sample_limit_hits;
        s->totals.pages_replayed += s->targets[i]->counters.pages_replayed;
    }
}

static void write_stats(ingest_scraper *s)
{
    if (!s->options.stats_path)
        return;
    FILE *f = fopen(s->options.stats_path, "w");
    if (!f) {
        ndt_log(NDT_LOG_WARN, "ingest", "cannot write stats file",
                NDT_KV_STR("path", s->options.stats_path));
        return;
    }
    const ingest_scrape_totals *t = &s->totals;
    fprintf(f,
            "{\"targets\":%zu,\"scrapes\":%llu,\"scrape_failures\":%llu,\"parse_errors\":%llu,"
            "\"missed_ticks\":%llu,\"samples_scraped\":%llu,\"samples_published\":%llu,"
            "\"sample_limit_hits\":%llu,\"pages_replayed\":%llu,\"publish_waits\":%llu,"
            "\"publish_dropped\":%llu,"
            "\"delivered\":%llu,\"delivery_failed\":%llu,"
            "\"start_jitter_us\":{\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f,\"count\":%llu}}\n",
            s->ntargets, (unsigned long long)t->scrapes, (unsigned long long)t->scrape_failures,
            (unsigned long long)t->parse_errors, (unsigned long long)t->missed_ticks,
            (unsigned long long)t->samples_scraped, (unsigned long long)t->samples_published,
            (unsigned long long)t->sample_limit_hits, (unsigned long long)t->pages_replayed,
            (unsigned long long)t->publish_waits,
            (unsigned long long)t->publish_dropped, (unsigned long long)t->delivered,
            (unsigned long long)t->delivery_failed, jitter_quantile_us(s, 0.5),
            jitter_quantile_us(s, 0.99), (double)s->jitter_max_ns / 1000.0,
            (unsigned long long)s->jitter_count);
    fclose(f);
}

/* ---- own metrics ----------------------------------------------------- */

static void append_label_value(ndt_buf *b, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            ndt_buf_append_char(b, '\\');
        if (*v == '\n') {
            ndt_buf_append_str(b, "\\n");
            continue;
        }
        ndt_buf_append_char(b, *v);
    }
}

typedef uint64_t (*counter_of_fn)(const ingest_target *t);
static uint64_t c_scrapes(const ingest_target *t) { return t->counters.scrapes; }
static uint64_t c_failures(const ingest_target *t) { return t->counters.failures; }
static uint64_t c_parse(const ingest_target *t) { return t->counters.parse_errors; }
static uint64_t c_missed(const ingest_target *t) { return t->counters.missed_ticks; }
static uint64_t c_samples(const ingest_target *t) { return t->counters.samples_scraped; }
static uint64_t c_limit(const ingest_target *t) { return t->counters.sample_limit_hits; }
static uint64_t c_replayed(const ingest_target *t) { return t->counters.pages_replayed; }
static uint64_t c_up(const ingest_target *t) { return t->up == 1; }

static void per_target(ingest_scraper *s, ndt_buf *b, const char *name, const char *type,
                       const char *help, counter_of_fn value)
{
    ndt_metrics_family(b, name, type, help);
    for (size_t i = 0; i < s->ntargets; i++) {
        const ingest_target *t = s->targets[i];
        ndt_buf_printf(b, "%s{job=\"", name);
        append_label_value(b, t->job->job_name);
        ndt_buf_append_str(b, "\",instance=\"");
        append_label_value(b, t->def.instance);
        ndt_buf_printf(b, "\"} %llu\n", (unsigned long long)value(t));
    }
}

/* The start-delay histogram in a few Prometheus buckets, summed from the
 * fine buckets (10 us up to 2 ms, then 1 ms) that record_jitter keeps. */
static void start_delay_histogram(ingest_scraper *s, ndt_buf *b)
{
    static const int bounds_us[] = { 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000 };
    const char *name = "ndtpipe_scrape_start_delay_seconds";
    ndt_metrics_family(b, name, "histogram", "How long after its scheduled tick a scrape started.");
    for (size_t k = 0; k < NDT_ARRAY_LEN(bounds_us); k++) {
        uint64_t count = 0;
        for (size_t i = 0; i < JITTER_BUCKETS - 1; i++) {
            int upper_us = i < JITTER_FINE_BUCKETS ? (int)(i + 1) * 10
                                                   : 2000 + (int)(i - JITTER_FINE_BUCKETS + 1) * 1000;
            if (upper_us <= bounds_us[k])
                count += s->jitter_hist[i];
        }
        ndt_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds_us[k] / 1e6,
                       (unsigned long long)count);
    }
    ndt_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)s->jitter_count);
    ndt_buf_printf(b, "%s_sum %.9f\n%s_count %llu\n", name, (double)s->jitter_sum_ns / 1e9, name,
                   (unsigned long long)s->jitter_count);
}

static void render_metrics(ingest_scraper *s, ndt_buf *b)
{
    ingest_sink_stats st;
    ingest_sink_get_stats(s->sink, &st);
    ndt_buf_reset(b);
    ndt_metrics_value(b, "ndtpipe_scrape_targets", "gauge", "Targets being scraped.", s->ntargets);
    per_target(s, b, "ndtpipe_scrape_target_up", "gauge",
               "1 if the target's last scrape succeeded, else 0.", c_up);
    per_target(s, b, "ndtpipe_scrapes_total", "counter", "Scrapes completed, successful or not.",
               c_scrapes);
    per_target(s, b, "ndtpipe_scrape_failures_total", "counter",
               "Scrapes that failed (the target's up was 0).", c_failures);
    per_target(s, b, "ndtpipe_scrape_parse_errors_total", "counter",
               "Scrapes that failed because the exposition was malformed.", c_parse);
    per_target(s, b, "ndtpipe_scrape_missed_ticks_total", "counter",
               "Ticks skipped because the previous scrape of the target was still running.",
               c_missed);
    per_target(s, b, "ndtpipe_scrape_samples_total", "counter",
               "Samples read from the target's expositions.", c_samples);
    per_target(s, b, "ndtpipe_scrape_sample_limit_hits_total", "counter",
               "Scrapes failed because they exceeded sample_limit.", c_limit);
    per_target(s, b, "ndtpipe_scrape_pages_replayed_total", "counter",
               "Successful scrapes whose page had the previous page's names, labels and comments "
               "line for line, so that only its values were read.",
               c_replayed);
    size_t cache_bytes = 0;
    for (size_t i = 0; i < s->ntargets; i++)
        cache_bytes += ingest_scrape_cache_bytes(s->targets[i]->cache);
    ndt_metrics_value(b, "ndtpipe_scrape_cache_bytes", "gauge",
                      "Memory the targets' scrape caches hold (their last fully parsed pages).",
                      cache_bytes);
    start_delay_histogram(s, b);
    ndt_metrics_value(b, "ndtpipe_kafka_messages_delivered_total", "counter",
                 "Kafka messages whose delivery the broker acknowledged.", st.delivered);
    ndt_metrics_value(b, "ndtpipe_kafka_delivery_failures_total", "counter",
                 "Kafka messages that failed delivery for good.", st.delivery_failed);
    ndt_metrics_value(b, "ndtpipe_kafka_messages_in_flight", "gauge",
                 "Kafka messages produced and not yet acknowledged.", st.in_flight);
    ndt_metrics_value(b, "ndtpipe_kafka_queue_full_waits_total", "counter",
                 "Times publishing waited because the producer queue was full (back-pressure).",
                 st.queue_full_waits);
    ndt_metrics_value(b, "ndtpipe_kafka_samples_dropped_total", "counter",
                 "Samples not published (only when stopping during back-pressure).", st.dropped);
    ndt_metrics_value(b, "ndtpipe_kafka_samples_unrepresentable_total", "counter",
                 "Samples the output format cannot carry (NaN or Inf in line protocol).",
                 st.unrepresentable);
}

static void refresh_metrics_if_due(ingest_scraper *s)
{
    int64_t now = ndt_clock_mono_ns();
    if (now < s->next_metrics_ns)
        return;
    s->next_metrics_ns = now + METRICS_REFRESH_NS;
    render_metrics(s, &s->rendering);
    pthread_mutex_lock(&s->metrics_lock);
    ndt_buf tmp = s->published;
    s->published = s->rendering;
    s->rendering = tmp;
    pthread_mutex_unlock(&s->metrics_lock);
}

static int serve_metrics(void *ctx, ndt_buf *out)
{
    ingest_scraper *s = ctx;
    pthread_mutex_lock(&s->metrics_lock);
    int rc = ndt_buf_append(out, s->published.data ? s->published.data : "", s->published.len);
    pthread_mutex_unlock(&s->metrics_lock);
    return rc;
}

int ingest_scraper_run(ingest_scraper *s)
{
    static const volatile int never = 0;
    const volatile int *stop = s->options.stop ? s->options.stop : &never;

    ndt_log(NDT_LOG_INFO, "ingest", "scraping", NDT_KV_UINT("targets", s->ntargets),
            NDT_KV_STR("topic", s->options.output.topic ? s->options.output.topic : INGEST_DEFAULT_TOPIC),
            NDT_KV_STR("format", s->options.output.format ? s->options.output.format : "avro"));
    s->next_rediscovery_ns = ndt_clock_mono_ns() + REDISCOVERY_NS;
    while (!*stop) {
        run_due(s);
        ingest_sink_poll(s->sink);
        rediscover_if_due(s);
        refresh_metrics_if_due(s);
        int64_t next = s->nheap ? s->heap[0]->next_tick_ns : ndt_clock_mono_ns() + 1000000000;
        if (ingest_loop_wait(s->loop, next) != NDT_OK) {
            ndt_log(NDT_LOG_ERROR, "ingest", "event loop failed");
            return NDT_ERROR;
        }
    }
    ndt_log(NDT_LOG_INFO, "ingest", "stopping: finishing scrapes in flight and flushing Kafka");
    drain(s);
    s->next_metrics_ns = 0;
    refresh_metrics_if_due(s);
    collect_target_totals(s);
    collect_sink_totals(s);
    write_stats(s);
    ndt_log(NDT_LOG_INFO, "ingest", "stopped", NDT_KV_UINT("scrapes", s->totals.scrapes),
            NDT_KV_UINT("samples_published", s->totals.samples_published),
            NDT_KV_UINT("missed_ticks", s->totals.missed_ticks),
            NDT_KV_UINT("delivered", s->totals.delivered),
            NDT_KV_UINT("delivery_failed", s->totals.delivery_failed));
    return NDT_OK;
}

int ingest_scraper_new(const ingest_scrape_options *options, ingest_scraper **out, char *err,
                       size_t errlen)
{
    int rc = NDT_ERROR;
    ingest_scraper *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    s->options = *options;
    ndt_arena_init(&s->arena, SCRAPE_ARENA_BLOCK, SCRAPE_ARENA_CAP);
    pthread_mutex_init(&s->metrics_lock, NULL);
    ndt_buf_init(&s->rendering, 0);
    ndt_buf_init(&s->published, 0);

    if (ingest_scrape_config_load(options->config_path, &s->config, err, errlen) != NDT_OK) {
        rc = NDT_EBADCONF;
        goto fail;
    }
    if (ingest_loop_new(&s->loop, on_transfer_done, s, err, errlen) != NDT_OK)
        goto fail;
    for (size_t i = 0; i < s->config->njobs; i++) {
        rc = add_targets_of_job(s, &s->config->jobs[i], err, errlen);
        if (rc != NDT_OK)
            goto fail;
    }
    rc = ingest_sink_new_for_output(&options->output, options->stop, 0, &s->sink, err, errlen);
    if (rc != NDT_OK)
        goto fail;
    /* The scraper's families join the process's registry, which serves
     * them here and, under `ndtpipe run`, on the one /metrics of the
     * process. */
    refresh_metrics_if_due(s);
    if (ndt_metrics_register(serve_metrics, s) != NDT_OK) {
        snprintf(err, errlen, "too many metrics sources in this process");
        rc = NDT_ERROR;
        goto fail;
    }
    s->metrics_registered = 1;
    if (options->metrics_listen) {
        rc = ndt_httpd_start(options->metrics_listen, NULL, NULL, &s->httpd, err, errlen);
        if (rc != NDT_OK)
            goto fail;
        refresh_metrics_if_due(s);
        ndt_log(NDT_LOG_INFO, "ingest", "serving own metrics",
                NDT_KV_STR("listen", options->metrics_listen), NDT_KV_INT("port", ndt_httpd_port(s->httpd)));
    }
    *out = s;
    return NDT_OK;

fail:
    ingest_scraper_destroy(s);
    return rc;
}

void ingest_scraper_get_totals(const ingest_scraper *s, ingest_scrape_totals *out)
{
    *out = s->totals;
}

int ingest_scraper_metrics_port(const ingest_scraper *s)
{
    return s->httpd ? ndt_httpd_port(s->httpd) : 0;
}

void ingest_scraper_destroy(ingest_scraper *s)
{
    if (!s)
        return;
    /* The HTTP thread reads targets through the snapshot: stop it first. */
    ndt_httpd_stop(s->httpd);
    if (s->metrics_registered)
        ndt_metrics_unregister(s);
    for (size_t i = 0; i < s->ntargets; i++) {
        if (s->targets[i]->in_flight)
            ingest_loop_abort(s->loop, s->targets[i]->easy);
        ingest_target_free(s->targets[i]);
    }
    free(s->targets);
    free(s->heap);
    if (s->sink)
        ingest_sink_destroy(s->sink);
    ingest_loop_destroy(s->loop);
    if (s->config)
        ingest_scrape_config_free(s->config);
    ndt_arena_free(&s->arena);
    ndt_buf_free(&s->rendering);
    ndt_buf_free(&s->published);
    pthread_mutex_destroy(&s->metrics_lock);
    free(s);
}

int ingest_scrape_config_check(const char *path, char *err, size_t errlen)
{
    ingest_scrape_config *config = NULL;
    if (ingest_scrape_config_load(path, &config, err, errlen) != NDT_OK)
        return NDT_EBADCONF;
    int rc = NDT_OK;
    for (size_t i = 0; i < config->njobs && rc == NDT_OK; i++) {
        ingest_target_def *defs = NULL;
        size_t n = 0, dropped = 0;
        if (ingest_job_discover(&config->jobs[i], &defs, &n, &dropped, err, errlen) != NDT_OK)
            rc = NDT_EBADCONF;
        else
            ingest_target_defs_free(defs, n);
    }
    ingest_scrape_config_free(config);
    return rc;
}
