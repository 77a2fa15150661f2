/*
 * model_mlp_run.c - running an AASMLP1 model on oneDNN: batch-size buckets,
 * f32 / bf16 / int8 precision (docs/precision.md, docs/model-format.md).
 *
 * A batch of any size is rounded up to a bucket (1..8 exact, then three
 * significant bits: 10, 12, 14, 16, 20, 24, 28, 32, 40, ... 224, 256);
 * bigger batches run in chunks of 256.  Past a few rows a row costs the same
 * at every batch size, so a bucket wastes at most a quarter of a batch while
 * 28 buckets cover every size.  Each bucket's primitives are built the
 * first time it is needed and kept until the precision changes (28 is few
 * enough not to evict); the weights are reordered once into each layout
 * (and data type) the primitives ask for, shared between buckets.  A partial bucket runs on the
 * model's padded scratch rows and copies back only the real ones.  Every
 * buffer inference touches belongs to the model and grows only when a
 * bigger bucket or another precision first needs it; oneDNN's scratchpad is
 * in user mode and belongs to the model too.
 *
 * Precisions:
 *  - f32: inner_product forward_inference, activation fused as an eltwise
 *    post-op, softmax in place on the output.
 *  - bf16: the input is converted by a reorder, weights and hidden
 *    activations are bf16, accumulation and the last layer's output f32.
 *  - int8: weights s8 per output channel (scale max|w|/127, quantized by
 *    the reorder into oneDNN's layout); each layer's source is quantized per
 *    row at run time (s8, or u8 after relu/sigmoid) by model_mlp_q8.c, the
 *    primitive applies the weight scales and writes f32, and the row scale,
 *    bias and activation are applied in C before the next quantization.
 *    Per-row scales keep a row's result independent of its batch-mates.
 *
 * Not thread-safe: a model is used by one thread at a time.
 */
#include <math.h>
#if defined(_OPENMP) || defined(AAS_HAVE_OPENMP)
#include <omp.h>
#define AAS_MLP_THREADS() omp_get_max_threads()
#else /* clang without libomp (the fuzzing build): one thread */
#define AAS_MLP_THREADS() 1
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnn.h"
#include "model_mlp_int.h"

/* Host memory a built primitive holds beyond the buffers we count (JIT
 * code, descriptors), for the footprint: a bucket of the 784-512-512-10 MLP
 * (3 inner products and a softmax) adds ~280 KB of RSS. */
#define AAS_MLP_PRIM_BYTES 65536
#define AAS_MLP_ALIGN 64

/* ---- scratch ---- */

/* Make buffer k at least `bytes` long.  Its contents do not survive a
 * growth (nothing lives in scratch between calls). */
static aas_err_t aas_mlp_reserve(aas_mlp_t *m, int k, size_t bytes, char *errstr,
                                 size_t errstr_size) {
    aas_mlp_scratch_t *s = &m->scratch;
    if (bytes <= s->cap[k]) return AAS_ERR_OK;
    size_t n = (bytes + AAS_MLP_ALIGN - 1) / AAS_MLP_ALIGN * AAS_MLP_ALIGN;
    void *p = aligned_alloc(AAS_MLP_ALIGN, n);
    if (!p)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "out of memory for %zu bytes of inference scratch", n);
    memset(p, 0, n); /* padding rows start out as zeros, not garbage */
    free(s->buf[k]);
    s->buf[k] = p;
    s->cap[k] = n;
    return AAS_ERR_OK;
}

/* ---- weights, converted and reordered once per layout ---- */

/* A reference to layer li's weights in layout `want` (f32, bf16 or s8),
 * converted from the plain f32 copy only the first time a primitive asks
 * for that layout.  s8 weights are quantized on the way with the layer's
 * per-channel scales (the reorder also fills oneDNN's compensation). */
static aas_err_t aas_mlp_wts_get(aas_mlp_t *m, size_t li, const dnnl_memory_desc_t *want,
                                 aas_mlp_wts_t **out, char *errstr, size_t errstr_size) {
    aas_mlp_layer_data_t *l = &m->layers[li];
    for (aas_mlp_wts_t *v = l->wts; v; v = v->next)
        if (dnnl_memory_desc_equal(&v->md, want)) {
            v->refs++;
            *out = v;
            return AAS_ERR_OK;
        }
    dnnl_memory_desc_t plain_md;
    dnnl_dims_t wd = {l->out, l->in};
    aas_err_t err = AAS_DNN_CHECK(
        dnnl_memory_desc_init_by_tag(&plain_md, 2, wd, dnnl_f32, dnnl_oi));
    if (err) return err;
    aas_mlp_wts_t *v = calloc(1, sizeof(*v));
    if (!v)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "out of memory for layer %zu weights", li);
    v->md = *want;
    if (dnnl_memory_desc_equal(want, &plain_md)) {
        err = AAS_DNN_CHECK(dnnl_memory_create(&v->mem, want, m->engine, l->w));
    } else {
        dnnl_memory_t plain = NULL;
        dnnl_primitive_attr_t attr = NULL;
        dnnl_primitive_desc_t rpd = NULL;
        dnnl_primitive_t reorder = NULL;
        float *inv = NULL;
        err = AAS_DNN_CHECK(dnnl_memory_create(&v->mem, want, m->engine,
                                               DNNL_MEMORY_ALLOCATE));
        if (!err) {
            v->bytes = dnnl_memory_desc_get_size(want);
            err = AAS_DNN_CHECK(dnnl_memory_create(&plain, &plain_md, m->engine, l->w));
        }
        if (!err) err = AAS_DNN_CHECK(dnnl_primitive_attr_create(&attr));
        if (!err && want->data_type == dnnl_s8) {
            if (!(inv = malloc((size_t)l->out * sizeof(float)))) {
                err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                                  "out of memory quantizing layer %zu", li);
            } else {
                for (int64_t o = 0; o < l->out; o++) inv[o] = 1.0f / l->wscale[o];
                err = AAS_DNN_CHECK(dnnl_primitive_attr_set_output_scales(
                    attr, l->out, 1 << 0 /* per output channel of "oi" */, inv));
            }
        }
        if (!err)
            err = AAS_DNN_CHECK(dnnl_reorder_primitive_desc_create(
                &rpd, &plain_md, m->engine, want, m->engine, attr));
        if (!err) err = AAS_DNN_CHECK(dnnl_primitive_create(&reorder, rpd));
        if (!err) {
            dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, v->mem}};
            err = AAS_DNN_CHECK(dnnl_primitive_execute(reorder, m->stream, 2, args));
        }
        if (!err) err = AAS_DNN_CHECK(dnnl_stream_wait(m->stream));
        free(inv);
        if (reorder) dnnl_primitive_destroy(reorder);
        if (rpd) dnnl_primitive_desc_destroy(rpd);
        if (attr) dnnl_primitive_attr_destroy(attr);
        if (plain) dnnl_memory_destroy(plain);
    }
    if (err) {
        if (v->mem) dnnl_memory_destroy(v->mem);
        free(v);
        return err;
    }
    v->refs = 1;
    v->next = l->wts;
    l->wts = v;
    *out = v;
    return AAS_ERR_OK;
}

static void aas_mlp_wts_put(aas_mlp_t *m, size_t li, aas_mlp_wts_t *v) {
    if (!v || --v->refs > 0) return;
    for (aas_mlp_wts_t **pp = &m->layers[li].wts; *pp; pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    dnnl_memory_destroy(v->mem);
    free(v);
}

/* ---- primitives for one bucket ---- */

static dnnl_alg_kind_t aas_mlp_alg(aas_act_t act) {
    switch (act) {
    case AAS_ACT_RELU: return dnnl_eltwise_relu;
    case AAS_ACT_TANH: return dnnl_eltwise_tanh;
    case AAS_ACT_SIGMOID: return dnnl_eltwise_logistic;
    default: return dnnl_alg_kind_undef;
    }
}

/* Releases what b holds (partially built is fine) and empties the slot. */
static void aas_mlp_batch_free(aas_mlp_t *m, aas_mlp_batch_t *b) {
    for (size_t i = 0; i < m->n_layers; i++) {
        if (b->ip[i]) dnnl_primitive_destroy(b->ip[i]);
        if (b->src[i]) dnnl_memory_destroy(b->src[i]);
        if (b->dst[i]) dnnl_memory_destroy(b->dst[i]);
        if (b->pad[i]) dnnl_memory_destroy(b->pad[i]);
        aas_mlp_wts_put(m, i, b->wts[i]);
    }
    dnnl_primitive_t prims[] = {b->softmax, b->cvt};
    dnnl_memory_t mems[] = {b->sm_io, b->sm_pad, b->cvt_src, b->cvt_dst, b->cvt_pad};
    for (size_t i = 0; i < sizeof(prims) / sizeof(*prims); i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
    for (size_t i = 0; i < sizeof(mems) / sizeof(*mems); i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    memset(b, 0, sizeof(*b));
}

static void aas_mlp_cache_flush(aas_mlp_t *m) {
    for (int i = 0; i < AAS_MLP_BUCKETS; i++) aas_mlp_batch_free(m, &m->cache[i]);
}

/* Create the primitive of pd, a memory view of its scratchpad in *pad (left
 * NULL if it needs none), and grow the shared scratchpad to fit. */
static aas_err_t aas_mlp_prim_create(aas_mlp_t *m, dnnl_primitive_desc_t pd,
                                     dnnl_primitive_t *prim, dnnl_memory_t *pad,
                                     char *errstr, size_t errstr_size) {
    aas_err_t err = AAS_DNN_CHECK(dnnl_primitive_create(prim, pd));
    if (err) return err;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    if (bytes == 0) return AAS_ERR_OK;
    if ((err = aas_mlp_reserve(m, AAS_MLP_DNN, bytes, errstr, errstr_size))) return err;
    return AAS_DNN_CHECK(dnnl_memory_create(pad, md, m->engine, DNNL_MEMORY_NONE));
}

/* 1 if the source of int8 layer i is never negative (the previous
 * activation is relu or sigmoid): u8 then, a bit more resolution. */
static int aas_mlp_src_unsigned(const aas_mlp_t *m, size_t i) {
    if (i == 0) return 0;
    aas_act_t prev = m->layers[i - 1].act;
    return prev == AAS_ACT_RELU || prev == AAS_ACT_SIGMOID;
}

static aas_err_t aas_mlp_layer_build(aas_mlp_t *m, aas_mlp_batch_t *b, size_t i,
                                     int64_t rows, char *errstr, size_t errstr_size) {
    aas_mlp_layer_data_t *l = &m->layers[i];
    int last = i + 1 == m->n_layers;
    dnnl_data_type_t sdt = dnnl_f32, wdt = dnnl_f32, ddt = dnnl_f32;
    if (m->prec == AAS_PRECISION_BF16) {
        sdt = wdt = dnnl_bf16;
        ddt = last ? dnnl_f32 : dnnl_bf16;
    } else if (m->prec == AAS_PRECISION_INT8) {
        sdt = aas_mlp_src_unsigned(m, i) ? dnnl_u8 : dnnl_s8;
        wdt = dnnl_s8;
    }
    dnnl_memory_desc_t src_md, dst_md;
    const dnnl_memory_desc_t *b_md = NULL;
    dnnl_dims_t sd = {rows, l->in}, dd = {rows, l->out};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    aas_err_t err;

    if ((err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, sdt, dnnl_nc))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, ddt, dnnl_nc))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_get_memory_desc(l->bias, &b_md))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_attr_create(&attr))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_attr_set_scratchpad_mode(
             attr, dnnl_scratchpad_mode_user))))
        goto done;
    if (m->prec == AAS_PRECISION_INT8) {
        if ((err = AAS_DNN_CHECK(dnnl_primitive_attr_set_output_scales(
                 attr, l->out, 1 << 1 /* per output channel of "nc" */, l->wscale))))
            goto done;
    } else if (aas_mlp_alg(l->act) != dnnl_alg_kind_undef) {
        if ((err = AAS_DNN_CHECK(dnnl_post_ops_create(&po))) ||
            (err = AAS_DNN_CHECK(dnnl_post_ops_append_eltwise(
                 po, 1.0f /* scale */, aas_mlp_alg(l->act), 0.0f /* alpha */,
                 0.0f /* beta */))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_attr_set_post_ops(attr, po))))
            goto done;
    }
    /* int8 adds the bias in C, after the row scale; f32 may take "oi"
     * weights (dnn.h says when) */
    if ((err = aas_dnn_inner_product_pd(&pd, &src_md, l->out, l->in, wdt,
                                        m->prec == AAS_PRECISION_INT8 ? NULL : b_md, &dst_md,
                                        attr, m->engine, m->prec == AAS_PRECISION_F32, errstr,
                                        errstr_size)))
        goto done;
    if (m->prec != AAS_PRECISION_F32) {
        /* A reduced precision only pays on a jit kernel; oneDNN falls back
         * to its reference code when the ISA is missing. */
        const char *impl = "";
        if ((err = AAS_DNN_CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str,
                                                           0, &impl))))
            goto done;
        if (!strncmp(impl, "ref", 3)) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "oneDNN has no optimised %s inner product for layer %zu "
                              "(%lld x %lld) on this CPU, only %s",
                              aas_precision_name(m->prec), i, (long long)l->out,
                              (long long)l->in, impl);
            goto done;
        }
    }
    if ((err = aas_mlp_prim_create(m, pd, &b->ip[i], &b->pad[i], errstr, errstr_size)))
        goto done;
    const dnnl_memory_desc_t *w_want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!w_want) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DNN,
                          "oneDNN gave no weights layout for layer %zu", i);
        goto done;
    }
    if ((err = aas_mlp_wts_get(m, i, w_want, &b->wts[i], errstr, errstr_size)) ||
        (err = AAS_DNN_CHECK(dnnl_memory_create(&b->src[i], &src_md, m->engine,
                                                DNNL_MEMORY_NONE))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_create(&b->dst[i], &dst_md, m->engine,
                                                DNNL_MEMORY_NONE))))
        goto done;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return err;
}

/* A reorder f32 -> bf16 of rows x dim (bf16: the input conversion), or a
 * softmax over rows x dim f32 in place (classifiers). */
static aas_err_t aas_mlp_aux_build(aas_mlp_t *m, int softmax, int64_t rows, int64_t dim,
                                   dnnl_primitive_t *prim, dnnl_memory_t *a,
                                   dnnl_memory_t *bmem, dnnl_memory_t *pad, char *errstr,
                                   size_t errstr_size) {
    dnnl_memory_desc_t md, md16;
    dnnl_dims_t dd = {rows, dim};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_softmax_desc_t sd;
    aas_err_t err;
    if ((err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&md, 2, dd, dnnl_f32, dnnl_nc))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&md16, 2, dd, dnnl_bf16, dnnl_nc))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_attr_create(&attr))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_attr_set_scratchpad_mode(
             attr, dnnl_scratchpad_mode_user))))
        goto done;
    if (softmax) {
        if ((err = AAS_DNN_CHECK(dnnl_softmax_forward_desc_init(
                 &sd, dnnl_forward_inference, &md, 1 /* axis */))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &sd, attr, m->engine, NULL))))
            goto done;
    } else if ((err = AAS_DNN_CHECK(dnnl_reorder_primitive_desc_create(
                    &pd, &md, m->engine, &md16, m->engine, attr)))) {
        goto done;
    }
    if ((err = aas_mlp_prim_create(m, pd, prim, pad, errstr, errstr_size)) ||
        (err = AAS_DNN_CHECK(dnnl_memory_create(a, &md, m->engine, DNNL_MEMORY_NONE))))
        goto done;
    if (!softmax)
        err = AAS_DNN_CHECK(dnnl_memory_create(bmem, &md16, m->engine, DNNL_MEMORY_NONE));
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return err;
}

/* Scratch a bucket of rows needs at the model's precision. */
static aas_err_t aas_mlp_scratch_for(aas_mlp_t *m, int64_t rows, char *errstr,
                                     size_t errstr_size) {
    size_t r = (size_t)rows, in = (size_t)m->base.input_dim, out = (size_t)m->base.output_dim;
    size_t act = r * (size_t)m->widest * sizeof(float);
    size_t need[AAS_MLP_SCRATCH_N] = {0};
    if (rows > 8) { /* buckets up to 8 are exact: never partial */
        need[AAS_MLP_IN_PAD] = m->prec == AAS_PRECISION_INT8 ? 0 : r * in * sizeof(float);
        need[AAS_MLP_OUT_PAD] = r * out * sizeof(float);
    }
    need[AAS_MLP_ACT0] = act;
    switch (m->prec) {
    case AAS_PRECISION_F32: need[AAS_MLP_ACT1] = act; break;
    case AAS_PRECISION_BF16:
        need[AAS_MLP_ACT1] = act;
        need[AAS_MLP_Q] = r * in * 2; /* bf16 */
        break;
    case AAS_PRECISION_INT8:
        need[AAS_MLP_Q] = r * (size_t)m->widest_in;
        need[AAS_MLP_RSCALE] = r * sizeof(float);
        need[AAS_MLP_RBAD] = r;
        break;
    }
    for (int k = 0; k < AAS_MLP_SCRATCH_N; k++) {
        aas_err_t err = aas_mlp_reserve(m, k, need[k], errstr, errstr_size);
        if (err) return err;
    }
    return AAS_ERR_OK;
}

static aas_err_t aas_mlp_batch_build(aas_mlp_t *m, aas_mlp_batch_t *b, int64_t rows,
                                     char *errstr, size_t errstr_size) {
    aas_err_t err = aas_mlp_scratch_for(m, rows, errstr, errstr_size);
    if (err) return err;
    if (m->prec == AAS_PRECISION_BF16) {
        if ((err = aas_mlp_aux_build(m, 0, rows, m->base.input_dim, &b->cvt, &b->cvt_src,
                                     &b->cvt_dst, &b->cvt_pad, errstr, errstr_size)))
            return err;
        b->bytes += AAS_MLP_PRIM_BYTES;
    }
    for (size_t i = 0; i < m->n_layers; i++) {
        if ((err = aas_mlp_layer_build(m, b, i, rows, errstr, errstr_size))) return err;
        b->bytes += AAS_MLP_PRIM_BYTES;
    }
    if (m->base.classifier) {
        if ((err = aas_mlp_aux_build(m, 1, rows, m->base.output_dim, &b->softmax, &b->sm_io,
                                     NULL, &b->sm_pad, errstr, errstr_size)))
            return err;
        b->bytes += AAS_MLP_PRIM_BYTES;
    }
    b->rows = rows;
    return AAS_ERR_OK;
}

/* The primitives of the bucket of n rows, built on first use.  oneDNN
 * plans a primitive's work split for the OpenMP threads of the moment, so
 * a bucket built for another thread count is rebuilt. */
static aas_err_t aas_mlp_batch_get(aas_mlp_t *m, int64_t n, aas_mlp_batch_t **out,
                                   char *errstr, size_t errstr_size) {
    int index, threads = AAS_MLP_THREADS();
    int64_t rows = aas_model_bucket(n, &index);
    aas_mlp_batch_t *b = &m->cache[index];
    if (b->rows != 0 && b->threads != threads) aas_mlp_batch_free(m, b);
    if (b->rows == 0) {
        b->threads = threads;
        aas_err_t err = aas_mlp_batch_build(m, b, rows, errstr, errstr_size);
        if (err) aas_mlp_batch_free(m, b);
        aas_mlp_update_footprint(m);
        if (err) return err;
    }
    *out = b;
    return AAS_ERR_OK;
}

/* ---- running one bucket ---- */

/* Execute p with args (room for one more) and its scratchpad view. */
static aas_err_t aas_mlp_exec(aas_mlp_t *m, dnnl_primitive_t p, dnnl_memory_t pad,
                              dnnl_exec_arg_t *args, int nargs, char *errstr,
                              size_t errstr_size) {
    aas_err_t err;
    if (pad) {
        if ((err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(pad, m->scratch.buf[AAS_MLP_DNN]))))
            return err;
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, pad};
    }
    return AAS_DNN_CHECK(dnnl_primitive_execute(p, m->stream, nargs, args));
}

/* Inner product of layer i from src to dst (bias included unless int8). */
static aas_err_t aas_mlp_exec_layer(aas_mlp_t *m, aas_mlp_batch_t *b, size_t i,
                                    const void *src, void *dst, char *errstr,
                                    size_t errstr_size) {
    aas_err_t err;
    /* oneDNN takes a void *; the source is only read. */
    if ((err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(b->src[i], (void *)src))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(b->dst[i], dst))))
        return err;
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, b->src[i]},
                               {DNNL_ARG_WEIGHTS, b->wts[i]->mem},
                               {DNNL_ARG_DST, b->dst[i]},
                               {DNNL_ARG_BIAS, m->layers[i].bias}};
    int nargs = m->prec == AAS_PRECISION_INT8 ? 3 : 4;
    return aas_mlp_exec(m, b->ip[i], b->pad[i], args, nargs, errstr, errstr_size);
}

/* f32 and bf16: every layer in oneDNN, activations ping-pong. */
static aas_err_t aas_mlp_run_float(aas_mlp_t *m, aas_mlp_batch_t *b, const float *x,
                                   float *y, char *errstr, size_t errstr_size) {
    void **buf = m->scratch.buf;
    const void *src = x;
    aas_err_t err;
    if (b->cvt) {
        if ((err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(b->cvt_src, (void *)x))) ||
            (err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(b->cvt_dst, buf[AAS_MLP_Q]))))
            return err;
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, b->cvt_src}, {DNNL_ARG_TO, b->cvt_dst}};
        if ((err = aas_mlp_exec(m, b->cvt, b->cvt_pad, args, 2, errstr, errstr_size)))
            return err;
        src = buf[AAS_MLP_Q];
    }
    for (size_t i = 0; i < m->n_layers; i++) {
        void *dst = i + 1 == m->n_layers ? (void *)y : buf[AAS_MLP_ACT0 + i % 2];
        if ((err = aas_mlp_exec_layer(m, b, i, src, dst, errstr, errstr_size))) return err;
        src = dst;
    }
    return AAS_ERR_OK;
}

/* int8: quantize each layer's source per row, integer inner product with
 * the weight scales applied, then row scale + bias + activation in C. */
static aas_err_t aas_mlp_run_int8(aas_mlp_t *m, aas_mlp_batch_t *b, const float *x,
                                  int64_t n, float *y, char *errstr, size_t errstr_size) {
    void **buf = m->scratch.buf;
    float *scale = buf[AAS_MLP_RSCALE];
    unsigned char *bad = buf[AAS_MLP_RBAD];
    aas_err_t err;
    memset(bad, 0, (size_t)n);
    aas_mlp_q8_quantize(x, n, m->base.input_dim, 1 /* signed */, buf[AAS_MLP_Q], scale, bad);
    for (size_t i = 0; i < m->n_layers; i++) {
        aas_mlp_layer_data_t *l = &m->layers[i];
        int last = i + 1 == m->n_layers;
        float *dst = last ? y : buf[AAS_MLP_ACT0];
        if ((err = aas_mlp_exec_layer(m, b, i, buf[AAS_MLP_Q], dst, errstr, errstr_size)) ||
            (err = AAS_DNN_CHECK(dnnl_stream_wait(m->stream))))
            return err;
        aas_mlp_q8_finish(dst, n, l->out, l->b, l->act, scale);
        if (!last)
            aas_mlp_q8_quantize(dst, n, l->out, !aas_mlp_src_unsigned(m, i + 1),
                                buf[AAS_MLP_Q], scale, bad);
    }
    return AAS_ERR_OK;
}

/* n rows (1 <= n <= b->rows) through bucket b. */
static aas_err_t aas_mlp_run(aas_mlp_t *m, aas_mlp_batch_t *b, const float *in, int64_t n,
                             float *out, char *errstr, size_t errstr_size) {
    size_t in_dim = (size_t)m->base.input_dim, out_dim = (size_t)m->base.output_dim;
    const float *x = in;
    float *y = out;
    aas_err_t err;
    if (n < b->rows) { /* a partial bucket: the real rows, then old padding */
        y = m->scratch.buf[AAS_MLP_OUT_PAD];
        if (m->prec != AAS_PRECISION_INT8) { /* int8 reads only the real rows */
            memcpy(m->scratch.buf[AAS_MLP_IN_PAD], in, (size_t)n * in_dim * sizeof(float));
            x = m->scratch.buf[AAS_MLP_IN_PAD];
        }
    }
    if (m->prec == AAS_PRECISION_INT8) err = aas_mlp_run_int8(m, b, x, n, y, errstr, errstr_size);
    else err = aas_mlp_run_float(m, b, x, y, errstr, errstr_size);
    if (err) return err;
    if (b->softmax) {
        if ((err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(b->sm_io, y)))) return err;
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, b->sm_io}, {DNNL_ARG_DST, b->sm_io}};
        if ((err = aas_mlp_exec(m, b->softmax, b->sm_pad, args, 2, errstr, errstr_size)))
            return err;
    }
    if ((err = AAS_DNN_CHECK(dnnl_stream_wait(m->stream)))) return err;
    if (m->prec == AAS_PRECISION_INT8) { /* NaN/Inf in, NaN out, as in f32 */
        const unsigned char *bad = m->scratch.buf[AAS_MLP_RBAD];
        for (int64_t r = 0; r < n; r++)
            if (bad[r])
                for (size_t k = 0; k < out_dim; k++) y[(size_t)r * out_dim + k] = NAN;
    }
    if (y != out) memcpy(out, y, (size_t)n * out_dim * sizeof(float));
    return AAS_ERR_OK;
}

/* f32, the batches aas_gemm_small_prefer() takes: every layer a packed-weights C kernel
 * (gemm_small.h, faster than oneDNN's gemm path at these sizes), the
 * classifier's softmax in C.  Rows are computed independently, the same
 * way at every such batch size, so a row's result does not depend on its
 * batch-mates or on the bucket. */
static aas_err_t aas_mlp_run_small(aas_mlp_t *m, const float *in, int64_t n, float *out,
                                   char *errstr, size_t errstr_size) {
    size_t before = m->scratch.cap[AAS_MLP_ACT0] + m->scratch.cap[AAS_MLP_ACT1];
    aas_err_t err = aas_mlp_scratch_for(m, n, errstr, errstr_size);
    if (err) return err;
    /* recount the footprint only when something grew, not every batch */
    int grew = m->scratch.cap[AAS_MLP_ACT0] + m->scratch.cap[AAS_MLP_ACT1] != before;
    for (size_t i = 0; i < m->n_layers; i++) {
        aas_mlp_layer_data_t *l = &m->layers[i];
        if (l->small) continue;
        if ((err = aas_gemm_small_new(l->in, l->out, l->w, 1 /* w is out x in */, l->b,
                                      aas_mlp_alg(l->act), 0.0f /* alpha */, 0.0f /* beta */,
                                      &l->small, errstr, errstr_size)))
            return err;
        grew = 1;
    }
    if (grew) aas_mlp_update_footprint(m);
    const float *src = in;
    for (size_t i = 0; i < m->n_layers; i++) {
        float *dst = i + 1 == m->n_layers ? out : m->scratch.buf[AAS_MLP_ACT0 + i % 2];
        aas_gemm_small(m->layers[i].small, src, n, dst);
        src = dst;
    }
    if (m->base.classifier) {
        int64_t k = m->base.output_dim;
        for (int64_t r = 0; r < n; r++) {
            float *y = out + r * k, mx = y[0];
            for (int64_t j = 1; j < k; j++)
                if (y[j] > mx) mx = y[j];
            float sum = 0.0f;
            for (int64_t j = 0; j < k; j++) sum += (y[j] = expf(y[j] - mx));
            for (int64_t j = 0; j < k; j++) y[j] /= sum;
        }
    }
    return AAS_ERR_OK;
}

/* Every layer on gemm_small for n rows (gemm_small.h says when). */
static int aas_mlp_small_prefer(const aas_mlp_t *m, int64_t n) {
    for (size_t i = 0; i < m->n_layers; i++)
        if (!aas_gemm_small_prefer(n, m->layers[i].in, m->layers[i].out)) return 0;
    return 1;
}

aas_err_t aas_mlp_infer(aas_model_t *base, const float *in, int64_t rows, float *out,
                        char *errstr, size_t errstr_size) {
    aas_mlp_t *m = (aas_mlp_t *)base;
    if (rows > m->max_rows)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%lld rows, limit %lld for this model", (long long)rows,
                           (long long)m->max_rows);
    size_t in_dim = (size_t)base->input_dim, out_dim = (size_t)base->output_dim;
    for (int64_t done = 0; done < rows;) {
        int64_t n = rows - done < AAS_MLP_BUCKET_MAX ? rows - done : AAS_MLP_BUCKET_MAX;
        aas_mlp_batch_t *b;
        aas_err_t err;
        if (m->prec == AAS_PRECISION_F32 && aas_mlp_small_prefer(m, n)) {
            err = aas_mlp_run_small(m, in + (size_t)done * in_dim, n,
                                    out + (size_t)done * out_dim, errstr, errstr_size);
        } else if (!(err = aas_mlp_batch_get(m, n, &b, errstr, errstr_size))) {
            err = aas_mlp_run(m, b, in + (size_t)done * in_dim, n,
                              out + (size_t)done * out_dim, errstr, errstr_size);
        }
        if (err) return err;
        done += n;
    }
    return AAS_ERR_OK;
}

/* ---- precision ---- */

static const char *aas_mlp_isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "SSE4.1";
    case dnnl_cpu_isa_avx: return "AVX";
    case dnnl_cpu_isa_avx2: return "AVX2";
    case dnnl_cpu_isa_avx2_vnni: return "AVX2 with AVX-VNNI";
    case dnnl_cpu_isa_avx512_mic:
    case dnnl_cpu_isa_avx512_mic_4ops: return "AVX-512 (Xeon Phi)";
    case dnnl_cpu_isa_avx512_core: return "AVX-512 without VNNI or BF16";
    case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 with VNNI, without BF16";
    case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 with VNNI and BF16";
    case dnnl_cpu_isa_avx512_core_amx: return "AVX-512 with AMX";
    default: return "no vector ISA oneDNN uses";
    }
}

/* Whether this CPU, as oneDNN sees it (ONEDNN_MAX_CPU_ISA lowers it), has
 * the instructions that make p worth it. */
static aas_err_t aas_mlp_isa_check(aas_precision_t p, char *errstr, size_t errstr_size) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    unsigned v = (unsigned)isa;
    if (p == AAS_PRECISION_BF16 &&
        (v & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "bf16 needs AVX-512 BF16 (oneDNN avx512_core_bf16); oneDNN "
                           "sees %s here",
                           aas_mlp_isa_name(isa));
    if (p == AAS_PRECISION_INT8 &&
        (v & dnnl_cpu_isa_avx512_core_vnni) != dnnl_cpu_isa_avx512_core_vnni &&
        (v & dnnl_cpu_isa_avx2_vnni) != dnnl_cpu_isa_avx2_vnni)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "int8 needs VNNI (AVX-512 VNNI or AVX-VNNI, oneDNN "
                           "avx512_core_vnni / avx2_vnni); oneDNN sees %s here",
                           aas_mlp_isa_name(isa));
    return AAS_ERR_OK;
}

/* Per-output-channel weight scales of int8 (max|w| / 127; 1 for an
 * all-zero channel, whose quantized weights are then all 0). */
static aas_err_t aas_mlp_wscale_init(aas_mlp_t *m, char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < m->n_layers; i++) {
        aas_mlp_layer_data_t *l = &m->layers[i];
        if (!(l->wscale = malloc((size_t)l->out * sizeof(float))))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                               "out of memory for layer %zu scales", i);
        for (int64_t o = 0; o < l->out; o++) {
            float mx = 0.0f;
            const float *w = l->w + o * l->in;
            for (int64_t k = 0; k < l->in; k++) mx = fabsf(w[k]) > mx ? fabsf(w[k]) : mx;
            l->wscale[o] = mx > 0.0f ? mx / 127.0f : 1.0f;
        }
    }
    return AAS_ERR_OK;
}

static void aas_mlp_wscale_free(aas_mlp_t *m) {
    for (size_t i = 0; i < m->n_layers; i++) {
        free(m->layers[i].wscale);
        m->layers[i].wscale = NULL;
    }
}

aas_err_t aas_mlp_set_precision(aas_model_t *base, aas_precision_t p, char *errstr,
                                size_t errstr_size) {
    aas_mlp_t *m = (aas_mlp_t *)base;
    aas_precision_t old = m->prec;
    aas_err_t err = aas_mlp_isa_check(p, errstr, errstr_size);
    if (err) return err;
    aas_mlp_cache_flush(m); /* drops every converted copy of the weights too */
    aas_mlp_wscale_free(m);
    m->prec = p;
    /* Build the one-row bucket now: a missing kernel shows here, not on
     * the first job. */
    char why[400] = "";
    aas_mlp_batch_t *b;
    if (p == AAS_PRECISION_INT8) err = aas_mlp_wscale_init(m, why, sizeof(why));
    if (!err) err = aas_mlp_batch_get(m, 1, &b, why, sizeof(why));
    if (err) {
        aas_mlp_cache_flush(m);
        aas_mlp_wscale_free(m);
        m->prec = old;
        aas_mlp_update_footprint(m);
        return aas_err_set(errstr, errstr_size, err == AAS_ERR_NOMEM ? err : AAS_ERR_INVAL,
                           "cannot run %s: %s", aas_precision_name(p), why);
    }
    aas_mlp_update_footprint(m);
    return AAS_ERR_OK;
}

/* ---- setup ---- */

aas_err_t aas_mlp_run_init(aas_mlp_t *m, char *errstr, size_t errstr_size) {
    aas_err_t err = AAS_DNN_CHECK(dnnl_engine_create(&m->engine, dnnl_cpu, 0));
    if (!err)
        err = AAS_DNN_CHECK(dnnl_stream_create(&m->stream, m->engine, dnnl_stream_default_flags));
    for (size_t i = 0; !err && i < m->n_layers; i++) {
        aas_mlp_layer_data_t *l = &m->layers[i];
        dnnl_memory_desc_t md;
        dnnl_dims_t bd = {l->out};
        err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&md, 1, bd, dnnl_f32, dnnl_x));
        if (!err) err = AAS_DNN_CHECK(dnnl_memory_create(&l->bias, &md, m->engine, l->b));
    }
    return err;
}

void aas_mlp_run_free(aas_mlp_t *m) {
    if (m->layers) {
        aas_mlp_cache_flush(m);
        for (size_t i = 0; i < m->n_layers; i++) {
            aas_mlp_layer_data_t *l = &m->layers[i];
            while (l->wts) { /* only if a batch leaked a reference */
                aas_mlp_wts_t *v = l->wts;
                l->wts = v->next;
                dnnl_memory_destroy(v->mem);
                free(v);
            }
            if (l->bias) dnnl_memory_destroy(l->bias);
            l->bias = NULL;
            aas_gemm_small_free(l->small);
            l->small = NULL;
        }
        aas_mlp_wscale_free(m);
    }
    for (int k = 0; k < AAS_MLP_SCRATCH_N; k++) {
        free(m->scratch.buf[k]);
        m->scratch.buf[k] = NULL;
        m->scratch.cap[k] = 0;
    }
    if (m->stream) dnnl_stream_destroy(m->stream);
    if (m->engine) dnnl_engine_destroy(m->engine);
    m->stream = NULL;
    m->engine = NULL;
}

void aas_mlp_update_footprint(aas_mlp_t *m) {
    size_t bytes = m->fixed_bytes;
    for (size_t i = 0; i < m->n_layers; i++) {
        const aas_mlp_layer_data_t *l = &m->layers[i];
        for (const aas_mlp_wts_t *v = l->wts; v; v = v->next) bytes += sizeof(*v) + v->bytes;
        if (l->wscale) bytes += (size_t)l->out * sizeof(float);
        bytes += aas_gemm_small_bytes(l->small);
    }
    for (int i = 0; i < AAS_MLP_BUCKETS; i++) bytes += m->cache[i].bytes;
    for (int k = 0; k < AAS_MLP_SCRATCH_N; k++) bytes += m->scratch.cap[k];
    m->base.footprint = bytes;
}
