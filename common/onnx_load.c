/*
 * onnx_load.c - ModelProto bytes -> aas_onnx_t (onnx_int.h): values, nodes
 * in topological order, initializers as tensors, and the checks a graph
 * from a user must pass before anything runs it.  Shapes are not checked
 * here (they need concrete inputs): onnx_plan.c does that.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "onnx_int.h"

#define AAS_ONNX_MAX_DOMAINS 8

/* ---- tensors ---- */

static aas_err_t aas_onnx_tensor_from_proto(const Onnx__TensorProto *tp, const char *what,
                                            aas_onnx_tensor_t *out, char *errstr,
                                            size_t errstr_size) {
    const char *name = tp->name && *tp->name ? tp->name : "(unnamed)";
    if (tp->n_external_data ||
        (tp->has_data_location &&
         tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "%s '%s' keeps its data in an external file (external_data), "
                           "which aas does not read: save the model with every tensor "
                           "inside it (onnx.save_model(m, path, save_as_external_data=False))",
                           what, name);
    if (tp->segment)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "%s '%s' is segmented, which aas does not read", what, name);
    aas_onnx_dtype_t dt = (aas_onnx_dtype_t)tp->data_type;
    size_t esz = aas_onnx_dtype_size(dt);
    if (!esz)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "%s '%s' has dtype %s (%d), which aas does not compute in "
                           "(float32, float64, int64, int32, int8, uint8, bool)",
                           what, name, aas_onnx_dtype_name(dt), (int)tp->data_type);
    if (tp->n_dims > AAS_ONNX_MAX_RANK)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "%s '%s' has rank %zu, aas takes at most %d", what, name,
                           tp->n_dims, AAS_ONNX_MAX_RANK);
    aas_onnx_tensor_t t = {.dtype = dt, .rank = (int)tp->n_dims};
    size_t numel = 1;
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "%s '%s' has a negative dimension %lld", what, name,
                               (long long)tp->dims[i]);
        t.dims[i] = tp->dims[i];
        if (tp->dims[i] && numel > AAS_ONNX_MAX_TENSOR_BYTES / (size_t)tp->dims[i])
            numel = AAS_ONNX_MAX_TENSOR_BYTES + 1;
        else
            numel *= (size_t)tp->dims[i];
    }
    if (numel > AAS_ONNX_MAX_TENSOR_BYTES / esz)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%s '%s' claims more than %zu bytes (the limit per tensor)",
                           what, name, AAS_ONNX_MAX_TENSOR_BYTES);
    t.nbytes = numel * esz;
    size_t have;
    const void *src = NULL;
    int widen32 = 0;   /* int32_data holds int8/uint8/bool one per int32 */
    if (tp->has_raw_data) {
        have = tp->raw_data.len;
        src = tp->raw_data.data;
        if (have != t.nbytes)
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "%s '%s' has %zu bytes of raw_data, its shape needs %zu",
                               what, name, have, t.nbytes);
    } else {
        switch (dt) {
        case AAS_ONNX_FLOAT: have = tp->n_float_data; src = tp->float_data; break;
        case AAS_ONNX_DOUBLE: have = tp->n_double_data; src = tp->double_data; break;
        case AAS_ONNX_INT64: have = tp->n_int64_data; src = tp->int64_data; break;
        case AAS_ONNX_INT32: have = tp->n_int32_data; src = tp->int32_data; break;
        default: have = tp->n_int32_data; src = tp->int32_data; widen32 = 1; break;
        }
        if (have != numel)
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "%s '%s' has %zu elements, its shape needs %zu", what,
                               name, have, numel);
    }
    if (!(t.data = malloc(t.nbytes ? t.nbytes : 1)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "out of memory for %s '%s' (%zu bytes)", what, name, t.nbytes);
    if (widen32) {
        const int32_t *s = src;
        uint8_t *d = t.data;
        for (size_t i = 0; i < numel; i++) d[i] = (uint8_t)s[i];
    } else if (t.nbytes) {
        memcpy(t.data, src, t.nbytes);
    }
    *out = t;
    return AAS_ERR_OK;
}

aas_err_t aas_onnx_tensor_decode(const void *buf, size_t len, aas_onnx_tensor_t *out,
                                 char **name_out, char *errstr, size_t errstr_size) {
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "not a serialized ONNX TensorProto");
    aas_onnx_tensor_t t;
    char *name = NULL;
    aas_err_t err = aas_onnx_tensor_from_proto(tp, "tensor", &t, errstr, errstr_size);
    if (!err && name_out && tp->name && !(name = strdup(tp->name))) {
        free(t.data);
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (err) return err;
    *out = t;
    if (name_out) *name_out = name;
    return AAS_ERR_OK;
}

/* ---- values by name: open addressing over g->values ---- */

typedef struct {
    int *slot;      /* value index + 1, 0 empty */
    size_t mask;
} aas_onnx_names_t;

static size_t aas_onnx_hash(const char *s) {
    size_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int aas_onnx_find(const aas_onnx_t *g, const aas_onnx_names_t *t, const char *name) {
    for (size_t i = aas_onnx_hash(name) & t->mask;; i = (i + 1) & t->mask) {
        int v = t->slot[i];
        if (!v) return -1;
        if (!strcmp(g->values[v - 1].name, name)) return v - 1;
    }
}

/* A new value named name (or the existing one when it is already there and
 * redefine is allowed); index in *idx.  The table is sized by the caller for
 * every value the graph can declare, so it never fills. */
static aas_err_t aas_onnx_value_add(aas_onnx_t *g, aas_onnx_names_t *t, const char *name,
                                    int *idx, char *errstr, size_t errstr_size) {
    size_t i = aas_onnx_hash(name) & t->mask;
    for (; t->slot[i]; i = (i + 1) & t->mask)
        if (!strcmp(g->values[t->slot[i] - 1].name, name)) {
            *idx = t->slot[i] - 1;
            return AAS_ERR_OK;
        }
    if (g->n_values == g->cap_values)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "more values than the graph declares");
    aas_onnx_value_t *v = &g->values[g->n_values];
    memset(v, 0, sizeof(*v));
    v->rank = -1;
    v->producer = -1;
    if (!(v->name = strdup(name)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    t->slot[i] = ++g->n_values;
    *idx = g->n_values - 1;
    return AAS_ERR_OK;
}

/* Declared type of a graph input/output or value_info. */
static aas_err_t aas_onnx_value_declare(aas_onnx_value_t *v, const Onnx__ValueInfoProto *vi,
                                        char *errstr, size_t errstr_size) {
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return AAS_ERR_OK; /* sequences, maps (ZipMap's output): typed by the plan */
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type) v->dtype = (aas_onnx_dtype_t)tt->elem_type;
    if (!tt->shape) return AAS_ERR_OK;
    if (tt->shape->n_dim > AAS_ONNX_MAX_RANK)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "value '%s' has rank %zu, aas takes at most %d", v->name,
                           tt->shape->n_dim, AAS_ONNX_MAX_RANK);
    v->rank = (int)tt->shape->n_dim;
    for (int i = 0; i < v->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        v->dims[i] = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                                   "value '%s' declares dimension %d as %lld", v->name, i,
                                   (long long)d->dim_value);
            v->dims[i] = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   d->dim_param && !(v->dim_param[i] = strdup(d->dim_param))) {
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        }
    }
    return AAS_ERR_OK;
}

/* ---- nodes ---- */

static void aas_onnx_attr_free(aas_onnx_attr_t *a) {
    free(a->name);
    free(a->s);
    if (a->t) free(a->t->data);
    free(a->t);
    free(a->floats);
    free(a->ints);
    if (a->strings)
        for (size_t i = 0; i < a->n; i++) free(a->strings[i]);
    free(a->strings);
}

static aas_err_t aas_onnx_attr_copy(const Onnx__AttributeProto *ap, aas_onnx_attr_t *a,
                                    const char *node, char *errstr, size_t errstr_size) {
    memset(a, 0, sizeof(*a));
    if (!ap->name || !(a->name = strdup(ap->name))) goto nomem;
    a->type = ap->has_type ? (int)ap->type : 0;
    switch (a->type) {
    case AAS_ONNX_ATTR_FLOAT: a->f = ap->f; break;
    case AAS_ONNX_ATTR_INT: a->i = ap->i; break;
    case AAS_ONNX_ATTR_STRING:
        a->s_len = ap->has_s ? ap->s.len : 0;
        if (!(a->s = malloc(a->s_len + 1))) goto nomem;
        if (a->s_len) memcpy(a->s, ap->s.data, a->s_len);
        a->s[a->s_len] = '\0';
        break;
    case AAS_ONNX_ATTR_TENSOR: {
        if (!ap->t)
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "node '%s': attribute '%s' has no tensor", node, ap->name);
        if (!(a->t = calloc(1, sizeof(*a->t)))) goto nomem;
        aas_err_t err = aas_onnx_tensor_from_proto(ap->t, "attribute tensor", a->t, errstr,
                                                   errstr_size);
        if (err) {
            free(a->t);
            a->t = NULL;
            return err;
        }
        break;
    }
    case AAS_ONNX_ATTR_FLOATS:
        a->n = ap->n_floats;
        if (!(a->floats = malloc((a->n ? a->n : 1) * sizeof(float)))) goto nomem;
        if (a->n) memcpy(a->floats, ap->floats, a->n * sizeof(float));
        break;
    case AAS_ONNX_ATTR_INTS:
        a->n = ap->n_ints;
        if (!(a->ints = malloc((a->n ? a->n : 1) * sizeof(int64_t)))) goto nomem;
        if (a->n) memcpy(a->ints, ap->ints, a->n * sizeof(int64_t));
        break;
    case AAS_ONNX_ATTR_STRINGS:
        if (!(a->strings = calloc(ap->n_strings ? ap->n_strings : 1, sizeof(char *))))
            goto nomem;
        for (size_t i = 0; i < ap->n_strings; i++, a->n++) {
            if (!(a->strings[i] = malloc(ap->strings[i].len + 1))) goto nomem;
            if (ap->strings[i].len)   /* an empty string's data may be NULL */
                memcpy(a->strings[i], ap->strings[i].data, ap->strings[i].len);
            a->strings[i][ap->strings[i].len] = '\0';
        }
        break;
    default:
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "node '%s': attribute '%s' has type %d (graphs, sparse tensors "
                           "and type protos are not supported)", node, ap->name, a->type);
    }
    return AAS_ERR_OK;
nomem:
    return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
}

static int64_t aas_onnx_domain_version(const aas_onnx_t *g, const char *domain) {
    if (!strcmp(domain, "ai.onnx")) domain = "";
    for (int i = 0; i < g->n_domains; i++)
        if (!strcmp(g->domains[i], domain)) return g->versions[i];
    return 0;
}

int64_t aas_onnx_opset(const aas_onnx_t *g, const char *domain) {
    return aas_onnx_domain_version(g, domain);
}

static aas_err_t aas_onnx_node_copy(aas_onnx_t *g, aas_onnx_names_t *names,
                                    const Onnx__NodeProto *np, aas_onnx_node_t *n,
                                    char *errstr, size_t errstr_size) {
    if (!np->op_type || !*np->op_type)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "node '%s' has no op_type", np->name ? np->name : "");
    if (!(n->name = strdup(np->name ? np->name : "")) || !(n->type = strdup(np->op_type)) ||
        !(n->domain = strdup(np->domain && strcmp(np->domain, "ai.onnx") ? np->domain : "")))
        goto nomem;
    n->post.alg = dnnl_alg_kind_undef;
    if (*n->domain && strcmp(n->domain, AAS_ONNX_DOMAIN_ML))
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "node '%s': unsupported op %s.%s: aas runs the ai.onnx and "
                           "ai.onnx.ml domains only", n->name, n->domain, n->type);
    if (!(n->opset = aas_onnx_domain_version(g, n->domain)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "node '%s' (%s) is in domain '%s', which the model does not "
                           "import (opset_import)", n->name, n->type,
                           *n->domain ? n->domain : "ai.onnx");
    if (!np->n_output)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "node '%s' (%s) has no outputs", n->name, n->type);
    if (np->n_input > 64 || np->n_output > 64 || np->n_attribute > 256)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "node '%s' (%s) has %zu inputs, %zu outputs, %zu attributes",
                           n->name, n->type, np->n_input, np->n_output, np->n_attribute);
    if (!(n->in = malloc((np->n_input + 1) * sizeof(int))) ||
        !(n->out = malloc((np->n_output + 1) * sizeof(int))) ||
        !(n->attrs = calloc(np->n_attribute + 1, sizeof(*n->attrs))))
        goto nomem;
    for (size_t i = 0; i < np->n_attribute; i++, n->n_attrs++) {
        aas_err_t err = aas_onnx_attr_copy(np->attribute[i], &n->attrs[i], n->name, errstr,
                                           errstr_size);
        if (err) {
            aas_onnx_attr_free(&n->attrs[i]);
            return err;
        }
    }
    for (size_t i = 0; i < np->n_input; i++, n->n_in++) {
        const char *s = np->input[i];
        n->in[i] = -1;
        if (!*s) continue;
        if ((n->in[i] = aas_onnx_find(g, names, s)) < 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "node '%s' (%s): input '%s' is not a graph input, an "
                               "initializer or any node's output", n->name, n->type, s);
    }
    for (size_t i = 0; i < np->n_output; i++, n->n_out++) {
        n->out[i] = -1;
        if (!*np->output[i]) continue;   /* an omitted optional output */
        if ((n->out[i] = aas_onnx_find(g, names, np->output[i])) < 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "node '%s': output '%s' unknown", n->name, np->output[i]);
    }
    /* every op aas runs has a required first output */
    if (n->out[0] < 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "node '%s' (%s): its first output has no name", n->name, n->type);
    int known;
    if (!(n->op = aas_onnx_op_find(n->domain, n->type, n->opset, &known))) {
        if (known)
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "node '%s': op %s%s%s at opset %lld is not supported by aas "
                               "(docs/onnx.md lists the opsets of each op)", n->name,
                               n->domain, *n->domain ? "." : "", n->type,
                               (long long)n->opset);
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "node '%s': unsupported op %s%s%s (opset %lld); docs/onnx.md "
                           "lists the ops aas runs", n->name, *n->domain ? n->domain : "",
                           *n->domain ? "." : "", n->type, (long long)n->opset);
    }
    return n->op->check ? n->op->check(n, errstr, errstr_size) : AAS_ERR_OK;
nomem:
    return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
}

static void aas_onnx_node_free(aas_onnx_node_t *n) {
    free(n->name);
    free(n->type);
    free(n->domain);
    free(n->in);
    free(n->out);
    for (int i = 0; i < n->n_attrs; i++) aas_onnx_attr_free(&n->attrs[i]);
    free(n->attrs);
}

/* Kahn's algorithm: reorder g->nodes so every node comes after the
 * producers of its inputs; a node left over sits on a cycle.  Consumers of
 * each value are listed once (CSR), so this is linear in the edges. */
static aas_err_t aas_onnx_toposort(aas_onnx_t *g, char *errstr, size_t errstr_size) {
    int n = g->n_nodes, nv = g->n_values;
    size_t edges = 0;
    for (int i = 0; i < n; i++) edges += (size_t)g->nodes[i].n_in;
    int *indeg = calloc((size_t)n + 1, sizeof(int));
    int *order = malloc(((size_t)n + 1) * sizeof(int));
    int *start = calloc((size_t)nv + 2, sizeof(int));
    int *cons = malloc((edges + 1) * sizeof(int));
    aas_onnx_node_t *sorted = malloc(((size_t)n + 1) * sizeof(*sorted));
    aas_err_t err = AAS_ERR_OK;
    if (!indeg || !order || !start || !cons || !sorted) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            if (v < 0) continue;
            start[v + 2]++;
            if (g->values[v].producer >= 0) indeg[i]++;
        }
    for (int v = 0; v < nv; v++) start[v + 2] += start[v + 1];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            if (v >= 0) cons[start[v + 1]++] = i;
        }
    /* now consumers of v are cons[start[v] .. start[v+1]) */
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        if (!indeg[i]) order[tail++] = i;
    while (head < tail) {
        const aas_onnx_node_t *nd = &g->nodes[order[head++]];
        for (int o = 0; o < nd->n_out; o++) {
            int v = nd->out[o];
            if (v < 0) continue;
            for (int c = start[v]; c < start[v + 1]; c++)
                if (!--indeg[cons[c]]) order[tail++] = cons[c];
        }
    }
    if (tail < n) {
        for (int i = 0; i < n; i++)
            if (indeg[i]) {
                err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                                  "the graph has a cycle through node '%s' (%s)",
                                  g->nodes[i].name, g->nodes[i].type);
                break;
            }
        goto done;
    }
    int *newidx = indeg; /* reuse: old index -> new index */
    for (int i = 0; i < n; i++) {
        sorted[i] = g->nodes[order[i]];
        newidx[order[i]] = i;
    }
    for (int v = 0; v < nv; v++)
        if (g->values[v].producer >= 0) g->values[v].producer = newidx[g->values[v].producer];
    memcpy(g->nodes, sorted, (size_t)n * sizeof(*sorted));
done:
    free(indeg);
    free(order);
    free(start);
    free(cons);
    free(sorted);
    return err;
}

/* ---- the graph ---- */

static aas_err_t aas_onnx_build(aas_onnx_t *g, const Onnx__ModelProto *mp, char *errstr,
                                size_t errstr_size) {
    const Onnx__GraphProto *gp = mp->graph;
    if (!gp)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "not an ONNX model: no graph");
    g->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    if (g->ir_version < 3)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "not an ONNX model aas reads: ir_version %lld (needs 3 or newer)",
                           (long long)g->ir_version);
    char prod[256];
    snprintf(prod, sizeof(prod), "%s%s%s", mp->producer_name ? mp->producer_name : "",
             mp->producer_version && *mp->producer_version ? " " : "",
             mp->producer_version ? mp->producer_version : "");
    if (!(g->producer = strdup(prod))) goto nomem;
    if (mp->n_opset_import > AAS_ONNX_MAX_DOMAINS)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "the model imports %zu opsets, aas takes at most %d",
                           mp->n_opset_import, AAS_ONNX_MAX_DOMAINS);
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        /* any domain may be imported; a node in one aas does not run is
         * refused by name below */
        const char *d = o->domain && strcmp(o->domain, "ai.onnx") ? o->domain : "";
        if (!(g->domains[g->n_domains] = strdup(d))) goto nomem;
        g->versions[g->n_domains++] = o->has_version ? o->version : 1;
    }
    if (!aas_onnx_domain_version(g, ""))
        for (size_t i = 0; i < gp->n_node; i++)
            if (!gp->node[i]->domain || !*gp->node[i]->domain)
                return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                                   "the model does not import the ai.onnx opset");
    if (!gp->n_node || !gp->n_output)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "the graph is empty: %s", gp->n_node ? "no output" : "no node");
    if (gp->n_node > AAS_ONNX_MAX_NODES)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "the graph has %zu nodes, aas takes at most %d", gp->n_node,
                           AAS_ONNX_MAX_NODES);

    size_t cap = gp->n_input + gp->n_initializer + gp->n_output;
    for (size_t i = 0; i < gp->n_node; i++) cap += gp->node[i]->n_output;
    aas_onnx_names_t names = {0};
    size_t slots = 16;
    while (slots < 2 * cap) slots *= 2;
    names.mask = slots - 1;
    if (!(names.slot = calloc(slots, sizeof(int))) ||
        !(g->values = calloc(cap + 1, sizeof(*g->values))) ||
        !(g->nodes = calloc(gp->n_node, sizeof(*g->nodes))) ||
        !(g->inputs = calloc(gp->n_input + 1, sizeof(int))) ||
        !(g->outputs = calloc(gp->n_output + 1, sizeof(int)))) {
        free(names.slot);
        goto nomem;
    }
    g->cap_values = (int)cap;
    aas_err_t err = AAS_ERR_OK;
    int idx;
    for (size_t i = 0; i < gp->n_initializer && !err; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !*tp->name) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                              "initializer %zu has no name", i);
            break;
        }
        if ((err = aas_onnx_value_add(g, &names, tp->name, &idx, errstr, errstr_size))) break;
        aas_onnx_value_t *v = &g->values[idx];
        if (v->init) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                              "initializer '%s' is defined twice", tp->name);
            break;
        }
        if (!(v->init = calloc(1, sizeof(*v->init)))) goto nomem_names;
        if ((err = aas_onnx_tensor_from_proto(tp, "initializer", v->init, errstr,
                                              errstr_size))) {
            free(v->init);
            v->init = NULL;
            break;
        }
        g->init_bytes += v->init->nbytes;
    }
    if (gp->n_sparse_initializer && !err)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                          "sparse initializers are not supported");
    for (size_t i = 0; i < gp->n_input && !err; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                              "graph input %zu has no name", i);
            break;
        }
        if ((err = aas_onnx_value_add(g, &names, vi->name, &idx, errstr, errstr_size))) break;
        aas_onnx_value_t *v = &g->values[idx];
        if (v->init) continue;  /* IR < 4 lists initializers as inputs */
        if (v->is_input) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                              "graph input '%s' is listed twice", vi->name);
            break;
        }
        if ((err = aas_onnx_value_declare(v, vi, errstr, errstr_size))) break;
        size_t esz = aas_onnx_dtype_size(v->dtype);
        if (!esz && v->dtype == AAS_ONNX_UNDEFINED)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                              "graph input '%s' is not a tensor of a known type (sequence, "
                              "map and optional inputs are not supported)", vi->name);
        else if (!esz)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                              "graph input '%s' has dtype %s (%d), which aas does not take",
                              vi->name, aas_onnx_dtype_name(v->dtype), (int)v->dtype);
        v->is_input = 1;
        g->inputs[g->n_inputs++] = idx;
    }
    /* Node outputs first, so inputs can be resolved whatever the order. */
    for (size_t i = 0; i < gp->n_node && !err; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        for (size_t k = 0; k < np->n_output && !err; k++) {
            if (!*np->output[k]) continue;
            if ((err = aas_onnx_value_add(g, &names, np->output[k], &idx, errstr,
                                          errstr_size)))
                break;
            aas_onnx_value_t *v = &g->values[idx];
            if (v->producer >= 0 || v->init || v->is_input)
                err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                                  "value '%s' is produced twice (by node '%s' and before)",
                                  np->output[k], np->name ? np->name : "");
            v->producer = (int)i;
        }
    }
    for (size_t i = 0; i < gp->n_node && !err; i++) {
        g->n_nodes++;   /* counted first: a half-copied node is freed too */
        err = aas_onnx_node_copy(g, &names, gp->node[i], &g->nodes[i], errstr, errstr_size);
    }
    for (size_t i = 0; i < gp->n_output && !err; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi->name || (idx = aas_onnx_find(g, &names, vi->name)) < 0) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                              "graph output '%s' is not produced by any node",
                              vi->name ? vi->name : "");
            break;
        }
        aas_onnx_value_t *v = &g->values[idx];
        if (v->rank < 0 && (err = aas_onnx_value_declare(v, vi, errstr, errstr_size))) break;
        v->is_output = 1;
        g->outputs[g->n_outputs++] = idx;
    }
    free(names.slot);
    if (err) return err;
    return aas_onnx_toposort(g, errstr, errstr_size);
nomem_names:
    free(names.slot);
nomem:
    return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
}

void aas_onnx_destroy(aas_onnx_t *g) {
    if (!g) return;
    aas_onnx_plans_free(g);
    aas_onnx_wcache_free(g);
    for (int i = 0; i < g->n_nodes; i++) aas_onnx_node_free(&g->nodes[i]);
    free(g->nodes);
    for (int i = 0; i < g->n_values; i++) {
        aas_onnx_value_t *v = &g->values[i];
        free(v->name);
        for (int k = 0; k < AAS_ONNX_MAX_RANK; k++) free(v->dim_param[k]);
        if (v->init) free(v->init->data);
        free(v->init);
    }
    free(g->values);
    free(g->inputs);
    free(g->outputs);
    for (int i = 0; i < g->n_domains; i++) free(g->domains[i]);
    free(g->producer);
    if (g->stream) dnnl_stream_destroy(g->stream);
    if (g->engine) dnnl_engine_destroy(g->engine);
    free(g);
}

aas_err_t aas_onnx_load(const void *buf, size_t len, aas_onnx_t **out, char *errstr,
                        size_t errstr_size) {
    if (!len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT, "empty model file");
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "not an ONNX model: the bytes are not a valid ModelProto "
                           "(truncated or not protobuf)");
    aas_onnx_t *g = calloc(1, sizeof(*g));
    aas_err_t err;
    if (!g) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    } else if (!(err = aas_onnx_build(g, mp, errstr, errstr_size)) &&
               !(err = aas_onnx_fuse(g, errstr, errstr_size))) {
        if (dnnl_engine_create(&g->engine, dnnl_cpu, 0) != dnnl_success ||
            dnnl_stream_create(&g->stream, g->engine, dnnl_stream_default_flags) !=
                dnnl_success)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_DNN,
                              "oneDNN: cannot create a CPU engine and stream");
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    if (err) {
        aas_onnx_destroy(g);
        return err;
    }
    *out = g;
    return AAS_ERR_OK;
}

/* ---- description ---- */

size_t aas_onnx_n_inputs(const aas_onnx_t *g) { return (size_t)g->n_inputs; }
size_t aas_onnx_n_outputs(const aas_onnx_t *g) { return (size_t)g->n_outputs; }

static void aas_onnx_io(const aas_onnx_value_t *v, aas_onnx_io_t *out) {
    *out = (aas_onnx_io_t){.name = v->name, .dtype = v->dtype, .rank = v->rank,
                           .dims = v->dims, .dim_params = (const char *const *)v->dim_param};
}

void aas_onnx_input(const aas_onnx_t *g, size_t i, aas_onnx_io_t *out) {
    aas_onnx_io(&g->values[g->inputs[i]], out);
}

void aas_onnx_output(const aas_onnx_t *g, size_t i, aas_onnx_io_t *out) {
    aas_onnx_io(&g->values[g->outputs[i]], out);
}

const char *aas_onnx_producer(const aas_onnx_t *g) { return g->producer; }
int64_t aas_onnx_ir_version(const aas_onnx_t *g) { return g->ir_version; }

size_t aas_onnx_n_nodes(const aas_onnx_t *g) {
    size_t n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !g->nodes[i].dead;
    return n;
}

size_t aas_onnx_footprint(const aas_onnx_t *g) {
    return sizeof(*g) + g->init_bytes + aas_onnx_plans_bytes(g) + aas_onnx_wcache_bytes(g);
}
