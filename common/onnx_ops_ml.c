/*
 * onnx_ops_ml.c - the ai.onnx.ml operators scikit-learn models need (as
 * skl2onnx exports them), in plain C: LinearClassifier, LinearRegressor,
 * TreeEnsembleClassifier, TreeEnsembleRegressor, SVMClassifier, Scaler,
 * Normalizer, ZipMap, ArrayFeatureExtractor; and from ai.onnx ArgMax, Less
 * and Sum, which skl2onnx's graphs use around them.
 *
 * The arithmetic follows ONNX Runtime's CPU kernels (onnxruntime/core/
 * providers/cpu/ml/), since its outputs are what users compare with: the
 * same post-transforms (softmax, logistic, probit with its erfinv
 * approximation), the same two-class special cases, the same SVM pairwise
 * coupling.  Where ONNX Runtime would read out of bounds on a malformed
 * model, these kernels refuse the model instead: every attribute array
 * length, every tree child and feature index, every class id is checked
 * when the graph is loaded (check) and again against the real input width
 * when it is planned; run() trusts what plan built and allocates nothing.
 *
 * Labels: the engine has no string tensors.  A classifier with integer
 * classlabels_ints/classlabels_int64s outputs those labels; one with
 * classlabels_strings outputs the class INDEX (int64, 0-based) and the
 * caller maps it to the string (common/model_onnx.c reads the attribute).
 *
 * Not here: string inputs, sequence/map values (ZipMap passes its tensor
 * through, see the ZipMap section), SVMRegressor, LabelEncoder, the opset-5
 * TreeEnsemble.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"

/* Bounds on what a model may claim, so size arithmetic cannot overflow and
 * a hostile model cannot make the planner allocate absurd scratch. */
#define ML_MAX_CLASSES 65535
#define ML_MAX_FEATURES (1 << 24)
#define ML_MAX_TREE_NODES (1 << 26)

/* ---- post-transforms (ONNX Runtime's ml_common.h) ---- */

typedef enum {
    ML_PT_NONE,
    ML_PT_SOFTMAX,
    ML_PT_LOGISTIC,
    ML_PT_SOFTMAX_ZERO,
    ML_PT_PROBIT
} ml_pt_t;

static aas_err_t ml_post_transform(const aas_onnx_node_t *n, ml_pt_t *out, char *errstr,
                                   size_t errstr_size) {
    const char *s = aas_onnx_attr_str(n, "post_transform", "NONE");
    static const char *const names[] = {"NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *out = (ml_pt_t)i;
            return AAS_ERR_OK;
        }
    return aas_onnx_node_err(n, errstr, errstr_size,
                             "post_transform '%s' is not NONE, SOFTMAX, LOGISTIC, "
                             "SOFTMAX_ZERO or PROBIT", s);
}

static float ml_logistic(float v) {
    float e = 1.f / (1.f + expf(-fabsf(v)));
    return v < 0 ? 1.f - e : e;
}

/* Winitzki's approximation, as ONNX Runtime computes probit (not exact
 * erfinv: matching it matters more than the last digits). */
static float ml_erfinv(float x) {
    float sgn = x < 0 ? -1.0f : 1.0f;
    x = (1 - x) * (1 + x);
    float lg = logf(x);
    float v = 2 / (3.14159f * 0.147f) + 0.5f * lg;
    float v2 = 1 / (0.147f) * lg;
    float v3 = -v + sqrtf(v * v - v2);
    return sgn * sqrtf(v3);
}

static float ml_probit(float v) { return 1.41421356f * ml_erfinv(2 * v - 1); }

static void ml_softmax(float *s, int64_t n, int zero) {
    float vmax = -3.402823466e38f;
    for (int64_t i = 0; i < n; i++)
        if (s[i] > vmax) vmax = s[i];
    float sum = 0.f, exp_neg_max = expf(-vmax);
    for (int64_t i = 0; i < n; i++) {
        if (zero && !(s[i] > 0.0000001f || s[i] < -0.0000001f)) {
            s[i] *= exp_neg_max;   /* SOFTMAX_ZERO leaves zeros (almost) zero */
            continue;
        }
        s[i] = expf(s[i] - vmax);
        sum += s[i];
    }
    for (int64_t i = 0; i < n; i++) s[i] /= sum;
}

/* The transform of n >= 2 scores of one row, in place. */
static void ml_transform(float *s, int64_t n, ml_pt_t pt) {
    switch (pt) {
    case ML_PT_SOFTMAX: ml_softmax(s, n, 0); break;
    case ML_PT_SOFTMAX_ZERO: ml_softmax(s, n, 1); break;
    case ML_PT_LOGISTIC:
        for (int64_t i = 0; i < n; i++) s[i] = ml_logistic(s[i]);
        break;
    case ML_PT_PROBIT:
        for (int64_t i = 0; i < n; i++) s[i] = ml_probit(s[i]);
        break;
    case ML_PT_NONE: break;
    }
}

/*
 * One score of a two-class model widened to two columns (ONNX Runtime's
 * add_second_class): 0/1 [1-s, s]; 2/3 [-s, s], or the logistic of both
 * under LOGISTIC; -1 no second column.  PROBIT transforms the one score.
 */
static void ml_binary_scores(float s, ml_pt_t pt, int add, float *z, int64_t nz) {
    if (pt == ML_PT_PROBIT) {
        z[0] = ml_probit(s);
        if (nz > 1) z[1] = 0.f;
        return;
    }
    switch (add) {
    case 0:
    case 1:
        z[0] = 1.f - s;
        z[1] = s;
        break;
    case 2:
    case 3:
        if (pt == ML_PT_LOGISTIC) {
            z[0] = ml_logistic(-s);
            z[1] = ml_logistic(s);
        } else {
            z[0] = -s;
            z[1] = s;
        }
        break;
    default:
        z[0] = s;
        if (nz > 1) z[1] = 0.f;
        break;
    }
}

/* ---- dot products ----
 *
 * Eight partial sums instead of one running sum: the compiler can keep
 * them in one vector register and the additions no longer wait on each
 * other.  The rounding differs from a sequential float sum by a few ulps,
 * far inside the 1e-4 the fixtures allow against ONNX Runtime.
 */
static float ml_dot(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[j + l] * b[j + l];
    float tail = 0.f;
    for (; j < n; j++) tail += a[j] * b[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) +
           tail;
}

/* sum of a[i] * b[i], each product rounded to float and added in double
 * as ONNX Runtime's SVM pair scores are, over four partial sums (the
 * order changes the double sum by ulps of a double). */
static double ml_dot_fd(const float *a, const float *b, int64_t n) {
    double acc[4] = {0};
    int64_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (int l = 0; l < 4; l++) acc[l] += (double)(a[j + l] * b[j + l]);
    double tail = 0;
    for (; j < n; j++) tail += (double)(a[j] * b[j]);
    return (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
}

/* |a - b|^2 */
static float ml_sqdist(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) {
            float d = a[j + l] - b[j + l];
            acc[l] += d * d;
        }
    float tail = 0.f;
    for (; j < n; j++) tail += (a[j] - b[j]) * (a[j] - b[j]);
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) +
           tail;
}

/* ---- shared checks ---- */

/* Input X: rank 1 [F] (one row) or rank 2 [N, F] of float, double, int64
 * or int32; *rows and *feats from its dims. */
static aas_err_t ml_input_2d(const aas_onnx_kernel_t *k, int64_t *rows, int64_t *feats,
                             char *errstr, size_t errstr_size) {
    const aas_onnx_tensor_t *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!x) return aas_onnx_node_err(k->node, errstr, errstr_size, "input X is missing");
    if (x->dtype != AAS_ONNX_FLOAT && x->dtype != AAS_ONNX_DOUBLE && x->dtype != AAS_ONNX_INT64 &&
        x->dtype != AAS_ONNX_INT32)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "input X is %s, not float, double, int64 or int32",
                                 aas_onnx_dtype_name(x->dtype));
    if (x->rank != 1 && x->rank != 2)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "input X has rank %d, not 1 or 2", x->rank);
    *rows = x->rank == 1 ? 1 : x->dims[0];
    *feats = x->rank == 1 ? x->dims[0] : x->dims[1];
    return AAS_ERR_OK;
}

/* Row r of X as floats: a pointer into X when it is float, else converted
 * into buf (feats entries, owned by the kernel's state). */
static const float *ml_row_f(const aas_onnx_tensor_t *x, int64_t r, int64_t feats, float *buf) {
    const size_t o = (size_t)(r * feats);
    switch (x->dtype) {
    case AAS_ONNX_FLOAT: return (const float *)x->data + o;
    case AAS_ONNX_DOUBLE:
        for (int64_t j = 0; j < feats; j++) buf[j] = (float)((const double *)x->data)[o + j];
        return buf;
    case AAS_ONNX_INT64:
        for (int64_t j = 0; j < feats; j++) buf[j] = (float)((const int64_t *)x->data)[o + j];
        return buf;
    default:
        for (int64_t j = 0; j < feats; j++) buf[j] = (float)((const int32_t *)x->data)[o + j];
        return buf;
    }
}

static int ml_out_present(const aas_onnx_kernel_t *k, int i) {
    return i < k->n_out && k->out[i] != NULL;
}

/* The class labels of a classifier: integer labels (classlabels_ints, or
 * classlabels_int64s for the tree ensemble) or strings.  *labels is NULL
 * for strings (the label output is then the class index). */
static aas_err_t ml_class_labels(const aas_onnx_node_t *n, const char *ints_name,
                                 const int64_t **labels, int64_t *n_classes, char *errstr,
                                 size_t errstr_size) {
    const int64_t *li;
    char *const *ls;
    size_t ni = aas_onnx_attr_ints(n, ints_name, &li);
    size_t ns = aas_onnx_attr_strings(n, "classlabels_strings", &ls);
    if (ni && ns)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "both %s and classlabels_strings are set", ints_name);
    if (!ni && !ns)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "neither %s nor classlabels_strings is set", ints_name);
    size_t nc = ni ? ni : ns;
    if (nc > ML_MAX_CLASSES)
        return aas_onnx_node_err(n, errstr, errstr_size, "%zu classes (at most %d)", nc,
                                 ML_MAX_CLASSES);
    *labels = ni ? li : NULL;
    *n_classes = (int64_t)nc;
    return AAS_ERR_OK;
}

static int64_t ml_label(const int64_t *labels, int64_t idx) { return labels ? labels[idx] : idx; }

/* A float array attribute, or its opset-3 tensor form (name_as_tensor,
 * float or double), as malloc'ed doubles; *v NULL and *n 0 when absent. */
static aas_err_t ml_reals(const aas_onnx_node_t *n, const char *name, double **v, size_t *cnt,
                          char *errstr, size_t errstr_size) {
    char tname[96];
    snprintf(tname, sizeof(tname), "%s_as_tensor", name);
    const float *f;
    size_t nf = aas_onnx_attr_floats(n, name, &f);
    const aas_onnx_attr_t *t = aas_onnx_attr(n, tname);
    *v = NULL;
    *cnt = 0;
    if (t && t->type != AAS_ONNX_ATTR_TENSOR)
        return aas_onnx_node_err(n, errstr, errstr_size, "%s is not a tensor", tname);
    if (t && t->t && nf)
        return aas_onnx_node_err(n, errstr, errstr_size, "both %s and %s are set", name, tname);
    size_t m = nf;
    if (t && t->t) {
        if (t->t->dtype != AAS_ONNX_FLOAT && t->t->dtype != AAS_ONNX_DOUBLE)
            return aas_onnx_node_err(n, errstr, errstr_size, "%s is %s, not float or double",
                                     tname, aas_onnx_dtype_name(t->t->dtype));
        int64_t ne = aas_onnx_numel(t->t);
        size_t esz = aas_onnx_dtype_size(t->t->dtype);
        if (ne < 0 || (size_t)ne > t->t->nbytes / esz || (ne > 0 && !t->t->data))
            return aas_onnx_node_err(n, errstr, errstr_size, "%s: data shorter than its dims",
                                     tname);
        m = (size_t)ne;
    }
    if (!m) return AAS_ERR_OK;
    double *d = malloc(m * sizeof(double));
    if (!d) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m; i++)
        d[i] = nf ? f[i]
                  : t->t->dtype == AAS_ONNX_FLOAT ? ((const float *)t->t->data)[i]
                                                  : ((const double *)t->t->data)[i];
    *v = d;
    *cnt = m;
    return AAS_ERR_OK;
}

/* ==== TreeEnsembleClassifier / TreeEnsembleRegressor ==== */

enum { ML_LEQ, ML_LT, ML_GTE, ML_GT, ML_EQ, ML_NEQ, ML_LEAF };
enum { ML_AGG_SUM, ML_AGG_AVERAGE, ML_AGG_MIN, ML_AGG_MAX };

/* One node, flattened.  Branch: t/f are node indices.  Leaf: t is the
 * first of its weights in w_out/w_val, f how many. */
typedef struct {
    double value;
    int32_t feature;
    int32_t t, f;
    uint8_t mode;
    uint8_t miss_true;
    uint8_t dense;   /* leaf: its weights are for classes k, k+1, ... in order */
} ml_tnode_t;

/* Rows walked through a tree together in the fast case: their loads and
 * comparisons overlap instead of each waiting on the previous one. */
#define ML_BLOCK 8
/* Leaves with at least this many consecutive class weights are added as
 * one contiguous run (a random forest's leaves: every class); below it the
 * setup costs more than the loop (a boosted tree's leaf: one class). */
#define ML_DENSE_MIN 4

/* The same node for the common case (float input, every branch
 * BRANCH_LEQ, no missing-value tracking, thresholds exact in float):
 * 16 bytes.  Comparing float with float there decides exactly as the
 * double path.  A leaf points to itself both ways with a NaN threshold, so
 * a row that reached it stays there while the others go deeper: a tree is
 * walked in exactly its depth of branch-free steps. */
typedef struct {
    float thr;
    int32_t feature;
    int32_t child[2];   /* [0] when x[feature] <= thr, else [1] */
} ml_fnode_t;

typedef struct {
    ml_tnode_t *nodes;
    ml_fnode_t *fast;        /* NULL unless the fast case applies (plan) */
    int32_t *leaves;         /* fast case: [n_trees][ML_BLOCK] leaf reached */
    int32_t *depth;          /* fast case: depth of each tree */
    int32_t *roots;          /* one per tree */
    int32_t *w_out;          /* class or target of each leaf weight */
    double *w_val;
    double *base;            /* n_base: 0 or n_out entries (1 for the regressor) */
    const int64_t *labels;   /* borrowed from the node; NULL: string labels */
    int64_t n_nodes, n_trees, n_out, n_base;
    int64_t max_feature;     /* largest feature index any branch reads */
    int classifier;
    int agg;
    ml_pt_t pt;
    int binary_case;         /* two classes, all weights on one class */
    int all_positive;        /* no negative weight */
    /* run-time scratch, sized at plan */
    double *acc;
    uint8_t *has;
    float *zrow;
    double *xrow;
} ml_trees_t;

static void ml_trees_free(void *p) {
    ml_trees_t *t = p;
    if (!t) return;
    free(t->nodes);
    free(t->fast);
    free(t->leaves);
    free(t->depth);
    free(t->roots);
    free(t->w_out);
    free(t->w_val);
    free(t->base);
    free(t->acc);
    free(t->has);
    free(t->zrow);
    free(t->xrow);
    free(t);
}

typedef struct {
    int64_t tree, id;
    int32_t idx;
} ml_key_t;

static int ml_key_cmp(const void *a, const void *b) {
    const ml_key_t *x = a, *y = b;
    if (x->tree != y->tree) return x->tree < y->tree ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return 0;
}

static int32_t ml_key_find(const ml_key_t *keys, int64_t n, int64_t tree, int64_t id) {
    ml_key_t k = {tree, id, 0};
    const ml_key_t *f = bsearch(&k, keys, (size_t)n, sizeof(k), ml_key_cmp);
    return f ? f->idx : -1;
}

static int ml_mode(const char *s) {
    static const char *const names[] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT",
                                        "BRANCH_EQ",  "BRANCH_NEQ", "LEAF"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* Every tree reachable from its root without a cycle (a cycle would make
 * run() loop forever).  Iterative DFS with colours: 1 on the path, 2 done. */
static aas_err_t ml_trees_acyclic(const aas_onnx_node_t *n, const ml_trees_t *t, char *errstr,
                                  size_t errstr_size) {
    aas_err_t err = AAS_ERR_OK;
    uint8_t *colour = calloc((size_t)t->n_nodes, 1);
    int32_t *stack = malloc((size_t)t->n_nodes * sizeof(int32_t));
    uint8_t *next = malloc((size_t)t->n_nodes);
    if (!colour || !stack || !next) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t r = 0; r < t->n_trees && !err; r++) {
        int64_t sp = 0;
        if (colour[t->roots[r]]) continue;
        stack[sp] = t->roots[r];
        next[sp++] = 0;
        colour[t->roots[r]] = 1;
        while (sp > 0) {
            int32_t v = stack[sp - 1];
            const ml_tnode_t *nd = &t->nodes[v];
            if (nd->mode == ML_LEAF || next[sp - 1] == 2) {
                colour[v] = 2;
                sp--;
                continue;
            }
            int32_t c = next[sp - 1]++ == 0 ? nd->t : nd->f;
            if (colour[c] == 1) {
                err = aas_onnx_node_err(n, errstr, errstr_size,
                                        "tree %lld: the nodes form a cycle (node index %d)",
                                        (long long)r, (int)c);
                break;
            }
            if (colour[c] == 2) continue;
            colour[c] = 1;
            stack[sp] = c;   /* sp < n_nodes: each node is on the path at most once */
            next[sp++] = 0;
        }
    }
done:
    free(colour);
    free(stack);
    free(next);
    return err;
}

/*
 * Build the flattened ensemble from a node's attributes, checking each one:
 * equal lengths, known modes, children that exist in the same tree, no
 * cycle, weights on leaves with class/target ids in range, base_values of
 * a usable length.  Used by check (then freed) and by plan (kept).
 */
static aas_err_t ml_trees_build(const aas_onnx_node_t *n, int classifier, ml_trees_t **out,
                                char *errstr, size_t errstr_size) {
    aas_err_t err = AAS_ERR_OK;
    ml_key_t *keys = NULL;
    double *values = NULL, *wv = NULL;
    int32_t *wcount = NULL;
    ml_trees_t *t = calloc(1, sizeof(*t));
    if (!t) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    t->classifier = classifier;

#define ML_FAIL(...)                                                  \
    do {                                                              \
        err = aas_onnx_node_err(n, errstr, errstr_size, __VA_ARGS__); \
        goto fail;                                                    \
    } while (0)

    if ((err = ml_post_transform(n, &t->pt, errstr, errstr_size))) goto fail;

    const char *wp = classifier ? "class" : "target";
    char a_ids[32], a_nodeids[32], a_treeids[32], a_weights[32];
    snprintf(a_ids, sizeof(a_ids), "%s_ids", wp);
    snprintf(a_nodeids, sizeof(a_nodeids), "%s_nodeids", wp);
    snprintf(a_treeids, sizeof(a_treeids), "%s_treeids", wp);
    snprintf(a_weights, sizeof(a_weights), "%s_weights", wp);

    if (classifier) {
        if ((err = ml_class_labels(n, "classlabels_int64s", &t->labels, &t->n_out, errstr,
                                   errstr_size)))
            goto fail;
        if (t->n_out < 2) ML_FAIL("%lld class label(s): a classifier needs 2 or more",
                                  (long long)t->n_out);
        t->agg = ML_AGG_SUM;   /* the classifier has no aggregate_function */
    } else {
        int64_t nt = aas_onnx_attr_int(n, "n_targets", 1);
        if (nt < 1 || nt > ML_MAX_CLASSES)
            ML_FAIL("n_targets is %lld (1..%d)", (long long)nt, ML_MAX_CLASSES);
        t->n_out = nt;
        const char *agg = aas_onnx_attr_str(n, "aggregate_function", "SUM");
        if (!strcmp(agg, "SUM")) t->agg = ML_AGG_SUM;
        else if (!strcmp(agg, "AVERAGE")) t->agg = ML_AGG_AVERAGE;
        else if (!strcmp(agg, "MIN")) t->agg = ML_AGG_MIN;
        else if (!strcmp(agg, "MAX")) t->agg = ML_AGG_MAX;
        else ML_FAIL("aggregate_function '%s' is not SUM, AVERAGE, MIN or MAX", agg);
    }

    const int64_t *treeids, *nodeids, *featureids, *trueids, *falseids, *missing;
    char *const *modes;
    size_t nn = aas_onnx_attr_ints(n, "nodes_treeids", &treeids);
    size_t n_nodeids = aas_onnx_attr_ints(n, "nodes_nodeids", &nodeids);
    size_t n_feat = aas_onnx_attr_ints(n, "nodes_featureids", &featureids);
    size_t n_true = aas_onnx_attr_ints(n, "nodes_truenodeids", &trueids);
    size_t n_false = aas_onnx_attr_ints(n, "nodes_falsenodeids", &falseids);
    size_t n_modes = aas_onnx_attr_strings(n, "nodes_modes", &modes);
    size_t n_miss = aas_onnx_attr_ints(n, "nodes_missing_value_tracks_true", &missing);
    size_t n_values;
    if ((err = ml_reals(n, "nodes_values", &values, &n_values, errstr, errstr_size))) goto fail;
    if (nn == 0) ML_FAIL("nodes_treeids is empty or missing");
    if (nn > ML_MAX_TREE_NODES) ML_FAIL("%zu nodes (at most %d)", nn, ML_MAX_TREE_NODES);
    if (n_nodeids != nn || n_feat != nn || n_true != nn || n_false != nn || n_modes != nn ||
        n_values != nn)
        ML_FAIL("node attributes differ in length: nodes_treeids %zu, nodes_nodeids %zu, "
                "nodes_featureids %zu, nodes_truenodeids %zu, nodes_falsenodeids %zu, "
                "nodes_modes %zu, nodes_values %zu",
                nn, n_nodeids, n_feat, n_true, n_false, n_modes, n_values);
    if (n_miss && n_miss != nn)
        ML_FAIL("nodes_missing_value_tracks_true has %zu entries for %zu nodes", n_miss, nn);

    t->n_nodes = (int64_t)nn;
    t->nodes = calloc(nn, sizeof(ml_tnode_t));
    keys = malloc(nn * sizeof(ml_key_t));
    t->roots = malloc(nn * sizeof(int32_t));
    wcount = calloc(nn, sizeof(int32_t));
    if (!t->nodes || !keys || !t->roots || !wcount) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < nn; i++) {
        keys[i] = (ml_key_t){treeids[i], nodeids[i], (int32_t)i};
        int m = ml_mode(modes[i]);
        if (m < 0) ML_FAIL("node %zu: mode '%s' is not BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, "
                           "BRANCH_GT, BRANCH_EQ, BRANCH_NEQ or LEAF", i, modes[i]);
        t->nodes[i].mode = (uint8_t)m;
        t->nodes[i].value = values[i];
        t->nodes[i].miss_true = n_miss && missing[i] == 1;
        if (m != ML_LEAF) {
            if (featureids[i] < 0 || featureids[i] >= ML_MAX_FEATURES)
                ML_FAIL("tree %lld node %lld: feature id %lld out of range",
                        (long long)treeids[i], (long long)nodeids[i], (long long)featureids[i]);
            t->nodes[i].feature = (int32_t)featureids[i];
            if (featureids[i] > t->max_feature) t->max_feature = featureids[i];
        }
    }
    qsort(keys, nn, sizeof(ml_key_t), ml_key_cmp);
    for (size_t i = 1; i < nn; i++)
        if (!ml_key_cmp(&keys[i - 1], &keys[i]))
            ML_FAIL("tree %lld has two nodes with id %lld", (long long)keys[i].tree,
                    (long long)keys[i].id);

    /* Roots: the first node listed of each tree (as ONNX Runtime), trees
     * in the order of their ids. */
    for (size_t i = 0; i < nn;) {
        size_t j = i;
        int32_t root = keys[i].idx;
        for (; j < nn && keys[j].tree == keys[i].tree; j++)
            if (keys[j].idx < root) root = keys[j].idx;
        t->roots[t->n_trees++] = root;
        i = j;
    }

    for (size_t i = 0; i < nn; i++) {
        ml_tnode_t *nd = &t->nodes[i];
        if (nd->mode == ML_LEAF) continue;
        int32_t ti = ml_key_find(keys, t->n_nodes, treeids[i], trueids[i]);
        int32_t fi = ml_key_find(keys, t->n_nodes, treeids[i], falseids[i]);
        if (ti < 0)
            ML_FAIL("tree %lld node %lld: true child %lld is not a node of that tree",
                    (long long)treeids[i], (long long)nodeids[i], (long long)trueids[i]);
        if (fi < 0)
            ML_FAIL("tree %lld node %lld: false child %lld is not a node of that tree",
                    (long long)treeids[i], (long long)nodeids[i], (long long)falseids[i]);
        if (ti == (int32_t)i || fi == (int32_t)i)
            ML_FAIL("tree %lld node %lld points to itself", (long long)treeids[i],
                    (long long)nodeids[i]);
        nd->t = ti;
        nd->f = fi;
    }
    if ((err = ml_trees_acyclic(n, t, errstr, errstr_size))) goto fail;

    /* Leaf weights, grouped per leaf. */
    const int64_t *w_ids, *w_nodeids, *w_treeids;
    size_t n_wids = aas_onnx_attr_ints(n, a_ids, &w_ids);
    size_t n_wnodes = aas_onnx_attr_ints(n, a_nodeids, &w_nodeids);
    size_t n_wtrees = aas_onnx_attr_ints(n, a_treeids, &w_treeids);
    size_t n_w;
    if ((err = ml_reals(n, a_weights, &wv, &n_w, errstr, errstr_size))) goto fail;
    if (n_wids != n_w || n_wnodes != n_w || n_wtrees != n_w)
        ML_FAIL("leaf weight attributes differ in length: %s %zu, %s %zu, %s %zu, %s %zu", a_ids,
                n_wids, a_nodeids, n_wnodes, a_treeids, n_wtrees, a_weights, n_w);
    t->w_out = malloc((n_w ? n_w : 1) * sizeof(int32_t));
    t->w_val = malloc((n_w ? n_w : 1) * sizeof(double));
    if (!t->w_out || !t->w_val) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int64_t first_class = -1;
    t->all_positive = 1;
    int one_class = 1;
    for (size_t i = 0; i < n_w; i++) {
        int32_t li = ml_key_find(keys, t->n_nodes, w_treeids[i], w_nodeids[i]);
        if (li < 0)
            ML_FAIL("weight %zu: tree %lld node %lld does not exist", i, (long long)w_treeids[i],
                    (long long)w_nodeids[i]);
        if (t->nodes[li].mode != ML_LEAF)
            ML_FAIL("weight %zu: tree %lld node %lld is not a LEAF", i, (long long)w_treeids[i],
                    (long long)w_nodeids[i]);
        if (w_ids[i] < 0 || w_ids[i] >= t->n_out)
            ML_FAIL("weight %zu: %s %lld out of range [0, %lld)", i, a_ids, (long long)w_ids[i],
                    (long long)t->n_out);
        if (wcount[li] == INT32_MAX) ML_FAIL("too many weights on one leaf");
        wcount[li]++;
        if (wv[i] < 0) t->all_positive = 0;
        if (first_class < 0) first_class = w_ids[i];
        else if (w_ids[i] != first_class) one_class = 0;
    }
    t->binary_case = classifier && t->n_out == 2 && n_w > 0 && one_class;
    {   /* prefix sums: leaf i's weights start at nodes[i].t */
        int64_t at = 0;
        for (size_t i = 0; i < nn; i++) {
            if (t->nodes[i].mode != ML_LEAF) continue;
            t->nodes[i].t = (int32_t)at;
            t->nodes[i].f = 0;
            at += wcount[i];
        }
        for (size_t i = 0; i < n_w; i++) {
            ml_tnode_t *leaf = &t->nodes[ml_key_find(keys, t->n_nodes, w_treeids[i], w_nodeids[i])];
            int32_t at2 = leaf->t + leaf->f++;
            t->w_out[at2] = (int32_t)w_ids[i];
            t->w_val[at2] = wv[i];
        }
        for (size_t i = 0; i < nn; i++) {
            ml_tnode_t *leaf = &t->nodes[i];
            if (leaf->mode != ML_LEAF || leaf->f == 0) continue;
            leaf->dense = 1;
            for (int32_t w = leaf->t + 1; w < leaf->t + leaf->f; w++)
                if (t->w_out[w] != t->w_out[w - 1] + 1) leaf->dense = 0;
        }
    }

    size_t nb;
    if ((err = ml_reals(n, "base_values", &t->base, &nb, errstr, errstr_size))) goto fail;
    if (nb && (int64_t)nb != t->n_out && !(classifier && t->n_out == 2 && nb == 1))
        ML_FAIL("base_values has %zu entries for %lld %s", nb, (long long)t->n_out,
                classifier ? "classes" : "targets");
    t->n_base = (int64_t)nb;

    free(keys);
    free(values);
    free(wv);
    free(wcount);
    *out = t;
    return AAS_ERR_OK;
#undef ML_FAIL
fail:
    free(keys);
    free(values);
    free(wv);
    free(wcount);
    ml_trees_free(t);
    return err;
}

static aas_err_t ml_tree_classifier_check(const aas_onnx_node_t *n, char *errstr,
                                          size_t errstr_size) {
    ml_trees_t *t;
    aas_err_t err = ml_trees_build(n, 1, &t, errstr, errstr_size);
    ml_trees_free(err ? NULL : t);
    return err;
}

static aas_err_t ml_tree_regressor_check(const aas_onnx_node_t *n, char *errstr,
                                         size_t errstr_size) {
    ml_trees_t *t;
    aas_err_t err = ml_trees_build(n, 0, &t, errstr, errstr_size);
    ml_trees_free(err ? NULL : t);
    return err;
}

/* The depth (branches on the longest path) of every tree, into t->depth.
 * The trees are known acyclic; a node shared by several parents (allowed,
 * if odd) is measured once: post-order with a memo, linear in the nodes. */
static aas_err_t ml_trees_depths(ml_trees_t *t) {
    int32_t *memo = malloc((size_t)t->n_nodes * sizeof(int32_t));
    int32_t *stack = malloc((size_t)t->n_nodes * sizeof(int32_t));
    if (!memo || !stack) {
        free(memo);
        free(stack);
        return AAS_ERR_NOMEM;
    }
    for (int64_t i = 0; i < t->n_nodes; i++) memo[i] = -1;
    for (int64_t r = 0; r < t->n_trees; r++) {
        int64_t sp = 0;
        stack[sp++] = t->roots[r];
        while (sp > 0) {
            int32_t v = stack[sp - 1];
            const ml_tnode_t *nd = &t->nodes[v];
            if (memo[v] >= 0) {
                sp--;
                continue;
            }
            if (nd->mode == ML_LEAF) {
                memo[v] = 0;
                sp--;
                continue;
            }
            int32_t dt = memo[nd->t], df = memo[nd->f];
            if (dt >= 0 && df >= 0) {
                memo[v] = 1 + (dt > df ? dt : df);
                sp--;
                continue;
            }
            /* each node is pushed while unmeasured and on the current
             * path only, so the stack holds at most n_nodes entries */
            if (dt < 0) stack[sp++] = nd->t;
            else stack[sp++] = nd->f;
        }
        t->depth[r] = memo[t->roots[r]];
    }
    free(memo);
    free(stack);
    return AAS_ERR_OK;
}

static aas_err_t ml_trees_plan(aas_onnx_kernel_t *k, int classifier, char *errstr,
                               size_t errstr_size) {
    int64_t rows = 0, feats = 0;   /* set by ml_input_2d; zero keeps -O3 quiet */
    aas_err_t err = ml_input_2d(k, &rows, &feats, errstr, errstr_size);
    if (err) return err;
    ml_trees_t *t;
    if ((err = ml_trees_build(k->node, classifier, &t, errstr, errstr_size))) return err;
    if (t->max_feature >= feats) {
        err = aas_onnx_node_err(k->node, errstr, errstr_size,
                                "a branch reads feature %lld but the input has %lld",
                                (long long)t->max_feature, (long long)feats);
        ml_trees_free(t);
        return err;
    }
    int fast = k->in[0]->dtype == AAS_ONNX_FLOAT;
    for (int64_t i = 0; fast && i < t->n_nodes; i++) {
        const ml_tnode_t *nd = &t->nodes[i];
        if (nd->mode != ML_LEAF && (nd->mode != ML_LEQ || nd->miss_true ||
                                    (double)(float)nd->value != nd->value))
            fast = 0;
    }
    if (fast) {
        t->fast = malloc((size_t)t->n_nodes * sizeof(ml_fnode_t));
        t->leaves = malloc((size_t)t->n_trees * ML_BLOCK * sizeof(int32_t));
        t->depth = calloc((size_t)t->n_trees, sizeof(int32_t));
        if (!t->fast || !t->leaves || !t->depth ||
            ml_trees_depths(t) != AAS_ERR_OK) {
            ml_trees_free(t);
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        }
        for (int64_t i = 0; i < t->n_nodes; i++) {
            const ml_tnode_t *nd = &t->nodes[i];
            t->fast[i] = nd->mode == ML_LEAF
                             ? (ml_fnode_t){NAN, 0, {(int32_t)i, (int32_t)i}}
                             : (ml_fnode_t){(float)nd->value, nd->feature, {nd->t, nd->f}};
        }
    }
    t->acc = calloc((size_t)t->n_out, sizeof(double));
    t->has = calloc((size_t)t->n_out, 1);
    t->zrow = calloc((size_t)t->n_out + 1, sizeof(float));
    t->xrow = calloc((size_t)feats + 1, sizeof(double));
    if (!t->acc || !t->has || !t->zrow || !t->xrow) {
        ml_trees_free(t);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    k->state = t;
    if (classifier) {
        if (k->n_out < 1 || !k->out[0])
            return aas_onnx_node_err(k->node, errstr, errstr_size, "output Y is missing");
        k->out[0]->dtype = AAS_ONNX_INT64;
        k->out[0]->rank = 1;
        k->out[0]->dims[0] = rows;
        if (ml_out_present(k, 1)) {
            k->out[1]->dtype = AAS_ONNX_FLOAT;
            k->out[1]->rank = 2;
            k->out[1]->dims[0] = rows;
            k->out[1]->dims[1] = t->n_out;
        }
    } else {
        if (k->n_out < 1 || !k->out[0])
            return aas_onnx_node_err(k->node, errstr, errstr_size, "output Y is missing");
        k->out[0]->dtype = AAS_ONNX_FLOAT;
        k->out[0]->rank = 2;
        k->out[0]->dims[0] = rows;
        k->out[0]->dims[1] = t->n_out;
    }
    return AAS_ERR_OK;
}

static aas_err_t ml_tree_classifier_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    return ml_trees_plan(k, 1, errstr, errstr_size);
}

static aas_err_t ml_tree_regressor_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    return ml_trees_plan(k, 0, errstr, errstr_size);
}

/* The leaf a row reaches in one tree.  x is the row as doubles (exact for
 * float, int32 and |int64| < 2^53), so comparing with double thresholds
 * decides as ONNX Runtime does with float thresholds. */
static const ml_tnode_t *ml_tree_leaf(const ml_tnode_t *nodes, int32_t root, const double *x) {
    const ml_tnode_t *nd = &nodes[root];
    for (;;) {
        double v = x[nd->feature];
        int go;
        switch (nd->mode) {
        case ML_LEQ: go = v <= nd->value; break;
        case ML_LT: go = v < nd->value; break;
        case ML_GTE: go = v >= nd->value; break;
        case ML_GT: go = v > nd->value; break;
        case ML_EQ: go = v == nd->value; break;
        case ML_NEQ: go = v != nd->value; break;
        default: return nd;
        }
        if (nd->miss_true && isnan(v)) go = 1;
        nd = &nodes[go ? nd->t : nd->f];
    }
}

static void ml_row_d(const aas_onnx_tensor_t *x, int64_t r, int64_t feats, double *buf) {
    const size_t o = (size_t)(r * feats);
    switch (x->dtype) {
    case AAS_ONNX_FLOAT:
        for (int64_t j = 0; j < feats; j++) buf[j] = ((const float *)x->data)[o + j];
        break;
    case AAS_ONNX_DOUBLE:
        memcpy(buf, (const double *)x->data + o, (size_t)feats * sizeof(double));
        break;
    case AAS_ONNX_INT64:
        for (int64_t j = 0; j < feats; j++) buf[j] = (double)((const int64_t *)x->data)[o + j];
        break;
    default:
        for (int64_t j = 0; j < feats; j++) buf[j] = ((const int32_t *)x->data)[o + j];
        break;
    }
}

/* Add one leaf's weights into acc / has (sum, min or max).  The arrays
 * come in as restrict locals: has[] is a byte array, and a store through
 * one would otherwise make the compiler reload every pointer of t. */
static inline void ml_leaf_add(int agg, const int32_t *restrict w_out,
                               const double *restrict w_val, double *restrict acc,
                               uint8_t *restrict has, int32_t w_begin, int32_t w_count) {
    for (int32_t w = w_begin; w < w_begin + w_count; w++) {
        int32_t o = w_out[w];
        double v = w_val[w];
        switch (agg) {
        case ML_AGG_MIN:
            if (!has[o] || v < acc[o]) acc[o] = v;
            break;
        case ML_AGG_MAX:
            if (!has[o] || v > acc[o]) acc[o] = v;
            break;
        default: acc[o] += v; break;
        }
        has[o] = 1;
    }
}

/* Fast case: the leaf each of rows r0 .. r0+nb-1 (nb <= ML_BLOCK) reaches
 * in every tree, into t->leaves. */
static void ml_trees_leaves_block(ml_trees_t *t, const aas_onnx_tensor_t *x, int64_t r0, int nb,
                                  int64_t feats) {
    const ml_fnode_t *nodes = t->fast;
    const float *xr[ML_BLOCK];
    for (int l = 0; l < nb; l++) xr[l] = (const float *)x->data + (r0 + l) * feats;
    for (int64_t i = 0; i < t->n_trees; i++) {
        int32_t *idx = t->leaves + i * ML_BLOCK;
        for (int l = 0; l < nb; l++) idx[l] = t->roots[i];
        for (int32_t d = 0; d < t->depth[i]; d++)
            for (int l = 0; l < nb; l++) {
                /* the child indexed by the comparison: a load instead of a
                 * branch the real data mispredicts */
                const ml_fnode_t *nd = &nodes[idx[l]];
                idx[l] = nd->child[!(xr[l][nd->feature] <= nd->thr)];
            }
    }
}

/* Sum/average/min/max of the leaves row r of x reaches, into t->acc /
 * t->has; in the fast case from t->leaves (slot l of the block). */
static void ml_trees_accumulate(ml_trees_t *t, const aas_onnx_tensor_t *x, int64_t r,
                                int64_t feats, int l) {
    double *restrict acc = t->acc;
    uint8_t *restrict has = t->has;
    const int32_t *restrict w_out = t->w_out;
    const double *restrict w_val = t->w_val;
    const int agg = t->agg;
    memset(acc, 0, (size_t)t->n_out * sizeof(double));
    memset(has, 0, (size_t)t->n_out);
    if (t->fast) {
        const int32_t *restrict leaves = t->leaves;
        const ml_tnode_t *restrict nodes = t->nodes;
        const int sum = agg == ML_AGG_SUM || agg == ML_AGG_AVERAGE;
        for (int64_t i = 0; i < t->n_trees; i++) {
            const ml_tnode_t *nd = &nodes[leaves[i * ML_BLOCK + l]];
            if (sum && nd->dense && nd->f >= ML_DENSE_MIN) {
                /* a random forest's leaf: one weight per class, in order */
                double *restrict a = acc + w_out[nd->t];
                const double *restrict v = w_val + nd->t;
                for (int32_t j = 0; j < nd->f; j++) a[j] += v[j];
                memset(has + w_out[nd->t], 1, (size_t)nd->f);
                continue;
            }
            ml_leaf_add(agg, w_out, w_val, acc, has, nd->t, nd->f);
        }
        return;
    }
    ml_row_d(x, r, feats, t->xrow);
    for (int64_t i = 0; i < t->n_trees; i++) {
        const ml_tnode_t *leaf = ml_tree_leaf(t->nodes, t->roots[i], t->xrow);
        ml_leaf_add(agg, w_out, w_val, acc, has, leaf->t, leaf->f);
    }
}

/* TreeEnsembleClassifier's scores and label for one row (ONNX Runtime's
 * TreeAggregatorClassifier::FinalizeScores, including its two-class
 * rules). */
static int64_t ml_tree_classify(ml_trees_t *t, float *z) {
    const int64_t nc = t->n_out;
    if (nc > 2) {
        for (int64_t c = 0; c < t->n_base && c < nc; c++) {
            t->acc[c] = t->has[c] ? t->acc[c] + t->base[c] : t->base[c];
            t->has[c] = 1;
        }
        int64_t best = -1;
        double bw = 0;
        for (int64_t c = 0; c < nc; c++)
            if (t->has[c] && (best < 0 || t->acc[c] > bw)) {
                best = c;
                bw = t->acc[c];
            }
        for (int64_t c = 0; c < nc; c++) z[c] = t->has[c] ? (float)t->acc[c] : 0.f;
        ml_transform(z, nc, t->pt);
        return ml_label(t->labels, best < 0 ? 0 : best);
    }
    /* two classes */
    double s0 = t->acc[0], s1 = t->acc[1];
    int h0 = t->has[0], h1 = t->has[1], n_scores = 2, add = -1;
    if (t->n_base == 2) {
        if (h1) {
            s1 = t->base[1] + s0;   /* ONNX Runtime: base_values[0] unused here */
            s0 = -s1;
        } else {
            s1 += t->base[1];
            s0 += t->base[0];
        }
    } else if (t->n_base == 1) {
        s0 += t->base[0];
        if (!h1) n_scores = 1;
    } else {
        add = 3;
        if (!h1) n_scores = 1;
    }
    double pos = (n_scores == 2 && h1) ? s1 : (h0 ? s0 : 0);
    int64_t idx;
    if (t->binary_case) {
        if (t->all_positive) {
            add = pos > 0.5 ? 0 : 1;
            idx = pos > 0.5 ? 1 : 0;
        } else {
            add = pos > 0 ? 2 : 3;
            idx = pos > 0 ? 1 : 0;
        }
    } else {
        /* ONNX Runtime returns the literals 1/0 here; with labels {0, 1}
         * (what converters write) that is the same as the labels. */
        idx = pos > 0 ? 1 : 0;
    }
    if (n_scores == 2) {
        z[0] = (float)s0;
        z[1] = (float)s1;
        ml_transform(z, 2, t->pt);
    } else {
        ml_binary_scores((float)s0, t->pt, add, z, 2);
    }
    return ml_label(t->labels, idx);
}

static aas_err_t ml_tree_classifier_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    ml_trees_t *t = k->state;
    const aas_onnx_tensor_t *x = k->in[0];
    int64_t rows = k->out[0]->dims[0], feats = x->rank == 1 ? x->dims[0] : x->dims[1];
    int64_t *y = k->out[0]->data;
    float *z = ml_out_present(k, 1) ? k->out[1]->data : NULL;
    for (int64_t r = 0; r < rows; r++) {
        int l = (int)(r % ML_BLOCK);
        if (t->fast && l == 0)
            ml_trees_leaves_block(t, x, r, rows - r < ML_BLOCK ? (int)(rows - r) : ML_BLOCK, feats);
        ml_trees_accumulate(t, x, r, feats, l);
        y[r] = ml_tree_classify(t, t->zrow);
        if (z) memcpy(z + r * t->n_out, t->zrow, (size_t)t->n_out * sizeof(float));
    }
    return AAS_ERR_OK;
}

/* TreeEnsembleRegressor (ONNX Runtime's TreeAggregatorSum/Average/Min/Max
 * FinalizeScores). */
static aas_err_t ml_tree_regressor_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    ml_trees_t *t = k->state;
    const aas_onnx_tensor_t *x = k->in[0];
    int64_t rows = k->out[0]->dims[0], feats = x->rank == 1 ? x->dims[0] : x->dims[1];
    const int64_t nt = t->n_out;
    float *yall = k->out[0]->data;
    for (int64_t r = 0; r < rows; r++) {
        float *y = yall + r * nt;
        int l = (int)(r % ML_BLOCK);
        if (t->fast && l == 0)
            ml_trees_leaves_block(t, x, r, rows - r < ML_BLOCK ? (int)(rows - r) : ML_BLOCK, feats);
        ml_trees_accumulate(t, x, r, feats, l);
        for (int64_t j = 0; j < nt; j++) {
            double v = t->acc[j];
            if (t->agg == ML_AGG_AVERAGE) v /= (double)t->n_trees;
            else if ((t->agg == ML_AGG_MIN || t->agg == ML_AGG_MAX) && !t->has[j]) v = 0;
            if (t->n_base == nt) v += t->base[j];
            y[j] = (float)v;
        }
        if (nt >= 2) ml_transform(y, nt, t->pt);
        else if (t->pt == ML_PT_PROBIT) y[0] = ml_probit(y[0]);
    }
    return AAS_ERR_OK;
}

/* ==== LinearClassifier / LinearRegressor ==== */

typedef struct {
    const float *coef;      /* borrowed from the node: [n_out, feats] */
    const float *icpt;      /* [n_out] or NULL */
    const int64_t *labels;  /* NULL: string labels (index output) */
    int64_t n_out, feats, n_labels;
    ml_pt_t pt;
    int add_second;         /* one score, two labels: two output columns */
    float *xrow;
    float *srow;
} ml_linear_t;

static void ml_linear_free(void *p) {
    ml_linear_t *l = p;
    if (!l) return;
    free(l->xrow);
    free(l->srow);
    free(l);
}

/* Shared parsing; feats 0 at check (the input width is unknown). */
static aas_err_t ml_linear_parse(const aas_onnx_node_t *n, int classifier, ml_linear_t *l,
                                 char *errstr, size_t errstr_size) {
    const float *coef, *icpt;
    size_t nc = aas_onnx_attr_floats(n, "coefficients", &coef);
    size_t ni = aas_onnx_attr_floats(n, "intercepts", &icpt);
    aas_err_t err = ml_post_transform(n, &l->pt, errstr, errstr_size);
    if (err) return err;
    if (!nc) return aas_onnx_node_err(n, errstr, errstr_size, "coefficients is empty or missing");
    if (classifier) {
        if ((err = ml_class_labels(n, "classlabels_ints", &l->labels, &l->n_labels, errstr,
                                   errstr_size)))
            return err;
        /* ONNX Runtime counts classes by the intercepts. */
        l->n_out = ni ? (int64_t)ni : l->n_labels;
        if (l->n_out == 1) {
            if (l->n_labels != 1 && l->n_labels != 2)
                return aas_onnx_node_err(n, errstr, errstr_size,
                                         "one score but %lld class labels", (long long)l->n_labels);
            l->add_second = l->n_labels == 2;
        } else if (l->n_out != l->n_labels) {
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "%lld intercepts (classes) but %lld class labels",
                                     (long long)l->n_out, (long long)l->n_labels);
        }
    } else {
        int64_t nt = aas_onnx_attr_int(n, "targets", 1);
        if (nt < 1 || nt > ML_MAX_CLASSES)
            return aas_onnx_node_err(n, errstr, errstr_size, "targets is %lld (1..%d)",
                                     (long long)nt, ML_MAX_CLASSES);
        l->n_out = nt;
        if (ni && (int64_t)ni != nt)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "%zu intercepts for %lld targets", ni, (long long)nt);
    }
    if (nc % (size_t)l->n_out)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "%zu coefficients is not a multiple of %lld outputs", nc,
                                 (long long)l->n_out);
    l->feats = (int64_t)(nc / (size_t)l->n_out);
    l->coef = coef;
    l->icpt = ni ? icpt : NULL;
    return AAS_ERR_OK;
}

static aas_err_t ml_linear_classifier_check(const aas_onnx_node_t *n, char *errstr,
                                            size_t errstr_size) {
    ml_linear_t l = {0};
    return ml_linear_parse(n, 1, &l, errstr, errstr_size);
}

static aas_err_t ml_linear_regressor_check(const aas_onnx_node_t *n, char *errstr,
                                           size_t errstr_size) {
    ml_linear_t l = {0};
    return ml_linear_parse(n, 0, &l, errstr, errstr_size);
}

static aas_err_t ml_linear_plan(aas_onnx_kernel_t *k, int classifier, char *errstr,
                                size_t errstr_size) {
    int64_t rows = 0, feats = 0;   /* set by ml_input_2d; zero keeps -O3 quiet */
    aas_err_t err = ml_input_2d(k, &rows, &feats, errstr, errstr_size);
    if (err) return err;
    ml_linear_t *l = calloc(1, sizeof(*l));
    if (!l) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    k->state = l;
    if ((err = ml_linear_parse(k->node, classifier, l, errstr, errstr_size))) return err;
    if (l->feats != feats)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "the coefficients expect %lld features, the input has %lld",
                                 (long long)l->feats, (long long)feats);
    l->xrow = calloc((size_t)feats + 1, sizeof(float));
    l->srow = calloc((size_t)l->n_out + 2, sizeof(float));
    if (!l->xrow || !l->srow)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (k->n_out < 1 || !k->out[0])
        return aas_onnx_node_err(k->node, errstr, errstr_size, "output Y is missing");
    if (classifier) {
        k->out[0]->dtype = AAS_ONNX_INT64;
        k->out[0]->rank = 1;
        k->out[0]->dims[0] = rows;
        if (ml_out_present(k, 1)) {
            k->out[1]->dtype = AAS_ONNX_FLOAT;
            k->out[1]->rank = 2;
            k->out[1]->dims[0] = rows;
            k->out[1]->dims[1] = l->add_second ? 2 : l->n_out;
        }
    } else {
        k->out[0]->dtype = AAS_ONNX_FLOAT;
        k->out[0]->rank = 2;
        k->out[0]->dims[0] = rows;
        k->out[0]->dims[1] = l->n_out;
    }
    return AAS_ERR_OK;
}

static aas_err_t ml_linear_classifier_plan(aas_onnx_kernel_t *k, char *errstr,
                                           size_t errstr_size) {
    return ml_linear_plan(k, 1, errstr, errstr_size);
}

static aas_err_t ml_linear_regressor_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    return ml_linear_plan(k, 0, errstr, errstr_size);
}

/* scores = x . coef^T + intercepts, one row */
static void ml_linear_scores(const ml_linear_t *l, const float *x, float *s) {
    for (int64_t c = 0; c < l->n_out; c++)
        s[c] = ml_dot(x, l->coef + c * l->feats, l->feats) + (l->icpt ? l->icpt[c] : 0.f);
}

static aas_err_t ml_linear_classifier_run(aas_onnx_kernel_t *k, char *errstr,
                                          size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    ml_linear_t *l = k->state;
    const aas_onnx_tensor_t *x = k->in[0];
    int64_t rows = k->out[0]->dims[0];
    int64_t *y = k->out[0]->data;
    float *z = ml_out_present(k, 1) ? k->out[1]->data : NULL;
    const int64_t nz = l->add_second ? 2 : l->n_out;
    for (int64_t r = 0; r < rows; r++) {
        float *s = l->srow;
        ml_linear_scores(l, ml_row_f(x, r, l->feats, l->xrow), s);
        if (l->n_out == 1) {
            /* ONNX Runtime: positive score -> second label (or 1) */
            int64_t idx = s[0] > 0 ? 1 : 0;
            y[r] = l->n_labels == 2 ? ml_label(l->labels, idx) : idx;
            if (z) {
                if (l->add_second) ml_binary_scores(s[0], l->pt, 1, z + r * 2, 2);
                else z[r] = l->pt == ML_PT_PROBIT ? ml_probit(s[0]) : s[0];
            }
            continue;
        }
        int64_t best = 0;
        for (int64_t c = 1; c < l->n_out; c++)
            if (s[c] > s[best]) best = c;
        y[r] = ml_label(l->labels, best);
        if (z) {
            ml_transform(s, l->n_out, l->pt);
            memcpy(z + r * nz, s, (size_t)nz * sizeof(float));
        }
    }
    return AAS_ERR_OK;
}

static aas_err_t ml_linear_regressor_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    ml_linear_t *l = k->state;
    const aas_onnx_tensor_t *x = k->in[0];
    int64_t rows = k->out[0]->dims[0];
    float *y = k->out[0]->data;
    for (int64_t r = 0; r < rows; r++) {
        float *s = y + r * l->n_out;
        ml_linear_scores(l, ml_row_f(x, r, l->feats, l->xrow), s);
        if (l->n_out >= 2) ml_transform(s, l->n_out, l->pt);
        else if (l->pt == ML_PT_PROBIT) s[0] = ml_probit(s[0]);
    }
    return AAS_ERR_OK;
}

/* ==== SVMClassifier (ONNX Runtime's svmclassifier.cc) ==== */

enum { ML_K_LINEAR, ML_K_POLY, ML_K_RBF, ML_K_SIGMOID };

typedef struct {
    const float *coef, *sv, *rho, *proba, *probb;   /* borrowed from the node */
    const int64_t *labels;
    int64_t *start;          /* first support vector of each class */
    const int64_t *vpc;      /* vectors_per_class */
    int64_t n_classes, n_vectors, feats, n_pairs;
    int svc;                 /* 0: liblinear mode (coefficients [C, F]) */
    int have_proba;
    int kernel;
    float gamma, coef0, degree;
    ml_pt_t pt;
    int weights_all_positive;
    int64_t n_scores;        /* columns of Z */
    /* scratch */
    float *xrow, *kern, *scores, *probs, *p2, *q, *qp;
    int64_t *votes;
} ml_svm_t;

static void ml_svm_free(void *p) {
    ml_svm_t *s = p;
    if (!s) return;
    free(s->start);
    free(s->xrow);
    free(s->kern);
    free(s->scores);
    free(s->probs);
    free(s->p2);
    free(s->q);
    free(s->qp);
    free(s->votes);
    free(s);
}

static aas_err_t ml_svm_parse(const aas_onnx_node_t *n, ml_svm_t *s, char *errstr,
                              size_t errstr_size) {
    aas_err_t err = ml_post_transform(n, &s->pt, errstr, errstr_size);
    if (err) return err;
    if ((err = ml_class_labels(n, "classlabels_ints", &s->labels, &s->n_classes, errstr,
                               errstr_size)))
        return err;
    const char *kt = aas_onnx_attr_str(n, "kernel_type", "LINEAR");
    if (!strcmp(kt, "LINEAR")) s->kernel = ML_K_LINEAR;
    else if (!strcmp(kt, "POLY")) s->kernel = ML_K_POLY;
    else if (!strcmp(kt, "RBF")) s->kernel = ML_K_RBF;
    else if (!strcmp(kt, "SIGMOID")) s->kernel = ML_K_SIGMOID;
    else return aas_onnx_node_err(n, errstr, errstr_size,
                                  "kernel_type '%s' is not LINEAR, POLY, RBF or SIGMOID", kt);
    const float *kp;
    size_t nkp = aas_onnx_attr_floats(n, "kernel_params", &kp);
    if (nkp && nkp != 3)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "kernel_params has %zu entries, not 3 (gamma, coef0, "
                                 "degree)", nkp);
    if (nkp) {
        s->gamma = kp[0];
        s->coef0 = kp[1];
        s->degree = kp[2];
    }
    size_t ncoef = aas_onnx_attr_floats(n, "coefficients", &s->coef);
    size_t nrho = aas_onnx_attr_floats(n, "rho", &s->rho);
    size_t npa = aas_onnx_attr_floats(n, "prob_a", &s->proba);
    size_t npb = aas_onnx_attr_floats(n, "prob_b", &s->probb);
    size_t nsv = aas_onnx_attr_floats(n, "support_vectors", &s->sv);
    size_t nvpc = aas_onnx_attr_ints(n, "vectors_per_class", &s->vpc);
    if (!ncoef)
        return aas_onnx_node_err(n, errstr, errstr_size, "coefficients is empty or missing");
    if (npa != npb)
        return aas_onnx_node_err(n, errstr, errstr_size, "prob_a has %zu entries, prob_b %zu",
                                 npa, npb);
    s->have_proba = npa > 0;
    s->n_vectors = 0;
    for (size_t i = 0; i < nvpc; i++) {
        if (s->vpc[i] < 0 || s->vpc[i] > ML_MAX_TREE_NODES)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "vectors_per_class[%zu] is %lld", i, (long long)s->vpc[i]);
        s->n_vectors += s->vpc[i];
    }
    const int64_t nc = s->n_classes;
    s->n_pairs = nc * (nc - 1) / 2;
    if (s->n_vectors > 0) {
        s->svc = 1;
        if ((int64_t)nvpc != nc)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "vectors_per_class has %zu entries for %lld classes", nvpc,
                                     (long long)nc);
        if (nc < 2)
            return aas_onnx_node_err(n, errstr, errstr_size, "a support vector classifier "
                                     "needs at least 2 classes");
        if (nsv % (size_t)s->n_vectors)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "support_vectors has %zu values, not a multiple of %lld "
                                     "vectors", nsv, (long long)s->n_vectors);
        s->feats = (int64_t)(nsv / (size_t)s->n_vectors);
        if (s->feats < 1)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "support_vectors is empty for %lld vectors",
                                     (long long)s->n_vectors);
        if ((int64_t)ncoef != (nc - 1) * s->n_vectors)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "coefficients has %zu values, not (classes - 1) x vectors "
                                     "= %lld", ncoef, (long long)((nc - 1) * s->n_vectors));
        if ((int64_t)nrho != s->n_pairs)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "rho has %zu values, not one per class pair (%lld)", nrho,
                                     (long long)s->n_pairs);
        if (s->have_proba && (int64_t)npa != s->n_pairs)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "prob_a/prob_b have %zu values, not one per class pair "
                                     "(%lld)", npa, (long long)s->n_pairs);
        s->n_scores = s->have_proba ? nc : (nc > 2 ? s->n_pairs : 2);
    } else {
        s->svc = 0;
        s->kernel = ML_K_LINEAR;   /* liblinear mode, as ONNX Runtime */
        if (ncoef % (size_t)nc)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "coefficients has %zu values, not a multiple of %lld "
                                     "classes", ncoef, (long long)nc);
        s->feats = (int64_t)(ncoef / (size_t)nc);
        if (nrho < 1) return aas_onnx_node_err(n, errstr, errstr_size, "rho is empty");
        s->n_scores = nc;
    }
    s->weights_all_positive = 1;
    for (size_t i = 0; i < ncoef; i++)
        if (!(s->coef[i] >= 0.f)) s->weights_all_positive = 0;
    return AAS_ERR_OK;
}

static aas_err_t ml_svm_check(const aas_onnx_node_t *n, char *errstr, size_t errstr_size) {
    ml_svm_t s = {0};
    return ml_svm_parse(n, &s, errstr, errstr_size);
}

static aas_err_t ml_svm_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    int64_t rows = 0, feats = 0;   /* set by ml_input_2d; zero keeps -O3 quiet */
    aas_err_t err = ml_input_2d(k, &rows, &feats, errstr, errstr_size);
    if (err) return err;
    ml_svm_t *s = calloc(1, sizeof(*s));
    if (!s) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    k->state = s;
    if ((err = ml_svm_parse(k->node, s, errstr, errstr_size))) return err;
    if (s->feats != feats)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "the model expects %lld features, the input has %lld",
                                 (long long)s->feats, (long long)feats);
    const size_t nc = (size_t)s->n_classes;
    s->start = calloc(nc + 1, sizeof(int64_t));
    s->xrow = calloc((size_t)feats + 1, sizeof(float));
    s->kern = calloc((size_t)s->n_vectors + 1, sizeof(float));
    s->scores = calloc((s->svc ? (size_t)s->n_pairs : 0) + nc + 2, sizeof(float));
    s->probs = calloc(nc + 2, sizeof(float));
    s->votes = calloc(nc, sizeof(int64_t));
    if (!s->start || !s->xrow || !s->kern || !s->scores || !s->probs || !s->votes)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (s->svc && s->have_proba) {
        /* C x C only with probabilities: prob_a then holds C (C - 1) / 2
         * values, which bounds C by the model's own size */
        s->p2 = calloc(nc * nc, sizeof(float));
        s->q = calloc(nc * nc, sizeof(float));
        s->qp = calloc(nc, sizeof(float));
        if (!s->p2 || !s->q || !s->qp)
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0, at = 0; s->svc && i < nc; i++) {
        s->start[i] = (int64_t)at;
        at += (size_t)s->vpc[i];
    }
    if (k->n_out < 1 || !k->out[0])
        return aas_onnx_node_err(k->node, errstr, errstr_size, "output Y is missing");
    k->out[0]->dtype = AAS_ONNX_INT64;
    k->out[0]->rank = 1;
    k->out[0]->dims[0] = rows;
    if (ml_out_present(k, 1)) {
        k->out[1]->dtype = AAS_ONNX_FLOAT;
        k->out[1]->rank = 2;
        k->out[1]->dims[0] = rows;
        k->out[1]->dims[1] = s->n_scores;
    }
    return AAS_ERR_OK;
}

/* libsvm's pairwise coupling (Wu, Lin, Weng 2004) as ONNX Runtime's
 * multiclass_probability, in float. */
static void ml_svm_coupling(const ml_svm_t *s, const float *r, float *p) {
    const int64_t k = s->n_classes;
    float *q = s->q, *qp = s->qp;
    memset(q, 0, (size_t)(k * k) * sizeof(float));
    float eps = 0.005f / (float)k;
    for (int64_t i = 0; i < k; i++) {
        p[i] = 1.0f / (float)k;
        for (int64_t j = 0; j < i; j++) {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = q[j * k + i];
        }
        for (int64_t j = i + 1; j < k; j++) {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = -r[j * k + i] * r[i * k + j];
        }
    }
    for (int loop = 0; loop < 100; loop++) {
        float pqp = 0;
        for (int64_t i = 0; i < k; i++) {
            qp[i] = 0;
            for (int64_t j = 0; j < k; j++) qp[i] += q[i * k + j] * p[j];
            pqp += p[i] * qp[i];
        }
        float max_error = 0;
        for (int64_t i = 0; i < k; i++) {
            float e = fabsf(qp[i] - pqp);
            if (e > max_error) max_error = e;
        }
        if (max_error < eps) break;
        for (int64_t i = 0; i < k; i++) {
            float diff = (-qp[i] + pqp) / q[i * k + i];
            p[i] += diff;
            pqp = (pqp + diff * (diff * q[i * k + i] + 2 * qp[i])) / (1 + diff) / (1 + diff);
            for (int64_t j = 0; j < k; j++) {
                qp[j] = (qp[j] + diff * q[i * k + j]) / (1 + diff);
                p[j] /= (1 + diff);
            }
        }
    }
}

static float ml_svm_kernel(const ml_svm_t *s, const float *x, const float *v) {
    if (s->kernel == ML_K_RBF) return expf(-s->gamma * ml_sqdist(x, v, s->feats));
    float acc = ml_dot(x, v, s->feats);
    switch (s->kernel) {
    case ML_K_POLY: {
        float b = s->gamma * acc + s->coef0;
        if (s->degree == 2) return b * b;
        if (s->degree == 3) return b * b * b;
        return powf(b, s->degree);
    }
    case ML_K_SIGMOID: return tanhf(s->gamma * acc + s->coef0);
    default: return acc;
    }
}

static aas_err_t ml_svm_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    ml_svm_t *s = k->state;
    const aas_onnx_tensor_t *x = k->in[0];
    const int64_t rows = k->out[0]->dims[0], nc = s->n_classes, nz = s->n_scores;
    int64_t *y = k->out[0]->data;
    float *z = ml_out_present(k, 1) ? k->out[1]->data : NULL;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = ml_row_f(x, r, s->feats, s->xrow);
        float *out = s->scores;   /* nz (+1) entries for this row */
        int64_t best = 0;
        float max_weight = 0;
        if (!s->svc) {
            for (int64_t c = 0; c < nc; c++)
                out[c] = ml_dot(xr, s->coef + c * s->feats, s->feats) + s->rho[0];
            for (int64_t c = 1; c < nc; c++)
                if (out[c] > out[best]) best = c;
            max_weight = out[best];
        } else {
            for (int64_t v = 0; v < s->n_vectors; v++)
                s->kern[v] = ml_svm_kernel(s, xr, s->sv + v * s->feats);
            memset(s->votes, 0, (size_t)nc * sizeof(int64_t));
            float *pair = out;   /* one score per class pair */
            int64_t idx = 0;
            for (int64_t i = 0; i < nc - 1; i++) {
                for (int64_t j = i + 1; j < nc; j++, idx++) {
                    /* class i's vectors with their coefficients against j
                     * (row j - 1), then class j's against i (row i) */
                    double sum = ml_dot_fd(s->coef + (j - 1) * s->n_vectors + s->start[i],
                                           s->kern + s->start[i], s->vpc[i]);
                    sum += ml_dot_fd(s->coef + i * s->n_vectors + s->start[j],
                                     s->kern + s->start[j], s->vpc[j]);
                    sum += s->rho[idx];
                    pair[idx] = (float)sum;
                    s->votes[sum > 0 ? i : j]++;
                }
            }
            for (int64_t c = 1; c < nc; c++)
                if (s->votes[c] > s->votes[best]) best = c;
            if (s->have_proba) {
                float *p2 = s->p2;
                memset(p2, 0, (size_t)(nc * nc) * sizeof(float));
                idx = 0;
                for (int64_t i = 0; i < nc - 1; i++)
                    for (int64_t j = i + 1; j < nc; j++, idx++) {
                        float v1 = 1.f - ml_logistic(pair[idx] * s->proba[idx] + s->probb[idx]);
                        float v2 = v1 > 1.0e-7f ? v1 : 1.0e-7f;
                        v2 = v2 < 1 - 1.0e-7f ? v2 : 1 - 1.0e-7f;
                        p2[i * nc + j] = v2;
                        p2[j * nc + i] = 1 - v2;
                    }
                ml_svm_coupling(s, p2, s->probs);
                memcpy(out, s->probs, (size_t)nc * sizeof(float));
            }
        }
        /* the label (ONNX Runtime's ChooseClass) */
        if (s->n_pairs == 1) {
            int64_t idx;
            if (s->svc || s->have_proba) idx = best;
            else if (s->weights_all_positive && max_weight >= 0.5f) idx = 1;
            else if (max_weight > 0 && !s->weights_all_positive) idx = 1;
            else idx = best;
            y[r] = ml_label(s->labels, idx);
        } else {
            y[r] = ml_label(s->labels, best);
        }
        /* the scores */
        if (nz == 2 && s->svc && !s->have_proba && nc == 2) {
            float sc = out[0];
            ml_binary_scores(sc, s->pt, s->pt == ML_PT_NONE ? 2 : 0, out, 2);
        } else if (nz >= 2) {
            ml_transform(out, nz, s->pt);
        } else if (s->pt == ML_PT_PROBIT) {
            out[0] = ml_probit(out[0]);
        }
        if (z) memcpy(z + r * nz, out, (size_t)nz * sizeof(float));
    }
    return AAS_ERR_OK;
}

/* ==== Scaler ==== */

typedef struct {
    const float *offset, *scale;
    size_t n_offset, n_scale;
} ml_scaler_t;

static aas_err_t ml_scaler_check(const aas_onnx_node_t *n, char *errstr, size_t errstr_size) {
    const float *v;
    size_t no = aas_onnx_attr_floats(n, "offset", &v);
    size_t ns = aas_onnx_attr_floats(n, "scale", &v);
    if (!no && !ns)
        return aas_onnx_node_err(n, errstr, errstr_size, "neither offset nor scale is set");
    return AAS_ERR_OK;
}

static aas_err_t ml_scaler_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    int64_t rows = 0, feats = 0;   /* set by ml_input_2d; zero keeps -O3 quiet */
    aas_err_t err = ml_input_2d(k, &rows, &feats, errstr, errstr_size);
    if (err) return err;
    ml_scaler_t *s = calloc(1, sizeof(*s));
    if (!s) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    k->state = s;
    s->n_offset = aas_onnx_attr_floats(k->node, "offset", &s->offset);
    s->n_scale = aas_onnx_attr_floats(k->node, "scale", &s->scale);
    if (s->n_offset > 1 && (int64_t)s->n_offset != feats)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "offset has %zu values for %lld features", s->n_offset,
                                 (long long)feats);
    if (s->n_scale > 1 && (int64_t)s->n_scale != feats)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "scale has %zu values for %lld features", s->n_scale,
                                 (long long)feats);
    if (k->n_out < 1 || !k->out[0])
        return aas_onnx_node_err(k->node, errstr, errstr_size, "output Y is missing");
    k->out[0]->dtype = AAS_ONNX_FLOAT;
    k->out[0]->rank = k->in[0]->rank;
    memcpy(k->out[0]->dims, k->in[0]->dims, sizeof(k->in[0]->dims));
    return AAS_ERR_OK;
}

static aas_err_t ml_scaler_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    const ml_scaler_t *s = k->state;
    const aas_onnx_tensor_t *x = k->in[0];
    const int64_t feats = x->rank == 1 ? x->dims[0] : x->dims[1];
    const int64_t rows = x->rank == 1 ? 1 : x->dims[0];
    float *y = k->out[0]->data;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = ml_row_f(x, r, feats, y + r * feats);   /* converts in place */
        float *yr = y + r * feats;
        for (int64_t j = 0; j < feats; j++) {
            float o = s->n_offset == 0 ? 0.f : s->offset[s->n_offset == 1 ? 0 : j];
            float c = s->n_scale == 0 ? 1.f : s->scale[s->n_scale == 1 ? 0 : j];
            yr[j] = (xr[j] - o) * c;
        }
    }
    return AAS_ERR_OK;
}

/* ==== Normalizer ==== */

enum { ML_NORM_MAX, ML_NORM_L1, ML_NORM_L2 };

static aas_err_t ml_norm_kind(const aas_onnx_node_t *n, int *out, char *errstr,
                              size_t errstr_size) {
    const char *s = aas_onnx_attr_str(n, "norm", "MAX");
    if (!strcmp(s, "MAX")) *out = ML_NORM_MAX;
    else if (!strcmp(s, "L1")) *out = ML_NORM_L1;
    else if (!strcmp(s, "L2")) *out = ML_NORM_L2;
    else return aas_onnx_node_err(n, errstr, errstr_size, "norm '%s' is not MAX, L1 or L2", s);
    return AAS_ERR_OK;
}

static aas_err_t ml_normalizer_check(const aas_onnx_node_t *n, char *errstr, size_t errstr_size) {
    int kind;
    return ml_norm_kind(n, &kind, errstr, errstr_size);
}

static aas_err_t ml_normalizer_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    int64_t rows = 0, feats = 0;   /* set by ml_input_2d; zero keeps -O3 quiet */
    int *kind = malloc(sizeof(int));
    if (!kind) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    k->state = kind;
    aas_err_t err = ml_input_2d(k, &rows, &feats, errstr, errstr_size);
    if (err || (err = ml_norm_kind(k->node, kind, errstr, errstr_size))) return err;
    if (k->n_out < 1 || !k->out[0])
        return aas_onnx_node_err(k->node, errstr, errstr_size, "output Y is missing");
    k->out[0]->dtype = AAS_ONNX_FLOAT;
    k->out[0]->rank = k->in[0]->rank;
    memcpy(k->out[0]->dims, k->in[0]->dims, sizeof(k->in[0]->dims));
    return AAS_ERR_OK;
}

/* As ONNX Runtime: a row whose norm is 0 is copied unchanged. */
static aas_err_t ml_normalizer_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    const int kind = *(const int *)k->state;
    const aas_onnx_tensor_t *x = k->in[0];
    const int64_t feats = x->rank == 1 ? x->dims[0] : x->dims[1];
    const int64_t rows = x->rank == 1 ? 1 : x->dims[0];
    float *y = k->out[0]->data;
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * feats;
        const float *xr = ml_row_f(x, r, feats, yr);
        if (xr != yr) memcpy(yr, xr, (size_t)feats * sizeof(float));
        float norm = 0.f;
        if (kind == ML_NORM_MAX) {
            norm = -3.402823466e38f;
            for (int64_t j = 0; j < feats; j++)
                if (yr[j] > norm) norm = yr[j];
            if (norm != 0.f)
                for (int64_t j = 0; j < feats; j++) yr[j] /= norm;
        } else if (kind == ML_NORM_L1) {
            for (int64_t j = 0; j < feats; j++) norm += fabsf(yr[j]);
            if (norm != 0.f)
                for (int64_t j = 0; j < feats; j++) yr[j] /= norm;
        } else {
            for (int64_t j = 0; j < feats; j++) norm += yr[j] * yr[j];
            if (norm != 0.f)
                for (int64_t j = 0; j < feats; j++) {
                    float v = sqrtf(yr[j] * yr[j] / norm);
                    yr[j] = yr[j] < 0 ? -v : v;
                }
        }
    }
    return AAS_ERR_OK;
}

/* ==== ZipMap ====
 *
 * ONNX's ZipMap turns the [N, C] probability tensor into a sequence of N
 * maps {label: probability}.  The engine has no sequence or map values, so
 * here ZipMap passes the float [N, C] tensor through unchanged (sharing
 * its buffer): the labels are the classifier's classlabels_* attribute,
 * which model_onnx.c reads, and column c belongs to the c-th label.  The
 * check below at least ensures ZipMap's own labels count the columns.
 */
static aas_err_t ml_zipmap_check(const aas_onnx_node_t *n, char *errstr, size_t errstr_size) {
    const int64_t *li;
    char *const *ls;
    size_t ni = aas_onnx_attr_ints(n, "classlabels_int64s", &li);
    size_t ns = aas_onnx_attr_strings(n, "classlabels_strings", &ls);
    if ((ni == 0) == (ns == 0))
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "exactly one of classlabels_int64s and classlabels_strings must "
                                 "be set");
    return AAS_ERR_OK;
}

static aas_err_t ml_zipmap_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_tensor_t *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!x || x->dtype != AAS_ONNX_FLOAT || (x->rank != 1 && x->rank != 2))
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "input X must be a float tensor of rank 1 or 2");
    const int64_t *li;
    char *const *ls;
    size_t nl = aas_onnx_attr_ints(k->node, "classlabels_int64s", &li);
    if (!nl) nl = aas_onnx_attr_strings(k->node, "classlabels_strings", &ls);
    int64_t cols = x->dims[x->rank - 1];
    if ((int64_t)nl != cols)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "%zu class labels for %lld columns", nl, (long long)cols);
    if (k->n_out < 1 || !k->out[0])
        return aas_onnx_node_err(k->node, errstr, errstr_size, "output Z is missing");
    k->out[0]->dtype = AAS_ONNX_FLOAT;
    k->out[0]->rank = x->rank;
    memcpy(k->out[0]->dims, x->dims, sizeof(x->dims));
    k->alias = 1;
    return AAS_ERR_OK;
}

static aas_err_t ml_zipmap_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    /* Aliased: nothing to do unless the planner chose to give us a buffer. */
    if (k->out[0]->data != k->in[0]->data)
        memcpy(k->out[0]->data, k->in[0]->data, k->in[0]->nbytes);
    return AAS_ERR_OK;
}

/* ==== ArgMax (ai.onnx 1..18) ==== */

static aas_err_t ml_argmax_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_tensor_t *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!x) return aas_onnx_node_err(k->node, errstr, errstr_size, "input data is missing");
    if (x->dtype != AAS_ONNX_FLOAT && x->dtype != AAS_ONNX_DOUBLE && x->dtype != AAS_ONNX_INT64 &&
        x->dtype != AAS_ONNX_INT32 && x->dtype != AAS_ONNX_INT8 && x->dtype != AAS_ONNX_UINT8)
        return aas_onnx_node_err(k->node, errstr, errstr_size, "input is %s",
                                 aas_onnx_dtype_name(x->dtype));
    if (x->rank < 1)
        return aas_onnx_node_err(k->node, errstr, errstr_size, "input is a scalar");
    int64_t axis = aas_onnx_attr_int(k->node, "axis", 0);
    if (k->node->opset < 11 && axis < 0)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "negative axis needs opset 11 (model imports %lld)",
                                 (long long)k->node->opset);
    int a = aas_onnx_axis(axis, x->rank);
    if (a < 0)
        return aas_onnx_node_err(k->node, errstr, errstr_size, "axis %lld out of range for rank %d",
                                 (long long)axis, x->rank);
    if (x->dims[a] < 1)
        return aas_onnx_node_err(k->node, errstr, errstr_size, "axis %d has no elements", a);
    int keep = aas_onnx_attr_int(k->node, "keepdims", 1) != 0;
    int *st = malloc(sizeof(int));
    if (!st) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    *st = a;
    k->state = st;
    if (k->n_out < 1 || !k->out[0])
        return aas_onnx_node_err(k->node, errstr, errstr_size, "output is missing");
    aas_onnx_tensor_t *o = k->out[0];
    o->dtype = AAS_ONNX_INT64;
    o->rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i == a) {
            if (keep) o->dims[o->rank++] = 1;
            continue;
        }
        o->dims[o->rank++] = x->dims[i];
    }
    return AAS_ERR_OK;
}

static double ml_at(const aas_onnx_tensor_t *t, int64_t i) {
    switch (t->dtype) {
    case AAS_ONNX_FLOAT: return ((const float *)t->data)[i];
    case AAS_ONNX_DOUBLE: return ((const double *)t->data)[i];
    case AAS_ONNX_INT64: return (double)((const int64_t *)t->data)[i];
    case AAS_ONNX_INT32: return ((const int32_t *)t->data)[i];
    case AAS_ONNX_INT8: return ((const int8_t *)t->data)[i];
    default: return ((const uint8_t *)t->data)[i];
    }
}

static aas_err_t ml_argmax_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    const aas_onnx_tensor_t *x = k->in[0];
    const int a = *(const int *)k->state;
    const int last = k->node->opset >= 12 && aas_onnx_attr_int(k->node, "select_last_index", 0);
    int64_t outer = 1, inner = 1, n = x->dims[a];
    for (int i = 0; i < a; i++) outer *= x->dims[i];
    for (int i = a + 1; i < x->rank; i++) inner *= x->dims[i];
    int64_t *y = k->out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            int64_t base = o * n * inner + in, best = 0;
            double bv = ml_at(x, base);
            for (int64_t j = 1; j < n; j++) {
                double v = ml_at(x, base + j * inner);
                if (v > bv || (last && v == bv)) {
                    bv = v;
                    best = j;
                }
            }
            y[o * inner + in] = best;
        }
    return AAS_ERR_OK;
}

/* ==== ArrayFeatureExtractor ====
 *
 * Z[..., j] = X[..., Y[j]] along X's last axis (a 1-D X gives [1, n]), as
 * skl2onnx uses it to pick columns (SVC's one-vs-rest scores).  Indices
 * are checked at plan when Y is a constant, else at every run.
 */
static aas_err_t ml_afe_indices(const aas_onnx_kernel_t *k, int64_t stride, char *errstr,
                                size_t errstr_size) {
    const aas_onnx_tensor_t *y = k->in[1];
    int64_t n = aas_onnx_numel(y);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = aas_onnx_int_at(y, i);
        if (v < 0 || v >= stride)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "index %lld out of range [0, %lld)", (long long)v,
                                     (long long)stride);
    }
    return AAS_ERR_OK;
}

static aas_err_t ml_afe_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_tensor_t *x = k->n_in > 0 ? k->in[0] : NULL;
    const aas_onnx_tensor_t *y = k->n_in > 1 ? k->in[1] : NULL;
    if (!x || !y) return aas_onnx_node_err(k->node, errstr, errstr_size, "needs inputs X and Y");
    if (!aas_onnx_dtype_size(x->dtype))
        return aas_onnx_node_err(k->node, errstr, errstr_size, "input X is %s",
                                 aas_onnx_dtype_name(x->dtype));
    if (y->dtype != AAS_ONNX_INT64 && y->dtype != AAS_ONNX_INT32)
        return aas_onnx_node_err(k->node, errstr, errstr_size, "indices Y are %s, not int64",
                                 aas_onnx_dtype_name(y->dtype));
    if (x->rank < 1)
        return aas_onnx_node_err(k->node, errstr, errstr_size, "input X is a scalar");
    int64_t n = aas_onnx_numel(y), stride = x->dims[x->rank - 1];
    if (n < 1) return aas_onnx_node_err(k->node, errstr, errstr_size, "no indices");
    if (y->data) {
        aas_err_t err = ml_afe_indices(k, stride, errstr, errstr_size);
        if (err) return err;
    }
    if (k->n_out < 1 || !k->out[0])
        return aas_onnx_node_err(k->node, errstr, errstr_size, "output Z is missing");
    aas_onnx_tensor_t *z = k->out[0];
    z->dtype = x->dtype;
    if (x->rank == 1) {
        z->rank = 2;
        z->dims[0] = 1;
        z->dims[1] = n;
    } else {
        z->rank = x->rank;
        memcpy(z->dims, x->dims, sizeof(x->dims));
        z->dims[x->rank - 1] = n;
    }
    return AAS_ERR_OK;
}

static aas_err_t ml_afe_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_tensor_t *x = k->in[0], *y = k->in[1];
    const int64_t stride = x->dims[x->rank - 1], n = aas_onnx_numel(y);
    aas_err_t err = ml_afe_indices(k, stride, errstr, errstr_size);
    if (err) return err;
    const size_t esz = aas_onnx_dtype_size(x->dtype);
    const int64_t loops = stride ? aas_onnx_numel(x) / stride : 0;
    const char *src = x->data;
    char *dst = k->out[0]->data;
    for (int64_t i = 0; i < loops; i++)
        for (int64_t j = 0; j < n; j++)
            memcpy(dst + (size_t)(i * n + j) * esz,
                   src + (size_t)(i * stride + aas_onnx_int_at(y, j)) * esz, esz);
    return AAS_ERR_OK;
}

/* ==== Less and Sum (ai.onnx) ====
 *
 * skl2onnx's graph for an SVC without probabilities (one-vs-rest scores
 * from the pairwise votes) uses these two next to ArrayFeatureExtractor;
 * they live here with the other operators scikit-learn models need.
 * Numpy broadcasting (Less from opset 7, Sum from 8; Sum 6 required equal
 * shapes, which broadcasting accepts too).
 */

/* Strides of in against the broadcast shape out (0 along broadcast
 * dimensions), right-aligned. */
static void ml_bcast_strides(const aas_onnx_tensor_t *in, const aas_onnx_tensor_t *out,
                             int64_t *st) {
    int64_t acc = 1;
    for (int i = out->rank - 1; i >= 0; i--) {
        int ii = i - (out->rank - in->rank);
        if (ii < 0 || in->dims[ii] == 1) {
            st[i] = 0;
        } else {
            st[i] = acc;
        }
        if (ii >= 0) acc *= in->dims[ii];
    }
}

/* The offset in `in` of output element idx (row-major over out). */
static int64_t ml_bcast_at(const aas_onnx_tensor_t *out, const int64_t *st, int64_t idx) {
    int64_t off = 0;
    for (int i = out->rank - 1; i >= 0; i--) {
        int64_t d = out->dims[i];
        off += (idx % d) * st[i];
        idx /= d;
    }
    return off;
}

static int ml_numeric(aas_onnx_dtype_t t) {
    return t == AAS_ONNX_FLOAT || t == AAS_ONNX_DOUBLE || t == AAS_ONNX_INT64 ||
           t == AAS_ONNX_INT32 || t == AAS_ONNX_INT8 || t == AAS_ONNX_UINT8;
}

static aas_err_t ml_less_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_tensor_t *a = k->n_in > 0 ? k->in[0] : NULL, *b = k->n_in > 1 ? k->in[1] : NULL;
    if (!a || !b) return aas_onnx_node_err(k->node, errstr, errstr_size, "needs inputs A and B");
    if (a->dtype != b->dtype || !ml_numeric(a->dtype))
        return aas_onnx_node_err(k->node, errstr, errstr_size, "inputs are %s and %s",
                                 aas_onnx_dtype_name(a->dtype), aas_onnx_dtype_name(b->dtype));
    if (k->n_out < 1 || !k->out[0])
        return aas_onnx_node_err(k->node, errstr, errstr_size, "output C is missing");
    if (aas_onnx_broadcast(a, b, k->out[0]))
        return aas_onnx_node_err(k->node, errstr, errstr_size, "inputs do not broadcast");
    k->out[0]->dtype = AAS_ONNX_BOOL;
    return AAS_ERR_OK;
}

static aas_err_t ml_less_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    const aas_onnx_tensor_t *a = k->in[0], *b = k->in[1];
    aas_onnx_tensor_t *o = k->out[0];
    int64_t sa[AAS_ONNX_MAX_RANK], sb[AAS_ONNX_MAX_RANK];
    ml_bcast_strides(a, o, sa);
    ml_bcast_strides(b, o, sb);
    uint8_t *c = o->data;
    const int64_t n = aas_onnx_numel(o);
    for (int64_t i = 0; i < n; i++) {
        int64_t ia = ml_bcast_at(o, sa, i), ib = ml_bcast_at(o, sb, i);
        if (a->dtype == AAS_ONNX_INT64)   /* exact beyond 2^53 */
            c[i] = ((const int64_t *)a->data)[ia] < ((const int64_t *)b->data)[ib];
        else
            c[i] = ml_at(a, ia) < ml_at(b, ib);
    }
    return AAS_ERR_OK;
}

static aas_err_t ml_sum_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    if (k->n_in < 1 || !k->in[0])
        return aas_onnx_node_err(k->node, errstr, errstr_size, "needs at least one input");
    if (k->in[0]->dtype != AAS_ONNX_FLOAT && k->in[0]->dtype != AAS_ONNX_DOUBLE)
        return aas_onnx_node_err(k->node, errstr, errstr_size, "input is %s, not float or double",
                                 aas_onnx_dtype_name(k->in[0]->dtype));
    if (k->n_out < 1 || !k->out[0])
        return aas_onnx_node_err(k->node, errstr, errstr_size, "output is missing");
    aas_onnx_tensor_t shape = *k->in[0];
    for (int i = 1; i < k->n_in; i++) {
        if (!k->in[i] || k->in[i]->dtype != k->in[0]->dtype)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "input %d is missing or of another dtype", i);
        aas_onnx_tensor_t next = shape;
        if (aas_onnx_broadcast(&shape, k->in[i], &next))
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "input %d does not broadcast", i);
        shape.rank = next.rank;
        memcpy(shape.dims, next.dims, sizeof(shape.dims));
    }
    k->out[0]->dtype = k->in[0]->dtype;
    k->out[0]->rank = shape.rank;
    memcpy(k->out[0]->dims, shape.dims, sizeof(shape.dims));
    return AAS_ERR_OK;
}

static aas_err_t ml_sum_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    aas_onnx_tensor_t *o = k->out[0];
    const int64_t n = aas_onnx_numel(o);
    const int dbl = o->dtype == AAS_ONNX_DOUBLE;
    for (int j = 0; j < k->n_in; j++) {
        const aas_onnx_tensor_t *in = k->in[j];
        int64_t st[AAS_ONNX_MAX_RANK];
        ml_bcast_strides(in, o, st);
        for (int64_t i = 0; i < n; i++) {
            int64_t at = ml_bcast_at(o, st, i);
            if (dbl) {
                double v = ((const double *)in->data)[at];
                ((double *)o->data)[i] = j ? ((double *)o->data)[i] + v : v;
            } else {
                float v = ((const float *)in->data)[at];
                ((float *)o->data)[i] = j ? ((float *)o->data)[i] + v : v;
            }
        }
    }
    return AAS_ERR_OK;
}

/* ---- the table ----
 *
 * ai.onnx.ml opsets: these operators were defined in opset 1 (the tree
 * ensembles gained *_as_tensor attributes in 3, read here if present);
 * opset 4 changed only LabelEncoder, so models importing 4 are accepted.
 * Opset 5 deprecates the tree ensembles for TreeEnsemble: not claimed.
 */
const aas_onnx_op_t aas_onnx_ops_ml[] = {
    {AAS_ONNX_DOMAIN_ML, "LinearClassifier", 1, 4, 0, ml_linear_classifier_check,
     ml_linear_classifier_plan, ml_linear_classifier_run, ml_linear_free},
    {AAS_ONNX_DOMAIN_ML, "LinearRegressor", 1, 4, 0, ml_linear_regressor_check,
     ml_linear_regressor_plan, ml_linear_regressor_run, ml_linear_free},
    {AAS_ONNX_DOMAIN_ML, "TreeEnsembleClassifier", 1, 4, 0, ml_tree_classifier_check,
     ml_tree_classifier_plan, ml_tree_classifier_run, ml_trees_free},
    {AAS_ONNX_DOMAIN_ML, "TreeEnsembleRegressor", 1, 4, 0, ml_tree_regressor_check,
     ml_tree_regressor_plan, ml_tree_regressor_run, ml_trees_free},
    {AAS_ONNX_DOMAIN_ML, "SVMClassifier", 1, 4, 0, ml_svm_check, ml_svm_plan, ml_svm_run,
     ml_svm_free},
    {AAS_ONNX_DOMAIN_ML, "Scaler", 1, 4, 0, ml_scaler_check, ml_scaler_plan, ml_scaler_run, NULL},
    {AAS_ONNX_DOMAIN_ML, "Normalizer", 1, 4, 0, ml_normalizer_check, ml_normalizer_plan,
     ml_normalizer_run, NULL},
    {AAS_ONNX_DOMAIN_ML, "ZipMap", 1, 4, 0, ml_zipmap_check, ml_zipmap_plan, ml_zipmap_run, NULL},
    {AAS_ONNX_DOMAIN_ML, "ArrayFeatureExtractor", 1, 4, 0, NULL, ml_afe_plan, ml_afe_run, NULL},
    {"", "ArgMax", 1, 18, 0, NULL, ml_argmax_plan, ml_argmax_run, NULL},
    {"", "Less", 7, 18, 0, NULL, ml_less_plan, ml_less_run, NULL},
    {"", "Sum", 6, 18, 0, NULL, ml_sum_plan, ml_sum_run, NULL},
};
const size_t aas_onnx_ops_ml_n = sizeof(aas_onnx_ops_ml) / sizeof(aas_onnx_ops_ml[0]);
