/*
 * model_mlp_int.h - what the files of the native MLP kind share:
 * model_mlp.c (the AASMLP1 format: check, load, serialize),
 * model_mlp_run.c (oneDNN execution: batch-size buckets, precisions) and
 * model_mlp_q8.c (the row kernels of int8 inference).
 */
#ifndef AAS_MODEL_MLP_INT_H
#define AAS_MODEL_MLP_INT_H

#include <dnnl.h>
#include <stdint.h>

#include "gemm_small.h"
#include "model_int.h"

/* Largest batch-size bucket: bigger batches run in chunks of it.  Past
 * ~8 rows a row costs the same at every batch size (docs/precision.md),
 * so a larger chunk buys nothing but memory. */
#define AAS_MLP_BUCKET_MAX 256
/* Buckets: 1..8, then 4 per octave up to 256 (10..16, 20..32, 40..64,
 * 80..128, 160..256).  So few that every one seen stays built. */
#define AAS_MLP_BUCKETS 28

/* Weights in one layout (and data type) some primitive asked for, shared
 * by the buckets whose primitives want that layout (refs). */
typedef struct aas_mlp_wts_s {
    struct aas_mlp_wts_s *next;
    dnnl_memory_desc_t md;
    dnnl_memory_t mem;
    size_t bytes;        /* allocated by oneDNN; 0 if mem wraps layer->w */
    int refs;
} aas_mlp_wts_t;

typedef struct {
    int64_t in, out;
    aas_act_t act;
    float *w;            /* out x in, row-major ("oi"), as loaded */
    float *b;            /* out */
    dnnl_memory_t bias;  /* wraps b */
    float *wscale;       /* int8 only: out per-channel scales max|w|/127 */
    aas_mlp_wts_t *wts;  /* layouts in use */
    aas_gemm_small_t *small;  /* f32 batches of 1..32 rows (gemm_small.h), packed
                               * when first needed */
} aas_mlp_layer_data_t;

/* The primitives of one bucket (rows) at the model's precision. */
typedef struct {
    int64_t rows;        /* 0 = not built yet */
    int threads;         /* OpenMP threads the primitives were planned for */
    dnnl_primitive_t ip[AAS_MLP_MAX_LAYERS];
    dnnl_memory_t src[AAS_MLP_MAX_LAYERS], dst[AAS_MLP_MAX_LAYERS];
    dnnl_memory_t pad[AAS_MLP_MAX_LAYERS];   /* scratchpad views, or NULL */
    aas_mlp_wts_t *wts[AAS_MLP_MAX_LAYERS];  /* one reference each */
    dnnl_primitive_t softmax;                /* classifiers */
    dnnl_memory_t sm_io, sm_pad;
    dnnl_primitive_t cvt;                    /* bf16: input f32 -> bf16 */
    dnnl_memory_t cvt_src, cvt_dst, cvt_pad;
    size_t bytes;        /* nominal primitive bytes */
} aas_mlp_batch_t;

/* Buffers shared by every bucket, grown (never shrunk) when a bigger bucket
 * or another precision first needs more, so inference does not allocate. */
enum {
    AAS_MLP_IN_PAD,      /* f32 input of a partial bucket */
    AAS_MLP_OUT_PAD,     /* f32 output of a partial bucket */
    AAS_MLP_ACT0,        /* hidden activations, ping-pong */
    AAS_MLP_ACT1,
    AAS_MLP_Q,           /* bf16 input, or the int8 layer's quantized source */
    AAS_MLP_RSCALE,      /* int8: f32 scale of each row's source */
    AAS_MLP_RBAD,        /* int8: 1 if the row held NaN/Inf */
    AAS_MLP_DNN,         /* oneDNN scratchpad (user mode) */
    AAS_MLP_SCRATCH_N
};

typedef struct {
    void *buf[AAS_MLP_SCRATCH_N];   /* 64-byte aligned, zeroed when grown */
    size_t cap[AAS_MLP_SCRATCH_N];  /* bytes */
} aas_mlp_scratch_t;

typedef struct {
    aas_model_t base;    /* first: model.c sees only this */
    size_t n_layers;
    aas_mlp_layer_data_t *layers;
    int64_t widest;      /* largest hidden (not last) out dim, 0 if none */
    int64_t widest_in;   /* largest in dim of any layer */
    int64_t max_rows;    /* rows above this would overflow a buffer size */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    aas_precision_t prec;  /* what the cache and the weights are built for */
    aas_mlp_batch_t cache[AAS_MLP_BUCKETS];  /* by bucket index */
    aas_mlp_scratch_t scratch;
    size_t fixed_bytes;  /* struct, weights, biases, labels */
} aas_mlp_t;

/* ---- model_mlp_run.c ---- */

/** Engine, stream and bias memories of a freshly filled model. */
aas_err_t aas_mlp_run_init(aas_mlp_t *m, char *errstr, size_t errstr_size);
/** Everything aas_mlp_run_init and inference built (partial is fine). */
void aas_mlp_run_free(aas_mlp_t *m);
void aas_mlp_update_footprint(aas_mlp_t *m);
aas_err_t aas_mlp_infer(aas_model_t *base, const float *in, int64_t rows,
                        float *out, char *errstr, size_t errstr_size);
aas_err_t aas_mlp_set_precision(aas_model_t *base, aas_precision_t p,
                                char *errstr, size_t errstr_size);

/* ---- model_mlp_q8.c: int8 row kernels, plain C ---- */

/**
 * Quantize n rows of dim f32 (row stride dim) to 8 bits, each row with its
 * own scale: signed, q = round(x / s) with s = max|x| / 127; unsigned (for
 * rows known >= 0), s = max|x| / 255.  Writes q (n x dim bytes), scale[r]
 * = s, and bad[r] = 1 if the row holds NaN/Inf (its q is then all 0).
 */
void aas_mlp_q8_quantize(const float *x, int64_t n, int64_t dim, int is_signed,
                         void *q, float *scale, unsigned char *bad);
/**
 * Finish a layer that ran on quantized rows: y[r,:] = act(scale[r] * y[r,:]
 * + b) in place for n rows of dim (y already holds the per-channel weight
 * scale times the integer dot product).  Softmax and none are identity here.
 */
void aas_mlp_q8_finish(float *y, int64_t n, int64_t dim, const float *b,
                       aas_act_t act, const float *scale);

#endif
