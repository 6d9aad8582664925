/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for base/json.c: one member read out of a flat object (what the AWS credential
 * sources answer), and strings written as Go's encoding/json writes them. The Go rules are
 * checked in depth through Argo's variables in tests/unit/argo/test_argovars.c; here, the
 * reader's edge cases and the writer's contract.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "test.h"

static void test_json_values(void)
{
        static const char doc[] =
                " {\"Code\" : \"Success\", \"Nested\": {\"AccessKeyId\": \"WRONG\", \"a\": [1, "
                "{\"b\": null}]},\n\t\"AccessKeyId\":\"AS\\u0049A\\\"q\\\\\\/\\n\","
                "\"Utf\":\"\\u00e9\\ud83d\\ude00\", \"Version\": 1, \"F\": -1.5e+3,"
                " \"T\": true, \"N\": null, \"Dup\": \"one\", \"Dup\": \"two\", \"Empty\": \"\"} ";
        char out[64];

        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "Code", out, sizeof(out)),
                     AF_JSON_STRING);
        CHECK_STR_EQ(out, "Success");
        /* the top-level member, not the one inside "Nested"; escapes decoded */
        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "AccessKeyId", out, sizeof(out)),
                     AF_JSON_STRING);
        CHECK_STR_EQ(out, "ASIA\"q\\/\n");
        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "Utf", out, sizeof(out)),
                     AF_JSON_STRING);
        CHECK_STR_EQ(out, "\xc3\xa9\xf0\x9f\x98\x80");
        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "Version", out, sizeof(out)),
                     AF_JSON_NUMBER);
        CHECK_STR_EQ(out, "1");
        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "F", out, sizeof(out)),
                     AF_JSON_NUMBER);
        CHECK_STR_EQ(out, "-1.5e+3");
        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "T", out, sizeof(out)),
                     AF_JSON_LITERAL);
        CHECK_STR_EQ(out, "true");
        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "N", out, sizeof(out)),
                     AF_JSON_LITERAL);
        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "Nested", out, sizeof(out)),
                     AF_JSON_OTHER);
        CHECK_STR_EQ(out, "");
        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "Dup", out, sizeof(out)),
                     AF_JSON_STRING);
        CHECK_STR_EQ(out, "two");
        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "Empty", out, sizeof(out)),
                     AF_JSON_STRING);
        CHECK_STR_EQ(out, "");
        CHECK_INT_EQ(af_json_get(doc, strlen(doc), "a", out, sizeof(out)), -ENOENT);
        CHECK_INT_EQ(af_json_get("{}", 2, "a", out, sizeof(out)), -ENOENT);
}

static void test_json_errors(void)
{
        static const char *const bad[] = {
                "",
                "[]",
                "{\"a\":1,}",
                "{\"a\" 1}",
                "{\"a\":\"unterminated}",
                "{\"a\":\"raw\ncontrol\"}",
                "{\"a\":\"\\ud800\"}",      /* lone high surrogate */
                "{\"a\":\"\\udc00\"}",      /* lone low surrogate */
                "{\"a\":\"\\x41\"}",        /* not a JSON escape */
                "{\"a\":\"\\u12\"}",
                "{\"a\":01}",
                "{\"a\":1.}",
                "{\"a\":tru}",
                "{\"a\":1} trailing",
                "{\"a\":1}{",
                "{\"a\":[1,2}",
        };
        char out[16] = "keep", deep[200];
        size_t n = 0;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = af_json_get(bad[i], strlen(bad[i]), "a", out, sizeof(out));

                if (!CHECK_INT_EQ(r, -EBADMSG))
                        fprintf(stderr, "    input: %s\n", bad[i]);
        }
        CHECK_STR_EQ(out, "keep");
        /* too long for @out: nothing written */
        CHECK_INT_EQ(af_json_get("{\"a\":\"0123456789abcdef\"}", 24, "a", out,
                                       sizeof(out)),
                     -E2BIG);
        CHECK_STR_EQ(out, "keep");
        /* the length bounds the parse, whatever follows in memory */
        CHECK_INT_EQ(af_json_get("{\"a\":\"x\"}", 7, "a", out, sizeof(out)), -EBADMSG);
        /* nesting is bounded */
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"x\":");
        for (int i = 0; i < 40; i++)
                deep[n++] = '[';
        for (int i = 0; i < 40; i++)
                deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = '\0';
        CHECK_INT_EQ(af_json_get(deep, n, "x", out, sizeof(out)), -EBADMSG);
}

static void test_quote(void)
{
        static const struct {
                const char *in, *want;
        } cases[] = {
                { "", "\"\"" },
                { "a\"b\\c", "\"a\\\"b\\\\c\"" },
                { "x\ny\rz\tw\b\f", "\"x\\ny\\rz\\tw\\b\\f\"" },
                { "\x01<>&", "\"\\u0001\\u003c\\u003e\\u0026\"" },
                { "\xc3\xa9", "\"\xc3\xa9\"" },                 /* UTF-8 copied */
                { "\xe2\x80\xa8", "\"\\u2028\"" },              /* line separator */
                { "a\xff" "b", "\"a\\ufffdb\"" },               /* invalid UTF-8 */
                { "\xc3", "\"\\ufffd\"" },                      /* cut short */
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct af_buf b;

                af_buf_init(&b, 0);
                CHECK_INT_EQ(af_json_quote(&b, cases[i].in), 0);
                if (!CHECK_STR_EQ(af_buf_str(&b), cases[i].want))
                        test_print_escaped("input", cases[i].in, strlen(cases[i].in));
                af_buf_done(&b);
        }
}

/* A quote that does not fit leaves the buffer as it was. */
static void test_quote_cap(void)
{
        struct af_buf b;

        af_buf_init(&b, 8);
        CHECK_INT_EQ(af_buf_adds(&b, "k="), 0);
        CHECK(af_json_quote(&b, "0123456789") < 0);
        CHECK_STR_EQ(af_buf_str(&b), "k=");
        af_buf_done(&b);
}

int main(void)
{
        RUN(test_json_values);
        RUN(test_json_errors);
        RUN(test_quote);
        RUN(test_quote_cap);
        return test_summary();
}
