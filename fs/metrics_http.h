/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file metrics_http.h
 * --metrics-listen ADDR:PORT: serves GET /metrics in Prometheus' text format from
 * libmicrohttpd's own thread.
 *
 * ADDR is a numeric IPv4 or IPv6 address ("127.0.0.1:9090", "[::1]:9090"), or empty for
 * every address (":9090", what a pod's Prometheus scrape needs). PORT 0 takes a free port
 * (af_metrics_server_port says which). The gauges are read at each scrape through @gauges.
 */
#pragma once

#include "base/buf.h"
#include "base/metrics.h"

struct af_metrics_server;

typedef void (*af_metrics_gauges_fn)(void *ctx, struct af_metrics_gauges *ret);

/**
 * Starts serving @m (borrowed: it must outlive the server). -EINVAL (a bad ADDR:PORT) or
 * -EADDRINUSE/-EACCES/... (cannot listen), with a one-line reason in @err.
 */
int af_metrics_server_start(const char *listen, const struct af_metrics *m,
                            af_metrics_gauges_fn gauges, void *gauges_ctx,
                            struct af_metrics_server **ret, struct af_buf *err);
unsigned af_metrics_server_port(const struct af_metrics_server *s);
/** Stops the server and frees it; NULL is a no-op. */
void af_metrics_server_stop(struct af_metrics_server *s);
