/*
 * apikey.h - API keys (docs/http.md#access): making a key, hashing it, its
 * scopes, and a table key hash (or signing id, jobsig.h) -> tenant + scopes.
 *
 * A key is "aas_" + 43 base64url characters (32 random bytes).  Only its
 * SHA-256 is stored (Redis, or a keys file may hold either form), so a
 * leaked registry does not leak working keys.  What this module does not
 * do: I/O (the store reads Redis, the gateway reads files), HTTP.
 *
 * Thread-safety: the functions are; a table is immutable once built, so
 * readers share it without locks (the gateway swaps whole tables).
 */
#ifndef AAS_APIKEY_H
#define AAS_APIKEY_H

#include <stddef.h>

#include "err.h"

#define AAS_APIKEY_LEN 47            /* "aas_" + 43 */
#define AAS_APIKEY_HASH_HEX 64       /* SHA-256, lowercase hex */
#define AAS_APIKEY_ID_LEN 12         /* the hash's first hex digits: names a key in lists */
#define AAS_APIKEY_MIN_LEN 16        /* shortest key a keys file may hold */
#define AAS_APIKEY_MAX_LEN 256

/* Scopes: what a key may do. */
#define AAS_APIKEY_SCOPE_INFER 1u    /* inference, model metadata, its jobs */
#define AAS_APIKEY_SCOPE_TRAIN 2u    /* training jobs */
#define AAS_APIKEY_SCOPE_ALL 3u

/** @brief A new random key (getrandom) into buf (>= AAS_APIKEY_LEN + 1). */
aas_err_t aas_apikey_generate(char *buf, size_t size);

/** @brief SHA-256 of key[0..len) as lowercase hex into hex[65]. */
aas_err_t aas_apikey_hash(const char *key, size_t len, char hex[AAS_APIKEY_HASH_HEX + 1]);

/** @brief 1 if s is 64 lowercase hex digits. */
int aas_apikey_hash_valid(const char *s);

/**
 * @brief "infer", "train", "infer,train" or "all" -> AAS_APIKEY_SCOPE_*.
 *        AAS_ERR_INVAL (errstr) for an empty list or an unknown word.
 */
aas_err_t aas_apikey_scopes_parse(const char *s, unsigned *out, char *errstr,
                                  size_t errstr_size);
/** @brief Scopes as "infer,train" (buf >= 16 bytes). */
const char *aas_apikey_scopes_str(unsigned scopes, char *buf, size_t size);

/* ------------------------------------------------------------ tables */

typedef struct aas_apikey_table_s aas_apikey_table_t;

/** @brief New empty table (owned; free with aas_apikey_table_destroy). */
aas_err_t aas_apikey_table_new(aas_apikey_table_t **out);
void aas_apikey_table_destroy(aas_apikey_table_t *t);

/**
 * @brief Add a key by its hash (64 hex) for tenant (aas_id_valid) with
 *        scopes.  AAS_ERR_INVAL for a bad hash, tenant or scopes;
 *        AAS_ERR_CONFLICT when the hash is in the table already.
 */
aas_err_t aas_apikey_table_add(aas_apikey_table_t *t, const char *hash_hex,
                               const char *tenant, unsigned scopes, char *errstr,
                               size_t errstr_size);

/**
 * @brief Parse one keys-file or Redis record and add it: "TENANT KEY
 *        [SCOPES]" where KEY is the key itself or "sha256:<64 hex>", SCOPES
 *        defaults to "infer".  (The Redis form is field = hash, value =
 *        "TENANT SCOPES": use aas_apikey_table_add.)
 */
aas_err_t aas_apikey_table_add_line(aas_apikey_table_t *t, const char *line,
                                    char *errstr, size_t errstr_size);

/** @brief Keys in the table. */
size_t aas_apikey_table_size(const aas_apikey_table_t *t);

/**
 * @brief Look a presented key up (constant time in the key's content).
 * @return the tenant (borrowed: valid while the table lives) and *scopes,
 *         or NULL when the key is unknown.
 */
const char *aas_apikey_table_find(const aas_apikey_table_t *t, const char *key, size_t len,
                                  unsigned *scopes);

/**
 * @brief Look a key up by its signing id (jobsig.h: 16 hex digits), as a
 *        worker checking a signed job does.
 * @return the tenant (borrowed, as above), its hash into hash and
 *         *scopes, or NULL when no key has that id.
 */
const char *aas_apikey_table_find_id(const aas_apikey_table_t *t, const char *id,
                                     unsigned char hash[32], unsigned *scopes);

#endif
