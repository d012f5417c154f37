/*
 * sample.c: the few functions behind sample.h's plain data types.
 */
#include "ingest/sample.h"

const char *ingest_metric_type_name(ingest_metric_type type)
{
    switch (type) {
    case INGEST_TYPE_COUNTER: return "counter";
    case INGEST_TYPE_GAUGE: return "gauge";
    case INGEST_TYPE_HISTOGRAM: return "histogram";
    case INGEST_TYPE_GAUGE_HISTOGRAM: return "gaugehistogram";
    case INGEST_TYPE_SUMMARY: return "summary";
    case INGEST_TYPE_INFO: return "info";
    case INGEST_TYPE_STATESET: return "stateset";
    case INGEST_TYPE_UNKNOWN: break;
    }
    return "unknown";
}

size_t ingest_series_full_labels(const ingest_series *s, const ingest_label *common,
                                 size_t ncommon, ingest_label *out)
{
    size_t i = 1, j = 0, n = 0;
    if (s->nlabels)
        out[n++] = s->labels[0]; /* __name__ */
    while (i < s->nlabels || j < ncommon) {
        int c = i == s->nlabels ? 1 : j == ncommon ? -1 : ndt_str_cmp(s->labels[i].name, common[j].name);
        if (c <= 0) {
            out[n++] = s->labels[i++];
            j += c == 0;
        } else {
            out[n++] = common[j++];
        }
    }
    return n;
}
