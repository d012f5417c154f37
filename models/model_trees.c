/*
 * model_trees.c: the compiled tree predictor.  A trained XGBoost booster is
 * read from its own JSON model (XGBoosterSaveModelToBuffer, "json") and
 * laid out flat so one row is predicted without XGBoost and without a
 * DMatrix: serving a what-if is one row, and XGBoost spends ~240 us on it
 * for the paper's 2000 trees, mostly outside the tree walk.
 *
 * Two layouts:
 *   complete  (the default) every tree is padded to a complete binary tree
 *             of the ensemble's maximum depth D (a leaf above depth D
 *             becomes a subtree whose leaves all hold its value), so every
 *             walk is exactly D steps with no leaf test.  The tree is cut
 *             into blocks of 4 levels (15 nodes), one 64-byte cache line
 *             each, and a node is one 32-bit word: the feature, the
 *             missing-goes-left bit, and the split's rank among that
 *             feature's distinct split values.  The row's features are
 *             ranked once (a binary search each), after which x < split is
 *             exactly rank(x) < rank(split).  A depth-8 tree touches 3
 *             cache lines (2 blocks, 1 line of leaves) instead of ~8: with
 *             4 MB of trees for the paper's model, memory traffic is what
 *             a single-row walk costs.  Eight trees walk in lockstep (their
 *             misses overlap); with AVX2 sixteen, one per lane.
 *             Used up to depth MODEL_TREES_COMPLETE_MAX_DEPTH, 256 features
 *             and 65534 distinct split values per feature.
 *   sparse    nodes in breadth-first order with both children adjacent,
 *             the general case (deep trees), one tree at a time.
 *
 * Promises: the output equals XGBoost's bit for bit for the objectives
 * whose output is the margin (reg:squarederror and the other identity-link
 * regressions): the same decisions (go left when x < split, the stored
 * default direction when x is NaN, i.e. missing) and the same float
 * accumulation (base_score, then each tree's leaf in tree order).
 * tests/unit/test_trees.c checks it against XGBoosterPredictFromDense.
 * A compiled model is immutable: predicting from several threads at once is
 * safe.
 *
 * Memory while compiling is bounded by one tree: the JSON's "trees" array
 * is cut out of the document and each tree object is parsed by cJSON on
 * its own (cJSON on the whole 52 MB model would need ~0.8 GB of nodes).
 * Bad input (truncated, foreign, cyclic or out-of-range trees) is an
 * NDT_EBADCONF with the reason, never a crash (tests/fuzz/fuzz_trees_json.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "models/models.h"

#define MODEL_TREES_COMPLETE_MAX_DEPTH 12
#define MODEL_TREES_COMPLETE_MAX_BYTES (256u << 20)
#define MODEL_TREES_MAX_NODES (1u << 24) /* one tree */
#define MODEL_TREES_MAX_TREES 1000000u
#define MODEL_TREES_MAX_FEATURES 65535 /* a sparse node holds the feature in 16 bits */
#define MODEL_TREES_MAX_NESTING 64
#define MODEL_TREES_LOCKSTEP 8
#define BLOCK_HEIGHT 4 /* levels of a tree in one 64-byte block: 15 words */

/* A sparse node: a leaf when left < 0 (value is the leaf's); otherwise
 * the children are left and left + 1 in the same array. */
typedef struct tree_node {
    float value;
    int32_t left;
    uint16_t feature;
    uint8_t default_left;
} tree_node;

struct model_trees {
    int nfeatures;
    size_t ntrees;
    float base_score;
    int complete; /* which layout */
    /* complete (blocked): see the top comment */
    int depth, levels;        /* max tree depth; block levels, ceil(depth / 4) */
    size_t nblocks, nleaves;  /* per tree */
    size_t first[MODEL_TREES_COMPLETE_MAX_DEPTH / BLOCK_HEIGHT + 1]; /* first block of a level */
    uint32_t *words;          /* [ntrees * nblocks * 16] */
    float *leaf;              /* [ntrees * nleaves] */
    float *thr;               /* every feature's distinct split values, ascending */
    size_t *thr_start;        /* [nfeatures + 1]: feature f's are thr[start[f], start[f + 1]) */
    int simd;                 /* the AVX2 walk applies (x86-64 with AVX2, <= 8 features) */
    /* sparse */
    tree_node *nodes;
    size_t nnodes, cap;
    size_t *root; /* [ntrees] */
};

/* A complete-layout word: split rank (k + 1 for the k-th distinct split
 * value of the feature) in bits 16-31, missing-goes-left in bit 15, the
 * feature in bits 0-7. */
#define TREE_DEFAULT_LEFT 0x8000u
#define WORD_FEATURE(w) ((w) & 0xffu)
#define WORD_RANK(w) ((w) >> 16)
#define MODEL_TREES_MAX_RANK 65535u
#define MODEL_TREES_BLOCK_FEATURES 256

/* One tree as read from the JSON, before layout. */
typedef struct tree_src {
    size_t n;
    int32_t *left, *right;
    int32_t *feature;
    float *cond;
    uint8_t *default_left;
    int depth;
} tree_src;

static void tree_src_free(tree_src *t)
{
    free(t->left);
    free(t->right);
    free(t->feature);
    free(t->cond);
    free(t->default_left);
    *t = (tree_src){ 0 };
}

/* ---- slicing the document without parsing all of it ---- */

/* The end of the JSON value starting at p (after whitespace), or NULL when
 * it is malformed or nests deeper than MODEL_TREES_MAX_NESTING.  Strings
 * are skipped with their escapes, so a brace inside a name is no brace. */
static const char *json_skip_value(const char *p, const char *end)
{
    int depth = 0;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (p >= end)
        return NULL;
    do {
        if (p >= end)
            return NULL;
        char c = *p;
        if (c == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\')
                    p++;
            if (p >= end)
                return NULL;
            p++;
        } else if (c == '{' || c == '[') {
            if (++depth > MODEL_TREES_MAX_NESTING)
                return NULL;
            p++;
        } else if (c == '}' || c == ']') {
            if (--depth < 0)
                return NULL;
            p++;
        } else if (depth == 0) {
            /* a scalar at top level: up to a delimiter */
            while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n')
                p++;
            return p;
        } else {
            p++;
        }
    } while (depth > 0);
    return p;
}

static int trees_fail(char *err, size_t errlen, const char *fmt, const char *what)
{
    snprintf(err, errlen, fmt, what);
    return NDT_EBADCONF;
}

static const cJSON *json_path(const cJSON *o, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n && o; i++)
        o = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
    return o;
}

/* XGBoost writes its parameters as strings ("5E-1"); accept numbers too. */
static int json_number(const cJSON *v, double *out)
{
    char *end;
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return 1;
    }
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return 0;
    *out = strtod(v->valuestring, &end);
    return *end == '\0';
}

/* An array of n numbers (or booleans) converted by the caller. */
static int json_numbers(const cJSON *tree, const char *key, size_t n, double **out)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(tree, key);
    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != n)
        return 0;
    double *v = malloc((n ? n : 1) * sizeof(double));
    if (!v)
        return 0;
    size_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        if (cJSON_IsNumber(e))
            v[i] = e->valuedouble;
        else if (cJSON_IsBool(e))
            v[i] = cJSON_IsTrue(e);
        else {
            free(v);
            return 0;
        }
    }
    *out = v;
    return 1;
}

/* Depth of the subtree at node i; -1 on a cycle or a shared child (each
 * node may be reached once).  Recursion depth is bounded by the check. */
static int tree_depth(const tree_src *t, int32_t i, uint8_t *seen, int level)
{
    if (level > MODEL_MAX_DEPTH * 2 || seen[i])
        return -1;
    seen[i] = 1;
    if (t->left[i] < 0)
        return 0;
    int l = tree_depth(t, t->left[i], seen, level + 1);
    int r = l < 0 ? -1 : tree_depth(t, t->right[i], seen, level + 1);
    if (l < 0 || r < 0)
        return -1;
    return 1 + (l > r ? l : r);
}

static int tree_src_read(const cJSON *tree, int nfeatures, tree_src *t, char *err, size_t errlen)
{
    static const char *const keys[] = { "left_children", "right_children", "split_indices",
                                        "split_conditions", "default_left" };
    double *v[5] = { 0 };
    const cJSON *param = cJSON_GetObjectItemCaseSensitive(tree, "tree_param");
    double nn;
    int rc = NDT_EBADCONF;
    *t = (tree_src){ 0 };
    if (!json_number(cJSON_GetObjectItemCaseSensitive(param, "num_nodes"), &nn) || nn < 1 ||
        nn > MODEL_TREES_MAX_NODES || nn != floor(nn))
        return trees_fail(err, errlen, "a tree has no valid %s", "tree_param.num_nodes");
    t->n = (size_t)nn;
    for (int k = 0; k < 5; k++)
        if (!json_numbers(tree, keys[k], t->n, &v[k])) {
            trees_fail(err, errlen, "a tree's %s is missing, not numeric or not num_nodes long",
                       keys[k]);
            goto done;
        }
    t->left = malloc(t->n * sizeof(int32_t));
    t->right = malloc(t->n * sizeof(int32_t));
    t->feature = malloc(t->n * sizeof(int32_t));
    t->cond = malloc(t->n * sizeof(float));
    t->default_left = malloc(t->n);
    uint8_t *seen = calloc(t->n, 1);
    if (!t->left || !t->right || !t->feature || !t->cond || !t->default_left || !seen) {
        free(seen);
        snprintf(err, errlen, "out of memory reading a tree of %zu nodes", t->n);
        rc = NDT_ERROR;
        goto done;
    }
    for (size_t i = 0; i < t->n; i++) {
        double l = v[0][i], r = v[1][i], f = v[2][i];
        int leaf = l == -1;
        if (leaf ? r != -1 : !(l >= 1 && l < (double)t->n && r >= 1 && r < (double)t->n &&
                               l == floor(l) && r == floor(r) && f >= 0 && f < nfeatures &&
                               f == floor(f))) {
            free(seen);
            snprintf(err, errlen, "tree node %zu: children %g/%g or split feature %g out of range",
                     i, l, r, f);
            goto done;
        }
        t->left[i] = (int32_t)l;
        t->right[i] = (int32_t)r;
        t->feature[i] = leaf ? 0 : (int32_t)f;
        t->cond[i] = (float)v[3][i];
        t->default_left[i] = v[4][i] != 0;
    }
    /* categorical splits test set membership, not x < split: refused */
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(tree, "split_type");
    for (const cJSON *e = cJSON_IsArray(types) ? types->child : NULL; e; e = e->next)
        if (!cJSON_IsNumber(e) || e->valuedouble != 0) {
            free(seen);
            trees_fail(err, errlen, "a tree has %s, which do not compile", "categorical splits");
            goto done;
        }
    t->depth = tree_depth(t, 0, seen, 0);
    free(seen);
    if (t->depth < 0) {
        trees_fail(err, errlen, "a tree is not a tree (%s)", "a node is reached twice or too deep");
        goto done;
    }
    rc = NDT_OK;
done:
    for (int k = 0; k < 5; k++)
        free(v[k]);
    if (rc != NDT_OK)
        tree_src_free(t);
    return rc;
}

/* ---- layouts ---- */

static int trees_cpu_has_avx2(void);

static int float_cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Every feature's distinct split values, sorted: the rank alphabet.
 * NDT_AGAIN when a feature has more than the word's 16 bits can rank. */
static int complete_thresholds(model_trees *m, const tree_src *src, char *err, size_t errlen)
{
    size_t total = 0;
    m->thr_start = calloc((size_t)m->nfeatures + 1, sizeof(size_t));
    for (size_t k = 0; k < m->ntrees; k++)
        for (size_t i = 0; i < src[k].n; i++)
            total += src[k].left[i] >= 0;
    m->thr = malloc((total ? total : 1) * sizeof(float));
    size_t *count = calloc((size_t)m->nfeatures + 1, sizeof(size_t));
    if (!m->thr_start || !m->thr || !count) {
        free(count);
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    for (size_t k = 0; k < m->ntrees; k++)
        for (size_t i = 0; i < src[k].n; i++)
            if (src[k].left[i] >= 0)
                count[src[k].feature[i] + 1]++;
    for (int f = 0; f < m->nfeatures; f++)
        count[f + 1] += count[f];
    memcpy(m->thr_start, count, ((size_t)m->nfeatures + 1) * sizeof(size_t));
    for (size_t k = 0; k < m->ntrees; k++)
        for (size_t i = 0; i < src[k].n; i++)
            if (src[k].left[i] >= 0)
                m->thr[count[src[k].feature[i]]++] = src[k].cond[i];
    free(count);
    /* sort and deduplicate each feature's run in place (== merges -0 and 0,
     * which compare alike, so ranks order exactly as < does) */
    size_t out = 0;
    for (int f = 0; f < m->nfeatures; f++) {
        size_t lo = m->thr_start[f], hi = m->thr_start[f + 1], start = out;
        qsort(m->thr + lo, hi - lo, sizeof(float), float_cmp);
        for (size_t i = lo; i < hi; i++)
            if (out == start || m->thr[out - 1] != m->thr[i])
                m->thr[out++] = m->thr[i];
        m->thr_start[f] = start;
        if (out - start >= MODEL_TREES_MAX_RANK)
            return NDT_AGAIN;
    }
    m->thr_start[m->nfeatures] = out;
    return NDT_OK;
}

/* How many split values of feature f are <= v: the row's rank.  Then
 * v < t_k (the k-th distinct value) exactly when rank(v) < k + 1. */
static uint32_t complete_rank(const model_trees *m, int f, float v)
{
    size_t lo = m->thr_start[f], hi = m->thr_start[f + 1], base = lo;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->thr[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)(lo - base);
}

/* Fills tree `tree` from source node i, which sits at position p (heap
 * order, 0..14) of block j of block level L; positions 15..30 are the
 * children blocks (or the leaves after the last level).  A leaf above the
 * bottom fills its whole subtree, so every walk takes the same number of
 * steps. */
static void complete_fill(model_trees *m, size_t tree, const tree_src *t, int32_t i, int L,
                          size_t j, size_t p)
{
    if (p >= 15) {
        j = j * 16 + (p - 15);
        if (L + 1 == m->levels) {
            m->leaf[tree * m->nleaves + j] = t->cond[i];
            return;
        }
        L++;
        p = 0;
    }
    uint32_t *w = &m->words[(tree * m->nblocks + m->first[L] + j) * 16 + p];
    if (t->left[i] < 0) {
        *w = 0;
        complete_fill(m, tree, t, i, L, j, 2 * p + 1);
        complete_fill(m, tree, t, i, L, j, 2 * p + 2);
        return;
    }
    int f = t->feature[i];
    size_t lo = m->thr_start[f], hi = m->thr_start[f + 1];
    float *k = bsearch(&t->cond[i], m->thr + lo, hi - lo, sizeof(float), float_cmp);
    *w = (uint32_t)((size_t)(k - (m->thr + lo)) + 1) << 16 |
         (t->default_left[i] ? TREE_DEFAULT_LEFT : 0) | (uint32_t)f;
    complete_fill(m, tree, t, t->left[i], L, j, 2 * p + 1);
    complete_fill(m, tree, t, t->right[i], L, j, 2 * p + 2);
}

/* NDT_AGAIN when the model does not fit the complete layout. */
static int complete_build(model_trees *m, const tree_src *src, unsigned flags, char *err,
                          size_t errlen)
{
    if (m->depth > MODEL_TREES_COMPLETE_MAX_DEPTH || m->nfeatures > MODEL_TREES_BLOCK_FEATURES)
        return NDT_AGAIN;
    m->levels = (m->depth + BLOCK_HEIGHT - 1) / BLOCK_HEIGHT;
    m->nblocks = 0;
    m->nleaves = 1;
    for (int L = 0; L < m->levels; L++) {
        m->first[L] = m->nblocks;
        m->nblocks += m->nleaves;
        m->nleaves *= 16;
    }
    size_t bytes = m->ntrees * (m->nblocks * 64 + m->nleaves * 4);
    if (bytes > MODEL_TREES_COMPLETE_MAX_BYTES)
        return NDT_AGAIN;
    int rc = complete_thresholds(m, src, err, errlen);
    if (rc != NDT_OK)
        return rc;
    /* 64-byte aligned: a block is one cache line, so is a block's leaves */
    m->words = aligned_alloc(64, (m->ntrees * m->nblocks + 1) * 64);
    m->leaf = aligned_alloc(64, (m->ntrees * m->nleaves * 4 + 63) / 64 * 64 + 64);
    if (!m->words || !m->leaf) {
        snprintf(err, errlen, "out of memory laying out %zu trees", m->ntrees);
        return NDT_ERROR;
    }
    memset(m->words, 0, (m->ntrees * m->nblocks + 1) * 64);
    for (size_t k = 0; k < m->ntrees; k++) {
        if (m->levels == 0)
            m->leaf[k] = src[k].cond[0];
        else
            complete_fill(m, k, &src[k], 0, 0, 0, 0);
    }
    m->complete = 1;
    m->simd = !(flags & MODEL_TREES_SCALAR) && trees_cpu_has_avx2() && m->nfeatures <= 8;
    return NDT_OK;
}

/* Appends t breadth-first with adjacent children (a queue of source ids). */
static int sparse_append(model_trees *m, size_t tree, const tree_src *t, char *err, size_t errlen)
{
    if (m->nnodes + t->n > m->cap) {
        size_t cap = m->cap ? m->cap : 1024;
        while (cap < m->nnodes + t->n)
            cap *= 2;
        tree_node *nodes = realloc(m->nodes, cap * sizeof(tree_node));
        if (!nodes) {
            snprintf(err, errlen, "out of memory laying out %zu nodes", cap);
            return NDT_ERROR;
        }
        m->nodes = nodes;
        m->cap = cap;
    }
    int32_t *queue = malloc(t->n * sizeof(int32_t));
    if (!queue) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    size_t base = m->nnodes, head = 0, tail = 0;
    m->root[tree] = base;
    queue[tail++] = 0;
    while (head < tail) {
        int32_t i = queue[head];
        tree_node *node = &m->nodes[base + head++];
        node->value = t->cond[i];
        node->feature = (uint16_t)t->feature[i];
        node->default_left = t->default_left[i];
        node->left = -1;
        if (t->left[i] >= 0) {
            node->left = (int32_t)(base + tail);
            queue[tail++] = t->left[i];
            queue[tail++] = t->right[i];
        }
    }
    m->nnodes = base + tail;
    free(queue);
    return NDT_OK;
}

/* ---- reading the model ---- */

/* The learner's parameters from the document with its trees cut out. */
static int trees_read_head(model_trees *m, const cJSON *root, size_t *ntrees, char *err,
                           size_t errlen)
{
    static const char *const booster[] = { "learner", "gradient_booster", "name" };
    static const char *const objective[] = { "learner", "objective", "name" };
    static const char *const base[] = { "learner", "learner_model_param", "base_score" };
    static const char *const nfeat[] = { "learner", "learner_model_param", "num_feature" };
    static const char *const ntarget[] = { "learner", "learner_model_param", "num_target" };
    static const char *const nclass[] = { "learner", "learner_model_param", "num_class" };
    static const char *const info[] = { "learner", "gradient_booster", "model", "tree_info" };
    /* Objectives whose prediction is the raw margin (no link function). */
    static const char *const identity[] = { "reg:squarederror", "reg:absoluteerror",
                                            "reg:pseudohubererror" };
    const cJSON *v = json_path(root, booster, 3);
    double d, targets = 1, classes = 0;
    if (!cJSON_IsString(v) || strcmp(v->valuestring, "gbtree") != 0)
        return trees_fail(err, errlen, "not a gbtree XGBoost model (booster %s)",
                          cJSON_IsString(v) ? v->valuestring : "missing");
    v = json_path(root, objective, 3);
    int ok = 0;
    for (size_t i = 0; cJSON_IsString(v) && i < NDT_ARRAY_LEN(identity); i++)
        ok |= strcmp(v->valuestring, identity[i]) == 0;
    if (!ok)
        return trees_fail(err, errlen, "objective %s: only identity-link regressions compile",
                          cJSON_IsString(v) ? v->valuestring : "missing");
    if (!json_number(json_path(root, base, 3), &d) || !isfinite(d))
        return trees_fail(err, errlen, "no valid %s", "learner_model_param.base_score");
    m->base_score = (float)d;
    if (!json_number(json_path(root, nfeat, 3), &d) || d < 1 || d > MODEL_TREES_MAX_FEATURES)
        return trees_fail(err, errlen, "no valid %s", "learner_model_param.num_feature");
    m->nfeatures = (int)d;
    json_number(json_path(root, ntarget, 3), &targets);
    json_number(json_path(root, nclass, 3), &classes);
    if (targets > 1 || classes > 1)
        return trees_fail(err, errlen, "%s: one output expected", "num_target/num_class");
    v = json_path(root, info, 4);
    if (!cJSON_IsArray(v) || (size_t)cJSON_GetArraySize(v) > MODEL_TREES_MAX_TREES)
        return trees_fail(err, errlen, "no valid %s", "gradient_booster.model.tree_info");
    *ntrees = (size_t)cJSON_GetArraySize(v);
    for (const cJSON *e = v->child; e; e = e->next)
        if (!cJSON_IsNumber(e) || e->valuedouble != 0)
            return trees_fail(err, errlen, "%s: one output group expected", "tree_info");
    return NDT_OK;
}

/* Finds the "trees" array: [*start, *stop) is its text including brackets. */
static int trees_find_array(const char *json, size_t len, const char **start, const char **stop)
{
    static const char key[] = "\"trees\":";
    const char *end = json + len, *p = json;
    for (;;) {
        p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1);
        if (!p)
            return 0;
        p += sizeof(key) - 1;
        while (p < end && (*p == ' ' || *p == '\n'))
            p++;
        if (p < end && *p == '[')
            break;
    }
    *start = p;
    *stop = json_skip_value(p, end);
    return *stop != NULL;
}

/* Reads every tree object of the array text, one cJSON parse each. */
static int trees_read_all(const char *a, const char *a_end, size_t ntrees, tree_src *src,
                          int nfeatures, char *err, size_t errlen)
{
    const char *p = a + 1; /* after '[' */
    for (size_t k = 0;; k++) {
        while (p < a_end && (*p == ' ' || *p == '\n' || *p == ',' || *p == '\r' || *p == '\t'))
            p++;
        if (p < a_end && *p == ']') {
            if (k != ntrees) {
                snprintf(err, errlen, "%zu trees but tree_info lists %zu", k, ntrees);
                return NDT_EBADCONF;
            }
            return NDT_OK;
        }
        const char *e = json_skip_value(p, a_end);
        if (!e || k >= ntrees) {
            snprintf(err, errlen, "tree %zu: %s", k, e ? "more trees than tree_info lists" : "malformed");
            return NDT_EBADCONF;
        }
        cJSON *tree = cJSON_ParseWithLength(p, (size_t)(e - p));
        if (!cJSON_IsObject(tree)) {
            cJSON_Delete(tree);
            snprintf(err, errlen, "tree %zu: not a JSON object", k);
            return NDT_EBADCONF;
        }
        char why[NDT_ERRBUF_SIZE];
        int rc = tree_src_read(tree, nfeatures, &src[k], why, sizeof(why));
        cJSON_Delete(tree);
        if (rc != NDT_OK) {
            snprintf(err, errlen, "tree %zu: %s", k, why);
            return rc;
        }
        p = e;
    }
}

static int trees_layout(model_trees *m, tree_src *src, unsigned flags, char *err, size_t errlen)
{
    int depth = 0, rc;
    for (size_t k = 0; k < m->ntrees; k++)
        depth = src[k].depth > depth ? src[k].depth : depth;
    m->depth = depth;
    if (!(flags & MODEL_TREES_SPARSE) && (rc = complete_build(m, src, flags, err, errlen)) != NDT_AGAIN)
        return rc;
    m->complete = 0;
    m->root = malloc((m->ntrees ? m->ntrees : 1) * sizeof(size_t));
    if (!m->root) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    for (size_t k = 0; k < m->ntrees; k++)
        if (sparse_append(m, k, &src[k], err, errlen) != NDT_OK)
            return NDT_ERROR;
    return NDT_OK;
}

int model_trees_from_json(const char *json, size_t len, unsigned flags, model_trees **out,
                          char *err, size_t errlen)
{
    const char *a, *a_end;
    char *head = NULL;
    cJSON *root = NULL;
    tree_src *src = NULL;
    size_t ntrees = 0;
    int rc = NDT_EBADCONF;
    model_trees *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    if (!trees_find_array(json, len, &a, &a_end)) {
        snprintf(err, errlen, "not an XGBoost JSON model (no well-formed \"trees\" array)");
        goto done;
    }
    /* The document with "trees":[] in place of the trees. */
    size_t before = (size_t)(a - json), after = len - (size_t)(a_end - json);
    head = malloc(before + after + 3);
    if (!head) {
        snprintf(err, errlen, "out of memory");
        rc = NDT_ERROR;
        goto done;
    }
    memcpy(head, json, before);
    memcpy(head + before, "[]", 2);
    memcpy(head + before + 2, a_end, after);
    head[before + 2 + after] = '\0';
    root = cJSON_ParseWithLength(head, before + 2 + after);
    static const char *const trees_key[] = { "learner", "gradient_booster", "model", "trees" };
    const cJSON *empty = json_path(root, trees_key, 4);
    if (!root || !cJSON_IsArray(empty) || cJSON_GetArraySize(empty) != 0) {
        snprintf(err, errlen, "not an XGBoost JSON model (no learner.gradient_booster.model.trees)");
        goto done;
    }
    if ((rc = trees_read_head(m, root, &ntrees, err, errlen)) != NDT_OK)
        goto done;
    src = calloc(ntrees ? ntrees : 1, sizeof(tree_src));
    if (!src) {
        snprintf(err, errlen, "out of memory");
        rc = NDT_ERROR;
        goto done;
    }
    m->ntrees = ntrees;
    if ((rc = trees_read_all(a, a_end, ntrees, src, m->nfeatures, err, errlen)) != NDT_OK)
        goto done;
    rc = trees_layout(m, src, flags, err, errlen);
done:
    for (size_t k = 0; src && k < ntrees; k++)
        tree_src_free(&src[k]);
    free(src);
    cJSON_Delete(root);
    free(head);
    if (rc != NDT_OK) {
        model_trees_free(m);
        return rc;
    }
    *out = m;
    return NDT_OK;
}

/* ---- prediction ---- */

/* The complete walk: per block four steps p = 2p + 1 + (go right), then
 * the child block j * 16 + (p - 15).  Without missing values going right
 * is !(rank(x_f) < rank of the split), a flag rather than a branch.  With
 * a missing value, the stored default direction decides.  Eight trees
 * walk in lockstep so their cache misses overlap; the sum is in tree
 * order, as XGBoost's. */
static float complete_predict_scalar(const model_trees *m, const float *x, const uint32_t *rank,
                                     int missing)
{
    float sum = m->base_score;
    const size_t stride = m->nblocks * 16;
    size_t k = 0;
    for (; k < m->ntrees; k += MODEL_TREES_LOCKSTEP) {
        size_t n = m->ntrees - k < MODEL_TREES_LOCKSTEP ? m->ntrees - k : MODEL_TREES_LOCKSTEP;
        size_t j[MODEL_TREES_LOCKSTEP] = { 0 };
        for (int L = 0; L < m->levels; L++) {
            const uint32_t *blk[MODEL_TREES_LOCKSTEP];
            size_t p[MODEL_TREES_LOCKSTEP] = { 0 };
            for (size_t t = 0; t < n; t++)
                blk[t] = m->words + (k + t) * stride + (m->first[L] + j[t]) * 16;
            for (int step = 0; step < BLOCK_HEIGHT; step++)
                for (size_t t = 0; t < n; t++) {
                    uint32_t w = blk[t][p[t]];
                    size_t right;
                    if (missing && isnan(x[WORD_FEATURE(w)]))
                        right = !(w & TREE_DEFAULT_LEFT);
                    else
                        right = !(rank[WORD_FEATURE(w)] < WORD_RANK(w));
                    p[t] = 2 * p[t] + 1 + right;
                }
            for (size_t t = 0; t < n; t++)
                j[t] = j[t] * 16 + (p[t] - 15);
        }
        for (size_t t = 0; t < n; t++)
            sum += m->leaf[(k + t) * m->nleaves + j[t]];
    }
    return sum;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

static int trees_cpu_has_avx2(void) { return __builtin_cpu_supports("avx2"); }

/* The same walk for sixteen trees in two AVX2 registers, one lane a tree:
 * per step one gather of the words, the row's rank of the word's feature
 * picked by a lane permutation (hence <= 8 features), and the compare's
 * all-ones mask added to 2 p + 2.  Rows without missing values only. */
__attribute__((target("avx2"))) static float complete_predict_avx2(const model_trees *m,
                                                                   const uint32_t *rank)
{
    uint32_t r8[8] = { 0 };
    float leaves[16];
    memcpy(r8, rank, (size_t)m->nfeatures * sizeof(uint32_t));
    const __m256i rv = _mm256_loadu_si256((const __m256i *)r8);
    const int32_t stride = (int32_t)(m->nblocks * 16), nl = (int32_t)m->nleaves;
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i tree_lane = _mm256_mullo_epi32(lanes, _mm256_set1_epi32(stride));
    const __m256i leaf_lane = _mm256_mullo_epi32(lanes, _mm256_set1_epi32(nl));
    const __m256i two = _mm256_set1_epi32(2), fifteen = _mm256_set1_epi32(15);
    float sum = m->base_score;
    size_t k = 0;
    for (; k + 16 <= m->ntrees; k += 16) {
        const __m256i t0 = _mm256_add_epi32(_mm256_set1_epi32((int32_t)k * stride), tree_lane);
        const __m256i t1 = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(k + 8) * stride), tree_lane);
        __m256i j0 = _mm256_setzero_si256(), j1 = _mm256_setzero_si256();
        for (int L = 0; L < m->levels; L++) {
            __m256i first = _mm256_set1_epi32((int32_t)m->first[L]);
            __m256i b0 = _mm256_add_epi32(t0, _mm256_slli_epi32(_mm256_add_epi32(first, j0), 4));
            __m256i b1 = _mm256_add_epi32(t1, _mm256_slli_epi32(_mm256_add_epi32(first, j1), 4));
            __m256i p0 = _mm256_setzero_si256(), p1 = _mm256_setzero_si256();
            for (int step = 0; step < BLOCK_HEIGHT; step++) {
                __m256i w0 = _mm256_i32gather_epi32((const int *)m->words, _mm256_add_epi32(b0, p0), 4);
                __m256i w1 = _mm256_i32gather_epi32((const int *)m->words, _mm256_add_epi32(b1, p1), 4);
                /* the permutation reads the low 3 bits: the feature */
                __m256i x0 = _mm256_permutevar8x32_epi32(rv, w0);
                __m256i x1 = _mm256_permutevar8x32_epi32(rv, w1);
                __m256i left0 = _mm256_cmpgt_epi32(_mm256_srli_epi32(w0, 16), x0);
                __m256i left1 = _mm256_cmpgt_epi32(_mm256_srli_epi32(w1, 16), x1);
                p0 = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(p0, p0), two), left0);
                p1 = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(p1, p1), two), left1);
            }
            j0 = _mm256_add_epi32(_mm256_slli_epi32(j0, 4), _mm256_sub_epi32(p0, fifteen));
            j1 = _mm256_add_epi32(_mm256_slli_epi32(j1, 4), _mm256_sub_epi32(p1, fifteen));
        }
        __m256i l0 = _mm256_add_epi32(_mm256_set1_epi32((int32_t)k * nl), leaf_lane);
        __m256i l1 = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(k + 8) * nl), leaf_lane);
        _mm256_storeu_ps(leaves, _mm256_i32gather_ps(m->leaf, _mm256_add_epi32(l0, j0), 4));
        _mm256_storeu_ps(leaves + 8, _mm256_i32gather_ps(m->leaf, _mm256_add_epi32(l1, j1), 4));
        for (int t = 0; t < 16; t++)
            sum += leaves[t];
    }
    if (k < m->ntrees) {
        /* the last trees: the scalar walk over a view starting at tree k */
        model_trees rest = *m;
        rest.ntrees = m->ntrees - k;
        rest.words = m->words + k * m->nblocks * 16;
        rest.leaf = m->leaf + k * m->nleaves;
        rest.base_score = sum;
        sum = complete_predict_scalar(&rest, NULL, rank, 0);
    }
    return sum;
}
#else
static int trees_cpu_has_avx2(void) { return 0; }
static float complete_predict_avx2(const model_trees *m, const uint32_t *rank)
{
    return complete_predict_scalar(m, NULL, rank, 0);
}
#endif

static float complete_predict(const model_trees *m, const float *x)
{
    uint32_t stack_rank[64], *rank = stack_rank;
    int missing = 0;
    if (m->nfeatures > 64 && !(rank = malloc((size_t)m->nfeatures * sizeof(uint32_t))))
        return NAN; /* cannot happen for ndtpipe's 7 features; said, not hidden */
    for (int f = 0; f < m->nfeatures; f++) {
        missing |= isnan(x[f]);
        rank[f] = complete_rank(m, f, x[f]);
    }
    float sum = m->simd && !missing ? complete_predict_avx2(m, rank)
                                    : complete_predict_scalar(m, x, rank, missing);
    if (rank != stack_rank)
        free(rank);
    return sum;
}

static float sparse_predict(const model_trees *m, const float *x)
{
    float sum = m->base_score;
    for (size_t k = 0; k < m->ntrees; k++) {
        const tree_node *n = &m->nodes[m->root[k]];
        while (n->left >= 0) {
            float v = x[n->feature];
            int right = isnan(v) ? !n->default_left : !(v < n->value);
            n = &m->nodes[n->left + right];
        }
        sum += n->value;
    }
    return sum;
}

float model_trees_predict_row(const model_trees *m, const float *x)
{
    return m->complete ? complete_predict(m, x) : sparse_predict(m, x);
}

void model_trees_predict(const model_trees *m, const float *x, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (double)model_trees_predict_row(m, x + i * (size_t)m->nfeatures);
}

int model_trees_nfeatures(const model_trees *m) { return m->nfeatures; }
size_t model_trees_count(const model_trees *m) { return m->ntrees; }
int model_trees_is_complete(const model_trees *m) { return m->complete; }
int model_trees_is_simd(const model_trees *m) { return m->complete && m->simd; }

void model_trees_free(model_trees *m)
{
    if (!m)
        return;
    free(m->words);
    free(m->leaf);
    free(m->thr);
    free(m->thr_start);
    free(m->nodes);
    free(m->root);
    free(m);
}
