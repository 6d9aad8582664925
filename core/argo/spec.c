/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Argo spec reader on libyaml's document API. libyaml resolves anchors and aliases into
 * shared nodes; YAML 1.1 merge keys ("<<: *base") are not libyaml's job, so map_get()
 * follows them itself, as Go's YAML decoder (which Argo uses) does.
 */
#include "argo/spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

struct ctx {
        yaml_document_t *doc;
        const char *filename;
        struct af_buf *err;
        /* Merge-key lookups visit each mapping at most once: seen[i] == lookup_id marks node
         * i+1 as visited in the current lookup, so no clearing is needed between lookups.
         * Without it, "<<: [*a, *a, ...]" nested a few levels deep makes lookups exponential. */
        unsigned *seen;
        size_t nseen;
        unsigned lookup_id;
};

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

static int fail_at(struct ctx *c, const yaml_node_t *n, const char *what, const char *detail)
{
        if (n)
                (void)af_buf_addf(c->err, "%s:%zu:%zu: %s%s", c->filename,
                                  n->start_mark.line + 1, n->start_mark.column + 1, what,
                                  detail ? detail : "");
        else
                (void)af_buf_addf(c->err, "%s: %s%s", c->filename, what, detail ? detail : "");
        return -EINVAL;
}

static yaml_node_t *node_at(struct ctx *c, int idx)
{
        return yaml_document_get_node(c->doc, idx);
}

static const char *scalar(const yaml_node_t *n)
{
        if (!n || n->type != YAML_SCALAR_NODE)
                return NULL;
        return (const char *)n->data.scalar.value;
}

/* Marks @n visited in this lookup; false if it already was. */
static bool first_visit(struct ctx *c, const yaml_node_t *n)
{
        size_t i = (size_t)(n - c->doc->nodes.start);

        if (!c->seen || i >= c->nseen)
                return true;
        if (c->seen[i] == c->lookup_id)
                return false;
        c->seen[i] = c->lookup_id;
        return true;
}

/* Looks @key up in mapping @map, then in its merge keys ("<<"), depth-limited. */
static yaml_node_t *map_get_depth(struct ctx *c, const yaml_node_t *map, const char *key,
                                  int depth)
{
        yaml_node_pair_t *p;

        if (!map || map->type != YAML_MAPPING_NODE || depth > 8 || !first_visit(c, map))
                return NULL;
        for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                const char *k = scalar(node_at(c, p->key));

                if (k && strcmp(k, key) == 0)
                        return node_at(c, p->value);
        }
        for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                const char *k = scalar(node_at(c, p->key));
                yaml_node_t *v, *found;

                if (!k || strcmp(k, "<<") != 0)
                        continue;
                v = node_at(c, p->value);
                if (v && v->type == YAML_MAPPING_NODE)
                        return map_get_depth(c, v, key, depth + 1);
                if (v && v->type == YAML_SEQUENCE_NODE) {
                        for (yaml_node_item_t *it = v->data.sequence.items.start;
                             it < v->data.sequence.items.top; it++) {
                                found = map_get_depth(c, node_at(c, *it), key, depth + 1);
                                if (found)
                                        return found;
                        }
                }
        }
        return NULL;
}

static yaml_node_t *map_get(struct ctx *c, const yaml_node_t *map, const char *key)
{
        if (++c->lookup_id == 0) { /* wrapped: forget all marks */
                if (c->seen)
                        memset(c->seen, 0, c->nseen * sizeof(*c->seen));
                c->lookup_id = 1;
        }
        return map_get_depth(c, map, key, 0);
}

static const char *map_scalar(struct ctx *c, const yaml_node_t *map, const char *key)
{
        return scalar(map_get(c, map, key));
}

/* Duplicates an optional scalar field; -ENOMEM only. */
static int dup_field(struct ctx *c, const yaml_node_t *map, const char *key, char **ret)
{
        const char *s = map_scalar(c, map, key);

        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "true", "yes", "on", "y" };
        static const char *const no[] = { "false", "no", "off", "n" };

        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static int parse_enum(struct ctx *c, const yaml_node_t *e, struct af_param *p)
{
        size_t n;

        if (!e)
                return 0;
        if (e->type != YAML_SEQUENCE_NODE)
                return fail_at(c, e, "parameter enum must be a list", NULL);
        n = (size_t)(e->data.sequence.items.top - e->data.sequence.items.start);
        p->enums = calloc(n ? n : 1, sizeof(*p->enums));
        if (!p->enums)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *v = scalar(node_at(c, e->data.sequence.items.start[i]));

                p->enums[i] = strdup(v ? v : "");
                if (!p->enums[i])
                        return -ENOMEM;
                p->nenums++;
        }
        return 0;
}

static void param_done(struct af_param *p)
{
        free(p->name);
        free(p->value);
        free(p->def);
        free(p->given_value);
        free(p->global_name);
        free(p->description);
        for (size_t i = 0; i < p->nenums; i++)
                free(p->enums[i]);
        free(p->enums);
}

/* The entries of @node (a list or a mapping, as @type says; absent: none): their count in
 * *ret_n and a zeroed array of @size-byte elements for them in *ret. 1 if there are any
 * (the array is never empty, so the caller may fill it), 0 if @node is absent. */
static int collection(struct ctx *c, const yaml_node_t *node, yaml_node_type_t type,
                      const char *what, size_t size, void **ret, size_t *ret_n)
{
        size_t n;

        if (!node)
                return 0;
        if (node->type != type)
                return fail_at(c, node, what,
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
static int parse_param_list(struct ctx *c, const yaml_node_t *ps, const char *what,
                            struct af_param **ret, size_t *ret_n)
{
        size_t n = 0;
        int r;

        r = collection(c, ps, YAML_SEQUENCE_NODE, what, sizeof(**ret), (void **)ret, &n);
        if (r <= 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *p = node_at(c, ps->data.sequence.items.start[i]);
                const char *name = map_scalar(c, p, "name");

                if (!name)
                        return fail_at(c, p, "parameter has no name in ", what);
                (*ret)[i].name = strdup(name);
                if (!(*ret)[i].name)
                        return -ENOMEM;
                (*ret_n)++;
                r = dup_field(c, p, "value", &(*ret)[i].given_value);
                if (r == 0)
                        r = dup_field(c, p, "default", &(*ret)[i].def);
                if (r == 0)
                        r = dup_field(c, p, "globalName", &(*ret)[i].global_name);
                if (r == 0)
                        r = dup_field(c, p, "description", &(*ret)[i].description);
                if (r < 0)
                        return r;
                /* Argo uses the default when no value is given. */
                if ((*ret)[i].given_value || (*ret)[i].def) {
                        (*ret)[i].value = strdup((*ret)[i].given_value ? (*ret)[i].given_value
                                                                       : (*ret)[i].def);
                        if (!(*ret)[i].value)
                                return -ENOMEM;
                }
                r = parse_enum(c, map_get(c, p, "enum"), &(*ret)[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_params(struct ctx *c, const yaml_node_t *wfspec, struct af_spec *s)
{
        return parse_param_list(c, map_get(c, map_get(c, wfspec, "arguments"), "parameters"),
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
static int parse_kv_map(struct ctx *c, const yaml_node_t *m, const char *what,
                        struct af_kv **ret, size_t *ret_n)
{
        size_t n = 0;
        int r;

        r = collection(c, m, YAML_MAPPING_NODE, what, sizeof(**ret), (void **)ret, &n);
        if (r <= 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                yaml_node_pair_t *p = &m->data.mapping.pairs.start[i];
                const char *k = scalar(node_at(c, p->key));
                const char *v = scalar(node_at(c, p->value));

                if (!k || !v)
                        return fail_at(c, node_at(c, p->key), what,
                                       " must map strings to strings");
                (*ret)[i].key = strdup(k);
                (*ret)[i].value = strdup(v);
                (*ret_n)++;
                if (!(*ret)[i].key || !(*ret)[i].value)
                        return -ENOMEM;
        }
        return 0;
}

void af_s3_location_done(struct af_s3_location *loc)
{
        free(loc->endpoint);
        free(loc->bucket);
        free(loc->region);
        free(loc->key);
        free(loc->key_format);
        free(loc->key_prefix);
        memset(loc, 0, sizeof(*loc));
        loc->insecure = -1;
}

static int parse_location(struct ctx *c, const yaml_node_t *n, struct af_s3_location *loc)
{
        const char *ins;
        bool b;
        int r;

        if (n->type != YAML_MAPPING_NODE)
                return fail_at(c, n, "s3 must be a mapping", NULL);
        if ((r = dup_field(c, n, "endpoint", &loc->endpoint)) < 0 ||
            (r = dup_field(c, n, "bucket", &loc->bucket)) < 0 ||
            (r = dup_field(c, n, "region", &loc->region)) < 0 ||
            (r = dup_field(c, n, "key", &loc->key)) < 0 ||
            (r = dup_field(c, n, "keyFormat", &loc->key_format)) < 0 ||
            (r = dup_field(c, n, "keyPrefix", &loc->key_prefix)) < 0)
                return r;
        loc->insecure = -1;
        ins = map_scalar(c, n, "insecure");
        if (ins) {
                if (parse_bool(ins, &b) < 0)
                        return fail_at(c, map_get(c, n, "insecure"),
                                       "insecure must be true or false, not ", ins);
                loc->insecure = b;
        }
        return 0;
}

static void artifact_done(struct af_artifact *a)
{
        free(a->compression_text);
        free(a->name);
        free(a->path);
        free(a->s3_key);
        free(a->s3_bucket);
        free(a->s3_endpoint);
}

static int parse_archive(struct ctx *c, const yaml_node_t *n, struct af_artifact *a)
{
        yaml_node_t *tar;
        const char *lvl;
        char *end;
        long v;

        if (n->type != YAML_MAPPING_NODE)
                return fail_at(c, n, "archive must be a mapping (none: {}, tar: {...} or zip: {})",
                               NULL);
        if (map_get(c, n, "none")) {
                a->archive = AF_ARCHIVE_NONE;
        } else if (map_get(c, n, "zip")) {
                a->archive = AF_ARCHIVE_ZIP;
        } else if ((tar = map_get(c, n, "tar"))) {
                a->archive = AF_ARCHIVE_TAR;
                lvl = map_scalar(c, tar, "compressionLevel");
                if (lvl && strstr(lvl, "{{")) { /* a parameter: resolved with the others */
                        a->compression_text = strdup(lvl);
                        return a->compression_text ? 0 : -ENOMEM;
                }
                if (lvl) {
                        errno = 0;
                        v = strtol(lvl, &end, 10);
                        if (errno || *end || end == lvl || v < -1 || v > 9)
                                return fail_at(c, map_get(c, tar, "compressionLevel"),
                                               "compressionLevel must be -1..9, not ", lvl);
                        a->compression_level = (int)v;
                }
        } else {
                return fail_at(c, n, "archive has none of none, tar, zip", NULL);
        }
        return 0;
}

static struct af_pos pos_of(const yaml_node_t *n)
{
        struct af_pos p = { 0, 0 };

        if (n) {
                p.line = (int)n->start_mark.line + 1;
                p.col = (int)n->start_mark.column + 1;
        }
        return p;
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

static bool has_field(struct ctx *c, const yaml_node_t *loc, const char *field)
{
        const yaml_node_t *v = map_get(c, loc, field);

        if (!v)
                return false;
        if (v->type == YAML_SCALAR_NODE)
                return v->data.scalar.length > 0;
        if (v->type == YAML_SEQUENCE_NODE)
                return v->data.sequence.items.top > v->data.sequence.items.start;
        return true;
}

static int parse_artifact_location(struct ctx *c, const yaml_node_t *n, struct af_artifact *a)
{
        for (size_t i = 0; i < sizeof(locations) / sizeof(locations[0]); i++) {
                yaml_node_t *f = map_get(c, n, locations[i].kind);
                bool full = true;
                int r;

                if (!f)
                        continue;
                if (strcmp(locations[i].kind, "s3") == 0) {
                        a->key_pos = pos_of(map_get(c, f, "key"));
                        r = dup_field(c, f, "key", &a->s3_key);
                        if (r == 0)
                                r = dup_field(c, f, "bucket", &a->s3_bucket);
                        if (r == 0)
                                r = dup_field(c, f, "endpoint", &a->s3_endpoint);
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
                a->key_pos = pos_of(map_get(c, f, locations[i].key));
                return dup_field(c, f, locations[i].key, &a->s3_key);
        }
        return 0;
}

static int parse_artifact(struct ctx *c, const yaml_node_t *n, struct af_artifact *a)
{
        yaml_node_t *f;
        const char *s;
        int r;

        memset(a, 0, sizeof(*a));
        a->compression_level = -1;
        a->line = (int)n->start_mark.line + 1;
        a->pos = pos_of(n);
        if (n->type != YAML_MAPPING_NODE)
                return fail_at(c, n, "an output artifact must be a mapping", NULL);
        a->name_pos = pos_of(map_get(c, n, "name"));
        a->path_pos = pos_of(map_get(c, n, "path"));
        s = map_scalar(c, n, "name");
        if (!s || !*s)
                return fail_at(c, n, "output artifact has no name", NULL);
        a->name = strdup(s);
        s = map_scalar(c, n, "path");
        if (!s || !*s) {
                r = fail_at(c, n, "output artifact has no path: ", a->name);
                goto fail;
        }
        a->path = strdup(s);
        if (!a->name || !a->path) {
                r = -ENOMEM;
                goto fail;
        }
        s = map_scalar(c, n, "optional");
        if (s && parse_bool(s, &a->optional) < 0) {
                r = fail_at(c, map_get(c, n, "optional"), "optional must be true or false, not ",
                            s);
                goto fail;
        }
        f = map_get(c, n, "archive");
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

static bool is_pod_template(struct ctx *c, const yaml_node_t *t)
{
        return map_get(c, t, "container") || map_get(c, t, "script") ||
               map_get(c, t, "containerSet");
}

/* A workflow template's own archiveLocation replaces the repository for its pod when it is
 * a full location (workflow/controller/workflowpod.go, addArchiveLocation: "User explicitly
 * set the location"; S3Artifact.HasLocation: endpoint, bucket and key). */
static int parse_template_location(struct ctx *c, const yaml_node_t *t, struct af_spec *s)
{
        yaml_node_t *loc = map_get(c, map_get(c, t, "archiveLocation"), "s3");
        struct af_s3_location *al = &s->archive_location;
        int r;

        if (!loc || s->is_resolved_template)
                return 0;
        r = parse_location(c, loc, al);
        if (r < 0)
                return r;
        if (al->endpoint && *al->endpoint && al->bucket && *al->bucket && al->key && *al->key)
                s->has_archive_location = true;
        else
                af_s3_location_done(al);
        return 0;
}

static int parse_template(struct ctx *c, const yaml_node_t *t, struct af_spec *s)
{
        yaml_node_t *arts = map_get(c, map_get(c, t, "outputs"), "artifacts");
        size_t n;
        int r;

        r = parse_template_location(c, t, s);
        if (r < 0)
                return r;

        r = parse_param_list(c, map_get(c, map_get(c, t, "inputs"), "parameters"),
                             "inputs.parameters", &s->inputs, &s->ninputs);
        if (r < 0)
                return r;

        if (!is_pod_template(c, t) && !map_get(c, t, "outputs"))
                return fail_at(c, t, "template has no container, script or containerSet: ",
                               s->template_name);
        if (!arts)
                return 0;
        if (arts->type != YAML_SEQUENCE_NODE)
                return fail_at(c, arts, "outputs.artifacts must be a list", NULL);
        n = (size_t)(arts->data.sequence.items.top - arts->data.sequence.items.start);
        if (n > AF_SPEC_MAX_ARTIFACTS)
                return fail_at(c, arts, "too many output artifacts", NULL);
        s->artifacts = calloc(n ? n : 1, sizeof(*s->artifacts));
        if (!s->artifacts)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = parse_artifact(c, node_at(c, arts->data.sequence.items.start[i]),
                                   &s->artifacts[i]);
                if (r < 0)
                        return r;
                s->nartifacts++;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(s->artifacts[j].name, s->artifacts[i].name) == 0)
                                return fail_at(c, node_at(c, arts->data.sequence.items.start[i]),
                                               "duplicate output artifact name: ",
                                               s->artifacts[i].name);
        }
        return 0;
}

static int list_templates(struct ctx *c, const yaml_node_t *templates, struct af_buf *out)
{
        const char *sep = "";

        for (yaml_node_item_t *it = templates->data.sequence.items.start;
             it < templates->data.sequence.items.top; it++) {
                const char *name = map_scalar(c, node_at(c, *it), "name");

                if (name) {
                        (void)af_buf_addf(out, "%s%s", sep, name);
                        sep = ", ";
                }
        }
        return 0;
}

/* A Workflow-like document: kind, metadata, spec (or spec.workflowSpec). */
/* spec.artifactRepositoryRef {configMap, key} (both optional). */
static int parse_repo_ref(struct ctx *c, const yaml_node_t *spec, struct af_spec *s)
{
        yaml_node_t *ref = map_get(c, spec, "artifactRepositoryRef");
        int r;

        r = dup_field(c, ref, "configMap", &s->repo_ref_configmap);
        if (r == 0)
                r = dup_field(c, ref, "key", &s->repo_ref_key);
        return r;
}

static int parse_workflow(struct ctx *c, const yaml_node_t *root, const char *template_name,
                          struct af_spec *s)
{
        yaml_node_t *meta = map_get(c, root, "metadata");
        yaml_node_t *spec = map_get(c, root, "spec");
        yaml_node_t *templates, *chosen = NULL;
        const char *want;
        int r;

        if ((r = dup_field(c, root, "kind", &s->kind)) < 0 ||
            (r = dup_field(c, meta, "name", &s->name)) < 0 ||
            (r = dup_field(c, meta, "generateName", &s->generate_name)) < 0 ||
            (r = dup_field(c, meta, "namespace", &s->namespace)) < 0 ||
            (r = dup_field(c, meta, "uid", &s->uid)) < 0)
                return r;
        r = parse_kv_map(c, map_get(c, meta, "labels"), "metadata.labels", &s->labels,
                         &s->nlabels);
        if (r == 0)
                r = parse_kv_map(c, map_get(c, meta, "annotations"), "metadata.annotations",
                                 &s->annotations, &s->nannotations);
        if (r < 0)
                return r;
        if (!spec || spec->type != YAML_MAPPING_NODE)
                return fail_at(c, root, "document has no spec", NULL);
        if (s->kind && strcmp(s->kind, "CronWorkflow") == 0) {
                yaml_node_t *wm = map_get(c, spec, "workflowMetadata");

                /* The workflows a CronWorkflow makes carry spec.workflowMetadata's labels and
                 * annotations, not the CronWorkflow's own. */
                kv_free(&s->labels, &s->nlabels);
                kv_free(&s->annotations, &s->nannotations);
                r = parse_kv_map(c, map_get(c, wm, "labels"), "workflowMetadata.labels",
                                 &s->labels, &s->nlabels);
                if (r == 0)
                        r = parse_kv_map(c, map_get(c, wm, "annotations"),
                                         "workflowMetadata.annotations", &s->annotations,
                                         &s->nannotations);
                if (r < 0)
                        return r;
                spec = map_get(c, spec, "workflowSpec");
                if (!spec || spec->type != YAML_MAPPING_NODE)
                        return fail_at(c, root, "CronWorkflow has no spec.workflowSpec", NULL);
        }

        r = dup_field(c, spec, "entrypoint", &s->entrypoint);
        if (r == 0)
                r = dup_field(c, spec, "serviceAccountName", &s->service_account);
        if (r == 0)
                r = dup_field(c, spec, "priority", &s->priority);
        if (r == 0)
                r = parse_repo_ref(c, spec, s);
        if (r < 0)
                return r;
        r = parse_params(c, spec, s);
        if (r < 0)
                return r;
        templates = map_get(c, spec, "templates");
        if (!templates || templates->type != YAML_SEQUENCE_NODE)
                return fail_at(c, spec, "spec has no templates list", NULL);
        want = template_name ? template_name : s->entrypoint;
        if (!want)
                return fail_at(c, spec,
                               "spec has no entrypoint; name the template with --template", NULL);
        for (yaml_node_item_t *it = templates->data.sequence.items.start;
             it < templates->data.sequence.items.top; it++) {
                const char *name = map_scalar(c, node_at(c, *it), "name");

                if (name && strcmp(name, want) == 0) {
                        chosen = node_at(c, *it);
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
                return fail_at(c, chosen,
                               "template is not a container, script or containerSet template "
                               "(a steps or dag template runs no pod); choose the pod's template "
                               "with --template NAME: ",
                               want);
        return parse_template(c, chosen, s);
}

/* Argo's resolved template (/var/run/argo/template): one template object, no kind. */
static bool is_resolved_template(struct ctx *c, const yaml_node_t *root)
{
        return root->type == YAML_MAPPING_NODE && !map_get(c, root, "kind") &&
               map_scalar(c, root, "name") && (is_pod_template(c, root) ||
                                               map_get(c, root, "outputs"));
}

static int parse_resolved_template(struct ctx *c, const yaml_node_t *root, struct af_spec *s)
{
        yaml_node_t *loc = map_get(c, map_get(c, root, "archiveLocation"), "s3");
        int r;

        s->is_resolved_template = true;
        s->archive_location.insecure = -1;
        if ((r = dup_field(c, root, "name", &s->template_name)) < 0)
                return r;
        if (loc) {
                r = parse_location(c, loc, &s->archive_location);
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
        free(s->inputs);
        free(s->uid);
        free(s->priority);
        free(s->service_account);
        free(s->repo_ref_configmap);
        free(s->repo_ref_key);
        af_s3_location_done(&s->archive_location);
        free(s->artifacts);
        free(s->filename);
        free(s->params);
        free(s->kind);
        free(s->name);
        free(s->generate_name);
        free(s->namespace);
        free(s->entrypoint);
        free(s->template_name);
        memset(s, 0, sizeof(*s));
}

/* Does @root (a workflow document) carry the name the user asked for? */
static bool workflow_named(struct ctx *c, const yaml_node_t *root, const char *want)
{
        yaml_node_t *meta = map_get(c, root, "metadata");
        const char *n = map_scalar(c, meta, "name"), *g = map_scalar(c, meta, "generateName");

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
        struct ctx c = { .doc = &doc, .filename = filename, .err = err };
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
                free(c.seen);
                c.nseen = (size_t)(doc.nodes.top - doc.nodes.start);
                c.seen = calloc(c.nseen ? c.nseen : 1, sizeof(*c.seen));
                c.lookup_id = 0;
                if (!c.seen) {
                        yaml_document_delete(&doc);
                        r = -ENOMEM;
                        break;
                }
                if (root->type == YAML_MAPPING_NODE &&
                    is_workflow_kind(map_scalar(&c, root, "kind")) &&
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

/* The repository YAML, from the root mapping or from a ConfigMap's data value. */
static int repository_from_root(struct ctx *c, const yaml_node_t *root,
                                const struct af_repository_ref *ref, struct af_s3_location *loc,
                                int depth);

/* At the top level, is @root the document that holds the repository? A ConfigMap (the one
 * @ref names, if it names one) or a document with no kind (a bare repository); other kinds
 * (ServiceAccount, Workflow...) in the same file are not. */
static bool is_repository_doc(struct ctx *c, const yaml_node_t *root,
                              const struct af_repository_ref *ref)
{
        const char *kind, *name;

        if (root->type != YAML_MAPPING_NODE)
                return true; /* a scalar or a list: reported as no repository */
        kind = map_scalar(c, root, "kind");
        if (!kind)
                return true;
        if (strcmp(kind, "ConfigMap") != 0)
                return false;
        name = map_scalar(c, map_get(c, root, "metadata"), "name");
        return !ref || !ref->configmap || (name && strcmp(name, ref->configmap) == 0);
}

static int repository_from_text(const char *data, size_t len, const char *filename,
                                const struct af_repository_ref *ref,
                                struct af_s3_location *loc, struct af_buf *err, int depth)
{
        yaml_parser_t parser;
        yaml_document_t doc;
        struct ctx c = { .doc = &doc, .filename = filename, .err = err };
        bool found = false;
        int r = 0, ndocs = 0;

        if (len > AF_SPEC_MAX) {
                (void)af_buf_addf(err, "%s: larger than %zu bytes", filename, AF_SPEC_MAX);
                return -E2BIG;
        }
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
        while (r == 0 && !found) {
                yaml_node_t *root;

                if (!yaml_parser_load(&parser, &doc)) {
                        (void)af_buf_addf(err, "%s:%zu:%zu: YAML error: %s", filename,
                                          parser.problem_mark.line + 1,
                                          parser.problem_mark.column + 1,
                                          parser.problem ? parser.problem : "unknown");
                        r = -EINVAL;
                        break;
                }
                root = yaml_document_get_root_node(&doc);
                if (!root) { /* the end of the stream */
                        yaml_document_delete(&doc);
                        break;
                }
                ndocs++;
                free(c.seen);
                c.nseen = (size_t)(doc.nodes.top - doc.nodes.start);
                c.seen = calloc(c.nseen ? c.nseen : 1, sizeof(*c.seen));
                c.lookup_id = 0;
                if (!c.seen) {
                        r = -ENOMEM;
                } else if (depth > 0 || is_repository_doc(&c, root, ref)) {
                        found = true;
                        r = repository_from_root(&c, root, ref, loc, depth);
                }
                yaml_document_delete(&doc);
        }
        if (r == 0 && !found) {
                if (ref && ref->configmap)
                        (void)af_buf_addf(err, "%s: no ConfigMap named '%s' in %d document(s)",
                                          filename, ref->configmap, ndocs);
                else if (ndocs)
                        (void)af_buf_addf(err, "%s: no ConfigMap or repository document in %d "
                                          "document(s)", filename, ndocs);
                else
                        (void)af_buf_addf(err, "%s: empty repository configuration", filename);
                r = -EINVAL;
        }
        free(c.seen);
        yaml_parser_delete(&parser);
        return r;
}

/* A ConfigMap's repository value: @ref's key, else the default-repository annotation's, else
 * (workflow-controller-configmap) artifactRepository, else the only key. */
static int repository_from_configmap(struct ctx *c, const yaml_node_t *root,
                                     const struct af_repository_ref *ref,
                                     struct af_s3_location *loc, int depth)
{
        const char *want = map_scalar(c, map_get(c, map_get(c, root, "metadata"), "annotations"),
                                      "workflows.argoproj.io/default-artifact-repository");
        const char *why = "ConfigMap data has no key named by its default-artifact-repository "
                          "annotation: ";
        yaml_node_t *data, *value;

        data = map_get(c, root, "data");
        if (!data || data->type != YAML_MAPPING_NODE)
                return fail_at(c, root, "ConfigMap has no data", NULL);
        if (ref && ref->key) {
                want = ref->key;
                why = "ConfigMap data has no key named by the workflow's "
                      "spec.artifactRepositoryRef.key: ";
        }
        /* workflow-controller-configmap: the controller's default repository. */
        if (!want && map_get(c, data, "artifactRepository"))
                want = "artifactRepository";
        if (want) {
                value = map_get(c, data, want);
                if (!value)
                        return fail_at(c, data, why, want);
        } else if (data->data.mapping.pairs.top - data->data.mapping.pairs.start == 1) {
                value = node_at(c, data->data.mapping.pairs.start[0].value);
        } else {
                return fail_at(c, data,
                               "ConfigMap has several repositories and no "
                               "workflows.argoproj.io/default-artifact-repository annotation",
                               NULL);
        }
        if (!scalar(value))
                return fail_at(c, value, "repository value must be a YAML string", NULL);
        return repository_from_text(scalar(value), value->data.scalar.length, c->filename, ref,
                                    loc, c->err, depth + 1);
}

static int repository_from_root(struct ctx *c, const yaml_node_t *root,
                                const struct af_repository_ref *ref, struct af_s3_location *loc,
                                int depth)
{
        const char *kind = map_scalar(c, root, "kind");
        yaml_node_t *s3;

        if (kind && strcmp(kind, "ConfigMap") == 0 && depth == 0)
                return repository_from_configmap(c, root, ref, loc, depth);
        s3 = map_get(c, root, "s3");
        if (!s3) {
                if (map_get(c, root, "gcs") || map_get(c, root, "azure") ||
                    map_get(c, root, "oss") || map_get(c, root, "hdfs") ||
                    map_get(c, root, "artifactory") || map_get(c, root, "plugin"))
                        return fail_at(c, root, "only s3 artifact repositories are supported",
                                       NULL);
                return fail_at(c, root, "repository has no s3 section", NULL);
        }
        return parse_location(c, s3, loc);
}

int af_repository_parse(const char *data, size_t len, const char *filename,
                        struct af_s3_location *ret, struct af_buf *err)
{
        return af_repository_parse_ref(data, len, filename, NULL, ret, err);
}

int af_repository_parse_ref(const char *data, size_t len, const char *filename,
                            const struct af_repository_ref *ref, struct af_s3_location *ret,
                            struct af_buf *err)
{
        struct af_s3_location loc;
        int r;

        memset(&loc, 0, sizeof(loc));
        loc.insecure = -1;
        r = repository_from_text(data, len, filename, ref, &loc, err, 0);
        if (r == 0 && (!loc.bucket || !*loc.bucket)) {
                (void)af_buf_addf(err, "%s: the s3 repository has no bucket", filename);
                r = -EINVAL;
        }
        if (r < 0) {
                af_s3_location_done(&loc);
                return r;
        }
        *ret = loc;
        return 0;
}
