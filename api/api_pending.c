/*
 * api_pending.c: TEMPORARY stand-ins for two interfaces other branches
 * implement, so that the API builds and its tests run before they are
 * merged.  DELETE THIS FILE when merging branch `decode-export`
 * (features/feat_udr.c: feat_udr_latest) and branch `validate`
 * (models/model_whatif.c: model_counterfactual); their definitions
 * replace these (the linker reports the duplicates otherwise).
 *
 * feat_udr_latest here reads the layout of docs/DATA-MODEL.md in the
 * simplest way: the Service's currentUsers and readyReplicas, and the mean
 * over its pods (ServiceComponents whose `service` relationship points at
 * it) of the per-pod telemetry.
 */
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "features/features.h"
#include "udr/udr.h"

typedef struct pending_ctx {
    const char *service;
    feat_raw row;
    int found;
    size_t pods;
    double sum[6];
    char pod_ids[256][256];
    size_t npod_ids;
} pending_ctx;

static int pending_rel(void *ctx, const udr_relation *r)
{
    pending_ctx *c = ctx;
    if (strcmp(r->predicate, "service") == 0 && strcmp(r->object, c->service) == 0 && c->npod_ids < 256)
        snprintf(c->pod_ids[c->npod_ids++], 256, "%s", r->subject);
    return NDT_OK;
}

static double field(const udr_point *p, const char *name, int *have)
{
    for (size_t i = 0; i < p->nfields; i++)
        if (p->fields[i].kind == UDR_FIELD_DOUBLE && strcmp(p->fields[i].name, name) == 0) {
            *have = 1;
            return p->fields[i].number;
        }
    return 0;
}

static int pending_service(void *ctx, const udr_point *p)
{
    pending_ctx *c = ctx;
    if (strcmp(p->id, c->service) != 0)
        return NDT_OK;
    int users = 0, pods = 0;
    c->row.users = (int)field(p, "currentUsers", &users);
    c->row.pods = (int)field(p, "readyReplicas", &pods);
    c->row.timestamp_ms = p->ts_ms;
    c->found = users && pods;
    return NDT_OK;
}

static int pending_pod(void *ctx, const udr_point *p)
{
    static const char *const names[6] = { "avgDepthOnEnqueue", "avgBacklogEstimate", "processCpuUsage",
                                          "systemCpuUsage", "systemMemoryUsage", "avgInferenceTime" };
    pending_ctx *c = ctx;
    size_t k = 0;
    while (k < c->npod_ids && strcmp(c->pod_ids[k], p->id) != 0)
        k++;
    if (k == c->npod_ids)
        return NDT_OK;
    int have = 0;
    for (int i = 0; i < 6; i++)
        c->sum[i] += field(p, names[i], &have);
    if (have)
        c->pods++;
    if (p->ts_ms > c->row.timestamp_ms)
        c->row.timestamp_ms = p->ts_ms;
    return NDT_OK;
}

int feat_udr_latest(struct udr *u, const char *service_id, feat_raw *out, char *err, size_t errlen)
{
    static pending_ctx c; /* 64 kB of ids; the API calls this under its lock */
    memset(&c, 0, sizeof(c));
    c.service = service_id;
    if (!service_id) {
        snprintf(err, errlen, "feat_udr_latest stand-in: a service id is required");
        return NDT_EBADCONF;
    }
    if (udr_read_latest(u, "Service", pending_service, &c, err, errlen) != NDT_OK ||
        udr_read_relations(u, ndt_clock_real_ms(), pending_rel, &c, err, errlen) != NDT_OK ||
        udr_read_latest(u, "ServiceComponent", pending_pod, &c, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (!c.found || !c.pods)
        return NDT_AGAIN;
    c.row.depth = c.sum[0] / (double)c.pods;
    c.row.backlog_s = c.sum[1] / (double)c.pods;
    c.row.cpu_process = c.sum[2] / (double)c.pods;
    c.row.cpu_system = c.sum[3] / (double)c.pods;
    c.row.mem_system = c.sum[4] / (double)c.pods;
    c.row.infer_ms = c.sum[5] / (double)c.pods;
    *out = c.row;
    return NDT_OK;
}
