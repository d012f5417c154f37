/*
 * fuzz_trees_json.c: the compiled tree predictor's reader of XGBoost JSON
 * models (slicing the "trees" array, per-tree parsing, shape and range
 * checks, both layouts) and a prediction with the result.  The first
 * byte picks the layout and whether the probe row has missing values.
 * Invariants: a failure always comes with a message; a compiled model
 * predicts without touching memory out of bounds (ASan) whatever the row.
 *
 * fuzz-sources: models/model_trees.c
 * fuzz-seeds: tests/fuzz/seeds-trees
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0] & 1 ? MODEL_TREES_SPARSE : (data[0] & 2 ? MODEL_TREES_SCALAR : 0);
    int missing = data[0] & 4;
    model_trees *t = NULL;
    char err[NDT_ERRBUF_SIZE] = "";
    int rc = model_trees_from_json((const char *)data + 1, size - 1, flags, &t, err, sizeof(err));
    if (rc != NDT_OK) {
        if (!err[0])
            abort();
        return 0;
    }
    int nf = model_trees_nfeatures(t);
    float *row = malloc((size_t)nf * sizeof(float));
    for (int j = 0; j < nf; j++)
        row[j] = missing && j % 2 ? NAN : (float)(j * 37 % 11) - 3.5f;
    volatile float sink = model_trees_predict_row(t, row);
    (void)sink;
    free(row);
    model_trees_free(t);
    return 0;
}
