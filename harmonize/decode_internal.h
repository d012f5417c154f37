/*
 * decode_internal.h: what the three decoders of decode.h share (internal
 * to harmonize/).
 *
 * Each decoder is a function of the same shape as hdl_decode() for one
 * format.  They share the label bookkeeping: labels are collected into a
 * fixed array of HDL_DECODE_MAX_LABELS (on the caller's stack, so a
 * message can never make the decoder allocate per label), checked for
 * duplicates and sorted by name before the sample is handed out, because
 * decode.h promises sorted labels whatever order the producer used.
 */
#ifndef NDT_HARMONIZE_DECODE_INTERNAL_H
#define NDT_HARMONIZE_DECODE_INTERNAL_H

#include "harmonize/decode.h"

int hdl_decode_json(const char *msg, size_t len, hdl_sample_fn fn, void *ctx, char *err,
                    size_t errlen);
/* Unframed or Confluent-framed (magic 0, 4-byte schema id) TelemetryRaw. */
int hdl_decode_avro(const char *msg, size_t len, hdl_sample_fn fn, void *ctx, char *err,
                    size_t errlen);
int hdl_decode_influx(const char *msg, size_t len, hdl_sample_fn fn, void *ctx, char *err,
                      size_t errlen);

/* Whether msg is a complete TelemetryRaw record (unframed), checked
 * without delivering anything: hdl_decode_detect's question. */
int hdl_avro_is_record(const char *msg, size_t len);

/* Sorts labels by name (byte order) and refuses a repeated name:
 * NDT_EBADCONF with *repeated set to the index of the second copy (the
 * caller words the error, so the common path formats nothing).
 * Insertion sort: producers almost always send labels sorted already. */
int hdl_labels_sort(hdl_label *labels, size_t n, size_t *repeated);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t hdl_days_from_civil(int64_t year, int month, int day);

#endif
