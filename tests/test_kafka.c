/* test_kafka.c - librdkafka configuration from aas configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kafka.h"

static const aas_conf_def_t no_defs[] = {AAS_CONF_END};

static void value_of(rd_kafka_conf_t *kc, const char *key, char *buf, size_t size) {
    assert_int_equal(rd_kafka_conf_get(kc, key, buf, &size), RD_KAFKA_CONF_OK);
}

/* A kafka.* key librdkafka documents for consumers only reaches consumers
 * (given to a producer, librdkafka logs a CONFWARN on every start); keys
 * for both reach both, defaults are overridden by configuration. */
static void keys_reach_only_the_clients_they_are_for(void **state) {
    aas_conf_t *conf;
    char why[256], v[64];
    assert_int_equal(aas_conf_new(no_defs, &conf), AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(conf, "kafka.fetch.wait.max.ms=1", why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(conf, "kafka.linger.ms=7", why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(conf, "kafka.socket.timeout.ms=12345", why, sizeof(why)),
                     AAS_ERR_OK);
    const char *defs[] = {"socket.timeout.ms", "999", NULL};
    rd_kafka_conf_t *pc, *cc;
    assert_int_equal(aas_kafka_conf_new(conf, "t", RD_KAFKA_PRODUCER, defs, &pc, why,
                                        sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_kafka_conf_new(conf, "t", RD_KAFKA_CONSUMER, defs, &cc, why,
                                        sizeof(why)),
                     AAS_ERR_OK);
    value_of(pc, "fetch.wait.max.ms", v, sizeof(v));
    assert_string_not_equal(v, "1");
    value_of(cc, "fetch.wait.max.ms", v, sizeof(v));
    assert_string_equal(v, "1");
    value_of(pc, "linger.ms", v, sizeof(v));
    assert_string_equal(v, "7");
    value_of(cc, "linger.ms", v, sizeof(v));
    assert_string_not_equal(v, "7");
    value_of(pc, "socket.timeout.ms", v, sizeof(v));
    assert_string_equal(v, "12345");
    value_of(cc, "socket.timeout.ms", v, sizeof(v));
    assert_string_equal(v, "12345");
    rd_kafka_conf_destroy(pc);
    rd_kafka_conf_destroy(cc);
    aas_conf_destroy(conf);
}

/* A misspelt key is still refused, naming it. */
static void unknown_keys_are_refused_with_the_key_named(void **state) {
    aas_conf_t *conf;
    char why[256];
    rd_kafka_conf_t *kc;
    assert_int_equal(aas_conf_new(no_defs, &conf), AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(conf, "kafka.lingerr.ms=7", why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_kafka_conf_new(conf, "t", RD_KAFKA_PRODUCER, NULL, &kc, why,
                                        sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "lingerr.ms"));
    aas_conf_destroy(conf);
}

/* The group a consumer will be in, as the heartbeat reports it: the
 * program's default, or kafka.group.id when the configuration sets it;
 * none, or one that does not fit, is refused with buf untouched. */
static void the_group_in_use_is_the_configured_one(void **state) {
    aas_conf_t *conf;
    char why[256], g[16];
    rd_kafka_conf_t *kc;
    const char *defs[] = {"group.id", "aas-workers", NULL};
    assert_int_equal(aas_conf_new(no_defs, &conf), AAS_ERR_OK);
    assert_int_equal(aas_kafka_conf_new(conf, "t", RD_KAFKA_CONSUMER, defs, &kc, why,
                                        sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_kafka_conf_group(kc, g, sizeof(g), why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(g, "aas-workers");
    strcpy(g, "x");
    assert_int_equal(aas_kafka_conf_group(kc, g, 5, why, sizeof(why)), AAS_ERR_INVAL);
    assert_string_equal(g, "x");
    assert_non_null(strstr(why, "longer than 4 bytes"));
    rd_kafka_conf_destroy(kc);

    assert_int_equal(aas_conf_set_arg(conf, "kafka.group.id=aas-trainers", why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_kafka_conf_new(conf, "t", RD_KAFKA_CONSUMER, defs, &kc, why,
                                        sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_kafka_conf_group(kc, g, sizeof(g), why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(g, "aas-trainers");
    rd_kafka_conf_destroy(kc);
    aas_conf_destroy(conf);

    assert_int_equal(aas_conf_new(no_defs, &conf), AAS_ERR_OK);
    assert_int_equal(aas_kafka_conf_new(conf, "t", RD_KAFKA_CONSUMER, NULL, &kc, why,
                                        sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_kafka_conf_group(kc, g, sizeof(g), why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "not set"));
    rd_kafka_conf_destroy(kc);
    aas_conf_destroy(conf);
}

/* A producer as the client makes one, its broker states followed by a:
 * SASL PLAIN as acme (password "s3cret-pw"), on `servers` (NULL: a
 * librdkafka mock cluster of one broker). */
static rd_kafka_t *auth_producer(aas_kafka_auth_t *a, const char *servers) {
    aas_conf_t *conf;
    rd_kafka_conf_t *kc;
    char why[256];
    assert_int_equal(aas_conf_new(no_defs, &conf), AAS_ERR_OK);
    const char *defs[] = {"sasl.mechanisms", "PLAIN", "sasl.username", "acme",
                          "sasl.password", "s3cret-pw", NULL};
    assert_int_equal(aas_kafka_conf_new(conf, "t", RD_KAFKA_PRODUCER, defs, &kc, why,
                                        sizeof(why)),
                     AAS_ERR_OK);
    aas_conf_destroy(conf);
    if (servers) {
        assert_int_equal(aas_kafka_conf_set(kc, "bootstrap.servers", servers, why, sizeof(why)),
                         AAS_ERR_OK);
        assert_int_equal(aas_kafka_conf_set(kc, "security.protocol", "SASL_PLAINTEXT", why,
                                            sizeof(why)),
                         AAS_ERR_OK);
    } else {
        assert_int_equal(aas_kafka_conf_set(kc, "test.mock.num.brokers", "1", why, sizeof(why)),
                         AAS_ERR_OK);
    }
    assert_int_equal(aas_kafka_auth_watch(a, kc, why, sizeof(why)), AAS_ERR_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
    assert_non_null(rk);
    return rk;
}

static const char sasl_reason[] =
    "sasl_plaintext://127.0.0.1:1/bootstrap: SASL authentication error: Authentication "
    "failed: Invalid username or password (after 301ms in state AUTH_REQ)";

/* A refused login while no broker is up: AAS_ERR_AUTH naming the
 * mechanism, the user, librdkafka's reason and the keys to check, never
 * the password; a transport error alone is no refusal. */
static void auth_failure_is_told_with_user_and_reason_never_password(void **state) {
    aas_kafka_auth_t *a;
    char why[1024] = "";
    assert_int_equal(aas_kafka_auth_new(&a, why, sizeof(why)), AAS_ERR_OK);
    rd_kafka_t *rk = auth_producer(a, "127.0.0.1:1"); /* nothing listens: never up */
    assert_int_equal(aas_kafka_auth_check(a, rk, why, sizeof(why)), AAS_ERR_OK);
    aas_kafka_error_note(a, rk, RD_KAFKA_RESP_ERR__TRANSPORT,
                         "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: "
                         "Connection refused (after 0ms in state CONNECT)");
    assert_int_equal(aas_kafka_auth_check(a, rk, why, sizeof(why)), AAS_ERR_OK);
    aas_kafka_error_note(a, rk, RD_KAFKA_RESP_ERR__AUTHENTICATION, sasl_reason);
    assert_int_equal(aas_kafka_auth_check(a, rk, why, sizeof(why)), AAS_ERR_AUTH);
    assert_string_equal(why, "Kafka authentication failed (SASL PLAIN as user acme): "
                             "Authentication failed: Invalid username or password (broker "
                             "sasl_plaintext://127.0.0.1:1/bootstrap); check "
                             "kafka.sasl.username / kafka.sasl.password(.file)");
    assert_null(strstr(why, "s3cret"));
    assert_int_equal(aas_kafka_auth_ever_up(a), 0);
    rd_kafka_destroy(rk);
    aas_kafka_auth_destroy(a);
    aas_kafka_auth_destroy(NULL);
}

/* With a broker up (authenticated), an authentication failure (another
 * broker's) is no reason to stop, nor is "broker might require SASL
 * authentication". */
static void auth_failure_does_not_count_while_a_broker_is_up(void **state) {
    aas_kafka_auth_t *a;
    char why[1024] = "";
    assert_int_equal(aas_kafka_auth_new(&a, why, sizeof(why)), AAS_ERR_OK);
    rd_kafka_t *rk = auth_producer(a, NULL);
    const struct rd_kafka_metadata *md = NULL;
    assert_int_equal(rd_kafka_metadata(rk, 0, NULL, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_metadata_destroy(md);
    assert_int_equal(aas_kafka_auth_ever_up(a), 1);
    aas_kafka_error_note(a, rk, RD_KAFKA_RESP_ERR__AUTHENTICATION, sasl_reason);
    assert_int_equal(aas_kafka_auth_check(a, rk, why, sizeof(why)), AAS_ERR_OK);
    aas_kafka_error_note(a, rk, RD_KAFKA_RESP_ERR__TRANSPORT,
                         "127.0.0.1:1/bootstrap: Disconnected: verify that security.protocol "
                         "is correctly configured, broker might require SASL authentication "
                         "(after 0ms in state UP)");
    assert_int_equal(aas_kafka_auth_check(a, rk, why, sizeof(why)), AAS_ERR_OK);
    rd_kafka_destroy(rk);
    aas_kafka_auth_destroy(a);
}

/* librdkafka's "broker might require SASL authentication" (a transport
 * error) is a refusal while no broker ever stayed up, named as one. */
static void closed_at_once_is_a_refusal_before_any_broker_stayed_up(void **state) {
    aas_kafka_auth_t *a;
    char why[1024] = "";
    assert_int_equal(aas_kafka_auth_new(&a, why, sizeof(why)), AAS_ERR_OK);
    rd_kafka_t *rk = auth_producer(a, "127.0.0.1:1");
    aas_kafka_error_note(a, rk, RD_KAFKA_RESP_ERR__TRANSPORT,
                         "127.0.0.1:1/bootstrap: Disconnected: verify that security.protocol "
                         "is correctly configured, broker might require SASL authentication "
                         "(after 0ms in state UP)");
    assert_int_equal(aas_kafka_auth_check(a, rk, why, sizeof(why)), AAS_ERR_AUTH);
    assert_non_null(strstr(why, "may require authentication (security.protocol sasl_plaintext)"));
    assert_non_null(strstr(why, "broker might require SASL authentication (broker "
                                "127.0.0.1:1/bootstrap); if the broker requires"));
    rd_kafka_destroy(rk);
    aas_kafka_auth_destroy(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_reach_only_the_clients_they_are_for),
        cmocka_unit_test(unknown_keys_are_refused_with_the_key_named),
        cmocka_unit_test(the_group_in_use_is_the_configured_one),
        cmocka_unit_test(auth_failure_is_told_with_user_and_reason_never_password),
        cmocka_unit_test(auth_failure_does_not_count_while_a_broker_is_up),
        cmocka_unit_test(closed_at_once_is_a_refusal_before_any_broker_stayed_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
