/* heartbeat.c - the worker heartbeat record; see heartbeat.h. */
#include "heartbeat.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

aas_err_t aas_heartbeat_format(const aas_heartbeat_t *hb, char *buf, size_t size,
                               char *errstr, size_t errstr_size) {
    if (!aas_id_valid(hb->id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "heartbeat: invalid worker id");
    json_t *o = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s, s:I, s:i}",
                          "id", hb->id, "host", hb->host, "pid", hb->pid,
                          "started_ms", (json_int_t)hb->started_ms,
                          "done", (json_int_t)hb->done, "failed", (json_int_t)hb->failed,
                          "skipped", (json_int_t)hb->skipped, "dlq", (json_int_t)hb->dlq,
                          "retries", (json_int_t)hb->retries,
                          "rate", hb->rate < 0 ? 0.0 : hb->rate,
                          "partitions", hb->partitions, "ts_ms", (json_int_t)hb->ts_ms,
                          "metrics_port", hb->metrics_port);
    if (o)
        json_object_set_new(o, "training", hb->training[0] ? json_string(hb->training)
                                                           : json_null());
    /* "host" and "partitions" come from the system: json_pack refuses
     * invalid UTF-8 (NULL), and is then reported, never sent half-made. */
    size_t need = o ? json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_REAL_PRECISION(6)) : 0;
    if (!o || need == 0) {
        json_decref(o);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "heartbeat: a field is not valid UTF-8");
    }
    if (need + 1 > size) {
        json_decref(o);
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "heartbeat: %zu bytes do not fit %zu", need, size);
    }
    json_dumpb(o, buf, need, JSON_COMPACT | JSON_REAL_PRECISION(6));
    buf[need] = '\0';
    json_decref(o);
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
