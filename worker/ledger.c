/* ledger.c - offsets read and not yet finished, per partition; see ledger.h. */
#include "ledger.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t offset;
    int done;
} aas_ledger_entry_t;

typedef struct {
    char *topic;
    int32_t partition;
    /* Entries [start, len) in increasing offset order; the finished prefix
     * is popped by moving start, and the array compacted now and then. */
    aas_ledger_entry_t *e;
    size_t start, len, cap;
    int64_t last_closed;  /* the last offset popped, -1 none */
} aas_ledger_part_t;

struct aas_ledger_s {
    aas_ledger_part_t *p;
    size_t n, cap;
};

aas_err_t aas_ledger_new(aas_ledger_t **out) {
    *out = calloc(1, sizeof(**out));
    return *out ? AAS_ERR_OK : AAS_ERR_NOMEM;
}

void aas_ledger_destroy(aas_ledger_t *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->p[i].topic);
        free(l->p[i].e);
    }
    free(l->p);
    free(l);
}

static aas_ledger_part_t *aas_ledger_find(const aas_ledger_t *l, const char *topic,
                                          int32_t partition) {
    for (size_t i = 0; i < l->n; i++)
        if (l->p[i].partition == partition && strcmp(l->p[i].topic, topic) == 0)
            return &l->p[i];
    return NULL;
}

/* The index in [start, len) of offset, or of the first entry above it. */
static size_t aas_ledger_lower(const aas_ledger_part_t *p, int64_t offset) {
    size_t lo = p->start, hi = p->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->e[mid].offset < offset) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

aas_err_t aas_ledger_open(aas_ledger_t *l, const char *topic, int32_t partition,
                          int64_t offset) {
    aas_ledger_part_t *p = aas_ledger_find(l, topic, partition);
    if (!p) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 8;
            aas_ledger_part_t *np = realloc(l->p, cap * sizeof(*np));
            if (!np) return AAS_ERR_NOMEM;
            l->p = np;
            l->cap = cap;
        }
        p = &l->p[l->n];
        memset(p, 0, sizeof(*p));
        if (!(p->topic = strdup(topic))) return AAS_ERR_NOMEM;
        p->partition = partition;
        p->last_closed = -1;
        l->n++;
    }
    size_t at = aas_ledger_lower(p, offset);
    if (at < p->len && p->e[at].offset == offset) return AAS_ERR_OK; /* known */
    if (p->start > 0 && (p->start >= p->len - p->start || p->len == p->cap)) {
        /* Compact: the popped prefix is at least as long as what is left. */
        memmove(p->e, p->e + p->start, (p->len - p->start) * sizeof(*p->e));
        p->len -= p->start;
        at -= p->start;
        p->start = 0;
    }
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        aas_ledger_entry_t *ne = realloc(p->e, cap * sizeof(*ne));
        if (!ne) return AAS_ERR_NOMEM;
        p->e = ne;
        p->cap = cap;
    }
    /* In order almost always (at == len); a late one is inserted. */
    memmove(p->e + at + 1, p->e + at, (p->len - at) * sizeof(*p->e));
    p->e[at] = (aas_ledger_entry_t){.offset = offset, .done = 0};
    p->len++;
    return AAS_ERR_OK;
}

int aas_ledger_close(aas_ledger_t *l, const char *topic, int32_t partition, int64_t offset,
                     int64_t *store) {
    aas_ledger_part_t *p = aas_ledger_find(l, topic, partition);
    if (!p) return 0;
    size_t at = aas_ledger_lower(p, offset);
    if (at >= p->len || p->e[at].offset != offset) return 0;
    p->e[at].done = 1;
    if (at != p->start) return 0;
    while (p->start < p->len && p->e[p->start].done) p->last_closed = p->e[p->start++].offset;
    *store = p->start < p->len ? p->e[p->start].offset : p->last_closed + 1;
    if (p->start == p->len) p->start = p->len = 0;
    return 1;
}

void aas_ledger_cut(aas_ledger_t *l, const char *topic, int32_t partition, int64_t from) {
    aas_ledger_part_t *p = aas_ledger_find(l, topic, partition);
    if (!p) return;
    p->len = aas_ledger_lower(p, from);
    if (p->start >= p->len) p->start = p->len = 0;
}

void aas_ledger_forget(aas_ledger_t *l, const char *topic, int32_t partition) {
    aas_ledger_part_t *p = aas_ledger_find(l, topic, partition);
    if (!p) return;
    p->start = p->len = 0;
    p->last_closed = -1;
}

size_t aas_ledger_size(const aas_ledger_t *l) {
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) n += l->p[i].len - l->p[i].start;
    return n;
}
