/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The artifuse program: picks the command, parses its options (options.c) and runs it
 * (cmd_*.c). Every configuration problem is found before anything is mounted and is
 * reported as one line naming it, with exit status 1; the lines the program writes on
 * stderr outside the log are here.
 */
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mount_helper.h"

int af_cli_die(const char *fmt, ...)
{
        va_list ap;

        fputs("artifuse: error: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return AF_EXIT_CONFIG;
}

void af_cli_not_in_s3(void *ctx, const char *relpath, const char *bucket, const char *key,
                      const char *error)
{
        (void)ctx;
        fprintf(stderr, "artifuse: not in S3: %s -> s3://%s/%s: %s\n", relpath, bucket, key,
                error);
}

/* artifuse help [COMMAND | --man]; --help and -h are the same */
static int help(int argc, char **argv)
{
        unsigned cmd;

        if (argc < 3) {
                af_options_help(0, stdout);
                return 0;
        }
        if (strcmp(argv[2], "--man") == 0) {
                af_options_man(stdout);
                return 0;
        }
        cmd = af_options_command(argv[2]);
        /* `artifuse --help ANYTHING` always printed the whole help; `help X` is new: strict. */
        if (!cmd && strcmp(argv[1], "help") == 0)
                return af_cli_die("help: unknown command '%s'", argv[2]);
        af_options_help(cmd, stdout);
        return 0;
}

/* artifuse run [OPTIONS] MOUNTPOINT -- CMD ARGS... */
static int run(int argc, char **argv)
{
        struct af_opts o;
        int dd = 0, r;

        for (int i = 2; i < argc; i++)
                if (strcmp(argv[i], "--") == 0) {
                        dd = i;
                        break;
                }
        /* Without a program there is nothing to run: --help may still be asked for. */
        for (int i = 2; !dd && i < argc; i++)
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        af_options_help(AF_CMD_RUN, stdout);
                        return 0;
                }
        if (!dd || dd == argc - 1)
                return af_cli_die("run: give the command after --: artifuse run [OPTIONS] "
                                  "MOUNTPOINT -- CMD ARGS...");
        argv[dd] = NULL;
        r = af_options_parse(&o, AF_CMD_RUN, dd - 1, argv + 1);
        if (r == 0)
                r = af_cmd_run(&o, dd - 1, argv + 1, argv + dd + 1);
        af_options_done(&o);
        return r;
}

static bool is_command(const char *word)
{
        return af_options_command(word) || strcmp(word, "help") == 0 ||
               strcmp(word, "version") == 0;
}

/* mount -t fuse.artifuse SOURCE DIR -o OPTIONS, through mount.fuse3 (mount_helper.h). */
static int mount_helper(int argc, char **argv)
{
        struct af_buf err;
        struct af_opts o;
        char **margv = NULL;
        int margc = 0, r;

        af_buf_init(&err, 1024);
        r = af_mount_helper_translate(argc, argv, &margc, &margv, &err);
        if (r < 0) {
                r = af_cli_die("%s", af_buf_str(&err));
        } else {
                r = af_options_parse(&o, AF_CMD_MOUNT, margc - 1, margv + 1);
                if (r == 0)
                        r = af_cmd_mount(&o, margc - 1, margv + 1);
                af_options_done(&o);
        }
        af_mount_helper_free(margv);
        af_buf_done(&err);
        return r;
}

int main(int argc, char **argv)
{
        struct af_opts o;
        const char *name;
        unsigned cmd;
        int r;

        /* glibc gives each thread that allocates an arena of its own (up to 8 per core) and
         * each keeps what it freed: with FUSE's threads, the workers and the part threads
         * all allocating a little, that is most of the daemon's peak RSS. Two arenas hold
         * it down; the allocations are small and short, so contention does not show in
         * scripts/bench. */
        mallopt(M_ARENA_MAX, 2);
        if (af_mount_helper_form(argc, argv, is_command)) {
                signal(SIGPIPE, SIG_IGN);
                return mount_helper(argc, argv);
        }
        if (argc < 2) {
                af_options_help(0, stderr);
                return AF_EXIT_CONFIG;
        }
        name = argv[1];
        if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
                return help(argc, argv);
        if (strcmp(name, "--man") == 0) {
                af_options_man(stdout);
                return 0;
        }
        if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
                puts("artifuse " AF_VERSION);
                return 0;
        }
        cmd = af_options_command(name);
        if (!cmd)
                return af_cli_die("unknown command '%s' (commands: mount, run, keys, flush, "
                                  "drain, status, help, version)",
                                  name);
        signal(SIGPIPE, SIG_IGN);
        if (cmd == AF_CMD_RUN)
                return run(argc, argv);
        r = af_options_parse(&o, cmd, argc - 1, argv + 1);
        if (r == 0 && cmd == AF_CMD_MOUNT)
                r = af_cmd_mount(&o, argc - 1, argv + 1);
        else if (r == 0 && cmd == AF_CMD_DRAIN)
                r = af_cmd_drain(&o, argc - 1, argv + 1);
        else if (r == 0 && cmd == AF_CMD_STATUS)
                r = af_cmd_status(&o, argc - 1, argv + 1);
        else if (r == 0 && cmd == AF_CMD_FLUSH)
                r = af_cmd_flush(&o, argc - 1, argv + 1);
        else if (r == 0)
                r = af_cmd_keys(&o, argc - 1, argv + 1);
        af_options_done(&o);
        return r;
}
