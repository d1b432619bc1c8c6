"""`moved:` and `reconciler state mv`: rename a block, give it for_each, rename an
instance, without destroying or creating anything."""
from __future__ import annotations

import pytest
from conftest import Infra, api_calls, cli

DATUM = """\
resources:
  - kind: valohai.datum
    name: {name}
    spec:
      store: sandbox-store
      url: s3://sandbox-bucket/data/train.csv
      properties: {{owner: ml-team}}
{extra}"""


@pytest.fixture
def infra(tmp_path, sandbox_env):
    (tmp_path / "m.yaml").write_text(DATUM.format(name="old", extra=""))
    infra = Infra(tmp_path, "m.yaml")
    assert infra.apply()[0] == 0
    return infra


def _writes(admin) -> int:
    return sum(n for call, n in api_calls(admin).items() if not call.startswith("GET"))


def test_renaming_a_block_with_moved_plans_no_add_and_no_destroy(infra, admin, tmp_path):
    infra.manifest.write_text(DATUM.format(name="trainer", extra="moved:\n  - {from: valohai.datum.old, "
                                           "to: valohai.datum.trainer}\n"))
    code, out = infra.plan("--detailed-exitcode", "-o", str(tmp_path / "plan.bin"))
    assert code == 2, out
    assert "valohai.datum.old has moved to valohai.datum.trainer" in out
    assert "Plan: 0 to add, 0 to change, 0 to destroy, 1 moved." in out, out
    writes = _writes(admin)
    code, out = cli("--state", str(infra.path / "state.json"), "apply", str(tmp_path / "plan.bin"))
    assert code == 0, out
    assert _writes(admin) == writes  # nothing made, nothing deleted
    assert list(infra.state()["resources"]) == ["valohai.datum.trainer"]
    code, out = infra.plan("--detailed-exitcode")
    assert code == 0 and "No changes" in out, out


def test_a_block_moves_into_an_instance_and_instances_move(infra):
    infra.manifest.write_text(DATUM.format(name="part", extra="") .replace("    name: part\n",
                              "    name: part\n    for_each: [p0]\n")
                              + "moved:\n  - {from: valohai.datum.old, to: 'valohai.datum.part[p0]'}\n")
    code, out = infra.apply()
    assert code == 0 and "valohai.datum.old has moved to valohai.datum.part[p0]" in out, out
    assert list(infra.state()["resources"]) == ["valohai.datum.part[p0]"]
    # instance to instance, from the command line
    code, out = cli("--state", str(infra.path / "state.json"), "state", "mv", "valohai.datum.part[p0]",
                    "valohai.datum.part[first]", str(infra.path))
    assert code == 0 and "Moved valohai.datum.part[p0] to valohai.datum.part[first]" in out, out
    infra.edit("for_each: [p0]", "for_each: [first]")
    infra.edit("to: 'valohai.datum.part[p0]'", "to: 'valohai.datum.part[first]'")
    code, out = infra.plan("--detailed-exitcode")
    assert code == 0, out


def test_json_and_markdown_plans_show_moves(infra):
    import json

    import jsonschema

    from reconciler.config.validation import load_schema
    infra.manifest.write_text(DATUM.format(name="trainer", extra="moved:\n  - {from: valohai.datum.old, "
                                           "to: valohai.datum.trainer}\n"))
    code, out = infra.plan("--format", "json")
    doc = json.loads(out)
    jsonschema.validate(doc, load_schema("plan.schema.json"))
    assert doc["summary"]["moved"] == 1 and doc["summary"]["has_changes"] is True
    assert doc["resource_changes"][0]["moved_from"] == "valohai.datum.old"
    code, out = infra.plan("--format", "markdown")
    assert "<code>valohai.datum.old</code> has moved to <code>valohai.datum.trainer</code>" in out, out


def test_chains_resolve(infra):
    infra.manifest.write_text(DATUM.format(name="c", extra="moved:\n  - {from: valohai.datum.old, to: "
                                           "valohai.datum.b}\n  - {from: valohai.datum.b, to: valohai.datum.c}\n"))
    code, out = infra.plan()
    assert "valohai.datum.old has moved to valohai.datum.c" in out and "0 to destroy, 1 moved" in out, out


@pytest.mark.parametrize("moved, message", [
    ("  - {from: valohai.datum.old, to: valohai.datum.nowhere}\n", "m.yaml:9:31: moved[0].to"),
    ("  - {from: valohai.datum.old, to: valohai.datum.new}\n  - {from: valohai.datum.x, to: valohai.datum.new}\n",
     "two moves to valohai.datum.new"),
    ("  - {from: valohai.datum.old, to: valdi.vm.new}\n", "a move keeps the kind"),
    ("  - {from: valohai.datum.new, to: valohai.datum.old}\n", "valohai.datum.new is still declared"),
], ids=["undeclared-to", "two-to-one", "other-kind", "from-still-declared"])
def test_bad_moves_are_one_line_with_file_and_line(infra, moved, message, admin):
    infra.manifest.write_text(DATUM.format(name="new", extra="moved:\n" + moved))
    before = sum(api_calls(admin).values())
    code, out = infra.plan()
    assert code == 1 and message in out, out
    assert "m.yaml:" in out
    assert sum(api_calls(admin).values()) == before


def test_state_mv_refuses_a_taken_address_and_an_unknown_one(infra):
    state = str(infra.path / "state.json")
    code, out = cli("--state", state, "state", "mv", "valohai.datum.nope", "valohai.datum.x", str(infra.path))
    assert code == 1 and "not in the state" in out
    code, out = cli("--state", state, "state", "mv", "valohai.datum.old", "valdi.vm.x", str(infra.path))
    assert code == 1 and "keeps the kind" in out


def test_a_vm_and_a_data_asset_renamed_keep_their_objects(tmp_path, sandbox_env, admin):
    """Where a destroy and a create lose data and money: a VM and a Code Ocean asset."""
    body = """\
resources:
  - kind: valdi.ssh_key
    name: k
    spec: {{name: k, public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx1 me@example"}}
  - kind: valdi.vm
    name: {vm}
    spec:
      name: trainer
      provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e
      details: {{flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030, ssh_key_id: "${{valdi.ssh_key.k.id}}"}}
  - kind: codeocean.data_asset
    name: {asset}
    spec: {{name: Data, source: {{aws: {{bucket: sandbox-bucket, prefix: data/}}}}}}
"""
    (tmp_path / "m.yaml").write_text(body.format(vm="old", asset="old"))
    infra = Infra(tmp_path, "m.yaml")
    assert infra.apply()[0] == 0
    ids = {a.rsplit(".", 1)[0]: r["id"] for a, r in infra.state()["resources"].items()}
    (tmp_path / "m.yaml").write_text(body.format(vm="trainer", asset="data") + """\
moved:
  - {from: valdi.vm.old, to: valdi.vm.trainer}
  - {from: codeocean.data_asset.old, to: codeocean.data_asset.data}
""")
    code, out = infra.apply()
    assert code == 0 and "0 added, 0 changed, 0 destroyed, 2 moved" in out, out
    state = infra.state()["resources"]
    assert state["valdi.vm.trainer"]["id"] == ids["valdi.vm"]
    assert state["codeocean.data_asset.data"]["id"] == ids["codeocean.data_asset"]
    assert infra.plan("--detailed-exitcode")[0] == 0



TWO = """\
resources:
  - kind: valohai.datum
    name: a
    spec: {store: sandbox-store, url: s3://sandbox-bucket/data/train.csv}
  - kind: valohai.datum
    name: b
    spec: {store: sandbox-store, url: s3://sandbox-bucket/data/test.csv}
"""
CHAIN = """\
resources:
  - kind: valohai.datum
    name: c
    spec: {store: sandbox-store, url: s3://sandbox-bucket/data/train.csv}
moved:
  - {from: valohai.datum.a, to: valohai.datum.b}
  - {from: valohai.datum.b, to: valohai.datum.c}
"""


def test_a_chain_through_an_address_the_state_holds_loses_no_entry(tmp_path, sandbox_env):
    """a -> b -> c while the state holds both a and b: both resolve to c and only the first
    takes it; b keeps its entry (its removal planned in plain sight). Before, b's rename
    overwrote a's: c held b's datum (planned for replacement) and a's was left unmanaged."""
    (tmp_path / "m.yaml").write_text(TWO)
    infra = Infra(tmp_path, "m.yaml")
    assert infra.apply()[0] == 0
    ids = {a: e["id"] for a, e in infra.state()["resources"].items()}
    infra.manifest.write_text(CHAIN)
    code, out = infra.plan()
    assert code == 0, out
    assert "valohai.datum.a has moved to valohai.datum.c" in out, out
    assert "valohai.datum.b -> valohai.datum.c" in out and "was not carried out" in out, out
    code, out = infra.apply()
    assert code == 0, out
    assert infra.state()["resources"]["valohai.datum.c"]["id"] == ids["valohai.datum.a"], out
    code, out = infra.plan("--detailed-exitcode")
    assert code == 0, out
