/*
 * harness_redis.h - a real, private redis-server for one test program.
 *
 * aas_test_redis_start() runs `redis-server` (or $AAS_REDIS_SERVER) on a
 * free loopback port in a fresh temporary directory, with an append-only
 * file fsynced on every write (the durability the guarantees need),
 * optionally with requirepass, and waits until it answers PING.  The child
 * gets PR_SET_PDEATHSIG, so even a crashed test leaves no server behind;
 * aas_test_redis_stop() ends it and removes the directory.  For fault tests,
 * aas_test_redis_kill() kills it (SIGKILL, like a crash) and
 * aas_test_redis_restart() brings it back on the same port with what its
 * append-only file kept.
 *
 * aas_test_redis_cmd() is a tiny RESP client so tests can look at keys
 * (TTL, DBSIZE, HGET...) without linking hiredis.
 *
 * Not thread-safe per aas_test_redis_t; call start/stop from the thread
 * that will outlive the server (PDEATHSIG fires when the starting thread
 * exits).  Functions print what went wrong to stderr and return -1.
 */
#ifndef AAS_HARNESS_REDIS_H
#define AAS_HARNESS_REDIS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;          /* 0 when not running */
    int port;
    char dir[256];      /* temporary --dir, also holds redis.log */
    char password[64];  /* "" = no requirepass */
} aas_test_redis_t;

/**
 * @brief Start a server on a free port (tries random ports 20000..59999).
 * @param password_or_null requirepass value (< 64 bytes) or NULL.
 * @return 0 when it answers PING within 10 s, else -1 (nothing left over).
 */
int aas_test_redis_start(aas_test_redis_t *r, const char *password_or_null);

/** @brief SIGTERM (SIGKILL after 5 s), reap, remove dir. Safe to repeat. */
void aas_test_redis_stop(aas_test_redis_t *r);

/** @brief SIGKILL and reap, keeping port and dir (a crash). 0 or -1. */
int aas_test_redis_kill(aas_test_redis_t *r);

/** @brief Kill if running, then start again on the same port and dir. */
int aas_test_redis_restart(aas_test_redis_t *r);

/**
 * @brief Run one command (AUTH first if the server has a password) and
 *        render the reply into out: bulk/simple strings as their bytes,
 *        integers in decimal, nil as "(nil)", errors as "-ERR ...", arrays
 *        one element per line.  Truncated to out_size - 1.
 * @param ... the arguments as const char *, ending with NULL.
 * @return 0 if a reply came (even an error reply), -1 on I/O failure.
 */
int aas_test_redis_cmd(const aas_test_redis_t *r, char *out, size_t out_size,
                       const char *arg0, ...);

/** @brief aas_test_redis_cmd() and parse an integer reply; -1 on error. */
long long aas_test_redis_int(const aas_test_redis_t *r, const char *arg0,
                             ...);

#endif
