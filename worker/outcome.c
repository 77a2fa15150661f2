/* outcome.c - a job's fate from message to terminal status; see outcome.h. */
#include "outcome.h"

#include "fmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Distinct tenant label values a worker exports before it folds the
 * rest into "_other": the series stay bounded whatever clients send. */
#define AAS_OUTCOME_TENANT_LABELS 64
/* Likewise for models, and only registered ones (a resolved version):
 * a name in a payload is anyone's to invent. */
#define AAS_OUTCOME_MODEL_LABELS 64
/* One object, so that "is it _other" is a pointer comparison. */
static const char AAS_OUTCOME_OTHER[] = "_other";

/* Longest a worker waits, in one admit call, for tokens of over-quota
 * jobs before it rewinds them (they come again after the backoff): the
 * wait holds up the whole window, so it is kept short. */
#define AAS_OUTCOME_QUOTA_WAIT_MS 1000

/* The model a job is metered under when its message named none readable. */
#define AAS_OUTCOME_NO_MODEL "_unknown"

struct aas_outcome_s {
    char worker_id[AAS_ID_MAX + 1];
    char infer_topic[256], train_topic[256];
    int64_t max_attempts;
    aas_codec_limits_t limits;
    size_t max_items;
    aas_store_t *store;
    aas_codec_t *codec;
    aas_dlq_t *dlq;
    aas_metrics_t *metrics;
    aas_jobauth_t *auth;
    /* Scratch for the pipelined calls, sized once (max_items). */
    aas_store_start_t *start;
    aas_store_finish_t *finish;
    aas_store_meter_t *meter;
    const char **rel_tenant, **rel_id;  /* quota releases of one call */
    aas_store_quota_item_t *quota;      /* quota admissions of one call */
    char (*usage_txt)[AAS_USAGE_TEXT_MAX];
    size_t *idx;
    /* Tenants given their own metric label so far (the rest: "_other"). */
    char (*tenants)[AAS_ID_MAX + 1];
    size_t n_tenants;
    /* Registered models given their own label so far. */
    char (*models)[AAS_ID_MAX + 1];
    size_t n_models;
    /* The series of the last job's label values (model and tenant are
     * pointers into the arrays above or AAS_OUTCOME_OTHER, so equal
     * values are equal pointers): consecutive jobs mostly share them, and
     * a look-up costs a formatted label set, a hash and a lock. */
    const char *last_model, *last_tenant;
    int last_status;
    aas_metric_t *last_jobs, *last_usage[5];
    char (*src)[320];
    aas_outcome_counts_t counts;
};

void aas_outcome_item_clear(aas_outcome_item_t *it) {
    if (it->decoded) aas_job_clear(&it->job);
    it->decoded = 0;
    free(it->buf);
    it->buf = NULL;
    it->len = 0;
}

aas_err_t aas_outcome_new(const aas_outcome_conf_t *conf, aas_store_t *store,
                          aas_codec_t *codec, aas_dlq_t *dlq, aas_metrics_t *metrics,
                          aas_outcome_t **out, char *errstr, size_t errstr_size) {
    aas_outcome_t *o = calloc(1, sizeof(*o));
    size_t n = conf->max_items ? conf->max_items : 1;
    if (!o || !(o->start = calloc(n, sizeof(*o->start))) ||
        !(o->finish = calloc(n, sizeof(*o->finish))) || !(o->idx = calloc(n, sizeof(size_t))) ||
        !(o->meter = calloc(n, sizeof(*o->meter))) ||
        !(o->rel_tenant = calloc(n, sizeof(*o->rel_tenant))) ||
        !(o->rel_id = calloc(n, sizeof(*o->rel_id))) ||
        !(o->quota = calloc(n, sizeof(*o->quota))) ||
        !(o->usage_txt = calloc(n, sizeof(*o->usage_txt))) ||
        !(o->tenants = calloc(AAS_OUTCOME_TENANT_LABELS, sizeof(*o->tenants))) ||
        !(o->models = calloc(AAS_OUTCOME_MODEL_LABELS, sizeof(*o->models))) ||
        !(o->src = calloc(n, sizeof(*o->src)))) {
        aas_outcome_destroy(o);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "out of memory for %zu job outcomes", n);
    }
    snprintf(o->worker_id, sizeof(o->worker_id), "%s", conf->worker_id);
    snprintf(o->infer_topic, sizeof(o->infer_topic), "%s", conf->infer_topic);
    snprintf(o->train_topic, sizeof(o->train_topic), "%s", conf->train_topic);
    o->max_attempts = conf->max_attempts;
    o->limits = *conf->limits;
    o->max_items = n;
    o->store = store;
    o->codec = codec;
    o->dlq = dlq;
    o->metrics = metrics;
    o->auth = conf->auth;
    *out = o;
    return AAS_ERR_OK;
}

void aas_outcome_destroy(aas_outcome_t *o) {
    if (!o) return;
    free(o->start);
    free(o->finish);
    free(o->meter);
    free(o->rel_tenant);
    free(o->rel_id);
    free(o->quota);
    free(o->usage_txt);
    free(o->tenants);
    free(o->models);
    free(o->idx);
    free(o->src);
    free(o);
}

aas_outcome_counts_t aas_outcome_counts(const aas_outcome_t *o) {
    aas_outcome_counts_t c = o->counts;
    c.dlq = aas_dlq_count(o->dlq);
    return c;
}

static void aas_outcome_settle(aas_outcome_item_t *it, aas_msg_outcome_t m) {
    it->settled = 1;
    it->pending = 0;
    it->outcome = m;
}

void aas_outcome_fail(aas_outcome_item_t *it, aas_status_t status, const char *reason) {
    it->status = status;
    snprintf(it->reason, sizeof(it->reason), "%s", reason);
    free(it->buf); /* a success encoded before is void now */
    it->buf = NULL;
    it->pending = 1;
}

void aas_outcome_retry(aas_outcome_item_t *it) { aas_outcome_settle(it, AAS_MSG_RETRY); }

_Static_assert(sizeof(((aas_outcome_item_t *)0)->vstr) >= AAS_FMT_LL_MAX, "a version fits");

void aas_outcome_resolved(aas_outcome_item_t *it, int64_t version) {
    aas_fmt_ll(it->vstr, (long long)version);
}

void aas_outcome_succeed(aas_outcome_t *o, aas_outcome_item_t *it, aas_result_t *res,
                         int64_t version) {
    char why[512];
    aas_fmt_ll(it->vstr, (long long)version);
    res->job_id = it->job_id;
    res->model = it->model;
    res->model_version = it->vstr;
    res->status = AAS_STATUS_SUCCEEDED;
    res->worker_id = o->worker_id;
    res->finished_ms = aas_now_ms();
    res->timings.decode_us = it->decode_us;
    res->timings.total_us = aas_mono_us() - it->t_take;
    free(it->buf);
    it->buf = NULL;
    aas_err_t err = aas_codec_result_encode(o->codec, res, &it->buf, &it->len, why,
                                            sizeof(why));
    if (err) {
        AAS_LOG(AAS_LOG_ERROR, "worker", "job=%s encode result: %s", it->job_id, why);
        aas_outcome_fail(it, AAS_STATUS_FAILED, why);
        return;
    }
    it->status = AAS_STATUS_SUCCEEDED;
    it->pending = 1;
}

/* Count a job this worker made terminal (jobs_total{model,status}). */
static void aas_outcome_count(aas_outcome_t *o, const aas_outcome_item_t *it) {
    if (it->status == AAS_STATUS_SUCCEEDED) {
        o->counts.done++;
    } else {
        o->counts.failed++;
        AAS_LOG(AAS_LOG_WARN, "worker", "job=%s status=%s reason=\"%s\"", it->job_id,
                aas_status_name(it->status), it->reason);
    }
    char labels[2 * AAS_ID_MAX + 64];
    /* model is a validated id: no character needs escaping.  Only a
     * registered model (resolved to a version) gets a label of its own,
     * and at most AAS_OUTCOME_MODEL_LABELS of them: series stay bounded. */
    const char *model = AAS_OUTCOME_OTHER;
    if (it->model[0] && it->vstr[0]) {
        size_t m = 0;
        while (m < o->n_models && strcmp(o->models[m], it->model)) m++;
        if (m < o->n_models) model = o->models[m];
        else if (o->n_models < AAS_OUTCOME_MODEL_LABELS)
            model = strcpy(o->models[o->n_models++], it->model);
    }
    if (!o->last_jobs || model != o->last_model || (int)it->status != o->last_status) {
        snprintf(labels, sizeof(labels), "model=\"%s\",status=\"%s\"", model,
                 aas_status_name(it->status));
        o->last_jobs = aas_metrics_counter(o->metrics, "aas_worker_jobs_total",
                                           "Jobs this worker made terminal", labels);
        o->last_status = (int)it->status;
        o->last_usage[0] = NULL; /* the model may have changed: look usage up again */
    }
    aas_metric_inc(o->last_jobs, 1);
    /* Usage by tenant and model (this worker's share; the exact, durable
     * figures are the ones metered in Redis: aas-producer usage). */
    const char *tenant = it->tenant[0] ? it->tenant : "default";
    size_t t = 0;
    while (t < o->n_tenants && strcmp(o->tenants[t], tenant)) t++;
    if (t == o->n_tenants) {
        if (o->n_tenants < AAS_OUTCOME_TENANT_LABELS)
            snprintf(o->tenants[o->n_tenants++], AAS_ID_MAX + 1, "%s", tenant);
        else
            tenant = AAS_OUTCOME_OTHER;
    }
    tenant = tenant == AAS_OUTCOME_OTHER ? tenant : o->tenants[t];
    const struct { const char *name, *help; double v; } u[] = {
        {"aas_worker_usage_jobs_total", "Jobs finished, by tenant and model", 1},
        {"aas_worker_usage_rows_total", "Input rows of the jobs finished", (double)it->usage.rows},
        {"aas_worker_usage_compute_seconds_total", "Compute time of the jobs finished",
         (double)it->usage.compute_us / 1e6},
        {"aas_worker_usage_bytes_in_total", "Job message bytes", (double)it->usage.bytes_in},
        {"aas_worker_usage_bytes_out_total", "Result record bytes", (double)it->usage.bytes_out},
    };
    _Static_assert(sizeof(u) / sizeof(u[0]) == sizeof(o->last_usage) / sizeof(o->last_usage[0]),
                   "one cached series per usage counter");
    if (!o->last_usage[0] || tenant != o->last_tenant || model != o->last_model) {
        snprintf(labels, sizeof(labels), "tenant=\"%s\",model=\"%s\"", tenant, model);
        for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++)
            o->last_usage[i] = aas_metrics_counter(o->metrics, u[i].name, u[i].help, labels);
        o->last_tenant = tenant;
    }
    o->last_model = model;
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) aas_metric_inc(o->last_usage[i], u[i].v);
}

/* The message cannot be processed or its outcome recorded, and retrying
 * will not help: park it in the dead-letter topic (or retry the message if
 * even that is impossible now). */
static void aas_outcome_park(aas_outcome_t *o, aas_outcome_item_t *it, aas_err_t code,
                             const char *why) {
    AAS_LOG(AAS_LOG_ERROR, "worker", "job=%s %s; dead-lettered",
            it->job_id[0] ? it->job_id : "-", why);
    aas_outcome_settle(it, aas_dlq_send(o->dlq, it->msg, o->worker_id, code, why)
                               ? AAS_MSG_RETRY : AAS_MSG_DONE);
}

/* A message that did not decode: dead-letter it; fail its job when the id
 * is known, so the client learns why instead of timing out. */
static void aas_outcome_undecodable(aas_outcome_t *o, aas_outcome_item_t *it,
                                    aas_err_t err, const char *why) {
    const rd_kafka_message_t *m = it->msg;
    if (!it->job_id[0] && m->key && m->key_len > 0 && m->key_len <= AAS_ID_MAX) {
        /* The record's id was not readable: clients key messages by job id. */
        memcpy(it->job_id, m->key, m->key_len);
        it->job_id[m->key_len] = '\0';
        if (!aas_id_valid(it->job_id)) it->job_id[0] = '\0';
    }
    AAS_LOG(AAS_LOG_ERROR, "worker", "undecodable message topic=%s partition=%d "
            "offset=%lld job=%s error=%s reason=\"%s\"", rd_kafka_topic_name(m->rkt),
            (int)m->partition, (long long)m->offset, it->job_id[0] ? it->job_id : "-",
            aas_err_name(err), why);
    if (aas_dlq_send(o->dlq, m, o->worker_id, err, why)) {
        aas_outcome_retry(it);
        return;
    }
    if (!it->job_id[0]) {
        aas_outcome_settle(it, AAS_MSG_DONE);
        return;
    }
    char reason[600];
    snprintf(reason, sizeof(reason), "rejected message: %s", why);
    aas_outcome_fail(it, AAS_STATUS_FAILED, reason);
}

/* A job whose signature does not hold (worker.auth = keys): it is not
 * run, and its id is not written to (the sender may not own it: failing
 * it would let one tenant spoil another's job), so it is dead-lettered
 * with the reason, counted and logged.  Returns 1 when settled. */
static int aas_outcome_authenticate(aas_outcome_t *o, aas_outcome_item_t *it) {
    char why[512], kid[AAS_JOBSIG_ID_HEX + 1];
    int from_train = strcmp(rd_kafka_topic_name(it->msg->rkt), o->train_topic) == 0;
    aas_jobauth_result_t r = aas_jobauth_check(
        o->auth, it->msg, it->job.tenant,
        from_train ? AAS_APIKEY_SCOPE_TRAIN : AAS_APIKEY_SCOPE_INFER, kid, why, sizeof(why));
    if (r == AAS_JOBAUTH_OK) return 0;
    if (r == AAS_JOBAUTH_UNAVAILABLE) {
        aas_outcome_retry(it); /* comes again once the keys load */
        return 1;
    }
    char labels[64];
    snprintf(labels, sizeof(labels), "reason=\"%s\"", aas_jobauth_result_name(r));
    aas_metric_inc(aas_metrics_counter(o->metrics, "aas_worker_jobs_rejected_total",
                                       "Jobs not run because their signature did not hold "
                                       "(worker.auth = keys), by reason; each is dead-lettered",
                                       labels),
                   1);
    AAS_LOG(AAS_LOG_WARN, "worker", "job=%s rejected topic=%s partition=%d offset=%lld "
            "key=%s reason=\"%s\"; dead-lettered, not run", it->job_id,
            rd_kafka_topic_name(it->msg->rkt), (int)it->msg->partition,
            (long long)it->msg->offset, kid[0] ? kid : "-", why);
    char reason[600];
    snprintf(reason, sizeof(reason), "not authenticated: %s", why);
    aas_outcome_settle(it, aas_dlq_send(o->dlq, it->msg, o->worker_id, AAS_ERR_AUTH, reason)
                               ? AAS_MSG_RETRY : AAS_MSG_DONE);
    return 1;
}

/* Settle what needs no compute, once the job is RUNNING (attempts counted). */
static void aas_outcome_screen(aas_outcome_t *o, aas_outcome_item_t *it, int64_t attempts) {
    char why[512];
    int from_train = strcmp(rd_kafka_topic_name(it->msg->rkt), o->train_topic) == 0;
    int64_t now = aas_now_ms();
    if (attempts > o->max_attempts) {
        /* Taken this often without an outcome: it most likely takes its
         * worker down with it (or never finishes). */
        snprintf(why, sizeof(why), "gave up after %lld attempts without an outcome "
                 "(job.max.attempts=%lld)", (long long)attempts - 1,
                 (long long)o->max_attempts);
        aas_outcome_fail(it, AAS_STATUS_FAILED, why);
    } else if (it->job.kind == AAS_JOB_TRAIN && !from_train) {
        snprintf(why, sizeof(why), "training jobs are not served on the inference topic; "
                 "publish them to %s", o->train_topic);
        aas_outcome_fail(it, AAS_STATUS_FAILED, why);
    } else if (it->job.kind != AAS_JOB_TRAIN && from_train) {
        snprintf(why, sizeof(why), "inference jobs are not served on the training topic; "
                 "publish them to %s", o->infer_topic);
        aas_outcome_fail(it, AAS_STATUS_FAILED, why);
    } else if (it->job.deadline_ms > 0 && now > it->job.deadline_ms) {
        snprintf(why, sizeof(why), "deadline passed %lld ms before a worker took the job",
                 (long long)(now - it->job.deadline_ms));
        aas_outcome_fail(it, AAS_STATUS_EXPIRED, why);
    }
}

/* Meter o->meter[0..k) for items[o->idx[..]] and settle each: DONE once
 * metered (or never meterable), RETRY when Redis is away.  First each
 * job leaves its tenant's in-flight quota set (docs/sharing.md#quotas):
 * a separate call, since the tenant's keys are in another cluster slot
 * than the job's; idempotent, so a redelivery releases again harmlessly,
 * and a release Redis did not take retries the message like metering. */
/* Meter and release the quota slots of items[o->idx[0..k)] (o->meter),
 * in one round trip (the meter script releases too), then settle them.
 * An item the meter refused (invalid fields: not released either) is
 * released on its own, so no quota slot is left held. */
static void aas_outcome_meter_settle(aas_outcome_t *o, aas_outcome_item_t *items, size_t k) {
    char why[512] = "";
    if (k) aas_store_usage_meter_many(o->store, o->meter, k, why, sizeof(why));
    size_t nrel = 0;
    for (size_t j = 0; j < k; j++) {
        aas_outcome_item_t *it = &items[o->idx[j]];
        aas_err_t err = o->meter[j].err;
        if (err && aas_err_is_retriable(err)) {
            AAS_LOG(AAS_LOG_WARN, "worker", "job=%s not metered yet: %s", it->job_id, why);
            aas_outcome_retry(it);
            continue;
        }
        if (err) {
            AAS_LOG(AAS_LOG_ERROR, "worker", "job=%s not metered: %s", it->job_id, why);
            o->rel_tenant[nrel] = o->meter[j].tenant;
            o->rel_id[nrel++] = o->meter[j].job_id;
        }
        aas_outcome_settle(it, AAS_MSG_DONE);
    }
    if (nrel && aas_store_quota_release_many(o->store, o->rel_tenant, o->rel_id, nrel, why,
                                             sizeof(why)))
        AAS_LOG(AAS_LOG_WARN, "worker", "quota release of %zu job(s): %s", nrel, why);
}

/* Redeliveries of finished jobs: meter what their hash recorded (a job
 * finished before metering existed, or cancelled before it ran, has no
 * figures and is not metered). */
static void aas_outcome_meter_known(aas_outcome_t *o, aas_outcome_item_t *items, size_t n) {
    aas_job_info_t info[64];
    size_t k = 0, ninfo = 0, nrel = 0;
    /* Found terminal with nothing to meter: released from quotas only. */
    const char *rel_tenant[64], *rel_id[64];
    size_t rel_idx[64];
    for (size_t i = 0; i < n; i++) {
        aas_outcome_item_t *it = &items[i];
        if (!it->meter_from_hash || it->settled) continue;
        it->meter_from_hash = 0;
        char why[256];
        aas_job_info_t *in = &info[ninfo];
        aas_err_t err = ninfo < 64 ? aas_store_job_get(o->store, it->job_id, in, why, sizeof(why))
                                   : AAS_ERR_IO; /* more than fit: the next delivery */
        if (err) {
            if (aas_err_is_retriable(err)) {
                aas_outcome_retry(it);
            } else if (nrel < 64) { /* expired meanwhile */
                aas_outcome_settle(it, AAS_MSG_DONE);
                rel_idx[nrel] = i;
                rel_tenant[nrel] = it->tenant;
                rel_id[nrel++] = it->job_id;
            } else {
                aas_outcome_retry(it); /* more than fit: the next delivery */
            }
            continue;
        }
        ninfo++;
        aas_usage_t u;
        if (!in->usage || aas_usage_parse(in->usage, &u) || !in->model || !in->finished_ms) {
            /* Nothing to meter (e.g. cancelled before it ran), but the
             * worker may have admitted it by its quota before it found it
             * terminal: release it. */
            if (nrel == 64) {
                aas_outcome_retry(it); /* more than fit: the next delivery */
                continue;
            }
            aas_outcome_settle(it, AAS_MSG_DONE);
            rel_idx[nrel] = i;
            rel_tenant[nrel] = it->tenant;
            rel_id[nrel++] = it->job_id;
            continue;
        }
        o->meter[k] = (aas_store_meter_t){.job_id = it->job_id, .tenant = in->tenant,
                                          .model = in->model,
                                          .failed = in->status != AAS_STATUS_SUCCEEDED,
                                          .finished_ms = in->finished_ms, .usage = u};
        o->idx[k++] = i;
    }
    aas_outcome_meter_settle(o, items, k);
    for (size_t j = 0; j < ninfo; j++) aas_job_info_clear(&info[j]);
    char why[512];
    aas_err_t err = nrel ? aas_store_quota_release_many(o->store, rel_tenant, rel_id, nrel, why,
                                                        sizeof(why))
                         : AAS_ERR_OK;
    if (err) {
        AAS_LOG(AAS_LOG_WARN, "worker", "quota release of %zu job(s): %s", nrel, why);
        if (aas_err_is_retriable(err))
            for (size_t j = 0; j < nrel; j++) aas_outcome_retry(&items[rel_idx[j]]);
    }
}

/* Admit the decoded jobs items[o->idx[0..k)] by their tenants' quotas
 * before they start (docs/sharing.md#quotas): a job a client admitted is
 * found in flight and passes (no token); one published unchecked (another
 * producer, Redis away at submit) takes a token now.  Over the rate, the
 * worker waits for the tokens (at most AAS_OUTCOME_QUOTA_WAIT_MS in all),
 * then rewinds the jobs still refused: they come again after the backoff,
 * never dropped, never FAILED.  Before start, so a wait counts no attempt.
 * Returns how many of idx stay (admitted), compacted in order. */
static size_t aas_outcome_quota(aas_outcome_t *o, aas_outcome_item_t *items, size_t k) {
    char why[512] = "";
    int64_t waited_ms = 0;
    /* While no tenant has a quota (asked once a second), nothing to do. */
    if (!aas_store_quotas_active(o->store)) return k;
    for (size_t j = 0; j < k; j++)
        o->quota[j] = (aas_store_quota_item_t){.tenant = items[o->idx[j]].tenant,
                                               .job_id = items[o->idx[j]].job_id};
    int *refused = calloc(k, sizeof(int));
    size_t *map = calloc(k, sizeof(size_t));
    aas_store_quota_item_t *ask = calloc(k, sizeof(*ask));
    if (!refused || !map || !ask) {
        /* No room to check: rewind them (they come again), never run
         * them unchecked. */
        for (size_t j = 0; j < k; j++) aas_outcome_retry(&items[o->idx[j]]);
        k = 0;
    }
    for (size_t j = 0; j < k; j++) refused[j] = 1;
    while (k) {
        /* Ask for the ones still refused (all, the first time). */
        size_t m = 0;
        int64_t wait_ms = 0;
        for (size_t j = 0; j < k; j++) {
            if (!refused[j]) continue;
            ask[m] = o->quota[j];
            map[m++] = j;
        }
        if (!m) break;
        aas_err_t err = aas_store_quota_admit_many(o->store, ask, m, why, sizeof(why));
        for (size_t q = 0; q < m; q++) {
            size_t j = map[q];
            aas_err_t e = err ? err : ask[q].err;
            if (e) {
                /* Redis away: start would fail too; rewind.  Anything else
                 * (not retriable) cannot be checked: run the job. */
                if (aas_err_is_retriable(e)) {
                    AAS_LOG(AAS_LOG_WARN, "worker", "job=%s quota not checked: %s",
                            items[o->idx[j]].job_id, why);
                    aas_outcome_retry(&items[o->idx[j]]);
                }
                refused[j] = 0;
            } else if (ask[q].res.verdict == AAS_QUOTA_RATE) {
                if (!wait_ms || ask[q].res.retry_ms < wait_ms) wait_ms = ask[q].res.retry_ms;
            } else {
                refused[j] = 0; /* NONE, OK, AGAIN (INFLIGHT is not refused here) */
            }
        }
        if (!wait_ms) continue;
        if (waited_ms + wait_ms > AAS_OUTCOME_QUOTA_WAIT_MS) {
            for (size_t j = 0; j < k; j++) {
                if (!refused[j]) continue;
                aas_outcome_item_t *it = &items[o->idx[j]];
                AAS_LOG(AAS_LOG_INFO, "worker", "job=%s tenant=%s over its rate quota after "
                        "waiting %lld ms: rewound, it comes again", it->job_id,
                        aas_quota_tenant(it->tenant), (long long)waited_ms);
                aas_metric_inc(aas_metrics_counter(o->metrics, "aas_worker_quota_rewinds_total",
                                                   "Jobs rewound because their tenant was "
                                                   "over its rate quota", NULL),
                               1);
                aas_outcome_retry(it);
                refused[j] = 0;
            }
            break;
        }
        aas_metric_inc(aas_metrics_counter(o->metrics, "aas_worker_quota_wait_seconds_total",
                                           "Time the worker waited for tenants' rate quotas",
                                           NULL),
                       (double)wait_ms / 1000);
        usleep((useconds_t)wait_ms * 1000);
        waited_ms += wait_ms;
    }
    free(refused);
    free(map);
    free(ask);
    size_t out = 0;
    for (size_t j = 0; j < k; j++)
        if (!items[o->idx[j]].settled) o->idx[out++] = o->idx[j];
    return out;
}

void aas_outcome_admit(aas_outcome_t *o, aas_outcome_item_t *items, size_t n) {
    char why[512];
    size_t k = 0;
    if (n > o->max_items) n = o->max_items; /* a caller bug; the rest stays unsettled */
    for (size_t i = 0; i < n; i++) {
        aas_outcome_item_t *it = &items[i];
        it->t_take = aas_mono_us();
        aas_err_t err = aas_codec_job_decode(o->codec, it->msg->payload, it->msg->len,
                                             &o->limits, &it->job, it->job_id, why,
                                             sizeof(why));
        it->decode_us = aas_mono_us() - it->t_take;
        if (err) {
            aas_outcome_undecodable(o, it, err, why);
            continue;
        }
        it->decoded = 1;
        aas_fmt_copy(it->model, sizeof(it->model), it->job.model);
        aas_fmt_copy(it->tenant, sizeof(it->tenant), it->job.tenant ? it->job.tenant : "");
        if (o->auth && aas_outcome_authenticate(o, it)) continue;
        o->idx[k++] = i;
    }
    if (k == 0) return;
    k = aas_outcome_quota(o, items, k);
    if (k == 0) return;
    for (size_t j = 0; j < k; j++) {
        aas_outcome_item_t *it = &items[o->idx[j]];
        /* src: where the job came from, for status and debugging:
         * topic/partition/offset (a topic name is at most 249 bytes). */
        char *p = o->src[j];
        size_t n = aas_fmt_copy(p, sizeof(o->src[j]) - 2 * AAS_FMT_LL_MAX,
                                rd_kafka_topic_name(it->msg->rkt));
        p[n++] = '/';
        n += aas_fmt_ll(p + n, it->msg->partition);
        p[n++] = '/';
        aas_fmt_ll(p + n, (long long)it->msg->offset);
        o->start[j] = (aas_store_start_t){.job_id = it->job_id, .model = it->model,
                                          .src = o->src[j], .tenant = it->job.tenant};
    }
    aas_store_job_start_many(o->store, o->worker_id, o->start, k, why, sizeof(why));
    for (size_t j = 0; j < k; j++) {
        aas_outcome_item_t *it = &items[o->idx[j]];
        aas_store_start_t *st = &o->start[j];
        if (st->err) {
            AAS_LOG(AAS_LOG_WARN, "worker", "job=%s store start: %s", it->job_id, why);
            if (aas_err_is_retriable(st->err)) {
                aas_outcome_retry(it);
            } else {
                char reason[600];
                snprintf(reason, sizeof(reason), "outcome could not be recorded: %s",
                         aas_err_str(st->err));
                aas_outcome_park(o, it, st->err, reason);
            }
        } else if (aas_status_is_terminal(st->status)) {
            /* A redelivery of a finished job: its result stands; its
             * metering is made sure of (the first run may have died
             * between the two). */
            o->counts.skipped++;
            AAS_LOG(AAS_LOG_DEBUG, "worker", "job=%s skip status=%s", it->job_id,
                    aas_status_name(st->status));
            it->meter_from_hash = 1;
        } else {
            aas_outcome_screen(o, it, st->attempts);
        }
    }
    aas_outcome_meter_known(o, items, n);
}

/* A failure's result record: status and reason (and timings). */
static void aas_outcome_encode_failure(aas_outcome_t *o, aas_outcome_item_t *it) {
    char why[512];
    aas_result_t r = {.job_id = it->job_id, .model = it->model[0] ? it->model : NULL,
                      .status = it->status, .error = it->reason,
                      .worker_id = o->worker_id, .finished_ms = aas_now_ms()};
    r.timings.decode_us = it->decode_us;
    r.timings.total_us = it->t_take ? aas_mono_us() - it->t_take : 0;
    if (aas_codec_result_encode(o->codec, &r, &it->buf, &it->len, why, sizeof(why)))
        /* The status and reason still go to Redis; only the record is missing. */
        AAS_LOG(AAS_LOG_ERROR, "worker", "job=%s encode result: %s", it->job_id, why);
}

void aas_outcome_record(aas_outcome_t *o, aas_outcome_item_t *items, size_t n) {
    char why[512];
    /* At most two passes: a success Redis refused comes back once as a
     * failure (its reason says why); a failure refused is parked. */
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        /* The clocks once for all: when each job was taken, in wall-clock
         * time, for its queueing figure. */
        int64_t now_ms = aas_now_ms(), now_us = aas_mono_us();
        for (size_t i = 0; i < n && k < o->max_items; i++) {
            aas_outcome_item_t *it = &items[i];
            if (!it->pending || it->settled) continue;
            int ok = it->status == AAS_STATUS_SUCCEEDED;
            if (!ok && !it->buf) aas_outcome_encode_failure(o, it);
            aas_usage_t *u = &it->usage;
            u->bytes_in = (int64_t)it->msg->len;
            u->bytes_out = (int64_t)it->len;
            u->queue_ms = it->decoded && it->job.submit_ms > 0 && it->t_take
                              ? now_ms - (now_us - it->t_take) / 1000 - it->job.submit_ms
                              : 0;
            if (u->queue_ms < 0) u->queue_ms = 0; /* clocks of two machines */
            aas_usage_format(u, o->usage_txt[k], sizeof(o->usage_txt[k]));
            o->finish[k] = (aas_store_finish_t){
                .job_id = it->job_id, .status = it->status,
                .model_version = it->vstr[0] ? it->vstr : NULL,
                .result = it->buf, .result_len = it->len,
                .error = ok ? NULL : it->reason, .usage = o->usage_txt[k]};
            o->idx[k++] = i;
        }
        if (k == 0) return;
        aas_store_job_finish_many(o->store, o->finish, k, why, sizeof(why));
        size_t km = 0;
        for (size_t j = 0; j < k; j++) {
            aas_outcome_item_t *it = &items[o->idx[j]];
            aas_err_t err = o->finish[j].err;
            free(it->buf);
            it->buf = NULL;
            if (!err && o->finish[j].written) {
                aas_outcome_count(o, it);
                /* Metered below, then settled; idx is reused for it. */
                o->meter[km] = (aas_store_meter_t){
                    .job_id = it->job_id, .tenant = it->tenant,
                    .model = it->model[0] ? it->model : AAS_OUTCOME_NO_MODEL,
                    .failed = it->status != AAS_STATUS_SUCCEEDED,
                    .finished_ms = o->finish[j].finished_ms, .usage = it->usage};
                o->idx[km++] = o->idx[j];
            } else if (!err) {
                /* Already terminal (another copy finished it): meter what
                 * its hash says, as for a redelivery. */
                it->meter_from_hash = 1;
            } else if (aas_err_is_retriable(err)) {
                AAS_LOG(AAS_LOG_WARN, "worker", "job=%s store finish: %s", it->job_id, why);
                aas_outcome_retry(it);
            } else if (it->status == AAS_STATUS_SUCCEEDED && pass == 0) {
                /* The result cannot be stored (e.g. larger than Redis takes):
                 * the job fails with that reason rather than retrying
                 * forever.  The item stays pending for the next pass. */
                char reason[600];
                snprintf(reason, sizeof(reason), "result not stored: %s", why);
                aas_outcome_fail(it, AAS_STATUS_FAILED, reason);
            } else {
                /* Neither outcome can be recorded and retrying will not
                 * help (e.g. a key of the wrong type): park the message. */
                char reason[600];
                snprintf(reason, sizeof(reason), "outcome could not be recorded: %s", why);
                aas_outcome_park(o, it, err, reason);
            }
        }
        aas_outcome_meter_settle(o, items, km);
        aas_outcome_meter_known(o, items, n);
    }
}
