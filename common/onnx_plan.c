/*
 * onnx_plan.c - plans: a graph specialised to one set of input shapes.
 *
 * Making a plan walks the nodes in topological order and asks each kernel
 * for its output shapes (op->plan).  A node whose inputs are all constant
 * (initializers, folded values) or that reads only shapes (Shape) is run
 * right there and its outputs become constants: PyTorch's
 * Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain folds away and
 * Reshape sees a constant shape.  Every other output gets a 64-byte
 * aligned buffer of its own, allocated once; running the plan then only
 * calls op->run in order.  Plans are kept per input shape set, most
 * recently used first, at most AAS_ONNX_MAX_PLANS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"

#define AAS_ONNX_MAX_PLANS 40
#define AAS_ONNX_ALIGN 64
/* Host memory a kernel holds beyond its buffers (primitives, JIT code). */
#define AAS_ONNX_KERNEL_BYTES 4096

typedef struct aas_onnx_plan_s {
    struct aas_onnx_plan_s *next;
    int64_t *key;                /* per input: rank, dims */
    size_t n_key;
    aas_onnx_tensor_t *vals;     /* one per value */
    void **bufs;                 /* one per value: owned buffer or NULL */
    aas_onnx_kernel_t *kern;     /* one per node (unused for dead/folded) */
    aas_onnx_tensor_t *dummy;    /* omitted optional outputs, one per ptrs slot */
    size_t n_dummy;
    aas_onnx_tensor_t **ptrs;    /* in/out pointer arrays of every kernel */
    int *run;                    /* nodes to run, in order */
    int n_run;
    size_t bytes;
} aas_onnx_plan_t;

static void aas_onnx_plan_free(const aas_onnx_t *g, aas_onnx_plan_t *p) {
    if (!p) return;
    if (p->kern)
        for (int i = 0; i < g->n_nodes; i++) {
            aas_onnx_kernel_t *k = &p->kern[i];
            if (!k->state) continue;
            if (k->node && k->node->op->release)
                k->node->op->release(k->state);
            else
                free(k->state);
        }
    if (p->bufs)
        for (int v = 0; v < g->n_values; v++) free(p->bufs[v]);
    if (p->dummy)
        for (size_t i = 0; i < p->n_dummy; i++) free(p->dummy[i].data);
    free(p->key);
    free(p->vals);
    free(p->bufs);
    free(p->kern);
    free(p->dummy);
    free(p->ptrs);
    free(p->run);
    free(p);
}

void aas_onnx_plans_free(aas_onnx_t *g) {
    while (g->plans) {
        aas_onnx_plan_t *p = g->plans;
        g->plans = p->next;
        aas_onnx_plan_free(g, p);
    }
    g->n_plans = 0;
}

size_t aas_onnx_plans_bytes(const aas_onnx_t *g) {
    size_t b = 0;
    for (const aas_onnx_plan_t *p = g->plans; p; p = p->next) b += p->bytes;
    return b;
}

/* Size the outputs plan set: dtype known, dims sane, bytes within limit. */
static aas_err_t aas_onnx_plan_sizes(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    for (int o = 0; o < k->n_out; o++) {
        aas_onnx_tensor_t *t = k->out[o];
        size_t esz = aas_onnx_dtype_size(t->dtype);
        if (!esz)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "output %d has dtype %s, which aas does not compute in",
                                     o, aas_onnx_dtype_name(t->dtype));
        if (t->rank < 0 || t->rank > AAS_ONNX_MAX_RANK)
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "output %d has rank %d", o, t->rank);
        size_t n = 1;
        for (int d = 0; d < t->rank; d++) {
            if (t->dims[d] < 0)
                return aas_onnx_node_err(k->node, errstr, errstr_size,
                                         "output %d has dimension %d = %lld", o, d,
                                         (long long)t->dims[d]);
            if (t->dims[d] && n > AAS_ONNX_MAX_TENSOR_BYTES / (size_t)t->dims[d])
                n = AAS_ONNX_MAX_TENSOR_BYTES + 1;
            else
                n *= (size_t)t->dims[d];
        }
        if (n > AAS_ONNX_MAX_TENSOR_BYTES / esz)
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                               "node '%s' (%s): output %d would take more than %zu bytes",
                               k->node->name, k->node->type, o, AAS_ONNX_MAX_TENSOR_BYTES);
        t->nbytes = n * esz;
    }
    return AAS_ERR_OK;
}

/* A small int64 graph input (a shape, axes) is a constant of the plan:
 * its values are part of the plan's key, so Reshape and friends see it
 * while planning.  Serving graphs take their shapes from initializers;
 * this is for graphs (the ONNX node tests) that feed them as inputs. */
#define AAS_ONNX_CONST_INPUT_MAX 16
static int aas_onnx_plan_const_input(const aas_onnx_tensor_t *t) {
    return t->dtype == AAS_ONNX_INT64 && t->rank <= 1 &&
           aas_onnx_numel(t) <= AAS_ONNX_CONST_INPUT_MAX;
}

static void *aas_onnx_buf(size_t n) {
    size_t sz = (n + AAS_ONNX_ALIGN - 1) / AAS_ONNX_ALIGN * AAS_ONNX_ALIGN;
    void *p = aligned_alloc(AAS_ONNX_ALIGN, sz ? sz : AAS_ONNX_ALIGN);
    if (p) memset(p, 0, sz ? sz : AAS_ONNX_ALIGN);
    return p;
}

static aas_err_t aas_onnx_plan_new(aas_onnx_t *g, const aas_onnx_tensor_t *in,
                                   aas_onnx_plan_t **out, char *errstr, size_t errstr_size) {
    aas_onnx_plan_t *p = calloc(1, sizeof(*p));
    size_t nv = (size_t)g->n_values, nn = (size_t)g->n_nodes, ptrs = 0;
    for (int i = 0; i < g->n_nodes; i++)
        ptrs += (size_t)g->nodes[i].n_in + (size_t)g->nodes[i].n_out;
    if (p) p->n_dummy = ptrs;
    unsigned char *is_const = calloc(nv + 1, 1);
    aas_err_t err = AAS_ERR_OK;
    if (!p || !is_const || !(p->key = malloc(((size_t)g->n_inputs * (AAS_ONNX_MAX_RANK + 1 + AAS_ONNX_CONST_INPUT_MAX) + 1) *
                                             sizeof(int64_t))) ||
        !(p->vals = calloc(nv + 1, sizeof(*p->vals))) ||
        !(p->bufs = calloc(nv + 1, sizeof(void *))) ||
        !(p->kern = calloc(nn + 1, sizeof(*p->kern))) ||
        !(p->dummy = calloc(ptrs + 1, sizeof(*p->dummy))) ||
        !(p->ptrs = calloc(ptrs + 1, sizeof(*p->ptrs))) ||
        !(p->run = calloc(nn + 1, sizeof(int)))) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory for a plan");
        goto fail;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        p->key[p->n_key++] = in[i].rank;
        for (int d = 0; d < in[i].rank; d++) p->key[p->n_key++] = in[i].dims[d];
        if (aas_onnx_plan_const_input(&in[i]))
            for (int64_t e = 0; e < aas_onnx_numel(&in[i]); e++)
                p->key[p->n_key++] = ((const int64_t *)in[i].data)[e];
    }
    for (size_t v = 0; v < nv; v++) {
        const aas_onnx_value_t *val = &g->values[v];
        if (val->init) {
            p->vals[v] = *val->init;
            is_const[v] = 1;
        }
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        p->vals[v] = in[i];
        p->vals[v].data = NULL;   /* not a constant while planning */
        if (aas_onnx_plan_const_input(&in[i])) {
            if (!(p->bufs[v] = aas_onnx_buf(in[i].nbytes))) goto nomem;
            memcpy(p->bufs[v], in[i].data, in[i].nbytes);
            p->vals[v].data = p->bufs[v];
            is_const[v] = 1;
        }
    }
    aas_onnx_tensor_t **pp = p->ptrs;
    for (int i = 0; i < g->n_nodes; i++) {
        const aas_onnx_node_t *n = &g->nodes[i];
        if (n->dead) continue;
        aas_onnx_kernel_t *k = &p->kern[i];
        k->node = n;
        k->engine = g->engine;
        k->stream = g->stream;
        k->graph = g;
        k->in = pp;
        k->n_in = n->n_in;
        pp += n->n_in;
        k->out = pp;
        k->n_out = n->n_out;
        pp += n->n_out;
        int all_const = 1;
        for (int j = 0; j < n->n_in; j++) {
            k->in[j] = n->in[j] >= 0 ? &p->vals[n->in[j]] : NULL;
            if (n->in[j] >= 0 && !is_const[n->in[j]]) all_const = 0;
        }
        for (int j = 0; j < n->n_out; j++)
            k->out[j] = n->out[j] >= 0 ? &p->vals[n->out[j]] : &p->dummy[k->out - p->ptrs + j];
        if ((err = n->op->plan(k, errstr, errstr_size)) ||
            (err = aas_onnx_plan_sizes(k, errstr, errstr_size)))
            goto fail;
        int fold = all_const || n->op->shape_only;
        for (int j = 0; j < n->n_out; j++) {
            if (n->out[j] < 0) {
                /* an omitted output still needs somewhere to go */
                if (!(k->out[j]->data = aas_onnx_buf(k->out[j]->nbytes))) goto nomem;
                continue;
            }
            if (j == 0 && k->alias) continue;
            if (!(p->bufs[n->out[j]] = aas_onnx_buf(k->out[j]->nbytes))) goto nomem;
            p->bytes += k->out[j]->nbytes;
        }
        if (!fold) {
            p->run[p->n_run++] = i;
            p->bytes += AAS_ONNX_KERNEL_BYTES;
            continue;
        }
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j] >= 0)
                k->out[j]->data = j == 0 && k->alias ? k->in[0]->data : p->bufs[n->out[j]];
        if ((err = n->op->run(k, errstr, errstr_size))) goto fail;
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j] >= 0) is_const[n->out[j]] = 1;
    }
    for (size_t v = 0; v < nv; v++)
        if (!is_const[v] && p->bufs[v]) p->vals[v].data = p->bufs[v];
    for (int i = 0; i < g->n_outputs; i++) {
        const aas_onnx_value_t *val = &g->values[g->outputs[i]];
        if (val->producer >= 0 && g->nodes[val->producer].dead) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                              "graph output '%s' has no live producer", val->name);
            goto fail;
        }
    }
    free(is_const);
    *out = p;
    return AAS_ERR_OK;
nomem:
    err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory for a plan's buffers");
fail:
    free(is_const);
    aas_onnx_plan_free(g, p);
    return err;
}

/* Inputs must fit the declared types; the error names the input. */
static aas_err_t aas_onnx_check_inputs(const aas_onnx_t *g, const aas_onnx_tensor_t *in,
                                       size_t n_in, char *errstr, size_t errstr_size) {
    if (n_in != (size_t)g->n_inputs)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "the model takes %d inputs, got %zu", g->n_inputs, n_in);
    for (int i = 0; i < g->n_inputs; i++) {
        const aas_onnx_value_t *v = &g->values[g->inputs[i]];
        const aas_onnx_tensor_t *t = &in[i];
        if (t->dtype != v->dtype)
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "input '%s' must be %s, got %s", v->name,
                               aas_onnx_dtype_name(v->dtype), aas_onnx_dtype_name(t->dtype));
        if (t->rank < 0 || t->rank > AAS_ONNX_MAX_RANK || (v->rank >= 0 && t->rank != v->rank))
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "input '%s' must have rank %d, got %d", v->name, v->rank,
                               t->rank);
        size_t n = 1;
        for (int d = 0; d < t->rank; d++) {
            if (t->dims[d] < 0 || (v->rank >= 0 && v->dims[d] >= 0 && t->dims[d] != v->dims[d]))
                return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                                   "input '%s' dimension %d must be %lld, got %lld", v->name,
                                   d, (long long)v->dims[d], (long long)t->dims[d]);
            if (t->dims[d] && n > AAS_ONNX_MAX_TENSOR_BYTES / (size_t)t->dims[d])
                return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                                   "input '%s' is too large", v->name);
            n *= (size_t)t->dims[d];
        }
        if (n * aas_onnx_dtype_size(t->dtype) != t->nbytes)
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "input '%s' has %zu bytes, its shape needs %zu", v->name,
                               t->nbytes, n * aas_onnx_dtype_size(t->dtype));
    }
    return AAS_ERR_OK;
}

static aas_onnx_plan_t *aas_onnx_plan_find(aas_onnx_t *g, const aas_onnx_tensor_t *in) {
    aas_onnx_plan_t **pp = &g->plans;
    for (; *pp; pp = &(*pp)->next) {
        aas_onnx_plan_t *p = *pp;
        size_t k = 0;
        int match = 1;
        for (int i = 0; i < g->n_inputs && match; i++) {
            if (k >= p->n_key || p->key[k++] != in[i].rank) {
                match = 0;
                break;
            }
            for (int d = 0; d < in[i].rank && match; d++)
                if (k >= p->n_key || p->key[k++] != in[i].dims[d]) match = 0;
            if (match && aas_onnx_plan_const_input(&in[i]))
                for (int64_t e = 0; e < aas_onnx_numel(&in[i]) && match; e++)
                    if (k >= p->n_key || p->key[k++] != ((const int64_t *)in[i].data)[e])
                        match = 0;
        }
        if (!match) continue;
        *pp = p->next;           /* move to the front */
        p->next = g->plans;
        g->plans = p;
        return p;
    }
    return NULL;
}

aas_err_t aas_onnx_run(aas_onnx_t *g, const aas_onnx_tensor_t *in, size_t n_in,
                       const aas_onnx_tensor_t **out, size_t n_out, char *errstr,
                       size_t errstr_size) {
    aas_err_t err = aas_onnx_check_inputs(g, in, n_in, errstr, errstr_size);
    if (err) return err;
    if (n_out != (size_t)g->n_outputs)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "the model has %d outputs, caller asked for %zu", g->n_outputs,
                           n_out);
    aas_onnx_plan_t *p = aas_onnx_plan_find(g, in);
    if (!p) {
        if ((err = aas_onnx_plan_new(g, in, &p, errstr, errstr_size))) return err;
        p->next = g->plans;
        g->plans = p;
        if (++g->n_plans > AAS_ONNX_MAX_PLANS) {
            aas_onnx_plan_t *q = g->plans;
            while (q->next->next) q = q->next;
            aas_onnx_plan_free(g, q->next);
            q->next = NULL;
            g->n_plans--;
        }
    }
    for (int i = 0; i < g->n_inputs; i++)
        if (!aas_onnx_plan_const_input(&in[i])) p->vals[g->inputs[i]].data = in[i].data;
    for (int r = 0; r < p->n_run; r++) {
        aas_onnx_kernel_t *k = &p->kern[p->run[r]];
        if (k->alias) k->out[0]->data = k->in[0]->data;
        if ((err = k->node->op->run(k, errstr, errstr_size))) return err;
    }
    for (int i = 0; i < g->n_outputs; i++) out[i] = &p->vals[g->outputs[i]];
    return AAS_ERR_OK;
}
