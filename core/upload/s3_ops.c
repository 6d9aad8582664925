/* SPDX-License-Identifier: Apache-2.0 */
/* The real S3 client behind the queue's seam (see s3_ops.h): aws/s3.h, entry for entry. */
#include "upload/s3_ops.h"

const struct af_s3_ops af_s3_ops_client = {
        .client_new = af_s3_client_new,
        .client_free = af_s3_client_free,
        .set_file_meta = af_s3_client_set_file_meta,
        .set_cancel = af_s3_client_set_cancel,
        .put_object_fd = af_s3_put_object_fd,
        .put_object_mem = af_s3_put_object_mem,
        .head_object = af_s3_head_object,
        .copy_object = af_s3_copy_object,
        .delete_object = af_s3_delete_object,
        .create_multipart = af_s3_create_multipart,
        .upload_part_fd = af_s3_upload_part_fd,
        .upload_part_mem = af_s3_upload_part_mem,
        .upload_part_copy = af_s3_upload_part_copy,
        .list_parts = af_s3_list_parts,
        .list_uploads = af_s3_list_uploads,
        .complete_multipart = af_s3_complete_multipart,
        .abort_multipart = af_s3_abort_multipart,
};
