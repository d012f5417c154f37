/*
 * test_api.c: the API's pure parts: the what-if and predict body parsers
 * (strictness, bounds, error codes), the change resolution ("+1" into
 * absolute pods), RFC 3339 times, the constant-time token comparison, the
 * JSON string writer, the metrics exposition and the registry's gate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_internal.h"

static int whatif(const char *body, api_whatif_request *r, const char **code)
{
    char err[NDT_ERRBUF_SIZE] = "";
    int rc = api_parse_whatif(body, strlen(body), r, code, err, sizeof(err));
    if (rc != NDT_OK)
        assert_true(strlen(err) > 5);
    return rc;
}

static void test_whatif_valid(void **state)
{
    (void)state;
    api_whatif_request r;
    const char *code = NULL;
    assert_int_equal(whatif("{\"service\":\"urn:ngsi-ld:Service:a\",\"change\":{\"pods\":\"+1\"}}", &r, &code), NDT_OK);
    assert_string_equal(r.service, "urn:ngsi-ld:Service:a");
    assert_int_equal(r.pods.kind, API_CHANGE_RELATIVE);
    assert_int_equal(r.pods.value, 1);
    assert_int_equal(r.users.kind, API_CHANGE_NONE);
    assert_int_equal(whatif(" {\"change\":{\"pods\":\"-2\",\"users\":200}} \n", &r, &code), NDT_OK);
    assert_string_equal(r.service, "");
    assert_int_equal(r.pods.kind, API_CHANGE_RELATIVE);
    assert_int_equal(r.pods.value, -2);
    assert_int_equal(r.users.kind, API_CHANGE_ABSOLUTE);
    assert_int_equal(r.users.value, 200);
    assert_int_equal(whatif("{\"change\":{\"pods\":5},\"model\":\"xgb-1\"}", &r, &code), NDT_OK);
    assert_int_equal(r.pods.kind, API_CHANGE_ABSOLUTE);
    assert_int_equal(r.pods.value, 5);
    assert_string_equal(r.model, "xgb-1");
    assert_int_equal(whatif("{\"change\":{\"pods\":\"5\"}}", &r, &code), NDT_OK);
    assert_int_equal(r.pods.kind, API_CHANGE_ABSOLUTE);
}

static void test_whatif_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *code;
    } cases[] = {
        { "", "malformed-json" },
        { "{", "malformed-json" },
        { "{\"change\":{\"pods\":\"+1\"}} x", "malformed-json" },
        { "[]", "malformed-json" },
        { "\"change\"", "malformed-json" },
        { "{\"change\":{\"pods\":\"+1\"},\"extra\":1}", "unknown-field" },
        { "{\"change\":{\"pod\":\"+1\"}}", "unknown-field" },
        { "{\"change\":{\"cpu\":3}}", "unknown-field" },
        { "{}", "bad-value" },
        { "{\"change\":{}}", "bad-value" },
        { "{\"change\":[1]}", "bad-value" },
        { "{\"change\":{\"pods\":0}}", "bad-value" },
        { "{\"change\":{\"pods\":1.5}}", "bad-value" },
        { "{\"change\":{\"pods\":100001}}", "bad-value" },
        { "{\"change\":{\"pods\":\"+\"}}", "bad-value" },
        { "{\"change\":{\"pods\":\"++1\"}}", "bad-value" },
        { "{\"change\":{\"pods\":\"+1 \"}}", "bad-value" },
        { "{\"change\":{\"pods\":\"+999999999\"}}", "bad-value" },
        { "{\"change\":{\"pods\":\"0\"}}", "bad-value" },
        { "{\"change\":{\"pods\":true}}", "bad-value" },
        { "{\"change\":{\"pods\":null}}", "bad-value" },
        { "{\"change\":{\"users\":\"+10\"}}", "bad-value" },
        { "{\"change\":{\"users\":1e300}}", "bad-value" },
        { "{\"service\":\"\",\"change\":{\"pods\":1}}", "bad-value" },
        { "{\"service\":7,\"change\":{\"pods\":1}}", "bad-value" },
        { "{\"service\":\"a\\nb\",\"change\":{\"pods\":1}}", "bad-value" },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        api_whatif_request r;
        const char *code = NULL;
        if (whatif(cases[i].body, &r, &code) != NDT_EBADCONF || !code || strcmp(code, cases[i].code) != 0)
            fail_msg("case %zu '%s': code %s, want %s", i, cases[i].body, code ? code : "(none)", cases[i].code);
    }
    /* An id of 256 bytes is refused, not truncated. */
    char body[600];
    char id[300];
    memset(id, 'a', 256);
    id[256] = '\0';
    snprintf(body, sizeof(body), "{\"service\":\"%s\",\"change\":{\"pods\":1}}", id);
    api_whatif_request r;
    const char *code;
    assert_int_equal(whatif(body, &r, &code), NDT_EBADCONF);
    id[255] = '\0';
    snprintf(body, sizeof(body), "{\"service\":\"%s\",\"change\":{\"pods\":1}}", id);
    assert_int_equal(whatif(body, &r, &code), NDT_OK);
    assert_int_equal(strlen(r.service), 255);
}

static void test_whatif_body_not_terminated(void **state)
{
    (void)state;
    /* The parser reads len bytes, never up to a NUL. */
    const char body[] = "{\"change\":{\"pods\":\"+1\"}}GARBAGE";
    api_whatif_request r;
    const char *code;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(api_parse_whatif(body, 24, &r, &code, err, sizeof(err)), NDT_OK);
    assert_int_equal(api_parse_whatif(body, 23, &r, &code, err, sizeof(err)), NDT_EBADCONF);
    assert_string_equal(code, "malformed-json");
}

static void test_predict(void **state)
{
    (void)state;
    api_predict_request r;
    const char *code;
    char err[NDT_ERRBUF_SIZE];
    const char *body = "{\"service\":\"s\",\"state\":{\"users\":400,\"pods\":3,\"avg_depth_on_enqueue\":6.5,"
                       "\"avg_backlog_sec_est\":0.29}}";
    assert_int_equal(api_parse_predict(body, strlen(body), &r, &code, err, sizeof(err)), NDT_OK);
    assert_int_equal(r.present, API_STATE_USERS | API_STATE_PODS | API_STATE_DEPTH | API_STATE_BACKLOG);
    assert_int_equal(r.state.users, 400);
    assert_int_equal(r.state.pods, 3);
    assert_true(r.state.depth == 6.5);
    feat_raw cur = { .timestamp_ms = 7, .users = 1, .pods = 1, .depth = 1, .backlog_s = 1,
                     .cpu_process = 50, .cpu_system = 40, .mem_system = 30 };
    api_predict_fill(&r, &cur);
    assert_int_equal(r.present, API_STATE_ALL);
    assert_int_equal(r.state.users, 400); /* given fields win */
    assert_true(r.state.depth == 6.5);
    assert_true(r.state.cpu_process == 50 && r.state.cpu_system == 40 && r.state.mem_system == 30);

    static const char *const bad[] = {
        "{\"state\":{\"avg_total_infer_ms\":3}}", "{\"state\":{\"users\":-1}}",
        "{\"state\":{\"avg_cpu_system_pct\":-0.5}}", "{\"state\":{\"pods\":2.5}}",
        "{\"state\":[]}", "{\"state\":{\"avg_depth_on_enqueue\":\"3\"}}", "{\"change\":{}}",
    };
    static const char *const codes[] = { "unknown-field", "bad-value", "bad-value", "bad-value",
                                         "bad-value", "bad-value", "unknown-field" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(bad); i++) {
        code = NULL;
        assert_int_equal(api_parse_predict(bad[i], strlen(bad[i]), &r, &code, err, sizeof(err)), NDT_EBADCONF);
        assert_string_equal(code, codes[i]);
    }
    assert_int_equal(api_parse_predict("{}", 2, &r, &code, err, sizeof(err)), NDT_OK);
    assert_int_equal(r.present, 0);
}

static void test_change_resolution(void **state)
{
    (void)state;
    feat_raw cur = { .users = 400, .pods = 3 };
    api_whatif_request r = { 0 };
    model_change c;
    char err[NDT_ERRBUF_SIZE];
    r.pods = (api_change_value){ API_CHANGE_RELATIVE, 1 };
    assert_int_equal(api_whatif_change(&r, &cur, &c, err, sizeof(err)), NDT_OK);
    assert_true(c.has_pods && c.pods == 4 && !c.has_users);
    r.pods = (api_change_value){ API_CHANGE_RELATIVE, -2 };
    assert_int_equal(api_whatif_change(&r, &cur, &c, err, sizeof(err)), NDT_OK);
    assert_int_equal(c.pods, 1);
    r.pods = (api_change_value){ API_CHANGE_RELATIVE, -3 };
    assert_int_equal(api_whatif_change(&r, &cur, &c, err, sizeof(err)), NDT_EBADCONF);
    assert_non_null(strstr(err, "0 pods"));
    r.pods = (api_change_value){ API_CHANGE_RELATIVE, API_MAX_PODS };
    assert_int_equal(api_whatif_change(&r, &cur, &c, err, sizeof(err)), NDT_EBADCONF);
    r.pods = (api_change_value){ API_CHANGE_ABSOLUTE, 6 };
    r.users = (api_change_value){ API_CHANGE_ABSOLUTE, 200 };
    assert_int_equal(api_whatif_change(&r, &cur, &c, err, sizeof(err)), NDT_OK);
    assert_true(c.has_pods && c.pods == 6 && c.has_users && c.users == 200);
    memset(&r, 0, sizeof(r));
    assert_int_equal(api_whatif_change(&r, &cur, &c, err, sizeof(err)), NDT_EBADCONF);
}

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(api_parse_rfc3339("1970-01-01T00:00:00Z", &ms), NDT_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(api_parse_rfc3339("2026-01-01T00:00:20.5Z", &ms), NDT_OK);
    assert_int_equal(ms, 1767225620500LL);
    assert_int_equal(api_parse_rfc3339("2026-01-01T01:00:20.123456+01:00", &ms), NDT_OK);
    assert_int_equal(ms, 1767225620123LL);
    assert_int_equal(api_parse_rfc3339("2000-02-29T12:00:00-02:30", &ms), NDT_OK);
    assert_int_equal(ms, 951834600000LL); /* date -d ... +%s */
    static const char *const bad[] = { "", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
                                       "2026-01-32T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00.Z",
                                       "2026-01-01T00:00:00Zjunk", "2026-01-01T00:00:00+1:00", "yesterday" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(bad); i++)
        if (api_parse_rfc3339(bad[i], &ms) != NDT_EBADCONF)
            fail_msg("'%s' accepted", bad[i]);
    char buf[40];
    api_format_rfc3339(1767225620500LL, buf, sizeof(buf));
    assert_string_equal(buf, "2026-01-01T00:00:20.500Z");
    assert_int_equal(api_parse_rfc3339(buf, &ms), NDT_OK);
    assert_int_equal(ms, 1767225620500LL);
    /* Found by fuzz_api_request: years before 1000 print with four digits. */
    assert_int_equal(api_parse_rfc3339("0556-12-30 11:11:13.1111z", &ms), NDT_OK);
    api_format_rfc3339(ms, buf, sizeof(buf));
    assert_string_equal(buf, "0556-12-30T11:11:13.111Z");
}

static void test_token(void **state)
{
    (void)state;
    assert_true(api_token_equal("abc", 3, "abc", 3));
    assert_false(api_token_equal("abd", 3, "abc", 3));
    assert_false(api_token_equal("ab", 2, "abc", 3));
    assert_false(api_token_equal("abcd", 4, "abc", 3));
    assert_false(api_token_equal("", 0, "abc", 3));
}

static void test_json_string(void **state)
{
    (void)state;
    ndt_buf b;
    ndt_buf_init(&b, 0);
    assert_int_equal(api_json_string(&b, "a\"b\\c\nd\x01"), NDT_OK);
    ndt_buf_terminate(&b);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\u0001\"");
    ndt_buf_reset(&b);
    api_json_number(&b, 0.0 / 0.0);
    ndt_buf_terminate(&b);
    assert_string_equal(b.data, "null");
    ndt_buf_free(&b);
}

static void test_metrics(void **state)
{
    (void)state;
    api_metrics *m = api_metrics_new();
    api_metrics_observe(m, API_EP_WHATIF, 200, 0.0003);
    api_metrics_observe(m, API_EP_WHATIF, 200, 0.002);
    api_metrics_observe(m, API_EP_WHATIF, 418, 5.0);
    api_metrics_observe(m, API_EP_COUNT, 404, 0.0001);
    ndt_buf b;
    ndt_buf_init(&b, 0);
    assert_int_equal(api_metrics_render(m, &b), NDT_OK);
    ndt_buf_terminate(&b);
    assert_non_null(strstr(b.data, "ndtpipe_api_requests_total{code=\"200\",endpoint=\"whatif\"} 2\n"));
    assert_non_null(strstr(b.data, "ndtpipe_api_requests_total{code=\"other\",endpoint=\"whatif\"} 1\n"));
    assert_non_null(strstr(b.data, "ndtpipe_api_requests_total{code=\"404\",endpoint=\"other\"} 1\n"));
    assert_non_null(strstr(b.data, "_bucket{endpoint=\"whatif\",le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(b.data, "_bucket{endpoint=\"whatif\",le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(b.data, "_bucket{endpoint=\"whatif\",le=\"1\"} 2\n"));
    assert_non_null(strstr(b.data, "_bucket{endpoint=\"whatif\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(b.data, "ndtpipe_api_request_duration_seconds_count{endpoint=\"whatif\"} 3\n"));
    ndt_buf_free(&b);
    api_metrics_free(m);
}

static void write_model(const char *dir, const char *id, const char *created, const char *grade)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, id);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/model.json", dir, id);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"model_id\":\"%s\",\"created\":\"%s\"", id, created);
    if (grade)
        fprintf(f, ",\"deployment_grade\":\"%s\"", grade);
    fprintf(f, "}");
    fclose(f);
}

static void test_registry_gate(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_api.XXXXXX";
    assert_non_null(mkdtemp(dir));
    api_model_entry e;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(api_registry_pick(dir, NULL, &e, err, sizeof(err)), NDT_AGAIN);
    write_model(dir, "xgb-a", "2026-01-01T00:00:00Z", "Reliable");
    write_model(dir, "xgb-b", "2026-01-02T00:00:00Z", "Excellent");
    write_model(dir, "xgb-c", "2026-01-03T00:00:00Z", "Unreliable");
    write_model(dir, "xgb-d", "2026-01-04T00:00:00Z", NULL);
    write_model(dir, ".tmp-xgb-e", "2026-01-05T00:00:00Z", "Excellent");
    assert_int_equal(api_registry_pick(dir, NULL, &e, err, sizeof(err)), NDT_OK);
    assert_string_equal(e.id, "xgb-b"); /* the newest gated one */
    assert_int_equal(api_registry_pick(dir, "xgb-a", &e, err, sizeof(err)), NDT_OK);
    assert_int_equal(api_registry_pick(dir, "xgb-c", &e, err, sizeof(err)), NDT_AGAIN);
    assert_non_null(strstr(err, "Unreliable"));
    assert_int_equal(api_registry_pick(dir, "xgb-d", &e, err, sizeof(err)), NDT_AGAIN);
    assert_int_equal(api_registry_pick(dir, "xgb-zz", &e, err, sizeof(err)), NDT_AGAIN);
    assert_int_equal(api_registry_pick(dir, "../etc", &e, err, sizeof(err)), NDT_AGAIN);
    ndt_buf b;
    ndt_buf_init(&b, 0);
    assert_int_equal(api_registry_list(dir, "xgb-b", &b, err, sizeof(err)), NDT_OK);
    ndt_buf_terminate(&b);
    const char *d = strstr(b.data, "xgb-d"), *c = strstr(b.data, "xgb-c"), *a = strstr(b.data, "\"xgb-a");
    assert_true(d && c && a && d < c && c < a); /* newest first */
    assert_null(strstr(b.data, ".tmp"));
    assert_int_equal(strncmp(b.data, "{\"served\":\"xgb-b\",\"models\":[", 28), 0);
    ndt_buf_reset(&b);
    assert_int_equal(api_registry_get(dir, "xgb-nope", &b, err, sizeof(err)), NDT_EBADCONF);
    ndt_buf_free(&b);
    assert_int_equal(api_registry_pick("/nonexistent/registry", NULL, &e, err, sizeof(err)), NDT_EBADCONF);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_type_of(void **state)
{
    (void)state;
    char t[64];
    assert_int_equal(api_twin_type_of("urn:ngsi-ld:ServiceComponent:ndt.a-1", t, sizeof(t)), NDT_OK);
    assert_string_equal(t, "ServiceComponent");
    assert_int_equal(api_twin_type_of("urn:ngsi-ld:Service:", t, sizeof(t)), NDT_EBADCONF);
    assert_int_equal(api_twin_type_of("urn:ngsi-ld::x", t, sizeof(t)), NDT_EBADCONF);
    assert_int_equal(api_twin_type_of("Service:x", t, sizeof(t)), NDT_EBADCONF);
}

/* The NGSI-LD view and the graph over a real SQLite UDR. */
static void test_twin_rendering(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_api_udr.XXXXXX", url[64], err[NDT_ERRBUF_SIZE];
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "sqlite:%s/udr.db", dir);
    udr *u;
    assert_int_equal(udr_open(&u, url, NULL, err, sizeof(err)), NDT_OK);
    const udr_field ns_fields[] = { { .name = "nsState", .kind = UDR_FIELD_STRING, .text = "INSTANTIATED" },
                                    { .name = "endToEndLatency", .number = 12.5 } };
    const udr_point ns = { .type = "NetworkService", .id = "urn:ngsi-ld:NetworkService:ns1", .ts_ms = 1767225620000LL,
                           .fields = ns_fields, .nfields = 2 };
    assert_int_equal(udr_write_points(u, &ns, 1, err, sizeof(err)), NDT_OK);
    /* (The UDR keeps one object per subject and predicate at a time, so
     * the array form of several objects cannot be set up through it.) */
    const udr_relation chain = { .subject = "urn:ngsi-ld:NetworkService:ns1", .predicate = "functionChain",
                                 .object = "urn:ngsi-ld:NetworkFunction:a", .valid_from_ms = 1767225600000LL,
                                 .valid_to_ms = UDR_OPEN };
    assert_int_equal(udr_write_relation(u, &chain, err, sizeof(err)), NDT_OK);
    udr_relation hosted = { .subject = "urn:ngsi-ld:ServiceComponent:p1", .predicate = "infrastructureElement",
                            .object = "urn:ngsi-ld:InfrastructureElement:n1", .valid_from_ms = 1767225600000LL,
                            .valid_to_ms = UDR_OPEN };
    assert_int_equal(udr_write_relation(u, &hosted, err, sizeof(err)), NDT_OK);
    hosted.object = "urn:ngsi-ld:InfrastructureElement:n2"; /* rescheduled: closes n1 */
    hosted.valid_from_ms = 1767225610000LL;
    assert_int_equal(udr_write_relation(u, &hosted, err, sizeof(err)), NDT_OK);
    assert_int_equal(udr_flush(u, err, sizeof(err)), NDT_OK);

    ndt_buf b;
    ndt_buf_init(&b, 0);
    assert_int_equal(api_twin_entities(u, "NetworkService", NULL, 0, 1767225630000LL, &b, err, sizeof(err)), NDT_OK);
    ndt_buf_terminate(&b);
    assert_non_null(strstr(b.data, "\"nsState\":{\"type\":\"Property\",\"value\":\"INSTANTIATED\","
                                   "\"observedAt\":\"2026-01-01T00:00:20.000Z\"}"));
    assert_non_null(strstr(b.data, "\"endToEndLatency\":{\"type\":\"Property\",\"value\":12.5,"
                                   "\"observedAt\":\"2026-01-01T00:00:20.000Z\",\"unitCode\":\"C26\"}"));
    assert_non_null(strstr(b.data, "\"functionChain\":{\"type\":\"Relationship\",\"object\":\"urn:ngsi-ld:NetworkFunction:a\"}"));
    assert_int_equal(b.data[0], '[');
    ndt_buf_reset(&b);
    assert_int_equal(api_twin_entities(u, "NetworkService", "urn:ngsi-ld:NetworkService:ns1", 1, 1767225630000LL, &b,
                                       err, sizeof(err)), NDT_OK);
    ndt_buf_terminate(&b);
    assert_string_equal(b.data, "{\"id\":\"urn:ngsi-ld:NetworkService:ns1\",\"type\":\"NetworkService\","
                                "\"endToEndLatency\":12.5,\"nsState\":\"INSTANTIATED\","
                                "\"functionChain\":\"urn:ngsi-ld:NetworkFunction:a\"}\n");
    ndt_buf_reset(&b);
    assert_int_equal(api_twin_entities(u, "NetworkService", "urn:ngsi-ld:NetworkService:nope", 0, 1767225630000LL, &b,
                                       err, sizeof(err)), NDT_EBADCONF);
    /* The graph follows the reschedule: n1 before it, n2 after. */
    ndt_buf_reset(&b);
    assert_int_equal(api_twin_graph(u, 1767225605000LL, &b, err, sizeof(err)), NDT_OK);
    ndt_buf_terminate(&b);
    assert_non_null(strstr(b.data, "\"object\":\"urn:ngsi-ld:InfrastructureElement:n1\",\"validFrom\":"
                                   "\"2026-01-01T00:00:00.000Z\",\"validTo\":\"2026-01-01T00:00:10.000Z\"}"));
    assert_null(strstr(b.data, "n2"));
    assert_non_null(strstr(b.data, "{\"id\":\"urn:ngsi-ld:InfrastructureElement:n1\",\"type\":\"InfrastructureElement\"}"));
    ndt_buf_reset(&b);
    assert_int_equal(api_twin_graph(u, 1767225615000LL, &b, err, sizeof(err)), NDT_OK);
    ndt_buf_terminate(&b);
    assert_non_null(strstr(b.data, "\"object\":\"urn:ngsi-ld:InfrastructureElement:n2\",\"validFrom\":"
                                   "\"2026-01-01T00:00:10.000Z\",\"validTo\":null}"));
    assert_null(strstr(b.data, ":n1\""));
    ndt_buf_reset(&b);
    assert_int_equal(api_twin_graph(u, 1767225500000LL, &b, err, sizeof(err)), NDT_OK);
    ndt_buf_terminate(&b);
    assert_string_equal(b.data, "{\"at\":\"2025-12-31T23:58:20.000Z\",\"entities\":[],\"relationships\":[]}\n");
    ndt_buf_free(&b);
    udr_close(u);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whatif_valid),
        cmocka_unit_test(test_whatif_errors),
        cmocka_unit_test(test_whatif_body_not_terminated),
        cmocka_unit_test(test_predict),
        cmocka_unit_test(test_change_resolution),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_registry_gate),
        cmocka_unit_test(test_type_of),
        cmocka_unit_test(test_twin_rendering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
