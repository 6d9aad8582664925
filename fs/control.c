/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control socket, both ends: a mount listens on <spool>/control.sock, and `artifuse
 * flush MOUNTPOINT` finds that spool in /proc/self/mounts (the mount's source is
 * "artifuse:SPOOL") and asks. One command per connection: "flush\n" -> archive complete
 * directories, wait for every pending upload, answer "ok <uploaded> <failed>\n".
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "cli.h"

static void *control_loop(void *arg)
{
        struct af_control *c = arg;

        for (;;) {
                struct af_queue_stats before, after;
                char cmd[64], reply[128];
                ssize_t n;
                int cfd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);

                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        return NULL; /* the socket was shut down: we are stopping */
                }
                n = read(cfd, cmd, sizeof(cmd) - 1);
                cmd[n > 0 ? n : 0] = '\0';
                if (strncmp(cmd, "flush", 5) == 0) {
                        af_log_info("op=flush msg=\"archiving complete directories; waiting for "
                                    "every pending upload\"");
                        af_queue_get_stats(c->queue, &before);
                        af_mount_archive_dirs(c->router, c->spool_fd, c->queue);
                        (void)af_queue_drain(c->queue, -1);
                        af_queue_get_stats(c->queue, &after);
                        snprintf(reply, sizeof(reply), "ok %llu %llu\n",
                                 (unsigned long long)(after.uploaded_files - before.uploaded_files),
                                 (unsigned long long)(after.failed_files - before.failed_files));
                } else {
                        snprintf(reply, sizeof(reply), "error unknown command\n");
                }
                (void)!write(cfd, reply, strlen(reply));
                close(cfd);
        }
}

/* Only root and the daemon's user may connect. */
void af_control_start(struct af_control *c, const char *spool_root)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        c->fd = -1;
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", spool_root) >=
            sizeof(sa.sun_path)) {
                af_log_warn("op=control msg=\"spool path too long for a control socket; artifuse "
                            "flush will not reach this mount\"");
                return;
        }
        (void)unlink(sa.sun_path);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            chmod(sa.sun_path, 0600) < 0 || listen(c->fd, 4) < 0 ||
            pthread_create(&c->thread, NULL, control_loop, c) != 0) {
                af_log_warn("op=control err=%s msg=\"no control socket; artifuse flush will not "
                            "reach this mount\"",
                            af_q(strerror(errno)));
                if (c->fd >= 0)
                        close(c->fd);
                c->fd = -1;
                return;
        }
        c->started = true;
}

void af_control_stop(struct af_control *c, const char *spool_root)
{
        char path[PATH_MAX + 16];

        if (!c->started)
                return;
        shutdown(c->fd, SHUT_RDWR); /* wakes accept() */
        pthread_join(c->thread, NULL);
        close(c->fd);
        snprintf(path, sizeof(path), "%s/control.sock", spool_root);
        (void)unlink(path);
        c->started = false;
}

/* /proc/mounts escapes space, tab, newline and backslash as \ooo: undoes it into @d (at most
 * @n bytes with the NUL; @d may be @s). */
static void unescape(const char *s, char *d, size_t n)
{
        char *start = d;

        for (;; s++, d++) {
                if ((size_t)(d - start) >= n - 1) {
                        *d = '\0';
                        break;
                }
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
                        *d = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 3;
                } else if (!(*d = *s)) {
                        break;
                }
        }
}

/* The spool of the artifuse mounted at @mnt, from its /proc/mounts source "artifuse:SPOOL". */
static int spool_of_mount(const char *mnt, char *out, size_t n)
{
        FILE *f = fopen("/proc/self/mounts", "re");
        char line[PATH_MAX * 3];
        int r = -ENOENT;

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char src[PATH_MAX * 2], dir[PATH_MAX * 2], type[64];

                if (sscanf(line, "%s %s %63s", src, dir, type) != 3 ||
                    strcmp(type, "fuse.artifuse") != 0 || strncmp(src, "artifuse:", 9) != 0)
                        continue;
                unescape(dir, dir, sizeof(dir));
                if (strcmp(dir, mnt) != 0)
                        continue;
                unescape(src + 9, out, n);
                r = 0;
        }
        fclose(f);
        return r;
}

int af_control_flush(const char *mountpoint)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char mnt[PATH_MAX], spool[PATH_MAX], reply[128];
        unsigned long long up = 0, failed = 0;
        ssize_t n;
        int fd;

        if (!realpath(mountpoint, mnt))
                return af_cli_die("flush: %s: %s", mountpoint, strerror(errno));
        if (spool_of_mount(mnt, spool, sizeof(spool)) < 0)
                return af_cli_die("flush: no artifuse is mounted on %s", mnt);
        if (strlen(spool) + sizeof("/control.sock") > sizeof(sa.sun_path))
                return af_cli_die("flush: the spool path %s is too long for a control socket",
                                  spool);
        memcpy(sa.sun_path, spool, strlen(spool));
        memcpy(sa.sun_path + strlen(spool), "/control.sock", sizeof("/control.sock"));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;

                if (fd >= 0)
                        close(fd);
                return af_cli_die("flush: cannot reach the artifuse on %s (%s): %s", mnt,
                                  sa.sun_path, strerror(e));
        }
        if (write(fd, "flush\n", 6) != 6) {
                close(fd);
                return af_cli_die("flush: %s", strerror(errno));
        }
        n = read(fd, reply, sizeof(reply) - 1);
        close(fd);
        reply[n > 0 ? n : 0] = '\0';
        if (sscanf(reply, "ok %llu %llu", &up, &failed) != 2)
                return af_cli_die("flush: the mount answered '%s'", reply);
        printf("artifuse: flush: %llu files uploaded, %llu failed\n", up, failed);
        return failed ? AF_EXIT_UPLOADS : 0;
}
