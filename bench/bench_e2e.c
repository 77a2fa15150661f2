/*
 * bench_e2e.c - load generator for a running aas fleet, through the C
 * client library (producer/client.h), measuring submit-to-result latency
 * and jobs/s.  Not a test; it prints figures (bench/run_bench.sh runs it).
 *
 *   bench_e2e --brokers LIST --redis-port P --model NAME --dim D
 *             [--jobs N] [--inflight K]          closed loop
 *   bench_e2e ... --profile RATE:SECS,...        open loop (step load)
 *   bench_e2e make-model --layers 784,512,512,10 --out FILE
 *
 * Closed loop: N one-row jobs, at most K in flight (K large: burst
 * throughput; K = 1: latency).  Whenever slots are free, the submitter
 * hands that many jobs (at most 64) to aas_client_submit_many(), as a
 * client with jobs at hand does, so their id claims share Redis round
 * trips.  Latency of a job runs from just before that call until
 * aas_client_wait() has read and decoded its result from Redis; jobs/s =
 * N / (first submit .. last result read).
 *
 * Open loop (--profile 200:10,2000:20,200:30): successive phases of RATE
 * jobs/s for SECS seconds, submitted on schedule whatever completes, and
 * latency measured from the *scheduled* time, so a submitter that falls
 * behind (or a queue in front of the workers) shows up in the figures
 * instead of being hidden (coordinated omission).  Prints per-phase and
 * overall percentiles and a per-second timeline.
 *
 * How results are awaited.  aas_client_wait() blocks on BLPOP of the job's
 * own done:{id} key, so one connection waits for one job.  One thread per
 * job in flight would cost thousands of threads and connections; polling
 * many status keys, or one BLPOP over hundreds of keys, would put a load on
 * Redis that the fleet (on the same cores) would pay for.  Instead a few
 * waiter threads, each with its own aas_client_t and so its own Redis
 * connection, wait for one job at a time, in the order the fleet finishes
 * them: a partition's jobs are run in offset order, i.e. in the order they
 * were submitted, but different partitions progress independently (a
 * consumer takes a chunk of one partition, then of the next).  So every
 * partition of topic.infer gets its own queue and W/P waiters (--waiters W,
 * default 8, rounded up to a multiple of the partition count P), and a job
 * goes to the queue of the partition the client's partitioner picks for its
 * key (librdkafka's default, consistent_random: CRC-32 of the key modulo P).
 * A waiter is then almost always blocked on a job that is really not done,
 * wakes at once when it is (BLPOP), and the latency it records is what a
 * client gets.  Two checks are printed: the partition predicted for a
 * sample of jobs against the one the worker recorded (job status `src`),
 * and the "read lag": result read time minus the worker's finished_ms stamp
 * taken after its forward pass (both unix ms on this host), for the sample
 * also split at the terminal write (status finished_ms) into the worker's
 * share and the bench's.  In a burst on a saturated machine the bench's
 * share grows: results land 64 at a time and each read costs the client
 * library two Redis round trips and a decode on cores the workers keep busy
 * (measured: tens of ms at the end of 7,000 jobs/s bursts on 2 cores, ~0
 * with one job in flight).  With one job in flight a single waiter is
 * used.  The submitter thread has its own client; when it cannot submit (no
 * free slot, or before the next scheduled time) it calls aas_client_flush()
 * as a client with nothing more to send does, which serves delivery reports
 * (the QUEUED write) and sends what lingers.
 *
 * Every job must end SUCCEEDED: failures (publication, FAILED results,
 * errors) and timeouts are counted, and any makes the exit status 1.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "cli.h"
#include "client.h"
#include "kafka.h"
#include "model.h"

#define MAX_X 64
#define MAX_TAGS 16
#define MAX_PHASES 64
#define N_ROWS 64 /* distinct input rows, reused round-robin */

enum { J_PENDING = 0, J_OK, J_FAILED, J_TIMEOUT };

typedef struct {
    long *q;              /* job indices of this partition, in submit order */
    long n, published, claimed;
    pthread_cond_t cv;    /* a job was published here, or all are */
} part_t;

typedef struct {
    int64_t t_sched_us;  /* latency origin: submit (closed) or schedule (open) */
    int64_t t_submit_us; /* just before aas_client_submit() */
    int64_t t_done_us;   /* result read */
    int64_t lag_ms;      /* read wall time - worker's finished_ms */
    int64_t read_ms;     /* read wall time, unix ms */
    atomic_int dr_failed;
    int state;
    int part;            /* predicted partition (queue of its waiters) */
} job_t;

typedef struct {
    int rate;
    double secs;
} phase_t;

typedef struct {
    /* options */
    const char *brokers, *redis_host, *model, *label;
    const char *ready_file; /* created once the timed run's jobs are all delivered */
    int timed;              /* the run after the warm-up */
    int redis_port, dim, inflight, waiters, warmup, timeout_s;
    long jobs;
    phase_t phases[MAX_PHASES];
    int n_phases;
    const char *x[MAX_X];
    int nx;
    const char *tags[MAX_TAGS];
    int n_tags;
    /* run state */
    aas_conf_t *conf;
    float *rows;          /* N_ROWS x dim */
    char **texts;         /* --texts: the texts jobs carry, instead of rows */
    size_t n_texts;
    uint64_t run_tag;     /* high half of every job id */
    job_t *jobs_arr;
    long n;               /* jobs in this run */
    int topic_parts;      /* partitions of topic.infer */
    int waiters_used;
    part_t *parts;        /* one queue per partition (one in all if K = 1) */
    int n_parts;
    long completed;
    int all_submitted;
    long part_checked, part_matched;
    int64_t lag_worker_max, lag_read_max; /* ms, over the checked sample */
    long n_ok, n_failed, n_timeout;
    char first_error[1024];
    pthread_mutex_t mu;
    pthread_cond_t slot_cv;
} bench_t;

static int64_t mono_us(void) { return aas_mono_us(); }

static void sleep_until_us(int64_t t) {
    int64_t d = t - mono_us();
    if (d <= 0) return;
    struct timespec ts = {(time_t)(d / 1000000), (long)(d % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void job_id(const bench_t *b, long i, char *buf, size_t size) {
    snprintf(buf, size, "%016" PRIx64 "%016" PRIx64, b->run_tag, (uint64_t)i);
}

/* Delivery reports run on the submitter thread (inside submit/flush). */
static void on_delivery(void *opaque, const char *id, aas_err_t err, const char *why) {
    bench_t *b = opaque;
    if (!err || strlen(id) != 32) return;
    uint64_t i = strtoull(id + 16, NULL, 16);
    if (i >= (uint64_t)b->n) return;
    atomic_store(&b->jobs_arr[i].dr_failed, 1);
    pthread_mutex_lock(&b->mu);
    if (!b->first_error[0])
        snprintf(b->first_error, sizeof(b->first_error), "job %s: %s", id, why);
    pthread_mutex_unlock(&b->mu);
}

static aas_err_t new_client(bench_t *b, aas_client_t **out, char *why, size_t size) {
    return aas_client_new(b->conf, out, why, size);
}

/* Partition count of topic.infer, from the broker's metadata. */
static aas_err_t topic_partitions(const aas_conf_t *conf, int *out, char *why, size_t size) {
    rd_kafka_conf_t *kc = NULL;
    aas_err_t err =
        aas_kafka_conf_new(conf, "bench-metadata", RD_KAFKA_PRODUCER, NULL, &kc, why, size);
    if (err) return err;
    char kerr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, kerr, sizeof(kerr));
    if (!rk) {
        rd_kafka_conf_destroy(kc);
        return aas_err_set(why, size, AAS_ERR_KAFKA, "metadata client: %s", kerr);
    }
    const char *topic = aas_conf_get(conf, "topic.infer");
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t ke = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 15000)
                                 : rd_kafka_last_error();
    err = AAS_ERR_OK;
    if (ke)
        err = aas_err_set(why, size, AAS_ERR_KAFKA, "metadata of %s: %s", topic,
                          rd_kafka_err2str(ke));
    else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1)
        err = aas_err_set(why, size, AAS_ERR_KAFKA, "topic %s: %s", topic,
                          md->topic_cnt == 1 && md->topics[0].err
                              ? rd_kafka_err2str(md->topics[0].err) : "no partitions");
    else
        *out = md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    if (rkt) rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return err;
}

/* ------------------------------------------------------------- waiters */

static void finish_job(bench_t *b, job_t *j, int state, const char *why) {
    pthread_mutex_lock(&b->mu);
    j->state = state;
    b->completed++;
    if (state == J_OK) b->n_ok++;
    else if (state == J_TIMEOUT) b->n_timeout++;
    else b->n_failed++;
    if (why && !b->first_error[0])
        snprintf(b->first_error, sizeof(b->first_error), "%s", why);
    pthread_cond_signal(&b->slot_cv);
    pthread_mutex_unlock(&b->mu);
}

typedef struct {
    bench_t *b;
    int part;
} waiter_arg_t;

static void *waiter_main(void *arg) {
    bench_t *b = ((waiter_arg_t *)arg)->b;
    part_t *q = &b->parts[((waiter_arg_t *)arg)->part];
    aas_client_t *c = NULL;
    char why[512];
    if (new_client(b, &c, why, sizeof(why))) {
        fprintf(stderr, "bench_e2e: waiter client: %s\n", why);
        c = NULL; /* every claimed job fails below */
    }
    for (;;) {
        pthread_mutex_lock(&b->mu);
        while (q->claimed >= q->published && !b->all_submitted)
            pthread_cond_wait(&q->cv, &b->mu);
        if (q->claimed >= q->published) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        long i = q->q[q->claimed++];
        pthread_mutex_unlock(&b->mu);
        job_t *j = &b->jobs_arr[i];
        char id[40];
        job_id(b, i, id, sizeof(id));
        if (!c) {
            finish_job(b, j, J_FAILED, "waiter has no client");
            continue;
        }
        int64_t deadline = j->t_submit_us + (int64_t)b->timeout_s * 1000000;
        aas_result_t res = {0};
        aas_err_t err;
        /* 1 s slices, so a job whose publication failed is not awaited for
         * the whole timeout. */
        for (;;) {
            int64_t left = (deadline - mono_us()) / 1000;
            if (left < 0) left = 0;
            err = aas_client_wait(c, id, left > 1000 ? 1000 : (int)left, &res, why,
                                  sizeof(why));
            if (err != AAS_ERR_TIMEOUT || left <= 1000 || atomic_load(&j->dr_failed))
                break;
        }
        j->t_done_us = mono_us();
        char msg[700];
        if (err == AAS_ERR_TIMEOUT && atomic_load(&j->dr_failed)) {
            finish_job(b, j, J_FAILED, NULL); /* reason already recorded */
        } else if (err == AAS_ERR_TIMEOUT) {
            snprintf(msg, sizeof(msg), "job %s: no result within %d s", id, b->timeout_s);
            finish_job(b, j, J_TIMEOUT, msg);
        } else if (err) {
            snprintf(msg, sizeof(msg), "job %s: wait: %s", id, why);
            finish_job(b, j, J_FAILED, msg);
        } else if (res.status != AAS_STATUS_SUCCEEDED) {
            snprintf(msg, sizeof(msg), "job %s: %s: %s", id, aas_status_name(res.status),
                     res.error ? res.error : "(no reason)");
            finish_job(b, j, J_FAILED, msg);
        } else if (atomic_load(&j->dr_failed)) {
            finish_job(b, j, J_FAILED, NULL); /* ran, but its QUEUED write failed */
        } else {
            j->read_ms = aas_now_ms();
            j->lag_ms = j->read_ms - res.finished_ms;
            finish_job(b, j, J_OK, NULL);
        }
        aas_result_clear(&res);
    }
    aas_client_destroy(c);
    return NULL;
}

/* ----------------------------------------------------------- submitter */

/* Jobs handed to the client per call when several slots are free: their
 * id claims then share Redis round trips (aas_client_submit_many). */
#define SUBMIT_BATCH 64

/* Submit jobs [i, i + k) in one aas_client_submit_many call (k <=
 * SUBMIT_BATCH).  Returns 0 if every one was accepted. */
static int submit_range(bench_t *b, aas_client_t *c, long i, long k) {
    static aas_client_submission_t subs[SUBMIT_BATCH]; /* the submitter's only */
    char ids[SUBMIT_BATCH][40];
    aas_tensor_t t[SUBMIT_BATCH];
    aas_job_t jobs[SUBMIT_BATCH];
    int64_t shape[2] = {1, b->dim};
    long made = 0;
    int rc = 0;
    for (; made < k; made++) {
        long x = i + made;
        job_id(b, x, ids[made], sizeof(ids[made]));
        memset(&t[made], 0, sizeof(t[made]));
        jobs[made] = (aas_job_t){.id = ids[made], .kind = AAS_JOB_INFER,
                                 .model = (char *)b->model};
        if (b->texts) {
            jobs[made].text = b->texts[(size_t)x % b->n_texts];
        } else if (aas_tensor_set_f32(&t[made], "input",
                                      b->rows + (size_t)(x % N_ROWS) * (size_t)b->dim, 2,
                                      shape)) {
            fprintf(stderr, "bench_e2e: out of memory\n");
            rc = -1;
            break;
        } else {
            jobs[made].inputs = &t[made];
            jobs[made].n_inputs = 1;
        }
        subs[made] = (aas_client_submission_t){.job = &jobs[made]};
    }
    int64_t now = mono_us();
    for (long m = 0; m < made; m++) {
        job_t *j = &b->jobs_arr[i + m];
        j->t_submit_us = now;
        if (!j->t_sched_us) j->t_sched_us = now; /* closed loop */
    }
    char why[512];
    if (!rc && aas_client_submit_many(c, subs, (size_t)made, why, sizeof(why))) {
        fprintf(stderr, "bench_e2e: submit: %s\n", why);
        rc = -1;
    }
    for (long m = 0; m < made; m++) aas_tensor_clear(&t[m]);
    if (rc) return rc;
    pthread_mutex_lock(&b->mu);
    for (long m = 0; m < made; m++) {
        part_t *q = &b->parts[b->jobs_arr[i + m].part];
        q->published++; /* jobs of a partition are submitted in q->q order */
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return 0;
}

static int submit_one(bench_t *b, aas_client_t *c, long i) { return submit_range(b, c, i, 1); }

/* Nothing to submit right now: serve delivery reports and send what
 * lingers (aas_client_flush with a short bound), as an idle client does.
 * Returns 1 once every submitted job is settled (nothing left to serve). */
static int idle_flush(aas_client_t *c, int ms) {
    size_t failed = 0;
    /* AAS_ERR_TIMEOUT only means jobs are still in flight; failures come
     * to the delivery callback. */
    return aas_client_flush(c, ms, &failed, NULL, 0) == AAS_ERR_OK;
}

/* CRC-32 (IEEE, reflected, as zlib): librdkafka's consistent_random
 * partitioner puts a keyed message on crc32(key) % partitions. */
static uint32_t crc32_ieee(const char *p, size_t len) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned char)p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* Compare the predicted partition of up to 100 succeeded jobs with the one
 * the worker recorded (status field src = "topic/partition/offset"), and
 * split their read lag at the terminal write (status finished_ms, Redis
 * clock): worker side (forward pass done -> result in Redis) and bench side
 * (result in Redis -> read by a waiter). */
static void check_partitions(bench_t *b, aas_client_t *c) {
    long step = b->n / 100 > 0 ? b->n / 100 : 1;
    b->lag_worker_max = b->lag_read_max = 0;
    for (long i = 0; i < b->n; i += step) {
        if (b->jobs_arr[i].state != J_OK) continue;
        char id[40];
        job_id(b, i, id, sizeof(id));
        aas_job_info_t info = {0};
        if (aas_client_status(c, id, &info, NULL, 0) == AAS_ERR_OK && info.src) {
            char *last = strrchr(info.src, '/');
            char *prev = last;
            while (prev && prev > info.src && prev[-1] != '/') prev--;
            if (last && prev && prev > info.src) {
                b->part_checked++;
                if (atoi(prev) == b->jobs_arr[i].part) b->part_matched++;
                const job_t *j = &b->jobs_arr[i];
                int64_t wl = info.finished_ms - (j->read_ms - j->lag_ms);
                int64_t rl = j->read_ms - info.finished_ms;
                if (wl > b->lag_worker_max) b->lag_worker_max = wl;
                if (rl > b->lag_read_max) b->lag_read_max = rl;
            }
        }
        aas_job_info_clear(&info);
    }
}

/* Run n jobs; open loop if b->n_phases, else at most b->inflight in flight.
 * Returns 0 if every job was published (outcomes are in b). */
static int run(bench_t *b, long n, int open_loop) {
    char why[512];
    b->jobs_arr = calloc((size_t)n, sizeof(job_t));
    if (!b->jobs_arr) return -1;
    b->n = n;
    b->completed = 0;
    b->n_ok = b->n_failed = b->n_timeout = 0;
    b->part_checked = b->part_matched = 0;
    b->all_submitted = 0;
    if (getrandom(&b->run_tag, sizeof(b->run_tag), 0) != (ssize_t)sizeof(b->run_tag))
        return -1;
    /* Queues: one per partition, or one in all with a single job in flight. */
    int one = !open_loop && b->inflight == 1;
    b->n_parts = one ? 1 : b->topic_parts;
    b->parts = calloc((size_t)b->n_parts, sizeof(part_t));
    if (!b->parts) return -1;
    for (int p = 0; p < b->n_parts; p++) {
        if (!(b->parts[p].q = malloc(sizeof(long) * (size_t)n))) return -1;
        pthread_cond_init(&b->parts[p].cv, NULL);
    }
    for (long i = 0; i < n; i++) {
        char id[40];
        job_id(b, i, id, sizeof(id));
        int p = one ? 0 : (int)(crc32_ieee(id, strlen(id)) % (uint32_t)b->n_parts);
        b->jobs_arr[i].part = p;
        b->parts[p].q[b->parts[p].n++] = i;
    }
    aas_client_t *c = NULL;
    if (new_client(b, &c, why, sizeof(why))) {
        fprintf(stderr, "bench_e2e: client: %s\n", why);
        return -1;
    }
    aas_client_set_delivery_cb(c, on_delivery, b);
    int per = one ? 1 : (b->waiters + b->n_parts - 1) / b->n_parts;
    int nw = per * b->n_parts;
    pthread_t *th = calloc((size_t)nw, sizeof(*th));
    waiter_arg_t *wa = calloc((size_t)nw, sizeof(*wa));
    int started = 0, rc = 0;
    for (; th && wa && started < nw; started++) {
        wa[started] = (waiter_arg_t){b, started % b->n_parts};
        if (pthread_create(&th[started], NULL, waiter_main, &wa[started])) break;
    }
    if (started < nw) rc = -1;
    b->waiters_used = started;

    if (!open_loop) {
        for (long i = 0; i < n && !rc; i++) {
            pthread_mutex_lock(&b->mu);
            while (i - b->completed >= b->inflight) {
                pthread_mutex_unlock(&b->mu);
                idle_flush(c, 1);
                pthread_mutex_lock(&b->mu);
                if (i - b->completed < b->inflight) break;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 1000000;
                if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
                pthread_cond_timedwait(&b->slot_cv, &b->mu, &ts);
            }
            /* Every free slot at once (at most SUBMIT_BATCH): what a client
             * with jobs at hand does. */
            long k = b->inflight - (i - b->completed);
            pthread_mutex_unlock(&b->mu);
            if (k > SUBMIT_BATCH) k = SUBMIT_BATCH;
            if (k > n - i) k = n - i;
            if (k < 1) k = 1;
            if (submit_range(b, c, i, k)) rc = -1;
            i += k - 1;
        }
    } else {
        int64_t t0 = mono_us() + 20000; /* first job 20 ms from now */
        long i = 0;
        double phase_start = 0;
        for (int p = 0; p < b->n_phases && !rc; p++) {
            long in_phase = (long)llround(b->phases[p].rate * b->phases[p].secs);
            for (long k = 0; k < in_phase && !rc; k++, i++) {
                int64_t at = t0 + (int64_t)((phase_start + (double)k / b->phases[p].rate) * 1e6);
                /* Serve delivery reports while early; sleep once settled. */
                while (mono_us() < at - 1500 && !idle_flush(c, 1)) {}
                sleep_until_us(at);
                b->jobs_arr[i].t_sched_us = at;
                if (submit_one(b, c, i)) rc = -1;
            }
            phase_start += b->phases[p].secs;
        }
    }
    size_t failed = 0;
    if (aas_client_flush(c, 60000, &failed, why, sizeof(why))) {
        fprintf(stderr, "bench_e2e: %s\n", why);
        rc = -1;
    } else if (b->timed && b->ready_file) {
        /* Every job is in the broker: a backlog for workers held stopped. */
        FILE *f = fopen(b->ready_file, "w");
        if (!f || fclose(f)) {
            fprintf(stderr, "bench_e2e: cannot create %s\n", b->ready_file);
            rc = -1;
        }
    }
    pthread_mutex_lock(&b->mu);
    b->all_submitted = 1;
    for (int p = 0; p < b->n_parts; p++) pthread_cond_broadcast(&b->parts[p].cv);
    pthread_mutex_unlock(&b->mu);
    for (int w = 0; w < started; w++) pthread_join(th[w], NULL);
    free(th);
    free(wa);
    if (!one) check_partitions(b, c);
    for (int p = 0; p < b->n_parts; p++) {
        free(b->parts[p].q);
        pthread_cond_destroy(&b->parts[p].cv);
    }
    free(b->parts);
    b->parts = NULL;
    aas_client_destroy(c);
    return rc;
}

/* ------------------------------------------------------------- figures */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n]. */
static double pct(const int64_t *v, long n, double q) {
    if (n <= 0) return NAN;
    long k = (long)ceil(q * (double)n) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return (double)v[k];
}

typedef struct {
    long n;
    double p50, p90, p99, max; /* ms */
} stats_t;

/* Latency stats (ms) over succeeded jobs i in [from, to) whose done time
 * is in [d_from, d_to) (pass INT64_MIN/MAX for all). */
static stats_t lat_stats(const bench_t *b, long from, long to, int64_t d_from, int64_t d_to) {
    stats_t s = {0};
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(to > from ? to - from : 1));
    if (!v) return s;
    for (long i = from; i < to; i++) {
        const job_t *j = &b->jobs_arr[i];
        if (j->state == J_OK && j->t_done_us >= d_from && j->t_done_us < d_to)
            v[s.n++] = j->t_done_us - j->t_sched_us;
    }
    qsort(v, (size_t)s.n, sizeof(int64_t), cmp_i64);
    s.p50 = pct(v, s.n, 0.50) / 1000;
    s.p90 = pct(v, s.n, 0.90) / 1000;
    s.p99 = pct(v, s.n, 0.99) / 1000;
    s.max = s.n ? (double)v[s.n - 1] / 1000 : NAN;
    free(v);
    return s;
}

static void lag_stats(const bench_t *b, double *p50, double *p99) {
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(b->n ? b->n : 1));
    long n = 0;
    for (long i = 0; v && i < b->n; i++)
        if (b->jobs_arr[i].state == J_OK) v[n++] = b->jobs_arr[i].lag_ms;
    if (v) qsort(v, (size_t)n, sizeof(int64_t), cmp_i64);
    *p50 = v ? pct(v, n, 0.5) : NAN;
    *p99 = v ? pct(v, n, 0.99) : NAN;
    free(v);
}

/* The waiters' partition prediction, checked against the workers' record. */
static void print_part_check(const bench_t *b) {
    if (!b->part_checked) return;
    printf("partition check: %ld of %ld sampled jobs ran on the predicted partition%s\n",
           b->part_matched, b->part_checked,
           b->part_matched == b->part_checked ? ""
               : " (MISMATCH: the client's partitioner is not consistent_random; "
                 "waiters then read some results late)");
    printf("read lag of the sample, split at the terminal write: forward pass done -> "
           "result in Redis max %lld ms (worker); result in Redis -> read max %lld ms "
           "(bench)\n", (long long)b->lag_worker_max, (long long)b->lag_read_max);
}

static void print_tags(const bench_t *b) {
    printf(" label=%s model=%s dim=%d", b->label, b->model, b->dim);
    for (int i = 0; i < b->n_tags; i++) printf(" %s", b->tags[i]);
}

static void report_closed(const bench_t *b) {
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (long i = 0; i < b->n; i++) {
        if (b->jobs_arr[i].t_submit_us < first) first = b->jobs_arr[i].t_submit_us;
        if (b->jobs_arr[i].t_done_us > last) last = b->jobs_arr[i].t_done_us;
    }
    double secs = (double)(last - first) / 1e6;
    double rate = secs > 0 ? (double)b->n / secs : NAN;
    stats_t s = lat_stats(b, 0, b->n, INT64_MIN, INT64_MAX);
    double lag50, lag99;
    lag_stats(b, &lag50, &lag99);
    const char *mode = b->inflight == 1 ? "latency" : "burst";
    printf("\ne2e %s (%s): %ld one-row jobs of %d floats, model %s, at most %d in "
           "flight, %d waiter(s), %.2f s\n", mode, b->label, b->n, b->dim, b->model,
           b->inflight, b->waiters_used, secs);
    printf("| %9s | %8s | %8s | %8s | %8s | %6s | %8s | %16s |\n", "jobs/s", "p50 ms",
           "p90 ms", "p99 ms", "max ms", "failed", "timedout", "read lag p50/p99");
    printf("| %9.0f | %8.3f | %8.3f | %8.3f | %8.3f | %6ld | %8ld | %9.0f/%-6.0f |\n",
           rate, s.p50, s.p90, s.p99, s.max, b->n_failed, b->n_timeout, lag50, lag99);
    printf("RESULT bench=e2e mode=%s", mode);
    print_tags(b);
    printf(" jobs=%ld inflight=%d waiters=%d jobs_per_s=%.0f p50_ms=%.3f p90_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f failed=%ld timeouts=%ld read_lag_p99_ms=%.0f\n",
           b->n, b->inflight, b->waiters_used, rate, s.p50, s.p90, s.p99, s.max, b->n_failed,
           b->n_timeout, lag99);
    print_part_check(b);
}

static void report_open(const bench_t *b) {
    int64_t t0 = b->jobs_arr[0].t_sched_us;
    double total_s = 0;
    for (int p = 0; p < b->n_phases; p++) total_s += b->phases[p].secs;
    printf("\ne2e open loop (%s): model %s, %d floats per job, %d waiter(s); latency "
           "from the scheduled submit time\n", b->label, b->model, b->dim, b->waiters_used);
    printf("| %5s | %8s | %6s | %6s | %9s | %8s | %8s | %8s |\n", "phase", "rate/s",
           "secs", "jobs", "done/s", "p50 ms", "p99 ms", "max ms");
    long i0 = 0;
    double ps = 0;
    for (int p = 0; p <= b->n_phases; p++) {
        long from, to;
        double secs;
        char name[16];
        if (p < b->n_phases) {
            long cnt = (long)llround(b->phases[p].rate * b->phases[p].secs);
            from = i0;
            to = i0 + cnt;
            secs = b->phases[p].secs;
            snprintf(name, sizeof(name), "%d", p + 1);
        } else {
            from = 0;
            to = b->n;
            secs = total_s;
            snprintf(name, sizeof(name), "all");
        }
        stats_t s = lat_stats(b, from, to, INT64_MIN, INT64_MAX);
        /* Completions inside the phase's own time window. */
        int64_t w0 = t0 + (int64_t)((p < b->n_phases ? ps : 0) * 1e6);
        int64_t w1 = w0 + (int64_t)(secs * 1e6);
        long done_in = 0;
        for (long i = 0; i < b->n; i++)
            if (b->jobs_arr[i].state == J_OK && b->jobs_arr[i].t_done_us >= w0 &&
                b->jobs_arr[i].t_done_us < w1)
                done_in++;
        int rate = p < b->n_phases ? b->phases[p].rate : (int)llround((double)b->n / total_s);
        printf("| %5s | %8d | %6.1f | %6ld | %9.0f | %8.3f | %8.3f | %8.3f |\n", name, rate,
               secs, to - from, (double)done_in / secs, s.p50, s.p99, s.max);
        printf("RESULT bench=e2e mode=profile phase=%s", name);
        print_tags(b);
        printf(" rate=%d secs=%.1f jobs=%ld done_per_s=%.0f p50_ms=%.3f p99_ms=%.3f "
               "max_ms=%.3f\n", rate, secs, to - from, (double)done_in / secs, s.p50,
               s.p99, s.max);
        if (p < b->n_phases) {
            i0 = to;
            ps += b->phases[p].secs;
        }
    }
    /* Timeline: per second since the first scheduled job. */
    int64_t last = t0;
    for (long i = 0; i < b->n; i++)
        if (b->jobs_arr[i].t_done_us > last) last = b->jobs_arr[i].t_done_us;
    long secs = (long)((last - t0) / 1000000) + 1;
    printf("\ntimeline (second: jobs submitted, results read, p99 ms of the results read)\n");
    printf("| %4s | %9s | %9s | %9s |\n", "t", "submitted", "completed", "p99 ms");
    for (long s = 0; s < secs; s++) {
        int64_t a = t0 + s * 1000000, z = a + 1000000;
        long sub = 0;
        for (long i = 0; i < b->n; i++)
            if (b->jobs_arr[i].t_submit_us >= a && b->jobs_arr[i].t_submit_us < z) sub++;
        stats_t st = lat_stats(b, 0, b->n, a, z);
        printf("| %4ld | %9ld | %9ld | %9.3f |\n", s, sub, st.n, st.p99);
        printf("RESULT bench=e2e_timeline t=%ld", s);
        print_tags(b);
        printf(" submitted=%ld completed=%ld p99_ms=%.3f\n", sub, st.n, st.p99);
    }
    double lag50, lag99;
    lag_stats(b, &lag50, &lag99);
    printf("failed=%ld timeouts=%ld read lag p50/p99 %.0f/%.0f ms\n", b->n_failed,
           b->n_timeout, lag50, lag99);
    print_part_check(b);
}

/* ------------------------------------------------------------ make-model */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static float frand(void) { /* uniform [0, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0));
}

/* A dense relu MLP with a softmax output and random (He-uniform) weights. */
static int make_model(const char *layers_s, const char *out, unsigned seed) {
    int64_t dims[AAS_MLP_MAX_LAYERS + 1];
    int nd = 0;
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", layers_s);
    for (char *t = strtok_r(buf, ",-", &save); t; t = strtok_r(NULL, ",-", &save)) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v < 1 || v > AAS_MLP_MAX_DIM || nd > AAS_MLP_MAX_LAYERS) {
            fprintf(stderr, "bench_e2e: --layers wants widths like 784,512,512,10\n");
            return 2;
        }
        dims[nd++] = v;
    }
    if (nd < 2) {
        fprintf(stderr, "bench_e2e: --layers wants at least two widths\n");
        return 2;
    }
    rng_state ^= (uint64_t)seed * 0xD1B54A32D192ED03ULL;
    aas_mlp_layer_t L[AAS_MLP_MAX_LAYERS];
    float *mem[2 * AAS_MLP_MAX_LAYERS] = {0};
    int rc = 1;
    for (int l = 0; l < nd - 1; l++) {
        size_t nw = (size_t)(dims[l] * dims[l + 1]);
        float *w = malloc(nw * sizeof(float)), *bias = calloc((size_t)dims[l + 1], sizeof(float));
        mem[2 * l] = w;
        mem[2 * l + 1] = bias;
        if (!w || !bias) goto done;
        float a = sqrtf(6.0f / (float)dims[l]);
        for (size_t i = 0; i < nw; i++) w[i] = (2 * frand() - 1) * a;
        L[l] = (aas_mlp_layer_t){dims[l], dims[l + 1],
                                 l == nd - 2 ? AAS_ACT_SOFTMAX : AAS_ACT_RELU, w, bias};
    }
    void *blob = NULL;
    size_t len = 0;
    char why[256];
    if (aas_mlp_serialize(L, (size_t)(nd - 1), NULL, 0, &blob, &len, why, sizeof(why))) {
        fprintf(stderr, "bench_e2e: model: %s\n", why);
        goto done;
    }
    FILE *f = fopen(out, "wb");
    if (!f || fwrite(blob, 1, len, f) != len || fclose(f)) {
        fprintf(stderr, "bench_e2e: write %s: %s\n", out, strerror(errno));
        free(blob);
        goto done;
    }
    free(blob);
    rc = 0;
done:
    for (int i = 0; i < 2 * (nd - 1); i++) free(mem[i]);
    return rc;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f) {
    fprintf(f,
"usage: bench_e2e --brokers LIST --redis-port P --model NAME --dim D [options]\n"
"       bench_e2e make-model --layers 784,512,512,10 --out FILE [--seed N]\n"
"  --brokers LIST        kafka.bootstrap.servers                 (required)\n"
"  --redis-host H        Redis host                              (default 127.0.0.1)\n"
"  --redis-port P        Redis port                              (required)\n"
"  --model NAME          registered model to run                 (required)\n"
"  --dim D               floats per input row (the model's input) (required,\n"
"                        unless --texts)\n"
"  --texts TSV           text jobs: each job carries the text of a line of\n"
"                        TSV (label<TAB>text), in turn\n"
"  --jobs N              closed loop: jobs                       (default 10000)\n"
"  --inflight K          closed loop: most jobs in flight        (default 1000)\n"
"  --profile R:S,...     open loop: R jobs/s for S seconds, phase after phase\n"
"  --waiters W           waiter threads, own client each, rounded up to a\n"
"                        multiple of the partitions; 1 if K = 1   (default 8)\n"
"  --warmup N            untimed jobs first (model load, joins)  (default 200)\n"
"  --timeout S           per-job result timeout, seconds         (default 60)\n"
"  --label NAME          broker label in the output              (default kafka)\n"
"  --tag KEY=VALUE       extra field on RESULT lines (repeatable)\n"
"  --ready-file PATH     create PATH once every timed job is in the broker\n"
"                        (a backlog: bench/run_cost_bench.sh holds the workers\n"
"                        stopped until then)\n"
"  -X KEY=VALUE          client configuration, e.g. kafka.linger.ms=0 (repeatable)\n"
"  --help                this text\n"
"Exit status: 0 if every job SUCCEEDED, 1 if any failed or timed out, 2 usage.\n");
}

/* The text of each line "label<TAB>text" of a TSV file. */
static int read_texts(bench_t *b, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench_e2e: cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, have = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab || line[0] == '#') continue;
        if (b->n_texts == have) {
            have = have ? have * 2 : 1024;
            char **t = realloc(b->texts, have * sizeof(char *));
            if (!t) return -1;
            b->texts = t;
        }
        if (!(b->texts[b->n_texts] = strdup(tab + 1))) return -1;
        b->n_texts++;
    }
    free(line);
    fclose(f);
    if (!b->n_texts) {
        fprintf(stderr, "bench_e2e: no label<TAB>text line in %s\n", path);
        return -1;
    }
    return 0;
}

static long parse_long(const char *s, const char *what, long min, long max) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bench_e2e: %s wants a number in %ld..%ld, not '%s'\n", what,
                min, max, s);
        exit(2);
    }
    return v;
}

static int parse_profile(bench_t *b, const char *s) {
    char buf[1024], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int rate;
        double secs;
        char extra;
        if (b->n_phases == MAX_PHASES || sscanf(t, "%d:%lf%c", &rate, &secs, &extra) != 2 ||
            rate < 1 || rate > 1000000 || !(secs > 0) || secs > 86400)
            return -1;
        b->phases[b->n_phases++] = (phase_t){rate, secs};
    }
    return b->n_phases ? 0 : -1;
}

static int main_make_model(int argc, char **argv) {
    static const struct option opts[] = {{"layers", required_argument, NULL, 'l'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *layers = NULL, *out = NULL;
    unsigned seed = 1;
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'l': layers = optarg; break;
        case 'o': out = optarg; break;
        case 's': seed = (unsigned)parse_long(optarg, "--seed", 0, 1L << 31); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!layers || !out || optind != argc) {
        fprintf(stderr, "bench_e2e: make-model needs --layers and --out\n");
        return 2;
    }
    return make_model(layers, out, seed);
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* hiredis: a dead Redis must give EPIPE */
    if (argc > 1 && !strcmp(argv[1], "make-model")) return main_make_model(argc, argv);
    static bench_t b = {.redis_host = "127.0.0.1", .label = "kafka", .jobs = 10000,
                        .inflight = 1000, .waiters = 8, .warmup = 200, .timeout_s = 60};
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"redis-host", required_argument, NULL, 'H'},
        {"redis-port", required_argument, NULL, 'P'},
        {"model", required_argument, NULL, 'm'},
        {"dim", required_argument, NULL, 'd'},
        {"texts", required_argument, NULL, 'x'},
        {"jobs", required_argument, NULL, 'n'},
        {"inflight", required_argument, NULL, 'k'},
        {"profile", required_argument, NULL, 'p'},
        {"waiters", required_argument, NULL, 'w'},
        {"warmup", required_argument, NULL, 'W'},
        {"timeout", required_argument, NULL, 't'},
        {"label", required_argument, NULL, 'l'},
        {"tag", required_argument, NULL, 'T'},
        {"ready-file", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "X:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'b': b.brokers = optarg; break;
        case 'H': b.redis_host = optarg; break;
        case 'P': b.redis_port = (int)parse_long(optarg, "--redis-port", 1, 65535); break;
        case 'm': b.model = optarg; break;
        case 'd': b.dim = (int)parse_long(optarg, "--dim", 1, 1 << 20); break;
        case 'x':
            if (read_texts(&b, optarg)) return 1;
            b.dim = 1;
            break;
        case 'n': b.jobs = parse_long(optarg, "--jobs", 1, 100000000); break;
        case 'k': b.inflight = (int)parse_long(optarg, "--inflight", 1, 10000000); break;
        case 'p':
            if (parse_profile(&b, optarg)) {
                fprintf(stderr, "bench_e2e: --profile wants RATE:SECS[,RATE:SECS...], "
                        "e.g. 200:10,2000:20\n");
                return 2;
            }
            break;
        case 'w': b.waiters = (int)parse_long(optarg, "--waiters", 1, 1024); break;
        case 'W': b.warmup = (int)parse_long(optarg, "--warmup", 0, 1000000); break;
        case 't': b.timeout_s = (int)parse_long(optarg, "--timeout", 1, 86400); break;
        case 'l': b.label = optarg; break;
        case 'r': b.ready_file = optarg; break;
        case 'T':
            if (b.n_tags == MAX_TAGS || !strchr(optarg, '=')) {
                fprintf(stderr, "bench_e2e: --tag wants KEY=VALUE (at most %d)\n", MAX_TAGS);
                return 2;
            }
            b.tags[b.n_tags++] = optarg;
            break;
        case 'X':
            if (b.nx == MAX_X) {
                fprintf(stderr, "bench_e2e: too many -X\n");
                return 2;
            }
            b.x[b.nx++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !b.brokers || !b.redis_port || !b.model || !b.dim) {
        fprintf(stderr, "bench_e2e: needs --brokers, --redis-port, --model and --dim "
                "(see --help)\n");
        return 2;
    }
    if (!aas_id_valid(b.model)) {
        fprintf(stderr, "bench_e2e: invalid model name '%s'\n", b.model);
        return 2;
    }
    /* Configuration: env AAS_*, then ours, then -X (highest). */
    char brokers_kv[1024], port_kv[64], host_kv[300], why[512];
    snprintf(brokers_kv, sizeof(brokers_kv), "kafka.bootstrap.servers=%s", b.brokers);
    snprintf(port_kv, sizeof(port_kv), "redis.port=%d", b.redis_port);
    snprintf(host_kv, sizeof(host_kv), "redis.host=%s", b.redis_host);
    char *xargs[MAX_X + 3] = {brokers_kv, port_kv, host_kv};
    for (int i = 0; i < b.nx; i++) xargs[3 + i] = (char *)b.x[i];
    if (aas_conf_new(aas_client_conf_defs, &b.conf) ||
        aas_cli_conf_load(b.conf, NULL, xargs, (size_t)(3 + b.nx), why, sizeof(why))) {
        fprintf(stderr, "bench_e2e: configuration: %s\n", why);
        return 2;
    }
    if (topic_partitions(b.conf, &b.topic_parts, why, sizeof(why))) {
        fprintf(stderr, "bench_e2e: %s\n", why);
        return 1;
    }
    b.rows = malloc(sizeof(float) * N_ROWS * (size_t)b.dim);
    if (!b.rows) return 1;
    for (size_t i = 0; i < (size_t)N_ROWS * (size_t)b.dim; i++) b.rows[i] = frand();
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.slot_cv, NULL);
    int open_loop = b.n_phases > 0;

    int rc = 0;
    if (b.warmup > 0) {
        /* Untimed: loads the model in every worker, settles the groups. */
        int k = b.inflight;
        b.inflight = open_loop ? 64 : (b.inflight < 64 ? b.inflight : 64);
        if (run(&b, b.warmup, 0) || b.n_ok != b.warmup) {
            fprintf(stderr, "bench_e2e: warm-up: %ld of %d jobs succeeded%s%s\n", b.n_ok,
                    b.warmup, b.first_error[0] ? "; first error: " : "", b.first_error);
            return 1;
        }
        free(b.jobs_arr);
        b.jobs_arr = NULL;
        b.inflight = k;
    }
    long n = b.jobs;
    if (open_loop) {
        n = 0;
        for (int p = 0; p < b.n_phases; p++)
            n += (long)llround(b.phases[p].rate * b.phases[p].secs);
    }
    b.timed = 1;
    if (run(&b, n, open_loop)) rc = 1;
    if (open_loop) report_open(&b);
    else report_closed(&b);
    printf("settings: %s", aas_conf_get(b.conf, "kafka.bootstrap.servers"));
    for (int i = 0; i < b.nx; i++) printf(" -X %s", b.x[i]);
    printf("\n");
    if (b.n_failed || b.n_timeout || b.n_ok != b.n) {
        fprintf(stderr, "bench_e2e: %ld of %ld jobs did not succeed (%ld failed, %ld timed "
                "out)%s%s\n", b.n - b.n_ok, b.n, b.n_failed, b.n_timeout,
                b.first_error[0] ? "; first error: " : "", b.first_error);
        rc = 1;
    }
    free(b.jobs_arr);
    free(b.rows);
    aas_conf_destroy(b.conf);
    return rc;
}
