/*
 * train_dp.h - data-parallel training, the parts that need no network:
 * the state a round exchanges, one shard's round, the average, and the
 * whole scheme run in one process (docs/training.md#data-parallel-training).
 *
 * The scheme is local SGD with periodic averaging (Stich 2019): the
 * training rows (the same seeded split as aas_train_fit) are dealt to N
 * shards (row i of the shuffled training part to shard i mod N).  Each
 * round, every shard starts from the same global state, runs one pass over
 * its own rows (its mini-batches shuffled by seed, round and shard) and
 * hands back its state; the next global state is the element-wise mean of
 * the N states: parameters and the optimiser's moments alike, the step
 * count the largest.  One round is one epoch of the data, so N shards do
 * the work of an epoch in 1/N of the steps each; to make up for the
 * fewer steps, each shard steps with N x the job's learning rate (the
 * linear scaling rule; on digits it keeps N = 4 within 0.5 points of one
 * worker where the unscaled rate lost 1.6: bench/bench_dp.c).
 *
 * A round is a pure function of (global state, shard rows, round, shard):
 * any worker recomputing a lost shard's round gets the same bytes, which
 * is what lets a distributed run redo a round after a failure and still
 * give the one-process result.
 *
 * Engines: the same rounds for any model whose state is a few float
 * arrays of one length.  aas_train_dp_dense_new() makes one for the dense
 * MLP above; train_text.h's aas_text_dp_new() one for a text classifier
 * (or numeric rows read from a stream).  The distributed job (worker/
 * trainer_dp.c) and aas_train_dp_run_all() drive either through
 * aas_train_dp_engine_*().
 *
 * Threading: as train.h (a net, an engine, is used by one thread at a
 * time).
 */
#ifndef AAS_TRAIN_DP_H
#define AAS_TRAIN_DP_H

#include <stddef.h>
#include <stdint.h>

#include "train.h"

/** Most shards of one job. */
#define AAS_TRAIN_DP_MAX_SHARDS 64

/** @brief Make net a shard's net of an n_shards job: its learning rate
 *         times n_shards (call once, after aas_train_net_new). */
void aas_train_dp_shard_net(aas_train_net_t *net, int n_shards);

/** @brief Bytes of a net's round state (header, parameters, moments). */
size_t aas_train_dp_state_bytes(const aas_train_net_t *net);

/** @brief Copy the net's state into buf (size >= aas_train_dp_state_bytes). */
aas_err_t aas_train_dp_state_get(const aas_train_net_t *net, void *buf, size_t size,
                                 char *errstr, size_t errstr_size);

/** @brief Set the net's state from buf; AAS_ERR_DECODE if buf is not a
 *         state of this net's shape (size, magic, optimiser). */
aas_err_t aas_train_dp_state_set(aas_train_net_t *net, const void *buf, size_t size,
                                 char *errstr, size_t errstr_size);

/** @brief out = element-wise mean of n states of size bytes (all of one
 *         net's shape; checked).  out may be states[0]. */
aas_err_t aas_train_dp_average(const void *const *states, size_t n, size_t size, void *out,
                               char *errstr, size_t errstr_size);

/**
 * @brief The rows of shard `shard` of n_shards: the split of aas_train_fit
 *        (seeded shuffle, the tail validates), then every n_shards-th
 *        training row from `shard`.
 * @param rows owned array (free()) of *n_rows row indices; *val_rows
 *        (owned, may be NULL to skip) the n_val validation indices.
 */
aas_err_t aas_train_dp_shard_rows(const aas_train_params_t *p, int64_t n, int shard,
                                  int n_shards, int64_t **rows, int64_t *n_rows,
                                  int64_t **val_rows, int64_t *n_val, char *errstr,
                                  size_t errstr_size);

/**
 * @brief One shard's round: a pass over its rows[0..n_rows) (in the order
 *        of a shuffle of them seeded by the net's seed, round and shard)
 *        in mini-batches of batch_size, one optimiser step each.
 * @param loss_sum the sum of batch loss x rows (for the round's mean).
 * @return AAS_ERR_NONFINITE when the loss diverges.
 */
aas_err_t aas_train_dp_round(aas_train_net_t *net, const float *x, const int32_t *y,
                             const int64_t *rows, int64_t n_rows, int32_t round, int shard,
                             double *loss_sum, char *errstr, size_t errstr_size);

/** @brief Validation loss and accuracy of the net on rows idx[0..n). */
aas_err_t aas_train_dp_validate(aas_train_net_t *net, const float *x, const int32_t *y,
                                const int64_t *idx, int64_t n, double *loss,
                                double *accuracy, char *errstr, size_t errstr_size);

/**
 * @brief The whole scheme in one process: p->epochs rounds of n_shards
 *        shards, run one after the other, averaged after each round; then
 *        exported like aas_train_run (curves per round).  What a
 *        distributed run of the same job computes, byte for byte.
 */
aas_err_t aas_train_dp_run(const aas_train_params_t *p, const float *x, const int32_t *y,
                           int64_t n, int64_t dim, int32_t n_classes, int n_shards,
                           aas_train_result_t *out, char *errstr, size_t errstr_size);

/* ---- engines ---- */

typedef struct aas_train_dp_engine_s aas_train_dp_engine_t;

/** What an engine implements; impl is its own state.  round runs shard
 *  `shard`'s rows from the state last set and adds their loss x rows to
 *  *loss_sum; validate measures the state last set on the held-out rows. */
typedef struct {
    aas_err_t (*get)(void *impl, void *buf, size_t size, char *errstr, size_t errstr_size);
    aas_err_t (*set)(void *impl, const void *buf, size_t size, char *errstr,
                     size_t errstr_size);
    aas_err_t (*round)(void *impl, int32_t round, int shard, double *loss_sum, char *errstr,
                       size_t errstr_size);
    aas_err_t (*validate)(void *impl, double *loss, double *accuracy, char *errstr,
                          size_t errstr_size);
    aas_err_t (*export_blob)(void *impl, void **blob, size_t *len, char *errstr,
                             size_t errstr_size);
    void (*destroy)(void *impl);
} aas_train_dp_ops_t;

/** An engine's sizes. */
typedef struct {
    size_t state_bytes;       /* of a round's state (averaged by aas_train_dp_average) */
    int n_shards;
    int64_t n_train, n_val;   /* of the whole job */
    int64_t shard_rows[AAS_TRAIN_DP_MAX_SHARDS]; /* each shard's training rows */
    int have[AAS_TRAIN_DP_MAX_SHARDS];           /* 1: this engine can run it */
} aas_train_dp_info_t;

/** @brief An engine over ops and impl (owned from now on, destroyed with
 *         the engine or on failure). */
aas_err_t aas_train_dp_engine_new(const aas_train_dp_ops_t *ops, void *impl,
                                  const aas_train_dp_info_t *info,
                                  aas_train_dp_engine_t **out, char *errstr,
                                  size_t errstr_size);

/** @brief The dense MLP's engine over rows x (n x dim) and labels y
 *         (borrowed, must outlive it): every shard's rows, or only shard
 *         `only`'s when only >= 0.  The net's learning rate is scaled as
 *         aas_train_dp_shard_net says. */
aas_err_t aas_train_dp_dense_new(const aas_train_params_t *p, const float *x, const int32_t *y,
                                 int64_t n, int64_t dim, int32_t n_classes, int n_shards,
                                 int only, aas_train_dp_engine_t **out, char *errstr,
                                 size_t errstr_size);

const aas_train_dp_info_t *aas_train_dp_engine_info(const aas_train_dp_engine_t *e);
aas_err_t aas_train_dp_engine_get(aas_train_dp_engine_t *e, void *buf, char *errstr,
                                  size_t errstr_size);
aas_err_t aas_train_dp_engine_set(aas_train_dp_engine_t *e, const void *buf, char *errstr,
                                  size_t errstr_size);
/** @brief Shard `shard`'s round r from global state g into out (both
 *         state_bytes); AAS_ERR_INVAL for a shard the engine does not hold. */
aas_err_t aas_train_dp_engine_round(aas_train_dp_engine_t *e, const void *g, int32_t r,
                                    int shard, void *out, double *loss_sum, char *errstr,
                                    size_t errstr_size);
aas_err_t aas_train_dp_engine_validate(aas_train_dp_engine_t *e, double *loss,
                                       double *accuracy, char *errstr, size_t errstr_size);
/** @brief The model of the state last set (malloc'ed bytes, the caller's). */
aas_err_t aas_train_dp_engine_export(aas_train_dp_engine_t *e, void **blob, size_t *len,
                                     char *errstr, size_t errstr_size);
/** @brief NULL is a no-op. */
void aas_train_dp_engine_destroy(aas_train_dp_engine_t *e);

/** @brief The scheme in one process over an engine holding every shard:
 *         epochs rounds, curves per round, the model exported. */
aas_err_t aas_train_dp_run_all(aas_train_dp_engine_t *e, int32_t epochs,
                               aas_train_result_t *out, char *errstr, size_t errstr_size);

/** @brief Bytes of a state of n_arrays arrays of n_floats (1..3 arrays). */
size_t aas_train_dp_packed_bytes(uint32_t n_arrays, size_t n_floats);

/** @brief Arrays into a state (the format aas_train_dp_average takes). */
aas_err_t aas_train_dp_pack(const float *const *arrays, uint32_t n_arrays, size_t n_floats,
                            int64_t steps, void *buf, size_t size, char *errstr,
                            size_t errstr_size);

/** @brief A state back into arrays; AAS_ERR_DECODE if its shape differs. */
aas_err_t aas_train_dp_unpack(float *const *arrays, uint32_t n_arrays, size_t n_floats,
                              int64_t *steps, const void *buf, size_t size, char *errstr,
                              size_t errstr_size);

#endif
