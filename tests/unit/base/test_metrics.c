/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for metrics.c: the errno -> reason table, the histogram's buckets (cumulative in
 * the text, as Prometheus wants), the exposition's shape, and NULL as "metrics off". */
#include <errno.h>
#include <string.h>

#include "base/metrics.h"
#include "test.h"

static bool has(const struct af_buf *b, const char *line)
{
        return strstr(af_buf_str(b), line) != NULL;
}

static void test_reasons(void)
{
        CHECK_INT_EQ(af_metrics_reason(-EAGAIN), AF_REASON_THROTTLED_OR_5XX);
        CHECK_INT_EQ(af_metrics_reason(-ETIMEDOUT), AF_REASON_TIMEOUT);
        CHECK_INT_EQ(af_metrics_reason(-ECONNREFUSED), AF_REASON_REFUSED);
        CHECK_INT_EQ(af_metrics_reason(-ECONNRESET), AF_REASON_RESET);
        CHECK_INT_EQ(af_metrics_reason(-EBADMSG), AF_REASON_CHECKSUM);
        CHECK_INT_EQ(af_metrics_reason(-EKEYEXPIRED), AF_REASON_CREDENTIALS);
        CHECK_INT_EQ(af_metrics_reason(-ENOENT), AF_REASON_OTHER);
}

static void test_render(void)
{
        struct af_metrics m;
        struct af_metrics_gauges g = { .pending_files = 2, .pending_bytes = 300,
                                       .spool_bytes = 4096 };
        struct af_buf out;

        af_metrics_init(&m);
        af_buf_init(&out, 1 << 16);
        af_metrics_upload_started(&m);
        af_metrics_upload_started(&m);
        af_metrics_upload_done(&m, 100, 0.004);  /* le 0.01 */
        af_metrics_upload_done(&m, 1000, 0.3);   /* le 0.5 */
        af_metrics_upload_done(&m, 5, 1000.0);   /* only +Inf */
        af_metrics_upload_failed(&m);
        af_metrics_retry(&m, -EAGAIN);
        af_metrics_retry(&m, -EAGAIN);
        af_metrics_retry(&m, -ECONNRESET);
        af_metrics_copy_done(&m);
        af_metrics_delete_done(&m);
        if (!CHECK_INT_EQ(af_metrics_render(&m, &g, "1.2.3", &out), 0))
                goto out;
        CHECK(has(&out, "artifuse_build_info{version=\"1.2.3\"} 1\n"));
        CHECK(has(&out, "# TYPE artifuse_uploads_done_total counter\n"
                        "artifuse_uploads_done_total 3\n"));
        CHECK(has(&out, "\nartifuse_uploads_started_total 2\n"));
        CHECK(has(&out, "\nartifuse_uploads_failed_total 1\n"));
        CHECK(has(&out, "\nartifuse_uploaded_bytes_total 1105\n"));
        CHECK(has(&out, "artifuse_upload_retries_total{reason=\"throttled_or_5xx\"} 2\n"));
        CHECK(has(&out, "artifuse_upload_retries_total{reason=\"reset\"} 1\n"));
        CHECK(has(&out, "artifuse_upload_retries_total{reason=\"timeout\"} 0\n"));
        CHECK(has(&out, "artifuse_upload_duration_seconds_bucket{le=\"0.01\"} 1\n"));
        CHECK(has(&out, "artifuse_upload_duration_seconds_bucket{le=\"0.25\"} 1\n"));
        CHECK(has(&out, "artifuse_upload_duration_seconds_bucket{le=\"0.5\"} 2\n"));
        CHECK(has(&out, "artifuse_upload_duration_seconds_bucket{le=\"300\"} 2\n"));
        CHECK(has(&out, "artifuse_upload_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        CHECK(has(&out, "artifuse_upload_duration_seconds_count 3\n"));
        CHECK(has(&out, "artifuse_upload_duration_seconds_sum 1000.304000\n"));
        CHECK(has(&out, "\nartifuse_copies_total 1\n"));
        CHECK(has(&out, "\nartifuse_deletes_total 1\n"));
        CHECK(has(&out, "\nartifuse_queue_pending_files 2\n"));
        CHECK(has(&out, "\nartifuse_queue_pending_bytes 300\n"));
        CHECK(has(&out, "\nartifuse_spool_bytes 4096\n"));
        /* Every sample line's metric has HELP and TYPE lines. */
        for (const char *p = af_buf_str(&out); *p; p = strchr(p, '\n') + 1) {
                char name[128];
                size_t n = strcspn(p, "{ ");

                if (*p == '#')
                        continue;
                if (n >= sizeof(name) - 1)
                        break;
                memcpy(name, p, n);
                name[n] = '\0';
                if (strstr(name, "_bucket") || strstr(name, "_count") ||
                    (strstr(name, "_sum") && strstr(name, "duration")))
                        continue;
                {
                        char want[160];

                        snprintf(want, sizeof(want), "# TYPE %s ", name);
                        CHECK(has(&out, want));
                }
        }
out:
        af_buf_done(&out);
}

static void test_null_is_off(void)
{
        af_metrics_upload_started(NULL);
        af_metrics_upload_done(NULL, 1, 1);
        af_metrics_upload_failed(NULL);
        af_metrics_retry(NULL, -EAGAIN);
        af_metrics_copy_done(NULL);
        af_metrics_delete_done(NULL);
        CHECK(true);
}

static void test_cap(void)
{
        struct af_metrics m;
        struct af_metrics_gauges g = { 0 };
        struct af_buf out;

        af_metrics_init(&m);
        af_buf_init(&out, 64);
        CHECK_INT_EQ(af_metrics_render(&m, &g, "x", &out), -E2BIG);
        af_buf_done(&out);
}

int main(void)
{
        RUN(test_reasons);
        RUN(test_render);
        RUN(test_null_is_off);
        RUN(test_cap);
        return test_summary();
}
