# SPDX-License-Identifier: Apache-2.0
"""The seed scenario and the basic upload-on-close behaviour, against a real mount and
the real local radosgw. Every object is checked with boto3, byte for byte."""
import os
import pathlib
import random
import shutil
import tempfile
import subprocess
import textwrap

import pytest

from helpers import (BIN, BUCKET, SEED_SPEC, get_bytes, list_keys, log_lines, wait_for, write,
                     write_spec)



def test_seed_scenario(mount, s3, names):
    m = mount(spec=SEED_SPEC)
    subprocess.run(["sh", "-c", f'echo "Hello from Argo!" > {m.path("hello.txt")}'], check=True)
    assert m.unmount() == 0, m.log()
    key = f"argo-workflows/{names['workflow']}/{names['pod']}/hello.txt"
    assert list_keys(s3, names["prefix"]) == [key]
    assert get_bytes(s3, key) == b"Hello from Argo!\n"
    # The program's view is an ordinary file, and the spool keeps it.
    with open(os.path.join(m.spool, "hello.txt"), "rb") as f:
        assert f.read() == b"Hello from Argo!\n"


@pytest.fixture
def outside_tmp():
    """A directory outside /tmp, for tests that mount on /tmp itself."""
    d = tempfile.mkdtemp(prefix="artifuse-it-", dir="/var/tmp")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_seed_on_tmp_itself_in_a_private_namespace(outside_tmp, s3env, s3, names):
    """Exactly as in a pod: mounted on /tmp, the program writes /tmp/hello.txt."""
    spool = outside_tmp / "spool"
    log = outside_tmp / "artifuse.log"
    script = textwrap.dedent(f"""
        set -e
        {BIN} mount --spec {SEED_SPEC} --spool {spool} --log-file {log} \\
          --artifact-repository 's3://{BUCKET}/argo-workflows/{{{{workflow.name}}}}/{{{{pod.name}}}}' \\
          --var workflow.name={names['workflow']} --var pod.name={names['pod']} /tmp
        sh -c 'echo "Hello from Argo!" > /tmp/hello.txt'
        fusermount3 -u /tmp
    """)
    env = dict(os.environ, **s3env)
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + (log.read_text() if log.exists() else "")
    key = f"{names['prefix']}/hello.txt"
    # The daemon drains after the unmount; wait for it to have uploaded.
    wait_for(lambda: list_keys(s3, names["prefix"]) == [key], what=key)
    assert get_bytes(s3, key) == b"Hello from Argo!\n"
    assert "Sanitizer" not in log.read_text() and "runtime error" not in log.read_text()


def test_file_written_in_many_writes(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("data", "/tmp/data.bin", "")])
    m = mount(spec=spec)
    rnd = random.Random(42)
    chunks = [rnd.randbytes(rnd.randint(1, 70000)) for _ in range(300)]
    with open(m.path("data.bin"), "wb", buffering=0) as f:
        for c in chunks:
            f.write(c)
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, f"{names['prefix']}/data.bin") == b"".join(chunks)


def test_overwritten_file_uploads_new_content(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("out", "/tmp/out.txt", "")])
    m = mount(spec=spec)
    key = f"{names['prefix']}/out.txt"
    write(m, "out.txt", "first version, which is longer\n")
    wait_for(lambda: list_keys(s3, names["prefix"]) == [key], what="first upload")
    wait_for(lambda: get_bytes(s3, key) == b"first version, which is longer\n", what="v1")
    write(m, "out.txt", "second\n")
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, key) == b"second\n"
    assert m.log().count("status=done") == 2


def test_open_and_close_without_writing_does_not_upload_again(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("out", "/tmp/out.txt", "")])
    m = mount(spec=spec)
    write(m, "out.txt", "x\n")
    wait_for(lambda: "status=done" in m.log(), what="first upload")
    with open(m.path("out.txt"), "r+") as f:
        assert f.read() == "x\n"
    with open(m.path("out.txt")) as f:
        f.read()
    assert m.unmount() == 0
    assert m.log().count("status=done") == 1, m.log()


def test_empty_file(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("empty", "/tmp/empty.txt", "")])
    m = mount(spec=spec)
    open(m.path("empty.txt"), "w").close()
    assert m.unmount() == 0, m.log()
    key = f"{names['prefix']}/empty.txt"
    assert list_keys(s3, names["prefix"]) == [key]
    assert get_bytes(s3, key) == b""


def test_files_in_subdirectories(mount, s3, names, tmp_path):
    """A file artifact in a subdirectory lands at <prefix>/<basename>; a directory artifact
    keeps the paths inside it (Argo's archive: none rule)."""
    spec = write_spec(tmp_path, [
        ("summary", "/tmp/reports/summary.txt", ""),
        ("results", "/tmp/results", "archive:\n  none: {}\n"),
    ])
    m = mount(spec=spec)
    os.makedirs(m.path("reports"))
    os.makedirs(m.path("results/deep/er"))
    write(m, "reports/summary.txt", "summary\n")
    write(m, "results/a.csv", "a,b\n")
    write(m, "results/deep/er/b.json", "{}\n")
    assert m.unmount() == 0, m.log()
    p = names["prefix"]
    assert list_keys(s3, p) == sorted([f"{p}/summary.txt", f"{p}/results/a.csv",
                                       f"{p}/results/deep/er/b.json"])
    assert get_bytes(s3, f"{p}/summary.txt") == b"summary\n"
    assert get_bytes(s3, f"{p}/results/deep/er/b.json") == b"{}\n"


def test_undeclared_file_is_not_uploaded(mount, s3, names):
    m = mount(spec=SEED_SPEC)
    write(m, "scratch.txt", "not an output\n")
    write(m, "hello.txt", "Hello from Argo!\n")
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, names["prefix"]) == [f"{names['prefix']}/hello.txt"]
    # Still an ordinary file for the program and in the spool.
    assert open(os.path.join(m.spool, "scratch.txt")).read() == "not an output\n"


def test_without_a_spec_every_file_is_uploaded_under_the_prefix(mount, s3, names):
    m = mount()
    os.makedirs(m.path("a/b"))
    write(m, "a/b/c.txt", "c\n")
    write(m, "top.txt", "top\n")
    assert m.unmount() == 0, m.log()
    p = names["prefix"]
    assert list_keys(s3, p) == [f"{p}/a/b/c.txt", f"{p}/top.txt"]


def test_write_temp_then_rename_uploads_the_final_name_once(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("out", "/tmp/out.csv", "")])
    m = mount(spec=spec)
    write(m, "out.csv.tmp", "1,2,3\n")
    os.rename(m.path("out.csv.tmp"), m.path("out.csv"))
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, names["prefix"]) == [f"{names['prefix']}/out.csv"]
    assert get_bytes(s3, f"{names['prefix']}/out.csv") == b"1,2,3\n"
    assert m.log().count("status=done") == 1, m.log()


def test_unmount_waits_for_pending_uploads(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [(f"f{i}", f"/tmp/f{i}.bin", "") for i in range(8)])
    m = mount(spec=spec)
    data = {}
    for i in range(8):
        data[i] = os.urandom(3 << 20)
        with open(m.path(f"f{i}.bin"), "wb") as f:
            f.write(data[i])
    # Unmount at once: the daemon must upload everything before it exits.
    assert m.unmount() == 0, m.log()
    for i in range(8):
        assert get_bytes(s3, f"{names['prefix']}/f{i}.bin") == data[i]


def test_sigterm_drains_then_exits(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("big", "/tmp/big.bin", "")])
    m = mount(spec=spec)
    data = os.urandom(20 << 20)
    with open(m.path("big.bin"), "wb") as f:
        f.write(data)
    m.proc.terminate()
    assert m.proc.wait(timeout=120) == 0, m.log()
    assert get_bytes(s3, f"{names['prefix']}/big.bin") == data


def test_wrong_secret_key_is_reported_and_the_file_stays_in_the_spool(mount, s3, names):
    m = mount(spec=SEED_SPEC, env={"AWS_SECRET_ACCESS_KEY": "not-the-secret-key-0000000000"})
    write(m, "hello.txt", "Hello from Argo!\n")
    wait_for(lambda: "status=failed" in m.log(), what="the upload to fail")
    status = m.unmount()
    log = m.log()
    line = [l for l in log.splitlines() if "status=failed" in l][0]
    assert "http_status=403" in line and "SignatureDoesNotMatch" in line, line
    assert f"key=\"{names['prefix']}/hello.txt\"" in line
    assert "request_id=" in line and "kept in the spool" in line
    assert "not-the-secret-key" not in log  # never a secret in the log
    assert status == 3  # documented: some files could not be uploaded
    assert list_keys(s3, names["prefix"]) == []
    assert open(os.path.join(m.spool, "hello.txt")).read() == "Hello from Argo!\n"


def test_keys_dry_run_matches_the_mount(s3env, names):
    r = subprocess.run([BIN, "keys", "--spec", SEED_SPEC, "--as", "/tmp",
                        "--artifact-repository",
                        f"s3://{BUCKET}/argo-workflows/{{{{workflow.name}}}}/{{{{pod.name}}}}",
                        "--var", f"workflow.name={names['workflow']}",
                        "--var", f"pod.name={names['pod']}", "/tmp/hello.txt", "/tmp/other.txt"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"/tmp/hello.txt\ts3://{BUCKET}/{names['prefix']}/hello.txt",
        "/tmp/other.txt\t(not uploaded: not a declared artifact)",
    ]


def test_mount_root_keeps_the_mount_points_mode(mount, tmp_path):
    """Mounted on a 1777 directory (like /tmp), the mount stays 1777 for every user."""
    mnt = tmp_path / "artifuse-it" / "mnt"  # where the first mount() mounts
    mnt.mkdir(parents=True)
    os.chmod(mnt, 0o1777)
    m = mount()
    assert m.mnt == str(mnt)
    assert oct(os.stat(m.mnt).st_mode & 0o7777) == oct(0o1777)


def test_a_required_output_never_written_is_reported_at_unmount(mount, names, tmp_path):
    spec = write_spec(tmp_path, [("needed", "/tmp/needed.txt", ""),
                                 ("maybe", "/tmp/maybe.txt", "optional: true\n"),
                                 ("written", "/tmp/written.txt", "")])
    m = mount(spec=spec)
    write(m, "written.txt", "w")
    assert m.unmount() == 0, m.log()
    warns = log_lines(m, "never written")
    assert len(warns) == 1 and 'artifact="needed"' in warns[0] and "/tmp/needed.txt" in warns[0]


def test_each_temp_renamed_at_once_after_its_close_goes_up_once(mount, s3, names, tmp_path):
    """The close's release reaches the mount after close() returned, so a rename right after
    it races the close's hand-over: either may see the file's new name, and it still goes up
    once (a double upload here was found by a ThreadSanitizer run of the test above)."""
    n = 60
    spec = write_spec(tmp_path, [(f"o{i}", f"/tmp/o{i}.csv", "") for i in range(n)])
    m = mount(spec=spec)
    for i in range(n):
        write(m, f"o{i}.csv.tmp", f"{i}\n")
        os.rename(m.path(f"o{i}.csv.tmp"), m.path(f"o{i}.csv"))
    assert m.unmount() == 0, m.log()
    p = names["prefix"]
    assert list_keys(s3, p) == sorted(f"{p}/o{i}.csv" for i in range(n))
    done = [line for line in m.log().splitlines() if "status=done" in line]
    assert len(done) == n, "\n".join(done)
