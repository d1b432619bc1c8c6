"""Every `state` subcommand opens the state plan and apply would open (issue 25, item 8):
the manifests' `backend:`, --state, RECONCILER_STATE; `state migrate` retires the old
local file, and plans refuse to read it while the retired copy is there."""
from __future__ import annotations

import json

from conftest import cli

from reconciler.state.base import ResourceState, StateDoc
from reconciler.state.select import open_location

pytest_plugins = ["pg"]

MANIFEST = """\
backend: {{url: "{url}"}}
resources: []
"""


def test_state_rm_and_list_use_the_manifests_backend(tmp_path, pg_url, monkeypatch):
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.yaml").write_text(MANIFEST.format(url=pg_url))
    store = open_location(pg_url, {})
    doc = StateDoc()
    doc.resources["valdi.vm.a"] = ResourceState(kind="valdi.vm", id="vm-1")
    doc.resources["valdi.vm.b"] = ResourceState(kind="valdi.vm", id="vm-2")
    store.write(doc)
    code, out = cli("state", "list", ".")
    assert code == 0 and "valdi.vm.a\tvm-1" in out and "valdi.vm.b" in out, out
    code, out = cli("state", "rm", "valdi.vm.a", str(tmp_path))
    assert code == 0, out
    assert sorted(open_location(pg_url, {}).read().resources) == ["valdi.vm.b"]
    assert not (tmp_path / ".reconciler" / "state.json").exists()


def test_migrate_retires_the_old_file_and_plans_refuse_it(tmp_path, pg_url, monkeypatch):
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    (tmp_path / "main.yaml").write_text("resources: []\n")
    local = tmp_path / ".reconciler" / "state.json"
    store = open_location(str(local), {})
    doc = StateDoc()
    doc.resources["valdi.vm.a"] = ResourceState(kind="valdi.vm", id="vm-1")
    store.write(doc)
    code, out = cli("state", "migrate", "--to", pg_url, str(tmp_path))
    assert code == 0, out
    assert not local.exists()
    (retired,) = local.parent.glob("state.json.migrated-*")
    assert json.loads(retired.read_text())["resources"]["valdi.vm.a"]["id"] == "vm-1"
    code, out = cli("plan", str(tmp_path))  # no --state: the old place
    assert code == 1 and "state migrate" in out and retired.name in out, out
    local.write_text(retired.read_text())  # both exist: still refused
    code, out = cli("plan", str(tmp_path))
    assert code == 1 and retired.name in out, out
    code, out = cli("--state", pg_url, "state", "list", str(tmp_path))
    assert code == 0 and "valdi.vm.a" in out, out


DATUM = """\
backend: {{url: "{url}"}}
providers:
  valohai: {{token: "${{env.VALOHAI_TOKEN}}", project: "${{env.VALOHAI_PROJECT}}"}}
resources:
  - kind: valohai.datum
    name: {name}
    spec:
      store: sandbox-store
      url: s3://sandbox-bucket/data/train.csv
      tags: [{name}]
"""


def test_adopting_a_datum_another_workspace_manages_is_refused(tmp_path, pg_server, sandbox_env, monkeypatch):
    import uuid
    monkeypatch.delenv("RECONCILER_STATE", raising=False)
    base = pg_server + ("&" if "?" in pg_server else "?")
    first, second = (f"{base}workspace={n}-{uuid.uuid4().hex[:8]}" for n in ("team-a", "team-b"))
    for folder, url, name in (("a", first, "mine"), ("b", second, "theirs")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "main.yaml").write_text(DATUM.format(url=url, name=name))
    code, out = cli("apply", str(tmp_path / "a"), "--auto-approve")
    assert code == 0, out
    code, out = cli("plan", str(tmp_path / "b"))
    assert code == 1, out
    workspace = first.rsplit("workspace=", 1)[1]
    assert "valohai.datum.mine" in out and workspace in out, out
    code, out = cli("apply", str(tmp_path / "b"), "--auto-approve")
    assert code == 1 and open_location(second, {}).read().resources == {}, out
