"""What the tool made, it can always find, finish and remove (issue 25): interrupted
creates (pending entries), dangling ids, forgotten objects, short batch answers."""
from __future__ import annotations

import json

import pytest
from conftest import Infra, cli
from memkind import MemoryApi, MemoryKind

from reconciler.config.model import Lifecycle, Manifest, Position, Resource
from reconciler.engine.applier import Applier
from reconciler.engine.runner import Workspace, plan
from reconciler.state.local import LocalStateStore

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


# -- batches (item 4): one answer per item, a missing answer is in doubt -------------------


class ShortBatches(MemoryKind):
    """A batch endpoint that answers one item short: `made_last` says whether it acted on it."""

    made_last = True

    def create_many(self, ctx, specs):
        made = [self.create(ctx, s) for s in (specs if self.made_last else specs[:-1])]
        return made[:len(specs) - 1]

    def update_many(self, ctx, items):
        done = [self.update(ctx, *item) for item in (items if self.made_last else items[:-1])]
        return done[:len(items) - 1]


class ShortProvider:
    name = "test"

    def __init__(self, api, kind):
        self.api, self.kinds = api, [kind]

    def connect(self, config):
        return self.api


def run(api, kind, store, resources):
    manifest = Manifest(resources=resources, providers={}, provider_problems={}, variables={},
                        backend=None, files=["m.yaml"], digest="d", root=".")
    ws = Workspace(manifest=manifest, providers={"test": ShortProvider(api, kind)})
    state = store.read()
    result = plan(ws, state)
    Applier(result, ws.kinds, lambda k: ws.context(k), store, state).run()


def item(name, **spec):
    return Resource(kind="test.item", name=name, spec={"name": name, **spec},
                    position=Position("m.yaml", 1, 1), lifecycle=Lifecycle())


@pytest.mark.parametrize("made_last", [True, False], ids=["made-but-unanswered", "never-made"])
def test_a_short_create_batch_is_looked_up_never_marked_done(tmp_path, made_last):
    api, kind = MemoryApi(), ShortBatches()
    kind.made_last = made_last
    store = LocalStateStore(tmp_path / "state.json")
    run(api, kind, store, [item("a"), item("b"), item("c")])
    doc = store.read()
    assert doc.pending == {}
    assert sorted(doc.resources) == ["test.item.a", "test.item.b", "test.item.c"]
    names = sorted(o["name"] for o in api.objects.values())
    assert names == ["a", "b", "c"]  # found by its name when made, made once when not
    assert {doc.resources[f"test.item.{n}"].id for n in "abc"} == set(api.objects)


def test_a_short_update_batch_never_records_an_update_not_made(tmp_path):
    api, kind = MemoryApi(), ShortBatches()
    store = LocalStateStore(tmp_path / "state.json")
    run(api, kind, store, [item("a", value=1), item("b", value=1)])
    kind.made_last = False
    run(api, kind, store, [item("a", value=2), item("b", value=2)])
    assert sorted(o["value"] for o in api.objects.values()) == [2, 2]


# -- a state id that answers nothing (item 2) ----------------------------------------------
def test_a_dangling_id_refuses_with_the_exact_import_command(infra, admin):
    assert infra.apply()[0] == 0
    path = infra.path / "state.json"
    doc = json.loads(path.read_text())
    real = doc["resources"]["valdi.volume.scratch"]["id"]
    doc["resources"]["valdi.volume.scratch"]["id"] = "00000000-0000-4000-8000-000000000000"  # a restored backup
    path.write_text(json.dumps(doc))
    code, out = infra.plan()
    assert code == 1, out
    command = f"reconciler --state {path} import valdi.volume.scratch {real} {infra.path}"
    assert command in out, out
    assert len(live(admin, "valdi_volume")) == 1
    code, out = infra.apply()
    assert code == 1 and len(live(admin, "valdi_volume")) == 1, out  # no second volume
    code, out = cli(*command.split()[1:])  # run exactly as printed
    assert code == 0, out
    code, out = infra.plan("--detailed-exitcode")
    assert code == 0, out


# -- forgotten objects (item 3): apply, destroy, apply ------------------------------------
@pytest.mark.parametrize("example", ["valdi.yaml", "valohai.yaml", "codeocean.yaml"])
def test_apply_destroy_apply_converges_for_every_example(example, tmp_path, sandbox_env, admin):
    from crash_harness import duplicates
    work = Infra.example(tmp_path, example)
    code, out = work.apply()
    assert code == 0, out
    state = str(work.path / "state.json")
    for address, rs in work.state()["resources"].items():
        if rs.get("protected"):
            assert cli("--state", state, "state", "unprotect", address, str(work.path))[0] == 0
    code, out = work.destroy()
    assert code == 0, out
    code, out = work.apply()
    assert code == 0, out
    assert duplicates(admin) == 0
    code, out = work.plan("--detailed-exitcode")
    assert code == 0, out


def test_a_forgotten_key_is_adopted_when_unchanged_and_refused_when_its_content_moved(tmp_path, sandbox_env, admin):
    work = Infra.example(tmp_path, "valdi.yaml")
    text = work.manifest.read_text()
    work.manifest.write_text(text[:text.index("  # A key pair VALDI generates")])  # the deploy key alone
    assert work.apply()[0] == 0
    assert work.destroy()[0] == 0
    code, out = work.plan()
    assert code == 0 and "made by an earlier apply and forgotten" in out, out
    (work.path / "keys" / "deploy.pub").write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherKeyOth other@host\n")
    code, out = work.plan()
    assert code == 1 and "made by an earlier apply and forgotten" in out, out
    assert f"reconciler --state {work.path / 'state.json'} import valdi.ssh_key.deploy" in out, out


# -- an interrupted replace (item 5) -------------------------------------------------------
def test_an_interrupted_replace_leaves_no_drift_the_plan_does_not_show(infra, admin):
    assert infra.apply()[0] == 0
    old = infra.state()["resources"]["valdi.volume.scratch"]
    infra.edit("bucket_name: scratch-bucket", "bucket_name: scratch-bucket-2")
    assert infra.apply()[0] == 0  # the replace, to completion
    # the state a kill during the replace leaves: the old record, the new object's journal
    path = infra.path / "state.json"
    doc = json.loads(path.read_text())
    new_spec = doc["resources"]["valdi.volume.scratch"]["last_applied"]
    doc["resources"]["valdi.volume.scratch"] = old
    doc["pending"]["valdi.volume.scratch"] = {"kind": "valdi.volume", "spec": new_spec, "started_at": 0}
    path.write_text(json.dumps(doc))
    code, out = infra.apply()
    assert code == 0, out
    code, out = infra._run("drift")
    assert code == 0, out
    assert infra.state()["resources"]["valdi.volume.scratch"]["last_applied"]["bucket_name"] == "scratch-bucket-2"
    assert [v["bucket_name"] for v in live(admin, "valdi_volume")] == ["scratch-bucket-2"]


# -- state entries are values (item 9) -----------------------------------------------------
def test_state_entries_are_values_and_every_edit_reaches_the_file(tmp_path):
    import dataclasses

    from reconciler.state.base import ResourceState, StateDoc
    store = LocalStateStore(tmp_path / "state.json")
    doc = StateDoc()
    doc.resources["valdi.vm.a"] = ResourceState(kind="valdi.vm", id="vm-1", protected=True)
    store.write(doc)
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.resources["valdi.vm.a"].protected = False  # an in-place edit the encoder would not see
    doc.resources["valdi.vm.a"] = dataclasses.replace(doc.resources["valdi.vm.a"], protected=False)
    store.write(doc)
    assert json.loads((tmp_path / "state.json").read_text())["resources"]["valdi.vm.a"]["protected"] is False


TWO_DATUMS = """\
providers:
  valohai: {token: "${env.VALOHAI_TOKEN}", project: "${env.VALOHAI_PROJECT}"}
resources:
  - kind: valohai.datum
    name: mine
    spec: {store: sandbox-store, url: "s3://sandbox-bucket/data/train.csv", tags: [ours]}
  - kind: valohai.datum
    name: theirs
    spec: {store: sandbox-store, url: "s3://sandbox-bucket/data/test.csv", tags: [ours]}
"""


@pytest.mark.parametrize("quirks", [[], ["valohai-metadata-per-datum"]], ids=["default", "per-datum"])
def test_one_datum_of_another_project_fails_alone_in_its_batch(quirks, tmp_path, sandbox_env, admin):
    import httpx

    from reconciler.emulator.core import SANDBOX
    admin.post("/_emulator/config", json={"quirks": ["valohai-adopt-store-scoped", *quirks]}).raise_for_status()
    other = admin.post("/_emulator/valohai/projects", json={"name": "other"}).json()["id"]
    httpx.post(f"{admin.base_url}/api/v0/stores/{SANDBOX['valohai_store_id']}/adopt/",
               headers={"Authorization": f"Token {SANDBOX['valohai_token']}"},
               json={"url": "s3://sandbox-bucket/data/test.csv", "project": other}).raise_for_status()
    d = tmp_path / "infra"
    d.mkdir()
    (d / "main.yaml").write_text(TWO_DATUMS)
    work = Infra(d, "main.yaml")
    code, out = work.apply()
    assert code == 1 and "another project" in out, out
    failed = [line for line in out.splitlines() if "valohai.datum.mine" in line and "fail" in line.lower()]
    assert not failed, out
    assert "valohai.datum.mine" in work.state()["resources"]


def test_kill_9_after_the_create_then_destroy_leaves_nothing(infra, admin, sandbox_env):
    import os

    from crash_harness import kill_at
    killed_at, state = kill_at(0, infra.path, infra.path, admin, {**os.environ, **sandbox_env})
    assert killed_at and killed_at.startswith("POST"), killed_at
    assert len(live(admin, "valdi_volume")) == 1 and "valdi.volume.scratch" in json.loads(state.read_text())["pending"]
    code, out = infra.destroy()
    assert code == 0, out
    assert live(admin, "valdi_volume") == []
    assert json.loads(state.read_text())["pending"] == {}


def test_the_import_command_carries_the_flags_and_paths_of_the_run():
    from reconciler.engine.planner import PlanOptions
    options = PlanOptions(flags=("--sandbox",), paths=("my infra/",))
    assert options.import_command("valdi.ssh_key.deploy", "k-1") == \
        "reconciler --sandbox import valdi.ssh_key.deploy k-1 'my infra/'"
