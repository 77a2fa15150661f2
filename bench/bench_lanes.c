/*
 * bench_lanes.c - priority lanes under a backlog (issue 16; docs/sharing.md,
 * "Priority lanes").  bench/run_lanes_bench.sh runs it against running
 * workers, with lanes on and off.
 *
 * Each round: stop the workers (SIGSTOP, so the whole backlog is queued
 * before any is served), publish --backlog normal jobs (priority 0), let
 * the workers go (SIGCONT), then publish --probes jobs of priority
 * --priority one at a time, each --gap-ms (default 0) after the one before is
 * done.  A probe's latency is from its submission (client clock) to its
 * terminal write (Redis's clock; same host), as recorded in its status.
 * After the round, every backlog job's finish time gives the drain rate
 * (backlog / (last finish - SIGCONT)) and, per probe, how many backlog jobs
 * were still unfinished when it finished.
 *
 * A probe counts as a trial "behind the backlog" when at least half of
 * the backlog was still unfinished at its submission: with lanes off only
 * about the first probe of a round is (it waits for the whole backlog, the
 * later ones find it gone).  Prints one RESULT line per run: trials behind
 * the backlog and their latency p50/p99/max (ms), all probes' p50/p99, the
 * median share of the backlog still queued at a trial's finish, the drain
 * rate (jobs/s, median over rounds).  Exit 1 if any job failed.
 * It does not start anything: brokers, Redis, workers and the model are
 * the caller's (the client is configured with -X key=value, as aas-producer).
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

typedef struct {
    const char *x[MAX_X];
    int nx;
    const char *model, *label;
    int dim;
    long backlog, rounds, probes, gap_ms, priority;
    pid_t pids[MAX_PIDS];
    int n_pids;
} opts_t;

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: bench_lanes --model NAME --dim N [options] [-X key=value ...]\n"
            "  --model NAME       registered model (1 x dim float input)\n"
            "  --dim N            its input width\n"
            "  --backlog N        normal jobs queued per round      (default 10000)\n"
            "  --rounds N         rounds                            (default 10)\n"
            "  --probes N         priority jobs per round           (default 10)\n"
            "  --gap-ms N         before each probe                 (default 0)\n"
            "  --priority N       the probes' priority              (default 10)\n"
            "  --pids LIST        worker pids to pause while a backlog is published\n"
            "  --label TEXT       RESULT label                      (default lanes)\n"
            "  -X key=value       client configuration (redis.port, kafka.*, topic.*)\n");
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void signal_all(const opts_t *o, int sig) {
    for (int i = 0; i < o->n_pids; i++)
        if (kill(o->pids[i], sig)) perror("bench_lanes: kill");
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int submit(aas_client_t *c, const char *id, const char *model, const float *x,
                  int dim, int32_t priority) {
    aas_tensor_t t;
    int64_t shape[2] = {1, dim};
    if (aas_tensor_set_f32(&t, "x", x, 2, shape)) return -1;
    aas_job_t job = {.id = (char *)id, .kind = AAS_JOB_INFER, .model = (char *)model,
                     .inputs = &t, .n_inputs = 1, .priority = priority};
    char why[512];
    aas_err_t err = aas_client_submit(c, &job, why, sizeof(why));
    aas_tensor_clear(&t);
    if (err) fprintf(stderr, "bench_lanes: submit %s: %s\n", id, why);
    return err ? -1 : 0;
}

/* Wait for job id; its finish time (Redis clock); -1 if it did not
 * succeed. */
static int wait_job(aas_client_t *c, const char *id, int64_t *finished_ms) {
    aas_job_info_t info;
    int rc = bench_wait_job(c, "bench_lanes", id, &info);
    *finished_ms = info.finished_ms;
    aas_job_info_clear(&info);
    return rc;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    opts_t o = {.label = "lanes", .backlog = 10000, .rounds = 10, .probes = 10,
                .gap_ms = 0, .priority = 10};
    static const struct option lopts[] = {
        {"model", required_argument, NULL, 'm'},   {"dim", required_argument, NULL, 'd'},
        {"backlog", required_argument, NULL, 'n'}, {"rounds", required_argument, NULL, 'r'},
        {"probes", required_argument, NULL, 'p'},  {"gap-ms", required_argument, NULL, 'g'},
        {"priority", required_argument, NULL, 'P'}, {"pids", required_argument, NULL, 'w'},
        {"label", required_argument, NULL, 'l'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "X:h", lopts, NULL)) != -1) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case 'd': o.dim = atoi(optarg); break;
        case 'n': o.backlog = atol(optarg); break;
        case 'r': o.rounds = atol(optarg); break;
        case 'p': o.probes = atol(optarg); break;
        case 'g': o.gap_ms = atol(optarg); break;
        case 'P': o.priority = atol(optarg); break;
        case 'l': o.label = optarg; break;
        case 'w':
            for (char *s = optarg, *e; *s && o.n_pids < MAX_PIDS; s = *e ? e + 1 : e) {
                o.pids[o.n_pids++] = (pid_t)strtol(s, &e, 10);
                if (e == s) {
                    fprintf(stderr, "bench_lanes: --pids wants a comma list of pids\n");
                    return 2;
                }
            }
            break;
        case 'X':
            if (o.nx == MAX_X) {
                fprintf(stderr, "bench_lanes: too many -X\n");
                return 2;
            }
            o.x[o.nx++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !o.model || o.dim < 1 || o.backlog < 1 || o.rounds < 1 ||
        o.probes < 1 || o.gap_ms < 0) {
        usage(stderr);
        return 2;
    }
    aas_conf_t *conf = NULL;
    aas_client_t *c = NULL;
    char why[512];
    if (aas_conf_new(aas_client_conf_defs, &conf)) return 1;
    for (int i = 0; i < o.nx; i++)
        if (aas_conf_set_arg(conf, o.x[i], why, sizeof(why))) {
            fprintf(stderr, "bench_lanes: -X %s: %s\n", o.x[i], why);
            return 2;
        }
    if (aas_client_new(conf, &c, why, sizeof(why))) {
        fprintf(stderr, "bench_lanes: client: %s\n", why);
        return 1;
    }
    float *x = calloc((size_t)o.dim, sizeof(float));
    int64_t *fin = calloc((size_t)o.backlog, sizeof(int64_t));
    size_t n_lat = (size_t)(o.rounds * o.probes);
    int64_t *lat = calloc(n_lat, sizeof(int64_t));
    double *queued = calloc(n_lat, sizeof(double));
    int64_t *lat_b = calloc(n_lat, sizeof(int64_t)); /* trials behind the backlog */
    size_t nb = 0;
    double *rate = calloc((size_t)o.rounds, sizeof(double));
    if (!x || !fin || !lat || !queued || !lat_b || !rate) return 1;
    for (int k = 0; k < o.dim; k++) x[k] = (float)((k * 37) % 101) / 101.0f - 0.5f;
    char id[128];
    int rc = 0;
    size_t np = 0;
    long run = (long)getpid();
    for (long r = 0; r < o.rounds && rc == 0; r++) {
        signal_all(&o, SIGSTOP);
        int64_t t_pub = aas_now_ms();
        for (long j = 0; j < o.backlog && rc == 0; j++) {
            snprintf(id, sizeof(id), "%s-%ld-r%ld-b%ld", o.label, run, r, j);
            rc = submit(c, id, o.model, x, o.dim, 0);
        }
        size_t failed = 0;
        if (rc == 0 && (aas_client_flush(c, 120000, &failed, why, sizeof(why)) || failed)) {
            fprintf(stderr, "bench_lanes: flush: %s (%zu failed)\n", why, failed);
            rc = -1;
        }
        int64_t t_cont = aas_now_ms();
        signal_all(&o, SIGCONT);
        if (rc) break;
        int64_t probe_fin[64], probe_sub[64];
        long nprobe = o.probes < 64 ? o.probes : 64;
        for (long p = 0; p < nprobe && rc == 0; p++) {
            sleep_ms(o.gap_ms);
            snprintf(id, sizeof(id), "%s-%ld-r%ld-p%ld", o.label, run, r, p);
            int64_t f_ms = 0;
            /* From the submit call: the status's own submit_ms is written
             * on delivery, and a fast worker can finish the job first. */
            int64_t s_ms = aas_now_ms();
            if ((rc = submit(c, id, o.model, x, o.dim, (int32_t)o.priority))) break;
            if (aas_client_flush(c, 120000, &failed, why, sizeof(why)) || failed) {
                fprintf(stderr, "bench_lanes: flush: %s\n", why);
                rc = -1;
                break;
            }
            if ((rc = wait_job(c, id, &f_ms))) break;
            lat[np + (size_t)p] = f_ms - s_ms;
            probe_fin[p] = f_ms;
            probe_sub[p] = s_ms;
        }
        int64_t last = 0;
        for (long j = 0; j < o.backlog && rc == 0; j++) {
            snprintf(id, sizeof(id), "%s-%ld-r%ld-b%ld", o.label, run, r, j);
            rc = wait_job(c, id, &fin[j]);
            if (fin[j] > last) last = fin[j];
        }
        if (rc) break;
        size_t nb0 = nb;
        for (long p = 0; p < nprobe; p++) {
            long after = 0, before_sub = 0;
            for (long j = 0; j < o.backlog; j++) {
                after += fin[j] > probe_fin[p];
                before_sub += fin[j] > probe_sub[p];
            }
            if (2 * before_sub < o.backlog) continue;
            queued[nb] = (double)after / (double)o.backlog;
            lat_b[nb++] = lat[np + (size_t)p];
        }
        np += (size_t)nprobe;
        rate[r] = last > t_cont ? (double)o.backlog * 1000.0 / (double)(last - t_cont) : 0;
        fprintf(stderr, "bench_lanes: %s round %ld: published in %lld ms, drain %.0f jobs/s, "
                "probes %lld..%lld ms, %zu behind the backlog\n",
                o.label, r, (long long)(t_cont - t_pub), rate[r],
                (long long)lat[np - (size_t)nprobe], (long long)lat[np - 1], nb - nb0);
    }
    signal_all(&o, SIGCONT); /* never leave a worker stopped */
    if (rc == 0 && np > 0 && nb > 0) {
        qsort(lat, np, sizeof(*lat), cmp_i64);
        qsort(lat_b, nb, sizeof(*lat_b), cmp_i64);
        qsort(queued, nb, sizeof(*queued), cmp_dbl);
        qsort(rate, (size_t)o.rounds, sizeof(*rate), cmp_dbl);
        /* p99 of n values: the ceil(0.99 n)-th smallest (of 100, the 99th) */
        size_t i99 = (size_t)((double)nb * 0.99 + 0.999) - 1, a99 = (size_t)((double)np * 0.99 + 0.999) - 1;
        printf("RESULT bench=lanes label=%s backlog=%ld rounds=%ld trials=%zu "
               "latency_p50_ms=%lld latency_p99_ms=%lld latency_max_ms=%lld "
               "queued_at_finish_median=%.3f drain_jobs_s=%.0f probes=%zu "
               "all_p50_ms=%lld all_p99_ms=%lld\n",
               o.label, o.backlog, o.rounds, nb, (long long)lat_b[nb / 2],
               (long long)lat_b[i99], (long long)lat_b[nb - 1], queued[nb / 2],
               rate[o.rounds / 2], np, (long long)lat[np / 2], (long long)lat[a99]);
    }
    free(x);
    free(fin);
    free(lat);
    free(queued);
    free(lat_b);
    free(rate);
    aas_client_destroy(c);
    aas_conf_destroy(conf);
    return rc ? 1 : 0;
}
