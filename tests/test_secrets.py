"""Secret hygiene of the state file, and lock behaviour: two applies on one state, the
second fails at once naming the holder; a lock left by a killed process frees itself.
(No-secret-in-any-output is tests/test_sandbox_secrets.py.)"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from crash_harness import MUTATING, apply_cmd, copy_example

from reconciler.cli import main
from reconciler.emulator.core import SANDBOX
from reconciler.state import local as local_store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.yaml"))


def run(*args):
    r = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return r.exit_code, r.output


@pytest.fixture
def manifests(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    for name in EXAMPLES:
        copy_example(name, d)
    return d


def test_state_file_is_private_and_holds_no_api_credential(tmp_path, manifests, sandbox_env):
    state = tmp_path / "state.json"
    code, out = run("--state", str(state), "apply", str(manifests), "--auto-approve")
    assert code == 0, out
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    text = state.read_text()
    for secret in (SANDBOX["valdi_password"], SANDBOX["valohai_token"], SANDBOX["codeocean_token"]):
        assert secret not in text  # provider credentials come from the environment, never the state


def _hold_lock(tmp_path, manifests, sandbox_env, admin):
    """Start an apply in a subprocess and keep it inside the lock (a stalled request)."""
    state = tmp_path / "state.json"
    admin.post("/_emulator/faults", json={"pattern": MUTATING, "kinds": ["stall"], "times": 1, "stall_seconds": 30})
    proc = subprocess.Popen(apply_cmd(manifests, state), env={**os.environ, **sandbox_env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while admin.get("/_emulator/faults").json()["faults"][0]["hits"] < 1:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    return proc, state


def test_second_apply_on_one_state_fails_at_once_naming_the_holder(tmp_path, manifests, sandbox_env, admin,
                                                                   monkeypatch):
    proc, state = _hold_lock(tmp_path, manifests, sandbox_env, admin)
    naps: list[float] = []  # the lock's waits, through an injected sleep: "at once" is none at all
    monkeypatch.setattr(local_store, "time", SimpleNamespace(monotonic=time.monotonic, sleep=naps.append))
    try:
        code, out = run("--state", str(state), "apply", str(manifests), "--auto-approve")
        assert code == 1, out
        assert "locked" in out and f"pid {proc.pid}" in out and "apply" in out, out
        assert "Traceback" not in out
        assert naps == []  # refused on the first try of the lock, no wait
        refused = out.strip()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        admin.delete("/_emulator/faults")
    # the killed holder's lock went with its process: the next apply proceeds and converges
    code, out = run("--state", str(state), "apply", str(manifests), "--auto-approve")
    assert code == 0, out
    assert run("--state", str(state), "plan", str(manifests), "--detailed-exitcode")[0] == 0
    print(f"\nsecond apply refused without waiting: {refused}")


def test_state_unlock_clears_the_lock_a_killed_apply_left(tmp_path, manifests, sandbox_env, admin):
    proc, state = _hold_lock(tmp_path, manifests, sandbox_env, admin)
    lock_id = json.loads(Path(str(state) + ".lock").read_text())["id"]
    code, out = run("--state", str(state), "state", "unlock", lock_id)
    assert code == 1 and "live process" in out, out  # a running holder is not unlocked
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    admin.delete("/_emulator/faults")
    code, out = run("--state", str(state), "state", "unlock", "not-the-id")
    assert code == 1 and lock_id in out, out
    code, out = run("--state", str(state), "state", "unlock", lock_id)
    assert code == 0, out
    code, out = run("--state", str(state), "apply", str(manifests), "--auto-approve")
    assert code == 0, out


def test_no_issued_token_or_sandbox_secret_in_debug_logs_errors_or_state(tmp_path, manifests, sandbox_env, admin,
                                                                          caplog, monkeypatch):
    import logging
    state = tmp_path / "state.json"
    outputs = []
    with caplog.at_level(logging.DEBUG):
        code, out = run("--debug", "--state", str(state), "apply", str(manifests), "--auto-approve")
        assert code == 0, out
        outputs.append(out)
        outputs.append(run("--debug", "--state", str(state), "plan", str(manifests), "--format", "json")[1])
        monkeypatch.setenv("VALOHAI_TOKEN", "wrong-token")  # a forced error message
        code, out = run("--debug", "--state", str(state), "plan", str(manifests))
        assert code == 1 and "Error:" in out, out
        outputs.append(out)
    secrets = {SANDBOX["valdi_password"], SANDBOX["valohai_token"], SANDBOX["codeocean_token"]}
    for kind, n in admin.get("/_emulator/docs").json().items():  # every token the emulator issued
        if "token" in kind and n:
            for doc in admin.get(f"/_emulator/docs/{kind}").json()["items"]:
                secrets |= {v for k, v in doc.items() if k in ("token", "access_token", "refresh_token", "key")
                            and isinstance(v, str) and len(v) >= 8}
    doc = json.loads(state.read_text())
    secrets |= {v for r in doc["resources"].values() for v in (r.get("secrets") or {}).values()
                if isinstance(v, str) and len(v) >= 8}
    text = "\n".join(outputs) + caplog.text + json.dumps(doc.get("resources", {}).get("outputs", ""))
    leaked = [s[:6] + "..." for s in secrets if s in text]
    assert not leaked, leaked
    print(f"\n{len(secrets)} secret values checked against {len(text)} characters of output: none found")


DERIVED = """
providers:
  valdi: {email: "${env.VALDI_EMAIL}", password: "${env.VALDI_PASSWORD}"}
  codeocean: {domain: "${env.CODEOCEAN_DOMAIN}", token: "${env.CODEOCEAN_TOKEN}"}
resources:
  - kind: valdi.volume
    name: vol
    spec: {bucket_name: derived-secrets}
  - kind: codeocean.data_asset
    name: notes
    spec:
      name: Notes
      mount: notes
      description: "DESCRIPTION"
      source:
        aws: {bucket: sandbox-bucket, prefix: data/, keep_on_external_storage: false, public: false}
"""


def test_a_value_derived_from_a_secret_is_secret_in_every_output_and_sealed_in_the_state(
        tmp_path, sandbox_env, caplog, monkeypatch):
    """`description: "key=${valdi.volume.vol.secret_access_key}"`: masked in text, JSON and
    Markdown plans, the plan file, `show`, --debug logs and `state show`; with
    RECONCILER_STATE_KEY it is sealed in last_applied too."""
    import logging
    pytest.importorskip("cryptography")
    monkeypatch.setenv("RECONCILER_STATE_KEY", "a key for this test")
    folder = tmp_path / "m"
    folder.mkdir()
    manifest = folder / "main.yaml"
    manifest.write_text(DERIVED.replace("DESCRIPTION", "plain"))
    state = str(tmp_path / "state.json")
    assert run("--state", state, "apply", str(folder), "--auto-approve")[0] == 0
    manifest.write_text(DERIVED.replace("DESCRIPTION", "key=${valdi.volume.vol.secret_access_key}"))
    outputs, plan_file = [], tmp_path / "plan.bin"
    with caplog.at_level(logging.DEBUG):
        for fmt in ("text", "json", "markdown"):
            code, out = run("--debug", "--state", state, "plan", str(folder), "--format", fmt, "-o", str(plan_file))
            assert code == 0, out
            outputs.append(out)
            outputs.append(plan_file.read_text())
            outputs.append(run("show", str(plan_file), "--format", fmt)[1])
        code, out = run("--debug", "--state", state, "apply", str(folder), "--auto-approve")
        assert code == 0, out
        outputs.append(out)
    outputs.append(run("--state", state, "state", "show", "codeocean.data_asset.notes", str(folder))[1])
    monkeypatch.delenv("RECONCILER_STATE_KEY")
    stored = Path(state).read_text()
    monkeypatch.setenv("RECONCILER_STATE_KEY", "a key for this test")
    from reconciler.state.local import LocalStateStore
    doc = LocalStateStore(state).read()
    secret = doc.resources["valdi.volume.vol"].secrets["secret_access_key"]
    assert doc.resources["codeocean.data_asset.notes"].last_applied["description"] == f"key={secret}"
    text = "\n".join(outputs) + caplog.text
    assert "description" in text and len(secret) >= 16
    assert secret not in text, "a secret derived into a description was shown"
    assert secret not in stored, "a secret derived into a description sits in clear in the state"
    print(f"\nderived secret checked against {len(text)} characters of plans (3 formats), plan files, show, "
          f"--debug logs, state show and {len(stored)} of state: none found")
