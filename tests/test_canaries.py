"""The canary test: a distinct secret planted in every source a run handles (a sensitive
variable, an env value in a secret field, a volume's access key, a generated private key,
the provider's password), each also copied into names and descriptions, then every
command a user runs against it. Every output stream (stdout, stderr, --debug logs, the
watch's log in both formats) and every file the tool writes (state sealed with
RECONCILER_STATE_KEY, plan file, pull-request pages, ledger) is grepped for each canary:
none may be found. The files a manifest asks for (the private key, the credentials file)
are the only places a secret is meant to be, and the test checks they hold it."""
from __future__ import annotations

import io
import json
import logging
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main

VAR_CANARY = "canary-var-5e1d9c3b7a"
ENV_CANARY = "canary-env-8b2f4a6c1d"
LIVE_CANARY = "tok-canary-live-4c7e2a"  # set in the console on a property named like a secret: drift

MANIFEST = """
# the providers read VALDI_PASSWORD and the other credentials from the environment
variables:
  tok: {type: string, sensitive: true}
resources:
  - kind: valdi.volume
    name: vol
    spec: {bucket_name: canary-bucket, credentials_file: .secrets/vol.credentials}
  - kind: valdi.ssh_key
    name: gen
    spec: {name: canary-key, private_key_file: .secrets/gen.pem}
  - kind: valohai.datum
    name: d
    spec:
      store: sandbox-store
      url: s3://sandbox-bucket/data/train.csv
      properties: {api_key: "${env.CANARY_ENV}", ingest_ref: "${var.tok}", note: "ref-${var.tok}",
                   token: tok-applied-value}
  - kind: codeocean.data_asset
    name: from_var
    spec:
      name: "asset-${var.tok}"
      mount: from-var
      description: "made with ${var.tok}"
      source:
        aws: {bucket: sandbox-bucket, prefix: data/, keep_on_external_storage: false, public: false}
  - kind: codeocean.data_asset
    name: from_key
    spec:
      name: "k-${valdi.volume.vol.secret_access_key}"
      mount: from-key
      source:
        aws: {bucket: sandbox-bucket, prefix: data/, keep_on_external_storage: false, public: false}
policies:
  # a guardrail over a value derived from a secret: its evaluation error quotes the value
  - name: key-asset-name
    kind: codeocean.data_asset
    enforcement: warn
    deny_if: "has(after.name) && duration(after.name) > duration('1h')"
  - name: datum-key
    kind: valohai.datum
    enforcement: warn
    deny_if: "has(after.properties) && duration(after.properties.api_key) > duration('1h')"
outputs:
  asset_name: ${codeocean.data_asset.from_var.name}
  key_asset: ${codeocean.data_asset.from_key.name}
  bucket: ${valdi.volume.vol.bucket_name}
"""


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return r.exit_code, r.output


@pytest.fixture
def world(tmp_path, sandbox_env, monkeypatch):
    pytest.importorskip("cryptography")
    folder = tmp_path / "infra"
    folder.mkdir()
    (folder / "main.yaml").write_text(textwrap.dedent(MANIFEST))
    monkeypatch.setenv("RECONCILER_VAR_tok", VAR_CANARY)
    monkeypatch.setenv("CANARY_ENV", ENV_CANARY)
    monkeypatch.setenv("RECONCILER_STATE_KEY", "canary test state key")
    monkeypatch.setenv("RECONCILER_STATE", str(tmp_path / "state.json"))
    monkeypatch.chdir(tmp_path)
    return folder


def everything_written(root: Path, except_: set[Path]) -> str:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p not in except_ and "emulator" not in p.parts:  # the emulator's own database
            out.append(f"== {p}\n" + p.read_text(errors="replace"))
    return "\n".join(out)


def _around(text: str, secret: str) -> str:
    i = text.find(secret)
    return "" if i < 0 else text[max(0, i - 300):i] + "<CANARY>"


def test_no_canary_on_any_path(world, tmp_path, sandbox_env, caplog):
    shown: list[str] = []
    folder = str(world)
    with caplog.at_level(logging.DEBUG):
        code, out = run("--debug", "apply", folder, "--auto-approve")
        assert code == 0, out
        shown.append(out)
        (world / "main.yaml").write_text((world / "main.yaml").read_text().replace("made with", "now made with"))
        for fmt in ("text", "json", "markdown"):
            code, out = run("--debug", "plan", folder, "--format", fmt, "-o", "plan.bin")
            assert code == 0, out
            shown += [out, run("show", "plan.bin", "--format", fmt)[1]]
        shown.append(run("show", "plan.bin", "--format", "markdown", "--split", "pages")[1])
        code, out = run("--debug", "apply", "plan.bin")
        assert code == 0, out
        shown.append(out)
        _edit_in_the_console(tmp_path / "state.json", sandbox_env)
        for args in (("plan", folder, "--refresh-only"), ("drift", folder), ("validate", folder),
                     ("doctor", folder), ("doctor", folder, "--format", "json"), ("state", "list", folder),
                     ("output", "--json", folder), ("output", "asset_name", "bucket", folder)):
            shown.append(run(*args)[1])
        shown.append(run("output", "bucket", str(world))[1])
        for address in ("valdi.volume.vol", "valdi.ssh_key.gen", "valohai.datum.d", "codeocean.data_asset.from_var",
                        "codeocean.data_asset.from_key"):
            shown.append(run("state", "show", address, folder)[1])
        # every live object, seen from a state that manages none of them, written as a manifest
        code, out = run("--state", str(tmp_path / "empty-state.json"), "discover", folder, "--out", "found.yaml")
        assert code == 0, out
        shown.append(out)
    shown.append(caplog.text)
    shown.append(_watch_logs(world))

    state_doc = _decrypted_state(tmp_path / "state.json")
    volume_key = state_doc.resources["valdi.volume.vol"].secrets["secret_access_key"]
    private_key = (world / ".secrets" / "gen.pem").read_text()
    canaries = {"variable": VAR_CANARY, "env value": ENV_CANARY, "volume key": volume_key, "live": LIVE_CANARY,
                "private key": next(ln for ln in private_key.splitlines() if len(ln) > 40),
                "provider password": sandbox_env["VALDI_PASSWORD"]}
    # the run really used them: the asset got its name, the files the manifest asked for hold the keys
    assert state_doc.resources["codeocean.data_asset.from_key"].last_applied["name"] == f"k-{volume_key}"
    assert volume_key in (world / ".secrets" / "vol.credentials").read_text()
    written = everything_written(tmp_path, {world / ".secrets" / "gen.pem", world / ".secrets" / "vol.credentials"})
    assert "plan.bin" in written and "state.json" in written and "001.md" in written and "found.yaml" in written
    text = "\n".join(shown)
    found = {name: where for name, canary in canaries.items()
             for where, body in (("output", text), ("files", written)) if canary in body}
    assert not found, {name: _around(text if where == "output" else written, canaries[name])
                       for name, where in found.items()}
    assert "valohai.datum.d" in text.split("drift", 1)[-1]  # the drift was seen, masked
    assert "deny_if could not be evaluated" in text  # the policies quoted a value: masked
    found_yaml = (tmp_path / "found.yaml").read_text()  # discover left the secrets to sensitive variables
    assert "RECONCILER_VAR_" in found_yaml and "${var.datum_" in found_yaml, found_yaml
    print(f"\n6 canaries checked against {len(text):,} characters of output and {len(written):,} of files: 0 found")


def _edit_in_the_console(state: Path, env: dict) -> None:
    import httpx
    datum = json.loads(state.read_text())["resources"]["valohai.datum.d"]["id"]
    r = httpx.post(f"{env['VALOHAI_HOST']}/api/v0/data/{datum}/metadata/", json={"token": LIVE_CANARY},
                   headers={"Authorization": f"Token {env['VALOHAI_TOKEN']}"}, timeout=10)
    assert r.is_success, r.text


def _decrypted_state(path: Path):
    from reconciler.state.local import LocalStateStore
    return LocalStateStore(path).read()


def _watch_logs(folder: Path) -> str:
    """One watch run in each log format, after the live asset was edited (drift) and the
    manifest moved (a pending change)."""
    from reconciler.engine.runner import load_workspace
    from reconciler.providers import load_providers
    from reconciler.state.local import LocalStateStore
    from reconciler.watch.eventlog import EventLog
    from reconciler.watch.loop import Watch, WatchConfig

    (folder / "main.yaml").write_text((folder / "main.yaml").read_text().replace("now made with", "then made with"))
    providers = load_providers()
    out = []
    for fmt in ("text", "json"):
        lines = io.StringIO()
        watch = Watch(WatchConfig(interval=0.2, auto_apply="all", finish_grace=0.0),
                      load=lambda: load_workspace([str(folder)], providers),
                      open_store=lambda ws: LocalStateStore(folder.parent / "state.json"),
                      log=EventLog(fmt, out=lines))
        watch.run_once()
        out.append(lines.getvalue())
    assert "codeocean.data_asset.from_var" in "".join(out)
    return json.dumps(out) + "\n".join(out)


def with_sensitive_variable(folder: Path, variable: str, resources: str) -> None:
    (folder / "main.yaml").write_text(f"variables:\n  {variable}\nresources:\n" + textwrap.dedent(resources))


def test_a_sensitive_number_is_not_shown_by_the_range_check(tmp_path, sandbox_env, monkeypatch):
    """`87654 GB is out of range` printed the sensitive variable it came from."""
    with_sensitive_variable(tmp_path, "size: {type: number, sensitive: true}", """
          - kind: valdi.ssh_key
            name: deploy
            spec: {name: deploy, public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk7 x"}
          - kind: valdi.vm
            name: trainer
            spec:
              name: trainer
              provider_id: bd3731eb-37c7-4577-817e-b8fe9dd02dfd
              details:
                config: vcpu-8_memory-48g_nvidia-rtx-3090-2
                image_id: 2cd0e25f-a39e-4bc6-aa78-b4c40b87072a
                ssh_key_id: ${valdi.ssh_key.deploy.id}
                additional_storage: ${var.size}
        """)
    monkeypatch.setenv("RECONCILER_VAR_size", "87654")
    code, out = run("--state", str(tmp_path / "state.json"), "plan", str(tmp_path))
    assert code == 1 and "additional_storage" in out and "out of range" in out, out
    assert "87654" not in out, out


def test_a_watch_notice_never_carries_a_secret():
    from reconciler.config.sensitivity import register
    from reconciler.watch.notify import Notifier, failure_payload

    secret = "canary-notice-9d2e7f4a"
    register(secret)
    sent: list[dict] = []
    notifier = Notifier("https://hooks.example/x", post=lambda url, payload: sent.append(payload))
    notifier.send(failure_payload({"codeocean.data_asset.a": (f"data asset 'k-{secret}' already exists", 1, 2.0)},
                                  "state.json"))
    notifier.close()
    assert sent and "already exists" in json.dumps(sent) and secret not in json.dumps(sent)


def test_the_already_exists_refusal_does_not_show_a_name_built_from_a_secret(tmp_path, sandbox_env, monkeypatch):
    with_sensitive_variable(tmp_path, "tok: {type: string, sensitive: true}", """
          - kind: codeocean.data_asset
            name: a
            spec:
              name: "asset-${var.tok}"
              mount: a
              source:
                aws: {bucket: sandbox-bucket, prefix: data/, keep_on_external_storage: false, public: false}
        """)
    monkeypatch.setenv("RECONCILER_VAR_tok", VAR_CANARY)
    state = str(tmp_path / "state.json")
    assert run("--state", state, "apply", str(tmp_path), "--auto-approve")[0] == 0
    assert run("--state", state, "state", "rm", "codeocean.data_asset.a", str(tmp_path))[0] == 0
    for fmt in ("text", "json", "markdown"):
        code, out = run("--state", state, "plan", str(tmp_path), "--format", fmt)
        # the import command as this run needs it: `reconciler --state ... import ADDR ID PATH`
        assert code == 1 and "already exists" in out and f"{state} import codeocean.data_asset.a " in out, out
        assert VAR_CANARY not in out, out
