/*
 * xgb_predict_dense.c: XGBoost's own prediction path, as a referee.
 *
 *   xgb_predict_dense MODEL.ubj PREDICTIONS.csv NFEATURES
 *
 * Loads MODEL.ubj into a fresh booster, reads the feature columns
 * (columns 2..NFEATURES+1) and ndtpipe's model_output column (the one
 * after observed_ms: XGBoost's output before any baseline is added) of the
 * CSV written by `ndtpipe train --predictions`,
 * predicts with XGBoosterPredictFromDense (a different C API path from
 * ndtpipe's DMatrix one) and compares the two as floats.  Prints
 * "rows=N mismatches=M max_abs_diff=D"; exit 0 only when M is 0.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xgboost/c_api.h>

#define MAX_ROWS 2000000
#define MAX_FEATURES 64

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: xgb_predict_dense MODEL.ubj PREDICTIONS.csv NFEATURES\n");
        return 2;
    }
    int nf = atoi(argv[3]);
    if (nf < 1 || nf > MAX_FEATURES)
        return 2;
    FILE *in = fopen(argv[2], "r");
    if (!in) {
        perror(argv[2]);
        return 2;
    }
    float *x = malloc((size_t)MAX_ROWS * nf * sizeof(float));
    float *want = malloc(MAX_ROWS * sizeof(float));
    char line[8192];
    size_t n = 0;
    if (!x || !want || !fgets(line, sizeof(line), in))
        return 2;
    while (n < MAX_ROWS && fgets(line, sizeof(line), in)) {
        char *p = line, *end;
        strtod(p, &end); /* timestamp */
        for (int j = 0; j < nf; j++) {
            p = end + 1;
            x[n * nf + j] = strtof(p, &end);
        }
        p = end + 1;
        strtod(p, &end); /* observed_ms */
        p = end + 1;
        want[n] = strtof(p, &end);
        n++;
    }
    fclose(in);

    BoosterHandle b;
    if (XGBoosterCreate(NULL, 0, &b) != 0 || XGBoosterLoadModel(b, argv[1]) != 0 ||
        XGBoosterSetParam(b, "nthread", "1") != 0) {
        fprintf(stderr, "load: %s\n", XGBGetLastError());
        return 1;
    }
    char iface[256];
    snprintf(iface, sizeof(iface),
             "{\"data\":[%llu,true],\"shape\":[%zu,%d],\"typestr\":\"<f4\",\"version\":3}",
             (unsigned long long)(uintptr_t)x, n, nf);
    const char *config = "{\"type\":0,\"cache_id\":0,\"training\":false,\"iteration_begin\":0,"
                         "\"iteration_end\":0,\"strict_shape\":false,\"missing\":NaN}";
    const bst_ulong *shape;
    bst_ulong dim;
    const float *out;
    if (XGBoosterPredictFromDense(b, iface, config, NULL, &shape, &dim, &out) != 0) {
        fprintf(stderr, "predict: %s\n", XGBGetLastError());
        return 1;
    }
    size_t mismatches = 0;
    double max_diff = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)out[i] - (double)want[i]);
        if (out[i] != want[i])
            mismatches++;
        if (d > max_diff)
            max_diff = d;
    }
    printf("rows=%zu mismatches=%zu max_abs_diff=%g\n", n, mismatches, max_diff);
    XGBoosterFree(b);
    free(x);
    free(want);
    return mismatches == 0 && n > 0 ? 0 : 1;
}
