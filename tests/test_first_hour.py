"""A new user's first hour: exit codes a pipeline can trust, the README's emulator lines
run as written, one-line errors instead of tracebacks, flags where people type them."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from tracked import copy_tracked

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
RECONCILER = [sys.executable, "-c", "from reconciler.cli import main; main()"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("args", [
    ["plan", "--detailed-exitcode", "--taget", "x"],   # a mistyped flag
    ["drift", "--bogus"],
    ["bogus-command"],
    ["plan", "--format", "yaml"],                        # a value not among the choices
    ["apply", "--parallelism", "0"],
    ["--no-such-global", "plan"],
    ["state", "show"],                                   # a missing argument
    ["apply", "--lock-timeout", "soon", "x.yaml"],      # a duration that is not one
    ["apply", "--lock-timeout", "99999999999999999h", "x.yaml"],  # one past any clock
    ["extend", "valdi.vm.a", "99999999999999999d"],    # was an internal OverflowError
    ["--call-deadline", "nan", "validate", "x.yaml"],   # no number: never a deadline
    ["--call-deadline", "inf", "validate", "x.yaml"],
    ["--call-deadline", "1e400", "validate", "x.yaml"],
], ids=lambda a: " ".join(a))
def test_a_usage_error_exits_1_never_2(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.yaml").write_text("resources: []\n")
    code, out = run(*args)
    assert code == 1, out
    assert "Error" in out


def test_help_documents_every_exit_code():
    code, out = run("--help")
    assert code == 0
    for meaning in (r"0\s+success", r"1\s+an error.*usage error", r"2\s+changes present"):
        assert re.search(meaning, out), meaning
    readme = (ROOT / "README.md").read_text()
    assert "| 2 | changes present" in readme and "usage errors" in readme


ASSET = """\
providers:
  codeocean: {domain: "${env.CODEOCEAN_DOMAIN}", token: "${env.CODEOCEAN_TOKEN}"}
resources:
  - kind: codeocean.data_asset
    name: data
    spec: {name: data, mount: data, source: {aws: {bucket: sandbox-bucket, prefix: data/}}}
"""


def plan_on_a_terminal(folder: Path, *args: str) -> tuple[str, str]:
    """`reconciler ... plan` with its stdout on a pseudo-terminal, where colour is on unless
    turned off (NO_COLOR is taken out of its environment): (stdout, stderr)."""
    import pty

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    master, slave = pty.openpty()
    with open(folder / "stderr.txt", "w+") as err:
        proc = subprocess.Popen([*RECONCILER, *args], stdout=slave, stderr=err, env=env)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        assert proc.wait(60) == 0, out.decode(errors="replace")
        err.seek(0)
        return out.decode(), err.read()


def test_no_color_and_debug_take_effect_before_and_after_the_command(tmp_path, sandbox_env):
    (tmp_path / "m.yaml").write_text(ASSET)
    state = str(tmp_path / "state.json")
    out, err = plan_on_a_terminal(tmp_path, "--state", state, "plan", str(tmp_path))
    assert "codeocean.data_asset.data" in out and "\x1b[" in out, out  # a terminal gets colour
    assert "data_assets" not in err, err  # and no request log
    for args in (["--state", state, "plan", str(tmp_path), "--no-color", "--debug"],
                 ["--no-color", "--debug", "--state", state, "plan", str(tmp_path)]):
        out, err = plan_on_a_terminal(tmp_path, *args)
        assert "codeocean.data_asset.data" in out and "\x1b" not in out, (args, out)
        assert re.search(r"reconciler\.providers\.http .*/data_assets", err), (args, err)  # the requests


def test_validate_does_not_offer_sandbox_but_accepts_it(tmp_path):
    code, out = run("validate", "--help")
    assert "--sandbox" not in out
    (tmp_path / "m.yaml").write_text("resources: []\n")
    assert run("validate", str(tmp_path), "--sandbox")[0] == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readme_emulator_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", text, re.S) if "emulator serve" in b)
    return [ln.split("#")[0].strip() for ln in block.splitlines() if ln.split("#")[0].strip()]


def test_the_readmes_emulator_lines_run_as_written(tmp_path):
    """The README's block, in bash, on a free port and a temporary folder: the emulator
    starts in the background, `eval "$(reconciler emulator env ...)"` returns with the
    variables set, a client call with them works, and `kill %1` stops it."""
    port = str(free_port())
    lines = [ln.replace("8700", port).replace("/tmp/emu", str(tmp_path / "emu")) for ln in readme_emulator_lines()]
    assert any(ln.startswith("eval ") for ln in lines) and any(ln.startswith("kill") for ln in lines)
    # `vh data list` needs valohai-cli's own config folder; the same call through httpx proves the variables
    lines = [ln if not ln.startswith("vh ") else
             'python -c "import os,httpx; r=httpx.get(os.environ[\'VALOHAI_HOST\']+\'/api/v0/data/\','
             'headers={\'Authorization\':\'Token \'+os.environ[\'VALOHAI_TOKEN\']},'
             'params={\'project\':os.environ[\'VALOHAI_PROJECT\']}); print(\'DATA\', r.status_code)"' for ln in lines]
    bin_dir = Path(sys.executable).parent
    script = "set -e\n" + "\n".join(lines) + "\nwait\necho STOPPED\n"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert "DATA 200" in done.stdout, done.stdout + done.stderr
    assert "STOPPED" in done.stdout
    assert (tmp_path / "emu").is_dir()


def test_emulator_env_file_and_busy_port_is_one_line(tmp_path):
    port = free_port()
    env_file = tmp_path / "emu.env"
    server = subprocess.Popen([*RECONCILER, "emulator", "serve", "--port", str(port), "--env-file", str(env_file)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not env_file.exists():
            time.sleep(0.1)
        assert f"export VALDI_ENDPOINT=http://127.0.0.1:{port}" in env_file.read_text()
        busy = subprocess.run([*RECONCILER, "emulator", "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=30)
        assert busy.returncode == 1
        assert "Traceback" not in busy.stderr
        lines = [ln for ln in busy.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and str(port) in lines[0] and "in use" in lines[0], busy.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=15)


def test_emulator_env_says_when_nothing_answers():
    code, out = run("emulator", "env", "--port", str(free_port()), "--wait", "0")
    assert code == 1 and "no emulator answers" in out


def test_tests_copy_only_what_git_tracks(tmp_path):
    """A quick start run leaves examples/.reconciler/ (sandbox data, state) behind; a test's
    copy of examples/ must not carry it, or the test starts from someone else's objects."""
    repo = tmp_path / "repo"
    (repo / "examples" / "keys").mkdir(parents=True)
    (repo / ".gitignore").write_text(".reconciler/\n")
    (repo / "examples" / "a.yaml").write_text("resources: []\n")
    (repo / "examples" / "keys" / "k.pub").write_text("ssh-ed25519 AAAA\n")
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=repo, check=True)
    (repo / "examples" / ".reconciler" / "sandbox").mkdir(parents=True)
    (repo / "examples" / ".reconciler" / "sandbox" / "state.json").write_text("{}")
    copy = copy_tracked(repo / "examples", tmp_path / "copy")
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file()) == ["a.yaml", "keys/k.pub"]


def test_the_credentials_file_names_the_volumes_own_prefix():
    from reconciler.providers.valdi.volume import credentials_text
    text = credentials_text({"access_key_id": "AK", "secret_access_key": "SK"}, "team-datasets", 22)
    example = next(ln for ln in text.splitlines() if "aws s3 ls" in ln)
    assert example.rstrip().endswith("s3://valdi/22/team-datasets/")
