/*
 * test_store.c - the store against a real redis-server (harness_redis):
 * job state machine and write-once finish, waiting, TTLs, id validation,
 * the model registry and its serving options, AUTH, and reconnecting
 * after Redis dies.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness_proc.h"
#include "harness_redis.h"
#include "store.h"

typedef struct {
    aas_test_redis_t redis;   /* shared by the group */
    aas_test_redis_t extra;   /* per test (AUTH, kill), pid 0 when unused */
    aas_store_t *st;          /* per test */
    char errstr[512];
} fixture_t;

static void conf_for(aas_store_conf_t *c, const aas_test_redis_t *r) {
    aas_store_conf_init(c);
    c->port = r->port;
    c->timeout_ms = 2000;
}

static int group_setup(void **state) {
    /* A Redis that dies mid-write must not kill the test (see store.h). */
    signal(SIGPIPE, SIG_IGN);
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    if (aas_test_redis_start(&f->redis, NULL) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int group_teardown(void **state) {
    fixture_t *f = *state;
    aas_test_redis_stop(&f->redis);
    free(f);
    return 0;
}

static int setup(void **state) {
    fixture_t *f = *state;
    aas_store_conf_t c;
    conf_for(&c, &f->redis);
    memset(&f->extra, 0, sizeof(f->extra));
    if (aas_test_redis_cmd(&f->redis, NULL, 0, "FLUSHALL", NULL) != 0)
        return -1;
    return aas_store_new(&c, &f->st, f->errstr, sizeof(f->errstr)) ? -1 : 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    aas_store_destroy(f->st);
    f->st = NULL;
    if (f->extra.dir[0]) aas_test_redis_stop(&f->extra);
    return 0;
}

static long long ttl_of(fixture_t *f, const char *key) {
    return aas_test_redis_int(&f->redis, "TTL", key, NULL);
}

/* ---- jobs ------------------------------------------------------------ */

static void job_happy_path_sets_every_field(void **state) {
    fixture_t *f = *state;
    aas_job_info_t info;
    aas_status_t s = AAS_STATUS__COUNT;
    int written = -1;
    const char res[] = "\xc3\x01result\0bytes";
    void *buf = NULL;
    size_t len = 0;

    assert_int_equal(aas_store_job_queued(f->st, "job-1", "mlp", NULL, 1234,
                                          f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_get(f->st, "job-1", &info, f->errstr,
                                       sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(info.status, AAS_STATUS_QUEUED);
    assert_string_equal(info.model, "mlp");
    assert_int_equal(info.submit_ms, 1234);
    assert_true(info.queued_ms > 1600000000000LL);
    assert_int_equal(info.attempts, 0);
    aas_job_info_clear(&info);

    assert_int_equal(aas_store_job_start(f->st, "job-1", "w1", "mlp",
                                         "jobs/0@42", &s, NULL, f->errstr,
                                         sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_RUNNING);
    assert_int_equal(aas_store_job_get(f->st, "job-1", &info, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(info.status, AAS_STATUS_RUNNING);
    assert_int_equal(info.attempts, 1);
    assert_string_equal(info.worker, "w1");
    assert_string_equal(info.src, "jobs/0@42");
    assert_true(info.started_ms >= info.queued_ms);
    aas_job_info_clear(&info);

    assert_int_equal(aas_store_job_finish(f->st, "job-1", AAS_STATUS_SUCCEEDED,
                                          "3", res, sizeof(res), NULL,
                                          &written, f->errstr,
                                          sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(written, 1);
    assert_int_equal(aas_store_job_get(f->st, "job-1", &info, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(info.status, AAS_STATUS_SUCCEEDED);
    assert_string_equal(info.version, "3");
    assert_null(info.error);
    assert_int_equal(info.result_writes, 1);
    assert_int_equal(info.skips, 0);
    assert_true(info.finished_ms >= info.started_ms);
    aas_job_info_clear(&info);

    assert_int_equal(aas_store_result_get(f->st, "job-1", &buf, &len, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(len, sizeof(res));
    assert_memory_equal(buf, res, sizeof(res));
    free(buf);
    assert_int_equal(aas_test_redis_int(&f->redis, "LLEN", "aas:done:{job-1}",
                                        NULL),
                     1);
}

/* The harness runs Redis durably (appendonly yes, appendfsync always); the
 * worker warns at start when it is not. */
static void persistence_is_reported(void **state) {
    fixture_t *f = *state;
    aas_store_persistence_t p;
    assert_int_equal(aas_store_persistence(f->st, &p, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(p.aof, 1);
    assert_int_equal(p.fsync_always, 1);
    assert_int_equal(aas_test_redis_cmd(&f->redis, NULL, 0, "CONFIG", "SET", "appendfsync",
                                        "everysec", NULL),
                     0);
    assert_int_equal(aas_store_persistence(f->st, &p, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(p.aof, 1);
    assert_int_equal(p.fsync_always, 0);
    assert_int_equal(aas_test_redis_cmd(&f->redis, NULL, 0, "CONFIG", "SET", "appendonly",
                                        "no", NULL),
                     0);
    assert_int_equal(aas_store_persistence(f->st, &p, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(p.aof, 0);
    /* Back as the other tests expect. */
    aas_test_redis_cmd(&f->redis, NULL, 0, "CONFIG", "SET", "appendonly", "yes", NULL);
    aas_test_redis_cmd(&f->redis, NULL, 0, "CONFIG", "SET", "appendfsync", "always", NULL);
}

/* A redis-server of our own with the given persistence arguments (and
 * more, e.g. CONFIG renamed away), answering PING; 0 or -1. */
static int start_redis_as(aas_test_proc_t *p, aas_test_redis_t *r, char *dir,
                          const char *const *extra) {
    char port[16], log[320];
    if (!mkdtemp(dir)) return -1;
    r->port = aas_test_free_port();
    if (r->port < 0) return -1;
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    const char *argv[32] = {"sh", "-c", "exec \"${AAS_REDIS_SERVER:-redis-server}\" \"$@\"",
                            "sh", "--port", port, "--bind", "127.0.0.1", "--dir", dir};
    int n = 10;
    for (int i = 0; extra[i] && n < 31; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    if (aas_test_proc_start(p, "/bin/sh", (char *const *)argv, log) != 0) return -1;
    for (int i = 0; i < 200; i++) {
        char pong[16] = "";
        if (aas_test_redis_cmd(r, pong, sizeof(pong), "PING", NULL) == 0 &&
            strcmp(pong, "PONG") == 0)
            return 0;
        usleep(50 * 1000);
    }
    return -1;
}

static void persistence_of(fixture_t *f, const char *const *extra,
                           aas_store_persistence_t *out) {
    aas_test_proc_t proc = {0};
    aas_test_redis_t r = {0};
    char dir[] = "/tmp/aas-test-persist-XXXXXX";
    assert_int_equal(start_redis_as(&proc, &r, dir, extra), 0);
    aas_store_conf_t c;
    aas_store_t *st = NULL;
    conf_for(&c, &r);
    aas_err_t err = aas_store_new(&c, &st, f->errstr, sizeof(f->errstr));
    if (!err) err = aas_store_persistence(st, out, f->errstr, sizeof(f->errstr));
    aas_store_destroy(st);
    aas_test_proc_kill(&proc); /* no final save */
    char rm[300];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
    assert_int_equal(err, AAS_ERR_OK);
}

/* Servers started with each persistence setting, as the demo, the
 * benchmarks and compose run them, and one that refuses CONFIG. */
static void persistence_is_reported_as_started(void **state) {
    fixture_t *f = *state;
    aas_store_persistence_t p;
    static const char *none[] = {"--save", "", "--appendonly", "no", NULL};
    persistence_of(f, none, &p);
    assert_int_equal(p.aof, 0);
    assert_int_equal(p.fsync_always, 0); /* everysec, Redis's default */
    assert_int_equal(p.rdb, 0);
    static const char *snapshots[] = {"--save", "3600 1", "--appendonly", "no", NULL};
    persistence_of(f, snapshots, &p);
    assert_int_equal(p.aof, 0);
    assert_int_equal(p.rdb, 1);
    static const char *everysec[] = {"--save", "", "--appendonly", "yes",
                                     "--appendfsync", "everysec", NULL};
    persistence_of(f, everysec, &p);
    assert_int_equal(p.aof, 1);
    assert_int_equal(p.fsync_always, 0);
    static const char *compose[] = {"--save", "", "--appendonly", "yes", "--appendfsync",
                                    "always", "--maxmemory-policy", "noeviction", NULL};
    persistence_of(f, compose, &p);
    assert_int_equal(p.aof, 1);
    assert_int_equal(p.fsync_always, 1);
    assert_int_equal(p.rdb, 0);
    /* A managed Redis without CONFIG: INFO still tells AOF, the rest is
     * unknown, and that is not an error. */
    static const char *no_config[] = {"--save", "", "--appendonly", "yes",
                                      "--rename-command", "CONFIG", "", NULL};
    persistence_of(f, no_config, &p);
    assert_int_equal(p.aof, 1);
    assert_int_equal(p.fsync_always, -1);
    assert_int_equal(p.rdb, -1);
    /* Neither INFO nor CONFIG: all unknown, still not an error. */
    static const char *mute[] = {"--appendonly", "yes", "--rename-command", "CONFIG", "",
                                 "--rename-command", "INFO", "", NULL};
    persistence_of(f, mute, &p);
    assert_int_equal(p.aof, -1);
    assert_int_equal(p.fsync_always, -1);
    assert_int_equal(p.rdb, -1);
}

/* Only a Redis that cannot be reached is an error (retriable), and the
 * out-param is left alone. */
static void persistence_of_an_absent_redis_is_an_error(void **state) {
    fixture_t *f = *state;
    aas_test_proc_t proc = {0};
    aas_test_redis_t r = {0};
    char dir[] = "/tmp/aas-test-persist-XXXXXX";
    static const char *none[] = {"--save", "", "--appendonly", "no", NULL};
    assert_int_equal(start_redis_as(&proc, &r, dir, none), 0);
    aas_store_conf_t c;
    aas_store_t *st = NULL;
    conf_for(&c, &r);
    assert_int_equal(aas_store_new(&c, &st, f->errstr, sizeof(f->errstr)), AAS_ERR_OK);
    aas_test_proc_kill(&proc);
    aas_store_persistence_t p = {7, 7, 7};
    aas_err_t err = aas_store_persistence(st, &p, f->errstr, sizeof(f->errstr));
    aas_store_destroy(st);
    char rm[300];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
    assert_int_equal(err, AAS_ERR_REDIS);
    assert_true(aas_err_is_retriable(err));
    assert_int_equal(p.aof, 7);
    assert_int_equal(p.fsync_always, 7);
}

static void job_get_unknown_is_not_found(void **state) {
    fixture_t *f = *state;
    aas_job_info_t info;
    void *buf;
    size_t len;
    assert_int_equal(aas_store_job_get(f->st, "nope", &info, f->errstr,
                                       sizeof(f->errstr)),
                     AAS_ERR_NOT_FOUND);
    assert_int_equal(aas_store_result_get(f->st, "nope", &buf, &len, NULL, 0),
                     AAS_ERR_NOT_FOUND);
}

static void finish_twice_writes_once(void **state) {
    fixture_t *f = *state;
    int written = -1;
    void *buf;
    size_t len;
    aas_job_info_t info;
    assert_int_equal(aas_store_job_start(f->st, "j2", "w1", "m", NULL, NULL, NULL,
                                         NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_finish(f->st, "j2", AAS_STATUS_SUCCEEDED,
                                          "1", "first", 5, NULL, &written,
                                          NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(written, 1);
    assert_int_equal(aas_store_job_finish(f->st, "j2", AAS_STATUS_FAILED, "2",
                                          "second!", 7, "boom", &written,
                                          NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(written, 0);
    assert_int_equal(aas_store_job_get(f->st, "j2", &info, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(info.status, AAS_STATUS_SUCCEEDED);
    assert_int_equal(info.result_writes, 1);
    assert_string_equal(info.version, "1");
    assert_null(info.error);
    aas_job_info_clear(&info);
    assert_int_equal(aas_store_result_get(f->st, "j2", &buf, &len, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "first", 5);
    free(buf);
    assert_int_equal(aas_test_redis_int(&f->redis, "LLEN", "aas:done:{j2}",
                                        NULL),
                     1);
}

static void start_after_terminal_returns_it_and_counts_a_skip(void **state) {
    fixture_t *f = *state;
    aas_status_t s;
    aas_job_info_t info;
    assert_int_equal(aas_store_job_queued(f->st, "j3", "m", NULL, 1, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_finish(f->st, "j3", AAS_STATUS_CANCELLED,
                                          NULL, NULL, 0, "cancelled by user",
                                          NULL, NULL, 0),
                     AAS_ERR_OK);
    for (int i = 0; i < 2; i++) {
        s = AAS_STATUS_QUEUED;
        assert_int_equal(aas_store_job_start(f->st, "j3", "w9", "m2", "x",
                                             &s, NULL, NULL, 0),
                         AAS_ERR_OK);
        assert_int_equal(s, AAS_STATUS_CANCELLED);
    }
    assert_int_equal(aas_store_job_get(f->st, "j3", &info, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(info.status, AAS_STATUS_CANCELLED);
    assert_int_equal(info.skips, 2);
    assert_int_equal(info.attempts, 0);
    assert_null(info.worker);
    assert_string_equal(info.model, "m");
    assert_string_equal(info.error, "cancelled by user");
    assert_int_equal(info.result_writes, 1);
    aas_job_info_clear(&info);
    /* No result was given: no result key. */
    assert_int_equal(aas_test_redis_int(&f->redis, "EXISTS",
                                        "aas:result:{j3}", NULL),
                     0);
}

static void status_never_regresses(void **state) {
    fixture_t *f = *state;
    aas_status_t s;
    aas_job_info_t info;
    assert_int_equal(aas_store_job_start(f->st, "j4", "w1", "m", NULL, &s, NULL,
                                         NULL, 0),
                     AAS_ERR_OK);
    /* A late QUEUED (client raced the worker) does not undo RUNNING. */
    assert_int_equal(aas_store_job_queued(f->st, "j4", "m", NULL, 5, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_get(f->st, "j4", &info, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(info.status, AAS_STATUS_RUNNING);
    aas_job_info_clear(&info);
    /* A retry is RUNNING again, attempts 2, and says so. */
    int64_t attempts = 0;
    assert_int_equal(aas_store_job_start(f->st, "j4", "w2", NULL, NULL, &s,
                                         &attempts, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_RUNNING);
    assert_int_equal(attempts, 2);
    assert_int_equal(aas_store_job_finish(f->st, "j4", AAS_STATUS_FAILED,
                                          NULL, NULL, 0, "bad input", NULL,
                                          NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_queued(f->st, "j4", "m", NULL, 5, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_start(f->st, "j4", "w3", NULL, NULL, &s, NULL,
                                         NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_FAILED);
    assert_int_equal(aas_store_job_get(f->st, "j4", &info, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(info.status, AAS_STATUS_FAILED);
    assert_int_equal(info.attempts, 2);
    assert_string_equal(info.worker, "w2");
    assert_string_equal(info.error, "bad input");
    aas_job_info_clear(&info);
}

static void finish_rejects_non_terminal_and_oversized(void **state) {
    fixture_t *f = *state;
    assert_int_equal(aas_store_job_finish(f->st, "j5", AAS_STATUS_RUNNING,
                                          NULL, NULL, 0, NULL, NULL, f->errstr,
                                          sizeof(f->errstr)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_store_job_finish(f->st, "j5", AAS_STATUS_SUCCEEDED,
                                          NULL, "x", AAS_STORE_RESULT_MAX + 1,
                                          NULL, NULL, NULL, 0),
                     AAS_ERR_TOO_LARGE);
    assert_int_equal(aas_test_redis_int(&f->redis, "DBSIZE", NULL), 0);
}

static void ttl_is_set_on_all_keys(void **state) {
    fixture_t *f = *state;
    aas_store_conf_t c;
    aas_store_t *st;
    conf_for(&c, &f->redis);
    c.ttl_s = 600;
    assert_int_equal(aas_store_new(&c, &st, NULL, 0), AAS_ERR_OK);
    assert_int_equal(aas_store_job_queued(st, "t1", "m", NULL, 1, NULL, 0),
                     AAS_ERR_OK);
    long long t = ttl_of(f, "aas:job:{t1}");
    assert_true(t > 0 && t <= 600);
    assert_int_equal(aas_store_job_finish(st, "t1", AAS_STATUS_SUCCEEDED, NULL,
                                          "r", 1, NULL, NULL, NULL, 0),
                     AAS_ERR_OK);
    const char *keys[] = {"aas:job:{t1}", "aas:result:{t1}", "aas:done:{t1}"};
    for (int i = 0; i < 3; i++) {
        t = ttl_of(f, keys[i]);
        assert_true(t > 0 && t <= 600);
    }
    aas_store_destroy(st);
}

static void invalid_ids_are_rejected_without_touching_redis(void **state) {
    fixture_t *f = *state;
    char long_id[201];
    memset(long_id, 'a', 200);
    long_id[200] = '\0';
    const char *bad[] = {"a}b", "x y", "../a", "", "{x}", "a:b", ".a", "-a",
                         long_id, NULL};
    aas_job_info_t info;
    aas_status_t s;
    void *buf;
    size_t len;
    int64_t v;
    for (int i = 0; bad[i]; i++) {
        const char *id = bad[i];
        assert_int_equal(aas_store_job_queued(f->st, id, "m", NULL, 1, f->errstr,
                                              sizeof(f->errstr)),
                         AAS_ERR_INVAL);
        assert_non_null(strstr(f->errstr, "invalid"));
        assert_int_equal(aas_store_job_start(f->st, id, "w", "m", NULL, &s, NULL,
                                             NULL, 0),
                         AAS_ERR_INVAL);
        assert_int_equal(aas_store_job_finish(f->st, id, AAS_STATUS_FAILED,
                                              NULL, NULL, 0, "e", NULL, NULL,
                                              0),
                         AAS_ERR_INVAL);
        assert_int_equal(aas_store_job_get(f->st, id, &info, NULL, 0),
                         AAS_ERR_INVAL);
        assert_int_equal(aas_store_result_get(f->st, id, &buf, &len, NULL, 0),
                         AAS_ERR_INVAL);
        assert_int_equal(aas_store_job_wait(f->st, id, 10, &s, NULL, 0),
                         AAS_ERR_INVAL);
        assert_int_equal(aas_store_model_put(f->st, id, "b", 1, NULL, &v,
                                             NULL, 0),
                         AAS_ERR_INVAL);
        assert_int_equal(aas_store_model_latest(f->st, id, &v, NULL, 0),
                         AAS_ERR_INVAL);
        /* Bad names in the other id slots too. */
        assert_int_equal(aas_store_job_queued(f->st, "ok", id, NULL, 1, NULL, 0),
                         AAS_ERR_INVAL);
        assert_int_equal(aas_store_job_start(f->st, "ok", id, "m", NULL, &s, NULL,
                                             NULL, 0),
                         AAS_ERR_INVAL);
    }
    assert_int_equal(aas_store_job_queued(f->st, NULL, "m", NULL, 1, NULL, 0),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_test_redis_int(&f->redis, "DBSIZE", NULL), 0);
}

/* ---- waiting --------------------------------------------------------- */

typedef struct {
    int port;
    const char *job;
    int delay_ms;        /* finisher: sleep before finishing */
    int timeout_ms;      /* waiter */
    aas_err_t err;
    aas_status_t status;
    int64_t took_ms;
} waiter_t;

static void *waiter_main(void *arg) {
    waiter_t *w = arg;
    aas_store_conf_t c;
    aas_store_t *st;
    aas_store_conf_init(&c);
    c.port = w->port;
    w->err = aas_store_new(&c, &st, NULL, 0);
    if (w->err) return NULL;
    int64_t t0 = aas_mono_us();
    w->err = aas_store_job_wait(st, w->job, w->timeout_ms, &w->status, NULL,
                                0);
    w->took_ms = (aas_mono_us() - t0) / 1000;
    aas_store_destroy(st);
    return NULL;
}

static void *finisher_main(void *arg) {
    waiter_t *w = arg;
    aas_store_conf_t c;
    aas_store_t *st;
    aas_store_conf_init(&c);
    c.port = w->port;
    usleep((useconds_t)w->delay_ms * 1000);
    w->err = aas_store_new(&c, &st, NULL, 0);
    if (w->err) return NULL;
    w->err = aas_store_job_finish(st, w->job, AAS_STATUS_SUCCEEDED, NULL, "ok",
                                  2, NULL, NULL, NULL, 0);
    aas_store_destroy(st);
    return NULL;
}

static void wait_returns_at_once_when_terminal(void **state) {
    fixture_t *f = *state;
    aas_status_t s;
    assert_int_equal(aas_store_job_finish(f->st, "w0", AAS_STATUS_EXPIRED,
                                          NULL, NULL, 0, "deadline", NULL,
                                          NULL, 0),
                     AAS_ERR_OK);
    int64_t t0 = aas_mono_us();
    assert_int_equal(aas_store_job_wait(f->st, "w0", 5000, &s, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_EXPIRED);
    assert_true(aas_mono_us() - t0 < 1000000);
    assert_int_equal(aas_store_job_wait(f->st, "w0", 0, &s, NULL, 0),
                     AAS_ERR_OK);
}

/* The result with the wait: at once when terminal, AAS_ERR_TIMEOUT when
 * not, AAS_ERR_NOT_FOUND (status set) for a terminal job without one. */
static void result_wait_reads_the_result_when_terminal(void **state) {
    fixture_t *f = *state;
    aas_status_t s = AAS_STATUS_QUEUED;
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(aas_store_job_queued(f->st, "rw1", "m", NULL, 1, NULL, 0), AAS_ERR_OK);
    assert_int_equal(aas_store_result_wait(f->st, "rw1", 300, 0, &s, &buf, &len, f->errstr,
                                           sizeof(f->errstr)),
                     AAS_ERR_TIMEOUT);
    assert_non_null(strstr(f->errstr, "QUEUED"));
    assert_null(buf);
    assert_int_equal(aas_store_job_finish(f->st, "rw1", AAS_STATUS_SUCCEEDED, "1", "abc", 3,
                                          NULL, NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_result_wait(f->st, "rw1", 5000, 0, &s, &buf, &len, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_SUCCEEDED);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "abc", 3);
    free(buf);
    buf = NULL;
    assert_int_equal(aas_store_job_finish(f->st, "rw2", AAS_STATUS_EXPIRED, NULL, NULL, 0,
                                          "deadline", NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_result_wait(f->st, "rw2", 5000, 0, &s, &buf, &len, NULL, 0),
                     AAS_ERR_NOT_FOUND);
    assert_int_equal(s, AAS_STATUS_EXPIRED);
    assert_null(buf);
    /* AAS_STORE_WAIT_FRESH blocks first: a job not done times out the
     * same, and a terminal one answers at once from its token. */
    assert_int_equal(aas_store_job_queued(f->st, "rw3", "m", NULL, 1, NULL, 0), AAS_ERR_OK);
    assert_int_equal(aas_store_result_wait(f->st, "rw3", 300, AAS_STORE_WAIT_FRESH, &s, &buf,
                                           &len, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_TIMEOUT);
    assert_non_null(strstr(f->errstr, "QUEUED"));
    assert_int_equal(aas_store_job_finish(f->st, "rw3", AAS_STATUS_SUCCEEDED, "1", "xyz", 3,
                                          NULL, NULL, NULL, 0),
                     AAS_ERR_OK);
    int64_t t0 = aas_mono_us();
    assert_int_equal(aas_store_result_wait(f->st, "rw3", 5000, AAS_STORE_WAIT_FRESH, &s, &buf,
                                           &len, NULL, 0),
                     AAS_ERR_OK);
    assert_true(aas_mono_us() - t0 < 1000000);
    assert_int_equal(s, AAS_STATUS_SUCCEEDED);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "xyz", 3);
    free(buf);
}

/* Terminal writes publish the job's id on <prefix>done: a subscriber
 * hears of a finish and of a QUEUED job cancelled, and nothing else. */
static void terminal_writes_publish_the_id(void **state) {
    fixture_t *f = *state;
    aas_store_conf_t c;
    conf_for(&c, &f->redis);
    aas_store_t *sub = NULL;
    assert_int_equal(aas_store_new(&c, &sub, f->errstr, sizeof(f->errstr)), AAS_ERR_OK);
    assert_int_equal(aas_store_done_subscribe(sub, f->errstr, sizeof(f->errstr)), AAS_ERR_OK);
    char ids[4][AAS_ID_MAX + 1];
    size_t n = 9;
    assert_int_equal(aas_store_done_read(sub, 100, ids, 4, &n, NULL, 0), AAS_ERR_OK);
    assert_int_equal(n, 0); /* quiet: a timeout, not an error */
    assert_int_equal(aas_store_job_queued(f->st, "nt1", "m", NULL, 1, NULL, 0), AAS_ERR_OK);
    assert_int_equal(aas_store_job_finish(f->st, "nt1", AAS_STATUS_SUCCEEDED, "1", "r", 1,
                                          NULL, NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_done_read(sub, 5000, ids, 4, &n, NULL, 0), AAS_ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "nt1");
    /* A finish of a terminal job writes nothing and publishes nothing. */
    assert_int_equal(aas_store_job_finish(f->st, "nt1", AAS_STATUS_FAILED, NULL, NULL, 0,
                                          "late", NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_queued(f->st, "nt2", "m", NULL, 1, NULL, 0), AAS_ERR_OK);
    aas_status_t s;
    assert_int_equal(aas_store_job_cancel(f->st, "nt2", NULL, 0, &s, NULL, 0), AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_CANCELLED);
    assert_int_equal(aas_store_done_read(sub, 5000, ids, 4, &n, NULL, 0), AAS_ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "nt2");
    aas_store_destroy(sub);
}

/* The scheduler lease: one owner per group, renewed by it, refused to
 * others (who learn the holder), released only by its owner. */
static void lease_has_one_owner_per_group(void **state) {
    fixture_t *f = *state;
    char holder[128];
    int held = -1;
    int64_t left = -1;
    assert_int_equal(aas_store_lease(f->st, "g1", "a", 10000, &held, holder, sizeof(holder),
                                     &left, NULL, 0), AAS_ERR_OK);
    assert_int_equal(held, 1);
    assert_int_equal(aas_store_lease(f->st, "g1", "b", 10000, &held, holder, sizeof(holder),
                                     &left, NULL, 0), AAS_ERR_OK);
    assert_int_equal(held, 0);
    assert_string_equal(holder, "a");
    assert_true(left > 0 && left <= 10000);
    assert_int_equal(aas_store_lease(f->st, "g2", "b", 10000, &held, NULL, 0, NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(held, 1); /* another group */
    assert_int_equal(aas_store_lease(f->st, "g1", "a", 20000, &held, NULL, 0, NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(held, 1); /* renewed */
    assert_int_equal(aas_store_lease_holder(f->st, "g1", holder, sizeof(holder), &left, NULL,
                                            0), AAS_ERR_OK);
    assert_string_equal(holder, "a");
    assert_true(left > 10000);
    /* b's release of a's lease does nothing; a's frees it. */
    assert_int_equal(aas_store_lease(f->st, "g1", "b", 0, &held, NULL, 0, NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_lease_holder(f->st, "g1", holder, sizeof(holder), &left, NULL,
                                            0), AAS_ERR_OK);
    assert_string_equal(holder, "a");
    assert_int_equal(aas_store_lease(f->st, "g1", "a", 0, &held, NULL, 0, NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_lease_holder(f->st, "g1", holder, sizeof(holder), &left, NULL,
                                            0), AAS_ERR_OK);
    assert_string_equal(holder, "");
    assert_int_equal(left, 0);
    assert_int_equal(aas_store_lease(f->st, "g1", "b", 10000, &held, NULL, 0, NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(held, 1);
    assert_int_equal(aas_store_lease(f->st, "bad group", "b", 10000, &held, NULL, 0, NULL, NULL,
                                     0), AAS_ERR_INVAL);
}

static void wait_wakes_when_another_connection_finishes(void **state) {
    fixture_t *f = *state;
    aas_status_t s = AAS_STATUS_QUEUED;
    /* Longer than the 2000 ms command timeout: the blocking call must
     * extend the socket timeout. */
    waiter_t fin = {.port = f->redis.port, .job = "w1", .delay_ms = 2300};
    pthread_t th;
    assert_int_equal(aas_store_job_queued(f->st, "w1", "m", NULL, 1, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(pthread_create(&th, NULL, finisher_main, &fin), 0);
    int64_t t0 = aas_mono_us();
    aas_err_t err = aas_store_job_wait(f->st, "w1", 10000, &s, f->errstr,
                                       sizeof(f->errstr));
    int64_t took = (aas_mono_us() - t0) / 1000;
    pthread_join(th, NULL);
    assert_int_equal(fin.err, AAS_ERR_OK);
    assert_int_equal(err, AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_SUCCEEDED);
    assert_true(took >= 2200 && took < 8000);
    /* The token is back for the next waiter, and the handle still works
     * with its normal timeout. */
    assert_int_equal(aas_test_redis_int(&f->redis, "LLEN", "aas:done:{w1}",
                                        NULL),
                     1);
    assert_int_equal(aas_store_job_queued(f->st, "w1b", "m", NULL, 1, NULL, 0),
                     AAS_ERR_OK);
}

static void wait_times_out_with_timeout_error(void **state) {
    fixture_t *f = *state;
    aas_status_t s = AAS_STATUS__COUNT;
    assert_int_equal(aas_store_job_start(f->st, "w2", "w", "m", NULL, NULL, NULL,
                                         NULL, 0),
                     AAS_ERR_OK);
    int64_t t0 = aas_mono_us();
    aas_err_t err = aas_store_job_wait(f->st, "w2", 300, &s, f->errstr,
                                       sizeof(f->errstr));
    int64_t took = (aas_mono_us() - t0) / 1000;
    assert_int_equal(err, AAS_ERR_TIMEOUT);
    assert_true(aas_err_is_retriable(err));
    assert_int_equal(s, AAS_STATUS__COUNT); /* untouched on failure */
    assert_non_null(strstr(f->errstr, "RUNNING"));
    assert_true(took >= 250 && took < 3000);
    /* Unknown jobs time out too (may not be recorded yet). */
    assert_int_equal(aas_store_job_wait(f->st, "never", 50, &s, NULL, 0),
                     AAS_ERR_TIMEOUT);
    assert_int_equal(aas_store_job_wait(f->st, "w2", -1, &s, NULL, 0),
                     AAS_ERR_INVAL);
}

/* A token on a job that is not terminal (hash gone, id reused) must not
 * wake the waiter over and over: it is taken away, the wait times out,
 * and a real finish afterwards wakes the next waiter at once. */
static void stray_token_is_dropped_not_spun_on(void **state) {
    fixture_t *f = *state;
    aas_status_t s;
    assert_int_equal(aas_store_job_start(f->st, "w9", "w", "m", NULL, NULL, NULL,
                                         NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_test_redis_int(&f->redis, "RPUSH", "aas:done:{w9}", "SUCCEEDED",
                                        NULL),
                     1);
    int64_t t0 = aas_mono_us();
    assert_int_equal(aas_store_job_wait(f->st, "w9", 400, &s, NULL, 0), AAS_ERR_TIMEOUT);
    assert_true(aas_mono_us() - t0 >= 350000);
    assert_int_equal(aas_test_redis_int(&f->redis, "LLEN", "aas:done:{w9}", NULL), 0);
    assert_int_equal(aas_store_job_finish(f->st, "w9", AAS_STATUS_SUCCEEDED, NULL, "r", 1,
                                          NULL, NULL, NULL, 0),
                     AAS_ERR_OK);
    t0 = aas_mono_us();
    assert_int_equal(aas_store_job_wait(f->st, "w9", 5000, &s, NULL, 0), AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_SUCCEEDED);
    assert_true(aas_mono_us() - t0 < 1000000);
}

/* The waiter's one-trip read: nothing until terminal, then status and
 * bytes together; terminal without a result says so. */
static void result_if_done_reads_status_and_bytes_at_once(void **state) {
    fixture_t *f = *state;
    int done = -1;
    aas_status_t s = AAS_STATUS__COUNT;
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(aas_store_result_if_done(f->st, "rd1", &done, &s, &buf, &len, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(done, 0); /* unknown */
    assert_int_equal(aas_store_job_start(f->st, "rd1", "w", "m", NULL, NULL, NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_result_if_done(f->st, "rd1", &done, &s, &buf, &len, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(done, 0); /* RUNNING */
    assert_null(buf);
    assert_int_equal(aas_store_job_finish(f->st, "rd1", AAS_STATUS_SUCCEEDED, "3", "abc\0d",
                                          5, NULL, NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_result_if_done(f->st, "rd1", &done, &s, &buf, &len, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(done, 1);
    assert_int_equal(s, AAS_STATUS_SUCCEEDED);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "abc\0d", 5);
    free(buf);
    buf = NULL;
    assert_int_equal(aas_store_job_finish(f->st, "rd2", AAS_STATUS_EXPIRED, NULL, NULL, 0,
                                          "late", NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_result_if_done(f->st, "rd2", &done, &s, &buf, &len,
                                              f->errstr, sizeof(f->errstr)),
                     AAS_ERR_NOT_FOUND);
    assert_int_equal(s, AAS_STATUS_EXPIRED);
    assert_int_equal(done, 0);
    assert_null(buf);
}

static void two_waiters_both_wake(void **state) {
    fixture_t *f = *state;
    waiter_t w[2], fin = {.port = f->redis.port, .job = "w3", .delay_ms = 400};
    pthread_t th[3];
    assert_int_equal(aas_store_job_queued(f->st, "w3", "m", NULL, 1, NULL, 0),
                     AAS_ERR_OK);
    for (int i = 0; i < 2; i++) {
        w[i] = (waiter_t){.port = f->redis.port, .job = "w3",
                          .timeout_ms = 10000, .err = AAS_ERR__COUNT};
        assert_int_equal(pthread_create(&th[i], NULL, waiter_main, &w[i]), 0);
    }
    assert_int_equal(pthread_create(&th[2], NULL, finisher_main, &fin), 0);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    assert_int_equal(fin.err, AAS_ERR_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(w[i].err, AAS_ERR_OK);
        assert_int_equal(w[i].status, AAS_STATUS_SUCCEEDED);
        assert_true(w[i].took_ms < 5000);
    }
    assert_int_equal(aas_test_redis_int(&f->redis, "LLEN", "aas:done:{w3}",
                                        NULL),
                     1);
}

static void wait_pushback_keeps_the_token_and_its_ttl(void **state) {
    fixture_t *f = *state;
    waiter_t w = {.port = f->redis.port, .job = "w4", .timeout_ms = 10000,
                  .err = AAS_ERR__COUNT};
    pthread_t th;
    assert_int_equal(aas_store_job_start(f->st, "w4", "w", "m", NULL, NULL, NULL,
                                         NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(pthread_create(&th, NULL, waiter_main, &w), 0);
    usleep(300 * 1000); /* let it block in the pop */
    assert_int_equal(aas_store_job_finish(f->st, "w4", AAS_STATUS_SUCCEEDED,
                                          NULL, "r", 1, NULL, NULL, NULL, 0),
                     AAS_ERR_OK);
    pthread_join(th, NULL);
    assert_int_equal(w.err, AAS_ERR_OK);
    assert_int_equal(w.status, AAS_STATUS_SUCCEEDED);
    /* The rotation kept the token and the list's TTL. */
    assert_int_equal(aas_test_redis_int(&f->redis, "LLEN", "aas:done:{w4}",
                                        NULL),
                     1);
    long long t = ttl_of(f, "aas:done:{w4}");
    assert_true(t > 0 && t <= 86400);
}

/* ---- model registry -------------------------------------------------- */

static void model_registry_put_get_versions_meta_delete(void **state) {
    fixture_t *f = *state;
    int64_t v = 0, created = 0, *vs = NULL;
    size_t n = 0, len = 0;
    void *blob = NULL;
    char *meta = NULL, **names = NULL;

    assert_int_equal(aas_store_model_put(f->st, "iris", "blob-one", 8,
                                         "{\"a\":1}", &v, f->errstr,
                                         sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(v, 1);
    assert_int_equal(aas_store_model_put(f->st, "iris", "blob\0two", 8, NULL,
                                         &v, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(v, 2);
    assert_int_equal(aas_store_model_put(f->st, "digits", "d", 1, NULL, &v,
                                         NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(v, 1);

    assert_int_equal(aas_store_model_latest(f->st, "iris", &v, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(v, 2);
    assert_int_equal(aas_store_model_get(f->st, "iris", 0, 1024, &blob, &len,
                                         &v, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(v, 2);
    assert_int_equal(len, 8);
    assert_memory_equal(blob, "blob\0two", 8);
    free(blob);
    assert_int_equal(aas_store_model_get(f->st, "iris", 1, 1024, &blob, &len,
                                         &v, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(v, 1);
    assert_memory_equal(blob, "blob-one", 8);
    free(blob);

    assert_int_equal(aas_store_model_versions(f->st, "iris", &vs, &n, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(vs[0], 1);
    assert_int_equal(vs[1], 2);
    free(vs);

    assert_int_equal(aas_store_model_meta(f->st, "iris", 1, &meta, &created,
                                          NULL, 0),
                     AAS_ERR_OK);
    assert_string_equal(meta, "{\"a\":1}");
    assert_true(created > 1600000000000LL);
    free(meta);
    meta = (char *)"untouched";
    assert_int_equal(aas_store_model_meta(f->st, "iris", 0, &meta, NULL, NULL,
                                          0),
                     AAS_ERR_OK);
    assert_null(meta); /* v2 has none */

    assert_int_equal(aas_store_model_list(f->st, &names, &n, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "digits");
    assert_string_equal(names[1], "iris");
    aas_store_model_list_free(names, n);

    /* Deleting latest moves latest to the highest remaining version. */
    assert_int_equal(aas_store_model_delete(f->st, "iris", 2, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_model_latest(f->st, "iris", &v, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(v, 1);
    assert_int_equal(aas_store_model_get(f->st, "iris", 2, 1024, &blob, &len,
                                         &v, NULL, 0),
                     AAS_ERR_UNKNOWN_MODEL);
    assert_int_equal(aas_store_model_delete(f->st, "iris", 2, NULL, 0),
                     AAS_ERR_UNKNOWN_MODEL);
    assert_int_equal(aas_store_model_delete(f->st, "iris", 0, NULL, 0),
                     AAS_ERR_INVAL);
    /* Deleting a non-latest version leaves latest alone. */
    assert_int_equal(aas_store_model_put(f->st, "iris", "three", 5, NULL, &v,
                                         NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(v, 3); /* never reuses 2 */
    assert_int_equal(aas_store_model_delete(f->st, "iris", 1, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_model_latest(f->st, "iris", &v, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(v, 3);
    /* The last delete removes the name from the list. */
    assert_int_equal(aas_store_model_delete(f->st, "iris", 3, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_model_latest(f->st, "iris", &v, NULL, 0),
                     AAS_ERR_UNKNOWN_MODEL);
    assert_int_equal(aas_store_model_versions(f->st, "iris", &vs, &n, NULL, 0),
                     AAS_ERR_UNKNOWN_MODEL);
    assert_int_equal(aas_store_model_list(f->st, &names, &n, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "digits");
    aas_store_model_list_free(names, n);
    assert_int_equal(aas_store_model_put(f->st, "iris", "four", 4, NULL, &v,
                                         NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(v, 4);
}

static void model_get_unknown_is_unknown_model(void **state) {
    fixture_t *f = *state;
    void *blob;
    size_t len;
    int64_t v;
    char *meta;
    assert_int_equal(aas_store_model_get(f->st, "ghost", 0, 1024, &blob, &len,
                                         &v, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_UNKNOWN_MODEL);
    assert_non_null(strstr(f->errstr, "ghost"));
    assert_int_equal(aas_store_model_get(f->st, "ghost", 7, 1024, &blob, &len,
                                         &v, NULL, 0),
                     AAS_ERR_UNKNOWN_MODEL);
    assert_int_equal(aas_store_model_meta(f->st, "ghost", 0, &meta, NULL, NULL,
                                          0),
                     AAS_ERR_UNKNOWN_MODEL);
    assert_int_equal(aas_store_model_put(f->st, "real", "x", 1, NULL, &v, NULL,
                                         0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_model_get(f->st, "real", 9, 1024, &blob, &len,
                                         &v, NULL, 0),
                     AAS_ERR_UNKNOWN_MODEL);
}

static void model_blob_larger_than_max_len_is_rejected(void **state) {
    fixture_t *f = *state;
    char big[4096];
    void *blob = NULL;
    size_t len = 0;
    int64_t v = 0;
    memset(big, 7, sizeof(big));
    assert_int_equal(aas_store_model_put(f->st, "big", big, sizeof(big), NULL,
                                         &v, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_model_get(f->st, "big", 0, 4095, &blob, &len,
                                         &v, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_TOO_LARGE);
    assert_null(blob);
    assert_non_null(strstr(f->errstr, "4096"));
    assert_int_equal(aas_store_model_get(f->st, "big", 0, 4096, &blob, &len,
                                         &v, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(len, 4096);
    free(blob);
    assert_int_equal(aas_store_model_put(f->st, "big", big, 0, NULL, &v, NULL,
                                         0),
                     AAS_ERR_INVAL);
}

/* ---- serving options ------------------------------------------------- */

static void model_serving_options_round_trip_per_name(void **state) {
    fixture_t *f = *state;
    aas_store_model_opts_t o, got;
    char out[64];
    int64_t v = 0, *vs = NULL;
    size_t n = 0;

    /* None stored, no model at all: everything "not set". */
    memset(&got, 0x55, sizeof(got));
    assert_int_equal(aas_store_model_opts_get(f->st, "iris", &got, f->errstr,
                                              sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_string_equal(got.precision, "");
    assert_int_equal(got.batch_max_rows, -1);
    assert_int_equal(got.batch_max_delay_us, -1);

    /* Set before the first version (as register does); a name with
     * options only is still no model. */
    aas_store_model_opts_init(&o);
    strcpy(o.precision, "bf16");
    o.batch_max_rows = 32;
    o.batch_max_delay_us = 500;
    assert_int_equal(aas_store_model_opts_set(f->st, "iris", &o,
                                              AAS_STORE_OPT_ALL, f->errstr,
                                              sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_model_latest(f->st, "iris", &v, NULL, 0),
                     AAS_ERR_UNKNOWN_MODEL);
    assert_int_equal(aas_store_model_versions(f->st, "iris", &vs, &n, NULL, 0),
                     AAS_ERR_UNKNOWN_MODEL);
    assert_int_equal(aas_store_model_opts_get(f->st, "iris", &got, NULL, 0),
                     AAS_ERR_OK);
    assert_string_equal(got.precision, "bf16");
    assert_int_equal(got.batch_max_rows, 32);
    assert_int_equal(got.batch_max_delay_us, 500);
    /* The documented layout: plain hash fields other languages can read. */
    assert_int_equal(aas_test_redis_cmd(&f->redis, out, sizeof(out), "HGET",
                                        "aas:model:{iris}", "opt:precision",
                                        NULL),
                     0);
    assert_string_equal(out, "bf16");
    assert_int_equal(aas_test_redis_cmd(&f->redis, out, sizeof(out), "HGET",
                                        "aas:model:{iris}",
                                        "opt:batch_max_delay_us", NULL),
                     0);
    assert_string_equal(out, "500");

    /* New versions keep them; only the fields named change. */
    assert_int_equal(aas_store_model_put(f->st, "iris", "blob", 4, NULL, &v,
                                         NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(v, 1);
    aas_store_model_opts_init(&o);
    strcpy(o.precision, "int8");
    o.batch_max_rows = 4096; /* not named below: ignored */
    assert_int_equal(aas_store_model_opts_set(f->st, "iris", &o,
                                              AAS_STORE_OPT_PRECISION, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_model_opts_get(f->st, "iris", &got, NULL, 0),
                     AAS_ERR_OK);
    assert_string_equal(got.precision, "int8");
    assert_int_equal(got.batch_max_rows, 32);
    assert_int_equal(got.batch_max_delay_us, 500);

    /* A named field that is not set is removed; a set one written in the
     * same call.  Edge values are valid. */
    aas_store_model_opts_init(&o);
    o.batch_max_delay_us = 0;
    assert_int_equal(aas_store_model_opts_set(f->st, "iris", &o,
                                              AAS_STORE_OPT_BATCH_ROWS |
                                                  AAS_STORE_OPT_BATCH_DELAY,
                                              NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_test_redis_int(&f->redis, "HEXISTS", "aas:model:{iris}",
                                        "opt:batch_max_rows", NULL),
                     0);
    assert_int_equal(aas_store_model_opts_get(f->st, "iris", &got, NULL, 0),
                     AAS_ERR_OK);
    assert_string_equal(got.precision, "int8");
    assert_int_equal(got.batch_max_rows, -1);
    assert_int_equal(got.batch_max_delay_us, 0);
    o.batch_max_rows = 1;
    o.batch_max_delay_us = 1000000;
    assert_int_equal(aas_store_model_opts_set(f->st, "iris", &o,
                                              AAS_STORE_OPT_ALL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_model_opts_get(f->st, "iris", &got, NULL, 0),
                     AAS_ERR_OK);
    assert_string_equal(got.precision, ""); /* cleared: back to f32 */
    assert_int_equal(got.batch_max_rows, 1);
    assert_int_equal(got.batch_max_delay_us, 1000000);

    /* They belong to the name: deleting every version keeps them, and the
     * other registry reads do not see them as versions. */
    assert_int_equal(aas_store_model_versions(f->st, "iris", &vs, &n, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(n, 1);
    free(vs);
    assert_int_equal(aas_store_model_delete(f->st, "iris", 1, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_model_opts_get(f->st, "iris", &got, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(got.batch_max_rows, 1);
    /* Other models are untouched. */
    assert_int_equal(aas_store_model_opts_get(f->st, "digits", &got, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(got.batch_max_rows, -1);
}

static void model_serving_options_bad_values_are_refused_on_write(void **state) {
    fixture_t *f = *state;
    aas_store_model_opts_t o;
    static const struct { const char *precision; int32_t rows, delay;
                           const char *needle; } bad[] = {
        {"fp16", -1, -1, "fp16"},      {"F32", -1, -1, "F32"},
        {"", 0, -1, "batch_max_rows"}, {"", 4097, -1, "4097"},
        {"", -7, -1, "-7"},            {"", -1, -2, "batch_max_delay_us"},
        {"", -1, 1000001, "1000001"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aas_store_model_opts_init(&o);
        strcpy(o.precision, bad[i].precision);
        o.batch_max_rows = bad[i].rows;
        o.batch_max_delay_us = bad[i].delay;
        f->errstr[0] = '\0';
        assert_int_equal(aas_store_model_opts_set(f->st, "iris", &o,
                                                  AAS_STORE_OPT_ALL, f->errstr,
                                                  sizeof(f->errstr)),
                         AAS_ERR_INVAL);
        assert_non_null(strstr(f->errstr, bad[i].needle));
        assert_non_null(strstr(f->errstr, "iris"));
        assert_int_equal(aas_store_model_opts_check(&o, AAS_STORE_OPT_ALL, NULL,
                                                    0),
                         AAS_ERR_INVAL);
    }
    /* An unterminated precision is refused, not read past its end. */
    aas_store_model_opts_init(&o);
    memset(o.precision, 'b', sizeof(o.precision));
    assert_int_equal(aas_store_model_opts_set(f->st, "iris", &o,
                                              AAS_STORE_OPT_PRECISION, NULL, 0),
                     AAS_ERR_INVAL);
    /* Only the named fields are checked. */
    aas_store_model_opts_init(&o);
    o.batch_max_rows = 0;
    assert_int_equal(aas_store_model_opts_check(&o, AAS_STORE_OPT_PRECISION,
                                                NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_model_opts_check(&o, 8u, NULL, 0), AAS_ERR_INVAL);
    aas_store_model_opts_init(&o);
    assert_int_equal(aas_store_model_opts_set(f->st, "bad:name", &o,
                                              AAS_STORE_OPT_ALL, NULL, 0),
                     AAS_ERR_INVAL);
    /* Nothing reached Redis. */
    assert_int_equal(aas_test_redis_int(&f->redis, "DBSIZE", NULL), 0);
}

static void model_serving_options_corrupt_in_redis_are_a_decode_error(
    void **state) {
    fixture_t *f = *state;
    static const struct { const char *field, *value, *needle; } bad[] = {
        {"opt:precision", "fp8", "'fp8'"},
        {"opt:precision", "", "opt:precision"},
        {"opt:precision", "bf16 ", "'bf16 '"},
        {"opt:precision", "a-very-long-precision-name", "opt:precision"},
        {"opt:precision", "bf\x01" "6", "'bf?6'"},
        {"opt:batch_max_rows", "0", "'0'"},
        {"opt:batch_max_rows", "4097", "1..4096"},
        {"opt:batch_max_rows", " 5", "opt:batch_max_rows"},
        {"opt:batch_max_rows", "5x", "'5x'"},
        {"opt:batch_max_rows", "99999999999999999999", "opt:batch_max_rows"},
        {"opt:batch_max_delay_us", "-1", "'-1'"},
        {"opt:batch_max_delay_us", "1e3", "0..1000000"},
    };
    aas_store_model_opts_t o;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(aas_test_redis_cmd(&f->redis, NULL, 0, "DEL",
                                            "aas:model:{iris}", NULL),
                         0);
        assert_int_equal(aas_test_redis_cmd(&f->redis, NULL, 0, "HSET",
                                            "aas:model:{iris}", bad[i].field,
                                            bad[i].value, NULL),
                         0);
        memset(&o, 0x55, sizeof(o));
        f->errstr[0] = '\0';
        assert_int_equal(aas_store_model_opts_get(f->st, "iris", &o, f->errstr,
                                                  sizeof(f->errstr)),
                         AAS_ERR_DECODE);
        if (!strstr(f->errstr, bad[i].needle) || !strstr(f->errstr, "iris") ||
            !strstr(f->errstr, bad[i].field))
            fail_msg("case %zu: errstr '%s'", i, f->errstr);
        assert_int_equal(o.batch_max_rows, 0x55555555); /* untouched */
    }
    /* Fixed by hand: readable again. */
    assert_int_equal(aas_test_redis_cmd(&f->redis, NULL, 0, "HSET",
                                        "aas:model:{iris}",
                                        "opt:batch_max_delay_us", "250", NULL),
                     0);
    assert_int_equal(aas_store_model_opts_get(f->st, "iris", &o, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(o.batch_max_delay_us, 250);
    assert_int_equal(o.batch_max_rows, -1);
}

/* ---- AUTH ------------------------------------------------------------ */

static void auth_right_wrong_and_missing_password(void **state) {
    fixture_t *f = *state;
    aas_store_conf_t c;
    aas_store_t *st = NULL;
    aas_status_t s;
    const char *pw = "s3cret-Pw";
    assert_int_equal(aas_test_redis_start(&f->extra, pw), 0);
    conf_for(&c, &f->extra);

    c.password = pw;
    assert_int_equal(aas_store_new(&c, &st, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_start(st, "a1", "w", "m", NULL, &s, NULL, NULL,
                                         0),
                     AAS_ERR_OK);
    aas_store_destroy(st);

    c.user = "default"; /* ACL form: AUTH user password */
    assert_int_equal(aas_store_new(&c, &st, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    aas_store_destroy(st);

    c.user = NULL;
    c.password = "not-the-password";
    st = NULL;
    assert_int_equal(aas_store_new(&c, &st, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_INVAL);
    assert_null(st);
    assert_non_null(strstr(f->errstr, "Redis AUTH failed"));
    assert_non_null(strstr(f->errstr, "WRONGPASS"));
    assert_null(strstr(f->errstr, "not-the-password"));

    c.password = NULL;
    assert_int_equal(aas_store_new(&c, &st, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_INVAL);
    assert_null(st);
    assert_non_null(strstr(f->errstr, "AUTH"));

    c.user = "bob"; /* a user without a password is a config error */
    assert_int_equal(aas_store_new(&c, &st, NULL, 0), AAS_ERR_INVAL);
}

static void store_new_reports_unreachable_redis(void **state) {
    fixture_t *f = *state;
    aas_store_conf_t c;
    aas_store_t *st = NULL;
    aas_store_conf_init(&c);
    c.port = 1; /* nothing listens there */
    c.timeout_ms = 500;
    aas_err_t err = aas_store_new(&c, &st, f->errstr, sizeof(f->errstr));
    assert_int_equal(err, AAS_ERR_REDIS);
    assert_true(aas_err_is_retriable(err));
    assert_non_null(strstr(f->errstr, "127.0.0.1:1"));
    c.port = 6379;
    c.prefix = "a{b}";
    assert_int_equal(aas_store_new(&c, &st, NULL, 0), AAS_ERR_INVAL);
    assert_null(st);
}

/* ---- faults ---------------------------------------------------------- */

static void redis_killed_gives_redis_error_then_reconnects(void **state) {
    fixture_t *f = *state;
    aas_store_conf_t c;
    aas_store_t *st;
    aas_status_t s;
    aas_job_info_t info;
    int written;
    assert_int_equal(aas_test_redis_start(&f->extra, NULL), 0);
    conf_for(&c, &f->extra);
    c.timeout_ms = 1000;
    assert_int_equal(aas_store_new(&c, &st, NULL, 0), AAS_ERR_OK);
    assert_int_equal(aas_store_job_queued(st, "k1", "m", NULL, 1, NULL, 0),
                     AAS_ERR_OK);

    assert_int_equal(aas_test_redis_kill(&f->extra), 0);
    aas_err_t err = aas_store_job_start(st, "k1", "w", "m", NULL, &s, NULL,
                                        f->errstr, sizeof(f->errstr));
    assert_int_equal(err, AAS_ERR_REDIS);
    assert_true(aas_err_is_retriable(err));
    assert_true(strlen(f->errstr) > 0);
    assert_int_equal(aas_store_job_get(st, "k1", &info, NULL, 0),
                     AAS_ERR_REDIS);

    /* Back (empty, no persistence): the same handle works again. */
    assert_int_equal(aas_test_redis_restart(&f->extra), 0);
    assert_int_equal(aas_store_job_start(st, "k1", "w", "m", NULL, &s, NULL,
                                         f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_RUNNING);

    /* A restart between two calls (stale socket) is invisible. */
    assert_int_equal(aas_test_redis_restart(&f->extra), 0);
    assert_int_equal(aas_store_job_finish(st, "k1", AAS_STATUS_SUCCEEDED,
                                          NULL, "r", 1, NULL, &written,
                                          f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(written, 1);
    assert_true(aas_store_reconnects(st) >= 2);

    /* Scripts flushed behind our back: EVALSHA falls back to EVAL. */
    assert_int_equal(aas_test_redis_cmd(&f->extra, NULL, 0, "SCRIPT", "FLUSH",
                                        NULL),
                     0);
    assert_int_equal(aas_store_job_start(st, "k2", "w", "m", NULL, &s, NULL, NULL,
                                         0),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_RUNNING);
    aas_store_destroy(st);
}

static void cancel_queued_job_is_final_and_never_runs(void **state) {
    fixture_t *f = *state;
    aas_status_t s;
    aas_job_info_t info;
    assert_int_equal(aas_store_job_queued(f->st, "c1", "m", NULL, 5, NULL, 0), AAS_ERR_OK);
    assert_int_equal(aas_store_job_cancel(f->st, "c1", "REC", 3, &s, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_CANCELLED);
    /* A worker that takes it later skips it. */
    assert_int_equal(aas_store_job_start(f->st, "c1", "w1", "m", NULL, &s, NULL,
                                         NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_CANCELLED);
    assert_int_equal(aas_store_job_get(f->st, "c1", &info, NULL, 0), AAS_ERR_OK);
    assert_int_equal(info.status, AAS_STATUS_CANCELLED);
    assert_int_equal(info.result_writes, 1);
    assert_int_equal(info.skips, 1);
    aas_job_info_clear(&info);
    void *buf;
    size_t len;
    assert_int_equal(aas_store_result_get(f->st, "c1", &buf, &len, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "REC", 3);
    free(buf);
    /* Waiters wake at once. */
    assert_int_equal(aas_store_job_wait(f->st, "c1", 1000, &s, NULL, 0), AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_CANCELLED);
    /* Cancelling again changes nothing; unknown jobs are not found. */
    assert_int_equal(aas_store_job_cancel(f->st, "c1", "X", 1, &s, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_CANCELLED);
    assert_int_equal(aas_store_job_cancel(f->st, "nope", "X", 1, &s, NULL, 0),
                     AAS_ERR_NOT_FOUND);
}

static void cancel_running_job_is_requested_and_seen_by_progress(void **state) {
    fixture_t *f = *state;
    aas_status_t s;
    int cancel = -1;
    aas_job_info_t info;
    assert_int_equal(aas_store_job_start(f->st, "c2", "w1", "m", NULL, &s, NULL,
                                         NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_progress(f->st, "c2", "{\"epoch\":1}", &cancel,
                                            NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(cancel, 0);
    assert_int_equal(aas_store_job_cancel(f->st, "c2", "X", 1, &s, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(s, AAS_STATUS_RUNNING);
    assert_int_equal(aas_store_job_progress(f->st, "c2", "{\"epoch\":2}", &cancel,
                                            NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(cancel, 1);
    assert_int_equal(aas_store_job_get(f->st, "c2", &info, NULL, 0), AAS_ERR_OK);
    assert_int_equal(info.status, AAS_STATUS_RUNNING);
    assert_int_equal(info.cancel_requested, 1);
    assert_string_equal(info.progress, "{\"epoch\":2}");
    aas_job_info_clear(&info);
    /* Progress never touches a finished job. */
    assert_int_equal(aas_store_job_finish(f->st, "c2", AAS_STATUS_CANCELLED, NULL,
                                          "R", 1, "cancelled", NULL, NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_progress(f->st, "c2", "{\"epoch\":3}", &cancel,
                                            NULL, 0),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_job_get(f->st, "c2", &info, NULL, 0), AAS_ERR_OK);
    assert_string_equal(info.progress, "{\"epoch\":2}");
    aas_job_info_clear(&info);
}

/* Metering counts a job once, in its tenant's hour, whatever the repeats;
 * a job without a tenant is "default"; the reader sums by hour and model. */
static void meter_counts_each_job_once_per_tenant_and_hour(void **state) {
    fixture_t *f = *state;
    const int64_t h0 = 490000LL * 3600000LL; /* an hour's first ms */
    aas_store_meter_t m[4] = {
        {.job_id = "m1", .tenant = "acme", .model = "mlp", .finished_ms = h0 + 10,
         .usage = {.rows = 2, .compute_us = 100, .queue_ms = 5, .bytes_in = 300,
                   .bytes_out = 80}},
        {.job_id = "m2", .tenant = "acme", .model = "mlp", .failed = 1, .finished_ms = h0 + 20,
         .usage = {.rows = 1, .compute_us = 50}},
        {.job_id = "m3", .tenant = NULL, .model = "txt", .finished_ms = h0 + 3600000,
         .usage = {.rows = 1, .sample_epochs = 7}},
        {.job_id = "m1", .tenant = "acme", .model = "mlp", .finished_ms = h0 + 10,
         .usage = {.rows = 2, .compute_us = 100}}, /* the same job again */
    };
    assert_int_equal(aas_store_usage_meter_many(f->st, m, 4, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(m[0].counted + m[1].counted + m[2].counted, 3);
    assert_int_equal(m[3].counted, 0);
    /* And again, all of it (a worker retrying after a lost reply). */
    assert_int_equal(aas_store_usage_meter_many(f->st, m, 4, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(m[i].counted, 0);

    aas_usage_row_t *r = NULL;
    size_t n = 0;
    assert_int_equal(aas_store_usage_read(f->st, NULL, 0, INT64_MAX / 2, &r, &n, f->errstr,
                                          sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].tenant, "acme");
    assert_string_equal(r[0].model, "mlp");
    assert_int_equal(r[0].hour, 490000);
    assert_int_equal(r[0].jobs, 2);
    assert_int_equal(r[0].failed, 1);
    assert_int_equal(r[0].u.rows, 3);
    assert_int_equal(r[0].u.compute_us, 150);
    assert_int_equal(r[0].u.bytes_in, 300);
    assert_string_equal(r[1].tenant, "default");
    assert_int_equal(r[1].hour, 490001);
    assert_int_equal(r[1].u.sample_epochs, 7);
    aas_usage_rows_free(r, n);
    /* One tenant, one hour range. */
    assert_int_equal(aas_store_usage_read(f->st, "default", 490000, 490001, &r, &n, f->errstr,
                                          sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(n, 0);
    aas_usage_rows_free(r, n);
    /* The ids set expires; the counters stay. */
    assert_true(ttl_of(f, "aas:usage:{acme}:490000:jobs") > 86400);
    assert_int_equal(ttl_of(f, "aas:usage:{acme}:490000"), -1);
    /* Bad input is refused per item, touching nothing. */
    aas_store_meter_t bad = {.job_id = "x y", .model = "mlp", .finished_ms = h0};
    assert_int_equal(aas_store_usage_meter_many(f->st, &bad, 1, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(bad.err, AAS_ERR_INVAL);
    /* The text form of the figures round-trips; junk does not parse. */
    char txt[AAS_USAGE_TEXT_MAX];
    aas_usage_t u;
    aas_usage_format(&m[0].usage, txt, sizeof(txt));
    assert_int_equal(aas_usage_parse(txt, &u), 0);
    assert_int_equal(u.bytes_out, 80);
    /* Written digit by digit (not snprintf): the extremes as printf has them. */
    aas_usage_t big = {.rows = INT64_MAX, .compute_us = 0, .queue_ms = 10,
                       .bytes_in = 1000000007, .bytes_out = INT64_MIN, .sample_epochs = -1};
    char want[AAS_USAGE_TEXT_MAX];
    snprintf(want, sizeof(want), "%" PRId64 " 0 10 1000000007 %" PRId64 " -1", INT64_MAX,
             INT64_MIN);
    aas_usage_format(&big, txt, sizeof(txt));
    assert_string_equal(txt, want);
    aas_usage_format(&big, txt, 8); /* cut, still a string */
    assert_string_equal(txt, "9223372");
    assert_int_equal(aas_usage_parse("1 2 3", &u), -1);
    assert_int_equal(aas_usage_parse("1 2 3 4 5 -6", &u), -1);
}

/* ---- the inference floor's training slots ---------------------------- */

static void beat(fixture_t *f, const char *id, const char *group) {
    char json[256];
    snprintf(json, sizeof(json), "{\"id\":\"%s\",\"group\":\"%s\"}", id, group);
    assert_int_equal(aas_store_heartbeat(f->st, id, json, 60, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
}

static int slot(fixture_t *f, const char *id, int64_t lease_ms, int64_t floor,
                int64_t *live, int64_t *training) {
    int held = -1;
    assert_int_equal(aas_store_train_slot(f->st, "g", id, lease_ms, floor, &held, live,
                                          training, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    return held;
}

static void train_slots_keep_the_inference_floor(void **state) {
    fixture_t *f = *state;
    int64_t live = -1, training = -1;
    beat(f, "w1", "g");
    beat(f, "w2", "g");
    beat(f, "w3", "g");
    beat(f, "t1", "trainers"); /* another group: not counted */
    /* Floor 1 of 3 live workers: two may train, the third must serve. */
    assert_int_equal(slot(f, "w1", 60000, 1, &live, &training), 1);
    assert_int_equal(live, 3);
    assert_int_equal(training, 1);
    assert_int_equal(slot(f, "w2", 60000, 1, NULL, NULL), 1);
    assert_int_equal(slot(f, "w3", 60000, 1, &live, &training), 0);
    assert_int_equal(training, 2);
    /* A holder renews whatever the floor says now. */
    assert_int_equal(slot(f, "w1", 60000, 5, NULL, NULL), 1);
    /* Released: the waiting worker gets it. */
    assert_int_equal(slot(f, "w1", 0, 1, NULL, &training), 0);
    assert_int_equal(training, 1);
    assert_int_equal(slot(f, "w3", 60000, 1, NULL, NULL), 1);
    assert_int_equal(slot(f, "w1", 60000, 1, NULL, NULL), 0);
    /* A worker without a live heartbeat is not counted: w2 and w3 hold
     * slots, so with w1 gone nobody else may take one. */
    assert_int_equal(slot(f, "w2", 0, 1, NULL, NULL), 0);
    assert_int_equal(aas_test_redis_cmd(&f->redis, NULL, 0, "DEL", "aas:worker:{w1}", NULL), 0);
    assert_int_equal(slot(f, "w2", 60000, 1, &live, NULL), 0);
    assert_int_equal(live, 2);
    /* Floor 0: everyone may train. */
    assert_int_equal(slot(f, "w2", 60000, 0, NULL, NULL), 1);
    /* An invalid group is refused before Redis. */
    int held;
    assert_int_equal(aas_store_train_slot(f->st, "a{b", "w1", 1000, 1, &held, NULL, NULL,
                                          f->errstr, sizeof(f->errstr)),
                     AAS_ERR_INVAL);
}

static void train_slot_lease_ends_by_itself(void **state) {
    fixture_t *f = *state;
    beat(f, "w1", "g");
    beat(f, "w2", "g");
    /* Floor 1 of 2: one slot.  w1 takes it for 200 ms and dies. */
    assert_int_equal(slot(f, "w1", 200, 1, NULL, NULL), 1);
    assert_int_equal(slot(f, "w2", 60000, 1, NULL, NULL), 0);
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(slot(f, "w2", 60000, 1, NULL, NULL), 1);
    assert_true(aas_test_redis_int(&f->redis, "PTTL", "aas:trainslots:{g}", NULL) > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(job_happy_path_sets_every_field),
        T(persistence_is_reported),
        T(persistence_is_reported_as_started),
        T(persistence_of_an_absent_redis_is_an_error),
        T(job_get_unknown_is_not_found),
        T(finish_twice_writes_once),
        T(start_after_terminal_returns_it_and_counts_a_skip),
        T(status_never_regresses),
        T(cancel_queued_job_is_final_and_never_runs),
        T(cancel_running_job_is_requested_and_seen_by_progress),
        T(finish_rejects_non_terminal_and_oversized),
        T(ttl_is_set_on_all_keys),
        T(invalid_ids_are_rejected_without_touching_redis),
        T(wait_returns_at_once_when_terminal),
        T(result_wait_reads_the_result_when_terminal),
        T(terminal_writes_publish_the_id),
        T(lease_has_one_owner_per_group),
        T(wait_wakes_when_another_connection_finishes),
        T(wait_times_out_with_timeout_error),
        T(two_waiters_both_wake),
        T(stray_token_is_dropped_not_spun_on),
        T(result_if_done_reads_status_and_bytes_at_once),
        T(wait_pushback_keeps_the_token_and_its_ttl),
        T(model_registry_put_get_versions_meta_delete),
        T(model_get_unknown_is_unknown_model),
        T(model_blob_larger_than_max_len_is_rejected),
        T(model_serving_options_round_trip_per_name),
        T(model_serving_options_bad_values_are_refused_on_write),
        T(model_serving_options_corrupt_in_redis_are_a_decode_error),
        T(auth_right_wrong_and_missing_password),
        T(store_new_reports_unreachable_redis),
        T(redis_killed_gives_redis_error_then_reconnects),
        T(meter_counts_each_job_once_per_tenant_and_hour),
        T(train_slots_keep_the_inference_floor),
        T(train_slot_lease_ends_by_itself),
#undef T
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
