/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The spool's room: the limit, the free space, and the eviction candidates. See space.h.
 */
#include "spool/space.h"
#include "base/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Within this much of the free space, every reservation asks the filesystem again. */
#define FREE_SLACK ((uint64_t)64 << 20)
/* Otherwise the free space is asked again at most this often. */
#define FREE_REFRESH_MS 1000
/* Candidates beyond this many: the oldest are forgotten (they just stay in the spool). */
#define MAX_CANDIDATES 1000000

struct cand {
        struct cand *next;
        struct af_space_candidate c;
};

struct af_space {
        struct af_space_config cfg;
        pthread_mutex_t lock;
        struct {
                uint64_t used;
                uint64_t fs_avail;  /* statvfs f_bavail in bytes, when last asked */
                uint64_t since;     /* bytes reserved since then */
                uint64_t asked_ms;  /* monotonic; 0: never */
                struct cand *head;  /* oldest upload first */
                struct cand *tail;
                uint64_t ncand; /* a uint64_t for read_counter(), like used */
        } locked; /* only with lock held */
};

/* The apparent size of the regular files under directory @fd (which it closes); their
 * number is added to @files. */
static uint64_t du(int fd, unsigned depth, uint64_t *files)
{
        struct dirent *de;
        uint64_t total = 0;
        DIR *d = fdopendir(fd);

        if (!d) {
                close(fd);
                return 0;
        }
        while ((de = readdir(d))) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISREG(st.st_mode)) {
                        total += (uint64_t)st.st_size;
                        (*files)++;
                } else if (S_ISDIR(st.st_mode) && depth < 4096) {
                        int sub = openat(dirfd(d), de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                        if (sub >= 0)
                                total += du(sub, depth + 1, files);
                }
        }
        closedir(d);
        return total;
}

int af_space_new(const struct af_space_config *cfg, struct af_space **ret)
{
        struct af_space *sp = calloc(1, sizeof(*sp));

        if (!sp)
                return -ENOMEM;
        sp->cfg = *cfg;
        pthread_mutex_init(&sp->lock, NULL);
        if (cfg->limit) {
                int fd = openat(cfg->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                if (fd < 0) {
                        int r = -errno;

                        af_space_free(sp);
                        return r;
                }
                uint64_t files = 0;

                sp->locked.used = du(fd, 0, &files);
        }
        *ret = sp;
        return 0;
}

int af_space_scan(int dirfd, uint64_t *ret_files, uint64_t *ret_bytes)
{
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        *ret_files = 0;
        if (fd < 0)
                return -errno;
        *ret_bytes = du(fd, 0, ret_files);
        return 0;
}

void af_space_free(struct af_space *sp)
{
        struct af_space_candidate c;

        if (!sp)
                return;
        while (af_space_next_candidate(sp, &c))
                af_space_candidate_done(&c);
        pthread_mutex_destroy(&sp->lock);
        free(sp);
}

/* What the filesystem still has for unprivileged writers, minus what was promised since
 * it was last asked. */
static uint64_t fs_room_locked(struct af_space *sp, uint64_t want)
{
        uint64_t now = af_clock_mono_ms();
        struct statvfs sv;

        if (!sp->locked.asked_ms || now - sp->locked.asked_ms >= FREE_REFRESH_MS ||
            want + sp->locked.since + FREE_SLACK > sp->locked.fs_avail) {
                if (fstatvfs(sp->cfg.dirfd, &sv) == 0) {
                        sp->locked.fs_avail = (uint64_t)sv.f_bavail * sv.f_frsize;
                        sp->locked.since = 0;
                        sp->locked.asked_ms = now;
                } else if (!sp->locked.asked_ms) {
                        return want; /* cannot tell: let the filesystem say */
                }
        }
        return sp->locked.fs_avail > sp->locked.since ? sp->locked.fs_avail - sp->locked.since
                                                       : 0;
}

uint64_t af_space_reserve(struct af_space *sp, uint64_t growth)
{
        uint64_t take = growth, room;

        if (!growth)
                return 0;
        pthread_mutex_lock(&sp->lock);
        if (sp->cfg.limit) {
                room = sp->locked.used < sp->cfg.limit ? sp->cfg.limit - sp->locked.used : 0;
                if (take > room)
                        take = room;
        }
        room = fs_room_locked(sp, take);
        if (take > room)
                take = room;
        sp->locked.used += take;
        sp->locked.since += take;
        pthread_mutex_unlock(&sp->lock);
        return take;
}

void af_space_charge(struct af_space *sp, uint64_t bytes)
{
        pthread_mutex_lock(&sp->lock);
        sp->locked.used += bytes;
        sp->locked.since += bytes;
        pthread_mutex_unlock(&sp->lock);
}

void af_space_release(struct af_space *sp, uint64_t bytes)
{
        pthread_mutex_lock(&sp->lock);
        sp->locked.used -= bytes < sp->locked.used ? bytes : sp->locked.used;
        sp->locked.since -= bytes < sp->locked.since ? bytes : sp->locked.since;
        pthread_mutex_unlock(&sp->lock);
}

/* One of sp->locked's counters (@counter points at it), read under the lock: the value is
 * current, and a 64-bit read is whole on every platform. */
static uint64_t read_counter(struct af_space *sp, const uint64_t *counter)
{
        uint64_t v;

        pthread_mutex_lock(&sp->lock);
        v = *counter;
        pthread_mutex_unlock(&sp->lock);
        return v;
}

uint64_t af_space_used(struct af_space *sp)
{
        return read_counter(sp, &sp->locked.used);
}

uint64_t af_space_limit(struct af_space *sp)
{
        return sp->cfg.limit;
}

static void append_locked(struct af_space *sp, struct cand *c)
{
        c->next = NULL;
        if (sp->locked.tail)
                sp->locked.tail->next = c;
        else
                sp->locked.head = c;
        sp->locked.tail = c;
        sp->locked.ncand++;
}

static struct cand *pop_locked(struct af_space *sp)
{
        struct cand *c = sp->locked.head;

        if (c) {
                sp->locked.head = c->next;
                if (!sp->locked.head)
                        sp->locked.tail = NULL;
                sp->locked.ncand--;
        }
        return c;
}

void af_space_uploaded(struct af_space *sp, const char *relpath, const char *key, dev_t dev,
                       ino_t ino, uint64_t size, int64_t mtime_ns)
{
        struct cand *c = calloc(1, sizeof(*c)), *old = NULL;

        if (!c)
                return; /* it just stays in the spool */
        c->c.relpath = strdup(relpath);
        c->c.key = strdup(key);
        if (!c->c.relpath || !c->c.key) {
                af_space_candidate_done(&c->c);
                free(c);
                return;
        }
        c->c.dev = dev;
        c->c.ino = ino;
        c->c.size = size;
        c->c.mtime_ns = mtime_ns;
        pthread_mutex_lock(&sp->lock);
        append_locked(sp, c);
        if (sp->locked.ncand > MAX_CANDIDATES)
                old = pop_locked(sp);
        pthread_mutex_unlock(&sp->lock);
        if (old) {
                af_space_candidate_done(&old->c);
                free(old);
        }
}

bool af_space_next_candidate(struct af_space *sp, struct af_space_candidate *ret)
{
        struct cand *c;

        pthread_mutex_lock(&sp->lock);
        c = pop_locked(sp);
        pthread_mutex_unlock(&sp->lock);
        if (!c)
                return false;
        *ret = c->c;
        free(c);
        return true;
}

void af_space_requeue(struct af_space *sp, struct af_space_candidate *c)
{
        struct cand *n = malloc(sizeof(*n));

        if (!n) {
                af_space_candidate_done(c);
                return;
        }
        n->c = *c;
        memset(c, 0, sizeof(*c));
        pthread_mutex_lock(&sp->lock);
        append_locked(sp, n);
        pthread_mutex_unlock(&sp->lock);
}

void af_space_candidate_done(struct af_space_candidate *c)
{
        free(c->relpath);
        free(c->key);
        memset(c, 0, sizeof(*c));
}

size_t af_space_candidates(struct af_space *sp)
{
        return (size_t)read_counter(sp, &sp->locked.ncand);
}
