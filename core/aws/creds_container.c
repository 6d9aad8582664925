/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container source: ECS task credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, from
 * the ECS agent at 169.254.170.2) and EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI,
 * with an authorization token). See creds.h (source 5) and creds_source.h.
 *
 * Plain http is allowed only where the credentials cannot leave the node (loopback and the
 * agents' link-local addresses). The authorization token file is re-read on every fetch:
 * EKS rotates it.
 */
#include "aws/creds_source.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/json.h"
#include "base/log.h"
#include "aws/http.h"

#define CONTAINER_CONNECT_MS 2000L
#define CONTAINER_TIMEOUT_MS 5000L
#define ECS_HOST "http://169.254.170.2"

/* The source's settings (struct af_creds_source's str). */
enum { URL, AUTH_FILE, AUTH_TOKEN };

/* May plain http go to @host (no brackets, no port)? Only where the credentials cannot leave
 * the node: loopback and the ECS / EKS Pod Identity agent addresses. */
static bool http_host_allowed(const char *host)
{
        struct in_addr a4;

        if (strcasecmp(host, "localhost") == 0 || strcmp(host, "169.254.170.2") == 0 ||
            strcmp(host, "169.254.170.23") == 0 || strcasecmp(host, "fd00:ec2::23") == 0 ||
            strcmp(host, "::1") == 0)
                return true;
        return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* May plain http go to the authority [h, he) of a URL (host, maybe bracketed, and port)? */
static bool http_allowed(const char *h, const char *he)
{
        const char *hs = h, *hend;
        char host[256];

        if (*h == '[') {
                hs = h + 1;
                hend = memchr(hs, ']', (size_t)(he - hs));
        } else {
                hend = memchr(h, ':', (size_t)(he - h));
                if (!hend)
                        hend = he;
        }
        return hend && af_creds_copy(host, sizeof(host), hs, (size_t)(hend - hs)) == 0 &&
               http_host_allowed(host);
}

int af_creds_container_url(const char *relative, const char *full, char *out, size_t n,
                           struct af_buf *why)
{
        const char *h, *he;
        bool https;
        int len;

        if (relative && *relative) {
                if (relative[0] != '/') {
                        (void)af_buf_addf(why, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must "
                                               "start with '/'");
                        return -EINVAL;
                }
                len = snprintf(out, n, "%s%s", ECS_HOST, relative);
                return len < 0 || (size_t)len >= n ? -E2BIG : 0;
        }
        if (!full || !*full) {
                (void)af_buf_adds(why, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI not set");
                return -ENOENT;
        }
        https = strncasecmp(full, "https://", 8) == 0;
        if (!https && strncasecmp(full, "http://", 7) != 0) {
                (void)af_buf_addf(why, "AWS_CONTAINER_CREDENTIALS_FULL_URI %s is not http:// "
                                       "or https://", af_q(full));
                return -EINVAL;
        }
        h = full + (https ? 8 : 7);
        he = h + strcspn(h, "/?#");
        if (he == h || memchr(h, '@', (size_t)(he - h))) {
                (void)af_buf_addf(why, "AWS_CONTAINER_CREDENTIALS_FULL_URI %s has no host "
                                       "(or has user information)", af_q(full));
                return -EINVAL;
        }
        if (!https && !http_allowed(h, he)) {
                (void)af_buf_addf(why, "AWS_CONTAINER_CREDENTIALS_FULL_URI %s: plain "
                                       "http is allowed only to loopback, "
                                       "169.254.170.2, 169.254.170.23 or "
                                       "[fd00:ec2::23]; use https", af_q(full));
                return -EINVAL;
        }
        len = snprintf(out, n, "%s", full);
        return len < 0 || (size_t)len >= n ? -E2BIG : 0;
}

/* The Authorization header line, when there is a token (the file wins over the variable). */
static int auth_header(const struct af_creds_source *s, struct af_buf *auth, struct af_buf *why)
{
        struct af_buf tok;
        int r = 0;

        af_buf_init(&tok, AF_CREDS_TOKEN_FILE_CAP);
        if (s->str[AUTH_FILE]) {
                r = af_creds_read_file(s->str[AUTH_FILE], AF_CREDS_TOKEN_FILE_CAP, &tok);
                if (r < 0) {
                        (void)af_buf_addf(why, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s",
                                          s->str[AUTH_FILE], strerror(-r));
                        goto out;
                }
                af_creds_trim_right(&tok);
        } else if (s->str[AUTH_TOKEN]) {
                r = af_buf_adds(&tok, s->str[AUTH_TOKEN]);
                if (r < 0)
                        goto out;
        }
        if (!tok.len)
                goto out;
        r = af_creds_add_header(auth, "Authorization", &tok);
        if (r == -EINVAL)
                (void)af_buf_addf(why, "the container authorization token (%s) contains a line "
                                       "break or NUL", s->str[AUTH_FILE] ? "file" : "variable");
out:
        af_creds_scrub(&tok);
        return r;
}

static int fetch(const struct af_creds_source *s, struct af_creds *c, struct af_buf *why)
{
        struct af_buf auth, body, herr;
        const char *hdrs[2] = { NULL, NULL };
        char source[sizeof(c->source)];
        long status = 0;
        int r;

        af_buf_init(&auth, AF_CREDS_TOKEN_FILE_CAP + 64);
        af_buf_init(&body, AF_CREDS_RESPONSE_CAP);
        af_buf_init(&herr, AF_CREDS_WHY_CAP);
        r = auth_header(s, &auth, why);
        if (r < 0)
                goto out;
        hdrs[0] = auth.len ? auth.ptr : NULL;
        {
                struct af_http_req req = { .method = "GET",
                                           .url = s->str[URL],
                                           .headers = hdrs,
                                           .connect_timeout_ms = CONTAINER_CONNECT_MS,
                                           .timeout_ms = CONTAINER_TIMEOUT_MS,
                                           .max_body = AF_CREDS_RESPONSE_CAP,
                                           .no_proxy = strncasecmp(s->str[URL], "http://",
                                                                   7) == 0 };

                r = af_http_request(&req, &status, &body, &herr);
        }
        if (r < 0) {
                (void)af_buf_addf(why, "%s at %s", af_buf_str(&herr), s->str[URL]);
                goto out;
        }
        if (status != 200) {
                char msg[256] = "";

                if (af_json_get(af_buf_str(&body), body.len, "message", msg, sizeof(msg)) !=
                    AF_JSON_STRING)
                        msg[0] = '\0';
                (void)af_buf_addf(why, "%s answered HTTP %ld%s%s", s->str[URL], status,
                                  msg[0] ? ": " : "", msg);
                r = af_creds_status_errno(status);
                goto out;
        }
        (void)snprintf(source, sizeof(source), "container (%s)", s->str[URL]);
        r = af_creds_from_json(&body, "Token", source, c, why);
        if (r < 0)
                af_creds_why_prefix(why, s->str[URL]); /* say where the bad document came from */
out:
        af_creds_scrub(&auth);
        af_creds_scrub(&body);
        af_buf_done(&herr);
        return r;
}

static const struct af_creds_source_ops ops = { .name = "container", .fetch = fetch };

int af_creds_container_step(struct af_creds_source **ret_src, struct af_creds *c,
                            struct af_buf *why, bool *stop)
{
        const char *file = af_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        const char *tok = af_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        char url[2048];
        int r;

        (void)stop;
        r = af_creds_container_url(af_creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
                                   af_creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI"), url,
                                   sizeof(url), why);
        if (r == -E2BIG)
                (void)af_buf_adds(why, "the container credentials URI is too long");
        if (r < 0)
                return r;
        return af_creds_source_start(AF_CREDS_CONTAINER, &ops,
                                     (const char *const[]){ url, file, tok, NULL }, ret_src, c,
                                     why);
}
