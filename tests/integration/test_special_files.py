# SPDX-License-Identifier: Apache-2.0
"""Only regular files are uploaded raw: a FIFO, a socket or a device node under an artifact
path (or as one) is skipped, said once at info, and never counted as a failure, so `run`
exits with the program's status (tar archives record such entries; raw uploads have nothing
to send)."""
import subprocess

from helpers import BIN, BUCKET, env_with, get_bytes, list_keys, write_spec

ARTIFACTS = [("out", "/tmp/out", "archive:\n  none: {}\n"),
             ("pipe", "/tmp/pipe", "archive:\n  none: {}\n")]


def test_fifo_socket_device_are_skipped(s3env, s3, names, tmp_path):
    spec = write_spec(tmp_path, ARTIFACTS)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (f"mkdir {mnt}/out && echo data > {mnt}/out/file.txt && "
              f"mkfifo {mnt}/out/fifo {mnt}/pipe && "
              f"(cat {mnt}/pipe > /dev/null &) && echo through > {mnt}/pipe && "
              f"mknod {mnt}/out/null c 1 3 && "
              f"python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('{mnt}/out/sock')\"")
    r = subprocess.run([BIN, "run", "--spool", str(tmp_path / "spool"), "--spec", str(spec),
                        "--as", "/tmp", "--artifact-repository",
                        f"s3://{BUCKET}/argo-workflows/{{{{workflow.name}}}}/{{{{pod.name}}}}",
                        "--var", f"pod.name={names['pod']}", "--var",
                        f"workflow.name={names['workflow']}", str(mnt), "--", "sh", "-c", script],
                       env=env_with(s3env), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert ", 0 failed, 0 left in the spool" in r.stderr, r.stderr
    assert "not a regular file" in r.stderr, r.stderr
    prefix = f"argo-workflows/{names['workflow']}/{names['pod']}"
    assert list_keys(s3, prefix) == [f"{prefix}/out/file.txt"]
    assert get_bytes(s3, f"{prefix}/out/file.txt") == b"data\n"
