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


def api_calls(admin_client: httpx.Client) -> dict[str, int]:
    return admin_client.get("/_emulator/requests").json()["counts"]


os.environ.setdefault("NO_COLOR", "1")
