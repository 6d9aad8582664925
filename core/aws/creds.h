/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file creds.h
 * AWS credentials and where they come from: the AWS SDK default chain.
 *
 * At start-up af_creds_provider_init() walks the chain in the SDKs' order and keeps the
 * first source that yields credentials:
 *
 *   1. explicit    credentials given by flags or configuration
 *   2. environment AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   3. profile     AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and AWS_CONFIG_FILE
 *                  (~/.aws/config), profile AWS_PROFILE (else AWS_DEFAULT_PROFILE, else
 *                  "default"): aws_access_key_id / aws_secret_access_key /
 *                  aws_session_token, else credential_process (JSON Version 1)
 *   4. web identity AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME,
 *                  default "artifuse-<unix time>"): unsigned STS AssumeRoleWithWebIdentity
 *                  (IRSA) at https://sts.<AWS_REGION or AWS_DEFAULT_REGION>.amazonaws.com
 *                  (.com.cn for cn- regions; https://sts.amazonaws.com with no region), or
 *                  AWS_ENDPOINT_URL_STS
 *   5. container   AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS, http://169.254.170.2<uri>),
 *                  else AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity) with
 *                  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN
 *   6. IMDS        EC2 instance metadata, IMDSv2 only, at http://169.254.169.254 or
 *                  AWS_EC2_METADATA_SERVICE_ENDPOINT; off with AWS_EC2_METADATA_DISABLED=true
 *
 * A source that is not configured, or fails, passes to the next; the reasons are kept, and
 * when nothing yields credentials the error is one line naming each source and why it
 * failed. Three misconfigurations stop the chain instead, because falling through would
 * silently pick up some other identity: only one of AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY set; AWS_PROFILE naming a profile that exists in neither file; a
 * profile with only half a key pair.
 *
 * AWS_ENDPOINT_URL (the global endpoint override) is deliberately not used for STS: it
 * usually points at the S3-compatible store, which is not where IRSA tokens are exchanged.
 * Profiles that assume roles (role_arn, source_profile) or use SSO are not supported; the
 * error says so.
 *
 * Refresh. Temporary credentials (web identity, container, IMDS, credential_process with an
 * Expiration) are fetched again from the source that first supplied them (the chain is not
 * walked again; token files are re-read) AF_CREDS_REFRESH_WINDOW seconds before
 * they expire (ARTIFUSE_CREDS_REFRESH_WINDOW overrides it, for tests). af_creds_get() does
 * it: the first caller inside the window refreshes while the others keep signing with the
 * still-valid copy; only when the copy has expired (or was invalidated) do callers wait for
 * the refresh. A failed refresh is retried no sooner than AF_CREDS_RETRY_AFTER seconds
 * later. There is no background thread, so the provider may be set up before fork().
 *
 * Secrets (secret keys, session tokens, authorization and web-identity tokens) are never
 * logged or put in an error text; af_creds_describe() names the source only. This module
 * logs at debug level only.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"

#define AF_CREDS_TOKEN_MAX 4096
#define AF_CREDS_REFRESH_WINDOW 300 /* seconds before Expiration */
#define AF_CREDS_EXPIRY_MARGIN 10   /* closer than this to Expiration counts as expired */
#define AF_CREDS_RETRY_AFTER 10     /* seconds between failed refresh attempts */
#define AF_CREDS_MIN_INTERVAL 5     /* seconds between successful refreshes, at least */

struct af_creds {
        char access_key[128];
        char secret_key[128];
        char session_token[AF_CREDS_TOKEN_MAX]; /* "" when none */
        char source[256];                       /* "environment", "imds (role r)", ... */
        time_t expiration;                      /* 0: does not expire */
        uint64_t serial;                        /* which fetch these came from */
};

enum af_creds_kind {
        AF_CREDS_NONE = 0,
        AF_CREDS_EXPLICIT,
        AF_CREDS_ENV,
        AF_CREDS_PROFILE,
        AF_CREDS_PROCESS,
        AF_CREDS_WEB_IDENTITY,
        AF_CREDS_CONTAINER,
        AF_CREDS_IMDS,
};

struct af_creds_source; /* how to fetch again; see creds_source.h (private to core/aws) */

struct af_creds_provider {
        /* Set by af_creds_provider_init(), read-only afterwards. */
        enum af_creds_kind kind;
        struct af_creds_source *src; /* NULL for static credentials */
        time_t window;

        pthread_mutex_t lock;
        pthread_cond_t refreshed; /* signalled, with lock, when a refresh ends */
        struct {
                struct af_creds current;
                bool have;
                bool invalid;    /* af_creds_invalidate(): do not hand out current */
                bool refreshing; /* one thread is fetching; others use current or wait */
                time_t refresh_at;
                time_t retry_at;
                int last_error;
                char last_why[512];
                uint64_t serial;
        } locked; /* only with lock held */
};

/* ---- the provider ---------------------------------------------------------------------- */

/**
 * Resolves credentials through the chain above, @explicit_creds first (used when its
 * access_key is set). Performs network requests for sources 4-6 (short timeouts: about 1 s
 * when no instance metadata service answers).
 *
 * Errors, with one line in @err: -ENOKEY when no source yields credentials (the line names
 * every source tried and why each failed); -EINVAL for the misconfigurations that stop the
 * chain; -ENOMEM.
 */
int af_creds_provider_init(struct af_creds_provider *p, const struct af_creds *explicit_creds,
                           struct af_buf *err);
/** Frees the provider and scrubs the secrets it held. */
void af_creds_provider_done(struct af_creds_provider *p);

/**
 * Copies the current credentials to @ret, refreshing them first when due (see above).
 * Thread-safe. Errors: -ENOKEY (none), or the error of the failed refresh when the copy
 * has expired (-ECONNREFUSED, -ETIMEDOUT, -EACCES, -EKEYEXPIRED, ...);
 * af_creds_last_error() says why.
 */
int af_creds_get(struct af_creds_provider *p, struct af_creds *ret);

/**
 * Marks the credentials with @serial (the serial of a copy from af_creds_get) as rejected,
 * e.g. after S3 answered ExpiredToken, so the next af_creds_get() fetches new ones first and
 * no caller is handed them again. A no-op when the provider already holds newer credentials
 * (so many workers hitting the same error cause one refresh), and for static credentials.
 * @serial 0: whatever is current. Keeping only the serial lets a caller scrub its copy first.
 */
void af_creds_invalidate(struct af_creds_provider *p, uint64_t serial);

/**
 * Fetches new credentials now, waiting for a refresh already under way instead of starting a
 * second one. -EOPNOTSUPP for static credentials (explicit, environment, profile keys);
 * otherwise 0 or the fetch's error, with the reason in @err (may be NULL).
 */
int af_creds_refresh(struct af_creds_provider *p, struct af_buf *err);

/** Why the last refresh failed ("" if it did not): safe to log, holds no secret. */
void af_creds_last_error(struct af_creds_provider *p, char *out, size_t n);

/**
 * "web-identity (role arn:aws:iam::1:role/x), key ASIA..., session token, expires
 * 2026-11-28T04:00:00Z": the source and the access key id's type prefix, never a secret.
 */
void af_creds_describe(const struct af_creds *c, char *out, size_t n);

/**
 * The `region` of the selected profile in AWS_CONFIG_FILE (~/.aws/config), for callers that
 * fall back to it after AWS_REGION and AWS_DEFAULT_REGION. -ENOENT when there is none.
 */
int af_creds_profile_region(char *out, size_t n);

/* ---- pure helpers behind the sources, exported for the unit tests ------------------------ */

/**
 * Reads one value from INI text in the shared-file format: "[section]" headers (whitespace
 * inside the brackets collapsed, so "[ profile  x ]" is "profile x"), "key = value" lines
 * (keys compared case-insensitively, values trimmed), full-line comments starting with '#'
 * or ';', inline comments where '#' or ';' follows whitespace, and indented continuation
 * lines under a key (nested settings such as "s3 =\n  addressing_style = path"), which are
 * skipped. A repeated key or section: the last value wins. Note the inline-comment rule
 * cuts a credential_process command at " ;" or " #".
 *
 * @key NULL only tests that the section exists. Returns 0; -ESRCH no such section; -ENOENT no
 * such key in it; -E2BIG value longer than @n - 1. @out is written only on success.
 */
int af_creds_ini_get(const char *text, size_t len, const char *section, const char *key,
                     char *out, size_t n);

/**
 * When to refresh credentials fetched at @now that expire at @expiration: @window seconds
 * before expiry, but no sooner than AF_CREDS_MIN_INTERVAL after @now (or halfway to expiry,
 * if that is sooner), so credentials that live shorter than the window are not fetched
 * again on every request. 0 (never) when @expiration is 0.
 */
time_t af_creds_refresh_at(time_t now, time_t expiration, time_t window);

enum af_creds_action {
        AF_CREDS_USE,     /* hand out the current copy */
        AF_CREDS_REFRESH, /* this caller fetches, then hands out the result */
        AF_CREDS_WAIT,    /* another caller is fetching and the copy is unusable */
        AF_CREDS_FAIL,    /* unusable and a refresh failed less than retry_at ago */
};

struct af_creds_clock {
        bool have, invalid, refreshable, refreshing;
        time_t expiration, refresh_at, retry_at;
};

/** What af_creds_get() does at @now in state @c. Pure. */
enum af_creds_action af_creds_decide(const struct af_creds_clock *c, time_t now);

/**
 * The container credentials URL: "http://169.254.170.2" + @relative when @relative is
 * set, else @full when its host is allowed (https to any host; http only to loopback,
 * 169.254.170.2, 169.254.170.23 or [fd00:ec2::23]). Returns 0; -ENOENT neither set; -EINVAL
 * a host not allowed or a malformed URL, with the reason in @why; -E2BIG.
 */
int af_creds_container_url(const char *relative, const char *full, char *out, size_t n,
                           struct af_buf *why);

/** The STS endpoint for @region (NULL or ""): https://sts.amazonaws.com when none. */
void af_creds_sts_url(const char *region, char *out, size_t n);
