/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file fs_int.h
 * What the files of the mount share: the mount (struct af_fs), its inodes (struct af_node),
 * the locks and the fields each one guards, and each file's functions, under that file's
 * name. Not for main.c, which sees only fs.h.
 *
 * Inodes: each kernel inode we have answered a lookup for is a struct af_node holding an
 * O_PATH descriptor of the spool file, found again by (st_dev, st_ino) so hard links share a
 * node. The node's fuse_ino_t is its address. Operations that need a real path on an O_PATH
 * descriptor (chmod, truncate, open, xattrs) go through /proc/self/fd/N, which the kernel
 * resolves to the file itself, however it was renamed.
 *
 * Hard links: a node's descriptor knows the file by one name (the kernel's "NAME (deleted)"
 * once that one is unlinked), so the other names lookups, links and renames show are kept
 * on the node, and a changed file is handed over under every name that still leads to it.
 *
 * Streaming (fs.h): each node tracks how far its file was written in order (seq); past the
 * threshold its writes, truncates and the like take its stream_lock (inorder.c).
 */
#pragma once

#include "fs.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#define AF_NODE_BUCKETS 4096

/* node.seq when the file is not written in order from its start. */
#define AF_SEQ_BROKEN UINT64_MAX

struct af_notice;
struct af_dir;

struct af_node {
        struct af_node *hnext; /* hash chain; with fs->lock */
        int fd;                /* O_PATH; immutable while the node lives */
        dev_t dev;             /* immutable */
        ino_t ino;             /* immutable */
        uint64_t nlookup;      /* with fs->lock */
        unsigned writers;      /* open writable handles; with fs->lock */
        unsigned handles;      /* open handles of any kind; with fs->lock */
        bool evicted;          /* removed from the spool to make room (room.c); with fs->lock */
        atomic_bool dirty;     /* written since last handed to the queue (trigger.c); atomic */
        /* Hand-overs between taking @dirty and the queue holding the file; an fsync waits
         * them out, else it could find the file neither dirty nor queued. Atomic. */
        atomic_int handing_over;
        /* Other names of a hard-linked file, seen by lookup, link or rename: spool-relative,
         * each NUL-terminated, at most NAMES_MAX (node.c) bytes; stale ones are skipped at use
         * (af_trigger_submit_names()). With fs->lock. */
        char *names;
        size_t names_len;
        /* Streaming (inorder.c). seq: bytes [0, seq) were written in order since the node was
         * made or the file truncated to 0 (AF_SEQ_BROKEN: not). big: seq reached the threshold
         * once, so writes take stream_lock. writing: writes under way without stream_lock. */
        _Atomic uint64_t seq;
        atomic_bool big;
        atomic_uint writing;
        pthread_mutex_t stream_lock; /* lock order: at struct af_fs's locks */
        struct af_stream *stream; /* with stream_lock */
        uint64_t handed;   /* with stream_lock: bytes [0, handed) are the stream's parts */
        uint64_t retry_at; /* with stream_lock: seq at which starting a stream is tried again */
        /* Snapshots (snapshot.c). Every change of the file's data through the mount counts in
         * changing while it runs and in changes once done (af_node_change_begin/_end), so a
         * copy taken with changing 0 and changes the same before and after saw no change:
         * the writer never waits, the copy is taken again. Atomic. */
        atomic_uint changing;
        _Atomic uint64_t changes;
        /* Hand-overs of the file to the queue begun (af_trigger_submit_names), counted before
         * the queue sees them: a snapshot copied before one is dropped. Atomic. */
        atomic_uint handovers;
        /* changes at the last snapshot or hand-over: what S3 gets without a new snapshot.
         * Atomic. */
        _Atomic uint64_t snapped;
        bool snap_warned; /* "no copy made" said once; only the snapshot thread */
        /* The snapshot thread holds the node across its copy: a forget then only unhashes
         * it, and the last unpin frees it (af_node_unpin). With fs->lock. */
        unsigned pins;
        bool forgotten;
};

struct af_fs {
        /* Set by af_fs_new() and af_fs_set_queue() before the session runs; read-only after. */
        struct af_fs_config cfg;
        char *spool;
        size_t spool_len;
        bool is_root;              /* running as root: new files get the caller's owner */
        uint64_t stream_threshold; /* 0: no streaming */
        uint64_t stream_part;
        bool dont_mask; /* the kernel leaves the caller's umask to us; set once, in init */
        /*
         * Lock order: names_lock, then a node's stream_lock, then lock; the queue's and the
         * space's own locks (core/, which never calls back into the mount) come last.
         * lock is never held across a syscall on file data or a call into the queue or the
         * space; stream_lock is held across the change it guards and calls into the queue
         * (which never waits for S3 there).
         */
        /* Held shared by the ops that open, make, link, rename or remove names, exclusive by
         * eviction (room.c): a file is never evicted while an op is between finding it by
         * name and registering its handle, or moving names around it. */
        pthread_rwlock_t names_lock;
        /* The node table, nlookup, handle counts, the names of hard-linked files, open
         * directory handles, the notifier's list. */
        pthread_mutex_t lock;
        atomic_uint_least64_t enospc_logged_ms; /* rate limit of the "spool full" line */
        /* Names the kernel must forget (evicted files), told by a thread of their own
         * (notify.c): a notification sent from inside an op can deadlock with the kernel
         * (libfuse's rule). */
        struct {
                struct fuse_session *se; /* set before the session runs, cleared after */
                struct af_notice *head;  /* with lock */
                bool stopping;           /* with lock */
                bool running;            /* only af_fs_set_session() */
                pthread_t thread;
                pthread_cond_t cond;
        } notify;
        struct af_node root; /* never in buckets, never freed by a forget */
        struct af_node *buckets[AF_NODE_BUCKETS]; /* with lock */
        /* Open directory handles. An unmount drops the RELEASEDIRs still queued in the
         * kernel, so af_fs_free() closes what is left. With lock. */
        struct af_dir *dirs;
        /* --upload-open-every: the thread that snapshots open files (snapshot.c). */
        struct {
                pthread_t thread;
                bool running;         /* only af_snapshot_start/_stop */
                pthread_mutex_t lock; /* guards stopping; below every other lock */
                pthread_cond_t cond;
                bool stopping;
                atomic_bool no_reflink; /* FICLONE refused once: copy from then on */
        } snap;
};

static inline struct af_fs *af_fs_of(fuse_req_t req)
{
        return fuse_req_userdata(req);
}

static inline struct af_node *af_node_of(struct af_fs *fs, fuse_ino_t ino)
{
        return ino == FUSE_ROOT_ID ? &fs->root : (struct af_node *)(uintptr_t)ino;
}

static inline fuse_ino_t af_node_ino(struct af_fs *fs, struct af_node *n)
{
        return n == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

/* /proc/self/fd/@fd, the path a syscall without an at-form takes for an O_PATH descriptor. */
static inline void af_fs_proc_path(char buf[64], int fd)
{
        snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

/* A change of @n's data begins, or has ended (see struct af_node: changing, changes). */
static inline void af_node_change_begin(struct af_node *n)
{
        atomic_fetch_add(&n->changing, 1);
}

static inline void af_node_change_end(struct af_node *n)
{
        atomic_fetch_add(&n->changes, 1);
        atomic_fetch_sub(&n->changing, 1);
}

/* ---- node.c: the node table and the handles on a node ----------------------------------- */

struct af_node *af_node_find_locked(struct af_fs *fs, dev_t dev, ino_t ino);
/** Looks @name up in @parent and counts a lookup of its node (made if new) in @e->ino. */
int af_node_lookup(struct af_fs *fs, fuse_ino_t parent, const char *name,
                   struct fuse_entry_param *e);
/** Takes back @nlookup lookups of @ino; the last one frees its node (not the root's). */
void af_node_forget(struct af_fs *fs, fuse_ino_t ino, uint64_t nlookup);
/** Remembers spool-relative @rel as a name of @n's file, which has more than one. */
void af_node_add_name_locked(struct af_node *n, const char *rel);
/** A copy of @n's other names (NULL if none), and its length in @ret_len. */
char *af_node_names_copy(struct af_fs *fs, struct af_node *n, size_t *ret_len);
/** Whether a handle opened with @flags writes. */
bool af_node_writable(int flags);
/** Counts a new handle on @n, or -ENOENT if the file was evicted (its name was stale). With
 * fs->names_lock held shared, from before the spool file was found by name. */
int af_node_add_handle(struct af_fs *fs, struct af_node *n, int flags);
/** Takes back an af_node_add_handle() whose open failed. */
void af_node_drop_handle(struct af_fs *fs, struct af_node *n, int flags);
/** Closes handle @fd on @n opened with @flags; the last writer hands a changed file over. */
void af_node_put_handle(struct af_fs *fs, struct af_node *n, int fd, int flags);
bool af_node_evicted(struct af_fs *fs, struct af_node *n);
bool af_node_has_writers(struct af_fs *fs, struct af_node *n);
/** The next node of bucket @b that is dirty, its mark taken off and its file opened for
 * reading in @ret_fd (< 0 if it cannot be); NULL when none is left. */
struct af_node *af_node_take_dirty(struct af_fs *fs, size_t b, int *ret_fd);
/** Gives back the snapshot thread's pin (n->pins++ under fs->lock); frees a node forgotten
 * meanwhile. */
void af_node_unpin(struct af_fs *fs, struct af_node *n);
/** At the end of the session: frees every node but the root, whose streams the queue has
 * taken over or journaled. */
void af_node_free_all(struct af_fs *fs);

/* ---- relpath.c: spool-relative names -------------------------------------------------- */

/** Whether spool-relative @rel names the file @st describes. */
bool af_relpath_names(struct af_fs *fs, const char *rel, const struct stat *st);
/** The path of open descriptor @fd relative to the spool, or -ENOENT if it is not (any
 * longer) in the spool. */
int af_relpath_of(struct af_fs *fs, int fd, char *out, size_t n);
/** The spool-relative path of @name in directory @dirfd. */
int af_relpath_join(struct af_fs *fs, int dirfd, const char *name, char *out, size_t n);

/* ---- trigger.c: when a file is handed to the upload queue ------------------------------- */

/** @n's file changed since it was last handed over. */
void af_trigger_mark_dirty(struct af_node *n);
/** Hands the file behind @fd, of node @n, to the queue under each of its names. */
int af_trigger_submit_names(struct af_fs *fs, struct af_node *n, int fd, const char *why,
                            bool wait, char *ret_first);
/** fsync() and --sync-close: 0 once the file's content is in S3, or -EIO. */
int af_trigger_sync(struct af_fs *fs, struct af_node *n, int fd, const char *why);
/** A truncate without an open handle: no release follows, so the file goes now. */
void af_trigger_truncated(struct af_fs *fs, struct af_node *n);
/** A file arrived at @name in @dirfd by rename or link (@why). */
/** After mknod: a regular file is uploaded (empty); anything else under an artifact path is
 * said once not to be. */
void af_trigger_made(struct af_fs *fs, int dirfd, const char *name, mode_t mode);
void af_trigger_arrived(struct af_fs *fs, int dirfd, const char *name, const char *why,
                        const char *from, const char *to);

/* ---- snapshot.c: snapshots of files open for writing (--upload-open-every) -------------- */

/** Starts the thread that every cfg.upload_open_every_ms snapshots each file open for writing
 * that changed since (0 without the option, or -errno of pthread_create). */
int af_snapshot_start(struct af_fs *fs);
/** Stops it (the session is over: the final uploads follow); idempotent. */
void af_snapshot_stop(struct af_fs *fs);

/* ---- inorder.c: in-order writes, and the stream they drive ------------------------------ */

void af_inorder_init(struct af_node *nd);
/** The node forgot (@abandon) or the session ended: its stream is abandoned or released. */
void af_inorder_done(struct af_node *nd, bool abandon);
/** Ends @nd's stream because of @why; in-order writing now stands at @seq (0 after a truncate
 * to 0, else AF_SEQ_BROKEN). */
void af_inorder_break(struct af_fs *fs, struct af_node *nd, const char *why, uint64_t seq);
/** af_inorder_break(), and stream_lock held until af_inorder_end_change(), across the change
 * (truncate, fallocate) it is for. */
void af_inorder_begin_change(struct af_fs *fs, struct af_node *nd, const char *why, uint64_t seq);
void af_inorder_end_change(struct af_fs *fs, struct af_node *nd);
/** af_inorder_break(@why, AF_SEQ_BROKEN) if @nd may have a stream (it grew past the
 * threshold). */
void af_inorder_break_big(struct af_fs *fs, struct af_node *nd, const char *why);
/** The node of the regular file @st (a name's lstat), if it may have a stream. */
struct af_node *af_inorder_node(struct af_fs *fs, const struct stat *st);
/** Writes the first @len bytes of @in at @off of @fi's spool file, and moves @nd's stream. */
ssize_t af_inorder_write(struct af_fs *fs, struct af_node *nd, struct fuse_bufvec *in, size_t len,
                         off_t off, struct fuse_file_info *fi);

/* ---- room.c: room in the spool (--spool-limit, free space) and eviction ------------------ */

/** Takes room for @growth more bytes, evicting files in S3 if it must: all, or with @partial at
 * least one byte. The bytes taken are in @ret. -ENOSPC when there is no room. */
int af_room_take(struct af_fs *fs, uint64_t growth, bool partial, uint64_t *ret);
/** Whether the spool's filesystem refuses a file of @size bytes (EFBIG where it would). */
bool af_room_too_big(struct af_fs *fs, uint64_t size);
/** Settles an af_room_take() of @took bytes after a size changed from @before to @after. */
void af_room_give(struct af_fs *fs, uint64_t took, uint64_t before, uint64_t after);
/** Gives back @bytes a file no longer holds. */
void af_room_release(struct af_fs *fs, uint64_t bytes);
/** The size of the file behind @fd (any kind of descriptor), 0 if it cannot be told. */
uint64_t af_room_size(int fd);
/** The room a name (@st, its lstat) gives back when it goes away. */
uint64_t af_room_freed_by_unlink(const struct stat *st);

/* The room a write (or copy_file_range) into a file took, to settle after it. */
struct af_room_write {
        uint64_t before; /* the file's size before the write */
        uint64_t took;
};
/** Takes room for a write of *@len bytes at @off to @fd, shortening *@len to what fits. */
int af_room_take_write(struct af_fs *fs, int fd, off_t off, size_t *len,
                       struct af_room_write *w);
/** Settles af_room_take_write() once @n bytes (or an error, n < 0) were written at @off. */
void af_room_give_write(struct af_fs *fs, const struct af_room_write *w, off_t off, ssize_t n);

/* ---- notify.c: telling the kernel about names the mount removed itself ------------------ */

void af_notify_init(struct af_fs *fs);
void af_notify_done(struct af_fs *fs);
/** Makes the kernel drop its cached entry for spool-relative @rel, which is gone. */
void af_notify_forget_name(struct af_fs *fs, const char *rel);

/* ---- names.c: making, linking, renaming and removing names ----------------------------- */

/** The mode for a new entry in @dirfd the caller asked for with @mode. */
mode_t af_names_mode(fuse_req_t req, int dirfd, mode_t mode);
/** Gives new entry @name in @dirfd to the caller, as on a local filesystem. */
int af_names_own(fuse_req_t req, int dirfd, const char *name);
/** What af_names_link() learns, for af_trigger_arrived(): the file's name before the link
 * and the new name (both spool-relative, when @named), and whether its copy in S3 must be
 * queued before the answer (@first: the file went up under its name). */
struct af_names_link {
        bool named, first;
        char from[PATH_MAX];
        char to[PATH_MAX];
};
/** Links the file behind O_PATH @fd as @newname in @nfd; fills @ln. */
int af_names_link(struct af_fs *fs, int fd, int nfd, const char *newname,
                  struct af_names_link *ln);
int af_names_unlink(struct af_fs *fs, int dirfd, const char *name);
int af_names_rmdir(struct af_fs *fs, int dirfd, const char *name);

/* A rename done in the spool, for what follows it: the uploads and the objects in S3. */
struct af_names_move {
        int fd, nfd;
        const char *name, *newname;
        bool exchange; /* RENAME_EXCHANGE */
        bool named;    /* from and to hold both names: the mount copies or deletes in S3 */
        bool first;    /* the S3 side is queued before the answer (af_remote_involved()) */
        char from[PATH_MAX], to[PATH_MAX];
};
int af_names_rename(struct af_fs *fs, int fd, const char *name, int nfd, const char *newname,
                    unsigned int flags, struct af_names_move *mv);
/** After af_names_rename(): uploads, and the old objects in S3. */
void af_names_moved(struct af_fs *fs, const struct af_names_move *mv);

/* ---- file.c: open files and their data ------------------------------------------------- */

int af_file_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                   struct fuse_file_info *fi, struct fuse_entry_param *e);
int af_file_open(struct af_fs *fs, fuse_ino_t ino, struct fuse_file_info *fi);
int af_file_flush(struct af_fs *fs, struct af_node *n, int fd);
int af_file_fsync(struct af_fs *fs, struct af_node *n, int fd, int datasync);
ssize_t af_file_write(struct af_fs *fs, struct af_node *n, struct fuse_bufvec *in, off_t off,
                      struct fuse_file_info *fi);
int af_file_fallocate(struct af_fs *fs, struct af_node *n, int fd, int mode, off_t off, off_t len);
ssize_t af_file_copy(struct af_fs *fs, int fd_in, off_t off_in, struct af_node *n_out, int fd_out,
                     off_t off_out, size_t len, int flags);

/* ---- attr.c: setattr ------------------------------------------------------------------- */

int af_attr_set(struct af_fs *fs, struct af_node *n, const struct stat *attr, int valid,
                struct fuse_file_info *fi);

/* ---- dir.c: directory handles and listings --------------------------------------------- */

int af_dir_open(struct af_fs *fs, int fd, struct af_dir **ret);
void af_dir_close(struct af_fs *fs, struct af_dir *d);
void af_dir_close_all(struct af_fs *fs);
int af_dir_fsync(struct af_dir *d, int datasync);

/* One reply of a listing, and the lookups it counts. */
struct af_dir_page {
        char *buf;
        size_t len;
        fuse_ino_t *counted; /* readdirplus: the entries looked up */
        size_t ncounted;
};
int af_dir_read(fuse_req_t req, struct af_dir *d, fuse_ino_t ino, size_t size, off_t off,
                bool plus, struct af_dir_page *page);
/** The kernel never got @page: its entries are no lookups. */
void af_dir_unread(struct af_fs *fs, const struct af_dir_page *page);
void af_dir_page_done(struct af_dir_page *page);
