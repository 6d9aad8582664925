/* SPDX-License-Identifier: Apache-2.0 */
/*
 * From options to what a command needs: the spec (--spec, --argo-template, or what an Argo
 * pod provides), the repository (the flag, Argo's repository YAML, or the resolved
 * template's archiveLocation), the variables and the router; then the S3 client and queue
 * settings, where flags win over the repository, which wins over the AWS environment.
 * Errors are one line each (af_cli_die).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "argo/argovars.h"
#include "argo/template.h"
#include "base/clock.h"
#include "base/log.h"
#include "cli.h"

#define AF_SETTLE_MIN_SIZE ((uint64_t)1 << 20) /* see af_setup_queue_config */

#define ARGO_TEMPLATE_FILE "/var/run/argo/template"
#define ARGO_TEMPLATE_OFFLOADED "/argo/config/ARGO_TEMPLATE"
#define ARGO_DEFAULT_PATTERN "{{workflow.name}}/{{pod.name}}"

static int read_file(const char *path, struct af_buf *out)
{
        int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
        int r;

        if (fd < 0)
                return -errno;
        r = af_buf_read_fd(out, fd);
        if (fd != 0)
                close(fd);
        return r;
}

void af_setup_done(struct af_setup *s)
{
        af_router_done(&s->router);
        if (s->have_spec)
                af_spec_done(&s->spec);
        s->have_spec = false;
        af_s3_location_done(&s->repo);
        free(s->key_format);
        s->key_format = NULL;
}

/* The spec text: --spec, else --argo-template, else what an Argo pod provides. */
static int read_spec_source(const struct af_opts *o, struct af_buf *data, const char **ret_name)
{
        const char *env = getenv("ARGO_TEMPLATE");
        int r;

        if (o->spec) {
                *ret_name = strcmp(o->spec, "-") == 0 ? "<stdin>" : o->spec;
                r = read_file(o->spec, data);
                if (r < 0)
                        return af_cli_die("cannot read --spec %s: %s", o->spec,
                                          r == -E2BIG ? "larger than 16 MiB" : strerror(-r));
                return 0;
        }
        if (o->argo_template) {
                *ret_name = o->argo_template;
                r = read_file(o->argo_template, data);
                if (r < 0)
                        return af_cli_die("cannot read --argo-template %s: %s", o->argo_template,
                                          strerror(-r));
                return 0;
        }
        if (access(ARGO_TEMPLATE_FILE, R_OK) == 0) {
                *ret_name = ARGO_TEMPLATE_FILE;
                r = read_file(ARGO_TEMPLATE_FILE, data);
                if (r < 0)
                        return af_cli_die("cannot read %s: %s", ARGO_TEMPLATE_FILE, strerror(-r));
                return 0;
        }
        if (env && strcmp(env, "offloaded") == 0) {
                *ret_name = ARGO_TEMPLATE_OFFLOADED;
                r = read_file(ARGO_TEMPLATE_OFFLOADED, data);
                if (r < 0)
                        return af_cli_die("$ARGO_TEMPLATE is 'offloaded' but %s cannot be read: %s",
                                          ARGO_TEMPLATE_OFFLOADED, strerror(-r));
                return 0;
        }
        if (env && *env) {
                *ret_name = "$ARGO_TEMPLATE";
                if (af_buf_adds(data, env) < 0)
                        return af_cli_die("$ARGO_TEMPLATE is too large");
                return 0;
        }
        *ret_name = NULL;
        return 0;
}

/* --artifact-repository s3://BUCKET/KEYFORMAT */
static int repo_from_url(const char *url, struct af_setup *s)
{
        const char *rest;
        size_t bl;

        if (strncmp(url, "s3://", 5) != 0)
                return af_cli_die("--artifact-repository '%s' must start with s3://", url);
        rest = url + 5;
        bl = strcspn(rest, "/");
        if (bl == 0 || bl > 255)
                return af_cli_die("--artifact-repository '%s' has no valid bucket name", url);
        s->repo.bucket = strndup(rest, bl);
        s->key_format = strdup(rest[bl] ? rest + bl + 1 : "");
        if (!s->repo.bucket || !s->key_format)
                return af_cli_die("out of memory");
        return 0;
}

/* keyFormat as Argo resolves it: empty means path.Join(keyPrefix, DefaultArchivePattern). */
static int key_format_of(const struct af_s3_location *loc, char **ret)
{
        struct af_buf b;

        af_buf_init(&b, AF_TEMPLATE_MAX);
        if (loc->key_format && *loc->key_format)
                (void)af_buf_adds(&b, loc->key_format);
        else
                (void)af_buf_addf(&b, "%s%s" ARGO_DEFAULT_PATTERN,
                                  loc->key_prefix ? loc->key_prefix : "",
                                  loc->key_prefix && *loc->key_prefix ? "/" : "");
        *ret = af_buf_take(&b);
        return *ret ? 0 : -ENOMEM;
}

static int set_creation_time(struct af_opts *o, struct af_setup *s)
{
        const char *ts = o->creation_timestamp, *src = "--creation-timestamp";
        time_t t;
        int off = 0;

        if (!ts) {
                ts = getenv("ARGO_WORKFLOW_CREATION_TIMESTAMP");
                src = "env ARGO_WORKFLOW_CREATION_TIMESTAMP";
        }
        if (ts && *ts) {
                if (af_rfc3339_parse(ts, 0, &t, &off) < 0)
                        return af_cli_die("%s: '%s' is not an RFC 3339 time (2026-11-28T04:00:00Z)",
                                          src[0] == '-' ? src : "$ARGO_WORKFLOW_CREATION_TIMESTAMP",
                                          ts);
        } else {
                t = time(NULL);
                src = "mount time";
                s->time_from_mount = true;
        }
        if (af_argo_vars_from_time(&o->vars, t, off, src) < 0)
                return af_cli_die("out of memory");
        return 0;
}

/* The spec, if there is one: @ret_name names it (NULL: none). */
static int read_spec(const struct af_opts *o, struct af_buf *data, struct af_buf *err,
                     struct af_setup *s, const char **ret_name)
{
        struct af_spec_options so = { .template_name = o->template_name,
                                      .workflow = o->workflow };
        int r;

        r = read_spec_source(o, data, ret_name);
        if (r)
                return r;
        if (*ret_name) {
                r = af_spec_parse_opts(data->ptr ? data->ptr : "", data->len, *ret_name, &so,
                                       &s->spec, err);
                if (r < 0)
                        return af_cli_die("%s", af_buf_str(err));
                s->have_spec = true;
        } else if (o->template_name || o->workflow) {
                return af_cli_die("--template and --workflow need --spec");
        }
        return 0;
}

/* --repository-config FILE: Argo's repository YAML, or the ConfigMap that holds it (the key
 * the workflow's spec.artifactRepositoryRef names wins over the ConfigMap's default). */
static int repo_from_config(const char *path, struct af_buf *data, struct af_buf *err,
                            struct af_setup *s)
{
        int r;

        af_buf_reset(data);
        r = read_file(path, data);
        if (r < 0)
                return af_cli_die("cannot read --repository-config %s: %s", path, strerror(-r));
        struct af_repository_ref ref = { 0 };

        if (s->have_spec) {
                ref.configmap = s->spec.repo_ref_configmap;
                ref.key = s->spec.repo_ref_key;
        }
        r = af_repository_parse_ref(data->ptr ? data->ptr : "", data->len, path, &ref, &s->repo,
                                    err);
        if (r < 0)
                return af_cli_die("%s", af_buf_str(err));
        if (key_format_of(&s->repo, &s->key_format) < 0)
                return af_cli_die("out of memory");
        return 0;
}

/* The spec's archiveLocation becomes the repository; its key is the key format. */
static int repo_from_archive_location(struct af_setup *s)
{
        struct af_s3_location *al = &s->spec.archive_location;

        s->repo = *al;
        memset(al, 0, sizeof(*al));
        al->insecure = -1;
        s->key_format = strdup(s->repo.key ? s->repo.key : "");
        return s->key_format ? 0 : af_cli_die("out of memory");
}

/* Where objects go: a workflow template's own full archiveLocation (Argo uses it instead of
 * any repository: workflow/controller/workflowpod.go, addArchiveLocation), else the flag,
 * else Argo's repository YAML, else the resolved template's archiveLocation (whose key Argo
 * has already resolved). */
static int find_repository(const struct af_opts *o, struct af_buf *data, struct af_buf *err,
                           struct af_setup *s)
{
        int r;

        if (s->have_spec && !s->spec.is_resolved_template && s->spec.has_archive_location) {
                af_log_info("op=mount msg=\"the template's own archiveLocation is the "
                            "repository, as in Argo\" bucket=%s",
                            af_q(s->spec.archive_location.bucket));
                r = repo_from_archive_location(s);
                s->key_format_from = "the template's archiveLocation.s3.key";
        } else if (o->repo) {
                r = repo_from_url(o->repo, s);
        } else if (o->repository_config) {
                r = repo_from_config(o->repository_config, data, err, s);
                s->key_format_from = "--repository-config keyFormat";
        } else if (s->have_spec && s->spec.has_archive_location &&
                   s->spec.archive_location.bucket) {
                r = repo_from_archive_location(s);
                s->key_format_from = "the resolved template's archiveLocation.s3.key";
        } else {
                r = af_cli_die("no repository: give --artifact-repository s3://BUCKET/KEYFORMAT "
                               "or --repository-config FILE%s",
                               s->have_spec ? " (the spec has no archiveLocation.s3)" : "");
        }
        if (r)
                return r;
        /* Argo's rule: an empty keyFormat means DefaultArchivePattern. */
        if (!*s->key_format || strcmp(s->key_format, "/") == 0) {
                free(s->key_format);
                s->key_format = strdup(ARGO_DEFAULT_PATTERN);
        }
        if (s->repo.endpoint && *s->repo.endpoint) {
                bool has_scheme = strstr(s->repo.endpoint, "://") != NULL;

                snprintf(s->endpoint, sizeof(s->endpoint), "%s%s",
                         has_scheme ? "" : (s->repo.insecure == 1 ? "http://" : "https://"),
                         s->repo.endpoint);
        }
        return 0;
}

/* The variables, then the router over them. */
static int make_router(struct af_opts *o, const char *default_as, bool strict,
                       const char *spec_name, struct af_buf *err, struct af_setup *s)
{
        struct af_router_config rc = { 0 };
        int r;

        /* Variables: --var (already set), the spec, the environment, the creation time. */
        if ((s->have_spec && af_argo_vars_from_spec(&o->vars, &s->spec) < 0) ||
            af_vars_from_env(&o->vars) < 0)
                return af_cli_die("out of memory");
        r = set_creation_time(o, s);
        if (r)
                return r;
        rc.bucket = s->repo.bucket;
        rc.key_format = s->key_format;
        rc.key_format_from = s->key_format_from;
        rc.mount_as = o->as ? o->as : default_as;
        rc.archive_default = (enum af_archive)o->archive_default;
        /* Inside an Argo pod Argo's wait container uploads the same outputs after the
         * program: its default strategy (tar) gives both the same keys. */
        if (rc.archive_default == AF_ARCHIVE_DEFAULT && af_setup_in_argo_pod(s))
                rc.archive_default = AF_ARCHIVE_TAR;
        rc.unmatched = (enum af_unmatched)o->unmatched;
        rc.strict_paths = strict;
        rc.endpoint = o->endpoint ? o->endpoint : s->endpoint[0] ? s->endpoint : NULL;
        /* A spec whose template declares no outputs would upload nothing: surely a mistake
         * (the wrong --template?), unless every file is wanted. */
        if (s->have_spec && s->spec.nartifacts == 0 && o->unmatched != AF_UNMATCHED_UPLOAD)
                return af_cli_die("%s: template '%s' declares no output artifacts, so nothing "
                                  "would be uploaded (pick the pod's template with --template, "
                                  "or upload every file with --unmatched upload)",
                                  spec_name, s->spec.template_name ? s->spec.template_name : "?");
        r = af_router_init(&s->router, &rc, s->have_spec ? &s->spec : NULL, &o->vars, err);
        if (r < 0)
                return af_cli_die("%s", af_buf_str(err));
        return 0;
}

int af_setup_init(struct af_opts *o, const char *default_as, bool strict, struct af_setup *s)
{
        struct af_buf err, data;
        const char *spec_name = NULL;
        int r;

        memset(s, 0, sizeof(*s));
        s->repo.insecure = -1;
        af_buf_init(&err, 4096);
        af_buf_init(&data, AF_SPEC_MAX + 1);
        r = read_spec(o, &data, &err, s, &spec_name);
        if (r == 0)
                r = find_repository(o, &data, &err, s);
        if (r == 0)
                r = make_router(o, default_as, strict, spec_name, &err, s);
        if (r)
                af_setup_done(s);
        af_buf_done(&err);
        af_buf_done(&data);
        return r;
}

bool af_setup_in_argo_pod(const struct af_setup *s)
{
        return s->have_spec && s->spec.is_resolved_template;
}

bool af_setup_uses_time(const struct af_setup *s)
{
        if (strstr(s->key_format, "creationTimestamp"))
                return true;
        for (size_t i = 0; s->have_spec && i < s->spec.nartifacts; i++)
                if (s->spec.artifacts[i].s3_key &&
                    strstr(s->spec.artifacts[i].s3_key, "creationTimestamp"))
                        return true;
        return false;
}

static const char *default_endpoint(const char *region, char *buf, size_t n)
{
        const char *e = getenv("AWS_ENDPOINT_URL_S3");

        if (!e || !*e)
                e = getenv("AWS_ENDPOINT_URL");
        if (e && *e)
                return e;
        snprintf(buf, n, "https://s3.%s.amazonaws.com", region);
        return buf;
}

static const char *default_region(void)
{
        static char profile_region[64];
        const char *r = getenv("AWS_REGION");

        if (!r || !*r)
                r = getenv("AWS_DEFAULT_REGION");
        if ((!r || !*r) && af_creds_profile_region(profile_region, sizeof(profile_region)) == 0 &&
            profile_region[0])
                r = profile_region;
        return r && *r ? r : "us-east-1";
}

void af_setup_log_credentials(struct af_creds_provider *p)
{
        struct af_creds c;
        char what[512];

        if (af_creds_get(p, &c) < 0)
                return;
        af_creds_describe(&c, what, sizeof(what));
        explicit_bzero(&c, sizeof(c));
        af_log_info("op=credentials source=%s", af_q(what));
}

/* ---- S3 and queue settings from the options (mount, run and drain share them) --------- */

void af_setup_s3_config(struct af_opts *o, const char *repo_region, const char *repo_endpoint,
                           char *endpoint_buf, size_t n, struct af_s3_config *s3c)
{
        s3c->region = o->region                              ? o->region
                      : repo_region && *repo_region ? repo_region
                                                    : default_region();
        s3c->endpoint = o->endpoint                            ? o->endpoint
                        : repo_endpoint && *repo_endpoint ? repo_endpoint
                                                          : default_endpoint(s3c->region,
                                                                             endpoint_buf, n);
        s3c->ca_file = o->ca_file;
        s3c->object = &o->object;
        s3c->low_speed_time_s = o->low_speed_time_s;
        s3c->connect_timeout_ms = o->connect_timeout_ms;
        s3c->checksum = (enum af_checksum)o->checksum;
        s3c->addressing = (enum af_addressing)o->addressing;
}

void af_setup_queue_config(const struct af_opts *o, int files_fd, int journal_fd,
                              const struct af_s3_config *s3c, struct af_creds_provider *creds,
                              struct af_queue_config *qc)
{
        qc->spool_dirfd = files_fd;
        qc->journal = true;
        qc->journal_dirfd = journal_fd;
        qc->workers = o->concurrency;
        qc->max_attempts = o->attempts;
        qc->retry_for_ms = o->retry_for_ms;
        qc->part_size = o->part_size;
        qc->part_concurrency = o->part_concurrency;
        qc->preserve_metadata = o->preserve_metadata;
        qc->multipart_threshold = o->multipart_threshold;
        qc->copy_part_threshold = o->copy_part_threshold;
        /* A closed file waits 200 ms (the queue's default settle) so that a rename right after
         * its close (write-temp-then-rename) finds it not yet uploaded and nothing goes up
         * under the temporary name. Where the object of a name renamed away is deleted (the
         * default) and the rename copies it server-side, a small file loses nothing by going
         * up at once (the seed's latency: 200 ms -> a few ms). A large one keeps the wait:
         * its upload takes long enough that a rename would land during it, and the final
         * name would be uploaded a second time. */
        qc->settle_ms = 0;
        qc->settle_min_size = o->no_delete_on_unlink ? 0 : AF_SETTLE_MIN_SIZE;
        qc->s3 = s3c;
        qc->creds = creds;
}

