/*
 * fuzz_expo_openmetrics.c: libFuzzer target for the OpenMetrics 1.0
 * parser.  See fuzz_expo_common.h for what is checked.
 *
 * fuzz-sources: common/arena.c common/number.c ingest/expo*.c ingest/sample.c GEN/ingest/metrics.pb-c.c
 * fuzz-libs: -lprotobuf-c
 */
#include "fuzz_expo_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_expo(data, size, INGEST_EXPO_OPENMETRICS);
    return 0;
}
