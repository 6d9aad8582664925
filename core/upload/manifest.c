/* SPDX-License-Identifier: Apache-2.0 */
/* --manifest: one JSON line per object that reached S3, for the workflow to read. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "argo/argovars.h"
#include "base/log.h"
#include "upload/archive.h"
#include "upload/queue_int.h"

/* Wall-clock milliseconds, for the manifest. */
static void iso_ms(uint64_t ms, char out[32])
{
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        size_t n;

        gmtime_r(&t, &tm);
        n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

/* --manifest: one JSON line per object, appended with one write so lines stay whole. */
void af_manifest_write(struct af_queue *q, const struct job_desc *t, uint64_t size,
                       const struct af_s3_put_result *res, uint64_t start, uint64_t end)
{
        struct af_buf line;
        char a[32], b[32];
        int r;

        iso_ms(start, a);
        iso_ms(end, b);
        af_buf_init(&line, 64 * 1024);
        r = af_buf_adds(&line, "{\"path\":");
        if (r == 0)
                r = af_json_quote(&line, t->relpath);
        if (r == 0)
                r = af_buf_adds(&line, ",\"bucket\":");
        if (r == 0)
                r = af_json_quote(&line, t->bucket);
        if (r == 0)
                r = af_buf_adds(&line, ",\"key\":");
        if (r == 0)
                r = af_json_quote(&line, t->key);
        if (r == 0)
                r = af_buf_addf(&line, ",\"size\":%llu,\"archive\":\"%s\",\"etag\":",
                                (unsigned long long)size, af_archive_name(t->f.archive));
        if (r == 0)
                r = af_json_quote(&line, res->etag);
        if (r == 0)
                r = af_buf_adds(&line, ",\"version_id\":");
        if (r == 0)
                r = res->version_id[0] ? af_json_quote(&line, res->version_id)
                                       : af_buf_adds(&line, "null");
        if (r == 0)
                r = af_buf_addf(&line, ",\"start\":\"%s\",\"end\":\"%s\"}\n", a, b);
        if (r == 0 && write(q->cfg.manifest_fd, line.ptr, line.len) != (ssize_t)line.len)
                af_log_warn("op=manifest path=%s err=%s", af_q(t->relpath), af_q(strerror(errno)));
        af_buf_done(&line);
}
