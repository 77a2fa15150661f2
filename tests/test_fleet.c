/*
 * test_fleet.c - the whole path on real components: redis-server, the dev
 * broker, two aas-worker processes, and the client library.
 *
 * 2,000 jobs must all reach SUCCEEDED, written exactly once, with outputs
 * equal to a local forward pass of the same model; garbage and bad jobs on
 * the topic must be logged, dead-lettered or FAILED with a reason, and
 * lose no valid job.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "client.h"
#include "codec.h"
#include "conf.h"
#include "harness_proc.h"
#include "harness_redis.h"
#include "model.h"

#define N_JOBS 2000
#define IN_DIM 64
#define HID 128
#define OUT_DIM 10
#define N_WORKERS 2

typedef struct {
    char dir[256];
    aas_test_redis_t redis;
    aas_test_broker_t broker;
    aas_test_proc_t workers[N_WORKERS];
    char worker_logs[N_WORKERS][512];
    aas_conf_t *conf;
    aas_client_t *client;
    aas_model_t *model;        /* local copy for expected outputs */
} fleet_t;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void *make_model_blob(size_t *len) {
    static float w1[HID * IN_DIM], b1[HID], w2[HID * HID], b2[HID],
        w3[OUT_DIM * HID], b3[OUT_DIM];
    float *all[] = {w1, b1, w2, b2, w3, b3};
    size_t sizes[] = {HID * IN_DIM, HID, HID * HID, HID, OUT_DIM * HID, OUT_DIM};
    for (int a = 0; a < 6; a++)
        for (size_t i = 0; i < sizes[a]; i++) all[a][i] = frand() * 0.2f;
    aas_mlp_layer_t layers[] = {{IN_DIM, HID, AAS_ACT_RELU, w1, b1},
                                {HID, HID, AAS_ACT_TANH, w2, b2},
                                {HID, OUT_DIM, AAS_ACT_SOFTMAX, w3, b3}};
    const char *labels[] = {"zero", "one", "two", "three", "four",
                            "five", "six", "seven", "eight", "nine"};
    void *blob = NULL;
    char why[256];
    assert_int_equal(aas_mlp_serialize(layers, 3, labels, 10, &blob, len, why,
                                       sizeof(why)),
                     AAS_ERR_OK);
    return blob;
}

static int setup(void **state) {
    signal(SIGPIPE, SIG_IGN);
    fleet_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/aas-fleet-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    if (aas_test_redis_start(&f->redis, NULL)) return -1;
    if (aas_test_broker_start(&f->broker, AAS_BIN_DIR, f->dir, 4)) return -1;

    char port[16], redis_port[64], brokers[300];
    snprintf(port, sizeof(port), "%d", f->redis.port);
    snprintf(redis_port, sizeof(redis_port), "redis.port=%d", f->redis.port);
    snprintf(brokers, sizeof(brokers), "kafka.bootstrap.servers=%s",
             f->broker.bootstrap);
    char why[512];
    if (aas_conf_new(aas_client_conf_defs, &f->conf)) return -1;
    if (aas_conf_set_arg(f->conf, redis_port, why, sizeof(why)) ||
        aas_conf_set_arg(f->conf, brokers, why, sizeof(why)) ||
        aas_client_new(f->conf, &f->client, why, sizeof(why))) {
        fprintf(stderr, "client: %s\n", why);
        return -1;
    }
    size_t len;
    void *blob = make_model_blob(&len);
    int64_t version;
    if (aas_client_model_register(f->client, "fleet-mlp", blob, len, NULL,
                                  &version, why, sizeof(why)) ||
        aas_model_load(blob, len, &f->model, why, sizeof(why))) {
        fprintf(stderr, "model: %s\n", why);
        free(blob);
        return -1;
    }
    free(blob);

    char bin[512];
    snprintf(bin, sizeof(bin), "%s/worker/aas-worker", AAS_BIN_DIR);
    for (int i = 0; i < N_WORKERS; i++) {
        char id[64];
        snprintf(id, sizeof(id), "worker.id=fleet-w%d", i);
        snprintf(f->worker_logs[i], sizeof(f->worker_logs[i]), "%s/worker%d.log",
                 f->dir, i);
        char *argv[] = {bin, "-X", redis_port, "-X", brokers, "-X", id,
                        "-X", "job.max.text.bytes=65536", NULL};
        if (aas_test_proc_start(&f->workers[i], bin, argv, f->worker_logs[i]))
            return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fleet_t *f = *state;
    if (!f) return 0;
    /* A graceful stop must exit 0. */
    for (int i = 0; i < N_WORKERS; i++) {
        int rc = aas_test_proc_stop(&f->workers[i], 30000);
        if (rc != 0) fprintf(stderr, "worker %d exit status %d\n", i, rc);
        assert_int_equal(rc, 0);
    }
    aas_client_destroy(f->client);
    aas_conf_destroy(f->conf);
    aas_model_destroy(f->model);
    aas_test_broker_stop(&f->broker);
    aas_test_redis_stop(&f->redis);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static void submit_rows(fleet_t *f, const char *id, const char *model,
                        const float *x, int64_t rows, int64_t cols) {
    aas_tensor_t t;
    int64_t shape[2] = {rows, cols};
    assert_int_equal(aas_tensor_set_f32(&t, "x", x, 2, shape), AAS_ERR_OK);
    aas_job_t job = {.id = (char *)id, .kind = AAS_JOB_INFER,
                     .model = (char *)model, .inputs = &t, .n_inputs = 1};
    char why[512];
    aas_err_t err = aas_client_submit(f->client, &job, why, sizeof(why));
    if (err) fprintf(stderr, "submit %s: %s\n", id, why);
    assert_int_equal(err, AAS_ERR_OK);
    aas_tensor_clear(&t);
}

static void two_thousand_jobs_all_succeed_once_with_correct_outputs(void **state) {
    fleet_t *f = *state;
    static float inputs[N_JOBS][4 * IN_DIM];
    static int rows_of[N_JOBS];
    char id[64], why[512];
    int64_t t0 = aas_mono_us();
    for (int j = 0; j < N_JOBS; j++) {
        rows_of[j] = 1 + j % 4;
        for (int i = 0; i < rows_of[j] * IN_DIM; i++) inputs[j][i] = frand();
        snprintf(id, sizeof(id), "fleet-%d", j);
        submit_rows(f, id, "fleet-mlp", inputs[j], rows_of[j], IN_DIM);
    }
    size_t failed = 99;
    assert_int_equal(aas_client_flush(f->client, 60000, &failed, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(failed, 0);

    float expect[4 * OUT_DIM];
    for (int j = 0; j < N_JOBS; j++) {
        snprintf(id, sizeof(id), "fleet-%d", j);
        aas_result_t res = {0};
        aas_err_t err = aas_client_wait(f->client, id, 120000, &res, why, sizeof(why));
        if (err) fprintf(stderr, "wait %s: %s\n", id, why);
        assert_int_equal(err, AAS_ERR_OK);
        if (res.status != AAS_STATUS_SUCCEEDED)
            fprintf(stderr, "job %s: %s %s\n", id, aas_status_name(res.status),
                    res.error ? res.error : "");
        assert_int_equal(res.status, AAS_STATUS_SUCCEEDED);
        assert_int_equal(res.n_outputs, 1);
        assert_int_equal(res.outputs[0].shape[0], rows_of[j]);
        assert_int_equal(res.outputs[0].shape[1], OUT_DIM);
        assert_int_equal(res.n_predictions, rows_of[j]);
        assert_int_equal(aas_model_infer(f->model, inputs[j], rows_of[j], expect,
                                         why, sizeof(why)),
                         AAS_ERR_OK);
        const float *got = res.outputs[0].data;
        for (int k = 0; k < rows_of[j] * OUT_DIM; k++) {
            float d = got[k] - expect[k];
            if (d < 0) d = -d;
            assert_true(d <= 1e-5f + 1e-4f * expect[k]);
        }
        for (int r = 0; r < rows_of[j]; r++) {
            int best = 0;
            for (int k = 1; k < OUT_DIM; k++)
                if (expect[r * OUT_DIM + k] > expect[r * OUT_DIM + best]) best = k;
            assert_int_equal(res.predictions[r].label, best);
            assert_non_null(res.predictions[r].name);
        }
        aas_result_clear(&res);

        aas_job_info_t info = {0};
        assert_int_equal(aas_client_status(f->client, id, &info, why, sizeof(why)),
                         AAS_ERR_OK);
        assert_int_equal(info.result_writes, 1);
        assert_int_equal(info.status, AAS_STATUS_SUCCEEDED);
        aas_job_info_clear(&info);
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

static int any_log_contains(fleet_t *f, const char *needle) {
    for (int i = 0; i < N_WORKERS; i++)
        if (aas_test_log_contains(f->worker_logs[i], needle)) return 1;
    return 0;
}


/* Read the dead-letter topic from the start (no group: plain assign) and
 * count messages carrying our error headers. */
static int count_dead_letters(fleet_t *f, int want, int timeout_ms) {
    char errstr[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", f->broker.bootstrap, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "group.id", "fleet-dlq-reader", errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return -1;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
    if (!rk) return -1;
    rd_kafka_topic_partition_list_t *p = rd_kafka_topic_partition_list_new(4);
    for (int i = 0; i < 4; i++)
        rd_kafka_topic_partition_list_add(p, "aas.jobs.dlq", i)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    int n = 0;
    if (rd_kafka_assign(rk, p) == RD_KAFKA_RESP_ERR_NO_ERROR) {
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
    }
    rd_kafka_topic_partition_list_destroy(p);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
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
    for (int i = 0; i < IN_DIM; i++) x[i] = frand();
    submit_rows(f, "bad-model", "no-such-model", x, 1, IN_DIM);
    submit_rows(f, "bad-shape", "fleet-mlp", x, 2, IN_DIM / 2);
    float nan_row[IN_DIM];
    memcpy(nan_row, x, sizeof(x));
    nan_row[3] = 0.0f / 0.0f;
    submit_rows(f, "bad-nan", "fleet-mlp", nan_row, 1, IN_DIM);
    /* Schema-valid but hostile: a shape of 2^40 elements carrying 256
     * bytes, and a text over the worker's 1 MiB limit.  The encoder does
     * not apply limits, so these reach the topic as an attacker would send
     * them; the worker must refuse them before allocating. */
    {
        aas_codec_t *codec;
        assert_int_equal(aas_codec_new(&codec, why, sizeof(why)), AAS_ERR_OK);
        aas_tensor_t one = {.dtype = AAS_DTYPE_F32, .rank = 2,
                            .shape = {1, 64}, .data = x, .nbytes = sizeof(x)};
        aas_job_t j1 = {.id = "bad-huge", .kind = AAS_JOB_INFER, .model = "fleet-mlp",
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
        aas_job_t j2 = {.id = "bad-text", .kind = AAS_JOB_INFER, .model = "fleet-mlp",
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
        aas_job_t job = {.id = "late", .kind = AAS_JOB_INFER, .model = "fleet-mlp",
                         .inputs = &t, .n_inputs = 1, .deadline_ms = aas_now_ms() - 1000};
        assert_int_equal(aas_client_submit(f->client, &job, why, sizeof(why)), AAS_ERR_OK);
        aas_tensor_clear(&t);
    }
    for (int j = 0; j < 20; j++) {
        char id[32];
        snprintf(id, sizeof(id), "after-garbage-%d", j);
        submit_rows(f, id, "fleet-mlp", x, 1, IN_DIM);
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
    /* Both undecodable messages are in the dead-letter topic, with headers
     * naming the error and where they came from. */
    assert_int_equal(count_dead_letters(f, 4, 60000), 4);
}

/* Every processed message's offset is committed: the group's lag, as the
 * scheduler measures it, drains to zero on every partition. */
static void committed_offsets_drain_lag_to_zero(void **state) {
    fleet_t *f = *state;
    char cmd[1024], line[512];
    int drained = 0;
    for (int attempt = 0; attempt < 120 && !drained; attempt++) {
        snprintf(cmd, sizeof(cmd),
                 "%s/scheduler/aas-scheduler -b %s -X log.level=error status --json",
                 AAS_BIN_DIR, f->broker.bootstrap);
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
        cmocka_unit_test(committed_offsets_drain_lag_to_zero),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
