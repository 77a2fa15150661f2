/*
 * jobsig.h - signed jobs (docs/sharing.md#access): what binds a job's
 * tenant to the API key of whoever published it, whatever path the
 * message took to the worker.
 *
 * Kafka does not tell a consumer which user produced a record, and job
 * topics are shared by all tenants, so the binding travels in the record:
 * the header "aas.auth" = "v1:<key id>:<mac>", where mac is
 * HMAC-SHA256 over the message value (the whole Avro job: id, tenant,
 * model, inputs) keyed by the SHA-256 of the API key, and the key id is
 * the first 8 bytes of SHA-256("aas.key-id" || that hash), in hex.  The
 * hash is what `<prefix>apikeys` in Redis holds (apikey.h), so a worker
 * can check a signature without ever holding a key, and a header gives
 * away nothing of the secret.  A client holds the key itself
 * (client.key), the gateway the hashes of its callers' keys.
 *
 * What it does not do: look keys up (apikey.h's table), decide what a
 * failed check means (worker/outcome.c), I/O.
 *
 * Thread-safety: every function is; a key is plain data.
 */
#ifndef AAS_JOBSIG_H
#define AAS_JOBSIG_H

#include <stddef.h>

#include "err.h"

#define AAS_JOBSIG_HEADER "aas.auth"     /* the Kafka record header */
#define AAS_JOBSIG_ID_HEX 16              /* a key id: 8 bytes in hex */
#define AAS_JOBSIG_MAC_HEX 64
/* "v1:" id ":" mac */
#define AAS_JOBSIG_VALUE_LEN (3 + AAS_JOBSIG_ID_HEX + 1 + AAS_JOBSIG_MAC_HEX)

/* A signing key: the secret (SHA-256 of the API key) and its public id. */
typedef struct {
    unsigned char secret[32];
    char id[AAS_JOBSIG_ID_HEX + 1];
} aas_jobsig_key_t;

/** @brief The id of the key whose SHA-256 is hash, into id (17 bytes). */
void aas_jobsig_key_id(const unsigned char hash[32], char id[AAS_JOBSIG_ID_HEX + 1]);

/** @brief The signing key of an API key (its SHA-256 and id). */
aas_err_t aas_jobsig_key_from_apikey(const char *apikey, size_t len, aas_jobsig_key_t *out);

/** @brief The signing key of an API key known by its hash. */
void aas_jobsig_key_from_hash(const unsigned char hash[32], aas_jobsig_key_t *out);

/**
 * @brief The header value for message value[0..len) into
 *        out[AAS_JOBSIG_VALUE_LEN + 1] (NUL-terminated).
 */
aas_err_t aas_jobsig_sign(const aas_jobsig_key_t *k, const void *value, size_t len,
                          char out[AAS_JOBSIG_VALUE_LEN + 1]);

/**
 * @brief Split a header value hdr[0..len) into its key id (NUL-terminated)
 *        and mac.  AAS_ERR_INVAL if it is not "v1:<16 hex>:<64 hex>".
 */
aas_err_t aas_jobsig_parse(const void *hdr, size_t len, char id[AAS_JOBSIG_ID_HEX + 1],
                           unsigned char mac[32]);

/**
 * @brief 1 if mac is the signature of value[0..len) under the key whose
 *        SHA-256 is secret (compared in constant time), else 0.
 */
int aas_jobsig_verify(const unsigned char secret[32], const void *value, size_t len,
                      const unsigned char mac[32]);

#endif
