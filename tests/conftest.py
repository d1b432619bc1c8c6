"""Shared fixtures: a real emulator over loopback HTTP, and the sandbox environment."""
from __future__ import annotations

import os

import httpx
import pytest

from reconciler.emulator import EmulatorConfig, EmulatorServer

FAST = dict(vm_provision_delay=0.2, asset_ready_delay=0.1)


@pytest.fixture
def emulator(tmp_path):
    """A fresh emulator on a free loopback port, with short provisioning delays."""
    server = EmulatorServer(data_dir=tmp_path / "emulator", config=EmulatorConfig(**FAST))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def admin(emulator):
    """An httpx client for the emulator's /_emulator/ surface."""
    with httpx.Client(base_url=emulator.url, timeout=30) as client:
        yield client


@pytest.fixture
def sandbox_env(emulator, monkeypatch):
    """The environment `reconciler emulator serve` prints, set for this test."""
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    return emulator.env()


def cli(*args: str) -> tuple[int, str]:
    """The CLI in-process: (exit code, stdout and stderr)."""
    from click.testing import CliRunner

    from reconciler.cli import main
    r = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return r.exit_code, r.output


class Infra:
    """A folder of manifests with its own state file, driven through the CLI."""

    def __init__(self, path, manifest: str):
        self.path, self.manifest = path, path / manifest

    @classmethod
    def example(cls, tmp_path, name: str) -> "Infra":
        """examples/NAME with the local files it names, in a fresh folder of its own."""
        from crash_harness import copy_example
        d = tmp_path / "infra"
        d.mkdir()
        copy_example(name, d)
        return cls(d, name)

    def _run(self, command: str, *extra: str) -> tuple[int, str]:
        return cli("--state", str(self.path / "state.json"), command, str(self.path), *extra)

    def apply(self, *extra: str) -> tuple[int, str]:
        return self._run("apply", "--auto-approve", *extra)

    def plan(self, *extra: str) -> tuple[int, str]:
        return self._run("plan", *extra)

    def destroy(self) -> tuple[int, str]:
        return self._run("destroy", "--auto-approve")

    def edit(self, old: str, new: str) -> None:
        text = self.manifest.read_text()
        assert old in text, old
        self.manifest.write_text(text.replace(old, new, 1))

    def state(self) -> dict:
        import json
        return json.loads((self.path / "state.json").read_text())


def api_calls(admin_client: httpx.Client) -> dict[str, int]:
    return admin_client.get("/_emulator/requests").json()["counts"]


os.environ.setdefault("NO_COLOR", "1")


@pytest.fixture(autouse=True, scope="session")
def _machine_plan_key(tmp_path_factory):
    """This machine's plan key (reconciler.plan.signing) in a folder of the test run's own,
    not the developer's ~/.config."""
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    for name in ("RECONCILER_PLAN_KEY", "RECONCILER_STATE_KEY"):
        os.environ.pop(name, None)
