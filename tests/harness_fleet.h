/*
 * harness_fleet.h - a whole aas fleet for one integration test: a private
 * redis-server, a broker (dev broker or real Kafka, see harness_proc.h),
 * (topics with $AAS_TEST_PARTITIONS partitions, default 4),
 * N aas-worker processes, a client, and a registered 64-128-128-10 MLP
 * ("fleet-mlp") with a local copy to compute expected outputs.
 *
 * Functions return 0 on success and print what went wrong to stderr; the
 * tests assert on them.  Not thread-safe.
 */
#ifndef AAS_HARNESS_FLEET_H
#define AAS_HARNESS_FLEET_H

#include "client.h"
#include "conf.h"
#include "harness_proc.h"
#include "harness_redis.h"
#include "model.h"

#define AAS_FLEET_MODEL "fleet-mlp"
#define AAS_FLEET_IN 64
#define AAS_FLEET_OUT 10
#define AAS_FLEET_MAX_WORKERS 8

typedef struct {
    char dir[256];
    aas_test_redis_t redis;
    aas_test_broker_t broker;
    int n_workers;
    aas_test_proc_t workers[AAS_FLEET_MAX_WORKERS];
    char logs[AAS_FLEET_MAX_WORKERS][512];
    char redis_arg[64], brokers_arg[320];
    const char *const *worker_args;   /* extra "-X k=v" pairs, borrowed */
    char worker_password[64];         /* given to workers in AAS_REDIS_PASSWORD */
    aas_conf_t *conf;
    aas_client_t *client;
    aas_model_t *model;
} aas_fleet_t;

/**
 * @brief Start everything.  worker_args: NULL or a NULL-terminated list of
 *        extra worker arguments (static storage).
 */
int aas_fleet_start(aas_fleet_t **out, int n_workers,
                    const char *const *worker_args);
/**
 * @brief As aas_fleet_start, with a Redis that requires `password`; the
 *        client and workers get it through the environment, never argv.
 */
int aas_fleet_start_auth(aas_fleet_t **out, int n_workers,
                         const char *const *worker_args, const char *password);
/** @brief (Re)start worker i (its log is appended to), passing
 *         f->worker_password in its environment. */
int aas_fleet_start_worker(aas_fleet_t *f, int i);
/** @brief Stop workers (SIGTERM), broker, Redis; free.  Returns 0 if every
 *         worker exited 0. */
int aas_fleet_stop(aas_fleet_t *f);

/** @brief Deterministic uniform [-1, 1) numbers for inputs. */
float aas_fleet_frand(void);

/** @brief Publish an inference job of rows x cols floats. */
int aas_fleet_submit(aas_fleet_t *f, const char *id, const char *model,
                     const float *x, int64_t rows, int64_t cols);
/** @brief The same, for tenant (NULL: none). */
int aas_fleet_submit_as(aas_fleet_t *f, const char *id, const char *model, const char *tenant,
                        const float *x, int64_t rows, int64_t cols);

/**
 * @brief Wait (timeout_ms) for job id and check it SUCCEEDED exactly once
 *        (result_writes == 1) with outputs equal to the local forward pass
 *        of x (rows x AAS_FLEET_IN).
 */
int aas_fleet_check(aas_fleet_t *f, const char *id, const float *x,
                    int64_t rows, int timeout_ms);

/** @brief 1 if any worker's log contains needle. */
int aas_fleet_log_contains(aas_fleet_t *f, const char *needle);

#endif
