/* test_podcost.c - the pure parts of worker/podcost.h: DNS name checks, the
 * pod URL, the in-cluster URL, the merge-patch body; and the settings that
 * keep it off or refuse to start.  The PATCH itself is tested against a
 * stand-in server by tests/test_podcost.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "podcost.h"

static void namespace_names_are_dns_labels(void **state) {
    (void)state;
    assert_true(aas_podcost_dns_label_valid("default"));
    assert_true(aas_podcost_dns_label_valid("aas-prod-1"));
    assert_true(aas_podcost_dns_label_valid("a"));
    assert_true(aas_podcost_dns_label_valid("0abc"));
    char max[64];
    memset(max, 'a', 63);
    max[63] = '\0';
    assert_true(aas_podcost_dns_label_valid(max));
    char over[65];
    memset(over, 'a', 64);
    over[64] = '\0';
    assert_false(aas_podcost_dns_label_valid(over));
    assert_false(aas_podcost_dns_label_valid(""));
    assert_false(aas_podcost_dns_label_valid(NULL));
    assert_false(aas_podcost_dns_label_valid("-a"));
    assert_false(aas_podcost_dns_label_valid("a-"));
    assert_false(aas_podcost_dns_label_valid("Default"));
    assert_false(aas_podcost_dns_label_valid("a.b")); /* a namespace has no dots */
    assert_false(aas_podcost_dns_label_valid("a_b"));
    assert_false(aas_podcost_dns_label_valid("a/b"));
}

static void pod_names_are_dns_subdomains(void **state) {
    (void)state;
    assert_true(aas_podcost_dns_subdomain_valid("aas-trainer-7d9f5c6b8-x2k4q"));
    assert_true(aas_podcost_dns_subdomain_valid("a.b-c.d"));
    assert_false(aas_podcost_dns_subdomain_valid("a..b"));
    assert_false(aas_podcost_dns_subdomain_valid(".a"));
    assert_false(aas_podcost_dns_subdomain_valid("a."));
    assert_false(aas_podcost_dns_subdomain_valid("a.-b"));
    assert_false(aas_podcost_dns_subdomain_valid("../etc"));
    assert_false(aas_podcost_dns_subdomain_valid("a%2Fb"));
    assert_false(aas_podcost_dns_subdomain_valid("a?b"));
    assert_false(aas_podcost_dns_subdomain_valid(""));
    assert_false(aas_podcost_dns_subdomain_valid(NULL));
    char name[300];
    /* 4 labels of 63 and 3 dots: 255 > 253 */
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        memset(name + n, 'a', 63);
        n += 63;
        if (i < 3) name[n++] = '.';
    }
    name[n] = '\0';
    assert_false(aas_podcost_dns_subdomain_valid(name));
    name[253] = '\0'; /* ends in 'a' */
    assert_true(aas_podcost_dns_subdomain_valid(name));
}

static void the_pod_url_is_built_from_checked_parts(void **state) {
    (void)state;
    char url[512], why[256];
    assert_int_equal(aas_podcost_url("https://10.0.0.1:443", "aas", "trainer-1", url,
                                     sizeof(url), why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(url, "https://10.0.0.1:443/api/v1/namespaces/aas/pods/trainer-1");
    /* trailing slashes are dropped, a path prefix is kept */
    assert_int_equal(aas_podcost_url("https://proxy.example/k8s//", "aas", "p", url,
                                     sizeof(url), why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(url, "https://proxy.example/k8s/api/v1/namespaces/aas/pods/p");
    assert_int_equal(aas_podcost_url("HTTPS://h", "aas", "p", url, sizeof(url), why,
                                     sizeof(why)), AAS_ERR_OK);
}

static void the_pod_url_refuses_what_it_cannot_trust(void **state) {
    (void)state;
    char url[512], why[256];
    assert_int_equal(aas_podcost_url("http://h", "aas", "p", url, sizeof(url), why,
                                     sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "https://"));
    assert_int_equal(aas_podcost_url("https://", "aas", "p", url, sizeof(url), why,
                                     sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_podcost_url("https://h x", "aas", "p", url, sizeof(url), why,
                                     sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_podcost_url("https://h?x=1", "aas", "p", url, sizeof(url), why,
                                     sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_podcost_url("https://h", "a/b", "p", url, sizeof(url), why,
                                     sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "namespace"));
    assert_int_equal(aas_podcost_url("https://h", "aas", "../../nodes/n", url, sizeof(url),
                                     why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "pod name"));
    assert_int_equal(aas_podcost_url("https://h", "aas", "p", url, 20, why, sizeof(why)),
                     AAS_ERR_TOO_LARGE);
}

static void the_incluster_url_brackets_ipv6(void **state) {
    (void)state;
    char url[256], why[256];
    assert_int_equal(aas_podcost_incluster_url("10.96.0.1", "443", url, sizeof(url), why,
                                               sizeof(why)), AAS_ERR_OK);
    assert_string_equal(url, "https://10.96.0.1:443");
    assert_int_equal(aas_podcost_incluster_url("fd00:10:96::1", "6443", url, sizeof(url),
                                               why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(url, "https://[fd00:10:96::1]:6443");
    assert_int_equal(aas_podcost_incluster_url("kubernetes.default.svc", NULL, url,
                                               sizeof(url), why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(url, "https://kubernetes.default.svc:443");
    assert_int_equal(aas_podcost_incluster_url("", "443", url, sizeof(url), why,
                                               sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_podcost_incluster_url("h/x", "443", url, sizeof(url), why,
                                               sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_podcost_incluster_url("h", "0", url, sizeof(url), why,
                                               sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_podcost_incluster_url("h", "65536", url, sizeof(url), why,
                                               sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_podcost_incluster_url("h", "44x", url, sizeof(url), why,
                                               sizeof(why)), AAS_ERR_INVAL);
}

static void the_body_is_a_merge_patch_of_one_string_annotation(void **state) {
    (void)state;
    char body[160];
    assert_int_equal(aas_podcost_body(1000, body, sizeof(body)), AAS_ERR_OK);
    assert_string_equal(body, "{\"metadata\":{\"annotations\":{"
                              "\"controller.kubernetes.io/pod-deletion-cost\":\"1000\"}}}");
    assert_int_equal(aas_podcost_body(0, body, sizeof(body)), AAS_ERR_OK);
    assert_non_null(strstr(body, "\":\"0\"}"));
    assert_int_equal(aas_podcost_body(-5, body, sizeof(body)), AAS_ERR_OK);
    assert_non_null(strstr(body, "\":\"-5\"}"));
    assert_int_equal(aas_podcost_body(2147483647, body, sizeof(body)), AAS_ERR_OK);
    assert_int_equal(aas_podcost_body(2147483648LL, body, sizeof(body)), AAS_ERR_INVAL);
    assert_int_equal(aas_podcost_body(1000, body, 10), AAS_ERR_TOO_LARGE);
}

static void settings_keep_it_off_or_refuse(void **state) {
    (void)state;
    char why[256];
    aas_podcost_t *p = (aas_podcost_t *)1;
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("POD_NAME");
    unsetenv("POD_NAMESPACE");
    aas_podcost_conf_t c = {.enabled = "false", .api_url = "https://h", .ns = "aas",
                            .pod = "p", .busy_cost = 1000, .timeout_ms = 100};
    assert_int_equal(aas_podcost_new(&c, NULL, &p, why, sizeof(why)), AAS_ERR_OK);
    assert_null(p);
    /* auto outside a cluster: off */
    c = (aas_podcost_conf_t){.enabled = "auto", .busy_cost = 1000, .timeout_ms = 100};
    p = (aas_podcost_t *)1;
    assert_int_equal(aas_podcost_new(&c, NULL, &p, why, sizeof(why)), AAS_ERR_OK);
    assert_null(p);
    /* auto in a cluster without a pod name: off */
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    p = (aas_podcost_t *)1;
    assert_int_equal(aas_podcost_new(&c, NULL, &p, why, sizeof(why)), AAS_ERR_OK);
    assert_null(p);
    /* true without a pod name: refused */
    c.enabled = "true";
    assert_int_equal(aas_podcost_new(&c, NULL, &p, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "pod name"));
    /* a bad pod name: refused */
    c.pod = "Trainer_1";
    c.ns = "aas";
    assert_int_equal(aas_podcost_new(&c, NULL, &p, why, sizeof(why)), AAS_ERR_INVAL);
    /* neither auto, true nor false */
    c.enabled = "yes";
    assert_int_equal(aas_podcost_new(&c, NULL, &p, why, sizeof(why)), AAS_ERR_INVAL);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    aas_podcost_busy(NULL, 1);  /* no-ops */
    aas_podcost_destroy(NULL);
}

static void a_handle_starts_and_stops_without_a_server(void **state) {
    (void)state;
    char why[256];
    aas_podcost_t *p = NULL;
    /* Port 1 on loopback: connection refused; the thread retries in the
     * background and destroy still returns promptly. */
    aas_podcost_conf_t c = {.enabled = "true", .api_url = "https://127.0.0.1:1",
                            .token_file = "/nonexistent/token", .ca_file = "/nonexistent/ca",
                            .ns = "aas", .pod = "p", .busy_cost = 1000, .timeout_ms = 200};
    assert_int_equal(aas_podcost_new(&c, NULL, &p, why, sizeof(why)), AAS_ERR_OK);
    assert_non_null(p);
    aas_podcost_busy(p, 1);
    aas_podcost_busy(p, 0);
    aas_podcost_destroy(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(namespace_names_are_dns_labels),
        cmocka_unit_test(pod_names_are_dns_subdomains),
        cmocka_unit_test(the_pod_url_is_built_from_checked_parts),
        cmocka_unit_test(the_pod_url_refuses_what_it_cannot_trust),
        cmocka_unit_test(the_incluster_url_brackets_ipv6),
        cmocka_unit_test(the_body_is_a_merge_patch_of_one_string_annotation),
        cmocka_unit_test(settings_keep_it_off_or_refuse),
        cmocka_unit_test(a_handle_starts_and_stops_without_a_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
