// SPDX-License-Identifier: Apache-2.0
/* Counters and the latency histogram, rendered for Prometheus (see metrics.h). */
#include "base/metrics.h"

#include <errno.h>
#include <string.h>

/* Seconds: small files upload in milliseconds here, large ones in minutes. */
static const double bounds[AF_METRICS_BUCKETS] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                   2.5,  5,     10,   30,  60,   300 };

static const char *const reason_names[AF_REASON_COUNT] = {
        [AF_REASON_THROTTLED_OR_5XX] = "throttled_or_5xx",
        [AF_REASON_TIMEOUT] = "timeout",
        [AF_REASON_REFUSED] = "refused",
        [AF_REASON_RESET] = "reset",
        [AF_REASON_CHECKSUM] = "checksum",
        [AF_REASON_CREDENTIALS] = "credentials",
        [AF_REASON_OTHER] = "other",
};

void af_metrics_init(struct af_metrics *m)
{
        memset(m, 0, sizeof(*m));
}

enum af_metrics_reason af_metrics_reason(int neg_errno)
{
        switch (-neg_errno) {
        case EAGAIN:
                return AF_REASON_THROTTLED_OR_5XX;
        case ETIMEDOUT:
                return AF_REASON_TIMEOUT;
        case ECONNREFUSED:
        case EHOSTUNREACH:
        case ENETUNREACH:
                return AF_REASON_REFUSED;
        case ECONNRESET:
        case EPIPE:
        case ECONNABORTED:
                return AF_REASON_RESET;
        case EBADMSG:
                return AF_REASON_CHECKSUM;
        case EKEYEXPIRED:
        case EACCES:
        case EPERM:
                return AF_REASON_CREDENTIALS;
        default:
                return AF_REASON_OTHER;
        }
}

static void add(atomic_ullong *c, unsigned long long n)
{
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static unsigned long long get(const atomic_ullong *c)
{
        return atomic_load_explicit(c, memory_order_relaxed);
}

void af_metrics_upload_started(struct af_metrics *m)
{
        if (m)
                add(&m->uploads_started, 1);
}

void af_metrics_upload_done(struct af_metrics *m, uint64_t bytes, double seconds)
{
        int i;

        if (!m)
                return;
        add(&m->uploads_done, 1);
        add(&m->uploaded_bytes, bytes);
        if (seconds < 0)
                seconds = 0;
        for (i = 0; i < AF_METRICS_BUCKETS && seconds > bounds[i]; i++)
                ;
        if (i < AF_METRICS_BUCKETS)
                add(&m->latency_le[i], 1);
        add(&m->latency_count, 1);
        add(&m->latency_sum_us, (unsigned long long)(seconds * 1e6));
}

void af_metrics_upload_failed(struct af_metrics *m)
{
        if (m)
                add(&m->uploads_failed, 1);
}

void af_metrics_retry(struct af_metrics *m, int neg_errno)
{
        if (m)
                add(&m->retries[af_metrics_reason(neg_errno)], 1);
}

void af_metrics_copy_done(struct af_metrics *m)
{
        if (m)
                add(&m->copies, 1);
}

void af_metrics_delete_done(struct af_metrics *m)
{
        if (m)
                add(&m->deletes, 1);
}

static int one(struct af_buf *out, const char *name, const char *type, const char *help,
               unsigned long long v)
{
        return af_buf_addf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type,
                           name, v);
}

static int render_histogram(const struct af_metrics *m, struct af_buf *out)
{
        static const char name[] = "artifuse_upload_duration_seconds";
        unsigned long long cum = 0;
        int r;

        r = af_buf_addf(out, "# HELP %s From a file's hand-over to its object in S3.\n"
                             "# TYPE %s histogram\n", name, name);
        for (int i = 0; r == 0 && i < AF_METRICS_BUCKETS; i++) {
                cum += get(&m->latency_le[i]);
                r = af_buf_addf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], cum);
        }
        if (r == 0)
                r = af_buf_addf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n",
                                name, get(&m->latency_count), name,
                                (double)get(&m->latency_sum_us) / 1e6, name,
                                get(&m->latency_count));
        return r;
}

static int render_retries(const struct af_metrics *m, struct af_buf *out)
{
        static const char name[] = "artifuse_upload_retries_total";
        int r;

        r = af_buf_addf(out, "# HELP %s Retried S3 requests, by what failed.\n"
                             "# TYPE %s counter\n", name, name);
        for (int i = 0; r == 0 && i < AF_REASON_COUNT; i++)
                r = af_buf_addf(out, "%s{reason=\"%s\"} %llu\n", name, reason_names[i],
                                get(&m->retries[i]));
        return r;
}

int af_metrics_render(const struct af_metrics *m, const struct af_metrics_gauges *g,
                      const char *version, struct af_buf *out)
{
        const struct {
                const char *name, *type, *help;
                unsigned long long v;
        } before[] = {
                { "artifuse_uploads_started_total", "counter", "Files whose upload began.",
                  get(&m->uploads_started) },
                { "artifuse_uploads_done_total", "counter", "Objects that reached S3.",
                  get(&m->uploads_done) },
                { "artifuse_uploads_failed_total", "counter",
                  "Files given up on (kept in the spool).", get(&m->uploads_failed) },
                { "artifuse_uploaded_bytes_total", "counter",
                  "Bytes of the objects that reached S3.", get(&m->uploaded_bytes) },
                { "artifuse_copies_total", "counter",
                  "Server-side copies done (renames of uploaded files).", get(&m->copies) },
                { "artifuse_deletes_total", "counter",
                  "Objects deleted (unlinked or renamed-away names).", get(&m->deletes) },
        }, after[] = {
                { "artifuse_queue_pending_files", "gauge", "Files handed over and not yet in S3.",
                  g->pending_files },
                { "artifuse_queue_pending_bytes", "gauge",
                  "Bytes of the files handed over and not yet in S3.", g->pending_bytes },
                { "artifuse_spool_bytes", "gauge",
                  "What the spool's files hold (what --spool-limit counts).", g->spool_bytes },
        };
        int r;

        r = af_buf_addf(out, "# HELP artifuse_build_info The running artifuse.\n"
                             "# TYPE artifuse_build_info gauge\n"
                             "artifuse_build_info{version=\"%s\"} 1\n", version);
        for (size_t i = 0; r == 0 && i < sizeof(before) / sizeof(before[0]); i++)
                r = one(out, before[i].name, before[i].type, before[i].help, before[i].v);
        if (r == 0)
                r = render_retries(m, out);
        if (r == 0)
                r = render_histogram(m, out);
        for (size_t i = 0; r == 0 && i < sizeof(after) / sizeof(after[0]); i++)
                r = one(out, after[i].name, after[i].type, after[i].help, after[i].v);
        return r;
}
