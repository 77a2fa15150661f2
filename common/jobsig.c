/* jobsig.c - signed jobs: key ids, HMAC-SHA256 headers; see jobsig.h. */
#include "jobsig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "fmt.h"

void aas_jobsig_key_id(const unsigned char hash[32], char id[AAS_JOBSIG_ID_HEX + 1]) {
    /* A domain-separated digest: the id says which key, nothing of it. */
    static const char tag[] = "aas.key-id";
    unsigned char in[sizeof(tag) - 1 + 32], d[32];
    unsigned int n = 0;
    memcpy(in, tag, sizeof(tag) - 1);
    memcpy(in + sizeof(tag) - 1, hash, 32);
    if (EVP_Digest(in, sizeof(in), d, &n, EVP_sha256(), NULL) != 1 || n != 32)
        memset(d, 0, sizeof(d)); /* cannot happen with the default provider; ids then clash */
    aas_fmt_hex(d, AAS_JOBSIG_ID_HEX / 2, id);
}

void aas_jobsig_key_from_hash(const unsigned char hash[32], aas_jobsig_key_t *out) {
    memcpy(out->secret, hash, 32);
    aas_jobsig_key_id(hash, out->id);
}

aas_err_t aas_jobsig_key_from_apikey(const char *apikey, size_t len, aas_jobsig_key_t *out) {
    unsigned char h[32];
    unsigned int n = 0;
    if (EVP_Digest(apikey, len, h, &n, EVP_sha256(), NULL) != 1 || n != 32) return AAS_ERR_NOMEM;
    aas_jobsig_key_from_hash(h, out);
    OPENSSL_cleanse(h, sizeof(h));
    return AAS_ERR_OK;
}

static int mac_of(const unsigned char secret[32], const void *value, size_t len,
                  unsigned char mac[32]) {
    unsigned int n = 0;
    /* HMAC() of a zero-length message wants a non-NULL pointer. */
    if (!HMAC(EVP_sha256(), secret, 32, value ? value : (const void *)"", len, mac, &n) ||
        n != 32)
        return -1;
    return 0;
}

aas_err_t aas_jobsig_sign(const aas_jobsig_key_t *k, const void *value, size_t len,
                          char out[AAS_JOBSIG_VALUE_LEN + 1]) {
    unsigned char mac[32];
    if (mac_of(k->secret, value, len, mac)) return AAS_ERR_NOMEM;
    memcpy(out, "v1:", 3);
    memcpy(out + 3, k->id, AAS_JOBSIG_ID_HEX);
    out[3 + AAS_JOBSIG_ID_HEX] = ':';
    aas_fmt_hex(mac, 32, out + 4 + AAS_JOBSIG_ID_HEX);
    return AAS_ERR_OK;
}

aas_err_t aas_jobsig_parse(const void *hdr, size_t len, char id[AAS_JOBSIG_ID_HEX + 1],
                           unsigned char mac[32]) {
    const char *s = hdr;
    unsigned char idb[AAS_JOBSIG_ID_HEX / 2];
    if (!s || len != AAS_JOBSIG_VALUE_LEN || memcmp(s, "v1:", 3) ||
        s[3 + AAS_JOBSIG_ID_HEX] != ':' || aas_fmt_unhex(s + 3, AAS_JOBSIG_ID_HEX / 2, idb) ||
        aas_fmt_unhex(s + 4 + AAS_JOBSIG_ID_HEX, 32, mac))
        return AAS_ERR_INVAL;
    memcpy(id, s + 3, AAS_JOBSIG_ID_HEX);
    id[AAS_JOBSIG_ID_HEX] = '\0';
    return AAS_ERR_OK;
}

int aas_jobsig_verify(const unsigned char secret[32], const void *value, size_t len,
                      const unsigned char mac[32]) {
    unsigned char want[32];
    if (mac_of(secret, value, len, want)) return 0;
    return CRYPTO_memcmp(want, mac, 32) == 0;
}
