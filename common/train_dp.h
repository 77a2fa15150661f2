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
 * Threading: as train.h (a net is used by one thread at a time).
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

#endif
