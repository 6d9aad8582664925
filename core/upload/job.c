/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Job descriptions: what a job uploads, deletes or aborts (struct job_desc, queue_int.h),
 * their copies and their lifetimes. A job's description is guarded by q->lock; a worker runs on
 * its own copy, taken under the lock, so a submit may change the job meanwhile. Nothing
 * here takes a lock or does I/O.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "upload/queue_int.h"

static void copy_src_free(struct copy_src *c)
{
        if (!c)
                return;
        free(c->bucket);
        free(c->key);
        free(c->etag);
        free(c);
}

static struct copy_src *copy_src_dup(const struct copy_src *c)
{
        struct copy_src *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        *d = *c;
        d->bucket = strdup(c->bucket);
        d->key = strdup(c->key);
        d->etag = strdup(c->etag);
        if (!d->bucket || !d->key || !d->etag) {
                copy_src_free(d);
                return NULL;
        }
        return d;
}

void af_job_desc_done(struct job_desc *d)
{
        AF_FREE_ALL(d->relpath, d->bucket, d->key, d->f.member, d->f.zip_file_member,
                    d->resume.upload_id, d->resume.done, d->etag, d->upload_id);
        copy_src_free(d->copy);
        memset(d, 0, sizeof(*d));
}

void af_job_free(struct job *j)
{
        if (!j)
                return;
        af_job_desc_done(&j->d);
        free(j);
}

int af_job_set_str(char **dst, const char *src)
{
        char *s = strdup(src);

        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

int af_job_set_format(struct job_desc *d, const struct af_route *route)
{
        bool archived = route && route->archive != AF_ARCHIVE_NONE;
        char *m = archived && route->member ? strdup(route->member) : NULL;
        char *zm = archived && route->zip_file_member ? strdup(route->zip_file_member) : NULL;

        if ((archived && route->member && !m) || (archived && route->zip_file_member && !zm)) {
                free(m);
                free(zm);
                return -ENOMEM;
        }
        free(d->f.member);
        free(d->f.zip_file_member);
        d->f.member = m;
        d->f.zip_file_member = zm;
        d->f.archive = archived ? route->archive : AF_ARCHIVE_NONE;
        d->f.level = archived ? route->compression_level : -1;
        return 0;
}

int af_job_set_copy(struct job_desc *d, const struct copy_src *copy)
{
        struct copy_src *c = copy ? copy_src_dup(copy) : NULL;

        if (copy && !c)
                return -ENOMEM;
        copy_src_free(d->copy);
        d->copy = c;
        return 0;
}

int af_job_desc_take_locked(struct job *j, struct job_desc *t)
{
        const struct job_desc *d = &j->d;

        memset(t, 0, sizeof(*t));
        t->kind = d->kind;
        t->relpath = strdup(d->relpath);
        t->bucket = strdup(d->bucket);
        t->key = strdup(d->key);
        t->f.archive = d->f.archive;
        t->f.level = d->f.level;
        t->f.member = d->f.member ? strdup(d->f.member) : NULL;
        t->f.zip_file_member = d->f.zip_file_member ? strdup(d->f.zip_file_member) : NULL;
        t->etag = d->etag ? strdup(d->etag) : NULL;
        t->upload_id = d->upload_id ? strdup(d->upload_id) : NULL;
        t->copy = d->copy ? copy_src_dup(d->copy) : NULL;
        if (!t->relpath || !t->bucket || !t->key || (d->f.member && !t->f.member) ||
            (d->f.zip_file_member && !t->f.zip_file_member) || (d->etag && !t->etag) ||
            (d->upload_id && !t->upload_id) || (d->copy && !t->copy)) {
                af_job_desc_done(t);
                return -ENOMEM;
        }
        t->resume = d->resume;
        memset(&j->d.resume, 0, sizeof(j->d.resume));
        return 0;
}

struct job *af_job_new_delete(const char *relpath, const char *bucket, const char *key,
                              const char *etag)
{
        struct job *j = calloc(1, sizeof(*j));

        if (!j)
                return NULL;
        j->d.kind = JOB_DELETE;
        j->d.f.level = -1;
        if (!(j->d.relpath = strdup(relpath)) || !(j->d.bucket = strdup(bucket)) ||
            !(j->d.key = strdup(key)) || !(j->d.etag = strdup(etag ? etag : ""))) {
                af_job_free(j);
                return NULL;
        }
        return j;
}

struct job *af_job_new_abort(const char *relpath, const char *bucket, const char *key,
                             const char *upload_id)
{
        struct job *j = af_job_new_delete(relpath, bucket, key, NULL);

        if (!j)
                return NULL;
        j->d.kind = JOB_ABORT;
        if (!(j->d.upload_id = strdup(upload_id))) {
                af_job_free(j);
                return NULL;
        }
        return j;
}
