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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_reach_only_the_clients_they_are_for),
        cmocka_unit_test(unknown_keys_are_refused_with_the_key_named),
        cmocka_unit_test(the_group_in_use_is_the_configured_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
