/* fair.c - deficit round robin between tenants; see fair.h. */
#include "fair.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

/* The estimate of a tenant never seen measured (a small model's row). */
#define AAS_FAIR_EST0_US 50
/* Hash slots for tenant names: a power of two above twice the tenants. */
#define AAS_FAIR_HASH 2048

typedef struct aas_fair_node_s {
    void *item;
    size_t bytes;
    struct aas_fair_node_s *next;
} aas_fair_node_t;

typedef struct {
    char name[AAS_ID_MAX + 1];
    double weight;
    int64_t deficit;        /* us of compute it may still take this visit */
    int64_t est_us;         /* estimated compute per job (moving average) */
    int fresh;              /* its quantum was added on this visit */
    int in_round;
    int prev, next;         /* the round (a ring of slots), when in_round */
    aas_fair_node_t *head, *tail;
} aas_fair_tenant_t;

struct aas_fair_s {
    aas_fair_conf_t conf;
    aas_fair_tenant_t t[AAS_FAIR_TENANTS_MAX + 1]; /* slot 0: "(other)" */
    int n_tenants;
    int hash[AAS_FAIR_HASH];  /* slot + 1, 0 = empty */
    int cur;                  /* the round's tenant now, -1: no round */
    size_t count, bytes;
    aas_fair_node_t *free_nodes;
};

static uint32_t aas_fair_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot of tenant name, or -1; *empty: the hash slot it would take. */
static int aas_fair_find(const aas_fair_t *f, const char *name, uint32_t *empty) {
    uint32_t h = aas_fair_hash(name) & (AAS_FAIR_HASH - 1);
    for (;; h = (h + 1) & (AAS_FAIR_HASH - 1)) {
        int s = f->hash[h] - 1;
        if (s < 0) break;
        if (strcmp(f->t[s].name, name) == 0) return s;
    }
    *empty = h;
    return -1;
}

/* The slot of tenant name, added if new (-1: the table is full). */
static int aas_fair_slot(aas_fair_t *f, const char *name) {
    uint32_t h;
    int s = aas_fair_find(f, name, &h);
    if (s >= 0) return s;
    if (f->n_tenants > AAS_FAIR_TENANTS_MAX - 1) return -1;
    s = ++f->n_tenants;
    f->hash[h] = s + 1;
    snprintf(f->t[s].name, sizeof(f->t[s].name), "%s", name);
    f->t[s].weight = 1.0;
    f->t[s].est_us = AAS_FAIR_EST0_US;
    return s;
}

/* "acme:2,bolt:0.5" into the table. */
static aas_err_t aas_fair_weights(aas_fair_t *f, const char *spec, char *errstr,
                                  size_t errstr_size) {
    const char *p = spec;
    while (p && *p) {
        const char *end = strchr(p, ','), *colon = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[AAS_ID_MAX + 1];
        if (!colon || colon > p + len || (size_t)(colon - p) > AAS_ID_MAX)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "worker.fair.weights: '%.*s' is not tenant:weight", (int)len, p);
        memcpy(name, p, (size_t)(colon - p));
        name[colon - p] = '\0';
        char num[32], *numend = NULL;
        size_t nlen = len - (size_t)(colon - p) - 1;
        if (nlen == 0 || nlen >= sizeof(num))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "worker.fair.weights: tenant %s has no weight", name);
        memcpy(num, colon + 1, nlen);
        num[nlen] = '\0';
        errno = 0;
        double w = strtod(num, &numend);
        if (!aas_id_valid(name))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "worker.fair.weights: '%s' is not a valid tenant", name);
        if (errno || *numend || !(w > 0) || w > AAS_FAIR_WEIGHT_MAX)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "worker.fair.weights: tenant %s: weight '%s' is not in (0, %g]",
                               name, num, AAS_FAIR_WEIGHT_MAX);
        int s = aas_fair_slot(f, name);
        if (s < 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "worker.fair.weights: more than %d tenants",
                               AAS_FAIR_TENANTS_MAX);
        f->t[s].weight = w;
        p = end ? end + 1 : NULL;
    }
    return AAS_ERR_OK;
}

aas_err_t aas_fair_new(const aas_fair_conf_t *conf, aas_fair_t **out, char *errstr,
                       size_t errstr_size) {
    aas_fair_t *f = calloc(1, sizeof(*f));
    if (!f) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    f->conf = *conf;
    f->conf.weights = NULL; /* not kept: parsed now */
    if (f->conf.max_items < 1) f->conf.max_items = 1;
    if (f->conf.max_bytes < 1) f->conf.max_bytes = 1;
    if (f->conf.quantum_us < 1) f->conf.quantum_us = 1;
    f->cur = -1;
    snprintf(f->t[0].name, sizeof(f->t[0].name), "(other)");
    f->t[0].weight = 1.0;
    f->t[0].est_us = AAS_FAIR_EST0_US;
    aas_err_t err = aas_fair_weights(f, conf->weights, errstr, errstr_size);
    if (err) {
        free(f);
        return err;
    }
    *out = f;
    return AAS_ERR_OK;
}

void aas_fair_destroy(aas_fair_t *f) {
    if (!f) return;
    for (int s = 0; s <= f->n_tenants; s++)
        for (aas_fair_node_t *n = f->t[s].head, *next; n; n = next) {
            next = n->next;
            if (f->conf.free_item) f->conf.free_item(n->item);
            free(n);
        }
    for (aas_fair_node_t *n = f->free_nodes, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    free(f);
}

int aas_fair_full(const aas_fair_t *f) {
    return f->count >= f->conf.max_items || f->bytes >= f->conf.max_bytes;
}

size_t aas_fair_count(const aas_fair_t *f) { return f->count; }

/* Join the round, just before the tenant now served (the end of the ring). */
static void aas_fair_join(aas_fair_t *f, int s) {
    aas_fair_tenant_t *t = &f->t[s];
    t->in_round = 1;
    t->fresh = 0;
    if (f->cur < 0) {
        t->prev = t->next = s;
        f->cur = s;
        return;
    }
    int after = f->t[f->cur].prev;
    t->prev = after;
    t->next = f->cur;
    f->t[after].next = s;
    f->t[f->cur].prev = s;
}

/* Leave the round, keeping a debt only; the next tenant is the current. */
static void aas_fair_leave(aas_fair_t *f, int s) {
    aas_fair_tenant_t *t = &f->t[s];
    t->in_round = 0;
    t->fresh = 0;
    if (t->deficit > 0) t->deficit = 0;
    if (t->next == s) {
        f->cur = -1;
        return;
    }
    f->t[t->prev].next = t->next;
    f->t[t->next].prev = t->prev;
    if (f->cur == s) f->cur = t->next;
}

aas_err_t aas_fair_push(aas_fair_t *f, const char *tenant, void *item, size_t bytes) {
    aas_fair_node_t *n = f->free_nodes;
    if (n) f->free_nodes = n->next;
    else if (!(n = malloc(sizeof(*n)))) return AAS_ERR_NOMEM;
    int s = aas_fair_slot(f, tenant && tenant[0] ? tenant : "default");
    if (s < 0) s = 0;
    aas_fair_tenant_t *t = &f->t[s];
    n->item = item;
    n->bytes = bytes;
    n->next = NULL;
    if (t->tail) t->tail->next = n;
    else t->head = n;
    t->tail = n;
    f->count++;
    f->bytes += bytes;
    if (!t->in_round) aas_fair_join(f, s);
    return AAS_ERR_OK;
}

void *aas_fair_pop(aas_fair_t *f, aas_fair_ticket_t *ticket) {
    if (f->cur < 0) return NULL;
    /* Terminates: every pass of the ring adds a positive quantum to each
     * tenant in it, so some deficit turns positive. */
    for (;;) {
        int s = f->cur;
        aas_fair_tenant_t *t = &f->t[s];
        if (!t->fresh) {
            int64_t q = (int64_t)((double)f->conf.quantum_us * t->weight);
            t->deficit += q > 0 ? q : 1;
            t->fresh = 1;
        }
        if (t->deficit > 0) {
            aas_fair_node_t *n = t->head;
            t->head = n->next;
            if (!t->head) t->tail = NULL;
            f->count--;
            f->bytes -= n->bytes;
            void *item = n->item;
            n->next = f->free_nodes;
            f->free_nodes = n;
            t->deficit -= t->est_us;
            ticket->tenant = s;
            ticket->charged_us = t->est_us;
            if (!t->head) aas_fair_leave(f, s);
            return item;
        }
        t->fresh = 0;
        f->cur = t->next;
    }
}

void aas_fair_charge(aas_fair_t *f, const aas_fair_ticket_t *ticket, int64_t measured_us) {
    if (ticket->tenant < 0 || ticket->tenant > f->n_tenants) return;
    aas_fair_tenant_t *t = &f->t[ticket->tenant];
    if (measured_us < 0) measured_us = 0;
    t->deficit -= measured_us - ticket->charged_us;
    if (!t->in_round && t->deficit > 0) t->deficit = 0;
    /* Moving average over about 8 jobs; at least 1 us, so a free job
     * still costs a turn. */
    t->est_us += (measured_us - t->est_us) / 8;
    if (t->est_us < 1) t->est_us = 1;
}

size_t aas_fair_drop(aas_fair_t *f, int (*match)(const void *item, void *ctx), void *ctx) {
    size_t dropped = 0;
    for (int s = 0; s <= f->n_tenants; s++) {
        aas_fair_tenant_t *t = &f->t[s];
        aas_fair_node_t **pp = &t->head, *last = NULL;
        while (*pp) {
            aas_fair_node_t *n = *pp;
            if (!match(n->item, ctx)) {
                last = n;
                pp = &n->next;
                continue;
            }
            *pp = n->next;
            f->count--;
            f->bytes -= n->bytes;
            if (f->conf.free_item) f->conf.free_item(n->item);
            n->next = f->free_nodes;
            f->free_nodes = n;
            dropped++;
        }
        t->tail = last;
        if (!t->head && t->in_round) aas_fair_leave(f, s);
    }
    return dropped;
}

const char *aas_fair_tenant(const aas_fair_t *f, int slot) {
    return slot >= 0 && slot <= f->n_tenants ? f->t[slot].name : "";
}

int64_t aas_fair_deficit(const aas_fair_t *f, const char *tenant) {
    uint32_t h;
    int s = aas_fair_find(f, tenant, &h);
    return s < 0 ? 0 : f->t[s].deficit;
}
