/* SPDX-License-Identifier: Apache-2.0 */
/* A directory's entry names, sorted. See dir.h. */
#include "base/dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int af_dir_sorted_names(int dirfd, bool (*keep)(const char *name), char ***ret, size_t *ret_n)
{
        /* fdopendir takes over its descriptor: open "." again so the caller's stays theirs */
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd < 0 ? NULL : fdopendir(fd);
        char **names = NULL;
        size_t n = 0, a = 0;
        struct dirent *de;
        int r = 0;

        if (!d) {
                r = -errno;
                if (fd >= 0)
                        close(fd);
                return r;
        }
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (keep && !keep(de->d_name))
                        continue;
                if (n == a) {
                        char **p = realloc(names, (a = a ? a * 2 : 32) * sizeof(*p));

                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        names = p;
                }
                if (!(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r < 0) {
                af_dir_names_free(names, n);
                return r;
        }
        if (n > 1)
                qsort(names, n, sizeof(*names), cmp_names);
        *ret = names;
        *ret_n = n;
        return 0;
}

void af_dir_names_free(char **names, size_t n)
{
        if (!names)
                return;
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}
