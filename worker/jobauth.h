/*
 * jobauth.h - the worker's check of signed jobs (worker.auth = keys,
 * docs/sharing.md#access): a job runs only if its aas.auth header
 * (common/jobsig.h) is a valid signature of its message by a registered
 * API key whose tenant is the job's tenant and whose scopes allow the
 * job's kind.
 *
 * The keys are the hashes in <prefix>apikeys (aas-producer apikey add),
 * loaded into memory and reloaded every worker.auth.refresh.s.  A job
 * naming a key not loaded is only refused by keys loaded after it was
 * sent (its Kafka timestamp, with a second's slack for clocks): until
 * then it waits (AAS_JOBAUTH_UNAVAILABLE) while the keys are reloaded at
 * most every 250 ms.  So a new key works at its first job, an unknown one
 * is refused within about two seconds, and a revoked one stops within
 * the period.
 *
 * What it does not do: decide what becomes of a job that fails the check
 * (outcome.c dead-letters it), hold API keys (only their hashes).
 *
 * Threading: one thread at a time (the worker's loop); it uses the
 * caller's store connection.
 */
#ifndef AAS_JOBAUTH_H
#define AAS_JOBAUTH_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "err.h"
#include "jobsig.h"
#include "store.h"

typedef enum {
    AAS_JOBAUTH_OK = 0,
    AAS_JOBAUTH_UNSIGNED,       /* no aas.auth header */
    AAS_JOBAUTH_MALFORMED,      /* a header that is not "v1:<id>:<mac>" */
    AAS_JOBAUTH_UNKNOWN_KEY,    /* no registered key has that id (or it was revoked) */
    AAS_JOBAUTH_BAD_SIGNATURE,  /* the message is not what the key signed */
    AAS_JOBAUTH_WRONG_TENANT,   /* the key is another tenant's */
    AAS_JOBAUTH_SCOPE,          /* the key may not run this kind of job */
    AAS_JOBAUTH_UNAVAILABLE     /* keys not loaded yet (Redis away), or older than
                                   the job: try the job again */
} aas_jobauth_result_t;

typedef struct aas_jobauth_s aas_jobauth_t;

/**
 * @brief A checker reading keys through st (borrowed; must outlive it).
 *        The keys are loaded at the first check, so a Redis away at start
 *        only delays the first jobs.
 */
aas_err_t aas_jobauth_new(aas_store_t *st, int refresh_s, aas_jobauth_t **out,
                          char *errstr, size_t errstr_size);
void aas_jobauth_destroy(aas_jobauth_t *a);

/**
 * @brief Check message m, whose job claims tenant (NULL or "": "default")
 *        and needs scope (AAS_APIKEY_SCOPE_INFER or _TRAIN).
 * @param key_id the key id the header names ("" when none), for the log.
 * @param why a reason for the dead-letter record and the log (never a
 *        secret).
 */
aas_jobauth_result_t aas_jobauth_check(aas_jobauth_t *a, const rd_kafka_message_t *m,
                                       const char *tenant, unsigned scope,
                                       char key_id[AAS_JOBSIG_ID_HEX + 1], char *why,
                                       size_t why_size);

/** @brief A short name of a result, for metric labels ("bad_signature"). */
const char *aas_jobauth_result_name(aas_jobauth_result_t r);

/** @brief Keys loaded now. */
size_t aas_jobauth_keys(const aas_jobauth_t *a);

#endif
