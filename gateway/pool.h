/*
 * pool.h - the gateway's aas clients, one per request in flight, and the
 * one Kafka producer whose thread publishes every job (publish.h).
 *
 * An aas_client_t is single-threaded and a wait blocks its Redis
 * connection, so each HTTP thread borrows a client for the length of one
 * request, to wait for results and read statuses.  Clients are created
 * lazily, at most `max` of them, and kept for reuse; a client whose call
 * failed with a transport error is still reused (the store reconnects by
 * itself).  Jobs are not published by them but by the pool's publishing
 * thread (aas_gw_pool_publish), made with the first client: concurrent
 * requests' jobs then share their Redis round trips and reach the broker
 * together, instead of one produce request per job (the broker's cost is
 * per request: docs/performance.md, "HTTP gateway").  Thread-safe.
 */
#ifndef AAS_GW_POOL_H
#define AAS_GW_POOL_H

#include <stddef.h>

#include "client.h"
#include "publish.h"

typedef struct aas_gw_pool_s aas_gw_pool_t;

/** @brief New empty pool; conf borrowed for the pool's lifetime, opts
 *         copied (for the publishing thread: publish.h). */
aas_err_t aas_gw_pool_new(const aas_conf_t *conf, const aas_gw_pub_opts_t *opts, size_t max,
                          aas_gw_pool_t **out);
/** @brief Destroy every client (none may be borrowed), then the producer.
 *         NULL is a no-op. */
void aas_gw_pool_destroy(aas_gw_pool_t *p);

/**
 * @brief Borrow a client: an idle one, else a new one (aas_client_new:
 *        AAS_ERR_REDIS etc. with errstr when Redis or Kafka cannot be set
 *        up), else wait for one to come back.
 */
aas_err_t aas_gw_pool_get(aas_gw_pool_t *p, aas_client_t **out, char *errstr,
                          size_t errstr_size);
/** @brief Give a borrowed client back. */
void aas_gw_pool_put(aas_gw_pool_t *p, aas_client_t *c);

/**
 * @brief Publish job through the publishing thread (made now if it is not
 *        yet: AAS_ERR_REDIS etc. if it cannot be) and wait up to wait_ms
 *        for the broker's acknowledgement: aas_gw_pub_publish() (sync: a
 *        caller that waits for the result, out->batch; key: signs it).
 */
aas_err_t aas_gw_pool_publish(aas_gw_pool_t *p, const aas_job_t *job,
                              const aas_jobsig_key_t *key, int sync, int wait_ms,
                              aas_gw_pub_outcome_t *out);

#endif
