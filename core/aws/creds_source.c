/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helpers every credential source uses: the environment, token and config files, the
 * checks a credential passes before it is handed out, and the JSON answer most services
 * give. See creds_source.h.
 */
#include "aws/creds_source.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"

const char *af_creds_env(const char *name)
{
        const char *v = getenv(name);

        return v && *v ? v : NULL;
}

int af_creds_copy(char *dst, size_t n, const char *src, size_t len)
{
        if (len >= n)
                return -E2BIG;
        memcpy(dst, src, len);
        dst[len] = '\0';
        return 0;
}

void af_creds_scrub(struct af_buf *b)
{
        if (b->ptr)
                explicit_bzero(b->ptr, b->alloc);
        af_buf_done(b);
}

void af_creds_trim_right(struct af_buf *b)
{
        size_t n = b->len;

        while (n && isspace((unsigned char)b->ptr[n - 1]))
                n--;
        af_buf_truncate(b, n);
}

int af_creds_read_chunk(int fd, struct af_buf *out, bool *ret_add_failed)
{
        char chunk[4096];
        ssize_t n;
        int r;

        do
                n = read(fd, chunk, sizeof(chunk));
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return n < 0 ? -errno : 0;
        r = af_buf_add(out, chunk, (size_t)n);
        explicit_bzero(chunk, (size_t)n);
        *ret_add_failed = r < 0;
        return r < 0 ? r : (int)n;
}

int af_creds_read_file(const char *path, size_t cap, struct af_buf *out)
{
        struct af_buf b;
        bool full = false;
        int fd, r;

        af_buf_init(&b, cap);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        while ((r = af_creds_read_chunk(fd, &b, &full)) > 0)
                ;
        close(fd);
        if (r == 0) {
                struct af_buf old = *out;

                *out = b;
                b = old;
        }
        af_creds_scrub(&b);
        return r;
}

bool af_creds_header_safe(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
                        return false;
        return true;
}

int af_creds_add_header(struct af_buf *hdr, const char *name, const struct af_buf *value)
{
        const char *v = af_buf_str(value);

        if (memchr(v, '\n', value->len) || memchr(v, '\r', value->len) || strlen(v) != value->len)
                return -EINVAL;
        return af_buf_addf(hdr, "%s: %s", name, v);
}

void af_creds_format_time(time_t t, char *out, size_t n)
{
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(out, n, "%lld", (long long)t);
}

int af_creds_set(struct af_creds *c, const char *ak, const char *sk, const char *tok,
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
        r = af_creds_copy(n.access_key, sizeof(n.access_key), ak, strlen(ak));
        if (r == 0)
                r = af_creds_copy(n.secret_key, sizeof(n.secret_key), sk, strlen(sk));
        if (r == 0)
                r = af_creds_copy(n.session_token, sizeof(n.session_token), tok, strlen(tok));
        if (r < 0) {
                (void)af_buf_addf(why, "credentials too long (access key id < %zu, secret key "
                                       "< %zu, session token < %zu bytes)",
                                  sizeof(n.access_key), sizeof(n.secret_key),
                                  sizeof(n.session_token));
                goto out;
        }
        if (!af_creds_header_safe(ak) || !af_creds_header_safe(sk) || !af_creds_header_safe(tok)) {
                (void)af_buf_adds(why, "credentials contain characters other than printable "
                                       "ASCII");
                r = -EBADMSG;
                goto out;
        }
        if (expiration && expiration <= time(NULL) + AF_CREDS_EXPIRY_MARGIN) {
                char when[32];

                af_creds_format_time(expiration, when, sizeof(when));
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

int af_creds_from_json(const struct af_buf *body, const char *token_key, const char *source,
                       struct af_creds *c, struct af_buf *why)
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
        if (r == AF_JSON_STRING &&
            af_rfc3339_parse(exp, AF_RFC3339_LENIENT, &expiration, NULL) < 0) {
                (void)af_buf_addf(why, "Expiration %s is not an ISO 8601 time", af_q(exp));
                r = -EBADMSG;
                goto out;
        }
        r = af_creds_set(c, ak, sk, tok, expiration, source, why);
out:
        explicit_bzero(sk, sizeof(sk));
        explicit_bzero(tok, sizeof(tok));
        return r < 0 ? r : 0;
}

int af_creds_status_errno(long status)
{
        if (status == 401 || status == 403 || status == 400)
                return -EACCES;
        if (status == 404)
                return -ENOENT;
        if (status == 429 || status >= 500)
                return -EAGAIN;
        return -EPROTO;
}

int af_creds_source_start(enum af_creds_kind kind, const struct af_creds_source_ops *ops,
                          const char *const str[AF_CREDS_SOURCE_STRS],
                          struct af_creds_source **ret_src, struct af_creds *c,
                          struct af_buf *why)
{
        struct af_creds_source *s = calloc(1, sizeof(*s));
        int r = 0;

        if (!s)
                return -ENOMEM;
        s->ops = ops;
        s->kind = kind;
        for (size_t i = 0; r == 0 && i < AF_CREDS_SOURCE_STRS; i++)
                if (str[i] && !(s->str[i] = strdup(str[i])))
                        r = -ENOMEM;
        if (r == 0)
                r = ops->fetch(s, c, why);
        if (r < 0) {
                af_creds_source_free(s);
                return r;
        }
        *ret_src = s;
        return 0;
}

void af_creds_source_free(struct af_creds_source *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < AF_CREDS_SOURCE_STRS; i++) {
                if (s->str[i]) {
                        explicit_bzero(s->str[i], strlen(s->str[i]));
                        free(s->str[i]);
                }
        }
        free(s);
}

void af_creds_why_prefix(struct af_buf *why, const char *prefix)
{
        struct af_buf w2;

        af_buf_init(&w2, AF_CREDS_WHY_CAP);
        (void)af_buf_addf(&w2, "%s: %s", prefix, af_buf_str(why));
        (void)af_buf_sets(why, af_buf_str(&w2));
        af_buf_done(&w2);
}
