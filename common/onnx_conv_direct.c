/*
 * onnx_conv_direct.c - a direct 2-D convolution in C for the first layer of
 * an image CNN: 1 to 4 input channels, group 1, stride 1, no dilation.
 *
 * Why not oneDNN: with 1 input channel its AVX2 kernel (jit:avx2, output in
 * nChw8c) takes ~0.31 ms for the [256,1,8,8] -> [256,8,8,8] 3x3 convolution
 * of the digits CNN (2.4 MFLOP, ~8 GFLOP/s), half of the whole network.
 * Here each image is copied once into a zero-padded plane; then 8 output
 * columns of one output row are one vector, the sum over the taps of a
 * weight times 8 consecutive plane values, for 8 output channels at once
 * in 8 vector registers (GCC vector extensions: AVX2 / AVX-512 clones by
 * target_clones, SSE otherwise), stored straight into NCHW with the bias
 * and the fused activation.  The whole digits CNN, 1 thread, CPU time per
 * call on the AVX2 AMD EPYC of docs/performance.md: 548 -> 450 us at batch
 * 256, 137 -> 114 us at 64, 21.4 -> 18.9 us at 8.  Larger channel counts
 * stay on oneDNN, whose blocked kernels are fast there.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"

/* Images over oneDNN's OpenMP pool when the compiler has OpenMP (CMake
 * checks; clang without libomp, as in the fuzzing build, runs them in
 * one thread). */
#ifdef _OPENMP
#include <omp.h>
#define AAS_CONV_THREADS() omp_get_max_threads()
#define AAS_CONV_THREAD() omp_get_thread_num()
#else
#define AAS_CONV_THREADS() 1
#define AAS_CONV_THREAD() 0
#endif

#ifdef AAS_HAVE_TARGET_CLONES
#define AAS_CONV_KERNEL \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AAS_CONV_KERNEL
#endif

typedef float aas_v8 __attribute__((vector_size(32)));
typedef int aas_v8i __attribute__((vector_size(32)));
#define AAS_CONV_V 8    /* output columns a vector */
#define AAS_CONV_OB 8   /* output channels a block (registers) */
/* A macro, not a function: a vector return value would change the ABI
 * between the clones. */
#define AAS_V8_LOAD(v, p) memcpy(&(v), (p), sizeof(aas_v8))

struct aas_onnx_conv_direct_s {
    aas_onnx_conv_direct_t c;
    int64_t hp, wp, ocp;    /* padded plane; output channels rounded up */
    size_t plane_floats;    /* one image's padded input, plus slack */
    int threads;
    float *w;               /* [ocp][ic][kh][kw], zeros past oc */
    float *bias;            /* [ocp] */
    float *scratch;         /* threads x plane_floats */
};

int aas_onnx_conv_direct_fits(int64_t ic, int64_t group, int sp, const int64_t *stride,
                              const int64_t *dil) {
    return group == 1 && sp == 2 && ic >= 1 && ic <= AAS_ONNX_CONV_DIRECT_MAX_IC &&
           stride[0] == 1 && stride[1] == 1 && dil[0] == 1 && dil[1] == 1;
}

void aas_onnx_conv_direct_free(aas_onnx_conv_direct_state_t *s) {
    if (!s) return;
    free(s->w);
    free(s->bias);
    free(s->scratch);
    free(s);
}

aas_err_t aas_onnx_conv_direct_new(const aas_onnx_conv_direct_t *c, const float *w,
                                   const float *b, aas_onnx_conv_direct_state_t **out,
                                   char *errstr, size_t errstr_size) {
    aas_onnx_conv_direct_state_t *s = calloc(1, sizeof(*s));
    if (!s) goto nomem;
    s->c = *c;
    s->hp = c->oh + c->kh - 1;   /* stride 1: every output row's window fits */
    s->wp = c->ow + c->kw - 1;
    s->ocp = (c->oc + AAS_CONV_OB - 1) / AAS_CONV_OB * AAS_CONV_OB;
    /* slack: a last partial vector reads up to AAS_CONV_V floats past a row */
    s->plane_floats = (size_t)(c->ic * s->hp * s->wp + c->kw + 2 * AAS_CONV_V);
    s->threads = AAS_CONV_THREADS();
    if (s->threads < 1) s->threads = 1;
    size_t taps = (size_t)(c->ic * c->kh * c->kw);
    if (!(s->w = calloc((size_t)s->ocp * taps, sizeof(float))) ||
        !(s->bias = calloc((size_t)s->ocp, sizeof(float))) ||
        !(s->scratch = calloc((size_t)s->threads * s->plane_floats, sizeof(float))))
        goto nomem;
    memcpy(s->w, w, (size_t)c->oc * taps * sizeof(float));
    if (b) memcpy(s->bias, b, (size_t)c->oc * sizeof(float));
    *out = s;
    return AAS_ERR_OK;
nomem:
    aas_onnx_conv_direct_free(s);
    return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
}

/* The fused activation over n values (the switch outside the loops). */
static inline void aas_conv_post(const aas_onnx_post_t *p, float *restrict y, int64_t n) {
    const float a = p->alpha, b = p->beta;
    switch (p->alg) {
    case dnnl_eltwise_relu:
        for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : y[i] * a;
        break;
    case dnnl_eltwise_logistic:
        for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    case dnnl_eltwise_tanh:
        for (int64_t i = 0; i < n; i++) y[i] = tanhf(y[i]);
        break;
    case dnnl_eltwise_clip:
        for (int64_t i = 0; i < n; i++) y[i] = y[i] < a ? a : y[i] > b ? b : y[i];
        break;
    default:
        break;
    }
}

AAS_CONV_KERNEL
static void aas_conv_image(const aas_onnx_conv_direct_state_t *s, const float *restrict x,
                           float *restrict y, float *restrict plane) {
    const aas_onnx_conv_direct_t *c = &s->c;
    const int64_t IC = c->ic, IH = c->ih, IW = c->iw, OH = c->oh, OW = c->ow, OC = c->oc;
    const int64_t KH = c->kh, KW = c->kw, HP = s->hp, WP = s->wp;
    const int64_t taps = IC * KH * KW;
    /* plain ReLU (PyTorch's) is applied on the vector before the store */
    const int relu0 = c->post.alg == dnnl_eltwise_relu && c->post.alpha == 0.0f;
    /* the zero-padded plane; input rows and columns outside it are cropped
     * (a negative right pad) */
    memset(plane, 0, s->plane_floats * sizeof(float));
    for (int64_t ic = 0; ic < IC; ic++)
        for (int64_t ih = 0; ih < IH; ih++) {
            int64_t row = ih + c->ph;
            if (row < 0 || row >= HP) continue;
            for (int64_t iw = 0; iw < IW; iw++) {
                int64_t col = iw + c->pw;
                if (col >= 0 && col < WP)
                    plane[(ic * HP + row) * WP + col] = x[(ic * IH + ih) * IW + iw];
            }
        }
    for (int64_t ob = 0; ob < s->ocp; ob += AAS_CONV_OB) {
        const float *restrict wb = s->w + ob * taps;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow += AAS_CONV_V) {
                aas_v8 acc[AAS_CONV_OB];
                for (int o = 0; o < AAS_CONV_OB; o++) acc[o] = (aas_v8){0};
                for (int64_t ic = 0; ic < IC; ic++)
                    for (int64_t kh = 0; kh < KH; kh++) {
                        const float *row = plane + (ic * HP + oh + kh) * WP + ow;
                        for (int64_t kw = 0; kw < KW; kw++) {
                            aas_v8 xv;
                            AAS_V8_LOAD(xv, row + kw);
                            const float *wt = wb + (ic * KH + kh) * KW + kw;
                            for (int o = 0; o < AAS_CONV_OB; o++) acc[o] += wt[o * taps] * xv;
                        }
                    }
                const int64_t n = OW - ow < AAS_CONV_V ? OW - ow : AAS_CONV_V;
                for (int64_t o = 0; o < AAS_CONV_OB && ob + o < OC; o++) {
                    float *yr = y + ((ob + o) * OH + oh) * OW + ow;
                    aas_v8 v = acc[o] + s->bias[ob + o];
                    if (relu0)   /* lanes > 0 kept, others 0: a compare and an and */
                        v = (aas_v8)((aas_v8i)v & (v > (aas_v8){0}));
                    if (n == AAS_CONV_V)
                        memcpy(yr, &v, sizeof(v));
                    else
                        memcpy(yr, &v, (size_t)n * sizeof(float));
                }
            }
    }
    if (!relu0) aas_conv_post(&c->post, y, OC * OH * OW);
}

void aas_onnx_conv_direct(const aas_onnx_conv_direct_state_t *s, const float *x, float *y) {
    const aas_onnx_conv_direct_t *c = &s->c;
    const int64_t in_img = c->ic * c->ih * c->iw, out_img = c->oc * c->oh * c->ow;
#pragma omp parallel for schedule(static) num_threads(s->threads) if (c->n >= 8 && s->threads > 1)
    for (int64_t n = 0; n < c->n; n++)
        aas_conv_image(s, x + n * in_img, y + n * out_img,
                       s->scratch + (size_t)AAS_CONV_THREAD() * s->plane_floats);
}
