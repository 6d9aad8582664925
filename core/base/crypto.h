/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file crypto.h
 * Hashes, HMAC, hex and base64: the only module that includes OpenSSL.
 *
 * Digests are incremental so a spool file can be hashed while it is read, never whole in
 * memory. All functions are thread-safe (no shared state).
 */
#pragma once

#include "base/hex.h" /* af_hex: the digests are written in hex */

#include <stddef.h>
#include <stdint.h>

#define AF_SHA256_LEN 32
#define AF_MD5_LEN 16

enum af_digest_alg {
        AF_DIGEST_SHA256,
        AF_DIGEST_MD5,
};

/** An incremental digest. Use af_digest_init, then _update, then _final (which frees). */
struct af_digest {
        void *ctx; /* EVP_MD_CTX */
        enum af_digest_alg alg;
};

/**
 * Returns 0, -ENOMEM, or -EOPNOTSUPP when OpenSSL refuses the algorithm (MD5 under a
 * FIPS-only configuration).
 */
int af_digest_init(struct af_digest *d, enum af_digest_alg alg);
void af_digest_update(struct af_digest *d, const void *data, size_t n);
/** Writes the digest (32 or 16 bytes) to @out and releases the context. */
void af_digest_final(struct af_digest *d, uint8_t *out);
/** Releases the context without a result (error paths); safe after _final. */
void af_digest_abandon(struct af_digest *d);

/*
 * The functions returning void cannot fail except by OpenSSL failing to allocate its small
 * context; they abort() then rather than return a digest that was never computed.
 */
void af_sha256(const void *data, size_t n, uint8_t out[AF_SHA256_LEN]);
void af_hmac_sha256(const void *key, size_t klen, const void *data, size_t n,
                    uint8_t out[AF_SHA256_LEN]);

/**
 * CRC-32C (Castagnoli, as S3's x-amz-checksum-crc32c), continued from @crc (0 to start).
 * Uses the CPU's CRC32 instruction where there is one.
 */
uint32_t af_crc32c(uint32_t crc, const void *data, size_t n);

/** Standard base64 with padding into @out, which holds 4*((n+2)/3)+1 bytes. */
void af_base64(const uint8_t *in, size_t n, char *out);
