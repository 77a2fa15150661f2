/* lane.c - priority lanes: priority -> lane topic; see lane.h. */
#include "lane.h"

#include <stdio.h>
#include <string.h>

aas_err_t aas_lanes_from_conf(const aas_conf_t *conf, aas_lanes_t *out, char *errstr,
                              size_t errstr_size) {
    aas_lanes_t l;
    memset(&l, 0, sizeof(l));
    const char *base = aas_conf_get(conf, "topic.infer");
    l.enabled = aas_conf_get_int(conf, "topic.infer.lanes") != 0;
    l.high_min = aas_conf_get_int(conf, "lane.high.min.priority");
    l.low_max = aas_conf_get_int(conf, "lane.low.max.priority");
    if (!base || !*base)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "topic.infer is empty");
    if (l.enabled && l.low_max >= l.high_min)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "lane.low.max.priority=%lld must be below "
                           "lane.high.min.priority=%lld",
                           (long long)l.low_max, (long long)l.high_min);
    /* Kafka's own limit on a topic name is 249 characters. */
    static const char *const suffix[AAS_LANE_MAX] = {".high", "", ".low"};
    for (int i = 0; i < AAS_LANE_MAX; i++) {
        int n = snprintf(l.topic[i], sizeof(l.topic[i]), "%s%s", base,
                         l.enabled ? suffix[i] : "");
        if (n < 0 || n > 249)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "topic.infer '%.40s...' is too long for its lane topics "
                               "(Kafka allows 249 characters)", base);
    }
    *out = l;
    return AAS_ERR_OK;
}

aas_lane_t aas_lanes_of_priority(const aas_lanes_t *l, int64_t priority) {
    if (!l->enabled) return AAS_LANE_NORMAL;
    if (priority >= l->high_min) return AAS_LANE_HIGH;
    if (priority <= l->low_max) return AAS_LANE_LOW;
    return AAS_LANE_NORMAL;
}

int aas_lanes_count(const aas_lanes_t *l) { return l->enabled ? AAS_LANE_MAX : 1; }

int aas_lanes_find(const aas_lanes_t *l, const char *topic) {
    for (int i = 0; i < AAS_LANE_MAX; i++)
        if ((l->enabled || i == AAS_LANE_NORMAL) && strcmp(l->topic[i], topic) == 0)
            return i;
    return -1;
}

const char *aas_lane_name(aas_lane_t lane) {
    static const char *const names[AAS_LANE_MAX] = {"high", "normal", "low"};
    return lane >= 0 && lane < AAS_LANE_MAX ? names[lane] : "?";
}
