/*
 * heartbeat.h - the worker's heartbeat record: the one definition of what a
 * worker tells the fleet about itself, written by the worker (format) and
 * read by the scheduler and `aas-scheduler status` (parse).  The record is
 * JSON in Redis (docs/redis.md, "Workers"); storing it is store.h's.
 *
 * Plain values, no allocation; thread-safe.
 */
#ifndef AAS_HEARTBEAT_H
#define AAS_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "job.h"

#define AAS_HEARTBEAT_PARTS_MAX 1024   /* bytes of the partitions list */
#define AAS_HEARTBEAT_GROUP_MAX 256    /* bytes of the group, with its NUL */

typedef struct {
    char id[AAS_ID_MAX + 1];       /* the worker id */
    char host[64];
    int pid;
    int64_t started_ms;            /* unix ms the worker started */
    int64_t ts_ms;                 /* unix ms of this beat */
    uint64_t done, failed, skipped, dlq, retries;  /* counts since start */
    double rate;                   /* jobs/s finished since the last beat;
                                    * < 0 unknown */
    char training[AAS_ID_MAX + 1]; /* the training job it runs, or "" */
    char partitions[AAS_HEARTBEAT_PARTS_MAX]; /* "topic/p,topic/p" held */
    int metrics_port;              /* where it serves /metrics; 0 none */
    char group[AAS_HEARTBEAT_GROUP_MAX]; /* its Kafka consumer group (the
                                    * group.id its consumer uses); ""
                                    * unknown: a worker older than the
                                    * field */
} aas_heartbeat_t;

/**
 * @brief The record as one line of JSON into buf (NUL-terminated):
 *        {"id":..,"host":..,"pid":..,"started_ms":..,"done":..,"failed":..,
 *        "skipped":..,"dlq":..,"retries":..,"rate":R.RRR,"training":"job"|null,
 *        "partitions":"topic/p,...","ts_ms":..} in that order, as workers
 *        wrote it before this module, byte for byte, then
 *        ,"metrics_port":N only when metrics_port > 0, then ,"group":".."
 *        only when group is not "".  Strings are
 *        JSON-escaped; a rate < 0 (unknown) or not finite is written as 0.
 * @return AAS_ERR_INVAL for an invalid id or text that is not UTF-8,
 *         AAS_ERR_TOO_LARGE if it does not fit size, with errstr; buf is
 *         written only on success.  Thread-safe.
 */
aas_err_t aas_heartbeat_format(const aas_heartbeat_t *hb, char *buf, size_t size,
                               char *errstr, size_t errstr_size);

/**
 * @brief Read a record.  Missing counts (and metrics_port) read as 0, a
 *        missing rate as unknown (-1), missing text and a null training
 *        as "", a missing or null group as "" (unknown: the record of a
 *        worker older than the field).  Thread-safe.
 * @return AAS_ERR_DECODE (not JSON, no valid id, a field of the wrong type
 *         or too long) with errstr; *out is written only on success.
 */
aas_err_t aas_heartbeat_parse(const char *json, aas_heartbeat_t *out, char *errstr,
                              size_t errstr_size);

/**
 * @brief 1 if the worker of hb counts for the scheduler of consumer group
 *        `group` (its live workers, their rates, skew): it is in that
 *        group, or its record names no group.  A worker older than the
 *        field is counted, as every worker was before it existed, so that
 *        during a rolling upgrade the fleet does not look smaller than it
 *        is (and the actuator does not start workers to make up for it).
 *        0 for a worker of another group (a training-only fleet, say).
 *        Pure; thread-safe.
 */
int aas_heartbeat_in_group(const aas_heartbeat_t *hb, const char *group);

/**
 * @brief The partitions of `topic` the worker holds, from hb->partitions
 *        (topic names have no '/' or ','): at most max into out.
 * @return how many were written.
 */
size_t aas_heartbeat_partitions(const aas_heartbeat_t *hb, const char *topic,
                                int32_t *out, size_t max);

#endif
