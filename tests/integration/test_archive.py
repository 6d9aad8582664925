# SPDX-License-Identifier: Apache-2.0
"""Argo's archive strategies: tar (a .tgz with one member, built while uploading)."""
import io
import os
import subprocess
import tarfile

from helpers import BIN, BUCKET, get_bytes, list_keys, open_uploads, write, write_spec


def untar(blob, tmp_path):
    """Unpacks with the real tar(1) and returns {member: bytes}, and tarfile's members."""
    (tmp_path / "a.tgz").write_bytes(blob)
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "-xzf", str(tmp_path / "a.tgz"), "-C", str(out)], check=True)
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    return files, tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz").getmembers()


def test_tar_artifact_is_a_tgz_with_one_member(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("hello-art", "/tmp/hello.txt", "archive:\n  tar: {}\n")])
    m = mount(spec=spec)
    with open(m.path("hello.txt"), "w") as f:
        os.fchmod(f.fileno(), 0o640)
        f.write("Hello from Argo!\n")
    mtime = int(os.stat(m.path("hello.txt")).st_mtime)
    assert m.unmount() == 0, m.log()
    key = f"{names['prefix']}/hello-art.tgz"
    assert list_keys(s3, names["prefix"]) == [key]
    files, members = untar(get_bytes(s3, key), tmp_path)
    assert files == {"hello.txt": b"Hello from Argo!\n"}
    assert [x.name for x in members] == ["hello.txt"]
    assert members[0].mode == 0o640 and members[0].mtime == mtime


def test_archive_default_tgz_and_compression_level(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("a", "/tmp/a.txt", ""),
                                 ("b", "/tmp/b.txt", "archive:\n  tar:\n    compressionLevel: 0\n"),
                                 ("c", "/tmp/c.txt", "archive:\n  none: {}\n")])
    m = mount(spec=spec, args=["--archive-default", "tgz"])
    for n in "abc":
        write(m, f"{n}.txt", n * 5000)
    assert m.unmount() == 0, m.log()
    p = names["prefix"]
    assert list_keys(s3, p) == [f"{p}/a.tgz", f"{p}/b.tgz", f"{p}/c.txt"]
    (tmp_path / "a").mkdir()
    assert untar(get_bytes(s3, f"{p}/a.tgz"), tmp_path / "a")[0] == {"a.txt": b"a" * 5000}
    # level 0 stores: the archive is bigger than the data; level 6 compresses it well
    assert len(get_bytes(s3, f"{p}/b.tgz")) > 5000 > 10 * len(get_bytes(s3, f"{p}/a.tgz"))
    assert get_bytes(s3, f"{p}/c.txt") == b"c" * 5000


def test_large_tgz_streams_as_multipart(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("big", "/tmp/big.bin", "archive:\n  tar: {}\n")])
    m = mount(spec=spec, args=["--part-size", "5M"])
    data = os.urandom(13 << 20)  # random: gzip cannot shrink it, so ~3 parts
    with open(m.path("big.bin"), "wb") as f:
        f.write(data)
    assert m.unmount() == 0, m.log()
    key = f"{names['prefix']}/big.tgz"
    assert s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"').endswith("-3")
    files, _ = untar(get_bytes(s3, key), tmp_path)
    assert files == {"big.bin": data}
    assert open_uploads(s3, names["prefix"]) == []


def test_directory_artifact_with_tar_is_one_tgz_at_unmount(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("results", "/tmp/out", "archive:\n  tar: {}\n")])
    m = mount(spec=spec)
    os.makedirs(m.path("out/sub/deeper"))
    os.makedirs(m.path("out/empty"))
    files = {"out/a.txt": b"a\n", "out/sub/b.bin": os.urandom(100000),
             "out/sub/deeper/c.txt": b"c" * 7000}
    for rel, data in files.items():
        write(m, rel, data)
    os.symlink("a.txt", m.path("out/link"))
    # Nothing goes up while the directory may still grow.
    assert list_keys(s3, names["prefix"]) == []
    assert m.unmount() == 0, m.log()
    key = f"{names['prefix']}/results.tgz"
    assert list_keys(s3, names["prefix"]) == [key]
    blob = get_bytes(s3, key)
    tf = tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz")
    # Argo's tarDir: the directory itself, then everything below it, in lexical order.
    assert [x.name for x in tf.getmembers()] == [
        "out", "out/a.txt", "out/empty", "out/link", "out/sub", "out/sub/b.bin",
        "out/sub/deeper", "out/sub/deeper/c.txt"]
    assert tf.getmember("out/link").issym() and tf.getmember("out/link").linkname == "a.txt"
    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-xzf", "-", "-C", str(tmp_path / "x")], input=blob, check=True)
    for rel, data in files.items():
        assert (tmp_path / "x" / rel).read_bytes() == data


def test_zip_file_and_directory(mount, s3, names, tmp_path):
    import zipfile
    spec = write_spec(tmp_path, [("single", "/tmp/report.csv", "archive:\n  zip: {}\n"),
                                 ("tree", "/tmp/tree", "archive:\n  zip: {}\n")])
    m = mount(spec=spec)
    csv = b"a,b\n" * 20000
    write(m, "report.csv", csv)
    os.makedirs(m.path("tree/sub"))
    os.makedirs(m.path("tree/empty"))
    tree = {"tree/x.txt": b"x\n", "tree/sub/y.bin": os.urandom(300000)}
    for rel, data in tree.items():
        write(m, rel, data)
    assert m.unmount() == 0, m.log()
    p = names["prefix"]
    assert list_keys(s3, p) == [f"{p}/single.zip", f"{p}/tree.zip"]
    single = zipfile.ZipFile(io.BytesIO(get_bytes(s3, f"{p}/single.zip")))
    # Argo names a single file's entry after its source path
    assert single.namelist() == ["tmp/report.csv"]
    assert single.read("tmp/report.csv") == csv
    assert single.testzip() is None
    blob = get_bytes(s3, f"{p}/tree.zip")
    z = zipfile.ZipFile(io.BytesIO(blob))
    # Argo's zipDir: files only (no directory entries), <basename>/<rel>, walk order
    assert z.namelist() == ["tree/sub/y.bin", "tree/x.txt"]
    (tmp_path / "u").mkdir()
    (tmp_path / "t.zip").write_bytes(blob)
    subprocess.run(["unzip", "-q", str(tmp_path / "t.zip"), "-d", str(tmp_path / "u")], check=True)
    for rel, data in tree.items():
        assert (tmp_path / "u" / rel).read_bytes() == data


def test_full_per_artifact_location_uses_its_own_bucket(mount, s3, s3env, names, tmp_path):
    """Argo: endpoint+bucket+key all set is a location of its own; bucket+key without an
    endpoint keeps only the key (the bucket is silently dropped, a quirk we match)."""
    try:
        s3.create_bucket(Bucket="artifuse-test")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    endpoint = s3env["AWS_ENDPOINT_URL"].split("://", 1)[1]
    p = names["prefix"]
    spec = write_spec(tmp_path, [
        ("own", "/tmp/own.txt", f"archive:\n  none: {{}}\ns3:\n  endpoint: {endpoint}\n"
                                f"  bucket: artifuse-test\n  key: {p}/elsewhere/own.txt\n"),
        ("partial", "/tmp/partial.txt", f"archive:\n  none: {{}}\ns3:\n  bucket: artifuse-test\n"
                                        f"  key: {p}/partial.txt\n"),
    ])
    m = mount(spec=spec)
    for n in ("own", "partial"):
        write(m, f"{n}.txt", n)
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, f"{p}/elsewhere/own.txt", bucket="artifuse-test") == b"own"
    assert get_bytes(s3, f"{p}/partial.txt") == b"partial"  # the repository's bucket
    assert list_keys(s3, p) == [f"{p}/partial.txt"]


def test_full_location_on_another_endpoint_is_refused(s3env, names, tmp_path):
    spec = write_spec(tmp_path, [("far", "/tmp/far.txt",
                                  "s3:\n  endpoint: s3.example.com\n  bucket: b\n  key: k\n")])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([BIN, "mount", "-f", "--spool", str(tmp_path / "spool"), "--spec",
                        str(spec), "--as", "/tmp", "--endpoint", s3env["AWS_ENDPOINT_URL"],
                        "--artifact-repository", f"s3://{BUCKET}/x", str(mnt)],
                       env=dict(os.environ, **s3env), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "artifact 'far'" in r.stderr and "s3.example.com" in r.stderr


def test_flush_uploads_an_archived_directory_before_unmount(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("results", "/tmp/out", "archive:\n  tar: {}\n"),
                                 ("log", "/tmp/run.log", "")])
    m = mount(spec=spec)
    os.makedirs(m.path("out"))
    write(m, "out/a.txt", "a")
    write(m, "run.log", "log")
    r = subprocess.run([BIN, "flush", m.mnt],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + m.log()
    assert "flush:" in r.stdout
    p = names["prefix"]
    # Still mounted, and both are in S3 already.
    assert list_keys(s3, p) == [f"{p}/results.tgz", f"{p}/run.log"]
    tf = tarfile.open(fileobj=io.BytesIO(get_bytes(s3, f"{p}/results.tgz")), mode="r:gz")
    assert [x.name for x in tf.getmembers()] == ["out", "out/a.txt"]
    assert tf.extractfile("out/a.txt").read() == b"a"
    assert m.unmount() == 0, m.log()


def test_flush_without_a_mount_says_so(tmp_path):
    r = subprocess.run([BIN, "flush", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no artifuse is mounted" in r.stderr
