/*
 * aas-scheduler - watch the fleet's load.
 *
 *   aas-scheduler [options] status [--json]
 *
 * `status` prints, per job topic, each partition's high watermark, the
 * worker group's committed offset and the lag, as measured now; a value
 * that could not be measured prints as "?" (never as 0).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "log.h"
#include "observe.h"

static const aas_conf_def_t aas_scheduler_conf_defs[] = {
    {"worker.group", AAS_CONF_STR, "aas-workers", 0, 0, 0,
     "Kafka consumer group of the fleet"},
    {"scheduler.timeout.ms", AAS_CONF_INT, "10000", 100, 600000, 0,
     "Timeout of each Kafka query"},
    AAS_CONF_END};

static void usage(FILE *fp, const aas_conf_t *conf) {
    fprintf(fp,
"Usage: aas-scheduler [options] status [--json]\n"
"Report the aas fleet's Kafka load: lag of the worker group per partition.\n\n"
"Options:\n"
"  -c, --config FILE      read key = value settings from FILE\n"
"  -X, --set KEY=VALUE    set one key (repeatable; not for secrets)\n"
"  -b, --brokers LIST     same as -X kafka.bootstrap.servers=LIST\n"
"      --json             one JSON object per partition\n"
"  -h, --help             this text\n"
"      --version          program and library versions\n\n"
"Exit codes: 0 ok, 1 a measurement failed, 2 usage.\n\nKeys:\n");
    if (conf) aas_conf_print_help(conf, fp);
}

static int print_topic(aas_observer_t *o, const char *topic, int timeout_ms,
                       int json) {
    aas_partition_lag_t *p = NULL;
    size_t n = 0;
    char why[512];
    if (aas_observer_lag(o, topic, timeout_ms, &p, &n, why, sizeof(why))) {
        fprintf(stderr, "aas-scheduler: %s\n", why);
        return 1;
    }
    int64_t total = 0;
    int unknown = 0;
    if (!json) printf("%-20s %9s %12s %12s %10s\n", "topic", "partition", "high",
                      "committed", "lag");
    for (size_t i = 0; i < n; i++) {
        char hi[24] = "?", co[24] = "?", lag[24] = "?";
        if (p[i].high >= 0) snprintf(hi, sizeof(hi), "%lld", (long long)p[i].high);
        if (p[i].committed >= 0)
            snprintf(co, sizeof(co), "%lld", (long long)p[i].committed);
        if (p[i].lag >= 0) {
            snprintf(lag, sizeof(lag), "%lld", (long long)p[i].lag);
            total += p[i].lag;
        } else {
            unknown = 1;
        }
        if (json)
            printf("{\"topic\":\"%s\",\"partition\":%d,\"high\":%s,\"committed\":%s,"
                   "\"lag\":%s}\n", topic, (int)p[i].partition,
                   p[i].high >= 0 ? hi : "null", p[i].committed >= 0 ? co : "null",
                   p[i].lag >= 0 ? lag : "null");
        else
            printf("%-20s %9d %12s %12s %10s\n", topic, (int)p[i].partition, hi, co,
                   lag);
    }
    if (!json)
        printf("%-20s %9s %12s %12s %10lld%s\n", topic, "total", "", "",
               (long long)total, unknown ? " (+unknown)" : "");
    free(p);
    return unknown;
}

int main(int argc, char **argv) {
    aas_conf_t *conf = NULL;
    if (aas_conf_new(aas_scheduler_conf_defs, &conf)) return 1;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 'X'},
        {"brokers", required_argument, NULL, 'b'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    const char *config_file = NULL;
    char **xargs = calloc((size_t)argc + 1, sizeof(*xargs));
    char *brokers = NULL;
    size_t nx = 0;
    int c, rc = 0, json = 0;
    aas_observer_t *o = NULL;
    if (!xargs) { rc = 1; goto out; }
    while ((c = getopt_long(argc, argv, "c:X:b:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_file = optarg; break;
        case 'X': xargs[nx++] = optarg; break;
        case 'b':
            free(brokers);
            if (!(brokers = malloc(strlen(optarg) + 32))) { rc = 1; goto out; }
            sprintf(brokers, "kafka.bootstrap.servers=%s", optarg);
            xargs[nx++] = brokers;
            break;
        case 'j': json = 1; break;
        case 'h': usage(stdout, conf); goto out;
        case 'V': aas_cli_print_version(stdout, "aas-scheduler"); goto out;
        default: usage(stderr, NULL); rc = 2; goto out;
        }
    }
    if (optind != argc - 1 || strcmp(argv[optind], "status") != 0) {
        fprintf(stderr, "aas-scheduler: expected the command 'status' (see --help)\n");
        rc = 2;
        goto out;
    }
    char why[512];
    if (aas_cli_conf_load(conf, config_file, xargs, nx, why, sizeof(why))) {
        fprintf(stderr, "aas-scheduler: %s\n", why);
        rc = 2;
        goto out;
    }
    if (aas_observer_new(conf, aas_conf_get(conf, "worker.group"), &o, why,
                         sizeof(why))) {
        fprintf(stderr, "aas-scheduler: %s\n", why);
        rc = 1;
        goto out;
    }
    int timeout = (int)aas_conf_get_int(conf, "scheduler.timeout.ms");
    const char *topics[] = {aas_conf_get(conf, "topic.infer"),
                            aas_conf_get(conf, "topic.train")};
    for (int i = 0; i < 2; i++) rc |= print_topic(o, topics[i], timeout, json);
out:
    aas_observer_destroy(o);
    free(brokers);
    free(xargs);
    aas_conf_destroy(conf);
    return rc;
}
