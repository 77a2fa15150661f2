/* test_conf.c - configuration precedence, validation and secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

static const aas_conf_def_t defs[] = {
    {"demo.count", AAS_CONF_INT, "4", 1, 10, 0, "a count"},
    AAS_CONF_END};

static void defaults_are_filled(void **state) {
    aas_conf_t *c;
    assert_int_equal(aas_conf_new(defs, &c), AAS_ERR_OK);
    assert_int_equal(aas_conf_get_int(c, "demo.count"), 4);
    assert_string_equal(aas_conf_get(c, "redis.host"), "127.0.0.1");
    assert_int_equal(aas_conf_get_int(c, "redis.port"), 6379);
    assert_null(aas_conf_get(c, "redis.password"));
    aas_conf_destroy(c);
}

static void bad_values_are_refused_with_the_key_named(void **state) {
    aas_conf_t *c;
    char why[256];
    assert_int_equal(aas_conf_new(defs, &c), AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(c, "demo.count=11", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "demo.count"));
    assert_int_equal(aas_conf_set_arg(c, "redis.port=http", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_conf_set_arg(c, "no.such.key=1", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "no.such.key"));
    assert_int_equal(aas_conf_set_arg(c, "novalue", why, sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_conf_get_int(c, "demo.count"), 4);
    aas_conf_destroy(c);
}

static void secrets_are_refused_on_the_command_line(void **state) {
    aas_conf_t *c;
    char why[256];
    assert_int_equal(aas_conf_new(defs, &c), AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(c, "redis.password=hunter2", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_null(strstr(why, "hunter2"));
    assert_int_equal(aas_conf_set_arg(c, "kafka.sasl.password=x", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_null(aas_conf_get(c, "redis.password"));
    /* From a file named on the command line: allowed. */
    char path[] = "/tmp/aas-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret\n", 7), 7);
    close(fd);
    char kv[300];
    snprintf(kv, sizeof(kv), "redis.password.file=%s", path);
    assert_int_equal(aas_conf_set_arg(c, kv, why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(aas_conf_get(c, "redis.password"), "s3cret");
    unlink(path);
    aas_conf_destroy(c);
}

/* Every secret-bearing librdkafka property is refused on argv (it would
 * show in ps) and taken from the environment or a file, PEM keys whole. */
static void kafka_secrets_are_refused_on_argv_and_read_from_env_or_file(void **state) {
    aas_conf_t *c;
    char why[256];
    assert_int_equal(aas_conf_new(defs, &c), AAS_ERR_OK);
    static const char *secret_keys[] = {
        "kafka.ssl.key.pem", "kafka.sasl.oauthbearer.config",
        "kafka.sasl.oauthbearer.client.secret", "kafka.ssl.key.password",
        "kafka.ssl.keystore.password", "kafka.sasl.password",
        "kafka.sasl.oauthbearer.extensions", NULL};
    for (int i = 0; secret_keys[i]; i++) {
        char kv[128];
        snprintf(kv, sizeof(kv), "%s=topsecret", secret_keys[i]);
        assert_int_equal(aas_conf_set_arg(c, kv, why, sizeof(why)), AAS_ERR_INVAL);
        assert_non_null(strstr(why, "refused on the command line"));
        assert_null(strstr(why, "topsecret"));
        assert_null(aas_conf_get(c, secret_keys[i]));
    }
    /* Public settings still pass. */
    assert_int_equal(aas_conf_set_arg(c, "kafka.ssl.certificate.location=/x.pem", why,
                                      sizeof(why)),
                     AAS_ERR_OK);
    /* The environment. */
    setenv("AAS_KAFKA_SASL_OAUTHBEARER_CONFIG", "principal=me", 1);
    assert_int_equal(aas_conf_load_env(c, why, sizeof(why)), AAS_ERR_OK);
    unsetenv("AAS_KAFKA_SASL_OAUTHBEARER_CONFIG");
    assert_string_equal(aas_conf_get(c, "kafka.sasl.oauthbearer.config"), "principal=me");
    /* A file, read whole: a PEM key spans lines. */
    char path[] = "/tmp/aas-pem-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
    char kv[300];
    snprintf(kv, sizeof(kv), "kafka.ssl.key.pem.file=%s", path);
    assert_int_equal(aas_conf_set_arg(c, kv, why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(aas_conf_get(c, "kafka.ssl.key.pem"),
                        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----");
    unlink(path);
    aas_conf_destroy(c);
}

/* The refusal says where the secret can go instead: the exact AAS_*
 * variable when the environment carries that key, else the config file
 * or <key>.file; public neighbours (paths, user names) still pass. */
static void a_refused_secret_names_the_variable_to_use(void **state) {
    aas_conf_t *c;
    char why[512];
    assert_int_equal(aas_conf_new(defs, &c), AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(c, "kafka.ssl.key.pem=-----BEGIN", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "AAS_KAFKA_SSL_KEY_PEM"));
    assert_non_null(strstr(why, "config file"));
    assert_non_null(strstr(why, "kafka.ssl.key.pem.file=<path>"));
    assert_null(strstr(why, "BEGIN"));
    assert_int_equal(aas_conf_set_arg(c, "redis.password=pw", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "AAS_REDIS_PASSWORD"));
    /* Caught by name only (no env variable is read for it). */
    assert_int_equal(aas_conf_set_arg(c, "kafka.some.future.password=pw", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_null(strstr(why, "AAS_"));
    assert_non_null(strstr(why, "config file"));
    assert_int_equal(aas_conf_set_arg(c, "kafka.ssl_key=k", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_null(aas_conf_get(c, "kafka.ssl_key"));
    static const char *public_keys[] = {
        "kafka.ssl.key.location=/etc/k.pem", "kafka.ssl.certificate.pem=C",
        "kafka.ssl.ca.pem=CA", "kafka.sasl.username=me",
        "kafka.sasl.oauthbearer.token.endpoint.url=https://idp/token", NULL};
    for (int i = 0; public_keys[i]; i++)
        assert_int_equal(aas_conf_set_arg(c, public_keys[i], why, sizeof(why)), AAS_ERR_OK);
    /* From the config file, a secret is accepted. */
    char path[] = "/tmp/aas-conf-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "kafka.sasl.password = p4ss\nredis.password = r3dis\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(aas_conf_load_file(c, path, why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(aas_conf_get(c, "kafka.sasl.password"), "p4ss");
    assert_string_equal(aas_conf_get(c, "redis.password"), "r3dis");
    unlink(path);
    aas_conf_destroy(c);
}

static void environment_and_file_and_argv_in_order(void **state) {
    aas_conf_t *c;
    char why[256];
    char path[] = "/tmp/aas-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\nredis.port = 7000\ndemo.count=5\n"
                       "kafka.linger.ms = 3\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(aas_conf_new(defs, &c), AAS_ERR_OK);
    assert_int_equal(aas_conf_load_file(c, path, why, sizeof(why)), AAS_ERR_OK);
    setenv("AAS_DEMO_COUNT", "6", 1);
    setenv("AAS_REDIS_PASSWORD", "fromenv", 1);
    assert_int_equal(aas_conf_load_env(c, why, sizeof(why)), AAS_ERR_OK);
    unsetenv("AAS_DEMO_COUNT");
    unsetenv("AAS_REDIS_PASSWORD");
    assert_int_equal(aas_conf_set_arg(c, "demo.count=7", why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_conf_get_int(c, "redis.port"), 7000);
    assert_int_equal(aas_conf_get_int(c, "demo.count"), 7);
    assert_string_equal(aas_conf_get(c, "redis.password"), "fromenv");
    assert_string_equal(aas_conf_get(c, "kafka.linger.ms"), "3");
    unlink(path);
    aas_conf_destroy(c);
}

static aas_err_t count_kafka(void *opaque, const char *k, const char *v,
                             char *e, size_t n) {
    (*(int *)opaque)++;
    /* The prefix must be stripped. */
    return strncmp(k, "kafka.", 6) == 0 ? AAS_ERR_INVAL : AAS_ERR_OK;
}

static void kafka_keys_pass_through_without_prefix(void **state) {
    aas_conf_t *c;
    char why[256];
    assert_int_equal(aas_conf_new(defs, &c), AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(c, "kafka.security.protocol=SASL_SSL", why,
                                      sizeof(why)),
                     AAS_ERR_OK);
    int n = 0;
    assert_int_equal(aas_conf_each_kafka(c, count_kafka, &n, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(n, 2); /* bootstrap.servers + security.protocol */
    aas_conf_destroy(c);
}

/* A program's typed settings, filled from its table's field column. */
/* What a scheduler hands its workers: the common keys and kafka.* pairs
 * (secrets too), the extra keys asked for, not the program's own; and
 * the file reads back into another program's conf. */
static void shared_settings_are_written_as_a_config_file(void **state) {
    (void)state;
    aas_conf_t *c, *back;
    char why[256];
    assert_int_equal(aas_conf_new(defs, &c), AAS_ERR_OK);
    assert_int_equal(aas_conf_set(c, "redis.port", "7001", AAS_CONF_SRC_ARGV, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_conf_set(c, "redis.password", "s3cret", AAS_CONF_SRC_FILE, why,
                                  sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_conf_set(c, "kafka.sasl.mechanism", "PLAIN", AAS_CONF_SRC_ARGV, why,
                                  sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_conf_set(c, "demo.count", "7", AAS_CONF_SRC_ARGV, why, sizeof(why)),
                     AAS_ERR_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    assert_non_null(fp);
    assert_int_equal(aas_conf_write_shared(c, NULL, fp, why, sizeof(why)), AAS_ERR_OK);
    fclose(fp);
    assert_non_null(strstr(text, "redis.port = 7001\n"));
    assert_non_null(strstr(text, "redis.password = s3cret\n"));
    assert_non_null(strstr(text, "kafka.sasl.mechanism = PLAIN\n"));
    assert_null(strstr(text, "demo.count"));
    free(text);
    fp = open_memstream(&text, &len);
    const char *const extra[] = {"demo.count", NULL};
    assert_int_equal(aas_conf_write_shared(c, extra, fp, why, sizeof(why)), AAS_ERR_OK);
    fclose(fp);
    assert_non_null(strstr(text, "demo.count = 7\n"));
    /* Another program (no demo.count) reads the common part back. */
    char path[] = "/tmp/aas-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_int_equal(aas_conf_write_shared(c, NULL, fp, why, sizeof(why)), AAS_ERR_OK);
    fclose(fp);
    assert_int_equal(aas_conf_new(NULL, &back), AAS_ERR_OK);
    assert_int_equal(aas_conf_load_file(back, path, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_conf_get_int(back, "redis.port"), 7001);
    assert_string_equal(aas_conf_get(back, "redis.password"), "s3cret");
    unlink(path);
    free(text);
    aas_conf_destroy(back);
    aas_conf_destroy(c);
}

typedef struct {
    int64_t count;
    int on;
    const char *name;
} typed_t;

static const aas_conf_def_t typed_defs[] = {
    {"t.count", AAS_CONF_INT, "4", 1, 10, 0, "a count", AAS_CONF_FIELD(typed_t, count)},
    {"t.on", AAS_CONF_BOOL, "false", 0, 0, 0, "a switch", AAS_CONF_FIELD(typed_t, on)},
    {"t.name", AAS_CONF_STR, NULL, 0, 0, 0, "a name", AAS_CONF_FIELD(typed_t, name)},
    {"t.untyped", AAS_CONF_INT, "7", 0, 9, 0, "read by key only"},
    AAS_CONF_END};

static void typed_settings_are_filled_from_the_table(void **state) {
    aas_conf_t *c;
    char why[256];
    typed_t t = {.count = -1, .on = -1, .name = "unset"};
    assert_int_equal(aas_conf_new(typed_defs, &c), AAS_ERR_OK);
    aas_conf_fill(c, &t);
    assert_int_equal(t.count, 4);
    assert_int_equal(t.on, 0);
    assert_null(t.name);
    assert_int_equal(aas_conf_set_arg(c, "t.count=9", why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(c, "t.on=true", why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(c, "t.name=abc", why, sizeof(why)), AAS_ERR_OK);
    aas_conf_fill(c, &t);
    assert_int_equal(t.count, 9);
    assert_int_equal(t.on, 1);
    assert_string_equal(t.name, "abc");
    aas_conf_destroy(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_filled),
        cmocka_unit_test(typed_settings_are_filled_from_the_table),
        cmocka_unit_test(shared_settings_are_written_as_a_config_file),
        cmocka_unit_test(bad_values_are_refused_with_the_key_named),
        cmocka_unit_test(secrets_are_refused_on_the_command_line),
        cmocka_unit_test(kafka_secrets_are_refused_on_argv_and_read_from_env_or_file),
        cmocka_unit_test(a_refused_secret_names_the_variable_to_use),
        cmocka_unit_test(environment_and_file_and_argv_in_order),
        cmocka_unit_test(kafka_keys_pass_through_without_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
