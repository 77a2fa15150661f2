/* harness_proc.c - child processes for integration tests; see harness_proc.h. */
#include "harness_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AAS_TEST_MAX_CHILDREN 64

/* Children to kill if the test process exits early (assertion failure). */
static pid_t aas_test_children[AAS_TEST_MAX_CHILDREN];
static int aas_test_atexit_set;

static void aas_test_kill_all(void) {
    for (int i = 0; i < AAS_TEST_MAX_CHILDREN; i++)
        if (aas_test_children[i] > 0) {
            kill(aas_test_children[i], SIGKILL);
            waitpid(aas_test_children[i], NULL, 0);
            aas_test_children[i] = 0;
        }
}

static void aas_test_track(pid_t pid, int add) {
    if (!aas_test_atexit_set) {
        atexit(aas_test_kill_all);
        aas_test_atexit_set = 1;
    }
    for (int i = 0; i < AAS_TEST_MAX_CHILDREN; i++)
        if (add ? aas_test_children[i] == 0 : aas_test_children[i] == pid) {
            aas_test_children[i] = add ? pid : 0;
            return;
        }
}

static void aas_test_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int aas_test_proc_start(aas_test_proc_t *p, const char *bin, char *const argv[],
                        const char *log_path) {
    memset(p, 0, sizeof(*p));
    snprintf(p->log, sizeof(p->log), "%s", log_path);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(bin, argv);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    aas_test_track(pid, 1);
    return 0;
}

static int aas_test_status(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

int aas_test_proc_stop(aas_test_proc_t *p, int grace_ms) {
    if (p->pid <= 0) return -1;
    kill(p->pid, SIGTERM);
    int st = 0;
    for (int waited = 0; waited < grace_ms; waited += 50) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            aas_test_track(p->pid, 0);
            p->pid = 0;
            return aas_test_status(st);
        }
        aas_test_sleep_ms(50);
    }
    return aas_test_proc_kill(p);
}

int aas_test_proc_kill(aas_test_proc_t *p) {
    if (p->pid <= 0) return -1;
    int st = 0;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    aas_test_track(p->pid, 0);
    p->pid = 0;
    return aas_test_status(st);
}

int aas_test_log_contains(const char *log_path, const char *needle) {
    FILE *fp = fopen(log_path, "r");
    if (!fp) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), fp)) found = strstr(line, needle) != NULL;
    fclose(fp);
    return found;
}

/* Run a command line to completion; 0 if it exited 0. */
static int aas_test_run(char *const argv[], const char *log_path) {
    aas_test_proc_t p;
    if (aas_test_proc_start(&p, argv[0], argv, log_path)) return -1;
    int st = 0;
    waitpid(p.pid, &st, 0);
    aas_test_track(p.pid, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int aas_test_read_line(const char *path, char *buf, size_t size) {
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    int ok = fgets(buf, (int)size, fp) != NULL;
    fclose(fp);
    buf[strcspn(buf, "\r\n")] = '\0';
    return ok && buf[0] ? 0 : -1;
}

static int aas_test_kafka_start(aas_test_broker_t *b, const char *dir,
                                int partitions) {
    char tool[512], log[512], owner[24], parts[16], path[600];
    const char *brokers = getenv("AAS_TEST_KAFKA_BROKERS");
    if (!brokers) brokers = "1";
    int n = atoi(brokers);
    snprintf(tool, sizeof(tool), "%s/tools/kafka-local", AAS_SOURCE_DIR);
    snprintf(b->kafka_dir, sizeof(b->kafka_dir), "%s/kafka", dir);
    snprintf(log, sizeof(log), "%s/kafka-local.log", dir);
    snprintf(owner, sizeof(owner), "%d", (int)getpid());
    snprintf(parts, sizeof(parts), "%d", partitions);
    char *start[] = {tool, "start", "--brokers", (char *)brokers, "--dir",
                     b->kafka_dir, "--owner", owner, NULL};
    if (aas_test_run(start, log)) return -1;
    b->real = 1;
    snprintf(path, sizeof(path), "%s/bootstrap", b->kafka_dir);
    if (aas_test_read_line(path, b->bootstrap, sizeof(b->bootstrap))) return -1;
    char repl[8];
    snprintf(repl, sizeof(repl), "%d", n >= 3 ? 3 : 1);
    /* The jobs topic's priority lanes too (common/lane.h). */
    const char *topics[] = {"aas.jobs.infer", "aas.jobs.infer.high", "aas.jobs.infer.low",
                            "aas.jobs.train", "aas.jobs.dlq"};
    for (int i = 0; i < (int)(sizeof(topics) / sizeof(topics[0])); i++) {
        char *create[] = {tool, "create-topic", "--dir", b->kafka_dir,
                          (char *)topics[i], "--partitions", parts,
                          "--replication", repl, "--config",
                          n >= 3 ? "min.insync.replicas=2" : "min.insync.replicas=1",
                          NULL};
        if (aas_test_run(create, log)) return -1;
    }
    return 0;
}

int aas_test_broker_start(aas_test_broker_t *b, const char *bin_dir,
                          const char *dir, int partitions) {
    memset(b, 0, sizeof(*b));
    const char *kind = getenv("AAS_TEST_BROKER");
    if (kind && strcmp(kind, "kafka") == 0) {
        if (aas_test_kafka_start(b, dir, partitions)) {
            aas_test_broker_stop(b);
            return -1;
        }
        return 0;
    }
    char bin[512], parts[16], log[512];
    snprintf(bin, sizeof(bin), "%s/tools/aas-devbroker", bin_dir);
    snprintf(b->file, sizeof(b->file), "%s/bootstrap.txt", dir);
    snprintf(log, sizeof(log), "%s/devbroker.log", dir);
    snprintf(parts, sizeof(parts), "%d", partitions);
    unlink(b->file);
    char *argv[] = {bin, "--partitions", parts, "--bootstrap-file", b->file, NULL};
    if (aas_test_proc_start(&b->proc, bin, argv, log)) return -1;
    for (int waited = 0; waited < 20000; waited += 50) {
        if (aas_test_read_line(b->file, b->bootstrap, sizeof(b->bootstrap)) == 0)
            return 0;
        aas_test_sleep_ms(50);
    }
    aas_test_proc_kill(&b->proc);
    return -1;
}

void aas_test_broker_stop(aas_test_broker_t *b) {
    if (b->kafka_dir[0]) {
        char tool[512], log[600];
        snprintf(tool, sizeof(tool), "%s/tools/kafka-local", AAS_SOURCE_DIR);
        snprintf(log, sizeof(log), "%s.stop.log", b->kafka_dir);
        char *stop[] = {tool, "stop", "--dir", b->kafka_dir, "--rm", NULL};
        aas_test_run(stop, log);
        b->kafka_dir[0] = '\0';
        return;
    }
    aas_test_proc_stop(&b->proc, 10000);
}

int aas_test_broker_outage(aas_test_broker_t *b, int down) {
    if (!b->real) return kill(b->proc.pid, down ? SIGUSR1 : SIGUSR2);
    char tool[512], log[600];
    snprintf(tool, sizeof(tool), "%s/tools/kafka-local", AAS_SOURCE_DIR);
    snprintf(log, sizeof(log), "%s.outage.log", b->kafka_dir);
    char *argv[] = {tool, down ? "kill-node" : "start-node", "--dir", b->kafka_dir,
                    "1", NULL};
    return aas_test_run(argv, log);
}

int aas_test_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

int aas_test_scrape(int port, char *buf, size_t size) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        if (fd >= 0) close(fd);
        return -1;
    }
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
        close(fd);
        return -1;
    }
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    return strstr(buf, " 200 ") ? 0 : -1;
}

double aas_test_metric(const char *text, const char *series) {
    size_t len = strlen(series);
    for (const char *p = text; (p = strstr(p, series)); p += len)
        if ((p == text || p[-1] == '\n') && p[len] == ' ') return strtod(p + len + 1, NULL);
    return NAN;
}
