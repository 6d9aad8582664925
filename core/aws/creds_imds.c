/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The EC2 instance metadata source, IMDSv2 only: a session token (PUT), the instance
 * profile's role name, then that role's credentials, each a GET carrying the token. See
 * creds.h (source 6) and creds_source.h.
 *
 * Short timeouts (about 1 s to connect): off EC2 nothing answers, and the chain must not
 * hang there. Never proxied: the service is link-local.
 */
#include "aws/creds_source.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/json.h"
#include "aws/http.h"

#define IMDS_CONNECT_MS 1000L
#define IMDS_TIMEOUT_MS 3000L
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_DEFAULT_V6 "http://[fd00:ec2::254]"
#define CREDS_PATH "/latest/meta-data/iam/security-credentials/"

/* The source's settings (struct af_creds_source's str). */
enum { BASE_URL /* no trailing '/' */ };

/* One IMDS request; @what names the step in errors. */
static int call(const char *base, const char *method, const char *path, const char *header,
                const char *what, struct af_buf *body, struct af_buf *why)
{
        const char *hdrs[2] = { header, NULL };
        struct af_buf url, herr;
        long status = 0;
        int r;

        af_buf_init(&url, 4096);
        af_buf_init(&herr, AF_CREDS_WHY_CAP);
        r = af_buf_addf(&url, "%s%s", base, path);
        if (r == 0) {
                struct af_http_req req = { .method = method,
                                           .url = url.ptr,
                                           .headers = hdrs,
                                           .connect_timeout_ms = IMDS_CONNECT_MS,
                                           .timeout_ms = IMDS_TIMEOUT_MS,
                                           .max_body = AF_CREDS_RESPONSE_CAP,
                                           .no_proxy = true };

                r = af_http_request(&req, &status, body, &herr);
                if (r < 0)
                        (void)af_buf_addf(why, "%s at %s", af_buf_str(&herr), base);
        }
        if (r == 0 && status != 200) {
                (void)af_buf_addf(why, "%s (%s %s) answered HTTP %ld at %s", what, method, path,
                                  status, base);
                r = af_creds_status_errno(status);
        }
        af_buf_done(&url);
        af_buf_done(&herr);
        return r;
}

/* IMDSv2: a session token first (PUT); @hdr gets the header every GET then carries. */
static int session(const char *base, struct af_buf *hdr, struct af_buf *why)
{
        struct af_buf token;
        int r;

        af_buf_init(&token, AF_CREDS_RESPONSE_CAP);
        r = call(base, "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 21600",
                 "the IMDSv2 token request", &token, why);
        if (r < 0)
                goto out;
        af_creds_trim_right(&token);
        /* An IMDS token is printable ASCII without spaces: stricter than a header needs. */
        if (token.len == 0 || !af_creds_header_safe(token.ptr))
                r = -EINVAL;
        else
                r = af_creds_add_header(hdr, "X-aws-ec2-metadata-token", &token);
        if (r == -EINVAL) {
                (void)af_buf_addf(why, "the IMDSv2 token from %s is empty or not printable",
                                  base);
                r = -EPROTO;
        }
out:
        af_creds_scrub(&token);
        return r;
}

/* The instance profile's role: the first line of the listing. */
static int role_name(const char *base, const char *hdr, char *role, size_t n,
                     struct af_buf *why)
{
        struct af_buf body;
        size_t rl;
        int r;

        af_buf_init(&body, AF_CREDS_RESPONSE_CAP);
        r = call(base, "GET", CREDS_PATH, hdr,
                 "the IAM role lookup (no instance profile attached?)", &body, why);
        if (r < 0)
                goto out;
        rl = strcspn(af_buf_str(&body), "\r\n");
        while (rl && isspace((unsigned char)body.ptr[rl - 1]))
                rl--;
        if (rl == 0 || af_creds_copy(role, n, body.ptr, rl) < 0) {
                (void)af_buf_addf(why, "no IAM role name at %s%s", base, CREDS_PATH);
                r = -ENOENT;
                goto out;
        }
        /* IAM role names are [A-Za-z0-9+=,.@_-]: nothing that could change the URL. */
        for (size_t i = 0; i < rl; i++) {
                if (!isalnum((unsigned char)role[i]) && !strchr("+=,.@_-", role[i])) {
                        (void)af_buf_addf(why, "IMDS at %s returned a role name with "
                                               "unexpected characters", base);
                        r = -EPROTO;
                        goto out;
                }
        }
out:
        af_creds_scrub(&body);
        return r;
}

/* The role's credentials document; a Code other than Success is an error. */
static int role_creds(const char *base, const char *hdr, const char *role, struct af_creds *c,
                      struct af_buf *why)
{
        char code[64], source[sizeof(c->source)];
        struct af_buf path, body;
        int r;

        af_buf_init(&path, 4096);
        af_buf_init(&body, AF_CREDS_RESPONSE_CAP);
        r = af_buf_addf(&path, "%s%s", CREDS_PATH, role);
        if (r == 0)
                r = call(base, "GET", path.ptr, hdr, "the role credentials request", &body, why);
        if (r < 0)
                goto out;
        if (af_json_get(af_buf_str(&body), body.len, "Code", code, sizeof(code)) ==
                    AF_JSON_STRING &&
            strcmp(code, "Success") != 0) {
                char msg[256] = "";

                if (af_json_get(body.ptr, body.len, "Message", msg, sizeof(msg)) !=
                    AF_JSON_STRING)
                        msg[0] = '\0';
                (void)af_buf_addf(why, "IMDS at %s: role %s: Code %s%s%s", base, role, code,
                                  msg[0] ? ": " : "", msg);
                r = -EACCES;
                goto out;
        }
        (void)snprintf(source, sizeof(source), "imds (role %s)", role);
        r = af_creds_from_json(&body, "Token", source, c, why);
out:
        af_creds_scrub(&body);
        af_buf_done(&path);
        return r;
}

static int fetch(const struct af_creds_source *s, struct af_creds *c, struct af_buf *why)
{
        struct af_buf hdr;
        char role[128];
        int r;

        af_buf_init(&hdr, AF_CREDS_RESPONSE_CAP + 64);
        r = session(s->str[BASE_URL], &hdr, why);
        if (r == 0)
                r = role_name(s->str[BASE_URL], hdr.ptr, role, sizeof(role), why);
        if (r == 0)
                r = role_creds(s->str[BASE_URL], hdr.ptr, role, c, why);
        af_creds_scrub(&hdr);
        return r;
}

static const struct af_creds_source_ops ops = { .name = "IMDS", .fetch = fetch };

int af_creds_imds_step(struct af_creds_source **ret_src, struct af_creds *c, struct af_buf *why,
                       bool *stop)
{
        const char *off = af_creds_env("AWS_EC2_METADATA_DISABLED");
        const char *ep = af_creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        const char *mode = af_creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        char *base;
        size_t l;
        int r;

        (void)stop;
        if (off && strcasecmp(off, "true") == 0) {
                (void)af_buf_adds(why, "disabled by AWS_EC2_METADATA_DISABLED");
                return -ENOENT;
        }
        if (!ep)
                ep = mode && strcasecmp(mode, "IPv6") == 0 ? IMDS_DEFAULT_V6 : IMDS_DEFAULT;
        /* Paths start with '/': drop the endpoint's trailing ones. */
        l = strlen(ep);
        while (l > 0 && ep[l - 1] == '/')
                l--;
        base = strndup(ep, l);
        if (!base)
                return -ENOMEM;
        r = af_creds_source_start(AF_CREDS_IMDS, &ops,
                                  (const char *const[]){ base, NULL, NULL, NULL }, ret_src, c,
                                  why);
        free(base);
        return r;
}
