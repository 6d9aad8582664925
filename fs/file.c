/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Open files and their data: what create, open, flush, fsync, write, fallocate and
 * copy_file_range do besides the syscall. Whatever changes a file's data marks it dirty
 * (trigger.c), takes the room it grows by first (room.c), and keeps or ends its stream
 * (inorder.c); fsync and --sync-close wait for the upload.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* The flags of the spool descriptor behind a handle opened with @flags.
 * - O_APPEND stays with the kernel: it already sends each append as a write at the end of
 *   the file, and a spool descriptor with O_APPEND would also append the pages that mmap
 *   write-back sends for their own offsets, and would not follow fcntl(F_SETFL) changes,
 *   which the kernel keeps to itself.
 * - O_DIRECT stays with the kernel too: it already bypasses its page cache for the handle,
 *   and the data reaches us in our own buffers at offsets that the spool's O_DIRECT
 *   alignment rules would refuse.
 * - O_NOFOLLOW would refuse the /proc/self/fd magic link we open through. */
static int spool_flags(int flags)
{
        return (flags & ~(O_APPEND | O_DIRECT | O_NOFOLLOW)) | O_CLOEXEC;
}

/* Opens (creates) @name in @parent for create(), with the entry and its handle counted; the
 * descriptor in @ret_fd. With names_lock held shared. */
static int create_locked(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                         int flags, struct fuse_entry_param *e, int *ret_fd)
{
        struct af_fs *fs = af_fs_of(req);
        int dirfd = af_node_of(fs, parent)->fd, fd, r;
        struct stat old;
        bool truncates;

        truncates = fs->cfg.space && (flags & O_TRUNC) &&
                    fstatat(dirfd, name, &old, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(old.st_mode);
        fd = openat(dirfd, name, spool_flags(flags) | O_CREAT, af_names_mode(req, dirfd, mode));
        if (fd < 0)
                return -errno;
        if (truncates)
                af_room_release(fs, (uint64_t)old.st_size);
        r = af_names_own(req, dirfd, name);
        if (r == 0)
                r = af_node_lookup(fs, parent, name, e);
        if (r == 0) {
                r = af_node_add_handle(fs, af_node_of(fs, e->ino), flags);
                if (r < 0)
                        af_node_forget(fs, e->ino, 1);
        }
        if (r < 0) {
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* Sets @fi->fh; the caller replies, and on a failed reply puts the handle and forgets. */
int af_file_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                   struct fuse_file_info *fi, struct fuse_entry_param *e)
{
        struct af_fs *fs = af_fs_of(req);
        struct af_node *n;
        int fd = -1, r;

        pthread_rwlock_rdlock(&fs->names_lock);
        r = create_locked(req, parent, name, mode, fi->flags, e, &fd);
        pthread_rwlock_unlock(&fs->names_lock);
        if (r < 0)
                return r;
        fi->fh = (uint64_t)fd;
        n = af_node_of(fs, e->ino);
        af_trigger_mark_dirty(n); /* a new file is uploaded even if nothing is written */
        /* An empty file (new, or truncated now) is written in order from its start; a node
         * left from an earlier file with the same inode number must not say otherwise. */
        if ((fi->flags & O_TRUNC) || e->attr.st_size == 0)
                af_inorder_break(fs, n, "truncate (O_TRUNC)", 0);
        if (fi->flags & O_TRUNC) {
                /* Truncated before the node was known: counted after the fact (a snapshot
                 * copying meanwhile sees the size and ctime move). */
                af_node_change_begin(n);
                af_node_change_end(n);
        }
        return 0;
}

/* Sets @fi->fh; the caller replies, and on a failed reply puts the handle. */
int af_file_open(struct af_fs *fs, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct af_node *n = af_node_of(fs, ino);
        uint64_t before = 0;
        char path[64];
        int fd, r;

        af_fs_proc_path(path, n->fd);
        pthread_rwlock_rdlock(&fs->names_lock);
        r = af_node_add_handle(fs, n, fi->flags);
        if (r < 0) {
                pthread_rwlock_unlock(&fs->names_lock);
                return r;
        }
        if ((fi->flags & O_TRUNC) && af_node_writable(fi->flags))
                af_inorder_break(fs, n, "truncate (O_TRUNC)", 0);
        if (fs->cfg.space && (fi->flags & O_TRUNC))
                before = af_room_size(n->fd);
        if (fi->flags & O_TRUNC)
                af_node_change_begin(n); /* the data changes */
        fd = open(path, spool_flags(fi->flags));
        r = fd < 0 ? -errno : 0;
        if (fi->flags & O_TRUNC)
                af_node_change_end(n);
        pthread_rwlock_unlock(&fs->names_lock);
        if (r < 0) {
                af_node_drop_handle(fs, n, fi->flags);
                return r;
        }
        af_room_release(fs, before);
        fi->fh = (uint64_t)fd;
        if (fi->flags & O_TRUNC)
                af_trigger_mark_dirty(n);
        return 0;
}

/* Every close() of the program's descriptor: report what closing the spool file would (a
 * spool on NFS reports write-back errors there). The kernel keeps the program's locks
 * itself, so there are none to drop here. */
int af_file_flush(struct af_fs *fs, struct af_node *n, int fd)
{
        int dupfd = dup(fd);

        if (dupfd < 0 || close(dupfd) < 0)
                return -errno;
        /* --sync-close: flush is the only place close() can get an error, so the upload is
         * done here, and its failure is the program's EIO. FUSE_FLUSH carries no open flags:
         * ask the spool descriptor how it was opened. */
        if (fs->cfg.sync_close && (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY)
                return af_trigger_sync(fs, n, fd, "close");
        return 0;
}

/* Durable means in S3: for an artifact, fsync returns once its upload has finished. */
int af_file_fsync(struct af_fs *fs, struct af_node *n, int fd, int datasync)
{
        if ((datasync ? fdatasync(fd) : fsync(fd)) < 0)
                return -errno;
        return af_trigger_sync(fs, n, fd, "fsync");
}

/* May be short: as much as the spool has room for. */
ssize_t af_file_write(struct af_fs *fs, struct af_node *n, struct fuse_bufvec *in, off_t off,
                      struct fuse_file_info *fi)
{
        struct af_room_write w;
        size_t len = fuse_buf_size(in);
        ssize_t r;

        r = af_room_take_write(fs, (int)fi->fh, off, &len, &w);
        if (r < 0)
                return r;
        af_trigger_mark_dirty(n);
        af_node_change_begin(n);
        r = af_inorder_write(fs, n, in, len, off, fi);
        af_node_change_end(n);
        af_room_give_write(fs, &w, off, r);
        return r;
}

/* The room @mode and @off, @len (as fallocate(2)) make a file of size @before grow by. */
static uint64_t fallocate_growth(int mode, off_t off, off_t len, uint64_t before)
{
        if (mode & FALLOC_FL_INSERT_RANGE)
                return (uint64_t)len;
        if (!(mode & (FALLOC_FL_KEEP_SIZE | FALLOC_FL_COLLAPSE_RANGE)) &&
            (uint64_t)(off + len) > before)
                return (uint64_t)(off + len) - before;
        return 0;
}

/* Also punches holes and zeroes ranges (@mode as fallocate(2)): data changes either way. */
int af_file_fallocate(struct af_fs *fs, struct af_node *n, int fd, int mode, off_t off, off_t len)
{
        uint64_t before = 0, took = 0;
        /* Plain allocation changes no byte that was written; the other modes do. */
        bool changes = mode & ~FALLOC_FL_KEEP_SIZE;
        int r;

        if (fs->cfg.space) {
                before = af_room_size(fd);
                r = af_room_take(fs, fallocate_growth(mode, off, len, before), false, &took);
                if (r < 0)
                        return r;
        }
        af_trigger_mark_dirty(n);
        if (changes)
                af_inorder_begin_change(fs, n, "fallocate", AF_SEQ_BROKEN);
        af_node_change_begin(n);
        r = fallocate(fd, mode, off, len) < 0 ? -errno : 0;
        af_node_change_end(n);
        if (changes)
                af_inorder_end_change(fs, n);
        if (fs->cfg.space)
                af_room_give(fs, took, before, af_room_size(fd));
        return r;
}

/* Both files are in the spool, so the spool's filesystem copies (or shares) the blocks. */
ssize_t af_file_copy(struct af_fs *fs, int fd_in, off_t off_in, struct af_node *n_out, int fd_out,
                     off_t off_out, size_t len, int flags)
{
        struct af_room_write w;
        off_t start = off_out;
        ssize_t r;

        r = af_room_take_write(fs, fd_out, off_out, &len, &w);
        if (r < 0)
                return r;
        af_trigger_mark_dirty(n_out);
        af_inorder_break(fs, n_out, "copy_file_range", AF_SEQ_BROKEN);
        af_node_change_begin(n_out);
        r = copy_file_range(fd_in, &off_in, fd_out, &off_out, len, (unsigned int)flags);
        if (r < 0)
                r = -errno;
        af_node_change_end(n_out);
        af_room_give_write(fs, &w, start, r);
        return r;
}
