"""Functions in ${...}: a table of what each gives, errors as one line with
file:line:col, for_each over range(), and file() confined and pinned by saved plans."""
from __future__ import annotations

import pytest
from conftest import Infra, cli

from reconciler.config.manifest import load_manifest
from reconciler.errors import ManifestError

HEAD = "variables:\n  team: ML-Team\n  m: {a: 1, b: 2}\nresources:\n  - kind: valohai.datum\n    name: d\n" \
       "    spec:\n      store: sandbox-store\n      url: s3://sandbox-bucket/x\n"


def _value(tmp_path, expression: str):
    (tmp_path / "m.yaml").write_text(HEAD + f"      properties: {{v: '{expression}'}}\n")
    return load_manifest([tmp_path / "m.yaml"], env={}).resources[0].spec["properties"]["v"]


@pytest.mark.parametrize("expression, expected", [
    ("${range(3)}", [0, 1, 2]),
    ("${range(2, 5)}", [2, 3, 4]),
    ('${format("gpu-%02d-%s", 3, "a")}', "gpu-03-a"),
    ("${lower(var.team)}", "ml-team"),
    ("${upper(var.team)}", "ML-TEAM"),
    ('${replace("a-b-c", "-", "_")}', "a_b_c"),
    ('${join(",", ["a", 1])}', "a,1"),
    ('${split("/", "x/y")}', ["x", "y"]),
    ("${keys(var.m)}", ["a", "b"]),
    ("${values(var.m)}", [1, 2]),
    ("${length(var.m)}", 2),
    ('${merge(var.m, {"b": 3})}', {"a": 1, "b": 3}),
    ('${concat([1], [2, 3])}', [1, 2, 3]),
    ('${lookup(var.m, "c", 0)}', 0),
    ('${lookup(var.m, "a", 0)}', 1),
    ('${coalesce(null, "", "z")}', "z"),
    ('run-${lower("A")}-${length("abc")}', "run-a-3"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_function(tmp_path, expression, expected):
    assert _value(tmp_path, expression) == expected


@pytest.mark.parametrize("expression, message", [
    ("${range()}", "range() takes 1 to 3 arguments, got 0"),
    ('${lower(1)}', "lower(): argument 1 must be a string, got a number"),
    ('${replace("a", "b")}', "replace() takes 3 arguments, got 2"),
    ("${nosuch(1)}", "no function nosuch()"),
    ('${lookup(var.m, "z")}', "lookup(): no key 'z'"),
    ("${lower(valohai.datum.d.id)}", "known only after apply"),
    ('${file("../outside.txt")}', "outside the manifest folder"),
    ('${file(".reconciler/state.json")}', "inside .reconciler/"),
    # 30 strings of 48,889 characters: refused before the 1.5 MB string is built
    ('${format("' + "%s" * 30 + '", ' + ", ".join(['join("-", range(10000))'] * 30) + ")}",
     "format() could make a string of 1,466,730 characters; the limit is 1,000,000"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("$") else None)
def test_wrong_arity_or_type_is_one_line_with_file_line_and_column(tmp_path, expression, message):
    with pytest.raises(ManifestError) as e:
        _value(tmp_path, expression)
    lines = str(e.value).strip().splitlines()
    assert len(lines) == 1 and f"{tmp_path / 'm.yaml'}:10:" in lines[0] and message in lines[0], lines


def test_range_makes_one_instance_per_number(tmp_path, sandbox_env):
    (tmp_path / "m.yaml").write_text("""\
resources:
  - kind: valohai.datum
    name: part
    for_each: ${range(3)}
    spec:
      store: sandbox-store
      url: ${format("s3://sandbox-bucket/data/part-%d.csv", each.value)}
""")
    code, out = Infra(tmp_path, "m.yaml").plan()
    assert code == 0 and "Plan: 3 to add" in out, out
    for i in range(3):
        assert f"+ valohai.datum.part[{i}]" in out and f"part-{i}.csv" in out


ASSET_DESCRIBED_BY = """\
resources:
  - kind: codeocean.data_asset
    name: data
    spec:
      name: Data
      description: ${file("%s")}
      source: {aws: {bucket: sandbox-bucket, prefix: data/}}
"""


def test_file_is_read_beside_the_manifest_and_pinned_by_saved_plans(tmp_path, sandbox_env):
    (tmp_path / "note.txt").write_text("first")
    (tmp_path / "m.yaml").write_text(ASSET_DESCRIBED_BY % "note.txt")
    infra = Infra(tmp_path, "m.yaml")
    code, out = infra.plan("-o", str(tmp_path / "plan.bin"))
    assert code == 0 and '"first"' in out, out
    (tmp_path / "note.txt").write_text("second")
    code, out = cli("--state", str(tmp_path / "state.json"), "apply", str(tmp_path / "plan.bin"))
    assert code == 1 and "stale" in out and "description" in out, out
    assert "file(note.txt): the file changed since the plan was made" in out, out


def test_file_reads_beside_the_declaring_manifest_wherever_it_is_run(tmp_path, monkeypatch):
    (tmp_path / "key.pub").write_text("ssh-ed25519 AAAA me")
    (tmp_path / "m.yaml").write_text(HEAD.replace("variables:\n", "variables:\n  key: '${file(\"key.pub\")}'\n")
                                     + "      properties: {k: '${var.key}', v: '${upper(file(\"key.pub\"))}'}\n")
    monkeypatch.chdir(tmp_path.parent)
    props = load_manifest([tmp_path / "m.yaml"], env={}).resources[0].spec["properties"]
    assert props == {"k": "ssh-ed25519 AAAA me", "v": "SSH-ED25519 AAAA ME"}


def test_a_private_key_read_by_file_is_never_shown(tmp_path, sandbox_env):
    """`${file("deploy.pem")}` in a field with no secret's name: a private key is a secret
    whatever field holds it, so the plan (every format) and the plan file mask it."""
    body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
    (tmp_path / "deploy.pem").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n"
                                         "-----END OPENSSH PRIVATE KEY-----\n")
    (tmp_path / "m.yaml").write_text(ASSET_DESCRIBED_BY % "deploy.pem")
    infra = Infra(tmp_path, "m.yaml")
    for fmt in ("text", "json", "markdown"):
        code, out = infra.plan("--format", fmt, "-o", str(tmp_path / "plan.bin"))
        assert code == 0 and "description" in out and body not in out, out
        assert body not in (tmp_path / "plan.bin").read_text()
