# SPDX-License-Identifier: Apache-2.0
"""An upload whose answer is lost has put its object all the same (issue 15, the soak: a file
appended, its directory renamed while the upload was retried, the old key left). When the
name is gone by the time the upload tries again, or when the next mount finds a journaled
upload whose name is gone, --delete-on-unlink deletes that key like any other object of a
name that went away. The proxy lets each PUT of the name reach the server whole and loses
its answer (the connection is reset as the answer starts)."""
import os

from helpers import get_bytes, journal_records, key_of, kill9, list_keys, log_lines, wait_for

ARGS = ["--unmatched", "upload", "--delete-on-unlink"]


def lost_answers(proxy, name):
    """Every PUT of @name from now on reaches the server, and its answer is lost."""
    proxy.drop_response(10 ** 6, ("PUT", f"/{name}"))


def dropped(proxy):
    return proxy.stats()["dropped_responses"]


def renamed_after_a_lost_answer(m, proxy, s3, names):
    """a.txt written; its PUT lands but the answer is lost (every retry's too); renamed to
    b.txt; back to normal once the retry has found a.txt gone."""
    lost_answers(proxy, "a.txt")
    with open(m.path("a.txt"), "w") as f:
        f.write("first\n")
    wait_for(lambda: dropped(proxy) >= 1, what="the PUT's answer lost")
    assert list_keys(s3, names["prefix"]) == [key_of(names, "a.txt")]  # it did land
    os.rename(m.path("a.txt"), m.path("b.txt"))
    wait_for(lambda: log_lines(m, "op=upload", "status=skipped", "a.txt"), timeout=60,
             what="the retry to find the name gone")
    proxy.clear()


def test_name_renamed_away_after_an_unanswered_upload(proxy, pmount, s3, names):
    m = pmount(args=ARGS)
    renamed_after_a_lost_answer(m, proxy, s3, names)
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, names["prefix"]) == [key_of(names, "b.txt")], m.log()
    assert get_bytes(s3, key_of(names, "b.txt")) == b"first\n"
    assert log_lines(m, "may have reached S3 unanswered", "a.txt"), m.log()


def test_directory_renamed_after_an_unanswered_upload_of_an_append(proxy, pmount, s3, names):
    """The soak's shape: a file uploaded, then appended to; the append's upload goes
    unanswered, and the directory is renamed before it is tried again."""
    m = pmount(args=ARGS)
    os.mkdir(m.path("d"))
    with open(m.path("d/f"), "w") as f:
        f.write("v1\n")
    wait_for(lambda: log_lines(m, "op=upload", "status=done", "d/f"), what="the first upload")
    lost_answers(proxy, "d/f")
    with open(m.path("d/f"), "a") as f:
        f.write("v2\n")
    wait_for(lambda: dropped(proxy) >= 1, what="the append's answer lost")
    assert get_bytes(s3, key_of(names, "d/f")) == b"v1\nv2\n"  # it did land
    os.rename(m.path("d"), m.path("e"))
    wait_for(lambda: log_lines(m, "op=upload", "status=skipped", "d/f"), timeout=60,
             what="the retry to find the name gone")
    proxy.clear()
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, names["prefix"]) == [key_of(names, "e/f")], m.log()
    assert get_bytes(s3, key_of(names, "e/f")) == b"v1\nv2\n"


def test_same_name_again_keeps_its_object(proxy, pmount, s3, names):
    """The name is gone when the retry comes, and back before the delete would go: the new
    file's upload is what the key holds."""
    m = pmount(args=ARGS)
    renamed_after_a_lost_answer(m, proxy, s3, names)
    with open(m.path("a.txt"), "w") as f:
        f.write("second\n")
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, names["prefix"]) == [key_of(names, "a.txt"), key_of(names, "b.txt")], \
        m.log()
    assert get_bytes(s3, key_of(names, "a.txt")) == b"second\n"
    assert get_bytes(s3, key_of(names, "b.txt")) == b"first\n"


def test_killed_with_an_unanswered_upload_then_name_gone(proxy, pmount, s3, names):
    """kill -9 while an upload's answer is being lost; the name is gone before the next mount
    (the rename the mount saw, whose delete the dead daemon never journaled, stands in for
    here by a rename in the spool). The next mount finds the upload's record, its file gone,
    and deletes the key its request may have filled."""
    m = pmount(args=ARGS)
    lost_answers(proxy, "a.txt")
    with open(m.path("a.txt"), "w") as f:
        f.write("first\n")
    wait_for(lambda: dropped(proxy) >= 1, what="the PUT's answer lost")
    kill9(m)
    assert list_keys(s3, names["prefix"]) == [key_of(names, "a.txt")]
    os.rename(os.path.join(m.spool, "a.txt"), os.path.join(m.spool, "b.txt"))
    proxy.clear()
    m2 = pmount(args=ARGS, spool_root=m.spool_root)
    assert m2.unmount() == 0, m2.log()
    assert key_of(names, "a.txt") not in list_keys(s3, names["prefix"]), m2.log()
    assert log_lines(m2, "no longer in the spool", "a.txt"), m2.log()
    assert journal_records(m2) == []


def test_with_no_delete_on_unlink_the_object_stays(proxy, pmount, s3, names):
    """With --no-delete-on-unlink no object is ever deleted, this one neither."""
    m = pmount(args=["--unmatched", "upload", "--no-delete-on-unlink"])
    renamed_after_a_lost_answer(m, proxy, s3, names)
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, names["prefix"]) == [key_of(names, "a.txt"), key_of(names, "b.txt")], \
        m.log()


def test_fsync_waits_for_an_upload_resumed_from_the_journal(proxy, pmount, s3, names):
    """An upload left journaled (S3 refused, kill -9) is resumed by the next mount; an fsync()
    of the file, clean for that mount, must wait for it. A resumed job had no submit seq, so
    the fsync waited for nothing and returned 0 with S3 still refusing (the soak: an fsync
    violation after a SIGTERM during a stalled fsync)."""
    import threading
    import time

    m = pmount(args=ARGS)
    proxy.refuse()
    with open(m.path("a.txt"), "w") as f:
        f.write("resumed\n")
    wait_for(lambda: log_lines(m, "op=upload", "status=retry", "a.txt"), timeout=30,
             what="the upload to fail once")
    kill9(m)
    m2 = pmount(args=ARGS + ["--no-check"], spool_root=m.spool_root)
    done = {}

    def sync():
        fd = os.open(m2.path("a.txt"), os.O_RDONLY)
        try:
            os.fsync(fd)
            done["at"] = time.monotonic()
        except OSError as e:
            done["err"] = e
        finally:
            os.close(fd)
    t = threading.Thread(target=sync)
    t.start()
    time.sleep(2)
    assert not done, f"fsync returned while S3 refused every connection: {done}"
    proxy.accept()
    t.join(timeout=60)
    assert "at" in done, done
    assert get_bytes(s3, key_of(names, "a.txt")) == b"resumed\n"
    assert m2.unmount() == 0, m2.log()
