/*
 * predictor_check.c: the served predictor against the training run.
 *
 *   predictor_check REGISTRY MODEL-ID PREDICTIONS.csv
 *
 * Loads the registered model with model_predictor_load (an XGBoost model
 * compiled into the flat tree layout, or a DNN), reads the feature columns
 * and model_output of the CSV `ndtpipe train --predictions` wrote (the
 * floats the model saw and its raw output, XGBoost's through its DMatrix
 * path, or the DNN's), predicts every row and compares the raw outputs.
 * Prints "rows=N mismatches=M max_abs_diff=D" (mismatch: more than
 * 1e-6 x max(1, |output|) apart: the CSV holds the output as a float, whose
 * rounding alone is up to half a float step); exit 0 when M is 0, 1 when it is not, 2 when the model does not
 * load (the reason on stderr, as `serve` would say it).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: predictor_check REGISTRY MODEL-ID PREDICTIONS.csv\n");
        return 2;
    }
    char err[NDT_ERRBUF_SIZE], line[8192];
    model_predictor *p;
    int rc = model_predictor_load(argv[1], argv[2], &p, err, sizeof(err));
    if (rc != NDT_OK) {
        fprintf(stderr, "predictor_check: %s\n", err);
        return rc == NDT_EBADCONF ? 2 : 1;
    }
    FILE *in = fopen(argv[3], "r");
    if (!in || !fgets(line, sizeof(line), in)) {
        perror(argv[3]);
        return 2;
    }
    size_t n = 0, mismatches = 0;
    double max_diff = 0;
    while (fgets(line, sizeof(line), in)) {
        double x[1][FEAT_DIM], y;
        char *q = line, *end;
        strtod(q, &end); /* timestamp_ms */
        for (int j = 0; j < FEAT_DIM; j++) {
            q = end + 1;
            x[0][j] = (double)strtof(q, &end);
        }
        q = end + 1;
        strtod(q, &end); /* observed_ms */
        q = end + 1;
        double want = strtod(q, &end); /* model_output */
        if (model_predictor_predict_log(p, (const double(*)[FEAT_DIM])x, 1, &y, err, sizeof(err)) != NDT_OK) {
            fprintf(stderr, "predictor_check: %s\n", err);
            return 1;
        }
        /* the raw output: what the model added to the baseline */
        double raw = y - feat_baseline_value(FEAT_BASELINE_NONE, x[0]);
        feat_baseline b;
        char kind[16];
        if (model_registry_meta(argv[1], argv[2], kind, sizeof(kind), &b, err, sizeof(err)) == NDT_OK)
            raw = y - feat_baseline_value(b, x[0]);
        double d = fabs(raw - want);
        mismatches += !(d <= 1e-6 * fmax(1.0, fabs(want)));
        max_diff = d > max_diff ? d : max_diff;
        n++;
    }
    fclose(in);
    printf("kind=%s rows=%zu mismatches=%zu max_abs_diff=%g\n", model_predictor_kind(p), n,
           mismatches, max_diff);
    model_predictor_free(p);
    return mismatches == 0 && n > 0 ? 0 : 1;
}
