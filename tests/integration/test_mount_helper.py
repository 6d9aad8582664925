# SPDX-License-Identifier: Apache-2.0
"""`mount -t fuse.artifuse SOURCE DIR -o OPTIONS` and fstab lines: mount(8) runs mount.fuse3,
which runs `artifuse SOURCE DIR -o OPTIONS`; artifuse reads that as `artifuse mount`, with
SOURCE the repository and each option a flag, and returns once mounted."""
import os
import shutil
import subprocess
import uuid

import pytest

from helpers import BIN, BUCKET, is_mounted, wait_object


def opts(s3env, tmp_path, extra=""):
    return (f"rw,nodev,nosuid,_netdev,x-systemd.automount,endpoint={s3env['AWS_ENDPOINT_URL']},"
            f"spool={tmp_path}/spool,unmatched=upload,log-file={tmp_path}/log,"
            f"var=pod.name={tmp_path.name}{extra}")


def test_the_form_mount_fuse3_runs(s3env, s3, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    prefix = f"helper-{uuid.uuid4().hex[:10]}"
    env = dict(os.environ, **s3env)
    try:
        r = subprocess.run([BIN, f"s3://{BUCKET}/{prefix}/{{{{pod.name}}}}", str(mnt), "-o",
                            opts(s3env, tmp_path)], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        assert is_mounted(mnt), "returned before the mount was up"
        with open(mnt / "out.txt", "w") as f:
            f.write("mounted by mount(8)\n")
        key = f"{prefix}/{tmp_path.name}/out.txt"
        wait_object(s3, key, b"mounted by mount(8)\n")
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)


def test_ro_and_unknown_options_are_one_line(s3env, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, **s3env)
    r = subprocess.run([BIN, f"s3://{BUCKET}/x", str(mnt), "-o", "ro"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "mount option 'ro'" in r.stderr, r.stderr
    r = subprocess.run([BIN, f"s3://{BUCKET}/x", str(mnt), "-o", "frobnicate=1"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "frobnicate" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not is_mounted(mnt)


def test_mount_t_fuse_artifuse(s3env, s3, tmp_path):
    """The real mount(8) -> mount.fuse3 path. mount.fuse3 finds `artifuse` in /usr/local/bin
    or /usr/bin: in a private mount namespace a tmpfs over /usr/local/bin holds a link to the
    build, so nothing outside the test changes."""
    for tool in ("unshare", "mount", "mount.fuse3"):
        if not shutil.which(tool) and not os.path.exists(f"/sbin/{tool}"):
            pytest.skip(f"{tool} is not installed")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    prefix = f"mount8-{uuid.uuid4().hex[:10]}"
    script = (f"mount -t tmpfs none /usr/local/bin && ln -s {BIN} /usr/local/bin/artifuse && "
              f"mount -t fuse.artifuse 's3://{BUCKET}/{prefix}/{{{{pod.name}}}}' {mnt} "
              f"-o '{opts(s3env, tmp_path)}' && echo fstab-style > {mnt}/hello.txt && "
              f"grep -q ' {mnt} fuse.artifuse ' /proc/mounts && umount {mnt}")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       env=dict(os.environ, **s3env), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr + open(tmp_path / "log").read()
    key = f"{prefix}/{tmp_path.name}/hello.txt"
    wait_object(s3, key, b"fstab-style\n")
