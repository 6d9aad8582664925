/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal records of the queue's jobs: one per file waiting for S3 (its target, its
 * packaging, a multipart upload's id and finished parts), one per pending delete. The
 * record always says the newest decision about its file: it is written when the decision is
 * made, under q->lock.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "upload/queue_int.h"

/*
 * Writes the record of @relpath. All journal writes and removals happen with q->lock held,
 * so the record on disk always matches the newest decision about the file.
 */
void af_record_put_locked(struct af_queue *q, const char *relpath, const char *bucket,
                               const char *key, const struct fmt *f,
                               enum af_journal_state state, const char *error,
                               const struct mpu_progress *mp)
{
        struct af_journal_rec rec = { 0 };
        struct af_s3_part *parts = NULL;
        struct mpu_progress smp;
        int r;

        if (!q->cfg.journal)
                return;
        /* The file's stream has an upload in progress: the record must keep it, or a crash
         * now would leave it open and unknown. */
        if (!mp && af_stream_progress_locked(q, relpath, &smp))
                mp = &smp;
        rec.path = (char *)relpath;
        rec.bucket = (char *)bucket;
        rec.key = (char *)key;
        rec.endpoint = (char *)q->cfg.s3->endpoint;
        rec.region = (char *)q->cfg.s3->region;
        rec.archive = f ? f->archive : AF_ARCHIVE_NONE;
        rec.member = f ? f->member : NULL;
        rec.zip_file_member = f ? f->zip_file_member : NULL;
        rec.level = f ? f->level : -1;
        rec.state = state;
        rec.error = (char *)error;
        rec.updated = time(NULL);
        if (mp) {
                rec.upload_id = (char *)mp->upload_id;
                rec.size = mp->size;
                rec.mtime_ns = mp->mtime_ns;
                rec.part_size = mp->part_size;
                rec.stream = mp->stream;
                parts = calloc(mp->nparts ? mp->nparts : 1, sizeof(*parts));
                for (size_t i = 0; parts && i < mp->nparts; i++)
                        if (mp->parts[i].number)
                                parts[rec.nparts++] = mp->parts[i];
                rec.parts = parts;
        }
        r = af_journal_write(q->cfg.journal_dirfd, &rec);
        if (r < 0)
                af_log_error("op=journal path=%s err=%s msg=\"cannot record the pending upload; a "
                             "crash now would need the file uploaded by hand\"",
                             af_q(relpath), af_q(strerror(-r)));
        free(parts);
}

void af_record_remove_locked(struct af_queue *q, const char *relpath)
{
        int r;

        if (!q->cfg.journal)
                return;
        r = af_journal_remove(q->cfg.journal_dirfd, relpath);
        if (r < 0)
                af_log_warn("op=journal path=%s err=%s msg=\"cannot remove the record; the file "
                            "may be uploaded again after a restart\"",
                            af_q(relpath), af_q(strerror(-r)));
}

void af_record_put_delete_locked(struct af_queue *q, const struct job *j,
                                      enum af_journal_state state, const char *error)
{
        struct af_journal_rec rec = { .op = AF_JOURNAL_DELETE,
                                      .path = j->d.relpath,
                                      .bucket = j->d.bucket,
                                      .key = j->d.key,
                                      .etag = j->d.etag,
                                      .level = -1,
                                      .state = state,
                                      .error = (char *)error,
                                      .updated = time(NULL) };
        int r;

        if (!q->cfg.journal)
                return;
        rec.endpoint = (char *)q->cfg.s3->endpoint;
        rec.region = (char *)q->cfg.s3->region;
        r = af_journal_write(q->cfg.journal_dirfd, &rec);
        if (r < 0)
                af_log_warn("op=journal path=%s key=%s err=%s msg=\"cannot record the pending "
                            "delete; a crash now would leave the object in S3\"",
                            af_q(j->d.relpath), af_q(j->d.key), af_q(strerror(-r)));
}

/* The record of @j's key now belongs to the next delete of that key, if one is queued. */
void af_record_delete_done_locked(struct af_queue *q, const struct job *j)
{
        for (struct job *i = q->locked.head; i; i = i->next)
                if (i != j && i->d.kind == JOB_DELETE && af_order_same_key(i->d.bucket, i->d.key, j->d.bucket, j->d.key)) {
                        af_record_put_delete_locked(q, i, AF_JOURNAL_PENDING, NULL);
                        return;
                }
        if (q->cfg.journal)
                (void)af_journal_remove_delete(q->cfg.journal_dirfd, j->d.bucket, j->d.key);
}
