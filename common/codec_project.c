/*
 * codec_project.c - the reader schema projected onto an older writer
 * schema (aas_codec_schema_project, codec_int.h): for each record both
 * define, the reader fields the writer lacks are dropped, each of which
 * must have a default, so that Avro C 1.11's resolver (which does not
 * apply defaults) accepts the pair.  Works on the JSON texts with jansson,
 * using codec_pcf.c's name rules; it does not parse with Avro C or apply
 * the defaults (codec.c and codec_decode.c do).  Pure: thread-safe.
 */
#include "codec_int.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Record definitions of one schema tree, by full name. */
typedef struct {
    aas_codec_names_t names;
    json_t **recs; /* parallel to names.v */
    size_t cap;
} aas_recs_t;

static void aas_recs_free(aas_recs_t *r) {
    aas_codec_names_free(&r->names);
    free(r->recs);
    memset(r, 0, sizeof(*r));
}

static json_t *aas_recs_find(const aas_recs_t *r, const char *full) {
    for (size_t i = 0; i < r->names.n; i++)
        if (strcmp(r->names.v[i], full) == 0) return r->recs[i];
    return NULL;
}

typedef struct {
    const aas_recs_t *writer; /* NULL while collecting the writer's records */
    aas_recs_t *collect;      /* non-NULL while collecting */
    int dropped;
    char *errstr;
    size_t errstr_size;
} aas_proj_t;

static int aas_fields_have(json_t *fields, const char *name) {
    for (size_t i = 0; i < json_array_size(fields); i++) {
        const char *n =
            json_string_value(json_object_get(json_array_get(fields, i), "name"));
        if (n && strcmp(n, name) == 0) return 1;
    }
    return 0;
}

static aas_err_t aas_proj_record(aas_proj_t *p, json_t *node, char *full,
                                 const char *inner_ns, int depth);

/* Walk every type definition under node.  In collect mode record each record
 * definition; in project mode drop reader fields the writer lacks. */
static aas_err_t aas_proj_walk(aas_proj_t *p, json_t *node, const char *ns,
                               int depth) {
    aas_err_t err = AAS_ERR_OK;
    if (depth > AAS_CODEC_MAX_DEPTH)
        return aas_err_set(p->errstr, p->errstr_size, AAS_ERR_INVAL,
                           "schema: nested deeper than %d",
                           AAS_CODEC_MAX_DEPTH);
    if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node); i++)
            if ((err = aas_proj_walk(p, json_array_get(node, i), ns, depth + 1)))
                return err;
        return AAS_ERR_OK;
    }
    if (!json_is_object(node)) return AAS_ERR_OK; /* a name: nothing inside */
    const char *type = json_string_value(json_object_get(node, "type"));
    if (!type) return AAS_ERR_OK;
    if (strcmp(type, "array") == 0)
        return aas_proj_walk(p, json_object_get(node, "items"), ns, depth + 1);
    if (strcmp(type, "map") == 0)
        return aas_proj_walk(p, json_object_get(node, "values"), ns, depth + 1);
    if (strcmp(type, "record") != 0 && strcmp(type, "error") != 0)
        return AAS_ERR_OK;

    char *full = aas_codec_def_fullname(node, ns, p->errstr, p->errstr_size, &err);
    if (!full) return err;
    char *inner_ns = aas_codec_name_space(full);
    if (!inner_ns) {
        free(full);
        return aas_err_set(p->errstr, p->errstr_size, AAS_ERR_NOMEM, "oom");
    }
    err = aas_proj_record(p, node, full, inner_ns, depth);
    free(inner_ns);
    return err;
}

/* Takes ownership of full. */
static aas_err_t aas_proj_record(aas_proj_t *p, json_t *node, char *full,
                                 const char *inner_ns, int depth) {
    aas_err_t err;
    json_t *fields = json_object_get(node, "fields");
    if (!json_is_array(fields)) {
        err = aas_err_set(p->errstr, p->errstr_size, AAS_ERR_INVAL,
                          "schema: record %s without \"fields\"", full);
        free(full);
        return err;
    }
    if (p->collect) {
        aas_recs_t *r = p->collect;
        if (r->names.n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            json_t **nr = realloc(r->recs, cap * sizeof(*nr));
            if (!nr) {
                free(full);
                return aas_err_set(p->errstr, p->errstr_size, AAS_ERR_NOMEM,
                                   "oom");
            }
            r->recs = nr;
            r->cap = cap;
        }
        r->recs[r->names.n] = node;
        if ((err = aas_codec_names_add(&r->names, full)))
            return aas_err_set(p->errstr, p->errstr_size, err, "oom");
        full = NULL;
    } else {
        json_t *wrec = aas_recs_find(p->writer, full);
        json_t *wfields = wrec ? json_object_get(wrec, "fields") : NULL;
        for (size_t i = 0; wfields && i < json_array_size(fields);) {
            json_t *f = json_array_get(fields, i);
            const char *fname = json_string_value(json_object_get(f, "name"));
            if (!fname || aas_fields_have(wfields, fname)) {
                i++;
                continue;
            }
            if (!json_object_get(f, "default")) {
                err = aas_err_set(p->errstr, p->errstr_size, AAS_ERR_INVAL,
                                  "reader field %s.%s has no default and the "
                                  "writer schema lacks it", full, fname);
                free(full);
                return err;
            }
            json_array_remove(fields, i);
            p->dropped++;
        }
        free(full);
    }
    for (size_t i = 0; i < json_array_size(fields); i++)
        if ((err = aas_proj_walk(p,
                                 json_object_get(json_array_get(fields, i), "type"),
                                 inner_ns, depth + 1)))
            return err;
    return AAS_ERR_OK;
}

aas_err_t aas_codec_schema_project(const char *reader_json,
                                   const char *writer_json, char **out,
                                   int *dropped_out, char *errstr,
                                   size_t errstr_size) {
    json_error_t jerr;
    aas_err_t err;
    aas_recs_t wrecs;
    memset(&wrecs, 0, sizeof(wrecs));
    json_t *reader = json_loads(reader_json, JSON_DECODE_ANY, &jerr);
    json_t *writer = json_loads(writer_json, JSON_DECODE_ANY, &jerr);
    char *text = NULL;
    if (!reader || !writer) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "schema JSON, line %d column %d: %s", jerr.line,
                          jerr.column, jerr.text);
        goto done;
    }
    aas_proj_t p = {NULL, &wrecs, 0, errstr, errstr_size};
    if ((err = aas_proj_walk(&p, writer, "", 0))) goto done;
    p.collect = NULL;
    p.writer = &wrecs;
    if ((err = aas_proj_walk(&p, reader, "", 0))) goto done;

    /* Copy into our own malloc'ed buffer: jansson may use other allocators. */
    size_t n = json_dumpb(reader, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    text = n ? malloc(n + 1) : NULL;
    if (!text || json_dumpb(reader, text, n, JSON_COMPACT | JSON_ENCODE_ANY) != n) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                          "projecting schema: out of memory");
        free(text);
        text = NULL;
        goto done;
    }
    text[n] = '\0';
    *out = text;
    if (dropped_out) *dropped_out = p.dropped;
    err = AAS_ERR_OK;
done:
    json_decref(reader);
    json_decref(writer);
    aas_recs_free(&wrecs);
    return err;
}
