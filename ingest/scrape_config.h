/*
 * scrape_config.h: Prometheus's configuration format for scraping
 * (global + scrape_configs), and target discovery from it.  Internal to
 * ingest/.
 *
 * An existing prometheus.yml must load unchanged: keys ndtpipe does not act
 * on but Prometheus defines (rule_files, alerting, remote_write, ...) are
 * accepted and ignored with one warning each; keys Prometheus does not
 * define are errors naming file, line and key (exit 2).
 *
 * Defaults differ from Prometheus in one place only: the global
 * scrape_interval defaults to 20ms (and scrape_timeout to the interval),
 * because the twin needs 20 ms telemetry.
 */
#ifndef INGEST_SCRAPE_CONFIG_H
#define INGEST_SCRAPE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ingest/relabel.h"
#include "ingest/sample.h"

/* A label list owned by the config (malloc'ed strings, NUL-terminated). */
typedef struct ingest_owned_labels {
    ingest_label *labels; /* ptr fields point at malloc'ed C strings */
    size_t n;
} ingest_owned_labels;

typedef struct ingest_target_group {
    char **targets;       /* host:port */
    size_t ntargets;
    ingest_owned_labels labels;
    char *source;         /* "static:0" or the file_sd file path, for messages */
} ingest_target_group;

typedef struct ingest_file_sd {
    char **files;         /* glob patterns, relative to the config file's directory */
    size_t nfiles;
    int64_t refresh_interval_ns; /* default 5m */
} ingest_file_sd;

typedef struct ingest_param {
    char *name;
    char **values;
    size_t nvalues;
} ingest_param;

typedef struct ingest_tls_config {
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *server_name;
    int insecure_skip_verify;
} ingest_tls_config;

typedef struct ingest_job {
    char *job_name;
    int64_t scrape_interval_ns;
    int64_t scrape_timeout_ns;
    char *metrics_path;         /* default /metrics */
    char *scheme;               /* default http */
    ingest_param *params;
    size_t nparams;
    int honor_labels;
    int honor_timestamps;       /* default 1 */
    /* basic_auth */
    char *basic_auth_username;
    char *basic_auth_password;  /* from password or password_file */
    /* authorization (type default Bearer) */
    char *authorization_type;
    char *authorization_credentials; /* from credentials or credentials_file */
    ingest_tls_config tls;
    char *proxy_url;
    int follow_redirects;       /* default 1 */
    int enable_compression;     /* default 1: Accept-Encoding gzip */
    uint64_t sample_limit;      /* 0 = none */
    uint64_t label_limit;
    uint64_t label_name_length_limit;
    uint64_t label_value_length_limit;
    uint64_t target_limit;
    uint64_t body_size_limit;   /* bytes after decompression, 0 = ndtpipe's default cap */
    ingest_target_group *static_configs;
    size_t nstatic;
    ingest_file_sd *file_sd_configs;
    size_t nfile_sd;
    ingest_relabel_rules relabel_configs;
    ingest_relabel_rules metric_relabel_configs;
    /* Accept-header preference, most preferred first: PrometheusProto,
     * OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText0.0.4,
     * PrometheusText1.0.0.  Prometheus's default order when unset. */
    char **scrape_protocols;
    size_t nscrape_protocols;
} ingest_job;

typedef struct ingest_scrape_config {
    char *path;                 /* the file it came from */
    int64_t scrape_interval_ns; /* global, default 20ms */
    int64_t scrape_timeout_ns;  /* global, default = interval (Prometheus: 10s, capped at interval) */
    ingest_owned_labels external_labels;
    ingest_job *jobs;
    size_t njobs;
} ingest_scrape_config;

int ingest_scrape_config_load(const char *path, ingest_scrape_config **out, char *err,
                              size_t errlen);
int ingest_scrape_config_load_string(const char *name, const char *text, size_t len,
                                     ingest_scrape_config **out, char *err, size_t errlen);
void ingest_scrape_config_free(ingest_scrape_config *config);
/* Every key of global and of a scrape config, with defaults, for --help. */
void ingest_scrape_config_print_help(FILE *out);

/* One target as Prometheus derives it from a target group: labels
 * __address__, __scheme__, __metrics_path__, __scrape_interval__,
 * __scrape_timeout__, __param_<name>, job and the group's labels, then
 * relabel_configs, then instance defaults to __address__ and every label
 * starting with "__" is removed. */
typedef struct ingest_target_def {
    char *url;                  /* scheme://address/path?params (credentials not included) */
    ingest_owned_labels labels; /* final target labels, sorted by name */
    const char *instance;       /* points into labels */
    int64_t interval_ns;
    int64_t timeout_ns;
    const ingest_job *job;
} ingest_target_def;

/* Current targets of a job: static_configs plus the file_sd files as they
 * are now (JSON or YAML, Prometheus's file_sd format), after relabeling.
 * A file that cannot be read or parsed fails the call with a message
 * naming it; *ndropped counts targets dropped by relabeling. */
int ingest_job_discover(const ingest_job *job, ingest_target_def **out, size_t *n,
                        size_t *ndropped, char *err, size_t errlen);
/* Frees the contents of n definitions and the array itself. */
void ingest_target_defs_free(ingest_target_def *defs, size_t n);
/* Frees what one definition owns (not the definition): for a definition
 * moved out of the array into a longer-lived object. */
void ingest_target_def_clear(ingest_target_def *def);

#endif
