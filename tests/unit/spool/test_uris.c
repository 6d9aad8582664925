/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --uris-dir and --uris-json (uris.c): what each declared artifact's files say after the
 * uploads the queue reports, for a file, a directory uploaded file by file, an archive, an
 * unmatched file and a name that cannot be a file. The router is built from YAML, as a user
 * writes it; the files are read back from a temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argo/router.h"
#include "argo/spec.h"
#include "argo/template.h"
#include "spool/uris.h"
#include "test.h"

#define PREFIX "wf/pod"

static char dir[64];
static int dfd = -1;

static bool router_from(const char *artifacts, struct af_router *r)
{
        struct af_router_config cfg = { .bucket = "bk", .key_format = PREFIX, .mount_as = "/tmp",
                                        .unmatched = AF_UNMATCHED_UPLOAD };
        struct af_buf y, err;
        struct af_spec spec;
        struct af_vars vars;
        int rc;

        af_vars_init(&vars);
        af_buf_init(&y, 0);
        af_buf_init(&err, 0);
        (void)af_buf_addf(&y,
                          "kind: Workflow\nmetadata: {name: wf}\nspec:\n  entrypoint: main\n"
                          "  templates:\n  - name: main\n    container: {image: alpine}\n"
                          "    outputs: {artifacts: %s}\n",
                          artifacts);
        rc = af_spec_parse(y.ptr, y.len, "test.yaml", NULL, &spec, &err);
        if (CHECK_INT_EQ(rc, 0)) {
                memset(r, 0, sizeof(*r));
                rc = af_router_init(r, &cfg, &spec, &vars, &err);
                CHECK_INT_EQ(rc, 0);
                af_spec_done(&spec);
        }
        if (rc)
                fprintf(stderr, "    %s\n", af_buf_str(&err));
        af_buf_done(&y);
        af_buf_done(&err);
        af_vars_done(&vars);
        return rc == 0;
}

/* The content of @name under the test directory, or "<missing>". */
static const char *slurp(const char *name)
{
        static char buf[4096];
        int fd = openat(dfd, name, O_RDONLY);
        ssize_t n;

        if (fd < 0)
                return "<missing>";
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[n < 0 ? 0 : n] = '\0';
        return buf;
}

static struct af_uris *writer(const struct af_router *r, bool to_dir, bool to_json)
{
        struct af_uris_config cfg = { .dir_fd = to_dir ? dup(dfd) : -1,
                                      .json_dirfd = to_json ? dup(dfd) : -1,
                                      .json_name = "uris.json", .router = r };
        struct af_uris *w = NULL;

        CHECK_INT_EQ(af_uris_new(&cfg, &w), 0);
        return w;
}

static void uploaded(struct af_uris *w, const char *rel, const char *key, uint64_t size,
                     const char *etag, enum af_archive archive, bool is_dir)
{
        struct af_queue_uploaded u = { .relpath = rel, .bucket = "bk", .key = key, .etag = etag,
                                       .archive = archive, .is_dir = is_dir, .size = size };

        af_uris_on_uploaded(w, &u);
}

static void clean_dir(void)
{
        const char *names[] = { "uris.json", "out", "logs", "res", "odd", "a" };

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                (void)unlinkat(dfd, names[i], 0);
}

/* A file artifact: DIR/out holds exactly its URI; the JSON has uri, size and ETag, and a
 * re-upload (new ETag) rewrites the JSON. Nothing is written before an upload. */
static void test_file_artifact(void)
{
        struct af_router r;
        struct af_uris *w;

        clean_dir();
        if (!router_from("[{name: out, path: /tmp/out.csv}, {name: a, path: /tmp/a.txt}]", &r))
                return;
        if ((w = writer(&r, true, true))) {
                CHECK_STR_EQ(slurp("out"), "<missing>");
                CHECK_STR_EQ(slurp("uris.json"), "<missing>");
                uploaded(w, "out.csv", PREFIX "/out.csv", 17, "\"e1\"", AF_ARCHIVE_NONE, false);
                CHECK_STR_EQ(slurp("out"), "s3://bk/" PREFIX "/out.csv");
                CHECK_STR_EQ(slurp("uris.json"), "{\"out\":{\"uri\":\"s3://bk/" PREFIX
                                                 "/out.csv\",\"size\":17,\"etag\":\"\\\"e1\\\"\"}}");
                uploaded(w, "out.csv", PREFIX "/out.csv", 20, "\"e2\"", AF_ARCHIVE_NONE, false);
                CHECK(strstr(slurp("uris.json"), "\"size\":20,\"etag\":\"\\\"e2\\\"\"") != NULL);
                uploaded(w, "a.txt", PREFIX "/a.txt", 1, "\"e3\"", AF_ARCHIVE_NONE, false);
                /* spec order, whatever the order of the uploads */
                CHECK(strstr(slurp("uris.json"), "{\"out\":") == slurp("uris.json"));
                CHECK(strstr(slurp("uris.json"), "},\"a\":{\"uri\":\"s3://bk/" PREFIX "/a.txt\"") !=
                      NULL);
                CHECK_STR_EQ(slurp("a"), "s3://bk/" PREFIX "/a.txt");
                CHECK_STR_EQ(slurp(".out.tmp"), "<missing>"); /* renamed into place */
                af_uris_free(w);
        }
        af_router_done(&r);
}

/* A directory uploaded file by file: the directory's prefix, no size or ETag; an archived
 * directory: its archive's object. */
static void test_directory_artifacts(void)
{
        struct af_router r;
        struct af_uris *w;

        clean_dir();
        if (!router_from("[{name: logs, path: /tmp/logs, archive: {none: {}}},"
                         " {name: res, path: /tmp/res, archive: {tar: {}}}]",
                         &r))
                return;
        if ((w = writer(&r, true, true))) {
                uploaded(w, "logs/a/1.txt", PREFIX "/logs/a/1.txt", 5, "\"x\"", AF_ARCHIVE_NONE,
                         false);
                CHECK_STR_EQ(slurp("logs"), "s3://bk/" PREFIX "/logs");
                uploaded(w, "res", PREFIX "/res.tgz", 0, "\"t\"", AF_ARCHIVE_TAR, true);
                CHECK_STR_EQ(slurp("res"), "s3://bk/" PREFIX "/res.tgz");
                CHECK_STR_EQ(slurp("uris.json"),
                             "{\"logs\":{\"uri\":\"s3://bk/" PREFIX "/logs\",\"size\":null,"
                             "\"etag\":null},\"res\":{\"uri\":\"s3://bk/" PREFIX "/res.tgz\","
                             "\"size\":null,\"etag\":\"\\\"t\\\"\"}}");
                af_uris_free(w);
        }
        af_router_done(&r);
}

/* An unmatched upload has no artifact name: nothing is written for it. */
static void test_unmatched_files_are_left_out(void)
{
        struct af_router r;
        struct af_uris *w;

        clean_dir();
        if (!router_from("[{name: out, path: /tmp/out.csv}]", &r))
                return;
        if ((w = writer(&r, true, true))) {
                uploaded(w, "other.txt", PREFIX "/other.txt", 3, "\"o\"", AF_ARCHIVE_NONE,
                         false);
                CHECK_STR_EQ(slurp("uris.json"), "<missing>");
                CHECK_STR_EQ(slurp("other.txt"), "<missing>");
                uploaded(w, "out.csv", PREFIX "/out.csv", 1, "\"e\"", AF_ARCHIVE_NONE, false);
                CHECK(strstr(slurp("uris.json"), "other") == NULL);
                af_uris_free(w);
        }
        af_router_done(&r);
}

/* Only --uris-json: no per-artifact file appears. */
static void test_json_only(void)
{
        struct af_router r;
        struct af_uris *w;

        clean_dir();
        if (!router_from("[{name: out, path: /tmp/out.csv}]", &r))
                return;
        if ((w = writer(&r, false, true))) {
                uploaded(w, "out.csv", PREFIX "/out.csv", 1, "\"e\"", AF_ARCHIVE_NONE, false);
                CHECK_STR_EQ(slurp("out"), "<missing>");
                CHECK(strstr(slurp("uris.json"), "\"out\":{") != NULL);
                af_uris_free(w);
        }
        af_router_done(&r);
}

int main(void)
{
        snprintf(dir, sizeof(dir), "/tmp/af-uris-XXXXXX");
        if (!mkdtemp(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) < 0) {
                perror("mkdtemp");
                return 1;
        }
        RUN(test_file_artifact);
        RUN(test_directory_artifacts);
        RUN(test_unmatched_files_are_left_out);
        RUN(test_json_only);
        clean_dir();
        close(dfd);
        (void)rmdir(dir);
        return test_summary();
}
