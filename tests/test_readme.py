"""Every snippet of the README runs in the sandbox, in the order the README gives them, as
a new user would paste them: the quick start from a copy of examples/, each manifest
snippet in a folder of its own (with what it needs beside it), the emulator's admin
lines against a running emulator. A snippet this test does not know fails it, so a new
one is run too."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from tracked import copy_tracked

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block, in README order."""
    return re.findall(r"```(\w*)\n(.*?)```", README.read_text(), re.S)


def commands(text: str) -> list[str]:
    """The block's lines without comments and blank lines."""
    return [ln for ln in text.splitlines() if shlex.split(ln, comments=True)]


def reconciler(cwd: Path, line: str, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    args = shlex.split(line, comments=True)
    assert args[0] == "reconciler", line
    r = CliRunner().invoke(main, args[1:], catch_exceptions=False)
    return r.exit_code, r.output


def shell(cwd: Path, script: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", "set -e\n" + script], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("VALDI_ENDPOINT", "VALDI_EMAIL", "VALDI_PASSWORD", "VALOHAI_HOST", "VALOHAI_TOKEN",
                 "VALOHAI_PROJECT", "CODEOCEAN_DOMAIN", "CODEOCEAN_TOKEN", "RECONCILER_STATE"):
        monkeypatch.delenv(name, raising=False)


def run_install(text: str, tmp_path: Path, monkeypatch) -> None:
    """Not run (the test runs inside what it installs): it starts with a virtual environment."""
    first = commands(text)[0]
    assert "-m venv" in first and "activate" in first, first
    assert any("pip install" in ln for ln in commands(text))


def run_quick_start(text: str, tmp_path: Path, monkeypatch) -> None:
    copy_tracked(ROOT / "examples", tmp_path / "examples")
    outputs = []
    for line in commands(text):
        if not line.startswith("reconciler"):
            done = shell(tmp_path, line)
            assert done.returncode == 0, (line, done.stderr)
            continue
        code, out = reconciler(tmp_path, line, monkeypatch)
        assert code == 0, (line, out)
        outputs.append((line, out))
    plans = [out for line, out in outputs if " plan examples/" in line]
    assert "No changes" not in plans[0] and "to add" in plans[0]  # the first plan shows what will be made
    assert "No changes." in plans[1]
    applied = next(out for line, out in outputs if "apply plan.bin" in line)
    assert "released" in applied and "Apply complete!" in applied
    assert not (tmp_path / "examples" / ".reconciler").exists() and not (tmp_path / "plan.bin").exists()


def run_emulator_block(text: str, tmp_path: Path, monkeypatch) -> None:
    """Run as written, in bash, by test_first_hour.test_the_readmes_emulator_lines_run_as_written."""
    assert "emulator serve --port 8700" in text and "_emulator/s3/sandbox-bucket" in text


def run_manifest(text: str, tmp_path: Path, monkeypatch) -> None:
    """A manifest snippet, alone in its folder with the local files it names."""
    folder = tmp_path / f"snippet-{len(list(tmp_path.glob('snippet-*')))}"
    folder.mkdir()
    copy_tracked(ROOT / "examples" / "keys", folder / "keys")
    (folder / "main.yaml").write_text(text)
    code, out = reconciler(tmp_path, f"reconciler --sandbox apply {folder} --auto-approve", monkeypatch)
    assert code == 0, out
    assert "FAILED" not in out and "Apply complete!" in out, out
    code, out = reconciler(tmp_path, f"reconciler --sandbox plan {folder} --detailed-exitcode", monkeypatch)
    assert code == 0, out


def run_variables(text: str, tmp_path: Path, monkeypatch) -> None:
    """Variables only: valid once the variable with no default is given."""
    folder = tmp_path / "variables"
    folder.mkdir()
    (folder / "main.yaml").write_text(text + "resources: []\n")
    code, out = reconciler(tmp_path, f"reconciler validate {folder}", monkeypatch)
    assert code == 1 and "token" in out  # no value anywhere: named
    code, out = reconciler(tmp_path, f"reconciler validate {folder} --var token=abc", monkeypatch)
    assert code == 0, out


def run_outputs(text: str, tmp_path: Path, monkeypatch) -> None:
    """Outputs of the examples' resources: in a copy of examples/ whose own outputs make way."""
    folder = copy_tracked(ROOT / "examples", tmp_path / "with-outputs")
    for name in ("valdi.yaml", "shards.yaml"):
        f = folder / name
        f.write_text(f.read_text().split("\noutputs:")[0] + "\n")
    (folder / "outputs.yaml").write_text(text)
    code, out = reconciler(tmp_path, f"reconciler --sandbox plan {folder}", monkeypatch)
    assert code == 0, out
    assert "+ bucket_key = (sensitive)" in out and "+ trainer_ip = (known after apply)" in out


DEPLOY_KEY = """  - kind: valdi.ssh_key
    name: deploy
    spec: {name: deploy, public_key_file: keys/deploy.pub}
"""


def folder_with_keys(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    copy_tracked(ROOT / "examples" / "keys", folder / "keys")
    return folder


def run_lookups(text: str, tmp_path: Path, monkeypatch) -> None:
    """Lookups pick rows the sandbox holds: its catalogue, its store, and a Code Ocean asset
    "managed elsewhere" (made first under another state in the same sandbox). The key the VM
    names is declared beside it."""
    folder = folder_with_keys(tmp_path, "lookups")
    (folder / "elsewhere.yaml").write_text(
        "resources:\n  - kind: codeocean.data_asset\n    name: genome\n    spec: {name: Reference genome, "
        "mount: genome, source: {aws: {bucket: sandbox-bucket, prefix: data/}}}\n")
    code, out = reconciler(tmp_path, f"reconciler --sandbox --state {tmp_path / 'elsewhere.json'} apply "
                                     f"{folder / 'elsewhere.yaml'} --auto-approve", monkeypatch)
    assert code == 0, out
    (folder / "main.yaml").write_text(text + DEPLOY_KEY)
    code, out = reconciler(tmp_path, f"reconciler --sandbox plan {folder / 'main.yaml'}", monkeypatch)
    assert code == 0, out
    assert "valdi.vm.trainer will be created" in out


def run_imports(text: str, tmp_path: Path, monkeypatch) -> None:
    """The ids are placeholders (`9f2c3a1e-...`): objects made in the sandbox under another
    state stand in for them; the plan then imports both."""
    folder = folder_with_keys(tmp_path, "imports")
    vm = ("  - kind: valdi.vm\n    name: trainer\n    spec: {{name: trainer, provider_id: "
          "a45088e0-1681-446e-9a3e-3ed9dfc3d57e, details: {{flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030, "
          "ssh_key_id: '{key}'}}}}\n")
    datum = "  - kind: valohai.datum\n    name: part\n{each}    spec: {{store: sandbox-store, url: s3://sandbox-bucket/shards/p0.csv}}\n"
    (folder / "made.yaml").write_text("resources:\n" + DEPLOY_KEY + vm.format(key="${valdi.ssh_key.deploy.id}")
                                      + datum.format(each=""))
    made_state = tmp_path / "made.json"
    code, out = reconciler(tmp_path, f"reconciler --sandbox --state {made_state} apply {folder / 'made.yaml'} "
                                     "--auto-approve", monkeypatch)
    assert code == 0, out
    import json
    ids = {a: r["id"] for a, r in json.loads(made_state.read_text())["resources"].items()}
    (folder / "made.yaml").unlink()
    entries = text.replace("9f2c3a1e-...", ids["valdi.vm.trainer"]).replace("0190a5e2-...", ids["valohai.datum.part"])
    (folder / "main.yaml").write_text("resources:\n" + vm.format(key=ids["valdi.ssh_key.deploy"])
                                      + datum.format(each="    for_each: [p0]\n") + entries)
    code, out = reconciler(tmp_path, f"reconciler --sandbox plan {folder / 'main.yaml'}", monkeypatch)
    assert code == 0, out
    assert "valdi.vm.trainer will be imported" in out and "valohai.datum.part[p0] will be imported" in out


def run_moved(text: str, tmp_path: Path, monkeypatch) -> None:
    """The entries' targets declared (and their sources not), as the README says they must be."""
    folder = folder_with_keys(tmp_path, "moved")
    datum = "  - kind: valohai.datum\n    name: {name}\n{each}    spec: {{store: sandbox-store, url: {url}}}\n"
    (folder / "main.yaml").write_text(
        "resources:\n" + DEPLOY_KEY +
        "  - kind: valdi.vm\n    name: trainer\n    spec: {name: trainer, provider_id: "
        "a45088e0-1681-446e-9a3e-3ed9dfc3d57e, details: {flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030, "
        "ssh_key_id: '${valdi.ssh_key.deploy.id}'}}\n"
        + datum.format(name="part", each="    for_each: [p0]\n", url="s3://sandbox-bucket/shards/p0.csv")
        + datum.format(name="b", each="    for_each: [y]\n", url="s3://sandbox-bucket/shards/p1.csv")
        + datum.format(name="new", each="    for_each: [k]\n", url="s3://sandbox-bucket/shards/p2.csv")
        + text)
    code, out = reconciler(tmp_path, f"reconciler validate {folder}", monkeypatch)
    assert code == 0, out
    code, out = reconciler(tmp_path, f"reconciler --sandbox plan {folder}", monkeypatch)
    assert code == 0, out


def run_guard(text: str, tmp_path: Path, monkeypatch) -> None:
    """The worked guardrails example: `guard/` with keys/deploy.pub and gpu.yaml."""
    folder = folder_with_keys(tmp_path, "guard")
    (folder / "gpu.yaml").write_text(text)


def run_schedule(text: str, tmp_path: Path, monkeypatch) -> None:
    """Added under the VM of guard/gpu.yaml (its last block)."""
    gpu = tmp_path / "guard" / "gpu.yaml"
    gpu.write_text(gpu.read_text() + text)


def run_console(text: str, tmp_path: Path, monkeypatch) -> None:
    """`$ command` lines run; the lines shown after one (not `...`, not times) are in its output,
    and `echo "exit $?"` is its exit code."""
    session: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            session.append((line[2:], []))
        elif session:
            session[-1][1].append(line)
    for command, shown in session:
        command, _, echo = command.partition("; echo")
        code, out = reconciler(tmp_path, command, monkeypatch)
        wanted = next((int(ln.split()[1]) for ln in shown if ln.startswith("exit ")), None)
        assert code == (wanted if wanted is not None else 0) or (wanted is None and code == 2), (command, out)
        for ln in shown:
            if ln.strip() and ln.strip() != "..." and not ln.startswith("exit ") and not re.search(r"\d{4}-\d\d-", ln):
                assert ln.strip() in out, (command, ln, out)


def run_quirks(text: str, tmp_path: Path, monkeypatch) -> None:
    """An emulator on a free port stands for the one on 8700; `serve --quirks` starts a second."""
    first, second = free_port(), free_port()
    script = [f"reconciler emulator serve --port {first} --data {tmp_path / 'emu1'} > /dev/null 2>&1 &",
              f'eval "$(reconciler emulator env --port {first})"']
    for line in commands(text):
        line = line.replace("curl ", "curl -sf ").replace("8700", str(first))
        if line.startswith("reconciler emulator serve"):
            line = (f"{line.split('#')[0].strip()} --port {second} --data {tmp_path / 'emu2'} > /dev/null 2>&1 &\n"
                    f"reconciler emulator env --port {second} > /dev/null\n"
                    f"curl -sf localhost:{second}/_emulator/quirks | grep -q valdi-provision-no-id\n"
                    "kill $!")
        script.append(line)
    done = shell(tmp_path, "\n".join(script) + "\nkill %1\nwait\necho DONE")
    assert "DONE" in done.stdout, done.stdout + done.stderr


def handler(lang: str, text: str):
    if lang == "":  # a synopsis or a tree, not something to run
        return None
    if lang == "bash":
        if "pip install" in text:
            return run_install
        if "--sandbox plan examples/" in text:
            return run_quick_start
        if "emulator serve --port 8700" in text:
            return run_emulator_block
        if "_emulator/quirks" in text:
            return run_quirks
    if lang == "console":
        return run_console
    if lang == "yaml":
        if text.startswith("lookups:"):
            return run_lookups
        if text.startswith("imports:"):
            return run_imports
        if text.startswith("moved:"):
            return run_moved
        if "policies:" in text:
            return run_guard
        if text.lstrip().startswith("schedule:"):
            return run_schedule
        if "resources:" in text:
            return run_manifest
        if text.lstrip().startswith("variables:"):
            return run_variables
        if text.lstrip().startswith("outputs:"):
            return run_outputs
    pytest.fail(f"a README snippet no test runs:\n```{lang}\n{text}```")


def test_every_readme_snippet_runs_in_the_sandbox_in_readme_order(tmp_path, monkeypatch, clean_env):
    ran = []
    for lang, text in blocks():
        run = handler(lang, text)
        if run is not None:
            run(text, tmp_path, monkeypatch)
            ran.append(run.__name__)
    assert ran[:2] == ["run_install", "run_quick_start"]  # the README starts with installing, then the sandbox
    assert ran.count("run_manifest") >= 2


def test_the_readme_shows_the_saved_plan_flow_in_the_sandbox():
    quick = next(text for lang, text in blocks() if "--sandbox plan examples/" in text and "pip install" not in text)
    assert re.search(r"--sandbox plan examples/.* -o plan\.bin", quick)
    assert "--sandbox apply plan.bin" in quick


def test_the_quick_start_leaves_the_repository_clean(tmp_path):
    """The README's last quick start line removes what the sandbox wrote (a second run starts afresh)."""
    quick = next(text for lang, text in blocks() if "--sandbox plan examples/" in text and "pip install" not in text)
    cleanup = [ln for ln in commands(quick) if ln.startswith("rm ")]
    assert cleanup and all(p in cleanup[0] for p in ("examples/.reconciler", "examples/.secrets", "plan.bin"))
    assert shutil.which("bash")
