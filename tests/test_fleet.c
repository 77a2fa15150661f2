/*
 * test_fleet.c - the whole path on real components: redis-server, a broker
 * (dev broker or Apache Kafka, per AAS_TEST_BROKER), two aas-worker
 * processes, and the client library.
 *
 * 2,000 jobs must all reach SUCCEEDED, written exactly once, with outputs
 * equal to a local forward pass of the same model; garbage and bad jobs on
 * the topic must be logged, dead-lettered or FAILED with a reason, and
 * lose no valid job; committed offsets must drain the group's lag to zero.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "harness_fleet.h"

#define N_JOBS 2000
#define IN_DIM AAS_FLEET_IN
#define N_WORKERS 2
/* Stated bound on a worker's resident set in this test (measured: 17 MiB);
 * AddressSanitizer's shadow memory and quarantine need more. */
#ifdef __SANITIZE_ADDRESS__
#define RSS_BOUND_KB (768L * 1024)
#else
#define RSS_BOUND_KB (128L * 1024)
#endif

typedef aas_fleet_t fleet_t;

/* Workers run with a small text limit so the oversized-text case stays
 * under the broker's message size limit, and a job limit of 200 kB so a
 * larger message is too large for their dead-letter producer too. */
static const char *const worker_args[] = {"-X", "job.max.text.bytes=65536", "-X",
                                          "job.max.bytes=200000", NULL};

static int setup(void **state) {
    fleet_t *f = NULL;
    int rc = aas_fleet_start(&f, N_WORKERS, worker_args);
    *state = f;
    return rc;
}

static int teardown(void **state) {
    /* A graceful stop must exit 0. */
    assert_int_equal(aas_fleet_stop(*state), 0);
    return 0;
}

static void submit_rows(fleet_t *f, const char *id, const char *model,
                        const float *x, int64_t rows, int64_t cols) {
    assert_int_equal(aas_fleet_submit(f, id, model, x, rows, cols), 0);
}

static int any_log_contains(fleet_t *f, const char *needle) {
    return aas_fleet_log_contains(f, needle);
}

static void two_thousand_jobs_all_succeed_once_with_correct_outputs(void **state) {
    fleet_t *f = *state;
    static float inputs[N_JOBS][4 * IN_DIM];
    static int rows_of[N_JOBS];
    char id[64], why[512];
    int64_t t0 = aas_mono_us();
    for (int j = 0; j < N_JOBS; j++) {
        rows_of[j] = 1 + j % 4;
        for (int i = 0; i < rows_of[j] * IN_DIM; i++) inputs[j][i] = aas_fleet_frand();
        snprintf(id, sizeof(id), "fleet-%d", j);
        submit_rows(f, id, AAS_FLEET_MODEL, inputs[j], rows_of[j], IN_DIM);
    }
    size_t failed = 99;
    assert_int_equal(aas_client_flush(f->client, 60000, &failed, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(failed, 0);
    for (int j = 0; j < N_JOBS; j++) {
        snprintf(id, sizeof(id), "fleet-%d", j);
        assert_int_equal(aas_fleet_check(f, id, inputs[j], rows_of[j], 120000), 0);
    }
    double secs = (double)(aas_mono_us() - t0) / 1e6;
    fprintf(stderr, "fleet: %d jobs in %.2f s (%.0f jobs/s, %d workers, %s; "
            "includes checking every result)\n", N_JOBS, secs, N_JOBS / secs,
            N_WORKERS, f->broker.real ? "Apache Kafka" : "dev broker");
}

/* Raw bytes straight onto the topic, bypassing the client. */
static void produce_raw(fleet_t *f, const char *key, const void *buf, size_t len) {
    char errstr[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(kc, "bootstrap.servers", f->broker.bootstrap,
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
    assert_non_null(rk);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("aas.jobs.infer"),
                                       RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                                       RD_KAFKA_V_VALUE((void *)buf, len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

/* A consumer of the dead-letter topic from its start (assign, no join). */
static rd_kafka_t *dlq_reader(fleet_t *f, const char *group) {
    char errstr[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", f->broker.bootstrap, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "group.id", group, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
    if (!rk) return NULL;
    rd_kafka_topic_partition_list_t *p = rd_kafka_topic_partition_list_new(4);
    for (int i = 0; i < 4; i++)
        rd_kafka_topic_partition_list_add(p, "aas.jobs.dlq", i)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, p);
    rd_kafka_topic_partition_list_destroy(p);
    if (err) {
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

static void dlq_reader_close(rd_kafka_t *rk) {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* Count dead letters from the infer topic carrying our error headers. */
static int count_dead_letters(fleet_t *f, int want, int timeout_ms) {
    rd_kafka_t *rk = dlq_reader(f, "fleet-dlq-reader");
    if (!rk) return -1;
    int n = 0;
    int64_t until = aas_mono_us() + (int64_t)timeout_ms * 1000;
    while (n < want && aas_mono_us() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;
        if (!m->err && rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(h, "aas.error.code", &v, &len) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(h, "aas.source.topic", &v, &len) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            len == strlen("aas.jobs.infer") && memcmp(v, "aas.jobs.infer", len) == 0)
            n++;
        rd_kafka_message_destroy(m);
    }
    dlq_reader_close(rk);
    return n;
}

static aas_result_t wait_result(fleet_t *f, const char *id) {
    aas_result_t res = {0};
    char why[512];
    aas_err_t err = aas_client_wait(f->client, id, 60000, &res, why, sizeof(why));
    if (err) fprintf(stderr, "wait %s: %s\n", id, why);
    assert_int_equal(err, AAS_ERR_OK);
    return res;
}

static void garbage_and_bad_jobs_are_reported_and_lose_nothing(void **state) {
    fleet_t *f = *state;
    char why[512];
    /* Not Avro at all: logged and dead-lettered. */
    produce_raw(f, NULL, "this is not a job", 17);
    /* Right magic, unknown schema fingerprint. */
    unsigned char bad_fp[32] = {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8};
    produce_raw(f, NULL, bad_fp, sizeof(bad_fp));
    float x[IN_DIM];
    for (int i = 0; i < IN_DIM; i++) x[i] = aas_fleet_frand();
    submit_rows(f, "bad-model", "no-such-model", x, 1, IN_DIM);
    submit_rows(f, "bad-shape", AAS_FLEET_MODEL, x, 2, IN_DIM / 2);
    float nan_row[IN_DIM];
    memcpy(nan_row, x, sizeof(x));
    nan_row[3] = 0.0f / 0.0f;
    submit_rows(f, "bad-nan", AAS_FLEET_MODEL, nan_row, 1, IN_DIM);
    /* Schema-valid but hostile: a shape of 2^40 elements carrying 256
     * bytes, and a text over the worker's 1 MiB limit.  The encoder does
     * not apply limits, so these reach the topic as an attacker would send
     * them; the worker must refuse them before allocating. */
    {
        aas_codec_t *codec;
        assert_int_equal(aas_codec_new(&codec, why, sizeof(why)), AAS_ERR_OK);
        aas_tensor_t one = {.dtype = AAS_DTYPE_F32, .rank = 2,
                            .shape = {1, 64}, .data = x, .nbytes = sizeof(x)};
        aas_job_t j1 = {.id = "bad-huge", .kind = AAS_JOB_INFER, .model = AAS_FLEET_MODEL,
                        .inputs = &one, .n_inputs = 1, .submit_ms = aas_now_ms()};
        void *buf;
        size_t len;
        assert_int_equal(aas_codec_job_encode(codec, &j1, &buf, &len, why, sizeof(why)),
                         AAS_ERR_OK);
        /* The encoder checks shapes, so rewrite the shape block by hand:
         * Avro array [1, 64] is 04 02 80 01 00 (zigzag varints); make the
         * first dim 2^34 (zigzag 2^35: 80 80 80 80 80 01). */
        static const unsigned char from[] = {0x04, 0x02, 0x80, 0x01, 0x00};
        static const unsigned char to[] = {0x04, 0x80, 0x80, 0x80, 0x80, 0x80,
                                           0x01, 0x80, 0x01, 0x00};
        unsigned char *msg = malloc(len + sizeof(to));
        assert_non_null(msg);
        size_t at = 0;
        while (at + sizeof(from) <= len && memcmp((char *)buf + at, from, sizeof(from)))
            at++;
        assert_true(at + sizeof(from) <= len);
        memcpy(msg, buf, at);
        memcpy(msg + at, to, sizeof(to));
        memcpy(msg + at + sizeof(to), (char *)buf + at + sizeof(from),
               len - at - sizeof(from));
        produce_raw(f, "bad-huge", msg, len - sizeof(from) + sizeof(to));
        free(msg);
        free(buf);
        size_t tlen = 100000; /* workers run with job.max.text.bytes=65536 */
        char *text = malloc(tlen + 1);
        assert_non_null(text);
        memset(text, 'a', tlen);
        text[tlen] = '\0';
        aas_job_t j2 = {.id = "bad-text", .kind = AAS_JOB_INFER, .model = AAS_FLEET_MODEL,
                        .text = text, .submit_ms = aas_now_ms()};
        assert_int_equal(aas_codec_job_encode(codec, &j2, &buf, &len, why, sizeof(why)),
                         AAS_ERR_OK);
        produce_raw(f, "bad-text", buf, len);
        free(buf);
        free(text);
        aas_codec_destroy(codec);
    }
    /* A deadline already passed: EXPIRED without computing. */
    {
        aas_tensor_t t;
        int64_t shape[2] = {1, IN_DIM};
        assert_int_equal(aas_tensor_set_f32(&t, "x", x, 2, shape), AAS_ERR_OK);
        aas_job_t job = {.id = "late", .kind = AAS_JOB_INFER, .model = AAS_FLEET_MODEL,
                         .inputs = &t, .n_inputs = 1, .deadline_ms = aas_now_ms() - 1000};
        assert_int_equal(aas_client_submit(f->client, &job, why, sizeof(why)), AAS_ERR_OK);
        aas_tensor_clear(&t);
    }
    for (int j = 0; j < 20; j++) {
        char id[32];
        snprintf(id, sizeof(id), "after-garbage-%d", j);
        submit_rows(f, id, AAS_FLEET_MODEL, x, 1, IN_DIM);
    }
    assert_int_equal(aas_client_flush(f->client, 60000, NULL, why, sizeof(why)),
                     AAS_ERR_OK);

    for (int j = 0; j < 20; j++) {
        char id[32];
        snprintf(id, sizeof(id), "after-garbage-%d", j);
        aas_result_t res = wait_result(f, id);
        assert_int_equal(res.status, AAS_STATUS_SUCCEEDED);
        aas_result_clear(&res);
    }
    struct { const char *id, *reason; } bad[] = {
        {"bad-model", "no-such-model"}, {"bad-shape", "shape"}, {"bad-nan", "finite"},
        {"bad-huge", "rejected message"}, {"bad-text", "text"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        aas_result_t res = wait_result(f, bad[i].id);
        assert_int_equal(res.status, AAS_STATUS_FAILED);
        assert_non_null(res.error);
        if (!strstr(res.error, bad[i].reason))
            fprintf(stderr, "%s: reason '%s' lacks '%s'\n", bad[i].id, res.error,
                    bad[i].reason);
        assert_non_null(strstr(res.error, bad[i].reason));
        aas_result_clear(&res);
    }
    aas_result_t late = wait_result(f, "late");
    assert_int_equal(late.status, AAS_STATUS_EXPIRED);
    assert_non_null(late.error);
    assert_non_null(strstr(late.error, "deadline"));
    assert_int_equal(late.n_outputs, 0);
    aas_result_clear(&late);
    /* The garbage was consumed before the later jobs on its partition or
     * others; give the logs a moment to be flushed, generously. */
    int logged = 0;
    for (int i = 0; i < 200 && !logged; i++) {
        logged = any_log_contains(f, "undecodable message") &&
                 any_log_contains(f, "AAS_ERR_UNKNOWN_SCHEMA");
        if (!logged) usleep(100000);
    }
    assert_true(logged);
    /* Bounded memory: after 2,000 jobs and the hostile ones, each worker's
     * resident set stays under a stated bound (prefetch is capped by
     * queued.max.messages.kbytes = 64 MiB, the model cache by
     * model.cache.mb; the hostile shape was refused before allocation). */
    for (int i = 0; i < f->n_workers; i++) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)f->workers[i].pid);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        long rss_kb = -1;
        while (fgets(line, sizeof(line), fp))
            if (sscanf(line, "VmRSS: %ld kB", &rss_kb) == 1) break;
        fclose(fp);
        fprintf(stderr, "fleet: worker %d RSS %ld KiB\n", i, rss_kb);
        assert_true(rss_kb > 0 && rss_kb < RSS_BOUND_KB);
    }
    /* Both undecodable messages are in the dead-letter topic, with headers
     * naming the error and where they came from. */
    assert_int_equal(count_dead_letters(f, 4, 60000), 4);
}

/* The dead letter keyed `key`: its headers aas.truncated (1 or 0) and
 * aas.original.size, and its value's length.  0 if found. */
static int find_dead_letter(fleet_t *f, const char *key, int *truncated,
                            long long *original, size_t *value_len, int timeout_ms) {
    rd_kafka_t *rk = dlq_reader(f, "fleet-dlq-finder");
    if (!rk) return -1;
    int found = -1;
    int64_t until = aas_mono_us() + (int64_t)timeout_ms * 1000;
    while (found != 0 && aas_mono_us() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;
        if (!m->err && m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0 &&
            rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            *truncated = rd_kafka_header_get_last(h, "aas.truncated", &v, &len) ==
                             RD_KAFKA_RESP_ERR_NO_ERROR && len == 1 && *(const char *)v == '1';
            char num[32] = "";
            if (rd_kafka_header_get_last(h, "aas.original.size", &v, &len) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR && len < sizeof(num))
                memcpy(num, v, len);
            *original = atoll(num);
            *value_len = m->len;
            found = 0;
        }
        rd_kafka_message_destroy(m);
    }
    dlq_reader_close(rk);
    return found;
}

/*
 * Poison that used to leave a job without a terminal status or stall its
 * partition: undecodable messages keyed by a job id (the id is read from
 * the key), a message too large even for the dead-letter producer (a
 * truncated copy is dead-lettered), and finite inputs the model overflows
 * (NaN outputs).  Each job is FAILED with a reason, and jobs after them on
 * every partition still succeed.
 */
static void poison_gets_a_terminal_status_and_the_partition_moves_on(void **state) {
    fleet_t *f = *state;
    char why[512];
    produce_raw(f, "poison-garbage", "this is not a job either", 24);
    unsigned char bad_fp[32] = {0xC3, 0x01, 8, 7, 6, 5, 4, 3, 2, 1};
    produce_raw(f, "poison-fingerprint", bad_fp, sizeof(bad_fp));
    size_t big_len = 300000; /* > job.max.bytes = 200000 and its producer's limit */
    unsigned char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 0x5a, big_len);
    big[0] = 0xC3;
    big[1] = 0x01;
    produce_raw(f, "poison-big", big, big_len);
    free(big);
    float huge[IN_DIM];
    for (int i = 0; i < IN_DIM; i++) huge[i] = 3e38f;
    submit_rows(f, "poison-overflow", AAS_FLEET_MODEL, huge, 1, IN_DIM);
    float x[IN_DIM];
    for (int i = 0; i < IN_DIM; i++) x[i] = aas_fleet_frand();
    for (int j = 0; j < 20; j++) {
        char id[32];
        snprintf(id, sizeof(id), "after-poison-%d", j);
        submit_rows(f, id, AAS_FLEET_MODEL, x, 1, IN_DIM);
    }
    assert_int_equal(aas_client_flush(f->client, 60000, NULL, why, sizeof(why)),
                     AAS_ERR_OK);
    struct { const char *id, *reason; } bad[] = {
        {"poison-garbage", "rejected message"}, {"poison-fingerprint", "fingerprint"},
        {"poison-big", "rejected message"}, {"poison-overflow", "output"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        aas_result_t res = wait_result(f, bad[i].id);
        fprintf(stderr, "%s: %s %s\n", bad[i].id, aas_status_name(res.status),
                res.error ? res.error : "");
        assert_int_equal(res.status, AAS_STATUS_FAILED);
        assert_non_null(res.error);
        assert_non_null(strstr(res.error, bad[i].reason));
        assert_int_equal(res.n_outputs, 0);
        aas_result_clear(&res);
    }
    for (int j = 0; j < 20; j++) {
        char id[32];
        snprintf(id, sizeof(id), "after-poison-%d", j);
        aas_result_t res = wait_result(f, id);
        assert_int_equal(res.status, AAS_STATUS_SUCCEEDED);
        aas_result_clear(&res);
    }
    /* The big one is in the dead-letter topic, cut to its head, saying so. */
    int truncated = 0;
    long long original = 0;
    size_t value_len = 0;
    assert_int_equal(find_dead_letter(f, "poison-big", &truncated, &original, &value_len,
                                      60000),
                     0);
    assert_true(truncated);
    assert_int_equal(original, (long long)big_len);
    assert_true(value_len > 0 && value_len < big_len);
}

static void committed_offsets_drain_lag_to_zero(void **state) {
    fleet_t *f = *state;
    char cmd[1024], line[512];
    int drained = 0;
    for (int attempt = 0; attempt < 120 && !drained; attempt++) {
        snprintf(cmd, sizeof(cmd),
                 "%s/scheduler/aas-scheduler -b %s -X redis.port=%d -X log.level=error "
                 "status --json",
                 AAS_BIN_DIR, f->broker.bootstrap, f->redis.port);
        FILE *fp = popen(cmd, "r");
        assert_non_null(fp);
        int rows = 0, zero = 0;
        while (fgets(line, sizeof(line), fp))
            if (strstr(line, "\"topic\":\"aas.jobs.infer\"")) {
                rows++;
                zero += strstr(line, "\"lag\":0}") != NULL;
            }
        int rc = pclose(fp);
        drained = rc == 0 && rows == 4 && zero == 4;
        if (!drained) usleep(500000);
    }
    assert_true(drained);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_thousand_jobs_all_succeed_once_with_correct_outputs),
        cmocka_unit_test(garbage_and_bad_jobs_are_reported_and_lose_nothing),
        cmocka_unit_test(poison_gets_a_terminal_status_and_the_partition_moves_on),
        cmocka_unit_test(committed_offsets_drain_lag_to_zero),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
