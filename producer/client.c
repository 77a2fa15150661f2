/* client.c - publish jobs and read results; see client.h. */
#include "client.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "jobsig.h"
#include "kafka.h"
#include "lane.h"
#include "log.h"
#include "model.h"

/* The client's settings, parsed once. */
typedef struct {
    int64_t timeout_ms;         /* client.timeout.ms */
    int64_t result_max_mb;      /* client.result.max.mb */
    int64_t message_max_bytes;  /* client.message.max.bytes */
    int64_t text_max_bytes;     /* client.text.max.bytes */
    const char *tenant;         /* client.tenant, NULL = none */
    int redis_required;         /* client.redis.required */
    const char *key;            /* client.key, NULL = jobs go unsigned */
} aas_client_conf_t;

const aas_conf_def_t aas_client_conf_defs[] = {
    {"client.timeout.ms", AAS_CONF_INT, "30000", 100, 86400000, 0,
     "How long a publication may take before it is reported failed",
     AAS_CONF_FIELD(aas_client_conf_t, timeout_ms)},
    {"client.result.max.mb", AAS_CONF_INT, "256", 1, 1 << 16, 0,
     "Largest result accepted from Redis, MiB",
     AAS_CONF_FIELD(aas_client_conf_t, result_max_mb)},
    {"client.message.max.bytes", AAS_CONF_INT, "1000000", 1024, 1LL << 30, 0,
     "Largest encoded job the client publishes (refused before sending, naming the limit). "
     "Jobs are also held to librdkafka's message.max.bytes (kafka.message.max.bytes: this "
     "key + 1024 unless set) and to the topic's max.message.bytes read from the broker "
     "(Kafka's default 1048588), each less 1024 for key and framing, and on the dev "
     "broker to 1048576. Keep it <= the workers' job.max.bytes. Larger data: a data set "
     "(aas-producer dataset put)",
     AAS_CONF_FIELD(aas_client_conf_t, message_max_bytes)},
    {"client.text.max.bytes", AAS_CONF_INT, "1048576", 1, 1LL << 30, 0,
     "Longest job text the client publishes (refused before sending); keep it <= the "
     "workers' job.max.text.bytes (default 1048576), which FAIL a longer text",
     AAS_CONF_FIELD(aas_client_conf_t, text_max_bytes)},
    {"client.tenant", AAS_CONF_STR, NULL, 0, 0, 0,
     "Tenant of the jobs this client submits when a job names none (metering and quotas, "
     "docs/sharing.md); [A-Za-z0-9_.-], at most 128. Unset: no tenant (metered as default)",
     AAS_CONF_FIELD(aas_client_conf_t, tenant)},
    {"client.redis.required", AAS_CONF_BOOL, "false", 0, 0, 0,
     "Refuse to publish a job while Redis is unreachable (AAS_ERR_REDIS) instead of "
     "publishing it unchecked (it then runs when Redis is back). aas-gateway defaults it "
     "to true: its caller is told 503 and nothing was sent",
     AAS_CONF_FIELD(aas_client_conf_t, redis_required)},
    {"client.key", AAS_CONF_STR, NULL, 0, 0, 1,
     "API key that signs every job this client publishes (header aas.auth; needed by "
     "workers with worker.auth = keys, docs/sharing.md#access). The key's tenant must be "
     "the jobs' tenant: set client.tenant to it. Secret: env AAS_CLIENT_KEY or "
     "client.key.file. Unset: jobs go unsigned",
     AAS_CONF_FIELD(aas_client_conf_t, key)},
    AAS_CONF_END};

/* The dev broker (librdkafka's mock cluster, cluster id "mockCluster...")
 * keeps 5 MiB a partition and drops older messages to make room: a large
 * message would silently evict the backlog or itself.  Clients keep to
 * this there, whatever client.message.max.bytes says. */
#define AAS_CLIENT_DEVBROKER_MAX_BYTES (1 << 20)
/* Room for a message's key (a job id) and record framing beyond its value. */
#define AAS_CLIENT_FRAMING_BYTES 1024

struct aas_client_s {
    const aas_conf_t *conf;
    aas_client_conf_t c;
    char topic[256];        /* inference jobs: the normal lane's topic */
    aas_lanes_t lanes;      /* inference topic by priority (lane.h) */
    int lane_warm[AAS_LANE_MAX]; /* a lane topic's metadata asked for (once) */
    char train_topic[256];  /* training jobs */
    rd_kafka_t *rk;
    /* The producer's authentication failures (aas_client_error_cb) and
     * broker states; NULL for a sharer (via's counts). */
    aas_kafka_auth_t *auth;
    aas_store_t *store;
    aas_codec_t *codec;
    aas_client_delivery_cb *cb;
    void *cb_opaque;
    size_t failed;       /* since last flush */
    int warm[2];         /* topic metadata fetched: infer, train */
    int timeout_ms;
    int idempotent;      /* resubmitting a known id with the same payload is ok */
    int devbroker;       /* the cluster is aas-devbroker's mock cluster */
    int64_t producer_max;  /* librdkafka's message.max.bytes, as in effect */
    /* Each jobs topic's max.message.bytes from the broker (infer, train),
     * fetched once with its metadata; 0 = not known, topic_why says why. */
    int64_t topic_max[2];
    char topic_why[2][256];
    /* Shared producers (aas_client_new_shared).  A sharer has rk NULL and
     * publishes through via->rk; via->mu guards every sharer's outstanding
     * and settled, which via's delivery callback fills on the polling
     * thread and the sharer's flush empties on its own thread. */
    aas_client_t *via;
    pthread_mutex_t mu;          /* a producer's (via == NULL); mu_ok once made */
    int mu_ok;
    pthread_cond_t settled_cv;   /* a sharer's; cv_ok once made */
    int cv_ok;
    size_t outstanding;          /* a sharer's jobs not reported yet */
    struct aas_client_msg_s *settled; /* reported, not settled yet (newest first) */
    int64_t quota_retry_ms;      /* the last AAS_ERR_QUOTA's retry-after */
    int signs;                   /* client.key is set: sign is its key */
    aas_jobsig_key_t sign;
};

/* The producer a client publishes through. */
static rd_kafka_t *aas_client_rk(const aas_client_t *c) { return c->via ? c->via->rk : c->rk; }

/* Which limit of one job's encoded size binds (aas_client_job_limit). */
typedef enum {
    AAS_CLIENT_LIM_CLIENT,     /* client.message.max.bytes */
    AAS_CLIENT_LIM_PRODUCER,   /* librdkafka's message.max.bytes, less framing */
    AAS_CLIENT_LIM_TOPIC,      /* the topic's max.message.bytes, less framing */
    AAS_CLIENT_LIM_DEVBROKER   /* AAS_CLIENT_DEVBROKER_MAX_BYTES */
} aas_client_lim_t;

/* "1482113" -> "1,482,113" into buf (at least 32 bytes). */
static const char *aas_client_commas(uint64_t v, char *buf) {
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v), k = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

/* The largest encoded job the client sends to the jobs topic (train: the
 * training topic): the smallest of its limits, each made a limit on the
 * message value by taking off room for key and framing.  *which says
 * which one binds (the first of the smallest, in enum order). */
static size_t aas_client_job_limit(const aas_client_t *c, int train,
                                   aas_client_lim_t *which) {
    int64_t lim[4] = {c->c.message_max_bytes, c->producer_max - AAS_CLIENT_FRAMING_BYTES,
                      c->topic_max[train] ? c->topic_max[train] - AAS_CLIENT_FRAMING_BYTES
                                          : INT64_MAX,
                      c->devbroker ? AAS_CLIENT_DEVBROKER_MAX_BYTES : INT64_MAX};
    int best = 0;
    for (int i = 1; i < 4; i++)
        if (lim[i] < lim[best]) best = i;
    *which = (aas_client_lim_t)best;
    return lim[best] > 0 ? (size_t)lim[best] : 0;
}

/* The limits known for the jobs topic, for an error: "client...=N,
 * producer kafka.message.max.bytes=N, topic T max.message.bytes=N". */
static void aas_client_limits_str(const aas_client_t *c, int train, char *buf,
                                  size_t size) {
    const char *topic = train ? c->train_topic : c->topic;
    char tmax[300];
    if (c->topic_max[train])
        snprintf(tmax, sizeof(tmax), "=%lld", (long long)c->topic_max[train]);
    else
        snprintf(tmax, sizeof(tmax), " not known (%s)",
                 c->topic_why[train][0] ? c->topic_why[train] : "not asked yet");
    snprintf(buf, size, "client.message.max.bytes=%lld, producer kafka.message.max.bytes=%lld, "
             "topic %s max.message.bytes%s%s; the producer's and the topic's less %d bytes "
             "for key and framing", (long long)c->c.message_max_bytes,
             (long long)c->producer_max, topic, tmax,
             c->devbroker ? ", dev broker 1048576" : "", AAS_CLIENT_FRAMING_BYTES);
}

/* Where larger input goes instead: the workers' own limits, and data sets
 * for training data. */
static const char *aas_client_too_large_tail(int train) {
    return train ? "the workers take jobs up to their job.max.bytes (default 67108864); "
                   "or send the data as a data set: aas-producer dataset put, then "
                   "train --dataset NAME"
                 : "the workers take jobs up to their job.max.bytes (default 67108864) "
                   "and texts up to job.max.text.bytes (default 1048576); or split the "
                   "input over several jobs (submit --rows-per-job N)";
}

/* AAS_ERR_TOO_LARGE for a job of len bytes over the limit `which`. */
static aas_err_t aas_client_too_large(const aas_client_t *c, const char *id, int train,
                                      size_t len, size_t limit, aas_client_lim_t which,
                                      char *errstr, size_t errstr_size) {
    char n1[32], n2[32], limits[1024], over[512], raise[640];
    const char *topic = train ? c->train_topic : c->topic;
    switch (which) {
    case AAS_CLIENT_LIM_CLIENT:
        snprintf(over, sizeof(over), "client.message.max.bytes=%lld",
                 (long long)c->c.message_max_bytes);
        snprintf(raise, sizeof(raise), "raise client.message.max.bytes (-X "
                 "client.message.max.bytes=N; librdkafka's kafka.message.max.bytes follows "
                 "it unless set) and, on the broker, the topic's max.message.bytes to N + %d",
                 AAS_CLIENT_FRAMING_BYTES);
        break;
    case AAS_CLIENT_LIM_PRODUCER:
        snprintf(over, sizeof(over), "the producer's kafka.message.max.bytes=%lld less %d "
                 "bytes for the key and framing", (long long)c->producer_max,
                 AAS_CLIENT_FRAMING_BYTES);
        snprintf(raise, sizeof(raise), "leave kafka.message.max.bytes unset (it follows "
                 "client.message.max.bytes) or raise it, and the topic's max.message.bytes "
                 "on the broker with it");
        break;
    case AAS_CLIENT_LIM_TOPIC:
        snprintf(over, sizeof(over), "topic %s's max.message.bytes=%lld less %d bytes for "
                 "the key and framing", topic, (long long)c->topic_max[train],
                 AAS_CLIENT_FRAMING_BYTES);
        snprintf(raise, sizeof(raise), "raise the topic's max.message.bytes on the broker "
                 "(kafka-configs.sh --alter --entity-type topics --entity-name %s "
                 "--add-config max.message.bytes=N)", topic);
        break;
    default:
        snprintf(over, sizeof(over), "the dev broker's %d-byte limit (it keeps 5 MiB a "
                 "partition and would drop larger messages)", AAS_CLIENT_DEVBROKER_MAX_BYTES);
        snprintf(raise, sizeof(raise), "use real Kafka (docs/kafka-local.md) with larger "
                 "limits");
        break;
    }
    aas_client_limits_str(c, train, limits, sizeof(limits));
    return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                       "job %s of %s bytes (encoded) is over %s: its message limit is %s "
                       "bytes (%s); %s; %s", id, aas_client_commas(len, n1), over,
                       aas_client_commas(limit, n2), limits, raise,
                       aas_client_too_large_tail(train));
}

/* Per-message opaque: what the delivery report needs. */
typedef struct aas_client_msg_s {
    aas_client_t *owner; /* the client that submitted it */
    struct aas_client_msg_s *next; /* owner's settled list */
    rd_kafka_resp_err_t kerr;      /* the report, kept for the owner */
    size_t len;
    char id[AAS_ID_MAX + 1];
    char model[AAS_ID_MAX + 1];
    char tenant[AAS_ID_MAX + 1];   /* "" = none */
    char hash[17];       /* payload hash the id was claimed with */
    int64_t submit_ms;
    int train;           /* sent to the training topic */
    /* Failed because the client cannot authenticate: why (owned), set by
     * the delivery report; NULL otherwise. */
    char *auth_why;
} aas_client_msg_t;

/* A job that will not run (its publication failed) gives its in-flight
 * quota slot back; its token is not refunded (docs/sharing.md#quotas). */
static void aas_client_quota_release(aas_client_t *c, const char *id, const char *tenant) {
    char why[256];
    const char *t = tenant, *i = id;
    if (aas_store_quota_release_many(c->store, &t, &i, 1, why, sizeof(why)))
        AAS_LOG(AAS_LOG_WARN, "client", "job=%s quota slot not released: %s", id, why);
}

/* A job's admission by its tenant's quota, after its id is claimed and
 * before it is produced (docs/sharing.md#quotas).  Refused: the claim is
 * given back so the id can be retried, AAS_ERR_QUOTA.  Redis away: the job
 * goes unchecked, as the claim does (a worker admits it). */
static aas_err_t aas_client_quota_admit(aas_client_t *c, const aas_job_t *j, const char *hash,
                                        char *errstr, size_t errstr_size) {
    /* While no tenant has a quota (asked at most once a second), there is
     * nothing to admit against: no round trip. */
    if (!aas_store_quotas_active(c->store)) return AAS_ERR_OK;
    aas_quota_admit_t q;
    char why[512];
    aas_err_t err = aas_store_quota_admit(c->store, j->tenant, j->id, &q, why, sizeof(why));
    if (err && aas_err_is_retriable(err) && !c->c.redis_required) {
        AAS_LOG(AAS_LOG_WARN, "client", "job=%s quota not checked: %s", j->id, why);
        return AAS_ERR_OK;
    }
    if (!err && (q.verdict == AAS_QUOTA_RATE || q.verdict == AAS_QUOTA_INFLIGHT)) {
        aas_quota_refusal_format(j->tenant, &q, why, sizeof(why));
        c->quota_retry_ms = q.retry_ms;
        err = AAS_ERR_QUOTA;
    }
    if (!err) return AAS_ERR_OK;
    char uwhy[256];
    if (aas_store_job_unclaim(c->store, j->id, hash, uwhy, sizeof(uwhy)))
        AAS_LOG(AAS_LOG_WARN, "client", "job=%s id not released: %s", j->id, uwhy);
    return aas_err_set(errstr, errstr_size, err, "job %s: %s", j->id, why);
}

int64_t aas_client_last_retry_ms(const aas_client_t *c) { return c->quota_retry_ms; }

/* A publication's outcome, on the thread of the client that submitted it
 * (its Redis connection), after QUEUED was written for an acknowledged one
 * (qerr, qwhy: how that went): a failed one's id and quota slot released;
 * the callback told. */
static void aas_client_settle(aas_client_t *c, aas_client_msg_t *cm, aas_err_t qerr,
                              const char *qwhy) {
    char why[2048] = "";
    aas_err_t err = AAS_ERR_OK;
    if (!cm->kerr) {
        err = qerr;
        if (err) {
            snprintf(why, sizeof(why), "%s", qwhy);
            AAS_LOG(AAS_LOG_WARN, "client", "job=%s published but QUEUED not "
                    "recorded: %s", cm->id, why);
        }
    } else if (cm->auth_why) {
        err = AAS_ERR_AUTH;
        snprintf(why, sizeof(why), "publish failed: %s", cm->auth_why);
    } else if (cm->kerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        /* The broker's own limit (the topic's max.message.bytes, or its
         * message.max.bytes) is below what the client allowed: say which
         * limits are known and what to change, not just the broker's word. */
        char n1[32], limits[1024];
        aas_client_limits_str(c, cm->train, limits, sizeof(limits));
        err = AAS_ERR_TOO_LARGE;
        snprintf(why, sizeof(why), "publish failed: the broker refused the message of %s "
                 "bytes as too large (%s): the topic's max.message.bytes (or the broker's "
                 "message.max.bytes) is below that now (limits known to the client: %s); "
                 "raise the topic's max.message.bytes, or keep client.message.max.bytes at "
                 "least %d bytes below it so the client refuses such jobs before sending; %s",
                 aas_client_commas(cm->len, n1), rd_kafka_err2str(cm->kerr), limits,
                 AAS_CLIENT_FRAMING_BYTES, aas_client_too_large_tail(cm->train));
    } else {
        err = aas_kafka_err(cm->kerr);
        if (!err) err = AAS_ERR_KAFKA;
        snprintf(why, sizeof(why), "publish failed: %s", rd_kafka_err2str(cm->kerr));
    }
    if (cm->kerr) {
        char uwhy[256];
        if (aas_store_job_unclaim(c->store, cm->id, cm->hash, uwhy, sizeof(uwhy)))
            AAS_LOG(AAS_LOG_WARN, "client", "job=%s id not released: %s", cm->id, uwhy);
        aas_client_quota_release(c, cm->id, cm->tenant);
        c->failed++;
    }
    if (c->cb) c->cb(c->cb_opaque, cm->id, err, why);
    free(cm->auth_why);
    free(cm);
}

/* Reports per QUEUED round trip when settling (store.h pipelines them). */
#define AAS_CLIENT_SETTLE_CHUNK 64

/* Settle reported publications, oldest first: the QUEUED records of a
 * whole batch of acknowledgements are one Redis round trip (a report
 * settled alone cost one each, which bounded a submitting thread to about
 * 3,000 jobs/s), then each job's outcome in order.  Create-if-absent:
 * QUEUED never regresses a job a worker already took. */
static void aas_client_settle_list(aas_client_t *c, aas_client_msg_t *list) {
    while (list) {
        aas_client_msg_t *chunk[AAS_CLIENT_SETTLE_CHUNK];
        aas_store_queued_t q[AAS_CLIENT_SETTLE_CHUNK];
        size_t n = 0, nq = 0;
        for (; list && n < AAS_CLIENT_SETTLE_CHUNK; list = list->next) chunk[n++] = list;
        for (size_t i = 0; i < n; i++)
            if (!chunk[i]->kerr)
                q[nq++] = (aas_store_queued_t){.job_id = chunk[i]->id,
                                               .model = chunk[i]->model,
                                               .tenant = chunk[i]->tenant,
                                               .submit_ms = chunk[i]->submit_ms};
        if (nq) aas_store_job_queued_many(c->store, q, nq, NULL, 0);
        for (size_t i = 0, k = 0; i < n; i++) {
            aas_client_msg_t *cm = chunk[i];
            int ok = !cm->kerr;
            aas_client_settle(c, cm, ok ? q[k].err : AAS_ERR_OK, ok ? q[k].why : "");
            k += (size_t)ok;
        }
    }
}

/* Take the reports the producer's callback handed to client c (under the
 * producer's lock) and settle them here, in the order they came.  Returns
 * how many of c's jobs are still unreported. */
static size_t aas_client_settle_reported(aas_client_t *c) {
    aas_client_t *p = c->via ? c->via : c;
    pthread_mutex_lock(&p->mu);
    aas_client_msg_t *list = c->settled;
    c->settled = NULL;
    size_t left = c->outstanding;
    pthread_mutex_unlock(&p->mu);
    aas_client_msg_t *in_order = NULL; /* the list is newest first */
    while (list) {
        aas_client_msg_t *next = list->next;
        list->next = in_order;
        in_order = list;
        list = next;
    }
    aas_client_settle_list(c, in_order);
    return left;
}

static void aas_client_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                             void *opaque) {
    aas_client_t *p = opaque; /* the producer's own client */
    aas_client_msg_t *cm = m->_private;
    cm->kerr = m->err;
    cm->len = m->len;
    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT ||
        m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
        /* Purged because the client cannot authenticate (or timed out
         * meanwhile): the report says that, not "Purged in queue". */
        char why[1024];
        if (aas_kafka_auth_check(p->auth, rk, why, sizeof(why))) cm->auth_why = strdup(why);
    }
    aas_client_t *owner = cm->owner;
    /* Only handed over here: the owner's thread settles its reports in
     * batches (aas_client_settle_reported), with its own Redis connection.
     * For the producer's own jobs that is this thread, right after the
     * poll or flush that served this report. */
    pthread_mutex_lock(&p->mu);
    cm->next = owner->settled;
    owner->settled = cm;
    owner->outstanding--;
    if (owner->cv_ok) pthread_cond_broadcast(&owner->settled_cv);
    pthread_mutex_unlock(&p->mu);
}

/* librdkafka's error events, on the thread that serves the producer's
 * queue: logged, and an authentication failure kept for the waits. */
static void aas_client_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    aas_client_t *p = opaque; /* the producer's own client */
    aas_kafka_error_note(p->auth, rk, err, reason);
}

/* AAS_ERR_AUTH, errstr saying why, when the client cannot authenticate to
 * Kafka now (aas_kafka_auth_check): librdkafka keeps retrying a refused
 * login, so a wait would otherwise run its whole timeout.  It reports the
 * refusal only through the producer's queue: with serve, a client's own
 * producer serves it here first (delivery reports with it, which are only
 * handed over, aas_client_dr_cb); a sharer's poller serves via's. */
static aas_err_t aas_client_auth(aas_client_t *c, int serve, char *errstr, size_t errstr_size) {
    aas_client_t *p = c->via ? c->via : c;
    if (serve && !c->via) (void)rd_kafka_poll(c->rk, 0 /* ms */);
    return aas_kafka_auth_check(p->auth, p->rk, errstr, errstr_size);
}

/* When the client cannot authenticate, fail the jobs still queued in its
 * producer now rather than at message.timeout.ms: their delivery reports
 * (served next by the caller) say why (aas_client_dr_cb) and release
 * their ids and quota slots (aas_client_settle), as any failed
 * publication.  Only while no broker was ever up: its jobs then wait
 * unpartitioned, without idempotence sequence numbers; a producer that
 * was in (credentials revoked since) would leave a gap in a partition's
 * sequence, so its jobs are left to message.timeout.ms, which librdkafka
 * handles (their reports still say why).  The producer's own client; 1
 * if purged. */
static int aas_client_purge_auth(aas_client_t *c) {
    if (rd_kafka_outq_len(c->rk) <= 0 || aas_kafka_auth_ever_up(c->auth) ||
        !aas_kafka_auth_check(c->auth, c->rk, NULL, 0))
        return 0;
    rd_kafka_resp_err_t e = rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE);
    if (e) {
        AAS_LOG(AAS_LOG_WARN, "client", "purge: %s", rd_kafka_err2str(e));
        return 0;
    }
    return 1;
}

/* rd_kafka_flush() of the producer's own client, up to timeout_ms, in
 * 100 ms slices: between them, jobs still queued are failed as soon as
 * the client cannot authenticate (the next slice serves their reports). */
static rd_kafka_resp_err_t aas_client_drain(aas_client_t *c, int timeout_ms) {
    int64_t deadline = aas_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        int64_t left = (deadline - aas_mono_us()) / 1000;
        rd_kafka_resp_err_t kerr =
            rd_kafka_flush(c->rk, (int)(left < 100 ? (left > 0 ? left : 0) : 100));
        if (kerr != RD_KAFKA_RESP_ERR__TIMED_OUT || aas_mono_us() >= deadline) return kerr;
        aas_client_purge_auth(c);
    }
}

/* rd_kafka_metadata() of topic rkt (NULL: brokers only) within
 * timeout_ms.  It blocks without serving error events, and while the
 * login is refused it waits for a usable broker to the end: so it is
 * asked in slices (100 ms, doubling up to 2 s so that a slow answer
 * still has time), authentication looked at in between.  AAS_ERR_OK with
 * *md (the caller's to destroy); AAS_ERR_AUTH; else AAS_ERR_KAFKA or
 * AAS_ERR_TIMEOUT with librdkafka's word. */
static aas_err_t aas_client_md(aas_client_t *c, rd_kafka_topic_t *rkt, int timeout_ms,
                               const struct rd_kafka_metadata **md, char *errstr,
                               size_t errstr_size) {
    int64_t deadline = aas_mono_us() + (int64_t)timeout_ms * 1000;
    int slice = 100;
    for (;;) {
        int64_t left = (deadline - aas_mono_us()) / 1000;
        const struct rd_kafka_metadata *got = NULL;
        rd_kafka_resp_err_t kerr =
            rd_kafka_metadata(aas_client_rk(c), 0 /* all_topics */, rkt, &got,
                              left < slice ? (int)(left > 1 ? left : 1) : slice);
        if (!kerr) {
            *md = got;
            return AAS_ERR_OK;
        }
        aas_err_t err = aas_client_auth(c, 1, errstr, errstr_size);
        if (err) return err;
        if ((kerr != RD_KAFKA_RESP_ERR__TIMED_OUT && kerr != RD_KAFKA_RESP_ERR__TRANSPORT) ||
            aas_mono_us() >= deadline)
            return aas_err_set(errstr, errstr_size,
                               aas_kafka_err(kerr) ? aas_kafka_err(kerr) : AAS_ERR_KAFKA, "%s",
                               rd_kafka_err2str(kerr));
        if (slice < 2000) slice *= 2;
    }
}

/* What every client has: settings, topics, codec, Redis. */
static aas_err_t aas_client_init(const aas_conf_t *conf, aas_client_t **out, char *errstr,
                                 size_t errstr_size) {
    aas_client_t *c = calloc(1, sizeof(*c));
    if (!c) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    *out = c;
    c->conf = conf;
    aas_conf_fill_defs(conf, aas_client_conf_defs, &c->c);
    c->timeout_ms = (int)c->c.timeout_ms;
    snprintf(c->topic, sizeof(c->topic), "%s", aas_conf_get(conf, "topic.infer"));
    snprintf(c->train_topic, sizeof(c->train_topic), "%s",
             aas_conf_get(conf, "topic.train"));
    aas_err_t err;
    if (c->c.key) {
        size_t klen = strlen(c->c.key);
        /* The key itself is never echoed: errors and logs would keep it. */
        if (klen < AAS_APIKEY_MIN_LEN || klen > AAS_APIKEY_MAX_LEN)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "client.key must be %d to %d characters (this one has %zu)",
                               AAS_APIKEY_MIN_LEN, AAS_APIKEY_MAX_LEN, klen);
        if ((err = aas_jobsig_key_from_apikey(c->c.key, klen, &c->sign)))
            return aas_err_set(errstr, errstr_size, err, "client.key: SHA-256 failed");
        c->signs = 1;
    }
    if ((err = aas_lanes_from_conf(conf, &c->lanes, errstr, errstr_size))) return err;
    if ((err = aas_codec_new(&c->codec, errstr, errstr_size))) return err;
    return aas_cli_store_new(conf, &c->store, errstr, errstr_size);
}

aas_err_t aas_client_new(const aas_conf_t *conf, aas_client_t **out,
                         char *errstr, size_t errstr_size) {
    aas_client_t *c = NULL;
    aas_err_t err = aas_client_init(conf, &c, errstr, errstr_size);
    if (err) goto fail;
    if (pthread_mutex_init(&c->mu, NULL)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    c->mu_ok = 1;
    char timeout[24], max_bytes[24];
    snprintf(timeout, sizeof(timeout), "%d", c->timeout_ms);
    /* librdkafka counts the key and the record's framing against its own
     * message.max.bytes (1000000 by default), so a job just under
     * client.message.max.bytes failed there, as "Broker: Message size too
     * large".  It follows the client's limit unless kafka.message.max.bytes
     * says otherwise (capped at librdkafka's maximum). */
    int64_t wire_max = c->c.message_max_bytes + AAS_CLIENT_FRAMING_BYTES;
    snprintf(max_bytes, sizeof(max_bytes), "%lld",
             (long long)(wire_max < 1000000000 ? wire_max : 1000000000));
    const char *defs[] = {"enable.idempotence", "true", "acks", "all",
                          "linger.ms", "1", "message.timeout.ms", timeout,
                          "message.max.bytes", max_bytes, NULL};
    rd_kafka_conf_t *kc;
    if ((err = aas_kafka_auth_new(&c->auth, errstr, errstr_size))) goto fail;
    if ((err = aas_kafka_conf_new(conf, "aas-client", RD_KAFKA_PRODUCER, defs, &kc, errstr,
                                  errstr_size)))
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(kc, aas_client_dr_cb);
    /* aas_kafka's error callback, plus the authentication failures the
     * waits stop at (the opaque is this client). */
    rd_kafka_conf_set_error_cb(kc, aas_client_error_cb);
    rd_kafka_conf_set_opaque(kc, c);
    if ((err = aas_kafka_auth_watch(c->auth, kc, errstr, errstr_size))) {
        rd_kafka_conf_destroy(kc);
        goto fail;
    }
    char kerr[512];
    if (!(c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, kerr, sizeof(kerr)))) {
        rd_kafka_conf_destroy(kc);
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "producer: %s", kerr);
        goto fail;
    }
    /* The producer's message.max.bytes as in effect (ours, or the
     * configuration's kafka.message.max.bytes): the size check names it. */
    char val[32];
    size_t val_size = sizeof(val);
    char *end = NULL;
    if (rd_kafka_conf_get(rd_kafka_conf(c->rk), "message.max.bytes", val, &val_size) !=
            RD_KAFKA_CONF_OK ||
        (c->producer_max = strtoll(val, &end, 10)) <= 0 || *end != '\0') {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA,
                          "producer: cannot read its message.max.bytes");
        goto fail;
    }
    *out = c;
    return AAS_ERR_OK;
fail:
    aas_client_destroy(c);
    return err;
}

aas_err_t aas_client_new_shared(const aas_conf_t *conf, aas_client_t *via,
                                aas_client_t **out, char *errstr, size_t errstr_size) {
    if (!via || via->via)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "a shared producer must be a client's own");
    aas_client_t *c = NULL;
    aas_err_t err = aas_client_init(conf, &c, errstr, errstr_size);
    pthread_condattr_t ca;
    if (!err && !pthread_condattr_init(&ca)) {
        /* Waits are measured on the monotonic clock, as every timeout here. */
        if (!pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) &&
            !pthread_cond_init(&c->settled_cv, &ca))
            c->cv_ok = 1;
        pthread_condattr_destroy(&ca);
    }
    if (!err && !c->cv_ok) err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (err) {
        aas_client_destroy(c);
        return err;
    }
    c->via = via;
    c->producer_max = via->producer_max;
    *out = c;
    return AAS_ERR_OK;
}

/* Serve the producer's delivery reports (up to timeout_ms for one), then
 * settle those of its own jobs. */
static int aas_client_serve(aas_client_t *c, int timeout_ms) {
    int n = rd_kafka_poll(c->rk, timeout_ms);
    if (aas_client_purge_auth(c)) n += rd_kafka_poll(c->rk, 0 /* ms: the purge's reports */);
    aas_client_settle_reported(c);
    return n;
}

int aas_client_poll(aas_client_t *c, int timeout_ms) {
    return c->rk ? aas_client_serve(c, timeout_ms) : 0;
}

aas_err_t aas_client_wake_fd(aas_client_t *c, int fd, char *errstr, size_t errstr_size) {
    if (!c->rk)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "wake fd: the client shares another's producer");
    /* Delivery reports are served from the main queue (rd_kafka_poll). */
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(c->rk);
    if (!q) return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "wake fd: no main queue");
    rd_kafka_queue_io_event_enable(q, fd, "w", 1);
    rd_kafka_queue_destroy(q);
    return AAS_ERR_OK;
}

/* A sharer's flush: wait until via's poller has reported each of its jobs
 * (or timeout_ms), then settle them here.  Returns how many are left. */
static size_t aas_client_flush_shared(aas_client_t *c, int timeout_ms) {
    aas_client_t *p = c->via;
    struct timespec until = aas_mono_deadline(timeout_ms);
    pthread_mutex_lock(&p->mu);
    while (c->outstanding &&
           pthread_cond_timedwait(&c->settled_cv, &p->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&p->mu);
    return aas_client_settle_reported(c);
}

size_t aas_client_abandon(aas_client_t *c) {
    if (c->via) return 0; /* librdkafka purges a whole producer, not one job */
    int n = rd_kafka_outq_len(c->rk);
    if (n <= 0) return 0;
    /* Fail what is left so its delivery reports run (they release the ids
     * and free each message's state); rd_kafka_destroy() alone would drop
     * them unreported. */
    rd_kafka_resp_err_t e =
        rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    if (e) AAS_LOG(AAS_LOG_WARN, "client", "purge: %s", rd_kafka_err2str(e));
    rd_kafka_flush(c->rk, 1000); /* serves the purge's reports */
    aas_client_settle_reported(c);
    c->failed = 0;
    return (size_t)n;
}

void aas_client_destroy(aas_client_t *c) {
    if (!c) return;
    if (c->via && aas_client_flush_shared(c, c->via->timeout_ms + 5000)) {
        /* Its reports would reach freed memory: keep it (a poller that
         * stopped too early; via's message timeout reports every job). */
        AAS_LOG(AAS_LOG_ERROR, "client", "%zu job(s) not reported at close: client kept",
                c->outstanding);
        return;
    }
    if (c->cv_ok) pthread_cond_destroy(&c->settled_cv);
    if (c->rk) {
        if (aas_client_drain(c, c->timeout_ms)) {
            AAS_LOG(AAS_LOG_WARN, "client", "%d job(s) not acknowledged at close",
                    rd_kafka_outq_len(c->rk));
            aas_client_abandon(c);
        }
        aas_client_settle_reported(c);
        rd_kafka_destroy(c->rk);
    }
    aas_kafka_auth_destroy(c->auth); /* after the producer: its interceptor holds it */
    if (c->mu_ok) pthread_mutex_destroy(&c->mu);
    aas_store_destroy(c->store);
    aas_codec_destroy(c->codec);
    free(c);
}

size_t aas_client_text_max_bytes(const aas_client_t *c) {
    return (size_t)c->c.text_max_bytes;
}

void aas_client_set_idempotent(aas_client_t *c, int on) { c->idempotent = on != 0; }

void aas_client_set_delivery_cb(aas_client_t *c, aas_client_delivery_cb *cb,
                                void *opaque) {
    c->cb = cb;
    c->cb_opaque = opaque;
}

aas_err_t aas_client_job_id(char *buf, size_t size) {
    unsigned char r[16];
    if (size < 33) return AAS_ERR_INVAL;
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) return AAS_ERR_IO;
    for (int i = 0; i < 16; i++) snprintf(buf + 2 * i, 3, "%02x", r[i]);
    return AAS_ERR_OK;
}

/* Fetch a topic's metadata once before its first message: otherwise the
 * first produce to a topic librdkafka has not seen waits for its 1 s
 * metadata timer (measured: every burst from a fresh client arrived 1 s
 * late).  Failure is not fatal here; produce reports real problems. */
/* The topic's max.message.bytes, once, by DescribeConfigs (the broker's
 * own default for topics that do not set it): messages over it are
 * refused by the broker, so the size check names it.  Failure (an old
 * broker, no DescribeConfigs permission on the topic, a timeout) leaves
 * the limit unknown (0) with the reason; the check then uses the
 * producer's limits only, and a refusal by the broker is still explained
 * by the delivery report.  Bounded by client.timeout.ms, at most 5 s.
 * AAS_ERR_AUTH (errstr) if the client cannot authenticate meanwhile, else
 * AAS_ERR_OK. */
static aas_err_t aas_client_topic_limit(aas_client_t *c, const char *topic, int train,
                                        char *errstr, size_t errstr_size) {
    char *why = c->topic_why[train];
    size_t why_size = sizeof(c->topic_why[train]);
    aas_err_t aerr = AAS_ERR_OK;
    c->topic_max[train] = 0;
    if (c->devbroker) { /* the mock cluster has no topic configs */
        snprintf(why, why_size, "the dev broker has no per-topic limit");
        return AAS_ERR_OK;
    }
    int timeout_ms = c->timeout_ms < 5000 ? c->timeout_ms : 5000;
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC,
                                                                 topic);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(aas_client_rk(c), RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(aas_client_rk(c));
    rd_kafka_event_t *ev = NULL;
    char kerr[256];
    if (!res || !opts || !q) {
        snprintf(why, why_size, "out of memory");
        goto out;
    }
    if (rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, kerr, sizeof(kerr))) {
        snprintf(why, why_size, "DescribeConfigs: %.200s", kerr);
        goto out;
    }
    rd_kafka_DescribeConfigs(aas_client_rk(c), &res, 1, opts, q); /* copies res */
    /* The request timeout answers by itself; the margin covers a slow
     * event hand-over.  Polled in slices, to stop at a refused login. */
    int64_t until = aas_mono_us() + (int64_t)(timeout_ms + 1000) * 1000;
    while (!(ev = rd_kafka_queue_poll(q, 100 /* ms */)) && aas_mono_us() < until &&
           !(aerr = aas_client_auth(c, 1, errstr, errstr_size))) {
    }
    const rd_kafka_DescribeConfigs_result_t *r = ev ? rd_kafka_event_DescribeConfigs_result(ev)
                                                    : NULL;
    size_t n = 0, ne = 0;
    const rd_kafka_ConfigResource_t **rs =
        r ? rd_kafka_DescribeConfigs_result_resources(r, &n) : NULL;
    if (aerr) {
        snprintf(why, why_size, "DescribeConfigs: no answer, Kafka authentication failed");
    } else if (!ev) {
        snprintf(why, why_size, "DescribeConfigs: no answer in %d ms", timeout_ms + 1000);
    } else if (rd_kafka_event_error(ev)) {
        snprintf(why, why_size, "DescribeConfigs: %.200s", rd_kafka_event_error_string(ev));
    } else if (!r || n != 1 || !rs) {
        snprintf(why, why_size, "DescribeConfigs: unexpected answer");
    } else if (rd_kafka_ConfigResource_error(rs[0])) {
        const char *e = rd_kafka_ConfigResource_error_string(rs[0]);
        snprintf(why, why_size, "DescribeConfigs: %.200s",
                 e ? e : rd_kafka_err2str(rd_kafka_ConfigResource_error(rs[0])));
    } else {
        const rd_kafka_ConfigEntry_t **es = rd_kafka_ConfigResource_configs(rs[0], &ne);
        snprintf(why, why_size, "DescribeConfigs: no max.message.bytes in the answer");
        for (size_t i = 0; es && i < ne; i++) {
            const char *name = rd_kafka_ConfigEntry_name(es[i]);
            const char *value = rd_kafka_ConfigEntry_value(es[i]);
            if (!name || strcmp(name, "max.message.bytes")) continue;
            char *end = NULL;
            long long v = value ? strtoll(value, &end, 10) : 0;
            if (value && *end == '\0' && v > 0) {
                c->topic_max[train] = v;
                why[0] = '\0';
            } else {
                snprintf(why, why_size, "DescribeConfigs: max.message.bytes '%.40s'",
                         value ? value : "(null)");
            }
            break;
        }
    }
out:
    if (!c->topic_max[train])
        AAS_LOG(AAS_LOG_INFO, "client", "topic=%s max.message.bytes not known (%s); the "
                "size check uses the producer's limits", topic, why);
    if (ev) rd_kafka_event_destroy(ev);
    if (q) rd_kafka_queue_destroy(q);
    if (opts) rd_kafka_AdminOptions_destroy(opts);
    if (res) rd_kafka_ConfigResource_destroy(res);
    return aerr;
}

/* Ask for the topic's metadata, so that its first produce need not wait
 * for librdkafka's next scan; a failure is logged (the produce says more),
 * except that a client that cannot authenticate gets AAS_ERR_AUTH
 * (errstr) at once. */
static aas_err_t aas_client_metadata(aas_client_t *c, const char *topic, char *errstr,
                                     size_t errstr_size) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(aas_client_rk(c), topic, NULL);
    if (!rkt) {
        AAS_LOG(AAS_LOG_WARN, "client", "metadata for %s: %s", topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return AAS_ERR_OK;
    }
    const struct rd_kafka_metadata *md = NULL;
    char why[1024];
    aas_err_t err = aas_client_md(c, rkt, c->timeout_ms, &md, why, sizeof(why));
    if (!err) rd_kafka_metadata_destroy(md);
    else if (err != AAS_ERR_AUTH)
        AAS_LOG(AAS_LOG_WARN, "client", "metadata for %s: %s", topic, why);
    rd_kafka_topic_destroy(rkt);
    return err == AAS_ERR_AUTH ? aas_err_set(errstr, errstr_size, err, "%s", why) : AAS_ERR_OK;
}

/* A topic's metadata and limit, once.  AAS_ERR_AUTH (errstr) if the
 * client cannot authenticate: not warm then, the next job asks again. */
static aas_err_t aas_client_warm(aas_client_t *c, const char *topic, int train, char *errstr,
                                 size_t errstr_size) {
    int *warm = &c->warm[train];
    if (*warm) return AAS_ERR_OK;
    aas_err_t err = aas_client_metadata(c, topic, errstr, errstr_size);
    if (err) return err;
    char *cluster = rd_kafka_clusterid(aas_client_rk(c), 0); /* known from that metadata */
    c->devbroker = cluster && strncmp(cluster, "mockCluster", 11) == 0;
    free(cluster);
    if ((err = aas_client_topic_limit(c, topic, train, errstr, errstr_size))) return err;
    *warm = 1;
    return AAS_ERR_OK;
}

/* The payload's hash for the id claim: CRC-64-AVRO of the job encoded
 * without its submit and deadline times (set anew at each submission), so
 * a resubmission of the same job hashes the same (docs/redis.md). */
static aas_err_t aas_client_payload_hash(aas_client_t *c, const aas_job_t *job, char *hex,
                                         char *errstr, size_t errstr_size) {
    aas_job_t j = *job;
    j.submit_ms = 0;
    j.deadline_ms = 0;
    void *buf;
    size_t len;
    aas_err_t err = aas_codec_job_encode(c->codec, &j, &buf, &len, errstr, errstr_size);
    if (err) return err;
    snprintf(hex, 17, "%016llx", (unsigned long long)aas_codec_crc64_avro(buf, len));
    free(buf);
    return AAS_ERR_OK;
}

/* 1 if the job has a status in Redis (published and acknowledged). */
static int aas_client_known(aas_client_t *c, const char *id) {
    aas_job_info_t info;
    char why[256];
    if (aas_store_job_get(c->store, id, &info, why, sizeof(why))) return 0;
    aas_job_info_clear(&info);
    return 1;
}

/* A job between its checks and its publication (aas_client_submit_many). */
typedef struct {
    aas_job_t j;             /* the caller's job with submit time and tenant filled */
    const char *topic;
    void *buf;               /* encoded; owned until produced */
    size_t len;
    aas_client_msg_t *cm;    /* owned until produced */
    int train;
    int32_t partition;       /* RD_KAFKA_PARTITION_UA: by key */
    int signed_;             /* sig holds the aas.auth header */
    char sig[AAS_JOBSIG_VALUE_LEN + 1];
} aas_client_prep_t;

static void aas_client_prep_free(aas_client_prep_t *p) {
    free(p->buf);
    free(p->cm);
    p->buf = NULL;
    p->cm = NULL;
}

/* Everything about one job that needs no Redis: names, sizes, the
 * encoding and the payload hash its id is claimed with. */
static aas_err_t aas_client_prepare(aas_client_t *c, const aas_job_t *job,
                                    const aas_jobsig_key_t *key, aas_client_prep_t *p,
                                    char *errstr, size_t errstr_size) {
    memset(p, 0, sizeof(*p));
    /* Names the id rule covers are refused, never cut to fit (two long
     * ids cut to the same 128 characters would share one job). */
    const char *what = NULL, *bad = NULL;
    if (!aas_id_valid(job->id)) {
        what = "job id";
        bad = job->id;
    } else if (job->model && !aas_id_valid(job->model)) {
        what = "model name";
        bad = job->model;
    } else if (job->model_version && !aas_id_valid(job->model_version)) {
        what = "model version";
        bad = job->model_version;
    } else if (job->tenant && !aas_id_valid(job->tenant)) {
        what = "tenant";
        bad = job->tenant;
    } else if (!job->tenant && c->c.tenant && c->c.tenant[0] && !aas_id_valid(c->c.tenant)) {
        what = "tenant (client.tenant)";
        bad = c->c.tenant;
    }
    if (what)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "invalid %s '%.40s%s' (use [A-Za-z0-9_.-], at most %d, "
                           "not starting with '.' or '-')",
                           what, bad ? bad : "", bad && strlen(bad) > 40 ? "..." : "",
                           AAS_ID_MAX);
    aas_job_t *j = &p->j;
    *j = *job;
    if (j->submit_ms == 0) j->submit_ms = aas_now_ms();
    if (!j->tenant && c->c.tenant && c->c.tenant[0]) j->tenant = (char *)c->c.tenant;
    p->train = j->kind == AAS_JOB_TRAIN;
    /* An inference job's lane topic by its priority; the size limits are
     * the normal lane's (the lanes are created alike). */
    aas_lane_t lane = aas_lanes_of_priority(&c->lanes, j->priority);
    p->topic = p->train ? c->train_topic : c->lanes.topic[lane];
    if (j->text && strlen(j->text) > (size_t)c->c.text_max_bytes) {
        char n1[32];
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "job %s: text of %s bytes is over client.text.max.bytes=%lld; the "
                           "workers FAIL texts over their job.max.text.bytes (default "
                           "1048576): raise both, or send a shorter text", j->id,
                           aas_client_commas(strlen(j->text), n1),
                           (long long)c->c.text_max_bytes);
    }
    char why[1024];
    aas_err_t werr = aas_client_warm(c, p->train ? c->train_topic : c->topic, p->train, why,
                                     sizeof(why));
    if (!werr && !p->train && lane != AAS_LANE_NORMAL && !c->lane_warm[lane]) {
        werr = aas_client_metadata(c, p->topic, why, sizeof(why));
        if (!werr) c->lane_warm[lane] = 1; /* once, as warm[] */
    }
    /* A client that cannot authenticate (as its last serve found) refuses
     * the job now, before its id is claimed: it would wait in the queue
     * until it timed out. */
    if (!werr) werr = aas_client_auth(c, 0, why, sizeof(why));
    if (werr) return aas_err_set(errstr, errstr_size, werr, "job %s: %s", j->id, why);
    if (!key && c->signs) key = &c->sign;
    if (key && !j->tenant)
        /* A worker checking signatures runs a job only for its key's tenant. */
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: a signed job (client.key) needs a tenant: set "
                           "client.tenant (or the job's tenant) to the key's tenant", j->id);
    aas_err_t err = aas_codec_job_encode(c->codec, j, &p->buf, &p->len, errstr, errstr_size);
    if (err) return err;
    if (key) {
        if ((err = aas_jobsig_sign(key, p->buf, p->len, p->sig))) {
            aas_client_prep_free(p);
            return aas_err_set(errstr, errstr_size, err, "job %s: signing failed", j->id);
        }
        p->signed_ = 1;
    }
    aas_client_lim_t which;
    size_t limit = aas_client_job_limit(c, p->train, &which);
    if (p->len > limit) {
        err = aas_client_too_large(c, j->id, p->train, p->len, limit, which, errstr,
                                   errstr_size);
        aas_client_prep_free(p);
        return err;
    }
    if (!(p->cm = calloc(1, sizeof(*p->cm)))) {
        aas_client_prep_free(p);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    if ((err = aas_client_payload_hash(c, j, p->cm->hash, errstr, errstr_size))) {
        aas_client_prep_free(p);
        return err;
    }
    aas_client_msg_t *cm = p->cm;
    snprintf(cm->id, sizeof(cm->id), "%s", j->id);
    snprintf(cm->model, sizeof(cm->model), "%s", j->model ? j->model : "");
    snprintf(cm->tenant, sizeof(cm->tenant), "%s", j->tenant ? j->tenant : "");
    cm->submit_ms = j->submit_ms;
    cm->train = p->train;
    cm->owner = c;
    return AAS_ERR_OK;
}

/* A claim's outcome: go on (resubmit says whether the id was claimed
 * before by this payload) or the job's error.  With Redis away the job
 * still goes unless client.redis.required: Kafka takes it (a worker
 * records it when Redis is back), but the id could not be checked. */
static aas_err_t aas_client_claimed(aas_client_t *c, const aas_store_claim_t *cl,
                                    char *errstr, size_t errstr_size) {
    if (!cl->err) return AAS_ERR_OK;
    if (aas_err_is_retriable(cl->err) && !c->c.redis_required) {
        AAS_LOG(AAS_LOG_WARN, "client", "job=%s id not checked for reuse: %s", cl->job_id,
                cl->why);
        return AAS_ERR_OK;
    }
    return aas_err_set(errstr, errstr_size, cl->err, "%s", cl->why);
}

/* One rd_kafka_producev: an unsigned job has no header at all. */
static rd_kafka_resp_err_t aas_client_produce(aas_client_t *c, aas_client_prep_t *p) {
    const char *id = p->j.id;
    if (p->signed_)
        return rd_kafka_producev(
            aas_client_rk(c), RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_PARTITION(p->partition),
            RD_KAFKA_V_KEY(id, strlen(id)),
            RD_KAFKA_V_VALUE(p->buf, p->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
            RD_KAFKA_V_OPAQUE(p->cm),
            RD_KAFKA_V_HEADER(AAS_JOBSIG_HEADER, p->sig, (ssize_t)AAS_JOBSIG_VALUE_LEN),
            RD_KAFKA_V_END);
    return rd_kafka_producev(
        aas_client_rk(c), RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_PARTITION(p->partition),
        RD_KAFKA_V_KEY(id, strlen(id)),
        RD_KAFKA_V_VALUE(p->buf, p->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_OPAQUE(p->cm), RD_KAFKA_V_END);
}

/* After its claim: quota, then produce.  Frees p's buffers whatever the
 * outcome (librdkafka owns them once produced). */
static aas_err_t aas_client_publish(aas_client_t *c, aas_client_prep_t *p, int resubmit,
                                    char *errstr, size_t errstr_size) {
    aas_job_t *j = &p->j;
    aas_err_t err;
    if (resubmit && aas_client_known(c, j->id)) {
        /* A status means a copy is in Kafka already (QUEUED is recorded on
         * the broker's ack, later ones by workers): the existing job
         * stands, and a second copy would only be skipped by the worker. */
        AAS_LOG(AAS_LOG_INFO, "client", "job=%s resubmitted (same payload): known, "
                "not published again", j->id);
        aas_client_prep_free(p);
        if (c->cb) c->cb(c->cb_opaque, j->id, AAS_ERR_OK, "");
        return AAS_ERR_OK;
    }
    if (resubmit) /* claimed, never acknowledged: publish it now */
        AAS_LOG(AAS_LOG_INFO, "client", "job=%s resubmitted (same payload)", j->id);
    if ((err = aas_client_quota_admit(c, j, p->cm->hash, errstr, errstr_size))) {
        aas_client_prep_free(p);
        return err;
    }
    aas_client_t *pr = c->via ? c->via : c; /* the producer's own client */
    pthread_mutex_lock(&pr->mu); /* counted before the report can come */
    c->outstanding++;
    pthread_mutex_unlock(&pr->mu);
    int64_t deadline = aas_mono_us() + (int64_t)c->timeout_ms * 1000;
    for (;;) {
        rd_kafka_resp_err_t kerr = aas_client_produce(c, p);
        if (!kerr) { /* librdkafka now owns buf and cm */
            p->buf = NULL;
            p->cm = NULL;
            return AAS_ERR_OK;
        }
        char awhy[1024];
        aas_err_t aerr = kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL
                             ? aas_client_auth(c, 0, awhy, sizeof(awhy))
                             : AAS_ERR_OK;
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL && !aerr && aas_mono_us() < deadline) {
            /* Serve delivery reports to make room (a shared producer's
             * poller does that: wait for it). */
            if (c->via) usleep(10000);
            else aas_client_serve(c, 10);
            continue;
        }
        pthread_mutex_lock(&pr->mu);
        c->outstanding--;
        pthread_mutex_unlock(&pr->mu);
        char uwhy[256];
        if (aas_store_job_unclaim(c->store, j->id, p->cm->hash, uwhy, sizeof(uwhy)))
            AAS_LOG(AAS_LOG_WARN, "client", "job=%s id not released: %s", j->id, uwhy);
        aas_client_quota_release(c, j->id, p->cm->tenant);
        aas_client_prep_free(p);
        if (aerr) return aas_err_set(errstr, errstr_size, aerr, "publish job %s: %s", j->id, awhy);
        if (kerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) /* not the broker's word */
            return aas_client_too_large(c, j->id, p->train, p->len,
                                        c->producer_max > AAS_CLIENT_FRAMING_BYTES
                                            ? (size_t)(c->producer_max -
                                                       AAS_CLIENT_FRAMING_BYTES)
                                            : 0,
                                        AAS_CLIENT_LIM_PRODUCER, errstr, errstr_size);
        return aas_err_set(errstr, errstr_size,
                           aas_kafka_err(kerr) ? aas_kafka_err(kerr) : AAS_ERR_KAFKA,
                           "publish job %s: %s", j->id, rd_kafka_err2str(kerr));
    }
}

/* Jobs per claim round trip in aas_client_submit_many. */
#define AAS_CLIENT_CLAIM_CHUNK 64

aas_err_t aas_client_submit_many(aas_client_t *c, aas_client_submission_t *subs, size_t n,
                                 char *errstr, size_t errstr_size) {
    for (size_t base = 0; base < n; base += AAS_CLIENT_CLAIM_CHUNK) {
        size_t m = n - base < AAS_CLIENT_CLAIM_CHUNK ? n - base : AAS_CLIENT_CLAIM_CHUNK;
        aas_client_prep_t prep[AAS_CLIENT_CLAIM_CHUNK];
        aas_store_claim_t claim[AAS_CLIENT_CLAIM_CHUNK];
        size_t idx[AAS_CLIENT_CLAIM_CHUNK], nc = 0;
        for (size_t k = 0; k < m; k++) {
            aas_client_submission_t *sb = &subs[base + k];
            sb->why[0] = '\0';
            sb->err = aas_client_prepare(c, sb->job, sb->key, &prep[nc], sb->why,
                                         sizeof(sb->why));
            prep[nc].partition = sb->partition ? *sb->partition : RD_KAFKA_PARTITION_UA;
            if (sb->err) continue;
            claim[nc] = (aas_store_claim_t){.job_id = prep[nc].j.id,
                                            .payload_hash = prep[nc].cm->hash};
            idx[nc++] = base + k;
        }
        /* One round trip for the chunk's claims; each item says its own
         * outcome, a connection failure is every item's. */
        if (nc) aas_store_job_claim_many(c->store, c->idempotent, claim, nc, NULL, 0);
        for (size_t k = 0; k < nc; k++) {
            aas_client_submission_t *sb = &subs[idx[k]];
            sb->err = aas_client_claimed(c, &claim[k], sb->why, sizeof(sb->why));
            if (sb->err) {
                aas_client_prep_free(&prep[k]);
                continue;
            }
            sb->err = aas_client_publish(c, &prep[k], claim[k].err ? 0 : claim[k].resubmit,
                                         sb->why, sizeof(sb->why));
        }
    }
    if (!c->via) aas_client_serve(c, 0);
    aas_err_t first = AAS_ERR_OK;
    for (size_t k = 0; k < n && !first; k++)
        if (subs[k].err) first = aas_err_set(errstr, errstr_size, subs[k].err, "%s", subs[k].why);
    return first;
}

aas_err_t aas_client_submit(aas_client_t *c, const aas_job_t *job,
                            char *errstr, size_t errstr_size) {
    aas_client_submission_t sb = {.job = job};
    aas_err_t err = aas_client_submit_many(c, &sb, 1, NULL, 0);
    if (err) aas_err_set(errstr, errstr_size, err, "%s", sb.why);
    return err;
}

aas_err_t aas_client_flush(aas_client_t *c, int timeout_ms, size_t *failed_out,
                           char *errstr, size_t errstr_size) {
    if (c->via) {
        size_t left = aas_client_flush_shared(c, timeout_ms);
        if (failed_out) *failed_out = c->failed;
        c->failed = 0;
        if (left)
            return aas_err_set(errstr, errstr_size, AAS_ERR_TIMEOUT,
                               "%zu job(s) still unacknowledged after %d ms", left, timeout_ms);
        return AAS_ERR_OK;
    }
    rd_kafka_resp_err_t kerr = aas_client_drain(c, timeout_ms);
    aas_client_settle_reported(c);
    if (failed_out) *failed_out = c->failed;
    c->failed = 0;
    if (kerr)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TIMEOUT,
                           "%d job(s) still unacknowledged after %d ms",
                           rd_kafka_outq_len(c->rk), timeout_ms);
    return AAS_ERR_OK;
}

aas_err_t aas_client_status(aas_client_t *c, const char *job_id,
                            aas_job_info_t *info, char *errstr,
                            size_t errstr_size) {
    return aas_store_job_get(c->store, job_id, info, errstr, errstr_size);
}

static aas_err_t aas_client_wait_flags(aas_client_t *c, const char *job_id, int timeout_ms,
                                       int flags, aas_result_t *res, char *errstr,
                                       size_t errstr_size) {
    aas_status_t st;
    void *buf = NULL;
    size_t len = 0;
    /* Status and result in one round trip: at once when done already
     * (often, when many are in flight), else after each wake-up. */
    aas_err_t err = aas_store_result_wait(c->store, job_id, timeout_ms, flags, &st, &buf, &len,
                                          errstr, errstr_size);
    if (err) return err;
    size_t max = (size_t)c->c.result_max_mb << 20;
    if (len > max) {
        free(buf);
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "result of %zu bytes exceeds client.result.max.mb", len);
    }
    err = aas_codec_result_decode(c->codec, buf, len, res, errstr, errstr_size);
    free(buf);
    return err;
}

aas_err_t aas_client_wait(aas_client_t *c, const char *job_id, int timeout_ms,
                          aas_result_t *res, char *errstr, size_t errstr_size) {
    return aas_client_wait_flags(c, job_id, timeout_ms, 0, res, errstr, errstr_size);
}

aas_err_t aas_client_wait_fresh(aas_client_t *c, const char *job_id, int timeout_ms,
                                aas_result_t *res, char *errstr, size_t errstr_size) {
    return aas_client_wait_flags(c, job_id, timeout_ms, AAS_STORE_WAIT_FRESH, res, errstr,
                                 errstr_size);
}

aas_err_t aas_client_cancel(aas_client_t *c, const char *job_id,
                            aas_status_t *status_out, char *errstr,
                            size_t errstr_size) {
    if (!aas_id_valid(job_id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "invalid job id");
    /* The record a waiter reads if the job ends CANCELLED right now. */
    aas_result_t res = {.job_id = (char *)job_id, .status = AAS_STATUS_CANCELLED,
                        .error = "cancelled by a client before it ran",
                        .finished_ms = aas_now_ms()};
    void *buf;
    size_t len;
    aas_err_t err = aas_codec_result_encode(c->codec, &res, &buf, &len, errstr,
                                            errstr_size);
    if (err) return err;
    aas_status_t st;
    err = aas_store_job_cancel(c->store, job_id, buf, len, &st, errstr, errstr_size);
    free(buf);
    if (err) return err;
    if (aas_status_is_terminal(st)) {
        /* Ended (now, or before): its quota slot is free.  The tenant is in
         * the job's hash; idempotent, so a job released before is fine. */
        aas_job_info_t info;
        char why[256];
        if (!aas_store_job_get(c->store, job_id, &info, why, sizeof(why))) {
            aas_client_quota_release(c, job_id, info.tenant);
            aas_job_info_clear(&info);
        }
    }
    *status_out = st;
    return AAS_ERR_OK;
}

aas_err_t aas_client_model_register(aas_client_t *c, const char *name,
                                    const void *blob, size_t len,
                                    const char *meta_json,
                                    int64_t *version_out, char *errstr,
                                    size_t errstr_size) {
    /* Refuse what no worker could load, with the loader's reason. */
    aas_model_t *m = NULL;
    char why[256];
    aas_err_t err = aas_model_load(blob, len, &m, why, sizeof(why));
    if (err)
        return aas_err_set(errstr, errstr_size, err, "model %s: %s", name, why);
    aas_model_destroy(m);
    return aas_store_model_put(c->store, name, blob, len, meta_json, version_out,
                               errstr, errstr_size);
}

aas_err_t aas_client_dataset_put(aas_client_t *c, const char *name,
                                 const float *x, const int32_t *y,
                                 int64_t rows, int64_t dim, char *errstr,
                                 size_t errstr_size) {
    if (rows < 1 || dim < 1 || (uint64_t)rows > (1ULL << 40) / ((uint64_t)dim + 1))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "bad data set shape");
    size_t fbytes = (size_t)(rows * dim) * 4, len = fbytes + (size_t)rows * 4;
    char *buf = malloc(len);
    if (!buf) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    memcpy(buf, x, fbytes); /* little-endian host (checked by CMake) */
    memcpy(buf + fbytes, y, (size_t)rows * 4);
    char meta[256];
    snprintf(meta, sizeof(meta),
             "{\"format\":\"aas.dataset.v1\",\"rows\":%lld,\"dim\":%lld,"
             "\"features\":\"f32le\",\"labels\":\"i32le\",\"crc64\":\"%016llx\"}",
             (long long)rows, (long long)dim,
             (unsigned long long)aas_codec_crc64_avro(buf, len));
    aas_err_t err = aas_store_dataset_put(c->store, name, meta, buf, len, (size_t)1 << 20,
                                          errstr, errstr_size);
    free(buf);
    return err;
}

aas_store_t *aas_client_store(aas_client_t *c) { return c->store; }

aas_err_t aas_client_ping(aas_client_t *c, int timeout_ms, char *errstr, size_t errstr_size) {
    /* Redis: one read of a job that does not exist. */
    aas_job_info_t info = {0};
    aas_err_t err = aas_store_job_get(c->store, "aas-client-ping", &info, errstr, errstr_size);
    aas_job_info_clear(&info);
    if (err && err != AAS_ERR_NOT_FOUND) return err;
    /* Kafka: the cluster's metadata (brokers only, no topic); a refused
     * login says so at once. */
    const struct rd_kafka_metadata *md = NULL;
    char why[1024];
    err = aas_client_md(c, NULL, timeout_ms, &md, why, sizeof(why));
    if (err == AAS_ERR_AUTH) return aas_err_set(errstr, errstr_size, err, "%s", why);
    if (err) return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "Kafka metadata: %s", why);
    int brokers = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    if (brokers < 1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "Kafka metadata: no broker");
    return AAS_ERR_OK;
}

aas_err_t aas_client_partitions(aas_client_t *c, int train, int32_t *n, char *errstr,
                                size_t errstr_size) {
    const char *topic = train ? c->train_topic : c->topic;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(aas_client_rk(c), topic, NULL);
    if (!rkt)
        return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "topic %s: %s", topic,
                           rd_kafka_err2str(rd_kafka_last_error()));
    const struct rd_kafka_metadata *md = NULL;
    /* In slices, so an authentication failure ends it at once. */
    aas_err_t err = aas_client_md(c, rkt, c->timeout_ms, &md, errstr, errstr_size);
    if (err)
        ;
    else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "metadata for %s: %s", topic,
                          md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err)
                                             : "no such topic");
    else
        *n = md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return err;
}
