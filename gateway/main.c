/*
 * aas-gateway - HTTP front door of aas (docs/http.md): the Open Inference
 * Protocol (KServe v2) REST and a plain /predict, each request one aas job.
 * Options, configuration and signals here; the server in http.c, the
 * endpoints in routes.c.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "gateway.h"
#include "http.h"
#include "log.h"

const aas_conf_def_t aas_gateway_conf_defs[] = {
    {"gateway.listen.host", AAS_CONF_STR, "127.0.0.1", 0, 0, 0,
     "IPv4 address to listen on (0.0.0.0: every interface)",
     AAS_CONF_FIELD(aas_gateway_conf_t, host)},
    {"gateway.listen.port", AAS_CONF_INT, "8000", 0, 65535, 0,
     "TCP port to listen on (0: any free port, logged at start)",
     AAS_CONF_FIELD(aas_gateway_conf_t, port)},
    {"gateway.timeout.ms", AAS_CONF_INT, "30000", 1, 3600000, 0,
     "How long a synchronous request waits for its job; then 504 with the job id "
     "(the job goes on)",
     AAS_CONF_FIELD(aas_gateway_conf_t, timeout_ms)},
    {"gateway.max.body.bytes", AAS_CONF_INT, "8388608", 1024, 1LL << 30, 0,
     "Largest request body; larger is refused with 413",
     AAS_CONF_FIELD(aas_gateway_conf_t, max_body_bytes)},
    {"gateway.threads", AAS_CONF_INT, "4", 1, 1024, 0,
     "HTTP threads, each with its own aas client: the synchronous requests served at "
     "once",
     AAS_CONF_FIELD(aas_gateway_conf_t, threads)},
    {"gateway.batch.max.rows", AAS_CONF_INT, "64", 1, 4096, 0,
     "Most rows of one job made of concurrent synchronous FP32 requests for the same model "
     "version, tenant and priority (1: one job per request; docs/http.md#batching)",
     AAS_CONF_FIELD(aas_gateway_conf_t, batch_max_rows)},
    {"gateway.connection.timeout.s", AAS_CONF_INT, "30", 1, 86400, 0,
     "Idle connection timeout",
     AAS_CONF_FIELD(aas_gateway_conf_t, connection_timeout_s)},
    {"gateway.connection.limit", AAS_CONF_INT, "256", 1, 65536, 0,
     "Most connections open at once",
     AAS_CONF_FIELD(aas_gateway_conf_t, connection_limit)},
    {"gateway.default.model", AAS_CONF_STR, NULL, 0, 0, 0,
     "Model of POST /predict when the body names none (unset: the body must)",
     AAS_CONF_FIELD(aas_gateway_conf_t, default_model)},
    {"gateway.auth", AAS_CONF_STR, "none", 0, 0, 0,
     "API keys: none (anyone may call), file (gateway.auth.file) or redis (keys made by "
     "aas-producer apikey add); docs/http.md#access",
     AAS_CONF_FIELD(aas_gateway_conf_t, auth_mode)},
    {"gateway.auth.file", AAS_CONF_STR, NULL, 0, 0, 0,
     "Keys file for gateway.auth = file: lines 'TENANT KEY|sha256:HEX [SCOPES]', mode 600",
     AAS_CONF_FIELD(aas_gateway_conf_t, auth_file)},
    {"gateway.auth.refresh.s", AAS_CONF_INT, "5", 1, 3600, 0,
     "How often the keys are reloaded (a file only when it changed): a new or revoked key "
     "takes effect within this",
     AAS_CONF_FIELD(aas_gateway_conf_t, auth_refresh_s)},
    {"gateway.tls.cert.file", AAS_CONF_STR, NULL, 0, 0, 0,
     "PEM certificate (chain) for HTTPS; with gateway.tls.key.file (unset: plain HTTP)",
     AAS_CONF_FIELD(aas_gateway_conf_t, tls_cert_file)},
    {"gateway.tls.key.file", AAS_CONF_STR, NULL, 0, 0, 0,
     "PEM private key (unencrypted) of the certificate",
     AAS_CONF_FIELD(aas_gateway_conf_t, tls_key_file)},
    AAS_METRICS_CONF_ROWS,
    AAS_CONF_END};

/* Models described at once (model metadata, class names). */
#define AAS_GW_MODEL_CACHE 64

static void usage(FILE *fp, const aas_conf_t *conf) {
    fprintf(fp,
            "Usage: aas-gateway [options]\n"
            "Serve aas models over HTTP (Open Inference Protocol v2 and /predict);\n"
            "each request is one job on Kafka, answered from Redis. See docs/http.md.\n\n"
            "Options:\n"
            "  -c, --config FILE            read key = value settings from FILE\n"
            "  -X, --set KEY=VALUE          set one key (repeatable; not for secrets)\n"
            "  -b, --brokers LIST           same as -X kafka.bootstrap.servers=LIST\n"
            "  -h, --help                   this text\n"
            "      --version                program and library versions\n"
            "      --config-reference       the keys below as a Markdown table\n\n"
            "Keys (environment: AAS_ + key upper-cased, '.' -> '_'; any\n"
            "kafka.<property> goes to librdkafka):\n");
    if (conf) aas_conf_print_help(conf, fp);
    fprintf(fp, "\nStops on SIGTERM or SIGINT: no new connections, requests in flight\n"
                "finish, exit 0.\n");
}

int main(int argc, char **argv) {
    aas_conf_t *conf = NULL;
    if (aas_conf_new_with(aas_gateway_conf_defs, aas_client_conf_defs, &conf)) {
        fprintf(stderr, "aas-gateway: out of memory\n");
        return 1;
    }
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 'X'},
        {"brokers", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"config-reference", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0}};
    const char *config_file = NULL;
    char **xargs = calloc((size_t)argc + 1, sizeof(*xargs));
    char *brokers_arg = NULL;
    size_t nx = 0;
    int c, rc = 0;
    aas_gw_t gw = {0};
    aas_gw_http_t *http = NULL;
    while (xargs && (c = getopt_long(argc, argv, "c:X:b:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_file = optarg; break;
        case 'X': xargs[nx++] = optarg; break;
        case 'b':
            free(brokers_arg);
            brokers_arg = malloc(strlen(optarg) + 32);
            if (!brokers_arg) {
                rc = 1;
                goto out;
            }
            sprintf(brokers_arg, "kafka.bootstrap.servers=%s", optarg);
            xargs[nx++] = brokers_arg;
            break;
        case 'h': usage(stdout, conf); goto out;
        case 'V': aas_cli_print_version(stdout, "aas-gateway"); goto out;
        case 'R': aas_conf_print_markdown(conf, stdout); goto out;
        default: usage(stderr, NULL); rc = 2; goto out;
        }
    }
    if (!xargs) {
        rc = 1;
        goto out;
    }
    if (optind < argc) {
        fprintf(stderr, "aas-gateway: unexpected argument '%s' (see --help)\n", argv[optind]);
        rc = 2;
        goto out;
    }
    char errstr[512];
    /* A caller told 503 must be able to retry without running the job
     * twice: publish only when Redis answers (the user may still say
     * otherwise). */
    /* The shared producer sends at once (the client library's 1 ms linger
     * would be the whole of an idle request's wait), and keeps one produce
     * request in flight: the jobs of concurrent requests gather while it
     * is, and go together in the next (with librdkafka's default of 5, a
     * busy gateway sent about one job a request, and the broker's cost is
     * per request). */
    if (aas_conf_set(conf, "client.redis.required", "true", AAS_CONF_SRC_FILE, errstr,
                     sizeof(errstr)) ||
        aas_conf_set(conf, "kafka.linger.ms", "0", AAS_CONF_SRC_FILE, errstr,
                     sizeof(errstr)) ||
        aas_conf_set(conf, "kafka.max.in.flight.requests.per.connection", "1",
                     AAS_CONF_SRC_FILE, errstr, sizeof(errstr))) {
        fprintf(stderr, "aas-gateway: %s\n", errstr);
        rc = 1;
        goto out;
    }
    if (aas_cli_conf_load(conf, config_file, xargs, nx, errstr, sizeof(errstr))) {
        fprintf(stderr, "aas-gateway: %s\n", errstr);
        rc = 2;
        goto out;
    }
    aas_conf_fill(conf, &gw.c);
    /* Jobs publish through one shared producer, whose message timeout
     * (client.timeout.ms) settles each of them: kept within a request's
     * wait, a 503 "not acknowledged" means the job was dropped, not sent
     * later (docs/http.md). */
    int64_t client_timeout = strtoll(aas_conf_get(conf, "client.timeout.ms"), NULL, 10);
    if (client_timeout > gw.c.timeout_ms) {
        char v[24];
        snprintf(v, sizeof(v), "%lld", (long long)(gw.c.timeout_ms < 100 ? 100 : gw.c.timeout_ms));
        if (aas_conf_set(conf, "client.timeout.ms", v, AAS_CONF_SRC_ARGV, errstr,
                         sizeof(errstr))) {
            fprintf(stderr, "aas-gateway: %s\n", errstr);
            rc = 2;
            goto out;
        }
    }
    /* hiredis writes with write(): a dead peer must give EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    /* SIGINT/SIGTERM are blocked in every thread (the server's threads
     * inherit the mask) and taken by sigwait() below. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop_set, NULL)) {
        fprintf(stderr, "aas-gateway: cannot block signals\n");
        rc = 1;
        goto out;
    }
    if (aas_gw_waiter_new(conf, &gw.waiter, errstr, sizeof(errstr)) ||
        aas_metrics_new(&gw.metrics, errstr, sizeof(errstr)) ||
        aas_gw_pool_new(conf,
                        &(aas_gw_pub_opts_t){.waiter = gw.waiter, .metrics = gw.metrics,
                                             .merge_max_rows = gw.c.batch_max_rows},
                        (size_t)gw.c.threads, &gw.pool) ||
        aas_gw_models_new(AAS_GW_MODEL_CACHE, &gw.models)) {
        fprintf(stderr, "aas-gateway: out of memory\n");
        rc = 1;
        goto out;
    }
    if (aas_gw_auth_new(gw.c.auth_mode, gw.c.auth_file, (int)gw.c.auth_refresh_s, conf,
                        &gw.auth, errstr, sizeof(errstr))) {
        AAS_LOG(AAS_LOG_ERROR, "gateway", "start failed: %s", errstr);
        rc = 1;
        goto out;
    }
    if (!aas_gw_auth_enabled(gw.auth) && strcmp(gw.c.host, "127.0.0.1"))
        AAS_LOG(AAS_LOG_WARN, "gateway", "listening on %s without API keys: anyone who can "
                "reach it may run jobs (gateway.auth, docs/http.md#access)", gw.c.host);
    if (aas_metrics_serve_conf(gw.metrics, conf, errstr, sizeof(errstr))) {
        AAS_LOG(AAS_LOG_ERROR, "gateway", "start failed: %s", errstr);
        rc = 1;
        goto out;
    }
    if (aas_gw_http_start(&gw, &http, errstr, sizeof(errstr))) {
        AAS_LOG(AAS_LOG_ERROR, "gateway", "start failed: %s", errstr);
        rc = 1;
        goto out;
    }
    /* The metrics port's /readyz: the gateway serves (its own readiness,
     * Kafka and Redis answering, is GET /v2/health/ready on its port). */
    aas_metrics_ready(gw.metrics, 1, NULL);
    AAS_LOG(AAS_LOG_INFO, "gateway", "listening host=%s port=%u threads=%d scheme=%s auth=%s",
            gw.c.host, aas_gw_http_port(http), (int)gw.c.threads,
            gw.c.tls_cert_file && gw.c.tls_cert_file[0] ? "https" : "http", gw.c.auth_mode);
    int sig = 0;
    if (sigwait(&stop_set, &sig)) sig = 0;
    AAS_LOG(AAS_LOG_INFO, "gateway", "stopping signal=%d: finishing requests in flight", sig);
out:
    aas_gw_http_stop(http);
    aas_gw_auth_destroy(gw.auth);
    /* The publisher counts into the metrics and registers with the
     * waiter until it stops: the pool goes first. */
    aas_gw_pool_destroy(gw.pool);
    aas_metrics_destroy(gw.metrics);
    aas_gw_models_destroy(gw.models);
    aas_gw_waiter_destroy(gw.waiter);
    if (http) AAS_LOG(AAS_LOG_INFO, "gateway", "stopped");
    free(brokers_arg);
    free(xargs);
    aas_conf_destroy(conf);
    return rc;
}
