/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One attempt of one upload: open the spool file as it is now, then send it the way its job
 * says: a server-side copy (a renamed file still as it went up), an archive, a multipart
 * upload (from multipart_threshold up), or a single PutObject. The caller decides what a
 * failure means (run.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "upload/queue_int.h"

/* The running job's upload opened @st: whether that is the file its version names
 * (af_queue_submit_version). Every open of the attempt counts (the other artifacts' objects
 * of the file open it again). */
static void note_opened(struct af_queue *q, const struct job_desc *t, const struct stat *st)
{
        struct job *j = t->owner;

        if (!j || !j->run_has_ver) /* set by this worker, when it took the job */
                return;
        pthread_mutex_lock(&q->lock);
        if (j->run_ver.dev != st->st_dev || j->run_ver.ino != st->st_ino)
                j->opened_ver = -1;
        else if (j->opened_ver == 0)
                j->opened_ver = 1;
        pthread_mutex_unlock(&q->lock);
}

/* The multipart upload a journal record left for @t (a resume hint, which comes once) will
 * not be continued by this attempt: it is aborted, so it is not left open. */
static void drop_hint(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t)
{
        if (t->resume.upload_id)
                af_abort_upload(q, s3, t->relpath, t->bucket, t->key, t->resume.upload_id);
}

int af_transfer_once(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                     uint64_t *ret_size, struct stat *ret_st, struct af_s3_put_result *res,
                     struct af_s3_error *err)
{
        const char *bucket = t->bucket, *key = t->key;
        const struct fmt *f = &t->f;
        char mode[16], uid[16], gid[16], mtime[24];
        const struct af_s3_kv meta[4] = { { "mode", mode }, { "uid", uid }, { "gid", gid },
                                          { "mtime", mtime } };
        struct stat st;
        int fd, r;

        memset(err, 0, sizeof(*err));
        /* O_NONBLOCK: if the name is now a FIFO (or a device), opening it must not wait for
         * a writer; the fstat below turns away what is not a regular file or directory. */
        fd = openat(q->cfg.spool_dirfd, t->relpath,
                    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
                /* ELOOP: the name is a symbolic link now (git replaces its probe file with
                 * one): like a FIFO below, nothing to upload under it. */
                r = errno == ELOOP ? -ENOENT : -errno;
                drop_hint(q, s3, t);
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                drop_hint(q, s3, t);
                goto out;
        }
        *ret_st = st;
        note_opened(q, t, &st);
        /* Only a multipart upload from the spool continues an interrupted one. */
        if (!S_ISREG(st.st_mode) || f->archive != AF_ARCHIVE_NONE || t->copy ||
            (uint64_t)st.st_size < q->cfg.multipart_threshold)
                drop_hint(q, s3, t);
        if (S_ISDIR(st.st_mode) && f->archive != AF_ARCHIVE_NONE) {
                *ret_size = 0;
                r = af_archive_put(q, s3, bucket, key, fd, &st, f, res, err);
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -ENOENT; /* the name now holds a FIFO, a device...: nothing to upload */
                goto out;
        }
        *ret_size = (uint64_t)st.st_size;
        /* --preserve-metadata: the names s3fs and rclone read, so they show the file right */
        if (q->cfg.preserve_metadata && f->archive == AF_ARCHIVE_NONE) {
                snprintf(mode, sizeof(mode), "%u", (unsigned)st.st_mode);
                snprintf(uid, sizeof(uid), "%u", (unsigned)st.st_uid);
                snprintf(gid, sizeof(gid), "%u", (unsigned)st.st_gid);
                snprintf(mtime, sizeof(mtime), "%lld", (long long)st.st_mtime);
                q->s3->set_file_meta(s3, meta, 4);
        }
        if (t->copy && f->archive == AF_ARCHIVE_NONE) {
                r = af_copy_try(q, s3, t, &st, res, err);
                if (r == 0 || r == -ECANCELED)
                        goto out;
        }
        if (f->archive != AF_ARCHIVE_NONE)
                r = af_archive_put(q, s3, bucket, key, fd, &st, f, res, err);
        else if ((uint64_t)st.st_size >= q->cfg.multipart_threshold)
                r = af_multipart_upload(q, s3, t, fd, &st, res, err);
        else
                r = q->s3->put_object_fd(s3, bucket, key, fd, (uint64_t)st.st_size, res, err);
out:
        q->s3->set_file_meta(s3, NULL, 0);
        close(fd);
        return r;
}
