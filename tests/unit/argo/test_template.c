/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for template.c: the variable table, the "{{name}}" expander and af_key_clean().
 *
 * af_key_clean() is checked against a table of Go path.Clean results (argo.md §2.3: keys are
 * built with path.Join, which cleans), minus the leading "/" S3 keys do not have. The expected
 * values were derived by hand from path.Clean's documented rules:
 *   1. replace runs of "/" with one "/";  2. drop "." elements;
 *   3. drop each ".." with the non-".." element before it;
 *   4. drop ".." elements at the start of a rooted path;  an empty result is ".".
 * and then "." and a lone "/" map to "" and a leading "/" is dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "argo/template.h"
#include "test.h"

/* ---- helpers ---- */

static void vars_fixture(struct af_vars *v)
{
        af_vars_init(v);
        CHECK_INT_EQ(af_vars_set(v, "workflow.name", "wf-1", "--var", true), 0);
        CHECK_INT_EQ(af_vars_set(v, "pod.name", "pod-1", "--var", true), 0);
        CHECK_INT_EQ(af_vars_set(v, "workflow.parameters.x", "X", "spec", true), 0);
}

/* Expands @tmpl into a fresh buffer; checks success and the result. */
static void expect_expand(const struct af_vars *v, const char *tmpl, const char *want)
{
        struct af_template_error err;
        struct af_buf out;
        int r;

        memset(&err, 0, sizeof(err));
        af_buf_init(&out, 0);
        r = af_template_expand(tmpl, v, &out, &err);
        if (!CHECK_INT_EQ(r, 0))
                fprintf(stderr, "    template \"%s\": %s\n", tmpl, err.reason ? err.reason : "?");
        CHECK_STR_EQ(af_buf_str(&out), want);
        af_buf_done(&out);
}

/*
 * Expands @tmpl into a buffer that already holds "keep"; checks the error code, that the
 * buffer still holds exactly "keep", and returns the error for further checks.
 */
static void expect_fail(const struct af_vars *v, const char *tmpl, int want_r,
                        struct af_template_error *err)
{
        struct af_buf out;
        int r;

        memset(err, 0, sizeof(*err));
        af_buf_init(&out, 0);
        CHECK_INT_EQ(af_buf_adds(&out, "keep"), 0);
        r = af_template_expand(tmpl, v, &out, err);
        if (!CHECK_INT_EQ(r, want_r))
                fprintf(stderr, "    template \"%.80s\"\n", tmpl);
        CHECK_STR_EQ(af_buf_str(&out), "keep");
        CHECK_INT_EQ(out.len, 4);
        CHECK(err->reason != NULL);
        af_buf_done(&out);
}

static bool contains(const char *hay, const char *needle)
{
        return hay && strstr(hay, needle) != NULL;
}

/* ---- expansion ---- */

static void test_expand_forms(void)
{
        struct af_vars v;

        vars_fixture(&v);
        expect_expand(&v, "", "");
        expect_expand(&v, "plain/text-without.tags", "plain/text-without.tags");
        expect_expand(&v, "{{workflow.name}}", "wf-1");
        expect_expand(&v, "a/{{workflow.name}}/b", "a/wf-1/b");
        expect_expand(&v, "argo-workflows/{{workflow.name}}/{{pod.name}}",
                      "argo-workflows/wf-1/pod-1");
        expect_expand(&v, "{{workflow.name}}{{pod.name}}", "wf-1pod-1"); /* adjacent tags */
        expect_expand(&v, "{{pod.name}}{{pod.name}}/{{pod.name}}", "pod-1pod-1/pod-1");
        expect_expand(&v, "{{workflow.parameters.x}}.tgz", "X.tgz");
        /* Whitespace inside the braces is trimmed, as Argo does. */
        expect_expand(&v, "{{ pod.name }}", "pod-1");
        expect_expand(&v, "{{pod.name }}", "pod-1");
        expect_expand(&v, "{{   pod.name}}", "pod-1");
        expect_expand(&v, "{{\tpod.name\n}}", "pod-1");
        expect_expand(&v, " {{ pod.name }} ", " pod-1 "); /* outside the tag: kept */
        /* Single braces and stray closers are plain text. */
        expect_expand(&v, "{x}", "{x}");
        expect_expand(&v, "{pod.name}", "{pod.name}");
        expect_expand(&v, "{ {pod.name} }", "{ {pod.name} }");
        expect_expand(&v, "}}", "}}");
        expect_expand(&v, "a}}b", "a}}b");
        expect_expand(&v, "a}}b{{pod.name}}", "a}}bpod-1");
        expect_expand(&v, "{pod.name}}", "{pod.name}}");
        expect_expand(&v, "{{pod.name}}}", "pod-1}"); /* the first "}}" closes the tag */
        expect_expand(&v, "}{", "}{");
        af_vars_done(&v);
}

/* The result is appended to what the buffer already holds. */
static void test_expand_appends(void)
{
        struct af_template_error err;
        struct af_vars v;
        struct af_buf out;

        vars_fixture(&v);
        memset(&err, 0, sizeof(err));
        af_buf_init(&out, 0);
        CHECK_INT_EQ(af_buf_adds(&out, "pre:"), 0);
        CHECK_INT_EQ(af_template_expand("{{workflow.name}}/x", &v, &out, &err), 0);
        CHECK_STR_EQ(af_buf_str(&out), "pre:wf-1/x");
        af_buf_done(&out);
        af_vars_done(&v);
}

static void test_expand_unknown(void)
{
        struct af_template_error err;
        struct af_vars v;

        vars_fixture(&v);
        expect_fail(&v, "x/{{nope}}/y", -ENOENT, &err);
        CHECK_STR_EQ(err.var, "nope");
        CHECK_INT_EQ(err.offset, 2);
        CHECK(contains(err.reason, "unknown"));

        /* The reported name is the trimmed one. */
        expect_fail(&v, "{{ workflow.uid }}", -ENOENT, &err);
        CHECK_STR_EQ(err.var, "workflow.uid");
        CHECK_INT_EQ(err.offset, 0);

        /* Output written before the failing tag is taken back. */
        expect_fail(&v, "{{workflow.name}}/{{pod.name}}/{{inputs.parameters.p}}", -ENOENT, &err);
        CHECK_STR_EQ(err.var, "inputs.parameters.p");
        CHECK_INT_EQ(err.offset, 31);

        /* Names are exact: no prefix match, no case folding. */
        expect_fail(&v, "{{pod}}", -ENOENT, &err);
        CHECK_STR_EQ(err.var, "pod");
        expect_fail(&v, "{{Pod.Name}}", -ENOENT, &err);
        CHECK_STR_EQ(err.var, "Pod.Name");

        /* "{{{x}}": the tag runs from the first "{{" to the first "}}", so the name is "{x". */
        expect_fail(&v, "{{{pod.name}}}", -ENOENT, &err);
        CHECK_STR_EQ(err.var, "{pod.name");

        /* err may be NULL. */
        {
                struct af_buf out;

                af_buf_init(&out, 0);
                CHECK_INT_EQ(af_template_expand("{{nope}}", &v, &out, NULL), -ENOENT);
                CHECK_INT_EQ(af_template_expand("{{", &v, &out, NULL), -EINVAL);
                CHECK_STR_EQ(af_buf_str(&out), "");
                af_buf_done(&out);
        }
        af_vars_done(&v);
}

static void test_expand_syntax(void)
{
        struct af_template_error err;
        struct af_vars v;

        vars_fixture(&v);
        expect_fail(&v, "a/{{pod.name", -EINVAL, &err);
        CHECK_INT_EQ(err.offset, 2);
        CHECK(contains(err.reason, "unterminated"));
        expect_fail(&v, "{{pod.name}", -EINVAL, &err);
        CHECK(contains(err.reason, "unterminated"));
        expect_fail(&v, "{{", -EINVAL, &err);
        expect_fail(&v, "{{pod.name}}/{{", -EINVAL, &err); /* after a good tag */
        CHECK_INT_EQ(err.offset, 13);

        expect_fail(&v, "{{}}", -EINVAL, &err);
        CHECK_INT_EQ(err.offset, 0);
        expect_fail(&v, "x{{   }}", -EINVAL, &err);
        CHECK_INT_EQ(err.offset, 1);

        /* Expression tags are not evaluated. */
        expect_fail(&v, "{{=sprig.trim(workflow.name)}}", -EINVAL, &err);
        CHECK(contains(err.reason, "expression"));
        expect_fail(&v, "k/{{ =workflow.name }}", -EINVAL, &err);
        CHECK_INT_EQ(err.offset, 2);
        af_vars_done(&v);
}

static void test_expand_limits(void)
{
        struct af_template_error err;
        struct af_vars v;
        char *tmpl = malloc(AF_TEMPLATE_MAX + 2);
        char *val = malloc(AF_VAR_VALUE_MAX);
        char name[AF_VAR_NAME_MAX + 8];
        struct af_buf out;
        int r;

        if (!CHECK(tmpl && val)) {
                free(tmpl);
                free(val);
                return;
        }
        vars_fixture(&v);

        /* A template of exactly AF_TEMPLATE_MAX bytes is fine, one more is not. */
        memset(tmpl, 'a', AF_TEMPLATE_MAX);
        tmpl[AF_TEMPLATE_MAX] = '\0';
        memset(&err, 0, sizeof(err));
        af_buf_init(&out, 0);
        CHECK_INT_EQ(af_template_expand(tmpl, &v, &out, &err), 0);
        CHECK_INT_EQ(out.len, AF_TEMPLATE_MAX);
        af_buf_done(&out);
        tmpl[AF_TEMPLATE_MAX] = 'a';
        tmpl[AF_TEMPLATE_MAX + 1] = '\0';
        expect_fail(&v, tmpl, -E2BIG, &err);

        /* The expansion has the same limit: two 2048-byte values fit, 2049 do not. */
        memset(val, 'v', 2048);
        val[2048] = '\0';
        CHECK_INT_EQ(af_vars_set(&v, "big", val, "test", true), 0);
        af_buf_init(&out, 0);
        CHECK_INT_EQ(af_template_expand("{{big}}{{big}}", &v, &out, &err), 0);
        CHECK_INT_EQ(out.len, 4096);
        af_buf_done(&out);
        val[2048] = 'v';
        val[2049] = '\0';
        CHECK_INT_EQ(af_vars_set(&v, "big", val, "test", true), 0);
        expect_fail(&v, "{{big}}{{big}}", -E2BIG, &err);
        memset(val, 'v', AF_VAR_VALUE_MAX - 1);
        val[AF_VAR_VALUE_MAX - 1] = '\0';
        CHECK_INT_EQ(af_vars_set(&v, "big", val, "test", true), 0);
        expect_fail(&v, "a/{{big}}/{{big}}/b", -E2BIG, &err);

        /* The output buffer's own cap is honoured too, and the buffer is left unchanged. */
        af_buf_init(&out, 8);
        CHECK_INT_EQ(af_buf_adds(&out, "ab"), 0);
        r = af_template_expand("{{workflow.name}}/{{pod.name}}", &v, &out, &err);
        CHECK_INT_EQ(r, -E2BIG);
        CHECK_STR_EQ(af_buf_str(&out), "ab");
        af_buf_done(&out);

        /* A tag whose name cannot be a variable (too long) is an error, not a crash. */
        memset(name, 'n', AF_VAR_NAME_MAX + 2);
        name[AF_VAR_NAME_MAX + 2] = '\0';
        snprintf(tmpl, AF_TEMPLATE_MAX, "{{%s}}", name);
        {
                struct af_buf o;

                af_buf_init(&o, 0);
                memset(&err, 0, sizeof(err));
                r = af_template_expand(tmpl, &v, &o, &err);
                CHECK(r == -EINVAL || r == -ENOENT);
                CHECK_STR_EQ(af_buf_str(&o), "");
                CHECK(strlen(err.var) < AF_VAR_NAME_MAX);
                af_buf_done(&o);
        }
        af_vars_done(&v);
        free(tmpl);
        free(val);
}

/*
 * "fills @err" on every error: an error struct reused from an earlier failure must not keep
 * the earlier reason and variable when the new failure is a -E2BIG from the output's cap.
 * (A caller that did not zero @err would otherwise read an uninitialised reason.)
 */
static void test_expand_err_reused(void)
{
        struct af_template_error err;
        struct af_vars v;
        struct af_buf out;

        vars_fixture(&v);
        memset(&err, 0, sizeof(err));
        af_buf_init(&out, 4);
        CHECK_INT_EQ(af_template_expand("{{nope}}", &v, &out, &err), -ENOENT);
        CHECK_STR_EQ(err.var, "nope");
        CHECK_INT_EQ(af_template_expand("{{workflow.name}}/{{pod.name}}", &v, &out, &err),
                     -E2BIG);
        CHECK(err.reason && !contains(err.reason, "unknown"));
        CHECK_STR_EQ(err.var, "");
        CHECK_STR_EQ(af_buf_str(&out), "");
        af_buf_done(&out);
        af_vars_done(&v);
}

/* ---- the variable table ---- */

static void test_vars_set(void)
{
        struct af_vars v;
        const struct af_var *x;
        char big[AF_VAR_VALUE_MAX + 1];

        af_vars_init(&v);
        CHECK(af_vars_get(&v, "a") == NULL);
        CHECK_INT_EQ(af_vars_set(&v, "a", "1", "first", true), 0);
        x = af_vars_get(&v, "a");
        if (CHECK(x != NULL)) {
                CHECK_STR_EQ(x->name, "a");
                CHECK_STR_EQ(x->value, "1");
                CHECK_STR_EQ(x->source, "first");
        }
        /* replace false keeps the existing value and its source. */
        CHECK_INT_EQ(af_vars_set(&v, "a", "2", "second", false), 0);
        x = af_vars_get(&v, "a");
        if (CHECK(x != NULL)) {
                CHECK_STR_EQ(x->value, "1");
                CHECK_STR_EQ(x->source, "first");
        }
        /* replace true overwrites both, without adding a second entry. */
        CHECK_INT_EQ(af_vars_set(&v, "a", "3", "third", true), 0);
        x = af_vars_get(&v, "a");
        if (CHECK(x != NULL)) {
                CHECK_STR_EQ(x->value, "3");
                CHECK_STR_EQ(x->source, "third");
        }
        CHECK_INT_EQ(v.n, 1);
        /* replace false on a new name sets it. */
        CHECK_INT_EQ(af_vars_set(&v, "b", "B", NULL, false), 0);
        x = af_vars_get(&v, "b");
        if (CHECK(x != NULL)) {
                CHECK_STR_EQ(x->value, "B");
                CHECK_STR_EQ(x->source, ""); /* NULL source: "" */
        }
        CHECK(af_vars_get(&v, "A") == NULL); /* case-sensitive */

        /* Bad names and values. */
        CHECK_INT_EQ(af_vars_set(&v, "", "x", "s", true), -EINVAL);
        memset(big, 'n', sizeof(big));
        big[AF_VAR_NAME_MAX] = '\0';
        CHECK_INT_EQ(af_vars_set(&v, big, "x", "s", true), -EINVAL);
        big[AF_VAR_NAME_MAX - 1] = '\0';
        CHECK_INT_EQ(af_vars_set(&v, big, "x", "s", true), 0); /* 255 bytes: fits */
        memset(big, 'v', sizeof(big));
        big[AF_VAR_VALUE_MAX] = '\0';
        CHECK_INT_EQ(af_vars_set(&v, "c", big, "s", true), -EINVAL);
        CHECK(af_vars_get(&v, "c") == NULL);
        big[AF_VAR_VALUE_MAX - 1] = '\0';
        CHECK_INT_EQ(af_vars_set(&v, "c", big, "s", true), 0); /* 4095 bytes: fits */
        /* A rejected replacement keeps the old value. */
        big[AF_VAR_VALUE_MAX - 1] = 'v';
        CHECK_INT_EQ(af_vars_set(&v, "a", big, "s", true), -EINVAL);
        x = af_vars_get(&v, "a");
        if (CHECK(x != NULL))
                CHECK_STR_EQ(x->value, "3");
        af_vars_done(&v);
        CHECK_INT_EQ(v.n, 0);
        CHECK(af_vars_get(&v, "a") == NULL);
}

/* Many variables: the table grows and every entry stays reachable. */
static void test_vars_many(void)
{
        struct af_vars v;
        char name[32], value[32];
        int i, bad = 0;

        af_vars_init(&v);
        for (i = 0; i < 200; i++) {
                snprintf(name, sizeof(name), "workflow.labels.l%d", i);
                snprintf(value, sizeof(value), "v%d", i);
                if (af_vars_set(&v, name, value, "spec", true) < 0)
                        bad++;
        }
        CHECK_INT_EQ(bad, 0);
        CHECK_INT_EQ(v.n, 200);
        for (i = 0; i < 200; i++) {
                const struct af_var *x;

                snprintf(name, sizeof(name), "workflow.labels.l%d", i);
                snprintf(value, sizeof(value), "v%d", i);
                x = af_vars_get(&v, name);
                if (!x || strcmp(x->value, value) != 0)
                        bad++;
        }
        CHECK_INT_EQ(bad, 0);
        af_vars_done(&v);
}

static void test_vars_assignment(void)
{
        struct af_vars v;
        const struct af_var *x;

        af_vars_init(&v);
        CHECK_INT_EQ(af_vars_set_assignment(&v, "a=b=c", "--var"), 0);
        x = af_vars_get(&v, "a");
        if (CHECK(x != NULL)) {
                CHECK_STR_EQ(x->value, "b=c");
                CHECK_STR_EQ(x->source, "--var");
        }
        CHECK(af_vars_get(&v, "a=b") == NULL);
        CHECK_INT_EQ(af_vars_set_assignment(&v, "workflow.name=my wf", "--var"), 0);
        x = af_vars_get(&v, "workflow.name");
        if (CHECK(x != NULL))
                CHECK_STR_EQ(x->value, "my wf");
        /* An assignment replaces. */
        CHECK_INT_EQ(af_vars_set_assignment(&v, "a=new", "config"), 0);
        x = af_vars_get(&v, "a");
        if (CHECK(x != NULL)) {
                CHECK_STR_EQ(x->value, "new");
                CHECK_STR_EQ(x->source, "config");
        }
        CHECK_INT_EQ(af_vars_set_assignment(&v, "=x", "--var"), -EINVAL);
        CHECK_INT_EQ(af_vars_set_assignment(&v, "noequals", "--var"), -EINVAL);
        CHECK_INT_EQ(af_vars_set_assignment(&v, "", "--var"), -EINVAL);
        CHECK_INT_EQ(af_vars_set_assignment(&v, "=", "--var"), -EINVAL);
        CHECK_INT_EQ(v.n, 2);
        {
                char big[AF_VAR_NAME_MAX + 8];

                memset(big, 'n', sizeof(big));
                big[AF_VAR_NAME_MAX] = '=';
                big[AF_VAR_NAME_MAX + 1] = 'x';
                big[AF_VAR_NAME_MAX + 2] = '\0';
                CHECK_INT_EQ(af_vars_set_assignment(&v, big, "--var"), -EINVAL);
        }
        af_vars_done(&v);
}

static void test_vars_from_env(void)
{
        struct af_vars v;
        const struct af_var *x;

        CHECK_STR_EQ(af_vars_env_name("workflow.name"), "ARGO_WORKFLOW_NAME");
        CHECK_STR_EQ(af_vars_env_name("pod.name"), "ARGO_POD_NAME");
        CHECK_STR_EQ(af_vars_env_name("workflow.uid"), "ARGO_WORKFLOW_UID");
        CHECK(af_vars_env_name("workflow.namespace") == NULL);
        CHECK(af_vars_env_name("") == NULL);

        setenv("ARGO_WORKFLOW_NAME", "wf-env", 1);
        setenv("ARGO_POD_NAME", "pod-env", 1);
        setenv("ARGO_WORKFLOW_UID", "uid-env", 1);
        af_vars_init(&v);
        CHECK_INT_EQ(af_vars_set(&v, "workflow.name", "wf-var", "--var", true), 0);
        CHECK_INT_EQ(af_vars_from_env(&v), 0);
        x = af_vars_get(&v, "workflow.name");
        if (CHECK(x != NULL)) { /* not overridden */
                CHECK_STR_EQ(x->value, "wf-var");
                CHECK_STR_EQ(x->source, "--var");
        }
        x = af_vars_get(&v, "pod.name");
        if (CHECK(x != NULL)) {
                CHECK_STR_EQ(x->value, "pod-env");
                CHECK_STR_EQ(x->source, "env ARGO_POD_NAME");
        }
        x = af_vars_get(&v, "workflow.uid");
        if (CHECK(x != NULL)) {
                CHECK_STR_EQ(x->value, "uid-env");
                CHECK_STR_EQ(x->source, "env ARGO_WORKFLOW_UID");
        }
        CHECK_INT_EQ(v.n, 3);
        af_vars_done(&v);

        /* Unset and empty environment variables set nothing. */
        unsetenv("ARGO_WORKFLOW_NAME");
        setenv("ARGO_POD_NAME", "", 1);
        af_vars_init(&v);
        CHECK_INT_EQ(af_vars_from_env(&v), 0);
        CHECK(af_vars_get(&v, "workflow.name") == NULL);
        CHECK(af_vars_get(&v, "pod.name") == NULL);
        x = af_vars_get(&v, "workflow.uid");
        if (CHECK(x != NULL))
                CHECK_STR_EQ(x->source, "env ARGO_WORKFLOW_UID");
        CHECK_INT_EQ(v.n, 1);
        af_vars_done(&v);
        unsetenv("ARGO_POD_NAME");
        unsetenv("ARGO_WORKFLOW_UID");
}

/* ---- af_key_clean ---- */

static const struct {
        const char *in, *want;
} clean_cases[] = {
        /* empty and root-only: Go gives "." or "/", a key gets "" */
        { "", "" },
        { ".", "" },
        { "./", "" },
        { "/", "" },
        { "///", "" },
        { "/./", "" },
        { "/.", "" },
        { "a/..", "" },       /* Go "." */
        { "/a/..", "" },      /* Go "/" */
        { "/..", "" },        /* Go "/": ".." at the root is dropped */
        /* already clean */
        { "a", "a" },
        { "a/b", "a/b" },
        { "argo-workflows/wf-1/pod-1/hello.txt", "argo-workflows/wf-1/pod-1/hello.txt" },
        /* slashes */
        { "a/", "a" },
        { "a//b", "a/b" },
        { "/a/b/", "a/b" },
        { "//a//b//", "a/b" },
        { "a///b////c", "a/b/c" },
        /* "." */
        { "a/./b", "a/b" },
        { "./a", "a" },
        { "a/b/./.", "a/b" },
        { "a/./../b", "b" },
        /* ".." */
        { "a/b/../c", "a/c" },
        { "a/b/..", "a" },
        { "a/b/../", "a" },
        { "abc/def/ghi/../jkl", "abc/def/jkl" },
        { "..", ".." },
        { "../..", "../.." },
        { "../a", "../a" },
        { "..//a", "../a" },
        { "./../a", "../a" },
        { "/../a", "a" },     /* Go "/a" */
        { "/../../x", "x" },  /* Go "/x" */
        { "/a/../../b", "b" }, /* Go "/b" */
        { "a/../..", ".." },
        { "a/b/../../..", ".." },
        { "a/b/c/../../../..", ".." },
        { "x/../../y", "../y" },
        { "../a/../..", "../.." },   /* the leading ".." cannot be eaten by a later ".." */
        { "../../a/../b", "../../b" },
        { "abc/../../././../def", "../../def" },
        { "/abc/../../././../def", "def" }, /* Go "/def" */
        { "abc//./../def", "def" },
        /* names that merely contain dots are names */
        { "...", "..." },
        { ".../a", ".../a" },
        { "a/..b", "a/..b" },
        { "a/b..", "a/b.." },
        { ".a/.b/c.", ".a/.b/c." },
        { "a/.../..", "a" },
        /* everything else is opaque text */
        { "a b/ c /d", "a b/ c /d" },
        { "{{x}}//y/", "{{x}}/y" },
        { "k\\x/y", "k\\x/y" },
};

static void test_key_clean_table(void)
{
        for (size_t i = 0; i < sizeof(clean_cases) / sizeof(clean_cases[0]); i++) {
                unsigned mark = test_state.failed;
                struct af_buf out;

                af_buf_init(&out, 0);
                CHECK_INT_EQ(af_key_clean(clean_cases[i].in, &out), 0);
                CHECK_STR_EQ(af_buf_str(&out), clean_cases[i].want);
                if (test_state.failed != mark)
                        fprintf(stderr, "    input \"%s\"\n", clean_cases[i].in);
                af_buf_done(&out);
        }
}

/* The cleaned key is appended; ".." never eats into what the buffer held before. */
static void test_key_clean_appends(void)
{
        struct af_buf out;

        af_buf_init(&out, 0);
        CHECK_INT_EQ(af_buf_adds(&out, "x/y:"), 0);
        CHECK_INT_EQ(af_key_clean("/a//b/", &out), 0);
        CHECK_STR_EQ(af_buf_str(&out), "x/y:a/b");
        af_buf_reset(&out);
        CHECK_INT_EQ(af_buf_adds(&out, "x/y/"), 0);
        CHECK_INT_EQ(af_key_clean("a/../..", &out), 0);
        CHECK_STR_EQ(af_buf_str(&out), "x/y/..");
        af_buf_reset(&out);
        CHECK_INT_EQ(af_buf_adds(&out, "x/y/"), 0);
        CHECK_INT_EQ(af_key_clean("a/b/../../c", &out), 0);
        CHECK_STR_EQ(af_buf_str(&out), "x/y/c");
        af_buf_reset(&out);
        CHECK_INT_EQ(af_buf_adds(&out, "p"), 0);
        CHECK_INT_EQ(af_key_clean("/..", &out), 0);
        CHECK_STR_EQ(af_buf_str(&out), "p");
        af_buf_done(&out);
}

/* Past the output's cap: -E2BIG and the buffer as it was. */
static void test_key_clean_cap(void)
{
        struct af_buf out;

        af_buf_init(&out, 6);
        CHECK_INT_EQ(af_buf_adds(&out, "k:"), 0);
        CHECK_INT_EQ(af_key_clean("abc/def", &out), -E2BIG);
        CHECK_STR_EQ(af_buf_str(&out), "k:");
        CHECK_INT_EQ(af_key_clean("ab/..//cd/", &out), 0); /* "cd" fits */
        CHECK_STR_EQ(af_buf_str(&out), "k:cd");
        CHECK_INT_EQ(af_key_clean("../..", &out), -E2BIG);
        CHECK_STR_EQ(af_buf_str(&out), "k:cd");
        af_buf_done(&out);
}

int main(void)
{
        unsetenv("ARGO_WORKFLOW_NAME");
        unsetenv("ARGO_POD_NAME");
        unsetenv("ARGO_WORKFLOW_UID");

        RUN(test_expand_forms);
        RUN(test_expand_appends);
        RUN(test_expand_unknown);
        RUN(test_expand_syntax);
        RUN(test_expand_limits);
        RUN(test_expand_err_reused);
        RUN(test_vars_set);
        RUN(test_vars_many);
        RUN(test_vars_assignment);
        RUN(test_vars_from_env);
        RUN(test_key_clean_table);
        RUN(test_key_clean_appends);
        RUN(test_key_clean_cap);
        return test_summary();
}
