"""The cycle collector is paused while a one-shot command builds its plan (cli/collector.py),
and left alone in a process that runs many commands (watch, this test run)."""
from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from reconciler.cli import collector


@pytest.fixture
def restore_collector():
    was_enabled, was_one_shot = gc.isenabled(), collector.one_shot
    yield
    gc.unfreeze()
    collector.one_shot = was_one_shot
    (gc.enable if was_enabled else gc.disable)()


def test_a_one_shot_run_builds_its_plan_with_the_collector_off_then_freezes_it(restore_collector):
    collector.one_shot = True
    gc.enable()
    before = gc.get_freeze_count()
    with collector.paused():
        assert not gc.isenabled()
        built = [{"spec": {"n": i}} for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= before + len(built)  # never scanned again


def test_a_process_running_many_commands_keeps_its_collector(restore_collector):
    collector.one_shot = False
    gc.enable()
    before = gc.get_freeze_count()
    with collector.paused():
        assert gc.isenabled()
    assert gc.get_freeze_count() == before


def test_only_the_process_own_command_line_is_one_shot(restore_collector):
    from click.testing import CliRunner

    from reconciler.cli import main

    collector.one_shot = False
    CliRunner().invoke(main, ["--help"])  # arguments given: a caller running many commands
    assert collector.one_shot is False
    code = ("import sys; sys.argv = ['reconciler', '--help']\n"
            "from reconciler.cli import collector, main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('one-shot' if collector.one_shot else 'shared', file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().endswith("one-shot")
