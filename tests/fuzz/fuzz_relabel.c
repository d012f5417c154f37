/*
 * fuzz_relabel.c: libFuzzer target for relabeling.  The input is a YAML
 * list of relabel rules, a NUL byte, then "name=value" lines; the rules
 * are applied to that label set.  Besides the sanitizers, it checks the
 * label set's invariant: sorted by name, no name twice.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "ingest/relabel.h"

static void labels_from_lines(ingest_labelset *ls, const char *p, const char *end)
{
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        const char *eq = memchr(p, '=', (size_t)(nl - p));
        if (eq && eq > p)
            ingest_labelset_set(ls, (ndt_str){ p, (size_t)(eq - p) },
                                (ndt_str){ eq + 1, (size_t)(nl - eq - 1) });
        p = nl + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    char err[NDT_ERRBUF_SIZE];
    ingest_relabel_rules rules;
    ndt_yaml y;
    if (!nul || ndt_yaml_load_string(&y, "fuzz.yml", (const char *)data, (size_t)(nul - data),
                                     err, sizeof(err)) != NDT_OK)
        return 0;
    int rc = ingest_relabel_rules_from_yaml(&y, ndt_yaml_root(&y), &rules, err, sizeof(err));
    ndt_yaml_free(&y);
    if (rc != NDT_OK)
        return 0;
    ndt_arena arena;
    ingest_labelset ls;
    int keep;
    ndt_arena_init(&arena, 1024, 1 << 20);
    ingest_labelset_init(&ls, &arena);
    labels_from_lines(&ls, (const char *)nul + 1, (const char *)data + size);
    ingest_relabel_apply(&rules, &ls, &keep);
    for (size_t i = 1; i < ls.n; i++) {
        ndt_str a = ls.labels[i - 1].name, b = ls.labels[i].name;
        size_t m = a.len < b.len ? a.len : b.len;
        int c = memcmp(a.ptr, b.ptr, m);
        if (c > 0 || (c == 0 && a.len >= b.len))
            __builtin_trap();
    }
    ndt_arena_free(&arena);
    ingest_relabel_rules_free(&rules);
    return 0;
}
