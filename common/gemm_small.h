/*
 * gemm_small.h - a dense layer, y = act(x W^T + b), for batches of 1 to
 * AAS_GEMM_SMALL_MAX rows, with weights packed once (gemm_small.c says why
 * and what it measured).  Used by ONNX Gemm (onnx_ops_dnn.c) and native
 * AASMLP1 layers (model_mlp_run.c); other batch sizes stay on oneDNN.
 *
 * Threading: an object is read-only after _new; aas_gemm_small() may run
 * on several threads at once (each with its own x and y).
 */
#ifndef AAS_GEMM_SMALL_H
#define AAS_GEMM_SMALL_H

#include <dnnl.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AAS_GEMM_SMALL_MAX 32

typedef struct aas_gemm_small_s aas_gemm_small_t;

/** @brief 1 if a batch of m rows runs here (1 <= m <= AAS_GEMM_SMALL_MAX). */
int aas_gemm_small_fits(int64_t m);

/* Up to this many rows, a layer of at most AAS_GEMM_PARALLEL_MIN
 * multiply-adds (m x k x n, n padded to panels) runs here too: on one
 * thread, where oneDNN would wake its pool for a few microseconds of work
 * (gemm_small.c). */
#define AAS_GEMM_SMALL_SERIAL_MAX 64
#define AAS_GEMM_PARALLEL_MIN (1 << 20)

/** @brief 1 if m rows of a k-in, n-out layer should run here: fits(m), or
 *         m <= AAS_GEMM_SMALL_SERIAL_MAX and too little work to share. */
int aas_gemm_small_prefer(int64_t m, int64_t k, int64_t n);

/**
 * @brief Pack weights w ([k][n], or [n][k] when trans_b) and copy bias (n
 *        values, or NULL for none).  alg: dnnl_eltwise_relu (alpha: the
 *        negative slope), _logistic, _tanh, _clip (alpha..beta), or
 *        dnnl_alg_kind_undef for none.  w and bias may be freed afterwards.
 */
aas_err_t aas_gemm_small_new(int64_t k, int64_t n, const float *w, int trans_b,
                             const float *bias, dnnl_alg_kind_t alg, float alpha, float beta,
                             aas_gemm_small_t **out, char *errstr, size_t errstr_size);
/** @brief NULL is a no-op. */
void aas_gemm_small_free(aas_gemm_small_t *g);
/** @brief Bytes held (the packed weights). */
size_t aas_gemm_small_bytes(const aas_gemm_small_t *g);
/** @brief y [m][n] = act(x [m][k] W + bias) for 1 <= m; allocates nothing. */
void aas_gemm_small(const aas_gemm_small_t *g, const float *x, int64_t m, float *y);

#endif
