/*
 * harness_proc.h - run the real aas programs from integration tests.
 *
 * Spawns a built program with its stdout/stderr in a log file, stops it
 * with SIGTERM (then SIGKILL after a grace period), and starts the dev
 * broker and reads its bootstrap address.  Every child is killed at exit
 * even when an assertion fails, so no test leaves processes behind.
 */
#ifndef AAS_HARNESS_PROC_H
#define AAS_HARNESS_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    char log[512];
} aas_test_proc_t;

/**
 * @brief Start bin (path) with argv (NULL-terminated, argv[0] included),
 *        output appended to log_path.  Returns 0 on success.
 */
int aas_test_proc_start(aas_test_proc_t *p, const char *bin, char *const argv[],
                        const char *log_path);

/**
 * @brief SIGTERM, wait up to grace_ms, then SIGKILL.
 * @return the exit status (0..255) if it exited, 128+signal if killed,
 *         -1 if it was not running.
 */
int aas_test_proc_stop(aas_test_proc_t *p, int grace_ms);

/** @brief SIGKILL now (crash simulation); returns as aas_test_proc_stop. */
int aas_test_proc_kill(aas_test_proc_t *p);

/** @brief 1 if the log file contains needle. */
int aas_test_log_contains(const char *log_path, const char *needle);

/** @brief A loopback TCP port nobody listens on right now, or -1. */
int aas_test_free_port(void);

/** @brief GET /metrics from 127.0.0.1:port; the response (headers and
 *         body, NUL-terminated) in buf.  0 on a 200 answer. */
int aas_test_scrape(int port, char *buf, size_t size);

/** @brief The value of the line that starts with `series ` in a scrape
 *         (e.g. `name{label="v"}`), or NAN. */
double aas_test_metric(const char *text, const char *series);

typedef struct {
    int real;                 /* 1 = Apache Kafka via tools/kafka-local */
    aas_test_proc_t proc;     /* the dev broker (real == 0) */
    char bootstrap[256];
    char file[512];
    char kafka_dir[512];      /* tools/kafka-local --dir (real == 1) */
} aas_test_broker_t;

/**
 * @brief Start the broker the environment asks for: AAS_TEST_BROKER=kafka
 *        runs real Apache Kafka (tools/kafka-local, 1 broker; 3 with
 *        AAS_TEST_KAFKA_BROKERS=3) and creates the aas topics through
 *        Kafka's Admin API; anything else runs aas-devbroker from bin_dir.
 *        Waits for the bootstrap address (generous timeouts).
 */
int aas_test_broker_start(aas_test_broker_t *b, const char *bin_dir,
                          const char *dir, int partitions);
void aas_test_broker_stop(aas_test_broker_t *b);

/**
 * @brief Take the broker down (down = 1) or back up (0): the dev broker
 *        via SIGUSR1/SIGUSR2 (data kept), real Kafka by SIGKILL of node 1
 *        and `tools/kafka-local start-node` (data on disk).
 */
int aas_test_broker_outage(aas_test_broker_t *b, int down);

#endif
