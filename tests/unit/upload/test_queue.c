/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The upload queue against a stand-in S3 (upload/s3_ops.h): scheduling, retries and giving
 * up, ordering by key (a delete or a copy waits for the upload of its key), drain, and a
 * file submitted again while its uploads keep failing (run under ThreadSanitizer by
 * scripts/tsan, which catches a job field written without q->lock).
 *
 * The stand-in keeps objects in memory (key -> bytes), logs each call, can fail a key's
 * next calls with a retryable or a permanent error, and can hold a key's PutObject until the
 * test lets it go. Files are small: no multipart upload.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "upload/journal.h"
#include "upload/queue.h"
#include "upload/s3_ops.h"
#include "test.h"

#define MAX_OBJECTS 64
#define MAX_CALLS 4096

static struct {
        pthread_mutex_t lock;
        pthread_cond_t changed;
        struct {
                char key[64];
                char data[64];
                size_t len;
        } objects[MAX_OBJECTS];
        size_t nobjects;
        char calls[MAX_CALLS][80]; /* "put k", "head k", "delete k", "copy s d" */
        size_t ncalls;
        char fail_key[64]; /* calls on this key fail... */
        int fail_err;      /* ...with this errno (0: none)... */
        int fail_count;    /* ...this many more times (< 0: always) */
        char hold_key[64]; /* a PutObject of this key waits until it is cleared... */
        const atomic_bool *cancel; /* ...or until the queue cancels its transfers */
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };

static void fake_reset(void)
{
        pthread_mutex_lock(&fake.lock);
        fake.nobjects = 0;
        fake.ncalls = 0;
        fake.fail_key[0] = fake.hold_key[0] = '\0';
        fake.fail_err = fake.fail_count = 0;
        pthread_mutex_unlock(&fake.lock);
}

static void fake_fail(const char *key, int err, int count)
{
        pthread_mutex_lock(&fake.lock);
        snprintf(fake.fail_key, sizeof(fake.fail_key), "%s", key);
        fake.fail_err = err;
        fake.fail_count = count;
        pthread_mutex_unlock(&fake.lock);
}

static void fake_hold(const char *key)
{
        pthread_mutex_lock(&fake.lock);
        snprintf(fake.hold_key, sizeof(fake.hold_key), "%s", key);
        pthread_cond_broadcast(&fake.changed);
        pthread_mutex_unlock(&fake.lock);
}

/* With fake.lock: logs the call; returns the error it must fail with (0: none). */
static int call_locked(const char *what, const char *key, struct af_s3_error *err)
{
        if (fake.ncalls < MAX_CALLS)
                snprintf(fake.calls[fake.ncalls++], sizeof(fake.calls[0]), "%s %s", what, key);
        if (!fake.fail_err || strcmp(fake.fail_key, key) != 0 || fake.fail_count == 0)
                return 0;
        if (fake.fail_count > 0)
                fake.fail_count--;
        memset(err, 0, sizeof(*err));
        if (fake.fail_err == -ECONNRESET) /* no answer: the request went, the reply was lost */
                return fake.fail_err;
        err->http_status = fake.fail_err == -EAGAIN ? 503 : 403;
        snprintf(err->code, sizeof(err->code), "%s",
                 fake.fail_err == -EAGAIN ? "SlowDown" : "AccessDenied");
        return fake.fail_err;
}

static int find_locked(const char *key)
{
        for (size_t i = 0; i < fake.nobjects; i++)
                if (strcmp(fake.objects[i].key, key) == 0)
                        return (int)i;
        return -1;
}

static void etag_of(size_t i, char *out, size_t n)
{
        snprintf(out, n, "\"%zu-%.8s\"", fake.objects[i].len, fake.objects[i].data);
}

static int store_locked(const char *key, const void *data, size_t len, char *etag, size_t n)
{
        int i = find_locked(key);

        if (i < 0) {
                if (fake.nobjects == MAX_OBJECTS || len > sizeof(fake.objects[0].data))
                        return -ENOSPC;
                i = (int)fake.nobjects++;
                snprintf(fake.objects[i].key, sizeof(fake.objects[i].key), "%s", key);
        }
        memcpy(fake.objects[i].data, data, len);
        fake.objects[i].len = len;
        etag_of((size_t)i, etag, n);
        return 0;
}

static int client_new(const struct af_s3_config *cfg, struct af_creds_provider *creds,
                      struct af_s3_client **ret, struct af_buf *err)
{
        (void)cfg;
        (void)creds;
        (void)err;
        *ret = malloc(16); /* opaque to the queue: any distinct pointer */
        return *ret ? 0 : -ENOMEM;
}

static void client_free(struct af_s3_client *c)
{
        free(c);
}

static void set_file_meta(struct af_s3_client *c, const struct af_s3_kv *meta, size_t n)
{
        (void)c;
        (void)meta;
        (void)n;
}

/* Every client of a queue gets the same flag: the queue's. */
static void set_cancel(struct af_s3_client *c, const atomic_bool *flag)
{
        (void)c;
        pthread_mutex_lock(&fake.lock);
        fake.cancel = flag;
        pthread_mutex_unlock(&fake.lock);
}

/* With fake.lock: whether the queue has cancelled its transfers. */
static bool cancelled_locked(void)
{
        return fake.cancel && atomic_load(fake.cancel);
}

static int put_object_fd(struct af_s3_client *c, const char *bucket, const char *key, int fd,
                         uint64_t size, struct af_s3_put_result *ret, struct af_s3_error *err)
{
        char data[64];
        ssize_t n;
        int r;

        (void)c;
        (void)bucket;
        if (size > sizeof(data))
                return -EFBIG;
        n = pread(fd, data, (size_t)size, 0);
        if (n != (ssize_t)size)
                return -EIO;
        pthread_mutex_lock(&fake.lock);
        while (strcmp(fake.hold_key, key) == 0 && !cancelled_locked()) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 10 * 1000000L; /* as curl's progress callback: look again */
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&fake.changed, &fake.lock, &ts);
        }
        if (strcmp(fake.hold_key, key) == 0) {
                r = call_locked("cancelled", key, err);
                pthread_mutex_unlock(&fake.lock);
                return -ECANCELED;
        }
        r = call_locked("put", key, err);
        if (r == 0) {
                memset(ret, 0, sizeof(*ret));
                r = store_locked(key, data, (size_t)n, ret->etag, sizeof(ret->etag));
        }
        pthread_mutex_unlock(&fake.lock);
        return r;
}

/* With fake.lock: logs the call @what on @key, which needs the object @obj: its index in
 * *@ret_i, or the error the call fails with (-ENOENT without the object). */
static int call_on_locked(const char *what, const char *key, const char *obj,
                          struct af_s3_error *err, int *ret_i)
{
        int r = call_locked(what, key, err);

        *ret_i = find_locked(obj);
        return r == 0 && *ret_i < 0 ? -ENOENT : r;
}

static int head_object(struct af_s3_client *c, const char *bucket, const char *key,
                       struct af_s3_head_result *ret, struct af_s3_error *err)
{
        int i, r;

        (void)c;
        (void)bucket;
        pthread_mutex_lock(&fake.lock);
        r = call_on_locked("head", key, key, err, &i);
        if (r == 0) {
                ret->size = fake.objects[i].len;
                etag_of((size_t)i, ret->etag, sizeof(ret->etag));
        }
        pthread_mutex_unlock(&fake.lock);
        return r;
}

static int copy_object(struct af_s3_client *c, const char *src_bucket, const char *src_key,
                       const char *src_etag, const char *bucket, const char *key, uint64_t size,
                       struct af_s3_put_result *ret, struct af_s3_error *err)
{
        char what[80];
        int i, r;

        (void)c;
        (void)src_bucket;
        (void)src_etag;
        (void)bucket;
        (void)size;
        snprintf(what, sizeof(what), "copy %s", src_key);
        pthread_mutex_lock(&fake.lock);
        r = call_on_locked(what, key, src_key, err, &i);
        if (r == 0) {
                char data[64];
                size_t len = fake.objects[i].len;

                memcpy(data, fake.objects[i].data, len);
                memset(ret, 0, sizeof(*ret));
                r = store_locked(key, data, len, ret->etag, sizeof(ret->etag));
        }
        pthread_mutex_unlock(&fake.lock);
        return r;
}

static int delete_object(struct af_s3_client *c, const char *bucket, const char *key,
                         struct af_s3_error *err)
{
        int i, r;

        (void)c;
        (void)bucket;
        pthread_mutex_lock(&fake.lock);
        r = call_locked("delete", key, err);
        i = find_locked(key);
        if (r == 0 && i >= 0)
                fake.objects[i] = fake.objects[--fake.nobjects];
        pthread_mutex_unlock(&fake.lock);
        return r;
}

static const struct af_s3_ops fake_ops = {
        .client_new = client_new,
        .client_free = client_free,
        .set_file_meta = set_file_meta,
        .set_cancel = set_cancel,
        .put_object_fd = put_object_fd,
        .head_object = head_object,
        .copy_object = copy_object,
        .delete_object = delete_object,
        /* No multipart: the files stay far below the threshold. */
};

static const struct af_s3_config s3cfg = { .endpoint = "http://stand-in", .region = "r" };
static char spool[] = "/tmp/af-test-queue.XXXXXX";
static int spool_fd = -1;
static int journal_fd = -1; /* >= 0: the next queue keeps a journal there */

static void put_file(const char *name, const char *data)
{
        int fd = openat(spool_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        CHECK(fd >= 0);
        CHECK(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
        close(fd);
}

static struct af_queue *queue_new(unsigned workers, unsigned max_attempts)
{
        struct af_queue_config cfg = { .spool_dirfd = spool_fd,
                                       .workers = workers,
                                       .max_attempts = max_attempts,
                                       .backoff_base_ms = 1,
                                       .backoff_max_ms = 2,
                                       .settle_ms = -1, /* at once */
                                       .s3 = &s3cfg,
                                       .s3_ops = &fake_ops,
                                       .journal = journal_fd >= 0,
                                       .journal_dirfd = journal_fd };
        struct af_queue *q = NULL;
        struct af_buf err;

        fake_reset();
        af_buf_init(&err, 512);
        CHECK_INT_EQ(af_queue_new(&cfg, &q, &err), 0);
        af_buf_done(&err);
        return q;
}

/* The object at @key ("" if none). */
static const char *object(const char *key, char *buf, size_t n)
{
        int i;

        pthread_mutex_lock(&fake.lock);
        i = find_locked(key);
        snprintf(buf, n, "%.*s", i < 0 ? 0 : (int)fake.objects[i].len,
                 i < 0 ? "" : fake.objects[i].data);
        pthread_mutex_unlock(&fake.lock);
        return buf;
}

/* How many logged calls are exactly @call. */
static unsigned calls(const char *call)
{
        unsigned n = 0;

        pthread_mutex_lock(&fake.lock);
        for (size_t i = 0; i < fake.ncalls; i++)
                n += strcmp(fake.calls[i], call) == 0;
        pthread_mutex_unlock(&fake.lock);
        return n;
}

/* The index of the first logged call @call (-1: none). */
static int first_call(const char *call)
{
        int at = -1;

        pthread_mutex_lock(&fake.lock);
        for (size_t i = 0; i < fake.ncalls && at < 0; i++)
                if (strcmp(fake.calls[i], call) == 0)
                        at = (int)i;
        pthread_mutex_unlock(&fake.lock);
        return at;
}

struct release {
        pthread_t thread;
        unsigned ms;
};

static void *release_later(void *arg)
{
        usleep(((struct release *)arg)->ms * 1000);
        fake_hold("");
        return NULL;
}

/*
 * af_queue_submit_wait, with the upload held back at the stand-in until the wait has begun,
 * so a test sees the stand-in's calls in a known order. (A wait on an upload that fails at
 * once is tested on its own: test_wait_on_an_upload_failing_at_once.)
 */
static int submit_wait(struct af_queue *q, const char *relpath, const char *key)
{
        struct release rel = { .ms = 100 };
        int r;

        fake_hold(key);
        if (pthread_create(&rel.thread, NULL, release_later, &rel) != 0)
                return -EAGAIN;
        r = af_queue_submit_wait(q, relpath, "b", key, 10000);
        pthread_join(rel.thread, NULL);
        return r;
}

/* An upload that fails for good at once, waited on with nothing held back: the job may leave
 * the queue before the waiter takes the lock again after submitting, and the wait must still
 * return the failure. Before the fix it looked the job up again, found none and returned 0
 * (fsync said the file was in S3). */
static void test_wait_on_an_upload_failing_at_once(void)
{
        struct af_queue *q = queue_new(4, 1);
        char name[32], key[32];
        int zeros = 0;

        for (int i = 0; i < 200; i++) {
                snprintf(name, sizeof(name), "fast%d", i);
                snprintf(key, sizeof(key), "k/fast%d", i);
                put_file(name, "x");
                fake_fail(key, -EACCES, -1);
                if (af_queue_submit_wait(q, name, "b", key, 10000) == 0)
                        zeros++;
        }
        CHECK_INT_EQ(zeros, 0);
        af_queue_free(q);
}

/* Hands "v" over as of @v twice, the second time while the first upload is held at the
 * stand-in (it has opened the file by then); how many PutObjects "v" took. */
static unsigned puts_of_a_resubmit(struct af_queue *q, const struct af_queue_version *first,
                                   const struct af_queue_version *second)
{
        unsigned before = calls("put k/v");

        fake_hold("k/v");
        CHECK_INT_EQ(af_queue_submit_version(q, "v", "b", "k/v", first), 0);
        usleep(100 * 1000); /* picked at once (settle_ms < 0), held in its PutObject */
        CHECK_INT_EQ(af_queue_submit_version(q, "v", "b", "k/v", second), 0);
        fake_hold("");
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        return calls("put k/v") - before;
}

/* A resubmit of the version a running upload opened is that upload's (a rename right after
 * a close); a newer version, or a version of another file, goes again. */
static void test_resubmit_of_the_running_version(void)
{
        struct af_queue *q = queue_new(2, 3);
        struct af_queue_version v1, v2, other;
        struct stat st;

        put_file("v", "versioned");
        CHECK_INT_EQ(fstatat(spool_fd, "v", &st, 0), 0);
        v1 = (struct af_queue_version){ .dev = st.st_dev, .ino = st.st_ino, .changes = 1 };
        v2 = v1;
        v2.changes = 2;
        other = v1;
        other.ino = st.st_ino + 1; /* not the file the upload opens */
        CHECK_INT_EQ(puts_of_a_resubmit(q, &v1, &v1), 1);
        CHECK_INT_EQ(puts_of_a_resubmit(q, &v1, &v2), 2);
        CHECK_INT_EQ(puts_of_a_resubmit(q, &other, &other), 2);
        CHECK_INT_EQ(puts_of_a_resubmit(q, &v1, NULL), 2);
        af_queue_free(q);
}

static void test_uploads_and_drain(void)
{
        struct af_queue *q = queue_new(4, 3);
        struct af_queue_stats st;
        char name[32], key[32], want[32], buf[64];

        for (int i = 0; i < 20; i++) {
                snprintf(name, sizeof(name), "f%d", i);
                snprintf(key, sizeof(key), "k/f%d", i);
                snprintf(want, sizeof(want), "data %d", i);
                put_file(name, want);
                CHECK_INT_EQ(af_queue_submit(q, name, "b", key), 0);
        }
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        for (int i = 0; i < 20; i++) {
                snprintf(key, sizeof(key), "k/f%d", i);
                snprintf(want, sizeof(want), "data %d", i);
                CHECK_STR_EQ(object(key, buf, sizeof(buf)), want);
        }
        af_queue_get_stats(q, &st);
        CHECK_INT_EQ(st.uploaded_files, 20);
        CHECK_INT_EQ(st.failed_files, 0);
        CHECK_INT_EQ(st.pending_files, 0);
        af_queue_free(q);
}

static void test_retry_then_success(void)
{
        struct af_queue *q = queue_new(2, 5);
        struct af_queue_stats st;
        char buf[64];

        put_file("r", "retried");
        fake_fail("k/r", -EAGAIN, 2); /* SlowDown twice */
        CHECK_INT_EQ(submit_wait(q, "r", "k/r"), 0);
        CHECK_STR_EQ(object("k/r", buf, sizeof(buf)), "retried");
        CHECK_INT_EQ(calls("put k/r"), 3);
        af_queue_get_stats(q, &st);
        CHECK_INT_EQ(st.uploaded_files, 1);
        CHECK_INT_EQ(st.failed_files, 0);
        af_queue_free(q);
}

static void count_problem(void *ctx, const char *relpath, const char *bucket, const char *key,
                          const char *error)
{
        (void)bucket;
        (void)error;
        if (strcmp(relpath, "g") == 0 && strcmp(key, "k/g") == 0)
                (*(int *)ctx)++;
}

static void test_give_up(void)
{
        struct af_queue *q = queue_new(2, 3);
        struct af_queue_stats st;
        int problems = 0;

        put_file("g", "given up");
        fake_fail("k/g", -EAGAIN, -1);
        CHECK_INT_EQ(submit_wait(q, "g", "k/g"), -EAGAIN);
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        CHECK_INT_EQ(calls("put k/g"), 3); /* max_attempts, then no more */
        af_queue_get_stats(q, &st);
        CHECK_INT_EQ(st.failed_files, 1);
        CHECK_INT_EQ(st.uploaded_files, 0);
        af_queue_foreach_problem(q, count_problem, &problems);
        CHECK_INT_EQ(problems, 1);
        af_queue_free(q);
}

static void test_permanent_error_fails_at_once(void)
{
        struct af_queue *q = queue_new(2, 5);

        put_file("p", "denied");
        fake_fail("k/p", -EACCES, -1);
        CHECK_INT_EQ(submit_wait(q, "p", "k/p"), -EACCES);
        CHECK_INT_EQ(calls("put k/p"), 1);
        af_queue_free(q);
}

/* Lets the held upload go, drains, and checks that call @first came before call @then. */
static void release_then_check_order(struct af_queue *q, const char *first, const char *then)
{
        fake_hold("");
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        CHECK(first_call(first) >= 0);
        CHECK(first_call(first) < first_call(then));
}

static void test_delete_waits_for_upload_of_its_key(void)
{
        struct af_queue *q = queue_new(4, 3);
        char buf[64];

        put_file("d", "to delete");
        fake_hold("k/d");
        CHECK_INT_EQ(af_queue_submit(q, "d", "b", "k/d"), 0);
        CHECK_INT_EQ(af_queue_submit_delete(q, "d", "b", "k/d", ""), 0);
        /* Idle workers are free, but the delete must not overtake the upload it follows. */
        usleep(100 * 1000);
        CHECK_INT_EQ(af_queue_drain(q, 50), -ETIMEDOUT);
        CHECK_INT_EQ(calls("head k/d"), 0);
        CHECK_INT_EQ(calls("delete k/d"), 0);
        release_then_check_order(q, "put k/d", "delete k/d");
        CHECK_STR_EQ(object("k/d", buf, sizeof(buf)), "");
        af_queue_free(q);
}

static void test_upload_drops_a_queued_delete(void)
{
        struct af_queue *q = queue_new(1, 3);
        char buf[64];

        /* The single worker is busy with "x" while the delete and the new upload queue. */
        put_file("x", "busy");
        put_file("n", "new content");
        fake_hold("k/x");
        CHECK_INT_EQ(af_queue_submit(q, "x", "b", "k/x"), 0);
        usleep(50 * 1000);
        CHECK_INT_EQ(af_queue_submit_delete(q, "old", "b", "k/n", ""), 0);
        CHECK_INT_EQ(af_queue_submit(q, "n", "b", "k/n"), 0);
        fake_hold("");
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        CHECK_INT_EQ(calls("delete k/n"), 0); /* the newer content wins */
        CHECK_STR_EQ(object("k/n", buf, sizeof(buf)), "new content");
        af_queue_free(q);
}

static void test_copy_waits_for_upload_of_its_source(void)
{
        struct af_queue *q = queue_new(4, 3);
        struct af_queue_copy src = { .bucket = "b", .key = "k/src", .etag = "" };
        struct stat st;
        char buf[64];

        /* "dst" is "src" renamed while its upload runs: the same file under a new name. */
        put_file("src", "copied");
        CHECK_INT_EQ(linkat(spool_fd, "src", spool_fd, "dst", 0), 0);
        CHECK_INT_EQ(fstatat(spool_fd, "src", &st, 0), 0);
        src.dev = st.st_dev;
        src.ino = st.st_ino;
        src.size = (uint64_t)st.st_size;
        src.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        fake_hold("k/src");
        CHECK_INT_EQ(af_queue_submit(q, "src", "b", "k/src"), 0);
        CHECK_INT_EQ(af_queue_submit_copy(q, "dst", "b", "k/dst", &src), 0);
        usleep(100 * 1000);
        CHECK_INT_EQ(calls("copy k/src k/dst"), 0);
        release_then_check_order(q, "put k/src", "copy k/src k/dst");
        CHECK_STR_EQ(object("k/dst", buf, sizeof(buf)), "copied");
        CHECK_INT_EQ(calls("put k/dst"), 0); /* copied, not sent again */
        af_queue_free(q);
}

static void test_delete_retried(void)
{
        struct af_queue *q = queue_new(2, 5);
        char buf[64];

        put_file("e", "gone soon");
        CHECK_INT_EQ(submit_wait(q, "e", "k/e"), 0);
        fake_fail("k/e", -EAGAIN, 2); /* the first two attempts' HEAD */
        CHECK_INT_EQ(af_queue_submit_delete(q, "e", "b", "k/e", ""), 0);
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        CHECK_INT_EQ(calls("head k/e"), 3);
        CHECK_INT_EQ(calls("delete k/e"), 1);
        CHECK_STR_EQ(object("k/e", buf, sizeof(buf)), "");
        af_queue_free(q);
}

struct resubmitter {
        struct af_queue *q;
        int rounds;
};

static void *resubmit(void *arg)
{
        struct resubmitter *rs = arg;

        for (int i = 0; i < rs->rounds; i++) {
                (void)af_queue_submit(rs->q, "race", "b", "k/race");
                usleep(200);
        }
        return NULL;
}

/*
 * A file submitted again and again while its uploads keep failing: the workers count the
 * failures and start the retry window while submit() resets them. Every such field is
 * q->lock's; ThreadSanitizer (scripts/tsan) reports it if one is written without it.
 */
static void test_resubmit_while_failing(void)
{
        struct af_queue *q = queue_new(4, 1000000);
        struct resubmitter rs = { .q = q, .rounds = 300 };
        pthread_t threads[2];
        char buf[64];

        put_file("race", "last version");
        fake_fail("k/race", -EAGAIN, -1);
        for (int i = 0; i < 2; i++)
                CHECK_INT_EQ(pthread_create(&threads[i], NULL, resubmit, &rs), 0);
        for (int i = 0; i < 2; i++)
                pthread_join(threads[i], NULL);
        CHECK(calls("put k/race") > 1);
        fake_fail("", 0, 0);
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        CHECK_STR_EQ(object("k/race", buf, sizeof(buf)), "last version");
        af_queue_free(q);
}

static void test_drain_times_out_then_finishes(void)
{
        struct af_queue *q = queue_new(2, 3);

        put_file("h", "held");
        fake_hold("k/h");
        CHECK_INT_EQ(af_queue_submit(q, "h", "b", "k/h"), 0);
        CHECK(af_queue_pending(q, "h"));
        CHECK_INT_EQ(af_queue_drain(q, 50), -ETIMEDOUT);
        fake_hold("");
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        CHECK(!af_queue_pending(q, "h"));
        af_queue_free(q);
}

/* The shutdown's deadline (SIGTERM) ends a wait on an upload that S3 holds up: the waiter
 * gets -ETIMEDOUT at the deadline, the transfer is cancelled, the job stays, and a drain
 * returns at once. */
static void test_deadline_ends_waits_and_transfers(void)
{
        struct af_queue *q = queue_new(2, 3);
        uint64_t t0;

        put_file("d", "deadline");
        fake_hold("k/d");
        af_queue_set_deadline(q, 300);
        af_queue_set_deadline(q, 60000); /* a later one does not move it */
        t0 = af_clock_mono_ms();
        CHECK_INT_EQ(af_queue_submit_wait(q, "d", "b", "k/d", 10000), -ETIMEDOUT);
        CHECK(af_clock_mono_ms() - t0 >= 250 && af_clock_mono_ms() - t0 < 2000);
        for (int i = 0; i < 200 && calls("cancelled k/d") == 0; i++)
                usleep(10000);
        CHECK_INT_EQ(calls("cancelled k/d"), 1);
        CHECK(af_queue_pending(q, "d")); /* not failed: the next mount uploads it */
        t0 = af_clock_mono_ms();
        CHECK_INT_EQ(af_queue_drain(q, 10000), -ETIMEDOUT);
        CHECK_INT_EQ(af_queue_wait(q, "d", 10000), -ETIMEDOUT);
        CHECK(af_clock_mono_ms() - t0 < 500);
        usleep(100000);
        CHECK_INT_EQ(calls("cancelled k/d") + calls("put k/d"), 1); /* nothing starts again */
        fake_hold("");
        af_queue_free(q);
}

static void test_missing_file_is_skipped(void)
{
        struct af_queue *q = queue_new(1, 3);

        /* A missing file is skipped, not failed: nothing to upload under that name. */
        CHECK_INT_EQ(af_queue_submit_wait(q, "missing", "b", "k/missing", 10000), 0);
        CHECK_INT_EQ(calls("put k/missing"), 0);
        af_queue_free(q);
}

/* What the late hook below saw: on_uploaded running while the queue is being freed (the
 * mount's registry finding the name gone and asking for the delete of the stray object). */
static struct {
        struct af_queue *q;
        atomic_bool freeing;
        int result;
} late = { .result = 1 };

static void late_delete(void *ctx, const struct af_queue_uploaded *u)
{
        (void)ctx;
        if (strcmp(u->key, "k/late") != 0)
                return;
        for (int i = 0; i < 500 && !atomic_load(&late.freeing); i++)
                usleep(2000);
        usleep(100 * 1000); /* af_queue_free has set stopping by now */
        late.result = af_queue_submit_delete(late.q, u->relpath, u->bucket, u->key, u->etag);
}

static void count_pending_delete(void *ctx, struct af_journal_rec *rec)
{
        if (rec->op == AF_JOURNAL_DELETE && strcmp(rec->key, "k/late") == 0 &&
            rec->state == AF_JOURNAL_PENDING)
                (*(int *)ctx)++;
        af_journal_rec_done(rec);
}

/* A delete asked for while the queue stops is journaled for the next mount, not refused
 * (the object would be left in S3 with nothing to say it is stray). */
static void test_delete_while_stopping_is_journaled(void)
{
        struct af_queue_config cfg = { .spool_dirfd = spool_fd,
                                       .workers = 1,
                                       .max_attempts = 3,
                                       .settle_ms = -1,
                                       .s3 = &s3cfg,
                                       .s3_ops = &fake_ops,
                                       .journal = true,
                                       .on_uploaded = late_delete };
        struct af_buf err;
        int jfd, pending = 0;

        (void)mkdirat(spool_fd, "journal-late", 0700);
        jfd = openat(spool_fd, "journal-late", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (!CHECK(jfd >= 0))
                return;
        cfg.journal_dirfd = jfd;
        fake_reset();
        put_file("late", "gone by now");
        af_buf_init(&err, 512);
        CHECK_INT_EQ(af_queue_new(&cfg, &late.q, &err), 0);
        af_buf_done(&err);
        CHECK_INT_EQ(af_queue_submit(late.q, "late", "b", "k/late"), 0);
        for (int i = 0; i < 500 && calls("put k/late") == 0; i++)
                usleep(2000);
        atomic_store(&late.freeing, true);
        af_queue_free(late.q);
        CHECK_INT_EQ(late.result, 0);
        CHECK_INT_EQ(calls("delete k/late"), 0); /* nothing starts once stopping */
        CHECK_INT_EQ(af_journal_scan(jfd, false, count_pending_delete, NULL, &pending), 1);
        CHECK_INT_EQ(pending, 1);
        close(jfd);
}

/* What on_uploaded / on_gone saw (test_record_kept_until_on_uploaded_returns). */
static struct {
        int jfd;
        int records_in_callback; /* upload records on disk while on_uploaded ran */
        int gone_calls;
        char gone_etag[40];
} seen;

static void count_upload_record(void *ctx, struct af_journal_rec *rec)
{
        if (rec->op == AF_JOURNAL_UPLOAD)
                (*(int *)ctx)++;
        af_journal_rec_done(rec);
}

static void record_seen(void *ctx, const struct af_queue_uploaded *u)
{
        (void)ctx;
        (void)u;
        (void)af_journal_scan(seen.jfd, false, count_upload_record, NULL,
                              &seen.records_in_callback);
}

static void gone_seen(void *ctx, const char *relpath, const char *bucket, const char *key,
                      const char *etag)
{
        (void)ctx;
        (void)bucket;
        if (strcmp(relpath, "lost") == 0 && strcmp(key, "k/lost") == 0) {
                seen.gone_calls++;
                snprintf(seen.gone_etag, sizeof(seen.gone_etag), "%s", etag);
        }
}

/*
 * An upload's record stays on disk until on_uploaded has heard of it (a name gone meanwhile
 * gets its object's delete journaled there; a kill -9 before that must leave the next mount
 * the record, as the soak found). An upload whose attempt got no answer and whose file is
 * then gone tells on_gone, with nothing known of what landed (the stand-in sums no MD5).
 */
static void test_record_kept_until_on_uploaded_returns(void)
{
        struct af_queue_config cfg = { .spool_dirfd = spool_fd,
                                       .workers = 1,
                                       .max_attempts = 5,
                                       .backoff_base_ms = 200,
                                       .backoff_max_ms = 200,
                                       .settle_ms = -1,
                                       .s3 = &s3cfg,
                                       .s3_ops = &fake_ops,
                                       .journal = true,
                                       .on_uploaded = record_seen,
                                       .on_gone = gone_seen };
        struct af_queue *q = NULL;
        struct af_buf err;
        int left = 0;

        (void)mkdirat(spool_fd, "journal-notify", 0700);
        seen.jfd = openat(spool_fd, "journal-notify", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (!CHECK(seen.jfd >= 0))
                return;
        cfg.journal_dirfd = seen.jfd;
        fake_reset();
        af_buf_init(&err, 512);
        CHECK_INT_EQ(af_queue_new(&cfg, &q, &err), 0);
        af_buf_done(&err);
        put_file("kept", "recorded");
        CHECK_INT_EQ(af_queue_submit(q, "kept", "b", "k/kept"), 0);
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        CHECK_INT_EQ(seen.records_in_callback, 1);
        CHECK_INT_EQ(af_journal_scan(seen.jfd, false, count_upload_record, NULL, &left), 0);
        CHECK_INT_EQ(left, 0);

        /* No answer (status 0, as a reset connection), then the file goes before the retry. */
        put_file("lost", "sent twice");
        fake_fail("k/lost", -ECONNRESET, 1);
        CHECK_INT_EQ(af_queue_submit(q, "lost", "b", "k/lost"), 0);
        for (int i = 0; i < 500 && calls("put k/lost") == 0; i++)
                usleep(1000);
        CHECK_INT_EQ(unlinkat(spool_fd, "lost", 0), 0);
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        CHECK_INT_EQ(seen.gone_calls, 1);
        CHECK_STR_EQ(seen.gone_etag, "");
        left = 0;
        CHECK_INT_EQ(af_journal_scan(seen.jfd, false, count_upload_record, NULL, &left), 0);
        af_queue_free(q);
        close(seen.jfd);
}

/* Removes the spool directory and the files the tests put there. */
static void remove_spool(void)
{
        DIR *d = fdopendir(spool_fd);
        struct dirent *e;

        while (d && (e = readdir(d))) {
                if (strncmp(e->d_name, "journal", 7) == 0) {
                        int jfd = openat(spool_fd, e->d_name, O_RDONLY | O_DIRECTORY);
                        DIR *jd = jfd >= 0 ? fdopendir(jfd) : NULL;
                        struct dirent *je;

                        while (jd && (je = readdir(jd)))
                                if (je->d_name[0] != '.')
                                        (void)unlinkat(jfd, je->d_name, 0);
                        if (jd)
                                closedir(jd);
                        (void)unlinkat(spool_fd, e->d_name, AT_REMOVEDIR);
                } else if (e->d_name[0] != '.') {
                        (void)unlinkat(spool_fd, e->d_name, 0);
                }
        }
        if (d)
                closedir(d); /* closes spool_fd */
        (void)rmdir(spool);
}

static void count_record(void *ctx, struct af_journal_rec *rec)
{
        if (rec->state == AF_JOURNAL_FAILED)
                (*(int *)ctx)++;
        af_journal_rec_done(rec);
}

/* The journal says what the queue decided by the time drain returns: a record for a file
 * that failed for good, none for one that went up (and a line in done.log). */
static void test_journal_matches_decisions(void)
{
        struct af_queue *q;
        uint64_t files = 0, bytes = 0;
        int failed = 0;

        if (!CHECK_INT_EQ(mkdirat(spool_fd, "journal", 0700), 0))
                return;
        journal_fd = openat(spool_fd, "journal", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        q = queue_new(4, 2);
        put_file("ok", "fine");
        put_file("bad", "denied");
        fake_fail("k/bad", -EACCES, -1);
        for (int i = 0; i < 5; i++) {
                CHECK_INT_EQ(af_queue_submit(q, "ok", "b", "k/ok"), 0);
                CHECK_INT_EQ(af_queue_submit(q, "bad", "b", "k/bad"), 0);
        }
        CHECK_INT_EQ(af_queue_drain(q, 10000), 0);
        CHECK_INT_EQ(af_journal_scan(journal_fd, false, count_record, NULL, &failed), 1);
        CHECK_INT_EQ(failed, 1);
        CHECK_INT_EQ(af_journal_done_count(journal_fd, &files, &bytes), 0);
        CHECK(files >= 1);
        af_queue_free(q);
        close(journal_fd);
        journal_fd = -1;
}

int main(void)
{
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        int r;

        if (!mkdtemp(spool))
                return 1;
        spool_fd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        /* The workers log every retry: formatted as in the daemon, written nowhere. */
        if (devnull >= 0 && !getenv("AF_TEST_LOG"))
                af_log_set_fd(devnull);
        RUN(test_uploads_and_drain);
        RUN(test_wait_on_an_upload_failing_at_once);
        RUN(test_retry_then_success);
        RUN(test_give_up);
        RUN(test_permanent_error_fails_at_once);
        RUN(test_delete_waits_for_upload_of_its_key);
        RUN(test_upload_drops_a_queued_delete);
        RUN(test_copy_waits_for_upload_of_its_source);
        RUN(test_delete_retried);
        RUN(test_resubmit_while_failing);
        RUN(test_drain_times_out_then_finishes);
        RUN(test_deadline_ends_waits_and_transfers);
        RUN(test_missing_file_is_skipped);
        RUN(test_journal_matches_decisions);
        RUN(test_delete_while_stopping_is_journaled);
        RUN(test_resubmit_of_the_running_version);
        RUN(test_record_kept_until_on_uploaded_returns);
        r = test_summary();
        remove_spool();
        return r;
}
