/*
 * testbed_parse.c: the testbed's argument syntax: Prometheus durations
 * ("20ms", "30s", "1m30s"), integer lists ("200,400,600") and ranges
 * ("1-6", or one value "3").
 *
 * Durations are Prometheus's syntax through common/'s ndt_duration_parse,
 * so a campaign's --dwell reads like a scrape_interval.  Every parser
 * rejects trailing garbage, overflow and out-of-range values with a
 * sentence that quotes the input.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/ndt.h"
#include "testbed/testbed.h"

int testbed_parse_duration(const char *s, double *out_s, char *err, size_t errlen)
{
    int64_t ns;
    if (!s || ndt_duration_parse(s, &ns) != NDT_OK) {
        snprintf(err, errlen, "expected a duration like 20ms, 30s or 1m30s, got '%s'", s ? s : "");
        return NDT_ERROR;
    }
    *out_s = (double)ns / 1e9;
    return NDT_OK;
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
