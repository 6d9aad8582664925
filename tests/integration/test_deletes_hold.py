# SPDX-License-Identifier: Apache-2.0
"""Deletes that must hold (--delete-on-unlink), each as a loop of 50 so a race shows:
- a name replaced by a rename and then removed: its old object goes too;
- a directory renamed and its files removed at once: no old key stays.
The mount is unmounted (drained) before S3 is compared, so nothing pending hides a stray."""
import os
import time

from helpers import list_keys, wait_for

LOOPS = 50


def keys_under(s3, names, rel=""):
    return [k[len(names["prefix"]) + 1:] for k in list_keys(s3, f"{names['prefix']}/{rel}")]


def v1_uploaded(m, s3, names):
    """out0..out<LOOPS-1>, each "v1", all in S3."""
    for i in range(LOOPS):
        with open(m.path(f"out{i}"), "w") as f:
            f.write("v1\n")
    wait_for(lambda: len(keys_under(s3, names)) == LOOPS, timeout=60,
             what=f"{LOOPS} v1 objects")


def dirs_uploaded(m, s3, names):
    """d0..d<LOOPS-1>, each with f0..f5, all in S3."""
    for i in range(LOOPS):
        os.mkdir(m.path(f"d{i}"))
        for j in range(6):
            with open(m.path(f"d{i}/f{j}"), "w") as f:
                f.write(f"{i}-{j}\n")
    wait_for(lambda: len(keys_under(s3, names)) == LOOPS * 6, timeout=120,
             what=f"{LOOPS * 6} objects")


def test_replaced_by_rename_then_removed(mount, s3, names, tmp_path):
    """echo v1 > out (uploaded); echo v2 > tmp; mv tmp out; rm out: out's object is gone.
    Before the fix the record of v1 was dropped when the rename landed, and the unlink found
    nothing to delete (every time)."""
    m = mount(args=["--delete-on-unlink", "--unmatched", "upload"])
    v1_uploaded(m, s3, names)
    for i in range(LOOPS):
        with open(m.path(f"tmp{i}"), "w") as f:
            f.write("v2\n")
        os.rename(m.path(f"tmp{i}"), m.path(f"out{i}"))
        os.unlink(m.path(f"out{i}"))
    assert m.unmount() == 0, m.log()
    assert keys_under(s3, names) == []


def test_replaced_by_rename_then_removed_while_it_goes_up(mount, s3, names, tmp_path):
    """As above, with the unlink 0-24 ms after the rename, so that it lands while the
    renamed file's upload is in flight, ending, or registering its object (the soak's
    "rename(tmp, out) over an uploaded out, rm out 10 ms later" stray)."""
    m = mount(args=["--unmatched", "upload"])
    v1_uploaded(m, s3, names)
    for i in range(LOOPS):
        with open(m.path(f"tmp{i}"), "w") as f:
            f.write("v2\n")
        os.rename(m.path(f"tmp{i}"), m.path(f"out{i}"))
        time.sleep((i % 25) / 1000)
        os.unlink(m.path(f"out{i}"))
    assert m.unmount() == 0, m.log()
    assert keys_under(s3, names) == [], m.log()


def test_copied_by_a_directory_rename_then_replaced_and_removed(mount, s3, names, tmp_path):
    """mv d e (each file's object copied server-side); mv t e/f0 at once, over the file whose
    copy is in flight (the copy is superseded by an upload of the new file); rm e/f0 0-24 ms
    later. The superseded copy can tell of itself after the upload that followed it (two
    workers): its older entry then hid the newer object from the unlink (the soak's stale
    key). No key may be left for e/f0 or d/f0."""
    m = mount(args=["--unmatched", "upload"])
    dirs_uploaded(m, s3, names)
    for i in range(LOOPS):
        with open(m.path(f"t{i}"), "w") as f:
            f.write(f"new {i}\n")
        os.rename(m.path(f"d{i}"), m.path(f"e{i}"))
        os.rename(m.path(f"t{i}"), m.path(f"e{i}/f0"))
        time.sleep((i % 25) / 1000)
        os.unlink(m.path(f"e{i}/f0"))
    assert m.unmount() == 0, m.log()
    left = keys_under(s3, names)
    want = sorted(f"e{i}/f{j}" for i in range(LOOPS) for j in range(1, 6))
    assert sorted(left) == want, [k for k in left if k.endswith("/f0") or k.startswith("t")]


def test_directory_renamed_then_files_removed(mount, s3, names, tmp_path):
    """mv d e; rm e/f* right away: the copies or deletes of d/f* are decided before the
    rename is answered, so no d/... or e/... key is left for a removed file."""
    m = mount(args=["--delete-on-unlink", "--unmatched", "upload"])
    dirs_uploaded(m, s3, names)
    for i in range(LOOPS):
        os.rename(m.path(f"d{i}"), m.path(f"e{i}"))
        for j in range(5):
            os.unlink(m.path(f"e{i}/f{j}"))
    assert m.unmount() == 0, m.log()
    left = keys_under(s3, names)
    assert sorted(left) == sorted(f"e{i}/f5" for i in range(LOOPS)), left


def test_unmount_reconciles_what_slipped_past(mount, s3, names):
    """A name gone from the spool without the mount seeing an unlink (removed in the spool
    directly, as a crash between an unlink and its record would leave it): its object is
    deleted at unmount, and the others stay."""
    m = mount(args=["--delete-on-unlink", "--unmatched", "upload"])
    for name in ("keep.txt", "gone.txt"):
        with open(m.path(name), "w") as f:
            f.write(name)
    wait_for(lambda: len(keys_under(s3, names)) == 2, timeout=30, what="2 objects")
    os.unlink(os.path.join(m.spool, "gone.txt"))
    assert m.unmount() == 0
    assert keys_under(s3, names) == ["keep.txt"]
    assert "op=unmount deletes=1" in m.log()


def test_rewrite_close_unlink(mount, s3, names):
    """An uploaded file rewritten, closed and unlinked at once: the close's hand-over (in the
    release FUSE answers asynchronously) can land after the unlink queued the delete. The
    delete once gave way to that upload ("a newer upload writes the key"), the upload then
    found the file gone and was skipped, and the object stayed (the soak saw it 1 in 10).
    Now the delete runs first and the upload after it, if the file is still there; with each
    file rewritten through two descriptors closed in turn, the hand-overs race the unlink
    LOOPS times over."""
    m = mount(args=["--delete-on-unlink", "--unmatched", "upload"])
    v1_uploaded(m, s3, names)
    for i in range(LOOPS):
        a = os.open(m.path(f"out{i}"), os.O_WRONLY | os.O_APPEND)
        b = os.open(m.path(f"out{i}"), os.O_WRONLY | os.O_APPEND)
        os.write(a, b"v2\n")
        os.close(a)
        os.write(b, b"v3\n")
        os.close(b)
        os.unlink(m.path(f"out{i}"))
    assert m.unmount() == 0, m.log()
    assert keys_under(s3, names) == [], m.log()


def test_directory_renamed_while_its_files_go_up(mount, s3, names):
    """Files appended to and closed (their uploads start at once), then their directory
    renamed: an upload that ends between the rename and the walk that moves the directory's
    files found its name gone, but its delete was skipped ("another name's upload put this
    key": the name's older entry was still there), and the walk's delete, with the older
    ETag, then found the new object and left it (the soak: 2 stale objects in 27 minutes).
    No key under an old directory name may be left."""
    m = mount(args=["--unmatched", "upload"])
    dirs_uploaded(m, s3, names)
    for i in range(LOOPS):
        for j in range(6):
            with open(m.path(f"d{i}/f{j}"), "a") as f:
                f.write("v2\n")
        os.rename(m.path(f"d{i}"), m.path(f"e{i}"))
    assert m.unmount() == 0, m.log()
    left = keys_under(s3, names)
    assert sorted(left) == sorted(f"e{i}/f{j}" for i in range(LOOPS) for j in range(6)), \
        [k for k in left if k.startswith("d")]
