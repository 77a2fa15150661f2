/*
 * codec.h - jobs and results to and from Avro single-object encoding.
 *
 * Wire format (docs/wire-format.md): 0xC3 0x01, the 8-byte little-endian
 * CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then
 * the Avro binary encoding of the record.  Decoding looks the fingerprint up
 * among every schema version this build knows (schemas/ and schemas/history/,
 * compiled in) and resolves it to the current reader schema; an unknown
 * fingerprint is AAS_ERR_UNKNOWN_SCHEMA.  Decoding validates ids, enum
 * ranges and tensor shapes against the limits before allocating tensor
 * storage.
 *
 * This module does not touch Kafka or Redis.
 *
 * Threading: an aas_codec_t is not thread-safe; use one per thread.
 */
#ifndef AAS_CODEC_H
#define AAS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "job.h"

#define AAS_CODEC_MAGIC0 0xC3
#define AAS_CODEC_MAGIC1 0x01
#define AAS_CODEC_HEADER_SIZE 10

typedef struct aas_codec_s aas_codec_t;

/* Limits checked while decoding a job, before any tensor is allocated. */
typedef struct {
    size_t max_message_bytes;    /* whole message; default 64 MiB */
    uint64_t max_tensor_elems;   /* per tensor; default 16 Mi */
    size_t max_tensors;          /* default 16 */
    size_t max_text_bytes;       /* text and each params value; 1 MiB */
    size_t max_params;           /* default 256 */
} aas_codec_limits_t;

/** @brief The documented defaults above. */
void aas_codec_limits_default(aas_codec_limits_t *limits);

/**
 * @brief Parse the compiled-in schemas and prepare resolvers.
 * @param out owned handle on success.
 * @return AAS_ERR_INVAL if a compiled-in schema does not parse or a history
 *         schema cannot be resolved to the current one (a build defect);
 *         AAS_ERR_NOMEM.
 */
aas_err_t aas_codec_new(aas_codec_t **out, char *errstr, size_t errstr_size);
/** @brief NULL is a no-op. */
void aas_codec_destroy(aas_codec_t *codec);

/**
 * @brief Encode a job.  *buf is malloc'ed (caller frees) on success.
 *        Rejects invalid ids with AAS_ERR_INVAL, inconsistent tensors with
 *        AAS_ERR_SHAPE.  Tensor data is not copied into an intermediate
 *        buffer; the message itself is allocated once, at its exact size.
 *        Encoding does not apply aas_codec_limits_t (decoders do).
 */
aas_err_t aas_codec_job_encode(aas_codec_t *codec, const aas_job_t *job,
                               void **buf, size_t *len, char *errstr,
                               size_t errstr_size);

/**
 * @brief Decode a job.  On success *job is filled and owned by the caller
 *        (aas_job_clear()); on failure *job is untouched, except that
 *        job_id_out (if not NULL, AAS_ID_MAX+1 bytes) receives the job id
 *        whenever one could be read and validated, so the caller can mark
 *        that job FAILED; otherwise job_id_out is set to "".
 *        (On success job_id_out holds the id as well.)
 * @param limits NULL for aas_codec_limits_default().
 * @return AAS_ERR_OK; AAS_ERR_DECODE (malformed: header, truncation, bad
 *         Avro, invalid UTF-8, trailing bytes); AAS_ERR_UNKNOWN_SCHEMA;
 *         AAS_ERR_TOO_LARGE (a limit); AAS_ERR_SHAPE (rank, dims, dtype or
 *         data length); AAS_ERR_INVAL (id, model or version breaks the id
 *         rules); AAS_ERR_NOMEM.  None is retriable: the fault is the job's.
 */
aas_err_t aas_codec_job_decode(aas_codec_t *codec, const void *buf, size_t len,
                               const aas_codec_limits_t *limits, aas_job_t *job,
                               char *job_id_out, char *errstr,
                               size_t errstr_size);

/**
 * @brief The model name of an encoded job without decoding it (a few bytes
 *        read), e.g. to pick a batching window's limits before decoding.
 * @param model_out AAS_ID_MAX+1 bytes: a valid name, or "" on failure.
 * @return 0, or -1 when it cannot tell (another writer schema, malformed);
 *         the full decode is still the judge of the message.
 */
int aas_codec_job_peek_model(const aas_codec_t *codec, const void *buf, size_t len,
                             char *model_out);

/**
 * @brief The tenant of an encoded job without decoding it: its fields are
 *        skipped, not converted (the worker's fair share reads it for
 *        every message it reads ahead, docs/sharing.md#fair-share).
 * @param tenant_out AAS_ID_MAX+1 bytes: a valid tenant, or "" when the job
 *        has none.
 * @return 0, or -1 when it cannot tell (another writer schema, which has
 *         no tenant field; malformed): tenant_out is "" then too.
 */
int aas_codec_job_peek_tenant(const aas_codec_t *codec, const void *buf, size_t len,
                              char *tenant_out);

/** @brief Encode a result.  *buf is malloc'ed (caller frees). */
aas_err_t aas_codec_result_encode(aas_codec_t *codec, const aas_result_t *res,
                                  void **buf, size_t *len, char *errstr,
                                  size_t errstr_size);

/**
 * @brief Decode a result into *res (caller clears) on success; *res is
 *        untouched on failure.  Same checks and errors as job decoding, but
 *        no size policy: results come from our own workers via Redis.
 */
aas_err_t aas_codec_result_decode(aas_codec_t *codec, const void *buf,
                                  size_t len, aas_result_t *res, char *errstr,
                                  size_t errstr_size);

/** @brief Fingerprints of the current (writer) schemas.  Thread-safe. */
uint64_t aas_codec_job_fingerprint(const aas_codec_t *codec);
uint64_t aas_codec_result_fingerprint(const aas_codec_t *codec);

/**
 * @brief Parsing Canonical Form of a JSON schema text (Avro spec), e.g. for
 *        tests and `aas-producer schema`.  *out malloc'ed on success.
 *        Thread-safe (no codec needed).
 */
aas_err_t aas_codec_canonical_form(const char *schema_json, char **out,
                                   char *errstr, size_t errstr_size);

/** @brief CRC-64-AVRO (Rabin) fingerprint of bytes, as in the Avro spec.
 *         Thread-safe. */
uint64_t aas_codec_crc64_avro(const void *data, size_t len);

#endif
