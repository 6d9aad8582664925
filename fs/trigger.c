/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The upload trigger (fs.h): when a file is handed to the upload queue, and under which
 * names. A file is marked dirty by whatever changes its data (af_trigger_mark_dirty()); the
 * last release of a writable handle hands a dirty file over (af_node_put_handle()), as do a
 * truncate without a handle, fsync, --sync-close, the unmount, and a rename or link that
 * brings a file to a new name.
 *
 * Hard links: a change made through any name reaches every name's object, so a file goes
 * under each name that still leads to it. The router decides whether a name is uploaded at
 * all; the queue does the uploading, asynchronously unless the caller waits (fsync).
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

void af_trigger_mark_dirty(struct af_node *n)
{
        atomic_store(&n->dirty, true);
}

/* Hands the queue one of @relpath's uploads: with @wait, its result once it has finished;
 * else of its data as of @v, if known (af_queue_submit_version). */
static int queue_relpath(struct af_fs *fs, const char *relpath, const struct af_route *route,
                         const char *why, bool wait, const struct af_queue_version *v)
{
        const char *key = af_buf_str(&route->key);
        int r;

        if (wait)
                r = af_queue_submit_wait(fs->cfg.queue, relpath, route->bucket, key, -1);
        else if (v)
                r = af_queue_submit_version(fs->cfg.queue, relpath, route->bucket, key, v);
        else
                r = af_queue_submit(fs->cfg.queue, relpath, route->bucket, key);
        if (r < 0)
                af_log_error("op=%s path=%s key=%s err=%s msg=\"file kept in the spool\"",
                             wait ? why : "submit", af_q(relpath), af_q(key), af_q(strerror(-r)));
        else
                af_log_debug("op=submit path=%s key=%s trigger=%s", af_q(relpath), af_q(key),
                             why);
        return r;
}

/*
 * Hands @relpath to the queue if the router uploads it, as of @v (may be NULL). With @wait
 * (fsync, --sync-close), returns only when that upload has finished: 0, or its negative
 * errno.
 */
static int submit_relpath(struct af_fs *fs, const char *relpath, const char *why, bool wait,
                          const struct af_queue_version *v)
{
        struct af_route route = { 0 };
        int r, ret = 0;

        af_buf_init(&route.key, 0);
        r = af_router_route_own(fs->cfg.router, relpath, &route);
        if (r == 0 && route.artifact && route.artifact->other_location) {
                af_log_info("op=close path=%s artifact=%s msg=\"not uploaded: a %s location, "
                            "which Argo saves itself\"",
                            af_q(relpath), af_q(route.artifact->name),
                            route.artifact->other_location);
        } else if (r == 0) {
                af_log_debug("op=close path=%s msg=\"not a declared artifact; not uploaded\"",
                             af_q(relpath));
        } else if (r < 0) {
                af_log_error("op=route path=%s err=%s msg=\"cannot build a key; file kept in the "
                             "spool\"",
                             af_q(relpath), af_q(strerror(-r)));
        } else if (!fs->cfg.queue) {
                af_log_error("op=submit path=%s msg=\"upload queue not running; file kept in the "
                             "spool\"",
                             af_q(relpath));
        } else {
                ret = queue_relpath(fs, relpath, &route, why, wait, v);
        }
        af_buf_done(&route.key);
        return ret;
}

/* The version of @n's file (@st) the queue is handed now. Read before the hand-over, so what
 * the upload opens after it is at least that new. */
static struct af_queue_version version_of(struct af_node *n, const struct stat *st)
{
        return (struct af_queue_version){ .dev = st->st_dev, .ino = st->st_ino,
                                          .changes = atomic_load(&n->changes) };
}

/* Hands the file behind @fd (@n's, if known) to the queue, under the name @fd knows, if it
 * is a regular file still in the spool. */
static void submit_fd(struct af_fs *fs, struct af_node *n, int fd, const char *why)
{
        struct af_queue_version v;
        char rel[PATH_MAX];
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return;
        if (n)
                v = version_of(n, &st);
        if (af_relpath_of(fs, fd, rel, sizeof(rel)) < 0)
                return; /* unlinked while open: nothing left to upload */
        (void)submit_relpath(fs, rel, why, false, n ? &v : NULL);
}

/* One name @p of file @st for af_trigger_submit_names(): skipped if empty or if it no longer
 * names the file; the first one kept is copied to @first and submitted with @wait (its
 * result in @r), the others without waiting. Nothing is submitted without @why. */
static void submit_name(struct af_fs *fs, const char *p, const struct stat *st,
                        const struct af_queue_version *v, const char *why, bool wait,
                        char *first, int *r)
{
        if (!p[0] || !af_relpath_names(fs, p, st))
                return;
        if (!first[0]) {
                memcpy(first, p, strlen(p) + 1);
                if (why)
                        *r = submit_relpath(fs, p, why, wait, v);
        } else if (why) {
                (void)submit_relpath(fs, p, why, false, v);
        }
}

/*
 * The names, each only if it still names this file: the name @fd was opened by, the name of
 * the node's own descriptor (both follow renames), and the other names seen (n->names). The
 * first name goes as submit_relpath() with @wait, and its result is returned; the others go
 * without waiting. Without @why nothing is submitted. In @ret_first (PATH_MAX bytes, may be
 * NULL): that first name, or "" if the file has no name left (unlinked while open: nothing
 * to upload).
 */
int af_trigger_submit_names(struct af_fs *fs, struct af_node *n, int fd, const char *why,
                            bool wait, char *ret_first)
{
        char fd_name[PATH_MAX] = "", node_name[PATH_MAX] = "", first[PATH_MAX] = "";
        struct af_queue_version v;
        char *names = NULL;
        size_t len = 0;
        struct stat st;
        int r = 0;

        if (why) { /* a snapshot older than this is moot, and so is one of the same data */
                atomic_fetch_add(&n->handovers, 1);
                atomic_store(&n->snapped, atomic_load(&n->changes));
        }
        if (fstat(fd, &st) < 0)
                goto out;
        if (!S_ISREG(st.st_mode)) {
                /* A FIFO, socket or device: no content of its own, as tar has none for it. */
                if (why && af_relpath_of(fs, fd, fd_name, sizeof(fd_name)) == 0)
                        af_log_info("op=%s path=%s msg=\"not a regular file; not uploaded\"",
                                    why, af_q(fd_name));
                goto out;
        }
        v = version_of(n, &st);
        (void)af_relpath_of(fs, fd, fd_name, sizeof(fd_name));
        submit_name(fs, fd_name, &st, &v, why, wait, first, &r);
        if (first[0] && st.st_nlink == 1)
                goto out; /* its only name */
        /* Not the same as @fd's when the handle came from create on an existing name. */
        if (n->fd != fd && af_relpath_of(fs, n->fd, node_name, sizeof(node_name)) == 0 &&
            strcmp(node_name, fd_name) != 0)
                submit_name(fs, node_name, &st, &v, why, wait, first, &r);
        names = af_node_names_copy(fs, n, &len);
        for (const char *p = names; p && p < names + len; p += strlen(p) + 1)
                if (strcmp(p, fd_name) != 0 && strcmp(p, node_name) != 0)
                        submit_name(fs, p, &st, &v, why, wait, first, &r);
out:
        free(names);
        if (ret_first)
                memcpy(ret_first, first, strlen(first) + 1);
        return r;
}

/*
 * Returns once the file's current content is in S3 (0), or why it could not get there
 * (-EIO: the program sees EIO, the log says why). A file that was not written since its last
 * hand-over is not sent again; an upload of it still in flight is waited for.
 */
int af_trigger_sync(struct af_fs *fs, struct af_node *n, int fd, const char *why)
{
        char rel[PATH_MAX];
        int r;

        if (!fs->cfg.queue)
                return 0;
        /* A close on another handle may be handing the file over right now: microseconds. */
        while (atomic_load(&n->handing_over) > 0)
                (void)nanosleep(&(struct timespec){ .tv_nsec = 200000 }, NULL);
        if (atomic_exchange(&n->dirty, false)) {
                r = af_trigger_submit_names(fs, n, fd, why, true, NULL);
        } else {
                (void)af_trigger_submit_names(fs, n, fd, NULL, false, rel);
                if (!rel[0])
                        return 0;
                r = af_queue_wait(fs->cfg.queue, rel, -1);
        }
        return r < 0 ? -EIO : 0;
}

void af_trigger_truncated(struct af_fs *fs, struct af_node *n)
{
        if (!af_node_has_writers(fs, n) && atomic_exchange(&n->dirty, false))
                (void)af_trigger_submit_names(fs, n, n->fd, "truncate", false, NULL);
}

/* A file that arrives at an artifact path by rename or link (write "out.tmp", rename or link
 * it to "out.csv") is uploaded under its new name; one still open for writing goes at its
 * last close. O_PATH: the name may be a FIFO or a device, which must not be opened. A file
 * renamed from @from (spool-relative; NULL for a link) that went up unchanged under that
 * name may be copied in S3 instead (remote.h). */
void af_trigger_arrived(struct af_fs *fs, int dirfd, const char *name, const char *why,
                        const char *from, const char *to)
{
        char rel[PATH_MAX];
        struct stat st;
        struct af_node *n;
        bool open_for_write = false;
        int fd;

        fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
                bool linked = st.st_nlink > 1 && af_relpath_of(fs, fd, rel, sizeof(rel)) == 0;

                pthread_mutex_lock(&fs->lock);
                n = af_node_find_locked(fs, st.st_dev, st.st_ino);
                if (n && linked)
                        af_node_add_name_locked(n, rel); /* a hard link renamed: its new name */
                if (n && n->writers) {
                        atomic_store(&n->dirty, true);
                        open_for_write = true;
                }
                pthread_mutex_unlock(&fs->lock);
                /* Its key may have changed, or it has a second name: no more streaming. The
                 * kernel holds the inode for this request, so @n cannot be forgotten. */
                if (n)
                        af_inorder_break_big(fs, n, why);
                if (!open_for_write &&
                    !(from && af_remote_moved(fs->cfg.remote, from, to, fd)))
                        submit_fd(fs, n, fd, why);
        }
        close(fd);
}

unsigned af_fs_submit_dirty(struct af_fs *fs)
{
        unsigned count = 0;
        struct af_node *n;
        int fd;

        af_snapshot_stop(fs); /* the final uploads follow: no snapshot after them */
        for (size_t b = 0; b < AF_NODE_BUCKETS; b++) {
                while ((n = af_node_take_dirty(fs, b, &fd))) {
                        if (fd < 0)
                                continue;
                        /* The session is over: no forget frees @n meanwhile. */
                        (void)af_trigger_submit_names(fs, n, fd, "unmount", false, NULL);
                        close(fd);
                        count++;
                }
        }
        return count;
}

void af_trigger_made(struct af_fs *fs, int dirfd, const char *name, mode_t mode)
{
        struct af_route route = { 0 };
        char rel[PATH_MAX];

        if (S_ISREG(mode)) { /* an empty file, made without open: uploaded as one */
                af_trigger_arrived(fs, dirfd, name, "mknod", NULL, NULL);
                return;
        }
        if (af_relpath_join(fs, dirfd, name, rel, sizeof(rel)) < 0)
                return;
        af_buf_init(&route.key, 0);
        /* Said once, when it appears: a FIFO, socket or device has no content to upload (a
         * tar or zip archive of its directory records it, as tar does). */
        if (af_router_route_own(fs->cfg.router, rel, &route) > 0 && !route.deferred)
                af_log_info("op=mknod path=%s type=%s msg=\"not a regular file; not uploaded\"",
                            af_q(rel), S_ISFIFO(mode) ? "fifo" : S_ISSOCK(mode) ? "socket"
                                                                 : "device");
        af_buf_done(&route.key);
}
