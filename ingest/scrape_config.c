/*
 * scrape_config.c: loads Prometheus's configuration format (global +
 * scrape_configs) into ingest_scrape_config.  Target discovery from the
 * loaded jobs lives in discovery.c.
 *
 * Promise: an existing prometheus.yml loads unchanged, and anything wrong
 * is reported once, as "FILE:LINE:COL: key: reason", before any scraping
 * starts (exit code 2 in the CLI).  Three kinds of keys are told apart:
 *   - keys ndtpipe implements: decoded and validated like Prometheus;
 *   - keys Prometheus defines outside scraping (rule_files, alerting,
 *     remote_write, ...): accepted with one warning each, because a
 *     prometheus.yml written for Prometheus carries them;
 *   - keys Prometheus defines for scraping that ndtpipe does not implement
 *     (kubernetes_sd_configs, oauth2, ...): an error, because silently
 *     scraping something other than what the user asked for is worse than
 *     refusing to start;
 * and every other key is an "unknown key" error with a suggestion.
 *
 * Flat options go through confmap tables (one declaration per key: type,
 * default, field, description); sections are decoded by small functions.
 * Everything the result holds is malloc'ed and owned by it; credentials
 * read from files are kept in memory only and never logged.
 */
#include "ingest/scrape_config.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/log.h"
#include "common/ndt.h"
#include "ingest/scrape_config_internal.h"

#define DEFAULT_GLOBAL_INTERVAL "20ms"
/* Prometheus's default global scrape_timeout, capped at the interval. */
#define PROMETHEUS_DEFAULT_TIMEOUT_NS 10000000000LL
#define MAX_CREDENTIAL_FILE (64 * 1024)

static const char *const default_protocols[] = {
    "OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText0.0.4",
};
static const char *const known_protocols[] = {
    "PrometheusProto", "OpenMetricsText0.0.1", "OpenMetricsText1.0.0", "PrometheusText0.0.4",
    "PrometheusText1.0.0",
};

/* Top-level sections of prometheus.yml that are not about scraping. */
static const char *const ignored_top_level[] = {
    "rule_files", "alerting", "remote_write", "remote_read", "storage", "tracing", "otlp",
    "runtime",
};

/* Keys Prometheus accepts in a scrape config that ndtpipe does not act on. */
static const char *const unsupported_job_keys[] = {
    "azure_sd_configs", "consul_sd_configs", "digitalocean_sd_configs", "docker_sd_configs",
    "dockerswarm_sd_configs", "dns_sd_configs", "ec2_sd_configs", "eureka_sd_configs",
    "gce_sd_configs", "hetzner_sd_configs", "http_sd_configs", "ionos_sd_configs",
    "kubernetes_sd_configs", "kuma_sd_configs", "lightsail_sd_configs", "linode_sd_configs",
    "marathon_sd_configs", "nerve_sd_configs", "nomad_sd_configs", "openstack_sd_configs",
    "ovhcloud_sd_configs", "puppetdb_sd_configs", "scaleway_sd_configs",
    "serverset_sd_configs", "triton_sd_configs", "uyuni_sd_configs", "vultr_sd_configs",
    "stackit_sd_configs", "oauth2", "enable_http2", "proxy_from_environment",
    "proxy_connect_header", "no_proxy", "http_headers", "track_timestamps_staleness",
    "keep_dropped_targets", "native_histogram_bucket_limit",
    "native_histogram_min_bucket_factor", "scrape_classic_histograms",
    "always_scrape_classic_histograms", "convert_classic_histograms_to_nhcb",
    "fallback_scrape_protocol", "metric_name_validation_scheme", "metric_name_escaping_scheme",
    "scrape_failure_log_file", "scrape_native_histograms",
};

/* Global keys of newer Prometheus versions that change what is scraped. */
static const char *const unsupported_global_keys[] = {
    "scrape_failure_log_file", "metric_name_validation_scheme", "metric_name_escaping_scheme",
    "scrape_native_histograms", "always_scrape_classic_histograms",
    "convert_classic_histograms_to_nhcb", "extra_scrape_metrics",
};

static const char *const unsupported_tls_keys[] = {
    "ca", "cert", "key", "min_version", "max_version", "ca_ref", "cert_ref", "key_ref",
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int in_list(const char *key, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, list[i]) == 0)
            return 1;
    return 0;
}

size_t ingest_scrape_seq_len(yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *ingest_scrape_seq_item(ndt_yaml *y, yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(&y->doc, seq->data.sequence.items.start[i]);
}

/* An error for the first key of mapping that is in the unsupported list. */
static int reject_unsupported(ndt_yaml *y, yaml_node_t *map, const char *const *list, size_t n,
                              char *err, size_t errlen)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NDT_OK;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
        const char *key = ndt_yaml_scalar(k);
        if (key && in_list(key, list, n))
            return ndt_yaml_error(y, k, key, err, errlen,
                                  "not supported by ndtpipe (see docs/CONFIGURATION.md)");
    }
    return NDT_OK;
}

static void warn_ignored(ndt_yaml *y, yaml_node_t *node, const char *key)
{
    ndt_log(NDT_LOG_WARN, "ingest", "configuration key ignored by ndtpipe",
            NDT_KV_STR("file", y->path), NDT_KV_INT("line", node->start_mark.line + 1),
            NDT_KV_STR("key", key));
}

int ingest_scrape_owned_labels_add(ingest_owned_labels *ol, ndt_str name, ndt_str value)
{
    ingest_label *grown = realloc(ol->labels, (ol->n + 1) * sizeof(*grown));
    if (!grown)
        return NDT_ERROR;
    ol->labels = grown;
    char *n = strndup(name.ptr ? name.ptr : "", name.len);
    char *v = strndup(value.ptr ? value.ptr : "", value.len);
    if (!n || !v) {
        free(n);
        free(v);
        return NDT_ERROR;
    }
    ol->labels[ol->n].name = (ndt_str){ n, name.len };
    ol->labels[ol->n].value = (ndt_str){ v, value.len };
    ol->n++;
    return NDT_OK;
}

void ingest_scrape_owned_labels_free(ingest_owned_labels *ol)
{
    for (size_t i = 0; i < ol->n; i++) {
        free((char *)ol->labels[i].name.ptr);
        free((char *)ol->labels[i].value.ptr);
    }
    free(ol->labels);
    ol->labels = NULL;
    ol->n = 0;
}

/* A mapping of label names to string values (labels:, external_labels:). */
int ingest_scrape_labels_from_yaml(ndt_yaml *y, yaml_node_t *map, const char *key,
                            ingest_owned_labels *out, char *err, size_t errlen)
{
    if (ndt_yaml_is_null(map))
        return NDT_OK;
    if (map->type != YAML_MAPPING_NODE)
        return ndt_yaml_error(y, map, key, err, errlen, "expected a mapping of label names to values");
    if (ndt_yaml_check_unique_keys(y, map, err, errlen) != NDT_OK)
        return NDT_ERROR;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&y->doc, p->value);
        const char *name = ndt_yaml_scalar(k);
        if (!ingest_label_name_valid(ndt_str_from_cstr(name)))
            return ndt_yaml_error(y, k, key, err, errlen, "'%s' is not a valid label name", name);
        const char *value = ndt_yaml_is_null(v) ? "" : ndt_yaml_scalar(v);
        if (!value)
            return ndt_yaml_error(y, v, name, err, errlen, "label values must be strings");
        if (ingest_scrape_owned_labels_add(out, ndt_str_from_cstr(name), ndt_str_from_cstr(value)) !=
            NDT_OK)
            return ndt_yaml_error(y, v, name, err, errlen, "out of memory");
    }
    return NDT_OK;
}

/* A list of strings into a malloc'ed array of malloc'ed copies. */
static int strings_from_yaml(ndt_yaml *y, yaml_node_t *seq, const char *key, char ***out,
                             size_t *n, char *err, size_t errlen)
{
    if (ndt_yaml_is_null(seq))
        return NDT_OK;
    if (seq->type != YAML_SEQUENCE_NODE)
        return ndt_yaml_error(y, seq, key, err, errlen, "expected a list of strings");
    size_t count = ingest_scrape_seq_len(seq);
    *out = calloc(count ? count : 1, sizeof(**out));
    if (!*out)
        return ndt_yaml_error(y, seq, key, err, errlen, "out of memory");
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = ingest_scrape_seq_item(y, seq, i);
        const char *s = ndt_yaml_scalar(item);
        if (!s)
            return ndt_yaml_error(y, item, key, err, errlen, "expected a string");
        if (!((*out)[i] = strdup(s)))
            return ndt_yaml_error(y, item, key, err, errlen, "out of memory");
        *n = i + 1;
    }
    return NDT_OK;
}

static void strings_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

char *ingest_scrape_resolve_path(const char *dir, const char *path)
{
    if (!path)
        return NULL;
    if (path[0] == '/' || !dir || !*dir || strcmp(dir, ".") == 0)
        return strdup(path);
    size_t len = strlen(dir) + 1 + strlen(path) + 1;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%s/%s", dir, path);
    return out;
}

/* Replaces *path (relative to the config file) by its resolved form. */
static int resolve_in_place(const char *dir, char **path)
{
    if (!*path)
        return NDT_OK;
    char *resolved = ingest_scrape_resolve_path(dir, *path);
    if (!resolved)
        return NDT_ERROR;
    free(*path);
    *path = resolved;
    return NDT_OK;
}

/* Reads a small secret file; surrounding whitespace is trimmed as
 * Prometheus does.  The content is never echoed in errors. */
static int read_secret_file(ndt_yaml *y, yaml_node_t *node, const char *key, const char *path,
                            char **out, char *err, size_t errlen)
{
    char why[NDT_ERRBUF_SIZE], *buf;
    size_t n;
    if (ndt_file_read(path, MAX_CREDENTIAL_FILE, &buf, &n, why, sizeof(why)) != NDT_OK)
        return ndt_yaml_error(y, node, key, err, errlen, "%s", why);
    size_t start = 0;
    while (start < n && isspace((unsigned char)buf[start]))
        start++;
    while (n > start && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    memmove(buf, buf + start, n - start + 1);
    char *fit = realloc(buf, n - start + 1); /* do not keep 64 KiB per secret */
    free(*out);
    *out = fit ? fit : buf;
    return NDT_OK;
}

/* What the global section contributes to every job. */
typedef struct global_conf {
    int64_t scrape_interval_ns;
    int64_t scrape_timeout_ns;
    int64_t evaluation_interval_ns;
    int64_t rule_query_offset_ns;
    char *query_log_file;
    uint64_t sample_limit;
    uint64_t label_limit;
    uint64_t label_name_length_limit;
    uint64_t label_value_length_limit;
    uint64_t target_limit;
    uint64_t keep_dropped_targets;
    uint64_t body_size_limit;
    char **scrape_protocols; /* NULL: Prometheus's default order */
    size_t nscrape_protocols;
} global_conf;

/* ------------------------------------------------------------------ */
/* Sections of a scrape config                                         */
/* ------------------------------------------------------------------ */

typedef struct basic_auth_yaml {
    char *username;
    char *username_file;
    char *password;
    char *password_file;
} basic_auth_yaml;

static const ndt_conf_entry basic_auth_map[] = {
    { "username", NDT_CONF_STRING, NULL, offsetof(basic_auth_yaml, username), "user name" },
    { "username_file", NDT_CONF_STRING, NULL, offsetof(basic_auth_yaml, username_file),
      "file holding the user name" },
    { "password", NDT_CONF_STRING, NULL, offsetof(basic_auth_yaml, password), "password" },
    { "password_file", NDT_CONF_STRING, NULL, offsetof(basic_auth_yaml, password_file),
      "file holding the password" },
    { NULL },
};

static int basic_auth_from_yaml(ndt_yaml *y, yaml_node_t *node, const char *dir, ingest_job *job,
                                char *err, size_t errlen)
{
    basic_auth_yaml c = { 0 };
    int rc = NDT_ERROR;
    if (ndt_yaml_is_null(node))
        return NDT_OK;
    if (ndt_confmap_apply_yaml(basic_auth_map, &c, y, node, NULL, err, errlen) != NDT_OK)
        goto out;
    if (c.password && c.password_file) {
        ndt_yaml_error(y, ndt_yaml_map_get(y, node, "password_file"), "basic_auth", err, errlen,
                       "at most one of basic_auth password & password_file must be configured");
        goto out;
    }
    if (c.username && c.username_file) {
        ndt_yaml_error(y, ndt_yaml_map_get(y, node, "username_file"), "basic_auth", err, errlen,
                       "at most one of basic_auth username & username_file must be configured");
        goto out;
    }
    job->basic_auth_username = c.username;
    job->basic_auth_password = c.password;
    c.username = c.password = NULL;
    if (c.username_file) {
        char *path = ingest_scrape_resolve_path(dir, c.username_file);
        int r = path ? read_secret_file(y, ndt_yaml_map_get(y, node, "username_file"),
                                        "username_file", path, &job->basic_auth_username, err,
                                        errlen)
                     : ndt_yaml_error(y, node, "basic_auth", err, errlen, "out of memory");
        free(path);
        if (r != NDT_OK)
            goto out;
    }
    if (c.password_file) {
        char *path = ingest_scrape_resolve_path(dir, c.password_file);
        int r = path ? read_secret_file(y, ndt_yaml_map_get(y, node, "password_file"),
                                        "password_file", path, &job->basic_auth_password, err,
                                        errlen)
                     : ndt_yaml_error(y, node, "basic_auth", err, errlen, "out of memory");
        free(path);
        if (r != NDT_OK)
            goto out;
    }
    rc = NDT_OK;
out:
    ndt_confmap_free(basic_auth_map, &c);
    return rc;
}

typedef struct authorization_yaml {
    char *type;
    char *credentials;
    char *credentials_file;
} authorization_yaml;

static const ndt_conf_entry authorization_map[] = {
    { "type", NDT_CONF_STRING, "Bearer", offsetof(authorization_yaml, type),
      "authentication scheme of the Authorization header" },
    { "credentials", NDT_CONF_STRING, NULL, offsetof(authorization_yaml, credentials),
      "credentials sent after the type" },
    { "credentials_file", NDT_CONF_STRING, NULL, offsetof(authorization_yaml, credentials_file),
      "file holding the credentials" },
    { NULL },
};

static int authorization_from_yaml(ndt_yaml *y, yaml_node_t *node, const char *dir,
                                   ingest_job *job, char *err, size_t errlen)
{
    authorization_yaml c = { 0 };
    int rc = NDT_ERROR;
    if (ndt_yaml_is_null(node))
        return NDT_OK;
    if (ndt_confmap_set_defaults(authorization_map, &c, err, errlen) != NDT_OK ||
        ndt_confmap_apply_yaml(authorization_map, &c, y, node, NULL, err, errlen) != NDT_OK)
        goto out;
    if (strcasecmp(c.type, "basic") == 0) {
        ndt_yaml_error(y, ndt_yaml_map_get(y, node, "type"), "type", err, errlen,
                       "authorization type cannot be set to \"basic\", use \"basic_auth\" "
                       "instead");
        goto out;
    }
    if (c.credentials && c.credentials_file) {
        ndt_yaml_error(y, ndt_yaml_map_get(y, node, "credentials_file"), "authorization", err,
                       errlen,
                       "at most one of authorization credentials & credentials_file must be "
                       "configured");
        goto out;
    }
    free(job->authorization_type);
    job->authorization_type = c.type;
    job->authorization_credentials = c.credentials;
    c.type = c.credentials = NULL;
    if (c.credentials_file) {
        char *path = ingest_scrape_resolve_path(dir, c.credentials_file);
        int r = path ? read_secret_file(y, ndt_yaml_map_get(y, node, "credentials_file"),
                                        "credentials_file", path,
                                        &job->authorization_credentials, err, errlen)
                     : ndt_yaml_error(y, node, "authorization", err, errlen, "out of memory");
        free(path);
        if (r != NDT_OK)
            goto out;
    }
    rc = NDT_OK;
out:
    ndt_confmap_free(authorization_map, &c);
    return rc;
}

static const ndt_conf_entry tls_map[] = {
    { "ca_file", NDT_CONF_STRING, NULL, offsetof(ingest_tls_config, ca_file),
      "CA certificates to verify the target with" },
    { "cert_file", NDT_CONF_STRING, NULL, offsetof(ingest_tls_config, cert_file),
      "client certificate" },
    { "key_file", NDT_CONF_STRING, NULL, offsetof(ingest_tls_config, key_file),
      "client key" },
    { "server_name", NDT_CONF_STRING, NULL, offsetof(ingest_tls_config, server_name),
      "name the certificate must carry (SNI)" },
    { "insecure_skip_verify", NDT_CONF_BOOL, "false",
      offsetof(ingest_tls_config, insecure_skip_verify), "do not verify the certificate" },
    { NULL },
};

static int tls_from_yaml(ndt_yaml *y, yaml_node_t *node, const char *dir, ingest_tls_config *tls,
                         char *err, size_t errlen)
{
    if (ndt_yaml_is_null(node))
        return NDT_OK;
    if (reject_unsupported(y, node, unsupported_tls_keys, NDT_ARRAY_LEN(unsupported_tls_keys),
                           err, errlen) != NDT_OK ||
        ndt_confmap_apply_yaml(tls_map, tls, y, node, NULL, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (tls->cert_file && !tls->key_file)
        return ndt_yaml_error(y, ndt_yaml_map_get(y, node, "cert_file"), "tls_config", err,
                              errlen,
                              "exactly one of key or key_file must be configured when a client "
                              "certificate is configured");
    if (tls->key_file && !tls->cert_file)
        return ndt_yaml_error(y, ndt_yaml_map_get(y, node, "key_file"), "tls_config", err, errlen,
                              "exactly one of cert or cert_file must be configured when a client "
                              "key is configured");
    if (resolve_in_place(dir, &tls->ca_file) != NDT_OK ||
        resolve_in_place(dir, &tls->cert_file) != NDT_OK ||
        resolve_in_place(dir, &tls->key_file) != NDT_OK)
        return ndt_yaml_error(y, node, "tls_config", err, errlen, "out of memory");
    return NDT_OK;
}

static int params_from_yaml(ndt_yaml *y, yaml_node_t *node, ingest_job *job, char *err,
                            size_t errlen)
{
    if (ndt_yaml_is_null(node))
        return NDT_OK;
    if (node->type != YAML_MAPPING_NODE)
        return ndt_yaml_error(y, node, "params", err, errlen,
                              "expected a mapping of parameter names to lists of values");
    if (ndt_yaml_check_unique_keys(y, node, err, errlen) != NDT_OK)
        return NDT_ERROR;
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    job->params = calloc(n ? n : 1, sizeof(*job->params));
    if (!job->params)
        return ndt_yaml_error(y, node, "params", err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &node->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
        ingest_param *param = &job->params[i];
        job->nparams = i + 1;
        if (!(param->name = strdup(ndt_yaml_scalar(k))))
            return ndt_yaml_error(y, k, "params", err, errlen, "out of memory");
        if (strings_from_yaml(y, yaml_document_get_node(&y->doc, p->value), param->name,
                              &param->values, &param->nvalues, err, errlen) != NDT_OK)
            return NDT_ERROR;
    }
    return NDT_OK;
}

/* A copy of list (or of Prometheus's default order when list is NULL). */
static int protocols_copy(char *const *list, size_t n, char ***out, size_t *nout)
{
    if (!list) {
        list = (char *const *)default_protocols;
        n = NDT_ARRAY_LEN(default_protocols);
    }
    if (!(*out = calloc(n, sizeof(char *))))
        return NDT_ERROR;
    for (size_t i = 0; i < n; i++) {
        if (!((*out)[i] = strdup(list[i])))
            return NDT_ERROR;
        *nout = i + 1;
    }
    return NDT_OK;
}

/* scrape_protocols (global or per job): known names, no repeats. */
static int protocols_from_yaml(ndt_yaml *y, yaml_node_t *node, char ***list, size_t *n,
                               char *err, size_t errlen)
{
    if (strings_from_yaml(y, node, "scrape_protocols", list, n, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (*n == 0)
        return ndt_yaml_error(y, node, "scrape_protocols", err, errlen,
                              "scrape_protocols cannot be empty");
    for (size_t i = 0; i < *n; i++) {
        const char *p = (*list)[i];
        yaml_node_t *item = ingest_scrape_seq_item(y, node, i);
        if (!in_list(p, known_protocols, NDT_ARRAY_LEN(known_protocols))) {
            const char *hint =
                ndt_config_closest(p, known_protocols, NDT_ARRAY_LEN(known_protocols));
            return ndt_yaml_error(y, item, "scrape_protocols", err, errlen,
                                  "unknown scrape protocol '%s'%s%s%s, supported: "
                                  "PrometheusProto, OpenMetricsText0.0.1, OpenMetricsText1.0.0, "
                                  "PrometheusText0.0.4, PrometheusText1.0.0",
                                  p, hint ? " (did you mean " : "", hint ? hint : "",
                                  hint ? "?)" : "");
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp((*list)[j], p) == 0)
                return ndt_yaml_error(y, item, "scrape_protocols", err, errlen,
                                      "duplicated protocol in scrape_protocols, got %s", p);
    }
    return NDT_OK;
}

/* ------------------------------------------------------------------ */
/* Target groups (static_configs), shared with file_sd in discovery.c  */
/* ------------------------------------------------------------------ */

int ingest_scrape_check_address(const char *addr, char *why, size_t whylen)
{
    if (!*addr) {
        snprintf(why, whylen, "empty target address");
        return NDT_ERROR;
    }
    for (const char *p = addr; *p; p++) {
        if (*p == '/' || *p == '?' || *p == '#' || *p == '@' || isspace((unsigned char)*p) ||
            iscntrl((unsigned char)*p)) {
            snprintf(why, whylen, "'%s' is not a valid target: expected host:port", addr);
            return NDT_ERROR;
        }
    }
    const char *port = NULL;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close == addr + 1 || (close[1] && close[1] != ':')) {
            snprintf(why, whylen, "'%s' is not a valid target: expected [ipv6]:port", addr);
            return NDT_ERROR;
        }
        port = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strchr(addr, ':');
        if (colon && strchr(colon + 1, ':')) {
            snprintf(why, whylen,
                     "'%s' is not a valid target: IPv6 addresses need brackets, like [::1]:9100",
                     addr);
            return NDT_ERROR;
        }
        if (colon == addr) {
            snprintf(why, whylen, "'%s' is not a valid target: the host is missing", addr);
            return NDT_ERROR;
        }
        port = colon ? colon + 1 : NULL;
    }
    if (port) {
        char *end;
        long v = isdigit((unsigned char)*port) ? strtol(port, &end, 10) : -1;
        if (v < 1 || v > 65535 || *end) {
            snprintf(why, whylen, "'%s' is not a valid target: the port must be 1-65535", addr);
            return NDT_ERROR;
        }
    }
    return NDT_OK;
}

void ingest_scrape_target_group_free(ingest_target_group *g)
{
    strings_free(g->targets, g->ntargets);
    ingest_scrape_owned_labels_free(&g->labels);
    free(g->source);
    memset(g, 0, sizeof(*g));
}

static const char *const group_keys[] = { "targets", "labels" };

int ingest_scrape_target_group_from_yaml(ndt_yaml *y, yaml_node_t *node, const char *source,
                                  ingest_target_group *g, char *err, size_t errlen)
{
    if (node->type != YAML_MAPPING_NODE)
        return ndt_yaml_error(y, node, NULL, err, errlen,
                              "expected a target group (a mapping with targets and labels)");
    if (ndt_yaml_check_unique_keys(y, node, err, errlen) != NDT_OK)
        return NDT_ERROR;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
        const char *key = ndt_yaml_scalar(k);
        if (!in_list(key, group_keys, NDT_ARRAY_LEN(group_keys))) {
            const char *hint = ndt_config_closest(key, group_keys, NDT_ARRAY_LEN(group_keys));
            return ndt_yaml_error(y, k, NULL, err, errlen, "unknown key '%s'%s%s%s", key,
                                  hint ? ", did you mean " : "", hint ? hint : "",
                                  hint ? "?" : "");
        }
    }
    if (!(g->source = strdup(source)))
        return ndt_yaml_error(y, node, NULL, err, errlen, "out of memory");
    yaml_node_t *targets = ndt_yaml_map_get(y, node, "targets");
    if (strings_from_yaml(y, targets, "targets", &g->targets, &g->ntargets, err, errlen) !=
        NDT_OK)
        return NDT_ERROR;
    return ingest_scrape_labels_from_yaml(y, ndt_yaml_map_get(y, node, "labels"), "labels", &g->labels,
                                   err, errlen);
}

static int static_configs_from_yaml(ndt_yaml *y, yaml_node_t *seq, ingest_job *job, char *err,
                                    size_t errlen)
{
    if (ndt_yaml_is_null(seq))
        return NDT_OK;
    if (seq->type != YAML_SEQUENCE_NODE)
        return ndt_yaml_error(y, seq, "static_configs", err, errlen,
                              "expected a list of target groups");
    size_t n = ingest_scrape_seq_len(seq);
    job->static_configs = calloc(n ? n : 1, sizeof(*job->static_configs));
    if (!job->static_configs)
        return ndt_yaml_error(y, seq, "static_configs", err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char source[32];
        snprintf(source, sizeof(source), "static:%zu", i);
        job->nstatic = i + 1;
        if (ingest_scrape_target_group_from_yaml(y, ingest_scrape_seq_item(y, seq, i), source,
                                          &job->static_configs[i], err, errlen) != NDT_OK)
            return NDT_ERROR;
    }
    return NDT_OK;
}

/* Prometheus's patFileSDName: at most one '*', in the last path element,
 * and a .json/.yml/.yaml extension. */
static int file_sd_pattern_valid(const char *pat)
{
    const char *star = strchr(pat, '*');
    if (star && (strchr(star + 1, '*') || strchr(star, '/')))
        return 0;
    const char *dot = strrchr(pat, '.');
    if (!dot || strchr(dot, '/'))
        return 0;
    static const char *const exts[] = { ".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML" };
    return in_list(dot, exts, NDT_ARRAY_LEN(exts));
}

typedef struct file_sd_yaml {
    int64_t refresh_interval_ns;
} file_sd_yaml;

static const ndt_conf_entry file_sd_map[] = {
    { "files", NDT_CONF_EXTERNAL, NULL, 0, "glob patterns of JSON or YAML target files" },
    { "refresh_interval", NDT_CONF_DURATION, "5m", offsetof(file_sd_yaml, refresh_interval_ns),
      "how often the files are re-read" },
    { NULL },
};

static int file_sd_from_yaml(ndt_yaml *y, yaml_node_t *seq, const char *dir, ingest_job *job,
                             char *err, size_t errlen)
{
    if (ndt_yaml_is_null(seq))
        return NDT_OK;
    if (seq->type != YAML_SEQUENCE_NODE)
        return ndt_yaml_error(y, seq, "file_sd_configs", err, errlen,
                              "expected a list of file_sd configs");
    size_t n = ingest_scrape_seq_len(seq);
    job->file_sd_configs = calloc(n ? n : 1, sizeof(*job->file_sd_configs));
    if (!job->file_sd_configs)
        return ndt_yaml_error(y, seq, "file_sd_configs", err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ingest_scrape_seq_item(y, seq, i);
        ingest_file_sd *sd = &job->file_sd_configs[i];
        file_sd_yaml c = { 0 };
        job->nfile_sd = i + 1;
        if (item->type != YAML_MAPPING_NODE)
            return ndt_yaml_error(y, item, "file_sd_configs", err, errlen,
                                  "expected a mapping with files and refresh_interval");
        if (ndt_confmap_set_defaults(file_sd_map, &c, err, errlen) != NDT_OK ||
            ndt_confmap_apply_yaml(file_sd_map, &c, y, item, NULL, err, errlen) != NDT_OK)
            return NDT_ERROR;
        sd->refresh_interval_ns = c.refresh_interval_ns;
        yaml_node_t *files = ndt_yaml_map_get(y, item, "files");
        if (strings_from_yaml(y, files, "files", &sd->files, &sd->nfiles, err, errlen) != NDT_OK)
            return NDT_ERROR;
        for (size_t f = 0; f < sd->nfiles; f++) {
            if (!file_sd_pattern_valid(sd->files[f]))
                return ndt_yaml_error(y, ingest_scrape_seq_item(y, files, f), "files", err, errlen,
                                      "path name '%s' is not valid for file discovery (a .json, "
                                      ".yml or .yaml file; '*' only in the last element)",
                                      sd->files[f]);
            if (resolve_in_place(dir, &sd->files[f]) != NDT_OK)
                return ndt_yaml_error(y, files, "files", err, errlen, "out of memory");
        }
    }
    return NDT_OK;
}

/* ------------------------------------------------------------------ */
/* One scrape config                                                   */
/* ------------------------------------------------------------------ */

static const ndt_conf_entry job_map[] = {
    { "job_name", NDT_CONF_STRING, NULL, offsetof(ingest_job, job_name),
      "the job label of every target (required, unique)" },
    { "scrape_interval", NDT_CONF_DURATION, NULL, offsetof(ingest_job, scrape_interval_ns),
      "how often targets are scraped (default: global)" },
    { "scrape_timeout", NDT_CONF_DURATION, NULL, offsetof(ingest_job, scrape_timeout_ns),
      "per-scrape deadline (default: global, capped at the interval)" },
    { "metrics_path", NDT_CONF_STRING, "/metrics", offsetof(ingest_job, metrics_path),
      "HTTP path of the exposition" },
    { "scheme", NDT_CONF_STRING, "http", offsetof(ingest_job, scheme), "http or https" },
    { "honor_labels", NDT_CONF_BOOL, "false", offsetof(ingest_job, honor_labels),
      "on a clash keep the scraped label instead of the target's" },
    { "honor_timestamps", NDT_CONF_BOOL, "true", offsetof(ingest_job, honor_timestamps),
      "keep timestamps the target exposes" },
    { "proxy_url", NDT_CONF_STRING, NULL, offsetof(ingest_job, proxy_url), "HTTP proxy" },
    { "follow_redirects", NDT_CONF_BOOL, "true", offsetof(ingest_job, follow_redirects),
      "follow HTTP 3xx" },
    { "enable_compression", NDT_CONF_BOOL, "true", offsetof(ingest_job, enable_compression),
      "ask for gzip (Accept-Encoding)" },
    { "sample_limit", NDT_CONF_UINT, NULL, offsetof(ingest_job, sample_limit),
      "scrape fails above this many samples after metric relabeling (0: none)" },
    { "label_limit", NDT_CONF_UINT, NULL, offsetof(ingest_job, label_limit),
      "scrape fails when a series has more labels (0: none)" },
    { "label_name_length_limit", NDT_CONF_UINT, NULL,
      offsetof(ingest_job, label_name_length_limit), "longest label name allowed (0: none)" },
    { "label_value_length_limit", NDT_CONF_UINT, NULL,
      offsetof(ingest_job, label_value_length_limit), "longest label value allowed (0: none)" },
    { "target_limit", NDT_CONF_UINT, NULL, offsetof(ingest_job, target_limit),
      "discovery fails above this many targets after relabeling (0: none)" },
    { "body_size_limit", NDT_CONF_SIZE, NULL, offsetof(ingest_job, body_size_limit),
      "largest uncompressed body accepted (0: ndtpipe's default cap)" },
    { "params", NDT_CONF_EXTERNAL, NULL, 0, "URL query parameters" },
    { "basic_auth", NDT_CONF_EXTERNAL, NULL, 0, "username, password / password_file" },
    { "authorization", NDT_CONF_EXTERNAL, NULL, 0, "type, credentials / credentials_file" },
    { "bearer_token", NDT_CONF_EXTERNAL, NULL, 0, "deprecated: authorization.credentials" },
    { "bearer_token_file", NDT_CONF_EXTERNAL, NULL, 0,
      "deprecated: authorization.credentials_file" },
    { "tls_config", NDT_CONF_EXTERNAL, NULL, 0, "ca_file, cert_file, key_file, server_name, "
                                                "insecure_skip_verify" },
    { "static_configs", NDT_CONF_EXTERNAL, NULL, 0, "target groups: targets and labels" },
    { "file_sd_configs", NDT_CONF_EXTERNAL, NULL, 0, "files and refresh_interval" },
    { "relabel_configs", NDT_CONF_EXTERNAL, NULL, 0, "rules applied to targets" },
    { "metric_relabel_configs", NDT_CONF_EXTERNAL, NULL, 0, "rules applied to scraped series" },
    { "scrape_protocols", NDT_CONF_EXTERNAL, NULL, 0, "Accept header preference" },
    { NULL },
};

static void job_free(ingest_job *job)
{
    ndt_confmap_free(job_map, job);
    free(job->basic_auth_username);
    free(job->basic_auth_password);
    free(job->authorization_type);
    free(job->authorization_credentials);
    ndt_confmap_free(tls_map, &job->tls);
    for (size_t i = 0; i < job->nparams; i++) {
        free(job->params[i].name);
        strings_free(job->params[i].values, job->params[i].nvalues);
    }
    free(job->params);
    for (size_t i = 0; i < job->nstatic; i++)
        ingest_scrape_target_group_free(&job->static_configs[i]);
    free(job->static_configs);
    for (size_t i = 0; i < job->nfile_sd; i++)
        strings_free(job->file_sd_configs[i].files, job->file_sd_configs[i].nfiles);
    free(job->file_sd_configs);
    ingest_relabel_rules_free(&job->relabel_configs);
    ingest_relabel_rules_free(&job->metric_relabel_configs);
    strings_free(job->scrape_protocols, job->nscrape_protocols);
    memset(job, 0, sizeof(*job));
}

/* bearer_token / bearer_token_file: Prometheus 2.x's older spelling of
 * authorization, still common in existing files. */
static int bearer_from_yaml(ndt_yaml *y, yaml_node_t *node, const char *dir, ingest_job *job,
                            char *err, size_t errlen)
{
    yaml_node_t *token = ndt_yaml_map_get(y, node, "bearer_token");
    yaml_node_t *file = ndt_yaml_map_get(y, node, "bearer_token_file");
    if (ndt_yaml_is_null(token) && ndt_yaml_is_null(file))
        return NDT_OK;
    if (!ndt_yaml_is_null(token) && !ndt_yaml_is_null(file))
        return ndt_yaml_error(y, file, "bearer_token_file", err, errlen,
                              "at most one of bearer_token & bearer_token_file must be "
                              "configured");
    yaml_node_t *set = ndt_yaml_is_null(token) ? file : token;
    const char *key = set == token ? "bearer_token" : "bearer_token_file";
    if (job->authorization_type || job->basic_auth_username || job->basic_auth_password)
        return ndt_yaml_error(y, set, key, err, errlen,
                              "at most one of basic_auth, authorization & bearer_token(_file) "
                              "must be configured");
    const char *text = ndt_yaml_scalar(set);
    if (!text)
        return ndt_yaml_error(y, set, key, err, errlen, "expected a string");
    if (!(job->authorization_type = strdup("Bearer")))
        return ndt_yaml_error(y, set, key, err, errlen, "out of memory");
    if (set == token) {
        if (!(job->authorization_credentials = strdup(text)))
            return ndt_yaml_error(y, set, key, err, errlen, "out of memory");
        return NDT_OK;
    }
    char *path = ingest_scrape_resolve_path(dir, text);
    if (!path)
        return ndt_yaml_error(y, set, key, err, errlen, "out of memory");
    int rc = read_secret_file(y, set, key, path, &job->authorization_credentials, err, errlen);
    free(path);
    return rc;
}

static int job_protocols(ndt_yaml *y, yaml_node_t *node, const global_conf *g, ingest_job *job,
                         char *err, size_t errlen)
{
    if (!ndt_yaml_is_null(node))
        return protocols_from_yaml(y, node, &job->scrape_protocols, &job->nscrape_protocols, err,
                                   errlen);
    if (protocols_copy(g->scrape_protocols, g->nscrape_protocols, &job->scrape_protocols,
                       &job->nscrape_protocols) != NDT_OK)
        return ndt_yaml_error(y, node, "scrape_protocols", err, errlen, "out of memory");
    return NDT_OK;
}

static int job_sections_from_yaml(ndt_yaml *y, yaml_node_t *node, const char *dir,
                                  const global_conf *g, ingest_job *job, char *err, size_t errlen)
{
    yaml_node_t *basic = ndt_yaml_map_get(y, node, "basic_auth");
    yaml_node_t *authz = ndt_yaml_map_get(y, node, "authorization");
    if (!ndt_yaml_is_null(basic) && !ndt_yaml_is_null(authz))
        return ndt_yaml_error(y, authz, "authorization", err, errlen,
                              "at most one of basic_auth, authorization & bearer_token(_file) "
                              "must be configured");
    if (params_from_yaml(y, ndt_yaml_map_get(y, node, "params"), job, err, errlen) != NDT_OK ||
        basic_auth_from_yaml(y, basic, dir, job, err, errlen) != NDT_OK ||
        authorization_from_yaml(y, authz, dir, job, err, errlen) != NDT_OK ||
        bearer_from_yaml(y, node, dir, job, err, errlen) != NDT_OK ||
        tls_from_yaml(y, ndt_yaml_map_get(y, node, "tls_config"), dir, &job->tls, err, errlen) !=
            NDT_OK ||
        static_configs_from_yaml(y, ndt_yaml_map_get(y, node, "static_configs"), job, err,
                                 errlen) != NDT_OK ||
        file_sd_from_yaml(y, ndt_yaml_map_get(y, node, "file_sd_configs"), dir, job, err,
                          errlen) != NDT_OK ||
        job_protocols(y, ndt_yaml_map_get(y, node, "scrape_protocols"), g, job, err, errlen) !=
            NDT_OK)
        return NDT_ERROR;
    if (ingest_relabel_rules_from_yaml(y, ndt_yaml_map_get(y, node, "relabel_configs"),
                                       &job->relabel_configs, err, errlen) != NDT_OK)
        return NDT_ERROR;
    return ingest_relabel_rules_from_yaml(y, ndt_yaml_map_get(y, node, "metric_relabel_configs"),
                                          &job->metric_relabel_configs, err, errlen);
}


/* Inherits the global values and validates the intervals exactly as
 * Prometheus's ScrapeConfig.Validate does. */
static int job_finish(ndt_yaml *y, yaml_node_t *node, const global_conf *g, ingest_job *job,
                      char *err, size_t errlen)
{
    if (!job->job_name || !*job->job_name)
        return ndt_yaml_error(y, node, "job_name", err, errlen, "job_name is empty");
    if (strcmp(job->scheme, "http") != 0 && strcmp(job->scheme, "https") != 0)
        return ndt_yaml_error(y, ndt_yaml_map_get(y, node, "scheme"), "scheme", err, errlen,
                              "expected http or https, got '%s'", job->scheme);
    if (job->scrape_interval_ns == 0)
        job->scrape_interval_ns = g->scrape_interval_ns;
    if (job->scrape_timeout_ns > job->scrape_interval_ns) {
        char t[32], i[32];
        ndt_duration_format(job->scrape_timeout_ns, t, sizeof(t));
        ndt_duration_format(job->scrape_interval_ns, i, sizeof(i));
        return ndt_yaml_error(y, ndt_yaml_map_get(y, node, "scrape_timeout"), "scrape_timeout",
                              err, errlen,
                              "scrape timeout %s greater than scrape interval %s for scrape "
                              "config with job name '%s'",
                              t, i, job->job_name);
    }
    if (job->scrape_timeout_ns == 0)
        job->scrape_timeout_ns = g->scrape_timeout_ns > job->scrape_interval_ns
                                     ? job->scrape_interval_ns
                                     : g->scrape_timeout_ns;
#define INHERIT(field)                                                                         \
    if (!job->field)                                                                           \
        job->field = g->field;
    INHERIT(sample_limit)
    INHERIT(label_limit)
    INHERIT(label_name_length_limit)
    INHERIT(label_value_length_limit)
    INHERIT(target_limit)
    INHERIT(body_size_limit)
#undef INHERIT
    return NDT_OK;
}

/* Like promtool check config: every static target must still be a valid
 * target after relabel_configs (so a blackbox-style URL that relabeling
 * moves into __param_target is fine, a URL left as the address is not). */
static int check_static_targets(ndt_yaml *y, yaml_node_t *node, const ingest_job *job, char *err,
                                size_t errlen)
{
    yaml_node_t *groups = ndt_yaml_map_get(y, node, "static_configs");
    for (size_t i = 0; i < job->nstatic; i++) {
        const ingest_target_group *g = &job->static_configs[i];
        yaml_node_t *targets =
            ndt_yaml_map_get(y, ingest_scrape_seq_item(y, groups, i), "targets");
        for (size_t t = 0; t < g->ntargets; t++) {
            char why[NDT_ERRBUF_SIZE];
            int rc = ingest_discovery_check_target(job, g, g->targets[t], why, sizeof(why));
            if (rc != NDT_OK)
                return ndt_yaml_error(y, ingest_scrape_seq_item(y, targets, t), "targets", err,
                                      errlen, "%s",
                                      rc == NDT_AGAIN ? why : "out of memory");
        }
    }
    return NDT_OK;
}

static int job_from_yaml(ndt_yaml *y, yaml_node_t *node, const char *dir, const global_conf *g,
                         ingest_job *job, char *err, size_t errlen)
{
    if (node->type != YAML_MAPPING_NODE)
        return ndt_yaml_error(y, node, NULL, err, errlen,
                              "expected a scrape config (a mapping with job_name, ...)");
    if (ndt_confmap_set_defaults(job_map, job, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (reject_unsupported(y, node, unsupported_job_keys, NDT_ARRAY_LEN(unsupported_job_keys),
                           err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (ndt_confmap_apply_yaml(job_map, job, y, node, NULL, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (job_sections_from_yaml(y, node, dir, g, job, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (job_finish(y, node, g, job, err, errlen) != NDT_OK)
        return NDT_ERROR;
    return check_static_targets(y, node, job, err, errlen);
}

/* ------------------------------------------------------------------ */
/* The whole file                                                      */
/* ------------------------------------------------------------------ */

static const ndt_conf_entry global_map[] = {
    { "scrape_interval", NDT_CONF_DURATION, DEFAULT_GLOBAL_INTERVAL,
      offsetof(global_conf, scrape_interval_ns), "default scrape interval of every job" },
    { "scrape_timeout", NDT_CONF_DURATION, NULL, offsetof(global_conf, scrape_timeout_ns),
      "default scrape timeout (default: min(10s, scrape_interval))" },
    { "external_labels", NDT_CONF_EXTERNAL, NULL, 0, "labels added to what leaves ndtpipe" },
    { "evaluation_interval", NDT_CONF_DURATION, NULL,
      offsetof(global_conf, evaluation_interval_ns), "rule evaluation (ignored: no rules)" },
    { "rule_query_offset", NDT_CONF_DURATION, NULL, offsetof(global_conf, rule_query_offset_ns),
      "rule evaluation (ignored: no rules)" },
    { "query_log_file", NDT_CONF_STRING, NULL, offsetof(global_conf, query_log_file),
      "PromQL query log (ignored: no queries)" },
    { "sample_limit", NDT_CONF_UINT, NULL, offsetof(global_conf, sample_limit),
      "default sample_limit of every job" },
    { "label_limit", NDT_CONF_UINT, NULL, offsetof(global_conf, label_limit),
      "default label_limit of every job" },
    { "label_name_length_limit", NDT_CONF_UINT, NULL,
      offsetof(global_conf, label_name_length_limit), "default of every job" },
    { "label_value_length_limit", NDT_CONF_UINT, NULL,
      offsetof(global_conf, label_value_length_limit), "default of every job" },
    { "target_limit", NDT_CONF_UINT, NULL, offsetof(global_conf, target_limit),
      "default target_limit of every job" },
    { "keep_dropped_targets", NDT_CONF_UINT, NULL, offsetof(global_conf, keep_dropped_targets),
      "target UI bookkeeping (ignored)" },
    { "body_size_limit", NDT_CONF_SIZE, NULL, offsetof(global_conf, body_size_limit),
      "default body_size_limit of every job" },
    { "scrape_protocols", NDT_CONF_EXTERNAL, NULL, 0, "default scrape_protocols of every job" },
    { NULL },
};

/* Global keys that are accepted but have no effect in ndtpipe. */
static const char *const ignored_global_keys[] = {
    "evaluation_interval", "rule_query_offset", "query_log_file", "keep_dropped_targets",
};

static int global_from_yaml(ndt_yaml *y, yaml_node_t *node, global_conf *g,
                            ingest_scrape_config *cfg, char *err, size_t errlen)
{
    if (ndt_confmap_set_defaults(global_map, g, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (!ndt_yaml_is_null(node)) {
        if (reject_unsupported(y, node, unsupported_global_keys,
                               NDT_ARRAY_LEN(unsupported_global_keys), err, errlen) != NDT_OK ||
            ndt_confmap_apply_yaml(global_map, g, y, node, NULL, err, errlen) != NDT_OK)
            return NDT_ERROR;
        for (size_t i = 0; i < NDT_ARRAY_LEN(ignored_global_keys); i++) {
            yaml_node_t *v = ndt_yaml_map_get(y, node, ignored_global_keys[i]);
            if (v)
                warn_ignored(y, v, ignored_global_keys[i]);
        }
        yaml_node_t *protocols = ndt_yaml_map_get(y, node, "scrape_protocols");
        if (!ndt_yaml_is_null(protocols) &&
            protocols_from_yaml(y, protocols, &g->scrape_protocols, &g->nscrape_protocols, err,
                                errlen) != NDT_OK)
            return NDT_ERROR;
        if (ingest_scrape_labels_from_yaml(y, ndt_yaml_map_get(y, node, "external_labels"),
                                    "external_labels", &cfg->external_labels, err,
                                    errlen) != NDT_OK)
            return NDT_ERROR;
    }
    /* Prometheus: a zero interval means the default; the timeout
     * defaults to 10s but never beyond the interval. */
    if (g->scrape_interval_ns == 0)
        ndt_duration_parse(DEFAULT_GLOBAL_INTERVAL, &g->scrape_interval_ns);
    if (g->scrape_timeout_ns > g->scrape_interval_ns)
        return ndt_yaml_error(y, ndt_yaml_map_get(y, node, "scrape_timeout"), "scrape_timeout",
                              err, errlen, "global scrape timeout greater than scrape interval");
    if (g->scrape_timeout_ns == 0)
        g->scrape_timeout_ns = PROMETHEUS_DEFAULT_TIMEOUT_NS > g->scrape_interval_ns
                                   ? g->scrape_interval_ns
                                   : PROMETHEUS_DEFAULT_TIMEOUT_NS;
    cfg->scrape_interval_ns = g->scrape_interval_ns;
    cfg->scrape_timeout_ns = g->scrape_timeout_ns;
    return NDT_OK;
}

static const char *const top_level_keys[] = {
    "global", "scrape_configs", "rule_files", "alerting", "remote_write", "remote_read",
    "storage", "tracing", "otlp", "runtime", "scrape_config_files",
};

static int check_top_level(ndt_yaml *y, yaml_node_t *root, char *err, size_t errlen)
{
    if (ndt_yaml_check_unique_keys(y, root, err, errlen) != NDT_OK)
        return NDT_ERROR;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
        const char *key = ndt_yaml_scalar(k);
        if (in_list(key, ignored_top_level, NDT_ARRAY_LEN(ignored_top_level))) {
            warn_ignored(y, k, key);
        } else if (strcmp(key, "scrape_config_files") == 0) {
            return ndt_yaml_error(y, k, key, err, errlen,
                                  "not supported by ndtpipe: put the scrape configs in this "
                                  "file (see docs/CONFIGURATION.md)");
        } else if (!in_list(key, top_level_keys, NDT_ARRAY_LEN(top_level_keys))) {
            const char *hint =
                ndt_config_closest(key, top_level_keys, NDT_ARRAY_LEN(top_level_keys));
            return ndt_yaml_error(y, k, NULL, err, errlen, "unknown key '%s'%s%s%s", key,
                                  hint ? ", did you mean " : "", hint ? hint : "",
                                  hint ? "?" : "");
        }
    }
    return NDT_OK;
}

static int jobs_from_yaml(ndt_yaml *y, yaml_node_t *seq, const char *dir, const global_conf *g,
                          ingest_scrape_config *cfg, char *err, size_t errlen)
{
    if (ndt_yaml_is_null(seq))
        return NDT_OK;
    if (seq->type != YAML_SEQUENCE_NODE)
        return ndt_yaml_error(y, seq, "scrape_configs", err, errlen,
                              "expected a list of scrape configs");
    size_t n = ingest_scrape_seq_len(seq);
    cfg->jobs = calloc(n ? n : 1, sizeof(*cfg->jobs));
    if (!cfg->jobs)
        return ndt_yaml_error(y, seq, "scrape_configs", err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ingest_scrape_seq_item(y, seq, i);
        cfg->njobs = i + 1;
        if (job_from_yaml(y, item, dir, g, &cfg->jobs[i], err, errlen) != NDT_OK)
            return NDT_ERROR;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->jobs[j].job_name, cfg->jobs[i].job_name) == 0)
                return ndt_yaml_error(y, ndt_yaml_map_get(y, item, "job_name"), "job_name", err,
                                      errlen, "found multiple scrape configs with job name '%s'",
                                      cfg->jobs[i].job_name);
    }
    return NDT_OK;
}

static char *config_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    char *dir = strdup(strchr(path, '/') ? dirname(copy) : ".");
    free(copy);
    return dir;
}

static int config_from_yaml(ndt_yaml *y, ingest_scrape_config *cfg, char *err, size_t errlen)
{
    global_conf g = { 0 };
    int rc = NDT_ERROR;
    char *dir = config_dir(cfg->path);
    yaml_node_t *root = ndt_yaml_root(y);

    if (!dir) {
        snprintf(err, errlen, "%s: out of memory", cfg->path);
        return NDT_ERROR;
    }
    if (root && !ndt_yaml_is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            ndt_yaml_error(y, root, NULL, err, errlen,
                           "expected a mapping with global and scrape_configs");
            goto out;
        }
        if (check_top_level(y, root, err, errlen) != NDT_OK)
            goto out;
    } else {
        root = NULL;
    }
    if (global_from_yaml(y, ndt_yaml_map_get(y, root, "global"), &g, cfg, err, errlen) !=
        NDT_OK)
        goto out;
    if (jobs_from_yaml(y, ndt_yaml_map_get(y, root, "scrape_configs"), dir, &g, cfg, err,
                       errlen) != NDT_OK)
        goto out;
    rc = NDT_OK;
out:
    ndt_confmap_free(global_map, &g);
    strings_free(g.scrape_protocols, g.nscrape_protocols);
    free(dir);
    return rc;
}

static int config_load(ndt_yaml *y, const char *path, ingest_scrape_config **out, char *err,
                       size_t errlen)
{
    ingest_scrape_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg || !(cfg->path = strdup(path))) {
        free(cfg);
        snprintf(err, errlen, "%s: out of memory", path);
        return NDT_ERROR;
    }
    if (config_from_yaml(y, cfg, err, errlen) != NDT_OK) {
        ingest_scrape_config_free(cfg);
        return NDT_ERROR;
    }
    *out = cfg;
    return NDT_OK;
}

int ingest_scrape_config_load(const char *path, ingest_scrape_config **out, char *err,
                              size_t errlen)
{
    ndt_yaml y;
    *out = NULL;
    if (ndt_yaml_load_file(&y, path, err, errlen) != NDT_OK)
        return NDT_ERROR;
    int rc = config_load(&y, path, out, err, errlen);
    ndt_yaml_free(&y);
    return rc;
}

int ingest_scrape_config_load_string(const char *name, const char *text, size_t len,
                                     ingest_scrape_config **out, char *err, size_t errlen)
{
    ndt_yaml y;
    *out = NULL;
    if (ndt_yaml_load_string(&y, name, text, len, err, errlen) != NDT_OK)
        return NDT_ERROR;
    int rc = config_load(&y, name, out, err, errlen);
    ndt_yaml_free(&y);
    return rc;
}

void ingest_scrape_config_free(ingest_scrape_config *config)
{
    if (!config)
        return;
    for (size_t i = 0; i < config->njobs; i++)
        job_free(&config->jobs[i]);
    free(config->jobs);
    ingest_scrape_owned_labels_free(&config->external_labels);
    free(config->path);
    free(config);
}

void ingest_scrape_config_print_help(FILE *out)
{
    fprintf(out, "global:\n");
    ndt_confmap_print_help(global_map, out);
    fprintf(out, "scrape_configs[]:\n");
    ndt_confmap_print_help(job_map, out);
}
