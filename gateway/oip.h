/*
 * oip.h - JSON bodies <-> aas jobs and results, for the gateway: the Open
 * Inference Protocol (KServe v2) infer request and response, and the plain
 * /v1 predict shapes (docs/http.md).  Pure: no I/O, no HTTP; every error
 * is a client mistake (AAS_ERR_INVAL, AAS_ERR_SHAPE, AAS_ERR_NONFINITE,
 * AAS_ERR_TOO_LARGE) with a reason in errstr.  Thread-safe (no state).
 */
#ifndef AAS_GW_OIP_H
#define AAS_GW_OIP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "models.h"
#include "tensor.h"

/** What one request asks: a text, or rows of f32 (owned; _clear frees). */
typedef struct {
    char *text;           /* a text job, or NULL */
    aas_tensor_t tensor;  /* F32 rows, when text == NULL */
    char *model;          /* predict: "model" of the body, or NULL */
    int64_t version;      /* predict: "version" of the body, 0 = latest */
    char *req_id;         /* OIP: "id" of the body, or NULL */
} aas_gw_request_t;

void aas_gw_request_clear(aas_gw_request_t *r);

/**
 * @brief Parse an OIP infer body: exactly one input, FP32 (data flat or
 *        nested, element count == product of shape, finite) or BYTES (one
 *        string: one text).  Unknown top-level fields are allowed; known
 *        ones must have their type.
 * @param max_elems most FP32 elements accepted (AAS_ERR_TOO_LARGE).
 * @param out written on success only.
 */
aas_err_t aas_gw_oip_parse(const char *body, size_t len, uint64_t max_elems,
                           aas_gw_request_t *out, char *errstr, size_t errstr_size);

/**
 * @brief The same with the binary data extension: the JSON is body's first
 *        json_len bytes (header Inference-Header-Content-Length), the rest
 *        raw tensor bytes; an FP32 input with "parameters":
 *        {"binary_data_size": n} and no "data" takes its n bytes
 *        (little-endian, n == 4 x elements) from there.
 */
aas_err_t aas_gw_oip_parse_binary(const char *body, size_t len, size_t json_len,
                                  uint64_t max_elems, aas_gw_request_t *out, char *errstr,
                                  size_t errstr_size);

/**
 * @brief Parse a plain predict body: {"text": "..."} or
 *        {"instances": [[...], ...]} (rows of equal length, nested rows are
 *        flattened), optional "model" (string) and "version" (integer or
 *        decimal string).
 */
aas_err_t aas_gw_predict_parse(const char *body, size_t len, uint64_t max_elems,
                               aas_gw_request_t *out, char *errstr, size_t errstr_size);

/**
 * @brief The OIP infer response of a SUCCEEDED result: model_name,
 *        model_version, id (req_id, or the job id), outputs.  NULL when the
 *        result holds no usable f32 output (errstr says why).
 * @param md may be NULL (then the output is named by the result alone).
 */
json_t *aas_gw_oip_response(const aas_result_t *res, const char *model_name,
                            const aas_gw_model_t *md, const char *req_id, char *errstr,
                            size_t errstr_size);

/**
 * @brief Add the plain prediction of a SUCCEEDED result to obj: "label" and
 *        "scores" for one row, else "predictions": [{label, scores}, ...].
 *        Labels are the model's class names (md), else the result's, else
 *        the index.  Returns 0, or -1 (errstr) without a usable output.
 */
int aas_gw_predict_fill(json_t *obj, const aas_result_t *res, const aas_gw_model_t *md,
                        char *errstr, size_t errstr_size);

#endif
