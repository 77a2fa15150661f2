/*
 * train.h - training feed-forward classifiers with oneDNN (docs/training.md).
 *
 * A network of dense layers (relu, tanh or sigmoid between them) ending in
 * a softmax trained with cross-entropy, by mini-batch SGD with momentum or
 * by Adam, optionally with L2 weight decay.  oneDNN runs the dense layers
 * and activations (forward_training, backward_data, backward_weights and
 * eltwise primitives); the loss, its gradient and the optimiser updates are
 * plain C.  The result is an AASMLP1 blob (docs/model-format.md) that
 * aas_model_load() serves.
 *
 * Two levels:
 *  - aas_train_run(): the whole job (split, shuffle, epochs, validation,
 *    progress and cancellation, export).  This is what a TRAIN job calls.
 *  - aas_train_net_*: one network and its optimiser, step by step: loss and
 *    gradients of a batch, one update, evaluation, prediction, export.
 *    aas_train_run() is built on them, and they serve callers that drive
 *    their own loop or need gradients (with respect to the weights or to
 *    the inputs, e.g. saliency).
 *
 * It does not train anything but dense f32 classifiers on the CPU engine,
 * and it reads no files: the caller decodes the data set.
 *
 * Determinism: the same parameters, the same data (same order) and the same
 * oneDNN thread count give a byte-identical model on the same machine.
 * Random numbers come from the seed only (xoshiro256** seeded by
 * splitmix64); nothing reads the clock except for progress timing.
 *
 * Threading: everything here is reentrant; a net is used by one thread at a
 * time.  oneDNN runs primitives on OpenMP: see aas_train_params_t.threads.
 */
#ifndef AAS_TRAIN_H
#define AAS_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

/* ---- limits (docs/training.md) ---- */

/** Hidden layers: the output layer makes it AAS_MLP_MAX_LAYERS at most. */
#define AAS_TRAIN_MAX_HIDDEN (AAS_MLP_MAX_LAYERS - 1)
/** Trainable parameters (weights + biases).  Training holds four copies
 *  (parameters, gradients, two optimiser moments): 1 GiB at the limit. */
#define AAS_TRAIN_MAX_PARAMS (1LL << 26)
/** Rows per mini-batch. */
#define AAS_TRAIN_MAX_BATCH 65536
/** Activation and gradient buffers of one batch size, in bytes. */
#define AAS_TRAIN_MAX_BATCH_BYTES (256LL << 20)
/** Epochs. */
#define AAS_TRAIN_MAX_EPOCHS 100000
/** Rows of a data set (the shuffle index is 8 bytes a row). */
#define AAS_TRAIN_MAX_ROWS (1LL << 31)
/** OpenMP threads a job may ask for. */
#define AAS_TRAIN_MAX_THREADS 1024

/* ---- hyper-parameters ---- */

typedef enum { AAS_TRAIN_ADAM = 0, AAS_TRAIN_SGD = 1 } aas_train_optimizer_t;

typedef enum {
    AAS_TRAIN_INIT_AUTO = 0, /* he for relu, xavier for tanh and sigmoid */
    AAS_TRAIN_INIT_HE = 1,   /* N(0, 2 / fan_in) */
    AAS_TRAIN_INIT_XAVIER = 2 /* N(0, 2 / (fan_in + fan_out)) */
} aas_train_init_t;

/**
 * Every hyper-parameter of a training job.  aas_train_params_default()
 * fills the documented defaults; aas_train_params_set() sets one from its
 * string form (a job's params map).  The struct is plain data: copy it
 * freely.  Keys and defaults are listed in docs/training.md and by
 * aas_train_param_info().
 */
typedef struct {
    size_t n_hidden;                         /* key hidden, e.g. "128,64" */
    int64_t hidden[AAS_TRAIN_MAX_HIDDEN];
    aas_act_t activation;                    /* relu | tanh | sigmoid */
    int32_t epochs;
    int32_t batch_size;
    double learning_rate;                    /* 0: 0.001 adam, 0.01 sgd */
    aas_train_optimizer_t optimizer;
    double momentum;                         /* sgd */
    double beta1, beta2, epsilon;            /* adam */
    double weight_decay;                     /* L2 on weights, not biases */
    aas_train_init_t init;
    uint64_t seed;
    double validation_fraction;
    double scale;                            /* inputs are multiplied by it */
    int threads;                             /* 0: leave OpenMP's default */
    /* Class names for the exported model; not a key (set it in code).
     * n_labels is 0 ("0".."n-1") or the number of classes; the strings are
     * copied by aas_train_net_new(), so they need to outlive only that call
     * (or aas_train_run()). */
    const char *const *labels;
    size_t n_labels;
} aas_train_params_t;

/** @brief Fill every default.  Thread-safe. */
void aas_train_params_default(aas_train_params_t *p);

/**
 * @brief Set one hyper-parameter from its string form, validated on its
 *        own (ranges, spelling); cross-parameter rules are checked by
 *        aas_train_params_check().
 * @return AAS_ERR_INVAL with a message naming the key on an unknown key or
 *         a bad value; p is unchanged then.
 */
aas_err_t aas_train_params_set(aas_train_params_t *p, const char *key,
                               const char *value, char *errstr,
                               size_t errstr_size);

/** @brief Check a whole parameter set (also one filled in code). */
aas_err_t aas_train_params_check(const aas_train_params_t *p, char *errstr,
                                 size_t errstr_size);

/** @brief The learning rate actually used (resolves 0 by the optimiser). */
double aas_train_params_learning_rate(const aas_train_params_t *p);

/** One row of the key table that drives aas_train_params_set() and the
 *  reference in docs/training.md. */
typedef struct {
    const char *key;
    const char *default_text;
    const char *range_text;
    const char *doc;
} aas_train_param_info_t;

/** @brief Row i of the key table, NULL past the end.  Static storage. */
const aas_train_param_info_t *aas_train_param_info(size_t i);

/* ---- one network, step by step ---- */

typedef struct aas_train_net_s aas_train_net_t;

/**
 * @brief Build a network for dim inputs and n_classes classes from p
 *        (hidden layers, activation, init, seed, optimiser, scale) with
 *        freshly initialised weights: biases 0, hidden weights by p->init,
 *        output weights Xavier, all drawn from p->seed.
 * @param out an owned net on success; destroy with aas_train_net_destroy().
 * @return AAS_ERR_INVAL on bad arguments, AAS_ERR_TOO_LARGE past a limit,
 *         AAS_ERR_NOMEM, AAS_ERR_DNN.
 */
aas_err_t aas_train_net_new(const aas_train_params_t *p, int64_t dim,
                            int32_t n_classes, aas_train_net_t **out,
                            char *errstr, size_t errstr_size);
/** @brief NULL is a no-op. */
void aas_train_net_destroy(aas_train_net_t *net);

/** Dense layer i of a net.  The output layer's act is AAS_ACT_NONE: it
 *  produces logits, the softmax belongs to the loss (and to the export). */
typedef struct {
    int64_t in, out;
    aas_act_t act;
    float *weights;            /* out x in, row-major */
    float *bias;               /* out */
    const float *grad_weights; /* of the last aas_train_net_loss_and_grads */
    const float *grad_bias;
} aas_train_layer_t;

/** @brief Number of dense layers (hidden + 1). */
size_t aas_train_net_layers(const aas_train_net_t *net);

/**
 * @brief View of layer i.  The pointers are borrowed and stay valid until
 *        the net is destroyed.  The caller may write weights and bias
 *        between calls (to warm-start or probe a net): the next call uses
 *        them.  weights act on inputs multiplied by p->scale.
 * @return AAS_ERR_INVAL if i is out of range.
 */
aas_err_t aas_train_net_layer(const aas_train_net_t *net, size_t i,
                              aas_train_layer_t *out);

/**
 * @brief Mean softmax cross-entropy of a batch and its gradients.
 *
 * Forward (inner products and activations, forward_training), the loss on
 * the logits, then backward (backward_data, eltwise backward,
 * backward_weights) down to the first layer.  The weight and bias
 * gradients replace the previous ones (see aas_train_layer_t); weight decay
 * is not part of them (aas_train_net_step() adds it).
 *
 * @param x rows x dim raw inputs (scaled by p->scale inside).
 * @param y rows class indices, 0..n_classes-1.
 * @param rows 1..AAS_TRAIN_MAX_BATCH.
 * @param dx NULL, or rows x dim: receives d(loss)/d(x) with respect to the
 *        raw inputs (one more backward_data primitive).
 * @param loss receives the mean cross-entropy (natural log).
 */
aas_err_t aas_train_net_loss_and_grads(aas_train_net_t *net, const float *x,
                                       const int32_t *y, int64_t rows,
                                       float *dx, double *loss, char *errstr,
                                       size_t errstr_size);

/**
 * @brief One optimiser update from the gradients of the last
 *        aas_train_net_loss_and_grads() (plus weight_decay * w on weights).
 * @return AAS_ERR_CONFLICT if there are no gradients yet.
 */
aas_err_t aas_train_net_step(aas_train_net_t *net, char *errstr,
                             size_t errstr_size);

/**
 * @brief Class probabilities (rows x n_classes) for any number of rows,
 *        computed in chunks of the batch size with the training forward
 *        pass and a softmax in C.
 */
aas_err_t aas_train_net_predict(aas_train_net_t *net, const float *x,
                                int64_t rows, float *probs, char *errstr,
                                size_t errstr_size);

/**
 * @brief Mean cross-entropy and accuracy (fraction of rows whose largest
 *        probability is the true class; ties go to the lower index) on
 *        rows >= 1 rows.
 */
aas_err_t aas_train_net_evaluate(aas_train_net_t *net, const float *x,
                                 const int32_t *y, int64_t rows, double *loss,
                                 double *accuracy, char *errstr,
                                 size_t errstr_size);

/**
 * @brief The net as an AASMLP1 classifier that takes raw inputs: the scale
 *        folded into the first layer's weights, softmax on the last, the
 *        class names of the params.
 * @param blob malloc'ed on success, the caller frees it.
 */
aas_err_t aas_train_net_export(const aas_train_net_t *net, void **blob,
                               size_t *len, char *errstr, size_t errstr_size);

/* ---- a whole training job ---- */

/** What the progress callback sees. */
typedef struct {
    int end_of_epoch;   /* 1 after an epoch (val fields set), 0 mid-epoch */
    int32_t epoch;      /* completed epochs, 1-based at end of epoch */
    int32_t epochs;     /* planned */
    int64_t batch;      /* batches done in the current epoch */
    int64_t batches;    /* batches per epoch */
    double train_loss;  /* mean over the epoch's batches so far */
    double val_loss;    /* NAN mid-epoch or without validation rows */
    double val_accuracy;
    double elapsed_ms;  /* since aas_train_run() started */
} aas_train_progress_t;

/**
 * Called after every epoch and, within an epoch, at most every
 * AAS_TRAIN_PROGRESS_MS.  A non-zero return stops training before the next
 * batch: aas_train_run() then exports the weights it has and sets
 * result->cancelled.  It runs on the training thread.
 */
typedef int aas_train_progress_cb(void *opaque, const aas_train_progress_t *p);

/** Interval of mid-epoch progress calls. */
#define AAS_TRAIN_PROGRESS_MS 1000

typedef struct {
    void *blob;               /* AASMLP1 model, owned (aas_train_result_free) */
    size_t blob_len;
    int cancelled;            /* 1 if the callback stopped training */
    int32_t epochs_done;      /* complete epochs */
    int64_t n_train, n_val;   /* rows in each part of the split */
    double train_loss;        /* mean batch loss of the last epoch run */
    double val_loss;          /* final weights; NAN if n_val == 0 */
    double val_accuracy;      /* final weights; NAN if n_val == 0 */
    double *curve_train_loss; /* epochs_done values each, owned */
    double *curve_val_loss;
    double *curve_val_accuracy;
    double samples_per_s;     /* training rows per second of batch work */
    double elapsed_ms;
} aas_train_result_t;

/** @brief Free what a result owns and zero it.  NULL is a no-op. */
void aas_train_result_free(aas_train_result_t *r);

/**
 * @brief Train a new classifier on x (n x dim raw f32) and y (n labels,
 *        0..n_classes-1) and export it: aas_train_net_new() +
 *        aas_train_fit() + aas_train_net_destroy().
 *
 * Split: indices 0..n-1 shuffled with the seed; the last
 * floor(validation_fraction * n) are validation rows, the rest train.
 * Each epoch reshuffles the training rows and runs ceil(n_train /
 * batch_size) batches; the last one is partial when batch_size does not
 * divide n_train (it has its own primitives; nothing is dropped).
 * batch_size above n_train is clamped to n_train.
 *
 * @param cb NULL or a progress callback (may cancel); opaque is its first
 *        argument.
 * @param out filled on success (also when cancelled); free it with
 *        aas_train_result_free().
 * @return AAS_ERR_INVAL (bad parameters, shapes, labels),
 *         AAS_ERR_NONFINITE (NaN/Inf in x, or training diverged),
 *         AAS_ERR_TOO_LARGE (a limit), AAS_ERR_NOMEM, AAS_ERR_DNN; errstr
 *         says which.
 *
 * Thread-safe for distinct outputs.  If p->threads > 0 it sets the calling
 * thread's OpenMP thread count for the call and restores it afterwards.
 */
aas_err_t aas_train_run(const aas_train_params_t *p, const float *x,
                        const int32_t *y, int64_t n, int64_t dim,
                        int32_t n_classes, aas_train_progress_cb *cb,
                        void *opaque, aas_train_result_t *out, char *errstr,
                        size_t errstr_size);

/**
 * @brief aas_train_run() on a net the caller keeps (to evaluate, predict or
 *        train further afterwards): the net's own params (epochs,
 *        batch_size, seed, validation_fraction, threads...) drive it, from
 *        the net's current weights and optimiser state.  The split and the
 *        shuffles restart from the seed on every call.  x is n x the net's
 *        dim.  Same errors and result as aas_train_run().
 */
aas_err_t aas_train_fit(aas_train_net_t *net, const float *x, const int32_t *y,
                        int64_t n, aas_train_progress_cb *cb, void *opaque,
                        aas_train_result_t *out, char *errstr,
                        size_t errstr_size);

#endif
