/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file creds_source.h
 * What the credential sources share; private to core/aws/creds*.c.
 *
 * One file per source of the chain (creds.h lists them), each an object behind one
 * interface:
 *   creds_env.c        the environment (static credentials)
 *   creds_profile.c    the shared files: keys, or credential_process (refreshable)
 *   creds_sts.c        web identity: STS AssumeRoleWithWebIdentity (refreshable)
 *   creds_container.c  ECS / EKS Pod Identity container credentials (refreshable)
 *   creds_imds.c       EC2 instance metadata, IMDSv2 (refreshable)
 * creds.c keeps the chain (the order, the error line), the copy handed out, and the refresh
 * decision; it knows a source only through struct af_creds_source and its ops.
 *
 * Rules every source keeps: a secret never goes into a `why` text or a log line (reasons
 * name variables, files, URLs, HTTP statuses and the service's own error code and message);
 * buffers that held secrets are scrubbed before they are freed; @c is written only on
 * success; token files are re-read on every fetch (they are rotated).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "base/buf.h"
#include "aws/creds.h"

#define AF_CREDS_FILE_CAP ((size_t)1 << 20)         /* shared config files */
#define AF_CREDS_TOKEN_FILE_CAP ((size_t)64 << 10)  /* web identity and authorization tokens */
#define AF_CREDS_RESPONSE_CAP ((size_t)64 << 10)    /* STS, container, IMDS, process output */
#define AF_CREDS_WHY_CAP 1024
#define AF_CREDS_SOURCE_STRS 4 /* settings a source keeps, at most */

struct af_creds_source;

struct af_creds_source_ops {
        const char *name; /* for debug logs: "web identity", ... */
        /** Fetches credentials into @c (first at start-up, then for each refresh), or
         * -errno with the reason in @why. Called without the provider's lock, from one
         * thread at a time. */
        int (*fetch)(const struct af_creds_source *s, struct af_creds *c, struct af_buf *why);
};

/*
 * A source that can be asked again: its ops and its settings, read from the environment
 * once at start-up (URLs, file names, a role, a command: each source names its own indices
 * into @str). Settings may be secret (an authorization token), so they are scrubbed when
 * the source is freed. Read-only once created.
 */
struct af_creds_source {
        const struct af_creds_source_ops *ops;
        enum af_creds_kind kind;
        char *str[AF_CREDS_SOURCE_STRS]; /* NULL when not set */
};

/**
 * Creates a source of @kind with copies of @str (entries may be NULL) and asks it a first
 * time. 0 with *ret_src set and @c filled; else the fetch's error (the source freed) or
 * -ENOMEM.
 */
int af_creds_source_start(enum af_creds_kind kind, const struct af_creds_source_ops *ops,
                          const char *const str[AF_CREDS_SOURCE_STRS],
                          struct af_creds_source **ret_src, struct af_creds *c,
                          struct af_buf *why);

/** Frees @s, scrubbing its settings; NULL is a no-op. */
void af_creds_source_free(struct af_creds_source *s);

/**
 * One step of the chain: reads the environment (and files) for its source. Returns 0 with
 * @c filled and *ret_src set to a source that can be asked again (NULL for static
 * credentials), or a negative errno with the reason in @why; sets *stop for a
 * misconfiguration that must not fall through to some other identity.
 */
typedef int af_creds_step_fn(struct af_creds_source **ret_src, struct af_creds *c,
                             struct af_buf *why, bool *stop);

af_creds_step_fn af_creds_env_step;
af_creds_step_fn af_creds_profile_step;
af_creds_step_fn af_creds_sts_step;
af_creds_step_fn af_creds_container_step;
af_creds_step_fn af_creds_imds_step;

/* ---- helpers the sources share (creds_source.c) ------------------------------------------- */

/** getenv(), but an empty variable counts as unset, as in the SDKs. */
const char *af_creds_env(const char *name);

/** @src[0..len) and a NUL into @dst (@n bytes), or -E2BIG. */
int af_creds_copy(char *dst, size_t n, const char *src, size_t len);

/** af_buf_done() after scrubbing everything the buffer held. */
void af_creds_scrub(struct af_buf *b);

/** Drops trailing whitespace (a token file's newline). */
void af_creds_trim_right(struct af_buf *b);

/** The whole file at @path into @out (its contents replaced only on success), at most @cap
 * bytes: -E2BIG beyond, else 0 or the -errno of open/read. */
int af_creds_read_file(const char *path, size_t cap, struct af_buf *out);

/**
 * One read(2) of @fd appended to @out (EINTR retried; the bytes scrubbed from the stack).
 * Returns the bytes added, 0 at end of file, or a negative errno: *ret_add_failed says
 * whether it came from @out (-E2BIG over its cap, -ENOMEM) rather than from read(2).
 */
int af_creds_read_chunk(int fd, struct af_buf *out, bool *ret_add_failed);

/** True if @s is printable ASCII without spaces: safe in an HTTP header. */
bool af_creds_header_safe(const char *s);

/**
 * Appends the header line "@name: @value" to @hdr, for a token a source sends (an
 * authorization token, the IMDSv2 session token). -EINVAL, @hdr untouched, if @value holds
 * a line break or a NUL, which would end the header early or cut the token; else 0 or
 * af_buf_addf's error. The caller words the reason (it knows where the token came from).
 */
int af_creds_add_header(struct af_buf *hdr, const char *name, const struct af_buf *value);

/** @t as "2026-11-28T04:00:00Z" (the number of seconds if it cannot be shown). */
void af_creds_format_time(time_t t, char *out, size_t n);

/**
 * Fills @c after checking each value fits and can go in a header, and that @expiration (0:
 * none) is not already past; no value reaches @why. -EBADMSG, -E2BIG, -EKEYEXPIRED.
 */
int af_creds_set(struct af_creds *c, const char *ak, const char *sk, const char *tok,
                 time_t expiration, const char *source, struct af_buf *why);

/**
 * The credentials in a JSON answer (container, IMDS, credential_process): AccessKeyId,
 * SecretAccessKey, @token_key (the session token's member name), Expiration. -EBADMSG.
 */
int af_creds_from_json(const struct af_buf *body, const char *token_key, const char *source,
                       struct af_creds *c, struct af_buf *why);

/** An HTTP status a credential service answered instead of credentials, as an errno. */
int af_creds_status_errno(long status);

/** Puts @prefix ": " in front of the text in @why (to say where a bad document came from). */
void af_creds_why_prefix(struct af_buf *why, const char *prefix);
