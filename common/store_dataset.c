/*
 * store_dataset.c - training data sets uploaded to Redis in chunks, so a
 * training job can name its data instead of carrying it (docs/redis.md,
 * docs/training.md).  The bytes are opaque here (the uploader cuts v2
 * chunks at line ends); the meta text (JSON) is the uploader's and the
 * reader's business.  This file checks sizes, checksums and upload ids.
 *
 * Key <prefix>dataset:{<name>} hash (store.h): v1 meta, bytes, chunks,
 * c:<i> with meta written last; v2 the same plus k:<i> (chunk CRCs), crc64,
 * format, upload, built under a temporary key and RENAMEd into place.
 * <prefix>datasets is the set of names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"
#include "store_int.h"

#define AAS_DATASET_V2 "aas.dataset.v2"
/* A crashed uploader's temporary key goes away on its own after this. */
#define AAS_DATASET_UP_TTL_S 86400

static aas_err_t aas_store_dataset_key(aas_store_t *st, const char *name, char *key,
                                       char *errstr, size_t errstr_size) {
    if (!aas_id_valid(name))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "invalid data set name (want [A-Za-z0-9_.-]{1,%d})",
                           AAS_ID_MAX);
    if (aas_store_key(st, key, AAS_STORE_KEY_MAX, "dataset", name))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "data set name too long");
    return AAS_ERR_OK;
}

static aas_err_t aas_store_dataset_simple(aas_store_t *st, aas_store_args_t *a,
                                          const char *what, char *errstr,
                                          size_t errstr_size) {
    redisReply *r;
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, what, a, &r, errstr,
                                  errstr_size);
    if (!err) freeReplyObject(r);
    return err;
}

/* SADD or SREM name to/from <prefix>datasets. */
static aas_err_t aas_store_dataset_names_cmd(aas_store_t *st, const char *cmd,
                                             const char *name, char *errstr,
                                             size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    if (aas_store_key(st, key, sizeof(key), "datasets", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "prefix too long");
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, cmd);
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, name);
    return aas_store_dataset_simple(st, &a, cmd, errstr, errstr_size);
}

static aas_err_t aas_store_dataset_sadd(aas_store_t *st, const char *name, char *errstr,
                                        size_t errstr_size) {
    return aas_store_dataset_names_cmd(st, "SADD", name, errstr, errstr_size);
}

aas_err_t aas_store_dataset_put(aas_store_t *st, const char *name,
                                const char *meta_json, const void *data,
                                size_t len, size_t chunk_bytes, char *errstr,
                                size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_dataset_key(st, name, key, errstr, errstr_size);
    if (err) return err;
    if (chunk_bytes == 0 || chunk_bytes > AAS_STORE_RESULT_MAX || len == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "data set %s: empty, or bad chunk size", name);
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "DEL");
    aas_store_args_add(&a, key);
    if ((err = aas_store_dataset_simple(st, &a, "DEL dataset", errstr, errstr_size)))
        return err;
    size_t chunks = (len + chunk_bytes - 1) / chunk_bytes;
    for (size_t i = 0; i < chunks; i++) {
        char field[32];
        size_t n = i + 1 == chunks ? len - i * chunk_bytes : chunk_bytes;
        snprintf(field, sizeof(field), "c:%zu", i);
        aas_store_args_init(&a);
        aas_store_args_add(&a, "HSET");
        aas_store_args_add(&a, key);
        aas_store_args_add(&a, field);
        aas_store_args_addb(&a, (const char *)data + i * chunk_bytes, n);
        if ((err = aas_store_dataset_simple(st, &a, "HSET dataset chunk", errstr,
                                            errstr_size)))
            return err;
    }
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HSET");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, "bytes");
    aas_store_args_addll(&a, (long long)len);
    aas_store_args_add(&a, "chunks");
    aas_store_args_addll(&a, (long long)chunks);
    aas_store_args_add(&a, "meta");
    aas_store_args_add(&a, meta_json ? meta_json : "{}");
    if ((err = aas_store_dataset_simple(st, &a, "HSET dataset meta", errstr, errstr_size)))
        return err;
    return aas_store_dataset_sadd(st, name, errstr, errstr_size);
}

aas_err_t aas_store_dataset_get(aas_store_t *st, const char *name,
                                size_t max_bytes, char **meta_json,
                                void **data, size_t *len, char *errstr,
                                size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_dataset_key(st, name, key, errstr, errstr_size);
    if (err) return err;
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HMGET");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, "bytes");
    aas_store_args_add(&a, "chunks");
    aas_store_args_add(&a, "meta");
    aas_store_args_add(&a, "format");
    redisReply *r;
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HMGET dataset", &a, &r, errstr,
                             errstr_size)))
        return err;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
        r->element[3]->type == REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "data set %s is format " AAS_DATASET_V2
                           " (text lines), not the v1 binary rows read here", name);
    }
    long long bytes = -1, chunks = -1;
    char *meta = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
        r->element[2]->type == REDIS_REPLY_STRING) {
        bytes = r->element[0]->str ? atoll(r->element[0]->str) : -1;
        chunks = r->element[1]->str ? atoll(r->element[1]->str) : -1;
        meta = aas_store_memdup0(r->element[2]->str, r->element[2]->len);
    }
    int absent = r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
                 r->element[2]->type == REDIS_REPLY_NIL;
    freeReplyObject(r);
    if (absent)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                           "data set %s not found (never uploaded, or deleted)", name);
    if (!meta || bytes <= 0 || chunks <= 0 || chunks > bytes) {
        free(meta);
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "data set %s: malformed record in Redis", name);
    }
    if ((unsigned long long)bytes > max_bytes) {
        free(meta);
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "data set %s has %lld bytes, the limit is %zu", name, bytes,
                           max_bytes);
    }
    char *buf = malloc((size_t)bytes);
    if (!buf) {
        free(meta);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    size_t got = 0;
    for (long long i = 0; i < chunks && !err; i++) {
        char field[32];
        snprintf(field, sizeof(field), "c:%lld", i);
        aas_store_args_init(&a);
        aas_store_args_add(&a, "HGET");
        aas_store_args_add(&a, key);
        aas_store_args_add(&a, field);
        if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HGET dataset chunk", &a, &r,
                                 errstr, errstr_size)))
            break;
        if (r->type != REDIS_REPLY_STRING || r->len > (size_t)bytes - got)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                              "data set %s: chunk %lld missing or too long", name, i);
        else {
            memcpy(buf + got, r->str, r->len);
            got += r->len;
        }
        freeReplyObject(r);
    }
    if (!err && got != (size_t)bytes)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                          "data set %s: %zu of %lld bytes present", name, got, bytes);
    if (err) {
        free(buf);
        free(meta);
        return err;
    }
    *meta_json = meta;
    *data = buf;
    *len = got;
    return AAS_ERR_OK;
}

aas_err_t aas_store_dataset_delete(aas_store_t *st, const char *name,
                                   char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_dataset_key(st, name, key, errstr, errstr_size);
    if (err) return err;
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "DEL");
    aas_store_args_add(&a, key);
    redisReply *r;
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "DEL dataset", &a, &r, errstr,
                             errstr_size)))
        return err;
    /* A resend after a reconnect may find it gone by our own first send:
     * rare, and then "not found" only overstates. */
    int gone = r->type == REDIS_REPLY_INTEGER && r->integer == 0;
    freeReplyObject(r);
    /* The name leaves the list either way (a stale name is cleaned up). */
    if ((err = aas_store_dataset_names_cmd(st, "SREM", name, errstr, errstr_size)))
        return err;
    if (gone)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                           "data set %s not found", name);
    return AAS_ERR_OK;
}

/* ---- v2: streamed uploads ---- */

/* CRC-64-AVRO of A||B from crc(A), crc(B) and |B| (zlib's crc32_combine
 * method, for this CRC: init = the EMPTY value, no final xor):
 *   crc(A||B) = crc(B) ^ Z_|B|(crc(A) ^ EMPTY)
 * where Z_n runs the register over n zero bytes, a linear map computed by
 * squaring the one-zero-bit matrix.  The whole-set checksum costs nothing
 * beyond the per-chunk ones. */
#define AAS_CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ULL

static uint64_t aas_gf2_times(const uint64_t *mat, uint64_t vec) {
    uint64_t sum = 0;
    for (int i = 0; vec; vec >>= 1, i++)
        if (vec & 1) sum ^= mat[i];
    return sum;
}

static void aas_gf2_square(uint64_t *sq, const uint64_t *mat) {
    for (int n = 0; n < 64; n++) sq[n] = aas_gf2_times(mat, mat[n]);
}

static uint64_t aas_crc64_avro_combine(uint64_t crc_a, uint64_t crc_b, uint64_t len_b) {
    if (len_b == 0) return crc_a;
    uint64_t even[64], odd[64], reg = crc_a ^ AAS_CRC64_AVRO_EMPTY;
    odd[0] = AAS_CRC64_AVRO_EMPTY; /* one zero bit: bit 0 feeds the polynomial */
    for (int n = 1; n < 64; n++) odd[n] = 1ULL << (n - 1);
    aas_gf2_square(even, odd); /* two zero bits */
    aas_gf2_square(odd, even); /* four */
    do {
        aas_gf2_square(even, odd); /* first pass: one zero byte */
        if (len_b & 1) reg = aas_gf2_times(even, reg);
        len_b >>= 1;
        if (!len_b) break;
        aas_gf2_square(odd, even);
        if (len_b & 1) reg = aas_gf2_times(odd, reg);
        len_b >>= 1;
    } while (len_b);
    return reg ^ crc_b;
}

struct aas_store_dataset_up_s {
    aas_store_t *st;
    char name[AAS_ID_MAX + 1];
    char key[AAS_STORE_KEY_MAX];
    char tmp[AAS_STORE_KEY_MAX];
    char upload[17];
    uint64_t bytes, crc;
    int64_t chunks;
};

static void aas_store_dataset_upload_id(char out[17]) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) ^
            ((uint64_t)getpid() << 40);
        v ^= v >> 31; /* splitmix64's finaliser: spread the clock's bits */
        v *= 0x94d049bb133111ebULL;
        v ^= v >> 29;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)v);
}

aas_err_t aas_store_dataset_begin(aas_store_t *st, const char *name,
                                  aas_store_dataset_up_t **out, char *errstr,
                                  size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_dataset_key(st, name, key, errstr, errstr_size);
    if (err) return err;
    aas_store_dataset_up_t *up = calloc(1, sizeof(*up));
    if (!up) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    up->st = st;
    snprintf(up->name, sizeof(up->name), "%s", name);
    memcpy(up->key, key, sizeof(key));
    aas_store_dataset_upload_id(up->upload);
    int n = snprintf(up->tmp, sizeof(up->tmp), "%s:up:%s", key, up->upload);
    if (n < 0 || (size_t)n >= sizeof(up->tmp)) {
        free(up);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "data set name too long");
    }
    up->crc = AAS_CRC64_AVRO_EMPTY; /* the checksum of nothing */
    *out = up;
    return AAS_ERR_OK;
}

aas_err_t aas_store_dataset_append(aas_store_dataset_up_t *up, const void *data,
                                   size_t len, char *errstr, size_t errstr_size) {
    if (!data || len == 0 || len > AAS_STORE_DATASET_CHUNK_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "data set %s: chunk of %zu bytes (want 1..%zu)", up->name, len,
                           AAS_STORE_DATASET_CHUNK_MAX);
    uint64_t crc = aas_codec_crc64_avro(data, len);
    char field[32], kfield[32], hex[17];
    snprintf(field, sizeof(field), "c:%lld", (long long)up->chunks);
    snprintf(kfield, sizeof(kfield), "k:%lld", (long long)up->chunks);
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)crc);
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HSET");
    aas_store_args_add(&a, up->tmp);
    aas_store_args_add(&a, field);
    aas_store_args_addb(&a, data, len);
    aas_store_args_add(&a, kfield);
    aas_store_args_add(&a, hex);
    aas_err_t err = aas_store_dataset_simple(up->st, &a, "HSET dataset chunk", errstr,
                                             errstr_size);
    if (err) return err;
    /* Each chunk renews the temporary key's TTL: an upload that dies
     * leaves its chunks for at most a day. */
    aas_store_args_init(&a);
    aas_store_args_add(&a, "EXPIRE");
    aas_store_args_add(&a, up->tmp);
    aas_store_args_addll(&a, AAS_DATASET_UP_TTL_S);
    if ((err = aas_store_dataset_simple(up->st, &a, "EXPIRE dataset upload", errstr,
                                        errstr_size)))
        return err;
    up->crc = aas_crc64_avro_combine(up->crc, crc, len);
    up->bytes += len;
    up->chunks++;
    return AAS_ERR_OK;
}

void aas_store_dataset_up_stats(const aas_store_dataset_up_t *up, uint64_t *bytes,
                                int64_t *chunks, uint64_t *crc64,
                                const char **upload_id) {
    if (bytes) *bytes = up->bytes;
    if (chunks) *chunks = up->chunks;
    if (crc64) *crc64 = up->crc;
    if (upload_id) *upload_id = up->upload;
}

void aas_store_dataset_abort(aas_store_dataset_up_t *up) {
    if (!up) return;
    if (up->chunks > 0) {
        aas_store_args_t a;
        aas_store_args_init(&a);
        aas_store_args_add(&a, "DEL");
        aas_store_args_add(&a, up->tmp);
        char why[256];
        /* Best effort: if Redis is away, the key's TTL removes it. */
        if (aas_store_dataset_simple(up->st, &a, "DEL dataset upload", why, sizeof(why)))
            AAS_LOG(AAS_LOG_WARN, "store", "dataset=%s upload=%s temporary key left "
                    "(expires in %d s): %s", up->name, up->upload, AAS_DATASET_UP_TTL_S, why);
    }
    free(up);
}

/* One command of the commit transaction; the reply must be the status
 * `want` ("OK", "QUEUED"), else the transaction is off. */
static aas_err_t aas_store_dataset_tx(aas_store_dataset_up_t *up, aas_store_args_t *a,
                                      const char *what, const char *want, char *errstr,
                                      size_t errstr_size) {
    redisReply *r;
    aas_err_t err = aas_store_cmd(up->st, 0, 0, what, a, &r, errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, want) != 0)
        err = aas_store_reply_bad(r, what, errstr, errstr_size);
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_dataset_commit(aas_store_dataset_up_t *up, const char *meta_json,
                                   char *errstr, size_t errstr_size) {
    aas_err_t err = AAS_ERR_OK;
    if (up->chunks == 0 || !meta_json)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "data set %s: nothing to commit (no chunks or no meta)",
                          up->name);
    aas_store_args_t a;
    char hex[17];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)up->crc);
    if (!err) {
        aas_store_args_init(&a);
        aas_store_args_add(&a, "HSET");
        aas_store_args_add(&a, up->tmp);
        aas_store_args_add(&a, "bytes");
        aas_store_args_addll(&a, (long long)up->bytes);
        aas_store_args_add(&a, "chunks");
        aas_store_args_addll(&a, (long long)up->chunks);
        aas_store_args_add(&a, "crc64");
        aas_store_args_add(&a, hex);
        aas_store_args_add(&a, "format");
        aas_store_args_add(&a, AAS_DATASET_V2);
        aas_store_args_add(&a, "upload");
        aas_store_args_add(&a, up->upload);
        aas_store_args_add(&a, "meta");
        aas_store_args_add(&a, meta_json);
        err = aas_store_dataset_simple(up->st, &a, "HSET dataset meta", errstr,
                                       errstr_size);
    }
    /* MULTI; PERSIST tmp; RENAME tmp key; EXEC.  A reconnect between them
     * runs a command outside the transaction: its reply is not QUEUED, and
     * the commit fails (the temporary key is then deleted). */
    int in_multi = 0;
    if (!err) {
        aas_store_args_init(&a);
        aas_store_args_add(&a, "MULTI");
        err = aas_store_dataset_tx(up, &a, "MULTI", "OK", errstr, errstr_size);
        in_multi = !err;
    }
    if (!err) {
        aas_store_args_init(&a);
        aas_store_args_add(&a, "PERSIST");
        aas_store_args_add(&a, up->tmp);
        err = aas_store_dataset_tx(up, &a, "PERSIST dataset upload", "QUEUED", errstr,
                                   errstr_size);
    }
    if (!err) {
        aas_store_args_init(&a);
        aas_store_args_add(&a, "RENAME");
        aas_store_args_add(&a, up->tmp);
        aas_store_args_add(&a, up->key);
        err = aas_store_dataset_tx(up, &a, "RENAME dataset upload", "QUEUED", errstr,
                                   errstr_size);
    }
    if (!err) {
        redisReply *r;
        aas_store_args_init(&a);
        aas_store_args_add(&a, "EXEC");
        err = aas_store_cmd(up->st, 0, 0, "EXEC dataset commit", &a, &r, errstr,
                            errstr_size);
        in_multi = 0;
        if (!err) {
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                r->element[1]->type != REDIS_REPLY_STATUS)
                err = aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                                  "data set %s: the commit transaction did not run "
                                  "(RENAME %s failed)", up->name, up->tmp);
            freeReplyObject(r);
        }
    }
    if (in_multi) {
        redisReply *r;
        char why[128];
        aas_store_args_init(&a);
        aas_store_args_add(&a, "DISCARD");
        if (!aas_store_cmd(up->st, 0, 0, "DISCARD", &a, &r, why, sizeof(why)))
            freeReplyObject(r);
    }
    if (err) {
        aas_store_dataset_abort(up);
        return err;
    }
    /* The set is in place; only its listing is left (idempotent). */
    err = aas_store_dataset_sadd(up->st, up->name, errstr, errstr_size);
    if (err)
        aas_err_set(errstr, errstr_size, err,
                    "data set %s was stored but not added to the list of sets", up->name);
    free(up);
    return err;
}

/* ---- v2: reading ---- */

static int aas_store_dataset_hex64(const redisReply *r, uint64_t *out) {
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 16) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < 16; i++) {
        char c = r->str[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

aas_err_t aas_store_dataset_meta(aas_store_t *st, const char *name, char **meta_json,
                                 aas_store_dataset_info_t *info, char *errstr,
                                 size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_dataset_key(st, name, key, errstr, errstr_size);
    if (err) return err;
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HMGET");
    aas_store_args_add(&a, key);
    const char *fields[] = {"meta", "bytes", "chunks", "format", "upload", "crc64"};
    for (size_t i = 0; i < 6; i++) aas_store_args_add(&a, fields[i]);
    redisReply *r;
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HMGET dataset meta", &a, &r,
                             errstr, errstr_size)))
        return err;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 6) {
        err = aas_store_reply_bad(r, "HMGET dataset meta", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    redisReply **e = r->element;
    if (e[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                           "data set %s not found (never uploaded, or deleted)", name);
    }
    aas_store_dataset_info_t in = {0};
    int64_t bytes = 0;
    int v2 = e[3]->type == REDIS_REPLY_STRING;
    in.version = v2 ? 2 : 1;
    if (aas_store_reply_ll(e[1], &bytes) || bytes < 0 ||
        aas_store_reply_ll(e[2], &in.chunks) || in.chunks < 0 ||
        (v2 && (e[3]->len != strlen(AAS_DATASET_V2) ||
                memcmp(e[3]->str, AAS_DATASET_V2, e[3]->len) != 0 ||
                e[4]->type != REDIS_REPLY_STRING || e[4]->len != 16 ||
                aas_store_dataset_hex64(e[5], &in.crc64))) ||
        (uint64_t)in.chunks > (uint64_t)bytes) {
        freeReplyObject(r);
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "data set %s: malformed record in Redis (bytes, chunks, "
                           "format, upload or crc64)", name);
    }
    in.bytes = (uint64_t)bytes;
    if (v2) memcpy(in.upload, e[4]->str, 16);
    char *meta = aas_store_memdup0(e[0]->str, e[0]->len);
    freeReplyObject(r);
    if (!meta) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    *meta_json = meta;
    if (info) *info = in;
    return AAS_ERR_OK;
}

aas_err_t aas_store_dataset_chunk(aas_store_t *st, const char *name,
                                  const aas_store_dataset_info_t *info, int64_t i,
                                  char **data, size_t *len, char *errstr,
                                  size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_dataset_key(st, name, key, errstr, errstr_size);
    if (err) return err;
    if (info->version != 2 || i < 0 || i >= info->chunks)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "data set %s: no chunk %lld (v%d, %lld chunks)", name,
                           (long long)i, info->version, (long long)info->chunks);
    char field[32], kfield[32];
    snprintf(field, sizeof(field), "c:%lld", (long long)i);
    snprintf(kfield, sizeof(kfield), "k:%lld", (long long)i);
    /* Size first, so the reply that carries the bytes is bounded. */
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HSTRLEN");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, field);
    redisReply *r;
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HSTRLEN dataset chunk", &a, &r,
                             errstr, errstr_size)))
        return err;
    int64_t n = -1;
    if (aas_store_reply_ll(r, &n)) n = -1;
    freeReplyObject(r);
    if (n < 0 || (uint64_t)n > AAS_STORE_DATASET_CHUNK_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "data set %s: chunk %lld has %lld bytes (at most %zu)", name,
                           (long long)i, (long long)n, AAS_STORE_DATASET_CHUNK_MAX);
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HMGET");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, field);
    aas_store_args_add(&a, kfield);
    aas_store_args_add(&a, "upload");
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HMGET dataset chunk", &a, &r,
                             errstr, errstr_size)))
        return err;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        err = aas_store_reply_bad(r, "HMGET dataset chunk", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    redisReply **e = r->element;
    uint64_t want = 0;
    if (e[2]->type != REDIS_REPLY_STRING || e[2]->len != 16 ||
        memcmp(e[2]->str, info->upload, 16) != 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                          "data set %s was replaced or deleted while being read "
                          "(at chunk %lld)", name, (long long)i);
    else if (e[0]->type != REDIS_REPLY_STRING || e[0]->len == 0 ||
             e[0]->len > AAS_STORE_DATASET_CHUNK_MAX)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                          "data set %s: chunk %lld missing or of a bad size", name,
                          (long long)i);
    else if (aas_store_dataset_hex64(e[1], &want))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                          "data set %s: chunk %lld has no valid checksum (k:%lld)", name,
                          (long long)i, (long long)i);
    else {
        uint64_t got = aas_codec_crc64_avro(e[0]->str, e[0]->len);
        if (got != want)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                              "data set %s: checksum mismatch in chunk %lld (stored "
                              "%016llx, computed %016llx)", name, (long long)i,
                              (unsigned long long)want, (unsigned long long)got);
    }
    char *buf = NULL;
    size_t blen = 0;
    if (!err) {
        blen = e[0]->len;
        if (!(buf = malloc(blen)))
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        else
            memcpy(buf, e[0]->str, blen);
    }
    freeReplyObject(r);
    if (err) return err;
    *data = buf;
    *len = blen;
    return AAS_ERR_OK;
}

static int aas_store_dataset_cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void aas_store_dataset_names_free(char **names, size_t n) {
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

aas_err_t aas_store_dataset_list(aas_store_t *st, char ***names, size_t *n,
                                 char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    if (aas_store_key(st, key, sizeof(key), "datasets", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "prefix too long");
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SMEMBERS");
    aas_store_args_add(&a, key);
    redisReply *r;
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SMEMBERS datasets", &a, &r,
                                  errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_ARRAY) {
        err = aas_store_reply_bad(r, "SMEMBERS datasets", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    char **out = calloc(r->elements ? r->elements : 1, sizeof(char *));
    size_t k = 0;
    if (!out) err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !err && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len > AAS_ID_MAX) continue;
        char name[AAS_ID_MAX + 1], dkey[AAS_STORE_KEY_MAX];
        memcpy(name, e->str, e->len);
        name[e->len] = '\0';
        if (!aas_id_valid(name) || aas_store_key(st, dkey, sizeof(dkey), "dataset", name))
            continue; /* not ours to build a key from */
        aas_store_args_init(&a);
        aas_store_args_add(&a, "EXISTS");
        aas_store_args_add(&a, dkey);
        redisReply *x;
        if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "EXISTS dataset", &a, &x,
                                 errstr, errstr_size)))
            break;
        int exists = x->type == REDIS_REPLY_INTEGER && x->integer > 0;
        freeReplyObject(x);
        if (!exists) { /* stale: deleted behind the list's back */
            err = aas_store_dataset_names_cmd(st, "SREM", name, errstr, errstr_size);
            continue;
        }
        if (!(out[k] = strdup(name)))
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        else
            k++;
    }
    freeReplyObject(r);
    if (err) {
        aas_store_dataset_names_free(out, k);
        return err;
    }
    qsort(out, k, sizeof(char *), aas_store_dataset_cmp_name);
    *names = out;
    *n = k;
    return AAS_ERR_OK;
}
