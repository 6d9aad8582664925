/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for buf.c: the capped, growable, always NUL-terminated buffer.
 *
 * The cap is the property the rest of core leans on (untrusted input cannot make us allocate
 * more than it), so every append flavour is pushed past it and must leave the buffer exactly
 * as it was: same length, same bytes, still terminated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "test.h"

/* The invariants buf.h promises, checked after every interesting step. */
static void check_invariants(const struct af_buf *b)
{
        CHECK(af_buf_str(b) != NULL);
        if (b->ptr) {
                CHECK(b->len < b->alloc);
                CHECK(b->ptr[b->len] == '\0');
        } else {
                CHECK_INT_EQ(b->len, 0);
        }
        CHECK_INT_EQ(strlen(af_buf_str(b)), b->len); /* no embedded NUL in these tests */
}

static void test_init_empty(void)
{
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(b.cap, AF_BUF_DEFAULT_CAP);
        CHECK_INT_EQ(b.len, 0);
        CHECK_STR_EQ(af_buf_str(&b), "");
        check_invariants(&b);
        af_buf_init(&b, 10);
        CHECK_INT_EQ(b.cap, 10);
        af_buf_done(&b);
        CHECK_STR_EQ(af_buf_str(&b), "");
}

static void test_add_flavours(void)
{
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_buf_add(&b, "abc", 3), 0);
        CHECK_INT_EQ(af_buf_add(&b, "XYZ", 0), 0); /* zero bytes: a no-op */
        CHECK_INT_EQ(af_buf_adds(&b, "def"), 0);
        CHECK_INT_EQ(af_buf_addc(&b, '/'), 0);
        CHECK_INT_EQ(af_buf_addf(&b, "%d-%s-%zu", 42, "x", (size_t)7), 0);
        CHECK_INT_EQ(af_buf_addf(&b, "%s", ""), 0);
        CHECK_STR_EQ(af_buf_str(&b), "abcdef/42-x-7");
        CHECK_INT_EQ(b.len, 13);
        check_invariants(&b);
        CHECK_INT_EQ(af_buf_sets(&b, "new"), 0);
        CHECK_STR_EQ(af_buf_str(&b), "new");
        check_invariants(&b);
        af_buf_done(&b);
}

/* Adding zero bytes to a fresh buffer still yields a valid "" string. */
static void test_add_empty_to_fresh(void)
{
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_buf_add(&b, "", 0), 0);
        CHECK_STR_EQ(af_buf_str(&b), "");
        check_invariants(&b);
        CHECK_INT_EQ(af_buf_addf(&b, "%s", ""), 0);
        CHECK_STR_EQ(af_buf_str(&b), "");
        check_invariants(&b);
        af_buf_done(&b);
}

/* Growth across many reallocations keeps every byte. */
static void test_growth(void)
{
        struct af_buf b;
        char want[10001];
        size_t i;

        af_buf_init(&b, 0);
        for (i = 0; i < 10000; i++) {
                want[i] = (char)('a' + i % 26);
                if (af_buf_addc(&b, want[i]) < 0)
                        break;
        }
        want[i] = '\0';
        CHECK_INT_EQ(b.len, 10000);
        CHECK_STR_EQ(af_buf_str(&b), want);
        check_invariants(&b);
        af_buf_done(&b);
}

/* Embedded NUL bytes are data: add() copies by length. */
static void test_binary(void)
{
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_buf_add(&b, "a\0b", 3), 0);
        CHECK_INT_EQ(b.len, 3);
        CHECK_MEM_EQ(b.ptr, b.len, "a\0b", (size_t)3);
        CHECK(b.ptr[3] == '\0');
        af_buf_done(&b);
}

/* Up to the cap is fine; one byte more fails with -E2BIG and changes nothing. */
static void test_cap(void)
{
        struct af_buf b;

        af_buf_init(&b, 4);
        CHECK_INT_EQ(af_buf_adds(&b, "abcd"), 0); /* exactly the cap */
        CHECK_INT_EQ(af_buf_addc(&b, 'e'), -E2BIG);
        CHECK_STR_EQ(af_buf_str(&b), "abcd");
        CHECK_INT_EQ(af_buf_adds(&b, "ef"), -E2BIG);
        CHECK_INT_EQ(af_buf_add(&b, "e", 1), -E2BIG);
        CHECK_INT_EQ(af_buf_addf(&b, "%d", 5), -E2BIG);
        CHECK_INT_EQ(b.len, 4);
        CHECK_STR_EQ(af_buf_str(&b), "abcd");
        check_invariants(&b);
        CHECK_INT_EQ(af_buf_add(&b, "", 0), 0); /* nothing more is still fine at the cap */
        af_buf_truncate(&b, 2);
        CHECK_INT_EQ(af_buf_adds(&b, "xyz"), -E2BIG); /* 5 > 4: all or nothing, no "ab"+"xy" */
        CHECK_STR_EQ(af_buf_str(&b), "ab");
        CHECK_INT_EQ(af_buf_adds(&b, "xy"), 0);
        CHECK_STR_EQ(af_buf_str(&b), "abxy");
        check_invariants(&b);
        af_buf_done(&b);

        /* A fresh buffer: the first append over the cap allocates nothing. */
        af_buf_init(&b, 3);
        CHECK_INT_EQ(af_buf_addf(&b, "%s", "abcd"), -E2BIG);
        CHECK(b.ptr == NULL);
        CHECK_INT_EQ(b.len, 0);
        CHECK_STR_EQ(af_buf_str(&b), "");
        CHECK_INT_EQ(af_buf_addf(&b, "%s", "abc"), 0);
        CHECK_STR_EQ(af_buf_str(&b), "abc");
        af_buf_done(&b);
}

/* A huge length must not wrap the cap arithmetic. */
static void test_cap_overflow(void)
{
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_buf_adds(&b, "x"), 0);
        CHECK_INT_EQ(af_buf_add(&b, "y", (size_t)-1), -E2BIG);
        CHECK_INT_EQ(af_buf_add(&b, "y", AF_BUF_DEFAULT_CAP), -E2BIG); /* 1 + cap > cap */
        CHECK_STR_EQ(af_buf_str(&b), "x");
        af_buf_done(&b);
}

static void test_take(void)
{
        struct af_buf b;
        char *s;

        af_buf_init(&b, 16);
        CHECK_INT_EQ(af_buf_adds(&b, "hello"), 0);
        s = af_buf_take(&b);
        CHECK_STR_EQ(s, "hello");
        free(s);
        /* The buffer is empty afterwards and still usable, with its cap. */
        CHECK(b.ptr == NULL);
        CHECK_INT_EQ(b.len, 0);
        CHECK_STR_EQ(af_buf_str(&b), "");
        CHECK_INT_EQ(b.cap, 16);
        CHECK_INT_EQ(af_buf_adds(&b, "again"), 0);
        CHECK_STR_EQ(af_buf_str(&b), "again");
        af_buf_done(&b);

        /* Taking an empty buffer gives "" (a string to free), not NULL. */
        af_buf_init(&b, 0);
        s = af_buf_take(&b);
        CHECK(s != NULL);
        CHECK_STR_EQ(s, "");
        free(s);
        af_buf_done(&b);
}

static void test_truncate_reset(void)
{
        struct af_buf b;
        size_t alloc;

        af_buf_init(&b, 0);
        af_buf_truncate(&b, 0); /* on a buffer that never allocated */
        af_buf_reset(&b);
        CHECK_STR_EQ(af_buf_str(&b), "");

        CHECK_INT_EQ(af_buf_adds(&b, "abcdef"), 0);
        af_buf_truncate(&b, 3);
        CHECK_STR_EQ(af_buf_str(&b), "abc");
        CHECK_INT_EQ(b.len, 3);
        af_buf_truncate(&b, 10); /* longer than the contents: no-op */
        CHECK_STR_EQ(af_buf_str(&b), "abc");
        af_buf_truncate(&b, 3); /* same length: no-op */
        CHECK_STR_EQ(af_buf_str(&b), "abc");
        check_invariants(&b);

        alloc = b.alloc;
        af_buf_reset(&b);
        CHECK_INT_EQ(b.len, 0);
        CHECK_STR_EQ(af_buf_str(&b), "");
        CHECK_INT_EQ(b.alloc, alloc); /* reset keeps the allocation */
        CHECK(b.ptr != NULL);
        check_invariants(&b);
        CHECK_INT_EQ(af_buf_adds(&b, "z"), 0);
        CHECK_STR_EQ(af_buf_str(&b), "z");

        af_buf_done(&b);
        CHECK(b.ptr == NULL);
        CHECK_INT_EQ(b.len, 0);
        CHECK_STR_EQ(af_buf_str(&b), "");
        CHECK_INT_EQ(af_buf_adds(&b, "reused"), 0); /* done leaves it reusable */
        CHECK_STR_EQ(af_buf_str(&b), "reused");
        af_buf_done(&b);
}

/* Appends work after truncate: the terminator moves with the length. */
static void test_truncate_then_add(void)
{
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_buf_adds(&b, "abcdef"), 0);
        af_buf_truncate(&b, 1);
        CHECK_INT_EQ(af_buf_addf(&b, "-%s", "z"), 0);
        CHECK_STR_EQ(af_buf_str(&b), "a-z");
        check_invariants(&b);
        af_buf_done(&b);
}

int main(void)
{
        RUN(test_init_empty);
        RUN(test_add_flavours);
        RUN(test_add_empty_to_fresh);
        RUN(test_growth);
        RUN(test_binary);
        RUN(test_cap);
        RUN(test_cap_overflow);
        RUN(test_take);
        RUN(test_truncate_reset);
        RUN(test_truncate_then_add);
        return test_summary();
}
