/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for router.c: path in the mount -> bucket and key (argo.md §2.3-2.4).
 *
 * Specs are written as YAML in the test and parsed with af_spec_parse(), so each case reads
 * like the workflow a user would write; spec.c has its own tests. The variables are the
 * seed's: workflow.name = wf-1, pod.name = pod-1.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "argo/router.h"
#include "argo/spec.h"
#include "argo/template.h"
#include "test.h"

#define SEED_BUCKET "my-argo-artifacts-bucket"
#define SEED_FORMAT "argo-workflows/{{workflow.name}}/{{pod.name}}"
#define SEED_PREFIX "argo-workflows/wf-1/pod-1"
#define SEED_ARTIFACTS "[{name: hello-artifact, path: /tmp/hello.txt}]"

/* ---- helpers ---- */

static struct af_vars vars;

static void vars_setup(void)
{
        af_vars_init(&vars);
        CHECK_INT_EQ(af_vars_set(&vars, "workflow.name", "wf-1", "--var", true), 0);
        CHECK_INT_EQ(af_vars_set(&vars, "pod.name", "pod-1", "--var", true), 0);
}

/* Parses a one-template workflow whose outputs.artifacts is @artifacts (a YAML flow list). */
static bool spec_from(const char *artifacts, struct af_spec *spec)
{
        struct af_buf y, err;
        int r;

        af_buf_init(&y, 0);
        af_buf_init(&err, 0);
        (void)af_buf_addf(&y,
                          "kind: Workflow\n"
                          "metadata: {name: wf-1}\n"
                          "spec:\n"
                          "  entrypoint: main\n"
                          "  templates:\n"
                          "  - name: main\n"
                          "    container: {image: alpine}\n"
                          "    outputs: {artifacts: %s}\n",
                          artifacts);
        r = af_spec_parse(y.ptr, y.len, "test.yaml", NULL, spec, &err);
        if (!CHECK_INT_EQ(r, 0))
                fprintf(stderr, "    %s\n", af_buf_str(&err));
        af_buf_done(&y);
        af_buf_done(&err);
        return r == 0;
}

struct setup {
        const char *bucket;
        const char *key_format;
        const char *mount_as;
        const char *artifacts; /* NULL: no spec */
        enum af_unmatched unmatched;
        enum af_archive archive_default;
        const char *endpoint;
        bool strict_paths;
};

/* Builds a router from @s; returns af_router_init()'s result, its error text in @err. */
static int build(const struct setup *s, struct af_router *r, struct af_buf *err)
{
        struct af_router_config cfg = {
                .bucket = s->bucket ? s->bucket : SEED_BUCKET,
                .key_format = s->key_format,
                .mount_as = s->mount_as,
                .archive_default = s->archive_default,
                .unmatched = s->unmatched,
                .endpoint = s->endpoint,
                .strict_paths = s->strict_paths,
        };
        struct af_spec spec;
        int ret;

        memset(r, 0, sizeof(*r));
        if (s->artifacts && !spec_from(s->artifacts, &spec))
                return -EBADMSG;
        ret = af_router_init(r, &cfg, s->artifacts ? &spec : NULL, &vars, err);
        if (s->artifacts)
                af_spec_done(&spec);
        return ret;
}

/* Like build(), for setups that must succeed. */
static bool build_ok(const struct setup *s, struct af_router *r)
{
        struct af_buf err;
        int ret;

        af_buf_init(&err, 0);
        ret = build(s, r, &err);
        if (!CHECK_INT_EQ(ret, 0))
                fprintf(stderr, "    %s\n", af_buf_str(&err));
        af_buf_done(&err);
        return ret == 0;
}

/* @relpath must be uploaded to @key in the router's bucket, as artifact @artifact (or NULL). */
static void expect_route(const struct af_router *r, const char *relpath, const char *key,
                         const char *artifact)
{
        struct af_route rt;
        int rc;

        memset(&rt, 0, sizeof(rt));
        af_buf_init(&rt.key, 0);
        rc = af_router_route(r, relpath, &rt);
        if (!CHECK_INT_EQ(rc, 1)) {
                fprintf(stderr, "    relpath \"%s\"\n", relpath);
        } else {
                CHECK_STR_EQ(af_buf_str(&rt.key), key);
                CHECK_STR_EQ(rt.bucket, r->bucket);
                if (artifact) {
                        if (CHECK(rt.artifact != NULL))
                                CHECK_STR_EQ(rt.artifact->name, artifact);
                } else {
                        CHECK(rt.artifact == NULL);
                }
        }
        af_buf_done(&rt.key);
}

static void expect_ignored(const struct af_router *r, const char *relpath)
{
        struct af_route rt;
        int rc;

        memset(&rt, 0, sizeof(rt));
        af_buf_init(&rt.key, 0);
        rc = af_router_route(r, relpath, &rt);
        if (!CHECK_INT_EQ(rc, 0))
                fprintf(stderr, "    relpath \"%s\" got key \"%s\"\n", relpath,
                        af_buf_str(&rt.key));
        af_buf_done(&rt.key);
}

static int route_rc(const struct af_router *r, const char *relpath)
{
        struct af_route rt;
        int rc;

        memset(&rt, 0, sizeof(rt));
        af_buf_init(&rt.key, 0);
        rc = af_router_route(r, relpath, &rt);
        af_buf_done(&rt.key);
        return rc;
}

static bool contains(const struct af_buf *b, const char *needle)
{
        if (strstr(af_buf_str(b), needle))
                return true;
        fprintf(stderr, "    \"%s\"\n    lacks \"%s\"\n", af_buf_str(b), needle);
        return false;
}

/* ---- the seed and file artifacts ---- */

static void test_seed(void)
{
        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                           .artifacts = SEED_ARTIFACTS };
        struct af_router r;

        if (!build_ok(&s, &r))
                return;
        CHECK_STR_EQ(r.bucket, SEED_BUCKET);
        CHECK_STR_EQ(r.prefix, SEED_PREFIX);
        CHECK(!r.upload_unmatched); /* auto + a spec with artifacts: ignore */
        if (CHECK_INT_EQ(r.narts, 1)) {
                CHECK_STR_EQ(r.arts[0].name, "hello-artifact");
                CHECK_STR_EQ(r.arts[0].path, "/tmp/hello.txt");
                CHECK_STR_EQ(r.arts[0].rel, "hello.txt");
                CHECK_STR_EQ(r.arts[0].base, "hello.txt");
                CHECK(r.arts[0].key == NULL);
                CHECK_INT_EQ(r.arts[0].archive, AF_ARCHIVE_NONE); /* default -> none */
        }
        expect_route(&r, "hello.txt", SEED_PREFIX "/hello.txt", "hello-artifact");
        /* Not artifacts: ignored. */
        expect_ignored(&r, "other.txt");
        expect_ignored(&r, "sub/hello.txt");
        expect_ignored(&r, "sub/dir/file.txt");
        expect_ignored(&r, "hello.txt.swp");
        expect_ignored(&r, "hello.tx");
        expect_ignored(&r, ".hello.txt");
        af_router_done(&r);
        CHECK(r.arts == NULL && r.narts == 0 && r.prefix == NULL);
}

/* The route's key buffer is overwritten, not appended to, and may be reused. */
static void test_route_reuses_key(void)
{
        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                           .unmatched = AF_UNMATCHED_UPLOAD, .artifacts = SEED_ARTIFACTS };
        struct af_router r;
        struct af_route rt;

        if (!build_ok(&s, &r))
                return;
        af_buf_init(&rt.key, 0);
        CHECK_INT_EQ(af_buf_adds(&rt.key, "garbage"), 0);
        CHECK_INT_EQ(af_router_route(&r, "hello.txt", &rt), 1);
        CHECK_STR_EQ(af_buf_str(&rt.key), SEED_PREFIX "/hello.txt");
        CHECK_INT_EQ(af_router_route(&r, "a/b", &rt), 1);
        CHECK_STR_EQ(af_buf_str(&rt.key), SEED_PREFIX "/a/b");
        CHECK(rt.artifact == NULL);
        af_buf_done(&rt.key);
        af_router_done(&r);
}

/* Several file artifacts, the path as written (trailing "/", "..") cleaned for matching. */
static void test_file_artifacts(void)
{
        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                           .artifacts = "[{name: a, path: /tmp/a.txt},"
                                        " {name: b, path: /tmp/sub/b.txt},"
                                        " {name: c, path: /tmp/x/../x//c.txt},"
                                        " {name: outside, path: /etc/passwd}]" };
        struct af_router r;

        if (!build_ok(&s, &r))
                return;
        expect_route(&r, "a.txt", SEED_PREFIX "/a.txt", "a");
        /* Argo keys a file by its basename: the subdirectory is not part of the key. */
        expect_route(&r, "sub/b.txt", SEED_PREFIX "/b.txt", "b");
        /* A ".." that stays inside the directory before it is cleaned away. */
        expect_route(&r, "x/c.txt", SEED_PREFIX "/c.txt", "c");
        expect_ignored(&r, "c.txt");
        expect_ignored(&r, "b.txt");
        if (CHECK_INT_EQ(r.narts, 4))
                CHECK(r.arts[3].rel == NULL); /* /etc/passwd is outside /tmp */
        expect_ignored(&r, "etc/passwd");
        expect_ignored(&r, "../etc/passwd");
        af_router_done(&r);
}

/* Argo's Artifact.CleanPath (pkg/apis/workflow/v1alpha1/workflow_types.go): a ".." that
 * leaves the directory before it is "Directory traversal is not permitted", at start-up,
 * with the artifact's name and where its path is written. */
static void test_path_traversal(void)
{
        static const char *const bad[] = { "/tmp/../etc/passwd", "/tmp//x/../c.txt",
                                           "/tmp/a/..", "/tmp/a/b/../../c" };
        static const char *const good[] = { "/tmp/a/../a/b", "/tmp/x..y/c", "/tmp/..a/b",
                                            "/../tmp/a" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char arts[256];
                struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                                   .artifacts = arts };
                struct af_router r;
                struct af_buf err;

                snprintf(arts, sizeof(arts), "[{name: evil, path: '%s'}]", bad[i]);
                af_buf_init(&err, 0);
                CHECK_INT_EQ(build(&s, &r, &err), -EINVAL);
                CHECK(contains(&err, "artifact 'evil' attempted to use a path containing '..'"));
                CHECK(contains(&err, "Directory traversal is not permitted"));
                CHECK(contains(&err, "test.yaml:8:"));
                af_buf_done(&err);
        }
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                char arts[256];
                struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/",
                                   .artifacts = arts };
                struct af_router r;

                snprintf(arts, sizeof(arts), "[{name: fine, path: '%s'}]", good[i]);
                if (build_ok(&s, &r))
                        af_router_done(&r);
        }
}

/* ---- directory artifacts ---- */

static void test_directory_artifact(void)
{
        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                           .artifacts = "[{name: out, path: /tmp/outdir, archive: {none: {}}},"
                                        " {name: slash, path: /tmp/slashdir/}]" };
        struct af_router r;

        if (!build_ok(&s, &r))
                return;
        expect_route(&r, "outdir/a/b.txt", SEED_PREFIX "/outdir/a/b.txt", "out");
        expect_route(&r, "outdir/f", SEED_PREFIX "/outdir/f", "out");
        expect_route(&r, "outdir", SEED_PREFIX "/outdir", "out"); /* the path itself */
        /* A sibling sharing the prefix is not inside the directory. */
        expect_ignored(&r, "outdirx/f");
        expect_ignored(&r, "outdirx");
        expect_ignored(&r, "outdi");
        expect_ignored(&r, "out/outdir/f");
        /* A trailing "/" in the spec's path does not change the directory's name. */
        if (CHECK_INT_EQ(r.narts, 2)) {
                CHECK_STR_EQ(r.arts[1].rel, "slashdir");
                CHECK_STR_EQ(r.arts[1].base, "slashdir");
        }
        expect_route(&r, "slashdir/deep/er/f.bin", SEED_PREFIX "/slashdir/deep/er/f.bin", "slash");
        af_router_done(&r);
}

/* An artifact whose path is the mount itself takes every file, under its basename. */
static void test_artifact_is_mount(void)
{
        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                           .artifacts = "[{name: all, path: /tmp}]" };
        struct af_router r;

        if (!build_ok(&s, &r))
                return;
        if (CHECK_INT_EQ(r.narts, 1))
                CHECK_STR_EQ(r.arts[0].rel, "");
        expect_route(&r, "x.txt", SEED_PREFIX "/tmp/x.txt", "all");
        expect_route(&r, "a/b/c", SEED_PREFIX "/tmp/a/b/c", "all");
        af_router_done(&r);
}

/* ---- s3.key ---- */

static void test_s3_key(void)
{
        struct setup s = {
                .key_format = SEED_FORMAT, .mount_as = "/tmp",
                .artifacts = "[{name: keyed, path: /tmp/sub/x.txt,"
                             "   s3: {key: 'custom/{{workflow.name}}/x.tgz'}},"
                             " {name: keyed-dir, path: /tmp/kd, s3: {key: 'dirs/{{pod.name}}/'}},"
                             " {name: raw, path: /tmp/raw.txt, s3: {key: 'k//{{pod.name}}.bin'}}]",
        };
        struct af_router r;

        if (!build_ok(&s, &r))
                return;
        if (CHECK_INT_EQ(r.narts, 3))
                CHECK_STR_EQ(r.arts[0].key, "custom/wf-1/x.tgz");
        /* Verbatim: no prefix, no basename, no .tgz added; variables expanded. */
        expect_route(&r, "sub/x.txt", "custom/wf-1/x.tgz", "keyed");
        /* A directory with a key: <key>/<path inside>, joined and cleaned. */
        expect_route(&r, "kd/a/b.txt", "dirs/pod-1/a/b.txt", "keyed-dir");
        expect_route(&r, "kd/f", "dirs/pod-1/f", "keyed-dir");
        expect_ignored(&r, "kdx/f");
        /* Argo uses an artifact's own key as given; it is not path-cleaned. */
        expect_route(&r, "raw.txt", "k//pod-1.bin", "raw");
        af_router_done(&r);
}

static void test_s3_key_unknown_variable(void)
{
        struct setup s = {
                .key_format = SEED_FORMAT, .mount_as = "/tmp",
                .artifacts = "[{name: keyed, path: /tmp/x, s3: {key: '{{workflow.uid}}/x'}}]",
        };
        struct af_router r;
        struct af_buf err;

        af_buf_init(&err, 0);
        CHECK_INT_EQ(build(&s, &r, &err), -ENOENT);
        CHECK(contains(&err, "keyed"));
        CHECK(contains(&err, "workflow.uid"));
        CHECK(contains(&err, "ARGO_WORKFLOW_UID"));
        af_buf_done(&err);
}

/* ---- unmatched files ---- */

static void test_unmatched(void)
{
        struct setup none = { .key_format = SEED_FORMAT, .mount_as = "/tmp" };
        struct af_router r;

        /* No spec, auto: every file under the prefix at its relative path. */
        if (build_ok(&none, &r)) {
                CHECK(r.upload_unmatched);
                CHECK_INT_EQ(r.narts, 0);
                expect_route(&r, "hello.txt", SEED_PREFIX "/hello.txt", NULL);
                expect_route(&r, "a/b/c.txt", SEED_PREFIX "/a/b/c.txt", NULL);
                af_router_done(&r);
        }
        /* No spec, ignore: nothing is uploaded. */
        none.unmatched = AF_UNMATCHED_IGNORE;
        if (build_ok(&none, &r)) {
                CHECK(!r.upload_unmatched);
                expect_ignored(&r, "hello.txt");
                af_router_done(&r);
        }
        /* A spec, explicit upload: artifacts as usual, the rest under the prefix. */
        {
                struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                                   .artifacts = SEED_ARTIFACTS, .unmatched = AF_UNMATCHED_UPLOAD };

                if (build_ok(&s, &r)) {
                        CHECK(r.upload_unmatched);
                        expect_route(&r, "hello.txt", SEED_PREFIX "/hello.txt", "hello-artifact");
                        expect_route(&r, "logs/run.log", SEED_PREFIX "/logs/run.log", NULL);
                        af_router_done(&r);
                }
                /* A spec, explicit ignore. */
                s.unmatched = AF_UNMATCHED_IGNORE;
                if (build_ok(&s, &r)) {
                        expect_route(&r, "hello.txt", SEED_PREFIX "/hello.txt", "hello-artifact");
                        expect_ignored(&r, "logs/run.log");
                        af_router_done(&r);
                }
                /* A spec without artifacts, auto: like no spec (router.h: "else upload"). */
                s.artifacts = "[]";
                s.unmatched = AF_UNMATCHED_AUTO;
                if (build_ok(&s, &r)) {
                        CHECK(r.upload_unmatched);
                        expect_route(&r, "x", SEED_PREFIX "/x", NULL);
                        af_router_done(&r);
                }
        }
}

/* ---- mount_as ---- */

/* An artifact outside mount_as can never be written through the mount. */
static void test_outside_mount(void)
{
        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                           .artifacts = "[{name: data, path: /data/x},"
                                        " {name: tmpx, path: /tmpx/y},"
                                        " {name: root, path: /}]" };
        struct af_router r;

        if (!build_ok(&s, &r))
                return;
        if (CHECK_INT_EQ(r.narts, 3)) {
                CHECK(r.arts[0].rel == NULL);
                CHECK(r.arts[1].rel == NULL); /* "/tmpx" is not inside "/tmp" */
                CHECK(r.arts[2].rel == NULL);
        }
        expect_ignored(&r, "x");
        expect_ignored(&r, "data/x");
        expect_ignored(&r, "y");
        expect_ignored(&r, "tmpx/y");
        af_router_done(&r);
}

/* The whole error line of an artifact the router refuses: "artifact '<name>': " first. */
static void test_artifact_errors(void)
{
        static const struct {
                struct setup s;
                const char *err;
        } cases[] = {
                { { .key_format = SEED_FORMAT, .mount_as = "/tmp", .strict_paths = true,
                    .artifacts = "[{name: data, path: /data/x}]" },
                  "artifact 'data': path /data/x is outside the mount (/tmp); mount its "
                  "directory, or say with --as which directory the mount stands for" },
                { { .key_format = SEED_FORMAT, .mount_as = "/tmp", .endpoint = "s3.example:9000",
                    .artifacts = "[{name: own, path: /tmp/o, s3: {endpoint: other.example, "
                                 "bucket: b, key: k}}]" },
                  "artifact 'own': its s3 location's endpoint other.example is not the "
                  "repository's (s3.example:9000); artifuse uploads to one endpoint" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct af_router r;
                struct af_buf err;

                af_buf_init(&err, 0);
                CHECK_INT_EQ(build(&cases[i].s, &r, &err), -EINVAL);
                CHECK_STR_EQ(af_buf_str(&err), cases[i].err);
                af_buf_done(&err);
                af_router_done(&r);
        }
}

static void test_mount_as_root(void)
{
        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/",
                           .artifacts = "[{name: hello-artifact, path: /tmp/hello.txt},"
                                        " {name: data, path: /data/dir}]" };
        struct af_router r;

        if (!build_ok(&s, &r))
                return;
        if (CHECK_INT_EQ(r.narts, 2)) {
                CHECK_STR_EQ(r.arts[0].rel, "tmp/hello.txt");
                CHECK_STR_EQ(r.arts[1].rel, "data/dir");
        }
        expect_route(&r, "tmp/hello.txt", SEED_PREFIX "/hello.txt", "hello-artifact");
        expect_route(&r, "data/dir/f", SEED_PREFIX "/dir/f", "data");
        expect_ignored(&r, "hello.txt");
        af_router_done(&r);
}

/* mount_as is a path like any other: "/tmp/" and "/tmp" are the same directory. */
static void test_mount_as_trailing_slash(void)
{
        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp/",
                           .artifacts = SEED_ARTIFACTS };
        struct af_router r;

        if (!build_ok(&s, &r))
                return;
        expect_route(&r, "hello.txt", SEED_PREFIX "/hello.txt", "hello-artifact");
        af_router_done(&r);
}

static void test_mount_as_relative(void)
{
        static const char *const bad[] = { "tmp", "./tmp", "", "../tmp" };
        struct af_router r;
        struct af_buf err;

        af_buf_init(&err, 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct setup s = { .key_format = SEED_FORMAT, .mount_as = bad[i],
                                   .artifacts = SEED_ARTIFACTS };

                af_buf_reset(&err);
                if (!CHECK_INT_EQ(build(&s, &r, &err), -EINVAL))
                        af_router_done(&r);
                CHECK(contains(&err, "--as"));
        }
        {
                struct setup s = { .key_format = SEED_FORMAT, .mount_as = NULL };

                CHECK_INT_EQ(build(&s, &r, &err), -EINVAL);
        }
        af_buf_done(&err);
}

/* ---- keyFormat ---- */

static void test_key_format_cleaned(void)
{
        static const struct {
                const char *format, *prefix;
        } cases[] = {
                { "argo-workflows//{{workflow.name}}/{{pod.name}}/", SEED_PREFIX },
                { "/argo-workflows/{{workflow.name}}//{{pod.name}}//", SEED_PREFIX },
                { "argo-workflows/./{{workflow.name}}/x/../{{pod.name}}", SEED_PREFIX },
                { "{{ workflow.name }}/{{pod.name}}", "wf-1/pod-1" },
                { "flat", "flat" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct setup s = { .key_format = cases[i].format, .mount_as = "/tmp",
                                   .artifacts = SEED_ARTIFACTS };
                struct af_router r;
                struct af_buf want;

                if (!build_ok(&s, &r))
                        continue;
                CHECK_STR_EQ(r.prefix, cases[i].prefix);
                af_buf_init(&want, 0);
                (void)af_buf_addf(&want, "%s/hello.txt", cases[i].prefix);
                expect_route(&r, "hello.txt", af_buf_str(&want), "hello-artifact");
                af_buf_done(&want);
                af_router_done(&r);
        }
}

/*
 * An empty (or absent) keyFormat gives an empty prefix: keys start at the bucket's root, with
 * no leading "/". (Argo's own default for an empty keyFormat, "{{workflow.name}}/{{pod.name}}",
 * is the caller's to supply; the router expands what it is given.)
 */
static void test_key_format_empty(void)
{
        const char *formats[] = { "", NULL, "/", "./" };

        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                struct setup s = { .key_format = formats[i], .mount_as = "/tmp",
                                   .artifacts = "[{name: hello-artifact, path: /tmp/hello.txt},"
                                                " {name: d, path: /tmp/d}]",
                                   .unmatched = AF_UNMATCHED_UPLOAD };
                struct af_router r;

                if (!build_ok(&s, &r))
                        continue;
                CHECK_STR_EQ(r.prefix, "");
                expect_route(&r, "hello.txt", "hello.txt", "hello-artifact");
                expect_route(&r, "d/x/y", "d/x/y", "d");
                expect_route(&r, "other/z", "other/z", NULL);
                af_router_done(&r);
        }
}

static void test_key_format_unknown_variable(void)
{
        struct af_vars saved = vars;
        struct af_router r;
        struct af_buf err;

        af_buf_init(&err, 0);
        /* Without pod.name: the error names it, its environment variable and --var. */
        af_vars_init(&vars);
        CHECK_INT_EQ(af_vars_set(&vars, "workflow.name", "wf-1", "--var", true), 0);
        {
                struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                                   .artifacts = SEED_ARTIFACTS };

                CHECK_INT_EQ(build(&s, &r, &err), -ENOENT);
                CHECK(contains(&err, "'pod.name'"));
                CHECK(contains(&err, "ARGO_POD_NAME"));
                CHECK(contains(&err, "--var pod.name="));
                CHECK(strchr(af_buf_str(&err), '\n') == NULL); /* one line */
        }
        /* A variable no environment variable provides. */
        af_buf_reset(&err);
        {
                struct setup s = { .key_format = "{{workflow.namespace}}/x", .mount_as = "/tmp" };

                CHECK_INT_EQ(build(&s, &r, &err), -ENOENT);
                CHECK(contains(&err, "'workflow.namespace'"));
                CHECK(!strstr(af_buf_str(&err), "ARGO_"));
        }
        /* Syntax errors are -EINVAL. */
        af_buf_reset(&err);
        {
                struct setup s = { .key_format = "x/{{pod.name", .mount_as = "/tmp" };

                CHECK_INT_EQ(build(&s, &r, &err), -EINVAL);
                CHECK(contains(&err, "x/{{pod.name"));
        }
        af_buf_reset(&err);
        {
                struct setup s = { .key_format = "{{=workflow.name}}", .mount_as = "/tmp" };

                CHECK_INT_EQ(build(&s, &r, &err), -EINVAL);
        }
        af_vars_done(&vars);
        vars = saved;
        af_buf_done(&err);
}

/* ---- archive strategies ---- */

static void test_archive(void)
{
        static const struct {
                const char *artifacts;
                enum af_archive def;
                int want;
                const char *says;    /* in the error */
                const char *key;     /* the route of "p" */
                enum af_archive got; /* the route's strategy */
        } cases[] = {
                /* tar: Argo's <prefix>/<name>.tgz, one member named basename(path) */
                { "[{name: packed, path: /tmp/p, archive: {tar: {}}}]", AF_ARCHIVE_DEFAULT, 0, NULL,
                  SEED_PREFIX "/packed.tgz", AF_ARCHIVE_TAR },
                { "[{name: packed, path: /tmp/p, archive: {tar: {compressionLevel: 1}}}]",
                  AF_ARCHIVE_NONE, 0, NULL, SEED_PREFIX "/packed.tgz", AF_ARCHIVE_TAR },
                /* zip: <prefix>/<name>.zip */
                { "[{name: packed, path: /tmp/p, archive: {zip: {}}}]", AF_ARCHIVE_DEFAULT, 0, NULL,
                  SEED_PREFIX "/packed.zip", AF_ARCHIVE_ZIP },
                /* --archive-default tgz for an artifact without archive: */
                { "[{name: packed, path: /tmp/p}]", AF_ARCHIVE_TAR, 0, NULL,
                  SEED_PREFIX "/packed.tgz", AF_ARCHIVE_TAR },
                /* the artifact's own archive: none wins over the default */
                { "[{name: packed, path: /tmp/p, archive: {none: {}}}]", AF_ARCHIVE_TAR, 0, NULL,
                  SEED_PREFIX "/p", AF_ARCHIVE_NONE },
                { "[{name: packed, path: /tmp/p}]", AF_ARCHIVE_NONE, 0, NULL, SEED_PREFIX "/p",
                  AF_ARCHIVE_NONE },
                { "[{name: packed, path: /tmp/p}]", AF_ARCHIVE_DEFAULT, 0, NULL, SEED_PREFIX "/p",
                  AF_ARCHIVE_NONE },
                /* a key-only artifact keeps its key verbatim, still archived */
                { "[{name: packed, path: /tmp/p, archive: {tar: {}}, s3: {key: k/x.tgz}}]",
                  AF_ARCHIVE_DEFAULT, 0, NULL, "k/x.tgz", AF_ARCHIVE_TAR },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                                   .artifacts = cases[i].artifacts,
                                   .archive_default = cases[i].def };
                struct af_route rt = { 0 };
                struct af_router r;
                struct af_buf err;
                int ret;

                af_buf_init(&err, 0);
                ret = build(&s, &r, &err);
                if (!CHECK_INT_EQ(ret, cases[i].want))
                        fprintf(stderr, "    case %zu: %s\n", i, af_buf_str(&err));
                if (ret == 0) {
                        af_buf_init(&rt.key, 0);
                        CHECK_INT_EQ(af_router_route(&r, "p", &rt), 1);
                        CHECK_STR_EQ(af_buf_str(&rt.key), cases[i].key);
                        CHECK_INT_EQ(rt.archive, cases[i].got);
                        if (cases[i].got != AF_ARCHIVE_NONE)
                                CHECK_STR_EQ(rt.member, "p");
                        if (cases[i].got == AF_ARCHIVE_ZIP)
                                CHECK_STR_EQ(rt.zip_file_member, "tmp/p");
                        af_buf_done(&rt.key);
                        af_router_done(&r);
                } else if (cases[i].says) {
                        CHECK(contains(&err, "'packed'"));
                        CHECK(contains(&err, cases[i].says));
                }
                af_buf_done(&err);
        }
}

/* A file inside an archived directory artifact: part of the directory's archive, which goes
 * up when the directory is complete, not on its own. */
static void test_archive_directory_is_deferred(void)
{
        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                           .artifacts = "[{name: d, path: /tmp/out, archive: {tar: {}}}]" };
        struct af_route rt = { 0 };
        struct af_router r;
        struct af_buf err;

        af_buf_init(&err, 0);
        af_buf_init(&rt.key, 0);
        if (CHECK_INT_EQ(build(&s, &r, &err), 0)) {
                CHECK_INT_EQ(af_router_route(&r, "out/a.txt", &rt), 1);
                CHECK(rt.deferred);
                CHECK_STR_EQ(af_buf_str(&rt.key), SEED_PREFIX "/d.tgz");
                CHECK_INT_EQ(af_router_route(&r, "out", &rt), 1);
                CHECK(!rt.deferred);
                CHECK_STR_EQ(rt.member, "out");
                CHECK_STR_EQ(af_buf_str(&rt.key), SEED_PREFIX "/d.tgz");
                af_router_done(&r);
        }
        af_buf_done(&rt.key);
        af_buf_done(&err);
}

/* ---- lengths ---- */

static void test_key_too_long(void)
{
        char format[AF_KEY_MAX + 2];
        struct af_router r;
        struct af_buf err;
        char rel[64];

        af_buf_init(&err, 0);
        /* A prefix of 1000 bytes: "<prefix>/<23 bytes>" and "<prefix>/d/<21 bytes>" are
         * exactly 1024 bytes, one more is too long. */
        memset(format, 'k', 1000);
        format[1000] = '\0';
        {
                struct setup s = { .key_format = format, .mount_as = "/tmp",
                                   .unmatched = AF_UNMATCHED_UPLOAD,
                                   .artifacts = "[{name: a, path: /tmp/aaaaaaaaaaaaaaaaaaaaaaa},"
                                                " {name: d, path: /tmp/d}]" };

                if (build_ok(&s, &r)) {
                        memset(rel, 'r', 23);
                        rel[23] = '\0';
                        CHECK_INT_EQ(route_rc(&r, rel), 1);
                        rel[23] = 'r';
                        rel[24] = '\0';
                        CHECK_INT_EQ(route_rc(&r, rel), -ENAMETOOLONG);
                        CHECK_INT_EQ(route_rc(&r, "aaaaaaaaaaaaaaaaaaaaaaa"), 1); /* 1024 */
                        CHECK_INT_EQ(route_rc(&r, "d/aaaaaaaaaaaaaaaaaaaaa"), 1); /* 1024 */
                        CHECK_INT_EQ(route_rc(&r, "d/aaaaaaaaaaaaaaaaaaaaaa"), -ENAMETOOLONG);
                        /* Far longer than any key: still -ENAMETOOLONG, not -E2BIG. */
                        {
                                char *huge = malloc(8192);

                                if (CHECK(huge != NULL)) {
                                        memset(huge, 'h', 8191);
                                        huge[8191] = '\0';
                                        CHECK_INT_EQ(route_rc(&r, huge), -ENAMETOOLONG);
                                        huge[0] = 'd';
                                        huge[1] = '/';
                                        CHECK_INT_EQ(route_rc(&r, huge), -ENAMETOOLONG);
                                        free(huge);
                                }
                        }
                        af_router_done(&r);
                }
        }
        /* A prefix of exactly 1024 bytes is accepted, 1025 is refused at start-up. */
        memset(format, 'k', AF_KEY_MAX);
        format[AF_KEY_MAX] = '\0';
        {
                struct setup s = { .key_format = format, .mount_as = "/tmp" };

                if (build_ok(&s, &r)) {
                        CHECK_INT_EQ(route_rc(&r, "x"), -ENAMETOOLONG);
                        af_router_done(&r);
                }
                format[AF_KEY_MAX] = 'k';
                format[AF_KEY_MAX + 1] = '\0';
                af_buf_reset(&err);
                CHECK_INT_EQ(build(&s, &r, &err), -ENAMETOOLONG);
                CHECK(contains(&err, "1024"));
        }
        /* A verbatim s3.key over 1024 bytes. */
        {
                struct af_buf arts;

                af_buf_init(&arts, 0);
                (void)af_buf_adds(&arts, "[{name: long, path: /tmp/l, s3: {key: '");
                for (int i = 0; i < AF_KEY_MAX + 1; i++)
                        (void)af_buf_addc(&arts, 'y');
                (void)af_buf_adds(&arts, "'}}]");
                {
                        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                                           .artifacts = af_buf_str(&arts) };

                        if (build_ok(&s, &r)) {
                                CHECK_INT_EQ(route_rc(&r, "l"), -ENAMETOOLONG);
                                af_router_done(&r);
                        }
                }
                af_buf_done(&arts);
        }
        af_buf_done(&err);
}

/*
 * router.h lists -ENAMETOOLONG for a key that is too long. A keyFormat whose expansion
 * passes AF_TEMPLATE_MAX (4096) is such a key too, and must not surface as the expander's
 * -E2BIG ("Argument list too long").
 */
static void test_key_format_expansion_too_long(void)
{
        char *val = malloc(3001);
        struct af_vars saved = vars;
        struct af_router r;
        struct af_buf err;

        if (!CHECK(val != NULL))
                return;
        memset(val, 'v', 3000);
        val[3000] = '\0';
        af_vars_init(&vars);
        CHECK_INT_EQ(af_vars_set(&vars, "workflow.name", val, "--var", true), 0);
        af_buf_init(&err, 0);
        {
                struct setup s = { .key_format = "{{workflow.name}}/{{workflow.name}}",
                                   .mount_as = "/tmp" };
                int ret = build(&s, &r, &err);

                CHECK_INT_EQ(ret, -ENAMETOOLONG);
                if (ret == 0)
                        af_router_done(&r);
        }
        af_buf_done(&err);
        af_vars_done(&vars);
        vars = saved;
        free(val);
}

/* ---- other start-up errors ---- */

static void test_no_bucket(void)
{
        struct af_router r;
        struct af_buf err;

        af_buf_init(&err, 0);
        {
                struct setup s = { .bucket = "", .key_format = SEED_FORMAT, .mount_as = "/tmp" };

                CHECK_INT_EQ(build(&s, &r, &err), -EINVAL);
                CHECK(contains(&err, "bucket"));
        }
        af_buf_done(&err);
}

/* Several artifacts declaring one path: each is a route of its own (Argo saves each one,
 * executor.go:449-482 at v4.1.2), in spec order; the file's own is the first that uploads it
 * on its own, which skips a directory archive's deferred member. */
static void test_same_path_several_artifacts(void)
{
        struct setup s = { .key_format = SEED_FORMAT, .mount_as = "/tmp",
                           .artifacts = "[{name: d, path: /tmp/out, archive: {tar: {}}},"
                                        " {name: plain, path: /tmp/out, archive: {none: {}}},"
                                        " {name: raw, path: /tmp/out, archive: {none: {}},"
                                        "  s3: {key: k/raw}}]" };
        struct af_route rt = { 0 };
        struct af_router r;
        struct af_buf err;

        af_buf_init(&err, 0);
        af_buf_init(&rt.key, 0);
        if (CHECK_INT_EQ(build(&s, &r, &err), 0)) {
                CHECK_INT_EQ(af_router_route_nth(&r, "out/a.txt", 0, &rt), 1);
                CHECK(rt.deferred);
                CHECK_STR_EQ(af_buf_str(&rt.key), SEED_PREFIX "/d.tgz");
                CHECK_INT_EQ(af_router_route_nth(&r, "out/a.txt", 1, &rt), 1);
                CHECK(!rt.deferred);
                CHECK_STR_EQ(af_buf_str(&rt.key), SEED_PREFIX "/out/a.txt");
                CHECK_INT_EQ(af_router_route_nth(&r, "out/a.txt", 2, &rt), 1);
                CHECK_STR_EQ(af_buf_str(&rt.key), "k/raw/a.txt");
                CHECK_INT_EQ(af_router_route_nth(&r, "out/a.txt", 3, &rt), -ESRCH);
                /* what the mount hands to the queue: the first object of its own */
                CHECK_INT_EQ(af_router_route_own(&r, "out/a.txt", &rt), 1);
                CHECK_STR_EQ(rt.artifact->name, "plain");
                /* a route as one given artifact */
                CHECK_INT_EQ(af_router_route_artifact(&r, &r.arts[2], "out", &rt), 1);
                CHECK_STR_EQ(af_buf_str(&rt.key), "k/raw");
                CHECK_INT_EQ(af_router_route_artifact(&r, &r.arts[2], "elsewhere", &rt), -ESRCH);
                /* an unmatched file has one route, the first */
                CHECK_INT_EQ(af_router_route_nth(&r, "x.txt", 0, &rt), 0);
                CHECK_INT_EQ(af_router_route_nth(&r, "x.txt", 1, &rt), -ESRCH);
                af_router_done(&r);
        }
        af_buf_done(&rt.key);
        af_buf_done(&err);
}

int main(void)
{
        unsetenv("ARGO_WORKFLOW_NAME");
        unsetenv("ARGO_POD_NAME");
        unsetenv("ARGO_WORKFLOW_UID");
        vars_setup();

        RUN(test_seed);
        RUN(test_route_reuses_key);
        RUN(test_file_artifacts);
        RUN(test_path_traversal);
        RUN(test_directory_artifact);
        RUN(test_artifact_is_mount);
        RUN(test_s3_key);
        RUN(test_s3_key_unknown_variable);
        RUN(test_unmatched);
        RUN(test_outside_mount);
        RUN(test_artifact_errors);
        RUN(test_mount_as_root);
        RUN(test_mount_as_trailing_slash);
        RUN(test_mount_as_relative);
        RUN(test_key_format_cleaned);
        RUN(test_key_format_empty);
        RUN(test_key_format_unknown_variable);
        RUN(test_archive);
        RUN(test_archive_directory_is_deferred);
        RUN(test_same_path_several_artifacts);
        RUN(test_key_too_long);
        RUN(test_key_format_expansion_too_long);
        RUN(test_no_bucket);

        af_vars_done(&vars);
        return test_summary();
}
