/* SPDX-License-Identifier: Apache-2.0 */
/* The spool's room (core/spool/space.c): the limit, partial grants, give-backs, the start-up count
 * of what the spool holds, and the eviction candidates' order. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool/space.h"
#include "test.h"

static int make_tree(char *dir)
{
        int fd, sub;

        if (!mkdtemp(dir))
                return -1;
        fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0 || mkdirat(fd, "sub", 0755) < 0 || mkdirat(fd, "sub/deeper", 0755) < 0)
                return -1;
        /* 1000 + 20000 + 300 bytes of regular files; a symlink and a FIFO count nothing. */
        sub = openat(fd, "a", O_WRONLY | O_CREAT, 0644);
        if (sub < 0 || ftruncate(sub, 1000) < 0)
                return -1;
        close(sub);
        sub = openat(fd, "sub/b", O_WRONLY | O_CREAT, 0644);
        if (sub < 0 || ftruncate(sub, 20000) < 0) /* sparse: counts at its full size */
                return -1;
        close(sub);
        sub = openat(fd, "sub/deeper/c", O_WRONLY | O_CREAT, 0644);
        if (sub < 0 || write(sub, "x", 1) != 1 || ftruncate(sub, 300) < 0)
                return -1;
        close(sub);
        if (symlinkat("/etc/passwd", fd, "link") < 0 || mkfifoat(fd, "fifo", 0644) < 0)
                return -1;
        return fd;
}

static void test_limit_and_scan(void)
{
        char dir[] = "/tmp/af-space-XXXXXX";
        struct af_space *sp = NULL;
        int fd = make_tree(dir);

        if (!CHECK(fd >= 0))
                return;
        if (!CHECK_INT_EQ(af_space_new(&(struct af_space_config){ .dirfd = fd, .limit = 30000 },
                                       &sp),
                          0))
                return;
        CHECK_INT_EQ(af_space_used(sp), 21300);
        CHECK_INT_EQ(af_space_limit(sp), 30000);
        CHECK_INT_EQ(af_space_reserve(sp, 0), 0);
        CHECK_INT_EQ(af_space_reserve(sp, 5000), 5000);
        CHECK_INT_EQ(af_space_reserve(sp, 5000), 3700); /* only what is left */
        CHECK_INT_EQ(af_space_reserve(sp, 1), 0);
        CHECK_INT_EQ(af_space_used(sp), 30000);
        af_space_release(sp, 4000);
        CHECK_INT_EQ(af_space_reserve(sp, 10000), 4000);
        af_space_charge(sp, 10); /* grew by more than was reserved: over the limit */
        CHECK_INT_EQ(af_space_used(sp), 30010);
        CHECK_INT_EQ(af_space_reserve(sp, 1), 0);
        af_space_release(sp, 1000000); /* never below zero */
        CHECK_INT_EQ(af_space_used(sp), 0);
        af_space_free(sp);
        unlinkat(fd, "a", 0);
        unlinkat(fd, "sub/b", 0);
        unlinkat(fd, "sub/deeper/c", 0);
        unlinkat(fd, "sub/deeper", AT_REMOVEDIR);
        unlinkat(fd, "sub", AT_REMOVEDIR);
        unlinkat(fd, "link", 0);
        unlinkat(fd, "fifo", 0);
        close(fd);
        rmdir(dir);
}

static void test_no_limit_means_free_space_only(void)
{
        struct af_space *sp = NULL;
        int fd = open("/tmp", O_RDONLY | O_DIRECTORY);

        if (!CHECK_INT_EQ(af_space_new(&(struct af_space_config){ .dirfd = fd }, &sp), 0))
                return;
        CHECK_INT_EQ(af_space_used(sp), 0); /* not scanned without a limit */
        CHECK_INT_EQ(af_space_reserve(sp, 4096), 4096);
        /* More than any disk here has free: cut to what the filesystem has. */
        CHECK(af_space_reserve(sp, (uint64_t)1 << 62) < (uint64_t)1 << 62);
        af_space_free(sp);
        close(fd);
}

static void test_candidates_oldest_first(void)
{
        struct af_space *sp = NULL;
        struct af_space_candidate c;
        int fd = open("/tmp", O_RDONLY | O_DIRECTORY);

        if (!CHECK_INT_EQ(af_space_new(&(struct af_space_config){ .dirfd = fd }, &sp), 0))
                return;
        CHECK(!af_space_next_candidate(sp, &c));
        af_space_uploaded(sp, "one", "k/one", 1, 11, 100, 1000);
        af_space_uploaded(sp, "two", "k/two", 1, 12, 200, 2000);
        af_space_uploaded(sp, "three", "k/three", 1, 13, 300, 3000);
        CHECK_INT_EQ(af_space_candidates(sp), 3);
        if (CHECK(af_space_next_candidate(sp, &c))) {
                CHECK_STR_EQ(c.relpath, "one");
                CHECK_STR_EQ(c.key, "k/one");
                CHECK_INT_EQ(c.ino, 11);
                CHECK_INT_EQ(c.size, 100);
                CHECK_INT_EQ(c.mtime_ns, 1000);
                af_space_requeue(sp, &c); /* busy: back at the newest end */
                CHECK(c.relpath == NULL);
        }
        CHECK(af_space_next_candidate(sp, &c) && strcmp(c.relpath, "two") == 0);
        af_space_candidate_done(&c);
        CHECK(af_space_next_candidate(sp, &c) && strcmp(c.relpath, "three") == 0);
        af_space_candidate_done(&c);
        CHECK(af_space_next_candidate(sp, &c) && strcmp(c.relpath, "one") == 0);
        af_space_candidate_done(&c);
        CHECK_INT_EQ(af_space_candidates(sp), 0);
        af_space_uploaded(sp, "left", "k/left", 1, 14, 1, 1); /* freed with the rest */
        af_space_free(sp);
        close(fd);
}

int main(void)
{
        RUN(test_limit_and_scan);
        RUN(test_no_limit_means_free_space_only);
        RUN(test_candidates_oldest_first);
        return test_summary();
}
