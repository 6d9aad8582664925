/* SPDX-License-Identifier: Apache-2.0 */
/*
 * artifuse run MOUNTPOINT -- CMD ARGS...: the single-container pod with no sidecar. The
 * mount's stages (cmd_mount.c) without the daemon: mount, run the program (child.c) with the
 * signals artifuse gets, and when it ends unmount, wait for every upload and exit with the
 * program's status, unless it succeeded and some files are not in S3 (then 3).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "base/log.h"
#include "cli.h"
#include "leave.h"

/* The program, and the thread that unmounts when it ends. */
static int start_program(struct af_mount *m, struct af_child *c, char **run_argv,
                         time_t *ret_start)
{
        long dl;
        int r;

        /* The deadline Argo gives the step bounds the drain too. */
        dl = af_child_deadline_ms();
        if (dl >= 0 && (m->o->drain_timeout_ms < 0 || dl < m->o->drain_timeout_ms))
                m->o->drain_timeout_ms = dl;
        c->mnt = m->mnt;
        c->se = m->se;
        c->queue = m->queue;
        c->drain_timeout_ms = m->o->drain_timeout_ms;
        r = af_child_start(c, run_argv);
        if (r < 0) {
                fuse_session_unmount(m->se);
                return af_cli_die("cannot run %s: %s", run_argv[0], strerror(-r));
        }
        *ret_start = time(NULL);
        if (af_child_watch(c) < 0) {
                fuse_session_unmount(m->se);
                return af_cli_die("cannot start the waiter thread");
        }
        return 0;
}

/* Each file not in S3, one summary line; returns the exit status: the program's wins, but a
 * success with files missing from S3 is not one. */
static int report(const struct af_mount *m, const char *program, int wstatus,
                  const struct af_queue_stats *st, time_t t_start, int uploads_status)
{
        int cmd_status = WIFEXITED(wstatus)     ? WEXITSTATUS(wstatus)
                         : WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus)
                                                : 1;

        af_queue_foreach_problem(m->queue, af_cli_not_in_s3, NULL);
        fprintf(stderr,
                "artifuse: %s exited with %d; %llu files (%llu bytes) uploaded in %llds, "
                "%llu failed, %llu left in the spool\n",
                program, cmd_status, (unsigned long long)st->uploaded_files,
                (unsigned long long)st->uploaded_bytes, (long long)(time(NULL) - t_start),
                (unsigned long long)st->failed_files, (unsigned long long)st->pending_files);
        return cmd_status != 0 || uploads_status == 0 ? cmd_status : uploads_status;
}

/* After the unmount: the files back at their paths, for Argo's emissary (leave.h). A failure
 * is logged, not fatal: the uploads are what run promised. */
static void leave_files(const struct af_mount *m)
{
        enum af_leave_how how;
        unsigned long files;
        struct af_buf why;

        af_buf_init(&why, 1024);
        if (af_leave_files(m->spool, m->mnt, &how, &files, &why) == 0)
                af_log_info("op=leave how=%s files=%lu mountpoint=%s msg=\"the files stay at "
                            "their paths\"",
                            how == AF_LEAVE_BIND ? "bind" : "copy", files, af_q(m->mnt));
        else
                af_log_error("op=leave mountpoint=%s err=%s msg=\"the files are only in the "
                             "spool (%s)\"",
                             af_q(m->mnt), af_q(af_buf_str(&why)), af_q(m->spool));
        af_buf_done(&why);
}

int af_cmd_run(struct af_opts *o, int argc, char **argv, char **run_argv)
{
        struct af_child child = { 0 };
        struct af_queue_stats stats;
        struct af_mount m;
        time_t t_start = time(NULL);
        int r, status = 0;

        af_mount_init(&m, o, true);
        r = af_mount_start(&m, argc, argv);
        if (r)
                goto out;
        af_mount_listen(&m);
        r = start_program(&m, &child, run_argv, &t_start);
        if (r)
                goto out;
        af_mount_serve(&m);
        af_child_join(&child);
        status = af_mount_finish(&m, &stats);
        if (m.leave)
                leave_files(&m);
        status = report(&m, run_argv[0], child.status, &stats, t_start, status);
out:
        af_mount_done(&m);
        return r ? r : status;
}
