# SPDX-License-Identifier: Apache-2.0
"""Argo's rules on a real mount: an artifact with a full location of another kind (gcs) is
left alone (Argo's GCS driver saves it) and the log says so; variables in an artifact's path,
name and s3.key are substituted as Argo's controller does, so the real file is matched and
goes to the key Argo uses."""
import io
import json
import os
import subprocess
import tarfile
import zipfile

from helpers import (BIN, BUCKET, get_bytes, list_keys, log_lines, wait_for, wait_object, write,
                     write_spec)

OTHER_BUCKET = "artifuse-test"  # made by scripts/s3-server next to the repository's

ARTIFACTS = [
    ("to-gcs", "/tmp/gcs.txt", "gcs:\n  bucket: my-gcs-bucket\n  key: results/gcs.txt\n"),
    ("report-{{inputs.parameters.day}}", "/tmp/{{inputs.parameters.day}}/report.csv",
     "archive:\n  none: {}\n"),
    ("raw", "/tmp/raw.json",
     "archive:\n  none: {}\ns3:\n  key: \"{{workflow.name}}/{{inputs.parameters.day}}.json\"\n"),
]

INPUTS = """      inputs:
        parameters:
          - name: day
            default: "2026-12-04"
"""


def spec_with_inputs(tmp_path):
    p = write_spec(tmp_path, ARTIFACTS)
    text = p.read_text().replace("      outputs:\n", INPUTS + "      outputs:\n")
    p.write_text(text)
    return p


def test_other_locations_and_substitution_on_a_mount(mount, s3, names, tmp_path):
    m = mount(spec=spec_with_inputs(tmp_path))
    write(m, "gcs.txt", b"for gcs\n")
    os.mkdir(m.path("2026-12-04"))
    write(m, "2026-12-04/report.csv", b"a,b\n")
    write(m, "raw.json", b"{}\n")
    wait_object(s3, f"{names['prefix']}/report.csv", b"a,b\n")
    wait_object(s3, f"{names['workflow']}/2026-12-04.json", b"{}\n")
    assert m.unmount() == 0
    assert list_keys(s3, names["prefix"]) == [f"{names['prefix']}/report.csv"]
    said = [l for l in m.log().splitlines() if "not uploaded: a gcs location" in l]
    assert len(said) == 1 and 'path="gcs.txt"' in said[0] and 'artifact="to-gcs"' in said[0]


# ---- several artifacts with the same path ------------------------------------------------
# Argo saves each output artifact on its own (SaveArtifacts, workflow/executor/executor.go:
# 449-482 at v4.1.2): a path two artifacts declare goes to both keys, each packaged as its
# artifact says, in its own location.

def same_path_spec(tmp_path, names):
    ep = os.environ["AWS_ENDPOINT_URL"].split("://", 1)[1]
    return write_spec(tmp_path, [
        ("plain", "/tmp/out.txt", "archive:\n  none: {}\n"),
        ("packed", "/tmp/out.txt", "archive:\n  tar: {}\n"),
        ("elsewhere", "/tmp/out.txt",
         f"archive:\n  none: {{}}\ns3:\n  endpoint: {ep}\n  bucket: {OTHER_BUCKET}\n"
         f"  key: {names['workflow']}/elsewhere.txt\n"),
    ])


def tgz_members(data):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}


def test_one_path_several_artifacts_goes_to_each_key(mount, s3, names, tmp_path):
    m = mount(spec=same_path_spec(tmp_path, names), args=["--manifest", str(tmp_path / "m.jsonl")])
    write(m, "out.txt", b"the output\n")
    prefix = names["prefix"]
    wait_object(s3, f"{prefix}/out.txt", b"the output\n")
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, prefix) == [f"{prefix}/out.txt", f"{prefix}/packed.tgz"]
    assert tgz_members(get_bytes(s3, f"{prefix}/packed.tgz")) == {"out.txt": b"the output\n"}
    other = s3.get_object(Bucket=OTHER_BUCKET, Key=f"{names['workflow']}/elsewhere.txt")
    assert other["Body"].read() == b"the output\n"
    done = log_lines(m, "op=upload status=done", 'path="out.txt"')
    assert len(done) == 3, m.log()
    assert log_lines(m, "op=exit", "uploaded_files=3"), m.log()
    manifest = [json.loads(l) for l in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert sorted(e["key"] for e in manifest) == sorted(
        [f"{prefix}/out.txt", f"{prefix}/packed.tgz", f"{names['workflow']}/elsewhere.txt"])


def test_one_path_several_artifacts_unlink_deletes_each(mount, s3, names, tmp_path):
    m = mount(spec=same_path_spec(tmp_path, names))
    write(m, "out.txt", b"v1\n")
    prefix = names["prefix"]
    other = f"{names['workflow']}/elsewhere.txt"
    wait_for(lambda: len(log_lines(m, "op=upload status=done", 'path="out.txt"')) == 3,
             what="three uploads")
    os.unlink(m.path("out.txt"))
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, prefix) == []
    assert list_keys(s3, other, bucket=OTHER_BUCKET) == []


def test_keys_prints_each_artifact_of_a_path(tmp_path, names):
    spec = same_path_spec(tmp_path, names)
    r = subprocess.run([BIN, "keys", "--spec", str(spec), "--artifact-repository",
                        f"s3://{BUCKET}/argo-workflows/{{{{workflow.name}}}}/{{{{pod.name}}}}",
                        "--var", f"workflow.name={names['workflow']}",
                        "--var", f"pod.name={names['pod']}", "/tmp/out.txt"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [f"/tmp/out.txt\ts3://{BUCKET}/{names['prefix']}/out.txt",
                     f"/tmp/out.txt\ts3://{BUCKET}/{names['prefix']}/packed.tgz",
                     f"/tmp/out.txt\ts3://{OTHER_BUCKET}/{names['workflow']}/elsewhere.txt"]


def test_one_directory_two_archives(mount, s3, names, tmp_path):
    """A directory two artifacts declare, one tar and one zip: both archives at unmount."""
    spec = write_spec(tmp_path, [("t", "/tmp/out", "archive:\n  tar: {}\n"),
                                 ("z", "/tmp/out", "archive:\n  zip: {}\n")])
    m = mount(spec=spec)
    os.mkdir(m.path("out"))
    write(m, "out/a.txt", b"a\n")
    assert m.unmount() == 0, m.log()
    prefix = names["prefix"]
    assert list_keys(s3, prefix) == [f"{prefix}/t.tgz", f"{prefix}/z.zip"]
    assert tgz_members(get_bytes(s3, f"{prefix}/t.tgz")) == {"out/a.txt": b"a\n"}
    with zipfile.ZipFile(io.BytesIO(get_bytes(s3, f"{prefix}/z.zip"))) as z:
        assert z.read("out/a.txt") == b"a\n"


def test_nested_artifacts_each_get_the_file(mount, s3, names, tmp_path):
    """A file artifact inside a directory artifact: Argo saves both, so the file is in the
    directory's objects and at the file artifact's key; an unlink deletes both."""
    spec = write_spec(tmp_path, [("out", "/tmp/out", "archive:\n  none: {}\n"),
                                 ("best", "/tmp/out/best.txt", "archive:\n  none: {}\n")])
    m = mount(spec=spec)
    os.mkdir(m.path("out"))
    write(m, "out/best.txt", b"best\n")
    write(m, "out/other.txt", b"other\n")
    write(m, "out/gone.txt", b"gone\n")
    prefix = names["prefix"]
    wait_object(s3, f"{prefix}/out/gone.txt", b"gone\n")
    os.unlink(m.path("out/gone.txt"))
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, prefix) == [f"{prefix}/best.txt", f"{prefix}/out/best.txt",
                                      f"{prefix}/out/other.txt"]
    assert get_bytes(s3, f"{prefix}/out/best.txt") == b"best\n"
