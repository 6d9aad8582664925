/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for base/dir.c: af_dir_sorted_names on a real directory (bytewise order, "." and
 * ".." left out, the filter, the caller's descriptor left as it was) and its errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/dir.h"
#include "test.h"

static char tmpdir[] = "/tmp/af_test_dir.XXXXXX";

static void touch(int dfd, const char *name)
{
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

        if (CHECK(fd >= 0))
                close(fd);
}

static bool ends_rec(const char *name)
{
        size_t l = strlen(name);

        return l >= 4 && strcmp(name + l - 4, ".rec") == 0;
}

static void test_sorted(void)
{
        /* created out of order; 'B' < 'a' < 'b' < 'b.rec' bytewise, whatever the locale */
        static const char *const created[] = { "b.rec", "a", "B", "b", "sub" };
        static const char *const want_all[] = { "B", "a", "b", "b.rec", "sub" };
        int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char **names = NULL;
        size_t n = 0;

        if (!CHECK(dfd >= 0))
                return;
        for (size_t i = 0; i < 4; i++)
                touch(dfd, created[i]);
        CHECK(mkdirat(dfd, "sub", 0700) == 0);
        if (CHECK_INT_EQ(af_dir_sorted_names(dfd, NULL, &names, &n), 0) && CHECK_INT_EQ(n, 5))
                for (size_t i = 0; i < n; i++)
                        CHECK_STR_EQ(names[i], want_all[i]);
        af_dir_names_free(names, n);

        names = NULL;
        if (CHECK_INT_EQ(af_dir_sorted_names(dfd, ends_rec, &names, &n), 0) &&
            CHECK_INT_EQ(n, 1))
                CHECK_STR_EQ(names[0], "b.rec");
        af_dir_names_free(names, n);

        /* the caller's descriptor is still open and usable */
        CHECK(faccessat(dfd, "a", F_OK, 0) == 0);
        for (size_t i = 0; i < 4; i++)
                CHECK(unlinkat(dfd, created[i], 0) == 0);
        CHECK(unlinkat(dfd, "sub", AT_REMOVEDIR) == 0);
        close(dfd);
}

static void test_empty_and_errors(void)
{
        int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char **names = (char **)&dfd; /* must be overwritten */
        size_t n = 99;

        if (!CHECK(dfd >= 0))
                return;
        if (CHECK_INT_EQ(af_dir_sorted_names(dfd, NULL, &names, &n), 0)) {
                CHECK_INT_EQ(n, 0);
                CHECK(names == NULL);
        }
        af_dir_names_free(NULL, 0);
        close(dfd);

        /* not a directory: the error, outputs untouched */
        dfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        names = NULL;
        n = 7;
        CHECK_INT_EQ(af_dir_sorted_names(dfd, NULL, &names, &n), -ENOTDIR);
        CHECK_INT_EQ(n, 7);
        close(dfd);
        CHECK_INT_EQ(af_dir_sorted_names(-1, NULL, &names, &n), -EBADF);
}

int main(void)
{
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        RUN(test_sorted);
        RUN(test_empty_and_errors);
        (void)rmdir(tmpdir);
        return test_summary();
}
