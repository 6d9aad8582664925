/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for base/xml.c: an element found by path, the strict reader (STS answers), the
 * forgiving one (S3 answers into fixed fields), and the escaper.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/xml.h"
#include "test.h"

static const char sts_ok[] =
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
        "  <AssumeRoleWithWebIdentityResult>\n"
        "    <SubjectFromWebIdentityToken>system:serviceaccount:argo:wf"
        "</SubjectFromWebIdentityToken>\n"
        "    <AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/x/s</Arn></AssumedRoleUser>\n"
        "    <Credentials>\n"
        "      <SessionToken>FwoGZX&amp;&#65;&#x42;/+=</SessionToken>\n"
        "      <SecretAccessKey>wJalr/K7MDENG</SecretAccessKey>\n"
        "      <Expiration>2026-11-28T05:00:00Z</Expiration>\n"
        "      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>\n"
        "    </Credentials>\n"
        "    <Empty/>\n"
        "  </AssumeRoleWithWebIdentityResult>\n"
        "</AssumeRoleWithWebIdentityResponse>\n";

#define CRED "AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials/"

static void test_xml(void)
{
        static const char err[] =
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
                "<Type>Sender</Type><Code>InvalidIdentityToken</Code>"
                "<Message>Incorrect token audience &lt;sts&gt;</Message></Error>"
                "<RequestId>abc</RequestId></ErrorResponse>";
        char out[64] = "keep";

        CHECK_INT_EQ(af_xml_get(sts_ok, strlen(sts_ok), CRED "AccessKeyId", out,
                                      sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "ASIAEXAMPLE");
        CHECK_INT_EQ(af_xml_get(sts_ok, strlen(sts_ok), CRED "SessionToken", out,
                                      sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "FwoGZX&AB/+=");
        CHECK_INT_EQ(af_xml_get(sts_ok, strlen(sts_ok), CRED "Expiration", out,
                                      sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "2026-11-28T05:00:00Z");
        CHECK_INT_EQ(af_xml_get(sts_ok, strlen(sts_ok),
                                      "AssumeRoleWithWebIdentityResponse/"
                                      "AssumeRoleWithWebIdentityResult/Empty",
                                      out, sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "");
        /* the path is followed: Arn is not directly under the result */
        CHECK_INT_EQ(af_xml_get(sts_ok, strlen(sts_ok),
                                      "AssumeRoleWithWebIdentityResponse/Credentials/Arn", out,
                                      sizeof(out)),
                     -ENOENT);
        CHECK_INT_EQ(af_xml_get(err, strlen(err), "ErrorResponse/Error/Code", out,
                                      sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "InvalidIdentityToken");
        CHECK_INT_EQ(af_xml_get(err, strlen(err), "ErrorResponse/Error/Message", out,
                                      sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "Incorrect token audience <sts>");
        /* <Error> is not <ErrorResponse>'s prefix match */
        CHECK_INT_EQ(af_xml_get(err, strlen(err), "Error/Code", out, sizeof(out)), 0);
        CHECK_INT_EQ(af_xml_get(err, strlen(err), "Err", out, sizeof(out)), -ENOENT);
        CHECK_INT_EQ(af_xml_get("<a>\n  v &amp; w \n</a>", 21, "a", out, sizeof(out)), 0);
        CHECK_STR_EQ(out, "v & w");
        CHECK_INT_EQ(af_xml_get(sts_ok, strlen(sts_ok), CRED "Missing", out, sizeof(out)),
                     -ENOENT);
        snprintf(out, sizeof(out), "keep");
        CHECK_INT_EQ(af_xml_get("<a><b>x</a>", 11, "a/b", out, sizeof(out)), -EBADMSG);
        CHECK_INT_EQ(af_xml_get("<a>&bogus;</a>", 14, "a", out, sizeof(out)), -EBADMSG);
        CHECK_INT_EQ(af_xml_get("<a>&#0;</a>", 11, "a", out, sizeof(out)), -EBADMSG);
        CHECK_INT_EQ(af_xml_get("<a>0123456789</a>", 17, "a", out, 5), -E2BIG);
        CHECK_STR_EQ(out, "keep");
        /* bounded by the length */
        CHECK_INT_EQ(af_xml_get("<a>x</a>", 5, "a", out, sizeof(out)), -EBADMSG);
}

/* S3 answers into fixed fields: "" when absent, cut to fit, unknown references kept. */
static void test_copy(void)
{
        static const char s3err[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
                "<Message>The key &quot;a&amp;b&quot; &nbsp;does not exist &#x41;</Message>"
                "<RequestId>tx1</RequestId></Error>";
        char out[64], small[5];

        af_xml_copy(s3err, strlen(s3err), "Code", out, sizeof(out));
        CHECK_STR_EQ(out, "NoSuchKey");
        af_xml_copy(s3err, strlen(s3err), "Error/Message", out, sizeof(out));
        CHECK_STR_EQ(out, "The key \"a&b\" &nbsp;does not exist A");
        af_xml_copy(s3err, strlen(s3err), "HostId", out, sizeof(out));
        CHECK_STR_EQ(out, "");
        af_xml_copy(s3err, strlen(s3err), "Code", small, sizeof(small));
        CHECK_STR_EQ(small, "NoSu");
        /* not closed: nothing */
        af_xml_copy("<ETag>abc", 9, "ETag", out, sizeof(out));
        CHECK_STR_EQ(out, "");
        /* whitespace kept as written */
        af_xml_copy("<a> x </a>", 10, "a", out, sizeof(out));
        CHECK_STR_EQ(out, " x ");
}

static void test_find(void)
{
        static const char doc[] = "<R><Part><N>1</N></Part><Part><N>2</N></Part></R>";
        const char *a, *b;

        CHECK_INT_EQ(af_xml_find(doc, strlen(doc), "R/Part", &a, &b), 0);
        CHECK_INT_EQ(b - a, (long long)strlen("<N>1</N>"));
        /* a later element: search again after the first */
        CHECK_INT_EQ(af_xml_find(b, strlen(b), "Part/N", &a, &b), 0);
        CHECK_INT_EQ(*a, '2');
        CHECK_INT_EQ(af_xml_find(doc, strlen(doc), "R//N", &a, &b), -EINVAL);
}

static void test_escape(void)
{
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_xml_escape(&b, "a<b>&\"c'd"), 0);
        CHECK_STR_EQ(af_buf_str(&b), "a&lt;b&gt;&amp;&quot;c&apos;d");
        af_buf_done(&b);
}

int main(void)
{
        RUN(test_xml);
        RUN(test_copy);
        RUN(test_find);
        RUN(test_escape);
        return test_summary();
}
