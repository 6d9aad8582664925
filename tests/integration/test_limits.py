# SPDX-License-Identifier: Apache-2.0
"""A size past what the spool's filesystem allows is EFBIG, as that filesystem says it
(pjdfstest truncate/12.t and ftruncate/12.t), not ENOSPC; a size that fits but has no room
is still ENOSPC."""
import errno
import os

import pytest

HUGE = 999999999999999999


def test_truncate_past_the_filesystem_limit_is_efbig(mount):
    m = mount(args=["--unmatched", "upload"])
    p = m.path("big")
    open(p, "w").close()
    with pytest.raises(OSError) as e:
        os.truncate(p, HUGE)
    assert e.value.errno == errno.EFBIG
    with open(p, "r+") as f:
        with pytest.raises(OSError) as e:
            os.ftruncate(f.fileno(), HUGE)
    assert e.value.errno == errno.EFBIG
    # The same as the spool's own filesystem says.
    local = os.path.join(m.spool_root, "probe")
    with open(local, "w") as f:
        with pytest.raises(OSError) as e:
            os.ftruncate(f.fileno(), HUGE)
    assert e.value.errno == errno.EFBIG
    os.unlink(local)
    assert os.path.getsize(p) == 0


def test_truncate_that_fits_without_room_is_enospc(mount):
    m = mount(args=["--unmatched", "upload", "--spool-limit", "1M", "--keep"])
    p = m.path("f")
    open(p, "w").close()
    with pytest.raises(OSError) as e:
        os.truncate(p, 2 << 20)
    assert e.value.errno == errno.ENOSPC
