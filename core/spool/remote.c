/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Renames and unlinks of uploaded names: server-side copies and --delete-on-unlink. See
 * remote.h. The decisions are made here; the queue carries them out in key order.
 */
#include "spool/remote.h"
#include "base/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"

struct af_remote {
        struct af_remote_config cfg;
        struct af_uploaded *uploaded;
        _Atomic(struct af_queue *) queue;
};

/* The registry's name of another artifact's object of a file: "<name>\x1f<artifact>" (see
 * drop_extras). */
#define EXTRA_SEP '\x1f'

/* Whether the spool still has the regular file a registry name is about. */
static bool still_there(struct af_remote *r, const char *name)
{
        const char *sep = strchr(name, EXTRA_SEP);
        char path[PATH_MAX];
        struct stat st;

        if (sep) { /* another artifact's object of that file */
                if ((size_t)(sep - name) >= sizeof(path))
                        return false;
                memcpy(path, name, (size_t)(sep - name));
                path[sep - name] = '\0';
                name = path;
        }
        return fstatat(r->cfg.spool_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISREG(st.st_mode);
}

/* Forgets the replayed names that are no longer a regular file in the spool; how many. */
static size_t drop_gone(struct af_remote *r)
{
        size_t n = 0, gone = 0;
        char **names = NULL;

        if (af_uploaded_names(r->uploaded, &names, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                struct af_uploaded_entry *e;

                if (still_there(r, names[i]))
                        continue;
                if (af_uploaded_take(r->uploaded, names[i], &e) == 0) {
                        af_uploaded_entry_free(e);
                        gone++;
                }
        }
        af_uploaded_names_free(names, n);
        return gone;
}

/* The registry as earlier mounts of the spool left it. */
static void load(struct af_remote *r)
{
        struct af_uploaded_log_stats st = { 0 };
        size_t gone;
        int e;

        e = af_uploaded_persist(r->uploaded, r->cfg.log_dirfd, AF_REMOTE_LOG, &st);
        if (e < 0) {
                af_log_warn("op=registry file=%s err=%s msg=\"the registry of uploads is kept "
                            "in memory only\"",
                            AF_REMOTE_LOG, af_q(strerror(-e)));
                return;
        }
        gone = drop_gone(r);
        if (st.skipped)
                af_log_warn("op=registry file=%s skipped=%zu msg=\"records torn or damaged "
                            "(a crash); those names are uploaded again if renamed\"",
                            AF_REMOTE_LOG, st.skipped);
        if (st.entries)
                af_log_info("op=registry names=%zu forgotten=%zu msg=\"uploads of earlier "
                            "mounts remembered\"",
                            st.entries - gone, gone);
}

int af_remote_new(const struct af_remote_config *cfg, struct af_remote **ret)
{
        struct af_remote *r = calloc(1, sizeof(*r));
        int e;

        if (!r)
                return -ENOMEM;
        r->cfg = *cfg;
        e = af_uploaded_new(cfg->max_entries, &r->uploaded);
        if (e < 0) {
                free(r);
                return e;
        }
        if (cfg->persist)
                load(r);
        *ret = r;
        return 0;
}

void af_remote_set_queue(struct af_remote *r, struct af_queue *queue)
{
        atomic_store(&r->queue, queue);
}

void af_remote_free(struct af_remote *r)
{
        if (!r)
                return;
        af_uploaded_free(r->uploaded);
        free(r);
}

/*
 * The object @rel goes to on its own (not inside a directory's archive), in @route (the
 * caller inits and frees route->key). 1 if there is one, else 0.
 */
static int own_object(struct af_remote *r, const char *rel, struct af_route *route)
{
        return af_router_route_own(r->cfg.router, rel, route) > 0 && !route->deferred;
}

/* With --delete-on-unlink: deletes what @e's name put, unless @keep_bucket/@keep_key (what
 * the name's new occupant is uploaded to; may be NULL) is that key, or another name's last
 * upload put it. */
static void delete_entry(struct af_remote *r, const struct af_uploaded_entry *e,
                         const char *keep_bucket, const char *keep_key, const char *why)
{
        struct af_queue *q = atomic_load(&r->queue);
        int err;

        if (!r->cfg.delete_on_unlink || !q)
                return;
        if (keep_key && strcmp(keep_key, e->key) == 0 && strcmp(keep_bucket, e->bucket) == 0)
                return; /* the new file is uploaded over it */
        if (af_uploaded_key_held(r->uploaded, e->bucket, e->key)) {
                af_log_info("op=delete status=skipped path=%s key=%s msg=\"another name's "
                            "upload put this key; left as is\"",
                            af_q(e->relpath), af_q(e->key));
                return;
        }
        err = af_queue_submit_delete(q, e->relpath, e->bucket, e->key, e->etag);
        if (err < 0)
                af_log_warn("op=delete path=%s key=%s err=%s msg=\"cannot queue the delete; the "
                            "object is left in S3\"",
                            af_q(e->relpath), af_q(e->key), af_q(strerror(-err)));
        else
                af_log_debug("op=delete status=queued path=%s key=%s trigger=%s",
                             af_q(e->relpath), af_q(e->key), why);
}

/* ---- the objects of the other artifacts that declare a name's path ---------------------- */

/*
 * A file that several artifacts declare goes to each one's key (extras.c in the queue). The
 * registry keeps the first object under the name itself, as for any file, and each other
 * one under "<name>\x1f<artifact>", so unlink, rename and the unmount's reconciliation find
 * them (a file whose own name holds a \x1f, which no tool makes, would be confused with one).
 */
static int extra_name(const char *rel, const char *artifact, char *out, size_t n)
{
        return (size_t)snprintf(out, n, "%s%c%s", rel, EXTRA_SEP, artifact) < n ? 0
                                                                             : -ENAMETOOLONG;
}

/* Whether the file named @to is uploaded to @bucket/@key, for any artifact that claims it. */
static bool goes_to(struct af_remote *r, const char *to, const char *bucket, const char *key)
{
        struct af_route route = { 0 };
        bool hit = false;
        int rr;

        if (!to)
                return false;
        af_buf_init(&route.key, 0);
        for (size_t n = 0; !hit && (rr = af_router_route_nth(r->cfg.router, to, n, &route)) !=
                                           -ESRCH;
             n++)
                hit = rr > 0 && !route.deferred && strcmp(route.bucket, bucket) == 0 &&
                      strcmp(af_buf_str(&route.key), key) == 0;
        af_buf_done(&route.key);
        return hit;
}

static void delete_entry(struct af_remote *r, const struct af_uploaded_entry *e,
                         const char *keep_bucket, const char *keep_key, const char *why);

/* @rel is gone (unlinked, or renamed to @to, NULL for an unlink): the objects the other
 * artifacts declaring its path put go too, unless @to's file is uploaded to the same key. */
static void drop_extras(struct af_remote *r, const char *rel, const char *to, const char *why)
{
        struct af_route route = { 0 };
        char name[PATH_MAX + 256];
        int rr;

        af_buf_init(&route.key, 0);
        for (size_t n = 0;
             (rr = af_router_route_nth(r->cfg.router, rel, n, &route)) != -ESRCH; n++) {
                struct af_uploaded_entry *e = NULL;

                if (rr < 0 || !route.artifact ||
                    extra_name(rel, route.artifact->name, name, sizeof(name)) < 0 ||
                    af_uploaded_take(r->uploaded, name, &e) < 0)
                        continue;
                if (!goes_to(r, to, e->bucket, e->key))
                        delete_entry(r, e, NULL, NULL, why);
                af_uploaded_entry_free(e);
        }
        af_buf_done(&route.key);
}

void af_remote_on_uploaded(void *ctx, const struct af_queue_uploaded *u)
{
        struct af_remote *r = ctx;
        char name[PATH_MAX + 256];
        struct af_uploaded_entry e = { .relpath = u->relpath, .bucket = u->bucket,
                                       .key = u->key, .etag = u->etag, .archive = u->archive,
                                       .dev = u->dev, .ino = u->ino, .size = u->size,
                                       .mtime_ns = u->superseded ? -1 : u->mtime_ns,
                                       .seq = u->seq };
        struct stat st;
        int err;

        if (u->is_dir)
                return; /* a directory's archive: rebuilt at flush and unmount */
        if (u->artifact) {
                if (extra_name(u->relpath, u->artifact, name, sizeof(name)) < 0)
                        return;
                e.relpath = name;
                e.mtime_ns = -1; /* never a copy source: the name's own entry is */
        }
        if (fstatat(r->cfg.spool_fd, u->relpath, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode)) {
                /* Unlinked or renamed away while it went up (or the name now holds a FIFO, a
                 * directory...: never uploaded): its object is a stray now. The name's entry
                 * of an earlier upload, if the unlink or rename has not taken it yet (a
                 * directory's rename walks its files after the rename), is of the same key
                 * and older: it goes first, so it neither keeps this delete from happening
                 * ("another name's upload put this key") nor leads to a delete of its own,
                 * with its older ETag, that would find this upload's object and leave it. */
                struct af_uploaded_entry *older = NULL;

                if (af_uploaded_take(r->uploaded, e.relpath, &older) == 0)
                        af_uploaded_entry_free(older);
                delete_entry(r, &e, NULL, NULL, "gone during upload");
                return;
        }
        if (st.st_dev != u->dev || st.st_ino != u->ino)
                e.mtime_ns = -1; /* another file has the name now; it will go up itself */
        err = af_uploaded_put(r->uploaded, &e);
        if (err == -EEXIST)
                return; /* a later upload of the name (same key) told of itself first */
        if (err < 0) {
                af_log_warn("op=registry path=%s err=\"out of memory\" msg=\"a rename will "
                            "upload it again\"",
                            af_q(u->relpath));
                return;
        }
        /* An unlink or rename that ran between the fstatat above and the put found the
         * name's older entry, or none, and so never deleted this object. Gone now: the entry
         * is taken back and its object deleted, unless that unlink or rename took it first
         * (then it deletes it itself). */
        if (fstatat(r->cfg.spool_fd, u->relpath, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode)) {
                struct af_uploaded_entry *mine = NULL;

                if (af_uploaded_take(r->uploaded, e.relpath, &mine) == 0) {
                        delete_entry(r, mine, NULL, NULL, "gone during upload");
                        af_uploaded_entry_free(mine);
                }
        }
}

bool af_remote_moved(struct af_remote *r, const char *from, const char *to, int fd)
{
        struct af_queue *q = r ? atomic_load(&r->queue) : NULL;
        struct af_uploaded_entry *e = NULL;
        struct af_route route = { 0 };
        bool copied = false;
        struct stat st;

        if (!q || af_queue_pending(q, from) || af_uploaded_get(r->uploaded, from, &e) < 0)
                return false;
        af_buf_init(&route.key, 0);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || e->mtime_ns < 0 ||
            st.st_dev != e->dev || st.st_ino != e->ino || (uint64_t)st.st_size != e->size ||
            af_mtime_ns(&st) != e->mtime_ns || e->archive != AF_ARCHIVE_NONE)
                goto out; /* not (known to be) what went up, or packaged: upload it */
        if (!own_object(r, to, &route) || route.archive != AF_ARCHIVE_NONE)
                goto out;
        {
                struct af_queue_copy src = { .bucket = e->bucket, .key = e->key,
                                             .etag = e->etag, .dev = e->dev, .ino = e->ino,
                                             .size = e->size, .mtime_ns = e->mtime_ns };

                copied = af_queue_submit_copy(q, to, route.bucket, af_buf_str(&route.key),
                                              &src) == 0;
        }
        if (copied)
                af_log_debug("op=submit path=%s key=%s trigger=rename copy_from=%s",
                             af_q(to), af_q(af_buf_str(&route.key)), af_q(e->key));
out:
        af_buf_done(&route.key);
        af_uploaded_entry_free(e);
        return copied;
}

bool af_remote_involved(struct af_remote *r, const char *from, const char *to)
{
        return r && (af_uploaded_has(r->uploaded, from) || af_uploaded_has(r->uploaded, to));
}

/* @e's object is at the key the file now named @to is uploaded to: it stays there until that
 * upload replaces it, so its record moves to @to (never copied from: mtime unknown). If @to
 * is unlinked first, the delete removes it; the upload, when it lands, replaces the record.
 * If that upload landed already (between the caller's take and now: a small file goes up at
 * once), its newer record stays: it wrote over @e's object. */
static void keep_under(struct af_remote *r, const struct af_uploaded_entry *e, const char *to)
{
        struct af_uploaded_entry k = *e;
        int err;

        k.relpath = to;
        k.mtime_ns = -1;
        err = af_uploaded_put_new(r->uploaded, &k);
        if (err < 0 && err != -EEXIST)
                af_log_warn("op=registry path=%s err=\"out of memory\" msg=\"if it is removed "
                            "before its upload, its old object stays\"",
                            af_q(to));
}

static bool same_object(const struct af_uploaded_entry *e, const char *bucket, const char *key)
{
        return key && strcmp(key, e->key) == 0 && strcmp(bucket, e->bucket) == 0;
}

void af_remote_on_gone(void *ctx, const char *relpath, const char *bucket, const char *key,
                       const char *etag)
{
        struct af_remote *r = ctx;
        struct af_uploaded_entry e = { .relpath = relpath, .bucket = bucket, .key = key,
                                       .etag = etag, .mtime_ns = -1 };
        struct af_uploaded_entry *older = NULL;

        if (!r || !r->cfg.delete_on_unlink || still_there(r, relpath))
                return;
        /* The name's entry of an earlier upload, if nothing took it: its object goes too (a
         * delete by ETag finds whichever of the two is there). */
        if (af_uploaded_take(r->uploaded, relpath, &older) == 0) {
                if (!same_object(older, bucket, key) || (etag[0] && strcmp(older->etag, etag)))
                        delete_entry(r, older, NULL, NULL, "gone");
                af_uploaded_entry_free(older);
        }
        af_log_info("op=delete path=%s key=%s msg=\"an upload of this name, now gone, may "
                    "have reached S3 unanswered; its key is deleted%s\"",
                    af_q(relpath), af_q(key), etag[0] ? " if it holds that upload" : "");
        delete_entry(r, &e, NULL, NULL, "gone after an unanswered upload");
}

void af_remote_renamed(struct af_remote *r, const char *from, const char *to, bool exchange)
{
        struct af_uploaded_entry *ef = NULL, *et = NULL;
        struct af_route route = { 0 };
        const char *kb = NULL, *kk = NULL;
        struct stat st;

        if (!r)
                return;
        (void)af_uploaded_take(r->uploaded, from, &ef);
        (void)af_uploaded_take(r->uploaded, to, &et);
        af_buf_init(&route.key, 0);
        if (!exchange) {
                drop_extras(r, from, to, "renamed away");
                /* What the file now at @to is uploaded to: that key is rewritten, not
                 * deleted. */
                if (fstatat(r->cfg.spool_fd, to, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISREG(st.st_mode) && own_object(r, to, &route)) {
                        kb = route.bucket;
                        kk = af_buf_str(&route.key);
                }
                if (ef && same_object(ef, kb, kk))
                        keep_under(r, ef, to);
                else if (ef)
                        delete_entry(r, ef, kb, kk, "renamed away");
                if (et && same_object(et, kb, kk))
                        keep_under(r, et, to); /* the newer of the two, if both */
                else if (et)
                        delete_entry(r, et, kb, kk, "replaced by a rename");
        }
        af_buf_done(&route.key);
        af_uploaded_entry_free(ef);
        af_uploaded_entry_free(et);
}

void af_remote_forget(struct af_remote *r, const char *rel)
{
        struct af_uploaded_entry *e = NULL;

        if (r && af_uploaded_take(r->uploaded, rel, &e) == 0)
                af_uploaded_entry_free(e);
}

void af_remote_unlinked(struct af_remote *r, const char *rel)
{
        struct af_uploaded_entry *e = NULL;

        if (!r)
                return;
        drop_extras(r, rel, NULL, "unlink");
        if (af_uploaded_take(r->uploaded, rel, &e) < 0)
                return;
        delete_entry(r, e, NULL, NULL, "unlink");
        af_uploaded_entry_free(e);
}

unsigned af_remote_reconcile(struct af_remote *r)
{
        unsigned queued = 0;
        char **names = NULL;
        size_t n = 0;

        if (!r || !r->cfg.delete_on_unlink || af_uploaded_names(r->uploaded, &names, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                struct af_uploaded_entry *e = NULL;

                if (still_there(r, names[i]))
                        continue;
                if (af_uploaded_take(r->uploaded, names[i], &e) < 0)
                        continue;
                delete_entry(r, e, NULL, NULL, "gone at unmount");
                af_uploaded_entry_free(e);
                queued++;
        }
        af_uploaded_names_free(names, n);
        return queued;
}

/* ---- a renamed directory --------------------------------------------------------------- */

/* The file @to_rel (descriptor @fd), known as @from_rel before its directory was renamed:
 * copied or uploaded under its new name, and its old name's object handled as a rename. */
static void dir_file_moved(struct af_remote *r, struct af_queue *q, const char *from_rel,
                           const char *to_rel, int fd)
{
        struct af_route route = { 0 };
        int err;

        if (!af_remote_moved(r, from_rel, to_rel, fd)) {
                af_buf_init(&route.key, 0);
                if (own_object(r, to_rel, &route)) {
                        err = af_queue_submit(q, to_rel, route.bucket, af_buf_str(&route.key));
                        if (err < 0)
                                af_log_error("op=submit path=%s err=%s msg=\"file kept in the "
                                             "spool\"",
                                             af_q(to_rel), af_q(strerror(-err)));
                }
                af_buf_done(&route.key);
        }
        af_remote_renamed(r, from_rel, to_rel, false);
}

/* Walks directory @dfd (taken), named @from and @to (PATH_MAX buffers, modified in place
 * and restored). */
static void walk(struct af_remote *r, struct af_queue *q, int dfd, char *from, char *to,
                 unsigned depth)
{
        size_t fl = strlen(from), tl = strlen(to);
        DIR *d = fdopendir(dfd);
        struct dirent *de;

        if (!d) {
                close(dfd);
                return;
        }
        while ((de = readdir(d))) {
                struct stat st;
                int fd;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if ((size_t)snprintf(from + fl, PATH_MAX - fl, "/%s", de->d_name) >=
                            PATH_MAX - fl ||
                    (size_t)snprintf(to + tl, PATH_MAX - tl, "/%s", de->d_name) >= PATH_MAX - tl)
                        goto next;
                fd = openat(dirfd(d), de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0) {
                        if (fd >= 0)
                                close(fd);
                        goto next;
                }
                if (S_ISREG(st.st_mode)) {
                        dir_file_moved(r, q, from, to, fd);
                        close(fd);
                } else if (S_ISDIR(st.st_mode) && depth < 256) {
                        close(fd);
                        fd = openat(dirfd(d), de->d_name,
                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd >= 0)
                                walk(r, q, fd, from, to, depth + 1);
                } else {
                        close(fd);
                }
next:
                from[fl] = '\0';
                to[tl] = '\0';
        }
        closedir(d);
}

void af_remote_dir_renamed(struct af_remote *r, const char *from, const char *to)
{
        struct af_queue *q = r ? atomic_load(&r->queue) : NULL;
        char f[PATH_MAX], t[PATH_MAX];
        int fd;

        if (!q || strlen(from) >= sizeof(f) || strlen(to) >= sizeof(t))
                return;
        fd = openat(r->cfg.spool_fd, to, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return; /* not a directory */
        memcpy(f, from, strlen(from) + 1);
        memcpy(t, to, strlen(to) + 1);
        walk(r, q, fd, f, t, 0);
}
