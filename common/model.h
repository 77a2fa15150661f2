/*
 * model.h - a loaded model and its inference entry point.
 *
 * A model is loaded from a blob (the registry's bytes).  The first bytes
 * pick the implementation: the native feed-forward format "AASMLP1"
 * (docs/model-format.md), run with oneDNN primitives, the text
 * classifier "AASTXT1" (a featurizer in front of an AASMLP1, docs/text.md),
 * and ONNX graphs with one float input (docs/onnx.md).  Each implementation
 * fills one aas_model_ops table; callers never switch on the kind.
 *
 * Threading: a model is used by one thread at a time (it owns its oneDNN
 * stream and scratch memory).  oneDNN itself runs primitives on OpenMP.
 */
#ifndef AAS_MODEL_H
#define AAS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct aas_model_s aas_model_t;

/* Activation codes stored in the native format. */
typedef enum {
    AAS_ACT_NONE = 0,
    AAS_ACT_RELU = 1,
    AAS_ACT_TANH = 2,
    AAS_ACT_SIGMOID = 3,
    AAS_ACT_SOFTMAX = 4   /* last layer only */
} aas_act_t;

/**
 * @brief Parse a blob and build the model (weights copied; blob may be
 *        freed afterwards).  AAS_ERR_MODEL_FORMAT with a reason on bad bytes.
 */
aas_err_t aas_model_load(const void *blob, size_t len, aas_model_t **out,
                         char *errstr, size_t errstr_size);
/** @brief NULL is a no-op. */
void aas_model_destroy(aas_model_t *m);

/** @brief Features per input row. */
int64_t aas_model_input_dim(const aas_model_t *m);
/** @brief Values per output row. */
int64_t aas_model_output_dim(const aas_model_t *m);
/** @brief 1 if the last layer is softmax (outputs are probabilities). */
int aas_model_is_classifier(const aas_model_t *m);
/** @brief Class name for index i, or NULL if the model has no names. */
const char *aas_model_label_name(const aas_model_t *m, int64_t i);
/** @brief "AASMLP1", "AASTXT1", "AASTXT2" or "ONNX". */
const char *aas_model_kind(const aas_model_t *m);
/** @brief The input's name (ONNX graphs), or NULL: then inputs are bound
 *         by position only. */
const char *aas_model_input_name(const aas_model_t *m);
/**
 * @brief The shape of one input row: fills dims (up to 7 entries) and
 *        returns the rank; a job's tensor is [rows, dims...] (or
 *        [rows, input_dim], or [input_dim] for one row).  Native kinds:
 *        rank 1, {input_dim}; an ONNX CNN: rank 3, {1, 8, 8}.
 */
int aas_model_row_shape(const aas_model_t *m, int64_t dims[7]);
/**
 * @brief The class index of each row of the last aas_model_infer, when the
 *        model computes its own prediction (an ONNX classifier's label
 *        output, which need not be the argmax of its probabilities: SVC
 *        votes), else NULL.  Borrowed until the next infer.
 */
const int64_t *aas_model_predicted(const aas_model_t *m);
/** @brief Bytes of memory held (weights + cached primitives), for caches. */
size_t aas_model_footprint(const aas_model_t *m);

/**
 * @brief Forward pass on `rows` rows: in is rows x input_dim f32, out is
 *        rows x output_dim f32 (caller-allocated).  Any rows >= 1: the rows
 *        are rounded up to a batch-size bucket (1..8 exact, then three
 *        significant bits: 10, 12, 14, 16, 20, ..., 224, 256), whose
 *        primitives are created once and cached; a batch above 256 runs in
 *        chunks of 256.  Each output row depends only on its input row, never
 *        on the other rows of the batch.  No allocation once the model has
 *        seen the bucket (the scratch buffers belong to the model).
 */
aas_err_t aas_model_infer(aas_model_t *m, const float *in, int64_t rows,
                          float *out, char *errstr, size_t errstr_size);

/* ---- reduced precision (docs/precision.md) ---- */

typedef enum {
    AAS_PRECISION_F32 = 0,   /* the default: f32 everywhere */
    AAS_PRECISION_BF16 = 1,  /* bf16 weights and activations, f32 accumulation
                              * and output; needs AVX-512 BF16 */
    AAS_PRECISION_INT8 = 2   /* s8 weights (per output channel), 8-bit
                              * activations quantized per row at run time, s32
                              * accumulation, f32 output; needs VNNI */
} aas_precision_t;

/** @brief "f32", "bf16", "int8" ("?" for a value outside the enum). */
const char *aas_precision_name(aas_precision_t p);
/** @brief Parse a name of aas_precision_name(): 0 ok (out set), -1 unknown. */
int aas_precision_parse(const char *s, aas_precision_t *out);

/**
 * @brief Compute at precision p from now on.  Weights are converted or
 *        quantized once here; the primitives of each batch size are rebuilt
 *        lazily.  Back to AAS_PRECISION_F32 gives bit-identical results to
 *        a model that never left it.  Text models apply it to their MLP.
 * @return AAS_ERR_INVAL with a reason when the CPU or oneDNN cannot run p
 *         fast (the message names the missing ISA); the model keeps its
 *         previous precision then.  Same threading rule as infer.
 */
aas_err_t aas_model_set_precision(aas_model_t *m, aas_precision_t p, char *errstr,
                                  size_t errstr_size);
/** @brief The precision the model computes at (AAS_PRECISION_F32 after load). */
aas_precision_t aas_model_precision(const aas_model_t *m);

/**
 * @brief 1 if the model takes text (kinds AASTXT1, AASTXT2, docs/text.md): then the
 *        worker sends it a job's `text`, never a tensor.
 */
int aas_model_takes_text(const aas_model_t *m);

/**
 * @brief Forward pass on `rows` texts (texts[i] has lens[i] bytes, need not
 *        be NUL-terminated): each is featurized (featurize.h), out is rows x
 *        output_dim f32 (caller-allocated).  The caller bounds the lengths.
 * @return AAS_ERR_SHAPE "this model takes a tensor, not text" for kinds
 *         without text input.
 */
aas_err_t aas_model_infer_text(aas_model_t *m, const char *const *texts,
                               const size_t *lens, int64_t rows, float *out,
                               char *errstr, size_t errstr_size);

/**
 * @brief Build a text classifier blob ("AASTXT1"): featurizer `version`
 *        (must be AAS_FEATURIZE_VERSION) with `dim` buckets in front of the
 *        AASMLP1 blob `mlp` (copied), which must load and take dim inputs.
 * @param blob malloc'ed on success (caller frees).
 */
aas_err_t aas_text_model_serialize(int64_t dim, uint32_t version, const void *mlp,
                                   size_t mlp_len, void **blob, size_t *len,
                                   char *errstr, size_t errstr_size);

/* ---- building native MLP blobs (registry tools, tests, training) ---- */

/* Limits of the native format (docs/model-format.md): aas_model_load and
 * aas_mlp_serialize reject anything outside them. */
#define AAS_MLP_MAX_LAYERS 64
#define AAS_MLP_MAX_DIM (1 << 20)          /* input_dim and every out_dim */
#define AAS_MLP_MAX_PARAMS (1LL << 28)     /* weights + biases: 1 GiB of f32 */
#define AAS_MLP_MAX_LABEL_LEN 256          /* UTF-8 bytes per class name */

typedef struct {
    int64_t in, out;       /* weights are out x in, row-major */
    aas_act_t act;
    const float *weights;  /* out*in */
    const float *bias;     /* out */
} aas_mlp_layer_t;

/**
 * @brief Serialise a feed-forward network to the native format.
 * @param labels n_labels class names (n_labels 0 or == last layer's out).
 * @param blob malloc'ed on success (caller frees).
 */
aas_err_t aas_mlp_serialize(const aas_mlp_layer_t *layers, size_t n_layers,
                            const char *const *labels, size_t n_labels,
                            void **blob, size_t *len, char *errstr,
                            size_t errstr_size);

#endif
