/*
 * source_dataset.c - a training source over a data set in Redis, format
 * aas.dataset.v2 (text lines in chunks of whole lines, store.h): one chunk
 * at a time is fetched (aas_store_dataset_chunk(), which checks its CRC and
 * that the set is still the upload opened), cut into lines, and dropped
 * for the next.  A CSV set's header line is skipped.  rewind(seed != 0)
 * visits the chunks in an order drawn from the seed; lines keep their order
 * inside a chunk.  It does not parse lines (the trainer does) and does not
 * read v1 (binary) sets.
 *
 * Memory: one chunk (at most AAS_STORE_DATASET_CHUNK_MAX bytes) plus the
 * chunk order (8 bytes a chunk).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source_int.h"

/* 16 TiB of 1 MiB chunks; bounds the order array (128 MiB at most). */
#define AAS_SRC_DS_MAX_CHUNKS ((int64_t)1 << 24)

typedef struct {
    aas_src_t base;
    aas_store_t *st;             /* borrowed */
    char set[AAS_ID_MAX + 1];
    aas_store_dataset_info_t info;
    int has_header;              /* CSV with a header line (in chunk 0) */
    int64_t *order;              /* chunk visiting order of this pass */
    int64_t next;                /* index into order of the next chunk to load */
    char *chunk;                 /* the current chunk, or NULL */
    size_t len, pos;
    int64_t chunk_index;         /* which chunk is loaded */
    int header_pending;          /* chunk 0 loaded, its header not yet skipped */
} aas_src_ds_t;

/* splitmix64: the seed's stream for the chunk order. */
static uint64_t aas_src_ds_mix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static aas_err_t aas_src_ds_rewind(aas_src_t *s, uint64_t seed, char *errstr,
                                   size_t errstr_size) {
    (void)errstr, (void)errstr_size;
    aas_src_ds_t *d = (aas_src_ds_t *)s;
    int64_t n = d->info.chunks;
    for (int64_t i = 0; i < n; i++) d->order[i] = i;
    if (seed != 0) { /* Fisher-Yates */
        uint64_t state = seed;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(aas_src_ds_mix(&state) % (uint64_t)(i + 1));
            int64_t t = d->order[i];
            d->order[i] = d->order[j];
            d->order[j] = t;
        }
    }
    free(d->chunk);
    d->chunk = NULL;
    d->len = d->pos = 0;
    d->next = 0;
    d->chunk_index = -1;
    d->header_pending = 0;
    return AAS_ERR_OK;
}

static aas_err_t aas_src_ds_next(aas_src_t *s, const char **line, size_t *len, int *eof,
                                 char *errstr, size_t errstr_size) {
    aas_src_ds_t *d = (aas_src_ds_t *)s;
    for (;;) {
        if (d->chunk && aas_src_cut_line(d->chunk, d->len, &d->pos, line, len)) {
            if (d->header_pending) {
                /* The header is chunk 0's first line that is neither blank
                 * nor a '#' comment (the uploader's rule). */
                size_t k = 0;
                while (k < *len && ((*line)[k] == ' ' || (*line)[k] == '\t')) k++;
                if (k < *len && (*line)[k] != '#') {
                    d->header_pending = 0;
                    continue;
                }
            }
            return AAS_ERR_OK;
        }
        free(d->chunk);
        d->chunk = NULL;
        d->len = d->pos = 0;
        if (d->next >= d->info.chunks) {
            *line = NULL;
            *len = 0;
            *eof = 1;
            return AAS_ERR_OK;
        }
        int64_t i = d->order[d->next];
        char *buf;
        size_t n;
        /* On failure nothing moves: calling again retries this chunk. */
        aas_err_t err = aas_store_dataset_chunk(d->st, d->set, &d->info, i, &buf, &n, errstr,
                                                errstr_size);
        if (err) return err;
        d->chunk = buf;
        d->len = n;
        d->chunk_index = i;
        d->header_pending = d->has_header && i == 0;
        d->next++;
    }
}

static size_t aas_src_ds_footprint(const aas_src_t *s) {
    const aas_src_ds_t *d = (const aas_src_ds_t *)s;
    return sizeof(*d) + (size_t)d->info.chunks * sizeof(int64_t) + (d->chunk ? d->len : 0);
}

static void aas_src_ds_destroy(aas_src_t *s) {
    aas_src_ds_t *d = (aas_src_ds_t *)s;
    free(d->chunk);
    free(d->order);
    free(d);
}

static const aas_src_ops_t aas_src_ds_ops = {aas_src_ds_rewind, aas_src_ds_next,
                                             aas_src_ds_footprint, aas_src_ds_destroy};

/* What the source needs from the meta: type, rows, header; checked
 * against the hash's own counts. */
static aas_err_t aas_src_ds_meta(aas_src_ds_t *d, const char *text, char *errstr,
                                 size_t errstr_size) {
    json_error_t jerr;
    json_t *m = json_loads(text, 0, &jerr);
    const char *type = json_string_value(json_object_get(m, "type"));
    json_t *rows = json_object_get(m, "rows");
    json_t *bytes = json_object_get(m, "bytes");
    json_t *chunks = json_object_get(m, "chunks");
    json_t *header = json_object_get(m, "header");
    aas_err_t err = AAS_ERR_OK;
    if (!json_is_object(m) || !type || (strcmp(type, "tsv") && strcmp(type, "csv")) ||
        !json_is_integer(rows) || json_integer_value(rows) < 0 || !json_is_integer(bytes) ||
        (uint64_t)json_integer_value(bytes) != d->info.bytes || !json_is_integer(chunks) ||
        json_integer_value(chunks) != d->info.chunks ||
        (header && !json_is_null(header) && !json_is_array(header)))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                          "data set %s: meta is malformed or does not match the set "
                          "(type, rows, bytes, chunks, header)", d->set);
    else {
        d->base.info.format = !strcmp(type, "tsv") ? AAS_SRC_TSV : AAS_SRC_CSV;
        d->base.info.rows = json_integer_value(rows);
        d->base.info.bytes = d->info.bytes;
        d->has_header = d->base.info.format == AAS_SRC_CSV && json_is_array(header);
    }
    json_decref(m);
    return err;
}

aas_err_t aas_src_open_dataset(aas_store_t *st, const char *name, aas_src_t **out,
                               char *errstr, size_t errstr_size) {
    if (!st || !name || !aas_id_valid(name))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "invalid data set name (want [A-Za-z0-9_.-]{1,%d})", AAS_ID_MAX);
    char *meta = NULL;
    aas_store_dataset_info_t info;
    aas_err_t err = aas_store_dataset_meta(st, name, &meta, &info, errstr, errstr_size);
    if (err) return err;
    if (info.version != 2) {
        free(meta);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "data set %s is format aas.dataset.v1 (binary rows), not "
                           "aas.dataset.v2 (text lines)", name);
    }
    if (info.chunks > AAS_SRC_DS_MAX_CHUNKS) {
        free(meta);
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "data set %s has %lld chunks, more than %lld", name,
                           (long long)info.chunks, (long long)AAS_SRC_DS_MAX_CHUNKS);
    }
    aas_src_ds_t *d = calloc(1, sizeof(*d));
    if (d) d->order = malloc((size_t)(info.chunks ? info.chunks : 1) * sizeof(int64_t));
    if (!d || !d->order) {
        free(meta);
        if (d) free(d);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    d->base.ops = &aas_src_ds_ops;
    d->st = st;
    d->info = info;
    snprintf(d->set, sizeof(d->set), "%s", name);
    snprintf(d->base.name, sizeof(d->base.name), "data set %s", name);
    d->base.info.name = d->base.name;
    err = aas_src_ds_meta(d, meta, errstr, errstr_size);
    free(meta);
    if (!err) err = aas_src_ds_rewind(&d->base, 0, errstr, errstr_size);
    if (err) {
        aas_src_ds_destroy(&d->base);
        return err;
    }
    *out = &d->base;
    return AAS_ERR_OK;
}
