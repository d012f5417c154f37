/*
 * remote_write.c: snappy + protobuf-c decoding of remote-write requests,
 * see remote_write.h.
 *
 * protobuf-c is given an allocator over the request's arena: unpacking a
 * WriteRequest makes many small allocations (one per label and sample
 * message) and all of them die together when the request is answered.
 * Labels are not copied: ingest_label views point at the strings protobuf-c
 * unpacked into the arena.
 */
#include "ingest/remote_write.h"

#include <snappy-c.h>
#include <stdio.h>
#include <string.h>

#include "common/ndt.h"
#include "ingest/remote.pb-c.h"

static void *arena_pb_alloc(void *data, size_t size) { return ndt_arena_alloc(data, size); }

static void arena_pb_free(void *data, void *ptr)
{
    NDT_UNUSED(data);
    NDT_UNUSED(ptr); /* freed with the arena */
}

static int name_cmp(ndt_str a, ndt_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* The series' labels in ingest's layout; NULL when out of memory, and
 * *named = 0 when there is no __name__ (such a series is skipped). */
static ingest_label *layout_labels(const NdtPrompb__TimeSeries *ts, ndt_arena *arena, size_t *n,
                                   int *named)
{
    ingest_label *labels = ndt_arena_alloc(arena, (ts->n_labels + 1) * sizeof(*labels));
    if (!labels)
        return NULL;
    size_t count = 1;
    *named = 0;
    for (size_t i = 0; i < ts->n_labels; i++) {
        ndt_str name = ndt_str_from_cstr(ts->labels[i]->name);
        ndt_str value = ndt_str_from_cstr(ts->labels[i]->value);
        if (ndt_str_eq_cstr(name, "__name__")) {
            labels[0].name = name;
            labels[0].value = value;
            *named = value.len > 0;
            continue;
        }
        if (!value.len)
            continue; /* an empty label is no label */
        /* Senders sort labels already; insertion keeps that cheap and
         * tolerates those that do not. */
        size_t j = count++;
        while (j > 1 && name_cmp(labels[j - 1].name, name) > 0) {
            labels[j] = labels[j - 1];
            j--;
        }
        labels[j].name = name;
        labels[j].value = value;
    }
    *n = count;
    return labels;
}

static int convert(const NdtPrompb__WriteRequest *req, ndt_arena *arena, ingest_rw_request *out)
{
    size_t total = 0;
    for (size_t i = 0; i < req->n_timeseries; i++)
        total += req->timeseries[i]->n_samples;
    out->series = ndt_arena_alloc(arena, (total ? total : 1) * sizeof(*out->series));
    if (!out->series)
        return NDT_ERROR;
    for (size_t i = 0; i < req->n_timeseries; i++) {
        const NdtPrompb__TimeSeries *ts = req->timeseries[i];
        size_t nlabels = 0;
        int named = 0;
        out->histograms_skipped += ts->n_histograms;
        ingest_label *labels = layout_labels(ts, arena, &nlabels, &named);
        if (!labels)
            return NDT_ERROR;
        if (!named) {
            out->unnamed_skipped += ts->n_samples;
            continue;
        }
        for (size_t k = 0; k < ts->n_samples; k++) {
            ingest_series *s = &out->series[out->nseries++];
            s->labels = labels;
            s->nlabels = nlabels;
            s->value = ts->samples[k]->value;
            s->timestamp_ms = ts->samples[k]->timestamp;
            s->type = INGEST_TYPE_UNKNOWN;
        }
    }
    out->ntimeseries = req->n_timeseries;
    return NDT_OK;
}

int ingest_rw_decode(const char *body, size_t len, size_t max_decoded, ndt_arena *arena,
                     ingest_rw_request *out, char *err, size_t errlen)
{
    size_t decoded_len = 0;
    memset(out, 0, sizeof(*out));
    if (snappy_uncompressed_length(body, len, &decoded_len) != SNAPPY_OK) {
        snprintf(err, errlen, "body is not snappy-compressed (block format)");
        return NDT_ERROR;
    }
    if (decoded_len > max_decoded) {
        snprintf(err, errlen, "decompressed body of %zu bytes exceeds the limit of %zu", decoded_len,
                 max_decoded);
        return NDT_ERROR;
    }
    char *decoded = ndt_arena_alloc(arena, decoded_len ? decoded_len : 1);
    if (!decoded) {
        snprintf(err, errlen, "request too large for this receiver's memory limit");
        return NDT_ERROR;
    }
    size_t got = decoded_len;
    if (snappy_uncompress(body, len, decoded, &got) != SNAPPY_OK || got != decoded_len) {
        snprintf(err, errlen, "corrupt snappy data");
        return NDT_ERROR;
    }
    ProtobufCAllocator allocator = { arena_pb_alloc, arena_pb_free, arena };
    NdtPrompb__WriteRequest *req =
        ndt_prompb__write_request__unpack(&allocator, got, (const uint8_t *)decoded);
    if (!req) {
        snprintf(err, errlen, "body is not a valid remote-write WriteRequest (protobuf)");
        return NDT_ERROR;
    }
    if (convert(req, arena, out) != NDT_OK) {
        snprintf(err, errlen, "request too large for this receiver's memory limit");
        return NDT_ERROR;
    }
    return NDT_OK;
}
