/* kafka.c - librdkafka configuration, error mapping and authentication
 * failures; see kafka.h. */
#include "kafka.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
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

/* Which failures mean "this client cannot get in", as opposed to "the
 * broker is away" (which librdkafka rides out by itself). */
typedef enum {
    AAS_KAFKA_FAIL_NONE,
    AAS_KAFKA_FAIL_SASL, /* RD_KAFKA_RESP_ERR__AUTHENTICATION */
    AAS_KAFKA_FAIL_TLS,  /* RD_KAFKA_RESP_ERR__SSL: a TLS handshake or certificate */
    /* RD_KAFKA_RESP_ERR__TRANSPORT that librdkafka explains as a wrong
     * security.protocol (a plaintext connection closed at once by a SASL
     * or TLS listener).  Only a hint: a broker that is shutting down can
     * look the same, so it counts only before any broker stayed up. */
    AAS_KAFKA_FAIL_HINT
} aas_kafka_fail_t;

static aas_kafka_fail_t aas_kafka_fail_kind(int err, const char *reason) {
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) return AAS_KAFKA_FAIL_SASL;
    if (err == RD_KAFKA_RESP_ERR__SSL) return AAS_KAFKA_FAIL_TLS;
    /* librdkafka's own explanations (rdkafka_broker.c, rdkafka_ssl.c of
     * 2.0.2); worded otherwise, the failure is only a transport error. */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT && reason &&
        (strstr(reason, "might require SASL authentication") ||
         strstr(reason, "incorrect security.protocol configuration") ||
         strstr(reason, "connecting to a PLAINTEXT broker listener")))
        return AAS_KAFKA_FAIL_HINT;
    return AAS_KAFKA_FAIL_NONE;
}

/* What to check, by kind and SASL mechanism. */
static const char *aas_kafka_fail_hint(aas_kafka_fail_t kind, const char *mechanism) {
    switch (kind) {
    case AAS_KAFKA_FAIL_SASL:
        if (mechanism && !strcmp(mechanism, "GSSAPI"))
            return "check kafka.sasl.kerberos.principal / kafka.sasl.kerberos.keytab";
        if (mechanism && !strcmp(mechanism, "OAUTHBEARER"))
            return "check kafka.sasl.oauthbearer.* (the token and its provider)";
        return "check kafka.sasl.username / kafka.sasl.password(.file)";
    case AAS_KAFKA_FAIL_TLS:
        return "check kafka.ssl.ca.location and, if the broker wants a client certificate, "
               "kafka.ssl.certificate.location / kafka.ssl.key.location";
    case AAS_KAFKA_FAIL_HINT:
        return "if the broker requires authentication, set kafka.security.protocol "
               "(SASL_PLAINTEXT, SASL_SSL or SSL) and kafka.sasl.mechanisms, "
               "kafka.sasl.username, kafka.sasl.password(.file)";
    default:
        return "";
    }
}

static void aas_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
                               void *opaque) {
    (void)opaque;
    aas_kafka_error_note(NULL, rk, err, reason);
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

/* ------------------------------------------------------------ authentication */

/* Brokers followed by name; beyond that many the client is taken to have
 * one up (never "cannot authenticate"): a cluster that large is not the
 * case this serves. */
#define AAS_KAFKA_AUTH_BROKERS 64
/* Up this long, a broker took the client (librdkafka's own measure for
 * "closed at once" is 2 s). */
#define AAS_KAFKA_AUTH_STABLE_MS 2000

typedef struct {
    int32_t id;           /* -1: a bootstrap broker */
    int port;
    char name[256];
    int up;               /* state UP or UPDATE: connected and authenticated */
    int64_t up_since_ms;
} aas_kafka_broker_t;

struct aas_kafka_auth_s {
    pthread_mutex_t mu;
    aas_kafka_fail_t kind;   /* the last failure's; NONE: none yet */
    int64_t fail_ms;         /* when it was noted (monotonic) */
    char broker[256];        /* the broker it names, "" if none */
    char text[512];          /* librdkafka's words, without the broker and timing */
    int64_t up_ms;           /* the last time a broker came up, 0 never */
    int reached;             /* a broker stayed up AAS_KAFKA_AUTH_STABLE_MS */
    int overflow;            /* more brokers than the table holds */
    size_t n;
    aas_kafka_broker_t b[AAS_KAFKA_AUTH_BROKERS];
};

static int64_t aas_kafka_now_ms(void) { return aas_mono_us() / 1000; }

aas_err_t aas_kafka_auth_new(aas_kafka_auth_t **out, char *errstr, size_t errstr_size) {
    aas_kafka_auth_t *a = calloc(1, sizeof(*a));
    if (!a) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&a->mu, NULL)) {
        free(a);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    *out = a;
    return AAS_ERR_OK;
}

void aas_kafka_auth_destroy(aas_kafka_auth_t *a) {
    if (!a) return;
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* on_broker_state_change, on librdkafka's broker threads. */
static rd_kafka_resp_err_t aas_kafka_auth_on_state(rd_kafka_t *rk, int32_t broker_id,
                                                   const char *secproto, const char *name,
                                                   int port, const char *state,
                                                   void *ic_opaque) {
    (void)rk;
    (void)secproto;
    aas_kafka_auth_t *a = ic_opaque;
    int up = state && (!strcmp(state, "UP") || !strcmp(state, "UPDATE"));
    int64_t now = aas_kafka_now_ms();
    pthread_mutex_lock(&a->mu);
    aas_kafka_broker_t *b = NULL;
    for (size_t i = 0; i < a->n && !b; i++)
        if (a->b[i].id == broker_id && a->b[i].port == port &&
            !strcmp(a->b[i].name, name ? name : ""))
            b = &a->b[i];
    if (!b && a->n < AAS_KAFKA_AUTH_BROKERS) {
        b = &a->b[a->n++];
        memset(b, 0, sizeof(*b));
        b->id = broker_id;
        b->port = port;
        snprintf(b->name, sizeof(b->name), "%s", name ? name : "");
    }
    if (!b) {
        a->overflow = 1;
    } else if (up && !b->up) {
        b->up = 1;
        b->up_since_ms = now;
        a->up_ms = now;
    } else if (!up && b->up) {
        if (now - b->up_since_ms >= AAS_KAFKA_AUTH_STABLE_MS) a->reached = 1;
        b->up = 0;
    }
    pthread_mutex_unlock(&a->mu);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static rd_kafka_resp_err_t aas_kafka_auth_on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf,
                                                 void *ic_opaque, char *errstr,
                                                 size_t errstr_size) {
    (void)conf;
    rd_kafka_resp_err_t e = rd_kafka_interceptor_add_on_broker_state_change(
        rk, "aas-auth", aas_kafka_auth_on_state, ic_opaque);
    if (e) snprintf(errstr, errstr_size, "aas-auth interceptor: %s", rd_kafka_err2str(e));
    return e;
}

aas_err_t aas_kafka_auth_watch(aas_kafka_auth_t *a, rd_kafka_conf_t *kc, char *errstr,
                               size_t errstr_size) {
    rd_kafka_resp_err_t e =
        rd_kafka_conf_interceptor_add_on_new(kc, "aas-auth", aas_kafka_auth_on_new, a);
    if (e)
        return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "aas-auth interceptor: %s",
                           rd_kafka_err2str(e));
    return AAS_ERR_OK;
}

/* librdkafka's "BROKER: TEXT (after Nms in state S, ...)" -> BROKER and
 * TEXT (without the timing, which differs each time); a reason of another
 * shape is all TEXT. */
static void aas_kafka_reason_split(const char *reason, char *broker, size_t bsize,
                                   char *text, size_t tsize) {
    broker[0] = '\0';
    if (!reason) reason = "";
    const char *sep = strstr(reason, ": ");
    size_t blen = sep ? (size_t)(sep - reason) : 0;
    if (sep && blen < bsize && memchr(reason, '/', blen) && !memchr(reason, ' ', blen)) {
        memcpy(broker, reason, blen);
        broker[blen] = '\0';
        reason = sep + 2;
    }
    snprintf(text, tsize, "%s", reason);
    char *after = strstr(text, " (after ");
    size_t n = strlen(text);
    if (after && n > 0 && text[n - 1] == ')') *after = '\0';
}

void aas_kafka_error_note(aas_kafka_auth_t *a, rd_kafka_t *rk, int err, const char *reason) {
    const char *name = rk ? rd_kafka_name(rk) : "-";
    /* Transport errors (broker down) are retried by librdkafka itself;
     * only a fatal error means this client instance is finished. */
    if (err == RD_KAFKA_RESP_ERR__FATAL && rk) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        AAS_LOG(AAS_LOG_ERROR, "kafka", "client=%s fatal error=%s reason=\"%s\"", name,
                rd_kafka_err2name(orig), buf);
        return;
    }
    aas_kafka_fail_t kind = aas_kafka_fail_kind(err, reason);
    if (kind == AAS_KAFKA_FAIL_NONE) {
        AAS_LOG(AAS_LOG_WARN, "kafka", "client=%s error=%s reason=\"%s\"", name,
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason ? reason : "");
        return;
    }
    char mech[64] = "";
    size_t mlen = sizeof(mech);
    if (!rk || rd_kafka_conf_get(rd_kafka_conf(rk), "sasl.mechanisms", mech, &mlen) !=
                   RD_KAFKA_CONF_OK)
        mech[0] = '\0';
    /* librdkafka keeps retrying: this is an error of the configuration
     * (or of the broker's users), and the log says what to change. */
    AAS_LOG(kind == AAS_KAFKA_FAIL_HINT ? AAS_LOG_WARN : AAS_LOG_ERROR, "kafka",
            "client=%s %s error=%s reason=\"%s\" (%s)", name,
            kind == AAS_KAFKA_FAIL_SASL  ? "authentication failed"
            : kind == AAS_KAFKA_FAIL_TLS ? "TLS handshake failed"
                                         : "connection closed at once",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason ? reason : "",
            aas_kafka_fail_hint(kind, mech));
    if (!a) return;
    char broker[256], text[512];
    aas_kafka_reason_split(reason, broker, sizeof(broker), text, sizeof(text));
    pthread_mutex_lock(&a->mu);
    a->kind = kind;
    a->fail_ms = aas_kafka_now_ms();
    memcpy(a->broker, broker, sizeof(a->broker));
    memcpy(a->text, text, sizeof(a->text));
    pthread_mutex_unlock(&a->mu);
}

int aas_kafka_auth_ever_up(aas_kafka_auth_t *a) {
    if (!a) return 1;
    pthread_mutex_lock(&a->mu);
    int ever = a->up_ms != 0;
    pthread_mutex_unlock(&a->mu);
    return ever;
}

/* A configuration value of rk into buf ("" if unset or unreadable). */
static const char *aas_kafka_conf_str(rd_kafka_t *rk, const char *key, char *buf, size_t size) {
    size_t len = size;
    if (rd_kafka_conf_get(rd_kafka_conf(rk), key, buf, &len) != RD_KAFKA_CONF_OK) buf[0] = '\0';
    buf[size - 1] = '\0';
    return buf;
}

aas_err_t aas_kafka_auth_check(aas_kafka_auth_t *a, rd_kafka_t *rk, char *errstr,
                               size_t errstr_size) {
    if (!a) return AAS_ERR_OK;
    int64_t now = aas_kafka_now_ms();
    char broker[256], text[512];
    pthread_mutex_lock(&a->mu);
    int up = a->overflow;
    for (size_t i = 0; i < a->n; i++) {
        if (!a->b[i].up) continue;
        up = 1;
        if (now - a->b[i].up_since_ms >= AAS_KAFKA_AUTH_STABLE_MS) a->reached = 1;
    }
    aas_kafka_fail_t kind = a->kind;
    /* A SASL or TLS failure counts until a broker takes the client (up
     * since); librdkafka's "closed at once" only while none ever did. */
    int failing = !up && (kind == AAS_KAFKA_FAIL_HINT ? !a->reached
                          : kind != AAS_KAFKA_FAIL_NONE ? a->fail_ms >= a->up_ms : 0);
    if (failing) {
        memcpy(broker, a->broker, sizeof(broker));
        memcpy(text, a->text, sizeof(text));
    }
    pthread_mutex_unlock(&a->mu);
    if (!failing) return AAS_ERR_OK;
    char proto[32], mech[64], user[256], who[400], where[300];
    aas_kafka_conf_str(rk, "security.protocol", proto, sizeof(proto));
    aas_kafka_conf_str(rk, "sasl.mechanisms", mech, sizeof(mech));
    aas_kafka_conf_str(rk, "sasl.username", user, sizeof(user));
    where[0] = '\0';
    if (broker[0]) snprintf(where, sizeof(where), " (broker %s)", broker);
    const char *hint = aas_kafka_fail_hint(kind, mech);
    if (kind == AAS_KAFKA_FAIL_SASL) {
        /* "SASL authentication error: Authentication failed: ..." reads
         * twice after our own words. */
        static const char dup[] = "SASL authentication error: ";
        const char *t = strncmp(text, dup, sizeof(dup) - 1) ? text : text + sizeof(dup) - 1;
        if (user[0] && strcmp(mech, "GSSAPI") && strcmp(mech, "OAUTHBEARER"))
            snprintf(who, sizeof(who), "SASL %s as user %s", mech[0] ? mech : "?", user);
        else
            snprintf(who, sizeof(who), "SASL %s", mech[0] ? mech : "?");
        return aas_err_set(errstr, errstr_size, AAS_ERR_AUTH,
                           "Kafka authentication failed (%s): %s%s; %s", who, t, where, hint);
    }
    if (kind == AAS_KAFKA_FAIL_TLS)
        return aas_err_set(errstr, errstr_size, AAS_ERR_AUTH,
                           "Kafka TLS handshake failed (security.protocol %s): %s%s; %s",
                           proto[0] ? proto : "?", text, where, hint);
    return aas_err_set(errstr, errstr_size, AAS_ERR_AUTH,
                       "Kafka closed every connection at once, it may require authentication "
                       "(security.protocol %s): %s%s; %s", proto[0] ? proto : "?", text,
                       where, hint);
}
