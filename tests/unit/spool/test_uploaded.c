/* SPDX-License-Identifier: Apache-2.0 */
/* The registry of uploaded names: put, take, key lookups, forgetting the oldest, growth. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "test.h"
#include "spool/uploaded.h"

static struct af_uploaded_entry entry(const char *rel, const char *key, ino_t ino)
{
        return (struct af_uploaded_entry){ .relpath = rel, .bucket = "b", .key = key,
                                           .etag = "\"e\"", .archive = AF_ARCHIVE_NONE,
                                           .dev = 7, .ino = ino, .size = 3, .mtime_ns = 42 };
}

static void test_put_take_copies_everything(void)
{
        struct af_uploaded *u;
        struct af_uploaded_entry *e = NULL;
        char rel[16] = "a/out.csv", key[16] = "p/out.csv";
        struct af_uploaded_entry in = entry(rel, key, 9);

        if (!CHECK_INT_EQ(af_uploaded_new(0, &u), 0))
                return;
        CHECK_INT_EQ(af_uploaded_put(u, &in), 0);
        rel[0] = key[0] = 'X'; /* the registry keeps its own copies */
        CHECK_INT_EQ(af_uploaded_count(u), 1);
        CHECK_INT_EQ(af_uploaded_take(u, "X/out.csv", &e), -ENOENT);
        CHECK_INT_EQ(af_uploaded_get(u, "X/out.csv", &e), -ENOENT);
        if (CHECK_INT_EQ(af_uploaded_get(u, "a/out.csv", &e), 0)) {
                CHECK_STR_EQ(e->key, "p/out.csv");
                af_uploaded_entry_free(e);
        }
        CHECK_INT_EQ(af_uploaded_count(u), 1); /* get leaves it */
        CHECK(af_uploaded_has(u, "a/out.csv"));
        CHECK(!af_uploaded_has(u, "X/out.csv"));
        if (CHECK_INT_EQ(af_uploaded_take(u, "a/out.csv", &e), 0)) {
                CHECK_STR_EQ(e->relpath, "a/out.csv");
                CHECK_STR_EQ(e->bucket, "b");
                CHECK_STR_EQ(e->key, "p/out.csv");
                CHECK_STR_EQ(e->etag, "\"e\"");
                CHECK_INT_EQ(e->dev, 7);
                CHECK_INT_EQ(e->ino, 9);
                CHECK_INT_EQ(e->size, 3);
                CHECK_INT_EQ(e->mtime_ns, 42);
                af_uploaded_entry_free(e);
        }
        /* taken: gone */
        CHECK_INT_EQ(af_uploaded_count(u), 0);
        CHECK_INT_EQ(af_uploaded_take(u, "a/out.csv", &e), -ENOENT);
        CHECK(!af_uploaded_key_held(u, "b", "p/out.csv"));
        af_uploaded_free(u);
}

static void test_put_replaces_the_same_name(void)
{
        struct af_uploaded *u;
        struct af_uploaded_entry *e = NULL;
        struct af_uploaded_entry a = entry("out", "k1", 1), b = entry("out", "k2", 2);

        if (!CHECK_INT_EQ(af_uploaded_new(0, &u), 0))
                return;
        CHECK_INT_EQ(af_uploaded_put(u, &a), 0);
        CHECK_INT_EQ(af_uploaded_put(u, &b), 0);
        CHECK_INT_EQ(af_uploaded_count(u), 1);
        CHECK(!af_uploaded_key_held(u, "b", "k1")); /* the old key went with the old entry */
        CHECK(af_uploaded_key_held(u, "b", "k2"));
        CHECK(!af_uploaded_key_held(u, "other", "k2")); /* the bucket counts too */
        if (CHECK_INT_EQ(af_uploaded_take(u, "out", &e), 0)) {
                CHECK_INT_EQ(e->ino, 2);
                af_uploaded_entry_free(e);
        }
        af_uploaded_free(u);
}

/* put_new never replaces: a rename keeping an older entry under a name must not overwrite
 * the record of an upload of that name that landed meanwhile (its object is the newer). */
static void test_put_new_keeps_a_newer_entry(void)
{
        struct af_uploaded *u;
        struct af_uploaded_entry *e = NULL;
        struct af_uploaded_entry newer = entry("out", "k", 2), older = entry("out", "k", 1);

        if (!CHECK_INT_EQ(af_uploaded_new(0, &u), 0))
                return;
        CHECK_INT_EQ(af_uploaded_put_new(u, &newer), 0);
        CHECK_INT_EQ(af_uploaded_put_new(u, &older), -EEXIST);
        CHECK_INT_EQ(af_uploaded_count(u), 1);
        if (CHECK_INT_EQ(af_uploaded_take(u, "out", &e), 0)) {
                CHECK_INT_EQ(e->ino, 2);
                af_uploaded_entry_free(e);
        }
        CHECK_INT_EQ(af_uploaded_put_new(u, &older), 0); /* the name is free again */
        CHECK_INT_EQ(af_uploaded_count(u), 1);
        af_uploaded_free(u);
}

/* The upload a resubmit superseded can tell of itself after the newer one (two workers): its
 * older entry must not replace the newer one (the soak: an unlink then deleted the older ETag
 * and left the newer object). An entry of no known seq is replaced as ever. */
static void test_put_keeps_a_later_uploads_entry(void)
{
        struct af_uploaded *u;
        struct af_uploaded_entry *e = NULL;
        struct af_uploaded_entry later = entry("out", "k", 2), earlier = entry("out", "k", 1),
                                 unknown = entry("out", "k", 3);

        if (!CHECK_INT_EQ(af_uploaded_new(0, &u), 0))
                return;
        later.seq = 8;
        earlier.seq = 5;
        CHECK_INT_EQ(af_uploaded_put(u, &later), 0);
        CHECK_INT_EQ(af_uploaded_put(u, &earlier), -EEXIST);
        if (CHECK_INT_EQ(af_uploaded_get(u, "out", &e), 0)) {
                CHECK_INT_EQ(e->ino, 2);
                af_uploaded_entry_free(e);
        }
        later.seq = 9;
        CHECK_INT_EQ(af_uploaded_put(u, &later), 0); /* a later one still replaces it */
        CHECK_INT_EQ(af_uploaded_put(u, &unknown), 0);
        if (CHECK_INT_EQ(af_uploaded_take(u, "out", &e), 0)) {
                CHECK_INT_EQ(e->ino, 3);
                af_uploaded_entry_free(e);
        }
        af_uploaded_free(u);
}

static void test_key_held_by_another_name(void)
{
        struct af_uploaded *u;
        struct af_uploaded_entry *e = NULL;
        struct af_uploaded_entry a = entry("x/a", "same", 1), b = entry("y/a", "same", 2);

        if (!CHECK_INT_EQ(af_uploaded_new(0, &u), 0))
                return;
        CHECK_INT_EQ(af_uploaded_put(u, &a), 0);
        CHECK_INT_EQ(af_uploaded_put(u, &b), 0);
        if (CHECK_INT_EQ(af_uploaded_take(u, "x/a", &e), 0))
                af_uploaded_entry_free(e);
        CHECK(af_uploaded_key_held(u, "b", "same")); /* y/a still has it */
        if (CHECK_INT_EQ(af_uploaded_take(u, "y/a", &e), 0))
                af_uploaded_entry_free(e);
        CHECK(!af_uploaded_key_held(u, "b", "same"));
        af_uploaded_free(u);
}

static void test_full_forgets_the_oldest(void)
{
        struct af_uploaded *u;
        struct af_uploaded_entry *e = NULL;
        char rel[32], key[32];

        if (!CHECK_INT_EQ(af_uploaded_new(3, &u), 0))
                return;
        for (int i = 0; i < 5; i++) {
                struct af_uploaded_entry in;

                snprintf(rel, sizeof(rel), "f%d", i);
                snprintf(key, sizeof(key), "k%d", i);
                in = entry(rel, key, (ino_t)i);
                CHECK_INT_EQ(af_uploaded_put(u, &in), 0);
        }
        CHECK_INT_EQ(af_uploaded_count(u), 3);
        CHECK_INT_EQ(af_uploaded_take(u, "f0", &e), -ENOENT);
        CHECK_INT_EQ(af_uploaded_take(u, "f1", &e), -ENOENT);
        CHECK(!af_uploaded_key_held(u, "b", "k1"));
        CHECK(af_uploaded_key_held(u, "b", "k4"));
        if (CHECK_INT_EQ(af_uploaded_take(u, "f2", &e), 0))
                af_uploaded_entry_free(e);
        af_uploaded_free(u);
}

/* Many names: the tables grow (rehash) and every entry is still found, by name and key. */
static void test_many_names(void)
{
        enum { N = 100000 };
        struct af_uploaded *u;
        struct af_uploaded_entry *e = NULL;
        char rel[32], key[48];
        unsigned bad = 0;

        if (!CHECK_INT_EQ(af_uploaded_new(0, &u), 0))
                return;
        for (int i = 0; i < N; i++) {
                struct af_uploaded_entry in;

                snprintf(rel, sizeof(rel), "dir/file-%d", i);
                snprintf(key, sizeof(key), "wf/pod/dir/file-%d", i);
                in = entry(rel, key, (ino_t)i);
                bad += af_uploaded_put(u, &in) != 0;
        }
        CHECK_INT_EQ(bad, 0);
        CHECK_INT_EQ(af_uploaded_count(u), N);
        for (int i = 0; i < N; i += 7) {
                snprintf(rel, sizeof(rel), "dir/file-%d", i);
                snprintf(key, sizeof(key), "wf/pod/dir/file-%d", i);
                bad += !af_uploaded_key_held(u, "b", key);
                if (af_uploaded_take(u, rel, &e) == 0) {
                        bad += e->ino != (ino_t)i;
                        af_uploaded_entry_free(e);
                } else {
                        bad++;
                }
        }
        CHECK_INT_EQ(bad, 0);
        af_uploaded_free(u); /* frees what is left (ASan's leak check sees the rest) */
}

/* af_uploaded_names: every name, oldest first, as copies the caller frees. */
static void test_names_snapshot(void)
{
        struct af_uploaded *u;
        struct af_uploaded_entry a = entry("one", "k1", 1), b = entry("two", "k2", 2);
        char **names = NULL;
        size_t n = 0;

        if (!CHECK_INT_EQ(af_uploaded_new(0, &u), 0))
                return;
        if (CHECK_INT_EQ(af_uploaded_names(u, &names, &n), 0)) {
                CHECK_INT_EQ(n, 0);
                af_uploaded_names_free(names, n);
        }
        CHECK_INT_EQ(af_uploaded_put(u, &a), 0);
        CHECK_INT_EQ(af_uploaded_put(u, &b), 0);
        if (CHECK_INT_EQ(af_uploaded_names(u, &names, &n), 0) && CHECK_INT_EQ(n, 2)) {
                CHECK_STR_EQ(names[0], "one");
                CHECK_STR_EQ(names[1], "two");
        }
        af_uploaded_names_free(names, n);
        af_uploaded_free(u);
}

int main(void)
{
        RUN(test_put_take_copies_everything);
        RUN(test_put_replaces_the_same_name);
        RUN(test_put_new_keeps_a_newer_entry);
        RUN(test_put_keeps_a_later_uploads_entry);
        RUN(test_key_held_by_another_name);
        RUN(test_full_forgets_the_oldest);
        RUN(test_many_names);
        RUN(test_names_snapshot);
        return test_summary();
}
