/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The program `artifuse run` runs: started with the caller's stdio and environment, sent
 * the signals artifuse gets, and waited for by a thread whose unmount is what ends the mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli.h"

/* Read in a signal handler on another thread than the one that resets it: atomic. */
static _Atomic pid_t run_child_pid;

/* SIGTERM/SIGINT/SIGHUP go to the program; its exit is what ends the mount. */
static void forward_signal(int sig)
{
        pid_t pid = atomic_load(&run_child_pid);

        if (pid > 0)
                kill(pid, sig);
}

/* Waits for the program, then unmounts (lazily: a background process it left may still
 * hold files) so the FUSE loop ends and the uploads drain. */
static void *run_waiter(void *arg)
{
        struct af_child *c = arg;
        siginfo_t si;

        /* Wait without reaping, stop forwarding, then reap: the pid cannot be reused by
         * another process while a signal could still be sent to it. */
        while (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
                ;
        atomic_store(&run_child_pid, 0);
        while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
                ;
        af_queue_set_deadline(c->queue, c->drain_timeout_ms);
        fuse_session_exit(c->se);
        if (umount2(c->mnt, MNT_DETACH) < 0) {
                pid_t p = fork();

                if (p == 0) {
                        execlp("fusermount3", "fusermount3", "-u", "-z", c->mnt, (char *)NULL);
                        _exit(127);
                }
                if (p > 0) {
                        int st;

                        while (waitpid(p, &st, 0) < 0 && errno == EINTR)
                                ;
                }
        }
        return NULL;
}

static int start(char **argv, pid_t *ret)
{
        int p[2];
        pid_t pid;
        int e = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                e = errno;
                close(p[0]);
                close(p[1]);
                return -e;
        }
        if (pid == 0) {
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                execvp(argv[0], argv);
                e = errno;
                (void)!write(p[1], &e, sizeof(e));
                _exit(127);
        }
        close(p[1]);
        /* The pipe closes on exec; anything read is exec's errno. */
        if (read(p[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
                close(p[0]);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return -e;
        }
        close(p[0]);
        *ret = pid;
        return 0;
}

long af_child_deadline_ms(void)
{
        const char *d = getenv("ARGO_DEADLINE");
        time_t t;
        int off;

        if (!d || !*d || strncmp(d, "0001-", 5) == 0 || af_rfc3339_parse(d, 0, &t, &off) < 0)
                return -1;
        return t > time(NULL) ? (long)(t - time(NULL)) * 1000 : 0;
}

void af_child_forward_signals(void)
{
        struct sigaction sa = { .sa_handler = forward_signal };

        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
}

int af_child_start(struct af_child *c, char **argv)
{
        int r = start(argv, &c->pid);

        if (r < 0)
                return r;
        atomic_store(&run_child_pid, c->pid);
        return 0;
}

int af_child_watch(struct af_child *c)
{
        if (pthread_create(&c->waiter, NULL, run_waiter, c) != 0) {
                kill(c->pid, SIGKILL);
                return -EAGAIN;
        }
        return 0;
}

void af_child_join(struct af_child *c)
{
        pthread_join(c->waiter, NULL);
}
