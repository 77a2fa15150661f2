/*
 * harness_redis.c - run a private redis-server for tests; see
 * harness_redis.h.  Linux only (PR_SET_PDEATHSIG).  It knows nothing of
 * aas: it is shared by unit and integration tests.
 */
#include "harness_redis.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AAS_TR_READY_MS 10000  /* how long a server may take to answer */
#define AAS_TR_STOP_MS 5000    /* SIGTERM grace before SIGKILL */
#define AAS_TR_PORT_TRIES 20   /* random ports tried by start */
#define AAS_TR_ARGS_MAX 32

static void aas_tr_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static long long aas_tr_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a minimal RESP client ------------------------------------------- */

typedef struct {
    int fd;
    char buf[4096];
    size_t pos, len;
} aas_tr_conn_t;

static int aas_tr_fill(aas_tr_conn_t *c) {
    if (c->pos < c->len) return 0;
    ssize_t n;
    do n = read(c->fd, c->buf, sizeof(c->buf));
    while (n < 0 && errno == EINTR);
    if (n <= 0) return -1;
    c->pos = 0;
    c->len = (size_t)n;
    return 0;
}

/* Read a line without \r\n into line (truncated to size - 1). */
static int aas_tr_line(aas_tr_conn_t *c, char *line, size_t size) {
    size_t n = 0;
    for (;;) {
        if (aas_tr_fill(c)) return -1;
        char ch = c->buf[c->pos++];
        if (ch == '\n') break;
        if (ch != '\r' && n + 1 < size) line[n++] = ch;
    }
    line[n] = '\0';
    return 0;
}

typedef struct {
    char *p;
    size_t left; /* room for bytes, excluding the NUL */
} aas_tr_out_t;

static void aas_tr_put(aas_tr_out_t *o, const char *s, size_t n) {
    if (n > o->left) n = o->left;
    memcpy(o->p, s, n);
    o->p += n;
    o->left -= n;
    *o->p = '\0';
}

static int aas_tr_reply(aas_tr_conn_t *c, aas_tr_out_t *o, int depth) {
    char line[512];
    if (depth > 8 || aas_tr_line(c, line, sizeof(line))) return -1;
    switch (line[0]) {
    case '+':
    case ':':
        aas_tr_put(o, line + 1, strlen(line + 1));
        return 0;
    case '-':
        aas_tr_put(o, line, strlen(line));
        return 0;
    case '$': {
        long long n = atoll(line + 1);
        if (n < 0) {
            aas_tr_put(o, "(nil)", 5);
            return 0;
        }
        for (long long i = 0; i < n + 2; i++) { /* bytes + \r\n */
            if (aas_tr_fill(c)) return -1;
            char ch = c->buf[c->pos++];
            if (i < n) aas_tr_put(o, &ch, 1);
        }
        return 0;
    }
    case '*': {
        long long n = atoll(line + 1);
        if (n < 0) {
            aas_tr_put(o, "(nil)", 5);
            return 0;
        }
        for (long long i = 0; i < n; i++) {
            if (i) aas_tr_put(o, "\n", 1);
            if (aas_tr_reply(c, o, depth + 1)) return -1;
        }
        return 0;
    }
    default:
        return -1;
    }
}

static int aas_tr_send(int fd, int argc, const char *const *argv) {
    char head[64];
    int n = snprintf(head, sizeof(head), "*%d\r\n", argc);
    if (write(fd, head, (size_t)n) != n) return -1;
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        n = snprintf(head, sizeof(head), "$%zu\r\n", len);
        if (write(fd, head, (size_t)n) != n) return -1;
        if (len && write(fd, argv[i], len) != (ssize_t)len) return -1;
        if (write(fd, "\r\n", 2) != 2) return -1;
    }
    return 0;
}

static int aas_tr_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int aas_tr_vcmd(const aas_test_redis_t *r, char *out, size_t out_size,
                       int argc, const char *const *argv) {
    char scratch[64];
    aas_tr_conn_t c = {.fd = aas_tr_connect(r->port)};
    if (!out || out_size == 0) {
        out = scratch;
        out_size = sizeof(scratch);
    }
    out[0] = '\0';
    if (c.fd < 0) return -1;
    int rc = -1;
    if (r->password[0]) {
        const char *auth[] = {"AUTH", r->password};
        char ok[64];
        aas_tr_out_t o = {ok, sizeof(ok) - 1};
        if (aas_tr_send(c.fd, 2, auth) || aas_tr_reply(&c, &o, 0) ||
            strcmp(ok, "OK") != 0)
            goto out;
    }
    aas_tr_out_t o = {out, out_size - 1};
    if (aas_tr_send(c.fd, argc, argv) || aas_tr_reply(&c, &o, 0)) goto out;
    rc = 0;
out:
    close(c.fd);
    return rc;
}

static int aas_tr_collect(const char *arg0, va_list ap, const char **argv) {
    int argc = 0;
    for (const char *a = arg0; a && argc < AAS_TR_ARGS_MAX;
         a = va_arg(ap, const char *))
        argv[argc++] = a;
    return argc;
}

int aas_test_redis_cmd(const aas_test_redis_t *r, char *out, size_t out_size,
                       const char *arg0, ...) {
    const char *argv[AAS_TR_ARGS_MAX];
    va_list ap;
    va_start(ap, arg0);
    int argc = aas_tr_collect(arg0, ap, argv);
    va_end(ap);
    return aas_tr_vcmd(r, out, out_size, argc, argv);
}

long long aas_test_redis_int(const aas_test_redis_t *r, const char *arg0,
                             ...) {
    const char *argv[AAS_TR_ARGS_MAX];
    char out[64], *end;
    va_list ap;
    va_start(ap, arg0);
    int argc = aas_tr_collect(arg0, ap, argv);
    va_end(ap);
    if (aas_tr_vcmd(r, out, sizeof(out), argc, argv)) return -1;
    long long v = strtoll(out, &end, 10);
    return end == out || *end ? -1 : v;
}

/* ---- the server process ---------------------------------------------- */

static void aas_tr_reap(aas_test_redis_t *r, int sig, long grace_ms) {
    if (r->pid <= 0) return;
    kill(r->pid, sig);
    long long until = aas_tr_now_ms() + grace_ms;
    for (;;) {
        pid_t w = waitpid(r->pid, NULL, WNOHANG);
        if (w == r->pid || (w < 0 && errno == ECHILD)) break;
        if (aas_tr_now_ms() >= until) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
            break;
        }
        aas_tr_sleep_ms(20);
    }
    r->pid = 0;
}

static void aas_tr_log_tail(const aas_test_redis_t *r) {
    char path[320], line[512];
    snprintf(path, sizeof(path), "%s/redis.log", r->dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char last[5][512] = {{0}};
    int n = 0;
    while (fgets(line, sizeof(line), f))
        snprintf(last[n++ % 5], sizeof(last[0]), "%s", line);
    fclose(f);
    for (int i = n > 5 ? n - 5 : 0; i < n; i++)
        fprintf(stderr, "  redis.log: %s", last[i % 5]);
}

static pid_t aas_tr_spawn(const aas_test_redis_t *r) {
    char port[16], log[320];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    const char *bin = getenv("AAS_REDIS_SERVER");
    if (!bin || !*bin) bin = "redis-server";
    const char *argv[AAS_TR_ARGS_MAX];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    /* Durable as the delivery guarantee needs it (docs/guarantees.md): an
     * append-only file fsynced on every write, so a kill + restart keeps
     * every acknowledged write, including terminal statuses whose Kafka
     * offsets are already committed. */
    argv[n++] = "--appendonly";
    argv[n++] = "yes";
    argv[n++] = "--appendfsync";
    argv[n++] = "always";
    argv[n++] = "--dir";
    argv[n++] = r->dir;
    argv[n++] = "--logfile";
    argv[n++] = log;
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    if (r->password[0]) {
        argv[n++] = "--requirepass";
        argv[n++] = r->password;
    }
    argv[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness_redis: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Die with the test, even if it crashes. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(127);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            if (null > 2) close(null);
        }
        execvp(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* 1 when the server on r->port is our child and answers; 0 if it exited
 * (port taken, say) or another server answers there; -1 on timeout. */
static int aas_tr_wait_ready(aas_test_redis_t *r) {
    long long until = aas_tr_now_ms() + AAS_TR_READY_MS;
    char out[8192];
    while (aas_tr_now_ms() < until) {
        int status;
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            r->pid = 0;
            return 0;
        }
        if (aas_test_redis_cmd(r, out, sizeof(out), "PING", NULL) == 0 &&
            strcmp(out, "PONG") == 0) {
            /* Make sure it is ours, not another server on this port. */
            if (aas_test_redis_cmd(r, out, sizeof(out), "INFO", "server",
                                   NULL) == 0) {
                char *p = strstr(out, "process_id:");
                if (p && atol(p + 11) == (long)r->pid) return 1;
            }
            return 0; /* a stranger; our child will fail to bind */
        }
        aas_tr_sleep_ms(20);
    }
    return -1;
}

static void aas_tr_rmdir(aas_test_redis_t *r) {
    if (!r->dir[0]) return;
    DIR *d = opendir(r->dir);
    if (d) {
        struct dirent *e;
        char path[600];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(path, sizeof(path), "%s/%s", r->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(r->dir);
    r->dir[0] = '\0';
}

/* Start on r->port in r->dir: 1 ready, 0 child exited, -1 failure. */
static int aas_tr_start_here(aas_test_redis_t *r) {
    r->pid = aas_tr_spawn(r);
    if (r->pid < 0) {
        r->pid = 0;
        return -1;
    }
    int rc = aas_tr_wait_ready(r);
    if (rc != 1) aas_tr_reap(r, SIGKILL, AAS_TR_STOP_MS);
    return rc;
}

int aas_test_redis_start(aas_test_redis_t *r, const char *password_or_null) {
    memset(r, 0, sizeof(*r));
    if (password_or_null) {
        if (strlen(password_or_null) >= sizeof(r->password)) {
            fprintf(stderr, "harness_redis: password too long\n");
            return -1;
        }
        snprintf(r->password, sizeof(r->password), "%s", password_or_null);
    }
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 200) tmp = "/tmp";
    snprintf(r->dir, sizeof(r->dir), "%s/aas-redis-XXXXXX", tmp);
    if (!mkdtemp(r->dir)) {
        fprintf(stderr, "harness_redis: mkdtemp %s: %s\n", r->dir,
                strerror(errno));
        r->dir[0] = '\0';
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned seed = (unsigned)getpid() ^ (unsigned)ts.tv_nsec;
    for (int i = 0; i < AAS_TR_PORT_TRIES; i++) {
        r->port = 20000 + (int)(rand_r(&seed) % 40000);
        int rc = aas_tr_start_here(r);
        if (rc == 1) return 0;
        if (rc < 0) break; /* slow or broken, not a port clash */
    }
    fprintf(stderr, "harness_redis: redis-server did not start (last port "
            "%d); is redis-server installed?\n", r->port);
    aas_tr_log_tail(r);
    aas_test_redis_stop(r);
    return -1;
}

void aas_test_redis_stop(aas_test_redis_t *r) {
    if (!r) return;
    aas_tr_reap(r, SIGTERM, AAS_TR_STOP_MS);
    aas_tr_rmdir(r);
}

int aas_test_redis_kill(aas_test_redis_t *r) {
    if (!r || r->pid <= 0) return -1;
    aas_tr_reap(r, SIGKILL, AAS_TR_STOP_MS);
    return 0;
}

int aas_test_redis_restart(aas_test_redis_t *r) {
    if (!r || !r->dir[0] || r->port <= 0) return -1;
    if (r->pid > 0) aas_tr_reap(r, SIGKILL, AAS_TR_STOP_MS);
    /* The port was ours a moment ago; it may take a moment to free. */
    for (int i = 0; i < 10; i++) {
        int rc = aas_tr_start_here(r);
        if (rc == 1) return 0;
        aas_tr_sleep_ms(100 * (i + 1));
    }
    fprintf(stderr, "harness_redis: restart on port %d failed\n", r->port);
    aas_tr_log_tail(r);
    return -1;
}
