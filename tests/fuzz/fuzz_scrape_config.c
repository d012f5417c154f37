/*
 * fuzz_scrape_config.c: libFuzzer target for the configuration path:
 * YAML loading, every scrape config key, and discovery of the loaded
 * jobs.  Any input must give NDT_OK or a clear error, never a crash or a
 * leak.  (Runs from an empty directory: file_sd patterns resolve there.)
 */
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "ingest/scrape_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[NDT_ERRBUF_SIZE];
    ingest_scrape_config *cfg;
    ndt_log_set_level(NDT_LOG_ERROR);
    if (ingest_scrape_config_load_string("fuzz.yml", (const char *)data, size, &cfg, err,
                                         sizeof(err)) != NDT_OK)
        return 0;
    for (size_t j = 0; j < cfg->njobs; j++) {
        ingest_target_def *defs;
        size_t n, dropped;
        if (ingest_job_discover(&cfg->jobs[j], &defs, &n, &dropped, err, sizeof(err)) == NDT_OK)
            ingest_target_defs_free(defs, n);
    }
    ingest_scrape_config_free(cfg);
    return 0;
}
