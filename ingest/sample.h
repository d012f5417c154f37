/*
 * sample.h: the in-memory shape of telemetry inside the ingest stage.
 *
 * Internal to ingest/.  Parsers (text, OpenMetrics, later protobuf and
 * remote-write) produce ingest_sample values that borrow from the input
 * buffer; the scraper turns them into ingest_series (final label set after
 * target labels and relabeling, __name__ first, other labels sorted by
 * name, as Prometheus stores them) collected in one ingest_batch per scrape;
 * the encoders and the Kafka sink consume a batch.  Nothing here owns
 * memory: everything points into the scrape buffer or the scrape arena,
 * and is valid until the arena is reset after the batch is published.
 */
#ifndef INGEST_SAMPLE_H
#define INGEST_SAMPLE_H

#include <stdint.h>

#include "common/ndt.h"

#define INGEST_NO_TIMESTAMP INT64_MIN

typedef enum ingest_metric_type {
    INGEST_TYPE_UNKNOWN = 0, /* no # TYPE line (text "untyped", OM "unknown") */
    INGEST_TYPE_COUNTER,
    INGEST_TYPE_GAUGE,
    INGEST_TYPE_HISTOGRAM,
    INGEST_TYPE_GAUGE_HISTOGRAM,
    INGEST_TYPE_SUMMARY,
    INGEST_TYPE_INFO,
    INGEST_TYPE_STATESET,
} ingest_metric_type;

const char *ingest_metric_type_name(ingest_metric_type type);

typedef struct ingest_label {
    ndt_str name;
    ndt_str value;
} ingest_label;

/* An OpenMetrics exemplar attached to a sample. */
typedef struct ingest_exemplar {
    const ingest_label *labels;
    size_t nlabels;
    double value;
    int64_t timestamp_ms; /* INGEST_NO_TIMESTAMP if absent */
} ingest_exemplar;

/* Native-histogram buckets of one side: absolute counts by bucket index
 * (bucket i covers (base^(i-1), base^i], base = 2^(2^-schema)), only the
 * buckets the target sent, in index order. */
typedef struct ingest_native_buckets {
    const int32_t *index;
    const double *count;
    size_t n;
} ingest_native_buckets;

/* A native (exponential) histogram as decoded from the protobuf
 * exposition: spans and deltas already expanded. */
typedef struct ingest_native_histogram {
    int32_t schema;
    double zero_threshold;
    double zero_count;
    double count;
    double sum;
    ingest_native_buckets positive;
    ingest_native_buckets negative;
} ingest_native_histogram;

/* One sample as read from an exposition: name and labels as written
 * (label values unescaped), the family it belongs to and its metadata. */
typedef struct ingest_sample {
    ndt_str name;            /* series name, e.g. foo_bucket */
    ndt_str family;          /* family name from # TYPE, or name if none */
    ingest_metric_type type; /* type of the family */
    ndt_str help;            /* raw HELP text of the family (escapes kept) */
    ndt_str unit;            /* OpenMetrics # UNIT, empty otherwise */
    const ingest_label *labels;
    size_t nlabels;
    double value;
    int64_t timestamp_ms;    /* INGEST_NO_TIMESTAMP if absent */
    const ingest_exemplar *exemplar; /* NULL if none */
    uint32_t line;           /* 1-based line (protobuf: metric family number) */
    /* Protobuf only: on a histogram's _count sample, the native histogram
     * the target sent with it (NULL otherwise). */
    const ingest_native_histogram *native;
} ingest_sample;

/* One series ready to publish: final labels including __name__ (first),
 * the rest sorted by name.  With inherits set, labels holds __name__ and
 * the series' own labels only, and the batch's common labels complete it
 * wherever it does not name them (ingest_series_full_labels): a scrape's
 * series are built that way, so that the target's labels are not copied
 * into every series only for the Avro encoder to leave them out again. */
typedef struct ingest_series {
    const ingest_label *labels;
    size_t nlabels;
    double value;
    int64_t timestamp_ms;    /* always set: the sample's or the scrape's */
    ingest_metric_type type;
    const ingest_native_histogram *native; /* on a histogram's _count, or NULL */
    int inherits;            /* labels lack the batch's common labels */
} ingest_series;

/* Everything one scrape (or one remote-write request) yields. */
typedef struct ingest_batch {
    ndt_str job;
    ndt_str instance;        /* Kafka message key */
    int64_t scrape_timestamp_ms;
    const ingest_series *series;
    size_t nseries;
    /* Labels most series share (a scrape's target and external labels),
     * sorted by name, none empty: the Avro encoder writes them once per
     * message instead of once per sample.  Only a hint: a series may
     * lack any of them or carry another value.  Entries that are the
     * same ingest_label strings a series holds (same pointers) are
     * recognised without comparing bytes. */
    const ingest_label *common;
    size_t ncommon;
} ingest_batch;

/* Byte-wise order of label names (ndt_str_cmp's), deciding on the first
 * byte inline: names that meet in a merge or a sortedness check mostly
 * differ there, and the memcmp call then costs more than the comparison
 * (it was 2.5 % of the scraper's CPU).  The same string (a series label
 * copied from the target's) is equal without looking at it. */
static inline int ingest_label_name_cmp(ndt_str a, ndt_str b)
{
    if (a.ptr == b.ptr && a.len == b.len)
        return 0;
    if (a.len && b.len && a.ptr[0] != b.ptr[0])
        return (unsigned char)a.ptr[0] < (unsigned char)b.ptr[0] ? -1 : 1;
    return ndt_str_cmp(a, b);
}

/* Merges two name-sorted label lists into out (room for nfirst +
 * nsecond); on equal names the label from `first` wins unless its value
 * is empty.  Returns the count, or SIZE_MAX when refuse_clash is set and a
 * name is in both lists with a non-empty value in `first`: for the
 * exposition merged with the target's labels that is a clash (honor_labels
 * or exported_<name> resolves it on the label-set path), while an empty
 * exposition value keeps the target's label whatever honor_labels says. */
size_t ingest_labels_merge(const ingest_label *first, size_t nfirst, const ingest_label *second,
                           size_t nsecond, int refuse_clash, ingest_label *out);

/* The full label set of a series that inherits the batch's common labels:
 * its own (labels[0] is __name__, the rest sorted) merged with common
 * (sorted), its own winning on equal names, into out, which has room for
 * s->nlabels + ncommon labels.  Returns the count. */
size_t ingest_series_full_labels(const ingest_series *s, const ingest_label *common,
                                 size_t ncommon, ingest_label *out);

/* The value of __name__ of a series (its first label by construction). */
static inline ndt_str ingest_series_name(const ingest_series *s)
{
    return s->nlabels ? s->labels[0].value : (ndt_str){ "", 0 };
}

#endif
