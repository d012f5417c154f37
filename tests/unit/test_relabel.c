/*
 * test_relabel.c: Prometheus relabeling, one table row per behaviour.
 *
 * Each row is a relabel config in YAML, an input label set and the label
 * set Prometheus's documented semantics give (or DROP).  The expectations
 * come from the relabel_config reference (prometheus.io, "relabel_config")
 * and Go's regexp.Expand rules, worked out by hand; hashmod is checked
 * against md5sum(1) run from this test, not against a constant.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/config.h"
#include "ingest/relabel.h"

#define DROP "<dropped>"

static int load_rules(const char *yaml, ingest_relabel_rules *rules, char *err, size_t errlen)
{
    ndt_yaml y;
    if (ndt_yaml_load_string(&y, "t.yml", yaml, strlen(yaml), err, errlen) != NDT_OK)
        return NDT_ERROR;
    int rc = ingest_relabel_rules_from_yaml(&y, ndt_yaml_root(&y), rules, err, errlen);
    ndt_yaml_free(&y);
    return rc;
}

/* "a=1,b=2" into the set (values may not contain ',' or '='). */
static void parse_labels(ingest_labelset *ls, const char *text)
{
    char *copy = ndt_arena_strndup(ls->arena, text, strlen(text));
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = '\0';
        assert_int_equal(ingest_labelset_append(ls, ndt_str_from_cstr(tok),
                                                ndt_str_from_cstr(eq + 1)),
                         NDT_OK);
    }
    ingest_labelset_sort(ls);
}

static void render(const ingest_labelset *ls, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ls->n; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%.*s=%.*s", i ? "," : "",
                                 (int)ls->labels[i].name.len, ls->labels[i].name.ptr,
                                 (int)ls->labels[i].value.len, ls->labels[i].value.ptr);
}

static void run_case(const char *yaml, const char *in, const char *want)
{
    ingest_relabel_rules rules;
    char err[NDT_ERRBUF_SIZE];
    if (load_rules(yaml, &rules, err, sizeof(err)) != NDT_OK)
        fail_msg("rules did not load: %s\n%s", err, yaml);
    ndt_arena arena;
    ndt_arena_init(&arena, 4096, 1 << 20);
    ingest_labelset ls;
    ingest_labelset_init(&ls, &arena);
    parse_labels(&ls, in);
    int keep = -1;
    assert_int_equal(ingest_relabel_apply(&rules, &ls, &keep), NDT_OK);
    char got[1024];
    if (keep)
        render(&ls, got, sizeof(got));
    else
        snprintf(got, sizeof(got), DROP);
    if (strcmp(got, want) != 0)
        fail_msg("rules:\n%sinput: %s\nwant:  %s\ngot:   %s", yaml, in, want, got);
    ndt_arena_free(&arena);
    ingest_relabel_rules_free(&rules);
}

typedef struct relabel_case {
    const char *yaml;
    const char *in;
    const char *want;
} relabel_case;

static const relabel_case cases[] = {
    /* replace: the documented example, ${1} inside text */
    { "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  replacement: ch${1}-ch${1}\n",
      "a=foo", "a=foo,d=choo-choo" },
    /* replace: several sources joined with a custom separator */
    { "- source_labels: [a, b]\n  separator: '-'\n  regex: (.*)-(.*)\n  target_label: c\n"
      "  replacement: $2/$1\n",
      "a=x,b=y", "a=x,b=y,c=y/x" },
    /* the default separator is ';' and a missing label joins as "" */
    { "- source_labels: [a, missing, b]\n  target_label: c\n", "a=1,b=2", "a=1,b=2,c=1;;2" },
    /* replace: no match, nothing changes */
    { "- source_labels: [a]\n  regex: bar\n  target_label: a\n  replacement: x\n", "a=foo",
      "a=foo" },
    /* regex is anchored at both ends */
    { "- source_labels: [a]\n  regex: oo\n  target_label: b\n  replacement: x\n", "a=foo",
      "a=foo" },
    /* replace with an empty result deletes the target */
    { "- source_labels: [missing]\n  target_label: a\n", "a=foo,b=1", "b=1" },
    /* a constant: no sources, the default regex matches the empty string */
    { "- target_label: env\n  replacement: prod\n", "a=1", "a=1,env=prod" },
    /* Go's Expand: $1_x names group "1_x", which does not exist -> empty -> delete */
    { "- source_labels: [a]\n  target_label: b\n  replacement: $1_x\n", "a=v,b=old", "a=v" },
    { "- source_labels: [a]\n  target_label: b\n  replacement: ${1}_x\n", "a=v", "a=v,b=v_x" },
    /* $$ is a literal dollar, a malformed reference keeps its '$' */
    { "- source_labels: [a]\n  target_label: b\n  replacement: $$1-$-${x\n", "a=v",
      "a=v,b=$1-$-${x" },
    /* out-of-range and unset groups expand to nothing */
    { "- source_labels: [a]\n  regex: (a)|(b)\n  target_label: c\n  replacement: <$2$9>\n",
      "a=a", "a=a,c=<>" },
    /* named groups, Python and Perl syntax */
    { "- source_labels: [a]\n  regex: (?P<first>[a-z]+)-(?<second>.*)\n  target_label: b\n"
      "  replacement: ${second}:${first}\n",
      "a=abc-42", "a=abc-42,b=42:abc" },
    /* the target itself may be a template; an invalid result changes nothing */
    { "- source_labels: [a]\n  regex: (.*)=(.*)\n  target_label: ${1}\n  replacement: $2\n",
      "a=k=v", "a=k=v,k=v" },
    { "- source_labels: [a]\n  regex: (.*)=(.*)\n  target_label: ${1}\n  replacement: $2\n",
      "a=1k=v", "a=1k=v" },
    /* keep / drop */
    { "- source_labels: [a]\n  regex: foo\n  action: keep\n", "a=foo", "a=foo" },
    { "- source_labels: [a]\n  regex: foo\n  action: keep\n", "a=foobar", DROP },
    { "- source_labels: [x]\n  regex: .+\n  action: keep\n", "a=foo", DROP },
    { "- source_labels: [x]\n  regex: ''\n  action: keep\n", "a=foo", "a=foo" },
    { "- source_labels: [a]\n  regex: f.*\n  action: drop\n", "a=foo", DROP },
    { "- source_labels: [a]\n  regex: f.*\n  action: DROP\n", "a=bar", "a=bar" },
    /* '.' does not match a newline and the end anchor is the true end */
    { "- source_labels: [a]\n  regex: foo.*\n  action: keep\n", "a=foo\n", DROP },
    /* keepequal / dropequal compare the joined sources with target_label */
    { "- source_labels: [a]\n  target_label: b\n  action: keepequal\n", "a=1,b=1", "a=1,b=1" },
    { "- source_labels: [a]\n  target_label: b\n  action: keepequal\n", "a=1,b=2", DROP },
    { "- source_labels: [a]\n  target_label: b\n  action: dropequal\n", "a=1,b=1", DROP },
    { "- source_labels: [a]\n  target_label: b\n  action: dropequal\n", "a=1,b=2", "a=1,b=2" },
    /* labelmap copies matching names, keeping the originals */
    { "- regex: __meta_(.+)\n  action: labelmap\n", "__meta_zone=z1,__meta_rack=r2,x=1",
      "__meta_rack=r2,__meta_zone=z1,rack=r2,x=1,zone=z1" },
    { "- regex: __meta_(.+)_(.+)\n  action: labelmap\n  replacement: ${2}_$1\n",
      "__meta_a_b=v", "__meta_a_b=v,b_a=v" },
    /* labeldrop / labelkeep match names */
    { "- regex: __.*\n  action: labeldrop\n", "__address__=h:1,__x=2,job=j", "job=j" },
    { "- regex: job|instance\n  action: labelkeep\n", "__address__=h:1,instance=i,job=j,z=1",
      "instance=i,job=j" },
    /* lowercase / uppercase of the joined sources */
    { "- source_labels: [a, b]\n  target_label: c\n  action: lowercase\n", "a=FoO,b=BaR",
      "a=FoO,b=BaR,c=foo;bar" },
    { "- source_labels: [a]\n  target_label: a\n  action: uppercase\n", "a=MiXed", "a=MIXED" },
    { "- source_labels: [missing]\n  target_label: a\n  action: lowercase\n", "a=x,b=y", "b=y" },
    /* Unicode simple case mapping, as Go's strings.ToLower / ToUpper */
    { "- source_labels: [a]\n  target_label: b\n  action: lowercase\n", "a=ÉCOLE-Ñ",
      "a=ÉCOLE-Ñ,b=école-ñ" },
    /* ß has no one-rune uppercase; ɐ (2 bytes) uppercases to Ɐ (3 bytes) */
    { "- source_labels: [a]\n  target_label: b\n  action: uppercase\n", "a=straße ɐ",
      "a=straße ɐ,b=STRAßE Ɐ" },
    /* an invalid byte becomes U+FFFD, as Go's strings.Map writes it */
    { "- source_labels: [a]\n  target_label: b\n  action: uppercase\n", "a=x\xff" "y",
      "a=x\xff" "y,b=X\uFFFDY" },
    /* rules see what earlier rules did */
    { "- source_labels: [a]\n  target_label: b\n- source_labels: [b]\n  regex: (.)(.*)\n"
      "  target_label: c\n  replacement: $2$1\n- regex: a\n  action: labeldrop\n",
      "a=xyz", "b=xyz,c=yzx" },
    /* a drop stops the chain */
    { "- source_labels: [a]\n  action: drop\n  regex: x\n- target_label: z\n  replacement: 1\n",
      "a=x", DROP },
};

static void relabel_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NDT_ARRAY_LEN(cases); i++)
        run_case(cases[i].yaml, cases[i].in, cases[i].want);
}

/* Prometheus's hashmod computed independently: md5sum(1) in a child
 * process, the last 16 hex digits read as a big-endian uint64, mod m. */
static uint64_t md5sum_mod(const char *value, uint64_t modulus)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | md5sum", value);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char hex[64] = "";
    assert_non_null(fgets(hex, sizeof(hex), p));
    pclose(p);
    assert_true(strlen(hex) >= 32);
    char last[17];
    memcpy(last, hex + 16, 16);
    last[16] = '\0';
    return strtoull(last, NULL, 16) % modulus;
}

static void hashmod_matches_md5sum(void **state)
{
    (void)state;
    static const char *const values[] = { "10.0.0.1:9100", "node-a:9100;job", "", "x",
                                          "pod-7.ns.svc:8080" };
    static const uint64_t moduli[] = { 2, 3, 7, 1000, 18446744073709551557ULL };
    for (size_t m = 0; m < NDT_ARRAY_LEN(moduli); m++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml),
                 "- source_labels: [a]\n  target_label: shard\n  modulus: %llu\n"
                 "  action: hashmod\n",
                 (unsigned long long)moduli[m]);
        for (size_t v = 0; v < NDT_ARRAY_LEN(values); v++) {
            char in[128], want[256];
            uint64_t expect = md5sum_mod(values[v], moduli[m]);
            if (values[v][0]) {
                snprintf(in, sizeof(in), "a=%s", values[v]);
                snprintf(want, sizeof(want), "a=%s,shard=%llu", values[v],
                         (unsigned long long)expect);
            } else {
                snprintf(in, sizeof(in), "b=1");
                snprintf(want, sizeof(want), "b=1,shard=%llu", (unsigned long long)expect);
            }
            run_case(yaml, in, want);
        }
    }
}

typedef struct error_case {
    const char *yaml;
    const char *error;
} error_case;

static const error_case errors[] = {
    { "- source_labels: [a]\n  action: replace\n",
      "t.yml:2:11: target_label: relabel configuration for replace action requires "
      "'target_label' value" },
    { "- source_labels: [a]\n  target_label: s\n  action: hashmod\n",
      "t.yml:1:3: modulus: relabel configuration for hashmod requires non-zero modulus" },
    { "- source_labels: [a]\n  target_label: 1abc\n",
      "t.yml:2:17: target_label: '1abc' is invalid 'target_label' for replace action" },
    { "- source_labels: [a]\n  target_label: a-b\n  action: lowercase\n",
      "t.yml:2:17: target_label: 'a-b' is invalid 'target_label' for lowercase action" },
    { "- source_labels: [a]\n  target_label: a\n  action: uppercase\n  replacement: x\n",
      "t.yml:4:16: replacement: 'replacement' can not be set for uppercase action" },
    { "- regex: x\n  action: labelmap\n  replacement: a-$1\n",
      "t.yml:3:16: replacement: 'a-$1' is invalid 'replacement' for labelmap action" },
    { "- source_labels: [a]\n  regex: x\n  action: labeldrop\n",
      "t.yml:3:11: action: labeldrop action requires only 'regex', and no other fields" },
    { "- source_labels: [a]\n  target_label: b\n  regex: x\n  action: keepequal\n",
      "t.yml:4:11: action: keepequal action requires only 'source_labels' and 'target_label', "
      "and no other fields" },
    { "- source_labels: [a]\n  action: repalce\n  target_label: b\n",
      "t.yml:2:11: action: unknown relabel action 'repalce', did you mean replace?" },
    { "- sources_labels: [a]\n  target_label: b\n",
      "t.yml:1:3: unknown key 'sources_labels', did you mean source_labels?" },
    { "- source_labels: [a, 'b-c']\n  target_label: b\n",
      "t.yml:1:22: source_labels: 'b-c' is not a valid label name" },
    { "- source_labels: a\n  target_label: b\n",
      "t.yml:1:18: source_labels: expected a list of label names like [job, instance]" },
    { "- source_labels: [a]\n  target_label: b\n  modulus: -1\n",
      "t.yml:3:12: modulus: expected a non-negative integer, got '-1'" },
    { "- source_labels: [a]\n  target_label: b\n  regex: (foo\n",
      "t.yml:3:10: regex: invalid regular expression '(foo': missing closing parenthesis at "
      "offset 4" },
    { "- source_labels: [a]\n  target_label: b\n  action: keep\n  action: drop\n",
      "t.yml:4:3: action: key already set in this mapping" },
    { "source_labels: [a]\n", "t.yml:1:1: expected a list of relabel configs" },
};

static void validation_errors_name_the_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < NDT_ARRAY_LEN(errors); i++) {
        ingest_relabel_rules rules;
        char err[NDT_ERRBUF_SIZE] = "";
        if (load_rules(errors[i].yaml, &rules, err, sizeof(err)) == NDT_OK) {
            ingest_relabel_rules_free(&rules);
            fail_msg("accepted:\n%s", errors[i].yaml);
        }
        if (strcmp(err, errors[i].error) != 0)
            fail_msg("config:\n%swant: %s\ngot:  %s", errors[i].yaml, errors[i].error, err);
    }
}

static void labelset_sorted_set_get_del(void **state)
{
    (void)state;
    ndt_arena arena;
    ndt_arena_init(&arena, 256, 0);
    ingest_labelset ls;
    ingest_labelset_init(&ls, &arena);
    static const char *const names[] = { "m", "c", "x", "a", "q", "b", "z", "k", "d", "e",
                                         "f", "g", "h", "i", "j", "l", "n", "o", "p", "r" };
    for (size_t i = 0; i < NDT_ARRAY_LEN(names); i++)
        assert_int_equal(ingest_labelset_set(&ls, ndt_str_from_cstr(names[i]),
                                             ndt_str_from_cstr(names[i])),
                         NDT_OK);
    assert_int_equal(ls.n, NDT_ARRAY_LEN(names));
    for (size_t i = 1; i < ls.n; i++)
        assert_true(memcmp(ls.labels[i - 1].name.ptr, ls.labels[i].name.ptr, 1) < 0);
    assert_non_null(ingest_labelset_get(&ls, NDT_STR_LIT("q")));
    assert_null(ingest_labelset_get(&ls, NDT_STR_LIT("qq")));
    ingest_labelset_set(&ls, NDT_STR_LIT("q"), NDT_STR_LIT("new"));
    assert_true(ndt_str_eq_cstr(ingest_labelset_get(&ls, NDT_STR_LIT("q"))->value, "new"));
    ingest_labelset_set(&ls, NDT_STR_LIT("q"), NDT_STR_LIT(""));
    assert_null(ingest_labelset_get(&ls, NDT_STR_LIT("q")));
    ingest_labelset_del(&ls, NDT_STR_LIT("a"));
    ingest_labelset_del(&ls, NDT_STR_LIT("absent"));
    assert_int_equal(ls.n, NDT_ARRAY_LEN(names) - 2);
    assert_true(ndt_str_eq_cstr(ls.labels[0].name, "b"));
    ndt_arena_free(&arena);

    /* An exhausted arena is an error, not a crash. */
    ndt_arena_init(&arena, 64, 64);
    ingest_labelset_init(&ls, &arena);
    static char names2[100][8];
    int rc = NDT_OK;
    for (unsigned i = 0; i < 100 && rc == NDT_OK; i++) {
        snprintf(names2[i], sizeof(names2[i]), "l%03u", i % 1000);
        rc = ingest_labelset_append(&ls, ndt_str_from_cstr(names2[i]), NDT_STR_LIT("v"));
    }
    assert_int_equal(rc, NDT_ERROR);
    ndt_arena_free(&arena);
}

/* PCRE2 backtracks where RE2 would not: a pathological pattern is cut
 * off at the match limit, read as "no match" and counted. */
static void catastrophic_backtracking_is_bounded(void **state)
{
    (void)state;
    ingest_relabel_rules rules;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(load_rules("- source_labels: [a]\n  regex: (a+)+b\n  action: drop\n",
                                &rules, err, sizeof(err)),
                     NDT_OK);
    ndt_arena arena;
    ndt_arena_init(&arena, 4096, 0);
    ingest_labelset ls;
    ingest_labelset_init(&ls, &arena);
    /* 'b' is present (so PCRE2's required-character shortcut does not
     * apply) but not where (a+)+ could reach it: 2^40 ways to fail. */
    char value[43];
    memset(value, 'a', 40);
    memcpy(value + 40, "cb", 3);
    ingest_labelset_set(&ls, NDT_STR_LIT("a"), ndt_str_from_cstr(value));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int keep = -1;
    assert_int_equal(ingest_relabel_apply(&rules, &ls, &keep), NDT_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_int_equal(keep, 1); /* abandoned match = no match = not dropped */
    assert_int_equal(ingest_relabel_match_errors(&rules), 1);
    print_message("pathological regex abandoned after %.1f ms\n", ms);
    assert_true(ms < 1000);
    ndt_arena_free(&arena);
    ingest_relabel_rules_free(&rules);
}

/* metric_relabel_configs run per sample: a rule set that changes nothing
 * must not allocate, and the per-sample cost is printed for the record. */
static void no_change_allocates_nothing(void **state)
{
    (void)state;
    static const char yaml[] =
        "- source_labels: [__name__]\n  regex: go_.*\n  action: drop\n"
        "- source_labels: [job]\n  target_label: job\n"
        "- source_labels: [__name__, le]\n  regex: (.*_bucket);\\+Inf\n  target_label: inf\n"
        "  replacement: 'yes'\n"
        "- regex: tmp_.*\n  action: labeldrop\n";
    ingest_relabel_rules rules;
    char err[NDT_ERRBUF_SIZE];
    assert_int_equal(load_rules(yaml, &rules, err, sizeof(err)), NDT_OK);
    ndt_arena arena;
    ndt_arena_init(&arena, 4096, 0);
    ingest_labelset ls;
    ingest_labelset_init(&ls, &arena);
    parse_labels(&ls, "__name__=http_requests_total,code=200,instance=h:1,job=api,method=get");
    size_t used_before = arena.allocated;
    void *probe = ndt_arena_alloc(&arena, 1);
    enum { N = 200000 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        int keep;
        assert_int_equal(ingest_relabel_apply(&rules, &ls, &keep), NDT_OK);
        assert_int_equal(keep, 1);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Nothing was taken from the arena: the next allocation follows the probe. */
    char *next = ndt_arena_alloc(&arena, 1);
    assert_int_equal(arena.allocated, used_before);
    assert_true(next > (char *)probe && next - (char *)probe <= 64);
    double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / N;
    print_message("4 metric relabel rules, no change: %.0f ns per sample\n", ns);
    ndt_arena_free(&arena);
    ingest_relabel_rules_free(&rules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(relabel_table),
        cmocka_unit_test(hashmod_matches_md5sum),
        cmocka_unit_test(validation_errors_name_the_key),
        cmocka_unit_test(labelset_sorted_set_get_del),
        cmocka_unit_test(catastrophic_backtracking_is_bounded),
        cmocka_unit_test(no_change_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
