/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FUSE low-level operations over the spool. Each op translates, makes one syscall on the
 * spool, and replies; errno passes through unchanged.
 *
 * Inodes: each kernel inode we have answered a lookup for is a struct node holding an O_PATH
 * descriptor of the spool file, found again by (st_dev, st_ino) so hard links share a node.
 * The node's fuse_ino_t is its address. Operations that need a real path on an O_PATH
 * descriptor (chmod, truncate, open) go through /proc/self/fd/N, which the kernel resolves to
 * the file itself, however it was renamed.
 *
 * Lock order: fs->lock (the node table, nlookup and writer counts) is the only lock here and
 * is never held across a syscall on file data or a call into the queue.
 */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"

#define NODE_BUCKETS 4096

struct node {
        struct node *hnext; /* hash chain; with fs->lock */
        int fd;             /* O_PATH; immutable while the node lives */
        dev_t dev;
        ino_t ino;
        uint64_t nlookup; /* with fs->lock */
        unsigned writers; /* open writable handles; with fs->lock */
        atomic_bool dirty; /* written since last handed to the queue */
};

struct af_fs {
        struct af_fs_config cfg;
        char *spool;
        size_t spool_len;
        bool is_root; /* running as root: new files get the caller's owner */
        pthread_mutex_t lock;
        struct node root;
        struct node *buckets[NODE_BUCKETS]; /* with lock */
};

struct dir_handle {
        DIR *dp;
        struct dirent *entry;
        off_t offset;
};

static struct af_fs *fs_of(fuse_req_t req)
{
        return fuse_req_userdata(req);
}

static struct node *node_of(struct af_fs *fs, fuse_ino_t ino)
{
        return ino == FUSE_ROOT_ID ? &fs->root : (struct node *)(uintptr_t)ino;
}

static int fd_of(fuse_req_t req, fuse_ino_t ino)
{
        return node_of(fs_of(req), ino)->fd;
}

static void proc_path(char buf[64], int fd)
{
        snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

static size_t bucket_of(dev_t dev, ino_t ino)
{
        return (size_t)((ino * 2654435761u) ^ dev) % NODE_BUCKETS;
}

static struct node *find_locked(struct af_fs *fs, dev_t dev, ino_t ino)
{
        struct node *n;

        if (fs->root.dev == dev && fs->root.ino == ino)
                return &fs->root;
        for (n = fs->buckets[bucket_of(dev, ino)]; n; n = n->hnext)
                if (n->dev == dev && n->ino == ino)
                        return n;
        return NULL;
}

/* ---- the upload trigger ---------------------------------------------------------------- */

/* The path of open descriptor @fd relative to the spool, or -ENOENT if it is not (any
 * longer) in the spool, e.g. unlinked. */
static int relpath_of(struct af_fs *fs, int fd, char *out, size_t n)
{
        char link[64], target[PATH_MAX];
        ssize_t l;

        proc_path(link, fd);
        l = readlink(link, target, sizeof(target) - 1);
        if (l < 0)
                return -errno;
        target[l] = '\0';
        if ((size_t)l <= fs->spool_len || strncmp(target, fs->spool, fs->spool_len) != 0 ||
            target[fs->spool_len] != '/')
                return -ENOENT;
        if (l > 10 && strcmp(target + l - 10, " (deleted)") == 0) {
                struct stat st;

                /* A name that really ends in " (deleted)" still has links. */
                if (fstat(fd, &st) < 0 || st.st_nlink == 0)
                        return -ENOENT;
        }
        if ((size_t)l - fs->spool_len >= n)
                return -ENAMETOOLONG;
        memcpy(out, target + fs->spool_len + 1, (size_t)l - fs->spool_len);
        return 0;
}

static void submit_relpath(struct af_fs *fs, const char *relpath, const char *why)
{
        struct af_route route = { 0 };
        int r;

        af_buf_init(&route.key, 0);
        r = af_router_route(fs->cfg.router, relpath, &route);
        if (r == 0) {
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
                r = af_queue_submit(fs->cfg.queue, relpath, route.bucket, af_buf_str(&route.key));
                if (r < 0)
                        af_log_error("op=submit path=%s key=%s err=%s msg=\"file kept in the spool\"",
                                     af_q(relpath), af_q(af_buf_str(&route.key)),
                                     af_q(strerror(-r)));
                else
                        af_log_debug("op=submit path=%s key=%s trigger=%s", af_q(relpath),
                                     af_q(af_buf_str(&route.key)), why);
        }
        af_buf_done(&route.key);
}

/* Hands the file behind @fd to the queue if it is a regular file still in the spool. */
static void submit_fd(struct af_fs *fs, int fd, const char *why)
{
        char rel[PATH_MAX];
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return;
        if (relpath_of(fs, fd, rel, sizeof(rel)) < 0)
                return; /* unlinked while open: nothing left to upload */
        submit_relpath(fs, rel, why);
}

static void mark_dirty(struct af_fs *fs, fuse_ino_t ino)
{
        atomic_store(&node_of(fs, ino)->dirty, true);
}

/* ---- lookup and the node table --------------------------------------------------------- */

static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
                     struct fuse_entry_param *e)
{
        struct af_fs *fs = fs_of(req);
        struct node *n;
        int fd, r;

        memset(e, 0, sizeof(*e));
        e->attr_timeout = fs->cfg.timeout;
        e->entry_timeout = fs->cfg.timeout;
        fd = openat(fd_of(req, parent), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        pthread_mutex_lock(&fs->lock);
        n = find_locked(fs, e->attr.st_dev, e->attr.st_ino);
        if (n) {
                n->nlookup++;
                pthread_mutex_unlock(&fs->lock);
                close(fd);
        } else {
                size_t b = bucket_of(e->attr.st_dev, e->attr.st_ino);

                n = calloc(1, sizeof(*n));
                if (!n) {
                        pthread_mutex_unlock(&fs->lock);
                        close(fd);
                        return -ENOMEM;
                }
                n->fd = fd;
                n->dev = e->attr.st_dev;
                n->ino = e->attr.st_ino;
                n->nlookup = 1;
                n->hnext = fs->buckets[b];
                fs->buckets[b] = n;
                pthread_mutex_unlock(&fs->lock);
        }
        e->ino = n == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
        return 0;
}

static void forget_one(struct af_fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
        struct node *n = node_of(fs, ino), **pp;

        if (n == &fs->root)
                return;
        pthread_mutex_lock(&fs->lock);
        n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
        if (n->nlookup) {
                pthread_mutex_unlock(&fs->lock);
                return;
        }
        for (pp = &fs->buckets[bucket_of(n->dev, n->ino)]; *pp; pp = &(*pp)->hnext) {
                if (*pp == n) {
                        *pp = n->hnext;
                        break;
                }
        }
        pthread_mutex_unlock(&fs->lock);
        close(n->fd);
        free(n);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct fuse_entry_param e;
        int r = do_lookup(req, parent, name, &e);

        if (r == -ENOENT) {
                /* A negative entry, cached like a positive one: saves lookups of absent files. */
                memset(&e, 0, sizeof(e));
                e.entry_timeout = fs_of(req)->cfg.timeout;
                fuse_reply_entry(req, &e);
        } else if (r < 0) {
                fuse_reply_err(req, -r);
        } else {
                fuse_reply_entry(req, &e);
        }
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
        forget_one(fs_of(req), ino, nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
        for (size_t i = 0; i < count; i++)
                forget_one(fs_of(req), forgets[i].ino, forgets[i].nlookup);
        fuse_reply_none(req);
}

/* ---- attributes ------------------------------------------------------------------------ */

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct stat st;
        int r;

        if (fi)
                r = fstat((int)fi->fh, &st);
        else
                r = fstatat(fd_of(req, ino), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        if (r < 0)
                fuse_reply_err(req, errno);
        else
                fuse_reply_attr(req, &st, fs_of(req)->cfg.timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
                       struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);
        struct node *n = node_of(fs, ino);
        char path[64];
        int r = 0;

        proc_path(path, n->fd);
        if (valid & FUSE_SET_ATTR_MODE) {
                r = fi ? fchmod((int)fi->fh, attr->st_mode) : chmod(path, attr->st_mode);
                if (r < 0)
                        goto fail;
        }
        if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
                uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
                gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

                r = fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
                if (r < 0)
                        goto fail;
        }
        if (valid & FUSE_SET_ATTR_SIZE) {
                mark_dirty(fs, ino);
                r = fi ? ftruncate((int)fi->fh, attr->st_size) : truncate(path, attr->st_size);
                if (r < 0)
                        goto fail;
        }
        if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
                struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

                if (valid & FUSE_SET_ATTR_ATIME_NOW)
                        tv[0].tv_nsec = UTIME_NOW;
                else if (valid & FUSE_SET_ATTR_ATIME)
                        tv[0] = attr->st_atim;
                if (valid & FUSE_SET_ATTR_MTIME_NOW)
                        tv[1].tv_nsec = UTIME_NOW;
                else if (valid & FUSE_SET_ATTR_MTIME)
                        tv[1] = attr->st_mtim;
                r = fi ? futimens((int)fi->fh, tv) : utimensat(AT_FDCWD, path, tv, 0);
                if (r < 0)
                        goto fail;
        }
        if (valid & FUSE_SET_ATTR_SIZE) {
                bool writers;

                /* truncate(2) without an open handle: no release will follow, so hand the
                 * file over now. */
                pthread_mutex_lock(&fs->lock);
                writers = n->writers > 0;
                pthread_mutex_unlock(&fs->lock);
                if (!writers && atomic_exchange(&n->dirty, false)) {
                        int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);

                        if (fd >= 0) {
                                submit_fd(fs, fd, "truncate");
                                close(fd);
                        }
                }
        }
        op_getattr(req, ino, fi);
        return;
fail:
        fuse_reply_err(req, errno);
}

/* ---- making and removing names --------------------------------------------------------- */

/* New names belong to the caller, as on a local filesystem, when we can arrange it. */
static int own(fuse_req_t req, int dirfd, const char *name)
{
        const struct fuse_ctx *ctx = fuse_req_ctx(req);

        if (!fs_of(req)->is_root)
                return 0;
        if (fchownat(dirfd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

static void reply_new_entry(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct fuse_entry_param e;
        int r = own(req, fd_of(req, parent), name);

        if (r == 0)
                r = do_lookup(req, parent, name, &e);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                     dev_t rdev)
{
        if (mknodat(fd_of(req, parent), name, mode, rdev) < 0)
                fuse_reply_err(req, errno);
        else
                reply_new_entry(req, parent, name);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        if (mkdirat(fd_of(req, parent), name, mode) < 0)
                fuse_reply_err(req, errno);
        else
                reply_new_entry(req, parent, name);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
        if (symlinkat(link, fd_of(req, parent), name) < 0)
                fuse_reply_err(req, errno);
        else
                reply_new_entry(req, parent, name);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
        struct fuse_entry_param e;
        char path[64];
        int r;

        proc_path(path, fd_of(req, ino));
        /* linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc link does not. */
        if (linkat(AT_FDCWD, path, fd_of(req, newparent), newname, AT_SYMLINK_FOLLOW) < 0) {
                fuse_reply_err(req, errno);
                return;
        }
        r = do_lookup(req, newparent, newname, &e);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fuse_reply_entry(req, &e);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        fuse_reply_err(req, unlinkat(fd_of(req, parent), name, 0) < 0 ? errno : 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        fuse_reply_err(req, unlinkat(fd_of(req, parent), name, AT_REMOVEDIR) < 0 ? errno : 0);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
        struct af_fs *fs = fs_of(req);
        int nfd = fd_of(req, newparent), fd;
        struct stat st;
        struct node *n;
        bool open_for_write = false;

        if (renameat2(fd_of(req, parent), name, nfd, newname, flags) < 0) {
                fuse_reply_err(req, errno);
                return;
        }
        fuse_reply_err(req, 0);
        /* A file moved into an artifact path (write "out.tmp", rename to "out.csv") is
         * uploaded under its new name; one still open for writing goes at its last close. */
        fd = openat(nfd, newname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
                pthread_mutex_lock(&fs->lock);
                n = find_locked(fs, st.st_dev, st.st_ino);
                if (n && n->writers) {
                        atomic_store(&n->dirty, true);
                        open_for_write = true;
                }
                pthread_mutex_unlock(&fs->lock);
                if (!open_for_write)
                        submit_fd(fs, fd, "rename");
        }
        close(fd);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
        char buf[PATH_MAX + 1];
        ssize_t n = readlinkat(fd_of(req, ino), "", buf, sizeof(buf));

        if (n < 0)
                fuse_reply_err(req, errno);
        else if (n == sizeof(buf))
                fuse_reply_err(req, ENAMETOOLONG);
        else {
                buf[n] = '\0';
                fuse_reply_readlink(req, buf);
        }
}

/* ---- files ----------------------------------------------------------------------------- */

static bool writable(int flags)
{
        return (flags & O_ACCMODE) != O_RDONLY;
}

static void add_writer(struct af_fs *fs, fuse_ino_t ino)
{
        pthread_mutex_lock(&fs->lock);
        node_of(fs, ino)->writers++;
        pthread_mutex_unlock(&fs->lock);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);
        struct fuse_entry_param e;
        int fd, r;

        fd = openat(fd_of(req, parent), name, (fi->flags | O_CREAT) & ~O_NOFOLLOW, mode);
        if (fd < 0) {
                fuse_reply_err(req, errno);
                return;
        }
        r = own(req, fd_of(req, parent), name);
        if (r == 0)
                r = do_lookup(req, parent, name, &e);
        if (r < 0) {
                close(fd);
                fuse_reply_err(req, -r);
                return;
        }
        fi->fh = (uint64_t)fd;
        mark_dirty(fs, e.ino); /* a new file is uploaded even if nothing is written */
        if (writable(fi->flags))
                add_writer(fs, e.ino);
        if (fuse_reply_create(req, &e, fi) == -ENOENT) {
                /* The caller was interrupted: undo as release would. */
                forget_one(fs, e.ino, 1);
        }
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);
        char path[64];
        int fd;

        proc_path(path, fd_of(req, ino));
        fd = open(path, fi->flags & ~O_NOFOLLOW);
        if (fd < 0) {
                fuse_reply_err(req, errno);
                return;
        }
        fi->fh = (uint64_t)fd;
        if (fi->flags & O_TRUNC)
                mark_dirty(fs, ino);
        if (writable(fi->flags))
                add_writer(fs, ino);
        fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);
        struct node *n = node_of(fs, ino);
        int fd = (int)fi->fh;
        bool last = false;

        pthread_mutex_lock(&fs->lock);
        if (writable(fi->flags) && n->writers)
                n->writers--;
        last = n->writers == 0;
        pthread_mutex_unlock(&fs->lock);
        /* The durable hand-off happens here, not in the reply: release errors reach no one. */
        if (last && atomic_exchange(&n->dirty, false))
                submit_fd(fs, fd, "close");
        close(fd);
        fuse_reply_err(req, 0);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        int fd;

        (void)ino;
        /* close() of a duplicate drops POSIX locks held through this handle, as locally. */
        fd = dup((int)fi->fh);
        if (fd < 0) {
                fuse_reply_err(req, errno);
                return;
        }
        fuse_reply_err(req, close(fd) < 0 ? errno : 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        int r;

        (void)ino;
        r = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
        fuse_reply_err(req, r < 0 ? errno : 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
        struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

        (void)ino;
        buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        buf.buf[0].fd = (int)fi->fh;
        buf.buf[0].pos = off;
        fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
                         struct fuse_file_info *fi)
{
        struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
        ssize_t n;

        out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        out.buf[0].fd = (int)fi->fh;
        out.buf[0].pos = off;
        mark_dirty(fs_of(req), ino);
        n = fuse_buf_copy(&out, in, 0);
        if (n < 0)
                fuse_reply_err(req, (int)-n);
        else
                fuse_reply_write(req, (size_t)n);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
        mark_dirty(fs_of(req), ino);
        fuse_reply_err(req, fallocate((int)fi->fh, mode, off, len) < 0 ? errno : 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
        struct statvfs sv;

        (void)ino;
        if (fstatvfs(fs_of(req)->root.fd, &sv) < 0)
                fuse_reply_err(req, errno);
        else
                fuse_reply_statfs(req, &sv);
}

/* ---- directories ----------------------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct dir_handle *d = calloc(1, sizeof(*d));
        int fd;

        if (!d) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        fd = openat(fd_of(req, ino), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || !(d->dp = fdopendir(fd))) {
                int e = errno;

                if (fd >= 0)
                        close(fd);
                free(d);
                fuse_reply_err(req, e);
                return;
        }
        fi->fh = (uint64_t)(uintptr_t)d;
        fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
        struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
        char *buf = malloc(size), *p = buf;
        size_t rem = size;

        (void)ino;
        if (!buf) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        if (off != d->offset) {
                seekdir(d->dp, off);
                d->entry = NULL;
                d->offset = off;
        }
        for (;;) {
                struct stat st = { 0 };
                size_t n;

                if (!d->entry) {
                        errno = 0;
                        d->entry = readdir(d->dp);
                        if (!d->entry) {
                                if (errno && p == buf) {
                                        int e = errno;

                                        free(buf);
                                        fuse_reply_err(req, e);
                                        return;
                                }
                                break;
                        }
                }
                st.st_ino = d->entry->d_ino;
                st.st_mode = (mode_t)d->entry->d_type << 12;
                n = fuse_add_direntry(req, p, rem, d->entry->d_name, &st, telldir(d->dp));
                if (n > rem)
                        break; /* does not fit: keep the entry for the next call */
                p += n;
                rem -= n;
                d->offset = telldir(d->dp);
                d->entry = NULL;
        }
        fuse_reply_buf(req, buf, size - rem);
        free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;

        (void)ino;
        closedir(d->dp);
        free(d);
        fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
        int fd = dirfd(d->dp), r;

        (void)ino;
        r = datasync ? fdatasync(fd) : fsync(fd);
        fuse_reply_err(req, r < 0 ? errno : 0);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
        (void)userdata;
        /* Writes must reach us in order and before close() returns: no writeback cache. */
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
        if (conn->capable & FUSE_CAP_SPLICE_WRITE)
                conn->want |= FUSE_CAP_SPLICE_WRITE;
        if (conn->capable & FUSE_CAP_SPLICE_MOVE)
                conn->want |= FUSE_CAP_SPLICE_MOVE;
}

const struct fuse_lowlevel_ops af_fs_ops = {
        .init = op_init,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .setattr = op_setattr,
        .readlink = op_readlink,
        .mknod = op_mknod,
        .mkdir = op_mkdir,
        .symlink = op_symlink,
        .link = op_link,
        .unlink = op_unlink,
        .rmdir = op_rmdir,
        .rename = op_rename,
        .create = op_create,
        .open = op_open,
        .release = op_release,
        .flush = op_flush,
        .fsync = op_fsync,
        .read = op_read,
        .write_buf = op_write_buf,
        .fallocate = op_fallocate,
        .statfs = op_statfs,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .releasedir = op_releasedir,
        .fsyncdir = op_fsyncdir,
};

/* ---- life cycle ------------------------------------------------------------------------ */

int af_fs_new(const struct af_fs_config *cfg, struct af_fs **ret)
{
        struct af_fs *fs = calloc(1, sizeof(*fs));
        struct stat st;
        int r;

        if (!fs)
                return -ENOMEM;
        fs->cfg = *cfg;
        fs->spool = strdup(cfg->spool);
        if (!fs->spool) {
                free(fs);
                return -ENOMEM;
        }
        fs->spool_len = strlen(fs->spool);
        while (fs->spool_len > 1 && fs->spool[fs->spool_len - 1] == '/')
                fs->spool[--fs->spool_len] = '\0';
        fs->is_root = geteuid() == 0;
        fs->root.fd = open(fs->spool, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fs->root.fd < 0 || fstat(fs->root.fd, &st) < 0) {
                r = -errno;
                if (fs->root.fd >= 0)
                        close(fs->root.fd);
                free(fs->spool);
                free(fs);
                return r;
        }
        fs->root.dev = st.st_dev;
        fs->root.ino = st.st_ino;
        fs->root.nlookup = 2;
        pthread_mutex_init(&fs->lock, NULL);
        *ret = fs;
        return 0;
}

void af_fs_set_queue(struct af_fs *fs, struct af_queue *queue)
{
        fs->cfg.queue = queue;
}

unsigned af_fs_submit_dirty(struct af_fs *fs)
{
        unsigned count = 0;

        for (size_t b = 0; b < NODE_BUCKETS; b++) {
                for (;;) {
                        struct node *n;
                        int fd = -1;
                        char path[64];

                        pthread_mutex_lock(&fs->lock);
                        for (n = fs->buckets[b]; n; n = n->hnext)
                                if (atomic_load(&n->dirty))
                                        break;
                        if (n) {
                                atomic_store(&n->dirty, false);
                                proc_path(path, n->fd);
                                fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                        }
                        pthread_mutex_unlock(&fs->lock);
                        if (!n)
                                break;
                        if (fd >= 0) {
                                submit_fd(fs, fd, "unmount");
                                close(fd);
                                count++;
                        }
                }
        }
        return count;
}

void af_fs_free(struct af_fs *fs)
{
        if (!fs)
                return;
        for (size_t b = 0; b < NODE_BUCKETS; b++) {
                struct node *n = fs->buckets[b], *next;

                for (; n; n = next) {
                        next = n->hnext;
                        close(n->fd);
                        free(n);
                }
        }
        close(fs->root.fd);
        pthread_mutex_destroy(&fs->lock);
        free(fs->spool);
        free(fs);
}
