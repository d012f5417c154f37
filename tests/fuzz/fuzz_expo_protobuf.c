/*
 * fuzz_expo_protobuf.c: libFuzzer target for the protobuf exposition
 * parser (ingest/expo_proto.c); fuzz_expo_common.h says what is checked.
 * The seed is a real node-exporter protobuf scrape (cpu, meminfo and
 * loadavg collectors of Debian's prometheus-node-exporter).
 *
 * fuzz-sources: common/arena.c common/number.c ingest/expo*.c ingest/sample.c GEN/ingest/metrics.pb-c.c
 * fuzz-libs: -lprotobuf-c
 * fuzz-seeds: tests/fuzz/seeds-protobuf
 */
#include "fuzz_expo_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_expo(data, size, INGEST_EXPO_PROTOBUF);
    return 0;
}
