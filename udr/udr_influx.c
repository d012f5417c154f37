/*
 * udr_influx.c: the InfluxDB UDR backend over libcurl, both write APIs.
 *
 *   influx:http://HOST:PORT/DB          POST /write?db=DB&precision=ms        (1.x)
 *                                        basic auth from INFLUX_USERNAME/INFLUX_PASSWORD
 *   influx2:http://HOST:PORT/ORG/BUCKET POST /api/v2/write?org=&bucket=&precision=ms
 *                                        "Authorization: Token $INFLUX_TOKEN"
 *
 * Layout: measurement = entity type, tag id = entity id, fields =
 * attributes, timestamps in ms.  A relationship change is one point of the
 * measurement ndt_relationship, tags subject and predicate, fields object
 * (string) and, once it has ended, valid_to_ms (integer), at valid_from.
 * InfluxDB keeps one value per (series, field, timestamp): a replay
 * overwrites, so at-least-once delivery stores every point exactly once.
 *
 * Write path: points are encoded as line protocol into a batch bounded by
 * batch_max_bytes; a full batch, or udr_flush(), is handed to a sender
 * thread that posts it gzipped, with up to max_retries retries and
 * exponential backoff on transient failures (connection errors, 5xx, 429).
 * One batch is in flight while the caller encodes the next, so encoding
 * overlaps InfluxDB's parsing (run in series they added up: bench/udr.sh);
 * two batches are the memory bound.  A batch's failure is reported by the
 * next hand-over, udr_flush_done() or udr_flush() (which waits until the
 * sender is idle and clears it): callers commit their input only after a
 * successful flush, or a flush_done() of the ticket that covers it.  When they are exhausted the batch goes
 * to the on-disk spool instead of being lost, and so does every later batch
 * while the spool is not empty: order is kept because nothing overtakes the
 * spool.  The spool is replayed, oldest record first, whenever the server
 * answers again (probed at most every probe interval, which doubles while
 * it stays down) and at every udr_flush().  It survives the process: a new
 * handle on the same spool_dir picks it up.  It is bounded by
 * spool_max_bytes; a batch that does not fit is dropped, counted in
 * points_dropped and logged.  A 4xx other than 429 means the data or the
 * credentials are wrong: retrying cannot help, the batch is dropped with the
 * server's reason.
 *
 * Spool format: records "NDTS <bytes> <points>\n<line protocol>" appended to
 * spool.lp; spool.off holds the offset of the first record not yet
 * replayed.  Both are truncated once everything is replayed.
 *
 * Secrets: the token and password go into curl options, never into URLs or
 * logs; logged URLs have no credentials.
 */
#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "udr/udr_internal.h"

#define UDR_INFLUX_RESPONSE_MAX (64u << 10)
#define UDR_INFLUX_QUERY_MAX (256u << 20)
#define UDR_INFLUX_BACKOFF_MS 100
#define UDR_INFLUX_BACKOFF_MAX_MS 2000
#define UDR_INFLUX_REL_MEASUREMENT "ndt_relationship"

typedef enum udr_send_result {
    UDR_SEND_OK = 0,
    UDR_SEND_TRANSIENT, /* worth retrying later: spool */
    UDR_SEND_REJECTED,  /* the server refused the data: drop */
} udr_send_result;

typedef struct udr_influx {
    int version;
    char base[512];       /* scheme://host:port, no trailing slash */
    char db[256];         /* 1.x database */
    char org[256], bucket[256];
    char write_url[1536];
    CURL *curl;
    struct curl_slist *headers;
    ndt_buf batch;        /* line protocol not yet sent */
    size_t batch_points;
    ndt_buf gz;           /* the gzipped request body */
    ndt_buf response;     /* bounded server answer, for error messages */
    /* spool */
    char spool_path[1024], offset_path[1024];
    uint64_t spool_size, spool_offset; /* bytes in the file, bytes replayed */
    int64_t next_probe_ms;
    int probe_backoff_ms;
    /* The sender thread: owns curl (writes), gz, response and the spool.
     * Everything below mu is shared with it. */
    CURL *curl_read;      /* reads, from the caller's thread */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ndt_buf inflight;     /* the batch the sender works on */
    size_t inflight_points;
    int has_work, busy, force_probe, stop;
    uint64_t handed, done; /* batches handed to the sender, and finished */
    int failed;           /* sticky until udr_flush() reported it */
    char failure[NDT_ERRBUF_SIZE];
    udr_stats sent;       /* the sender's totals, copied out while it is idle */
    uint64_t read_requests;
} udr_influx;

static void udr_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- line protocol ---- */

/* Measurement names and field keys are identifiers (udr.c checks), so
 * only tag values and string fields need escaping.  A tag value escapes
 * comma, space and equals; a backslash is literal there (ids never hold
 * one: udr.c). */
static int udr_lp_tag_value(ndt_buf *b, const char *s)
{
    for (; *s; s++) {
        if ((*s == ',' || *s == ' ' || *s == '=') && ndt_buf_append_char(b, '\\'))
            return NDT_ERROR;
        if (ndt_buf_append_char(b, *s))
            return NDT_ERROR;
    }
    return NDT_OK;
}

static int udr_lp_string_field(ndt_buf *b, const char *s)
{
    if (ndt_buf_append_char(b, '"'))
        return NDT_ERROR;
    for (; *s; s++) {
        if ((*s == '"' || *s == '\\') && ndt_buf_append_char(b, '\\'))
            return NDT_ERROR;
        if (ndt_buf_append_char(b, *s))
            return NDT_ERROR;
    }
    return ndt_buf_append_char(b, '"');
}

/* One line; NDT_AGAIN when no field is representable (NaN and infinities
 * have no line protocol form), so the point is skipped, not sent broken. */
static int udr_lp_point(ndt_buf *b, const udr_point *p)
{
    size_t mark = b->len;
    int fields = 0;
    if (ndt_buf_append_str(b, p->type) || ndt_buf_append_str(b, ",id=") ||
        udr_lp_tag_value(b, p->id) || ndt_buf_append_char(b, ' '))
        goto full;
    for (size_t i = 0; i < p->nfields; i++) {
        const udr_field *f = &p->fields[i];
        if (f->kind == UDR_FIELD_DOUBLE && !isfinite(f->number))
            continue;
        if ((fields && ndt_buf_append_char(b, ',')) || ndt_buf_append_str(b, f->name) ||
            ndt_buf_append_char(b, '='))
            goto full;
        if (f->kind == UDR_FIELD_STRING ? udr_lp_string_field(b, f->text)
                                        : ndt_buf_append_double(b, f->number))
            goto full;
        fields++;
    }
    if (!fields) {
        b->len = mark;
        return NDT_AGAIN;
    }
    if (ndt_buf_printf(b, " %" PRId64 "\n", p->ts_ms))
        goto full;
    return NDT_OK;
full:
    b->len = mark;
    return NDT_ERROR;
}

static int udr_lp_relation(ndt_buf *b, const udr_relation *r)
{
    size_t mark = b->len;
    if (ndt_buf_append_str(b, UDR_INFLUX_REL_MEASUREMENT ",predicate=") ||
        udr_lp_tag_value(b, r->predicate) || ndt_buf_append_str(b, ",subject=") ||
        udr_lp_tag_value(b, r->subject) || ndt_buf_append_str(b, " object=") ||
        udr_lp_string_field(b, r->object))
        goto full;
    if (r->valid_to_ms != UDR_OPEN && ndt_buf_printf(b, ",valid_to_ms=%" PRId64 "i", r->valid_to_ms))
        goto full;
    if (ndt_buf_printf(b, " %" PRId64 "\n", r->valid_from_ms))
        goto full;
    return NDT_OK;
full:
    b->len = mark;
    return NDT_ERROR;
}

/* ---- HTTP ---- */

static size_t udr_influx_on_body(char *data, size_t size, size_t n, void *userdata)
{
    ndt_buf *b = userdata;
    size_t len = size * n;
    if (ndt_buf_append(b, data, len) != NDT_OK)
        return 0; /* past the bound: curl fails the transfer */
    return len;
}

/* Level 1 by default: line protocol compresses several times even at the
 * fastest level, and the CPU is better spent harmonising. */
static int udr_gzip(ndt_buf *out, const char *data, size_t len, int level)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, level > 9 ? 9 : level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NDT_ERROR;
    ndt_buf_reset(out);
    size_t bound = deflateBound(&z, len);
    if (ndt_buf_reserve(out, bound) != NDT_OK) {
        deflateEnd(&z);
        return NDT_ERROR;
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out->data;
    z.avail_out = (uInt)bound;
    int zrc = deflate(&z, Z_FINISH);
    out->len = z.total_out;
    deflateEnd(&z);
    return zrc == Z_STREAM_END ? NDT_OK : NDT_ERROR;
}

/* One POST of body; the outcome class decides retry, spool or drop. */
static udr_send_result udr_influx_post(udr *u, const char *body, size_t len,
                                       char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    const char *send = body;
    size_t send_len = len;
    if (u->opts.gzip_level > 0) {
        if (udr_gzip(&x->gz, body, len, u->opts.gzip_level) != NDT_OK) {
            snprintf(err, errlen, "influx: gzip of a %zu-byte batch failed", len);
            return UDR_SEND_REJECTED;
        }
        send = x->gz.data;
        send_len = x->gz.len;
    }
    ndt_buf_reset(&x->response);
    curl_easy_setopt(x->curl, CURLOPT_URL, x->write_url);
    curl_easy_setopt(x->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(x->curl, CURLOPT_POSTFIELDS, send);
    curl_easy_setopt(x->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)send_len);
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, x->headers);
    x->sent.requests++;
    CURLcode cc = curl_easy_perform(x->curl);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "influx: %s", curl_easy_strerror(cc));
        return UDR_SEND_TRANSIENT;
    }
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300)
        return UDR_SEND_OK;
    ndt_buf_terminate(&x->response);
    snprintf(err, errlen, "influx: HTTP %ld: %.200s", status,
             x->response.data ? x->response.data : "");
    if (status >= 500 || status == 429 || status == 408)
        return UDR_SEND_TRANSIENT;
    return UDR_SEND_REJECTED;
}

static udr_send_result udr_influx_post_retrying(udr *u, const char *body, size_t len, int retries,
                                                char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    int backoff = UDR_INFLUX_BACKOFF_MS;
    for (int attempt = 0;; attempt++) {
        udr_send_result r = udr_influx_post(u, body, len, err, errlen);
        if (r != UDR_SEND_TRANSIENT || attempt >= retries)
            return r;
        x->sent.retries++;
        udr_sleep_ms(backoff);
        backoff = backoff * 2 > UDR_INFLUX_BACKOFF_MAX_MS ? UDR_INFLUX_BACKOFF_MAX_MS : backoff * 2;
    }
}

/* ---- spool ---- */

static int udr_mkdirs(const char *dir, char *err, size_t errlen)
{
    char path[1024];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "spool directory path too long");
        return NDT_ERROR;
    }
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "spool directory %s: %s", path, strerror(errno));
                return NDT_ERROR;
            }
            *p = c;
            if (!c)
                return NDT_OK;
        }
    }
}

static int udr_spool_save_offset(udr_influx *x)
{
    FILE *f = fopen(x->offset_path, "w");
    if (!f)
        return NDT_ERROR;
    fprintf(f, "%" PRIu64 "\n", x->spool_offset);
    int rc = fclose(f) == 0 ? NDT_OK : NDT_ERROR;
    return rc;
}

static void udr_spool_clear(udr_influx *x)
{
    if (truncate(x->spool_path, 0) != 0 && errno != ENOENT)
        ndt_log(NDT_LOG_WARN, "udr", "cannot truncate the spool",
                NDT_KV_STR("path", x->spool_path), NDT_KV_STR("error", strerror(errno)));
    x->spool_size = x->spool_offset = 0;
    unlink(x->offset_path);
}

static int udr_spool_append(udr *u, const char *body, size_t len, size_t points)
{
    udr_influx *x = u->backend;
    char header[64];
    int hlen = snprintf(header, sizeof(header), "NDTS %zu %zu\n", len, points);
    uint64_t pending = x->spool_size - x->spool_offset;
    if (pending + (uint64_t)hlen + len > u->opts.spool_max_bytes) {
        x->sent.points_dropped += points;
        ndt_log(NDT_LOG_ERROR, "udr", "spool full, batch dropped",
                NDT_KV_UINT("points", points), NDT_KV_UINT("spool_bytes", pending),
                NDT_KV_UINT("dropped_total", x->sent.points_dropped));
        return NDT_ERROR;
    }
    int fd = open(x->spool_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0)
        goto fail;
    if (write(fd, header, (size_t)hlen) != hlen || write(fd, body, len) != (ssize_t)len ||
        fdatasync(fd) != 0) {
        close(fd);
        goto fail;
    }
    close(fd);
    if (x->spool_size == 0)
        ndt_log(NDT_LOG_WARN, "udr", "InfluxDB unreachable, spooling to disk",
                NDT_KV_STR("path", x->spool_path));
    x->spool_size += (uint64_t)hlen + len;
    x->sent.points_spooled += points;
    return NDT_OK;
fail:
    x->sent.points_dropped += points;
    ndt_log(NDT_LOG_ERROR, "udr", "spool write failed, batch dropped",
            NDT_KV_STR("path", x->spool_path), NDT_KV_STR("error", strerror(errno)),
            NDT_KV_UINT("points", points));
    return NDT_ERROR;
}

/* Replays spool records oldest first until it is empty (NDT_OK) or the
 * server fails again (NDT_AGAIN).  A rejected record is dropped, counted:
 * it would block everything behind it forever. */
static int udr_spool_replay(udr *u, char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    FILE *f = fopen(x->spool_path, "r");
    if (!f) {
        udr_spool_clear(x);
        return NDT_OK;
    }
    int rc = NDT_OK;
    char *body = NULL;
    size_t cap = 0;
    while (x->spool_offset < x->spool_size) {
        size_t len, points;
        if (fseeko(f, (off_t)x->spool_offset, SEEK_SET) != 0 ||
            fscanf(f, "NDTS %zu %zu", &len, &points) != 2 || fgetc(f) != '\n') {
            ndt_log(NDT_LOG_ERROR, "udr", "spool is corrupt, discarding its rest",
                    NDT_KV_STR("path", x->spool_path), NDT_KV_UINT("offset", x->spool_offset));
            break;
        }
        long body_at = ftello(f);
        if (len > cap) {
            char *grown = realloc(body, len);
            if (!grown) {
                rc = NDT_AGAIN;
                goto out;
            }
            body = grown;
            cap = len;
        }
        if (fread(body, 1, len, f) != len) {
            ndt_log(NDT_LOG_ERROR, "udr", "spool record truncated, discarding its rest",
                    NDT_KV_STR("path", x->spool_path));
            break;
        }
        udr_send_result r = udr_influx_post(u, body, len, err, errlen);
        if (r == UDR_SEND_TRANSIENT) {
            rc = NDT_AGAIN;
            goto out;
        }
        if (r == UDR_SEND_OK) {
            x->sent.points_replayed += points;
            x->sent.points_sent += points;
        } else {
            x->sent.points_dropped += points;
            ndt_log(NDT_LOG_ERROR, "udr", "spooled batch rejected, dropped",
                    NDT_KV_STR("error", err), NDT_KV_UINT("points", points));
        }
        x->spool_offset = (uint64_t)body_at + len;
        udr_spool_save_offset(x);
    }
    ndt_log(NDT_LOG_INFO, "udr", "spool replayed",
            NDT_KV_UINT("points_replayed", x->sent.points_replayed));
    udr_spool_clear(x);
out:
    free(body);
    fclose(f);
    return rc;
}

static void udr_spool_load(udr *u)
{
    udr_influx *x = u->backend;
    struct stat st;
    if (stat(x->spool_path, &st) != 0 || st.st_size == 0)
        return;
    x->spool_size = (uint64_t)st.st_size;
    FILE *f = fopen(x->offset_path, "r");
    if (f) {
        if (fscanf(f, "%" SCNu64, &x->spool_offset) != 1 || x->spool_offset > x->spool_size)
            x->spool_offset = 0;
        fclose(f);
    }
    ndt_log(NDT_LOG_INFO, "udr", "spool from an earlier run will be replayed first",
            NDT_KV_STR("path", x->spool_path),
            NDT_KV_UINT("bytes", x->spool_size - x->spool_offset));
}

static int udr_spool_pending(const udr_influx *x)
{
    return x->spool_offset < x->spool_size;
}

/* Tries the spool if it is due (or forced); NDT_OK when it is empty. */
static int udr_spool_drain(udr *u, int force, char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    if (!udr_spool_pending(x))
        return NDT_OK;
    int64_t now = ndt_clock_mono_ms();
    if (!force && now < x->next_probe_ms)
        return NDT_AGAIN;
    if (udr_spool_replay(u, err, errlen) == NDT_OK) {
        x->probe_backoff_ms = UDR_INFLUX_BACKOFF_MS;
        return NDT_OK;
    }
    x->next_probe_ms = now + x->probe_backoff_ms;
    x->probe_backoff_ms = x->probe_backoff_ms * 2 > UDR_INFLUX_BACKOFF_MAX_MS
                              ? UDR_INFLUX_BACKOFF_MAX_MS : x->probe_backoff_ms * 2;
    return NDT_AGAIN;
}

/* ---- the batch ---- */

/* The sender thread's work on one batch: the spool first (order), then
 * the batch, retried, spooled or dropped. */
static int udr_influx_send_inflight(udr *u, int force_probe, char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    int drained = udr_spool_drain(u, force_probe, err, errlen);
    if (x->inflight.len == 0)
        return NDT_OK;
    size_t points = x->inflight_points;
    int rc = NDT_OK;
    if (drained != NDT_OK) {
        /* The spool is still there: the batch queues behind it. */
        rc = udr_spool_append(u, x->inflight.data, x->inflight.len, points);
        goto done;
    }
    udr_send_result r = udr_influx_post_retrying(u, x->inflight.data, x->inflight.len,
                                                 u->opts.max_retries, err, errlen);
    if (r == UDR_SEND_OK) {
        x->sent.points_sent += points;
    } else if (r == UDR_SEND_TRANSIENT) {
        x->next_probe_ms = ndt_clock_mono_ms() + x->probe_backoff_ms;
        rc = udr_spool_append(u, x->inflight.data, x->inflight.len, points);
    } else {
        x->sent.points_dropped += points;
        ndt_log(NDT_LOG_ERROR, "udr", "InfluxDB rejected a batch, dropped",
                NDT_KV_STR("error", err), NDT_KV_UINT("points", points));
        rc = NDT_ERROR;
    }
done:
    if (rc != NDT_OK && !err[0])
        snprintf(err, errlen, "influx: %zu points could not be sent nor spooled", points);
    ndt_buf_reset(&x->inflight);
    x->inflight_points = 0;
    return rc;
}

static void *udr_influx_sender(void *arg)
{
    udr *u = arg;
    udr_influx *x = u->backend;
    char err[NDT_ERRBUF_SIZE];
    pthread_mutex_lock(&x->mu);
    for (;;) {
        while (!x->has_work && !x->stop)
            pthread_cond_wait(&x->cv, &x->mu);
        if (!x->has_work)
            break;
        x->has_work = 0;
        x->busy = 1;
        int force = x->force_probe;
        pthread_mutex_unlock(&x->mu);
        err[0] = '\0';
        int rc = udr_influx_send_inflight(u, force, err, sizeof(err));
        pthread_mutex_lock(&x->mu);
        x->busy = 0;
        x->done++;
        if (rc != NDT_OK && !x->failed) {
            x->failed = 1;
            snprintf(x->failure, sizeof(x->failure), "%s", err);
        }
        pthread_cond_broadcast(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

/* With x->mu held: copies the sender's counters (it must be idle). */
static void udr_influx_copy_stats_locked(udr *u)
{
    udr_influx *x = u->backend;
    u->stats.points_sent = x->sent.points_sent;
    u->stats.points_spooled = x->sent.points_spooled;
    u->stats.points_replayed = x->sent.points_replayed;
    u->stats.points_dropped = x->sent.points_dropped;
    u->stats.retries = x->sent.retries;
    u->stats.requests = x->sent.requests + x->read_requests;
}

/* With x->mu held: the sticky failure, if any (clear: udr_flush). */
static int udr_influx_failure_locked(udr_influx *x, int clear, char *err, size_t errlen)
{
    if (!x->failed)
        return NDT_OK;
    snprintf(err, errlen, "%s", x->failure);
    if (clear)
        x->failed = 0;
    return NDT_ERROR;
}

/* With x->mu held: waits until the sender is idle and copies its counters. */
static void udr_influx_wait_idle_locked(udr *u)
{
    udr_influx *x = u->backend;
    while (x->has_work || x->busy)
        pthread_cond_wait(&x->cv, &x->mu);
    udr_influx_copy_stats_locked(u);
}

/* Hands the batch being encoded to the sender, once it is done with the
 * previous one, so that encoding the next batch overlaps the request in
 * flight (the server parses on another core meanwhile).  A failure of
 * an earlier batch is reported here, or at the next flush. */
static int udr_influx_send_batch(udr *u, int force_probe, char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    pthread_mutex_lock(&x->mu);
    udr_influx_wait_idle_locked(u);
    ndt_buf tmp = x->inflight;
    x->inflight = x->batch;
    x->batch = tmp;
    ndt_buf_reset(&x->batch);
    x->inflight_points = x->batch_points;
    x->batch_points = 0;
    x->force_probe = force_probe;
    x->has_work = 1;
    x->handed++;
    int rc = udr_influx_failure_locked(x, 0, err, errlen);
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

static int udr_influx_write_points(udr *u, const udr_point *points, size_t n,
                                   char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    err[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int rc = udr_lp_point(&x->batch, &points[i]);
        if (rc == NDT_ERROR) {
            /* The batch is full: send it and encode the point again. */
            if (udr_influx_send_batch(u, 0, err, errlen) != NDT_OK)
                return NDT_ERROR;
            rc = udr_lp_point(&x->batch, &points[i]);
            if (rc == NDT_ERROR) {
                snprintf(err, errlen, "entity %s: one point exceeds the batch limit of %zu bytes",
                         points[i].id, u->opts.batch_max_bytes);
                return NDT_ERROR;
            }
        }
        if (rc == NDT_OK)
            x->batch_points++;
    }
    return NDT_OK;
}

static int udr_influx_write_relation(udr *u, const udr_relation *r, char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    err[0] = '\0';
    if (udr_lp_relation(&x->batch, r) != NDT_OK) {
        if (udr_influx_send_batch(u, 0, err, errlen) != NDT_OK)
            return NDT_ERROR;
        if (udr_lp_relation(&x->batch, r) != NDT_OK) {
            snprintf(err, errlen, "relationship of %s exceeds the batch limit", r->subject);
            return NDT_ERROR;
        }
    }
    x->batch_points++;
    return NDT_OK;
}

static int udr_influx_flush_start(udr *u, uint64_t *ticket, char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    err[0] = '\0';
    int rc = udr_influx_send_batch(u, 1, err, errlen);
    pthread_mutex_lock(&x->mu);
    *ticket = x->handed;
    pthread_mutex_unlock(&x->mu);
    return rc;
}

static int udr_influx_flush_done(udr *u, uint64_t ticket, int wait, char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    err[0] = '\0';
    pthread_mutex_lock(&x->mu);
    while (wait && x->done < ticket)
        pthread_cond_wait(&x->cv, &x->mu);
    int rc = x->done < ticket ? NDT_AGAIN : NDT_OK;
    if (rc == NDT_OK && !x->busy && !x->has_work)
        udr_influx_copy_stats_locked(u);
    if (udr_influx_failure_locked(x, 0, err, errlen) != NDT_OK)
        rc = NDT_ERROR;
    pthread_mutex_unlock(&x->mu);
    return rc;
}

static int udr_influx_flush(udr *u, char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    err[0] = '\0';
    udr_influx_send_batch(u, 1, err, errlen);
    pthread_mutex_lock(&x->mu);
    udr_influx_wait_idle_locked(u);
    int rc = udr_influx_failure_locked(x, 1, err, errlen);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

/* ---- reads (1.x InfluxQL) ---- */

/* InfluxDB stores nanoseconds in an int64: ms bounds beyond that range
 * are clamped rather than overflowing in the query text. */
static int64_t udr_influx_clamp_ms(int64_t ms)
{
    const int64_t limit = INT64_MAX / 1000000 - 1;
    return ms > limit ? limit : ms < -limit ? -limit : ms;
}

static int udr_influx_query(udr *u, const char *q, cJSON **out, char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    *out = NULL;
    char *eq = curl_easy_escape(x->curl_read, q, 0);
    char *edb = curl_easy_escape(x->curl_read, x->db, 0);
    ndt_buf url, body;
    ndt_buf_init(&url, 0);
    ndt_buf_init(&body, UDR_INFLUX_QUERY_MAX);
    int rc = NDT_ERROR;
    if (!eq || !edb || ndt_buf_printf(&url, "%s/query?db=%s&epoch=ms&q=%s", x->base, edb, eq) ||
        ndt_buf_terminate(&url)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    curl_easy_setopt(x->curl_read, CURLOPT_URL, url.data);
    curl_easy_setopt(x->curl_read, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(x->curl_read, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(x->curl_read, CURLOPT_WRITEDATA, &body);
    x->read_requests++;
    u->stats.requests++;
    CURLcode cc = curl_easy_perform(x->curl_read);
    long status = 0;
    curl_easy_getinfo(x->curl_read, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK || status != 200) {
        ndt_buf_terminate(&body);
        snprintf(err, errlen, "influx query: %s (HTTP %ld) %.200s",
                 cc != CURLE_OK ? curl_easy_strerror(cc) : "failed", status,
                 body.data ? body.data : "");
        goto out;
    }
    ndt_buf_terminate(&body);
    *out = cJSON_Parse(body.data ? body.data : "");
    if (!*out) {
        snprintf(err, errlen, "influx query: the answer is not JSON");
        goto out;
    }
    cJSON *results = cJSON_GetObjectItem(*out, "results");
    cJSON *first = cJSON_GetArrayItem(results, 0);
    cJSON *qerr = cJSON_GetObjectItem(first, "error");
    if (cJSON_IsString(qerr)) {
        snprintf(err, errlen, "influx query: %s", qerr->valuestring);
        cJSON_Delete(*out);
        *out = NULL;
        goto out;
    }
    rc = NDT_OK;
out:
    curl_free(eq);
    curl_free(edb);
    ndt_buf_free(&url);
    ndt_buf_free(&body);
    return rc;
}

/* Feeds every row of every series to the assembler.  The entity id is the
 * column "id" (ungrouped queries) or the series tag (GROUP BY "id"). */
static int udr_influx_rows(cJSON *doc, udr_assembler *a)
{
    cJSON *series = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "results"), 0),
                                        "series");
    cJSON *s;
    cJSON_ArrayForEach(s, series) {
        cJSON *columns = cJSON_GetObjectItem(s, "columns");
        cJSON *tag_id = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "tags"), "id");
        int ncol = cJSON_GetArraySize(columns), id_col = -1, time_col = -1;
        for (int c = 0; c < ncol; c++) {
            const char *name = cJSON_GetStringValue(cJSON_GetArrayItem(columns, c));
            if (name && strcmp(name, "id") == 0)
                id_col = c;
            else if (name && strcmp(name, "time") == 0)
                time_col = c;
        }
        cJSON *row;
        cJSON_ArrayForEach(row, cJSON_GetObjectItem(s, "values")) {
            const char *id = id_col >= 0 ? cJSON_GetStringValue(cJSON_GetArrayItem(row, id_col))
                                         : cJSON_GetStringValue(tag_id);
            cJSON *t = cJSON_GetArrayItem(row, time_col);
            if (!id || !cJSON_IsNumber(t))
                continue;
            for (int c = 0; c < ncol; c++) {
                if (c == id_col || c == time_col)
                    continue;
                cJSON *v = cJSON_GetArrayItem(row, c);
                udr_field f = { .name = cJSON_GetStringValue(cJSON_GetArrayItem(columns, c)) };
                if (cJSON_IsNumber(v)) {
                    f.kind = UDR_FIELD_DOUBLE;
                    f.number = v->valuedouble;
                } else if (cJSON_IsString(v)) {
                    f.kind = UDR_FIELD_STRING;
                    f.text = v->valuestring;
                } else {
                    continue; /* null: this point did not carry that attribute */
                }
                int rc = udr_assembler_add(a, id, (int64_t)t->valuedouble, &f);
                if (rc != NDT_OK)
                    return rc;
            }
        }
    }
    return udr_assembler_finish(a);
}

static int udr_influx_read(udr *u, const char *q, const char *type, int by_id,
                           udr_point_fn fn, void *ctx, char *err, size_t errlen)
{
    cJSON *doc;
    if (udr_influx_query(u, q, &doc, err, errlen) != NDT_OK)
        return NDT_ERROR;
    udr_assembler a;
    udr_assembler_init(&a, type, by_id, fn, ctx);
    int rc = udr_influx_rows(doc, &a);
    if (rc != NDT_OK)
        snprintf(err, errlen, "read of %s stopped (status %d)", type, rc);
    udr_assembler_free(&a);
    cJSON_Delete(doc);
    return rc;
}

static int udr_influx_read_range(udr *u, const char *type, int64_t from_ms, int64_t to_ms,
                                 udr_point_fn fn, void *ctx, char *err, size_t errlen)
{
    char q[512];
    /* type is an identifier (udr.c), safe inside double quotes. */
    snprintf(q, sizeof(q), "SELECT * FROM \"%s\" WHERE time >= %" PRId64 "ms AND time < %" PRId64
             "ms ORDER BY time", type, udr_influx_clamp_ms(from_ms), udr_influx_clamp_ms(to_ms));
    return udr_influx_read(u, q, type, 0, fn, ctx, err, errlen);
}

/* The newest point of each entity.  With one point per entity and scrape
 * carrying all of its attributes this is its latest state. */
static int udr_influx_read_latest(udr *u, const char *type, udr_point_fn fn, void *ctx,
                                  char *err, size_t errlen)
{
    char q[512];
    snprintf(q, sizeof(q), "SELECT * FROM \"%s\" GROUP BY \"id\" ORDER BY time DESC LIMIT 1", type);
    return udr_influx_read(u, q, type, 1, fn, ctx, err, errlen);
}

/* The newest change of each (subject, predicate) at or before at_ms is the
 * one in force, unless it ended by then.  Unlike SQLite, a restatement of
 * the same object is its own point, so valid_from is the latest
 * restatement rather than the start of the run. */
static int udr_influx_read_relations(udr *u, int64_t at_ms, udr_relation_fn fn, void *ctx,
                                     char *err, size_t errlen)
{
    char q[512];
    snprintf(q, sizeof(q), "SELECT * FROM \"" UDR_INFLUX_REL_MEASUREMENT "\" WHERE time <= %" PRId64
             "ms GROUP BY \"subject\", \"predicate\" ORDER BY time DESC LIMIT 1",
             udr_influx_clamp_ms(at_ms));
    cJSON *doc;
    if (udr_influx_query(u, q, &doc, err, errlen) != NDT_OK)
        return NDT_ERROR;
    int rc = NDT_OK;
    cJSON *series = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "results"), 0),
                                        "series");
    cJSON *s;
    cJSON_ArrayForEach(s, series) {
        cJSON *tags = cJSON_GetObjectItem(s, "tags");
        cJSON *columns = cJSON_GetObjectItem(s, "columns");
        cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "values"), 0);
        udr_relation r = {
            .subject = cJSON_GetStringValue(cJSON_GetObjectItem(tags, "subject")),
            .predicate = cJSON_GetStringValue(cJSON_GetObjectItem(tags, "predicate")),
            .valid_to_ms = UDR_OPEN,
        };
        for (int c = 0; c < cJSON_GetArraySize(columns); c++) {
            const char *name = cJSON_GetStringValue(cJSON_GetArrayItem(columns, c));
            cJSON *v = cJSON_GetArrayItem(row, c);
            if (!name)
                continue;
            if (strcmp(name, "time") == 0 && cJSON_IsNumber(v))
                r.valid_from_ms = (int64_t)v->valuedouble;
            else if (strcmp(name, "object") == 0)
                r.object = cJSON_GetStringValue(v);
            else if (strcmp(name, "valid_to_ms") == 0 && cJSON_IsNumber(v))
                r.valid_to_ms = (int64_t)v->valuedouble;
        }
        if (!r.subject || !r.predicate || !r.object || r.valid_to_ms <= at_ms)
            continue;
        rc = fn(ctx, &r);
        if (rc != NDT_OK) {
            snprintf(err, errlen, "relationship read stopped (status %d)", rc);
            break;
        }
    }
    cJSON_Delete(doc);
    return rc;
}

/* ---- lifecycle ---- */

/* Frees what open allocated; the sender must not be running. */
static void udr_influx_free(udr_influx *x)
{
    curl_slist_free_all(x->headers);
    if (x->curl)
        curl_easy_cleanup(x->curl);
    if (x->curl_read)
        curl_easy_cleanup(x->curl_read);
    ndt_buf_free(&x->batch);
    ndt_buf_free(&x->inflight);
    ndt_buf_free(&x->gz);
    ndt_buf_free(&x->response);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    free(x);
}

static void udr_influx_close(udr *u)
{
    udr_influx *x = u->backend;
    char err[NDT_ERRBUF_SIZE];
    if (x->thread_started) {
        if (udr_influx_flush(u, err, sizeof(err)) != NDT_OK)
            ndt_log(NDT_LOG_ERROR, "udr", "final flush failed", NDT_KV_STR("error", err));
        pthread_mutex_lock(&x->mu);
        x->stop = 1;
        pthread_cond_broadcast(&x->cv);
        pthread_mutex_unlock(&x->mu);
        pthread_join(x->thread, NULL);
    }
    if (udr_spool_pending(x))
        ndt_log(NDT_LOG_WARN, "udr", "spool kept for the next run",
                NDT_KV_STR("path", x->spool_path),
                NDT_KV_UINT("bytes", x->spool_size - x->spool_offset));
    udr_influx_free(x);
}

static const udr_backend_ops udr_influx1_ops = {
    .name = "influx",
    .write_points = udr_influx_write_points,
    .write_relation = udr_influx_write_relation,
    .flush = udr_influx_flush,
    .flush_start = udr_influx_flush_start,
    .flush_done = udr_influx_flush_done,
    .read_latest = udr_influx_read_latest,
    .read_range = udr_influx_read_range,
    .read_relations = udr_influx_read_relations,
    .close = udr_influx_close,
};

/* InfluxDB 2.x has no InfluxQL /query without a DBRP mapping, and the
 * /api/v2/write peers tested here (VictoriaMetrics) do not speak Flux:
 * the 2.x backend writes only. */
static const udr_backend_ops udr_influx2_ops = {
    .name = "influx2",
    .write_points = udr_influx_write_points,
    .write_relation = udr_influx_write_relation,
    .flush = udr_influx_flush,
    .flush_start = udr_influx_flush_start,
    .flush_done = udr_influx_flush_done,
    .close = udr_influx_close,
};

/* "http://HOST:PORT/A[/B]" into base and the one or two path segments. */
static int udr_influx_parse_url(udr_influx *x, int version, const char *url,
                                char *err, size_t errlen)
{
    const char *scheme_end = strstr(url, "://");
    const char *usage = version == 1 ? "influx:http://HOST:PORT/DB"
                                     : "influx2:http://HOST:PORT/ORG/BUCKET";
    if (!scheme_end || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        goto bad;
    const char *host = scheme_end + 3;
    const char *path = strchr(host, '/');
    if (!path || path == host || strchr(host, '@') || strchr(url, '?'))
        goto bad;
    if ((size_t)(path - url) >= sizeof(x->base))
        goto bad;
    memcpy(x->base, url, (size_t)(path - url));
    x->base[path - url] = '\0';
    const char *a = path + 1, *slash = strchr(a, '/');
    if (version == 1) {
        if (!*a || slash || strlen(a) >= sizeof(x->db))
            goto bad;
        strcpy(x->db, a);
        return NDT_OK;
    }
    if (!slash || slash == a || !slash[1] || strchr(slash + 1, '/') ||
        (size_t)(slash - a) >= sizeof(x->org) || strlen(slash + 1) >= sizeof(x->bucket))
        goto bad;
    memcpy(x->org, a, (size_t)(slash - a));
    x->org[slash - a] = '\0';
    strcpy(x->bucket, slash + 1);
    return NDT_OK;
bad:
    {
        char safe[256];
        ndt_log_redact_url(url, safe, sizeof(safe));
        snprintf(err, errlen, "--udr %s: expected %s (credentials come from the environment, "
                 "not the URL)", safe, usage);
    }
    return NDT_EBADCONF;
}

static int udr_influx_setup_curl(udr *u, char *err, size_t errlen)
{
    udr_influx *x = u->backend;
    x->curl = curl_easy_init();
    if (!x->curl) {
        snprintf(err, errlen, "influx: curl_easy_init failed");
        return NDT_ERROR;
    }
    char *e1 = curl_easy_escape(x->curl, x->version == 1 ? x->db : x->org, 0);
    char *e2 = curl_easy_escape(x->curl, x->bucket, 0);
    if (x->version == 1)
        snprintf(x->write_url, sizeof(x->write_url), "%s/write?db=%s&precision=ms", x->base, e1);
    else
        snprintf(x->write_url, sizeof(x->write_url),
                 "%s/api/v2/write?org=%s&bucket=%s&precision=ms", x->base, e1, e2);
    curl_free(e1);
    curl_free(e2);

    x->headers = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    if (u->opts.gzip_level > 0)
        x->headers = curl_slist_append(x->headers, "Content-Encoding: gzip");
    const char *token = getenv("INFLUX_TOKEN");
    if (x->version == 2 && token && *token) {
        char auth[1024];
        if (snprintf(auth, sizeof(auth), "Authorization: Token %s", token) >= (int)sizeof(auth)) {
            snprintf(err, errlen, "INFLUX_TOKEN is too long");
            return NDT_EBADCONF;
        }
        x->headers = curl_slist_append(x->headers, auth);
        memset(auth, 0, sizeof(auth));
    }
    const char *user = getenv("INFLUX_USERNAME"), *pass = getenv("INFLUX_PASSWORD");
    if (x->version == 1 && user && *user) {
        curl_easy_setopt(x->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(x->curl, CURLOPT_USERNAME, user);
        curl_easy_setopt(x->curl, CURLOPT_PASSWORD, pass ? pass : "");
    }
    curl_easy_setopt(x->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, (long)u->opts.timeout_ms);
    curl_easy_setopt(x->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)u->opts.timeout_ms);
    curl_easy_setopt(x->curl, CURLOPT_WRITEFUNCTION, udr_influx_on_body);
    curl_easy_setopt(x->curl, CURLOPT_WRITEDATA, &x->response);
    /* Reads run on the caller's thread while the sender writes: a handle
     * of their own, with the same credentials and limits. */
    x->curl_read = curl_easy_duphandle(x->curl);
    if (!x->curl_read) {
        snprintf(err, errlen, "influx: curl_easy_duphandle failed");
        return NDT_ERROR;
    }
    return NDT_OK;
}

int udr_influx_open(udr *u, int version, const char *url, char *err, size_t errlen)
{
    udr_influx *x = calloc(1, sizeof(*x));
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    x->version = version;
    x->probe_backoff_ms = UDR_INFLUX_BACKOFF_MS;
    ndt_buf_init(&x->batch, u->opts.batch_max_bytes);
    ndt_buf_init(&x->inflight, u->opts.batch_max_bytes);
    ndt_buf_init(&x->gz, 0);
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    ndt_buf_init(&x->response, UDR_INFLUX_RESPONSE_MAX);
    u->backend = x;
    u->ops = version == 1 ? &udr_influx1_ops : &udr_influx2_ops;

    int rc = udr_influx_parse_url(x, version, url, err, errlen);
    if (rc != NDT_OK)
        goto fail;
    if (snprintf(x->spool_path, sizeof(x->spool_path), "%s/spool.lp", u->opts.spool_dir) >=
            (int)sizeof(x->spool_path) ||
        snprintf(x->offset_path, sizeof(x->offset_path), "%s/spool.off", u->opts.spool_dir) >=
            (int)sizeof(x->offset_path)) {
        snprintf(err, errlen, "spool directory path too long");
        rc = NDT_EBADCONF;
        goto fail;
    }
    rc = udr_mkdirs(u->opts.spool_dir, err, errlen);
    if (rc != NDT_OK)
        goto fail;
    rc = udr_influx_setup_curl(u, err, errlen);
    if (rc != NDT_OK)
        goto fail;
    udr_spool_load(u);
    if (pthread_create(&x->thread, NULL, udr_influx_sender, u) != 0) {
        snprintf(err, errlen, "influx: cannot start the sender thread");
        rc = NDT_ERROR;
        goto fail;
    }
    x->thread_started = 1;
    return NDT_OK;
fail:
    /* Nothing was written yet: closing cannot send anything. */
    udr_influx_free(x);
    u->backend = NULL;
    return rc;
}
