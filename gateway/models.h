/*
 * models.h - what the gateway knows about a model version: kind, input and
 * output sizes, class names.  Read from the registry (the blob is loaded
 * once with aas_model_load, described, and freed) and cached by
 * (name, version): versions are immutable.  "latest" is resolved by one
 * HGET and the answer kept AAS_GW_LATEST_MS (a version registered is
 * served by name alone that much later at most; a request naming the
 * version gets it at once).  Thread-safe; an aas_gw_model_t handed out is
 * reference-counted and stays valid until aas_gw_model_release().
 */
#ifndef AAS_GW_MODELS_H
#define AAS_GW_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* How long "latest" is taken from the cache before it is asked again. */
#define AAS_GW_LATEST_MS 1000

typedef struct {
    char *name;
    int64_t version;
    const char *kind;        /* "AASMLP1", "AASTXT2", "ONNX", ... (static) */
    int text;                /* 1: a text classifier (input is text) */
    int classifier;          /* 1: outputs are probabilities */
    int64_t in_dim, out_dim;
    int row_rank;            /* shape of one input row */
    int64_t row_dims[7];
    char *input_name;        /* or NULL */
    char **labels;           /* out_dim names, or NULL */
    int refs;                /* cache's own + borrowers' (under the lock) */
    int64_t latest_until_us; /* the name's latest version until then
                                (monotonic; under the lock) */
} aas_gw_model_t;

typedef struct aas_gw_models_s aas_gw_models_t;

aas_err_t aas_gw_models_new(size_t capacity, aas_gw_models_t **out);
void aas_gw_models_destroy(aas_gw_models_t *m);

/**
 * @brief Describe name at version (0 = latest) using st (borrowed, the
 *        caller's client store).  AAS_ERR_UNKNOWN_MODEL for an unknown
 *        name or version, AAS_ERR_REDIS, AAS_ERR_MODEL_FORMAT.
 * @param out borrowed until aas_gw_model_release().
 */
aas_err_t aas_gw_models_get(aas_gw_models_t *m, aas_store_t *st, const char *name,
                            int64_t version, const aas_gw_model_t **out,
                            char *errstr, size_t errstr_size);
void aas_gw_model_release(aas_gw_models_t *m, const aas_gw_model_t *model);

/** @brief The name of class i: the model's, or i in decimal into buf. */
const char *aas_gw_model_label(const aas_gw_model_t *model, int64_t i, char *buf,
                               size_t size);

#endif
