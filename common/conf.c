/* conf.c - table-driven configuration; see conf.h. */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define AAS_CONF_MAX_VALUE 4096

static const aas_conf_def_t aas_conf_common[] = {
    {"log.level", AAS_CONF_STR, "info", 0, 0, 0,
     "error, warn, info or debug"},
    {"redis.host", AAS_CONF_STR, "127.0.0.1", 0, 0, 0, "Redis host"},
    {"redis.port", AAS_CONF_INT, "6379", 1, 65535, 0, "Redis port"},
    {"redis.user", AAS_CONF_STR, NULL, 0, 0, 0,
     "Redis ACL user (AUTH user password); unset = password only"},
    {"redis.password", AAS_CONF_STR, NULL, 0, 0, 1,
     "Redis password (secret: env AAS_REDIS_PASSWORD or redis.password.file)"},
    {"redis.db", AAS_CONF_INT, "0", 0, 1024, 0, "Redis database number"},
    {"redis.timeout.ms", AAS_CONF_INT, "5000", 10, 600000, 0,
     "Redis connect and command timeout"},
    {"redis.ttl.s", AAS_CONF_INT, "86400", 1, 315360000, 0,
     "TTL of job status and result keys"},
    {"redis.prefix", AAS_CONF_STR, "aas:", 0, 0, 0, "Prefix of every Redis key"},
    {"redis.sentinels", AAS_CONF_STR, NULL, 0, 0, 0,
     "Redis Sentinel: host:port,host:port of the sentinels; set, the master of "
     "redis.sentinel.master is asked of them at every connect and reconnect (redis.host and "
     "redis.port are then unused; docs/redis.md)"},
    {"redis.sentinel.master", AAS_CONF_STR, "mymaster", 0, 0, 0,
     "Redis Sentinel: the monitored master's name"},
    {"redis.wait.replicas", AAS_CONF_INT, "0", 0, 64, 0,
     "A worker's terminal write counts (and its Kafka offset may be stored) only once this "
     "many replicas have it (Redis WAIT); 0 = the master's acknowledgement"},
    {"redis.wait.timeout.ms", AAS_CONF_INT, "1000", 1, 600000, 0,
     "How long WAIT waits for redis.wait.replicas; fewer in time: the job's message is "
     "retried"},
    {"topic.infer", AAS_CONF_STR, "aas.jobs.infer", 0, 0, 0,
     "Kafka topic of inference jobs"},
    {"topic.infer.lanes", AAS_CONF_BOOL, "true", 0, 0, 0,
     "Priority lanes: an inference job goes to topic.infer + \".high\" if its priority >= "
     "lane.high.min.priority, to topic.infer + \".low\" if <= lane.low.max.priority, else "
     "to topic.infer; workers serve a higher lane first (docs/sharing.md). false: every "
     "inference job on topic.infer, and workers consume only it"},
    {"lane.high.min.priority", AAS_CONF_INT, "1", -2147483647LL - 1, 2147483647LL, 0,
     "Lowest job priority that goes to the high lane"},
    {"lane.low.max.priority", AAS_CONF_INT, "-1", -2147483647LL - 1, 2147483647LL, 0,
     "Highest job priority that goes to the low lane (must be < lane.high.min.priority)"},
    {"topic.train", AAS_CONF_STR, "aas.jobs.train", 0, 0, 0,
     "Kafka topic of training jobs"},
    {"topic.dlq", AAS_CONF_STR, "aas.jobs.dlq", 0, 0, 0,
     "Dead-letter topic for undecodable messages"},
    {"kafka.bootstrap.servers", AAS_CONF_STR, "127.0.0.1:9092", 0, 0, 0,
     "Kafka brokers; any other kafka.<name> goes to librdkafka as <name>"},
    AAS_CONF_END};

/* librdkafka properties that carry credentials (its CONFIGURATION.md):
 * passwords, client secrets, private keys in PEM, OAuth configuration and
 * extensions (tokens).  Any kafka.* key naming a password or a secret
 * counts too, so a property added by a later librdkafka is not missed, and
 * so does ssl_key (a private key, settable only through
 * rd_kafka_conf_set_ssl_cert(), so never read from the environment).
 * Not secrets, though librdkafka redacts them: ssl.key.location (a path),
 * ssl.ca.pem (a public certificate) and sasl.username. */
static const char *aas_conf_kafka_secrets[] = {
    "kafka.sasl.password", "kafka.ssl.key.password", "kafka.ssl.keystore.password",
    "kafka.sasl.oauthbearer.client.secret", "kafka.ssl.key.pem",
    "kafka.sasl.oauthbearer.config", "kafka.sasl.oauthbearer.extensions",
    NULL};

typedef struct {
    char *key;
    char *value;
    const aas_conf_def_t *def; /* NULL for kafka.* pass-through */
} aas_conf_entry_t;

struct aas_conf_s {
    const aas_conf_def_t *program_defs;
    const aas_conf_def_t *lib_defs;    /* a library's rows (may be NULL) */
    aas_conf_entry_t *entries;
    size_t n, cap;
};

static const aas_conf_def_t *aas_conf_find_def(const aas_conf_t *conf,
                                               const char *key) {
    const aas_conf_def_t *tabs[3] = {aas_conf_common, conf->lib_defs, conf->program_defs};
    for (int t = 0; t < 3; t++)
        for (const aas_conf_def_t *d = tabs[t]; d && d->key; d++)
            if (strcmp(d->key, key) == 0) return d;
    return NULL;
}

static aas_conf_entry_t *aas_conf_find(const aas_conf_t *conf, const char *key) {
    for (size_t i = 0; i < conf->n; i++)
        if (strcmp(conf->entries[i].key, key) == 0) return &conf->entries[i];
    return NULL;
}

static int aas_conf_is_secret(const aas_conf_def_t *def, const char *key) {
    if (def) return def->secret;
    if (strncmp(key, "kafka.", 6) != 0) return 0;
    for (int i = 0; aas_conf_kafka_secrets[i]; i++)
        if (strcmp(key, aas_conf_kafka_secrets[i]) == 0) return 1;
    return strstr(key, "password") || strstr(key, "secret") ||
           strcmp(key, "kafka.ssl_key") == 0;
}

/* Store (key, value); value NULL removes the value. */
static aas_err_t aas_conf_put(aas_conf_t *conf, const char *key,
                              const char *value, const aas_conf_def_t *def) {
    aas_conf_entry_t *e = aas_conf_find(conf, key);
    char *v = NULL;
    if (value && !(v = strdup(value))) return AAS_ERR_NOMEM;
    if (e) {
        free(e->value);
        e->value = v;
        return AAS_ERR_OK;
    }
    if (conf->n == conf->cap) {
        size_t cap = conf->cap ? conf->cap * 2 : 32;
        aas_conf_entry_t *ne = realloc(conf->entries, cap * sizeof(*ne));
        if (!ne) {
            free(v);
            return AAS_ERR_NOMEM;
        }
        conf->entries = ne;
        conf->cap = cap;
    }
    e = &conf->entries[conf->n];
    if (!(e->key = strdup(key))) {
        free(v);
        return AAS_ERR_NOMEM;
    }
    e->value = v;
    e->def = def;
    conf->n++;
    return AAS_ERR_OK;
}

aas_err_t aas_conf_new(const aas_conf_def_t *program_defs, aas_conf_t **out) {
    return aas_conf_new_with(program_defs, NULL, out);
}

aas_err_t aas_conf_new_with(const aas_conf_def_t *program_defs,
                            const aas_conf_def_t *lib_defs, aas_conf_t **out) {
    aas_conf_t *conf = calloc(1, sizeof(*conf));
    if (!conf) return AAS_ERR_NOMEM;
    conf->program_defs = program_defs;
    conf->lib_defs = lib_defs;
    const aas_conf_def_t *tabs[3] = {aas_conf_common, lib_defs, program_defs};
    for (int t = 0; t < 3; t++)
        for (const aas_conf_def_t *d = tabs[t]; d && d->key; d++)
            if (aas_conf_put(conf, d->key, d->def, d) != AAS_ERR_OK) {
                aas_conf_destroy(conf);
                return AAS_ERR_NOMEM;
            }
    *out = conf;
    return AAS_ERR_OK;
}

void aas_conf_destroy(aas_conf_t *conf) {
    if (!conf) return;
    for (size_t i = 0; i < conf->n; i++) {
        aas_conf_entry_t *e = &conf->entries[i];
        /* Do not leave secrets in freed heap memory. */
        if (e->value && aas_conf_is_secret(e->def, e->key))
            memset(e->value, 0, strlen(e->value));
        free(e->value);
        free(e->key);
    }
    free(conf->entries);
    free(conf);
}

static aas_err_t aas_conf_validate(const aas_conf_def_t *def, const char *key,
                                   const char *value, char *errstr,
                                   size_t errstr_size) {
    if (strlen(value) > AAS_CONF_MAX_VALUE)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%s: value longer than %d bytes", key,
                           AAS_CONF_MAX_VALUE);
    if (!def) return AAS_ERR_OK;
    if (def->type == AAS_CONF_INT) {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "%s: '%s' is not an integer", key, value);
        if (v < def->min || v > def->max)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "%s: %lld is outside %lld..%lld", key, v,
                               def->min, def->max);
    } else if (def->type == AAS_CONF_BOOL) {
        if (strcmp(value, "true") && strcmp(value, "false") &&
            strcmp(value, "1") && strcmp(value, "0"))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "%s: '%s' is not true or false", key, value);
    } else if (strcmp(key, "log.level") == 0 &&
               strcmp(value, "error") && strcmp(value, "warn") &&
               strcmp(value, "info") && strcmp(value, "debug")) {
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "log.level: '%s' is not error|warn|info|debug",
                           value);
    }
    return AAS_ERR_OK;
}

static void aas_conf_env_name(const char *key, const char *suffix, char *out,
                              size_t size);

/* Read a secret file whole (a PEM key spans lines), without the final
 * line break; refuse one longer than the buffer rather than cut it. */
static aas_err_t aas_conf_read_secret_file(const char *key, const char *path,
                                           char *buf, size_t size,
                                           char *errstr, size_t errstr_size) {
    FILE *fp = fopen(path, "r");
    if (!fp)
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                           "%s.file: cannot open %s: %s", key, path,
                           strerror(errno));
    size_t n = fread(buf, 1, size - 1, fp);
    int more = fgetc(fp) != EOF, bad = ferror(fp);
    fclose(fp);
    if (bad)
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "%s.file: cannot read %s", key,
                           path);
    if (more)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%s.file: %s is longer than %zu bytes", key, path, size - 1);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    return AAS_ERR_OK;
}

aas_err_t aas_conf_set(aas_conf_t *conf, const char *key, const char *value,
                       aas_conf_src_t src, char *errstr, size_t errstr_size) {
    size_t klen = strlen(key);
    /* "<secret>.file = path": read the secret from a file. */
    if (klen > 5 && strcmp(key + klen - 5, ".file") == 0) {
        char base[128];
        if (klen - 5 >= sizeof(base))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "unknown configuration key '%s'", key);
        memcpy(base, key, klen - 5);
        base[klen - 5] = '\0';
        const aas_conf_def_t *bdef = aas_conf_find_def(conf, base);
        if (aas_conf_is_secret(bdef, base)) {
            char secret[AAS_CONF_MAX_VALUE + 1];
            aas_err_t err = aas_conf_read_secret_file(
                base, value, secret, sizeof(secret), errstr, errstr_size);
            if (err) return err;
            err = aas_conf_put(conf, base, secret, bdef);
            memset(secret, 0, sizeof(secret));
            return err;
        }
    }
    const aas_conf_def_t *def = aas_conf_find_def(conf, key);
    if (!def && strncmp(key, "kafka.", 6) != 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "unknown configuration key '%s' (see --help)", key);
    if (src == AAS_CONF_SRC_ARGV && aas_conf_is_secret(def, key)) {
        /* Name the variable only where aas_conf_load_env() reads one: the
         * table's keys and the listed librdkafka secrets. */
        int in_env = def != NULL;
        for (int i = 0; !in_env && aas_conf_kafka_secrets[i]; i++)
            in_env = strcmp(key, aas_conf_kafka_secrets[i]) == 0;
        char env[300] = "";
        if (in_env) {
            char name[280];
            aas_conf_env_name(key, NULL, name, sizeof(name));
            snprintf(env, sizeof(env), "the environment (%s), ", name);
        }
        return aas_err_set(
            errstr, errstr_size, AAS_ERR_INVAL,
            "%s is a secret and is refused on the command line (it would show "
            "in ps): set it in %sthe config file (-c), or give %s.file=<path>",
            key, env, key);
    }
    aas_err_t err = aas_conf_validate(def, key, value, errstr, errstr_size);
    if (err) return err;
    return aas_conf_put(conf, key, value, def);
}

aas_err_t aas_conf_set_arg(aas_conf_t *conf, const char *kv, char *errstr,
                           size_t errstr_size) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "expected key=value, got '%s'", kv);
    char key[256];
    size_t klen = (size_t)(eq - kv);
    if (klen >= sizeof(key))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "key too long");
    memcpy(key, kv, klen);
    key[klen] = '\0';
    return aas_conf_set(conf, key, eq + 1, AAS_CONF_SRC_ARGV, errstr,
                        errstr_size);
}

static char *aas_conf_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

aas_err_t aas_conf_load_file(aas_conf_t *conf, const char *path, char *errstr,
                             size_t errstr_size) {
    FILE *fp = fopen(path, "r");
    if (!fp)
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                           "cannot open config file %s: %s", path,
                           strerror(errno));
    char line[AAS_CONF_MAX_VALUE + 256];
    int lineno = 0;
    aas_err_t err = AAS_ERR_OK;
    while (!err && fgets(line, sizeof(line), fp)) {
        lineno++;
        char *s = aas_conf_trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "%s:%d: expected key = value", path, lineno);
            break;
        }
        *eq = '\0';
        char sub[512];
        err = aas_conf_set(conf, aas_conf_trim(s), aas_conf_trim(eq + 1),
                           AAS_CONF_SRC_FILE, sub, sizeof(sub));
        if (err) aas_err_set(errstr, errstr_size, err, "%s:%d: %s", path, lineno, sub);
    }
    fclose(fp);
    return err;
}

/* redis.timeout.ms -> AAS_REDIS_TIMEOUT_MS */
static void aas_conf_env_name(const char *key, const char *suffix, char *out,
                              size_t size) {
    size_t n = 0;
    const char *parts[2] = {key, suffix};
    n += (size_t)snprintf(out, size, "AAS_");
    for (int p = 0; p < 2; p++)
        for (const char *c = parts[p]; c && *c && n + 1 < size; c++)
            out[n++] = (*c == '.' || *c == '-') ? '_' : (char)toupper((unsigned char)*c);
    out[n] = '\0';
}

aas_err_t aas_conf_load_env(aas_conf_t *conf, char *errstr,
                            size_t errstr_size) {
    /* Known keys, and the secrets' .file forms. kafka.* beyond the table
     * come from the config file or -X. */
    for (size_t i = 0; i < conf->n; i++) {
        char name[300];
        /* Copy: aas_conf_set may realloc entries. */
        char key[256];
        snprintf(key, sizeof(key), "%s", conf->entries[i].key);
        int secret = aas_conf_is_secret(conf->entries[i].def, key);
        aas_conf_env_name(key, NULL, name, sizeof(name));
        const char *v = getenv(name);
        if (v) {
            aas_err_t err = aas_conf_set(conf, key, v, AAS_CONF_SRC_ENV, errstr,
                                         errstr_size);
            if (err) return err;
        }
        if (secret) {
            aas_conf_env_name(key, ".file", name, sizeof(name));
            char fkey[300];
            snprintf(fkey, sizeof(fkey), "%s.file", key);
            if ((v = getenv(name))) {
                aas_err_t err = aas_conf_set(conf, fkey, v, AAS_CONF_SRC_ENV,
                                             errstr, errstr_size);
                if (err) return err;
            }
        }
    }
    for (int i = 0; aas_conf_kafka_secrets[i]; i++) {
        char name[300];
        aas_conf_env_name(aas_conf_kafka_secrets[i], NULL, name, sizeof(name));
        const char *v = getenv(name);
        if (v) {
            aas_err_t err = aas_conf_set(conf, aas_conf_kafka_secrets[i], v,
                                         AAS_CONF_SRC_ENV, errstr, errstr_size);
            if (err) return err;
        }
    }
    return AAS_ERR_OK;
}

const char *aas_conf_get(const aas_conf_t *conf, const char *key) {
    aas_conf_entry_t *e = aas_conf_find(conf, key);
    return e ? e->value : NULL;
}

long long aas_conf_get_int(const aas_conf_t *conf, const char *key) {
    const char *v = aas_conf_get(conf, key);
    if (!v) return 0;
    if (strcmp(v, "true") == 0) return 1;
    if (strcmp(v, "false") == 0) return 0;
    return strtoll(v, NULL, 10);
}

void aas_conf_fill(const aas_conf_t *conf, void *out) {
    aas_conf_fill_defs(conf, conf->program_defs, out);
}

void aas_conf_fill_defs(const aas_conf_t *conf, const aas_conf_def_t *defs, void *out) {
    for (const aas_conf_def_t *d = defs; d && d->key; d++) {
        if (!d->field) continue;
        char *at = (char *)out + d->field - 1;
        switch (d->type) {
        case AAS_CONF_INT:
            *(int64_t *)(void *)at = aas_conf_get_int(conf, d->key);
            break;
        case AAS_CONF_BOOL:
            *(int *)(void *)at = aas_conf_get_int(conf, d->key) != 0;
            break;
        case AAS_CONF_STR:
            *(const char **)(void *)at = aas_conf_get(conf, d->key);
            break;
        }
    }
}

aas_err_t aas_conf_each_kafka(const aas_conf_t *conf,
                              aas_err_t (*fn)(void *, const char *,
                                              const char *, char *, size_t),
                              void *opaque, char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < conf->n; i++) {
        const aas_conf_entry_t *e = &conf->entries[i];
        if (strncmp(e->key, "kafka.", 6) != 0 || !e->value) continue;
        aas_err_t err = fn(opaque, e->key + 6, e->value, errstr, errstr_size);
        if (err) return err;
    }
    return AAS_ERR_OK;
}

static void aas_conf_each_def(const aas_conf_t *conf,
                              void (*fn)(const aas_conf_def_t *, FILE *),
                              FILE *fp) {
    const aas_conf_def_t *tabs[3] = {aas_conf_common, conf->lib_defs, conf->program_defs};
    for (int t = 0; t < 3; t++)
        for (const aas_conf_def_t *d = tabs[t]; d && d->key; d++) fn(d, fp);
}

static void aas_conf_help_row(const aas_conf_def_t *d, FILE *fp) {
    fprintf(fp, "  %-28s %s (default: %s)\n", d->key, d->doc,
            d->def ? d->def : "unset");
}

static void aas_conf_md_row(const aas_conf_def_t *d, FILE *fp) {
    fprintf(fp, "| `%s` | %s | %s%s%s | %s%s |\n", d->key,
            d->type == AAS_CONF_INT ? "int"
                                    : d->type == AAS_CONF_BOOL ? "bool" : "string",
            d->def ? "`" : "", d->def ? d->def : "unset", d->def ? "`" : "",
            d->doc, d->secret ? " **secret**" : "");
}

aas_err_t aas_conf_write_shared(const aas_conf_t *conf, const char *const *extra, FILE *fp,
                                char *errstr, size_t errstr_size) {
    size_t n_common = sizeof(aas_conf_common) / sizeof(aas_conf_common[0]);
    for (size_t i = 0; i < conf->n; i++) {
        const aas_conf_entry_t *e = &conf->entries[i];
        int common = !e->def || (e->def >= aas_conf_common && e->def < aas_conf_common + n_common);
        for (size_t k = 0; !common && extra && extra[k]; k++) common = !strcmp(extra[k], e->key);
        if (!common || !e->value) continue;
        if (strchr(e->value, '\n') || fprintf(fp, "%s = %s\n", e->key, e->value) < 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "cannot write key %s", e->key);
    }
    return AAS_ERR_OK;
}

void aas_conf_print_help(const aas_conf_t *conf, FILE *fp) {
    aas_conf_each_def(conf, aas_conf_help_row, fp);
}

void aas_conf_print_markdown(const aas_conf_t *conf, FILE *fp) {
    fprintf(fp, "| key | type | default | meaning |\n|---|---|---|---|\n");
    aas_conf_each_def(conf, aas_conf_md_row, fp);
}
