/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The files a workflow reads back after the mount: --uris-dir and --uris-json (core's
 * spool/uris.h writes them). Opened here, before the daemon forks, so a path that cannot be
 * used is one line at start-up, never a warning per upload later.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "spool/uris.h"

/* Opens directory @dir (made with its parents if missing) as @what; refuses one inside
 * the mount point @mnt, which the daemon would have to write through itself. */
static int open_dir(const char *what, const char *arg, const char *dir, const char *mnt,
                    int *ret_fd)
{
        char real[PATH_MAX];
        size_t ml = strlen(mnt);
        int r = af_mkdir_p(dir, 0755);

        if (r < 0)
                return af_cli_die("%s %s: cannot make %s: %s", what, arg, dir, strerror(-r));
        if (!realpath(dir, real))
                return af_cli_die("%s %s: %s", what, arg, strerror(errno));
        if (strcmp(mnt, "/") == 0 ||
            (strncmp(real, mnt, ml) == 0 && (real[ml] == '/' || !real[ml])))
                return af_cli_die("%s %s must not be inside the mount point %s", what, arg, mnt);
        *ret_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (*ret_fd < 0)
                return af_cli_die("%s %s: %s", what, arg, strerror(errno));
        if (faccessat(*ret_fd, ".", W_OK, AT_EACCESS) < 0) {
                r = af_cli_die("%s %s: %s", what, arg, strerror(errno));
                close(*ret_fd);
                return r;
        }
        return 0;
}

int af_outputs_open(const struct af_opts *o, const char *mnt, const struct af_router *router,
                    struct af_uris **ret)
{
        struct af_uris_config cfg = { .dir_fd = -1, .json_dirfd = -1, .router = router };
        char parent[PATH_MAX], base[PATH_MAX];
        struct stat st;
        int r;

        *ret = NULL;
        if (!o->uris_dir && !o->uris_json)
                return 0;
        if (o->uris_dir && (r = open_dir("--uris-dir", o->uris_dir, o->uris_dir, mnt,
                                         &cfg.dir_fd)))
                return r;
        if (o->uris_json) {
                size_t n = strlen(o->uris_json);

                if (n == 0 || n >= sizeof(parent) || o->uris_json[n - 1] == '/') {
                        r = af_cli_die("--uris-json '%s': not a file name", o->uris_json);
                        goto fail;
                }
                memcpy(parent, o->uris_json, n + 1);
                memcpy(base, o->uris_json, n + 1);
                cfg.json_name = basename(base);
                if (strcmp(cfg.json_name, ".") == 0 || strcmp(cfg.json_name, "..") == 0) {
                        r = af_cli_die("--uris-json '%s': not a file name", o->uris_json);
                        goto fail;
                }
                r = open_dir("--uris-json", o->uris_json, dirname(parent), mnt,
                             &cfg.json_dirfd);
                if (r)
                        goto fail;
                if (fstatat(cfg.json_dirfd, cfg.json_name, &st, 0) == 0 && S_ISDIR(st.st_mode)) {
                        r = af_cli_die("--uris-json %s is a directory", o->uris_json);
                        close(cfg.json_dirfd);
                        goto fail;
                }
        }
        if (af_uris_new(&cfg, ret) < 0)
                return af_cli_die("out of memory");
        return 0;
fail:
        if (cfg.dir_fd >= 0)
                close(cfg.dir_fd);
        return r;
}
