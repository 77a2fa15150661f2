/*
 * ledger.h - which offsets of each partition a worker has read but not yet
 * finished, so that an offset is stored only once every message before it
 * is finished, even when jobs finish out of order (the fair share of
 * fair.h serves a partition's messages in tenant order, not offset order).
 *
 * A message read ahead is opened; once its outcome is in Redis it is
 * closed, and the partition's offset to store is the first message still
 * open (or, none open, the one after the last closed): at-least-once as
 * before (docs/guarantees.md).  A rewind cuts every entry from the rewound
 * offset on (those messages come again and are opened again); a revoked
 * partition is forgotten.
 *
 * Offsets of a partition are opened in increasing order (Kafka delivers
 * them so); an offset opened twice is one entry.
 *
 * Threading: one thread (the worker's loop).  Topic names are copied.
 */
#ifndef AAS_LEDGER_H
#define AAS_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct aas_ledger_s aas_ledger_t;

aas_err_t aas_ledger_new(aas_ledger_t **out);
/** @brief NULL is a no-op. */
void aas_ledger_destroy(aas_ledger_t *l);

/** @brief A message read: offset is open.  AAS_ERR_NOMEM: not recorded
 *         (the caller must not hand the message out). */
aas_err_t aas_ledger_open(aas_ledger_t *l, const char *topic, int32_t partition,
                          int64_t offset);

/**
 * @brief offset is finished.  Returns 1 and the offset to store in
 *        *store (the next one to read) when the partition's finished
 *        prefix grew; 0 otherwise (earlier messages still open, or offset
 *        unknown: cut or forgotten meanwhile).
 */
int aas_ledger_close(aas_ledger_t *l, const char *topic, int32_t partition, int64_t offset,
                     int64_t *store);

/** @brief The partition was rewound to offset `from`: entries >= from go. */
void aas_ledger_cut(aas_ledger_t *l, const char *topic, int32_t partition, int64_t from);

/** @brief The partition was revoked: all its entries go. */
void aas_ledger_forget(aas_ledger_t *l, const char *topic, int32_t partition);

/** @brief Entries open or finished-but-not-yet-storable, all partitions. */
size_t aas_ledger_size(const aas_ledger_t *l);

#endif
