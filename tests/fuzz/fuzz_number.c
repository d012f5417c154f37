/*
 * fuzz_number.c: differential fuzzing of the number parser against
 * strtod.  Whenever ndt_number_parse_float accepts a token, strtod must
 * read the whole token to the same bits (NaN aside); the fast path may
 * never disagree with the slow one, nor the in-line prefix scanner with
 * the whole-token parser.  Tokens strtod reads but we reject
 * (hex, "nan(...)", leading blanks) are fine: the grammar is Go's.
 *
 * fuzz-sources: common/number.c
 * fuzz-seeds: none
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/ndt.h"
#include "common/number.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 200)
        return 0;
    char tok[201];
    memcpy(tok, data, size);
    tok[size] = '\0';
    if (strlen(tok) != size)
        return 0;
    double got;
    if (ndt_number_parse_float(tok, size, &got) == NDT_OK) {
        char *end;
        double want = strtod(tok, &end);
        if (end != tok + size)
            abort();
        if (!(isnan(want) && isnan(got)) && memcmp(&want, &got, sizeof(got)) != 0)
            abort();
    }
    /* The in-line fast path agrees with the whole-token parser. */
    double prefix;
    const char *stop = ndt_number_scan_decimal(tok, tok + size, &prefix);
    if (stop) {
        double whole;
        if (ndt_number_parse_float(tok, (size_t)(stop - tok), &whole) != NDT_OK ||
            memcmp(&whole, &prefix, sizeof(whole)) != 0)
            abort();
    }
    int64_t ms;
    (void)ndt_number_parse_om_timestamp(tok, size, &ms);
    (void)ndt_number_parse_int64(tok, size, &ms);
    return 0;
}
