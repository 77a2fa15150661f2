/*
 * source.h - training examples read as a stream of lines, wherever they
 * live: a buffer (the job's own tensors), a data set in Redis (chunked,
 * docs/redis.md#data-sets) or a slice of a Kafka topic
 * (docs/training.md#data-sources).  A trainer reads a source once or more
 * (one pass per epoch), so it never needs the whole data set in memory.
 *
 * A line is one example in the set's format, without its '\n' (a trailing
 * '\r' is dropped too):
 *   AAS_SRC_TSV  "label<TAB>text" (text classifiers, docs/text.md)
 *   AAS_SRC_CSV  one CSV row of numbers, the class label last
 * The source does not parse lines beyond that; the trainer does.  A CSV
 * header line, when the set has one, is skipped by the source.
 *
 * Memory: a source holds at most one chunk or fetch batch at a time
 * (aas_src_footprint() says how much), never the whole set.
 *
 * Threading: one source, one thread.  Implementations: source.c (memory),
 * source_dataset.c (Redis), source_kafka.c (Kafka).
 */
#ifndef AAS_SOURCE_H
#define AAS_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "job.h"
#include "store.h"

typedef struct aas_src_s aas_src_t;

typedef enum { AAS_SRC_TSV = 1, AAS_SRC_CSV = 2 } aas_src_format_t;

typedef struct {
    aas_src_format_t format;
    int64_t rows;        /* examples (header excluded); -1 if not known
                            before a full pass (Kafka) */
    uint64_t bytes;      /* bytes of the set, 0 if not known */
    const char *name;    /* for messages: "data set X", "topic T", "job" */
} aas_src_info_t;

/**
 * @brief A source over len bytes of lines separated by '\n' (the last may
 *        lack it).  buf is borrowed: it must outlive the source.
 */
aas_err_t aas_src_open_memory(const char *buf, size_t len, aas_src_format_t format,
                              aas_src_t **out, char *errstr, size_t errstr_size);

/**
 * @brief A source over data set `name` in Redis (uploaded by
 *        `aas-producer dataset put`, format aas.dataset.v2).  st is
 *        borrowed (the caller's connection, same thread).  A v1 (binary)
 *        set gives AAS_ERR_INVAL naming the format; a missing one
 *        AAS_ERR_NOT_FOUND.
 */
aas_err_t aas_src_open_dataset(aas_store_t *st, const char *name, aas_src_t **out,
                               char *errstr, size_t errstr_size);

/** A slice of a Kafka topic: which records, and how they read. */
typedef struct {
    const char *topic;
    const int32_t *partitions; /* NULL: every partition of the topic */
    size_t n_partitions;
    /* Start: the first offset >= start_offset, or (start_ms >= 0) the first
     * record whose timestamp is >= start_ms.  End (exclusive): end_offset,
     * or (end_ms >= 0) the first record at or after end_ms, or (both -1)
     * each partition's high watermark when the source is opened, so a
     * slice is fixed and every pass reads the same records. */
    int64_t start_offset, start_ms;
    int64_t end_offset, end_ms;
    aas_src_format_t format;   /* each record's value is one line */
    /* next() gives up with a retriable AAS_ERR_KAFKA after this long
     * without progress (a broker away); 0: 60 s. */
    int64_t stall_ms;
} aas_src_kafka_t;

/**
 * @brief A source over a Kafka slice, read with its own consumer (no
 *        group, no commits) built from conf's kafka.* keys.
 */
aas_err_t aas_src_open_kafka(const aas_conf_t *conf, const aas_src_kafka_t *spec,
                             aas_src_t **out, char *errstr, size_t errstr_size);

/**
 * @brief The Kafka slice a TRAIN job names with params data_topic,
 *        data_partitions, data_start, data_end (docs/training.md#data-sources),
 *        into *spec (its strings borrow from job; partitions go to
 *        parts[0..parts_cap)).  *present = 0 (spec untouched) when the job
 *        has no data_topic.  AAS_ERR_INVAL naming the param on a bad value.
 */
aas_err_t aas_src_kafka_from_params(const aas_job_t *job, aas_src_kafka_t *spec,
                                    int32_t *parts, size_t parts_cap, int *present,
                                    char *errstr, size_t errstr_size);

/** @brief What the source knows about its set. */
void aas_src_info(const aas_src_t *s, aas_src_info_t *out);

/**
 * @brief Go back to the first line.  seed != 0 lets a source that can
 *        (a Redis data set) visit its chunks in an order drawn from seed;
 *        the lines inside a chunk keep their order.  Others ignore it.
 */
aas_err_t aas_src_rewind(aas_src_t *s, uint64_t seed, char *errstr,
                         size_t errstr_size);

/**
 * @brief The next line: *line (not NUL-terminated) and *len, borrowed
 *        until the next call on s.  At the end *eof = 1 (and *line NULL).
 *        A retriable error (Redis or Kafka away) may be retried by calling
 *        again.
 */
aas_err_t aas_src_next(aas_src_t *s, const char **line, size_t *len, int *eof,
                       char *errstr, size_t errstr_size);

/** @brief Bytes the source holds now (buffers, not the borrowed ones). */
size_t aas_src_footprint(const aas_src_t *s);

/** @brief NULL is a no-op. */
void aas_src_destroy(aas_src_t *s);

#endif
