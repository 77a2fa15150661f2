/*
 * bench_tenants.c - two tenants share the workers (issue 16: "one floods
 * 20,000 jobs, the other submits a steady 50 jobs/s; the steady tenant's
 * p99 stays within 2x of its p99 alone, and the flooding tenant still
 * gets the rest of the capacity"; docs/sharing.md, "Fair share").
 * bench/run_tenants_bench.sh runs it against running workers, with the
 * fair share on and off.
 *
 * Phase "alone": tenant `steady` submits one-row jobs (priority 0) at
 * --rate jobs/s for --seconds, open loop (each job at its scheduled time,
 * whatever the others did), with no other load.  Phase "flood": stop the
 * workers (SIGSTOP, so the whole flood is queued before any is served),
 * publish --flood one-row jobs of tenant `flood` (priority 0, the same
 * lane), let the workers go (SIGCONT), and at once run the steady tenant
 * again as in phase "alone"; then wait for the whole flood.
 *
 * A steady job's latency is from its submit call (client clock) to its
 * terminal write (Redis's clock, same host), as recorded in its status;
 * the submitter's lag behind its schedule is reported too (steady_lag_max_ms:
 * a late submit would hide latency, coordinated omission).  The flood's
 * drain rate is flood / (last flood finish - SIGCONT); flood_done_at_end is
 * how many flood jobs had finished when the steady phase under flood
 * ended (its schedule's end, --seconds after it started).  during_* are
 * the steady jobs submitted while the flood was still draining (before its
 * last finish): with a drain of about a second they are a few per cent of
 * the phase's jobs, and the p99 over the phase is theirs.
 * during_flood_left_median: the median over them of the share of the flood
 * still unfinished when each finished (near 0: it waited for the flood;
 * with a fair share it should be well above 0 for the early ones).  Each
 * of them (the first 50) is listed on stderr.
 *
 * Prints one RESULT line per run: alone and under-flood p50/p99/max (ms),
 * their p99 ratio, the drain rate (jobs/s), flood_done_at_end.  Exit 1 if
 * any job failed (or was recorded with another tenant).  It does not start
 * anything: brokers, Redis, workers and the model are the caller's (the
 * client is configured with -X key=value, as aas-producer).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "jobwait.h"
#include "conf.h"
#include "job.h"
#include "store.h"

#define MAX_X 32
#define MAX_PIDS 16
#define SUBMIT_BATCH 64 /* flood jobs per aas_client_submit_many call */
#define TENANT_STEADY "steady"
#define TENANT_FLOOD "flood"

typedef struct {
    const char *x[MAX_X];
    int nx;
    const char *model, *label;
    int dim;
    double rate;
    long seconds, flood, warmup;
    pid_t pids[MAX_PIDS];
    int n_pids;
} opts_t;

/* p50, p99, max of n latencies (ms). */
typedef struct {
    size_t n;
    long long p50, p99, max;
} lat_stats_t;

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: bench_tenants --model NAME --dim N [options] [-X key=value ...]\n"
            "  --model NAME       registered model (1 x dim float input)\n"
            "  --dim N            its input width\n"
            "  --rate R           steady tenant's jobs/s            (default 50)\n"
            "  --seconds N        length of each steady phase       (default 20)\n"
            "  --flood N          flood tenant's jobs               (default 20000)\n"
            "  --warmup N         steady jobs before, not counted   (default 20)\n"
            "  --pids LIST        worker pids to pause while the flood is published\n"
            "  --label TEXT       RESULT label and job id prefix    (default tenants)\n"
            "  -X key=value       client configuration (redis.port, kafka.*, topic.*)\n");
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until_ns(int64_t t_ns) {
    struct timespec ts = {(time_t)(t_ns / 1000000000LL), (long)(t_ns % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) {
    }
}

static void signal_all(const opts_t *o, int sig) {
    for (int i = 0; i < o->n_pids; i++)
        if (kill(o->pids[i], sig)) perror("bench_tenants: kill");
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts v.  p99 of n values: the ceil(0.99 n)-th smallest (of 1,000, the
 * 990th); p50 as bench_lanes, v[n / 2]. */
static lat_stats_t lat_stats(int64_t *v, size_t n) {
    lat_stats_t s = {.n = n};
    if (n == 0) return s;
    qsort(v, n, sizeof(*v), cmp_i64);
    size_t i99 = (size_t)((double)n * 0.99 + 0.999) - 1;
    s.p50 = (long long)v[n / 2];
    s.p99 = (long long)v[i99];
    s.max = (long long)v[n - 1];
    return s;
}

static void job_id(char *buf, size_t size, const opts_t *o, long run, char phase, long i) {
    snprintf(buf, size, "%s-%ld-%c%ld", o->label, run, phase, i);
}

/* One steady job, then a flush, so it is on the broker when this returns
 * (as a client waiting for its acknowledgement). */
static int submit_steady(aas_client_t *c, const opts_t *o, const char *id, const float *x) {
    aas_tensor_t t;
    int64_t shape[2] = {1, o->dim};
    if (aas_tensor_set_f32(&t, "x", x, 2, shape)) return -1;
    aas_job_t job = {.id = (char *)id, .kind = AAS_JOB_INFER, .model = (char *)o->model,
                     .inputs = &t, .n_inputs = 1, .priority = 0, .tenant = (char *)TENANT_STEADY};
    char why[512];
    size_t failed = 0;
    aas_err_t err = aas_client_submit(c, &job, why, sizeof(why));
    aas_tensor_clear(&t);
    if (err) {
        fprintf(stderr, "bench_tenants: submit %s: %s\n", id, why);
        return -1;
    }
    if (aas_client_flush(c, 120000 /* ms */, &failed, why, sizeof(why)) || failed) {
        fprintf(stderr, "bench_tenants: flush %s: %s (%zu failed)\n", id, why, failed);
        return -1;
    }
    return 0;
}

/* The flood: o->flood jobs of tenant flood, SUBMIT_BATCH per
 * aas_client_submit_many call (their id claims share Redis round trips),
 * then one flush. */
static int submit_flood(aas_client_t *c, const opts_t *o, long run, const float *x) {
    static aas_client_submission_t subs[SUBMIT_BATCH];
    char ids[SUBMIT_BATCH][128];
    aas_tensor_t t[SUBMIT_BATCH];
    aas_job_t jobs[SUBMIT_BATCH];
    int64_t shape[2] = {1, o->dim};
    char why[512];
    for (long i = 0; i < o->flood;) {
        long k = 0;
        int rc = 0;
        for (; k < SUBMIT_BATCH && i + k < o->flood; k++) {
            job_id(ids[k], sizeof(ids[k]), o, run, 'f', i + k);
            if (aas_tensor_set_f32(&t[k], "x", x, 2, shape)) {
                rc = -1;
                break;
            }
            jobs[k] = (aas_job_t){.id = ids[k], .kind = AAS_JOB_INFER,
                                  .model = (char *)o->model, .inputs = &t[k], .n_inputs = 1,
                                  .priority = 0, .tenant = (char *)TENANT_FLOOD};
            subs[k] = (aas_client_submission_t){.job = &jobs[k]};
        }
        if (!rc && aas_client_submit_many(c, subs, (size_t)k, why, sizeof(why))) {
            fprintf(stderr, "bench_tenants: flood submit: %s\n", why);
            rc = -1;
        }
        for (long m = 0; m < k; m++) aas_tensor_clear(&t[m]);
        if (rc) return rc;
        i += k;
    }
    size_t failed = 0;
    if (aas_client_flush(c, 120000 /* ms */, &failed, why, sizeof(why)) || failed) {
        fprintf(stderr, "bench_tenants: flood flush: %s (%zu failed)\n", why, failed);
        return -1;
    }
    return 0;
}

/* Wait for job id; its finish time (Redis clock); -1 if it did not
 * succeed or is recorded with another tenant. */
static int wait_job(aas_client_t *c, const char *id, const char *tenant,
                    int64_t *finished_ms) {
    aas_job_info_t info;
    int rc = bench_wait_job(c, "bench_tenants", id, &info);
    if (!rc && (!info.tenant || strcmp(info.tenant, tenant))) {
        fprintf(stderr, "bench_tenants: job %s recorded with tenant %s, not %s\n", id,
                info.tenant ? info.tenant : "(none)", tenant);
        rc = -1;
    }
    *finished_ms = info.finished_ms;
    aas_job_info_clear(&info);
    return rc;
}

/* The steady tenant, open loop: n jobs, job i submitted at start + i /
 * rate (never earlier).  sub_ms[i]: just before its submit call (client
 * clock).  *lag_ms: the latest a submit call started behind its schedule;
 * *end_ms: the schedule's end (client clock). */
static int steady_phase(aas_client_t *c, const opts_t *o, long run, char phase, size_t n,
                        const float *x, int64_t *sub_ms, int64_t *lag_ms, int64_t *end_ms) {
    char id[128];
    double period_ns = 1e9 / o->rate;
    int64_t t0 = mono_ns(), lag = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t due = t0 + (int64_t)((double)i * period_ns);
        sleep_until_ns(due);
        int64_t late = mono_ns() - due;
        if (late > lag) lag = late;
        job_id(id, sizeof(id), o, run, phase, (long)i);
        sub_ms[i] = aas_now_ms();
        if (submit_steady(c, o, id, x)) return -1;
    }
    sleep_until_ns(t0 + (int64_t)((double)n * period_ns));
    *end_ms = aas_now_ms();
    *lag_ms = lag / 1000000;
    return 0;
}

/* Each steady job's latency (finish - submit) into lat; its finish time
 * into fin. */
static int steady_collect(aas_client_t *c, const opts_t *o, long run, char phase, size_t n,
                          const int64_t *sub_ms, int64_t *lat, int64_t *fin) {
    char id[128];
    for (size_t i = 0; i < n; i++) {
        job_id(id, sizeof(id), o, run, phase, (long)i);
        if (wait_job(c, id, TENANT_STEADY, &fin[i])) return -1;
        lat[i] = fin[i] - sub_ms[i];
    }
    return 0;
}

static int parse_pids(opts_t *o, char *arg) {
    for (char *s = arg, *e; *s && o->n_pids < MAX_PIDS; s = *e ? e + 1 : e) {
        o->pids[o->n_pids++] = (pid_t)strtol(s, &e, 10);
        if (e == s || (*e && *e != ',')) return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    opts_t o = {.label = "tenants", .rate = 50, .seconds = 20, .flood = 20000, .warmup = 20};
    static const struct option lopts[] = {
        {"model", required_argument, NULL, 'm'},   {"dim", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'r'},    {"seconds", required_argument, NULL, 's'},
        {"flood", required_argument, NULL, 'f'},   {"warmup", required_argument, NULL, 'W'},
        {"pids", required_argument, NULL, 'w'},    {"label", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "X:h", lopts, NULL)) != -1) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case 'd': o.dim = atoi(optarg); break;
        case 'r': o.rate = atof(optarg); break;
        case 's': o.seconds = atol(optarg); break;
        case 'f': o.flood = atol(optarg); break;
        case 'W': o.warmup = atol(optarg); break;
        case 'l': o.label = optarg; break;
        case 'w':
            if (parse_pids(&o, optarg)) {
                fprintf(stderr, "bench_tenants: --pids wants a comma list of pids\n");
                return 2;
            }
            break;
        case 'X':
            if (o.nx == MAX_X) {
                fprintf(stderr, "bench_tenants: too many -X\n");
                return 2;
            }
            o.x[o.nx++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !o.model || o.dim < 1 || !(o.rate > 0 && o.rate <= 100000) ||
        o.seconds < 1 || o.flood < 1 || o.warmup < 0) {
        usage(stderr);
        return 2;
    }
    size_t n = (size_t)(o.rate * (double)o.seconds + 0.5);
    if (n < 1) {
        fprintf(stderr, "bench_tenants: --rate x --seconds is less than one job\n");
        return 2;
    }
    aas_conf_t *conf = NULL;
    aas_client_t *c = NULL;
    char why[512];
    if (aas_conf_new(aas_client_conf_defs, &conf)) return 1;
    for (int i = 0; i < o.nx; i++)
        if (aas_conf_set_arg(conf, o.x[i], why, sizeof(why))) {
            fprintf(stderr, "bench_tenants: -X %s: %s\n", o.x[i], why);
            aas_conf_destroy(conf);
            return 2;
        }
    if (aas_client_new(conf, &c, why, sizeof(why))) {
        fprintf(stderr, "bench_tenants: client: %s\n", why);
        aas_conf_destroy(conf);
        return 1;
    }
    float *x = calloc((size_t)o.dim, sizeof(float));
    int64_t *sub_a = calloc(n, sizeof(int64_t)), *lat_a = calloc(n, sizeof(int64_t));
    int64_t *sub_s = calloc(n, sizeof(int64_t)), *lat_s = calloc(n, sizeof(int64_t));
    int64_t *fin_s = calloc(n, sizeof(int64_t)), *lat_d = calloc(n, sizeof(int64_t));
    int64_t *fin_f = calloc((size_t)o.flood, sizeof(int64_t));
    double *left = calloc(n, sizeof(double));
    int64_t lag_a = 0, end_a = 0, lag_s = 0, end_s = 0, t_pub = 0, t_cont = 0, last = 0;
    long done_at_end = 0;
    size_t nd = 0; /* steady jobs submitted while the flood drained */
    double left_median = 0;
    lat_stats_t alone, under, during;
    int rc = -1;
    if (!x || !sub_a || !lat_a || !sub_s || !lat_s || !fin_s || !lat_d || !fin_f || !left) {
        fprintf(stderr, "bench_tenants: out of memory\n");
        goto out;
    }
    for (int k = 0; k < o.dim; k++) x[k] = (float)((k * 37) % 101) / 101.0f - 0.5f;
    long run = (long)getpid();
    char id[128];

    /* Warm-up: the model loaded (registry, primitives) on the workers. */
    for (long i = 0; i < o.warmup; i++) {
        int64_t f;
        job_id(id, sizeof(id), &o, run, 'w', i);
        if (submit_steady(c, &o, id, x) || wait_job(c, id, TENANT_STEADY, &f)) goto out;
    }

    /* Phase "alone". */
    if (steady_phase(c, &o, run, 'a', n, x, sub_a, &lag_a, &end_a) ||
        steady_collect(c, &o, run, 'a', n, sub_a, lat_a, fin_s))
        goto out;
    alone = lat_stats(lat_a, n);
    fprintf(stderr, "bench_tenants: %s alone: %zu jobs at %g/s, p50 %lld p99 %lld max %lld ms, "
            "submitter late by at most %lld ms\n", o.label, n, o.rate, alone.p50, alone.p99,
            alone.max, (long long)lag_a);

    /* Phase "flood". */
    signal_all(&o, SIGSTOP);
    t_pub = aas_now_ms();
    rc = submit_flood(c, &o, run, x);
    t_cont = aas_now_ms();
    signal_all(&o, SIGCONT);
    if (rc) goto out;
    rc = -1;
    if (steady_phase(c, &o, run, 's', n, x, sub_s, &lag_s, &end_s) ||
        steady_collect(c, &o, run, 's', n, sub_s, lat_s, fin_s))
        goto out;
    for (long j = 0; j < o.flood; j++) {
        job_id(id, sizeof(id), &o, run, 'f', j);
        if (wait_job(c, id, TENANT_FLOOD, &fin_f[j])) goto out;
        if (fin_f[j] > last) last = fin_f[j];
        done_at_end += fin_f[j] <= end_s;
    }
    for (size_t i = 0; i < n; i++) {
        if (sub_s[i] >= last) continue;
        long after = 0; /* flood jobs finished after this steady job */
        for (long j = 0; j < o.flood; j++) after += fin_f[j] > fin_s[i];
        left[nd] = (double)after / (double)o.flood;
        if (nd < 50)
            fprintf(stderr, "bench_tenants: %s steady job %zu: submitted %lld ms after SIGCONT, "
                    "latency %lld ms, flood left at its finish %.0f %%\n", o.label, i,
                    (long long)(sub_s[i] - t_cont), (long long)lat_s[i], 100.0 * left[nd]);
        lat_d[nd++] = lat_s[i];
    }
    if (nd > 0) {
        qsort(left, nd, sizeof(*left), cmp_dbl);
        left_median = left[nd / 2];
    }
    under = lat_stats(lat_s, n);
    during = lat_stats(lat_d, nd);
    double drain = last > t_cont ? (double)o.flood * 1000.0 / (double)(last - t_cont) : 0;
    fprintf(stderr, "bench_tenants: %s flood: %ld jobs published in %lld ms, drained in %lld ms "
            "(%.0f jobs/s); steady p50 %lld p99 %lld max %lld ms, %zu of its jobs during the "
            "drain (max %lld ms), submitter late by at most %lld ms\n",
            o.label, o.flood, (long long)(t_cont - t_pub), (long long)(last - t_cont), drain,
            under.p50, under.p99, under.max, nd, during.max, (long long)lag_s);
    printf("RESULT bench=tenants label=%s rate=%g seconds=%ld flood=%ld steady_jobs=%zu "
           "alone_p50_ms=%lld alone_p99_ms=%lld alone_max_ms=%lld "
           "flood_p50_ms=%lld flood_p99_ms=%lld flood_max_ms=%lld p99_ratio=%.2f "
           "during_n=%zu during_p50_ms=%lld during_p99_ms=%lld during_max_ms=%lld "
           "during_flood_left_median=%.3f drain_jobs_s=%.0f drain_ms=%lld "
           "flood_done_at_end=%ld publish_ms=%lld steady_lag_max_ms=%lld\n",
           o.label, o.rate, o.seconds, o.flood, n, alone.p50, alone.p99, alone.max, under.p50,
           under.p99, under.max, alone.p99 > 0 ? (double)under.p99 / (double)alone.p99 : 0.0,
           nd, during.p50, during.p99, during.max, left_median, drain, (long long)(last - t_cont),
           done_at_end, (long long)(t_cont - t_pub),
           (long long)(lag_a > lag_s ? lag_a : lag_s));
    rc = 0;
out:
    signal_all(&o, SIGCONT); /* never leave a worker stopped */
    free(x);
    free(sub_a);
    free(lat_a);
    free(sub_s);
    free(lat_s);
    free(fin_s);
    free(lat_d);
    free(fin_f);
    free(left);
    aas_client_destroy(c);
    aas_conf_destroy(conf);
    return rc ? 1 : 0;
}
