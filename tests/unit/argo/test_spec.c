/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for spec.c, the Argo workflow reader.
 *
 * Part one is golden files: every tests/unit/specs/<case>.expected is one case, so adding a
 * case is adding a file. The input is <case>.yaml, else <case>.json, parsed with the input's
 * file name (not its path) as @filename, so error texts are stable. An .expected file holds
 * directives (lines starting with "@") and, for a successful parse, the dump of the result:
 *
 *   @input FILE        parse FILE instead of <case>.yaml / <case>.json
 *   @template NAME     pass NAME as template_name (default: NULL, the entrypoint)
 *   @error EINVAL      the parse must fail with -EINVAL (the only code a file can produce)
 *   @says TEXT         the error text must contain TEXT (repeatable; TEXT runs to the end
 *                      of the line, so it may end in a space)
 *   # ...              a comment
 *
 * The dump (see dump_spec()) prints every field of struct af_spec, one per line, strings in
 * double quotes with C escapes and NULL as null, so a wrong NULL-vs-"" shows. It must equal
 * the rest of the .expected file exactly.
 *
 * Part two is code: the size cap, non-NUL-terminated input, @err appended and @ret untouched
 * on failure, and properties of the seed that must hold whatever the golden files say.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "argo/spec.h"
#include "test.h"

#ifndef AF_SOURCE_ROOT
#error "AF_SOURCE_ROOT must name the source tree (meson defines it)"
#endif

#define SPEC_DIR AF_SOURCE_ROOT "/tests/unit/specs"
#define FILE_CAP ((size_t)1 << 20)
#define MAX_CASES 256

/* ---- files ---- */

static int read_file(const char *path, struct af_buf *out)
{
        char chunk[4096];
        size_t n;
        FILE *f = fopen(path, "rb");
        int r = 0;

        if (!f)
                return -errno;
        while (r == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                r = af_buf_add(out, chunk, n);
        if (r == 0 && ferror(f))
                r = -EIO;
        fclose(f);
        return r;
}

static bool file_exists(const char *path)
{
        FILE *f = fopen(path, "rb");

        if (f)
                fclose(f);
        return f != NULL;
}

/* ---- the dump ---- */

static void dump_str(struct af_buf *b, const char *label, const char *s)
{
        (void)af_buf_addf(b, "%s ", label);
        if (!s) {
                (void)af_buf_adds(b, "null\n");
                return;
        }
        (void)af_buf_addc(b, '"');
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        (void)af_buf_addf(b, "\\%c", c);
                else if (c == '\n')
                        (void)af_buf_adds(b, "\\n");
                else if (c < 0x20 || c >= 0x7f)
                        (void)af_buf_addf(b, "\\x%02x", c);
                else
                        (void)af_buf_addc(b, (char)c);
        }
        (void)af_buf_adds(b, "\"\n");
}

static void dump_spec(struct af_buf *b, const struct af_spec *s)
{
        dump_str(b, "kind", s->kind);
        dump_str(b, "name", s->name);
        dump_str(b, "generateName", s->generate_name);
        dump_str(b, "namespace", s->namespace);
        dump_str(b, "entrypoint", s->entrypoint);
        dump_str(b, "template", s->template_name);
        (void)af_buf_addf(b, "params %zu\n", s->nparams);
        for (size_t i = 0; i < s->nparams; i++) {
                dump_str(b, "param", s->params[i].name);
                dump_str(b, "  value", s->params[i].value);
        }
        (void)af_buf_addf(b, "artifacts %zu\n", s->nartifacts);
        for (size_t i = 0; i < s->nartifacts; i++) {
                const struct af_artifact *a = &s->artifacts[i];

                dump_str(b, "artifact", a->name);
                dump_str(b, "  path", a->path);
                (void)af_buf_addf(b, "  archive %s\n", af_archive_name(a->archive));
                (void)af_buf_addf(b, "  compressionLevel %d\n", a->compression_level);
                (void)af_buf_addf(b, "  optional %s\n", a->optional ? "true" : "false");
                dump_str(b, "  s3.key", a->s3_key);
                (void)af_buf_addf(b, "  line %d\n", a->line);
        }
}

/* ---- golden cases ---- */

struct expected {
        char input[256];
        char template_name[256];
        bool has_template;
        int error;             /* 0, or the negative errno the parse must return */
        char says[8][256];     /* substrings of the error text */
        int nsays;
        struct af_buf dump;
};

/* Splits an .expected file into directives and the dump. -EINVAL for a malformed file. */
static int parse_expected(const char *text, struct expected *e)
{
        const char *line = text;

        while (*line) {
                const char *nl = strchr(line, '\n');
                size_t n = nl ? (size_t)(nl - line) : strlen(line);
                char arg[256];
                size_t an;

                if (line[0] == '#') {
                        /* comment */
                } else if (line[0] == '@') {
                        const char *sp = memchr(line, ' ', n);

                        an = sp ? n - (size_t)(sp + 1 - line) : 0;
                        if (an >= sizeof(arg))
                                return -EINVAL;
                        memcpy(arg, sp ? sp + 1 : "", an);
                        arg[an] = '\0';
                        if (strncmp(line, "@input ", 7) == 0) {
                                snprintf(e->input, sizeof(e->input), "%s", arg);
                        } else if (strncmp(line, "@template ", 10) == 0) {
                                snprintf(e->template_name, sizeof(e->template_name), "%s", arg);
                                e->has_template = true;
                        } else if (strcmp(arg, "EINVAL") == 0 &&
                                   strncmp(line, "@error ", 7) == 0) {
                                e->error = -EINVAL;
                        } else if (strncmp(line, "@says ", 6) == 0 &&
                                   e->nsays < (int)(sizeof(e->says) / sizeof(e->says[0]))) {
                                snprintf(e->says[e->nsays++], sizeof(e->says[0]), "%s", arg);
                        } else {
                                return -EINVAL;
                        }
                } else if (af_buf_add(&e->dump, line, n) < 0 || af_buf_addc(&e->dump, '\n') < 0) {
                        return -ENOMEM;
                }
                line += n + (nl ? 1 : 0);
        }
        if (e->error && e->dump.len)
                return -EINVAL; /* a failing case has no dump */
        if (!e->error && (e->nsays || !e->dump.len))
                return -EINVAL;
        return 0;
}

static void run_case(const char *casename)
{
        char path[1024];
        struct expected e;
        struct af_buf text, input, err, got;
        struct af_spec spec;
        int r;

        memset(&e, 0, sizeof(e));
        af_buf_init(&e.dump, FILE_CAP);
        af_buf_init(&text, FILE_CAP);
        af_buf_init(&input, AF_SPEC_MAX);
        af_buf_init(&err, 0);
        af_buf_init(&got, 0);

        snprintf(path, sizeof(path), "%s/%s.expected", SPEC_DIR, casename);
        if (!CHECK_INT_EQ(read_file(path, &text), 0) ||
            !CHECK_INT_EQ(parse_expected(af_buf_str(&text), &e), 0)) {
                fprintf(stderr, "    bad expected file %s\n", path);
                goto out;
        }
        if (!e.input[0]) {
                snprintf(e.input, sizeof(e.input), "%s.yaml", casename);
                snprintf(path, sizeof(path), "%s/%s", SPEC_DIR, e.input);
                if (!file_exists(path))
                        snprintf(e.input, sizeof(e.input), "%s.json", casename);
        }
        snprintf(path, sizeof(path), "%s/%s", SPEC_DIR, e.input);
        if (!CHECK_INT_EQ(read_file(path, &input), 0)) {
                fprintf(stderr, "    cannot read %s\n", path);
                goto out;
        }

        memset(&spec, 0, sizeof(spec));
        r = af_spec_parse(input.ptr ? input.ptr : "", input.len, e.input,
                          e.has_template ? e.template_name : NULL, &spec, &err);
        if (e.error) {
                if (!CHECK_INT_EQ(r, e.error)) {
                        dump_spec(&got, &spec);
                        fprintf(stderr, "    parsed instead:\n%s", af_buf_str(&got));
                }
                for (int i = 0; i < e.nsays; i++)
                        if (!CHECK(strstr(af_buf_str(&err), e.says[i]) != NULL))
                                fprintf(stderr, "    error text \"%s\"\n    lacks \"%s\"\n",
                                        af_buf_str(&err), e.says[i]);
                if (r == 0)
                        af_spec_done(&spec);
        } else {
                if (!CHECK_INT_EQ(r, 0)) {
                        fprintf(stderr, "    error: %s\n", af_buf_str(&err));
                        goto out;
                }
                CHECK_STR_EQ(af_buf_str(&err), ""); /* success writes no error */
                dump_spec(&got, &spec);
                if (!CHECK_STR_EQ(af_buf_str(&got), af_buf_str(&e.dump)))
                        fprintf(stderr, "    got:\n%s", af_buf_str(&got));
                af_spec_done(&spec);
        }
out:
        af_buf_done(&e.dump);
        af_buf_done(&text);
        af_buf_done(&input);
        af_buf_done(&err);
        af_buf_done(&got);
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Cases that must exist, so deleting a golden file cannot make the suite pass vacuously. */
static const char *const required_cases[] = {
        "seed", "seed-json", "seed-compact", "multi-doc", "workflow-template",
        "cluster-workflow-template", "cron-workflow", "steps-gen", "steps-use",
        "steps-entrypoint", "dag-entrypoint", "script", "container-set", "archive", "anchors",
        "flow", "quoted", "params", "bad-indent", "unclosed-flow", "no-workflow",
        "missing-template", "no-path", "no-name", "duplicate-name", "bad-compression",
        "bad-optional",
};

static void test_golden(void)
{
        char *names[MAX_CASES];
        size_t n = 0;
        struct dirent *de;
        DIR *d = opendir(SPEC_DIR);

        if (!CHECK(d != NULL)) {
                fprintf(stderr, "    cannot open %s\n", SPEC_DIR);
                return;
        }
        while ((de = readdir(d)) != NULL) {
                size_t l = strlen(de->d_name);

                if (l > 9 && strcmp(de->d_name + l - 9, ".expected") == 0 && n < MAX_CASES) {
                        names[n] = strndup(de->d_name, l - 9);
                        if (names[n])
                                n++;
                }
        }
        closedir(d);
        qsort(names, n, sizeof(names[0]), cmp_names);
        for (size_t i = 0; i < n; i++) {
                unsigned mark = test_state.failed;
                char label[300];

                run_case(names[i]);
                snprintf(label, sizeof(label), "spec case %s", names[i]);
                test_report(label, mark);
        }
        for (size_t i = 0; i < sizeof(required_cases) / sizeof(required_cases[0]); i++) {
                bool found = false;

                for (size_t j = 0; j < n && !found; j++)
                        found = strcmp(names[j], required_cases[i]) == 0;
                if (!CHECK(found))
                        fprintf(stderr, "    missing case %s.expected\n", required_cases[i]);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
}

/* ---- code tests ---- */

static const char seed_text[] =
        "kind: Workflow\n"
        "metadata:\n"
        "  generateName: s3-artifact-example-\n"
        "spec:\n"
        "  entrypoint: main\n"
        "  templates:\n"
        "    - name: main\n"
        "      container:\n"
        "        image: alpine\n"
        "      outputs:\n"
        "        artifacts: [{name: hello-artifact, path: /tmp/hello.txt}]\n";

/* The seed example shipped in examples/ parses to the artifact the README promises. */
static void test_example_seed(void)
{
        struct af_buf data, err;
        struct af_spec s;

        af_buf_init(&data, 0);
        af_buf_init(&err, 0);
        if (!CHECK_INT_EQ(read_file(AF_SOURCE_ROOT "/examples/hello-workflow.yaml", &data), 0))
                goto out;
        if (!CHECK_INT_EQ(af_spec_parse(data.ptr, data.len, "hello-workflow.yaml", NULL, &s, &err),
                          0)) {
                fprintf(stderr, "    %s\n", af_buf_str(&err));
                goto out;
        }
        CHECK_STR_EQ(s.kind, "Workflow");
        CHECK_STR_EQ(s.generate_name, "s3-artifact-example-");
        CHECK(s.name == NULL);
        CHECK_STR_EQ(s.entrypoint, "main");
        CHECK_STR_EQ(s.template_name, "main");
        if (CHECK_INT_EQ(s.nartifacts, 1)) {
                CHECK_STR_EQ(s.artifacts[0].name, "hello-artifact");
                CHECK_STR_EQ(s.artifacts[0].path, "/tmp/hello.txt");
                CHECK_INT_EQ(s.artifacts[0].archive, AF_ARCHIVE_DEFAULT);
                CHECK(s.artifacts[0].s3_key == NULL);
                CHECK(!s.artifacts[0].optional);
        }
        af_spec_done(&s);
out:
        af_buf_done(&data);
        af_buf_done(&err);
}

/* Input is (ptr, len): nothing past len is read, and no NUL is needed. */
static void test_not_nul_terminated(void)
{
        size_t n = sizeof(seed_text) - 1;
        char *exact = malloc(n); /* ASan flags any read past the end */
        struct af_buf err;
        struct af_spec s;
        int r;

        if (!CHECK(exact != NULL))
                return;
        memcpy(exact, seed_text, n);
        af_buf_init(&err, 0);
        r = af_spec_parse(exact, n, "exact.yaml", NULL, &s, &err);
        if (CHECK_INT_EQ(r, 0)) {
                if (CHECK_INT_EQ(s.nartifacts, 1))
                        CHECK_STR_EQ(s.artifacts[0].path, "/tmp/hello.txt");
                af_spec_done(&s);
        }
        /* Bytes past len do not exist: cut mid-line, the flow list is left open. */
        r = af_spec_parse(seed_text, n - strlen(", path: /tmp/hello.txt}]\n"), "cut.yaml", NULL, &s,
                          &err);
        CHECK_INT_EQ(r, -EINVAL);
        free(exact);
        af_buf_done(&err);
}

/* Over AF_SPEC_MAX: -E2BIG, and the text says so; exactly AF_SPEC_MAX is accepted. */
static void test_too_big(void)
{
        char *big = malloc(AF_SPEC_MAX + 1);
        struct af_buf err;
        struct af_spec s;
        size_t n = sizeof(seed_text) - 1;
        int r;

        if (!CHECK(big != NULL))
                return;
        /* The seed, then a comment filling the rest. */
        memcpy(big, seed_text, n);
        big[n] = '#';
        memset(big + n + 1, 'x', AF_SPEC_MAX - n - 1);
        big[AF_SPEC_MAX] = '\n';
        af_buf_init(&err, 0);
        r = af_spec_parse(big, AF_SPEC_MAX + 1, "big.yaml", NULL, &s, &err);
        CHECK_INT_EQ(r, -E2BIG);
        CHECK(strstr(af_buf_str(&err), "big.yaml") != NULL);
        CHECK(strstr(af_buf_str(&err), "larger than") != NULL);
        af_buf_reset(&err);
        r = af_spec_parse(big, AF_SPEC_MAX, "max.yaml", NULL, &s, &err);
        if (CHECK_INT_EQ(r, 0)) {
                CHECK_INT_EQ(s.nartifacts, 1);
                af_spec_done(&s);
        } else {
                fprintf(stderr, "    %s\n", af_buf_str(&err));
        }
        free(big);
        af_buf_done(&err);
}

/* On failure @ret is untouched and the error is appended to what @err held. */
static void test_failure_contract(void)
{
        static const char bad[] = "kind: Workflow\nspec:\n  entrypoint: main\n  templates: []\n";
        struct af_buf err;
        struct af_spec s;
        int r;

        memset(&s, 0xA5, sizeof(s));
        af_buf_init(&err, 0);
        CHECK_INT_EQ(af_buf_adds(&err, "before; "), 0);
        r = af_spec_parse(bad, sizeof(bad) - 1, "t.yaml", NULL, &s, &err);
        CHECK_INT_EQ(r, -EINVAL);
        {
                static const char want[] = "before; t.yaml:4:14: no template named 'main'";

                CHECK(strncmp(af_buf_str(&err), want, sizeof(want) - 1) == 0);
        }
        {
                struct af_spec poison;

                memset(&poison, 0xA5, sizeof(poison));
                CHECK(memcmp(&s, &poison, sizeof(s)) == 0);
        }
        af_buf_done(&err);
}

/* Empty input and an empty document are "no workflow", not a crash. */
static void test_empty_inputs(void)
{
        static const char *const inputs[] = { "", "\n", "---\n", "---\n...\n", "~\n", "[]\n",
                                              "just a scalar\n", "kind: Workflow\n" };
        struct af_buf err;
        struct af_spec s;

        af_buf_init(&err, 0);
        for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
                af_buf_reset(&err);
                if (!CHECK_INT_EQ(af_spec_parse(inputs[i], strlen(inputs[i]), "e.yaml", NULL, &s,
                                                &err),
                                  -EINVAL))
                        af_spec_done(&s);
                if (!CHECK(strncmp(af_buf_str(&err), "e.yaml", 6) == 0))
                        fprintf(stderr, "    input \"%s\": \"%s\"\n", inputs[i], af_buf_str(&err));
        }
        af_buf_done(&err);
}

/* af_spec_done() leaves a zeroed struct, so a second call is harmless. */
static void test_done_twice(void)
{
        struct af_buf err;
        struct af_spec s;

        af_buf_init(&err, 0);
        if (CHECK_INT_EQ(af_spec_parse(seed_text, sizeof(seed_text) - 1, "s.yaml", NULL, &s, &err),
                         0)) {
                af_spec_done(&s);
                CHECK(s.artifacts == NULL && s.nartifacts == 0 && s.kind == NULL);
                af_spec_done(&s);
        }
        af_buf_done(&err);
}

static void test_archive_names(void)
{
        CHECK_STR_EQ(af_archive_name(AF_ARCHIVE_DEFAULT), "default");
        CHECK_STR_EQ(af_archive_name(AF_ARCHIVE_NONE), "none");
        CHECK_STR_EQ(af_archive_name(AF_ARCHIVE_TAR), "tar");
        CHECK_STR_EQ(af_archive_name(AF_ARCHIVE_ZIP), "zip");
}

/* More than AF_SPEC_MAX_ARTIFACTS outputs is refused, exactly that many is fine. */
static void test_artifact_limit(void)
{
        struct af_buf y, err;
        struct af_spec s;
        int r;

        for (int extra = 0; extra <= 1; extra++) {
                af_buf_init(&y, 0);
                af_buf_init(&err, 0);
                (void)af_buf_adds(&y, "kind: Workflow\nspec:\n  entrypoint: m\n  templates:\n"
                                      "  - name: m\n    container: {image: a}\n"
                                      "    outputs:\n      artifacts:\n");
                for (int i = 0; i < AF_SPEC_MAX_ARTIFACTS + extra; i++)
                        (void)af_buf_addf(&y, "      - {name: a%d, path: /t/%d}\n", i, i);
                r = af_spec_parse(y.ptr, y.len, "many.yaml", NULL, &s, &err);
                if (extra) {
                        CHECK_INT_EQ(r, -EINVAL);
                        CHECK(strstr(af_buf_str(&err), "many.yaml:9:7: too many") != NULL);
                } else if (CHECK_INT_EQ(r, 0)) {
                        CHECK_INT_EQ(s.nartifacts, AF_SPEC_MAX_ARTIFACTS);
                        af_spec_done(&s);
                }
                af_buf_done(&y);
                af_buf_done(&err);
        }
}

static void on_alarm(int sig)
{
        static const char msg[] =
                "FAIL test_merge_fanout: af_spec_parse() still running after 5 s\n";

        (void)sig;
        if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
                _exit(2);
        _exit(1);
}

/*
 * Merge keys must not make lookups exponential. Nine levels of anchors, each merging the
 * level below 32 times, is about 1.5 KB of YAML; following every merge for every key that is
 * looked up (and not found: optional, archive, s3) visits 32^8 mappings. Go's decoder refuses
 * such input ("excessive aliasing"); either refusing it or parsing it quickly is fine here,
 * hanging is not. A watchdog turns a hang into a failure.
 */
static void test_merge_fanout(void)
{
        struct af_buf y, err;
        struct af_spec s;
        int r;

        af_buf_init(&y, 0);
        af_buf_init(&err, 0);
        (void)af_buf_adds(&y, "x:\n  l0: &l0 {q: 1}\n");
        for (int d = 1; d <= 8; d++) {
                (void)af_buf_addf(&y, "  l%d: &l%d {<<: [", d, d);
                for (int i = 0; i < 32; i++)
                        (void)af_buf_addf(&y, "%s*l%d", i ? ", " : "", d - 1);
                (void)af_buf_adds(&y, "]}\n");
        }
        (void)af_buf_adds(&y, "kind: Workflow\nspec:\n  entrypoint: m\n  templates:\n"
                              "  - name: m\n    container: {image: a}\n"
                              "    outputs: {artifacts: [{<<: *l8, name: a, path: /t/a}]}\n");
        signal(SIGALRM, on_alarm);
        alarm(5);
        r = af_spec_parse(y.ptr, y.len, "fanout.yaml", NULL, &s, &err);
        alarm(0);
        CHECK(r == 0 || r == -EINVAL);
        if (r == 0)
                af_spec_done(&s);
        af_buf_done(&y);
        af_buf_done(&err);
}

/* spec.artifactRepositoryRef is read; the ref's key wins over the ConfigMap's default
 * annotation (Argo: workflow/artifactrepositories/artifactrepositories.go, Get, key :=
 * ref.GetKeyOr(annotation)); a file of several documents yields its ConfigMap. */
static void test_repository_ref(void)
{
        static const char wf[] = "apiVersion: argoproj.io/v1alpha1\n"
                                 "kind: Workflow\n"
                                 "metadata: {generateName: x-}\n"
                                 "spec:\n"
                                 "  entrypoint: main\n"
                                 "  artifactRepositoryRef: {configMap: repos, key: second}\n"
                                 "  templates:\n"
                                 "  - name: main\n"
                                 "    container: {image: alpine}\n"
                                 "    outputs: {artifacts: [{name: a, path: /tmp/a}]}\n";
        static const char repos[] =
                "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n"
                "---\n"
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n"
                "data: {only: 's3: {bucket: wrong}'}\n"
                "---\n"
                "apiVersion: v1\nkind: ConfigMap\n"
                "metadata:\n  name: repos\n  annotations:\n"
                "    workflows.argoproj.io/default-artifact-repository: first\n"
                "data:\n  first: 's3: {bucket: by-annotation}'\n"
                "  second: 's3: {bucket: by-ref, keyFormat: k}'\n";
        struct af_repository_ref ref = { 0 };
        struct af_s3_location loc;
        struct af_spec s;
        struct af_buf err;

        af_buf_init(&err, 4096);
        if (!CHECK_INT_EQ(af_spec_parse(wf, strlen(wf), "wf.yaml", NULL, &s, &err), 0))
                goto out;
        CHECK_STR_EQ(s.repo_ref_configmap, "repos");
        CHECK_STR_EQ(s.repo_ref_key, "second");
        ref.configmap = s.repo_ref_configmap;
        ref.key = s.repo_ref_key;
        if (CHECK_INT_EQ(af_repository_parse_ref(repos, strlen(repos), "r.yaml", &ref, &loc,
                                                 &err), 0)) {
                CHECK_STR_EQ(loc.bucket, "by-ref");
                af_s3_location_done(&loc);
        }
        /* No ref: the ServiceAccount is skipped, the first ConfigMap is used. */
        if (CHECK_INT_EQ(af_repository_parse(repos, strlen(repos), "r.yaml", &loc, &err), 0)) {
                CHECK_STR_EQ(loc.bucket, "wrong");
                af_s3_location_done(&loc);
        }
        /* The ConfigMap named, its annotation's key. */
        ref.key = NULL;
        if (CHECK_INT_EQ(af_repository_parse_ref(repos, strlen(repos), "r.yaml", &ref, &loc,
                                                 &err), 0)) {
                CHECK_STR_EQ(loc.bucket, "by-annotation");
                af_s3_location_done(&loc);
        }
        /* A key the ConfigMap lacks, a ConfigMap the file lacks: errors that name them. */
        af_buf_reset(&err);
        ref.key = "third";
        CHECK_INT_EQ(af_repository_parse_ref(repos, strlen(repos), "r.yaml", &ref, &loc, &err),
                     -EINVAL);
        CHECK(strstr(af_buf_str(&err), "spec.artifactRepositoryRef.key: third") != NULL);
        af_buf_reset(&err);
        ref.configmap = "missing";
        CHECK_INT_EQ(af_repository_parse_ref(repos, strlen(repos), "r.yaml", &ref, &loc, &err),
                     -EINVAL);
        CHECK(strstr(af_buf_str(&err), "no ConfigMap named 'missing' in 3 document(s)") != NULL);
        af_spec_done(&s);
out:
        af_buf_done(&err);
}

int main(void)
{
        test_golden();
        RUN(test_example_seed);
        RUN(test_not_nul_terminated);
        RUN(test_too_big);
        RUN(test_failure_contract);
        RUN(test_empty_inputs);
        RUN(test_done_twice);
        RUN(test_archive_names);
        RUN(test_artifact_limit);
        RUN(test_repository_ref);
        RUN(test_merge_fanout); /* last: on a hang its watchdog ends the program */
        return test_summary();
}
