/*
 * test_apikey.c - API keys (common/apikey.h): the generated form, SHA-256
 * against a known vector, scopes, the table's lookups and its refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "apikey.h"

static void generate_gives_distinct_base64url_keys(void **state) {
    (void)state;
    char a[AAS_APIKEY_LEN + 1], b[AAS_APIKEY_LEN + 1];
    assert_int_equal(aas_apikey_generate(a, sizeof(a)), AAS_ERR_OK);
    assert_int_equal(aas_apikey_generate(b, sizeof(b)), AAS_ERR_OK);
    assert_int_equal(strlen(a), AAS_APIKEY_LEN);
    assert_memory_equal(a, "aas_", 4);
    assert_int_equal(strspn(a + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     AAS_APIKEY_LEN - 4);
    assert_string_not_equal(a, b);
    assert_int_equal(aas_apikey_generate(a, AAS_APIKEY_LEN), AAS_ERR_INVAL);
}

static void hash_is_sha256_hex(void **state) {
    (void)state;
    char hex[AAS_APIKEY_HASH_HEX + 1];
    /* FIPS 180-2's example "abc". */
    assert_int_equal(aas_apikey_hash("abc", 3, hex), AAS_ERR_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(aas_apikey_hash_valid(hex));
    hex[3] = 'G';
    assert_false(aas_apikey_hash_valid(hex));
    assert_false(aas_apikey_hash_valid("abc"));
}

static void scopes_parse_and_print(void **state) {
    (void)state;
    unsigned s = 0;
    char buf[16], why[128];
    assert_int_equal(aas_apikey_scopes_parse("infer", &s, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(s, AAS_APIKEY_SCOPE_INFER);
    assert_int_equal(aas_apikey_scopes_parse("train,infer", &s, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(s, AAS_APIKEY_SCOPE_ALL);
    assert_string_equal(aas_apikey_scopes_str(s, buf, sizeof(buf)), "infer,train");
    assert_int_equal(aas_apikey_scopes_parse("all", &s, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(s, AAS_APIKEY_SCOPE_ALL);
    assert_int_equal(aas_apikey_scopes_parse("infer,admin", &s, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "admin"));
    assert_int_equal(aas_apikey_scopes_parse("", &s, why, sizeof(why)), AAS_ERR_INVAL);
}

static void table_finds_keys_by_value_and_by_hash(void **state) {
    (void)state;
    aas_apikey_table_t *t = NULL;
    char why[256], hex[AAS_APIKEY_HASH_HEX + 1], line[160];
    unsigned s = 0;
    assert_int_equal(aas_apikey_table_new(&t), AAS_ERR_OK);
    assert_int_equal(aas_apikey_table_add_line(t, "alice alice-key-0123456789\n", why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_apikey_hash("bob-key-0123456789", 18, hex), AAS_ERR_OK);
    snprintf(line, sizeof(line), "bob sha256:%s infer,train", hex);
    assert_int_equal(aas_apikey_table_add_line(t, line, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_apikey_table_size(t), 2);

    const char *who = aas_apikey_table_find(t, "alice-key-0123456789", 20, &s);
    assert_non_null(who);
    assert_string_equal(who, "alice");
    assert_int_equal(s, AAS_APIKEY_SCOPE_INFER);
    who = aas_apikey_table_find(t, "bob-key-0123456789", 18, &s);
    assert_non_null(who);
    assert_string_equal(who, "bob");
    assert_int_equal(s, AAS_APIKEY_SCOPE_ALL);
    /* A prefix, a longer key, nothing: unknown. */
    assert_null(aas_apikey_table_find(t, "alice-key-012345678", 19, &s));
    assert_null(aas_apikey_table_find(t, "alice-key-01234567890", 21, &s));
    assert_null(aas_apikey_table_find(t, "", 0, &s));
    aas_apikey_table_destroy(t);
}

static void table_refuses_bad_lines_without_echoing_the_key(void **state) {
    (void)state;
    aas_apikey_table_t *t = NULL;
    char why[256];
    assert_int_equal(aas_apikey_table_new(&t), AAS_ERR_OK);
    assert_int_equal(aas_apikey_table_add_line(t, "carol short", why, sizeof(why)), AAS_ERR_INVAL);
    assert_null(strstr(why, "short"));
    assert_int_equal(aas_apikey_table_add_line(t, "onlytenant", why, sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_apikey_table_add_line(t, "bad/tenant key-0123456789abcdef", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_apikey_table_add_line(t, "x sha256:1234", why, sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_apikey_table_add_line(t, "x key-0123456789abcdef fly", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_apikey_table_add_line(t, "x key-0123456789abcdef infer extra", why,
                                               sizeof(why)),
                     AAS_ERR_INVAL);
    /* The same key for two tenants is a mistake, not a choice. */
    assert_int_equal(aas_apikey_table_add_line(t, "a key-0123456789abcdef", why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_apikey_table_add_line(t, "b key-0123456789abcdef", why, sizeof(why)),
                     AAS_ERR_CONFLICT);
    assert_int_equal(aas_apikey_table_size(t), 1);
    aas_apikey_table_destroy(t);
}

static void table_keeps_many_keys_sorted(void **state) {
    (void)state;
    aas_apikey_table_t *t = NULL;
    char why[256], line[96], key[64];
    unsigned s;
    assert_int_equal(aas_apikey_table_new(&t), AAS_ERR_OK);
    for (int i = 0; i < 500; i++) {
        snprintf(line, sizeof(line), "t%d key-number-%08d", i, i);
        assert_int_equal(aas_apikey_table_add_line(t, line, why, sizeof(why)), AAS_ERR_OK);
    }
    for (int i = 0; i < 500; i++) {
        char want[16];
        snprintf(key, sizeof(key), "key-number-%08d", i);
        snprintf(want, sizeof(want), "t%d", i);
        const char *who = aas_apikey_table_find(t, key, strlen(key), &s);
        assert_non_null(who);
        assert_string_equal(who, want);
    }
    aas_apikey_table_destroy(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generate_gives_distinct_base64url_keys),
        cmocka_unit_test(hash_is_sha256_hex),
        cmocka_unit_test(scopes_parse_and_print),
        cmocka_unit_test(table_finds_keys_by_value_and_by_hash),
        cmocka_unit_test(table_refuses_bad_lines_without_echoing_the_key),
        cmocka_unit_test(table_keeps_many_keys_sorted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
