/*
 * number.h: the number grammars of the exposition formats, shared by the
 * scraper's parsers (ingest/) and the harmonizer's json and influx decoders
 * (harmonize/), which read the same numbers back from Kafka.
 *
 * Sample values, `le`/`quantile` bounds, text timestamps and OpenMetrics
 * timestamps are parsed here from a (pointer, length) token that is not
 * NUL-terminated, because the parser never copies tokens out of the scrape
 * buffer.  The accepted grammar is the one Prometheus's Go text parser
 * accepts (strconv.ParseFloat minus hex and underscores), which is also
 * OpenMetrics' `number`: [+-] digits [. digits] [e [+-] digits], the
 * special values Inf/Infinity (optionally signed) and NaN (unsigned), all
 * case-insensitive.  Results are bit-exact with strtod: a fast path handles
 * the decimals that can be computed exactly in one IEEE operation
 * (Clinger's fast path: <= 19 significant digits that fit in 2^53 and a
 * power of ten <= 22), a second one on x86-64 the shortest round-trip
 * forms past it (<= 19 digits, power of ten <= 27, through the x87's
 * 64-bit significand, halfway cases excluded; see number.c),
 * everything else is validated here and then handed to strtod.
 */
#ifndef NDT_NUMBER_H
#define NDT_NUMBER_H

#include <stddef.h>
#include <stdint.h>

/* Parses a float token.  NDT_OK, or NDT_ERROR on a syntax error or a
 * finite value out of double range (Go's ErrRange; underflow to 0 or a
 * subnormal is accepted, as Go does). */
int ndt_number_parse_float(const char *s, size_t len, double *out);

/* Fast path for a value inside a line: parses the longest plain decimal
 * at s (before end) and returns where it stopped, or NULL if there is
 * none or it overflows.  The caller checks that it stopped at a separator
 * and otherwise falls back to ndt_number_parse_float on the whole
 * token (which also handles Inf and NaN and words the error). */
const char *ndt_number_scan_decimal(const char *s, const char *end, double *out);

/* Parses a base-10 int64 with optional sign; NDT_ERROR on syntax or overflow. */
int ndt_number_parse_int64(const char *s, size_t len, int64_t *out);

/* Parses an OpenMetrics timestamp (float seconds, no Inf/NaN) into
 * milliseconds, truncated toward zero.  Plain decimals are converted
 * exactly from their digits; exponent forms go through a double (as
 * Prometheus does).  NDT_ERROR on syntax or when out of int64 range. */
int ndt_number_parse_om_timestamp(const char *s, size_t len, int64_t *out_ms);

#endif
