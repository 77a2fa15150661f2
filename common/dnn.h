/*
 * dnn.h - oneDNN's status codes wrapped once: a failed call becomes
 * AAS_ERR_DNN with the call's name, oneDNN's word for the status and our
 * file:line in errstr.  Used by the model and training code.
 */
#ifndef AAS_DNN_H
#define AAS_DNN_H

#include <dnnl.h>
#include <stddef.h>

#include "err.h"

/** @brief AAS_ERR_OK for dnnl_success, else AAS_ERR_DNN with errstr set. */
aas_err_t aas_dnn_status(dnnl_status_t st, const char *call, const char *file,
                         int line, char *errstr, size_t errstr_size);

/* Evaluates to AAS_ERR_OK or AAS_ERR_DNN; expects errstr/errstr_size in
 * scope. */
#define AAS_DNN_CHECK(call)                                                   \
    aas_dnn_status((call), #call, __FILE__, __LINE__, errstr, errstr_size)

/**
 * @brief The primitive descriptor of a forward-inference inner product
 *        (src [M,K] -> dst [M,N], weights N x K of type wdt, bias may be
 *        NULL), weights in the layout oneDNN picks, except that when
 *        prefer_oi is set and oneDNN's pick runs on its gemm path (CPUs
 *        without AVX-512: it picks "io"), the weights are "oi" instead,
 *        which that path runs 20-25% faster at batch 64-256 (measured on an
 *        AVX2 AMD EPYC, docs/performance.md).  Where oneDNN has a blocked
 *        kernel (brgemm on AVX-512) its own pick is kept.
 * @param pd caller destroys.
 */
aas_err_t aas_dnn_inner_product_pd(dnnl_primitive_desc_t *pd, const dnnl_memory_desc_t *src,
                                   int64_t n, int64_t k, dnnl_data_type_t wdt,
                                   const dnnl_memory_desc_t *bias,
                                   const dnnl_memory_desc_t *dst,
                                   const_dnnl_primitive_attr_t attr, dnnl_engine_t engine,
                                   int prefer_oi, char *errstr, size_t errstr_size);

#endif
