/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for log.c's JSON form (--log-format json): the same fields in the same order,
 * bare integers as numbers, af_q's escapes turned into JSON's, a bounded output; and a line
 * written through af_log in each format. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "test.h"

static void check_json(const char *in, const char *want)
{
        char out[512];
        size_t n = af_log_logfmt_to_json(in, strlen(in), out, sizeof(out));

        CHECK_STR_EQ(out, want);
        CHECK_INT_EQ(n, strlen(want));
}

static void test_fields(void)
{
        check_json("time=2026-12-04T18:00:00.000Z level=info op=upload bytes=17 ms=9",
                   "{\"time\":\"2026-12-04T18:00:00.000Z\",\"level\":\"info\",\"op\":\"upload\","
                   "\"bytes\":17,\"ms\":9}");
        check_json("key=\"a b/\\\"c\\\".txt\" n=007 big=12345678901234567 neg=-1 z=0",
                   "{\"key\":\"a b/\\\"c\\\".txt\",\"n\":\"007\",\"big\":\"12345678901234567\","
                   "\"neg\":\"-1\",\"z\":0}");
        check_json("msg=\"line\\nnext\\x01\\\\\"", "{\"msg\":\"line\\nnext\\u0001\\\\\"}");
        check_json("etag=\"\\\"abc\\\"\" err=EAGAIN", "{\"etag\":\"\\\"abc\\\"\",\"err\":\"EAGAIN\"}");
        check_json("stray word=1", "{\"text\":\"stray\",\"word\":1}");
        check_json("empty=\"\" last=", "{\"empty\":\"\",\"last\":\"\"}");
        check_json("", "{}");
}

static void test_bounded(void)
{
        char out[16];
        size_t n = af_log_logfmt_to_json("key=\"a long value that does not fit\"", 36, out,
                                         sizeof(out));

        CHECK(n < sizeof(out));
        CHECK_INT_EQ(strlen(out), n);
        CHECK_INT_EQ(out[n - 1], '}');
}

static void test_af_log_formats(void)
{
        char buf[1024];
        int p[2];
        ssize_t n;

        if (!CHECK_INT_EQ(pipe(p), 0))
                return;
        af_log_set_fd(p[1]);
        af_log_info("op=test path=%s bytes=%d", af_q("x y"), 5);
        af_log_set_format(AF_LOG_JSON);
        af_log_info("op=test path=%s bytes=%d", af_q("x y"), 5);
        af_log_set_format(AF_LOG_LOGFMT);
        af_log_set_fd(2);
        close(p[1]);
        n = read(p[0], buf, sizeof(buf) - 1);
        close(p[0]);
        if (!CHECK(n > 0))
                return;
        buf[n] = '\0';
        CHECK(strstr(buf, " level=info op=test path=\"x y\" bytes=5\n") != NULL);
        CHECK(strstr(buf, "\"level\":\"info\",\"op\":\"test\",\"path\":\"x y\",\"bytes\":5}\n") !=
              NULL);
        CHECK(strstr(buf, "\n{\"time\":\"") != NULL);
}

int main(void)
{
        RUN(test_fields);
        RUN(test_bounded);
        RUN(test_af_log_formats);
        return test_summary();
}
