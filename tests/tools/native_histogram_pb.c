/*
 * native_histogram_pb.c: writes a protobuf exposition (delimited
 * io.prometheus.client.MetricFamily) holding one histogram with both
 * native and classic buckets, to stdout.  No target on this machine
 * serves native histograms (Debian's Prometheus 2.42 and node-exporter
 * do not), so tests serve this body with test_target.
 *
 * The histogram: rpc_duration_seconds{service="api"}, count 14, sum 30.5,
 * schema 3, zero threshold 0.001 with 2 observations, positive spans
 * [offset 0, length 2] [offset 2, length 1] with deltas 3, -1, 4
 * (absolute 3, 2, 6 at indexes 0, 1, 4), negative span [offset -2,
 * length 1] with delta 1; classic buckets le 0.5 -> 5 and le 1 -> 9.
 * Packed with protobuf-c from ingest/metrics.proto.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ingest/metrics.pb-c.h"

int main(void)
{
    NdtPromexpo__BucketSpan pos[2] = { NDT_PROMEXPO__BUCKET_SPAN__INIT,
                                       NDT_PROMEXPO__BUCKET_SPAN__INIT };
    NdtPromexpo__BucketSpan *posp[2] = { &pos[0], &pos[1] };
    pos[0].has_offset = pos[0].has_length = 1;
    pos[0].offset = 0;
    pos[0].length = 2;
    pos[1].has_offset = pos[1].has_length = 1;
    pos[1].offset = 2;
    pos[1].length = 1;
    int64_t pos_delta[3] = { 3, -1, 4 };
    NdtPromexpo__BucketSpan neg = NDT_PROMEXPO__BUCKET_SPAN__INIT;
    NdtPromexpo__BucketSpan *negp[1] = { &neg };
    neg.has_offset = neg.has_length = 1;
    neg.offset = -2;
    neg.length = 1;
    int64_t neg_delta[1] = { 1 };
    NdtPromexpo__Bucket classic[2] = { NDT_PROMEXPO__BUCKET__INIT, NDT_PROMEXPO__BUCKET__INIT };
    NdtPromexpo__Bucket *classicp[2] = { &classic[0], &classic[1] };
    classic[0].has_upper_bound = classic[0].has_cumulative_count = 1;
    classic[0].upper_bound = 0.5;
    classic[0].cumulative_count = 5;
    classic[1].has_upper_bound = classic[1].has_cumulative_count = 1;
    classic[1].upper_bound = 1;
    classic[1].cumulative_count = 9;

    NdtPromexpo__Histogram h = NDT_PROMEXPO__HISTOGRAM__INIT;
    h.has_sample_count = h.has_sample_sum = h.has_schema = 1;
    h.has_zero_threshold = h.has_zero_count = 1;
    h.sample_count = 14;
    h.sample_sum = 30.5;
    h.schema = 3;
    h.zero_threshold = 0.001;
    h.zero_count = 2;
    h.n_positive_span = 2;
    h.positive_span = posp;
    h.n_positive_delta = 3;
    h.positive_delta = pos_delta;
    h.n_negative_span = 1;
    h.negative_span = negp;
    h.n_negative_delta = 1;
    h.negative_delta = neg_delta;
    h.n_bucket = 2;
    h.bucket = classicp;

    NdtPromexpo__LabelPair service = NDT_PROMEXPO__LABEL_PAIR__INIT;
    NdtPromexpo__LabelPair *labels[1] = { &service };
    service.name = "service";
    service.value = "api";
    NdtPromexpo__Metric m = NDT_PROMEXPO__METRIC__INIT;
    m.n_label = 1;
    m.label = labels;
    m.histogram = &h;
    NdtPromexpo__Metric *metrics[1] = { &m };
    NdtPromexpo__MetricFamily f = NDT_PROMEXPO__METRIC_FAMILY__INIT;
    f.name = "rpc_duration_seconds";
    f.help = "RPC latency.";
    f.has_type = 1;
    f.type = NDT_PROMEXPO__METRIC_TYPE__HISTOGRAM;
    f.n_metric = 1;
    f.metric = metrics;

    size_t n = ndt_promexpo__metric_family__get_packed_size(&f);
    uint8_t *buf = malloc(n);
    if (!buf)
        return 1;
    ndt_promexpo__metric_family__pack(&f, buf);
    /* The length prefix as a varint. */
    size_t v = n;
    do {
        unsigned char byte = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            byte |= 0x80;
        putchar(byte);
    } while (v);
    fwrite(buf, 1, n, stdout);
    free(buf);
    return fflush(stdout) == 0 ? 0 : 1;
}
