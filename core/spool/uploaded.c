/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry of uploaded names. See uploaded.h. Two intrusive hash tables over the same
 * entries (by relpath; by bucket and key) and a doubly linked age list, oldest first, for
 * forgetting when full. Lock: u->lock guards everything, the log's file included: a record
 * is appended under the lock that made the change, so the file's order is the registry's.
 */
#include "spool/uploaded.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "spool/uploaded_log.h"

#define MIN_BUCKETS 1024
/* The log is compacted once it holds more than twice the live entries and this many. */
#define COMPACT_SLACK 4096

struct ent {
        struct ent *by_name; /* hash chains */
        struct ent *by_key;
        struct ent *older, *newer; /* age list */
        uint64_t name_hash, key_hash;
        struct af_uploaded_entry pub; /* its strings point into s[] */
        char s[];
};

struct af_uploaded {
        pthread_mutex_t lock;
        size_t max, count, nbuckets;
        struct ent **names; /* nbuckets chains each */
        struct ent **keys;
        struct ent *oldest, *newest;
        /* The log (af_uploaded_persist); log_fd < 0: in memory only. */
        int log_dirfd, log_fd;
        char *log_name;
        size_t log_records; /* records in the file */
        struct af_buf line; /* one record, being appended */
};

/* FNV-1a over @s and, if not NULL, a separator and @t. */
static uint64_t hash2(const char *s, const char *t)
{
        uint64_t h = 0xcbf29ce484222325ull;

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
        if (t) {
                h = (h ^ 0xff) * 0x100000001b3ull; /* a byte no bucket name holds */
                for (; *t; t++)
                        h = (h ^ (unsigned char)*t) * 0x100000001b3ull;
        }
        return h;
}

int af_uploaded_new(size_t max_entries, struct af_uploaded **ret)
{
        struct af_uploaded *u = calloc(1, sizeof(*u));

        if (!u)
                return -ENOMEM;
        pthread_mutex_init(&u->lock, NULL);
        u->log_fd = -1;
        af_buf_init(&u->line, 0);
        u->max = max_entries ? max_entries : AF_UPLOADED_DEFAULT_MAX;
        u->nbuckets = MIN_BUCKETS;
        u->names = calloc(u->nbuckets, sizeof(*u->names));
        u->keys = calloc(u->nbuckets, sizeof(*u->keys));
        if (!u->names || !u->keys) {
                af_uploaded_free(u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

static struct ent *ent_of(struct af_uploaded_entry *e)
{
        return (struct ent *)(void *)((char *)e - offsetof(struct ent, pub));
}

void af_uploaded_entry_free(struct af_uploaded_entry *e)
{
        if (e)
                free(ent_of(e));
}

void af_uploaded_free(struct af_uploaded *u)
{
        struct ent *e, *next;

        if (!u)
                return;
        for (e = u->oldest; e; e = next) {
                next = e->newer;
                free(e);
        }
        free(u->names);
        free(u->keys);
        if (u->log_fd >= 0)
                close(u->log_fd);
        free(u->log_name);
        af_buf_done(&u->line);
        pthread_mutex_destroy(&u->lock);
        free(u);
}

static void link_locked(struct af_uploaded *u, struct ent *e)
{
        size_t n = (size_t)(e->name_hash % u->nbuckets), k = (size_t)(e->key_hash % u->nbuckets);

        e->by_name = u->names[n];
        u->names[n] = e;
        e->by_key = u->keys[k];
        u->keys[k] = e;
}

static void unlink_locked(struct af_uploaded *u, struct ent *e)
{
        struct ent **pp;

        for (pp = &u->names[e->name_hash % u->nbuckets]; *pp != e; pp = &(*pp)->by_name)
                ;
        *pp = e->by_name;
        for (pp = &u->keys[e->key_hash % u->nbuckets]; *pp != e; pp = &(*pp)->by_key)
                ;
        *pp = e->by_key;
        if (e->older)
                e->older->newer = e->newer;
        else
                u->oldest = e->newer;
        if (e->newer)
                e->newer->older = e->older;
        else
                u->newest = e->older;
        e->older = e->newer = NULL;
        u->count--;
}

/* Doubles the tables when they get crowded; on OOM the chains just grow longer. */
static void grow_locked(struct af_uploaded *u)
{
        size_t n = u->nbuckets * 2;
        struct ent **names, **keys;

        if (u->count < u->nbuckets)
                return;
        names = calloc(n, sizeof(*names));
        keys = calloc(n, sizeof(*keys));
        if (!names || !keys) {
                free(names);
                free(keys);
                return;
        }
        free(u->names);
        free(u->keys);
        u->names = names;
        u->keys = keys;
        u->nbuckets = n;
        for (struct ent *e = u->oldest; e; e = e->newer)
                link_locked(u, e);
}

static struct ent *find_locked(struct af_uploaded *u, const char *relpath, uint64_t h)
{
        for (struct ent *e = u->names[h % u->nbuckets]; e; e = e->by_name)
                if (e->name_hash == h && strcmp(e->pub.relpath, relpath) == 0)
                        return e;
        return NULL;
}

/* One allocation holding the entry and copies of its strings. */
static struct ent *ent_new(const struct af_uploaded_entry *src)
{
        const char *strs[4] = { src->relpath, src->bucket, src->key, src->etag ? src->etag : "" };
        size_t lens[4], total = 0;
        struct ent *e;
        char *p;

        for (int i = 0; i < 4; i++)
                total += (lens[i] = strlen(strs[i])) + 1;
        e = calloc(1, sizeof(*e) + total);
        if (!e)
                return NULL;
        e->pub = *src;
        p = e->s;
        for (int i = 0; i < 4; i++) {
                memcpy(p, strs[i], lens[i] + 1);
                strs[i] = p;
                p += lens[i] + 1;
        }
        e->pub.relpath = strs[0];
        e->pub.bucket = strs[1];
        e->pub.key = strs[2];
        e->pub.etag = strs[3];
        e->name_hash = hash2(src->relpath, NULL);
        e->key_hash = hash2(src->bucket, src->key);
        return e;
}

/* ---- the log ------------------------------------------------------------------------ */

/* The rewrite's source: each entry, oldest first. */
static int next_ent(void *ctx, struct af_buf *out)
{
        struct ent **cur = ctx;
        int r = af_uploaded_log_put(out, &(*cur)->pub);

        *cur = (*cur)->newer;
        return r;
}

/* The log cannot be kept: it goes, so that a restart starts empty (as without a log) rather
 * than from a state this mount has since changed. */
static void stop_locked(struct af_uploaded *u, int err)
{
        af_log_warn("op=registry file=%s err=%s msg=\"cannot keep the registry of uploads on "
                    "disk; after a restart, renames of earlier uploads are uploaded again\"",
                    af_q(u->log_name), af_q(strerror(-err)));
        close(u->log_fd);
        u->log_fd = -1;
        (void)unlinkat(u->log_dirfd, u->log_name, 0);
}

/* Rewrites the log with only the live entries; 0 or -errno (the old file then stays). */
static int compact_locked(struct af_uploaded *u)
{
        struct ent *cur = u->oldest;
        int fd, r;

        r = af_uploaded_log_rewrite(u->log_dirfd, u->log_name, next_ent, &cur, u->count);
        if (r < 0)
                return r;
        fd = openat(u->log_dirfd, u->log_name, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (u->log_fd >= 0)
                close(u->log_fd);
        u->log_fd = fd;
        u->log_records = u->count;
        return 0;
}

/*
 * Appends the record in u->line. No fsync: the page cache outlives a killed process, so a
 * kill -9 loses nothing; only a crash of the machine can lose the last records, which costs
 * a re-upload instead of a copy (or an object --delete-on-unlink leaves), never data. A
 * record that cannot be encoded or written in full is made good by a rewrite from memory.
 */
static void append_locked(struct af_uploaded *u, int encoded)
{
        int r = encoded;

        if (r == 0) {
                ssize_t w = write(u->log_fd, u->line.ptr, u->line.len);

                r = w < 0 ? -errno : (size_t)w != u->line.len ? -ENOSPC : 0;
        }
        af_buf_reset(&u->line);
        if (r == 0 && ++u->log_records <= 2 * u->count + COMPACT_SLACK)
                return;
        r = compact_locked(u);
        if (r < 0)
                stop_locked(u, r);
}

static void log_put_locked(struct af_uploaded *u, const struct af_uploaded_entry *e)
{
        if (u->log_fd >= 0)
                append_locked(u, af_uploaded_log_put(&u->line, e));
}

static void log_take_locked(struct af_uploaded *u, const char *relpath)
{
        if (u->log_fd >= 0)
                append_locked(u, af_uploaded_log_take(&u->line, relpath));
}

static void replay_put(void *ctx, const struct af_uploaded_entry *e)
{
        (void)af_uploaded_put(ctx, e); /* OOM: forgotten, as when full */
}

static void replay_take(void *ctx, const char *relpath)
{
        struct af_uploaded_entry *e;

        if (af_uploaded_take(ctx, relpath, &e) == 0)
                af_uploaded_entry_free(e);
}

int af_uploaded_persist(struct af_uploaded *u, int dirfd, const char *name,
                        struct af_uploaded_log_stats *ret)
{
        struct af_uploaded_log_replay rp = { .put = replay_put, .take = replay_take, .ctx = u };
        struct af_buf data;
        int fd, r = 0;

        af_buf_init(&data, (size_t)1 << 31);
        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
                r = af_buf_read_fd(&data, fd);
                close(fd);
        } else if (errno != ENOENT) {
                r = -errno;
        }
        if (r == 0)
                r = af_uploaded_log_replay(af_buf_str(&data), data.len, &rp);
        af_buf_done(&data);
        if (r < 0)
                return r;
        pthread_mutex_lock(&u->lock);
        u->log_dirfd = dirfd;
        u->log_name = strdup(name);
        r = u->log_name ? compact_locked(u) : -ENOMEM;
        pthread_mutex_unlock(&u->lock);
        if (r < 0) {
                free(u->log_name);
                u->log_name = NULL;
                return r;
        }
        ret->records = rp.records;
        ret->skipped = rp.skipped;
        ret->entries = af_uploaded_count(u);
        return 0;
}

static int put(struct af_uploaded *u, const struct af_uploaded_entry *src, bool replace)
{
        struct ent *e = ent_new(src), *old;

        if (!e)
                return -ENOMEM;
        pthread_mutex_lock(&u->lock);
        old = find_locked(u, e->pub.relpath, e->name_hash);
        /* Two uploads of a name may tell of themselves out of order (the one superseded by a
         * resubmit, then the newer one, on two workers): the newer entry stays. */
        if (old && (!replace || (e->pub.seq && old->pub.seq > e->pub.seq))) {
                pthread_mutex_unlock(&u->lock);
                free(e);
                return -EEXIST;
        }
        if (old) {
                unlink_locked(u, old);
                free(old);
        }
        while (u->count >= u->max && u->oldest) {
                old = u->oldest;
                unlink_locked(u, old);
                free(old);
        }
        grow_locked(u);
        link_locked(u, e);
        e->older = u->newest;
        if (u->newest)
                u->newest->newer = e;
        else
                u->oldest = e;
        u->newest = e;
        u->count++;
        log_put_locked(u, &e->pub);
        pthread_mutex_unlock(&u->lock);
        return 0;
}

int af_uploaded_put(struct af_uploaded *u, const struct af_uploaded_entry *src)
{
        return put(u, src, true);
}

int af_uploaded_put_new(struct af_uploaded *u, const struct af_uploaded_entry *src)
{
        return put(u, src, false);
}

int af_uploaded_take(struct af_uploaded *u, const char *relpath, struct af_uploaded_entry **ret)
{
        struct ent *e;

        pthread_mutex_lock(&u->lock);
        e = find_locked(u, relpath, hash2(relpath, NULL));
        if (e) {
                unlink_locked(u, e);
                log_take_locked(u, relpath);
        }
        pthread_mutex_unlock(&u->lock);
        if (!e)
                return -ENOENT;
        *ret = &e->pub;
        return 0;
}

int af_uploaded_get(struct af_uploaded *u, const char *relpath, struct af_uploaded_entry **ret)
{
        struct ent *e, *c = NULL;

        pthread_mutex_lock(&u->lock);
        e = find_locked(u, relpath, hash2(relpath, NULL));
        if (e)
                c = ent_new(&e->pub);
        pthread_mutex_unlock(&u->lock);
        if (!e)
                return -ENOENT;
        if (!c)
                return -ENOMEM;
        *ret = &c->pub;
        return 0;
}

bool af_uploaded_has(struct af_uploaded *u, const char *relpath)
{
        bool has;

        pthread_mutex_lock(&u->lock);
        has = find_locked(u, relpath, hash2(relpath, NULL)) != NULL;
        pthread_mutex_unlock(&u->lock);
        return has;
}

bool af_uploaded_key_held(struct af_uploaded *u, const char *bucket, const char *key)
{
        uint64_t h = hash2(bucket, key);
        bool held = false;

        pthread_mutex_lock(&u->lock);
        for (struct ent *e = u->keys[h % u->nbuckets]; e && !held; e = e->by_key)
                held = e->key_hash == h && strcmp(e->pub.key, key) == 0 &&
                       strcmp(e->pub.bucket, bucket) == 0;
        pthread_mutex_unlock(&u->lock);
        return held;
}

size_t af_uploaded_count(struct af_uploaded *u)
{
        size_t n;

        pthread_mutex_lock(&u->lock);
        n = u->count;
        pthread_mutex_unlock(&u->lock);
        return n;
}

int af_uploaded_names(struct af_uploaded *u, char ***ret, size_t *ret_n)
{
        char **names;
        size_t n = 0;
        int r = 0;

        pthread_mutex_lock(&u->lock);
        names = calloc(u->count + 1, sizeof(*names));
        for (struct ent *e = u->oldest; names && e; e = e->newer) {
                names[n] = strdup(e->pub.relpath);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        pthread_mutex_unlock(&u->lock);
        if (!names)
                return -ENOMEM;
        if (r < 0) {
                af_uploaded_names_free(names, n);
                return r;
        }
        *ret = names;
        *ret_n = n;
        return 0;
}

void af_uploaded_names_free(char **names, size_t n)
{
        for (size_t i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
}
