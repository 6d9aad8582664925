/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Room in the spool: --spool-limit and the spool's free space (core/spool/space.h counts
 * them). Whatever makes a file grow takes room first, and settles what it took once the
 * file's new size is known; whatever makes a file smaller or removes it gives room back.
 * When there is not enough, files already in S3 are evicted (removed from the spool, oldest
 * upload first), unless --keep; only then does a write get ENOSPC, or a short write.
 *
 * An evicted file never loses data: it is exactly what went up, nobody has it open or is
 * about to (names_lock, the handle counts), and no upload of it is pending. The kernel is told
 * to forget its name (notify.c); an open of a stale name it still caches gets ENOENT.
 */
#include "fs_int.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"

/* Marks @c's node (if any) evicted, unless it has a handle or is dirty: false then. */
static bool mark_evicted(struct af_fs *fs, const struct stat *st, struct af_node **ret)
{
        struct af_node *n;

        pthread_mutex_lock(&fs->lock);
        n = af_node_find_locked(fs, st->st_dev, st->st_ino);
        if (n && (n->handles || atomic_load(&n->dirty))) {
                pthread_mutex_unlock(&fs->lock);
                return false;
        }
        if (n)
                n->evicted = true;
        pthread_mutex_unlock(&fs->lock);
        *ret = n;
        return true;
}

/* Truncates and unlinks candidate @c, open as @fd, unless an upload of it is pending: 1 when
 * it is gone, 0 when it is pending, < 0 on failure. */
static int remove_candidate(struct af_fs *fs, const struct af_space_candidate *c, int fd)
{
        /* Checked after the handles: a last close hands the file over before it lets go of
         * its handle, so a file with no handle left is either queued by now or clean. */
        if (fs->cfg.queue && af_queue_pending(fs->cfg.queue, c->relpath))
                return 0;
        if (ftruncate(fd, 0) < 0 || unlinkat(fs->root.fd, c->relpath, 0) < 0) {
                int r = -errno;

                af_log_warn("op=evict path=%s err=%s", af_q(c->relpath), af_q(strerror(-r)));
                return r;
        }
        af_notify_forget_name(fs, c->relpath);
        /* Its object stays: nothing (an unmount's reconcile) may delete it as a name gone. */
        af_remote_forget(fs->cfg.remote, c->relpath);
        af_log_info("op=evict path=%s key=%s bytes=%llu msg=\"in S3; removed from the "
                    "spool to make room\"",
                    af_q(c->relpath), af_q(c->key), (unsigned long long)c->size);
        return 1;
}

/*
 * Removes candidate @c, a file already in S3, from the spool, if it is still what went up and
 * nobody has it open or is about to: 1 when it is gone, 0 when it is busy now (try again
 * later), < 0 when it is no longer a candidate (changed, renamed, gone, hard-linked).
 * Its data is truncated away first, so the room comes back even while the kernel still holds
 * the inode; an open of its stale name gets ENOENT (af_node_add_handle()).
 */
static int evict_one(struct af_fs *fs, const struct af_space_candidate *c)
{
        struct af_node *n = NULL;
        struct stat st;
        int fd, r = -ESTALE;

        pthread_rwlock_wrlock(&fs->names_lock);
        fd = openat(fs->root.fd, c->relpath, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                goto out;
        if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_dev != c->dev ||
            st.st_ino != c->ino || (uint64_t)st.st_size != c->size ||
            af_mtime_ns(&st) != c->mtime_ns)
                goto out;
        if (!mark_evicted(fs, &st, &n)) {
                r = 0;
                goto out;
        }
        r = remove_candidate(fs, c, fd);
        if (r != 1 && n) {
                pthread_mutex_lock(&fs->lock);
                n->evicted = false;
                pthread_mutex_unlock(&fs->lock);
        }
out:
        if (fd >= 0)
                close(fd);
        pthread_rwlock_unlock(&fs->names_lock);
        return r;
}

/* Evicts files in S3, oldest upload first, until @need bytes came back or none can go. */
static void evict(struct af_fs *fs, uint64_t need)
{
        struct af_space *sp = fs->cfg.space;
        size_t tries = af_space_candidates(sp);
        struct af_space_candidate c;
        uint64_t freed = 0;

        while (freed < need && tries-- && af_space_next_candidate(sp, &c)) {
                int r = evict_one(fs, &c);

                if (r > 0) {
                        freed += c.size;
                        af_space_release(sp, c.size);
                }
                if (r == 0)
                        af_space_requeue(sp, &c);
                else
                        af_space_candidate_done(&c);
        }
}

/* Not with --keep. */
int af_room_take(struct af_fs *fs, uint64_t growth, bool partial, uint64_t *ret)
{
        struct af_space *sp = fs->cfg.space;
        uint64_t got, now;

        *ret = 0;
        if (!sp || !growth)
                return 0;
        got = af_space_reserve(sp, growth);
        if (got < growth && !fs->cfg.keep) {
                evict(fs, growth - got);
                got += af_space_reserve(sp, growth - got);
        }
        if (got == growth || (partial && got > 0)) {
                *ret = got;
                return 0;
        }
        af_space_release(sp, got);
        now = af_clock_mono_ms();
        if (now - atomic_exchange(&fs->enospc_logged_ms, now) >= 1000)
                af_log_warn("op=write err=ENOSPC spool_used=%llu spool_limit=%llu "
                            "msg=\"the spool is full: writes fail until uploads free room%s\"",
                            (unsigned long long)af_space_used(sp),
                            (unsigned long long)af_space_limit(sp),
                            fs->cfg.keep ? " (--keep: nothing is evicted)" : "");
        return -ENOSPC;
}

void af_room_give(struct af_fs *fs, uint64_t took, uint64_t before, uint64_t after)
{
        struct af_space *sp = fs->cfg.space;

        if (!sp)
                return;
        if (after >= before) {
                if (after - before < took)
                        af_space_release(sp, took - (after - before));
                else
                        af_space_charge(sp, after - before - took);
        } else {
                af_space_release(sp, took + (before - after));
        }
}

void af_room_release(struct af_fs *fs, uint64_t bytes)
{
        if (bytes && fs->cfg.space)
                af_space_release(fs->cfg.space, bytes);
}

bool af_room_too_big(struct af_fs *fs, uint64_t size)
{
        bool big = false;
        int fd;

        if (size > (uint64_t)INT64_MAX)
                return true;
        /* The spool's filesystem decides, on a nameless file nobody can see: a sparse
         * truncate takes no space. */
        fd = open(fs->cfg.spool, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0)
                return false;
        big = ftruncate(fd, (off_t)size) < 0 && errno == EFBIG;
        close(fd);
        return big;
}

uint64_t af_room_size(int fd)
{
        struct stat st;

        if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return 0;
        return (uint64_t)st.st_size;
}

/* A regular file's size, unless another hard link keeps the file. */
uint64_t af_room_freed_by_unlink(const struct stat *st)
{
        return S_ISREG(st->st_mode) && st->st_nlink == 1 ? (uint64_t)st->st_size : 0;
}

/* A short write: up to where the room ends, when that is past @off; -ENOSPC when it is not. */
int af_room_take_write(struct af_fs *fs, int fd, off_t off, size_t *len, struct af_room_write *w)
{
        uint64_t end = (uint64_t)off + *len;
        int r;

        w->before = 0;
        w->took = 0;
        if (!fs->cfg.space)
                return 0;
        w->before = af_room_size(fd);
        if (end <= w->before)
                return 0;
        r = af_room_take(fs, end - w->before, true, &w->took);
        if (r < 0)
                return r;
        if (w->before + w->took < end) {
                if (w->before + w->took <= (uint64_t)off) {
                        af_space_release(fs->cfg.space, w->took);
                        w->took = 0;
                        return -ENOSPC;
                }
                *len = (size_t)(w->before + w->took - (uint64_t)off);
        }
        return 0;
}

void af_room_give_write(struct af_fs *fs, const struct af_room_write *w, off_t off, ssize_t n)
{
        uint64_t end = (uint64_t)off + (n > 0 ? (uint64_t)n : 0);

        if (fs->cfg.space)
                af_room_give(fs, w->took, w->before, end > w->before ? end : w->before);
}
