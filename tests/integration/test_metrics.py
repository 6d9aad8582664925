# SPDX-License-Identifier: Apache-2.0
"""--metrics-listen: Prometheus' text format at /metrics, scraped with curl during a mount,
its counters checked against what was uploaded (boto3 says what S3 holds); --log-format json.
"""
import json
import re
import subprocess

from helpers import get_bytes, list_keys, wait_for, write

MiB = 1 << 20


def scrape(port):
    r = subprocess.run(["curl", "-sS", "--noproxy", "*", "-D", "-",
                        f"http://127.0.0.1:{port}/metrics"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition("\n\n")  # text=True: CRLF is read as LF
    assert head.startswith("HTTP/1.1 200"), head
    assert "text/plain; version=0.0.4" in head, head
    return body


def value(body, name, labels=""):
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", body, re.M)
    assert m, f"{name}{labels} not in:\n{body}"
    return float(m.group(1))


def metrics_port(m):
    line = wait_for(lambda: [l for l in m.log().splitlines() if "op=metrics" in l],
                    timeout=10, what="the op=metrics log line")[0]
    return int(re.search(r"port=(\d+)", line).group(1))


def test_counters_match_what_was_uploaded(pmount, proxy, s3, names):
    m = pmount(args=["--unmatched", "upload", "--metrics-listen", "127.0.0.1:0"])
    port = metrics_port(m)
    body = scrape(port)
    assert value(body, "artifuse_uploads_done_total") == 0
    assert 'artifuse_build_info{version="' in body
    # A refused connection first: the retry is counted by its reason.
    proxy.refuse()
    write(m, "a.txt", b"x" * 1000)
    wait_for(lambda: value(scrape(port), "artifuse_upload_retries_total",
                           '{reason="refused"}') >= 1, timeout=30, what="a refused retry")
    proxy.accept()
    write(m, "b.bin", b"y" * (3 * MiB))
    write(m, "c.bin", b"z" * (20 * MiB))  # multipart
    wait_for(lambda: len(list_keys(s3, names["prefix"])) == 3, timeout=60, what="3 objects")
    wait_for(lambda: value(scrape(port), "artifuse_uploads_done_total") == 3, timeout=10,
             what="3 uploads counted")
    body = scrape(port)
    assert value(body, "artifuse_uploaded_bytes_total") == 1000 + 3 * MiB + 20 * MiB
    assert value(body, "artifuse_uploads_failed_total") == 0
    assert value(body, "artifuse_uploads_started_total") >= 3
    assert value(body, "artifuse_upload_duration_seconds_count") == 3
    assert value(body, "artifuse_upload_duration_seconds_bucket", '{le="+Inf"}') == 3
    assert value(body, "artifuse_queue_pending_files") == 0
    assert value(body, "artifuse_queue_pending_bytes") == 0
    assert value(body, "artifuse_spool_bytes") >= 1000 + 23 * MiB
    assert get_bytes(s3, f"{names['prefix']}/a.txt") == b"x" * 1000
    # Every sample has its HELP and TYPE.
    for name in set(re.findall(r"^(artifuse_[a-z_]+?)(?:_bucket|_sum|_count)?[{ ]", body,
                               re.M)):
        assert f"# TYPE {name} " in body, name
    assert m.unmount() == 0


def test_pending_gauges_while_the_server_is_away(pmount, proxy, names):
    m = pmount(args=["--unmatched", "upload", "--metrics-listen", "127.0.0.1:0"])
    port = metrics_port(m)
    proxy.refuse()
    write(m, "held.bin", b"h" * 5000)
    wait_for(lambda: value(scrape(port), "artifuse_queue_pending_files") == 1, timeout=15,
             what="one pending file")
    assert value(scrape(port), "artifuse_queue_pending_bytes") == 5000
    proxy.accept()
    wait_for(lambda: value(scrape(port), "artifuse_queue_pending_files") == 0, timeout=60,
             what="the file to go up")
    assert m.unmount() == 0


def test_bad_listen_address_is_one_line(mount, names):
    import pytest
    with pytest.raises(AssertionError) as e:
        mount(args=["--metrics-listen", "localhost:99999"])
    assert "--metrics-listen localhost:99999" in str(e.value)


def test_log_format_json(mount, s3, names):
    m = mount(args=["--unmatched", "upload", "--log-format", "json"])
    write(m, "j.txt", b"json\n")
    wait_for(lambda: list_keys(s3, names["prefix"]), timeout=30, what="the object")
    assert m.unmount() == 0
    lines = [json.loads(l) for l in open(m.log_path) if l.strip()]
    done = [l for l in lines if l.get("op") == "upload" and l.get("status") == "done"]
    assert done, lines
    d = done[0]
    assert d["level"] == "info" and d["path"] == "j.txt" and d["bytes"] == 5
    assert d["key"] == f"{names['prefix']}/j.txt"
    assert list(d)[:2] == ["time", "level"]


def test_copies_and_deletes_are_counted(mount, s3, names):
    m = mount(args=["--unmatched", "upload", "--delete-on-unlink",
                    "--metrics-listen", "127.0.0.1:0"])
    port = metrics_port(m)
    write(m, "a.txt", b"a" * 100)
    wait_for(lambda: value(scrape(port), "artifuse_uploads_done_total") == 1, timeout=30,
             what="the upload")
    import os
    os.rename(m.path("a.txt"), m.path("b.txt"))  # unchanged: a server-side copy
    wait_for(lambda: value(scrape(port), "artifuse_copies_total") == 1, timeout=30,
             what="the copy")
    os.unlink(m.path("b.txt"))
    wait_for(lambda: value(scrape(port), "artifuse_deletes_total") == 2, timeout=30,
             what="a.txt's delete (renamed away) and b.txt's (unlinked)")
    assert list_keys(s3, names["prefix"]) == []
    assert m.unmount() == 0
