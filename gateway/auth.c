/* auth.c - the gateway's API keys; see auth.h. */
#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "log.h"
#include "store.h"

/* A keys file larger than this is a mistake, not a key list. */
#define AAS_GW_AUTH_FILE_MAX_LINE 1024

typedef enum { MODE_NONE, MODE_FILE, MODE_REDIS } aas_gw_auth_mode_t;

struct aas_gw_auth_s {
    aas_gw_auth_mode_t mode;
    char *file;
    int refresh_s;
    const aas_conf_t *conf;
    aas_store_t *store;           /* mode redis: the refresh thread's */
    struct timespec file_mtime;   /* mode file: of the table loaded */
    off_t file_size;
    pthread_rwlock_t lock;        /* guards table */
    aas_apikey_table_t *table;    /* NULL until the first load */
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int stop, thread_started;
    pthread_t thread;
};

/* Read the keys file into a new table.  Reasons name the line, never a key. */
static aas_err_t load_file(aas_gw_auth_t *a, aas_apikey_table_t **out, char *errstr,
                           size_t errstr_size) {
    FILE *fp = fopen(a->file, "r");
    if (!fp)
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "keys file %.256s: %s", a->file,
                           strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb)) {
        fclose(fp);
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "keys file %.256s: %s", a->file,
                           strerror(errno));
    }
    /* As ssh with its keys: secrets others can read are refused. */
    if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
        fclose(fp);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "keys file %.256s is readable by group or others (mode %03o): "
                           "chmod 600 it", a->file, (unsigned)(sb.st_mode & 0777));
    }
    aas_apikey_table_t *t = NULL;
    aas_err_t err = aas_apikey_table_new(&t);
    if (err) {
        fclose(fp);
        return aas_err_set(errstr, errstr_size, err, "out of memory");
    }
    char line[AAS_GW_AUTH_FILE_MAX_LINE + 2], why[256];
    int no = 0;
    while (!err && fgets(line, sizeof(line), fp)) {
        no++;
        size_t len = strlen(line);
        if (len > AAS_GW_AUTH_FILE_MAX_LINE) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "keys file %.256s line %d: longer than %d bytes", a->file, no,
                              AAS_GW_AUTH_FILE_MAX_LINE);
            break;
        }
        const char *s = line + strspn(line, " \t");
        if (*s == '#' || *s == '\n' || *s == '\r' || !*s) continue;
        if ((err = aas_apikey_table_add_line(t, s, why, sizeof(why))))
            aas_err_set(errstr, errstr_size, err, "keys file %.256s line %d: %s", a->file, no,
                        why);
    }
    if (!err && ferror(fp))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "keys file %.256s: read error",
                          a->file);
    fclose(fp);
    if (err) {
        aas_apikey_table_destroy(t);
        return err;
    }
    a->file_mtime = sb.st_mtim;
    a->file_size = sb.st_size;
    *out = t;
    return AAS_ERR_OK;
}

static aas_err_t load_redis(aas_gw_auth_t *a, aas_apikey_table_t **out, char *errstr,
                            size_t errstr_size) {
    aas_err_t err;
    if (!a->store && (err = aas_cli_store_new(a->conf, &a->store, errstr, errstr_size)))
        return err;
    return aas_store_apikey_table(a->store, out, errstr, errstr_size);
}

/* Has the keys file changed since it was loaded? */
static int file_changed(const aas_gw_auth_t *a) {
    struct stat sb;
    if (stat(a->file, &sb)) return 1; /* gone: say so through a reload */
    return sb.st_size != a->file_size || sb.st_mtim.tv_sec != a->file_mtime.tv_sec ||
           sb.st_mtim.tv_nsec != a->file_mtime.tv_nsec;
}

/* Load and swap in a new table; the old one stays on failure. */
static aas_err_t reload(aas_gw_auth_t *a, char *errstr, size_t errstr_size) {
    aas_apikey_table_t *t = NULL, *old;
    aas_err_t err = a->mode == MODE_FILE ? load_file(a, &t, errstr, errstr_size)
                                         : load_redis(a, &t, errstr, errstr_size);
    if (err) return err;
    pthread_rwlock_wrlock(&a->lock);
    old = a->table;
    a->table = t;
    pthread_rwlock_unlock(&a->lock);
    if (!old || aas_apikey_table_size(old) != aas_apikey_table_size(t))
        AAS_LOG(AAS_LOG_INFO, "auth", "api keys loaded keys=%zu source=%s",
                aas_apikey_table_size(t), a->mode == MODE_FILE ? "file" : "redis");
    aas_apikey_table_destroy(old);
    return AAS_ERR_OK;
}

static void *refresh_main(void *arg) {
    aas_gw_auth_t *a = arg;
    int failing = 0;
    pthread_mutex_lock(&a->stop_mu);
    while (!a->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += a->refresh_s;
        while (!a->stop && pthread_cond_timedwait(&a->stop_cv, &a->stop_mu, &until) != ETIMEDOUT)
            ;
        if (a->stop) break;
        pthread_mutex_unlock(&a->stop_mu);
        char why[512];
        if (a->mode == MODE_REDIS || file_changed(a)) {
            aas_err_t err = reload(a, why, sizeof(why));
            /* One line when it starts failing and one when it recovers,
             * not one per period. */
            if (err && !failing)
                AAS_LOG(AAS_LOG_WARN, "auth", "api keys not reloaded (the last table stays): %s",
                        why);
            else if (!err && failing)
                AAS_LOG(AAS_LOG_INFO, "auth", "api keys reloaded again");
            failing = err != AAS_ERR_OK;
        }
        pthread_mutex_lock(&a->stop_mu);
    }
    pthread_mutex_unlock(&a->stop_mu);
    return NULL;
}

aas_err_t aas_gw_auth_new(const char *mode, const char *file, int refresh_s,
                          const aas_conf_t *conf, aas_gw_auth_t **out, char *errstr,
                          size_t errstr_size) {
    aas_gw_auth_mode_t m;
    if (!mode || !strcmp(mode, "none")) m = MODE_NONE;
    else if (!strcmp(mode, "file")) m = MODE_FILE;
    else if (!strcmp(mode, "redis")) m = MODE_REDIS;
    else
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "gateway.auth '%.32s': want none, file or redis", mode);
    if (m == MODE_FILE && (!file || !file[0]))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "gateway.auth = file needs gateway.auth.file");
    aas_gw_auth_t *a = calloc(1, sizeof(*a));
    if (!a) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    a->mode = m;
    a->refresh_s = refresh_s > 0 ? refresh_s : 1;
    a->conf = conf;
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->stop_mu, NULL);
    pthread_cond_init(&a->stop_cv, NULL);
    aas_err_t err = AAS_ERR_OK;
    if (m == MODE_FILE && !(a->file = strdup(file)))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (!err && m != MODE_NONE) {
        char why[512];
        err = reload(a, m == MODE_FILE ? errstr : why, m == MODE_FILE ? errstr_size : sizeof(why));
        if (err && m == MODE_REDIS) {
            AAS_LOG(AAS_LOG_WARN, "auth", "api keys not loaded yet (retried every %d s; "
                    "requests get 503 until then): %s", a->refresh_s, why);
            err = AAS_ERR_OK;
        }
        if (!err) {
            if (pthread_create(&a->thread, NULL, refresh_main, a))
                err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "cannot start a thread");
            else a->thread_started = 1;
        }
    }
    if (err) {
        aas_gw_auth_destroy(a);
        return err;
    }
    *out = a;
    return AAS_ERR_OK;
}

void aas_gw_auth_destroy(aas_gw_auth_t *a) {
    if (!a) return;
    if (a->thread_started) {
        pthread_mutex_lock(&a->stop_mu);
        a->stop = 1;
        pthread_cond_signal(&a->stop_cv);
        pthread_mutex_unlock(&a->stop_mu);
        pthread_join(a->thread, NULL);
    }
    aas_apikey_table_destroy(a->table);
    aas_store_destroy(a->store);
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->stop_mu);
    pthread_cond_destroy(&a->stop_cv);
    free(a->file);
    free(a);
}

int aas_gw_auth_enabled(const aas_gw_auth_t *a) { return a && a->mode != MODE_NONE; }

size_t aas_gw_auth_keys(aas_gw_auth_t *a) {
    pthread_rwlock_rdlock(&a->lock);
    size_t n = a->table ? aas_apikey_table_size(a->table) : 0;
    pthread_rwlock_unlock(&a->lock);
    return n;
}

aas_gw_auth_result_t aas_gw_auth_check(aas_gw_auth_t *a, const char *authorization,
                                       char tenant[AAS_ID_MAX + 1], unsigned *scopes,
                                       aas_jobsig_key_t *sig, int *has_key) {
    *has_key = 0;
    if (!aas_gw_auth_enabled(a)) {
        tenant[0] = '\0'; /* none: the client's client.tenant applies */
        *scopes = AAS_APIKEY_SCOPE_ALL;
        return AAS_GW_AUTH_OK;
    }
    if (!authorization) return AAS_GW_AUTH_MISSING;
    /* RFC 6750: "Bearer" is case-insensitive, then one or more spaces. */
    if (strncasecmp(authorization, "Bearer ", 7)) return AAS_GW_AUTH_MALFORMED;
    const char *key = authorization + 7;
    key += strspn(key, " ");
    size_t len = strcspn(key, " \t");
    if (!len || key[len + strspn(key + len, " \t")]) return AAS_GW_AUTH_MALFORMED;
    aas_gw_auth_result_t rc = AAS_GW_AUTH_UNKNOWN;
    pthread_rwlock_rdlock(&a->lock);
    if (!a->table) {
        rc = AAS_GW_AUTH_UNAVAILABLE;
    } else {
        const char *t = aas_apikey_table_find(a->table, key, len, scopes);
        if (t) {
            snprintf(tenant, AAS_ID_MAX + 1, "%s", t);
            rc = AAS_GW_AUTH_OK;
        }
    }
    pthread_rwlock_unlock(&a->lock);
    /* The caller's own key signs its jobs, so a worker checking
     * signatures (worker.auth = keys) runs them as its tenant. */
    if (rc == AAS_GW_AUTH_OK && !aas_jobsig_key_from_apikey(key, len, sig)) *has_key = 1;
    return rc;
}
