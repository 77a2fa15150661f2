/* cmd_apikey.c - aas-producer apikey: add (a new random key for a tenant,
 * printed once, only its SHA-256 stored), list and revoke the HTTP
 * gateway's API keys in Redis (cmd.h; docs/http.md#access). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apikey.h"
#include "cmd.h"

#define APIKEY_USAGE                                                                 \
    "aas-producer: usage: apikey add TENANT [--scopes infer|train|infer,train] | "   \
    "apikey list | apikey revoke ID|--tenant TENANT\n"

static int cmd_apikey_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    const char *sub = n > 0 ? args[0] : "";
    int add = !strcmp(sub, "add") && n == 2;
    int list = !strcmp(sub, "list") && n == 1;
    int revoke = !strcmp(sub, "revoke") && ((n == 2 && !o->tenant) || (n == 1 && o->tenant));
    if (!add && !list && !revoke) {
        fputs(APIKEY_USAGE, stderr);
        return AAS_EXIT_USAGE;
    }
    const char *tenant = add ? args[1] : o->tenant;
    if (tenant && !aas_id_valid(tenant)) {
        fprintf(stderr, "aas-producer: tenant '%s' is not valid ([A-Za-z0-9_.-], at most %d)\n",
                tenant, AAS_ID_MAX);
        return AAS_EXIT_USAGE;
    }
    unsigned sc;
    char why[256];
    if (o->scopes && aas_apikey_scopes_parse(o->scopes, &sc, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: --scopes: %s\n", why);
        return AAS_EXIT_USAGE;
    }
    if (revoke && n == 2) {
        size_t len = strlen(args[1]);
        if (len < 8 || len > AAS_APIKEY_HASH_HEX ||
            strspn(args[1], "0123456789abcdef") != len) {
            fprintf(stderr, "aas-producer: apikey revoke: ID is the key's id from `apikey list` "
                            "(8 to 64 lowercase hex digits)\n");
            return AAS_EXIT_USAGE;
        }
    }
    return 0;
}

static int apikey_add(aas_client_t *c, const aas_cmd_opts_t *o, const char *tenant) {
    char key[AAS_APIKEY_LEN + 1], hash[AAS_APIKEY_HASH_HEX + 1], why[512];
    const char *scopes = o->scopes ? o->scopes : "infer";
    if (aas_apikey_generate(key, sizeof(key)) || aas_apikey_hash(key, strlen(key), hash)) {
        fprintf(stderr, "aas-producer: cannot make a key (no randomness)\n");
        return 1;
    }
    if (aas_store_apikey_put(aas_client_store(c), hash, tenant, scopes, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    /* The key goes to stdout once (for a pipe or a secret store); the id,
     * which names it later, to stderr. */
    printf("%s\n", key);
    fprintf(stderr, "aas-producer: key id %.*s for tenant %s (scopes %s); the key is shown only "
                    "now\n", AAS_APIKEY_ID_LEN, hash, tenant, scopes);
    return 0;
}

static int apikey_list(aas_client_t *c) {
    aas_store_apikey_t *v = NULL;
    size_t n = 0;
    char why[512];
    if (aas_store_apikey_all(aas_client_store(c), &v, &n, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    printf("%-14s %-32s %s\n", "ID", "TENANT", "SCOPES");
    for (size_t i = 0; i < n; i++)
        printf("%-14.*s %-32s %s\n", AAS_APIKEY_ID_LEN, v[i].hash, v[i].tenant, v[i].scopes);
    aas_store_apikeys_free(v, n);
    return 0;
}

/* Revoke the key whose hash starts with id (exactly one), or every key of
 * tenant. */
static int apikey_revoke(aas_client_t *c, const char *id, const char *tenant) {
    aas_store_apikey_t *v = NULL;
    size_t n = 0, hits = 0, done = 0;
    char why[512];
    int rc = 0;
    if (aas_store_apikey_all(aas_client_store(c), &v, &n, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (id ? !strncmp(v[i].hash, id, strlen(id)) : !strcmp(v[i].tenant, tenant)) hits++;
    if (hits == 0 || (id && hits > 1)) {
        fprintf(stderr, "aas-producer: %s %s\n", hits ? "several keys start with" : "no key of",
                id ? id : tenant);
        aas_store_apikeys_free(v, n);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (id ? strncmp(v[i].hash, id, strlen(id)) : strcmp(v[i].tenant, tenant)) continue;
        aas_err_t err = aas_store_apikey_delete(aas_client_store(c), v[i].hash, why, sizeof(why));
        if (err && err != AAS_ERR_NOT_FOUND) {
            fprintf(stderr, "aas-producer: %s\n", why);
            rc = 1;
            break;
        }
        printf("revoked %.*s %s\n", AAS_APIKEY_ID_LEN, v[i].hash, v[i].tenant);
        done++;
    }
    aas_store_apikeys_free(v, n);
    if (!rc)
        fprintf(stderr, "aas-producer: %zu key(s) revoked; gateways drop them at their next "
                        "refresh (gateway.auth.refresh.s)\n", done);
    return rc;
}

static int cmd_apikey(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n) {
    if (!strcmp(args[0], "add")) return apikey_add(c, o, args[1]);
    if (!strcmp(args[0], "list")) return apikey_list(c);
    return apikey_revoke(c, n == 2 ? args[1] : NULL, o->tenant);
}

static const aas_cmd_help_t apikey_help[] = {
    {"apikey add TENANT [--scopes S]",
     "new HTTP gateway key for TENANT,\nprinted once (stdout); scopes infer\n(default), "
     "train, or infer,train"},
    {"apikey list", "key ids, tenants, scopes"},
    {"apikey revoke ID|--tenant T", "remove a key (or all of a tenant's)"},
    {NULL, NULL}};

const aas_cmd_t aas_cmd_apikey_def = {"apikey", cmd_apikey_check, cmd_apikey, apikey_help,
                                      NULL};
