/*
 * test_scrape_config.c: prometheus.yml loading, defaults and inheritance,
 * exact error messages, file_sd, target labels and URLs, relabel drops
 * and hashmod sharding.
 *
 * Runs from the repository root (tests/run.sh does so): the realistic
 * configurations are read from tests/data/configs, whose MANIFEST says
 * which ones ndtpipe accepts; tests/integration/15-config-promtool.sh
 * holds promtool to the same manifest.  Expected target labels and URLs
 * follow Prometheus 2.x's documented target labelling and Go's url
 * package escaping, worked out by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "ingest/scrape_config.h"

#define CONFIGS "tests/data/configs/"
#define MS 1000000LL
#define SEC 1000000000LL

static ingest_scrape_config *load_ok(const char *text)
{
    ingest_scrape_config *cfg = NULL;
    char err[NDT_ERRBUF_SIZE];
    if (ingest_scrape_config_load_string("t.yml", text, strlen(text), &cfg, err, sizeof(err)) !=
        NDT_OK)
        fail_msg("config refused: %s\n%s", err, text);
    return cfg;
}

static void expect_error(const char *text, const char *want)
{
    ingest_scrape_config *cfg = NULL;
    char err[NDT_ERRBUF_SIZE] = "";
    if (ingest_scrape_config_load_string("t.yml", text, strlen(text), &cfg, err, sizeof(err)) ==
        NDT_OK) {
        ingest_scrape_config_free(cfg);
        fail_msg("config accepted:\n%s", text);
    }
    assert_null(cfg);
    if (strcmp(err, want) != 0)
        fail_msg("config:\n%swant: %s\ngot:  %s", text, want, err);
}

static const ingest_job *find_job(const ingest_scrape_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->njobs; i++)
        if (strcmp(cfg->jobs[i].job_name, name) == 0)
            return &cfg->jobs[i];
    fail_msg("no job %s", name);
    return NULL;
}

/* "k=v,k=v" of a target's labels. */
static void render_labels(const ingest_owned_labels *ol, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ol->n; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s=%s", i ? "," : "",
                                 ol->labels[i].name.ptr, ol->labels[i].value.ptr);
}

static ingest_target_def *discover(const ingest_job *job, size_t *n, size_t *dropped)
{
    ingest_target_def *defs = NULL;
    char err[NDT_ERRBUF_SIZE];
    if (ingest_job_discover(job, &defs, n, dropped, err, sizeof(err)) != NDT_OK)
        fail_msg("discovery of %s failed: %s", job->job_name, err);
    return defs;
}

/* ------------------------------------------------------------------ */

static void realistic_prometheus_yml_loads(void **state)
{
    (void)state;
    ingest_scrape_config *cfg = NULL;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ingest_scrape_config_load(CONFIGS "prometheus.yml", &cfg, err, sizeof(err)),
                     NDT_OK);
    assert_int_equal(cfg->njobs, 11);
    assert_int_equal(cfg->scrape_interval_ns, 15 * SEC);
    assert_int_equal(cfg->scrape_timeout_ns, 10 * SEC);
    assert_int_equal(cfg->external_labels.n, 2);
    assert_string_equal(cfg->external_labels.labels[0].name.ptr, "cluster");
    assert_string_equal(cfg->external_labels.labels[0].value.ptr, "edge-1");

    const ingest_job *prom = find_job(cfg, "prometheus");
    assert_int_equal(prom->scrape_interval_ns, 15 * SEC); /* inherited */
    assert_int_equal(prom->scrape_timeout_ns, 10 * SEC);
    assert_string_equal(prom->metrics_path, "/metrics");
    assert_string_equal(prom->scheme, "http");
    assert_int_equal(prom->honor_labels, 0);
    assert_int_equal(prom->honor_timestamps, 1);
    assert_int_equal(prom->follow_redirects, 1);
    assert_int_equal(prom->enable_compression, 1);
    assert_int_equal(prom->nscrape_protocols, 3);
    assert_string_equal(prom->scrape_protocols[0], "OpenMetricsText1.0.0");

    /* Global timeout 10s is longer than the job's 5s interval: capped. */
    const ingest_job *node = find_job(cfg, "node");
    assert_int_equal(node->scrape_interval_ns, 5 * SEC);
    assert_int_equal(node->scrape_timeout_ns, 5 * SEC);
    assert_int_equal(node->nstatic, 2);
    assert_int_equal(node->metric_relabel_configs.n, 1);

    const ingest_job *inf = find_job(cfg, "inference");
    assert_int_equal(inf->scrape_interval_ns, 20 * MS);
    assert_int_equal(inf->scrape_timeout_ns, 20 * MS);
    assert_int_equal(inf->honor_labels, 1);
    assert_int_equal(inf->sample_limit, 50000);
    assert_int_equal(inf->label_limit, 64);
    assert_int_equal(inf->label_name_length_limit, 128);
    assert_int_equal(inf->label_value_length_limit, 1024);
    assert_int_equal(inf->target_limit, 100);
    assert_int_equal(inf->body_size_limit, 10 << 20);
    assert_int_equal(inf->nfile_sd, 1);
    assert_int_equal(inf->file_sd_configs[0].refresh_interval_ns, 30 * SEC);
    assert_string_equal(inf->file_sd_configs[0].files[0], CONFIGS "targets/*.json");

    const ingest_job *bb = find_job(cfg, "blackbox");
    assert_string_equal(bb->metrics_path, "/probe");
    assert_int_equal(bb->nparams, 1);
    assert_string_equal(bb->params[0].name, "module");
    assert_string_equal(bb->params[0].values[0], "http_2xx");

    const ingest_job *sec = find_job(cfg, "secure");
    assert_string_equal(sec->scheme, "https");
    assert_int_equal(sec->scrape_timeout_ns, 2 * SEC);
    assert_string_equal(sec->basic_auth_username, "scraper");
    assert_string_equal(sec->basic_auth_password, "s3cret-password"); /* newline trimmed */
    assert_string_equal(sec->tls.ca_file, CONFIGS "tls/ca.pem");      /* relative to the file */
    assert_string_equal(sec->tls.server_name, "metrics.internal");
    assert_int_equal(sec->tls.insecure_skip_verify, 0);
    assert_int_equal(sec->follow_redirects, 0);
    assert_int_equal(sec->honor_timestamps, 0);

    const ingest_job *tok = find_job(cfg, "token");
    assert_string_equal(tok->authorization_type, "Bearer");
    assert_string_equal(tok->authorization_credentials, "tok-123");
    assert_string_equal(tok->proxy_url, "http://127.0.0.1:3128");
    ingest_scrape_config_free(cfg);
}

/* Sections Prometheus defines outside scraping load with one warning each. */
static void ignored_sections_warn_once_each(void **state)
{
    (void)state;
    static const char text[] = "global:\n  evaluation_interval: 1m\n"
                               "rule_files: [a.yml]\n"
                               "alerting: {alertmanagers: []}\n"
                               "remote_write: [{url: 'http://127.0.0.1:1/w'}]\n"
                               "remote_read: []\n"
                               "storage: {tsdb: {out_of_order_time_window: 1h}}\n"
                               "tracing: {endpoint: 'x:1'}\n";
    char path[] = "/tmp/ndt-warn.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(2);
    ndt_log_set_level(NDT_LOG_INFO);
    dup2(fd, 2);
    ingest_scrape_config *cfg = load_ok(text);
    dup2(saved, 2);
    close(saved);
    ingest_scrape_config_free(cfg);

    char log[4096] = "";
    ssize_t n = pread(fd, log, sizeof(log) - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    static const char *const keys[] = { "evaluation_interval", "rule_files", "alerting",
                                        "remote_write", "remote_read", "storage", "tracing" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(keys); i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "key=%s\n", keys[i]);
        const char *hit = strstr(log, needle);
        if (!hit)
            fail_msg("no warning for %s in:\n%s", keys[i], log);
        assert_null(strstr(hit + 1, needle));
    }
    assert_non_null(strstr(log, "level=warn"));
    assert_non_null(strstr(log, "file=t.yml line=3 key=rule_files"));
}

static void defaults_without_global(void **state)
{
    (void)state;
    ingest_scrape_config *cfg = load_ok("scrape_configs:\n"
                                        "  - job_name: a\n"
                                        "    static_configs:\n"
                                        "      - targets: [h:1]\n");
    assert_int_equal(cfg->scrape_interval_ns, 20 * MS);
    assert_int_equal(cfg->scrape_timeout_ns, 20 * MS);
    assert_int_equal(cfg->jobs[0].scrape_interval_ns, 20 * MS);
    assert_int_equal(cfg->jobs[0].scrape_timeout_ns, 20 * MS);
    assert_int_equal(cfg->jobs[0].sample_limit, 0);
    assert_int_equal(cfg->jobs[0].body_size_limit, 0);
    ingest_scrape_config_free(cfg);

    cfg = load_ok("");
    assert_int_equal(cfg->njobs, 0);
    assert_int_equal(cfg->scrape_interval_ns, 20 * MS);
    ingest_scrape_config_free(cfg);
}

static void timeout_inheritance_like_prometheus(void **state)
{
    (void)state;
    ingest_scrape_config *cfg = load_ok("global:\n"
                                        "  scrape_interval: 1m\n"
                                        "  sample_limit: 1000\n"
                                        "  body_size_limit: 1MiB\n"
                                        "scrape_configs:\n"
                                        "  - job_name: slow\n"
                                        "  - job_name: fast\n"
                                        "    scrape_interval: 5s\n"
                                        "  - job_name: own\n"
                                        "    scrape_interval: 30s\n"
                                        "    scrape_timeout: 30s\n"
                                        "    sample_limit: 7\n");
    /* Prometheus: global timeout defaults to 10s when the interval allows. */
    assert_int_equal(cfg->scrape_timeout_ns, 10 * SEC);
    assert_int_equal(find_job(cfg, "slow")->scrape_interval_ns, 60 * SEC);
    assert_int_equal(find_job(cfg, "slow")->scrape_timeout_ns, 10 * SEC);
    assert_int_equal(find_job(cfg, "fast")->scrape_timeout_ns, 5 * SEC);
    assert_int_equal(find_job(cfg, "own")->scrape_timeout_ns, 30 * SEC);
    assert_int_equal(find_job(cfg, "slow")->sample_limit, 1000);
    assert_int_equal(find_job(cfg, "own")->sample_limit, 7);
    assert_int_equal(find_job(cfg, "fast")->body_size_limit, 1 << 20);
    ingest_scrape_config_free(cfg);
}

static void bearer_token_and_protocols(void **state)
{
    (void)state;
    ingest_scrape_config *cfg = load_ok("scrape_configs:\n"
                                        "  - job_name: a\n"
                                        "    bearer_token: abc\n"
                                        "    scrape_protocols: [PrometheusProto, "
                                        "PrometheusText0.0.4]\n"
                                        "    enable_compression: false\n");
    assert_string_equal(cfg->jobs[0].authorization_type, "Bearer");
    assert_string_equal(cfg->jobs[0].authorization_credentials, "abc");
    assert_int_equal(cfg->jobs[0].nscrape_protocols, 2);
    assert_string_equal(cfg->jobs[0].scrape_protocols[0], "PrometheusProto");
    assert_int_equal(cfg->jobs[0].enable_compression, 0);
    ingest_scrape_config_free(cfg);

    /* A global list is every job's default. */
    cfg = load_ok("global:\n  scrape_protocols: [PrometheusText0.0.4]\n"
                  "scrape_configs:\n  - job_name: a\n"
                  "  - job_name: b\n    scrape_protocols: [OpenMetricsText1.0.0]\n");
    assert_int_equal(cfg->jobs[0].nscrape_protocols, 1);
    assert_string_equal(cfg->jobs[0].scrape_protocols[0], "PrometheusText0.0.4");
    assert_string_equal(cfg->jobs[1].scrape_protocols[0], "OpenMetricsText1.0.0");
    ingest_scrape_config_free(cfg);
}

typedef struct error_case {
    const char *yaml;
    const char *error;
} error_case;

static const error_case errors[] = {
    { "scrape_configs:\n  - job_name: a\n    scrape_intervl: 1s\n",
      "t.yml:3:5: unknown key 'scrape_intervl', did you mean scrape_interval?" },
    { "scrape_configs:\n  - job_name: a\n    static_config: []\n",
      "t.yml:3:5: unknown key 'static_config', did you mean static_configs?" },
    { "global:\n  scrape_interval: 1s\n  external_label: {a: b}\n",
      "t.yml:3:3: unknown key 'external_label', did you mean external_labels?" },
    { "scrape_configs:\n  - static_configs: []\n", "t.yml:2:5: job_name: job_name is empty" },
    { "scrape_configs:\n  - job_name: a\n    scheme: ftp\n",
      "t.yml:3:13: scheme: expected http or https, got 'ftp'" },
    { "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs: [{role: pod}]\n",
      "t.yml:3:5: kubernetes_sd_configs: not supported by ndtpipe (see docs/CONFIGURATION.md)" },
    { "scrape_configs:\n  - job_name: a\n    tls_config:\n      min_version: TLS12\n",
      "t.yml:4:7: min_version: not supported by ndtpipe (see docs/CONFIGURATION.md)" },
    { "global:\n  metric_name_validation_scheme: utf8\n",
      "t.yml:2:3: metric_name_validation_scheme: not supported by ndtpipe (see "
      "docs/CONFIGURATION.md)" },
    { "scrape_config_files: [a.yml]\n",
      "t.yml:1:1: scrape_config_files: not supported by ndtpipe: put the scrape configs in this "
      "file (see docs/CONFIGURATION.md)" },
    { "scrape_configs:\n  - job_name: a\n    basic_auth:\n      password: x\n"
      "      password_file: f\n",
      "t.yml:5:22: basic_auth: at most one of basic_auth password & password_file must be "
      "configured" },
    { "scrape_configs:\n  - job_name: a\n    basic_auth:\n      password_file: /nonexistent/pw\n",
      "t.yml:4:22: password_file: /nonexistent/pw: cannot open: No such file or directory" },
    { "scrape_configs:\n  - job_name: a\n    authorization:\n      type: Basic\n",
      "t.yml:4:13: type: authorization type cannot be set to \"basic\", use \"basic_auth\" "
      "instead" },
    { "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    bearer_token: t\n",
      "t.yml:4:19: bearer_token: at most one of basic_auth, authorization & bearer_token(_file) "
      "must be configured" },
    { "scrape_configs:\n  - job_name: a\n    tls_config: {cert_file: c.pem}\n",
      "t.yml:3:29: tls_config: exactly one of key or key_file must be configured when a client "
      "certificate is configured" },
    { "scrape_configs:\n  - job_name: a\n    scrape_protocols: [OpenMetricsText1.0]\n",
      "t.yml:3:24: scrape_protocols: unknown scrape protocol 'OpenMetricsText1.0' (did you mean "
      "OpenMetricsText1.0.0?), supported: PrometheusProto, OpenMetricsText0.0.1, "
      "OpenMetricsText1.0.0, PrometheusText0.0.4, PrometheusText1.0.0" },
    { "scrape_configs:\n  - job_name: a\n    scrape_protocols: [PrometheusProto, "
      "PrometheusProto]\n",
      "t.yml:3:41: scrape_protocols: duplicated protocol in scrape_protocols, got "
      "PrometheusProto" },
    { "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [targets.txt]\n",
      "t.yml:4:17: files: path name 'targets.txt' is not valid for file discovery (a .json, .yml "
      "or .yaml file; '*' only in the last element)" },
    { "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['*/t.json']\n",
      "t.yml:4:17: files: path name '*/t.json' is not valid for file discovery (a .json, .yml "
      "or .yaml file; '*' only in the last element)" },
    { "scrape_configs:\n  - job_name: a\n    sample_limit: -5\n",
      "t.yml:3:19: sample_limit: expected a non-negative integer, got '-5'" },
    { "scrape_configs:\n  - job_name: a\n    body_size_limit: 10kB\n",
      "t.yml:3:22: body_size_limit: expected a size like 0, 512KiB or 10MB, got '10kB'" },
    { "scrape_configs:\n  - job_name: a\n    honor_labels: sometimes\n",
      "t.yml:3:19: honor_labels: expected true or false, got 'sometimes'" },
    { "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [h:1]\n"
      "        labels: {bad-name: x}\n",
      "t.yml:5:18: labels: 'bad-name' is not a valid label name" },
    { "scrape_configs:\n  - job_name: a\n    static_configs:\n      - target: [h:1]\n",
      "t.yml:4:9: unknown key 'target', did you mean targets?" },
    { "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['']\n",
      "t.yml:4:19: targets: no address (__address__ is empty after relabeling)" },
    { "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['::1:80']\n",
      "t.yml:4:19: targets: '::1:80' is not a valid target: IPv6 addresses need brackets, like "
      "[::1]:9100" },
    { "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - target_label: __address__\n"
      "        replacement: 'x/y:1'\n    static_configs:\n      - targets: [h:1]\n",
      "t.yml:7:19: targets: 'x/y:1' is not a valid target: expected host:port" },
    { "scrape_configs: {job_name: a}\n", "t.yml:1:17: scrape_configs: expected a list of scrape "
                                         "configs" },
    { "- a\n", "t.yml:1:1: expected a mapping with global and scrape_configs" },
    { "scrape_configs:\n  - job_name: a\n  - job_name: a\n",
      "t.yml:3:15: job_name: found multiple scrape configs with job name 'a'" },
    { "global:\n  scrape_interval: 1s\n  scrape_timeout: 2s\n",
      "t.yml:3:19: scrape_timeout: global scrape timeout greater than scrape interval" },
    { "scrape_configs:\n  - job_name: a\n    scrape_interval: 10ms\n    scrape_timeout: 11ms\n",
      "t.yml:4:21: scrape_timeout: scrape timeout 11ms greater than scrape interval 10ms for "
      "scrape config with job name 'a'" },
};

static void errors_name_file_line_column_and_key(void **state)
{
    (void)state;
    ndt_log_set_level(NDT_LOG_ERROR);
    for (size_t i = 0; i < NDT_ARRAY_LEN(errors); i++)
        expect_error(errors[i].yaml, errors[i].error);
}

/* The exact error of every configuration the manifest says ndtpipe refuses. */
static const struct {
    const char *file;
    const char *error;
} manifest_errors[] = {
    { "invalid-typo.yml", "6:5: unknown key 'scrape_intervl', did you mean scrape_interval?" },
    { "invalid-top-level-typo.yml", "1:1: unknown key 'scrape_config', did you mean "
                                    "scrape_configs?" },
    { "invalid-duplicate-job.yml", "5:15: job_name: found multiple scrape configs with job name "
                                   "'node'" },
    { "invalid-timeout.yml", "4:21: scrape_timeout: scrape timeout 2s greater than scrape "
                             "interval 1s for scrape config with job name 'slow'" },
    { "invalid-global-timeout.yml", "3:19: scrape_timeout: global scrape timeout greater than "
                                    "scrape interval" },
    { "invalid-duration.yml", "2:20: scrape_interval: expected a duration like 20ms, 15s or "
                              "1m30s, got '20 ms'" },
    { "invalid-hashmod.yml", "4:9: modulus: relabel configuration for hashmod requires non-zero "
                             "modulus" },
    { "invalid-action.yml", "5:17: action: unknown relabel action 'dorp', did you mean drop?" },
    { "invalid-labeldrop.yml", "6:17: action: labeldrop action requires only 'regex', and no "
                               "other fields" },
    { "invalid-target-url.yml", "4:19: targets: 'http://127.0.0.1:9100' is not a valid target: "
                                "expected host:port" },
    { "invalid-regex.yml", "5:16: regex: invalid regular expression '(foo': missing closing "
                           "parenthesis at offset 4" },
    { "invalid-target-port.yml", "6:19: targets: 'localhost:abc' is not a valid target: the "
                                 "port must be 1-65535" },
    { "unsupported-dns-sd.yml", "5:5: dns_sd_configs: not supported by ndtpipe (see "
                                "docs/CONFIGURATION.md)" },
    { "unsupported-oauth2.yml", "5:5: oauth2: not supported by ndtpipe (see "
                                "docs/CONFIGURATION.md)" },
    { "unsupported-kubernetes.yml", "4:5: kubernetes_sd_configs: not supported by ndtpipe (see "
                                    "docs/CONFIGURATION.md)" },
};

static void manifest_verdicts_hold(void **state)
{
    (void)state;
    ndt_log_set_level(NDT_LOG_ERROR);
    FILE *f = fopen(CONFIGS "MANIFEST", "r");
    assert_non_null(f);
    char line[512];
    size_t checked = 0, rejects = 0;
    while (fgets(line, sizeof(line), f)) {
        char file[128], verdict[16], path[256], err[NDT_ERRBUF_SIZE];
        if (line[0] == '#' || sscanf(line, "%127s %15s", file, verdict) != 2)
            continue;
        snprintf(path, sizeof(path), CONFIGS "%s", file);
        ingest_scrape_config *cfg = NULL;
        int rc = ingest_scrape_config_load(path, &cfg, err, sizeof(err));
        if (strcmp(verdict, "accept") == 0) {
            if (rc != NDT_OK)
                fail_msg("%s: refused: %s", file, err);
            for (size_t j = 0; j < cfg->njobs; j++) {
                size_t n, dropped;
                ingest_target_def *defs = discover(&cfg->jobs[j], &n, &dropped);
                ingest_target_defs_free(defs, n);
            }
            ingest_scrape_config_free(cfg);
        } else {
            if (rc == NDT_OK)
                fail_msg("%s: accepted", file);
            size_t k;
            for (k = 0; k < NDT_ARRAY_LEN(manifest_errors); k++)
                if (strcmp(manifest_errors[k].file, file) == 0)
                    break;
            if (k == NDT_ARRAY_LEN(manifest_errors))
                fail_msg("%s: no expected error in this test", file);
            char want[NDT_ERRBUF_SIZE];
            snprintf(want, sizeof(want), "%s:%s", path, manifest_errors[k].error);
            if (strcmp(err, want) != 0)
                fail_msg("want: %s\ngot:  %s", want, err);
            rejects++;
        }
        checked++;
    }
    fclose(f);
    assert_true(checked >= 19);
    assert_int_equal(rejects, NDT_ARRAY_LEN(manifest_errors));
}

/* ------------------------------------------------------------------ */
/* Discovery                                                           */
/* ------------------------------------------------------------------ */

static void target_labels_and_urls(void **state)
{
    (void)state;
    ingest_scrape_config *cfg = load_ok(
        "global:\n  scrape_interval: 10s\n"
        "scrape_configs:\n"
        "  - job_name: web\n"
        "    scheme: https\n"
        "    metrics_path: /a b/metrics\n"
        "    params:\n      module: [http_2xx, second]\n      'q x': ['a&b=c']\n"
        "    static_configs:\n"
        "      - targets: [host-a, 'host-b:8443', '[::1]']\n"
        "        labels: {zone: z1, job: custom}\n"
        "      - targets: ['host-c:1']\n"
        "        labels: {instance: named, __param_module: override, __scrape_interval__: 5s,\n"
        "                 __scrape_timeout__: 2s}\n");
    size_t n, dropped;
    ingest_target_def *d = discover(&cfg->jobs[0], &n, &dropped);
    assert_int_equal(n, 4);
    assert_int_equal(dropped, 0);
    char labels[512];

    /* No port: Prometheus 2.x adds the scheme's default port. */
    assert_string_equal(d[0].url, "https://host-a:443/a%20b/metrics"
                                  "?module=http_2xx&module=second&q+x=a%26b%3Dc");
    render_labels(&d[0].labels, labels, sizeof(labels));
    assert_string_equal(labels, "instance=host-a:443,job=custom,zone=z1"); /* group wins */
    assert_string_equal(d[0].instance, "host-a:443");
    assert_int_equal(d[0].interval_ns, 10 * SEC);
    assert_int_equal(d[0].timeout_ns, 10 * SEC);
    assert_ptr_equal(d[0].job, &cfg->jobs[0]);

    assert_string_equal(d[1].url, "https://host-b:8443/a%20b/metrics"
                                  "?module=http_2xx&module=second&q+x=a%26b%3Dc");
    assert_string_equal(d[2].url, "https://[::1]:443/a%20b/metrics"
                                  "?module=http_2xx&module=second&q+x=a%26b%3Dc");

    /* Group labels set __scrape_interval__ and __scrape_timeout__: they win
     * over the job's.  __param_module does not: Prometheus 2.x sets the
     * job's params over the group's labels. */
    assert_string_equal(d[3].url, "https://host-c:1/a%20b/metrics"
                                  "?module=http_2xx&module=second&q+x=a%26b%3Dc");
    render_labels(&d[3].labels, labels, sizeof(labels));
    assert_string_equal(labels, "instance=named,job=web");
    assert_string_equal(d[3].instance, "named");
    assert_int_equal(d[3].interval_ns, 5 * SEC);
    assert_int_equal(d[3].timeout_ns, 2 * SEC);
    ingest_target_defs_free(d, n);
    ingest_scrape_config_free(cfg);
}

static void relabeling_drops_and_rewrites_targets(void **state)
{
    (void)state;
    ingest_scrape_config *cfg = load_ok(
        "scrape_configs:\n"
        "  - job_name: j\n"
        "    static_configs:\n"
        "      - targets: ['a:1', 'b:1', 'c:1', 'a:1']\n"
        "        labels: {__meta_env: prod}\n"
        "      - targets: ['d:1']\n"
        "        labels: {__meta_env: dev}\n"
        "    relabel_configs:\n"
        "      - source_labels: [__meta_env]\n"
        "        regex: dev\n"
        "        action: drop\n"
        "      - source_labels: [__address__]\n"
        "        regex: 'b:1'\n"
        "        action: drop\n"
        "      - regex: __meta_(.*)\n"
        "        action: labelmap\n"
        "      - source_labels: [__address__]\n"
        "        regex: '(.*):1'\n"
        "        target_label: __address__\n"
        "        replacement: '${1}:9100'\n"
        "      - target_label: __metrics_path__\n"
        "        replacement: /federate\n"
        "      - target_label: __param_match\n"
        "        replacement: '{job=\"x\"}'\n");
    size_t n, dropped;
    ingest_target_def *d = discover(&cfg->jobs[0], &n, &dropped);
    assert_int_equal(dropped, 2);
    assert_int_equal(n, 2); /* the duplicate a:1 is kept once */
    char labels[512];
    render_labels(&d[0].labels, labels, sizeof(labels));
    assert_string_equal(labels, "env=prod,instance=a:9100,job=j");
    assert_string_equal(d[0].url, "http://a:9100/federate?match=%7Bjob%3D%22x%22%7D");
    assert_string_equal(d[1].instance, "c:9100");
    ingest_target_defs_free(d, n);
    ingest_scrape_config_free(cfg);
}

/* Like promtool, a static target that relabeling leaves invalid is a
 * configuration error; the same target from file_sd is skipped (see
 * file_sd_json_and_yaml), as Prometheus skips it at run time. */
static void invalid_static_target_after_relabeling(void **state)
{
    (void)state;
    expect_error("scrape_configs:\n"
                 "  - job_name: j\n"
                 "    static_configs:\n"
                 "      - targets: ['a:1', 'b:1']\n"
                 "    relabel_configs:\n"
                 "      - source_labels: [__address__]\n"
                 "        regex: 'b:1'\n"
                 "        target_label: __scrape_timeout__\n"
                 "        replacement: 1h\n",
                 "t.yml:4:26: targets: scrape timeout cannot be greater than scrape interval");
    expect_error("scrape_configs:\n"
                 "  - job_name: j\n"
                 "    static_configs:\n"
                 "      - targets: ['a:1']\n"
                 "    relabel_configs:\n"
                 "      - target_label: __scheme__\n"
                 "        replacement: ftp\n",
                 "t.yml:4:19: targets: invalid __scheme__ 'ftp' (expected http or https)");
}

/* Two ndtpipe instances sharing one target list by hashmod: every target
 * is scraped by exactly one of them. */
static void hashmod_shards_disjoint_and_complete(void **state)
{
    (void)state;
    enum { TARGETS = 200 };
    char *yaml = malloc(TARGETS * 32 + 1024);
    char *shard_ids[2][TARGETS];
    size_t counts[2];
    for (int shard = 0; shard < 2; shard++) {
        size_t used = (size_t)sprintf(yaml, "scrape_configs:\n  - job_name: sharded\n"
                                            "    static_configs:\n      - targets:\n");
        for (int i = 0; i < TARGETS; i++)
            used += (size_t)sprintf(yaml + used, "          - 10.1.%d.%d:9100\n", i / 250, i % 250);
        sprintf(yaml + used,
                "    relabel_configs:\n"
                "      - source_labels: [__address__]\n"
                "        modulus: 2\n"
                "        target_label: __tmp_hash\n"
                "        action: hashmod\n"
                "      - source_labels: [__tmp_hash]\n"
                "        regex: '%d'\n"
                "        action: keep\n",
                shard);
        ingest_scrape_config *cfg = load_ok(yaml);
        size_t n, dropped;
        ingest_target_def *d = discover(&cfg->jobs[0], &n, &dropped);
        assert_int_equal(n + dropped, TARGETS);
        counts[shard] = n;
        for (size_t i = 0; i < n; i++)
            shard_ids[shard][i] = strdup(d[i].instance);
        ingest_target_defs_free(d, n);
        ingest_scrape_config_free(cfg);
    }
    free(yaml);
    assert_int_equal(counts[0] + counts[1], TARGETS);
    /* Both shards get a fair share (binomial(200, 1/2): 70..130 is > 99.99%). */
    assert_true(counts[0] > 70 && counts[1] > 70);
    for (size_t i = 0; i < counts[0]; i++)
        for (size_t j = 0; j < counts[1]; j++)
            assert_string_not_equal(shard_ids[0][i], shard_ids[1][j]);
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < counts[s]; i++)
            free(shard_ids[s][i]);
}

/* Prometheus keeps one target per URL and label set; thousands of
 * targets, each listed twice (once in a group with an extra label). */
static void many_targets_deduplicated(void **state)
{
    (void)state;
    enum { TARGETS = 5000 };
    char *yaml = malloc(TARGETS * 3 * 32 + 1024);
    size_t used = (size_t)sprintf(yaml, "scrape_configs:\n  - job_name: many\n"
                                        "    static_configs:\n");
    for (int copy = 0; copy < 3; copy++) {
        used += (size_t)sprintf(yaml + used, "      - targets:\n");
        for (int i = 0; i < TARGETS; i++)
            used += (size_t)sprintf(yaml + used, "          - h%d:%d\n", i, 1000 + i % 7);
        if (copy == 2)
            used += (size_t)sprintf(yaml + used, "        labels: {extra: x}\n");
    }
    ingest_scrape_config *cfg = load_ok(yaml);
    free(yaml);
    size_t n, dropped;
    ingest_target_def *d = discover(&cfg->jobs[0], &n, &dropped);
    assert_int_equal(n, 2 * TARGETS); /* copies 0 and 1 are identical */
    assert_int_equal(dropped, 0);
    assert_string_equal(d[0].url, "http://h0:1000/metrics");
    assert_string_equal(d[TARGETS].url, "http://h0:1000/metrics");
    assert_int_equal(d[TARGETS].labels.n, 3); /* extra, instance, job */
    ingest_target_defs_free(d, n);
    ingest_scrape_config_free(cfg);
}

static void target_limit_fails_discovery(void **state)
{
    (void)state;
    ingest_scrape_config *cfg = load_ok("scrape_configs:\n"
                                        "  - job_name: j\n"
                                        "    target_limit: 2\n"
                                        "    static_configs:\n"
                                        "      - targets: ['a:1', 'b:1', 'c:1']\n");
    ingest_target_def *d = NULL;
    size_t n = 99;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ingest_job_discover(&cfg->jobs[0], &d, &n, NULL, err, sizeof(err)),
                     NDT_ERROR);
    assert_null(d);
    assert_int_equal(n, 0);
    assert_string_equal(err, "job j: target_limit exceeded (number of targets: 3, limit: 2)");
    ingest_scrape_config_free(cfg);
}

/* file_sd: a private directory with a config and JSON / YAML files. */
typedef struct sd_dir {
    char root[256];
} sd_dir;

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void sd_dir_make(sd_dir *d)
{
    snprintf(d->root, sizeof(d->root), "%s/ndt-sd.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(d->root));
    char sub[300];
    snprintf(sub, sizeof(sub), "%s/sd", d->root);
    assert_int_equal(mkdir(sub, 0700), 0);
}

static void sd_dir_remove(sd_dir *d)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->root);
    assert_int_equal(system(cmd), 0);
}

static const char sd_config[] = "scrape_configs:\n"
                                "  - job_name: sd\n"
                                "    file_sd_configs:\n"
                                "      - files: ['sd/*.json', 'sd/*.yaml']\n"
                                "    relabel_configs:\n"
                                "      - source_labels: [__meta_filepath]\n"
                                "        regex: '.*/sd/(.*)'\n"
                                "        target_label: file\n"
                                "      - source_labels: [role]\n"
                                "        regex: off\n"
                                "        action: drop\n";

static ingest_scrape_config *sd_load(sd_dir *d)
{
    char path[300], err[NDT_ERRBUF_SIZE];
    ingest_scrape_config *cfg = NULL;
    write_file(d->root, "prometheus.yml", sd_config);
    snprintf(path, sizeof(path), "%s/prometheus.yml", d->root);
    if (ingest_scrape_config_load(path, &cfg, err, sizeof(err)) != NDT_OK)
        fail_msg("%s", err);
    return cfg;
}

static void file_sd_json_and_yaml(void **state)
{
    (void)state;
    sd_dir d;
    sd_dir_make(&d);
    char sd[300];
    snprintf(sd, sizeof(sd), "%s/sd", d.root);
    write_file(sd, "a.json",
               "[{\"targets\": [\"10.0.0.1:9100\", \"10.0.0.2:9100\"], \"labels\": {\"role\": "
               "\"db\"}},\n {\"targets\": [\"10.0.0.3:9100\"], \"labels\": {\"role\": \"off\"}},\n"
               " {\"targets\": [\"10.0.0.4:9100\"]},\n"
               " {\"targets\": [\"10.0.0.5:1\"], \"labels\": {\"__scheme__\": \"ftp\"}}]\n");
    write_file(sd, "b.yaml", "- targets: ['10.0.1.1:8080']\n  labels:\n    role: web\n");
    write_file(sd, "ignored.txt", "not a target file");
    ingest_scrape_config *cfg = sd_load(&d);

    size_t n, dropped;
    ingest_target_def *defs = discover(&cfg->jobs[0], &n, &dropped);
    assert_int_equal(n, 4);
    assert_int_equal(dropped, 1);
    char labels[512];
    render_labels(&defs[0].labels, labels, sizeof(labels));
    assert_string_equal(labels, "file=a.json,instance=10.0.0.1:9100,job=sd,role=db");
    render_labels(&defs[2].labels, labels, sizeof(labels));
    assert_string_equal(labels, "file=a.json,instance=10.0.0.4:9100,job=sd");
    render_labels(&defs[3].labels, labels, sizeof(labels));
    assert_string_equal(labels, "file=b.yaml,instance=10.0.1.1:8080,job=sd,role=web");
    ingest_target_defs_free(defs, n);

    /* A broken file fails discovery with its name and position. */
    char err[NDT_ERRBUF_SIZE], want[NDT_ERRBUF_SIZE];
    write_file(sd, "a.json", "[{\"targets\": [\"10.0.0.1:9100\",]}]\n");
    ingest_target_def *none = NULL;
    assert_int_equal(ingest_job_discover(&cfg->jobs[0], &none, &n, &dropped, err, sizeof(err)),
                     NDT_ERROR);
    snprintf(want, sizeof(want), "%s/sd/a.json:1:31: invalid JSON", d.root);
    assert_string_equal(err, want);
    write_file(sd, "a.json", "[]");
    write_file(sd, "b.yaml", "- targets: ['x:1']\n  lables: {a: b}\n");
    assert_int_equal(ingest_job_discover(&cfg->jobs[0], &none, &n, &dropped, err, sizeof(err)),
                     NDT_ERROR);
    snprintf(want, sizeof(want), "%s/sd/b.yaml:2:3: unknown key 'lables', did you mean labels?",
             d.root);
    assert_string_equal(err, want);
    write_file(sd, "b.yaml", "{targets: []}\n");
    assert_int_equal(ingest_job_discover(&cfg->jobs[0], &none, &n, &dropped, err, sizeof(err)),
                     NDT_ERROR);
    snprintf(want, sizeof(want), "%s/sd/b.yaml:1:1: expected a list of target groups", d.root);
    assert_string_equal(err, want);

    /* Empty files and no matches are simply no targets. */
    write_file(sd, "b.yaml", "");
    defs = discover(&cfg->jobs[0], &n, &dropped);
    assert_int_equal(n, 0);
    ingest_target_defs_free(defs, n);
    ingest_scrape_config_free(cfg);
    sd_dir_remove(&d);
}

static void help_lists_every_key(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ingest_scrape_config_print_help(f);
    fclose(f);
    static const char *const keys[] = {
        "scrape_interval", "scrape_timeout", "external_labels", "job_name", "metrics_path",
        "scheme", "params", "honor_labels", "honor_timestamps", "basic_auth", "authorization",
        "tls_config", "proxy_url", "follow_redirects", "enable_compression", "static_configs",
        "file_sd_configs", "relabel_configs", "metric_relabel_configs", "sample_limit",
        "label_limit", "label_name_length_limit", "label_value_length_limit", "target_limit",
        "body_size_limit", "scrape_protocols",
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(keys); i++)
        if (!strstr(text, keys[i]))
            fail_msg("help lacks %s:\n%s", keys[i], text);
    assert_non_null(strstr(text, "(default 20ms)"));
    assert_non_null(strstr(text, "(default /metrics)"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(realistic_prometheus_yml_loads),
        cmocka_unit_test(ignored_sections_warn_once_each),
        cmocka_unit_test(defaults_without_global),
        cmocka_unit_test(timeout_inheritance_like_prometheus),
        cmocka_unit_test(bearer_token_and_protocols),
        cmocka_unit_test(errors_name_file_line_column_and_key),
        cmocka_unit_test(manifest_verdicts_hold),
        cmocka_unit_test(target_labels_and_urls),
        cmocka_unit_test(relabeling_drops_and_rewrites_targets),
        cmocka_unit_test(invalid_static_target_after_relabeling),
        cmocka_unit_test(hashmod_shards_disjoint_and_complete),
        cmocka_unit_test(many_targets_deduplicated),
        cmocka_unit_test(target_limit_fails_discovery),
        cmocka_unit_test(file_sd_json_and_yaml),
        cmocka_unit_test(help_lists_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
