"""What keeps large runs fast, as a user would notice it (timings live in
tests/benchmarks/bench_scale.py, not here): listings complete when their later pages are
read concurrently and some are refused with 429; a one-provider manifest imports one
provider, and a kind only the state still holds gets its provider when it is needed."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import api_calls

from reconciler.emulator.core import SANDBOX
from reconciler.engine.runner import load_workspace, observe
from reconciler.providers import load_providers
from reconciler.providers.contract import KindContext, Wanted
from reconciler.providers.valohai import PROVIDER
from reconciler.state.base import ResourceState, StateDoc

BUCKET = SANDBOX["valohai_bucket"]


def test_a_paged_listing_is_complete_when_later_pages_are_refused_once(sandbox_env, admin):
    for i in range(23):
        admin.put(f"/_emulator/s3/{BUCKET}/s/{i}.txt", content=b"x")
    kind = next(k for k in PROVIDER.kinds if k.name == "valohai.datum")
    specs = [{"store": "sandbox-store", "url": f"s3://{BUCKET}/s/{i}.txt"} for i in range(23)]
    lives = kind.create_many(KindContext(api=PROVIDER.connect({})), specs)
    client = PROVIDER.connect({})
    client.page_size = 5  # 5 pages: the first, then four read together
    admin.delete("/_emulator/requests")
    admin.post("/_emulator/faults", json={"pattern": "^GET /api/v0/data/$", "kinds": [429], "skip": 1,
                                          "times": 2, "retry_after": 0.01})
    found = kind.observe(KindContext(api=client), [Wanted(str(i), lv.id, s, s)
                                                   for i, (lv, s) in enumerate(zip(lives, specs))])
    assert [found[str(i)].id for i in range(23)] == [lv.id for lv in lives]
    assert api_calls(admin)["GET /api/v0/data/"] == 5 + 2  # five pages, two of them asked twice


def test_a_one_provider_manifest_imports_one_provider(tmp_path):
    (tmp_path / "m.yaml").write_text(textwrap.dedent(f"""\
        resources:
          - kind: valohai.datum
            name: d
            spec: {{store: sandbox-store, url: 's3://{BUCKET}/a.csv'}}
        """))
    code = textwrap.dedent(f"""
        import sys
        from reconciler.cli import main
        try:
            main(["validate", {str(tmp_path)!r}])
        except SystemExit as e:
            assert e.code in (0, None), e.code
        loaded = sorted(m for m in sys.modules if m.startswith("reconciler.providers."))
        print(" ".join(loaded))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.split()
    assert any(m.startswith("reconciler.providers.valohai") for m in loaded)
    assert not any(m.startswith(("reconciler.providers.valdi", "reconciler.providers.codeocean")) for m in loaded)


def test_a_kind_only_the_state_holds_loads_its_provider(tmp_path, sandbox_env):
    (tmp_path / "m.yaml").write_text(textwrap.dedent(f"""\
        resources:
          - kind: valohai.datum
            name: d
            spec: {{store: sandbox-store, url: 's3://{BUCKET}/a.csv'}}
        """))
    ws = load_workspace([str(tmp_path)], load_providers)
    assert set(ws.providers) == {"valohai"}
    state = StateDoc(resources={"codeocean.data_asset.gone": ResourceState(kind="codeocean.data_asset",
                                                                           id="0b6a5d4c-missing")})
    live = observe(ws, state)
    assert "codeocean" in ws.providers and "codeocean.data_asset" in ws.kinds
    assert live["codeocean.data_asset.gone"] is None  # read through its provider: it is gone


# -- the applier's ready queue and the state store's incremental writes ----------------------
def test_an_action_starts_when_what_it_uses_is_done_not_when_a_slow_neighbour_is(tmp_path):
    import threading

    from memkind import MemoryApi, MemoryKind, MemoryProvider

    from reconciler.config.model import Manifest, Position, Ref, Resource
    from reconciler.engine.applier import Applier
    from reconciler.engine.runner import Workspace, plan
    from reconciler.state.local import LocalStateStore

    child_created = threading.Event()
    waited: list[bool] = []

    class SlowVm(MemoryKind):
        def create(self, ctx, spec):
            if spec["name"] == "slow":  # a VM provisioning for minutes
                waited.append(child_created.wait(timeout=10))
            live = super().create(ctx, spec)
            if spec["name"] == "child":
                child_created.set()
            return live

    provider = MemoryProvider(MemoryApi())
    provider.kinds = [SlowVm()]
    resources = [Resource("test.item", name, spec, Position("m.yaml", i + 1, 1)) for i, (name, spec) in enumerate([
        ("slow", {"name": "slow"}), ("fast", {"name": "fast"}),
        ("child", {"name": "child", "value": Ref("test.item.fast", "id")})])]
    ws = Workspace(manifest=Manifest(resources, {}, {}, {}, None, ["m.yaml"], "d", "."), providers={"test": provider})
    store = LocalStateStore(tmp_path / "state.json")
    state = store.read()
    Applier(plan(ws, state), ws.kinds, lambda k: ws.context(k), store, state).run()
    assert waited == [True]  # child (after fast) was created while slow was still being created
    assert set(store.read().resources) == {"test.item.slow", "test.item.fast", "test.item.child"}


def test_a_state_replaced_by_another_writer_is_not_overwritten(tmp_path):
    import pytest

    from reconciler.errors import StaleStateError
    from reconciler.state.local import LocalStateStore

    ours, theirs = LocalStateStore(tmp_path / "s.json"), LocalStateStore(tmp_path / "s.json")
    doc = StateDoc(resources={"a.b.c": ResourceState(kind="a.b", id="1")})
    ours.write(doc)
    other = theirs.read()
    other.resources["a.b.d"] = ResourceState(kind="a.b", id="2")
    theirs.write(other)
    doc.resources["a.b.e"] = ResourceState(kind="a.b", id="3")
    with pytest.raises(StaleStateError):
        ours.write(doc)
    assert set(ours.read().resources) == {"a.b.c", "a.b.d"}
    doc = ours.read()  # a fresh read: the next write goes through, re-encoding only what changed
    doc.resources["a.b.c"] = ResourceState(kind="a.b", id="1", outputs={"x": 1})
    doc.outputs = {"o": {"value": 1, "sensitive": False}}
    ours.write(doc)
    assert LocalStateStore(tmp_path / "s.json").read().to_dict() == doc.to_dict()
    import json
    assert json.loads((tmp_path / "s.json").read_text()) == doc.to_dict()  # every field, as to_dict has it


def test_field_positions_of_a_clean_manifest_are_found_only_when_a_message_needs_them(tmp_path, monkeypatch):
    from reconciler.config import yamlread
    from reconciler.config.manifest import load_manifest

    reads = []
    real_run = yamlread._Reader.run
    monkeypatch.setattr(yamlread._Reader, "run", lambda self, text: reads.append(self.record_all) or real_run(self, text))
    (tmp_path / "m.yaml").write_text(textwrap.dedent("""\
        resources:
          - kind: valohai.datum
            name: a
            spec:
              store: s
              properties: {x: 1}
          - {kind: valohai.datum, name: b, spec: {store: s, tags: [t]}}
        """))
    manifest = load_manifest([str(tmp_path)], {})
    assert reads == [False]  # one read, keeping one position per resource
    a, b = manifest.resources
    assert (a.where("spec.properties.x").line, a.where("spec.properties.x").column) == (6, 20)
    assert (b.where("spec.tags[0]").line, b.where("spec.tags[0]").column) == (7, 60)
    assert reads == [False, True]  # read again once, for both
