/*
 * codec_decode.c - pass 3 of decoding: Avro values (already scanned and
 * read, codec_scan.c) into aas_job_t / aas_result_t, validating ids, enums,
 * strings and tensors.  The current Job schema is normally read by
 * codec_direct.c instead; this path serves older writers (and is the
 * reference the direct code is tested against).
 */
#include "codec.h"
#include "codec_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

/* ---- getters: Avro value -> C -------------------------------------------- */

/* A field of a record; 0 if absent (only fields with a schema default can
 * be absent: the projection dropped them because the writer lacked them). */
static int aas_get_field(avro_value_t *rec, const char *name, avro_value_t *out) {
    return avro_value_get_by_name(rec, name, out, NULL) == 0;
}

static aas_err_t aas_need_field(avro_value_t *rec, const char *name,
                                avro_value_t *out, char *errstr,
                                size_t errstr_size) {
    if (!aas_get_field(rec, name, out))
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "field %s missing", name);
    return AAS_ERR_OK;
}

/* For ["null", T]: the T value in *v, or 0 for null. */
static aas_err_t aas_get_optional(avro_value_t *v, int *present, char *errstr,
                                  size_t errstr_size, const char *what) {
    if (avro_value_get_type(v) != AVRO_UNION) {
        *present = avro_value_get_type(v) != AVRO_NULL;
        return AAS_ERR_OK;
    }
    avro_value_t branch;
    int rc = avro_value_get_current_branch(v, &branch);
    if (rc) return aas_codec_avro_err(rc, AAS_ERR_DECODE, what, errstr, errstr_size);
    *present = avro_value_get_type(&branch) != AVRO_NULL;
    *v = branch;
    return AAS_ERR_OK;
}

/* Copy a string value: no NUL inside, valid UTF-8, at most max bytes. */
static aas_err_t aas_get_string(avro_value_t *v, size_t max, char **out,
                                const char *what, char *errstr,
                                size_t errstr_size) {
    const char *s;
    size_t size;
    int rc = avro_value_get_string(v, &s, &size);
    if (rc) return aas_codec_avro_err(rc, AAS_ERR_DECODE, what, errstr, errstr_size);
    size_t n = size ? size - 1 : 0; /* Avro C counts the NUL */
    if (n > max)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%s: %zu bytes, limit %zu", what, n, max);
    if (memchr(s, 0, n) || !aas_codec_utf8_valid((const unsigned char *)s, n))
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "%s: not a valid UTF-8 string", what);
    char *copy = malloc(n + 1);
    if (!copy) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "oom");
    memcpy(copy, s, n);
    copy[n] = '\0';
    *out = copy;
    return AAS_ERR_OK;
}

/* A string that must be an id (aas_id_valid). */
static aas_err_t aas_get_id(avro_value_t *v, char **out, const char *what,
                            char *errstr, size_t errstr_size) {
    char *s = NULL;
    aas_err_t err = aas_get_string(v, 4 * AAS_ID_MAX, &s, what, errstr, errstr_size);
    if (err == AAS_ERR_NOMEM) return err;
    if (err || !aas_id_valid(s)) {
        free(s);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%s is not a valid id ([A-Za-z0-9_.-]{1,%d})", what,
                           AAS_ID_MAX);
    }
    *out = s;
    return AAS_ERR_OK;
}

/* Field `name` of rec as an optional string (absent field = null). */
static aas_err_t aas_get_opt_string_field(avro_value_t *rec, const char *name,
                                          int is_id, size_t max, char **out,
                                          char *errstr, size_t errstr_size) {
    avro_value_t v;
    int present;
    *out = NULL;
    if (!aas_get_field(rec, name, &v)) return AAS_ERR_OK;
    aas_err_t err = aas_get_optional(&v, &present, errstr, errstr_size, name);
    if (err || !present) return err;
    return is_id ? aas_get_id(&v, out, name, errstr, errstr_size)
                 : aas_get_string(&v, max, out, name, errstr, errstr_size);
}

static aas_err_t aas_get_long_field(avro_value_t *rec, const char *name,
                                    int64_t *out, char *errstr,
                                    size_t errstr_size) {
    avro_value_t v;
    aas_err_t err = aas_need_field(rec, name, &v, errstr, errstr_size);
    if (err) return err;
    int rc = avro_value_get_long(&v, out);
    return rc ? aas_codec_avro_err(rc, AAS_ERR_DECODE, name, errstr, errstr_size)
              : AAS_ERR_OK;
}

static aas_err_t aas_get_enum_field(avro_value_t *rec, const char *name,
                                    int count, int *out, char *errstr,
                                    size_t errstr_size) {
    avro_value_t v;
    aas_err_t err = aas_need_field(rec, name, &v, errstr, errstr_size);
    if (err) return err;
    int e, rc = avro_value_get_enum(&v, &e);
    if (rc) return aas_codec_avro_err(rc, AAS_ERR_DECODE, name, errstr, errstr_size);
    if (e < 0 || e >= count)
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "%s: enum index %d out of range", name, e);
    *out = e;
    return AAS_ERR_OK;
}

/* One aas.v1.Tensor; checks the shape before copying the data. */
static aas_err_t aas_get_tensor(avro_value_t *v, uint64_t max_elems,
                                aas_tensor_t *t, const char *what,
                                char *errstr, size_t errstr_size) {
    aas_err_t err;
    avro_value_t f;
    int dtype, rc;
    char why[256];
    if ((err = aas_get_opt_string_field(v, "name", 0, AAS_CODEC_MAX_NAME,
                                        &t->name, errstr, errstr_size)) ||
        (err = aas_get_enum_field(v, "dtype", AAS_DTYPE__COUNT, &dtype, errstr,
                                  errstr_size)) ||
        (err = aas_need_field(v, "shape", &f, errstr, errstr_size)))
        return err;
    t->dtype = (aas_dtype_t)dtype;
    size_t rank;
    if ((rc = avro_value_get_size(&f, &rank)))
        return aas_codec_avro_err(rc, AAS_ERR_DECODE, "shape", errstr, errstr_size);
    if (rank > AAS_TENSOR_MAX_RANK)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "%s: rank %zu above %d", what, rank,
                           AAS_TENSOR_MAX_RANK);
    for (size_t i = 0; i < rank; i++) {
        avro_value_t d;
        if ((rc = avro_value_get_by_index(&f, i, &d, NULL)) ||
            (rc = avro_value_get_long(&d, &t->shape[i])))
            return aas_codec_avro_err(rc, AAS_ERR_DECODE, "shape", errstr,
                                      errstr_size);
    }
    t->rank = (int)rank;
    const void *data;
    size_t nbytes;
    if ((err = aas_need_field(v, "data", &f, errstr, errstr_size))) return err;
    if ((rc = avro_value_get_bytes(&f, &data, &nbytes)))
        return aas_codec_avro_err(rc, AAS_ERR_DECODE, "data", errstr, errstr_size);
    t->nbytes = nbytes;
    if ((err = aas_tensor_check(t, max_elems, NULL, why, sizeof(why)))) {
        t->nbytes = 0;
        return aas_err_set(errstr, errstr_size, err, "%s: %s", what, why);
    }
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->data) {
        t->nbytes = 0;
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "%s: %zu bytes: out of memory", what, nbytes);
    }
    if (nbytes) memcpy(t->data, data, nbytes);
    return AAS_ERR_OK;
}

/* An array of tensors into *out / *n (allocated here). */
static aas_err_t aas_get_tensors(avro_value_t *rec, const char *name,
                                 size_t max_tensors, uint64_t max_elems,
                                 aas_tensor_t **out, size_t *n, char *errstr,
                                 size_t errstr_size) {
    avro_value_t arr;
    size_t count;
    int rc;
    if (!aas_get_field(rec, name, &arr)) return AAS_ERR_OK; /* default [] */
    if ((rc = avro_value_get_size(&arr, &count)))
        return aas_codec_avro_err(rc, AAS_ERR_DECODE, name, errstr, errstr_size);
    if (count > max_tensors)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%zu %s, limit %zu", count, name, max_tensors);
    if (count == 0) return AAS_ERR_OK;
    *out = calloc(count, sizeof(**out));
    if (!*out) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "oom");
    for (size_t i = 0; i < count; i++) {
        avro_value_t tv;
        char what[64];
        snprintf(what, sizeof(what), "%s[%zu]", name, i);
        if ((rc = avro_value_get_by_index(&arr, i, &tv, NULL)))
            return aas_codec_avro_err(rc, AAS_ERR_DECODE, what, errstr, errstr_size);
        /* Count it first so the caller's clear frees a partial tensor. */
        *n = i + 1;
        aas_err_t err = aas_get_tensor(&tv, max_elems, &(*out)[i], what, errstr,
                                       errstr_size);
        if (err) return err;
    }
    return AAS_ERR_OK;
}

/* ---- job decode ---------------------------------------------------------- */

static aas_err_t aas_job_from_value(avro_value_t *v,
                                    const aas_codec_limits_t *lim,
                                    aas_job_t *job, char *errstr,
                                    size_t errstr_size) {
    aas_err_t err;
    avro_value_t f;
    int kind, rc;
    if ((err = aas_need_field(v, "id", &f, errstr, errstr_size)) ||
        (err = aas_get_id(&f, &job->id, "id", errstr, errstr_size)) ||
        (err = aas_get_enum_field(v, "kind", 2, &kind, errstr, errstr_size)) ||
        (err = aas_need_field(v, "model", &f, errstr, errstr_size)) ||
        (err = aas_get_id(&f, &job->model, "model", errstr, errstr_size)) ||
        (err = aas_get_opt_string_field(v, "model_version", 1, 0,
                                        &job->model_version, errstr,
                                        errstr_size)) ||
        (err = aas_get_tensors(v, "inputs", lim->max_tensors,
                               aas_codec_elems_cap(lim->max_tensor_elems),
                               &job->inputs, &job->n_inputs, errstr,
                               errstr_size)) ||
        (err = aas_get_opt_string_field(v, "text", 0, lim->max_text_bytes,
                                        &job->text, errstr, errstr_size)))
        return err;
    job->kind = (aas_job_kind_t)kind;

    if (aas_get_field(v, "params", &f)) {
        size_t n;
        if ((rc = avro_value_get_size(&f, &n)))
            return aas_codec_avro_err(rc, AAS_ERR_DECODE, "params", errstr,
                                      errstr_size);
        if (n > lim->max_params)
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                               "%zu params, limit %zu", n, lim->max_params);
        if (n) {
            job->params = calloc(n, sizeof(*job->params));
            if (!job->params)
                return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "oom");
        }
        for (size_t i = 0; i < n; i++) {
            avro_value_t pv;
            const char *key;
            if ((rc = avro_value_get_by_index(&f, i, &pv, &key)))
                return aas_codec_avro_err(rc, AAS_ERR_DECODE, "params", errstr,
                                          errstr_size);
            size_t klen = strlen(key);
            if (!aas_codec_utf8_valid((const unsigned char *)key, klen))
                return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                                   "params: key is not valid UTF-8");
            job->params[i].key = strdup(key);
            job->n_params = i + 1;
            if (!job->params[i].key)
                return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "oom");
            if ((err = aas_get_string(&pv, lim->max_text_bytes,
                                      &job->params[i].value, "params value",
                                      errstr, errstr_size)))
                return err;
        }
    }
    if (aas_get_field(v, "priority", &f) &&
        (rc = avro_value_get_int(&f, &job->priority)))
        return aas_codec_avro_err(rc, AAS_ERR_DECODE, "priority", errstr,
                                  errstr_size);
    if (aas_get_field(v, "deadline_ms", &f)) {
        int present;
        if ((err = aas_get_optional(&f, &present, errstr, errstr_size,
                                    "deadline_ms")))
            return err;
        if (present && (rc = avro_value_get_long(&f, &job->deadline_ms)))
            return aas_codec_avro_err(rc, AAS_ERR_DECODE, "deadline_ms",
                                      errstr, errstr_size);
    }
    if ((err = aas_get_long_field(v, "submit_ms", &job->submit_ms, errstr, errstr_size)))
        return err;
    /* Absent from a v1.0 writer: the resolver gives the default, null. */
    return aas_get_opt_string_field(v, "tenant", 1, 0, &job->tenant, errstr, errstr_size);
}


/* Any known Job writer schema through Avro C (codec_int.h); the current
 * one normally goes the direct way (codec_direct.c). */
aas_err_t aas_codec_job_decode_generic(aas_codec_t *codec, const void *buf, size_t len,
                                       const aas_codec_limits_t *limits, aas_job_t *job,
                                       char *job_id_out, char *errstr,
                                       size_t errstr_size) {
    aas_codec_limits_t defaults;
    if (job_id_out) job_id_out[0] = '\0';
    if (!codec || !job)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job decode: NULL argument");
    if (!limits) {
        aas_codec_limits_default(&defaults);
        limits = &defaults;
    }
    if (len > limits->max_message_bytes)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "message of %zu bytes, limit %zu", len,
                           limits->max_message_bytes);
    aas_codec_scan_t scan = {.max_elems = aas_codec_elems_cap(limits->max_tensor_elems),
                       .max_tensors = limits->max_tensors,
                       .max_text = limits->max_text_bytes,
                       .max_params = limits->max_params,
                       .errstr = errstr,
                       .errstr_size = errstr_size};

    aas_codec_read_t r;
    aas_job_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    aas_err_t err = aas_codec_read(codec, buf, len, 1, &scan, &r, errstr,
                                   errstr_size);
    if (!err) {
        err = aas_job_from_value(r.top, limits, &tmp, errstr, errstr_size);
        aas_codec_read_done(&r);
    }
    if (job_id_out && scan.id[0]) memcpy(job_id_out, scan.id, sizeof(scan.id));
    if (err) {
        aas_job_clear(&tmp);
        return err;
    }
    *job = tmp;
    return AAS_ERR_OK;
}

/* ---- result decode ------------------------------------------------------- */

static aas_err_t aas_result_from_value(avro_value_t *v, size_t msg_len,
                                       aas_result_t *res, char *errstr,
                                       size_t errstr_size) {
    aas_err_t err;
    avro_value_t f, t;
    int status, rc;
    size_t n;
    if ((err = aas_need_field(v, "job_id", &f, errstr, errstr_size)) ||
        (err = aas_get_id(&f, &res->job_id, "job_id", errstr, errstr_size)) ||
        (err = aas_get_enum_field(v, "status", AAS_STATUS__COUNT, &status,
                                  errstr, errstr_size)) ||
        (err = aas_get_opt_string_field(v, "model", 1, 0, &res->model, errstr,
                                        errstr_size)) ||
        (err = aas_get_opt_string_field(v, "model_version", 1, 0,
                                        &res->model_version, errstr,
                                        errstr_size)) ||
        (err = aas_get_tensors(v, "outputs", SIZE_MAX, aas_codec_elems_cap(msg_len),
                               &res->outputs, &res->n_outputs, errstr,
                               errstr_size)) ||
        (err = aas_get_opt_string_field(v, "error", 0, AAS_CODEC_MAX_RESULT_TEXT,
                                        &res->error, errstr, errstr_size)) ||
        (err = aas_get_opt_string_field(v, "worker_id", 1, 0, &res->worker_id,
                                        errstr, errstr_size)) ||
        (err = aas_get_long_field(v, "finished_ms", &res->finished_ms, errstr,
                                  errstr_size)) ||
        (err = aas_need_field(v, "timings", &t, errstr, errstr_size)) ||
        (err = aas_get_long_field(&t, "queue_ms", &res->timings.queue_ms,
                                  errstr, errstr_size)) ||
        (err = aas_get_long_field(&t, "decode_us", &res->timings.decode_us,
                                  errstr, errstr_size)) ||
        (err = aas_get_long_field(&t, "compute_us", &res->timings.compute_us,
                                  errstr, errstr_size)) ||
        (err = aas_get_long_field(&t, "total_us", &res->timings.total_us,
                                  errstr, errstr_size)))
        return err;
    res->status = (aas_status_t)status;

    if (!aas_get_field(v, "predictions", &f)) return AAS_ERR_OK;
    if ((rc = avro_value_get_size(&f, &n)))
        return aas_codec_avro_err(rc, AAS_ERR_DECODE, "predictions", errstr,
                                  errstr_size);
    if (n == 0) return AAS_ERR_OK;
    res->predictions = calloc(n, sizeof(*res->predictions));
    if (!res->predictions)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "oom");
    for (size_t i = 0; i < n; i++) {
        avro_value_t pv, pf;
        aas_prediction_t *p = &res->predictions[i];
        res->n_predictions = i + 1;
        if ((rc = avro_value_get_by_index(&f, i, &pv, NULL)))
            return aas_codec_avro_err(rc, AAS_ERR_DECODE, "predictions", errstr,
                                      errstr_size);
        if ((err = aas_need_field(&pv, "label", &pf, errstr, errstr_size)))
            return err;
        if ((rc = avro_value_get_int(&pf, &p->label)))
            return aas_codec_avro_err(rc, AAS_ERR_DECODE, "label", errstr,
                                      errstr_size);
        if ((err = aas_need_field(&pv, "probability", &pf, errstr, errstr_size)))
            return err;
        if ((rc = avro_value_get_float(&pf, &p->probability)))
            return aas_codec_avro_err(rc, AAS_ERR_DECODE, "probability", errstr,
                                      errstr_size);
        if ((err = aas_get_opt_string_field(&pv, "name", 0, AAS_CODEC_MAX_NAME,
                                            &p->name, errstr, errstr_size)))
            return err;
    }
    return AAS_ERR_OK;
}

aas_err_t aas_codec_result_decode(aas_codec_t *codec, const void *buf,
                                  size_t len, aas_result_t *res, char *errstr,
                                  size_t errstr_size) {
    if (!codec || !res)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "result decode: NULL argument");
    /* Results come from our own workers through Redis: no size policy, but
     * the same bounds checks, and tensors no larger than the message. */
    aas_codec_scan_t scan = {.max_elems = aas_codec_elems_cap(len),
                       .max_tensors = SIZE_MAX,
                       .max_text = SIZE_MAX,
                       .max_params = SIZE_MAX,
                       .errstr = errstr,
                       .errstr_size = errstr_size};

    aas_codec_read_t r;
    aas_result_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    aas_err_t err = aas_codec_read(codec, buf, len, 0, &scan, &r, errstr,
                                   errstr_size);
    if (!err) {
        err = aas_result_from_value(r.top, len, &tmp, errstr, errstr_size);
        aas_codec_read_done(&r);
    }
    if (err) {
        aas_result_clear(&tmp);
        return err;
    }
    *res = tmp;
    return AAS_ERR_OK;
}

