"""validate(): spec schemas with exact positions, references skipped by the schema and
checked against the manifest, depends_on, deletion policies, ignore_changes,
check_offline, provider problems; load_schema from the checkout and from a wheel."""
from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reconciler.config.manifest import load_manifest
from reconciler.config.model import Ref
from reconciler.config.validation import check_local_path, load_schema, validate
from reconciler.providers.contract import Kind

SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["size"],
    "properties": {
        "size": {"type": "integer", "minimum": 1},
        "shape": {"enum": ["small", "large"]},
        "owner": {"type": "string", "pattern": "^[a-z]+$"},
        "nested": {"type": "object", "additionalProperties": False,
                   "properties": {"count": {"type": "integer"}, "free": {"type": "object"}}},
        "items": {"type": "array", "items": {"type": "object", "required": ["id"],
                                             "properties": {"id": {"type": "string"}}}},
        "token": {"type": "string", "minLength": 10},
        "file": {"type": "string"},
    },
}


class Thing(Kind):
    name = "t.thing"
    schema = SCHEMA
    sensitive = {"token"}
    outputs = {"id", "address"}
    deletion_policies = ("delete", "orphan")

    def __init__(self):
        self.checked = []

    def check_offline(self, resources):
        self.checked.extend(r.address for r in resources)
        return [p for r in resources if "file" in r.spec
                for p in [check_local_path(r, "spec.file", r.spec["file"])] if p]

    def observe(self, ctx, wanted):  # pragma: no cover - validation never calls the API
        raise AssertionError("validation made an API call")

    create = update = delete = diff = observe


def run(tmp_path, body: str, env=None, kinds=None):
    f = tmp_path / "m.yaml"
    f.write_text(textwrap.dedent(body).lstrip("\n"))
    m = load_manifest([f], env or {})
    kinds = kinds if kinds is not None else {"t.thing": Thing()}
    return [str(p).replace(f"{f}:", "") for p in validate(m, kinds)]


def test_a_valid_manifest_has_no_problems_and_check_offline_runs(tmp_path):
    thing = Thing()
    (tmp_path / "ok.txt").write_text("x")
    assert run(tmp_path, """
        resources:
          - {kind: t.thing, name: a, spec: {size: 1, file: ok.txt}}
          - {kind: t.thing, name: b, spec: {size: 2, owner: "${t.thing.a.address}"}}
        """, kinds={"t.thing": thing}) == []
    assert thing.checked == ["t.thing.a", "t.thing.b"]


def test_schema_errors_point_at_the_failing_field(tmp_path):
    assert run(tmp_path, """
        resources:
          - kind: t.thing
            name: a
            spec:
              size: "big"
              shape: larg
              nested: {count: 1, cuont: 2}
              items:
                - {id: x}
                - {name: y}
        """) == [
        "5:7: t.thing.a.spec.size: expected integer, got string 'big'",
        "6:7: t.thing.a.spec.shape: 'larg' is not one of 'small', 'large'; did you mean 'large'?",
        "7:26: t.thing.a.spec.nested.cuont: unknown field 'cuont'; did you mean 'count'?",
        "10:11: t.thing.a.spec.items[1]: missing required field 'id'",
    ]


def test_required_points_at_the_parent_and_spec_may_be_absent(tmp_path):
    assert run(tmp_path, "resources:\n  - kind: t.thing\n    name: a\n") == [
        "2:5: t.thing.a.spec: missing required field 'size'"]


def test_references_pass_any_schema_check(tmp_path):
    assert run(tmp_path, """
        resources:
          - {kind: t.thing, name: a, spec: {size: 1}}
          - kind: t.thing
            name: b
            spec:
              size: "${t.thing.a.id}"
              shape: "${t.thing.a.id}"
              owner: "x-${t.thing.a.address}"
              nested: "${t.thing.a.id}"
        """) == []


def test_reference_problems(tmp_path):
    assert run(tmp_path, """
        resources:
          - kind: t.thing
            name: a
            spec:
              size: "${t.thing.b.nope}"
              owner: "${t.thing.zz.id}"
              shape: "${t.thing.a.id}"
          - {kind: t.thing, name: b, spec: {size: 1}}
        """) == [
        "5:7: t.thing.a.spec.size: ${t.thing.b.nope}: t.thing has no attribute 'nope' (it has: address, id)",
        "6:7: t.thing.a.spec.owner: ${t.thing.zz.id} refers to t.thing.zz, which is not in the manifests; did you mean t.thing.b?",
        "7:7: t.thing.a.spec.shape: ${t.thing.a.id} refers to the resource itself",
    ]


def test_unknown_kind_lists_the_known_ones(tmp_path):
    assert run(tmp_path, "resources:\n  - {kind: t.thnig, name: a}\n") == [
        "2:6: t.thnig.a.kind: unknown kind 't.thnig'; did you mean 't.thing'? (known kinds: t.thing)"]


def test_envelope_checks(tmp_path):
    assert run(tmp_path, """
        resources:
          - kind: t.thing
            name: a
            spec: {size: 1}
            deletion_policy: release
            depends_on: [t.thing.b, t.thing.c]
            lifecycle: {ignore_changes: [size, nested.count, nested.free.anything, spec.shape, nested.cnt, "a..b"]}
          - {kind: t.thing, name: b, spec: {size: 1}}
        """) == [
        "5:5: t.thing.a.deletion_policy: 'release' is not a deletion policy of t.thing; did you mean 'delete'? (allowed: delete, orphan)",
        "6:29: t.thing.a.depends_on[1]: t.thing.c is not in the manifests; did you mean t.thing.b?",
        "7:88: t.thing.a.lifecycle.ignore_changes[4]: 'nested.cnt': t.thing has no field 'cnt'; did you mean 'count'?",
        "7:100: t.thing.a.lifecycle.ignore_changes[5]: 'a..b' is not a field path (e.g. details.flavor_id)",
    ]


def test_secret_values_never_appear_in_messages(tmp_path):
    out = run(tmp_path, "resources:\n  - {kind: t.thing, name: a, spec: {size: 1, token: hunter2}}\n")
    assert out == ["2:46: t.thing.a.spec.token: the value does not satisfy 'minLength: 10'"]


def test_provider_block_problems_wait_for_the_connection_not_validate(tmp_path):
    """validate runs without credentials; the runner raises these when the provider connects."""
    f = tmp_path / "m.yaml"
    f.write_text('providers:\n  valdi: {email: "${env.NOPE}"}\nresources:\n  - {kind: valdi.vm, name: a, spec: {size: 1}}\n')
    m = load_manifest([f], {})
    assert validate(m, {"valdi.vm": Thing()}) == []
    assert [str(p) for p in m.provider_problems["valdi"]] == [
        f"{f}:2:11: providers.valdi.email: environment variable NOPE is not set (${{env.NOPE}})"]


def test_check_local_path(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "a.pub").write_text("k")
    (tmp_path / "m.yaml").write_text("resources:\n  - {kind: t.thing, name: a, spec: {size: 1, file: x}}\n")
    r = load_manifest([tmp_path], {}).resources[0]
    assert check_local_path(r, "spec.file", "keys/a.pub") is None
    assert check_local_path(r, "spec.file", str(tmp_path / "keys" / "a.pub")) is None  # absolute, inside
    assert check_local_path(r, "spec.file", Ref("t.thing.b", "id")) is None
    for value, fragment in [("keys", "is a directory"), ("../x", "outside the manifest folder"),
                            ("/etc/hostname", "outside the manifest folder"), ("keys/../../x", "outside"),
                            ("nope.pub", "does not exist"), ("", "expected a file path")]:
        problem = check_local_path(r, "spec.file", value)
        assert problem and fragment in problem.message, value
        assert (problem.line, problem.column, problem.path) == (2, 46, "t.thing.a.spec.file")


def test_every_schema_in_the_checkout_loads_and_is_valid_2020_12():
    from jsonschema import Draft202012Validator

    names = sorted(p.name for p in (Path(__file__).parent.parent / "schemas").glob("*.json"))
    assert "manifest.schema.json" in names
    for name in names:
        schema = load_schema(name)
        Draft202012Validator.check_schema(schema)
        assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema", name


def test_every_example_passes_the_envelope_schema():
    examples = Path(__file__).parent.parent / "examples"
    files = sorted(examples.glob("*.y*ml"))
    assert files, f"no examples in {examples}: nothing would be checked"
    for f in files:
        assert load_manifest([f], {k: "x" for k in _env_names(f.read_text())}).resources, f"{f.name} declares nothing"


def _env_names(text: str) -> set[str]:
    import re

    return set(re.findall(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}", text))


def test_a_plain_pip_install_ships_the_schemas(tmp_path):
    """`pip install .` (not editable) puts schemas/ in the wheel as reconciler/schemas/."""
    root = Path(__file__).parent.parent
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # the dependencies come from this interpreter's site-packages (no network needed); its
    # editable reconciler does not, because .pth files are not read from PYTHONPATH
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(site.getsitepackages())}
    pip = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", str(root)],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    if pip.returncode != 0:
        pytest.skip(f"pip install failed here: {pip.stderr[-300:]}")
    code = ("import json, reconciler, reconciler.config.validation as v; from pathlib import Path;"
            "assert 'site-packages' in reconciler.__file__, reconciler.__file__;"
            "v.TOP_SCHEMAS = Path('/nonexistent');"
            "print(json.dumps(sorted(v.load_schema('manifest.schema.json')['properties'])))")
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["backend", "imports", "lookups", "moved", "outputs", "policies", "providers",
                                      "resources", "templates", "variables"]
