/*
 * rules.h: the mapping rules of the Harmonization Data Layer, internal to
 * harmonize/.
 *
 * A rule file (sdm-schemas/mapping/testbed.yaml; the language is in its top
 * comment and docs/DATA-MODEL.md) is loaded once into this compiled form:
 * regexes compiled by PCRE2 (fully anchored, JIT), id templates split into
 * literal and label segments, each attribute given a slot number within its
 * entity type so an entity keeps its attributes in a flat array.  A
 * `divide_by` becomes a hidden rule of its own (HDL_RULE_DIVISOR) that
 * stores the divisor's latest value in a slot of the same entity, so the
 * engine needs no second lookup path for divisors.  A `transform:
 * native_histogram` rule is expanded the same way: the rule outputs
 * <attribute>_sum and copies of it (borrowing its selectors and template)
 * output _count, _mean and one _pNN per quantile, each with its own slot.
 *
 * Errors name the file, line and column of the offending node
 * ("testbed.yaml:41:5: transform: expected identity, rate or info").
 * The rules are immutable after loading and may be shared by readers.
 */
#ifndef HDL_RULES_H
#define HDL_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "common/ndt.h"

typedef enum hdl_match_kind {
    HDL_MATCH_ANY = 0,     /* ".*" */
    HDL_MATCH_NONEMPTY,    /* ".+" */
    HDL_MATCH_LITERAL,     /* no metacharacter: plain equality */
    HDL_MATCH_REGEX,
} hdl_match_kind;

typedef struct hdl_matcher {
    char *label;
    char *text;            /* the literal, or the regex as written */
    hdl_match_kind kind;
    void *re;              /* pcre2_code * for HDL_MATCH_REGEX */
} hdl_matcher;

typedef struct hdl_derive {
    char *label;
    char *from;
    char *replacement;
    void *re;              /* pcre2_code *, fully anchored */
} hdl_derive;

typedef struct hdl_fixed_label {
    char *name;
    char *value;
} hdl_fixed_label;

/* A template "urn:ngsi-ld:T:{a}.{b}": segments alternate literal / label. */
typedef struct hdl_segment {
    char *text;
    int is_label;
} hdl_segment;

typedef struct hdl_template {
    hdl_segment *segs;
    size_t nsegs;
} hdl_template;

typedef enum hdl_rule_kind {
    HDL_RULE_ATTRIBUTE = 0,
    HDL_RULE_RELATIONSHIP,
    HDL_RULE_DIVISOR,      /* hidden: the divisor of another rule */
} hdl_rule_kind;

typedef enum hdl_transform {
    HDL_TRANSFORM_IDENTITY = 0,
    HDL_TRANSFORM_RATE,
    HDL_TRANSFORM_INFO,
    HDL_TRANSFORM_NATIVE_HISTOGRAM,
} hdl_transform;

/* What one rule of a native_histogram expansion outputs. */
typedef enum hdl_histogram_output {
    HDL_HISTOGRAM_SUM = 0,
    HDL_HISTOGRAM_COUNT,
    HDL_HISTOGRAM_MEAN,
    HDL_HISTOGRAM_QUANTILE,
} hdl_histogram_output;

#define HDL_RULES_MAX_QUANTILES 16

typedef struct hdl_value_map {
    char *label;
    char **from;
    char **to;
    size_t n;
} hdl_value_map;

typedef struct hdl_rule {
    hdl_rule_kind kind;
    int line;                  /* 1-based, for messages */
    char *metric;
    hdl_matcher *match;
    size_t nmatch;
    hdl_derive *derive;
    size_t nderive;
    hdl_fixed_label *labels;
    size_t nlabels;
    /* attribute and divisor rules */
    size_t type;               /* index into hdl_rules.types */
    hdl_template id;
    char *attribute;           /* divisor: "__divisor" */
    char *unit_code;           /* NULL when the attribute has none */
    hdl_transform transform;
    int aggregate_sum;
    long divisor;              /* index of the divisor rule, -1 if none */
    double scale;              /* 1 unless given */
    double offset;
    double min, max;           /* clamp of the final value; -inf / +inf unless given */
    hdl_value_map value_map;   /* n == 0 when absent */
    char *value_from_label;
    size_t slot;               /* the attribute's slot within its type */
    /* transform: native_histogram */
    hdl_histogram_output histogram_output;
    double quantile;           /* HDL_HISTOGRAM_QUANTILE */
    int borrowed;              /* an expansion's copy: only attribute is its own */
    int histogram_interval;    /* window: interval (else cumulative) */
    size_t histogram_parent;   /* the expansion's first rule: keys the previous histogram */
    /* relationship rules */
    hdl_template subject;
    char *predicate;
    hdl_template object;
    size_t subject_type;
} hdl_rule;

typedef struct hdl_static_attr {
    char *name;
    char *value;
} hdl_static_attr;

typedef struct hdl_static_rel {
    char *predicate;
    char **objects;
    size_t nobjects;
    int is_list;               /* written as predicate_1..n in the UDR */
} hdl_static_rel;

typedef struct hdl_static_entity {
    char *id;
    size_t type;
    hdl_static_attr *attrs;
    size_t nattrs;
    hdl_static_rel *rels;
    size_t nrels;
} hdl_static_entity;

typedef struct hdl_type {
    char *name;
    size_t nslots;
} hdl_type;

typedef struct hdl_rules {
    char *path;
    hdl_rule *rules;
    size_t nrules;
    hdl_type *types;
    size_t ntypes;
    hdl_static_entity *statics;
    size_t nstatics;
} hdl_rules;

/* Loads and compiles a rule file; NDT_EBADCONF with "path:line:col: ..."
 * for anything wrong in it, NDT_ERROR when it cannot be read. */
int hdl_rules_load_file(hdl_rules *out, const char *path, char *err, size_t errlen);
/* Same from memory; name is used in messages. */
int hdl_rules_load_string(hdl_rules *out, const char *name, const char *text, size_t len,
                          char *err, size_t errlen);
void hdl_rules_free(hdl_rules *rules);

/* Does the rule's matchers accept this label value (absent = "")?  Shared
 * by the engine's hot path. */
int hdl_matcher_match(const hdl_matcher *m, ndt_str value, void *match_data);

#endif
