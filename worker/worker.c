/* worker.c - the worker's loop: windows of inference jobs, the training
 * hand-off, heartbeats; and its set-up.  See worker.h. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "jobauth.h"
#include "worker.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "codec.h"
#include "consumer.h"
#include "dlq.h"
#include "heartbeat.h"
#include "job.h"
#include "lane.h"
#include "log.h"
#include "metrics.h"
#include "model_cache.h"
#include "outcome.h"
#include "podcost.h"
#include "stages.h"
#include "store.h"
#include "trainer.h"

const aas_conf_def_t aas_worker_conf_defs[] = {
    {"worker.id", AAS_CONF_STR, NULL, 0, 0, 0,
     "Worker id in logs, results and Redis (default <host>-<pid>)",
     AAS_CONF_FIELD(aas_worker_conf_t, id)},
    {"worker.group", AAS_CONF_STR, "aas-workers", 0, 0, 0,
     "Kafka consumer group of the fleet",
     AAS_CONF_FIELD(aas_worker_conf_t, group)},
    {"worker.train", AAS_CONF_BOOL, "true", 0, 0, 0,
     "Also consume topic.train and run training jobs (one at a time)",
     AAS_CONF_FIELD(aas_worker_conf_t, train)},
    {"worker.infer", AAS_CONF_BOOL, "true", 0, 0, 0,
     "Consume topic.infer (and its lanes) and run inference jobs; false with "
     "worker.train=true: a training-only worker (e.g. its own Deployment, so training "
     "never takes an inference worker)",
     AAS_CONF_FIELD(aas_worker_conf_t, infer)},
    {"worker.train.floor", AAS_CONF_INT, "0", 0, 100000, 0,
     "Inference floor: a worker (worker.infer=true) starts a training job only while at "
     "least this many other live workers of its group run none; otherwise the job waits "
     "on its partition and the worker serves inference (0: no floor; "
     "docs/training.md#inference-floor)",
     AAS_CONF_FIELD(aas_worker_conf_t, train_floor)},
    {"train.source.stall.ms", AAS_CONF_INT, "60000", 1000, 3600000, 0,
     "A training job reading a Kafka topic slice waits this long for a record "
     "(a broker away) before it backs off and tries again",
     AAS_CONF_FIELD(aas_worker_conf_t, source_stall_ms)},
    {"train.dataset.max.mb", AAS_CONF_INT, "1024", 1, 1 << 20, 0,
     "Largest training data set read from Redis (param dataset=), MiB",
     AAS_CONF_FIELD(aas_worker_conf_t, dataset_max_mb)},
    {"worker.shutdown.timeout.s", AAS_CONF_INT, "45", 1, 86400, 0,
     "After SIGTERM or SIGINT, the longest the worker may take to finish its window, commit "
     "and leave the group; past it, it logs an error and exits with status 3 (its jobs with "
     "no stored offset are redelivered). Keep it below Kubernetes' "
     "terminationGracePeriodSeconds",
     0},
    {"worker.heartbeat.ms", AAS_CONF_INT, "2000", 100, 600000, 0,
     "Heartbeat period in Redis; the worker counts as gone after 3 missed",
     AAS_CONF_FIELD(aas_worker_conf_t, heartbeat_ms)},
    {"model.cache.size", AAS_CONF_INT, "16", 1, 4096, 0,
     "Loaded models kept per worker (LRU)",
     AAS_CONF_FIELD(aas_worker_conf_t, cache_size)},
    {"model.cache.mb", AAS_CONF_INT, "1024", 1, 1 << 20, 0,
     "Memory budget of loaded models, MiB",
     AAS_CONF_FIELD(aas_worker_conf_t, cache_mb)},
    {"model.max.mb", AAS_CONF_INT, "256", 1, 1 << 16, 0,
     "Largest model blob accepted from the registry, MiB",
     AAS_CONF_FIELD(aas_worker_conf_t, model_max_mb)},
    {"model.refresh.ms", AAS_CONF_INT, "1000", 0, 3600000, 0,
     "How often 'latest' is re-resolved; new versions are served after it",
     AAS_CONF_FIELD(aas_worker_conf_t, refresh_ms)},
    {"job.max.bytes", AAS_CONF_INT, "67108864", 1024, 1LL << 31, 0,
     "Largest job message accepted",
     AAS_CONF_FIELD(aas_worker_conf_t, job_max_bytes)},
    {"job.max.elems", AAS_CONF_INT, "16777216", 1, 1LL << 31, 0,
     "Largest element count of one input tensor",
     AAS_CONF_FIELD(aas_worker_conf_t, job_max_elems)},
    {"job.max.rows", AAS_CONF_INT, "65536", 1, 1LL << 31, 0,
     "Most input rows in one job",
     AAS_CONF_FIELD(aas_worker_conf_t, job_max_rows)},
    {"job.max.text.bytes", AAS_CONF_INT, "1048576", 0, 1LL << 30, 0,
     "Longest text in one job",
     AAS_CONF_FIELD(aas_worker_conf_t, job_max_text_bytes)},
    {"job.max.attempts", AAS_CONF_INT, "5", 1, 1000, 0,
     "Times a job may be taken without an outcome before it is FAILED",
     AAS_CONF_FIELD(aas_worker_conf_t, job_max_attempts)},
    {"worker.threads", AAS_CONF_INT, "0", 0, 1024, 0,
     "OpenMP threads of oneDNN's forward passes; 0 = OMP_NUM_THREADS, else the CPUs this "
     "process may run on. Keep threads x workers per host <= cores",
     AAS_CONF_FIELD(aas_worker_conf_t, threads)},
    {"worker.omp.wait.policy", AAS_CONF_STR, "passive", 0, 0, 0,
     "How oneDNN's idle OpenMP threads wait for the next forward pass: passive (sleep: no "
     "core burnt between passes, for the broker and Redis beside the worker) or active "
     "(spin: libgomp's default). Applied by re-executing the worker with OMP_WAIT_POLICY "
     "set, as libgomp reads it only at start; OMP_WAIT_POLICY or GOMP_SPINCOUNT already in "
     "the environment win (docs/performance.md, \"Threads\")",
     0},
    {"batch.max.rows", AAS_CONF_INT, "64", 1, 4096, 0,
     "Most rows in one batched forward pass (and at least the jobs of one window: "
     "worker.window.jobs); 1 = no batching",
     AAS_CONF_FIELD(aas_worker_conf_t, batch_max_rows)},
    {"worker.window.jobs", AAS_CONF_INT, "64", 1, 4096, 0,
     "Most jobs in one window when its rows per pass (batch.max.rows or the model's "
     "batch_max_rows) are fewer: a window is one admit round trip to Redis and one offset "
     "store however its jobs split into passes, so with batch.max.rows=1 (no batching) "
     "consecutive jobs still share round trips",
     AAS_CONF_FIELD(aas_worker_conf_t, window_jobs)},
    {"batch.record.us", AAS_CONF_INT, "1000", 0, 10000000, 0,
     "Results of a window's passes are written to Redis together after each model group and "
     "once this long has passed since the last write (then after the pass that ends it); "
     "0 = after every pass. Bounds what a fast pass's result waits for the passes after it",
     AAS_CONF_FIELD(aas_worker_conf_t, batch_record_us)},
    {"batch.max.delay.us", AAS_CONF_INT, "0", 0, 1000000, 0,
     "How long a window waits for more jobs after its first; 0 = only those already fetched",
     AAS_CONF_FIELD(aas_worker_conf_t, batch_max_delay_us)},
    {"worker.lane.share", AAS_CONF_INT, "8", 1, 1000000, 0,
     "Starvation guard of the priority lanes: a lower lane with jobs waiting is passed over "
     "at most N-1 windows in a row, so it gets at least 1 window in N while higher lanes "
     "stay busy (plus one per other lane due at the same time); 1 = plain round robin",
     AAS_CONF_FIELD(aas_worker_conf_t, lane_share)},
    {"worker.fair.jobs", AAS_CONF_INT, "20000", 0, 1000000, 0,
     "Fair share between tenants within a lane: jobs each lane reads ahead and hands out by "
     "deficit round robin on their measured cost (each job's share of its forward pass and of "
     "its window's Redis work), so one tenant's backlog does not hold up "
     "another's jobs; 0 = off (each lane served in offset order). A tenant's job waits "
     "behind another's only for what lies beyond the read-ahead "
     "(docs/sharing.md#fair-share)",
     AAS_CONF_FIELD(aas_worker_conf_t, fair_jobs)},
    {"worker.fair.mb", AAS_CONF_INT, "64", 1, 1 << 20, 0,
     "Most message bytes each lane reads ahead for the fair share, MiB",
     AAS_CONF_FIELD(aas_worker_conf_t, fair_mb)},
    {"worker.fair.quantum.us", AAS_CONF_INT, "1000", 1, 10000000, 0,
     "Fair share: worker time a weight-1 tenant is given per turn before the next tenant's "
     "turn, microseconds; smaller interleaves tenants more finely",
     AAS_CONF_FIELD(aas_worker_conf_t, fair_quantum_us)},
    {"worker.fair.window.jobs", AAS_CONF_INT, "16", 0, 4096, 0,
     "Fair share: while jobs of more than one tenant arrived within the last second, a "
     "window holds at most this many jobs (a job arriving mid-window waits for that window "
     "and its own); 0 = windows as without tenants",
     AAS_CONF_FIELD(aas_worker_conf_t, fair_window_jobs)},
    {"worker.fair.weights", AAS_CONF_STR, NULL, 0, 0, 0,
     "Fair share weights, tenant:weight[,tenant:weight...] (weight in (0, 1000]); tenants "
     "not named weigh 1, jobs without a tenant are tenant 'default'",
     AAS_CONF_FIELD(aas_worker_conf_t, fair_weights)},
    {"worker.auth", AAS_CONF_STR, "none", 0, 0, 0,
     "Who may run jobs: none (any message on the job topics runs) or keys (a job runs only "
     "if signed, header aas.auth, by a registered API key of the job's tenant with the "
     "job's scope: client.key, or the gateway's caller; any other message is dead-lettered, "
     "never run nor written under its id; docs/sharing.md#access)",
     AAS_CONF_FIELD(aas_worker_conf_t, auth)},
    {"worker.auth.refresh.s", AAS_CONF_INT, "10", 1, 86400, 0,
     "worker.auth = keys: reload the API keys from Redis this often, seconds: a revoked key "
     "stops within it (a key named by a job and not loaded yet is looked for before the job "
     "is refused, at most every 250 ms)",
     AAS_CONF_FIELD(aas_worker_conf_t, auth_refresh_s)},
    AAS_METRICS_CONF_ROWS,
    {"retry.backoff.ms", AAS_CONF_INT, "100", 1, 600000, 0,
     "First backoff after a transient failure (doubles, with jitter)",
     AAS_CONF_FIELD(aas_worker_conf_t, backoff_ms)},
    {"retry.backoff.max.ms", AAS_CONF_INT, "5000", 1, 3600000, 0,
     "Longest backoff after transient failures",
     AAS_CONF_FIELD(aas_worker_conf_t, backoff_max_ms)},
    {"k8s.pod.deletion.cost.enabled", AAS_CONF_STR, "auto", 0, 0, 0,
     "Set this pod's controller.kubernetes.io/pod-deletion-cost while training, so a "
     "Deployment scaling in removes an idle trainer first (auto, true or false; auto = on "
     "when an API URL, a pod name and a namespace are known, docs/kubernetes.md)",
     AAS_CONF_FIELD(aas_worker_conf_t, k8s_enabled)},
    {"worker.busy.deletion.cost", AAS_CONF_INT, "1000", 1, 2147483647, 0,
     "The pod deletion cost while a training job runs (idle: 0); pods with the lowest "
     "cost go first",
     AAS_CONF_FIELD(aas_worker_conf_t, busy_cost)},
    {"k8s.api.url", AAS_CONF_STR, NULL, 0, 0, 0,
     "Kubernetes API server, https:// only (default https://$KUBERNETES_SERVICE_HOST:"
     "$KUBERNETES_SERVICE_PORT)",
     AAS_CONF_FIELD(aas_worker_conf_t, k8s_api_url)},
    {"k8s.token.file", AAS_CONF_STR, AAS_PODCOST_SA_DIR "/token", 0, 0, 0,
     "Service account bearer token, re-read at each request (the kubelet rotates it)",
     AAS_CONF_FIELD(aas_worker_conf_t, k8s_token_file)},
    {"k8s.ca.file", AAS_CONF_STR, AAS_PODCOST_SA_DIR "/ca.crt", 0, 0, 0,
     "CA certificates the API server's certificate is verified against",
     AAS_CONF_FIELD(aas_worker_conf_t, k8s_ca_file)},
    {"k8s.namespace", AAS_CONF_STR, NULL, 0, 0, 0,
     "This pod's namespace (default $POD_NAMESPACE, else the service account's "
     "namespace file)",
     AAS_CONF_FIELD(aas_worker_conf_t, k8s_namespace)},
    {"k8s.pod.name", AAS_CONF_STR, NULL, 0, 0, 0,
     "This pod's name (default $POD_NAME, from the Downward API)",
     AAS_CONF_FIELD(aas_worker_conf_t, k8s_pod)},
    {"k8s.timeout.ms", AAS_CONF_INT, "2000", 100, 60000, 0,
     "Longest a deletion-cost PATCH may take, connecting included (on the worker's "
     "own thread: jobs never wait on it)",
     AAS_CONF_FIELD(aas_worker_conf_t, k8s_timeout_ms)},
    AAS_CONF_END};

struct aas_worker_s {
    const aas_conf_t *conf;
    aas_worker_conf_t c;        /* the worker's settings, parsed once */
    char id[AAS_ID_MAX + 1];
    char infer_topic[256];      /* the normal lane's */
    char train_topic[256];
    aas_lanes_t lanes;          /* inference lane topics (lane.h) */
    aas_consumer_t *consumer;
    aas_dlq_t *dlq;
    aas_jobauth_t *auth;        /* worker.auth = keys; else NULL */
    aas_store_t *store;
    aas_codec_t *codec;
    aas_model_cache_t *models;
    aas_outcome_t *outcome;     /* every job's fate */
    aas_batch_t *batch;         /* inference windows */
    aas_stages_t *stages;       /* the loop's time by stage */
    /* The training job in progress (at most one): its message (kept until
     * its outcome is recorded) and its outcome item; partitions of the
     * training topic are held until it ends. */
    aas_trainer_t *trainer;
    rd_kafka_message_t *train_msg;
    aas_outcome_item_t train_item;
    int64_t trainer_retry_at_us;
    /* The inference floor (worker.train.floor): a training slot held in
     * Redis while training; a refused job's partition is held until
     * train_wait_until_us, then fetched again. */
    int train_slot;
    int train_waiting;        /* refused since the last slot: said once */
    int64_t train_wait_until_us;
    /* Heartbeat: when the next is due, and the counts at the last one. */
    int64_t hb_period_us, hb_next_us, hb_last_us, started_ms;
    int metrics_port;           /* reported in the heartbeat; 0 none */
    uint64_t hb_last_done;
    aas_metric_t *m_read_ahead;   /* aas_worker_fair_read_ahead_jobs */
    size_t n_slots;             /* the most messages a window may hold */
    /* Prometheus metrics (docs/metrics.md); served when metrics.port > 0. */
    aas_metrics_t *metrics;
    /* This pod's deletion cost while training; NULL when off (podcost.h). */
    aas_podcost_t *podcost;
};

/* ---- training hand-off ---- */

/* A training slot's lease: three missed heartbeats and a second, as a
 * heartbeat's own TTL. */
static int64_t aas_worker_slot_lease_ms(const aas_worker_t *w) {
    return 3 * w->hb_period_us / 1000 + 1000;
}

/* Take (or renew) this worker's training slot under the inference floor;
 * 1 if held.  Redis unreachable: not held (training waits, inference goes
 * on). */
static int aas_worker_slot_take(aas_worker_t *w) {
    char why[256];
    int held = 0;
    int64_t live = 0, training = 0;
    if (aas_store_train_slot(w->store, aas_consumer_group(w->consumer), w->id,
                             aas_worker_slot_lease_ms(w), w->c.train_floor, &held, &live,
                             &training, why, sizeof(why))) {
        AAS_LOG(AAS_LOG_WARN, "worker", "training slot not asked: %s; training waits", why);
        return 0;
    }
    if (!held && !w->train_waiting)
        AAS_LOG(AAS_LOG_INFO, "worker", "training waits: worker.train.floor=%lld, live "
                "workers=%lld, training=%lld; serving inference meanwhile",
                (long long)w->c.train_floor, (long long)live, (long long)training);
    w->train_waiting = !held;
    return held;
}

static void aas_worker_slot_release(aas_worker_t *w) {
    if (!w->train_slot) return;
    char why[256];
    int held;
    w->train_slot = 0;
    /* Not released (Redis away): the lease ends by itself. */
    if (aas_store_train_slot(w->store, aas_consumer_group(w->consumer), w->id, 0,
                             w->c.train_floor, &held, NULL, NULL, why, sizeof(why)))
        AAS_LOG(AAS_LOG_WARN, "worker", "training slot not released (its lease ends it): %s",
                why);
}

/* A job refused a slot waits on its held partition: fetch it again now. */
static void aas_worker_slot_retry(aas_worker_t *w) {
    if (!w->train_wait_until_us || w->trainer || aas_mono_us() < w->train_wait_until_us)
        return;
    w->train_wait_until_us = 0;
    aas_consumer_release(w->consumer);
}

/* Let go of the training job: its partitions resume. */
static void aas_worker_trainer_release(aas_worker_t *w) {
    aas_worker_slot_release(w);
    aas_trainer_destroy(w->trainer);
    w->trainer = NULL;
    aas_outcome_item_clear(&w->train_item);
    if (w->train_msg) rd_kafka_message_destroy(w->train_msg);
    w->train_msg = NULL;
    aas_consumer_release(w->consumer);
    aas_podcost_busy(w->podcost, 0);
    w->hb_next_us = 0; /* beat now: idle again (parallelism=auto counts idle workers) */
}

/* The training thread finished: record its outcome like any job's
 * (retrying later on a transient failure), store its offset, release the
 * held partitions. */
static void aas_worker_reap_trainer(aas_worker_t *w) {
    if (!w->trainer || !aas_trainer_done(w->trainer) ||
        aas_mono_us() < w->trainer_retry_at_us)
        return;
    aas_outcome_item_t *it = &w->train_item;
    char why[512];
    aas_result_t res;
    int64_t version = 0;
    it->settled = it->pending = 0;
    aas_err_t err = aas_trainer_finish(w->trainer, w->store, &res, &version, why,
                                       sizeof(why));
    if (err && aas_err_is_retriable(err)) {
        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s training outcome not recorded yet: %s",
                it->job_id, why);
        w->trainer_retry_at_us = aas_mono_us() + w->c.backoff_max_ms * 1000;
        return;
    }
    if (err) {
        char reason[600];
        snprintf(reason, sizeof(reason), "training result not recorded: %s", why);
        aas_outcome_fail(it, AAS_STATUS_FAILED, reason);
    } else if (res.status == AAS_STATUS_SUCCEEDED) {
        aas_trainer_usage(w->trainer, &it->usage.rows, &it->usage.sample_epochs);
        it->usage.compute_us = res.timings.compute_us;
        aas_outcome_succeed(w->outcome, it, &res, version);
    } else {
        aas_outcome_fail(it, res.status, res.error);
    }
    aas_outcome_record(w->outcome, it, 1);
    if (it->outcome == AAS_MSG_RETRY) {
        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s training outcome not recorded yet",
                it->job_id);
        w->trainer_retry_at_us = aas_mono_us() + w->c.backoff_max_ms * 1000;
        return;
    }
    AAS_LOG(AAS_LOG_INFO, "worker", "job=%s training recorded status=%s", it->job_id,
            aas_status_name(it->status));
    aas_consumer_store(w->consumer, w->train_msg);
    aas_worker_trainer_release(w);
}

/*
 * A training-topic message.  One training at a time: while one runs, the
 * message's partition is held.  Returns 1 if the worker kept msg (a trainer
 * owns its job now), else the caller destroys it.
 */
static int aas_worker_train_msg(aas_worker_t *w, rd_kafka_message_t *msg,
                                volatile sig_atomic_t *stop) {
    if (w->trainer) {
        aas_consumer_rewind(w->consumer, msg);
        aas_consumer_hold(w->consumer, msg);
        return 0;
    }
    /* The inference floor: asked before the job is read, so a job that
     * must wait is not marked started. */
    if (w->c.train_floor > 0 && w->c.infer) {
        if (!aas_worker_slot_take(w)) {
            int64_t wait_us = w->hb_period_us > 500000 ? w->hb_period_us : 500000;
            aas_consumer_rewind(w->consumer, msg);
            aas_consumer_hold(w->consumer, msg);
            w->train_wait_until_us = aas_mono_us() + wait_us;
            return 0;
        }
        w->train_slot = 1;
        w->train_wait_until_us = 0;
    }
    aas_outcome_item_t *it = &w->train_item;
    memset(it, 0, sizeof(*it));
    it->msg = msg;
    aas_outcome_admit(w->outcome, it, 1);
    if (!it->settled && !it->pending) {
        char why[512];
        aas_trainer_where_t where = {.partition = msg->partition,
                                     .group = aas_consumer_group(w->consumer),
                                     .worker_id = w->id,
                                     .floor = w->c.infer ? w->c.train_floor : 0};
        aas_err_t err = aas_trainer_start(w->conf, &it->job, &where, INT64_MAX,
                                          (size_t)w->c.dataset_max_mb << 20, &w->trainer,
                                          why, sizeof(why));
        if (!err) {
            w->train_msg = msg;
            w->trainer_retry_at_us = 0;
            aas_consumer_hold(w->consumer, msg);
            /* Scale-in should take an idle pod rather than this one. */
            aas_podcost_busy(w->podcost, 1);
            w->hb_next_us = 0; /* beat now: training */
            AAS_LOG(AAS_LOG_INFO, "worker", "job=%s training started from %s/%d/%lld",
                    it->job_id, rd_kafka_topic_name(msg->rkt), (int)msg->partition,
                    (long long)msg->offset);
            return 1;
        }
        if (aas_err_is_retriable(err)) aas_outcome_retry(it);
        else aas_outcome_fail(it, AAS_STATUS_FAILED, why);
    }
    aas_worker_slot_release(w); /* no training started */
    aas_outcome_record(w->outcome, it, 1);
    aas_msg_outcome_t o = it->settled ? it->outcome : AAS_MSG_RETRY;
    aas_outcome_item_clear(it);
    aas_consumer_settle(w->consumer, &msg, &o, 1, stop);
    return 0;
}

/* What the fair share charges each job of a window: its share of its
 * forward pass plus an equal share of the rest of the window's time
 * (admission, Redis writes).  Compute alone would make a small model's jobs
 * nearly free (a row of a 64-wide MLP in a batch of 64 is under 1 us, its
 * Kafka message and Redis writes tens of us), and a tenant of small jobs
 * would get hundreds of jobs a turn. */
static void aas_worker_fair_cost(int64_t *cost_us, size_t n, int64_t window_us) {
    int64_t compute = 0;
    for (size_t i = 0; i < n; i++) compute += cost_us[i];
    if (n == 0 || window_us <= compute) return;
    int64_t rest = (window_us - compute) / (int64_t)n;
    for (size_t i = 0; i < n; i++) cost_us[i] += rest;
}

/* ---- heartbeats ---- */

_Static_assert(AAS_CONSUMER_GROUP_MAX <= AAS_HEARTBEAT_GROUP_MAX,
               "the consumer's group fits the heartbeat");

/* Liveness and load for the scheduler: counters, completion rate since the
 * last beat, assigned partitions, the training job if any. */
static void aas_worker_heartbeat(aas_worker_t *w) {
    int64_t now = aas_mono_us();
    if (now < w->hb_next_us) return;
    double dt = w->hb_last_us ? (double)(now - w->hb_last_us) / 1e6 : 0;
    aas_outcome_counts_t c = aas_outcome_counts(w->outcome);
    double rate = dt > 0 ? (double)(c.done + c.failed - w->hb_last_done) / dt : 0;
    w->hb_last_us = now;
    w->hb_last_done = c.done + c.failed;
    w->hb_next_us = now + w->hb_period_us;
    aas_heartbeat_t hb = {.pid = (int)getpid(), .started_ms = w->started_ms,
                          .ts_ms = aas_now_ms(), .done = c.done, .failed = c.failed,
                          .skipped = c.skipped, .dlq = c.dlq,
                          .retries = aas_consumer_retries(w->consumer), .rate = rate,
                          .metrics_port = w->metrics_port};
    snprintf(hb.id, sizeof(hb.id), "%s", w->id);
    /* The scheduler counts only the workers of the group it scales. */
    snprintf(hb.group, sizeof(hb.group), "%s", aas_consumer_group(w->consumer));
    snprintf(hb.training, sizeof(hb.training), "%s", w->trainer ? w->train_item.job_id : "");
    /* Renewed with every beat while training; lost (Redis away longer
     * than the lease), the training goes on and the slot is asked again. */
    if (w->train_slot && !aas_worker_slot_take(w))
        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s training slot lapsed (worker.train.floor may "
                "be short one worker until it ends)", w->train_item.job_id);
    aas_consumer_assignment(w->consumer, hb.partitions, sizeof(hb.partitions));
    aas_metric_set(w->m_read_ahead, (double)aas_consumer_buffered(w->consumer));
    gethostname(hb.host, sizeof(hb.host) - 1);
    char json[4096];
    char why[256];
    /* Gone after three missed beats, plus a second of slack (rounded up:
     * a 500 ms period gives 3 s, not 2). */
    int ttl = (int)((3 * w->hb_period_us + 999999) / 1000000) + 1;
    if (aas_heartbeat_format(&hb, json, sizeof(json), why, sizeof(why)) ||
        aas_store_heartbeat(w->store, w->id, json, ttl, why, sizeof(why))) {
        AAS_LOG(AAS_LOG_WARN, "worker", "heartbeat not written: %s", why);
        char r[300];
        snprintf(r, sizeof(r), "Redis not reachable: %s", why);
        aas_metrics_ready(w->metrics, 0, r);
    } else {
        /* Ready: in the group and Redis takes writes (GET /readyz); not
         * in it because Kafka refuses the credentials: /readyz says so. */
        int joined = aas_consumer_joined(w->consumer);
        char kwhy[512] = "not in the consumer group yet";
        if (!joined && aas_consumer_auth_check(w->consumer, kwhy, sizeof(kwhy)) != AAS_ERR_AUTH)
            snprintf(kwhy, sizeof(kwhy), "not in the consumer group yet");
        aas_metrics_ready(w->metrics, joined, kwhy);
    }
}

/* Say at start whether a terminal write survives a Redis crash: only with
 * appendonly + appendfsync always (docs/guarantees.md).  A warning, not a
 * refusal: the demo and tests run a throw-away Redis on purpose. */
static void aas_worker_check_redis(aas_worker_t *w) {
    char why[256];
    aas_store_persistence_t p;
    aas_metric_t *g = aas_metrics_gauge(
        w->metrics, "aas_worker_redis_durable",
        "1 if Redis keeps acknowledged writes across a crash (appendonly yes, appendfsync "
        "always), 0 if not, NaN if it would not say", NULL);
    if (aas_store_persistence(w->store, &p, why, sizeof(why))) {
        AAS_LOG(AAS_LOG_WARN, "worker", "redis persistence unknown: %s", why);
        aas_metric_set(g, NAN);
        return;
    }
    if (p.aof == 1 && p.fsync_always == 1) {
        aas_metric_set(g, 1);
        return;
    }
    if (p.aof < 0 || (p.aof == 1 && p.fsync_always < 0)) {
        AAS_LOG(AAS_LOG_WARN, "worker", "redis persistence not readable (INFO/CONFIG "
                "refused): results are durable only with appendonly yes and appendfsync "
                "always");
        aas_metric_set(g, NAN);
        return;
    }
    aas_metric_set(g, 0);
    AAS_LOG(AAS_LOG_WARN, "worker", "redis persistence: appendonly=%s appendfsync_always=%s "
            "snapshots=%s; a Redis crash can lose results whose offsets are committed "
            "(run redis-server --appendonly yes --appendfsync always; docs/guarantees.md)",
            p.aof == 1 ? "yes" : p.aof == 0 ? "no" : "?",
            p.fsync_always == 1 ? "yes" : p.fsync_always == 0 ? "no" : "?",
            p.rdb == 1 ? "yes" : p.rdb == 0 ? "no" : "?");
}

/* ---- the loop ---- */

aas_err_t aas_worker_run(aas_worker_t *w, volatile sig_atomic_t *stop) {
    if (!w->c.infer)
        AAS_LOG(AAS_LOG_INFO, "worker", "worker=%s serving training only topic=%s "
                "(worker.infer=false)", w->id, w->train_topic);
    else
        AAS_LOG(AAS_LOG_INFO, "worker", "worker=%s serving topic=%s lanes=%s "
                "worker.lane.share=%lld worker.fair.jobs=%lld batch.max.rows=%lld "
                "batch.max.delay.us=%lld", w->id,
                w->infer_topic, w->lanes.enabled ? "high,normal,low" : "off",
                (long long)w->c.lane_share, (long long)w->c.fair_jobs,
                (long long)w->c.batch_max_rows, (long long)w->c.batch_max_delay_us);
    rd_kafka_message_t **msgs = calloc(w->n_slots, sizeof(*msgs));
    aas_msg_outcome_t *out = calloc(w->n_slots, sizeof(*out));
    int64_t *compute_us = calloc(w->n_slots, sizeof(*compute_us));
    if (!msgs || !out || !compute_us) {
        free(msgs);
        free(out);
        free(compute_us);
        AAS_LOG(AAS_LOG_ERROR, "worker", "out of memory for a window of %zu", w->n_slots);
        return AAS_ERR_NOMEM;
    }
    while (!*stop) {
        aas_metrics_alive(w->metrics);
        aas_worker_reap_trainer(w);
        aas_worker_slot_retry(w);
        aas_worker_heartbeat(w);
        aas_stages_restart(w->stages);
        rd_kafka_message_t *msg = aas_consumer_poll(w->consumer, 100), *tail = msg;
        aas_stages_mark(w->stages, AAS_STAGE_POLL);
        if (!msg) {
            aas_stages_flush(w->stages);
            continue;
        }
        if (aas_lanes_find(&w->lanes, rd_kafka_topic_name(msg->rkt)) >= 0) {
            /* The window waits on behalf of the model of the job that
             * opened it: up to its max delay, until it holds its max rows
             * (one or more a job); jobs of other models ride along. */
            int64_t rows, delay_us;
            aas_batch_limits(w->batch, msg, &rows, &delay_us);
            /* A window takes at least worker.window.jobs jobs (those
             * fetched; up to the delay): however they split into passes,
             * it is one admit round trip and one offset store. */
            size_t jobs = (size_t)(rows > w->c.window_jobs ? rows : w->c.window_jobs);
            msgs[0] = msg;
            size_t n = aas_consumer_collect(w->consumer, msgs,
                                            jobs < w->n_slots ? jobs : w->n_slots, delay_us,
                                            &tail);
            aas_stages_mark(w->stages, AAS_STAGE_COLLECT);
            int64_t run_us = aas_mono_us();
            aas_batch_run(w->batch, msgs, n, out, compute_us, w->stages);
            aas_worker_fair_cost(compute_us, n, aas_mono_us() - run_us);
            aas_consumer_charge(w->consumer, compute_us, n);
            aas_consumer_settle(w->consumer, msgs, out, n, stop);
            aas_stages_mark(w->stages, AAS_STAGE_SETTLE);
            aas_stages_flush(w->stages);
            for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(msgs[i]);
        }
        if (tail && !aas_worker_train_msg(w, tail, stop)) rd_kafka_message_destroy(tail);
    }
    free(msgs);
    free(out);
    free(compute_us);
    if (w->trainer) {
        /* Shutting down mid-training: stop at the next batch and hand the
         * job back (no outcome, no offset): another worker runs it. */
        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s training interrupted by shutdown; "
                "it will be redelivered", w->train_item.job_id);
        aas_worker_trainer_release(w);
    }
    aas_outcome_counts_t c = aas_outcome_counts(w->outcome);
    AAS_LOG(AAS_LOG_INFO, "worker",
            "worker=%s stopping done=%llu failed=%llu skipped=%llu dlq=%llu "
            "retries=%llu", w->id, c.done, c.failed, c.skipped, c.dlq,
            aas_consumer_retries(w->consumer));
    return AAS_ERR_OK;
}

/* ---- set-up ---- */

/* The consumer's fair share asks each message's tenant: read from the
 * encoded job without decoding it; a message it cannot read counts as no
 * tenant (its full decode is still the judge). */
static void aas_worker_tenant_of(const rd_kafka_message_t *m, char *out, void *opaque) {
    const aas_worker_t *w = opaque;
    (void)aas_codec_job_peek_tenant(w->codec, m->payload, m->len, out);
}

aas_err_t aas_worker_new(const aas_conf_t *conf, aas_worker_t **out,
                         char *errstr, size_t errstr_size) {
    aas_worker_t *w = calloc(1, sizeof(*w));
    if (!w) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    w->conf = conf;
    aas_conf_fill(conf, &w->c);
    aas_err_t err = AAS_ERR_OK;
    if (w->c.id) {
        snprintf(w->id, sizeof(w->id), "%s", w->c.id);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        host[strcspn(host, ".")] = '\0';
        snprintf(w->id, sizeof(w->id), "%s-%d", host, (int)getpid());
    }
    if (!aas_id_valid(w->id)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "worker.id '%s' is not a valid id ([A-Za-z0-9_.-])",
                          w->id);
        goto fail;
    }
    snprintf(w->infer_topic, sizeof(w->infer_topic), "%s",
             aas_conf_get(conf, "topic.infer"));
    snprintf(w->train_topic, sizeof(w->train_topic), "%s",
             aas_conf_get(conf, "topic.train"));
    if ((err = aas_lanes_from_conf(conf, &w->lanes, errstr, errstr_size))) goto fail;
    aas_codec_limits_t limits;
    aas_codec_limits_default(&limits);
    limits.max_message_bytes = (size_t)w->c.job_max_bytes;
    limits.max_tensor_elems = (uint64_t)w->c.job_max_elems;
    limits.max_text_bytes = (size_t)w->c.job_max_text_bytes;
    w->hb_period_us = w->c.heartbeat_ms * 1000;
    /* One threading model: oneDNN runs every primitive on OpenMP (libgomp)
     * from this thread; size its pool to the cores this worker is given
     * (docs/performance.md, "Threads"). */
    {
        int threads = (int)w->c.threads;
        const char *env = getenv("OMP_NUM_THREADS");
        if (threads == 0 && !(env && *env)) {
            cpu_set_t set;
            threads = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
        }
        if (threads > 0) omp_set_num_threads(threads);
        const char *wait = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
        AAS_LOG(AAS_LOG_INFO, "worker", "compute threads=%d (OpenMP) OMP_WAIT_POLICY=%s%s%s",
                omp_get_max_threads(), wait ? wait : "(unset: spin)",
                spin ? " GOMP_SPINCOUNT=" : "", spin ? spin : "");
    }
    /* Room for the largest window any model may ask for (its serving
     * option batch_max_rows goes up to 4096); untouched slots cost no RSS. */
    w->n_slots = (size_t)(w->c.batch_max_rows > 4096 ? w->c.batch_max_rows : 4096);
    w->started_ms = aas_now_ms();

    if ((err = aas_codec_new(&w->codec, errstr, errstr_size))) goto fail;
    if ((err = aas_metrics_new(&w->metrics, errstr, errstr_size))) goto fail;
    if ((err = aas_metrics_serve_conf(w->metrics, conf, errstr, errstr_size))) goto fail;
    w->metrics_port = (int)aas_conf_get_int(conf, "metrics.port");
    w->m_read_ahead = aas_metrics_gauge(w->metrics, "aas_worker_fair_read_ahead_jobs",
                                        "Jobs read ahead for the fair share between tenants, "
                                        "all lanes (at the last heartbeat)", NULL);
    if (w->c.train) {
        /* Only a pod that trains has a job worth protecting from scale-in. */
        aas_podcost_conf_t pc = {.enabled = w->c.k8s_enabled, .api_url = w->c.k8s_api_url,
                                 .token_file = w->c.k8s_token_file,
                                 .ca_file = w->c.k8s_ca_file, .ns = w->c.k8s_namespace,
                                 .pod = w->c.k8s_pod, .busy_cost = w->c.busy_cost,
                                 .timeout_ms = w->c.k8s_timeout_ms};
        if ((err = aas_podcost_new(&pc, w->metrics, &w->podcost, errstr, errstr_size)))
            goto fail;
    }
    if ((err = aas_cli_store_new(conf, &w->store, errstr, errstr_size)))
        goto fail;
    aas_worker_check_redis(w);
    aas_model_cache_conf_t mc = {
        .max_models = (size_t)w->c.cache_size,
        .max_bytes = (size_t)w->c.cache_mb << 20,
        .max_blob_bytes = (size_t)w->c.model_max_mb << 20,
        .refresh_ms = w->c.refresh_ms};
    if ((err = aas_model_cache_new(&mc, &w->models))) goto fail;
    if ((err = aas_dlq_new(conf, w->id, (size_t)w->c.job_max_bytes,
                           &w->dlq, errstr, errstr_size)))
        goto fail;
    if (!strcmp(w->c.auth, "keys")) {
        if ((err = aas_jobauth_new(w->store, (int)w->c.auth_refresh_s, &w->auth, errstr,
                                   errstr_size)))
            goto fail;
    } else if (strcmp(w->c.auth, "none")) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "worker.auth '%.32s': want none or keys", w->c.auth);
        goto fail;
    }
    aas_outcome_conf_t oc = {.worker_id = w->id, .infer_topic = w->infer_topic,
                             .train_topic = w->train_topic,
                             .max_attempts = w->c.job_max_attempts,
                             .limits = &limits, .max_items = w->n_slots, .auth = w->auth};
    if ((err = aas_outcome_new(&oc, w->store, w->codec, w->dlq, w->metrics, &w->outcome,
                               errstr, errstr_size)))
        goto fail;
    aas_batch_conf_t bc = {.max_rows = w->c.batch_max_rows,
                           .max_delay_us = w->c.batch_max_delay_us,
                           .job_max_rows = w->c.job_max_rows,
                           .max_slots = w->n_slots,
                           .record_us = w->c.batch_record_us};
    if ((err = aas_batch_new(&bc, w->outcome, w->models, w->store, w->codec, w->metrics,
                             &w->batch, errstr, errstr_size)))
        goto fail;
    if ((err = aas_stages_new(w->metrics, &w->stages, errstr, errstr_size))) goto fail;

    aas_consumer_conf_t cc = {
        .client_id = w->id, .group = w->c.group,
        .lanes = {w->c.infer && w->lanes.enabled ? w->lanes.topic[AAS_LANE_HIGH] : NULL,
                  w->c.infer ? w->lanes.topic[AAS_LANE_NORMAL] : NULL,
                  w->c.infer && w->lanes.enabled ? w->lanes.topic[AAS_LANE_LOW] : NULL},
        .train_topic = w->c.train ? w->train_topic : NULL,
        .lane_share = w->c.lane_share,
        .max_message_bytes = (size_t)w->c.job_max_bytes,
        .backoff_min_ms = w->c.backoff_ms,
        .backoff_max_ms = w->c.backoff_max_ms,
        .fair_jobs = (size_t)w->c.fair_jobs,
        .fair_bytes = (size_t)w->c.fair_mb << 20,
        .fair_quantum_us = w->c.fair_quantum_us,
        .fair_weights = w->c.fair_weights,
        .fair_window = (size_t)w->c.fair_window_jobs,
        .tenant_of = aas_worker_tenant_of,
        .tenant_opaque = w,
        .max_window = w->n_slots};
    if ((err = aas_consumer_new(conf, &cc, &w->consumer, errstr, errstr_size))) goto fail;
    *out = w;
    return AAS_ERR_OK;
fail:
    aas_worker_destroy(w);
    return err;
}

void aas_worker_destroy(aas_worker_t *w) {
    if (!w) return;
    /* Its thread updates the metrics: stopped before they go. */
    aas_podcost_destroy(w->podcost);
    /* Messages go back before their consumer. */
    aas_trainer_destroy(w->trainer);
    aas_outcome_item_clear(&w->train_item);
    if (w->train_msg) rd_kafka_message_destroy(w->train_msg);
    aas_consumer_destroy(w->consumer);
    aas_batch_destroy(w->batch);
    aas_stages_destroy(w->stages);
    aas_outcome_destroy(w->outcome);
    aas_jobauth_destroy(w->auth);
    aas_dlq_destroy(w->dlq);
    aas_model_cache_destroy(w->models);
    aas_store_destroy(w->store);
    aas_metrics_destroy(w->metrics);
    aas_codec_destroy(w->codec);
    free(w);
}
