// SPDX-License-Identifier: Apache-2.0
/*
 * Argo's artifact repository: the YAML of an `artifact-repositories` ConfigMap value, the
 * ConfigMap itself, or a file of several documents holding it, chosen as Argo's controller
 * chooses (see spec.h, af_repository_parse_ref); and S3 locations as Argo writes them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "argo/spec.h"
#include "argo/yaml_read.h"
#include "base/mem.h"

void af_s3_location_done(struct af_s3_location *loc)
{
        AF_FREE_ALL(loc->endpoint, loc->bucket, loc->region, loc->key, loc->key_format,
                    loc->key_prefix);
        memset(loc, 0, sizeof(*loc));
        loc->insecure = -1;
}

int af_s3_location_parse(struct af_yaml *c, const yaml_node_t *n, struct af_s3_location *loc)
{
        const char *ins;
        bool b;
        int r;

        if (n->type != YAML_MAPPING_NODE)
                return af_yaml_fail(c, n, "s3 must be a mapping", NULL);
        if ((r = af_yaml_dup(c, n, "endpoint", &loc->endpoint)) < 0 ||
            (r = af_yaml_dup(c, n, "bucket", &loc->bucket)) < 0 ||
            (r = af_yaml_dup(c, n, "region", &loc->region)) < 0 ||
            (r = af_yaml_dup(c, n, "key", &loc->key)) < 0 ||
            (r = af_yaml_dup(c, n, "keyFormat", &loc->key_format)) < 0 ||
            (r = af_yaml_dup(c, n, "keyPrefix", &loc->key_prefix)) < 0)
                return r;
        loc->insecure = -1;
        ins = af_yaml_get_scalar(c, n, "insecure");
        if (ins) {
                if (af_yaml_bool(ins, &b) < 0)
                        return af_yaml_fail(c, af_yaml_get(c, n, "insecure"),
                                       "insecure must be true or false, not ", ins);
                loc->insecure = b;
        }
        return 0;
}

/* The repository YAML, from the root mapping or from a ConfigMap's data value. */
static int repository_from_root(struct af_yaml *c, const yaml_node_t *root,
                                const struct af_repository_ref *ref, struct af_s3_location *loc,
                                int depth);

/* At the top level, is @root the document that holds the repository? A ConfigMap (the one
 * @ref names, if it names one) or a document with no kind (a bare repository); other kinds
 * (ServiceAccount, Workflow...) in the same file are not. */
static bool is_repository_doc(struct af_yaml *c, const yaml_node_t *root,
                              const struct af_repository_ref *ref)
{
        const char *kind, *name;

        if (root->type != YAML_MAPPING_NODE)
                return true; /* a scalar or a list: reported as no repository */
        kind = af_yaml_get_scalar(c, root, "kind");
        if (!kind)
                return true;
        if (strcmp(kind, "ConfigMap") != 0)
                return false;
        name = af_yaml_get_scalar(c, af_yaml_get(c, root, "metadata"), "name");
        return !ref || !ref->configmap || (name && strcmp(name, ref->configmap) == 0);
}

static int repository_from_text(const char *data, size_t len, const char *filename,
                                const struct af_repository_ref *ref,
                                struct af_s3_location *loc, struct af_buf *err, int depth)
{
        yaml_parser_t parser;
        yaml_document_t doc;
        struct af_yaml c = { .doc = &doc, .filename = filename, .err = err };
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
                r = af_yaml_begin_doc(&c);
                if (r == 0 && (depth > 0 || is_repository_doc(&c, root, ref))) {
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
static int repository_from_configmap(struct af_yaml *c, const yaml_node_t *root,
                                     const struct af_repository_ref *ref,
                                     struct af_s3_location *loc, int depth)
{
        const char *want = af_yaml_get_scalar(c, af_yaml_get(c, af_yaml_get(c, root, "metadata"), "annotations"),
                                      "workflows.argoproj.io/default-artifact-repository");
        const char *why = "ConfigMap data has no key named by its default-artifact-repository "
                          "annotation: ";
        yaml_node_t *data, *value;

        data = af_yaml_get(c, root, "data");
        if (!data || data->type != YAML_MAPPING_NODE)
                return af_yaml_fail(c, root, "ConfigMap has no data", NULL);
        if (ref && ref->key) {
                want = ref->key;
                why = "ConfigMap data has no key named by the workflow's "
                      "spec.artifactRepositoryRef.key: ";
        }
        /* workflow-controller-configmap: the controller's default repository. */
        if (!want && af_yaml_get(c, data, "artifactRepository"))
                want = "artifactRepository";
        if (want) {
                value = af_yaml_get(c, data, want);
                if (!value)
                        return af_yaml_fail(c, data, why, want);
        } else if (data->data.mapping.pairs.top - data->data.mapping.pairs.start == 1) {
                value = af_yaml_node(c, data->data.mapping.pairs.start[0].value);
        } else {
                return af_yaml_fail(c, data,
                               "ConfigMap has several repositories and no "
                               "workflows.argoproj.io/default-artifact-repository annotation",
                               NULL);
        }
        if (!af_yaml_scalar(value))
                return af_yaml_fail(c, value, "repository value must be a YAML string", NULL);
        return repository_from_text(af_yaml_scalar(value), value->data.scalar.length, c->filename, ref,
                                    loc, c->err, depth + 1);
}

static int repository_from_root(struct af_yaml *c, const yaml_node_t *root,
                                const struct af_repository_ref *ref, struct af_s3_location *loc,
                                int depth)
{
        const char *kind = af_yaml_get_scalar(c, root, "kind");
        yaml_node_t *s3;

        if (kind && strcmp(kind, "ConfigMap") == 0 && depth == 0)
                return repository_from_configmap(c, root, ref, loc, depth);
        s3 = af_yaml_get(c, root, "s3");
        if (!s3) {
                if (af_yaml_get(c, root, "gcs") || af_yaml_get(c, root, "azure") ||
                    af_yaml_get(c, root, "oss") || af_yaml_get(c, root, "hdfs") ||
                    af_yaml_get(c, root, "artifactory") || af_yaml_get(c, root, "plugin"))
                        return af_yaml_fail(c, root, "only s3 artifact repositories are supported",
                                       NULL);
                return af_yaml_fail(c, root, "repository has no s3 section", NULL);
        }
        return af_s3_location_parse(c, s3, loc);
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
