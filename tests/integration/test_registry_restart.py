# SPDX-License-Identifier: Apache-2.0
"""The registry of what the mount uploaded survives a restart (issue 14, point 3): after a
kill -9 of the daemon and a new mount on the same spool, a rename of an earlier upload is a
server-side copy and --delete-on-unlink deletes the objects of earlier uploads, as before the
restart. Names that left the spool while no mount saw it (removed directly, or evicted to make
room) never get their objects deleted.

--delete-on-unlink is passed (or not) explicitly: these tests do not depend on its default.
artifuse talks to S3 through faultproxy (to see which requests carried a body); boto3 goes
straight to the server.
"""
import os
import subprocess
import time

from helpers import (BIN, env_with, get_bytes, key_of, kill9, list_keys, log_lines,
                     put_body_bytes, wait_for, wait_object, write)
from test_delete_rename import has, uploaded, wait_gone


def copied(m, proxy, names, src, dst):
    """Whether @dst's object was made by a CopyObject of @src's, no body sent for it."""
    lines = log_lines(m, "op=copy status=done", f'path="{dst}"')
    return (bool(lines) and f'src_key="{key_of(names, src)}"' in lines[0]
            and put_body_bytes(proxy.stats(), "/" + dst) == 0)


def test_rename_then_unlink_after_kill9(pmount, proxy, s3, names):
    """out goes up; kill -9; a new mount on the spool: mv out out2 is a copy and out's object
    is deleted; kill -9 again; the next mount's rm out2 deletes out2's object (the copy's
    registry entry survived too)."""
    m = pmount(args=["--delete-on-unlink"])
    uploaded(m, s3, names, "out", b"v1\n")
    kill9(m)

    m2 = pmount(args=["--delete-on-unlink"], spool_root=m.spool_root)
    assert log_lines(m2, "op=registry", "names=1 "), m2.log()
    os.rename(m2.path("out"), m2.path("out2"))
    wait_object(s3, key_of(names, "out2"), b"v1\n")
    wait_gone(s3, key_of(names, "out"))
    wait_for(lambda: copied(m2, proxy, names, "out", "out2"), what="out2 copied from out")
    wait_for(lambda: log_lines(m2, "op=delete status=done", 'path="out"'), what="out deleted")
    kill9(m2)

    m3 = pmount(args=["--delete-on-unlink"], spool_root=m.spool_root)
    os.unlink(m3.path("out2"))
    wait_gone(s3, key_of(names, "out2"))
    assert m3.unmount() == 0, m3.log()
    assert log_lines(m3, "op=delete status=done", 'path="out2"'), m3.log()
    assert list_keys(s3, names["prefix"]) == []


def test_no_delete_on_unlink_a_restart_still_copies_and_keeps(pmount, proxy, s3, names):
    """With --no-delete-on-unlink the rename after a restart is still a copy, and the old
    object and an unlinked one stay as they are."""
    m = pmount(args=["--no-delete-on-unlink"])
    uploaded(m, s3, names, "a.txt", b"a\n")
    uploaded(m, s3, names, "b.txt", b"b\n")
    kill9(m)
    m2 = pmount(args=["--no-delete-on-unlink"], spool_root=m.spool_root)
    os.rename(m2.path("a.txt"), m2.path("c.txt"))
    os.unlink(m2.path("b.txt"))
    assert m2.unmount() == 0, m2.log()
    assert copied(m2, proxy, names, "a.txt", "c.txt"), m2.log()
    assert get_bytes(s3, key_of(names, "a.txt")) == b"a\n"
    assert get_bytes(s3, key_of(names, "b.txt")) == b"b\n"
    assert not log_lines(m2, "op=delete"), m2.log()


def test_a_changed_file_after_restart_is_uploaded_not_copied(pmount, proxy, s3, names):
    """The registry remembers what went up; a file changed since (in the next mount) is
    uploaded under its new name, never copied from the stale object."""
    m = pmount(args=["--delete-on-unlink"])
    uploaded(m, s3, names, "a.txt", b"one\n")
    kill9(m)
    m2 = pmount(args=["--delete-on-unlink"], spool_root=m.spool_root)
    with open(m2.path("a.txt"), "ab") as f:
        f.write(b"two\n")
    os.rename(m2.path("a.txt"), m2.path("b.txt"))
    assert m2.unmount() == 0, m2.log()
    assert not log_lines(m2, "op=copy status=done"), m2.log()
    assert get_bytes(s3, key_of(names, "b.txt")) == b"one\ntwo\n"
    assert not has(s3, key_of(names, "a.txt"))


def test_names_removed_from_the_spool_while_unmounted_keep_their_objects(pmount, s3, names):
    """A file removed from the spool directly, between two mounts, was not unlinked through
    the mount: the next mount forgets it (logged) and its unmount, with --delete-on-unlink,
    deletes nothing."""
    m = pmount(args=["--delete-on-unlink"])
    uploaded(m, s3, names, "gone.txt", b"g\n")
    uploaded(m, s3, names, "kept.txt", b"k\n")
    assert m.unmount() == 0, m.log()
    os.unlink(os.path.join(m.spool, "gone.txt"))
    m2 = pmount(args=["--delete-on-unlink"], spool_root=m.spool_root)
    assert log_lines(m2, "op=registry", "names=1 forgotten=1"), m2.log()
    assert m2.unmount() == 0, m2.log()
    assert not log_lines(m2, "op=delete"), m2.log()
    assert get_bytes(s3, key_of(names, "gone.txt")) == b"g\n"
    assert get_bytes(s3, key_of(names, "kept.txt")) == b"k\n"


def test_an_evicted_file_keeps_its_object(mount, s3, names):
    """--spool-limit evicts a.bin (in S3) to make room; with --delete-on-unlink, the unmount's
    reconcile must not take the evicted name for an unlinked one and delete its object."""
    MiB = 1 << 20
    m = mount(args=["--spool-limit", "8M", "--delete-on-unlink"])
    a = os.urandom(6 * MiB)
    write(m, "a.bin", a)
    wait_object(s3, key_of(names, "a.bin"), a)
    wait_for(lambda: log_lines(m, "status=done", 'path="a.bin"'), what="a.bin's upload logged")
    time.sleep(0.3)  # the worker tells the spool's room just after it logs the upload
    write(m, "b.bin", os.urandom(6 * MiB))
    assert log_lines(m, "op=evict", 'path="a.bin"'), m.log()
    assert m.unmount() == 0, m.log()
    assert not log_lines(m, "op=delete"), m.log()
    assert get_bytes(s3, key_of(names, "a.bin")) == a


def test_what_a_drain_uploads_is_remembered(pmount, proxy, s3, s3env, names):
    """d.txt cannot go up (S3 away), the daemon is killed, `artifuse drain` uploads it: the
    next mount on the spool renames it with a copy and deletes its old object."""
    m = pmount(args=["--delete-on-unlink"])
    proxy.refuse()
    write(m, "d.txt", b"drained\n")
    wait_for(lambda: log_lines(m, "op=upload status=retry", 'path="d.txt"'), what="a retry")
    kill9(m)
    proxy.accept()
    r = subprocess.run([BIN, "drain", "--spool", m.spool_root], env=env_with(s3env),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert get_bytes(s3, key_of(names, "d.txt")) == b"drained\n"
    m2 = pmount(args=["--delete-on-unlink"], spool_root=m.spool_root)
    os.rename(m2.path("d.txt"), m2.path("e.txt"))
    assert m2.unmount() == 0, m2.log()
    assert copied(m2, proxy, names, "d.txt", "e.txt"), m2.log()
    assert list_keys(s3, names["prefix"]) == [key_of(names, "e.txt")]
