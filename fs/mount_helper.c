// SPDX-License-Identifier: Apache-2.0
/* mount(8)'s form of the command line -> `artifuse mount` (see mount_helper.h). */
#include "mount_helper.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What mount(8) and mount.fuse3 handle themselves, or what means nothing to a FUSE mount
 * that is always nosuid and nodev: dropped. */
static const char *const generic[] = {
        "rw",     "dev",     "nodev",  "suid",   "nosuid",   "exec",     "noexec",
        "auto",   "noauto",  "user",   "nouser", "users",    "defaults", "async",
        "sync",   "atime",   "noatime", "relatime", "strictatime", "nodiratime",
        "_netdev", "nofail", "owner",  "group",  "loud",     "silent",
};

static bool is_generic(const char *opt, size_t n)
{
        if (n >= 2 && strncmp(opt, "x-", 2) == 0)
                return true; /* x-systemd.* and friends: for the init system */
        for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]); i++)
                if (strlen(generic[i]) == n && strncmp(opt, generic[i], n) == 0)
                        return true;
        return false;
}

bool af_mount_helper_form(int argc, char **argv, bool (*is_command)(const char *word))
{
        struct stat st;

        /* mount.fuse3 passes SOURCE, an existing directory and "-o OPTIONS" (or nothing):
         * anything else is a mistyped command, reported as one. */
        return (argc == 3 || (argc == 5 && strcmp(argv[3], "-o") == 0)) &&
               argv[1][0] != '-' && !is_command(argv[1]) && argv[2][0] == '/' &&
               stat(argv[2], &st) == 0 && S_ISDIR(st.st_mode);
}

static int push(char ***v, int *n, const char *s, size_t len)
{
        char **nv = realloc(*v, (size_t)(*n + 2) * sizeof(**v));

        if (!nv)
                return -ENOMEM;
        *v = nv;
        nv[*n] = strndup(s, len);
        if (!nv[*n])
                return -ENOMEM;
        nv[++*n] = NULL;
        return 0;
}

/* One "NAME[=VALUE]" of an -o list. */
static int add_option(char ***v, int *n, const char *opt, size_t len, struct af_buf *err)
{
        const char *eq = memchr(opt, '=', len);
        size_t name_len = eq ? (size_t)(eq - opt) : len;
        char flag[128];
        int r;

        if (!len || is_generic(opt, len))
                return 0;
        if (len == 2 && strncmp(opt, "ro", 2) == 0) {
                (void)af_buf_addf(err, "mount option 'ro': artifuse captures what programs "
                                       "write; a read-only mount would capture nothing");
                return -EINVAL;
        }
        if (name_len + 3 > sizeof(flag) || name_len == 0) {
                (void)af_buf_addf(err, "mount option '%.*s': not an option name", (int)len, opt);
                return -EINVAL;
        }
        flag[0] = flag[1] = '-';
        memcpy(flag + 2, opt, name_len);
        r = push(v, n, flag, name_len + 2);
        if (r == 0 && eq)
                r = push(v, n, eq + 1, len - name_len - 1);
        return r;
}

int af_mount_helper_translate(int argc, char **argv, int *ret_argc, char ***ret_argv,
                              struct af_buf *err)
{
        const char *source = argv[1], *dir = argv[2];
        char **v = NULL;
        int n = 0, r;

        r = push(&v, &n, argv[0], strlen(argv[0]));
        if (r == 0)
                r = push(&v, &n, "mount", 5);
        if (r == 0 && strncmp(source, "s3://", 5) == 0) {
                r = push(&v, &n, "--artifact-repository", 21);
                if (r == 0)
                        r = push(&v, &n, source, strlen(source));
        }
        for (int i = 3; r == 0 && i < argc; i++) {
                const char *o = argv[i], *end;

                if (strcmp(o, "-o") != 0 || i + 1 >= argc) {
                        (void)af_buf_addf(err, "as a mount helper artifuse takes SOURCE DIR "
                                               "[-o OPTIONS], not '%s'", o);
                        r = -EINVAL;
                        break;
                }
                for (o = argv[++i]; r == 0 && *o; o = *end ? end + 1 : end) {
                        end = strchr(o, ',');
                        if (!end)
                                end = o + strlen(o);
                        r = add_option(&v, &n, o, (size_t)(end - o), err);
                }
        }
        if (r == 0)
                r = push(&v, &n, dir, strlen(dir));
        if (r < 0) {
                af_mount_helper_free(v);
                return r;
        }
        *ret_argc = n;
        *ret_argv = v;
        return 0;
}

void af_mount_helper_free(char **argv)
{
        if (!argv)
                return;
        for (char **p = argv; *p; p++)
                free(*p);
        free(argv);
}
