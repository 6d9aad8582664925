# SPDX-License-Identifier: Apache-2.0
"""--no-xattr: the mount answers no extended-attribute call (so the kernel stops asking for
security.capability before every write); everything else behaves as before, the umask
included (without POSIX ACLs the kernel applies it)."""
import errno
import os

import pytest

from helpers import get_bytes


def test_no_xattr_mount(mount, s3, names):
    m = mount(args=["--no-xattr"])
    p = m.path("out.txt")
    old = os.umask(0o027)
    try:
        with open(p, "wb") as f:
            for _ in range(1000):
                f.write(b"0123456789")
                f.flush()
    finally:
        os.umask(old)
    assert os.stat(p).st_mode & 0o777 == 0o640
    for call in (lambda: os.setxattr(p, "user.k", b"v"), lambda: os.getxattr(p, "user.k"),
                 lambda: os.removexattr(p, "user.k"), lambda: os.listxattr(p)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EOPNOTSUPP
    # Nothing reached the spool file either.
    assert os.listxattr(os.path.join(m.spool, "out.txt")) == []
    assert m.unmount() == 0
    assert get_bytes(s3, names["prefix"] + "/out.txt") == b"0123456789" * 1000
