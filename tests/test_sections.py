"""The manifest sections moved:, imports: and lookups: in schemas/manifest.schema.json
(editors check them as you type) and at load: a wrong shape is one line, file:line:col."""
from __future__ import annotations

import jsonschema
import pytest
import yaml

from reconciler.config.manifest import load_manifest
from reconciler.config.validation import load_schema
from reconciler.errors import ManifestError

RESOURCES = """\
resources:
  - kind: valohai.datum
    name: d
    spec: {store: s, url: "s3://b/x"}
"""
GOOD = RESOURCES + """\
moved:
  - {from: valohai.datum.old, to: valohai.datum.d}
imports:
  - {to: valohai.datum.d, id: 0190a5e2-aaaa-bbbb-cccc-000000000000}
lookups:
  a6000: {kind: valdi.flavor, where: {gpu_type: "RTX A6000 48GB", gpu_count: 1}}
"""


def test_the_schema_accepts_the_sections_and_load_keeps_them_as_plain_data(tmp_path):
    jsonschema.validate({**yaml.safe_load(GOOD), "resources": []}, load_schema("manifest.schema.json"))
    (tmp_path / "m.yaml").write_text(GOOD)
    m = load_manifest([tmp_path / "m.yaml"], env={})
    assert [(x.source, x.target) for x in m.moved] == [("valohai.datum.old", "valohai.datum.d")]
    assert [(x.to, x.id) for x in m.imports] == [("valohai.datum.d", "0190a5e2-aaaa-bbbb-cccc-000000000000")]
    assert m.lookups["a6000"].where == {"gpu_type": "RTX A6000 48GB", "gpu_count": 1}
    import pickle
    assert pickle.loads(pickle.dumps(m)).lookups == m.lookups  # a cache can keep it


@pytest.mark.parametrize("section, where", [
    ("moved:\n  - {from: valohai.datum.old}\n", "m.yaml:6:5"),
    ("moved:\n  - {from: valohai.datum.old, to: 'not an address'}\n", "m.yaml:6:31"),
    ("imports:\n  - {to: valohai.datum.d, id: [1]}\n", "m.yaml:6:"),
    ("lookups:\n  x: {kind: valdi.gpu, where: {a: 1}}\n", "m.yaml:6:"),
    ("lookups:\n  x: {kind: valdi.flavor, where: {}}\n", "m.yaml:6:"),
    ("imports:\n  - {to: valohai.datum.d, id: a}\n  - {to: valohai.datum.d, id: b}\n", "m.yaml:7:"),
], ids=["moved-no-to", "moved-bad-address", "import-id-list", "lookup-unknown-kind", "lookup-empty-where",
        "imported-twice"])
def test_a_wrong_shape_is_one_line_with_file_line_and_column(tmp_path, section, where):
    (tmp_path / "m.yaml").write_text(RESOURCES + section)
    with pytest.raises(ManifestError) as e:
        load_manifest([tmp_path / "m.yaml"], env={})
    lines = str(e.value).strip().splitlines()
    assert len(lines) == 1 and where in lines[0], lines
