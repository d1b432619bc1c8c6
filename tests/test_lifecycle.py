"""What the tool made, it can always find, finish and remove (issue 25): interrupted
creates (pending entries), dangling ids, forgotten objects, short batch answers."""
from __future__ import annotations

import json

import pytest
from conftest import Infra, cli

VOLUME = """\
providers:
  valdi: {email: "${env.VALDI_EMAIL}", password: "${env.VALDI_PASSWORD}"}
resources:
  - kind: valdi.volume
    name: scratch
    spec:
      bucket_name: scratch-bucket
      folders: [raw]
"""


@pytest.fixture
def infra(tmp_path, sandbox_env):
    d = tmp_path / "infra"
    d.mkdir()
    (d / "main.yaml").write_text(VOLUME)
    return Infra(d, "main.yaml")


def live(admin, kind: str) -> list[dict]:
    items = admin.get(f"/_emulator/docs/{kind}").json()["items"]
    return [d for d in items if not d.get("deleted") and not d.get("purged")]


def interrupt(infra: Infra, address: str) -> None:
    """The state a kill -9 after the create's POST leaves: the object exists in the
    service, the state only has the journaled intent."""
    path = infra.path / "state.json"
    doc = json.loads(path.read_text())
    rs = doc["resources"].pop(address)
    doc["pending"][address] = {"kind": rs["kind"], "spec": rs["last_applied"], "started_at": 0}
    path.write_text(json.dumps(doc))


def test_destroy_removes_what_an_interrupted_create_made(infra, admin):
    assert infra.apply()[0] == 0
    interrupt(infra, "valdi.volume.scratch")
    code, out = cli("--state", str(infra.path / "state.json"), "state", "list", str(infra.path))
    assert "valdi.volume.scratch" in out and "pending" in out, out
    code, out = infra.destroy()
    assert code == 0, out
    assert live(admin, "valdi_volume") == []
    assert infra.state()["pending"] == {} and infra.state()["resources"] == {}


def test_a_removed_block_removes_what_an_interrupted_create_made(infra, admin):
    assert infra.apply()[0] == 0
    interrupt(infra, "valdi.volume.scratch")
    infra.manifest.write_text(VOLUME.split("resources:")[0] + "resources: []\n")
    code, out = infra.plan()
    assert "valdi.volume.scratch" in out and "interrupted create" in out, out
    code, out = infra.apply()
    assert code == 0, out
    assert live(admin, "valdi_volume") == []
    assert infra.state()["pending"] == {}


def test_a_pending_entry_that_made_nothing_is_dropped(infra, admin):
    assert infra.apply()[0] == 0
    assert infra.destroy()[0] == 0
    path = infra.path / "state.json"
    doc = json.loads(path.read_text())
    doc["pending"]["valdi.volume.gone"] = {"kind": "valdi.volume", "started_at": 0,
                                           "spec": {"bucket_name": "never-made", "folders": []}}
    path.write_text(json.dumps(doc))
    code, out = infra.destroy()
    assert code == 0, out
    assert infra.state()["pending"] == {}
