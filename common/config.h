/*
 * config.h: YAML configuration with positions, and declarative option maps.
 *
 * ndt_yaml loads a whole YAML file (libyaml's document API) and keeps each
 * node's line and column, so every configuration error can name the file,
 * line and key ("prometheus.yml:12:5: scrape_interval: expected a duration
 * like 20ms, got '20 ms'"), which is what the contract's exit code 2 needs.
 *
 * ndt_confmap is Fluent Bit's config-map idea: a table declares each option
 * once (name, type, default, where it lands in a struct, description) and
 * the same table drives defaults, YAML decoding, flag overrides, unknown-key
 * errors and --help text.
 */
#ifndef NDT_CONFIG_H
#define NDT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <yaml.h>

typedef struct ndt_yaml {
    yaml_document_t doc;
    char *path;     /* for messages */
    int loaded;
} ndt_yaml;

/* Loads a file (at most 16 MiB); on a syntax error NDT_ERROR with
 * "path:line:col: reason". */
int ndt_yaml_load_file(ndt_yaml *y, const char *path, char *err, size_t errlen);
/* Same from memory (tests, inline configs); name is used in messages. */
int ndt_yaml_load_string(ndt_yaml *y, const char *name, const char *text, size_t len,
                         char *err, size_t errlen);
void ndt_yaml_free(ndt_yaml *y);

yaml_node_t *ndt_yaml_root(ndt_yaml *y);
/* Value node of key in a mapping node, or NULL. */
yaml_node_t *ndt_yaml_map_get(ndt_yaml *y, yaml_node_t *map, const char *key);
/* Scalar text (NUL-terminated) of a node, NULL if not a scalar. */
const char *ndt_yaml_scalar(yaml_node_t *node);
/* True for an explicit null (~, null, empty plain scalar). */
int ndt_yaml_is_null(yaml_node_t *node);

/* Mapping keys must be unique (as in Prometheus's strict YAML decoding):
 * NDT_ERROR naming the second occurrence of a repeated key. */
int ndt_yaml_check_unique_keys(ndt_yaml *y, yaml_node_t *map, char *err, size_t errlen);

/* Of candidates (n entries), the one closest to word by edit distance, if
 * close enough to be a likely typo; NULL otherwise.  For "did you mean". */
const char *ndt_config_closest(const char *word, const char *const *candidates, size_t n);

/* Formats "path:line:col: key: message" into err (1-based positions of
 * node).  key may be NULL.  Returns NDT_ERROR so callers can
 * `return ndt_yaml_error(...)`. */
int ndt_yaml_error(const ndt_yaml *y, const yaml_node_t *node, const char *key, char *err,
                   size_t errlen, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Prometheus durations: "20ms", "1m30s", "1h", units y w d h m s ms us/µs ns.
 * Out in nanoseconds.  NDT_ERROR on anything else (including a bare number). */
int ndt_duration_parse(const char *s, int64_t *out_ns);
/* Formats like Prometheus (e.g. 1m30s, 20ms) into buf. */
void ndt_duration_format(int64_t ns, char *buf, size_t size);
/* Sizes like Prometheus' body_size_limit: "10MB", "512KiB", "0" (bytes). */
int ndt_size_parse(const char *s, uint64_t *out);

typedef enum ndt_conf_type {
    NDT_CONF_STRING = 1, /* char *, malloc'ed */
    NDT_CONF_BOOL,       /* int */
    NDT_CONF_INT,        /* int64_t */
    NDT_CONF_DOUBLE,     /* double */
    NDT_CONF_DURATION,   /* int64_t nanoseconds */
    NDT_CONF_SIZE,       /* uint64_t bytes */
    NDT_CONF_UINT,       /* uint64_t, negative values rejected (Prometheus' limits) */
    NDT_CONF_EXTERNAL,   /* structured key the caller decodes itself: known to the
                            map (no unknown-key error, listed in help and in
                            "did you mean"), skipped by apply and set; offset unused */
} ndt_conf_type;

typedef struct ndt_conf_entry {
    const char *name;
    ndt_conf_type type;
    const char *default_value; /* textual, parsed like user input; NULL = zero */
    size_t offset;             /* offsetof the field in the target struct */
    const char *description;
} ndt_conf_entry;

/* Entries end with { NULL }. */
int ndt_confmap_set_defaults(const ndt_conf_entry *map, void *obj, char *err, size_t errlen);
/* Sets one option from text (a flag, or -o name=value). */
int ndt_confmap_set(const ndt_conf_entry *map, void *obj, const char *name, const char *value,
                    char *err, size_t errlen);
/* Applies a YAML mapping.  Keys not in the map are an error unless
 * is_known_elsewhere(key) says the caller handles them (may be NULL). */
int ndt_confmap_apply_yaml(const ndt_conf_entry *map, void *obj, ndt_yaml *y, yaml_node_t *mapping,
                           int (*is_known_elsewhere)(const char *key), char *err, size_t errlen);
/* Frees the strings the map owns in obj. */
void ndt_confmap_free(const ndt_conf_entry *map, void *obj);
/* "  name  type  (default X)  description" lines for --help and docs. */
void ndt_confmap_print_help(const ndt_conf_entry *map, FILE *out);

#endif
