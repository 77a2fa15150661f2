/*
 * actuator.h - how the scheduler changes the fleet's size.
 *
 * One ops table, several implementations (the caller never switches on the
 * kind): "local" spawns and stops aas-worker processes on this host
 * (SIGTERM for a graceful leave, crashed ones restarted); "command" runs a
 * configured shell command with the desired count (docker compose --scale,
 * kubectl scale ...), in its own process group, killed after
 * scheduler.command.timeout.ms, and runs it again when the live workers
 * stay apart from that count (reconcile); "none" only remembers the count
 * (an orchestrator reads it from GET /keda and acts: Kubernetes with KEDA).  Either may be asked to restart one worker (skew.h):
 * the local one does (SIGTERM, and a fresh process in its place), the
 * command hook cannot address one worker and says so.  Either may be asked
 * to add partitions to a topic (the policy's second action, grow.h: the
 * Admin API, the same for both kinds), when scheduler.grow.partitions is
 * set.
 *
 * The actuators only act: what to do comes from the policy and the skew
 * detector (policy.h, skew.h), what is measured from observe.h.
 *
 * Threading: one thread.
 */
#ifndef AAS_ACTUATOR_H
#define AAS_ACTUATOR_H

#include <stddef.h>

#include "conf.h"
#include "err.h"
#include "grow.h"
#include "scheduler.h"

typedef struct aas_actuator aas_actuator_t;

typedef struct {
    const char *name;
    /** Bring the fleet towards `desired` workers. */
    aas_err_t (*apply)(aas_actuator_t *a, int desired, char *errstr,
                       size_t errstr_size);
    /** Workers this actuator runs now, or -1 if it cannot tell. */
    int (*current)(aas_actuator_t *a);
    /** Replace the worker whose worker.id is `id` by a fresh one (the old
     *  leaves gracefully).  AAS_ERR_NOT_FOUND: not one of this actuator's
     *  workers; AAS_ERR_INVAL: this actuator cannot address one worker. */
    aas_err_t (*restart)(aas_actuator_t *a, const char *id, char *errstr,
                         size_t errstr_size);
    /** Give `topic` `partitions` partitions (more than it has now).
     *  AAS_ERR_INVAL: partitions cannot be added here (growth is off, or
     *  the broker refuses or cannot: the dev broker); AAS_ERR_KAFKA,
     *  AAS_ERR_TIMEOUT: try again on a later tick. */
    aas_err_t (*grow)(aas_actuator_t *a, const char *topic, int partitions,
                      char *errstr, size_t errstr_size);
    /** Each tick: `live` workers of the group have a heartbeat now (-1
     *  unknown; workers of other groups are not counted), at
     *  monotonic time now_s.  The command actuator asks again for the
     *  count it last asked for when they have differed for
     *  scheduler.command.reconcile.ms; the local one restarts its own. */
    void (*reconcile)(aas_actuator_t *a, int live, double now_s);
    void (*destroy)(aas_actuator_t *a);
} aas_actuator_ops_t;

struct aas_actuator {
    const aas_actuator_ops_t *ops;
    const aas_scheduler_conf_t *c; /* borrowed: the settings, parsed once */
    aas_grow_t *grow;              /* partition growth's admin client; NULL
                                    * unless scheduler.grow.partitions */
};

/**
 * @brief The actuator named by c->actuator ("local" or "command"), with
 *        partition growth when c->grow_partitions (an admin client from
 *        conf's kafka.* settings, made here).  c is borrowed for the
 *        actuator's lifetime (and the strings in it, which borrow from
 *        conf); conf is read here only.
 */
aas_err_t aas_actuator_new(const aas_conf_t *conf, const aas_scheduler_conf_t *c,
                           aas_actuator_t **out, char *errstr, size_t errstr_size);

/** @brief Stop what it started (local: SIGTERM, bounded wait); NULL is a
 *         no-op. */
void aas_actuator_destroy(aas_actuator_t *a);

#endif
