/*
 * model_mlp_q8.c - the row kernels around int8 inner products
 * (model_mlp_run.c, docs/precision.md): quantize each row of a layer's
 * source with its own scale, and finish a layer (row scale, bias,
 * activation) on the f32 the primitive wrote.
 *
 * Plain loops written for the auto-vectorizer, which this file always gets
 * (-O3, common/CMakeLists.txt): no float reductions (the max |x| is an
 * integer max over the bit patterns), no clamps the arithmetic cannot need.
 * Where the compiler can, each kernel is also built for AVX2 and AVX-512
 * and picked at load time (target_clones); -ffp-contract=off keeps every
 * clone's arithmetic, hence every result, bit-identical.  Rows are
 * independent, so big batches are split over OpenMP's threads (the pool
 * oneDNN runs on, sized by OMP_NUM_THREADS), each row's result unchanged.
 * Nothing here allocates or calls oneDNN.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "model_mlp_int.h"

/* Values below which a parallel region costs more than it saves. */
#define AAS_Q8_PAR_MIN 16384

#ifdef AAS_HAVE_TARGET_CLONES
#define AAS_Q8_KERNEL                                                         \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AAS_Q8_KERNEL
#endif

/* max |x| over a row as the bit pattern of a non-negative float: those
 * order like integers, and NaN/Inf are the patterns >= 0x7f800000. */
AAS_Q8_KERNEL
static uint32_t aas_q8_absmax_bits(const float *restrict x, int64_t dim) {
    int32_t m = 0;
    for (int64_t j = 0; j < dim; j++) {
        int32_t u;
        memcpy(&u, x + j, sizeof(u));
        u &= 0x7fffffff;
        m = u > m ? u : m;
    }
    return (uint32_t)m;
}

/* q = round(x * inv) in -127..127 as s8, for |x| * inv <= 127: the offset
 * makes the value positive, so truncation rounds it (half up). */
AAS_Q8_KERNEL
static void aas_q8_row_s8(const float *restrict x, int64_t dim, float inv,
                          signed char *restrict q) {
    for (int64_t j = 0; j < dim; j++)
        q[j] = (signed char)((int)(x[j] * inv + 128.5f) - 128);
}

/* q = round(x * inv) in 0..255 as u8, for 0 <= x * inv <= 255. */
AAS_Q8_KERNEL
static void aas_q8_row_u8(const float *restrict x, int64_t dim, float inv,
                          unsigned char *restrict q) {
    for (int64_t j = 0; j < dim; j++) q[j] = (unsigned char)(int)(x[j] * inv + 0.5f);
}

void aas_mlp_q8_quantize(const float *x, int64_t n, int64_t dim, int is_signed, void *q,
                         float *scale, unsigned char *bad) {
    float levels = is_signed ? 127.0f : 255.0f;
#pragma omp parallel for schedule(static) if (n * dim >= AAS_Q8_PAR_MIN)
    for (int64_t r = 0; r < n; r++) {
        const float *row = x + r * dim;
        unsigned char *qr = (unsigned char *)q + r * dim;
        uint32_t bits = aas_q8_absmax_bits(row, dim);
        if (bits >= 0x7f800000u) { /* NaN/Inf: the caller outputs NaN */
            bad[r] = 1;
            memset(qr, 0, (size_t)dim);
            scale[r] = 0.0f;
        } else {
            float m;
            memcpy(&m, &bits, sizeof(m));
            float inv = m > 0.0f ? levels / m : 0.0f;
            if (!(inv <= FLT_MAX)) inv = m = 0.0f; /* denormal row: quantizes to 0 */
            scale[r] = m / levels;
            if (is_signed) aas_q8_row_s8(row, dim, inv, (signed char *)qr);
            else aas_q8_row_u8(row, dim, inv, qr);
        }
    }
}

AAS_Q8_KERNEL
static void aas_q8_affine(float *restrict y, int64_t dim, float s, const float *restrict b) {
    for (int64_t j = 0; j < dim; j++) y[j] = y[j] * s + b[j];
}

AAS_Q8_KERNEL
static void aas_q8_affine_relu(float *restrict y, int64_t dim, float s,
                               const float *restrict b) {
    for (int64_t j = 0; j < dim; j++) {
        float v = y[j] * s + b[j];
        y[j] = v > 0.0f ? v : 0.0f;
    }
}

void aas_mlp_q8_finish(float *y, int64_t n, int64_t dim, const float *b, aas_act_t act,
                       const float *scale) {
#pragma omp parallel for schedule(static) if (n * dim >= AAS_Q8_PAR_MIN)
    for (int64_t r = 0; r < n; r++) {
        float s = scale[r], *row = y + r * dim;
        switch (act) {
        case AAS_ACT_RELU: aas_q8_affine_relu(row, dim, s, b); break;
        case AAS_ACT_TANH:
            for (int64_t j = 0; j < dim; j++) row[j] = tanhf(row[j] * s + b[j]);
            break;
        case AAS_ACT_SIGMOID:
            for (int64_t j = 0; j < dim; j++)
                row[j] = 1.0f / (1.0f + expf(-(row[j] * s + b[j])));
            break;
        default: /* none, and softmax (a primitive runs it afterwards) */
            aas_q8_affine(row, dim, s, b);
            break;
        }
    }
}
