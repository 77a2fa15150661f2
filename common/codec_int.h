/*
 * codec_int.h - internals shared by codec.c and codec_pcf.c; not installed,
 * not for other modules.
 *
 * codec_pcf.c works on schema JSON texts with jansson (canonical form,
 * fingerprints, projections); codec.c does everything that touches Avro C
 * and the wire.  Both are pure functions of their arguments: thread-safe.
 */
#ifndef AAS_CODEC_INT_H
#define AAS_CODEC_INT_H

#include "err.h"

/*
 * Nesting limit for schema JSON and for encoded values.  Our schemas nest 5
 * deep; the limit keeps a hostile or broken input from exhausting the stack.
 */
#define AAS_CODEC_MAX_DEPTH 32

/**
 * @brief Project the reader schema onto what a writer schema can supply.
 *
 * Avro C 1.11's resolvers do not implement field defaults: a reader field
 * missing from the writer is an error ("Reader field %s doesn't appear in
 * writer").  For each record of reader_json that the writer also defines
 * (same full name), this drops the reader fields the writer lacks; each such
 * field must have a "default" in the reader schema, otherwise the writer
 * schema cannot be resolved and AAS_ERR_INVAL is returned.  The decoder then
 * resolves writer -> projection with Avro C and applies the defaults itself
 * (codec.c treats an absent field as its schema default).
 *
 * @param out malloc'ed compact JSON on success (caller frees).
 * @param dropped_out number of fields dropped (may be NULL).
 */
aas_err_t aas_codec_schema_project(const char *reader_json,
                                   const char *writer_json, char **out,
                                   int *dropped_out, char *errstr,
                                   size_t errstr_size);

#endif
