/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS SDK default credential chain behind one provider; see creds.h.
 *
 * Layout: pure parsers (INI, JSON, XML, time, URLs), then one fetch function per source
 * that can be asked again (web identity, container, IMDS, credential_process), then the
 * chain walked once at start-up, then the provider: the lock, the refresh decision and the
 * hand-out of copies.
 *
 * Invariants: a secret is never put in a `why` text or a log line (reasons name variables,
 * files, URLs, HTTP statuses and the service's own error code and message); buffers that
 * held secrets are scrubbed before they are freed; outputs are written only on success.
 */
#include "aws/creds.h"
#include "base/clock.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aws/http.h"
#include "base/json.h"
#include "base/log.h"
#include "base/xml.h"

extern char **environ;

#define FILE_CAP ((size_t)1 << 20)        /* shared config files */
#define TOKEN_FILE_CAP ((size_t)64 << 10) /* web identity and authorization token files */
#define RESPONSE_CAP ((size_t)64 << 10)   /* STS, container, IMDS and process output */
#define WHY_CAP 1024
#define PROCESS_TIMEOUT_MS 60000 /* the AWS SDKs' credential_process default */
#define IMDS_CONNECT_MS 1000L
#define IMDS_TIMEOUT_MS 3000L
#define CONTAINER_CONNECT_MS 2000L
#define CONTAINER_TIMEOUT_MS 5000L
#define STS_CONNECT_MS 5000L
#define STS_TIMEOUT_MS 15000L
#define ECS_HOST "http://169.254.170.2"
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_DEFAULT_V6 "http://[fd00:ec2::254]"

/* ---- small helpers ----------------------------------------------------------------------- */

/* The SDKs treat an empty variable as unset; so do we. */
static const char *env(const char *name)
{
        const char *v = getenv(name);

        return v && *v ? v : NULL;
}

static int copy_str(char *dst, size_t n, const char *src, size_t len)
{
        if (len >= n)
                return -E2BIG;
        memcpy(dst, src, len);
        dst[len] = '\0';
        return 0;
}

static void scrub_buf(struct af_buf *b)
{
        if (b->ptr)
                explicit_bzero(b->ptr, b->alloc);
        af_buf_done(b);
}

static void trim_right(struct af_buf *b)
{
        size_t n = b->len;

        while (n && isspace((unsigned char)b->ptr[n - 1]))
                n--;
        af_buf_truncate(b, n);
}

/* Whole file into @out (replacing its contents), at most @cap bytes. */
static int read_file(const char *path, size_t cap, struct af_buf *out)
{
        struct af_buf b;
        char chunk[4096];
        ssize_t n;
        int fd, r = 0;

        af_buf_init(&b, cap);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (;;) {
                n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                r = af_buf_add(&b, chunk, (size_t)n);
                if (r < 0)
                        break;
        }
        explicit_bzero(chunk, sizeof(chunk));
        close(fd);
        if (r == 0) {
                struct af_buf old = *out;

                *out = b;
                b = old;
        }
        scrub_buf(&b);
        return r;
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

/*
 * A credential goes into an HTTP header (Authorization, x-amz-security-token) when S3 is
 * signed: anything but printable ASCII could split or corrupt the request.
 */
static bool header_safe(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
                        return false;
        return true;
}

static void format_time(time_t t, char *out, size_t n)
{
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(out, n, "%lld", (long long)t);
}

/* ---- INI (shared config and credentials files) ------------------------------------------- */

static bool blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* "[ profile  x ]" matches "profile x": outer whitespace trimmed, inner runs are one space. */
static bool section_is(const char *a, const char *b, const char *want)
{
        while (a < b && blank(*a))
                a++;
        while (b > a && blank(b[-1]))
                b--;
        while (a < b) {
                if (blank(*a)) {
                        if (*want != ' ')
                                return false;
                        while (a < b && blank(*a))
                                a++;
                        want++;
                        continue;
                }
                if (*a != *want)
                        return false;
                a++;
                want++;
        }
        return *want == '\0';
}

int af_creds_ini_get(const char *text, size_t len, const char *section, const char *key,
                     char *out, size_t n)
{
        const char *p = text, *end = text + len, *val = NULL;
        bool in_section = false, found_section = false, have_key_line = false;
        size_t vlen = 0, key_indent = 0;

        /* Editors on some systems start UTF-8 files with a byte order mark. */
        if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
                p += 3;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *line = p, *s = p, *e = nl ? nl : end, *eq, *k, *ke, *v;
                size_t indent;

                p = nl ? nl + 1 : end;
                while (s < e && blank(*s))
                        s++;
                indent = (size_t)(s - line);
                while (e > s && blank(e[-1]))
                        e--;
                if (s == e || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        const char *close = memchr(s, ']', (size_t)(e - s));

                        have_key_line = false;
                        /* A malformed header ends the section we were in. */
                        in_section = close && section_is(s + 1, close, section);
                        found_section = found_section || in_section;
                        continue;
                }
                /*
                 * configparser's rule, which botocore follows: a line indented deeper than
                 * the key line above it continues that key's value. Nested settings
                 * ("s3 =" then "  addressing_style = path") are such lines; we skip them.
                 */
                if (have_key_line && indent > key_indent)
                        continue;
                eq = memchr(s, '=', (size_t)(e - s));
                if (!eq) {
                        have_key_line = false;
                        continue;
                }
                have_key_line = true;
                key_indent = indent;
                if (!in_section || !key)
                        continue;
                k = s;
                ke = eq;
                while (ke > k && blank(ke[-1]))
                        ke--;
                if ((size_t)(ke - k) != strlen(key) || strncasecmp(k, key, (size_t)(ke - k)) != 0)
                        continue;
                v = eq + 1;
                while (v < e && blank(*v))
                        v++;
                /* An inline comment starts at '#' or ';' after whitespace. */
                for (const char *q = v; q < e; q++) {
                        if ((*q == '#' || *q == ';') && q > v && blank(q[-1])) {
                                e = q;
                                break;
                        }
                }
                while (e > v && blank(e[-1]))
                        e--;
                val = v;
                vlen = (size_t)(e - v);
        }
        if (!found_section)
                return -ESRCH;
        if (!key)
                return 0;
        if (!val)
                return -ENOENT;
        return copy_str(out, n, val, vlen);
}

/* ---- time and the refresh decision -------------------------------------------------------- */

time_t af_creds_refresh_at(time_t now, time_t expiration, time_t window)
{
        time_t at, half, floor;

        if (!expiration)
                return 0;
        /*
         * Credentials that live shorter than the window would be "due" at once and then on
         * every request; the floor spaces the fetches out (but never past halfway).
         */
        at = expiration - window;
        half = (expiration - now) / 2;
        floor = now + (half < AF_CREDS_MIN_INTERVAL ? (half > 0 ? half : 0)
                                                    : AF_CREDS_MIN_INTERVAL);
        return at > floor ? at : floor;
}

enum af_creds_action af_creds_decide(const struct af_creds_clock *c, time_t now)
{
        bool usable = c->have && !c->invalid &&
                      (!c->expiration || now < c->expiration - AF_CREDS_EXPIRY_MARGIN);
        bool due;

        if (!c->refreshable)
                return usable ? AF_CREDS_USE : AF_CREDS_FAIL;
        due = !usable || (c->refresh_at && now >= c->refresh_at);
        if (!due)
                return AF_CREDS_USE;
        if (c->refreshing)
                return usable ? AF_CREDS_USE : AF_CREDS_WAIT;
        if (now < c->retry_at)
                return usable ? AF_CREDS_USE : AF_CREDS_FAIL;
        return AF_CREDS_REFRESH;
}

/* ---- endpoints ---------------------------------------------------------------------------- */

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

int af_creds_container_url(const char *relative, const char *full, char *out, size_t n,
                           struct af_buf *why)
{
        const char *h, *he;
        char host[256];
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
        if (!https) {
                const char *hs = h, *hend;

                if (*h == '[') {
                        hs = h + 1;
                        hend = memchr(hs, ']', (size_t)(he - hs));
                } else {
                        hend = memchr(h, ':', (size_t)(he - h));
                        if (!hend)
                                hend = he;
                }
                if (!hend || copy_str(host, sizeof(host), hs, (size_t)(hend - hs)) < 0 ||
                    !http_host_allowed(host)) {
                        (void)af_buf_addf(why, "AWS_CONTAINER_CREDENTIALS_FULL_URI %s: plain "
                                               "http is allowed only to loopback, "
                                               "169.254.170.2, 169.254.170.23 or "
                                               "[fd00:ec2::23]; use https", af_q(full));
                        return -EINVAL;
                }
        }
        len = snprintf(out, n, "%s", full);
        return len < 0 || (size_t)len >= n ? -E2BIG : 0;
}

/* ---- sources that can be asked again -------------------------------------------------------- */

struct af_creds_source {
        enum af_creds_kind kind;
        /* web identity */
        char *token_file, *role_arn, *session_name, *sts_url;
        /* container */
        char *url, *auth_file, *auth_token;
        /* IMDS */
        char *imds_base;
        /* credential_process */
        char *command, *profile;
};

static void source_clear(struct af_creds_source *s)
{
        char **f[] = { &s->token_file, &s->role_arn, &s->session_name, &s->sts_url,
                       &s->url, &s->auth_file, &s->auth_token, &s->imds_base, &s->command,
                       &s->profile };

        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
                if (*f[i]) {
                        explicit_bzero(*f[i], strlen(*f[i]));
                        free(*f[i]);
                        *f[i] = NULL;
                }
        }
        s->kind = AF_CREDS_NONE;
}

static int set_str(char **dst, const char *src)
{
        char *d = strdup(src);

        if (!d)
                return -ENOMEM;
        free(*dst);
        *dst = d;
        return 0;
}

/* Fills @c after checking each value fits and can go in a header; no value reaches @why. */
static int set_creds(struct af_creds *c, const char *ak, const char *sk, const char *tok,
                     time_t expiration, const char *source, struct af_buf *why)
{
        struct af_creds n;
        int r;

        memset(&n, 0, sizeof(n));
        if (!*ak || !*sk) {
                (void)af_buf_addf(why, "%s is empty",
                                  !*ak ? "the access key id" : "the secret key");
                return -EBADMSG;
        }
        r = copy_str(n.access_key, sizeof(n.access_key), ak, strlen(ak));
        if (r == 0)
                r = copy_str(n.secret_key, sizeof(n.secret_key), sk, strlen(sk));
        if (r == 0)
                r = copy_str(n.session_token, sizeof(n.session_token), tok, strlen(tok));
        if (r < 0) {
                (void)af_buf_addf(why, "credentials too long (access key id < %zu, secret key "
                                       "< %zu, session token < %zu bytes)",
                                  sizeof(n.access_key), sizeof(n.secret_key),
                                  sizeof(n.session_token));
                goto out;
        }
        if (!header_safe(ak) || !header_safe(sk) || !header_safe(tok)) {
                (void)af_buf_adds(why, "credentials contain characters other than printable "
                                       "ASCII");
                r = -EBADMSG;
                goto out;
        }
        if (expiration && expiration <= time(NULL) + AF_CREDS_EXPIRY_MARGIN) {
                char when[32];

                format_time(expiration, when, sizeof(when));
                (void)af_buf_addf(why, "the credentials expire at %s, which is already past "
                                       "(is the clock right?)", when);
                r = -EKEYEXPIRED;
                goto out;
        }
        (void)snprintf(n.source, sizeof(n.source), "%s", source);
        n.expiration = expiration;
        *c = n;
out:
        explicit_bzero(&n, sizeof(n));
        return r;
}

/* The credential fields of a JSON document (container, IMDS, credential_process). */
static int creds_from_json(const struct af_buf *body, const char *token_key,
                           const char *source, struct af_creds *c, struct af_buf *why)
{
        char ak[128], sk[128], tok[AF_CREDS_TOKEN_MAX], exp[64];
        time_t expiration = 0;
        int r;

        tok[0] = exp[0] = '\0';
        r = af_json_get(body->ptr ? body->ptr : "", body->len, "AccessKeyId", ak,
                              sizeof(ak));
        if (r == AF_JSON_STRING)
                r = af_json_get(body->ptr, body->len, "SecretAccessKey", sk, sizeof(sk));
        if (r == -EBADMSG) {
                (void)af_buf_adds(why, "the response is not a JSON object");
                goto out;
        }
        if (r != AF_JSON_STRING) {
                (void)af_buf_addf(why, "the response has no AccessKeyId and SecretAccessKey "
                                       "strings");
                r = -EBADMSG;
                goto out;
        }
        r = af_json_get(body->ptr, body->len, token_key, tok, sizeof(tok));
        if (r == -E2BIG) {
                (void)af_buf_addf(why, "%s longer than %zu bytes", token_key, sizeof(tok) - 1);
                goto out;
        }
        if (r != AF_JSON_STRING)
                tok[0] = '\0';
        r = af_json_get(body->ptr, body->len, "Expiration", exp, sizeof(exp));
        if (r == AF_JSON_STRING && af_rfc3339_parse(exp, AF_RFC3339_LENIENT, &expiration, NULL) < 0) {
                (void)af_buf_addf(why, "Expiration %s is not an ISO 8601 time", af_q(exp));
                r = -EBADMSG;
                goto out;
        }
        r = set_creds(c, ak, sk, tok, expiration, source, why);
out:
        explicit_bzero(sk, sizeof(sk));
        explicit_bzero(tok, sizeof(tok));
        return r < 0 ? r : 0;
}

/* An HTTP status the service answered instead of credentials, as an errno. */
static int status_errno(long status)
{
        if (status == 401 || status == 403 || status == 400)
                return -EACCES;
        if (status == 404)
                return -ENOENT;
        if (status == 429 || status >= 500)
                return -EAGAIN;
        return -EPROTO;
}

static int fetch_web_identity(const struct af_creds_source *s, struct af_creds *c,
                              struct af_buf *why)
{
        char ak[128], sk[128], tok[AF_CREDS_TOKEN_MAX], exp[64], code[128], msg[256];
        struct af_buf jwt, form, body;
        char source[sizeof(c->source)];
        time_t expiration = 0;
        long status = 0;
        int r;

        af_buf_init(&jwt, TOKEN_FILE_CAP);
        af_buf_init(&form, 2 * TOKEN_FILE_CAP);
        af_buf_init(&body, RESPONSE_CAP);
        tok[0] = sk[0] = '\0';
        /* Re-read each time: the kubelet rotates the projected token file. */
        r = read_file(s->token_file, TOKEN_FILE_CAP, &jwt);
        if (r < 0) {
                (void)af_buf_addf(why, "AWS_WEB_IDENTITY_TOKEN_FILE %s: %s", s->token_file,
                                  strerror(-r));
                goto out;
        }
        trim_right(&jwt);
        if (jwt.len == 0) {
                (void)af_buf_addf(why, "AWS_WEB_IDENTITY_TOKEN_FILE %s is empty", s->token_file);
                r = -ENOKEY;
                goto out;
        }
        r = af_buf_adds(&form, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=");
        if (r == 0)
                r = form_escape(&form, s->role_arn, strlen(s->role_arn));
        if (r == 0)
                r = af_buf_adds(&form, "&RoleSessionName=");
        if (r == 0)
                r = form_escape(&form, s->session_name, strlen(s->session_name));
        if (r == 0)
                r = af_buf_adds(&form, "&WebIdentityToken=");
        if (r == 0)
                r = form_escape(&form, jwt.ptr, jwt.len);
        if (r < 0)
                goto out;
        {
                static const char *const hdrs[] = {
                        "Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL
                };
                struct af_http_req req = { .method = "POST",
                                           .url = s->sts_url,
                                           .headers = hdrs,
                                           .body = form.ptr,
                                           .body_len = form.len,
                                           .connect_timeout_ms = STS_CONNECT_MS,
                                           .timeout_ms = STS_TIMEOUT_MS,
                                           .max_body = RESPONSE_CAP };
                struct af_buf herr;

                af_buf_init(&herr, WHY_CAP);
                r = af_http_request(&req, &status, &body, &herr);
                if (r < 0)
                        (void)af_buf_addf(why, "STS %s at %s", af_buf_str(&herr), s->sts_url);
                af_buf_done(&herr);
                if (r < 0)
                        goto out;
        }
        if (status != 200) {
                code[0] = msg[0] = '\0';
                (void)af_xml_get(body.ptr ? body.ptr : "", body.len,
                                       "ErrorResponse/Error/Code", code, sizeof(code));
                (void)af_xml_get(body.ptr ? body.ptr : "", body.len,
                                       "ErrorResponse/Error/Message", msg, sizeof(msg));
                (void)af_buf_addf(why, "STS AssumeRoleWithWebIdentity at %s: HTTP %ld %s: %s",
                                  s->sts_url, status, code[0] ? code : "-",
                                  msg[0] ? msg : "no message");
                r = status_errno(status);
                goto out;
        }
#define CREDS_PATH "AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials/"
        r = af_xml_get(body.ptr ? body.ptr : "", body.len, CREDS_PATH "AccessKeyId", ak,
                             sizeof(ak));
        if (r == 0)
                r = af_xml_get(body.ptr, body.len, CREDS_PATH "SecretAccessKey", sk,
                                     sizeof(sk));
        if (r == 0)
                r = af_xml_get(body.ptr, body.len, CREDS_PATH "SessionToken", tok,
                                     sizeof(tok));
        if (r == 0)
                r = af_xml_get(body.ptr, body.len, CREDS_PATH "Expiration", exp,
                                     sizeof(exp));
#undef CREDS_PATH
        if (r == 0 && af_rfc3339_parse(exp, AF_RFC3339_LENIENT, &expiration, NULL) < 0)
                r = -EBADMSG;
        if (r < 0) {
                (void)af_buf_addf(why, "STS at %s answered 200 without AccessKeyId, "
                                       "SecretAccessKey, SessionToken and Expiration in "
                                       "AssumeRoleWithWebIdentityResult/Credentials",
                                  s->sts_url);
                r = -EBADMSG;
                goto out;
        }
        (void)snprintf(source, sizeof(source), "web-identity (role %s)", s->role_arn);
        r = set_creds(c, ak, sk, tok, expiration, source, why);
out:
        explicit_bzero(sk, sizeof(sk));
        explicit_bzero(tok, sizeof(tok));
        scrub_buf(&jwt);
        scrub_buf(&form);
        scrub_buf(&body);
        return r;
}

static int fetch_container(const struct af_creds_source *s, struct af_creds *c,
                           struct af_buf *why)
{
        struct af_buf tokbuf, auth, body, herr;
        const char *hdrs[2] = { NULL, NULL };
        char source[sizeof(c->source)];
        long status = 0;
        int r = 0;

        af_buf_init(&tokbuf, TOKEN_FILE_CAP);
        af_buf_init(&auth, TOKEN_FILE_CAP + 64);
        af_buf_init(&body, RESPONSE_CAP);
        af_buf_init(&herr, WHY_CAP);
        /* The file wins over the variable; re-read each time, as EKS rotates it. */
        if (s->auth_file) {
                r = read_file(s->auth_file, TOKEN_FILE_CAP, &tokbuf);
                if (r < 0) {
                        (void)af_buf_addf(why, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s",
                                          s->auth_file, strerror(-r));
                        goto out;
                }
                trim_right(&tokbuf);
        } else if (s->auth_token) {
                r = af_buf_adds(&tokbuf, s->auth_token);
                if (r < 0)
                        goto out;
        }
        if (tokbuf.len) {
                if (memchr(tokbuf.ptr, '\n', tokbuf.len) || memchr(tokbuf.ptr, '\r', tokbuf.len) ||
                    strlen(tokbuf.ptr) != tokbuf.len) {
                        (void)af_buf_addf(why, "the container authorization token (%s) "
                                               "contains a line break or NUL",
                                          s->auth_file ? "file" : "variable");
                        r = -EINVAL;
                        goto out;
                }
                r = af_buf_addf(&auth, "Authorization: %s", tokbuf.ptr);
                if (r < 0)
                        goto out;
                hdrs[0] = auth.ptr;
        }
        {
                struct af_http_req req = { .method = "GET",
                                           .url = s->url,
                                           .headers = hdrs,
                                           .connect_timeout_ms = CONTAINER_CONNECT_MS,
                                           .timeout_ms = CONTAINER_TIMEOUT_MS,
                                           .max_body = RESPONSE_CAP,
                                           .no_proxy = strncasecmp(s->url, "http://", 7) == 0 };

                r = af_http_request(&req, &status, &body, &herr);
        }
        if (r < 0) {
                (void)af_buf_addf(why, "%s at %s", af_buf_str(&herr), s->url);
                goto out;
        }
        if (status != 200) {
                char msg[256] = "";

                if (af_json_get(body.ptr ? body.ptr : "", body.len, "message", msg,
                                      sizeof(msg)) != AF_JSON_STRING)
                        msg[0] = '\0';
                (void)af_buf_addf(why, "%s answered HTTP %ld%s%s", s->url, status,
                                  msg[0] ? ": " : "", msg);
                r = status_errno(status);
                goto out;
        }
        (void)snprintf(source, sizeof(source), "container (%s)", s->url);
        r = creds_from_json(&body, "Token", source, c, why);
        if (r < 0) {
                struct af_buf w2;

                /* Say where the bad document came from. */
                af_buf_init(&w2, WHY_CAP);
                (void)af_buf_addf(&w2, "%s: %s", s->url, af_buf_str(why));
                (void)af_buf_sets(why, af_buf_str(&w2));
                af_buf_done(&w2);
        }
out:
        scrub_buf(&tokbuf);
        scrub_buf(&auth);
        scrub_buf(&body);
        af_buf_done(&herr);
        return r;
}

/* One IMDS request; @what names the step in errors. */
static int imds_call(const char *base, const char *method, const char *path,
                     const char *header, const char *what, struct af_buf *body,
                     struct af_buf *why)
{
        const char *hdrs[2] = { header, NULL };
        struct af_buf url, herr;
        long status = 0;
        int r;

        af_buf_init(&url, 4096);
        af_buf_init(&herr, WHY_CAP);
        r = af_buf_addf(&url, "%s%s", base, path);
        if (r == 0) {
                struct af_http_req req = { .method = method,
                                           .url = url.ptr,
                                           .headers = hdrs,
                                           .connect_timeout_ms = IMDS_CONNECT_MS,
                                           .timeout_ms = IMDS_TIMEOUT_MS,
                                           .max_body = RESPONSE_CAP,
                                           .no_proxy = true };

                r = af_http_request(&req, &status, body, &herr);
                if (r < 0)
                        (void)af_buf_addf(why, "%s at %s", af_buf_str(&herr), base);
        }
        if (r == 0 && status != 200) {
                (void)af_buf_addf(why, "%s (%s %s) answered HTTP %ld at %s", what, method, path,
                                  status, base);
                r = status_errno(status);
        }
        af_buf_done(&url);
        af_buf_done(&herr);
        return r;
}

static int fetch_imds(const struct af_creds_source *s, struct af_creds *c, struct af_buf *why)
{
        static const char creds_path[] = "/latest/meta-data/iam/security-credentials/";
        struct af_buf token, hdr, body, path;
        char role[128], code[64], source[sizeof(c->source)];
        size_t rl;
        int r;

        af_buf_init(&token, RESPONSE_CAP);
        af_buf_init(&hdr, RESPONSE_CAP + 64);
        af_buf_init(&body, RESPONSE_CAP);
        af_buf_init(&path, 4096);
        /* IMDSv2: a session token first (PUT), then every GET carries it. */
        r = imds_call(s->imds_base, "PUT", "/latest/api/token",
                      "X-aws-ec2-metadata-token-ttl-seconds: 21600", "the IMDSv2 token request",
                      &token, why);
        if (r < 0)
                goto out;
        trim_right(&token);
        if (token.len == 0 || !header_safe(token.ptr)) {
                (void)af_buf_addf(why, "the IMDSv2 token from %s is empty or not printable",
                                  s->imds_base);
                r = -EPROTO;
                goto out;
        }
        r = af_buf_addf(&hdr, "X-aws-ec2-metadata-token: %s", token.ptr);
        if (r < 0)
                goto out;
        r = imds_call(s->imds_base, "GET", creds_path, hdr.ptr,
                      "the IAM role lookup (no instance profile attached?)", &body, why);
        if (r < 0)
                goto out;
        /* One role per instance profile: the first line. */
        rl = strcspn(af_buf_str(&body), "\r\n");
        while (rl && isspace((unsigned char)body.ptr[rl - 1]))
                rl--;
        if (rl == 0 || copy_str(role, sizeof(role), body.ptr, rl) < 0) {
                (void)af_buf_addf(why, "no IAM role name at %s%s", s->imds_base, creds_path);
                r = -ENOENT;
                goto out;
        }
        /* IAM role names are [A-Za-z0-9+=,.@_-]: nothing that could change the URL. */
        for (size_t i = 0; i < rl; i++) {
                if (!isalnum((unsigned char)role[i]) && !strchr("+=,.@_-", role[i])) {
                        (void)af_buf_addf(why, "IMDS at %s returned a role name with "
                                               "unexpected characters", s->imds_base);
                        r = -EPROTO;
                        goto out;
                }
        }
        r = af_buf_addf(&path, "%s%s", creds_path, role);
        if (r == 0)
                r = imds_call(s->imds_base, "GET", path.ptr, hdr.ptr,
                              "the role credentials request", &body, why);
        if (r < 0)
                goto out;
        if (af_json_get(body.ptr ? body.ptr : "", body.len, "Code", code, sizeof(code)) ==
                    AF_JSON_STRING &&
            strcmp(code, "Success") != 0) {
                char msg[256] = "";

                if (af_json_get(body.ptr, body.len, "Message", msg, sizeof(msg)) !=
                    AF_JSON_STRING)
                        msg[0] = '\0';
                (void)af_buf_addf(why, "IMDS at %s: role %s: Code %s%s%s", s->imds_base, role,
                                  code, msg[0] ? ": " : "", msg);
                r = -EACCES;
                goto out;
        }
        (void)snprintf(source, sizeof(source), "imds (role %s)", role);
        r = creds_from_json(&body, "Token", source, c, why);
out:
        scrub_buf(&token);
        scrub_buf(&hdr);
        scrub_buf(&body);
        af_buf_done(&path);
        return r;
}

/* Runs @command with /bin/sh -c (as the SDKs do on Unix); its stdout into @out. */
static int run_process(const char *command, const char *profile, struct af_buf *out,
                       struct af_buf *why)
{
        char sh[] = "/bin/sh", dash_c[] = "-c";
        char *argv[] = { sh, dash_c, NULL, NULL };
        posix_spawn_file_actions_t fa;
        uint64_t t0;
        char chunk[4096];
        int pfd[2] = { -1, -1 }, st = 0, r = 0;
        bool have_fa = false, timed_out = false;
        pid_t pid = -1;

        argv[2] = strdup(command);
        if (!argv[2])
                return -ENOMEM;
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                r = -errno;
                (void)af_buf_addf(why, "pipe: %s", strerror(-r));
                goto out;
        }
        r = -posix_spawn_file_actions_init(&fa);
        if (r < 0)
                goto out;
        have_fa = true;
        /* dup2 onto 1 clears close-on-exec there; stdin is /dev/null, stderr is ours. */
        r = -posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
        if (r == 0)
                r = -posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY,
                                                      0);
        if (r == 0)
                r = -posix_spawn(&pid, sh, &fa, NULL, argv, environ);
        if (r < 0) {
                (void)af_buf_addf(why, "cannot run credential_process of profile '%s': %s",
                                  profile, strerror(-r));
                pid = -1;
                goto out;
        }
        close(pfd[1]);
        pfd[1] = -1;
        t0 = af_clock_mono_ms();
        for (;;) {
                struct pollfd pf = { .fd = pfd[0], .events = POLLIN };
                long left;
                ssize_t n;
                int pr;

                left = PROCESS_TIMEOUT_MS - (long)(af_clock_mono_ms() - t0);
                if (left <= 0) {
                        timed_out = true;
                        break;
                }
                pr = poll(&pf, 1, (int)left);
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr < 0) {
                        r = -errno;
                        break;
                }
                if (pr == 0)
                        continue;
                n = read(pfd[0], chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                r = af_buf_add(out, chunk, (size_t)n);
                if (r < 0) {
                        (void)af_buf_addf(why, "credential_process of profile '%s' wrote more "
                                               "than %zu bytes", profile, out->cap);
                        break;
                }
        }
        if (timed_out || r < 0)
                (void)kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (timed_out) {
                (void)af_buf_addf(why, "credential_process of profile '%s' did not finish "
                                       "within %d s", profile, PROCESS_TIMEOUT_MS / 1000);
                r = -ETIMEDOUT;
        } else if (r == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                if (WIFEXITED(st))
                        (void)af_buf_addf(why, "credential_process of profile '%s' exited "
                                               "with status %d", profile, WEXITSTATUS(st));
                else
                        (void)af_buf_addf(why, "credential_process of profile '%s' was killed "
                                               "by signal %d", profile, WTERMSIG(st));
                r = -EIO;
        }
out:
        explicit_bzero(chunk, sizeof(chunk));
        if (have_fa)
                posix_spawn_file_actions_destroy(&fa);
        if (pfd[0] >= 0)
                close(pfd[0]);
        if (pfd[1] >= 0)
                close(pfd[1]);
        free(argv[2]);
        return r;
}

static int fetch_process(const struct af_creds_source *s, struct af_creds *c,
                         struct af_buf *why)
{
        char version[16], source[sizeof(c->source)];
        struct af_buf out;
        int r;

        af_buf_init(&out, RESPONSE_CAP);
        r = run_process(s->command, s->profile, &out, why);
        if (r < 0)
                goto out;
        /* The documented output is JSON with "Version": 1; other versions may differ. */
        r = af_json_get(out.ptr ? out.ptr : "", out.len, "Version", version,
                              sizeof(version));
        if (r != AF_JSON_NUMBER || strcmp(version, "1") != 0) {
                (void)af_buf_addf(why, "credential_process of profile '%s' did not print a "
                                       "JSON object with \"Version\": 1", s->profile);
                r = -EBADMSG;
                goto out;
        }
        (void)snprintf(source, sizeof(source), "profile %s (credential_process)", s->profile);
        r = creds_from_json(&out, "SessionToken", source, c, why);
        if (r < 0) {
                struct af_buf w2;

                af_buf_init(&w2, WHY_CAP);
                (void)af_buf_addf(&w2, "credential_process of profile '%s': %s", s->profile,
                                  af_buf_str(why));
                (void)af_buf_sets(why, af_buf_str(&w2));
                af_buf_done(&w2);
        }
out:
        scrub_buf(&out);
        return r;
}

static int fetch(const struct af_creds_source *s, struct af_creds *c, struct af_buf *why)
{
        switch (s->kind) {
        case AF_CREDS_WEB_IDENTITY:
                return fetch_web_identity(s, c, why);
        case AF_CREDS_CONTAINER:
                return fetch_container(s, c, why);
        case AF_CREDS_IMDS:
                return fetch_imds(s, c, why);
        case AF_CREDS_PROCESS:
                return fetch_process(s, c, why);
        default:
                return -EOPNOTSUPP;
        }
}

/* ---- the chain, once at start-up ------------------------------------------------------------ */

/*
 * Each step returns 0 with @c filled (and @s set up when the source can be asked again),
 * or a negative errno with the reason in @why. *stop ends the chain: a misconfiguration that
 * must not fall through to some other identity.
 */
typedef int chain_step_fn(struct af_creds_source *s, struct af_creds *c, struct af_buf *why,
                          bool *stop);

static int step_env(struct af_creds_source *s, struct af_creds *c, struct af_buf *why,
                    bool *stop)
{
        const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
        const char *tok = env("AWS_SESSION_TOKEN");
        int r;

        (void)s;
        if (!ak && !sk) {
                (void)af_buf_adds(why, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set");
                return -ENOENT;
        }
        if (!ak || !sk) {
                (void)af_buf_addf(why, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be "
                                       "set (only %s is)",
                                  ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY");
                *stop = true;
                return -EINVAL;
        }
        r = set_creds(c, ak, sk, tok ? tok : "", 0, "environment", why);
        if (r < 0)
                *stop = true; /* set but unusable: say so rather than use something else */
        return r < 0 ? -EINVAL : 0;
}

static const char *profile_name(bool *ret_explicit)
{
        const char *p = env("AWS_PROFILE");

        if (!p)
                p = env("AWS_DEFAULT_PROFILE");
        *ret_explicit = p != NULL;
        return p ? p : "default";
}

/* $VAR, else ~/.aws/<name>; a leading "~/" is the home directory, as in the SDKs. */
static int shared_path(const char *var, const char *name, struct af_buf *out,
                       struct af_buf *why)
{
        const char *v = env(var), *home = env("HOME");

        if (v && !(v[0] == '~' && (v[1] == '/' || !v[1])))
                return af_buf_sets(out, v);
        if (!home) {
                (void)af_buf_addf(why, "HOME not set, so no ~/.aws/%s", name);
                return -ENOENT;
        }
        if (v)
                return af_buf_addf(out, "%s%s", home, v + 1);
        return af_buf_addf(out, "%s/.aws/%s", home, name);
}

struct profile_files {
        struct af_buf cpath, fpath; /* credentials, config */
        struct af_buf ctext, ftext;
        int cerr, ferr;             /* 0 read, else -errno */
        char fsect[300];            /* the profile's section in the config file */
        bool in_c, in_f;
};

static void profile_files_done(struct profile_files *pf)
{
        af_buf_done(&pf->cpath);
        af_buf_done(&pf->fpath);
        scrub_buf(&pf->ctext);
        scrub_buf(&pf->ftext);
}

static int profile_files_load(struct profile_files *pf, const char *profile, struct af_buf *why)
{
        int r;

        memset(pf, 0, sizeof(*pf));
        af_buf_init(&pf->cpath, 4096);
        af_buf_init(&pf->fpath, 4096);
        af_buf_init(&pf->ctext, FILE_CAP);
        af_buf_init(&pf->ftext, FILE_CAP);
        r = shared_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", &pf->cpath, why);
        if (r == 0)
                r = shared_path("AWS_CONFIG_FILE", "config", &pf->fpath, why);
        if (r < 0)
                return r;
        pf->cerr = read_file(pf->cpath.ptr, FILE_CAP, &pf->ctext);
        pf->ferr = read_file(pf->fpath.ptr, FILE_CAP, &pf->ftext);
        pf->in_c = pf->cerr == 0 &&
                   af_creds_ini_get(pf->ctext.ptr, pf->ctext.len, profile, NULL, NULL, 0) == 0;
        /* The config file names profiles "[profile x]", except "[default]". */
        (void)snprintf(pf->fsect, sizeof(pf->fsect), "profile %s", profile);
        if (strcmp(profile, "default") == 0 && pf->ferr == 0 &&
            af_creds_ini_get(pf->ftext.ptr, pf->ftext.len, "default", NULL, NULL, 0) == 0)
                (void)snprintf(pf->fsect, sizeof(pf->fsect), "default");
        pf->in_f = pf->ferr == 0 && af_creds_ini_get(pf->ftext.ptr, pf->ftext.len, pf->fsect,
                                                     NULL, NULL, 0) == 0;
        return 0;
}

/* @key from the credentials file, else the config file; sets *ret_path to where. */
static int profile_get(const struct profile_files *pf, const char *profile, const char *key,
                       char *out, size_t n, const char **ret_path)
{
        int r = -ENOENT;

        if (pf->in_c) {
                r = af_creds_ini_get(pf->ctext.ptr, pf->ctext.len, profile, key, out, n);
                if (r == 0 || r == -E2BIG) {
                        *ret_path = pf->cpath.ptr;
                        return r;
                }
        }
        if (pf->in_f) {
                r = af_creds_ini_get(pf->ftext.ptr, pf->ftext.len, pf->fsect, key, out, n);
                if (r == 0 || r == -E2BIG)
                        *ret_path = pf->fpath.ptr;
        }
        return r;
}

static const char *file_state(int err)
{
        return err == 0 ? "" : err == -ENOENT ? " (missing)" : " (unreadable)";
}

static int step_profile(struct af_creds_source *s, struct af_creds *c, struct af_buf *why,
                        bool *stop)
{
        char ak[128], sk[128], tok[AF_CREDS_TOKEN_MAX], cmd[4096], other[8];
        const char *akp = NULL, *skp = NULL, *tp = NULL, *cp = NULL, *op = NULL;
        struct profile_files pf;
        bool explicit_profile;
        const char *profile = profile_name(&explicit_profile);
        int r, rak, rsk, rtok;

        tok[0] = '\0';
        r = profile_files_load(&pf, profile, why);
        if (r < 0)
                goto out;
        if (!pf.in_c && !pf.in_f) {
                (void)af_buf_addf(why, "%sno profile '%s' in %s%s or %s%s",
                                  explicit_profile ? "AWS_PROFILE: " : "", profile, pf.cpath.ptr,
                                  file_state(pf.cerr), pf.fpath.ptr, file_state(pf.ferr));
                /* The SDKs refuse a named profile that does not exist; so do we. */
                *stop = explicit_profile;
                r = explicit_profile ? -EINVAL : -ENOENT;
                goto out;
        }
        rak = profile_get(&pf, profile, "aws_access_key_id", ak, sizeof(ak), &akp);
        rsk = profile_get(&pf, profile, "aws_secret_access_key", sk, sizeof(sk), &skp);
        rtok = profile_get(&pf, profile, "aws_session_token", tok, sizeof(tok), &tp);
        if (rak == -E2BIG || rsk == -E2BIG || rtok == -E2BIG) {
                (void)af_buf_addf(why, "profile '%s': a credential is too long", profile);
                *stop = true;
                r = -EINVAL;
                goto out;
        }
        if (rak == 0 || rsk == 0) {
                char source[sizeof(c->source)];

                if (rak != 0 || rsk != 0) {
                        (void)af_buf_addf(why, "profile '%s' in %s has %s but no %s", profile,
                                          rak == 0 ? akp : skp,
                                          rak == 0 ? "aws_access_key_id" : "aws_secret_access_key",
                                          rak == 0 ? "aws_secret_access_key" : "aws_access_key_id");
                        *stop = true;
                        r = -EINVAL;
                        goto out;
                }
                (void)snprintf(source, sizeof(source), "profile %s (%s)", profile, akp);
                r = set_creds(c, ak, sk, rtok == 0 ? tok : "", 0, source, why);
                if (r < 0) {
                        *stop = true;
                        r = -EINVAL;
                }
                goto out;
        }
        r = profile_get(&pf, profile, "credential_process", cmd, sizeof(cmd), &cp);
        if (r == 0) {
                s->kind = AF_CREDS_PROCESS;
                r = set_str(&s->command, cmd);
                if (r == 0)
                        r = set_str(&s->profile, profile);
                if (r == 0)
                        r = fetch_process(s, c, why);
                goto out;
        }
        if (profile_get(&pf, profile, "role_arn", other, sizeof(other), &op) != -ENOENT ||
            profile_get(&pf, profile, "sso_session", other, sizeof(other), &op) != -ENOENT ||
            profile_get(&pf, profile, "sso_start_url", other, sizeof(other), &op) != -ENOENT) {
                (void)af_buf_addf(why, "profile '%s' assumes a role or uses SSO, which artifuse "
                                       "does not support; use credential_process or keys",
                                  profile);
                r = -EOPNOTSUPP;
                goto out;
        }
        (void)af_buf_addf(why, "profile '%s' in %s has no aws_access_key_id or "
                               "credential_process",
                          profile, pf.in_c ? pf.cpath.ptr : pf.fpath.ptr);
        r = -ENOENT;
out:
        explicit_bzero(sk, sizeof(sk));
        explicit_bzero(tok, sizeof(tok));
        explicit_bzero(cmd, sizeof(cmd));
        profile_files_done(&pf);
        return r;
}

static int step_web_identity(struct af_creds_source *s, struct af_creds *c, struct af_buf *why,
                             bool *stop)
{
        const char *tf = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *arn = env("AWS_ROLE_ARN");
        const char *name = env("AWS_ROLE_SESSION_NAME"), *sts = env("AWS_ENDPOINT_URL_STS");
        const char *region = env("AWS_REGION");
        char url[512], gen[64];
        int r;

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
                region = env("AWS_DEFAULT_REGION");
        af_creds_sts_url(region, url, sizeof(url));
        /* The SDKs make up a session name when none is given; ours says who we are. */
        (void)snprintf(gen, sizeof(gen), "artifuse-%lld", (long long)time(NULL));
        s->kind = AF_CREDS_WEB_IDENTITY;
        r = set_str(&s->token_file, tf);
        if (r == 0)
                r = set_str(&s->role_arn, arn);
        if (r == 0)
                r = set_str(&s->session_name, name ? name : gen);
        if (r == 0)
                r = set_str(&s->sts_url, sts ? sts : url);
        if (r < 0)
                return r;
        return fetch_web_identity(s, c, why);
}

static int step_container(struct af_creds_source *s, struct af_creds *c, struct af_buf *why,
                          bool *stop)
{
        const char *file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        const char *tok = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        char url[2048];
        int r;

        (void)stop;
        r = af_creds_container_url(env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
                                   env("AWS_CONTAINER_CREDENTIALS_FULL_URI"), url, sizeof(url),
                                   why);
        if (r == -E2BIG)
                (void)af_buf_adds(why, "the container credentials URI is too long");
        if (r < 0)
                return r;
        s->kind = AF_CREDS_CONTAINER;
        r = set_str(&s->url, url);
        if (r == 0 && file)
                r = set_str(&s->auth_file, file);
        if (r == 0 && tok)
                r = set_str(&s->auth_token, tok);
        if (r < 0)
                return r;
        return fetch_container(s, c, why);
}

static int step_imds(struct af_creds_source *s, struct af_creds *c, struct af_buf *why,
                     bool *stop)
{
        const char *off = env("AWS_EC2_METADATA_DISABLED");
        const char *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        const char *mode = env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        size_t l;
        int r;

        (void)stop;
        if (off && strcasecmp(off, "true") == 0) {
                (void)af_buf_adds(why, "disabled by AWS_EC2_METADATA_DISABLED");
                return -ENOENT;
        }
        if (!ep)
                ep = mode && strcasecmp(mode, "IPv6") == 0 ? IMDS_DEFAULT_V6 : IMDS_DEFAULT;
        s->kind = AF_CREDS_IMDS;
        r = set_str(&s->imds_base, ep);
        if (r < 0)
                return r;
        /* Paths start with '/': drop the endpoint's trailing ones. */
        l = strlen(s->imds_base);
        while (l > 0 && s->imds_base[l - 1] == '/')
                s->imds_base[--l] = '\0';
        return fetch_imds(s, c, why);
}

static const struct {
        const char *label;
        chain_step_fn *step;
        enum af_creds_kind kind; /* when the step leaves s->kind unset: static credentials */
} chain[] = {
        { "environment", step_env, AF_CREDS_ENV },
        { "shared files", step_profile, AF_CREDS_PROFILE },
        { "web identity", step_web_identity, AF_CREDS_WEB_IDENTITY },
        { "container", step_container, AF_CREDS_CONTAINER },
        { "IMDS", step_imds, AF_CREDS_IMDS },
};

/*
 * Walks the chain. On success @s holds what a refresh needs (its kind stays NONE for static
 * credentials) and *ret_kind says which source answered.
 */
static int run_chain(struct af_creds_source *s, struct af_creds *c,
                     enum af_creds_kind *ret_kind, struct af_buf *err)
{
        struct af_buf why, tried;
        bool stop = false;
        int r = -ENOKEY;

        af_buf_init(&why, WHY_CAP);
        af_buf_init(&tried, 8 * WHY_CAP);
        for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]); i++) {
                af_buf_reset(&why);
                source_clear(s);
                r = chain[i].step(s, c, &why, &stop);
                if (r == 0) {
                        af_log_debug("op=creds provider=%s msg=\"credentials found\"",
                                     af_q(chain[i].label));
                        *ret_kind = s->kind != AF_CREDS_NONE ? s->kind : chain[i].kind;
                        goto out;
                }
                af_log_debug("op=creds provider=%s reason=%s msg=\"trying the next source\"",
                             af_q(chain[i].label),
                             af_q(why.len ? af_buf_str(&why) : strerror(-r)));
                if (stop) {
                        (void)af_buf_addf(err, "AWS credentials: %s: %s", chain[i].label,
                                          af_buf_str(&why));
                        r = -EINVAL;
                        goto out;
                }
                (void)af_buf_addf(&tried, "%s%s: %s", i ? "; " : "", chain[i].label,
                                  why.len ? af_buf_str(&why) : strerror(-r));
        }
        (void)af_buf_addf(err, "no AWS credentials: %s", af_buf_str(&tried));
        r = -ENOKEY;
out:
        if (r < 0)
                source_clear(s);
        af_buf_done(&why);
        af_buf_done(&tried);
        return r;
}

/* ---- the provider ------------------------------------------------------------------------- */

static time_t refresh_window(void)
{
        const char *v = env("ARTIFUSE_CREDS_REFRESH_WINDOW");
        char *end;
        long w;

        if (!v)
                return AF_CREDS_REFRESH_WINDOW;
        errno = 0;
        w = strtol(v, &end, 10);
        if (errno || *end || w < 0 || w > 24 * 3600)
                return AF_CREDS_REFRESH_WINDOW;
        return (time_t)w;
}

int af_creds_provider_init(struct af_creds_provider *p, const struct af_creds *explicit_creds,
                           struct af_buf *err)
{
        enum af_creds_kind kind = AF_CREDS_EXPLICIT;
        struct af_creds_source *src;
        struct af_creds c;
        char desc[512];
        int r;

        memset(&c, 0, sizeof(c));
        src = calloc(1, sizeof(*src));
        if (!src)
                return -ENOMEM;
        if (explicit_creds && explicit_creds->access_key[0]) {
                if (!explicit_creds->secret_key[0]) {
                        (void)af_buf_addf(err, "an access key id was given without a secret key");
                        r = -EINVAL;
                        goto out;
                }
                c = *explicit_creds;
                if (!c.source[0])
                        (void)snprintf(c.source, sizeof(c.source), "flags");
        } else {
                r = run_chain(src, &c, &kind, err);
                if (r < 0)
                        goto out;
        }
        memset(p, 0, sizeof(*p));
        r = -pthread_mutex_init(&p->lock, NULL);
        if (r < 0)
                goto out;
        r = -pthread_cond_init(&p->refreshed, NULL);
        if (r < 0) {
                pthread_mutex_destroy(&p->lock);
                goto out;
        }
        p->window = refresh_window();
        p->kind = kind;
        if (src->kind != AF_CREDS_NONE) {
                p->src = src;
                src = NULL;
        }
        c.serial = p->locked.serial = 1;
        p->locked.current = c;
        p->locked.have = true;
        p->locked.refresh_at = af_creds_refresh_at(time(NULL), c.expiration, p->window);
        af_creds_describe(&c, desc, sizeof(desc));
        af_log_debug("op=creds source=%s msg=\"using these credentials\"", af_q(desc));
        r = 0;
out:
        if (src) {
                source_clear(src);
                free(src);
        }
        explicit_bzero(&c, sizeof(c));
        return r;
}

void af_creds_provider_done(struct af_creds_provider *p)
{
        pthread_cond_destroy(&p->refreshed);
        pthread_mutex_destroy(&p->lock);
        if (p->src) {
                source_clear(p->src);
                free(p->src);
                p->src = NULL;
        }
        /* Secrets do not linger in freed memory. */
        explicit_bzero(&p->locked, sizeof(p->locked));
}

/* Takes a fetch's result into the provider. */
static void install_locked(struct af_creds_provider *p, int r, const struct af_creds *fresh,
                           const struct af_buf *why)
{
        time_t now = time(NULL);
        char desc[512];

        if (r == 0) {
                p->locked.current = *fresh;
                p->locked.current.serial = ++p->locked.serial;
                p->locked.have = true;
                p->locked.invalid = false;
                p->locked.refresh_at = af_creds_refresh_at(now, fresh->expiration, p->window);
                p->locked.retry_at = 0;
                p->locked.last_error = 0;
                p->locked.last_why[0] = '\0';
                af_creds_describe(fresh, desc, sizeof(desc));
                af_log_debug("op=creds source=%s msg=\"credentials refreshed\"", af_q(desc));
                return;
        }
        p->locked.retry_at = now + AF_CREDS_RETRY_AFTER;
        p->locked.last_error = r;
        (void)snprintf(p->locked.last_why, sizeof(p->locked.last_why), "%s",
                       af_buf_str(why));
        af_log_debug("op=creds err=%s reason=%s msg=\"refresh failed; retrying in %d s\"",
                     af_q(strerror(-r)), af_q(af_buf_str(why)), AF_CREDS_RETRY_AFTER);
}

/*
 * One fetch, with the lock dropped for its duration so other threads keep using the
 * current copy. The caller has set refreshing, which makes it the only fetcher.
 */
static int refresh_locked(struct af_creds_provider *p, struct af_buf *err)
{
        struct af_creds fresh;
        struct af_buf why;
        int r;

        memset(&fresh, 0, sizeof(fresh));
        af_buf_init(&why, WHY_CAP);
        pthread_mutex_unlock(&p->lock);
        /* src is read-only after init; the token files it names are re-read here. */
        r = fetch(p->src, &fresh, &why);
        pthread_mutex_lock(&p->lock);
        install_locked(p, r, &fresh, &why);
        p->locked.refreshing = false;
        pthread_cond_broadcast(&p->refreshed);
        if (r < 0 && err)
                (void)af_buf_adds(err, af_buf_str(&why));
        explicit_bzero(&fresh, sizeof(fresh));
        af_buf_done(&why);
        return r;
}

static struct af_creds_clock clock_locked(const struct af_creds_provider *p)
{
        return (struct af_creds_clock){ .have = p->locked.have,
                                        .invalid = p->locked.invalid,
                                        .refreshable = p->src != NULL,
                                        .refreshing = p->locked.refreshing,
                                        .expiration = p->locked.current.expiration,
                                        .refresh_at = p->locked.refresh_at,
                                        .retry_at = p->locked.retry_at };
}

int af_creds_get(struct af_creds_provider *p, struct af_creds *ret)
{
        enum af_creds_action a;
        struct af_creds_clock ck;
        int r;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                ck = clock_locked(p);
                a = af_creds_decide(&ck, time(NULL));
                if (a != AF_CREDS_WAIT)
                        break;
                pthread_cond_wait(&p->refreshed, &p->lock);
        }
        if (a == AF_CREDS_REFRESH) {
                p->locked.refreshing = true;
                (void)refresh_locked(p, NULL);
                /* Whatever happened, hand out what is usable now. */
                ck = clock_locked(p);
                ck.refreshing = true; /* never start a second fetch from here */
                a = af_creds_decide(&ck, time(NULL));
                if (a == AF_CREDS_WAIT) /* the refresh failed and the copy is unusable */
                        a = AF_CREDS_FAIL;
        }
        if (a == AF_CREDS_USE) {
                *ret = p->locked.current;
                r = 0;
        } else {
                r = p->locked.last_error ? p->locked.last_error
                    : p->locked.have     ? -EKEYEXPIRED
                                         : -ENOKEY;
        }
        pthread_mutex_unlock(&p->lock);
        return r;
}

void af_creds_invalidate(struct af_creds_provider *p, uint64_t serial)
{
        if (!p->src)
                return;
        pthread_mutex_lock(&p->lock);
        if (serial == 0 || serial == p->locked.current.serial)
                p->locked.invalid = true;
        pthread_mutex_unlock(&p->lock);
}

int af_creds_refresh(struct af_creds_provider *p, struct af_buf *err)
{
        uint64_t serial;
        int r;

        if (!p->src)
                return -EOPNOTSUPP;
        pthread_mutex_lock(&p->lock);
        serial = p->locked.serial;
        while (p->locked.refreshing)
                pthread_cond_wait(&p->refreshed, &p->lock);
        if (p->locked.serial != serial) {
                r = 0; /* someone else just fetched new ones */
        } else {
                p->locked.refreshing = true;
                r = refresh_locked(p, err);
        }
        pthread_mutex_unlock(&p->lock);
        return r;
}

void af_creds_last_error(struct af_creds_provider *p, char *out, size_t n)
{
        pthread_mutex_lock(&p->lock);
        (void)snprintf(out, n, "%s", p->locked.last_why);
        pthread_mutex_unlock(&p->lock);
}

void af_creds_describe(const struct af_creds *c, char *out, size_t n)
{
        char when[32] = "";

        if (c->expiration)
                format_time(c->expiration, when, sizeof(when));
        /* The first 4 characters of a key id say its kind (AKIA long-term, ASIA temporary). */
        (void)snprintf(out, n, "%s, key %.4s...%s%s%s", c->source, c->access_key,
                       c->session_token[0] ? ", session token" : "",
                       when[0] ? ", expires " : "", when);
}

int af_creds_profile_region(char *out, size_t n)
{
        struct profile_files pf;
        struct af_buf why;
        bool explicit_profile;
        const char *profile = profile_name(&explicit_profile);
        int r;

        af_buf_init(&why, WHY_CAP);
        r = profile_files_load(&pf, profile, &why);
        if (r == 0 && pf.in_f)
                r = af_creds_ini_get(pf.ftext.ptr, pf.ftext.len, pf.fsect, "region", out, n);
        else if (r == 0)
                r = -ENOENT;
        profile_files_done(&pf);
        af_buf_done(&why);
        return r;
}
