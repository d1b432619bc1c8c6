"""A value derived from a secret stays secret however many references away it travels:
secret -> B.name -> C.description and a top-level output, and the same for a sensitive
variable. Every output a user sees (plans in 3 formats, plan files, show, --debug logs,
`output`, `state show`) and the state at rest (with RECONCILER_STATE_KEY) are grepped for
the secret value, while the run is shown to have really used it."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main


def run(*args):
    r = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return r.exit_code, r.output


CHAIN = """
providers:
  valdi: {email: "${env.VALDI_EMAIL}", password: "${env.VALDI_PASSWORD}"}
  codeocean: {domain: "${env.CODEOCEAN_DOMAIN}", token: "${env.CODEOCEAN_TOKEN}"}
variables:
  tok: {type: string, sensitive: true}
resources:
  - kind: valdi.volume
    name: vol
    spec: {bucket_name: chained-secrets}
  - kind: codeocean.data_asset
    name: b
    spec:
      name: "B_NAME"
      mount: b
      source:
        aws: {bucket: sandbox-bucket, prefix: data/, keep_on_external_storage: false, public: false}
  - kind: codeocean.data_asset
    name: c
    spec:
      name: C
      mount: c
      description: "C_DESC"
      source:
        aws: {bucket: sandbox-bucket, prefix: data/, keep_on_external_storage: false, public: false}
OUTPUTS
"""
LINK = "from ${codeocean.data_asset.b.name}"
OUTPUT = "outputs:\n  b_name: ${codeocean.data_asset.b.name}\n"


def _around(text: str, secret: str) -> str:
    """Where a leaked secret sits, for the failure message (the secret itself cut out)."""
    i = text.find(secret)
    return "" if i < 0 else text[max(0, i - 400):i] + "<SECRET>"


def _chain(tmp_path, monkeypatch, caplog, b_name: str, var: str):
    """Apply B plain; make B's name derived (B is renamed); then link C.description and an
    output to B.name and go through every command. Returns (everything shown, state at
    rest, decrypted state, output asked by name)."""
    pytest.importorskip("cryptography")
    monkeypatch.setenv("RECONCILER_STATE_KEY", "a key for this test")
    monkeypatch.setenv("RECONCILER_VAR_tok", var)
    folder = tmp_path / "m"
    folder.mkdir()
    manifest = folder / "main.yaml"
    state = str(tmp_path / "state.json")

    def write(name, desc, outputs=""):
        manifest.write_text(CHAIN.replace("B_NAME", name).replace("C_DESC", desc).replace("OUTPUTS", outputs))

    write("Notes", "plain")
    assert run("--state", state, "apply", str(folder), "--auto-approve")[0] == 0
    shown, plan_file = [], tmp_path / "plan.bin"
    with caplog.at_level(logging.DEBUG):
        write(b_name, "plain")
        code, out = run("--debug", "--state", state, "apply", str(folder), "--auto-approve")
        assert code == 0, out
        shown.append(out)
        write(b_name, LINK, OUTPUT)  # level two: C and an output read B's derived name
        for fmt in ("text", "json", "markdown"):
            code, out = run("--debug", "--state", state, "plan", str(folder), "--format", fmt, "-o", str(plan_file))
            assert code == 0, out
            shown += [out, plan_file.read_text(), run("show", str(plan_file), "--format", fmt)[1]]
        code, out = run("--debug", "--state", state, "apply", str(plan_file), "--auto-approve")
        assert code == 0, out
        shown.append(out)
    monkeypatch.chdir(folder)  # `output [NAME] [PATHS]`: the manifests of the current folder
    for args in ((), ("--json",)):
        code, out = run("--state", state, "output", *args)
        assert code == 0 and "b_name" in out, out
        shown.append(out)
    code, by_name = run("--state", state, "output", "b_name")
    assert code == 0, by_name
    for address in ("codeocean.data_asset.b", "codeocean.data_asset.c"):
        shown.append(run("--state", state, "state", "show", address, str(folder))[1])
    shown.append(caplog.text)
    monkeypatch.delenv("RECONCILER_STATE_KEY")
    stored = Path(state).read_text()
    monkeypatch.setenv("RECONCILER_STATE_KEY", "a key for this test")
    from reconciler.state.local import LocalStateStore
    doc = LocalStateStore(state).read()
    return "\n".join(shown), stored, doc, by_name


def test_a_secret_two_references_away_is_masked_everywhere_and_sealed(tmp_path, sandbox_env, caplog, monkeypatch):
    """volume secret -> data_asset b.name -> data_asset c.description and output b_name."""
    text, stored, doc, by_name = _chain(tmp_path, monkeypatch, caplog,
                                        "Notes ${valdi.volume.vol.secret_access_key}", "unused-value")
    secret = doc.resources["valdi.volume.vol"].secrets["secret_access_key"]
    assert len(secret) >= 16
    # the run did handle it: C was sent B's new name, and the output holds it
    assert doc.resources["codeocean.data_asset.c"].last_applied["description"] == f"from Notes {secret}"
    assert doc.outputs["b_name"]["sensitive"] is True and secret in by_name
    assert "description" in text and "b_name" in text
    assert secret not in text, _around(text, secret)
    assert secret not in stored, "a secret two references away sits in clear in the state"
    print(f"\nsecret two references away checked against {len(text)} characters of plans, plan files, "
          f"show, --debug logs, output and state show, and {len(stored)} of state: none found")


def test_a_sensitive_variable_two_references_away_is_masked_everywhere_and_sealed(
        tmp_path, sandbox_env, caplog, monkeypatch):
    """var.tok (sensitive) -> data_asset b.name -> data_asset c.description and output b_name."""
    secret = "tok-5f0c1e9a7b3d4c2e8a6f"
    text, stored, doc, by_name = _chain(tmp_path, monkeypatch, caplog, "Notes ${var.tok}", secret)
    assert doc.resources["codeocean.data_asset.c"].last_applied["description"] == f"from Notes {secret}"
    assert doc.outputs["b_name"]["sensitive"] is True and secret in by_name
    assert "description" in text and "b_name" in text
    assert secret not in text, _around(text, secret)
    assert secret not in stored, "a sensitive variable two references away sits in clear in the state"


def test_watch_never_logs_a_secret_two_references_away(tmp_path, sandbox_env, admin):
    """Drift on C.description (edited in the console) and a pending change to it: the
    watch's log shows both as sensitive and never the applied value, which holds the key."""
    import httpx
    from conftest import Infra

    from reconciler.emulator.core import SANDBOX
    from reconciler.engine.runner import load_workspace
    from reconciler.providers import load_providers
    from reconciler.state.local import LocalStateStore
    from reconciler.watch.eventlog import EventLog
    from reconciler.watch.loop import Watch, WatchConfig

    text = CHAIN.replace("B_NAME", "Notes ${valdi.volume.vol.secret_access_key}").replace("C_DESC", LINK)
    (tmp_path / "main.yaml").write_text(text.replace("OUTPUTS", "").replace("variables:\n  tok: {type: string, "
                                                                           "sensitive: true}\n", ""))
    work = Infra(tmp_path, "main.yaml")
    assert work.apply()[0] == 0
    doc = work.state()
    asset_id = doc["resources"]["codeocean.data_asset.c"]["id"]
    secret = doc["resources"]["valdi.volume.vol"]["secrets"]["secret_access_key"]
    url = f"{sandbox_env['CODEOCEAN_DOMAIN']}/api/v1/data_assets/{asset_id}"
    tags = httpx.get(url, auth=(SANDBOX["codeocean_token"], ""), timeout=10).json()["tags"]
    assert httpx.put(url, auth=(SANDBOX["codeocean_token"], ""), timeout=10,
                     json={"name": "C", "mount": "c", "tags": tags, "description": "edited in the console"}).is_success
    work.edit("description: \"from", "description: \"again from")

    import io
    lines = io.StringIO()
    providers = load_providers()
    watch = Watch(WatchConfig(interval=0.2, auto_apply=None, finish_grace=0.0),
                  load=lambda: load_workspace([str(tmp_path)], providers),
                  open_store=lambda ws: LocalStateStore(tmp_path / "state.json"), log=EventLog("json", out=lines))
    assert watch.run_once().result == "ok"
    logged = lines.getvalue()
    events = [json.loads(line) for line in logged.splitlines() if line.strip()]
    changes = [c for e in events if e.get("address") == "codeocean.data_asset.c" for c in e.get("changes", ())]
    assert {c["field"] for c in changes} == {"description"} and all(c["sensitive"] for c in changes), events
    assert secret not in logged, _around(logged, secret)


def test_taint_follows_any_number_of_references_and_stops_at_a_cycle_or_a_plain_field():
    """Three assets in a row from a volume key are all tainted; a field beside the chain,
    `id`, and two assets that only name each other are not."""
    from reconciler.config.model import Position, Ref, Resource, Template
    from reconciler.config.sensitivity import Taint, derived_paths
    from reconciler.providers import load_providers

    kinds = {k.name: k for p in load_providers().values() for k in p.kinds}
    pos = Position("m.yaml", 1, 1)

    def asset(name, title, description="plain"):
        return Resource("codeocean.data_asset", name, {"name": title, "mount": name, "description": description}, pos)

    key = Ref("valdi.volume.vol", "secret_access_key")
    chain = [Resource("valdi.volume", "vol", {"bucket_name": "b"}, pos),
             asset("a", Template(("A ", key))),
             asset("b", Template(("B ", Ref("codeocean.data_asset.a", "name")))),
             asset("c", Template(("C ", Ref("codeocean.data_asset.b", "name"))),
                   Template(("id ", Ref("codeocean.data_asset.b", "id")))),
             asset("d", "D", Template(("from ", Ref("codeocean.data_asset.c", "name")))),
             asset("x", Ref("codeocean.data_asset.y", "name")),
             asset("y", Ref("codeocean.data_asset.x", "name"))]
    taint = Taint(chain)
    derived = {r.name: set(derived_paths(r.spec, kinds, taint=taint)) for r in chain}
    assert derived == {"vol": set(), "a": {"name"}, "b": {"name"}, "c": {"name"}, "d": {"description"},
                       "x": set(), "y": set()}
    assert not taint("codeocean.data_asset.c", "mount", kinds) and not taint("codeocean.data_asset.a", "id", kinds)
