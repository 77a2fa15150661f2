/* kafka.c - librdkafka configuration and error mapping; see kafka.h. */
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void aas_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                             const char *buf) {
    /* syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug */
    aas_log_level_t l = level <= 3   ? AAS_LOG_ERROR
                        : level == 4 ? AAS_LOG_WARN
                        : level <= 6 ? AAS_LOG_INFO
                                     : AAS_LOG_DEBUG;
    AAS_LOG(l, "kafka", "client=%s fac=%s %s", rk ? rd_kafka_name(rk) : "-",
            fac, buf);
}

static void aas_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
                               void *opaque) {
    /* Transport errors (broker down) are retried by librdkafka itself;
     * only a fatal error means this client instance is finished. */
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        AAS_LOG(AAS_LOG_ERROR, "kafka", "fatal error=%s reason=\"%s\"",
                rd_kafka_err2name(orig), buf);
    } else {
        AAS_LOG(AAS_LOG_WARN, "kafka", "error=%s reason=\"%s\"",
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    }
}

aas_err_t aas_kafka_conf_set(rd_kafka_conf_t *kc, const char *key,
                             const char *value, char *errstr,
                             size_t errstr_size) {
    char buf[512];
    if (rd_kafka_conf_set(kc, key, value, buf, sizeof(buf)) !=
        RD_KAFKA_CONF_OK)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "kafka.%s: %s",
                           key, buf);
    return AAS_ERR_OK;
}

/*
 * Which clients a librdkafka property is for: 'C' consumers, 'P' producers,
 * '*' both (or unknown: then librdkafka itself judges the key).  Read from
 * librdkafka's own property table, so a kafka.* key meant for the consumer
 * (fetch.wait.max.ms) is not handed to the producers of the same program,
 * which would log a CONFWARN on every start.  Called a few times at start.
 */
static char aas_kafka_scope(const char *name) {
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (!fp) return '*';
    rd_kafka_conf_properties_show(fp);
    if (fclose(fp) != 0 || !text) {
        free(text);
        return '*';
    }
    char scope = '*';
    size_t n = strlen(name);
    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n') line++;
        /* "name<spaces>|  C  | ..." */
        if (strncmp(line, name, n) != 0 || (line[n] != ' ' && line[n] != '|')) continue;
        const char *bar = strchr(line + n, '|');
        if (!bar) break;
        for (bar++; *bar == ' '; bar++) {}
        if (*bar == 'C' || *bar == 'P') scope = *bar;
        break;
    }
    free(text);
    return scope;
}

typedef struct {
    rd_kafka_conf_t *kc;
    char role;        /* 'C' or 'P' */
} aas_kafka_apply_t;

static aas_err_t aas_kafka_conf_apply(void *opaque, const char *key,
                                      const char *value, char *errstr,
                                      size_t errstr_size) {
    aas_kafka_apply_t *a = opaque;
    char scope = aas_kafka_scope(key);
    if (scope != '*' && scope != a->role) return AAS_ERR_OK; /* the other kind's */
    return aas_kafka_conf_set(a->kc, key, value, errstr, errstr_size);
}

aas_err_t aas_kafka_conf_new(const aas_conf_t *conf, const char *component,
                             rd_kafka_type_t type, const char *const *defaults,
                             rd_kafka_conf_t **out, char *errstr,
                             size_t errstr_size) {
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (!kc) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    aas_err_t err = AAS_ERR_OK;
    err = aas_kafka_conf_set(kc, "client.id", component, errstr, errstr_size);
    for (size_t i = 0; !err && defaults && defaults[i]; i += 2)
        err = aas_kafka_conf_set(kc, defaults[i], defaults[i + 1], errstr,
                                 errstr_size);
    aas_kafka_apply_t apply = {kc, type == RD_KAFKA_CONSUMER ? 'C' : 'P'};
    if (!err)
        err = aas_conf_each_kafka(conf, aas_kafka_conf_apply, &apply, errstr,
                                  errstr_size);
    if (err) {
        rd_kafka_conf_destroy(kc);
        return err;
    }
    rd_kafka_conf_set_log_cb(kc, aas_kafka_log_cb);
    rd_kafka_conf_set_error_cb(kc, aas_kafka_error_cb);
    *out = kc;
    return AAS_ERR_OK;
}

aas_err_t aas_kafka_conf_group(const rd_kafka_conf_t *kc, char *buf, size_t size,
                               char *errstr, size_t errstr_size) {
    static const char what[] = "group.id (worker.group, or kafka.group.id)";
    char tmp[1024] = "";
    size_t len = sizeof(tmp);
    rd_kafka_conf_res_t res = rd_kafka_conf_get(kc, "group.id", tmp, &len);
    /* An unset group.id reads as RD_KAFKA_CONF_UNKNOWN (librdkafka 2.0). */
    if (res == RD_KAFKA_CONF_UNKNOWN)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%s: not set", what);
    if (res != RD_KAFKA_CONF_OK)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%s: not readable", what);
    /* len is the value's full size (librdkafka counts the NUL): more than
     * tmp holds means it was cut. */
    tmp[sizeof(tmp) - 1] = '\0';
    size_t n = strlen(tmp);
    if (len > sizeof(tmp) || n + 1 > size)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%s: longer than %zu bytes",
                           what, size - 1);
    if (n == 0) return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%s: not set", what);
    memcpy(buf, tmp, n + 1);
    return AAS_ERR_OK;
}

aas_err_t aas_kafka_err(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return AAS_ERR_OK;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        return AAS_ERR_TIMEOUT;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return AAS_ERR_TOO_LARGE;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return AAS_ERR_INVAL;
    default:
        return AAS_ERR_KAFKA;
    }
}
