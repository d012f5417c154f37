/*
 * test_harmonize.c: the HDL mapping engine driven with samples directly
 * (rates with resets, aggregate, divide_by, scale, value_map, info,
 * relationships changing over time with their validity in a real SQLite
 * UDR, twin-state transitions, rule-file errors with file:line:col), then
 * with the testbed's own exposition and the kube-state-metrics fixture
 * parsed by the ingest parser, against the real rule file
 * sdm-schemas/mapping/testbed.yaml.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/buf.h"
#include "harmonize/engine.h"
#include "harmonize/rules.h"
#include "harmonize/decode.h"
#include "ingest/expo.h"
#include "ingest/sink.h"
#include "testbed/testbed.h"
#include "udr/udr.h"

#define RULES_PATH "sdm-schemas/mapping/testbed.yaml"
#define MAX_FRAGMENTS 256

/* What the engine emitted, kept for assertions. */
typedef struct sink {
    char points[65536];       /* "Type id@ts name=value ...;" */
    char relations[8192];     /* "subject predicate object @from;" */
    char *ids[MAX_FRAGMENTS]; /* latest fragment per entity */
    char *json[MAX_FRAGMENTS];
    size_t nfragments;
    udr *u;                   /* optional: relations also go to a real UDR */
} sink;

static int sink_points(void *ctx, const udr_point *p, size_t n)
{
    sink *s = ctx;
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(s->points);
        used += (size_t)snprintf(s->points + used, sizeof(s->points) - used, "%s %s@%lld",
                                 p[i].type, p[i].id, (long long)p[i].ts_ms);
        for (size_t j = 0; j < p[i].nfields; j++) {
            const udr_field *f = &p[i].fields[j];
            if (f->kind == UDR_FIELD_STRING)
                used += (size_t)snprintf(s->points + used, sizeof(s->points) - used, " %s=%s",
                                         f->name, f->text);
            else
                used += (size_t)snprintf(s->points + used, sizeof(s->points) - used, " %s=%.6g",
                                         f->name, f->number);
        }
        snprintf(s->points + used, sizeof(s->points) - used, ";");
    }
    return NDT_OK;
}

static int sink_relation(void *ctx, const udr_relation *r)
{
    sink *s = ctx;
    size_t used = strlen(s->relations);
    snprintf(s->relations + used, sizeof(s->relations) - used, "%s %s %s @%lld;", r->subject,
             r->predicate, r->object, (long long)r->valid_from_ms);
    if (s->u) {
        char err[NDT_ERRBUF_SIZE];
        return udr_write_relation(s->u, r, err, sizeof(err));
    }
    return NDT_OK;
}

static int sink_entity(void *ctx, const char *id, const char *json, size_t len)
{
    sink *s = ctx;
    size_t i;
    for (i = 0; i < s->nfragments && strcmp(s->ids[i], id) != 0; i++)
        ;
    if (i == s->nfragments) {
        assert_true(s->nfragments < MAX_FRAGMENTS);
        s->ids[s->nfragments++] = strdup(id);
    } else {
        free(s->json[i]);
    }
    s->json[i] = strndup(json, len);
    /* Every fragment is JSON a consumer can parse. */
    cJSON *doc = cJSON_Parse(s->json[i]);
    assert_non_null(doc);
    cJSON_Delete(doc);
    return NDT_OK;
}

static void sink_reset(sink *s)
{
    for (size_t i = 0; i < s->nfragments; i++) {
        free(s->ids[i]);
        free(s->json[i]);
    }
    udr *u = s->u;
    memset(s, 0, sizeof(*s));
    s->u = u;
}

static hdl_emit emit_to(sink *s)
{
    hdl_emit e = { s, sink_points, sink_relation, sink_entity };
    return e;
}

/* The fragment of id as parsed JSON (caller deletes), or NULL. */
static cJSON *fragment(const sink *s, const char *id)
{
    for (size_t i = 0; i < s->nfragments; i++)
        if (strcmp(s->ids[i], id) == 0)
            return cJSON_Parse(s->json[i]);
    return NULL;
}

static double property_number(const sink *s, const char *id, const char *attr)
{
    cJSON *doc = fragment(s, id);
    if (!doc)
        return NAN;
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, attr), "value");
    double out = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(doc);
    return out;
}

/* Does the point "id@ts" carry field=value? */
static int point_has(const sink *s, const char *id_at, const char *field)
{
    char key[512], want[256];
    snprintf(key, sizeof(key), " %s ", id_at);
    snprintf(want, sizeof(want), " %s", field);
    for (const char *p = strstr(s->points, key); p; p = strstr(p + 1, key)) {
        const char *end = strchr(p, ';');
        size_t n = strlen(want);
        for (const char *q = strstr(p, want); q && q < end; q = strstr(q + 1, want))
            if (q[n] == ' ' || q[n] == ';')
                return 1;
    }
    return 0;
}

/* A string member of attr ("value" or "object"), copied into buf. */
static const char *member_text(const sink *s, const char *id, const char *attr,
                               const char *member, char *buf, size_t size)
{
    cJSON *doc = fragment(s, id);
    if (!doc)
        return NULL;
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, attr), member);
    const char *out = NULL;
    if (cJSON_IsString(v)) {
        snprintf(buf, size, "%s", v->valuestring);
        out = buf;
    }
    cJSON_Delete(doc);
    return out;
}

/* A sample from "name{a=b,c=d}" text, labels sorted (static storage). */
typedef struct sample_builder {
    char text[1024];
    hdl_label labels[16];
    hdl_sample s;
} sample_builder;

static int label_cmp(const void *a, const void *b)
{
    return ndt_str_cmp(((const hdl_label *)a)->name, ((const hdl_label *)b)->name);
}

static const hdl_sample *sample(sample_builder *b, const char *series, double value,
                                int64_t ts)
{
    snprintf(b->text, sizeof(b->text), "%s", series);
    char *brace = strchr(b->text, '{');
    memset(&b->s, 0, sizeof(b->s));
    b->s.name.ptr = b->text;
    b->s.name.len = brace ? (size_t)(brace - b->text) : strlen(b->text);
    b->s.labels = b->labels;
    if (brace) {
        *brace = '\0';
        char *p = brace + 1, *save = NULL;
        char *end = strchr(p, '}');
        assert_non_null(end);
        *end = '\0';
        for (char *tok = strtok_r(p, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            assert_non_null(eq);
            *eq = '\0';
            b->labels[b->s.nlabels].name = ndt_str_from_cstr(tok);
            b->labels[b->s.nlabels].value = ndt_str_from_cstr(eq + 1);
            b->s.nlabels++;
        }
        qsort(b->labels, b->s.nlabels, sizeof(hdl_label), label_cmp);
    }
    b->s.value = value;
    b->s.ts_ms = ts;
    return &b->s;
}

typedef struct fixture {
    hdl_rules rules;
    hdl_engine *engine;
    sink out;
    hdl_emit emit;
    sample_builder b;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char err[NDT_ERRBUF_SIZE];
    assert_non_null(f);
    if (hdl_rules_load_file(&f->rules, RULES_PATH, err, sizeof(err)) != NDT_OK)
        fail_msg("%s", err);
    hdl_engine_options o = { 0 };
    o.default_interval_ms = 1000;
    assert_int_equal(hdl_engine_new(&f->rules, &o, &f->engine, err, sizeof(err)), NDT_OK);
    f->emit = emit_to(&f->out);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sink_reset(&f->out);
    hdl_engine_destroy(f->engine);
    hdl_rules_free(&f->rules);
    free(f);
    return 0;
}

static void feed(fixture *f, const char *series, double value, int64_t ts)
{
    assert_int_equal(hdl_engine_feed(f->engine, sample(&f->b, series, value, ts), &f->emit),
                     NDT_OK);
}

static void finish(fixture *f, int64_t now)
{
    assert_int_equal(hdl_engine_finish(f->engine, now, &f->emit), NDT_OK);
}

#define POD "namespace=ndt,pod=web-6d5f8c9b7-abcde"
#define POD_ID "urn:ngsi-ld:ServiceComponent:ndt.web-6d5f8c9b7-abcde"

static void test_rules_load_testbed(void **state)
{
    fixture *f = *state;
    size_t attributes = 0, relationships = 0, divisors = 0;
    for (size_t i = 0; i < f->rules.nrules; i++) {
        attributes += f->rules.rules[i].kind == HDL_RULE_ATTRIBUTE;
        relationships += f->rules.rules[i].kind == HDL_RULE_RELATIONSHIP;
        divisors += f->rules.rules[i].kind == HDL_RULE_DIVISOR;
    }
    assert_int_equal(attributes, 24);
    assert_int_equal(relationships, 4);
    assert_int_equal(divisors, 5);
    assert_int_equal(f->rules.nstatics, 3);
}

/* A counter: no rate from the first sample, then (v - prev) / dt, and a
 * decrease counts from zero (a reset). */
static void test_rate_with_counter_reset(void **state)
{
    fixture *f = *state;
    feed(f, "inference_requests_total{" POD "}", 100, 10000);
    finish(f, 10000);
    assert_null(strstr(f->out.points, "requestRate"));
    feed(f, "inference_requests_total{" POD "}", 150, 12000);
    finish(f, 12000);
    assert_true(point_has(&f->out, POD_ID "@12000", "requestRate=25"));
    feed(f, "inference_requests_total{" POD "}", 10, 13000); /* the pod restarted */
    finish(f, 13000);
    assert_true(point_has(&f->out, POD_ID "@13000", "requestRate=10"));
    assert_float_equal(property_number(&f->out, POD_ID, "requestRate"), 10, 1e-9);
    /* A label unfit for an id (blank, backslash) maps nothing and is counted. */
    feed(f, "inference_requests_total{namespace=ndt,pod=a\\b}", 1, 12500);
    feed(f, "inference_queue_depth{namespace=ndt,pod=a b}", 1, 12500);
    /* The same scrape replayed changes nothing. */
    feed(f, "inference_requests_total{" POD "}", 10, 13000);
    finish(f, 13000);
    hdl_engine_stats st;
    hdl_engine_get_stats(f->engine, &st);
    assert_int_equal(st.counter_resets, 1);
    assert_int_equal(st.rate_first, 1);
    assert_int_equal(st.samples_incomplete, 2);
    char unit[32];
    assert_string_equal(member_text(&f->out, POD_ID, "requestRate", "unitCode", unit,
                                    sizeof(unit)), "HTZ");
}

/* node CPU: idle rates summed over the cpus, divided by the node's cores,
 * then 100 * (1 - share): scale -100, offset 100. */
static void test_aggregate_divide_scale_offset(void **state)
{
    fixture *f = *state;
    const char *id = "urn:ngsi-ld:InfrastructureElement:w1";
    for (int k = 0; k < 2; k++) {
        int64_t ts = 1000 + k * 1000;
        feed(f, "kube_node_status_capacity{node=w1,resource=cpu,unit=core}", 2, ts);
        feed(f, "node_cpu_seconds_total{cpu=0,mode=idle,node=w1}", 100 + k * 0.5, ts);
        feed(f, "node_cpu_seconds_total{cpu=1,mode=idle,node=w1}", 200 + k * 0.3, ts);
        feed(f, "node_cpu_seconds_total{cpu=1,mode=user,node=w1}", 50 + k * 0.7, ts);
        finish(f, ts);
    }
    /* idle 0.8 core of 2: 60 % busy */
    assert_float_equal(property_number(&f->out, id, "currentCpuUsage"), 60, 1e-9);
    /* Scrape jitter: 2.1 idle seconds per second on 2 cores is clamped to
     * 0 % busy (min: 0), not published as -5 %. */
    feed(f, "kube_node_status_capacity{node=w1,resource=cpu,unit=core}", 2, 2100);
    feed(f, "node_cpu_seconds_total{cpu=0,mode=idle,node=w1}", 100.5 + 0.105, 2100);
    feed(f, "node_cpu_seconds_total{cpu=1,mode=idle,node=w1}", 200.3 + 0.105, 2100);
    finish(f, 2100);
    assert_float_equal(property_number(&f->out, id, "currentCpuUsage"), 0, 0);
    hdl_engine_stats st;
    hdl_engine_get_stats(f->engine, &st);
    assert_int_equal(st.values_clamped, 1);
    assert_float_equal(property_number(&f->out, id, "cpuCores"), 2, 0);
    char host[64];
    assert_string_equal(member_text(&f->out, id, "hostname", "value", host, sizeof(host)), "w1");

    /* Memory: bytes to megabytes, and 100 * (1 - available / total). */
    feed(f, "node_memory_MemTotal_bytes{node=w1}", 8589934592.0, 3000);
    feed(f, "node_memory_MemAvailable_bytes{node=w1}", 2147483648.0, 3000);
    finish(f, 3000);
    assert_float_equal(property_number(&f->out, id, "ramCapacity"), 8192, 1e-9);
    assert_float_equal(property_number(&f->out, id, "availableRam"), 2048, 1e-9);
    assert_float_equal(property_number(&f->out, id, "currentRamUsagePct"), 75, 1e-9);
}

/* A pod's memory sums its containers; a container's CPU allocation is
 * quota / period; a divisor not seen yet gives no value. */
static void test_aggregate_and_divide_by(void **state)
{
    fixture *f = *state;
    feed(f, "container_memory_working_set_bytes{container=a," POD "}", 1048576, 5000);
    feed(f, "container_memory_working_set_bytes{container=b," POD "}", 3 * 1048576, 5000);
    finish(f, 5000);
    assert_float_equal(property_number(&f->out, POD_ID, "currentMemoryUsage"), 4, 1e-12);

    const char *vce = "urn:ngsi-ld:VirtualComputeElement:ndt.web-6d5f8c9b7-abcde.a";
    /* No limit known yet: memoryUsageOfAllocation cannot be computed. */
    assert_true(isnan(property_number(&f->out, vce, "memoryUsageOfAllocation")));
    feed(f, "container_spec_cpu_quota{container=a," POD "}", 150000, 6000);
    feed(f, "container_spec_cpu_period{container=a," POD "}", 100000, 6000);
    feed(f, "container_spec_memory_limit_bytes{container=a," POD "}", 4 * 1048576, 6000);
    feed(f, "container_memory_working_set_bytes{container=a," POD "}", 1048576, 6000);
    finish(f, 6000);
    assert_float_equal(property_number(&f->out, vce, "virtualCpuAllocation"), 1.5, 1e-12);
    assert_float_equal(property_number(&f->out, vce, "virtualMemoryAllocation"), 4, 1e-12);
    assert_float_equal(property_number(&f->out, vce, "memoryUsageOfAllocation"), 25, 1e-12);
    char obj[256];
    assert_string_equal(member_text(&f->out, vce, "serviceComponent", "object", obj,
                                    sizeof(obj)), POD_ID);
}

/* seconds -> milliseconds; states through value_map (only the series
 * holding 1 counts). */
static void test_scale_and_value_map(void **state)
{
    fixture *f = *state;
    feed(f, "inference_avg_total_infer_seconds{" POD "}", 0.4865, 7000);
    feed(f, "kube_pod_status_phase{" POD ",phase=Pending}", 0, 7000);
    feed(f, "kube_pod_status_phase{" POD ",phase=Running}", 1, 7000);
    feed(f, "kube_pod_status_phase{" POD ",phase=Failed}", 0, 7000);
    finish(f, 7000);
    assert_float_equal(property_number(&f->out, POD_ID, "avgInferenceTime"), 486.5, 1e-9);
    char v[32];
    assert_string_equal(member_text(&f->out, POD_ID, "serviceComponentStatus", "value", v,
                                    sizeof(v)), "Running");
    feed(f, "kube_pod_status_phase{" POD ",phase=Running}", 0, 8000);
    feed(f, "kube_pod_status_phase{" POD ",phase=Pending}", 1, 8000);
    finish(f, 8000);
    assert_string_equal(member_text(&f->out, POD_ID, "serviceComponentStatus", "value", v,
                                    sizeof(v)), "Starting");
    assert_true(point_has(&f->out, POD_ID "@8000", "serviceComponentStatus=Starting"));
}

static int hosted_by(void *ctx, const udr_relation *r)
{
    if (strcmp(r->predicate, "infrastructureElement") == 0)
        snprintf(ctx, 256, "%s", r->object);
    return NDT_OK;
}

/* pod isHostedBy node moves when the pod is rescheduled: the UDR keeps
 * both intervals; restating the same node writes nothing. */
static void test_relationships_change_over_time(void **state)
{
    fixture *f = *state;
    char dir[] = "/tmp/test_harmonize.XXXXXX", url[128], err[NDT_ERRBUF_SIZE];
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "sqlite:%s/udr.db", dir);
    assert_int_equal(udr_open(&f->out.u, url, NULL, err, sizeof(err)), NDT_OK);

    feed(f, "kube_pod_info{" POD ",node=w1,uid=1}", 1, 1000);
    feed(f, "kube_pod_info{" POD ",node=w1,uid=1}", 1, 2000);
    feed(f, "kube_pod_info{" POD ",node=w2,uid=1}", 1, 3000);
    finish(f, 3000);
    assert_string_equal(f->out.relations,
                        POD_ID " infrastructureElement urn:ngsi-ld:InfrastructureElement:w1 @1000;"
                        POD_ID " service urn:ngsi-ld:Service:ndt.web @1000;"
                        POD_ID " infrastructureElement urn:ngsi-ld:InfrastructureElement:w2 @3000;");
    assert_int_equal(udr_flush(f->out.u, err, sizeof(err)), NDT_OK);

    struct { int64_t at; const char *node; } cases[] = { { 1500, "w1" }, { 2999, "w1" },
                                                          { 3000, "w2" }, { 9000, "w2" } };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        char seen[256] = "";
        int rc = udr_read_relations(f->out.u, cases[i].at, hosted_by, seen, err, sizeof(err));
        assert_int_equal(rc, NDT_OK);
        char want[128];
        snprintf(want, sizeof(want), "urn:ngsi-ld:InfrastructureElement:%s", cases[i].node);
        assert_string_equal(seen, want);
    }
    udr_close(f->out.u);
    f->out.u = NULL;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* unbound -> bound -> synchronized -> outOfSync -> bound, counted. */
static void test_twin_state_transitions(void **state)
{
    fixture *f = *state;
    const char *svc = "urn:ngsi-ld:Service:ndt.cifar10-inference";
    assert_int_equal(hdl_engine_start(f->engine, 500, &f->emit), NDT_OK);
    assert_int_equal(hdl_engine_twin_state(f->engine, svc), HDL_TWIN_UNBOUND);
    char v[32];
    assert_string_equal(member_text(&f->out, svc, "twinState", "value", v, sizeof(v)), "unbound");
    assert_string_equal(member_text(&f->out, "urn:ngsi-ld:NetworkService:ndt.image-classification",
                                    "twinState", "value", v, sizeof(v)), "unbound");

    feed(f, "inference_current_users", 200, 1000);
    finish(f, 1000);
    assert_int_equal(hdl_engine_twin_state(f->engine, svc), HDL_TWIN_BOUND);
    feed(f, "inference_current_users", 210, 1020);
    finish(f, 1020);
    assert_int_equal(hdl_engine_twin_state(f->engine, svc), HDL_TWIN_SYNCHRONIZED);
    assert_string_equal(member_text(&f->out, svc, "twinState", "value", v, sizeof(v)),
                        "synchronized");
    assert_float_equal(property_number(&f->out, svc, "currentUsers"), 210, 0);
    /* The learnt interval is 20 ms: silence for longer than 40 ms is stale. */
    finish(f, 1055);
    assert_int_equal(hdl_engine_twin_state(f->engine, svc), HDL_TWIN_SYNCHRONIZED);
    finish(f, 1100); /* detected within half a threshold of going stale */
    assert_int_equal(hdl_engine_twin_state(f->engine, svc), HDL_TWIN_OUT_OF_SYNC);
    assert_true(point_has(&f->out, "urn:ngsi-ld:Service:ndt.cifar10-inference@1100",
                          "twinState=outOfSync"));
    feed(f, "inference_current_users", 220, 2000);
    finish(f, 2000);
    assert_int_equal(hdl_engine_twin_state(f->engine, svc), HDL_TWIN_BOUND);
    /* Its source goes down (up == 0 for its instance): out of sync at
     * once, before the threshold; another instance's failure does not. */
    feed(f, "inference_current_users{instance=tb:1}", 220, 2020);
    finish(f, 2020);
    assert_int_equal(hdl_engine_twin_state(f->engine, svc), HDL_TWIN_SYNCHRONIZED);
    feed(f, "up{instance=other:1,job=x}", 0, 2040);
    assert_int_equal(hdl_engine_twin_state(f->engine, svc), HDL_TWIN_SYNCHRONIZED);
    feed(f, "up{instance=tb:1,job=x}", 0, 2040);
    finish(f, 2040);
    assert_int_equal(hdl_engine_twin_state(f->engine, svc), HDL_TWIN_OUT_OF_SYNC);
    assert_true(point_has(&f->out, "urn:ngsi-ld:Service:ndt.cifar10-inference@2040",
                          "twinState=outOfSync"));

    hdl_engine_stats st;
    hdl_engine_get_stats(f->engine, &st);
    assert_int_equal(st.transitions[HDL_TWIN_UNBOUND][HDL_TWIN_BOUND], 1);
    assert_int_equal(st.transitions[HDL_TWIN_SYNCHRONIZED][HDL_TWIN_OUT_OF_SYNC], 2);
    assert_int_equal(st.transitions[HDL_TWIN_BOUND][HDL_TWIN_SYNCHRONIZED], 2);
    assert_int_equal(st.transitions[HDL_TWIN_OUT_OF_SYNC][HDL_TWIN_BOUND], 1);
    /* The static network function never gets a sample. */
    assert_int_equal(hdl_engine_twin_state(f->engine, "urn:ngsi-ld:NetworkFunction:ndt.image-classifier"),
                     HDL_TWIN_UNBOUND);
    /* Static relationships: the chain keeps its order in the UDR. */
    assert_non_null(strstr(f->out.relations,
                           "urn:ngsi-ld:NetworkService:ndt.image-classification functionChain_1 "
                           "urn:ngsi-ld:NetworkFunction:ndt.image-classifier @500;"));
    assert_non_null(strstr(f->out.relations, svc));
}

typedef struct rule_error_case {
    const char *yaml;
    const char *message;
} rule_error_case;

static void test_rule_file_errors(void **state)
{
    NDT_UNUSED(state);
    static const rule_error_case cases[] = {
        { "version: 1\nrules:\n  - metric: m\n    entity: { type: T, id: \"urn:ngsi-ld:T:{a}\" }\n"
          "    attribute: x\n    transform: ratee\n",
          "r.yaml:6:16: transform: expected identity, rate, info or native_histogram, got 'ratee'" },
        { "version: 1\nrules:\n  - metric: m\n    entity: { type: T, id: \"urn:ngsi-ld:T:{a}\" }\n"
          "    atribute: x\n",
          "r.yaml:5:5: rules: unknown key 'atribute', did you mean attribute?" },
        { "version: 1\nrules:\n  - metric: m\n    match: { a: \"(\" }\n"
          "    entity: { type: T, id: \"urn:ngsi-ld:T:{a}\" }\n    attribute: x\n",
          "r.yaml:4:17: a: invalid regex '(': missing closing parenthesis at offset 1" },
        { "version: 1\nrules:\n  - metric: m\n    entity: { type: T, id: \"urn:ngsi-ld:U:{a}\" }\n"
          "    attribute: x\n",
          "r.yaml:4:28: id: the id must start with urn:ngsi-ld:T:" },
        { "version: 1\nrules:\n  - metric: m\n    entity: { type: T, id: \"urn:ngsi-ld:T:{a\" }\n"
          "    attribute: x\n",
          "r.yaml:4:28: id: expected {label} in the template 'urn:ngsi-ld:T:{a'" },
        { "version: 1\nrules:\n  - metric: m\n    entity: { type: T, id: \"urn:ngsi-ld:T:{a}\" }\n"
          "    attribute: x\n    scale: big\n",
          "r.yaml:6:12: scale: expected a finite number, got 'big'" },
        { "version: 2\n", "r.yaml:1:10: version: expected 1, got '2'" },
        { "version: 1\nrules:\n  - metric: m\n    entity: { type: T-1, id: \"urn:ngsi-ld:T-1:{a}\" }\n"
          "    attribute: x\n",
          "r.yaml:4:30: id: the entity type in 'urn:ngsi-ld:T-1:{a}' must be an identifier" },
        { "version: 1\nrelationships:\n  - metric: m\n    subject: \"urn:ngsi-ld:A:{x}\"\n"
          "    object: \"urn:ngsi-ld:B:{y}\"\n",
          "r.yaml:3:5: predicate: missing (required)" },
        { "version: 1\nrules: [\n", "r.yaml:3:1:" },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        hdl_rules r;
        char err[NDT_ERRBUF_SIZE] = "";
        int rc = hdl_rules_load_string(&r, "r.yaml", cases[i].yaml, strlen(cases[i].yaml), err,
                                       sizeof(err));
        if (rc != NDT_EBADCONF || strncmp(err, cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("case %zu: rc %d, got \"%s\", want \"%s\"", i, rc, err, cases[i].message);
    }
    hdl_rules r;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(hdl_rules_load_file(&r, "/nonexistent/rules.yaml", err, sizeof(err)),
                     NDT_EBADCONF);
    assert_non_null(strstr(err, "/nonexistent/rules.yaml"));
}

/* ---- real expositions through the ingest parser ------------------------- */

typedef struct expo_feed {
    fixture *f;
    int64_t ts;
    hdl_label labels[64];
} expo_feed;

static int feed_expo_sample(void *ctx, const ingest_sample *is)
{
    expo_feed *x = ctx;
    hdl_sample s = { 0 };
    s.name = is->name;
    s.labels = x->labels;
    for (size_t i = 0; i < is->nlabels && s.nlabels < 64; i++) {
        x->labels[s.nlabels].name = is->labels[i].name;
        x->labels[s.nlabels].value = is->labels[i].value;
        s.nlabels++;
    }
    qsort(x->labels, s.nlabels, sizeof(hdl_label), label_cmp);
    s.value = is->value;
    s.ts_ms = x->ts;
    return hdl_engine_feed(x->f->engine, &s, &x->f->emit);
}

static void feed_exposition(fixture *f, const char *text, size_t len, int64_t ts)
{
    ndt_arena arena;
    ingest_expo_error perr;
    expo_feed x = { f, ts, { { { 0 } } } };
    ndt_arena_init(&arena, 1 << 16, 0);
    int rc = ingest_expo_parse(text, len, INGEST_EXPO_TEXT, &arena, feed_expo_sample, &x, &perr);
    if (rc != NDT_OK)
        fail_msg("%u:%u: %s", perr.line, perr.col, perr.reason);
    ndt_arena_free(&arena);
    finish(f, ts);
}

/* The emulated cluster: every pod, node and the service become entities
 * with the schema's required parts, users and pods as the testbed has them. */
static void test_testbed_exposition(void **state)
{
    fixture *f = *state;
    testbed_params p;
    testbed_sim *sim;
    ndt_buf buf;
    char err[NDT_ERRBUF_SIZE];
    testbed_params_default(&p);
    p.users = 300;
    p.pods = 3;
    p.seed = 11;
    assert_int_equal(testbed_sim_create(&p, &sim, err, sizeof(err)), NDT_OK);
    ndt_buf_init(&buf, 0);
    assert_int_equal(hdl_engine_start(f->engine, 0, &f->emit), NDT_OK);
    for (int k = 1; k <= 3; k++) {
        testbed_sim_advance(sim, 10.0 + k);
        assert_int_equal(testbed_expo_render(sim, &buf), NDT_OK);
        feed_exposition(f, buf.data, buf.len, 10000 + k * 1000);
    }
    const char *svc = "urn:ngsi-ld:Service:ndt.cifar10-inference";
    assert_float_equal(property_number(&f->out, svc, "currentUsers"), 300, 0);
    assert_float_equal(property_number(&f->out, svc, "desiredReplicas"), 3, 0);
    char v[256];
    assert_string_equal(member_text(&f->out, svc, "partOf", "object", v, sizeof(v)),
                        "urn:ngsi-ld:NetworkService:ndt.image-classification");
    assert_string_equal(member_text(&f->out, svc, "twinState", "value", v, sizeof(v)),
                        "synchronized");
    size_t pods = 0, nodes = 0;
    for (size_t i = 0; i < f->out.nfragments; i++) {
        const char *id = f->out.ids[i];
        if (strncmp(id, "urn:ngsi-ld:ServiceComponent:", 29) == 0) {
            pods++;
            assert_non_null(member_text(&f->out, id, "infrastructureElement", "object", v, sizeof(v)));
            assert_string_equal(member_text(&f->out, id, "service", "object", v, sizeof(v)), svc);
            assert_true(property_number(&f->out, id, "requestRate") > 0);
            assert_true(property_number(&f->out, id, "avgInferenceTime") > 0);
            assert_string_equal(member_text(&f->out, id, "serviceComponentStatus", "value", v,
                                            sizeof(v)), "Running");
        } else if (strncmp(id, "urn:ngsi-ld:InfrastructureElement:", 34) == 0) {
            nodes++;
            assert_non_null(member_text(&f->out, id, "hostname", "value", v, sizeof(v)));
            double cpu = property_number(&f->out, id, "currentCpuUsage");
            assert_true(cpu >= 0 && cpu <= 100);
        }
    }
    assert_int_equal(pods, 3);
    assert_true(nodes >= 2);
    hdl_engine_stats st;
    hdl_engine_get_stats(f->engine, &st);
    assert_int_equal(st.entities_dropped + st.series_dropped, 0);
    ndt_buf_free(&buf);
    testbed_sim_destroy(sim);
}

/* ---- the three Kafka formats agree --------------------------------------- */

typedef struct series_list {
    ingest_series *series;
    size_t n;
    ndt_arena *arena;
} series_list;

/* A parsed sample as the scraper publishes it: __name__ first, then the
 * labels with job and instance, sorted. */
static int collect_series(void *ctx, const ingest_sample *is)
{
    series_list *l = ctx;
    ingest_label *labels = ndt_arena_alloc(l->arena, (is->nlabels + 3) * sizeof(*labels));
    assert_non_null(labels);
    size_t n = 0;
    labels[n++] = (ingest_label){ NDT_STR_LIT("__name__"), is->name };
    labels[n++] = (ingest_label){ NDT_STR_LIT("instance"), NDT_STR_LIT("tb:80") };
    labels[n++] = (ingest_label){ NDT_STR_LIT("job"), NDT_STR_LIT("testbed") };
    for (size_t i = 0; i < is->nlabels; i++)
        labels[n++] = is->labels[i];
    qsort(labels + 1, n - 1, sizeof(*labels), label_cmp); /* same layout as hdl_label */
    l->series[l->n++] = (ingest_series){ labels, n, is->value, 0, INGEST_TYPE_UNKNOWN };
    return NDT_OK;
}

static int feed_decoded(void *ctx, const hdl_sample *s)
{
    fixture *f = ctx;
    return hdl_engine_feed(f->engine, s, &f->emit);
}

/* Three scrapes of the testbed through each format's encoder (ingest) and
 * decoder (harmonize/decode.h), and fed directly: the same points, the
 * same fragments. */
static void test_formats_agree(void **state)
{
    NDT_UNUSED(state);
    static const hdl_format formats[] = { HDL_FORMAT_AUTO, HDL_FORMAT_AVRO, HDL_FORMAT_JSON,
                                          HDL_FORMAT_INFLUX };
    char err[NDT_ERRBUF_SIZE];
    testbed_params p;
    testbed_sim *sim;
    ndt_arena arena;
    ndt_buf text, msg;
    series_list scrapes[3];
    testbed_params_default(&p);
    p.seed = 4;
    assert_int_equal(testbed_sim_create(&p, &sim, err, sizeof(err)), NDT_OK);
    ndt_arena_init(&arena, 1 << 16, 0);
    ndt_buf_init(&text, 0);
    ndt_buf_init(&msg, 0);
    for (int k = 0; k < 3; k++) {
        testbed_sim_advance(sim, 5.0 + k * 0.1);
        assert_int_equal(testbed_expo_render(sim, &text), NDT_OK);
        /* the arena keeps the text's strings: copy the text into it */
        char *copy = ndt_arena_strndup(&arena, text.data, text.len);
        ingest_expo_error perr;
        scrapes[k] = (series_list){ ndt_arena_alloc(&arena, 4096 * sizeof(ingest_series)), 0, &arena };
        assert_int_equal(ingest_expo_parse(copy, text.len, INGEST_EXPO_TEXT, &arena,
                                           collect_series, &scrapes[k], &perr), NDT_OK);
        for (size_t i = 0; i < scrapes[k].n; i++)
            scrapes[k].series[i].timestamp_ms = 1767225600000 + k * 100;
    }
    char *points[4];
    char *last_fragment[4];
    for (size_t fi = 0; fi < NDT_ARRAY_LEN(formats); fi++) {
        void *fs = NULL;
        assert_int_equal(setup(&fs), 0);
        fixture *f = fs;
        ingest_avro_encoder *avro = NULL;
        if (formats[fi] == HDL_FORMAT_AVRO)
            assert_int_equal(ingest_avro_encoder_new(&avro, err, sizeof(err)), NDT_OK);
        for (int k = 0; k < 3; k++) {
            const series_list *l = &scrapes[k];
            if (formats[fi] == HDL_FORMAT_AUTO) { /* direct: no encoding */
                for (size_t i = 0; i < l->n; i++) {
                    hdl_sample s = { l->series[i].labels[0].value,
                                     (const hdl_label *)(l->series[i].labels + 1),
                                     l->series[i].nlabels - 1, l->series[i].value,
                                     l->series[i].timestamp_ms, HDL_TYPE_UNKNOWN, NULL };
                    assert_int_equal(hdl_engine_feed(f->engine, &s, &f->emit), NDT_OK);
                }
            } else if (formats[fi] == HDL_FORMAT_AVRO) {
                ingest_batch b = { NDT_STR_LIT("testbed"), NDT_STR_LIT("tb:80"),
                                   l->series[0].timestamp_ms, l->series, l->n };
                ndt_buf_reset(&msg);
                assert_int_equal(ingest_encode_avro(avro, &b, -1, &msg), NDT_OK);
                assert_int_equal(hdl_decode_detect(msg.data, msg.len), HDL_FORMAT_AVRO);
                if (hdl_decode(HDL_FORMAT_AVRO, msg.data, msg.len, feed_decoded, f, err,
                               sizeof(err)) != NDT_OK)
                    fail_msg("avro: %s", err);
            } else {
                for (size_t i = 0; i < l->n; i++) {
                    ndt_buf_reset(&msg);
                    int rc = formats[fi] == HDL_FORMAT_JSON ? ingest_encode_json(&l->series[i], &msg)
                                                            : ingest_encode_influx(&l->series[i], &msg);
                    if (rc == NDT_AGAIN)
                        continue; /* NaN/Inf: line protocol cannot carry it */
                    assert_int_equal(rc, NDT_OK);
                    assert_int_equal(hdl_decode_detect(msg.data, msg.len), formats[fi]);
                    if (hdl_decode(formats[fi], msg.data, msg.len, feed_decoded, f, err,
                                   sizeof(err)) != NDT_OK)
                        fail_msg("%s: %s", hdl_format_name(formats[fi]), err);
                }
            }
            finish(f, l->series[0].timestamp_ms);
        }
        points[fi] = strdup(f->out.points);
        last_fragment[fi] = strdup(f->out.json[0]);
        if (avro)
            ingest_avro_encoder_free(avro);
        teardown(&fs);
    }
    assert_true(strlen(points[0]) > 1000);
    for (size_t fi = 1; fi < NDT_ARRAY_LEN(formats); fi++) {
        if (strcmp(points[0], points[fi]) != 0) {
            size_t at = 0;
            while (points[0][at] == points[fi][at])
                at++;
            print_error("direct: ...%.200s\n%s: ...%.200s\n", points[0] + (at > 80 ? at - 80 : 0),
                        hdl_format_name(formats[fi]), points[fi] + (at > 80 ? at - 80 : 0));
            fail_msg("%s: the points differ from the direct feed", hdl_format_name(formats[fi]));
        }
        assert_string_equal(last_fragment[0], last_fragment[fi]);
    }
    for (size_t fi = 0; fi < NDT_ARRAY_LEN(formats); fi++) {
        free(points[fi]);
        free(last_fragment[fi]);
    }
    ndt_buf_free(&text);
    ndt_buf_free(&msg);
    ndt_arena_free(&arena);
    testbed_sim_destroy(sim);
}

static char *read_fixture(const char *rel, size_t *len)
{
    const char *dir = getenv("NDT_FIXTURES");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "../shared/fixtures", rel);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *data = malloc(1 << 20);
    *len = data ? fread(data, 1, (1 << 20) - 1, fp) : 0;
    fclose(fp);
    return data;
}

/* Real kube-state-metrics output: a pod with an empty node label is not
 * hosted anywhere (no relationship), the others are; the Deployment comes
 * from the ReplicaSet pod name. */
static void test_kube_state_metrics_fixture(void **state)
{
    fixture *f = *state;
    size_t len;
    char *text = read_fixture("kube-state-metrics/kube-state-metrics", &len);
    if (!text)
        skip();
    feed_exposition(f, text, len, 5000);
    free(text);
    assert_non_null(strstr(f->out.relations,
                           "urn:ngsi-ld:ServiceComponent:default.jumpy-owl-redis-3481028193-s78x9 "
                           "infrastructureElement urn:ngsi-ld:InfrastructureElement:minikube @5000;"));
    assert_non_null(strstr(f->out.relations,
                           "urn:ngsi-ld:ServiceComponent:default.jumpy-owl-redis-3481028193-s78x9 "
                           "service urn:ngsi-ld:Service:default.jumpy-owl-redis @5000;"));
    assert_null(strstr(f->out.relations, "kube-state-metrics-1303537707-mnzbp infrastructureElement"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rules_load_testbed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_with_counter_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregate_divide_scale_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregate_and_divide_by, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scale_and_value_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relationships_change_over_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twin_state_transitions, setup, teardown),
        cmocka_unit_test(test_rule_file_errors),
        cmocka_unit_test_setup_teardown(test_testbed_exposition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kube_state_metrics_fixture, setup, teardown),
        cmocka_unit_test(test_formats_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
