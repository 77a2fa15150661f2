/*
 * source_int.h - what source.c shares with each source implementation:
 * one ops table per kind, and the aas_src_t header each embeds first.
 */
#ifndef AAS_SOURCE_INT_H
#define AAS_SOURCE_INT_H

#include "source.h"

typedef struct {
    aas_err_t (*rewind)(aas_src_t *s, uint64_t seed, char *errstr, size_t errstr_size);
    aas_err_t (*next)(aas_src_t *s, const char **line, size_t *len, int *eof,
                      char *errstr, size_t errstr_size);
    size_t (*footprint)(const aas_src_t *s);
    void (*destroy)(aas_src_t *s);
} aas_src_ops_t;

struct aas_src_s {
    const aas_src_ops_t *ops;
    aas_src_info_t info;     /* info.name points into name */
    char name[192];
};

/* Split the next line off [*pos, len) of buf: '\n' ends it, a '\r' before
 * it is dropped.  Returns 0 when nothing is left. */
int aas_src_cut_line(const char *buf, size_t len, size_t *pos, const char **line,
                     size_t *line_len);

#endif
