/* test_fair.c - worker/fair.h (deficit round robin between tenants) and
 * worker/ledger.h (offsets stored only past finished messages). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fair.h"
#include "ledger.h"

/* An item: its tenant's index and its sequence number, packed. */
#define ITEM(t, i) ((void *)(uintptr_t)(((uintptr_t)(t) << 24) | (uintptr_t)(i) | 1u << 30))
#define ITEM_T(p) ((int)(((uintptr_t)(p) >> 24) & 0x3f))
#define ITEM_I(p) ((int)((uintptr_t)(p) & 0xffffff))

static int freed;
static void count_free(void *item) {
    (void)item;
    freed++;
}

static aas_fair_t *fair(const char *weights, size_t max_items) {
    aas_fair_conf_t c = {.max_items = max_items, .max_bytes = 1 << 30, .quantum_us = 1000,
                         .weights = weights, .free_item = count_free};
    aas_fair_t *f = NULL;
    char err[256];
    assert_int_equal(aas_fair_new(&c, &f, err, sizeof(err)), AAS_ERR_OK);
    return f;
}

static void one_tenant_is_fifo(void **state) {
    (void)state;
    aas_fair_t *f = fair(NULL, 1000);
    for (int i = 0; i < 100; i++)
        assert_int_equal(aas_fair_push(f, "acme", ITEM(1, i), 10), AAS_ERR_OK);
    assert_int_equal(aas_fair_count(f), 100);
    aas_fair_ticket_t tk;
    for (int i = 0; i < 100; i++) {
        void *p = aas_fair_pop(f, &tk);
        assert_non_null(p);
        assert_int_equal(ITEM_I(p), i);
        assert_string_equal(aas_fair_tenant(f, tk.tenant), "acme");
        aas_fair_charge(f, &tk, 30);
    }
    assert_null(aas_fair_pop(f, &tk));
    assert_int_equal(aas_fair_count(f), 0);
    aas_fair_destroy(f);
}

/* The case the module exists for: a tenant's one job queued behind
 * another's thousands is handed out within one visit of the flooder. */
static void a_late_tenant_does_not_wait_behind_a_flood(void **state) {
    (void)state;
    aas_fair_t *f = fair(NULL, 100000);
    for (int i = 0; i < 5000; i++) aas_fair_push(f, "flood", ITEM(1, i), 100);
    aas_fair_ticket_t tk;
    for (int i = 0; i < 7; i++) {
        assert_non_null(aas_fair_pop(f, &tk));
        aas_fair_charge(f, &tk, 50); /* as estimated */
    }
    aas_fair_push(f, "steady", ITEM(2, 0), 100);
    int at = -1;
    for (int i = 0; i < 200 && at < 0; i++) {
        void *p = aas_fair_pop(f, &tk);
        assert_non_null(p);
        if (ITEM_T(p) == 2) at = i;
    }
    /* The flood's visit: a quantum of 1000 us at 50 us a job is 20 jobs,
     * 7 of them taken before the steady job came. */
    assert_int_equal(at, 13);
    assert_int_equal(aas_fair_count(f), 5000 - 7 - at);
    aas_fair_destroy(f);
}

/* Two backlogged tenants whose jobs cost 10x apart get equal compute, not
 * equal jobs; with weights 3:1 and equal costs, 3x the jobs. */
static void compute_is_shared_by_measured_cost_and_weight(void **state) {
    (void)state;
    for (int weighted = 0; weighted < 2; weighted++) {
        aas_fair_t *f = fair(weighted ? "a:3,b:1" : NULL, 100000);
        long cost[3] = {0, weighted ? 100 : 500, weighted ? 100 : 50};
        long served_us[3] = {0}, jobs[3] = {0};
        int next[3] = {0};
        for (int t = 1; t <= 2; t++)
            for (; next[t] < 2000; next[t]++) aas_fair_push(f, t == 1 ? "a" : "b", ITEM(t, next[t]), 1);
        aas_fair_ticket_t tk;
        for (int i = 0; i < 20000; i++) {
            void *p = aas_fair_pop(f, &tk);
            assert_non_null(p);
            int t = ITEM_T(p);
            served_us[t] += cost[t];
            jobs[t]++;
            aas_fair_charge(f, &tk, cost[t]);
            aas_fair_push(f, t == 1 ? "a" : "b", ITEM(t, next[t]++ & 0xffffff), 1);
        }
        if (!weighted) {
            double r = (double)served_us[1] / (double)served_us[2];
            assert_true(r > 0.9 && r < 1.1);
            assert_true(jobs[2] > 8 * jobs[1]);
        } else {
            double r = (double)jobs[1] / (double)jobs[2];
            assert_true(r > 2.7 && r < 3.3);
        }
        freed = 0;
        aas_fair_destroy(f);
        assert_int_equal(freed, 4000); /* what was left queued */
    }
}

/* A tenant that leaves the round keeps a debt, never a credit. */
static void idling_earns_no_credit(void **state) {
    (void)state;
    aas_fair_t *f = fair(NULL, 1000);
    aas_fair_ticket_t tk;
    aas_fair_push(f, "a", ITEM(1, 0), 1);
    assert_non_null(aas_fair_pop(f, &tk)); /* quantum 1000 - estimate 50 */
    assert_true(aas_fair_deficit(f, "a") <= 0);
    aas_fair_charge(f, &tk, 5000); /* measured far above the estimate */
    assert_true(aas_fair_deficit(f, "a") < -4000);
    aas_fair_charge(f, &tk, 0);
    assert_true(aas_fair_deficit(f, "a") <= 0);
    aas_fair_destroy(f);
}

static int match_tenant(const void *item, void *ctx) {
    return ITEM_T(item) == *(int *)ctx;
}

static void dropped_items_are_freed_and_the_round_goes_on(void **state) {
    (void)state;
    aas_fair_t *f = fair(NULL, 1000);
    for (int i = 0; i < 10; i++) {
        aas_fair_push(f, "a", ITEM(1, i), 1);
        aas_fair_push(f, "b", ITEM(2, i), 1);
        aas_fair_push(f, "c", ITEM(3, i), 1);
    }
    freed = 0;
    int which = 2;
    assert_int_equal(aas_fair_drop(f, match_tenant, &which), 10);
    assert_int_equal(freed, 10);
    assert_int_equal(aas_fair_count(f), 20);
    aas_fair_ticket_t tk;
    for (int i = 0; i < 20; i++) {
        void *p = aas_fair_pop(f, &tk);
        assert_non_null(p);
        assert_int_not_equal(ITEM_T(p), 2);
    }
    assert_null(aas_fair_pop(f, &tk));
    /* Dropping from a tenant now being served, then pushing again. */
    aas_fair_push(f, "a", ITEM(1, 0), 1);
    which = 1;
    assert_int_equal(aas_fair_drop(f, match_tenant, &which), 1);
    assert_null(aas_fair_pop(f, &tk));
    aas_fair_push(f, "c", ITEM(3, 0), 1);
    assert_int_equal(ITEM_T(aas_fair_pop(f, &tk)), 3);
    aas_fair_destroy(f);
}

static void full_by_items_or_bytes(void **state) {
    (void)state;
    aas_fair_conf_t c = {.max_items = 3, .max_bytes = 1000, .quantum_us = 1000};
    aas_fair_t *f = NULL;
    char err[256];
    assert_int_equal(aas_fair_new(&c, &f, err, sizeof(err)), AAS_ERR_OK);
    assert_false(aas_fair_full(f));
    aas_fair_push(f, "", ITEM(1, 0), 10);
    aas_fair_push(f, NULL, ITEM(1, 1), 10);
    assert_false(aas_fair_full(f));
    aas_fair_push(f, "x", ITEM(1, 2), 10);
    assert_true(aas_fair_full(f));
    aas_fair_ticket_t tk;
    void *p = aas_fair_pop(f, &tk);
    assert_string_equal(aas_fair_tenant(f, tk.tenant), "default"); /* "" and NULL */
    assert_int_equal(ITEM_I(p), 0);
    assert_false(aas_fair_full(f));
    aas_fair_push(f, "x", ITEM(1, 3), 980);
    assert_true(aas_fair_full(f)); /* 1000 bytes */
    aas_fair_destroy(f);
}

static void weights_are_checked(void **state) {
    (void)state;
    const char *bad[] = {"acme", "acme:", ":2", "acme:0", "acme:-1", "acme:1001",
                         "acme:2x", "ac/me:2", "acme:2,,b:1", NULL};
    for (int i = 0; bad[i]; i++) {
        aas_fair_conf_t c = {.max_items = 1, .max_bytes = 1, .quantum_us = 1, .weights = bad[i]};
        aas_fair_t *f = NULL;
        char err[256] = "";
        assert_int_equal(aas_fair_new(&c, &f, err, sizeof(err)), AAS_ERR_INVAL);
        assert_non_null(strstr(err, "worker.fair.weights"));
        assert_null(f);
    }
    aas_fair_destroy(fair("a:0.5,b.c:1000", 1));
}

static void tenants_past_the_table_share_one_queue(void **state) {
    (void)state;
    aas_fair_t *f = fair(NULL, 100000);
    char name[32];
    for (int i = 0; i < AAS_FAIR_TENANTS_MAX + 10; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        assert_int_equal(aas_fair_push(f, name, ITEM(1, i), 1), AAS_ERR_OK);
    }
    aas_fair_ticket_t tk;
    int other = 0;
    for (int i = 0; i < AAS_FAIR_TENANTS_MAX + 10; i++) {
        assert_non_null(aas_fair_pop(f, &tk));
        other += strcmp(aas_fair_tenant(f, tk.tenant), "(other)") == 0;
    }
    assert_int_equal(other, 10);
    aas_fair_destroy(f);
}

/* ---- ledger ---- */

static void ledger_stores_only_past_finished_messages(void **state) {
    (void)state;
    aas_ledger_t *l = NULL;
    assert_int_equal(aas_ledger_new(&l), AAS_ERR_OK);
    for (int64_t o = 100; o < 110; o++)
        assert_int_equal(aas_ledger_open(l, "t", 0, o), AAS_ERR_OK);
    aas_ledger_open(l, "t", 1, 7);
    int64_t st = -1;
    assert_int_equal(aas_ledger_close(l, "t", 0, 105, &st), 0); /* 100..104 open */
    assert_int_equal(aas_ledger_close(l, "t", 0, 100, &st), 1);
    assert_int_equal(st, 101);
    for (int64_t o = 101; o < 104; o++) assert_int_equal(aas_ledger_close(l, "t", 0, o, &st), 1);
    assert_int_equal(st, 104);
    assert_int_equal(aas_ledger_close(l, "t", 0, 104, &st), 1);
    assert_int_equal(st, 106); /* 105 was finished before */
    assert_int_equal(aas_ledger_close(l, "t", 0, 999, &st), 0);   /* unknown */
    assert_int_equal(aas_ledger_close(l, "u", 0, 106, &st), 0);   /* other topic */
    assert_int_equal(aas_ledger_close(l, "t", 1, 7, &st), 1);
    assert_int_equal(st, 8);
    for (int64_t o = 106; o < 110; o++) aas_ledger_close(l, "t", 0, o, &st);
    assert_int_equal(st, 110); /* none open: the one after the last */
    assert_int_equal(aas_ledger_size(l), 0);
    aas_ledger_destroy(l);
}

static void ledger_cut_and_forget(void **state) {
    (void)state;
    aas_ledger_t *l = NULL;
    assert_int_equal(aas_ledger_new(&l), AAS_ERR_OK);
    for (int64_t o = 0; o < 10; o++) aas_ledger_open(l, "t", 3, o);
    int64_t st = -1;
    aas_ledger_close(l, "t", 3, 7, &st); /* finished, then rewound past */
    assert_int_equal(aas_ledger_close(l, "t", 3, 0, &st), 1);
    assert_int_equal(st, 1);
    aas_ledger_cut(l, "t", 3, 5); /* 5.. come again */
    assert_int_equal(aas_ledger_size(l), 4);
    assert_int_equal(aas_ledger_close(l, "t", 3, 7, &st), 0);
    for (int64_t o = 5; o < 8; o++) aas_ledger_open(l, "t", 3, o);
    aas_ledger_open(l, "t", 3, 6); /* twice is once */
    for (int64_t o = 1; o < 7; o++) aas_ledger_close(l, "t", 3, o, &st);
    assert_int_equal(st, 7); /* 7 re-opened: open again */
    aas_ledger_forget(l, "t", 3);
    assert_int_equal(aas_ledger_close(l, "t", 3, 7, &st), 0);
    assert_int_equal(aas_ledger_size(l), 0);
    aas_ledger_open(l, "t", 3, 50);
    assert_int_equal(aas_ledger_close(l, "t", 3, 50, &st), 1);
    assert_int_equal(st, 51);
    aas_ledger_destroy(l);
}

/* A long run: messages finished in a shuffled order within a sliding
 * window; the stored offset is always the first unfinished one. */
static void ledger_long_run_out_of_order(void **state) {
    (void)state;
    aas_ledger_t *l = NULL;
    assert_int_equal(aas_ledger_new(&l), AAS_ERR_OK);
    enum { N = 200000, W = 512 };
    unsigned char *done = calloc(N, 1);
    assert_non_null(done);
    uint64_t rng = 42;
    int64_t low = 0, st = -1;
    for (int64_t o = 0; o < N; o++) {
        assert_int_equal(aas_ledger_open(l, "t", 0, o), AAS_ERR_OK);
        if (o < W) continue;
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t pick = o - W + (int64_t)((rng >> 33) % W);
        while (pick >= 0 && done[pick]) pick--;
        if (pick < low) pick = low;
        if (done[pick]) continue;
        done[pick] = 1;
        int moved = aas_ledger_close(l, "t", 0, pick, &st);
        assert_int_equal(moved, pick == low);
        if (moved) {
            while (low < N && done[low]) low++;
            assert_int_equal(st, low);
        }
        assert_true(aas_ledger_size(l) <= (size_t)(o + 1 - low));
    }
    free(done);
    aas_ledger_destroy(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_tenant_is_fifo),
        cmocka_unit_test(a_late_tenant_does_not_wait_behind_a_flood),
        cmocka_unit_test(compute_is_shared_by_measured_cost_and_weight),
        cmocka_unit_test(idling_earns_no_credit),
        cmocka_unit_test(dropped_items_are_freed_and_the_round_goes_on),
        cmocka_unit_test(full_by_items_or_bytes),
        cmocka_unit_test(weights_are_checked),
        cmocka_unit_test(tenants_past_the_table_share_one_queue),
        cmocka_unit_test(ledger_stores_only_past_finished_messages),
        cmocka_unit_test(ledger_cut_and_forget),
        cmocka_unit_test(ledger_long_run_out_of_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
