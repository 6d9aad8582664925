# SPDX-License-Identifier: Apache-2.0
"""`artifuse run` leaves every file readable at its path when it returns (--leave-files, the
default inside an Argo pod), so Argo's emissary can do what it does after the wrapped command
exits (cmd/argoexec/commands/emissary.go): stat each output artifact's path and tar.gz it.

The emissary's contract is reproduced in this process, which shares the mount namespace of
`artifuse run` (as the emissary shares the main container's): after `run` returns, `stat` and
`tar czf` of each declared path succeed and hold the bytes the program wrote.
"""
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from helpers import (BIN, BUCKET, SANITIZER_MARKS, SEED_SPEC, env_with, get_bytes, is_mounted,
                     run_argv)



def unmount_all(path):
    """Whatever `run` left on @path (a bind mount), innermost first."""
    for _ in range(4):
        with open("/proc/mounts") as f:
            if not any(line.split()[1] == str(path) for line in f):
                return
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def emissary(paths, outdir):
    """stat + tar czf of each path, as the emissary does; returns {path: {member: bytes}}."""
    got = {}
    for p in paths:
        os.stat(p)  # a missing path is what fails the step in Argo
        tgz = outdir / (p.strip("/").replace("/", "_") + ".tgz")
        subprocess.run(["tar", "czf", str(tgz), "-C", os.path.dirname(p), os.path.basename(p)],
                       check=True)
        with tarfile.open(tgz) as t:
            got[p] = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    return got


def resolved_template(names, s3env, artifacts):
    host = s3env["AWS_ENDPOINT_URL"].split("://", 1)[1]
    return {"name": "main", "inputs": {}, "metadata": {}, "container": {"image": "x"},
            "outputs": {"artifacts": artifacts},
            "archiveLocation": {"archiveLogs": False, "s3": {
                "endpoint": host, "insecure": True, "bucket": BUCKET,
                "region": "us-east-1", "key": names["prefix"]}}}


def test_argo_pod_defaults_leave_files_and_use_argos_tgz_keys(s3env, s3, names, tmp_path):
    """With Argo's resolved template: no flags; the outputs stay at their paths after `run`
    returns (the emissary's stat + tar see the written bytes) and the objects are at the
    keys Argo's wait container uses (default archive: tar, <key>/<name>.tgz)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = tmp_path / "emissary"
    out.mkdir()
    tpl = tmp_path / "template.json"
    tpl.write_text(json.dumps(resolved_template(names, s3env, [
        {"name": "hello-artifact", "path": f"{mnt}/hello.txt"},
        {"name": "results", "path": f"{mnt}/results"},
        {"name": "raw", "path": f"{mnt}/raw.bin", "archive": {"none": {}}}])))
    script = (f'echo "Hello from Argo!" > {mnt}/hello.txt; mkdir -p {mnt}/results/sub; '
              f'printf a > {mnt}/results/a.txt; printf bb > {mnt}/results/sub/b.txt; '
              f'head -c 100000 /dev/urandom > {mnt}/raw.bin')
    try:
        r = subprocess.run([BIN, "run", "--argo-template", str(tpl), "--spool",
                            str(tmp_path / "spool"), str(mnt), "--", "sh", "-c", script],
                           env=env_with(s3env), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert not any(m in r.stderr for m in SANITIZER_MARKS), r.stderr
        assert not is_mounted(mnt), "the FUSE mount must be gone when run returns"
        raw = (tmp_path / "spool" / "files" / "raw.bin").read_bytes()
        got = emissary([f"{mnt}/hello.txt", f"{mnt}/results", f"{mnt}/raw.bin"], out)
        assert got[f"{mnt}/hello.txt"] == {"hello.txt": b"Hello from Argo!\n"}
        assert got[f"{mnt}/results"] == {"results/a.txt": b"a", "results/sub/b.txt": b"bb"}
        assert got[f"{mnt}/raw.bin"] == {"raw.bin": raw}
    finally:
        unmount_all(mnt)
    p = names["prefix"]
    with tarfile.open(fileobj=io.BytesIO(get_bytes(s3, f"{p}/hello-artifact.tgz"))) as t:
        assert t.extractfile("hello.txt").read() == b"Hello from Argo!\n"
    with tarfile.open(fileobj=io.BytesIO(get_bytes(s3, f"{p}/results.tgz"))) as t:
        assert t.extractfile("results/sub/b.txt").read() == b"bb"
    assert get_bytes(s3, f"{p}/raw.bin") == raw


def test_outside_argo_files_go_with_the_mount_unless_asked(s3env, s3, names, tmp_path):
    """The seed scenario outside Argo: the raw file at its key, and the mount point is empty
    again after `run` (nothing is left behind unless --leave-files)."""
    argv, mnt = run_argv(tmp_path, names, "sh", "-c", f'echo hi > {tmp_path}/mnt/hello.txt')
    r = subprocess.run(argv, env=env_with(s3env), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(mnt / "hello.txt")
    assert get_bytes(s3, f"{names['prefix']}/hello.txt") == b"hi\n"


def test_leave_files_flag(s3env, s3, names, tmp_path):
    argv, mnt = run_argv(tmp_path, names, "sh", "-c",
                         f'echo hi > {tmp_path}/mnt/hello.txt; mkdir {tmp_path}/mnt/d; '
                         f'ln -s hello.txt {tmp_path}/mnt/link', extra=["--leave-files"])
    try:
        r = subprocess.run(argv, env=env_with(s3env), capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        assert (mnt / "hello.txt").read_bytes() == b"hi\n"
        assert os.path.isdir(mnt / "d")
        assert os.readlink(mnt / "link") == "hello.txt"
        assert "op=leave" in r.stderr, r.stderr
    finally:
        unmount_all(mnt)
    assert get_bytes(s3, f"{names['prefix']}/hello.txt") == b"hi\n"


def test_leave_files_unprivileged_copies(s3env, s3, names):
    """An unprivileged user's mount is made by the setuid fusermount3 and may not bind-mount:
    the files are linked or copied under the mount point instead, with the same bytes."""
    if os.environ.get("ARTIFUSE_SANITIZED") == "1":
        pytest.skip("the sanitized daemon's runtime needs the root environment of the suite")
    if not os.stat("/usr/bin/fusermount3").st_mode & 0o4000:
        pytest.skip("fusermount3 is not setuid here: an unprivileged user cannot mount")
    # Debian's udev rule makes /dev/fuse 0666; a container's may be 0600: as Debian has it
    # for the test, as it was after.
    fuse_mode = os.stat("/dev/fuse").st_mode & 0o777
    os.chmod("/dev/fuse", fuse_mode | 0o666)
    base = tempfile.mkdtemp(prefix="artifuse-it-leave-", dir="/tmp")
    os.chmod(base, 0o755)
    mnt, spool = os.path.join(base, "mnt"), os.path.join(base, "spool")
    for d in (mnt, spool):
        os.mkdir(d)
        os.chown(d, 65534, 65534)
    argv = [BIN, "run", "--spool", spool, "--spec", SEED_SPEC, "--as", "/tmp",
            "--artifact-repository",
            f"s3://{BUCKET}/argo-workflows/{{{{workflow.name}}}}/{{{{pod.name}}}}",
            "--var", f"workflow.name={names['workflow']}", "--var", f"pod.name={names['pod']}",
            "--leave-files", mnt, "--", "sh", "-c",
            f"head -c 3000000 /dev/urandom > {mnt}/hello.txt"]
    try:
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            *argv], env=dict(env_with(s3env), HOME=base),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "how=copy" in r.stderr, r.stderr
        assert not is_mounted(mnt)
        body = open(os.path.join(mnt, "hello.txt"), "rb").read()
        assert len(body) == 3000000
        assert body == open(os.path.join(spool, "files", "hello.txt"), "rb").read()
    finally:
        os.chmod("/dev/fuse", fuse_mode)
        unmount_all(mnt)
        shutil.rmtree(base, ignore_errors=True)
    assert get_bytes(s3, f"{names['prefix']}/hello.txt") == body
