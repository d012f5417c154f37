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
