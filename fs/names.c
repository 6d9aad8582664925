/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Making, linking, renaming and removing names, and what each does besides the syscall: a
 * new name belongs to the caller; a name that goes away (unlink, or a rename over it) gives
 * its room back and ends its file's stream; a file that arrives at a name is uploaded under
 * it (trigger.c); and with a remote (core/spool/remote.h) the objects of old names are
 * copied or deleted in S3.
 *
 * Each of these holds fs->names_lock shared across the syscall, so an eviction (room.c)
 * never removes a file while its names move.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

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

/* When we can arrange it (running as root). The kernel holds the parent directory locked
 * until we reply, so @name is still ours. */
int af_names_own(fuse_req_t req, int dirfd, const char *name)
{
        const struct fuse_ctx *ctx = fuse_req_ctx(req);

        if (!af_fs_of(req)->is_root)
                return 0;
        if (fchownat(dirfd, name, ctx->uid, new_gid(ctx, dirfd), AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

/* With POSIX ACLs on, the kernel passes the caller's umask instead of applying it
 * (FUSE_CAP_DONT_MASK), because a local filesystem ignores the umask where the directory has a
 * default ACL (which the spool then applies, with our own umask 0) and applies it everywhere
 * else. */
mode_t af_names_mode(fuse_req_t req, int dirfd, mode_t mode)
{
        char path[64];

        if (!af_fs_of(req)->dont_mask)
                return mode;
        af_fs_proc_path(path, dirfd);
        if (getxattr(path, "system.posix_acl_default", NULL, 0) > 0)
                return mode;
        return mode & ~fuse_req_ctx(req)->umask;
}

int af_names_link(struct af_fs *fs, int fd, int nfd, const char *newname,
                  struct af_names_link *ln)
{
        char path[64];
        int r;

        /* The file's name now (a name it went up under, perhaps) and the new one, for a copy
         * in S3 instead of an upload (remote.h). */
        ln->named = fs->cfg.remote && af_relpath_of(fs, fd, ln->from, sizeof(ln->from)) == 0 &&
                    af_relpath_join(fs, nfd, newname, ln->to, sizeof(ln->to)) == 0;
        ln->first = ln->named && af_remote_involved(fs->cfg.remote, ln->from, ln->from);
        af_fs_proc_path(path, fd);
        /* linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc link does not. */
        pthread_rwlock_rdlock(&fs->names_lock);
        r = linkat(AT_FDCWD, path, nfd, newname, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
        pthread_rwlock_unlock(&fs->names_lock);
        return r;
}

/* What a name that is about to go away (@st, its lstat) ends: its file's stream, and the room
 * it holds. Found under names_lock. */
struct gone {
        struct af_node *streaming;
        uint64_t freed;
};

static void gone_note(struct af_fs *fs, const struct stat *st, struct gone *g)
{
        g->streaming = af_inorder_node(fs, st);
        g->freed = af_room_freed_by_unlink(st);
}

/* Once the name is gone and names_lock let go: ends its file's stream. (Its room, g->freed,
 * goes back as soon as the name is gone, with names_lock still held.) */
static void gone_settle(struct af_fs *fs, const struct gone *g, const char *why)
{
        if (g->streaming)
                af_inorder_break(fs, g->streaming, why, AF_SEQ_BROKEN);
}

int af_names_unlink(struct af_fs *fs, int dirfd, const char *name)
{
        char rel[PATH_MAX];
        bool named = fs->cfg.remote && af_relpath_join(fs, dirfd, name, rel, sizeof(rel)) == 0;
        /* A name with an object in S3: its delete is journaled before the name goes, so a
         * kill between the two still deletes it (the next mount or drain does). */
        bool first = named && af_remote_involved(fs->cfg.remote, rel, rel);
        struct gone g = { 0 };
        struct stat st;
        int r = 0;

        if (first)
                af_remote_unlinked(fs->cfg.remote, rel);
        pthread_rwlock_rdlock(&fs->names_lock);
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                gone_note(fs, &st, &g);
        if (unlinkat(dirfd, name, 0) < 0)
                r = -errno;
        else
                af_room_release(fs, g.freed);
        pthread_rwlock_unlock(&fs->names_lock);
        if (r < 0) {
                /* Still there after all: it goes up again, after the delete of its key. */
                if (first)
                        af_trigger_arrived(fs, dirfd, name, "unlink failed", NULL, NULL);
                return r;
        }
        gone_settle(fs, &g, "unlink");
        /* Before the answer: a name the program re-creates next must go up after this. And
         * again after a first call: an upload that ended between it and the unlinkat found
         * the name still there and registered its object; that entry is taken now. */
        if (named)
                af_remote_unlinked(fs->cfg.remote, rel);
        return 0;
}

int af_names_rmdir(struct af_fs *fs, int dirfd, const char *name)
{
        int r;

        pthread_rwlock_rdlock(&fs->names_lock);
        r = unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
        pthread_rwlock_unlock(&fs->names_lock);
        return r;
}

/* A file renamed over another replaces it: it is gone from the spool like an unlinked one
 * (its stream ends, its room comes back), unless both names are links of one file, which
 * leaves everything as it was. With names_lock. */
static void note_replaced(struct af_fs *fs, const struct af_names_move *mv, struct gone *g)
{
        struct stat a, b;

        if (!mv->exchange && fstatat(mv->nfd, mv->newname, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
            fstatat(mv->fd, mv->name, &a, AT_SYMLINK_NOFOLLOW) == 0 &&
            (a.st_dev != b.st_dev || a.st_ino != b.st_ino))
                gone_note(fs, &b, g);
}

static bool is_dir(int dirfd, const char *name)
{
        struct stat st;

        return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int af_names_rename(struct af_fs *fs, int fd, const char *name, int nfd, const char *newname,
                    unsigned int flags, struct af_names_move *mv)
{
        struct gone g = { 0 };
        int r = 0;

        mv->fd = fd;
        mv->nfd = nfd;
        mv->name = name;
        mv->newname = newname;
        mv->exchange = flags & RENAME_EXCHANGE;
        /* Both names, before the rename moves them, for what the old objects become. */
        mv->named = fs->cfg.remote &&
                    af_relpath_join(fs, fd, name, mv->from, sizeof(mv->from)) == 0 &&
                    af_relpath_join(fs, nfd, newname, mv->to, sizeof(mv->to)) == 0;
        /* Copies and deletes are queued before the answer (see af_remote_involved), and so
         * are those of every file under a renamed directory: an unlink of one of its files
         * right after the answer must find the file already under its new name. A plain
         * rename is answered first and uploaded after, as ever. */
        mv->first = mv->named && (af_remote_involved(fs->cfg.remote, mv->from, mv->to) ||
                                  is_dir(fd, name));
        pthread_rwlock_rdlock(&fs->names_lock);
        note_replaced(fs, mv, &g);
        if (renameat2(fd, name, nfd, newname, flags) < 0)
                r = -errno;
        else
                af_room_release(fs, g.freed);
        pthread_rwlock_unlock(&fs->names_lock);
        if (r == 0)
                gone_settle(fs, &g, "replaced by a rename");
        return r;
}

void af_names_moved(struct af_fs *fs, const struct af_names_move *mv)
{
        /* An exchange is uploaded on both sides (copying each over the other would race). */
        af_trigger_arrived(fs, mv->nfd, mv->newname, "rename",
                           mv->named && !mv->exchange ? mv->from : NULL, mv->to);
        /* RENAME_EXCHANGE moved the other file too. */
        if (mv->exchange)
                af_trigger_arrived(fs, mv->fd, mv->name, "rename", NULL, NULL);
        if (mv->named)
                af_remote_renamed(fs->cfg.remote, mv->from, mv->to, mv->exchange);
        if (mv->named && !mv->exchange)
                af_remote_dir_renamed(fs->cfg.remote, mv->from, mv->to);
}
