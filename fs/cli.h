/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file cli.h
 * What the artifuse commands share: the exit statuses and the one-line error, the setup
 * that turns options into a router and S3 settings (setup.c), the spool directory
 * (spooldir.c), the control socket (control.c), the mount's stages (cmd_mount.c, which
 * `run` drives too) and the run's program (child.c).
 *
 * Errors: every function that can stop a command prints one line ("artifuse: error: ...",
 * af_cli_die) and returns AF_EXIT_CONFIG; 0 is success. The program layer reports, so
 * nothing above it prints the same failure again.
 */
#pragma once

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/stat.h>

#include "base/metrics.h"
#include "fs.h"
#include "metrics_http.h"
#include "options.h"

#define AF_EXIT_CONFIG 1  /* bad usage or configuration; one line said what */
#define AF_EXIT_UPLOADS 3 /* some files are not in S3 (they stay in the spool) */

/* ---- main.c ---- */

/** Prints "artifuse: error: <what>" on stderr; returns AF_EXIT_CONFIG. */
int af_cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** af_queue_foreach_problem() callback: "artifuse: not in S3: ..." on stderr. */
void af_cli_not_in_s3(void *ctx, const char *relpath, const char *bucket, const char *key,
                      const char *error);

/* ---- the commands ---- */

int af_cmd_mount(struct af_opts *o, int argc, char **argv);
/** @argv ends at "--"; @run_argv is the program and its arguments. */
int af_cmd_run(struct af_opts *o, int argc, char **argv, char **run_argv);
int af_cmd_keys(struct af_opts *o, int argc, char **argv);
int af_cmd_flush(struct af_opts *o, int argc, char **argv);
int af_cmd_drain(struct af_opts *o, int argc, char **argv);
int af_cmd_status(struct af_opts *o, int argc, char **argv);

/* ---- setup.c: options -> router, S3 and queue settings ---- */

/** Everything a command needs to route paths: spec, variables, repository, router. */
struct af_setup {
        struct af_spec spec;
        bool have_spec;
        struct af_router router;
        struct af_s3_location repo; /* where objects go: bucket, endpoint, region, insecure */
        char *key_format;           /* owned */
        const char *key_format_from; /* where it came from, for messages (NULL: the flag) */
        char endpoint[512];         /* the repository's endpoint as a URL, or "" */
        bool time_from_mount;       /* creationTimestamp fell back to now */
};

/**
 * Reads the spec and the repository, resolves the variables and builds the router, whose
 * paths are relative to --as, else @default_as. @strict: paths outside it are errors.
 * On failure (one line printed, AF_EXIT_CONFIG returned) leaves nothing to free.
 */
int af_setup_init(struct af_opts *o, const char *default_as, bool strict, struct af_setup *s);
void af_setup_done(struct af_setup *s);
/** Whether the artifacts come from Argo's resolved template: the program runs in an Argo pod,
 * whose emissary and wait container archive and upload the same outputs after it. */
bool af_setup_in_argo_pod(const struct af_setup *s);
/** Whether a key template names workflow.creationTimestamp. */
bool af_setup_uses_time(const struct af_setup *s);
/**
 * The S3 client settings: flags win, then @repo_region/@repo_endpoint (the repository's or
 * the journal's, may be NULL or ""), then the AWS environment. @endpoint_buf backs a default.
 */
void af_setup_s3_config(struct af_opts *o, const char *repo_region, const char *repo_endpoint,
                        char *endpoint_buf, size_t n, struct af_s3_config *s3c);
void af_setup_queue_config(const struct af_opts *o, int files_fd, int journal_fd,
                           const struct af_s3_config *s3c, struct af_creds_provider *creds,
                           struct af_queue_config *qc);
/** Logs which credentials will sign: the provider and the key id's kind, never a secret. */
void af_setup_log_credentials(struct af_creds_provider *p);

/* ---- spooldir.c: files/ (what the mount serves) and journal/ (pending uploads) ---- */

struct af_spooldir {
        char root[PATH_MAX];
        char files[PATH_MAX + 8];
        int root_fd; /* holds the lock */
        int files_fd;
        int journal_fd;
};

#define AF_SPOOLDIR_INIT { .root_fd = -1, .files_fd = -1, .journal_fd = -1 }

/** mkdir -p: makes @path and its missing parents (the last one with @mode). -errno. */
int af_mkdir_p(const char *path, mode_t mode);

/**
 * Opens (with @create, makes) the spool at @dir. With @lock, takes it for this process:
 * a mount and a drain of one spool at the same time would upload the same files twice.
 */
int af_spooldir_open(const char *dir, bool create, bool lock, struct af_spooldir *sp);
void af_spooldir_close(struct af_spooldir *sp);

/* ---- control.c: `artifuse flush` talks to the mount over <spool>/control.sock ---- */

struct af_control {
        int fd; /* listening socket, -1 when none */
        pthread_t thread;
        bool started;
        const struct af_router *router;
        struct af_queue *queue;
        int spool_fd;
};

/** Listens (a failure is logged: the mount goes on without). */
void af_control_start(struct af_control *c, const char *spool_root);
void af_control_stop(struct af_control *c, const char *spool_root);
/** Asks the mount on @mountpoint to flush; prints the result; returns the exit status. */
int af_control_flush(const char *mountpoint);

/* ---- outputs.c: --uris-dir and --uris-json ---- */

struct af_uris;

/**
 * Opens what --uris-dir and --uris-json name (directories made if missing), for
 * spool/uris.h's writer; *@ret stays NULL without either option. Refuses a path inside the
 * mount point @mnt. 0, or AF_EXIT_CONFIG with one line printed.
 */
int af_outputs_open(const struct af_opts *o, const char *mnt, const struct af_router *router,
                    struct af_uris **ret);

/* ---- cmd_mount.c: the stages of a mount, in order (run drives them too) ---- */

/** Who hears of each object that reached S3. */
struct af_mount_sinks {
        struct af_remote *remote;
        struct af_space *space; /* NULL with --keep */
        struct af_uris *uris;   /* NULL without --uris-dir and --uris-json */
};

/** One mount, from af_mount_init() to af_mount_done(), which frees whatever the stages made
 * (at any stage). Only the command's thread touches it; FUSE, the queue and the control
 * socket are handed what they use. */
struct af_mount {
        struct af_opts *o;
        bool run; /* artifuse run: signals go to the program, no daemon */
        char mnt[PATH_MAX];
        char spool[PATH_MAX + 8]; /* the spool's files/: the mount's root */
        char spool_default[PATH_MAX];
        char endpoint_buf[512];
        struct stat st; /* the mount point's, before it is mounted */
        struct af_setup s;
        bool have_setup;
        struct af_spooldir sp;
        struct af_creds_provider creds;
        bool have_creds;
        struct af_s3_config s3c;
        struct af_queue_config qc;
        struct af_queue *queue;
        struct af_space *space;
        struct af_remote *remote;
        struct af_uris *uris; /* --uris-dir, --uris-json */
        struct af_mount_sinks sinks;
        struct af_fs *fs;
        struct fuse_session *se;
        struct fuse_args fargs;
        struct af_control ctl;
        int manifest_fd;
        struct af_metrics metrics; /* counted by the queue, served by metrics_srv */
        struct af_metrics_server *metrics_srv;
        bool leave; /* run: the files stay at their paths (--leave-files, an Argo pod) */
};

void af_mount_init(struct af_mount *m, struct af_opts *o, bool run);
/**
 * Up to a served mount: checks the mount point, routes, opens the spool, checks S3 and
 * sets up logging (every configuration error is found here); a mount without -f then
 * forks, the parent exiting 0 once the mount is up (1 if the daemon fails first); then the
 * queue (resuming the journal) and the FUSE session, mounted.
 */
int af_mount_start(struct af_mount *m, int argc, char **argv);
/** Starts the control socket (artifuse flush). */
void af_mount_listen(struct af_mount *m);
/** Serves until unmounted (run: until the program's end unmounts). */
void af_mount_serve(struct af_mount *m);
/**
 * After the loop: unmounts, uploads what is left (bounded by --drain-timeout), and fills
 * @ret; returns the exit status the uploads call for (0 or AF_EXIT_UPLOADS).
 */
int af_mount_finish(struct af_mount *m, struct af_queue_stats *ret);
void af_mount_done(struct af_mount *m);
/** Queues each directory artifact with an archive strategy as one archive: it is complete. */
void af_mount_archive_dirs(const struct af_router *r, int spool_fd, struct af_queue *q);

/* ---- shutdown.c: the drain deadline starts at the signal that stops the mount ---- */

/**
 * After fuse_set_signal_handlers(): SIGTERM, SIGINT and SIGHUP still end the session
 * (libfuse's handler runs first) and also start the queue's deadline, @timeout_ms from the
 * signal (af_queue_set_deadline), so a request held up by S3 (an fsync waiting for its
 * upload) cannot keep the FUSE loop, and the daemon, alive past --drain-timeout. Nothing
 * with @timeout_ms < 0. One per process; a thread that cannot start is logged and the
 * deadline then counts from the loop's end, as before.
 */
void af_shutdown_watch(struct af_queue *q, long timeout_ms);
/** Before fuse_remove_signal_handlers(): libfuse's handlers back, the thread joined. */
void af_shutdown_unwatch(void);

/* ---- child.c: run's program ---- */

struct af_child {
        pid_t pid;
        int status; /* waitpid() status, once it has ended */
        const char *mnt;
        struct fuse_session *se;
        struct af_queue *queue;
        long drain_timeout_ms; /* the queue's deadline starts when the program ends */
        pthread_t waiter;
};

/** SIGTERM/SIGINT/SIGHUP go to the program once it runs. */
void af_child_forward_signals(void);
/** Starts @argv with the caller's stdio and environment: 0, or exec's negative errno. */
int af_child_start(struct af_child *c, char **argv);
/**
 * Starts the thread that waits for the program, then starts @c->queue's drain deadline (an
 * fsync of a process the program left must not hold the mount past it), ends the session
 * @c->se and unmounts @c->mnt lazily. On failure kills the program and returns -EAGAIN.
 */
int af_child_watch(struct af_child *c);
/** Joins the waiter; @c->status is then the program's. */
void af_child_join(struct af_child *c);
/** $ARGO_DEADLINE (RFC 3339; year 1 means none) as milliseconds from now, or -1. */
long af_child_deadline_ms(void);
