/* SPDX-License-Identifier: Apache-2.0 */
/* Credential sources behind one provider. See creds.h. */
#include "creds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy_field(char *dst, size_t n, const char *src)
{
        size_t l = strlen(src);

        if (l >= n)
                return -EINVAL;
        memcpy(dst, src, l + 1);
        return 0;
}

static int from_env(struct af_creds *c, struct af_buf *err)
{
        const char *ak = getenv("AWS_ACCESS_KEY_ID");
        const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
        const char *tok = getenv("AWS_SESSION_TOKEN");

        if ((!ak || !*ak) && (!sk || !*sk)) {
                (void)af_buf_addf(err, "no AWS credentials: set AWS_ACCESS_KEY_ID and "
                                       "AWS_SECRET_ACCESS_KEY");
                return -ENOKEY;
        }
        if (!ak || !*ak || !sk || !*sk) {
                (void)af_buf_addf(err, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set "
                                       "(only %s is)",
                                  ak && *ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY");
                return -EINVAL;
        }
        if (copy_field(c->access_key, sizeof(c->access_key), ak) < 0 ||
            copy_field(c->secret_key, sizeof(c->secret_key), sk) < 0 ||
            copy_field(c->session_token, sizeof(c->session_token), tok ? tok : "") < 0) {
                (void)af_buf_addf(err, "AWS credentials in the environment are too long");
                return -EINVAL;
        }
        (void)copy_field(c->source, sizeof(c->source), "environment");
        return 0;
}

int af_creds_provider_init(struct af_creds_provider *p, const struct af_creds *explicit_creds,
                           struct af_buf *err)
{
        struct af_creds c;
        int r;

        memset(&c, 0, sizeof(c));
        if (explicit_creds && explicit_creds->access_key[0]) {
                c = *explicit_creds;
                if (!c.secret_key[0]) {
                        (void)af_buf_addf(err, "an access key id was given without a secret key");
                        return -EINVAL;
                }
                if (!c.source[0])
                        (void)copy_field(c.source, sizeof(c.source), "flags");
        } else {
                r = from_env(&c, err);
                if (r < 0)
                        return r;
        }
        pthread_mutex_init(&p->lock, NULL);
        p->current = c;
        p->have = true;
        return 0;
}

void af_creds_provider_done(struct af_creds_provider *p)
{
        pthread_mutex_destroy(&p->lock);
        /* Secrets do not linger in freed memory. */
        explicit_bzero(&p->current, sizeof(p->current));
        p->have = false;
}

int af_creds_get(struct af_creds_provider *p, struct af_creds *ret)
{
        int r = -ENOKEY;

        pthread_mutex_lock(&p->lock);
        if (p->have) {
                *ret = p->current;
                r = 0;
        }
        pthread_mutex_unlock(&p->lock);
        return r;
}

void af_creds_describe(const struct af_creds *c, char *out, size_t n)
{
        /* The access key id is not secret, but 4 characters are enough to tell keys apart. */
        snprintf(out, n, "%s (%.4s...%s)", c->source, c->access_key,
                 c->session_token[0] ? ", with session token" : "");
}
