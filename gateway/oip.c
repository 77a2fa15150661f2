/* oip.c - JSON bodies <-> aas jobs and results; see oip.h. */
#include "oip.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AAS_GW_JSON_MAX_DEPTH 32 /* nesting of "data" / "instances" */

void aas_gw_request_clear(aas_gw_request_t *r) {
    if (!r) return;
    free(r->text);
    free(r->model);
    free(r->req_id);
    aas_tensor_clear(&r->tensor);
    memset(r, 0, sizeof(*r));
}

static aas_err_t load(const char *body, size_t len, json_t **out, char *errstr,
                      size_t errstr_size) {
    json_error_t je;
    /* jansson refuses invalid UTF-8, NUL in strings (without
     * JSON_ALLOW_NUL) and numbers out of double range. */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "malformed JSON at line %d column %d: %s", je.line, je.column,
                           je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "the body must be a JSON object");
    }
    *out = root;
    return AAS_ERR_OK;
}

/* Count the numbers of a (nested) array; -1 on a non-number, too deep. */
static aas_err_t count_numbers(const json_t *v, int depth, uint64_t max, uint64_t *n,
                               char *errstr, size_t errstr_size) {
    if (json_is_number(v)) {
        if (++*n > max)
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                               "too many elements (at most %" PRIu64 ")", max);
        return AAS_ERR_OK;
    }
    if (!json_is_array(v))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "FP32 data must hold numbers only");
    if (depth >= AAS_GW_JSON_MAX_DEPTH)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE, "data nested too deep");
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        aas_err_t err = count_numbers(e, depth + 1, max, n, errstr, errstr_size);
        if (err) return err;
    }
    return AAS_ERR_OK;
}

static aas_err_t fill_numbers(const json_t *v, float *dst, uint64_t *at, char *errstr,
                              size_t errstr_size) {
    if (json_is_number(v)) {
        double d = json_number_value(v);
        float f = (float)d;
        if (!isfinite(d) || !isfinite(f))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                               "element %" PRIu64 " is not a finite FP32 number", *at);
        dst[(*at)++] = f;
        return AAS_ERR_OK;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        aas_err_t err = fill_numbers(e, dst, at, errstr, errstr_size);
        if (err) return err;
    }
    return AAS_ERR_OK;
}

/* Numbers of v (nested or flat) as an F32 tensor of the given shape. */
static aas_err_t to_tensor(const json_t *v, int rank, const int64_t *shape, uint64_t max,
                           aas_tensor_t *t, char *errstr, size_t errstr_size) {
    uint64_t n = 0, want = 1;
    aas_err_t err = count_numbers(v, 0, max, &n, errstr, errstr_size);
    if (err) return err;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 1 || (uint64_t)shape[i] > max || want > max / (uint64_t)shape[i])
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "shape dimension %d is %" PRId64 " (want 1..%" PRIu64
                               " elements in all)",
                               i, shape[i], max);
        want *= (uint64_t)shape[i];
    }
    if (n != want)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "data has %" PRIu64 " elements, shape says %" PRIu64, n, want);
    float *buf = malloc(n * sizeof(float));
    if (!buf) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    uint64_t at = 0;
    err = fill_numbers(v, buf, &at, errstr, errstr_size);
    if (!err && aas_tensor_set_f32(t, "input", buf, rank, shape))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    free(buf);
    return err;
}

static aas_err_t dup_str(const char *s, char **out, char *errstr, size_t errstr_size) {
    if (!(*out = strdup(s)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    return AAS_ERR_OK;
}

aas_err_t aas_gw_oip_parse(const char *body, size_t len, uint64_t max_elems,
                           aas_gw_request_t *out, char *errstr, size_t errstr_size) {
    return aas_gw_oip_parse_binary(body, len, len, max_elems, out, errstr, errstr_size);
}

/* An FP32 input's raw bytes (binary data extension) as a tensor. */
static aas_err_t binary_tensor(const char *bin, size_t bin_len, int rank, const int64_t *shape,
                               uint64_t max, aas_tensor_t *t, char *errstr,
                               size_t errstr_size) {
    uint64_t want = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 1 || (uint64_t)shape[i] > max || want > max / (uint64_t)shape[i])
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "shape dimension %d is %" PRId64 " (want 1..%" PRIu64
                               " elements in all)",
                               i, shape[i], max);
        want *= (uint64_t)shape[i];
    }
    if (bin_len != want * sizeof(float))
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "binary data has %zu bytes, shape says %" PRIu64 " FP32 values",
                           bin_len, want);
    float *buf = malloc(bin_len);
    if (!buf) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    memcpy(buf, bin, bin_len); /* little-endian, as the host (CMake checks) */
    aas_err_t err = AAS_ERR_OK;
    for (uint64_t i = 0; i < want && !err; i++)
        if (!isfinite(buf[i]))
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                              "element %" PRIu64 " is not a finite FP32 number", i);
    if (!err && aas_tensor_set_f32(t, "input", buf, rank, shape))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    free(buf);
    return err;
}

/* A BYTES input's raw bytes (binary data extension): one element, a
 * 4-byte little-endian length then the text, valid UTF-8 without NUL. */
static aas_err_t binary_text(const char *bin, size_t bin_len, int rank, const int64_t *shape,
                             char **out, char *errstr, size_t errstr_size) {
    if (rank != 1 || shape[0] != 1 || bin_len < 4)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "a BYTES input is one text: shape [1]");
    const unsigned char *p = (const unsigned char *)bin;
    size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
    if (n != bin_len - 4)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "binary BYTES data: element of %zu bytes in %zu bytes", n,
                           bin_len - 4);
    if (memchr(bin + 4, '\0', n))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "text has a NUL byte");
    json_t *s = json_stringn(bin + 4, n); /* NULL unless valid UTF-8 */
    if (!s) return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "text is not valid UTF-8");
    json_decref(s);
    if (!(*out = malloc(n + 1)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    memcpy(*out, bin + 4, n);
    (*out)[n] = '\0';
    return AAS_ERR_OK;
}

aas_err_t aas_gw_oip_parse_binary(const char *body, size_t len, size_t json_len,
                                  uint64_t max_elems, aas_gw_request_t *out, char *errstr,
                                  size_t errstr_size) {
    json_t *root = NULL;
    if (json_len > len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "Inference-Header-Content-Length is larger than the body");
    const char *bin = body + json_len;
    size_t bin_len = len - json_len;
    aas_err_t err = load(body, json_len, &root, errstr, errstr_size);
    if (err) return err;
    aas_gw_request_t r = {0};
    const json_t *id = json_object_get(root, "id");
    const json_t *params = json_object_get(root, "parameters");
    const json_t *inputs = json_object_get(root, "inputs");
    const json_t *outputs = json_object_get(root, "outputs");
    if (id && !json_is_string(id)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "\"id\" must be a string");
        goto out;
    }
    if (params && !json_is_object(params)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "\"parameters\" must be an object");
        goto out;
    }
    if (outputs && !json_is_array(outputs)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "\"outputs\" must be an array");
        goto out;
    }
    if (!json_is_array(inputs) || json_array_size(inputs) != 1) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "\"inputs\" must be an array of exactly one input");
        goto out;
    }
    const json_t *in = json_array_get(inputs, 0);
    const json_t *name = json_object_get(in, "name");
    const json_t *dtype = json_object_get(in, "datatype");
    const json_t *shape = json_object_get(in, "shape");
    const json_t *data = json_object_get(in, "data");
    const json_t *iparams = json_object_get(in, "parameters");
    const json_t *bsize = json_object_get(iparams, "binary_data_size");
    if (iparams && !json_is_object(iparams)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "an input's \"parameters\" must be an object");
        goto out;
    }
    if (bsize && (!json_is_integer(bsize) || data || json_integer_value(bsize) < 0 ||
                  (uint64_t)json_integer_value(bsize) != bin_len)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "\"binary_data_size\" must be the size of the binary part "
                          "(%zu bytes) and replaces \"data\"",
                          bin_len);
        goto out;
    }
    if (!bsize && bin_len) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "binary data after the JSON, but no input has binary_data_size");
        goto out;
    }
    if (!json_is_object(in) || (name && !json_is_string(name)) || !json_is_string(dtype) ||
        !json_is_array(shape) || (!data && !bsize)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "an input needs \"name\" (string), \"datatype\" (string), "
                          "\"shape\" (array) and \"data\"");
        goto out;
    }
    size_t rank = json_array_size(shape);
    int64_t dims[AAS_TENSOR_MAX_RANK];
    if (rank < 1 || rank > AAS_TENSOR_MAX_RANK) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE, "shape must have 1..%d dimensions",
                          AAS_TENSOR_MAX_RANK);
        goto out;
    }
    for (size_t i = 0; i < rank; i++) {
        const json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                              "shape must hold non-negative integers");
            goto out;
        }
        dims[i] = json_integer_value(d);
    }
    const char *dt = json_string_value(dtype);
    if (bsize && !strcmp(dt, "BYTES")) {
        err = binary_text(bin, bin_len, (int)rank, dims, &r.text, errstr, errstr_size);
    } else if (bsize) {
        if (strcmp(dt, "FP32"))
            err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                              "datatype %.32s is not served (FP32 or BYTES)", dt);
        else
            err = binary_tensor(bin, bin_len, (int)rank, dims, max_elems, &r.tensor, errstr,
                                errstr_size);
    } else if (!strcmp(dt, "BYTES")) {
        const json_t *s = json_is_array(data) ? json_array_get(data, 0) : data;
        if (json_is_array(data) && json_array_size(data) != 1) s = NULL;
        if (rank != 1 || dims[0] != 1 || !json_is_string(s)) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                              "a BYTES input is one text: shape [1], data [\"...\"]");
            goto out;
        }
        err = dup_str(json_string_value(s), &r.text, errstr, errstr_size);
    } else if (!strcmp(dt, "FP32")) {
        if (!json_is_array(data)) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "FP32 data must be an array");
            goto out;
        }
        err = to_tensor(data, (int)rank, dims, max_elems, &r.tensor, errstr, errstr_size);
    } else {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                          "datatype %.32s is not served (FP32 or BYTES)", dt);
    }
    if (!err && id) err = dup_str(json_string_value(id), &r.req_id, errstr, errstr_size);
out:
    json_decref(root);
    if (err) {
        aas_gw_request_clear(&r);
        return err;
    }
    *out = r;
    return AAS_ERR_OK;
}

aas_err_t aas_gw_predict_parse(const char *body, size_t len, uint64_t max_elems,
                               aas_gw_request_t *out, char *errstr, size_t errstr_size) {
    json_t *root = NULL;
    aas_err_t err = load(body, len, &root, errstr, errstr_size);
    if (err) return err;
    aas_gw_request_t r = {0};
    const json_t *model = json_object_get(root, "model");
    const json_t *version = json_object_get(root, "version");
    const json_t *text = json_object_get(root, "text");
    const json_t *inst = json_object_get(root, "instances");
    if (model && !json_is_string(model)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "\"model\" must be a string");
        goto out;
    }
    if (model) err = dup_str(json_string_value(model), &r.model, errstr, errstr_size);
    if (err) goto out;
    if (json_is_integer(version) && json_integer_value(version) >= 1) {
        r.version = json_integer_value(version);
    } else if (json_is_string(version)) {
        const char *s = json_string_value(version);
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < 1 || s[0] < '0' || s[0] > '9') {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "\"version\" must be a positive integer");
            goto out;
        }
        r.version = v;
    } else if (version && !json_is_null(version)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "\"version\" must be a positive integer");
        goto out;
    }
    if (!!text == !!inst) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "the body needs \"text\" or \"instances\" (one of them)");
        goto out;
    }
    if (text) {
        if (!json_is_string(text)) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "\"text\" must be a string");
            goto out;
        }
        err = dup_str(json_string_value(text), &r.text, errstr, errstr_size);
        goto out;
    }
    size_t rows = json_array_size(inst);
    if (!json_is_array(inst) || rows == 0) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "\"instances\" must be a non-empty array of rows");
        goto out;
    }
    uint64_t per_row = 0;
    for (size_t i = 0; i < rows; i++) {
        uint64_t n = 0;
        const json_t *row = json_array_get(inst, i);
        if (!json_is_array(row)) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                              "instance %zu is not an array of numbers", i);
            goto out;
        }
        if ((err = count_numbers(row, 1, max_elems, &n, errstr, errstr_size))) goto out;
        if (i == 0) per_row = n;
        if (n == 0 || n != per_row) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                              "instance %zu has %" PRIu64 " values, instance 0 has %" PRIu64,
                              i, n, per_row);
            goto out;
        }
    }
    int64_t shape[2] = {(int64_t)rows, (int64_t)per_row};
    err = to_tensor(inst, 2, shape, max_elems, &r.tensor, errstr, errstr_size);
out:
    json_decref(root);
    if (err) {
        aas_gw_request_clear(&r);
        return err;
    }
    *out = r;
    return AAS_ERR_OK;
}

/* The result's first output, checked: an F32 tensor of rows x cols. */
static int output_of(const aas_result_t *res, const aas_tensor_t **t, int64_t *rows,
                     int64_t *cols, char *errstr, size_t errstr_size) {
    if (res->n_outputs < 1 || res->outputs[0].dtype != AAS_DTYPE_F32 ||
        res->outputs[0].rank < 1) {
        aas_err_set(errstr, errstr_size, AAS_ERR_DECODE, "the result has no FP32 output");
        return -1;
    }
    const aas_tensor_t *o = &res->outputs[0];
    uint64_t n = 1;
    for (int i = 0; i < o->rank; i++) n *= (uint64_t)o->shape[i];
    if (n * sizeof(float) != o->nbytes) {
        aas_err_set(errstr, errstr_size, AAS_ERR_DECODE, "the result's output is inconsistent");
        return -1;
    }
    *t = o;
    *rows = o->rank == 1 ? 1 : o->shape[0];
    *cols = *rows ? (int64_t)(n / (uint64_t)*rows) : 0;
    return 0;
}

json_t *aas_gw_oip_response(const aas_result_t *res, const char *model_name,
                            const aas_gw_model_t *md, const char *req_id, char *errstr,
                            size_t errstr_size) {
    const aas_tensor_t *o;
    int64_t rows, cols;
    if (output_of(res, &o, &rows, &cols, errstr, errstr_size)) return NULL;
    json_t *data = json_array(), *shape = json_array();
    const float *f = o->data;
    for (uint64_t i = 0; data && i < (uint64_t)(rows * cols); i++)
        if (json_array_append_new(data, json_real(f[i]))) {
            json_decref(data);
            data = NULL;
        }
    for (int i = 0; shape && i < o->rank; i++)
        if (json_array_append_new(shape, json_integer(o->shape[i]))) {
            json_decref(shape);
            shape = NULL;
        }
    int probs = md ? md->classifier : res->n_predictions > 0;
    json_t *root = json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:o, s:o}]}", "model_name",
                             model_name, "model_version",
                             res->model_version ? res->model_version : "", "id",
                             req_id ? req_id : res->job_id, "job_id", res->job_id,
                             "outputs", "name", probs ? "probabilities" : "output",
                             "datatype", "FP32", "shape", shape, "data", data);
    if (!root) aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    return root;
}

/* {label, scores} of one output row. */
static json_t *row_prediction(const aas_result_t *res, const aas_gw_model_t *md,
                              const float *row, int64_t cols, int64_t r) {
    char buf[32];
    int64_t best = 0;
    for (int64_t j = 1; j < cols; j++)
        if (row[j] > row[best]) best = j;
    const char *label = NULL;
    if ((size_t)r < res->n_predictions) {
        best = res->predictions[r].label;
        label = res->predictions[r].name;
    }
    if (!label) label = aas_gw_model_label(md, best, buf, sizeof(buf));
    json_t *scores = json_object();
    for (int64_t j = 0; scores && j < cols; j++) {
        char b2[32];
        if (json_object_set_new(scores, aas_gw_model_label(md, j, b2, sizeof(b2)),
                                json_real(row[j]))) {
            json_decref(scores);
            scores = NULL;
        }
    }
    if (!scores) return NULL;
    return json_pack("{s:s, s:o}", "label", label, "scores", scores);
}

int aas_gw_predict_fill(json_t *obj, const aas_result_t *res, const aas_gw_model_t *md,
                        char *errstr, size_t errstr_size) {
    const aas_tensor_t *o;
    int64_t rows, cols;
    if (output_of(res, &o, &rows, &cols, errstr, errstr_size)) return -1;
    const float *f = o->data;
    if (rows == 1) {
        json_t *p = row_prediction(res, md, f, cols, 0);
        if (!p || json_object_update(obj, p)) {
            json_decref(p);
            aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
            return -1;
        }
        json_decref(p);
        return 0;
    }
    json_t *preds = json_array();
    for (int64_t r = 0; preds && r < rows; r++)
        if (json_array_append_new(preds, row_prediction(res, md, f + r * cols, cols, r))) {
            json_decref(preds);
            preds = NULL;
        }
    if (!preds || json_object_set_new(obj, "predictions", preds)) {
        aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        return -1;
    }
    return 0;
}
