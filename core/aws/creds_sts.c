/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The web identity source (IRSA): the projected service-account token exchanged for
 * credentials with an unsigned STS AssumeRoleWithWebIdentity. See creds.h (source 4) and
 * creds_source.h.
 *
 * The token file is re-read on every fetch: the kubelet rotates it. The answer is XML; an
 * error answer's Code and Message go into the reason (they name the problem, never the token).
 */
#include "aws/creds_source.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/xml.h"
#include "aws/http.h"

#define STS_CONNECT_MS 5000L
#define STS_TIMEOUT_MS 15000L
#define RESULT "AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials/"

/* The source's settings (struct af_creds_source's str). */
enum { TOKEN_FILE, ROLE_ARN, SESSION_NAME, STS_URL };

void af_creds_sts_url(const char *region, char *out, size_t n)
{
        bool ok = region && *region && strlen(region) < 64;

        /* A region is a DNS label; anything else would change the host, so it is ignored. */
        for (const char *p = region; ok && *p; p++)
                ok = isalnum((unsigned char)*p) || *p == '-';
        if (!ok)
                snprintf(out, n, "https://sts.amazonaws.com");
        else
                snprintf(out, n, "https://sts.%s.amazonaws.com%s", region,
                         strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
}

/* application/x-www-form-urlencoded value: unreserved characters stay, the rest is %XX. */
static int form_escape(struct af_buf *out, const char *s, size_t len)
{
        static const char hex[] = "0123456789ABCDEF";
        int r = 0;

        for (size_t i = 0; i < len && r == 0; i++) {
                unsigned char c = (unsigned char)s[i];

                if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
                        r = af_buf_addc(out, (char)c);
                } else {
                        char e[3] = { '%', hex[c >> 4], hex[c & 15] };

                        r = af_buf_add(out, e, 3);
                }
        }
        return r;
}

/* The AssumeRoleWithWebIdentity form, with the token read from its file now. */
static int build_form(const struct af_creds_source *s, struct af_buf *form, struct af_buf *why)
{
        struct af_buf jwt;
        int r;

        af_buf_init(&jwt, AF_CREDS_TOKEN_FILE_CAP);
        r = af_creds_read_file(s->str[TOKEN_FILE], AF_CREDS_TOKEN_FILE_CAP, &jwt);
        if (r < 0) {
                (void)af_buf_addf(why, "AWS_WEB_IDENTITY_TOKEN_FILE %s: %s", s->str[TOKEN_FILE],
                                  strerror(-r));
                goto out;
        }
        af_creds_trim_right(&jwt);
        if (jwt.len == 0) {
                (void)af_buf_addf(why, "AWS_WEB_IDENTITY_TOKEN_FILE %s is empty",
                                  s->str[TOKEN_FILE]);
                r = -ENOKEY;
                goto out;
        }
        r = af_buf_adds(form, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=");
        if (r == 0)
                r = form_escape(form, s->str[ROLE_ARN], strlen(s->str[ROLE_ARN]));
        if (r == 0)
                r = af_buf_adds(form, "&RoleSessionName=");
        if (r == 0)
                r = form_escape(form, s->str[SESSION_NAME], strlen(s->str[SESSION_NAME]));
        if (r == 0)
                r = af_buf_adds(form, "&WebIdentityToken=");
        if (r == 0)
                r = form_escape(form, jwt.ptr, jwt.len);
out:
        af_creds_scrub(&jwt);
        return r;
}

/* POSTs @form to STS; a non-200 answer is an error naming STS's Code and Message. */
static int post(const struct af_creds_source *s, const struct af_buf *form, struct af_buf *body,
                struct af_buf *why)
{
        static const char *const hdrs[] = {
                "Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL
        };
        struct af_http_req req = { .method = "POST",
                                   .url = s->str[STS_URL],
                                   .headers = hdrs,
                                   .body = form->ptr,
                                   .body_len = form->len,
                                   .connect_timeout_ms = STS_CONNECT_MS,
                                   .timeout_ms = STS_TIMEOUT_MS,
                                   .max_body = AF_CREDS_RESPONSE_CAP };
        char code[128] = "", msg[256] = "";
        struct af_buf herr;
        long status = 0;
        int r;

        af_buf_init(&herr, AF_CREDS_WHY_CAP);
        r = af_http_request(&req, &status, body, &herr);
        if (r < 0)
                (void)af_buf_addf(why, "STS %s at %s", af_buf_str(&herr), s->str[STS_URL]);
        af_buf_done(&herr);
        if (r < 0 || status == 200)
                return r;
        (void)af_xml_get(af_buf_str(body), body->len, "ErrorResponse/Error/Code", code,
                         sizeof(code));
        (void)af_xml_get(af_buf_str(body), body->len, "ErrorResponse/Error/Message", msg,
                         sizeof(msg));
        (void)af_buf_addf(why, "STS AssumeRoleWithWebIdentity at %s: HTTP %ld %s: %s",
                          s->str[STS_URL], status, code[0] ? code : "-",
                          msg[0] ? msg : "no message");
        return af_creds_status_errno(status);
}

/* The credentials in a 200 answer. */
static int parse(const struct af_creds_source *s, const struct af_buf *body, struct af_creds *c,
                 struct af_buf *why)
{
        char ak[128], sk[128], tok[AF_CREDS_TOKEN_MAX], exp[64], source[sizeof(c->source)];
        const char *b = af_buf_str(body);
        time_t expiration = 0;
        int r;

        tok[0] = sk[0] = '\0';
        r = af_xml_get(b, body->len, RESULT "AccessKeyId", ak, sizeof(ak));
        if (r == 0)
                r = af_xml_get(b, body->len, RESULT "SecretAccessKey", sk, sizeof(sk));
        if (r == 0)
                r = af_xml_get(b, body->len, RESULT "SessionToken", tok, sizeof(tok));
        if (r == 0)
                r = af_xml_get(b, body->len, RESULT "Expiration", exp, sizeof(exp));
        if (r == 0 && af_rfc3339_parse(exp, AF_RFC3339_LENIENT, &expiration, NULL) < 0)
                r = -EBADMSG;
        if (r < 0) {
                (void)af_buf_addf(why, "STS at %s answered 200 without AccessKeyId, "
                                       "SecretAccessKey, SessionToken and Expiration in "
                                       "AssumeRoleWithWebIdentityResult/Credentials",
                                  s->str[STS_URL]);
                r = -EBADMSG;
                goto out;
        }
        (void)snprintf(source, sizeof(source), "web-identity (role %s)", s->str[ROLE_ARN]);
        r = af_creds_set(c, ak, sk, tok, expiration, source, why);
out:
        explicit_bzero(sk, sizeof(sk));
        explicit_bzero(tok, sizeof(tok));
        return r;
}

static int fetch(const struct af_creds_source *s, struct af_creds *c, struct af_buf *why)
{
        struct af_buf form, body;
        int r;

        af_buf_init(&form, 2 * AF_CREDS_TOKEN_FILE_CAP);
        af_buf_init(&body, AF_CREDS_RESPONSE_CAP);
        r = build_form(s, &form, why);
        if (r == 0)
                r = post(s, &form, &body, why);
        if (r == 0)
                r = parse(s, &body, c, why);
        af_creds_scrub(&form);
        af_creds_scrub(&body);
        return r;
}

static const struct af_creds_source_ops ops = { .name = "web identity", .fetch = fetch };

int af_creds_sts_step(struct af_creds_source **ret_src, struct af_creds *c, struct af_buf *why,
                      bool *stop)
{
        const char *tf = af_creds_env("AWS_WEB_IDENTITY_TOKEN_FILE");
        const char *arn = af_creds_env("AWS_ROLE_ARN");
        const char *name = af_creds_env("AWS_ROLE_SESSION_NAME");
        const char *sts = af_creds_env("AWS_ENDPOINT_URL_STS");
        const char *region = af_creds_env("AWS_REGION");
        char url[512], gen[64];

        (void)stop;
        if (!tf) {
                (void)af_buf_addf(why, "AWS_WEB_IDENTITY_TOKEN_FILE not set%s",
                                  arn ? " (AWS_ROLE_ARN is)" : "");
                return -ENOENT;
        }
        if (!arn) {
                (void)af_buf_adds(why, "AWS_WEB_IDENTITY_TOKEN_FILE set but AWS_ROLE_ARN not");
                return -ENOENT;
        }
        if (!region)
                region = af_creds_env("AWS_DEFAULT_REGION");
        af_creds_sts_url(region, url, sizeof(url));
        /* The SDKs make up a session name when none is given; ours says who we are. */
        (void)snprintf(gen, sizeof(gen), "artifuse-%lld", (long long)time(NULL));
        return af_creds_source_start(AF_CREDS_WEB_IDENTITY, &ops,
                                     (const char *const[]){ tf, arn, name ? name : gen,
                                                            sts ? sts : url },
                                     ret_src, c, why);
}
