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

size_t ingest_labels_merge(const ingest_label *first, size_t nfirst, const ingest_label *second,
                           size_t nsecond, int refuse_clash, ingest_label *out)
{
    size_t i = 0, j = 0, n = 0;
    while (i < nfirst || j < nsecond) {
        int c = i == nfirst    ? 1
                : j == nsecond ? -1
                               : ingest_label_name_cmp(first[i].name, second[j].name);
        if (c < 0) {
            out[n++] = first[i++];
        } else if (c > 0) {
            out[n++] = second[j++];
        } else {
            if (refuse_clash && first[i].value.len)
                return SIZE_MAX;
            out[n++] = first[i].value.len ? first[i] : second[j];
            i++;
            j++;
        }
    }
    return n;
}

/* An inheriting series' own labels are never empty, so "own wins unless
 * empty" is "own wins". */
size_t ingest_series_full_labels(const ingest_series *s, const ingest_label *common,
                                 size_t ncommon, ingest_label *out)
{
    if (!s->nlabels)
        return ingest_labels_merge(NULL, 0, common, ncommon, 0, out);
    out[0] = s->labels[0]; /* __name__ */
    return 1 + ingest_labels_merge(s->labels + 1, s->nlabels - 1, common, ncommon, 0, out + 1);
}
