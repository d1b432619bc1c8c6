"""schemas/manifest.schema.json as an editor sees it (`# yaml-language-server: $schema=...`):
the spec is checked against the kind's own schema file, picked by `kind`, so a typo in a
spec field and an unknown kind are flagged; every example validates with no error. The
per-kind files are resolved by their $id, as an editor resolves them beside the file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from tracked import tracked_files

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS, EXAMPLES = ROOT / "schemas", ROOT / "examples"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    registry = Registry()
    for f in SCHEMAS.glob("*.schema.json"):
        schema = json.loads(f.read_text())
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    return Draft202012Validator(json.loads((SCHEMAS / "manifest.schema.json").read_text()), registry=registry)


def errors(validator, document: dict) -> list:
    return sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))


def example_documents() -> list:
    """Every YAML document of the manifests in examples/ that git tracks."""
    files = tracked_files(EXAMPLES)
    names = sorted(str(p) for p in files) if files is not None else sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    out = []
    for name in names:
        if "/" in name or not name.endswith((".yaml", ".yml")):
            continue  # examples/ci/ holds CI pipelines, not manifests
        for i, doc in enumerate(yaml.safe_load_all((EXAMPLES / name).read_text())):
            out.append(pytest.param(doc, id=f"{name}#{i}"))
    return out


@pytest.mark.parametrize("document", example_documents())
def test_every_example_validates_clean(validator, document):
    assert [e.message for e in errors(validator, document)] == []


VM = {"kind": "valdi.vm", "name": "trainer", "spec": {"name": "trainer",
    "provider_id": "a45088e0-1681-446e-9a3e-3ed9dfc3d57e",
    "details": {"flavor_id": "94d76997-44ec-4f1e-8291-231de42b6030", "ssh_key_id": "k"}}}


def test_a_spec_typo_is_flagged_through_the_kinds_schema(validator):
    assert errors(validator, {"resources": [VM]}) == []
    typo = {**VM, "spec": {**VM["spec"], "detials": VM["spec"]["details"]}}
    found = errors(validator, {"resources": [typo]})
    assert found and any("detials" in e.message for e in found)
    assert all(list(e.absolute_path)[:2] == ["resources", 0] for e in found)


def test_an_unknown_kind_is_flagged_with_the_list_of_kinds(validator):
    found = errors(validator, {"resources": [{**VM, "kind": "valdi.vms"}]})
    messages = " ".join(e.message for e in found)
    assert "'valdi.vms' is not one of" in messages and "valdi.vm" in messages and "valohai.datum" in messages


def test_for_each_and_count_together_are_flagged(validator):
    both = {**VM, "for_each": ["a"], "count": 2}
    assert errors(validator, {"resources": [both]})
    assert errors(validator, {"resources": [{**VM, "count": 2}]}) == []


def test_x_keys_and_templates_are_free_but_other_unknown_keys_are_not(validator):
    assert errors(validator, {"x-defaults": {"a": 1}, "templates": [1], "resources": []}) == []
    assert errors(validator, {"y-defaults": {}, "resources": []})


def test_every_kind_of_every_provider_is_selectable():
    from reconciler.providers import load_providers

    kinds = {k.name for p in load_providers().values() for k in p.kinds}
    schema = json.loads((SCHEMAS / "manifest.schema.json").read_text())
    parts = schema["$defs"]["resource_of_known_kind"]["allOf"]
    listed = next(p["properties"]["kind"]["enum"] for p in parts if "properties" in p)
    selected = {p["if"]["properties"]["kind"]["const"] for p in parts if "if" in p}
    assert set(listed) == selected == kinds
