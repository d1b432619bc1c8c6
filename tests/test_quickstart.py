"""The README's quick start: `reconciler --sandbox apply examples/ --auto-approve` on a copy
of examples/, then a second plan shows no changes, then destroy leaves nothing of ours."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from tracked import copy_tracked

from reconciler.cli import main

pytest_plugins = ["pg"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args):
    result = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_sandbox_quick_start_converges(tmp_path, monkeypatch):
    work = tmp_path / "examples"
    copy_tracked(EXAMPLES, work)
    for name in ("VALDI_EMAIL", "VALDI_PASSWORD", "VALOHAI_TOKEN", "CODEOCEAN_TOKEN", "RECONCILER_STATE"):
        monkeypatch.delenv(name, raising=False)
    code, out = run("apply", str(work), "--sandbox", "--auto-approve")
    assert code == 0, out
    assert "Apply complete!" in out
    code, out = run("--sandbox", "plan", str(work), "--detailed-exitcode")
    assert code == 0, out
    assert "No changes" in out
    code, out = run("--sandbox", "output", "trainer_ip", str(work))
    assert code == 0 and out.count(".") == 3, out  # an IPv4 address, printed raw
    state = work / ".reconciler" / "sandbox" / "state.json"
    assert state.exists() and oct(state.stat().st_mode & 0o777) == "0o600"
    code, out = run("--sandbox", "destroy", str(work), "--auto-approve")
    assert code == 1 and "valdi.vm.trainer is protected by prevent_destroy" in out  # nothing was touched
    code, out = run("--sandbox", "state", "unprotect", "valdi.vm.trainer", str(work))
    assert code == 0, out
    code, out = run("--sandbox", "destroy", str(work), "--auto-approve")
    assert code == 0, out
    code, out = run("--sandbox", "state", "list", str(work))
    assert out.strip() == ""


def test_sandbox_quick_start_with_postgres_state(tmp_path, monkeypatch, request):
    url = request.getfixturevalue("pg_url")
    work = tmp_path / "examples"
    copy_tracked(EXAMPLES, work)
    monkeypatch.setenv("RECONCILER_STATE", url)
    code, out = run("--sandbox", "apply", str(work), "--auto-approve")
    assert code == 0, out
    code, out = run("--sandbox", "plan", str(work), "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out
    assert not (work / ".reconciler" / "sandbox" / "state.json").exists()  # the state went to PostgreSQL
