/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mount's life cycle (fs.h): made before the session, given its queue, freed after the
 * session is destroyed, when no op runs any more.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The spool's top directory: the root node, with the lookups the kernel never forgets. */
static int open_root(struct af_fs *fs)
{
        struct stat st;

        fs->root.fd = open(fs->spool, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fs->root.fd < 0 || fstat(fs->root.fd, &st) < 0) {
                int r = -errno;

                if (fs->root.fd >= 0)
                        close(fs->root.fd);
                return r;
        }
        fs->root.dev = st.st_dev;
        fs->root.ino = st.st_ino;
        fs->root.nlookup = 2;
        af_inorder_init(&fs->root);
        return 0;
}

int af_fs_new(const struct af_fs_config *cfg, struct af_fs **ret)
{
        struct af_fs *fs = calloc(1, sizeof(*fs));
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
        r = open_root(fs);
        if (r < 0) {
                free(fs->spool);
                free(fs);
                return r;
        }
        pthread_mutex_init(&fs->lock, NULL);
        pthread_rwlock_init(&fs->names_lock, NULL);
        af_notify_init(fs);
        af_fs_set_queue(fs, cfg->queue);
        r = af_snapshot_start(fs);
        if (r < 0) {
                af_fs_free(fs);
                return r;
        }
        *ret = fs;
        return 0;
}

void af_fs_set_queue(struct af_fs *fs, struct af_queue *queue)
{
        fs->cfg.queue = queue;
        fs->stream_threshold = queue && fs->cfg.streaming ? af_queue_multipart_threshold(queue) : 0;
        fs->stream_part = queue ? af_queue_stream_part_size(queue) : 0;
}

void af_fs_free(struct af_fs *fs)
{
        if (!fs)
                return;
        af_snapshot_stop(fs); /* it walks the nodes */
        pthread_mutex_destroy(&fs->snap.lock);
        pthread_cond_destroy(&fs->snap.cond);
        af_fs_set_session(fs, NULL);
        af_notify_done(fs);
        af_node_free_all(fs);
        af_dir_close_all(fs);
        af_inorder_done(&fs->root, false);
        close(fs->root.fd);
        pthread_mutex_destroy(&fs->lock);
        pthread_rwlock_destroy(&fs->names_lock);
        free(fs->spool);
        free(fs);
}
