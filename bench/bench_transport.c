/*
 * bench_transport.c - the transport limits under the fleet: raw Kafka
 * produce-then-consume messages/s, and raw Redis writes/s shaped like a
 * worker's result write.  The end-to-end figures (bench_e2e) are read as a
 * fraction of these.  Not a test; it prints figures.
 *
 *   bench_transport kafka --brokers HOST:PORT [--label kafka|devbroker]
 *                   [--size N | --job-dim D] [--count N] [-X key=value]...
 *   bench_transport redis [--host H] --port P [--count N]
 *
 * Kafka: a fresh topic (created with the Admin API, or with --create auto
 * auto-created by the producer's metadata request: the dev broker's mock
 * cluster answers no CreateTopics; the output says which) receives COUNT
 * messages of SIZE bytes with 32-hex-digit keys, like jobs, through a
 * producer configured as the aas client's (idempotent, acks=all,
 * linger.ms=1: producer/client.c), then one consumer reads them all from
 * the beginning with assign() (no group join in the timing) and the batch
 * consume API.  It works in rounds of --round-bytes (default 12 MiB:
 * 3 MiB per partition of 4), because the dev broker keeps at most 5 MiB
 * per partition and silently drops older data (docs/devbroker.md); both
 * brokers get the same rounds.  produce msgs/s = COUNT / time producing
 * (until every delivery report is in), consume msgs/s = COUNT / time
 * consuming, produce-then-consume msgs/s = COUNT / both.
 *
 * Redis: per job one HSET of 4 fields (a ~200-byte value, as a result) and
 * one EXPIRE, on one connection: pipelined in batches of --batch jobs, then
 * unpipelined (one round trip per command) for --unpipelined-count jobs.
 * This program talks hiredis directly (not common/store.h) on purpose: it
 * measures the wire and the server, not our data model.
 *
 * Every librdkafka and hiredis call is checked; any failure exits 1.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "job.h"
#include "tensor.h"

#define MAX_X 64

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_transport: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t rand64(void) {
    uint64_t r;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) die("getrandom failed");
    return r;
}

static void usage(FILE *f) {
    fprintf(f,
"usage: bench_transport kafka --brokers LIST [options]\n"
"       bench_transport redis --port P [options]\n"
"kafka options:\n"
"  --brokers LIST       bootstrap.servers                     (required)\n"
"  --label NAME         name in the output (kafka, devbroker)  (default kafka)\n"
"  --size N             message bytes                          (default 4096)\n"
"  --job-dim D          instead of --size: the bytes of a real encoded job of\n"
"                       one row of D floats (common/codec.h)\n"
"  --count N            messages                               (default 200000)\n"
"  --partitions N       partitions of the fresh topic          (default 4)\n"
"  --create admin|auto  create the topic with the Admin API, or let the\n"
"                       producer auto-create it (dev broker: no CreateTopics)\n"
"                                                              (default admin)\n"
"  --round-bytes N      produce, then consume, this much at a time\n"
"                       (default 12582912: the dev broker keeps 5 MiB/partition)\n"
"  -X key=value         librdkafka property for producer and consumer\n"
"                       (repeatable; e.g. fetch.wait.max.ms=1 for the dev broker)\n"
"redis options:\n"
"  --host H             Redis host                             (default 127.0.0.1)\n"
"  --port P             Redis port                             (required)\n"
"  --count N            jobs written pipelined                 (default 200000)\n"
"  --batch N            jobs per pipeline batch                (default 256)\n"
"  --unpipelined-count N  jobs written one command at a time   (default count/20)\n"
"  --help               this text\n");
}

/* ------------------------------------------------------------------ kafka */

typedef struct {
    const char *brokers, *label;
    size_t size;
    int job_dim;
    long count;
    int partitions;
    int admin;              /* 1: create the topic with the Admin API */
    size_t round_bytes;
    const char *x[MAX_X];
    int nx;
} kopts_t;

typedef struct {
    long delivered, failed;
    char first_err[256];
} dr_state_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    dr_state_t *s = opaque;
    if (m->err) {
        if (!s->failed)
            snprintf(s->first_err, sizeof(s->first_err), "%s", rd_kafka_err2str(m->err));
        s->failed++;
    } else {
        s->delivered++;
    }
}

static void kconf_set(rd_kafka_conf_t *kc, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(kc, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
        die("librdkafka %s=%s: %s", k, v, err);
}

/* -X key=value pairs go to both roles; the other role's librdkafka logs a
 * warning for a property it ignores, which is harmless. */
static void kconf_apply_x(rd_kafka_conf_t *kc, const kopts_t *o) {
    for (int i = 0; i < o->nx; i++) {
        char kv[512];
        snprintf(kv, sizeof(kv), "%s", o->x[i]);
        char *eq = strchr(kv, '=');
        if (!eq) die("-X %s: want key=value", o->x[i]);
        *eq = '\0';
        kconf_set(kc, kv, eq + 1);
    }
}

/* The payload: size bytes, or the real Avro bytes of a one-row job of
 * job_dim floats (its size is what the fleet moves per job). */
static void *make_payload(const kopts_t *o, size_t *len) {
    if (!o->job_dim) {
        unsigned char *p = malloc(o->size);
        if (!p) die("out of memory");
        for (size_t i = 0; i < o->size; i++) p[i] = (unsigned char)(i * 131 + 7);
        *len = o->size;
        return p;
    }
    char why[512];
    aas_codec_t *codec = NULL;
    if (aas_codec_new(&codec, why, sizeof(why))) die("codec: %s", why);
    float *x = malloc(sizeof(float) * (size_t)o->job_dim);
    if (!x) die("out of memory");
    for (int i = 0; i < o->job_dim; i++) x[i] = (float)((i * 37) % 101) / 101.0f;
    aas_tensor_t t;
    int64_t shape[2] = {1, o->job_dim};
    if (aas_tensor_set_f32(&t, "input", x, 2, shape)) die("tensor: out of memory");
    char id[AAS_ID_MAX + 1];
    snprintf(id, sizeof(id), "%016" PRIx64 "%016" PRIx64, rand64(), rand64());
    aas_job_t job = {.id = id, .kind = AAS_JOB_INFER, .model = "bench-mlp784",
                     .inputs = &t, .n_inputs = 1, .submit_ms = aas_now_ms()};
    void *buf = NULL;
    if (aas_codec_job_encode(codec, &job, &buf, len, why, sizeof(why)))
        die("encode job: %s", why);
    aas_tensor_clear(&t);
    free(x);
    aas_codec_destroy(codec);
    return buf;
}

/* CreateTopics through the Admin API; exits on failure. */
static void admin_create_topic(rd_kafka_t *rk, const char *topic, int partitions) {
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
    if (!nt) die("NewTopic %s: %s", topic, err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    if (!q) die("queue_new failed");
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (!ao) die("AdminOptions_new failed");
    if (rd_kafka_AdminOptions_set_operation_timeout(ao, 30000, err, sizeof(err)) ||
        rd_kafka_AdminOptions_set_request_timeout(ao, 15000, err, sizeof(err)))
        die("AdminOptions: %s", err);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    if (!ev) die("CreateTopics %s: no answer in 60 s", topic);
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    if (!e) {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        if (!tr || n != 1) die("CreateTopics %s: unexpected result", topic);
        e = rd_kafka_topic_result_error(tr[0]);
        if (e) {
            const char *msg = rd_kafka_topic_result_error_string(tr[0]);
            snprintf(err, sizeof(err), "%s", msg ? msg : rd_kafka_err2str(e));
        }
    } else {
        snprintf(err, sizeof(err), "%s", rd_kafka_event_error_string(ev));
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    if (e)
        die("CreateTopics %s: %s (for a broker without the Admin API, such as "
            "the dev broker, use --create auto)", topic, err);
}

/* Create the topic with the Admin API (admin = 1) or let the producer's
 * metadata request auto-create it (admin = 0: librdkafka's mock cluster,
 * behind the dev broker, implements no CreateTopics and auto-creates a
 * topic with 4 partitions).  Then wait until every partition has a leader.
 * Returns the partition count. */
static int create_topic(rd_kafka_t *rk, const char *topic, int partitions, int admin) {
    if (admin) admin_create_topic(rk, topic, partitions);
    /* Wait until the metadata shows every partition with a leader; without
     * the Admin API this metadata request is what creates the topic. */
    int have = 0;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) die("topic_new %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
    for (int tries = 0;; tries++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t me = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        int ok = 0;
        if (!me && md->topic_cnt == 1 && !md->topics[0].err) {
            int led = 0;
            for (int p = 0; p < md->topics[0].partition_cnt; p++)
                if (md->topics[0].partitions[p].leader >= 0) led++;
            ok = led > 0 && led == md->topics[0].partition_cnt;
            have = md->topics[0].partition_cnt;
        }
        if (md) rd_kafka_metadata_destroy(md);
        if (ok) break;
        if (tries >= 100)
            die("topic %s not ready after 100 metadata requests (%s)", topic,
                me ? rd_kafka_err2str(me) : "no leaders");
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    rd_kafka_topic_destroy(rkt);
    if (have != partitions)
        fprintf(stderr, "bench_transport: topic %s has %d partitions (wanted %d)\n",
                topic, have, partitions);
    return have;
}

/* Best effort: the mock cluster has no DeleteTopics either. */
static void delete_topic(rd_kafka_t *rk, const char *topic) {
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    if (!dt || !q || !ao) die("DeleteTopics set-up failed");
    rd_kafka_DeleteTopics(rk, &dt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev) {
        fprintf(stderr, "bench_transport: DeleteTopics %s: no answer\n", topic);
    } else {
        rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
        const rd_kafka_DeleteTopics_result_t *res = rd_kafka_event_DeleteTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = res ? rd_kafka_DeleteTopics_result_topics(res, &n) : NULL;
        if (!e && tr && n == 1) e = rd_kafka_topic_result_error(tr[0]);
        if (e && e != RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION &&
            e != RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE)
            fprintf(stderr, "bench_transport: DeleteTopics %s: %s\n", topic, rd_kafka_err2str(e));
        rd_kafka_event_destroy(ev);
    }
    if (ao) rd_kafka_AdminOptions_destroy(ao);
    if (dt) rd_kafka_DeleteTopic_destroy(dt);
    if (q) rd_kafka_queue_destroy(q);
}

static int run_kafka(const kopts_t *o) {
    char err[512], topic[96], group[96];
    uint64_t tag = rand64();
    snprintf(topic, sizeof(topic), "bench.transport.%016" PRIx64, tag);
    snprintf(group, sizeof(group), "bench-transport-%016" PRIx64, tag);
    size_t size;
    void *payload = make_payload(o, &size);

    /* Producer: the aas client's settings (producer/client.c). */
    dr_state_t dr = {0};
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    kconf_set(pc, "bootstrap.servers", o->brokers);
    kconf_set(pc, "enable.idempotence", "true");
    kconf_set(pc, "acks", "all");
    kconf_set(pc, "linger.ms", "1");
    kconf_apply_x(pc, o);
    rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
    rd_kafka_conf_set_opaque(pc, &dr);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (!prod) die("producer: %s", err);
    int partitions = create_topic(prod, topic, o->partitions, o->admin);
    const char *how = o->admin ? "admin" : "auto";

    /* Consumer: assign() every partition from the beginning. */
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    kconf_set(cc, "bootstrap.servers", o->brokers);
    kconf_set(cc, "group.id", group);
    kconf_set(cc, "enable.auto.commit", "false");
    kconf_set(cc, "enable.auto.offset.store", "false");
    kconf_set(cc, "auto.offset.reset", "earliest");
    kconf_apply_x(cc, o);
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    if (!cons) die("consumer: %s", err);
    rd_kafka_resp_err_t ke = rd_kafka_poll_set_consumer(cons);
    if (ke) die("poll_set_consumer: %s", rd_kafka_err2str(ke));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    if (!parts) die("out of memory");
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if ((ke = rd_kafka_assign(cons, parts))) die("assign: %s", rd_kafka_err2str(ke));
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_queue_t *cq = rd_kafka_queue_get_consumer(cons);
    if (!cq) die("no consumer queue");

    /* Warm-up, not timed: one message through, so connecting, the offset
     * lookup of assign() and the first fetch are not in the figures. */
    if ((ke = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY("warm-up", 7),
                                RD_KAFKA_V_VALUE(payload, size),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)))
        die("produce: %s", rd_kafka_err2str(ke));
    if ((ke = rd_kafka_flush(prod, 60000))) die("flush: %s", rd_kafka_err2str(ke));
    if (dr.failed || dr.delivered != 1) die("warm-up message not delivered: %s", dr.first_err);
    dr.delivered = 0;
    for (double t = now_s();;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (m) {
            int e = m->err;
            if (e && e != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                die("consume: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (!e) break;
        }
        if (now_s() - t > 30) die("warm-up message not consumed in 30 s");
    }

    long per_round = (long)(o->round_bytes / size);
    if (per_round < 1) per_round = 1;
    if (per_round > o->count) per_round = o->count;
    double t_prod = 0, t_cons = 0;
    long produced = 0, consumed = 0, bad = 0;
    rd_kafka_message_t *msgs[1024];
    uint64_t key_hi = rand64();
    while (produced < o->count) {
        long n = o->count - produced < per_round ? o->count - produced : per_round;
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            char key[33];
            snprintf(key, sizeof(key), "%016" PRIx64 "%016" PRIx64, key_hi,
                     (uint64_t)(produced + i));
            for (int tries = 0;; tries++) {
                ke = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic),
                                       RD_KAFKA_V_KEY(key, 32),
                                       RD_KAFKA_V_VALUE(payload, size),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END);
                if (!ke) break;
                if (ke != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries > 6000)
                    die("produce: %s", rd_kafka_err2str(ke));
                rd_kafka_poll(prod, 10); /* delivery reports make room */
            }
        }
        if ((ke = rd_kafka_flush(prod, 60000)))
            die("flush: %s (%d left)", rd_kafka_err2str(ke), rd_kafka_outq_len(prod));
        if (dr.failed) die("%ld deliveries failed, first: %s", dr.failed, dr.first_err);
        double t1 = now_s();
        produced += n;
        long want = produced;
        double idle_since = now_s();
        while (consumed < want) {
            ssize_t got = rd_kafka_consume_batch_queue(cq, 100, msgs, 1024);
            if (got < 0) die("consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
            for (ssize_t i = 0; i < got; i++) {
                if (msgs[i]->err) {
                    if (msgs[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        die("consume: %s", rd_kafka_message_errstr(msgs[i]));
                } else {
                    consumed++;
                    if (msgs[i]->len != size) bad++;
                }
                rd_kafka_message_destroy(msgs[i]);
            }
            if (got > 0) idle_since = now_s();
            else if (now_s() - idle_since > 30)
                die("consume: nothing for 30 s with %ld of %ld read (data lost?)",
                    consumed, want);
        }
        double t2 = now_s();
        t_prod += t1 - t0;
        t_cons += t2 - t1;
    }
    if (dr.delivered != o->count) die("%ld delivered of %ld", dr.delivered, o->count);
    if (consumed != o->count) die("read %ld of %ld (more than produced)", consumed, o->count);
    if (bad) die("%ld messages with the wrong length", bad);

    rd_kafka_queue_destroy(cq);
    if ((ke = rd_kafka_consumer_close(cons))) die("consumer_close: %s", rd_kafka_err2str(ke));
    rd_kafka_destroy(cons);
    if (o->admin) delete_topic(prod, topic);
    rd_kafka_destroy(prod);
    free(payload);

    double prod_rate = (double)o->count / t_prod, cons_rate = (double)o->count / t_cons,
           both = (double)o->count / (t_prod + t_cons);
    long rounds = (o->count + per_round - 1) / per_round;
    printf("\n%s: %ld messages of %zu bytes%s, %d partitions, topic %s (%s), "
           "%ld round(s) of %ld\n", o->label, o->count, size,
           o->job_dim ? " (an encoded one-row job)" : "", partitions,
           topic, o->admin ? "created with the Admin API" : "auto-created",
           rounds, per_round);
    printf("| %-10s | %6s | %12s | %12s | %16s | %8s |\n", "target", "bytes",
           "produce/s", "consume/s", "produce+consume/s", "MB/s");
    printf("| %-10s | %6zu | %12.0f | %12.0f | %16.0f | %8.1f |\n", o->label, size,
           prod_rate, cons_rate, both, both * (double)size / 1e6);
    printf("RESULT bench=transport target=%s size=%zu count=%ld partitions=%d "
           "topic_create=%s produce_msgs_per_s=%.0f consume_msgs_per_s=%.0f "
           "msgs_per_s=%.0f\n", o->label, size, o->count, partitions, how,
           prod_rate, cons_rate, both);
    for (int i = 0; i < o->nx; i++) printf("  -X %s\n", o->x[i]);
    return 0;
}

/* ------------------------------------------------------------------ redis */

static void expect_int(redisContext *c, redisReply *r, const char *what) {
    if (!r) die("redis %s: %s", what, c->errstr[0] ? c->errstr : "no reply");
    if (r->type != REDIS_REPLY_INTEGER)
        die("redis %s: unexpected reply type %d%s%s", what, r->type,
            r->type == REDIS_REPLY_ERROR ? ": " : "",
            r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
}

static int append_job(redisContext *c, const char *key, const char *finished,
                      const char *value, size_t vlen) {
    if (redisAppendCommand(c, "HSET %s status SUCCEEDED worker bench-w1 "
                           "finished_ms %s result %b", key, finished, value, vlen) != REDIS_OK)
        return -1;
    return redisAppendCommand(c, "EXPIRE %s 300", key) == REDIS_OK ? 0 : -1;
}

static int run_redis(const char *host, int port, long count, int batch, long unpiped) {
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c) die("redis: cannot allocate a context");
    if (c->err) die("redis %s:%d: %s", host, port, c->errstr);
    if (redisSetTimeout(c, tv) != REDIS_OK) die("redis: set timeout: %s", c->errstr);
    char value[200], finished[24], prefix[64];
    for (size_t i = 0; i < sizeof(value); i++) value[i] = (char)('a' + i % 26);
    snprintf(finished, sizeof(finished), "%lld", (long long)aas_now_ms());
    snprintf(prefix, sizeof(prefix), "bench:transport:%016" PRIx64 ":", rand64());

    /* Pipelined: append batch jobs (2 commands each), then read every reply. */
    double t0 = now_s();
    for (long i = 0; i < count; i += batch) {
        long n = count - i < batch ? count - i : batch;
        for (long j = 0; j < n; j++) {
            char key[96];
            snprintf(key, sizeof(key), "%sp%ld", prefix, i + j);
            if (append_job(c, key, finished, value, sizeof(value)))
                die("redis append: %s", c->errstr);
        }
        for (long j = 0; j < 2 * n; j++) {
            void *r = NULL;
            if (redisGetReply(c, &r) != REDIS_OK) die("redis reply: %s", c->errstr);
            expect_int(c, r, j % 2 ? "EXPIRE" : "HSET");
        }
    }
    double t1 = now_s();
    /* Unpipelined: one round trip per command, as a naive client does. */
    for (long i = 0; i < unpiped; i++) {
        char key[96];
        snprintf(key, sizeof(key), "%su%ld", prefix, i);
        expect_int(c, redisCommand(c, "HSET %s status SUCCEEDED worker bench-w1 "
                                   "finished_ms %s result %b", key, finished,
                                   value, sizeof(value)), "HSET");
        expect_int(c, redisCommand(c, "EXPIRE %s 300", key), "EXPIRE");
    }
    double t2 = now_s();
    /* Clean up (not timed; the keys would expire in 5 minutes anyway). */
    for (int pass = 0; pass < 2; pass++) {
        long n = pass ? unpiped : count;
        for (long i = 0; i < n; i += 512) {
            long m = n - i < 512 ? n - i : 512;
            for (long j = 0; j < m; j++) {
                char key[96];
                snprintf(key, sizeof(key), "%s%c%ld", prefix, pass ? 'u' : 'p', i + j);
                if (redisAppendCommand(c, "UNLINK %s", key) != REDIS_OK)
                    die("redis append: %s", c->errstr);
            }
            for (long j = 0; j < m; j++) {
                void *r = NULL;
                if (redisGetReply(c, &r) != REDIS_OK) die("redis reply: %s", c->errstr);
                expect_int(c, r, "UNLINK");
            }
        }
    }
    redisFree(c);

    double piped = (double)count / (t1 - t0);
    double single = unpiped ? (double)unpiped / (t2 - t1) : 0;
    printf("\nredis %s:%d: per job HSET (4 fields, %zu-byte value) + EXPIRE, one connection\n",
           host, port, sizeof(value));
    printf("| %-12s | %8s | %10s | %12s |\n", "mode", "jobs", "jobs/s", "commands/s");
    printf("| %-12s | %8ld | %10.0f | %12.0f |\n", "pipelined", count, piped, 2 * piped);
    printf("| %-12s | %8ld | %10.0f | %12.0f |\n", "unpipelined", unpiped, single, 2 * single);
    printf("RESULT bench=transport target=redis mode=pipelined batch=%d count=%ld "
           "value_bytes=%zu msgs_per_s=%.0f commands_per_s=%.0f\n", batch, count,
           sizeof(value), piped, 2 * piped);
    if (unpiped)
        printf("RESULT bench=transport target=redis mode=unpipelined batch=1 count=%ld "
               "value_bytes=%zu msgs_per_s=%.0f commands_per_s=%.0f\n", unpiped,
               sizeof(value), single, 2 * single);
    return 0;
}

/* ------------------------------------------------------------------ main */

static long parse_long(const char *s, const char *what, long min, long max) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bench_transport: %s wants a number in %ld..%ld, not '%s'\n",
                what, min, max, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* hiredis: a dead Redis must give EPIPE */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *mode = argv[1];
    int is_kafka = !strcmp(mode, "kafka"), is_redis = !strcmp(mode, "redis");
    if (!is_kafka && !is_redis) {
        fprintf(stderr, "bench_transport: unknown target '%s' (kafka or redis)\n", mode);
        return 2;
    }
    kopts_t k = {.label = "kafka", .size = 4096, .count = 200000, .partitions = 4, .admin = 1,
                 .round_bytes = (size_t)12 << 20};
    const char *host = "127.0.0.1";
    int port = 0, batch = 256;
    long unpiped = -1;
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"label", required_argument, NULL, 'l'},
        {"size", required_argument, NULL, 's'},
        {"job-dim", required_argument, NULL, 'j'},
        {"count", required_argument, NULL, 'n'},
        {"partitions", required_argument, NULL, 'p'},
        {"round-bytes", required_argument, NULL, 'r'},
        {"create", required_argument, NULL, 'c'},
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'P'},
        {"batch", required_argument, NULL, 'B'},
        {"unpipelined-count", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "X:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'b': k.brokers = optarg; break;
        case 'l': k.label = optarg; break;
        case 's': k.size = (size_t)parse_long(optarg, "--size", 1, 1 << 20); break;
        case 'j': k.job_dim = (int)parse_long(optarg, "--job-dim", 1, 1 << 20); break;
        case 'n': k.count = parse_long(optarg, "--count", 1, 1L << 40); break;
        case 'p': k.partitions = (int)parse_long(optarg, "--partitions", 1, 1024); break;
        case 'r': k.round_bytes = (size_t)parse_long(optarg, "--round-bytes", 1, 1L << 40); break;
        case 'c':
            if (strcmp(optarg, "admin") && strcmp(optarg, "auto")) {
                fprintf(stderr, "bench_transport: --create wants admin or auto\n");
                return 2;
            }
            k.admin = !strcmp(optarg, "admin");
            break;
        case 'H': host = optarg; break;
        case 'P': port = (int)parse_long(optarg, "--port", 1, 65535); break;
        case 'B': batch = (int)parse_long(optarg, "--batch", 1, 1 << 20); break;
        case 'u': unpiped = parse_long(optarg, "--unpipelined-count", 0, 1L << 40); break;
        case 'X':
            if (k.nx == MAX_X) { fprintf(stderr, "bench_transport: too many -X\n"); return 2; }
            k.x[k.nx++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "bench_transport: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (is_kafka) {
        if (!k.brokers) {
            fprintf(stderr, "bench_transport: kafka needs --brokers\n");
            return 2;
        }
        return run_kafka(&k);
    }
    if (!port) {
        fprintf(stderr, "bench_transport: redis needs --port\n");
        return 2;
    }
    return run_redis(host, port, k.count, batch, unpiped < 0 ? k.count / 20 : unpiped);
}
