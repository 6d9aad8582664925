// SPDX-License-Identifier: Apache-2.0
/* Leaving the files at their paths after `run` (see leave.h). */
#include "leave.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deep enough for any real output tree; a deeper one is an error, not a stack overflow. */
#define MAX_DEPTH 256

struct walk {
        unsigned long files;
        struct af_buf *why;
};

static void close_both(int a, int b)
{
        if (a >= 0)
                close(a);
        if (b >= 0)
                close(b);
}

static int fail(struct walk *w, int err, const char *what, const char *name)
{
        (void)af_buf_addf(w->why, "%s '%s': %s", what, name, strerror(err));
        return -err;
}

/* Copies the regular file @name from @sfd's directory into @dfd's, replacing what is there. */
static int copy_file(struct walk *w, int sfd, int dfd, const char *name, const struct stat *st)
{
        struct timespec times[2] = { st->st_atim, st->st_mtim };
        int in = -1, out = -1, r = 0;
        off_t left = st->st_size;

        in = openat(sfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0) {
                r = fail(w, errno, "cannot open the spool's", name);
                goto out;
        }
        (void)unlinkat(dfd, name, 0);
        out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
        if (out < 0) {
                r = fail(w, errno, "cannot create", name);
                goto out;
        }
        while (left > 0) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);

                if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                              errno == EOPNOTSUPP))
                        n = sendfile(out, in, NULL, (size_t)left);
                if (n <= 0) {
                        r = fail(w, n < 0 ? errno : EIO, "cannot copy", name);
                        goto out;
                }
                left -= n;
        }
        (void)fchmod(out, st->st_mode & 07777);
        (void)futimens(out, times);
        w->files++;
out:
        close_both(in, out);
        return r;
}

static int place_tree(struct walk *w, int sfd, int dfd, int depth);

/* One entry of a directory: a subdirectory is walked, a file linked or copied, a symlink
 * re-made; anything else (FIFOs, sockets) is left out, as a program's output it is not. */
static int place_entry(struct walk *w, int sfd, int dfd, const char *name, int depth)
{
        struct stat st;
        int r = 0;

        if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return fail(w, errno, "cannot stat the spool's", name);
        if (S_ISDIR(st.st_mode)) {
                int s2, d2;

                if (mkdirat(dfd, name, st.st_mode & 07777) < 0 && errno != EEXIST)
                        return fail(w, errno, "cannot make directory", name);
                s2 = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                d2 = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (s2 < 0 || d2 < 0)
                        r = fail(w, errno, "cannot open directory", name);
                else
                        r = place_tree(w, s2, d2, depth + 1);
                close_both(s2, d2);
        } else if (S_ISREG(st.st_mode)) {
                (void)unlinkat(dfd, name, 0);
                if (linkat(sfd, name, dfd, name, 0) == 0)
                        w->files++;
                else
                        r = copy_file(w, sfd, dfd, name, &st);
        } else if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t n = readlinkat(sfd, name, target, sizeof(target) - 1);

                if (n < 0)
                        return fail(w, errno, "cannot read symlink", name);
                target[n] = '\0';
                (void)unlinkat(dfd, name, 0);
                if (symlinkat(target, dfd, name) < 0)
                        return fail(w, errno, "cannot make symlink", name);
        }
        return r;
}

static int place_tree(struct walk *w, int sfd, int dfd, int depth)
{
        struct dirent *de;
        DIR *d;
        int dup_fd, r = 0;

        if (depth > MAX_DEPTH)
                return fail(w, ELOOP, "directories nested too deep at", ".");
        dup_fd = dup(sfd);
        if (dup_fd < 0)
                return fail(w, errno, "cannot read directory", ".");
        d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return fail(w, errno, "cannot read directory", ".");
        }
        while (r == 0 && (de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                r = place_entry(w, sfd, dfd, de->d_name, depth);
        }
        closedir(d);
        return r;
}

int af_leave_files(const char *spool_files, const char *mountpoint, enum af_leave_how *ret_how,
                   unsigned long *ret_files, struct af_buf *why)
{
        struct walk w = { .why = why };
        int sfd = -1, dfd = -1, r;

        if (mount(spool_files, mountpoint, NULL, MS_BIND, NULL) == 0) {
                *ret_how = AF_LEAVE_BIND;
                *ret_files = 0;
                return 0;
        }
        /* EPERM without CAP_SYS_ADMIN (a mount made through fusermount3): place the files. */
        sfd = open(spool_files, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        dfd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sfd < 0 || dfd < 0) {
                r = fail(&w, errno, "cannot open", sfd < 0 ? spool_files : mountpoint);
                goto out;
        }
        r = place_tree(&w, sfd, dfd, 0);
        if (r == 0) {
                *ret_how = AF_LEAVE_COPY;
                *ret_files = w.files;
        }
out:
        close_both(sfd, dfd);
        return r;
}
