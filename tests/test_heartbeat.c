/* test_heartbeat.c - the worker heartbeat record: what the worker writes
 * the scheduler reads back exactly; bad records are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "heartbeat.h"

/* The record's text fields ("" for none). */
static void set_text(aas_heartbeat_t *hb, const char *id, const char *host,
                     const char *training, const char *partitions) {
    snprintf(hb->id, sizeof(hb->id), "%s", id);
    snprintf(hb->host, sizeof(hb->host), "%s", host);
    snprintf(hb->training, sizeof(hb->training), "%s", training);
    snprintf(hb->partitions, sizeof(hb->partitions), "%s", partitions);
}

static void a_record_round_trips(void **state) {
    aas_heartbeat_t hb = {.pid = 42, .started_ms = 1700000000000, .ts_ms = 1700000005000,
                          .done = 10, .failed = 2, .skipped = 1, .dlq = 3, .retries = 4,
                          .rate = 12.5, .metrics_port = 9101};
    set_text(&hb, "w-1", "host \"quoted\" \\ name", "train-7",
             "aas.jobs.infer/0,aas.jobs.infer/3,aas.jobs.train/1");
    snprintf(hb.group, sizeof(hb.group), "%s", "aas-trainers");
    char buf[2048], why[256];
    assert_int_equal(aas_heartbeat_format(&hb, buf, sizeof(buf), why, sizeof(why)),
                     AAS_ERR_OK);
    aas_heartbeat_t back;
    assert_int_equal(aas_heartbeat_parse(buf, &back, why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(back.id, "w-1");
    assert_string_equal(back.host, hb.host);
    assert_string_equal(back.training, "train-7");
    assert_string_equal(back.partitions, hb.partitions);
    assert_string_equal(back.group, "aas-trainers");
    assert_int_equal(back.pid, 42);
    assert_int_equal(back.started_ms, hb.started_ms);
    assert_int_equal(back.ts_ms, hb.ts_ms);
    assert_int_equal(back.done, 10);
    assert_int_equal(back.failed, 2);
    assert_int_equal(back.skipped, 1);
    assert_int_equal(back.dlq, 3);
    assert_int_equal(back.retries, 4);
    assert_int_equal(back.metrics_port, 9101);
    assert_true(back.rate > 12.49 && back.rate < 12.51);
    int32_t p[8];
    assert_int_equal(aas_heartbeat_partitions(&back, "aas.jobs.infer", p, 8), 2);
    assert_int_equal(p[0], 0);
    assert_int_equal(p[1], 3);
    assert_int_equal(aas_heartbeat_partitions(&back, "aas.jobs.train", p, 8), 1);
    assert_int_equal(aas_heartbeat_partitions(&back, "aas.jobs", p, 8), 0);
}

/* The record written by workers before this module (a fixed string format)
 * still reads, with no metrics port and no training job. */
static void an_older_record_reads(void **state) {
    const char *old = "{\"id\":\"vm-1\",\"host\":\"vm\",\"pid\":7,\"started_ms\":1,"
                      "\"done\":5,\"failed\":0,\"skipped\":0,\"dlq\":0,\"retries\":0,"
                      "\"rate\":1.500,\"training\":null,\"partitions\":\"t/1\",\"ts_ms\":2}";
    aas_heartbeat_t hb;
    assert_int_equal(aas_heartbeat_parse(old, &hb, NULL, 0), AAS_ERR_OK);
    assert_string_equal(hb.id, "vm-1");
    assert_string_equal(hb.training, "");
    assert_int_equal(hb.metrics_port, 0);
    assert_int_equal(hb.done, 5);
    /* No group: unknown, and counted by the scheduler of any group (a
     * worker older than the field, during a rolling upgrade). */
    assert_string_equal(hb.group, "");
    assert_int_equal(aas_heartbeat_in_group(&hb, "aas-workers"), 1);
    assert_int_equal(aas_heartbeat_in_group(&hb, "aas-trainers"), 1);
}

/* A record without a group (an older worker's) round-trips without one:
 * format writes no "group" key, parse reads "" back; a null group reads
 * as none too. */
static void a_record_without_a_group_round_trips(void **state) {
    aas_heartbeat_t hb = {.pid = 9, .started_ms = 1, .ts_ms = 2, .done = 3, .rate = 4};
    set_text(&hb, "w-old", "h", "", "aas.jobs.infer/2");
    char buf[2048], why[256];
    assert_int_equal(aas_heartbeat_format(&hb, buf, sizeof(buf), why, sizeof(why)),
                     AAS_ERR_OK);
    assert_null(strstr(buf, "\"group\""));
    aas_heartbeat_t back;
    memset(&back, 0x5a, sizeof(back));
    assert_int_equal(aas_heartbeat_parse(buf, &back, why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(back.id, "w-old");
    assert_string_equal(back.group, "");
    assert_string_equal(back.partitions, "aas.jobs.infer/2");
    assert_int_equal(aas_heartbeat_parse("{\"id\":\"w\",\"group\":null}", &back, why,
                                         sizeof(why)),
                     AAS_ERR_OK);
    assert_string_equal(back.group, "");
}

/* The scheduler of a group counts that group's workers and those whose
 * record names none, never another group's. */
static void only_the_same_group_or_an_unknown_one_counts(void **state) {
    aas_heartbeat_t hb = {.pid = 1};
    set_text(&hb, "w", "h", "", "");
    strcpy(hb.group, "aas-workers");
    assert_int_equal(aas_heartbeat_in_group(&hb, "aas-workers"), 1);
    assert_int_equal(aas_heartbeat_in_group(&hb, "aas-trainers"), 0);
    assert_int_equal(aas_heartbeat_in_group(&hb, "aas-workers2"), 0);
    assert_int_equal(aas_heartbeat_in_group(&hb, "aas"), 0);
    hb.group[0] = '\0';
    assert_int_equal(aas_heartbeat_in_group(&hb, "aas-trainers"), 1);
    /* Through the record, as the scheduler reads it. */
    strcpy(hb.group, "aas-trainers");
    char buf[2048], why[256];
    assert_int_equal(aas_heartbeat_format(&hb, buf, sizeof(buf), why, sizeof(why)),
                     AAS_ERR_OK);
    aas_heartbeat_t back;
    assert_int_equal(aas_heartbeat_parse(buf, &back, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_heartbeat_in_group(&back, "aas-workers"), 0);
    assert_int_equal(aas_heartbeat_in_group(&back, "aas-trainers"), 1);
}

/* What aas_heartbeat_format writes is what the worker wrote with its own
 * snprintf before this module, byte for byte (readers that compare or
 * grep the record keep working); a metrics port is appended only when
 * there is one. */
static void format_writes_the_workers_layout_byte_for_byte(void **state) {
    aas_heartbeat_t hb = {.pid = 7, .started_ms = 1, .ts_ms = 2, .done = 5, .rate = 1.5};
    set_text(&hb, "vm-1", "vm", "", "t/1");
    char buf[2048], why[256];
    assert_int_equal(aas_heartbeat_format(&hb, buf, sizeof(buf), why, sizeof(why)),
                     AAS_ERR_OK);
    assert_string_equal(buf, "{\"id\":\"vm-1\",\"host\":\"vm\",\"pid\":7,\"started_ms\":1,"
                             "\"done\":5,\"failed\":0,\"skipped\":0,\"dlq\":0,\"retries\":0,"
                             "\"rate\":1.500,\"training\":null,\"partitions\":\"t/1\","
                             "\"ts_ms\":2}");
    strcpy(hb.training, "train-7");
    hb.metrics_port = 9101;
    hb.rate = -1; /* unknown */
    assert_int_equal(aas_heartbeat_format(&hb, buf, sizeof(buf), why, sizeof(why)),
                     AAS_ERR_OK);
    assert_string_equal(buf, "{\"id\":\"vm-1\",\"host\":\"vm\",\"pid\":7,\"started_ms\":1,"
                             "\"done\":5,\"failed\":0,\"skipped\":0,\"dlq\":0,\"retries\":0,"
                             "\"rate\":0.000,\"training\":\"train-7\",\"partitions\":\"t/1\","
                             "\"ts_ms\":2,\"metrics_port\":9101}");
    /* The group, when known, comes last. */
    strcpy(hb.group, "aas-workers");
    assert_int_equal(aas_heartbeat_format(&hb, buf, sizeof(buf), why, sizeof(why)),
                     AAS_ERR_OK);
    assert_string_equal(buf, "{\"id\":\"vm-1\",\"host\":\"vm\",\"pid\":7,\"started_ms\":1,"
                             "\"done\":5,\"failed\":0,\"skipped\":0,\"dlq\":0,\"retries\":0,"
                             "\"rate\":0.000,\"training\":\"train-7\",\"partitions\":\"t/1\","
                             "\"ts_ms\":2,\"metrics_port\":9101,\"group\":\"aas-workers\"}");
}

/* A host name with quotes, a backslash and control bytes is escaped, so
 * the record stays one valid JSON line and reads back unchanged. */
static void format_escapes_the_host(void **state) {
    aas_heartbeat_t hb = {.pid = 1};
    set_text(&hb, "w", "a\"b\\c\nd\x01", "", "");
    char buf[2048], why[256];
    assert_int_equal(aas_heartbeat_format(&hb, buf, sizeof(buf), why, sizeof(why)),
                     AAS_ERR_OK);
    assert_non_null(strstr(buf, "\"host\":\"a\\\"b\\\\c\\nd\\u0001\""));
    assert_null(strchr(buf, '\n'));
    aas_heartbeat_t back;
    assert_int_equal(aas_heartbeat_parse(buf, &back, why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(back.host, hb.host);
}

/* Every cut of a valid record is refused, never read as a shorter one. */
static void truncated_records_are_refused(void **state) {
    aas_heartbeat_t hb = {.pid = 3, .done = 9, .rate = 2};
    set_text(&hb, "w-2", "h", "", "aas.jobs.infer/0");
    char buf[2048], cut[2048], why[256];
    assert_int_equal(aas_heartbeat_format(&hb, buf, sizeof(buf), why, sizeof(why)),
                     AAS_ERR_OK);
    for (size_t n = 0; n < strlen(buf); n++) {
        memcpy(cut, buf, n);
        cut[n] = '\0';
        aas_heartbeat_t out;
        assert_int_equal(aas_heartbeat_parse(cut, &out, why, sizeof(why)), AAS_ERR_DECODE);
    }
}

static void bad_records_are_refused(void **state) {
    /* A group longer than the record holds. */
    char long_group[AAS_HEARTBEAT_GROUP_MAX + 32];
    int n = snprintf(long_group, sizeof(long_group), "{\"id\":\"w\",\"group\":\"");
    memset(long_group + n, 'g', AAS_HEARTBEAT_GROUP_MAX);
    strcpy(long_group + n + AAS_HEARTBEAT_GROUP_MAX, "\"}");
    const char *bad[] = {
        "", "not json", "[1,2]", "{}", "{\"id\":\"\"}", "{\"id\":\"-x\"}",
        "{\"id\":\"w\",\"done\":-1}", "{\"id\":\"w\",\"done\":\"5\"}",
        "{\"id\":\"w\",\"rate\":\"fast\"}", "{\"id\":\"w\",\"metrics_port\":70000}",
        "{\"id\":\"w\",\"host\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{\"id\":\"w\",\"pid\":1", "{\"id\":\"w\",\"group\":5}", long_group, NULL};
    char why[256];
    for (int i = 0; bad[i]; i++) {
        aas_heartbeat_t hb;
        memset(&hb, 0x5a, sizeof(hb));
        assert_int_equal(aas_heartbeat_parse(bad[i], &hb, why, sizeof(why)), AAS_ERR_DECODE);
        assert_non_null(strstr(why, "heartbeat"));
        assert_int_equal((unsigned char)hb.id[0], 0x5a); /* untouched */
    }
    assert_int_equal(aas_heartbeat_parse(NULL, NULL, why, sizeof(why)), AAS_ERR_DECODE);
}

static void format_refuses_what_it_cannot_write(void **state) {
    aas_heartbeat_t hb = {0};
    char buf[64], why[256];
    assert_int_equal(aas_heartbeat_format(&hb, buf, sizeof(buf), why, sizeof(why)),
                     AAS_ERR_INVAL); /* no id */
    strcpy(hb.id, "w");
    memset(hb.partitions, 'p', sizeof(hb.partitions) - 1);
    assert_int_equal(aas_heartbeat_format(&hb, buf, sizeof(buf), why, sizeof(why)),
                     AAS_ERR_TOO_LARGE);
    memset(hb.partitions, 0, sizeof(hb.partitions));
    strcpy(hb.host, "bad \xff utf8");
    char big[2048];
    assert_int_equal(aas_heartbeat_format(&hb, big, sizeof(big), why, sizeof(why)),
                     AAS_ERR_INVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_record_round_trips),
        cmocka_unit_test(an_older_record_reads),
        cmocka_unit_test(a_record_without_a_group_round_trips),
        cmocka_unit_test(only_the_same_group_or_an_unknown_one_counts),
        cmocka_unit_test(format_writes_the_workers_layout_byte_for_byte),
        cmocka_unit_test(format_escapes_the_host),
        cmocka_unit_test(truncated_records_are_refused),
        cmocka_unit_test(bad_records_are_refused),
        cmocka_unit_test(format_refuses_what_it_cannot_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
