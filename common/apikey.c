/* apikey.c - API keys: generation, SHA-256, scopes, lookup table; see apikey.h. */
#include "apikey.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fmt.h"
#include "job.h"
#include "jobsig.h"

/* Most keys in one table: far above any real deployment, low enough that
 * a runaway keys file or hash cannot eat the gateway's memory. */
#define AAS_APIKEY_TABLE_MAX 1000000

typedef struct {
    unsigned char hash[32];
    unsigned scopes;
    char *tenant;
} aas_apikey_entry_t;

/* The second index: a key's signing id (jobsig.h) -> its hash. */
typedef struct {
    unsigned char id[AAS_JOBSIG_ID_HEX / 2];
    unsigned char hash[32];
} aas_apikey_id_t;

struct aas_apikey_table_s {
    aas_apikey_entry_t *e;   /* sorted by hash */
    aas_apikey_id_t *ids;    /* the same keys, sorted by id */
    size_t n, cap;
};

aas_err_t aas_apikey_generate(char *buf, size_t size) {
    static const char b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[33];     /* 32 random bytes, one zero pad byte */
    if (size < AAS_APIKEY_LEN + 1) return AAS_ERR_INVAL;
    if (getrandom(r, 32, 0) != 32) return AAS_ERR_IO;
    r[32] = 0;
    memcpy(buf, "aas_", 4);
    size_t o = 4;
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
        for (int k = 3; k >= 0 && o < AAS_APIKEY_LEN; k--)
            if (!(i == 30 && k == 0)) buf[o++] = b64url[(v >> (6 * k)) & 63];
    }
    buf[AAS_APIKEY_LEN] = '\0';
    return AAS_ERR_OK;
}

static aas_err_t digest(const char *key, size_t len, unsigned char out[32]) {
    unsigned int n = 0;
    if (EVP_Digest(key, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) return AAS_ERR_NOMEM;
    return AAS_ERR_OK;
}

aas_err_t aas_apikey_hash(const char *key, size_t len, char hex[AAS_APIKEY_HASH_HEX + 1]) {
    unsigned char h[32];
    aas_err_t err = digest(key, len, h);
    if (err) return err;
    aas_fmt_hex(h, 32, hex);
    return AAS_ERR_OK;
}

int aas_apikey_hash_valid(const char *s) {
    if (!s || strlen(s) != AAS_APIKEY_HASH_HEX) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

static int unhex(const char *hex, unsigned char out[32]) {
    return aas_apikey_hash_valid(hex) ? aas_fmt_unhex(hex, 32, out) : -1;
}

aas_err_t aas_apikey_scopes_parse(const char *s, unsigned *out, char *errstr,
                                  size_t errstr_size) {
    unsigned v = 0;
    const char *p = s;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        if (n == 5 && !strncmp(p, "infer", 5)) v |= AAS_APIKEY_SCOPE_INFER;
        else if (n == 5 && !strncmp(p, "train", 5)) v |= AAS_APIKEY_SCOPE_TRAIN;
        else if (n == 3 && !strncmp(p, "all", 3)) v |= AAS_APIKEY_SCOPE_ALL;
        else
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "unknown scope '%.*s' (scopes: infer, train, all)",
                               (int)(n > 32 ? 32 : n), p);
        p += n;
        if (*p == ',') p++;
    }
    if (!v)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "no scope (scopes: infer, train, all)");
    *out = v;
    return AAS_ERR_OK;
}

const char *aas_apikey_scopes_str(unsigned scopes, char *buf, size_t size) {
    snprintf(buf, size, "%s%s%s", scopes & AAS_APIKEY_SCOPE_INFER ? "infer" : "",
             (scopes & AAS_APIKEY_SCOPE_ALL) == AAS_APIKEY_SCOPE_ALL ? "," : "",
             scopes & AAS_APIKEY_SCOPE_TRAIN ? "train" : "");
    return buf;
}

aas_err_t aas_apikey_table_new(aas_apikey_table_t **out) {
    aas_apikey_table_t *t = calloc(1, sizeof(*t));
    if (!t) return AAS_ERR_NOMEM;
    *out = t;
    return AAS_ERR_OK;
}

void aas_apikey_table_destroy(aas_apikey_table_t *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) free(t->e[i].tenant);
    free(t->e);
    free(t->ids);
    free(t);
}

size_t aas_apikey_table_size(const aas_apikey_table_t *t) { return t->n; }

/* Index of the first entry whose hash is >= h. */
static size_t lower_bound(const aas_apikey_table_t *t, const unsigned char h[32]) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(t->e[mid].hash, h, 32) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Index of the first id entry whose id is >= id. */
static size_t id_lower_bound(const aas_apikey_table_t *t, const unsigned char *id) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(t->ids[mid].id, id, sizeof(t->ids[mid].id)) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void id_bin(const unsigned char h[32], unsigned char id[AAS_JOBSIG_ID_HEX / 2]) {
    char hex[AAS_JOBSIG_ID_HEX + 1];
    aas_jobsig_key_id(h, hex);
    aas_fmt_unhex(hex, AAS_JOBSIG_ID_HEX / 2, id);
}

static aas_err_t table_add_bin(aas_apikey_table_t *t, const unsigned char h[32],
                               const char *tenant, unsigned scopes, char *errstr,
                               size_t errstr_size) {
    if (!aas_id_valid(tenant))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "invalid tenant name (letters, digits, '_', '-', '.', at most 128)");
    if (!scopes || (scopes & ~AAS_APIKEY_SCOPE_ALL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "invalid scopes");
    size_t at = lower_bound(t, h);
    if (at < t->n && !memcmp(t->e[at].hash, h, 32))
        return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                           "the same key is listed twice (tenants %.64s and %.64s)",
                           t->e[at].tenant, tenant);
    if (t->n == AAS_APIKEY_TABLE_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "more than %d keys",
                           AAS_APIKEY_TABLE_MAX);
    unsigned char id[AAS_JOBSIG_ID_HEX / 2];
    id_bin(h, id);
    size_t iat = id_lower_bound(t, id);
    /* 64-bit ids: a clash is a one-in-10^7 event at a million keys; the
     * second key is refused rather than made unusable for signing. */
    if (iat < t->n && !memcmp(t->ids[iat].id, id, sizeof(id)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                           "two keys share a signing id (tenants %.64s and %.64s): "
                           "make a new key", tenant, tenant);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        aas_apikey_entry_t *e = realloc(t->e, cap * sizeof(*e));
        if (!e) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        t->e = e;
        aas_apikey_id_t *ids = realloc(t->ids, cap * sizeof(*ids));
        if (!ids) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        t->ids = ids;
        t->cap = cap;
    }
    char *name = strdup(tenant);
    if (!name) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    memmove(t->ids + iat + 1, t->ids + iat, (t->n - iat) * sizeof(*t->ids));
    memcpy(t->ids[iat].id, id, sizeof(id));
    memcpy(t->ids[iat].hash, h, 32);
    memmove(t->e + at + 1, t->e + at, (t->n - at) * sizeof(*t->e));
    memcpy(t->e[at].hash, h, 32);
    t->e[at].scopes = scopes;
    t->e[at].tenant = name;
    t->n++;
    return AAS_ERR_OK;
}

aas_err_t aas_apikey_table_add(aas_apikey_table_t *t, const char *hash_hex,
                               const char *tenant, unsigned scopes, char *errstr,
                               size_t errstr_size) {
    unsigned char h[32];
    if (unhex(hash_hex, h))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "a key hash must be 64 lowercase hex digits (SHA-256)");
    return table_add_bin(t, h, tenant, scopes, errstr, errstr_size);
}

aas_err_t aas_apikey_table_add_line(aas_apikey_table_t *t, const char *line,
                                    char *errstr, size_t errstr_size) {
    char tenant[160], key[AAS_APIKEY_MAX_LEN + 8], scopes_s[64] = "infer", extra[2];
    int n = sscanf(line, "%159s %263s %63s %1s", tenant, key, scopes_s, extra);
    if (n < 2 || n > 3)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "want 'TENANT KEY [SCOPES]' (KEY: the key, or sha256:<hex>)");
    unsigned scopes;
    aas_err_t err = aas_apikey_scopes_parse(scopes_s, &scopes, errstr, errstr_size);
    if (err) return err;
    unsigned char h[32];
    if (!strncmp(key, "sha256:", 7)) {
        if (unhex(key + 7, h))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "sha256: must be followed by 64 lowercase hex digits");
    } else {
        size_t len = strlen(key);
        /* The key itself is never echoed in a reason: logs would keep it. */
        if (len < AAS_APIKEY_MIN_LEN || len > AAS_APIKEY_MAX_LEN)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "a key must be %d to %d characters (this one has %zu)",
                               AAS_APIKEY_MIN_LEN, AAS_APIKEY_MAX_LEN, len);
        if ((err = digest(key, len, h)))
            return aas_err_set(errstr, errstr_size, err, "SHA-256 failed");
    }
    return table_add_bin(t, h, tenant, scopes, errstr, errstr_size);
}

const char *aas_apikey_table_find(const aas_apikey_table_t *t, const char *key, size_t len,
                                  unsigned *scopes) {
    unsigned char h[32];
    /* Compared by hash: the search's timing depends on the digest, not on
     * how many leading characters of a real key a guess got right. */
    if (!t || len == 0 || len > AAS_APIKEY_MAX_LEN || digest(key, len, h)) return NULL;
    size_t at = lower_bound(t, h);
    if (at == t->n || memcmp(t->e[at].hash, h, 32)) return NULL;
    *scopes = t->e[at].scopes;
    return t->e[at].tenant;
}

const char *aas_apikey_table_find_id(const aas_apikey_table_t *t, const char *id,
                                     unsigned char hash[32], unsigned *scopes) {
    unsigned char b[AAS_JOBSIG_ID_HEX / 2];
    if (!t || !id || strlen(id) != AAS_JOBSIG_ID_HEX ||
        aas_fmt_unhex(id, AAS_JOBSIG_ID_HEX / 2, b))
        return NULL;
    size_t iat = id_lower_bound(t, b);
    if (iat == t->n || memcmp(t->ids[iat].id, b, sizeof(b))) return NULL;
    size_t at = lower_bound(t, t->ids[iat].hash);
    if (at == t->n || memcmp(t->e[at].hash, t->ids[iat].hash, 32)) return NULL;
    memcpy(hash, t->e[at].hash, 32);
    *scopes = t->e[at].scopes;
    return t->e[at].tenant;
}
