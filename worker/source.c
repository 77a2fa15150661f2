/* source.c - the generic calls and the memory source; see source.h. */
#include "source_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aas_src_cut_line(const char *buf, size_t len, size_t *pos, const char **line,
                     size_t *line_len) {
    if (*pos >= len) return 0;
    const char *start = buf + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - start) : len - *pos;
    *pos += n + (nl ? 1 : 0);
    if (n > 0 && start[n - 1] == '\r') n--;
    *line = start;
    *line_len = n;
    return 1;
}

void aas_src_info(const aas_src_t *s, aas_src_info_t *out) { *out = s->info; }

aas_err_t aas_src_rewind(aas_src_t *s, uint64_t seed, char *errstr, size_t errstr_size) {
    return s->ops->rewind(s, seed, errstr, errstr_size);
}

aas_err_t aas_src_next(aas_src_t *s, const char **line, size_t *len, int *eof,
                       char *errstr, size_t errstr_size) {
    *line = NULL;
    *len = 0;
    *eof = 0;
    return s->ops->next(s, line, len, eof, errstr, errstr_size);
}

size_t aas_src_footprint(const aas_src_t *s) { return s->ops->footprint(s); }

void aas_src_destroy(aas_src_t *s) {
    if (s) s->ops->destroy(s);
}

/* ---- memory ---- */

typedef struct {
    aas_src_t base;
    const char *buf;
    size_t len, pos;
} aas_src_mem_t;

static aas_err_t aas_src_mem_rewind(aas_src_t *s, uint64_t seed, char *errstr,
                                    size_t errstr_size) {
    (void)seed, (void)errstr, (void)errstr_size;
    ((aas_src_mem_t *)s)->pos = 0;
    return AAS_ERR_OK;
}

static aas_err_t aas_src_mem_next(aas_src_t *s, const char **line, size_t *len,
                                  int *eof, char *errstr, size_t errstr_size) {
    (void)errstr, (void)errstr_size;
    aas_src_mem_t *m = (aas_src_mem_t *)s;
    if (!aas_src_cut_line(m->buf, m->len, &m->pos, line, len)) *eof = 1;
    return AAS_ERR_OK;
}

static size_t aas_src_mem_footprint(const aas_src_t *s) {
    (void)s;
    return sizeof(aas_src_mem_t);
}

static void aas_src_mem_destroy(aas_src_t *s) { free(s); }

static const aas_src_ops_t aas_src_mem_ops = {aas_src_mem_rewind, aas_src_mem_next,
                                              aas_src_mem_footprint, aas_src_mem_destroy};

aas_err_t aas_src_open_memory(const char *buf, size_t len, aas_src_format_t format,
                              aas_src_t **out, char *errstr, size_t errstr_size) {
    if (!buf && len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "aas_src_open_memory: NULL");
    aas_src_mem_t *m = calloc(1, sizeof(*m));
    if (!m) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    m->base.ops = &aas_src_mem_ops;
    snprintf(m->base.name, sizeof(m->base.name), "the job's data");
    m->base.info = (aas_src_info_t){.format = format, .rows = -1, .bytes = len,
                                    .name = m->base.name};
    int64_t rows = 0;
    size_t pos = 0, n;
    const char *l;
    while (aas_src_cut_line(buf, len, &pos, &l, &n)) rows++;
    m->base.info.rows = rows;
    m->buf = buf;
    m->len = len;
    *out = &m->base;
    return AAS_ERR_OK;
}
