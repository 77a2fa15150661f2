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

/* Jobs handed to aas_client_submit_many() at most per call. */
#define AAS_GW_PUB_BATCH 64

/* A request's job on its way.  QUEUED and SUBMITTING slots point at the
 * caller's job, so a caller whose wait ends then waits on until its slot
 * is INFLIGHT (bounded by Redis' timeout).  An INFLIGHT slot whose caller
 * left is ABANDONED: the thread frees it at its report. */
typedef enum { SLOT_QUEUED, SLOT_SUBMITTING, SLOT_INFLIGHT, SLOT_DONE } aas_gw_slot_state_t;

typedef struct aas_gw_slot_s {
    struct aas_gw_slot_s *next;
    const aas_job_t *job;
    char id[AAS_ID_MAX + 1];
    aas_gw_slot_state_t state;
    int abandoned;
    int reported;     /* its report came while SUBMITTING: err and out hold it */
    aas_err_t err;
    aas_gw_pub_outcome_t out;
    pthread_cond_t cv;
} aas_gw_slot_t;

struct aas_gw_pub_s {
    aas_client_t *c;
    pthread_mutex_t mu;
    aas_gw_slot_t *queued, **queued_tail; /* FIFO of SLOT_QUEUED */
    aas_gw_slot_t *inflight;              /* SLOT_INFLIGHT, the thread's */
    size_t n_inflight;
    int pipe_r, pipe_w;
    int stop;
    pthread_t thread;
    int started;
    int wake_set;     /* the producer writes to pipe_w */
    aas_client_submission_t subs[AAS_GW_PUB_BATCH]; /* the thread's */
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
    if (s->abandoned) {
        pthread_cond_destroy(&s->cv);
        free(s);
        return;
    }
    pthread_cond_signal(&s->cv);
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
            aas_gw_pub_settle(s, err, AAS_GW_PUB_FAILED, why);
        }
        break;
    }
    pthread_mutex_unlock(&p->mu);
}

/* Submit up to AAS_GW_PUB_BATCH queued jobs in one call. */
static void aas_gw_pub_submit(aas_gw_pub_t *p) {
    aas_gw_slot_t *batch[AAS_GW_PUB_BATCH];
    aas_client_submission_t *subs = p->subs;
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    while (p->queued && n < AAS_GW_PUB_BATCH) {
        aas_gw_slot_t *s = p->queued;
        p->queued = s->next;
        s->state = SLOT_SUBMITTING;
        batch[n++] = s;
    }
    if (!p->queued) p->queued_tail = &p->queued;
    /* On the in-flight list before submitting: a report (or a known job's
     * immediate acknowledgement) can come inside the call. */
    for (size_t i = 0; i < n; i++) {
        batch[i]->next = p->inflight;
        p->inflight = batch[i];
        p->n_inflight++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!n) return;
    for (size_t i = 0; i < n; i++) subs[i] = (aas_client_submission_t){.job = batch[i]->job};
    aas_client_submit_many(p->c, subs, n, NULL, 0);
    /* The quota's wait is the client's last refusal's: refusals of one
     * batch are of the same moment. */
    int64_t retry_ms = aas_client_last_retry_ms(p->c);
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        aas_gw_slot_t *s = batch[i];
        if (s->reported) { /* acknowledged (or failed) inside the call */
            aas_gw_pub_settle(s, s->err, AAS_GW_PUB_FAILED, s->out.why);
            continue;
        }
        if (!subs[i].err) {
            s->state = SLOT_INFLIGHT;
            pthread_cond_signal(&s->cv); /* a caller past its wait may leave now */
            continue;
        }
        for (aas_gw_slot_t **pp = &p->inflight; *pp; pp = &(*pp)->next)
            if (*pp == s) {
                *pp = s->next;
                p->n_inflight--;
                break;
            }
        s->out.retry_ms = subs[i].err == AAS_ERR_QUOTA ? retry_ms : 0;
        aas_gw_pub_settle(s, subs[i].err, AAS_GW_PUB_REFUSED, subs[i].why);
    }
    pthread_mutex_unlock(&p->mu);
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

aas_err_t aas_gw_pub_new(aas_client_t *c, aas_gw_pub_t **out, char *errstr,
                         size_t errstr_size) {
    aas_gw_pub_t *p = calloc(1, sizeof(*p));
    if (!p) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    p->c = c;
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

aas_err_t aas_gw_pub_publish(aas_gw_pub_t *p, const aas_job_t *job, int wait_ms,
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
    snprintf(s->id, sizeof(s->id), "%s", job->id);
    struct timespec until = aas_mono_deadline(wait_ms);
    pthread_mutex_lock(&p->mu);
    *p->queued_tail = s;
    p->queued_tail = &s->next;
    pthread_mutex_unlock(&p->mu);
    aas_gw_pub_wake(p);
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
            timed_out = 1;
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
    pthread_cond_destroy(&s->cv);
    free(s);
    return err;
}
