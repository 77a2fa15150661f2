/*
 * fair.h - fair share of one lane between tenants: the jobs a worker has
 * read ahead, queued per tenant and handed out by deficit round robin on
 * measured compute time (docs/sharing.md#fair-share).
 *
 * Each visit of a tenant in the round adds quantum_us x its weight to its
 * deficit; while the deficit is positive the tenant's oldest job is handed
 * out and its deficit charged the tenant's estimated compute per job (a
 * moving average of what was measured).  Once the job's pass has run,
 * aas_fair_charge() corrects the charge with the measured compute, so a
 * tenant whose jobs are costlier than estimated pays the difference in
 * its next rounds.  A tenant whose queue empties leaves the round keeping
 * only its debt (never a credit), so idling earns nothing.
 *
 * Items are opaque (the consumer's Kafka messages): the module never looks
 * inside them.  Tenant "" counts as "default".  At most
 * AAS_FAIR_TENANTS_MAX distinct tenants are told apart; later ones share
 * one queue named "(other)".
 *
 * Memory: one small node per queued item, reused (allocated once, freed
 * at destroy).  Ownership: a pushed item is the module's until popped or
 * dropped (then free_item is called on it); aas_fair_destroy() frees the
 * items still queued with free_item.
 *
 * Threading: one thread (the worker's loop).
 */
#ifndef AAS_FAIR_H
#define AAS_FAIR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AAS_FAIR_TENANTS_MAX 1024
#define AAS_FAIR_WEIGHT_MAX 1000.0

typedef struct aas_fair_s aas_fair_t;

typedef struct {
    size_t max_items;      /* read-ahead: most items queued (>= 1) */
    size_t max_bytes;      /* and most bytes queued (>= 1) */
    int64_t quantum_us;    /* compute a weight-1 tenant is given per visit */
    const char *weights;   /* "tenant:weight,..." (weight in (0, 1000]); NULL or
                            * "": every tenant weighs 1 */
    void (*free_item)(void *item);  /* frees a dropped or left-over item */
} aas_fair_conf_t;

/** @brief A fair queue; AAS_ERR_INVAL naming the fault for bad weights. */
aas_err_t aas_fair_new(const aas_fair_conf_t *conf, aas_fair_t **out, char *errstr,
                       size_t errstr_size);

/** @brief Frees the items still queued (free_item), then the queue.  NULL is
 *         a no-op. */
void aas_fair_destroy(aas_fair_t *f);

/** @brief 1 when another item would pass max_items or max_bytes. */
int aas_fair_full(const aas_fair_t *f);

/** @brief Items queued. */
size_t aas_fair_count(const aas_fair_t *f);

/** @brief Queue item (bytes long) behind tenant's others.  AAS_ERR_NOMEM
 *         leaves it the caller's. */
aas_err_t aas_fair_push(aas_fair_t *f, const char *tenant, void *item, size_t bytes);

/** What aas_fair_pop() handed out, for aas_fair_charge(). */
typedef struct {
    int tenant;          /* the tenant's slot */
    int64_t charged_us;  /* the estimate its deficit was charged */
} aas_fair_ticket_t;

/** @brief The next item by deficit round robin, or NULL when none is
 *         queued.  The caller owns it. */
void *aas_fair_pop(aas_fair_t *f, aas_fair_ticket_t *ticket);

/** @brief The job of ticket was measured at measured_us of compute:
 *         correct its tenant's deficit and estimate. */
void aas_fair_charge(aas_fair_t *f, const aas_fair_ticket_t *ticket, int64_t measured_us);

/** @brief Drop (free_item) every queued item for which match(item, ctx)
 *         is nonzero; returns how many. */
size_t aas_fair_drop(aas_fair_t *f, int (*match)(const void *item, void *ctx), void *ctx);

/** @brief A slot's tenant name ("default", "(other)", ...); "" for a bad
 *         slot.  Borrowed, valid until destroy. */
const char *aas_fair_tenant(const aas_fair_t *f, int slot);

/** @brief A tenant's deficit now, microseconds (0 for an unknown tenant). */
int64_t aas_fair_deficit(const aas_fair_t *f, const char *tenant);

#endif
