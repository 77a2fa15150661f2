/*
 * train_plan.c - everything of a training network that depends on the
 * batch size: per dense layer, oneDNN inner_product forward_training,
 * backward_data and backward_weights and eltwise forward/backward
 * primitives in plain layouts over one activation buffer, and a small
 * cache of these plans (least recently used replaced).  It does not run
 * them (train_pass.c) and does not own the parameters (train.c).
 */
#include <dnnl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train_int.h"

#include "dnn.h"

static dnnl_alg_kind_t aas_train_alg(aas_act_t act) {
    switch (act) {
    case AAS_ACT_RELU: return dnnl_eltwise_relu;
    case AAS_ACT_TANH: return dnnl_eltwise_tanh;
    case AAS_ACT_SIGMOID: return dnnl_eltwise_logistic;
    default: return dnnl_alg_kind_undef;
    }
}

/* Bytes of activation buffers for a batch of rows (no overflow: rows <=
 * 2^16, dim <= 2^20, widths sum <= 2^26). */
int64_t aas_train_plan_bytes(const aas_train_net_t *net, int64_t rows) {
    int64_t per_row = net->dim;
    for (size_t i = 0; i < net->n_layers; i++) per_row += 4 * net->out[i];
    return rows * per_row * (int64_t)sizeof(float);
}

void aas_train_plan_free(aas_train_net_t *net, aas_train_plan_t *pl) {
    for (size_t i = 0; i < net->n_layers; i++) {
        dnnl_primitive_t prims[5] = {pl->ip_fwd[i], pl->ip_bwd_d[i], pl->ip_bwd_w[i],
                                     pl->elt_fwd[i], pl->elt_bwd[i]};
        for (int k = 0; k < 5; k++)
            if (prims[k]) dnnl_primitive_destroy(prims[k]);
        dnnl_memory_t mems[5] = {pl->m_z[i], pl->m_dz[i], pl->m_a[i], pl->m_da[i],
                                 pl->m_ws[i]};
        for (int k = 0; k < 5; k++)
            if (mems[k]) dnnl_memory_destroy(mems[k]);
    }
    if (pl->m_x) dnnl_memory_destroy(pl->m_x);
    if (pl->m_dx) dnnl_memory_destroy(pl->m_dx);
    free(pl->buf);
    memset(pl, 0, sizeof(*pl));
}

/* The five primitives of layer i for pl->rows rows. */
static aas_err_t aas_train_layer_build(aas_train_net_t *net, aas_train_plan_t *pl,
                                       size_t i, char *errstr, size_t errstr_size) {
    int64_t rows = pl->rows;
    dnnl_memory_desc_t src_md, w_md, b_md, dst_md;
    dnnl_inner_product_desc_t fwd_d, bwd_d_d, bwd_w_d;
    dnnl_eltwise_desc_t elt_d, eltb_d;
    dnnl_primitive_desc_t fwd_pd = NULL, elt_pd = NULL, pd = NULL;
    dnnl_alg_kind_t alg = aas_train_alg(net->act[i]);
    aas_err_t err;

    if ((err = aas_train_md(&src_md, rows, net->in[i], dnnl_nc, errstr, errstr_size)) ||
        (err = aas_train_md(&w_md, net->out[i], net->in[i], dnnl_oi, errstr, errstr_size)) ||
        (err = aas_train_md(&b_md, net->out[i], 0, dnnl_x, errstr, errstr_size)) ||
        (err = aas_train_md(&dst_md, rows, net->out[i], dnnl_nc, errstr, errstr_size)))
        return err;
    /* forward_training keeps what backward needs; the activation is its own
     * primitive so that its backward gets the pre-activation z as src. */
    if ((err = AAS_DNN_CHECK(dnnl_inner_product_forward_desc_init(
             &fwd_d, dnnl_forward_training, &src_md, &w_md, &b_md, &dst_md))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&fwd_pd, &fwd_d, NULL,
                                                        net->engine, NULL))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_create(&pl->ip_fwd[i], fwd_pd))))
        goto done;
    if ((err = AAS_DNN_CHECK(dnnl_inner_product_backward_data_desc_init(
             &bwd_d_d, &src_md, &w_md, &dst_md))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &bwd_d_d, NULL,
                                                        net->engine, fwd_pd))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_create(&pl->ip_bwd_d[i], pd))))
        goto done;
    dnnl_primitive_desc_destroy(pd);
    pd = NULL;
    if ((err = AAS_DNN_CHECK(dnnl_inner_product_backward_weights_desc_init(
             &bwd_w_d, &src_md, &w_md, &b_md, &dst_md))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &bwd_w_d, NULL,
                                                        net->engine, fwd_pd))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_create(&pl->ip_bwd_w[i], pd))))
        goto done;
    dnnl_primitive_desc_destroy(pd);
    pd = NULL;
    if (alg != dnnl_alg_kind_undef) {
        if ((err = AAS_DNN_CHECK(dnnl_eltwise_forward_desc_init(
                 &elt_d, dnnl_forward_training, alg, &dst_md, 0.0f /* alpha */,
                 0.0f /* beta */))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&elt_pd, &elt_d, NULL,
                                                            net->engine, NULL))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_create(&pl->elt_fwd[i], elt_pd))) ||
            (err = AAS_DNN_CHECK(dnnl_eltwise_backward_desc_init(
                 &eltb_d, alg, &dst_md /* diff */, &dst_md /* data */,
                 0.0f /* alpha */, 0.0f /* beta */))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &eltb_d, NULL,
                                                            net->engine, elt_pd))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_create(&pl->elt_bwd[i], pd))))
            goto done;
        /* The CPU eltwise needs none today; honour it if a version does. */
        const dnnl_memory_desc_t *ws =
            dnnl_primitive_desc_query_md(elt_pd, dnnl_query_workspace_md, 0);
        if (ws && dnnl_memory_desc_get_size(ws) > 0 &&
            (err = AAS_DNN_CHECK(dnnl_memory_create(&pl->m_ws[i], ws, net->engine,
                                                    DNNL_MEMORY_ALLOCATE))))
            goto done;
    }
    if ((err = aas_train_wrap(net, &pl->m_z[i], &dst_md, pl->z[i], errstr, errstr_size)) ||
        (err = aas_train_wrap(net, &pl->m_dz[i], &dst_md, pl->dz[i], errstr, errstr_size)))
        goto done;
    if (i + 1 < net->n_layers &&
        ((err = aas_train_wrap(net, &pl->m_a[i], &dst_md, pl->a[i], errstr, errstr_size)) ||
         (err = aas_train_wrap(net, &pl->m_da[i], &dst_md, pl->da[i], errstr, errstr_size))))
        goto done;
    if (i == 0 &&
        ((err = aas_train_wrap(net, &pl->m_x, &src_md, pl->x, errstr, errstr_size)) ||
         (err = aas_train_wrap(net, &pl->m_dx, &src_md, NULL, errstr, errstr_size))))
        goto done;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (elt_pd) dnnl_primitive_desc_destroy(elt_pd);
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    return err;
}

static aas_err_t aas_train_plan_build(aas_train_net_t *net, aas_train_plan_t *pl,
                                      int64_t rows, char *errstr,
                                      size_t errstr_size) {
    int64_t bytes = aas_train_plan_bytes(net, rows);
    if (bytes > AAS_TRAIN_MAX_BATCH_BYTES)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "training: a batch of %lld rows needs %lld MiB of "
                           "activations, limit %lld MiB (lower batch_size or "
                           "hidden)",
                           (long long)rows, (long long)(bytes >> 20),
                           (long long)(AAS_TRAIN_MAX_BATCH_BYTES >> 20));
    /* Slices padded to the alignment: (2 + 4 * layers) pads at most. */
    size_t total = 0, pad = AAS_TRAIN_AF;
    total += aas_train_round_up((size_t)(rows * net->dim), pad);
    for (size_t i = 0; i < net->n_layers; i++)
        total += 4 * aas_train_round_up((size_t)(rows * net->out[i]), pad);
    if (!(pl->buf = aas_train_alloc(total)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "training: out of memory for a batch of %lld rows",
                           (long long)rows);
    float *p = pl->buf;
    pl->x = p;
    p += aas_train_round_up((size_t)(rows * net->dim), pad);
    for (size_t i = 0; i < net->n_layers; i++) {
        size_t n = aas_train_round_up((size_t)(rows * net->out[i]), pad);
        pl->z[i] = p, p += n;
        pl->dz[i] = p, p += n;
        pl->a[i] = p, p += n;
        pl->da[i] = p, p += n;
    }
    pl->rows = rows;
    for (size_t i = 0; i < net->n_layers; i++) {
        aas_err_t err = aas_train_layer_build(net, pl, i, errstr, errstr_size);
        if (err) return err;
    }
    return AAS_ERR_OK;
}

/* The plan for rows, built on a miss in place of the least recently used. */
aas_err_t aas_train_plan_get(aas_train_net_t *net, int64_t rows,
                                    aas_train_plan_t **out, char *errstr,
                                    size_t errstr_size) {
    aas_train_plan_t *slot = &net->plan[0];
    for (int i = 0; i < AAS_TRAIN_PLANS; i++) {
        aas_train_plan_t *pl = &net->plan[i];
        if (pl->rows == rows) {
            pl->last_use = ++net->clock;
            *out = pl;
            return AAS_ERR_OK;
        }
        if (slot->rows != 0 && (pl->rows == 0 || pl->last_use < slot->last_use))
            slot = pl;
    }
    aas_train_plan_free(net, slot);
    aas_err_t err = aas_train_plan_build(net, slot, rows, errstr, errstr_size);
    if (err) {
        aas_train_plan_free(net, slot);
        return err;
    }
    slot->last_use = ++net->clock;
    *out = slot;
    return AAS_ERR_OK;
}
