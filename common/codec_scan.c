/*
 * codec_scan.c - passes 1 and 2 of decoding (codec.c says why): the
 * header (bounds, magic, fingerprint) and a schema-directed walk of the
 * untrusted Avro bytes that checks every length, count and limit before
 * Avro C reads anything; then the Avro C read itself, resolving an older
 * writer.  It allocates nothing until the scan has passed, and converts
 * nothing to aas types (codec_decode.c does).
 */
#include "codec.h"
#include "codec_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

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


static aas_err_t aas_scan_fail(aas_codec_scan_t *s, aas_err_t err, const char *what) {
    return aas_err_set(s->errstr, s->errstr_size, err, "byte %zu: %s",
                       AAS_CODEC_HEADER_SIZE + (size_t)(s->p - s->start), what);
}

static size_t aas_scan_left(const aas_codec_scan_t *s) {
    return (size_t)(s->end - s->p);
}

/* Zig-zag varint, at most 10 bytes (as Avro C reads it). */
aas_err_t aas_codec_scan_long(aas_codec_scan_t *s, int64_t *out) {
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
aas_err_t aas_codec_scan_len(aas_codec_scan_t *s, size_t *len) {
    int64_t v = 0;
    aas_err_t err = aas_codec_scan_long(s, &v);
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

static aas_err_t aas_scan_value(aas_codec_scan_t *s, avro_schema_t sc,
                                aas_role_t role, int depth);

/* Arrays and maps: blocks of (count [, byte size]) items, ended by 0. */
static aas_err_t aas_scan_blocks(aas_codec_scan_t *s, avro_schema_t sc,
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
        if ((err = aas_codec_scan_long(s, &count))) return err;
        if (count == 0) return AAS_ERR_OK;
        if (count < 0) {
            int64_t bsize = 0;
            if (count == INT64_MIN)
                return aas_scan_fail(s, AAS_ERR_DECODE, "bad block count");
            count = -count;
            if ((err = aas_codec_scan_long(s, &bsize))) return err;
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
                if ((err = aas_codec_scan_len(s, &klen))) return err;
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
                if ((err = aas_codec_scan_long(s, &dim))) return err;
                s->t.shape[s->t.rank++] = dim;
                continue;
            }
            if ((err = aas_scan_value(s, item, item_role, depth + 1))) return err;
        }
    }
}

static aas_err_t aas_scan_record(aas_codec_scan_t *s, avro_schema_t sc,
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

static aas_err_t aas_scan_value(aas_codec_scan_t *s, avro_schema_t sc,
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
        if ((err = aas_codec_scan_long(s, &v))) return err;
        if (v < INT32_MIN || v > INT32_MAX)
            return aas_scan_fail(s, AAS_ERR_DECODE, "int out of range");
        return AAS_ERR_OK;
    case AVRO_INT64:
        return aas_codec_scan_long(s, &v);
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        len = avro_typeof(sc) == AVRO_FLOAT ? 4 : 8;
        if (aas_scan_left(s) < len) return aas_scan_fail(s, AAS_ERR_DECODE, "truncated");
        s->p += len;
        return AAS_ERR_OK;
    case AVRO_STRING:
    case AVRO_BYTES:
        if ((err = aas_codec_scan_len(s, &len))) return err;
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
        if ((err = aas_codec_scan_long(s, &v))) return err;
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
        if ((err = aas_codec_scan_long(s, &v))) return err;
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


void aas_codec_read_done(aas_codec_read_t *r) {
    if (r->rvalue.self) avro_value_decref(&r->rvalue);
    if (r->wvalue.self) avro_value_decref(&r->wvalue);
    memset(r, 0, sizeof(*r));
}

aas_err_t aas_codec_read(aas_codec_t *codec, const void *buf, size_t len,
                                int want_job, aas_codec_scan_t *scan,
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
    uint64_t fp = aas_codec_get_le64(b + 2);
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

/* A peek's start: a message of the current job writer schema (others are
 * "unknown" to a peek), the scanner set after its header.  -1 if not. */
static int aas_peek_start(const aas_codec_t *codec, const void *buf, size_t len,
                          aas_codec_scan_t *s, char *why, size_t why_size) {
    const unsigned char *b = buf;
    if (!codec || !buf || len < AAS_CODEC_HEADER_SIZE || b[0] != AAS_CODEC_MAGIC0 ||
        b[1] != AAS_CODEC_MAGIC1 || aas_codec_get_le64(b + 2) != codec->known[0].fp)
        return -1;
    *s = (aas_codec_scan_t){.start = b + AAS_CODEC_HEADER_SIZE,
                            .p = b + AAS_CODEC_HEADER_SIZE,
                            .end = b + len,
                            .errstr = why,
                            .errstr_size = why_size};
    return 0;
}

/* The model of a job message, read by the scanner alone (codec.h). */
int aas_codec_job_peek_model(const aas_codec_t *codec, const void *buf, size_t len,
                             char *model_out) {
    model_out[0] = '\0';
    /* Only the current writer schema, whose first fields are id (string),
     * kind (enum), model (string); older writers are simply "unknown". */
    char why[64];
    aas_codec_scan_t s;
    if (aas_peek_start(codec, buf, len, &s, why, sizeof(why))) return -1;
    size_t n = 0;
    int64_t kind = 0;
    if (aas_codec_scan_len(&s, &n)) return -1;
    s.p += n;
    if (aas_codec_scan_long(&s, &kind) || aas_codec_scan_len(&s, &n) || n == 0 ||
        n > AAS_ID_MAX)
        return -1;
    memcpy(model_out, s.p, n);
    model_out[n] = '\0';
    if (!aas_id_valid(model_out)) {
        model_out[0] = '\0';
        return -1;
    }
    return 0;
}

/* Skip a string or bytes value. */
static int aas_peek_skip_bytes(aas_codec_scan_t *s) {
    size_t n = 0;
    if (aas_codec_scan_len(s, &n)) return -1;
    s->p += n;
    return 0;
}

/* Skip an optional string (["null", "string"]); its value in *v, *n
 * (NULL for null). */
static int aas_peek_opt_string(aas_codec_scan_t *s, const unsigned char **v, size_t *n) {
    int64_t branch = 0;
    *v = NULL;
    *n = 0;
    if (aas_codec_scan_long(s, &branch) || branch < 0 || branch > 1) return -1;
    if (branch == 0) return 0;
    if (aas_codec_scan_len(s, n)) return -1;
    *v = s->p;
    s->p += *n;
    return 0;
}

/* Walk the blocks of an array or map, calling item() count times each. */
static int aas_peek_blocks(aas_codec_scan_t *s, int (*item)(aas_codec_scan_t *)) {
    for (int blocks = 0; blocks < 1 << 20; blocks++) {
        int64_t count = 0;
        if (aas_codec_scan_long(s, &count)) return -1;
        if (count == 0) return 0;
        if (count < 0) {
            int64_t bsize = 0;
            if (count == INT64_MIN || aas_codec_scan_long(s, &bsize) || bsize < 0 ||
                (uint64_t)bsize > (uint64_t)(s->end - s->p))
                return -1;
            s->p += bsize; /* the block's byte size lets us jump it */
            continue;
        }
        /* Every item takes at least one byte. */
        if ((uint64_t)count > (uint64_t)(s->end - s->p)) return -1;
        for (int64_t i = 0; i < count; i++)
            if (item(s)) return -1;
    }
    return -1;
}

static int aas_peek_long_item(aas_codec_scan_t *s) {
    int64_t v;
    return aas_codec_scan_long(s, &v) ? -1 : 0;
}

static int aas_peek_tensor_item(aas_codec_scan_t *s) {
    const unsigned char *v;
    size_t n;
    int64_t dtype;
    if (aas_peek_opt_string(s, &v, &n) || aas_codec_scan_long(s, &dtype) ||
        aas_peek_blocks(s, aas_peek_long_item) || aas_peek_skip_bytes(s))
        return -1;
    return 0;
}

static int aas_peek_param_item(aas_codec_scan_t *s) {
    return aas_peek_skip_bytes(s) || aas_peek_skip_bytes(s) ? -1 : 0;
}

int aas_codec_job_peek_tenant(const aas_codec_t *codec, const void *buf, size_t len,
                              char *tenant_out) {
    tenant_out[0] = '\0';
    /* Only the current writer schema (job.avsc field order: id, kind,
     * model, model_version, inputs, text, params, priority, deadline_ms,
     * submit_ms, tenant).  An older writer has no tenant field at all. */
    char why[64];
    aas_codec_scan_t s;
    if (aas_peek_start(codec, buf, len, &s, why, sizeof(why))) return -1;
    const unsigned char *v;
    size_t n;
    int64_t x;
    if (aas_peek_skip_bytes(&s) || aas_codec_scan_long(&s, &x) || aas_peek_skip_bytes(&s) ||
        aas_peek_opt_string(&s, &v, &n) || aas_peek_blocks(&s, aas_peek_tensor_item) ||
        aas_peek_opt_string(&s, &v, &n) || aas_peek_blocks(&s, aas_peek_param_item) ||
        aas_codec_scan_long(&s, &x) /* priority */ || aas_codec_scan_long(&s, &x) ||
        x < 0 || x > 1 || (x == 1 && aas_codec_scan_long(&s, &x)) /* deadline_ms */ ||
        aas_codec_scan_long(&s, &x) /* submit_ms */ || aas_peek_opt_string(&s, &v, &n) ||
        s.p != s.end || n > AAS_ID_MAX)
        return -1;
    if (!v) return 0; /* no tenant */
    memcpy(tenant_out, v, n);
    tenant_out[n] = '\0';
    if (!aas_id_valid(tenant_out)) {
        tenant_out[0] = '\0';
        return -1;
    }
    return 0;
}

