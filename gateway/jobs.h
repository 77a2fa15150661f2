/*
 * jobs.h - the body of POST /v1/jobs with "kind": "train" (docs/http.md):
 * a training job's model, params and priority, checked before anything is
 * published.  The training data is named by params (dataset=NAME or
 * data_topic=...), never carried in the body.  Pure: no I/O; thread-safe.
 */
#ifndef AAS_GW_JOBS_H
#define AAS_GW_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"

/* Most params of one job. */
#define AAS_GW_TRAIN_MAX_PARAMS 64
#define AAS_GW_TRAIN_MAX_VALUE 4096

typedef struct {
    char *model;
    aas_kv_t *params;     /* n_params pairs, owned; room for one more (the tenant) */
    size_t n_params;
    int32_t priority;
} aas_gw_train_t;

void aas_gw_train_clear(aas_gw_train_t *t);

/**
 * @brief Parse {"kind":"train","model":NAME,"params":{...},"priority":N}.
 *        Param values may be strings, integers, reals or booleans (sent as
 *        their decimal / "true" / "false" text); keys [A-Za-z0-9_.-]; the
 *        key "tenant" is reserved (the gateway sets it).  Unknown
 *        top-level fields are refused (a typo would train the wrong job).
 * @return AAS_ERR_INVAL with errstr on a client mistake, AAS_ERR_NOMEM.
 *         out written on success only.
 */
aas_err_t aas_gw_train_parse(const char *body, size_t len, aas_gw_train_t *out, char *errstr,
                             size_t errstr_size);

#endif
