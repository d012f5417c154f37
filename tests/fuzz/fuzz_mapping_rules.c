/*
 * fuzz_mapping_rules.c: libFuzzer target for the HDL mapping rule loader
 * (harmonize/rules.c): any YAML must load or give a file:line:col error,
 * never a crash or a leak.  A file that loads is then exercised by the
 * engine with a few samples (templates, derives, divisors, value maps,
 * a native histogram for transform: native_histogram).
 *
 * fuzz-sources: common/arena.c common/buf.c common/config.c common/log.c harmonize/rules.c harmonize/engine.c harmonize/histogram.c
 * fuzz-seeds: sdm-schemas/mapping
 */
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "harmonize/engine.h"
#include "harmonize/rules.h"

static int ignore_points(void *ctx, const udr_point *p, size_t n)
{
    (void)ctx, (void)p, (void)n;
    return NDT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[NDT_ERRBUF_SIZE];
    hdl_rules rules;
    hdl_engine *engine;
    ndt_log_set_level(NDT_LOG_ERROR);
    if (hdl_rules_load_string(&rules, "fuzz.yaml", (const char *)data, size, err, sizeof(err)) !=
        NDT_OK)
        return 0;
    if (hdl_engine_new(&rules, NULL, &engine, err, sizeof(err)) == NDT_OK) {
        hdl_emit emit = { NULL, ignore_points, NULL, NULL };
        hdl_label labels[] = {
            { NDT_STR_LIT("container"), NDT_STR_LIT("c") },
            { NDT_STR_LIT("namespace"), NDT_STR_LIT("ndt") },
            { NDT_STR_LIT("node"), NDT_STR_LIT("w1") },
            { NDT_STR_LIT("pod"), NDT_STR_LIT("web-6d5f8c9b7-abcde") },
        };
        hdl_engine_start(engine, 0, &emit);
        for (size_t r = 0; r < rules.nrules; r++) {
            for (int k = 0; k < 3; k++) {
                static const hdl_native_bucket pos[] = { { -1, 2 }, { 0, 3 }, { 5, 1 } };
                static const hdl_native_bucket neg[] = { { 2, 1 } };
                static const hdl_native_histogram native = { 1, 0.01, 2, 9, 4.5, pos, 3, neg, 1 };
                hdl_sample s = { ndt_str_from_cstr(rules.rules[r].metric), labels, 4,
                                 k == 1 ? 0.5 : 1.0 + k, 1000 + k * 20, HDL_TYPE_UNKNOWN,
                                 k >= 1 ? &native : NULL };
                hdl_engine_feed(engine, &s, &emit);
            }
        }
        hdl_engine_finish(engine, 2000, &emit);
        hdl_engine_destroy(engine);
    }
    hdl_rules_free(&rules);
    return 0;
}
