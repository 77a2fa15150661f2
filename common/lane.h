/*
 * lane.h - priority lanes: which Kafka topic an inference job goes to, by
 * its priority (docs/sharing.md, "Priority lanes").
 *
 * With topic.infer.lanes on (the default) there are three lanes, highest
 * first: <topic.infer>.high (priority >= lane.high.min.priority),
 * <topic.infer> (the normal lane, where priority 0 and every job of a
 * client without lanes goes) and <topic.infer>.low (priority <=
 * lane.low.max.priority).  Off: one lane, topic.infer, so a client or
 * worker configured so behaves as before lanes existed.  The lane topic
 * names derive from topic.infer, so a fleet set to another topic.infer
 * gets its own lanes without more keys.
 *
 * It only maps; the client publishes (producer/client.c), the worker
 * serves the lanes in order (worker/consumer.c), the scheduler weighs
 * their backlogs (scheduler/scheduler.c).
 *
 * Threading: an aas_lanes_t is plain data, read-only once filled.
 */
#ifndef AAS_LANE_H
#define AAS_LANE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"

/* Lanes, highest first: an index is also the serving order. */
typedef enum { AAS_LANE_HIGH = 0, AAS_LANE_NORMAL = 1, AAS_LANE_LOW = 2 } aas_lane_t;
#define AAS_LANE_MAX 3
#define AAS_LANE_TOPIC_MAX 256

typedef struct {
    int enabled;                   /* topic.infer.lanes */
    int64_t high_min, low_max;     /* lane.high.min.priority, lane.low.max.priority */
    /* Each lane's topic; with lanes off all three are topic.infer. */
    char topic[AAS_LANE_MAX][AAS_LANE_TOPIC_MAX];
} aas_lanes_t;

/**
 * @brief Read topic.infer, topic.infer.lanes and the two priority bounds.
 * @return AAS_ERR_INVAL (naming the keys) if lane.low.max.priority is not
 *         below lane.high.min.priority, or a lane topic name is too long.
 *         *out is written only on success.
 */
aas_err_t aas_lanes_from_conf(const aas_conf_t *conf, aas_lanes_t *out, char *errstr,
                              size_t errstr_size);

/** @brief The lane of a job of this priority (AAS_LANE_NORMAL when off). */
aas_lane_t aas_lanes_of_priority(const aas_lanes_t *l, int64_t priority);

/** @brief How many lanes are served: 3, or 1 (only AAS_LANE_NORMAL) when off. */
int aas_lanes_count(const aas_lanes_t *l);

/** @brief The lane whose topic is `topic`, or -1 if none. */
int aas_lanes_find(const aas_lanes_t *l, const char *topic);

/** @brief "high", "normal" or "low". */
const char *aas_lane_name(aas_lane_t lane);

#endif
