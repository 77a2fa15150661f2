/*
 * gemm_small.c - y = act(x W^T + b) for a small batch (1 to 32 rows) in
 * C: the serving shape of a dense layer (PyTorch's nn.Linear exported as
 * an ONNX Gemm, an AASMLP1 layer) at low load.  Used by onnx_ops_dnn.c and
 * model_mlp_run.c; gemm_small.h is its API.
 *
 * Why not oneDNN: at 8 rows its AVX2 inner product (gemm:jit) streams the
 * weights in their plain layout and ran the 784-512-512-10 MLP in ~214 us
 * against ONNX Runtime's ~149 us (1 thread, AVX2 AMD EPYC, docs/onnx.md),
 * whose GEMM reads weights packed in panels.  Here too the weights are
 * packed once, at plan time, into panels of 8 output columns
 * ([N/8][K][8], N rounded up to 16); a pair of panels (16 columns x K) is
 * read contiguously and stays in L1 while blocks of 2, 4 or 6 rows pass
 * over it, their 2 x R accumulators in vector registers (GCC vector
 * extensions; AVX2 / AVX-512 clones by target_clones; a short last block
 * repeats its last row rather than branch); panel pairs are shared out
 * over the OpenMP pool.  Measured, CPU time per call of
 * the whole MLP: 2 rows 145 -> 56 us, 8 rows 214 -> 143, 16 rows 327 ->
 * 253, 32 rows 551 -> 519, 64 rows equal; so more than 32 stay on oneDNN.
 * One row (a gemv) runs here too, as fast as oneDNN on one thread (54 vs
 * 50-55 us, AMD EPYC Zen 3, 2026-12-04), because here the threads are
 * ours to choose: oneDNN shared a one-row pass of any size over its pool,
 * three wake-ups a job for a 3-layer MLP with batching off.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_small.h"

#ifdef AAS_HAVE_TARGET_CLONES
#define AAS_GEMM_KERNEL \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AAS_GEMM_KERNEL
#endif

typedef float aas_g8 __attribute__((vector_size(32)));
typedef int aas_g8i __attribute__((vector_size(32)));
#define AAS_GEMM_V 8     /* columns a panel */
#define AAS_G8_LOAD(v, p) memcpy(&(v), (p), sizeof(aas_g8))

struct aas_gemm_small_s {
    int64_t k, n, np;       /* np: n rounded up to a panel pair (aas_gemm_np) */
    float *w;               /* [np/8][k][8], zeros past n */
    float *bias;            /* [np] */
    dnnl_alg_kind_t alg;    /* activation after the bias, or undef */
    float alpha, beta;
};

int aas_gemm_small_fits(int64_t m) { return m >= 1 && m <= AAS_GEMM_SMALL_MAX; }

/* n output columns rounded up to whole panel pairs. */
static int64_t aas_gemm_np(int64_t n) {
    return (n + 2 * AAS_GEMM_V - 1) / (2 * AAS_GEMM_V) * (2 * AAS_GEMM_V);
}

/* Whether m rows of a k x np layer are shared out over the OpenMP pool:
 * at least 4 panel pairs and more than AAS_GEMM_PARALLEL_MIN multiply-adds.
 * A one-row pass of 784-512-512-10 (400 K in its first layer) stays on one
 * thread, 4 rows of it go parallel; 64 rows of 64-128-128-10 (at most 1 M a
 * layer) stay on one thread.  The one rule for aas_gemm_small() and
 * aas_gemm_small_prefer(). */
static int aas_gemm_shared(int64_t m, int64_t k, int64_t np) {
    return np / (2 * AAS_GEMM_V) >= 4 && m * k * np > AAS_GEMM_PARALLEL_MIN;
}

int aas_gemm_small_prefer(int64_t m, int64_t k, int64_t n) {
    if (aas_gemm_small_fits(m)) return 1;
    if (m < 1 || m > AAS_GEMM_SMALL_SERIAL_MAX || k > AAS_GEMM_PARALLEL_MIN ||
        n > AAS_GEMM_PARALLEL_MIN) /* keeps the product below from overflowing */
        return 0;
    return !aas_gemm_shared(m, k, aas_gemm_np(n));
}

size_t aas_gemm_small_bytes(const aas_gemm_small_t *g) {
    return g ? sizeof(*g) + (size_t)(g->np * g->k + g->np) * sizeof(float) : 0;
}

void aas_gemm_small_free(aas_gemm_small_t *g) {
    if (!g) return;
    free(g->w);
    free(g->bias);
    free(g);
}

aas_err_t aas_gemm_small_new(int64_t k, int64_t n, const float *w, int trans_b,
                            const float *bias, dnnl_alg_kind_t alg, float alpha, float beta,
                            aas_gemm_small_t **out, char *errstr, size_t errstr_size) {
    aas_gemm_small_t *g = calloc(1, sizeof(*g));
    if (!g) goto nomem;
    g->k = k;
    g->n = n;
    g->np = aas_gemm_np(n);
    g->alg = alg;
    g->alpha = alpha;
    g->beta = beta;
    if (!(g->w = aligned_alloc(64, ((size_t)(g->np * k) * sizeof(float) + 63) / 64 * 64)) ||
        !(g->bias = calloc((size_t)g->np, sizeof(float))))
        goto nomem;
    memset(g->w, 0, (size_t)(g->np * k) * sizeof(float));
    /* B is [k][n] (trans_b 0) or [n][k] (trans_b 1); panel p holds output
     * columns 8p..8p+7, row kk at w[(p * k + kk) * 8 ..] */
    for (int64_t j = 0; j < n; j++)
        for (int64_t kk = 0; kk < k; kk++)
            g->w[((j / AAS_GEMM_V) * k + kk) * AAS_GEMM_V + j % AAS_GEMM_V] =
                trans_b ? w[j * k + kk] : w[kk * n + j];
    if (bias) memcpy(g->bias, bias, (size_t)n * sizeof(float));
    *out = g;
    return AAS_ERR_OK;
nomem:
    aas_gemm_small_free(g);
    return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
}

/* In place (a vector return value would change the ABI between clones). */
static inline void aas_gemm_act(const aas_gemm_small_t *p, aas_g8 *v) {
    if (p->alg == dnnl_eltwise_relu && p->alpha == 0.0f) {
        *v = (aas_g8)((aas_g8i)*v & (*v > (aas_g8){0}));
        return;
    }
    if (p->alg == dnnl_alg_kind_undef) return;
    float t[AAS_GEMM_V];
    memcpy(t, v, sizeof(t));
    for (int i = 0; i < AAS_GEMM_V; i++) {
        float x = t[i];
        switch (p->alg) {
        case dnnl_eltwise_relu: t[i] = x > 0 ? x : x * p->alpha; break;
        case dnnl_eltwise_logistic: t[i] = 1.0f / (1.0f + expf(-x)); break;
        case dnnl_eltwise_tanh: t[i] = tanhf(x); break;
        case dnnl_eltwise_clip: t[i] = x < p->alpha ? p->alpha : x > p->beta ? p->beta : x; break;
        default: break;
        }
    }
    memcpy(v, t, sizeof(t));
}

/* R rows (x rows r0.. with the last repeated past `rows`) x two panels
 * (16 output columns): per k two weight vectors and R broadcasts feed 2R
 * multiply-adds, with 2R accumulators in registers (R <= 6 leaves room on
 * AVX2's 16).  One function per R, by the macro. */
#define AAS_GEMM_BLOCK(R)                                                                  \
    AAS_GEMM_KERNEL                                                                        \
    static void aas_gemm_block##R(const aas_gemm_small_t *g, int64_t p,               \
                                  const float *restrict x, int64_t rows,                   \
                                  float *restrict y) {                                     \
        const int64_t K = g->k, N = g->n;                                                  \
        const float *xr[R];                                                                \
        for (int r = 0; r < R; r++) xr[r] = x + (r < rows ? r : rows - 1) * K;             \
        const float *restrict w0 = g->w + p * K * AAS_GEMM_V;                              \
        const float *restrict w1 = w0 + K * AAS_GEMM_V;                                    \
        aas_g8 a0[R], a1[R];                                                               \
        for (int r = 0; r < R; r++) a0[r] = a1[r] = (aas_g8){0};                           \
        for (int64_t kk = 0; kk < K; kk++) {                                               \
            aas_g8 v0, v1;                                                                 \
            AAS_G8_LOAD(v0, w0 + kk * AAS_GEMM_V);                                         \
            AAS_G8_LOAD(v1, w1 + kk * AAS_GEMM_V);                                         \
            for (int r = 0; r < R; r++) {                                                  \
                float xv = xr[r][kk];                                                      \
                a0[r] += xv * v0;                                                          \
                a1[r] += xv * v1;                                                          \
            }                                                                              \
        }                                                                                  \
        for (int h = 0; h < 2; h++) {                                                      \
            int64_t n0 = (p + h) * AAS_GEMM_V;                                             \
            if (n0 >= N) break;                                                            \
            int64_t cnt = N - n0 < AAS_GEMM_V ? N - n0 : AAS_GEMM_V;                       \
            aas_g8 bv;                                                                     \
            AAS_G8_LOAD(bv, g->bias + n0);                                                 \
            for (int r = 0; r < R && r < rows; r++) {                                      \
                aas_g8 v = (h ? a1[r] : a0[r]) + bv;                                       \
                aas_gemm_act(g, &v);                                                \
                memcpy(y + r * N + n0, &v, (size_t)cnt * sizeof(float));                   \
            }                                                                              \
        }                                                                                  \
    }

AAS_GEMM_BLOCK(2)
AAS_GEMM_BLOCK(4)
AAS_GEMM_BLOCK(6)

/* One row (a gemv: the shape of every job with batching off) x up to
 * AAS_GEMM_GEMV_PAIRS panel pairs.  Block 2 computed the row twice, and
 * with one chain of dependent multiply-adds per accumulator it was bound
 * by the FMA's latency; here each of 8 panels has its own chain, so the
 * weights stream at the memory's pace (784-512-512-10, 1 thread, AMD EPYC
 * Zen 4, bench_kernel: 43.6 -> 34.8 us a pass).  Each output is summed in
 * the blocks' order (k ascending, one multiply-add a k), so a row's result
 * is the same bits alone as in a batch of up to AAS_GEMM_SMALL_MAX. */
#define AAS_GEMM_GEMV_PAIRS 4
AAS_GEMM_KERNEL
static void aas_gemm_gemv(const aas_gemm_small_t *g, int64_t p, int64_t panels,
                          const float *restrict x, float *restrict y) {
    const int64_t K = g->k, N = g->n;
    const float *restrict w = g->w + p * K * AAS_GEMM_V;
    aas_g8 a[2 * AAS_GEMM_GEMV_PAIRS];
    for (int j = 0; j < 2 * AAS_GEMM_GEMV_PAIRS; j++) a[j] = (aas_g8){0};
    /* The common case with a constant bound, unrolled: 35.0 against 36.1 us a
     * pass for the one loop below alone (bench_kernel, Zen 4). */
    if (panels == 2 * AAS_GEMM_GEMV_PAIRS) {
        for (int64_t kk = 0; kk < K; kk++) {
            float xv = x[kk];
            for (int j = 0; j < 2 * AAS_GEMM_GEMV_PAIRS; j++) {
                aas_g8 v;
                AAS_G8_LOAD(v, w + (j * K + kk) * AAS_GEMM_V);
                a[j] += xv * v;
            }
        }
    } else {
        for (int64_t kk = 0; kk < K; kk++) {
            float xv = x[kk];
            for (int j = 0; j < panels; j++) {
                aas_g8 v;
                AAS_G8_LOAD(v, w + (j * K + kk) * AAS_GEMM_V);
                a[j] += xv * v;
            }
        }
    }
    for (int j = 0; j < panels; j++) {
        int64_t n0 = (p + j) * AAS_GEMM_V;
        if (n0 >= N) break;
        int64_t cnt = N - n0 < AAS_GEMM_V ? N - n0 : AAS_GEMM_V;
        aas_g8 bv;
        AAS_G8_LOAD(bv, g->bias + n0);
        aas_g8 v = a[j] + bv;
        aas_gemm_act(g, &v);
        memcpy(y + n0, &v, (size_t)cnt * sizeof(float));
    }
}

/* Panel pair by panel pair: 16 columns x K floats stay in L1 while every
 * block of rows passes over them, so the weights are read from memory once. */
void aas_gemm_small(const aas_gemm_small_t *g, const float *x, int64_t m, float *y) {
    /* Panel pairs over oneDNN's OpenMP pool (where the compiler has OpenMP)
     * when there is enough work to share: each thread streams its own
     * share of the weights.  Not up to AAS_GEMM_PARALLEL_MIN multiply-adds
     * (tens of microseconds on one core): waking the pool and parking it
     * again costs more CPU than that saves, and the CPU a job costs is what
     * a busy worker runs out of (docs/performance.md, "Cost per job"). */
    const int64_t pairs = g->np / (2 * AAS_GEMM_V);
    if (m == 1) {
        const int64_t groups = (pairs + AAS_GEMM_GEMV_PAIRS - 1) / AAS_GEMM_GEMV_PAIRS;
#pragma omp parallel for schedule(static) if (aas_gemm_shared(m, g->k, g->np))
        for (int64_t q = 0; q < groups; q++) {
            int64_t left = pairs - q * AAS_GEMM_GEMV_PAIRS;
            aas_gemm_gemv(g, 2 * q * AAS_GEMM_GEMV_PAIRS,
                          2 * (left < AAS_GEMM_GEMV_PAIRS ? left : AAS_GEMM_GEMV_PAIRS), x, y);
        }
        return;
    }
#pragma omp parallel for schedule(static) \
    if (aas_gemm_shared(m, g->k, g->np))
    for (int64_t q = 0; q < pairs; q++) {
        const int64_t p = 2 * q;
        for (int64_t r0 = 0; r0 < m;) {
            int64_t left = m - r0, n = left < 6 ? left : 6;
            const float *xb = x + r0 * g->k;
            float *yb = y + r0 * g->n;
            if (n > 4)
                aas_gemm_block6(g, p, xb, n, yb);
            else if (n > 2)
                aas_gemm_block4(g, p, xb, n, yb);
            else
                aas_gemm_block2(g, p, xb, n, yb);
            r0 += n;
        }
    }
}
