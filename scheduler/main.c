/*
 * aas-scheduler - watch the fleet's load.
 *
 *   aas-scheduler [options] run
 *   aas-scheduler [options] status [--json] [--sample-ms MS]
 *
 * `run` scales the fleet with the load (scheduler.c); `status` prints, per
 * job topic, each partition's high watermark, the worker group's committed
 * offset, the lag, the age of its oldest queued job, its arrival rate and
 * the worker holding it, as measured now (a value that could not be
 * measured prints as "?", never as 0); then the live workers of the
 * group (partitions, rates, counters), those of other consumer groups
 * apart (not counted), and the latest decisions with their reasons.
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "conf.h"
#include "heartbeat.h"
#include "job.h"
#include "lane.h"
#include "log.h"
#include "observe.h"
#include "scheduler.h"
#include "skew.h"
#include "store.h"

static void usage(FILE *fp, const aas_conf_t *conf) {
    fprintf(fp,
"Usage: aas-scheduler [options] run | status [--json]\n"
"Scale the aas fleet with its load (run), or show the fleet at a glance\n"
"(status: lag, oldest queued job and arrivals per partition, live workers\n"
"with their partitions and rates, latest decisions with reasons).\n\n"
"Options:\n"
"  -c, --config FILE      read key = value settings from FILE\n"
"  -X, --set KEY=VALUE    set one key (repeatable; not for secrets)\n"
"  -b, --brokers LIST     same as -X kafka.bootstrap.servers=LIST\n"
"      --json             status as JSON, one object per line\n"
"      --sample-ms MS     status: watch the watermarks this long to measure\n"
"                         arrival rates (default 1000; 0: do not)\n"
"      --config-reference the keys below as a Markdown table\n"
"  -h, --help             this text\n"
"      --version          program and library versions\n\n"
"Exit codes: 0 ok, 1 a measurement failed, 2 usage.  run stops on SIGTERM\n"
"or SIGINT and then stops the workers it started.\n\nKeys:\n");
    if (conf) aas_conf_print_help(conf, fp);
}

static volatile sig_atomic_t stop = 0;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

/* One topic as status measures it. */
typedef struct {
    const char *topic;
    aas_partition_lag_t *p, *p2; /* first sample, second (arrivals) */
    size_t n, n2;
    double t, t2;                /* their times, monotonic s */
    int failed;                  /* the lag could not be measured */
    int optional;                /* a lane topic: skipped if it does not exist */
    int absent;                  /* optional and not there */
} status_topic_t;

static double mono_s(void) { return (double)aas_mono_us() / 1e6; }

static void measure_topic(aas_observer_t *o, const aas_scheduler_conf_t *c,
                          status_topic_t *st) {
    char why[512];
    int timeout = (int)c->timeout_ms;
    st->t = mono_s();
    aas_err_t err = aas_observer_lag(o, st->topic, timeout, &st->p, &st->n, why, sizeof(why));
    if (err == AAS_ERR_NOT_FOUND && st->optional) {
        st->absent = 1;
        return;
    }
    if (err) {
        fprintf(stderr, "aas-scheduler: %s\n", why);
        st->failed = 1;
        return;
    }
    if (aas_observer_oldest(o, st->topic, st->p, st->n,
                            (int)c->age_timeout_ms, why, sizeof(why)))
        fprintf(stderr, "aas-scheduler: oldest queued job of %s unknown: %s\n", st->topic,
                why);
}

static void resample_topic(aas_observer_t *o, const aas_scheduler_conf_t *c,
                           status_topic_t *st) {
    char why[512];
    if (st->failed || st->absent) return;
    st->t2 = mono_s();
    if (aas_observer_lag(o, st->topic, (int)c->timeout_ms, &st->p2, &st->n2, why,
                         sizeof(why))) {
        st->p2 = NULL;
        st->n2 = 0;
    }
}

/* Arrivals per second on partition i between the two samples; < 0 unknown. */
static double arrival_of(const status_topic_t *st, size_t i) {
    if (!st->p2 || i >= st->n2 || st->t2 <= st->t || st->p[i].high < 0 ||
        st->p2[i].high < 0)
        return -1;
    return (double)(st->p2[i].high - st->p[i].high) / (st->t2 - st->t);
}

/* The id of the worker holding partition p of the topic, or NULL. */
static const char *owner_of(const aas_skew_worker_t *w, size_t nw, int32_t p) {
    for (size_t i = 0; i < nw; i++)
        for (size_t k = 0; k < w[i].n_partitions; k++)
            if (w[i].partitions[k] == p) return w[i].id;
    return NULL;
}

static void fmt_num(char *buf, size_t size, int64_t v) {
    if (v >= 0) snprintf(buf, size, "%lld", (long long)v);
    else snprintf(buf, size, "?");
}

/* Age of partition i: "-" nothing queued, "?" unknown, else seconds. */
static double age_of(const aas_partition_lag_t *p, int64_t now_ms) {
    return aas_observe_oldest_age_s(p, 1, now_ms, NULL);
}

static int print_topic(const status_topic_t *st, char **hb, size_t nhb, double completion,
                       int json) {
    if (st->failed) return 1;
    int64_t now_ms = aas_now_ms();
    aas_skew_worker_t *w = calloc(nhb > 0 ? nhb : 1, sizeof(*w));
    size_t nw = 0;
    if (!w) return 1;
    for (size_t i = 0; i < nhb; i++)
        if (aas_skew_worker_parse(hb[i], st->topic, now_ms, &w[nw]) == 0) nw++;
    int64_t total = 0;
    int unknown = 0;
    double in_total = 0;
    int in_known = st->p2 != NULL;
    if (!json)
        printf("%-20s %9s %12s %12s %10s %8s %8s  %s\n", "topic", "partition", "high",
               "committed", "lag", "oldest", "in/s", "worker");
    for (size_t i = 0; i < st->n; i++) {
        const aas_partition_lag_t *p = &st->p[i];
        char hi[24], co[24], lag[24], age[24] = "?", in[24] = "?";
        fmt_num(hi, sizeof(hi), p->high);
        fmt_num(co, sizeof(co), p->committed);
        fmt_num(lag, sizeof(lag), p->lag);
        if (p->lag >= 0) total += p->lag;
        else unknown = 1;
        double a = age_of(p, now_ms);
        if (p->lag == 0) snprintf(age, sizeof(age), "-");
        else if (a >= 0) snprintf(age, sizeof(age), "%.1fs", a);
        double r = arrival_of(st, i);
        if (r >= 0) {
            snprintf(in, sizeof(in), "%.1f", r);
            in_total += r;
        } else {
            in_known = 0;
        }
        const char *who = owner_of(w, nw, p->partition);
        if (json) {
            char agej[32] = "null", inj[32] = "null";
            if (p->lag == 0) snprintf(agej, sizeof(agej), "0");
            else if (a >= 0) snprintf(agej, sizeof(agej), "%.3f", a);
            if (r >= 0) snprintf(inj, sizeof(inj), "%.3f", r);
            /* lag stays last: scripts match on "lag":N} */
            printf("{\"topic\":\"%s\",\"partition\":%d,\"high\":%s,\"committed\":%s,"
                   "\"worker\":%s%s%s,\"oldest_age_s\":%s,\"arrival\":%s,\"lag\":%s}\n",
                   st->topic, (int)p->partition, p->high >= 0 ? hi : "null",
                   p->committed >= 0 ? co : "null", who ? "\"" : "", who ? who : "null",
                   who ? "\"" : "", agej, inj, p->lag >= 0 ? lag : "null");
        } else {
            printf("%-20s %9d %12s %12s %10s %8s %8s  %s\n", st->topic, (int)p->partition,
                   hi, co, lag, age, in, who ? who : "-");
        }
    }
    int partial = 0;
    double oldest = aas_observe_oldest_age_s(st->p, st->n, now_ms, &partial);
    if (json) {
        printf("{\"topic_total\":\"%s\",\"partitions\":%zu,\"lag\":", st->topic, st->n);
        if (unknown) printf("null"); else printf("%lld", (long long)total);
        printf(",\"oldest_age_s\":");
        if (oldest >= 0) printf("%.3f", oldest); else printf("null");
        printf(",\"oldest_is_lower_bound\":%s,\"arrival\":", partial && oldest >= 0 ? "true"
                                                                                 : "false");
        if (in_known) printf("%.3f", in_total); else printf("null");
        printf(",\"completion\":");
        if (completion >= 0) printf("%.3f", completion); else printf("null");
        printf("}\n");
    } else {
        char age[32] = "?", in[24] = "?";
        if (oldest == 0 && !partial) snprintf(age, sizeof(age), "-");
        else if (oldest >= 0) snprintf(age, sizeof(age), "%s%.1fs", partial ? ">=" : "", oldest);
        if (in_known) snprintf(in, sizeof(in), "%.1f", in_total);
        printf("%-20s %9s %12s %12s %10lld %8s %8s  %s\n", st->topic, "total", "", "",
               (long long)total, age, in, unknown ? "(+unknown lag)" : "");
        if (completion >= 0)
            printf("%-20s arrivals %s/s, workers complete %.1f/s, oldest queued job %s\n",
                   "", in, completion, age);
    }
    free(w);
    return unknown;
}

/* The heartbeats of the status's group (and unreadable ones, shown as
 * such) into mine, those of other consumer groups into other: borrowed
 * pointers into hb.  -1: no memory. */
static int split_workers(char **hb, size_t n, const char *group, char ***mine, size_t *nmine,
                         char ***other, size_t *nother) {
    *mine = calloc(n > 0 ? n : 1, sizeof(**mine));
    *other = calloc(n > 0 ? n : 1, sizeof(**other));
    *nmine = *nother = 0;
    if (!*mine || !*other) {
        free(*mine);
        free(*other);
        *mine = *other = NULL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        aas_heartbeat_t b;
        if (!aas_heartbeat_parse(hb[i], &b, NULL, 0) && !aas_heartbeat_in_group(&b, group))
            (*other)[(*nother)++] = hb[i];
        else
            (*mine)[(*nmine)++] = hb[i];
    }
    return 0;
}

/* One row per worker; with_group: a group column after the id. */
static void print_worker_rows(char **hb, size_t n, const char *topic, int with_group) {
    int64_t now_ms = aas_now_ms();
    if (n && with_group)
        printf("  %-24s %-16s %-12s %7s %9s %10s %7s %7s %7s  %-9s %s\n", "id", "group", "host",
               "pid", "rate/s", "done", "failed", "up", "metrics", "training", "partitions");
    else if (n)
        printf("  %-24s %-12s %7s %9s %10s %7s %7s %7s  %-9s %s\n", "id", "host", "pid",
               "rate/s", "done", "failed", "up", "metrics", "training", "partitions");
    for (size_t i = 0; i < n; i++) {
        aas_heartbeat_t b;
        aas_skew_worker_t w;
        if (aas_heartbeat_parse(hb[i], &b, NULL, 0)) {
            printf("  (unreadable) %s\n", hb[i]);
            continue;
        }
        aas_skew_worker_from(&b, topic, now_ms, &w);
        char parts[512] = "", up[24] = "?", port[16] = "-";
        size_t used = 0;
        for (size_t k = 0; k < w.n_partitions && used + 16 < sizeof(parts); k++)
            used += (size_t)snprintf(parts + used, sizeof(parts) - used, "%s%d", k ? "," : "",
                                     (int)w.partitions[k]);
        if (w.uptime_s >= 0) snprintf(up, sizeof(up), "%.0fs", w.uptime_s);
        if (b.metrics_port > 0) snprintf(port, sizeof(port), "%d", b.metrics_port);
        if (with_group) printf("  %-24s %-16s", b.id, b.group[0] ? b.group : "?");
        else printf("  %-24s", b.id);
        printf(" %-12s %7d %9.1f %10llu %7llu %7s %7s  %-9s %s\n", b.host, b.pid, b.rate,
               (unsigned long long)b.done, (unsigned long long)b.failed, up, port,
               b.training[0] ? b.training : "-", w.n_partitions ? parts : "-");
    }
}

/* The group's live workers (what the scheduler counts), then those of
 * other consumer groups sharing the Redis prefix, apart: they are listed
 * so that nothing live is hidden, but not counted. */
static void print_workers(char **mine, size_t nmine, char **other, size_t nother,
                          const char *topic, const char *group, int json) {
    if (json) {
        for (size_t i = 0; i < nmine; i++) printf("{\"worker\":%s}\n", mine[i]);
        for (size_t i = 0; i < nother; i++) printf("{\"other_group_worker\":%s}\n", other[i]);
        return;
    }
    printf("\nworkers: %zu live\n", nmine);
    print_worker_rows(mine, nmine, topic, 0);
    if (nother) {
        printf("\nworkers of other consumer groups (not counted for group %s): %zu live\n",
               group, nother);
        print_worker_rows(other, nother, topic, 1);
    }
}

/* One decision as a line: time, what, why. */
static void print_decision(const char *text) {
    json_t *o = json_loads(text, 0, NULL);
    if (!o) {
        printf("  %s\n", text);
        return;
    }
    char when[32] = "?";
    json_t *ts = json_object_get(o, "ts_ms");
    if (json_is_integer(ts)) {
        time_t t = (time_t)(json_integer_value(ts) / 1000);
        struct tm tm;
        if (localtime_r(&t, &tm)) strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    }
    const char *action = json_string_value(json_object_get(o, "action"));
    const char *reason = json_string_value(json_object_get(o, "reason"));
    const char *error = json_string_value(json_object_get(o, "error"));
    const char *worker = json_string_value(json_object_get(o, "worker"));
    json_t *from = json_object_get(o, "from"), *to = json_object_get(o, "to");
    if (json_is_integer(from) && json_is_integer(to))
        printf("  %s  %-7s %lld->%lld  %s%s%s\n", when,
               action ? action
                      : json_integer_value(to) > json_integer_value(from) ? "up" : "down",
               (long long)json_integer_value(from), (long long)json_integer_value(to),
               reason ? reason : "", error ? "  error: " : "", error ? error : "");
    else
        printf("  %s  %-7s %s  %s%s%s\n", when, action ? action : "?",
               worker && *worker ? worker : "-", reason ? reason : "",
               error ? "  error: " : "", error ? error : "");
    json_decref(o);
}

static int run_status(const aas_conf_t *conf, int json, int sample_ms) {
    char why[512];
    aas_observer_t *o = NULL;
    aas_store_t *st = NULL;
    char **hb = NULL, **dec = NULL, **mine = NULL, **other = NULL;
    size_t nhb = 0, ndec = 0, nmine = 0, nother = 0;
    int rc = 0, have_hb = 0, have_dec = 0;
    aas_scheduler_conf_t c;
    aas_conf_fill(conf, &c);
    /* topic.infer, its priority lanes when on (listed if they exist), and
     * topic.train. */
    aas_lanes_t lanes;
    if (aas_lanes_from_conf(conf, &lanes, why, sizeof(why))) {
        fprintf(stderr, "aas-scheduler: %s\n", why);
        return 1;
    }
    status_topic_t topics[4] = {{.topic = aas_conf_get(conf, "topic.infer")}};
    int n_topics = 1;
    if (lanes.enabled) {
        topics[n_topics++] = (status_topic_t){.topic = lanes.topic[AAS_LANE_HIGH], .optional = 1};
        topics[n_topics++] = (status_topic_t){.topic = lanes.topic[AAS_LANE_LOW], .optional = 1};
    }
    topics[n_topics++] = (status_topic_t){.topic = aas_conf_get(conf, "topic.train")};
    if (aas_observer_new(conf, c.group, &o, why, sizeof(why))) {
        fprintf(stderr, "aas-scheduler: %s\n", why);
        return 1;
    }
    double t0 = mono_s();
    for (int i = 0; i < n_topics; i++) measure_topic(o, &c, &topics[i]);
    if (aas_cli_store_new(conf, &st, why, sizeof(why)) ||
        aas_store_heartbeats(st, &hb, &nhb, why, sizeof(why))) {
        fprintf(stderr, "aas-scheduler: workers unknown: %s\n", why);
        rc = 1;
    } else if (split_workers(hb, nhb, aas_observer_group(o), &mine, &nmine, &other, &nother)) {
        fprintf(stderr, "aas-scheduler: workers unknown: out of memory\n");
        rc = 1;
    } else {
        have_hb = 1;
        if (aas_store_decisions(st, aas_conf_get(conf, "worker.group"), 8, &dec, &ndec, why,
                                sizeof(why)) == AAS_ERR_OK)
            have_dec = 1;
        else {
            fprintf(stderr, "aas-scheduler: decisions unknown: %s\n", why);
            rc = 1;
        }
    }
    if (sample_ms > 0) {
        double left = t0 + sample_ms / 1000.0 - mono_s();
        if (left > 0) {
            struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
            nanosleep(&ts, NULL);
        }
        for (int i = 0; i < n_topics; i++) resample_topic(o, &c, &topics[i]);
    }
    /* What the group's workers do: the lag shown is the group's, so are
     * the partitions' holders and the completion rate. */
    double completion = -1;
    if (have_hb) {
        completion = 0;
        for (size_t i = 0; i < nmine; i++) {
            aas_heartbeat_t b;
            if (!aas_heartbeat_parse(mine[i], &b, NULL, 0) && b.rate > 0) completion += b.rate;
        }
    }
    for (int i = 0; i < n_topics; i++) {
        if (topics[i].absent) continue;
        if (!json && i) printf("\n");
        rc |= print_topic(&topics[i], mine, nmine, i == 0 ? completion : -1, json);
    }
    if (have_hb)
        print_workers(mine, nmine, other, nother, topics[0].topic, aas_observer_group(o), json);
    if (have_hb) {
        /* Which scheduler acts for the group (the others stand by). */
        char holder[128], lwhy[256];
        int64_t left = 0;
        const char *group = aas_conf_get(conf, "worker.group");
        if (aas_store_lease_holder(st, group, holder, sizeof(holder), &left, lwhy,
                                   sizeof(lwhy))) {
            fprintf(stderr, "aas-scheduler: scheduler lease unknown: %s\n", lwhy);
            rc = 1;
        } else if (json) {
            json_t *l = json_pack("{s:{s:s, s:s?, s:I}}", "scheduler", "group", group,
                                  "leader", holder[0] ? holder : NULL, "lease_left_ms",
                                  (json_int_t)left);
            char *t = l ? json_dumps(l, JSON_COMPACT) : NULL;
            if (t) printf("%s\n", t);
            free(t);
            json_decref(l);
        } else if (holder[0]) {
            printf("\nscheduler of group %s: %s (lease %lld ms left; others stand by)\n",
                   group, holder, (long long)left);
        } else {
            printf("\nscheduler of group %s: none running\n", group);
        }
    }
    if (have_dec) {
        if (!json) printf("\nlatest decisions (newest first):\n");
        for (size_t i = 0; i < ndec; i++) {
            if (json) printf("{\"decision\":%s}\n", dec[i]);
            else print_decision(dec[i]);
        }
    }
    for (int i = 0; i < n_topics; i++) {
        free(topics[i].p);
        free(topics[i].p2);
    }
    free(mine);
    free(other);
    aas_store_list_free(hb, nhb);
    aas_store_list_free(dec, ndec);
    aas_store_destroy(st);
    aas_observer_destroy(o);
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
        {"sample-ms", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0}};
    const char *config_file = NULL;
    char **xargs = calloc((size_t)argc + 1, sizeof(*xargs));
    char *brokers = NULL;
    size_t nx = 0;
    int c, rc = 0, json = 0, sample_ms = 1000;
    char *end = NULL;
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
        case 'S':
            sample_ms = (int)strtol(optarg, &end, 10);
            if (!*optarg || *end || sample_ms < 0 || sample_ms > 600000) {
                fprintf(stderr, "aas-scheduler: --sample-ms wants 0..600000, not '%s'\n",
                        optarg);
                rc = 2;
                goto out;
            }
            break;
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
    rc = run_status(conf, json, sample_ms);
out:
    free(brokers);
    free(xargs);
    aas_conf_destroy(conf);
    return rc;
}
