/* heartbeat.c - the worker heartbeat record; see heartbeat.h. */
#include "heartbeat.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Append `text` as a JSON string (quoted, escaped by jansson) at buf[*used].
 * -1: not valid UTF-8 (jansson refuses it); -2: does not fit. */
static int aas_heartbeat_put_str(char *buf, size_t size, size_t *used, const char *text) {
    json_t *v = json_string(text);
    if (!v) return -1;
    size_t need = json_dumpb(v, NULL, 0, JSON_ENCODE_ANY);
    int rc = 0;
    if (need == 0) rc = -1;
    else if (*used + need >= size) rc = -2;
    else *used += json_dumpb(v, buf + *used, need, JSON_ENCODE_ANY);
    json_decref(v);
    return rc;
}

/* Append printf output at buf[*used]; -2 if it does not fit. */
static int aas_heartbeat_put(char *buf, size_t size, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int aas_heartbeat_put(char *buf, size_t size, size_t *used, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = *used < size ? vsnprintf(buf + *used, size - *used, fmt, ap) : -1;
    va_end(ap);
    if (n < 0 || *used + (size_t)n >= size) return -2;
    *used += (size_t)n;
    return 0;
}

aas_err_t aas_heartbeat_format(const aas_heartbeat_t *hb, char *buf, size_t size,
                               char *errstr, size_t errstr_size) {
    if (!aas_id_valid(hb->id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "heartbeat: invalid worker id");
    /* The layout (field order, "rate" with 3 decimals, "training" null when
     * none) is the one workers wrote before this module, byte for byte;
     * "metrics_port" is added only when there is one, and "group" (newer
     * than the rest) only when known.  "host", "partitions" and "group"
     * come from the system or the configuration: they are escaped, and invalid
     * UTF-8 is refused, never sent half-made. */
    double rate = isfinite(hb->rate) && hb->rate > 0 ? hb->rate : 0.0;
    /* Built aside, so that buf is written only on success: every string
     * escaped at worst (\u00XX) still fits here. */
    char rec[12 * AAS_HEARTBEAT_PARTS_MAX];
    size_t used = 0;
    const size_t cap = sizeof(rec);
    int rc = aas_heartbeat_put(rec, cap, &used, "{\"id\":");
    if (!rc) rc = aas_heartbeat_put_str(rec, cap, &used, hb->id);
    if (!rc) rc = aas_heartbeat_put(rec, cap, &used, ",\"host\":");
    if (!rc) rc = aas_heartbeat_put_str(rec, cap, &used, hb->host);
    if (!rc)
        rc = aas_heartbeat_put(rec, cap, &used,
                               ",\"pid\":%d,\"started_ms\":%lld,\"done\":%llu,\"failed\":%llu,"
                               "\"skipped\":%llu,\"dlq\":%llu,\"retries\":%llu,\"rate\":%.3f,"
                               "\"training\":",
                               hb->pid, (long long)hb->started_ms,
                               (unsigned long long)hb->done, (unsigned long long)hb->failed,
                               (unsigned long long)hb->skipped, (unsigned long long)hb->dlq,
                               (unsigned long long)hb->retries, rate);
    if (!rc)
        rc = hb->training[0] ? aas_heartbeat_put_str(rec, cap, &used, hb->training)
                             : aas_heartbeat_put(rec, cap, &used, "null");
    if (!rc) rc = aas_heartbeat_put(rec, cap, &used, ",\"partitions\":");
    if (!rc) rc = aas_heartbeat_put_str(rec, cap, &used, hb->partitions);
    if (!rc) rc = aas_heartbeat_put(rec, cap, &used, ",\"ts_ms\":%lld", (long long)hb->ts_ms);
    if (!rc && hb->metrics_port > 0)
        rc = aas_heartbeat_put(rec, cap, &used, ",\"metrics_port\":%d", hb->metrics_port);
    if (!rc && hb->group[0]) rc = aas_heartbeat_put(rec, cap, &used, ",\"group\":");
    if (!rc && hb->group[0]) rc = aas_heartbeat_put_str(rec, cap, &used, hb->group);
    if (!rc) rc = aas_heartbeat_put(rec, cap, &used, "}");
    if (rc == -1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "heartbeat: a field is not valid UTF-8");
    if (rc || used + 1 > size)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "heartbeat: the record does not fit %zu bytes", size);
    memcpy(buf, rec, used + 1);
    return AAS_ERR_OK;
}

/* Copy the string field `key` (absent or null = "") into dst. */
static int aas_heartbeat_str(json_t *o, const char *key, char *dst, size_t size) {
    json_t *v = json_object_get(o, key);
    dst[0] = '\0';
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v) || json_string_length(v) >= size) return -1;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* The integer field `key` (absent = 0). */
static int aas_heartbeat_int(json_t *o, const char *key, int64_t lo, int64_t *out) {
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo) return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

aas_err_t aas_heartbeat_parse(const char *json, aas_heartbeat_t *out, char *errstr,
                              size_t errstr_size) {
    json_error_t jerr;
    json_t *o = json ? json_loads(json, 0, &jerr) : NULL;
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE, "heartbeat: not a JSON object");
    }
    aas_heartbeat_t hb;
    memset(&hb, 0, sizeof(hb));
    int64_t pid, started, ts, done, failed, skipped, dlq, retries, port;
    const char *bad = NULL;
    if (aas_heartbeat_str(o, "id", hb.id, sizeof(hb.id)) || !aas_id_valid(hb.id)) bad = "id";
    else if (aas_heartbeat_str(o, "host", hb.host, sizeof(hb.host))) bad = "host";
    else if (aas_heartbeat_str(o, "training", hb.training, sizeof(hb.training))) bad = "training";
    else if (aas_heartbeat_str(o, "partitions", hb.partitions, sizeof(hb.partitions)))
        bad = "partitions";
    /* No "group": a worker older than the field (read as "", unknown;
     * aas_heartbeat_in_group counts it, as before). */
    else if (aas_heartbeat_str(o, "group", hb.group, sizeof(hb.group))) bad = "group";
    else if (aas_heartbeat_int(o, "pid", 0, &pid)) bad = "pid";
    else if (aas_heartbeat_int(o, "started_ms", 0, &started)) bad = "started_ms";
    else if (aas_heartbeat_int(o, "ts_ms", 0, &ts)) bad = "ts_ms";
    else if (aas_heartbeat_int(o, "done", 0, &done)) bad = "done";
    else if (aas_heartbeat_int(o, "failed", 0, &failed)) bad = "failed";
    else if (aas_heartbeat_int(o, "skipped", 0, &skipped)) bad = "skipped";
    else if (aas_heartbeat_int(o, "dlq", 0, &dlq)) bad = "dlq";
    else if (aas_heartbeat_int(o, "retries", 0, &retries)) bad = "retries";
    else if (aas_heartbeat_int(o, "metrics_port", 0, &port) || port > 65535) bad = "metrics_port";
    json_t *rate = json_object_get(o, "rate");
    if (!bad && rate && !json_is_number(rate)) bad = "rate";
    if (bad) {
        json_decref(o);
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE, "heartbeat: bad field %s",
                           bad);
    }
    hb.pid = (int)pid;
    hb.started_ms = started;
    hb.ts_ms = ts;
    hb.done = (uint64_t)done;
    hb.failed = (uint64_t)failed;
    hb.skipped = (uint64_t)skipped;
    hb.dlq = (uint64_t)dlq;
    hb.retries = (uint64_t)retries;
    hb.metrics_port = (int)port;
    hb.rate = rate ? json_number_value(rate) : -1;
    json_decref(o);
    *out = hb;
    return AAS_ERR_OK;
}

int aas_heartbeat_in_group(const aas_heartbeat_t *hb, const char *group) {
    /* Unknown group: counted, for workers older than the field during a
     * rolling upgrade (heartbeat.h). */
    return hb->group[0] == '\0' || (group && strcmp(hb->group, group) == 0);
}

size_t aas_heartbeat_partitions(const aas_heartbeat_t *hb, const char *topic,
                                int32_t *out, size_t max) {
    size_t n = 0, tlen = strlen(topic);
    /* "topic/p,...": the last '/' of a field splits it. */
    for (const char *f = hb->partitions; *f && n < max;) {
        const char *end = strchr(f, ',');
        size_t len = end ? (size_t)(end - f) : strlen(f);
        const char *slash = NULL;
        for (const char *q = f; q < f + len; q++)
            if (*q == '/') slash = q;
        if (slash && (size_t)(slash - f) == tlen && !strncmp(f, topic, tlen) &&
            slash + 1 < f + len) {
            char *num_end = NULL;
            long p = strtol(slash + 1, &num_end, 10);
            if (num_end == f + len && p >= 0 && p <= INT32_MAX) out[n++] = (int32_t)p;
        }
        if (!end) break;
        f = end + 1;
    }
    return n;
}
