/*
 * aas-worker - serve inference jobs from Kafka, results to Redis.
 * Option parsing and signals only; the work is in worker.c.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "cli.h"
#include "conf.h"
#include "log.h"
#include "worker.h"

static volatile sig_atomic_t stop = 0;
/* Posted by the signal handler (sem_post is async-signal-safe). */
static sem_t stop_sem;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
    sem_post(&stop_sem);
}

/* The shutdown watchdog: a stop must end the process within
 * worker.shutdown.timeout.s even if a library call blocks for good (a
 * consumer close or destroy against a broker that is gone).  Exiting then
 * loses nothing: offsets are stored only after outcomes, so what this
 * worker had not finished is redelivered. */
static void *aas_worker_watchdog(void *arg) {
    long long timeout_s = *(const long long *)arg;
    while (sem_wait(&stop_sem) && errno == EINTR) {
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)timeout_s;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    AAS_LOG(AAS_LOG_ERROR, "worker",
            "shutdown did not finish within worker.shutdown.timeout.s=%lld; exiting without "
            "it (jobs with no stored offset are redelivered)",
            timeout_s);
    _exit(3);
    return NULL;
}

/* libgomp reads OMP_WAIT_POLICY once, when it is loaded, so the policy of
 * worker.omp.wait.policy is put in place by executing this program again
 * with it in the environment (before any thread or connection exists).
 * The user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.  Returns
 * only if no re-execution is needed or it failed (then spinning stays). */
static int aas_worker_omp_policy(const aas_conf_t *conf, char **argv) {
    const char *want = aas_conf_get(conf, "worker.omp.wait.policy");
    if (!want || (strcmp(want, "passive") && strcmp(want, "active"))) {
        fprintf(stderr, "aas-worker: worker.omp.wait.policy must be passive or active, not '%s'\n",
                want ? want : "");
        return -1;
    }
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return 0;
    if (!strcmp(want, "active")) return 0; /* libgomp's default already */
    if (setenv("OMP_WAIT_POLICY", want, 1)) return 0;
    /* The program's own path first: executed as /proc/self/exe, the
     * process would be named "exe" in ps, top and its threads' names. */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        execv(self, argv);
    }
    execv("/proc/self/exe", argv); /* e.g. the file was replaced meanwhile */
    AAS_LOG(AAS_LOG_WARN, "worker",
            "cannot re-execute with OMP_WAIT_POLICY=%s (%s): idle OpenMP threads spin", want,
            strerror(errno));
    return 0;
}

static void usage(FILE *fp, const aas_conf_t *conf) {
    fprintf(fp,
            "Usage: aas-worker [options]\n"
            "Consume aas jobs from Kafka, run the models, write results to "
            "Redis.\n\n"
            "Options:\n"
            "  -c, --config FILE            read key = value settings from FILE\n"
            "  -X, --set KEY=VALUE          set one key (repeatable; not for "
            "secrets)\n"
            "  -b, --brokers LIST           same as -X kafka.bootstrap.servers=LIST\n"
            "  -h, --help                   this text\n"
            "      --version                program and library versions\n"
            "      --config-reference       the keys below as a Markdown table\n\n"
            "Keys (environment: AAS_ + key upper-cased, '.' -> '_'; any\n"
            "kafka.<property> goes to librdkafka):\n");
    if (conf) aas_conf_print_help(conf, fp);
    fprintf(fp, "\nStops cleanly on SIGTERM or SIGINT: the current job finishes,\n"
                "its offset is committed, and the worker leaves the group, within\n"
                "worker.shutdown.timeout.s (else it exits with status 3).\n");
}

int main(int argc, char **argv) {
    /* oneDNN marks every primitive execution for Intel's profilers (ITT)
     * unless told not to: a once-check and a trace write per layer, 5-10 %
     * of the loop's CPU with a small MLP (docs/performance.md, "Cost per
     * job").  Read at oneDNN's first use; a user's own setting wins. */
    setenv("ONEDNN_ITT_TASK_LEVEL", "0", 0);
    aas_conf_t *conf = NULL;
    /* The client's keys too: a data-parallel training job's coordinator
     * publishes its shard tasks with the C client (trainer_dp.h). */
    if (aas_conf_new_with(aas_worker_conf_defs, aas_client_conf_defs, &conf)) {
        fprintf(stderr, "aas-worker: out of memory\n");
        return 1;
    }
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 'X'},
        {"brokers", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"config-reference", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0}};
    const char *config_file = NULL;
    char **xargs = calloc((size_t)argc + 1, sizeof(*xargs));
    char *brokers_arg = NULL;
    size_t nx = 0;
    int c, rc = 0;
    while (xargs && (c = getopt_long(argc, argv, "c:X:b:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_file = optarg; break;
        case 'X': xargs[nx++] = optarg; break;
        case 'b':
            free(brokers_arg);
            brokers_arg = malloc(strlen(optarg) + 32);
            if (brokers_arg) {
                sprintf(brokers_arg, "kafka.bootstrap.servers=%s", optarg);
                xargs[nx++] = brokers_arg;
            }
            break;
        case 'h': usage(stdout, conf); goto out;
        case 'V': aas_cli_print_version(stdout, "aas-worker"); goto out;
        case 'R': aas_conf_print_markdown(conf, stdout); goto out;
        default: usage(stderr, NULL); rc = 2; goto out;
        }
    }
    if (!xargs) {
        rc = 1;
        goto out;
    }
    if (optind < argc) {
        fprintf(stderr, "aas-worker: unexpected argument '%s' (see --help)\n",
                argv[optind]);
        rc = 2;
        goto out;
    }
    char errstr[512];
    if (aas_cli_conf_load(conf, config_file, xargs, nx, errstr, sizeof(errstr))) {
        fprintf(stderr, "aas-worker: %s\n", errstr);
        rc = 2;
        goto out;
    }
    if (aas_worker_omp_policy(conf, argv)) {
        rc = 2;
        goto out;
    }
    static long long shutdown_timeout_s;
    shutdown_timeout_s = aas_conf_get_int(conf, "worker.shutdown.timeout.s");
    pthread_t watchdog;
    if (sem_init(&stop_sem, 0, 0) ||
        pthread_create(&watchdog, NULL, aas_worker_watchdog, &shutdown_timeout_s) ||
        pthread_detach(watchdog)) {
        fprintf(stderr, "aas-worker: cannot start the shutdown watchdog\n");
        rc = 1;
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* hiredis writes with write(): a Redis that dies mid-write must give
     * EPIPE, not kill the worker. */
    signal(SIGPIPE, SIG_IGN);

    aas_worker_t *w = NULL;
    aas_err_t err = aas_worker_new(conf, &w, errstr, sizeof(errstr));
    if (err) {
        AAS_LOG(AAS_LOG_ERROR, "worker", "start failed: %s", errstr);
        rc = 1;
        goto out;
    }
    aas_worker_run(w, &stop);
    aas_worker_destroy(w);
    AAS_LOG(AAS_LOG_INFO, "worker", "stopped");
out:
    free(brokers_arg);
    free(xargs);
    aas_conf_destroy(conf);
    return rc;
}
