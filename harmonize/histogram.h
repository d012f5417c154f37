/*
 * histogram.h: the numbers a mapping rule draws from a native histogram
 * (transform: native_histogram), internal to harmonize/.
 *
 * Quantiles follow Prometheus's histogram_quantile() for native
 * histograms with exponential buckets (docs/DATA-MODEL.md):
 *   - buckets are walked in increasing value order (negative buckets from
 *     the most negative, the zero bucket, positive buckets) and the rank
 *     q x (sum of the bucket counts) is looked for in the running count;
 *   - inside a positive bucket i, which covers (base^(i-1), base^i] with
 *     base = 2^(2^-schema), the estimate is interpolated exponentially:
 *     lower x (upper / lower)^f, f the fraction of the bucket's count below
 *     the rank, as if the observations filled a finer histogram evenly;
 *     a negative bucket is the mirror image;
 *   - inside the zero bucket [-zero_threshold, zero_threshold] the
 *     interpolation is linear, and a side with no populated bucket ends
 *     at 0 (a histogram of latencies has no negative half);
 *   - q = 0 is the lowest populated bucket's lower bound, q = 1 the
 *     highest one's upper bound.
 * The result is NaN for an empty histogram, buckets not in increasing
 * index order or q outside [0, 1]; the caller counts it as a skipped value.
 */
#ifndef HDL_HISTOGRAM_H
#define HDL_HISTOGRAM_H

#include "harmonize/decode.h"

/* The upper bound base^index of bucket index at schema. */
double hdl_native_bucket_upper(int schema, int index);

/* The q-quantile estimate of h, see above. */
double hdl_native_quantile(const hdl_native_histogram *h, double q);

#endif
