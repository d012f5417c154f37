/*
 * fuzz_decode_json.c: libFuzzer target for the prometheus-kafka-adapter JSON reader (decode_json.c).
 * See fuzz_decode_common.h for what is checked.
 *
 * fuzz-sources: harmonize/decode*.c ingest/expo_number.c
 * fuzz-seeds: tests/fuzz/seeds-decode
 */
#include "fuzz_decode_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size, HDL_FORMAT_JSON);
    return 0;
}
