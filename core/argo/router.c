/* SPDX-License-Identifier: Apache-2.0 */
/* Path -> bucket/key. See router.h for the rules. */
#include "argo/router.h"
#include "argo/resolve.h"
#include "base/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static int expand_clean(const char *what, const char *tmpl, const struct af_vars *vars,
                        bool clean, char **ret, struct af_buf *err)
{
        struct af_template_error te = { 0 };
        struct af_buf raw, cleaned;
        int r;

        af_buf_init(&raw, 0);
        af_buf_init(&cleaned, 0);
        r = af_template_expand(tmpl, vars, &raw, &te);
        if (r < 0) {
                af_describe_template_error(err, "", what, tmpl, &te, r, vars);
                if (r == -E2BIG) /* a key (prefix) that long can only be too long */
                        r = -ENAMETOOLONG;
                goto out;
        }
        if (clean) {
                r = af_key_clean(af_buf_str(&raw), &cleaned);
                if (r < 0)
                        goto out;
                *ret = af_buf_take(&cleaned);
        } else {
                *ret = af_buf_take(&raw);
        }
        r = *ret ? 0 : -ENOMEM;
out:
        af_buf_done(&raw);
        af_buf_done(&cleaned);
        return r;
}

/* @path relative to @base when it is @base or inside it; NULL otherwise. */
static char *relative_to(const char *path, const char *base)
{
        struct af_buf p, b;
        char *rel = NULL;
        size_t bl;

        af_buf_init(&p, 0);
        af_buf_init(&b, 0);
        if (af_key_clean(path, &p) < 0 || af_key_clean(base, &b) < 0)
                goto out;
        bl = b.len;
        if (bl == 0)
                rel = strdup(af_buf_str(&p));
        else if (strcmp(af_buf_str(&p), af_buf_str(&b)) == 0)
                rel = strdup("");
        else if (strncmp(af_buf_str(&p), af_buf_str(&b), bl) == 0 && p.ptr[bl] == '/')
                rel = strdup(p.ptr + bl + 1);
out:
        af_buf_done(&p);
        af_buf_done(&b);
        return rel;
}

/* "minio:9000" vs "http://minio:9000/": the same host and port? */
static bool same_host(const char *a, const char *b)
{
        const char *pa = strstr(a, "://"), *pb = strstr(b, "://");
        size_t la, lb;

        a = pa ? pa + 3 : a;
        b = pb ? pb + 3 : b;
        la = strcspn(a, "/");
        lb = strcspn(b, "/");
        return la == lb && strncasecmp(a, b, la) == 0;
}

static const char *basename_of(const char *path)
{
        const char *s = strrchr(path, '/');

        return s ? s + 1 : path;
}

void af_router_done(struct af_router *r)
{
        for (size_t i = 0; i < r->narts; i++) {
                struct af_route_artifact *a = &r->arts[i];

                AF_FREE_ALL(a->name, a->path, a->rel, a->base, a->clean_path, a->key, a->bucket);
        }
        AF_FREE_ALL(r->arts, r->bucket, r->prefix, r->mount_as);
        memset(r, 0, sizeof(*r));
}

/* Says in @err what is wrong with artifact @ra: "artifact '<name>': " and @fmt. -EINVAL. */
static int __attribute__((format(printf, 3, 4)))
artifact_invalid(struct af_buf *err, const struct af_route_artifact *ra, const char *fmt, ...)
{
        va_list ap;

        (void)af_buf_addf(err, "artifact '%s': ", ra->name);
        va_start(ap, fmt);
        (void)af_buf_vaddf(err, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* The name, path, s3.key and compression level of @a, with the controller's substitution
 * done (resolve.h), checked as Argo checks them. */
static int resolve_artifact(struct af_route_artifact *ra, const struct af_spec *spec,
                            const struct af_artifact *a, const struct af_vars *vars,
                            struct af_buf *err)
{
        char *level = NULL;
        int r;

        struct af_buf what;

        af_buf_init(&what, 1024);
        r = af_resolve_field(spec, a->name_pos, "artifact name", a->name, vars, &ra->name, err);
        if (r == 0) {
                (void)af_buf_addf(&what, "artifact '%s' path", ra->name);
                r = af_resolve_field(spec, a->path_pos, af_buf_str(&what), a->path, vars,
                                     &ra->path, err);
        }
        if (r == 0)
                r = af_artifact_check_path(spec, a->path_pos, ra->name, ra->path, err);
        if (r == 0 && a->s3_key) {
                af_buf_reset(&what);
                (void)af_buf_addf(&what, "artifact '%s' s3.key", ra->name);
                r = af_resolve_field(spec, a->key_pos, af_buf_str(&what), a->s3_key, vars,
                                     &ra->key, err);
        }
        af_buf_done(&what);
        ra->compression_level = a->compression_level;
        if (r == 0 && a->compression_text) {
                char *end;
                long v;

                r = af_resolve_field(spec, a->pos, "archive.tar.compressionLevel",
                                     a->compression_text, vars, &level, err);
                if (r == 0) {
                        v = strtol(level, &end, 10);
                        if (end == level || *end || v < -1 || v > 9) {
                                af_spec_where(spec, a->pos, err);
                                r = artifact_invalid(err, ra, "compressionLevel must be -1..9, "
                                                              "not '%s'", level);
                        }
                        ra->compression_level = (int)v;
                }
                free(level);
        }
        return r;
}

static int init_artifact(struct af_route_artifact *ra, const struct af_router_config *cfg,
                         const struct af_spec *spec, const struct af_artifact *a,
                         const struct af_vars *vars, struct af_buf *err)
{
        struct af_buf cp;
        int ret;

        ret = resolve_artifact(ra, spec, a, vars, err);
        if (ret < 0)
                return ret;
        ra->other_location = a->other_location;
        if (ra->path[0] != '/') {
                af_spec_where(spec, a->path_pos, err);
                return artifact_invalid(err, ra, "path '%s' is not absolute", ra->path);
        }
        ra->rel = relative_to(ra->path, cfg->mount_as);
        if (!ra->rel && cfg->strict_paths && !ra->other_location)
                return artifact_invalid(err, ra,
                                        "path %s is outside the mount (%s); mount its "
                                        "directory, or say with --as which directory the "
                                        "mount stands for",
                                        ra->path, cfg->mount_as);
        af_buf_init(&cp, 0);
        ret = af_key_clean(ra->path, &cp);
        ra->base = ret < 0 ? NULL : strdup(basename_of(af_buf_str(&cp)));
        ra->clean_path = ret < 0 ? NULL : strdup(af_buf_str(&cp));
        af_buf_done(&cp);
        if (!ra->base || !ra->clean_path)
                return -ENOMEM;
        ra->optional = a->optional;
        ra->archive = a->archive == AF_ARCHIVE_DEFAULT ? cfg->archive_default : a->archive;
        if (ra->archive == AF_ARCHIVE_DEFAULT)
                ra->archive = AF_ARCHIVE_NONE;
        /* Argo's HasLocation: endpoint, bucket and key all set. Then the artifact has
         * a bucket of its own; a partial location keeps only the key (Relocate). */
        if (a->s3_key && a->s3_bucket && a->s3_endpoint && *a->s3_endpoint) {
                if (cfg->endpoint && !same_host(a->s3_endpoint, cfg->endpoint))
                        return artifact_invalid(err, ra,
                                                "its s3 location's endpoint %s is not the "
                                                "repository's (%s); artifuse uploads to one "
                                                "endpoint",
                                                a->s3_endpoint, cfg->endpoint);
                ra->bucket = strdup(a->s3_bucket);
                if (!ra->bucket)
                        return -ENOMEM;
        }
        return 0;
}

int af_router_init(struct af_router *r, const struct af_router_config *cfg,
                   const struct af_spec *spec, const struct af_vars *vars, struct af_buf *err)
{
        struct af_router n;
        size_t narts = spec ? spec->nartifacts : 0;
        int ret;

        memset(&n, 0, sizeof(n));
        if (!cfg->mount_as || cfg->mount_as[0] != '/') {
                (void)af_buf_addf(err, "--as must be an absolute directory");
                return -EINVAL;
        }
        if (!cfg->bucket || !*cfg->bucket) {
                (void)af_buf_addf(err, "no bucket: give --artifact-repository s3://BUCKET/KEYFORMAT");
                return -EINVAL;
        }
        n.bucket = strdup(cfg->bucket);
        n.mount_as = strdup(cfg->mount_as);
        n.arts = calloc(narts ? narts : 1, sizeof(*n.arts));
        if (!n.bucket || !n.mount_as || !n.arts) {
                ret = -ENOMEM;
                goto fail;
        }
        ret = expand_clean(cfg->key_format_from ? cfg->key_format_from
                                                : "--artifact-repository key format",
                           cfg->key_format ? cfg->key_format : "",
                           vars, true, &n.prefix, err);
        if (ret < 0)
                goto fail;
        if (strlen(n.prefix) > AF_KEY_MAX) {
                (void)af_buf_addf(err, "key prefix is longer than %d bytes", AF_KEY_MAX);
                ret = -ENAMETOOLONG;
                goto fail;
        }
        for (size_t i = 0; i < narts; i++) {
                n.narts++;
                ret = init_artifact(&n.arts[i], cfg, spec, &spec->artifacts[i], vars, err);
                if (ret < 0)
                        goto fail;
        }
        if (cfg->unmatched == AF_UNMATCHED_AUTO)
                n.upload_unmatched = narts == 0;
        else
                n.upload_unmatched = cfg->unmatched == AF_UNMATCHED_UPLOAD;
        *r = n;
        return 0;
fail:
        af_router_done(&n);
        return ret;
}

/* key = clean(a + "/" + b [+ "/" + c]) */
static int join_key(struct af_buf *out, const char *a, const char *b, const char *c)
{
        struct af_buf raw;
        int r;

        af_buf_init(&raw, AF_KEY_MAX * 4);
        r = af_buf_addf(&raw, "%s/%s%s%s", a, b, c && *c ? "/" : "", c ? c : "");
        if (r == 0)
                r = af_key_clean(af_buf_str(&raw), out);
        af_buf_done(&raw);
        return r;
}

/* Where @relpath lies in artifact @a: "" when it is the artifact's path, the rest of it
 * when @a is a directory that holds it, NULL when @a does not claim it. */
static const char *inside_of(const struct af_route_artifact *a, const char *relpath)
{
        size_t l;

        if (!a->rel)
                return NULL;
        l = strlen(a->rel);
        if (strcmp(relpath, a->rel) == 0)
                return "";
        if (l == 0 || (strncmp(relpath, a->rel, l) == 0 && relpath[l] == '/'))
                return relpath + (l ? l + 1 : 0);
        return NULL;
}

/*
 * The @n-th artifact that claims @relpath (its path is the file or holds it), the most
 * specific first (the longest path), in spec order among equals; NULL past the last. Where
 * the file lies in it goes to *@ret_inside.
 */
static const struct af_route_artifact *claimant(const struct af_router *r, const char *relpath,
                                                size_t n, const char **ret_inside)
{
        size_t bound = SIZE_MAX;

        for (;;) {
                size_t best = 0;

                for (size_t i = 0; i < r->narts; i++) {
                        size_t l = r->arts[i].rel ? strlen(r->arts[i].rel) + 1 : 0;

                        if (l < bound && l > best && inside_of(&r->arts[i], relpath))
                                best = l;
                }
                if (!best)
                        return NULL;
                for (size_t i = 0; i < r->narts; i++) {
                        const char *inside = inside_of(&r->arts[i], relpath);

                        if (inside && strlen(r->arts[i].rel) + 1 == best && n-- == 0) {
                                *ret_inside = inside;
                                return &r->arts[i];
                        }
                }
                bound = best;
        }
}

static void route_reset(struct af_route *ret)
{
        af_buf_reset(&ret->key);
        ret->artifact = NULL;
        ret->bucket = NULL;
        ret->archive = AF_ARCHIVE_NONE;
        ret->member = NULL;
        ret->compression_level = -1;
        ret->deferred = false;
        ret->zip_file_member = NULL;
}

/* @relpath as artifact @hit saves it (@inside: where it lies in @hit), or as an unmatched
 * file when @hit is NULL. */
static int route_as(const struct af_router *r, const struct af_route_artifact *hit,
                    const char *relpath, const char *inside, struct af_route *ret)
{
        int rc;

        route_reset(ret);
        if (hit && hit->other_location) { /* Argo's other driver saves it, not us */
                ret->artifact = hit;
                return 0;
        }
        if (hit && (hit->archive == AF_ARCHIVE_TAR || hit->archive == AF_ARCHIVE_ZIP)) {
                bool zip = hit->archive == AF_ARCHIVE_ZIP;

                ret->deferred = *inside != '\0';
                /* Argo: <prefix>/<name>.tgz or .zip, or the artifact's own key verbatim. */
                if (hit->key)
                        rc = af_buf_sets(&ret->key, hit->key);
                else {
                        char name[AF_KEY_MAX + 8];

                        snprintf(name, sizeof(name), "%s.%s", hit->name, zip ? "zip" : "tgz");
                        rc = join_key(&ret->key, r->prefix, name, NULL);
                }
                ret->archive = hit->archive;
                ret->member = hit->base;
                /* Argo zips a single file under its full source path (we drop the leading
                 * "/", which unzip would strip anyway), a directory under its basename. */
                ret->zip_file_member = zip ? hit->clean_path : NULL;
                ret->compression_level = hit->compression_level;
        } else if (hit) {
                if (hit->key && !*inside)
                        rc = af_buf_sets(&ret->key, hit->key); /* verbatim, as Argo does */
                else if (hit->key)
                        rc = join_key(&ret->key, hit->key, inside, NULL);
                else
                        rc = join_key(&ret->key, r->prefix, hit->base, inside);
        } else if (r->upload_unmatched) {
                rc = join_key(&ret->key, r->prefix, relpath, NULL);
        } else {
                return 0;
        }
        if (rc < 0)
                return rc == -E2BIG ? -ENAMETOOLONG : rc;
        if (ret->key.len > AF_KEY_MAX || ret->key.len == 0)
                return -ENAMETOOLONG;
        ret->bucket = hit && hit->bucket ? hit->bucket : r->bucket;
        ret->artifact = hit;
        return 1;
}

int af_router_route_nth(const struct af_router *r, const char *relpath, size_t n,
                        struct af_route *ret)
{
        const char *inside = NULL;
        const struct af_route_artifact *a = claimant(r, relpath, n, &inside);

        if (a)
                return route_as(r, a, relpath, inside, ret);
        if (n > 0 || claimant(r, relpath, 0, &inside)) {
                route_reset(ret);
                return -ESRCH;
        }
        return route_as(r, NULL, relpath, NULL, ret); /* not an artifact's */
}

int af_router_route(const struct af_router *r, const char *relpath, struct af_route *ret)
{
        return af_router_route_nth(r, relpath, 0, ret);
}

int af_router_route_own(const struct af_router *r, const char *relpath, struct af_route *ret)
{
        int rr;

        for (size_t n = 0; (rr = af_router_route_nth(r, relpath, n, ret)) != -ESRCH; n++)
                if (rr > 0 && !ret->deferred)
                        return rr;
        return af_router_route_nth(r, relpath, 0, ret);
}

int af_router_route_artifact(const struct af_router *r, const struct af_route_artifact *a,
                             const char *relpath, struct af_route *ret)
{
        const char *inside = inside_of(a, relpath);

        if (!inside) {
                route_reset(ret);
                return -ESRCH;
        }
        return route_as(r, a, relpath, inside, ret);
}
