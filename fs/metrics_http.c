// SPDX-License-Identifier: Apache-2.0
/* The /metrics endpoint (see metrics_http.h): libmicrohttpd does the HTTP. */
#include "metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef AF_VERSION
#define AF_VERSION "unknown"
#endif

#define PAGE_CAP ((size_t)256 << 10)

struct af_metrics_server {
        struct MHD_Daemon *daemon;
        const struct af_metrics *m;
        af_metrics_gauges_fn gauges;
        void *gauges_ctx;
        unsigned port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             const char *body, size_t len)
{
        struct MHD_Response *resp;
        enum MHD_Result ok;

        resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        (void)MHD_add_response_header(resp, "Content-Type", type);
        ok = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ok;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
        static const char index_page[] = "artifuse: metrics at /metrics\n";
        struct af_metrics_server *s = cls;
        struct af_metrics_gauges g = { 0 };
        struct af_buf page;
        enum MHD_Result ok;

        (void)version;
        (void)upload;
        (void)con_cls;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return reply(conn, 405, "text/plain", "only GET\n", 9);
        if (*upload_size)
                return MHD_NO;
        if (strcmp(url, "/") == 0)
                return reply(conn, 200, "text/plain", index_page, sizeof(index_page) - 1);
        if (strcmp(url, "/metrics") != 0)
                return reply(conn, 404, "text/plain", "not found\n", 10);
        if (s->gauges)
                s->gauges(s->gauges_ctx, &g);
        af_buf_init(&page, PAGE_CAP);
        if (af_metrics_render(s->m, &g, AF_VERSION, &page) < 0)
                ok = reply(conn, 500, "text/plain", "cannot render\n", 14);
        else
                ok = reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8",
                           af_buf_str(&page), page.len);
        af_buf_done(&page);
        return ok;
}

/* "ADDR:PORT", "[ADDR6]:PORT" or ":PORT" -> a socket address to bind. */
static int parse_listen(const char *listen, struct addrinfo **ret, struct af_buf *err)
{
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
        char host[128];
        const char *colon, *port;
        size_t hl;
        int r;

        if (listen[0] == '[') {
                const char *close = strchr(listen, ']');

                if (!close || close[1] != ':')
                        goto bad;
                hl = (size_t)(close - listen - 1);
                memcpy(host, listen + 1, hl < sizeof(host) ? hl : 0);
                port = close + 2;
                hints.ai_family = AF_INET6;
        } else {
                colon = strrchr(listen, ':');
                if (!colon)
                        goto bad;
                hl = (size_t)(colon - listen);
                memcpy(host, listen, hl < sizeof(host) ? hl : 0);
                port = colon + 1;
                hints.ai_family = hl ? AF_INET : AF_INET6; /* ":PORT": every address */
        }
        if (hl >= sizeof(host) || !*port || strspn(port, "0123456789") != strlen(port) ||
            strtoul(port, NULL, 10) > 65535)
                goto bad;
        host[hl] = '\0';
        r = getaddrinfo(hl ? host : NULL, port, &hints, ret);
        if (r != 0) {
                (void)af_buf_addf(err, "--metrics-listen %s: %s", listen, gai_strerror(r));
                return -EINVAL;
        }
        return 0;
bad:
        (void)af_buf_addf(err, "--metrics-listen %s: expected ADDR:PORT, [ADDR6]:PORT or :PORT "
                               "with a numeric address", listen);
        return -EINVAL;
}

int af_metrics_server_start(const char *listen, const struct af_metrics *m,
                            af_metrics_gauges_fn gauges, void *gauges_ctx,
                            struct af_metrics_server **ret, struct af_buf *err)
{
        struct af_metrics_server *s;
        struct addrinfo *ai = NULL;
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
        int r;

        r = parse_listen(listen, &ai, err);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(*s));
        if (!s) {
                freeaddrinfo(ai);
                return -ENOMEM;
        }
        *s = (struct af_metrics_server){ .m = m, .gauges = gauges, .gauges_ctx = gauges_ctx };
        if (ai->ai_family == AF_INET6)
                flags |= MHD_USE_IPv6 | MHD_USE_DUAL_STACK;
        errno = 0;
        s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
                                     ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, 32u,
                                     MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
        freeaddrinfo(ai);
        if (!s->daemon) {
                r = errno ? -errno : -EADDRINUSE;
                (void)af_buf_addf(err, "--metrics-listen %s: cannot listen: %s", listen,
                                  strerror(-r));
                free(s);
                return r;
        }
        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
        s->port = info ? info->port : 0;
        *ret = s;
        return 0;
}

unsigned af_metrics_server_port(const struct af_metrics_server *s)
{
        return s->port;
}

void af_metrics_server_stop(struct af_metrics_server *s)
{
        if (!s)
                return;
        MHD_stop_daemon(s->daemon);
        free(s);
}
