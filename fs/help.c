/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the option table (options.c) says, written for people: the program's --help, each
 * command's --help and the artifuse(1) man page. The texts here are the ones no option owns
 * (the commands, the sections, exit status, the example); the build makes the man page by
 * running `artifuse help --man`, so help and man page say the same thing.
 */
#include <string.h>

#include "cli.h"
#include "optable.h"

#define HELP_COL 23    /* where an option's help starts */
#define COMMAND_COL 31 /* where a command's summary starts */

struct command {
        const char *name;
        unsigned bit;         /* enum af_cmd; 0 for help and version */
        const char *synopsis; /* after "artifuse " */
        const char *summary;  /* "\n" where the help breaks the line */
};

static const struct command commands[] = {
        { "mount", AF_CMD_MOUNT, "mount [OPTIONS] MOUNTPOINT",
          "mount and serve until `fusermount3 -u MOUNTPOINT` or\n"
          "SIGTERM; pending uploads finish before it exits" },
        { "run", AF_CMD_RUN, "run [OPTIONS] MOUNTPOINT -- CMD [ARGS...]",
          "mount, run CMD (signals are forwarded to it), wait\n"
          "for every upload, unmount, exit with CMD's status" },
        { "flush", AF_CMD_FLUSH, "flush MOUNTPOINT",
          "upload everything written so far, archived\n"
          "directories included, and wait for it" },
        { "drain", AF_CMD_DRAIN, "drain --spool DIR [OPTIONS]",
          "upload what an earlier (killed) mount left in its\n"
          "spool; exit 0 only when all of it is in S3" },
        { "status", AF_CMD_STATUS, "status --spool DIR [--json]",
          "pending / uploading / done / failed files and bytes,\n"
          "and each failed file with its last error" },
        { "keys", AF_CMD_KEYS, "keys [OPTIONS] [PATH...]",
          "dry run: print the s3://bucket/key each path would get\n"
          "(no PATH: every declared artifact and its strategy)" },
        { "help", 0, "help [COMMAND]", "this help, or COMMAND's" },
        { "version", 0, "version", "the version" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char *const section_titles[AF_SEC_COUNT] = {
        [AF_SEC_WHERE] = "Where objects go",
        [AF_SEC_S3] = "S3",
        [AF_SEC_MOUNT] = "Mount and spool",
        [AF_SEC_GENERAL] = "General",
};

/* Said after a section's options, in the help of every command that shows the section. */
static const char *const section_notes[AF_SEC_COUNT] = {
        [AF_SEC_S3] = "Credentials: $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY,\n"
                      "$AWS_SESSION_TOKEN, else the AWS SDK chain (shared files, web identity,\n"
                      "container credentials, EC2 instance metadata).",
};

static const char intro[] =
        "artifuse is a FUSE filesystem for the outputs of unmodified programs: every file\n"
        "written under the mount point is kept on local disk (the spool) and uploaded to S3\n"
        "when the program closes it, at the key Argo Workflows would give it.\n";

static const char env_note[] =
        "Every option can also be set in the environment as ARTIFUSE_<NAME>, e.g.\n"
        "ARTIFUSE_ENDPOINT=http://127.0.0.1:7480; flags win.\n";

static const char exit_status[] =
        "Exit status: 0 success; 1 bad usage or configuration (one line says what);\n"
        "3 some files could not be uploaded (they stay in the spool; the log names them).\n"
        "run exits with CMD's status (128+N if a signal N killed it), or 3 if CMD succeeded\n"
        "but some files are not in S3 (each is printed).\n";

static const char example[] =
        "artifuse mount --spec hello-workflow.yaml \\\n"
        "  --artifact-repository 's3://my-argo-artifacts-bucket/argo-workflows/"
        "{{workflow.name}}/{{pod.name}}' \\\n"
        "  --var workflow.name=s3-artifact-example-x7k2p \\\n"
        "  --var pod.name=s3-artifact-example-x7k2p-main-123 /tmp\n"
        "echo 'Hello from Argo!' > /tmp/hello.txt\n"
        "# -> s3://my-argo-artifacts-bucket/argo-workflows/s3-artifact-example-x7k2p/\n"
        "#        s3-artifact-example-x7k2p-main-123/hello.txt\n";

unsigned af_options_command(const char *name)
{
        for (size_t i = 0; i < NCOMMANDS; i++)
                if (commands[i].bit && strcmp(commands[i].name, name) == 0)
                        return commands[i].bit;
        return 0;
}

static const struct command *command_of(unsigned bit)
{
        for (size_t i = 0; i < NCOMMANDS; i++)
                if (commands[i].bit == bit)
                        return &commands[i];
        return NULL;
}

/* "-f, --foreground", "--spec FILE|-", "--unmatched ignore|upload" */
static void flag_text(const struct af_optrow *r, char *out, size_t n)
{
        size_t len = 0;

        if (r->letter)
                len += (size_t)snprintf(out, n, "-%c, ", r->letter);
        len += (size_t)snprintf(out + len, n - len, "--%s", r->name);
        if (r->arg)
                (void)snprintf(out + len, n - len, " %s", r->arg);
        else if (r->choices)
                for (const struct af_optchoice *c = r->choices; c->name && len < n; c++) {
                        if (c->alias)
                                continue;
                        len += (size_t)snprintf(out + len, n - len, "%s%s",
                                                c == r->choices ? " " : "|", c->name);
                }
}

/* @text's lines, the first after @first_col characters already printed, the rest indented. */
static void print_lines(FILE *f, const char *text, int first_col, int col)
{
        int at = first_col;

        while (*text) {
                size_t n = strcspn(text, "\n");

                fprintf(f, "%*s%.*s\n", at < col ? col - at : 1, "", (int)n, text);
                text += n + (text[n] == '\n');
                at = 0;
        }
}

static void print_item(FILE *f, const char *head, const char *text, int col)
{
        int n = fprintf(f, "  %s", head);

        if (n >= col) { /* no room for a space: the text goes under it */
                fputc('\n', f);
                n = 0;
        }
        print_lines(f, text, n, col);
}

static void print_sections(FILE *f, unsigned cmd)
{
        char flag[128];

        for (int s = 0; s < AF_SEC_COUNT; s++) {
                bool any = false;

                for (size_t i = 0; i < af_noptrows; i++) {
                        const struct af_optrow *r = &af_optrows[i];

                        if (r->section != (enum af_optsection)s || (cmd && !(r->cmds & cmd)))
                                continue;
                        if (!any)
                                fprintf(f, "\n%s:\n", section_titles[s]);
                        any = true;
                        flag_text(r, flag, sizeof(flag));
                        print_item(f, flag, r->help, HELP_COL);
                }
                if (any && section_notes[s])
                        print_lines(f, section_notes[s], 0, 2);
        }
}

void af_options_help(unsigned cmd, FILE *f)
{
        const struct command *c = cmd ? command_of(cmd) : NULL;

        if (c) {
                fprintf(f, "Usage: artifuse %s\n\n", c->synopsis);
                print_lines(f, c->summary, 0, 2);
        } else {
                fprintf(f, "Usage: artifuse COMMAND [OPTIONS] ...\n\n%s\nCommands:\n", intro);
                for (size_t i = 0; i < NCOMMANDS; i++)
                        print_item(f, commands[i].synopsis, commands[i].summary, COMMAND_COL);
        }
        print_sections(f, cmd);
        fprintf(f, "\n%s", env_note);
        if (!c) {
                fprintf(f, "\n%s\nExample (the Argo seed scenario):\n", exit_status);
                print_lines(f, example, 0, 2);
        }
}

/* ---- the man page -------------------------------------------------------------------- */

/* Text for roff: hyphens and backslashes escaped. */
static void roff_put(FILE *f, const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\\')
                        fputs("\\e", f);
                else if (s[i] == '-')
                        fputs("\\-", f);
                else if (s[i] == '/')
                        fputs("/\\:", f); /* a line may break after it: long paths */
                else
                        fputc(s[i], f);
        }
}

/* One line of text: no control character first (a line may begin with ' or .). */
static void roff_line(FILE *f, const char *s, size_t n)
{
        fputs("\\&", f);
        roff_put(f, s, n);
        fputc('\n', f);
}

static void roff_text(FILE *f, const char *text)
{
        while (*text) {
                size_t n = strcspn(text, "\n");

                roff_line(f, text, n);
                text += n + (text[n] == '\n');
        }
}

static void roff_commands_of(FILE *f, unsigned cmds)
{
        bool first = true;

        fputs("Used by:", f);
        for (size_t i = 0; i < NCOMMANDS; i++) {
                if (!(commands[i].bit & cmds))
                        continue;
                fprintf(f, "%s \\fB%s\\fR", first ? "" : ",", commands[i].name);
                first = false;
        }
        fputs(".\n", f);
}

static void roff_options(FILE *f)
{
        char flag[128];

        fputs(".SH OPTIONS\n", f);
        for (int s = 0; s < AF_SEC_COUNT; s++) {
                fprintf(f, ".SS %s\n", section_titles[s]);
                for (size_t i = 0; i < af_noptrows; i++) {
                        const struct af_optrow *r = &af_optrows[i];

                        if (r->section != (enum af_optsection)s)
                                continue;
                        flag_text(r, flag, sizeof(flag));
                        fputs(".TP\n.B ", f);
                        roff_line(f, flag, strlen(flag));
                        roff_text(f, r->help);
                        fputs(".br\n", f);
                        roff_commands_of(f, r->cmds);
                        if (r->env)
                                fprintf(f, "Environment: \\fB%s\\fR.\n", r->env);
                }
                if (section_notes[s]) {
                        fputs(".PP\n", f);
                        roff_text(f, section_notes[s]);
                }
        }
}

static void roff_environment(FILE *f)
{
        fputs(".SH ENVIRONMENT\n", f);
        roff_text(f, env_note);
        for (size_t i = 0; i < af_noptrows; i++) {
                const struct af_optrow *r = &af_optrows[i];

                if (!r->env)
                        continue;
                fprintf(f, ".TP\n.B %s\n\\fB\\-\\-", r->env);
                roff_put(f, r->name, strlen(r->name));
                if (!af_optrow_takes_value(r))
                        fputs("\\fR (1 or true; 0 or false: unset)\n", f);
                else
                        fputs("\\fR\n", f);
        }
}

void af_options_man(FILE *f)
{
        fputs(".TH ARTIFUSE 1 \"\" \"artifuse " AF_VERSION "\" \"User Commands\"\n"
              /* ragged right, no hyphens: long URLs and option names stay whole */
              ".ad l\n.nh\n"
              ".SH NAME\nartifuse \\- capture the files programs write and upload them to S3\n"
              ".SH SYNOPSIS\n.nf\n",
              f);
        for (size_t i = 0; i < NCOMMANDS; i++) {
                fputs("\\fBartifuse\\fR ", f);
                roff_line(f, commands[i].synopsis, strlen(commands[i].synopsis));
        }
        fputs(".fi\n.SH DESCRIPTION\n", f);
        roff_text(f, intro);
        fputs(".SH COMMANDS\n", f);
        for (size_t i = 0; i < NCOMMANDS; i++) {
                fputs(".TP\n.B ", f);
                roff_line(f, commands[i].synopsis, strlen(commands[i].synopsis));
                roff_text(f, commands[i].summary);
        }
        roff_options(f);
        roff_environment(f);
        fputs(".SH \"EXIT STATUS\"\n", f);
        roff_text(f, exit_status);
        fputs(".SH EXAMPLE\n.nf\n", f);
        roff_text(f, example);
        fputs(".fi\n.SH \"SEE ALSO\"\n.BR fusermount3 (1)\n", f);
}
