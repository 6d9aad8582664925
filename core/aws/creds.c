/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS SDK default credential chain behind one provider; see creds.h.
 *
 * Here: the chain walked once at start-up (each source is its own file behind
 * struct af_creds_source, see creds_source.h), then the provider: the lock, the refresh
 * decision and the hand-out of copies. The provider knows a source only through
 * struct af_creds_source: its ops (fetch) and af_creds_source_free().
 *
 * Invariants: a secret is never put in an error text or a log line; the copy handed out is
 * replaced whole, under the lock; outputs are written only on success.
 */
#include "aws/creds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "aws/creds_source.h"

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

/* ---- the chain, once at start-up ------------------------------------------------------------ */

static const struct {
        const char *label;
        af_creds_step_fn *step;
        enum af_creds_kind kind; /* when the step yields static credentials */
} chain[] = {
        { "environment", af_creds_env_step, AF_CREDS_ENV },
        { "shared files", af_creds_profile_step, AF_CREDS_PROFILE },
        { "web identity", af_creds_sts_step, AF_CREDS_WEB_IDENTITY },
        { "container", af_creds_container_step, AF_CREDS_CONTAINER },
        { "IMDS", af_creds_imds_step, AF_CREDS_IMDS },
};

/*
 * Walks the chain. On success *ret_src is what a refresh needs (NULL for static
 * credentials) and *ret_kind says which source answered.
 */
static int run_chain(struct af_creds_source **ret_src, struct af_creds *c,
                     enum af_creds_kind *ret_kind, struct af_buf *err)
{
        struct af_buf why, tried;
        bool stop = false;
        int r = -ENOKEY;

        af_buf_init(&why, AF_CREDS_WHY_CAP);
        af_buf_init(&tried, 8 * AF_CREDS_WHY_CAP);
        for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]); i++) {
                struct af_creds_source *src = NULL;

                af_buf_reset(&why);
                r = chain[i].step(&src, c, &why, &stop);
                if (r == 0) {
                        af_log_debug("op=creds provider=%s msg=\"credentials found\"",
                                     af_q(chain[i].label));
                        *ret_src = src;
                        *ret_kind = src ? src->kind : chain[i].kind;
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
        af_buf_done(&why);
        af_buf_done(&tried);
        return r;
}

/* ---- the provider ------------------------------------------------------------------------- */

static time_t refresh_window(void)
{
        const char *v = af_creds_env("ARTIFUSE_CREDS_REFRESH_WINDOW");
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
        struct af_creds_source *src = NULL;
        struct af_creds c;
        char desc[512];
        int r;

        memset(&c, 0, sizeof(c));
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
                r = run_chain(&src, &c, &kind, err);
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
        p->src = src;
        src = NULL;
        c.serial = p->locked.serial = 1;
        p->locked.current = c;
        p->locked.have = true;
        p->locked.refresh_at = af_creds_refresh_at(time(NULL), c.expiration, p->window);
        af_creds_describe(&c, desc, sizeof(desc));
        af_log_debug("op=creds source=%s msg=\"using these credentials\"", af_q(desc));
        r = 0;
out:
        if (src)
                af_creds_source_free(src);
        explicit_bzero(&c, sizeof(c));
        return r;
}

void af_creds_provider_done(struct af_creds_provider *p)
{
        pthread_cond_destroy(&p->refreshed);
        pthread_mutex_destroy(&p->lock);
        if (p->src) {
                af_creds_source_free(p->src);
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
        af_log_debug("op=creds provider=%s err=%s reason=%s msg=\"refresh failed; retrying in "
                     "%d s\"",
                     af_q(p->src->ops->name), af_q(strerror(-r)), af_q(af_buf_str(why)),
                     AF_CREDS_RETRY_AFTER);
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
        af_buf_init(&why, AF_CREDS_WHY_CAP);
        pthread_mutex_unlock(&p->lock);
        /* src is read-only after init; the token files it names are re-read here. */
        r = p->src->ops->fetch(p->src, &fresh, &why);
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
                af_creds_format_time(c->expiration, when, sizeof(when));
        /* The first 4 characters of a key id say its kind (AKIA long-term, ASIA temporary). */
        (void)snprintf(out, n, "%s, key %.4s...%s%s%s", c->source, c->access_key,
                       c->session_token[0] ? ", session token" : "",
                       when[0] ? ", expires " : "", when);
}
