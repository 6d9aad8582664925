/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The S3 multipart calls: the part size, CreateMultipartUpload, UploadPart (from a file or
 * memory), UploadPartCopy (a range of an object already in S3),
 * CompleteMultipartUpload, AbortMultipartUpload, ListParts (all pages) and
 * ListMultipartUploads. The upload's state machine is the queue's (core/upload); each call
 * here is one request built from s3_messages.c and sent with af_s3_perform().
 */
#include "aws/s3_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"
#include "base/xml.h"

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
        struct af_sigv4_header extra[AF_S3_MAX_EXTRA];
        char names[AF_S3_MAX_EXTRA][AF_S3_META_NAME];
        struct af_s3_request rq = { .method = "POST",
                                    .bucket = bucket,
                                    .key = key,
                                    .query = q,
                                    .nquery = 1,
                                    .extra = extra };
        struct af_s3_response resp;
        char id[1024];
        int r;

        rq.nextra = af_s3_object_headers(c, key, extra, AF_S3_MAX_EXTRA, names, false);
        if (c->checksum == AF_CHECKSUM_CRC32C) /* parts will carry CRC32C: say so up front */
                extra[rq.nextra++] = (struct af_sigv4_header){ "x-amz-checksum-algorithm",
                                                               "CRC32C" };
        af_s3_response_init(&resp, 0);
        r = af_s3_perform(c, &rq, &resp, err);
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
        af_s3_response_done(&resp);
        return r;
}

/* UploadPart of @body, summed here (its CRC-32C kept in @ret whatever the part carries). */
static int upload_part(struct af_s3_client *c, const char *bucket, const char *key,
                       const char *upload_id, unsigned part_number, struct af_s3_body *body,
                       struct af_s3_part *ret, struct af_s3_error *err)
{
        struct af_sigv4_param q[2];
        struct af_s3_sums sm;
        char num[16];
        int r;

        memset(err, 0, sizeof(*err));
        af_s3_plan(c, true, af_s3_crc_state(), &sm);
        sm.sum = true;
        if (body->mem) {
                r = af_s3_sum_mem(body->mem, (size_t)body->size, &sm);
        } else {
                r = af_s3_sum_fd(body->fd, body->base, body->size, &sm);
                if (r < 0)
                        af_s3_read_error(err, r);
        }
        if (r < 0)
                return r;
        snprintf(num, sizeof(num), "%u", part_number);
        q[0] = (struct af_sigv4_param){ "partNumber", num };
        q[1] = (struct af_sigv4_param){ "uploadId", upload_id };
        ret->number = part_number;
        snprintf(ret->crc32c, sizeof(ret->crc32c), "%s", sm.crc ? sm.crc_b64 : "");
        ret->sum = sm.crc_value;
        ret->has_sum = true;
        return af_s3_put_body(c, bucket, key, q, 2, body, &sm, ret->etag, sizeof(ret->etag), NULL,
                              0, err);
}

int af_s3_upload_part_fd(struct af_s3_client *c, const char *bucket, const char *key,
                         const char *upload_id, unsigned part_number, int fd, uint64_t off,
                         uint64_t len, struct af_s3_part *ret, struct af_s3_error *err)
{
        struct af_s3_body body = { .fd = fd, .base = off, .size = len };

        return upload_part(c, bucket, key, upload_id, part_number, &body, ret, err);
}

int af_s3_upload_part_mem(struct af_s3_client *c, const char *bucket, const char *key,
                          const char *upload_id, unsigned part_number, const void *data,
                          size_t len, struct af_s3_part *ret, struct af_s3_error *err)
{
        struct af_s3_body body = { .mem = data ? data : "", .size = len };

        return upload_part(c, bucket, key, upload_id, part_number, &body, ret, err);
}

int af_s3_upload_part_copy(struct af_s3_client *c, const char *bucket, const char *key,
                           const char *upload_id, unsigned part_number,
                           const struct af_s3_copy_src *src, struct af_s3_part *ret,
                           struct af_s3_error *err)
{
        struct af_sigv4_header extra[3];
        struct af_sigv4_param q[2];
        struct af_s3_body body = { .mem = "", .size = 0 };
        struct af_s3_response resp;
        struct af_s3_request rq;
        struct af_buf uri;
        char num[16], range[64];
        int r;

        memset(err, 0, sizeof(*err));
        r = af_s3_copy_range(src->first, src->last, range, sizeof(range));
        if (r < 0)
                return r;
        af_buf_init(&uri, 0);
        af_s3_response_init(&resp, 0);
        /* The source as CopyObject names it: "/bucket/key", URI-encoded once, '/' kept. */
        r = af_s3_build_uri(src->bucket, src->key, &uri);
        if (r < 0)
                goto out;
        snprintf(num, sizeof(num), "%u", part_number);
        q[0] = (struct af_sigv4_param){ "partNumber", num };
        q[1] = (struct af_sigv4_param){ "uploadId", upload_id };
        rq = (struct af_s3_request){ .method = "PUT",
                                     .bucket = bucket,
                                     .key = key,
                                     .query = q,
                                     .nquery = 2,
                                     .extra = extra,
                                     .nextra = af_s3_copy_source_headers(af_buf_str(&uri),
                                                                         src->etag, range, extra),
                                     .payload_hash = af_s3_empty_sha256,
                                     .body = &body };
        r = af_s3_perform(c, &rq, &resp, err);
        /* Like CopyObject, UploadPartCopy may answer 200 and fail in the body. */
        if (r == 0 && af_s3_is_error_body(af_buf_str(&resp.body))) {
                af_s3_fill_error(err, resp.status, af_buf_str(&resp.body), resp.body.len,
                                 resp.request_id);
                r = af_s3_errno(500, err->code);
        }
        if (r < 0)
                goto out;
        memset(ret, 0, sizeof(*ret));
        ret->number = part_number;
        af_s3_parse_copy_part(af_buf_str(&resp.body), resp.body.len, ret);
        if (!ret->etag[0]) {
                snprintf(err->code, sizeof(err->code), "BadResponse");
                snprintf(err->message, sizeof(err->message), "UploadPartCopy answer has no ETag");
                err->http_status = (int)resp.status;
                r = -EPROTO;
        }
out:
        af_s3_response_done(&resp);
        af_buf_done(&uri);
        return r;
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
        struct af_s3_response resp;
        struct af_buf xml;
        struct af_s3_request rq;
        int r = 0;

        af_buf_init(&xml, (size_t)64 << 20);
        r = af_s3_complete_xml(parts, nparts, &xml);
        if (r < 0) {
                af_buf_done(&xml);
                return r;
        }
        af_sha256(xml.ptr, xml.len, digest);
        af_hex(digest, sizeof(digest), sha_hex);
        rq = (struct af_s3_request){ .method = "POST",
                                     .bucket = bucket,
                                     .key = key,
                                     .query = q,
                                     .nquery = 1,
                                     .extra = cond,
                                     .nextra = c->object && c->object->no_overwrite ? 1 : 0,
                                     .payload_hash = sha_hex,
                                     .mem_body = xml.ptr,
                                     .mem_len = xml.len };
        af_s3_response_init(&resp, 0);
        r = af_s3_perform(c, &rq, &resp, err);
        /* S3 may answer 200 and still fail: the error is then in the body. */
        if (r == 0 && af_s3_is_error_body(af_buf_str(&resp.body))) {
                af_s3_fill_error(err, resp.status, af_buf_str(&resp.body), resp.body.len,
                                 resp.request_id);
                r = af_s3_errno(500, err->code);
        }
        if (r == 0) {
                af_xml_copy(af_buf_str(&resp.body), resp.body.len, "ETag", ret->etag,
                            sizeof(ret->etag));
                snprintf(ret->version_id, sizeof(ret->version_id), "%s", resp.version_id);
        }
        af_s3_response_done(&resp);
        af_buf_done(&xml);
        return r;
}

int af_s3_abort_multipart(struct af_s3_client *c, const char *bucket, const char *key,
                          const char *upload_id, struct af_s3_error *err)
{
        struct af_sigv4_param q[1] = { { "uploadId", upload_id } };
        struct af_s3_request rq = { .method = "DELETE",
                                    .bucket = bucket,
                                    .key = key,
                                    .query = q,
                                    .nquery = 1 };

        return af_s3_send(c, &rq, err);
}

int af_s3_list_parts(struct af_s3_client *c, const char *bucket, const char *key,
                     const char *upload_id, struct af_s3_part **ret_parts, uint64_t **ret_sizes,
                     size_t *ret_n, struct af_s3_error *err)
{
        struct af_s3_part_list l = { 0 };
        char marker[16] = "0";
        int r = 0;

        for (int page = 0; page < AF_S3_MAX_PARTS / 100 + 2; page++) {
                struct af_sigv4_param q[3] = { { "max-parts", "1000" },
                                               { "part-number-marker", marker },
                                               { "uploadId", upload_id } };
                struct af_s3_request rq = { .method = "GET",
                                            .bucket = bucket,
                                            .key = key,
                                            .query = q,
                                            .nquery = 3 };
                struct af_s3_response resp;
                char next[16];

                af_s3_response_init(&resp, (size_t)4 << 20); /* 1000 parts of XML */
                r = af_s3_perform(c, &rq, &resp, err);
                if (r == 0)
                        r = af_s3_parse_parts(af_buf_str(&resp.body), resp.body.len, &l, next,
                                              sizeof(next));
                af_s3_response_done(&resp);
                if (r < 0 || !next[0])
                        break;
                snprintf(marker, sizeof(marker), "%s", next);
        }
        if (r < 0) {
                free(l.parts);
                free(l.sizes);
                return r;
        }
        *ret_parts = l.parts;
        *ret_sizes = l.sizes;
        *ret_n = l.n;
        return 0;
}

int af_s3_list_uploads(struct af_s3_client *c, const char *bucket, const char *key,
                       char ***ret_ids, size_t *ret_n, struct af_s3_error *err)
{
        struct af_sigv4_param q[2] = { { "prefix", key }, { "uploads", NULL } };
        struct af_s3_request rq = { .method = "GET",
                                    .bucket = bucket,
                                    .query = q,
                                    .nquery = 2 };
        struct af_s3_response resp;
        int r;

        af_s3_response_init(&resp, (size_t)4 << 20);
        r = af_s3_perform(c, &rq, &resp, err);
        if (r == 0)
                r = af_s3_parse_uploads(af_buf_str(&resp.body), resp.body.len, key, ret_ids,
                                        ret_n);
        af_s3_response_done(&resp);
        return r;
}
