/*
 * codec.c - jobs and results to and from Avro single-object encoding with
 * Avro C; see codec.h and docs/wire-format.md.
 *
 * Decoding a message is three passes over bytes we do not trust:
 *   1. header: length bounds, magic, fingerprint -> one known writer schema;
 *   2. scan: a schema-directed walk of the Avro binary that checks every
 *      varint, length, count, enum and union index against the bytes left
 *      and against the limits (tensor count and shapes via aas_tensor_check,
 *      text size, params count), allocating nothing.  Avro C 1.11.1's
 *      readers trust lengths from the wire (read_bytes/read_string allocate
 *      `len + 1` and write the NUL before reading, with no check of len
 *      against the buffer or of its sign), so nothing reaches Avro C before
 *      the scan has passed;
 *   3. Avro C reads the writer value; for an older writer schema a resolved
 *      reader presents it as the current schema; we copy it out into
 *      aas_job_t / aas_result_t, validating ids, enums, strings and tensors.
 *
 * This file does not know Kafka or Redis, and does not log: every failure
 * comes back as aas_err_t with a sentence in errstr.
 */
#include "codec.h"
#include "codec_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "aas_schemas.h"

/* Tensor and class names (not ids: model input names may hold ':' or '/'). */
#define AAS_CODEC_MAX_NAME 1024
/* Error strings in results. */
#define AAS_CODEC_MAX_RESULT_TEXT (1024 * 1024)

/* A writer schema the decoder accepts. */
typedef struct {
    uint64_t fp;
    int is_job;                   /* aas.v1.Job, else aas.v1.Result */
    const char *path;             /* for messages: "job.avsc", "history/..." */
    const char *json;             /* the schema text (static storage) */
    avro_schema_t schema;         /* the writer schema */
    avro_value_iface_t *wclass;   /* generic values of the writer schema */
    avro_schema_t proj;           /* history only: current schema projected
                                     onto this writer (codec_int.h) */
    avro_value_iface_t *resolver; /* history only: resolved reader */
} aas_codec_known_t;

struct aas_codec_s {
    aas_codec_known_t *known; /* [0] current Job, [1] current Result */
    size_t n_known;
};

void aas_codec_limits_default(aas_codec_limits_t *limits) {
    limits->max_message_bytes = 64u * 1024 * 1024;
    limits->max_tensor_elems = 16u * 1024 * 1024;
    limits->max_tensors = 16;
    limits->max_text_bytes = 1024 * 1024;
    limits->max_params = 256;
}

/* Wrap an Avro C failure once: errno-style code plus avro_strerror(). */
static aas_err_t aas_codec_avro_err(int rc, aas_err_t kind, const char *what,
                                    char *errstr, size_t errstr_size) {
    return aas_err_set(errstr, errstr_size, rc == ENOMEM ? AAS_ERR_NOMEM : kind,
                       "%s: %s", what, avro_strerror());
}

/* ---- construction -------------------------------------------------------- */

void aas_codec_destroy(aas_codec_t *codec) {
    if (!codec) return;
    for (size_t i = 0; i < codec->n_known; i++) {
        aas_codec_known_t *k = &codec->known[i];
        if (k->resolver) avro_value_iface_decref(k->resolver);
        if (k->wclass) avro_value_iface_decref(k->wclass);
        if (k->proj) avro_schema_decref(k->proj);
        if (k->schema) avro_schema_decref(k->schema);
    }
    free(codec->known);
    free(codec);
}

static aas_err_t aas_codec_fingerprint_json(const char *json, uint64_t *fp,
                                            char *errstr, size_t errstr_size) {
    char *pcf = NULL;
    aas_err_t err = aas_codec_canonical_form(json, &pcf, errstr, errstr_size);
    if (err) return err;
    *fp = aas_codec_crc64_avro(pcf, strlen(pcf));
    free(pcf);
    return AAS_ERR_OK;
}

/* Parse one schema text into k (k->path set by the caller). */
static aas_err_t aas_codec_load(aas_codec_known_t *k, const char *json,
                                size_t len, char *errstr, size_t errstr_size) {
    aas_err_t err = aas_codec_fingerprint_json(json, &k->fp, errstr, errstr_size);
    if (err) return err;
    if (avro_schema_from_json_length(json, len, &k->schema) != 0) {
        k->schema = NULL;
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "schemas/%s: %s", k->path, avro_strerror());
    }
    const char *name = avro_schema_name(k->schema);
    const char *ns = avro_schema_namespace(k->schema);
    if (!is_avro_record(k->schema) || !name || !ns || strcmp(ns, "aas.v1") != 0 ||
        (strcmp(name, "Job") != 0 && strcmp(name, "Result") != 0))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "schemas/%s: top level is not record aas.v1.Job or "
                           "aas.v1.Result", k->path);
    k->is_job = strcmp(name, "Job") == 0;
    k->wclass = avro_generic_class_from_schema(k->schema);
    if (!k->wclass)
        return aas_codec_avro_err(0, AAS_ERR_INVAL, k->path, errstr, errstr_size);
    return AAS_ERR_OK;
}

/* Prepare decoding of an older writer schema into the current one. */
static aas_err_t aas_codec_load_history(aas_codec_known_t *k,
                                        const char *current_json,
                                        char *errstr, size_t errstr_size) {
    char *proj_json = NULL;
    aas_err_t err = aas_codec_schema_project(current_json, k->json, &proj_json,
                                             NULL, errstr, errstr_size);
    if (err) return err;
    int rc = avro_schema_from_json_length(proj_json, strlen(proj_json), &k->proj);
    free(proj_json);
    if (rc != 0) {
        k->proj = NULL;
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "schemas/%s: projecting the current schema: %s",
                           k->path, avro_strerror());
    }
    k->resolver = avro_resolved_reader_new(k->schema, k->proj);
    if (!k->resolver)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "schemas/%s cannot be resolved to the current "
                           "schema: %s", k->path, avro_strerror());
    return AAS_ERR_OK;
}

aas_err_t aas_codec_new(aas_codec_t **out, char *errstr, size_t errstr_size) {
    aas_err_t err;
    aas_codec_t *c = calloc(1, sizeof(*c));
    if (!c) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "oom");
    c->known = calloc(2 + aas_schema_history_count, sizeof(*c->known));
    if (!c->known) {
        free(c);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "oom");
    }
    c->n_known = 2; /* before loading, so a failure frees what loaded */
    c->known[0].path = "job.avsc";
    c->known[0].json = aas_schema_job_json;
    c->known[1].path = "result.avsc";
    c->known[1].json = aas_schema_result_json;
    if ((err = aas_codec_load(&c->known[0], aas_schema_job_json,
                              aas_schema_job_json_len, errstr, errstr_size)) ||
        (err = aas_codec_load(&c->known[1], aas_schema_result_json,
                              aas_schema_result_json_len, errstr, errstr_size)))
        goto fail;
    if (!c->known[0].is_job || c->known[1].is_job) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "job.avsc/result.avsc define the wrong records");
        goto fail;
    }
    for (size_t i = 0; i < aas_schema_history_count; i++) {
        aas_codec_known_t *k = &c->known[c->n_known++];
        k->path = aas_schema_history[i].path;
        k->json = aas_schema_history[i].json;
        if ((err = aas_codec_load(k, k->json, aas_schema_history[i].len, errstr,
                                  errstr_size)))
            goto fail;
        for (size_t j = 0; j + 1 < c->n_known; j++)
            if (c->known[j].fp == k->fp) {
                err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                  "schemas/%s has the fingerprint of "
                                  "schemas/%s", k->path, c->known[j].path);
                goto fail;
            }
        if ((err = aas_codec_load_history(
                 k, k->is_job ? aas_schema_job_json : aas_schema_result_json,
                 errstr, errstr_size)))
            goto fail;
    }
    *out = c;
    return AAS_ERR_OK;
fail:
    aas_codec_destroy(c);
    return err;
}

uint64_t aas_codec_job_fingerprint(const aas_codec_t *codec) {
    return codec->known[0].fp;
}

uint64_t aas_codec_result_fingerprint(const aas_codec_t *codec) {
    return codec->known[1].fp;
}

/* ---- small helpers ------------------------------------------------------- */

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
static int aas_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min, cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; cp = c & 0x07; }
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static void aas_put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t aas_get_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* max_elems for aas_tensor_check such that elems * 8 cannot wrap. */
static uint64_t aas_elems_cap(uint64_t want) {
    return want < UINT64_MAX / 8 ? want : UINT64_MAX / 8;
}

/* ---- pass 2: the scan ---------------------------------------------------- */

/* What a schema position means to us; everything else is only bounds. */
typedef enum {
    AAS_ROLE_NONE,
    AAS_ROLE_JOB,
    AAS_ROLE_RESULT,
    AAS_ROLE_ID,
    AAS_ROLE_TEXT,
    AAS_ROLE_TENSORS,
    AAS_ROLE_PARAMS,
    AAS_ROLE_TENSOR,
    AAS_ROLE_DTYPE,
    AAS_ROLE_SHAPE,
    AAS_ROLE_DATA
} aas_role_t;

typedef struct {
    const unsigned char *start, *p, *end;
    uint64_t max_elems;
    size_t max_tensors, max_text, max_params;
    char id[AAS_ID_MAX + 1]; /* "" until an acceptable id was scanned */
    size_t n_tensors;
    aas_tensor_t t; /* the tensor being scanned: dtype, shape, nbytes only */
    char *errstr;
    size_t errstr_size;
} aas_scan_t;

static aas_err_t aas_scan_fail(aas_scan_t *s, aas_err_t err, const char *what) {
    return aas_err_set(s->errstr, s->errstr_size, err, "byte %zu: %s",
                       AAS_CODEC_HEADER_SIZE + (size_t)(s->p - s->start), what);
}

static size_t aas_scan_left(const aas_scan_t *s) {
    return (size_t)(s->end - s->p);
}

/* Zig-zag varint, at most 10 bytes (as Avro C reads it). */
static aas_err_t aas_scan_long(aas_scan_t *s, int64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (s->p >= s->end) return aas_scan_fail(s, AAS_ERR_DECODE, "truncated varint");
        unsigned b = *s->p++;
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
            return AAS_ERR_OK;
        }
    }
    return aas_scan_fail(s, AAS_ERR_DECODE, "varint longer than 10 bytes");
}

/* A length prefix (bytes, string): 0 <= len <= bytes left. */
static aas_err_t aas_scan_len(aas_scan_t *s, size_t *len) {
    int64_t v = 0;
    aas_err_t err = aas_scan_long(s, &v);
    if (err) return err;
    if (v < 0 || (uint64_t)v > aas_scan_left(s))
        return aas_scan_fail(s, AAS_ERR_DECODE, "length outside the message");
    *len = (size_t)v;
    return AAS_ERR_OK;
}

static aas_role_t aas_scan_field_role(aas_role_t parent, const char *name) {
    switch (parent) {
    case AAS_ROLE_JOB:
        if (strcmp(name, "id") == 0) return AAS_ROLE_ID;
        if (strcmp(name, "text") == 0) return AAS_ROLE_TEXT;
        if (strcmp(name, "inputs") == 0) return AAS_ROLE_TENSORS;
        if (strcmp(name, "params") == 0) return AAS_ROLE_PARAMS;
        return AAS_ROLE_NONE;
    case AAS_ROLE_RESULT:
        if (strcmp(name, "job_id") == 0) return AAS_ROLE_ID;
        if (strcmp(name, "outputs") == 0) return AAS_ROLE_TENSORS;
        return AAS_ROLE_NONE;
    case AAS_ROLE_TENSOR:
        if (strcmp(name, "dtype") == 0) return AAS_ROLE_DTYPE;
        if (strcmp(name, "shape") == 0) return AAS_ROLE_SHAPE;
        if (strcmp(name, "data") == 0) return AAS_ROLE_DATA;
        return AAS_ROLE_NONE;
    default:
        return AAS_ROLE_NONE;
    }
}

static aas_err_t aas_scan_value(aas_scan_t *s, avro_schema_t sc,
                                aas_role_t role, int depth);

/* Arrays and maps: blocks of (count [, byte size]) items, ended by 0. */
static aas_err_t aas_scan_blocks(aas_scan_t *s, avro_schema_t sc,
                                 aas_role_t role, int depth) {
    int is_map = is_avro_map(sc);
    avro_schema_t item = is_map ? avro_schema_map_values(sc)
                                : avro_schema_array_items(sc);
    aas_role_t item_role = role == AAS_ROLE_TENSORS ? AAS_ROLE_TENSOR
                                                    : AAS_ROLE_NONE;
    /* A tensor's dims are collected for aas_tensor_check (long items, or
     * int items a writer could promote). */
    int shape_dims = role == AAS_ROLE_SHAPE && !is_map &&
                     (is_avro_int64(item) || is_avro_int32(item));
    uint64_t total = 0;
    aas_err_t err;
    for (;;) {
        int64_t count = 0;
        if ((err = aas_scan_long(s, &count))) return err;
        if (count == 0) return AAS_ERR_OK;
        if (count < 0) {
            int64_t bsize = 0;
            if (count == INT64_MIN)
                return aas_scan_fail(s, AAS_ERR_DECODE, "bad block count");
            count = -count;
            if ((err = aas_scan_long(s, &bsize))) return err;
            if (bsize < 0 || (uint64_t)bsize > aas_scan_left(s))
                return aas_scan_fail(s, AAS_ERR_DECODE,
                                     "block size outside the message");
        }
        total += (uint64_t)count;
        if (role == AAS_ROLE_TENSORS && total > s->max_tensors)
            return aas_err_set(s->errstr, s->errstr_size, AAS_ERR_TOO_LARGE,
                               "more than %zu tensors", s->max_tensors);
        if (role == AAS_ROLE_PARAMS && total > s->max_params)
            return aas_err_set(s->errstr, s->errstr_size, AAS_ERR_TOO_LARGE,
                               "more than %zu params", s->max_params);
        if (role == AAS_ROLE_SHAPE && total > AAS_TENSOR_MAX_RANK)
            return aas_err_set(s->errstr, s->errstr_size, AAS_ERR_SHAPE,
                               "tensor %zu: rank above %d", s->n_tensors,
                               AAS_TENSOR_MAX_RANK);
        /* Every item of our schemas takes at least one byte, so a count
         * beyond the bytes left is a lie; this bounds Avro C's work and
         * memory by the message size. */
        if ((uint64_t)count > aas_scan_left(s))
            return aas_scan_fail(s, AAS_ERR_DECODE,
                                 "item count larger than the message");
        for (int64_t i = 0; i < count; i++) {
            if (is_map) {
                size_t klen = 0;
                if ((err = aas_scan_len(s, &klen))) return err;
                /* Avro C keeps map keys as C strings: a NUL would cut one. */
                if (memchr(s->p, 0, klen))
                    return aas_scan_fail(s, AAS_ERR_DECODE, "NUL in a map key");
                s->p += klen;
            }
            if (shape_dims) {
                /* int and long share the varint encoding; the scan of the
                 * item checks an int's range, the re-read takes the value. */
                const unsigned char *at = s->p;
                int64_t dim = 0;
                if ((err = aas_scan_value(s, item, AAS_ROLE_NONE, depth + 1)))
                    return err;
                s->p = at;
                if ((err = aas_scan_long(s, &dim))) return err;
                s->t.shape[s->t.rank++] = dim;
                continue;
            }
            if ((err = aas_scan_value(s, item, item_role, depth + 1))) return err;
        }
    }
}

static aas_err_t aas_scan_record(aas_scan_t *s, avro_schema_t sc,
                                 aas_role_t role, int depth) {
    aas_err_t err;
    if (role == AAS_ROLE_TENSOR) {
        memset(&s->t, 0, sizeof(s->t));
        s->t.dtype = AAS_DTYPE__COUNT; /* invalid until a dtype is scanned */
    }
    size_t n = avro_schema_record_size(sc);
    for (size_t i = 0; i < n; i++) {
        const char *fname = avro_schema_record_field_name(sc, (int)i);
        avro_schema_t fsc = avro_schema_record_field_get_by_index(sc, (int)i);
        if (!fname || !fsc)
            return aas_scan_fail(s, AAS_ERR_DECODE, "bad record schema");
        if ((err = aas_scan_value(s, fsc, aas_scan_field_role(role, fname),
                                  depth + 1)))
            return err;
    }
    if (role == AAS_ROLE_TENSOR) {
        /* Shape against limits and data length, before anything is
         * allocated for this tensor. */
        char why[256];
        if ((err = aas_tensor_check(&s->t, s->max_elems, NULL, why, sizeof(why))))
            return aas_err_set(s->errstr, s->errstr_size, err, "tensor %zu: %s",
                               s->n_tensors, why);
        s->n_tensors++;
    }
    return AAS_ERR_OK;
}

static aas_err_t aas_scan_value(aas_scan_t *s, avro_schema_t sc,
                                aas_role_t role, int depth) {
    aas_err_t err;
    int64_t v = 0;
    size_t len = 0;
    if (depth > AAS_CODEC_MAX_DEPTH)
        return aas_scan_fail(s, AAS_ERR_DECODE, "nested too deeply");
    while (is_avro_link(sc)) sc = avro_schema_link_target(sc);
    switch (avro_typeof(sc)) {
    case AVRO_NULL:
        return AAS_ERR_OK;
    case AVRO_BOOLEAN:
        if (aas_scan_left(s) < 1) return aas_scan_fail(s, AAS_ERR_DECODE, "truncated");
        if (*s->p > 1) return aas_scan_fail(s, AAS_ERR_DECODE, "bad boolean");
        s->p++;
        return AAS_ERR_OK;
    case AVRO_INT32:
        if ((err = aas_scan_long(s, &v))) return err;
        if (v < INT32_MIN || v > INT32_MAX)
            return aas_scan_fail(s, AAS_ERR_DECODE, "int out of range");
        return AAS_ERR_OK;
    case AVRO_INT64:
        return aas_scan_long(s, &v);
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        len = avro_typeof(sc) == AVRO_FLOAT ? 4 : 8;
        if (aas_scan_left(s) < len) return aas_scan_fail(s, AAS_ERR_DECODE, "truncated");
        s->p += len;
        return AAS_ERR_OK;
    case AVRO_STRING:
    case AVRO_BYTES:
        if ((err = aas_scan_len(s, &len))) return err;
        if (role == AAS_ROLE_ID) {
            /* Keep the id so a later failure can still name the job. */
            if (len <= AAS_ID_MAX && !memchr(s->p, 0, len)) {
                memcpy(s->id, s->p, len);
                s->id[len] = '\0';
                if (!aas_id_valid(s->id)) s->id[0] = '\0';
            }
        } else if (role == AAS_ROLE_TEXT && len > s->max_text) {
            return aas_err_set(s->errstr, s->errstr_size, AAS_ERR_TOO_LARGE,
                               "text of %zu bytes, limit %zu", len, s->max_text);
        } else if (role == AAS_ROLE_DATA) {
            s->t.nbytes = len;
        }
        s->p += len;
        return AAS_ERR_OK;
    case AVRO_FIXED: {
        int64_t size = avro_schema_fixed_size(sc);
        if (size < 0 || (uint64_t)size > aas_scan_left(s))
            return aas_scan_fail(s, AAS_ERR_DECODE, "truncated fixed");
        s->p += size;
        return AAS_ERR_OK;
    }
    case AVRO_ENUM:
        if ((err = aas_scan_long(s, &v))) return err;
        if (v < 0 || v >= avro_schema_enum_number_of_symbols(sc))
            return aas_scan_fail(s, AAS_ERR_DECODE, "enum index out of range");
        if (role == AAS_ROLE_DTYPE) {
            /* By symbol name: a writer may order symbols differently. */
            const char *sym = avro_schema_enum_get(sc, (int)v);
            for (int d = 0; sym && d < AAS_DTYPE__COUNT; d++)
                if (strcmp(sym, aas_dtype_name((aas_dtype_t)d)) == 0)
                    s->t.dtype = (aas_dtype_t)d;
        }
        return AAS_ERR_OK;
    case AVRO_UNION: {
        if ((err = aas_scan_long(s, &v))) return err;
        if (v < 0 || (uint64_t)v >= avro_schema_union_size(sc))
            return aas_scan_fail(s, AAS_ERR_DECODE, "union index out of range");
        avro_schema_t branch = avro_schema_union_branch(sc, (int)v);
        if (!branch) return aas_scan_fail(s, AAS_ERR_DECODE, "bad union schema");
        return aas_scan_value(s, branch, role, depth + 1);
    }
    case AVRO_ARRAY:
    case AVRO_MAP:
        return aas_scan_blocks(s, sc, role, depth);
    case AVRO_RECORD:
        return aas_scan_record(s, sc, role, depth);
    default:
        return aas_scan_fail(s, AAS_ERR_DECODE, "unsupported schema type");
    }
}

/* ---- pass 1 + 2 + Avro C read: shared by job and result decoding -------- */

typedef struct {
    avro_value_t wvalue; /* the writer value Avro C read */
    avro_value_t rvalue; /* the resolved view, if the writer is not current */
    avro_value_t *top;   /* what to convert: &wvalue or &rvalue */
} aas_codec_read_t;

static void aas_codec_read_done(aas_codec_read_t *r) {
    if (r->rvalue.self) avro_value_decref(&r->rvalue);
    if (r->wvalue.self) avro_value_decref(&r->wvalue);
    memset(r, 0, sizeof(*r));
}

static aas_err_t aas_codec_read(aas_codec_t *codec, const void *buf, size_t len,
                                int want_job, aas_scan_t *scan,
                                aas_codec_read_t *r, char *errstr,
                                size_t errstr_size) {
    const unsigned char *b = buf;
    memset(r, 0, sizeof(*r));
    if (!buf || len < AAS_CODEC_HEADER_SIZE)
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "message of %zu bytes is shorter than the %d-byte "
                           "header", buf ? len : 0, AAS_CODEC_HEADER_SIZE);
    if (b[0] != AAS_CODEC_MAGIC0 || b[1] != AAS_CODEC_MAGIC1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "bad magic %02x %02x, want c3 01", b[0], b[1]);
    uint64_t fp = aas_get_le64(b + 2);
    const aas_codec_known_t *k = NULL;
    for (size_t i = 0; i < codec->n_known && !k; i++)
        if (codec->known[i].fp == fp) k = &codec->known[i];
    if (!k || k->is_job != want_job)
        return aas_err_set(errstr, errstr_size, AAS_ERR_UNKNOWN_SCHEMA,
                           "writer fingerprint %016" PRIx64 " is not a known "
                           "%s schema", fp, want_job ? "Job" : "Result");

    scan->start = scan->p = b + AAS_CODEC_HEADER_SIZE;
    scan->end = b + len;
    aas_err_t err = aas_scan_value(scan, k->schema,
                                   want_job ? AAS_ROLE_JOB : AAS_ROLE_RESULT, 0);
    if (err) return err;
    if (scan->p != scan->end)
        return aas_scan_fail(scan, AAS_ERR_DECODE, "trailing bytes after the record");

    avro_reader_t reader = avro_reader_memory(
        (const char *)b + AAS_CODEC_HEADER_SIZE,
        (int64_t)(len - AAS_CODEC_HEADER_SIZE));
    if (!reader)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "avro reader: oom");
    int rc = avro_generic_value_new(k->wclass, &r->wvalue);
    if (rc == 0) {
        rc = avro_value_read(reader, &r->wvalue);
        if (rc) err = aas_codec_avro_err(rc, AAS_ERR_DECODE, "reading the message",
                                         errstr, errstr_size);
    } else {
        r->wvalue.self = NULL;
        err = aas_codec_avro_err(rc, AAS_ERR_NOMEM, "avro value", errstr, errstr_size);
    }
    avro_reader_free(reader);
    if (err) {
        aas_codec_read_done(r);
        return err;
    }
    r->top = &r->wvalue;
    if (k->resolver) {
        if ((rc = avro_resolved_reader_new_value(k->resolver, &r->rvalue))) {
            r->rvalue.self = NULL;
            aas_codec_read_done(r);
            return aas_codec_avro_err(rc, AAS_ERR_DECODE, "resolving the writer schema",
                                      errstr, errstr_size);
        }
        avro_resolved_reader_set_source(&r->rvalue, &r->wvalue);
        r->top = &r->rvalue;
    }
    return AAS_ERR_OK;
}

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
    if (memchr(s, 0, n) || !aas_utf8_valid((const unsigned char *)s, n))
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
                               aas_elems_cap(lim->max_tensor_elems),
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
            if (!aas_utf8_valid((const unsigned char *)key, klen))
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
    return aas_get_long_field(v, "submit_ms", &job->submit_ms, errstr,
                              errstr_size);
}

int aas_codec_job_peek_model(const aas_codec_t *codec, const void *buf, size_t len,
                             char *model_out) {
    const unsigned char *b = buf;
    model_out[0] = '\0';
    /* Only the current writer schema, whose first fields are id (string),
     * kind (enum), model (string); older writers are simply "unknown". */
    if (!codec || !buf || len < AAS_CODEC_HEADER_SIZE || b[0] != AAS_CODEC_MAGIC0 ||
        b[1] != AAS_CODEC_MAGIC1 || aas_get_le64(b + 2) != codec->known[0].fp)
        return -1;
    char why[64];
    aas_scan_t s = {.start = b + AAS_CODEC_HEADER_SIZE, .p = b + AAS_CODEC_HEADER_SIZE,
                    .end = b + len, .errstr = why, .errstr_size = sizeof(why)};
    size_t n = 0;
    int64_t kind = 0;
    if (aas_scan_len(&s, &n)) return -1;
    s.p += n;
    if (aas_scan_long(&s, &kind) || aas_scan_len(&s, &n) || n == 0 || n > AAS_ID_MAX)
        return -1;
    memcpy(model_out, s.p, n);
    model_out[n] = '\0';
    if (!aas_id_valid(model_out)) {
        model_out[0] = '\0';
        return -1;
    }
    return 0;
}

aas_err_t aas_codec_job_decode(aas_codec_t *codec, const void *buf, size_t len,
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
    aas_scan_t scan;
    memset(&scan, 0, sizeof(scan));
    scan.max_elems = aas_elems_cap(limits->max_tensor_elems);
    scan.max_tensors = limits->max_tensors;
    scan.max_text = limits->max_text_bytes;
    scan.max_params = limits->max_params;
    scan.errstr = errstr;
    scan.errstr_size = errstr_size;

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
        (err = aas_get_tensors(v, "outputs", SIZE_MAX, aas_elems_cap(msg_len),
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
    aas_scan_t scan;
    memset(&scan, 0, sizeof(scan));
    scan.max_elems = aas_elems_cap(len);
    scan.max_tensors = SIZE_MAX;
    scan.max_text = SIZE_MAX;
    scan.max_params = SIZE_MAX;
    scan.errstr = errstr;
    scan.errstr_size = errstr_size;

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

/* ---- encode -------------------------------------------------------------- */

static aas_err_t aas_set_string(avro_value_t *v, const char *s, const char *what,
                                char *errstr, size_t errstr_size) {
    if (!aas_utf8_valid((const unsigned char *)s, strlen(s)))
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
    if (size > SIZE_MAX - AAS_CODEC_HEADER_SIZE)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "too large");
    unsigned char *out = malloc(AAS_CODEC_HEADER_SIZE + size);
    if (!out)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "encoding %zu bytes: out of memory", size);
    out[0] = AAS_CODEC_MAGIC0;
    out[1] = AAS_CODEC_MAGIC1;
    aas_put_le64(out + 2, fp);
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

static aas_err_t aas_job_to_value(const aas_job_t *job, avro_value_t *v,
                                  char *errstr, size_t errstr_size) {
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
        if (!aas_utf8_valid((const unsigned char *)kv->key, strlen(kv->key)))
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
    return aas_set_field_long(v, "submit_ms", job->submit_ms, errstr,
                              errstr_size);
}

aas_err_t aas_codec_job_encode(aas_codec_t *codec, const aas_job_t *job,
                               void **buf, size_t *len, char *errstr,
                               size_t errstr_size) {
    if (!codec || !job || !buf || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job encode: NULL argument");
    avro_value_t v;
    int rc = avro_generic_value_new(codec->known[0].wclass, &v);
    if (rc) return aas_codec_avro_err(rc, AAS_ERR_NOMEM, "avro value", errstr,
                                      errstr_size);
    aas_err_t err = aas_job_to_value(job, &v, errstr, errstr_size);
    if (!err) err = aas_codec_write(&v, codec->known[0].fp, buf, len, errstr,
                                    errstr_size);
    avro_value_decref(&v);
    return err;
}

static aas_err_t aas_result_to_value(const aas_result_t *res, avro_value_t *v,
                                     char *errstr, size_t errstr_size) {
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

aas_err_t aas_codec_result_encode(aas_codec_t *codec, const aas_result_t *res,
                                  void **buf, size_t *len, char *errstr,
                                  size_t errstr_size) {
    if (!codec || !res || !buf || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "result encode: NULL argument");
    avro_value_t v;
    int rc = avro_generic_value_new(codec->known[1].wclass, &v);
    if (rc) return aas_codec_avro_err(rc, AAS_ERR_NOMEM, "avro value", errstr,
                                      errstr_size);
    aas_err_t err = aas_result_to_value(res, &v, errstr, errstr_size);
    if (!err) err = aas_codec_write(&v, codec->known[1].fp, buf, len, errstr,
                                    errstr_size);
    avro_value_decref(&v);
    return err;
}
