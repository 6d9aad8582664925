/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One file, several artifacts: Argo saves each output artifact on its own (SaveArtifacts,
 * workflow/executor/executor.go:449-482 at v4.1.2), so when several artifacts declare the
 * same path the file goes to each one's key, packaged as that artifact says. The job's own
 * bucket and key are one of them (the first, as the mount routes the file); after that one
 * went up, the worker uploads the others from the same spool file, here.
 *
 * The others are not in the job or its journal record: the router is pure, so they are
 * worked out again from the file's name whenever its job runs, a resumed one included. An
 * attempt is whole: if one of the others fails, the job is retried (or fails) as any upload
 * does, and the next attempt sends every object again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "base/log.h"
#include "upload/queue_int.h"

/* Whether @route is another object for the job @t: an upload of its own (not a member of an
 * archived directory), not the job's own key, and for a directory an archive of it. */
static bool is_extra(const struct job_desc *t, bool is_dir, int r, const struct af_route *route)
{
        if (r <= 0 || route->deferred || !route->artifact)
                return false;
        if (is_dir && route->archive == AF_ARCHIVE_NONE)
                return false;
        return !af_order_same_key(route->bucket, af_buf_str(&route->key), t->bucket, t->key);
}

/* @x uploaded as @res: counted, logged, in the manifest and done.log, and told to the
 * mount (its registry keeps it under the artifact's name). */
static void extra_done(struct af_queue *q, const struct job_desc *x, const char *artifact,
                       uint64_t size, const struct stat *st, const struct af_s3_put_result *res,
                       uint64_t t0, uint64_t t0_wall)
{
        struct af_queue_uploaded u = {
                .relpath = x->relpath, .bucket = x->bucket, .key = x->key, .etag = res->etag,
                .archive = x->f.archive, .is_dir = S_ISDIR(st->st_mode), .size = size,
                .dev = st->st_dev, .ino = st->st_ino, .mtime_ns = af_mtime_ns(st),
                .artifact = artifact,
        };

        af_log_info("op=upload status=done path=%s artifact=%s bucket=%s key=%s bytes=%llu "
                    "ms=%llu etag=%s",
                    af_q(x->relpath), af_q(artifact), af_q(x->bucket), af_q(x->key),
                    (unsigned long long)size, (unsigned long long)(af_clock_mono_ms() - t0),
                    af_q(res->etag));
        af_metrics_upload_done(q->cfg.metrics, size,
                               (double)(af_clock_mono_ms() - t0) / 1000.0);
        pthread_mutex_lock(&q->lock);
        q->locked.stats.uploaded_files++;
        q->locked.stats.uploaded_bytes += size;
        af_record_done_locked(q, x->relpath, x->key, size, res->etag);
        if (q->cfg.manifest_fd > 0)
                af_manifest_write(q, x, size, res, t0_wall, af_clock_wall_ms());
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
        if (q->cfg.on_uploaded)
                q->cfg.on_uploaded(q->cfg.on_uploaded_ctx, &u);
}

int af_extras_upload(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                     bool is_dir, struct af_s3_error *err)
{
        struct af_route route = { 0 };
        int r = 0, rr;

        if (!q->cfg.router)
                return 0;
        af_buf_init(&route.key, 0);
        for (size_t n = 0; (rr = af_router_route_nth(q->cfg.router, t->relpath, n, &route)) !=
                           -ESRCH;
             n++) {
                struct af_s3_put_result res = { 0 };
                uint64_t t0 = af_clock_mono_ms(), t0_wall = af_clock_wall_ms(), size = 0;
                struct job_desc x = *t;
                struct stat st = { 0 };

                if (!is_extra(t, is_dir, rr, &route))
                        continue;
                x.bucket = (char *)route.bucket;
                x.key = (char *)af_buf_str(&route.key);
                x.copy = NULL;
                memset(&x.resume, 0, sizeof(x.resume));
                memset(&x.f, 0, sizeof(x.f));
                r = af_job_set_format(&x, &route);
                if (r == 0)
                        r = af_transfer_once(q, s3, &x, &size, &st, &res, err);
                if (r == 0)
                        extra_done(q, &x, route.artifact->name, size, &st, &res, t0, t0_wall);
                free(x.f.member);
                free(x.f.zip_file_member);
                if (r < 0) {
                        af_log_warn("op=upload status=error path=%s artifact=%s key=%s err=%s",
                                    af_q(t->relpath), af_q(route.artifact->name), af_q(x.key),
                                    af_q(strerror(-r)));
                        break;
                }
        }
        af_buf_done(&route.key);
        return r;
}
