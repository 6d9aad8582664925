/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Directory handles and listings. A handle is a directory stream of the spool directory,
 * kept on fs->dirs (under fs->lock) so that the unmount, which drops the RELEASEDIRs still
 * queued in the kernel, can close what is left.
 *
 * Offsets are telldir() cookies of the spool's stream, so a listing resumes where the kernel
 * says, and entries added or removed meanwhile follow the spool's rules (POSIX: may or may
 * not appear; the others appear once).
 *
 * readdirplus: each entry returned, except "." and "..", counts as a lookup of it, which
 * the kernel forgets later like one from lookup. An entry that does not fit, or a reply the
 * kernel never gets, is no lookup and is taken back. An entry we cannot look up (removed
 * since readdir saw it) goes out with inode 0, which the kernel lists without caching.
 */
#include "fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct af_dir {
        DIR *dp;
        struct dirent *entry; /* read but not yet returned: it did not fit the last reply */
        off_t offset;         /* telldir() after the last entry returned */
        struct af_dir *next, **pprev; /* in af_fs.dirs; with fs->lock */
};

static void dir_link(struct af_fs *fs, struct af_dir *d)
{
        pthread_mutex_lock(&fs->lock);
        d->next = fs->dirs;
        d->pprev = &fs->dirs;
        if (fs->dirs)
                fs->dirs->pprev = &d->next;
        fs->dirs = d;
        pthread_mutex_unlock(&fs->lock);
}

/* Opens the directory behind O_PATH @fd. */
int af_dir_open(struct af_fs *fs, int fd, struct af_dir **ret)
{
        struct af_dir *d = calloc(1, sizeof(*d));
        int dfd;

        if (!d)
                return -ENOMEM;
        dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || !(d->dp = fdopendir(dfd))) {
                int r = -errno;

                if (dfd >= 0)
                        close(dfd);
                free(d);
                return r;
        }
        dir_link(fs, d);
        *ret = d;
        return 0;
}

void af_dir_close(struct af_fs *fs, struct af_dir *d)
{
        pthread_mutex_lock(&fs->lock);
        *d->pprev = d->next;
        if (d->next)
                d->next->pprev = d->pprev;
        pthread_mutex_unlock(&fs->lock);
        closedir(d->dp);
        free(d);
}

void af_dir_close_all(struct af_fs *fs)
{
        while (fs->dirs)
                af_dir_close(fs, fs->dirs);
}

int af_dir_fsync(struct af_dir *d, int datasync)
{
        int fd = dirfd(d->dp);

        return (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
}

static bool is_dot_or_dotdot(const char *name)
{
        return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

/* Adds d->entry to @page, which has @size bytes; false, having added and counted nothing, when
 * it does not fit. */
static bool add_entry(fuse_req_t req, struct af_dir *d, fuse_ino_t ino, size_t size,
                        bool plus, struct af_dir_page *page)
{
        struct af_fs *fs = af_fs_of(req);
        const char *name = d->entry->d_name;
        char *p = page->buf + page->len;
        size_t rem = size - page->len, n;
        off_t next = telldir(d->dp);
        struct fuse_entry_param e;
        bool looked_up = false;

        if (plus && !is_dot_or_dotdot(name) && af_node_lookup(fs, ino, name, &e) == 0)
                looked_up = true;
        if (!looked_up) {
                memset(&e, 0, sizeof(e));
                e.attr.st_ino = d->entry->d_ino;
                e.attr.st_mode = DTTOIF(d->entry->d_type);
        }
        if (plus)
                n = fuse_add_direntry_plus(req, p, rem, name, &e, next);
        else
                n = fuse_add_direntry(req, p, rem, name, &e.attr, next);
        if (n > rem) {
                if (looked_up)
                        af_node_forget(fs, e.ino, 1);
                return false;
        }
        if (looked_up)
                page->counted[page->ncounted++] = e.ino;
        page->len += n;
        d->offset = next;
        d->entry = NULL;
        return true;
}

/* One reply of readdir (@plus false) or readdirplus (@plus true) from the directory stream,
 * in @page, to free with af_dir_page_done() whatever this returns. An error after some
 * entries waits for the next call. */
int af_dir_read(fuse_req_t req, struct af_dir *d, fuse_ino_t ino, size_t size, off_t off,
                bool plus, struct af_dir_page *page)
{
        int err = 0;

        memset(page, 0, sizeof(*page));
        page->buf = malloc(size);
        /* Each readdirplus entry takes more than 128 bytes (its fuse_entry_out alone). */
        page->counted = plus ? calloc(size / 128 + 1, sizeof(*page->counted)) : NULL;
        if (!page->buf || (plus && !page->counted))
                return -ENOMEM;
        if (off != d->offset) {
                seekdir(d->dp, off);
                d->entry = NULL;
                d->offset = off;
        }
        for (;;) {
                if (!d->entry) {
                        errno = 0;
                        d->entry = readdir(d->dp);
                        if (!d->entry) {
                                err = errno;
                                break;
                        }
                }
                /* One that does not fit stays in d->entry for the next call. */
                if (!add_entry(req, d, ino, size, plus, page))
                        break;
        }
        return err && page->len == 0 ? -err : 0;
}

void af_dir_unread(struct af_fs *fs, const struct af_dir_page *page)
{
        for (size_t i = 0; i < page->ncounted; i++)
                af_node_forget(fs, page->counted[i], 1);
}

void af_dir_page_done(struct af_dir_page *page)
{
        free(page->counted);
        free(page->buf);
}
