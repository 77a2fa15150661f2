/*
 * test_source.c - training sources (worker/source.h) over the memory
 * source: no server needed.  The Redis data set source is tested in
 * test_dataset.c, the Kafka one in test_source_kafka.c, numeric rows read
 * from a source in test_textfeat.c (the streaming trainer).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "source.h"

static void memory_source_yields_lines_without_newlines(void **state) {
    (void)state;
    const char *text = "a\r\nbb\n\nccc";
    aas_src_t *src;
    char why[256];
    assert_int_equal(aas_src_open_memory(text, strlen(text), AAS_SRC_TSV, &src, why,
                                         sizeof(why)),
                     AAS_ERR_OK);
    const char *want[] = {"a", "bb", "", "ccc"};
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(aas_src_rewind(src, 7, why, sizeof(why)), AAS_ERR_OK);
        for (int i = 0; i < 4; i++) {
            const char *l;
            size_t n;
            int eof;
            assert_int_equal(aas_src_next(src, &l, &n, &eof, why, sizeof(why)), AAS_ERR_OK);
            assert_int_equal(eof, 0);
            assert_int_equal(n, strlen(want[i]));
            assert_memory_equal(l, want[i], n);
        }
        const char *l;
        size_t n;
        int eof;
        assert_int_equal(aas_src_next(src, &l, &n, &eof, why, sizeof(why)), AAS_ERR_OK);
        assert_int_equal(eof, 1);
    }
    aas_src_destroy(src);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_source_yields_lines_without_newlines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
