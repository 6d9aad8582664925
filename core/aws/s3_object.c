/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The S3 object calls: PutObject (from a file or memory), HeadObject, HeadBucket, CopyObject
 * (with the PutObjectTagging that follows it), DeleteObject; and the summed PUT that
 * UploadPart shares. Each builds its request from s3_messages.c and sends it with
 * af_s3_perform(); see s3.h for what each promises.
 */
#include "aws/s3_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int af_s3_put_body(struct af_s3_client *c, const char *bucket, const char *key,
                   const struct af_sigv4_param *query, size_t nquery, struct af_s3_body *body,
                   const struct af_s3_sums *sm, char *ret_etag, size_t etag_n,
                   char *ret_version, size_t version_n, struct af_s3_error *err)
{
        struct af_sigv4_header extra[AF_S3_MAX_EXTRA];
        char names[AF_S3_MAX_EXTRA][AF_S3_META_NAME];
        struct af_s3_response resp;
        struct af_s3_request rq;
        size_t ne = 0;
        int r;

        ne = af_s3_sum_headers(sm, extra);
        if (!query) /* PutObject, not UploadPart: the object's own headers */
                ne += af_s3_object_headers(c, key, extra + ne, AF_S3_MAX_EXTRA - ne, names, true);
        rq = (struct af_s3_request){ .method = "PUT",
                                     .bucket = bucket,
                                     .key = key,
                                     .query = query,
                                     .nquery = nquery,
                                     .extra = extra,
                                     .nextra = ne,
                                     .payload_hash = sm->sha_hex,
                                     .body = body };
        af_s3_response_init(&resp, 0);
        r = af_s3_perform(c, &rq, &resp, err);
        if (r == 0) {
                snprintf(ret_etag, etag_n, "%s", resp.etag);
                if (ret_version)
                        snprintf(ret_version, version_n, "%s", resp.version_id);
                af_s3_learn_crc(c, sm, resp.crc32c);
        }
        af_s3_response_done(&resp);
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

/* PutObject of @body, summed here. */
static int put_object(struct af_s3_client *c, const char *bucket, const char *key,
                      struct af_s3_body *body, struct af_s3_put_result *ret,
                      struct af_s3_error *err)
{
        struct af_s3_sums sm;
        int r;

        memset(err, 0, sizeof(*err));
        ret->sent_md5[0] = '\0';
        af_s3_plan(c, false, af_s3_crc_state(), &sm);
        sm.md5 = sm.md5 || (c->object && c->object->no_overwrite); /* to recognise our own */
        if (body->mem) {
                r = af_s3_sum_mem(body->mem, (size_t)body->size, &sm);
        } else {
                r = af_s3_sum_fd(body->fd, 0, body->size, &sm);
                if (r < 0) {
                        af_s3_read_error(err, r);
                        return r;
                }
        }
        if (r == 0 && sm.md5)
                memcpy(ret->sent_md5, sm.md5_hex, sizeof(ret->sent_md5));
        if (r == 0)
                r = af_s3_put_body(c, bucket, key, NULL, 0, body, &sm, ret->etag,
                                   sizeof(ret->etag), ret->version_id, sizeof(ret->version_id),
                                   err);
        return check_own_object(c, bucket, key, sm.md5 ? sm.md5_hex : "", body->size, r,
                                ret->etag, sizeof(ret->etag), err);
}

int af_s3_put_object_mem(struct af_s3_client *c, const char *bucket, const char *key,
                         const void *data, size_t len, struct af_s3_put_result *ret,
                         struct af_s3_error *err)
{
        struct af_s3_body body = { .mem = data ? data : "", .size = len };

        return put_object(c, bucket, key, &body, ret, err);
}

int af_s3_put_object_fd(struct af_s3_client *c, const char *bucket, const char *key, int fd,
                        uint64_t size, struct af_s3_put_result *ret, struct af_s3_error *err)
{
        struct af_s3_body body = { .fd = fd, .size = size };

        return put_object(c, bucket, key, &body, ret, err);
}

int af_s3_head_object(struct af_s3_client *c, const char *bucket, const char *key,
                      struct af_s3_head_result *ret, struct af_s3_error *err)
{
        struct af_s3_request rq = { .method = "HEAD",
                                    .bucket = bucket,
                                    .key = key };
        struct af_s3_response resp;
        int r;

        af_s3_response_init(&resp, 0);
        r = af_s3_perform(c, &rq, &resp, err);
        if (r == 0) {
                ret->size = resp.content_length;
                snprintf(ret->etag, sizeof(ret->etag), "%s", resp.etag);
        }
        af_s3_response_done(&resp);
        return r;
}

int af_s3_head_bucket(struct af_s3_client *c, const char *bucket, struct af_s3_error *err)
{
        struct af_s3_request rq = { .method = "HEAD",
                                    .bucket = bucket };

        return af_s3_send(c, &rq, err);
}

/* ---- copy and delete --------------------------------------------------------------------- */

/* PutObjectTagging with the configured tags (S3 wants the body's Content-MD5). */
static int put_object_tagging(struct af_s3_client *c, const char *bucket, const char *key,
                              struct af_s3_error *err)
{
        static const struct af_sigv4_param q[] = { { "tagging", NULL } };
        const struct af_s3_object_opts *o = c->object;
        struct af_s3_body body = { 0 };
        struct af_buf xml;
        struct af_s3_sums sm;
        char etag[130];
        int r;

        af_buf_init(&xml, 64 * 1024);
        r = af_s3_tagging_xml(o->tags, o->ntags, &xml);
        if (r == 0) {
                af_s3_plan(c, true, af_s3_crc_state(), &sm);
                sm.md5 = true;
                sm.crc = false;
                r = af_s3_sum_mem(xml.ptr, xml.len, &sm);
        }
        if (r == 0) {
                body = (struct af_s3_body){ .mem = xml.ptr, .size = xml.len };
                r = af_s3_put_body(c, bucket, key, q, 1, &body, &sm, etag, sizeof(etag), NULL, 0,
                                   err);
        }
        af_buf_done(&xml);
        return r;
}

/* The headers of a CopyObject from @src (its "/bucket/key") to @key. The count. */
static size_t copy_headers(const struct af_s3_client *c, const char *src, const char *src_etag,
                           const char *key, struct af_sigv4_header *extra,
                           char names[][AF_S3_META_NAME])
{
        size_t ne = af_s3_copy_source_headers(src, src_etag, NULL, extra);

        /* REPLACE: the new key's Content-Type and this mount's options, not the source's. */
        extra[ne++] = (struct af_sigv4_header){ "x-amz-metadata-directive", "REPLACE" };
        if (c->object && c->object->tagging)
                extra[ne++] = (struct af_sigv4_header){ "x-amz-tagging-directive", "REPLACE" };
        return ne + af_s3_object_headers(c, key, extra + ne, AF_S3_MAX_EXTRA - ne, names, false);
}

/* A CopyObject answer read: like CompleteMultipartUpload, a copy may answer 200 and fail in
 * the body; a success names the new object's ETag. */
static int copy_result(const struct af_s3_response *resp, struct af_s3_put_result *ret,
                       struct af_s3_error *err)
{
        if (af_s3_is_error_body(af_buf_str(&resp->body))) {
                af_s3_fill_error(err, resp->status, af_buf_str(&resp->body), resp->body.len,
                                 resp->request_id);
                return af_s3_errno(500, err->code);
        }
        af_s3_copy_etag(af_buf_str(&resp->body), resp->body.len, ret->etag, sizeof(ret->etag));
        snprintf(ret->version_id, sizeof(ret->version_id), "%s", resp->version_id);
        if (!ret->etag[0]) {
                snprintf(err->code, sizeof(err->code), "BadResponse");
                snprintf(err->message, sizeof(err->message), "CopyObject answer has no ETag");
                err->http_status = (int)resp->status;
                return -EPROTO;
        }
        return 0;
}

int af_s3_copy_object(struct af_s3_client *c, const char *src_bucket, const char *src_key,
                      const char *src_etag, const char *bucket, const char *key, uint64_t size,
                      struct af_s3_put_result *ret, struct af_s3_error *err)
{
        struct af_sigv4_header extra[AF_S3_MAX_EXTRA];
        char names[AF_S3_MAX_EXTRA][AF_S3_META_NAME];
        struct af_s3_body body = { .mem = "", .size = 0 };
        struct af_s3_response resp;
        struct af_s3_request rq;
        struct af_buf src;
        int r;

        memset(err, 0, sizeof(*err));
        if (size > AF_S3_MAX_PART)
                return -EFBIG;
        if (c->object && c->object->no_overwrite)
                return -EOPNOTSUPP;
        af_buf_init(&src, 0);
        af_s3_response_init(&resp, 0);
        /* x-amz-copy-source: "/bucket/key", URI-encoded like a path ('/' kept), as S3
         * documents. */
        r = af_s3_build_uri(src_bucket, src_key, &src);
        if (r < 0)
                goto out;
        rq = (struct af_s3_request){ .method = "PUT",
                                     .bucket = bucket,
                                     .key = key,
                                     .extra = extra,
                                     .nextra = copy_headers(c, af_buf_str(&src), src_etag, key,
                                                            extra, names),
                                     .body = &body };
        r = af_s3_perform(c, &rq, &resp, err);
        if (r == 0)
                r = copy_result(&resp, ret, err);
        if (r == 0 && c->object && c->object->ntags)
                r = put_object_tagging(c, bucket, key, err);
out:
        af_s3_response_done(&resp);
        af_buf_done(&src);
        return r;
}

int af_s3_delete_object(struct af_s3_client *c, const char *bucket, const char *key,
                        struct af_s3_error *err)
{
        struct af_s3_request rq = { .method = "DELETE",
                                    .bucket = bucket,
                                    .key = key };
        int r = af_s3_send(c, &rq, err);

        /* Gone already (S3 says 204, some servers 404): what we wanted. */
        if (r == -ENOENT && strcmp(err->code, "NoSuchBucket") != 0) {
                memset(err, 0, sizeof(*err));
                r = 0;
        }
        return r;
}
