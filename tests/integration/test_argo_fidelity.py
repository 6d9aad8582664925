# SPDX-License-Identifier: Apache-2.0
"""Argo's rules on a real mount: an artifact with a full location of another kind (gcs) is
left alone (Argo's GCS driver saves it) and the log says so; variables in an artifact's path,
name and s3.key are substituted as Argo's controller does, so the real file is matched and
goes to the key Argo uses."""
import os

from helpers import list_keys, wait_object, write, write_spec

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
