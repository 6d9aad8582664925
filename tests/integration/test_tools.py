# SPDX-License-Identifier: Apache-2.0
"""Unmodified programs just work: real tools write into the mount, and what they leave is
checked end to end, in S3 through boto3, byte for byte against the source or a local result.

Every mount here has no spec, so every regular file closed in the mount is uploaded to
<prefix>/<relative path> (-v: the log shows each submit and its trigger, printed when a test
fails). Each test's docstring says what artifuse uploads for that tool, including the names
a tool only uses for a moment (temporary files, locks, journals): those are uploaded when
their fsync does it (fsync waits for S3) or a worker opens them before the tool renames or
deletes them; the object of a name that is then unlinked or renamed away is deleted (the
default), so S3 ends holding what the spool holds. Where a test allows a stray, its
docstring says why.

Tests that fail today, each on a bug its docstring names:
test_write_temp_then_rename_uploads_only_the_final_name, test_sqlite3_directory_download
(stray journals and WALs), test_file_replaced_by_a_fifo_does_not_hang.

Tools: coreutils, tar, gzip, sed, python3 (Debian's), and rsync, sqlite3, git (apt packages
of the same names).
"""
import errno
import gzip
import hashlib
import io
import os
import random
import re
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
import time
import zlib

import pytest

from helpers import get_bytes, key_of, list_keys, wait_for, wait_object

TIMEOUT = 60  # seconds any one tool may take


def run(argv, **kw):
    """Runs a tool to completion; its output in the failure message."""
    r = subprocess.run([str(a) for a in argv], capture_output=True, timeout=TIMEOUT, **kw)
    assert r.returncode == 0, f"{argv} exited {r.returncode}:\n{r.stdout!r}\n{r.stderr!r}"
    return r.stdout


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed (apt-get install {tool})")


def objects(s3, names):
    """{key relative to the prefix: bytes} of every object the mount uploaded."""
    p = names["prefix"] + "/"
    return {k[len(p):]: get_bytes(s3, k) for k in list_keys(s3, p)}


def tree_files(root):
    """{relative path: bytes} of the regular files under @root (symlinks not followed)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if stat.S_ISREG(os.lstat(p).st_mode):
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
    return out


def strays(objs, expected, pattern):
    """The uploaded names beyond @expected. A tool's temporary name (@pattern) may go up when
    a worker opens it before the tool renames or removes it, but its object is deleted then
    (the default), so none is left by the time the mount is unmounted: asserts there are
    none, temporary or not. Returns them (empty), for the callers' checks."""
    extra = sorted(set(objs) - set(expected))
    temps = [k for k in extra if re.search(pattern, k)]
    assert not extra, (f"objects left of names the tool removed or renamed: {extra} "
                       f"(temporary names, {pattern!r}: {temps})")
    return extra


def rand_tree(root, rng, nfiles=30):
    """A tree of files with sizes from 0 to 200 kB, nested directories and an empty one."""
    dirs = ["", "a", "a/b", "a/b/c", "d", "d/e with space"]
    for d in dirs:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.makedirs(os.path.join(root, "empty"))
    for i in range(nfiles):
        size = rng.choice([0, 1, 100, 4095, 4096, 4097, 65536, rng.randrange(200000)])
        with open(os.path.join(root, rng.choice(dirs), f"f{i}.bin"), "wb") as f:
            f.write(rng.randbytes(size))


# ---- coreutils ------------------------------------------------------------------------------


def test_cp(mount, s3, names, tmp_path):
    """cp from local disk, cp -p (mode and mtime kept on the spool file), and cp from the
    mount to the mount (copy_file_range, served by the spool): each uploads its copy."""
    data = random.Random(1).randbytes(300001)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    os.chmod(src, 0o640)
    mtime_ns = 1_000_000_000_123_456_789
    os.utime(src, ns=(mtime_ns, mtime_ns))
    m = mount(args=["-v"])
    run(["cp", src, m.path("copy.bin")])
    run(["cp", "-p", src, m.path("kept.bin")])
    run(["cp", m.path("copy.bin"), m.path("copy2.bin")])
    st = os.stat(os.path.join(m.spool, "kept.bin"))
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_mtime_ns == mtime_ns
    assert os.stat(m.path("kept.bin")).st_mtime_ns == mtime_ns
    assert m.unmount() == 0, m.log()
    assert objects(s3, names) == {"copy.bin": data, "kept.bin": data, "copy2.bin": data}


def test_dd(mount, s3, names):
    """dd writes a file; dd conv=notrunc overwrites its middle; dd without notrunc truncates
    at the seek offset and writes there. Each version reaches S3 in turn (the last close
    after a change uploads again)."""
    rng = random.Random(2)
    base, patch = rng.randbytes(1 << 20), rng.randbytes(10000)
    m = mount(args=["-v"])
    f = m.path("dd.bin")
    run(["dd", "of=" + f, "bs=65536", "status=none"], input=base)
    wait_object(s3, key_of(names, "dd.bin"), base)
    run(["dd", "of=" + f, "bs=1000", "seek=300", "conv=notrunc", "status=none"], input=patch)
    middle = base[:300000] + patch + base[310000:]
    wait_object(s3, key_of(names, "dd.bin"), middle)
    run(["dd", "of=" + f, "bs=1000", "seek=500", "status=none"], input=patch)
    cut = middle[:500000] + patch
    with open(f, "rb") as fh:
        assert fh.read() == cut
    assert m.unmount() == 0, m.log()
    assert objects(s3, names) == {"dd.bin": cut}


def test_sed_in_place(mount, s3, names):
    """sed -i writes a temporary "sedXXXXXX" beside the file, closes it and renames it over
    the file: the file is uploaded with the edit. The temporary name is uploaded too when a
    worker gets to it before the rename (a stray, see the module docstring)."""
    m = mount(args=["-v"])
    text = "".join(f"line {i} foo\n" for i in range(5000)).encode()
    with open(m.path("edit.txt"), "wb") as f:
        f.write(text)
    wait_object(s3, key_of(names, "edit.txt"), text)
    run(["sed", "-i", "s/foo/bar/", m.path("edit.txt")])
    assert m.unmount() == 0, m.log()
    objs = objects(s3, names)
    assert objs["edit.txt"] == text.replace(b"foo", b"bar")
    for k in strays(objs, ["edit.txt"], r"^sed[A-Za-z0-9]{6}$"):
        assert objs[k] == objs["edit.txt"]


def test_sort_output_over_its_input(mount, s3, names):
    """sort -o FILE FILE reads everything, then truncates and rewrites FILE: uploaded once
    sorted (and nothing else)."""
    rng = random.Random(3)
    lines = [f"{rng.randrange(10**9):09d}\n" for _ in range(20000)]
    m = mount(args=["-v"])
    with open(m.path("s.txt"), "w") as f:
        f.writelines(lines)
    run(["sort", "-o", m.path("s.txt"), m.path("s.txt")], env=dict(os.environ, LC_ALL="C"))
    assert m.unmount() == 0, m.log()
    assert objects(s3, names) == {"s.txt": "".join(sorted(lines)).encode()}


def test_symlink_is_not_uploaded(mount, s3, names):
    """ln -s: a symlink is not uploaded, neither as an object of its own nor as a copy of
    its target under the link's name; a target that is a file in the mount is uploaded
    under its own name. (Argo's executor, by contrast, follows a symlink that is itself the
    output path; a spec artifact pointing at a symlink gets nothing here.)"""
    m = mount(args=["-v"])
    with open(m.path("target.txt"), "wb") as f:
        f.write(b"target\n")
    run(["ln", "-s", "target.txt", m.path("rel-link")])
    run(["ln", "-s", "/etc/hostname", m.path("abs-link")])
    run(["ln", "-s", "missing", m.path("dangling")])
    os.mkdir(m.path("dir"))
    run(["ln", "-s", "../target.txt", m.path("dir/up-link")])
    with open(m.path("rel-link"), "rb") as f:  # reads follow the link, as anywhere
        assert f.read() == b"target\n"
    assert os.readlink(m.path("dir/up-link")) == "../target.txt"
    assert m.unmount() == 0, m.log()
    assert objects(s3, names) == {"target.txt": b"target\n"}


def test_hard_link(mount, s3, names):
    """ln: the new name is uploaded at once with the file's content (a clean file arriving
    at a name), and the old name keeps its object. A later change made through either name
    uploads every name the file has (they are one file). Failed before the fix in
    fs/ops.c: only the name the daemon first saw the file by was uploaded again, so "b"
    kept "one\n"."""
    m = mount(args=["-v"])
    with open(m.path("a"), "wb") as f:
        f.write(b"one\n")
    wait_object(s3, key_of(names, "a"), b"one\n")
    run(["ln", m.path("a"), m.path("b")])
    wait_object(s3, key_of(names, "b"), b"one\n")
    with open(m.path("b"), "ab") as f:  # written through the second name
        f.write(b"two\n")
    os.mkdir(m.path("sub"))
    run(["ln", m.path("b"), m.path("sub/c")])
    with open(m.path("a"), "ab") as f:  # and through the first
        f.write(b"three\n")
    assert m.unmount() == 0, m.log()
    want = b"one\ntwo\nthree\n"
    assert objects(s3, names) == {"a": want, "b": want, "sub/c": want}


def test_hard_link_after_the_first_name_is_removed(mount, s3, names):
    """ln a b; rm a; then b is changed: b's object gets the change. Failed before the fix in
    fs/ops.c: the daemon knew the file by its first name, which the kernel then calls
    "a (deleted)"; that was taken for a real name (the file still had a link), submitted,
    and skipped as "no longer in the spool", so b's change never reached S3. The object of
    "a" is deleted with its name (the default), as Argo would never have uploaded it."""
    m = mount(args=["-v"])
    with open(m.path("a"), "wb") as f:
        f.write(b"one\n")
    wait_object(s3, key_of(names, "a"), b"one\n")
    run(["ln", m.path("a"), m.path("b")])
    os.unlink(m.path("a"))
    wait_object(s3, key_of(names, "b"), b"one\n")
    with open(m.path("b"), "ab") as f:
        f.write(b"two\n")
    assert m.unmount() == 0, m.log()
    assert objects(s3, names) == {"b": b"one\ntwo\n"}
    assert 'path="a (deleted)"' not in m.log()


def test_mkfifo(mount, s3, names):
    """mkfifo: a FIFO in the mount connects a reader and a writer as anywhere; it is not
    uploaded, nothing hangs on it (not the drain at unmount, even with a FIFO nobody opened),
    and what the reader wrote to a file in the mount is uploaded."""
    m = mount(args=["-v"])
    run(["mkfifo", m.path("fifo")])
    run(["mkfifo", m.path("unused-fifo")])
    assert stat.S_ISFIFO(os.stat(m.path("fifo")).st_mode)
    reader = subprocess.Popen(["sh", "-c", f'cat "{m.path("fifo")}" > "{m.path("out.txt")}"'])
    payload = b"through the fifo\n" * 10000
    run(["sh", "-c", f'cat > "{m.path("fifo")}"'], input=payload)
    assert reader.wait(timeout=TIMEOUT) == 0
    # A writer without a reader gets ENXIO at once when it will not wait.
    with pytest.raises(OSError) as e:
        os.open(m.path("unused-fifo"), os.O_WRONLY | os.O_NONBLOCK)
    assert e.value.errno == errno.ENXIO
    assert m.unmount(timeout=30) == 0, m.log()
    assert objects(s3, names) == {"out.txt": payload}


def test_file_replaced_by_a_fifo_does_not_hang(mount, s3, names):
    """A file closed (so handed to the queue by name) and at once replaced by a FIFO of the
    same name: the upload finds no regular file and skips it; nothing hangs.

    FAILS today (core/upload/queue.c, upload_once()): a worker opens the name with
    open(O_RDONLY) and no O_NONBLOCK, which on a FIFO blocks until a writer comes: every
    worker ends up blocked for good, no upload completes, and the drain at unmount never
    ends (no --drain-timeout by default). The same open on a device node made with mknod
    would open the device. Fix: O_NONBLOCK on that open (the fstat after it already refuses
    what is not a regular file), or open with O_PATH, check S_ISREG, then reopen."""
    m = mount(args=["-v"])
    n = 12  # more than the 4 workers
    for i in range(n):
        p = m.path(f"p{i}")
        with open(p, "wb") as f:
            f.write(b"x" * 100)
        os.unlink(p)
        os.mkfifo(p)
    with open(m.path("after.txt"), "wb") as f:
        f.write(b"after\n")
    try:
        rc = m.unmount(timeout=8)
    except AssertionError:
        # Be the writer each blocked worker waits for, so that the daemon can exit.
        end = time.monotonic() + 30
        while m.proc.poll() is None and time.monotonic() < end:
            for i in range(n):
                try:
                    os.close(os.open(os.path.join(m.spool, f"p{i}"),
                                     os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass  # nobody is reading this one
            time.sleep(0.05)
        pytest.fail("the drain at unmount hung: workers are blocked opening FIFOs")
    assert rc == 0, m.log()
    assert objects(s3, names) == {"after.txt": b"after\n"}


# ---- archivers ------------------------------------------------------------------------------


def test_tar_extract_into_and_create_in_the_mount(mount, s3, names, tmp_path):
    """tar -x of a local tree into the mount uploads each regular file at <prefix>/tree/...
    with the file's mtime kept on the spool file; a hard link in the archive uploads both
    names; symlinks and directories (also empty ones) are not uploaded. tar -czf of that
    tree, read back through the mount, into an archive in the mount uploads the archive,
    and its members are the tree's files."""
    rng = random.Random(4)
    local = tmp_path / "local"
    tree = local / "tree"
    rand_tree(tree, rng)
    with open(tree / "a" / "linked.bin", "wb") as f:
        f.write(rng.randbytes(5000))
    os.link(tree / "a" / "linked.bin", tree / "d" / "hard.bin")
    os.symlink("a/linked.bin", tree / "sym")
    os.utime(tree / "a" / "linked.bin", ns=(10**18, 10**18))
    run(["tar", "-cf", tmp_path / "tree.tar", "-C", local, "tree"])
    want = {"tree/" + k: v for k, v in tree_files(tree).items()}
    m = mount(args=["-v"])
    run(["tar", "-xf", tmp_path / "tree.tar", "-C", m.mnt])
    assert os.readlink(m.path("tree/sym")) == "a/linked.bin"
    assert os.stat(os.path.join(m.spool, "tree/a/linked.bin")).st_mtime_ns == 10**18
    run(["tar", "-czf", m.path("tree.tgz"), "-C", m.mnt, "tree"])
    with open(m.path("tree.tgz"), "rb") as f:
        tgz = f.read()
    assert m.unmount() == 0, m.log()
    objs = objects(s3, names)
    assert objs == {**want, "tree.tgz": tgz}
    with tarfile.open(fileobj=io.BytesIO(objs["tree.tgz"])) as t:
        members = {i.name: t.extractfile(i).read() for i in t.getmembers() if i.isfile()}
        kinds = {i.name: i.type for i in t.getmembers()}
    # The second name of the hard link is a link member in the archive (tar's choice).
    assert kinds["tree/sym"] == tarfile.SYMTYPE
    assert members == {k: v for k, v in want.items() if k in members}
    assert set(want) - set(members) <= {"tree/a/linked.bin", "tree/d/hard.bin"}


def test_gzip_in_the_mount(mount, s3, names):
    """gzip FILE writes FILE.gz (uploaded; it decompresses to the original) and unlinks FILE.
    FILE's object, uploaded before, goes with it (the default): S3 ends holding what the
    spool holds, as Argo would leave it; with --no-delete-on-unlink it stays."""
    text = b"".join(b"%d compressible line\n" % i for i in range(50000))
    m = mount(args=["-v"])
    with open(m.path("data.txt"), "wb") as f:
        f.write(text)
    wait_object(s3, key_of(names, "data.txt"), text)
    run(["gzip", m.path("data.txt")])
    assert not os.path.exists(m.path("data.txt"))
    assert m.unmount() == 0, m.log()
    objs = objects(s3, names)
    assert set(objs) == {"data.txt.gz"}
    assert gzip.decompress(objs["data.txt.gz"]) == text


# ---- rsync ----------------------------------------------------------------------------------

RSYNC_TEMP = r"(^|/)\.[^/]+\.[A-Za-z0-9]{6}$"


def test_rsync(mount, s3, names, tmp_path):
    """rsync -a (default: each file written to ".NAME.XXXXXX" in the destination directory,
    closed, renamed to NAME): every file is uploaded under its final name. FINDING: the
    temporary ".NAME.XXXXXX" is uploaded too (a full duplicate, left in S3) whenever a
    worker opens it between its close and the rename; the log shows "trigger=close" for
    the temporary name followed by an upload "status=done" of it. Then rsync --inplace
    (changed files rewritten where they are: the middle of one, the end of another, one
    shortened): the changes upload under the final names and no temporary name appears."""
    need("rsync")
    rng = random.Random(5)
    src = tmp_path / "src"
    rand_tree(src, rng, nfiles=40)
    m = mount(args=["-v"])
    run(["rsync", "-a", f"{src}/", m.path("dst") + "/"])
    want = {"dst/" + k: v for k, v in tree_files(src).items()}
    keys = {f"{names['prefix']}/{r}" for r in want}
    wait_for(lambda: keys <= set(list_keys(s3, names["prefix"])), what="the first rsync")
    mark = os.path.getsize(m.log_path)
    # Change three files locally, with new mtimes so that rsync's quick check sees them.
    big = sorted((p for p in want if len(want[p]) > 10000), key=lambda p: -len(want[p]))
    for i, rel in enumerate(big[:3]):
        p = src / rel[len("dst/"):]
        data = bytearray(p.read_bytes())
        if i == 0:
            data[len(data) // 2:len(data) // 2 + 100] = rng.randbytes(100)
        elif i == 1:
            data += rng.randbytes(3000)
        else:
            del data[len(data) // 3:]
        p.write_bytes(bytes(data))
        os.utime(p, ns=(2 * 10**18, 2 * 10**18 + i))
    run(["rsync", "-a", "--inplace", f"{src}/", m.path("dst") + "/"])
    want = {"dst/" + k: v for k, v in tree_files(src).items()}
    assert tree_files(m.path("dst")) == {k[4:]: v for k, v in want.items()}
    assert m.unmount() == 0, m.log()
    objs = objects(s3, names)
    extra = strays(objs, want, RSYNC_TEMP)
    with open(m.log_path, errors="replace") as f:
        f.seek(mark)
        submits = [line for line in f if "op=submit" in line]
    temps = [line for line in submits if re.search(r'path="[^"]*/\.[^"/]+\.\w{6}"', line)]
    assert submits and not temps, "rsync --inplace wrote a temporary file"
    for k in extra:  # a stray is a full copy of its final file, as the first rsync wrote it
        final = re.sub(r"(^|/)\.([^/]+)\.[A-Za-z0-9]{6}$", r"\1\2", k)
        assert final in want
    if extra:
        print(f"FINDING: rsync temporary names left in S3: {extra}")


# ---- python ---------------------------------------------------------------------------------


def test_python_tempfile_then_replace(mount, s3, names):
    """tempfile.NamedTemporaryFile(dir=mount, delete=False), write, close, os.replace to the
    final name (the usual atomic-save idiom): each final name is uploaded with its data.
    The "tmpXXXXXXXX" names are strays when a worker opens them before the replace."""
    m = mount(args=["-v"])
    want = {}
    for i in range(20):
        data = random.Random(i).randbytes(1000 * i + 1)
        with tempfile.NamedTemporaryFile(dir=m.mnt, delete=False) as t:
            t.write(data)
        os.replace(t.name, m.path(f"saved-{i}.bin"))
        want[f"saved-{i}.bin"] = data
    # Replacing an existing, uploaded file: the new content wins.
    wait_object(s3, key_of(names, "saved-0.bin"), want["saved-0.bin"])
    with tempfile.NamedTemporaryFile(dir=m.mnt, delete=False) as t:
        t.write(b"second version")
    os.replace(t.name, m.path("saved-0.bin"))
    want["saved-0.bin"] = b"second version"
    assert m.unmount() == 0, m.log()
    objs = objects(s3, names)
    strays(objs, want, r"^tmp[a-z0-9_]{8}$")
    assert {k: objs[k] for k in want} == want


def test_write_temp_then_rename_uploads_only_the_final_name(mount, s3, names):
    """The design (§4): "A program that writes out.tmp and renames it to out.csv uploads
    out.csv once." Here the program closes out.tmp and renames it 50 ms later (rsync, git,
    sed -i and python's atomic save all set attributes or sync in that gap).

    FAILS today: the last close hands "out.tmp" to the queue by name; a worker opens it at
    once and uploads it as <prefix>/out.tmp before the rename, and that object stays. The
    rename then uploads out.csv as well (two PUTs, one stray). The fix belongs in the queue
    (core/upload/queue.c): a rename of a name with a queued job should move the job to the new
    name, and one whose upload is running should be followed by a delete of the old key
    (or the upload of a just-closed file should wait a short settle time)."""
    m = mount(args=["-v"])
    for i in range(3):
        with open(m.path(f"out{i}.tmp"), "wb") as f:
            f.write(b"final %d\n" % i)
        time.sleep(0.05)
        os.rename(m.path(f"out{i}.tmp"), m.path(f"out{i}.csv"))
    assert m.unmount() == 0, m.log()
    assert objects(s3, names) == {f"out{i}.csv": b"final %d\n" % i for i in range(3)}


# ---- databases ------------------------------------------------------------------------------


def sqlite_rows(path):
    """The integrity check and the rows of table t of the database at @path (or sqlite's
    error)."""
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0], \
            con.execute("SELECT i, v FROM t ORDER BY i").fetchall()
    except sqlite3.DatabaseError as e:
        return "sqlite3.DatabaseError", str(e)
    finally:
        con.close()


def sqlite_script(first, n):
    """@n transactions, each one INSERT (the shell's autocommit), rows @first.. @first+n-1."""
    return "".join(f"INSERT INTO t VALUES ({i}, 'row {i} ' || hex(randomblob(200)));\n"
                   for i in range(first, first + n)).encode()


def sqlite_session(m, mode, sessions):
    """Creates data.db in the mount in journal @mode and fills it in @sessions sqlite3 shell
    runs of 100 one-row transactions each; returns the rows, read back through the mount."""
    need("sqlite3")
    db = m.path("data.db")
    run(["sqlite3", db, f"PRAGMA journal_mode={mode};"
         "CREATE TABLE t(i INTEGER PRIMARY KEY, v TEXT);"])
    for s in range(sessions):
        run(["sqlite3", db], input=sqlite_script(s * 100, 100))
    integrity, rows = sqlite_rows(db)  # through the mount (this connection closes, too)
    assert integrity == "ok" and [r[0] for r in rows] == list(range(100 * sessions))
    return integrity, rows


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_sqlite3(mount, s3, names, tmp_path, mode):
    """sqlite3 (the shell), 400 transactions in four sessions, journal_mode DELETE (a
    rollback journal "data.db-journal" created, written, fsynced, closed and unlinked by each
    transaction) or WAL ("data.db-wal" and the mmap'ed "data.db-shm", unlinked by the last
    connection's close after a checkpoint). After the last close the uploaded db, downloaded
    alone, opens and has every row.

    What else is uploaded: never the db-shm (unlinked before its close, never fsynced).
    FINDING: the db-journal (DELETE; in WAL mode too: switching to WAL is itself a rollback
    journal transaction) and db-wal (WAL) are uploaded on each of their fsyncs
    (fsync waits for S3) and on closes that a worker gets to before the unlink, and the last
    such upload stays in S3 under that name: a live journal of some transaction, not the
    final state. test_sqlite3_directory_download shows what that does to a download.
    Every transaction also uploads the whole db again (its fsync waits for S3): these 400
    one-row transactions on a 190 kB db make about 1200 PUTs and 47 MB (DELETE) or 400 PUTs
    and 100 MB (WAL: the whole WAL goes up at each commit)."""
    m = mount(args=["-v"])
    want = sqlite_session(m, mode, 4)
    assert m.unmount() == 0, m.log()
    objs = objects(s3, names)
    with open(os.path.join(m.spool, "data.db"), "rb") as f:
        assert objs["data.db"] == f.read()
    extra = strays(objs, ["data.db"], r"^data\.db-(journal|wal)$")
    # The db alone, as a user downloading that one artifact gets it.
    (tmp_path / "data.db").write_bytes(objs["data.db"])
    assert sqlite_rows(tmp_path / "data.db") == want
    print(f"FINDING: sqlite {mode}: strays in S3: { {k: len(objs[k]) for k in extra} } (bytes)")


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_sqlite3_directory_download(mount, s3, names, tmp_path, mode):
    """The database's directory as uploaded (a directory artifact, or all of <prefix>),
    downloaded and opened, must have every row, with --delete-on-unlink.

    Without it, the stray data.db-journal in S3 is a live journal of a transaction
    (uploaded by its fsync, then unlinked by the commit, and its object never removed). Next
    to the final db it is a "hot journal": sqlite rolls the db back to that transaction's
    start, truncating it ("database disk image is malformed", rows lost). The stray
    data.db-wal likewise replays stale frames (the db comes back empty: "no such table").
    --delete-on-unlink deletes the object of each name the program unlinks, so S3 ends up
    holding what the spool holds: the prefix lists data.db alone."""
    m = mount(args=["-v", "--delete-on-unlink"])
    want = sqlite_session(m, mode, 2)
    assert m.unmount() == 0, m.log()
    objs = objects(s3, names)
    assert sorted(objs) == sorted(tree_files(m.spool)), "S3 is not the spool"
    for k, v in objs.items():
        (tmp_path / k).write_bytes(v)
    assert sqlite_rows(tmp_path / "data.db") == want, \
        f"the downloaded db is not the mount's; S3 also holds {sorted(set(objs) - {'data.db'})}"


# ---- git ------------------------------------------------------------------------------------

# Names git writes and renames or links away at once: strays when a worker is quicker.
GIT_TEMP = r"(\.lock$|/gc\.pid$|/tmp_obj_\w+$|/tmp_(pack|idx|rev)_\w+$|/\.tmp-\d+-pack-\w+\.\w+$)"
# Files gc deletes (loose objects and refs it packs): their objects stay.
GIT_LOOSE = r"^repo/\.git/objects/([0-9a-f]{2})/([0-9a-f]{38})$"
GIT_REF = r"^repo/\.git/refs/"


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
               GIT_CONFIG_NOSYSTEM="1", HOME=str(repo))
    return run(["git", "-C", repo, *args], env=env)


def test_git(mount, s3, names, tmp_path):
    """git init / add / commit (twice) / gc inside the mount: git works (log, fsck), and
    every file of the repository, .git/objects included, is uploaded with the spool's bytes;
    the repository downloaded from S3 is a working clone source.

    Git writes each object as tmp_obj_XXXX then links it to its name (the link uploads it),
    packs into .tmp-NNN-pack-XXXX files it renames, and updates HEAD, index and refs through
    NAME.lock files renamed over NAME. FINDING: those temporary names are strays in S3
    (".git/index.lock", ".git/HEAD.lock", often empty: the lock file's fsync or close
    uploaded it, or a worker opened the name as the next lock was created); a downloaded
    repository with a stray index.lock refuses "git add" until it is removed, so the download
    below leaves them out. The loose objects and refs that gc packs and deletes keep their
    objects (nothing is deleted from S3): each object is still valid (its content hashes to
    its name), but FINDING: a stale loose ref wins over packed-refs in a download, and it
    may be from before the last commit (the upload of the ref's last version is skipped
    when gc deletes the file first), so the downloaded repository's branch can point at an
    older commit; the download below leaves stale refs out too."""
    need("git")
    rng = random.Random(6)
    m = mount(args=["-v"])
    repo = m.path("repo")
    os.mkdir(repo)
    git(repo, "init", "-q", "-b", "main")
    rand_tree(os.path.join(repo, "src"), rng, nfiles=20)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    with open(os.path.join(repo, "src", sorted(tree_files(os.path.join(repo, "src")))[0]),
              "ab") as f:
        f.write(b"changed")
    git(repo, "commit", "-q", "-a", "-m", "two")
    git(repo, "gc", "-q")
    assert git(repo, "log", "--format=%s").split() == [b"two", b"one"]
    git(repo, "fsck", "--full", "--strict")
    assert m.unmount() == 0, m.log()
    want = {"repo/" + k: v for k, v in tree_files(os.path.join(m.spool, "repo")).items()}
    assert any(k.startswith("repo/.git/objects/pack/") for k in want)
    objs = objects(s3, names)
    extra = strays(objs, want, "|".join((GIT_TEMP, GIT_LOOSE, GIT_REF)))
    assert {k: objs[k] for k in want} == want
    stale = [k for k in extra if re.match(GIT_LOOSE, k)]
    for k in stale:
        loose = re.match(GIT_LOOSE, k)
        assert hashlib.sha1(zlib.decompress(objs[k])).hexdigest() == "".join(loose.groups())
    # S3 has no directories: an empty one (refs/heads after gc packed the refs) is not
    # uploaded, and git needs refs/ to call a directory a repository.
    dl = tmp_path / "download"
    os.makedirs(dl / "repo/.git/refs/heads")
    for k in list(want) + stale:
        os.makedirs(dl / os.path.dirname(k), exist_ok=True)
        (dl / k).write_bytes(objs[k])
    git(dl / "repo", "fsck", "--full")
    run(["git", "clone", "-q", dl / "repo", tmp_path / "clone"])
    assert tree_files(tmp_path / "clone" / "src") == tree_files(os.path.join(m.spool, "repo",
                                                                             "src"))
    refs = {k: objs[k] for k in extra if re.match(GIT_REF, k)}
    print(f"FINDING: git strays in S3: {[k for k in extra if re.search(GIT_TEMP, k)]}; "
          f"deleted but kept: {len(stale)} loose objects, refs {refs}")
