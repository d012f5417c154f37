/*
 * config_dump.c: loads a scrape configuration with ndtpipe's parser and
 * prints what discovery makes of it, for integration tests that hold
 * ndtpipe against Prometheus itself (15-config-promtool.sh).
 *
 *   config_dump FILE   exit 0: one JSON line per target
 *                        {"job":J,"url":U,"interval":I,"timeout":T,"labels":{...}}
 *                      and one per job {"job":J,"dropped":N};
 *                      exit 2: the configuration error on stderr;
 *                      exit 1: a discovery error on stderr.
 *
 * Built by the test itself against build/libndt.a, so it always matches
 * the code under test.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/config.h"
#include "common/log.h"
#include "ingest/scrape_config.h"

static void print_target(const ingest_target_def *d)
{
    cJSON *line = cJSON_CreateObject();
    cJSON *labels = cJSON_AddObjectToObject(line, "labels");
    cJSON_AddStringToObject(line, "job", d->job->job_name);
    char interval[32], timeout[32];
    ndt_duration_format(d->interval_ns, interval, sizeof(interval));
    ndt_duration_format(d->timeout_ns, timeout, sizeof(timeout));
    cJSON_AddStringToObject(line, "url", d->url);
    cJSON_AddStringToObject(line, "interval", interval);
    cJSON_AddStringToObject(line, "timeout", timeout);
    for (size_t i = 0; i < d->labels.n; i++)
        cJSON_AddStringToObject(labels, d->labels.labels[i].name.ptr,
                                d->labels.labels[i].value.ptr);
    char *text = cJSON_PrintUnformatted(line);
    puts(text);
    free(text);
    cJSON_Delete(line);
}

int main(int argc, char **argv)
{
    char err[1024];
    ingest_scrape_config *cfg;
    if (argc != 2) {
        fprintf(stderr, "usage: config_dump FILE\n");
        return 2;
    }
    ndt_log_set_level(NDT_LOG_ERROR);
    if (ingest_scrape_config_load(argv[1], &cfg, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    int rc = 0;
    for (size_t j = 0; j < cfg->njobs && rc == 0; j++) {
        ingest_target_def *defs;
        size_t n, dropped;
        if (ingest_job_discover(&cfg->jobs[j], &defs, &n, &dropped, err, sizeof(err)) != NDT_OK) {
            fprintf(stderr, "%s\n", err);
            rc = 1;
            break;
        }
        for (size_t i = 0; i < n; i++)
            print_target(&defs[i]);
        printf("{\"job\":\"%s\",\"dropped\":%zu}\n", cfg->jobs[j].job_name, dropped);
        ingest_target_defs_free(defs, n);
    }
    ingest_scrape_config_free(cfg);
    return rc;
}
