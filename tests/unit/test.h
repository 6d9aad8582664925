/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file test.h
 * The in-house assert set for unit tests: one executable per module, no framework.
 *
 * A failed check prints "FAIL file:line: expression" and both values, counts the failure and
 * lets the test go on, so one run shows every broken check. The macros are expressions that
 * yield true when the check passed, for tests that cannot go on after a failure:
 *
 *     if (!CHECK_INT_EQ(af_thing_new(&t), 0))
 *             return;
 *
 * A test file runs its tests with RUN(fn), which prints "ok fn" or "FAIL fn" (test_report()
 * does the same for data-driven cases), and ends main() with "return test_summary();", which
 * prints "N checks, M failed" and returns the exit status meson expects (0 pass, 1 fail).
 * Strings are printed with C escapes, so a canonical request shows its newlines, along with
 * the offset of the first difference.
 *
 * Single-threaded: the counters are plain statics, one set per test executable.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static struct {
        unsigned checks, failed;
} test_state;

static inline void test_fail_at(const char *file, int line, const char *expr)
{
        test_state.failed++;
        fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr);
}

/* Prints @s[0..n) with C escapes: bytes outside printable ASCII as \xNN. */
static inline void test_print_escaped(const char *label, const char *s, size_t n)
{
        size_t i;

        fprintf(stderr, "    %s \"", label);
        for (i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c == '\n')
                        fputs("\\n", stderr);
                else if (c == '\t')
                        fputs("\\t", stderr);
                else if (c == '"' || c == '\\')
                        fprintf(stderr, "\\%c", c);
                else if (c < 0x20 || c >= 0x7f)
                        fprintf(stderr, "\\x%02x", c);
                else
                        fputc(c, stderr);
        }
        fputs("\"\n", stderr);
}

static inline bool test_check(bool ok, const char *file, int line, const char *expr)
{
        test_state.checks++;
        if (!ok)
                test_fail_at(file, line, expr);
        return ok;
}

static inline bool test_int_eq(long long a, long long b, const char *ea, const char *eb,
                               const char *file, int line)
{
        test_state.checks++;
        if (a == b)
                return true;
        test_fail_at(file, line, "integers differ");
        fprintf(stderr, "    %s = %lld\n    %s = %lld\n", ea, a, eb, b);
        return false;
}

static inline bool test_mem_eq(const void *a, size_t na, const void *b, size_t nb,
                               const char *ea, const char *eb, const char *file, int line)
{
        size_t i = 0;

        test_state.checks++;
        if (a && b && na == nb && memcmp(a, b, na) == 0)
                return true;
        test_fail_at(file, line, "strings differ");
        if (!a || !b) {
                fprintf(stderr, "    %s is %s\n    %s is %s\n", ea, a ? "set" : "NULL", eb,
                        b ? "set" : "NULL");
                return false;
        }
        while (i < na && i < nb && ((const char *)a)[i] == ((const char *)b)[i])
                i++;
        fprintf(stderr, "    first difference at byte %zu (lengths %zu and %zu)\n", i, na, nb);
        test_print_escaped(ea, a, na);
        test_print_escaped(eb, b, nb);
        return false;
}

static inline bool test_str_eq(const char *a, const char *b, const char *ea, const char *eb,
                               const char *file, int line)
{
        return test_mem_eq(a, a ? strlen(a) : 0, b, b ? strlen(b) : 0, ea, eb, file, line);
}

#define CHECK(cond) test_check((cond), __FILE__, __LINE__, #cond)
#define CHECK_INT_EQ(a, b) test_int_eq((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR_EQ(a, b) test_str_eq((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_MEM_EQ(a, na, b, nb) test_mem_eq((a), (na), (b), (nb), #a, #b, __FILE__, __LINE__)

/* Reports one test, data-driven ones included: "ok name" if no check failed since @mark. */
static inline void test_report(const char *name, unsigned mark)
{
        printf("%s %s\n", test_state.failed == mark ? "ok" : "FAIL", name);
        fflush(stdout);
}

/* Runs one test function and reports it by name. */
#define RUN(fn)                                                                                 \
        do {                                                                                    \
                unsigned mark_ = test_state.failed;                                             \
                fn();                                                                           \
                test_report(#fn, mark_);                                                        \
        } while (0)

/* Prints "N checks, M failed"; returns main()'s exit status. No check at all is a failure. */
static inline int test_summary(void)
{
        printf("%u checks, %u failed\n", test_state.checks, test_state.failed);
        return test_state.failed || !test_state.checks ? 1 : 0;
}
