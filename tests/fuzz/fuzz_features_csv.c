/*
 * fuzz_features_csv.c: the dataset CSV reader and everything downstream
 * of it that sees user bytes: reading, per-regime trimming (both modes),
 * regime grouping, the feature vector and the features CSV writer.
 * Invariants checked: a reader success means every row has pods >= 1 and
 * finite values (so every feature and the target are finite); trimming
 * never grows the dataset; an error always comes with a message.
 *
 * fuzz-sources: features/feat_csv.c features/feat_compute.c
 * fuzz-seeds: tests/fuzz/seeds-features
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/features.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536)
        return 0;
    FILE *in = fmemopen((void *)data, size, "r");
    if (!in)
        return 0;
    feat_dataset ds;
    char err[NDT_ERRBUF_SIZE] = "";
    int rc = feat_csv_read_stream(in, "fuzz.csv", 1000, &ds, err, sizeof(err));
    fclose(in);
    if (rc != NDT_OK) {
        if (!err[0])
            abort();
        return 0;
    }
    for (size_t i = 0; i < ds.n; i++) {
        double x[FEAT_DIM];
        if (ds.rows[i].pods < 1)
            abort();
        feat_compute(&ds.rows[i], x);
        for (int j = 0; j < FEAT_DIM; j++)
            if (!isfinite(x[j]))
                abort();
        if (!isfinite(feat_target(ds.rows[i].infer_ms)))
            abort();
    }
    feat_regime *reg;
    size_t nreg;
    if (feat_regimes(&ds, &reg, &nreg, err, sizeof(err)) == NDT_OK)
        free(reg);
    FILE *out = fopen("/dev/null", "w");
    if (out) {
        feat_csv_write(&ds, out, err, sizeof(err));
        fclose(out);
    }
    size_t n = ds.n, dropped;
    if (feat_trim(&ds, (size % 2) ? FEAT_TRIM_IQR : FEAT_TRIM_P1P99, &dropped, err, sizeof(err)) == NDT_OK &&
        (ds.n > n || ds.n + dropped != n))
        abort();
    feat_dataset_free(&ds);
    return 0;
}
