/* cli.c - shared command-line plumbing; see cli.h. */
#include "cli.h"

#include <dnnl.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "log.h"

aas_err_t aas_cli_conf_load(aas_conf_t *conf, const char *config_file,
                            char *const *xargs, size_t n_xargs, char *errstr,
                            size_t errstr_size) {
    aas_err_t err;
    if (config_file &&
        (err = aas_conf_load_file(conf, config_file, errstr, errstr_size)))
        return err;
    if ((err = aas_conf_load_env(conf, errstr, errstr_size))) return err;
    for (size_t i = 0; i < n_xargs; i++)
        if ((err = aas_conf_set_arg(conf, xargs[i], errstr, errstr_size)))
            return err;
    aas_log_level_set(
        (aas_log_level_t)aas_log_level_parse(aas_conf_get(conf, "log.level")));
    return AAS_ERR_OK;
}

void aas_cli_print_version(FILE *fp, const char *program) {
    const dnnl_version_t *dv = dnnl_version();
    fprintf(fp, "%s %s\n", program, AAS_VERSION);
    fprintf(fp, "  librdkafka %s\n", rd_kafka_version_str());
    fprintf(fp, "  hiredis    %d.%d.%d\n", HIREDIS_MAJOR, HIREDIS_MINOR,
            HIREDIS_PATCH);
    fprintf(fp, "  avro-c     %s\n", AAS_AVRO_VERSION);
    /* Distribution builds have no git hash ("N/A"): print it only when
     * there is one. */
    if (dv) {
        int hash = dv->hash && dv->hash[0] && strcmp(dv->hash, "N/A") != 0;
        fprintf(fp, "  oneDNN     %d.%d.%d%s%s%s\n", dv->major, dv->minor, dv->patch,
                hash ? " (" : "", hash ? dv->hash : "", hash ? ")" : "");
    }
}

aas_err_t aas_cli_store_new(const aas_conf_t *conf, aas_store_t **out,
                            char *errstr, size_t errstr_size) {
    aas_store_conf_t sc;
    aas_store_conf_init(&sc);
    sc.host = aas_conf_get(conf, "redis.host");
    sc.port = (int)aas_conf_get_int(conf, "redis.port");
    sc.user = aas_conf_get(conf, "redis.user");
    sc.password = aas_conf_get(conf, "redis.password");
    sc.db = (int)aas_conf_get_int(conf, "redis.db");
    sc.timeout_ms = (int)aas_conf_get_int(conf, "redis.timeout.ms");
    sc.ttl_s = (int)aas_conf_get_int(conf, "redis.ttl.s");
    sc.prefix = aas_conf_get(conf, "redis.prefix");
    sc.sentinels = aas_conf_get(conf, "redis.sentinels");
    sc.sentinel_master = aas_conf_get(conf, "redis.sentinel.master");
    sc.wait_replicas = (int)aas_conf_get_int(conf, "redis.wait.replicas");
    sc.wait_timeout_ms = (int)aas_conf_get_int(conf, "redis.wait.timeout.ms");
    return aas_store_new(&sc, out, errstr, errstr_size);
}
