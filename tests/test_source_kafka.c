/*
 * test_source_kafka.c - the Kafka topic slice source (worker/source_kafka.c)
 * on a real broker: the dev broker (AAS_TEST_BROKER=dev) or Apache Kafka
 * (AAS_TEST_BROKER=kafka, tools/kafka-local), whichever the harness starts.
 *
 * The harness creates the aas topics with 3 partitions; this test uses
 * them as plain data topics: aas.jobs.train gets N lines with known
 * partitions, offsets and timestamps (line i: partition i % 3, offset i / 3,
 * timestamp T0 + i s), aas.jobs.dlq a value with an inner newline, and
 * aas.jobs.infer stays empty.  Also: the job params (table-driven) and
 * aas-producer train's client-side check of the same values (exit 2).
 *
 * Dev broker limits (librdkafka's mock cluster): timestamp look-ups answer
 * the end of the partition (the time-range test is skipped there), and a
 * metadata request for a missing topic creates it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "harness_proc.h"
#include "log.h"
#include "source.h"

#define N_LINES 300
#define N_PARTS 3
#define DATA_TOPIC "aas.jobs.train"
#define BAD_TOPIC "aas.jobs.dlq"
#define EMPTY_TOPIC "aas.jobs.infer"

static const aas_conf_def_t no_defs[] = {AAS_CONF_END};

typedef struct {
    char dir[128];
    aas_test_broker_t broker;
    aas_conf_t *conf;
    int64_t t0;          /* timestamp of line 0, ms */
} fixture_t;

static fixture_t fx;

static void expected_line(int i, char *buf, size_t size) {
    snprintf(buf, size, "c%d\ttext %d", i % 5, i);
}

static int delivery_failures;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk, (void)opaque;
    if (m->err) {
        fprintf(stderr, "delivery: %s\n", rd_kafka_err2str(m->err));
        delivery_failures++;
    }
}

static rd_kafka_t *producer_new(void) {
    char why[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", fx.broker.bootstrap, why, sizeof(why)) ||
        rd_kafka_conf_set(kc, "linger.ms", "5", why, sizeof(why))) {
        fprintf(stderr, "producer conf: %s\n", why);
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
    if (!rk) {
        fprintf(stderr, "producer: %s\n", why);
        rd_kafka_conf_destroy(kc);
    }
    return rk;
}

static int produce(rd_kafka_t *rk, const char *topic, int32_t part, const char *v,
                   size_t len, int64_t ts) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
        RD_KAFKA_V_VALUE((void *)v, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
    if (e) fprintf(stderr, "producev: %s\n", rd_kafka_err2str(e));
    return e ? -1 : 0;
}

/* Lines 0..N-1 with trailing "\n" or "\r\n" on some (stripped by the
 * source), and the inner-newline topic. */
static int produce_all(void) {
    rd_kafka_t *rk = producer_new();
    if (!rk) return -1;
    int rc = 0;
    for (int i = 0; !rc && i < N_LINES; i++) {
        char v[64];
        expected_line(i, v, sizeof(v));
        if (i % 7 == 3) strcat(v, "\n");
        else if (i % 11 == 4) strcat(v, "\r\n");
        rc = produce(rk, DATA_TOPIC, i % N_PARTS, v, strlen(v), fx.t0 + (int64_t)i * 1000);
    }
    if (!rc) rc = produce(rk, BAD_TOPIC, 0, "a\tfine", 6, fx.t0);
    if (!rc) rc = produce(rk, BAD_TOPIC, 0, "b\ttwo\nlines", 11, fx.t0);
    if (!rc && rd_kafka_flush(rk, 60000)) rc = -1;
    if (delivery_failures) rc = -1;
    rd_kafka_destroy(rk);
    return rc;
}

static int setup(void **state) {
    (void)state;
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/aas-srck.XXXXXX");
    if (!mkdtemp(fx.dir)) return -1;
    if (aas_test_broker_start(&fx.broker, AAS_BIN_DIR, fx.dir, N_PARTS)) return -1;
    char why[256];
    if (aas_conf_new(no_defs, &fx.conf) ||
        aas_conf_set(fx.conf, "kafka.bootstrap.servers", fx.broker.bootstrap,
                     AAS_CONF_SRC_ARGV, why, sizeof(why)))
        return -1;
    /* AAS_TEST_KAFKA_DEBUG=cgrp,fetch: librdkafka's debug contexts. */
    const char *dbg = getenv("AAS_TEST_KAFKA_DEBUG");
    if (dbg && aas_conf_set(fx.conf, "kafka.debug", dbg, AAS_CONF_SRC_ARGV, why, sizeof(why)))
        return -1;
    if (dbg) aas_log_level_set(AAS_LOG_DEBUG);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* Two hours ago, so no broker refuses the timestamps as future ones. */
    fx.t0 = ((int64_t)ts.tv_sec - 7200) * 1000;
    return produce_all();
}

static int teardown(void **state) {
    (void)state;
    aas_conf_destroy(fx.conf);
    aas_test_broker_stop(&fx.broker);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fx.dir);
    return 0;
}

static aas_src_kafka_t slice(const char *topic) {
    return (aas_src_kafka_t){.topic = topic, .start_offset = 0, .start_ms = -1,
                             .end_offset = -1, .end_ms = -1, .format = AAS_SRC_TSV};
}

static int cmp_int(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

/* Read a whole pass: the line indices (sorted) into got; each line must be
 * exactly its expected text, and each partition's lines in offset order. */
static size_t read_pass(aas_src_t *s, int *got, size_t cap) {
    size_t n = 0;
    int last[N_PARTS] = {-1, -1, -1};
    char why[512];
    for (;;) {
        const char *line;
        size_t len;
        int eof;
        aas_err_t err = aas_src_next(s, &line, &len, &eof, why, sizeof(why));
        if (err) fail_msg("next: %s", why);
        if (eof) break;
        int i = -1;
        char copy[64], want[64];
        assert_true(len < sizeof(copy));
        memcpy(copy, line, len);
        copy[len] = '\0';
        const char *sp = strrchr(copy, ' ');
        assert_non_null(sp);
        i = atoi(sp + 1);
        expected_line(i, want, sizeof(want));
        assert_string_equal(copy, want);
        assert_true(i > last[i % N_PARTS]);
        last[i % N_PARTS] = i;
        assert_true(n < cap);
        got[n++] = i;
    }
    /* eof stays eof */
    const char *line;
    size_t len;
    int eof = 0;
    assert_int_equal(aas_src_next(s, &line, &len, &eof, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(eof, 1);
    qsort(got, n, sizeof(int), cmp_int);
    return n;
}

/* The indices i in [lo, hi) whose partition is in mask, sorted. */
static size_t expect(int lo, int hi, unsigned mask, int *out) {
    size_t n = 0;
    for (int i = lo; i < hi; i++)
        if (mask & (1u << (i % N_PARTS))) out[n++] = i;
    return n;
}

static void check_slice(const aas_src_kafka_t *spec, const int *want, size_t n_want,
                        int passes) {
    aas_src_t *s = NULL;
    char why[512];
    aas_err_t err = aas_src_open_kafka(fx.conf, spec, &s, why, sizeof(why));
    if (err) fail_msg("open: %s", why);
    aas_src_info_t info;
    aas_src_info(s, &info);
    assert_int_equal(info.rows, -1);
    assert_int_equal(info.format, spec->format);
    char name[300];
    snprintf(name, sizeof(name), "topic %s", spec->topic);
    assert_string_equal(info.name, name);
    int *got = malloc(sizeof(int) * (N_LINES + 16));
    assert_non_null(got);
    for (int pass = 0; pass < passes; pass++) {
        if (pass) assert_int_equal(aas_src_rewind(s, 1234 + pass, why, sizeof(why)), AAS_ERR_OK);
        size_t n = read_pass(s, got, N_LINES + 16);
        assert_int_equal(n, n_want);
        assert_memory_equal(got, want, n * sizeof(int));
        assert_true(aas_src_footprint(s) > 0);
        /* the 16 MiB prefetch bound, a message and the handle */
        assert_true(aas_src_footprint(s) <= ((size_t)17 << 20));
    }
    free(got);
    aas_src_destroy(s);
}

static void full_slice_yields_every_line_and_again_after_rewind(void **state) {
    (void)state;
    int want[N_LINES];
    size_t n = expect(0, N_LINES, 7, want);
    aas_src_kafka_t sp = slice(DATA_TOPIC);
    check_slice(&sp, want, n, 3);
}

static void a_partition_subset_yields_only_its_lines(void **state) {
    (void)state;
    int want[N_LINES];
    int32_t parts[] = {2, 0};
    aas_src_kafka_t sp = slice(DATA_TOPIC);
    sp.partitions = parts;
    sp.n_partitions = 2;
    check_slice(&sp, want, expect(0, N_LINES, 1u | 4u, want), 2);
    int32_t one[] = {1};
    sp.partitions = one;
    sp.n_partitions = 1;
    check_slice(&sp, want, expect(0, N_LINES, 2u, want), 1);
}

static void an_offset_range_is_start_inclusive_end_exclusive(void **state) {
    (void)state;
    int want[N_LINES];
    aas_src_kafka_t sp = slice(DATA_TOPIC);
    sp.start_offset = 10; /* lines 30.. in each partition */
    sp.end_offset = 20;   /* .. up to line 59 */
    check_slice(&sp, want, expect(30, 60, 7, want), 2);
    /* An end beyond the high watermark stops at it. */
    sp.end_offset = 1000000;
    check_slice(&sp, want, expect(30, N_LINES, 7, want), 1);
}

static void a_time_range_selects_records_by_timestamp(void **state) {
    (void)state;
    if (!fx.broker.real) {
        /* librdkafka's mock cluster (the dev broker) answers every
         * timestamp look-up with the end of the partition. */
        fprintf(stderr, "skipped on the dev broker: no offsets by timestamp\n");
        skip();
    }
    int want[N_LINES];
    aas_src_kafka_t sp = slice(DATA_TOPIC);
    sp.start_ms = fx.t0 + 100 * 1000;
    sp.end_ms = fx.t0 + 199 * 1000; /* the first record at or after: line 199, excluded */
    check_slice(&sp, want, expect(100, 199, 7, want), 2);
    /* Mixed: a start time, the default end. */
    sp.end_ms = -1;
    sp.start_ms = fx.t0 + 250 * 1000 + 1;  /* first line at or after: 251 */
    check_slice(&sp, want, expect(251, N_LINES, 7, want), 1);
    /* A start time before every record: all of them. */
    sp.start_ms = 0;
    check_slice(&sp, want, expect(0, N_LINES, 7, want), 1);
}

static void an_empty_slice_is_refused_clearly(void **state) {
    (void)state;
    aas_src_t *s = NULL;
    char why[512];
    aas_src_kafka_t sp = slice(DATA_TOPIC);
    sp.start_offset = 5;
    sp.end_offset = 5;
    assert_int_equal(aas_src_open_kafka(fx.conf, &sp, &s, why, sizeof(why)), AAS_ERR_INVAL);
    assert_null(s);
    assert_non_null(strstr(why, "holds no records"));
    assert_non_null(strstr(why, DATA_TOPIC));
    /* Past the last timestamp. */
    sp = slice(DATA_TOPIC);
    sp.start_ms = fx.t0 + (int64_t)N_LINES * 1000;
    assert_int_equal(aas_src_open_kafka(fx.conf, &sp, &s, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "holds no records"));
    assert_non_null(strstr(why, "time:"));
    /* A topic nothing was written to. */
    sp = slice(EMPTY_TOPIC);
    assert_int_equal(aas_src_open_kafka(fx.conf, &sp, &s, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "holds no records"));
    assert_null(s);
}

static void a_missing_topic_or_partition_is_not_found(void **state) {
    (void)state;
    aas_src_t *s = NULL;
    char why[512];
    aas_src_kafka_t sp = slice("aas.test.no-such-topic");
    aas_err_t err = aas_src_open_kafka(fx.conf, &sp, &s, why, sizeof(why));
    /* The dev broker creates a topic a metadata request names (4 empty
     * partitions), so there the slice is empty instead. */
    aas_err_t want = fx.broker.real ? AAS_ERR_NOT_FOUND : AAS_ERR_INVAL;
    if (err != want) fail_msg("missing topic: %s: %s", aas_err_name(err), why);
    assert_non_null(strstr(why, "aas.test.no-such-topic"));
    assert_non_null(strstr(why, fx.broker.real ? "no such topic" : "holds no records"));
    assert_null(s);
    int32_t parts[] = {0, 7};
    sp = slice(DATA_TOPIC);
    sp.partitions = parts;
    sp.n_partitions = 2;
    assert_int_equal(aas_src_open_kafka(fx.conf, &sp, &s, why, sizeof(why)),
                     AAS_ERR_NOT_FOUND);
    assert_non_null(strstr(why, "no partition 7"));
    sp = slice("not a topic!");
    assert_int_equal(aas_src_open_kafka(fx.conf, &sp, &s, why, sizeof(why)), AAS_ERR_INVAL);
}

static void a_value_with_an_inner_newline_is_an_error_naming_it(void **state) {
    (void)state;
    aas_src_t *s = NULL;
    char why[512];
    int32_t p0[] = {0};
    aas_src_kafka_t sp = slice(BAD_TOPIC);
    sp.partitions = p0;
    sp.n_partitions = 1;
    if (aas_src_open_kafka(fx.conf, &sp, &s, why, sizeof(why))) fail_msg("open: %s", why);
    const char *line;
    size_t len;
    int eof;
    assert_int_equal(aas_src_next(s, &line, &len, &eof, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(eof, 0);
    assert_int_equal(len, 6);
    assert_memory_equal(line, "a\tfine", 6);
    assert_int_equal(aas_src_next(s, &line, &len, &eof, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "topic " BAD_TOPIC " partition 0 offset 1"));
    aas_src_destroy(s);
}

/* A broker that is away: next() gives up with a retriable error (after the
 * stall limit (5 s here), never hanging), and once the broker is back
 * the same source, called again, finishes the pass. */
static void a_broker_away_is_a_retriable_error_then_the_pass_resumes(void **state) {
    (void)state;
    aas_src_t *s = NULL;
    char why[512];
    aas_src_kafka_t sp = slice(DATA_TOPIC);
    sp.stall_ms = 5000; /* the worker's train.source.stall.ms: 60 s by default */
    if (aas_src_open_kafka(fx.conf, &sp, &s, why, sizeof(why))) fail_msg("open: %s", why);
    int *got = malloc(sizeof(int) * (N_LINES + 16)), want[N_LINES];
    assert_non_null(got);
    size_t n_want = expect(0, N_LINES, 7, want);
    assert_int_equal(read_pass(s, got, N_LINES + 16), n_want);
    assert_int_equal(aas_test_broker_outage(&fx.broker, 1), 0);
    /* Everything of the first pass was fetched: the second must fetch. */
    assert_int_equal(aas_src_rewind(s, 0, why, sizeof(why)), AAS_ERR_OK);
    const char *line;
    size_t len;
    int eof = 0;
    aas_err_t err = AAS_ERR_OK;
    size_t before = 0;
    time_t t0 = time(NULL);
    while (!(err = aas_src_next(s, &line, &len, &eof, why, sizeof(why))) && !eof) before++;
    fprintf(stderr, "broker away: %zu lines, then after %lds: %s\n", before,
            (long)(time(NULL) - t0), err ? why : "eof");
    assert_true(aas_err_is_retriable(err));
    assert_non_null(strstr(why, "no record in"));
    assert_true(time(NULL) - t0 < 60);
    assert_int_equal(aas_test_broker_outage(&fx.broker, 0), 0);
    size_t after = 0;
    int last[N_PARTS] = {-1, -1, -1};
    for (;;) {
        err = aas_src_next(s, &line, &len, &eof, why, sizeof(why));
        if (err && aas_err_is_retriable(err)) continue; /* still reconnecting */
        if (err) fail_msg("next: %s", why);
        if (eof) break;
        char copy[64];
        assert_true(len < sizeof(copy));
        memcpy(copy, line, len);
        copy[len] = '\0';
        int i = atoi(strrchr(copy, ' ') + 1);
        assert_true(i > last[i % N_PARTS]);
        last[i % N_PARTS] = i;
        after++;
    }
    assert_int_equal(before + after, n_want);
    free(got);
    aas_src_destroy(s);
}

/* Records appended after the source opened are not in any pass. */
static void the_end_is_fixed_when_the_source_opens(void **state) {
    (void)state;
    aas_src_t *s = NULL;
    char why[512];
    aas_src_kafka_t sp = slice(DATA_TOPIC);
    if (aas_src_open_kafka(fx.conf, &sp, &s, why, sizeof(why))) fail_msg("open: %s", why);
    rd_kafka_t *rk = producer_new();
    assert_non_null(rk);
    for (int p = 0; p < N_PARTS; p++)
        assert_int_equal(produce(rk, DATA_TOPIC, p, "c9\tlate", 7, fx.t0), 0);
    assert_int_equal(rd_kafka_flush(rk, 60000), 0);
    rd_kafka_destroy(rk);
    assert_int_equal(delivery_failures, 0);
    int want[N_LINES], *got = malloc(sizeof(int) * (N_LINES + 16));
    assert_non_null(got);
    size_t n = expect(0, N_LINES, 7, want);
    for (int pass = 0; pass < 2; pass++) {
        if (pass) assert_int_equal(aas_src_rewind(s, 0, why, sizeof(why)), AAS_ERR_OK);
        assert_int_equal(read_pass(s, got, N_LINES + 16), n);
        assert_memory_equal(got, want, n * sizeof(int));
    }
    free(got);
    aas_src_destroy(s);
}

/* ---- params ---- */

typedef struct {
    const char *k[5], *v[5];
    aas_err_t err;
    const char *why;   /* substring of the error, or NULL */
} param_case_t;

static const param_case_t param_cases[] = {
    {{"data_topic", "data_partitions"}, {"t", ""}, AAS_ERR_INVAL, "param data_partitions"},
    {{"data_topic", "data_partitions"}, {"t", "0,,1"}, AAS_ERR_INVAL, "param data_partitions"},
    {{"data_topic", "data_partitions"}, {"t", "0,1,0"}, AAS_ERR_INVAL, "distinct"},
    {{"data_topic", "data_partitions"}, {"t", "-1"}, AAS_ERR_INVAL, "param data_partitions"},
    {{"data_topic", "data_partitions"}, {"t", "2147483648"}, AAS_ERR_INVAL, "param data_partitions"},
    {{"data_topic", "data_partitions"}, {"t", "0,1,2,3,4,5,6,7,8"}, AAS_ERR_INVAL, "more than 8"},
    {{"data_topic"}, {""}, AAS_ERR_INVAL, "param data_topic"},
    {{"data_topic"}, {"a b"}, AAS_ERR_INVAL, "param data_topic"},
    {{"data_topic"}, {".."}, AAS_ERR_INVAL, "param data_topic"},
    {{"data_topic"}, {"t/x"}, AAS_ERR_INVAL, "[A-Za-z0-9._-]"},
    {{"data_topic", "data_start"}, {"t", "begin"}, AAS_ERR_INVAL, "param data_start"},
    {{"data_topic", "data_start"}, {"t", "-5"}, AAS_ERR_INVAL, "'time:<unix ms>'"},
    {{"data_topic", "data_start"}, {"t", "time:"}, AAS_ERR_INVAL, "param data_start"},
    {{"data_topic", "data_start"}, {"t", "time:-1"}, AAS_ERR_INVAL, "param data_start"},
    {{"data_topic", "data_start"}, {"t", "99999999999999999999"}, AAS_ERR_INVAL, "param data_start"},
    {{"data_topic", "data_end"}, {"t", "beginning"}, AAS_ERR_INVAL, "param data_end"},
    {{"data_topic", "data_end"}, {"t", "1.5"}, AAS_ERR_INVAL, "'end'"},
    {{"data_topic", "data_format"}, {"t", "json"}, AAS_ERR_INVAL, "param data_format"},
    {{"data_topic", "data_format"}, {"t", "TSV"}, AAS_ERR_INVAL, "tsv"},
    {{"data_topic"}, {"a-b.c_D9"}, AAS_ERR_OK, NULL},
    {{"data_topic", "data_partitions", "data_start", "data_end", "data_format"},
     {"t", "3,0", "time:1700000000000", "42", "csv"}, AAS_ERR_OK, NULL},
};

static void job_params_are_parsed_or_refused_naming_the_param(void **state) {
    (void)state;
    char why[512];
    for (size_t c = 0; c < sizeof(param_cases) / sizeof(param_cases[0]); c++) {
        const param_case_t *pc = &param_cases[c];
        aas_kv_t kv[5];
        size_t n = 0;
        for (; n < 5 && pc->k[n]; n++) kv[n] = (aas_kv_t){(char *)pc->k[n], (char *)pc->v[n]};
        aas_job_t job = {.id = "j", .kind = AAS_JOB_TRAIN, .params = kv, .n_params = n};
        aas_src_kafka_t spec = {.topic = "untouched"};
        int32_t parts[8];
        int present = -1;
        why[0] = '\0';
        aas_err_t err = aas_src_kafka_from_params(&job, &spec, parts, 8, &present, why,
                                                  sizeof(why));
        if (err != pc->err) fail_msg("case %zu: got %s (%s)", c, aas_err_name(err), why);
        if (pc->why && !strstr(why, pc->why))
            fail_msg("case %zu: '%s' lacks '%s'", c, why, pc->why);
        if (err) assert_string_equal(spec.topic, "untouched");
        else assert_int_equal(present, 1);
    }
    /* The defaults, and the full form. */
    aas_kv_t kv[5] = {{"data_topic", "topic.a"}};
    aas_job_t job = {.id = "j", .kind = AAS_JOB_TRAIN, .params = kv, .n_params = 1};
    aas_src_kafka_t spec;
    int32_t parts[8];
    int present = 0;
    assert_int_equal(aas_src_kafka_from_params(&job, &spec, parts, 8, &present, why,
                                               sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(present, 1);
    assert_string_equal(spec.topic, "topic.a");
    assert_null(spec.partitions);
    assert_int_equal(spec.start_offset, 0);
    assert_int_equal(spec.start_ms, -1);
    assert_int_equal(spec.end_offset, -1);
    assert_int_equal(spec.end_ms, -1);
    assert_int_equal(spec.format, AAS_SRC_TSV);
    kv[1] = (aas_kv_t){"data_partitions", "3,0"};
    kv[2] = (aas_kv_t){"data_start", "time:1700000000000"};
    kv[3] = (aas_kv_t){"data_end", "42"};
    kv[4] = (aas_kv_t){"data_format", "csv"};
    job.n_params = 5;
    assert_int_equal(aas_src_kafka_from_params(&job, &spec, parts, 8, &present, why,
                                               sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(spec.n_partitions, 2);
    assert_int_equal(spec.partitions[0], 3);
    assert_int_equal(spec.partitions[1], 0);
    assert_int_equal(spec.start_ms, 1700000000000LL);
    assert_int_equal(spec.end_offset, 42);
    assert_int_equal(spec.end_ms, -1);
    assert_int_equal(spec.format, AAS_SRC_CSV);
    kv[2] = (aas_kv_t){"data_start", "7"};
    kv[3] = (aas_kv_t){"data_end", "time:5"};
    assert_int_equal(aas_src_kafka_from_params(&job, &spec, parts, 8, &present, why,
                                               sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(spec.start_offset, 7);
    assert_int_equal(spec.start_ms, -1);
    assert_int_equal(spec.end_ms, 5);
    /* No data_topic: not a Kafka job, spec untouched. */
    kv[0] = (aas_kv_t){"hidden", "8"};
    job.n_params = 1;
    spec.topic = "untouched";
    assert_int_equal(aas_src_kafka_from_params(&job, &spec, parts, 8, &present, why,
                                               sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(present, 0);
    assert_string_equal(spec.topic, "untouched");
}

/* aas-producer train checks the same values before connecting (exit 2,
 * naming the option); no server is needed for that. */
static int run_producer(const char *args, const char *err_path) {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "%s/producer/aas-producer -X kafka.bootstrap.servers=127.0.0.1:1 "
             "-X redis.port=1 train --model m %s >/dev/null 2>%s",
             AAS_BIN_DIR, args, err_path);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void the_cli_refuses_bad_slice_options_before_connecting(void **state) {
    (void)state;
    static const struct {
        const char *args, *why;
    } cases[] = {
        {"--data-topic 'a b'", "--data-topic"},
        {"--data-topic t --data-partitions 0,x", "--data-partitions"},
        {"--data-topic t --data-partitions 1,1", "--data-partitions"},
        {"--data-topic t --data-start soon", "--data-start"},
        {"--data-topic t --data-start time:x", "--data-start"},
        {"--data-topic t --data-end beginning", "--data-end"},
        {"--data-topic t --data-end -3", "--data-end"},
        {"--data-topic t --param data_format=xml", "data_format"},
        {"--data-topic t --input /dev/null", "one of"},
        {"--data-topic t --dataset d", "one of"},
        {"--data-start 5 --input /dev/null", "--data-topic"},
        {"--data-topic t --param data_topic=u", "data_topic"},
    };
    char err_path[256];
    snprintf(err_path, sizeof(err_path), "%s/cli.err", fx.dir);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int rc = run_producer(cases[c].args, err_path);
        if (rc != 2) fail_msg("'%s': exit %d, want 2", cases[c].args, rc);
        if (!aas_test_log_contains(err_path, cases[c].why))
            fail_msg("'%s': stderr lacks '%s'", cases[c].args, cases[c].why);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(job_params_are_parsed_or_refused_naming_the_param),
        cmocka_unit_test(the_cli_refuses_bad_slice_options_before_connecting),
        cmocka_unit_test(full_slice_yields_every_line_and_again_after_rewind),
        cmocka_unit_test(a_partition_subset_yields_only_its_lines),
        cmocka_unit_test(an_offset_range_is_start_inclusive_end_exclusive),
        cmocka_unit_test(a_time_range_selects_records_by_timestamp),
        cmocka_unit_test(an_empty_slice_is_refused_clearly),
        cmocka_unit_test(a_missing_topic_or_partition_is_not_found),
        cmocka_unit_test(a_value_with_an_inner_newline_is_an_error_naming_it),
        cmocka_unit_test(a_broker_away_is_a_retriable_error_then_the_pass_resumes),
        /* last: it appends to the data topic */
        cmocka_unit_test(the_end_is_fixed_when_the_source_opens),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
