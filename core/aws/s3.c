/* SPDX-License-Identifier: Apache-2.0 */
/*
 * S3 over libcurl. Message building (URL, headers, signature) is kept apart from the
 * transport (one curl_easy_perform per request) so each can be read on its own.
 */
#include "aws/s3.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/log.h"
#include "base/xml.h"
#include "aws/http.h"
#include "aws/sigv4.h"

#define BODY_CAP (64 * 1024) /* error and XML bodies; anything longer is cut */
#define MAX_EXTRA 40         /* signed extra headers per request */
#define AF_KEY_MAX_S3 1024   /* S3's longest key */
#define READ_CHUNK (256 * 1024)

/*
 * The seconds between our clock and S3's: requests are signed with our time plus this, so a
 * host whose clock is off still signs acceptably (S3 allows 15 minutes). Learned from the
 * Date header of a RequestTimeTooSkewed answer; shared by all clients.
 */
static atomic_long clock_offset;

struct af_s3_client {
        CURL *curl;
        struct af_creds_provider *creds;
        char *scheme; /* "http" or "https" */
        char *host;   /* "127.0.0.1:7480": the Host header, exactly as signed */
        char *region;
        char *ca_file;
        long connect_timeout_ms;
        long low_speed_time_s;
        const struct af_s3_object_opts *object; /* borrowed from the config */
        uint64_t last_serial; /* which credentials signed the last request */
        enum af_checksum checksum;
        enum af_addressing addressing;
        const atomic_bool *cancel; /* set: transfers in flight stop (shutdown) */
        const struct af_s3_kv *file_meta; /* this file's own x-amz-meta-*, see set_file_meta */
        size_t nfile_meta;
};

int af_s3_global_init(void)
{
        return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
}

int af_s3_client_new(const struct af_s3_config *cfg, struct af_creds_provider *creds,
                     struct af_s3_client **ret, struct af_buf *err)
{
        const char *ep = cfg->endpoint, *host, *end;
        struct af_s3_client *c;
        size_t hl;

        if (!ep || (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)) {
                (void)af_buf_addf(err, "endpoint '%s' must start with http:// or https://",
                                  ep ? ep : "");
                return -EINVAL;
        }
        host = strstr(ep, "://") + 3;
        end = host + strcspn(host, "/?#");
        hl = (size_t)(end - host);
        /* Path-style requests go to /bucket/key; a base path would change what is signed. */
        if (hl == 0 || (*end && strcmp(end, "/") != 0)) {
                (void)af_buf_addf(err, "endpoint '%s' must be scheme://host[:port] with no path",
                                  ep);
                return -EINVAL;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->curl = curl_easy_init();
        c->scheme = strndup(ep, (size_t)(host - 3 - ep));
        c->host = strndup(host, hl);
        c->region = strdup(cfg->region && *cfg->region ? cfg->region : "us-east-1");
        c->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
        c->creds = creds;
        c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000;
        c->low_speed_time_s = cfg->low_speed_time_s ? cfg->low_speed_time_s : 60;
        c->object = cfg->object;
        c->checksum = cfg->checksum;
        c->addressing = cfg->addressing;
        if (!c->curl || !c->scheme || !c->host || !c->region || (cfg->ca_file && !c->ca_file)) {
                af_s3_client_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void af_s3_client_free(struct af_s3_client *c)
{
        if (!c)
                return;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        free(c->scheme);
        free(c->host);
        free(c->region);
        free(c->ca_file);
        free(c);
}

/* ---- the response ---------------------------------------------------------------------- */

struct response {
        long status;
        struct af_buf body;
        char request_id[128];
        char etag[130];
        char version_id[256];
        uint64_t content_length;
        char date[64]; /* the server's Date header, for clock-skew correction */
        char crc32c[16]; /* x-amz-checksum-crc32c echoed: the server verified it */
};

static void copy_trimmed(char *dst, size_t n, const char *src, size_t len)
{
        while (len && (*src == ' ' || *src == '\t')) {
                src++;
                len--;
        }
        while (len && (src[len - 1] == '\r' || src[len - 1] == '\n' || src[len - 1] == ' '))
                len--;
        if (len >= n)
                len = n - 1;
        memcpy(dst, src, len);
        dst[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
        struct response *resp = userp;
        size_t len = size * nmemb;
        const char *colon = memchr(data, ':', len);
        size_t nl;

        if (!colon)
                return len;
        nl = (size_t)(colon - data);
        colon++;
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(data, name, nl) == 0)
        if (IS("x-amz-request-id"))
                copy_trimmed(resp->request_id, sizeof(resp->request_id), colon,
                             len - nl - 1);
        else if (IS("etag"))
                copy_trimmed(resp->etag, sizeof(resp->etag), colon, len - nl - 1);
        else if (IS("x-amz-version-id"))
                copy_trimmed(resp->version_id, sizeof(resp->version_id), colon, len - nl - 1);
        else if (IS("x-amz-checksum-crc32c"))
                copy_trimmed(resp->crc32c, sizeof(resp->crc32c), colon, len - nl - 1);
        else if (IS("date"))
                copy_trimmed(resp->date, sizeof(resp->date), colon, len - nl - 1);
        else if (IS("content-length")) {
                char v[32];

                copy_trimmed(v, sizeof(v), colon, len - nl - 1);
                resp->content_length = strtoull(v, NULL, 10);
        }
#undef IS
        return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
        struct response *resp = userp;
        size_t len = size * nmemb;

        /* Keep the start of a long body; an error document fits well within the cap. */
        size_t cap = resp->body.cap - 1;

        if (resp->body.len < cap)
                (void)af_buf_add(&resp->body, data,
                                 len < cap - resp->body.len ? len : cap - resp->body.len);
        return len;
}

/*
 * S3 -> errno, in one place. Retryable ones map to EAGAIN-like codes (see af_s3_retryable).
 *   403, AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId  -> EACCES
 *   ExpiredToken                                                  -> EKEYEXPIRED
 *   404, NoSuchBucket, NoSuchKey, NoSuchUpload                    -> ENOENT
 *   412 PreconditionFailed                                        -> EEXIST
 *   BadDigest, XAmzContentSHA256Mismatch, InvalidDigest           -> EBADMSG (re-read, retry)
 *   RequestTimeTooSkewed                                          -> ETIME
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
        { "SlowDown", -EAGAIN },
        { "RequestTimeout", -EAGAIN },
        { "InternalError", -EAGAIN },
        { "ServiceUnavailable", -EAGAIN },
};

static int status_errno(long status, const char *code)
{
        for (size_t i = 0; i < sizeof(code_map) / sizeof(code_map[0]); i++)
                if (strcmp(code, code_map[i].code) == 0)
                        return code_map[i].err;
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

/* ---- object options --------------------------------------------------------------------- */

static const struct {
        const char *ext;
        const char *type;
} mime_types[] = {
        /* Go's built-in mime table (what Argo's uploader uses), plus a few common outputs. */
        { ".avif", "image/avif" },      { ".css", "text/css; charset=utf-8" },
        { ".gif", "image/gif" },        { ".htm", "text/html; charset=utf-8" },
        { ".html", "text/html; charset=utf-8" }, { ".jpeg", "image/jpeg" },
        { ".jpg", "image/jpeg" },       { ".js", "text/javascript; charset=utf-8" },
        { ".json", "application/json" }, { ".mjs", "text/javascript; charset=utf-8" },
        { ".pdf", "application/pdf" },  { ".png", "image/png" },
        { ".svg", "image/svg+xml" },    { ".wasm", "application/wasm" },
        { ".webp", "image/webp" },      { ".xml", "text/xml; charset=utf-8" },
        { ".txt", "text/plain; charset=utf-8" }, { ".csv", "text/csv; charset=utf-8" },
        { ".log", "text/plain; charset=utf-8" }, { ".md", "text/markdown; charset=utf-8" },
        { ".tgz", "application/gzip" }, { ".gz", "application/gzip" },
        { ".zip", "application/zip" },  { ".tar", "application/x-tar" },
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
                            size_t max, char names[][80])
{
        for (size_t i = 0; i < c->nfile_meta && n < max; i++) {
                snprintf(names[i], 80, "x-amz-meta-%s", c->file_meta[i].key);
                h[n++] = (struct af_sigv4_header){ names[i], c->file_meta[i].value };
        }
        return n;
}

void af_s3_client_set_file_meta(struct af_s3_client *c, const struct af_s3_kv *meta, size_t n)
{
        c->file_meta = meta;
        c->nfile_meta = n;
}

/* The headers a new object gets. The names in @names back the metadata header names. */
static size_t object_headers(const struct af_s3_client *c, const char *key,
                             struct af_sigv4_header *h, size_t max, char names[][80],
                             bool with_condition)
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
                snprintf(names[i], 80, "x-amz-meta-%s", o->metadata[i].key);
                h[n++] = (struct af_sigv4_header){ names[i], o->metadata[i].value };
        }
        return add_file_meta(c, h, n, max, names + o->nmetadata);
}

/* ---- the request ----------------------------------------------------------------------- */

struct body_src {
        const char *mem; /* the body is in memory (then fd is unused) */
        int fd;
        uint64_t base; /* file offset of the body's first byte */
        uint64_t size;
        uint64_t off;  /* bytes of the body sent so far */
        int read_errno;
};

static size_t on_read(char *buf, size_t size, size_t nitems, void *userp)
{
        struct body_src *src = userp;
        size_t want = size * nitems;
        ssize_t n;

        if (src->off >= src->size)
                return 0;
        if (want > src->size - src->off)
                want = (size_t)(src->size - src->off);
        if (src->mem) {
                memcpy(buf, src->mem + src->off, want);
                src->off += want;
                return want;
        }
        n = pread(src->fd, buf, want, (off_t)(src->base + src->off));
        if (n < 0) {
                src->read_errno = errno;
                return CURL_READFUNC_ABORT;
        }
        if (n == 0) {
                /* The file shrank under us: abort; the caller retries with a fresh size. */
                src->read_errno = ESTALE;
                return CURL_READFUNC_ABORT;
        }
        src->off += (uint64_t)n;
        return (size_t)n;
}

/* Lets curl rewind the body when it must resend (a redirect or an auth retry). */
static int on_seek(void *userp, curl_off_t offset, int origin)
{
        struct body_src *src = userp;

        if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > src->size)
                return CURL_SEEKFUNC_CANTSEEK;
        src->off = (uint64_t)offset;
        return CURL_SEEKFUNC_OK;
}

struct request {
        const char *method;
        const char *bucket;
        const char *key; /* NULL for bucket operations */
        const struct af_sigv4_param *query;
        size_t nquery;
        const struct af_sigv4_header *extra; /* signed extra headers (content-md5, ...) */
        size_t nextra;
        const char *payload_hash;
        struct body_src *body; /* NULL: no body */
        const char *mem_body;  /* POST body held in memory (CompleteMultipartUpload) */
        size_t mem_len;
};

/* ---- body checksums -------------------------------------------------------------------- */

/*
 * What a body carries, decided per request by the checksum mode:
 *   sha256  the payload's SHA-256 in x-amz-content-sha256 (signed; S3 verifies it)
 *   md5     Content-MD5 (S3 verifies it), payload UNSIGNED-PAYLOAD
 *   crc32c  x-amz-checksum-crc32c, payload UNSIGNED-PAYLOAD
 *   none    nothing but TLS, if any
 *   auto    the payload signed over plain http (nothing else protects it on the wire),
 *           and x-amz-checksum-crc32c with Content-MD5 until the server shows (by echoing
 *           the checksum) that it verifies CRC32C; one that does not (Ceph radosgw 16
 *           ignores these headers) gets Content-MD5 from then on. Multipart parts use
 *           Content-MD5 in auto mode: a CRC32C upload must say so when it is created.
 */
struct sums {
        bool sha, md5, crc;
        bool sum;      /* compute crc_value even when the request does not carry it */
        uint32_t crc_value;
        char sha_hex[2 * AF_SHA256_LEN + 1]; /* or "UNSIGNED-PAYLOAD" */
        char md5_b64[25];
        char md5_hex[2 * AF_MD5_LEN + 1];
        char crc_b64[9];
};

/* Whether this process's endpoint verifies CRC32C: 0 not known yet, 1 yes, -1 no. */
static atomic_int crc_state;

static void plan(const struct af_s3_client *c, bool part, struct sums *s)
{
        int st = atomic_load(&crc_state);

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
                s->sha = strcmp(c->scheme, "http") == 0;
                s->crc = !part && st >= 0;
                s->md5 = part || st <= 0;
                break;
        }
        if (!s->sha)
                snprintf(s->sha_hex, sizeof(s->sha_hex), "UNSIGNED-PAYLOAD");
}

static void sums_finish(struct sums *s, struct af_digest *sha, struct af_digest *md5,
                        uint32_t crc)
{
        uint8_t d[AF_SHA256_LEN];
        uint8_t be[4] = { (uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8),
                          (uint8_t)crc };

        if (s->sha) {
                af_digest_final(sha, d);
                af_hex(d, AF_SHA256_LEN, s->sha_hex);
        }
        if (s->md5) {
                af_digest_final(md5, d);
                af_base64(d, AF_MD5_LEN, s->md5_b64);
                af_hex(d, AF_MD5_LEN, s->md5_hex);
        }
        if (s->crc)
                af_base64(be, 4, s->crc_b64);
}

/* The planned checksums of @size bytes of @fd from @base, read once in chunks. */
static int sum_fd(int fd, uint64_t base, uint64_t size, struct sums *s)
{
        struct af_digest sha = { 0 }, md5 = { 0 };
        char *buf = NULL;
        uint64_t off = 0;
        uint32_t crc = 0;
        int r = 0;

        if (!s->sha && !s->md5 && !s->crc && !s->sum)
                return 0;
        buf = malloc(READ_CHUNK);
        if (!buf)
                return -ENOMEM;
        if ((s->sha && (r = af_digest_init(&sha, AF_DIGEST_SHA256)) < 0) ||
            (s->md5 && (r = af_digest_init(&md5, AF_DIGEST_MD5)) < 0))
                goto out;
        while (off < size) {
                size_t want = size - off < READ_CHUNK ? (size_t)(size - off) : READ_CHUNK;
                ssize_t n = pread(fd, buf, want, (off_t)(base + off));

                if (n < 0) {
                        r = -errno;
                        goto out;
                }
                if (n == 0) {
                        r = -ESTALE; /* shrank while we read it */
                        goto out;
                }
                if (s->sha)
                        af_digest_update(&sha, buf, (size_t)n);
                if (s->md5)
                        af_digest_update(&md5, buf, (size_t)n);
                if (s->crc || s->sum)
                        crc = af_crc32c(crc, buf, (size_t)n);
                off += (uint64_t)n;
        }
        s->crc_value = crc;
        sums_finish(s, &sha, &md5, crc);
out:
        af_digest_abandon(&sha);
        af_digest_abandon(&md5);
        free(buf);
        return r;
}

static int sum_mem(const void *data, size_t n, struct sums *s)
{
        struct af_digest sha = { 0 }, md5 = { 0 };
        int r = 0;

        if ((s->sha && (r = af_digest_init(&sha, AF_DIGEST_SHA256)) < 0) ||
            (s->md5 && (r = af_digest_init(&md5, AF_DIGEST_MD5)) < 0)) {
                af_digest_abandon(&sha);
                return r;
        }
        if (s->sha)
                af_digest_update(&sha, data, n);
        if (s->md5)
                af_digest_update(&md5, data, n);
        s->crc_value = s->crc || s->sum ? af_crc32c(0, data, n) : 0;
        sums_finish(s, &sha, &md5, s->crc_value);
        af_digest_abandon(&sha);
        af_digest_abandon(&md5);
        return 0;
}

/* auto: did the server echo our CRC32C (it verified it), or not (it ignores it)? */
static void learn_crc(const struct af_s3_client *c, const struct sums *s, const char *echo)
{
        int unknown = 0;

        if (c->checksum != AF_CHECKSUM_AUTO || !s->crc)
                return;
        if (echo[0] && strcmp(echo, s->crc_b64) == 0)
                atomic_store(&crc_state, 1);
        else if (atomic_compare_exchange_strong(&crc_state, &unknown, -1))
                af_log_info("op=checksum endpoint=%s msg=\"the server does not echo "
                            "x-amz-checksum-crc32c, so it does not verify it; using Content-MD5, "
                            "which it does\"",
                            af_q(c->host));
}

static void read_error(struct af_s3_error *err, int r)
{
        snprintf(err->code, sizeof(err->code), "ReadError");
        snprintf(err->message, sizeof(err->message), "reading the spool file: %s", strerror(-r));
}

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

static bool virtual_hosted(const struct af_s3_client *c, const char *bucket)
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

static int build_uri(const char *bucket, const char *key, struct af_buf *uri)
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

static void fill_error(struct af_s3_error *err, const struct response *resp)
{
        const char *body = af_buf_str(&resp->body);

        memset(err, 0, sizeof(*err));
        err->http_status = (int)resp->status;
        af_xml_copy(body, resp->body.len, "Code", err->code, sizeof(err->code));
        af_xml_copy(body, resp->body.len, "Message", err->message, sizeof(err->message));
        af_xml_copy(body, resp->body.len, "RequestId", err->request_id, sizeof(err->request_id));
        if (!err->request_id[0])
                snprintf(err->request_id, sizeof(err->request_id), "%s", resp->request_id);
        if (!err->code[0]) {
                /* HEAD responses have no body: name the status the way S3 tools do. */
                const char *name = resp->status == 403   ? "Forbidden"
                                   : resp->status == 404 ? "NotFound"
                                   : resp->status == 400 ? "BadRequest"
                                   : resp->status == 412 ? "PreconditionFailed"
                                   : resp->status >= 500 ? "ServerError"
                                                         : "";
                snprintf(err->code, sizeof(err->code), "%s", name);
        }
}

/* Stops a transfer when the owner says so (shutdown past the drain timeout). */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
        const struct af_s3_client *c = userp;

        (void)dltotal;
        (void)dlnow;
        (void)ultotal;
        (void)ulnow;
        return atomic_load(c->cancel) ? 1 : 0;
}

void af_s3_client_set_cancel(struct af_s3_client *c, const atomic_bool *flag)
{
        c->cancel = flag;
}

static int perform_once(struct af_s3_client *c, const struct request *rq, struct response *resp,
                        struct af_s3_error *err)
{
        struct af_sigv4_header hdrs[8 + MAX_EXTRA];
        struct af_sigv4_req sreq;
        struct af_buf uri, host, query, url, auth, line;
        struct curl_slist *list = NULL;
        char amz_date[17], curl_err[CURL_ERROR_SIZE] = "";
        struct af_creds creds;
        size_t nh = 0;
        time_t now;
        CURLcode cc;
        CURL *h = c->curl;
        int r;

        memset(err, 0, sizeof(*err));
        af_buf_init(&uri, 0);
        af_buf_init(&host, 512);
        af_buf_init(&query, 0);
        af_buf_init(&url, 0);
        af_buf_init(&auth, 0);
        af_buf_init(&line, 0);

        r = af_creds_get(c->creds, &creds);
        if (r < 0) {
                snprintf(err->code, sizeof(err->code), "NoCredentials");
                snprintf(err->message, sizeof(err->message), "no AWS credentials available");
                goto out;
        }
        /* Virtual-hosted style: the bucket is part of the host name, not of the path. */
        if (virtual_hosted(c, rq->bucket)) {
                r = af_buf_addf(&host, "%s.%s", rq->bucket, c->host);
                if (r == 0)
                        r = build_uri(NULL, rq->key, &uri);
        } else {
                r = af_buf_adds(&host, c->host);
                if (r == 0)
                        r = build_uri(rq->bucket, rq->key, &uri);
        }
        if (r == 0)
                r = af_sigv4_canonical_query(rq->query, rq->nquery, &query);
        if (r == 0)
                r = af_buf_addf(&url, "%s://%s%s%s%s", c->scheme, af_buf_str(&host),
                                af_buf_str(&uri), query.len ? "?" : "", af_buf_str(&query));
        if (r < 0)
                goto out;

        now = time(NULL) + atomic_load(&clock_offset);
        af_sigv4_amz_date(now, amz_date);
        hdrs[nh++] = (struct af_sigv4_header){ "host", af_buf_str(&host) };
        hdrs[nh++] = (struct af_sigv4_header){ "x-amz-date", amz_date };
        hdrs[nh++] = (struct af_sigv4_header){ "x-amz-content-sha256", rq->payload_hash };
        if (creds.session_token[0])
                hdrs[nh++] = (struct af_sigv4_header){ "x-amz-security-token", creds.session_token };
        for (size_t i = 0; i < rq->nextra && nh < sizeof(hdrs) / sizeof(hdrs[0]); i++)
                hdrs[nh++] = rq->extra[i];
        sreq = (struct af_sigv4_req){ .method = rq->method,
                                      .uri = af_buf_str(&uri),
                                      .query = rq->query,
                                      .nquery = rq->nquery,
                                      .headers = hdrs,
                                      .nheaders = nh,
                                      .payload_hash = rq->payload_hash };
        r = af_sigv4_sign(&sreq, creds.access_key, creds.secret_key, c->region, "s3",
                          now, &auth, NULL, NULL);
        c->last_serial = creds.serial;
        if (r < 0)
                goto out;

        for (size_t i = 0; i < nh; i++) {
                af_buf_reset(&line);
                r = af_buf_addf(&line, "%s: %s", hdrs[i].name, hdrs[i].value);
                if (r < 0)
                        goto out;
                list = curl_slist_append(list, af_buf_str(&line));
        }
        af_buf_reset(&line);
        r = af_buf_addf(&line, "Authorization: %s", af_buf_str(&auth));
        explicit_bzero(auth.ptr, auth.len);
        if (r < 0)
                goto out;
        list = curl_slist_append(list, af_buf_str(&line));
        explicit_bzero(line.ptr, line.len);
        /* Only now: hdrs[] points into creds (the session token) until the list is built. */
        explicit_bzero(&creds, sizeof(creds));
        /* Without a Content-Type of ours, make curl send none (it adds one to POSTs). */
        {
                bool have_ct = false;

                for (size_t i = 0; i < rq->nextra; i++)
                        have_ct = have_ct || strcasecmp(rq->extra[i].name, "content-type") == 0;
                if (!have_ct)
                        list = curl_slist_append(list, "Content-Type:");
        }
        if (!list) {
                r = -ENOMEM;
                goto out;
        }

        curl_easy_reset(h); /* keeps the connection cache: connections are reused */
        curl_easy_setopt(h, CURLOPT_URL, af_buf_str(&url));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L);
        if (c->cancel) {
                curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
                curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
                curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
        }
        if (c->ca_file)
                curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        if (strcmp(rq->method, "HEAD") == 0) {
                curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (strcmp(rq->method, "PUT") == 0) {
                curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
                curl_easy_setopt(h, CURLOPT_READDATA, rq->body);
                curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
                curl_easy_setopt(h, CURLOPT_SEEKDATA, rq->body);
                curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                                 (curl_off_t)(rq->body ? rq->body->size : 0));
        } else if (strcmp(rq->method, "POST") == 0) {
                curl_easy_setopt(h, CURLOPT_POST, 1L);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->mem_body ? rq->mem_body : "");
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->mem_len);
        } else if (strcmp(rq->method, "GET") != 0) {
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
        }

        cc = curl_easy_perform(h);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        if (cc != CURLE_OK) {
                if (rq->body && rq->body->read_errno) {
                        r = rq->body->read_errno == ESTALE ? -ESTALE : -rq->body->read_errno;
                        snprintf(err->code, sizeof(err->code), "ReadError");
                        snprintf(err->message, sizeof(err->message),
                                 "reading the spool file: %s", strerror(rq->body->read_errno));
                } else {
                        r = af_http_curl_errno(cc);
                        snprintf(err->code, sizeof(err->code), "%s", curl_easy_strerror(cc));
                        snprintf(err->message, sizeof(err->message), "%s%s%s", c->host,
                                 curl_err[0] ? ": " : "", curl_err);
                }
                goto out;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        af_log_debug("op=s3 method=%s bucket=%s key=%s status=%ld request_id=%s", rq->method,
                     af_q(rq->bucket), af_q(rq->key ? rq->key : ""), resp->status,
                     af_q(resp->request_id));
        if (resp->status < 200 || resp->status > 299) {
                fill_error(err, resp);
                r = status_errno(resp->status, err->code);
                goto out;
        }
        r = 0;
out:
        explicit_bzero(&creds, sizeof(creds));
        curl_slist_free_all(list);
        af_buf_done(&uri);
        af_buf_done(&host);
        af_buf_done(&query);
        af_buf_done(&url);
        af_buf_done(&auth);
        af_buf_done(&line);
        return r;
}

/* "Sat, 28 Nov 2026 04:46:30 GMT" (RFC 7231 IMF-fixdate) -> time_t; -1 if not that. */
static time_t http_date(const char *s)
{
        struct tm tm;
        const char *end;

        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        return end && !*end ? timegm(&tm) : (time_t)-1;
}

static int perform(struct af_s3_client *c, const struct request *rq, struct response *resp,
                   struct af_s3_error *err)
{
        int r = perform_once(c, rq, resp, err);
        time_t server, ours;

        if (r == -EKEYEXPIRED) {
                /* ExpiredToken: these credentials are spent; fetch new ones and sign again. */
                af_creds_invalidate(c->creds, c->last_serial);
                af_log_debug("op=s3 msg=\"credentials expired; refreshed\"");
                if (rq->body) {
                        rq->body->off = 0;
                        rq->body->read_errno = 0;
                }
                af_buf_reset(&resp->body);
                resp->status = 0;
                return perform_once(c, rq, resp, err);
        }
        if (r != -ETIME && r != -EACCES)
                return r;
        /* RequestTimeTooSkewed (or a bodiless 403 to a HEAD from a server whose clock is far
         * from ours): adopt the server's clock and sign again, once. */
        server = http_date(resp->date);
        if (server == (time_t)-1)
                return r;
        ours = time(NULL) + atomic_load(&clock_offset);
        if (r == -EACCES && (server - ours < 600 && ours - server < 600))
                return r;
        atomic_store(&clock_offset, (long)(server - time(NULL)));
        af_log_debug("op=s3 msg=\"clock skew corrected\" offset_s=%ld",
                     (long)atomic_load(&clock_offset));
        if (rq->body) {
                rq->body->off = 0;
                rq->body->read_errno = 0;
        }
        af_buf_reset(&resp->body);
        resp->status = 0;
        return perform_once(c, rq, resp, err);
}

long af_s3_clock_offset(void)
{
        return atomic_load(&clock_offset);
}

static void response_init(struct response *resp)
{
        memset(resp, 0, sizeof(*resp));
        af_buf_init(&resp->body, BODY_CAP + 1);
}

/* PUT of a body already summed; @query may be NULL (PutObject) or partNumber+uploadId. */
static int put_body(struct af_s3_client *c, const char *bucket, const char *key,
                    const struct af_sigv4_param *query, size_t nquery, struct body_src *body,
                    const struct sums *sm, char *ret_etag, size_t etag_n, char *ret_version,
                    size_t version_n, struct af_s3_error *err)
{
        struct af_sigv4_header extra[MAX_EXTRA];
        char names[MAX_EXTRA][80];
        struct response resp;
        struct request rq;
        size_t ne = 0;
        int r;

        if (sm->md5)
                extra[ne++] = (struct af_sigv4_header){ "content-md5", sm->md5_b64 };
        if (sm->crc)
                extra[ne++] = (struct af_sigv4_header){ "x-amz-checksum-crc32c", sm->crc_b64 };
        if (!query) /* PutObject, not UploadPart: the object's own headers */
                ne += object_headers(c, key, extra + ne, MAX_EXTRA - ne, names, true);
        rq = (struct request){ .method = "PUT",
                               .bucket = bucket,
                               .key = key,
                               .query = query,
                               .nquery = nquery,
                               .extra = extra,
                               .nextra = ne,
                               .payload_hash = sm->sha_hex,
                               .body = body };
        response_init(&resp);
        r = perform(c, &rq, &resp, err);
        if (r == 0) {
                snprintf(ret_etag, etag_n, "%s", resp.etag);
                if (ret_version)
                        snprintf(ret_version, version_n, "%s", resp.version_id);
                learn_crc(c, sm, resp.crc32c);
        }
        af_buf_done(&resp.body);
        return r;
}

/*
 * --no-overwrite and a 412: if the object there is byte for byte ours (its ETag is our MD5),
 * an earlier attempt stored it and only its answer was lost: that is success, not a clash.
 */
static int check_own_object(struct af_s3_client *c, const char *bucket, const char *key,
                            const char *md5_hex, uint64_t size, int r, char *ret_etag,
                            size_t etag_n, struct af_s3_error *err)
{
        struct af_s3_head_result head;
        struct af_s3_error herr;
        char want[2 * AF_MD5_LEN + 3];

        if (r != -EEXIST || !md5_hex[0] || af_s3_head_object(c, bucket, key, &head, &herr) < 0 ||
            head.size != size)
                return r;
        snprintf(want, sizeof(want), "\"%s\"", md5_hex);
        if (strcasecmp(head.etag, want) != 0)
                return r;
        snprintf(ret_etag, etag_n, "%s", head.etag);
        memset(err, 0, sizeof(*err));
        return 0;
}

int af_s3_put_object_mem(struct af_s3_client *c, const char *bucket, const char *key,
                         const void *data, size_t len, struct af_s3_put_result *ret,
                         struct af_s3_error *err)
{
        struct body_src body = { .mem = data ? data : "", .size = len };
        struct sums sm;
        int r;

        memset(err, 0, sizeof(*err));
        plan(c, false, &sm);
        sm.md5 = sm.md5 || (c->object && c->object->no_overwrite); /* to recognise our own */
        r = sum_mem(data ? data : "", len, &sm);
        if (r == 0)
                r = put_body(c, bucket, key, NULL, 0, &body, &sm, ret->etag, sizeof(ret->etag),
                             ret->version_id, sizeof(ret->version_id), err);
        return check_own_object(c, bucket, key, sm.md5 ? sm.md5_hex : "", len, r, ret->etag,
                                sizeof(ret->etag), err);
}

int af_s3_upload_part_mem(struct af_s3_client *c, const char *bucket, const char *key,
                          const char *upload_id, unsigned part_number, const void *data,
                          size_t len, struct af_s3_part *ret, struct af_s3_error *err)
{
        struct body_src body = { .mem = data, .size = len };
        struct af_sigv4_param q[2];
        struct sums sm;
        char num[16];
        int r;

        memset(err, 0, sizeof(*err));
        plan(c, true, &sm);
        sm.sum = true;
        r = sum_mem(data, len, &sm);
        if (r < 0)
                return r;
        snprintf(num, sizeof(num), "%u", part_number);
        q[0] = (struct af_sigv4_param){ "partNumber", num };
        q[1] = (struct af_sigv4_param){ "uploadId", upload_id };
        ret->number = part_number;
        snprintf(ret->crc32c, sizeof(ret->crc32c), "%s", sm.crc ? sm.crc_b64 : "");
        ret->sum = sm.crc_value;
        ret->has_sum = true;
        return put_body(c, bucket, key, q, 2, &body, &sm, ret->etag, sizeof(ret->etag), NULL, 0,
                        err);
}

int af_s3_put_object_fd(struct af_s3_client *c, const char *bucket, const char *key, int fd,
                        uint64_t size, struct af_s3_put_result *ret, struct af_s3_error *err)
{
        struct body_src body = { .fd = fd, .size = size };
        struct sums sm;
        int r;

        memset(err, 0, sizeof(*err));
        plan(c, false, &sm);
        sm.md5 = sm.md5 || (c->object && c->object->no_overwrite); /* to recognise our own */
        r = sum_fd(fd, 0, size, &sm);
        if (r < 0) {
                read_error(err, r);
                return r;
        }
        r = put_body(c, bucket, key, NULL, 0, &body, &sm, ret->etag, sizeof(ret->etag),
                     ret->version_id, sizeof(ret->version_id), err);
        return check_own_object(c, bucket, key, sm.md5 ? sm.md5_hex : "", size, r, ret->etag,
                                sizeof(ret->etag), err);
}

static const char empty_sha256[] =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

int af_s3_head_object(struct af_s3_client *c, const char *bucket, const char *key,
                      struct af_s3_head_result *ret, struct af_s3_error *err)
{
        struct request rq = { .method = "HEAD",
                              .bucket = bucket,
                              .key = key,
                              .payload_hash = empty_sha256 };
        struct response resp;
        int r;

        response_init(&resp);
        r = perform(c, &rq, &resp, err);
        if (r == 0) {
                ret->size = resp.content_length;
                snprintf(ret->etag, sizeof(ret->etag), "%s", resp.etag);
        }
        af_buf_done(&resp.body);
        return r;
}

int af_s3_head_bucket(struct af_s3_client *c, const char *bucket, struct af_s3_error *err)
{
        struct request rq = { .method = "HEAD", .bucket = bucket, .payload_hash = empty_sha256 };
        struct response resp;
        int r;

        response_init(&resp);
        r = perform(c, &rq, &resp, err);
        af_buf_done(&resp.body);
        return r;
}

/* ---- copy and delete --------------------------------------------------------------------- */

/* x-amz-copy-source: "/bucket/key", URI-encoded like a path ('/' kept), as S3 documents. */
static int copy_source(const char *bucket, const char *key, struct af_buf *out)
{
        return build_uri(bucket, key, out);
}

/* PutObjectTagging with the configured tags (S3 wants the body's Content-MD5). */
static int put_object_tagging(struct af_s3_client *c, const char *bucket, const char *key,
                              struct af_s3_error *err)
{
        static const struct af_sigv4_param q[] = { { "tagging", NULL } };
        const struct af_s3_object_opts *o = c->object;
        struct body_src body = { 0 };
        struct af_buf xml;
        struct sums sm;
        char etag[130];
        int r;

        af_buf_init(&xml, 64 * 1024);
        r = af_buf_adds(&xml, "<Tagging><TagSet>");
        for (size_t i = 0; r == 0 && i < o->ntags; i++) {
                r = af_buf_adds(&xml, "<Tag><Key>");
                if (r == 0)
                        r = af_xml_escape(&xml, o->tags[i].key);
                if (r == 0)
                        r = af_buf_adds(&xml, "</Key><Value>");
                if (r == 0)
                        r = af_xml_escape(&xml, o->tags[i].value);
                if (r == 0)
                        r = af_buf_adds(&xml, "</Value></Tag>");
        }
        if (r == 0)
                r = af_buf_adds(&xml, "</TagSet></Tagging>");
        if (r == 0) {
                plan(c, true, &sm);
                sm.md5 = true;
                sm.crc = false;
                r = sum_mem(xml.ptr, xml.len, &sm);
        }
        if (r == 0) {
                body = (struct body_src){ .mem = xml.ptr, .size = xml.len };
                r = put_body(c, bucket, key, q, 1, &body, &sm, etag, sizeof(etag), NULL, 0, err);
        }
        af_buf_done(&xml);
        return r;
}

int af_s3_copy_object(struct af_s3_client *c, const char *src_bucket, const char *src_key,
                      const char *src_etag, const char *bucket, const char *key, uint64_t size,
                      struct af_s3_put_result *ret, struct af_s3_error *err)
{
        struct af_sigv4_header extra[MAX_EXTRA];
        char names[MAX_EXTRA][80];
        struct body_src body = { .mem = "", .size = 0 };
        struct af_buf src;
        struct response resp;
        struct request rq;
        size_t ne = 0;
        int r;

        memset(err, 0, sizeof(*err));
        if (size > AF_S3_MAX_PART)
                return -EFBIG;
        if (c->object && c->object->no_overwrite)
                return -EOPNOTSUPP;
        af_buf_init(&src, 0);
        r = copy_source(src_bucket, src_key, &src);
        if (r < 0) {
                af_buf_done(&src);
                return r;
        }
        extra[ne++] = (struct af_sigv4_header){ "x-amz-copy-source", af_buf_str(&src) };
        if (src_etag && src_etag[0])
                extra[ne++] = (struct af_sigv4_header){ "x-amz-copy-source-if-match", src_etag };
        /* REPLACE: the new key's Content-Type and this mount's options, not the source's. */
        extra[ne++] = (struct af_sigv4_header){ "x-amz-metadata-directive", "REPLACE" };
        if (c->object && c->object->tagging)
                extra[ne++] = (struct af_sigv4_header){ "x-amz-tagging-directive", "REPLACE" };
        ne += object_headers(c, key, extra + ne, MAX_EXTRA - ne, names, false);
        rq = (struct request){ .method = "PUT",
                               .bucket = bucket,
                               .key = key,
                               .extra = extra,
                               .nextra = ne,
                               .payload_hash = empty_sha256,
                               .body = &body };
        response_init(&resp);
        r = perform(c, &rq, &resp, err);
        /* Like CompleteMultipartUpload, a copy may answer 200 and fail in the body. */
        if (r == 0 && strstr(af_buf_str(&resp.body), "<Error>")) {
                fill_error(err, &resp);
                r = status_errno(500, err->code);
        }
        if (r == 0) {
                char etag[sizeof(ret->etag) - 2];

                /* Quoted, as in every other answer (radosgw leaves the quotes out here). */
                af_xml_copy(af_buf_str(&resp.body), resp.body.len, "ETag", etag, sizeof(etag));
                snprintf(ret->etag, sizeof(ret->etag), etag[0] && etag[0] != '"' ? "\"%s\"" : "%s",
                         etag);
                snprintf(ret->version_id, sizeof(ret->version_id), "%s", resp.version_id);
                if (!etag[0]) {
                        snprintf(err->code, sizeof(err->code), "BadResponse");
                        snprintf(err->message, sizeof(err->message),
                                 "CopyObject answer has no ETag");
                        err->http_status = (int)resp.status;
                        r = -EPROTO;
                }
        }
        if (r == 0 && c->object && c->object->ntags)
                r = put_object_tagging(c, bucket, key, err);
        af_buf_done(&resp.body);
        af_buf_done(&src);
        return r;
}

int af_s3_delete_object(struct af_s3_client *c, const char *bucket, const char *key,
                        struct af_s3_error *err)
{
        struct request rq = { .method = "DELETE",
                              .bucket = bucket,
                              .key = key,
                              .payload_hash = empty_sha256 };
        struct response resp;
        int r;

        response_init(&resp);
        r = perform(c, &rq, &resp, err);
        /* Gone already (S3 says 204, some servers 404): what we wanted. */
        if (r == -ENOENT && strcmp(err->code, "NoSuchBucket") != 0) {
                memset(err, 0, sizeof(*err));
                r = 0;
        }
        af_buf_done(&resp.body);
        return r;
}

/* ---- multipart upload ------------------------------------------------------------------ */

uint64_t af_s3_part_size(uint64_t object_size, uint64_t min_part)
{
        uint64_t part = min_part < AF_S3_MIN_PART ? AF_S3_MIN_PART : min_part;

        if (part > AF_S3_MAX_PART)
                part = AF_S3_MAX_PART;
        /* Grow in MiB steps until the object fits in 10,000 parts (5 TiB needs ~525 MiB). */
        while (part < AF_S3_MAX_PART && (object_size + part - 1) / part > AF_S3_MAX_PARTS)
                part += (uint64_t)1 << 20;
        return part;
}

int af_s3_create_multipart(struct af_s3_client *c, const char *bucket, const char *key,
                           char *ret_upload_id, size_t n, struct af_s3_error *err)
{
        static const struct af_sigv4_param q[] = { { "uploads", NULL } };
        struct af_sigv4_header extra[MAX_EXTRA];
        char names[MAX_EXTRA][80];
        struct request rq = { .method = "POST",
                              .bucket = bucket,
                              .key = key,
                              .query = q,
                              .nquery = 1,
                              .extra = extra,
                              .payload_hash = empty_sha256 };
        struct response resp;
        char id[1024];
        int r;

        rq.nextra = object_headers(c, key, extra, MAX_EXTRA, names, false);
        if (c->checksum == AF_CHECKSUM_CRC32C) /* parts will carry CRC32C: say so up front */
                extra[rq.nextra++] = (struct af_sigv4_header){ "x-amz-checksum-algorithm",
                                                               "CRC32C" };
        response_init(&resp);
        r = perform(c, &rq, &resp, err);
        if (r == 0) {
                af_xml_copy(af_buf_str(&resp.body), resp.body.len, "UploadId", id, sizeof(id));
                if (!id[0] || strlen(id) >= n) {
                        snprintf(err->code, sizeof(err->code), "BadResponse");
                        snprintf(err->message, sizeof(err->message),
                                 "CreateMultipartUpload answer has no usable UploadId");
                        r = -EPROTO;
                } else {
                        memcpy(ret_upload_id, id, strlen(id) + 1);
                }
        }
        af_buf_done(&resp.body);
        return r;
}

int af_s3_upload_part_fd(struct af_s3_client *c, const char *bucket, const char *key,
                         const char *upload_id, unsigned part_number, int fd, uint64_t off,
                         uint64_t len, struct af_s3_part *ret, struct af_s3_error *err)
{
        struct body_src body = { .fd = fd, .base = off, .size = len };
        struct af_sigv4_param q[2];
        struct sums sm;
        char num[16];
        int r;

        memset(err, 0, sizeof(*err));
        plan(c, true, &sm);
        sm.sum = true;
        r = sum_fd(fd, off, len, &sm);
        if (r < 0) {
                read_error(err, r);
                return r;
        }
        snprintf(num, sizeof(num), "%u", part_number);
        q[0] = (struct af_sigv4_param){ "partNumber", num };
        q[1] = (struct af_sigv4_param){ "uploadId", upload_id };
        ret->number = part_number;
        snprintf(ret->crc32c, sizeof(ret->crc32c), "%s", sm.crc ? sm.crc_b64 : "");
        ret->sum = sm.crc_value;
        ret->has_sum = true;
        return put_body(c, bucket, key, q, 2, &body, &sm, ret->etag, sizeof(ret->etag), NULL, 0,
                        err);
}

int af_s3_complete_multipart(struct af_s3_client *c, const char *bucket, const char *key,
                             const char *upload_id, const struct af_s3_part *parts,
                             size_t nparts, struct af_s3_put_result *ret,
                             struct af_s3_error *err)
{
        struct af_sigv4_param q[1] = { { "uploadId", upload_id } };
        struct af_sigv4_header cond[1] = { { "if-none-match", "*" } };
        uint8_t digest[AF_SHA256_LEN];
        char sha_hex[2 * AF_SHA256_LEN + 1];
        struct response resp;
        struct af_buf xml;
        struct request rq;
        int r = 0;

        af_buf_init(&xml, (size_t)64 << 20);
        r = af_buf_adds(&xml, "<CompleteMultipartUpload>");
        for (size_t i = 0; r == 0 && i < nparts; i++) {
                r = af_buf_addf(&xml, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag>",
                                parts[i].number, parts[i].etag);
                if (r == 0 && parts[i].crc32c[0])
                        r = af_buf_addf(&xml, "<ChecksumCRC32C>%s</ChecksumCRC32C>",
                                        parts[i].crc32c);
                if (r == 0)
                        r = af_buf_adds(&xml, "</Part>");
        }
        if (r == 0)
                r = af_buf_adds(&xml, "</CompleteMultipartUpload>");
        if (r < 0) {
                af_buf_done(&xml);
                return r;
        }
        af_sha256(xml.ptr, xml.len, digest);
        af_hex(digest, sizeof(digest), sha_hex);
        rq = (struct request){ .method = "POST",
                               .bucket = bucket,
                               .key = key,
                               .query = q,
                               .nquery = 1,
                               .extra = cond,
                               .nextra = c->object && c->object->no_overwrite ? 1 : 0,
                               .payload_hash = sha_hex,
                               .mem_body = xml.ptr,
                               .mem_len = xml.len };
        response_init(&resp);
        r = perform(c, &rq, &resp, err);
        /* S3 may answer 200 and still fail: the error is then in the body. */
        if (r == 0 && strstr(af_buf_str(&resp.body), "<Error>")) {
                fill_error(err, &resp);
                r = status_errno(500, err->code);
        }
        if (r == 0) {
                af_xml_copy(af_buf_str(&resp.body), resp.body.len, "ETag", ret->etag,
                            sizeof(ret->etag));
                snprintf(ret->version_id, sizeof(ret->version_id), "%s", resp.version_id);
        }
        af_buf_done(&resp.body);
        af_buf_done(&xml);
        return r;
}

int af_s3_abort_multipart(struct af_s3_client *c, const char *bucket, const char *key,
                          const char *upload_id, struct af_s3_error *err)
{
        struct af_sigv4_param q[1] = { { "uploadId", upload_id } };
        struct request rq = { .method = "DELETE",
                              .bucket = bucket,
                              .key = key,
                              .query = q,
                              .nquery = 1,
                              .payload_hash = empty_sha256 };
        struct response resp;
        int r;

        response_init(&resp);
        r = perform(c, &rq, &resp, err);
        af_buf_done(&resp.body);
        return r;
}

int af_s3_list_parts(struct af_s3_client *c, const char *bucket, const char *key,
                     const char *upload_id, struct af_s3_part **ret_parts, uint64_t **ret_sizes,
                     size_t *ret_n, struct af_s3_error *err)
{
        struct af_s3_part *parts = NULL;
        uint64_t *sizes = NULL;
        size_t n = 0, a = 0;
        char marker[16] = "0";
        int r = 0;

        for (int page = 0; page < AF_S3_MAX_PARTS / 100 + 2; page++) {
                struct af_sigv4_param q[3] = { { "max-parts", "1000" },
                                               { "part-number-marker", marker },
                                               { "uploadId", upload_id } };
                struct request rq = { .method = "GET",
                                      .bucket = bucket,
                                      .key = key,
                                      .query = q,
                                      .nquery = 3,
                                      .payload_hash = empty_sha256 };
                struct response resp;
                const char *b, *part;
                char truncated[8], next[16];

                response_init(&resp);
                resp.body.cap = (size_t)4 << 20; /* 1000 parts of XML */
                r = perform(c, &rq, &resp, err);
                if (r < 0) {
                        af_buf_done(&resp.body);
                        break;
                }
                b = af_buf_str(&resp.body);
                for (part = strstr(b, "<Part>"); part; part = strstr(part + 6, "<Part>")) {
                        char num[16], etag[130], size[32], crc[12];
                        const char *endp = strstr(part, "</Part>");

                        if (!endp)
                                break;
                        size_t pl = (size_t)(endp - part);

                        /* Within this <Part> only: a part without a checksum must not take
                         * the next one's. */
                        af_xml_copy(part, pl, "PartNumber", num, sizeof(num));
                        af_xml_copy(part, pl, "ETag", etag, sizeof(etag));
                        af_xml_copy(part, pl, "Size", size, sizeof(size));
                        af_xml_copy(part, pl, "ChecksumCRC32C", crc, sizeof(crc));
                        if (n == a) {
                                size_t na = a ? a * 2 : 64;
                                struct af_s3_part *np = realloc(parts, na * sizeof(*np));
                                uint64_t *ns = np ? realloc(sizes, na * sizeof(*ns)) : NULL;

                                if (np)
                                        parts = np;
                                if (!np || !ns) {
                                        r = -ENOMEM;
                                        break;
                                }
                                sizes = ns;
                                a = na;
                        }
                        parts[n].number = (unsigned)strtoul(num, NULL, 10);
                        snprintf(parts[n].etag, sizeof(parts[n].etag), "%s", etag);
                        snprintf(parts[n].crc32c, sizeof(parts[n].crc32c), "%s", crc);
                        parts[n].sum = 0;
                        parts[n].has_sum = false; /* the server does not know ours */
                        sizes[n] = strtoull(size, NULL, 10);
                        n++;
                }
                af_xml_copy(b, resp.body.len, "IsTruncated", truncated, sizeof(truncated));
                af_xml_copy(b, resp.body.len, "NextPartNumberMarker", next, sizeof(next));
                af_buf_done(&resp.body);
                if (r < 0 || strcmp(truncated, "true") != 0 || !next[0])
                        break;
                snprintf(marker, sizeof(marker), "%s", next);
        }
        if (r < 0) {
                free(parts);
                free(sizes);
                return r;
        }
        *ret_parts = parts;
        *ret_sizes = sizes;
        *ret_n = n;
        return 0;
}

int af_s3_list_uploads(struct af_s3_client *c, const char *bucket, const char *key,
                       char ***ret_ids, size_t *ret_n, struct af_s3_error *err)
{
        struct af_sigv4_param q[2] = { { "prefix", key }, { "uploads", NULL } };
        struct request rq = { .method = "GET",
                              .bucket = bucket,
                              .query = q,
                              .nquery = 2,
                              .payload_hash = empty_sha256 };
        struct response resp;
        char **ids = NULL;
        size_t n = 0;
        const char *u;
        int r;

        response_init(&resp);
        resp.body.cap = (size_t)4 << 20;
        r = perform(c, &rq, &resp, err);
        for (u = r == 0 ? strstr(af_buf_str(&resp.body), "<Upload>") : NULL; u;
             u = strstr(u + 8, "<Upload>")) {
                char k[AF_KEY_MAX_S3 + 1], id[1024];
                const char *endu = strstr(u, "</Upload>");
                size_t ul = endu ? (size_t)(endu - u) : strlen(u);
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
        af_buf_done(&resp.body);
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
