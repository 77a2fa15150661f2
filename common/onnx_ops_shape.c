/*
 * onnx_ops_shape.c - ai.onnx operators that move or relabel data without
 * arithmetic: Shape, Reshape, Flatten, Squeeze, Unsqueeze, Identity,
 * Dropout (inference), Transpose, Concat, Gather and Constant.
 *
 * Reshape, Flatten, Squeeze, Unsqueeze, Identity and Dropout's output set
 * k->alias: the planner lets the output share the input's bytes, so they
 * cost nothing at run time (run() copies only if the planner gave the
 * output its own buffer).  Shape is shape_only: its output is a constant
 * of the plan, so PyTorch's Shape->Gather->Unsqueeze->Concat->Reshape
 * chain folds away when the plan is made.
 *
 * Shapes and axes that decide an output shape (Reshape's shape, Squeeze
 * and Unsqueeze's axes from opset 13) must be constants when the plan is
 * made; data-dependent shapes are refused with a message saying so.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "onnx_int.h"

/* ---- shared checks ---- */

static const aas_onnx_tensor_t *shape_in(const aas_onnx_kernel_t *k, int i) {
    return i < k->n_in ? k->in[i] : NULL;
}

static aas_onnx_tensor_t *shape_out(const aas_onnx_kernel_t *k, int i) {
    return i < k->n_out ? k->out[i] : NULL;
}

static aas_err_t shape_need(const aas_onnx_kernel_t *k, int n_in, char *errstr,
                            size_t errstr_size) {
    for (int i = 0; i < n_in; i++)
        if (!shape_in(k, i))
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "input %d is required but missing", i);
    if (!shape_out(k, 0))
        return aas_onnx_node_err(k->node, errstr, errstr_size, "has no output");
    return AAS_ERR_OK;
}

static int shape_is_int(aas_onnx_dtype_t t) {
    return t == AAS_ONNX_INT64 || t == AAS_ONNX_INT32;
}

/* The element size of a dtype the engine computes in, or an error naming
 * the dtype. */
static aas_err_t shape_esize(const aas_onnx_kernel_t *k, aas_onnx_dtype_t t, size_t *out,
                             char *errstr, size_t errstr_size) {
    size_t e = aas_onnx_dtype_size(t);
    if (!e)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "dtype %s is not supported by aas",
                                 aas_onnx_dtype_name(t));
    *out = e;
    return AAS_ERR_OK;
}

/* A 1-D (or scalar) int32/int64 constant input that decides a shape. */
static aas_err_t shape_const_ints(const aas_onnx_kernel_t *k, int i, const char *what,
                                  int64_t max_n, int64_t *n_out, char *errstr,
                                  size_t errstr_size) {
    const aas_onnx_tensor_t *t = shape_in(k, i);
    if (!shape_is_int(t->dtype))
        return aas_onnx_node_err(k->node, errstr, errstr_size, "%s must be int64, not %s",
                                 what, aas_onnx_dtype_name(t->dtype));
    if (t->rank > 1)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "%s must be 1-D (has rank %d)", what, t->rank);
    if (!t->data)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "%s must be a constant when the plan is made (an "
                                 "initializer, a Constant, or computed from Shape): aas does "
                                 "not run graphs whose shapes depend on input values",
                                 what);
    int64_t n = aas_onnx_numel(t);
    if (n > max_n)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "%s has %lld entries, more than rank %lld allows", what,
                                 (long long)n, (long long)max_n);
    *n_out = n;
    return AAS_ERR_OK;
}

/* The product of dims, or -1 when it exceeds the largest tensor. */
static int64_t shape_numel_checked(const int64_t *dims, int rank) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return -1;
        if (dims[i] && n > (int64_t)AAS_ONNX_MAX_TENSOR_BYTES / dims[i]) return -1;
        n *= dims[i];
    }
    return n;
}

/* The aliasing ops' run: nothing when the planner aliased, else a copy. */
static aas_err_t shape_copy_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    const aas_onnx_tensor_t *x = k->in[0];
    aas_onnx_tensor_t *y = k->out[0];
    size_t n = (size_t)aas_onnx_numel(x) * aas_onnx_dtype_size(x->dtype);
    if (y->data != x->data && n) memmove(y->data, x->data, n);
    return AAS_ERR_OK;
}

/* ---- Shape ---- */

/* From opset 15, start and end slice the shape (negative from the end,
 * clamped to [0, rank]). */
static void shape_range(const aas_onnx_kernel_t *k, int rank, int *start, int *end) {
    int64_t s = 0, e = rank;
    if (k->node->opset >= 15) {
        s = aas_onnx_attr_int(k->node, "start", 0);
        e = aas_onnx_attr_int(k->node, "end", rank);
        if (s < 0) s += rank;
        if (e < 0) e += rank;
        s = s < 0 ? 0 : s > rank ? rank : s;
        e = e < 0 ? 0 : e > rank ? rank : e;
        if (e < s) e = s;
    }
    *start = (int)s;
    *end = (int)e;
}

static aas_err_t shape_shape_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    aas_err_t err = shape_need(k, 1 /* n_in */, errstr, errstr_size);
    if (err) return err;
    int s, e;
    shape_range(k, k->in[0]->rank, &s, &e);
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = AAS_ONNX_INT64;
    y->rank = 1;
    y->dims[0] = e - s;
    return AAS_ERR_OK;
}

static aas_err_t shape_shape_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    int s, e;
    shape_range(k, k->in[0]->rank, &s, &e);
    int64_t *y = k->out[0]->data;
    for (int i = s; i < e; i++) y[i - s] = k->in[0]->dims[i];
    return AAS_ERR_OK;
}

/* ---- Reshape ---- */

/*
 * The shape input: 0 copies the input's dim at that index (opsets < 14, or
 * allowzero=0), or means an empty dim (allowzero=1 from 14); one -1 is
 * inferred from the element count.
 */
static aas_err_t shape_reshape_plan(aas_onnx_kernel_t *k, char *errstr,
                                    size_t errstr_size) {
    aas_err_t err = shape_need(k, 2 /* n_in */, errstr, errstr_size);
    if (err) return err;
    int64_t n;
    if ((err = shape_const_ints(k, 1 /* input */, "the shape input", AAS_ONNX_MAX_RANK, &n,
                                errstr, errstr_size)))
        return err;
    const aas_onnx_tensor_t *x = k->in[0], *shape = k->in[1];
    int allowzero = k->node->opset >= 14 && aas_onnx_attr_int(k->node, "allowzero", 0);
    int64_t dims[AAS_ONNX_MAX_RANK];
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < (int)n; i++) {
        int64_t d = aas_onnx_int_at(shape, i);
        if (d == 0 && !allowzero) {
            if (i >= x->rank)
                return aas_onnx_node_err(k->node, errstr, errstr_size,
                                         "shape[%d] is 0 (copy the input's dim) but the "
                                         "input has rank %d", i, x->rank);
            d = x->dims[i];
        }
        if (d == -1) {
            if (infer >= 0)
                return aas_onnx_node_err(k->node, errstr, errstr_size,
                                         "the shape has more than one -1");
            infer = i;
            dims[i] = -1;
            continue;
        }
        if (d < 0)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "shape[%d] is %lld", i, (long long)d);
        dims[i] = d;
        if (d && known > (int64_t)AAS_ONNX_MAX_TENSOR_BYTES / d)
            return aas_onnx_node_err(k->node, errstr, errstr_size, "the shape is too large");
        known *= d;
    }
    int64_t total = aas_onnx_numel(x);
    if (infer >= 0) {
        if (known == 0 || total % known)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "cannot infer the -1 in the shape: %lld elements are "
                                     "not a multiple of %lld",
                                     (long long)total, (long long)known);
        dims[infer] = total / known;
        known = total;
    }
    if (known != total) {
        char buf[128];
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "cannot reshape [%s] (%lld elements) to a shape of %lld "
                                 "elements", aas_onnx_dims_str(x, buf, sizeof(buf)),
                                 (long long)total, (long long)known);
    }
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = x->dtype;
    y->rank = (int)n;
    memcpy(y->dims, dims, (size_t)n * sizeof(int64_t));
    k->alias = 1;
    return AAS_ERR_OK;
}

/* ---- Flatten ---- */

static aas_err_t shape_flatten_plan(aas_onnx_kernel_t *k, char *errstr,
                                    size_t errstr_size) {
    aas_err_t err = shape_need(k, 1 /* n_in */, errstr, errstr_size);
    if (err) return err;
    const aas_onnx_tensor_t *x = k->in[0];
    int64_t axis = aas_onnx_attr_int(k->node, "axis", 1);
    /* axis in [0, rank]; negative counts from the end from opset 11. */
    if (axis < 0 && k->node->opset >= 11) axis += x->rank;
    if (axis < 0 || axis > x->rank)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "axis %lld is out of range for rank %d%s",
                                 (long long)aas_onnx_attr_int(k->node, "axis", 1), x->rank,
                                 k->node->opset < 11 ? " (negative axes from opset 11)" : "");
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < x->rank; i++) *(i < axis ? &outer : &inner) *= x->dims[i];
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = x->dtype;
    y->rank = 2;
    y->dims[0] = outer;
    y->dims[1] = inner;
    k->alias = 1;
    return AAS_ERR_OK;
}

/* ---- Squeeze / Unsqueeze ---- */

/* The axes: an attribute before opset 13, an input (constant at plan
 * time) from 13.  *n is -1 when none are given. */
static aas_err_t shape_axes(const aas_onnx_kernel_t *k, int64_t *axes, int *n,
                            char *errstr, size_t errstr_size) {
    if (k->node->opset < 13) {
        const int64_t *v;
        size_t m = aas_onnx_attr_ints(k->node, "axes", &v);
        if (!aas_onnx_attr(k->node, "axes")) {
            *n = -1;
            return AAS_ERR_OK;
        }
        if (m > AAS_ONNX_MAX_RANK)
            return aas_onnx_node_err(k->node, errstr, errstr_size, "too many axes (%zu)", m);
        if (m) memcpy(axes, v, m * sizeof(int64_t));
        *n = (int)m;
        return AAS_ERR_OK;
    }
    if (!shape_in(k, 1)) {
        *n = -1;
        return AAS_ERR_OK;
    }
    int64_t m;
    aas_err_t err = shape_const_ints(k, 1 /* input */, "the axes input", AAS_ONNX_MAX_RANK,
                                     &m, errstr, errstr_size);
    if (err) return err;
    for (int64_t i = 0; i < m; i++) axes[i] = aas_onnx_int_at(k->in[1], i);
    *n = (int)m;
    return AAS_ERR_OK;
}

static aas_err_t shape_squeeze_plan(aas_onnx_kernel_t *k, char *errstr,
                                    size_t errstr_size) {
    aas_err_t err = shape_need(k, 1 /* n_in */, errstr, errstr_size);
    if (err) return err;
    const aas_onnx_tensor_t *x = k->in[0];
    int64_t axes[AAS_ONNX_MAX_RANK];
    int n;
    if ((err = shape_axes(k, axes, &n, errstr, errstr_size))) return err;
    int drop[AAS_ONNX_MAX_RANK] = {0};
    if (n < 0) {
        for (int i = 0; i < x->rank; i++) drop[i] = x->dims[i] == 1;
    } else {
        for (int i = 0; i < n; i++) {
            int a = aas_onnx_axis(axes[i], x->rank);
            if (a < 0)
                return aas_onnx_node_err(k->node, errstr, errstr_size,
                                         "axis %lld is out of range for rank %d",
                                         (long long)axes[i], x->rank);
            if (x->dims[a] != 1)
                return aas_onnx_node_err(k->node, errstr, errstr_size,
                                         "cannot squeeze axis %d of size %lld", a,
                                         (long long)x->dims[a]);
            drop[a] = 1;
        }
    }
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = x->dtype;
    y->rank = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i]) y->dims[y->rank++] = x->dims[i];
    k->alias = 1;
    return AAS_ERR_OK;
}

static aas_err_t shape_unsqueeze_plan(aas_onnx_kernel_t *k, char *errstr,
                                      size_t errstr_size) {
    aas_err_t err = shape_need(k, 1 /* n_in */, errstr, errstr_size);
    if (err) return err;
    const aas_onnx_tensor_t *x = k->in[0];
    int64_t axes[AAS_ONNX_MAX_RANK];
    int n;
    if ((err = shape_axes(k, axes, &n, errstr, errstr_size))) return err;
    if (n < 0)
        return aas_onnx_node_err(k->node, errstr, errstr_size, "needs axes");
    int rank = x->rank + n;
    if (rank > AAS_ONNX_MAX_RANK)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "output rank %d is over the %d aas supports", rank,
                                 AAS_ONNX_MAX_RANK);
    int ins[AAS_ONNX_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        /* Negative axes (from opset 11) count in the output's rank. */
        int a = aas_onnx_axis(axes[i], rank);
        if (a < 0 || (axes[i] < 0 && k->node->opset < 11))
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "axis %lld is out of range for output rank %d",
                                     (long long)axes[i], rank);
        if (ins[a])
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "axis %d is given twice", a);
        ins[a] = 1;
    }
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = x->dtype;
    y->rank = rank;
    for (int i = 0, j = 0; i < rank; i++) y->dims[i] = ins[i] ? 1 : x->dims[j++];
    k->alias = 1;
    return AAS_ERR_OK;
}

/* ---- Identity ---- */

static aas_err_t shape_identity_plan(aas_onnx_kernel_t *k, char *errstr,
                                     size_t errstr_size) {
    aas_err_t err = shape_need(k, 1 /* n_in */, errstr, errstr_size);
    if (err) return err;
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = k->in[0]->dtype;
    y->rank = k->in[0]->rank;
    memcpy(y->dims, k->in[0]->dims, sizeof(y->dims));
    k->alias = 1;
    return AAS_ERR_OK;
}

/* ---- Dropout ---- */

/*
 * At inference Dropout is the identity.  Opsets 7-11 take a ratio
 * attribute; from 12, ratio and training_mode are optional inputs, and
 * training_mode true (random dropping) is refused.  The optional mask is
 * all true: bool from opset 10, the input's type before.
 */
/* Whether the model asks for the mask (output 1 named). */
static int shape_dropout_mask(const aas_onnx_kernel_t *k) {
    return k->n_out > 1 && k->node->n_out > 1 && k->node->out[1] >= 0;
}

static aas_err_t shape_dropout_training(const aas_onnx_kernel_t *k, char *errstr,
                                        size_t errstr_size) {
    const aas_onnx_tensor_t *t = k->node->opset >= 12 ? shape_in(k, 2) : NULL;
    if (!t || !t->data || !aas_onnx_numel(t)) return AAS_ERR_OK;
    if (*(const uint8_t *)t->data)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "training_mode is true: aas runs Dropout at inference "
                                 "only (export the model in eval mode)");
    return AAS_ERR_OK;
}

static aas_err_t shape_dropout_plan(aas_onnx_kernel_t *k, char *errstr,
                                    size_t errstr_size) {
    aas_err_t err = shape_need(k, 1 /* n_in */, errstr, errstr_size);
    if (err) return err;
    const aas_onnx_tensor_t *x = k->in[0];
    if (k->node->opset >= 12) {
        const aas_onnx_tensor_t *ratio = shape_in(k, 1), *tm = shape_in(k, 2);
        if (tm && (tm->dtype != AAS_ONNX_BOOL || aas_onnx_numel(tm) != 1))
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "training_mode must be a bool scalar");
        if (ratio && aas_onnx_numel(ratio) != 1)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "ratio must be a scalar");
    } else if (k->n_in > 1 && shape_in(k, 1)) {
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "takes one input before opset 12");
    }
    if ((err = shape_dropout_training(k, errstr, errstr_size))) return err;
    if ((err = shape_identity_plan(k, errstr, errstr_size))) return err;
    aas_onnx_tensor_t *mask = shape_out(k, 1);
    if (mask) {
        mask->dtype = k->node->opset >= 10 ? AAS_ONNX_BOOL : x->dtype;
        if (!aas_onnx_dtype_size(mask->dtype))
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "dtype %s is not supported by aas",
                                     aas_onnx_dtype_name(x->dtype));
        /* The planner gives an omitted output a scratch tensor: keep it
         * to one element. */
        mask->rank = shape_dropout_mask(k) ? x->rank : 0;
        memcpy(mask->dims, x->dims, sizeof(mask->dims));
    }
    return AAS_ERR_OK;
}

static aas_err_t shape_dropout_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    aas_err_t err = shape_dropout_training(k, errstr, errstr_size);
    if (err) return err;
    shape_copy_run(k, errstr, errstr_size);
    aas_onnx_tensor_t *mask = shape_out(k, 1);
    if (!mask || !shape_dropout_mask(k)) return AAS_ERR_OK;
    int64_t n = aas_onnx_numel(mask);
    switch (mask->dtype) {
    case AAS_ONNX_FLOAT:
        for (int64_t i = 0; i < n; i++) ((float *)mask->data)[i] = 1.0f;
        break;
    case AAS_ONNX_DOUBLE:
        for (int64_t i = 0; i < n; i++) ((double *)mask->data)[i] = 1.0;
        break;
    case AAS_ONNX_INT32:
        for (int64_t i = 0; i < n; i++) ((int32_t *)mask->data)[i] = 1;
        break;
    case AAS_ONNX_INT64:
        for (int64_t i = 0; i < n; i++) ((int64_t *)mask->data)[i] = 1;
        break;
    default:
        if (n) memset(mask->data, 1, (size_t)n);
        break;
    }
    return AAS_ERR_OK;
}

/* ---- Transpose ---- */

static aas_err_t shape_perm(const aas_onnx_kernel_t *k, int rank, int *perm, char *errstr,
                            size_t errstr_size) {
    const int64_t *p;
    size_t n = aas_onnx_attr_ints(k->node, "perm", &p);
    if (!aas_onnx_attr(k->node, "perm")) {
        for (int i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        return AAS_ERR_OK;
    }
    if ((int)n != rank)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "perm has %zu entries for an input of rank %d", n, rank);
    int seen[AAS_ONNX_MAX_RANK] = {0};
    for (int i = 0; i < rank; i++) {
        if (p[i] < 0 || p[i] >= rank || seen[p[i]])
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "perm is not a permutation of 0..%d", rank - 1);
        seen[p[i]] = 1;
        perm[i] = (int)p[i];
    }
    return AAS_ERR_OK;
}

static aas_err_t shape_transpose_plan(aas_onnx_kernel_t *k, char *errstr,
                                      size_t errstr_size) {
    aas_err_t err = shape_need(k, 1 /* n_in */, errstr, errstr_size);
    if (err) return err;
    const aas_onnx_tensor_t *x = k->in[0];
    size_t es;
    if ((err = shape_esize(k, x->dtype, &es, errstr, errstr_size))) return err;
    int perm[AAS_ONNX_MAX_RANK];
    if ((err = shape_perm(k, x->rank, perm, errstr, errstr_size))) return err;
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = x->dtype;
    y->rank = x->rank;
    for (int i = 0; i < x->rank; i++) y->dims[i] = x->dims[perm[i]];
    return AAS_ERR_OK;
}

static aas_err_t shape_transpose_run(aas_onnx_kernel_t *k, char *errstr,
                                     size_t errstr_size) {
    const aas_onnx_tensor_t *x = k->in[0];
    aas_onnx_tensor_t *y = k->out[0];
    int perm[AAS_ONNX_MAX_RANK];
    aas_err_t err = shape_perm(k, x->rank, perm, errstr, errstr_size);
    if (err) return err;
    int64_t n = aas_onnx_numel(y);
    if (!n) return AAS_ERR_OK;
    size_t es = aas_onnx_dtype_size(x->dtype);
    /* Input strides seen in output order; an odometer over the output. */
    int64_t xs[AAS_ONNX_MAX_RANK], s[AAS_ONNX_MAX_RANK], idx[AAS_ONNX_MAX_RANK] = {0};
    int64_t st = 1;
    for (int i = x->rank - 1; i >= 0; i--) {
        xs[i] = st;
        st *= x->dims[i];
    }
    for (int i = 0; i < y->rank; i++) s[i] = xs[perm[i]];
    const char *src = x->data;
    char *dst = y->data;
    int last = y->rank - 1;
    if (last < 0) {
        memcpy(dst, src, es);
        return AAS_ERR_OK;
    }
    int64_t len = y->dims[last], step = s[last], off = 0;
    for (int64_t o = 0; o < n; o += len) {
        switch (es) {
        case 4:
            for (int64_t j = 0; j < len; j++)
                ((uint32_t *)dst)[o + j] = ((const uint32_t *)src)[off + j * step];
            break;
        case 8:
            for (int64_t j = 0; j < len; j++)
                ((uint64_t *)dst)[o + j] = ((const uint64_t *)src)[off + j * step];
            break;
        default:
            for (int64_t j = 0; j < len; j++)
                memcpy(dst + (size_t)(o + j) * es, src + (size_t)(off + j * step) * es, es);
            break;
        }
        for (int d = last - 1; d >= 0; d--) {
            off += s[d];
            if (++idx[d] < y->dims[d]) break;
            off -= s[d] * y->dims[d];
            idx[d] = 0;
        }
    }
    return AAS_ERR_OK;
}

/* ---- Concat ---- */

static aas_err_t shape_concat_plan(aas_onnx_kernel_t *k, char *errstr,
                                   size_t errstr_size) {
    aas_err_t err = shape_need(k, 1 /* n_in */, errstr, errstr_size);
    if (err) return err;
    const aas_onnx_tensor_t *x0 = k->in[0];
    size_t es;
    if ((err = shape_esize(k, x0->dtype, &es, errstr, errstr_size))) return err;
    if (x0->rank == 0)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "cannot concatenate scalars");
    int64_t a = aas_onnx_attr_int(k->node, "axis", 0);
    int axis = aas_onnx_axis(a, x0->rank);
    if (axis < 0 || (a < 0 && k->node->opset < 11))
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "axis %lld is out of range for rank %d", (long long)a,
                                 x0->rank);
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = x0->dtype;
    y->rank = x0->rank;
    memcpy(y->dims, x0->dims, sizeof(y->dims));
    y->dims[axis] = 0;
    for (int i = 0; i < k->n_in; i++) {
        const aas_onnx_tensor_t *x = k->in[i];
        char b0[128], bi[128];
        if (!x)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "input %d is missing", i);
        if (x->dtype != x0->dtype)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "input %d has dtype %s, input 0 %s", i,
                                     aas_onnx_dtype_name(x->dtype),
                                     aas_onnx_dtype_name(x0->dtype));
        int ok = x->rank == x0->rank;
        for (int d = 0; ok && d < x->rank; d++)
            ok = d == axis || x->dims[d] == x0->dims[d];
        if (!ok)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "input %d has shape [%s], input 0 [%s]: they must agree "
                                     "except along axis %d", i,
                                     aas_onnx_dims_str(x, bi, sizeof(bi)),
                                     aas_onnx_dims_str(x0, b0, sizeof(b0)), axis);
        y->dims[axis] += x->dims[axis];
    }
    if (shape_numel_checked(y->dims, y->rank) < 0)
        return aas_onnx_node_err(k->node, errstr, errstr_size, "the output is too large");
    return AAS_ERR_OK;
}

static aas_err_t shape_concat_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    aas_onnx_tensor_t *y = k->out[0];
    int axis = aas_onnx_axis(aas_onnx_attr_int(k->node, "axis", 0), y->rank);
    size_t es = aas_onnx_dtype_size(y->dtype);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= y->dims[d];
    for (int d = axis + 1; d < y->rank; d++) inner *= y->dims[d];
    size_t row = (size_t)(y->dims[axis] * inner) * es;
    size_t at = 0;
    for (int i = 0; i < k->n_in; i++) {
        const aas_onnx_tensor_t *x = k->in[i];
        size_t chunk = (size_t)(x->dims[axis] * inner) * es;
        if (!chunk) continue;
        for (int64_t o = 0; o < outer; o++)
            memcpy((char *)y->data + (size_t)o * row + at,
                   (const char *)x->data + (size_t)o * chunk, chunk);
        at += chunk;
    }
    return AAS_ERR_OK;
}

/* ---- Gather ---- */

static aas_err_t shape_gather_plan(aas_onnx_kernel_t *k, char *errstr,
                                   size_t errstr_size) {
    aas_err_t err = shape_need(k, 2 /* n_in */, errstr, errstr_size);
    if (err) return err;
    const aas_onnx_tensor_t *x = k->in[0], *idx = k->in[1];
    size_t es;
    if ((err = shape_esize(k, x->dtype, &es, errstr, errstr_size))) return err;
    if (!shape_is_int(idx->dtype))
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "indices must be int32 or int64, not %s",
                                 aas_onnx_dtype_name(idx->dtype));
    int64_t a = aas_onnx_attr_int(k->node, "axis", 0);
    int axis = aas_onnx_axis(a, x->rank);
    if (axis < 0)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "axis %lld is out of range for rank %d", (long long)a,
                                 x->rank);
    int rank = x->rank - 1 + idx->rank;
    if (rank > AAS_ONNX_MAX_RANK)
        return aas_onnx_node_err(k->node, errstr, errstr_size,
                                 "output rank %d is over the %d aas supports", rank,
                                 AAS_ONNX_MAX_RANK);
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = x->dtype;
    y->rank = 0;
    for (int d = 0; d < axis; d++) y->dims[y->rank++] = x->dims[d];
    for (int d = 0; d < idx->rank; d++) y->dims[y->rank++] = idx->dims[d];
    for (int d = axis + 1; d < x->rank; d++) y->dims[y->rank++] = x->dims[d];
    if (shape_numel_checked(y->dims, y->rank) < 0)
        return aas_onnx_node_err(k->node, errstr, errstr_size, "the output is too large");
    /* Constant indices are checked now, the others in run. */
    if (idx->data) {
        int64_t n = aas_onnx_numel(idx), lim = x->dims[axis];
        for (int64_t i = 0; i < n; i++) {
            int64_t v = aas_onnx_int_at(idx, i);
            if (v < -lim || v >= lim)
                return aas_onnx_node_err(k->node, errstr, errstr_size,
                                         "index %lld is out of range for axis %d of size "
                                         "%lld", (long long)v, axis, (long long)lim);
        }
    }
    return AAS_ERR_OK;
}

static aas_err_t shape_gather_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_tensor_t *x = k->in[0], *idx = k->in[1];
    aas_onnx_tensor_t *y = k->out[0];
    int axis = aas_onnx_axis(aas_onnx_attr_int(k->node, "axis", 0), x->rank);
    size_t es = aas_onnx_dtype_size(x->dtype);
    int64_t outer = 1, inner = 1, lim = x->dims[axis], n = aas_onnx_numel(idx);
    for (int d = 0; d < axis; d++) outer *= x->dims[d];
    for (int d = axis + 1; d < x->rank; d++) inner *= x->dims[d];
    size_t chunk = (size_t)inner * es;
    if (!chunk || !outer) return AAS_ERR_OK;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = aas_onnx_int_at(idx, i);
        if (v < -lim || v >= lim)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "index %lld is out of range for axis %d of size %lld",
                                     (long long)v, axis, (long long)lim);
        if (v < 0) v += lim;
        for (int64_t o = 0; o < outer; o++)
            memcpy((char *)y->data + (size_t)(o * n + i) * chunk,
                   (const char *)x->data + (size_t)(o * lim + v) * chunk, chunk);
    }
    return AAS_ERR_OK;
}

/* ---- Constant ---- */

/*
 * The value: a tensor attribute 'value' (every opset), or from opset 12
 * one of value_float, value_floats, value_int, value_ints.  sparse_value
 * and the string forms are refused.
 */

static aas_err_t shape_const_check(const aas_onnx_node_t *n, char *errstr,
                                   size_t errstr_size) {
    aas_err_t err = aas_onnx_arity(n, 0, 0, 1, errstr, errstr_size);
    if (err) return err;
    static const char *const refused[] = {"sparse_value", "value_string", "value_strings"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (aas_onnx_attr(n, refused[i]))
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "attribute %s is not supported by aas", refused[i]);
    static const char *const forms[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints"};
    static const int types[] = {AAS_ONNX_ATTR_TENSOR, AAS_ONNX_ATTR_FLOAT,
                                AAS_ONNX_ATTR_FLOATS, AAS_ONNX_ATTR_INT,
                                AAS_ONNX_ATTR_INTS};
    int found = 0;
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        const aas_onnx_attr_t *a = aas_onnx_attr(n, forms[i]);
        if (!a) continue;
        if (i > 0 && n->opset < 12)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "attribute %s needs opset 12 (the model imports %lld)",
                                     forms[i], (long long)n->opset);
        if (a->type != types[i])
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "attribute %s has the wrong type (%d)", forms[i],
                                     a->type);
        if (i == 0) {
            const aas_onnx_tensor_t *t = a->t;
            if (!t)
                return aas_onnx_node_err(n, errstr, errstr_size, "value has no tensor");
            if (!aas_onnx_dtype_size(t->dtype))
                return aas_onnx_node_err(n, errstr, errstr_size,
                                         "value has dtype %s, which aas does not support",
                                         aas_onnx_dtype_name(t->dtype));
            int64_t numel = shape_numel_checked(t->dims, t->rank);
            if (t->rank < 0 || t->rank > AAS_ONNX_MAX_RANK || numel < 0 ||
                (size_t)numel * aas_onnx_dtype_size(t->dtype) != t->nbytes ||
                (t->nbytes && !t->data))
                return aas_onnx_node_err(n, errstr, errstr_size,
                                         "value's size does not agree with its shape");
        }
        found++;
    }
    if (found != 1)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "needs exactly one of value, value_float(s), value_int(s) "
                                 "(has %d)", found);
    return AAS_ERR_OK;
}

static aas_err_t shape_const_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    aas_err_t err = shape_const_check(k->node, errstr, errstr_size);
    if (err) return err;
    aas_onnx_tensor_t *y = shape_out(k, 0);
    if (!y) return aas_onnx_node_err(k->node, errstr, errstr_size, "has no output");
    const aas_onnx_attr_t *a;
    if ((a = aas_onnx_attr(k->node, "value"))) {
        y->dtype = a->t->dtype;
        y->rank = a->t->rank;
        memcpy(y->dims, a->t->dims, sizeof(y->dims));
    } else if ((a = aas_onnx_attr(k->node, "value_float"))) {
        y->dtype = AAS_ONNX_FLOAT;
        y->rank = 0;
    } else if ((a = aas_onnx_attr(k->node, "value_int"))) {
        y->dtype = AAS_ONNX_INT64;
        y->rank = 0;
    } else if ((a = aas_onnx_attr(k->node, "value_floats"))) {
        y->dtype = AAS_ONNX_FLOAT;
        y->rank = 1;
        y->dims[0] = (int64_t)a->n;
    } else {
        a = aas_onnx_attr(k->node, "value_ints");
        y->dtype = AAS_ONNX_INT64;
        y->rank = 1;
        y->dims[0] = (int64_t)a->n;
    }
    return AAS_ERR_OK;
}

static aas_err_t shape_const_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    aas_onnx_tensor_t *y = k->out[0];
    const aas_onnx_attr_t *a;
    if ((a = aas_onnx_attr(k->node, "value"))) {
        if (a->t->nbytes) memcpy(y->data, a->t->data, a->t->nbytes);
    } else if ((a = aas_onnx_attr(k->node, "value_float"))) {
        *(float *)y->data = a->f;
    } else if ((a = aas_onnx_attr(k->node, "value_int"))) {
        *(int64_t *)y->data = a->i;
    } else if ((a = aas_onnx_attr(k->node, "value_floats"))) {
        if (a->n) memcpy(y->data, a->floats, a->n * sizeof(float));
    } else if ((a = aas_onnx_attr(k->node, "value_ints"))) {
        if (a->n) memcpy(y->data, a->ints, a->n * sizeof(int64_t));
    }
    return AAS_ERR_OK;
}

/* ---- load-time checks ---- */



/* An attribute, when present, must have the given type. */
static aas_err_t shape_attr_type(const aas_onnx_node_t *n, const char *name, int type,
                                 int required, char *errstr, size_t errstr_size) {
    static const char *const names[] = {"?", "float", "int", "string", "tensor", "graph",
                                        "floats", "ints", "strings"};
    const aas_onnx_attr_t *a = aas_onnx_attr(n, name);
    if (!a && required)
        return aas_onnx_node_err(n, errstr, errstr_size, "needs the attribute %s (%s)", name,
                                 names[type]);
    if (a && a->type != type)
        return aas_onnx_node_err(n, errstr, errstr_size, "attribute %s must be %s", name,
                                 names[type]);
    return AAS_ERR_OK;
}

static aas_err_t shape_concat_check(const aas_onnx_node_t *n, char *errstr,
                                    size_t errstr_size) {
    aas_err_t err = aas_onnx_arity(n, 1, n->n_in > 1 ? n->n_in : 1, 1, errstr, errstr_size);
    for (int i = 0; !err && i < n->n_in; i++)
        if (n->in[i] < 0)
            err = aas_onnx_node_err(n, errstr, errstr_size, "input %d is not given", i);
    return err ? err : shape_attr_type(n, "axis", AAS_ONNX_ATTR_INT, 1, errstr, errstr_size);
}

/* Flatten (one input) and Gather (two): an optional int axis. */
static aas_err_t shape_axis_check(const aas_onnx_node_t *n, char *errstr,
                                  size_t errstr_size) {
    int n_in = !strcmp(n->type, "Gather") ? 2 : 1;
    aas_err_t err = aas_onnx_arity(n, n_in, n_in, 1, errstr, errstr_size);
    return err ? err : shape_attr_type(n, "axis", AAS_ONNX_ATTR_INT, 0, errstr, errstr_size);
}

static aas_err_t shape_shape_check(const aas_onnx_node_t *n, char *errstr,
                                   size_t errstr_size) {
    aas_err_t err = aas_onnx_arity(n, 1, 1, 1, errstr, errstr_size);
    if (!err) err = shape_attr_type(n, "start", AAS_ONNX_ATTR_INT, 0, errstr, errstr_size);
    return err ? err : shape_attr_type(n, "end", AAS_ONNX_ATTR_INT, 0, errstr, errstr_size);
}

static aas_err_t shape_reshape_check(const aas_onnx_node_t *n, char *errstr,
                                     size_t errstr_size) {
    return aas_onnx_arity(n, 2, 2, 1, errstr, errstr_size);
}

static aas_err_t shape_identity_check(const aas_onnx_node_t *n, char *errstr,
                                      size_t errstr_size) {
    return aas_onnx_arity(n, 1, 1, 1, errstr, errstr_size);
}

/* Dropout: ratio and training_mode are optional inputs from opset 12;
 * the mask an optional second output. */
static aas_err_t shape_dropout_check(const aas_onnx_node_t *n, char *errstr,
                                     size_t errstr_size) {
    return aas_onnx_arity(n, 1, n->opset >= 12 ? 3 : 1, 2, errstr, errstr_size);
}

static aas_err_t shape_transpose_check(const aas_onnx_node_t *n, char *errstr,
                                       size_t errstr_size) {
    aas_err_t err = aas_onnx_arity(n, 1, 1, 1, errstr, errstr_size);
    if (!err) err = shape_attr_type(n, "perm", AAS_ONNX_ATTR_INTS, 0, errstr, errstr_size);
    if (err) return err;
    const int64_t *p;
    size_t m = aas_onnx_attr_ints(n, "perm", &p);
    if (m > AAS_ONNX_MAX_RANK)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "perm has %zu entries, aas takes rank %d at most", m,
                                 AAS_ONNX_MAX_RANK);
    int seen[AAS_ONNX_MAX_RANK] = {0};
    for (size_t i = 0; i < m; i++) {
        if (p[i] < 0 || p[i] >= (int64_t)m || seen[p[i]])
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "perm is not a permutation of 0..%zu", m - 1);
        seen[p[i]] = 1;
    }
    return AAS_ERR_OK;
}

/* Squeeze and Unsqueeze: axes is an attribute before opset 13 (required
 * by Unsqueeze), an input from 13. */
static aas_err_t shape_squeeze_check(const aas_onnx_node_t *n, char *errstr,
                                     size_t errstr_size) {
    int unsq = !strcmp(n->type, "Unsqueeze");
    aas_err_t err = aas_onnx_arity(n, n->opset >= 13 && unsq ? 2 : 1, n->opset >= 13 ? 2 : 1, 1,
                                errstr, errstr_size);
    if (err) return err;
    if (n->opset >= 13) {
        if (aas_onnx_attr(n, "axes"))
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "axes is an input from opset 13, not an attribute");
        return AAS_ERR_OK;
    }
    return shape_attr_type(n, "axes", AAS_ONNX_ATTR_INTS, unsq, errstr, errstr_size);
}

/* ---- the table ---- */

/* Every entry covers opsets 7-18; where the semantics changed inside that
 * range (Shape's start/end at 15, Reshape's allowzero at 14, negative axes
 * at 11, Squeeze/Unsqueeze axes as an input at 13, Dropout's inputs at 12
 * and bool mask at 10, Constant's value_* at 12) the kernel reads
 * node->opset. */
#define SHAPE_OP(type, shape_only, check, plan, run)                                     \
    {"", type, 7, 18, shape_only, check, plan, run, NULL}

const aas_onnx_op_t aas_onnx_ops_shape[] = {
    SHAPE_OP("Shape", 1, shape_shape_check, shape_shape_plan, shape_shape_run),
    SHAPE_OP("Reshape", 0, shape_reshape_check, shape_reshape_plan, shape_copy_run),
    SHAPE_OP("Flatten", 0, shape_axis_check, shape_flatten_plan, shape_copy_run),
    SHAPE_OP("Squeeze", 0, shape_squeeze_check, shape_squeeze_plan, shape_copy_run),
    SHAPE_OP("Unsqueeze", 0, shape_squeeze_check, shape_unsqueeze_plan, shape_copy_run),
    SHAPE_OP("Identity", 0, shape_identity_check, shape_identity_plan, shape_copy_run),
    SHAPE_OP("Dropout", 0, shape_dropout_check, shape_dropout_plan, shape_dropout_run),
    SHAPE_OP("Transpose", 0, shape_transpose_check, shape_transpose_plan, shape_transpose_run),
    SHAPE_OP("Concat", 0, shape_concat_check, shape_concat_plan, shape_concat_run),
    SHAPE_OP("Gather", 0, shape_axis_check, shape_gather_plan, shape_gather_run),
    SHAPE_OP("Constant", 0, shape_const_check, shape_const_plan, shape_const_run),
};
const size_t aas_onnx_ops_shape_n = sizeof(aas_onnx_ops_shape) / sizeof(aas_onnx_ops_shape[0]);
