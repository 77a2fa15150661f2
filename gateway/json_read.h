/*
 * json_read.h - the gateway's strict JSON reader for request bodies
 * (RFC 8259): one document in, a light read-only tree out.  An array that
 * holds only numbers is stored packed (n doubles in one buffer) instead of
 * a node per element, which is what a request body mostly is.  Numbers are
 * converted exactly as strtod converts them (correctly rounded) and
 * independently of the locale.  It does not write JSON (the gateway's
 * responses use jansson) and it keeps no state between calls.
 *
 * Refused, as jansson's json_loadb(JSON_REJECT_DUPLICATES) refuses them:
 * invalid UTF-8, NUL (raw or \u0000) in a string, lone surrogates,
 * duplicate keys in one object, integers (no fraction or exponent)
 * outside int64, numbers outside the double range, anything after the
 * value.  Nesting deeper than AAS_GW_JR_MAX_DEPTH is refused as well.
 */
#ifndef AAS_GW_JSON_READ_H
#define AAS_GW_JSON_READ_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/** Arrays and objects nested deeper than this are refused (the root is 1). */
#define AAS_GW_JR_MAX_DEPTH 64

typedef enum {
    AAS_GW_JR_NULL,
    AAS_GW_JR_FALSE,
    AAS_GW_JR_TRUE,
    AAS_GW_JR_NUMBER,
    AAS_GW_JR_STRING,
    AAS_GW_JR_ARRAY,
    AAS_GW_JR_OBJECT
} aas_gw_jr_type_t;

typedef struct aas_gw_jr_value aas_gw_jr_value_t;

/**
 * One value of a document; it lives as long as its document.  An ARRAY is
 * either packed (every element a number: u.nums) or not (u.items, n
 * values; an empty array is never packed).
 */
struct aas_gw_jr_value {
    aas_gw_jr_type_t type;
    uint8_t packed; /* ARRAY: the elements are the n numbers in u.nums */
    uint8_t is_int; /* NUMBER: written as an integer (no fraction or
                       exponent), i holds it exactly; packed ARRAY: every
                       element was (each then fits a double exactly) */
    size_t n;        /* STRING: bytes; ARRAY: elements; OBJECT: members */
    const char *key; /* a member of an OBJECT: its key, else NULL */
    union {
        double num;                     /* NUMBER */
        const char *str;                /* STRING: NUL-terminated UTF-8 */
        const aas_gw_jr_value_t *items; /* ARRAY (not packed), OBJECT */
        const double *nums;             /* packed ARRAY */
    } u;
    int64_t i; /* NUMBER with is_int */
};

/** A parsed document: owns every value and string in it. */
typedef struct aas_gw_jr_doc aas_gw_jr_doc_t;

/**
 * @brief Parse one JSON text (any value at the top, RFC 8259).
 * @param text len bytes, need not be NUL-terminated; may be NULL if len 0.
 * @param out an owned document (aas_gw_jr_doc_destroy), written on success.
 * @return AAS_ERR_OK; AAS_ERR_INVAL with "malformed JSON at line L column
 *         C: <what>" in errstr; AAS_ERR_NOMEM.  Thread-safe (no shared
 *         state).  Memory grows with what is read, never ahead of it: at
 *         most about 50 bytes an input byte (an array of empty arrays),
 *         under 2 for a body of typical numbers.
 */
aas_err_t aas_gw_jr_parse(const char *text, size_t len, aas_gw_jr_doc_t **out, char *errstr,
                          size_t errstr_size);

/** @brief Free a document and all its values; NULL is a no-op. */
void aas_gw_jr_doc_destroy(aas_gw_jr_doc_t *doc);

/** @brief The document's top value (borrowed: valid until _destroy). */
const aas_gw_jr_value_t *aas_gw_jr_root(const aas_gw_jr_doc_t *doc);

/**
 * @brief The member key of an OBJECT, else NULL (also when obj is NULL or
 *        not an object).  A linear search: request objects are small.
 */
const aas_gw_jr_value_t *aas_gw_jr_get(const aas_gw_jr_value_t *obj, const char *key);

/**
 * @brief Element i of an ARRAY, else NULL (obj NULL, not an array, i out of
 *        range).  Of a packed array the element is written into *tmp (a
 *        NUMBER, is_int as the array's) and tmp is returned: it stays
 *        valid as long as *tmp.
 */
const aas_gw_jr_value_t *aas_gw_jr_at(const aas_gw_jr_value_t *arr, size_t i,
                                      aas_gw_jr_value_t *tmp);

/**
 * @brief One JSON number, all of s[0..len), as strtod converts it in the C
 *        locale (the document parser uses the same conversion).  Unlike the
 *        document parser it takes integers outside int64 (as doubles).
 * @return AAS_ERR_OK; AAS_ERR_INVAL when s is not exactly one number of
 *         RFC 8259's grammar or is outside the double range.
 */
aas_err_t aas_gw_jr_number(const char *s, size_t len, double *out);

#endif
