/*
 * batch.c - a window of inference messages run as batched forward passes
 * (dynamic batching; docs/performance.md, "Dynamic batching").
 *
 * The steps, each over the whole window:
 *   1. decode every message (an undecodable one is dead-lettered alone);
 *   2. mark all jobs RUNNING in one pipelined Redis round trip;
 *   3. settle what needs no model: redeliveries of finished jobs, jobs that
 *      came back too often, training jobs on this topic, expired deadlines;
 *   4. group the rest by (model, requested version), groups with the
 *      highest priority first, and within a group by priority; resolve the
 *      model once per group, check each job's inputs, and run the group in
 *      passes of at most batch.max.rows rows;
 *   5. after each pass, write its results (and the failures so far) in one
 *      pipelined round trip, so higher-priority passes finish first.
 * The caller stores offsets from the outcomes (worker.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker_int.h"

/* One message of the window. */
typedef struct aas_slot_s {
    rd_kafka_message_t *msg;
    aas_job_t job;
    char job_id[AAS_ID_MAX + 1];
    int decoded;
    int64_t t_take, decode_us, rows;
    int settled;                 /* out[i] is final */
    aas_msg_outcome_t outcome;
    int pending;                 /* a finish is queued for the next flush */
    void *buf;                   /* encoded result (malloc'ed) */
    size_t len;
    aas_status_t status;
    char reason[512];
    char vstr[24];
} aas_slot_t;

/* Everything a window needs, sized once for n_slots messages, so that a
 * window allocates nothing but its encoded results. */
struct aas_batch_s {
    aas_slot_t *slots;
    size_t *order, *gstart, *glen, *idx, *pass;
    int *gdone;
    const aas_job_t **jobs;
    int64_t *rows;
    aas_result_t *res;
    aas_store_start_t *start;
    aas_store_finish_t *finish;
    aas_infer_batch_t *infer;
};

void aas_worker_batch_limits(aas_worker_t *w, const rd_kafka_message_t *msg,
                             int64_t *max_rows, int64_t *max_delay_us) {
    char model[AAS_ID_MAX + 1];
    aas_model_serving_t sv;
    *max_rows = w->batch_max_rows;
    *max_delay_us = w->batch_max_delay_us;
    if (aas_codec_job_peek_model(w->codec, msg->payload, msg->len, model) ||
        aas_model_cache_serving_known(w->models, model, &sv))
        return;
    if (sv.batch_max_rows > 0) *max_rows = sv.batch_max_rows;
    if (sv.batch_max_delay_us >= 0) *max_delay_us = sv.batch_max_delay_us;
}

aas_err_t aas_worker_batch_init(aas_worker_t *w, char *errstr, size_t errstr_size) {
    size_t n = w->n_slots;
    aas_batch_t *b = calloc(1, sizeof(*b));
    w->batch = b;
    if (!b || !(b->slots = calloc(n, sizeof(*b->slots))) ||
        !(b->order = calloc(n, sizeof(size_t))) || !(b->gstart = calloc(n, sizeof(size_t))) ||
        !(b->glen = calloc(n, sizeof(size_t))) || !(b->idx = calloc(n, sizeof(size_t))) ||
        !(b->pass = calloc(n, sizeof(size_t))) || !(b->gdone = calloc(n, sizeof(int))) ||
        !(b->jobs = calloc(n, sizeof(*b->jobs))) || !(b->rows = calloc(n, sizeof(int64_t))) ||
        !(b->res = calloc(n, sizeof(*b->res))) || !(b->start = calloc(n, sizeof(*b->start))) ||
        !(b->finish = calloc(n, sizeof(*b->finish))))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "out of memory for a window of %zu messages", n);
    return aas_infer_batch_new(&b->infer, errstr, errstr_size);
}

void aas_worker_batch_free(aas_worker_t *w) {
    aas_batch_t *b = w->batch;
    if (!b) return;
    free(b->slots);
    free(b->order);
    free(b->gstart);
    free(b->glen);
    free(b->idx);
    free(b->pass);
    free(b->gdone);
    free(b->jobs);
    free(b->rows);
    free(b->res);
    free(b->start);
    free(b->finish);
    aas_infer_batch_destroy(b->infer);
    free(b);
    w->batch = NULL;
}

static void aas_slot_settle(aas_slot_t *s, aas_msg_outcome_t o) {
    s->settled = 1;
    s->pending = 0;
    s->outcome = o;
}

/* Queue a terminal non-success outcome for the next flush. */
static void aas_slot_fail(aas_slot_t *s, aas_status_t st, const char *reason) {
    s->status = st;
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
    s->pending = 1;
}

/* Write every pending outcome in one round trip and settle those slots. */
static void aas_worker_flush(aas_worker_t *w, size_t n) {
    aas_slot_t *slots = w->batch->slots;
    aas_store_finish_t *items = w->batch->finish;
    size_t *idx = w->batch->idx, k = 0;
    char why[512];
    for (size_t i = 0; i <= n; i++) {
        if (i < n && slots[i].pending) {
            aas_slot_t *s = &slots[i];
            int ok = s->status == AAS_STATUS_SUCCEEDED;
            if (!ok && !s->buf) {
                /* A failure has a result record too: status and reason. */
                aas_result_t r = {.job_id = s->job.id, .model = s->job.model,
                                  .status = s->status, .error = s->reason,
                                  .worker_id = w->id, .finished_ms = aas_now_ms()};
                r.timings.decode_us = s->decode_us;
                r.timings.total_us = aas_mono_us() - s->t_take;
                if (aas_codec_result_encode(w->codec, &r, &s->buf, &s->len, why, sizeof(why)))
                    AAS_LOG(AAS_LOG_ERROR, "worker", "job=%s encode result: %s",
                            s->job.id, why);
            }
            items[k] = (aas_store_finish_t){
                .job_id = s->job.id, .status = s->status,
                .model_version = s->vstr[0] ? s->vstr : NULL,
                .result = s->buf, .result_len = s->len,
                .error = ok ? NULL : s->reason};
            idx[k++] = i;
        }
        if (k == 0 || i < n) continue;
        aas_store_job_finish_many(w->store, items, k, why, sizeof(why));
        for (size_t j = 0; j < k; j++) {
            aas_slot_t *s = &slots[idx[j]];
            aas_err_t err = items[j].err;
            free(s->buf);
            s->buf = NULL;
            if (!err) {
                if (items[j].written) {
                    aas_worker_count(w, s->job.model, s->status);
                    if (s->status == AAS_STATUS_SUCCEEDED) {
                        w->n_done++;
                    } else {
                        w->n_failed++;
                        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s status=%s reason=\"%s\"",
                                s->job.id, aas_status_name(s->status), s->reason);
                    }
                }
                aas_slot_settle(s, AAS_MSG_DONE);
            } else if (aas_err_is_retriable(err)) {
                AAS_LOG(AAS_LOG_WARN, "worker", "job=%s store finish: %s", s->job.id, why);
                aas_slot_settle(s, AAS_MSG_RETRY);
            } else if (s->status == AAS_STATUS_SUCCEEDED) {
                /* The result cannot be stored (e.g. larger than Redis
                 * takes): the job fails with that reason rather than
                 * retrying forever. */
                char reason[600];
                snprintf(reason, sizeof(reason), "result not stored: %s", why);
                aas_err_t ferr = aas_worker_fail(w, s->job.id, s->job.model,
                                                 AAS_STATUS_FAILED, reason);
                aas_slot_settle(s, ferr ? AAS_MSG_RETRY : AAS_MSG_DONE);
            } else {
                /* Neither outcome can be recorded and retrying will not
                 * help (e.g. a key of the wrong type): park the message. */
                AAS_LOG(AAS_LOG_ERROR, "worker", "job=%s outcome could not be "
                        "recorded: %s; dead-lettered", s->job.id, why);
                aas_slot_settle(s, aas_worker_dlq_send(w, s->msg, err, why)
                                       ? AAS_MSG_RETRY : AAS_MSG_DONE);
            }
        }
        k = 0;
    }
}

/* Steps 1-3: decode, mark RUNNING, settle what needs no model.  Leaves
 * the jobs that want a forward pass unsettled and not pending. */
static void aas_worker_admit(aas_worker_t *w, size_t n) {
    aas_slot_t *slots = w->batch->slots;
    char why[512];
    aas_store_start_t *st = w->batch->start;
    size_t *idx = w->batch->idx, k = 0;
    for (size_t i = 0; i < n; i++) {
        aas_slot_t *s = &slots[i];
        s->t_take = aas_mono_us();
        aas_err_t err = aas_codec_job_decode(w->codec, s->msg->payload, s->msg->len,
                                             &w->limits, &s->job, s->job_id, why,
                                             sizeof(why));
        s->decode_us = aas_mono_us() - s->t_take;
        if (err) {
            aas_slot_settle(s, aas_worker_undecodable(w, s->msg, err, why, s->job_id));
            continue;
        }
        s->decoded = 1;
    }
    for (size_t i = 0; i <= n; i++) {
        if (i < n && slots[i].decoded && !slots[i].settled) {
            aas_slot_t *s = &slots[i];
            /* src: where the job came from, for status and debugging. */
            snprintf(s->reason, sizeof(s->reason), "%s/%d/%lld",
                     rd_kafka_topic_name(s->msg->rkt), (int)s->msg->partition,
                     (long long)s->msg->offset);
            st[k] = (aas_store_start_t){.job_id = s->job.id, .model = s->job.model,
                                        .src = s->reason};
            idx[k++] = i;
        }
        if (k == 0 || i < n) continue;
        aas_store_job_start_many(w->store, w->id, st, k, why, sizeof(why));
        for (size_t j = 0; j < k; j++) {
            aas_slot_t *s = &slots[idx[j]];
            s->reason[0] = '\0';
            if (st[j].err) {
                AAS_LOG(AAS_LOG_WARN, "worker", "job=%s store start: %s", s->job.id, why);
                if (aas_err_is_retriable(st[j].err)) {
                    aas_slot_settle(s, AAS_MSG_RETRY);
                } else {
                    snprintf(why, sizeof(why), "outcome could not be recorded: %s",
                             aas_err_str(st[j].err));
                    aas_slot_settle(s, aas_worker_dlq_send(w, s->msg, st[j].err, why)
                                           ? AAS_MSG_RETRY : AAS_MSG_DONE);
                }
                continue;
            }
            if (aas_status_is_terminal(st[j].status)) {
                /* A redelivery of a finished job: its result stands. */
                w->n_skipped++;
                aas_slot_settle(s, AAS_MSG_DONE);
                continue;
            }
            int64_t now = aas_now_ms();
            if (st[j].attempts > w->max_attempts) {
                /* Taken this often without an outcome: it most likely takes
                 * its worker down with it (or never finishes). */
                snprintf(why, sizeof(why), "gave up after %lld attempts without an "
                         "outcome (job.max.attempts=%lld)", (long long)st[j].attempts - 1,
                         (long long)w->max_attempts);
                aas_slot_fail(s, AAS_STATUS_FAILED, why);
            } else if (s->job.kind == AAS_JOB_TRAIN) {
                aas_slot_fail(s, AAS_STATUS_FAILED, "training jobs are not served on the "
                              "inference topic; publish them to topic.train");
            } else if (s->job.deadline_ms > 0 && now > s->job.deadline_ms) {
                snprintf(why, sizeof(why), "deadline passed %lld ms before a worker "
                         "took the job", (long long)(now - s->job.deadline_ms));
                aas_slot_fail(s, AAS_STATUS_EXPIRED, why);
            }
        }
        k = 0;
    }
}

/* Order of the forward-pass candidates: by model and requested version
 * (one group each), then priority (higher first), then arrival. */
static int aas_slot_cmp(const aas_slot_t *slots, size_t ia, size_t ib) {
    const aas_slot_t *a = &slots[ia], *b = &slots[ib];
    int c = strcmp(a->job.model, b->job.model);
    if (!c) {
        const char *va = a->job.model_version ? a->job.model_version : "";
        const char *vb = b->job.model_version ? b->job.model_version : "";
        c = strcmp(va, vb);
    }
    if (!c) c = (a->job.priority < b->job.priority) - (a->job.priority > b->job.priority);
    if (!c) c = (ia > ib) - (ia < ib);
    return c;
}

/* Insertion sort: a window is at most a few hundred jobs, mostly in order. */
static void aas_slot_sort(const aas_slot_t *slots, size_t *order, size_t m) {
    for (size_t i = 1; i < m; i++) {
        size_t v = order[i], j = i;
        for (; j > 0 && aas_slot_cmp(slots, order[j - 1], v) > 0; j--) order[j] = order[j - 1];
        order[j] = v;
    }
}

static int aas_slot_same_group(const aas_slot_t *a, const aas_slot_t *b) {
    const char *va = a->job.model_version ? a->job.model_version : "";
    const char *vb = b->job.model_version ? b->job.model_version : "";
    return strcmp(a->job.model, b->job.model) == 0 && strcmp(va, vb) == 0;
}

/* Run passes over the group's jobs g[0..ng) (sorted by priority). */
static void aas_worker_run_group(aas_worker_t *w, size_t n, const size_t *g, size_t ng) {
    aas_batch_t *b = w->batch;
    aas_slot_t *slots = b->slots;
    char why[512];
    aas_model_t *model;
    int64_t version;
    aas_model_serving_t sv;
    aas_slot_t *first = &slots[g[0]];
    aas_err_t err = aas_model_cache_get_serving(w->models, w->store, first->job.model,
                                                first->job.model_version, &model, &version,
                                                &sv, why, sizeof(why));
    if (err) {
        for (size_t i = 0; i < ng; i++) {
            if (aas_err_is_retriable(err)) aas_slot_settle(&slots[g[i]], AAS_MSG_RETRY);
            else aas_slot_fail(&slots[g[i]], AAS_STATUS_FAILED, why);
        }
        return;
    }
    int64_t max_rows = sv.batch_max_rows > 0 ? sv.batch_max_rows : w->batch_max_rows;
    /* Inputs first: a job that cannot run fails alone. */
    size_t nv = 0;
    for (size_t i = 0; i < ng; i++) {
        aas_slot_t *s = &slots[g[i]];
        if (aas_infer_check(model, &s->job, w->max_rows, &s->rows, why, sizeof(why)))
            aas_slot_fail(s, AAS_STATUS_FAILED, why);
        else
            b->pass[nv++] = g[i];
    }
    for (size_t i = 0; i < nv;) {
        /* A pass holds at most max_rows rows (the model's serving option,
         * else batch.max.rows), except a single job
         * larger than that, which runs alone. */
        size_t np = 0;
        int64_t total = 0;
        const size_t *p = b->pass + i;
        for (; i < nv; i++) {
            aas_slot_t *s = &slots[b->pass[i]];
            if (np > 0 && total + s->rows > max_rows) break;
            b->jobs[np] = &s->job;
            b->rows[np++] = s->rows;
            total += s->rows;
        }
        memset(b->res, 0, sizeof(b->res[0]) * np);
        err = aas_infer_batch_run(b->infer, model, b->jobs, b->rows, np, b->res, why,
                                  sizeof(why));
        aas_metric_observe(w->m_batch_rows, (double)total);
        if (!err) aas_metric_observe(w->m_compute_s, (double)b->res[0].timings.compute_us / 1e6);
        int64_t now = aas_now_ms();
        for (size_t j = 0; j < np; j++) {
            aas_slot_t *s = &slots[p[j]];
            aas_result_t *r = &b->res[j];
            if (err) {
                aas_slot_fail(s, AAS_STATUS_FAILED, why);
                continue;
            }
            snprintf(s->vstr, sizeof(s->vstr), "%lld", (long long)version);
            r->job_id = s->job.id;
            r->model = s->job.model;
            r->model_version = s->vstr;
            r->status = AAS_STATUS_SUCCEEDED;
            r->worker_id = w->id;
            r->finished_ms = now;
            r->timings.queue_ms = s->job.submit_ms > 0 ? now - s->job.submit_ms : 0;
            aas_metric_observe(w->m_queue_s, (double)r->timings.queue_ms / 1e3);
            r->timings.decode_us = s->decode_us;
            r->timings.total_us = aas_mono_us() - s->t_take;
            char ewhy[512];
            aas_err_t eerr = aas_codec_result_encode(w->codec, r, &s->buf, &s->len, ewhy,
                                                     sizeof(ewhy));
            if (eerr) {
                AAS_LOG(AAS_LOG_ERROR, "worker", "job=%s encode result: %s", s->job.id,
                        ewhy);
                aas_slot_fail(s, AAS_STATUS_FAILED, ewhy);
                continue;
            }
            s->status = AAS_STATUS_SUCCEEDED;
            s->pending = 1;
        }
        /* This pass's results (and any failure so far) go out now. */
        aas_worker_flush(w, n);
    }
}

void aas_worker_batch_run(aas_worker_t *w, rd_kafka_message_t *const *msgs, size_t n,
                          aas_msg_outcome_t *out) {
    aas_batch_t *b = w->batch;
    aas_slot_t *slots = b->slots;
    for (size_t i = 0; i < n; i++) {
        memset(&slots[i], 0, sizeof(slots[i]));
        slots[i].msg = msgs[i];
    }
    aas_metric_set(w->m_inflight, (double)n);
    aas_worker_admit(w, n);

    size_t *order = b->order, m = 0;
    for (size_t i = 0; i < n; i++)
        if (slots[i].decoded && !slots[i].settled && !slots[i].pending) order[m++] = i;
    aas_slot_sort(slots, order, m);
    /* Groups with the highest-priority job first: pick the best group
     * still waiting each time (few groups per window). */
    size_t ng = 0;
    for (size_t i = 0; i < m; i++) {
        if (i == 0 || !aas_slot_same_group(&slots[order[i - 1]], &slots[order[i]])) {
            b->gstart[ng] = i;
            b->glen[ng] = 0;
            b->gdone[ng++] = 0;
        }
        b->glen[ng - 1]++;
    }
    for (size_t round = 0; round < ng; round++) {
        size_t best = ng;
        for (size_t gi = 0; gi < ng; gi++)
            if (!b->gdone[gi] &&
                (best == ng || slots[order[b->gstart[gi]]].job.priority >
                                   slots[order[b->gstart[best]]].job.priority))
                best = gi;
        b->gdone[best] = 1;
        aas_worker_run_group(w, n, order + b->gstart[best], b->glen[best]);
    }
    aas_worker_flush(w, n); /* failures of a window without passes */
    aas_metric_set(w->m_inflight, 0);

    for (size_t i = 0; i < n; i++) {
        /* Every slot is settled by now; a slot left unsettled would be a
         * bug, and retrying is the answer that loses nothing. */
        out[i] = slots[i].settled ? slots[i].outcome : AAS_MSG_RETRY;
        if (slots[i].decoded) aas_job_clear(&slots[i].job);
        free(slots[i].buf);
        slots[i].buf = NULL;
    }
}
