"""A large batch goes to the kind a chunk at a time: each chunk's creates are journaled
just before it starts and recorded as soon as it ends, so what a batch holds in memory is
bounded and a crash between chunks loses and duplicates nothing."""
from __future__ import annotations

import json

from memkind import MemoryApi, MemoryKind, MemoryProvider

from reconciler.config.model import Manifest, Position, Resource
from reconciler.engine import applier
from reconciler.engine.applier import Applier
from reconciler.engine.planner import PlanOptions
from reconciler.engine.runner import Workspace, plan
from reconciler.state.local import LocalStateStore

NAMES = ["a", "b", "c", "d", "e"]


class BatchKind(MemoryKind):
    """create_many notes what the state file holds when each call starts."""

    def __init__(self, state_path):
        self.state_path = state_path
        self.seen: list[tuple[list[str], list[str], list[str]]] = []  # (asked, recorded, journaled)
        self.snapshots: list[str] = []

    def create_many(self, ctx, specs):
        text = self.state_path.read_text()
        doc = json.loads(text)
        self.seen.append(([s["name"] for s in specs], sorted(doc["resources"]), sorted(doc["pending"])))
        self.snapshots.append(text)
        ctx.api.log("create_many", len(specs))
        return [self.create(ctx, s) for s in specs]


def apply(tmp_path, api: MemoryApi, kind: MemoryKind) -> LocalStateStore:
    provider = MemoryProvider(api)
    provider.kinds = [kind]
    resources = [Resource("test.item", n, {"name": n}, Position("m.yaml", i + 1, 1)) for i, n in enumerate(NAMES)]
    ws = Workspace(manifest=Manifest(resources, {}, {}, {}, None, ["m.yaml"], "d", "."), providers={"test": provider})
    store = LocalStateStore(tmp_path / "state.json")
    state = store.read()
    Applier(plan(ws, state, PlanOptions()), ws.kinds, lambda k: ws.context(k), store, state).run()
    return store


def test_a_batch_larger_than_a_chunk_is_journaled_and_recorded_chunk_by_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(applier, "BATCH_CHUNK", 2)
    api = MemoryApi()
    kind = BatchKind(tmp_path / "state.json")
    store = apply(tmp_path, api, kind)
    t = "test.item."
    assert kind.seen == [(["a", "b"], [], [t + "a", t + "b"]),
                         (["c", "d"], [t + "a", t + "b"], [t + "c", t + "d"]),
                         (["e"], [t + "a", t + "b", t + "c", t + "d"], [t + "e"])]
    done = store.read()
    assert sorted(done.resources) == [t + n for n in NAMES] and not done.pending
    assert len(api.objects) == 5


def test_a_crash_after_a_middle_chunk_is_made_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    """The process dies just after the second chunk's objects are made, before their ids
    reach the state: the state file is what it was when that chunk started."""
    monkeypatch.setattr(applier, "BATCH_CHUNK", 2)
    api = MemoryApi()
    first = BatchKind(tmp_path / "state.json")
    apply(tmp_path, api, first)
    made = dict(api.objects)
    api.objects = {i: o for i, o in made.items() if o["name"] in ("a", "b", "c", "d")}  # e never started
    (tmp_path / "state.json").write_text(first.snapshots[1])  # a, b recorded; c, d journaled
    store = apply(tmp_path, api, BatchKind(tmp_path / "state.json"))
    names = sorted(o["name"] for o in api.objects.values())
    assert names == NAMES  # c and d found by name, not made twice; e made
    state = store.read()
    assert {a: r.id for a, r in state.resources.items()} == {f"test.item.{o['name']}": i for i, o in api.objects.items()}
    assert not state.pending


def test_apply_prints_the_plan_exactly_as_plan_does(tmp_path, sandbox_env):
    """The apply prints its plan in pieces: the same text, byte for byte, as `plan`."""
    from click.testing import CliRunner

    from reconciler.cli import main

    folder = tmp_path / "m"
    folder.mkdir()
    lines = ["providers:", '  valohai: {token: "${env.VALOHAI_TOKEN}", project: "${env.VALOHAI_PROJECT}"}',
             "resources:"]
    lines += [f"  - {{kind: valohai.datum, name: f{i}, spec: {{store: sandbox-store, url: "
              f"'s3://sandbox-bucket/data/train.csv', tags: [t{i}, \"\\e[2Jx\"]}}}}" for i in range(1)]
    (folder / "m.yaml").write_text("\n".join(lines) + "\n")
    state = str(tmp_path / "state.json")
    shown = CliRunner().invoke(main, ["--no-color", "--state", state, "plan", str(folder)], catch_exceptions=False)
    applied = CliRunner().invoke(main, ["--no-color", "--state", state, "apply", "--auto-approve", str(folder)],
                                 catch_exceptions=False)
    assert applied.exit_code == 0, applied.output
    assert "\x1b[2J" not in applied.output  # a control sequence in a value is escaped as in `plan`
    assert applied.output.startswith(shown.output) and "2Jx" in shown.output
