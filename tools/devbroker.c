/*
 * aas-devbroker - the zero-setup Kafka of the demo and the fast tests.
 *
 * Hosts librdkafka's built-in mock cluster (rdkafka_mock.h), which speaks
 * the Kafka protocol on loopback TCP ports, creates the aas topics, prints
 * `bootstrap.servers=host:port` and runs until SIGTERM/SIGINT.  Clients use
 * it exactly as they use real Kafka.  It keeps everything in memory; see
 * docs/devbroker.md for its limits (no persistence, bounded partitions,
 * no partition growth).  Not for production.
 *
 * Message size: each mock partition keeps 5 MiB and evicts older message
 * sets to make room, so it would acknowledge a message of 5 MiB or more and
 * then lose it (or the backlog) without a word.  The mock cluster has no
 * per-topic max.message.bytes; the one size check it has is the hosting
 * instance's receive.message.max.bytes, applied to every request it reads.
 * Set to --max-request-bytes (well under 5 MiB), an oversized Produce
 * request is refused (the connection is closed unanswered, so the producer
 * retries it until its message.timeout.ms and then reports it failed)
 * instead of acknowledged and dropped.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t run = 1;
/* Outage drill: SIGUSR1 takes every broker down, SIGUSR2 brings them up
 * (rd_kafka_mock_broker_set_down/_up), so clients can be tested against a
 * broker outage without losing the cluster's data. */
static volatile sig_atomic_t want_down = 0, want_up = 0;

static void on_signal(int sig) {
    if (sig == SIGUSR1)
        want_down = 1;
    else if (sig == SIGUSR2)
        want_up = 1;
    else
        run = 0;
}

static void set_brokers(rd_kafka_mock_cluster_t *mc, int brokers, int up) {
    for (int id = 1; id <= brokers; id++) {
        rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(mc, id)
                                     : rd_kafka_mock_broker_set_down(mc, id);
        if (err)
            fprintf(stderr, "aas-devbroker: broker %d %s: %s\n", id,
                    up ? "up" : "down", rd_kafka_err2str(err));
    }
    fprintf(stderr, "aas-devbroker: brokers %s\n", up ? "up" : "down");
}

/* 1 MiB of messages, as the aas client allows on this broker, plus room
 * for the Produce request's framing (header, topic, record batch). */
#define DEVBROKER_MAX_REQUEST_BYTES ((1 << 20) + (64 << 10))
/* The most --max-request-bytes may be: a request's messages must fit in the
 * 5 MiB a mock partition keeps (rdkafka_mock.c, mpart->max_size). */
#define DEVBROKER_MAX_REQUEST_BYTES_LIMIT ((5 << 20) - (64 << 10))

static void usage(FILE *fp) {
    fprintf(fp,
            "Usage: aas-devbroker [options]\n"
            "Run an in-memory Kafka-protocol broker on loopback for aas.\n\n"
            "  -p, --partitions N        partitions per topic (default 4)\n"
            "  -b, --brokers N           brokers in the cluster (default 1)\n"
            "  -t, --topics LIST         comma-separated topics to create\n"
            "                            (default aas.jobs.infer,aas.jobs.infer.high,"
            "aas.jobs.infer.low,aas.jobs.train,aas.jobs.dlq)\n"
            "  -f, --bootstrap-file PATH also write bootstrap.servers to PATH\n"
            "  -m, --max-request-bytes N refuse a produce request over N bytes\n"
            "                            (default %d = 1 MiB of messages + 64 KiB;\n"
            "                            at most %d: a partition keeps 5 MiB)\n"
            "  -h, --help                this text\n"
            "      --version             versions\n\n"
            "Prints 'bootstrap.servers=HOST:PORT[,...]' on stdout once ready;\n"
            "stops cleanly on SIGTERM or SIGINT.  Outage drills: SIGUSR1 takes\n"
            "every broker down, SIGUSR2 brings them back (data is kept).\n",
            DEVBROKER_MAX_REQUEST_BYTES, DEVBROKER_MAX_REQUEST_BYTES_LIMIT);
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* Write atomically so a reader never sees half an address. */
static int write_bootstrap_file(const char *path, const char *servers) {
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    FILE *fp = fopen(tmp, "w");
    if (!fp) return -1;
    int ok = fprintf(fp, "%s\n", servers) > 0;
    ok = (fclose(fp) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int partitions = 4, brokers = 1, max_request = DEVBROKER_MAX_REQUEST_BYTES;
    /* The jobs topic, its priority lanes (common/lane.h), training, DLQ. */
    const char *topics = "aas.jobs.infer,aas.jobs.infer.high,aas.jobs.infer.low,"
                         "aas.jobs.train,aas.jobs.dlq";
    const char *bootstrap_file = NULL;
    static const struct option opts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"brokers", required_argument, NULL, 'b'},
        {"topics", required_argument, NULL, 't'},
        {"bootstrap-file", required_argument, NULL, 'f'},
        {"max-request-bytes", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "p:b:t:f:m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (parse_int(optarg, 1, 10000, &partitions)) {
                fprintf(stderr, "aas-devbroker: --partitions: '%s' is not 1..10000\n", optarg);
                return 2;
            }
            break;
        case 'b':
            if (parse_int(optarg, 1, 16, &brokers)) {
                fprintf(stderr, "aas-devbroker: --brokers: '%s' is not 1..16\n", optarg);
                return 2;
            }
            break;
        case 'm':
            if (parse_int(optarg, 1024, DEVBROKER_MAX_REQUEST_BYTES_LIMIT, &max_request)) {
                fprintf(stderr, "aas-devbroker: --max-request-bytes: '%s' is not 1024..%d "
                        "(a partition keeps 5 MiB)\n", optarg,
                        DEVBROKER_MAX_REQUEST_BYTES_LIMIT);
                return 2;
            }
            break;
        case 't': topics = optarg; break;
        case 'f': bootstrap_file = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V':
            printf("aas-devbroker %s (librdkafka %s)\n", AAS_VERSION,
                   rd_kafka_version_str());
            return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "aas-devbroker: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    char errstr[512], max_request_str[16];
    snprintf(max_request_str, sizeof(max_request_str), "%d", max_request);
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    /* The mock cluster needs a client instance to live in; it serves only
     * the cluster, so keep its own logging quiet.  Its
     * receive.message.max.bytes is the cluster's request size limit (see
     * the top of this file). */
    if (rd_kafka_conf_set(kc, "log_level", "3", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "receive.message.max.bytes", max_request_str, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "aas-devbroker: %s\n", errstr);
        rd_kafka_conf_destroy(kc);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "aas-devbroker: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(kc);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "aas-devbroker: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }

    int rc = 0;
    char *list = strdup(topics), *save = NULL;
    if (!list) rc = 1;
    for (char *t = list ? strtok_r(list, ",", &save) : NULL; t && !rc;
         t = strtok_r(NULL, ",", &save)) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, t, partitions, brokers < 3 ? brokers : 3);
        if (err) {
            fprintf(stderr, "aas-devbroker: create topic %s: %s\n", t,
                    rd_kafka_err2str(err));
            rc = 1;
        }
    }
    free(list);

    const char *servers = rd_kafka_mock_cluster_bootstraps(mc);
    if (!rc && bootstrap_file && write_bootstrap_file(bootstrap_file, servers)) {
        fprintf(stderr, "aas-devbroker: cannot write %s: %s\n", bootstrap_file,
                strerror(errno));
        rc = 1;
    }
    if (!rc) {
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        signal(SIGUSR1, on_signal);
        signal(SIGUSR2, on_signal);
        printf("bootstrap.servers=%s\n", servers);
        fflush(stdout);
        fprintf(stderr, "aas-devbroker: ready brokers=%d partitions=%d topics=%s "
                "max_request_bytes=%d\n", brokers, partitions, topics, max_request);
        while (run) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            if (want_down) {
                want_down = 0;
                set_brokers(mc, brokers, 0);
            }
            if (want_up) {
                want_up = 0;
                set_brokers(mc, brokers, 1);
            }
        }
        fprintf(stderr, "aas-devbroker: stopping\n");
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    if (bootstrap_file && !rc) unlink(bootstrap_file);
    return rc;
}
