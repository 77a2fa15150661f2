/*
 * oip.c - JSON bodies <-> aas jobs and results; see oip.h.  Request bodies
 * are read with the gateway's own reader (json_read.h: numbers packed, no
 * node per number); responses are built with jansson.
 */
#include "oip.h"

#include "json_read.h"

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

/* The body as a document whose root is an object (json_read.h: the
 * same refusals as jansson's json_loadb with JSON_REJECT_DUPLICATES, but no
 * node per number). */
static aas_err_t load(const char *body, size_t len, aas_gw_jr_doc_t **out,
                      const aas_gw_jr_value_t **root, char *errstr, size_t errstr_size) {
    aas_gw_jr_doc_t *doc;
    aas_err_t err = aas_gw_jr_parse(body, len, &doc, errstr, errstr_size);
    if (err) return err;
    if (aas_gw_jr_root(doc)->type != AAS_GW_JR_OBJECT) {
        aas_gw_jr_doc_destroy(doc);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "the body must be a JSON object");
    }
    *out = doc;
    *root = aas_gw_jr_root(doc);
    return AAS_ERR_OK;
}

static int is_type(const aas_gw_jr_value_t *v, aas_gw_jr_type_t type) {
    return v && v->type == type;
}

static int is_integer(const aas_gw_jr_value_t *v) {
    return is_type(v, AAS_GW_JR_NUMBER) && v->is_int;
}

static size_t array_size(const aas_gw_jr_value_t *v) {
    return is_type(v, AAS_GW_JR_ARRAY) ? v->n : 0;
}

/* Count the numbers of a (nested) array; an error on a non-number, too
 * deep, too many.  A packed array (numbers only) counts at once. */
static aas_err_t count_numbers(const aas_gw_jr_value_t *v, int depth, uint64_t max,
                               uint64_t *n, char *errstr, size_t errstr_size) {
    if (v->type == AAS_GW_JR_NUMBER) {
        if (++*n > max)
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                               "too many elements (at most %" PRIu64 ")", max);
        return AAS_ERR_OK;
    }
    if (v->type != AAS_GW_JR_ARRAY)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "FP32 data must hold numbers only");
    if (depth >= AAS_GW_JSON_MAX_DEPTH)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE, "data nested too deep");
    if (v->packed) {
        if (v->n > max - *n) /* *n <= max here */
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                               "too many elements (at most %" PRIu64 ")", max);
        *n += v->n;
        return AAS_ERR_OK;
    }
    for (size_t i = 0; i < v->n; i++) {
        aas_err_t err = count_numbers(&v->u.items[i], depth + 1, max, n, errstr, errstr_size);
        if (err) return err;
    }
    return AAS_ERR_OK;
}

static aas_err_t to_f32(double d, float *dst, uint64_t at, char *errstr, size_t errstr_size) {
    float f = (float)d;
    if (!isfinite(d) || !isfinite(f))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                           "element %" PRIu64 " is not a finite FP32 number", at);
    *dst = f;
    return AAS_ERR_OK;
}

/* After count_numbers: every leaf is a number, dst has room for them. */
static aas_err_t fill_numbers(const aas_gw_jr_value_t *v, float *dst, uint64_t *at,
                              char *errstr, size_t errstr_size) {
    aas_err_t err;
    if (v->type == AAS_GW_JR_NUMBER) {
        if ((err = to_f32(v->u.num, &dst[*at], *at, errstr, errstr_size))) return err;
        ++*at;
        return AAS_ERR_OK;
    }
    if (v->packed) {
        for (size_t i = 0; i < v->n; i++, ++*at)
            if ((err = to_f32(v->u.nums[i], &dst[*at], *at, errstr, errstr_size))) return err;
        return AAS_ERR_OK;
    }
    for (size_t i = 0; i < v->n; i++)
        if ((err = fill_numbers(&v->u.items[i], dst, at, errstr, errstr_size))) return err;
    return AAS_ERR_OK;
}

/* Numbers of v (nested or flat) as an F32 tensor of the given shape. */
static aas_err_t to_tensor(const aas_gw_jr_value_t *v, int rank, const int64_t *shape,
                           uint64_t max, aas_tensor_t *t, char *errstr, size_t errstr_size) {
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
    aas_gw_jr_doc_t *doc = NULL;
    const aas_gw_jr_value_t *root = NULL;
    if (json_len > len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "Inference-Header-Content-Length is larger than the body");
    const char *bin = body + json_len;
    size_t bin_len = len - json_len;
    aas_err_t err = load(body, json_len, &doc, &root, errstr, errstr_size);
    if (err) return err;
    aas_gw_request_t r = {0};
    const aas_gw_jr_value_t *id = aas_gw_jr_get(root, "id");
    const aas_gw_jr_value_t *params = aas_gw_jr_get(root, "parameters");
    const aas_gw_jr_value_t *inputs = aas_gw_jr_get(root, "inputs");
    const aas_gw_jr_value_t *outputs = aas_gw_jr_get(root, "outputs");
    if (id && !is_type(id, AAS_GW_JR_STRING)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "\"id\" must be a string");
        goto out;
    }
    if (params && !is_type(params, AAS_GW_JR_OBJECT)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "\"parameters\" must be an object");
        goto out;
    }
    if (outputs && !is_type(outputs, AAS_GW_JR_ARRAY)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "\"outputs\" must be an array");
        goto out;
    }
    if (!is_type(inputs, AAS_GW_JR_ARRAY) || array_size(inputs) != 1) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "\"inputs\" must be an array of exactly one input");
        goto out;
    }
    aas_gw_jr_value_t in_tmp, s_tmp, d_tmp; /* packed elements, read by aas_gw_jr_at */
    const aas_gw_jr_value_t *in = aas_gw_jr_at(inputs, 0, &in_tmp);
    const aas_gw_jr_value_t *name = aas_gw_jr_get(in, "name");
    const aas_gw_jr_value_t *dtype = aas_gw_jr_get(in, "datatype");
    const aas_gw_jr_value_t *shape = aas_gw_jr_get(in, "shape");
    const aas_gw_jr_value_t *data = aas_gw_jr_get(in, "data");
    const aas_gw_jr_value_t *iparams = aas_gw_jr_get(in, "parameters");
    const aas_gw_jr_value_t *bsize = aas_gw_jr_get(iparams, "binary_data_size");
    if (iparams && !is_type(iparams, AAS_GW_JR_OBJECT)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "an input's \"parameters\" must be an object");
        goto out;
    }
    if (bsize && (!is_integer(bsize) || data || bsize->i < 0 ||
                  (uint64_t)bsize->i != bin_len)) {
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
    if (!is_type(in, AAS_GW_JR_OBJECT) || (name && !is_type(name, AAS_GW_JR_STRING)) || !is_type(dtype, AAS_GW_JR_STRING) ||
        !is_type(shape, AAS_GW_JR_ARRAY) || (!data && !bsize)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "an input needs \"name\" (string), \"datatype\" (string), "
                          "\"shape\" (array) and \"data\"");
        goto out;
    }
    size_t rank = array_size(shape);
    int64_t dims[AAS_TENSOR_MAX_RANK];
    if (rank < 1 || rank > AAS_TENSOR_MAX_RANK) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE, "shape must have 1..%d dimensions",
                          AAS_TENSOR_MAX_RANK);
        goto out;
    }
    for (size_t i = 0; i < rank; i++) {
        const aas_gw_jr_value_t *d = aas_gw_jr_at(shape, i, &d_tmp);
        if (!is_integer(d) || d->i < 0) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                              "shape must hold non-negative integers");
            goto out;
        }
        dims[i] = d->i;
    }
    const char *dt = dtype->u.str;
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
        const aas_gw_jr_value_t *s =
            is_type(data, AAS_GW_JR_ARRAY) ? aas_gw_jr_at(data, 0, &s_tmp) : data;
        if (is_type(data, AAS_GW_JR_ARRAY) && data->n != 1) s = NULL;
        if (rank != 1 || dims[0] != 1 || !is_type(s, AAS_GW_JR_STRING)) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                              "a BYTES input is one text: shape [1], data [\"...\"]");
            goto out;
        }
        err = dup_str(s->u.str, &r.text, errstr, errstr_size);
    } else if (!strcmp(dt, "FP32")) {
        if (!is_type(data, AAS_GW_JR_ARRAY)) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "FP32 data must be an array");
            goto out;
        }
        err = to_tensor(data, (int)rank, dims, max_elems, &r.tensor, errstr, errstr_size);
    } else {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                          "datatype %.32s is not served (FP32 or BYTES)", dt);
    }
    if (!err && id) err = dup_str(id->u.str, &r.req_id, errstr, errstr_size);
out:
    aas_gw_jr_doc_destroy(doc);
    if (err) {
        aas_gw_request_clear(&r);
        return err;
    }
    *out = r;
    return AAS_ERR_OK;
}

aas_err_t aas_gw_predict_parse(const char *body, size_t len, uint64_t max_elems,
                               aas_gw_request_t *out, char *errstr, size_t errstr_size) {
    aas_gw_jr_doc_t *doc = NULL;
    const aas_gw_jr_value_t *root = NULL;
    aas_err_t err = load(body, len, &doc, &root, errstr, errstr_size);
    if (err) return err;
    aas_gw_request_t r = {0};
    const aas_gw_jr_value_t *model = aas_gw_jr_get(root, "model");
    const aas_gw_jr_value_t *version = aas_gw_jr_get(root, "version");
    const aas_gw_jr_value_t *text = aas_gw_jr_get(root, "text");
    const aas_gw_jr_value_t *inst = aas_gw_jr_get(root, "instances");
    if (model && !is_type(model, AAS_GW_JR_STRING)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "\"model\" must be a string");
        goto out;
    }
    if (model) err = dup_str(model->u.str, &r.model, errstr, errstr_size);
    if (err) goto out;
    if (is_integer(version) && version->i >= 1) {
        r.version = version->i;
    } else if (is_type(version, AAS_GW_JR_STRING)) {
        const char *s = version->u.str;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < 1 || s[0] < '0' || s[0] > '9') {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "\"version\" must be a positive integer");
            goto out;
        }
        r.version = v;
    } else if (version && !is_type(version, AAS_GW_JR_NULL)) {
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
        if (!is_type(text, AAS_GW_JR_STRING)) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "\"text\" must be a string");
            goto out;
        }
        err = dup_str(text->u.str, &r.text, errstr, errstr_size);
        goto out;
    }
    size_t rows = array_size(inst);
    if (!is_type(inst, AAS_GW_JR_ARRAY) || rows == 0) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "\"instances\" must be a non-empty array of rows");
        goto out;
    }
    uint64_t per_row = 0;
    for (size_t i = 0; i < rows; i++) {
        uint64_t n = 0;
        aas_gw_jr_value_t row_tmp;
        const aas_gw_jr_value_t *row = aas_gw_jr_at(inst, i, &row_tmp);
        if (!is_type(row, AAS_GW_JR_ARRAY)) {
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
    aas_gw_jr_doc_destroy(doc);
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
