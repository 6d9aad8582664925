/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file s3_ops.h
 * The S3 calls the upload queue makes, as a table of function pointers: the seam between
 * the queue and the S3 client.
 *
 * af_s3_ops_client is the real client (aws/s3.h), what the queue uses unless
 * af_queue_config.s3_ops names another table. A unit test passes a stand-in, so scheduling,
 * retries, ordering by key and drain are tested without a server. Each entry has the
 * signature, the contract and the errnos of the aws/s3.h function it is named after; a
 * stand-in keeps them (a negative errno, af_s3_retryable() deciding what is retried, @err
 * filled on failure). Entries are called from the queue's workers and part threads, one
 * client per thread, with no queue lock held: a stand-in must be thread-safe.
 */
#pragma once

#include <stdatomic.h>

#include "aws/s3.h"

struct af_s3_ops {
        int (*client_new)(const struct af_s3_config *cfg, struct af_creds_provider *creds,
                          struct af_s3_client **ret, struct af_buf *err);
        void (*client_free)(struct af_s3_client *c);
        void (*set_file_meta)(struct af_s3_client *c, const struct af_s3_kv *meta, size_t n);
        void (*set_cancel)(struct af_s3_client *c, const atomic_bool *flag);
        int (*put_object_fd)(struct af_s3_client *c, const char *bucket, const char *key, int fd,
                             uint64_t size, struct af_s3_put_result *ret,
                             struct af_s3_error *err);
        int (*put_object_mem)(struct af_s3_client *c, const char *bucket, const char *key,
                              const void *data, size_t len, struct af_s3_put_result *ret,
                              struct af_s3_error *err);
        int (*head_object)(struct af_s3_client *c, const char *bucket, const char *key,
                           struct af_s3_head_result *ret, struct af_s3_error *err);
        int (*copy_object)(struct af_s3_client *c, const char *src_bucket, const char *src_key,
                           const char *src_etag, const char *bucket, const char *key,
                           uint64_t size, struct af_s3_put_result *ret, struct af_s3_error *err);
        int (*delete_object)(struct af_s3_client *c, const char *bucket, const char *key,
                             struct af_s3_error *err);
        int (*create_multipart)(struct af_s3_client *c, const char *bucket, const char *key,
                                char *ret_upload_id, size_t n, struct af_s3_error *err);
        int (*upload_part_fd)(struct af_s3_client *c, const char *bucket, const char *key,
                              const char *upload_id, unsigned part_number, int fd, uint64_t off,
                              uint64_t len, struct af_s3_part *ret, struct af_s3_error *err);
        int (*upload_part_mem)(struct af_s3_client *c, const char *bucket, const char *key,
                               const char *upload_id, unsigned part_number, const void *data,
                               size_t len, struct af_s3_part *ret, struct af_s3_error *err);
        int (*upload_part_copy)(struct af_s3_client *c, const char *bucket, const char *key,
                                const char *upload_id, unsigned part_number,
                                const struct af_s3_copy_src *src, struct af_s3_part *ret,
                                struct af_s3_error *err);
        int (*list_parts)(struct af_s3_client *c, const char *bucket, const char *key,
                          const char *upload_id, struct af_s3_part **ret_parts,
                          uint64_t **ret_sizes, size_t *ret_n, struct af_s3_error *err);
        int (*list_uploads)(struct af_s3_client *c, const char *bucket, const char *key,
                            char ***ret_ids, size_t *ret_n, struct af_s3_error *err);
        int (*complete_multipart)(struct af_s3_client *c, const char *bucket, const char *key,
                                  const char *upload_id, const struct af_s3_part *parts,
                                  size_t nparts, struct af_s3_put_result *ret,
                                  struct af_s3_error *err);
        int (*abort_multipart)(struct af_s3_client *c, const char *bucket, const char *key,
                               const char *upload_id, struct af_s3_error *err);
};

/** The real S3 client's functions (aws/s3.h). */
extern const struct af_s3_ops af_s3_ops_client;
