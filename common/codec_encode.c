/*
 * codec_encode.c - aas_job_t / aas_result_t into Avro single-object
 * encoding (marker, little-endian fingerprint, Avro body), checking what a
 * decoder would refuse (ids, tensors) before writing.
 */
#include "codec.h"
#include "codec_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

/* ---- encode -------------------------------------------------------------- */

static aas_err_t aas_set_string(avro_value_t *v, const char *s, const char *what,
                                char *errstr, size_t errstr_size) {
    if (!aas_codec_utf8_valid((const unsigned char *)s, strlen(s)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%s: not valid UTF-8", what);
    int rc = avro_value_set_string(v, s);
    return rc ? aas_codec_avro_err(rc, AAS_ERR_INVAL, what, errstr, errstr_size)
              : AAS_ERR_OK;
}

static aas_err_t aas_set_field_string(avro_value_t *rec, const char *name,
                                      const char *s, char *errstr,
                                      size_t errstr_size) {
    avro_value_t f;
    int rc = avro_value_get_by_name(rec, name, &f, NULL);
    if (rc) return aas_codec_avro_err(rc, AAS_ERR_INVAL, name, errstr, errstr_size);
    return aas_set_string(&f, s, name, errstr, errstr_size);
}

/* ["null", "string"] field: NULL -> branch 0, else branch 1. */
static aas_err_t aas_set_field_opt_string(avro_value_t *rec, const char *name,
                                          const char *s, char *errstr,
                                          size_t errstr_size) {
    avro_value_t f, b;
    int rc;
    if ((rc = avro_value_get_by_name(rec, name, &f, NULL)) ||
        (rc = avro_value_set_branch(&f, s ? 1 : 0, &b)) ||
        (!s && (rc = avro_value_set_null(&b))))
        return aas_codec_avro_err(rc, AAS_ERR_INVAL, name, errstr, errstr_size);
    return s ? aas_set_string(&b, s, name, errstr, errstr_size) : AAS_ERR_OK;
}

static aas_err_t aas_set_field_long(avro_value_t *rec, const char *name,
                                    int64_t x, char *errstr,
                                    size_t errstr_size) {
    avro_value_t f;
    int rc;
    if ((rc = avro_value_get_by_name(rec, name, &f, NULL)) ||
        (rc = avro_value_set_long(&f, x)))
        return aas_codec_avro_err(rc, AAS_ERR_INVAL, name, errstr, errstr_size);
    return AAS_ERR_OK;
}

static aas_err_t aas_set_field_enum(avro_value_t *rec, const char *name, int x,
                                    char *errstr, size_t errstr_size) {
    avro_value_t f;
    int rc;
    if ((rc = avro_value_get_by_name(rec, name, &f, NULL)) ||
        (rc = avro_value_set_enum(&f, x)))
        return aas_codec_avro_err(rc, AAS_ERR_INVAL, name, errstr, errstr_size);
    return AAS_ERR_OK;
}

static aas_err_t aas_check_opt_id(const char *s, const char *what, char *errstr,
                                  size_t errstr_size) {
    if (s && !aas_id_valid(s))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%s is not a valid id", what);
    return AAS_ERR_OK;
}

/* Append tensors to the array field `name`.  The tensor bytes are lent to
 * Avro C (no copy); they stay valid until the value is freed. */
static aas_err_t aas_set_tensors(avro_value_t *rec, const char *name,
                                 const aas_tensor_t *ts, size_t n,
                                 char *errstr, size_t errstr_size) {
    avro_value_t arr;
    int rc = avro_value_get_by_name(rec, name, &arr, NULL);
    if (rc) return aas_codec_avro_err(rc, AAS_ERR_INVAL, name, errstr, errstr_size);
    if (n && !ts)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%s: NULL", name);
    for (size_t i = 0; i < n; i++) {
        const aas_tensor_t *t = &ts[i];
        char why[256];
        avro_value_t tv, f, e;
        aas_err_t err;
        if ((err = aas_tensor_check(t, UINT64_MAX / 8, NULL, why, sizeof(why))))
            return aas_err_set(errstr, errstr_size, err, "%s[%zu]: %s", name, i,
                               why);
        if (t->nbytes && !t->data)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "%s[%zu]: NULL data", name, i);
        if (t->name && strlen(t->name) > AAS_CODEC_MAX_NAME)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "%s[%zu]: name longer than %d bytes", name, i,
                               AAS_CODEC_MAX_NAME);
        if ((rc = avro_value_append(&arr, &tv, NULL)))
            return aas_codec_avro_err(rc, AAS_ERR_INVAL, name, errstr, errstr_size);
        if ((err = aas_set_field_opt_string(&tv, "name", t->name, errstr,
                                            errstr_size)) ||
            (err = aas_set_field_enum(&tv, "dtype", (int)t->dtype, errstr,
                                      errstr_size)))
            return err;
        if ((rc = avro_value_get_by_name(&tv, "shape", &f, NULL)))
            return aas_codec_avro_err(rc, AAS_ERR_INVAL, "shape", errstr,
                                      errstr_size);
        for (int d = 0; d < t->rank; d++)
            if ((rc = avro_value_append(&f, &e, NULL)) ||
                (rc = avro_value_set_long(&e, t->shape[d])))
                return aas_codec_avro_err(rc, AAS_ERR_INVAL, "shape", errstr,
                                          errstr_size);
        avro_wrapped_buffer_t wb;
        if ((rc = avro_value_get_by_name(&tv, "data", &f, NULL)) ||
            (rc = avro_wrapped_buffer_new(&wb, t->nbytes ? t->data : "",
                                          t->nbytes)) ||
            (rc = avro_value_give_bytes(&f, &wb)))
            return aas_codec_avro_err(rc, AAS_ERR_INVAL, "data", errstr,
                                      errstr_size);
    }
    return AAS_ERR_OK;
}

/* Header + avro_value_write into one exactly-sized malloc'ed buffer. */
static aas_err_t aas_codec_write(avro_value_t *v, uint64_t fp, void **buf,
                                 size_t *len, char *errstr,
                                 size_t errstr_size) {
    size_t size;
    int rc = avro_value_sizeof(v, &size);
    if (rc) return aas_codec_avro_err(rc, AAS_ERR_INVAL, "sizing", errstr, errstr_size);
    unsigned char *out;
    aas_err_t err = aas_codec_message_new(fp, size, &out, errstr, errstr_size);
    if (err) return err;
    avro_writer_t w = avro_writer_memory((const char *)out + AAS_CODEC_HEADER_SIZE,
                                         (int64_t)size);
    if (!w) {
        free(out);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "avro writer: oom");
    }
    rc = avro_value_write(w, v);
    int64_t written = avro_writer_tell(w);
    avro_writer_free(w);
    if (rc || written != (int64_t)size) {
        free(out);
        if (rc) return aas_codec_avro_err(rc, AAS_ERR_INVAL, "writing", errstr,
                                          errstr_size);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "wrote %" PRId64 " bytes, sized %zu", written, size);
    }
    *buf = out;
    *len = AAS_CODEC_HEADER_SIZE + size;
    return AAS_ERR_OK;
}

/* Fills a generic value of the writer schema from an aas object. */
typedef aas_err_t (*aas_codec_fill_fn)(const void *obj, avro_value_t *v,
                                       char *errstr, size_t errstr_size);

/* One message of schema k: a value filled from obj, then written. */
static aas_err_t aas_codec_encode(const aas_codec_known_t *k, aas_codec_fill_fn fill,
                                  const void *obj, void **buf, size_t *len,
                                  char *errstr, size_t errstr_size) {
    avro_value_t v;
    int rc = avro_generic_value_new(k->wclass, &v);
    if (rc) return aas_codec_avro_err(rc, AAS_ERR_NOMEM, "avro value", errstr,
                                      errstr_size);
    aas_err_t err = fill(obj, &v, errstr, errstr_size);
    if (!err) err = aas_codec_write(&v, k->fp, buf, len, errstr, errstr_size);
    avro_value_decref(&v);
    return err;
}

/* An aas_codec_fill_fn for aas_job_t. */
static aas_err_t aas_job_to_value(const void *obj, avro_value_t *v, char *errstr,
                                  size_t errstr_size) {
    const aas_job_t *job = obj;
    aas_err_t err;
    avro_value_t f, e;
    int rc;
    if (!aas_id_valid(job->id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job id is not a valid id");
    if (!aas_id_valid(job->model))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "model is not a valid name");
    if ((err = aas_check_opt_id(job->model_version, "model_version", errstr,
                                errstr_size)))
        return err;
    if ((int)job->kind < 0 || job->kind > AAS_JOB_TRAIN)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "bad job kind %d",
                           (int)job->kind);
    if ((err = aas_set_field_string(v, "id", job->id, errstr, errstr_size)) ||
        (err = aas_set_field_enum(v, "kind", (int)job->kind, errstr,
                                  errstr_size)) ||
        (err = aas_set_field_string(v, "model", job->model, errstr,
                                    errstr_size)) ||
        (err = aas_set_field_opt_string(v, "model_version", job->model_version,
                                        errstr, errstr_size)) ||
        (err = aas_set_tensors(v, "inputs", job->inputs, job->n_inputs, errstr,
                               errstr_size)) ||
        (err = aas_set_field_opt_string(v, "text", job->text, errstr,
                                        errstr_size)))
        return err;
    if ((rc = avro_value_get_by_name(v, "params", &f, NULL)))
        return aas_codec_avro_err(rc, AAS_ERR_INVAL, "params", errstr, errstr_size);
    if (job->n_params && !job->params)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "params: NULL");
    for (size_t i = 0; i < job->n_params; i++) {
        const aas_kv_t *kv = &job->params[i];
        int is_new = 0;
        if (!kv->key || !kv->value)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "params[%zu]: NULL key or value", i);
        if (!aas_codec_utf8_valid((const unsigned char *)kv->key, strlen(kv->key)))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "params[%zu]: key is not valid UTF-8", i);
        if ((rc = avro_value_add(&f, kv->key, &e, NULL, &is_new)))
            return aas_codec_avro_err(rc, AAS_ERR_INVAL, "params", errstr,
                                      errstr_size);
        if (!is_new)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "params: duplicate key \"%s\"", kv->key);
        if ((err = aas_set_string(&e, kv->value, "params value", errstr,
                                  errstr_size)))
            return err;
    }
    if ((rc = avro_value_get_by_name(v, "priority", &f, NULL)) ||
        (rc = avro_value_set_int(&f, job->priority)))
        return aas_codec_avro_err(rc, AAS_ERR_INVAL, "priority", errstr,
                                  errstr_size);
    /* deadline_ms: 0 (none) travels as null. */
    if ((rc = avro_value_get_by_name(v, "deadline_ms", &f, NULL)) ||
        (rc = avro_value_set_branch(&f, job->deadline_ms ? 1 : 0, &e)) ||
        (rc = job->deadline_ms ? avro_value_set_long(&e, job->deadline_ms)
                               : avro_value_set_null(&e)))
        return aas_codec_avro_err(rc, AAS_ERR_INVAL, "deadline_ms", errstr,
                                  errstr_size);
    if ((err = aas_set_field_long(v, "submit_ms", job->submit_ms, errstr, errstr_size)))
        return err;
    if (job->tenant && !aas_id_valid(job->tenant))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "invalid tenant (want [A-Za-z0-9_.-]{1,%d})", AAS_ID_MAX);
    return aas_set_field_opt_string(v, "tenant", job->tenant, errstr, errstr_size);
}

aas_err_t aas_codec_job_encode(aas_codec_t *codec, const aas_job_t *job,
                               void **buf, size_t *len, char *errstr,
                               size_t errstr_size) {
    if (!codec || !job || !buf || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job encode: NULL argument");
    return aas_codec_encode(&codec->known[0], aas_job_to_value, job, buf, len,
                            errstr, errstr_size);
}

/* An aas_codec_fill_fn for aas_result_t. */
static aas_err_t aas_result_to_value(const void *obj, avro_value_t *v,
                                     char *errstr, size_t errstr_size) {
    const aas_result_t *res = obj;
    aas_err_t err;
    avro_value_t f, t, e;
    int rc;
    if (!aas_id_valid(res->job_id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job_id is not a valid id");
    if ((int)res->status < 0 || res->status >= AAS_STATUS__COUNT)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "bad status %d", (int)res->status);
    if ((err = aas_check_opt_id(res->model, "model", errstr, errstr_size)) ||
        (err = aas_check_opt_id(res->model_version, "model_version", errstr,
                                errstr_size)) ||
        (err = aas_check_opt_id(res->worker_id, "worker_id", errstr,
                                errstr_size)) ||
        (err = aas_set_field_string(v, "job_id", res->job_id, errstr,
                                    errstr_size)) ||
        (err = aas_set_field_enum(v, "status", (int)res->status, errstr,
                                  errstr_size)) ||
        (err = aas_set_field_opt_string(v, "model", res->model, errstr,
                                        errstr_size)) ||
        (err = aas_set_field_opt_string(v, "model_version", res->model_version,
                                        errstr, errstr_size)) ||
        (err = aas_set_tensors(v, "outputs", res->outputs, res->n_outputs,
                               errstr, errstr_size)) ||
        (err = aas_set_field_opt_string(v, "error", res->error, errstr,
                                        errstr_size)) ||
        (err = aas_set_field_opt_string(v, "worker_id", res->worker_id, errstr,
                                        errstr_size)) ||
        (err = aas_set_field_long(v, "finished_ms", res->finished_ms, errstr,
                                  errstr_size)))
        return err;
    if ((rc = avro_value_get_by_name(v, "timings", &t, NULL)))
        return aas_codec_avro_err(rc, AAS_ERR_INVAL, "timings", errstr,
                                  errstr_size);
    if ((err = aas_set_field_long(&t, "queue_ms", res->timings.queue_ms, errstr,
                                  errstr_size)) ||
        (err = aas_set_field_long(&t, "decode_us", res->timings.decode_us,
                                  errstr, errstr_size)) ||
        (err = aas_set_field_long(&t, "compute_us", res->timings.compute_us,
                                  errstr, errstr_size)) ||
        (err = aas_set_field_long(&t, "total_us", res->timings.total_us, errstr,
                                  errstr_size)))
        return err;
    if ((rc = avro_value_get_by_name(v, "predictions", &f, NULL)))
        return aas_codec_avro_err(rc, AAS_ERR_INVAL, "predictions", errstr,
                                  errstr_size);
    if (res->n_predictions && !res->predictions)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "predictions: NULL");
    for (size_t i = 0; i < res->n_predictions; i++) {
        const aas_prediction_t *p = &res->predictions[i];
        avro_value_t pf;
        if ((rc = avro_value_append(&f, &e, NULL)) ||
            (rc = avro_value_get_by_name(&e, "label", &pf, NULL)) ||
            (rc = avro_value_set_int(&pf, p->label)) ||
            (rc = avro_value_get_by_name(&e, "probability", &pf, NULL)) ||
            (rc = avro_value_set_float(&pf, p->probability)))
            return aas_codec_avro_err(rc, AAS_ERR_INVAL, "predictions", errstr,
                                      errstr_size);
        if ((err = aas_set_field_opt_string(&e, "name", p->name, errstr,
                                            errstr_size)))
            return err;
    }
    return AAS_ERR_OK;
}

/* Through Avro C values (codec_int.h); aas_codec_result_encode() writes
 * the same bytes directly (codec_direct.c). */
aas_err_t aas_codec_result_encode_generic(aas_codec_t *codec, const aas_result_t *res,
                                          void **buf, size_t *len, char *errstr,
                                          size_t errstr_size) {
    if (!codec || !res || !buf || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "result encode: NULL argument");
    return aas_codec_encode(&codec->known[1], aas_result_to_value, res, buf, len,
                            errstr, errstr_size);
}

