/* SPDX-License-Identifier: Apache-2.0 */
/* Pure parts of the S3 client: part sizing. */
#include <stdint.h>

#include "aws/s3.h"
#include "test.h"

#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)
#define TiB ((uint64_t)1 << 40)

static void test_part_size_small_objects_use_the_minimum(void)
{
        CHECK_INT_EQ(af_s3_part_size(1, 8 * MiB), 8 * MiB);
        CHECK_INT_EQ(af_s3_part_size(100 * MiB, 8 * MiB), 8 * MiB);
        CHECK_INT_EQ(af_s3_part_size(100 * MiB, 1 * MiB), 5 * MiB); /* S3's minimum */
        CHECK_INT_EQ(af_s3_part_size(100 * MiB, 0), 5 * MiB);
        CHECK_INT_EQ(af_s3_part_size(100 * MiB, 6 * GiB), 5 * GiB); /* S3's maximum */
}

static void test_part_size_fits_10000_parts(void)
{
        static const uint64_t sizes[] = { 8 * MiB * 10000,     8 * MiB * 10000 + 1,
                                          78 * GiB + 1,        100 * GiB,
                                          1 * TiB,             5 * TiB,
                                          5 * TiB - 1,         48828125ull * 8192 };

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                uint64_t p = af_s3_part_size(sizes[i], 8 * MiB);

                CHECK((sizes[i] + p - 1) / p <= AF_S3_MAX_PARTS);
                CHECK(p >= 5 * MiB && p <= 5 * GiB);
                CHECK(p % MiB == 0);
                /* and not needlessly large: one MiB less would not fit */
                if (p > 8 * MiB)
                        CHECK((sizes[i] + (p - MiB) - 1) / (p - MiB) > AF_S3_MAX_PARTS);
        }
        CHECK_INT_EQ(af_s3_part_size(8 * MiB * 10000, 8 * MiB), 8 * MiB);
        CHECK_INT_EQ(af_s3_part_size(8 * MiB * 10000 + 1, 8 * MiB), 9 * MiB);
}

int main(void)
{
        RUN(test_part_size_small_objects_use_the_minimum);
        RUN(test_part_size_fits_10000_parts);
        return test_summary();
}
