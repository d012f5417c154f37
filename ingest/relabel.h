/*
 * relabel.h: Prometheus relabeling (relabel_configs and
 * metric_relabel_configs), internal to ingest/.
 *
 * Semantics follow Prometheus exactly: source_labels joined with separator
 * (default ";"), regex fully anchored (default "(.*)"), actions replace
 * (default), keep, drop, keepequal, dropequal, hashmod (md5 of the joined
 * value, last 8 bytes big-endian, modulo), labelmap, labeldrop, labelkeep,
 * lowercase, uppercase; target_label and replacement with $1 / ${1} /
 * ${name} expansion; a replace whose result is empty deletes the label.
 * Regexes are PCRE2 (JIT), which accepts the RE2 syntax Prometheus users
 * write; the few RE2-only constructs that PCRE2 reads differently are
 * listed in docs/CONFIGURATION.md.
 *
 * Label sets are kept sorted by name, so lookups are binary searches and
 * the result is already in the order the encoders publish.
 */
#ifndef INGEST_RELABEL_H
#define INGEST_RELABEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/config.h"
#include "ingest/sample.h"

typedef enum ingest_relabel_action {
    INGEST_RELABEL_REPLACE = 0,
    INGEST_RELABEL_KEEP,
    INGEST_RELABEL_DROP,
    INGEST_RELABEL_KEEPEQUAL,
    INGEST_RELABEL_DROPEQUAL,
    INGEST_RELABEL_HASHMOD,
    INGEST_RELABEL_LABELMAP,
    INGEST_RELABEL_LABELDROP,
    INGEST_RELABEL_LABELKEEP,
    INGEST_RELABEL_LOWERCASE,
    INGEST_RELABEL_UPPERCASE,
} ingest_relabel_action;

typedef struct ingest_relabel_rule ingest_relabel_rule; /* opaque: compiled regex inside */

typedef struct ingest_relabel_rules {
    ingest_relabel_rule *rules;
    size_t n;
} ingest_relabel_rules;

/* Parses a YAML sequence of relabel configs (key names as in Prometheus);
 * errors name file, line and key. */
int ingest_relabel_rules_from_yaml(ndt_yaml *y, yaml_node_t *seq, ingest_relabel_rules *out,
                                   char *err, size_t errlen);
void ingest_relabel_rules_free(ingest_relabel_rules *rules);

/* A mutable label set, sorted by name; strings are borrowed or come from
 * the arena. */
typedef struct ingest_labelset {
    ingest_label *labels;
    size_t n;
    size_t cap;
    ndt_arena *arena; /* where new strings and a grown array come from */
} ingest_labelset;

void ingest_labelset_init(ingest_labelset *ls, ndt_arena *arena);
/* Sets (adds or replaces) name=value, keeping order; an empty value
 * deletes.  NDT_ERROR when the arena is exhausted. */
int ingest_labelset_set(ingest_labelset *ls, ndt_str name, ndt_str value);
const ingest_label *ingest_labelset_get(const ingest_labelset *ls, ndt_str name);
void ingest_labelset_del(ingest_labelset *ls, ndt_str name);
/* Sorts labels added out of order with ingest_labelset_append. */
int ingest_labelset_append(ingest_labelset *ls, ndt_str name, ndt_str value);
void ingest_labelset_sort(ingest_labelset *ls);

/* Prometheus's label name syntax: [a-zA-Z_][a-zA-Z0-9_]*. */
int ingest_label_name_valid(ndt_str name);

/* Applies the rules in order.  *keep becomes 0 when a rule drops the set
 * (the set's content is then unspecified).  NDT_ERROR only when the arena
 * is exhausted.  New strings come from the set's arena, literal
 * target_label / replacement values are borrowed from the rules: the
 * rules must outlive the set.  One thread at a time per rules object
 * (each rule keeps its own PCRE2 match data). */
int ingest_relabel_apply(const ingest_relabel_rules *rules, ingest_labelset *ls, int *keep);

/* Matches abandoned at the backtracking limit so far (each counted as
 * "no match"); the scraper exports it as a counter. */
uint64_t ingest_relabel_match_errors(const ingest_relabel_rules *rules);

#endif
