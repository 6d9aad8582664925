/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared-files source: the profile's keys in AWS_SHARED_CREDENTIALS_FILE
 * (~/.aws/credentials) or AWS_CONFIG_FILE (~/.aws/config), else its credential_process,
 * run again on every refresh. See creds.h (source 3) and creds_source.h.
 *
 * Three misconfigurations stop the chain (falling through would silently pick up another
 * identity): AWS_PROFILE naming a profile in neither file, a profile with half a key pair,
 * a credential too long. Profiles that assume roles or use SSO are refused with a reason.
 */
#include "aws/creds_source.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/json.h"

extern char **environ;

#define PROCESS_TIMEOUT_MS 60000 /* the AWS SDKs' credential_process default */

/* ---- INI (the shared config and credentials files) ---------------------------------------- */

static bool blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* "[ profile  x ]" matches "profile x": outer whitespace trimmed, inner runs are one space. */
static bool section_is(const char *a, const char *b, const char *want)
{
        while (a < b && blank(*a))
                a++;
        while (b > a && blank(b[-1]))
                b--;
        while (a < b) {
                if (blank(*a)) {
                        if (*want != ' ')
                                return false;
                        while (a < b && blank(*a))
                                a++;
                        want++;
                        continue;
                }
                if (*a != *want)
                        return false;
                a++;
                want++;
        }
        return *want == '\0';
}

/*
 * If the key of line [s, e) (its '=' at @eq) is @key, case-insensitively: its value, trimmed,
 * with an inline comment (at '#' or ';' after whitespace) cut off.
 */
static bool value_of(const char *s, const char *eq, const char *e, const char *key,
                     const char **ret_v, size_t *ret_len)
{
        const char *ke = eq, *v = eq + 1;

        while (ke > s && blank(ke[-1]))
                ke--;
        if ((size_t)(ke - s) != strlen(key) || strncasecmp(s, key, (size_t)(ke - s)) != 0)
                return false;
        while (v < e && blank(*v))
                v++;
        for (const char *q = v; q < e; q++) {
                if ((*q == '#' || *q == ';') && q > v && blank(q[-1])) {
                        e = q;
                        break;
                }
        }
        while (e > v && blank(e[-1]))
                e--;
        *ret_v = v;
        *ret_len = (size_t)(e - v);
        return true;
}

int af_creds_ini_get(const char *text, size_t len, const char *section, const char *key,
                     char *out, size_t n)
{
        const char *p = text, *end = text + len, *val = NULL;
        bool in_section = false, found_section = false, have_key_line = false;
        size_t vlen = 0, key_indent = 0;

        /* Editors on some systems start UTF-8 files with a byte order mark. */
        if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
                p += 3;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *line = p, *s = p, *e = nl ? nl : end, *eq;
                size_t indent;

                p = nl ? nl + 1 : end;
                while (s < e && blank(*s))
                        s++;
                indent = (size_t)(s - line);
                while (e > s && blank(e[-1]))
                        e--;
                if (s == e || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        const char *close = memchr(s, ']', (size_t)(e - s));

                        have_key_line = false;
                        /* A malformed header ends the section we were in. */
                        in_section = close && section_is(s + 1, close, section);
                        found_section = found_section || in_section;
                        continue;
                }
                /*
                 * configparser's rule, which botocore follows: a line indented deeper than
                 * the key line above it continues that key's value. Nested settings
                 * ("s3 =" then "  addressing_style = path") are such lines; we skip them.
                 */
                if (have_key_line && indent > key_indent)
                        continue;
                eq = memchr(s, '=', (size_t)(e - s));
                if (!eq) {
                        have_key_line = false;
                        continue;
                }
                have_key_line = true;
                key_indent = indent;
                if (!in_section || !key)
                        continue;
                /* A repeated key: the last value wins. */
                (void)value_of(s, eq, e, key, &val, &vlen);
        }
        if (!found_section)
                return -ESRCH;
        if (!key)
                return 0;
        if (!val)
                return -ENOENT;
        return af_creds_copy(out, n, val, vlen);
}

/* ---- the profile's files --------------------------------------------------------------- */

static const char *profile_name(bool *ret_explicit)
{
        const char *p = af_creds_env("AWS_PROFILE");

        if (!p)
                p = af_creds_env("AWS_DEFAULT_PROFILE");
        *ret_explicit = p != NULL;
        return p ? p : "default";
}

/* $VAR, else ~/.aws/<name>; a leading "~/" is the home directory, as in the SDKs. */
static int shared_path(const char *var, const char *name, struct af_buf *out,
                       struct af_buf *why)
{
        const char *v = af_creds_env(var), *home = af_creds_env("HOME");

        if (v && !(v[0] == '~' && (v[1] == '/' || !v[1])))
                return af_buf_sets(out, v);
        if (!home) {
                (void)af_buf_addf(why, "HOME not set, so no ~/.aws/%s", name);
                return -ENOENT;
        }
        if (v)
                return af_buf_addf(out, "%s%s", home, v + 1);
        return af_buf_addf(out, "%s/.aws/%s", home, name);
}

struct profile_files {
        struct af_buf cpath, fpath; /* credentials, config */
        struct af_buf ctext, ftext;
        int cerr, ferr;             /* 0 read, else -errno */
        char fsect[300];            /* the profile's section in the config file */
        bool in_c, in_f;
};

static void profile_files_done(struct profile_files *pf)
{
        af_buf_done(&pf->cpath);
        af_buf_done(&pf->fpath);
        af_creds_scrub(&pf->ctext);
        af_creds_scrub(&pf->ftext);
}

static int profile_files_load(struct profile_files *pf, const char *profile, struct af_buf *why)
{
        int r;

        memset(pf, 0, sizeof(*pf));
        af_buf_init(&pf->cpath, 4096);
        af_buf_init(&pf->fpath, 4096);
        af_buf_init(&pf->ctext, AF_CREDS_FILE_CAP);
        af_buf_init(&pf->ftext, AF_CREDS_FILE_CAP);
        r = shared_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", &pf->cpath, why);
        if (r == 0)
                r = shared_path("AWS_CONFIG_FILE", "config", &pf->fpath, why);
        if (r < 0)
                return r;
        pf->cerr = af_creds_read_file(pf->cpath.ptr, AF_CREDS_FILE_CAP, &pf->ctext);
        pf->ferr = af_creds_read_file(pf->fpath.ptr, AF_CREDS_FILE_CAP, &pf->ftext);
        pf->in_c = pf->cerr == 0 &&
                   af_creds_ini_get(pf->ctext.ptr, pf->ctext.len, profile, NULL, NULL, 0) == 0;
        /* The config file names profiles "[profile x]", except "[default]". */
        (void)snprintf(pf->fsect, sizeof(pf->fsect), "profile %s", profile);
        if (strcmp(profile, "default") == 0 && pf->ferr == 0 &&
            af_creds_ini_get(pf->ftext.ptr, pf->ftext.len, "default", NULL, NULL, 0) == 0)
                (void)snprintf(pf->fsect, sizeof(pf->fsect), "default");
        pf->in_f = pf->ferr == 0 && af_creds_ini_get(pf->ftext.ptr, pf->ftext.len, pf->fsect,
                                                     NULL, NULL, 0) == 0;
        return 0;
}

/* @key from the credentials file, else the config file; sets *ret_path to where. */
static int profile_get(const struct profile_files *pf, const char *profile, const char *key,
                       char *out, size_t n, const char **ret_path)
{
        int r = -ENOENT;

        if (pf->in_c) {
                r = af_creds_ini_get(pf->ctext.ptr, pf->ctext.len, profile, key, out, n);
                if (r == 0 || r == -E2BIG) {
                        *ret_path = pf->cpath.ptr;
                        return r;
                }
        }
        if (pf->in_f) {
                r = af_creds_ini_get(pf->ftext.ptr, pf->ftext.len, pf->fsect, key, out, n);
                if (r == 0 || r == -E2BIG)
                        *ret_path = pf->fpath.ptr;
        }
        return r;
}

static const char *file_state(int err)
{
        return err == 0 ? "" : err == -ENOENT ? " (missing)" : " (unreadable)";
}

/* ---- credential_process ------------------------------------------------------------------- */

/* The source's settings (struct af_creds_source's str). */
enum { COMMAND, PROFILE };

/* Starts @command with /bin/sh -c (as the SDKs do on Unix), stdout into *ret_fd. */
static int spawn(const char *command, const char *profile, pid_t *ret_pid, int *ret_fd,
                 struct af_buf *why)
{
        char sh[] = "/bin/sh", dash_c[] = "-c";
        char *argv[] = { sh, dash_c, NULL, NULL };
        posix_spawn_file_actions_t fa;
        int pfd[2] = { -1, -1 }, r;
        bool have_fa = false;

        argv[2] = strdup(command);
        if (!argv[2])
                return -ENOMEM;
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                r = -errno;
                (void)af_buf_addf(why, "pipe: %s", strerror(-r));
                goto out;
        }
        r = -posix_spawn_file_actions_init(&fa);
        if (r < 0)
                goto out;
        have_fa = true;
        /* dup2 onto 1 clears close-on-exec there; stdin is /dev/null, stderr is ours. */
        r = -posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
        if (r == 0)
                r = -posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY,
                                                      0);
        if (r == 0)
                r = -posix_spawn(ret_pid, sh, &fa, NULL, argv, environ);
        if (r < 0) {
                (void)af_buf_addf(why, "cannot run credential_process of profile '%s': %s",
                                  profile, strerror(-r));
                goto out;
        }
        *ret_fd = pfd[0];
        pfd[0] = -1;
out:
        if (have_fa)
                posix_spawn_file_actions_destroy(&fa);
        if (pfd[0] >= 0)
                close(pfd[0]);
        if (pfd[1] >= 0)
                close(pfd[1]);
        free(argv[2]);
        return r;
}

/* Reads @fd to its end into @out, for at most PROCESS_TIMEOUT_MS: -ETIMEDOUT after. */
static int collect(int fd, const char *profile, struct af_buf *out, struct af_buf *why)
{
        uint64_t t0 = af_clock_mono_ms();

        for (;;) {
                struct pollfd pf = { .fd = fd, .events = POLLIN };
                long left = PROCESS_TIMEOUT_MS - (long)(af_clock_mono_ms() - t0);
                bool full = false;
                int pr, n;

                if (left <= 0)
                        return -ETIMEDOUT;
                pr = poll(&pf, 1, (int)left);
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr < 0)
                        return -errno;
                if (pr == 0)
                        continue;
                n = af_creds_read_chunk(fd, out, &full);
                if (full) {
                        (void)af_buf_addf(why, "credential_process of profile '%s' wrote more "
                                               "than %zu bytes", profile, out->cap);
                        return n;
                }
                if (n <= 0)
                        return 0; /* the end of its output (a read error counts as the end) */
        }
}

/* Runs @command; its stdout into @out. */
static int run_process(const char *command, const char *profile, struct af_buf *out,
                       struct af_buf *why)
{
        pid_t pid = -1;
        int fd = -1, st = 0, r;

        r = spawn(command, profile, &pid, &fd, why);
        if (r < 0)
                return r;
        r = collect(fd, profile, out, why);
        close(fd);
        if (r < 0)
                (void)kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (r == -ETIMEDOUT) {
                (void)af_buf_addf(why, "credential_process of profile '%s' did not finish "
                                       "within %d s", profile, PROCESS_TIMEOUT_MS / 1000);
        } else if (r == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                if (WIFEXITED(st))
                        (void)af_buf_addf(why, "credential_process of profile '%s' exited "
                                               "with status %d", profile, WEXITSTATUS(st));
                else
                        (void)af_buf_addf(why, "credential_process of profile '%s' was killed "
                                               "by signal %d", profile, WTERMSIG(st));
                r = -EIO;
        }
        return r;
}

static int process_fetch(const struct af_creds_source *s, struct af_creds *c,
                         struct af_buf *why)
{
        char version[16], source[sizeof(c->source)];
        struct af_buf out;
        int r;

        af_buf_init(&out, AF_CREDS_RESPONSE_CAP);
        r = run_process(s->str[COMMAND], s->str[PROFILE], &out, why);
        if (r < 0)
                goto out;
        /* The documented output is JSON with "Version": 1; other versions may differ. */
        r = af_json_get(af_buf_str(&out), out.len, "Version", version, sizeof(version));
        if (r != AF_JSON_NUMBER || strcmp(version, "1") != 0) {
                (void)af_buf_addf(why, "credential_process of profile '%s' did not print a "
                                       "JSON object with \"Version\": 1", s->str[PROFILE]);
                r = -EBADMSG;
                goto out;
        }
        (void)snprintf(source, sizeof(source), "profile %s (credential_process)", s->str[PROFILE]);
        r = af_creds_from_json(&out, "SessionToken", source, c, why);
        if (r < 0) {
                char where[300];

                (void)snprintf(where, sizeof(where), "credential_process of profile '%s'",
                               s->str[PROFILE]);
                af_creds_why_prefix(why, where);
        }
out:
        af_creds_scrub(&out);
        return r;
}

static const struct af_creds_source_ops process_ops = { .name = "credential_process",
                                                         .fetch = process_fetch };

/* ---- the step ------------------------------------------------------------------------------ */

/* The profile's keys, when it has any: 0 with @c filled, -ENOENT when it has none. */
static int profile_keys(const struct profile_files *pf, const char *profile, struct af_creds *c,
                        struct af_buf *why, bool *stop)
{
        char ak[128], sk[128], tok[AF_CREDS_TOKEN_MAX], source[sizeof(c->source)];
        const char *akp = NULL, *skp = NULL, *tp = NULL;
        int r, rak, rsk, rtok;

        tok[0] = '\0';
        rak = profile_get(pf, profile, "aws_access_key_id", ak, sizeof(ak), &akp);
        rsk = profile_get(pf, profile, "aws_secret_access_key", sk, sizeof(sk), &skp);
        rtok = profile_get(pf, profile, "aws_session_token", tok, sizeof(tok), &tp);
        if (rak == -E2BIG || rsk == -E2BIG || rtok == -E2BIG) {
                (void)af_buf_addf(why, "profile '%s': a credential is too long", profile);
                *stop = true;
                r = -EINVAL;
                goto out;
        }
        if (rak != 0 && rsk != 0) {
                r = -ENOENT;
                goto out;
        }
        if (rak != 0 || rsk != 0) {
                (void)af_buf_addf(why, "profile '%s' in %s has %s but no %s", profile,
                                  rak == 0 ? akp : skp,
                                  rak == 0 ? "aws_access_key_id" : "aws_secret_access_key",
                                  rak == 0 ? "aws_secret_access_key" : "aws_access_key_id");
                *stop = true;
                r = -EINVAL;
                goto out;
        }
        (void)snprintf(source, sizeof(source), "profile %s (%s)", profile, akp);
        r = af_creds_set(c, ak, sk, rtok == 0 ? tok : "", 0, source, why);
        if (r < 0) {
                *stop = true;
                r = -EINVAL;
        }
out:
        explicit_bzero(sk, sizeof(sk));
        explicit_bzero(tok, sizeof(tok));
        return r;
}

/* Why a profile with neither keys nor credential_process yields nothing. */
static int no_creds(const struct profile_files *pf, const char *profile, struct af_buf *why)
{
        const char *op = NULL;
        char other[8];

        if (profile_get(pf, profile, "role_arn", other, sizeof(other), &op) != -ENOENT ||
            profile_get(pf, profile, "sso_session", other, sizeof(other), &op) != -ENOENT ||
            profile_get(pf, profile, "sso_start_url", other, sizeof(other), &op) != -ENOENT) {
                (void)af_buf_addf(why, "profile '%s' assumes a role or uses SSO, which artifuse "
                                       "does not support; use credential_process or keys",
                                  profile);
                return -EOPNOTSUPP;
        }
        (void)af_buf_addf(why, "profile '%s' in %s has no aws_access_key_id or "
                               "credential_process",
                          profile, pf->in_c ? pf->cpath.ptr : pf->fpath.ptr);
        return -ENOENT;
}

int af_creds_profile_step(struct af_creds_source **ret_src, struct af_creds *c,
                          struct af_buf *why, bool *stop)
{
        struct profile_files pf;
        bool explicit_profile;
        const char *profile = profile_name(&explicit_profile), *cp = NULL;
        char cmd[4096];
        int r;

        *ret_src = NULL;
        r = profile_files_load(&pf, profile, why);
        if (r < 0)
                goto out;
        if (!pf.in_c && !pf.in_f) {
                (void)af_buf_addf(why, "%sno profile '%s' in %s%s or %s%s",
                                  explicit_profile ? "AWS_PROFILE: " : "", profile, pf.cpath.ptr,
                                  file_state(pf.cerr), pf.fpath.ptr, file_state(pf.ferr));
                /* The SDKs refuse a named profile that does not exist; so do we. */
                *stop = explicit_profile;
                r = explicit_profile ? -EINVAL : -ENOENT;
                goto out;
        }
        r = profile_keys(&pf, profile, c, why, stop);
        if (r != -ENOENT)
                goto out;
        r = profile_get(&pf, profile, "credential_process", cmd, sizeof(cmd), &cp);
        if (r == 0)
                r = af_creds_source_start(AF_CREDS_PROCESS, &process_ops,
                                          (const char *const[]){ cmd, profile, NULL, NULL },
                                          ret_src, c, why);
        else
                r = no_creds(&pf, profile, why);
out:
        explicit_bzero(cmd, sizeof(cmd));
        profile_files_done(&pf);
        return r;
}

int af_creds_profile_region(char *out, size_t n)
{
        struct profile_files pf;
        struct af_buf why;
        bool explicit_profile;
        const char *profile = profile_name(&explicit_profile);
        int r;

        af_buf_init(&why, AF_CREDS_WHY_CAP);
        r = profile_files_load(&pf, profile, &why);
        if (r == 0 && pf.in_f)
                r = af_creds_ini_get(pf.ftext.ptr, pf.ftext.len, pf.fsect, "region", out, n);
        else if (r == 0)
                r = -ENOENT;
        profile_files_done(&pf);
        af_buf_done(&why);
        return r;
}
