/*
 * test_config.c: YAML positions and errors, Prometheus durations and
 * sizes, and the declarative option maps.
 *
 * Expected values for durations and sizes follow Prometheus's documented
 * grammar (<duration>: ((([0-9]+)y)?(([0-9]+)w)?...(([0-9]+)ms)?|0),
 * body_size_limit: alecthomas/units base-2 bytes) and are computed here
 * from the unit definitions, not copied from a run of the code under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/ndt.h"

#define NS_MS 1000000LL
#define NS_S 1000000000LL
#define NS_M (60 * NS_S)
#define NS_H (60 * NS_M)
#define NS_D (24 * NS_H)

static void durations_valid(void **state)
{
    (void)state;
    static const struct { const char *text; int64_t ns; } cases[] = {
        { "0", 0 },
        { "0s", 0 },
        { "20ms", 20 * NS_MS },
        { "15s", 15 * NS_S },
        { "1m30s", 90 * NS_S },
        { "1h30m", 90 * NS_M },
        { "2d", 2 * NS_D },
        { "1w", 7 * NS_D },
        { "1y", 365 * NS_D },
        { "1y2w3d4h5m6s7ms", 365 * NS_D + 14 * NS_D + 3 * NS_D + 4 * NS_H + 5 * NS_M + 6 * NS_S +
                                  7 * NS_MS },
        { "500us", 500000 },
        { "500\xc2\xb5s", 500000 },
        { "250ns", 250 },
        { "1s500us", NS_S + 500000 },
        { "90s", 90 * NS_S }, /* a unit need not be normalised */
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        int64_t ns = -1;
        if (ndt_duration_parse(cases[i].text, &ns) != NDT_OK)
            fail_msg("'%s' was refused", cases[i].text);
        if (ns != cases[i].ns)
            fail_msg("'%s' gave %lld, want %lld", cases[i].text, (long long)ns,
                     (long long)cases[i].ns);
    }
}

static void durations_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",       "20",    "-1s",   "+1s",     "1.5s", "1S",  "1 s", " 1s", "1s ",
        "30m1h",  "1s1s",  "1ms1s", "s",       "1x",   "1sec", "1h30", "ms", "0x10s",
        "300y",   /* 300 years overflows int64 nanoseconds */
        "99999999999999999999s", "1m-1s",
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(bad); i++) {
        int64_t ns = 0;
        if (ndt_duration_parse(bad[i], &ns) == NDT_OK)
            fail_msg("'%s' was accepted as %lld ns", bad[i], (long long)ns);
    }
}

static void durations_format_round_trip(void **state)
{
    (void)state;
    static const struct { int64_t ns; const char *text; } cases[] = {
        { 0, "0s" },           { 20 * NS_MS, "20ms" },       { 90 * NS_S, "1m30s" },
        { 10 * NS_S, "10s" },  { NS_D + NS_H, "1d1h" },      { 7 * NS_D, "1w" },
        { 1500, "1us500ns" },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++) {
        char buf[64];
        ndt_duration_format(cases[i].ns, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
        int64_t back;
        assert_int_equal(ndt_duration_parse(buf, &back), NDT_OK);
        assert_int_equal(back, cases[i].ns);
    }
}

static void sizes(void **state)
{
    (void)state;
    static const struct { const char *text; uint64_t bytes; } ok[] = {
        { "0", 0 },
        { "1B", 1 },
        { "512KiB", 512 * 1024 },
        { "512KB", 512 * 1024 }, /* base 2 like Prometheus, KB == KiB */
        { "10MB", 10ULL << 20 },
        { "10MiB", 10ULL << 20 },
        { "1GB", 1ULL << 30 },
        { "2TiB", 2ULL << 40 },
        { "1.5KB", 1536 },
        { "1MB512KB", (1ULL << 20) + (512ULL << 10) },
    };
    for (size_t i = 0; i < NDT_ARRAY_LEN(ok); i++) {
        uint64_t n = 1;
        if (ndt_size_parse(ok[i].text, &n) != NDT_OK)
            fail_msg("'%s' refused", ok[i].text);
        if (n != ok[i].bytes)
            fail_msg("'%s' gave %llu", ok[i].text, (unsigned long long)n);
    }
    static const char *const bad[] = { "", "10", "10kB", "10 MB", "10mb", "MB", "-1MB",
                                       "10XB", "9EB", "1.KB.", "." };
    for (size_t i = 0; i < NDT_ARRAY_LEN(bad); i++) {
        uint64_t n;
        if (ndt_size_parse(bad[i], &n) == NDT_OK)
            fail_msg("'%s' accepted as %llu", bad[i], (unsigned long long)n);
    }
}

static void yaml_positions_and_null(void **state)
{
    (void)state;
    static const char text[] = "global:\n"
                               "  scrape_interval: 15s\n"
                               "  empty:\n"
                               "  tilde: ~\n"
                               "  quoted: \"\"\n"
                               "list: [a, b]\n";
    ndt_yaml y;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_yaml_load_string(&y, "t.yml", text, strlen(text), err, sizeof(err)),
                     NDT_OK);
    yaml_node_t *global = ndt_yaml_map_get(&y, ndt_yaml_root(&y), "global");
    assert_non_null(global);
    yaml_node_t *si = ndt_yaml_map_get(&y, global, "scrape_interval");
    assert_string_equal(ndt_yaml_scalar(si), "15s");
    assert_true(ndt_yaml_is_null(ndt_yaml_map_get(&y, global, "empty")));
    assert_true(ndt_yaml_is_null(ndt_yaml_map_get(&y, global, "tilde")));
    assert_false(ndt_yaml_is_null(ndt_yaml_map_get(&y, global, "quoted")));
    assert_false(ndt_yaml_is_null(si));
    assert_null(ndt_yaml_scalar(ndt_yaml_map_get(&y, ndt_yaml_root(&y), "list")));
    assert_null(ndt_yaml_map_get(&y, global, "missing"));

    assert_int_equal(ndt_yaml_error(&y, si, "scrape_interval", err, sizeof(err), "bad %d", 7),
                     NDT_ERROR);
    assert_string_equal(err, "t.yml:2:20: scrape_interval: bad 7");
    ndt_yaml_free(&y);
}

static void yaml_syntax_error_has_position(void **state)
{
    (void)state;
    static const char text[] = "a: 1\n"
                               "b: [1, 2\n"
                               "c: 3\n";
    ndt_yaml y;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_yaml_load_string(&y, "bad.yml", text, strlen(text), err, sizeof(err)),
                     NDT_ERROR);
    /* libyaml reports the unclosed flow sequence where it sees "c: 3"
     * cannot continue it: line 3, column 2 (the ':' after c). */
    assert_string_equal(err, "bad.yml:3:2: invalid YAML: did not find expected ',' or ']' "
                             "(while parsing a flow sequence at line 2)");

    static const char tabs[] = "a:\n\tb: 1\n";
    assert_int_equal(ndt_yaml_load_string(&y, "tab.yml", tabs, strlen(tabs), err, sizeof(err)),
                     NDT_ERROR);
    assert_non_null(strstr(err, "tab.yml:2:1: invalid YAML"));
}

static void yaml_duplicate_keys_are_errors(void **state)
{
    (void)state;
    static const char text[] = "a: 1\nb: 2\na: 3\n";
    ndt_yaml y;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_yaml_load_string(&y, "d.yml", text, strlen(text), err, sizeof(err)),
                     NDT_OK);
    assert_int_equal(ndt_yaml_check_unique_keys(&y, ndt_yaml_root(&y), err, sizeof(err)),
                     NDT_ERROR);
    assert_string_equal(err, "d.yml:3:1: a: key already set in this mapping");
    ndt_yaml_free(&y);
}

static void yaml_merge_keys(void **state)
{
    (void)state;
    static const char text[] = "defaults: &d\n"
                               "  scrape_interval: 5s\n"
                               "  metrics_path: /m\n"
                               "more: &e\n"
                               "  <<: *d\n"
                               "  scheme: https\n"
                               "job:\n"
                               "  <<: [*e, {honor_labels: true, scheme: http}]\n"
                               "  metrics_path: /own\n";
    ndt_yaml y;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_yaml_load_string(&y, "m.yml", text, strlen(text), err, sizeof(err)),
                     NDT_OK);
    yaml_node_t *job = ndt_yaml_map_get(&y, ndt_yaml_root(&y), "job");
    assert_string_equal(ndt_yaml_scalar(ndt_yaml_map_get(&y, job, "metrics_path")), "/own");
    assert_string_equal(ndt_yaml_scalar(ndt_yaml_map_get(&y, job, "scrape_interval")), "5s");
    /* the first mapping of the list wins over the second */
    assert_string_equal(ndt_yaml_scalar(ndt_yaml_map_get(&y, job, "scheme")), "https");
    assert_string_equal(ndt_yaml_scalar(ndt_yaml_map_get(&y, job, "honor_labels")), "true");
    assert_null(ndt_yaml_map_get(&y, job, "<<"));
    assert_int_equal(ndt_yaml_check_unique_keys(&y, job, err, sizeof(err)), NDT_OK);
    ndt_yaml_free(&y);

    static const char bad[] = "a:\n  <<: 3\n";
    assert_int_equal(ndt_yaml_load_string(&y, "m.yml", bad, strlen(bad), err, sizeof(err)),
                     NDT_ERROR);
    assert_string_equal(err, "m.yml:2:7: <<: a merge key needs a mapping or a list of mappings");
}

static void yaml_missing_file(void **state)
{
    (void)state;
    ndt_yaml y;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_yaml_load_file(&y, "/nonexistent/x.yml", err, sizeof(err)), NDT_ERROR);
    assert_non_null(strstr(err, "/nonexistent/x.yml: cannot open"));

    char path[] = "/tmp/ndt-big.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (16 << 20) + 1), 0);
    close(fd);
    assert_int_equal(ndt_yaml_load_file(&y, path, err, sizeof(err)), NDT_ERROR);
    assert_non_null(strstr(err, "larger than 16 MiB"));
    unlink(path);
}

typedef struct demo_conf {
    char *name;
    int enabled;
    int64_t retries;
    double ratio;
    int64_t interval_ns;
    uint64_t limit;
    uint64_t count;
} demo_conf;

static const ndt_conf_entry demo_map[] = {
    { "name", NDT_CONF_STRING, "demo", offsetof(demo_conf, name), "a name" },
    { "enabled", NDT_CONF_BOOL, "true", offsetof(demo_conf, enabled), "on or off" },
    { "retries", NDT_CONF_INT, "-3", offsetof(demo_conf, retries), "retries" },
    { "ratio", NDT_CONF_DOUBLE, "0.5", offsetof(demo_conf, ratio), "a ratio" },
    { "scrape_interval", NDT_CONF_DURATION, "20ms", offsetof(demo_conf, interval_ns), "interval" },
    { "body_size_limit", NDT_CONF_SIZE, NULL, offsetof(demo_conf, limit), "cap" },
    { "sample_limit", NDT_CONF_UINT, NULL, offsetof(demo_conf, count), "samples" },
    { NULL },
};

static void confmap_defaults_and_set(void **state)
{
    (void)state;
    demo_conf c = { 0 };
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_confmap_set_defaults(demo_map, &c, err, sizeof(err)), NDT_OK);
    assert_string_equal(c.name, "demo");
    assert_int_equal(c.enabled, 1);
    assert_int_equal(c.retries, -3);
    assert_true(c.ratio == 0.5);
    assert_int_equal(c.interval_ns, 20 * NS_MS);
    assert_int_equal(c.limit, 0);

    assert_int_equal(ndt_confmap_set(demo_map, &c, "name", "other", err, sizeof(err)), NDT_OK);
    assert_string_equal(c.name, "other");
    assert_int_equal(ndt_confmap_set(demo_map, &c, "body_size_limit", "1MB", err, sizeof(err)),
                     NDT_OK);
    assert_int_equal(c.limit, 1 << 20);
    assert_int_equal(ndt_confmap_set(demo_map, &c, "sample_limit", "-1", err, sizeof(err)),
                     NDT_ERROR);
    assert_string_equal(err, "sample_limit: expected a non-negative integer, got '-1'");
    assert_int_equal(ndt_confmap_set(demo_map, &c, "enabled", "maybe", err, sizeof(err)),
                     NDT_ERROR);
    assert_int_equal(ndt_confmap_set(demo_map, &c, "scrape_intervl", "1s", err, sizeof(err)),
                     NDT_ERROR);
    assert_string_equal(err, "unknown key 'scrape_intervl', did you mean scrape_interval?");
    assert_int_equal(ndt_confmap_set(demo_map, &c, "zzz", "1", err, sizeof(err)), NDT_ERROR);
    assert_string_equal(err, "unknown key 'zzz'");
    ndt_confmap_free(demo_map, &c);
    assert_null(c.name);
}

static int known_elsewhere(const char *key)
{
    return strcmp(key, "static_configs") == 0;
}

static void confmap_apply_yaml_errors_name_the_key(void **state)
{
    (void)state;
    static const char text[] = "name: x\n"
                               "static_configs: [1]\n"
                               "scrape_interval: 1m30s\n"
                               "retries:\n"
                               "enabled: false\n";
    demo_conf c = { 0 };
    ndt_yaml y;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(ndt_confmap_set_defaults(demo_map, &c, err, sizeof(err)), NDT_OK);
    assert_int_equal(ndt_yaml_load_string(&y, "c.yml", text, strlen(text), err, sizeof(err)),
                     NDT_OK);
    assert_int_equal(ndt_confmap_apply_yaml(demo_map, &c, &y, ndt_yaml_root(&y), known_elsewhere,
                                            err, sizeof(err)),
                     NDT_OK);
    assert_string_equal(c.name, "x");
    assert_int_equal(c.interval_ns, 90 * NS_S);
    assert_int_equal(c.retries, -3); /* null keeps the default */
    assert_int_equal(c.enabled, 0);
    ndt_yaml_free(&y);

    static const char typo[] = "name: x\n"
                               "  # comment\n"
                               "scrape_intervl: 10s\n";
    assert_int_equal(ndt_yaml_load_string(&y, "c.yml", typo, strlen(typo), err, sizeof(err)),
                     NDT_OK);
    assert_int_equal(ndt_confmap_apply_yaml(demo_map, &c, &y, ndt_yaml_root(&y), NULL, err,
                                            sizeof(err)),
                     NDT_ERROR);
    assert_string_equal(err, "c.yml:3:1: unknown key 'scrape_intervl', did you mean scrape_interval?");
    ndt_yaml_free(&y);

    static const char badval[] = "scrape_interval: 20 ms\n";
    assert_int_equal(ndt_yaml_load_string(&y, "c.yml", badval, strlen(badval), err, sizeof(err)),
                     NDT_OK);
    assert_int_equal(ndt_confmap_apply_yaml(demo_map, &c, &y, ndt_yaml_root(&y), NULL, err,
                                            sizeof(err)),
                     NDT_ERROR);
    assert_string_equal(err, "c.yml:1:18: scrape_interval: expected a duration like 20ms, 15s or "
                             "1m30s, got '20 ms'");
    ndt_yaml_free(&y);

    static const char nested[] = "ratio: {a: 1}\n";
    assert_int_equal(ndt_yaml_load_string(&y, "c.yml", nested, strlen(nested), err, sizeof(err)),
                     NDT_OK);
    assert_int_equal(ndt_confmap_apply_yaml(demo_map, &c, &y, ndt_yaml_root(&y), NULL, err,
                                            sizeof(err)),
                     NDT_ERROR);
    assert_string_equal(err, "c.yml:1:8: ratio: expected a number, got a mapping");
    ndt_yaml_free(&y);
    ndt_confmap_free(demo_map, &c);
}

static void confmap_help_lists_every_option(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ndt_confmap_print_help(demo_map, f);
    fclose(f);
    for (const ndt_conf_entry *e = demo_map; e->name; e++)
        assert_non_null(strstr(text, e->name));
    assert_non_null(strstr(text, "(default 20ms)"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations_valid),
        cmocka_unit_test(durations_invalid),
        cmocka_unit_test(durations_format_round_trip),
        cmocka_unit_test(sizes),
        cmocka_unit_test(yaml_positions_and_null),
        cmocka_unit_test(yaml_syntax_error_has_position),
        cmocka_unit_test(yaml_duplicate_keys_are_errors),
        cmocka_unit_test(yaml_merge_keys),
        cmocka_unit_test(yaml_missing_file),
        cmocka_unit_test(confmap_defaults_and_set),
        cmocka_unit_test(confmap_apply_yaml_errors_name_the_key),
        cmocka_unit_test(confmap_help_lists_every_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
