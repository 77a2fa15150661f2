/*
 * codec.c - jobs and results to and from Avro single-object encoding with
 * Avro C; see codec.h and docs/wire-format.md.  This file: the codec's
 * construction (known writer schemas, fingerprints, resolvers), limits and
 * small helpers; codec_scan.c passes 1 and 2 below, codec_decode.c pass 3,
 * codec_encode.c the way back; codec_direct.c does all of it in one pass
 * for the current schemas (the worker's hot path).
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


void aas_codec_limits_default(aas_codec_limits_t *limits) {
    limits->max_message_bytes = 64u * 1024 * 1024;
    limits->max_tensor_elems = 16u * 1024 * 1024;
    limits->max_tensors = 16;
    limits->max_text_bytes = 1024 * 1024;
    limits->max_params = 256;
}


/* Wrap an Avro C failure once: errno-style code plus avro_strerror(). */
aas_err_t aas_codec_avro_err(int rc, aas_err_t kind, const char *what,
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
    c->direct_job = c->known[0].fp == AAS_CODEC_DIRECT_JOB_FP;
    c->direct_result = c->known[1].fp == AAS_CODEC_DIRECT_RESULT_FP;
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
int aas_codec_utf8_valid(const unsigned char *s, size_t n) {
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

void aas_codec_put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

aas_err_t aas_codec_message_new(uint64_t fp, size_t size, unsigned char **out, char *errstr,
                                size_t errstr_size) {
    if (size > SIZE_MAX - AAS_CODEC_HEADER_SIZE)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "too large");
    unsigned char *m = malloc(AAS_CODEC_HEADER_SIZE + size);
    if (!m)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "encoding %zu bytes: out of memory", size);
    m[0] = AAS_CODEC_MAGIC0;
    m[1] = AAS_CODEC_MAGIC1;
    aas_codec_put_le64(m + 2, fp);
    *out = m;
    return AAS_ERR_OK;
}

uint64_t aas_codec_get_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* max_elems for aas_tensor_check such that elems * 8 cannot wrap. */
uint64_t aas_codec_elems_cap(uint64_t want) {
    return want < UINT64_MAX / 8 ? want : UINT64_MAX / 8;
}

