/*
 * model_text2.h - writing the text classifier kind "AASTXT2": featurizer
 * version 2 (textfeat.h) with its IDF weights, then a linear head
 * (multinomial logistic regression on the sparse features) or an MLP
 * head (an embedded AASMLP1 on the densified features).  Loading and
 * serving go through model.h like every kind; this header is for the
 * trainer.  docs/model-format.md#aastxt2 is the byte layout.
 */
#ifndef AAS_MODEL_TEXT2_H
#define AAS_MODEL_TEXT2_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "textfeat.h"

#define AAS_TEXT2_HEAD_LINEAR 1
#define AAS_TEXT2_HEAD_MLP 2
/* The MLP head works on dense rows of dim floats: keep them small. */
#define AAS_TEXT2_MLP_MAX_DIM (1 << 16)
/* Weights of a linear head, dim x classes floats, at most this many. */
#define AAS_TEXT2_LINEAR_MAX_WEIGHTS ((int64_t)1 << 26)

typedef struct {
    aas_textfeat_conf_t feat;
    const float *idf;            /* feat.dim weights, or NULL (all 1) */
    int32_t classes;             /* 2..65536 */
    const char *const *labels;   /* linear: classes names or NULL ("0".."n-1") */
    int head;                    /* AAS_TEXT2_HEAD_* */
    const float *w;              /* linear: feat.dim x classes, feature-major */
    const float *b;              /* linear: classes */
    const void *mlp;             /* mlp: AASMLP1 blob taking feat.dim inputs */
    size_t mlp_len;              /* (its labels are the model's) */
    uint64_t n_docs;             /* training documents, for the record */
} aas_text2_spec_t;

/**
 * @brief Build an AASTXT2 blob from spec (everything copied), checked so
 *        that it loads: dims, finite weights, an embedded model that fits.
 * @param blob malloc'ed on success (caller frees).
 */
aas_err_t aas_text2_serialize(const aas_text2_spec_t *spec, void **blob, size_t *len,
                              char *errstr, size_t errstr_size);

#endif
