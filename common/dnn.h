/*
 * dnn.h - oneDNN's status codes wrapped once: a failed call becomes
 * AAS_ERR_DNN with the call's name, oneDNN's word for the status and our
 * file:line in errstr.  Used by the model and training code.
 */
#ifndef AAS_DNN_H
#define AAS_DNN_H

#include <dnnl.h>
#include <stddef.h>

#include "err.h"

/** @brief AAS_ERR_OK for dnnl_success, else AAS_ERR_DNN with errstr set. */
aas_err_t aas_dnn_status(dnnl_status_t st, const char *call, const char *file,
                         int line, char *errstr, size_t errstr_size);

/* Evaluates to AAS_ERR_OK or AAS_ERR_DNN; expects errstr/errstr_size in
 * scope. */
#define AAS_DNN_CHECK(call)                                                   \
    aas_dnn_status((call), #call, __FILE__, __LINE__, errstr, errstr_size)

#endif
