/*
 * histogram.c: quantile estimates of native histograms, see histogram.h.
 *
 * The walk goes upwards only (Prometheus switches to a downward walk for
 * q >= 0.5 to lose less to rounding near the top; with the counts a scrape
 * carries, both walks find the same bucket and fraction).  Bucket bounds
 * come from exp2(index x 2^-schema), exact for the powers of two every
 * schema shares and within an ulp otherwise.  Nothing is allocated: the
 * decoder bounds the buckets (HDL_DECODE_MAX_NATIVE_BUCKETS per side).
 */
#include <math.h>

#include "harmonize/histogram.h"

double hdl_native_bucket_upper(int schema, int index)
{
    return exp2((double)index * exp2(-(double)schema));
}

/* The sum of a side's counts; NaN unless the indexes increase (the
 * exposition's spans produce them in order; a message from elsewhere may
 * not, and a walk over unordered buckets would estimate nonsense). */
static double bucket_total(const hdl_native_bucket *b, size_t n)
{
    double t = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && b[i].index <= b[i - 1].index)
            return NAN;
        if (b[i].count > 0)
            t += b[i].count;
    }
    return t;
}

/* The fraction of a bucket of count c under the rank, given the running
 * count below the bucket. */
static double fraction(double rank, double below, double c)
{
    double f = (rank - below) / c;
    return f < 0 ? 0 : f > 1 ? 1 : f;
}

/* Exponential interpolation between two bounds of one sign. */
static double exp_interpolate(double lower, double upper, double f)
{
    double sign = lower < 0 ? -1 : 1, a = fabs(lower), b = fabs(upper);
    return sign * exp2(log2(a) + (log2(b) - log2(a)) * f);
}

/* Whether a side's lowest populated bucket (in magnitude) lies at or
 * above the zero threshold; a side with no populated bucket does. */
static int side_clear_of_zero(int schema, double zero_threshold, const hdl_native_bucket *b,
                              size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (b[k].count > 0)
            return hdl_native_bucket_upper(schema, b[k].index - 1) >= zero_threshold;
    }
    return 1;
}

/* Whether the histogram is one a quantile can be read from: a schema of
 * the exposition ([-4, 8]), a finite zero threshold that lies below every
 * populated bucket of both sides (as the exposition requires; a message
 * from elsewhere may break it, and the estimate would then not grow with
 * q). */
static int well_formed(const hdl_native_histogram *h)
{
    if (h->schema < -4 || h->schema > 8 || !(h->zero_threshold >= 0) ||
        !isfinite(h->zero_threshold))
        return 0;
    return side_clear_of_zero(h->schema, h->zero_threshold, h->positive, h->npositive) &&
           side_clear_of_zero(h->schema, h->zero_threshold, h->negative, h->nnegative);
}

double hdl_native_quantile(const hdl_native_histogram *h, double q)
{
    if (!h || !(q >= 0 && q <= 1) || !well_formed(h))
        return NAN;
    double neg = bucket_total(h->negative, h->nnegative);
    double pos = bucket_total(h->positive, h->npositive);
    double zero = h->zero_count > 0 ? h->zero_count : 0;
    double total = neg + zero + pos;
    if (!(total > 0) || !isfinite(total))
        return NAN;
    double rank = q * total, running = 0;
    /* Negative buckets, most negative first: index i covers
     * [-base^i, -base^(i-1)), so the highest index comes first. */
    for (size_t k = h->nnegative; k-- > 0;) {
        double c = h->negative[k].count;
        if (!(c > 0))
            continue;
        if (running + c >= rank) {
            double lower = -hdl_native_bucket_upper(h->schema, h->negative[k].index);
            double upper = -hdl_native_bucket_upper(h->schema, h->negative[k].index - 1);
            return exp_interpolate(lower, upper, fraction(rank, running, c));
        }
        running += c;
    }
    if (zero > 0 && (running + zero >= rank || !(pos > 0))) {
        double lower = neg > 0 ? -h->zero_threshold : 0;
        double upper = pos > 0 ? h->zero_threshold : 0;
        return lower + (upper - lower) * fraction(rank, running, zero);
    }
    running += zero;
    double last = NAN;
    for (size_t k = 0; k < h->npositive; k++) {
        double c = h->positive[k].count;
        if (!(c > 0))
            continue;
        double lower = hdl_native_bucket_upper(h->schema, h->positive[k].index - 1);
        double upper = hdl_native_bucket_upper(h->schema, h->positive[k].index);
        if (running + c >= rank)
            return exp_interpolate(lower, upper, fraction(rank, running, c));
        running += c;
        last = upper;
    }
    return last; /* rounding left the rank above the last bucket */
}
