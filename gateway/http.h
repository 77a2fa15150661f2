/*
 * http.h - the gateway's HTTP server on libmicrohttpd: a pool of threads
 * (each request runs on one of them, blocking while its job runs), the
 * request body gathered under gateway.max.body.bytes (413 above it,
 * checked on Content-Length and as the body arrives), one access-log line
 * per request.  What a request means is routes.c's.
 */
#ifndef AAS_GW_HTTP_H
#define AAS_GW_HTTP_H

#include "gateway.h"

typedef struct aas_gw_http_s aas_gw_http_t;

/**
 * @brief Listen on gw->c.host:port and serve until aas_gw_http_stop().
 *        gw is borrowed for the server's lifetime.
 */
aas_err_t aas_gw_http_start(aas_gw_t *gw, aas_gw_http_t **out, char *errstr,
                            size_t errstr_size);
/** @brief The port bound (useful with gateway.listen.port = 0). */
unsigned aas_gw_http_port(const aas_gw_http_t *h);
/** @brief Stop accepting, let requests in flight finish, free. NULL no-op. */
void aas_gw_http_stop(aas_gw_http_t *h);

#endif
