/*
 * train_int.h - internals shared by the training module's files: the
 * network and its per-batch-size plans (train.c), the optimiser step
 * (train_step.c), evaluation, export and the training loop
 * (train_fit.c) and data-parallel rounds (train_dp.c).  Not an API: only those files include it.
 */
#ifndef AAS_TRAIN_INT_H
#define AAS_TRAIN_INT_H

#include <dnnl.h>
#include <stddef.h>
#include <stdint.h>

#include "train.h"

#define AAS_TRAIN_PLANS 4 /* batch sizes kept: batch, remainders, predict */
#define AAS_TRAIN_ALIGN 64 /* bytes; every parameter slice starts here */
#define AAS_TRAIN_AF (AAS_TRAIN_ALIGN / sizeof(float))
#define AAS_TRAIN_L AAS_MLP_MAX_LAYERS

typedef struct {
    uint64_t s[4];
} aas_train_rng_t;

/* Independent streams from one seed: init, split, shuffles. */
enum { AAS_TRAIN_RNG_INIT = 1, AAS_TRAIN_RNG_SPLIT = 2, AAS_TRAIN_RNG_SHUFFLE = 3 };

/* Everything that depends on the batch size. */
typedef struct {
    int64_t rows; /* 0 = empty slot */
    uint64_t last_use;
    float *buf;   /* all activation buffers, one allocation */
    float *x;     /* rows x dim, scaled input */
    float *z[AAS_TRAIN_L], *dz[AAS_TRAIN_L]; /* pre-activation and its grad */
    float *a[AAS_TRAIN_L], *da[AAS_TRAIN_L]; /* hidden outputs and grads */
    dnnl_memory_t m_x, m_dx;                 /* m_dx wraps the caller's dx */
    dnnl_memory_t m_z[AAS_TRAIN_L], m_dz[AAS_TRAIN_L];
    dnnl_memory_t m_a[AAS_TRAIN_L], m_da[AAS_TRAIN_L];
    dnnl_memory_t m_ws[AAS_TRAIN_L];         /* eltwise workspace, if any */
    dnnl_primitive_t ip_fwd[AAS_TRAIN_L], ip_bwd_d[AAS_TRAIN_L],
        ip_bwd_w[AAS_TRAIN_L], elt_fwd[AAS_TRAIN_L], elt_bwd[AAS_TRAIN_L];
} aas_train_plan_t;

struct aas_train_net_s {
    aas_train_params_t p;   /* labels not used */
    double lr;
    int64_t dim;
    int32_t n_classes;
    size_t n_layers;
    int64_t in[AAS_TRAIN_L], out[AAS_TRAIN_L];
    aas_act_t act[AAS_TRAIN_L];               /* NONE on the output layer */
    size_t w_off[AAS_TRAIN_L], b_off[AAS_TRAIN_L]; /* floats into the arrays */
    size_t n_floats;                          /* per array, with padding */
    float *param, *grad, *mom1, *mom2;        /* mom2 only for adam */
    int64_t steps;
    int have_grads;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_memory_t m_w[AAS_TRAIN_L], m_b[AAS_TRAIN_L];
    dnnl_memory_t m_dw[AAS_TRAIN_L], m_db[AAS_TRAIN_L];
    aas_train_plan_t plan[AAS_TRAIN_PLANS];
    uint64_t clock;
    char **labels;                            /* n_classes names, owned */
};

/* train.c: memory */
size_t aas_train_round_up(size_t n, size_t to);
/* Zeroed, AAS_TRAIN_ALIGN-aligned; free() it. */
float *aas_train_alloc(size_t n_floats);
aas_err_t aas_train_md(dnnl_memory_desc_t *md, int64_t d0, int64_t d1,
                       dnnl_format_tag_t tag, char *errstr, size_t errstr_size);
aas_err_t aas_train_wrap(aas_train_net_t *net, dnnl_memory_t *m,
                         const dnnl_memory_desc_t *md, void *ptr, char *errstr,
                         size_t errstr_size);

/* train_rng.c */
void aas_train_rng_seed(aas_train_rng_t *r, uint64_t seed, uint64_t stream);
void aas_train_rng_shuffle(aas_train_rng_t *r, int64_t *v, int64_t n);
double aas_train_rng_normal(aas_train_rng_t *r);

/* train_plan.c */
int64_t aas_train_plan_bytes(const aas_train_net_t *net, int64_t rows);
void aas_train_plan_free(aas_train_net_t *net, aas_train_plan_t *pl);
aas_err_t aas_train_plan_get(aas_train_net_t *net, int64_t rows,
                             aas_train_plan_t **out, char *errstr,
                             size_t errstr_size);

/* train_pass.c */
aas_err_t aas_train_batch(aas_train_net_t *net, const float *x, const int32_t *y,
                          const int64_t *idx, int64_t rows, float *dx, double *loss,
                          char *errstr, size_t errstr_size);
aas_err_t aas_train_check_rows(const aas_train_net_t *net, const float *x,
                               const int32_t *y, int64_t rows, int64_t max_rows,
                               char *errstr, size_t errstr_size);
aas_err_t aas_train_forward(aas_train_net_t *net, aas_train_plan_t *pl,
                            char *errstr, size_t errstr_size);
void aas_train_load_x(const aas_train_net_t *net, aas_train_plan_t *pl,
                      const float *x, const int64_t *idx);
double aas_train_softmax_ce(const float *z, const int32_t *y, const int64_t *idx,
                            int64_t rows, int64_t c, float *dz, float *probs,
                            int64_t *correct);

/* train_fit.c: shared with train_dp.c */
aas_err_t aas_train_eval(aas_train_net_t *net, const float *x, const int32_t *y,
                         const int64_t *idx, int64_t rows, double *loss_sum,
                         int64_t *correct, float *probs, char *errstr, size_t errstr_size);
aas_err_t aas_train_check_data(const aas_train_net_t *net, const float *x,
                               const int32_t *y, int64_t n, char *errstr,
                               size_t errstr_size);

#endif
