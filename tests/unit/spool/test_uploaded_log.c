/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry's log: what one registry put and took is what the next one, opened on the
 * same directory, knows; a torn or damaged record is skipped and nothing else lost; the file
 * stays bounded; odd bytes in names and keys survive the round trip.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "spool/uploaded.h"
#include "spool/uploaded_log.h"

#define LOG "uploaded.log"

static char dir[64];
static int dfd = -1;

static struct af_uploaded_entry entry(const char *rel, const char *key, ino_t ino)
{
        return (struct af_uploaded_entry){ .relpath = rel, .bucket = "b", .key = key,
                                           .etag = "\"e\"", .archive = AF_ARCHIVE_NONE,
                                           .dev = 7, .ino = ino, .size = 3, .mtime_ns = 42 };
}

/* A registry on the test directory's log; NULL on failure (reported). */
static struct af_uploaded *open_reg(size_t max, struct af_uploaded_log_stats *st)
{
        struct af_uploaded_log_stats ignored;
        struct af_uploaded *u;

        if (!CHECK_INT_EQ(af_uploaded_new(max, &u), 0))
                return NULL;
        if (!CHECK_INT_EQ(af_uploaded_persist(u, dfd, LOG, st ? st : &ignored), 0)) {
                af_uploaded_free(u);
                return NULL;
        }
        return u;
}

static void reset_dir(void)
{
        (void)unlinkat(dfd, LOG, 0);
        (void)unlinkat(dfd, LOG ".tmp", 0);
}

static size_t lines_of_log(void)
{
        char buf[1 << 16];
        int fd = openat(dfd, LOG, O_RDONLY);
        size_t lines = 0;
        ssize_t n;

        if (fd < 0)
                return 0;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                for (ssize_t i = 0; i < n; i++)
                        lines += buf[i] == '\n';
        close(fd);
        return lines;
}

static void append_raw(const char *s)
{
        int fd = openat(dfd, LOG, O_WRONLY | O_APPEND);

        if (CHECK(fd >= 0)) {
                CHECK_INT_EQ(write(fd, s, strlen(s)), (long long)strlen(s));
                close(fd);
        }
}

/* Puts, a take and a replacement, then a new registry on the same log: the same state. */
static void test_survives_a_restart(void)
{
        struct af_uploaded_log_stats st;
        struct af_uploaded_entry a = entry("a", "p/a", 1), b = entry("b", "p/b", 2),
                                 b2 = entry("b", "p/b2", 3), c = entry("dir/c", "p/dir/c", 4);
        struct af_uploaded_entry *e = NULL;
        struct af_uploaded *u;

        reset_dir();
        if (!(u = open_reg(0, &st)))
                return;
        CHECK_INT_EQ(st.entries, 0);
        CHECK_INT_EQ(af_uploaded_put(u, &a), 0);
        CHECK_INT_EQ(af_uploaded_put(u, &b), 0);
        CHECK_INT_EQ(af_uploaded_put(u, &c), 0);
        CHECK_INT_EQ(af_uploaded_put(u, &b2), 0); /* replaces b */
        if (CHECK_INT_EQ(af_uploaded_take(u, "a", &e), 0))
                af_uploaded_entry_free(e);
        af_uploaded_free(u); /* as a kill -9 would leave it: nothing more is written */

        if (!(u = open_reg(0, &st)))
                return;
        CHECK_INT_EQ(st.records, 5);
        CHECK_INT_EQ(st.skipped, 0);
        CHECK_INT_EQ(st.entries, 2);
        CHECK(!af_uploaded_has(u, "a"));
        CHECK(!af_uploaded_key_held(u, "b", "p/b"));
        CHECK(af_uploaded_key_held(u, "b", "p/b2"));
        if (CHECK_INT_EQ(af_uploaded_get(u, "b", &e), 0)) {
                CHECK_STR_EQ(e->bucket, "b");
                CHECK_STR_EQ(e->etag, "\"e\"");
                CHECK_INT_EQ(e->archive, AF_ARCHIVE_NONE);
                CHECK_INT_EQ(e->dev, 7);
                CHECK_INT_EQ(e->ino, 3);
                CHECK_INT_EQ(e->size, 3);
                CHECK_INT_EQ(e->mtime_ns, 42);
                af_uploaded_entry_free(e);
        }
        /* The log was compacted at start: one record per name. */
        CHECK_INT_EQ(lines_of_log(), 1 + 2);
        af_uploaded_free(u);
}

/* Spaces, newlines, '%', non-ASCII, an empty ETag, a negative mtime, archive tar. */
static void test_odd_values_round_trip(void)
{
        struct af_uploaded_entry x = entry("a b\n%c\xc3\xa9", "k ey\t%41", 5), *e = NULL;
        struct af_uploaded *u;

        x.etag = "";
        x.mtime_ns = -1;
        x.archive = AF_ARCHIVE_TAR;
        x.size = UINT64_MAX / 2;
        reset_dir();
        if (!(u = open_reg(0, NULL)))
                return;
        CHECK_INT_EQ(af_uploaded_put(u, &x), 0);
        af_uploaded_free(u);
        if (!(u = open_reg(0, NULL)))
                return;
        if (CHECK_INT_EQ(af_uploaded_get(u, "a b\n%c\xc3\xa9", &e), 0)) {
                CHECK_STR_EQ(e->key, "k ey\t%41");
                CHECK_STR_EQ(e->etag, "");
                CHECK_INT_EQ(e->mtime_ns, -1);
                CHECK_INT_EQ(e->archive, AF_ARCHIVE_TAR);
                CHECK(e->size == UINT64_MAX / 2);
                af_uploaded_entry_free(e);
        }
        af_uploaded_free(u);
}

/* A torn last record (no newline: the write a kill cut short), a record whose checksum fails
 * and a line of garbage: each skipped, the records around them kept. */
static void test_torn_and_damaged_records_are_skipped(void)
{
        struct af_uploaded_entry a = entry("a", "p/a", 1), c = entry("c", "p/c", 3);
        struct af_uploaded_log_stats st;
        struct af_buf line;
        struct af_uploaded *u;

        reset_dir();
        if (!(u = open_reg(0, NULL)))
                return;
        CHECK_INT_EQ(af_uploaded_put(u, &a), 0);
        af_uploaded_free(u);
        /* A valid record with one byte changed after its checksum was taken. */
        af_buf_init(&line, 0);
        {
                struct af_uploaded_entry b = entry("b", "p/b", 2);

                CHECK_INT_EQ(af_uploaded_log_put(&line, &b), 0);
                line.ptr[line.len - 2] = '9';
                append_raw(af_buf_str(&line));
                af_buf_reset(&line);
        }
        append_raw("garbage without a checksum\n");
        CHECK_INT_EQ(af_uploaded_log_put(&line, &c), 0);
        append_raw(af_buf_str(&line));
        af_buf_reset(&line);
        CHECK_INT_EQ(af_uploaded_log_take(&line, "a"), 0);
        line.ptr[line.len / 2] = '\0'; /* half of it, no newline */
        append_raw(line.ptr);
        af_buf_done(&line);

        if (!(u = open_reg(0, &st)))
                return;
        CHECK_INT_EQ(st.records, 2); /* put a, put c */
        CHECK_INT_EQ(st.skipped, 3);
        CHECK(af_uploaded_has(u, "a")); /* its take was torn */
        CHECK(!af_uploaded_has(u, "b"));
        CHECK(af_uploaded_has(u, "c"));
        af_uploaded_free(u);
        /* The rewrite at start left only good records. */
        if (!(u = open_reg(0, &st)))
                return;
        CHECK_INT_EQ(st.skipped, 0);
        CHECK_INT_EQ(st.entries, 2);
        af_uploaded_free(u);
}

/* A file that is not a registry log (another version, or not ours) is not replayed. */
static void test_foreign_file_is_not_replayed(void)
{
        struct af_uploaded_log_stats st;
        struct af_uploaded *u;

        reset_dir();
        {
                int fd = openat(dfd, LOG, O_WRONLY | O_CREAT | O_TRUNC, 0600);

                CHECK(fd >= 0 && write(fd, "artifuse-uploaded 99\n", 21) == 21);
                if (fd >= 0)
                        close(fd);
        }
        if (!(u = open_reg(0, &st)))
                return;
        CHECK_INT_EQ(st.entries, 0);
        CHECK_INT_EQ(st.skipped, 1);
        af_uploaded_free(u);
}

/* Many changes to few names: the file is compacted and stays bounded; the last state wins.
 * A registry bounded at 100 names replays to at most 100 names, the newest. */
static void test_log_stays_bounded(void)
{
        struct af_uploaded_log_stats st;
        struct af_uploaded_entry *e = NULL;
        struct af_uploaded *u;
        char rel[32], key[32];
        size_t most = 0;

        reset_dir();
        if (!(u = open_reg(100, NULL)))
                return;
        for (int i = 0; i < 20000; i++) {
                struct af_uploaded_entry x;

                snprintf(rel, sizeof(rel), "f%d", i % 150);
                snprintf(key, sizeof(key), "k%d", i);
                x = entry(rel, key, (ino_t)i);
                CHECK_INT_EQ(af_uploaded_put(u, &x), 0);
                if (i % 3 == 0 && af_uploaded_take(u, rel, &e) == 0)
                        af_uploaded_entry_free(e);
                if (i % 997 == 0 && lines_of_log() > most)
                        most = lines_of_log();
        }
        CHECK(most <= 1 + 2 * 100 + 4096 + 1);
        CHECK(lines_of_log() <= 1 + 2 * 100 + 4096 + 1);
        snprintf(rel, sizeof(rel), "f%d", 19999 % 150);
        af_uploaded_free(u);
        if (!(u = open_reg(100, &st)))
                return;
        CHECK(st.entries <= 100);
        if (CHECK_INT_EQ(af_uploaded_get(u, rel, &e), 0)) {
                CHECK_STR_EQ(e->key, "k19999");
                af_uploaded_entry_free(e);
        }
        af_uploaded_free(u);
}

int main(void)
{
        snprintf(dir, sizeof(dir), "/tmp/af-uploaded-log-XXXXXX");
        if (!mkdtemp(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) < 0) {
                perror("mkdtemp");
                return 1;
        }
        RUN(test_survives_a_restart);
        RUN(test_odd_values_round_trip);
        RUN(test_torn_and_damaged_records_are_skipped);
        RUN(test_foreign_file_is_not_replayed);
        RUN(test_log_stays_bounded);
        reset_dir();
        close(dfd);
        (void)rmdir(dir);
        return test_summary();
}
