/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file s3.h
 * A small S3 client on libcurl with SigV4 (path-style or virtual-hosted addressing).
 *
 * One struct af_s3_client per thread: it owns a curl easy handle whose connection cache
 * keeps connections alive between requests. Clients share the credentials provider.
 *
 * Bodies stream from a file descriptor with pread(), so memory does not grow with the
 * object. Every PUT carries the payload's SHA-256 (signed, x-amz-content-sha256) and its
 * Content-MD5, both of which S3 and Ceph radosgw verify: a body that changed or was damaged
 * on the way is rejected, never stored.
 *
 * The client is built in layers (s3_int.h): messages built and read without I/O
 * (s3_messages.c), kept apart from the transport that sends them (s3_client.c), with the
 * object and multipart calls on top.
 *
 * Errors: negative errno, with struct af_s3_error saying what the server (or curl) said.
 * The mapping from S3 to errno is one table in s3_messages.c; af_s3_retryable() says which
 * are worth another attempt. Nothing here logs above debug level, and nothing logs a secret.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "aws/creds.h"

struct af_s3_client;

struct af_s3_kv {
        const char *key;
        const char *value;
};

/** What every new object gets (PutObject and CreateMultipartUpload). All optional. */
struct af_s3_object_opts {
        const char *sse;            /* x-amz-server-side-encryption: "AES256" or "aws:kms" */
        const char *sse_kms_key_id; /* with aws:kms */
        const char *storage_class;  /* x-amz-storage-class */
        const char *tagging;        /* x-amz-tagging, already URL-encoded: "k=v&k2=v2" */
        const struct af_s3_kv *tags; /* the same tags, for PutObjectTagging after a copy */
        size_t ntags;
        const struct af_s3_kv *metadata; /* x-amz-meta-<key>: value */
        size_t nmetadata;
        bool no_overwrite;          /* If-None-Match: * (a 412 is reported, not retried) */
        bool no_content_type;       /* else Content-Type from the key's extension */
};

/** The Content-Type for @key's extension (Go's mime table for the common ones), else
 * "application/octet-stream". */
const char *af_s3_content_type(const char *key);

enum af_checksum {
        AF_CHECKSUM_AUTO = 0, /* see s3_int.h: CRC32C where the server verifies it, else MD5 */
        AF_CHECKSUM_CRC32C,
        AF_CHECKSUM_SHA256,
        AF_CHECKSUM_MD5,
        AF_CHECKSUM_NONE,
};

enum af_addressing {
        AF_ADDRESSING_AUTO = 0, /* virtual-hosted on AWS endpoints, path style elsewhere */
        AF_ADDRESSING_PATH,
        AF_ADDRESSING_VIRTUAL,
};

struct af_s3_config {
        const char *endpoint; /* "http://127.0.0.1:7480", "https://s3.eu-west-1.amazonaws.com" */
        const char *region;
        const char *ca_file;     /* NULL: the system's CA store */
        long connect_timeout_ms; /* 0: 10 s */
        long low_speed_time_s;   /* a transfer below 1 KiB/s for this long fails; 0: 60 s */
        const struct af_s3_object_opts *object; /* borrowed; NULL: none */
        enum af_checksum checksum;
        enum af_addressing addressing;
};

struct af_s3_error {
        int http_status;   /* 0 when no HTTP response arrived */
        char code[64];     /* S3 error code ("SignatureDoesNotMatch"), or curl's for transport */
        char message[384]; /* S3's <Message>, or curl's error text */
        char request_id[128];
};

struct af_s3_put_result {
        char etag[130];
        char version_id[256];
        /* A PutObject's body MD5 (hex), when it was summed ("" if not): set before the
         * request, so a failed one whose answer was lost still says what may have landed. */
        char sent_md5[33];
};

struct af_s3_head_result {
        uint64_t size;
        char etag[130];
};

/** Once per process, before threads start: curl's global init. */
int af_s3_global_init(void);

/**
 * Checks @cfg (endpoint must be http:// or https:// with a host and no path) and creates a
 * client. -EINVAL with a line in @err for a bad endpoint, -ENOMEM.
 * The client borrows @creds, which must outlive it.
 */
int af_s3_client_new(const struct af_s3_config *cfg, struct af_creds_provider *creds,
                     struct af_s3_client **ret, struct af_buf *err);
void af_s3_client_free(struct af_s3_client *c);

/**
 * Metadata (x-amz-meta-<key>) for the objects this client creates next (PutObject and
 * CreateMultipartUpload), on top of the configured ones: a file's own mode, owner and mtime.
 * Borrowed until set again (NULL, 0 clears).
 */
void af_s3_client_set_file_meta(struct af_s3_client *c, const struct af_s3_kv *meta, size_t n);

/** When *@flag becomes true, a transfer in flight stops with -ECANCELED (shutdown). */
void af_s3_client_set_cancel(struct af_s3_client *c, const atomic_bool *flag);

/**
 * PutObject of @size bytes of @fd from offset 0. Returns 0 and fills @ret, or a negative
 * errno and @err. -EBADMSG means the server found the body damaged or changed (BadDigest,
 * XAmzContentSHA256Mismatch): read the file again and retry.
 */
int af_s3_put_object_fd(struct af_s3_client *c, const char *bucket, const char *key, int fd,
                        uint64_t size, struct af_s3_put_result *ret, struct af_s3_error *err);

/** PutObject of @len bytes in memory (an archive built on the fly). */
int af_s3_put_object_mem(struct af_s3_client *c, const char *bucket, const char *key,
                         const void *data, size_t len, struct af_s3_put_result *ret,
                         struct af_s3_error *err);

int af_s3_head_object(struct af_s3_client *c, const char *bucket, const char *key,
                      struct af_s3_head_result *ret, struct af_s3_error *err);
int af_s3_head_bucket(struct af_s3_client *c, const char *bucket, struct af_s3_error *err);

/**
 * CopyObject: a server-side copy of @src_bucket/@src_key to @bucket/@key, only if the source's
 * ETag is still @src_etag (x-amz-copy-source-if-match; NULL or "": any). The new object gets
 * the headers a PutObject of @key would (Content-Type from @key, SSE, storage class, tags,
 * metadata, the file metadata set with af_s3_client_set_file_meta): metadata and tagging
 * directives are REPLACE, so a copy is indistinguishable from an upload of the same bytes.
 * With tags configured, a PutObjectTagging follows the copy (Ceph radosgw drops tags on a
 * copy that replaces metadata, and ignores x-amz-tagging there); its failure fails the copy.
 * -EFBIG for @size over 5 GiB (CopyObject's limit: re-upload instead), -EOPNOTSUPP with
 * no_overwrite (CopyObject has no If-None-Match everywhere: re-upload instead), -EEXIST
 * when the source changed (412), -ENOENT when it is gone. A 200 answer carrying an <Error>
 * is an error.
 */
int af_s3_copy_object(struct af_s3_client *c, const char *src_bucket, const char *src_key,
                      const char *src_etag, const char *bucket, const char *key, uint64_t size,
                      struct af_s3_put_result *ret, struct af_s3_error *err);
/** DeleteObject. 0 also when there was nothing to delete (S3 answers 204 either way). */
int af_s3_delete_object(struct af_s3_client *c, const char *bucket, const char *key,
                        struct af_s3_error *err);

/* ---- multipart upload (S3 API: CreateMultipartUpload, UploadPart, UploadPartCopy, Complete,
 *      Abort) ---- */

#define AF_S3_MIN_PART ((uint64_t)5 << 20) /* every part but the last */
#define AF_S3_MAX_PART ((uint64_t)5 << 30)
#define AF_S3_MAX_PARTS 10000

struct af_s3_part {
        unsigned number; /* 1-based */
        char etag[130];
        char crc32c[12]; /* base64, when the part carried one */
        /* CRC-32C of the bytes sent, computed here whatever the part carried, so that a
         * resumed upload can check the spool file still holds them (see queue.c). */
        uint32_t sum;
        bool has_sum;
};

/**
 * The part size for an object of @object_size bytes: @min_part (at least 5 MiB), grown in
 * MiB steps until the object fits in 10,000 parts; at most 5 GiB. Pure.
 */
uint64_t af_s3_part_size(uint64_t object_size, uint64_t min_part);

int af_s3_create_multipart(struct af_s3_client *c, const char *bucket, const char *key,
                           char *ret_upload_id, size_t n, struct af_s3_error *err);
/** Uploads bytes [@off, @off + @len) of @fd as part @part_number (signed SHA-256 and
 * Content-MD5, like af_s3_put_object_fd). */
int af_s3_upload_part_fd(struct af_s3_client *c, const char *bucket, const char *key,
                         const char *upload_id, unsigned part_number, int fd, uint64_t off,
                         uint64_t len, struct af_s3_part *ret, struct af_s3_error *err);
/** Uploads @len bytes in memory as part @part_number. */
int af_s3_upload_part_mem(struct af_s3_client *c, const char *bucket, const char *key,
                          const char *upload_id, unsigned part_number, const void *data,
                          size_t len, struct af_s3_part *ret, struct af_s3_error *err);
/** A range of an object already in S3, for UploadPartCopy. */
struct af_s3_copy_src {
        const char *bucket;
        const char *key;
        const char *etag;    /* x-amz-copy-source-if-match (NULL or "": any) */
        uint64_t first, last; /* the bytes copied, both included */
};

/**
 * UploadPartCopy: part @part_number of @upload_id is bytes [@src->first, @src->last] of
 * @src->key, copied by the server (no body sent), only if the source still has ETag
 * @src->etag (x-amz-copy-source-if-match; S3 answers 412, -EEXIST, when it changed; Ceph
 * radosgw ignores the header, so the caller checks the source itself too). The part gets
 * the upload's object headers (those of CreateMultipartUpload). @ret: the part's ETag and,
 * for an upload created with CRC32C, its checksum. -EINVAL for a range over 5 GiB, -ENOENT
 * when the source is gone, and a 200 answer carrying an <Error> is an error.
 */
int af_s3_upload_part_copy(struct af_s3_client *c, const char *bucket, const char *key,
                           const char *upload_id, unsigned part_number,
                           const struct af_s3_copy_src *src, struct af_s3_part *ret,
                           struct af_s3_error *err);
/**
 * ListParts: the parts already stored for @upload_id, in ascending order, all pages.
 * @ret_parts (malloc'd) and @ret_sizes (malloc'd, each part's size) on success. -ENOENT
 * (NoSuchUpload) when the server no longer knows the upload.
 */
int af_s3_list_parts(struct af_s3_client *c, const char *bucket, const char *key,
                     const char *upload_id, struct af_s3_part **ret_parts, uint64_t **ret_sizes,
                     size_t *ret_n, struct af_s3_error *err);
/**
 * ListMultipartUploads for exactly @key: the ids of uploads in progress for it (malloc'd
 * array of malloc'd strings). For cleaning up after a CreateMultipartUpload whose answer was
 * lost, which leaves an upload nobody knows the id of.
 */
int af_s3_list_uploads(struct af_s3_client *c, const char *bucket, const char *key,
                       char ***ret_ids, size_t *ret_n, struct af_s3_error *err);
/** @parts in ascending part number order. A 200 answer carrying an <Error> is an error. */
int af_s3_complete_multipart(struct af_s3_client *c, const char *bucket, const char *key,
                             const char *upload_id, const struct af_s3_part *parts,
                             size_t nparts, struct af_s3_put_result *ret,
                             struct af_s3_error *err);
int af_s3_abort_multipart(struct af_s3_client *c, const char *bucket, const char *key,
                          const char *upload_id, struct af_s3_error *err);

/** Seconds added to our clock when signing, learned from a RequestTimeTooSkewed answer. */
long af_s3_clock_offset(void);

/** True for errors that another attempt may cure (5xx, throttling, transport). */
bool af_s3_retryable(int r);

/** "HTTP 403 SignatureDoesNotMatch: <message> (request id X)" or "connection refused: <curl>" */
void af_s3_error_format(const struct af_s3_error *e, struct af_buf *out);
