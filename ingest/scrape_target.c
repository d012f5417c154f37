/*
 * scrape_target.c: one target's request and what becomes of its response;
 * see scrape_target.h.
 *
 * The label rules are Prometheus's, so that a series published by ndtpipe
 * is the series Prometheus would have stored:
 *   1. the exposition's labels plus __name__;
 *   2. target labels merged in: with honor_labels the exposition wins,
 *      otherwise a clashing exposition label is kept as exported_<name>;
 *   3. metric_relabel_configs;
 *   4. external_labels where the series lacks them (as Prometheus does
 *      when it remote-writes, which is what publishing to Kafka is);
 *   5. empty labels removed; __name__ first, the rest sorted by name.
 * sample_limit and the label limits fail the whole scrape (up = 0), as in
 * Prometheus: half a scrape would be a silently wrong picture.
 */
#include "ingest/scrape_target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/log.h"
#include "ingest/expo.h"
#include "ingest/relabel.h"

#define NDTPIPE_USER_AGENT "ndtpipe/0.1.0"

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    ingest_target *t = userp;
    size_t n = size * nmemb;
    if (ndt_buf_append(&t->body, data, n) != NDT_OK) {
        t->body_over_limit = 1;
        return 0; /* makes curl abort the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    ingest_target *t = userp;
    size_t n = size * nmemb;
    static const char name[] = "content-type:";
    if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        const char *v = data + sizeof(name) - 1;
        size_t len = n - (sizeof(name) - 1);
        while (len && (*v == ' ' || *v == '\t')) {
            v++;
            len--;
        }
        while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
            len--;
        free(t->content_type);
        t->content_type = strndup(v, len);
    }
    return n;
}

/* The media type a scrape_protocols name asks for; NULL for protocols
 * ndtpipe cannot parse yet (they are left out of the Accept header, so a
 * target falls back to the next one in the list). */
static const char *protocol_media_type(const char *protocol)
{
    static const struct {
        const char *name;
        const char *media_type;
    } types[] = {
        { "OpenMetricsText1.0.0", "application/openmetrics-text;version=1.0.0" },
        { "OpenMetricsText0.0.1", "application/openmetrics-text;version=0.0.1" },
        { "PrometheusText0.0.4", "text/plain;version=0.0.4" },
        { "PrometheusProto", INGEST_EXPO_PROTOBUF_MEDIA_TYPE },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(types); i++) {
        if (strcmp(protocol, types[i].name) == 0)
            return types[i].media_type;
    }
    return NULL;
}

/* Accept header in the job's scrape_protocols order with falling q
 * values, then any type, as Prometheus builds it. */
static void build_accept(const ingest_job *job, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "Accept: ");
    int q = (int)job->nscrape_protocols + 2; /* tenths: 0.5, 0.4, ... for three */
    if (q > 9)
        q = 9;
    for (size_t i = 0; i < job->nscrape_protocols && len < size; i++) {
        const char *type = protocol_media_type(job->scrape_protocols[i]);
        if (!type)
            continue;
        len += (size_t)snprintf(buf + len, size - len, "%s;q=0.%d,", type, q);
        if (q > 2)
            q--;
    }
    if (len < size)
        snprintf(buf + len, size - len, "*/*;q=0.%d", q);
}

static int set_headers(ingest_target *t, char *err, size_t errlen)
{
    const ingest_job *job = t->job;
    char line[1024];

    if (job->nscrape_protocols) {
        build_accept(job, line, sizeof(line));
        t->headers = curl_slist_append(t->headers, line);
    } else {
        t->headers = curl_slist_append(t->headers, "Accept: " INGEST_EXPO_ACCEPT_HEADER);
    }
    snprintf(line, sizeof(line), "X-Prometheus-Scrape-Timeout-Seconds: %g",
             (double)t->def.timeout_ns / 1e9);
    t->headers = curl_slist_append(t->headers, line);
    if (job->authorization_credentials) {
        const char *type = job->authorization_type ? job->authorization_type : "Bearer";
        int n = snprintf(line, sizeof(line), "Authorization: %s %s", type,
                         job->authorization_credentials);
        if (n < 0 || (size_t)n >= sizeof(line)) {
            snprintf(err, errlen, "job %s: authorization credentials too long", job->job_name);
            return NDT_ERROR;
        }
        t->headers = curl_slist_append(t->headers, line);
    }
    if (!t->headers) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    return NDT_OK;
}

static void set_tls(CURL *easy, const ingest_tls_config *tls)
{
    if (tls->ca_file)
        curl_easy_setopt(easy, CURLOPT_CAINFO, tls->ca_file);
    if (tls->cert_file)
        curl_easy_setopt(easy, CURLOPT_SSLCERT, tls->cert_file);
    if (tls->key_file)
        curl_easy_setopt(easy, CURLOPT_SSLKEY, tls->key_file);
    if (tls->insecure_skip_verify) {
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* tls_config.server_name: TLS must present and verify server_name while
 * the TCP connection goes to the target's address.  curl takes the TLS
 * name from the URL, so the URL names server_name and CURLOPT_CONNECT_TO
 * sends the connection to the real address; the Host header keeps the
 * address, as Prometheus sends it. */
static int apply_server_name(ingest_target *t, char *err, size_t errlen)
{
    const char *server_name = t->job->tls.server_name;
    const char *url = t->def.url;
    static const char https[] = "https://";
    if (!server_name || strncmp(url, https, sizeof(https) - 1) != 0) {
        t->request_url = strdup(url);
        if (!t->request_url) {
            snprintf(err, errlen, "out of memory");
            return NDT_ERROR;
        }
        return NDT_OK;
    }
    const char *authority = url + sizeof(https) - 1;
    size_t alen = strcspn(authority, "/?#");
    const char *colon = NULL;
    for (const char *p = authority + alen; p > authority; p--) {
        if (p[-1] == ':') {
            colon = p - 1;
            break;
        }
        if (p[-1] == ']')
            break;
    }
    if (!colon) {
        snprintf(err, errlen, "target %s: cannot find the port for tls_config.server_name", url);
        return NDT_ERROR;
    }
    int hlen = (int)(colon - authority);
    int plen = (int)(authority + alen - colon - 1);
    char *connect_to = NULL, *host = NULL;
    if (asprintf(&connect_to, "%s:%.*s:%.*s:%.*s", server_name, plen, colon + 1, hlen, authority,
                 plen, colon + 1) < 0 ||
        asprintf(&t->request_url, "%s%s:%.*s%s", https, server_name, plen, colon + 1,
                 authority + alen) < 0 ||
        asprintf(&host, "Host: %.*s", (int)alen, authority) < 0) {
        free(connect_to);
        free(host);
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    t->connect_to = curl_slist_append(NULL, connect_to);
    t->headers = curl_slist_append(t->headers, host);
    free(connect_to);
    free(host);
    if (!t->connect_to || !t->headers) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    return NDT_OK;
}

static int setup_easy(ingest_target *t, char *err, size_t errlen)
{
    const ingest_job *job = t->job;
    CURL *easy = curl_easy_init();
    if (!easy) {
        snprintf(err, errlen, "curl_easy_init failed");
        return NDT_ERROR;
    }
    t->easy = easy;
    long timeout_ms = (long)(t->def.timeout_ns / 1000000);
    if (timeout_ms < 1)
        timeout_ms = 1;

    if (apply_server_name(t, err, errlen) != NDT_OK)
        return NDT_ERROR;
    curl_easy_setopt(easy, CURLOPT_URL, t->request_url);
    if (t->connect_to)
        curl_easy_setopt(easy, CURLOPT_CONNECT_TO, t->connect_to);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    /* A node-exporter page is ~60 kB: a large receive buffer takes it in one
     * or two reads instead of four (curl's default is 16 kB). */
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, NDTPIPE_USER_AGENT);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    /* libcurl decodes gzip; the body limit applies to the decoded bytes. */
    if (job->enable_compression)
        curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "gzip");
    if (job->follow_redirects) {
        curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 10L);
    }
    if (job->proxy_url)
        curl_easy_setopt(easy, CURLOPT_PROXY, job->proxy_url);
    if (job->basic_auth_username) {
        curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(easy, CURLOPT_USERNAME, job->basic_auth_username);
        curl_easy_setopt(easy, CURLOPT_PASSWORD,
                         job->basic_auth_password ? job->basic_auth_password : "");
    }
    set_tls(easy, &job->tls);
    if (set_headers(t, err, errlen) != NDT_OK)
        return NDT_ERROR;
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
    return NDT_OK;
}

int ingest_target_new(ingest_target_def *def, ingest_target **out, char *err, size_t errlen)
{
    ingest_target *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    t->def = *def;
    memset(def, 0, sizeof(*def));
    t->job = t->def.job;
    t->up = -1;
    uint64_t limit = t->job->body_size_limit ? t->job->body_size_limit : INGEST_DEFAULT_BODY_LIMIT;
    ndt_buf_init(&t->body, (size_t)limit);
    t->cache = ingest_scrape_cache_new(); /* without one every page is parsed in full */
    if (setup_easy(t, err, errlen) != NDT_OK) {
        ingest_target_free(t);
        return NDT_ERROR;
    }
    *out = t;
    return NDT_OK;
}

void ingest_target_free(ingest_target *t)
{
    if (!t)
        return;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    curl_slist_free_all(t->connect_to);
    free(t->request_url);
    ndt_buf_free(&t->body);
    ingest_scrape_cache_free(t->cache);
    free(t->content_type);
    free(t->key);
    ingest_target_def_clear(&t->def);
    free(t);
}

void ingest_target_prepare(ingest_target *t, int64_t scheduled_ns, int64_t now_ns)
{
    ndt_buf_reset(&t->body);
    t->body_over_limit = 0;
    free(t->content_type);
    t->content_type = NULL;
    t->scheduled_ns = scheduled_ns;
    t->started_ns = now_ns;
    t->started_real_ms = ndt_clock_real_ms();
}

/* ---- building the batch ---------------------------------------------- */

typedef struct batch_builder {
    ingest_target *target;
    const ingest_publish_ctx *ctx;
    ingest_series *series;
    size_t n;
    size_t cap;
    uint64_t scraped;
    uint64_t post_relabel;
    const ingest_label *common; /* target + external labels, none empty; */
    size_t ncommon;             /* fast-path series inherit them */
    int32_t *sample_series;  /* recording a shape: the series each sample became */
    size_t nsamples, samples_cap;
    char fail[256];          /* set when a limit fails the scrape */
} batch_builder;

/* Room for the synthetic series a scrape appends to its page's. */
#define SYNTHETIC_SERIES 4

static inline int push_series(batch_builder *b, const ingest_series *s)
{
    if (b->n == b->cap) {
        /* Sized for the target's previous scrape (plus the synthetic
         * series), so that a steady target never regrows the array. */
        size_t cap = b->cap ? b->cap * 2 : b->target->last_nseries + 8;
        if (cap < 256)
            cap = 256;
        ingest_series *grown = ndt_arena_alloc(b->ctx->arena, cap * sizeof(*grown));
        if (!grown)
            return NDT_ERROR;
        if (b->n)
            memcpy(grown, b->series, b->n * sizeof(*grown));
        b->series = grown;
        b->cap = cap;
    }
    b->series[b->n++] = *s;
    return NDT_OK;
}

static int merge_target_labels(ingest_labelset *ls, const ingest_target *t)
{
    const ingest_owned_labels *tl = &t->def.labels;
    for (size_t i = 0; i < tl->n; i++) {
        ndt_str name = tl->labels[i].name;
        ndt_str value = tl->labels[i].value;
        const ingest_label *have = ingest_labelset_get(ls, name);
        if (t->job->honor_labels) {
            if (have && have->value.len)
                continue;
        } else if (have && have->value.len) {
            /* Keep the exposition's value as exported_<name>, prefixing
             * again while that name is taken, as Prometheus does. */
            ndt_str kept = have->value;
            size_t cap = name.len + 9;
            char *renamed = ndt_arena_alloc(ls->arena, cap + 1);
            if (!renamed)
                return NDT_ERROR;
            memcpy(renamed, "exported_", 9);
            memcpy(renamed + 9, name.ptr, name.len);
            ndt_str rn = { renamed, cap };
            while (ingest_labelset_get(ls, rn)) {
                char *longer = ndt_arena_alloc(ls->arena, rn.len + 10);
                if (!longer)
                    return NDT_ERROR;
                memcpy(longer, "exported_", 9);
                memcpy(longer + 9, rn.ptr, rn.len);
                rn.ptr = longer;
                rn.len += 9;
            }
            if (ingest_labelset_set(ls, rn, kept) != NDT_OK)
                return NDT_ERROR;
        }
        if (ingest_labelset_set(ls, name, value) != NDT_OK)
            return NDT_ERROR;
    }
    return NDT_OK;
}

static int add_external_labels(ingest_labelset *ls, const ingest_owned_labels *ext)
{
    for (size_t i = 0; ext && i < ext->n; i++) {
        const ingest_label *have = ingest_labelset_get(ls, ext->labels[i].name);
        if (have && have->value.len)
            continue;
        if (ingest_labelset_set(ls, ext->labels[i].name, ext->labels[i].value) != NDT_OK)
            return NDT_ERROR;
    }
    return NDT_OK;
}

/* Checks the job's label limits; fills b->fail and returns NDT_ERROR if hit. */
static int check_label_limits(batch_builder *b, const ingest_labelset *ls)
{
    const ingest_job *job = b->target->job;
    if (!job->label_limit && !job->label_name_length_limit && !job->label_value_length_limit)
        return NDT_OK; /* the usual case: no walk over the labels */
    if (job->label_limit && ls->n > job->label_limit) {
        snprintf(b->fail, sizeof(b->fail), "label_limit exceeded (%zu labels, limit %llu)", ls->n,
                 (unsigned long long)job->label_limit);
        return NDT_ERROR;
    }
    for (size_t i = 0; i < ls->n; i++) {
        if (job->label_name_length_limit && ls->labels[i].name.len > job->label_name_length_limit) {
            snprintf(b->fail, sizeof(b->fail), "label_name_length_limit exceeded (label %.*s)",
                     (int)(ls->labels[i].name.len > 64 ? 64 : ls->labels[i].name.len),
                     ls->labels[i].name.ptr);
            return NDT_ERROR;
        }
        if (job->label_value_length_limit &&
            ls->labels[i].value.len > job->label_value_length_limit) {
            snprintf(b->fail, sizeof(b->fail), "label_value_length_limit exceeded (label %.*s)",
                     (int)(ls->labels[i].name.len > 64 ? 64 : ls->labels[i].name.len),
                     ls->labels[i].name.ptr);
            return NDT_ERROR;
        }
    }
    return NDT_OK;
}

/* Lays out the final label array: __name__ first, then the others in
 * name order, empty values dropped. */
static int finish_labels(ndt_arena *arena, const ingest_labelset *ls, ingest_series *out)
{
    static const ndt_str name_label = { "__name__", 8 };
    ingest_label *labels = ndt_arena_alloc(arena, (ls->n ? ls->n : 1) * sizeof(*labels));
    if (!labels)
        return NDT_ERROR;
    size_t n = 0;
    const ingest_label *name = ingest_labelset_get(ls, name_label);
    if (!name || !name->value.len)
        return NDT_AGAIN; /* relabeling removed the name: nothing to publish */
    labels[n++] = *name;
    for (size_t i = 0; i < ls->n; i++) {
        if (!ls->labels[i].value.len || ndt_str_eq(ls->labels[i].name, name_label))
            continue;
        labels[n++] = ls->labels[i];
    }
    out->labels = labels;
    out->nlabels = n;
    return NDT_OK;
}

/* The common case without metric_relabel_configs and without clashes:
 * __name__ and the exposition's own labels in name order (empty ones
 * dropped); the series inherits the batch's common labels (target and
 * external labels) instead of carrying copies of them.  A clash with a
 * target label is NDT_AGAIN (nothing published yet: honor_labels or
 * exported_<name> decide on the label-set path); an own label named like
 * an external label simply wins, as it does there. */
static int build_series_labels_fast(batch_builder *b, const ingest_sample *sample,
                                    const ingest_label *sorted, ingest_series *out)
{
    const ingest_owned_labels *tl = &b->target->def.labels;
    if (!b->common)
        return NDT_ERROR; /* no memory for them at the scrape's start */
    ingest_label *labels = ndt_arena_alloc(b->ctx->arena, (sample->nlabels + 1) * sizeof(*labels));
    if (!labels)
        return NDT_ERROR;
    labels[0].name = NDT_STR_LIT("__name__");
    labels[0].value = sample->name;
    size_t n = 1, j = 0;
    for (size_t i = 0; i < sample->nlabels; i++) {
        if (!sorted[i].value.len)
            continue; /* an empty value is no label: the target's (if any) stays */
        while (j < tl->n && ingest_label_name_cmp(tl->labels[j].name, sorted[i].name) < 0)
            j++;
        if (j < tl->n && ingest_label_name_cmp(tl->labels[j].name, sorted[i].name) == 0)
            return NDT_AGAIN; /* a clash: honor_labels or exported_<name> decide */
        labels[n++] = sorted[i];
    }
    out->labels = labels;
    out->nlabels = n;
    out->inherits = 1;
    return NDT_OK;
}

/* A label set over an existing array, to use the label-set functions on it. */
static ingest_labelset labelset_view(ingest_label *labels, size_t n)
{
    ingest_labelset view;
    view.labels = labels;
    view.n = n;
    view.cap = n;
    view.arena = NULL;
    return view;
}

/* Label limits on a finished series (its first label is __name__), over
 * every label it is published with: an inheriting series' full set is
 * laid out for the check. */
static inline int check_series_limits(batch_builder *b, const ingest_series *s)
{
    const ingest_job *job = b->target->job;
    if (!job->label_limit && !job->label_name_length_limit && !job->label_value_length_limit)
        return NDT_OK; /* the usual case, decided here without a call */
    ingest_label *labels = (ingest_label *)s->labels;
    size_t n = s->nlabels;
    if (s->inherits) {
        labels = ndt_arena_alloc(b->ctx->arena, (n + b->ncommon) * sizeof(*labels));
        if (!labels) {
            snprintf(b->fail, sizeof(b->fail), "scrape too large: per-scrape memory limit reached");
            return NDT_ERROR;
        }
        n = ingest_series_full_labels(s, b->common, b->ncommon, labels);
    }
    ingest_labelset view = labelset_view(labels, n);
    return check_label_limits(b, &view);
}

static int count_and_limit(batch_builder *b)
{
    const ingest_job *job = b->target->job;
    b->post_relabel++;
    if (job->sample_limit && b->post_relabel > job->sample_limit) {
        snprintf(b->fail, sizeof(b->fail), "sample_limit exceeded (limit %llu)",
                 (unsigned long long)job->sample_limit);
        b->target->counters.sample_limit_hits++;
        return NDT_ERROR;
    }
    return NDT_OK;
}

static int64_t sample_timestamp(const batch_builder *b, const ingest_sample *sample)
{
    if (b->target->job->honor_timestamps && sample->timestamp_ms != INGEST_NO_TIMESTAMP)
        return sample->timestamp_ms;
    return b->target->started_real_ms;
}

static int add_fast(batch_builder *b, const ingest_sample *sample, const ingest_label *sorted)
{
    ingest_series s;
    memset(&s, 0, sizeof(s));
    int rc = build_series_labels_fast(b, sample, sorted, &s);
    if (rc == NDT_AGAIN)
        return NDT_AGAIN;
    if (rc != NDT_OK) {
        snprintf(b->fail, sizeof(b->fail), "scrape too large: per-scrape memory limit reached");
        return NDT_ERROR;
    }
    if (check_series_limits(b, &s) != NDT_OK || count_and_limit(b) != NDT_OK)
        return NDT_ERROR;
    s.value = sample->value;
    s.type = sample->type;
    s.native = sample->native;
    s.timestamp_ms = sample_timestamp(b, sample);
    if (push_series(b, &s) != NDT_OK) {
        snprintf(b->fail, sizeof(b->fail), "scrape too large: per-scrape memory limit reached");
        return NDT_ERROR;
    }
    return NDT_OK;
}

enum { LABELS_UNSORTED = 1, LABELS_HAVE_NAME = 2 };

/* One pass over the exposition's labels: out of name order?  A __name__
 * label among them (only the label-set path handles that)? */
static int scan_labels(const ingest_label *labels, size_t n)
{
    int flags = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && ingest_label_name_cmp(labels[i - 1].name, labels[i].name) > 0)
            flags |= LABELS_UNSORTED;
        if (labels[i].name.len == 8 && memcmp(labels[i].name.ptr, "__name__", 8) == 0)
            flags |= LABELS_HAVE_NAME;
    }
    return flags;
}

static int on_sample(void *userp, const ingest_sample *sample)
{
    batch_builder *b = userp;
    ingest_target *t = b->target;
    const ingest_job *job = t->job;
    ingest_labelset ls;
    int keep = 1;

    b->scraped++;
    if (!job->metric_relabel_configs.n) {
        /* Exporters mostly write labels in name order already (client
         * libraries sort them): then the parser's array is used as is. */
        const ingest_label *sorted = sample->labels;
        int flags = scan_labels(sample->labels, sample->nlabels);
        if (flags & LABELS_UNSORTED) {
            ingest_label *copy = ndt_arena_alloc(b->ctx->arena, sample->nlabels * sizeof(*copy));
            if (!copy)
                goto oom;
            memcpy(copy, sample->labels, sample->nlabels * sizeof(*copy));
            ingest_labelset view = labelset_view(copy, sample->nlabels);
            ingest_labelset_sort(&view);
            sorted = copy;
        }
        if (!(flags & LABELS_HAVE_NAME)) {
            int rc = add_fast(b, sample, sorted);
            if (rc != NDT_AGAIN)
                return rc; /* else a clash: the label-set path below */
        }
    }
    ingest_labelset_init(&ls, b->ctx->arena);
    for (size_t i = 0; i < sample->nlabels; i++) {
        if (ingest_labelset_append(&ls, sample->labels[i].name, sample->labels[i].value) != NDT_OK)
            goto oom;
    }
    if (ingest_labelset_append(&ls, NDT_STR_LIT("__name__"), sample->name) != NDT_OK)
        goto oom;
    ingest_labelset_sort(&ls);
    if (merge_target_labels(&ls, t) != NDT_OK)
        goto oom;
    if (job->metric_relabel_configs.n) {
        if (ingest_relabel_apply(&job->metric_relabel_configs, &ls, &keep) != NDT_OK)
            goto oom;
        if (!keep)
            return NDT_OK;
    }
    if (add_external_labels(&ls, b->ctx->external_labels) != NDT_OK)
        goto oom;
    if (check_label_limits(b, &ls) != NDT_OK || count_and_limit(b) != NDT_OK)
        return NDT_ERROR;

    ingest_series s;
    memset(&s, 0, sizeof(s));
    int rc = finish_labels(b->ctx->arena, &ls, &s);
    if (rc == NDT_AGAIN)
        return NDT_OK;
    if (rc != NDT_OK)
        goto oom;
    s.value = sample->value;
    s.type = sample->type;
    s.native = sample->native;
    s.timestamp_ms = sample_timestamp(b, sample);
    if (push_series(b, &s) != NDT_OK)
        goto oom;
    return NDT_OK;

oom:
    snprintf(b->fail, sizeof(b->fail), "scrape too large: per-scrape memory limit reached");
    return NDT_ERROR;
}

/* on_sample while recording a shape: notes which series the sample
 * became (the last one pushed, or -1 when it was dropped). */
static int on_sample_recording(void *userp, const ingest_sample *sample)
{
    batch_builder *b = userp;
    size_t before = b->n;
    int rc = on_sample(userp, sample);
    if (rc != NDT_OK)
        return rc;
    if (b->nsamples == b->samples_cap) {
        size_t cap = b->samples_cap ? b->samples_cap * 2 : b->target->last_nseries + 8;
        if (cap < 256)
            cap = 256;
        int32_t *grown = ndt_arena_alloc(b->ctx->arena, cap * sizeof(*grown));
        if (!grown) {
            snprintf(b->fail, sizeof(b->fail), "scrape too large: per-scrape memory limit reached");
            return NDT_ERROR;
        }
        if (b->nsamples)
            memcpy(grown, b->sample_series, b->nsamples * sizeof(*grown));
        b->sample_series = grown;
        b->samples_cap = cap;
    }
    /* Series indexes past INT32_MAX cannot be noted: the count then falls
     * short of the shape's and the page is not kept. */
    if (b->n > (size_t)INT32_MAX)
        return NDT_OK;
    b->sample_series[b->nsamples++] = b->n > before ? (int32_t)(b->n - 1) : -1;
    return NDT_OK;
}

static int add_synthetic(batch_builder *b, const char *name, double value)
{
    ingest_labelset ls;
    ingest_labelset_init(&ls, b->ctx->arena);
    const ingest_owned_labels *tl = &b->target->def.labels;
    for (size_t i = 0; i < tl->n; i++) {
        if (ingest_labelset_append(&ls, tl->labels[i].name, tl->labels[i].value) != NDT_OK)
            return NDT_ERROR;
    }
    if (ingest_labelset_append(&ls, NDT_STR_LIT("__name__"), ndt_str_from_cstr(name)) != NDT_OK)
        return NDT_ERROR;
    ingest_labelset_sort(&ls);
    if (add_external_labels(&ls, b->ctx->external_labels) != NDT_OK)
        return NDT_ERROR;
    ingest_series s;
    memset(&s, 0, sizeof(s));
    if (finish_labels(b->ctx->arena, &ls, &s) != NDT_OK)
        return NDT_ERROR;
    s.value = value;
    s.type = INGEST_TYPE_GAUGE;
    s.timestamp_ms = b->target->started_real_ms;
    return push_series(b, &s);
}

/* Why the transfer itself failed, in words an operator can act on. */
static void describe_transfer_error(ingest_target *t, CURLcode result, char *buf, size_t size)
{
    if (t->body_over_limit) {
        snprintf(buf, size, "body size limit exceeded (%zu bytes after decompression)",
                 t->body.limit);
        return;
    }
    if (result == CURLE_OPERATION_TIMEDOUT) {
        snprintf(buf, size, "scrape timed out after %g s", (double)t->def.timeout_ns / 1e9);
        return;
    }
    snprintf(buf, size, "%s", curl_easy_strerror(result));
}

static void log_health_change(ingest_target *t, int up, const char *error)
{
    char url[512];
    int changed = t->up != up || (!up && strcmp(t->last_error, error) != 0);
    if (changed) {
        ndt_log_redact_url(t->def.url, url, sizeof(url));
        if (up)
            ndt_log(NDT_LOG_INFO, "ingest", "target up", NDT_KV_STR("job", t->job->job_name),
                    NDT_KV_STR("target", url));
        else
            ndt_log(NDT_LOG_WARN, "ingest", "scrape failed", NDT_KV_STR("job", t->job->job_name),
                    NDT_KV_STR("target", url), NDT_KV_STR("error", error));
    }
    t->up = up;
    snprintf(t->last_error, sizeof(t->last_error), "%s", up ? "" : error);
}

/* A page of the previous page's shape becomes that page's series with
 * the new values: NDT_OK with the builder filled, NDT_AGAIN to parse it
 * in full, NDT_ERROR when the scrape's memory ran out. */
static int replay_page(ingest_target *t, ingest_expo_format format, batch_builder *b)
{
    ingest_scrape_replay r;
    if (!t->cache || format == INGEST_EXPO_PROTOBUF || !t->body.data)
        return NDT_AGAIN;
    int rc = ingest_scrape_cache_replay(t->cache, t->body.data, t->body.len, format,
                                        t->job->honor_timestamps, t->started_real_ms,
                                        SYNTHETIC_SERIES, b->ctx->arena, &r);
    if (rc != NDT_OK)
        return rc;
    b->series = r.series;
    b->n = r.nseries;
    b->cap = r.nseries + SYNTHETIC_SERIES;
    b->scraped = r.scraped;
    b->post_relabel = r.post_relabel;
    t->counters.pages_replayed++;
    return NDT_OK;
}

/* Fetches and parses; returns 1 if the scrape succeeded, 0 with error set. */
static int collect_samples(ingest_target *t, CURLcode result, batch_builder *b, char *error,
                           size_t errsize)
{
    if (result != CURLE_OK) {
        describe_transfer_error(t, result, error, errsize);
        return 0;
    }
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(error, errsize, "server returned HTTP status %ld", status);
        return 0;
    }
    ingest_expo_format format = ingest_expo_format_from_content_type(t->content_type);
    const char *body = t->body.data ? t->body.data : "";
    int rc = replay_page(t, format, b);
    if (rc == NDT_OK)
        return 1;
    if (rc == NDT_ERROR) {
        snprintf(error, errsize, "scrape too large: per-scrape memory limit reached");
        return 0;
    }
    ingest_expo_shape *shape = NULL;
    if (t->cache && format != INGEST_EXPO_PROTOBUF)
        shape = ingest_scrape_cache_recorder(t->cache);
    ingest_expo_error perr;
    memset(&perr, 0, sizeof(perr));
    rc = ingest_expo_parse_recording(body, t->body.len, format, b->ctx->arena,
                                     shape ? on_sample_recording : on_sample, b, &perr, shape);
    if (rc == NDT_OK) {
        if (shape)
            ingest_scrape_cache_store(t->cache, b->series, b->n, b->sample_series, b->nsamples,
                                      b->post_relabel);
        return 1;
    }
    if (b->fail[0]) {
        snprintf(error, errsize, "%s", b->fail);
    } else {
        t->counters.parse_errors++;
        ingest_expo_error_format(&perr, error, errsize);
    }
    return 0;
}

/* The labels every series of this target gets unless it says otherwise:
 * its target labels, then the external labels it lacks, none empty (what
 * build_series_labels_fast merges into each series, from the same
 * strings).  The Avro encoder writes them once per message.  Without
 * memory for them the batch simply has none: they are only a hint. */
static const ingest_label *common_labels(const batch_builder *b, size_t *n)
{
    const ingest_owned_labels *tl = &b->target->def.labels;
    const ingest_owned_labels *ext = b->ctx->external_labels;
    size_t next = ext ? ext->n : 0;
    *n = 0;
    ingest_label *out = ndt_arena_alloc(b->ctx->arena, (tl->n + next + 1) * sizeof(*out));
    if (!out)
        return NULL;
    size_t merged = ingest_labels_merge(tl->labels, tl->n, next ? ext->labels : NULL, next, 0, out);
    for (size_t i = 0; i < merged; i++) {
        if (out[i].value.len)
            out[(*n)++] = out[i];
    }
    return out;
}

int ingest_target_finish(ingest_target *t, CURLcode result, const ingest_publish_ctx *ctx)
{
    batch_builder b;
    char error[256] = "";
    memset(&b, 0, sizeof(b));
    b.target = t;
    b.ctx = ctx;
    b.common = common_labels(&b, &b.ncommon);

    int ok = collect_samples(t, result, &b, error, sizeof(error));
    double duration = (double)(ndt_clock_mono_ns() - t->started_ns) / 1e9;
    if (!ok) {
        /* A failed scrape publishes no partial data, only its health. */
        b.n = 0;
        b.post_relabel = 0;
        t->counters.failures++;
    }
    uint64_t scraped = ok ? b.scraped : 0;
    t->counters.scrapes++;
    t->counters.samples_scraped += scraped;
    log_health_change(t, ok, error);

    if (add_synthetic(&b, "up", ok ? 1 : 0) != NDT_OK ||
        add_synthetic(&b, "scrape_duration_seconds", duration) != NDT_OK ||
        add_synthetic(&b, "scrape_samples_scraped", (double)scraped) != NDT_OK ||
        add_synthetic(&b, "scrape_samples_post_metric_relabeling", (double)b.post_relabel) != NDT_OK)
        return NDT_ERROR;

    ingest_batch batch;
    batch.job = ndt_str_from_cstr(t->job->job_name);
    batch.instance = ndt_str_from_cstr(t->def.instance ? t->def.instance : "");
    batch.scrape_timestamp_ms = t->started_real_ms;
    batch.series = b.series;
    batch.nseries = b.n;
    batch.common = b.common;
    batch.ncommon = b.common ? b.ncommon : 0;
    t->last_nseries = b.n;
    int rc = ingest_sink_publish(ctx->sink, &batch);
    if (rc == NDT_OK)
        t->counters.samples_published += b.n;
    return rc;
}
