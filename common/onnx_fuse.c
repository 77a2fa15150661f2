/*
 * onnx_fuse.c - rewrites made once at load, before any plan:
 *  - a BatchNormalization (inference) right after a Conv whose weights are
 *    initializers is folded into the Conv's weights and bias;
 *  - Relu, LeakyRelu, Sigmoid, Tanh or a constant Clip right after a Gemm,
 *    MatMul or Conv becomes that node's oneDNN eltwise post-op.
 * A rewrite applies only when the intermediate value has no other reader
 * and is not a graph output, so the graph computes the same function; a
 * folded initializer is rewritten in place only when no other node reads it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"

/* Readers of each value, graph outputs counted as one. */
static int *aas_onnx_readers(const aas_onnx_t *g) {
    int *r = calloc((size_t)g->n_values + 1, sizeof(int));
    if (!r) return NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].dead)
            for (int k = 0; k < g->nodes[i].n_in; k++)
                if (g->nodes[i].in[k] >= 0) r[g->nodes[i].in[k]]++;
    for (int i = 0; i < g->n_outputs; i++) r[g->outputs[i]]++;
    return r;
}

/* The single live node reading value v, or NULL. */
static aas_onnx_node_t *aas_onnx_reader(aas_onnx_t *g, int v) {
    for (int i = 0; i < g->n_nodes; i++) {
        aas_onnx_node_t *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == v) return n;
    }
    return NULL;
}

static const aas_onnx_tensor_t *aas_onnx_init_f32(const aas_onnx_t *g, const aas_onnx_node_t *n,
                                                  int k, int64_t len) {
    if (k >= n->n_in || n->in[k] < 0) return NULL;
    const aas_onnx_tensor_t *t = g->values[n->in[k]].init;
    if (!t || t->dtype != AAS_ONNX_FLOAT || aas_onnx_numel(t) != len) return NULL;
    if (len >= 0 && t->rank != 1) return NULL;
    return t;
}

/* conv -> bn: W'[o] = W[o] * s[o], b'[o] = (b[o] - mean[o]) * s[o] + beta[o],
 * s = scale / sqrt(var + eps).  The new bias is written into BN's beta
 * initializer, which becomes the Conv's third input. */
static void aas_onnx_fold_bn(aas_onnx_t *g, aas_onnx_node_t *conv, aas_onnx_node_t *bn,
                             const int *readers) {
    if (bn->n_in != 5 || bn->n_out < 1 || bn->out[0] < 0 || (bn->n_out > 1 && bn->out[1] >= 0))
        return;
    if (aas_onnx_attr_int(bn, "training_mode", 0)) return;
    if (conv->n_in < 2 || conv->in[1] < 0) return;
    aas_onnx_tensor_t *w = g->values[conv->in[1]].init;
    if (!w || w->dtype != AAS_ONNX_FLOAT || w->rank < 3 || readers[conv->in[1]] != 1) return;
    int64_t oc = w->dims[0];
    const aas_onnx_tensor_t *scale = aas_onnx_init_f32(g, bn, 1, oc),
                            *mean = aas_onnx_init_f32(g, bn, 3, oc),
                            *var = aas_onnx_init_f32(g, bn, 4, oc);
    aas_onnx_tensor_t *beta = (aas_onnx_tensor_t *)aas_onnx_init_f32(g, bn, 2, oc);
    if (!scale || !beta || !mean || !var || readers[bn->in[2]] != 1) return;
    const aas_onnx_tensor_t *bias = NULL;
    if (conv->n_in >= 3 && conv->in[2] >= 0) {
        if (!(bias = aas_onnx_init_f32(g, conv, 2, oc))) return;
    }
    float eps = aas_onnx_attr_float(bn, "epsilon", 1e-5f);
    int64_t per = aas_onnx_numel(w) / (oc ? oc : 1);
    float *wd = w->data, *bd = beta->data;
    const float *sc = scale->data, *mu = mean->data, *va = var->data;
    for (int64_t o = 0; o < oc; o++) {
        float s = sc[o] / sqrtf(va[o] + eps);
        for (int64_t j = 0; j < per; j++) wd[o * per + j] *= s;
        float b0 = bias ? ((const float *)bias->data)[o] : 0.0f;
        bd[o] = (b0 - mu[o]) * s + bd[o];
    }
    if (conv->n_in >= 3) {
        conv->in[2] = bn->in[2];
    } else {
        conv->in[conv->n_in++] = bn->in[2]; /* in[] has room: allocated n_input + 1 */
    }
    conv->out[0] = bn->out[0];
    g->values[bn->out[0]].producer = (int)(conv - g->nodes);
    bn->dead = 1;
}

static void aas_onnx_fuse_act(aas_onnx_t *g, aas_onnx_node_t *n, aas_onnx_node_t *act) {
    aas_onnx_post_t p = {.alg = dnnl_alg_kind_undef};
    if (!strcmp(act->type, "Relu")) {
        p.alg = dnnl_eltwise_relu;
    } else if (!strcmp(act->type, "LeakyRelu")) {
        p.alg = dnnl_eltwise_relu;
        p.alpha = aas_onnx_attr_float(act, "alpha", 0.01f);
    } else if (!strcmp(act->type, "Sigmoid")) {
        p.alg = dnnl_eltwise_logistic;
    } else if (!strcmp(act->type, "Tanh")) {
        p.alg = dnnl_eltwise_tanh;
    } else if (!strcmp(act->type, "Clip")) {
        p.alg = dnnl_eltwise_clip;
        p.alpha = -INFINITY;
        p.beta = INFINITY;
        if (act->opset < 11) {
            p.alpha = aas_onnx_attr_float(act, "min", -INFINITY);
            p.beta = aas_onnx_attr_float(act, "max", INFINITY);
        } else {
            for (int k = 1; k < act->n_in && k < 3; k++) {
                if (act->in[k] < 0) continue;
                const aas_onnx_tensor_t *t = g->values[act->in[k]].init;
                if (!t || t->dtype != AAS_ONNX_FLOAT || aas_onnx_numel(t) != 1) return;
                *(k == 1 ? &p.alpha : &p.beta) = *(const float *)t->data;
            }
        }
    }
    if (p.alg == dnnl_alg_kind_undef || act->n_in < 1 || act->n_out < 1 || act->out[0] < 0)
        return;
    n->post = p;
    n->out[0] = act->out[0];
    g->values[act->out[0]].producer = (int)(n - g->nodes);
    act->dead = 1;
}

aas_err_t aas_onnx_fuse(aas_onnx_t *g, char *errstr, size_t errstr_size) {
    for (int pass = 0; pass < 2; pass++) {
        int *readers = aas_onnx_readers(g);
        if (!readers)
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        for (int i = 0; i < g->n_nodes; i++) {
            aas_onnx_node_t *n = &g->nodes[i];
            if (n->dead || *n->domain || n->n_out < 1 || n->out[0] < 0) continue;
            int conv = !strcmp(n->type, "Conv");
            if (!conv && strcmp(n->type, "Gemm") && strcmp(n->type, "MatMul")) continue;
            for (int k = 1; k < n->n_out; k++)
                if (n->out[k] >= 0) goto next;
            int y = n->out[0];
            if (readers[y] != 1 || g->values[y].is_output) continue;
            aas_onnx_node_t *r = aas_onnx_reader(g, y);
            if (!r || *r->domain || r->in[0] != y) continue;
            if (pass == 0 && conv && !strcmp(r->type, "BatchNormalization"))
                aas_onnx_fold_bn(g, n, r, readers);
            else if (pass == 1 && n->post.alg == dnnl_alg_kind_undef)
                aas_onnx_fuse_act(g, n, r);
        next:;
        }
        free(readers);
    }
    return AAS_ERR_OK;
}
