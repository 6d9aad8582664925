/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for s3_messages.c, the S3 client's pure half: addressing and URLs (path style
 * and virtual-hosted), the header sets a request signs, the checksum plan and the sums of a
 * body in memory, the S3 -> errno table, the XML bodies sent, the copy headers and the
 * UploadPartCopy request as signed, and the answers read (Error, CopyObjectResult,
 * CopyPartResult, CompleteMultipartUploadResult, ListParts, ListMultipartUploads).
 *
 * Expected values are written from S3's documentation (REST API: Common Request Headers,
 * Error Responses, ListParts, ListMultipartUploads, CopyObject, UploadPartCopy) and from the
 * digests' own definitions, not from the code's output.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/s3_int.h"
#include "base/xml.h"
#include "test.h"

/* A client as af_s3_client_new() leaves it, without a curl handle or credentials. */
static struct af_s3_client client(const char *scheme, const char *host, enum af_addressing a)
{
        return (struct af_s3_client){ .scheme = (char *)scheme,
                                      .host = (char *)host,
                                      .region = (char *)"us-east-1",
                                      .addressing = a };
}

/* ---- addressing ---------------------------------------------------------------------------- */

static void test_virtual_hosted(void)
{
        struct af_s3_client aws = client("https", "s3.eu-west-1.amazonaws.com", AF_ADDRESSING_AUTO);
        struct af_s3_client cn = client("https", "s3.cn-north-1.amazonaws.com.cn", 0);
        struct af_s3_client ceph = client("http", "127.0.0.1:7480", AF_ADDRESSING_AUTO);
        struct af_s3_client forced = client("http", "127.0.0.1:7480", AF_ADDRESSING_VIRTUAL);
        struct af_s3_client path = client("https", "s3.amazonaws.com", AF_ADDRESSING_PATH);

        CHECK(af_s3_virtual_hosted(&aws, "my-bucket"));
        CHECK(af_s3_virtual_hosted(&cn, "my-bucket"));
        CHECK(!af_s3_virtual_hosted(&ceph, "my-bucket"));
        CHECK(af_s3_virtual_hosted(&forced, "my-bucket"));
        CHECK(!af_s3_virtual_hosted(&path, "my-bucket"));
        /* names that cannot be a DNS label (or, with TLS, one the certificate covers) */
        CHECK(!af_s3_virtual_hosted(&aws, "My_Bucket"));
        CHECK(!af_s3_virtual_hosted(&aws, "ab"));
        CHECK(!af_s3_virtual_hosted(&aws, "-bucket"));
        CHECK(!af_s3_virtual_hosted(&aws, "dotted.bucket"));
        aws.scheme = (char *)"http";
        CHECK(af_s3_virtual_hosted(&aws, "dotted.bucket"));
}

static void test_target_path_style(void)
{
        struct af_s3_client c = client("http", "127.0.0.1:7480", AF_ADDRESSING_AUTO);
        struct af_sigv4_param q[2] = { { "partNumber", "3" }, { "uploadId", "a b+c" } };
        struct af_s3_target t;

        af_s3_target_init(&t);
        CHECK_INT_EQ(af_s3_target_build(&c, "bkt", "wf/pod 1/out+x.txt", q, 2, &t), 0);
        CHECK_STR_EQ(af_buf_str(&t.host), "127.0.0.1:7480");
        /* the key is encoded once, '/' kept; the query sorted and encoded */
        CHECK_STR_EQ(af_buf_str(&t.uri), "/bkt/wf/pod%201/out%2Bx.txt");
        CHECK_STR_EQ(af_buf_str(&t.url), "http://127.0.0.1:7480/bkt/wf/pod%201/out%2Bx.txt"
                                         "?partNumber=3&uploadId=a%20b%2Bc");
        af_s3_target_done(&t);

        af_s3_target_init(&t); /* a bucket operation */
        CHECK_INT_EQ(af_s3_target_build(&c, "bkt", NULL, NULL, 0, &t), 0);
        CHECK_STR_EQ(af_buf_str(&t.url), "http://127.0.0.1:7480/bkt");
        af_s3_target_done(&t);
}

static void test_target_virtual_hosted(void)
{
        struct af_s3_client c = client("https", "s3.eu-west-1.amazonaws.com", AF_ADDRESSING_AUTO);
        struct af_sigv4_param q[1] = { { "uploads", NULL } };
        struct af_s3_target t;

        af_s3_target_init(&t);
        CHECK_INT_EQ(af_s3_target_build(&c, "bkt-1", "d\xc3\xa9j\xc3\xa0/k", q, 1, &t), 0);
        CHECK_STR_EQ(af_buf_str(&t.host), "bkt-1.s3.eu-west-1.amazonaws.com");
        CHECK_STR_EQ(af_buf_str(&t.uri), "/d%C3%A9j%C3%A0/k");
        CHECK_STR_EQ(af_buf_str(&t.url),
                     "https://bkt-1.s3.eu-west-1.amazonaws.com/d%C3%A9j%C3%A0/k?uploads=");
        af_s3_target_done(&t);

        af_s3_target_init(&t);
        CHECK_INT_EQ(af_s3_target_build(&c, "bkt-1", NULL, NULL, 0, &t), 0);
        CHECK_STR_EQ(af_buf_str(&t.url), "https://bkt-1.s3.eu-west-1.amazonaws.com/");
        af_s3_target_done(&t);
}

static void test_build_uri_copy_source(void)
{
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_s3_build_uri("src", "a b/c&d", &b), 0);
        CHECK_STR_EQ(af_buf_str(&b), "/src/a%20b/c%26d");
        af_buf_done(&b);
}

/* ---- header sets --------------------------------------------------------------------------- */

static void test_signed_headers(void)
{
        struct af_sigv4_header extra[2] = { { "content-md5", "X" }, { "x-amz-tagging", "k=v" } };
        struct af_sigv4_header h[4 + AF_S3_MAX_EXTRA];
        size_t n;

        n = af_s3_signed_headers("h", "20261128T040000Z", "UNSIGNED-PAYLOAD", "", extra, 2, h);
        if (CHECK_INT_EQ(n, 5)) {
                CHECK_STR_EQ(h[0].name, "host");
                CHECK_STR_EQ(h[1].name, "x-amz-date");
                CHECK_STR_EQ(h[1].value, "20261128T040000Z");
                CHECK_STR_EQ(h[2].name, "x-amz-content-sha256");
                CHECK_STR_EQ(h[3].name, "content-md5");
                CHECK_STR_EQ(h[4].value, "k=v");
        }
        n = af_s3_signed_headers("h", "d", "p", "TOKEN", NULL, 0, h);
        if (CHECK_INT_EQ(n, 4)) {
                CHECK_STR_EQ(h[3].name, "x-amz-security-token");
                CHECK_STR_EQ(h[3].value, "TOKEN");
        }
}

static const char *header(const struct af_sigv4_header *h, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(h[i].name, name) == 0)
                        return h[i].value;
        return NULL;
}

static void test_object_headers(void)
{
        static const struct af_s3_kv meta[] = { { "team", "ml" } };
        static const struct af_s3_kv fmeta[] = { { "mode", "0644" }, { "mtime", "1" } };
        struct af_s3_object_opts o = { .sse = "aws:kms",
                                       .sse_kms_key_id = "key-1",
                                       .storage_class = "STANDARD_IA",
                                       .tagging = "a=b",
                                       .metadata = meta,
                                       .nmetadata = 1,
                                       .no_overwrite = true };
        struct af_s3_client c = client("https", "s3.amazonaws.com", 0);
        struct af_sigv4_header h[AF_S3_MAX_EXTRA];
        char names[AF_S3_MAX_EXTRA][AF_S3_META_NAME];
        size_t n;

        /* no options: the Content-Type of the key's extension only */
        n = af_s3_object_headers(&c, "dir/report.JSON", h, AF_S3_MAX_EXTRA, names, true);
        CHECK_INT_EQ(n, 1);
        CHECK_STR_EQ(header(h, n, "content-type"), "application/json");

        c.object = &o;
        c.file_meta = fmeta;
        c.nfile_meta = 2;
        n = af_s3_object_headers(&c, "out.tgz", h, AF_S3_MAX_EXTRA, names, true);
        CHECK_INT_EQ(n, 9);
        CHECK_STR_EQ(header(h, n, "content-type"), "application/gzip");
        CHECK_STR_EQ(header(h, n, "x-amz-server-side-encryption"), "aws:kms");
        CHECK_STR_EQ(header(h, n, "x-amz-server-side-encryption-aws-kms-key-id"), "key-1");
        CHECK_STR_EQ(header(h, n, "x-amz-storage-class"), "STANDARD_IA");
        CHECK_STR_EQ(header(h, n, "x-amz-tagging"), "a=b");
        CHECK_STR_EQ(header(h, n, "if-none-match"), "*");
        CHECK_STR_EQ(header(h, n, "x-amz-meta-team"), "ml");
        CHECK_STR_EQ(header(h, n, "x-amz-meta-mode"), "0644");
        CHECK_STR_EQ(header(h, n, "x-amz-meta-mtime"), "1");

        /* CreateMultipartUpload and CopyObject: no If-None-Match; no Content-Type when off */
        o.no_content_type = true;
        n = af_s3_object_headers(&c, "out.tgz", h, AF_S3_MAX_EXTRA, names, false);
        CHECK_INT_EQ(n, 7);
        CHECK(header(h, n, "if-none-match") == NULL);
        CHECK(header(h, n, "content-type") == NULL);
}

static void test_content_type(void)
{
        CHECK_STR_EQ(af_s3_content_type("a/b/c.txt"), "text/plain; charset=utf-8");
        CHECK_STR_EQ(af_s3_content_type("x.parquet"), "application/vnd.apache.parquet");
        CHECK_STR_EQ(af_s3_content_type("dir.d/noext"), "application/octet-stream");
        CHECK_STR_EQ(af_s3_content_type("x.unknown"), "application/octet-stream");
}

/* ---- checksums ----------------------------------------------------------------------------- */

static void test_plan(void)
{
        struct af_s3_client http = client("http", "h", 0), https = client("https", "h", 0);
        struct af_s3_sums s;

        /* auto over http: CRC32C and MD5 until the server is known; the signed Content-MD5
         * protects the body, so the payload is not hashed a second time */
        af_s3_plan(&http, false, 0, &s);
        CHECK(!s.sha && s.crc && s.md5);
        CHECK_STR_EQ(s.sha_hex, "UNSIGNED-PAYLOAD");
        /* ... a server that verifies CRC32C: CRC32C alone is no signed digest, so the
         * payload is signed */
        af_s3_plan(&http, false, 1, &s);
        CHECK(s.sha && s.crc && !s.md5);
        /* ... parts: MD5, payload unsigned */
        af_s3_plan(&http, true, 1, &s);
        CHECK(!s.sha && s.md5);
        /* auto over https, a server that verifies CRC32C: CRC32C only, payload unsigned */
        af_s3_plan(&https, false, 1, &s);
        CHECK(!s.sha && s.crc && !s.md5);
        CHECK_STR_EQ(s.sha_hex, "UNSIGNED-PAYLOAD");
        /* ... one that does not: MD5 */
        af_s3_plan(&https, false, -1, &s);
        CHECK(!s.sha && !s.crc && s.md5);
        /* parts in auto mode: MD5 (a CRC32C upload must say so when it is created) */
        af_s3_plan(&https, true, 1, &s);
        CHECK(!s.crc && s.md5);
        https.checksum = AF_CHECKSUM_SHA256;
        af_s3_plan(&https, false, 0, &s);
        CHECK(s.sha && !s.crc && !s.md5);
        https.checksum = AF_CHECKSUM_NONE;
        af_s3_plan(&https, false, 0, &s);
        CHECK(!s.sha && !s.crc && !s.md5);
}

static void test_sums(void)
{
        struct af_s3_sums s = { .sha = true, .md5 = true, .crc = true };
        struct af_sigv4_header h[2];

        CHECK_INT_EQ(af_s3_sum_mem("hello world", 11, &s), 0);
        CHECK_STR_EQ(s.sha_hex, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        CHECK_STR_EQ(s.md5_hex, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        CHECK_STR_EQ(s.md5_b64, "XrY7u+Ae7tCTyyK7j1rNww==");
        CHECK_INT_EQ(s.crc_value, 0xc99465aa);
        CHECK_STR_EQ(s.crc_b64, "yZRlqg==");
        if (CHECK_INT_EQ(af_s3_sum_headers(&s, h), 2)) {
                CHECK_STR_EQ(h[0].name, "content-md5");
                CHECK_STR_EQ(h[1].name, "x-amz-checksum-crc32c");
                CHECK_STR_EQ(h[1].value, "yZRlqg==");
        }
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_errno_table(void)
{
        static const struct {
                long status;
                const char *code;
                int err;
        } cases[] = {
                { 403, "AccessDenied", -EACCES },
                { 403, "SignatureDoesNotMatch", -EACCES },
                { 403, "InvalidAccessKeyId", -EACCES },
                { 400, "ExpiredToken", -EKEYEXPIRED },
                { 404, "NoSuchBucket", -ENOENT },
                { 404, "NoSuchKey", -ENOENT },
                { 404, "NoSuchUpload", -ENOENT },
                { 412, "PreconditionFailed", -EEXIST },
                { 400, "BadDigest", -EBADMSG },
                { 400, "XAmzContentSHA256Mismatch", -EBADMSG },
                { 400, "InvalidDigest", -EBADMSG },
                { 403, "RequestTimeTooSkewed", -ETIME },
                { 503, "SlowDown", -EAGAIN },
                { 400, "RequestTimeout", -EAGAIN },
                { 500, "InternalError", -EAGAIN },
                { 503, "ServiceUnavailable", -EAGAIN },
                { 501, "NotImplemented", -EOPNOTSUPP }, /* a missing feature stays missing */
                /* by status alone (HEAD answers have no body) */
                { 429, "", -EAGAIN },
                { 502, "", -EAGAIN },
                { 501, "", -EOPNOTSUPP },
                { 401, "", -EACCES },
                { 403, "Forbidden", -EACCES },
                { 404, "NotFound", -ENOENT },
                { 412, "", -EEXIST },
                { 400, "InvalidArgument", -EINVAL },
                /* a 200 carrying an error, read as a 500 */
                { 500, "SomethingElse", -EAGAIN },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                if (!CHECK_INT_EQ(af_s3_errno(cases[i].status, cases[i].code), cases[i].err))
                        fprintf(stderr, "    %ld %s\n", cases[i].status, cases[i].code);
        CHECK(af_s3_retryable(-EAGAIN) && af_s3_retryable(-ETIME) && af_s3_retryable(-EBADMSG));
        CHECK(af_s3_retryable(-EKEYEXPIRED) && af_s3_retryable(-ECONNRESET));
        CHECK(!af_s3_retryable(-EACCES) && !af_s3_retryable(-ENOENT) && !af_s3_retryable(-EEXIST));
        CHECK(!af_s3_retryable(-EOPNOTSUPP));
}

static void test_fill_error(void)
{
        static const char body[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
                "<Message>The specified key &quot;a&lt;b&quot; does not exist.</Message>"
                "<Key>a&lt;b</Key><RequestId>4442587FB7D0A2F9</RequestId></Error>";
        struct af_s3_error e;
        struct af_buf b;

        af_s3_fill_error(&e, 404, body, strlen(body), "hdr-id");
        CHECK_INT_EQ(e.http_status, 404);
        CHECK_STR_EQ(e.code, "NoSuchKey");
        CHECK_STR_EQ(e.message, "The specified key \"a<b\" does not exist.");
        CHECK_STR_EQ(e.request_id, "4442587FB7D0A2F9");
        /* HEAD: no body; the status named, the id from x-amz-request-id */
        af_s3_fill_error(&e, 403, "", 0, "hdr-id");
        CHECK_STR_EQ(e.code, "Forbidden");
        CHECK_STR_EQ(e.request_id, "hdr-id");
        af_s3_fill_error(&e, 503, "", 0, "");
        CHECK_STR_EQ(e.code, "ServerError");
        af_s3_fill_error(&e, 412, "", 0, "");
        CHECK_STR_EQ(e.code, "PreconditionFailed");

        af_buf_init(&b, 0);
        af_s3_fill_error(&e, 404, body, strlen(body), "");
        af_s3_error_format(&e, &b);
        CHECK_STR_EQ(af_buf_str(&b), "HTTP 404 NoSuchKey: The specified key \"a<b\" does not "
                                     "exist. (request id 4442587FB7D0A2F9)");
        af_buf_reset(&b);
        memset(&e, 0, sizeof(e));
        snprintf(e.code, sizeof(e.code), "Couldn't connect to server");
        snprintf(e.message, sizeof(e.message), "127.0.0.1:1");
        af_s3_error_format(&e, &b);
        CHECK_STR_EQ(af_buf_str(&b), "Couldn't connect to server: 127.0.0.1:1");
        af_buf_done(&b);
}

/* ---- bodies sent --------------------------------------------------------------------------- */

static void test_tagging_xml(void)
{
        static const struct af_s3_kv tags[] = { { "team", "a&b" }, { "k<", "\"v'" } };
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_s3_tagging_xml(tags, 2, &b), 0);
        CHECK_STR_EQ(af_buf_str(&b), "<Tagging><TagSet><Tag><Key>team</Key><Value>a&amp;b</Value>"
                                     "</Tag><Tag><Key>k&lt;</Key><Value>&quot;v&apos;</Value>"
                                     "</Tag></TagSet></Tagging>");
        af_buf_done(&b);
}

static void test_complete_xml(void)
{
        struct af_s3_part parts[2] = { { .number = 1, .etag = "\"e1\"", .crc32c = "AAAAAA==" },
                                       { .number = 2, .etag = "\"e2\"" } };
        struct af_buf b;

        af_buf_init(&b, 0);
        CHECK_INT_EQ(af_s3_complete_xml(parts, 2, &b), 0);
        CHECK_STR_EQ(af_buf_str(&b), "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                                     "<ETag>\"e1\"</ETag><ChecksumCRC32C>AAAAAA==</ChecksumCRC32C>"
                                     "</Part><Part><PartNumber>2</PartNumber><ETag>\"e2\"</ETag>"
                                     "</Part></CompleteMultipartUpload>");
        af_buf_done(&b);
}

/* ---- UploadPartCopy -------------------------------------------------------------------------- */

static void test_copy_source_headers(void)
{
        struct af_sigv4_header h[3];
        size_t n;

        /* CopyObject: the source and the ETag it must still have */
        n = af_s3_copy_source_headers("/b/k", "\"e\"", NULL, h);
        if (CHECK_INT_EQ(n, 2)) {
                CHECK_STR_EQ(header(h, n, "x-amz-copy-source"), "/b/k");
                CHECK_STR_EQ(header(h, n, "x-amz-copy-source-if-match"), "\"e\"");
        }
        /* UploadPartCopy: and the range; no ETag known (radosgw's multipart answers): none */
        n = af_s3_copy_source_headers("/b/k", "", "bytes=0-9", h);
        if (CHECK_INT_EQ(n, 2)) {
                CHECK_STR_EQ(header(h, n, "x-amz-copy-source-range"), "bytes=0-9");
                CHECK(header(h, n, "x-amz-copy-source-if-match") == NULL);
        }
        CHECK_INT_EQ(af_s3_copy_source_headers("/b/k", "\"e\"", "bytes=0-9", h), 3);
}

static void test_copy_range(void)
{
        char r[64];

        /* S3's UploadPartCopy: "bytes=first-last", both included (the first 8 MiB: 0-8388607) */
        CHECK_INT_EQ(af_s3_copy_range(0, 8388607, r, sizeof(r)), 0);
        CHECK_STR_EQ(r, "bytes=0-8388607");
        CHECK_INT_EQ(af_s3_copy_range(5497558138880ULL, 5497558138880ULL, r, sizeof(r)), 0);
        CHECK_STR_EQ(r, "bytes=5497558138880-5497558138880"); /* one byte at 5 TiB */
        /* 5 GiB exactly is the largest part; one byte more, or an empty range, is refused */
        CHECK_INT_EQ(af_s3_copy_range(0, (5ULL << 30) - 1, r, sizeof(r)), 0);
        CHECK_INT_EQ(af_s3_copy_range(0, 5ULL << 30, r, sizeof(r)), -EINVAL);
        CHECK_INT_EQ(af_s3_copy_range(10, 9, r, sizeof(r)), -EINVAL);
        CHECK_INT_EQ(af_s3_copy_range(0, 8388607, r, 10), -ENAMETOOLONG);
}

/* The whole request as it is signed: PUT of the target key with partNumber and uploadId, no
 * body, and the copy headers among the signed ones (S3 rejects a copy source that is not
 * signed). Written from S3's UploadPartCopy and SigV4 documentation. */
static void test_upload_part_copy_canonical_request(void)
{
        struct af_s3_client c = client("http", "127.0.0.1:7480", AF_ADDRESSING_PATH);
        struct af_sigv4_param q[2] = { { "partNumber", "2" }, { "uploadId", "2~abc" } };
        struct af_sigv4_header extra[3], h[4 + AF_S3_MAX_EXTRA];
        struct af_s3_target t;
        struct af_buf src, canon, signed_h;
        char range[64];
        size_t ne, n;

        af_buf_init(&src, 0);
        af_buf_init(&canon, 0);
        af_buf_init(&signed_h, 0);
        af_s3_target_init(&t);
        CHECK_INT_EQ(af_s3_build_uri("bkt", "wf/a b.bin", &src), 0);
        CHECK_INT_EQ(af_s3_copy_range(8388608, 16777215, range, sizeof(range)), 0);
        ne = af_s3_copy_source_headers(af_buf_str(&src), "\"d41d8cd98f00b204e9800998ecf8427e\"",
                                       range, extra);
        CHECK_INT_EQ(af_s3_target_build(&c, "bkt", "wf/b.csv", q, 2, &t), 0);
        n = af_s3_signed_headers(af_buf_str(&t.host), "20261204T210000Z", af_s3_empty_sha256, "",
                                 extra, ne, h);
        CHECK_INT_EQ(af_sigv4_canonical_request(
                             &(struct af_sigv4_req){ .method = "PUT",
                                                     .uri = af_buf_str(&t.uri),
                                                     .query = q,
                                                     .nquery = 2,
                                                     .headers = h,
                                                     .nheaders = n,
                                                     .payload_hash = af_s3_empty_sha256 },
                             &canon, &signed_h),
                     0);
        CHECK_STR_EQ(af_buf_str(&t.url),
                     "http://127.0.0.1:7480/bkt/wf/b.csv?partNumber=2&uploadId=2~abc");
        CHECK_STR_EQ(af_buf_str(&canon),
                     "PUT\n"
                     "/bkt/wf/b.csv\n"
                     "partNumber=2&uploadId=2~abc\n"
                     "host:127.0.0.1:7480\n"
                     "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
                     "7852b855\n"
                     "x-amz-copy-source:/bkt/wf/a%20b.bin\n"
                     "x-amz-copy-source-if-match:\"d41d8cd98f00b204e9800998ecf8427e\"\n"
                     "x-amz-copy-source-range:bytes=8388608-16777215\n"
                     "x-amz-date:20261204T210000Z\n"
                     "\n"
                     "host;x-amz-content-sha256;x-amz-copy-source;x-amz-copy-source-if-match;"
                     "x-amz-copy-source-range;x-amz-date\n"
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        CHECK_STR_EQ(af_buf_str(&signed_h),
                     "host;x-amz-content-sha256;x-amz-copy-source;x-amz-copy-source-if-match;"
                     "x-amz-copy-source-range;x-amz-date");
        af_s3_target_done(&t);
        af_buf_done(&signed_h);
        af_buf_done(&canon);
        af_buf_done(&src);
}

static void test_copy_part_answer(void)
{
        /* S3's CopyPartResult, and with a CRC32C upload its checksum; radosgw's, unquoted */
        static const char aws[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyPartResult>"
                                  "<LastModified>2026-12-04T21:00:00.000Z</LastModified>"
                                  "<ETag>&quot;0c4133de0bad7c253be776e1d5fd0300&quot;</ETag>"
                                  "<ChecksumCRC32C>yZRlqg==</ChecksumCRC32C></CopyPartResult>";
        static const char rgw[] = "<CopyPartResult><LastModified>2026-12-04T21:03:54.000Z"
                                  "</LastModified><ETag>0c4133de0bad7c253be776e1d5fd0300</ETag>"
                                  "</CopyPartResult>";
        struct af_s3_part p = { .number = 7 };

        af_s3_parse_copy_part(aws, strlen(aws), &p);
        CHECK_STR_EQ(p.etag, "\"0c4133de0bad7c253be776e1d5fd0300\"");
        CHECK_STR_EQ(p.crc32c, "yZRlqg==");
        CHECK_INT_EQ(p.number, 7);
        af_s3_parse_copy_part(rgw, strlen(rgw), &p);
        CHECK_STR_EQ(p.etag, "\"0c4133de0bad7c253be776e1d5fd0300\"");
        CHECK_STR_EQ(p.crc32c, "");
        af_s3_parse_copy_part("<CopyPartResult/>", 17, &p);
        CHECK_STR_EQ(p.etag, "");
}

/* ---- answers read -------------------------------------------------------------------------- */

static void test_complete_and_copy_answers(void)
{
        static const char complete[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult "
                "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>http://h/b/k"
                "</Location><Bucket>b</Bucket><Key>k</Key>"
                "<ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>"
                "</CompleteMultipartUploadResult>";
        static const char failed[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>"
                "<Message>We encountered an internal error.</Message></Error>";
        static const char copy_aws[] = "<CopyObjectResult><LastModified>2026-11-28T04:00:00Z"
                                       "</LastModified><ETag>\"9b2cf535f27731c974343645a3985328\""
                                       "</ETag></CopyObjectResult>";
        static const char copy_rgw[] = "<CopyObjectResult><LastModified>x</LastModified>"
                                       "<ETag>9b2cf535f27731c974343645a3985328</ETag>"
                                       "</CopyObjectResult>";
        struct af_s3_put_result res;

        CHECK(!af_s3_is_error_body(complete));
        CHECK(af_s3_is_error_body(failed));
        af_xml_copy(complete, strlen(complete), "ETag", res.etag, sizeof(res.etag));
        CHECK_STR_EQ(res.etag, "\"3858f62230ac3c915f300c664312c11f-9\"");
        af_s3_copy_etag(copy_aws, strlen(copy_aws), res.etag, sizeof(res.etag));
        CHECK_STR_EQ(res.etag, "\"9b2cf535f27731c974343645a3985328\"");
        /* radosgw leaves the quotes out: added, as in every other answer */
        af_s3_copy_etag(copy_rgw, strlen(copy_rgw), res.etag, sizeof(res.etag));
        CHECK_STR_EQ(res.etag, "\"9b2cf535f27731c974343645a3985328\"");
        af_s3_copy_etag("<CopyObjectResult/>", 19, res.etag, sizeof(res.etag));
        CHECK_STR_EQ(res.etag, "");
}

static void test_parse_parts(void)
{
        static const char page1[] =
                "<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>"
                "<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2"
                "</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"
                "<Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag><Size>5242880</Size>"
                "</Part><Part><PartNumber>2</PartNumber><ETag>\"e2\"</ETag>"
                "<ChecksumCRC32C>yZRlqg==</ChecksumCRC32C><Size>7</Size></Part>"
                "</ListPartsResult>";
        static const char page2[] =
                "<ListPartsResult><IsTruncated>false</IsTruncated><NextPartNumberMarker>3"
                "</NextPartNumberMarker><Part><PartNumber>3</PartNumber><ETag>\"e3\"</ETag>"
                "<Size>1</Size></Part></ListPartsResult>";
        struct af_s3_part_list l = { 0 };
        char next[16];

        CHECK_INT_EQ(af_s3_parse_parts(page1, strlen(page1), &l, next, sizeof(next)), 0);
        CHECK_STR_EQ(next, "2");
        CHECK_INT_EQ(af_s3_parse_parts(page2, strlen(page2), &l, next, sizeof(next)), 0);
        CHECK_STR_EQ(next, ""); /* the last page */
        if (CHECK_INT_EQ(l.n, 3)) {
                CHECK_INT_EQ(l.parts[0].number, 1);
                CHECK_STR_EQ(l.parts[0].etag, "\"e1\"");
                /* part 1 has no checksum: it does not take part 2's */
                CHECK_STR_EQ(l.parts[0].crc32c, "");
                CHECK_INT_EQ(l.sizes[0], 5242880);
                CHECK_STR_EQ(l.parts[1].crc32c, "yZRlqg==");
                CHECK_INT_EQ(l.sizes[1], 7);
                CHECK_INT_EQ(l.parts[2].number, 3);
                CHECK(!l.parts[2].has_sum);
        }
        free(l.parts);
        free(l.sizes);
}

static void test_parse_uploads(void)
{
        static const char body[] =
                "<ListMultipartUploadsResult><Bucket>b</Bucket><Prefix>wf/a</Prefix>"
                "<Upload><Key>wf/a</Key><UploadId>id-1</UploadId></Upload>"
                "<Upload><Key>wf/ab</Key><UploadId>id-other</UploadId></Upload>"
                "<Upload><Key>wf/a</Key><UploadId>id-2</UploadId></Upload>"
                "</ListMultipartUploadsResult>";
        char **ids = NULL;
        size_t n = 0;

        CHECK_INT_EQ(af_s3_parse_uploads(body, strlen(body), "wf/a", &ids, &n), 0);
        if (CHECK_INT_EQ(n, 2)) {
                CHECK_STR_EQ(ids[0], "id-1");
                CHECK_STR_EQ(ids[1], "id-2");
        }
        while (n)
                free(ids[--n]);
        free(ids);
        CHECK_INT_EQ(af_s3_parse_uploads("<ListMultipartUploadsResult/>", 29, "k", &ids, &n), 0);
        CHECK_INT_EQ(n, 0);
        free(ids);
}

int main(void)
{
        RUN(test_virtual_hosted);
        RUN(test_target_path_style);
        RUN(test_target_virtual_hosted);
        RUN(test_build_uri_copy_source);
        RUN(test_signed_headers);
        RUN(test_object_headers);
        RUN(test_content_type);
        RUN(test_plan);
        RUN(test_sums);
        RUN(test_errno_table);
        RUN(test_fill_error);
        RUN(test_tagging_xml);
        RUN(test_complete_xml);
        RUN(test_copy_source_headers);
        RUN(test_copy_range);
        RUN(test_upload_part_copy_canonical_request);
        RUN(test_copy_part_answer);
        RUN(test_complete_and_copy_answers);
        RUN(test_parse_parts);
        RUN(test_parse_uploads);
        return test_summary();
}
