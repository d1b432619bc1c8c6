"""The CLI's habits a user meets on the first day: --sandbox after any command, shell
completion, help on every option, NO_COLOR's convention, plurals, no invented positions,
and a word while --lock-timeout waits."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import click
import pytest
from click.testing import CliRunner
from memkind import MemoryApi, MemoryProvider

from reconciler.cli import common, main
from reconciler.cli.root import Globals


@pytest.fixture
def api(monkeypatch):
    api = MemoryApi()
    monkeypatch.setattr(common, "providers", lambda names=None: {"test": MemoryProvider(api)})
    return api


def run(*args, env=None):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)
    return result.exit_code, result.output


def every_command(cmd: click.Command = main, path: tuple[str, ...] = ()):
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from every_command(sub, path + (name,))
    else:
        yield path, cmd


@pytest.mark.parametrize("path", [p for p, _ in every_command()], ids=" ".join)
def test_every_command_takes_sandbox_after_it_and_documents_every_option(path):
    command = dict(every_command())[path]
    flags = {o for p in command.params for o in getattr(p, "opts", [])}
    assert "--sandbox" in flags, path
    undocumented = [p.opts for p in command.params if isinstance(p, click.Option) and not p.hidden and not p.help]
    assert not undocumented, f"reconciler {' '.join(path)}: options without help: {undocumented}"


def test_sandbox_after_state_list_reads_the_sandbox_state(tmp_path):
    (tmp_path / "m.yaml").write_text("resources: []\n")
    sandbox_state = tmp_path / ".reconciler" / "sandbox" / "state.json"
    sandbox_state.parent.mkdir(parents=True)
    sandbox_state.write_text('{"version": 1, "lineage": "l", "serial": 1, "resources": {"test.item.a": '
                             '{"kind": "test.item", "id": "1"}}, "pending": {}}')
    code, out = run("state", "list", str(tmp_path), "--sandbox")
    assert code == 0 and "test.item.a" in out, out
    assert run("graph", str(tmp_path), "--sandbox")[0] == 0


@pytest.mark.parametrize("command", [("state", "list"), ("state", "show", "test.item.a")])
def test_a_state_command_where_there_is_no_state_says_so_and_exits_1(tmp_path, command):
    """An empty listing would read as "nothing is managed" while the state is elsewhere
    (the sandbox's, another --state): one line saying where it looked, exit 1."""
    (tmp_path / "m.yaml").write_text("resources: []\n")
    code, out = run(*command, str(tmp_path))
    assert code == 1 and "no state at" in out and "--sandbox" in out, out
    assert len(out.strip().splitlines()) == 1, out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_complete_commands_and_flags(shell):
    code, out = run("completion", shell)
    assert code == 0 and "_RECONCILER_COMPLETE" in out
    env = {"_RECONCILER_COMPLETE": "bash_complete", "COMP_WORDS": "reconciler plan --deta", "COMP_CWORD": "2"}
    done = subprocess.run([sys.executable, "-c", "from reconciler.cli import main; main(prog_name='reconciler')"],
                          env={**env, "PATH": ""}, capture_output=True, text=True)
    assert "--detailed-exitcode" in done.stdout


@pytest.mark.parametrize("value, colour", [("", True), ("1", False), ("0", False)])
def test_no_color_set_to_anything_but_empty_turns_colour_off(value, colour, monkeypatch):
    seen = {}

    @main.command(name="_colour_probe", hidden=True)
    @click.pass_obj
    def probe(g: Globals) -> None:
        seen["color"] = g.color

    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    import reconciler.cli.root as root
    monkeypatch.setattr(root.sys.stdout, "isatty", lambda: True, raising=False)
    try:
        monkeypatch.setenv("NO_COLOR", value)
        main.main(["_colour_probe"], standalone_mode=False)
    finally:
        main.commands.pop("_colour_probe")
    assert seen["color"] is colour


def test_validate_counts_in_the_singular_and_a_missing_path_has_no_invented_position(tmp_path):
    (tmp_path / "m.yaml").write_text("resources:\n  - {kind: valdi.ssh_key, name: k, spec: {name: k, "
                                     "public_key: ssh-ed25519 AAAA}}\n")
    code, out = run("validate", str(tmp_path))
    assert code == 0 and "Valid: 1 resource in 1 file." in out, out
    code, out = run("validate", str(tmp_path / "nope"))
    assert code == 1 and f"{tmp_path / 'nope'}: no such file or directory" in out and ":1:1" not in out


def test_destroy_replace_is_refused():
    code, out = run("destroy", ".", "--replace", "a.b.c")
    assert code == 1 and "--replace" in out


def test_a_lock_timeout_says_whose_lock_it_waits_for(api, tmp_path, monkeypatch):
    from reconciler.state.local import LocalStateStore

    (tmp_path / "main.yaml").write_text(textwrap.dedent("""
        resources:
          - {kind: test.item, name: a, spec: {name: a, value: 1}}
    """))
    store = LocalStateStore(tmp_path / ".reconciler" / "state.json")
    held, release = threading.Event(), threading.Event()
    echo = click.echo

    def echo_then_release(message=None, *args, **kwargs):  # the holder lets go once the wait is announced
        echo(message, *args, **kwargs)
        if isinstance(message, str) and message.startswith("Waiting"):
            release.set()

    monkeypatch.setattr(click, "echo", echo_then_release)

    def holder():
        with store.lock("apply"):
            held.set()
            release.wait(60)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(30)
    try:
        code, out = run("--no-color", "apply", str(tmp_path), "--auto-approve", "--lock-timeout", "60s")
    finally:
        release.set()
        t.join(30)
    assert code == 0, out
    assert "Waiting up to 60s for the state lock, lock " in out and "held by" in out and "pid" in out
    assert "Apply complete!" in out
