# SPDX-License-Identifier: Apache-2.0
"""Large files go up with a multipart upload; nothing is left open on the server."""
import os
import subprocess

from helpers import BIN, BUCKET, get_bytes, list_keys, open_uploads


def test_large_file_uses_multipart_and_arrives_intact(mount, s3, names):
    m = mount(args=["--part-size", "5M", "--multipart-threshold", "6M"])
    data = os.urandom(23 << 20)  # 5 parts of 5 MiB: 4 full and a 3 MiB tail
    with open(m.path("big.bin"), "wb") as f:
        for i in range(0, len(data), 1 << 20):
            f.write(data[i:i + (1 << 20)])
    assert m.unmount() == 0, m.log()
    key = f"{names['prefix']}/big.bin"
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-5"), head["ETag"]  # S3's multipart ETag
    assert get_bytes(s3, key) == data
    assert open_uploads(s3, names["prefix"]) == []


def test_below_the_threshold_is_one_put(mount, s3, names):
    m = mount(args=["--multipart-threshold", "8M"])
    data = os.urandom((8 << 20) - 1)
    with open(m.path("small.bin"), "wb") as f:
        f.write(data)
    assert m.unmount() == 0, m.log()
    head = s3.head_object(Bucket=BUCKET, Key=f"{names['prefix']}/small.bin")
    assert "-" not in head["ETag"]
    assert get_bytes(s3, f"{names['prefix']}/small.bin") == data


def test_failed_multipart_upload_leaves_nothing_open(mount, s3, names):
    """A multipart upload the server refuses (a wrong secret: CreateMultipartUpload fails)
    is reported, leaves no object and no open upload. (Aborting after some parts went up
    needs the fault-injecting proxy of the fault suite.)"""
    m = mount(args=["--part-size", "5M", "--multipart-threshold", "5M", "--upload-attempts", "1"],
              env={"AWS_SECRET_ACCESS_KEY": "wrong-wrong-wrong-wrong-wrong-wrong0"})
    with open(m.path("big.bin"), "wb") as f:
        f.write(os.urandom(11 << 20))
    assert m.unmount() == 3, m.log()
    assert "SignatureDoesNotMatch" in m.log()
    assert list_keys(s3, names["prefix"]) == []
    assert open_uploads(s3, names["prefix"]) == []


def test_bad_part_size_is_rejected(s3env, tmp_path):
    r = subprocess.run([BIN, "mount", "--part-size", "1M", "--artifact-repository",
                        f"s3://{BUCKET}/x", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "--part-size" in r.stderr and "5M" in r.stderr


def test_parts_in_parallel_arrive_in_order(mount, s3, names):
    m = mount(args=["--part-size", "5M", "--multipart-threshold", "5M", "--part-concurrency", "3"])
    data = os.urandom((5 << 20) * 7 + 12345)  # 8 parts over 3 connections
    with open(m.path("par.bin"), "wb") as f:
        f.write(data)
    assert m.unmount() == 0, m.log()
    key = f"{names['prefix']}/par.bin"
    assert s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"').endswith("-8")
    assert get_bytes(s3, key) == data
    assert open_uploads(s3, names["prefix"]) == []
