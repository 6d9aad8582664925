/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hashes, HMAC, hex and base64 on top of OpenSSL 3's EVP interface.
 *
 * This is the only file that includes OpenSSL headers, so swapping the crypto library means
 * rewriting this file alone. It holds no state: every context lives in the caller's struct or
 * on the stack of one call, so all functions are thread-safe.
 *
 * The one-shot functions return void (see crypto.h). With SHA-256 and MD5 from OpenSSL's
 * default provider the only way they can fail is OpenSSL failing to allocate its context;
 * we abort() then rather than hand back a digest that was never computed.
 */
#include "base/crypto.h"

#include <errno.h>
#include <string.h>
#include <pthread.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Aborts on a failure crypto.h has no way to report (see the paragraph above). */
static void fail(const char *what)
{
        fprintf(stderr, "artifuse: OpenSSL %s failed\n", what);
        abort();
}

static const EVP_MD *md_of(enum af_digest_alg alg)
{
        return alg == AF_DIGEST_MD5 ? EVP_md5() : EVP_sha256();
}

int af_digest_init(struct af_digest *d, enum af_digest_alg alg)
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        if (!ctx)
                return -ENOMEM;
        /*
         * OpenSSL 3 fetches the implementation here: this fails when a provider refuses the
         * algorithm (MD5 under a FIPS-only configuration), which is not an allocation failure.
         */
        if (!EVP_DigestInit_ex(ctx, md_of(alg), NULL)) {
                EVP_MD_CTX_free(ctx);
                return -EOPNOTSUPP;
        }
        d->ctx = ctx;
        d->alg = alg;
        return 0;
}

void af_digest_update(struct af_digest *d, const void *data, size_t n)
{
        /* Cannot fail on a context _init set up: software digests only copy and compress. */
        if (n && !EVP_DigestUpdate(d->ctx, data, n))
                fail("EVP_DigestUpdate");
}

void af_digest_final(struct af_digest *d, uint8_t *out)
{
        if (!EVP_DigestFinal_ex(d->ctx, out, NULL))
                fail("EVP_DigestFinal_ex");
        af_digest_abandon(d);
}

void af_digest_abandon(struct af_digest *d)
{
        EVP_MD_CTX_free(d->ctx);
        d->ctx = NULL;
}

void af_sha256(const void *data, size_t n, uint8_t out[AF_SHA256_LEN])
{
        if (!EVP_Digest(data, n, out, NULL, EVP_sha256(), NULL))
                fail("EVP_Digest");
}

void af_hmac_sha256(const void *key, size_t klen, const void *data, size_t n,
                    uint8_t out[AF_SHA256_LEN])
{
        static const uint8_t empty;
        unsigned int len = AF_SHA256_LEN;

        /* HMAC() takes the key length as an int; no real key comes near that. */
        if (klen > INT_MAX)
                fail("HMAC (key length)");
        /* OpenSSL rejects a NULL key even when its length is 0. */
        if (!HMAC(EVP_sha256(), klen ? key : &empty, (int)klen, data, n, out, &len))
                fail("HMAC");
}

/*
 * RFC 4648 section 4, by hand: EVP_EncodeBlock() takes an int length and would need a cast
 * that silently truncates past 2 GiB.
 */
void af_base64(const uint8_t *in, size_t n, char *out)
{
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t i = 0;
        uint32_t v;

        for (; n - i >= 3; i += 3) {
                v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
                *out++ = alphabet[v >> 18];
                *out++ = alphabet[(v >> 12) & 0x3f];
                *out++ = alphabet[(v >> 6) & 0x3f];
                *out++ = alphabet[v & 0x3f];
        }
        if (n - i == 1) {
                v = (uint32_t)in[i] << 16;
                *out++ = alphabet[v >> 18];
                *out++ = alphabet[(v >> 12) & 0x3f];
                *out++ = '=';
                *out++ = '=';
        } else if (n - i == 2) {
                v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
                *out++ = alphabet[v >> 18];
                *out++ = alphabet[(v >> 12) & 0x3f];
                *out++ = alphabet[(v >> 6) & 0x3f];
                *out++ = '=';
        }
        *out = '\0';
}

/* ---- CRC-32C --------------------------------------------------------------------------- */

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
        /* The reflected Castagnoli polynomial. */
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;

                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
                crc32c_table[i] = c;
        }
}

static uint32_t crc32c_soft(uint32_t crc, const unsigned char *p, size_t n)
{
        pthread_once(&crc32c_once, crc32c_init);
        while (n--)
                crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p,
                                                             size_t n)
{
        uint64_t c = crc;

        while (n >= 8) {
                uint64_t v;

                memcpy(&v, p, 8);
                c = __builtin_ia32_crc32di(c, v);
                p += 8;
                n -= 8;
        }
        while (n--)
                c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        return (uint32_t)c;
}
#endif

uint32_t af_crc32c(uint32_t crc, const void *data, size_t n)
{
        const unsigned char *p = data;

        crc = ~crc;
#if defined(__x86_64__)
        if (__builtin_cpu_supports("sse4.2"))
                return ~crc32c_hw(crc, p, n);
#endif
        return ~crc32c_soft(crc, p, n);
}
