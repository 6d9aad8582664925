/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for creds: the INI reader, the refresh decision, the endpoint rules, and the
 * chain's order and error line with files in a temporary HOME. (The JSON and XML readers
 * the sources use are tested in tests/unit/base, RFC 3339 times in base/test_clock.c.)
 *
 * Network rule: nothing here may reach a metadata service or AWS. main() clears every
 * AWS_* variable the chain reads and sets AWS_EC2_METADATA_DISABLED=true; the only request
 * made goes to 127.0.0.1 port 1 (refused). credential_process runs /bin/sh locally.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/creds.h"
#include "base/clock.h"
#include "test.h"

static char home[256];

static const char *const chain_vars[] = {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
        "AWS_ENDPOINT_URL_STS", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "ARTIFUSE_CREDS_REFRESH_WINDOW",
};

/* A clean slate for each chain test: no AWS_* variable, IMDS off, HOME empty. */
static void reset_env(void)
{
        char path[512];

        for (size_t i = 0; i < sizeof(chain_vars) / sizeof(chain_vars[0]); i++)
                unsetenv(chain_vars[i]);
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
        setenv("HOME", home, 1);
        snprintf(path, sizeof(path), "%s/.aws/credentials", home);
        (void)unlink(path);
        snprintf(path, sizeof(path), "%s/.aws/config", home);
        (void)unlink(path);
}

static void write_file(const char *rel, const char *text)
{
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", home, rel);
        f = fopen(path, "w");
        if (!CHECK(f != NULL))
                return;
        fputs(text, f);
        fclose(f);
}

/* ---- INI ---------------------------------------------------------------------------------- */

static const char ini[] =
        "\xef\xbb\xbf# a comment\n"
        "; another comment\n"
        "[default]\n"
        "aws_access_key_id = AKIDDEFAULT\n"
        "aws_secret_access_key=secret/default+1   # inline comment\n"
        "s3 =\n"
        "    addressing_style = path\n"
        "    aws_access_key_id = NESTED\n"
        "\n"
        "[ profile   dev ]  ; comment after the header\n"
        "  region = eu-west-1 ; comment\n"
        "  AWS_Session_Token = tok#not-a-comment\r\n"
        "  empty =\n"
        "[other]\n"
        "key = a=b\n"
        "key = last wins\n"
        "[broken\n"
        "aws_access_key_id = INBROKEN\n"
        "[default]\n"
        "later = yes\n";

static void test_ini_values(void)
{
        char out[64];

        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "default", "aws_access_key_id", out,
                                      sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "AKIDDEFAULT"); /* the nested s3 setting does not override it */
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "default", "aws_secret_access_key",
                                      out, sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "secret/default+1");
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "profile dev", "region", out,
                                      sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "eu-west-1");
        /* keys are case-insensitive; '#' without whitespace before it is data; CR trimmed */
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "profile dev", "aws_session_token",
                                      out, sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "tok#not-a-comment");
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "profile dev", "empty", out,
                                      sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "");
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "other", "key", out, sizeof(out)), 0);
        CHECK_STR_EQ(out, "last wins");
        /* a repeated section adds to the first */
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "default", "later", out, sizeof(out)),
                     0);
        CHECK_STR_EQ(out, "yes");
}

static void test_ini_misses(void)
{
        char out[8] = "keep";

        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "nope", "region", out, sizeof(out)),
                     -ESRCH);
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "dev", "region", out, sizeof(out)),
                     -ESRCH); /* "[profile dev]" is not "[dev]" */
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "other", "region", out, sizeof(out)),
                     -ENOENT);
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "default", "addressing_style", out,
                                      sizeof(out)),
                     -ENOENT); /* nested, not a key of [default] */
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "default", "aws_access_key_id", out,
                                      sizeof(out)),
                     -E2BIG);
        CHECK_STR_EQ(out, "keep"); /* untouched on failure */
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "profile dev", NULL, NULL, 0), 0);
        CHECK_INT_EQ(af_creds_ini_get("", 0, "default", NULL, NULL, 0), -ESRCH);
        /* A malformed header ends the section: its keys belong to nothing. */
        CHECK_INT_EQ(af_creds_ini_get(ini, strlen(ini), "broken", "aws_access_key_id", out,
                                      sizeof(out)),
                     -ESRCH);
        /* The length bounds the text: a key past it is not seen. */
        CHECK_INT_EQ(af_creds_ini_get(ini, 40, "default", "aws_access_key_id", out,
                                      sizeof(out)),
                     -ESRCH);
}

/* ---- times and the refresh decision -------------------------------------------------------- */

static void test_refresh_at(void)
{
        const time_t now = 1000000;

        CHECK_INT_EQ(af_creds_refresh_at(now, 0, 300), 0);
        /* an hour of life, 5 minutes of window */
        CHECK_INT_EQ(af_creds_refresh_at(now, now + 3600, 300), now + 3300);
        /* six minutes of life: one minute from now */
        CHECK_INT_EQ(af_creds_refresh_at(now, now + 360, 300), now + 60);
        /* shorter than the window: spaced out by the minimum interval, not at once */
        CHECK_INT_EQ(af_creds_refresh_at(now, now + 240, 300), now + AF_CREDS_MIN_INTERVAL);
        CHECK_INT_EQ(af_creds_refresh_at(now, now + 302, 300), now + AF_CREDS_MIN_INTERVAL);
        /* very short: halfway */
        CHECK_INT_EQ(af_creds_refresh_at(now, now + 6, 300), now + 3);
        /* already past: now */
        CHECK_INT_EQ(af_creds_refresh_at(now, now - 10, 300), now);
}

static void test_decide(void)
{
        const time_t now = 1000000;
        struct af_creds_clock c = { .have = true, .refreshable = true,
                                    .expiration = now + 3600, .refresh_at = now + 3300 };

        CHECK_INT_EQ(af_creds_decide(&c, now), AF_CREDS_USE);
        /* inside the window: refresh, or keep using while another thread does */
        CHECK_INT_EQ(af_creds_decide(&c, now + 3300), AF_CREDS_REFRESH);
        c.refreshing = true;
        CHECK_INT_EQ(af_creds_decide(&c, now + 3300), AF_CREDS_USE);
        /* expired (within the margin): wait for the refresher */
        CHECK_INT_EQ(af_creds_decide(&c, now + 3600 - AF_CREDS_EXPIRY_MARGIN), AF_CREDS_WAIT);
        c.refreshing = false;
        CHECK_INT_EQ(af_creds_decide(&c, now + 3600), AF_CREDS_REFRESH);
        /* a failed refresh: no new attempt before retry_at */
        c.retry_at = now + 3310;
        CHECK_INT_EQ(af_creds_decide(&c, now + 3305), AF_CREDS_USE);
        CHECK_INT_EQ(af_creds_decide(&c, now + 3310), AF_CREDS_REFRESH);
        c.expiration = now + 3300;
        CHECK_INT_EQ(af_creds_decide(&c, now + 3305), AF_CREDS_FAIL);
        /* invalidated: never handed out, refreshed at once */
        c = (struct af_creds_clock){ .have = true, .refreshable = true, .invalid = true };
        CHECK_INT_EQ(af_creds_decide(&c, now), AF_CREDS_REFRESH);
        c.refreshing = true;
        CHECK_INT_EQ(af_creds_decide(&c, now), AF_CREDS_WAIT);
        /* static credentials: used as they are, forever */
        c = (struct af_creds_clock){ .have = true };
        CHECK_INT_EQ(af_creds_decide(&c, now + 100000000), AF_CREDS_USE);
        c.have = false;
        CHECK_INT_EQ(af_creds_decide(&c, now), AF_CREDS_FAIL);
}

/* ---- endpoints ---------------------------------------------------------------------------- */

static void test_container_url(void)
{
        static const char *const ok[] = {
                "http://127.0.0.1:8080/creds", "http://127.1.2.3/x", "http://localhost:9/x",
                "http://[::1]:80/x", "http://169.254.170.2/v2", "http://169.254.170.23/v1/creds",
                "http://[fd00:ec2::23]/v1/creds", "https://creds.example.com/x",
        };
        static const char *const refused[] = {
                "http://169.254.169.254/latest", "http://10.0.0.1/x", "http://example.com/x",
                "http://127.0.0.1.evil.com/x", "http://user@127.0.0.1/x", "ftp://127.0.0.1/x",
                "http:///x", "http://[fd00:ec2::24]/x",
        };
        struct af_buf why;
        char out[256];

        af_buf_init(&why, 4096);
        CHECK_INT_EQ(af_creds_container_url("/v2/credentials/abc", "http://127.0.0.1/x", out,
                                            sizeof(out), &why),
                     0);
        CHECK_STR_EQ(out, "http://169.254.170.2/v2/credentials/abc"); /* relative wins */
        CHECK_INT_EQ(af_creds_container_url("v2", NULL, out, sizeof(out), &why), -EINVAL);
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                af_buf_reset(&why);
                if (!CHECK_INT_EQ(af_creds_container_url(NULL, ok[i], out, sizeof(out), &why),
                                  0) ||
                    !CHECK_STR_EQ(out, ok[i]))
                        fprintf(stderr, "    input: %s (%s)\n", ok[i], af_buf_str(&why));
        }
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                af_buf_reset(&why);
                if (!CHECK_INT_EQ(af_creds_container_url(NULL, refused[i], out, sizeof(out),
                                                         &why),
                                  -EINVAL))
                        fprintf(stderr, "    input: %s\n", refused[i]);
                CHECK(why.len > 0);
        }
        af_buf_reset(&why);
        CHECK_INT_EQ(af_creds_container_url(NULL, NULL, out, sizeof(out), &why), -ENOENT);
        CHECK(strstr(af_buf_str(&why), "not set") != NULL);
        CHECK_INT_EQ(af_creds_container_url(NULL, "http://127.0.0.1/a-long-path", out, 10,
                                            &why),
                     -E2BIG);
        af_buf_done(&why);
}

static void test_sts_url(void)
{
        char out[128];

        af_creds_sts_url(NULL, out, sizeof(out));
        CHECK_STR_EQ(out, "https://sts.amazonaws.com");
        af_creds_sts_url("", out, sizeof(out));
        CHECK_STR_EQ(out, "https://sts.amazonaws.com");
        af_creds_sts_url("us-west-2", out, sizeof(out));
        CHECK_STR_EQ(out, "https://sts.us-west-2.amazonaws.com");
        af_creds_sts_url("cn-north-1", out, sizeof(out));
        CHECK_STR_EQ(out, "https://sts.cn-north-1.amazonaws.com.cn");
        af_creds_sts_url("evil.com/x", out, sizeof(out));
        CHECK_STR_EQ(out, "https://sts.amazonaws.com");
}

/* ---- the chain ---------------------------------------------------------------------------- */

/* Runs the chain; returns init's result, with the source or the error line in @out. */
static int chain(const struct af_creds *explicit_creds, char *out, size_t n,
                 struct af_creds *ret)
{
        struct af_creds_provider p;
        struct af_buf err;
        int r;

        af_buf_init(&err, 8192);
        r = af_creds_provider_init(&p, explicit_creds, &err);
        if (r == 0) {
                struct af_creds c;

                r = af_creds_get(&p, &c);
                if (r == 0) {
                        snprintf(out, n, "%s", c.source);
                        if (ret)
                                *ret = c;
                }
                af_creds_provider_done(&p);
        } else {
                snprintf(out, n, "%s", af_buf_str(&err));
        }
        af_buf_done(&err);
        return r;
}

static void test_chain_order(void)
{
        struct af_creds ex, c;
        char out[4096], expect[512];

        reset_env();
        write_file(".aws/credentials", "[default]\naws_access_key_id = AKIDFILE\n"
                                       "aws_secret_access_key = sfile\n"
                                       "[dev]\naws_access_key_id = AKIDDEV\n"
                                       "aws_secret_access_key = sdev\n"
                                       "aws_session_token = tdev\n");
        write_file(".aws/config", "[default]\nregion = eu-central-1\n"
                                  "[profile cfg]\naws_access_key_id = AKIDCFG\n"
                                  "aws_secret_access_key = scfg\nregion = ap-south-1\n");
        setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "senv", 1);

        /* 1. explicit beats the environment */
        memset(&ex, 0, sizeof(ex));
        snprintf(ex.access_key, sizeof(ex.access_key), "AKIDFLAG");
        snprintf(ex.secret_key, sizeof(ex.secret_key), "sflag");
        CHECK_INT_EQ(chain(&ex, out, sizeof(out), &c), 0);
        CHECK_STR_EQ(out, "flags");
        CHECK_STR_EQ(c.access_key, "AKIDFLAG");
        /* 2. the environment beats the files */
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), &c), 0);
        CHECK_STR_EQ(out, "environment");
        CHECK_STR_EQ(c.access_key, "AKIDENV");
        CHECK_STR_EQ(c.session_token, "");
        CHECK_INT_EQ(c.expiration, 0);
        /* 3. then the files: [default] of the credentials file */
        setenv("AWS_ACCESS_KEY_ID", "", 1); /* empty counts as unset */
        unsetenv("AWS_SECRET_ACCESS_KEY");
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), &c), 0);
        snprintf(expect, sizeof(expect), "profile default (%s/.aws/credentials)", home);
        CHECK_STR_EQ(out, expect);
        CHECK_STR_EQ(c.access_key, "AKIDFILE");
        CHECK_STR_EQ(c.secret_key, "sfile");
        setenv("AWS_PROFILE", "dev", 1);
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), &c), 0);
        CHECK_STR_EQ(c.access_key, "AKIDDEV");
        CHECK_STR_EQ(c.session_token, "tdev");
        /* "[profile cfg]" in the config file */
        setenv("AWS_PROFILE", "cfg", 1);
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), &c), 0);
        snprintf(expect, sizeof(expect), "profile cfg (%s/.aws/config)", home);
        CHECK_STR_EQ(out, expect);
        CHECK_STR_EQ(c.access_key, "AKIDCFG");
        CHECK_INT_EQ(af_creds_profile_region(out, sizeof(out)), 0);
        CHECK_STR_EQ(out, "ap-south-1");
        unsetenv("AWS_PROFILE");
        CHECK_INT_EQ(af_creds_profile_region(out, sizeof(out)), 0);
        CHECK_STR_EQ(out, "eu-central-1");
        /* AWS_SHARED_CREDENTIALS_FILE with ~ */
        write_file("other-creds", "[default]\naws_access_key_id=AKIDOTHER\n"
                                  "aws_secret_access_key=sother\n");
        setenv("AWS_SHARED_CREDENTIALS_FILE", "~/other-creds", 1);
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), &c), 0);
        CHECK_STR_EQ(c.access_key, "AKIDOTHER");
        unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

static void test_chain_nothing(void)
{
        char out[4096], expect[4096];
        unsigned mark = test_state.failed;

        reset_env();
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), NULL), -ENOKEY);
        snprintf(expect, sizeof(expect),
                 "no AWS credentials: environment: AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY not set; shared files: no profile 'default' in "
                 "%s/.aws/credentials (missing) or %s/.aws/config (missing); web identity: "
                 "AWS_WEB_IDENTITY_TOKEN_FILE not set; container: "
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI "
                 "not set; IMDS: disabled by AWS_EC2_METADATA_DISABLED",
                 home, home);
        CHECK_STR_EQ(out, expect);

        /* A configured source that fails says why, and the chain goes on. */
        write_file("jwt", "eyJhbGciOi.token.sig\n");
        snprintf(expect, sizeof(expect), "%s/jwt", home);
        setenv("AWS_WEB_IDENTITY_TOKEN_FILE", expect, 1);
        setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/artifuse", 1);
        setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1);
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds", 1);
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), NULL), -ENOKEY);
        CHECK(strstr(out, "web identity: STS connection refused at http://127.0.0.1:1; "
                          "container: AWS_CONTAINER_CREDENTIALS_FULL_URI") != NULL);
        CHECK(strstr(out, "IMDS: disabled") != NULL);
        CHECK(strstr(out, "eyJhbGciOi") == NULL); /* never the token */
        if (test_state.failed != mark)
                fprintf(stderr, "    line: %s\n", out);
}

static void test_chain_stops(void)
{
        char out[4096];

        /* half a key pair in the environment is an error, not a reason to look elsewhere */
        reset_env();
        setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
        write_file(".aws/credentials",
                   "[default]\naws_access_key_id=A\naws_secret_access_key=B\n");
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), NULL), -EINVAL);
        CHECK(strstr(out, "only AWS_ACCESS_KEY_ID is") != NULL);
        /* a named profile that does not exist */
        unsetenv("AWS_ACCESS_KEY_ID");
        setenv("AWS_PROFILE", "nope", 1);
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), NULL), -EINVAL);
        CHECK(strstr(out, "no profile 'nope'") != NULL);
        /* a profile with half a pair */
        unsetenv("AWS_PROFILE");
        write_file(".aws/credentials", "[default]\naws_access_key_id=A\n");
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), NULL), -EINVAL);
        CHECK(strstr(out, "has aws_access_key_id but no aws_secret_access_key") != NULL);
        /* a role profile is named as unsupported, and the chain goes on */
        write_file(".aws/credentials", "[default]\nrole_arn = arn:aws:iam::1:role/r\n"
                                       "source_profile = base\n");
        CHECK_INT_EQ(chain(NULL, out, sizeof(out), NULL), -ENOKEY);
        CHECK(strstr(out, "shared files: profile 'default' assumes a role") != NULL);
        /* an explicit access key without a secret */
        {
                struct af_creds ex;

                memset(&ex, 0, sizeof(ex));
                snprintf(ex.access_key, sizeof(ex.access_key), "AKIDFLAG");
                CHECK_INT_EQ(chain(&ex, out, sizeof(out), NULL), -EINVAL);
        }
}

/* ---- credential_process and refresh --------------------------------------------------------- */

/*
 * A credential_process that hands out AKID<n>, n counting calls in a file, with Expiration
 * @exp_in seconds from now (or @exp as given when set).
 */
static void write_process_profile(long exp_in, const char *exp)
{
        char text[2048], when[32];
        time_t t = time(NULL) + exp_in;
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(text, sizeof(text),
                 "[profile proc]\n"
                 "credential_process = n=$(cat %s/count 2>/dev/null || echo 0); n=$((n+1)); "
                 "echo $n > %s/count; printf '{\"Version\": 1, \"AccessKeyId\": \"AKID%%s\", "
                 "\"SecretAccessKey\": \"s%%s\", \"SessionToken\": \"t\\\\/%%s\", "
                 "\"Expiration\": \"%s\"}' $n $n $n\n"
                 "[profile fails]\ncredential_process = echo oops; exit 3\n"
                 "[profile v2]\ncredential_process = echo '{\"Version\": 2}'\n",
                 home, home, exp ? exp : when);
        write_file(".aws/config", text);
        write_file("count", "0\n");
}

static int process_count(void)
{
        char path[512];
        int n = -1;
        FILE *f;

        snprintf(path, sizeof(path), "%s/count", home);
        f = fopen(path, "r");
        if (f) {
                if (fscanf(f, "%d", &n) != 1)
                        n = -1;
                fclose(f);
        }
        return n;
}

struct getter {
        struct af_creds_provider *p;
        int r;
        char key[128];
};

static void *get_thread(void *arg)
{
        struct getter *g = arg;
        struct af_creds c;

        g->r = af_creds_get(g->p, &c);
        if (g->r == 0)
                snprintf(g->key, sizeof(g->key), "%s", c.access_key);
        return NULL;
}

static void test_process_and_refresh(void)
{
        struct af_creds_provider p;
        struct af_creds a, b;
        struct af_buf err;
        struct getter g[8];
        pthread_t th[8];
        char out[512];

        reset_env();
        af_buf_init(&err, 8192);
        write_process_profile(3600, NULL);
        setenv("AWS_PROFILE", "proc", 1);
        if (!CHECK_INT_EQ(af_creds_provider_init(&p, NULL, &err), 0)) {
                fprintf(stderr, "    %s\n", af_buf_str(&err));
                goto out;
        }
        CHECK_INT_EQ(p.kind, AF_CREDS_PROCESS);
        CHECK_INT_EQ(af_creds_get(&p, &a), 0);
        CHECK_STR_EQ(a.access_key, "AKID1");
        CHECK_STR_EQ(a.session_token, "t/1");
        CHECK_STR_EQ(a.source, "profile proc (credential_process)");
        CHECK(a.expiration > time(NULL) + 3500);
        /* far from expiry: the same copy, no new run */
        CHECK_INT_EQ(af_creds_get(&p, &b), 0);
        CHECK_STR_EQ(b.access_key, "AKID1");
        CHECK_INT_EQ(process_count(), 1);
        /* invalidated: eight threads at once cause one run, and all get the new keys */
        af_creds_invalidate(&p, a.serial);
        for (int i = 0; i < 8; i++) {
                g[i] = (struct getter){ .p = &p };
                pthread_create(&th[i], NULL, get_thread, &g[i]);
        }
        for (int i = 0; i < 8; i++) {
                pthread_join(th[i], NULL);
                CHECK_INT_EQ(g[i].r, 0);
                CHECK_STR_EQ(g[i].key, "AKID2");
        }
        CHECK_INT_EQ(process_count(), 2);
        /* invalidating a stale copy changes nothing */
        af_creds_invalidate(&p, a.serial);
        CHECK_INT_EQ(af_creds_get(&p, &b), 0);
        CHECK_STR_EQ(b.access_key, "AKID2");
        CHECK_INT_EQ(process_count(), 2);
        /* a forced refresh */
        CHECK_INT_EQ(af_creds_refresh(&p, &err), 0);
        CHECK_INT_EQ(af_creds_get(&p, &b), 0);
        CHECK_STR_EQ(b.access_key, "AKID3");
        CHECK(b.serial > a.serial);
        /* describe names the source, never a secret */
        af_creds_describe(&b, out, sizeof(out));
        CHECK(strstr(out, "profile proc (credential_process), key AKID..., session token, "
                          "expires ") == out);
        CHECK(strstr(out, "s3") == NULL && strstr(out, "t/3") == NULL);
        af_creds_provider_done(&p);

        /* credentials that expired already are refused, with the reason */
        write_process_profile(-60, NULL);
        af_buf_reset(&err);
        CHECK_INT_EQ(af_creds_provider_init(&p, NULL, &err), -ENOKEY);
        CHECK(strstr(af_buf_str(&err), "already past") != NULL);
        /* failures of the process itself */
        setenv("AWS_PROFILE", "fails", 1);
        af_buf_reset(&err);
        CHECK_INT_EQ(af_creds_provider_init(&p, NULL, &err), -ENOKEY);
        CHECK(strstr(af_buf_str(&err), "credential_process of profile 'fails' exited with "
                                       "status 3") != NULL);
        setenv("AWS_PROFILE", "v2", 1);
        af_buf_reset(&err);
        CHECK_INT_EQ(af_creds_provider_init(&p, NULL, &err), -ENOKEY);
        CHECK(strstr(af_buf_str(&err), "\"Version\": 1") != NULL);
        /* static credentials cannot be refreshed */
        reset_env();
        setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "senv", 1);
        if (CHECK_INT_EQ(af_creds_provider_init(&p, NULL, &err), 0)) {
                CHECK_INT_EQ(af_creds_refresh(&p, NULL), -EOPNOTSUPP);
                af_creds_invalidate(&p, 0);
                CHECK_INT_EQ(af_creds_get(&p, &b), 0);
                CHECK_STR_EQ(b.access_key, "AKIDENV");
                af_creds_provider_done(&p);
        }
out:
        explicit_bzero(&a, sizeof(a));
        af_buf_done(&err);
}

static void test_refresh_window(void)
{
        struct af_creds_provider p;
        struct af_creds a;
        struct af_buf err;

        /* 60 s of life and a 58 s window: due after AF_CREDS_MIN_INTERVAL seconds */
        reset_env();
        af_buf_init(&err, 8192);
        write_process_profile(60, NULL);
        setenv("AWS_PROFILE", "proc", 1);
        setenv("ARTIFUSE_CREDS_REFRESH_WINDOW", "58", 1);
        if (!CHECK_INT_EQ(af_creds_provider_init(&p, NULL, &err), 0))
                goto out;
        CHECK_INT_EQ(p.window, 58);
        CHECK_INT_EQ(af_creds_get(&p, &a), 0);
        CHECK_STR_EQ(a.access_key, "AKID1");
        sleep(AF_CREDS_MIN_INTERVAL + 1);
        CHECK_INT_EQ(af_creds_get(&p, &a), 0);
        CHECK_STR_EQ(a.access_key, "AKID2");
        af_creds_provider_done(&p);
out:
        af_buf_done(&err);
}

static void rm_home(void)
{
        static const char *const files[] = { ".aws/credentials", ".aws/config", "other-creds",
                                             "jwt", "count" };
        char path[512];

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", home, files[i]);
                (void)unlink(path);
        }
        snprintf(path, sizeof(path), "%s/.aws", home);
        (void)rmdir(path);
        (void)rmdir(home);
}

int main(void)
{
        snprintf(home, sizeof(home), "/tmp/artifuse-test-creds.XXXXXX");
        if (!mkdtemp(home) || chdir(home) < 0 || mkdir(".aws", 0700) < 0) {
                perror(home);
                return 1;
        }
        reset_env();
        RUN(test_ini_values);
        RUN(test_ini_misses);
        RUN(test_refresh_at);
        RUN(test_decide);
        RUN(test_container_url);
        RUN(test_sts_url);
        RUN(test_chain_order);
        RUN(test_chain_nothing);
        RUN(test_chain_stops);
        RUN(test_process_and_refresh);
        RUN(test_refresh_window);
        rm_home();
        return test_summary();
}
