/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --uris-dir and --uris-json: the URI of each artifact, written as its upload completes.
 * See uris.h. Lock: w->lock guards arts[] and the writing of both files.
 */
#include "spool/uris.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"

struct art {
        char *uri;     /* NULL: not uploaded yet */
        char *etag;    /* NULL: null in the JSON */
        uint64_t size;
        bool has_size;
        bool dir_ok;   /* its name can be a file in --uris-dir */
};

struct af_uris {
        pthread_mutex_t lock;
        struct af_uris_config cfg; /* json_name: our copy */
        struct art *arts;          /* one per router artifact, in spec order */
        size_t narts;
};

static bool file_name_ok(const char *s)
{
        return *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/') &&
               strlen(s) + 6 < NAME_MAX;
}

int af_uris_new(const struct af_uris_config *cfg, struct af_uris **ret)
{
        struct af_uris *w = calloc(1, sizeof(*w));
        const struct af_router *rt = cfg->router;

        if (w) {
                w->cfg = *cfg;
                w->cfg.json_name = NULL;
                w->narts = rt->narts;
                w->arts = calloc(rt->narts + 1, sizeof(*w->arts));
                if (cfg->json_name)
                        w->cfg.json_name = strdup(cfg->json_name);
        }
        if (!w || !w->arts || (cfg->json_name && !w->cfg.json_name)) {
                if (w) {
                        free(w->arts);
                        free((char *)w->cfg.json_name);
                        free(w);
                }
                if (cfg->dir_fd >= 0)
                        close(cfg->dir_fd);
                if (cfg->json_dirfd >= 0)
                        close(cfg->json_dirfd);
                return -ENOMEM;
        }
        pthread_mutex_init(&w->lock, NULL);
        for (size_t i = 0; i < rt->narts; i++) {
                w->arts[i].dir_ok = file_name_ok(rt->arts[i].name);
                if (!w->arts[i].dir_ok && cfg->dir_fd >= 0)
                        af_log_warn("op=uris artifact=%s msg=\"not a file name; its URI is not "
                                    "written in --uris-dir\"",
                                    af_q(rt->arts[i].name));
        }
        *ret = w;
        return 0;
}

void af_uris_free(struct af_uris *w)
{
        if (!w)
                return;
        for (size_t i = 0; i < w->narts; i++) {
                free(w->arts[i].uri);
                free(w->arts[i].etag);
        }
        free(w->arts);
        if (w->cfg.dir_fd >= 0)
                close(w->cfg.dir_fd);
        if (w->cfg.json_dirfd >= 0)
                close(w->cfg.json_dirfd);
        free((char *)w->cfg.json_name);
        pthread_mutex_destroy(&w->lock);
        free(w);
}

/* Replaces @name under @dirfd with @data, through ".<name>.tmp" and a rename. */
static int replace_file(int dirfd, const char *name, const char *data, size_t len)
{
        char tmp[NAME_MAX + 1];
        size_t off = 0;
        int fd, r = 0;

        if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.tmp", name) >= sizeof(tmp))
                return -ENAMETOOLONG;
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        while (r == 0 && off < len) {
                ssize_t n = write(fd, data + off, len - off);

                if (n < 0 && errno != EINTR)
                        r = -errno;
                else if (n > 0)
                        off += (size_t)n;
        }
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = -errno;
        if (r < 0)
                (void)unlinkat(dirfd, tmp, 0);
        return r;
}

/* The whole JSON object, from what is known now. */
static int json_locked(struct af_uris *w, struct af_buf *out)
{
        bool first = true;
        int r = af_buf_addc(out, '{');

        for (size_t i = 0; r == 0 && i < w->narts; i++) {
                const struct art *a = &w->arts[i];

                if (!a->uri)
                        continue;
                r = af_buf_adds(out, first ? "" : ",");
                first = false;
                if (r == 0)
                        r = af_json_quote(out, w->cfg.router->arts[i].name);
                if (r == 0)
                        r = af_buf_adds(out, ":{\"uri\":");
                if (r == 0)
                        r = af_json_quote(out, a->uri);
                if (r == 0)
                        r = a->has_size ? af_buf_addf(out, ",\"size\":%llu",
                                                      (unsigned long long)a->size)
                                        : af_buf_adds(out, ",\"size\":null");
                if (r == 0)
                        r = af_buf_adds(out, ",\"etag\":");
                if (r == 0)
                        r = a->etag ? af_json_quote(out, a->etag) : af_buf_adds(out, "null");
                if (r == 0)
                        r = af_buf_addc(out, '}');
        }
        if (r == 0)
                r = af_buf_addc(out, '}');
        return r;
}

static void write_json_locked(struct af_uris *w)
{
        struct af_buf b;
        int r;

        af_buf_init(&b, 0);
        r = json_locked(w, &b);
        if (r == 0)
                r = replace_file(w->cfg.json_dirfd, w->cfg.json_name, b.ptr, b.len);
        if (r < 0)
                af_log_warn("op=uris file=%s err=%s msg=\"cannot write --uris-json\"",
                            af_q(w->cfg.json_name), af_q(strerror(-r)));
        af_buf_done(&b);
}

static bool same(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* Records @uri, @size and @etag for artifact @i and writes the files that change. */
static void update(struct af_uris *w, size_t i, const char *uri, const uint64_t *size,
                   const char *etag)
{
        struct art *a = &w->arts[i];
        const char *name = w->cfg.router->arts[i].name;
        bool uri_changed, changed;
        char *nu = NULL, *ne = NULL;
        int r;

        pthread_mutex_lock(&w->lock);
        uri_changed = !same(a->uri, uri);
        changed = uri_changed || !same(a->etag, etag) || a->has_size != !!size ||
                  (size && a->size != *size);
        if (!changed)
                goto out;
        nu = strdup(uri);
        ne = etag ? strdup(etag) : NULL;
        if (!nu || (etag && !ne)) {
                af_log_warn("op=uris artifact=%s err=\"out of memory\"", af_q(name));
                free(nu);
                free(ne);
                goto out;
        }
        free(a->uri);
        free(a->etag);
        a->uri = nu;
        a->etag = ne;
        a->has_size = size != NULL;
        a->size = size ? *size : 0;
        if (uri_changed && a->dir_ok && w->cfg.dir_fd >= 0) {
                r = replace_file(w->cfg.dir_fd, name, uri, strlen(uri));
                if (r < 0)
                        af_log_warn("op=uris artifact=%s err=%s msg=\"cannot write its file in "
                                    "--uris-dir\"",
                                    af_q(name), af_q(strerror(-r)));
        }
        if (w->cfg.json_dirfd >= 0)
                write_json_locked(w);
        af_log_debug("op=uris artifact=%s uri=%s", af_q(name), af_q(uri));
out:
        pthread_mutex_unlock(&w->lock);
}

/* The artifact whose object @u is: of those that declare the file's path (several may, and
 * the file then goes to each one's key), the one with that bucket and key. */
static const struct af_route_artifact *artifact_of(const struct af_router *rt,
                                                   const struct af_queue_uploaded *u,
                                                   struct af_route *route)
{
        int rr;

        for (size_t n = 0; (rr = af_router_route_nth(rt, u->relpath, n, route)) != -ESRCH; n++)
                if (rr > 0 && route->artifact && strcmp(route->bucket, u->bucket) == 0 &&
                    strcmp(af_buf_str(&route->key), u->key) == 0)
                        return route->artifact;
        return NULL;
}

void af_uris_on_uploaded(struct af_uris *w, const struct af_queue_uploaded *u)
{
        const struct af_route_artifact *art;
        struct af_route route = { 0 };
        struct af_buf uri;

        if (!w)
                return;
        af_buf_init(&uri, 0);
        af_buf_init(&route.key, 0);
        art = artifact_of(w->cfg.router, u, &route);
        if (!art)
                goto out; /* not an artifact (an unmatched upload): it has no name */
        if (strcmp(u->relpath, art->rel) == 0) {
                /* The artifact's own object: the file, or its (file or directory) archive. */
                uint64_t size = u->size;

                if (af_buf_addf(&uri, "s3://%s/%s", u->bucket, u->key) == 0)
                        update(w, (size_t)(art - w->cfg.router->arts), af_buf_str(&uri),
                               u->archive == AF_ARCHIVE_NONE && !u->is_dir ? &size : NULL,
                               u->etag);
        } else if (u->archive == AF_ARCHIVE_NONE &&
                   af_router_route_artifact(w->cfg.router, art, art->rel, &route) > 0) {
                /* A file inside a directory artifact: the directory's prefix, as Argo keys the
                 * directory itself. */
                if (af_buf_addf(&uri, "s3://%s/%s", route.bucket, af_buf_str(&route.key)) == 0)
                        update(w, (size_t)(art - w->cfg.router->arts), af_buf_str(&uri), NULL,
                               NULL);
        }
out:
        af_buf_done(&route.key);
        af_buf_done(&uri);
}
