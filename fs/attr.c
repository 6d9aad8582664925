/* SPDX-License-Identifier: Apache-2.0 */
/*
 * setattr: mode, owner, size and times, each through the handle when the kernel gives one,
 * else through the node's /proc path. A size change is a change of data: it takes room
 * first if the file grows, ends the file's stream (a truncate to 0 starts in-order writing
 * afresh), and marks the file dirty; without an open handle, no release will follow, so the
 * file is handed over at once.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static int set_mode(const char *path, mode_t mode, struct fuse_file_info *fi)
{
        int r = fi ? fchmod((int)fi->fh, mode) : chmod(path, mode);

        return r < 0 ? -errno : 0;
}

static int set_owner(struct af_node *n, const struct stat *attr, int valid)
{
        uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
        gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

        if (fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

static int set_size(struct af_fs *fs, struct af_node *n, const char *path, off_t size,
                    struct fuse_file_info *fi)
{
        uint64_t before = af_room_size(fi ? (int)fi->fh : n->fd), took = 0;
        int r;

        if (af_node_evicted(fs, n))
                return -ENOENT; /* a stale name of a file evicted to make room */
        if ((uint64_t)size > before) {
                r = af_room_take(fs, (uint64_t)size - before, false, &took);
                /* Past what the spool's filesystem allows at all: EFBIG, as it says. */
                if (r == -ENOSPC && af_room_too_big(fs, (uint64_t)size))
                        r = -EFBIG;
                if (r < 0)
                        return r;
        }
        af_trigger_mark_dirty(n);
        /* A truncate to 0 starts in-order writing afresh. */
        af_inorder_begin_change(fs, n, "truncate", size == 0 ? 0 : AF_SEQ_BROKEN);
        af_node_change_begin(n);
        r = (fi ? ftruncate((int)fi->fh, size) : truncate(path, size)) < 0 ? -errno : 0;
        af_node_change_end(n);
        af_inorder_end_change(fs, n);
        af_room_give(fs, took, before, r < 0 ? before : (uint64_t)size);
        return r;
}

static int set_times(const char *path, const struct stat *attr, int valid,
                     struct fuse_file_info *fi)
{
        struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
        int r;

        if (valid & FUSE_SET_ATTR_ATIME_NOW)
                tv[0].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_ATIME)
                tv[0] = attr->st_atim;
        if (valid & FUSE_SET_ATTR_MTIME_NOW)
                tv[1].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_MTIME)
                tv[1] = attr->st_mtim;
        r = fi ? futimens((int)fi->fh, tv) : utimensat(AT_FDCWD, path, tv, 0);
        return r < 0 ? -errno : 0;
}

/* In the order chmod, chown, truncate, utimens; the first failure stops the rest. */
int af_attr_set(struct af_fs *fs, struct af_node *n, const struct stat *attr, int valid,
                struct fuse_file_info *fi)
{
        char path[64];
        int r = 0;

        af_fs_proc_path(path, n->fd);
        if (valid & FUSE_SET_ATTR_MODE)
                r = set_mode(path, attr->st_mode, fi);
        if (r == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
                r = set_owner(n, attr, valid);
        if (r == 0 && (valid & FUSE_SET_ATTR_SIZE))
                r = set_size(fs, n, path, attr->st_size, fi);
        if (r == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)))
                r = set_times(path, attr, valid, fi);
        if (r == 0 && (valid & FUSE_SET_ATTR_SIZE))
                af_trigger_truncated(fs, n);
        return r;
}
