/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The journal records of the queue's jobs: one per file waiting for S3 (its target, its
 * packaging, a multipart upload's id and finished parts), one per pending delete, one per
 * multipart upload still to abort.
 *
 * A record must always say the newest decision about its file, and decisions are made under
 * q->lock; but writing a record means two fsyncs, far too slow to hold the queue's lock for
 * (every submit from the mount takes it). So the _locked functions only encode the record
 * and append the write (or the removal) to q->locked.records, in the order the decisions
 * were made; af_record_flush, called after the lock is released, does the I/O. Flushes are
 * serialized by q->journal_lock, taken before q->lock (queue_int.h), so the list is taken
 * and written in order: writes of one record never overtake each other. When a flush
 * returns, every decision made before it is on disk, whoever wrote it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "upload/queue_int.h"

enum op_kind {
        PUT_UPLOAD,
        REMOVE_UPLOAD,
        PUT_DELETE,
        REMOVE_DELETE,
        DONE, /* a line in done.log (af_journal_done) */
};

/* One pending journal write or removal. */
struct record_op {
        struct record_op *next;
        enum op_kind kind;
        char name[40];     /* the record's file name */
        struct af_buf rec; /* a PUT_*: the encoded record */
        char *relpath;     /* for the log; DONE: the line's */
        char *key;
        uint64_t size; /* DONE: the line's */
        char *etag;
};

static void op_free(struct record_op *op)
{
        af_buf_done(&op->rec);
        free(op->relpath);
        free(op->key);
        free(op->etag);
        free(op);
}

/* The log line when @op could not be done (@r < 0), as the daemon always said it. */
static void op_failed(const struct record_op *op, int r)
{
        const char *relpath = af_q(op->relpath ? op->relpath : "");

        if (op->kind == PUT_UPLOAD)
                af_log_error("op=journal path=%s err=%s msg=\"cannot record the pending upload; "
                             "a crash now would need the file uploaded by hand\"",
                             relpath, af_q(strerror(-r)));
        else if (op->kind == REMOVE_UPLOAD)
                af_log_warn("op=journal path=%s err=%s msg=\"cannot remove the record; the file "
                            "may be uploaded again after a restart\"",
                            relpath, af_q(strerror(-r)));
        else if (op->kind == PUT_DELETE)
                af_log_warn("op=journal path=%s key=%s err=%s msg=\"cannot record the pending "
                            "delete; a crash now would leave the object in S3\"",
                            relpath, af_q(op->key ? op->key : ""), af_q(strerror(-r)));
        /* REMOVE_DELETE, DONE: best effort, as they always were */
}

/* Queues @kind for the record @rec (its name and, for a put, its text). Returns the op, or
 * NULL when it could not be queued (logged as a failure of the op). */
static struct record_op *add_locked(struct af_queue *q, enum op_kind kind,
                                    const struct af_journal_rec *rec)
{
        struct record_op *op = calloc(1, sizeof(*op));
        struct record_op tmp = { .kind = kind, .relpath = rec->path, .key = rec->key };
        int r = -ENOMEM;

        if (!op)
                goto fail;
        op->kind = kind;
        af_buf_init(&op->rec, AF_JOURNAL_MAX);
        af_journal_rec_name(rec, op->name);
        op->relpath = strdup(rec->path ? rec->path : "");
        op->key = strdup(rec->key ? rec->key : "");
        if (!op->relpath || !op->key)
                goto fail;
        if (kind == PUT_UPLOAD || kind == PUT_DELETE) {
                r = af_journal_encode(rec, &op->rec);
                if (r < 0)
                        goto fail;
        }
        *q->locked.records_tail = op;
        q->locked.records_tail = &op->next;
        return op;
fail:
        op_failed(&tmp, r);
        if (op)
                op_free(op);
        return NULL;
}

/* Removed records kept for reuse: enough for the records written between two flushes. */
#define MAX_SPARES 64

/* Writes a record, into a spare file when there is one (no new inode). */
static int store_locked(struct af_queue *q, const struct record_op *op)
{
        char spare[40];

        if (!q->journal_spares)
                return af_journal_store(q->cfg.journal_dirfd, op->name, op->rec.ptr,
                                        op->rec.len);
        af_journal_spare_name(--q->journal_spares, spare);
        return af_journal_store_spare(q->cfg.journal_dirfd, spare, op->name, op->rec.ptr,
                                      op->rec.len);
}

/* Removes a record, keeping its file as a spare while there is room. */
static int remove_locked(struct af_queue *q, const struct record_op *op)
{
        char spare[40];
        int r;

        if (q->journal_spares >= MAX_SPARES)
                return af_journal_unlink(q->cfg.journal_dirfd, op->name);
        af_journal_spare_name(q->journal_spares, spare);
        r = af_journal_retire(q->cfg.journal_dirfd, op->name, spare);
        if (r > 0)
                q->journal_spares++;
        return r < 0 ? r : 0;
}

void af_record_flush(struct af_queue *q)
{
        struct record_op *ops, *next;
        int r;

        if (!q->cfg.journal)
                return;
        pthread_mutex_lock(&q->journal_lock);
        pthread_mutex_lock(&q->lock);
        ops = q->locked.records;
        q->locked.records = NULL;
        q->locked.records_tail = &q->locked.records;
        pthread_mutex_unlock(&q->lock);
        for (; ops; ops = next) {
                next = ops->next;
                r = 0;
                if (ops->kind == PUT_UPLOAD || ops->kind == PUT_DELETE)
                        r = store_locked(q, ops);
                else if (ops->kind == DONE)
                        af_journal_done(q->cfg.journal_dirfd, ops->relpath, ops->key, ops->size,
                                        ops->etag);
                else
                        r = remove_locked(q, ops);
                if (r < 0)
                        op_failed(ops, r);
                op_free(ops);
        }
        pthread_mutex_unlock(&q->journal_lock);
}

void af_record_put_locked(struct af_queue *q, const char *relpath, const char *bucket,
                          const char *key, const struct fmt *f, enum af_journal_state state,
                          const char *error, const struct mpu_progress *mp)
{
        struct af_journal_rec rec = { 0 };
        struct af_s3_part *parts = NULL;
        struct mpu_progress smp;

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
        (void)add_locked(q, PUT_UPLOAD, &rec);
        free(parts);
}

void af_record_remove_locked(struct af_queue *q, const char *relpath)
{
        struct af_journal_rec rec = { .path = (char *)relpath };

        if (q->cfg.journal)
                (void)add_locked(q, REMOVE_UPLOAD, &rec);
}

void af_record_put_delete_locked(struct af_queue *q, const struct job *j,
                                 enum af_journal_state state, const char *error)
{
        bool abort = j->d.kind == JOB_ABORT;
        struct af_journal_rec rec = { .op = abort ? AF_JOURNAL_ABORT : AF_JOURNAL_DELETE,
                                      .path = j->d.relpath,
                                      .bucket = j->d.bucket,
                                      .key = j->d.key,
                                      .etag = abort ? NULL : j->d.etag,
                                      .upload_id = abort ? j->d.upload_id : NULL,
                                      .level = -1,
                                      .state = state,
                                      .error = (char *)error,
                                      .updated = time(NULL) };

        if (!q->cfg.journal)
                return;
        rec.endpoint = (char *)q->cfg.s3->endpoint;
        rec.region = (char *)q->cfg.s3->region;
        (void)add_locked(q, PUT_DELETE, &rec);
}

void af_record_remove_delete_locked(struct af_queue *q, const char *bucket, const char *key)
{
        struct af_journal_rec rec = { .op = AF_JOURNAL_DELETE,
                                      .bucket = (char *)bucket,
                                      .key = (char *)key };

        if (q->cfg.journal)
                (void)add_locked(q, REMOVE_DELETE, &rec);
}

void af_record_done_locked(struct af_queue *q, const char *relpath, const char *key,
                           uint64_t size, const char *etag)
{
        struct af_journal_rec rec = { .path = (char *)relpath, .key = (char *)key };
        struct record_op *op = q->cfg.journal ? add_locked(q, DONE, &rec) : NULL;

        if (op) {
                op->size = size;
                op->etag = etag ? strdup(etag) : NULL; /* OOM: "-", as af_journal_done says */
        }
}

void af_record_delete_done_locked(struct af_queue *q, const struct job *j)
{
        if (j->d.kind == JOB_ABORT) {
                struct af_journal_rec rec = { .op = AF_JOURNAL_ABORT,
                                              .bucket = j->d.bucket,
                                              .key = j->d.key,
                                              .upload_id = j->d.upload_id };

                /* Another abort of the same upload (a sweep queued while this one ran) shares
                 * the record: it stays, as that job's. */
                for (struct job *i = q->locked.head; i; i = i->next) {
                        if (i != j && i->d.kind == JOB_ABORT &&
                            strcmp(i->d.upload_id, j->d.upload_id) == 0 &&
                            af_order_same_key(i->d.bucket, i->d.key, j->d.bucket, j->d.key)) {
                                af_record_put_delete_locked(q, i, AF_JOURNAL_PENDING, NULL);
                                return;
                        }
                }
                if (q->cfg.journal)
                        (void)add_locked(q, REMOVE_DELETE, &rec);
                return;
        }
        for (struct job *i = q->locked.head; i; i = i->next) {
                if (i != j && i->d.kind == JOB_DELETE &&
                    af_order_same_key(i->d.bucket, i->d.key, j->d.bucket, j->d.key)) {
                        af_record_put_delete_locked(q, i, AF_JOURNAL_PENDING, NULL);
                        return;
                }
        }
        af_record_remove_delete_locked(q, j->d.bucket, j->d.key);
}
