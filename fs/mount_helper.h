/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mount_helper.h
 * `mount -t fuse.artifuse SOURCE DIR -o OPTIONS` and fstab lines:
 *
 *     s3://my-bucket/argo/{{pod.name}}  /outputs  fuse.artifuse  endpoint=http://minio:9000,spool=/var/spool/af,_netdev  0  0
 *
 * mount(8) hands such a mount to mount.fuse3, which runs `artifuse SOURCE DIR -o OPTIONS`
 * (artifuse must be in /usr/local/bin, /usr/bin or /bin). This turns that form into the
 * `artifuse mount` command line: SOURCE is the --artifact-repository when it is an s3:// URL
 * (anything else, e.g. "artifuse", is a placeholder), each option NAME=VALUE becomes
 * --NAME VALUE and each NAME becomes --NAME, and the options mount(8) itself handles (rw,
 * nodev, nosuid, noexec, auto, user, _netdev, nofail, x-*, ...) are dropped. "ro" is refused:
 * a read-only mount would capture nothing. The mount daemonises once it is serving, as
 * mount(8) expects.
 */
#pragma once

#include <stdbool.h>

#include "base/buf.h"

/** Is this the mount helper's form: `artifuse SOURCE DIR [-o OPTIONS]`, SOURCE not a
 * subcommand nor an option, DIR an existing absolute directory (as mount.fuse3 passes it)?
 * @is_command says which words are subcommands. */
bool af_mount_helper_form(int argc, char **argv, bool (*is_command)(const char *word));

/**
 * Builds `artifuse mount ...` from the helper form into *ret_argv (NULL-terminated; free
 * with af_mount_helper_free) and *ret_argc. -EINVAL with a one-line reason in @err for "ro"
 * or a malformed command line.
 */
int af_mount_helper_translate(int argc, char **argv, int *ret_argc, char ***ret_argv,
                              struct af_buf *err);
void af_mount_helper_free(char **argv);
