/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The body of a request: streamed to curl from a file with pread() (so memory does not grow
 * with the object) or from memory, and summed once before it is sent, with the sums the plan
 * asks for (af_s3_plan in s3_messages.c). See s3_int.h.
 *
 * The one piece of process state: whether the endpoint verifies CRC32C, learned from the
 * first answer that could have echoed it and shared by every client (atomic).
 */
#include "aws/s3_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hex.h"
#include "base/log.h"

#define READ_CHUNK (256 * 1024)

/* Whether this process's endpoint verifies CRC32C: 0 not known yet, 1 yes, -1 no. */
static atomic_int crc_state;

int af_s3_crc_state(void)
{
        return atomic_load(&crc_state);
}

size_t af_s3_body_read(char *buf, size_t size, size_t nitems, void *userp)
{
        struct af_s3_body *src = userp;
        size_t want = size * nitems;
        ssize_t n;

        if (src->off >= src->size)
                return 0;
        if (want > src->size - src->off)
                want = (size_t)(src->size - src->off);
        if (src->mem) {
                memcpy(buf, src->mem + src->off, want);
                src->off += want;
                return want;
        }
        n = pread(src->fd, buf, want, (off_t)(src->base + src->off));
        if (n < 0) {
                src->read_errno = errno;
                return CURL_READFUNC_ABORT;
        }
        if (n == 0) {
                /* The file shrank under us: abort; the caller retries with a fresh size. */
                src->read_errno = ESTALE;
                return CURL_READFUNC_ABORT;
        }
        src->off += (uint64_t)n;
        return (size_t)n;
}

/* Lets curl rewind the body when it must resend (a redirect or an auth retry). */
int af_s3_body_seek(void *userp, curl_off_t offset, int origin)
{
        struct af_s3_body *src = userp;

        if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > src->size)
                return CURL_SEEKFUNC_CANTSEEK;
        src->off = (uint64_t)offset;
        return CURL_SEEKFUNC_OK;
}

static void sums_finish(struct af_s3_sums *s, struct af_digest *sha, struct af_digest *md5,
                        uint32_t crc)
{
        uint8_t d[AF_SHA256_LEN];
        uint8_t be[4] = { (uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8),
                          (uint8_t)crc };

        if (s->sha) {
                af_digest_final(sha, d);
                af_hex(d, AF_SHA256_LEN, s->sha_hex);
        }
        if (s->md5) {
                af_digest_final(md5, d);
                af_base64(d, AF_MD5_LEN, s->md5_b64);
                af_hex(d, AF_MD5_LEN, s->md5_hex);
        }
        if (s->crc)
                af_base64(be, 4, s->crc_b64);
}

int af_s3_sum_fd(int fd, uint64_t base, uint64_t size, struct af_s3_sums *s)
{
        struct af_digest sha = { 0 }, md5 = { 0 };
        char *buf = NULL;
        uint64_t off = 0;
        uint32_t crc = 0;
        int r = 0;

        if (!s->sha && !s->md5 && !s->crc && !s->sum)
                return 0;
        buf = malloc(READ_CHUNK);
        if (!buf)
                return -ENOMEM;
        if ((s->sha && (r = af_digest_init(&sha, AF_DIGEST_SHA256)) < 0) ||
            (s->md5 && (r = af_digest_init(&md5, AF_DIGEST_MD5)) < 0))
                goto out;
        while (off < size) {
                size_t want = size - off < READ_CHUNK ? (size_t)(size - off) : READ_CHUNK;
                ssize_t n = pread(fd, buf, want, (off_t)(base + off));

                if (n < 0) {
                        r = -errno;
                        goto out;
                }
                if (n == 0) {
                        r = -ESTALE; /* shrank while we read it */
                        goto out;
                }
                if (s->sha)
                        af_digest_update(&sha, buf, (size_t)n);
                if (s->md5)
                        af_digest_update(&md5, buf, (size_t)n);
                if (s->crc || s->sum)
                        crc = af_crc32c(crc, buf, (size_t)n);
                off += (uint64_t)n;
        }
        s->crc_value = crc;
        sums_finish(s, &sha, &md5, crc);
out:
        af_digest_abandon(&sha);
        af_digest_abandon(&md5);
        free(buf);
        return r;
}

int af_s3_sum_mem(const void *data, size_t n, struct af_s3_sums *s)
{
        struct af_digest sha = { 0 }, md5 = { 0 };
        int r = 0;

        if ((s->sha && (r = af_digest_init(&sha, AF_DIGEST_SHA256)) < 0) ||
            (s->md5 && (r = af_digest_init(&md5, AF_DIGEST_MD5)) < 0)) {
                af_digest_abandon(&sha);
                return r;
        }
        if (s->sha)
                af_digest_update(&sha, data, n);
        if (s->md5)
                af_digest_update(&md5, data, n);
        s->crc_value = s->crc || s->sum ? af_crc32c(0, data, n) : 0;
        sums_finish(s, &sha, &md5, s->crc_value);
        af_digest_abandon(&sha);
        af_digest_abandon(&md5);
        return 0;
}

/* auto: did the server echo our CRC32C (it verified it), or not (it ignores it)? */
void af_s3_learn_crc(const struct af_s3_client *c, const struct af_s3_sums *s,
                     const char *echo)
{
        int unknown = 0;

        if (c->checksum != AF_CHECKSUM_AUTO || !s->crc)
                return;
        if (echo[0] && strcmp(echo, s->crc_b64) == 0)
                atomic_store(&crc_state, 1);
        else if (atomic_compare_exchange_strong(&crc_state, &unknown, -1))
                af_log_info("op=checksum endpoint=%s msg=\"the server does not echo "
                            "x-amz-checksum-crc32c, so it does not verify it; using Content-MD5, "
                            "which it does\"",
                            af_q(c->host));
}
