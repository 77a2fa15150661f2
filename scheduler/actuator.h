/*
 * actuator.h - how the scheduler changes the fleet's size.
 *
 * One ops table, several implementations (the caller never switches on the
 * kind): "local" spawns and stops aas-worker processes on this host
 * (SIGTERM for a graceful leave, crashed ones restarted); "command" runs a
 * configured shell command with the desired count (docker compose --scale,
 * kubectl scale ...).  Either may be asked to restart one worker (skew.h):
 * the local one does (SIGTERM, and a fresh process in its place), the
 * command hook cannot address one worker and says so.
 *
 * Threading: one thread.
 */
#ifndef AAS_ACTUATOR_H
#define AAS_ACTUATOR_H

#include <stddef.h>

#include "conf.h"
#include "err.h"

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
    void (*destroy)(aas_actuator_t *a);
} aas_actuator_ops_t;

struct aas_actuator {
    const aas_actuator_ops_t *ops;
};

/**
 * @brief The actuator named by scheduler.actuator ("local" or "command");
 *        it reads scheduler.worker.* / scheduler.command (scheduler.c's
 *        table).  conf is borrowed for the actuator's lifetime.
 */
aas_err_t aas_actuator_new(const aas_conf_t *conf, aas_actuator_t **out,
                           char *errstr, size_t errstr_size);

/** @brief Stop what it started (local: SIGTERM, bounded wait). */
void aas_actuator_destroy(aas_actuator_t *a);

#endif
