/*
 * test_apikey.c - API keys (common/apikey.h): the generated form, SHA-256
 * against a known vector, scopes, the table's lookups and its refusals;
 * signed jobs (common/jobsig.h): a vector computed with Python's hmac and
 * hashlib (what a client in another language must match), tampering,
 * header syntax, and looking keys up by signing id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "apikey.h"
#include "jobsig.h"

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

/* python3: h = sha256(b"aas_test-key-0123456789").digest();
 * sha256(b"aas.key-id" + h).digest()[:8].hex();
 * hmac.new(h, b"an aas job", sha256).hexdigest() */
static void jobsig_matches_the_python_vector(void **state) {
    (void)state;
    static const char key[] = "aas_test-key-0123456789";
    aas_jobsig_key_t k;
    assert_int_equal(aas_jobsig_key_from_apikey(key, strlen(key), &k), AAS_ERR_OK);
    assert_string_equal(k.id, "39831e9662c503a5");
    char hdr[AAS_JOBSIG_VALUE_LEN + 1];
    assert_int_equal(aas_jobsig_sign(&k, "an aas job", 10, hdr), AAS_ERR_OK);
    assert_string_equal(hdr, "v1:39831e9662c503a5:"
                             "1c7bcc5ab6971ce04962216fb9847c25381eb97b21296b2990bb8ba35e262080");
    char hex[AAS_APIKEY_HASH_HEX + 1];
    assert_int_equal(aas_apikey_hash(key, strlen(key), hex), AAS_ERR_OK);
    assert_string_equal(hex, "9f9744dc837c380769957640e3fc9d4658da8dd0220615fd222c718b56f0867f");
}

static void jobsig_refuses_changed_messages_and_bad_headers(void **state) {
    (void)state;
    aas_jobsig_key_t k, other;
    assert_int_equal(aas_jobsig_key_from_apikey("aas_first-key-abcdefghij", 24, &k), AAS_ERR_OK);
    assert_int_equal(aas_jobsig_key_from_apikey("aas_other-key-abcdefghij", 24, &other), AAS_ERR_OK);
    assert_string_not_equal(k.id, other.id);
    unsigned char msg[300];
    for (size_t i = 0; i < sizeof(msg); i++) msg[i] = (unsigned char)(i * 7);
    char hdr[AAS_JOBSIG_VALUE_LEN + 1], id[AAS_JOBSIG_ID_HEX + 1];
    unsigned char mac[32];
    assert_int_equal(aas_jobsig_sign(&k, msg, sizeof(msg), hdr), AAS_ERR_OK);
    assert_int_equal(strlen(hdr), AAS_JOBSIG_VALUE_LEN);
    assert_int_equal(aas_jobsig_parse(hdr, strlen(hdr), id, mac), AAS_ERR_OK);
    assert_string_equal(id, k.id);
    assert_true(aas_jobsig_verify(k.secret, msg, sizeof(msg), mac));
    assert_false(aas_jobsig_verify(other.secret, msg, sizeof(msg), mac));
    /* Every single bit of the message matters, and its length. */
    for (size_t i = 0; i < sizeof(msg); i += 37) {
        msg[i] ^= 1;
        assert_false(aas_jobsig_verify(k.secret, msg, sizeof(msg), mac));
        msg[i] ^= 1;
    }
    assert_false(aas_jobsig_verify(k.secret, msg, sizeof(msg) - 1, mac));
    mac[31] ^= 0x80;
    assert_false(aas_jobsig_verify(k.secret, msg, sizeof(msg), mac));
    /* Header syntax: version, separators, lowercase hex, exact length. */
    char bad[AAS_JOBSIG_VALUE_LEN + 2];
    const size_t at[] = {0, 1, 2, 3, 3 + AAS_JOBSIG_ID_HEX, 4 + AAS_JOBSIG_ID_HEX,
                         AAS_JOBSIG_VALUE_LEN - 1};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        memcpy(bad, hdr, sizeof(hdr));
        bad[at[i]] = 'X';
        assert_int_equal(aas_jobsig_parse(bad, AAS_JOBSIG_VALUE_LEN, id, mac), AAS_ERR_INVAL);
    }
    assert_int_equal(aas_jobsig_parse(hdr, AAS_JOBSIG_VALUE_LEN - 1, id, mac), AAS_ERR_INVAL);
    memcpy(bad, hdr, sizeof(hdr));
    bad[AAS_JOBSIG_VALUE_LEN] = '0';
    assert_int_equal(aas_jobsig_parse(bad, AAS_JOBSIG_VALUE_LEN + 1, id, mac), AAS_ERR_INVAL);
    assert_int_equal(aas_jobsig_parse(NULL, 0, id, mac), AAS_ERR_INVAL);
}

static void table_finds_keys_by_signing_id(void **state) {
    (void)state;
    aas_apikey_table_t *t = NULL;
    assert_int_equal(aas_apikey_table_new(&t), AAS_ERR_OK);
    enum { N = 2000 };
    char why[256];
    /* Added in an order unrelated to hashes or ids. */
    for (int i = 0; i < N; i++) {
        char key[64], tenant[32];
        int j = (i * 769) % N;
        snprintf(key, sizeof(key), "aas_key-number-%05d-xyz", j);
        snprintf(tenant, sizeof(tenant), "t%d", j);
        char line[128];
        snprintf(line, sizeof(line), "%s %s %s", tenant, key, j % 2 ? "all" : "infer");
        assert_int_equal(aas_apikey_table_add_line(t, line, why, sizeof(why)), AAS_ERR_OK);
    }
    for (int j = 0; j < N; j++) {
        char key[64], tenant[32];
        snprintf(key, sizeof(key), "aas_key-number-%05d-xyz", j);
        snprintf(tenant, sizeof(tenant), "t%d", j);
        aas_jobsig_key_t k;
        assert_int_equal(aas_jobsig_key_from_apikey(key, strlen(key), &k), AAS_ERR_OK);
        unsigned char hash[32];
        unsigned scopes = 0;
        const char *owner = aas_apikey_table_find_id(t, k.id, hash, &scopes);
        assert_non_null(owner);
        assert_string_equal(owner, tenant);
        assert_memory_equal(hash, k.secret, 32);
        assert_int_equal(scopes, j % 2 ? AAS_APIKEY_SCOPE_ALL : AAS_APIKEY_SCOPE_INFER);
    }
    unsigned char hash[32];
    unsigned scopes;
    aas_jobsig_key_t unknown;
    assert_int_equal(aas_jobsig_key_from_apikey("aas_not-in-the-table-000", 24, &unknown), AAS_ERR_OK);
    assert_null(aas_apikey_table_find_id(t, unknown.id, hash, &scopes));
    assert_null(aas_apikey_table_find_id(t, "0123", hash, &scopes));
    assert_null(aas_apikey_table_find_id(t, "0123456789ABCDEF", hash, &scopes));
    assert_null(aas_apikey_table_find_id(t, NULL, hash, &scopes));
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
        cmocka_unit_test(jobsig_matches_the_python_vector),
        cmocka_unit_test(jobsig_refuses_changed_messages_and_bad_headers),
        cmocka_unit_test(table_finds_keys_by_signing_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
