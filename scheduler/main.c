/*
 * aas-scheduler - watch the fleet's load.
 *
 *   aas-scheduler [options] run
 *   aas-scheduler [options] status [--json]
 *
 * `run` scales the fleet with the load (scheduler.c); `status` prints, per
 * job topic, each partition's high watermark, the worker group's committed
 * offset and the lag, as measured now (a value that could not be measured
 * prints as "?", never as 0), the live workers and the latest decisions.
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
#include "scheduler.h"
#include "store.h"

static void usage(FILE *fp, const aas_conf_t *conf) {
    fprintf(fp,
"Usage: aas-scheduler [options] run | status [--json]\n"
"Scale the aas fleet with its load (run), or show the fleet at a glance\n"
"(status: lag per partition, live workers, latest decisions).\n\n"
"Options:\n"
"  -c, --config FILE      read key = value settings from FILE\n"
"  -X, --set KEY=VALUE    set one key (repeatable; not for secrets)\n"
"  -b, --brokers LIST     same as -X kafka.bootstrap.servers=LIST\n"
"      --json             one JSON object per partition\n"
"      --config-reference the keys below as a Markdown table\n"
"  -h, --help             this text\n"
"      --version          program and library versions\n\n"
"Exit codes: 0 ok, 1 a measurement failed, 2 usage.  run stops on SIGTERM\n"
"or SIGINT and then stops the workers it started.\n\nKeys:\n");
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

static volatile sig_atomic_t stop = 0;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

/* Live workers (heartbeats) and the latest decisions, from Redis. */
static int print_fleet(const aas_conf_t *conf, int json) {
    aas_store_t *st = NULL;
    char why[512], **items = NULL;
    size_t n = 0;
    if (aas_cli_store_new(conf, &st, why, sizeof(why)) ||
        aas_store_heartbeats(st, &items, &n, why, sizeof(why))) {
        fprintf(stderr, "aas-scheduler: workers unknown: %s\n", why);
        aas_store_destroy(st);
        return 1;
    }
    if (!json) printf("\nworkers: %zu live\n", n);
    for (size_t i = 0; i < n; i++) printf(json ? "{\"worker\":%s}\n" : "  %s\n", items[i]);
    aas_store_list_free(items, n);
    int rc = 0;
    if (aas_store_decisions(st, 5, &items, &n, why, sizeof(why)) == AAS_ERR_OK) {
        if (!json) printf("\nlatest decisions (newest first):\n");
        for (size_t i = 0; i < n; i++)
            printf(json ? "{\"decision\":%s}\n" : "  %s\n", items[i]);
        aas_store_list_free(items, n);
    } else {
        rc = 1;
    }
    aas_store_destroy(st);
    return rc;
}

int main(int argc, char **argv) {
    aas_conf_t *conf = NULL;
    if (aas_conf_new(aas_scheduler_conf_defs, &conf)) return 1;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 'X'},
        {"brokers", required_argument, NULL, 'b'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},
        {"config-reference", no_argument, NULL, 'R'},
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
        case 'R': aas_conf_print_markdown(conf, stdout); goto out;
        default: usage(stderr, NULL); rc = 2; goto out;
        }
    }
    if (optind != argc - 1 ||
        (strcmp(argv[optind], "status") != 0 && strcmp(argv[optind], "run") != 0)) {
        fprintf(stderr, "aas-scheduler: expected the command 'run' or 'status' "
                        "(see --help)\n");
        rc = 2;
        goto out;
    }
    int run = strcmp(argv[optind], "run") == 0;
    char why[512];
    if (aas_cli_conf_load(conf, config_file, xargs, nx, why, sizeof(why))) {
        fprintf(stderr, "aas-scheduler: %s\n", why);
        rc = 2;
        goto out;
    }
    if (run) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (aas_scheduler_run(conf, &stop, why, sizeof(why))) {
            AAS_LOG(AAS_LOG_ERROR, "scheduler", "%s", why);
            rc = 1;
        }
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
    rc |= print_fleet(conf, json);
out:
    aas_observer_destroy(o);
    free(brokers);
    free(xargs);
    aas_conf_destroy(conf);
    return rc;
}
