/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file options.h
 * The artifuse command line: the commands and their options.
 *
 * One table in options.c has a row per option: its flags, its ARTIFUSE_* environment
 * variable, how its value is parsed and where it lands in struct af_opts, its help text and
 * the commands it is for. Everything else comes from that table: the getopt parser, the
 * environment, each command's --help and the artifuse(1) man page, so they never disagree.
 * Adding an option is adding a row (and, when it is new, its field below).
 *
 * Every command accepts every option (an option a command has no use for is ignored, as it
 * always was: ARTIFUSE_* variables meant for a mount must not break a `keys` in the same
 * environment); the "commands" of a row only choose where it is documented.
 *
 * Not thread-safe: parsing uses getopt's globals. Errors are reported here, as one line on
 * stderr (af_cli_die), and returned as the exit status.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "argo/template.h"
#include "base/buf.h"
#include "aws/s3.h"

#define AF_OPTS_MAX_TAGS 10
#define AF_OPTS_MAX_METADATA 32

/** The commands, as bits: a table row says which of them an option is for. */
enum af_cmd {
        AF_CMD_MOUNT = 1 << 0,
        AF_CMD_RUN = 1 << 1,
        AF_CMD_KEYS = 1 << 2,
        AF_CMD_FLUSH = 1 << 3,
        AF_CMD_DRAIN = 1 << 4,
        AF_CMD_STATUS = 1 << 5,
};

/** What the command line and the environment say. Strings are borrowed from argv/environ. */
struct af_opts {
        /* Where objects go */
        const char *repo;
        const char *spec;
        const char *template_name;
        const char *workflow;
        const char *argo_template;
        const char *repository_config;
        const char *creation_timestamp;
        const char *as;
        struct af_vars vars; /* --var */
        int unmatched;       /* enum af_unmatched */
        int archive_default; /* enum af_archive */

        /* S3 */
        const char *endpoint;
        const char *region;
        const char *ca_file;
        int addressing; /* enum af_addressing */
        int checksum;   /* enum af_checksum */
        unsigned concurrency;
        unsigned part_concurrency;
        unsigned attempts;
        long retry_for_ms; /* -1: not given */
        long connect_timeout_ms;
        long low_speed_time_s;
        uint64_t multipart_threshold;
        uint64_t part_size;
        /* $ARTIFUSE_COPY_PART_THRESHOLD, for tests only: copies above it are multipart
         * (0: at CopyObject's 5 GiB limit). Not an option: no user needs another value. */
        uint64_t copy_part_threshold;
        bool preserve_metadata;
        bool no_check;
        /* --sse, --sse-kms-key-id, --storage-class, --tag, --metadata, --no-overwrite */
        struct af_s3_object_opts object;
        struct af_s3_kv metadata[AF_OPTS_MAX_METADATA];
        char metadata_keys[AF_OPTS_MAX_METADATA][64];
        struct af_s3_kv tags[AF_OPTS_MAX_TAGS]; /* keys owned */
        size_t ntags;
        struct af_buf tagging; /* x-amz-tagging, encoded */

        /* Mount and spool */
        const char *spool;
        long drain_timeout_ms; /* -1: no limit */
        bool sync_close;
        uint64_t spool_limit; /* 0: none */
        bool keep;
        bool delete_on_unlink;    /* the default; kept so the flag is accepted */
        bool no_delete_on_unlink; /* objects of gone names stay in S3 */
        bool no_streaming;
        long upload_open_every_ms; /* 0: off */
        bool foreground;
        bool allow_other;
        bool no_xattr;
        const char *fuse_opts; /* -o */
        const char *log_file;
        const char *manifest;
        const char *uris_dir;  /* DIR/<artifact name>: its s3:// URI */
        const char *uris_json; /* artifact name -> uri, size, etag */
        bool leave_files;    /* run: the files stay at their paths after it returns */
        bool no_leave_files; /* ...not even inside an Argo pod */
        const char *metrics_listen;

        /* General */
        bool json;
        int log_format; /* enum af_log_format */
        int verbosity; /* -v minus -q */
};

/**
 * Fills @o from the ARTIFUSE_* environment, then from @argv (flags win), for @cmd (an
 * enum af_cmd bit: --help prints that command's help). argv[0] is the command's name;
 * getopt's optind is left at the first operand. --help and --version print and exit(0).
 * Returns 0, or AF_EXIT_CONFIG after printing one line; af_options_done() frees @o either
 * way.
 */
int af_options_parse(struct af_opts *o, unsigned cmd, int argc, char **argv);
void af_options_done(struct af_opts *o);

/** The command named @name (an enum af_cmd bit), or 0 when there is none. */
unsigned af_options_command(const char *name);

/** Prints the help of @cmd (0: the whole program's) to @f. */
void af_options_help(unsigned cmd, FILE *f);

/** Prints the artifuse(1) man page, in roff, to @f. */
void af_options_man(FILE *f);
