/*
 * model_trees.c: the compiled tree predictor.  A trained XGBoost booster is
 * read from its own JSON model (XGBoosterSaveModelToBuffer, "json") and
 * laid out flat so one row is predicted without XGBoost and without a
 * DMatrix: serving a what-if is one row, and XGBoost spends ~240 us on it
 * for the paper's 2000 trees, mostly outside the tree walk.
 *
 * Two layouts:
 *   complete  every tree is padded to a complete binary tree of the
 *             ensemble's maximum depth D (a leaf above depth D becomes a
 *             subtree whose every leaf holds its value).  A walk is then
 *             exactly D steps of idx = 2 idx + 1 + (go right), with no leaf
 *             test, so eight trees are walked in lockstep: their loads are
 *             independent and overlap instead of waiting for each other.
 *             Used when D <= MODEL_TREES_COMPLETE_MAX_DEPTH and the padded
 *             trees stay under MODEL_TREES_COMPLETE_MAX_BYTES (the paper's
 *             depth 8 gives 2.3 kB a tree, 4.6 MB for 2000 trees).
 *   sparse    nodes in breadth-first order with both children adjacent,
 *             the general case (deep trees), one tree at a time.
 *
 * Promises: the output equals XGBoost's bit for bit for the objectives
 * whose output is the margin (reg:squarederror and the other identity-link
 * regressions): the same float comparisons (go left when x < split, the
 * stored default direction when x is NaN, i.e. missing) and the same float
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
#define MODEL_TREES_MAX_FEATURES 32767 /* 15 bits; bit 15 is the default direction */
#define MODEL_TREES_MAX_NESTING 64
#define MODEL_TREES_LOCKSTEP 8

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
    /* complete: per tree 2^D - 1 internal nodes and 2^D leaves */
    int depth;
    size_t ninternal, nleaves;
    float *split;      /* [ntrees * ninternal] */
    uint16_t *feature; /* [ntrees * ninternal], bit 15: default left */
    float *leaf;       /* [ntrees * nleaves] */
    /* sparse */
    tree_node *nodes;
    size_t nnodes, cap;
    size_t *root; /* [ntrees] */
};

#define TREE_DEFAULT_LEFT 0x8000u

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

/* Fills the complete tree at position pos (level levels below the root)
 * from source node i; a leaf above the bottom fills its whole subtree. */
static void complete_fill(model_trees *m, size_t tree, const tree_src *t, int32_t i, size_t pos,
                          int level)
{
    if (level == m->depth) {
        m->leaf[tree * m->nleaves + (pos - m->ninternal)] = t->cond[i];
        return;
    }
    size_t at = tree * m->ninternal + pos;
    if (t->left[i] < 0) {
        m->split[at] = 0;
        m->feature[at] = 0;
        complete_fill(m, tree, t, i, 2 * pos + 1, level + 1);
        complete_fill(m, tree, t, i, 2 * pos + 2, level + 1);
        return;
    }
    m->split[at] = t->cond[i];
    m->feature[at] = (uint16_t)(t->feature[i] | (t->default_left[i] ? TREE_DEFAULT_LEFT : 0));
    complete_fill(m, tree, t, t->left[i], 2 * pos + 1, level + 1);
    complete_fill(m, tree, t, t->right[i], 2 * pos + 2, level + 1);
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
    int depth = 0;
    for (size_t k = 0; k < m->ntrees; k++)
        depth = src[k].depth > depth ? src[k].depth : depth;
    m->depth = depth;
    if (!(flags & MODEL_TREES_SPARSE) && depth <= MODEL_TREES_COMPLETE_MAX_DEPTH) {
        m->ninternal = ((size_t)1 << depth) - 1;
        m->nleaves = (size_t)1 << depth;
        size_t bytes = m->ntrees * (m->ninternal * 6 + m->nleaves * 4);
        if (bytes <= MODEL_TREES_COMPLETE_MAX_BYTES) {
            m->complete = 1;
            m->split = malloc((m->ntrees * m->ninternal + 1) * sizeof(float));
            m->feature = malloc((m->ntrees * m->ninternal + 1) * sizeof(uint16_t));
            m->leaf = malloc(m->ntrees * m->nleaves * sizeof(float));
            if (!m->split || !m->feature || !m->leaf) {
                snprintf(err, errlen, "out of memory laying out %zu trees", m->ntrees);
                return NDT_ERROR;
            }
            for (size_t k = 0; k < m->ntrees; k++)
                complete_fill(m, k, &src[k], 0, 0, 0);
            return NDT_OK;
        }
    }
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

static int row_has_missing(const model_trees *m, const float *x)
{
    for (int j = 0; j < m->nfeatures; j++)
        if (isnan(x[j]))
            return 1;
    return 0;
}

/* The next position from internal node `at` of a complete tree. */
static inline size_t complete_step(const model_trees *m, size_t base, size_t pos, const float *x,
                                   int missing)
{
    uint16_t f = m->feature[base + pos];
    float v = x[f & ~TREE_DEFAULT_LEFT];
    size_t right;
    if (missing && isnan(v))
        right = !(f & TREE_DEFAULT_LEFT);
    else
        right = !(v < m->split[base + pos]);
    return 2 * pos + 1 + right;
}

static float complete_predict(const model_trees *m, const float *x)
{
    const int missing = row_has_missing(m, x);
    float sum = m->base_score;
    size_t k = 0;
    /* Eight independent walks at a time; the sum stays in tree order. */
    for (; k + MODEL_TREES_LOCKSTEP <= m->ntrees; k += MODEL_TREES_LOCKSTEP) {
        size_t pos[MODEL_TREES_LOCKSTEP] = { 0 };
        for (int level = 0; level < m->depth; level++)
            for (int t = 0; t < MODEL_TREES_LOCKSTEP; t++)
                pos[t] = complete_step(m, (k + t) * m->ninternal, pos[t], x, missing);
        for (int t = 0; t < MODEL_TREES_LOCKSTEP; t++)
            sum += m->leaf[(k + t) * m->nleaves + pos[t] - m->ninternal];
    }
    for (; k < m->ntrees; k++) {
        size_t pos = 0;
        for (int level = 0; level < m->depth; level++)
            pos = complete_step(m, k * m->ninternal, pos, x, missing);
        sum += m->leaf[k * m->nleaves + pos - m->ninternal];
    }
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

void model_trees_free(model_trees *m)
{
    if (!m)
        return;
    free(m->split);
    free(m->feature);
    free(m->leaf);
    free(m->nodes);
    free(m->root);
    free(m);
}
