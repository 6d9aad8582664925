/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file metrics.h
 * What the daemon counts, for --metrics-listen: counters and one latency histogram, kept
 * with atomics (no lock: workers add, a scrape reads), rendered in Prometheus' text format
 * (version 0.0.4).
 *
 * The names are a contract (README, "Metrics"); each is rendered with HELP and TYPE lines:
 *   artifuse_uploads_started_total          upload attempts of a file begun (first attempts)
 *   artifuse_uploads_done_total             objects that reached S3
 *   artifuse_uploads_failed_total           files given up on (they stay in the spool)
 *   artifuse_uploaded_bytes_total           bytes of the objects that reached S3
 *   artifuse_upload_retries_total{reason}   retries, by what failed (see af_metrics_reason)
 *   artifuse_upload_duration_seconds        histogram: from a file's hand-over to its object
 *   artifuse_copies_total, artifuse_deletes_total   server-side copies and deletes done
 *   artifuse_queue_pending_files / _bytes   gauges: handed over, not yet in S3
 *   artifuse_spool_bytes                    gauge: what the spool's files hold
 *
 * Every function takes NULL for @m and then does nothing, so callers need no "if enabled".
 */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

#include "base/buf.h"

/* Why an attempt is retried, from the negative errno the attempt returned. */
enum af_metrics_reason {
        AF_REASON_THROTTLED_OR_5XX, /* -EAGAIN: 5xx, SlowDown, 429, RequestTimeout */
        AF_REASON_TIMEOUT,          /* -ETIMEDOUT */
        AF_REASON_REFUSED,          /* -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH */
        AF_REASON_RESET,            /* -ECONNRESET, -EPIPE, -ECONNABORTED */
        AF_REASON_CHECKSUM,         /* -EBADMSG: the server's digest differed */
        AF_REASON_CREDENTIALS,      /* -EKEYEXPIRED, -EACCES, -EPERM */
        AF_REASON_OTHER,
        AF_REASON_COUNT,
};

/* Histogram bucket bounds in seconds; the +Inf bucket is the count. */
#define AF_METRICS_BUCKETS 13

struct af_metrics {
        atomic_ullong uploads_started, uploads_done, uploads_failed, uploaded_bytes;
        atomic_ullong copies, deletes;
        atomic_ullong retries[AF_REASON_COUNT];
        atomic_ullong latency_le[AF_METRICS_BUCKETS]; /* per bucket, not cumulative */
        atomic_ullong latency_count, latency_sum_us;
};

/* The gauges are read when rendered, from whoever knows them. */
struct af_metrics_gauges {
        uint64_t pending_files, pending_bytes, spool_bytes;
};

void af_metrics_init(struct af_metrics *m);

enum af_metrics_reason af_metrics_reason(int neg_errno);

void af_metrics_upload_started(struct af_metrics *m);
/** An object reached S3 after @seconds from its hand-over. */
void af_metrics_upload_done(struct af_metrics *m, uint64_t bytes, double seconds);
void af_metrics_upload_failed(struct af_metrics *m);
void af_metrics_retry(struct af_metrics *m, int neg_errno);
void af_metrics_copy_done(struct af_metrics *m);
void af_metrics_delete_done(struct af_metrics *m);

/**
 * Appends the Prometheus text exposition of @m and @g to @out (the version string goes into
 * artifuse_build_info). -E2BIG if @out's cap is reached, -ENOMEM.
 */
int af_metrics_render(const struct af_metrics *m, const struct af_metrics_gauges *g,
                      const char *version, struct af_buf *out);
