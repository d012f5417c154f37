/*
 * fuzz_expo_text.c: libFuzzer target for the text format 0.0.4 parser.
 * See fuzz_expo_common.h for what is checked.
 *
 * fuzz-sources: common/arena.c common/number.c ingest/expo*.c ingest/sample.c GEN/ingest/metrics.pb-c.c
 * fuzz-libs: -lprotobuf-c
 */
#include "fuzz_expo_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_expo(data, size, INGEST_EXPO_TEXT);
    return 0;
}
