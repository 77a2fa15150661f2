/*
 * test_scheduler.c - aas-scheduler scales a real fleet: on Apache Kafka
 * with 8 partitions, a backlog of 20,000 jobs waiting when it starts makes
 * the local actuator scale from 1 worker to several, the backlog drains,
 * idleness scales back to the minimum, and every job SUCCEEDED exactly
 * once; with 2 partitions and scheduler.grow.partitions the topic grows to
 * 4 across the same backlog, again losing and duplicating nothing.  `status` reads
 * the age of the oldest queued job from Kafka; a worker slowed down
 * (SIGSTOP most of the time) while its partitions fall behind is restarted
 * by the scheduler, once, and no job is lost or answered twice.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness_fleet.h"
#include "heartbeat.h"

#define N_JOBS 20000

static int live_workers(aas_fleet_t *f) {
    char **hb = NULL, why[256];
    size_t n = 0;
    if (aas_store_heartbeats(aas_client_store(f->client), &hb, &n, why, sizeof(why)))
        return -1;
    aas_store_list_free(hb, n);
    return (int)n;
}

static int wait_live(aas_fleet_t *f, int cmp_ge, int target, int timeout_s) {
    for (int i = 0; i < timeout_s * 4; i++) {
        int n = live_workers(f);
        if (n >= 0 && (cmp_ge ? n >= target : n <= target)) return n;
        usleep(250000);
    }
    return -1;
}

/* Workers the scheduler starts inherit these. */
static void worker_env(aas_fleet_t *f) {
    char port[16];
    snprintf(port, sizeof(port), "%d", f->redis.port);
    setenv("AAS_REDIS_PORT", port, 1);
    setenv("AAS_KAFKA_BOOTSTRAP_SERVERS", f->broker.bootstrap, 1);
    setenv("AAS_WORKER_HEARTBEAT_MS", "500", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
}

/* Start `aas-scheduler run` with the local actuator on f; extra is a
 * NULL-terminated list of "-X", "k=v" pairs; its log goes to log. */
static void start_scheduler(aas_fleet_t *f, aas_test_proc_t *sched, char *log,
                            size_t log_size, const char *const *extra) {
    static char bin[512], wbin[600], logdir[600];
    snprintf(bin, sizeof(bin), "%s/scheduler/aas-scheduler", AAS_BIN_DIR);
    snprintf(wbin, sizeof(wbin), "scheduler.worker.bin=%s/worker/aas-worker", AAS_BIN_DIR);
    snprintf(logdir, sizeof(logdir), "scheduler.worker.logdir=%s", f->dir);
    snprintf(log, log_size, "%s/scheduler.log", f->dir);
    char *argv[64] = {bin, "-X", wbin, "-X", logdir};
    int n = 5;
    for (int k = 0; extra[k] && n < 62; k++) argv[n++] = (char *)extra[k];
    argv[n++] = "run";
    argv[n] = NULL;
    assert_int_equal(aas_test_proc_start(sched, bin, argv, log), 0);
}

/* A TCP port free right now on 127.0.0.1 (the kernel's pick). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* GET /metrics from 127.0.0.1:port into buf (NUL-terminated); 0 on a 200. */
static int get_metrics(int port, char *buf, size_t size) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    size_t n = 0;
    ssize_t r = write(fd, req, sizeof(req) - 1);
    while (r > 0 && n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    return strncmp(buf, "HTTP/1.0 200", 12) && strncmp(buf, "HTTP/1.1 200", 12) ? -1 : 0;
}

/* Start the scheduler over a fresh fleet whose topics have `partitions`
 * partitions; `grow` lets it add partitions. */
static void run_burst(int partitions, int grow) {
    char parts[16];
    snprintf(parts, sizeof(parts), "%d", partitions);
    setenv("AAS_TEST_PARTITIONS", parts, 1);
    aas_fleet_t *f = NULL;
    assert_int_equal(aas_fleet_start(&f, 0, NULL), 0);
    worker_env(f);
    /* One job per forward pass: a batching worker on this small model
     * keeps up with the whole burst as it is published (nothing waits, so
     * rightly nothing scales); without batching a backlog builds. */
    setenv("AAS_BATCH_MAX_ROWS", "1", 1);
    /* and one job a window, each written alone: the slow worker of before
     * worker.window.jobs, so that a backlog builds. */
    setenv("AAS_WORKER_WINDOW_JOBS", "1", 1);
    setenv("AAS_BATCH_RECORD_US", "0", 1);
    int metrics_port = free_port();
    assert_true(metrics_port > 0);
    char metrics_arg[32];
    snprintf(metrics_arg, sizeof(metrics_arg), "metrics.port=%d", metrics_port);
    const char *extra[] = {"-X", "scheduler.min=1",
                           "-X", "scheduler.max=4", "-X", "scheduler.interval.ms=1000",
                           "-X", "scheduler.down.window.s=10", "-X", "scheduler.cooldown.s=5",
                           "-X", "scheduler.drain.s=5",
                           "-X", "scheduler.lag.threshold=500", "-X",
                           grow ? "scheduler.grow.partitions=true"
                                : "scheduler.grow.partitions=false",
                           "-X", "log.level=debug", "-X", metrics_arg, NULL};
    /* The burst is in Kafka before the scheduler and its first worker
     * start: a backlog whatever the machine's speed.  Published to a
     * running worker, it could be drained as fast as one client thread
     * publishes it (its id claim and QUEUED write are two Redis round
     * trips a job), and then rightly nothing scales. */
    static float x[64];
    for (int k = 0; k < 64; k++) x[k] = aas_fleet_frand();
    char id[32], why[512];
    int64_t t0 = aas_mono_us();
    for (int j = 0; j < N_JOBS; j++) {
        snprintf(id, sizeof(id), "sched-%d", j);
        assert_int_equal(aas_fleet_submit(f, id, AAS_FLEET_MODEL, x, 1, 64), 0);
    }
    assert_int_equal(aas_client_flush(f->client, 120000, NULL, why, sizeof(why)),
                     AAS_ERR_OK);
    fprintf(stderr, "scheduler: %d jobs published in %.1f s\n", N_JOBS,
            (double)(aas_mono_us() - t0) / 1e6);
    aas_test_proc_t sched;
    char log[600];
    t0 = aas_mono_us();
    start_scheduler(f, &sched, log, sizeof(log), extra);
    assert_true(wait_live(f, 1, 1, 60) >= 1);
    int peak = wait_live(f, 1, 2, 60);
    double up_s = (double)(aas_mono_us() - t0) / 1e6;
    fprintf(stderr, "scheduler: %d workers live %.1f s after it started\n", peak, up_s);
    assert_true(peak >= 2);
    for (int j = 0; j < N_JOBS; j++) {
        snprintf(id, sizeof(id), "sched-%d", j);
        assert_int_equal(aas_fleet_check(f, id, x, 1, 300000), 0);
    }
    double drain_s = (double)(aas_mono_us() - t0) / 1e6;
    fprintf(stderr, "scheduler: %d jobs drained %.1f s after it started\n", N_JOBS,
            drain_s);
    /* The same story in Prometheus form. */
    static char page[65536];
    assert_int_equal(get_metrics(metrics_port, page, sizeof(page)), 0);
    const char *up = strstr(page, "aas_scheduler_decisions_total{direction=\"up\"} ");
    assert_non_null(up);
    assert_true(atof(up + strlen("aas_scheduler_decisions_total{direction=\"up\"} ")) >= 1);
    char series[96];
    snprintf(series, sizeof(series), "aas_scheduler_lag{partition=\"%d\",", partitions - 1);
    assert_non_null(strstr(page, series));
    assert_non_null(strstr(page, "aas_scheduler_workers{state=\"desired\"}"));
    assert_non_null(strstr(page, "aas_scheduler_oldest_queued_seconds "));
    assert_non_null(strstr(page, "aas_scheduler_service_rate "));
    int low = wait_live(f, 0, 1, 120);
    fprintf(stderr, "scheduler: back to %d worker(s) %.1f s after it started\n", low,
            (double)(aas_mono_us() - t0) / 1e6);
    assert_int_equal(low, 1);
    /* Scaled up by a decision (from 0 or 1: the backlog may be seen
     * before the first worker counts as live). */
    assert_true(aas_test_log_contains(log, "decision from=0 to=") ||
                aas_test_log_contains(log, "decision from=1 to="));
    if (grow) {
        /* The topic grew from its partitions, as far as the measured load
         * asked: to 4 (scheduler.max) at once or a step at a time on an
         * idle machine; on a busy one the burst is published more slowly,
         * 3 workers kept up, and 2->3 was all it needed (seen in a full
         * ctest run beside another test suite). */
        int grown = 0;
        for (int to = partitions + 1; to <= 4; to++) {
            char want[96];
            snprintf(want, sizeof(want), "grow topic=aas.jobs.infer partitions=%d->%d done",
                     partitions, to);
            if (aas_test_log_contains(log, want)) grown = to;
        }
        fprintf(stderr, "scheduler: grew the topic from %d partitions to %d first; %s\n",
                partitions, grown,
                aas_test_log_contains(log, "->4 done") ? "reached 4" : "4 not needed");
        assert_true(grown > partitions);
    }
    /* The scheduler stops the workers it started, and exits 0. */
    assert_int_equal(aas_test_proc_stop(&sched, 60000), 0);
    assert_int_equal(aas_fleet_stop(f), 0);
    unsetenv("AAS_BATCH_MAX_ROWS");
    unsetenv("AAS_WORKER_WINDOW_JOBS");
    unsetenv("AAS_BATCH_RECORD_US");
}

static void burst_scales_up_drains_and_scales_down_exactly_once(void **state) {
    run_burst(8, 0);
}

/* More workers needed than partitions: the scheduler grows the topic with
 * CreatePartitions, the group rebalances onto the new partitions, and no
 * job is lost or answered twice across it. */
static void partitions_grow_when_workers_would_exceed_them(void **state) {
    run_burst(2, 1);
}

/* The topic_total line of `aas-scheduler status --json` for topic.infer,
 * into line (empty if none).  Returns status's exit code. */
static int status_total(aas_fleet_t *f, char *line, size_t size) {
    char cmd[1024], buf[4096];
    snprintf(cmd, sizeof(cmd),
             "%s/scheduler/aas-scheduler -b %s -X redis.port=%d -X log.level=error "
             "status --json --sample-ms 0",
             AAS_BIN_DIR, f->broker.bootstrap, f->redis.port);
    FILE *fp = popen(cmd, "r");
    assert_non_null(fp);
    line[0] = '\0';
    int lagging = 0, aged = 0;
    while (fgets(buf, sizeof(buf), fp)) {
        if (strstr(buf, "\"topic_total\":\"aas.jobs.infer\""))
            snprintf(line, size, "%s", buf);
        /* Every partition with lag shows an age, never null. */
        if (strstr(buf, "\"topic\":\"aas.jobs.infer\"") && !strstr(buf, "\"lag\":0}")) {
            lagging++;
            aged += strstr(buf, "\"oldest_age_s\":null") == NULL;
        }
    }
    int rc = pclose(fp);
    if (lagging != aged) fprintf(stderr, "status: %d lagging partitions, %d aged\n", lagging, aged);
    return rc == 0 && lagging == aged ? 0 : 1;
}

static double json_number_after(const char *line, const char *key) {
    const char *p = strstr(line, key);
    if (!p || !strncmp(p + strlen(key), "null", 4)) return -1;
    return strtod(p + strlen(key), NULL);
}

/* Jobs wait with no worker: status reports their age from the message
 * timestamps in Kafka (every lagging partition, and overall); once a
 * worker drained them, nothing is queued and the age is 0. */
static void status_reads_the_oldest_queued_job_from_kafka(void **state) {
    (void)state;
    setenv("AAS_TEST_PARTITIONS", "8", 1);
    aas_fleet_t *f = NULL;
    assert_int_equal(aas_fleet_start(&f, 0, NULL), 0);
    static float x[64];
    for (int k = 0; k < 64; k++) x[k] = aas_fleet_frand();
    char id[32], why[512], line[4096];
    int64_t t0 = aas_mono_us();
    for (int j = 0; j < 200; j++) {
        snprintf(id, sizeof(id), "age-%d", j);
        assert_int_equal(aas_fleet_submit(f, id, AAS_FLEET_MODEL, x, 1, 64), 0);
    }
    assert_int_equal(aas_client_flush(f->client, 60000, NULL, why, sizeof(why)), AAS_ERR_OK);
    sleep(3);
    assert_int_equal(status_total(f, line, sizeof(line)), 0);
    double waited = (double)(aas_mono_us() - t0) / 1e6;
    double age = json_number_after(line, "\"oldest_age_s\":");
    fprintf(stderr, "status: oldest queued job %.2f s old after %.2f s: %s", age, waited, line);
    /* The first job was sent after t0 and is read by status now: its age
     * lies within what the test waited (plus a clock tick of slack). */
    assert_true(age >= 2.5 && age <= waited + 0.5);
    assert_non_null(strstr(line, "\"lag\":200,"));
    assert_non_null(strstr(line, "\"oldest_is_lower_bound\":false"));

    f->n_workers = 1;
    assert_int_equal(aas_fleet_start_worker(f, 0), 0);
    for (int j = 0; j < 200; j++) {
        snprintf(id, sizeof(id), "age-%d", j);
        assert_int_equal(aas_fleet_check(f, id, x, 1, 120000), 0);
    }
    int drained = 0;
    for (int i = 0; i < 60 && !drained; i++) { /* offsets are committed each second */
        drained = status_total(f, line, sizeof(line)) == 0 && strstr(line, "\"lag\":0,") &&
                  strstr(line, "\"oldest_age_s\":0.000");
        if (!drained) usleep(500000);
    }
    assert_true(drained);
    assert_int_equal(aas_fleet_stop(f), 0);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Pid and id of the live worker holding the most partitions of the infer
 * topic (the largest share to fall behind), when want_live workers are
 * live, each holds some partition (of either job topic: the assignor
 * balances counts over both, so a worker may hold only training ones)
 * and every one of the infer topic's 8 partitions is held; 0 otherwise.
 * sig gets who holds what ("id=partitions;" sorted by id), so that the
 * caller can wait until it stops changing. */
static pid_t pick_worker(aas_fleet_t *f, int want_live, char *id, size_t id_size, char *sig,
                         size_t sig_size) {
    char **hb = NULL, why[256];
    size_t n = 0;
    sig[0] = '\0';
    if (aas_store_heartbeats(aas_client_store(f->client), &hb, &n, why, sizeof(why)))
        return 0;
    pid_t pid = 0;
    size_t held = 0, most = 0, holding = 0;
    char *rows[16];
    size_t n_rows = 0;
    for (size_t i = 0; i < n; i++) {
        aas_heartbeat_t b;
        int32_t parts[8];
        if (aas_heartbeat_parse(hb[i], &b, NULL, 0)) continue;
        size_t mine = aas_heartbeat_partitions(&b, "aas.jobs.infer", parts, 8);
        held += mine;
        holding += b.partitions[0] != '\0';
        if (mine > most) {
            most = mine;
            pid = (pid_t)b.pid;
            snprintf(id, id_size, "%.*s", (int)(id_size - 1), b.id);
        }
        if (n_rows < 16 && (rows[n_rows] = malloc(strlen(b.id) + strlen(b.partitions) + 3)))
            sprintf(rows[n_rows++], "%s=%s;", b.id, b.partitions);
    }
    aas_store_list_free(hb, n);
    qsort(rows, n_rows, sizeof(rows[0]), cmp_str);
    size_t used = 0;
    for (size_t i = 0; i < n_rows; i++) {
        used += (size_t)snprintf(sig + used, used < sig_size ? sig_size - used : 0, "%s",
                                 rows[i]);
        free(rows[i]);
    }
    return (int)n == want_live && (int)holding == want_live && held == 8 ? pid : 0;
}

/* The ts_ms of worker id's heartbeat, or -1 when it has none. */
static int64_t heartbeat_ts(aas_store_t *st, const char *id) {
    char **hb = NULL, why[256];
    size_t n = 0;
    int64_t ts = -1;
    if (aas_store_heartbeats(st, &hb, &n, why, sizeof(why))) return -1;
    for (size_t i = 0; i < n; i++) {
        aas_heartbeat_t b;
        if (!aas_heartbeat_parse(hb[i], &b, NULL, 0) && !strcmp(b.id, id)) ts = b.ts_ms;
    }
    aas_store_list_free(hb, n);
    return ts;
}

/* Starve worker pid (id) until log shows it restarted or 120 cycles
 * passed; then let it run.  Runs in a child process, with its own Redis
 * connection.  A cycle stops the worker for 1 s, then lets it run until
 * it has written a new heartbeat (its loop went round once: about one
 * job), at most 500 ms, and stops it again.  So it completes a job or
 * two a second, far below its share, and its heartbeat is never older
 * than about 1.5 s, inside the 3 s TTL at the 500 ms period the test
 * sets: a slow worker, never a vanished one, however busy the machine.
 *
 * Why not a fixed slot: this test used to let it run 5 ms a cycle.  A
 * starved worker advances about one blocking round trip (Redis, Kafka)
 * per slot, since on a busy machine the reply comes after the slot, and
 * its loop writes the heartbeat once a job, every few round trips: with
 * 1.5 s stops and the then 2 s TTL it must have been out of the live set
 * most ticks (inferred from its rate: 4 jobs in 12 s with 1 s stops).
 * The skew detector counts a partition behind without a live holder as
 * missing data and bridges such gaps only up to its window (6 s here);
 * whenever one job took the worker longer than that, the finding started
 * over. */
static void starve(pid_t pid, const char *id, int redis_port, const char *log,
                   const char *restarted) {
    aas_store_conf_t sc;
    aas_store_conf_init(&sc);
    sc.port = redis_port;
    aas_store_t *st = NULL;
    char why[256];
    if (aas_store_new(&sc, &st, why, sizeof(why))) {
        fprintf(stderr, "starve: redis: %s\n", why);
        _exit(1);
    }
    int64_t last = heartbeat_ts(st, id);
    for (int i = 0; i < 120 && kill(pid, 0) == 0; i++) {
        if (aas_test_log_contains(log, restarted)) break;
        kill(pid, SIGSTOP);
        usleep(1000000);
        kill(pid, SIGCONT);
        for (int waited = 0; waited < 500; waited += 2) {
            usleep(2000);
            int64_t ts = heartbeat_ts(st, id);
            if (ts > last) {
                last = ts;
                break;
            }
        }
    }
    kill(pid, SIGCONT);
    aas_store_destroy(st);
    _exit(0);
}

static void a_slow_worker_is_restarted_once_and_nothing_is_lost(void **state) {
    (void)state;
    setenv("AAS_TEST_PARTITIONS", "8", 1);
    aas_fleet_t *f = NULL;
    assert_int_equal(aas_fleet_start(&f, 0, NULL), 0);
    worker_env(f);
    /* Without batching, so that a starved worker's few milliseconds of
     * CPU are too few for its share whatever else runs on the machine
     * (with batching it may still catch up in them, only late). */
    setenv("AAS_BATCH_MAX_ROWS", "1", 1);
    setenv("AAS_WORKER_WINDOW_JOBS", "1", 1);
    setenv("AAS_BATCH_RECORD_US", "0", 1);
    /* A fixed fleet of 3 (the policy has nothing to do), skew judged
     * quickly, at most one restart in the test. */
    const char *extra[] = {"-X", "scheduler.min=3", "-X", "scheduler.max=3",
                           "-X", "scheduler.interval.ms=1000",
                           "-X", "scheduler.skew.window.s=6", "-X", "scheduler.skew.warmup.s=5",
                           "-X", "scheduler.skew.cooldown.s=600", "-X", "scheduler.skew.lag=50",
                           "-X", "log.level=debug", NULL};
    aas_test_proc_t sched;
    char log[600];
    start_scheduler(f, &sched, log, sizeof(log), extra);
    /* Pick the victim once the group has settled: who holds what unchanged
     * for 3 s (six heartbeats).  A heartbeat exists as soon as a worker
     * runs, before it has joined the group, and the first worker to join
     * holds every partition until the others have; picked then, and
     * starved through the rebalance that follows, the victim lost all its
     * partitions to the others (seen on Kafka: revoked all, assigned
     * nothing), nothing fell behind, and nothing was restarted. */
    char victim[AAS_ID_MAX + 1] = "";
    static char sig[4096], last_sig[4096];
    pid_t pid = 0;
    int64_t since = 0;
    for (int i = 0; i < 480; i++) {
        pid_t p = pick_worker(f, 3, victim, sizeof(victim), sig, sizeof(sig));
        if (!p || strcmp(sig, last_sig) != 0) {
            since = aas_mono_us();
            snprintf(last_sig, sizeof(last_sig), "%s", sig);
        } else if (aas_mono_us() - since >= 3000000) {
            pid = p;
            break;
        }
        usleep(250000);
    }
    assert_true(pid > 0);
    fprintf(stderr, "skew: starving %s (pid %d); assignment %s\n", victim, (int)pid, sig);
    char restarted[200];
    snprintf(restarted, sizeof(restarted), "restarting worker=%s ", victim);

    static float x[64];
    for (int k = 0; k < 64; k++) x[k] = aas_fleet_frand();
    char id[32], why[512];
    pid_t starver = fork();
    assert_true(starver >= 0);
    if (starver == 0) starve(pid, victim, f->redis.port, log, restarted);
    /* Up to 600 jobs/s (60 every 100 ms; about 300 with the flushes, on 2
     * shared cores): the other two keep up, the starved one cannot, so
     * its partitions fall behind while the others' keep up. */
    int64_t t0 = aas_mono_us(), t_restart = 0;
    int n = 0;
    while (aas_mono_us() - t0 < 90000000LL) {
        for (int j = 0; j < 60; j++, n++) {
            snprintf(id, sizeof(id), "slow-%d", n);
            assert_int_equal(aas_fleet_submit(f, id, AAS_FLEET_MODEL, x, 1, 64), 0);
        }
        assert_int_equal(aas_client_flush(f->client, 60000, NULL, why, sizeof(why)),
                         AAS_ERR_OK);
        usleep(100000);
        if (!t_restart && aas_test_log_contains(log, restarted)) t_restart = aas_mono_us();
        if (t_restart && aas_mono_us() - t_restart > 5000000) break; /* the new one works */
    }
    int st = 0;
    waitpid(starver, &st, 0);
    fprintf(stderr, "skew: %s restarted %.1f s after it was slowed; %d jobs\n", victim,
            t_restart ? (double)(t_restart - t0) / 1e6 : -1.0, n);
    assert_true(t_restart > 0);
    assert_true(aas_test_log_contains(log, "kind=slow-worker"));
    for (int j = 0; j < n; j++) {
        snprintf(id, sizeof(id), "slow-%d", j);
        assert_int_equal(aas_fleet_check(f, id, x, 1, 300000), 0);
    }
    /* The decision, with its reason, is in Redis for `status`. */
    char **dec = NULL;
    size_t nd = 0;
    /* The fleet's group: the workers' and the scheduler's default. */
    assert_int_equal(aas_store_decisions(aas_client_store(f->client), "aas-workers", 10, &dec,
                                         &nd, why, sizeof(why)),
                     AAS_ERR_OK);
    int restarts = 0;
    for (size_t i = 0; i < nd; i++)
        if (strstr(dec[i], "\"action\":\"restart\"")) {
            restarts++;
            assert_non_null(strstr(dec[i], victim));
            assert_non_null(strstr(dec[i], "completes"));
        }
    aas_store_list_free(dec, nd);
    assert_int_equal(restarts, 1);
    assert_true(wait_live(f, 1, 3, 30) >= 3);
    assert_int_equal(aas_test_proc_stop(&sched, 60000), 0);
    assert_int_equal(aas_fleet_stop(f), 0);
    unsetenv("AAS_BATCH_MAX_ROWS");
    unsetenv("AAS_WORKER_WINDOW_JOBS");
    unsetenv("AAS_BATCH_RECORD_US");
}

/* At exit, SIGKILL every process whose parent is this one: with the
 * subreaper flag set in main() that includes the workers of a scheduler
 * the harness killed when an assertion failed (workers outlive their
 * scheduler by design, so nobody else would stop them). */
static void kill_orphans(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], line[256];
        snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
        FILE *fp = atoi(e->d_name) > 0 ? fopen(path, "r") : NULL;
        while (fp && fgets(line, sizeof(line), fp))
            if (!strncmp(line, "PPid:", 5)) {
                if (atoi(line + 5) == (int)getpid()) kill(atoi(e->d_name), SIGKILL);
                break;
            }
        if (fp) fclose(fp);
    }
    if (d) closedir(d);
}

int main(void) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    atexit(kill_orphans);
    /* AAS_TEST_FILTER=name runs the matching tests only (they are long). */
    if (getenv("AAS_TEST_FILTER")) cmocka_set_test_filter(getenv("AAS_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_scales_up_drains_and_scales_down_exactly_once),
        cmocka_unit_test(partitions_grow_when_workers_would_exceed_them),
        cmocka_unit_test(status_reads_the_oldest_queued_job_from_kafka),
        cmocka_unit_test(a_slow_worker_is_restarted_once_and_nothing_is_lost),
    };
    size_t n = sizeof(tests) / sizeof(tests[0]);
    return _cmocka_run_group_tests("test_scheduler", tests, n, NULL, NULL);
}
