/*
 * test_client.c - the client library's promises about ids and sizes, on a
 * real redis-server and a broker (no worker: nothing here needs a result):
 *   - an id that breaks the id rule is refused by every call, never cut
 *     (two ids sharing their first 128 characters used to collide);
 *   - an id in use is refused (AAS_ERR_CONFLICT) naming it; with
 *     aas_client_set_idempotent() the same payload is accepted, another
 *     payload still refused;
 *   - a job over client.message.max.bytes is refused before sending,
 *     naming the key; one just under it is published (librdkafka's own
 *     message.max.bytes follows the client's); one over a lower
 *     kafka.message.max.bytes is refused naming it and every limit (on
 *     real Kafka the topic's max.message.bytes, read from the broker);
 *     a text over client.text.max.bytes is refused;
 *   - the dev broker refuses a produce request it could not keep (5 MiB
 *     or more) instead of acknowledging it and dropping it;
 *   - clients sharing one producer (aas_client_new_shared) from several
 *     threads: every job is acknowledged to the client that sent it
 *     (delivery callback on its own thread, flush counts only its own),
 *     recorded QUEUED, and on the topic once; a duplicate id is still
 *     refused; abandon withdraws nothing of the others';
 *   - aas_client_submit_many() gives each job its own outcome across its
 *     64-job claim batches: the valid ones are published once and recorded
 *     QUEUED, an invalid id and an id in use are refused alone, and the
 *     delivery callback hears of every published job once.
 * Runs on the dev broker and on real Kafka (AAS_TEST_BROKER).
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
#include <pthread.h>
#include <stdatomic.h>

#include "harness_fleet.h"

/* One job of n floats (all 0.5) under id; the client's error, errstr in why. */
static aas_err_t submit_n(aas_client_t *c, const char *id, int64_t n, float v, char *why,
                          size_t why_size) {
    float *x = malloc((size_t)n * sizeof(*x));
    if (!x) return AAS_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) x[i] = v;
    aas_tensor_t t;
    int64_t shape[2] = {1, n};
    aas_err_t err = aas_tensor_set_f32(&t, "x", x, 2, shape);
    free(x);
    if (err) return err;
    aas_job_t job = {.id = (char *)id, .kind = AAS_JOB_INFER, .model = AAS_FLEET_MODEL,
                     .inputs = &t, .n_inputs = 1};
    err = aas_client_submit(c, &job, why, why_size);
    aas_tensor_clear(&t);
    return err;
}

static void flush_ok(aas_client_t *c) {
    char why[512];
    size_t failed = 1;
    assert_int_equal(aas_client_flush(c, 60000, &failed, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(failed, 0);
}

/* Messages ever produced to topic: the sum of its partitions' high
 * watermarks (nobody deletes from the aas topics during a test). */
static int64_t topic_messages(const char *bootstrap, const char *topic) {
    char why[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, why, sizeof(why)))
        fail_msg("conf: %s", why);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
    if (!rk) fail_msg("producer: %s", why);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(md->topic_cnt, 1);
    int64_t sum = 0;
    for (int p = 0; p < md->topics[0].partition_cnt; p++) {
        int64_t lo, hi;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        sum += hi;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return sum;
}

static int setup(void **state) {
    aas_fleet_t *f = NULL;
    if (aas_fleet_start(&f, 0, NULL)) {
        aas_fleet_stop(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    aas_fleet_stop(*state);
    return 0;
}

static void id_over_the_id_rule_is_refused_everywhere_not_cut(void **state) {
    aas_fleet_t *f = *state;
    char id1[AAS_ID_MAX + 2], id2[AAS_ID_MAX + 2], why[512];
    memset(id1, 'a', AAS_ID_MAX);
    memcpy(id2, id1, AAS_ID_MAX);
    id1[AAS_ID_MAX] = '1';
    id2[AAS_ID_MAX] = '2';
    id1[AAS_ID_MAX + 1] = id2[AAS_ID_MAX + 1] = '\0';
    assert_int_equal(submit_n(f->client, id1, 4, 0.5f, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "invalid job id"));
    assert_int_equal(submit_n(f->client, id2, 4, 0.5f, why, sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(submit_n(f->client, "-starts-with-dash", 4, 0.5f, why, sizeof(why)),
                     AAS_ERR_INVAL);
    /* So are a model name or version over it. */
    float one = 1;
    aas_tensor_t t;
    int64_t shape[2] = {1, 1};
    assert_int_equal(aas_tensor_set_f32(&t, "x", &one, 2, shape), AAS_ERR_OK);
    aas_job_t job = {.id = "ok-id", .kind = AAS_JOB_INFER, .model = id1, .inputs = &t,
                     .n_inputs = 1};
    assert_int_equal(aas_client_submit(f->client, &job, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "invalid model name"));
    job.model = AAS_FLEET_MODEL;
    job.model_version = id2;
    assert_int_equal(aas_client_submit(f->client, &job, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "invalid model version"));
    aas_tensor_clear(&t);
    flush_ok(f->client);
    assert_int_equal(aas_test_redis_int(&f->redis, "EXISTS", "aas:job:{ok-id}", NULL), 0);
    /* Nothing was stored under the first 128 characters. */
    char key[AAS_ID_MAX + 32];
    snprintf(key, sizeof(key), "aas:job:{%.*s}", AAS_ID_MAX, id1);
    assert_int_equal(aas_test_redis_int(&f->redis, "EXISTS", key, NULL), 0);
    /* Reading, waiting and cancelling refuse it too. */
    aas_job_info_t info;
    aas_result_t res;
    aas_status_t st;
    assert_int_equal(aas_client_status(f->client, id1, &info, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_client_wait(f->client, id1, 100, &res, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_client_cancel(f->client, id1, &st, why, sizeof(why)),
                     AAS_ERR_INVAL);
}

static void id_in_use_is_refused_unless_idempotent_with_the_same_payload(void **state) {
    aas_fleet_t *f = *state;
    char why[512], key[64];
    assert_int_equal(submit_n(f->client, "dup-c", 4, 0.5f, why, sizeof(why)), AAS_ERR_OK);
    flush_ok(f->client);
    snprintf(key, sizeof(key), "aas:job:{%s}", "dup-c");
    char hash[64];
    assert_int_equal(aas_test_redis_cmd(&f->redis, hash, sizeof(hash), "HGET", key,
                                        "payload_hash", NULL), 0);
    assert_int_equal(strlen(hash), 16);

    /* Same payload, not idempotent: refused, naming the id. */
    assert_int_equal(submit_n(f->client, "dup-c", 4, 0.5f, why, sizeof(why)),
                     AAS_ERR_CONFLICT);
    assert_non_null(strstr(why, "dup-c"));
    /* Another payload: refused. */
    assert_int_equal(submit_n(f->client, "dup-c", 4, 0.25f, why, sizeof(why)),
                     AAS_ERR_CONFLICT);
    assert_non_null(strstr(why, "different payload"));

    /* Idempotent, same payload: accepted, and the job published before
     * stands (no second copy in Kafka). */
    aas_client_set_idempotent(f->client, 1);
    int64_t before = topic_messages(f->broker.bootstrap, "aas.jobs.infer");
    assert_int_equal(submit_n(f->client, "dup-c", 4, 0.5f, why, sizeof(why)), AAS_ERR_OK);
    flush_ok(f->client);
    assert_int_equal(topic_messages(f->broker.bootstrap, "aas.jobs.infer"), before);
    assert_int_equal(submit_n(f->client, "dup-c", 4, 0.25f, why, sizeof(why)),
                     AAS_ERR_CONFLICT);
    assert_non_null(strstr(why, "different payload"));
    aas_client_set_idempotent(f->client, 0);

    /* Claimed but never acknowledged (a client that died between its
     * claim and the broker's ack): an idempotent retry publishes it. */
    assert_int_equal(submit_n(f->client, "claimed-c", 4, 0.5f, why, sizeof(why)),
                     AAS_ERR_OK);
    flush_ok(f->client);
    char ckey[64];
    snprintf(ckey, sizeof(ckey), "aas:job:{%s}", "claimed-c");
    assert_int_equal(aas_test_redis_int(&f->redis, "HDEL", ckey, "status", NULL), 1);
    before = topic_messages(f->broker.bootstrap, "aas.jobs.infer");
    aas_client_set_idempotent(f->client, 1);
    assert_int_equal(submit_n(f->client, "claimed-c", 4, 0.5f, why, sizeof(why)),
                     AAS_ERR_OK);
    flush_ok(f->client);
    aas_client_set_idempotent(f->client, 0);
    assert_int_equal(topic_messages(f->broker.bootstrap, "aas.jobs.infer"), before + 1);
    char st[32];
    assert_int_equal(aas_test_redis_cmd(&f->redis, st, sizeof(st), "HGET", ckey, "status",
                                        NULL), 0);
    assert_string_equal(st, "QUEUED");

    /* The record still belongs to the first payload. */
    char after[64];
    assert_int_equal(aas_test_redis_cmd(&f->redis, after, sizeof(after), "HGET", key,
                                        "payload_hash", NULL), 0);
    assert_string_equal(hash, after);
}

/* A second client on the fleet's servers with one more setting "key=value". */
static aas_client_t *client_with_arg(aas_fleet_t *f, const char *arg, aas_conf_t **conf) {
    char why[512];
    aas_client_t *c = NULL;
    if (aas_conf_new(aas_client_conf_defs, conf) ||
        aas_conf_set_arg(*conf, f->redis_arg, why, sizeof(why)) ||
        aas_conf_set_arg(*conf, f->brokers_arg, why, sizeof(why)) ||
        aas_conf_set_arg(*conf, arg, why, sizeof(why)) ||
        aas_client_new(*conf, &c, why, sizeof(why)))
        fail_msg("client: %s", why);
    return c;
}

/* ... with client.message.max.bytes=max. */
static aas_client_t *client_with_limit(aas_fleet_t *f, const char *max, aas_conf_t **conf) {
    char arg[64];
    snprintf(arg, sizeof(arg), "client.message.max.bytes=%s", max);
    return client_with_arg(f, arg, conf);
}

static void message_over_the_client_limit_is_refused_naming_the_key(void **state) {
    aas_fleet_t *f = *state;
    aas_conf_t *conf = NULL;
    aas_client_t *c = client_with_limit(f, "4096", &conf);
    char why[512];
    assert_int_equal(submit_n(c, "big-c", 2000, 0.5f, why, sizeof(why)), AAS_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "client.message.max.bytes=4096"));
    assert_null(strstr(why, "Broker"));
    flush_ok(c);
    assert_int_equal(aas_test_redis_int(&f->redis, "EXISTS", "aas:job:{big-c}", NULL), 0);
    aas_client_destroy(c);
    aas_conf_destroy(conf);
}

/* librdkafka counts key and record framing against its own
 * message.max.bytes (1000000 by default): a job just under the client's
 * limit used to fail as "Broker: Message size too large". */
static void message_just_under_the_client_limit_is_published(void **state) {
    aas_fleet_t *f = *state;
    aas_conf_t *conf = NULL;
    aas_client_t *c = client_with_limit(f, "1000000", &conf);
    char why[512];
    /* 4 bytes a float plus ~64 of Avro framing: ~999,984 bytes, so only
     * librdkafka's framing takes it over 1000000. */
    assert_int_equal(submit_n(c, "near-limit-c", 249980, 0.5f, why, sizeof(why)),
                     AAS_ERR_OK);
    flush_ok(c);
    char st[32];
    assert_int_equal(aas_test_redis_cmd(&f->redis, st, sizeof(st), "HGET",
                                        "aas:job:{near-limit-c}", "status", NULL), 0);
    assert_string_equal(st, "QUEUED");
    aas_client_destroy(c);
    aas_conf_destroy(conf);
}

/* librdkafka's own message.max.bytes set below the client's limit: the job
 * is refused before sending naming it and every limit known (on real
 * Kafka the topic's max.message.bytes, read from the broker), not
 * librdkafka's or the broker's bare "Message size too large". */
static void message_over_the_producer_limit_is_refused_naming_every_limit(void **state) {
    aas_fleet_t *f = *state;
    aas_conf_t *conf = NULL;
    aas_client_t *c = client_with_arg(f, "kafka.message.max.bytes=5000", &conf);
    char why[2048];
    assert_int_equal(submit_n(c, "big-p", 2000, 0.5f, why, sizeof(why)), AAS_ERR_TOO_LARGE);
    print_message("%s\n", why);
    assert_non_null(strstr(why, "is over the producer's kafka.message.max.bytes=5000 less 1024"));
    assert_non_null(strstr(why, "its message limit is 3,976 bytes"));
    assert_non_null(strstr(why, "client.message.max.bytes=1000000"));
    if (f->broker.real) {
        assert_non_null(strstr(why, "topic aas.jobs.infer max.message.bytes="));
        assert_null(strstr(why, "not known"));
    } else {
        assert_non_null(strstr(why, "the dev broker has no per-topic limit"));
    }
    assert_null(strstr(why, "Broker"));
    flush_ok(c);
    assert_int_equal(aas_test_redis_int(&f->redis, "EXISTS", "aas:job:{big-p}", NULL), 0);
    aas_client_destroy(c);
    aas_conf_destroy(conf);
}

/* A text over client.text.max.bytes is refused before sending. */
static void text_over_the_client_limit_is_refused_naming_the_key(void **state) {
    aas_fleet_t *f = *state;
    aas_conf_t *conf = NULL;
    aas_client_t *c = client_with_arg(f, "client.text.max.bytes=100", &conf);
    char text[201], why[1024];
    memset(text, 'x', 200);
    text[200] = '\0';
    aas_job_t job = {.id = "big-t", .kind = AAS_JOB_INFER, .model = AAS_FLEET_MODEL,
                     .text = text};
    assert_int_equal(aas_client_submit(c, &job, why, sizeof(why)), AAS_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "text of 200 bytes is over client.text.max.bytes=100"));
    assert_int_equal(aas_client_text_max_bytes(c), 100);
    text[100] = '\0';
    job.id = "ok-t";
    assert_int_equal(aas_client_submit(c, &job, why, sizeof(why)), AAS_ERR_OK);
    flush_ok(c);
    assert_int_equal(aas_test_redis_int(&f->redis, "EXISTS", "aas:job:{big-t}", NULL), 0);
    aas_client_destroy(c);
    aas_conf_destroy(conf);
}

/* With a plain admin client: create topic (1 partition) with
 * max.message.bytes=max, or (create 0) set that on an existing topic. */
static void topic_max_set(const char *bootstrap, const char *topic, const char *max,
                          int create) {
    char why[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, why, sizeof(why)))
        fail_msg("conf: %s", why);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
    if (!rk) fail_msg("admin: %s", why);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    assert_non_null(q);
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_ConfigResource_t *res = NULL;
    if (create) {
        nt = rd_kafka_NewTopic_new(topic, 1, 1, why, sizeof(why));
        if (!nt) fail_msg("NewTopic: %s", why);
        assert_int_equal(rd_kafka_NewTopic_set_config(nt, "max.message.bytes", max),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    } else {
        res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
        assert_non_null(res);
        assert_int_equal(rd_kafka_ConfigResource_set_config(res, "max.message.bytes", max),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_AlterConfigs(rk, &res, 1, NULL, q);
    }
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    assert_non_null(ev);
    if (rd_kafka_event_error(ev)) fail_msg("admin: %s", rd_kafka_event_error_string(ev));
    size_t n = 0;
    if (create) {
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        assert_int_equal(n, 1);
        if (rd_kafka_topic_result_error(tr[0]))
            fail_msg("create %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
    } else {
        const rd_kafka_ConfigResource_t **rr = rd_kafka_AlterConfigs_result_resources(
            rd_kafka_event_AlterConfigs_result(ev), &n);
        assert_int_equal(n, 1);
        if (rd_kafka_ConfigResource_error(rr[0]))
            fail_msg("alter %s: %s", topic, rd_kafka_ConfigResource_error_string(rr[0]));
    }
    rd_kafka_event_destroy(ev);
    if (nt) rd_kafka_NewTopic_destroy(nt);
    if (res) rd_kafka_ConfigResource_destroy(res);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

typedef struct {
    aas_err_t err;
    char why[2048];
} delivery_t;

static void delivery_cb(void *opaque, const char *job_id, aas_err_t err, const char *why) {
    (void)job_id;
    delivery_t *d = opaque;
    d->err = err;
    snprintf(d->why, sizeof(d->why), "%s", why);
}

/* Real Kafka: the topic's max.message.bytes, read from the broker, binds
 * before sending; and when the topic's limit is lowered after the client
 * read it, the broker's refusal comes back as AAS_ERR_TOO_LARGE with the
 * limits, not as a bare "Broker: Message size too large". */
static void message_over_the_topic_limit_is_refused_naming_the_topic(void **state) {
    aas_fleet_t *f = *state;
    if (!f->broker.real) skip(); /* the dev broker has no topic configs */
    topic_max_set(f->broker.bootstrap, "aas.test.small", "6000", 1);
    aas_conf_t *conf = NULL;
    aas_client_t *c = client_with_arg(f, "topic.infer=aas.test.small", &conf);
    char why[2048];
    assert_int_equal(submit_n(c, "big-topic", 2000, 0.5f, why, sizeof(why)),
                     AAS_ERR_TOO_LARGE);
    print_message("%s\n", why);
    assert_non_null(strstr(why, "is over topic aas.test.small's max.message.bytes=6000 less "
                                "1024"));
    assert_non_null(strstr(why, "its message limit is 4,976 bytes"));
    flush_ok(c);
    aas_client_destroy(c);
    aas_conf_destroy(conf);

    topic_max_set(f->broker.bootstrap, "aas.test.late", "2000000", 1);
    c = client_with_arg(f, "topic.infer=aas.test.late", &conf);
    delivery_t d = {AAS_ERR_OK, ""};
    aas_client_set_delivery_cb(c, delivery_cb, &d);
    assert_int_equal(submit_n(c, "small-late", 10, 0.5f, why, sizeof(why)), AAS_ERR_OK);
    flush_ok(c); /* the client has read the topic's limit: 2000000 */
    topic_max_set(f->broker.bootstrap, "aas.test.late", "6000", 0);
    usleep(1000 * 1000); /* the broker applies the change from its metadata log */
    assert_int_equal(submit_n(c, "big-late", 2000, 0.5f, why, sizeof(why)), AAS_ERR_OK);
    size_t failed = 0;
    assert_int_equal(aas_client_flush(c, 60000, &failed, why, sizeof(why)), AAS_ERR_OK);
    print_message("%s\n", d.why);
    assert_int_equal(failed, 1);
    assert_int_equal(d.err, AAS_ERR_TOO_LARGE);
    assert_non_null(strstr(d.why, "the broker refused the message of 8,0"));
    assert_non_null(strstr(d.why, "topic aas.test.late max.message.bytes=2000000"));
    assert_int_equal(aas_test_redis_int(&f->redis, "EXISTS", "aas:job:{big-late}", NULL), 0);
    aas_client_destroy(c);
    aas_conf_destroy(conf);
}

typedef struct {
    int reports;
    rd_kafka_resp_err_t err;
} dr_t;

static void raw_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    dr_t *dr = opaque;
    dr->reports++;
    dr->err = m->err;
}

/* Produce one message of len bytes with a plain librdkafka producer that
 * allows 8 MB messages (so only the broker can refuse it); the delivery
 * report's error. */
static rd_kafka_resp_err_t raw_produce(const char *bootstrap, size_t len) {
    char why[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    const char *kv[] = {"bootstrap.servers", bootstrap, "message.max.bytes", "8000000",
                        "message.timeout.ms", "4000", "log_level", "0", NULL};
    for (int i = 0; kv[i]; i += 2)
        if (rd_kafka_conf_set(kc, kv[i], kv[i + 1], why, sizeof(why)))
            fail_msg("conf %s: %s", kv[i], why);
    dr_t dr = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
    rd_kafka_conf_set_dr_msg_cb(kc, raw_dr_cb);
    rd_kafka_conf_set_opaque(kc, &dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
    if (!rk) fail_msg("producer: %s", why);
    char *buf = calloc(1, len);
    assert_non_null(buf);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("aas.jobs.dlq"),
                                       RD_KAFKA_V_VALUE(buf, len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                       RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_flush(rk, 20000);
    rd_kafka_destroy(rk);
    assert_int_equal(dr.reports, 1);
    return dr.err;
}

/* ---- a producer shared by threads ---- */

#define SHARE_THREADS 4
#define SHARE_JOBS 50

typedef struct {
    aas_fleet_t *f;
    aas_client_t *via;
    int t;
    pthread_t self;
    int acked, wrong_thread, failed_flush;
    char why[512];
} share_arg_t;

static void share_cb(void *opaque, const char *job_id, aas_err_t err, const char *why) {
    (void)job_id;
    (void)why;
    share_arg_t *a = opaque;
    if (!pthread_equal(pthread_self(), a->self)) a->wrong_thread++;
    if (!err) a->acked++;
}

static void *share_thread(void *arg) {
    share_arg_t *a = arg;
    a->self = pthread_self();
    aas_client_t *c = NULL;
    if (aas_client_new_shared(a->f->conf, a->via, &c, a->why, sizeof(a->why))) return NULL;
    aas_client_set_delivery_cb(c, share_cb, a);
    for (int i = 0; i < SHARE_JOBS; i++) {
        char id[64];
        snprintf(id, sizeof(id), "shared-%d-%d", a->t, i);
        if (submit_n(c, id, 4, (float)i, a->why, sizeof(a->why))) break;
        /* Every few jobs, wait for this thread's own: the others' jobs
         * in flight must not hold it up nor count here. */
        size_t failed = 0;
        if (i % 7 == 6 &&
            (aas_client_flush(c, 60000, &failed, a->why, sizeof(a->why)) || failed))
            a->failed_flush++;
    }
    size_t failed = 0;
    if (aas_client_flush(c, 60000, &failed, a->why, sizeof(a->why)) || failed)
        a->failed_flush++;
    /* Withdraws nothing: a shared producer's jobs are not one client's. */
    if (aas_client_abandon(c) != 0) a->failed_flush++;
    aas_client_destroy(c);
    return NULL;
}

static atomic_int share_stop;
static void *share_poller(void *arg) {
    while (!atomic_load(&share_stop)) aas_client_poll(arg, 50);
    return NULL;
}

static void shared_producer_reports_each_job_to_its_own_client(void **state) {
    aas_fleet_t *f = *state;
    const char *boot = aas_conf_get(f->conf, "kafka.bootstrap.servers");
    const char *topic = aas_conf_get(f->conf, "topic.infer");
    int64_t before = topic_messages(boot, topic);
    aas_client_t *via = NULL;
    char why[512];
    assert_int_equal(aas_client_new(f->conf, &via, why, sizeof(why)), AAS_ERR_OK);
    aas_client_t *nested = NULL;
    assert_int_equal(aas_client_new_shared(f->conf, via, &nested, why, sizeof(why)), AAS_ERR_OK);
    aas_client_t *bad = NULL;
    assert_int_equal(aas_client_new_shared(f->conf, nested, &bad, why, sizeof(why)),
                     AAS_ERR_INVAL); /* shares a client's own producer only */
    aas_client_destroy(nested);
    atomic_store(&share_stop, 0);
    pthread_t poller, th[SHARE_THREADS];
    assert_int_equal(pthread_create(&poller, NULL, share_poller, via), 0);
    share_arg_t args[SHARE_THREADS];
    memset(args, 0, sizeof(args));
    for (int t = 0; t < SHARE_THREADS; t++) {
        args[t].f = f;
        args[t].via = via;
        args[t].t = t;
        assert_int_equal(pthread_create(&th[t], NULL, share_thread, &args[t]), 0);
    }
    for (int t = 0; t < SHARE_THREADS; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
    atomic_store(&share_stop, 1);
    assert_int_equal(pthread_join(poller, NULL), 0);
    for (int t = 0; t < SHARE_THREADS; t++) {
        if (args[t].acked != SHARE_JOBS) fail_msg("thread %d: %d acked: %s", t, args[t].acked,
                                                  args[t].why);
        assert_int_equal(args[t].wrong_thread, 0);
        assert_int_equal(args[t].failed_flush, 0);
    }
    for (int t = 0; t < SHARE_THREADS; t++)
        for (int i = 0; i < SHARE_JOBS; i += 13) {
            char key[64], st[32];
            snprintf(key, sizeof(key), "aas:job:{shared-%d-%d}", t, i);
            assert_int_equal(aas_test_redis_cmd(&f->redis, st, sizeof(st), "HGET", key,
                                                "status", NULL), 0);
            assert_string_equal(st, "QUEUED");
        }
    assert_int_equal(topic_messages(boot, topic) - before, SHARE_THREADS * SHARE_JOBS);
    /* The claim still holds across clients of one producer. */
    aas_client_t *c = NULL;
    assert_int_equal(aas_client_new_shared(f->conf, via, &c, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(submit_n(c, "shared-0-0", 4, 9.0f, why, sizeof(why)), AAS_ERR_CONFLICT);
    aas_client_destroy(c);
    aas_client_destroy(via);
}

/* ---- many jobs in one call ---- */

#define MANY_JOBS 150 /* three claim batches of at most 64 */

typedef struct {
    int acked, twice;
    unsigned char seen[MANY_JOBS];
} many_cb_t;

static void many_cb(void *opaque, const char *job_id, aas_err_t err, const char *why) {
    (void)why;
    many_cb_t *m = opaque;
    if (err) return;
    int i = -1;
    if (sscanf(job_id, "many-%d", &i) != 1 || i < 0 || i >= MANY_JOBS) return;
    if (m->seen[i]++) m->twice++;
    m->acked++;
}

static void submit_many_gives_each_job_its_own_outcome(void **state) {
    aas_fleet_t *f = *state;
    const char *topic = aas_conf_get(f->conf, "topic.infer");
    char why[2048];
    assert_int_equal(submit_n(f->client, "many-taken", 4, 0.5f, why, sizeof(why)), AAS_ERR_OK);
    flush_ok(f->client);
    int64_t before = topic_messages(f->broker.bootstrap, topic);
    static char ids[MANY_JOBS][32];
    static aas_client_submission_t subs[MANY_JOBS];
    float x[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    int64_t shape[2] = {1, 4};
    aas_tensor_t t[MANY_JOBS];
    aas_job_t jobs[MANY_JOBS];
    for (int i = 0; i < MANY_JOBS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "many-%d", i);
        if (i == 5) snprintf(ids[i], sizeof(ids[i]), "-many-bad"); /* the id rule */
        if (i == 70) snprintf(ids[i], sizeof(ids[i]), "many-taken"); /* in use */
        x[0] = (float)i;
        assert_int_equal(aas_tensor_set_f32(&t[i], "x", x, 2, shape), AAS_ERR_OK);
        jobs[i] = (aas_job_t){.id = ids[i], .kind = AAS_JOB_INFER, .model = AAS_FLEET_MODEL,
                              .inputs = &t[i], .n_inputs = 1};
        subs[i] = (aas_client_submission_t){.job = &jobs[i]};
    }
    many_cb_t m = {0};
    aas_client_set_delivery_cb(f->client, many_cb, &m);
    /* The first refused job's error is the call's. */
    assert_int_equal(aas_client_submit_many(f->client, subs, MANY_JOBS, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "invalid job id"));
    flush_ok(f->client);
    aas_client_set_delivery_cb(f->client, NULL, NULL);
    for (int i = 0; i < MANY_JOBS; i++) aas_tensor_clear(&t[i]);
    for (int i = 0; i < MANY_JOBS; i++) {
        aas_err_t want = i == 5 ? AAS_ERR_INVAL : i == 70 ? AAS_ERR_CONFLICT : AAS_ERR_OK;
        if (subs[i].err != want)
            fail_msg("job %d: %s, want %s: %s", i, aas_err_name(subs[i].err),
                     aas_err_name(want), subs[i].why);
    }
    assert_non_null(strstr(subs[70].why, "many-taken"));
    assert_int_equal(m.acked, MANY_JOBS - 2);
    assert_int_equal(m.twice, 0);
    assert_int_equal(topic_messages(f->broker.bootstrap, topic) - before, MANY_JOBS - 2);
    for (int i = 0; i < MANY_JOBS; i += 7) {
        if (i == 70) continue;
        char key[64], st[32];
        snprintf(key, sizeof(key), "aas:job:{%.31s}", ids[i]);
        assert_int_equal(aas_test_redis_cmd(&f->redis, st, sizeof(st), "HGET", key, "status",
                                            NULL), 0);
        assert_string_equal(st, i == 5 ? "(nil)" : "QUEUED");
    }
}

static void devbroker_refuses_a_message_it_could_not_keep(void **state) {
    aas_fleet_t *f = *state;
    if (f->broker.real) skip(); /* real Kafka has max.message.bytes of its own */
    /* 6 MiB: over the 5 MiB a mock partition keeps; it used to be acked. */
    rd_kafka_resp_err_t err = raw_produce(f->broker.bootstrap, 6u << 20);
    print_message("6 MiB message: %s\n", rd_kafka_err2str(err));
    assert_int_not_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
    /* Under the limit still goes, and the broker is still up. */
    assert_int_equal(raw_produce(f->broker.bootstrap, 512u << 10),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(id_over_the_id_rule_is_refused_everywhere_not_cut),
        cmocka_unit_test(id_in_use_is_refused_unless_idempotent_with_the_same_payload),
        cmocka_unit_test(message_over_the_client_limit_is_refused_naming_the_key),
        cmocka_unit_test(message_just_under_the_client_limit_is_published),
        cmocka_unit_test(message_over_the_producer_limit_is_refused_naming_every_limit),
        cmocka_unit_test(text_over_the_client_limit_is_refused_naming_the_key),
        cmocka_unit_test(message_over_the_topic_limit_is_refused_naming_the_topic),
        cmocka_unit_test(devbroker_refuses_a_message_it_could_not_keep),
        cmocka_unit_test(shared_producer_reports_each_job_to_its_own_client),
        cmocka_unit_test(submit_many_gives_each_job_its_own_outcome),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
