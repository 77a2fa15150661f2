/* worker.c - the consume / compute / record loop; see worker.h. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "worker.h"
#include "worker_int.h"

#include <errno.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "infer.h"
#include "job.h"
#include "kafka.h"
#include "log.h"
#include "model_cache.h"
#include "store.h"
#include "trainer.h"

const aas_conf_def_t aas_worker_conf_defs[] = {
    {"worker.id", AAS_CONF_STR, NULL, 0, 0, 0,
     "Worker id in logs, results and Redis (default <host>-<pid>)"},
    {"worker.group", AAS_CONF_STR, "aas-workers", 0, 0, 0,
     "Kafka consumer group of the fleet"},
    {"worker.train", AAS_CONF_BOOL, "true", 0, 0, 0,
     "Also consume topic.train and run training jobs (one at a time)"},
    {"train.dataset.max.mb", AAS_CONF_INT, "1024", 1, 1 << 20, 0,
     "Largest training data set read from Redis (param dataset=), MiB"},
    {"worker.heartbeat.ms", AAS_CONF_INT, "2000", 100, 600000, 0,
     "Heartbeat period in Redis; the worker counts as gone after 3 missed"},
    {"model.cache.size", AAS_CONF_INT, "16", 1, 4096, 0,
     "Loaded models kept per worker (LRU)"},
    {"model.cache.mb", AAS_CONF_INT, "1024", 1, 1 << 20, 0,
     "Memory budget of loaded models, MiB"},
    {"model.max.mb", AAS_CONF_INT, "256", 1, 1 << 16, 0,
     "Largest model blob accepted from the registry, MiB"},
    {"model.refresh.ms", AAS_CONF_INT, "1000", 0, 3600000, 0,
     "How often 'latest' is re-resolved; new versions are served after it"},
    {"job.max.bytes", AAS_CONF_INT, "67108864", 1024, 1LL << 31, 0,
     "Largest job message accepted"},
    {"job.max.elems", AAS_CONF_INT, "16777216", 1, 1LL << 31, 0,
     "Largest element count of one input tensor"},
    {"job.max.rows", AAS_CONF_INT, "65536", 1, 1LL << 31, 0,
     "Most input rows in one job"},
    {"job.max.text.bytes", AAS_CONF_INT, "1048576", 0, 1LL << 30, 0,
     "Longest text in one job"},
    {"job.max.attempts", AAS_CONF_INT, "5", 1, 1000, 0,
     "Times a job may be taken without an outcome before it is FAILED"},
    {"worker.threads", AAS_CONF_INT, "0", 0, 1024, 0,
     "OpenMP threads of oneDNN's forward passes; 0 = OMP_NUM_THREADS, else the CPUs this "
     "process may run on. Keep threads x workers per host <= cores"},
    {"batch.max.rows", AAS_CONF_INT, "64", 1, 4096, 0,
     "Most rows in one batched forward pass (and jobs in one window); 1 = no batching"},
    {"batch.max.delay.us", AAS_CONF_INT, "0", 0, 1000000, 0,
     "How long a window waits for more jobs after its first; 0 = only those already fetched"},
    AAS_METRICS_CONF_ROWS,
    {"retry.backoff.ms", AAS_CONF_INT, "100", 1, 600000, 0,
     "First backoff after a transient failure (doubles, with jitter)"},
    {"retry.backoff.max.ms", AAS_CONF_INT, "5000", 1, 3600000, 0,
     "Longest backoff after transient failures"},
    AAS_CONF_END};

/* ---- Kafka plumbing ---- */

static void aas_worker_log_parts(const char *what,
                                 const rd_kafka_topic_partition_list_t *p) {
    char buf[512];
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->cnt && n < sizeof(buf) - 40; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s/%d", i ? "," : "",
                              p->elems[i].topic, (int)p->elems[i].partition);
    AAS_LOG(AAS_LOG_INFO, "worker", "rebalance=%s partitions=%s", what, buf);
}

static void aas_worker_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                    rd_kafka_topic_partition_list_t *parts,
                                    void *opaque) {
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        aas_worker_log_parts("assign", parts);
        if (coop)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rerr = rd_kafka_assign(rk, parts);
    } else {
        aas_worker_log_parts("revoke", parts);
        ((aas_worker_t *)opaque)->revoked = 1; /* close the open window */
        /* Jobs are finished before the next poll, so every stored offset
         * is final; with enable.auto.commit librdkafka commits the stored
         * offsets of revoked partitions itself (a synchronous commit here
         * would block without bound when the broker is gone). */
        if (coop)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        AAS_LOG(AAS_LOG_ERROR, "worker", "rebalance: %s",
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rerr) {
        AAS_LOG(AAS_LOG_ERROR, "worker", "rebalance: %s", rd_kafka_err2str(rerr));
    }
}

static void aas_worker_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                             void *opaque) {
    if (m->_private) *(rd_kafka_resp_err_t *)m->_private = m->err;
}

/* Send the raw message to the dead-letter topic and wait for the broker's
 * acknowledgement, so its offset may be stored after. */
aas_err_t aas_worker_dlq_send(aas_worker_t *w, const rd_kafka_message_t *msg,
                                     aas_err_t why_code, const char *why) {
    char partition[16], offset[24];
    snprintf(partition, sizeof(partition), "%d", (int)msg->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)msg->offset);
    const char *topic = rd_kafka_topic_name(msg->rkt);
    const char *code = aas_err_name(why_code);
    rd_kafka_resp_err_t delivered = RD_KAFKA_RESP_ERR__IN_PROGRESS;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        w->dlq, RD_KAFKA_V_TOPIC(w->dlq_topic),
        RD_KAFKA_V_VALUE(msg->payload, msg->len),
        RD_KAFKA_V_KEY(msg->key, msg->key_len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADER("aas.error.code", code, (ssize_t)strlen(code)),
        RD_KAFKA_V_HEADER("aas.error", why, (ssize_t)strlen(why)),
        RD_KAFKA_V_HEADER("aas.source.topic", topic, (ssize_t)strlen(topic)),
        RD_KAFKA_V_HEADER("aas.source.partition", partition,
                          (ssize_t)strlen(partition)),
        RD_KAFKA_V_HEADER("aas.source.offset", offset, (ssize_t)strlen(offset)),
        RD_KAFKA_V_HEADER("aas.worker", w->id, (ssize_t)strlen(w->id)),
        RD_KAFKA_V_OPAQUE(&delivered), RD_KAFKA_V_END);
    if (err) {
        AAS_LOG(AAS_LOG_WARN, "worker", "dlq produce failed: %s",
                rd_kafka_err2str(err));
        return aas_kafka_err(err) == AAS_ERR_TOO_LARGE ? AAS_ERR_KAFKA
                                                       : aas_kafka_err(err);
    }
    rd_kafka_resp_err_t ferr = rd_kafka_flush(w->dlq, 30000);
    if (ferr || delivered != RD_KAFKA_RESP_ERR_NO_ERROR) {
        AAS_LOG(AAS_LOG_WARN, "worker", "dlq delivery failed: %s",
                rd_kafka_err2str(ferr ? ferr : delivered));
        /* A still-queued copy may yet be delivered; a duplicate in the
         * dead-letter topic is harmless, a lost one is not. */
        return AAS_ERR_KAFKA;
    }
    w->n_dlq++;
    return AAS_ERR_OK;
}

/* ---- job outcome ---- */

/* Write a terminal non-success status with its result record. */
static aas_err_t aas_worker_finish(aas_worker_t *w, aas_result_t *res,
                                   const char *version_str, int *written) {
    void *buf = NULL;
    size_t len = 0;
    char why[512];
    res->worker_id = w->id;
    res->finished_ms = aas_now_ms();
    aas_err_t err = aas_codec_result_encode(w->codec, res, &buf, &len, why,
                                            sizeof(why));
    res->worker_id = NULL; /* borrowed */
    if (err) {
        AAS_LOG(AAS_LOG_ERROR, "worker", "job=%s encode result: %s",
                res->job_id, why);
        return err;
    }
    err = aas_store_job_finish(w->store, res->job_id, res->status, version_str,
                               buf, len, res->error, written, why, sizeof(why));
    free(buf);
    if (err && !aas_err_is_retriable(err) && res->status == AAS_STATUS_SUCCEEDED) {
        /* The result cannot be stored (e.g. larger than Redis takes): the
         * job fails with that reason rather than retrying forever. */
        char reason[600];
        snprintf(reason, sizeof(reason), "result not stored: %s", why);
        aas_result_t failed = {.job_id = res->job_id, .model = res->model,
                               .status = AAS_STATUS_FAILED, .error = reason,
                               .timings = res->timings};
        return aas_worker_finish(w, &failed, version_str, written);
    }
    if (err)
        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s store finish: %s", res->job_id,
                why);
    return err;
}

void aas_worker_count(aas_worker_t *w, const char *model, aas_status_t status) {
    char labels[AAS_ID_MAX + 64];
    /* model is a validated id: no character needs escaping. */
    snprintf(labels, sizeof(labels), "model=\"%s\",status=\"%s\"",
             model && aas_id_valid(model) ? model : "", aas_status_name(status));
    aas_metric_inc(aas_metrics_counter(w->metrics, "aas_worker_jobs_total",
                                       "Jobs this worker made terminal", labels),
                   1);
}

aas_err_t aas_worker_fail(aas_worker_t *w, const char *job_id,
                                 const char *model, aas_status_t status,
                                 const char *reason) {
    aas_result_t res = {0};
    res.job_id = (char *)job_id;
    res.model = (char *)model;
    res.status = status;
    res.error = (char *)reason;
    int written = 0;
    aas_err_t err = aas_worker_finish(w, &res, NULL, &written);
    if (!err) {
        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s status=%s reason=\"%s\"",
                job_id, aas_status_name(status), reason);
        if (written) {
            w->n_failed++;
            aas_worker_count(w, model, status);
        }
    }
    return err;
}

/* A decoded job from the training topic: RUNNING, then the trainer. */
static aas_err_t aas_worker_process(aas_worker_t *w, aas_job_t *job,
                                    const rd_kafka_message_t *msg,
                                    int64_t t_take, int64_t decode_us) {
    char why[512], src[320];
    snprintf(src, sizeof(src), "%s/%d/%lld", rd_kafka_topic_name(msg->rkt),
             (int)msg->partition, (long long)msg->offset);
    aas_status_t st;
    int64_t attempts = 0;
    aas_err_t err = aas_store_job_start(w->store, job->id, w->id, job->model,
                                        src, &st, &attempts, why, sizeof(why));
    if (err) {
        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s store start: %s", job->id, why);
        return err;
    }
    if (aas_status_is_terminal(st)) {
        /* A redelivery of a finished job: its result stands. */
        w->n_skipped++;
        AAS_LOG(AAS_LOG_DEBUG, "worker", "job=%s skip status=%s", job->id,
                aas_status_name(st));
        return AAS_ERR_OK;
    }
    if (attempts > w->max_attempts) {
        /* Taken this often without an outcome: it most likely takes its
         * worker down with it (or never finishes).  Stop the loop. */
        snprintf(why, sizeof(why), "gave up after %lld attempts without an "
                 "outcome (job.max.attempts=%lld)", (long long)attempts - 1,
                 (long long)w->max_attempts);
        return aas_worker_fail(w, job->id, job->model, AAS_STATUS_FAILED, why);
    }
    int from_train = strcmp(rd_kafka_topic_name(msg->rkt), w->train_topic) == 0;
    if (job->kind == AAS_JOB_TRAIN && !from_train)
        return aas_worker_fail(w, job->id, job->model, AAS_STATUS_FAILED,
                               "training jobs are not served on the "
                               "inference topic; publish them to topic.train");
    if (job->kind == AAS_JOB_INFER && from_train)
        return aas_worker_fail(w, job->id, job->model, AAS_STATUS_FAILED,
                               "inference jobs are not served on the training "
                               "topic; publish them to topic.infer");
    int64_t now = aas_now_ms();
    if (job->deadline_ms > 0 && now > job->deadline_ms) {
        snprintf(why, sizeof(why), "deadline passed %lld ms before a worker "
                 "took the job", (long long)(now - job->deadline_ms));
        return aas_worker_fail(w, job->id, job->model, AAS_STATUS_EXPIRED, why);
    }

    if (job->kind == AAS_JOB_TRAIN) {
        err = aas_trainer_start(w->conf, job, INT64_MAX, &w->trainer, why, sizeof(why));
        if (err) {
            if (aas_err_is_retriable(err)) return err;
            return aas_worker_fail(w, job->id, job->model, AAS_STATUS_FAILED, why);
        }
        snprintf(w->trainer_topic, sizeof(w->trainer_topic), "%s",
                 rd_kafka_topic_name(msg->rkt));
        w->trainer_partition = msg->partition;
        w->trainer_offset = msg->offset;
        AAS_LOG(AAS_LOG_INFO, "worker", "job=%s training started from %s",
                aas_trainer_job_id(w->trainer), src);
        return AAS_ERR_OK; /* the caller sees w->trainer and holds the message */
    }

    /* Inference jobs come through batch.c; on this topic they failed above. */
    return aas_worker_fail(w, job->id, job->model, AAS_STATUS_FAILED,
                           "unexpected job kind");
}

aas_msg_outcome_t aas_worker_undecodable(aas_worker_t *w, const rd_kafka_message_t *msg,
                                         aas_err_t err, const char *why,
                                         const char *job_id) {
    AAS_LOG(AAS_LOG_ERROR, "worker",
            "undecodable message topic=%s partition=%d offset=%lld "
            "job=%s error=%s reason=\"%s\"",
            rd_kafka_topic_name(msg->rkt), (int)msg->partition,
            (long long)msg->offset, job_id[0] ? job_id : "-",
            aas_err_name(err), why);
    if (aas_worker_dlq_send(w, msg, err, why)) return AAS_MSG_RETRY;
    if (!job_id[0]) return AAS_MSG_DONE;
    char reason[600];
    snprintf(reason, sizeof(reason), "rejected message: %s", why);
    return aas_worker_fail(w, job_id, NULL, AAS_STATUS_FAILED, reason) ? AAS_MSG_RETRY
                                                                       : AAS_MSG_DONE;
}

/* One Kafka message: decode, then run or hand to the trainer. */
static aas_msg_outcome_t aas_worker_handle(aas_worker_t *w,
                                           const rd_kafka_message_t *msg) {
    char why[512], job_id[AAS_ID_MAX + 1];
    aas_job_t job;
    int64_t t_take = aas_mono_us();
    aas_err_t err = aas_codec_job_decode(w->codec, msg->payload, msg->len,
                                         &w->limits, &job, job_id, why,
                                         sizeof(why));
    if (err) return aas_worker_undecodable(w, msg, err, why, job_id);
    if (job.kind == AAS_JOB_TRAIN && w->trainer) {
        aas_job_clear(&job); /* one training at a time: this one waits */
        return AAS_MSG_HOLD;
    }
    aas_trainer_t *before = w->trainer;
    err = aas_worker_process(w, &job, msg, t_take, aas_mono_us() - t_take);
    aas_job_clear(&job); /* emptied if a trainer took it */
    if (err && !aas_err_is_retriable(err)) {
        /* The outcome cannot be recorded and retrying will not help (e.g.
         * a key of the wrong type in Redis): park the message in the
         * dead-letter topic rather than block the partition or drop it. */
        snprintf(why, sizeof(why), "outcome could not be recorded: %s",
                 aas_err_str(err));
        AAS_LOG(AAS_LOG_ERROR, "worker", "job=%s %s; dead-lettered", job_id, why);
        return aas_worker_dlq_send(w, msg, err, why) ? AAS_MSG_RETRY : AAS_MSG_DONE;
    }
    if (err) return AAS_MSG_RETRY;
    return w->trainer != before ? AAS_MSG_TAKEN : AAS_MSG_DONE;
}

static void aas_worker_store_offset_at(aas_worker_t *w, const char *topic,
                                       int32_t partition, int64_t offset) {
    rd_kafka_topic_partition_list_t *p = rd_kafka_topic_partition_list_new(1);
    if (!p) return;
    rd_kafka_topic_partition_list_add(p, topic, partition)->offset = offset + 1;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(w->consumer, p);
    if (!err && p->elems[0].err) err = p->elems[0].err;
    rd_kafka_topic_partition_list_destroy(p);
    if (err) {
        /* The partition was revoked meanwhile: its next owner re-runs the
         * job and finds it terminal; nothing is lost. */
        AAS_LOG(AAS_LOG_WARN, "worker", "offset store %s/%d@%lld: %s", topic,
                (int)partition, (long long)offset, rd_kafka_err2str(err));
    }
}

void aas_worker_store_offset(aas_worker_t *w, const rd_kafka_message_t *msg) {
    aas_worker_store_offset_at(w, rd_kafka_topic_name(msg->rkt), msg->partition,
                               msg->offset);
}

/* Put the partition back to msg's offset so the message comes again. */
void aas_worker_rewind(aas_worker_t *w, const rd_kafka_message_t *msg) {
    rd_kafka_topic_partition_list_t *p = rd_kafka_topic_partition_list_new(1);
    if (!p) return;
    rd_kafka_topic_partition_list_add(p, rd_kafka_topic_name(msg->rkt),
                                      msg->partition)->offset = msg->offset;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(w->consumer, p, 10000);
    if (error) {
        AAS_LOG(AAS_LOG_ERROR, "worker", "seek %s/%d@%lld: %s",
                rd_kafka_topic_name(msg->rkt), (int)msg->partition,
                (long long)msg->offset, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (p->elems[0].err) {
        AAS_LOG(AAS_LOG_ERROR, "worker", "seek %s/%d@%lld: %s",
                rd_kafka_topic_name(msg->rkt), (int)msg->partition,
                (long long)msg->offset, rd_kafka_err2str(p->elems[0].err));
    }
    rd_kafka_topic_partition_list_destroy(p);
}

static void aas_worker_pause(aas_worker_t *w, int pause) {
    rd_kafka_topic_partition_list_t *a = NULL;
    rd_kafka_resp_err_t err = rd_kafka_assignment(w->consumer, &a);
    if (!err && a->cnt > 0)
        err = pause ? rd_kafka_pause_partitions(w->consumer, a)
                    : rd_kafka_resume_partitions(w->consumer, a);
    if (err)
        AAS_LOG(AAS_LOG_WARN, "worker", "%s partitions: %s",
                pause ? "pause" : "resume", rd_kafka_err2str(err));
    if (a) rd_kafka_topic_partition_list_destroy(a);
    if (!pause && w->held && w->held->cnt > 0 &&
        (err = rd_kafka_pause_partitions(w->consumer, w->held)))
        AAS_LOG(AAS_LOG_WARN, "worker", "re-pause held partitions: %s",
                rd_kafka_err2str(err));
}

/* Pause msg's partition until the running training job ends. */
static void aas_worker_hold(aas_worker_t *w, const rd_kafka_message_t *msg) {
    const char *topic = rd_kafka_topic_name(msg->rkt);
    if (!rd_kafka_topic_partition_list_find(w->held, topic, msg->partition))
        rd_kafka_topic_partition_list_add(w->held, topic, msg->partition);
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    if (!one) return;
    rd_kafka_topic_partition_list_add(one, topic, msg->partition);
    rd_kafka_resp_err_t err = rd_kafka_pause_partitions(w->consumer, one);
    if (err)
        AAS_LOG(AAS_LOG_WARN, "worker", "hold %s/%d: %s", topic, (int)msg->partition,
                rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(one);
}

/* The training thread finished: record its outcome (retrying later on a
 * transient failure), store its offset, release held partitions. */
static void aas_worker_reap_trainer(aas_worker_t *w) {
    if (!w->trainer || !aas_trainer_done(w->trainer) ||
        aas_mono_us() < w->trainer_retry_at_us)
        return;
    char why[512];
    aas_err_t err = aas_trainer_record(w->trainer, w->store, w->codec, w->id, why,
                                       sizeof(why));
    if (err && aas_err_is_retriable(err)) {
        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s training outcome not recorded yet: %s",
                aas_trainer_job_id(w->trainer), why);
        w->trainer_retry_at_us = aas_mono_us() + w->backoff_max_ms * 1000;
        return;
    }
    if (err)
        AAS_LOG(AAS_LOG_ERROR, "worker", "job=%s training outcome: %s",
                aas_trainer_job_id(w->trainer), why);
    else
        AAS_LOG(AAS_LOG_INFO, "worker", "job=%s training recorded",
                aas_trainer_job_id(w->trainer));
    aas_worker_store_offset_at(w, w->trainer_topic, w->trainer_partition,
                               w->trainer_offset);
    aas_trainer_destroy(w->trainer);
    w->trainer = NULL;
    if (w->held->cnt > 0) {
        rd_kafka_resp_err_t kerr = rd_kafka_resume_partitions(w->consumer, w->held);
        if (kerr)
            AAS_LOG(AAS_LOG_WARN, "worker", "resume held partitions: %s",
                    rd_kafka_err2str(kerr));
        rd_kafka_topic_partition_list_destroy(w->held);
        w->held = rd_kafka_topic_partition_list_new(4);
    }
}

/* After a transient failure: stop fetching, wait (exponential backoff with
 * full jitter), keep the group membership alive by polling, resume. */
static void aas_worker_backoff(aas_worker_t *w, volatile sig_atomic_t *stop) {
    w->n_retries++;
    w->rng = w->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    int64_t wait = w->backoff_ms / 2 +
                   (int64_t)((w->rng >> 33) % (uint64_t)(w->backoff_ms / 2 + 1));
    AAS_LOG(AAS_LOG_WARN, "worker", "transient failure, pausing backoff_ms=%lld "
            "retries=%llu", (long long)wait, (unsigned long long)w->n_retries);
    aas_worker_pause(w, 1);
    int64_t until = aas_mono_us() + wait * 1000;
    while (!*stop && aas_mono_us() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, 50);
        if (!m) continue;
        /* Fetched before the pause or from a new assignment: not handled
         * now, so it must come again. */
        if (!m->err) aas_worker_rewind(w, m);
        rd_kafka_message_destroy(m);
    }
    aas_worker_pause(w, 0);
    w->backoff_ms = w->backoff_ms * 2 > w->backoff_max_ms ? w->backoff_max_ms
                                                         : w->backoff_ms * 2;
}

/* Liveness and load for the scheduler: counters, completion rate since the
 * last beat, assigned partitions, the training job if any. */
static void aas_worker_heartbeat(aas_worker_t *w) {
    int64_t now = aas_mono_us();
    if (now < w->hb_next_us) return;
    double dt = w->hb_last_us ? (double)(now - w->hb_last_us) / 1e6 : 0;
    double rate = dt > 0 ? (double)(w->n_done + w->n_failed - w->hb_last_done) / dt : 0;
    w->hb_last_us = now;
    w->hb_last_done = w->n_done + w->n_failed;
    w->hb_next_us = now + w->hb_period_us;
    char parts[1024] = "";
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(w->consumer, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        size_t n = 0;
        for (int i = 0; i < a->cnt && n < sizeof(parts) - 80; i++)
            n += (size_t)snprintf(parts + n, sizeof(parts) - n, "%s%s/%d", i ? "," : "",
                                  a->elems[i].topic, (int)a->elems[i].partition);
        rd_kafka_topic_partition_list_destroy(a);
    }
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    host[strcspn(host, "\"\\")] = '\0';
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"host\":\"%s\",\"pid\":%d,\"started_ms\":%lld,"
             "\"done\":%llu,\"failed\":%llu,\"skipped\":%llu,\"dlq\":%llu,"
             "\"retries\":%llu,\"rate\":%.3f,\"training\":%s%s%s,"
             "\"partitions\":\"%s\",\"ts_ms\":%lld}",
             w->id, host, (int)getpid(), (long long)w->started_ms,
             (unsigned long long)w->n_done, (unsigned long long)w->n_failed,
             (unsigned long long)w->n_skipped, (unsigned long long)w->n_dlq,
             (unsigned long long)w->n_retries, rate, w->trainer ? "\"" : "",
             w->trainer ? aas_trainer_job_id(w->trainer) : "null", w->trainer ? "\"" : "",
             parts, (long long)aas_now_ms());
    char why[256];
    int ttl = (int)(3 * w->hb_period_us / 1000000) + 1;
    if (aas_store_heartbeat(w->store, w->id, json, ttl, why, sizeof(why)))
        AAS_LOG(AAS_LOG_WARN, "worker", "heartbeat not written: %s", why);
}

/* The next message within timeout_ms, or NULL; errors are logged here. */
static rd_kafka_message_t *aas_worker_poll(aas_worker_t *w, int timeout_ms) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, timeout_ms);
    if (m && m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            AAS_LOG(AAS_LOG_WARN, "worker", "consume: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        m = NULL;
    }
    return m;
}

static int aas_worker_is_infer(const aas_worker_t *w, const rd_kafka_message_t *m) {
    return strcmp(rd_kafka_topic_name(m->rkt), w->infer_topic) == 0;
}

/*
 * A window of inference messages after msgs[0]: what is already fetched,
 * or, with a max delay, what arrives within that time, up to the max rows
 * (and never more than n_slots messages).  A training-topic message ends the window and comes
 * back in *tail; so does a rebalance (partitions revoked meanwhile).
 */
static size_t aas_worker_collect(aas_worker_t *w, rd_kafka_message_t **msgs,
                                 rd_kafka_message_t **tail) {
    size_t n = 1;
    /* The window waits on behalf of the model of the job that opened it:
     * up to its max delay, until it holds its max rows (one or more a job);
     * jobs of other models that come meanwhile ride along. */
    int64_t rows, delay_us;
    aas_worker_batch_limits(w, msgs[0], &rows, &delay_us);
    size_t cap = (size_t)rows < w->n_slots ? (size_t)rows : w->n_slots;
    int64_t deadline = aas_mono_us() + delay_us;
    *tail = NULL;
    while (n < cap && !w->revoked) {
        int64_t left = deadline - aas_mono_us();
        rd_kafka_message_t *m =
            aas_worker_poll(w, left > 0 ? (int)((left + 999) / 1000) : 0);
        if (!m) {
            if (left <= 0) break;
            continue;
        }
        if (!aas_worker_is_infer(w, m)) {
            *tail = m;
            break;
        }
        msgs[n++] = m;
    }
    return n;
}

/*
 * Offsets after a window: per partition, up to the first message that is
 * not done (that one is rewound, and everything after it in the window
 * comes again: idempotent, found terminal).  One offsets_store call.
 */
static void aas_worker_settle(aas_worker_t *w, rd_kafka_message_t *const *msgs,
                              const aas_msg_outcome_t *out, size_t n,
                              volatile sig_atomic_t *stop) {
    rd_kafka_topic_partition_list_t *done = rd_kafka_topic_partition_list_new(8);
    rd_kafka_topic_partition_list_t *blocked = rd_kafka_topic_partition_list_new(4);
    if (!done || !blocked) {
        /* Without memory for the lists: store nothing, the window comes again. */
        for (size_t i = 0; i < n; i++)
            if (out[i] == AAS_MSG_RETRY) aas_worker_rewind(w, msgs[i]);
    } else {
        for (size_t i = 0; i < n; i++) {
            const char *topic = rd_kafka_topic_name(msgs[i]->rkt);
            int32_t part = msgs[i]->partition;
            if (rd_kafka_topic_partition_list_find(blocked, topic, part)) continue;
            if (out[i] == AAS_MSG_DONE) {
                rd_kafka_topic_partition_t *p =
                    rd_kafka_topic_partition_list_find(done, topic, part);
                if (!p) p = rd_kafka_topic_partition_list_add(done, topic, part);
                p->offset = msgs[i]->offset + 1;
            } else {
                aas_worker_rewind(w, msgs[i]);
                rd_kafka_topic_partition_list_add(blocked, topic, part);
            }
        }
        if (done->cnt > 0) {
            rd_kafka_resp_err_t err = rd_kafka_offsets_store(w->consumer, done);
            for (int i = 0; i < done->cnt; i++) {
                rd_kafka_resp_err_t e = err ? err : done->elems[i].err;
                /* Revoked meanwhile: its next owner re-runs the jobs and
                 * finds them terminal; nothing is lost. */
                if (e)
                    AAS_LOG(AAS_LOG_WARN, "worker", "offset store %s/%d@%lld: %s",
                            done->elems[i].topic, (int)done->elems[i].partition,
                            (long long)done->elems[i].offset, rd_kafka_err2str(e));
            }
        }
    }
    int retry = 0;
    for (size_t i = 0; i < n; i++) retry |= out[i] == AAS_MSG_RETRY;
    if (done) rd_kafka_topic_partition_list_destroy(done);
    if (blocked) rd_kafka_topic_partition_list_destroy(blocked);
    if (retry) aas_worker_backoff(w, stop);
    else w->backoff_ms = w->backoff_min_ms;
}

/* A training-topic message, one at a time (as before batching). */
static void aas_worker_one(aas_worker_t *w, rd_kafka_message_t *msg,
                           volatile sig_atomic_t *stop) {
    switch (aas_worker_handle(w, msg)) {
    case AAS_MSG_DONE:
        aas_worker_store_offset(w, msg);
        w->backoff_ms = w->backoff_min_ms;
        break;
    case AAS_MSG_TAKEN:
        aas_worker_hold(w, msg);
        break;
    case AAS_MSG_HOLD:
        aas_worker_rewind(w, msg);
        aas_worker_hold(w, msg);
        break;
    case AAS_MSG_RETRY:
        /* Not recorded: this message must be delivered again. */
        aas_worker_rewind(w, msg);
        aas_worker_backoff(w, stop);
        break;
    }
}

aas_err_t aas_worker_run(aas_worker_t *w, volatile sig_atomic_t *stop) {
    AAS_LOG(AAS_LOG_INFO, "worker", "worker=%s serving topic=%s batch.max.rows=%lld "
            "batch.max.delay.us=%lld", w->id, w->infer_topic, (long long)w->batch_max_rows,
            (long long)w->batch_max_delay_us);
    rd_kafka_message_t **msgs = calloc(w->n_slots, sizeof(*msgs));
    aas_msg_outcome_t *out = calloc(w->n_slots, sizeof(*out));
    if (!msgs || !out) {
        free(msgs);
        free(out);
        AAS_LOG(AAS_LOG_ERROR, "worker", "out of memory for a window of %zu", w->n_slots);
        return AAS_ERR_NOMEM;
    }
    while (!*stop) {
        aas_worker_reap_trainer(w);
        aas_worker_heartbeat(w);
        w->revoked = 0;
        rd_kafka_message_t *msg = aas_worker_poll(w, 100), *tail = msg;
        if (!msg) continue;
        if (aas_worker_is_infer(w, msg)) {
            msgs[0] = msg;
            size_t n = aas_worker_collect(w, msgs, &tail);
            aas_worker_batch_run(w, msgs, n, out);
            aas_worker_settle(w, msgs, out, n, stop);
            for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(msgs[i]);
        }
        if (tail) {
            aas_worker_one(w, tail, stop);
            rd_kafka_message_destroy(tail);
        }
    }
    free(msgs);
    free(out);
    if (w->trainer) {
        /* Shutting down mid-training: stop at the next batch and hand the
         * job back (no outcome, no offset): another worker runs it. */
        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s training interrupted by shutdown; "
                "it will be redelivered", aas_trainer_job_id(w->trainer));
        aas_trainer_destroy(w->trainer);
        w->trainer = NULL;
    }
    AAS_LOG(AAS_LOG_INFO, "worker",
            "worker=%s stopping done=%llu failed=%llu skipped=%llu dlq=%llu "
            "retries=%llu",
            w->id, (unsigned long long)w->n_done,
            (unsigned long long)w->n_failed, (unsigned long long)w->n_skipped,
            (unsigned long long)w->n_dlq, (unsigned long long)w->n_retries);
    return AAS_ERR_OK;
}

/* ---- set-up ---- */

aas_err_t aas_worker_new(const aas_conf_t *conf, aas_worker_t **out,
                         char *errstr, size_t errstr_size) {
    aas_worker_t *w = calloc(1, sizeof(*w));
    if (!w) return AAS_ERR_NOMEM;
    w->conf = conf;
    aas_err_t err = AAS_ERR_OK;
    const char *id = aas_conf_get(conf, "worker.id");
    if (id) {
        snprintf(w->id, sizeof(w->id), "%s", id);
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
    snprintf(w->dlq_topic, sizeof(w->dlq_topic), "%s",
             aas_conf_get(conf, "topic.dlq"));
    snprintf(w->train_topic, sizeof(w->train_topic), "%s",
             aas_conf_get(conf, "topic.train"));
    if (!(w->held = rd_kafka_topic_partition_list_new(4))) {
        err = AAS_ERR_NOMEM;
        goto fail;
    }
    aas_codec_limits_default(&w->limits);
    w->limits.max_message_bytes = (size_t)aas_conf_get_int(conf, "job.max.bytes");
    w->limits.max_tensor_elems = (uint64_t)aas_conf_get_int(conf, "job.max.elems");
    w->limits.max_text_bytes = (size_t)aas_conf_get_int(conf, "job.max.text.bytes");
    w->max_rows = aas_conf_get_int(conf, "job.max.rows");
    w->max_attempts = aas_conf_get_int(conf, "job.max.attempts");
    w->hb_period_us = aas_conf_get_int(conf, "worker.heartbeat.ms") * 1000;
    w->batch_max_rows = aas_conf_get_int(conf, "batch.max.rows");
    /* One threading model: oneDNN runs every primitive on OpenMP (libgomp)
     * from this thread; size its pool to the cores this worker is given
     * (docs/performance.md, "Threads"). */
    {
        int threads = (int)aas_conf_get_int(conf, "worker.threads");
        const char *env = getenv("OMP_NUM_THREADS");
        if (threads == 0 && !(env && *env)) {
            cpu_set_t set;
            threads = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
        }
        if (threads > 0) omp_set_num_threads(threads);
        AAS_LOG(AAS_LOG_INFO, "worker", "compute threads=%d (OpenMP)", omp_get_max_threads());
    }
    w->batch_max_delay_us = aas_conf_get_int(conf, "batch.max.delay.us");
    /* Room for the largest window any model may ask for (its serving
     * option batch_max_rows goes up to 4096); untouched slots cost no RSS. */
    w->n_slots = (size_t)(w->batch_max_rows > 4096 ? w->batch_max_rows : 4096);
    w->started_ms = aas_now_ms();
    w->backoff_min_ms = w->backoff_ms = aas_conf_get_int(conf, "retry.backoff.ms");
    w->backoff_max_ms = aas_conf_get_int(conf, "retry.backoff.max.ms");
    w->rng = (uint64_t)aas_mono_us() ^ ((uint64_t)getpid() << 32);

    if ((err = aas_codec_new(&w->codec, errstr, errstr_size))) goto fail;
    if ((err = aas_worker_batch_init(w, errstr, errstr_size))) goto fail;
    if ((err = aas_metrics_new(&w->metrics, errstr, errstr_size))) goto fail;
    {
        static const double rows_b[] = AAS_METRICS_ROWS_BOUNDS;
        static const double secs_b[] = AAS_METRICS_SECONDS_BOUNDS;
        /* A forward pass of a small model takes microseconds. */
        static const double comp_b[] = {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
                                        2.5e-3, 5e-3, 0.01, 0.025, 0.1, 1, 10};
        w->m_batch_rows = aas_metrics_histogram(
            w->metrics, "aas_worker_batch_rows", "Rows per batched forward pass", NULL,
            rows_b, sizeof(rows_b) / sizeof(rows_b[0]));
        w->m_queue_s = aas_metrics_histogram(
            w->metrics, "aas_worker_queue_seconds",
            "From the job's submission (client clock) until a worker took it", NULL, secs_b,
            sizeof(secs_b) / sizeof(secs_b[0]));
        w->m_compute_s = aas_metrics_histogram(
            w->metrics, "aas_worker_compute_seconds", "Time of one batched forward pass",
            NULL, comp_b, sizeof(comp_b) / sizeof(comp_b[0]));
        w->m_inflight = aas_metrics_gauge(w->metrics, "aas_worker_inflight",
                                          "Jobs taken but not yet finished", NULL);
    }
    if ((err = aas_metrics_serve_conf(w->metrics, conf, errstr, errstr_size))) goto fail;
    if ((err = aas_cli_store_new(conf, &w->store, errstr, errstr_size)))
        goto fail;
    aas_model_cache_conf_t mc = {
        .max_models = (size_t)aas_conf_get_int(conf, "model.cache.size"),
        .max_bytes = (size_t)aas_conf_get_int(conf, "model.cache.mb") << 20,
        .max_blob_bytes = (size_t)aas_conf_get_int(conf, "model.max.mb") << 20,
        .refresh_ms = aas_conf_get_int(conf, "model.refresh.ms")};
    if ((err = aas_model_cache_new(&mc, &w->models))) goto fail;

    /* Consumer: offsets are stored by us after Redis has the outcome, and
     * committed in the background from what we stored. */
    char fetch_max[24];
    snprintf(fetch_max, sizeof(fetch_max), "%lld",
             aas_conf_get_int(conf, "job.max.bytes") + 1024);
    const char *cdefs[] = {"group.id", aas_conf_get(conf, "worker.group"),
                           "partition.assignment.strategy", "cooperative-sticky",
                           "enable.auto.offset.store", "false",
                           "enable.auto.commit", "true",
                           "auto.commit.interval.ms", "1000",
                           "auto.offset.reset", "earliest",
                           "session.timeout.ms", "10000",
                           "heartbeat.interval.ms", "1000",
                           "fetch.wait.max.ms", "10",
                           /* See partitions the scheduler adds within 10 s. */
                           "topic.metadata.refresh.interval.ms", "10000",
                           "queued.max.messages.kbytes", "65536",
                           "message.max.bytes", fetch_max,
                           "fetch.message.max.bytes", fetch_max,
                           NULL};
    rd_kafka_conf_t *kc;
    if ((err = aas_kafka_conf_new(conf, w->id, cdefs, &kc, errstr, errstr_size)))
        goto fail;
    rd_kafka_conf_set_rebalance_cb(kc, aas_worker_rebalance_cb);
    rd_kafka_conf_set_opaque(kc, w);
    char kerr[512];
    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, kc, kerr, sizeof(kerr));
    if (!w->consumer) {
        rd_kafka_conf_destroy(kc);
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "consumer: %s", kerr);
        goto fail;
    }
    rd_kafka_poll_set_consumer(w->consumer);

    const char *pdefs[] = {"enable.idempotence", "true", "linger.ms", "0",
                           "message.max.bytes", fetch_max, NULL};
    if ((err = aas_kafka_conf_new(conf, w->id, pdefs, &kc, errstr, errstr_size)))
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(kc, aas_worker_dr_cb);
    w->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, kc, kerr, sizeof(kerr));
    if (!w->dlq) {
        rd_kafka_conf_destroy(kc);
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "producer: %s", kerr);
        goto fail;
    }

    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    if (!topics) {
        err = AAS_ERR_NOMEM;
        goto fail;
    }
    rd_kafka_topic_partition_list_add(topics, w->infer_topic,
                                      RD_KAFKA_PARTITION_UA);
    if (aas_conf_get_int(conf, "worker.train"))
        rd_kafka_topic_partition_list_add(topics, w->train_topic,
                                          RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kr = rd_kafka_subscribe(w->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kr) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "subscribe %s: %s",
                          w->infer_topic, rd_kafka_err2str(kr));
        goto fail;
    }
    *out = w;
    return AAS_ERR_OK;
fail:
    aas_worker_destroy(w);
    return err;
}

void aas_worker_destroy(aas_worker_t *w) {
    if (!w) return;
    if (w->consumer) {
        /* Commit what we stored while we still own the partitions (a
         * commit during close races the leave-group rebalance), waiting a
         * bounded time: a broker that is gone must not hang shutdown. */
        rd_kafka_queue_t *q = rd_kafka_queue_new(w->consumer);
        if (q) {
            rd_kafka_resp_err_t cerr = rd_kafka_commit_queue(w->consumer, NULL, q,
                                                             NULL, NULL);
            rd_kafka_event_t *ev = cerr ? NULL : rd_kafka_queue_poll(q, 5000);
            if (ev) {
                cerr = rd_kafka_event_error(ev);
                rd_kafka_event_destroy(ev);
            }
            if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                AAS_LOG(AAS_LOG_WARN, "worker", "final commit: %s",
                        rd_kafka_err2str(cerr));
            rd_kafka_queue_destroy(q);
        }
        /* Leaves the group. */
        rd_kafka_resp_err_t err = rd_kafka_consumer_close(w->consumer);
        if (err)
            AAS_LOG(AAS_LOG_WARN, "worker", "consumer close: %s",
                    rd_kafka_err2str(err));
        rd_kafka_destroy(w->consumer);
    }
    if (w->dlq) {
        if (rd_kafka_flush(w->dlq, 10000))
            AAS_LOG(AAS_LOG_WARN, "worker", "dead-letter messages still queued at exit");
        rd_kafka_destroy(w->dlq);
    }
    aas_trainer_destroy(w->trainer);
    if (w->held) rd_kafka_topic_partition_list_destroy(w->held);
    aas_model_cache_destroy(w->models);
    aas_store_destroy(w->store);
    aas_worker_batch_free(w);
    aas_metrics_destroy(w->metrics);
    aas_codec_destroy(w->codec);
    free(w);
}
