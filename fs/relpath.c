/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Spool-relative names: the router, the queue and S3 know a file by its path in the spool,
 * the mount by descriptors. These find the path a descriptor stands for now, checking it
 * still leads to the file itself (a name can be renamed, unlinked or replaced at any time).
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

bool af_relpath_names(struct af_fs *fs, const char *rel, const struct stat *st)
{
        struct stat s;

        return fstatat(fs->root.fd, rel, &s, AT_SYMLINK_NOFOLLOW) == 0 && s.st_dev == st->st_dev &&
               s.st_ino == st->st_ino;
}

/* E.g. unlinked. The kernel's name for an unlinked file ends in " (deleted)", as a real name
 * can, and the file may live on under another hard link: only a name that still leads to the
 * file itself counts. */
int af_relpath_of(struct af_fs *fs, int fd, char *out, size_t n)
{
        char link[64], target[PATH_MAX];
        struct stat st;
        ssize_t l;

        af_fs_proc_path(link, fd);
        l = readlink(link, target, sizeof(target) - 1);
        if (l < 0)
                return -errno;
        target[l] = '\0';
        if ((size_t)l <= fs->spool_len || strncmp(target, fs->spool, fs->spool_len) != 0 ||
            target[fs->spool_len] != '/')
                return -ENOENT;
        if (fstat(fd, &st) < 0 || !af_relpath_names(fs, target + fs->spool_len + 1, &st))
                return -ENOENT;
        if ((size_t)l - fs->spool_len >= n)
                return -ENAMETOOLONG;
        memcpy(out, target + fs->spool_len + 1, (size_t)l - fs->spool_len);
        return 0;
}

int af_relpath_join(struct af_fs *fs, int dirfd, const char *name, char *out, size_t n)
{
        size_t dl = 0, nl = strlen(name);
        int r;

        if (dirfd != fs->root.fd) {
                r = af_relpath_of(fs, dirfd, out, n);
                if (r < 0)
                        return r;
                dl = strlen(out);
                out[dl++] = '/';
        }
        if (dl + nl >= n)
                return -ENAMETOOLONG;
        memcpy(out + dl, name, nl + 1);
        return 0;
}
