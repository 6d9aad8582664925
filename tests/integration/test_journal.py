# SPDX-License-Identifier: Apache-2.0
"""Never lose an output: the journal, resume after kill -9, drain, status."""
import json
import os
import subprocess
import time

import pytest

from helpers import (BIN, get_bytes, journal_records, journal_text, key_of, kill9, list_keys,
                     log_lines, open_uploads, wait_for, wait_object, write)


def test_kill9_mid_multipart_then_mount_again_resumes_without_resending(mount, s3, names):
    args = ["--part-size", "5M", "--multipart-threshold", "5M", "--part-concurrency", "1"]
    m = mount(args=args)
    data = os.urandom(120 << 20)  # 24 parts
    with open(m.path("big.bin"), "wb") as f:
        f.write(data)
    # Wait until a few parts are journaled, then kill the daemon without warning.
    wait_for(lambda: journal_text(m).count("\npart ") >= 3, timeout=60, what="3 parts journaled")
    kill9(m)
    done_before = journal_text(m).count("\npart ")
    assert done_before >= 3 and "upload " in journal_text(m)
    assert list_keys(s3, names["prefix"]) == []

    # Same spool, new daemon: the upload resumes before anything else.
    m2 = mount(args=args, spool_root=m.spool_root)
    assert m2.unmount() == 0, m2.log()
    resumed = log_lines(m2, "status=resume")
    assert resumed, m2.log()
    parts_done = int(resumed[0].split("parts_done=")[1].split()[0])
    assert parts_done >= done_before, (parts_done, done_before)
    assert get_bytes(s3, f"{names['prefix']}/big.bin") == data
    assert open_uploads(s3, names["prefix"]) == []
    assert journal_records(m2) == []


def test_kill9_then_drain_uploads_what_was_left(mount, s3, names, s3env):
    m = mount(args=["--upload-attempts", "1"], env={"AWS_SECRET_ACCESS_KEY": "wrong-0000000000"})
    files = {f"f{i}.txt": f"{i}\n".encode() for i in range(5)}
    for name, data in files.items():
        write(m, name, data)
    wait_for(lambda: m.log().count("status=failed") == 5, what="5 failures")
    kill9(m)
    assert len(journal_records(m)) == 5

    # status tells what is not in S3, and why
    st = subprocess.run([BIN, "status", "--spool", m.spool_root, "--json"], capture_output=True,
                        text=True)
    assert st.returncode == 3, st.stderr
    doc = json.loads(st.stdout)
    assert doc["failed"]["files"] == 5 and doc["pending"]["files"] == 0
    assert all("SignatureDoesNotMatch" in f["error"] for f in doc["failed"]["list"])
    text = subprocess.run([BIN, "status", "--spool", m.spool_root], capture_output=True, text=True)
    assert "failed:    5 files" in text.stdout and "f3.txt" in text.stdout

    # drain with the right credentials: no mount, everything goes up, exit 0
    env = dict(os.environ, **s3env)
    r = subprocess.run([BIN, "drain", "--spool", m.spool_root], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "drain: 5 files" in r.stderr
    for name, data in files.items():
        assert get_bytes(s3, f"{names['prefix']}/{name}") == data
    assert journal_records(m) == []
    st = subprocess.run([BIN, "status", "--spool", m.spool_root, "--json"], capture_output=True,
                        text=True)
    assert st.returncode == 0
    doc = json.loads(st.stdout)
    assert doc["failed"]["files"] == 0 and doc["done"]["files"] >= 5


def test_drain_refuses_a_spool_in_use(mount, s3env):
    m = mount()
    r = subprocess.run([BIN, "drain", "--spool", m.spool_root], env=dict(os.environ, **s3env),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "in use" in r.stderr


def test_corrupt_and_orphan_records_are_reported_and_the_rest_resumes(mount, s3, names):
    m = mount(args=["--upload-attempts", "1"], env={"AWS_SECRET_ACCESS_KEY": "wrong-0000000000"})
    for name in ("keep.txt", "gone.txt"):
        write(m, name, name)
    wait_for(lambda: m.log().count("status=failed") == 2, what="2 failures")
    kill9(m)
    jdir = os.path.join(m.spool_root, "journal")
    # a torn record (no end line), and a file deleted from the spool behind our back
    with open(os.path.join(jdir, "0" * 32 + ".rec"), "w") as f:
        f.write("artifuse-journal 1\npath x\nbucket b\n")
    os.unlink(os.path.join(m.spool, "gone.txt"))

    m2 = mount(spool_root=m.spool_root)
    assert m2.unmount() == 0, m2.log()
    log = m2.log()
    assert "corrupt journal record" in log and "truncated" in log
    assert "no longer in the spool" in log and "gone.txt" in log
    assert get_bytes(s3, f"{names['prefix']}/keep.txt") == b"keep.txt"
    assert os.path.exists(os.path.join(jdir, "0" * 32 + ".rec.corrupt"))
    assert journal_records(m2) == []


@pytest.mark.parametrize("left", ["record", "tmp"])
def test_kill9_during_an_unlink_then_mount_again_deletes(proxy, pmount, s3, names, left):
    """--delete-on-unlink, kill -9 while the delete of an unlinked name is on a stalled wire:
    the unlink journaled the delete before it removed the spool file, so the next mount on
    the spool deletes the object and leaves no record. "tmp": the record as a kill between
    its write and its rename leaves it (<name>.rec.tmp, complete), which the mount puts in
    place and carries out."""
    args = ["--delete-on-unlink", "--unmatched", "upload"]
    m = pmount(args=args)
    key = key_of(names, "gone.txt")
    write(m, "gone.txt", b"to be deleted\n")
    wait_object(s3, key, b"to be deleted\n")
    wait_for(lambda: log_lines(m, "op=upload status=done", "gone.txt") and
             not journal_records(m), what="the upload recorded as done")
    time.sleep(0.5)  # the mount has learnt what it put under the name
    proxy.stall(300)
    os.unlink(m.path("gone.txt"))
    assert "op delete" in journal_text(m), "the unlink returned before its delete was journaled"
    time.sleep(0.5)  # the delete's HEAD waits on the stalled wire
    kill9(m)
    assert key in list_keys(s3, names["prefix"])
    jdir = os.path.join(m.spool_root, "journal")
    if left == "tmp":
        (rec,) = journal_records(m)
        os.rename(os.path.join(jdir, rec), os.path.join(jdir, rec + ".tmp"))

    proxy.clear()
    m2 = pmount(args=args, spool_root=m.spool_root)
    assert m2.unmount() == 0, m2.log()
    assert key not in list_keys(s3, names["prefix"]), m2.log()
    assert log_lines(m2, "op=delete status=done", "gone.txt"), m2.log()
    assert [f for f in os.listdir(jdir) if ".rec" in f] == []
