/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The option table and what comes from it: the getopt parser, the ARTIFUSE_* environment,
 * the value parsers, and (help.c) each command's --help and the man page. A row says
 * everything about one option; nothing else in the program lists the options.
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "base/log.h"
#include "cli.h"
#include "optable.h"
#include "upload/queue.h"

#define AT(field) offsetof(struct af_opts, field)
#define CHOICE(n, v) { .name = (n), .value = (v) }
#define ALIAS(n, v) { .name = (n), .value = (v), .alias = true }
#define END { .name = NULL }

/* Which commands an option is documented for (options.h: every command accepts every one). */
#define MNT (AF_CMD_MOUNT | AF_CMD_RUN)
#define ROUTE (MNT | AF_CMD_KEYS)
#define UPLOAD (MNT | AF_CMD_DRAIN)
#define ALL (ROUTE | AF_CMD_FLUSH | AF_CMD_DRAIN | AF_CMD_STATUS)

static int parse_var(struct af_opts *o, const char *val, const char *source);
static int parse_tag(struct af_opts *o, const char *val, const char *source);
static int parse_metadata(struct af_opts *o, const char *val, const char *source);
static int parse_storage_class(struct af_opts *o, const char *val, const char *source);
static int parse_open_every(struct af_opts *o, const char *val, const char *source);

/* The values of the AF_OPT_CHOICE options: the listed names are the error message too. */
static const struct af_optchoice unmatched_choices[] = {
        CHOICE("ignore", AF_UNMATCHED_IGNORE), CHOICE("upload", AF_UNMATCHED_UPLOAD), END
};
static const struct af_optchoice archive_choices[] = {
        CHOICE("none", AF_ARCHIVE_NONE), CHOICE("tgz", AF_ARCHIVE_TAR),
        ALIAS("tar", AF_ARCHIVE_TAR), END
};
static const struct af_optchoice addressing_choices[] = {
        CHOICE("auto", AF_ADDRESSING_AUTO), CHOICE("path", AF_ADDRESSING_PATH),
        CHOICE("virtual", AF_ADDRESSING_VIRTUAL), END
};
static const struct af_optchoice checksum_choices[] = {
        CHOICE("auto", AF_CHECKSUM_AUTO), CHOICE("crc32c", AF_CHECKSUM_CRC32C),
        CHOICE("sha256", AF_CHECKSUM_SHA256), CHOICE("md5", AF_CHECKSUM_MD5),
        CHOICE("none", AF_CHECKSUM_NONE), END
};
static const struct af_optchoice log_format_choices[] = {
        CHOICE("logfmt", AF_LOG_LOGFMT), CHOICE("json", AF_LOG_JSON),
        ALIAS("text", AF_LOG_LOGFMT), END
};
static const struct af_optchoice sse_choices[] = {
        CHOICE("AES256", 0), CHOICE("aws:kms", 0), END
};

/* Help text: one string per option, "\n" where the help breaks its line; the man page fills. */
const struct af_optrow af_optrows[] = {
        /* ---- Where objects go ---- */
        { .name = "artifact-repository", .env = "ARTIFUSE_ARTIFACT_REPOSITORY", .kind = AF_OPT_STR,
          .at = AT(repo), .arg = "s3://BUCKET/KEYFORMAT", .cmds = ROUTE, .section = AF_SEC_WHERE,
          .help = "bucket and key prefix, with Argo variables, e.g.\n"
                  "'s3://my-bucket/argo-workflows/{{workflow.name}}/{{pod.name}}';\n"
                  "with no KEYFORMAT, Argo's default {{workflow.name}}/{{pod.name}}" },
        { .name = "spec", .env = "ARTIFUSE_SPEC", .kind = AF_OPT_STR, .at = AT(spec),
          .arg = "FILE|-", .cmds = ROUTE, .section = AF_SEC_WHERE,
          .help = "Argo Workflow / WorkflowTemplate / ClusterWorkflowTemplate /\n"
                  "CronWorkflow YAML; its template's outputs.artifacts say which\n"
                  "files are uploaded and under which name\n"
                  "(or Argo's resolved template JSON; with no --spec, inside an\n"
                  "Argo pod: /var/run/argo/template, else $ARGO_TEMPLATE)" },
        { .name = "argo-template", .env = "ARTIFUSE_ARGO_TEMPLATE", .kind = AF_OPT_STR,
          .at = AT(argo_template), .arg = "FILE", .cmds = ROUTE, .section = AF_SEC_WHERE,
          .help = "read the resolved template from FILE instead" },
        { .name = "template", .env = "ARTIFUSE_TEMPLATE", .kind = AF_OPT_STR,
          .at = AT(template_name), .arg = "NAME", .cmds = ROUTE, .section = AF_SEC_WHERE,
          .help = "the template whose outputs to use (default: the entrypoint)" },
        { .name = "workflow", .env = "ARTIFUSE_WORKFLOW", .kind = AF_OPT_STR, .at = AT(workflow),
          .arg = "NAME", .cmds = ROUTE, .section = AF_SEC_WHERE,
          .help = "the document (metadata.name or generateName) in a\n"
                  "multi-document --spec (default: the first workflow document)" },
        { .name = "repository-config", .env = "ARTIFUSE_REPOSITORY_CONFIG", .kind = AF_OPT_STR,
          .at = AT(repository_config), .arg = "FILE", .cmds = ROUTE, .section = AF_SEC_WHERE,
          .help = "Argo's repository YAML (s3: {bucket, endpoint, region,\n"
                  "insecure, keyFormat, keyPrefix}), or the artifact-repositories\n"
                  "ConfigMap itself; instead of --artifact-repository" },
        { .name = "creation-timestamp", .env = "ARTIFUSE_CREATION_TIMESTAMP", .kind = AF_OPT_STR,
          .at = AT(creation_timestamp), .arg = "RFC3339", .cmds = ROUTE, .section = AF_SEC_WHERE,
          .help = "for {{workflow.creationTimestamp...}} (default:\n"
                  "$ARGO_WORKFLOW_CREATION_TIMESTAMP, else the mount time)" },
        /* Not from the environment: a variable's own variables are $ARGO_*. */
        { .name = "var", .kind = AF_OPT_CUSTOM, .parse = parse_var, .arg = "NAME=VALUE",
          .cmds = ROUTE, .section = AF_SEC_WHERE,
          .help = "set a variable, e.g. --var workflow.name=wf-x7k2p (repeatable);\n"
                  "also read: the spec, $ARGO_WORKFLOW_NAME, $ARGO_POD_NAME,\n"
                  "$ARGO_WORKFLOW_UID" },
        { .name = "as", .env = "ARTIFUSE_AS", .kind = AF_OPT_STR, .at = AT(as), .arg = "DIR",
          .cmds = ROUTE, .section = AF_SEC_WHERE,
          .help = "the directory the spec's paths call the mount point\n"
                  "(default: the mount point; for `keys`: /)" },
        { .name = "unmatched", .env = "ARTIFUSE_UNMATCHED", .kind = AF_OPT_CHOICE,
          .at = AT(unmatched), .cmds = ROUTE, .section = AF_SEC_WHERE,
          .choices = unmatched_choices,
          .help = "files that are no declared artifact (default: ignore when the\n"
                  "spec declares artifacts, else upload to <prefix>/<path>)" },
        { .name = "archive-default", .env = "ARTIFUSE_ARCHIVE_DEFAULT", .kind = AF_OPT_CHOICE,
          .at = AT(archive_default), .cmds = ROUTE, .section = AF_SEC_WHERE,
          .choices = archive_choices,
          .help = "what artifacts without archive: get: none uploads the file as\n"
                  "it is to <prefix>/<basename> (default); tgz is Argo's own\n"
                  "default, <prefix>/<name>.tgz holding one tar member (the\n"
                  "default inside an Argo pod, where Argo uploads the same keys)" },

        /* ---- S3 ---- */
        { .name = "endpoint", .env = "ARTIFUSE_ENDPOINT", .kind = AF_OPT_STR, .at = AT(endpoint),
          .arg = "URL", .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "http(s)://host[:port] (default: $AWS_ENDPOINT_URL_S3,\n"
                  "$AWS_ENDPOINT_URL, else https://s3.REGION.amazonaws.com)" },
        { .name = "addressing", .env = "ARTIFUSE_ADDRESSING", .kind = AF_OPT_CHOICE,
          .at = AT(addressing), .cmds = UPLOAD, .section = AF_SEC_S3,
          .choices = addressing_choices,
          .help = "bucket in the path or in the host name (default auto:\n"
                  "virtual-hosted on AWS, path style elsewhere)" },
        { .name = "region", .env = "ARTIFUSE_REGION", .kind = AF_OPT_STR, .at = AT(region),
          .arg = "REGION", .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1" },
        { .name = "ca-file", .env = "ARTIFUSE_CA_FILE", .kind = AF_OPT_STR, .at = AT(ca_file),
          .arg = "FILE", .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "PEM bundle to trust instead of the system's" },
        { .name = "upload-concurrency", .env = "ARTIFUSE_UPLOAD_CONCURRENCY", .kind = AF_OPT_UINT,
          .at = AT(concurrency), .arg = "N", .min = 1, .max = 256, .cmds = UPLOAD,
          .section = AF_SEC_S3, .help = "files uploaded at once (default 4)" },
        { .name = "part-concurrency", .env = "ARTIFUSE_PART_CONCURRENCY", .kind = AF_OPT_UINT,
          .at = AT(part_concurrency), .arg = "N", .min = 1,
          .max = AF_QUEUE_MAX_PART_CONCURRENCY, .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "parts of one multipart upload sent at once (default 4)" },
        { .name = "upload-attempts", .env = "ARTIFUSE_UPLOAD_ATTEMPTS", .kind = AF_OPT_UINT,
          .at = AT(attempts), .arg = "N", .min = 1, .max = 1000, .cmds = UPLOAD,
          .section = AF_SEC_S3, .help = "attempts per file for retryable errors (default 10)..." },
        { .name = "retry-for", .env = "ARTIFUSE_RETRY_FOR", .kind = AF_OPT_SECONDS,
          .at = AT(retry_for_ms), .arg = "SEC", .max = 86400 * 7, .scale = 1000,
          .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "...and keep retrying for at least SEC seconds (default 120;\n"
                  "0 with --upload-attempts given)" },
        { .name = "connect-timeout", .env = "ARTIFUSE_CONNECT_TIMEOUT", .kind = AF_OPT_SECONDS,
          .at = AT(connect_timeout_ms), .arg = "SEC", .min = 1, .max = 600, .scale = 1000,
          .cmds = UPLOAD, .section = AF_SEC_S3, .help = "default 10" },
        { .name = "checksum", .env = "ARTIFUSE_CHECKSUM", .kind = AF_OPT_CHOICE, .at = AT(checksum),
          .cmds = UPLOAD, .section = AF_SEC_S3,
          .choices = checksum_choices,
          .help = "what each PUT and part carries for the server to verify:\n"
                  "auto (default) sends CRC32C where the server verifies it,\n"
                  "else Content-MD5; over http it also signs the payload where\n"
                  "CRC32C alone is sent" },
        { .name = "low-speed-time", .env = "ARTIFUSE_LOW_SPEED_TIME", .kind = AF_OPT_SECONDS,
          .at = AT(low_speed_time_s), .arg = "SEC", .min = 1, .max = 3600, .scale = 1,
          .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "a transfer slower than 1 KiB/s for SEC seconds is cut and\n"
                  "retried (default 60)" },
        { .name = "multipart-threshold", .env = "ARTIFUSE_MULTIPART_THRESHOLD", .kind = AF_OPT_SIZE,
          .at = AT(multipart_threshold), .arg = "SIZE", .min = (uint64_t)5 << 20,
          .max = (uint64_t)5 << 30, /* PutObject's limit: a larger file must be multipart */
          .bad = "a size from 5M to 5G", .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "files this large or larger use a multipart upload,\n5M..5G (default 16M)" },
        { .name = "part-size", .env = "ARTIFUSE_PART_SIZE", .kind = AF_OPT_SIZE,
          .at = AT(part_size), .arg = "SIZE", .min = (uint64_t)5 << 20, .max = (uint64_t)5 << 30,
          .bad = "a size from 5M to 5G", .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "multipart part size, 5M..5G (default 8M; grown so that any\n"
                  "object up to 5 TiB fits in 10,000 parts)" },
        { .name = "sse", .env = "ARTIFUSE_SSE", .kind = AF_OPT_CHOICE, .text = true,
          .at = AT(object.sse), .cmds = UPLOAD, .section = AF_SEC_S3,
          .choices = sse_choices,
          .help = "server-side encryption" },
        { .name = "sse-kms-key-id", .env = "ARTIFUSE_SSE_KMS_KEY_ID", .kind = AF_OPT_STR,
          .at = AT(object.sse_kms_key_id), .arg = "ID", .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "the KMS key, with --sse aws:kms (which it implies)" },
        { .name = "storage-class", .env = "ARTIFUSE_STORAGE_CLASS", .kind = AF_OPT_CUSTOM,
          .parse = parse_storage_class, .arg = "C", .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "e.g. STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR" },
        { .name = "tag", .env = "ARTIFUSE_TAG", .kind = AF_OPT_CUSTOM, .parse = parse_tag,
          .arg = "K=V", .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "object tag (x-amz-tagging; repeatable, up to 10)" },
        { .name = "metadata", .env = "ARTIFUSE_METADATA", .kind = AF_OPT_CUSTOM,
          .parse = parse_metadata, .arg = "K=V", .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "user metadata (x-amz-meta-K; repeatable)" },
        { .name = "no-overwrite", .env = "ARTIFUSE_NO_OVERWRITE", .kind = AF_OPT_FLAG,
          .at = AT(object.no_overwrite), .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "never replace an existing object (If-None-Match: *); an\n"
                  "existing key is reported as a failure, not retried\n"
                  "(Content-Type is set from the file name)" },
        { .name = "preserve-metadata", .env = "ARTIFUSE_PRESERVE_METADATA", .kind = AF_OPT_FLAG,
          .at = AT(preserve_metadata), .cmds = UPLOAD, .section = AF_SEC_S3,
          .help = "send each file's mode, uid, gid and mtime as x-amz-meta-mode,\n"
                  "-uid, -gid, -mtime (the names s3fs and rclone read)" },
        { .name = "no-check", .env = "ARTIFUSE_NO_CHECK", .kind = AF_OPT_FLAG, .at = AT(no_check),
          .cmds = MNT, .section = AF_SEC_S3,
          .help = "do not check at start-up that the endpoint answers" },

        /* ---- Mount (and the spool) ---- */
        { .name = "spool", .env = "ARTIFUSE_SPOOL", .kind = AF_OPT_STR, .at = AT(spool),
          .arg = "DIR", .cmds = MNT | AF_CMD_DRAIN | AF_CMD_STATUS, .section = AF_SEC_MOUNT,
          .help = "local directory holding the files (in DIR/files) and the\n"
                  "journal of pending uploads (DIR/journal); a mount on a\n"
                  "spool with pending records resumes them first (default:\n"
                  "/var/tmp/artifuse/<mount point with / as _>)" },
        { .name = "drain-timeout", .env = "ARTIFUSE_DRAIN_TIMEOUT", .kind = AF_OPT_SECONDS,
          .at = AT(drain_timeout_ms), .arg = "SEC", .max = 86400 * 365, .scale = 1000,
          .cmds = UPLOAD, .section = AF_SEC_MOUNT,
          .help = "at unmount, wait at most SEC seconds for uploads (default: no\n"
                  "limit; for run also $ARGO_DEADLINE if sooner), counted from\n"
                  "SIGTERM/SIGINT/SIGHUP if one came first; an fsync still\n"
                  "waiting then gets EIO; what is left stays in the spool and\n"
                  "is logged" },
        { .name = "sync-close", .env = "ARTIFUSE_SYNC_CLOSE", .kind = AF_OPT_FLAG,
          .at = AT(sync_close), .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "close() of an artifact returns only when it is in S3 (EIO\n"
                  "if it cannot get there); fsync() always does" },
        { .name = "spool-limit", .env = "ARTIFUSE_SPOOL_LIMIT", .kind = AF_OPT_SIZE,
          .at = AT(spool_limit), .arg = "SIZE", .min = 1,
          .bad = "a size of at least 1 byte (e.g. 512M, 20G)", .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "the most the spool's files may hold (e.g. 20G); a write that\n"
                  "would pass it, or the spool disk's free space, gets ENOSPC\n"
                  "after files already in S3 are removed from the spool to make\n"
                  "room, oldest upload first (they leave the mount too)" },
        { .name = "keep", .env = "ARTIFUSE_KEEP", .kind = AF_OPT_FLAG, .at = AT(keep), .cmds = MNT,
          .section = AF_SEC_MOUNT,
          .help = "never remove a file from the spool to make room: a full\n"
                  "spool gives ENOSPC until files are deleted" },
        { .name = "delete-on-unlink", .env = "ARTIFUSE_DELETE_ON_UNLINK", .kind = AF_OPT_FLAG,
          .at = AT(delete_on_unlink), .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "the default: when a name this mount uploaded is unlinked,\n"
                  "renamed away or replaced, delete the object its last upload\n"
                  "put (never one a newer upload wrote), and at unmount the\n"
                  "objects of names gone since, so S3 ends as Argo would leave\n"
                  "it. A rename or hard link of an uploaded, unchanged file is\n"
                  "a server-side copy to the new key" },
        { .name = "no-delete-on-unlink", .env = "ARTIFUSE_NO_DELETE_ON_UNLINK",
          .kind = AF_OPT_FLAG, .at = AT(no_delete_on_unlink), .cmds = MNT,
          .section = AF_SEC_MOUNT,
          .help = "never delete an object: what was uploaded stays in S3 after\n"
                  "its name is unlinked or renamed away (wins over\n"
                  "--delete-on-unlink). A closed file's upload then waits\n"
                  "200 ms, so write-temp-then-rename uploads only the final\n"
                  "name (with deletes it starts at the close)" },
        { .name = "no-streaming", .env = "ARTIFUSE_NO_STREAMING", .kind = AF_OPT_FLAG,
          .at = AT(no_streaming), .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "upload every file after its last close; by default a file\n"
                  "written in order starts its multipart upload once it passes\n"
                  "--multipart-threshold, while it is still being written\n"
                  "(not with --preserve-metadata, which needs the file's final\n"
                  "mode, owner and mtime when the upload starts)" },
        { .name = "upload-open-every", .env = "ARTIFUSE_UPLOAD_OPEN_EVERY", .kind = AF_OPT_CUSTOM,
          .parse = parse_open_every, .arg = "DURATION", .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "every DURATION (e.g. 30s, 5m, 1h; a bare number is seconds;\n"
                  "100ms to 24h), a file still open for writing that changed\n"
                  "since gets its content as of one instant uploaded to its key,\n"
                  "so S3 has it before the close (default: off); the close\n"
                  "uploads it as usual. Not with --no-overwrite" },
        { .name = "foreground", .letter = 'f', .env = "ARTIFUSE_FOREGROUND", .kind = AF_OPT_FLAG,
          .at = AT(foreground), .cmds = AF_CMD_MOUNT, .section = AF_SEC_MOUNT,
          .help = "stay in the foreground (default: return once mounted)" },
        { .name = "allow-other", .env = "ARTIFUSE_ALLOW_OTHER", .kind = AF_OPT_FLAG,
          .at = AT(allow_other), .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "let other users use the mount (FUSE allow_other)" },
        { .name = "no-xattr", .env = "ARTIFUSE_NO_XATTR", .kind = AF_OPT_FLAG, .at = AT(no_xattr),
          .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "no extended attributes (nor POSIX ACLs): the kernel then\n"
                  "stops asking for security.capability before every write,\n"
                  "which doubles the rate of small writes" },
        { .name = "option", .letter = 'o', .env = "ARTIFUSE_OPTION", .kind = AF_OPT_STR,
          .at = AT(fuse_opts), .arg = "OPTS", .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "extra FUSE mount options" },
        { .name = "log-file", .env = "ARTIFUSE_LOG_FILE", .kind = AF_OPT_STR, .at = AT(log_file),
          .arg = "FILE", .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "append log lines to FILE instead of stderr" },
        { .name = "leave-files", .env = "ARTIFUSE_LEAVE_FILES", .kind = AF_OPT_FLAG,
          .at = AT(leave_files), .cmds = AF_CMD_RUN, .section = AF_SEC_MOUNT,
          .help = "when run returns, every file stays readable at its path: the\n"
                  "spool's files are bind-mounted on the mount point (without\n"
                  "CAP_SYS_ADMIN: linked or copied there), as Argo's emissary\n"
                  "needs to stat and tar the outputs; the default inside an Argo\n"
                  "pod (when Argo's resolved template is read); implies --keep" },
        { .name = "no-leave-files", .env = "ARTIFUSE_NO_LEAVE_FILES", .kind = AF_OPT_FLAG,
          .at = AT(no_leave_files), .cmds = AF_CMD_RUN, .section = AF_SEC_MOUNT,
          .help = "the files go with the mount when run returns, even inside an\n"
                  "Argo pod" },
        { .name = "metrics-listen", .env = "ARTIFUSE_METRICS_LISTEN", .kind = AF_OPT_STR,
          .at = AT(metrics_listen), .arg = "ADDR:PORT", .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "serve Prometheus metrics at http://ADDR:PORT/metrics\n"
                  "(\":9090\": every address; \"127.0.0.1:0\": a free port, logged)" },
        { .name = "manifest", .env = "ARTIFUSE_MANIFEST", .kind = AF_OPT_STR, .at = AT(manifest),
          .arg = "FILE", .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "append one JSON line per uploaded object: path, bucket, key,\n"
                  "size, archive, etag, version_id, start, end" },
        { .name = "uris-dir", .env = "ARTIFUSE_URIS_DIR", .kind = AF_OPT_STR, .at = AT(uris_dir),
          .arg = "DIR", .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "when a declared artifact's upload completes, write its URI\n"
                  "(s3://bucket/key; a directory's prefix) to DIR/<artifact name>,\n"
                  "atomically, no newline: what an Argo output parameter with\n"
                  "valueFrom.path reads (DIR is made if missing; not inside the\n"
                  "mount point)" },
        { .name = "uris-json", .env = "ARTIFUSE_URIS_JSON", .kind = AF_OPT_STR,
          .at = AT(uris_json), .arg = "FILE", .cmds = MNT, .section = AF_SEC_MOUNT,
          .help = "keep FILE a JSON object: artifact name -> {\"uri\", \"size\",\n"
                  "\"etag\"}, rewritten atomically as each declared artifact's\n"
                  "upload completes (not inside the mount point)" },

        /* ---- General ---- */
        { .name = "json", .env = "ARTIFUSE_JSON", .kind = AF_OPT_FLAG, .at = AT(json),
          .cmds = AF_CMD_STATUS, .section = AF_SEC_GENERAL,
          .help = "print the status as one JSON object" },
        { .name = "log-format", .env = "ARTIFUSE_LOG_FORMAT", .kind = AF_OPT_CHOICE,
          .at = AT(log_format), .choices = log_format_choices,
          .cmds = ALL, .section = AF_SEC_GENERAL,
          .help = "log lines as logfmt (key=value, the default) or as one JSON\n"
                  "object each, with the same fields" },
        { .name = "verbose", .letter = 'v', .env = "ARTIFUSE_VERBOSE", .kind = AF_OPT_COUNT,
          .at = AT(verbosity), .step = 1, .cmds = ALL, .section = AF_SEC_GENERAL,
          .help = "debug logging" },
        { .name = "quiet", .letter = 'q', .env = "ARTIFUSE_QUIET", .kind = AF_OPT_COUNT,
          .at = AT(verbosity), .step = -1, .cmds = ALL, .section = AF_SEC_GENERAL,
          .help = "warnings and errors only" },
        { .name = "help", .letter = 'h', .kind = AF_OPT_HELP, .cmds = ALL,
          .section = AF_SEC_GENERAL, .help = "this command's help" },
        { .name = "version", .letter = 'V', .kind = AF_OPT_VERSION, .cmds = ALL,
          .section = AF_SEC_GENERAL, .help = "the version" },
};
const size_t af_noptrows = sizeof(af_optrows) / sizeof(af_optrows[0]);

/* ---- value parsers ---------------------------------------------------------------------- */

static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "8M", "64MiB", "1G", "5242880": bytes, with binary K/M/G/T suffixes. */
static int parse_size(const char *s, uint64_t *ret)
{
        unsigned long long v;
        char *end;
        int shift = 0;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || s[0] == '-')
                return -EINVAL;
        switch (*end) {
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        case 't': case 'T': shift = 40; end++; break;
        default: break;
        }
        if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
                end += strlen(end);
        if (*end || v > (UINT64_MAX >> shift))
                return -EINVAL;
        *ret = (uint64_t)v << shift;
        return 0;
}

static int parse_var(struct af_opts *o, const char *val, const char *source)
{
        if (af_vars_set_assignment(&o->vars, val, "--var") < 0)
                return af_cli_die("%s: '%s' is not NAME=VALUE", source, val);
        return 0;
}

static int parse_storage_class(struct af_opts *o, const char *val, const char *source)
{
        for (const char *p = val; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || *p == '_'))
                        return af_cli_die("%s: '%s' is not a storage class (STANDARD, "
                                          "STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, ...)",
                                          source, val);
        o->object.storage_class = val;
        return 0;
}

/* A duration: a number with ms, s, m or h (none: seconds), from 100 ms to a day. */
static int parse_open_every(struct af_opts *o, const char *val, const char *source)
{
        static const struct {
                const char *unit;
                long ms;
        } units[] = { { "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 }, { "h", 3600000 } };
        unsigned long long v;
        char *end;

        errno = 0;
        v = strtoull(val, &end, 10);
        if (!errno && end != val && val[0] != '-' && v <= 86400000ULL) {
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                        unsigned long long ms = v * (unsigned long long)units[i].ms;

                        if (strcmp(end, units[i].unit) == 0 && ms >= 100 && ms <= 86400000ULL) {
                                o->upload_open_every_ms = (long)ms;
                                return 0;
                        }
                }
        }
        return af_cli_die("%s: '%s' is not a duration from 100ms to 24h (e.g. 500ms, 30s, 5m, "
                          "1h)",
                          source, val);
}

/* KEY=VALUE: returns the key's length, 0 when there is none. */
static size_t kv_key_len(const char *val)
{
        const char *eq = strchr(val, '=');

        return eq ? (size_t)(eq - val) : 0;
}

static int parse_tag(struct af_opts *o, const char *val, const char *source)
{
        size_t kl = kv_key_len(val);

        if (kl == 0)
                return af_cli_die("%s: '%s' is not KEY=VALUE", source, val);
        if (o->ntags >= AF_OPTS_MAX_TAGS || kl > 128 || strlen(val + kl + 1) > 256)
                return af_cli_die("%s: at most %d tags, keys up to 128 and values up to 256 "
                                  "characters (S3's limits)",
                                  source, AF_OPTS_MAX_TAGS);
        o->tags[o->ntags].key = strndup(val, kl);
        o->tags[o->ntags++].value = val + kl + 1;
        return 0;
}

static int parse_metadata(struct af_opts *o, const char *val, const char *source)
{
        size_t kl = kv_key_len(val), n = o->object.nmetadata;

        if (kl == 0)
                return af_cli_die("%s: '%s' is not KEY=VALUE", source, val);
        if (n >= AF_OPTS_MAX_METADATA || kl >= sizeof(o->metadata_keys[0]))
                return af_cli_die("%s: at most %d metadata entries with keys up to 63 characters",
                                  source, AF_OPTS_MAX_METADATA);
        for (size_t i = 0; i < kl; i++) {
                char ch = val[i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
                        return af_cli_die("%s: metadata key '%.*s' may only hold letters, "
                                          "digits, '-', '_' and '.'",
                                          source, (int)kl, val);
                /* S3 stores x-amz-meta-* names in lower case */
                o->metadata_keys[n][i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        o->metadata_keys[n][kl] = '\0';
        o->metadata[n].key = o->metadata_keys[n];
        o->metadata[n].value = val + kl + 1;
        o->object.nmetadata = n + 1;
        o->object.metadata = o->metadata;
        return 0;
}

/* "'x' is not a, b or c": the names a value may take, aliases left out. */
static int bad_choice(const struct af_optrow *r, const char *val, const char *source)
{
        char names[256];
        size_t n = 0, count = 0, i = 0;

        for (const struct af_optchoice *c = r->choices; c->name; c++)
                count += !c->alias;
        names[0] = '\0';
        for (const struct af_optchoice *c = r->choices; c->name && n < sizeof(names); c++) {
                if (c->alias)
                        continue;
                n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s",
                                      i == 0 ? "" : i + 1 == count ? " or " : ", ", c->name);
                i++;
        }
        return af_cli_die("%s: '%s' is not %s", source, val, names);
}

static int parse_choice(struct af_opts *o, const struct af_optrow *r, const char *val,
                        const char *source)
{
        for (const struct af_optchoice *c = r->choices; c->name; c++) {
                if (strcmp(val, c->name) != 0)
                        continue;
                if (r->text)
                        *(const char **)((char *)o + r->at) = val;
                else
                        *(int *)((char *)o + r->at) = c->value;
                return 0;
        }
        return bad_choice(r, val, source);
}

/* Applies @val to @r's field; @source ("--name", "-x" or "$ARTIFUSE_NAME") names it in errors. */
static int apply(struct af_opts *o, const struct af_optrow *r, const char *val,
                 const char *source)
{
        char *field = (char *)o + r->at;
        unsigned long v;

        switch (r->kind) {
        case AF_OPT_STR:
                *(const char **)field = val;
                return 0;
        case AF_OPT_FLAG:
                *(bool *)field = true;
                return 0;
        case AF_OPT_COUNT:
                *(int *)field += r->step;
                return 0;
        case AF_OPT_UINT:
                if (parse_uint(val, r->max, &v) < 0 || v < r->min)
                        return af_cli_die("%s: '%s' is not a number from %lu to %lu", source, val,
                                          (unsigned long)r->min, (unsigned long)r->max);
                *(unsigned *)field = (unsigned)v;
                return 0;
        case AF_OPT_SECONDS:
                if (parse_uint(val, r->max, &v) == 0 && v >= r->min) {
                        *(long *)field = (long)v * r->scale;
                        return 0;
                }
                if (r->min == 0)
                        return af_cli_die("%s: '%s' is not a number of seconds", source, val);
                return af_cli_die("%s: '%s' is not a number of seconds from %lu to %lu", source,
                                  val, (unsigned long)r->min, (unsigned long)r->max);
        case AF_OPT_SIZE:
                if (parse_size(val, (uint64_t *)field) < 0 || *(uint64_t *)field < r->min ||
                    (r->max && *(uint64_t *)field > r->max))
                        return af_cli_die("%s: '%s' is not %s", source, val, r->bad);
                return 0;
        case AF_OPT_CHOICE:
                return parse_choice(o, r, val, source);
        case AF_OPT_CUSTOM:
                return r->parse(o, val, source);
        case AF_OPT_HELP:
        case AF_OPT_VERSION:
                break;
        }
        return af_cli_die("unknown option");
}

/* ---- the environment and the command line --------------------------------------------- */

/* ARTIFUSE_<NAME> for every row that has one: the environment's values come first, flags win. */
static int apply_env(struct af_opts *o)
{
        for (size_t i = 0; i < af_noptrows; i++) {
                const struct af_optrow *r = &af_optrows[i];
                const char *val = r->env ? getenv(r->env) : NULL;
                char source[80];

                if (!val || !*val)
                        continue;
                if (!af_optrow_takes_value(r)) {
                        if (strcmp(val, "0") == 0 || strcmp(val, "false") == 0)
                                continue;
                        if (strcmp(val, "1") != 0 && strcmp(val, "true") != 0)
                                return af_cli_die("$%s: '%s' is not true or false", r->env, val);
                }
                snprintf(source, sizeof(source), "$%s", r->env);
                if (apply(o, r, val, source) != 0)
                        return AF_EXIT_CONFIG;
        }
        return 0;
}

/* getopt's view of the table: a row's letter, else 1000 + its index, is what getopt returns. */
static struct option long_options[sizeof(af_optrows) / sizeof(af_optrows[0]) + 1];
static char short_options[2 * sizeof(af_optrows) / sizeof(af_optrows[0]) + 3];

static void build_getopt(void)
{
        size_t n = 0;

        short_options[n++] = '+'; /* stop at the first operand: run's MOUNTPOINT -- CMD */
        short_options[n++] = ':'; /* a missing value is ':', not an unknown option '?' */
        for (size_t i = 0; i < af_noptrows; i++) {
                const struct af_optrow *r = &af_optrows[i];

                long_options[i] = (struct option){
                        .name = r->name,
                        .has_arg = af_optrow_takes_value(r) ? required_argument : no_argument,
                        .val = r->letter ? r->letter : 1000 + (int)i,
                };
                if (r->letter) {
                        short_options[n++] = r->letter;
                        if (af_optrow_takes_value(r))
                                short_options[n++] = ':';
                }
        }
        short_options[n] = '\0';
}

static const struct af_optrow *row_of(int c)
{
        if (c >= 1000 && (size_t)(c - 1000) < af_noptrows)
                return &af_optrows[c - 1000];
        for (size_t i = 0; i < af_noptrows; i++)
                if (af_optrows[i].letter && af_optrows[i].letter == c)
                        return &af_optrows[i];
        return NULL;
}

/* Testing only, and so not an option row: where a copy becomes a multipart copy (the
 * tests need not write 5 GiB). README.md, "Renames and unlinks", documents it as such. */
static int copy_part_threshold(struct af_opts *o)
{
        const char *v = getenv("ARTIFUSE_COPY_PART_THRESHOLD");

        if (!v || !*v)
                return 0;
        if (parse_size(v, &o->copy_part_threshold) < 0 || !o->copy_part_threshold ||
            o->copy_part_threshold > ((uint64_t)5 << 30))
                return af_cli_die("$ARTIFUSE_COPY_PART_THRESHOLD: '%s' is not a size from 1 "
                                  "to 5G (a testing knob)",
                                  v);
        return 0;
}

/* What no single option decides: defaults that depend on others, and their combinations. */
static int finish(struct af_opts *o)
{
        if (copy_part_threshold(o) != 0)
                return AF_EXIT_CONFIG;
        /* Retry for two minutes by default, so an outage or a throttling storm is ridden out;
         * an explicit --upload-attempts alone means just that many attempts. */
        if (o->retry_for_ms < 0)
                o->retry_for_ms = o->attempts ? 0 : 120000;
        if (o->object.sse_kms_key_id && !o->object.sse)
                o->object.sse = "aws:kms";
        if (o->object.sse_kms_key_id && strcmp(o->object.sse, "aws:kms") != 0)
                return af_cli_die("--sse-kms-key-id needs --sse aws:kms");
        for (size_t i = 0; i < o->ntags; i++) {
                const char *k = o->tags[i].key, *v = o->tags[i].value;

                if (!k || (i && af_buf_addc(&o->tagging, '&') < 0) ||
                    af_sigv4_uri_encode(k, strlen(k), true, &o->tagging) < 0 ||
                    af_buf_addc(&o->tagging, '=') < 0 ||
                    af_sigv4_uri_encode(v, strlen(v), true, &o->tagging) < 0)
                        return af_cli_die("out of memory");
        }
        if (o->ntags) {
                o->object.tagging = af_buf_str(&o->tagging);
                o->object.tags = o->tags;
                o->object.ntags = o->ntags;
        }
        af_log_set_format((enum af_log_format)o->log_format);
        if (o->verbosity > 0)
                af_log_set_level(AF_LOG_DEBUG);
        else if (o->verbosity < 0)
                af_log_set_level(AF_LOG_WARN);
        return 0;
}

/* One option from getopt: 0 to go on, else the exit status. */
static int take(struct af_opts *o, unsigned cmd, int c, int li, char **argv)
{
        const struct af_optrow *r;
        char source[80];

        if (c == '?') {
                if (optopt)
                        return af_cli_die("unknown option -%c (see artifuse --help)", optopt);
                return af_cli_die("unknown option '%s' (see artifuse --help)", argv[optind - 1]);
        }
        if (c == ':')
                return af_cli_die("option '%s' needs a value", argv[optind - 1]);
        r = row_of(c);
        if (r && r->kind == AF_OPT_HELP) {
                af_options_help(cmd, stdout);
                exit(0); /* as every program's --help: nothing else is done */
        }
        if (r && r->kind == AF_OPT_VERSION) {
                puts("artifuse " AF_VERSION);
                exit(0);
        }
        if (li >= 0)
                snprintf(source, sizeof(source), "--%s", long_options[li].name);
        else
                snprintf(source, sizeof(source), "-%c", c);
        if (!r)
                return af_cli_die("unknown option");
        return apply(o, r, optarg, source) != 0 ? AF_EXIT_CONFIG : 0;
}

int af_options_parse(struct af_opts *o, unsigned cmd, int argc, char **argv)
{
        int r;

        memset(o, 0, sizeof(*o));
        af_vars_init(&o->vars);
        af_buf_init(&o->tagging, 8192);
        o->drain_timeout_ms = -1;
        o->retry_for_ms = -1;
        if (apply_env(o) != 0)
                return AF_EXIT_CONFIG;
        build_getopt();
        optind = 1;
        opterr = 0;
        for (;;) {
                int li = -1, c = getopt_long(argc, argv, short_options, long_options, &li);

                if (c == -1)
                        break;
                r = take(o, cmd, c, li, argv);
                if (r)
                        return r;
        }
        return finish(o);
}

void af_options_done(struct af_opts *o)
{
        af_vars_done(&o->vars);
        for (size_t i = 0; i < o->ntags; i++)
                free((char *)o->tags[i].key);
        o->ntags = 0;
        af_buf_done(&o->tagging);
}
