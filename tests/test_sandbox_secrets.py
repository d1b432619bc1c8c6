"""The sandbox's secret values (password, tokens, and every secret the apply received:
private keys, volume access keys) appear in no plan output (text, JSON, Markdown), no
saved plan file, no `state show`, and no --debug log."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from click.testing import CliRunner
from tracked import copy_tracked

from reconciler.cli import main
from reconciler.emulator.core import SANDBOX

ROOT = Path(__file__).resolve().parent.parent
SECRETS = [SANDBOX["valdi_password"], SANDBOX["valohai_token"], SANDBOX["codeocean_token"]]


def run(*args):
    result = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return result.exit_code, result.output  # click >= 8.2: stdout and stderr together


def test_no_output_carries_a_sandbox_secret(tmp_path, sandbox_env, monkeypatch, caplog):
    work = tmp_path / "infra"
    copy_tracked(ROOT / "examples", work)
    monkeypatch.chdir(tmp_path)
    state = str(tmp_path / "state.json")
    outputs = []
    with caplog.at_level(logging.DEBUG):
        outputs.append(run("--debug", "--state", state, "apply", "infra", "--auto-approve"))
    for fmt in ("text", "json", "markdown"):
        outputs.append(run("--state", state, "plan", "infra", "--format", fmt, "-o", f"plan-{fmt}.bin"))
        outputs.append(run("show", f"plan-{fmt}.bin", "--format", fmt))
        outputs.append((0, (tmp_path / f"plan-{fmt}.bin").read_text()))
    code, listing = run("--state", state, "state", "list")
    for line in listing.splitlines():
        outputs.append(run("--state", state, "state", "show", line.split("\t")[0]))
    monkeypatch.setenv("VALOHAI_TOKEN", "not-the-token")  # a failing run's error message
    failed = run("--state", state, "plan", "infra")
    assert failed[0] == 1 and "Error:" in failed[1]
    outputs.append(failed)
    text = "\n".join(out for _, out in outputs) + "\n" + caplog.text
    assert "Apply complete!" in outputs[0][1]
    received = received_secrets(tmp_path / "state.json")
    if (ROOT / "examples" / "valdi.yaml").exists():  # volume keys and a generated private key
        assert len(received) >= 3, "the VALDI example should have received secrets to look for"
    for secret in SECRETS + received:
        assert secret not in text, f"a sandbox secret leaked: {secret[:6]}..."
    assert "(redacted)" in caplog.text or "Authorization" not in caplog.text


def received_secrets(state_file: Path) -> list[str]:
    """Every secret value the apply received (sensitive outputs in the state), as
    searchable strings: each line of a multi-line value (a PEM private key) separately."""
    doc = json.loads(state_file.read_text())
    found = []
    for entry in doc["resources"].values():
        for value in (entry.get("secrets") or {}).values():
            if isinstance(value, str):
                found += [line for line in value.splitlines() if len(line) >= 16 and "-----" not in line]
    return found
