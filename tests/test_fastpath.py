"""The planner's fast path (engine/fastpath.py), end to end over the emulator: a second
no-op plan builds no diff, and it never hides a change: a live field moved by someone
else, or a manifest edit, is planned as before."""
from __future__ import annotations

import textwrap

import pytest
from conftest import Infra

from reconciler.emulator.core import SANDBOX
from reconciler.providers.valohai import PROVIDER

BUCKET = SANDBOX["valohai_bucket"]


def manifest(version: int) -> str:
    return "resources:\n" + "".join(textwrap.dedent(f"""\
          - kind: valohai.datum
            name: d{i}
            spec: {{store: sandbox-store, url: 's3://{BUCKET}/fast/{i}.csv', properties: {{v: {version}}}}}
        """) for i in range(3))


@pytest.fixture
def diffs(monkeypatch):
    """How many times the datum kind built a diff."""
    kind = next(k for k in PROVIDER.kinds if k.name == "valohai.datum")
    calls = []
    real = type(kind).diff

    def counting(self, spec, live, last_applied):
        calls.append(spec.get("url"))
        return real(self, spec, live, last_applied)

    monkeypatch.setattr(type(kind), "diff", counting)
    return calls


def folder(tmp_path, admin, name: str, version: int) -> Infra:
    d = tmp_path / name
    d.mkdir()
    (d / "m.yaml").write_text(manifest(version))
    return Infra(d, "m.yaml")


def test_a_second_no_op_plan_builds_no_diff(tmp_path, sandbox_env, admin, diffs):
    for i in range(3):
        admin.put(f"/_emulator/s3/{BUCKET}/fast/{i}.csv", content=b"x")
    infra = folder(tmp_path, admin, "a", 1)
    assert infra.apply()[0] == 0
    code, out = infra.plan("--detailed-exitcode")
    assert code == 0 and "No changes" in out
    diffs.clear()
    code, out = infra.plan("--detailed-exitcode")
    assert code == 0 and "No changes" in out
    assert diffs == []  # all three from the fast path


def test_a_cold_plan_shows_what_a_warm_one_does(tmp_path, sandbox_env, admin, diffs):
    """With the manifest cache gone (a fresh clone) every resource takes the full diff: the
    plan shown is, byte for byte, the fast path's (a spec holding a reference included)."""
    import shutil

    for i in range(3):
        admin.put(f"/_emulator/s3/{BUCKET}/fast/{i}.csv", content=b"x")
    infra = folder(tmp_path, admin, "a", 1)
    infra.edit("2.csv', properties: {v: 1}", "2.csv', properties: {v: 1, src: '${valohai.datum.d0.uri}'}")
    assert infra.apply()[0] == 0
    shown = {}
    for label in ("cold", "warm"):
        for fmt in ("json", "text"):
            if label == "cold":
                shutil.rmtree(infra.path / ".reconciler" / "cache")
            diffs.clear()
            shown[label, fmt] = infra.plan("--format", fmt)
            assert len(diffs) == (3 if label == "cold" else 0)
    for fmt in ("json", "text"):
        assert shown["cold", fmt] == shown["warm", fmt]
    assert shown["cold", "text"][0] == 0 and "No changes" in shown["cold", "text"][1]


def test_the_fast_path_never_hides_a_live_change_or_an_edit(tmp_path, sandbox_env, admin, diffs):
    for i in range(3):
        admin.put(f"/_emulator/s3/{BUCKET}/fast/{i}.csv", content=b"x")
    infra = folder(tmp_path, admin, "a", 1)
    assert infra.apply()[0] == 0
    assert infra.plan("--detailed-exitcode")[0] == 0  # remembers three verified no-ops
    other = folder(tmp_path, admin, "b", 7)  # someone else takes the same datums over and sets v: 7
    assert other.apply()[0] == 0
    diffs.clear()
    code, out = infra.plan("--detailed-exitcode")
    assert code == 2 and out.count("~ valohai.datum.d") == 3 and "properties.v" in out
    assert sorted(set(diffs)) == [f"s3://{BUCKET}/fast/{i}.csv" for i in range(3)]  # each compared in full
    assert infra.apply()[0] == 0
    assert infra.plan("--detailed-exitcode")[0] == 0
    infra.edit("properties: {v: 1}", "properties: {v: 2}")  # d0 only
    code, out = infra.plan("--detailed-exitcode")
    assert code == 2 and "~ valohai.datum.d0" in out and "valohai.datum.d1" not in out.split("Plan:")[0]


def test_an_idle_watch_run_neither_parses_validates_nor_diffs(tmp_path, sandbox_env, admin, diffs):
    from reconciler.config.cache import ManifestCache
    from reconciler.engine.runner import load_workspace
    from reconciler.providers import load_providers
    from reconciler.state.local import LocalStateStore
    from reconciler.watch.eventlog import EventLog
    from reconciler.watch.loop import Watch, WatchConfig

    for i in range(3):
        admin.put(f"/_emulator/s3/{BUCKET}/fast/{i}.csv", content=b"x")
    infra = folder(tmp_path, admin, "a", 1)
    assert infra.apply()[0] == 0
    cache = ManifestCache.beside([infra.path], memory=True)  # as `reconciler watch` makes it
    providers = load_providers()
    watch = Watch(WatchConfig(interval=3600), load=lambda: load_workspace([str(infra.path)], providers, cache=cache),
                  open_store=lambda ws: LocalStateStore(infra.path / "state.json"),
                  log=EventLog("json", out=open(tmp_path / "log", "w")))
    assert watch.run_once().result == "ok"
    diffs.clear()
    for _ in range(2):
        outcome = watch.run_once()
        assert outcome.result == "ok" and not outcome.drift and not outcome.pending
    assert diffs == []
    assert cache.stats.manifests_cached == 2  # the idle runs built nothing
    assert cache.stats.documents_read + cache.stats.documents_cached == 1  # the file: in the first run only
    assert cache.stats.verdicts_checked <= 1  # a full validation at most once (the apply may have cached it)


def test_no_digest_of_a_secret_is_kept_on_disk(tmp_path, sandbox_env, admin, diffs):
    """A datum whose spec holds a secret (a property named like one, or one derived from a
    volume's access key) never takes the fast path: its digest would sit in
    .reconciler/cache, a hash of the secret to guess against. Its neighbour still does."""
    for name in ("plain", "named", "derived"):
        admin.put(f"/_emulator/s3/{BUCKET}/fast/{name}.csv", content=b"x")
    d = tmp_path / "s"
    d.mkdir()
    (d / "m.yaml").write_text(textwrap.dedent(f"""\
        resources:
          - kind: valdi.volume
            name: vol
            spec: {{bucket_name: fast-secret-bucket}}
          - kind: valohai.datum
            name: plain
            spec: {{store: sandbox-store, url: 's3://{BUCKET}/fast/plain.csv', properties: {{v: 1}}}}
          - kind: valohai.datum
            name: named
            spec: {{store: sandbox-store, url: 's3://{BUCKET}/fast/named.csv', properties: {{token: tok-fast-1234}}}}
          - kind: valohai.datum
            name: derived
            spec: {{store: sandbox-store, url: 's3://{BUCKET}/fast/derived.csv',
                    properties: {{note: "k=${{valdi.volume.vol.secret_access_key}}"}}}}
        """))
    infra = Infra(d, "m.yaml")
    assert infra.apply()[0] == 0
    for _ in range(2):
        diffs.clear()
        code, out = infra.plan("--detailed-exitcode")
        assert code == 0 and "No changes" in out, out
    assert sorted({u.rsplit("/", 1)[-1] for u in diffs}) == ["derived.csv", "named.csv"]  # plain: fast path


def test_the_secret_name_check_asks_each_key_as_the_one_rule_asks_each_leaf_path():
    """fastpath._secret_named walks keys, not leaf paths: the same answer as asking
    `hidden` of every leaf's path, for nested dicts, lists, dotted and bracketed keys."""
    from reconciler.config import walk
    from reconciler.config.sensitivity import SECRET_NAMES, hidden
    from reconciler.engine.fastpath import _secret_named

    specs = [{}, {"a": 1}, {"token": 1}, {"a": {"b": {"password": None}}}, {"a": [{"x": 1}, {"api_key": {}}]},
             {"a.token": 1}, {"a[secret]": 2}, {"tokens": 1}, {"a": []}, {"a": [[{"private_key": 1}]]},
             {"properties": {"index": 3, "version": 1}, "tags": ["token"]}, {"x": {"token": {}}},
             {1: {"secret": 1}}, {"a": ({"password": 1},)}, {"": {"": 1}}]
    for spec in specs * 2:  # twice: the keys found plain are remembered
        assert _secret_named(spec) == any(hidden(path, SECRET_NAMES) for path, _v in walk.leaves(spec)), spec


def test_a_shown_plan_is_the_plan_the_general_path_makes(tmp_path, sandbox_env, admin, monkeypatch):
    """`plan` shares recorded specs with the manifest's, skips resolving specs without
    references and lets the listings go after reading them: the plan it shows is, byte for
    byte, the one made without any of that (an edit, a resource removed, an unchanged one)."""
    from reconciler.cli.common import render
    from reconciler.engine import runner
    from reconciler.providers import load_providers
    from reconciler.state.local import LocalStateStore

    for i in range(3):
        admin.put(f"/_emulator/s3/{BUCKET}/fast/{i}.csv", content=b"x")
    infra = folder(tmp_path, admin, "a", 1)
    assert infra.apply()[0] == 0
    infra.edit("properties: {v: 1}", "properties: {v: 2}")  # d0 only
    text = infra.manifest.read_text()
    infra.manifest.write_text(text[:text.index("- kind: valohai.datum\n  name: d2")])  # d2 removed
    shown = {fmt: infra.plan("--format", fmt) for fmt in ("json", "text")}
    assert shown["json"][0] == 0 and '"valohai.datum.d2"' in shown["json"][1]

    def general(fmt: str) -> str:
        ws = runner.load_workspace([str(infra.path)], load_providers())
        state = LocalStateStore(infra.path / "state.json").read()
        with monkeypatch.context() as m:
            m.setattr(runner, "share_applied", lambda resources, state: None)
            result = runner.plan(ws, state, shown_only=False)
        ws.close()
        return render(result.plan, fmt, False)

    for fmt in ("json", "text"):
        assert shown[fmt][1] == general(fmt)
