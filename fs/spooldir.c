/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The spool directory: files/ (what the mount serves, uploads read from it) and journal/
 * (one record per pending upload). A lock on the spool's root keeps a second mount or drain
 * of the same spool out; it is held as long as the root stays open.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

int af_mkdir_p(const char *path, mode_t mode)
{
        char buf[PATH_MAX];
        size_t n = strlen(path);

        if (n >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

void af_spooldir_close(struct af_spooldir *sp)
{
        if (sp->journal_fd >= 0)
                close(sp->journal_fd);
        if (sp->files_fd >= 0)
                close(sp->files_fd);
        if (sp->root_fd >= 0)
                close(sp->root_fd); /* releases the lock */
        sp->root_fd = sp->files_fd = sp->journal_fd = -1;
}

int af_spooldir_open(const char *dir, bool create, bool lock, struct af_spooldir *sp)
{
        int r;

        sp->root_fd = sp->files_fd = sp->journal_fd = -1;
        if (create && (r = af_mkdir_p(dir, 0700)) < 0)
                return af_cli_die("spool %s: %s", dir, strerror(-r));
        if (!realpath(dir, sp->root))
                return af_cli_die("spool %s: %s", dir, strerror(errno));
        snprintf(sp->files, sizeof(sp->files), "%s/files", sp->root);
        if (create) {
                char j[PATH_MAX + 16];

                snprintf(j, sizeof(j), "%s/journal", sp->root);
                if ((mkdir(sp->files, 0755) < 0 && errno != EEXIST) ||
                    (mkdir(j, 0700) < 0 && errno != EEXIST))
                        return af_cli_die("spool %s: cannot make files/ and journal/: %s", sp->root,
                                          strerror(errno));
        }
        sp->root_fd = open(sp->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sp->root_fd >= 0)
                sp->files_fd = openat(sp->root_fd, "files", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (sp->files_fd >= 0)
                sp->journal_fd = openat(sp->root_fd, "journal", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sp->journal_fd < 0) {
                r = af_cli_die("spool %s: %s (is it an artifuse spool, with files/ and journal/?)",
                               sp->root, strerror(errno));
                af_spooldir_close(sp);
                return r;
        }
        if (lock && flock(sp->root_fd, LOCK_EX | LOCK_NB) < 0) {
                r = af_cli_die("spool %s is in use by another artifuse (a mount or a drain)",
                               sp->root);
                af_spooldir_close(sp);
                return r;
        }
        return 0;
}
