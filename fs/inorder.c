/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-order writes and the stream they drive (fs.h, "Streaming"). Each node tracks how far
 * its file was written in order from its start (seq). Below the queue's multipart threshold
 * a write costs a few atomics and no lock; once seq reaches it (big), every write, truncate
 * and the like on the node takes its stream_lock, which keeps every check ("is this below
 * the parts handed over?") and the change it guards together, so no byte of a handed-over
 * part changes while the stream lives. Whatever could change such a byte ends the stream
 * (af_inorder_break()) and the file goes up whole at close.
 *
 * Not here: the upload of the parts (the queue's af_stream), when the whole file is handed
 * over (trigger.c).
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/log.h"

void af_inorder_init(struct af_node *nd)
{
        pthread_mutex_init(&nd->stream_lock, NULL);
}

/* A node made again for the same file would not know which bytes its stream holds, so a
 * forgotten node's stream is abandoned; at the end, the queue has taken over or journaled
 * every stream. */
void af_inorder_done(struct af_node *nd, bool abandon)
{
        if (nd->stream && abandon)
                af_stream_abandon(nd->stream, "inode forgotten");
        else if (nd->stream)
                af_stream_release(nd->stream);
        pthread_mutex_destroy(&nd->stream_lock);
}

/* Records a write of @n bytes at @off in @nd->seq: the written prefix grows, or, past a gap,
 * the file is no longer written in order. */
static void seq_note(struct af_node *nd, uint64_t off, uint64_t n)
{
        uint64_t s = atomic_load(&nd->seq), v;

        do {
                if (s == AF_SEQ_BROKEN)
                        return;
                v = off > s ? AF_SEQ_BROKEN : off + n > s ? off + n : s;
                if (v == s)
                        return;
        } while (!atomic_compare_exchange_weak(&nd->seq, &s, v));
}

/* af_inorder_break() with stream_lock held. */
static void break_locked(struct af_node *nd, const char *why, uint64_t seq)
{
        if (nd->stream)
                af_stream_abandon(nd->stream, why);
        nd->stream = NULL;
        nd->handed = 0;
        nd->retry_at = 0;
        atomic_store(&nd->seq, seq);
}

void af_inorder_break(struct af_fs *fs, struct af_node *nd, const char *why, uint64_t seq)
{
        if (!fs->stream_threshold)
                return;
        pthread_mutex_lock(&nd->stream_lock);
        break_locked(nd, why, seq);
        pthread_mutex_unlock(&nd->stream_lock);
}

void af_inorder_begin_change(struct af_fs *fs, struct af_node *nd, const char *why, uint64_t seq)
{
        if (!fs->stream_threshold)
                return;
        pthread_mutex_lock(&nd->stream_lock);
        break_locked(nd, why, seq);
}

void af_inorder_end_change(struct af_fs *fs, struct af_node *nd)
{
        if (fs->stream_threshold)
                pthread_mutex_unlock(&nd->stream_lock);
}

void af_inorder_break_big(struct af_fs *fs, struct af_node *nd, const char *why)
{
        if (atomic_load(&nd->big))
                af_inorder_break(fs, nd, why, AF_SEQ_BROKEN);
}

/* It may, once it is big. The kernel holds the inode while the request that names it runs. */
struct af_node *af_inorder_node(struct af_fs *fs, const struct stat *st)
{
        struct af_node *n = NULL;

        if (!fs->stream_threshold || !S_ISREG(st->st_mode))
                return NULL;
        pthread_mutex_lock(&fs->lock);
        n = af_node_find_locked(fs, st->st_dev, st->st_ino);
        pthread_mutex_unlock(&fs->lock);
        return n && n != &fs->root && atomic_load(&n->big) ? n : NULL;
}

/* A stream for @nd's file if it is a regular file with one name that the router uploads as
 * it is; it reads the parts through a descriptor of its own. -EPERM when the file is not to
 * stream as it is now (what would change that, a rename or a link, also resets the node).
 * With stream_lock. */
static int start_locked(struct af_fs *fs, struct af_node *nd)
{
        struct af_route route = { 0 };
        char path[64], rel[PATH_MAX];
        struct stat st;
        int fd, r;

        af_fs_proc_path(path, nd->fd);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
            af_relpath_of(fs, fd, rel, sizeof(rel)) < 0) {
                close(fd);
                return -EPERM;
        }
        af_buf_init(&route.key, 0);
        r = af_router_route_own(fs->cfg.router, rel, &route);
        if (r <= 0 || route.deferred || route.archive != AF_ARCHIVE_NONE) {
                af_log_debug("op=stream path=%s msg=\"not uploaded as it is; no streaming\"",
                             af_q(rel));
                close(fd);
                r = -EPERM;
        } else {
                r = af_queue_stream_start(fs->cfg.queue, rel, route.bucket,
                                          af_buf_str(&route.key), fd, &nd->stream);
        }
        af_buf_done(&route.key);
        return r;
}

/*
 * After a write: hands the stream every whole part the in-order prefix now covers, starting
 * the stream once the prefix reaches the threshold. Nothing is handed over while a write
 * that began without stream_lock is still under way (it may be behind the new parts): the
 * next write does it. With stream_lock.
 */
static void advance_locked(struct af_fs *fs, struct af_node *nd)
{
        uint64_t seq = atomic_load(&nd->seq), handed;
        int r;

        if (seq == AF_SEQ_BROKEN || seq < fs->stream_threshold || atomic_load(&nd->writing))
                return;
        if (nd->stream && seq < nd->handed + fs->stream_part)
                return; /* no new whole part */
        for (int tries = 0; tries < 2; tries++) {
                if (!nd->stream) {
                        if (seq < nd->retry_at)
                                return;
                        /* Not at every write: after a refusal (the queue busy with the
                         * file), one part later; a file not to stream, not again. */
                        r = start_locked(fs, nd);
                        if (r < 0) {
                                nd->retry_at = r == -EPERM ? UINT64_MAX : seq + fs->stream_part;
                                return;
                        }
                        nd->handed = 0;
                }
                r = af_stream_extend(nd->stream, seq, &handed);
                if (r == 0) {
                        nd->handed = handed;
                        return;
                }
                /* Taken over by an upload (fsync): a new stream starts from part 1. */
                af_stream_release(nd->stream);
                nd->stream = NULL;
                nd->handed = 0;
                nd->retry_at = 0;
        }
}

/* Before a write at @off with stream_lock: a write behind the parts handed over, or past
 * the in-order end, ends the stream. */
static void check_write_locked(struct af_node *nd, uint64_t off)
{
        uint64_t seq = atomic_load(&nd->seq);

        if (seq == AF_SEQ_BROKEN)
                return;
        if (off < nd->handed)
                break_locked(nd, "write behind the parts sent", AF_SEQ_BROKEN);
        else if (off > seq && nd->stream)
                break_locked(nd, "write past the end (a gap)", AF_SEQ_BROKEN);
}

/* Writes the first @len bytes of @in at @off of the handle's spool file. */
static ssize_t write_spool(struct fuse_bufvec *in, size_t len, off_t off,
                           struct fuse_file_info *fi)
{
        struct fuse_bufvec out = FUSE_BUFVEC_INIT(len);

        out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        out.buf[0].fd = (int)fi->fh;
        out.buf[0].pos = off;
        return fuse_buf_copy(&out, in, 0);
}

/*
 * A write to a file below the streaming threshold: no lock, and the atomics of the
 * `writing` count, which lets the first hand-over of parts wait for such writes to end (see
 * advance_locked()), and of seq. Returns false, having written nothing, when the file is
 * past the threshold: then write_big().
 */
static bool write_small(struct af_fs *fs, struct af_node *nd, struct fuse_bufvec *in, size_t len,
                        off_t off, struct fuse_file_info *fi, ssize_t *ret)
{
        uint64_t seq;

        atomic_fetch_add(&nd->writing, 1);
        if (atomic_load(&nd->big)) {
                atomic_fetch_sub(&nd->writing, 1);
                return false;
        }
        *ret = write_spool(in, len, off, fi);
        if (*ret > 0)
                seq_note(nd, (uint64_t)off, (uint64_t)*ret);
        atomic_fetch_sub(&nd->writing, 1);
        seq = atomic_load(&nd->seq);
        if (*ret > 0 && seq != AF_SEQ_BROKEN && seq >= fs->stream_threshold) {
                pthread_mutex_lock(&nd->stream_lock);
                atomic_store(&nd->big, true);
                advance_locked(fs, nd);
                pthread_mutex_unlock(&nd->stream_lock);
        }
        return true;
}

/* From the threshold on, the check and the write go together under stream_lock. The kernel
 * sends one file's write() calls one at a time anyway, so the lock costs nothing there;
 * mmap write-back is the other source of writes. */
static ssize_t write_big(struct af_fs *fs, struct af_node *nd, struct fuse_bufvec *in, size_t len,
                         off_t off, struct fuse_file_info *fi)
{
        ssize_t n;

        pthread_mutex_lock(&nd->stream_lock);
        check_write_locked(nd, (uint64_t)off);
        n = write_spool(in, len, off, fi);
        if (n > 0) {
                seq_note(nd, (uint64_t)off, (uint64_t)n);
                advance_locked(fs, nd);
        }
        pthread_mutex_unlock(&nd->stream_lock);
        return n;
}

ssize_t af_inorder_write(struct af_fs *fs, struct af_node *nd, struct fuse_bufvec *in, size_t len,
                         off_t off, struct fuse_file_info *fi)
{
        ssize_t n;

        if (!fs->stream_threshold)
                return write_spool(in, len, off, fi);
        if (!write_small(fs, nd, in, len, off, fi, &n))
                n = write_big(fs, nd, in, len, off, fi);
        return n;
}
