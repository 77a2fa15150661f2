/* jobauth.c - the worker's check of signed jobs; see jobauth.h. */
#include "jobauth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apikey.h"
#include "log.h"

/* A job naming an unknown key reloads the keys at most this often: a
 * stream of forged ids must not become a stream of HGETALLs. */
#define AAS_JOBAUTH_MISS_RELOAD_US 250000
/* How far the client's clock may be from the worker's, for the rule that
 * an unknown key is looked for in keys loaded after the job was sent. */
#define AAS_JOBAUTH_SKEW_MS 1000

struct aas_jobauth_s {
    aas_store_t *store;
    int64_t refresh_us;
    aas_apikey_table_t *table;   /* NULL until the first load */
    int64_t loaded_us, tried_us; /* monotonic: last load, last attempt */
    int64_t loaded_ms;           /* wall clock: when the last load began */
    int failing;
};

aas_err_t aas_jobauth_new(aas_store_t *st, int refresh_s, aas_jobauth_t **out,
                          char *errstr, size_t errstr_size) {
    aas_jobauth_t *a = calloc(1, sizeof(*a));
    if (!a) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    a->store = st;
    a->refresh_us = (int64_t)(refresh_s > 0 ? refresh_s : 1) * 1000000;
    *out = a;
    return AAS_ERR_OK;
}

void aas_jobauth_destroy(aas_jobauth_t *a) {
    if (!a) return;
    aas_apikey_table_destroy(a->table);
    free(a);
}

size_t aas_jobauth_keys(const aas_jobauth_t *a) {
    return a->table ? aas_apikey_table_size(a->table) : 0;
}

/* Load the keys; the last table stays when Redis cannot give a new one. */
static void aas_jobauth_reload(aas_jobauth_t *a) {
    char why[512];
    aas_apikey_table_t *t = NULL;
    a->tried_us = aas_mono_us();
    int64_t began_ms = aas_now_ms();
    aas_err_t err = aas_store_apikey_table(a->store, &t, why, sizeof(why));
    if (err) {
        /* One line when it starts failing, one when it recovers. */
        if (!a->failing)
            AAS_LOG(AAS_LOG_WARN, "auth", "api keys not %s: %s", a->table ? "reloaded (the "
                    "last ones stay)" : "loaded (signed jobs wait)", why);
        a->failing = 1;
        return;
    }
    if (a->failing || !a->table || aas_apikey_table_size(a->table) != aas_apikey_table_size(t))
        AAS_LOG(AAS_LOG_INFO, "auth", "api keys loaded keys=%zu", aas_apikey_table_size(t));
    a->failing = 0;
    aas_apikey_table_destroy(a->table);
    a->table = t;
    a->loaded_us = a->tried_us;
    a->loaded_ms = began_ms;
}

/* Could the key of a job sent at its timestamp be missing from the keys
 * loaded?  Only if they were loaded before it was sent (give or take the
 * clocks' skew); a timestamp in the future is not believed. */
static int aas_jobauth_stale_for(const aas_jobauth_t *a, const rd_kafka_message_t *m) {
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt), now = aas_now_ms();
    return ts > 0 && ts <= now + AAS_JOBAUTH_SKEW_MS && a->loaded_ms <= ts + AAS_JOBAUTH_SKEW_MS;
}

aas_jobauth_result_t aas_jobauth_check(aas_jobauth_t *a, const rd_kafka_message_t *m,
                                       const char *tenant, unsigned scope,
                                       char key_id[AAS_JOBSIG_ID_HEX + 1], char *why,
                                       size_t why_size) {
    int64_t now = aas_mono_us();
    key_id[0] = '\0';
    /* A failing Redis is tried again once a second, not once a job. */
    if (now - (a->failing ? a->tried_us : a->loaded_us) >=
        (a->failing ? AAS_JOBAUTH_MISS_RELOAD_US : a->refresh_us))
        aas_jobauth_reload(a);
    if (!a->table) {
        snprintf(why, why_size, "the API keys are not loaded yet (Redis unreachable?)");
        return AAS_JOBAUTH_UNAVAILABLE;
    }
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t size = 0;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, AAS_JOBSIG_HEADER, &val, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        !val) {
        snprintf(why, why_size, "unsigned job: no %s header (the client needs client.key; "
                 "worker.auth = keys)", AAS_JOBSIG_HEADER);
        return AAS_JOBAUTH_UNSIGNED;
    }
    unsigned char mac[32], hash[32];
    if (aas_jobsig_parse(val, size, key_id, mac)) {
        snprintf(why, why_size, "malformed %s header (want v1:<key id>:<signature>)",
                 AAS_JOBSIG_HEADER);
        return AAS_JOBAUTH_MALFORMED;
    }
    unsigned have = 0;
    const char *owner = aas_apikey_table_find_id(a->table, key_id, hash, &have);
    if (!owner && aas_jobauth_stale_for(a, m)) {
        /* A key added just before the job was sent: look again (at most
         * every 250 ms), and until keys loaded after the job's sending
         * say no, the job waits (it comes again) rather than fail. */
        if (now - a->tried_us >= AAS_JOBAUTH_MISS_RELOAD_US) {
            aas_jobauth_reload(a);
            owner = aas_apikey_table_find_id(a->table, key_id, hash, &have);
        }
        if (!owner && aas_jobauth_stale_for(a, m)) {
            snprintf(why, why_size, "key %s not among the keys loaded yet", key_id);
            return AAS_JOBAUTH_UNAVAILABLE;
        }
    }
    if (!owner) {
        snprintf(why, why_size, "signed by an unknown or revoked key (id %s)", key_id);
        return AAS_JOBAUTH_UNKNOWN_KEY;
    }
    if (!aas_jobsig_verify(hash, m->payload, m->len, mac)) {
        snprintf(why, why_size, "bad signature: the message is not what key %s signed",
                 key_id);
        return AAS_JOBAUTH_BAD_SIGNATURE;
    }
    const char *t = tenant && tenant[0] ? tenant : "default";
    if (strcmp(owner, t)) {
        snprintf(why, why_size, "key %s belongs to tenant %.128s, the job claims tenant %.128s",
                 key_id, owner, t);
        return AAS_JOBAUTH_WRONG_TENANT;
    }
    if (!(have & scope)) {
        snprintf(why, why_size, "key %s (tenant %.128s) may not %s", key_id, owner,
                 scope == AAS_APIKEY_SCOPE_TRAIN ? "train (scope train)"
                                                 : "infer (scope infer)");
        return AAS_JOBAUTH_SCOPE;
    }
    return AAS_JOBAUTH_OK;
}

const char *aas_jobauth_result_name(aas_jobauth_result_t r) {
    switch (r) {
    case AAS_JOBAUTH_OK: return "ok";
    case AAS_JOBAUTH_UNSIGNED: return "unsigned";
    case AAS_JOBAUTH_MALFORMED: return "malformed";
    case AAS_JOBAUTH_UNKNOWN_KEY: return "unknown_key";
    case AAS_JOBAUTH_BAD_SIGNATURE: return "bad_signature";
    case AAS_JOBAUTH_WRONG_TENANT: return "wrong_tenant";
    case AAS_JOBAUTH_SCOPE: return "scope";
    case AAS_JOBAUTH_UNAVAILABLE: return "unavailable";
    }
    return "unknown";
}
