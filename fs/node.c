/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node table: one struct af_node for each inode the kernel knows from us (fs_int.h), found
 * by (st_dev, st_ino) in a hash table under fs->lock, counted by lookups until the kernel
 * forgets them; and the handles open on each node, whose last writer hands a changed file
 * to the queue.
 *
 * Not here: what a node's stream does (inorder.c), when a file goes to the queue
 * (trigger.c). The root node lives in struct af_fs, is never in the table and never freed
 * by a forget.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAMES_MAX 4096

static size_t bucket_of(dev_t dev, ino_t ino)
{
        return (size_t)((ino * 2654435761u) ^ dev) % AF_NODE_BUCKETS;
}

struct af_node *af_node_find_locked(struct af_fs *fs, dev_t dev, ino_t ino)
{
        struct af_node *n;

        if (fs->root.dev == dev && fs->root.ino == ino)
                return &fs->root;
        for (n = fs->buckets[bucket_of(dev, ino)]; n; n = n->hnext)
                if (n->dev == dev && n->ino == ino)
                        return n;
        return NULL;
}

/* The node of the file @st, opened as O_PATH @fd, with one more lookup: the one already in
 * the table (then @fd is closed), or a new one, which takes @fd. */
static int count_lookup(struct af_fs *fs, int fd, const struct stat *st, struct af_node **ret)
{
        struct af_node *n;
        size_t b;

        pthread_mutex_lock(&fs->lock);
        n = af_node_find_locked(fs, st->st_dev, st->st_ino);
        if (n) {
                n->nlookup++;
                pthread_mutex_unlock(&fs->lock);
                close(fd);
                *ret = n;
                return 0;
        }
        n = calloc(1, sizeof(*n));
        if (!n) {
                pthread_mutex_unlock(&fs->lock);
                close(fd);
                return -ENOMEM;
        }
        n->fd = fd;
        n->dev = st->st_dev;
        n->ino = st->st_ino;
        n->nlookup = 1;
        af_inorder_init(n);
        b = bucket_of(st->st_dev, st->st_ino);
        n->hnext = fs->buckets[b];
        fs->buckets[b] = n;
        pthread_mutex_unlock(&fs->lock);
        *ret = n;
        return 0;
}

int af_node_lookup(struct af_fs *fs, fuse_ino_t parent, const char *name,
                   struct fuse_entry_param *e)
{
        int dirfd = af_node_of(fs, parent)->fd;
        struct af_node *n;
        int fd, r;

        memset(e, 0, sizeof(*e));
        e->attr_timeout = fs->cfg.timeout;
        e->entry_timeout = fs->cfg.timeout;
        fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        r = count_lookup(fs, fd, &e->attr, &n);
        if (r < 0)
                return r;
        if (S_ISREG(e->attr.st_mode) && e->attr.st_nlink > 1) {
                char rel[PATH_MAX];

                /* Our lookup count keeps @n alive until we reply. */
                if (af_relpath_join(fs, dirfd, name, rel, sizeof(rel)) == 0) {
                        pthread_mutex_lock(&fs->lock);
                        af_node_add_name_locked(n, rel);
                        pthread_mutex_unlock(&fs->lock);
                }
        }
        e->ino = af_node_ino(fs, n);
        return 0;
}

/* The kernel forgot the node (@abandon), or the session is over and the queue may be gone. */
static void node_free(struct af_node *n, bool abandon)
{
        af_inorder_done(n, abandon);
        close(n->fd);
        free(n->names);
        free(n);
}

void af_node_forget(struct af_fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
        struct af_node *n = af_node_of(fs, ino), **pp;
        bool pinned;

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
        pinned = n->pins > 0;
        n->forgotten = pinned; /* the snapshot thread's unpin frees it */
        pthread_mutex_unlock(&fs->lock);
        if (!pinned)
                node_free(n, true);
}

void af_node_unpin(struct af_fs *fs, struct af_node *n)
{
        bool last;

        pthread_mutex_lock(&fs->lock);
        last = --n->pins == 0 && n->forgotten;
        pthread_mutex_unlock(&fs->lock);
        if (last)
                node_free(n, true);
}

/* The descriptor behind the node knows only the name it was opened by. */
void af_node_add_name_locked(struct af_node *n, const char *rel)
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

char *af_node_names_copy(struct af_fs *fs, struct af_node *n, size_t *ret_len)
{
        char *c = NULL;

        pthread_mutex_lock(&fs->lock);
        if (n->names_len && (c = malloc(n->names_len)))
                memcpy(c, n->names, n->names_len);
        *ret_len = c ? n->names_len : 0;
        pthread_mutex_unlock(&fs->lock);
        return c;
}

bool af_node_writable(int flags)
{
        return (flags & O_ACCMODE) != O_RDONLY;
}

int af_node_add_handle(struct af_fs *fs, struct af_node *n, int flags)
{
        int r = 0;

        pthread_mutex_lock(&fs->lock);
        if (n->evicted) {
                r = -ENOENT;
        } else {
                n->handles++;
                if (af_node_writable(flags))
                        n->writers++;
        }
        pthread_mutex_unlock(&fs->lock);
        return r;
}

void af_node_drop_handle(struct af_fs *fs, struct af_node *n, int flags)
{
        pthread_mutex_lock(&fs->lock);
        n->handles--;
        if (af_node_writable(flags))
                n->writers--;
        pthread_mutex_unlock(&fs->lock);
}

/* The hand-over comes before the handle stops counting, so the eviction (room.c) never sees
 * the file clean and unqueued. */
void af_node_put_handle(struct af_fs *fs, struct af_node *n, int fd, int flags)
{
        bool last;

        pthread_mutex_lock(&fs->lock);
        if (af_node_writable(flags) && n->writers)
                n->writers--;
        last = n->writers == 0;
        pthread_mutex_unlock(&fs->lock);
        if (last) {
                atomic_fetch_add(&n->handing_over, 1);
                if (atomic_exchange(&n->dirty, false))
                        (void)af_trigger_submit_names(fs, n, fd, "close", false, NULL);
                atomic_fetch_sub(&n->handing_over, 1);
        }
        close(fd);
        pthread_mutex_lock(&fs->lock);
        if (n->handles)
                n->handles--;
        pthread_mutex_unlock(&fs->lock);
}

bool af_node_evicted(struct af_fs *fs, struct af_node *n)
{
        bool evicted;

        pthread_mutex_lock(&fs->lock);
        evicted = n->evicted;
        pthread_mutex_unlock(&fs->lock);
        return evicted;
}

bool af_node_has_writers(struct af_fs *fs, struct af_node *n)
{
        bool writers;

        pthread_mutex_lock(&fs->lock);
        writers = n->writers > 0;
        pthread_mutex_unlock(&fs->lock);
        return writers;
}

struct af_node *af_node_take_dirty(struct af_fs *fs, size_t b, int *ret_fd)
{
        struct af_node *n;
        char path[64];

        *ret_fd = -1;
        pthread_mutex_lock(&fs->lock);
        for (n = fs->buckets[b]; n; n = n->hnext)
                if (atomic_load(&n->dirty))
                        break;
        if (n) {
                atomic_store(&n->dirty, false);
                af_fs_proc_path(path, n->fd);
                *ret_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        }
        pthread_mutex_unlock(&fs->lock);
        return n;
}

void af_node_free_all(struct af_fs *fs)
{
        for (size_t b = 0; b < AF_NODE_BUCKETS; b++) {
                struct af_node *n = fs->buckets[b], *next;

                for (; n; n = next) {
                        next = n->hnext;
                        node_free(n, false);
                }
                fs->buckets[b] = NULL;
        }
}
