/* actuator.c - local processes and command-hook actuators, and the
 * partition action both share; see actuator.h.  Settings come from the
 * typed configuration (aas_scheduler_conf_t), read once at start: no key
 * lookups when acting. */
#include "actuator.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define AAS_LOCAL_MAX 256

/* ---- local: aas-worker children ---- */

typedef struct {
    aas_actuator_t base;
    pid_t pids[AAS_LOCAL_MAX];   /* running workers, oldest first */
    char ids[AAS_LOCAL_MAX][160]; /* their worker.id, same order */
    int ports[AAS_LOCAL_MAX];    /* their metrics.port, same order; 0 none */
    int n;
    pid_t leaving[AAS_LOCAL_MAX]; /* SIGTERMed, not reaped yet */
    int leaving_ports[AAS_LOCAL_MAX]; /* still bound until they exit */
    int n_leaving;
    char conf_path[600];         /* the workers' config file (logdir) */
    unsigned seq;                /* worker id suffix */
    int restarts;
} aas_local_t;

/* The lowest metrics port of scheduler.worker.metrics.port.. that no
 * running or leaving worker holds; 0 when off or all are taken. */
static int aas_local_port(const aas_local_t *l) {
    int base = (int)l->base.c->worker_metrics_port;
    if (base <= 0) return 0;
    for (int p = base; p < base + AAS_LOCAL_MAX && p <= 65535; p++) {
        int used = 0;
        for (int i = 0; i < l->n && !used; i++) used = l->ports[i] == p;
        for (int i = 0; i < l->n_leaving && !used; i++) used = l->leaving_ports[i] == p;
        if (!used) return p;
    }
    return 0;
}

/* Start a worker with the scheduler's configuration file (-c), its own id
 * and metrics port, and its stderr (the log) in logdir/ID.log; its id goes
 * to id[160], its port to *port. */
static pid_t aas_local_spawn(aas_local_t *l, char *id, int *port) {
    const char *bin = l->base.c->worker_bin;
    const char *prefix = l->base.c->worker_prefix;
    const char *logdir = l->base.c->worker_logdir;
    const char *cfg = l->conf_path;
    char idarg[200], portarg[40], log[512];
    snprintf(id, 160, "%s-%d-%u", prefix, (int)getpid(), ++l->seq);
    snprintf(idarg, sizeof(idarg), "worker.id=%s", id);
    *port = aas_local_port(l);
    snprintf(portarg, sizeof(portarg), "metrics.port=%d", *port);
    snprintf(log, sizeof(log), "%s/%s.log", logdir && logdir[0] ? logdir : ".", id);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (!freopen(log, "a", stderr)) _exit(126);
        /* Workers inherit the environment (AAS_* settings, secrets), but
         * not the scheduler's metrics port: every worker here would try to
         * bind it.  Each gets its own (or none: metrics.port=0). */
        unsetenv("AAS_METRICS_PORT");
        execlp(bin, bin, "-c", cfg, "-X", idarg, "-X", portarg, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    AAS_LOG(AAS_LOG_INFO, "scheduler", "started worker=%s pid=%d metrics_port=%d log=%s", id,
            (int)pid, *port, log);
    return pid;
}

/* Reap exited children: leavers are done; running ones that died crashed. */
static void aas_local_reap(aas_local_t *l) {
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (int i = 0; i < l->n_leaving; i++)
            if (l->leaving[i] == pid) {
                l->n_leaving--;
                l->leaving[i] = l->leaving[l->n_leaving];
                l->leaving_ports[i] = l->leaving_ports[l->n_leaving];
                pid = 0;
                break;
            }
        for (int i = 0; pid && i < l->n; i++)
            if (l->pids[i] == pid) {
                AAS_LOG(AAS_LOG_WARN, "scheduler", "worker pid=%d died (status %d); "
                        "restarting", (int)pid, st);
                memmove(&l->pids[i], &l->pids[i + 1], (size_t)(l->n - i - 1) * sizeof(pid_t));
                memmove(&l->ids[i], &l->ids[i + 1], (size_t)(l->n - i - 1) * sizeof(l->ids[0]));
                memmove(&l->ports[i], &l->ports[i + 1], (size_t)(l->n - i - 1) * sizeof(int));
                l->n--;
                l->restarts++;
                break;
            }
    }
}

static aas_err_t aas_local_apply(aas_actuator_t *a, int desired, char *errstr,
                                 size_t errstr_size) {
    aas_local_t *l = (aas_local_t *)a;
    aas_local_reap(l);
    if (desired > AAS_LOCAL_MAX) desired = AAS_LOCAL_MAX;
    while (l->n < desired) {
        pid_t pid = aas_local_spawn(l, l->ids[l->n], &l->ports[l->n]);
        if (pid < 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "fork: %s", strerror(errno));
        l->pids[l->n++] = pid;
    }
    while (l->n > desired && l->n_leaving < AAS_LOCAL_MAX) {
        /* The newest leaves first: the oldest keep their warm caches. */
        pid_t pid = l->pids[--l->n];
        kill(pid, SIGTERM);
        l->leaving_ports[l->n_leaving] = l->ports[l->n];
        l->leaving[l->n_leaving++] = pid;
        AAS_LOG(AAS_LOG_INFO, "scheduler", "stopping worker pid=%d (SIGTERM)", (int)pid);
    }
    return AAS_ERR_OK;
}

static int aas_local_current(aas_actuator_t *a) {
    aas_local_t *l = (aas_local_t *)a;
    aas_local_reap(l);
    return l->n;
}

static aas_err_t aas_local_restart(aas_actuator_t *a, const char *id, char *errstr,
                                   size_t errstr_size) {
    aas_local_t *l = (aas_local_t *)a;
    aas_local_reap(l);
    int i = 0;
    while (i < l->n && strcmp(l->ids[i], id) != 0) i++;
    if (i == l->n)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                           "worker %s was not started by this scheduler", id);
    if (l->n_leaving >= AAS_LOCAL_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                           "too many workers still leaving");
    /* The replacement starts first, so the fleet never has one worker less
     * than it should; the old one finishes its job, commits and leaves, and
     * the cooperative-sticky assignor spreads its partitions anew. */
    char fresh[160];
    int port = 0;
    pid_t pid = aas_local_spawn(l, fresh, &port);
    if (pid < 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "fork: %s", strerror(errno));
    pid_t old = l->pids[i];
    kill(old, SIGTERM);
    l->leaving_ports[l->n_leaving] = l->ports[i];
    l->leaving[l->n_leaving++] = old;
    AAS_LOG(AAS_LOG_INFO, "scheduler", "restarting worker=%s pid=%d (SIGTERM) as %s pid=%d",
            id, (int)old, fresh, (int)pid);
    l->pids[i] = pid;
    l->ports[i] = port;
    memcpy(l->ids[i], fresh, sizeof(fresh));
    return AAS_ERR_OK;
}

/* ---- partitions: the same Admin API call for every kind ---- */

static aas_err_t aas_actuator_grow(aas_actuator_t *a, const char *topic, int partitions,
                                   char *errstr, size_t errstr_size) {
    if (!a->grow)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "scheduler.grow.partitions is off");
    return aas_grow_partitions(a->grow, topic, partitions, (int)a->c->timeout_ms, errstr,
                               errstr_size);
}

static void aas_local_destroy(aas_actuator_t *a) {
    aas_local_t *l = (aas_local_t *)a;
    aas_local_apply(a, 0, NULL, 0);
    /* Bounded: a worker finishes its job and commits within seconds. */
    for (int waited = 0; l->n_leaving > 0 && waited < 30000; waited += 50) {
        aas_local_reap(l);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < l->n_leaving; i++) kill(l->leaving[i], SIGKILL);
    aas_local_reap(l);
    free(l);
}

/* Crashed workers are replaced at the next apply (aas_local_reap). */
static void aas_local_reconcile(aas_actuator_t *a, int live, double now_s) {
    (void)a;
    (void)live;
    (void)now_s;
}

static const aas_actuator_ops_t aas_local_ops = {"local", aas_local_apply,
                                                 aas_local_current, aas_local_restart,
                                                 aas_actuator_grow, aas_local_reconcile,
                                                 aas_local_destroy};

/* ---- command: a shell hook with the desired count ---- */

typedef struct {
    aas_actuator_t base;
    int last;             /* the count last asked for and done; -1 none */
    double apart_since_s; /* live workers != last since; < 0 not apart */
} aas_command_t;

/* "exit code 3", "killed by signal 9", from a wait status. */
static void aas_command_status_str(int st, char *buf, size_t size) {
    if (WIFEXITED(st)) snprintf(buf, size, "exit code %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(buf, size, "killed by signal %d", WTERMSIG(st));
    else snprintf(buf, size, "wait status %d", st);
}

/* Run the hook with AAS_DESIRED_WORKERS=desired, in its own process group
 * (so a timeout kills what the shell started too), at most
 * scheduler.command.timeout.ms: a hung hook must not stop the ticks. */
static aas_err_t aas_command_run(aas_command_t *c, int desired, char *errstr,
                                 size_t errstr_size) {
    char n[16];
    snprintf(n, sizeof(n), "%d", desired);
    int64_t timeout_ms = c->base.c->command_timeout_ms;
    pid_t pid = fork();
    if (pid < 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "scheduler.command: fork: %s",
                           strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        /* The count goes in the environment, so the command text is fixed
         * configuration and nothing is spliced into a shell line. */
        setenv("AAS_DESIRED_WORKERS", n, 1);
        execl("/bin/sh", "sh", "-c", c->base.c->command, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* either side may run first */
    int st = 0;
    for (int64_t waited = 0;; waited += 20) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR)
            return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "scheduler.command: wait: %s",
                               strerror(errno));
        if (waited >= timeout_ms) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
            return aas_err_set(errstr, errstr_size, AAS_ERR_TIMEOUT,
                               "scheduler.command (AAS_DESIRED_WORKERS=%d) ran over "
                               "scheduler.command.timeout.ms=%lld and was killed",
                               desired, (long long)timeout_ms);
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return AAS_ERR_OK;
    char how[64];
    aas_command_status_str(st, how, sizeof(how));
    return aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                       "scheduler.command (AAS_DESIRED_WORKERS=%d) failed: %s%s", desired, how,
                       WIFEXITED(st) && WEXITSTATUS(st) == 127 ? " (command not found?)" : "");
}

static aas_err_t aas_command_apply(aas_actuator_t *a, int desired, char *errstr,
                                   size_t errstr_size) {
    aas_command_t *c = (aas_command_t *)a;
    if (desired == c->last) return AAS_ERR_OK;
    aas_err_t err = aas_command_run(c, desired, errstr, errstr_size);
    if (err) return err;
    c->last = desired;
    c->apart_since_s = -1;
    return AAS_ERR_OK;
}

static void aas_command_reconcile(aas_actuator_t *a, int live, double now_s) {
    aas_command_t *c = (aas_command_t *)a;
    if (live < 0 || c->last < 0 || live == c->last) {
        c->apart_since_s = -1;
        return;
    }
    if (c->apart_since_s < 0 || now_s < c->apart_since_s) {
        c->apart_since_s = now_s;
        return;
    }
    double grace_s = (double)c->base.c->command_reconcile_ms / 1000.0;
    if (now_s - c->apart_since_s < grace_s) return;
    /* The orchestrator lost workers, or never made them: ask again. */
    char why[512];
    aas_err_t err = aas_command_run(c, c->last, why, sizeof(why));
    AAS_LOG(err ? AAS_LOG_ERROR : AAS_LOG_WARN, "scheduler",
            "reconcile live=%d asked=%d for %.0fs: ran scheduler.command again%s%s", live,
            c->last, now_s - c->apart_since_s, err ? " error=" : "", err ? why : "");
    c->apart_since_s = now_s; /* next try a grace period from now */
}

static int aas_command_current(aas_actuator_t *a) {
    return ((aas_command_t *)a)->last;
}

static aas_err_t aas_command_restart(aas_actuator_t *a, const char *id, char *errstr,
                                     size_t errstr_size) {
    (void)a;
    /* The hook takes a count; it has no way to name one replica. */
    return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                       "the command actuator cannot restart one worker (%s); restart it "
                       "by hand or with the orchestrator", id);
}

static void aas_command_destroy(aas_actuator_t *a) { free(a); }

static const aas_actuator_ops_t aas_command_ops = {"command", aas_command_apply,
                                                   aas_command_current, aas_command_restart,
                                                   aas_actuator_grow, aas_command_reconcile,
                                                   aas_command_destroy};

/* ---- none: decide and export only; an orchestrator acts ---- */

/* Kubernetes with KEDA (docs/kubernetes.md): the scheduler's count is read
 * from GET /keda and the HPA changes the replicas.  Remembering the count
 * as "asked" makes the policy hold and stabilise as with a hook. */
static aas_err_t aas_none_apply(aas_actuator_t *a, int desired, char *errstr,
                                size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    ((aas_command_t *)a)->last = desired;
    return AAS_ERR_OK;
}

static aas_err_t aas_none_restart(aas_actuator_t *a, const char *id, char *errstr,
                                  size_t errstr_size) {
    (void)a;
    return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                       "scheduler.actuator=none cannot restart worker %s; delete its pod "
                       "(the Deployment makes a new one)", id);
}

static void aas_none_reconcile(aas_actuator_t *a, int live, double now_s) {
    (void)a;
    (void)live;
    (void)now_s;
}

static const aas_actuator_ops_t aas_none_ops = {"none", aas_none_apply, aas_command_current,
                                                aas_none_restart, aas_actuator_grow,
                                                aas_none_reconcile, aas_command_destroy};

/* The actuator of c->actuator, without partition growth. */
static aas_err_t aas_actuator_kind_new(const aas_scheduler_conf_t *c, aas_actuator_t **out,
                                       char *errstr, size_t errstr_size) {
    const char *kind = c->actuator;
    if (!strcmp(kind, "local")) {
        /* The workers' logs go there: made now, so a bad path fails the
         * start, not each spawn. */
        const char *dir = c->worker_logdir && c->worker_logdir[0] ? c->worker_logdir : ".";
        if (mkdir(dir, 0750) && errno != EEXIST)
            return aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                               "scheduler.worker.logdir %s: %s", dir, strerror(errno));
        aas_local_t *l = calloc(1, sizeof(*l));
        if (!l) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        l->base.ops = &aas_local_ops;
        *out = &l->base;
        return AAS_ERR_OK;
    }
    if (!strcmp(kind, "command")) {
        if (!c->command)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "scheduler.actuator=command needs scheduler.command");
        aas_command_t *cmd = calloc(1, sizeof(*cmd));
        if (!cmd) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        cmd->base.ops = &aas_command_ops;
        cmd->last = -1;
        cmd->apart_since_s = -1;
        *out = &cmd->base;
        return AAS_ERR_OK;
    }
    if (!strcmp(kind, "none")) {
        aas_command_t *none = calloc(1, sizeof(*none));
        if (!none) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        none->base.ops = &aas_none_ops;
        none->last = -1;
        none->apart_since_s = -1;
        *out = &none->base;
        return AAS_ERR_OK;
    }
    return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                       "scheduler.actuator: '%s' is not local, command or none", kind);
}

/* The local workers' config file, logdir/aas-worker.conf: the scheduler's
 * own connection settings (whatever source they came from: file,
 * environment, -X), so its workers reach the same Redis and Kafka as it,
 * and its consumer group.  Owner-only (it may hold secrets), rewritten at
 * each start. */
static aas_err_t aas_local_write_conf(aas_local_t *l, const aas_conf_t *conf, char *errstr,
                                      size_t errstr_size) {
    const char *dir = l->base.c->worker_logdir && l->base.c->worker_logdir[0]
                          ? l->base.c->worker_logdir : ".";
    if (snprintf(l->conf_path, sizeof(l->conf_path), "%s/aas-worker.conf", dir) >=
        (int)sizeof(l->conf_path))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "scheduler.worker.logdir is too long");
    int fd = open(l->conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600)) {
        int e = errno;
        if (fd >= 0) close(fd);
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "%s: %s", l->conf_path,
                           strerror(e));
    }
    FILE *fp = fdopen(fd, "w");
    if (!fp) {
        close(fd);
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "%s: %s", l->conf_path,
                           strerror(errno));
    }
    static const char *const extra[] = {"worker.group", NULL};
    fprintf(fp, "# Written by aas-scheduler for the workers it starts: its connection\n"
                "# settings. Rewritten at each start; do not edit.\n");
    aas_err_t err = aas_conf_write_shared(conf, extra, fp, errstr, errstr_size);
    if (fclose(fp) && !err)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "%s: %s", l->conf_path,
                          strerror(errno));
    return err;
}

aas_err_t aas_actuator_new(const aas_conf_t *conf, const aas_scheduler_conf_t *c,
                           aas_actuator_t **out, char *errstr, size_t errstr_size) {
    aas_actuator_t *a = NULL;
    aas_err_t err = aas_actuator_kind_new(c, &a, errstr, errstr_size);
    if (err) return err;
    a->c = c;
    if (a->ops == &aas_local_ops &&
        (err = aas_local_write_conf((aas_local_t *)a, conf, errstr, errstr_size))) {
        aas_actuator_destroy(a);
        return err;
    }
    if (c->grow_partitions && (err = aas_grow_new(conf, &a->grow, errstr, errstr_size))) {
        aas_actuator_destroy(a);
        return err;
    }
    *out = a;
    return AAS_ERR_OK;
}

void aas_actuator_destroy(aas_actuator_t *a) {
    if (!a) return;
    aas_grow_t *g = a->grow;
    a->ops->destroy(a);
    aas_grow_destroy(g);
}
