/* onnx_ops.c - the operator table, attribute getters and helpers the
 * kernels share (onnx_int.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx_int.h"

/* ---- dtypes and tensors (onnx.h) ---- */

const char *aas_onnx_dtype_name(aas_onnx_dtype_t t) {
    switch (t) {
    case AAS_ONNX_FLOAT: return "float32";
    case AAS_ONNX_UINT8: return "uint8";
    case AAS_ONNX_INT8: return "int8";
    case AAS_ONNX_UINT16: return "uint16";
    case AAS_ONNX_INT16: return "int16";
    case AAS_ONNX_INT32: return "int32";
    case AAS_ONNX_INT64: return "int64";
    case AAS_ONNX_STRING: return "string";
    case AAS_ONNX_BOOL: return "bool";
    case AAS_ONNX_FLOAT16: return "float16";
    case AAS_ONNX_DOUBLE: return "float64";
    case AAS_ONNX_UINT32: return "uint32";
    case AAS_ONNX_UINT64: return "uint64";
    case AAS_ONNX_COMPLEX64: return "complex64";
    case AAS_ONNX_COMPLEX128: return "complex128";
    case AAS_ONNX_BFLOAT16: return "bfloat16";
    default: return "?";
    }
}

size_t aas_onnx_dtype_size(aas_onnx_dtype_t t) {
    switch (t) {
    case AAS_ONNX_FLOAT: return 4;
    case AAS_ONNX_DOUBLE: return 8;
    case AAS_ONNX_INT64: return 8;
    case AAS_ONNX_INT32: return 4;
    case AAS_ONNX_INT8:
    case AAS_ONNX_UINT8:
    case AAS_ONNX_BOOL: return 1;
    default: return 0;
    }
}

int64_t aas_onnx_numel(const aas_onnx_tensor_t *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

/* ---- the table ---- */

typedef struct {
    const aas_onnx_op_t *ops;
    const size_t *n;
} aas_onnx_ops_set_t;

const aas_onnx_op_t *aas_onnx_op_find(const char *domain, const char *type, int64_t opset,
                                      int *known) {
    const aas_onnx_ops_set_t sets[] = {
        {aas_onnx_ops_dnn, &aas_onnx_ops_dnn_n},
        {aas_onnx_ops_elem, &aas_onnx_ops_elem_n},
        {aas_onnx_ops_shape, &aas_onnx_ops_shape_n},
        {aas_onnx_ops_ml, &aas_onnx_ops_ml_n},
    };
    if (!strcmp(domain, "ai.onnx")) domain = "";
    *known = 0;
    for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++)
        for (size_t i = 0; i < *sets[s].n; i++) {
            const aas_onnx_op_t *op = &sets[s].ops[i];
            if (strcmp(op->type, type) || strcmp(op->domain, domain)) continue;
            *known = 1;
            if (opset >= op->min_opset && opset <= op->max_opset) return op;
        }
    return NULL;
}

/* ---- attributes ---- */

const aas_onnx_attr_t *aas_onnx_attr(const aas_onnx_node_t *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int64_t aas_onnx_attr_int(const aas_onnx_node_t *n, const char *name, int64_t dflt) {
    const aas_onnx_attr_t *a = aas_onnx_attr(n, name);
    return a && a->type == AAS_ONNX_ATTR_INT ? a->i : dflt;
}

float aas_onnx_attr_float(const aas_onnx_node_t *n, const char *name, float dflt) {
    const aas_onnx_attr_t *a = aas_onnx_attr(n, name);
    return a && a->type == AAS_ONNX_ATTR_FLOAT ? a->f : dflt;
}

const char *aas_onnx_attr_str(const aas_onnx_node_t *n, const char *name, const char *dflt) {
    const aas_onnx_attr_t *a = aas_onnx_attr(n, name);
    return a && a->type == AAS_ONNX_ATTR_STRING ? a->s : dflt;
}

size_t aas_onnx_attr_ints(const aas_onnx_node_t *n, const char *name, const int64_t **v) {
    const aas_onnx_attr_t *a = aas_onnx_attr(n, name);
    *v = a && a->type == AAS_ONNX_ATTR_INTS ? a->ints : NULL;
    return *v ? a->n : 0;
}

size_t aas_onnx_attr_floats(const aas_onnx_node_t *n, const char *name, const float **v) {
    const aas_onnx_attr_t *a = aas_onnx_attr(n, name);
    *v = a && a->type == AAS_ONNX_ATTR_FLOATS ? a->floats : NULL;
    return *v ? a->n : 0;
}

size_t aas_onnx_attr_strings(const aas_onnx_node_t *n, const char *name,
                             char *const **v) {
    const aas_onnx_attr_t *a = aas_onnx_attr(n, name);
    *v = a && a->type == AAS_ONNX_ATTR_STRINGS ? a->strings : NULL;
    return *v ? a->n : 0;
}

/* ---- helpers ---- */

const char *aas_onnx_node_str(const aas_onnx_node_t *n, char *buf, size_t size) {
    snprintf(buf, size, "node '%s' (%s%s%s)", n->name, *n->domain ? n->domain : "",
             *n->domain ? "." : "", n->type);
    return buf;
}

aas_err_t aas_onnx_node_err(const aas_onnx_node_t *n, char *errstr, size_t errstr_size,
                            const char *fmt, ...) {
    char node[256], msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT, "%s: %s",
                       aas_onnx_node_str(n, node, sizeof(node)), msg);
}

int aas_onnx_axis(int64_t axis, int rank) {
    if (axis < -(int64_t)rank || axis >= rank) return -1;
    return (int)(axis < 0 ? axis + rank : axis);
}

int aas_onnx_broadcast(const aas_onnx_tensor_t *a, const aas_onnx_tensor_t *b,
                       aas_onnx_tensor_t *out) {
    int rank = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < rank; i++) {
        int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) return -1;
        out->dims[i] = da == 1 ? db : da;
    }
    out->rank = rank;
    return 0;
}

int64_t aas_onnx_int_at(const aas_onnx_tensor_t *t, int64_t i) {
    if (t->dtype == AAS_ONNX_INT32) return ((const int32_t *)t->data)[i];
    return ((const int64_t *)t->data)[i];
}

/* The node has lo to hi inputs, the first lo of them given, and at least
 * one and at most max_out outputs: checked at load, so a model missing an
 * input is refused at register time rather than at its first job. */
aas_err_t aas_onnx_arity(const aas_onnx_node_t *n, int lo, int hi, int max_out, char *errstr,
                         size_t errstr_size) {
    if (n->n_in < lo || n->n_in > hi)
        return lo == hi ? aas_onnx_node_err(n, errstr, errstr_size,
                                            "takes %d input%s at opset %lld, has %d", lo,
                                            lo == 1 ? "" : "s", (long long)n->opset, n->n_in)
                        : aas_onnx_node_err(n, errstr, errstr_size,
                                            "takes %d to %d inputs at opset %lld, has %d", lo,
                                            hi, (long long)n->opset, n->n_in);
    for (int i = 0; i < lo; i++)
        if (n->in[i] < 0)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "input %d is required but not given", i);
    if (n->n_out < 1 || n->n_out > max_out)
        return aas_onnx_node_err(n, errstr, errstr_size, "has %d outputs, takes 1%s",
                                 n->n_out, max_out > 1 ? " or 2" : "");
    return AAS_ERR_OK;
}

const char *aas_onnx_dims_str(const aas_onnx_tensor_t *t, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->rank && len < size; i++) {
        int w = snprintf(buf + len, size - len, "%s%lld", i ? "," : "", (long long)t->dims[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
    return buf;
}
