/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE low-level op table over the spool. Each op translates its arguments (the node's
 * descriptor, the handle's), makes one call, a syscall on the spool or the function of the
 * file that holds the concept (fs_int.h), and replies; errno passes through unchanged.
 *
 * What the kernel does for us, as it would for a local filesystem, and so is not here:
 * permission checks (mounted with default_permissions, so access() never reaches us),
 * flock and POSIX/OFD locks (without getlk/setlk/flock ops the kernel keeps them on its own
 * inode, with local conflict rules between all processes using the mount; the spool is never
 * shared with another host, so nothing else needs to see them), FIFOs and sockets (the kernel
 * connects their ends), and the file position of O_APPEND writes (see spool_flags() in
 * file.c).
 *
 * Every fuse_reply_*() frees the request. A reply the kernel never gets (the caller was
 * interrupted) is no lookup and no open: what it counted is taken back here.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/log.h"

static struct af_node *node_of(fuse_req_t req, fuse_ino_t ino)
{
        return af_node_of(af_fs_of(req), ino);
}

static int fd_of(fuse_req_t req, fuse_ino_t ino)
{
        return node_of(req, ino)->fd;
}

static struct af_dir *dir_of(struct fuse_file_info *fi)
{
        return (struct af_dir *)(uintptr_t)fi->fh;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
        struct af_fs *fs = userdata;

        /* Writes must reach us in order and before close() returns: no writeback cache. */
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
        /* We write as root, and CAP_FSETID keeps set-user-ID and set-group-ID bits that a
         * write, truncate or chown by anyone else clears on a local filesystem: let the
         * kernel clear them, with the caller's credentials. */
        conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
        /* POSIX ACLs set through the mount are enforced by the kernel, as on the spool's own
         * filesystem; without this they would be stored but ignored. Needs default_permissions,
         * and the umask with it (see af_names_mode()). */
        if (!fs->cfg.no_xattr && (conn->capable & FUSE_CAP_POSIX_ACL) &&
            (conn->capable & FUSE_CAP_DONT_MASK)) {
                conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
                fs->dont_mask = true;
        }
        if (conn->capable & FUSE_CAP_SPLICE_WRITE)
                conn->want |= FUSE_CAP_SPLICE_WRITE;
        if (conn->capable & FUSE_CAP_SPLICE_MOVE)
                conn->want |= FUSE_CAP_SPLICE_MOVE;
        af_log_debug("op=init capable=0x%x want=0x%x", conn->capable, conn->want);
}

/* ---- lookup and forget ----------------------------------------------------------------- */

/* Replies with an entry af_node_lookup() counted. */
static void reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
        struct af_fs *fs = af_fs_of(req);

        if (fuse_reply_entry(req, e) != 0)
                af_node_forget(fs, e->ino, 1);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct fuse_entry_param e;
        int r = af_node_lookup(af_fs_of(req), parent, name, &e);

        if (r == -ENOENT) {
                /* A negative entry, cached like a positive one: saves lookups of absent files. */
                memset(&e, 0, sizeof(e));
                e.entry_timeout = af_fs_of(req)->cfg.timeout;
                fuse_reply_entry(req, &e);
        } else if (r < 0) {
                fuse_reply_err(req, -r);
        } else {
                reply_entry(req, &e);
        }
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
        af_node_forget(af_fs_of(req), ino, nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
        for (size_t i = 0; i < count; i++)
                af_node_forget(af_fs_of(req), forgets[i].ino, forgets[i].nlookup);
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
                fuse_reply_attr(req, &st, af_fs_of(req)->cfg.timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
                       struct fuse_file_info *fi)
{
        int r = af_attr_set(af_fs_of(req), node_of(req, ino), attr, valid, fi);

        if (r < 0)
                fuse_reply_err(req, -r);
        else
                op_getattr(req, ino, fi);
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

/* ---- names ----------------------------------------------------------------------------- */

/* Replies to mknod, mkdir and symlink, whose new @name in @parent becomes the caller's. */
static void reply_new_entry(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct fuse_entry_param e;
        int r = af_names_own(req, fd_of(req, parent), name);

        if (r == 0)
                r = af_node_lookup(af_fs_of(req), parent, name, &e);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                     dev_t rdev)
{
        struct af_fs *fs = af_fs_of(req); /* req is gone once answered */
        int dirfd = fd_of(req, parent);

        if (mknodat(dirfd, name, af_names_mode(req, dirfd, mode), rdev) < 0) {
                fuse_reply_err(req, errno);
                return;
        }
        reply_new_entry(req, parent, name);
        af_trigger_made(fs, dirfd, name, mode);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        int dirfd = fd_of(req, parent);

        if (mkdirat(dirfd, name, af_names_mode(req, dirfd, mode)) < 0)
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
        struct af_fs *fs = af_fs_of(req);
        struct fuse_entry_param e;
        int fd = fd_of(req, ino), nfd = fd_of(req, newparent), r;
        struct af_names_link ln;

        r = af_names_link(fs, fd, nfd, newname, &ln);
        if (r == 0)
                r = af_node_lookup(fs, newparent, newname, &e);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        /* Uploaded after the answer, or, as a copy in S3 of the object the file went up as
         * under its other name, queued before it (as a rename's: see op_rename). @newname
         * lives in the request buffer until we return. */
        if (!ln.first)
                reply_entry(req, &e);
        af_trigger_arrived(fs, nfd, newname, "link", ln.named ? ln.from : NULL,
                           ln.named ? ln.to : NULL);
        if (ln.first)
                reply_entry(req, &e);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        fuse_reply_err(req, -af_names_unlink(af_fs_of(req), fd_of(req, parent), name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        fuse_reply_err(req, -af_names_rmdir(af_fs_of(req), fd_of(req, parent), name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
        struct af_fs *fs = af_fs_of(req);
        struct af_names_move mv;
        int r;

        r = af_names_rename(fs, fd_of(req, parent), name, fd_of(req, newparent), newname, flags,
                            &mv);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        /* A plain rename is answered first and uploaded after; copies and deletes in S3 are
         * queued before the answer. */
        if (!mv.first)
                fuse_reply_err(req, 0);
        af_names_moved(fs, &mv);
        if (mv.first)
                fuse_reply_err(req, 0);
}

/* ---- files ----------------------------------------------------------------------------- */

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
        struct af_fs *fs = af_fs_of(req);
        struct fuse_entry_param e;
        int r = af_file_create(req, parent, name, mode, fi, &e);

        if (r < 0) {
                fuse_reply_err(req, -r);
        } else if (fuse_reply_create(req, &e, fi) != 0) {
                /* The caller was interrupted: no release and no forget will come. */
                af_node_put_handle(fs, af_node_of(fs, e.ino), (int)fi->fh, fi->flags);
                af_node_forget(fs, e.ino, 1);
        }
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct af_fs *fs = af_fs_of(req);
        int r = af_file_open(fs, ino, fi);

        if (r < 0)
                fuse_reply_err(req, -r);
        else if (fuse_reply_open(req, fi) != 0)
                af_node_put_handle(fs, node_of(req, ino), (int)fi->fh, fi->flags); /* no release */
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        /* The durable hand-off happens here, not in the reply: release errors reach no one. */
        af_node_put_handle(af_fs_of(req), node_of(req, ino), (int)fi->fh, fi->flags);
        fuse_reply_err(req, 0);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        fuse_reply_err(req, -af_file_flush(af_fs_of(req), node_of(req, ino), (int)fi->fh));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        fuse_reply_err(req,
                       -af_file_fsync(af_fs_of(req), node_of(req, ino), (int)fi->fh, datasync));
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
        ssize_t n = af_file_write(af_fs_of(req), node_of(req, ino), in, off, fi);

        if (n < 0)
                fuse_reply_err(req, (int)-n);
        else
                fuse_reply_write(req, (size_t)n);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
        fuse_reply_err(req, -af_file_fallocate(af_fs_of(req), node_of(req, ino), (int)fi->fh,
                                               mode, off, len));
}

/* SEEK_DATA and SEEK_HOLE only (the kernel answers the others): the spool knows where the
 * holes are. Our reads and writes are positioned, so moving the spool descriptor is free. */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
        off_t r;

        (void)ino;
        r = lseek((int)fi->fh, off, whence);
        if (r < 0)
                fuse_reply_err(req, errno);
        else
                fuse_reply_lseek(req, r);
}

/* Without this op the kernel would fall back to a read and write through us. */
static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len, int flags)
{
        ssize_t n;

        (void)ino_in;
        n = af_file_copy(af_fs_of(req), (int)fi_in->fh, off_in, node_of(req, ino_out),
                         (int)fi_out->fh, off_out, len, flags);
        if (n < 0)
                fuse_reply_err(req, (int)-n);
        else
                fuse_reply_write(req, (size_t)n);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
        struct statvfs sv;

        (void)ino;
        if (fstatvfs(af_fs_of(req)->root.fd, &sv) < 0)
                fuse_reply_err(req, errno);
        else
                fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes --------------------------------------------------------------- */

/* Through /proc/self/fd/N of the node's O_PATH descriptor, which the f*xattr calls do not
 * accept. The magic link resolves to the inode itself, so a symlink's own attributes are
 * meant, as with l*xattr on a local path. The kernel has already checked the namespace
 * rules (user.* only on files and directories, trusted.* for CAP_SYS_ADMIN) for the caller.
 * xattrs are not uploaded, so they do not make a file dirty. */

/* Replies to getxattr/listxattr: the size alone when the caller asked for it (size 0). */
static void reply_xattr(fuse_req_t req, const char *buf, ssize_t n, size_t size)
{
        if (n < 0)
                fuse_reply_err(req, errno);
        else if (size == 0)
                fuse_reply_xattr(req, (size_t)n);
        else
                fuse_reply_buf(req, buf, (size_t)n);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
        char path[64], *buf = NULL;

        if (size && !(buf = malloc(size))) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        af_fs_proc_path(path, fd_of(req, ino));
        reply_xattr(req, buf, getxattr(path, name, buf, size), size);
        free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        char path[64], *buf = NULL;

        if (size && !(buf = malloc(size))) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        af_fs_proc_path(path, fd_of(req, ino));
        reply_xattr(req, buf, listxattr(path, buf, size), size);
        free(buf);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
        char path[64];

        af_fs_proc_path(path, fd_of(req, ino));
        fuse_reply_err(req, setxattr(path, name, value, size, flags) < 0 ? errno : 0);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
        char path[64];

        af_fs_proc_path(path, fd_of(req, ino));
        fuse_reply_err(req, removexattr(path, name) < 0 ? errno : 0);
}

/* ---- directories ----------------------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct af_fs *fs = af_fs_of(req);
        struct af_dir *d;
        int r = af_dir_open(fs, fd_of(req, ino), &d);

        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        fi->fh = (uint64_t)(uintptr_t)d;
        if (fuse_reply_open(req, fi) != 0)
                af_dir_close(fs, d); /* interrupted: no releasedir will come */
}

static void reply_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      struct fuse_file_info *fi, bool plus)
{
        struct af_dir_page page;
        int r = af_dir_read(req, dir_of(fi), ino, size, off, plus, &page);

        if (r < 0)
                fuse_reply_err(req, -r);
        else if (fuse_reply_buf(req, page.buf, page.len) != 0)
                af_dir_unread(af_fs_of(req), &page);
        af_dir_page_done(&page);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
        reply_dir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
        reply_dir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        (void)ino;
        af_dir_close(af_fs_of(req), dir_of(fi));
        fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        (void)ino;
        fuse_reply_err(req, -af_dir_fsync(dir_of(fi), datasync));
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
        .lseek = op_lseek,
        .copy_file_range = op_copy_file_range,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .setxattr = op_setxattr,
        .removexattr = op_removexattr,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .readdirplus = op_readdirplus,
        .releasedir = op_releasedir,
        .fsyncdir = op_fsyncdir,
};
