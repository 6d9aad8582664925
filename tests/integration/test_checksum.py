# SPDX-License-Identifier: Apache-2.0
"""--checksum: what each PUT and part carries for the server to verify, and what happens
when a body is damaged on the way (a bit flipped by the fault proxy)."""
import os

import pytest

from helpers import get_bytes, log_lines, wait_for


def headers_of(proxy, method="PUT"):
    return [r["headers"] for r in proxy.stats()["requests_log"] if r["method"] == method]


@pytest.mark.parametrize("mode", ["auto", "crc32c", "sha256", "md5", "none"])
def test_every_mode_uploads_intact(pmount, s3, names, proxy, mode):
    m = pmount(args=["--checksum", mode, "--part-size", "5M", "--multipart-threshold", "5M"])
    small, big = os.urandom(1000), os.urandom(11 << 20)
    for name, data in (("small.bin", small), ("big.bin", big)):
        with open(m.path(name), "wb") as f:
            f.write(data)
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, f"{names['prefix']}/small.bin") == small
    assert get_bytes(s3, f"{names['prefix']}/big.bin") == big
    puts = headers_of(proxy)
    lower = [{k.lower(): v for k, v in h.items()} for h in puts]
    payload = {h.get("x-amz-content-sha256") for h in lower}
    if mode == "sha256":
        assert "UNSIGNED-PAYLOAD" not in payload
    if mode in ("md5", "crc32c", "none"):
        assert payload == {"UNSIGNED-PAYLOAD"}
    if mode == "md5":
        assert all("content-md5" in h for h in lower)
    if mode == "crc32c":
        assert all("x-amz-checksum-crc32c" in h for h in lower)
    if mode == "none":
        assert not any("content-md5" in h or "x-amz-checksum-crc32c" in h for h in lower)


def test_auto_falls_back_to_md5_where_crc32c_is_not_verified(pmount, s3, names, proxy):
    """radosgw 16 ignores x-amz-checksum-*: it does not echo them. The first PUT carries
    CRC32C and Content-MD5; seeing no echo, artifuse says so once and sends Content-MD5."""
    m = pmount()
    for i in range(3):
        with open(m.path(f"f{i}.txt"), "w") as f:
            f.write(f"{i}" * 100)
        wait_for(lambda: f"path=\"f{i}.txt\"" in m.log(), what=f"f{i}.txt uploaded")
    assert m.unmount() == 0, m.log()
    notes = log_lines(m, "op=checksum")
    assert len(notes) == 1 and "using Content-MD5" in notes[0]
    lower = [{k.lower(): v for k, v in h.items()} for h in headers_of(proxy)]
    assert "x-amz-checksum-crc32c" in lower[0] and "content-md5" in lower[0]
    assert all("content-md5" in h and "x-amz-checksum-crc32c" not in h for h in lower[1:])


def write_damaged(pmount, proxy, mode):
    """Mounts with --checksum @mode and writes d.bin, the proxy flipping a bit in the first
    PUT body on the way; returns the mount and what was written."""
    m = pmount(args=["--checksum", mode])
    proxy.corrupt_body(times=1, match=("PUT", "/"))
    data = os.urandom(300000)
    with open(m.path("d.bin"), "wb") as f:
        f.write(data)
    return m, data


@pytest.mark.parametrize("mode", ["auto", "md5", "sha256"])
def test_a_body_damaged_in_flight_is_rejected_and_sent_again(pmount, s3, names, proxy, mode):
    m, data = write_damaged(pmount, proxy, mode)
    assert m.unmount() == 0, m.log()
    assert proxy.stats()["corrupted"] == 1
    retry = log_lines(m, "status=retry")
    assert retry and ("BadDigest" in retry[0] or "XAmzContentSHA256Mismatch" in retry[0]), m.log()
    assert get_bytes(s3, f"{names['prefix']}/d.bin") == data


def test_without_a_checksum_damage_goes_unnoticed(pmount, s3, names, proxy):
    """The control: --checksum none has nothing to catch a flipped bit (on plain http)."""
    m, data = write_damaged(pmount, proxy, "none")
    assert m.unmount() == 0, m.log()
    stored = get_bytes(s3, f"{names['prefix']}/d.bin")
    assert len(stored) == len(data) and stored != data
