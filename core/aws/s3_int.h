/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file s3_int.h
 * What the files of the S3 client share; private to core/aws/s3_*.c and their unit tests.
 *
 * The client is four files, one concept each:
 *   s3_messages.c  pure: addressing and URLs, the header sets, the checksum plan, the
 *                  S3 -> errno table, the XML bodies sent and the answers read
 *   s3_body.c      the request body: streamed from a file or memory, and summed once
 *   s3_client.c    the transport: the client, one signed request over curl, and the retries
 *                  that cure a request itself (expired credentials, clock skew)
 *   s3_object.c    PutObject, HeadObject, HeadBucket, CopyObject, PutObjectTagging, Delete
 *   s3_multipart.c Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts,
 *                  ListMultipartUploads
 *
 * Names crossing those files carry the af_s3_ prefix like the public ones; nothing here is
 * for callers outside core/aws.
 */
#pragma once

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/crypto.h"
#include "aws/s3.h"
#include "aws/sigv4.h"

#define AF_S3_BODY_CAP (64 * 1024) /* error and XML answers; anything longer is cut */
#define AF_S3_MAX_EXTRA 40         /* signed extra headers per request */
#define AF_S3_KEY_MAX 1024         /* S3's longest key */
#define AF_S3_META_NAME 80         /* room for "x-amz-meta-<key>" */

/** The SHA-256 of no bytes: the payload hash of a request without a body. */
extern const char af_s3_empty_sha256[];

/* The client. Set by af_s3_client_new() and read-only afterwards, but for file_meta and
 * cancel (their setters) and last_serial: the one thread using the client sets those. */
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

/* ---- the body (s3_body.c) ----------------------------------------------------------------- */

struct af_s3_body {
        const char *mem; /* the body is in memory (then fd is unused) */
        int fd;
        uint64_t base; /* file offset of the body's first byte */
        uint64_t size;
        uint64_t off;  /* bytes of the body sent so far */
        int read_errno;
};

/*
 * What a body carries, decided per request by the checksum mode (af_s3_plan):
 *   sha256  the payload's SHA-256 in x-amz-content-sha256 (signed; S3 verifies it)
 *   md5     Content-MD5 (S3 verifies it), payload UNSIGNED-PAYLOAD
 *   crc32c  x-amz-checksum-crc32c, payload UNSIGNED-PAYLOAD
 *   none    nothing but TLS, if any
 *   auto    x-amz-checksum-crc32c with Content-MD5 until the server shows (by echoing
 *           the checksum) that it verifies CRC32C; one that does not (Ceph radosgw 16
 *           ignores these headers) gets Content-MD5 from then on. Multipart parts use
 *           Content-MD5 in auto mode: a CRC32C upload must say so when it is created.
 *           Over plain http (nothing else protects the body on the wire) a signed digest
 *           is needed: Content-MD5 is one (a signed header the server verifies), so the
 *           payload is signed (SHA-256) only where CRC32C alone is sent.
 */
struct af_s3_sums {
        bool sha, md5, crc;
        bool sum; /* compute crc_value even when the request does not carry it */
        uint32_t crc_value;
        char sha_hex[2 * AF_SHA256_LEN + 1]; /* or "UNSIGNED-PAYLOAD" */
        char md5_b64[25];
        char md5_hex[2 * AF_MD5_LEN + 1];
        char crc_b64[9];
};

/** curl's read and seek callbacks over a struct af_s3_body (the userp). */
size_t af_s3_body_read(char *buf, size_t size, size_t nitems, void *userp);
int af_s3_body_seek(void *userp, curl_off_t offset, int origin);

/** The planned sums of @size bytes of @fd from @base, read once. -ESTALE if it shrank. */
int af_s3_sum_fd(int fd, uint64_t base, uint64_t size, struct af_s3_sums *s);
/** The planned sums of @n bytes at @data. */
int af_s3_sum_mem(const void *data, size_t n, struct af_s3_sums *s);

/** Whether this process's endpoint verifies CRC32C: 0 not known yet, 1 yes, -1 no. */
int af_s3_crc_state(void);
/** auto mode: learns from the answer's x-amz-checksum-crc32c (@echo) whether it verifies. */
void af_s3_learn_crc(const struct af_s3_client *c, const struct af_s3_sums *s,
                     const char *echo);

/* ---- messages (s3_messages.c): pure ------------------------------------------------------- */

/** The checksum plan for a body of @c (see struct af_s3_sums); @crc_state from
 * af_s3_crc_state(). */
void af_s3_plan(const struct af_s3_client *c, bool part, int crc_state, struct af_s3_sums *s);
/** content-md5 and x-amz-checksum-crc32c as planned, into @h (room for 2). The count. */
size_t af_s3_sum_headers(const struct af_s3_sums *s, struct af_sigv4_header *h);

/** Virtual-hosted addressing for @bucket (the bucket in the host name) rather than path? */
bool af_s3_virtual_hosted(const struct af_s3_client *c, const char *bucket);
/** "/bucket/key" (either may be NULL), each URI-encoded once, '/' kept in the key. */
int af_s3_build_uri(const char *bucket, const char *key, struct af_buf *uri);

/** Where a request goes: the Host header, the path as signed, and the whole URL. */
struct af_s3_target {
        struct af_buf host, uri, url;
};

void af_s3_target_init(struct af_s3_target *t);
void af_s3_target_done(struct af_s3_target *t);
/** Fills @t for @bucket/@key (@key NULL: the bucket) and @q. -ENOMEM / -E2BIG. */
int af_s3_target_build(const struct af_s3_client *c, const char *bucket, const char *key,
                       const struct af_sigv4_param *q, size_t nq, struct af_s3_target *t);

/**
 * The headers every request signs, in this order: host, x-amz-date, x-amz-content-sha256,
 * x-amz-security-token (when @session_token is not ""), then @extra. Borrows every string.
 * @h has room for 4 + AF_S3_MAX_EXTRA; extras beyond that are dropped. The count.
 */
size_t af_s3_signed_headers(const char *host, const char *amz_date, const char *payload_hash,
                            const char *session_token, const struct af_sigv4_header *extra,
                            size_t nextra, struct af_sigv4_header *h);

/**
 * The headers a new object gets (PutObject, CopyObject, CreateMultipartUpload): Content-Type
 * from @key, SSE, storage class, tagging, If-None-Match (@with_condition: PutObject), the
 * configured metadata and the file's own. At most @max. @names backs the metadata names
 * (AF_S3_MAX_EXTRA of them). The count.
 */
size_t af_s3_object_headers(const struct af_s3_client *c, const char *key,
                            struct af_sigv4_header *h, size_t max,
                            char names[][AF_S3_META_NAME], bool with_condition);

/**
 * The source of a server-side copy: x-amz-copy-source @src ("/bucket/key" from
 * af_s3_build_uri), x-amz-copy-source-range @range (UploadPartCopy; NULL: the whole object,
 * CopyObject) and x-amz-copy-source-if-match @src_etag (NULL or "": none). Borrows every
 * string; @h has room for 3. The count.
 */
size_t af_s3_copy_source_headers(const char *src, const char *src_etag, const char *range,
                                 struct af_sigv4_header *h);

/** "bytes=@first-@last" (inclusive, as UploadPartCopy wants) into @out. -EINVAL for an empty
 * range or one over 5 GiB, -ENAMETOOLONG when @n is too small. */
int af_s3_copy_range(uint64_t first, uint64_t last, char *out, size_t n);

/** The S3 -> errno table (see s3_messages.c) for an answer with @status and error @code. */
int af_s3_errno(long status, const char *code);

/**
 * @err from an error answer: its XML Code, Message and RequestId (the x-amz-request-id
 * header's @request_id when the body has none); a bodiless answer gets a name for its status.
 */
void af_s3_fill_error(struct af_s3_error *err, long status, const char *body, size_t len,
                      const char *request_id);

/** A 200 answer that carries an <Error> (CompleteMultipartUpload, CopyObject can). */
bool af_s3_is_error_body(const char *body);

/** <Tagging><TagSet>... for PutObjectTagging, values escaped. */
int af_s3_tagging_xml(const struct af_s3_kv *tags, size_t n, struct af_buf *out);
/** <CompleteMultipartUpload>... for @parts, with each part's CRC32C when it has one. */
int af_s3_complete_xml(const struct af_s3_part *parts, size_t n, struct af_buf *out);

/**
 * The ETag of a CopyObjectResult, quoted as in every other answer (radosgw leaves the
 * quotes out there). "" when there is none.
 */
void af_s3_copy_etag(const char *body, size_t len, char *out, size_t n);

/**
 * A CopyPartResult (UploadPartCopy's answer): its ETag, quoted like af_s3_copy_etag's, and
 * its ChecksumCRC32C when it has one (an upload created with that algorithm), into @ret;
 * "" for what it lacks. Other fields of @ret are left alone.
 */
void af_s3_parse_copy_part(const char *body, size_t len, struct af_s3_part *ret);

/** The parts of a ListParts answer, gathered over its pages. */
struct af_s3_part_list {
        struct af_s3_part *parts; /* malloc'd */
        uint64_t *sizes;          /* malloc'd, each part's size */
        size_t n, alloc;
};

/**
 * Appends the parts of one ListParts page to @l, and sets @ret_next to its
 * NextPartNumberMarker when IsTruncated is true ("" on the last page). -ENOMEM.
 */
int af_s3_parse_parts(const char *body, size_t len, struct af_s3_part_list *l, char *ret_next,
                      size_t n);

/**
 * The upload ids for exactly @key in a ListMultipartUploads answer (others under the same
 * prefix are skipped): a malloc'd array of malloc'd strings. -ENOMEM.
 */
int af_s3_parse_uploads(const char *body, size_t len, const char *key, char ***ret_ids,
                        size_t *ret_n);

/* ---- the transport (s3_client.c) ---------------------------------------------------------- */

struct af_s3_request {
        const char *method;
        const char *bucket;
        const char *key; /* NULL for bucket operations */
        const struct af_sigv4_param *query;
        size_t nquery;
        const struct af_sigv4_header *extra; /* signed extra headers (content-md5, ...) */
        size_t nextra;
        const char *payload_hash; /* the body's SHA-256 in hex; NULL: the empty body's */
        struct af_s3_body *body;  /* NULL: no body */
        const char *mem_body;    /* POST body held in memory (CompleteMultipartUpload) */
        size_t mem_len;
};

struct af_s3_response {
        long status;
        struct af_buf body;
        char request_id[128];
        char etag[130];
        char version_id[256];
        uint64_t content_length;
        char date[64];   /* the server's Date header, for clock-skew correction */
        char crc32c[16]; /* x-amz-checksum-crc32c echoed: the server verified it */
};

/** An empty response whose body keeps up to @cap bytes of the answer (0: AF_S3_BODY_CAP). */
void af_s3_response_init(struct af_s3_response *resp, size_t cap);
void af_s3_response_done(struct af_s3_response *resp);

/**
 * Sends @rq and reads the answer into @resp: 0 for a 2xx, else the errno of the table with
 * @err filled. Signs again once, with fresh credentials, after ExpiredToken, and once with
 * the server's clock after RequestTimeTooSkewed.
 */
int af_s3_perform(struct af_s3_client *c, const struct af_s3_request *rq,
                  struct af_s3_response *resp, struct af_s3_error *err);

/** af_s3_perform() for a request whose answer says nothing but its status. */
int af_s3_send(struct af_s3_client *c, const struct af_s3_request *rq, struct af_s3_error *err);

/** A spool file that could not be read, in @err. */
void af_s3_read_error(struct af_s3_error *err, int r);

/* ---- shared by the object and multipart calls (s3_object.c) ------------------------------- */

/**
 * PUT of a body already summed: PutObject when @query is NULL (with the object's headers),
 * else UploadPart (partNumber and uploadId) or PutObjectTagging. Writes the answer's ETag to
 * @ret_etag and, if set, its version id to @ret_version.
 */
int af_s3_put_body(struct af_s3_client *c, const char *bucket, const char *key,
                   const struct af_sigv4_param *query, size_t nquery, struct af_s3_body *body,
                   const struct af_s3_sums *sm, char *ret_etag, size_t etag_n,
                   char *ret_version, size_t version_n, struct af_s3_error *err);
