/* test_log.c - one event, one line: control bytes cannot forge lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* What AAS_LOG wrote to stderr while fn ran. */
static void capture(void (*fn)(void), char *out, size_t size) {
    char path[] = "/tmp/aas-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    fn();
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    ssize_t n = pread(fd, out, size - 1, 0);
    assert_true(n >= 0);
    out[n] = '\0';
    close(fd);
    unlink(path);
}

static void forge(void) {
    AAS_LOG(AAS_LOG_WARN, "worker", "job=%s status=FAILED reason=\"%s\"",
            "x\n2026-01-01T00:00:00.000Z level=error comp=worker forged",
            "tab\there\r\x01 back\\slash");
}

static void newline_in_a_field_cannot_forge_a_line(void **state) {
    char out[2048];
    capture(forge, out, sizeof(out));
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0'); /* exactly one line */
    assert_non_null(strstr(out, "job=x\\n2026-01-01"));
    assert_non_null(strstr(out, "tab\\there\\r\\x01 back\\\\slash"));
}

static void forge_plain(void) {
    AAS_LOG(AAS_LOG_INFO, "worker", "model=%s", "digits\nlevel=ERROR forged");
}

static void a_forged_level_field_stays_on_one_line(void **state) {
    char out[2048];
    capture(forge_plain, out, sizeof(out));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    assert_non_null(strstr(out, "model=digits\\nlevel=ERROR forged\n"));
}

static void forge_component(void) {
    AAS_LOG(AAS_LOG_INFO, "a\nb", "%s", "x");
}

static void a_component_is_escaped_too(void **state) {
    char out[2048];
    capture(forge_component, out, sizeof(out));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    assert_non_null(strstr(out, "comp=a\\nb x"));
}

/* 3,000 newlines (6,000 bytes escaped, far over one line) under a
 * component of n characters: with n = 1 and n = 6 the prefix is once odd
 * and once even, and the cut must land between escapes either way. */
static void long_message(size_t n) {
    char big[3000], comp[8] = "worker";
    memset(big, '\n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    comp[n] = '\0';
    AAS_LOG(AAS_LOG_ERROR, comp, "%s", big);
}
static void long_message_1(void) { long_message(1); }
static void long_message_6(void) { long_message(6); }

static void check_cut(void (*fn)(void)) {
    char out[4096];
    capture(fn, out, sizeof(out));
    size_t len = strlen(out);
    assert_true(len > 0 && len < 1024);
    assert_int_equal(out[len - 1], '\n');
    assert_ptr_equal(strchr(out, '\n'), out + len - 1);
    /* cut at a whole escape: the message is "\n" pairs up to the end */
    const char *msg = strstr(out, "\\n");
    assert_non_null(msg);
    size_t m = (size_t)(out + len - 1 - msg);
    assert_int_equal(m % 2, 0);
    for (size_t i = 0; i < m; i += 2) {
        assert_int_equal(msg[i], '\\');
        assert_int_equal(msg[i + 1], 'n');
    }
}

static void a_long_message_is_cut_on_one_line(void **state) {
    check_cut(long_message_1);
    check_cut(long_message_6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(newline_in_a_field_cannot_forge_a_line),
        cmocka_unit_test(a_forged_level_field_stays_on_one_line),
        cmocka_unit_test(a_component_is_escaped_too),
        cmocka_unit_test(a_long_message_is_cut_on_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
