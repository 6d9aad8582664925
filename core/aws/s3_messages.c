/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The S3 messages, built and read without I/O: addressing and URLs, the header sets a
 * request signs, the checksum plan, the S3 -> errno table, the XML bodies sent and the
 * answers read. See s3_int.h; s3_client.c sends what is built here.
 *
 * Invariants: pure (the one piece of process state, whether the server verifies CRC32C, is
 * passed in); strings in header sets are borrowed, never copied; what S3 answered is read
 * with the forgiving XML reader into fixed fields, so a malformed answer gives "" fields
 * rather than an error here (the callers decide what a missing field means).
 */
#include "aws/s3_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xml.h"

const char af_s3_empty_sha256[] =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* ---- the S3 -> errno table ---------------------------------------------------------------- */

/*
 * S3 -> errno, in one place. Retryable ones map to EAGAIN-like codes (see af_s3_retryable).
 *   403, AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId  -> EACCES
 *   ExpiredToken                                                  -> EKEYEXPIRED
 *   404, NoSuchBucket, NoSuchKey, NoSuchUpload                    -> ENOENT
 *   412 PreconditionFailed                                        -> EEXIST
 *   BadDigest, XAmzContentSHA256Mismatch, InvalidDigest           -> EBADMSG (re-read, retry)
 *   RequestTimeTooSkewed                                          -> ETIME
 *   501, NotImplemented (the server lacks the feature: asking again
 *   cannot help)                                                  -> EOPNOTSUPP
 *   429, 5xx, SlowDown, RequestTimeout, InternalError,
 *   ServiceUnavailable                                            -> EAGAIN
 *   other 4xx                                                     -> EINVAL
 */
static const struct {
        const char *code;
        int err;
} code_map[] = {
        { "AccessDenied", -EACCES },
        { "SignatureDoesNotMatch", -EACCES },
        { "InvalidAccessKeyId", -EACCES },
        { "ExpiredToken", -EKEYEXPIRED },
        { "NoSuchBucket", -ENOENT },
        { "NoSuchKey", -ENOENT },
        { "NoSuchUpload", -ENOENT },
        { "PreconditionFailed", -EEXIST },
        { "BadDigest", -EBADMSG },
        { "XAmzContentSHA256Mismatch", -EBADMSG },
        { "InvalidDigest", -EBADMSG },
        { "RequestTimeTooSkewed", -ETIME },
        { "NotImplemented", -EOPNOTSUPP },
        { "SlowDown", -EAGAIN },
        { "RequestTimeout", -EAGAIN },
        { "InternalError", -EAGAIN },
        { "ServiceUnavailable", -EAGAIN },
};

int af_s3_errno(long status, const char *code)
{
        for (size_t i = 0; i < sizeof(code_map) / sizeof(code_map[0]); i++)
                if (strcmp(code, code_map[i].code) == 0)
                        return code_map[i].err;
        if (status == 501)
                return -EOPNOTSUPP;
        if (status == 429 || status >= 500)
                return -EAGAIN;
        if (status == 403 || status == 401)
                return -EACCES;
        if (status == 404)
                return -ENOENT;
        if (status == 412)
                return -EEXIST;
        return -EINVAL;
}

bool af_s3_retryable(int r)
{
        switch (r) {
        case -EAGAIN:
        case -ETIMEDOUT:
        case -ECONNREFUSED:
        case -ECONNRESET:
        case -EHOSTUNREACH:
        case -EBADMSG:
        case -ETIME:
        case -EKEYEXPIRED:
                return true;
        default:
                return false;
        }
}

void af_s3_error_format(const struct af_s3_error *e, struct af_buf *out)
{
        if (e->http_status)
                (void)af_buf_addf(out, "HTTP %d %s: %s (request id %s)", e->http_status,
                                  e->code[0] ? e->code : "-",
                                  e->message[0] ? e->message : "no message",
                                  e->request_id[0] ? e->request_id : "-");
        else
                (void)af_buf_addf(out, "%s: %s", e->code[0] ? e->code : "transport error",
                                  e->message);
}

void af_s3_fill_error(struct af_s3_error *err, long status, const char *body, size_t len,
                      const char *request_id)
{
        memset(err, 0, sizeof(*err));
        err->http_status = (int)status;
        af_xml_copy(body, len, "Code", err->code, sizeof(err->code));
        af_xml_copy(body, len, "Message", err->message, sizeof(err->message));
        af_xml_copy(body, len, "RequestId", err->request_id, sizeof(err->request_id));
        if (!err->request_id[0])
                snprintf(err->request_id, sizeof(err->request_id), "%s", request_id);
        if (!err->code[0]) {
                /* HEAD responses have no body: name the status the way S3 tools do. */
                const char *name = status == 403   ? "Forbidden"
                                   : status == 404 ? "NotFound"
                                   : status == 400 ? "BadRequest"
                                   : status == 412 ? "PreconditionFailed"
                                   : status >= 500 ? "ServerError"
                                                   : "";
                snprintf(err->code, sizeof(err->code), "%s", name);
        }
}

bool af_s3_is_error_body(const char *body)
{
        return strstr(body, "<Error>") != NULL;
}

/* ---- addressing --------------------------------------------------------------------------- */

/* A bucket name that can be a DNS label (and, with TLS, one that the certificate covers). */
static bool dns_bucket(const char *b, bool tls)
{
        size_t n = strlen(b);

        if (n < 3 || n > 63 || b[0] == '-' || b[n - 1] == '-' || b[0] == '.' || b[n - 1] == '.')
                return false;
        for (const char *p = b; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      (*p == '.' && !tls)))
                        return false;
        return true;
}

bool af_s3_virtual_hosted(const struct af_s3_client *c, const char *bucket)
{
        bool tls = strcmp(c->scheme, "https") == 0;
        size_t hl = strcspn(c->host, ":");

        switch (c->addressing) {
        case AF_ADDRESSING_PATH:
                return false;
        case AF_ADDRESSING_VIRTUAL:
                return true;
        case AF_ADDRESSING_AUTO:
        default:
                /* AWS itself prefers virtual-hosted requests; S3-compatible servers (MinIO,
                 * Ceph) are usually set up for path style. */
                return dns_bucket(bucket, tls) &&
                       ((hl > 14 && strncmp(c->host + hl - 14, ".amazonaws.com", 14) == 0) ||
                        (hl > 17 && strncmp(c->host + hl - 17, ".amazonaws.com.cn", 17) == 0));
        }
}

int af_s3_build_uri(const char *bucket, const char *key, struct af_buf *uri)
{
        int r = af_buf_addc(uri, '/');

        if (r == 0 && bucket)
                r = af_sigv4_uri_encode(bucket, strlen(bucket), true, uri);
        if (r == 0 && key) {
                if (bucket)
                        r = af_buf_addc(uri, '/');
                /* S3 keys are URI-encoded once, '/' kept, in both the URL and the signature. */
                if (r == 0)
                        r = af_sigv4_uri_encode(key, strlen(key), false, uri);
        }
        return r;
}

void af_s3_target_init(struct af_s3_target *t)
{
        af_buf_init(&t->host, 512);
        af_buf_init(&t->uri, 0);
        af_buf_init(&t->url, 0);
}

void af_s3_target_done(struct af_s3_target *t)
{
        af_buf_done(&t->host);
        af_buf_done(&t->uri);
        af_buf_done(&t->url);
}

int af_s3_target_build(const struct af_s3_client *c, const char *bucket, const char *key,
                       const struct af_sigv4_param *q, size_t nq, struct af_s3_target *t)
{
        struct af_buf query;
        int r;

        af_buf_init(&query, 0);
        /* Virtual-hosted style: the bucket is part of the host name, not of the path. */
        if (af_s3_virtual_hosted(c, bucket)) {
                r = af_buf_addf(&t->host, "%s.%s", bucket, c->host);
                if (r == 0)
                        r = af_s3_build_uri(NULL, key, &t->uri);
        } else {
                r = af_buf_adds(&t->host, c->host);
                if (r == 0)
                        r = af_s3_build_uri(bucket, key, &t->uri);
        }
        if (r == 0)
                r = af_sigv4_canonical_query(q, nq, &query);
        if (r == 0)
                r = af_buf_addf(&t->url, "%s://%s%s%s%s", c->scheme, af_buf_str(&t->host),
                                af_buf_str(&t->uri), query.len ? "?" : "", af_buf_str(&query));
        af_buf_done(&query);
        return r;
}

/* ---- header sets -------------------------------------------------------------------------- */

size_t af_s3_signed_headers(const char *host, const char *amz_date, const char *payload_hash,
                            const char *session_token, const struct af_sigv4_header *extra,
                            size_t nextra, struct af_sigv4_header *h)
{
        size_t nh = 0, max = 4 + AF_S3_MAX_EXTRA;

        h[nh++] = (struct af_sigv4_header){ "host", host };
        h[nh++] = (struct af_sigv4_header){ "x-amz-date", amz_date };
        h[nh++] = (struct af_sigv4_header){ "x-amz-content-sha256", payload_hash };
        if (session_token[0])
                h[nh++] = (struct af_sigv4_header){ "x-amz-security-token", session_token };
        for (size_t i = 0; i < nextra && nh < max; i++)
                h[nh++] = extra[i];
        return nh;
}

static const struct {
        const char *ext;
        const char *type;
} mime_types[] = {
        /* Go's built-in mime table (what Argo's uploader uses), plus a few common outputs. */
        { ".avif", "image/avif" },
        { ".css", "text/css; charset=utf-8" },
        { ".gif", "image/gif" },
        { ".htm", "text/html; charset=utf-8" },
        { ".html", "text/html; charset=utf-8" },
        { ".jpeg", "image/jpeg" },
        { ".jpg", "image/jpeg" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".json", "application/json" },
        { ".mjs", "text/javascript; charset=utf-8" },
        { ".pdf", "application/pdf" },
        { ".png", "image/png" },
        { ".svg", "image/svg+xml" },
        { ".wasm", "application/wasm" },
        { ".webp", "image/webp" },
        { ".xml", "text/xml; charset=utf-8" },
        { ".txt", "text/plain; charset=utf-8" },
        { ".csv", "text/csv; charset=utf-8" },
        { ".log", "text/plain; charset=utf-8" },
        { ".md", "text/markdown; charset=utf-8" },
        { ".tgz", "application/gzip" },
        { ".gz", "application/gzip" },
        { ".zip", "application/zip" },
        { ".tar", "application/x-tar" },
        { ".parquet", "application/vnd.apache.parquet" },
};

const char *af_s3_content_type(const char *key)
{
        const char *slash = strrchr(key, '/');
        const char *dot = strrchr(slash ? slash : key, '.');

        if (dot)
                for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
                        if (strcasecmp(dot, mime_types[i].ext) == 0)
                                return mime_types[i].type;
        return "application/octet-stream";
}

static size_t add_file_meta(const struct af_s3_client *c, struct af_sigv4_header *h, size_t n,
                            size_t max, char names[][AF_S3_META_NAME])
{
        for (size_t i = 0; i < c->nfile_meta && n < max; i++) {
                snprintf(names[i], AF_S3_META_NAME, "x-amz-meta-%s", c->file_meta[i].key);
                h[n++] = (struct af_sigv4_header){ names[i], c->file_meta[i].value };
        }
        return n;
}

size_t af_s3_object_headers(const struct af_s3_client *c, const char *key,
                            struct af_sigv4_header *h, size_t max,
                            char names[][AF_S3_META_NAME], bool with_condition)
{
        const struct af_s3_object_opts *o = c->object;
        size_t n = 0;

        if (!o || !o->no_content_type)
                h[n++] = (struct af_sigv4_header){ "content-type", af_s3_content_type(key) };
        if (!o)
                return add_file_meta(c, h, n, max, names);
        if (o->sse)
                h[n++] = (struct af_sigv4_header){ "x-amz-server-side-encryption", o->sse };
        if (o->sse_kms_key_id)
                h[n++] = (struct af_sigv4_header){ "x-amz-server-side-encryption-aws-kms-key-id",
                                                   o->sse_kms_key_id };
        if (o->storage_class)
                h[n++] = (struct af_sigv4_header){ "x-amz-storage-class", o->storage_class };
        if (o->tagging)
                h[n++] = (struct af_sigv4_header){ "x-amz-tagging", o->tagging };
        /* If-None-Match belongs on PutObject and CompleteMultipartUpload (where S3 checks
         * it), not on CreateMultipartUpload: the caller says which. */
        if (o->no_overwrite && with_condition)
                h[n++] = (struct af_sigv4_header){ "if-none-match", "*" };
        for (size_t i = 0; i < o->nmetadata && n < max; i++) {
                snprintf(names[i], AF_S3_META_NAME, "x-amz-meta-%s", o->metadata[i].key);
                h[n++] = (struct af_sigv4_header){ names[i], o->metadata[i].value };
        }
        return add_file_meta(c, h, n, max, names + o->nmetadata);
}

/* ---- copies ---------------------------------------------------------------------------------- */

size_t af_s3_copy_source_headers(const char *src, const char *src_etag, const char *range,
                                 struct af_sigv4_header *h)
{
        size_t n = 0;

        h[n++] = (struct af_sigv4_header){ "x-amz-copy-source", src };
        if (range)
                h[n++] = (struct af_sigv4_header){ "x-amz-copy-source-range", range };
        if (src_etag && src_etag[0])
                h[n++] = (struct af_sigv4_header){ "x-amz-copy-source-if-match", src_etag };
        return n;
}

int af_s3_copy_range(uint64_t first, uint64_t last, char *out, size_t n)
{
        int l;

        /* UploadPartCopy's range is inclusive at both ends, as HTTP's Range (RFC 9110 14.1.2),
         * and one part copies at most 5 GiB. */
        if (last < first || last - first >= AF_S3_MAX_PART)
                return -EINVAL;
        l = snprintf(out, n, "bytes=%llu-%llu", (unsigned long long)first,
                     (unsigned long long)last);
        return l < 0 || (size_t)l >= n ? -ENAMETOOLONG : 0;
}

/* ---- checksums (the plan; s3_body.c computes them) ----------------------------------------- */

void af_s3_plan(const struct af_s3_client *c, bool part, int crc_state, struct af_s3_sums *s)
{
        memset(s, 0, sizeof(*s));
        switch (c->checksum) {
        case AF_CHECKSUM_SHA256:
                s->sha = true;
                break;
        case AF_CHECKSUM_MD5:
                s->md5 = true;
                break;
        case AF_CHECKSUM_CRC32C:
                s->crc = true;
                break;
        case AF_CHECKSUM_NONE:
                break;
        case AF_CHECKSUM_AUTO:
        default:
                s->crc = !part && crc_state >= 0;
                s->md5 = part || crc_state <= 0;
                /* Over plain http the body needs a digest the signature covers. Content-MD5
                 * is one (a signed header the server checks the body against), so the
                 * payload's SHA-256 would hash every byte a second time for nothing; CRC-32C
                 * alone is not (a body can be changed to keep its CRC). */
                s->sha = strcmp(c->scheme, "http") == 0 && !s->md5;
                break;
        }
        if (!s->sha)
                snprintf(s->sha_hex, sizeof(s->sha_hex), "UNSIGNED-PAYLOAD");
}

size_t af_s3_sum_headers(const struct af_s3_sums *s, struct af_sigv4_header *h)
{
        size_t n = 0;

        if (s->md5)
                h[n++] = (struct af_sigv4_header){ "content-md5", s->md5_b64 };
        if (s->crc)
                h[n++] = (struct af_sigv4_header){ "x-amz-checksum-crc32c", s->crc_b64 };
        return n;
}

/* ---- XML bodies sent ------------------------------------------------------------------------ */

int af_s3_tagging_xml(const struct af_s3_kv *tags, size_t n, struct af_buf *out)
{
        int r = af_buf_adds(out, "<Tagging><TagSet>");

        for (size_t i = 0; r == 0 && i < n; i++) {
                r = af_buf_adds(out, "<Tag><Key>");
                if (r == 0)
                        r = af_xml_escape(out, tags[i].key);
                if (r == 0)
                        r = af_buf_adds(out, "</Key><Value>");
                if (r == 0)
                        r = af_xml_escape(out, tags[i].value);
                if (r == 0)
                        r = af_buf_adds(out, "</Value></Tag>");
        }
        if (r == 0)
                r = af_buf_adds(out, "</TagSet></Tagging>");
        return r;
}

int af_s3_complete_xml(const struct af_s3_part *parts, size_t n, struct af_buf *out)
{
        int r = af_buf_adds(out, "<CompleteMultipartUpload>");

        for (size_t i = 0; r == 0 && i < n; i++) {
                r = af_buf_addf(out, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag>",
                                parts[i].number, parts[i].etag);
                if (r == 0 && parts[i].crc32c[0])
                        r = af_buf_addf(out, "<ChecksumCRC32C>%s</ChecksumCRC32C>",
                                        parts[i].crc32c);
                if (r == 0)
                        r = af_buf_adds(out, "</Part>");
        }
        if (r == 0)
                r = af_buf_adds(out, "</CompleteMultipartUpload>");
        return r;
}

/* ---- answers read --------------------------------------------------------------------------- */

void af_s3_copy_etag(const char *body, size_t len, char *out, size_t n)
{
        char etag[sizeof(((struct af_s3_put_result *)0)->etag) - 2]; /* room for the quotes */

        af_xml_copy(body, len, "ETag", etag, sizeof(etag));
        snprintf(out, n, etag[0] && etag[0] != '"' ? "\"%s\"" : "%s", etag);
}

void af_s3_parse_copy_part(const char *body, size_t len, struct af_s3_part *ret)
{
        af_s3_copy_etag(body, len, ret->etag, sizeof(ret->etag));
        af_xml_copy(body, len, "ChecksumCRC32C", ret->crc32c, sizeof(ret->crc32c));
}

/* Room for one more part in @l. */
static int grow(struct af_s3_part_list *l)
{
        size_t na = l->alloc ? l->alloc * 2 : 64;
        struct af_s3_part *np;
        uint64_t *ns;

        if (l->n < l->alloc)
                return 0;
        np = realloc(l->parts, na * sizeof(*np));
        if (!np)
                return -ENOMEM;
        l->parts = np;
        ns = realloc(l->sizes, na * sizeof(*ns));
        if (!ns)
                return -ENOMEM;
        l->sizes = ns;
        l->alloc = na;
        return 0;
}

int af_s3_parse_parts(const char *body, size_t len, struct af_s3_part_list *l, char *ret_next,
                      size_t n)
{
        const char *end = body + len, *part;
        char truncated[8];
        int r = 0;

        for (part = strstr(body, "<Part>"); part && part < end; part = strstr(part + 6, "<Part>")) {
                char num[16], etag[130], size[32], crc[12];
                const char *endp = strstr(part, "</Part>");
                size_t pl;

                if (!endp)
                        break;
                /* Within this <Part> only: a part without a checksum must not take the
                 * next one's. */
                pl = (size_t)(endp - part);
                af_xml_copy(part, pl, "PartNumber", num, sizeof(num));
                af_xml_copy(part, pl, "ETag", etag, sizeof(etag));
                af_xml_copy(part, pl, "Size", size, sizeof(size));
                af_xml_copy(part, pl, "ChecksumCRC32C", crc, sizeof(crc));
                r = grow(l);
                if (r < 0)
                        return r;
                l->parts[l->n].number = (unsigned)strtoul(num, NULL, 10);
                snprintf(l->parts[l->n].etag, sizeof(l->parts[l->n].etag), "%s", etag);
                snprintf(l->parts[l->n].crc32c, sizeof(l->parts[l->n].crc32c), "%s", crc);
                l->parts[l->n].sum = 0;
                l->parts[l->n].has_sum = false; /* the server does not know ours */
                l->sizes[l->n] = strtoull(size, NULL, 10);
                l->n++;
        }
        af_xml_copy(body, len, "IsTruncated", truncated, sizeof(truncated));
        af_xml_copy(body, len, "NextPartNumberMarker", ret_next, n);
        if (strcmp(truncated, "true") != 0)
                ret_next[0] = '\0';
        return 0;
}

int af_s3_parse_uploads(const char *body, size_t len, const char *key, char ***ret_ids,
                        size_t *ret_n)
{
        const char *end = body + len, *u;
        char **ids = NULL;
        size_t n = 0;
        int r = 0;

        for (u = strstr(body, "<Upload>"); u && u < end; u = strstr(u + 8, "<Upload>")) {
                char k[AF_S3_KEY_MAX + 1], id[1024];
                const char *endu = strstr(u, "</Upload>");
                size_t ul = endu ? (size_t)(endu - u) : (size_t)(end - u);
                char **p;

                af_xml_copy(u, ul, "Key", k, sizeof(k));
                af_xml_copy(u, ul, "UploadId", id, sizeof(id));
                if (strcmp(k, key) != 0 || !id[0])
                        continue; /* another key under the same prefix */
                p = realloc(ids, (n + 1) * sizeof(*p));
                if (!p || !(p[n] = strdup(id))) {
                        if (p)
                                ids = p;
                        r = -ENOMEM;
                        break;
                }
                ids = p;
                n++;
        }
        if (r < 0) {
                while (n)
                        free(ids[--n]);
                free(ids);
                return r;
        }
        *ret_ids = ids;
        *ret_n = n;
        return 0;
}
