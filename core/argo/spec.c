/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Argo spec reader on libyaml's document API. libyaml resolves anchors and aliases into
 * shared nodes; YAML 1.1 merge keys ("<<: *base") are not libyaml's job, so af_yaml_get()
 * follows them itself, as Go's YAML decoder (which Argo uses) does.
 */
#include "argo/spec.h"
#include "argo/yaml_read.h"
#include "base/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

static const char *const workflow_kinds[] = {
        "Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow",
};

const char *af_archive_name(enum af_archive a)
{
        switch (a) {
        case AF_ARCHIVE_NONE:
                return "none";
        case AF_ARCHIVE_TAR:
                return "tar";
        case AF_ARCHIVE_ZIP:
                return "zip";
        case AF_ARCHIVE_DEFAULT:
        default:
                return "default";
        }
}

static int parse_enum(struct af_yaml *c, const yaml_node_t *e, struct af_param *p)
{
        size_t n;

        if (!e)
                return 0;
        if (e->type != YAML_SEQUENCE_NODE)
                return af_yaml_fail(c, e, "parameter enum must be a list", NULL);
        n = (size_t)(e->data.sequence.items.top - e->data.sequence.items.start);
        p->enums = calloc(n ? n : 1, sizeof(*p->enums));
        if (!p->enums)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *v = af_yaml_scalar(af_yaml_node(c, e->data.sequence.items.start[i]));

                p->enums[i] = strdup(v ? v : "");
                if (!p->enums[i])
                        return -ENOMEM;
                p->nenums++;
        }
        return 0;
}

static void param_done(struct af_param *p)
{
        AF_FREE_ALL(p->name, p->value, p->def, p->given_value, p->global_name, p->description);
        for (size_t i = 0; i < p->nenums; i++)
                free(p->enums[i]);
        free(p->enums);
}

/* The entries of @node (a list or a mapping, as @type says; absent: none): their count in
 * *ret_n and a zeroed array of @size-byte elements for them in *ret. 1 if there are any
 * (the array is never empty, so the caller may fill it), 0 if @node is absent. */
static int collection(struct af_yaml *c, const yaml_node_t *node, yaml_node_type_t type,
                      const char *what, size_t size, void **ret, size_t *ret_n)
{
        size_t n;

        if (!node)
                return 0;
        if (node->type != type)
                return af_yaml_fail(c, node, what,
                               type == YAML_SEQUENCE_NODE ? " must be a list" : " must be a mapping");
        n = type == YAML_SEQUENCE_NODE
                    ? (size_t)(node->data.sequence.items.top - node->data.sequence.items.start)
                    : (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
        *ret = calloc(n ? n : 1, size);
        if (!*ret)
                return -ENOMEM;
        *ret_n = n;
        return 1;
}

/* A list of {name, value} mappings (arguments.parameters, inputs.parameters). */
static int parse_param_list(struct af_yaml *c, const yaml_node_t *ps, const char *what,
                            struct af_param **ret, size_t *ret_n)
{
        size_t n = 0;
        int r;

        r = collection(c, ps, YAML_SEQUENCE_NODE, what, sizeof(**ret), (void **)ret, &n);
        if (r <= 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *p = af_yaml_node(c, ps->data.sequence.items.start[i]);
                const char *name = af_yaml_get_scalar(c, p, "name");

                if (!name)
                        return af_yaml_fail(c, p, "parameter has no name in ", what);
                (*ret)[i].name = strdup(name);
                if (!(*ret)[i].name)
                        return -ENOMEM;
                (*ret_n)++;
                r = af_yaml_dup(c, p, "value", &(*ret)[i].given_value);
                if (r == 0)
                        r = af_yaml_dup(c, p, "default", &(*ret)[i].def);
                if (r == 0)
                        r = af_yaml_dup(c, p, "globalName", &(*ret)[i].global_name);
                if (r == 0)
                        r = af_yaml_dup(c, p, "description", &(*ret)[i].description);
                if (r < 0)
                        return r;
                /* Argo uses the default when no value is given. */
                if ((*ret)[i].given_value || (*ret)[i].def) {
                        (*ret)[i].value = strdup((*ret)[i].given_value ? (*ret)[i].given_value
                                                                       : (*ret)[i].def);
                        if (!(*ret)[i].value)
                                return -ENOMEM;
                }
                r = parse_enum(c, af_yaml_get(c, p, "enum"), &(*ret)[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_params(struct af_yaml *c, const yaml_node_t *wfspec, struct af_spec *s)
{
        return parse_param_list(c, af_yaml_get(c, af_yaml_get(c, wfspec, "arguments"), "parameters"),
                                "arguments.parameters", &s->params, &s->nparams);
}

static void kv_free(struct af_kv **kv, size_t *n)
{
        for (size_t i = 0; i < *n; i++) {
                free((*kv)[i].key);
                free((*kv)[i].value);
        }
        free(*kv);
        *kv = NULL;
        *n = 0;
}

/* A string-to-string mapping (labels, annotations), in document order. */
static int parse_kv_map(struct af_yaml *c, const yaml_node_t *m, const char *what,
                        struct af_kv **ret, size_t *ret_n)
{
        size_t n = 0;
        int r;

        r = collection(c, m, YAML_MAPPING_NODE, what, sizeof(**ret), (void **)ret, &n);
        if (r <= 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                yaml_node_pair_t *p = &m->data.mapping.pairs.start[i];
                const char *k = af_yaml_scalar(af_yaml_node(c, p->key));
                const char *v = af_yaml_scalar(af_yaml_node(c, p->value));

                if (!k || !v)
                        return af_yaml_fail(c, af_yaml_node(c, p->key), what,
                                       " must map strings to strings");
                (*ret)[i].key = strdup(k);
                (*ret)[i].value = strdup(v);
                (*ret_n)++;
                if (!(*ret)[i].key || !(*ret)[i].value)
                        return -ENOMEM;
        }
        return 0;
}

static void artifact_done(struct af_artifact *a)
{
        AF_FREE_ALL(a->compression_text, a->name, a->path, a->s3_key, a->s3_bucket, a->s3_endpoint);
}

static int parse_archive(struct af_yaml *c, const yaml_node_t *n, struct af_artifact *a)
{
        yaml_node_t *tar;
        const char *lvl;
        char *end;
        long v;

        if (n->type != YAML_MAPPING_NODE)
                return af_yaml_fail(c, n, "archive must be a mapping (none: {}, tar: {...} or zip: {})",
                               NULL);
        if (af_yaml_get(c, n, "none")) {
                a->archive = AF_ARCHIVE_NONE;
        } else if (af_yaml_get(c, n, "zip")) {
                a->archive = AF_ARCHIVE_ZIP;
        } else if ((tar = af_yaml_get(c, n, "tar"))) {
                a->archive = AF_ARCHIVE_TAR;
                lvl = af_yaml_get_scalar(c, tar, "compressionLevel");
                if (lvl && strstr(lvl, "{{")) { /* a parameter: resolved with the others */
                        a->compression_text = strdup(lvl);
                        return a->compression_text ? 0 : -ENOMEM;
                }
                if (lvl) {
                        errno = 0;
                        v = strtol(lvl, &end, 10);
                        if (errno || *end || end == lvl || v < -1 || v > 9)
                                return af_yaml_fail(c, af_yaml_get(c, tar, "compressionLevel"),
                                               "compressionLevel must be -1..9, not ", lvl);
                        a->compression_level = (int)v;
                }
        } else {
                return af_yaml_fail(c, n, "archive has none of none, tar, zip", NULL);
        }
        return 0;
}

/* An artifact's own location, as Argo's ArtifactLocation.Get() picks it (the first of
 * these that is set, pkg/apis/workflow/v1alpha1/workflow_types.go) and its HasLocation()
 * for each kind. S3, or a key-only location of another kind, goes to the repository (the
 * executor's Relocate keeps the key); a full location of another kind is saved by that
 * kind's driver. */
static const struct {
        const char *kind;
        const char *need[3]; /* the fields HasLocation() requires */
        const char *key;     /* the field GetKey() returns, or NULL */
} locations[] = {
        { "artifactory", { "url", "usernameSecret", NULL }, NULL },
        { "azure", { "endpoint", "container", "blob" }, "blob" },
        { "git", { "repo", NULL, NULL }, NULL },
        { "gcs", { "bucket", "key", NULL }, "key" },
        { "hdfs", { "addresses", NULL, NULL }, "path" },
        { "http", { "url", NULL, NULL }, NULL },
        { "oss", { "bucket", "endpoint", "key" }, "key" },
        { "raw", { NULL, NULL, NULL }, NULL },
        { "s3", { NULL, NULL, NULL }, "key" },
        { "plugin", { "name", "configuration", "key" }, "key" },
};

static bool has_field(struct af_yaml *c, const yaml_node_t *loc, const char *field)
{
        const yaml_node_t *v = af_yaml_get(c, loc, field);

        if (!v)
                return false;
        if (v->type == YAML_SCALAR_NODE)
                return v->data.scalar.length > 0;
        if (v->type == YAML_SEQUENCE_NODE)
                return v->data.sequence.items.top > v->data.sequence.items.start;
        return true;
}

static int parse_artifact_location(struct af_yaml *c, const yaml_node_t *n, struct af_artifact *a)
{
        for (size_t i = 0; i < sizeof(locations) / sizeof(locations[0]); i++) {
                yaml_node_t *f = af_yaml_get(c, n, locations[i].kind);
                bool full = true;
                int r;

                if (!f)
                        continue;
                if (strcmp(locations[i].kind, "s3") == 0) {
                        a->key_pos = af_yaml_pos(af_yaml_get(c, f, "key"));
                        r = af_yaml_dup(c, f, "key", &a->s3_key);
                        if (r == 0)
                                r = af_yaml_dup(c, f, "bucket", &a->s3_bucket);
                        if (r == 0)
                                r = af_yaml_dup(c, f, "endpoint", &a->s3_endpoint);
                        return r;
                }
                for (int k = 0; k < 3 && locations[i].need[k]; k++)
                        full = full && has_field(c, f, locations[i].need[k]);
                if (full) {
                        a->other_location = locations[i].kind;
                        return 0;
                }
                if (!locations[i].key)
                        return 0;
                a->key_pos = af_yaml_pos(af_yaml_get(c, f, locations[i].key));
                return af_yaml_dup(c, f, locations[i].key, &a->s3_key);
        }
        return 0;
}

static int parse_artifact(struct af_yaml *c, const yaml_node_t *n, struct af_artifact *a)
{
        yaml_node_t *f;
        const char *s;
        int r;

        memset(a, 0, sizeof(*a));
        a->compression_level = -1;
        a->line = (int)n->start_mark.line + 1;
        a->pos = af_yaml_pos(n);
        if (n->type != YAML_MAPPING_NODE)
                return af_yaml_fail(c, n, "an output artifact must be a mapping", NULL);
        a->name_pos = af_yaml_pos(af_yaml_get(c, n, "name"));
        a->path_pos = af_yaml_pos(af_yaml_get(c, n, "path"));
        s = af_yaml_get_scalar(c, n, "name");
        if (!s || !*s)
                return af_yaml_fail(c, n, "output artifact has no name", NULL);
        a->name = strdup(s);
        s = af_yaml_get_scalar(c, n, "path");
        if (!s || !*s) {
                r = af_yaml_fail(c, n, "output artifact has no path: ", a->name);
                goto fail;
        }
        a->path = strdup(s);
        if (!a->name || !a->path) {
                r = -ENOMEM;
                goto fail;
        }
        s = af_yaml_get_scalar(c, n, "optional");
        if (s && af_yaml_bool(s, &a->optional) < 0) {
                r = af_yaml_fail(c, af_yaml_get(c, n, "optional"), "optional must be true or false, not ",
                            s);
                goto fail;
        }
        f = af_yaml_get(c, n, "archive");
        if (f) {
                r = parse_archive(c, f, a);
                if (r < 0)
                        goto fail;
        }
        r = parse_artifact_location(c, n, a);
        if (r < 0)
                goto fail;
        return 0;
fail:
        artifact_done(a);
        return r;
}

static bool is_pod_template(struct af_yaml *c, const yaml_node_t *t)
{
        return af_yaml_get(c, t, "container") || af_yaml_get(c, t, "script") ||
               af_yaml_get(c, t, "containerSet");
}

/* A workflow template's own archiveLocation replaces the repository for its pod when it is
 * a full location (workflow/controller/workflowpod.go, addArchiveLocation: "User explicitly
 * set the location"; S3Artifact.HasLocation: endpoint, bucket and key). */
static int parse_template_location(struct af_yaml *c, const yaml_node_t *t, struct af_spec *s)
{
        yaml_node_t *loc = af_yaml_get(c, af_yaml_get(c, t, "archiveLocation"), "s3");
        struct af_s3_location *al = &s->archive_location;
        int r;

        if (!loc || s->is_resolved_template)
                return 0;
        r = af_s3_location_parse(c, loc, al);
        if (r < 0)
                return r;
        if (al->endpoint && *al->endpoint && al->bucket && *al->bucket && al->key && *al->key)
                s->has_archive_location = true;
        else
                af_s3_location_done(al);
        return 0;
}

static int parse_template(struct af_yaml *c, const yaml_node_t *t, struct af_spec *s)
{
        yaml_node_t *arts = af_yaml_get(c, af_yaml_get(c, t, "outputs"), "artifacts");
        size_t n;
        int r;

        r = parse_template_location(c, t, s);
        if (r < 0)
                return r;

        r = parse_param_list(c, af_yaml_get(c, af_yaml_get(c, t, "inputs"), "parameters"),
                             "inputs.parameters", &s->inputs, &s->ninputs);
        if (r < 0)
                return r;

        if (!is_pod_template(c, t) && !af_yaml_get(c, t, "outputs"))
                return af_yaml_fail(c, t, "template has no container, script or containerSet: ",
                               s->template_name);
        if (!arts)
                return 0;
        if (arts->type != YAML_SEQUENCE_NODE)
                return af_yaml_fail(c, arts, "outputs.artifacts must be a list", NULL);
        n = (size_t)(arts->data.sequence.items.top - arts->data.sequence.items.start);
        if (n > AF_SPEC_MAX_ARTIFACTS)
                return af_yaml_fail(c, arts, "too many output artifacts", NULL);
        s->artifacts = calloc(n ? n : 1, sizeof(*s->artifacts));
        if (!s->artifacts)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = parse_artifact(c, af_yaml_node(c, arts->data.sequence.items.start[i]),
                                   &s->artifacts[i]);
                if (r < 0)
                        return r;
                s->nartifacts++;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(s->artifacts[j].name, s->artifacts[i].name) == 0)
                                return af_yaml_fail(c, af_yaml_node(c, arts->data.sequence.items.start[i]),
                                               "duplicate output artifact name: ",
                                               s->artifacts[i].name);
        }
        return 0;
}

static int list_templates(struct af_yaml *c, const yaml_node_t *templates, struct af_buf *out)
{
        const char *sep = "";

        for (yaml_node_item_t *it = templates->data.sequence.items.start;
             it < templates->data.sequence.items.top; it++) {
                const char *name = af_yaml_get_scalar(c, af_yaml_node(c, *it), "name");

                if (name) {
                        (void)af_buf_addf(out, "%s%s", sep, name);
                        sep = ", ";
                }
        }
        return 0;
}

/* A Workflow-like document: kind, metadata, spec (or spec.workflowSpec). */
/* spec.artifactRepositoryRef {configMap, key} (both optional). */
static int parse_repo_ref(struct af_yaml *c, const yaml_node_t *spec, struct af_spec *s)
{
        yaml_node_t *ref = af_yaml_get(c, spec, "artifactRepositoryRef");
        int r;

        r = af_yaml_dup(c, ref, "configMap", &s->repo_ref_configmap);
        if (r == 0)
                r = af_yaml_dup(c, ref, "key", &s->repo_ref_key);
        return r;
}

static int parse_workflow(struct af_yaml *c, const yaml_node_t *root, const char *template_name,
                          struct af_spec *s)
{
        yaml_node_t *meta = af_yaml_get(c, root, "metadata");
        yaml_node_t *spec = af_yaml_get(c, root, "spec");
        yaml_node_t *templates, *chosen = NULL;
        const char *want;
        int r;

        if ((r = af_yaml_dup(c, root, "kind", &s->kind)) < 0 ||
            (r = af_yaml_dup(c, meta, "name", &s->name)) < 0 ||
            (r = af_yaml_dup(c, meta, "generateName", &s->generate_name)) < 0 ||
            (r = af_yaml_dup(c, meta, "namespace", &s->namespace)) < 0 ||
            (r = af_yaml_dup(c, meta, "uid", &s->uid)) < 0)
                return r;
        r = parse_kv_map(c, af_yaml_get(c, meta, "labels"), "metadata.labels", &s->labels,
                         &s->nlabels);
        if (r == 0)
                r = parse_kv_map(c, af_yaml_get(c, meta, "annotations"), "metadata.annotations",
                                 &s->annotations, &s->nannotations);
        if (r < 0)
                return r;
        if (!spec || spec->type != YAML_MAPPING_NODE)
                return af_yaml_fail(c, root, "document has no spec", NULL);
        if (s->kind && strcmp(s->kind, "CronWorkflow") == 0) {
                yaml_node_t *wm = af_yaml_get(c, spec, "workflowMetadata");

                /* The workflows a CronWorkflow makes carry spec.workflowMetadata's labels and
                 * annotations, not the CronWorkflow's own. */
                kv_free(&s->labels, &s->nlabels);
                kv_free(&s->annotations, &s->nannotations);
                r = parse_kv_map(c, af_yaml_get(c, wm, "labels"), "workflowMetadata.labels",
                                 &s->labels, &s->nlabels);
                if (r == 0)
                        r = parse_kv_map(c, af_yaml_get(c, wm, "annotations"),
                                         "workflowMetadata.annotations", &s->annotations,
                                         &s->nannotations);
                if (r < 0)
                        return r;
                spec = af_yaml_get(c, spec, "workflowSpec");
                if (!spec || spec->type != YAML_MAPPING_NODE)
                        return af_yaml_fail(c, root, "CronWorkflow has no spec.workflowSpec", NULL);
        }

        r = af_yaml_dup(c, spec, "entrypoint", &s->entrypoint);
        if (r == 0)
                r = af_yaml_dup(c, spec, "serviceAccountName", &s->service_account);
        if (r == 0)
                r = af_yaml_dup(c, spec, "priority", &s->priority);
        if (r == 0)
                r = parse_repo_ref(c, spec, s);
        if (r < 0)
                return r;
        r = parse_params(c, spec, s);
        if (r < 0)
                return r;
        templates = af_yaml_get(c, spec, "templates");
        if (!templates || templates->type != YAML_SEQUENCE_NODE)
                return af_yaml_fail(c, spec, "spec has no templates list", NULL);
        want = template_name ? template_name : s->entrypoint;
        if (!want)
                return af_yaml_fail(c, spec,
                               "spec has no entrypoint; name the template with --template", NULL);
        for (yaml_node_item_t *it = templates->data.sequence.items.start;
             it < templates->data.sequence.items.top; it++) {
                const char *name = af_yaml_get_scalar(c, af_yaml_node(c, *it), "name");

                if (name && strcmp(name, want) == 0) {
                        chosen = af_yaml_node(c, *it);
                        break;
                }
        }
        if (!chosen) {
                struct af_buf names;

                af_buf_init(&names, 4096);
                list_templates(c, templates, &names);
                (void)af_buf_addf(c->err, "%s:%zu:%zu: no template named '%s' (templates: %s)",
                                  c->filename, templates->start_mark.line + 1,
                                  templates->start_mark.column + 1, want, af_buf_str(&names));
                af_buf_done(&names);
                return -EINVAL;
        }
        s->template_name = strdup(want);
        if (!s->template_name)
                return -ENOMEM;
        if (!is_pod_template(c, chosen))
                return af_yaml_fail(c, chosen,
                               "template is not a container, script or containerSet template "
                               "(a steps or dag template runs no pod); choose the pod's template "
                               "with --template NAME: ",
                               want);
        return parse_template(c, chosen, s);
}

/* Argo's resolved template (/var/run/argo/template): one template object, no kind. */
static bool is_resolved_template(struct af_yaml *c, const yaml_node_t *root)
{
        return root->type == YAML_MAPPING_NODE && !af_yaml_get(c, root, "kind") &&
               af_yaml_get_scalar(c, root, "name") && (is_pod_template(c, root) ||
                                               af_yaml_get(c, root, "outputs"));
}

static int parse_resolved_template(struct af_yaml *c, const yaml_node_t *root, struct af_spec *s)
{
        yaml_node_t *loc = af_yaml_get(c, af_yaml_get(c, root, "archiveLocation"), "s3");
        int r;

        s->is_resolved_template = true;
        s->archive_location.insecure = -1;
        if ((r = af_yaml_dup(c, root, "name", &s->template_name)) < 0)
                return r;
        if (loc) {
                r = af_s3_location_parse(c, loc, &s->archive_location);
                if (r < 0)
                        return r;
                s->has_archive_location = true;
        }
        return parse_template(c, root, s);
}

static bool is_workflow_kind(const char *kind)
{
        for (size_t i = 0; i < sizeof(workflow_kinds) / sizeof(workflow_kinds[0]); i++)
                if (kind && strcmp(kind, workflow_kinds[i]) == 0)
                        return true;
        return false;
}

void af_spec_done(struct af_spec *s)
{
        for (size_t i = 0; i < s->nartifacts; i++)
                artifact_done(&s->artifacts[i]);
        for (size_t i = 0; i < s->nparams; i++)
                param_done(&s->params[i]);
        for (size_t i = 0; i < s->ninputs; i++)
                param_done(&s->inputs[i]);
        kv_free(&s->labels, &s->nlabels);
        kv_free(&s->annotations, &s->nannotations);
        af_s3_location_done(&s->archive_location);
        AF_FREE_ALL(s->artifacts, s->params, s->inputs, s->uid, s->priority, s->service_account,
                    s->repo_ref_configmap, s->repo_ref_key, s->filename, s->kind, s->name,
                    s->generate_name, s->namespace, s->entrypoint, s->template_name);
        memset(s, 0, sizeof(*s));
}

/* Does @root (a workflow document) carry the name the user asked for? */
static bool workflow_named(struct af_yaml *c, const yaml_node_t *root, const char *want)
{
        yaml_node_t *meta = af_yaml_get(c, root, "metadata");
        const char *n = af_yaml_get_scalar(c, meta, "name"), *g = af_yaml_get_scalar(c, meta, "generateName");

        return !want || (n && strcmp(n, want) == 0) || (g && strcmp(g, want) == 0);
}

int af_spec_parse(const char *data, size_t len, const char *filename, const char *template_name,
                  struct af_spec *ret, struct af_buf *err)
{
        struct af_spec_options o = { .template_name = template_name };

        return af_spec_parse_opts(data, len, filename, &o, ret, err);
}

int af_spec_parse_opts(const char *data, size_t len, const char *filename,
                       const struct af_spec_options *opts, struct af_spec *ret,
                       struct af_buf *err)
{
        const char *template_name = opts ? opts->template_name : NULL;
        const char *want_wf = opts ? opts->workflow : NULL;
        yaml_parser_t parser;
        yaml_document_t doc;
        struct af_spec s;
        struct af_yaml c = { .doc = &doc, .filename = filename, .err = err };
        int ndocs = 0, r = -EINVAL;
        bool found = false;

        if (len > AF_SPEC_MAX) {
                (void)af_buf_addf(err, "%s: spec is larger than %zu bytes", filename, AF_SPEC_MAX);
                return -E2BIG;
        }
        memset(&s, 0, sizeof(s));
        s.archive_location.insecure = -1;
        s.filename = strdup(filename);
        if (!s.filename)
                return -ENOMEM;
        if (!yaml_parser_initialize(&parser)) {
                free(s.filename);
                return -ENOMEM;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
        for (;;) {
                yaml_node_t *root;

                if (!yaml_parser_load(&parser, &doc)) {
                        (void)af_buf_addf(err, "%s:%zu:%zu: YAML error: %s%s%s", filename,
                                          parser.problem_mark.line + 1,
                                          parser.problem_mark.column + 1,
                                          parser.problem ? parser.problem : "unknown",
                                          parser.context ? " " : "",
                                          parser.context ? parser.context : "");
                        r = -EINVAL;
                        break;
                }
                root = yaml_document_get_root_node(&doc);
                if (!root) { /* end of stream */
                        yaml_document_delete(&doc);
                        if (!found && want_wf) {
                                (void)af_buf_addf(err,
                                                  "%s: no workflow document named '%s' in %d "
                                                  "document(s)",
                                                  filename, want_wf, ndocs);
                                r = -EINVAL;
                        } else if (!found) {
                                (void)af_buf_addf(err,
                                                  "%s: no Workflow, WorkflowTemplate, "
                                                  "ClusterWorkflowTemplate or CronWorkflow "
                                                  "document (nor a resolved template) in %d "
                                                  "document(s)",
                                                  filename, ndocs);
                                r = -EINVAL;
                        }
                        break;
                }
                ndocs++;
                r = af_yaml_begin_doc(&c);
                if (r < 0) {
                        yaml_document_delete(&doc);
                        break;
                }
                if (root->type == YAML_MAPPING_NODE &&
                    is_workflow_kind(af_yaml_get_scalar(&c, root, "kind")) &&
                    workflow_named(&c, root, want_wf)) {
                        r = parse_workflow(&c, root, template_name, &s);
                        found = true;
                        yaml_document_delete(&doc);
                        break;
                }
                if (!want_wf && is_resolved_template(&c, root)) {
                        r = parse_resolved_template(&c, root, &s);
                        found = true;
                        yaml_document_delete(&doc);
                        break;
                }
                yaml_document_delete(&doc);
        }
        yaml_parser_delete(&parser);
        free(c.seen);
        if (r < 0) {
                af_spec_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}
