/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FUSE low-level operations over the spool. Each op translates, makes one syscall on the
 * spool, and replies; errno passes through unchanged.
 *
 * What the kernel does for us, as it would for a local filesystem, and so is not here:
 * permission checks (mounted with default_permissions, so access() never reaches us),
 * flock and POSIX/OFD locks (without getlk/setlk/flock ops the kernel keeps them on its own
 * inode, with local conflict rules between all processes using the mount; the spool is never
 * shared with another host, so nothing else needs to see them), FIFOs and sockets (the kernel
 * connects their ends), and the file position of O_APPEND writes (see spool_flags()).
 *
 * Inodes: each kernel inode we have answered a lookup for is a struct node holding an O_PATH
 * descriptor of the spool file, found again by (st_dev, st_ino) so hard links share a node.
 * The node's fuse_ino_t is its address. Operations that need a real path on an O_PATH
 * descriptor (chmod, truncate, open) go through /proc/self/fd/N, which the kernel resolves to
 * the file itself, however it was renamed.
 *
 * Hard links: a node's descriptor knows the file by one name (the kernel's "NAME (deleted)"
 * once that one is unlinked), so the other names lookups, links and renames show are kept
 * on the node, and a changed file is handed over under every name that still leads to it.
 *
 * Streaming (fs.h): each node tracks how far its file was written in order (seq). While
 * that is below the threshold, a write costs a few atomics and no lock. From there on, the
 * node's writes, truncates and the like take its stream_lock, which keeps every check
 * ("is this below the parts handed over?") and the write it guards together, so no byte of a
 * handed-over part changes while the stream lives.
 *
 * Lock order: a node's stream_lock, then fs->lock (the node table, nlookup, writer counts,
 * the names of hard-linked files, open directory handles); then the queue's. fs->lock is
 * never held across a syscall on file data or a call into the queue; stream_lock is held
 * across the write it guards and calls into the queue (which never waits for S3 there).
 */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/clock.h"

#define NODE_BUCKETS 4096
#define NAMES_MAX 4096

struct node {
        struct node *hnext; /* hash chain; with fs->lock */
        int fd;             /* O_PATH; immutable while the node lives */
        dev_t dev;
        ino_t ino;
        uint64_t nlookup; /* with fs->lock */
        unsigned writers; /* open writable handles; with fs->lock */
        unsigned handles; /* open handles of any kind; with fs->lock */
        bool evicted;     /* removed from the spool to make room (see evict()); with fs->lock */
        atomic_bool dirty; /* written since last handed to the queue */
        /* Other names of a hard-linked file, seen by lookup, link or rename: spool-relative,
         * each NUL-terminated, at most NAMES_MAX bytes; stale ones are skipped at use
         * (submit_names()). With fs->lock. */
        char *names;
        size_t names_len;
        /* Streaming. seq: bytes [0, seq) were written in order since the node was made or
         * the file truncated to 0 (SEQ_BROKEN: not). big: seq reached the threshold once, so
         * writes take stream_lock. writing: writes under way without stream_lock. */
        _Atomic uint64_t seq;
        atomic_bool big;
        atomic_uint writing;
        pthread_mutex_t stream_lock;
        struct af_stream *stream; /* with stream_lock */
        uint64_t handed;   /* with stream_lock: bytes [0, handed) are the stream's parts */
        uint64_t retry_at; /* with stream_lock: seq at which starting a stream is tried again */
};

#define SEQ_BROKEN UINT64_MAX

struct af_fs {
        struct af_fs_config cfg;
        char *spool;
        size_t spool_len;
        bool is_root;   /* running as root: new files get the caller's owner */
        bool dont_mask; /* the kernel leaves the caller's umask to us; set once, in init */
        uint64_t stream_threshold; /* 0: no streaming; set with the queue, before the session */
        uint64_t stream_part;
        pthread_mutex_t lock;
        /* Held shared by the ops that open, make, link, rename or remove names, exclusive by
         * evict(): a file is never evicted while an op is between finding it by name and
         * registering its handle, or moving names around it. */
        pthread_rwlock_t names_lock;
        atomic_uint_least64_t enospc_logged_ms; /* rate limit of the "spool full" line */
        /* Names the kernel must forget (evicted files), told by a thread of their own: a
         * notification sent from inside an op can deadlock with the kernel (libfuse's rule). */
        struct {
                struct fuse_session *se;
                struct notice *head; /* with lock */
                bool stopping;       /* with lock */
                bool running;
                pthread_t thread;
                pthread_cond_t cond;
        } notify;
        struct node root;
        struct node *buckets[NODE_BUCKETS]; /* with lock */
        /* Open directory handles. An unmount drops the RELEASEDIRs still queued in the
         * kernel, so af_fs_free() closes what is left. With lock. */
        struct dir_handle *dirs;
};

struct notice {
        struct notice *next;
        fuse_ino_t parent;
        char name[];
};

struct dir_handle {
        DIR *dp;
        struct dirent *entry; /* read but not yet returned: it did not fit the last reply */
        off_t offset;         /* telldir() after the last entry returned */
        struct dir_handle *next, **pprev; /* in af_fs.dirs; with its lock */
};

static struct af_fs *fs_of(fuse_req_t req)
{
        return fuse_req_userdata(req);
}

static struct node *node_of(struct af_fs *fs, fuse_ino_t ino)
{
        return ino == FUSE_ROOT_ID ? &fs->root : (struct node *)(uintptr_t)ino;
}

static int fd_of(fuse_req_t req, fuse_ino_t ino)
{
        return node_of(fs_of(req), ino)->fd;
}

static void proc_path(char buf[64], int fd)
{
        snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

static size_t bucket_of(dev_t dev, ino_t ino)
{
        return (size_t)((ino * 2654435761u) ^ dev) % NODE_BUCKETS;
}

static struct node *find_locked(struct af_fs *fs, dev_t dev, ino_t ino)
{
        struct node *n;

        if (fs->root.dev == dev && fs->root.ino == ino)
                return &fs->root;
        for (n = fs->buckets[bucket_of(dev, ino)]; n; n = n->hnext)
                if (n->dev == dev && n->ino == ino)
                        return n;
        return NULL;
}

/* ---- the upload trigger ---------------------------------------------------------------- */

/* Whether spool-relative @rel names the file @st describes. */
static bool names_file(struct af_fs *fs, const char *rel, const struct stat *st)
{
        struct stat s;

        return fstatat(fs->root.fd, rel, &s, AT_SYMLINK_NOFOLLOW) == 0 && s.st_dev == st->st_dev &&
               s.st_ino == st->st_ino;
}

/* The path of open descriptor @fd relative to the spool, or -ENOENT if it is not (any
 * longer) in the spool, e.g. unlinked. The kernel's name for an unlinked file ends in
 * " (deleted)", as a real name can, and the file may live on under another hard link: only
 * a name that still leads to the file itself counts. */
static int relpath_of(struct af_fs *fs, int fd, char *out, size_t n)
{
        char link[64], target[PATH_MAX];
        struct stat st;
        ssize_t l;

        proc_path(link, fd);
        l = readlink(link, target, sizeof(target) - 1);
        if (l < 0)
                return -errno;
        target[l] = '\0';
        if ((size_t)l <= fs->spool_len || strncmp(target, fs->spool, fs->spool_len) != 0 ||
            target[fs->spool_len] != '/')
                return -ENOENT;
        if (fstat(fd, &st) < 0 || !names_file(fs, target + fs->spool_len + 1, &st))
                return -ENOENT;
        if ((size_t)l - fs->spool_len >= n)
                return -ENAMETOOLONG;
        memcpy(out, target + fs->spool_len + 1, (size_t)l - fs->spool_len);
        return 0;
}

/* The spool-relative path of @name in directory @dirfd. */
static int join_relpath(struct af_fs *fs, int dirfd, const char *name, char *out, size_t n)
{
        size_t dl = 0, nl = strlen(name);
        int r;

        if (dirfd != fs->root.fd) {
                r = relpath_of(fs, dirfd, out, n);
                if (r < 0)
                        return r;
                dl = strlen(out);
                out[dl++] = '/';
        }
        if (dl + nl >= n)
                return -ENAMETOOLONG;
        memcpy(out + dl, name, nl + 1);
        return 0;
}

/* Remembers @rel as a name of @n's file, which has more than one (a hard link): the
 * descriptor behind the node knows only the name it was opened by. */
static void add_name_locked(struct node *n, const char *rel)
{
        size_t l = strlen(rel) + 1;
        char *p;

        for (p = n->names; p && p < n->names + n->names_len; p += strlen(p) + 1)
                if (strcmp(p, rel) == 0)
                        return;
        if (n->names_len + l > NAMES_MAX)
                return; /* a file with this many links: the names seen first are enough */
        p = realloc(n->names, n->names_len + l);
        if (!p)
                return;
        memcpy(p + n->names_len, rel, l);
        n->names = p;
        n->names_len += l;
}

/* A copy of @n's other names (NULL if none), and its length in @ret_len. */
static char *names_copy(struct af_fs *fs, struct node *n, size_t *ret_len)
{
        char *c = NULL;

        pthread_mutex_lock(&fs->lock);
        if (n->names_len && (c = malloc(n->names_len)))
                memcpy(c, n->names, n->names_len);
        *ret_len = c ? n->names_len : 0;
        pthread_mutex_unlock(&fs->lock);
        return c;
}

/*
 * Hands @relpath to the queue if the router uploads it. With @wait (fsync, --sync-close),
 * returns only when that upload has finished: 0, or its negative errno.
 */
static int submit_relpath(struct af_fs *fs, const char *relpath, const char *why, bool wait)
{
        struct af_route route = { 0 };
        int r, ret = 0;

        af_buf_init(&route.key, 0);
        r = af_router_route(fs->cfg.router, relpath, &route);
        if (r == 0) {
                af_log_debug("op=close path=%s msg=\"not a declared artifact; not uploaded\"",
                             af_q(relpath));
        } else if (r < 0) {
                af_log_error("op=route path=%s err=%s msg=\"cannot build a key; file kept in the "
                             "spool\"",
                             af_q(relpath), af_q(strerror(-r)));
        } else if (!fs->cfg.queue) {
                af_log_error("op=submit path=%s msg=\"upload queue not running; file kept in the "
                             "spool\"",
                             af_q(relpath));
        } else {
                if (wait)
                        r = af_queue_submit_wait(fs->cfg.queue, relpath, route.bucket,
                                                 af_buf_str(&route.key), -1);
                else
                        r = af_queue_submit(fs->cfg.queue, relpath, route.bucket,
                                            af_buf_str(&route.key));
                if (r < 0)
                        af_log_error("op=%s path=%s key=%s err=%s msg=\"file kept in the spool\"",
                                     wait ? why : "submit", af_q(relpath),
                                     af_q(af_buf_str(&route.key)), af_q(strerror(-r)));
                else
                        af_log_debug("op=submit path=%s key=%s trigger=%s", af_q(relpath),
                                     af_q(af_buf_str(&route.key)), why);
                ret = r;
        }
        af_buf_done(&route.key);
        return ret;
}

/* Hands the file behind @fd to the queue, under the name @fd knows, if it is a regular file
 * still in the spool. */
static void submit_fd(struct af_fs *fs, int fd, const char *why)
{
        char rel[PATH_MAX];
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return;
        if (relpath_of(fs, fd, rel, sizeof(rel)) < 0)
                return; /* unlinked while open: nothing left to upload */
        (void)submit_relpath(fs, rel, why, false);
}

/* One name @p of file @st for submit_names(): skipped if empty or if it no longer names the
 * file; the first one kept is copied to @first and submitted with @wait (its result in
 * @r), the others without waiting. Nothing is submitted without @why. */
static void submit_name(struct af_fs *fs, const char *p, const struct stat *st, const char *why,
                        bool wait, char *first, int *r)
{
        if (!p[0] || !names_file(fs, p, st))
                return;
        if (!first[0]) {
                memcpy(first, p, strlen(p) + 1);
                if (why)
                        *r = submit_relpath(fs, p, why, wait);
        } else if (why) {
                (void)submit_relpath(fs, p, why, false);
        }
}

/*
 * Hands the file behind @fd, of node @n, to the queue under each of its names, so that a
 * change made through any hard link reaches every name's object: the name @fd was opened
 * by, the name of the node's own descriptor (both follow renames), and the other names seen
 * (n->names); each only if it still names this file. The first name goes as
 * submit_relpath() with @wait, and its result is returned; the others go without waiting.
 * Without @why nothing is submitted. In @ret_first (PATH_MAX bytes, may be NULL): that
 * first name, or "" if the file has no name left (unlinked while open: nothing to upload).
 */
static int submit_names(struct af_fs *fs, struct node *n, int fd, const char *why, bool wait,
                        char *ret_first)
{
        char fd_name[PATH_MAX] = "", node_name[PATH_MAX] = "", first[PATH_MAX] = "";
        char *names = NULL;
        size_t len = 0;
        struct stat st;
        int r = 0;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                goto out;
        (void)relpath_of(fs, fd, fd_name, sizeof(fd_name));
        submit_name(fs, fd_name, &st, why, wait, first, &r);
        if (first[0] && st.st_nlink == 1)
                goto out; /* its only name */
        /* Not the same as @fd's when the handle came from create on an existing name. */
        if (n->fd != fd && relpath_of(fs, n->fd, node_name, sizeof(node_name)) == 0 &&
            strcmp(node_name, fd_name) != 0)
                submit_name(fs, node_name, &st, why, wait, first, &r);
        names = names_copy(fs, n, &len);
        for (const char *p = names; p && p < names + len; p += strlen(p) + 1)
                if (strcmp(p, fd_name) != 0 && strcmp(p, node_name) != 0)
                        submit_name(fs, p, &st, why, wait, first, &r);
out:
        free(names);
        if (ret_first)
                memcpy(ret_first, first, strlen(first) + 1);
        return r;
}

/*
 * fsync() and --sync-close: returns once the file's current content is in S3 (0), or why it
 * could not get there (-EIO: the program sees EIO, the log says why). A file that was not
 * written since its last hand-over is not sent again; an upload of it still in flight is
 * waited for.
 */
static int sync_fd(struct af_fs *fs, struct node *n, int fd, const char *why)
{
        char rel[PATH_MAX];
        int r;

        if (!fs->cfg.queue)
                return 0;
        if (atomic_exchange(&n->dirty, false)) {
                r = submit_names(fs, n, fd, why, true, NULL);
        } else {
                (void)submit_names(fs, n, fd, NULL, false, rel);
                if (!rel[0])
                        return 0;
                r = af_queue_wait(fs->cfg.queue, rel, -1);
        }
        return r < 0 ? -EIO : 0;
}

static void mark_dirty(struct af_fs *fs, fuse_ino_t ino)
{
        atomic_store(&node_of(fs, ino)->dirty, true);
}

/* ---- room in the spool: --spool-limit, free space, eviction ------------------------------ */

/* Asks the notifier to make the kernel drop its cached entry for spool-relative @rel, which
 * is gone, so the name stops showing before the entry timeout. Only if the kernel knows the
 * directory (it has a node): otherwise it caches nothing under it. */
static void forget_name(struct af_fs *fs, const char *rel)
{
        const char *slash = strrchr(rel, '/'), *name = slash ? slash + 1 : rel;
        fuse_ino_t parent = FUSE_ROOT_ID;
        struct notice *nt;

        if (!fs->notify.se)
                return;
        if (slash) {
                char dir[PATH_MAX];
                struct stat st;
                struct node *n;

                if ((size_t)(slash - rel) >= sizeof(dir))
                        return;
                memcpy(dir, rel, (size_t)(slash - rel));
                dir[slash - rel] = '\0';
                if (fstatat(fs->root.fd, dir, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return;
                pthread_mutex_lock(&fs->lock);
                n = find_locked(fs, st.st_dev, st.st_ino);
                parent = n ? (fuse_ino_t)(uintptr_t)n : 0;
                pthread_mutex_unlock(&fs->lock);
                if (!parent)
                        return;
        }
        nt = malloc(sizeof(*nt) + strlen(name) + 1);
        if (!nt)
                return; /* the entry times out on its own */
        nt->parent = parent;
        memcpy(nt->name, name, strlen(name) + 1);
        pthread_mutex_lock(&fs->lock);
        nt->next = fs->notify.head;
        fs->notify.head = nt;
        pthread_cond_signal(&fs->notify.cond);
        pthread_mutex_unlock(&fs->lock);
}

static void *notifier(void *arg)
{
        struct af_fs *fs = arg;

        pthread_mutex_lock(&fs->lock);
        for (;;) {
                struct notice *nt = fs->notify.head;

                if (!nt) {
                        if (fs->notify.stopping)
                                break;
                        pthread_cond_wait(&fs->notify.cond, &fs->lock);
                        continue;
                }
                fs->notify.head = nt->next;
                pthread_mutex_unlock(&fs->lock);
                /* A parent forgotten since (its number reused) only costs a lookup. */
                (void)fuse_lowlevel_notify_inval_entry(fs->notify.se, nt->parent, nt->name,
                                                       strlen(nt->name));
                free(nt);
                pthread_mutex_lock(&fs->lock);
        }
        pthread_mutex_unlock(&fs->lock);
        return NULL;
}

void af_fs_set_session(struct af_fs *fs, struct fuse_session *se)
{
        if (se && !fs->notify.running) {
                fs->notify.se = se;
                fs->notify.stopping = false;
                fs->notify.running = pthread_create(&fs->notify.thread, NULL, notifier, fs) == 0;
                if (!fs->notify.running)
                        fs->notify.se = NULL;
        } else if (!se && fs->notify.running) {
                pthread_mutex_lock(&fs->lock);
                fs->notify.stopping = true;
                pthread_cond_signal(&fs->notify.cond);
                pthread_mutex_unlock(&fs->lock);
                pthread_join(fs->notify.thread, NULL);
                fs->notify.running = false;
                fs->notify.se = NULL;
        }
}

/*
 * Removes candidate @c, a file already in S3, from the spool, if it is still what went up and
 * nobody has it open or is about to: 1 when it is gone, 0 when it is busy now (try again
 * later), < 0 when it is no longer a candidate (changed, renamed, gone, hard-linked).
 * Its data is truncated away first, so the room comes back even while the kernel still holds
 * the inode; an open of its stale name gets ENOENT (op_open()).
 */
static int evict_one(struct af_fs *fs, const struct af_space_candidate *c)
{
        struct stat st;
        struct node *n;
        int fd, r = -ESTALE;

        pthread_rwlock_wrlock(&fs->names_lock);
        fd = openat(fs->root.fd, c->relpath, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                goto out;
        if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_dev != c->dev ||
            st.st_ino != c->ino || (uint64_t)st.st_size != c->size ||
            af_mtime_ns(&st) != c->mtime_ns)
                goto out;
        pthread_mutex_lock(&fs->lock);
        n = find_locked(fs, st.st_dev, st.st_ino);
        if (n && (n->handles || atomic_load(&n->dirty))) {
                pthread_mutex_unlock(&fs->lock);
                r = 0;
                goto out;
        }
        if (n)
                n->evicted = true;
        pthread_mutex_unlock(&fs->lock);
        /* Checked after the handles: a last close hands the file over before it lets go of
         * its handle, so a file with no handle left is either queued by now or clean. */
        if (fs->cfg.queue && af_queue_pending(fs->cfg.queue, c->relpath)) {
                r = 0;
        } else if (ftruncate(fd, 0) < 0 || unlinkat(fs->root.fd, c->relpath, 0) < 0) {
                r = -errno;
                af_log_warn("op=evict path=%s err=%s", af_q(c->relpath), af_q(strerror(errno)));
        } else {
                r = 1;
                forget_name(fs, c->relpath);
                af_log_info("op=evict path=%s key=%s bytes=%llu msg=\"in S3; removed from the "
                            "spool to make room\"",
                            af_q(c->relpath), af_q(c->key), (unsigned long long)c->size);
        }
        if (r != 1 && n) {
                pthread_mutex_lock(&fs->lock);
                n->evicted = false;
                pthread_mutex_unlock(&fs->lock);
        }
out:
        if (fd >= 0)
                close(fd);
        pthread_rwlock_unlock(&fs->names_lock);
        return r;
}

/* Evicts files in S3, oldest upload first, until @need bytes came back or none can go. */
static void evict(struct af_fs *fs, uint64_t need)
{
        struct af_space *sp = fs->cfg.space;
        size_t tries = af_space_candidates(sp);
        struct af_space_candidate c;
        uint64_t freed = 0;

        while (freed < need && tries-- && af_space_next_candidate(sp, &c)) {
                int r = evict_one(fs, &c);

                if (r > 0) {
                        freed += c.size;
                        af_space_release(sp, c.size);
                }
                if (r == 0)
                        af_space_requeue(sp, &c);
                else
                        af_space_candidate_done(&c);
        }
}

/*
 * Takes room in the spool for @growth more bytes, evicting files already in S3 if it must
 * (not with --keep): all of it, or with @partial at least one byte (a short write). The
 * bytes taken are in @ret, to settle with give_room(). -ENOSPC when there is no room.
 */
static int take_room(struct af_fs *fs, uint64_t growth, bool partial, uint64_t *ret)
{
        struct af_space *sp = fs->cfg.space;
        uint64_t got, now;

        *ret = 0;
        if (!sp || !growth)
                return 0;
        got = af_space_reserve(sp, growth);
        if (got < growth && !fs->cfg.keep) {
                evict(fs, growth - got);
                got += af_space_reserve(sp, growth - got);
        }
        if (got == growth || (partial && got > 0)) {
                *ret = got;
                return 0;
        }
        af_space_release(sp, got);
        now = af_clock_mono_ms();
        if (now - atomic_exchange(&fs->enospc_logged_ms, now) >= 1000)
                af_log_warn("op=write err=ENOSPC spool_used=%llu spool_limit=%llu "
                            "msg=\"the spool is full: writes fail until uploads free room%s\"",
                            (unsigned long long)af_space_used(sp),
                            (unsigned long long)af_space_limit(sp),
                            fs->cfg.keep ? " (--keep: nothing is evicted)" : "");
        return -ENOSPC;
}

/* Settles a take_room() of @took bytes after a file's size changed from @before to @after. */
static void give_room(struct af_fs *fs, uint64_t took, uint64_t before, uint64_t after)
{
        struct af_space *sp = fs->cfg.space;

        if (!sp)
                return;
        if (after >= before) {
                if (after - before < took)
                        af_space_release(sp, took - (after - before));
                else
                        af_space_charge(sp, after - before - took);
        } else {
                af_space_release(sp, took + (before - after));
        }
}

/* The size of the file behind @fd (any kind of descriptor), 0 if it cannot be told. */
static uint64_t size_of(int fd)
{
        struct stat st;

        if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return 0;
        return (uint64_t)st.st_size;
}

/* The room a name (@st, its lstat) gives back when it goes away: a regular file's size,
 * unless another hard link keeps the file. */
static uint64_t freed_by_unlink(const struct stat *st)
{
        return S_ISREG(st->st_mode) && st->st_nlink == 1 ? (uint64_t)st->st_size : 0;
}

/* ---- streaming --------------------------------------------------------------------------- */

/* Records a write of @n bytes at @off in @nd->seq: the written prefix grows, or, past a gap,
 * the file is no longer written in order. */
static void seq_note(struct node *nd, uint64_t off, uint64_t n)
{
        uint64_t s = atomic_load(&nd->seq), v;

        do {
                if (s == SEQ_BROKEN)
                        return;
                v = off > s ? SEQ_BROKEN : off + n > s ? off + n : s;
                if (v == s)
                        return;
        } while (!atomic_compare_exchange_weak(&nd->seq, &s, v));
}

/* Ends @nd's stream, if it has one, because of @why; @seq is where in-order writing stands
 * now (0 after a truncate to 0, else SEQ_BROKEN). With stream_lock. */
static void stream_break_locked(struct node *nd, const char *why, uint64_t seq)
{
        if (nd->stream)
                af_stream_abandon(nd->stream, why);
        nd->stream = NULL;
        nd->handed = 0;
        nd->retry_at = 0;
        atomic_store(&nd->seq, seq);
}

/* stream_break_locked() for the operations that change a file other than by write. */
static void stream_break(struct af_fs *fs, struct node *nd, const char *why, uint64_t seq)
{
        if (!fs->stream_threshold)
                return;
        pthread_mutex_lock(&nd->stream_lock);
        stream_break_locked(nd, why, seq);
        pthread_mutex_unlock(&nd->stream_lock);
}

/* A stream for @nd's file if it is a regular file with one name that the router uploads as
 * it is; it reads the parts through a descriptor of its own. -EPERM when the file is not to
 * stream as it is now (what would change that, a rename or a link, also resets the node).
 * With stream_lock. */
static int stream_start_locked(struct af_fs *fs, struct node *nd)
{
        struct af_route route = { 0 };
        char path[64], rel[PATH_MAX];
        struct stat st;
        int fd, r;

        proc_path(path, nd->fd);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
            relpath_of(fs, fd, rel, sizeof(rel)) < 0) {
                close(fd);
                return -EPERM;
        }
        af_buf_init(&route.key, 0);
        r = af_router_route(fs->cfg.router, rel, &route);
        if (r <= 0 || route.deferred || route.archive != AF_ARCHIVE_NONE) {
                af_log_debug("op=stream path=%s msg=\"not uploaded as it is; no streaming\"",
                             af_q(rel));
                close(fd);
                r = -EPERM;
        } else {
                r = af_queue_stream_start(fs->cfg.queue, rel, route.bucket,
                                          af_buf_str(&route.key), fd, &nd->stream);
        }
        af_buf_done(&route.key);
        return r;
}

/*
 * After a write: hands the stream every whole part the in-order prefix now covers, starting
 * the stream once the prefix reaches the threshold. Nothing is handed over while a write
 * that began without stream_lock is still under way (it may be behind the new parts): the
 * next write does it. With stream_lock.
 */
static void stream_advance_locked(struct af_fs *fs, struct node *nd)
{
        uint64_t seq = atomic_load(&nd->seq), handed;
        int r;

        if (seq == SEQ_BROKEN || seq < fs->stream_threshold || atomic_load(&nd->writing))
                return;
        if (nd->stream && seq < nd->handed + fs->stream_part)
                return; /* no new whole part */
        for (int tries = 0; tries < 2; tries++) {
                if (!nd->stream) {
                        if (seq < nd->retry_at)
                                return;
                        /* Not at every write: after a refusal (the queue busy with the
                         * file), one part later; a file not to stream, not again. */
                        r = stream_start_locked(fs, nd);
                        if (r < 0) {
                                nd->retry_at = r == -EPERM ? UINT64_MAX : seq + fs->stream_part;
                                return;
                        }
                        nd->handed = 0;
                }
                r = af_stream_extend(nd->stream, seq, &handed);
                if (r == 0) {
                        nd->handed = handed;
                        return;
                }
                /* Taken over by an upload (fsync): a new stream starts from part 1. */
                af_stream_release(nd->stream);
                nd->stream = NULL;
                nd->handed = 0;
                nd->retry_at = 0;
        }
}

/* Before a write at @off with stream_lock: a write behind the parts handed over, or past
 * the in-order end, ends the stream. */
static void stream_check_write_locked(struct node *nd, uint64_t off)
{
        uint64_t seq = atomic_load(&nd->seq);

        if (seq == SEQ_BROKEN)
                return;
        if (off < nd->handed)
                stream_break_locked(nd, "write behind the parts sent", SEQ_BROKEN);
        else if (off > seq && nd->stream)
                stream_break_locked(nd, "write past the end (a gap)", SEQ_BROKEN);
}

/* ---- lookup and the node table --------------------------------------------------------- */

static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
                     struct fuse_entry_param *e)
{
        struct af_fs *fs = fs_of(req);
        struct node *n;
        int fd, r;

        memset(e, 0, sizeof(*e));
        e->attr_timeout = fs->cfg.timeout;
        e->entry_timeout = fs->cfg.timeout;
        fd = openat(fd_of(req, parent), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        pthread_mutex_lock(&fs->lock);
        n = find_locked(fs, e->attr.st_dev, e->attr.st_ino);
        if (n) {
                n->nlookup++;
                pthread_mutex_unlock(&fs->lock);
                close(fd);
        } else {
                size_t b = bucket_of(e->attr.st_dev, e->attr.st_ino);

                n = calloc(1, sizeof(*n));
                if (!n) {
                        pthread_mutex_unlock(&fs->lock);
                        close(fd);
                        return -ENOMEM;
                }
                n->fd = fd;
                n->dev = e->attr.st_dev;
                n->ino = e->attr.st_ino;
                n->nlookup = 1;
                pthread_mutex_init(&n->stream_lock, NULL);
                n->hnext = fs->buckets[b];
                fs->buckets[b] = n;
                pthread_mutex_unlock(&fs->lock);
        }
        if (S_ISREG(e->attr.st_mode) && e->attr.st_nlink > 1) {
                char rel[PATH_MAX];

                /* Our lookup count keeps @n alive until we reply. */
                if (join_relpath(fs, fd_of(req, parent), name, rel, sizeof(rel)) == 0) {
                        pthread_mutex_lock(&fs->lock);
                        add_name_locked(n, rel);
                        pthread_mutex_unlock(&fs->lock);
                }
        }
        e->ino = n == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
        return 0;
}

/* The kernel forgot the node (@abandon), or the session is over and the queue may be gone.
 * A node made again for the same file would not know which bytes its stream holds, so a
 * forgotten node's stream is abandoned; at the end, the queue has taken over or journaled
 * every stream. */
static void node_free(struct node *n, bool abandon)
{
        if (n->stream && abandon)
                af_stream_abandon(n->stream, "inode forgotten");
        else if (n->stream)
                af_stream_release(n->stream);
        pthread_mutex_destroy(&n->stream_lock);
        close(n->fd);
        free(n->names);
        free(n);
}

static void forget_one(struct af_fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
        struct node *n = node_of(fs, ino), **pp;

        if (n == &fs->root)
                return;
        pthread_mutex_lock(&fs->lock);
        n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
        if (n->nlookup) {
                pthread_mutex_unlock(&fs->lock);
                return;
        }
        for (pp = &fs->buckets[bucket_of(n->dev, n->ino)]; *pp; pp = &(*pp)->hnext) {
                if (*pp == n) {
                        *pp = n->hnext;
                        break;
                }
        }
        pthread_mutex_unlock(&fs->lock);
        node_free(n, true);
}

/* Replies with an entry do_lookup() counted; a reply the kernel never gets (the caller was
 * interrupted) is no lookup, so it is taken back. Every fuse_reply_*() frees @req. */
static void reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
        struct af_fs *fs = fs_of(req);

        if (fuse_reply_entry(req, e) != 0)
                forget_one(fs, e->ino, 1);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct fuse_entry_param e;
        int r = do_lookup(req, parent, name, &e);

        if (r == -ENOENT) {
                /* A negative entry, cached like a positive one: saves lookups of absent files. */
                memset(&e, 0, sizeof(e));
                e.entry_timeout = fs_of(req)->cfg.timeout;
                fuse_reply_entry(req, &e);
        } else if (r < 0) {
                fuse_reply_err(req, -r);
        } else {
                reply_entry(req, &e);
        }
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
        forget_one(fs_of(req), ino, nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
        for (size_t i = 0; i < count; i++)
                forget_one(fs_of(req), forgets[i].ino, forgets[i].nlookup);
        fuse_reply_none(req);
}

/* ---- attributes ------------------------------------------------------------------------ */

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct stat st;
        int r;

        if (fi)
                r = fstat((int)fi->fh, &st);
        else
                r = fstatat(fd_of(req, ino), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        if (r < 0)
                fuse_reply_err(req, errno);
        else
                fuse_reply_attr(req, &st, fs_of(req)->cfg.timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
                       struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);
        struct node *n = node_of(fs, ino);
        char path[64];
        int r = 0;

        proc_path(path, n->fd);
        if (valid & FUSE_SET_ATTR_MODE) {
                r = fi ? fchmod((int)fi->fh, attr->st_mode) : chmod(path, attr->st_mode);
                if (r < 0)
                        goto fail;
        }
        if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
                uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
                gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

                r = fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
                if (r < 0)
                        goto fail;
        }
        if (valid & FUSE_SET_ATTR_SIZE) {
                uint64_t before = size_of(fi ? (int)fi->fh : n->fd), took = 0;
                bool evicted;

                pthread_mutex_lock(&fs->lock);
                evicted = n->evicted;
                pthread_mutex_unlock(&fs->lock);
                if (evicted) {
                        errno = ENOENT; /* a stale name of a file evicted to make room */
                        goto fail;
                }
                if ((uint64_t)attr->st_size > before) {
                        r = take_room(fs, (uint64_t)attr->st_size - before, false, &took);
                        if (r < 0) {
                                errno = -r;
                                goto fail;
                        }
                }
                mark_dirty(fs, ino);
                if (fs->stream_threshold) {
                        /* A truncate to 0 starts in-order writing afresh. */
                        pthread_mutex_lock(&n->stream_lock);
                        stream_break_locked(n, "truncate", attr->st_size == 0 ? 0 : SEQ_BROKEN);
                }
                r = fi ? ftruncate((int)fi->fh, attr->st_size) : truncate(path, attr->st_size);
                if (fs->stream_threshold)
                        pthread_mutex_unlock(&n->stream_lock);
                give_room(fs, took, before, r < 0 ? before : (uint64_t)attr->st_size);
                if (r < 0)
                        goto fail;
        }
        if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
                struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

                if (valid & FUSE_SET_ATTR_ATIME_NOW)
                        tv[0].tv_nsec = UTIME_NOW;
                else if (valid & FUSE_SET_ATTR_ATIME)
                        tv[0] = attr->st_atim;
                if (valid & FUSE_SET_ATTR_MTIME_NOW)
                        tv[1].tv_nsec = UTIME_NOW;
                else if (valid & FUSE_SET_ATTR_MTIME)
                        tv[1] = attr->st_mtim;
                r = fi ? futimens((int)fi->fh, tv) : utimensat(AT_FDCWD, path, tv, 0);
                if (r < 0)
                        goto fail;
        }
        if (valid & FUSE_SET_ATTR_SIZE) {
                bool writers;

                /* truncate(2) without an open handle: no release will follow, so hand the
                 * file over now. */
                pthread_mutex_lock(&fs->lock);
                writers = n->writers > 0;
                pthread_mutex_unlock(&fs->lock);
                if (!writers && atomic_exchange(&n->dirty, false))
                        (void)submit_names(fs, n, n->fd, "truncate", false, NULL);
        }
        op_getattr(req, ino, fi);
        return;
fail:
        fuse_reply_err(req, errno);
}

/* ---- making and removing names --------------------------------------------------------- */

/* The group a new entry in @dirfd gets: the caller's, or (gid_t)-1 for "leave it", in a
 * set-group-ID directory, where the spool has already given it the directory's group (and a
 * new subdirectory the S_ISGID bit), as every local filesystem does for whoever creates it. */
static gid_t new_gid(const struct fuse_ctx *ctx, int dirfd)
{
        struct stat dir;

        if (fstat(dirfd, &dir) == 0 && (dir.st_mode & S_ISGID))
                return (gid_t)-1;
        return ctx->gid;
}

/* New names belong to the caller, as on a local filesystem, when we can arrange it. The
 * kernel holds the parent directory locked until we reply, so @name is still ours. */
static int own(fuse_req_t req, int dirfd, const char *name)
{
        const struct fuse_ctx *ctx = fuse_req_ctx(req);

        if (!fs_of(req)->is_root)
                return 0;
        if (fchownat(dirfd, name, ctx->uid, new_gid(ctx, dirfd), AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

/* The mode for a new entry in @dirfd the caller asked for with @mode. With POSIX ACLs on,
 * the kernel passes the caller's umask instead of applying it (FUSE_CAP_DONT_MASK), because
 * a local filesystem ignores the umask where the directory has a default ACL (which the
 * spool then applies, with our own umask 0) and applies it everywhere else. */
static mode_t new_mode(fuse_req_t req, int dirfd, mode_t mode)
{
        char path[64];

        if (!fs_of(req)->dont_mask)
                return mode;
        proc_path(path, dirfd);
        if (getxattr(path, "system.posix_acl_default", NULL, 0) > 0)
                return mode;
        return mode & ~fuse_req_ctx(req)->umask;
}

static void reply_new_entry(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct fuse_entry_param e;
        int r = own(req, fd_of(req, parent), name);

        if (r == 0)
                r = do_lookup(req, parent, name, &e);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                     dev_t rdev)
{
        int dirfd = fd_of(req, parent);

        if (mknodat(dirfd, name, new_mode(req, dirfd, mode), rdev) < 0)
                fuse_reply_err(req, errno);
        else
                reply_new_entry(req, parent, name);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        int dirfd = fd_of(req, parent);

        if (mkdirat(dirfd, name, new_mode(req, dirfd, mode)) < 0)
                fuse_reply_err(req, errno);
        else
                reply_new_entry(req, parent, name);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
        if (symlinkat(link, fd_of(req, parent), name) < 0)
                fuse_reply_err(req, errno);
        else
                reply_new_entry(req, parent, name);
}

/* A file that arrives at an artifact path by rename or link (write "out.tmp", rename or link
 * it to "out.csv") is uploaded under its new name; one still open for writing goes at its
 * last close. O_PATH: the name may be a FIFO or a device, which must not be opened. A file
 * renamed from @from (spool-relative; NULL for a link) that went up unchanged under that
 * name may be copied in S3 instead (remote.h). */
static void arrived(struct af_fs *fs, int dirfd, const char *name, const char *why,
                    const char *from, const char *to)
{
        char rel[PATH_MAX];
        struct stat st;
        struct node *n;
        bool open_for_write = false;
        int fd;

        fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
                bool linked = st.st_nlink > 1 && relpath_of(fs, fd, rel, sizeof(rel)) == 0;

                pthread_mutex_lock(&fs->lock);
                n = find_locked(fs, st.st_dev, st.st_ino);
                if (n && linked)
                        add_name_locked(n, rel); /* a hard link renamed: its new name */
                if (n && n->writers) {
                        atomic_store(&n->dirty, true);
                        open_for_write = true;
                }
                pthread_mutex_unlock(&fs->lock);
                /* Its key may have changed, or it has a second name: no more streaming. The
                 * kernel holds the inode for this request, so @n cannot be forgotten. */
                if (n && atomic_load(&n->big))
                        stream_break(fs, n, why, SEQ_BROKEN);
                if (!open_for_write &&
                    !(from && af_remote_moved(fs->cfg.remote, from, to, fd)))
                        submit_fd(fs, fd, why);
        }
        close(fd);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
        struct af_fs *fs = fs_of(req);
        struct fuse_entry_param e;
        int nfd = fd_of(req, newparent), r;
        char path[64];

        proc_path(path, fd_of(req, ino));
        /* linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc link does not. */
        pthread_rwlock_rdlock(&fs->names_lock);
        r = linkat(AT_FDCWD, path, nfd, newname, AT_SYMLINK_FOLLOW);
        pthread_rwlock_unlock(&fs->names_lock);
        if (r < 0) {
                fuse_reply_err(req, errno);
                return;
        }
        r = do_lookup(req, newparent, newname, &e);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        reply_entry(req, &e);
        /* @req is gone; @newname lives in the request buffer until we return. */
        arrived(fs, nfd, newname, "link", NULL, NULL);
}

/* The node of the regular file @st (a name's lstat), if it streams (it may, once it is
 * big). The kernel holds the inode while the request that names it runs. */
static struct node *streaming_node(struct af_fs *fs, const struct stat *st)
{
        struct node *n = NULL;

        if (!fs->stream_threshold || !S_ISREG(st->st_mode))
                return NULL;
        pthread_mutex_lock(&fs->lock);
        n = find_locked(fs, st->st_dev, st->st_ino);
        pthread_mutex_unlock(&fs->lock);
        return n && n != &fs->root && atomic_load(&n->big) ? n : NULL;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct af_fs *fs = fs_of(req);
        int dirfd = fd_of(req, parent), err = 0;
        char rel[PATH_MAX];
        bool named = fs->cfg.remote && join_relpath(fs, dirfd, name, rel, sizeof(rel)) == 0;
        struct node *n = NULL;
        uint64_t freed = 0;
        struct stat st;

        pthread_rwlock_rdlock(&fs->names_lock);
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                n = streaming_node(fs, &st);
                freed = freed_by_unlink(&st);
        }
        if (unlinkat(dirfd, name, 0) < 0)
                err = errno;
        else if (freed && fs->cfg.space)
                af_space_release(fs->cfg.space, freed);
        pthread_rwlock_unlock(&fs->names_lock);
        if (!err && n)
                stream_break(fs, n, "unlink", SEQ_BROKEN);
        /* Before the answer: a name the program re-creates next must go up after this. */
        if (!err && named)
                af_remote_unlinked(fs->cfg.remote, rel);
        fuse_reply_err(req, err);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct af_fs *fs = fs_of(req);
        int err;

        pthread_rwlock_rdlock(&fs->names_lock);
        err = unlinkat(fd_of(req, parent), name, AT_REMOVEDIR) < 0 ? errno : 0;
        pthread_rwlock_unlock(&fs->names_lock);
        fuse_reply_err(req, err);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
        struct af_fs *fs = fs_of(req);
        int fd = fd_of(req, parent), nfd = fd_of(req, newparent), err = 0;
        char from[PATH_MAX], to[PATH_MAX];
        /* Both names, before the rename moves them, for what the old objects become. */
        bool named = fs->cfg.remote && join_relpath(fs, fd, name, from, sizeof(from)) == 0 &&
                     join_relpath(fs, nfd, newname, to, sizeof(to)) == 0;
        bool exchange = flags & RENAME_EXCHANGE;
        /* Copies and deletes are queued before the answer (see af_remote_involved); a plain
         * rename is answered first and uploaded after, as ever. */
        bool first = named && af_remote_involved(fs->cfg.remote, from, to);
        struct node *replaced = NULL;
        uint64_t freed = 0;
        struct stat a, b;

        pthread_rwlock_rdlock(&fs->names_lock);
        /* A file renamed over another replaces it: it is gone from the spool like an unlinked
         * one (its stream ends, its room comes back), unless both names are links of one
         * file, which leaves everything as it was. */
        if (!exchange && fstatat(nfd, newname, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
            fstatat(fd, name, &a, AT_SYMLINK_NOFOLLOW) == 0 &&
            (a.st_dev != b.st_dev || a.st_ino != b.st_ino)) {
                replaced = streaming_node(fs, &b);
                freed = freed_by_unlink(&b);
        }
        if (renameat2(fd, name, nfd, newname, flags) < 0)
                err = errno;
        else if (freed && fs->cfg.space)
                af_space_release(fs->cfg.space, freed);
        pthread_rwlock_unlock(&fs->names_lock);
        if (err) {
                fuse_reply_err(req, err);
                return;
        }
        if (replaced)
                stream_break(fs, replaced, "replaced by a rename", SEQ_BROKEN);
        if (!first)
                fuse_reply_err(req, 0);
        /* An exchange is uploaded on both sides (copying each over the other would race). */
        arrived(fs, nfd, newname, "rename", named && !exchange ? from : NULL, to);
        /* RENAME_EXCHANGE moved the other file too. */
        if (exchange)
                arrived(fs, fd, name, "rename", NULL, NULL);
        if (named)
                af_remote_renamed(fs->cfg.remote, from, to, exchange);
        if (named && !exchange)
                af_remote_dir_renamed(fs->cfg.remote, from, to);
        if (first)
                fuse_reply_err(req, 0);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
        char buf[PATH_MAX + 1];
        ssize_t n = readlinkat(fd_of(req, ino), "", buf, sizeof(buf));

        if (n < 0)
                fuse_reply_err(req, errno);
        else if (n == sizeof(buf))
                fuse_reply_err(req, ENAMETOOLONG);
        else {
                buf[n] = '\0';
                fuse_reply_readlink(req, buf);
        }
}

/* ---- files ----------------------------------------------------------------------------- */

static bool writable(int flags)
{
        return (flags & O_ACCMODE) != O_RDONLY;
}

/* The flags of the spool descriptor behind a handle opened with @flags.
 * - O_APPEND stays with the kernel: it already sends each append as a write at the end of
 *   the file, and a spool descriptor with O_APPEND would also append the pages that mmap
 *   write-back sends for their own offsets, and would not follow fcntl(F_SETFL) changes,
 *   which the kernel keeps to itself.
 * - O_DIRECT stays with the kernel too: it already bypasses its page cache for the handle,
 *   and the data reaches us in our own buffers at offsets that the spool's O_DIRECT
 *   alignment rules would refuse.
 * - O_NOFOLLOW would refuse the /proc/self/fd magic link we open through. */
static int spool_flags(int flags)
{
        return (flags & ~(O_APPEND | O_DIRECT | O_NOFOLLOW)) | O_CLOEXEC;
}

/* Counts a new handle on @ino, unless the file was evicted (then -ENOENT: its name was
 * stale). With fs->names_lock held shared, from before the spool file was found by name. */
static int add_handle(struct af_fs *fs, fuse_ino_t ino, int flags)
{
        struct node *n = node_of(fs, ino);
        int r = 0;

        pthread_mutex_lock(&fs->lock);
        if (n->evicted) {
                r = -ENOENT;
        } else {
                n->handles++;
                if (writable(flags))
                        n->writers++;
        }
        pthread_mutex_unlock(&fs->lock);
        return r;
}

/* Closes handle @fd on @n opened with @flags; the last writer hands a changed file over
 * (before the handle stops counting, so evict_one() never sees it clean and unqueued). */
static void put_handle(struct af_fs *fs, struct node *n, int fd, int flags)
{
        bool last;

        pthread_mutex_lock(&fs->lock);
        if (writable(flags) && n->writers)
                n->writers--;
        last = n->writers == 0;
        pthread_mutex_unlock(&fs->lock);
        if (last && atomic_exchange(&n->dirty, false))
                (void)submit_names(fs, n, fd, "close", false, NULL);
        close(fd);
        pthread_mutex_lock(&fs->lock);
        if (n->handles)
                n->handles--;
        pthread_mutex_unlock(&fs->lock);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);
        struct fuse_entry_param e;
        int dirfd = fd_of(req, parent), fd, r;
        struct stat old;
        bool truncates;

        pthread_rwlock_rdlock(&fs->names_lock);
        truncates = fs->cfg.space && (fi->flags & O_TRUNC) &&
                    fstatat(dirfd, name, &old, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(old.st_mode);
        fd = openat(dirfd, name, spool_flags(fi->flags) | O_CREAT, new_mode(req, dirfd, mode));
        if (fd < 0) {
                pthread_rwlock_unlock(&fs->names_lock);
                fuse_reply_err(req, errno);
                return;
        }
        if (truncates)
                af_space_release(fs->cfg.space, (uint64_t)old.st_size);
        r = own(req, dirfd, name);
        if (r == 0)
                r = do_lookup(req, parent, name, &e);
        if (r == 0) {
                r = add_handle(fs, e.ino, fi->flags);
                if (r < 0)
                        forget_one(fs, e.ino, 1);
        }
        pthread_rwlock_unlock(&fs->names_lock);
        if (r < 0) {
                close(fd);
                fuse_reply_err(req, -r);
                return;
        }
        fi->fh = (uint64_t)fd;
        mark_dirty(fs, e.ino); /* a new file is uploaded even if nothing is written */
        /* An empty file (new, or truncated now) is written in order from its start; a node
         * left from an earlier file with the same inode number must not say otherwise. */
        if ((fi->flags & O_TRUNC) || e.attr.st_size == 0)
                stream_break(fs, node_of(fs, e.ino), "truncate (O_TRUNC)", 0);
        if (fuse_reply_create(req, &e, fi) != 0) {
                /* The caller was interrupted: no release and no forget will come. */
                put_handle(fs, node_of(fs, e.ino), fd, fi->flags);
                forget_one(fs, e.ino, 1);
        }
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);
        uint64_t before = 0;
        char path[64];
        int fd, r;

        proc_path(path, fd_of(req, ino));
        pthread_rwlock_rdlock(&fs->names_lock);
        r = add_handle(fs, ino, fi->flags);
        if (r < 0) {
                pthread_rwlock_unlock(&fs->names_lock);
                fuse_reply_err(req, -r);
                return;
        }
        if ((fi->flags & O_TRUNC) && writable(fi->flags))
                stream_break(fs, node_of(fs, ino), "truncate (O_TRUNC)", 0);
        if (fs->cfg.space && (fi->flags & O_TRUNC))
                before = size_of(fd_of(req, ino));
        fd = open(path, spool_flags(fi->flags));
        pthread_rwlock_unlock(&fs->names_lock);
        if (fd < 0) {
                r = errno;
                pthread_mutex_lock(&fs->lock);
                node_of(fs, ino)->handles--;
                if (writable(fi->flags))
                        node_of(fs, ino)->writers--;
                pthread_mutex_unlock(&fs->lock);
                fuse_reply_err(req, r);
                return;
        }
        if (before)
                af_space_release(fs->cfg.space, before);
        fi->fh = (uint64_t)fd;
        if (fi->flags & O_TRUNC)
                mark_dirty(fs, ino);
        if (fuse_reply_open(req, fi) != 0)
                put_handle(fs, node_of(fs, ino), fd, fi->flags); /* interrupted: no release */
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);

        /* The durable hand-off happens here, not in the reply: release errors reach no one. */
        put_handle(fs, node_of(fs, ino), (int)fi->fh, fi->flags);
        fuse_reply_err(req, 0);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        int fd;

        /* Every close() of the program's descriptor: report what closing the spool file
         * would (a spool on NFS reports write-back errors there). The kernel keeps the
         * program's locks itself, so there are none to drop here. */
        fd = dup((int)fi->fh);
        if (fd < 0) {
                fuse_reply_err(req, errno);
                return;
        }
        if (close(fd) < 0) {
                fuse_reply_err(req, errno);
                return;
        }
        /* --sync-close: flush is the only place close() can get an error, so the upload is
         * done here, and its failure is the program's EIO. */
        /* FUSE_FLUSH carries no open flags: ask the spool descriptor how it was opened. */
        if (fs_of(req)->cfg.sync_close &&
            (fcntl((int)fi->fh, F_GETFL) & O_ACCMODE) != O_RDONLY) {
                struct af_fs *fs = fs_of(req);

                fuse_reply_err(req, -sync_fd(fs, node_of(fs, ino), (int)fi->fh, "close"));
                return;
        }
        fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);
        int r;

        r = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
        if (r < 0) {
                fuse_reply_err(req, errno);
                return;
        }
        /* Durable means in S3: for an artifact, wait for its upload (design.md §4). */
        r = sync_fd(fs, node_of(fs, ino), (int)fi->fh, "fsync");
        fuse_reply_err(req, -r);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
        struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

        (void)ino;
        buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        buf.buf[0].fd = (int)fi->fh;
        buf.buf[0].pos = off;
        fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/* With room accounting (fs->cfg.space): how much of a write of @len bytes at @off to @fd may
 * be made, the file's size before it in @before and the room taken in @took. */
static int write_room(struct af_fs *fs, int fd, off_t off, size_t len, uint64_t *before,
                      uint64_t *took, size_t *allowed)
{
        uint64_t end = (uint64_t)off + len;
        int r;

        *before = size_of(fd);
        *allowed = len;
        if (end <= *before)
                return 0;
        r = take_room(fs, end - *before, true, took);
        if (r < 0)
                return r;
        /* A short write: up to where the room ends, when that is past @off. */
        if (*before + *took < end) {
                if (*before + *took <= (uint64_t)off) {
                        af_space_release(fs->cfg.space, *took);
                        *took = 0;
                        return -ENOSPC;
                }
                *allowed = (size_t)(*before + *took - (uint64_t)off);
        }
        return 0;
}

/* Writes the first @len bytes of @in at @off of the handle's spool file. */
static ssize_t write_spool(struct fuse_bufvec *in, size_t len, off_t off,
                           struct fuse_file_info *fi)
{
        struct fuse_bufvec out = FUSE_BUFVEC_INIT(len);

        out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        out.buf[0].fd = (int)fi->fh;
        out.buf[0].pos = off;
        return fuse_buf_copy(&out, in, 0);
}

/*
 * A write to a file below the streaming threshold: no lock, and the atomics of the
 * `writing` count, which lets the first hand-over of parts wait for such writes to end (see
 * stream_advance_locked()), and of seq. Returns false, having written nothing, when the file
 * is past the threshold: then write_streaming().
 */
static bool write_small(struct af_fs *fs, struct node *nd, struct fuse_bufvec *in, size_t len,
                        off_t off, struct fuse_file_info *fi, ssize_t *ret)
{
        uint64_t seq;

        atomic_fetch_add(&nd->writing, 1);
        if (atomic_load(&nd->big)) {
                atomic_fetch_sub(&nd->writing, 1);
                return false;
        }
        *ret = write_spool(in, len, off, fi);
        if (*ret > 0)
                seq_note(nd, (uint64_t)off, (uint64_t)*ret);
        atomic_fetch_sub(&nd->writing, 1);
        seq = atomic_load(&nd->seq);
        if (*ret > 0 && seq != SEQ_BROKEN && seq >= fs->stream_threshold) {
                pthread_mutex_lock(&nd->stream_lock);
                atomic_store(&nd->big, true);
                stream_advance_locked(fs, nd);
                pthread_mutex_unlock(&nd->stream_lock);
        }
        return true;
}

/* From the threshold on, the check and the write go together under stream_lock. The kernel
 * sends one file's write() calls one at a time anyway, so the lock costs nothing there;
 * mmap write-back is the other source of writes. */
static ssize_t write_streaming(struct af_fs *fs, struct node *nd, struct fuse_bufvec *in,
                               size_t len, off_t off, struct fuse_file_info *fi)
{
        ssize_t n;

        pthread_mutex_lock(&nd->stream_lock);
        stream_check_write_locked(nd, (uint64_t)off);
        n = write_spool(in, len, off, fi);
        if (n > 0) {
                seq_note(nd, (uint64_t)off, (uint64_t)n);
                stream_advance_locked(fs, nd);
        }
        pthread_mutex_unlock(&nd->stream_lock);
        return n;
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
                         struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);
        struct node *nd = node_of(fs, ino);
        size_t len = fuse_buf_size(in);
        uint64_t before = 0, took = 0;
        ssize_t n;

        if (fs->cfg.space) {
                int r = write_room(fs, (int)fi->fh, off, len, &before, &took, &len);

                if (r < 0) {
                        fuse_reply_err(req, -r);
                        return;
                }
        }
        mark_dirty(fs, ino);
        if (!fs->stream_threshold)
                n = write_spool(in, len, off, fi);
        else if (!write_small(fs, nd, in, len, off, fi, &n))
                n = write_streaming(fs, nd, in, len, off, fi);
        if (fs->cfg.space) {
                uint64_t end = (uint64_t)off + (n > 0 ? (uint64_t)n : 0);

                give_room(fs, took, before, end > before ? end : before);
        }
        if (n < 0)
                fuse_reply_err(req, (int)-n);
        else
                fuse_reply_write(req, (size_t)n);
}

/* Also punches holes and zeroes ranges (@mode as fallocate(2)): data changes either way. */
static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
        struct af_fs *fs = fs_of(req);
        struct node *nd = node_of(fs, ino);
        uint64_t before = 0, took = 0, grow = 0;
        int r;

        if (fs->cfg.space) {
                before = size_of((int)fi->fh);
                if (mode & FALLOC_FL_INSERT_RANGE)
                        grow = (uint64_t)len;
                else if (!(mode & (FALLOC_FL_KEEP_SIZE | FALLOC_FL_COLLAPSE_RANGE)) &&
                         (uint64_t)(off + len) > before)
                        grow = (uint64_t)(off + len) - before;
                r = take_room(fs, grow, false, &took);
                if (r < 0) {
                        fuse_reply_err(req, -r);
                        return;
                }
        }
        mark_dirty(fs, ino);
        /* Plain allocation changes no byte that was written; the other modes do. */
        if (!fs->stream_threshold || !(mode & ~FALLOC_FL_KEEP_SIZE)) {
                r = fallocate((int)fi->fh, mode, off, len);
        } else {
                pthread_mutex_lock(&nd->stream_lock);
                stream_break_locked(nd, "fallocate", SEQ_BROKEN);
                r = fallocate((int)fi->fh, mode, off, len);
                pthread_mutex_unlock(&nd->stream_lock);
        }
        r = r < 0 ? errno : 0;
        if (fs->cfg.space)
                give_room(fs, took, before, size_of((int)fi->fh));
        fuse_reply_err(req, r);
}

/* SEEK_DATA and SEEK_HOLE only (the kernel answers the others): the spool knows where the
 * holes are. Our reads and writes are positioned, so moving the spool descriptor is free. */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
        off_t r;

        (void)ino;
        r = lseek((int)fi->fh, off, whence);
        if (r < 0)
                fuse_reply_err(req, errno);
        else
                fuse_reply_lseek(req, r);
}

/* Both files are in the spool, so the spool's filesystem copies (or shares) the blocks.
 * Without this op the kernel would fall back to a read and write through us. */
static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len, int flags)
{
        struct af_fs *fs = fs_of(req);
        uint64_t before = 0, took = 0;
        off_t start = off_out;
        ssize_t n;

        (void)ino_in;
        if (fs->cfg.space) {
                int r = write_room(fs, (int)fi_out->fh, off_out, len, &before, &took, &len);

                if (r < 0) {
                        fuse_reply_err(req, -r);
                        return;
                }
        }
        mark_dirty(fs, ino_out);
        stream_break(fs, node_of(fs, ino_out), "copy_file_range", SEQ_BROKEN);
        n = copy_file_range((int)fi_in->fh, &off_in, (int)fi_out->fh, &off_out, len,
                            (unsigned int)flags);
        if (fs->cfg.space) {
                uint64_t end = (uint64_t)start + (n > 0 ? (uint64_t)n : 0);

                give_room(fs, took, before, end > before ? end : before);
        }
        if (n < 0)
                fuse_reply_err(req, errno);
        else
                fuse_reply_write(req, (size_t)n);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
        struct statvfs sv;

        (void)ino;
        if (fstatvfs(fs_of(req)->root.fd, &sv) < 0)
                fuse_reply_err(req, errno);
        else
                fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes --------------------------------------------------------------- */

/* Through /proc/self/fd/N of the node's O_PATH descriptor, which the f*xattr calls do not
 * accept. The magic link resolves to the inode itself, so a symlink's own attributes are
 * meant, as with l*xattr on a local path. The kernel has already checked the namespace
 * rules (user.* only on files and directories, trusted.* for CAP_SYS_ADMIN) for the caller.
 * xattrs are not uploaded, so they do not make a file dirty. */

/* Replies to getxattr/listxattr: the size alone when the caller asked for it (size 0). */
static void reply_xattr(fuse_req_t req, const char *buf, ssize_t n, size_t size)
{
        if (n < 0)
                fuse_reply_err(req, errno);
        else if (size == 0)
                fuse_reply_xattr(req, (size_t)n);
        else
                fuse_reply_buf(req, buf, (size_t)n);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
        char path[64], *buf = NULL;

        if (size && !(buf = malloc(size))) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        proc_path(path, fd_of(req, ino));
        reply_xattr(req, buf, getxattr(path, name, buf, size), size);
        free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        char path[64], *buf = NULL;

        if (size && !(buf = malloc(size))) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        proc_path(path, fd_of(req, ino));
        reply_xattr(req, buf, listxattr(path, buf, size), size);
        free(buf);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
        char path[64];

        proc_path(path, fd_of(req, ino));
        fuse_reply_err(req, setxattr(path, name, value, size, flags) < 0 ? errno : 0);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
        char path[64];

        proc_path(path, fd_of(req, ino));
        fuse_reply_err(req, removexattr(path, name) < 0 ? errno : 0);
}

/* ---- directories ----------------------------------------------------------------------- */

static void dir_link(struct af_fs *fs, struct dir_handle *d)
{
        pthread_mutex_lock(&fs->lock);
        d->next = fs->dirs;
        d->pprev = &fs->dirs;
        if (fs->dirs)
                fs->dirs->pprev = &d->next;
        fs->dirs = d;
        pthread_mutex_unlock(&fs->lock);
}

static void dir_free(struct af_fs *fs, struct dir_handle *d)
{
        pthread_mutex_lock(&fs->lock);
        *d->pprev = d->next;
        if (d->next)
                d->next->pprev = d->pprev;
        pthread_mutex_unlock(&fs->lock);
        closedir(d->dp);
        free(d);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct dir_handle *d = calloc(1, sizeof(*d));
        int fd;

        if (!d) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        fd = openat(fd_of(req, ino), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || !(d->dp = fdopendir(fd))) {
                int e = errno;

                if (fd >= 0)
                        close(fd);
                free(d);
                fuse_reply_err(req, e);
                return;
        }
        fi->fh = (uint64_t)(uintptr_t)d;
        dir_link(fs_of(req), d);
        if (fuse_reply_open(req, fi) != 0)
                dir_free(fs_of(req), d); /* interrupted: no releasedir will come */
}

static bool is_dot_or_dotdot(const char *name)
{
        return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

/* One reply of readdir (@plus false) or readdirplus (@plus true) from the directory stream.
 * Offsets are telldir() cookies of the spool's stream, so a listing resumes where the kernel
 * says, and entries added or removed meanwhile follow the spool's rules (POSIX: may or may
 * not appear; the others appear once).
 *
 * readdirplus: each entry returned, except "." and "..", counts as a lookup of it, which
 * the kernel forgets later like one from lookup. An entry that does not fit, or a reply the
 * kernel never gets, is no lookup and is taken back. An entry we cannot look up (removed
 * since readdir saw it) goes out with inode 0, which the kernel lists without caching. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
        struct af_fs *fs = fs_of(req);
        struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
        char *buf = malloc(size), *p = buf;
        /* Each readdirplus entry takes more than 128 bytes (its fuse_entry_out alone). */
        fuse_ino_t *counted = plus ? calloc(size / 128 + 1, sizeof(*counted)) : NULL;
        size_t rem = size, ncounted = 0;
        int err = 0;

        if (!buf || (plus && !counted)) {
                fuse_reply_err(req, ENOMEM);
                goto out;
        }
        if (off != d->offset) {
                seekdir(d->dp, off);
                d->entry = NULL;
                d->offset = off;
        }
        for (;;) {
                struct fuse_entry_param e;
                const char *name;
                bool looked_up = false;
                off_t next;
                size_t n;

                if (!d->entry) {
                        errno = 0;
                        d->entry = readdir(d->dp);
                        if (!d->entry) {
                                err = errno;
                                break;
                        }
                }
                name = d->entry->d_name;
                next = telldir(d->dp);
                if (plus && !is_dot_or_dotdot(name) && do_lookup(req, ino, name, &e) == 0)
                        looked_up = true;
                if (!looked_up) {
                        memset(&e, 0, sizeof(e));
                        e.attr.st_ino = d->entry->d_ino;
                        e.attr.st_mode = DTTOIF(d->entry->d_type);
                }
                if (plus)
                        n = fuse_add_direntry_plus(req, p, rem, name, &e, next);
                else
                        n = fuse_add_direntry(req, p, rem, name, &e.attr, next);
                if (n > rem) {
                        /* Does not fit: keep the entry for the next call. */
                        if (looked_up)
                                forget_one(fs, e.ino, 1);
                        break;
                }
                if (looked_up)
                        counted[ncounted++] = e.ino;
                p += n;
                rem -= n;
                d->offset = next;
                d->entry = NULL;
        }
        if (err && p == buf) {
                fuse_reply_err(req, err); /* an error after some entries waits for the next call */
        } else if (fuse_reply_buf(req, buf, size - rem) != 0) {
                for (size_t i = 0; i < ncounted; i++)
                        forget_one(fs, counted[i], 1);
        }
out:
        free(counted);
        free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
        do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
        do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;

        (void)ino;
        dir_free(fs_of(req), d);
        fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
        int fd = dirfd(d->dp), r;

        (void)ino;
        r = datasync ? fdatasync(fd) : fsync(fd);
        fuse_reply_err(req, r < 0 ? errno : 0);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
        struct af_fs *fs = userdata;

        /* Writes must reach us in order and before close() returns: no writeback cache. */
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
        /* We write as root, and CAP_FSETID keeps set-user-ID and set-group-ID bits that a
         * write, truncate or chown by anyone else clears on a local filesystem: let the
         * kernel clear them, with the caller's credentials. */
        conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
        /* POSIX ACLs set through the mount are enforced by the kernel, as on the spool's own
         * filesystem; without this they would be stored but ignored. Needs default_permissions,
         * and the umask with it (see new_mode()). */
        if (!fs->cfg.no_xattr && (conn->capable & FUSE_CAP_POSIX_ACL) &&
            (conn->capable & FUSE_CAP_DONT_MASK)) {
                conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
                fs->dont_mask = true;
        }
        if (conn->capable & FUSE_CAP_SPLICE_WRITE)
                conn->want |= FUSE_CAP_SPLICE_WRITE;
        if (conn->capable & FUSE_CAP_SPLICE_MOVE)
                conn->want |= FUSE_CAP_SPLICE_MOVE;
        af_log_debug("op=init capable=0x%x want=0x%x", conn->capable, conn->want);
}

const struct fuse_lowlevel_ops af_fs_ops = {
        .init = op_init,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .setattr = op_setattr,
        .readlink = op_readlink,
        .mknod = op_mknod,
        .mkdir = op_mkdir,
        .symlink = op_symlink,
        .link = op_link,
        .unlink = op_unlink,
        .rmdir = op_rmdir,
        .rename = op_rename,
        .create = op_create,
        .open = op_open,
        .release = op_release,
        .flush = op_flush,
        .fsync = op_fsync,
        .read = op_read,
        .write_buf = op_write_buf,
        .fallocate = op_fallocate,
        .statfs = op_statfs,
        .lseek = op_lseek,
        .copy_file_range = op_copy_file_range,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .setxattr = op_setxattr,
        .removexattr = op_removexattr,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .readdirplus = op_readdirplus,
        .releasedir = op_releasedir,
        .fsyncdir = op_fsyncdir,
};

/* ---- life cycle ------------------------------------------------------------------------ */

int af_fs_new(const struct af_fs_config *cfg, struct af_fs **ret)
{
        struct af_fs *fs = calloc(1, sizeof(*fs));
        struct stat st;
        int r;

        if (!fs)
                return -ENOMEM;
        fs->cfg = *cfg;
        fs->spool = strdup(cfg->spool);
        if (!fs->spool) {
                free(fs);
                return -ENOMEM;
        }
        fs->spool_len = strlen(fs->spool);
        while (fs->spool_len > 1 && fs->spool[fs->spool_len - 1] == '/')
                fs->spool[--fs->spool_len] = '\0';
        fs->is_root = geteuid() == 0;
        fs->root.fd = open(fs->spool, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fs->root.fd < 0 || fstat(fs->root.fd, &st) < 0) {
                r = -errno;
                if (fs->root.fd >= 0)
                        close(fs->root.fd);
                free(fs->spool);
                free(fs);
                return r;
        }
        fs->root.dev = st.st_dev;
        fs->root.ino = st.st_ino;
        fs->root.nlookup = 2;
        pthread_mutex_init(&fs->root.stream_lock, NULL);
        pthread_mutex_init(&fs->lock, NULL);
        pthread_rwlock_init(&fs->names_lock, NULL);
        pthread_cond_init(&fs->notify.cond, NULL);
        af_fs_set_queue(fs, cfg->queue);
        *ret = fs;
        return 0;
}

void af_fs_set_queue(struct af_fs *fs, struct af_queue *queue)
{
        fs->cfg.queue = queue;
        fs->stream_threshold = queue && fs->cfg.streaming ? af_queue_multipart_threshold(queue) : 0;
        fs->stream_part = queue ? af_queue_stream_part_size(queue) : 0;
}

unsigned af_fs_submit_dirty(struct af_fs *fs)
{
        unsigned count = 0;

        for (size_t b = 0; b < NODE_BUCKETS; b++) {
                for (;;) {
                        struct node *n;
                        int fd = -1;
                        char path[64];

                        pthread_mutex_lock(&fs->lock);
                        for (n = fs->buckets[b]; n; n = n->hnext)
                                if (atomic_load(&n->dirty))
                                        break;
                        if (n) {
                                atomic_store(&n->dirty, false);
                                proc_path(path, n->fd);
                                fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                        }
                        pthread_mutex_unlock(&fs->lock);
                        if (!n)
                                break;
                        if (fd >= 0) {
                                /* The session is over: no forget frees @n meanwhile. */
                                (void)submit_names(fs, n, fd, "unmount", false, NULL);
                                close(fd);
                                count++;
                        }
                }
        }
        return count;
}

void af_fs_free(struct af_fs *fs)
{
        if (!fs)
                return;
        af_fs_set_session(fs, NULL);
        while (fs->notify.head) {
                struct notice *nt = fs->notify.head;

                fs->notify.head = nt->next;
                free(nt);
        }
        pthread_cond_destroy(&fs->notify.cond);
        for (size_t b = 0; b < NODE_BUCKETS; b++) {
                struct node *n = fs->buckets[b], *next;

                for (; n; n = next) {
                        next = n->hnext;
                        node_free(n, false);
                }
        }
        while (fs->dirs)
                dir_free(fs, fs->dirs);
        pthread_mutex_destroy(&fs->root.stream_lock);
        close(fs->root.fd);
        pthread_mutex_destroy(&fs->lock);
        pthread_rwlock_destroy(&fs->names_lock);
        free(fs->spool);
        free(fs);
}
