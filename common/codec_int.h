/*
 * codec_int.h - internals shared by the codec's files; not installed,
 * not for other modules.
 *
 * codec_pcf.c (canonical form, fingerprints, schema names) and
 * codec_project.c (projections) work on schema JSON texts with jansson;
 * codec.c (construction, helpers), codec_scan.c (header and scan of
 * untrusted bytes, Avro C read), codec_decode.c (values to aas types) and
 * codec_encode.c do everything that touches Avro C and the wire.
 * codec_direct.c reads and writes the current Job and Result schemas' Avro
 * binary by hand (the worker's hot path) and dispatches to the generic
 * path for everything else.  All are pure functions of their arguments:
 * thread-safe.
 */
#ifndef AAS_CODEC_INT_H
#define AAS_CODEC_INT_H

#include "err.h"

/*
 * Nesting limit for schema JSON and for encoded values.  Our schemas nest 5
 * deep; the limit keeps a hostile or broken input from exhausting the stack.
 */
#define AAS_CODEC_MAX_DEPTH 32

/**
 * @brief Project the reader schema onto what a writer schema can supply.
 *
 * Avro C 1.11's resolvers do not implement field defaults: a reader field
 * missing from the writer is an error ("Reader field %s doesn't appear in
 * writer").  For each record of reader_json that the writer also defines
 * (same full name), this drops the reader fields the writer lacks; each such
 * field must have a "default" in the reader schema, otherwise the writer
 * schema cannot be resolved and AAS_ERR_INVAL is returned.  The decoder then
 * resolves writer -> projection with Avro C and applies the defaults itself
 * (codec.c treats an absent field as its schema default).
 *
 * @param out malloc'ed compact JSON on success (caller frees).
 * @param dropped_out number of fields dropped (may be NULL).
 */
aas_err_t aas_codec_schema_project(const char *reader_json,
                                   const char *writer_json, char **out,
                                   int *dropped_out, char *errstr,
                                   size_t errstr_size);


/* ---- schema names (codec_pcf.c), shared with codec_project.c ------------ */

#include <jansson.h>
#include <stddef.h>

/* Full names defined so far, in definition order. */
typedef struct {
    char **v;
    size_t n;
    size_t cap;
} aas_codec_names_t;

void aas_codec_names_free(aas_codec_names_t *names);
/* Takes ownership of full (freed on failure too). */
aas_err_t aas_codec_names_add(aas_codec_names_t *names, char *full);
/* The namespace part of a full name ("" if none), malloc'ed or NULL. */
char *aas_codec_name_space(const char *full);
/* The full name of a named-type definition obj seen in namespace ns
 * (Avro's FULLNAMES rule); malloc'ed, or NULL with *err and errstr set. */
char *aas_codec_def_fullname(json_t *obj, const char *ns, char *errstr,
                             size_t errstr_size, aas_err_t *err);

/* ---- shared by the codec's files (codec.c, codec_scan.c, codec_decode.c,
 * codec_encode.c) ---------------------------------------------------------- */

#include <avro.h>
#include <stdint.h>

#include "codec.h"

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
    int direct_job;    /* known[0] is the schema codec_direct.c reads */
    int direct_result; /* known[1] is the schema codec_direct.c writes */
};

/*
 * CRC-64-AVRO fingerprints of the schemas codec_direct.c is written for.
 * aas_codec_new() turns the direct paths on only while the compiled-in
 * current schemas still have these fingerprints: after a schema change the
 * codec falls back to the generic path (slower, still correct) until
 * codec_direct.c is updated, and test_codec_fast fails to say so.
 */
#define AAS_CODEC_DIRECT_JOB_FP UINT64_C(0xec03f6ac1b14014e)
#define AAS_CODEC_DIRECT_RESULT_FP UINT64_C(0x58bd5dad4024a955)

/* Wrap an Avro C failure once: errno-style code plus avro_strerror(). */
aas_err_t aas_codec_avro_err(int rc, aas_err_t kind, const char *what, char *errstr,
                             size_t errstr_size);
/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
int aas_codec_utf8_valid(const unsigned char *s, size_t n);
void aas_codec_put_le64(unsigned char *p, uint64_t v);
uint64_t aas_codec_get_le64(const unsigned char *p);
/* A message buffer (malloc'ed, caller frees) of the header, written for
 * fingerprint fp, and size body bytes to fill; AAS_ERR_TOO_LARGE or
 * AAS_ERR_NOMEM with errstr. */
aas_err_t aas_codec_message_new(uint64_t fp, size_t size, unsigned char **out, char *errstr,
                                size_t errstr_size);
/* max_elems for aas_tensor_check such that elems * 8 cannot wrap. */
uint64_t aas_codec_elems_cap(uint64_t want);

/* The scanner's state over one message body (codec_scan.c). */
typedef struct {
    const unsigned char *start, *p, *end;
    uint64_t max_elems;
    size_t max_tensors, max_text, max_params;
    char id[AAS_ID_MAX + 1]; /* "" until an acceptable id was scanned */
    size_t n_tensors;
    aas_tensor_t t; /* the tensor being scanned: dtype, shape, nbytes only */
    char *errstr;
    size_t errstr_size;
} aas_codec_scan_t;

aas_err_t aas_codec_scan_long(aas_codec_scan_t *s, int64_t *out);
aas_err_t aas_codec_scan_len(aas_codec_scan_t *s, size_t *len);

/* A message read by Avro C after the scan (codec_scan.c). */
typedef struct {
    avro_value_t wvalue; /* the writer value Avro C read */
    avro_value_t rvalue; /* the resolved view, if the writer is not current */
    avro_value_t *top;   /* what to convert: &wvalue or &rvalue */
} aas_codec_read_t;

/** @brief Passes 1 and 2, then Avro C's read; r is released by
 *         aas_codec_read_done() whatever the result. */
aas_err_t aas_codec_read(aas_codec_t *codec, const void *buf, size_t len, int want_job,
                         aas_codec_scan_t *scan, aas_codec_read_t *r, char *errstr,
                         size_t errstr_size);
void aas_codec_read_done(aas_codec_read_t *r);

/*
 * The generic paths (Avro C values), with the public functions' contracts
 * (codec.h).  aas_codec_job_decode() and aas_codec_result_encode() use the
 * direct code of codec_direct.c for the current schemas; the generic job
 * decoder still serves older writer schemas (schemas/history/).  Both are
 * here for that dispatch and for tests/test_codec_fast.c, which checks the
 * direct code against them.
 */
aas_err_t aas_codec_job_decode_generic(aas_codec_t *codec, const void *buf, size_t len,
                                       const aas_codec_limits_t *limits, aas_job_t *job,
                                       char *job_id_out, char *errstr,
                                       size_t errstr_size);
aas_err_t aas_codec_result_encode_generic(aas_codec_t *codec, const aas_result_t *res,
                                          void **buf, size_t *len, char *errstr,
                                          size_t errstr_size);

#endif
