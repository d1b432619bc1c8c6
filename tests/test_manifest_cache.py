"""The manifest cache (config/cache.py): an unchanged folder is neither parsed nor
validated again; every input invalidates it (a file's bytes, a variable, an environment
value the manifests read, the tool's version, a schema); a damaged cache is ignored; and
it never changes what a load or a plan finds (random edits, with and without it)."""
from __future__ import annotations

import logging
import random
import textwrap
from pathlib import Path

import pytest

from reconciler.config import cache as cachemod
from reconciler.config.cache import ManifestCache
from reconciler.config.variables import Inputs
from reconciler.engine.planner import make_plan
from reconciler.engine.runner import load_workspace
from reconciler.errors import ManifestError
from reconciler.providers import load_providers
from reconciler.state.base import StateDoc

ENV = {"VALOHAI_TOKEN": "t", "VALOHAI_PROJECT": "p", "SHARD_SUFFIX": "csv"}


def datums(n: int, version: int = 1, first: int = 0) -> str:
    return "".join(f"  - {{kind: valohai.datum, name: d{i}, spec: {{store: sandbox-store, "
                   f"url: 's3://b/{i}.${{env.SHARD_SUFFIX}}', properties: {{v: {version}, team: '${{var.team}}'}}}}}}\n"
                   for i in range(first, first + n))


def folder(tmp_path: Path) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "a.yaml").write_text("variables: {team: vision}\nresources:\n" + datums(3))
    (tmp_path / "b.yaml").write_text("resources:\n" + datums(2, first=10))
    return tmp_path


def load(path: Path, cache: ManifestCache | None, env: dict | None = None, inputs: Inputs | None = None):
    return load_workspace([str(path)], load_providers, env=env or ENV, inputs=inputs, cache=cache)


def specs(ws) -> dict:
    return {r.address: r.spec for r in ws.manifest.resources}


def test_an_unchanged_folder_is_neither_parsed_nor_validated_again(tmp_path):
    path = folder(tmp_path)
    first = load(path, ManifestCache.beside([path]))
    again = ManifestCache.beside([path])  # a new process: the disk layer only
    second = load(path, again)
    assert specs(second) == specs(first)
    assert (again.stats.documents_read, again.stats.documents_cached) == (0, 2)
    assert (again.stats.verdicts_checked, again.stats.verdicts_cached) == (0, 1)
    assert any((path / ".reconciler" / "cache").iterdir())


def test_an_edited_file_is_read_again_alone_and_the_edit_is_seen(tmp_path):
    path = folder(tmp_path)
    load(path, ManifestCache.beside([path]))
    (path / "b.yaml").write_text("resources:\n" + datums(2, version=2, first=10))
    again = ManifestCache.beside([path])
    ws = load(path, again)
    assert (again.stats.documents_read, again.stats.documents_cached) == (1, 1)
    assert again.stats.verdicts_checked == 1
    assert specs(ws)["valohai.datum.d10"]["properties"]["v"] == 2


def test_a_variable_invalidates_the_verdict(tmp_path):
    path = folder(tmp_path)
    load(path, ManifestCache.beside([path]))
    again = ManifestCache.beside([path])
    ws = load(path, again, inputs=Inputs(var_args=["team=vision2"]))
    assert again.stats.verdicts_checked == 1 and again.stats.documents_cached == 2
    assert specs(ws)["valohai.datum.d0"]["properties"]["team"] == "vision2"
    third = ManifestCache.beside([path])  # from the environment too
    ws = load(path, third, env={**ENV, "RECONCILER_VAR_team": "vision3"})
    assert third.stats.verdicts_checked == 1
    assert specs(ws)["valohai.datum.d0"]["properties"]["team"] == "vision3"


def test_an_environment_value_the_manifests_read_invalidates_it_and_others_do_not(tmp_path):
    path = folder(tmp_path)
    load(path, ManifestCache.beside([path]))
    unrelated = ManifestCache.beside([path])
    load(path, unrelated, env={**ENV, "SOMETHING_ELSE": "x"})
    assert unrelated.stats.verdicts_cached == 1
    changed = ManifestCache.beside([path])
    ws = load(path, changed, env={**ENV, "SHARD_SUFFIX": "parquet"})
    assert changed.stats.verdicts_checked == 1
    assert specs(ws)["valohai.datum.d0"]["url"] == "s3://b/0.parquet"


def test_a_file_the_manifests_read_invalidates_it(tmp_path):
    (tmp_path / "note.txt").write_text("first")
    (tmp_path / "m.yaml").write_text("resources:\n  - {kind: valohai.datum, name: d, spec: {store: s, "
                                     "url: 's3://b/x', properties: {note: '${file(\"note.txt\")}'}}}\n")
    memory = ManifestCache.beside([tmp_path], memory=True)
    assert specs(load(tmp_path, memory))["valohai.datum.d"]["properties"]["note"] == "first"
    (tmp_path / "note.txt").write_text("second")
    assert specs(load(tmp_path, memory))["valohai.datum.d"]["properties"]["note"] == "second"
    assert memory.stats.manifests_cached == 0 and memory.stats.verdicts_checked == 2
    again = ManifestCache.beside([tmp_path])
    assert specs(load(tmp_path, again))["valohai.datum.d"]["properties"]["note"] == "second"
    assert again.stats.verdicts_cached == 1  # the disk layer knows the second content


def test_another_tool_version_trusts_nothing(tmp_path, monkeypatch):
    path = folder(tmp_path)
    load(path, ManifestCache.beside([path]))
    import reconciler

    monkeypatch.setattr(reconciler, "__version__", "99.0.0")
    cachemod.code_stamp.cache_clear()
    try:
        again = ManifestCache.beside([path])
        load(path, again)
        assert (again.stats.documents_read, again.stats.documents_cached) == (2, 0)
        assert again.stats.verdicts_checked == 1
    finally:
        cachemod.code_stamp.cache_clear()


def test_a_changed_schema_checks_again_and_reports_what_it_now_refuses(tmp_path, monkeypatch):
    path = folder(tmp_path)
    load(path, ManifestCache.beside([path]))
    providers = load_providers({"valohai"})
    kind = next(k for k in providers["valohai"].kinds if k.name == "valohai.datum")
    from reconciler.config.validation import load_schema

    stricter = dict(load_schema(kind.schema))
    stricter["properties"] = {**stricter["properties"], "url": {"type": "string", "pattern": "^gs://"}}
    monkeypatch.setattr(kind, "schema", stricter)
    again = ManifestCache.beside([path])
    with pytest.raises(ManifestError) as e:
        load_workspace([str(path)], lambda names: providers, env=ENV, cache=again)
    assert "a.yaml:3:" in str(e.value) and "url" in str(e.value)  # file:line:col of the field
    assert again.stats.verdicts_checked == 1


def test_a_damaged_cache_is_ignored_with_a_debug_line(tmp_path, caplog):
    path = folder(tmp_path)
    first = load(path, ManifestCache.beside([path]))
    for f in (path / ".reconciler" / "cache").iterdir():
        if f.name.startswith("docs-"):
            f.write_bytes(b'[{"value": ')
    again = ManifestCache.beside([path])
    with caplog.at_level(logging.DEBUG, logger="reconciler.config.cache"):
        ws = load(path, again)
    assert specs(ws) == specs(first)
    assert again.stats.documents_read == 2
    assert any("damaged" in r.getMessage() for r in caplog.records)


def test_a_deleted_cache_is_rebuilt(tmp_path):
    path = folder(tmp_path)
    load(path, ManifestCache.beside([path]))
    import shutil

    shutil.rmtree(path / ".reconciler" / "cache")
    again = ManifestCache.beside([path])
    load(path, again)
    assert again.stats.documents_read == 2 and again.stats.verdicts_checked == 1


def test_a_cache_folder_that_is_a_symbolic_link_is_not_used(tmp_path):
    path = folder(tmp_path / "m")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (path / ".reconciler").mkdir()
    (path / ".reconciler" / "cache").symlink_to(elsewhere)
    cache = ManifestCache.beside([path])
    load(path, cache)
    load(path, cache)
    assert [p.name for p in elsewhere.iterdir()] == ["keep.txt"]
    assert cache.stats.documents_cached == 0


def test_watch_keeps_the_built_manifest_in_memory_and_each_run_gets_its_own_copy(tmp_path):
    path = folder(tmp_path)
    cache = ManifestCache(memory=True)  # no folder: memory only
    first = load(path, cache)
    second = load(path, cache)
    assert cache.stats.manifests_cached == 1 and cache.stats.documents_read == 2
    assert specs(second) == specs(first)
    second.manifest.resources[0].spec["url"] = "edited by a run"
    assert load(path, cache).manifest.resources[0].spec["url"] == "s3://b/0.csv"
    (path / "a.yaml").write_text("variables: {team: vision}\nresources:\n" + datums(4))
    ws = load(path, cache)
    assert len(ws.manifest.resources) == 6 and cache.stats.documents_read == 3


def test_local_files_are_checked_even_when_the_rest_was_checked_before(tmp_path):
    (tmp_path / "key.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA x\n")
    (tmp_path / "m.yaml").write_text("resources:\n  - {kind: valdi.ssh_key, name: k, spec: {name: k, "
                                     "public_key_file: key.pub}}\n")
    load(tmp_path, ManifestCache.beside([tmp_path]))
    (tmp_path / "key.pub").unlink()
    with pytest.raises(ManifestError) as e:
        load(tmp_path, ManifestCache.beside([tmp_path]))
    assert "m.yaml:2:" in str(e.value) and "does not exist" in str(e.value)


# -- the property: with and without the cache, the same outcome ---------------------------------
EDITS = ["value", "add", "remove", "variable", "env", "break", "bad_field", "duplicate", "nothing"]


def _edit(rng: random.Random, path: Path, env: dict, inputs: list[str]) -> None:
    edit = rng.choice(EDITS)
    f = path / rng.choice(["a.yaml", "b.yaml"])
    text = f.read_text()
    if edit == "value":
        text = text.replace("v: ", f"v: {rng.randint(0, 9)}", 1)
    elif edit == "add":
        text += datums(1, first=rng.randint(20, 40))
    elif edit == "remove":
        lines = text.splitlines(keepends=True)
        items = [i for i, line in enumerate(lines) if line.startswith("  - ")]
        if len(items) > 1:
            del lines[rng.choice(items)]
        text = "".join(lines)
    elif edit == "variable":
        inputs[:] = [f"team=t{rng.randint(0, 3)}"]
    elif edit == "env":
        env["SHARD_SUFFIX"] = rng.choice(["csv", "json", "txt"])
    elif edit == "break":
        text = text.replace("{kind", "{{kind", 1) if rng.random() < 0.5 else text.replace("{{kind", "{kind")
    elif edit == "bad_field":
        text = text.replace("store: sandbox-store", rng.choice(["store: 7", "stor: x", "store: sandbox-store"]), 1)
    elif edit == "duplicate":
        text += datums(1, first=rng.randint(0, 12))
    f.write_text(text)


def _outcome(path: Path, env: dict, inputs: list[str], cache: ManifestCache | None) -> object:
    try:
        ws = load(path, cache, env=dict(env), inputs=Inputs(var_args=list(inputs)))
    except ManifestError as e:
        return ("error", str(e))
    result = make_plan(ws.manifest.resources, StateDoc(), {}, ws.kinds, lambda kind: ws.context(kind))
    plan = [(a.address, a.type.value, [(c.path, c.new) for c in a.changes]) for a in result.plan.actions]
    positions = [(r.address, str(r.where("spec.properties.v")), str(r.position)) for r in ws.manifest.resources]
    return ("plan", plan, positions, result.errors)


@pytest.mark.parametrize("seed", range(4))
def test_plans_with_and_without_the_cache_are_equal_over_random_edits(tmp_path, seed):
    rng = random.Random(seed)
    path = folder(tmp_path)
    env, inputs = dict(ENV), []
    disk = ManifestCache.beside([path])
    memory = ManifestCache(memory=True)
    for _ in range(12):
        _edit(rng, path, env, inputs)
        want = _outcome(path, env, inputs, None)
        assert _outcome(path, env, inputs, disk) == want
        assert _outcome(path, env, inputs, ManifestCache.beside([path])) == want  # a later process
        assert _outcome(path, env, inputs, memory) == want
        assert _outcome(path, env, inputs, memory) == want  # its memory layer


def test_a_plan_over_a_cached_one_provider_folder_imports_no_checker_and_no_other_provider(tmp_path):
    import subprocess
    import sys

    (tmp_path / "m.yaml").write_text("resources:\n" + datums(2).replace("${env.SHARD_SUFFIX}", "csv")
                                     .replace("${var.team}", "t"))
    code = textwrap.dedent(f"""
        import sys
        from reconciler.cli import main
        try:
            main(["validate", {str(tmp_path)!r}])
        except SystemExit as e:
            assert e.code in (0, None), e.code
        print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in ("jsonschema", "deepdiff", "rich")
                              or m.startswith(("reconciler.providers.valdi", "reconciler.providers.codeocean")))))
        """)
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
            for _ in range(2)]  # the second over a warm cache
    for run in runs:
        assert run.returncode == 0, run.stderr
        loaded = run.stdout.split()
        assert not [m for m in loaded if m.startswith(("jsonschema", "deepdiff", "reconciler.providers."))], loaded


DATUM_MANIFEST = """resources:
  - kind: valohai.datum
    name: train
    spec: {store: sandbox-store, url: s3://sandbox-bucket/data/train.csv, properties: {owner: ml-team}}
"""


def _cli_debug(*args: str) -> "subprocess.CompletedProcess[str]":
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", "from reconciler.cli import main; main()", "--no-color",
                           "--debug", *args], capture_output=True, text=True, env=dict(os.environ), timeout=120)


@pytest.mark.parametrize("damage", ["bit flip", "truncated"])
def test_a_damaged_cache_file_is_never_loaded_as_another_manifest(tmp_path, sandbox_env, damage):
    from conftest import Infra

    (tmp_path / "m.yaml").write_text(DATUM_MANIFEST)
    infra = Infra(tmp_path, "m.yaml")
    assert infra.apply()[0] == 0
    files = [f for f in (tmp_path / ".reconciler" / "cache").iterdir() if f.name.startswith(("docs-", "clean-"))]
    assert files
    for f in files:
        data = bytearray(f.read_bytes())
        if damage == "bit flip":
            if b"train.csv" not in data:
                continue
            at = data.index(b"train.csv") + 2  # 'a' -> 'c': the cached manifest names another file
            data[at] ^= 0x02
        else:
            del data[len(data) // 2 + 1:]
        f.write_bytes(bytes(data))
    done = _cli_debug("--state", str(tmp_path / "state.json"), "plan", str(tmp_path), "--detailed-exitcode")
    assert done.returncode == 0 and "No changes" in done.stdout, done.stdout + done.stderr
    assert "s3://sandbox-bucket/data/trcin.csv" not in done.stdout
    assert "manifest cache" in done.stderr and "damaged" in done.stderr, done.stderr


def test_cached_documents_keep_repeated_short_strings_once_and_read_the_same():
    import copy

    from reconciler.config.cache import _shared_strings

    doc = {"providers": {}, "resources": [
        {"kind": "".join(["valohai.", "datum"]), "name": f"d{i}",
         "spec": {"store": "".join(["sandbox-", "store"]), "url": f"s3://b/{i}", "tags": ["".join(["a", "b"]), 1],
                  "properties": {"n": i}}} for i in range(3)] + ["not a mapping", {"kind": 1, "spec": "x"}]}
    before = copy.deepcopy(doc)
    after = _shared_strings(doc)
    assert after == before
    first, second = after["resources"][0], after["resources"][2]
    assert first["kind"] is second["kind"] and first["spec"]["store"] is second["spec"]["store"]
    assert first["spec"]["tags"][0] is second["spec"]["tags"][0]


def test_a_deep_position_is_found_from_the_kept_text():
    """A clean read keeps the top levels' positions; a deeper one, asked for a message, is
    read again from the file's text as it was loaded (kept compressed)."""
    from reconciler.config.yamlread import read_documents

    text = "resources:\n  - kind: valohai.datum\n    name: a\n    spec:\n      store: s\n      url: x\n"
    docs = read_documents(text, "m.yaml", [])
    where = docs[0].positions["resources[0].spec.url"]
    assert (where.file, where.line, where.column) == ("m.yaml", 6, 7)


def test_the_http_layer_leaves_httpx_command_line_client_unloaded():
    """Start-up (issue 28): httpx's package would import its command-line client (rich's
    console and progress, pygments) on every run; the tool never calls it. Whoever wants
    it later still gets it."""
    import subprocess
    import sys
    code = ("import sys, reconciler.providers.http as h; "
            "print('rich.console' in sys.modules, 'httpx._main' in sys.modules); "
            "import httpx._main; print(callable(httpx._main.main))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False", "True"]


def test_documents_read_from_the_cache_equal_a_fresh_read(tmp_path):
    """Long integers, non-ASCII text, floats and nulls come back from the cache as read."""
    text = ("resources:\n  - kind: valohai.datum\n    name: a\n    spec:\n"
            "      big: 123456789012345678901234567890\n      neg: -9223372036854775809\n"
            "      f: 1.5e300\n      tiny: 5.0e-324\n      none: ~\n      text: 'Grüße ✓'\n"
            "      list: [1, -0.0, yes, 'x']\n")
    fresh = ManifestCache(folder=tmp_path)
    first = fresh.documents(text, "m.yaml", [])
    again = ManifestCache(folder=tmp_path)
    second = again.documents(text, "m.yaml", [])
    assert (fresh.stats.documents_read, again.stats.documents_cached) == (1, 1)
    assert [d.value for d in second] == [d.value for d in first]
    said = cachemod.said_digest([d.value for d in first])
    assert fresh.said("m.yaml") == said and again.said("m.yaml") == said
    spec = second[0].value["resources"][0]["spec"]
    assert spec["big"] == 123456789012345678901234567890 and type(spec["big"]) is int


def _parallel(monkeypatch):
    from reconciler.config import parallel

    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    return parallel


def test_files_parsed_in_workers_load_as_files_parsed_here(tmp_path, monkeypatch):
    plain = load(folder(tmp_path / "one"), None)
    calls = []
    parallel = _parallel(monkeypatch)
    real = parallel.read_encoded

    def counted(jobs, work):
        calls.append(real(jobs, work))
        return calls[-1]

    monkeypatch.setattr(parallel, "read_encoded", counted)
    cache = ManifestCache.beside([folder(tmp_path / "two")])
    ws = load(tmp_path / "two", cache)
    assert [len(c) for c in calls] == [2] and cache.stats.documents_read == 2  # both parsed by workers
    assert specs(ws) == specs(plain)
    assert ws.manifest.digest == plain.manifest.digest and ws.manifest.file_digests == plain.manifest.file_digests

    def where(m, path):
        return [(r.where(path).line, r.where(path).column) for r in m.resources]

    assert where(ws.manifest, "") == where(plain.manifest, "")
    assert where(ws.manifest, "spec.url") == where(plain.manifest, "spec.url")
    again = ManifestCache.beside([tmp_path / "two"])
    cached = load(tmp_path / "two", again)
    assert specs(cached) == specs(plain) and again.stats.documents_cached == 2
    assert cached.manifest.file_digests == plain.manifest.file_digests  # a saved plan's digests hold


def test_a_file_with_problems_is_reported_as_when_read_in_one_process(tmp_path, monkeypatch):
    bad = "resources:\n  - {kind: valohai.datum, name: x, spec: {store: s, store: t}}\n"
    for where in ("one", "two"):
        folder(tmp_path / where)
        (tmp_path / where / "c.yaml").write_text(bad)
    with pytest.raises(ManifestError) as plain:
        load(tmp_path / "one", None)
    _parallel(monkeypatch)
    with pytest.raises(ManifestError) as parallel:
        load(tmp_path / "two", ManifestCache.beside([tmp_path / "two"]))
    assert str(parallel.value).replace("/two/", "/one/") == str(plain.value)
    assert "duplicate key 'store'" in str(plain.value)


def test_a_worker_that_dies_leaves_the_files_to_the_loader(tmp_path, monkeypatch):
    import os

    parallel = _parallel(monkeypatch)
    monkeypatch.setattr(cachemod, "_read_encoded", lambda text, file: os._exit(9))
    cache = ManifestCache.beside([folder(tmp_path)])
    assert parallel.read_encoded([("k1", "a", "x: 1"), ("k2", "b", "y: 2")], cachemod._read_encoded) == {}
    ws = load(tmp_path, cache)
    assert cache.stats.documents_read == 2 and len(ws.manifest.resources) == 5
