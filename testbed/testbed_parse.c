/*
 * testbed_parse.c: the testbed's argument syntax: Prometheus durations
 * ("20ms", "30s", "1m30s"), integer lists ("200,400,600") and ranges
 * ("1-6", or one value "3").
 *
 * testbed_parse_duration() is deliberately the only place that knows the
 * duration syntax: when common/ grows ndt_duration_parse() it becomes a
 * one-line wrapper around it.  Every parser rejects trailing garbage,
 * overflow and out-of-range values with a sentence that quotes the input.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ndt.h"
#include "testbed/testbed.h"

/* Units in the order Prometheus requires them (largest first). */
static const struct {
    const char *suffix;
    double seconds;
} testbed_units[] = {
    { "y", 365 * 86400.0 }, { "w", 7 * 86400.0 }, { "d", 86400.0 }, { "h", 3600.0 },
    { "ms", 0.001 },        { "m", 60.0 },        { "s", 1.0 },
};

static int testbed_unit_at(const char *p, size_t *len, int *order)
{
    for (size_t i = 0; i < NDT_ARRAY_LEN(testbed_units); i++) {
        size_t n = strlen(testbed_units[i].suffix);
        if (strncmp(p, testbed_units[i].suffix, n) == 0) {
            *len = n;
            *order = (int)i;
            return NDT_OK;
        }
    }
    return NDT_ERROR;
}

/* Order used to enforce "1m30s" and refuse "30s1m" (ms sorts between h and m
 * in the table above only for matching; its rank is below s). */
static int testbed_unit_rank(int order)
{
    static const int rank[] = { 0, 1, 2, 3, 6, 4, 5 };
    return rank[order];
}

int testbed_parse_duration(const char *s, double *out_s, char *err, size_t errlen)
{
    const char *p = s;
    double total = 0;
    int last_rank = -1;
    if (!s || !*s)
        goto bad;
    while (*p) {
        if (*p < '0' || *p > '9')
            goto bad;
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || v > 1000000000ULL)
            goto bad;
        size_t ulen;
        int order;
        if (testbed_unit_at(end, &ulen, &order) != NDT_OK)
            goto bad;
        int rank = testbed_unit_rank(order);
        if (rank <= last_rank)
            goto bad;
        last_rank = rank;
        total += (double)v * testbed_units[order].seconds;
        p = end + ulen;
    }
    *out_s = total;
    return NDT_OK;
bad:
    snprintf(err, errlen, "expected a duration like 20ms, 30s or 1m30s, got '%s'", s ? s : "");
    return NDT_ERROR;
}

static int testbed_parse_int(const char *s, const char *end_expected, int *out, int min, int max)
{
    if (*s < '0' || *s > '9')
        return NDT_ERROR;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || end != end_expected || v < min || v > max)
        return NDT_ERROR;
    *out = (int)v;
    return NDT_OK;
}

int testbed_parse_int_list(const char *s, int *out, size_t cap, size_t *n, int min, int max,
                           char *err, size_t errlen)
{
    *n = 0;
    const char *p = s;
    if (!s || !*s) {
        snprintf(err, errlen, "expected a comma-separated list like 200,400,600, got an empty one");
        return NDT_ERROR;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        int v;
        if (*n == cap) {
            snprintf(err, errlen, "at most %zu values, got more in '%s'", cap, s);
            return NDT_ERROR;
        }
        if (testbed_parse_int(p, end, &v, min, max) != NDT_OK) {
            snprintf(err, errlen, "expected integers %d..%d separated by commas, got '%s'", min,
                     max, s);
            return NDT_ERROR;
        }
        out[(*n)++] = v;
        if (!comma)
            return NDT_OK;
        p = comma + 1;
    }
}

int testbed_parse_range(const char *s, int *lo, int *hi, int min, int max, char *err,
                        size_t errlen)
{
    const char *dash = s ? strchr(s, '-') : NULL;
    int ok;
    if (!s || !*s)
        ok = 0;
    else if (dash)
        ok = testbed_parse_int(s, dash, lo, min, max) == NDT_OK &&
             testbed_parse_int(dash + 1, dash + 1 + strlen(dash + 1), hi, min, max) == NDT_OK &&
             *lo <= *hi;
    else
        ok = testbed_parse_int(s, s + strlen(s), lo, min, max) == NDT_OK && (*hi = *lo, 1);
    if (ok)
        return NDT_OK;
    snprintf(err, errlen, "expected a range like 1-6 (within %d..%d), got '%s'", min, max,
             s ? s : "");
    return NDT_ERROR;
}
