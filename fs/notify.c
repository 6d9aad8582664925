/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Telling the kernel about names the mount removed itself (evictions, room.c), so that they
 * stop showing before the entry timeout. A thread of its own sends the notifications: one
 * sent from inside an op can deadlock with the kernel (libfuse's rule). Its list is guarded
 * by fs->lock; the thread runs from af_fs_set_session(se) to af_fs_set_session(NULL).
 */
#include "fs_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

struct af_notice {
        struct af_notice *next;
        fuse_ino_t parent;
        char name[];
};

void af_notify_init(struct af_fs *fs)
{
        pthread_cond_init(&fs->notify.cond, NULL);
}

/* After af_fs_set_session(fs, NULL): drops what was never sent. */
void af_notify_done(struct af_fs *fs)
{
        while (fs->notify.head) {
                struct af_notice *nt = fs->notify.head;

                fs->notify.head = nt->next;
                free(nt);
        }
        pthread_cond_destroy(&fs->notify.cond);
}

/* The inode of the directory @rel is in (FUSE_ROOT_ID for the spool's top), or 0 when the
 * kernel does not know it (it has no node): then it caches nothing under it. */
static fuse_ino_t parent_of(struct af_fs *fs, const char *rel, const char *slash)
{
        char dir[PATH_MAX];
        struct stat st;
        struct af_node *n;

        if (!slash)
                return FUSE_ROOT_ID;
        if ((size_t)(slash - rel) >= sizeof(dir))
                return 0;
        memcpy(dir, rel, (size_t)(slash - rel));
        dir[slash - rel] = '\0';
        if (fstatat(fs->root.fd, dir, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        pthread_mutex_lock(&fs->lock);
        n = af_node_find_locked(fs, st.st_dev, st.st_ino);
        pthread_mutex_unlock(&fs->lock);
        return n ? (fuse_ino_t)(uintptr_t)n : 0;
}

void af_notify_forget_name(struct af_fs *fs, const char *rel)
{
        const char *slash = strrchr(rel, '/'), *name = slash ? slash + 1 : rel;
        struct af_notice *nt;
        fuse_ino_t parent;

        if (!fs->notify.se)
                return;
        parent = parent_of(fs, rel, slash);
        if (!parent)
                return;
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
                struct af_notice *nt = fs->notify.head;

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
