/*
 * codec_direct.c - the current Job and Result schemas' Avro binary, read
 * and written by hand.  A worker decodes every job and encodes every
 * result; for one-row jobs Avro C's generic values (a tree of values,
 * fields looked up by name, a malloc per node) cost more CPU than the model
 * (issue 18).  This file does the same work straight between the bytes and
 * aas_job_t / aas_result_t.
 *
 * Job decoding is codec.c's three passes in one, with the same bounds,
 * limits and checks and the same error class for the same fault.  The
 * generic path's scan (pass 2) sees every structural fault (lengths,
 * counts, indices, limits, tensor shapes, trailing bytes) before its
 * conversion (pass 3) sees a content fault (ids, UTF-8, NUL, the size of a
 * name or param value).  So here a content fault is only noted ("late",
 * the first one wins) and returned once the rest of the message has proved
 * sound; a structural fault returns at once.  Messages of any other
 * fingerprint go the generic way (aas_codec_job_decode_generic): older
 * writers need Avro C's schema resolution.
 *
 * Result encoding checks what aas_codec_result_encode_generic checks, in
 * its order, sizes the message exactly, allocates once and writes; the
 * bytes are the generic encoder's (tests/test_codec_fast.c compares them).
 *
 * Field order is the schemas' (schemas/job.avsc, schemas/result.avsc).  A
 * schema change changes the fingerprints and turns this code off
 * (AAS_CODEC_DIRECT_*_FP, codec_int.h) until it is updated.
 *
 * Nothing here touches Avro C; everything is thread-safe (no state but the
 * arguments).
 */
#include "codec.h"
#include "codec_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ------------------------------------------------------------- */

typedef struct {
    aas_codec_scan_t s;            /* start, p, end, errstr (codec_scan.c) */
    const aas_codec_limits_t *lim;
    uint64_t max_elems;            /* aas_codec_elems_cap(lim->max_tensor_elems) */
    aas_err_t late;                /* the first content fault, or AAS_ERR_OK */
} aas_direct_t;

/* A structural fault at byte `at`, worded as codec_scan.c words it. */
static aas_err_t aas_direct_fail_at(aas_direct_t *d, const unsigned char *at,
                                    aas_err_t err, const char *what) {
    return aas_err_set(d->s.errstr, d->s.errstr_size, err, "byte %zu: %s",
                       AAS_CODEC_HEADER_SIZE + (size_t)(at - d->s.start), what);
}

static aas_err_t aas_direct_fail(aas_direct_t *d, aas_err_t err, const char *what) {
    return aas_direct_fail_at(d, d->s.p, err, what);
}

/* Note a content fault; it is returned only if no structural fault follows
 * (see the top of the file), and only the first one is kept. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void aas_direct_late(aas_direct_t *d, aas_err_t err, const char *fmt, ...) {
    if (d->late) return;
    d->late = err;
    if (d->s.errstr && d->s.errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->s.errstr, d->s.errstr_size, fmt, ap);
        va_end(ap);
    }
}

static size_t aas_direct_left(const aas_direct_t *d) {
    return (size_t)(d->s.end - d->s.p);
}

/* Zig-zag varint: the one-byte case here, the rest (up to 10 bytes, as Avro
 * C reads them) in codec_scan.c. */
static inline aas_err_t aas_direct_long(aas_direct_t *d, int64_t *out) {
    if (d->s.p < d->s.end && *d->s.p < 0x80) {
        uint64_t v = *d->s.p++;
        *out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
        return AAS_ERR_OK;
    }
    return aas_codec_scan_long(&d->s, out);
}

/* Bytes or string: a length within the bytes left; *at points into the
 * message.  A one-byte, non-negative length is the common case. */
static inline aas_err_t aas_direct_bytes(aas_direct_t *d, const unsigned char **at,
                                         size_t *n) {
    const unsigned char *p = d->s.p;
    if (p < d->s.end && !(*p & 0x81) && (size_t)(*p >> 1) < (size_t)(d->s.end - p)) {
        *n = *p >> 1;
        d->s.p = p + 1;
    } else {
        aas_err_t err = aas_codec_scan_len(&d->s, n);
        if (err) return err;
    }
    *at = d->s.p;
    d->s.p += *n;
    return AAS_ERR_OK;
}

static aas_err_t aas_direct_enum(aas_direct_t *d, int64_t symbols, int64_t *out) {
    aas_err_t err = aas_direct_long(d, out);
    if (err) return err;
    if (*out < 0 || *out >= symbols)
        return aas_direct_fail(d, AAS_ERR_DECODE, "enum index out of range");
    return AAS_ERR_OK;
}

/* The branch of a ["null", T] union: 0 (null) or 1. */
static aas_err_t aas_direct_branch(aas_direct_t *d, int *present) {
    int64_t v = 0;
    aas_err_t err = aas_direct_long(d, &v);
    if (err) return err;
    if (v < 0 || v > 1)
        return aas_direct_fail(d, AAS_ERR_DECODE, "union index out of range");
    *present = (int)v;
    return AAS_ERR_OK;
}

/* The next block of an array or map: *count items, 0 at the end.  A
 * negative count is followed by the block's byte size, which only has to
 * lie within the message (as in codec_scan.c: nothing skips by it). */
static aas_err_t aas_direct_block(aas_direct_t *d, int64_t *count) {
    aas_err_t err = aas_direct_long(d, count);
    if (err || *count >= 0) return err;
    int64_t bsize = 0;
    if (*count == INT64_MIN)
        return aas_direct_fail(d, AAS_ERR_DECODE, "bad block count");
    *count = -*count;
    if ((err = aas_direct_long(d, &bsize))) return err;
    if (bsize < 0 || (uint64_t)bsize > aas_direct_left(d))
        return aas_direct_fail(d, AAS_ERR_DECODE, "block size outside the message");
    return AAS_ERR_OK;
}

/* Every item of our schemas takes at least one byte: a count beyond the
 * bytes left is a lie.  Checked after the block's limit, as the scan does. */
static aas_err_t aas_direct_items_fit(aas_direct_t *d, int64_t count) {
    if ((uint64_t)count > aas_direct_left(d))
        return aas_direct_fail(d, AAS_ERR_DECODE, "item count larger than the message");
    return AAS_ERR_OK;
}

/*
 * Room in *arr (*cap elements of elem bytes) for element n.  The first
 * reservation is the rest of the block (exact for the usual single block),
 * but at most 64 elements at a time: a count the message cannot back then
 * costs no more memory than the items that do parse.
 */
static aas_err_t aas_direct_reserve(aas_direct_t *d, void **arr, size_t *cap, size_t n,
                                    uint64_t block_left, size_t elem) {
    if (n < *cap) return AAS_ERR_OK;
    size_t want = n + (block_left < 64 ? (size_t)block_left : 64);
    if (want < *cap * 2) want = *cap * 2;
    void *p = want <= SIZE_MAX / elem ? realloc(*arr, want * elem) : NULL;
    if (!p) return aas_err_set(d->s.errstr, d->s.errstr_size, AAS_ERR_NOMEM, "oom");
    memset((char *)p + *cap * elem, 0, (want - *cap) * elem);
    *arr = p;
    *cap = want;
    return AAS_ERR_OK;
}

static aas_err_t aas_direct_copy(aas_direct_t *d, const unsigned char *s, size_t n,
                                 char **out) {
    char *c = malloc(n + 1);
    if (!c) return aas_err_set(d->s.errstr, d->s.errstr_size, AAS_ERR_NOMEM, "oom");
    memcpy(c, s, n);
    c[n] = '\0';
    *out = c;
    return AAS_ERR_OK;
}

/* 1 if a string passes codec_decode.c's aas_get_string: at most max bytes,
 * no NUL, valid UTF-8; else the late fault is noted. */
static int aas_direct_string_ok(aas_direct_t *d, const unsigned char *s, size_t n,
                                size_t max, const char *what) {
    if (n > max) {
        aas_direct_late(d, AAS_ERR_TOO_LARGE, "%s: %zu bytes, limit %zu", what, n, max);
        return 0;
    }
    if (memchr(s, 0, n) || !aas_codec_utf8_valid(s, n)) {
        aas_direct_late(d, AAS_ERR_DECODE, "%s: not a valid UTF-8 string", what);
        return 0;
    }
    return 1;
}

/* A checked string copied into *out (owned); on a content fault *out stays
 * NULL and the fault is late. */
static aas_err_t aas_direct_string(aas_direct_t *d, const unsigned char *s, size_t n,
                                   size_t max, const char *what, char **out) {
    if (!aas_direct_string_ok(d, s, n, max, what)) return AAS_ERR_OK;
    return aas_direct_copy(d, s, n, out);
}

/* A string that must be an id (aas_id_valid), as aas_get_id takes it; the
 * id is left in tmp (AAS_ID_MAX + 1 bytes, "" if not valid). */
static aas_err_t aas_direct_id(aas_direct_t *d, const unsigned char *s, size_t n,
                               const char *what, char *tmp, char **out) {
    tmp[0] = '\0';
    if (n <= AAS_ID_MAX && !memchr(s, 0, n)) {
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        if (aas_id_valid(tmp)) return aas_direct_copy(d, s, n, out);
        tmp[0] = '\0';
    }
    aas_direct_late(d, AAS_ERR_INVAL, "%s is not a valid id ([A-Za-z0-9_.-]{1,%d})",
                    what, AAS_ID_MAX);
    return AAS_ERR_OK;
}

/* An optional id: ["null", "string"]. */
static aas_err_t aas_direct_opt_id(aas_direct_t *d, const char *what, char **out) {
    const unsigned char *at;
    size_t n;
    char tmp[AAS_ID_MAX + 1];
    int present = 0;
    aas_err_t err = aas_direct_branch(d, &present);
    if (err || !present) return err;
    if ((err = aas_direct_bytes(d, &at, &n))) return err;
    return aas_direct_id(d, at, n, what, tmp, out);
}

/* One aas.v1.Tensor, the index-th of the job's inputs. */
static aas_err_t aas_direct_tensor(aas_direct_t *d, aas_tensor_t *t, size_t index) {
    const unsigned char *at;
    size_t n;
    int64_t v;
    int present = 0;
    aas_err_t err;
    if ((err = aas_direct_branch(d, &present))) return err;
    if (present && ((err = aas_direct_bytes(d, &at, &n)) ||
                    (err = aas_direct_string(d, at, n, AAS_CODEC_MAX_NAME, "name",
                                             &t->name))))
        return err;
    if ((err = aas_direct_enum(d, AAS_DTYPE__COUNT, &v))) return err;
    t->dtype = (aas_dtype_t)v; /* DType's symbols are aas_dtype_t's order */
    uint64_t rank = 0;
    for (;;) {
        int64_t count = 0;
        if ((err = aas_direct_block(d, &count))) return err;
        if (count == 0) break;
        rank += (uint64_t)count;
        if (rank > AAS_TENSOR_MAX_RANK)
            return aas_err_set(d->s.errstr, d->s.errstr_size, AAS_ERR_SHAPE,
                               "tensor %zu: rank above %d", index, AAS_TENSOR_MAX_RANK);
        if ((err = aas_direct_items_fit(d, count))) return err;
        for (int64_t i = 0; i < count; i++) {
            if ((err = aas_direct_long(d, &v))) return err;
            t->shape[t->rank++] = v;
        }
    }
    if ((err = aas_direct_bytes(d, &at, &n))) return err;
    t->nbytes = n;
    /* The shape against the limit and the data length before the copy, as
     * the scan checks it: without the name (a bad one is a late fault). */
    aas_tensor_t shape_only = *t;
    char why[256];
    shape_only.name = NULL;
    if ((err = aas_tensor_check(&shape_only, d->max_elems, NULL, why, sizeof(why))))
        return aas_err_set(d->s.errstr, d->s.errstr_size, err, "tensor %zu: %s", index,
                           why);
    t->data = malloc(n ? n : 1);
    if (!t->data)
        return aas_err_set(d->s.errstr, d->s.errstr_size, AAS_ERR_NOMEM,
                           "inputs[%zu]: %zu bytes: out of memory", index, n);
    memcpy(t->data, at, n);
    return AAS_ERR_OK;
}

static aas_err_t aas_direct_inputs(aas_direct_t *d, aas_job_t *job) {
    uint64_t total = 0;
    size_t cap = 0;
    aas_err_t err;
    for (;;) {
        int64_t count = 0;
        if ((err = aas_direct_block(d, &count))) return err;
        if (count == 0) return AAS_ERR_OK;
        total += (uint64_t)count;
        if (total > d->lim->max_tensors)
            return aas_err_set(d->s.errstr, d->s.errstr_size, AAS_ERR_TOO_LARGE,
                               "more than %zu tensors", d->lim->max_tensors);
        if ((err = aas_direct_items_fit(d, count))) return err;
        for (int64_t i = 0; i < count; i++) {
            if ((err = aas_direct_reserve(d, (void **)&job->inputs, &cap, job->n_inputs,
                                          (uint64_t)(count - i), sizeof(*job->inputs))))
                return err;
            /* Counted first, so that aas_job_clear frees a partial tensor. */
            aas_tensor_t *t = &job->inputs[job->n_inputs++];
            if ((err = aas_direct_tensor(d, t, job->n_inputs - 1))) return err;
        }
    }
}

/* The last value of `key` in the params map starting at map_at (already
 * read once, so sound): only to word the late fault of a value. */
static void aas_direct_param_value(aas_direct_t *d, const unsigned char *map_at,
                                   const char *key, const unsigned char **vat,
                                   size_t *vn) {
    const unsigned char *saved = d->s.p;
    size_t klen = strlen(key);
    d->s.p = map_at;
    for (;;) {
        int64_t count = 0;
        if (aas_direct_block(d, &count) || count == 0) break;
        for (int64_t i = 0; i < count; i++) {
            const unsigned char *kat, *at;
            size_t kn, n;
            if (aas_direct_bytes(d, &kat, &kn) || aas_direct_bytes(d, &at, &n)) {
                d->s.p = saved;
                return;
            }
            if (kn == klen && memcmp(kat, key, kn) == 0) {
                *vat = at;
                *vn = n;
            }
        }
    }
    d->s.p = saved;
}

/*
 * The params map.  Avro C reads a repeated key into the first entry of
 * that key, the last value winning, and codec_decode.c then checks each
 * distinct key and its final value in map order; so does this.  A value is
 * checked when read, but its fault is decided after the map: a later
 * duplicate may replace it.
 */
static aas_err_t aas_direct_params(aas_direct_t *d, aas_job_t *job) {
    const unsigned char *map_at = d->s.p;
    size_t max_text = d->lim->max_text_bytes;
    uint64_t total = 0;
    size_t cap = 0;
    aas_err_t err;
    for (;;) {
        int64_t count = 0;
        if ((err = aas_direct_block(d, &count))) return err;
        if (count == 0) break;
        total += (uint64_t)count;
        if (total > d->lim->max_params)
            return aas_err_set(d->s.errstr, d->s.errstr_size, AAS_ERR_TOO_LARGE,
                               "more than %zu params", d->lim->max_params);
        if ((err = aas_direct_items_fit(d, count))) return err;
        for (int64_t i = 0; i < count; i++) {
            const unsigned char *kat, *at;
            size_t kn, n, j;
            if ((err = aas_direct_bytes(d, &kat, &kn))) return err;
            /* Avro C keeps map keys as C strings: a NUL would cut one. */
            if (memchr(kat, 0, kn))
                return aas_direct_fail_at(d, kat, AAS_ERR_DECODE, "NUL in a map key");
            if ((err = aas_direct_bytes(d, &at, &n))) return err;
            for (j = 0; j < job->n_params; j++)
                /* strncmp stops at the stored key's end; kat has no NUL. */
                if (strncmp(job->params[j].key, (const char *)kat, kn) == 0 &&
                    job->params[j].key[kn] == '\0')
                    break;
            if (j == job->n_params) {
                if ((err = aas_direct_reserve(d, (void **)&job->params, &cap, j,
                                              (uint64_t)(count - i),
                                              sizeof(*job->params))) ||
                    (err = aas_direct_copy(d, kat, kn, &job->params[j].key)))
                    return err;
                job->n_params++;
            }
            aas_kv_t *kv = &job->params[j];
            free(kv->value);
            kv->value = NULL;
            /* Faults wait for the end of the map: d->late is not touched. */
            if (n <= max_text && !memchr(at, 0, n) && aas_codec_utf8_valid(at, n) &&
                (err = aas_direct_copy(d, at, n, &kv->value)))
                return err;
        }
    }
    for (size_t j = 0; j < job->n_params; j++) {
        const char *key = job->params[j].key;
        if (!aas_codec_utf8_valid((const unsigned char *)key, strlen(key)))
            aas_direct_late(d, AAS_ERR_DECODE, "params: key is not valid UTF-8");
        if (!job->params[j].value) {
            const unsigned char *at = NULL;
            size_t n = 0;
            aas_direct_param_value(d, map_at, key, &at, &n);
            if (at) aas_direct_string_ok(d, at, n, max_text, "params value");
        }
    }
    return AAS_ERR_OK;
}

/* The body of a current-schema Job into job (a zeroed local). */
static aas_err_t aas_direct_job(aas_direct_t *d, aas_job_t *job, char *job_id_out) {
    const unsigned char *at;
    size_t n;
    int64_t v;
    int present = 0;
    char id[AAS_ID_MAX + 1];
    aas_err_t err;

    if ((err = aas_direct_bytes(d, &at, &n)) ||
        (err = aas_direct_id(d, at, n, "id", id, &job->id)))
        return err;
    /* From here on a failure can still name the job. */
    if (job_id_out && id[0]) memcpy(job_id_out, id, n + 1);
    if ((err = aas_direct_enum(d, 2 /* INFER, TRAIN */, &v))) return err;
    job->kind = (aas_job_kind_t)v;
    if ((err = aas_direct_bytes(d, &at, &n)) ||
        (err = aas_direct_id(d, at, n, "model", id, &job->model)) ||
        (err = aas_direct_opt_id(d, "model_version", &job->model_version)) ||
        (err = aas_direct_inputs(d, job)) ||
        (err = aas_direct_branch(d, &present)))
        return err;
    if (present) {
        if ((err = aas_direct_bytes(d, &at, &n))) return err;
        if (n > d->lim->max_text_bytes) /* a limit: structural, as in the scan */
            return aas_err_set(d->s.errstr, d->s.errstr_size, AAS_ERR_TOO_LARGE,
                               "text of %zu bytes, limit %zu", n, d->lim->max_text_bytes);
        if ((err = aas_direct_string(d, at, n, d->lim->max_text_bytes, "text",
                                     &job->text)))
            return err;
    }
    if ((err = aas_direct_params(d, job)) || (err = aas_direct_long(d, &v))) return err;
    if (v < INT32_MIN || v > INT32_MAX)
        return aas_direct_fail(d, AAS_ERR_DECODE, "int out of range");
    job->priority = (int32_t)v;
    if ((err = aas_direct_branch(d, &present)) ||
        (present && (err = aas_direct_long(d, &job->deadline_ms))) ||
        (err = aas_direct_long(d, &job->submit_ms)) ||
        (err = aas_direct_opt_id(d, "tenant", &job->tenant)))
        return err;
    if (d->s.p != d->s.end)
        return aas_direct_fail(d, AAS_ERR_DECODE, "trailing bytes after the record");
    return d->late;
}

/* A message already known to carry the current Job fingerprint. */
static aas_err_t aas_direct_job_decode(aas_codec_t *codec, const unsigned char *b,
                                       size_t len, const aas_codec_limits_t *limits,
                                       aas_job_t *job, char *job_id_out, char *errstr,
                                       size_t errstr_size) {
    aas_codec_limits_t defaults;
    (void)codec;
    if (!limits) {
        aas_codec_limits_default(&defaults);
        limits = &defaults;
    }
    if (len > limits->max_message_bytes)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "message of %zu bytes, limit %zu", len,
                           limits->max_message_bytes);
    aas_direct_t d;
    d.s.start = d.s.p = b + AAS_CODEC_HEADER_SIZE;
    d.s.end = b + len;
    d.s.errstr = errstr;
    d.s.errstr_size = errstr_size;
    d.lim = limits;
    d.max_elems = aas_codec_elems_cap(limits->max_tensor_elems);
    d.late = AAS_ERR_OK;

    aas_job_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    aas_err_t err = aas_direct_job(&d, &tmp, job_id_out);
    if (err) {
        aas_job_clear(&tmp);
        return err;
    }
    *job = tmp;
    return AAS_ERR_OK;
}

aas_err_t aas_codec_job_decode(aas_codec_t *codec, const void *buf, size_t len,
                               const aas_codec_limits_t *limits, aas_job_t *job,
                               char *job_id_out, char *errstr,
                               size_t errstr_size) {
    const unsigned char *b = buf;
    if (codec && job && codec->direct_job && b && len >= AAS_CODEC_HEADER_SIZE &&
        b[0] == AAS_CODEC_MAGIC0 && b[1] == AAS_CODEC_MAGIC1 &&
        aas_codec_get_le64(b + 2) == codec->known[0].fp) {
        if (job_id_out) job_id_out[0] = '\0';
        return aas_direct_job_decode(codec, b, len, limits, job, job_id_out, errstr,
                                     errstr_size);
    }
    return aas_codec_job_decode_generic(codec, buf, len, limits, job, job_id_out, errstr,
                                        errstr_size);
}

/* ---- writing ------------------------------------------------------------- */

static uint64_t aas_direct_zigzag(int64_t v) {
    return ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
}

static size_t aas_direct_long_size(int64_t v) {
    uint64_t n = aas_direct_zigzag(v);
    size_t k = 1;
    while (n >= 0x80) {
        n >>= 7;
        k++;
    }
    return k;
}

static unsigned char *aas_direct_put_long(unsigned char *p, int64_t v) {
    uint64_t n = aas_direct_zigzag(v);
    while (n >= 0x80) {
        *p++ = (unsigned char)(n | 0x80);
        n >>= 7;
    }
    *p++ = (unsigned char)n;
    return p;
}

static unsigned char *aas_direct_put_bytes(unsigned char *p, const void *s, size_t n) {
    p = aas_direct_put_long(p, (int64_t)n);
    if (n) memcpy(p, s, n);
    return p + n;
}

/* ["null", "string"]: branch 0, or branch 1 and the string. */
static unsigned char *aas_direct_put_opt(unsigned char *p, const char *s) {
    if (!s) {
        *p++ = 0;
        return p;
    }
    *p++ = 2; /* zig-zag 1 */
    return aas_direct_put_bytes(p, s, strlen(s));
}

static size_t aas_direct_bytes_size(size_t n) {
    return aas_direct_long_size((int64_t)n) + n;
}

static size_t aas_direct_opt_size(const char *s) {
    return s ? 1 + aas_direct_bytes_size(strlen(s)) : 1;
}

/* *size += add, or 0 if that wraps. */
static int aas_direct_add(size_t *size, size_t add) {
    if (add > SIZE_MAX - *size) return 0;
    *size += add;
    return 1;
}

static aas_err_t aas_direct_check_opt_id(const char *s, const char *what, char *errstr,
                                         size_t errstr_size) {
    if (s && !aas_id_valid(s))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%s is not a valid id",
                           what);
    return AAS_ERR_OK;
}

static aas_err_t aas_direct_check_utf8(const char *s, const char *what, char *errstr,
                                       size_t errstr_size) {
    if (s && !aas_codec_utf8_valid((const unsigned char *)s, strlen(s)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%s: not valid UTF-8",
                           what);
    return AAS_ERR_OK;
}

/* The output tensors' checks (aas_set_tensors in codec_encode.c) and size. */
static aas_err_t aas_direct_outputs_size(const aas_result_t *res, size_t *size,
                                         char *errstr, size_t errstr_size) {
    aas_err_t err;
    if (res->n_outputs && !res->outputs)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "outputs: NULL");
    size_t n = 1; /* the closing 0 */
    if (res->n_outputs) n += aas_direct_long_size((int64_t)res->n_outputs);
    for (size_t i = 0; i < res->n_outputs; i++) {
        const aas_tensor_t *t = &res->outputs[i];
        char why[256];
        if ((err = aas_tensor_check(t, UINT64_MAX / 8, NULL, why, sizeof(why))))
            return aas_err_set(errstr, errstr_size, err, "outputs[%zu]: %s", i, why);
        if (t->nbytes && !t->data)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "outputs[%zu]: NULL data", i);
        if (t->name && strlen(t->name) > AAS_CODEC_MAX_NAME)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "outputs[%zu]: name longer than %d bytes", i,
                               AAS_CODEC_MAX_NAME);
        if ((err = aas_direct_check_utf8(t->name, "name", errstr, errstr_size)))
            return err;
        size_t tn = aas_direct_opt_size(t->name) + aas_direct_long_size(t->dtype) + 1;
        if (t->rank) tn += aas_direct_long_size(t->rank);
        for (int d = 0; d < t->rank; d++) tn += aas_direct_long_size(t->shape[d]);
        if (!aas_direct_add(&tn, aas_direct_bytes_size(t->nbytes)) ||
            !aas_direct_add(&n, tn))
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "too large");
    }
    if (!aas_direct_add(size, n))
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "too large");
    return AAS_ERR_OK;
}

/* What aas_result_to_value (codec_encode.c) refuses, in its order, and the
 * exact size of the body. */
static aas_err_t aas_direct_result_size(const aas_result_t *res, size_t *size,
                                        char *errstr, size_t errstr_size) {
    aas_err_t err;
    size_t n = 0;
    if (!aas_id_valid(res->job_id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "job_id is not a valid id");
    if ((int)res->status < 0 || res->status >= AAS_STATUS__COUNT)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "bad status %d",
                           (int)res->status);
    if ((err = aas_direct_check_opt_id(res->model, "model", errstr, errstr_size)) ||
        (err = aas_direct_check_opt_id(res->model_version, "model_version", errstr,
                                       errstr_size)) ||
        (err = aas_direct_check_opt_id(res->worker_id, "worker_id", errstr,
                                       errstr_size)))
        return err;
    /* Valid ids are ASCII: job_id, model, model_version and worker_id need
     * no UTF-8 check. */
    n += aas_direct_bytes_size(strlen(res->job_id)) + 1 /* status */ +
         aas_direct_opt_size(res->model) + aas_direct_opt_size(res->model_version);
    if ((err = aas_direct_outputs_size(res, &n, errstr, errstr_size)) ||
        (err = aas_direct_check_utf8(res->error, "error", errstr, errstr_size)))
        return err;
    if (!aas_direct_add(&n, aas_direct_opt_size(res->error)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "too large");
    n += aas_direct_opt_size(res->worker_id) + aas_direct_long_size(res->finished_ms) +
         aas_direct_long_size(res->timings.queue_ms) +
         aas_direct_long_size(res->timings.decode_us) +
         aas_direct_long_size(res->timings.compute_us) +
         aas_direct_long_size(res->timings.total_us);
    if (res->n_predictions && !res->predictions)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "predictions: NULL");
    n += 1; /* the closing 0 */
    if (res->n_predictions) n += aas_direct_long_size((int64_t)res->n_predictions);
    for (size_t i = 0; i < res->n_predictions; i++) {
        const aas_prediction_t *p = &res->predictions[i];
        if ((err = aas_direct_check_utf8(p->name, "name", errstr, errstr_size)))
            return err;
        if (!aas_direct_add(&n, aas_direct_long_size(p->label) +
                                    aas_direct_opt_size(p->name) + 4 /* float */))
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "too large");
    }
    *size = n;
    return AAS_ERR_OK;
}

static unsigned char *aas_direct_put_tensor(unsigned char *p, const aas_tensor_t *t) {
    p = aas_direct_put_opt(p, t->name);
    p = aas_direct_put_long(p, t->dtype);
    if (t->rank) {
        p = aas_direct_put_long(p, t->rank);
        for (int d = 0; d < t->rank; d++) p = aas_direct_put_long(p, t->shape[d]);
    }
    *p++ = 0; /* end of shape */
    return aas_direct_put_bytes(p, t->data, t->nbytes);
}

/* Avro float: IEEE 754 single, little-endian. */
static unsigned char *aas_direct_put_float(unsigned char *p, float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(u >> (8 * i));
    return p + 4;
}

/* The body, in result.avsc's field order; returns the end. */
static unsigned char *aas_direct_put_result(unsigned char *p, const aas_result_t *res) {
    p = aas_direct_put_bytes(p, res->job_id, strlen(res->job_id));
    p = aas_direct_put_long(p, res->status);
    p = aas_direct_put_opt(p, res->model);
    p = aas_direct_put_opt(p, res->model_version);
    if (res->n_outputs) {
        p = aas_direct_put_long(p, (int64_t)res->n_outputs);
        for (size_t i = 0; i < res->n_outputs; i++)
            p = aas_direct_put_tensor(p, &res->outputs[i]);
    }
    *p++ = 0; /* end of outputs */
    if (res->n_predictions) {
        p = aas_direct_put_long(p, (int64_t)res->n_predictions);
        for (size_t i = 0; i < res->n_predictions; i++) {
            const aas_prediction_t *pr = &res->predictions[i];
            p = aas_direct_put_long(p, pr->label);
            p = aas_direct_put_opt(p, pr->name);
            p = aas_direct_put_float(p, pr->probability);
        }
    }
    *p++ = 0; /* end of predictions */
    p = aas_direct_put_opt(p, res->error);
    p = aas_direct_put_long(p, res->timings.queue_ms);
    p = aas_direct_put_long(p, res->timings.decode_us);
    p = aas_direct_put_long(p, res->timings.compute_us);
    p = aas_direct_put_long(p, res->timings.total_us);
    p = aas_direct_put_opt(p, res->worker_id);
    return aas_direct_put_long(p, res->finished_ms);
}

aas_err_t aas_codec_result_encode(aas_codec_t *codec, const aas_result_t *res,
                                  void **buf, size_t *len, char *errstr,
                                  size_t errstr_size) {
    if (!codec || !res || !buf || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "result encode: NULL argument");
    if (!codec->direct_result)
        return aas_codec_result_encode_generic(codec, res, buf, len, errstr, errstr_size);
    size_t size = 0;
    aas_err_t err = aas_direct_result_size(res, &size, errstr, errstr_size);
    unsigned char *out;
    if (err || (err = aas_codec_message_new(codec->known[1].fp, size, &out, errstr,
                                            errstr_size)))
        return err;
    unsigned char *end = aas_direct_put_result(out + AAS_CODEC_HEADER_SIZE, res);
    size_t written = (size_t)(end - out) - AAS_CODEC_HEADER_SIZE;
    if (written != size) {
        /* Cannot happen: sizing and writing walk the same fields, and
         * test_codec_fast compares every size with the generic encoder's
         * (under ASan).  Were it to, better an error than a bad message. */
        free(out);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "wrote %zu bytes, sized %zu",
                           written, size);
    }
    *buf = out;
    *len = AAS_CODEC_HEADER_SIZE + size;
    return AAS_ERR_OK;
}
