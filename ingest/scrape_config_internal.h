/*
 * scrape_config_internal.h: helpers scrape_config.c shares with
 * discovery.c (static target groups and file_sd files are decoded by the
 * same code, so both report errors the same way).  Not for other modules.
 */
#ifndef INGEST_SCRAPE_CONFIG_INTERNAL_H
#define INGEST_SCRAPE_CONFIG_INTERNAL_H

#include <stddef.h>

#include "common/config.h"
#include "ingest/scrape_config.h"

size_t ingest_scrape_seq_len(yaml_node_t *seq);
yaml_node_t *ingest_scrape_seq_item(ndt_yaml *y, yaml_node_t *seq, size_t i);

/* Appends copies of name and value (not necessarily NUL-terminated). */
int ingest_scrape_owned_labels_add(ingest_owned_labels *ol, ndt_str name, ndt_str value);
void ingest_scrape_owned_labels_free(ingest_owned_labels *ol);
/* A YAML mapping of label names to string values; key names the section
 * in errors. */
int ingest_scrape_labels_from_yaml(ndt_yaml *y, yaml_node_t *map, const char *key,
                                   ingest_owned_labels *out, char *err, size_t errlen);

/* path joined to dir unless absolute; malloc'ed, NULL when out of memory. */
char *ingest_scrape_resolve_path(const char *dir, const char *path);

/* host:port, [v6]:port or a bare host; why says what is wrong. */
int ingest_scrape_check_address(const char *addr, char *why, size_t whylen);

/* One {targets, labels} group; source is kept for messages. */
int ingest_scrape_target_group_from_yaml(ndt_yaml *y, yaml_node_t *node, const char *source,
                                         ingest_target_group *g, char *err, size_t errlen);
void ingest_scrape_target_group_free(ingest_target_group *g);

/* Runs one target of g through discovery (labels, relabel_configs,
 * checks): NDT_OK when it is kept or dropped, NDT_AGAIN with the reason
 * in why when what is left is not a valid target, NDT_ERROR when out of
 * memory. */
int ingest_discovery_check_target(const ingest_job *job, const ingest_target_group *g,
                                  const char *addr, char *why, size_t whylen);

#endif
