/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The environment source: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
 * Static credentials: nothing to ask again. See creds.h (source 2).
 *
 * Half a key pair, or a pair that cannot be used, stops the chain: falling through would
 * silently pick up some other identity than the one the environment names.
 */
#include "aws/creds_source.h"

#include <errno.h>

int af_creds_env_step(struct af_creds_source **ret_src, struct af_creds *c, struct af_buf *why,
                      bool *stop)
{
        const char *ak = af_creds_env("AWS_ACCESS_KEY_ID");
        const char *sk = af_creds_env("AWS_SECRET_ACCESS_KEY");
        const char *tok = af_creds_env("AWS_SESSION_TOKEN");
        int r;

        *ret_src = NULL;
        if (!ak && !sk) {
                (void)af_buf_adds(why, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set");
                return -ENOENT;
        }
        if (!ak || !sk) {
                (void)af_buf_addf(why, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be "
                                       "set (only %s is)",
                                  ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY");
                *stop = true;
                return -EINVAL;
        }
        r = af_creds_set(c, ak, sk, tok ? tok : "", 0, "environment", why);
        if (r < 0)
                *stop = true; /* set but unusable: say so rather than use something else */
        return r < 0 ? -EINVAL : 0;
}
