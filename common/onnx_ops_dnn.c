/*
 * onnx_ops_dnn.c - the compute-heavy ONNX ops on oneDNN (v2 C API):
 *  - Gemm: the serving shape (constant B, bias C of N, alpha = beta = 1,
 *    no transposed A: how PyTorch exports nn.Linear) is an inner product
 *    exactly like the native AASMLP1 layers, weights reordered once per
 *    graph into the layout the primitive wants, an activation fused as a
 *    post-op (onnx_fuse.c).  Any other Gemm is a matmul primitive with
 *    strided (transposed) operands, alpha and beta * C applied in C.
 *  - MatMul: numpy-broadcast batched matmul primitive.
 *  - Conv (1-3 spatial dims, groups, pads, strides, dilations, auto_pad):
 *    convolution primitive, bias and fused activation.
 *  - MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool: pooling.
 *  - BatchNormalization (when not folded into a Conv), Softmax, LogSoftmax:
 *    plain C, memory-bound and small next to the ops above.
 * Every primitive is created when a plan is made (per input shape set) and
 * only executed afterwards; buffers are bound per run with
 * dnnl_memory_set_data_handle, so nothing is allocated while running.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnn.h"
#include "gemm_small.h"
#include "onnx_int.h"

#define AAS_ONNX_DNN_MAX_ARGS 10

/* ---- reordered weights, shared by every plan of a graph ---- */

typedef struct aas_onnx_wentry {
    struct aas_onnx_wentry *next;
    const void *src;            /* the initializer's data */
    dnnl_memory_desc_t md;      /* the layout it was reordered to */
    dnnl_memory_t mem;
    void *buf;
    size_t bytes;
} aas_onnx_wentry_t;

/* Weights packed for gemm_small.c, one per (B, C, transB, activation):
 * every plan of 1..32 rows shares them. */
typedef struct aas_onnx_pentry {
    struct aas_onnx_pentry *next;
    const void *w, *bias;
    int trans_b;
    aas_onnx_post_t post;
    aas_gemm_small_t *g;
} aas_onnx_pentry_t;

struct aas_onnx_wcache_s {
    aas_onnx_wentry_t *head;
    aas_onnx_pentry_t *packed;
};

void aas_onnx_wcache_free(aas_onnx_t *g) {
    if (!g->wcache) return;
    for (aas_onnx_wentry_t *e = g->wcache->head, *n; e; e = n) {
        n = e->next;
        dnnl_memory_destroy(e->mem);
        free(e->buf);
        free(e);
    }
    for (aas_onnx_pentry_t *e = g->wcache->packed, *n; e; e = n) {
        n = e->next;
        aas_gemm_small_free(e->g);
        free(e);
    }
    free(g->wcache);
    g->wcache = NULL;
}

size_t aas_onnx_wcache_bytes(const aas_onnx_t *g) {
    size_t b = 0;
    if (g->wcache) {
        for (const aas_onnx_wentry_t *e = g->wcache->head; e; e = e->next) b += e->bytes;
        for (const aas_onnx_pentry_t *e = g->wcache->packed; e; e = e->next)
            b += aas_gemm_small_bytes(e->g);
    }
    return b;
}

/* The packed weights of a Gemm whose B (and C) are initializers of the
 * graph: made once, borrowed by every plan. */
static aas_err_t aas_onnx_packed_get(aas_onnx_kernel_t *k, int64_t kk, int64_t nn,
                                     const void *w, int trans_b, const void *bias,
                                     aas_gemm_small_t **out, char *errstr, size_t errstr_size) {
    aas_onnx_t *g = k->graph;
    const aas_onnx_post_t *post = &k->node->post;
    if (g->wcache)
        for (aas_onnx_pentry_t *e = g->wcache->packed; e; e = e->next)
            if (e->w == w && e->bias == bias && e->trans_b == trans_b &&
                e->post.alg == post->alg && e->post.alpha == post->alpha &&
                e->post.beta == post->beta) {
                *out = e->g;
                return AAS_ERR_OK;
            }
    if (!g->wcache && !(g->wcache = calloc(1, sizeof(*g->wcache))))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    aas_onnx_pentry_t *e = calloc(1, sizeof(*e));
    if (!e) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    aas_err_t err = aas_gemm_small_new(kk, nn, w, trans_b, bias, post->alg, post->alpha,
                                       post->beta, &e->g, errstr, errstr_size);
    if (err) {
        free(e);
        return err;
    }
    *e = (aas_onnx_pentry_t){.next = g->wcache->packed, .w = w, .bias = bias,
                             .trans_b = trans_b, .post = *post, .g = e->g};
    g->wcache->packed = e;
    *out = e->g;
    return AAS_ERR_OK;
}

/* The data of user tensor `user_md` at `src` in the layout `want`: reordered
 * once and cached when cache is set (src is an initializer of the graph),
 * else into a memory the caller owns (*owned). */
static aas_err_t aas_onnx_weights(aas_onnx_kernel_t *k, const dnnl_memory_desc_t *user_md,
                                  const void *src, const dnnl_memory_desc_t *want, int cache,
                                  dnnl_memory_t *out, dnnl_memory_t *owned, void **owned_buf,
                                  char *errstr, size_t errstr_size) {
    aas_onnx_t *g = k->graph;
    if (cache && g->wcache)
        for (aas_onnx_wentry_t *e = g->wcache->head; e; e = e->next)
            if (e->src == src && dnnl_memory_desc_equal(&e->md, want)) {
                *out = e->mem;
                return AAS_ERR_OK;
            }
    size_t bytes = dnnl_memory_desc_get_size(want);
    void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    dnnl_memory_t user = NULL, mem = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    aas_err_t err;
    if (!buf) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if ((err = AAS_DNN_CHECK(dnnl_memory_create(&user, user_md, k->engine, (void *)src))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_create(&mem, want, k->engine, buf))) ||
        (err = AAS_DNN_CHECK(dnnl_reorder_primitive_desc_create(&rpd, user_md, k->engine, want,
                                                                 k->engine, NULL))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_create(&r, rpd))))
        goto done;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, mem}};
    if ((err = AAS_DNN_CHECK(dnnl_primitive_execute(r, k->stream, 2, args))) ||
        (err = AAS_DNN_CHECK(dnnl_stream_wait(k->stream))))
        goto done;
    if (cache) {
        aas_onnx_wentry_t *e = calloc(1, sizeof(*e));
        if (!g->wcache && !(g->wcache = calloc(1, sizeof(*g->wcache)))) {
            free(e);
            e = NULL;
        }
        if (!e) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
            goto done;
        }
        *e = (aas_onnx_wentry_t){.next = g->wcache->head, .src = src, .md = *want, .mem = mem,
                                 .buf = buf, .bytes = bytes};
        g->wcache->head = e;
    } else {
        *owned = mem;
        *owned_buf = buf;
    }
    *out = mem;
    mem = NULL;
    buf = NULL;
done:
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (user) dnnl_memory_destroy(user);
    if (mem) dnnl_memory_destroy(mem);
    free(buf);
    return err;
}

/* ---- a primitive and how its arguments bind to the kernel's tensors ---- */

enum { AAS_BIND_FIXED = 0, AAS_BIND_IN = 1, AAS_BIND_OUT = 2 };

typedef struct {
    dnnl_primitive_t prim;
    dnnl_exec_arg_t args[AAS_ONNX_DNN_MAX_ARGS];
    int bind[AAS_ONNX_DNN_MAX_ARGS], bind_idx[AAS_ONNX_DNN_MAX_ARGS];
    int nargs;
    dnnl_memory_t owned[AAS_ONNX_DNN_MAX_ARGS];
    void *owned_buf[AAS_ONNX_DNN_MAX_ARGS];
    int n_owned;
    void *scratch;
    /* Conv and pools compute in the blocked layout oneDNN's jit kernels
     * want (nChw8c on AVX2); the graph's tensors are plain (NCHW), so the
     * input is reordered in and the output out around the primitive. */
    dnnl_primitive_t pre, post;
    dnnl_memory_t pre_user, post_user;   /* bound to in[0] / out[0] */
    dnnl_exec_arg_t pre_args[2], post_args[2];
    /* Conv with few input channels: onnx_conv_direct.c */
    aas_onnx_conv_direct_state_t *direct;
    /* Gemm of 1..32 rows: gemm_small.c; borrowed from the graph's cache
     * when small_owned is 0 */
    aas_gemm_small_t *small;
    int small_owned;
    /* Gemm's general path: out = alpha * (A' B') + beta * C, post-op in C */
    int gemm_general;
    float alpha, beta;
    int64_t m, n;
} aas_onnx_dnn_t;

static void aas_onnx_dnn_release(void *state) {
    aas_onnx_dnn_t *s = state;
    if (!s) return;
    if (s->prim) dnnl_primitive_destroy(s->prim);
    if (s->pre) dnnl_primitive_destroy(s->pre);
    if (s->post) dnnl_primitive_destroy(s->post);
    for (int i = 0; i < s->n_owned; i++) {
        if (s->owned[i]) dnnl_memory_destroy(s->owned[i]);
        free(s->owned_buf[i]);
    }
    free(s->scratch);
    aas_onnx_conv_direct_free(s->direct);
    if (s->small_owned) aas_gemm_small_free(s->small);
    free(s);
}

/* A memory for argument `arg` of pd's descriptor `md`, bound to kernel
 * tensor (bind, idx) at run time or fixed (data). */
static aas_err_t aas_onnx_dnn_arg(aas_onnx_kernel_t *k, aas_onnx_dnn_t *s, int arg,
                                  const dnnl_memory_desc_t *md, int bind, int idx,
                                  void *data, char *errstr, size_t errstr_size) {
    dnnl_memory_t mem;
    aas_err_t err = AAS_DNN_CHECK(dnnl_memory_create(&mem, md, k->engine,
                                                     data ? data : DNNL_MEMORY_NONE));
    if (err) return err;
    s->owned[s->n_owned++] = mem;
    s->args[s->nargs] = (dnnl_exec_arg_t){arg, mem};
    s->bind[s->nargs] = bind;
    s->bind_idx[s->nargs++] = idx;
    return AAS_ERR_OK;
}

static aas_err_t aas_onnx_dnn_fixed(aas_onnx_dnn_t *s, int arg, dnnl_memory_t mem) {
    s->args[s->nargs] = (dnnl_exec_arg_t){arg, mem};
    s->bind[s->nargs++] = AAS_BIND_FIXED;
    return AAS_ERR_OK;
}

/* Attributes every primitive here gets: user scratchpad, and the node's
 * fused activation. */
static aas_err_t aas_onnx_dnn_attr(const aas_onnx_node_t *n, dnnl_primitive_attr_t *out,
                                   char *errstr, size_t errstr_size) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    aas_err_t err;
    if ((err = AAS_DNN_CHECK(dnnl_primitive_attr_create(&attr))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_attr_set_scratchpad_mode(
             attr, dnnl_scratchpad_mode_user))))
        goto fail;
    if (n->post.alg != dnnl_alg_kind_undef) {
        if ((err = AAS_DNN_CHECK(dnnl_post_ops_create(&po))) ||
            (err = AAS_DNN_CHECK(dnnl_post_ops_append_eltwise(po, 1.0f /* scale */,
                                                              n->post.alg, n->post.alpha,
                                                              n->post.beta))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_attr_set_post_ops(attr, po))))
            goto fail;
        dnnl_post_ops_destroy(po);
    }
    *out = attr;
    return AAS_ERR_OK;
fail:
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return err;
}

/* Create the primitive of pd and its scratchpad. */
static aas_err_t aas_onnx_dnn_prim(aas_onnx_kernel_t *k, aas_onnx_dnn_t *s,
                                   const_dnnl_primitive_desc_t pd, char *errstr,
                                   size_t errstr_size) {
    aas_err_t err = AAS_DNN_CHECK(dnnl_primitive_create(&s->prim, pd));
    if (err) return err;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sz) {
        if (!(s->scratch = aligned_alloc(64, (sz + 63) / 64 * 64)))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        return aas_onnx_dnn_arg(k, s, DNNL_ARG_SCRATCHPAD, smd, AAS_BIND_FIXED, 0, s->scratch,
                                errstr, errstr_size);
    }
    return AAS_ERR_OK;
}

static aas_err_t aas_onnx_dnn_exec(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    aas_onnx_dnn_t *s = k->state;
    aas_err_t err;
    if (s->pre &&
        ((err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(s->pre_user, k->in[0]->data))) ||
         (err = AAS_DNN_CHECK(dnnl_primitive_execute(s->pre, k->stream, 2, s->pre_args)))))
        return err;
    if (s->post &&
        (err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(s->post_user, k->out[0]->data))))
        return err;
    for (int i = 0; i < s->nargs; i++) {
        if (s->bind[i] == AAS_BIND_FIXED) continue;
        void *p = s->bind[i] == AAS_BIND_IN ? k->in[s->bind_idx[i]]->data
                                            : k->out[s->bind_idx[i]]->data;
        aas_err_t err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(s->args[i].memory, p));
        if (err) return err;
    }
    if ((err = AAS_DNN_CHECK(dnnl_primitive_execute(s->prim, k->stream, s->nargs, s->args))))
        return err;
    if (s->post &&
        (err = AAS_DNN_CHECK(dnnl_primitive_execute(s->post, k->stream, 2, s->post_args))))
        return err;
    return AAS_DNN_CHECK(dnnl_stream_wait(k->stream));
}

/* Bind argument `arg` (SRC from in[0], or DST to out[0]) whose tensor is
 * plain `user` while the primitive wants `want`: directly when they are
 * the same layout, else through a buffer of layout `want` and a reorder
 * run before (SRC) or after (DST) the primitive. */
static aas_err_t aas_onnx_dnn_layout(aas_onnx_kernel_t *k, aas_onnx_dnn_t *s, int arg,
                                     const dnnl_memory_desc_t *user,
                                     const dnnl_memory_desc_t *want, char *errstr,
                                     size_t errstr_size) {
    int src = arg == DNNL_ARG_SRC;
    if (dnnl_memory_desc_equal(user, want))
        return aas_onnx_dnn_arg(k, s, arg, user, src ? AAS_BIND_IN : AAS_BIND_OUT, 0, NULL,
                                errstr, errstr_size);
    size_t bytes = dnnl_memory_desc_get_size(want);
    void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (!buf) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    s->owned_buf[s->n_owned] = buf;
    aas_err_t err = aas_onnx_dnn_arg(k, s, arg, want, AAS_BIND_FIXED, 0, buf, errstr,
                                     errstr_size);
    if (err) {
        free(buf);
        s->owned_buf[s->n_owned] = NULL;
        return err;
    }
    dnnl_memory_t blk = s->args[s->nargs - 1].memory, usr;
    if ((err = AAS_DNN_CHECK(dnnl_memory_create(&usr, user, k->engine, DNNL_MEMORY_NONE))))
        return err;
    s->owned[s->n_owned++] = usr;
    dnnl_primitive_desc_t rpd = NULL;
    err = AAS_DNN_CHECK(dnnl_reorder_primitive_desc_create(&rpd, src ? user : want, k->engine,
                                                           src ? want : user, k->engine, NULL));
    if (!err) err = AAS_DNN_CHECK(dnnl_primitive_create(src ? &s->pre : &s->post, rpd));
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (err) return err;
    if (src) {
        s->pre_user = usr;
        s->pre_args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, usr};
        s->pre_args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, blk};
    } else {
        s->post_user = usr;
        s->post_args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, blk};
        s->post_args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, usr};
    }
    return AAS_ERR_OK;
}

/* The blocked layout for an f32 activation of `rank` dims (8 channels a
 * block, what oneDNN's AVX2 kernels use). */
static dnnl_format_tag_t aas_onnx_blocked_tag(int rank) {
    return rank == 3 ? dnnl_aBc8b : rank == 4 ? dnnl_aBcd8b : dnnl_aBcde8b;
}

static aas_err_t aas_onnx_dnn_new(aas_onnx_kernel_t *k, aas_onnx_dnn_t **out, char *errstr,
                                  size_t errstr_size) {
    if (!(*out = calloc(1, sizeof(**out))))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    k->state = *out;
    return AAS_ERR_OK;
}

static int aas_onnx_is_f32(const aas_onnx_tensor_t *t) {
    return t && t->dtype == AAS_ONNX_FLOAT;
}

static aas_err_t aas_onnx_need_f32(const aas_onnx_kernel_t *k, int n, char *errstr,
                                   size_t errstr_size) {
    for (int i = 0; i < n && i < k->n_in; i++)
        if (k->in[i] && !aas_onnx_is_f32(k->in[i]))
            return aas_onnx_node_err(k->node, errstr, errstr_size,
                                     "input %d is %s; aas runs this op on float32 only", i,
                                     aas_onnx_dtype_name(k->in[i]->dtype));
    return AAS_ERR_OK;
}

static void aas_onnx_post_apply(const aas_onnx_post_t *p, float *y, int64_t n) {
    if (p->alg == dnnl_alg_kind_undef) return;
    for (int64_t i = 0; i < n; i++) {
        float x = y[i];
        switch (p->alg) {
        case dnnl_eltwise_relu: y[i] = x > 0 ? x : x * p->alpha; break;
        case dnnl_eltwise_logistic: y[i] = 1.0f / (1.0f + expf(-x)); break;
        case dnnl_eltwise_tanh: y[i] = tanhf(x); break;
        case dnnl_eltwise_clip: y[i] = x < p->alpha ? p->alpha : x > p->beta ? p->beta : x; break;
        default: break;
        }
    }
}

/* ---- Gemm ---- */

static aas_err_t aas_onnx_gemm_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_node_t *n = k->node;
    aas_err_t err;
    if (k->n_in < 2 || !k->in[0] || !k->in[1])
        return aas_onnx_node_err(n, errstr, errstr_size, "needs inputs A and B");
    if ((err = aas_onnx_need_f32(k, 3, errstr, errstr_size))) return err;
    const aas_onnx_tensor_t *a = k->in[0], *b = k->in[1];
    const aas_onnx_tensor_t *c = k->n_in > 2 ? k->in[2] : NULL;
    if (a->rank != 2 || b->rank != 2)
        return aas_onnx_node_err(n, errstr, errstr_size, "A and B must be 2-D, got rank %d and %d",
                                 a->rank, b->rank);
    int ta = (int)aas_onnx_attr_int(n, "transA", 0), tb = (int)aas_onnx_attr_int(n, "transB", 0);
    float alpha = aas_onnx_attr_float(n, "alpha", 1.0f), beta = aas_onnx_attr_float(n, "beta", 1.0f);
    int64_t m = ta ? a->dims[1] : a->dims[0], kk = ta ? a->dims[0] : a->dims[1];
    int64_t kb = tb ? b->dims[1] : b->dims[0], nn = tb ? b->dims[0] : b->dims[1];
    if (kk != kb)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "A is %lldx%lld and B %lldx%lld (transA=%d, transB=%d): inner "
                                 "dimensions %lld and %lld differ", (long long)a->dims[0],
                                 (long long)a->dims[1], (long long)b->dims[0],
                                 (long long)b->dims[1], ta, tb, (long long)kk, (long long)kb);
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = AAS_ONNX_FLOAT;
    y->rank = 2;
    y->dims[0] = m;
    y->dims[1] = nn;
    if (c) {
        aas_onnx_tensor_t bc;
        if (aas_onnx_broadcast(c, y, &bc) || bc.rank != 2 || bc.dims[0] != m || bc.dims[1] != nn)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "C does not broadcast to the %lldx%lld output",
                                     (long long)m, (long long)nn);
    }
    aas_onnx_dnn_t *s;
    if ((err = aas_onnx_dnn_new(k, &s, errstr, errstr_size))) return err;
    s->alpha = alpha;
    s->beta = beta;
    s->m = m;
    s->n = nn;
    int64_t cn = c ? aas_onnx_numel(c) : 0;
    int fast = !ta && b->data && alpha == 1.0f && (!c || (c->data && beta == 1.0f && cn == nn &&
                                                         (c->rank == 1 || c->dims[0] == 1)));
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if ((err = aas_onnx_dnn_attr(n, &attr, errstr, errstr_size))) return err;
    if (m == 0 || nn == 0 || kk == 0) {
        /* oneDNN refuses empty shapes: run in C (an empty or zero product) */
        s->gemm_general = 2;
        dnnl_primitive_attr_destroy(attr);
        return AAS_ERR_OK;
    }
    int cache = k->n_in > 1 && k->node->in[1] >= 0 && k->graph->values[k->node->in[1]].init;
    if (fast && aas_gemm_small_fits(m)) {
        dnnl_primitive_attr_destroy(attr);
        /* B and C from the graph's initializers: packed once for all plans */
        int shared = cache && (!c || (k->node->in[2] >= 0 &&
                                      k->graph->values[k->node->in[2]].init));
        if (shared)
            return aas_onnx_packed_get(k, kk, nn, b->data, tb, c ? c->data : NULL,
                                       &s->small, errstr, errstr_size);
        s->small_owned = 1;
        return aas_gemm_small_new(kk, nn, b->data, tb, c ? c->data : NULL, n->post.alg,
                                  n->post.alpha, n->post.beta, &s->small, errstr, errstr_size);
    }
    if (fast) {
        dnnl_memory_desc_t src_md, w_user, dst_md, b_md;
        dnnl_dims_t sd = {m, kk}, wd = {nn, kk}, dd = {m, nn}, bd = {nn};
        dnnl_memory_t wmem;
        if ((err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dnnl_f32, dnnl_nc))) ||
            (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&w_user, 2, wd, dnnl_f32,
                                                              tb ? dnnl_oi : dnnl_io))) ||
            (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_nc))) ||
            (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x))) ||
            (err = aas_dnn_inner_product_pd(&pd, &src_md, nn, kk, dnnl_f32, c ? &b_md : NULL,
                                            &dst_md, attr, k->engine, 1 /* prefer oi */,
                                            errstr, errstr_size)))
            goto done;
        const dnnl_memory_desc_t *w_want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        if ((err = aas_onnx_dnn_prim(k, s, pd, errstr, errstr_size)) ||
            (err = aas_onnx_weights(k, &w_user, b->data, w_want, cache, &wmem,
                                    &s->owned[s->n_owned], &s->owned_buf[s->n_owned], errstr,
                                    errstr_size)))
            goto done;
        if (!cache) s->n_owned++;
        aas_onnx_dnn_fixed(s, DNNL_ARG_WEIGHTS, wmem);
        if ((err = aas_onnx_dnn_arg(k, s, DNNL_ARG_SRC, &src_md, AAS_BIND_IN, 0, NULL, errstr,
                                    errstr_size)) ||
            (err = aas_onnx_dnn_arg(k, s, DNNL_ARG_DST, &dst_md, AAS_BIND_OUT, 0, NULL, errstr,
                                    errstr_size)))
            goto done;
        if (c && (err = aas_onnx_dnn_arg(k, s, DNNL_ARG_BIAS, &b_md, AAS_BIND_IN, 2, NULL,
                                         errstr, errstr_size)))
            goto done;
    } else {
        /* matmul on strided views: a transposed operand is a stride swap */
        s->gemm_general = 1;
        dnnl_memory_desc_t a_md, b_md, d_md;
        dnnl_dims_t ad = {m, kk}, bdm = {kk, nn}, dd = {m, nn};
        dnnl_dims_t as = {ta ? 1 : kk, ta ? m : 1}, bs = {tb ? 1 : nn, tb ? kk : 1};
        dnnl_matmul_desc_t md;
        dnnl_primitive_attr_t plain = NULL;
        /* the activation goes after beta * C, so it is applied in C */
        if ((err = AAS_DNN_CHECK(dnnl_primitive_attr_create(&plain))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_attr_set_scratchpad_mode(
                 plain, dnnl_scratchpad_mode_user))) ||
            (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_strides(&a_md, 2, ad, dnnl_f32, as))) ||
            (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_strides(&b_md, 2, bdm, dnnl_f32, bs))) ||
            (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&d_md, 2, dd, dnnl_f32, dnnl_ab))) ||
            (err = AAS_DNN_CHECK(dnnl_matmul_desc_init(&md, &a_md, &b_md, NULL, &d_md))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &md, plain, k->engine, NULL))) ||
            (err = aas_onnx_dnn_prim(k, s, pd, errstr, errstr_size)) ||
            (err = aas_onnx_dnn_arg(k, s, DNNL_ARG_SRC, &a_md, AAS_BIND_IN, 0, NULL, errstr,
                                    errstr_size)) ||
            (err = aas_onnx_dnn_arg(k, s, DNNL_ARG_WEIGHTS, &b_md, AAS_BIND_IN, 1, NULL, errstr,
                                    errstr_size)) ||
            (err = aas_onnx_dnn_arg(k, s, DNNL_ARG_DST, &d_md, AAS_BIND_OUT, 0, NULL, errstr,
                                    errstr_size))) {
            if (plain) dnnl_primitive_attr_destroy(plain);
            goto done;
        }
        dnnl_primitive_attr_destroy(plain);
    }
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return err;
}

static aas_err_t aas_onnx_gemm_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    aas_onnx_dnn_t *s = k->state;
    float *y = k->out[0]->data;
    int64_t total = s->m * s->n;
    if (s->small) {
        aas_gemm_small(s->small, k->in[0]->data, s->m, y);
        return AAS_ERR_OK;
    }
    if (s->gemm_general == 2) {
        memset(y, 0, (size_t)total * sizeof(float));
    } else {
        aas_err_t err = aas_onnx_dnn_exec(k, errstr, errstr_size);
        if (err) return err;
        if (!s->gemm_general) return AAS_ERR_OK;
    }
    const aas_onnx_tensor_t *c = k->n_in > 2 ? k->in[2] : NULL;
    if (s->alpha != 1.0f)
        for (int64_t i = 0; i < total; i++) y[i] *= s->alpha;
    if (c && s->beta != 0.0f) {
        const float *cd = c->data;
        int64_t cr = c->rank == 2 ? c->dims[0] : 1;
        int64_t cc = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        for (int64_t i = 0; i < s->m; i++)
            for (int64_t j = 0; j < s->n; j++)
                y[i * s->n + j] += s->beta * cd[(cr == 1 ? 0 : i) * cc + (cc == 1 ? 0 : j)];
    }
    aas_onnx_post_apply(&k->node->post, y, total);
    return AAS_ERR_OK;
}

/* ---- MatMul ---- */

static aas_err_t aas_onnx_matmul_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_node_t *n = k->node;
    aas_err_t err;
    if (k->n_in != 2 || !k->in[0] || !k->in[1])
        return aas_onnx_node_err(n, errstr, errstr_size, "needs inputs A and B");
    if ((err = aas_onnx_need_f32(k, 2, errstr, errstr_size))) return err;
    const aas_onnx_tensor_t *a = k->in[0], *b = k->in[1];
    if (a->rank < 1 || b->rank < 1)
        return aas_onnx_node_err(n, errstr, errstr_size, "inputs must have rank >= 1");
    /* promote 1-D operands, broadcast the batch dims to a common rank */
    int64_t ad[AAS_ONNX_MAX_RANK + 1], bd[AAS_ONNX_MAX_RANK + 1];
    int ar = a->rank, br = b->rank;
    if (ar == 1) { ad[0] = 1; ad[1] = a->dims[0]; ar = 2; }
    else memcpy(ad, a->dims, sizeof(int64_t) * (size_t)ar);
    if (br == 1) { bd[0] = b->dims[0]; bd[1] = 1; br = 2; }
    else memcpy(bd, b->dims, sizeof(int64_t) * (size_t)br);
    int r = ar > br ? ar : br;
    if (r > 6) return aas_onnx_node_err(n, errstr, errstr_size, "rank %d is too high", r);
    dnnl_dims_t sa, sb, sd;
    for (int i = 0; i < r; i++) {
        sa[i] = i < r - ar ? 1 : ad[i - (r - ar)];
        sb[i] = i < r - br ? 1 : bd[i - (r - br)];
    }
    if (sa[r - 1] != sb[r - 2])
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "inner dimensions differ: A has %lld columns, B %lld rows",
                                 (long long)sa[r - 1], (long long)sb[r - 2]);
    for (int i = 0; i < r - 2; i++) {
        if (sa[i] != sb[i] && sa[i] != 1 && sb[i] != 1)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "batch dimension %d does not broadcast (%lld vs %lld)", i,
                                     (long long)sa[i], (long long)sb[i]);
        sd[i] = sa[i] == 1 ? sb[i] : sa[i];
    }
    sd[r - 2] = sa[r - 2];
    sd[r - 1] = sb[r - 1];
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = AAS_ONNX_FLOAT;
    y->rank = 0;
    int64_t total = 1;
    for (int i = 0; i < r; i++) {
        if (i == r - 2 && a->rank == 1) continue;
        if (i == r - 1 && b->rank == 1) continue;
        if (i < r - 2 && i < r - (a->rank > b->rank ? a->rank : b->rank)) continue;
        y->dims[y->rank++] = sd[i];
    }
    for (int i = 0; i < r; i++) total *= sd[i];
    aas_onnx_dnn_t *s;
    if ((err = aas_onnx_dnn_new(k, &s, errstr, errstr_size))) return err;
    if (!total || !sa[r - 1]) {
        s->gemm_general = 2;   /* empty: zeros */
        s->m = 1;
        s->n = total;
        return AAS_ERR_OK;
    }
    dnnl_memory_desc_t a_md, b_md, d_md;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_format_tag_t tag = r == 2 ? dnnl_ab : r == 3 ? dnnl_abc : r == 4 ? dnnl_abcd
                          : r == 5 ? dnnl_abcde : dnnl_abcdef;
    if (!(err = aas_onnx_dnn_attr(n, &attr, errstr, errstr_size)) &&
        !(err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&a_md, r, sa, dnnl_f32, tag))) &&
        !(err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&b_md, r, sb, dnnl_f32, tag))) &&
        !(err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&d_md, r, sd, dnnl_f32, tag))) &&
        !(err = AAS_DNN_CHECK(dnnl_matmul_desc_init(&md, &a_md, &b_md, NULL, &d_md))) &&
        !(err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &md, attr, k->engine, NULL))) &&
        !(err = aas_onnx_dnn_prim(k, s, pd, errstr, errstr_size)) &&
        !(err = aas_onnx_dnn_arg(k, s, DNNL_ARG_SRC, &a_md, AAS_BIND_IN, 0, NULL, errstr,
                                 errstr_size)) &&
        !(err = aas_onnx_dnn_arg(k, s, DNNL_ARG_WEIGHTS, &b_md, AAS_BIND_IN, 1, NULL, errstr,
                                 errstr_size)))
        err = aas_onnx_dnn_arg(k, s, DNNL_ARG_DST, &d_md, AAS_BIND_OUT, 0, NULL, errstr,
                               errstr_size);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return err;
}

static aas_err_t aas_onnx_matmul_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    aas_onnx_dnn_t *s = k->state;
    if (s->gemm_general == 2) {
        memset(k->out[0]->data, 0, k->out[0]->nbytes);
        aas_onnx_post_apply(&k->node->post, k->out[0]->data, aas_onnx_numel(k->out[0]));
        return AAS_ERR_OK;
    }
    return aas_onnx_dnn_exec(k, errstr, errstr_size);
}

/* ---- windows: Conv and pools share pads, strides, dilations, auto_pad ---- */

typedef struct {
    int sp;                          /* spatial dims */
    int64_t in[3], kernel[3], stride[3], dil[3], pad_l[3], pad_r[3], out[3];
} aas_onnx_win_t;

static aas_err_t aas_onnx_win(const aas_onnx_node_t *n, const aas_onnx_tensor_t *x,
                              const int64_t *kernel, int ceil_mode, aas_onnx_win_t *w,
                              char *errstr, size_t errstr_size) {
    const int64_t *v;
    size_t c;
    w->sp = x->rank - 2;
    if (w->sp < 1 || w->sp > 3)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "input must be [N, C, d1..dk] with 1 to 3 spatial dims, got "
                                 "rank %d", x->rank);
    for (int i = 0; i < w->sp; i++) {
        w->kernel[i] = kernel[i];
        w->in[i] = x->dims[i + 2];
        w->stride[i] = w->dil[i] = 1;
        w->pad_l[i] = w->pad_r[i] = 0;
        if (kernel[i] < 1)
            return aas_onnx_node_err(n, errstr, errstr_size, "kernel dimension %d is %lld", i,
                                     (long long)kernel[i]);
    }
    if ((c = aas_onnx_attr_ints(n, "strides", &v))) {
        if ((int)c != w->sp) return aas_onnx_node_err(n, errstr, errstr_size, "strides has %zu values for %d spatial dims", c, w->sp);
        for (int i = 0; i < w->sp; i++) w->stride[i] = v[i];
    }
    if ((c = aas_onnx_attr_ints(n, "dilations", &v))) {
        if ((int)c != w->sp) return aas_onnx_node_err(n, errstr, errstr_size, "dilations has %zu values for %d spatial dims", c, w->sp);
        for (int i = 0; i < w->sp; i++) w->dil[i] = v[i];
    }
    for (int i = 0; i < w->sp; i++)
        if (w->stride[i] < 1 || w->dil[i] < 1)
            return aas_onnx_node_err(n, errstr, errstr_size, "strides and dilations must be >= 1");
    const char *ap = aas_onnx_attr_str(n, "auto_pad", "NOTSET");
    int same_upper = !strcmp(ap, "SAME_UPPER"), same_lower = !strcmp(ap, "SAME_LOWER");
    if (!same_upper && !same_lower && strcmp(ap, "VALID") && strcmp(ap, "NOTSET"))
        return aas_onnx_node_err(n, errstr, errstr_size, "auto_pad '%s' is not an ONNX value", ap);
    if (!strcmp(ap, "NOTSET") && (c = aas_onnx_attr_ints(n, "pads", &v))) {
        if ((int)c != 2 * w->sp) return aas_onnx_node_err(n, errstr, errstr_size, "pads has %zu values for %d spatial dims", c, w->sp);
        for (int i = 0; i < w->sp; i++) {
            w->pad_l[i] = v[i];
            w->pad_r[i] = v[i + w->sp];
            if (v[i] < 0 || v[i + w->sp] < 0)
                return aas_onnx_node_err(n, errstr, errstr_size, "negative pads");
        }
    }
    for (int i = 0; i < w->sp; i++) {
        int64_t in = x->dims[i + 2], ek = (w->kernel[i] - 1) * w->dil[i] + 1;
        if (same_upper || same_lower) {
            int64_t out = (in + w->stride[i] - 1) / w->stride[i];
            int64_t total = (out - 1) * w->stride[i] + ek - in;
            if (total < 0) total = 0;
            w->pad_l[i] = same_upper ? total / 2 : total - total / 2;
            w->pad_r[i] = total - w->pad_l[i];
            w->out[i] = out;
            continue;
        }
        int64_t span = in + w->pad_l[i] + w->pad_r[i] - ek;
        if (span < 0)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "the window (%lld) is larger than padded input dim %d (%lld)",
                                     (long long)ek, i, (long long)(in + w->pad_l[i] + w->pad_r[i]));
        w->out[i] = (ceil_mode ? (span + w->stride[i] - 1) / w->stride[i] : span / w->stride[i]) + 1;
        /* ceil mode: the last window must start inside the input or left pad */
        if (ceil_mode && (w->out[i] - 1) * w->stride[i] >= in + w->pad_l[i]) w->out[i]--;
    }
    return AAS_ERR_OK;
}

static void aas_onnx_win_dims(const aas_onnx_win_t *w, dnnl_dims_t strides, dnnl_dims_t dil,
                              dnnl_dims_t pl, dnnl_dims_t pr, dnnl_dims_t kernel) {
    for (int i = 0; i < w->sp; i++) {
        strides[i] = w->stride[i];
        dil[i] = w->dil[i] - 1;   /* oneDNN counts the gaps */
        pl[i] = w->pad_l[i];
        /* right padding oneDNN needs so its output size equals ours (ceil mode) */
        int64_t ek = (w->kernel[i] - 1) * w->dil[i] + 1;
        int64_t need = (w->out[i] - 1) * w->stride[i] + ek - w->in[i] - pl[i];
        pr[i] = need > w->pad_r[i] ? need : w->pad_r[i];
        if (kernel) kernel[i] = w->kernel[i];
    }
}

static dnnl_format_tag_t aas_onnx_tag(int rank) {
    switch (rank) {
    case 3: return dnnl_abc;
    case 4: return dnnl_abcd;
    case 5: return dnnl_abcde;
    default: return dnnl_abcdef;
    }
}

/* ---- Conv ---- */

static aas_err_t aas_onnx_conv_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_node_t *n = k->node;
    aas_err_t err;
    if (k->n_in < 2 || !k->in[0] || !k->in[1])
        return aas_onnx_node_err(n, errstr, errstr_size, "needs inputs X and W");
    if ((err = aas_onnx_need_f32(k, 3, errstr, errstr_size))) return err;
    const aas_onnx_tensor_t *x = k->in[0], *w = k->in[1];
    const aas_onnx_tensor_t *b = k->n_in > 2 ? k->in[2] : NULL;
    int64_t group = aas_onnx_attr_int(n, "group", 1);
    if (w->rank != x->rank || x->rank < 3)
        return aas_onnx_node_err(n, errstr, errstr_size, "W has rank %d, X rank %d", w->rank,
                                 x->rank);
    int64_t oc = w->dims[0], ic = x->dims[1];
    if (group < 1 || ic % group || oc % group || w->dims[1] * group != ic)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "X has %lld channels, W is [%lld, %lld, ...] with group %lld: they "
                                 "do not agree", (long long)ic, (long long)oc,
                                 (long long)w->dims[1], (long long)group);
    if (b && (b->rank != 1 || b->dims[0] != oc))
        return aas_onnx_node_err(n, errstr, errstr_size, "B must have %lld values", (long long)oc);
    const int64_t *ks;
    size_t kn = aas_onnx_attr_ints(n, "kernel_shape", &ks);
    if (kn && (int)kn != x->rank - 2)
        return aas_onnx_node_err(n, errstr, errstr_size, "kernel_shape has %zu values", kn);
    for (size_t i = 0; i < kn; i++)
        if (ks[i] != w->dims[i + 2])
            return aas_onnx_node_err(n, errstr, errstr_size, "kernel_shape disagrees with W");
    aas_onnx_win_t win;
    if ((err = aas_onnx_win(n, x, w->dims + 2, 0, &win, errstr, errstr_size))) return err;
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = AAS_ONNX_FLOAT;
    y->rank = x->rank;
    y->dims[0] = x->dims[0];
    y->dims[1] = oc;
    for (int i = 0; i < win.sp; i++) y->dims[i + 2] = win.out[i];
    aas_onnx_dnn_t *s;
    if ((err = aas_onnx_dnn_new(k, &s, errstr, errstr_size))) return err;
    if (!aas_onnx_numel(y)) {
        s->gemm_general = 2;
        return AAS_ERR_OK;
    }
    /* The first layer of an image CNN (1 to 4 channels): onnx_conv_direct.c */
    if (w->data && (!b || b->data) &&
        aas_onnx_conv_direct_fits(ic, group, win.sp, win.stride, win.dil)) {
        aas_onnx_conv_direct_t cd = {
            .n = x->dims[0], .ic = ic, .ih = x->dims[2], .iw = x->dims[3], .oc = oc,
            .oh = win.out[0], .ow = win.out[1], .kh = win.kernel[0], .kw = win.kernel[1],
            .ph = win.pad_l[0], .pw = win.pad_l[1], .post = n->post};
        return aas_onnx_conv_direct_new(&cd, w->data, b ? b->data : NULL, &s->direct, errstr,
                                        errstr_size);
    }
    int r = x->rank;
    dnnl_dims_t xd, wd, yd, bd = {oc}, st, di, pl, pr;
    memcpy(xd, x->dims, sizeof(int64_t) * (size_t)r);
    memcpy(yd, y->dims, sizeof(int64_t) * (size_t)r);
    int wr = r;
    if (group > 1) {
        wd[0] = group;
        wd[1] = oc / group;
        wd[2] = ic / group;
        for (int i = 2; i < r; i++) wd[i + 1] = w->dims[i];
        wr = r + 1;
    } else {
        memcpy(wd, w->dims, sizeof(int64_t) * (size_t)r);
    }
    aas_onnx_win_dims(&win, st, di, pl, pr, NULL);
    dnnl_memory_desc_t x_md, w_any, w_user, y_md, b_md, x_any, y_any;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t wmem;
    int cache = k->node->in[1] >= 0 && k->graph->values[k->node->in[1]].init;
    if ((err = aas_onnx_dnn_attr(n, &attr, errstr, errstr_size))) return err;
    if ((err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&x_md, r, xd, dnnl_f32, aas_onnx_tag(r)))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&y_md, r, yd, dnnl_f32, aas_onnx_tag(r)))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&w_any, wr, wd, dnnl_f32,
                                                          dnnl_format_tag_any))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&w_user, wr, wd, dnnl_f32,
                                                          aas_onnx_tag(wr)))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&x_any, r, xd, dnnl_f32,
                                                          dnnl_format_tag_any))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&y_any, r, yd, dnnl_f32,
                                                          dnnl_format_tag_any))) ||
        (err = AAS_DNN_CHECK(dnnl_dilated_convolution_forward_desc_init(
             &cd, dnnl_forward_inference, dnnl_convolution_direct, w->data ? &x_any : &x_md,
             &w_any, b ? &b_md : NULL, w->data ? &y_any : &y_md, st, di, pl, pr))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, k->engine, NULL))))
        goto done;
    const dnnl_memory_desc_t *w_want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!w->data) {
        /* W fed at run time: plain layout, no reorder (slower, but right) */
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
        if ((err = AAS_DNN_CHECK(dnnl_dilated_convolution_forward_desc_init(
                 &cd, dnnl_forward_inference, dnnl_convolution_direct, &x_md, &w_user,
                 b ? &b_md : NULL, &y_md, st, di, pl, pr))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, k->engine, NULL))) ||
            (err = aas_onnx_dnn_prim(k, s, pd, errstr, errstr_size)) ||
            (err = aas_onnx_dnn_arg(k, s, DNNL_ARG_WEIGHTS, &w_user, AAS_BIND_IN, 1, NULL,
                                    errstr, errstr_size)))
            goto done;
        wmem = NULL;
    } else if ((err = aas_onnx_dnn_prim(k, s, pd, errstr, errstr_size)) ||
        (err = aas_onnx_weights(k, &w_user, w->data, w_want, cache, &wmem,
                                &s->owned[s->n_owned], &s->owned_buf[s->n_owned], errstr,
                                errstr_size)))
        goto done;
    if (w->data && !cache) s->n_owned++;
    if (wmem) aas_onnx_dnn_fixed(s, DNNL_ARG_WEIGHTS, wmem);
    const dnnl_memory_desc_t *x_want = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                             *y_want = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    if ((err = aas_onnx_dnn_layout(k, s, DNNL_ARG_SRC, &x_md, x_want, errstr, errstr_size)) ||
        (err = aas_onnx_dnn_layout(k, s, DNNL_ARG_DST, &y_md, y_want, errstr, errstr_size)))
        goto done;
    if (b)
        err = aas_onnx_dnn_arg(k, s, DNNL_ARG_BIAS, &b_md, AAS_BIND_IN, 2, NULL, errstr,
                               errstr_size);
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return err;
}

static aas_err_t aas_onnx_dnn_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    aas_onnx_dnn_t *s = k->state;
    if (s->direct) {
        aas_onnx_conv_direct(s->direct, k->in[0]->data, k->out[0]->data);
        return AAS_ERR_OK;
    }
    if (s->gemm_general == 2) {
        memset(k->out[0]->data, 0, k->out[0]->nbytes);
        return AAS_ERR_OK;
    }
    return aas_onnx_dnn_exec(k, errstr, errstr_size);
}

/* ---- pools ---- */

static aas_err_t aas_onnx_pool_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_node_t *n = k->node;
    aas_err_t err;
    if (k->n_in < 1 || !k->in[0])
        return aas_onnx_node_err(n, errstr, errstr_size, "needs input X");
    const aas_onnx_tensor_t *x = k->in[0];
    int is_max = !strcmp(n->type, "MaxPool") || !strcmp(n->type, "GlobalMaxPool");
    int global = !strncmp(n->type, "Global", 6);
    dnnl_data_type_t dt = x->dtype == AAS_ONNX_FLOAT ? dnnl_f32
                        : x->dtype == AAS_ONNX_UINT8 ? dnnl_u8
                        : x->dtype == AAS_ONNX_INT8 ? dnnl_s8 : dnnl_data_type_undef;
    if (dt == dnnl_data_type_undef || (!is_max && dt != dnnl_f32))
        return aas_onnx_node_err(n, errstr, errstr_size, "input is %s; aas pools float32%s",
                                 aas_onnx_dtype_name(x->dtype), is_max ? ", int8, uint8" : "");
    if (k->n_out > 1 && n->out[1] >= 0)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "the Indices output of MaxPool is not supported");
    if (x->rank < 3 || x->rank > 5)
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "input must be [N, C, d1..dk] with 1 to 3 spatial dims");
    if (aas_onnx_attr_int(n, "storage_order", 0))
        return aas_onnx_node_err(n, errstr, errstr_size, "storage_order=1 is not supported");
    int64_t kern[3];
    aas_onnx_win_t win;
    if (global) {
        for (int i = 0; i < x->rank - 2; i++) kern[i] = x->dims[i + 2];
        win.sp = x->rank - 2;
        for (int i = 0; i < win.sp; i++) {
            win.kernel[i] = kern[i];
            win.in[i] = kern[i];
            win.stride[i] = win.dil[i] = 1;
            win.pad_l[i] = win.pad_r[i] = 0;
            win.out[i] = 1;
        }
    } else {
        const int64_t *ks;
        size_t kn = aas_onnx_attr_ints(n, "kernel_shape", &ks);
        if ((int)kn != x->rank - 2)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "kernel_shape must have one value per spatial dim");
        memcpy(kern, ks, kn * sizeof(int64_t));
        int ceil_mode = (int)aas_onnx_attr_int(n, "ceil_mode", 0);
        if ((err = aas_onnx_win(n, x, kern, ceil_mode, &win, errstr, errstr_size))) return err;
    }
    aas_onnx_tensor_t *y = k->out[0];
    y->dtype = x->dtype;
    y->rank = x->rank;
    y->dims[0] = x->dims[0];
    y->dims[1] = x->dims[1];
    for (int i = 0; i < win.sp; i++) y->dims[i + 2] = win.out[i];
    aas_onnx_dnn_t *s;
    if ((err = aas_onnx_dnn_new(k, &s, errstr, errstr_size))) return err;
    if (!aas_onnx_numel(y)) {
        s->gemm_general = 2;
        return AAS_ERR_OK;
    }
    int r = x->rank;
    dnnl_dims_t xd, yd, st, di, pl, pr, kd;
    memcpy(xd, x->dims, sizeof(int64_t) * (size_t)r);
    memcpy(yd, y->dims, sizeof(int64_t) * (size_t)r);
    aas_onnx_win_dims(&win, st, di, pl, pr, kd);
    dnnl_alg_kind_t alg = is_max ? dnnl_pooling_max
                        : aas_onnx_attr_int(n, "count_include_pad", 0)
                              ? dnnl_pooling_avg_include_padding
                              : dnnl_pooling_avg_exclude_padding;
    dnnl_memory_desc_t x_md, y_md;
    dnnl_pooling_v2_desc_t pdsc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    /* f32: in the blocked layout (plain NCHW pooling is oneDNN's simple
     * reference loop, ~10x slower); other types plain */
    dnnl_memory_desc_t x_blk, y_any;
    dnnl_format_tag_t blk = dt == dnnl_f32 ? aas_onnx_blocked_tag(r) : aas_onnx_tag(r);
    if ((err = AAS_DNN_CHECK(dnnl_primitive_attr_create(&attr))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr,
                                                                     dnnl_scratchpad_mode_user))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&x_md, r, xd, dt, aas_onnx_tag(r)))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&y_md, r, yd, dt, aas_onnx_tag(r)))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&x_blk, r, xd, dt, blk))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&y_any, r, yd, dt, blk))) ||
        (err = AAS_DNN_CHECK(dnnl_pooling_v2_forward_desc_init(
             &pdsc, dnnl_forward_inference, alg, &x_blk, &y_any, st, kd, di, pl, pr))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &pdsc, attr, k->engine, NULL))) ||
        (err = aas_onnx_dnn_prim(k, s, pd, errstr, errstr_size)))
        goto done;
    const dnnl_memory_desc_t *x_want = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                             *y_want = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    if ((err = aas_onnx_dnn_layout(k, s, DNNL_ARG_SRC, &x_md, x_want, errstr, errstr_size)) ||
        (err = aas_onnx_dnn_layout(k, s, DNNL_ARG_DST, &y_md, y_want, errstr, errstr_size)))
        goto done;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return err;
}

/* ---- BatchNormalization (inference), plain C ---- */

static aas_err_t aas_onnx_bn_check(const aas_onnx_node_t *n, char *errstr, size_t errstr_size) {
    if (aas_onnx_attr_int(n, "training_mode", 0))
        return aas_onnx_node_err(n, errstr, errstr_size,
                                 "training_mode=1 is not supported (aas runs inference)");
    if (n->opset < 9 && !aas_onnx_attr_int(n, "spatial", 1))
        return aas_onnx_node_err(n, errstr, errstr_size, "spatial=0 is not supported");
    return AAS_ERR_OK;
}

static aas_err_t aas_onnx_bn_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_node_t *n = k->node;
    aas_err_t err;
    if (k->n_in != 5)
        return aas_onnx_node_err(n, errstr, errstr_size, "needs 5 inputs");
    for (int i = 0; i < 5; i++)
        if (!k->in[i]) return aas_onnx_node_err(n, errstr, errstr_size, "input %d missing", i);
    if ((err = aas_onnx_need_f32(k, 5, errstr, errstr_size))) return err;
    const aas_onnx_tensor_t *x = k->in[0];
    if (x->rank < 2) return aas_onnx_node_err(n, errstr, errstr_size, "X must have rank >= 2");
    for (int i = 1; i < 5; i++)
        if (aas_onnx_numel(k->in[i]) != x->dims[1])
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "input %d has %lld values, X has %lld channels", i,
                                     (long long)aas_onnx_numel(k->in[i]), (long long)x->dims[1]);
    for (int o = 1; o < k->n_out; o++)
        if (n->out[o] >= 0)
            return aas_onnx_node_err(n, errstr, errstr_size,
                                     "the training outputs (mean, var) are not supported");
    *k->out[0] = *x;
    k->out[0]->data = NULL;
    return AAS_ERR_OK;
}

static aas_err_t aas_onnx_bn_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    const aas_onnx_tensor_t *x = k->in[0];
    const float *xd = x->data, *sc = k->in[1]->data, *b = k->in[2]->data,
                *mu = k->in[3]->data, *var = k->in[4]->data;
    float *y = k->out[0]->data;
    float eps = aas_onnx_attr_float(k->node, "epsilon", 1e-5f);
    int64_t c = x->dims[1], inner = 1, outer = x->dims[0];
    for (int i = 2; i < x->rank; i++) inner *= x->dims[i];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t ch = 0; ch < c; ch++) {
            float s = sc[ch] / sqrtf(var[ch] + eps), t = b[ch] - mu[ch] * s;
            const float *xs = xd + (o * c + ch) * inner;
            float *ys = y + (o * c + ch) * inner;
            for (int64_t i = 0; i < inner; i++) ys[i] = xs[i] * s + t;
        }
    return AAS_ERR_OK;
}

/* ---- Softmax, LogSoftmax ---- */

typedef struct {
    int64_t outer, len, inner;
} aas_onnx_softmax_t;

static aas_err_t aas_onnx_softmax_plan(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    const aas_onnx_node_t *n = k->node;
    aas_err_t err;
    if (k->n_in != 1 || !k->in[0]) return aas_onnx_node_err(n, errstr, errstr_size, "needs 1 input");
    if ((err = aas_onnx_need_f32(k, 1, errstr, errstr_size))) return err;
    const aas_onnx_tensor_t *x = k->in[0];
    int new_sem = n->opset >= 13;
    int64_t axis_attr = aas_onnx_attr_int(n, "axis", new_sem ? -1 : 1);
    int rank = x->rank ? x->rank : 1;
    int axis = aas_onnx_axis(axis_attr, rank);
    if (axis < 0)
        return aas_onnx_node_err(n, errstr, errstr_size, "axis %lld out of range for rank %d",
                                 (long long)axis_attr, x->rank);
    aas_onnx_softmax_t *s = calloc(1, sizeof(*s));
    if (!s) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    k->state = s;
    s->outer = s->inner = 1;
    s->len = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < axis) s->outer *= x->dims[i];
        else if (i == axis || !new_sem) s->len *= x->dims[i];
        else s->inner *= x->dims[i];
    }
    *k->out[0] = *x;
    k->out[0]->data = NULL;
    return AAS_ERR_OK;
}

static aas_err_t aas_onnx_softmax_run(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    const aas_onnx_softmax_t *s = k->state;
    const float *x = k->in[0]->data;
    float *y = k->out[0]->data;
    int logsm = !strcmp(k->node->type, "LogSoftmax");
    for (int64_t o = 0; o < s->outer; o++)
        for (int64_t in = 0; in < s->inner; in++) {
            const float *xs = x + o * s->len * s->inner + in;
            float *ys = y + o * s->len * s->inner + in;
            float mx = -INFINITY;
            for (int64_t i = 0; i < s->len; i++)
                if (xs[i * s->inner] > mx) mx = xs[i * s->inner];
            double sum = 0;
            for (int64_t i = 0; i < s->len; i++) {
                float e = expf(xs[i * s->inner] - mx);
                if (!logsm) ys[i * s->inner] = e;
                sum += e;
            }
            if (logsm) {
                float ls = (float)log(sum);
                for (int64_t i = 0; i < s->len; i++)
                    ys[i * s->inner] = xs[i * s->inner] - mx - ls;
            } else {
                float inv = (float)(1.0 / sum);
                for (int64_t i = 0; i < s->len; i++) ys[i * s->inner] *= inv;
            }
        }
    return AAS_ERR_OK;
}

#define AAS_DNN_OP(type, lo, check, plan, run, release)                                  \
    {"", type, lo, 18, 0, check, plan, run, release}

const aas_onnx_op_t aas_onnx_ops_dnn[] = {
    AAS_DNN_OP("Gemm", 7, NULL, aas_onnx_gemm_plan, aas_onnx_gemm_run, aas_onnx_dnn_release),
    AAS_DNN_OP("MatMul", 7, NULL, aas_onnx_matmul_plan, aas_onnx_matmul_run, aas_onnx_dnn_release),
    AAS_DNN_OP("Conv", 7, NULL, aas_onnx_conv_plan, aas_onnx_dnn_run, aas_onnx_dnn_release),
    AAS_DNN_OP("MaxPool", 7, NULL, aas_onnx_pool_plan, aas_onnx_dnn_run, aas_onnx_dnn_release),
    AAS_DNN_OP("AveragePool", 7, NULL, aas_onnx_pool_plan, aas_onnx_dnn_run, aas_onnx_dnn_release),
    AAS_DNN_OP("GlobalAveragePool", 1, NULL, aas_onnx_pool_plan, aas_onnx_dnn_run,
               aas_onnx_dnn_release),
    AAS_DNN_OP("GlobalMaxPool", 1, NULL, aas_onnx_pool_plan, aas_onnx_dnn_run,
               aas_onnx_dnn_release),
    AAS_DNN_OP("BatchNormalization", 7, aas_onnx_bn_check, aas_onnx_bn_plan, aas_onnx_bn_run, NULL),
    AAS_DNN_OP("Softmax", 7, NULL, aas_onnx_softmax_plan, aas_onnx_softmax_run, NULL),
    AAS_DNN_OP("LogSoftmax", 7, NULL, aas_onnx_softmax_plan, aas_onnx_softmax_run, NULL),
};
const size_t aas_onnx_ops_dnn_n = sizeof(aas_onnx_ops_dnn) / sizeof(aas_onnx_ops_dnn[0]);
