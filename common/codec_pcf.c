/*
 * codec_pcf.c - schema JSON work for the codec: Parsing Canonical Form,
 * CRC-64-AVRO fingerprints, and the schema-name rules (full names,
 * namespaces) that codec_project.c shares through codec_int.h.
 *
 * The canonical form follows the Avro specification, "Parsing Canonical Form
 * for Schemas" (PRIMITIVES, FULLNAMES, STRIP, ORDER, STRINGS, INTEGERS,
 * WHITESPACE).  It is computed from the JSON text with jansson, independently
 * of Avro C's own schema writer, so a peer in any language can reproduce the
 * fingerprint from the .avsc file alone.  A named type is written in full at
 * its first occurrence and as its full name afterwards.
 *
 * This file does not validate that a schema is otherwise legal Avro (names'
 * character set, union rules): Avro C's parser does that in codec.c.
 * All functions are pure: thread-safe.
 */
#include "codec.h"
#include "codec_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* ---- CRC-64-AVRO --------------------------------------------------------- */

/* The spec's EMPTY fingerprint, which is also the Rabin polynomial. */
#define AAS_CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ULL

uint64_t aas_codec_crc64_avro(const void *data, size_t len) {
    /* Bitwise form of the spec's table-driven loop: (fp >> 8) ^ T[(fp ^ b) &
     * 0xff] equals eight single-bit steps on fp ^ b.  No table, so no
     * global state; fingerprints are computed a handful of times per
     * process. */
    const unsigned char *p = data;
    uint64_t fp = AAS_CRC64_AVRO_EMPTY;
    for (size_t i = 0; i < len; i++) {
        fp ^= p[i];
        for (int k = 0; k < 8; k++)
            fp = (fp >> 1) ^ (AAS_CRC64_AVRO_EMPTY & (0 - (fp & 1)));
    }
    return fp;
}

/* ---- growable string ----------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len;
    size_t cap;
    int oom;
} aas_sbuf_t;

static void aas_sbuf_putn(aas_sbuf_t *sb, const char *s, size_t n) {
    if (sb->oom) return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < sb->len + n + 1) cap *= 2;
        char *nb = realloc(sb->buf, cap);
        if (!nb) {
            sb->oom = 1;
            return;
        }
        sb->buf = nb;
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

static void aas_sbuf_puts(aas_sbuf_t *sb, const char *s) {
    aas_sbuf_putn(sb, s, strlen(s));
}

/* A JSON string literal.  [STRINGS]: no escapes except those JSON requires;
 * non-ASCII stays raw UTF-8. */
static void aas_sbuf_json_str(aas_sbuf_t *sb, const char *s) {
    aas_sbuf_putn(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': aas_sbuf_putn(sb, "\\\"", 2); break;
        case '\\': aas_sbuf_putn(sb, "\\\\", 2); break;
        case '\b': aas_sbuf_putn(sb, "\\b", 2); break;
        case '\f': aas_sbuf_putn(sb, "\\f", 2); break;
        case '\n': aas_sbuf_putn(sb, "\\n", 2); break;
        case '\r': aas_sbuf_putn(sb, "\\r", 2); break;
        case '\t': aas_sbuf_putn(sb, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                aas_sbuf_puts(sb, esc);
            } else {
                aas_sbuf_putn(sb, (const char *)p, 1);
            }
        }
    }
    aas_sbuf_putn(sb, "\"", 1);
}

/* ---- names --------------------------------------------------------------- */

void aas_codec_names_free(aas_codec_names_t *names) {
    for (size_t i = 0; i < names->n; i++) free(names->v[i]);
    free(names->v);
    memset(names, 0, sizeof(*names));
}

static int aas_names_has(const aas_codec_names_t *names, const char *full) {
    for (size_t i = 0; i < names->n; i++)
        if (strcmp(names->v[i], full) == 0) return 1;
    return 0;
}

/* Takes ownership of full. */
aas_err_t aas_codec_names_add(aas_codec_names_t *names, char *full) {
    if (names->n == names->cap) {
        size_t cap = names->cap ? names->cap * 2 : 16;
        char **nv = realloc(names->v, cap * sizeof(*nv));
        if (!nv) {
            free(full);
            return AAS_ERR_NOMEM;
        }
        names->v = nv;
        names->cap = cap;
    }
    names->v[names->n++] = full;
    return AAS_ERR_OK;
}

static int aas_is_primitive(const char *t) {
    static const char *prims[] = {"null", "boolean", "int",    "long",
                                  "float", "double", "bytes", "string"};
    for (size_t i = 0; i < sizeof(prims) / sizeof(prims[0]); i++)
        if (strcmp(t, prims[i]) == 0) return 1;
    return 0;
}

static int aas_is_named_type(const char *t) {
    return strcmp(t, "record") == 0 || strcmp(t, "error") == 0 ||
           strcmp(t, "enum") == 0 || strcmp(t, "fixed") == 0;
}

/* "a.b" + "C" -> "a.b.C"; "" + "C" -> "C".  malloc'ed or NULL. */
static char *aas_join_name(const char *ns, const char *name) {
    size_t nl = strlen(ns), ml = strlen(name);
    char *s = malloc(nl + ml + 2);
    if (!s) return NULL;
    if (nl) {
        memcpy(s, ns, nl);
        s[nl] = '.';
        memcpy(s + nl + 1, name, ml + 1);
    } else {
        memcpy(s, name, ml + 1);
    }
    return s;
}

/* The namespace part of a full name ("" if none), malloc'ed or NULL. */
char *aas_codec_name_space(const char *full) {
    const char *dot = strrchr(full, '.');
    size_t n = dot ? (size_t)(dot - full) : 0;
    char *ns = malloc(n + 1);
    if (!ns) return NULL;
    memcpy(ns, full, n);
    ns[n] = '\0';
    return ns;
}

/* [FULLNAMES] The full name of a named-type definition `obj` appearing in
 * namespace `ns`: a dotted name is already full, else the "namespace"
 * attribute, else the enclosing namespace.  malloc'ed or NULL with errstr. */
char *aas_codec_def_fullname(json_t *obj, const char *ns, char *errstr,
                             size_t errstr_size, aas_err_t *err) {
    const char *name = json_string_value(json_object_get(obj, "name"));
    if (!name || !*name) {
        *err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "schema: named type without a \"name\"");
        return NULL;
    }
    char *full;
    if (strchr(name, '.')) {
        full = strdup(name);
    } else {
        json_t *jns = json_object_get(obj, "namespace");
        if (jns && !json_is_string(jns) && !json_is_null(jns)) {
            *err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "schema: \"namespace\" of %s is not a string",
                               name);
            return NULL;
        }
        full = aas_join_name(json_is_string(jns) ? json_string_value(jns) : ns,
                             name);
    }
    if (!full) *err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "oom");
    return full;
}

/* Resolve a type reference `ref` seen in namespace `ns` to the full name of
 * a type defined earlier.  Returns a pointer into names, or NULL. */
static const char *aas_resolve_ref(const aas_codec_names_t *names, const char *ns,
                                   const char *ref) {
    if (!strchr(ref, '.') && *ns) {
        for (size_t i = 0; i < names->n; i++) {
            const char *f = names->v[i];
            size_t nl = strlen(ns);
            if (strncmp(f, ns, nl) == 0 && f[nl] == '.' &&
                strcmp(f + nl + 1, ref) == 0)
                return f;
        }
    }
    for (size_t i = 0; i < names->n; i++)
        if (strcmp(names->v[i], ref) == 0) return names->v[i];
    return NULL;
}

/* ---- Parsing Canonical Form ---------------------------------------------- */

typedef struct {
    aas_sbuf_t out;
    aas_codec_names_t names;
    char *errstr;
    size_t errstr_size;
} aas_pcf_t;

static aas_err_t aas_pcf_emit(aas_pcf_t *c, json_t *node, const char *ns,
                              int depth);

static aas_err_t aas_pcf_emit_ref(aas_pcf_t *c, const char *ref,
                                  const char *ns) {
    if (aas_is_primitive(ref)) {
        aas_sbuf_json_str(&c->out, ref);
        return AAS_ERR_OK;
    }
    const char *full = aas_resolve_ref(&c->names, ns, ref);
    if (!full)
        return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                           "schema: unknown type \"%s\"", ref);
    aas_sbuf_json_str(&c->out, full);
    return AAS_ERR_OK;
}

/* [INTEGERS] a fixed's size: JSON integer or digit string, no leading 0s. */
static aas_err_t aas_pcf_size(aas_pcf_t *c, json_t *jsize) {
    char num[32];
    if (json_is_integer(jsize) && json_integer_value(jsize) >= 0) {
        snprintf(num, sizeof(num), "%lld",
                 (long long)json_integer_value(jsize));
    } else if (json_is_string(jsize)) {
        const char *s = json_string_value(jsize);
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (!*s || *end || errno || *s == '-' || *s == '+')
            return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                               "schema: bad fixed size \"%s\"", s);
        snprintf(num, sizeof(num), "%llu", v);
    } else {
        return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                           "schema: fixed without a valid \"size\"");
    }
    aas_sbuf_puts(&c->out, num);
    return AAS_ERR_OK;
}

static aas_err_t aas_pcf_emit_body(aas_pcf_t *c, json_t *node,
                                   const char *type, const char *full,
                                   const char *inner_ns, int depth);

static aas_err_t aas_pcf_emit_named(aas_pcf_t *c, json_t *node,
                                    const char *type, const char *ns,
                                    int depth) {
    aas_err_t err = AAS_ERR_OK;
    char *full = aas_codec_def_fullname(node, ns, c->errstr, c->errstr_size, &err);
    if (!full) return err;
    if (aas_names_has(&c->names, full)) {
        err = aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                          "schema: type %s defined twice", full);
        free(full);
        return err;
    }
    /* Register before the body so recursive references resolve. */
    if ((err = aas_codec_names_add(&c->names, full)) != AAS_ERR_OK)
        return aas_err_set(c->errstr, c->errstr_size, err, "oom");
    char *inner_ns = aas_codec_name_space(full);
    if (!inner_ns)
        return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_NOMEM, "oom");
    err = aas_pcf_emit_body(c, node, type, full, inner_ns, depth);
    free(inner_ns);
    return err;
}

static aas_err_t aas_pcf_emit_body(aas_pcf_t *c, json_t *node,
                                   const char *type, const char *full,
                                   const char *inner_ns, int depth) {
    aas_err_t err;

    /* [ORDER] name, type, fields, symbols, items, values, size. */
    aas_sbuf_puts(&c->out, "{\"name\":");
    aas_sbuf_json_str(&c->out, full);
    aas_sbuf_puts(&c->out, ",\"type\":");
    aas_sbuf_json_str(&c->out, type);
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0) {
        json_t *fields = json_object_get(node, "fields");
        if (!json_is_array(fields))
            return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                               "schema: record %s without \"fields\"", full);
        aas_sbuf_puts(&c->out, ",\"fields\":[");
        for (size_t i = 0; i < json_array_size(fields); i++) {
            json_t *f = json_array_get(fields, i);
            const char *fname = json_string_value(json_object_get(f, "name"));
            json_t *ftype = json_object_get(f, "type");
            if (!fname || !ftype)
                return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                                   "schema: field %zu of %s needs name and "
                                   "type", i, full);
            aas_sbuf_puts(&c->out, i ? ",{\"name\":" : "{\"name\":");
            aas_sbuf_json_str(&c->out, fname);
            aas_sbuf_puts(&c->out, ",\"type\":");
            if ((err = aas_pcf_emit(c, ftype, inner_ns, depth + 1)))
                return err;
            aas_sbuf_puts(&c->out, "}");
        }
        aas_sbuf_puts(&c->out, "]");
    } else if (strcmp(type, "enum") == 0) {
        json_t *syms = json_object_get(node, "symbols");
        if (!json_is_array(syms))
            return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                               "schema: enum %s without \"symbols\"", full);
        aas_sbuf_puts(&c->out, ",\"symbols\":[");
        for (size_t i = 0; i < json_array_size(syms); i++) {
            const char *s = json_string_value(json_array_get(syms, i));
            if (!s)
                return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                                   "schema: enum %s: symbol %zu is not a "
                                   "string", full, i);
            if (i) aas_sbuf_puts(&c->out, ",");
            aas_sbuf_json_str(&c->out, s);
        }
        aas_sbuf_puts(&c->out, "]");
    } else { /* fixed */
        aas_sbuf_puts(&c->out, ",\"size\":");
        if ((err = aas_pcf_size(c, json_object_get(node, "size")))) return err;
    }
    aas_sbuf_puts(&c->out, "}");
    return AAS_ERR_OK;
}

static aas_err_t aas_pcf_emit(aas_pcf_t *c, json_t *node, const char *ns,
                              int depth) {
    aas_err_t err;
    if (depth > AAS_CODEC_MAX_DEPTH)
        return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                           "schema: nested deeper than %d",
                           AAS_CODEC_MAX_DEPTH);
    if (json_is_string(node)) return aas_pcf_emit_ref(c, json_string_value(node), ns);
    if (json_is_array(node)) { /* union */
        aas_sbuf_puts(&c->out, "[");
        for (size_t i = 0; i < json_array_size(node); i++) {
            if (i) aas_sbuf_puts(&c->out, ",");
            if ((err = aas_pcf_emit(c, json_array_get(node, i), ns, depth + 1)))
                return err;
        }
        aas_sbuf_puts(&c->out, "]");
        return AAS_ERR_OK;
    }
    if (!json_is_object(node))
        return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                           "schema: a type must be a string, array or object");
    const char *type = json_string_value(json_object_get(node, "type"));
    if (!type)
        return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                           "schema: object without a string \"type\"");
    /* [PRIMITIVES] {"type":"int", ...} -> "int"; [STRIP] drops the rest
     * (logicalType, doc, aliases, default, order, ...). */
    if (aas_is_named_type(type))
        return aas_pcf_emit_named(c, node, type, ns, depth);
    if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
        int is_array = type[0] == 'a';
        json_t *child = json_object_get(node, is_array ? "items" : "values");
        if (!child)
            return aas_err_set(c->errstr, c->errstr_size, AAS_ERR_INVAL,
                               "schema: %s without \"%s\"", type,
                               is_array ? "items" : "values");
        aas_sbuf_puts(&c->out, is_array ? "{\"type\":\"array\",\"items\":"
                                        : "{\"type\":\"map\",\"values\":");
        if ((err = aas_pcf_emit(c, child, ns, depth + 1))) return err;
        aas_sbuf_puts(&c->out, "}");
        return AAS_ERR_OK;
    }
    /* A primitive, or {"type": "SomeNamedType"} referring to one. */
    return aas_pcf_emit_ref(c, type, ns);
}

aas_err_t aas_codec_canonical_form(const char *schema_json, char **out,
                                   char *errstr, size_t errstr_size) {
    if (!schema_json || !out)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "canonical form: NULL argument");
    json_error_t jerr;
    /* JSON_DECODE_ANY: a schema may be a bare string such as "int". */
    json_t *root = json_loads(schema_json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                              &jerr);
    if (!root)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "schema JSON, line %d column %d: %s", jerr.line,
                           jerr.column, jerr.text);
    aas_pcf_t c;
    memset(&c, 0, sizeof(c));
    c.errstr = errstr;
    c.errstr_size = errstr_size;
    aas_err_t err = aas_pcf_emit(&c, root, "", 0);
    json_decref(root);
    aas_codec_names_free(&c.names);
    if (err == AAS_ERR_OK && c.out.oom)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                          "canonical form: out of memory");
    if (err != AAS_ERR_OK) {
        free(c.out.buf);
        return err;
    }
    *out = c.out.buf;
    return AAS_ERR_OK;
}
