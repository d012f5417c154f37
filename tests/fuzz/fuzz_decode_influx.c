/*
 * fuzz_decode_influx.c: libFuzzer target for the line-protocol reader (decode_influx.c).
 * See fuzz_decode_common.h for what is checked.
 *
 * fuzz-sources: harmonize/decode*.c ingest/expo_number.c
 * fuzz-seeds: tests/fuzz/seeds-decode
 */
#include "fuzz_decode_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size, HDL_FORMAT_INFLUX);
    return 0;
}
