/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file creds.h
 * AWS credentials and where they come from.
 *
 * A provider hands out a copy of the current credentials under its lock, so upload workers
 * can sign concurrently while a refresh replaces them. This version knows the explicit
 * (flag/config) and environment sources (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN); the rest of the AWS SDK chain (shared files, web identity, container
 * credentials, IMDSv2) plugs in behind the same interface.
 *
 * Secrets are never logged; af_creds_describe() gives a safe description (source and the
 * access key id's first characters).
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "buf.h"

#define AF_CREDS_FIELD_MAX 2048

struct af_creds {
        char access_key[128];
        char secret_key[128];
        char session_token[AF_CREDS_FIELD_MAX]; /* "" when none */
        char source[64];                        /* "environment", "flags" */
};

struct af_creds_provider {
        pthread_mutex_t lock;
        struct af_creds current; /* only with lock held */
        bool have;               /* only with lock held */
};

/**
 * Resolves credentials from @explicit_creds (used when its access_key is set), else the
 * environment. -ENOKEY with one line in @err saying what was looked for when none are found,
 * -EINVAL when a value is too long or only half of a key pair is set.
 */
int af_creds_provider_init(struct af_creds_provider *p, const struct af_creds *explicit_creds,
                           struct af_buf *err);
void af_creds_provider_done(struct af_creds_provider *p);
/** Copies the current credentials to @ret. -ENOKEY when there are none. */
int af_creds_get(struct af_creds_provider *p, struct af_creds *ret);
/** "environment (AKIA...)" */
void af_creds_describe(const struct af_creds *c, char *out, size_t n);
