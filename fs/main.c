/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The artifuse program: arguments -> configuration -> router, queue, FUSE session ->
 * orderly shutdown. Every configuration problem is found before anything is mounted and is
 * reported as one line naming it, with exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "argo/argovars.h"
#include "base/clock.h"
#include "fs.h"
#include "upload/journal.h"
#include "base/log.h"
#include "aws/s3.h"
#include "aws/sigv4.h"
#include "argo/spec.h"
#include "argo/template.h"

#define EXIT_CONFIG 1
#define EXIT_UPLOADS 3

enum {
        OPT_REPO = 1000,
        OPT_SPEC,
        OPT_TEMPLATE,
        OPT_VAR,
        OPT_AS,
        OPT_ENDPOINT,
        OPT_REGION,
        OPT_CA_FILE,
        OPT_SPOOL,
        OPT_UNMATCHED,
        OPT_ARCHIVE_DEFAULT,
        OPT_CONCURRENCY,
        OPT_ALLOW_OTHER,
        OPT_NO_CHECK,
        OPT_LOG_FILE,
        OPT_DRAIN_TIMEOUT,
        OPT_ATTEMPTS,
        OPT_WORKFLOW,
        OPT_ARGO_TEMPLATE,
        OPT_REPO_CONFIG,
        OPT_CREATION_TS,
        OPT_PART_SIZE,
        OPT_MULTIPART_THRESHOLD,
        OPT_SSE,
        OPT_SSE_KMS_KEY_ID,
        OPT_STORAGE_CLASS,
        OPT_TAG,
        OPT_METADATA,
        OPT_NO_OVERWRITE,
        OPT_PART_CONCURRENCY,
        OPT_JSON,
        OPT_SYNC_CLOSE,
        OPT_NO_STREAMING,
        OPT_MANIFEST,
        OPT_RETRY_FOR,
        OPT_LOW_SPEED_TIME,
        OPT_CONNECT_TIMEOUT,
        OPT_CHECKSUM,
        OPT_ADDRESSING,
        OPT_PRESERVE_METADATA,
        OPT_SPOOL_LIMIT,
        OPT_KEEP,
        OPT_NO_XATTR,
        OPT_DELETE_ON_UNLINK,
};

#define MAX_TAGS 10
#define MAX_METADATA 32

#define ARGO_TEMPLATE_FILE "/var/run/argo/template"
#define ARGO_TEMPLATE_OFFLOADED "/argo/config/ARGO_TEMPLATE"
#define ARGO_DEFAULT_PATTERN "{{workflow.name}}/{{pod.name}}"

static const struct option long_options[] = {
        { "artifact-repository", required_argument, NULL, OPT_REPO },
        { "spec", required_argument, NULL, OPT_SPEC },
        { "template", required_argument, NULL, OPT_TEMPLATE },
        { "workflow", required_argument, NULL, OPT_WORKFLOW },
        { "argo-template", required_argument, NULL, OPT_ARGO_TEMPLATE },
        { "repository-config", required_argument, NULL, OPT_REPO_CONFIG },
        { "creation-timestamp", required_argument, NULL, OPT_CREATION_TS },
        { "var", required_argument, NULL, OPT_VAR },
        { "as", required_argument, NULL, OPT_AS },
        { "endpoint", required_argument, NULL, OPT_ENDPOINT },
        { "region", required_argument, NULL, OPT_REGION },
        { "ca-file", required_argument, NULL, OPT_CA_FILE },
        { "spool", required_argument, NULL, OPT_SPOOL },
        { "unmatched", required_argument, NULL, OPT_UNMATCHED },
        { "archive-default", required_argument, NULL, OPT_ARCHIVE_DEFAULT },
        { "upload-concurrency", required_argument, NULL, OPT_CONCURRENCY },
        { "upload-attempts", required_argument, NULL, OPT_ATTEMPTS },
        { "part-size", required_argument, NULL, OPT_PART_SIZE },
        { "multipart-threshold", required_argument, NULL, OPT_MULTIPART_THRESHOLD },
        { "sse", required_argument, NULL, OPT_SSE },
        { "sse-kms-key-id", required_argument, NULL, OPT_SSE_KMS_KEY_ID },
        { "storage-class", required_argument, NULL, OPT_STORAGE_CLASS },
        { "tag", required_argument, NULL, OPT_TAG },
        { "metadata", required_argument, NULL, OPT_METADATA },
        { "no-overwrite", no_argument, NULL, OPT_NO_OVERWRITE },
        { "part-concurrency", required_argument, NULL, OPT_PART_CONCURRENCY },
        { "json", no_argument, NULL, OPT_JSON },
        { "sync-close", no_argument, NULL, OPT_SYNC_CLOSE },
        { "no-streaming", no_argument, NULL, OPT_NO_STREAMING },
        { "manifest", required_argument, NULL, OPT_MANIFEST },
        { "retry-for", required_argument, NULL, OPT_RETRY_FOR },
        { "low-speed-time", required_argument, NULL, OPT_LOW_SPEED_TIME },
        { "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
        { "checksum", required_argument, NULL, OPT_CHECKSUM },
        { "addressing", required_argument, NULL, OPT_ADDRESSING },
        { "preserve-metadata", no_argument, NULL, OPT_PRESERVE_METADATA },
        { "spool-limit", required_argument, NULL, OPT_SPOOL_LIMIT },
        { "keep", no_argument, NULL, OPT_KEEP },
        { "no-xattr", no_argument, NULL, OPT_NO_XATTR },
        { "delete-on-unlink", no_argument, NULL, OPT_DELETE_ON_UNLINK },
        { "allow-other", no_argument, NULL, OPT_ALLOW_OTHER },
        { "no-check", no_argument, NULL, OPT_NO_CHECK },
        { "log-file", required_argument, NULL, OPT_LOG_FILE },
        { "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
        { "foreground", no_argument, NULL, 'f' },
        { "option", required_argument, NULL, 'o' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
};

struct opts {
        const char *repo;
        const char *spec;
        const char *template_name;
        const char *workflow;
        const char *argo_template;
        const char *repository_config;
        const char *creation_timestamp;
        const char *as;
        const char *endpoint;
        const char *region;
        const char *ca_file;
        const char *spool;
        const char *log_file;
        const char *manifest;
        const char *fuse_opts;
        enum af_unmatched unmatched;
        enum af_archive archive_default;
        unsigned concurrency;
        unsigned part_concurrency;
        unsigned attempts;
        uint64_t part_size;
        uint64_t multipart_threshold;
        long drain_timeout_ms;
        long retry_for_ms; /* -1: not given */
        long low_speed_time_s;
        long connect_timeout_ms;
        enum af_checksum checksum;
        enum af_addressing addressing;
        bool foreground;
        bool allow_other;
        bool no_check;
        bool json;
        bool sync_close;
        bool no_streaming;
        bool preserve_metadata;
        bool keep;
        bool no_xattr;
        uint64_t spool_limit; /* 0: none */
        bool delete_on_unlink;
        int verbosity;
        struct af_vars vars; /* --var */
        struct af_s3_object_opts object;
        struct af_s3_kv metadata[MAX_METADATA];
        struct af_s3_kv tags[MAX_TAGS];
        size_t ntags;
        char metadata_keys[MAX_METADATA][64];
        struct af_buf tagging; /* x-amz-tagging, encoded */
};

static const char usage_text[] =
        "Usage: artifuse COMMAND [OPTIONS] ...\n"
        "\n"
        "artifuse is a FUSE filesystem for the outputs of unmodified programs: every file\n"
        "written under the mount point is kept on local disk (the spool) and uploaded to S3\n"
        "when the program closes it, at the key Argo Workflows would give it.\n"
        "\n"
        "Commands:\n"
        "  mount [OPTIONS] MOUNTPOINT   mount and serve until `fusermount3 -u MOUNTPOINT` or\n"
        "                               SIGTERM; pending uploads finish before it exits\n"
        "  run   [OPTIONS] MOUNTPOINT -- CMD [ARGS...]\n"
        "                               mount, run CMD (signals are forwarded to it), wait\n"
        "                               for every upload, unmount, exit with CMD's status\n"
        "  flush MOUNTPOINT             upload everything written so far, archived\n"
        "                               directories included, and wait for it\n"
        "  drain --spool DIR [OPTIONS]  upload what an earlier (killed) mount left in its\n"
        "                               spool; exit 0 only when all of it is in S3\n"
        "  status --spool DIR [--json]  pending / uploading / done / failed files and bytes,\n"
        "                               and each failed file with its last error\n"
        "  keys  [OPTIONS] [PATH...]    dry run: print the s3://bucket/key each path would get\n"
        "                               (no PATH: every declared artifact and its strategy)\n"
        "  help                         this text\n"
        "  version                      the version\n"
        "\n"
        "Where objects go:\n"
        "  --artifact-repository s3://BUCKET/KEYFORMAT\n"
        "                       bucket and key prefix, with Argo variables, e.g.\n"
        "                       's3://my-bucket/argo-workflows/{{workflow.name}}/{{pod.name}}';\n"
        "                       with no KEYFORMAT, Argo's default {{workflow.name}}/{{pod.name}}\n"
        "  --spec FILE|-        Argo Workflow / WorkflowTemplate / ClusterWorkflowTemplate /\n"
        "                       CronWorkflow YAML; its template's outputs.artifacts say which\n"
        "                       files are uploaded and under which name\n"
        "                       (or Argo's resolved template JSON; with no --spec, inside an\n"
        "                       Argo pod: /var/run/argo/template, else $ARGO_TEMPLATE)\n"
        "  --argo-template FILE read the resolved template from FILE instead\n"
        "  --template NAME      the template whose outputs to use (default: the entrypoint)\n"
        "  --workflow NAME      the document (metadata.name or generateName) in a multi-\n"
        "                       document --spec (default: the first workflow document)\n"
        "  --repository-config FILE\n"
        "                       Argo's repository YAML (s3: {bucket, endpoint, region,\n"
        "                       insecure, keyFormat, keyPrefix}), or the artifact-repositories\n"
        "                       ConfigMap itself; instead of --artifact-repository\n"
        "  --creation-timestamp RFC3339\n"
        "                       for {{workflow.creationTimestamp...}} (default:\n"
        "                       $ARGO_WORKFLOW_CREATION_TIMESTAMP, else the mount time)\n"
        "  --var NAME=VALUE     set a variable, e.g. --var workflow.name=wf-x7k2p (repeatable);\n"
        "                       also read: the spec, $ARGO_WORKFLOW_NAME, $ARGO_POD_NAME,\n"
        "                       $ARGO_WORKFLOW_UID\n"
        "  --as DIR             the directory the spec's paths call the mount point\n"
        "                       (default: the mount point; for `keys`: /)\n"
        "  --unmatched ignore|upload\n"
        "                       files that are no declared artifact (default: ignore when the\n"
        "                       spec declares artifacts, else upload to <prefix>/<path>)\n"
        "  --archive-default none|tgz\n"
        "                       what artifacts without archive: get: none uploads the file as\n"
        "                       it is to <prefix>/<basename> (default); tgz is Argo's own\n"
        "                       default, <prefix>/<name>.tgz holding one tar member\n"
        "\n"
        "S3:\n"
        "  --endpoint URL       http(s)://host[:port] (default: $AWS_ENDPOINT_URL_S3,\n"
        "                       $AWS_ENDPOINT_URL, else https://s3.REGION.amazonaws.com)\n"
        "  --addressing auto|path|virtual\n"
        "                       bucket in the path or in the host name (default auto:\n"
        "                       virtual-hosted on AWS, path style elsewhere)\n"
        "  --region REGION      default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1\n"
        "  --ca-file FILE       PEM bundle to trust instead of the system's\n"
        "  credentials          $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY, $AWS_SESSION_TOKEN\n"
        "  --upload-concurrency N   files uploaded at once (default 4)\n"
        "  --part-concurrency N parts of one multipart upload sent at once (default 4)\n"
        "  --upload-attempts N  attempts per file for retryable errors (default 10)...\n"
        "  --retry-for SEC      ...and keep retrying for at least SEC seconds (default 120;\n"
        "                       0 with --upload-attempts given)\n"
        "  --connect-timeout SEC    default 10\n"
        "  --checksum auto|crc32c|sha256|md5|none\n"
        "                       what each PUT and part carries for the server to verify:\n"
        "                       auto (default) signs the payload over http and sends CRC32C\n"
        "                       where the server verifies it, else Content-MD5\n"
        "  --low-speed-time SEC a transfer slower than 1 KiB/s for SEC seconds is cut and\n"
        "                       retried (default 60)\n"
        "  --multipart-threshold SIZE  files this large or larger use a multipart upload\n"
        "                       (default 16M)\n"
        "  --part-size SIZE     multipart part size, 5M..5G (default 8M; grown so that any\n"
        "                       object up to 5 TiB fits in 10,000 parts)\n"
        "  --sse AES256|aws:kms server-side encryption; --sse-kms-key-id ID for a KMS key\n"
        "  --storage-class C    e.g. STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR\n"
        "  --tag K=V            object tag (x-amz-tagging; repeatable, up to 10)\n"
        "  --metadata K=V       user metadata (x-amz-meta-K; repeatable)\n"
        "  --no-overwrite       never replace an existing object (If-None-Match: *); an\n"
        "                       existing key is reported as a failure, not retried\n"
        "                       (Content-Type is set from the file name)\n"
        "  --preserve-metadata  send each file's mode, uid, gid and mtime as x-amz-meta-mode,\n"
        "                       -uid, -gid, -mtime (the names s3fs and rclone read)\n"
        "  --no-check           do not check at start-up that the endpoint answers\n"
        "\n"
        "Mount:\n"
        "  --spool DIR          local directory holding the files (in DIR/files) and the\n"
        "                       journal of pending uploads (DIR/journal); a mount on a\n"
        "                       spool with pending records resumes them first (default:\n"
        "                       /var/tmp/artifuse/<mount point with / as _>)\n"
        "  --drain-timeout SEC  at unmount, wait at most SEC seconds for uploads (default: no\n"
        "                       limit; for run also $ARGO_DEADLINE if sooner); what is left\n"
        "                       stays in the spool and is logged\n"
        "  --sync-close         close() of an artifact returns only when it is in S3 (EIO\n"
        "                       if it cannot get there); fsync() always does\n"
        "  --spool-limit SIZE   the most the spool's files may hold (e.g. 20G); a write that\n"
        "                       would pass it, or the spool disk's free space, gets ENOSPC\n"
        "                       after files already in S3 are removed from the spool to make\n"
        "                       room, oldest upload first (they leave the mount too)\n"
        "  --keep               never remove a file from the spool to make room: a full\n"
        "                       spool gives ENOSPC until files are deleted\n"
        "  --delete-on-unlink   when a name this mount uploaded is unlinked, renamed away or\n"
        "                       replaced, delete the object its last upload put (never one\n"
        "                       a newer upload wrote); default: such objects are left as is.\n"
        "                       A rename of an uploaded, unchanged file is a server-side\n"
        "                       copy to the new key either way\n"
        "  --no-streaming       upload every file after its last close; by default a file\n"
        "                       written in order starts its multipart upload once it passes\n"
        "                       --multipart-threshold, while it is still being written\n"
        "                       (not with --preserve-metadata, which needs the file's final\n"
        "                       mode, owner and mtime when the upload starts)\n"
        "  -f, --foreground     stay in the foreground (default: return once mounted)\n"
        "  --allow-other        let other users use the mount (FUSE allow_other)\n"
        "  --no-xattr           no extended attributes (nor POSIX ACLs): the kernel then\n"
        "                       stops asking for security.capability before every write,\n"
        "                       which doubles the rate of small writes\n"
        "  -o OPTS              extra FUSE mount options\n"
        "  --log-file FILE      append log lines to FILE instead of stderr\n"
        "  --manifest FILE      append one JSON line per uploaded object: path, bucket, key,\n"
        "                       size, archive, etag, version_id, start, end\n"
        "  -v, --verbose        debug logging;  -q, --quiet: warnings and errors only\n"
        "\n"
        "Every option can also be set in the environment as ARTIFUSE_<NAME>, e.g.\n"
        "ARTIFUSE_ENDPOINT=http://127.0.0.1:7480; flags win.\n"
        "\n"
        "Exit status: 0 success; 1 bad usage or configuration (one line says what);\n"
        "3 some files could not be uploaded (they stay in the spool; the log names them).\n"
        "run exits with CMD's status (128+N if a signal N killed it), or 3 if CMD succeeded\n"
        "but some files are not in S3 (each is printed).\n"
        "\n"
        "Example (the Argo seed scenario):\n"
        "  artifuse mount --spec hello-workflow.yaml \\\n"
        "    --artifact-repository 's3://my-argo-artifacts-bucket/argo-workflows/"
        "{{workflow.name}}/{{pod.name}}' \\\n"
        "    --var workflow.name=s3-artifact-example-x7k2p \\\n"
        "    --var pod.name=s3-artifact-example-x7k2p-main-123 /tmp\n"
        "  echo 'Hello from Argo!' > /tmp/hello.txt\n"
        "  # -> s3://my-argo-artifacts-bucket/argo-workflows/s3-artifact-example-x7k2p/\n"
        "  #        s3-artifact-example-x7k2p-main-123/hello.txt\n";

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
        va_list ap;

        fputs("artifuse: error: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return EXIT_CONFIG;
}

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

/* Applies one option from @source ("--name" or "$ARTIFUSE_NAME"). */
static int apply(struct opts *o, int id, const char *val, const char *source)
{
        unsigned long v;

        switch (id) {
        case OPT_REPO:
                o->repo = val;
                break;
        case OPT_SPEC:
                o->spec = val;
                break;
        case OPT_TEMPLATE:
                o->template_name = val;
                break;
        case OPT_WORKFLOW:
                o->workflow = val;
                break;
        case OPT_ARGO_TEMPLATE:
                o->argo_template = val;
                break;
        case OPT_REPO_CONFIG:
                o->repository_config = val;
                break;
        case OPT_CREATION_TS:
                o->creation_timestamp = val;
                break;
        case OPT_VAR:
                if (af_vars_set_assignment(&o->vars, val, "--var") < 0)
                        return die("%s: '%s' is not NAME=VALUE", source, val);
                break;
        case OPT_AS:
                o->as = val;
                break;
        case OPT_ENDPOINT:
                o->endpoint = val;
                break;
        case OPT_REGION:
                o->region = val;
                break;
        case OPT_CA_FILE:
                o->ca_file = val;
                break;
        case OPT_SPOOL:
                o->spool = val;
                break;
        case OPT_LOG_FILE:
                o->log_file = val;
                break;
        case 'o':
                o->fuse_opts = val;
                break;
        case OPT_UNMATCHED:
                if (strcmp(val, "ignore") == 0)
                        o->unmatched = AF_UNMATCHED_IGNORE;
                else if (strcmp(val, "upload") == 0)
                        o->unmatched = AF_UNMATCHED_UPLOAD;
                else
                        return die("%s: '%s' is not ignore or upload", source, val);
                break;
        case OPT_ARCHIVE_DEFAULT:
                if (strcmp(val, "none") == 0)
                        o->archive_default = AF_ARCHIVE_NONE;
                else if (strcmp(val, "tgz") == 0 || strcmp(val, "tar") == 0)
                        o->archive_default = AF_ARCHIVE_TAR;
                else
                        return die("%s: '%s' is not none or tgz", source, val);
                break;
        case OPT_CONCURRENCY:
                if (parse_uint(val, 256, &v) < 0 || v == 0)
                        return die("%s: '%s' is not a number from 1 to 256", source, val);
                o->concurrency = (unsigned)v;
                break;
        case OPT_PART_CONCURRENCY:
                if (parse_uint(val, AF_QUEUE_MAX_PART_CONCURRENCY, &v) < 0 || v == 0)
                        return die("%s: '%s' is not a number from 1 to %d", source, val,
                                   AF_QUEUE_MAX_PART_CONCURRENCY);
                o->part_concurrency = (unsigned)v;
                break;
        case OPT_ATTEMPTS:
                if (parse_uint(val, 1000, &v) < 0 || v == 0)
                        return die("%s: '%s' is not a number from 1 to 1000", source, val);
                o->attempts = (unsigned)v;
                break;
        case OPT_PART_SIZE:
                if (parse_size(val, &o->part_size) < 0 || o->part_size < ((uint64_t)5 << 20) ||
                    o->part_size > ((uint64_t)5 << 30))
                        return die("%s: '%s' is not a size from 5M to 5G", source, val);
                break;
        case OPT_MULTIPART_THRESHOLD:
                if (parse_size(val, &o->multipart_threshold) < 0 ||
                    o->multipart_threshold < ((uint64_t)5 << 20))
                        return die("%s: '%s' is not a size of at least 5M", source, val);
                break;
        case OPT_SSE:
                if (strcmp(val, "AES256") != 0 && strcmp(val, "aws:kms") != 0)
                        return die("%s: '%s' is not AES256 or aws:kms", source, val);
                o->object.sse = val;
                break;
        case OPT_SSE_KMS_KEY_ID:
                o->object.sse_kms_key_id = val;
                break;
        case OPT_STORAGE_CLASS:
                for (const char *p = val; *p; p++)
                        if (!((*p >= 'A' && *p <= 'Z') || *p == '_'))
                                return die("%s: '%s' is not a storage class (STANDARD, "
                                           "STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, ...)",
                                           source, val);
                o->object.storage_class = val;
                break;
        case OPT_TAG:
        case OPT_METADATA: {
                const char *eq = strchr(val, '=');
                bool tag = id == OPT_TAG;
                size_t kl = eq ? (size_t)(eq - val) : 0;

                if (!eq || kl == 0)
                        return die("%s: '%s' is not KEY=VALUE", source, val);
                if (tag && (o->ntags >= MAX_TAGS || kl > 128 || strlen(eq + 1) > 256))
                        return die("%s: at most %d tags, keys up to 128 and values up to 256 "
                                   "characters (S3's limits)",
                                   source, MAX_TAGS);
                if (tag) {
                        o->tags[o->ntags].key = strndup(val, kl);
                        o->tags[o->ntags++].value = eq + 1;
                        break;
                }
                if (o->object.nmetadata >= MAX_METADATA || kl >= sizeof(o->metadata_keys[0]))
                        return die("%s: at most %d metadata entries with keys up to 63 characters",
                                   source, MAX_METADATA);
                for (size_t i = 0; i < kl; i++) {
                        char ch = val[i];

                        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                              (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
                                return die("%s: metadata key '%.*s' may only hold letters, "
                                           "digits, '-', '_' and '.'",
                                           source, (int)kl, val);
                        /* S3 stores x-amz-meta-* names in lower case */
                        o->metadata_keys[o->object.nmetadata][i] =
                                (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
                }
                o->metadata_keys[o->object.nmetadata][kl] = '\0';
                o->metadata[o->object.nmetadata].key = o->metadata_keys[o->object.nmetadata];
                o->metadata[o->object.nmetadata++].value = eq + 1;
                o->object.metadata = o->metadata;
                break;
        }
        case OPT_JSON:
                o->json = true;
                break;
        case OPT_NO_STREAMING:
                o->no_streaming = true;
                break;
        case OPT_SYNC_CLOSE:
                o->sync_close = true;
                break;
        case OPT_PRESERVE_METADATA:
                o->preserve_metadata = true;
                break;
        case OPT_SPOOL_LIMIT:
                if (parse_size(val, &o->spool_limit) < 0 || o->spool_limit == 0)
                        return die("%s: '%s' is not a size of at least 1 byte (e.g. 512M, 20G)",
                                   source, val);
                break;
        case OPT_KEEP:
                o->keep = true;
                break;
        case OPT_NO_XATTR:
                o->no_xattr = true;
                break;
        case OPT_DELETE_ON_UNLINK:
                o->delete_on_unlink = true;
                break;
        case OPT_MANIFEST:
                o->manifest = val;
                break;
        case OPT_CHECKSUM: {
                static const char *const names[] = { "auto", "crc32c", "sha256", "md5", "none" };
                size_t i;

                for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                        if (strcmp(val, names[i]) == 0)
                                break;
                if (i == sizeof(names) / sizeof(names[0]))
                        return die("%s: '%s' is not auto, crc32c, sha256, md5 or none", source,
                                   val);
                o->checksum = (enum af_checksum)i;
                break;
        }
        case OPT_ADDRESSING:
                if (strcmp(val, "auto") == 0)
                        o->addressing = AF_ADDRESSING_AUTO;
                else if (strcmp(val, "path") == 0)
                        o->addressing = AF_ADDRESSING_PATH;
                else if (strcmp(val, "virtual") == 0)
                        o->addressing = AF_ADDRESSING_VIRTUAL;
                else
                        return die("%s: '%s' is not auto, path or virtual", source, val);
                break;
        case OPT_RETRY_FOR:
                if (parse_uint(val, 86400 * 7, &v) < 0)
                        return die("%s: '%s' is not a number of seconds", source, val);
                o->retry_for_ms = (long)v * 1000;
                break;
        case OPT_LOW_SPEED_TIME:
                if (parse_uint(val, 3600, &v) < 0 || v == 0)
                        return die("%s: '%s' is not a number of seconds from 1 to 3600", source,
                                   val);
                o->low_speed_time_s = (long)v;
                break;
        case OPT_CONNECT_TIMEOUT:
                if (parse_uint(val, 600, &v) < 0 || v == 0)
                        return die("%s: '%s' is not a number of seconds from 1 to 600", source,
                                   val);
                o->connect_timeout_ms = (long)v * 1000;
                break;
        case OPT_NO_OVERWRITE:
                o->object.no_overwrite = true;
                break;
        case OPT_DRAIN_TIMEOUT:
                if (parse_uint(val, 86400 * 365, &v) < 0)
                        return die("%s: '%s' is not a number of seconds", source, val);
                o->drain_timeout_ms = (long)v * 1000;
                break;
        case OPT_ALLOW_OTHER:
                o->allow_other = true;
                break;
        case OPT_NO_CHECK:
                o->no_check = true;
                break;
        case 'f':
                o->foreground = true;
                break;
        case 'v':
                o->verbosity++;
                break;
        case 'q':
                o->verbosity--;
                break;
        default:
                return die("unknown option");
        }
        return 0;
}

/* ARTIFUSE_<NAME> for every long option: the environment's values come first, flags win. */
static int apply_env(struct opts *o)
{
        for (const struct option *lo = long_options; lo->name; lo++) {
                char name[64] = "ARTIFUSE_";
                size_t n = strlen(name);
                const char *val;

                if (lo->val == 'h' || lo->val == 'V' || lo->val == OPT_VAR)
                        continue;
                for (const char *p = lo->name; *p && n < sizeof(name) - 1; p++)
                        name[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
                name[n] = '\0';
                val = getenv(name);
                if (!val || !*val)
                        continue;
                if (lo->has_arg == no_argument) {
                        if (strcmp(val, "0") == 0 || strcmp(val, "false") == 0)
                                continue;
                        if (strcmp(val, "1") != 0 && strcmp(val, "true") != 0)
                                return die("$%s: '%s' is not true or false", name, val);
                }
                char source[80];

                snprintf(source, sizeof(source), "$%s", name);
                if (apply(o, lo->val, val, source) != 0)
                        return EXIT_CONFIG;
        }
        return 0;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
        int c;

        memset(o, 0, sizeof(*o));
        af_vars_init(&o->vars);
        o->drain_timeout_ms = -1;
        o->retry_for_ms = -1;
        if (apply_env(o) != 0)
                return EXIT_CONFIG;
        optind = 1;
        opterr = 0;
        for (;;) {
                char source[80];
                int li = -1;

                c = getopt_long(argc, argv, "+fo:vqhV", long_options, &li);
                if (c == -1)
                        break;

                if (c == '?') {
                        if (optopt)
                                return die("unknown option -%c (see artifuse --help)", optopt);
                        return die("unknown option '%s' (see artifuse --help)",
                                   argv[optind - 1]);
                }
                if (c == ':')
                        return die("option '%s' needs a value", argv[optind - 1]);
                if (c == 'h') {
                        fputs(usage_text, stdout);
                        exit(0);
                }
                if (c == 'V') {
                        puts("artifuse " AF_VERSION);
                        exit(0);
                }
                if (li >= 0)
                        snprintf(source, sizeof(source), "--%s", long_options[li].name);
                else
                        snprintf(source, sizeof(source), "-%c", c);
                if (apply(o, c, optarg, source) != 0)
                        return EXIT_CONFIG;
        }
        /* Retry for two minutes by default, so an outage or a throttling storm is ridden out;
         * an explicit --upload-attempts alone means just that many attempts. */
        if (o->retry_for_ms < 0)
                o->retry_for_ms = o->attempts ? 0 : 120000;
        if (o->object.sse_kms_key_id && !o->object.sse)
                o->object.sse = "aws:kms";
        if (o->object.sse_kms_key_id && strcmp(o->object.sse, "aws:kms") != 0)
                return die("--sse-kms-key-id needs --sse aws:kms");
        af_buf_init(&o->tagging, 8192);
        for (size_t i = 0; i < o->ntags; i++) {
                const char *k = o->tags[i].key, *v = o->tags[i].value;

                if (!k || (i && af_buf_addc(&o->tagging, '&') < 0) ||
                    af_sigv4_uri_encode(k, strlen(k), true, &o->tagging) < 0 ||
                    af_buf_addc(&o->tagging, '=') < 0 ||
                    af_sigv4_uri_encode(v, strlen(v), true, &o->tagging) < 0)
                        return die("out of memory");
        }
        if (o->ntags) {
                o->object.tagging = af_buf_str(&o->tagging);
                o->object.tags = o->tags;
                o->object.ntags = o->ntags;
        }
        if (o->verbosity > 0)
                af_log_set_level(AF_LOG_DEBUG);
        else if (o->verbosity < 0)
                af_log_set_level(AF_LOG_WARN);
        return 0;
}

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

/* Everything a command needs to route paths: spec, variables, repository, router. */
struct setup {
        struct af_spec spec;
        bool have_spec;
        struct af_router router;
        struct af_s3_location repo; /* where objects go: bucket, endpoint, region, insecure */
        char *key_format;           /* owned */
        char endpoint[512];         /* the repository's endpoint as a URL, or "" */
        bool time_from_mount;       /* creationTimestamp fell back to now */
};

static void setup_done(struct setup *s)
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
static int read_spec_source(const struct opts *o, struct af_buf *data, const char **ret_name)
{
        const char *env = getenv("ARGO_TEMPLATE");
        int r;

        if (o->spec) {
                *ret_name = strcmp(o->spec, "-") == 0 ? "<stdin>" : o->spec;
                r = read_file(o->spec, data);
                if (r < 0)
                        return die("cannot read --spec %s: %s", o->spec,
                                   r == -E2BIG ? "larger than 16 MiB" : strerror(-r));
                return 0;
        }
        if (o->argo_template) {
                *ret_name = o->argo_template;
                r = read_file(o->argo_template, data);
                if (r < 0)
                        return die("cannot read --argo-template %s: %s", o->argo_template,
                                   strerror(-r));
                return 0;
        }
        if (access(ARGO_TEMPLATE_FILE, R_OK) == 0) {
                *ret_name = ARGO_TEMPLATE_FILE;
                r = read_file(ARGO_TEMPLATE_FILE, data);
                if (r < 0)
                        return die("cannot read %s: %s", ARGO_TEMPLATE_FILE, strerror(-r));
                return 0;
        }
        if (env && strcmp(env, "offloaded") == 0) {
                *ret_name = ARGO_TEMPLATE_OFFLOADED;
                r = read_file(ARGO_TEMPLATE_OFFLOADED, data);
                if (r < 0)
                        return die("$ARGO_TEMPLATE is 'offloaded' but %s cannot be read: %s",
                                   ARGO_TEMPLATE_OFFLOADED, strerror(-r));
                return 0;
        }
        if (env && *env) {
                *ret_name = "$ARGO_TEMPLATE";
                if (af_buf_adds(data, env) < 0)
                        return die("$ARGO_TEMPLATE is too large");
                return 0;
        }
        *ret_name = NULL;
        return 0;
}

/* --artifact-repository s3://BUCKET/KEYFORMAT */
static int repo_from_url(const char *url, struct setup *s)
{
        const char *rest;
        size_t bl;

        if (strncmp(url, "s3://", 5) != 0)
                return die("--artifact-repository '%s' must start with s3://", url);
        rest = url + 5;
        bl = strcspn(rest, "/");
        if (bl == 0 || bl > 255)
                return die("--artifact-repository '%s' has no valid bucket name", url);
        s->repo.bucket = strndup(rest, bl);
        s->key_format = strdup(rest[bl] ? rest + bl + 1 : "");
        if (!s->repo.bucket || !s->key_format)
                return die("out of memory");
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

static int set_creation_time(struct opts *o, struct setup *s)
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
                        return die("%s: '%s' is not an RFC 3339 time (2026-11-28T04:00:00Z)",
                                   src[0] == '-' ? src : "$ARGO_WORKFLOW_CREATION_TIMESTAMP",
                                   ts);
        } else {
                t = time(NULL);
                src = "mount time";
                s->time_from_mount = true;
        }
        if (af_argo_vars_from_time(&o->vars, t, off, src) < 0)
                return die("out of memory");
        return 0;
}

/* Fills @s; on failure (one line printed, EXIT_CONFIG returned) leaves nothing to free. */
static int setup_router(struct opts *o, const char *default_as, bool strict, struct setup *s)
{
        struct af_router_config rc = { 0 };
        struct af_spec_options so = { .template_name = o->template_name,
                                      .workflow = o->workflow };
        struct af_buf err, data;
        const char *spec_name = NULL;
        int r;

        memset(s, 0, sizeof(*s));
        s->repo.insecure = -1;
        af_buf_init(&err, 4096);
        af_buf_init(&data, AF_SPEC_MAX + 1);

        r = read_spec_source(o, &data, &spec_name);
        if (r)
                goto out;
        if (spec_name) {
                r = af_spec_parse_opts(data.ptr ? data.ptr : "", data.len, spec_name, &so,
                                       &s->spec, &err);
                if (r < 0) {
                        r = die("%s", af_buf_str(&err));
                        goto out;
                }
                s->have_spec = true;
        } else if (o->template_name || o->workflow) {
                r = die("--template and --workflow need --spec");
                goto out;
        }

        /* Where objects go: the flag, else Argo's repository YAML, else the resolved
         * template's archiveLocation (whose key Argo has already resolved). */
        if (o->repo) {
                r = repo_from_url(o->repo, s);
                if (r)
                        goto out;
        } else if (o->repository_config) {
                af_buf_reset(&data);
                r = read_file(o->repository_config, &data);
                if (r < 0) {
                        r = die("cannot read --repository-config %s: %s", o->repository_config,
                                strerror(-r));
                        goto out;
                }
                r = af_repository_parse(data.ptr ? data.ptr : "", data.len,
                                        o->repository_config, &s->repo, &err);
                if (r < 0) {
                        r = die("%s", af_buf_str(&err));
                        goto out;
                }
                if (key_format_of(&s->repo, &s->key_format) < 0) {
                        r = die("out of memory");
                        goto out;
                }
        } else if (s->have_spec && s->spec.has_archive_location &&
                   s->spec.archive_location.bucket) {
                struct af_s3_location *al = &s->spec.archive_location;

                s->repo = *al;
                memset(al, 0, sizeof(*al));
                al->insecure = -1;
                s->key_format = strdup(s->repo.key ? s->repo.key : "");
                if (!s->key_format) {
                        r = die("out of memory");
                        goto out;
                }
        } else {
                r = die("no repository: give --artifact-repository s3://BUCKET/KEYFORMAT or "
                        "--repository-config FILE%s",
                        s->have_spec ? " (the spec has no archiveLocation.s3)" : "");
                goto out;
        }
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

        /* Variables: --var (already set), the spec, the environment, the creation time. */
        if ((s->have_spec && af_argo_vars_from_spec(&o->vars, &s->spec) < 0) ||
            af_vars_from_env(&o->vars) < 0) {
                r = die("out of memory");
                goto out;
        }
        r = set_creation_time(o, s);
        if (r)
                goto out;
        rc.bucket = s->repo.bucket;
        rc.key_format = s->key_format;
        rc.mount_as = o->as ? o->as : default_as;
        rc.archive_default = o->archive_default;
        rc.unmatched = o->unmatched;
        rc.strict_paths = strict;
        rc.endpoint = o->endpoint ? o->endpoint : s->endpoint[0] ? s->endpoint : NULL;
        /* A spec whose template declares no outputs would upload nothing: surely a mistake
         * (the wrong --template?), unless every file is wanted. */
        if (s->have_spec && s->spec.nartifacts == 0 && o->unmatched != AF_UNMATCHED_UPLOAD) {
                r = die("%s: template '%s' declares no output artifacts, so nothing would be "
                        "uploaded (pick the pod's template with --template, or upload every "
                        "file with --unmatched upload)",
                        spec_name, s->spec.template_name ? s->spec.template_name : "?");
                goto out;
        }
        r = af_router_init(&s->router, &rc, s->have_spec ? &s->spec : NULL, &o->vars, &err);
        if (r < 0) {
                r = die("%s", af_buf_str(&err));
                goto out;
        }
        r = 0;
out:
        if (r)
                setup_done(s);
        af_buf_done(&err);
        af_buf_done(&data);
        return r;
}

static bool template_uses_time(const struct setup *s)
{
        if (strstr(s->key_format, "creationTimestamp"))
                return true;
        for (size_t i = 0; s->have_spec && i < s->spec.nartifacts; i++)
                if (s->spec.artifacts[i].s3_key &&
                    strstr(s->spec.artifacts[i].s3_key, "creationTimestamp"))
                        return true;
        return false;
}

/* ---- artifuse keys --------------------------------------------------------------------- */

static int cmd_keys(struct opts *o, int argc, char **argv)
{
        struct af_route route = { 0 };
        struct setup s;
        int r, status = 0;

        r = setup_router(o, "/", false, &s);
        if (r)
                return r;
        af_buf_init(&route.key, 0);
        if (optind >= argc) {
                /* No paths: every declared artifact, where it goes and how. */
                if (s.router.narts == 0)
                        printf("(no declared artifacts: every file goes to s3://%s/%s/<path>)\n",
                               s.router.bucket, s.router.prefix);
                for (size_t i = 0; i < s.router.narts; i++) {
                        const struct af_route_artifact *a = &s.router.arts[i];

                        if (!a->rel) {
                                printf("%s\t%s\t(outside %s)\n", a->name, a->path,
                                       s.router.mount_as);
                                continue;
                        }
                        r = af_router_route(&s.router, a->rel, &route);
                        if (r > 0)
                                printf("%s\t%s\ts3://%s/%s\t%s%s\n", a->name, a->path,
                                       route.bucket, af_buf_str(&route.key),
                                       af_archive_name(a->archive),
                                       a->optional ? "\toptional" : "");
                        else
                                printf("%s\t%s\t(error: %s)\n", a->name, a->path,
                                       strerror(-r));
                }
        }
        for (int i = optind; i < argc; i++) {
                const char *p = argv[i];
                const char *as = s.router.mount_as;
                size_t al = strlen(as);

                /* Absolute paths are taken relative to --as, as the mount would see them. */
                if (p[0] == '/') {
                        if (strcmp(as, "/") == 0)
                                p++;
                        else if (strncmp(p, as, al) == 0 && (p[al] == '/' || !p[al]))
                                p += al + (p[al] == '/');
                        else {
                                printf("%s\t(outside %s: not in the mount)\n", argv[i], as);
                                continue;
                        }
                }
                r = af_router_route(&s.router, p, &route);
                if (r > 0 && route.deferred)
                        printf("%s\ts3://%s/%s\t(inside the %s archive of its directory, "
                               "uploaded when the directory is complete)\n",
                               argv[i], route.bucket, af_buf_str(&route.key),
                               af_archive_name(route.archive));
                else if (r > 0)
                        printf("%s\ts3://%s/%s\n", argv[i], route.bucket,
                               af_buf_str(&route.key));
                else if (r == 0)
                        printf("%s\t(not uploaded: not a declared artifact)\n", argv[i]);
                else {
                        printf("%s\t(error: %s)\n", argv[i], strerror(-r));
                        status = EXIT_CONFIG;
                }
        }
        af_buf_done(&route.key);
        setup_done(&s);
        return status;
}

/* ---- artifuse mount -------------------------------------------------------------------- */

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

/* Which credentials will sign: the provider and the key id's kind, never a secret. */
static void log_credentials(struct af_creds_provider *p)
{
        struct af_creds c;
        char what[512];

        if (af_creds_get(p, &c) < 0)
                return;
        af_creds_describe(&c, what, sizeof(what));
        explicit_bzero(&c, sizeof(c));
        af_log_info("op=credentials source=%s", af_q(what));
}

static int mkdir_p(const char *path, mode_t mode)
{
        char buf[PATH_MAX];
        size_t n = strlen(path);

        if (n >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static void fuse_log_to_af(enum fuse_log_level level, const char *fmt, va_list ap)
{
        char msg[1024];
        size_t n;

        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n && msg[n - 1] == '\n')
                msg[--n] = '\0';
        af_log(level <= FUSE_LOG_ERR ? AF_LOG_ERROR
               : level <= FUSE_LOG_WARNING ? AF_LOG_WARN
               : level <= FUSE_LOG_INFO ? AF_LOG_INFO
                                         : AF_LOG_DEBUG,
               "op=fuse msg=%s", af_q(msg));
}

/* One HEAD Bucket before mounting: a wrong endpoint or bucket is a start-up error. */
static int check_endpoint(const struct af_s3_config *s3c, struct af_creds_provider *creds,
                          const char *bucket)
{
        struct af_s3_client *c = NULL;
        struct af_s3_error e;
        struct af_buf err;
        int r;

        af_buf_init(&err, 1024);
        r = af_s3_client_new(s3c, creds, &c, &err);
        if (r < 0) {
                r = die("%s", af_buf_str(&err));
                goto out;
        }
        /* A blip while the pod starts is not a misconfiguration: three tries, a second apart. */
        for (int i = 0; i < 3; i++) {
                r = af_s3_head_bucket(c, bucket, &e);
                if (r == 0 || e.http_status != 0 || i == 2)
                        break;
                sleep(1);
        }
        af_s3_error_format(&e, &err);
        if (r == 0) {
                r = 0;
        } else if (e.http_status == 0) {
                r = die("cannot reach S3 endpoint %s: %s (check --endpoint; --no-check skips "
                        "this test)",
                        s3c->endpoint, af_buf_str(&err));
        } else if (r == -ENOENT) {
                r = die("bucket '%s' does not exist at %s: %s", bucket, s3c->endpoint,
                        af_buf_str(&err));
        } else if (r == -EACCES) {
                /* Write-only credentials cannot HEAD a bucket; uploads may still work. */
                af_log_warn("op=check bucket=%s endpoint=%s err=%s msg=\"HEAD bucket denied; "
                            "continuing, uploads will say if the credentials are wrong\"",
                            af_q(bucket), af_q(s3c->endpoint), af_q(af_buf_str(&err)));
                r = 0;
        } else {
                af_log_warn("op=check bucket=%s endpoint=%s err=%s msg=\"continuing\"",
                            af_q(bucket), af_q(s3c->endpoint), af_q(af_buf_str(&err)));
                r = 0;
        }
out:
        af_s3_client_free(c);
        af_buf_done(&err);
        return r;
}

/* A directory artifact with an archive strategy is complete now: queue it as one archive. */
static void submit_archived_directories(const struct af_router *r, int spool_fd,
                                        struct af_queue *q)
{
        struct af_route route = { 0 };

        af_buf_init(&route.key, 0);
        for (size_t i = 0; i < r->narts; i++) {
                const struct af_route_artifact *a = &r->arts[i];
                struct stat st;

                if (!a->rel || !*a->rel || a->archive == AF_ARCHIVE_NONE ||
                    fstatat(spool_fd, a->rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (af_router_route(r, a->rel, &route) > 0 &&
                    af_queue_submit(q, a->rel, route.bucket, af_buf_str(&route.key)) == 0)
                        af_log_info("op=unmount artifact=%s key=%s msg=\"directory complete; "
                                    "archiving\"",
                                    af_q(a->name), af_q(af_buf_str(&route.key)));
        }
        af_buf_done(&route.key);
}

/* Argo fails a step whose non-optional output was never written; we can only say so. */
static void warn_missing_outputs(const struct af_router *r, int spool_fd)
{
        for (size_t i = 0; i < r->narts; i++) {
                const struct af_route_artifact *a = &r->arts[i];
                struct stat st;

                if (!a->rel || a->optional || !*a->rel)
                        continue;
                if (fstatat(spool_fd, a->rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        af_log_warn("op=unmount artifact=%s path=%s msg=\"declared output was "
                                    "never written (not optional)\"",
                                    af_q(a->name), af_q(a->path));
        }
}

/* Forks; the parent returns only to exit with the child's start-up verdict. */
static int daemonize(int *ret_notify_fd)
{
        int p[2];
        pid_t pid;
        char ok = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return die("pipe: %s", strerror(errno));
        pid = fork();
        if (pid < 0)
                return die("fork: %s", strerror(errno));
        if (pid > 0) {
                close(p[1]);
                if (read(p[0], &ok, 1) != 1 || ok != 1) {
                        int st;

                        waitpid(pid, &st, 0);
                        exit(EXIT_CONFIG);
                }
                exit(0);
        }
        close(p[0]);
        setsid();
        *ret_notify_fd = p[1];
        return 0;
}

/* ---- S3 and queue settings from the options (mount, run and drain share them) --------- */

/*
 * The S3 client settings: flags win, then @repo_region/@repo_endpoint (the repository's or
 * the journal's, may be NULL or ""), then the AWS environment. @endpoint_buf backs a default.
 */
static void s3_config_from(struct opts *o, const char *repo_region, const char *repo_endpoint,
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
        s3c->checksum = o->checksum;
        s3c->addressing = o->addressing;
}

static void queue_config_from(const struct opts *o, int files_fd, int journal_fd,
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
        qc->s3 = s3c;
        qc->creds = creds;
}

/* ---- the spool: files/ (what the mount serves) and journal/ (pending uploads) ---------- */

struct spool {
        char root[PATH_MAX];
        char files[PATH_MAX + 8];
        int root_fd;    /* holds the lock */
        int files_fd;
        int journal_fd;
};

static void spool_close(struct spool *sp)
{
        if (sp->journal_fd >= 0)
                close(sp->journal_fd);
        if (sp->files_fd >= 0)
                close(sp->files_fd);
        if (sp->root_fd >= 0)
                close(sp->root_fd); /* releases the lock */
        sp->root_fd = sp->files_fd = sp->journal_fd = -1;
}

/*
 * Opens (with @create, makes) the spool at @dir. With @lock, takes it for this process:
 * a mount and a drain of one spool at the same time would upload the same files twice.
 */
static int spool_open(const char *dir, bool create, bool lock, struct spool *sp)
{
        int r;

        sp->root_fd = sp->files_fd = sp->journal_fd = -1;
        if (create && (r = mkdir_p(dir, 0700)) < 0)
                return die("spool %s: %s", dir, strerror(-r));
        if (!realpath(dir, sp->root))
                return die("spool %s: %s", dir, strerror(errno));
        snprintf(sp->files, sizeof(sp->files), "%s/files", sp->root);
        if (create) {
                char j[PATH_MAX + 16];

                snprintf(j, sizeof(j), "%s/journal", sp->root);
                if ((mkdir(sp->files, 0755) < 0 && errno != EEXIST) ||
                    (mkdir(j, 0700) < 0 && errno != EEXIST))
                        return die("spool %s: cannot make files/ and journal/: %s", sp->root,
                                   strerror(errno));
        }
        sp->root_fd = open(sp->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sp->root_fd >= 0)
                sp->files_fd = openat(sp->root_fd, "files", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (sp->files_fd >= 0)
                sp->journal_fd = openat(sp->root_fd, "journal", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sp->journal_fd < 0) {
                r = die("spool %s: %s (is it an artifuse spool, with files/ and journal/?)",
                        sp->root, strerror(errno));
                spool_close(sp);
                return r;
        }
        if (lock && flock(sp->root_fd, LOCK_EX | LOCK_NB) < 0) {
                r = die("spool %s is in use by another artifuse (a mount or a drain)", sp->root);
                spool_close(sp);
                return r;
        }
        return 0;
}

/* ---- control socket: artifuse flush talks to the mount -------------------------------- */

struct control {
        int fd; /* listening socket, -1 when none */
        pthread_t thread;
        bool started;
        const struct af_router *router;
        struct af_queue *queue;
        int spool_fd;
};

static void submit_archived_directories(const struct af_router *r, int spool_fd,
                                        struct af_queue *q);

/* One command per connection: "flush\n" -> archive complete directories, wait for every
 * pending upload, answer "ok <uploaded> <failed>\n". */
static void *control_loop(void *arg)
{
        struct control *c = arg;

        for (;;) {
                struct af_queue_stats before, after;
                char cmd[64], reply[128];
                ssize_t n;
                int cfd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);

                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        return NULL; /* the socket was shut down: we are stopping */
                }
                n = read(cfd, cmd, sizeof(cmd) - 1);
                cmd[n > 0 ? n : 0] = '\0';
                if (strncmp(cmd, "flush", 5) == 0) {
                        af_log_info("op=flush msg=\"archiving complete directories; waiting for "
                                    "every pending upload\"");
                        af_queue_get_stats(c->queue, &before);
                        submit_archived_directories(c->router, c->spool_fd, c->queue);
                        (void)af_queue_drain(c->queue, -1);
                        af_queue_get_stats(c->queue, &after);
                        snprintf(reply, sizeof(reply), "ok %llu %llu\n",
                                 (unsigned long long)(after.uploaded_files - before.uploaded_files),
                                 (unsigned long long)(after.failed_files - before.failed_files));
                } else {
                        snprintf(reply, sizeof(reply), "error unknown command\n");
                }
                (void)!write(cfd, reply, strlen(reply));
                close(cfd);
        }
}

/* Listens on <spool>/control.sock (only root and the daemon's user may connect). */
static int control_start(struct control *c, const char *spool_root)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        c->fd = -1;
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", spool_root) >=
            sizeof(sa.sun_path)) {
                af_log_warn("op=control msg=\"spool path too long for a control socket; artifuse "
                            "flush will not reach this mount\"");
                return 0;
        }
        (void)unlink(sa.sun_path);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            chmod(sa.sun_path, 0600) < 0 || listen(c->fd, 4) < 0 ||
            pthread_create(&c->thread, NULL, control_loop, c) != 0) {
                af_log_warn("op=control err=%s msg=\"no control socket; artifuse flush will not "
                            "reach this mount\"",
                            af_q(strerror(errno)));
                if (c->fd >= 0)
                        close(c->fd);
                c->fd = -1;
                return 0;
        }
        c->started = true;
        return 0;
}

static void control_stop(struct control *c, const char *spool_root)
{
        char path[PATH_MAX + 16];

        if (!c->started)
                return;
        shutdown(c->fd, SHUT_RDWR); /* wakes accept() */
        pthread_join(c->thread, NULL);
        close(c->fd);
        snprintf(path, sizeof(path), "%s/control.sock", spool_root);
        (void)unlink(path);
        c->started = false;
}

/* The spool of the artifuse mounted at @mnt, from its /proc/mounts source "artifuse:SPOOL". */
static int spool_of_mount(const char *mnt, char *out, size_t n)
{
        FILE *f = fopen("/proc/self/mounts", "re");
        char line[PATH_MAX * 3];
        int r = -ENOENT;

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char src[PATH_MAX * 2], dir[PATH_MAX * 2], type[64];

                if (sscanf(line, "%s %s %63s", src, dir, type) != 3 ||
                    strcmp(type, "fuse.artifuse") != 0 || strncmp(src, "artifuse:", 9) != 0)
                        continue;
                /* /proc/mounts escapes space, tab, newline and backslash as \ooo */
                for (char *s = dir, *d = dir; ; s++, d++) {
                        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
                                *d = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                                s += 3;
                        } else if (!(*d = *s)) {
                                break;
                        }
                }
                if (strcmp(dir, mnt) != 0)
                        continue;
                for (char *s = src + 9, *d = out; ; s++, d++) {
                        if ((size_t)(d - out) >= n - 1) {
                                *d = '\0';
                                break;
                        }
                        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
                                *d = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                                s += 3;
                        } else if (!(*d = *s)) {
                                break;
                        }
                }
                r = 0;
        }
        fclose(f);
        return r;
}

static int cmd_flush(struct opts *o, int argc, char **argv)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char mnt[PATH_MAX], spool[PATH_MAX], reply[128];
        unsigned long long up = 0, failed = 0;
        ssize_t n;
        int fd;

        (void)o;
        if (optind != argc - 1)
                return die("flush: give the mount point: artifuse flush MOUNTPOINT");
        if (!realpath(argv[optind], mnt))
                return die("flush: %s: %s", argv[optind], strerror(errno));
        if (spool_of_mount(mnt, spool, sizeof(spool)) < 0)
                return die("flush: no artifuse is mounted on %s", mnt);
        if (strlen(spool) + sizeof("/control.sock") > sizeof(sa.sun_path))
                return die("flush: the spool path %s is too long for a control socket", spool);
        memcpy(sa.sun_path, spool, strlen(spool));
        memcpy(sa.sun_path + strlen(spool), "/control.sock", sizeof("/control.sock"));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;

                if (fd >= 0)
                        close(fd);
                return die("flush: cannot reach the artifuse on %s (%s): %s", mnt, sa.sun_path,
                           strerror(e));
        }
        if (write(fd, "flush\n", 6) != 6) {
                close(fd);
                return die("flush: %s", strerror(errno));
        }
        n = read(fd, reply, sizeof(reply) - 1);
        close(fd);
        reply[n > 0 ? n : 0] = '\0';
        if (sscanf(reply, "ok %llu %llu", &up, &failed) != 2)
                return die("flush: the mount answered '%s'", reply);
        printf("artifuse: flush: %llu files uploaded, %llu failed\n", up, failed);
        return failed ? EXIT_UPLOADS : 0;
}

/* ---- artifuse run: the child, its signals, its end --------------------------------- */

/* Read in a signal handler on another thread than the one that resets it: atomic. */
static _Atomic pid_t run_child_pid;

/* SIGTERM/SIGINT/SIGHUP go to the program; its exit is what ends the mount. */
static void forward_signal(int sig)
{
        pid_t pid = atomic_load(&run_child_pid);

        if (pid > 0)
                kill(pid, sig);
}

struct run_state {
        pid_t child;
        int status;           /* waitpid() status */
        const char *mnt;
        struct fuse_session *se;
        pthread_t waiter;
};

/* Waits for the program, then unmounts (lazily: a background process it left may still
 * hold files) so the FUSE loop ends and the uploads drain. */
static void *run_waiter(void *arg)
{
        struct run_state *rs = arg;

        siginfo_t si;

        /* Wait without reaping, stop forwarding, then reap: the pid cannot be reused by
         * another process while a signal could still be sent to it. */
        while (waitid(P_PID, (id_t)rs->child, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
                ;
        atomic_store(&run_child_pid, 0);
        while (waitpid(rs->child, &rs->status, 0) < 0 && errno == EINTR)
                ;
        fuse_session_exit(rs->se);
        if (umount2(rs->mnt, MNT_DETACH) < 0) {
                pid_t p = fork();

                if (p == 0) {
                        execlp("fusermount3", "fusermount3", "-u", "-z", rs->mnt, (char *)NULL);
                        _exit(127);
                }
                if (p > 0) {
                        int st;

                        while (waitpid(p, &st, 0) < 0 && errno == EINTR)
                                ;
                }
        }
        return NULL;
}

/* Starts @argv with the caller's stdio and environment. */
static int start_child(char **argv, pid_t *ret)
{
        int p[2];
        pid_t pid;
        int e = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                e = errno;
                close(p[0]);
                close(p[1]);
                return -e;
        }
        if (pid == 0) {
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                execvp(argv[0], argv);
                e = errno;
                (void)!write(p[1], &e, sizeof(e));
                _exit(127);
        }
        close(p[1]);
        /* The pipe closes on exec; anything read is exec's errno. */
        if (read(p[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
                close(p[0]);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return -e;
        }
        close(p[0]);
        *ret = pid;
        return 0;
}

/* ARGO_DEADLINE (RFC 3339; year 1 means none) as milliseconds from now, or -1. */
static long argo_deadline_ms(void)
{
        const char *d = getenv("ARGO_DEADLINE");
        time_t t;
        int off;

        if (!d || !*d || strncmp(d, "0001-", 5) == 0 || af_rfc3339_parse(d, 0, &t, &off) < 0)
                return -1;
        return t > time(NULL) ? (long)(t - time(NULL)) * 1000 : 0;
}

static void print_problem(void *ctx, const char *relpath, const char *bucket, const char *key,
                          const char *error)
{
        (void)ctx;
        fprintf(stderr, "artifuse: not in S3: %s -> s3://%s/%s: %s\n", relpath, bucket, key,
                error);
}

/* Who hears of each object that reached S3: the registry of what the mount put there (for
 * copies on rename and --delete-on-unlink) and the spool's room (eviction candidates; not
 * with --keep). */
struct uploaded_sinks {
        struct af_remote *remote;
        struct af_space *space;
};

static void on_uploaded(void *ctx, const struct af_queue_uploaded *u)
{
        struct uploaded_sinks *sk = ctx;

        af_remote_on_uploaded(sk->remote, u);
        if (sk->space && !u->superseded && !u->is_dir)
                af_space_uploaded(sk->space, u->relpath, u->key, u->dev, u->ino, u->size,
                                  u->mtime_ns);
}

static int cmd_mount(struct opts *o, int argc, char **argv, char **run_argv)
{
        char mnt[PATH_MAX], spool[PATH_MAX], spool_default[PATH_MAX], endpoint_buf[512];
        struct af_creds_provider creds;
        struct af_queue *queue = NULL;
        struct af_space *space = NULL;
        struct af_remote *remote = NULL;
        struct uploaded_sinks sinks;
        struct af_fs *fs = NULL;
        struct fuse_session *se = NULL;
        struct fuse_loop_config *loop = NULL;
        struct fuse_lowlevel_ops ops;
        struct fuse_args fargs = FUSE_ARGS_INIT(0, NULL);
        struct af_queue_config qc = { 0 };
        struct af_s3_config s3c = { 0 };
        struct af_queue_stats stats;
        struct af_buf err, mopts;
        struct setup s;
        struct stat st;
        int r, notify_fd = -1, status = 0, spool_fd = -1;
        bool have_creds = false, have_setup = false;
        struct run_state rs = { 0 };
        struct spool sp = { .root_fd = -1, .files_fd = -1, .journal_fd = -1 };
        int manifest_fd = -1;
        struct control ctl = { .fd = -1 };
        time_t t_start = time(NULL);

        af_buf_init(&err, 4096);
        af_buf_init(&mopts, 4096);
        if (optind != argc - 1) {
                r = die("mount: give exactly one MOUNTPOINT (see artifuse --help)");
                goto out;
        }
        if (!realpath(argv[optind], mnt) || stat(mnt, &st) < 0) {
                r = die("mount point %s: %s", argv[optind], strerror(errno));
                goto out;
        }
        if (!S_ISDIR(st.st_mode)) {
                r = die("mount point %s is not a directory", argv[optind]);
                goto out;
        }
        r = setup_router(o, mnt, true, &s);
        if (r)
                goto out;
        have_setup = true;

        /* The spool: a stable default per mount point, so a restart finds what was left. */
        if (!o->spool) {
                size_t n = (size_t)snprintf(spool_default, sizeof(spool_default),
                                            "/var/tmp/artifuse/");
                for (const char *p = mnt; *p && n < sizeof(spool_default) - 1; p++)
                        spool_default[n++] = *p == '/' ? '_' : *p;
                spool_default[n] = '\0';
                o->spool = spool_default;
        }
        r = spool_open(o->spool, true, true, &sp);
        if (r)
                goto out;
        {
                size_t ml = strlen(mnt);

                if (strcmp(mnt, "/") == 0 ||
                    (strncmp(sp.root, mnt, ml) == 0 && (sp.root[ml] == '/' || !sp.root[ml]))) {
                        r = die("spool %s must not be inside the mount point %s", sp.root, mnt);
                        goto out;
                }
        }
        memcpy(spool, sp.files, strlen(sp.files) + 1);
        /* The mount's root is the spool's files/: give it the mount point's mode and owner,
         * so /tmp stays 1777 for every user of the mount, as before it was mounted. */
        if (chmod(spool, st.st_mode & 07777) < 0 ||
            (geteuid() == 0 && chown(spool, st.st_uid, st.st_gid) < 0))
                af_log_warn("op=mount spool=%s err=%s msg=\"cannot give the spool the mount "
                            "point's mode and owner\"",
                            af_q(spool), af_q(strerror(errno)));

        r = af_creds_provider_init(&creds, NULL, &err);
        if (r < 0) {
                r = die("%s", af_buf_str(&err));
                goto out;
        }
        have_creds = true;
        /* Flags win; then the repository (Argo's own config); then the AWS environment. */
        s3_config_from(o, s.repo.region, s.endpoint, endpoint_buf, sizeof(endpoint_buf), &s3c);
        if (af_s3_global_init() < 0) {
                r = die("cannot initialise libcurl");
                goto out;
        }
        if (!o->no_check) {
                r = check_endpoint(&s3c, &creds, s.repo.bucket);
                if (r)
                        goto out;
        }
        log_credentials(&creds);

        if (o->log_file) {
                int lfd = open(o->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

                if (lfd < 0) {
                        r = die("--log-file %s: %s", o->log_file, strerror(errno));
                        goto out;
                }
                af_log_set_fd(lfd);
        }
        fuse_set_log_func(fuse_log_to_af);
        if (s.time_from_mount && template_uses_time(&s))
                af_log_info("op=mount msg=\"workflow.creationTimestamp is the mount time: give "
                            "--creation-timestamp or $ARGO_WORKFLOW_CREATION_TIMESTAMP for "
                            "Argo's\"");
        if (!o->foreground && !run_argv) {
                r = daemonize(&notify_fd);
                if (r)
                        goto out;
        }

        spool_fd = sp.files_fd;
        if (o->manifest) {
                manifest_fd = open(o->manifest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
                if (manifest_fd < 0) {
                        r = die("--manifest %s: %s", o->manifest, strerror(errno));
                        goto out;
                }
                qc.manifest_fd = manifest_fd;
        }
        r = af_space_new(&(struct af_space_config){ .dirfd = spool_fd, .limit = o->spool_limit },
                         &space);
        if (r < 0) {
                r = die("spool %s: %s", spool, strerror(-r));
                goto out;
        }
        if (o->spool_limit)
                af_log_info("op=mount spool_used=%llu spool_limit=%llu",
                            (unsigned long long)af_space_used(space),
                            (unsigned long long)o->spool_limit);
        queue_config_from(o, spool_fd, sp.journal_fd, &s3c, &creds, &qc);
        qc.router = &s.router;
        /* What the mount uploaded, for copies on rename and --delete-on-unlink. */
        r = af_remote_new(&(struct af_remote_config){ .spool_fd = spool_fd,
                                                      .router = &s.router,
                                                      .delete_on_unlink = o->delete_on_unlink },
                          &remote);
        if (r < 0) {
                r = die("out of memory");
                goto out;
        }
        sinks = (struct uploaded_sinks){ .remote = remote, .space = o->keep ? NULL : space };
        qc.on_uploaded = on_uploaded;
        qc.on_uploaded_ctx = &sinks;
        r = af_queue_new(&qc, &queue, &err);
        if (r < 0) {
                r = die("%s", af_buf_str(&err));
                goto out;
        }
        af_remote_set_queue(remote, queue);
        r = af_queue_resume(queue);
        if (r > 0)
                af_log_info("op=resume files=%d msg=\"uploads an earlier run left are queued\"",
                            r);
        else if (r < 0)
                af_log_error("op=resume err=%s msg=\"cannot read the journal\"",
                             af_q(strerror(-r)));
        r = af_fs_new(&(struct af_fs_config){ .spool = spool,
                                              .router = &s.router,
                                              .queue = queue,
                                              .timeout = 1.0,
                                              .sync_close = o->sync_close,
                                              .space = space,
                                              .keep = o->keep,
                                              .no_xattr = o->no_xattr,
                                              .remote = remote,
                                              /* --preserve-metadata sends mode, owner
                                               * and mtime when the upload is created: at
                                               * the close, not while the file grows. */
                                              .streaming = !o->no_streaming &&
                                                           !o->preserve_metadata },
                      &fs);
        if (r < 0) {
                r = die("spool %s: %s", spool, strerror(-r));
                goto out;
        }

        /* The source names the spool, so artifuse flush MOUNTPOINT finds its control socket.
         * (Commas would split the option: then flush cannot find it, nothing else breaks.) */
        if (!strchr(sp.root, ','))
                (void)af_buf_addf(&mopts, "fsname=artifuse:%s,", sp.root);
        else
                (void)af_buf_adds(&mopts, "fsname=artifuse,");
        (void)af_buf_adds(&mopts, "subtype=artifuse,default_permissions");
        if (o->allow_other)
                (void)af_buf_adds(&mopts, ",allow_other");
        if (o->fuse_opts)
                (void)af_buf_addf(&mopts, ",%s", o->fuse_opts);
        if (fuse_opt_add_arg(&fargs, "artifuse") || fuse_opt_add_arg(&fargs, "-o") ||
            fuse_opt_add_arg(&fargs, af_buf_str(&mopts))) {
                r = die("out of memory");
                goto out;
        }
        umask(0); /* the kernel has applied the caller's umask already */
        ops = af_fs_ops;
        if (o->no_xattr) {
                /* Unanswered (ENOSYS) once, the kernel asks no more: not even for the
                 * security.capability check that precedes every write. */
                ops.getxattr = NULL;
                ops.listxattr = NULL;
                ops.setxattr = NULL;
                ops.removexattr = NULL;
        }
        se = fuse_session_new(&fargs, &ops, sizeof(ops), fs);
        if (!se) {
                r = die("cannot create the FUSE session (bad -o options?)");
                goto out;
        }
        if (run_argv) {
                struct sigaction sa = { .sa_handler = forward_signal };

                sigemptyset(&sa.sa_mask);
                sigaction(SIGTERM, &sa, NULL);
                sigaction(SIGINT, &sa, NULL);
                sigaction(SIGHUP, &sa, NULL);
        } else if (fuse_set_signal_handlers(se) != 0) {
                r = die("cannot install signal handlers");
                goto out;
        }
        af_fs_set_session(fs, se);
        if (fuse_session_mount(se, mnt) != 0) {
                r = die("cannot mount on %s (is /dev/fuse there, and are we allowed to mount?)",
                        mnt);
                if (!run_argv)
                        fuse_remove_signal_handlers(se);
                goto out;
        }
        af_log_info("op=mount mountpoint=%s spool=%s bucket=%s prefix=%s endpoint=%s "
                    "artifacts=%zu unmatched=%s",
                    af_q(mnt), af_q(spool), af_q(s.repo.bucket), af_q(s.router.prefix),
                    af_q(s3c.endpoint), s.router.narts,
                    s.router.upload_unmatched ? "upload" : "ignore");
        for (size_t i = 0; i < s.router.narts; i++) {
                const struct af_route_artifact *a = &s.router.arts[i];

                if (!a->rel)
                        af_log_warn("op=mount artifact=%s path=%s msg=\"outside the mount (%s); "
                                    "artifuse will not see it\"",
                                    af_q(a->name), af_q(a->path), s.router.mount_as);
        }
        if (notify_fd >= 0) {
                char ok = 1;
                int nullfd = open("/dev/null", O_RDWR);

                if (nullfd >= 0) {
                        dup2(nullfd, 0);
                        if (o->log_file) {
                                dup2(nullfd, 1);
                                dup2(nullfd, 2);
                        }
                        close(nullfd);
                }
                (void)!write(notify_fd, &ok, 1);
                close(notify_fd);
                notify_fd = -1;
        }

        ctl.router = &s.router;
        ctl.queue = queue;
        ctl.spool_fd = spool_fd;
        control_start(&ctl, sp.root);
        if (run_argv) {
                rs.mnt = mnt;
                rs.se = se;
                r = start_child(run_argv, &rs.child);
                if (r < 0) {
                        fuse_session_unmount(se);
                        r = die("cannot run %s: %s", run_argv[0], strerror(-r));
                        goto out;
                }
                atomic_store(&run_child_pid, rs.child);
                t_start = time(NULL);
                if (pthread_create(&rs.waiter, NULL, run_waiter, &rs) != 0) {
                        kill(rs.child, SIGKILL);
                        fuse_session_unmount(se);
                        r = die("cannot start the waiter thread");
                        goto out;
                }
                /* The deadline Argo gives the step bounds the drain too. */
                long dl = argo_deadline_ms();

                if (dl >= 0 && (o->drain_timeout_ms < 0 || dl < o->drain_timeout_ms))
                        o->drain_timeout_ms = dl;
        }
        loop = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(loop, 0);
        fuse_loop_cfg_set_max_threads(loop, 16);
        r = fuse_session_loop_mt(se, loop);
        fuse_loop_cfg_destroy(loop);
        if (run_argv)
                pthread_join(rs.waiter, NULL);
        else
                fuse_remove_signal_handlers(se);
        /* After the waiter's lazy unmount the connection is gone and libfuse only frees. */
        fuse_session_unmount(se);
        control_stop(&ctl, sp.root);
        af_log_info("op=unmount mountpoint=%s msg=\"draining uploads\"", af_q(mnt));
        if (af_fs_submit_dirty(fs))
                af_log_info("op=unmount msg=\"files still open at unmount were queued\"");
        submit_archived_directories(&s.router, spool_fd, queue);
        if (af_queue_drain(queue, o->drain_timeout_ms) < 0)
                af_log_error("op=unmount msg=\"drain timeout passed; what is left stays in the "
                             "spool\"");
        warn_missing_outputs(&s.router, spool_fd);
        af_queue_get_stats(queue, &stats);
        af_log_info("op=exit uploaded_files=%llu uploaded_bytes=%llu failed_files=%llu "
                    "pending_files=%llu",
                    (unsigned long long)stats.uploaded_files,
                    (unsigned long long)stats.uploaded_bytes,
                    (unsigned long long)stats.failed_files,
                    (unsigned long long)stats.pending_files);
        status = stats.failed_files || stats.pending_files ? EXIT_UPLOADS : 0;
        if (run_argv) {
                int cmd_status = WIFEXITED(rs.status)     ? WEXITSTATUS(rs.status)
                                 : WIFSIGNALED(rs.status) ? 128 + WTERMSIG(rs.status)
                                                          : 1;

                af_queue_foreach_problem(queue, print_problem, NULL);
                fprintf(stderr,
                        "artifuse: %s exited with %d; %llu files (%llu bytes) uploaded in %llds, "
                        "%llu failed, %llu left in the spool\n",
                        run_argv[0], cmd_status, (unsigned long long)stats.uploaded_files,
                        (unsigned long long)stats.uploaded_bytes,
                        (long long)(time(NULL) - t_start), (unsigned long long)stats.failed_files,
                        (unsigned long long)stats.pending_files);
                /* The program's status wins; a success with files missing from S3 does not. */
                if (cmd_status != 0 || status == 0)
                        status = cmd_status;
        }
        r = 0;
out:
        control_stop(&ctl, sp.root);
        if (fs)
                af_fs_set_session(fs, NULL);
        if (se)
                fuse_session_destroy(se);
        af_queue_free(queue);
        af_remote_free(remote); /* after the queue: its workers call into it */
        af_fs_free(fs);
        af_space_free(space);
        spool_close(&sp);
        if (manifest_fd >= 0)
                close(manifest_fd);
        fuse_opt_free_args(&fargs);
        if (have_creds)
                af_creds_provider_done(&creds);
        if (have_setup)
                setup_done(&s);
        af_buf_done(&err);
        af_buf_done(&mopts);
        return r ? r : status;
}

/* ---- artifuse drain and status: the journal without a mount -------------------------- */

struct first_rec {
        char endpoint[512];
        char region[64];
};

static void take_first(void *ctx, struct af_journal_rec *rec)
{
        struct first_rec *f = ctx;

        if (!f->endpoint[0] && rec->endpoint)
                snprintf(f->endpoint, sizeof(f->endpoint), "%s", rec->endpoint);
        if (!f->region[0] && rec->region)
                snprintf(f->region, sizeof(f->region), "%s", rec->region);
}

static int cmd_drain(struct opts *o, int argc, char **argv)
{
        struct spool sp = { .root_fd = -1, .files_fd = -1, .journal_fd = -1 };
        struct af_creds_provider creds;
        struct af_queue_config qc = { 0 };
        struct af_s3_config s3c = { 0 };
        struct af_queue *queue = NULL;
        struct af_queue_stats stats;
        struct first_rec first = { "", "" };
        char endpoint_buf[512];
        struct af_buf err;
        bool have_creds = false;
        int r, n, status = 0;
        time_t t0 = time(NULL);

        af_buf_init(&err, 4096);
        if (optind != argc) {
                r = die("drain: unexpected argument '%s' (artifuse drain --spool DIR)", argv[optind]);
                goto out;
        }
        if (!o->spool) {
                r = die("drain: give the spool: artifuse drain --spool DIR");
                goto out;
        }
        r = spool_open(o->spool, false, true, &sp);
        if (r)
                goto out;
        /* Where to send: the flags, else what the records say, else the AWS environment. */
        (void)af_journal_scan(sp.journal_fd, false, take_first, NULL, &first);
        r = af_creds_provider_init(&creds, NULL, &err);
        if (r < 0) {
                r = die("%s", af_buf_str(&err));
                goto out;
        }
        have_creds = true;
        log_credentials(&creds);
        s3_config_from(o, first.region, first.endpoint, endpoint_buf, sizeof(endpoint_buf), &s3c);
        if (af_s3_global_init() < 0) {
                r = die("cannot initialise libcurl");
                goto out;
        }
        queue_config_from(o, sp.files_fd, sp.journal_fd, &s3c, &creds, &qc);
        r = af_queue_new(&qc, &queue, &err);
        if (r < 0) {
                r = die("%s", af_buf_str(&err));
                goto out;
        }
        n = af_queue_resume(queue);
        af_log_info("op=drain spool=%s endpoint=%s files=%d", af_q(sp.root), af_q(s3c.endpoint),
                    n < 0 ? 0 : n);
        if (af_queue_drain(queue, o->drain_timeout_ms) < 0)
                af_log_error("op=drain msg=\"drain timeout passed; what is left stays journaled\"");
        af_queue_get_stats(queue, &stats);
        af_queue_foreach_problem(queue, print_problem, NULL);
        fprintf(stderr, "artifuse: drain: %llu files (%llu bytes) uploaded in %llds, %llu failed, "
                        "%llu left\n",
                (unsigned long long)stats.uploaded_files, (unsigned long long)stats.uploaded_bytes,
                (long long)(time(NULL) - t0), (unsigned long long)stats.failed_files,
                (unsigned long long)stats.pending_files);
        status = stats.failed_files || stats.pending_files || n < 0 ? EXIT_UPLOADS : 0;
        r = 0;
out:
        af_queue_free(queue);
        if (have_creds)
                af_creds_provider_done(&creds);
        spool_close(&sp);
        af_buf_done(&err);
        return r ? r : status;
}

struct status_ctx {
        int files_fd;
        uint64_t n[2], bytes[2], uploading;
        bool json;
        struct af_buf failed; /* the failed files' lines (text) or objects (json) */
        unsigned corrupt;
        uint64_t deletes; /* --delete-on-unlink deletes not done yet: no output is missing */
};

static void status_one(void *arg, struct af_journal_rec *rec)
{
        struct status_ctx *c = arg;
        struct stat st;
        uint64_t size = fstatat(c->files_fd, rec->path, &st, AT_SYMLINK_NOFOLLOW) == 0
                                ? (uint64_t)st.st_size
                                : 0;

        if (rec->op == AF_JOURNAL_DELETE) {
                c->deletes++;
                return;
        }
        c->n[rec->state]++;
        c->bytes[rec->state] += size;
        if (rec->upload_id && rec->state == AF_JOURNAL_PENDING)
                c->uploading++;
        if (rec->state != AF_JOURNAL_FAILED)
                return;
        if (c->json) {
                (void)af_buf_adds(&c->failed, c->failed.len ? ",{\"path\":" : "{\"path\":");
                (void)af_json_quote(&c->failed, rec->path);
                (void)af_buf_adds(&c->failed, ",\"bucket\":");
                (void)af_json_quote(&c->failed, rec->bucket);
                (void)af_buf_adds(&c->failed, ",\"key\":");
                (void)af_json_quote(&c->failed, rec->key);
                (void)af_buf_addf(&c->failed, ",\"bytes\":%llu,\"error\":",
                                  (unsigned long long)size);
                (void)af_json_quote(&c->failed, rec->error ? rec->error : "");
                (void)af_buf_addc(&c->failed, '}');
        } else {
                (void)af_buf_addf(&c->failed, "  failed: %s -> s3://%s/%s: %s\n", rec->path,
                                  rec->bucket, rec->key, rec->error ? rec->error : "?");
        }
}

static void status_bad(void *arg, const char *name, const char *why)
{
        struct status_ctx *c = arg;

        c->corrupt++;
        if (!c->json)
                fprintf(stderr, "artifuse: status: corrupt journal record %s: %s\n", name, why);
}

static int cmd_status(struct opts *o, int argc, char **argv)
{
        struct spool sp = { .root_fd = -1, .files_fd = -1, .journal_fd = -1 };
        struct status_ctx c = { .json = o->json };
        uint64_t done_files = 0, done_bytes = 0, held_files = 0, held_bytes = 0;
        int r;

        if (optind != argc)
                return die("status: unexpected argument '%s' (artifuse status --spool DIR)",
                           argv[optind]);
        if (!o->spool)
                return die("status: give the spool: artifuse status --spool DIR");
        r = spool_open(o->spool, false, false, &sp);
        if (r)
                return r;
        c.files_fd = sp.files_fd;
        af_buf_init(&c.failed, (size_t)64 << 20);
        r = af_journal_scan(sp.journal_fd, false, status_one, status_bad, &c);
        (void)af_journal_done_count(sp.journal_fd, &done_files, &done_bytes);
        (void)af_space_scan(sp.files_fd, &held_files, &held_bytes);
        if (r < 0) {
                r = die("spool %s: cannot read the journal: %s", sp.root, strerror(-r));
        } else if (c.json) {
                printf("{\"spool\":");
                struct af_buf q;

                af_buf_init(&q, 0);
                (void)af_json_quote(&q, sp.root);
                printf("%s,\"pending\":{\"files\":%llu,\"bytes\":%llu},"
                       "\"uploading\":{\"files\":%llu},"
                       "\"done\":{\"files\":%llu,\"bytes\":%llu},"
                       "\"failed\":{\"files\":%llu,\"bytes\":%llu,\"list\":[%s]},"
                       "\"corrupt_records\":%u,\"deletes_pending\":%llu,"
                       "\"held\":{\"files\":%llu,\"bytes\":%llu}}\n",
                       af_buf_str(&q), (unsigned long long)c.n[0], (unsigned long long)c.bytes[0],
                       (unsigned long long)c.uploading, (unsigned long long)done_files,
                       (unsigned long long)done_bytes, (unsigned long long)c.n[1],
                       (unsigned long long)c.bytes[1], af_buf_str(&c.failed), c.corrupt,
                       (unsigned long long)c.deletes, (unsigned long long)held_files,
                       (unsigned long long)held_bytes);
                af_buf_done(&q);
                r = 0;
        } else {
                printf("spool %s\n  pending:   %llu files, %llu bytes (%llu in a multipart upload "
                       "in progress)\n  done:      %llu files, %llu bytes\n"
                       "  failed:    %llu files, %llu bytes\n%s",
                       sp.root, (unsigned long long)c.n[0], (unsigned long long)c.bytes[0],
                       (unsigned long long)c.uploading, (unsigned long long)done_files,
                       (unsigned long long)done_bytes, (unsigned long long)c.n[1],
                       (unsigned long long)c.bytes[1], af_buf_str(&c.failed));
                printf("  held:      %llu files, %llu bytes in the spool (in S3 or not; "
                       "what --spool-limit counts)\n",
                       (unsigned long long)held_files, (unsigned long long)held_bytes);
                if (c.deletes)
                        printf("  deletes:   %llu objects of unlinked names still to delete "
                               "(--delete-on-unlink)\n",
                               (unsigned long long)c.deletes);
                r = 0;
        }
        af_buf_done(&c.failed);
        spool_close(&sp);
        /* 0: everything is in S3; 3: something is not (yet). */
        return r ? r : (c.n[0] || c.n[1] || c.corrupt ? EXIT_UPLOADS : 0);
}

static void opts_done(struct opts *o)
{
        af_vars_done(&o->vars);
        for (size_t i = 0; i < o->ntags; i++)
                free((char *)o->tags[i].key);
        o->ntags = 0;
        af_buf_done(&o->tagging);
}

int main(int argc, char **argv)
{
        struct opts o;
        const char *cmd;
        int r;

        if (argc < 2) {
                fputs(usage_text, stderr);
                return EXIT_CONFIG;
        }
        cmd = argv[1];
        if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
                fputs(usage_text, stdout);
                return 0;
        }
        if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
                puts("artifuse " AF_VERSION);
                return 0;
        }
        if (strcmp(cmd, "mount") != 0 && strcmp(cmd, "keys") != 0 && strcmp(cmd, "run") != 0 &&
            strcmp(cmd, "drain") != 0 && strcmp(cmd, "status") != 0 && strcmp(cmd, "flush") != 0)
                return die("unknown command '%s' (commands: mount, run, keys, flush, drain, "
                           "status, help, version)",
                           cmd);
        signal(SIGPIPE, SIG_IGN);
        if (strcmp(cmd, "run") == 0) {
                /* artifuse run [OPTIONS] MOUNTPOINT -- CMD ARGS... */
                int dd = 0;

                for (int i = 2; i < argc; i++)
                        if (strcmp(argv[i], "--") == 0) {
                                dd = i;
                                break;
                        }
                if (!dd || dd == argc - 1)
                        return die("run: give the command after --: artifuse run [OPTIONS] "
                                   "MOUNTPOINT -- CMD ARGS...");
                argv[dd] = NULL;
                r = parse_args(&o, dd - 1, argv + 1);
                if (r == 0)
                        r = cmd_mount(&o, dd - 1, argv + 1, argv + dd + 1);
                opts_done(&o);
                return r;
        }
        r = parse_args(&o, argc - 1, argv + 1);
        if (r == 0 && strcmp(cmd, "mount") == 0)
                r = cmd_mount(&o, argc - 1, argv + 1, NULL);
        else if (r == 0 && strcmp(cmd, "drain") == 0)
                r = cmd_drain(&o, argc - 1, argv + 1);
        else if (r == 0 && strcmp(cmd, "status") == 0)
                r = cmd_status(&o, argc - 1, argv + 1);
        else if (r == 0 && strcmp(cmd, "flush") == 0)
                r = cmd_flush(&o, argc - 1, argv + 1);
        else if (r == 0)
                r = cmd_keys(&o, argc - 1, argv + 1);
        opts_done(&o);
        return r;
}
