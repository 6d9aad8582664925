/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots of files still open for writing (--upload-open-every; queue.h, "Snapshots").
 * Every interval one thread walks the nodes, and each file open for writing whose data
 * changed since its last snapshot is copied, as it is at one instant, into an unnamed file in
 * the spool (O_TMPFILE: a crash leaves nothing behind), which the queue uploads to the file's
 * key. Not snapshotted: a file with more than one name, one the router does not upload (or
 * uploads inside its directory's archive), one whose previous snapshot is still waiting or
 * going up, or whose final upload is queued.
 *
 * Consistency without making the writer wait: the copy is a reflink (FICLONE) where the
 * spool's filesystem shares blocks, else a copy in the kernel (copy_file_range); either way
 * it counts only if no change of the file's data ran during it (the node's changing and
 * changes counters, which every write, truncate, fallocate and copy_file_range through the
 * mount moves) and its size, mtime and ctime are the same before and after (a change made in
 * the spool directly). Else it is taken again a few times, then left to the next interval.
 * Without reflinks the copy takes disk space while it waits and goes up: it is not made when
 * the spool's disk has less than twice the file's size free (said once per file).
 *
 * Not here: the upload, the order against the file's final upload, the journal (the queue).
 * A snapshot never clears the node's dirty mark: the close still hands the file over.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

#define COPY_TRIES 5
#define PINS_MAX 32 /* nodes held at once, per bucket visit */

static bool same_file_state(const struct stat *a, const struct stat *b)
{
        return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
               a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
               a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Whether the spool's disk has room for a copy of @size bytes, with as much to spare. */
static bool room_for_copy(int fd, uint64_t size)
{
        struct statvfs sv;

        if (fstatvfs(fd, &sv) < 0)
                return false;
        return (uint64_t)sv.f_bavail * sv.f_frsize / 2 >= size;
}

/* Bytes [0, @size) of @src into the empty @dst, in the kernel. */
static int copy_bytes(int src, int dst, uint64_t size)
{
        loff_t in = 0, out = 0;

        while ((uint64_t)in < size) {
                ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)(size - (uint64_t)in), 0);

                if (n < 0)
                        return -errno;
                if (n == 0)
                        break; /* shorter now: the check after the copy sees it */
        }
        return 0;
}

/* @dst (empty) becomes what @src (of size @size) holds: a reflink (1) if the filesystem has
 * them, else a copy (0). */
static int clone_or_copy(struct af_fs *fs, struct af_node *n, int src, int dst, uint64_t size)
{
        if (!atomic_load(&fs->snap.no_reflink)) {
                if (ioctl(dst, FICLONE, src) == 0)
                        return 1;
                if (errno != EOPNOTSUPP && errno != EXDEV && errno != EINVAL && errno != ENOTTY &&
                    errno != ENOSYS)
                        return -errno;
                atomic_store(&fs->snap.no_reflink, true);
                af_log_debug("op=snapshot msg=\"the spool's filesystem has no reflinks; "
                             "snapshots are copies\"");
        }
        if (!room_for_copy(dst, size)) {
                if (!n->snap_warned)
                        af_log_warn("op=snapshot status=skipped bytes=%llu msg=\"not enough free "
                                    "space in the spool for a copy of an open file; it goes up "
                                    "at its close\"",
                                    (unsigned long long)size);
                n->snap_warned = true;
                return -ENOSPC;
        }
        return copy_bytes(src, dst, size);
}

/* Copies @src, the file of @n, into @dst as it is at one instant (see the top). Its stat in
 * @ret_st and the node's change count the copy holds in @ret_changes. 1 for a reflink, 0 for
 * a copy, -EBUSY: it kept changing. */
static int copy_consistent(struct af_fs *fs, struct af_node *n, int src, int dst,
                           struct stat *ret_st, uint64_t *ret_changes)
{
        struct stat a, b;
        uint64_t g;
        int r;

        for (unsigned i = 0; i < COPY_TRIES; i++) {
                if (i) /* 1, 2, 4, 8 ms: a writer's burst usually ends */
                        (void)nanosleep(&(struct timespec){ .tv_nsec = 1000000L << (i - 1) },
                                        NULL);
                g = atomic_load(&n->changes);
                if (atomic_load(&n->changing))
                        continue;
                if (fstat(src, &a) < 0)
                        return -errno;
                if (ftruncate(dst, 0) < 0)
                        return -errno;
                r = clone_or_copy(fs, n, src, dst, (uint64_t)a.st_size);
                if (r < 0)
                        return r;
                if (fstat(src, &b) < 0)
                        return -errno;
                if (atomic_load(&n->changing) || atomic_load(&n->changes) != g ||
                    !same_file_state(&a, &b))
                        continue;
                *ret_st = a;
                *ret_changes = g;
                return r;
        }
        return -EBUSY;
}

/* The spool-relative name and the route of the file @fd if it is to be snapshotted: 1, and
 * @route filled; 0 not to be (the node is left alone until its next change); < 0 not now. */
static int snapshot_target(struct af_fs *fs, int fd, char *rel, struct af_route *route)
{
        struct stat st;
        int r;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
                return 0;
        if (af_relpath_of(fs, fd, rel, PATH_MAX) < 0)
                return 0; /* unlinked while open */
        r = af_router_route(fs->cfg.router, rel, route);
        if (r <= 0 || route->deferred || (route->artifact && route->artifact->other_location))
                return 0;
        if (af_queue_snapshot_pending(fs->cfg.queue, rel) || af_queue_pending(fs->cfg.queue, rel))
                return -EBUSY;
        return 1;
}

/* Snapshots @n's file, which changed since its last snapshot. */
static void snapshot_node(struct af_fs *fs, struct af_node *n)
{
        struct af_route route = { 0 };
        char path[64], rel[PATH_MAX];
        uint64_t changes = atomic_load(&n->changes), copied = 0;
        unsigned handovers = atomic_load(&n->handovers);
        int src, dst = -1, r;
        struct stat st = { 0 };
        const char *via;

        af_fs_proc_path(path, n->fd);
        src = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (src < 0)
                return;
        af_buf_init(&route.key, 0);
        r = snapshot_target(fs, src, rel, &route);
        if (r <= 0) {
                if (r == 0)
                        atomic_store(&n->snapped, changes);
                goto out;
        }
        dst = openat(fs->root.fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (dst < 0) {
                if (!n->snap_warned)
                        af_log_warn("op=snapshot status=skipped path=%s err=%s msg=\"cannot make "
                                    "a copy in the spool (O_TMPFILE); it goes up at its "
                                    "close\"",
                                    af_q(rel), af_q(strerror(errno)));
                n->snap_warned = true;
                goto out;
        }
        r = copy_consistent(fs, n, src, dst, &st, &copied);
        if (r < 0) {
                af_log_debug("op=snapshot status=skipped path=%s err=%s msg=\"tried again at the "
                             "next interval\"",
                             af_q(rel), af_q(strerror(-r)));
                goto out;
        }
        via = r ? "reflink" : "copy";
        r = af_queue_snapshot(fs->cfg.queue, rel, &route, dst, &st, &n->handovers, handovers);
        dst = -1; /* the queue's now */
        if (r == 0)
                atomic_store(&n->snapped, copied);
        af_log_debug("op=snapshot status=%s path=%s bytes=%llu via=%s",
                     r == 0 ? "taken" : "dropped", af_q(rel), (unsigned long long)st.st_size, via);
out:
        if (dst >= 0)
                close(dst);
        close(src);
        af_buf_done(&route.key);
}

/* One interval's walk: per bucket, the candidates are pinned under fs->lock, then copied
 * without it. */
static void walk(struct af_fs *fs)
{
        struct af_node *pinned[PINS_MAX];

        for (size_t b = 0; b < AF_NODE_BUCKETS; b++) {
                size_t np = 0;

                pthread_mutex_lock(&fs->lock);
                for (struct af_node *n = fs->buckets[b]; n && np < PINS_MAX; n = n->hnext) {
                        if (!n->writers ||
                            atomic_load(&n->changes) == atomic_load(&n->snapped))
                                continue;
                        n->pins++;
                        pinned[np++] = n;
                }
                pthread_mutex_unlock(&fs->lock);
                for (size_t i = 0; i < np; i++) {
                        snapshot_node(fs, pinned[i]);
                        af_node_unpin(fs, pinned[i]);
                }
        }
}

static void *snapshot_thread(void *arg)
{
        struct af_fs *fs = arg;
        long every = fs->cfg.upload_open_every_ms;
        struct timespec next;

        clock_gettime(CLOCK_MONOTONIC, &next);
        pthread_mutex_lock(&fs->snap.lock);
        while (!fs->snap.stopping) {
                next.tv_sec += every / 1000;
                next.tv_nsec += (every % 1000) * 1000000L;
                if (next.tv_nsec >= 1000000000L) {
                        next.tv_sec++;
                        next.tv_nsec -= 1000000000L;
                }
                while (!fs->snap.stopping &&
                       pthread_cond_timedwait(&fs->snap.cond, &fs->snap.lock, &next) != ETIMEDOUT)
                        ;
                if (fs->snap.stopping)
                        break;
                pthread_mutex_unlock(&fs->snap.lock);
                if (fs->cfg.queue)
                        walk(fs);
                pthread_mutex_lock(&fs->snap.lock);
                clock_gettime(CLOCK_MONOTONIC, &next); /* a slow walk does not pile up */
        }
        pthread_mutex_unlock(&fs->snap.lock);
        return NULL;
}

int af_snapshot_start(struct af_fs *fs)
{
        pthread_condattr_t ca;
        int r;

        pthread_mutex_init(&fs->snap.lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&fs->snap.cond, &ca);
        pthread_condattr_destroy(&ca);
        if (fs->cfg.upload_open_every_ms <= 0)
                return 0;
        r = pthread_create(&fs->snap.thread, NULL, snapshot_thread, fs);
        if (r)
                return -r;
        fs->snap.running = true;
        return 0;
}

void af_snapshot_stop(struct af_fs *fs)
{
        if (!fs->snap.running)
                return;
        pthread_mutex_lock(&fs->snap.lock);
        fs->snap.stopping = true;
        pthread_cond_signal(&fs->snap.cond);
        pthread_mutex_unlock(&fs->snap.lock);
        pthread_join(fs->snap.thread, NULL);
        fs->snap.running = false;
}
