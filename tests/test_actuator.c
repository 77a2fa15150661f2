/*
 * test_actuator.c - the command actuator (scheduler/actuator.c) with real
 * shell hooks: the count in AAS_DESIRED_WORKERS, a hook run once per new
 * count, a failing hook reported with its exit code and not taken as
 * done, a hanging hook killed with everything it started after
 * scheduler.command.timeout.ms (issue 17, defect 2), and the hook run
 * again when the live workers stay apart from the count asked for
 * (defect 3).  No broker, no Redis.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "actuator.h"

typedef struct {
    char dir[64], file[128], cmd[512];
    aas_scheduler_conf_t c;
    aas_actuator_t *a;
} fx_t;

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/aas-act-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->file, sizeof(f->file), "%s/runs", f->dir);
    f->c.actuator = "command";
    f->c.command = f->cmd;
    f->c.command_timeout_ms = 10000;
    f->c.command_reconcile_ms = 1000;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    aas_actuator_destroy(f->a);
    unlink(f->file);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void make(fx_t *f, const char *fmt) {
    snprintf(f->cmd, sizeof(f->cmd), fmt, f->file);
    char why[256];
    assert_int_equal(aas_actuator_new(NULL, &f->c, &f->a, why, sizeof(why)), AAS_ERR_OK);
}

/* The file's lines joined by ',' ("" if none). */
static void runs(fx_t *f, char *buf, size_t size) {
    buf[0] = '\0';
    FILE *fp = fopen(f->file, "r");
    if (!fp) return;
    char line[64];
    size_t used = 0;
    while (fgets(line, sizeof(line), fp)) {
        line[strcspn(line, "\n")] = '\0';
        used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "", line);
        if (used >= size) break;
    }
    fclose(fp);
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hook_gets_the_count_once_per_change(void **state) {
    fx_t *f = *state;
    make(f, "echo $AAS_DESIRED_WORKERS >> %s");
    char why[256], got[256];
    assert_int_equal(f->a->ops->current(f->a), -1);
    assert_int_equal(f->a->ops->apply(f->a, 3, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(f->a->ops->apply(f->a, 3, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(f->a->ops->apply(f->a, 1, why, sizeof(why)), AAS_ERR_OK);
    runs(f, got, sizeof(got));
    assert_string_equal(got, "3,1");
    assert_int_equal(f->a->ops->current(f->a), 1);
}

static void failing_hook_names_its_exit_code_and_is_not_done(void **state) {
    fx_t *f = *state;
    make(f, "echo $AAS_DESIRED_WORKERS >> %s; exit 3");
    char why[256], got[256];
    assert_int_equal(f->a->ops->apply(f->a, 2, why, sizeof(why)), AAS_ERR_IO);
    assert_non_null(strstr(why, "exit code 3"));
    assert_int_equal(f->a->ops->current(f->a), -1); /* not taken as done */
    /* ... so the same count is tried again. */
    assert_int_equal(f->a->ops->apply(f->a, 2, why, sizeof(why)), AAS_ERR_IO);
    runs(f, got, sizeof(got));
    assert_string_equal(got, "2,2");
}

static void hanging_hook_is_killed_with_its_children(void **state) {
    fx_t *f = *state;
    f->c.command_timeout_ms = 300;
    /* A child of the shell that would write after 1.5 s: killed with the
     * group, it never does. */
    make(f, "(sleep 1.5; echo late >> %s) & wait");
    char why[256], got[256];
    double t0 = mono_s();
    assert_int_equal(f->a->ops->apply(f->a, 4, why, sizeof(why)), AAS_ERR_TIMEOUT);
    double took = mono_s() - t0;
    assert_true(took < 5.0);
    assert_non_null(strstr(why, "scheduler.command.timeout.ms=300"));
    assert_int_equal(f->a->ops->current(f->a), -1);
    sleep(3);
    runs(f, got, sizeof(got));
    assert_string_equal(got, "");
}

static void live_apart_from_asked_runs_the_hook_again(void **state) {
    fx_t *f = *state;
    make(f, "echo $AAS_DESIRED_WORKERS >> %s");
    char why[256], got[256];
    assert_int_equal(f->a->ops->apply(f->a, 2, why, sizeof(why)), AAS_ERR_OK);
    f->a->ops->reconcile(f->a, 2, 10.0);   /* as asked */
    f->a->ops->reconcile(f->a, 1, 11.0);   /* apart from now */
    f->a->ops->reconcile(f->a, 1, 11.9);   /* within the grace */
    f->a->ops->reconcile(f->a, -1, 12.0);  /* unknown: not apart */
    f->a->ops->reconcile(f->a, 1, 12.1);   /* apart again, from 12.1 */
    f->a->ops->reconcile(f->a, 1, 12.9);
    runs(f, got, sizeof(got));
    assert_string_equal(got, "2");
    f->a->ops->reconcile(f->a, 1, 13.2);   /* 1.1 s apart: asked again */
    runs(f, got, sizeof(got));
    assert_string_equal(got, "2,2");
    f->a->ops->reconcile(f->a, 1, 13.5);   /* next try a grace period later */
    runs(f, got, sizeof(got));
    assert_string_equal(got, "2,2");
    f->a->ops->reconcile(f->a, 1, 14.3);
    runs(f, got, sizeof(got));
    assert_string_equal(got, "2,2,2");
    f->a->ops->reconcile(f->a, 2, 14.4);   /* reached */
    f->a->ops->reconcile(f->a, 2, 20.0);
    runs(f, got, sizeof(got));
    assert_string_equal(got, "2,2,2");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hook_gets_the_count_once_per_change, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_hook_names_its_exit_code_and_is_not_done,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(hanging_hook_is_killed_with_its_children, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(live_apart_from_asked_runs_the_hook_again, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
