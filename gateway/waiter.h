/*
 * waiter.h - the gateway's one thread that hears of finished jobs.
 *
 * Why: a synchronous request used to wait on its own Redis connection
 * (BRPOPLPUSH on the job's done token, then a read), a blocking round trip
 * per request.  Workers now publish every terminal job's id on
 * <prefix>done (store.h), so one subscribed connection hears of all of
 * them: a request registers its job before publishing it, sleeps on its
 * ticket, and reads the result once woken.
 *
 * Pub/sub is at most once, and workers older than the gateway do not
 * publish, so the waiter does not vouch for what it has not heard: until
 * it has heard an id since it last subscribed (and while it is not
 * subscribed), aas_gw_waiter_sleep() says "not live" at once and the
 * caller waits the old way; a live sleep still ends after
 * AAS_GW_WAITER_LOOK_MS for a look, and every ticket is woken to look
 * when the subscription is lost or made again.
 *
 * Threading: every call from any thread.
 */
#ifndef AAS_GW_WAITER_H
#define AAS_GW_WAITER_H

#include "conf.h"
#include "err.h"

/* A live sleep ends after this long for a look even when nothing is heard
 * (a job of an older worker, an id lost between subscriptions). */
#define AAS_GW_WAITER_LOOK_MS 250

typedef struct aas_gw_waiter_s aas_gw_waiter_t;
typedef struct aas_gw_ticket_s aas_gw_ticket_t;

/** @brief Start the thread; it connects (redis.* keys of conf, borrowed for
 *         the waiter's life) and subscribes by itself, retrying. */
aas_err_t aas_gw_waiter_new(const aas_conf_t *conf, aas_gw_waiter_t **out, char *errstr,
                            size_t errstr_size);

/** @brief Stop the thread and free; no ticket may be outstanding.  NULL is
 *         a no-op. */
void aas_gw_waiter_destroy(aas_gw_waiter_t *w);

/** @brief Register job_id (a valid id) before publishing the job, so its
 *         announcement cannot come first.  NULL when out of memory. */
aas_gw_ticket_t *aas_gw_waiter_add(aas_gw_waiter_t *w, const char *job_id);

/**
 * @brief Sleep until the ticket's job is announced, the subscription
 *        changes, AAS_GW_WAITER_LOOK_MS pass, or timeout_ms pass, whichever
 *        is first; then look at the job (it may still not be done).
 * @return 0 when the waiter is not live (not subscribed, or nothing heard
 *         since it subscribed): it returned at once, wait the old way.
 *         1 otherwise.
 */
int aas_gw_waiter_sleep(aas_gw_waiter_t *w, aas_gw_ticket_t *t, int timeout_ms);

/** @brief Unregister and free the ticket.  NULL is a no-op. */
void aas_gw_waiter_remove(aas_gw_waiter_t *w, aas_gw_ticket_t *t);

#endif
