/* publish.c - the gateway's publishing thread; see publish.h. */
#include "publish.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "merge.h"
#include "store.h"

/* Jobs handed to aas_client_submit_many() at most per call. */
#define AAS_GW_PUB_BATCH 64

/* A request's job on its way.  QUEUED and SUBMITTING slots point at the
 * caller's job, so a caller whose wait ends then waits on until its slot
 * is INFLIGHT (bounded by Redis' timeout).  An INFLIGHT slot whose caller
 * left is ABANDONED: the thread frees it at its report. */
typedef enum { SLOT_QUEUED, SLOT_SUBMITTING, SLOT_INFLIGHT, SLOT_DONE } aas_gw_slot_state_t;

typedef struct aas_gw_slot_s {
    struct aas_gw_slot_s *next;
    struct aas_gw_slot_s *member;  /* the next request of the same job (from
                                      the one whose id it has: the head) */
    const aas_job_t *job;
    const aas_jobsig_key_t *key;   /* signs the job (a merged job: the head's) */
    int sync;
    aas_gw_batch_t *batch;         /* sync: the reference for the caller */
    int64_t row_off, rows;
    char id[AAS_ID_MAX + 1];
    aas_gw_slot_state_t state;
    int abandoned;
    int past_wait;    /* its caller's wait ended: it waits for INFLIGHT to leave */
    int reported;     /* its report came while SUBMITTING: err and out hold it */
    aas_err_t err;
    aas_gw_pub_outcome_t out;
    pthread_cond_t cv;
} aas_gw_slot_t;

struct aas_gw_pub_s {
    aas_client_t *c;
    aas_gw_pub_opts_t o;
    aas_metric_t *m_jobs, *m_requests;
    pthread_mutex_t mu;
    aas_gw_slot_t *queued, **queued_tail; /* FIFO of SLOT_QUEUED */
    aas_gw_slot_t *inflight;              /* SLOT_INFLIGHT, the thread's */
    size_t n_inflight;
    int pipe_r, pipe_w;
    int stop;
    pthread_t thread;
    int started;
    int wake_set;     /* the producer writes to pipe_w */
    /* The thread's: */
    aas_client_submission_t subs[AAS_GW_PUB_BATCH];
    aas_job_t merged[AAS_GW_PUB_BATCH];
    aas_tensor_t merged_input[AAS_GW_PUB_BATCH];
};

static void aas_gw_pub_wake(aas_gw_pub_t *p) {
    /* A full pipe already wakes the thread: EAGAIN is fine. */
    ssize_t n = write(p->pipe_w, "j", 1);
    (void)n;
}

/* Settle a slot with its outcome (under mu): the caller is told, or, if
 * it left, the slot is freed. */
static void aas_gw_pub_settle(aas_gw_slot_t *s, aas_err_t err, aas_gw_pub_stage_t stage,
                              const char *why) {
    s->err = err;
    s->out.stage = stage;
    if (why != s->out.why) snprintf(s->out.why, sizeof(s->out.why), "%s", why ? why : "");
    s->state = SLOT_DONE;
    if (err || s->abandoned) { /* the caller gets no result to read */
        aas_gw_batch_release(s->batch);
        s->batch = NULL;
    }
    if (s->abandoned) {
        pthread_cond_destroy(&s->cv);
        free(s);
        return;
    }
    pthread_cond_signal(&s->cv);
}

/* Settle every request of a job (under mu). */
static void aas_gw_pub_settle_job(aas_gw_slot_t *head, aas_err_t err,
                                  aas_gw_pub_stage_t stage, const char *why) {
    char reason[sizeof(head->out.why)];
    snprintf(reason, sizeof(reason), "%s", why ? why : "");
    for (aas_gw_slot_t *s = head, *next; s; s = next) {
        next = s->member; /* s may be freed */
        aas_gw_pub_settle(s, err, stage, reason);
    }
}

/* The delivery callback (on the thread, inside the client's calls).  A
 * slot still SUBMITTING is only marked: its caller must not free the job
 * before aas_gw_pub_submit() has looked at the batch. */
static void aas_gw_pub_on_delivery(void *opaque, const char *job_id, aas_err_t err,
                                   const char *why) {
    aas_gw_pub_t *p = opaque;
    pthread_mutex_lock(&p->mu);
    for (aas_gw_slot_t **pp = &p->inflight; *pp; pp = &(*pp)->next) {
        aas_gw_slot_t *s = *pp;
        if (strcmp(s->id, job_id)) continue;
        *pp = s->next;
        p->n_inflight--;
        if (s->state == SLOT_SUBMITTING) {
            s->reported = 1;
            s->err = err;
            snprintf(s->out.why, sizeof(s->out.why), "%s", why ? why : "");
        } else {
            aas_gw_pub_settle_job(s, err, AAS_GW_PUB_FAILED, why);
        }
        break;
    }
    pthread_mutex_unlock(&p->mu);
}

/* Group the taken requests into jobs: a head (whose id the job takes)
 * and its members, the synchronous eligible requests compatible with it
 * (merge.h), while the rows fit.  Returns the number of jobs. */
static size_t aas_gw_pub_group(aas_gw_pub_t *p, aas_gw_slot_t **taken, size_t n,
                               aas_gw_slot_t **heads, int64_t *total) {
    /* Quotas count jobs: a merged job would take one token for several
     * requests, so nothing is merged while any tenant has a quota. */
    int merge = p->o.merge_max_rows > 1 && !aas_store_quotas_active(aas_client_store(p->c));
    int64_t max = p->o.merge_max_rows;
    char used[AAS_GW_PUB_BATCH] = {0};
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (used[i]) continue;
        aas_gw_slot_t *head = taken[i], *tail = head;
        int eligible = merge && head->sync &&
                       aas_gw_merge_eligible(head->job, max, AAS_GW_MERGE_MAX_BYTES);
        head->member = NULL;
        head->row_off = 0;
        head->rows = eligible ? head->job->inputs[0].shape[0] : 1;
        int64_t rows = head->rows;
        size_t bytes = eligible ? head->job->inputs[0].nbytes : 0;
        for (size_t j = i + 1; eligible && j < n && rows < max; j++) {
            aas_gw_slot_t *s = taken[j];
            if (used[j] || !s->sync ||
                !aas_gw_merge_eligible(s->job, max - rows, AAS_GW_MERGE_MAX_BYTES - bytes) ||
                !aas_gw_merge_compatible(head->job, s->job))
                continue;
            used[j] = 1;
            s->member = NULL;
            s->row_off = rows;
            s->rows = s->job->inputs[0].shape[0];
            rows += s->rows;
            bytes += s->job->inputs[0].nbytes;
            tail->member = s;
            tail = s;
        }
        total[ng] = rows;
        heads[ng++] = head;
    }
    return ng;
}

/* The job to send for a head: its own, or its members' rows merged (the
 * merged input's data is freed after the call).  Synchronous requests get
 * their batch handle, registered with the waiter before the job is sent.
 * -1 when out of memory (nothing allocated is left). */
static int aas_gw_pub_prepare(aas_gw_pub_t *p, size_t g, aas_gw_slot_t *head, int64_t total) {
    const aas_job_t *jobs[AAS_GW_PUB_BATCH];
    size_t k = 0;
    for (aas_gw_slot_t *s = head; s; s = s->member) jobs[k++] = s->job;
    p->subs[g] = (aas_client_submission_t){.job = head->job, .key = head->key};
    p->merged_input[g].data = NULL;
    if (k > 1) {
        if (aas_gw_merge_jobs(jobs, k, &p->merged[g], &p->merged_input[g])) return -1;
        p->subs[g].job = &p->merged[g];
    }
    if (!head->sync) return 0;
    aas_gw_batch_t *b = aas_gw_batch_new(p->o.waiter, head->id, total, (int)k);
    if (!b) {
        free(p->merged_input[g].data);
        p->merged_input[g].data = NULL;
        return -1;
    }
    for (aas_gw_slot_t *s = head; s; s = s->member) s->batch = b;
    return 0;
}

/* Submit up to AAS_GW_PUB_BATCH queued requests' jobs in one call. */
static void aas_gw_pub_submit(aas_gw_pub_t *p) {
    aas_gw_slot_t *taken[AAS_GW_PUB_BATCH], *heads[AAS_GW_PUB_BATCH];
    int64_t total[AAS_GW_PUB_BATCH];
    char ready[AAS_GW_PUB_BATCH];
    aas_client_submission_t *subs = p->subs;
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    while (p->queued && n < AAS_GW_PUB_BATCH) {
        aas_gw_slot_t *s = p->queued;
        p->queued = s->next;
        s->state = SLOT_SUBMITTING;
        taken[n++] = s;
    }
    if (!p->queued) p->queued_tail = &p->queued;
    pthread_mutex_unlock(&p->mu);
    if (!n) return;
    /* SUBMITTING requests are the thread's: their jobs stay until settled. */
    size_t ng = aas_gw_pub_group(p, taken, n, heads, total);
    size_t ns = 0; /* the jobs to send, packed */
    aas_gw_slot_t *sent[AAS_GW_PUB_BATCH];
    for (size_t g = 0; g < ng; g++) {
        ready[g] = !aas_gw_pub_prepare(p, ns, heads[g], total[g]);
        if (ready[g]) sent[ns++] = heads[g];
    }
    pthread_mutex_lock(&p->mu);
    for (size_t g = 0; g < ng; g++)
        if (!ready[g]) aas_gw_pub_settle_job(heads[g], AAS_ERR_NOMEM, AAS_GW_PUB_REFUSED,
                                             "out of memory");
    /* On the in-flight list before submitting: a report (or a known job's
     * immediate acknowledgement) can come inside the call. */
    for (size_t i = 0; i < ns; i++) {
        sent[i]->next = p->inflight;
        p->inflight = sent[i];
        p->n_inflight++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!ns) return;
    aas_client_submit_many(p->c, subs, ns, NULL, 0);
    for (size_t i = 0; i < ns; i++) free(p->merged_input[i].data);
    /* The quota's wait is the client's last refusal's: refusals of one
     * batch are of the same moment. */
    int64_t retry_ms = aas_client_last_retry_ms(p->c);
    size_t jobs_ok = 0, requests_ok = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < ns; i++) {
        aas_gw_slot_t *s = sent[i];
        if (!subs[i].err) {
            jobs_ok++;
            for (aas_gw_slot_t *m = s; m; m = m->member) requests_ok++;
        }
        if (s->reported) { /* acknowledged (or failed) inside the call */
            aas_gw_pub_settle_job(s, s->err, AAS_GW_PUB_FAILED, s->out.why);
            continue;
        }
        if (!subs[i].err) {
            /* A caller past its wait may leave now; the others sleep on
             * to the report (a wake-up each for nothing cost the gateway
             * futex calls and lock hand-overs a request under load). */
            for (aas_gw_slot_t *m = s; m; m = m->member) {
                m->state = SLOT_INFLIGHT;
                if (m->past_wait) pthread_cond_signal(&m->cv);
            }
            continue;
        }
        for (aas_gw_slot_t **pp = &p->inflight; *pp; pp = &(*pp)->next)
            if (*pp == s) {
                *pp = s->next;
                p->n_inflight--;
                break;
            }
        for (aas_gw_slot_t *m = s; m; m = m->member)
            m->out.retry_ms = subs[i].err == AAS_ERR_QUOTA ? retry_ms : 0;
        aas_gw_pub_settle_job(s, subs[i].err, AAS_GW_PUB_REFUSED, subs[i].why);
    }
    pthread_mutex_unlock(&p->mu);
    aas_metric_inc(p->m_jobs, (double)jobs_ok);
    aas_metric_inc(p->m_requests, (double)requests_ok);
}

static void *aas_gw_pub_main(void *arg) {
    aas_gw_pub_t *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int stop = p->stop && !p->queued && !p->n_inflight;
        int busy = p->queued != NULL;
        pthread_mutex_unlock(&p->mu);
        if (stop) break;
        if (!busy) {
            /* A new job or a delivery report writes to the pipe; the
             * timeout is only a safety net. */
            struct pollfd pf = {.fd = p->pipe_r, .events = POLLIN};
            if (poll(&pf, 1, 100) < 0 && errno != EINTR)
                AAS_LOG(AAS_LOG_WARN, "gateway", "publisher poll: %s", strerror(errno));
        }
        char buf[256];
        while (read(p->pipe_r, buf, sizeof(buf)) > 0) {}
        aas_gw_pub_submit(p);
        aas_client_poll(p->c, 0);
    }
    return NULL;
}

aas_err_t aas_gw_pub_new(aas_client_t *c, const aas_gw_pub_opts_t *opts, aas_gw_pub_t **out,
                         char *errstr, size_t errstr_size) {
    aas_gw_pub_t *p = calloc(1, sizeof(*p));
    if (!p) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    p->c = c;
    p->o = *opts;
    if (p->o.merge_max_rows < 1) p->o.merge_max_rows = 1;
    if (p->o.metrics) {
        p->m_jobs = aas_metrics_counter(p->o.metrics, "aas_gateway_published_jobs_total",
                                        "Jobs the gateway published (one or more requests each)",
                                        NULL);
        p->m_requests = aas_metrics_counter(
            p->o.metrics, "aas_gateway_published_requests_total",
            "Requests whose jobs the gateway published, alone or merged (docs/http.md#batching)",
            NULL);
    }
    p->queued_tail = &p->queued;
    p->pipe_r = p->pipe_w = -1;
    int fds[2];
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    if (pipe(fds)) {
        aas_err_t err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "pipe: %s", strerror(errno));
        aas_gw_pub_destroy(p);
        return err;
    }
    p->pipe_r = fds[0];
    p->pipe_w = fds[1];
    for (int i = 0; i < 2; i++)
        if (fcntl(fds[i], F_SETFL, O_NONBLOCK) || fcntl(fds[i], F_SETFD, FD_CLOEXEC)) {
            aas_err_t err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "pipe: %s",
                                        strerror(errno));
            aas_gw_pub_destroy(p);
            return err;
        }
    aas_err_t err = aas_client_wake_fd(c, p->pipe_w, errstr, errstr_size);
    p->wake_set = !err;
    if (err) {
        aas_gw_pub_destroy(p);
        return err;
    }
    aas_client_set_delivery_cb(c, aas_gw_pub_on_delivery, p);
    if (pthread_create(&p->thread, NULL, aas_gw_pub_main, p)) {
        aas_gw_pub_destroy(p);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "cannot start a thread");
    }
    p->started = 1;
    *out = p;
    return AAS_ERR_OK;
}

void aas_gw_pub_destroy(aas_gw_pub_t *p) {
    if (!p) return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_mutex_unlock(&p->mu);
        aas_gw_pub_wake(p);
        pthread_join(p->thread, NULL);
        aas_client_set_delivery_cb(p->c, NULL, NULL);
    }
    if (p->pipe_r >= 0) close(p->pipe_r);
    /* The producer keeps writing to the wake fd while it lives: then left
     * open (one descriptor) rather than risk a write to a reused number. */
    if (p->pipe_w >= 0 && !p->wake_set) close(p->pipe_w);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

aas_err_t aas_gw_pub_publish(aas_gw_pub_t *p, const aas_job_t *job,
                             const aas_jobsig_key_t *key, int sync, int wait_ms,
                             aas_gw_pub_outcome_t *out) {
    memset(out, 0, sizeof(*out));
    if (!aas_id_valid(job->id)) {
        out->stage = AAS_GW_PUB_REFUSED;
        snprintf(out->why, sizeof(out->why), "invalid job id");
        return AAS_ERR_INVAL;
    }
    aas_gw_slot_t *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;
    int cv_ok = 0;
    if (s && !pthread_condattr_init(&ca)) {
        /* Waits are measured on the monotonic clock, as every timeout here. */
        cv_ok = !pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) &&
                !pthread_cond_init(&s->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (!cv_ok) {
        free(s);
        out->stage = AAS_GW_PUB_REFUSED;
        snprintf(out->why, sizeof(out->why), "out of memory");
        return AAS_ERR_NOMEM;
    }
    s->job = job;
    s->key = key;
    s->sync = sync;
    snprintf(s->id, sizeof(s->id), "%s", job->id);
    struct timespec until = aas_mono_deadline(wait_ms);
    pthread_mutex_lock(&p->mu);
    /* A queue already holding a job has been woken for: the thread takes
     * every queued job when it runs, and loops while any is left. */
    int first = p->queued == NULL;
    *p->queued_tail = s;
    p->queued_tail = &s->next;
    pthread_mutex_unlock(&p->mu);
    if (first) aas_gw_pub_wake(p);
    pthread_mutex_lock(&p->mu);
    int timed_out = 0;
    while (s->state != SLOT_DONE) {
        if (timed_out && s->state == SLOT_INFLIGHT) break;
        if (timed_out && s->state == SLOT_QUEUED) {
            /* Never taken: withdraw it, nothing was sent. */
            for (aas_gw_slot_t **pp = &p->queued; *pp; pp = &(*pp)->next)
                if (*pp == s) {
                    *pp = s->next;
                    if (p->queued_tail == &s->next) p->queued_tail = pp;
                    break;
                }
            pthread_mutex_unlock(&p->mu);
            pthread_cond_destroy(&s->cv);
            free(s);
            out->stage = AAS_GW_PUB_REFUSED;
            snprintf(out->why, sizeof(out->why),
                     "the publisher did not take the job within %d ms", wait_ms);
            return AAS_ERR_TIMEOUT;
        }
        /* SUBMITTING: the thread reads the job now; wait for it (Redis'
         * timeout bounds that) before the caller may free it. */
        if (pthread_cond_timedwait(&s->cv, &p->mu, &until) == ETIMEDOUT) {
            timed_out = s->past_wait = 1;
            until = aas_mono_deadline(1000);
        }
    }
    if (s->state != SLOT_DONE) { /* INFLIGHT past the wait: its report frees it */
        s->abandoned = 1;
        pthread_mutex_unlock(&p->mu);
        out->stage = AAS_GW_PUB_UNSETTLED;
        snprintf(out->why, sizeof(out->why), "no acknowledgement from Kafka within %d ms",
                 wait_ms);
        return AAS_ERR_TIMEOUT;
    }
    pthread_mutex_unlock(&p->mu);
    aas_err_t err = s->err;
    *out = s->out;
    out->batch = s->batch; /* NULL unless it succeeded (settle) */
    out->row_off = s->row_off;
    out->rows = s->rows;
    pthread_cond_destroy(&s->cv);
    free(s);
    return err;
}
