# SPDX-License-Identifier: Apache-2.0
"""The S3 client against the real server: clock skew."""
import os
import shutil
import subprocess

import pytest

from conftest import BIN, BUCKET, get_bytes


@pytest.mark.parametrize("shift", ["+2h", "-1h"])
def test_clock_skew_is_corrected_from_the_servers_date(s3env, s3, names, tmp_path, shift):
    """A host clock hours off: S3 refuses the signature (RequestTimeTooSkewed, or a bare 403
    to HEAD); artifuse adopts the server's Date and signs again."""
    if not shutil.which("faketime"):
        pytest.skip("faketime is not installed (scripts/deps installs it)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, **s3env)
    r = subprocess.run(["faketime", "-f", shift, BIN, "run", "-v", "--spool", str(tmp_path / "spool"),
                        "--artifact-repository", f"s3://{BUCKET}/{names['prefix']}", str(mnt), "--",
                        "sh", "-c", f"echo skewed > {mnt}/a.txt"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'msg="clock skew corrected"' in r.stderr
    assert get_bytes(s3, f"{names['prefix']}/a.txt") == b"skewed\n"
