/* SPDX-License-Identifier: Apache-2.0 */
/*
 * artifuse mount: the stages of a mount, in the order they run. Everything that can be
 * wrong (mount point, spec, repository, spool, credentials, endpoint, log file) is found
 * before the daemon forks, so a bad configuration is one line on the terminal and exit
 * status 1, never a daemon that dies later. Then: the queue resumes what the journal holds,
 * the session mounts, the parent returns, the FUSE loop serves until unmount, and the
 * uploads drain before the exit status reports them. `run` (cmd_run.c) drives the same
 * stages with a program instead of a daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "cli.h"
#include "spool/uris.h"

static void fuse_log_to_af(enum fuse_log_level level, const char *fmt, va_list ap)
{
        char msg[1024];
        size_t n;

        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n && msg[n - 1] == '\n')
                msg[--n] = '\0';
        af_log(level <= FUSE_LOG_ERR ? AF_LOG_ERROR
               : level <= FUSE_LOG_WARNING ? AF_LOG_WARN
               : level <= FUSE_LOG_INFO ? AF_LOG_INFO
                                         : AF_LOG_DEBUG,
               "op=fuse msg=%s", af_q(msg));
}

/* One HEAD Bucket before mounting: a wrong endpoint or bucket is a start-up error. */
static int check_endpoint(const struct af_s3_config *s3c, struct af_creds_provider *creds,
                          const char *bucket)
{
        struct af_s3_client *c = NULL;
        struct af_s3_error e;
        struct af_buf err;
        int r;

        af_buf_init(&err, 1024);
        r = af_s3_client_new(s3c, creds, &c, &err);
        if (r < 0) {
                r = af_cli_die("%s", af_buf_str(&err));
                goto out;
        }
        /* A blip while the pod starts is not a misconfiguration: three tries, a second apart. */
        for (int i = 0; i < 3; i++) {
                r = af_s3_head_bucket(c, bucket, &e);
                if (r == 0 || e.http_status != 0 || i == 2)
                        break;
                sleep(1);
        }
        af_s3_error_format(&e, &err);
        if (r == 0) {
                r = 0;
        } else if (e.http_status == 0) {
                r = af_cli_die("cannot reach S3 endpoint %s: %s (check --endpoint; --no-check "
                               "skips this test)",
                               s3c->endpoint, af_buf_str(&err));
        } else if (r == -ENOENT) {
                r = af_cli_die("bucket '%s' does not exist at %s: %s", bucket, s3c->endpoint,
                               af_buf_str(&err));
        } else if (r == -EACCES) {
                /* Write-only credentials cannot HEAD a bucket; uploads may still work. */
                af_log_warn("op=check bucket=%s endpoint=%s err=%s msg=\"HEAD bucket denied; "
                            "continuing, uploads will say if the credentials are wrong\"",
                            af_q(bucket), af_q(s3c->endpoint), af_q(af_buf_str(&err)));
                r = 0;
        } else {
                af_log_warn("op=check bucket=%s endpoint=%s err=%s msg=\"continuing\"",
                            af_q(bucket), af_q(s3c->endpoint), af_q(af_buf_str(&err)));
                r = 0;
        }
out:
        af_s3_client_free(c);
        af_buf_done(&err);
        return r;
}

/* Whether an artifact before @i archives the same directory as artifact @i. */
static bool archived_before(const struct af_router *r, size_t i)
{
        for (size_t k = 0; k < i; k++)
                if (r->arts[k].rel && r->arts[k].archive != AF_ARCHIVE_NONE &&
                    strcmp(r->arts[k].rel, r->arts[i].rel) == 0)
                        return true;
        return false;
}

void af_mount_archive_dirs(const struct af_router *r, int spool_fd, struct af_queue *q)
{
        struct af_route route = { 0 };

        af_buf_init(&route.key, 0);
        for (size_t i = 0; i < r->narts; i++) {
                const struct af_route_artifact *a = &r->arts[i];
                struct stat st;

                if (!a->rel || !*a->rel || a->archive == AF_ARCHIVE_NONE ||
                    fstatat(spool_fd, a->rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (archived_before(r, i))
                        continue; /* one job per directory: it archives for each artifact */
                if (af_router_route_artifact(r, a, a->rel, &route) > 0 &&
                    af_queue_submit(q, a->rel, route.bucket, af_buf_str(&route.key)) == 0)
                        af_log_info("op=unmount artifact=%s key=%s msg=\"directory complete; "
                                    "archiving\"",
                                    af_q(a->name), af_q(af_buf_str(&route.key)));
        }
        af_buf_done(&route.key);
}

/* Argo fails a step whose non-optional output was never written; we can only say so. */
static void warn_missing_outputs(const struct af_router *r, int spool_fd)
{
        for (size_t i = 0; i < r->narts; i++) {
                const struct af_route_artifact *a = &r->arts[i];
                struct stat st;

                if (!a->rel || a->optional || !*a->rel)
                        continue;
                if (fstatat(spool_fd, a->rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        af_log_warn("op=unmount artifact=%s path=%s msg=\"declared output was "
                                    "never written (not optional)\"",
                                    af_q(a->name), af_q(a->path));
        }
}

/* Forks; the parent returns only to exit with the child's start-up verdict. */
static int daemonize(int *ret_notify_fd)
{
        int p[2];
        pid_t pid;
        char ok = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return af_cli_die("pipe: %s", strerror(errno));
        pid = fork();
        if (pid < 0)
                return af_cli_die("fork: %s", strerror(errno));
        if (pid > 0) {
                close(p[1]);
                if (read(p[0], &ok, 1) != 1 || ok != 1) {
                        int st;

                        waitpid(pid, &st, 0);
                        exit(AF_EXIT_CONFIG);
                }
                exit(0);
        }
        close(p[0]);
        setsid();
        *ret_notify_fd = p[1];
        return 0;
}

/* An upload of a name now gone may have reached S3 unanswered: the registry decides. */
static void on_gone(void *ctx, const char *relpath, const char *bucket, const char *key,
                    const char *etag)
{
        af_remote_on_gone(((struct af_mount_sinks *)ctx)->remote, relpath, bucket, key, etag);
}

/* Who hears of each object that reached S3: the registry of what the mount put there (for
 * copies on rename and --delete-on-unlink) and the spool's room (eviction candidates; not
 * with --keep). */
static void on_uploaded(void *ctx, const struct af_queue_uploaded *u)
{
        struct af_mount_sinks *sk = ctx;

        af_remote_on_uploaded(sk->remote, u);
        af_uris_on_uploaded(sk->uris, u);
        if (sk->space && !u->superseded && !u->is_dir && !u->artifact)
                af_space_uploaded(sk->space, u->relpath, u->key, u->dev, u->ino, u->size,
                                  u->mtime_ns);
}

/* ---- prepare: everything that can be wrong, found before the daemon forks ------------- */

void af_mount_init(struct af_mount *m, struct af_opts *o, bool run)
{
        memset(m, 0, sizeof(*m));
        m->o = o;
        m->run = run;
        m->sp = (struct af_spooldir)AF_SPOOLDIR_INIT;
        m->fargs = (struct fuse_args)FUSE_ARGS_INIT(0, NULL);
        m->ctl.fd = -1;
        m->manifest_fd = -1;
}

/* The mount point: an existing directory, by its real path. */
static int check_mountpoint(struct af_mount *m, int argc, char **argv)
{
        if (optind != argc - 1)
                return af_cli_die("mount: give exactly one MOUNTPOINT (see artifuse --help)");
        if (!realpath(argv[optind], m->mnt) || stat(m->mnt, &m->st) < 0)
                return af_cli_die("mount point %s: %s", argv[optind], strerror(errno));
        if (!S_ISDIR(m->st.st_mode))
                return af_cli_die("mount point %s is not a directory", argv[optind]);
        return 0;
}

/* The spool: a stable default per mount point, so a restart finds what was left. */
static int open_spool(struct af_mount *m)
{
        struct af_opts *o = m->o;
        size_t ml = strlen(m->mnt);
        int r;

        if (!o->spool) {
                size_t n = (size_t)snprintf(m->spool_default, sizeof(m->spool_default),
                                            "/var/tmp/artifuse/");
                for (const char *p = m->mnt; *p && n < sizeof(m->spool_default) - 1; p++)
                        m->spool_default[n++] = *p == '/' ? '_' : *p;
                m->spool_default[n] = '\0';
                o->spool = m->spool_default;
        }
        r = af_spooldir_open(o->spool, true, true, &m->sp);
        if (r)
                return r;
        if (strcmp(m->mnt, "/") == 0 ||
            (strncmp(m->sp.root, m->mnt, ml) == 0 && (m->sp.root[ml] == '/' || !m->sp.root[ml])))
                return af_cli_die("spool %s must not be inside the mount point %s", m->sp.root,
                                  m->mnt);
        snprintf(m->spool, sizeof(m->spool), "%s", m->sp.files);
        /* The mount's root is the spool's files/: give it the mount point's mode and owner,
         * so /tmp stays 1777 for every user of the mount, as before it was mounted. */
        if (chmod(m->spool, m->st.st_mode & 07777) < 0 ||
            (geteuid() == 0 && chown(m->spool, m->st.st_uid, m->st.st_gid) < 0))
                af_log_warn("op=mount spool=%s err=%s msg=\"cannot give the spool the mount "
                            "point's mode and owner\"",
                            af_q(m->spool), af_q(strerror(errno)));
        return 0;
}

/* Credentials and the S3 settings, and (unless --no-check) whether the bucket answers. */
static int connect_s3(struct af_mount *m)
{
        struct af_buf err;
        int r;

        af_buf_init(&err, 4096);
        r = af_creds_provider_init(&m->creds, NULL, &err);
        if (r < 0) {
                r = af_cli_die("%s", af_buf_str(&err));
                goto out;
        }
        m->have_creds = true;
        /* Flags win; then the repository (Argo's own config); then the AWS environment. */
        af_setup_s3_config(m->o, m->s.repo.region, m->s.endpoint, m->endpoint_buf,
                           sizeof(m->endpoint_buf), &m->s3c);
        if (af_s3_global_init() < 0) {
                r = af_cli_die("cannot initialise libcurl");
                goto out;
        }
        if (!m->o->no_check) {
                r = check_endpoint(&m->s3c, &m->creds, m->s.repo.bucket);
                if (r)
                        goto out;
        }
        af_setup_log_credentials(&m->creds);
        r = 0;
out:
        af_buf_done(&err);
        return r;
}

static int start_logging(struct af_mount *m)
{
        if (m->o->log_file) {
                int lfd = open(m->o->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

                if (lfd < 0)
                        return af_cli_die("--log-file %s: %s", m->o->log_file, strerror(errno));
                af_log_set_fd(lfd);
        }
        fuse_set_log_func(fuse_log_to_af);
        if (m->s.time_from_mount && af_setup_uses_time(&m->s))
                af_log_info("op=mount msg=\"workflow.creationTimestamp is the mount time: give "
                            "--creation-timestamp or $ARGO_WORKFLOW_CREATION_TIMESTAMP for "
                            "Argo's\"");
        return 0;
}

static int prepare(struct af_mount *m, int argc, char **argv)
{
        int r;

        r = check_mountpoint(m, argc, argv);
        if (r)
                return r;
        r = af_setup_init(m->o, m->mnt, true, &m->s);
        if (r)
                return r;
        m->have_setup = true;
        if (m->o->upload_open_every_ms && m->o->object.no_overwrite)
                return af_cli_die("--upload-open-every and --no-overwrite cannot go together: "
                                  "a snapshot would take the key the final upload needs");
        /* In an Argo pod the emissary stats and tars the outputs after the program: they must
         * still be there, so nothing may be evicted from the spool either. */
        if (m->run && !m->o->no_leave_files &&
            (m->o->leave_files || af_setup_in_argo_pod(&m->s))) {
                m->leave = true;
                m->o->keep = true;
        }
        r = open_spool(m);
        if (r == 0)
                r = af_outputs_open(m->o, m->mnt, &m->s.router, &m->uris);
        if (r == 0)
                r = connect_s3(m);
        if (r == 0)
                r = start_logging(m);
        return r;
}

/* ---- open: the uploads' side, resuming what the journal holds ------------------------- */

/* The manifest, the spool's room, the registry of uploads and the queue that feeds them. */
static int open_queue(struct af_mount *m)
{
        struct af_opts *o = m->o;
        int spool_fd = m->sp.files_fd;
        struct af_buf err;
        int r;

        if (o->manifest) {
                m->manifest_fd = open(o->manifest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                                      0644);
                if (m->manifest_fd < 0)
                        return af_cli_die("--manifest %s: %s", o->manifest, strerror(errno));
                m->qc.manifest_fd = m->manifest_fd;
        }
        r = af_space_new(&(struct af_space_config){ .dirfd = spool_fd, .limit = o->spool_limit },
                         &m->space);
        if (r < 0)
                return af_cli_die("spool %s: %s", m->spool, strerror(-r));
        if (o->spool_limit)
                af_log_info("op=mount spool_used=%llu spool_limit=%llu",
                            (unsigned long long)af_space_used(m->space),
                            (unsigned long long)o->spool_limit);
        af_setup_queue_config(o, spool_fd, m->sp.journal_fd, &m->s3c, &m->creds, &m->qc);
        m->qc.router = &m->s.router;
        af_metrics_init(&m->metrics);
        m->qc.metrics = &m->metrics;
        /* What the mount uploaded, for copies on rename and --delete-on-unlink. */
        r = af_remote_new(&(struct af_remote_config){ .spool_fd = spool_fd,
                                                      .router = &m->s.router,
                                                      .delete_on_unlink = !o->no_delete_on_unlink,
                                                      .persist = true,
                                                      .log_dirfd = m->sp.journal_fd },
                          &m->remote);
        if (r < 0)
                return af_cli_die("out of memory");
        m->sinks = (struct af_mount_sinks){ .remote = m->remote,
                                            .space = o->keep ? NULL : m->space,
                                            .uris = m->uris };
        m->qc.on_uploaded = on_uploaded;
        m->qc.on_gone = on_gone;
        m->qc.on_uploaded_ctx = &m->sinks;
        af_buf_init(&err, 4096);
        r = af_queue_new(&m->qc, &m->queue, &err);
        if (r < 0)
                r = af_cli_die("%s", af_buf_str(&err));
        af_buf_done(&err);
        return r;
}

static int open_fs(struct af_mount *m)
{
        struct af_opts *o = m->o;
        int r;

        r = open_queue(m);
        if (r)
                return r;
        af_remote_set_queue(m->remote, m->queue);
        r = af_queue_resume(m->queue);
        if (r > 0)
                af_log_info("op=resume files=%d msg=\"uploads an earlier run left are queued\"",
                            r);
        else if (r < 0)
                af_log_error("op=resume err=%s msg=\"cannot read the journal\"",
                             af_q(strerror(-r)));
        r = af_fs_new(&(struct af_fs_config){ .spool = m->spool,
                                              .router = &m->s.router,
                                              .queue = m->queue,
                                              .timeout = 1.0,
                                              .sync_close = o->sync_close,
                                              .space = m->space,
                                              .keep = o->keep,
                                              .no_xattr = o->no_xattr,
                                              .remote = m->remote,
                                              /* --preserve-metadata sends mode, owner
                                               * and mtime when the upload is created: at
                                               * the close, not while the file grows. */
                                              .streaming = !o->no_streaming &&
                                                           !o->preserve_metadata,
                                              .upload_open_every_ms = o->upload_open_every_ms },
                      &m->fs);
        if (r < 0)
                return af_cli_die("spool %s: %s", m->spool, strerror(-r));
        return 0;
}

/* ---- attach: the FUSE session, mounted -------------------------------------------------- */

/* The source names the spool, so artifuse flush MOUNTPOINT finds its control socket.
 * (Commas would split the option: then flush cannot find it, nothing else breaks.) */
static int mount_args(struct af_mount *m)
{
        struct af_buf mopts;
        int r = 0;

        af_buf_init(&mopts, 4096);
        if (!strchr(m->sp.root, ','))
                (void)af_buf_addf(&mopts, "fsname=artifuse:%s,", m->sp.root);
        else
                (void)af_buf_adds(&mopts, "fsname=artifuse,");
        (void)af_buf_adds(&mopts, "subtype=artifuse,default_permissions");
        if (m->o->allow_other)
                (void)af_buf_adds(&mopts, ",allow_other");
        if (m->o->fuse_opts)
                (void)af_buf_addf(&mopts, ",%s", m->o->fuse_opts);
        if (fuse_opt_add_arg(&m->fargs, "artifuse") || fuse_opt_add_arg(&m->fargs, "-o") ||
            fuse_opt_add_arg(&m->fargs, af_buf_str(&mopts)))
                r = af_cli_die("out of memory");
        af_buf_done(&mopts);
        return r;
}

static void log_mounted(const struct af_mount *m)
{
        const struct af_router *rt = &m->s.router;

        af_log_info("op=mount mountpoint=%s spool=%s bucket=%s prefix=%s endpoint=%s "
                    "artifacts=%zu unmatched=%s",
                    af_q(m->mnt), af_q(m->spool), af_q(m->s.repo.bucket), af_q(rt->prefix),
                    af_q(m->s3c.endpoint), rt->narts, rt->upload_unmatched ? "upload" : "ignore");
        for (size_t i = 0; i < rt->narts; i++) {
                const struct af_route_artifact *a = &rt->arts[i];

                if (!a->rel)
                        af_log_warn("op=mount artifact=%s path=%s msg=\"outside the mount (%s); "
                                    "artifuse will not see it\"",
                                    af_q(a->name), af_q(a->path), rt->mount_as);
        }
}

static int attach(struct af_mount *m)
{
        struct fuse_lowlevel_ops ops;
        int r;

        r = mount_args(m);
        if (r)
                return r;
        umask(0); /* the kernel has applied the caller's umask already */
        ops = af_fs_ops;
        if (m->o->no_xattr) {
                /* Unanswered (ENOSYS) once, the kernel asks no more: not even for the
                 * security.capability check that precedes every write. */
                ops.getxattr = NULL;
                ops.listxattr = NULL;
                ops.setxattr = NULL;
                ops.removexattr = NULL;
        }
        m->se = fuse_session_new(&m->fargs, &ops, sizeof(ops), m->fs);
        if (!m->se)
                return af_cli_die("cannot create the FUSE session (bad -o options?)");
        /* run: the signals are the program's, and its end is what unmounts. */
        if (m->run)
                af_child_forward_signals();
        else if (fuse_set_signal_handlers(m->se) != 0)
                return af_cli_die("cannot install signal handlers");
        af_fs_set_session(m->fs, m->se);
        if (fuse_session_mount(m->se, m->mnt) != 0) {
                r = af_cli_die("cannot mount on %s (is /dev/fuse there, and are we allowed to "
                               "mount?)",
                               m->mnt);
                if (!m->run)
                        fuse_remove_signal_handlers(m->se);
                return r;
        }
        log_mounted(m);
        return 0;
}

/* The daemon's parent returns once the mount is up: tell it, and let go of its terminal. */
static void notify_parent(const struct af_opts *o, int notify_fd)
{
        char ok = 1;
        int nullfd = open("/dev/null", O_RDWR);

        if (nullfd >= 0) {
                dup2(nullfd, 0);
                if (o->log_file) {
                        dup2(nullfd, 1);
                        dup2(nullfd, 2);
                }
                close(nullfd);
        }
        (void)!write(notify_fd, &ok, 1);
        close(notify_fd);
}

static void read_gauges(void *ctx, struct af_metrics_gauges *g)
{
        struct af_mount *m = ctx;
        struct af_queue_stats st;

        af_queue_get_stats(m->queue, &st);
        g->pending_files = st.pending_files;
        g->pending_bytes = st.pending_bytes;
        g->spool_bytes = af_space_used(m->space);
}

/* After daemonising (libmicrohttpd's thread would not survive the fork), before mounting. */
static int start_metrics(struct af_mount *m)
{
        struct af_buf err;
        int r;

        if (!m->o->metrics_listen)
                return 0;
        af_buf_init(&err, 1024);
        r = af_metrics_server_start(m->o->metrics_listen, &m->metrics, read_gauges, m,
                                    &m->metrics_srv, &err);
        if (r < 0)
                r = af_cli_die("%s", af_buf_str(&err));
        else
                af_log_info("op=metrics listen=%s port=%u path=/metrics",
                            af_q(m->o->metrics_listen), af_metrics_server_port(m->metrics_srv));
        af_buf_done(&err);
        return r;
}

int af_mount_start(struct af_mount *m, int argc, char **argv)
{
        int notify_fd = -1;
        int r;

        r = prepare(m, argc, argv);
        /* Only now, with the configuration known to be good, may the daemon leave. */
        if (r == 0 && !m->run && !m->o->foreground)
                r = daemonize(&notify_fd);
        if (r == 0)
                r = open_fs(m);
        /* Before anything is mounted: a port that cannot be had stops the mount cleanly. */
        if (r == 0)
                r = start_metrics(m);
        if (r == 0)
                r = attach(m);
        if (r == 0 && notify_fd >= 0)
                notify_parent(m->o, notify_fd);
        return r;
}

void af_mount_listen(struct af_mount *m)
{
        m->ctl.router = &m->s.router;
        m->ctl.queue = m->queue;
        m->ctl.spool_fd = m->sp.files_fd;
        af_control_start(&m->ctl, m->sp.root);
}

/* ---- serve, then drain ------------------------------------------------------------------ */

void af_mount_serve(struct af_mount *m)
{
        struct fuse_loop_config *loop = fuse_loop_cfg_create();

        if (!m->run) /* run's drain deadline starts when the program ends (child.c) */
                af_shutdown_watch(m->queue, m->o->drain_timeout_ms);
        fuse_loop_cfg_set_clone_fd(loop, 0);
        /* Each FUSE thread holds a receive buffer of max_write plus a page (1 MiB here), the
         * bulk of the daemon's memory. 10 threads serve several writers and a few fsyncs
         * waiting on S3 at once; past a burst, all but 4 idle ones end and free theirs. */
        fuse_loop_cfg_set_max_threads(loop, 10);
        fuse_loop_cfg_set_idle_threads(loop, 4);
        (void)fuse_session_loop_mt(m->se, loop); /* how it ended is the uploads' to say */
        fuse_loop_cfg_destroy(loop);
}

int af_mount_finish(struct af_mount *m, struct af_queue_stats *ret)
{
        unsigned n;

        /* The drain deadline, unless a signal started it already. */
        af_queue_set_deadline(m->queue, m->o->drain_timeout_ms);
        if (!m->run) {
                af_shutdown_unwatch();
                fuse_remove_signal_handlers(m->se);
        }
        /* After run's lazy unmount the connection is gone and libfuse only frees. */
        fuse_session_unmount(m->se);
        af_control_stop(&m->ctl, m->sp.root);
        af_log_info("op=unmount mountpoint=%s msg=\"draining uploads\"", af_q(m->mnt));
        if (af_fs_submit_dirty(m->fs))
                af_log_info("op=unmount msg=\"files still open at unmount were queued\"");
        af_mount_archive_dirs(&m->s.router, m->sp.files_fd, m->queue);
        /* --delete-on-unlink: whatever this mount uploaded that is gone now goes too. */
        n = af_remote_reconcile(m->remote);
        if (n)
                af_log_info("op=unmount deletes=%u msg=\"objects of names gone from the spool\"",
                            n);
        if (af_queue_drain(m->queue, -1) < 0) /* bounded by the deadline */
                af_log_error("op=unmount msg=\"drain timeout passed; what is left stays in the "
                             "spool\"");
        warn_missing_outputs(&m->s.router, m->sp.files_fd);
        af_queue_get_stats(m->queue, ret);
        af_log_info("op=exit uploaded_files=%llu uploaded_bytes=%llu failed_files=%llu "
                    "pending_files=%llu",
                    (unsigned long long)ret->uploaded_files,
                    (unsigned long long)ret->uploaded_bytes,
                    (unsigned long long)ret->failed_files,
                    (unsigned long long)ret->pending_files);
        return ret->failed_files || ret->pending_files ? AF_EXIT_UPLOADS : 0;
}

void af_mount_done(struct af_mount *m)
{
        af_metrics_server_stop(m->metrics_srv); /* it reads the queue and the space */
        af_control_stop(&m->ctl, m->sp.root);
        if (m->fs)
                af_fs_set_session(m->fs, NULL);
        if (m->se)
                fuse_session_destroy(m->se);
        af_queue_free(m->queue);
        af_remote_free(m->remote); /* after the queue: its workers call into it */
        af_uris_free(m->uris);
        af_fs_free(m->fs);
        af_space_free(m->space);
        af_spooldir_close(&m->sp);
        if (m->manifest_fd >= 0)
                close(m->manifest_fd);
        fuse_opt_free_args(&m->fargs);
        if (m->have_creds)
                af_creds_provider_done(&m->creds);
        if (m->have_setup)
                af_setup_done(&m->s);
}

/* ---- artifuse mount ---------------------------------------------------------------------- */

int af_cmd_mount(struct af_opts *o, int argc, char **argv)
{
        struct af_queue_stats stats;
        struct af_mount m;
        int r, status = 0;

        af_mount_init(&m, o, false);
        r = af_mount_start(&m, argc, argv);
        if (r == 0) {
                af_mount_listen(&m);
                af_mount_serve(&m);
                status = af_mount_finish(&m, &stats);
        }
        af_mount_done(&m);
        return r ? r : status;
}
