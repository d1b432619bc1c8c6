"""Long waits show progress: a live line per waiting resource on a terminal, plain lines in
logs, the reported time within a second; network failures name the host and the cause."""
from __future__ import annotations

import io
import socket
from types import SimpleNamespace

import pytest

from reconciler.cli.progress import ApplyDisplay
from reconciler.errors import TransportError
from reconciler.plan.model import Action, ActionType
from reconciler.providers.http import HttpApi
from reconciler.providers import shared
from reconciler.providers.shared import wait_for

VM = Action("valdi.vm.trainer", "valdi.vm", ActionType.CREATE, [])
KEY = Action("valdi.ssh_key.deploy", "valdi.ssh_key", ActionType.CREATE, [])


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_plain_lines_say_each_status_once_then_every_ten_seconds_with_k_of_n():
    clock, out = Clock(), []
    display = ApplyDisplay(2, live=False, echo=out.append, clock=clock)
    display.event(VM, "start", None, None)
    display.event(KEY, "start", None, None)
    display.event(KEY, "done", 0.4, None)
    for t, status in [(0.5, "provisioning"), (3, "provisioning"), (9.9, "provisioning"), (11, "provisioning"),
                      (12, "running")]:
        clock.now = 100 + t
        display.progress(VM.address, f"VM trainer: {status}")
    display.event(VM, "done", 12.3, None)
    assert out == [
        "valdi.vm.trainer: Creating...",
        "valdi.ssh_key.deploy: Creating...",
        "valdi.ssh_key.deploy: Creation complete after 0s (1 of 2 done)",
        "valdi.vm.trainer: VM trainer: provisioning (0s elapsed)",
        "valdi.vm.trainer: VM trainer: provisioning (11s elapsed)",
        "valdi.vm.trainer: VM trainer: running (12s elapsed)",
        "valdi.vm.trainer: Creation complete after 12s (2 of 2 done)",
    ]


def test_terminal_shows_one_live_line_per_waiting_resource_and_the_count():
    from rich.console import Console

    clock, sink = Clock(), io.StringIO()
    console = Console(file=sink, force_terminal=True, width=120)
    display = ApplyDisplay(3, live=True, console=console, clock=clock)
    try:
        display.event(VM, "start", None, None)
        display.event(KEY, "start", None, None)
        clock.now += 7
        display.progress(VM.address, "VM trainer: provisioning")
        assert display.lines() == ["  valdi.vm.trainer: VM trainer: provisioning... (7s)",
                                   "  valdi.ssh_key.deploy: working... (7s)", "0 of 3 done"]
        display.event(KEY, "done", 7.0, None)
        clock.now += 2
        assert display.lines() == ["  valdi.vm.trainer: VM trainer: provisioning... (9s)", "1 of 3 done"]
    finally:
        display.close()
    assert "valdi.ssh_key.deploy: Creation complete after 7s (1 of 3 done)" in sink.getvalue()


def test_a_wait_is_reported_within_a_second_of_its_end(monkeypatch):
    clock = [0.0]  # the poll loop's clock and sleep, injected: each sleep moves the clock on
    monkeypatch.setattr(shared, "time", SimpleNamespace(monotonic=lambda: clock[0],
                                                        sleep=lambda s: clock.__setitem__(0, clock[0] + s)))
    seen = []

    def check():
        return clock[0] >= 1.5, "provisioning"
    wait_for(check, "VM x", timeout=30, progress=seen.append, api="valdi")
    lag = clock[0] - 1.5
    assert 0 <= lag <= 1.0, f"noticed {lag:.2f}s after the object was ready"
    assert seen and all(m == "VM x: provisioning" for m in seen)


def test_a_refused_connection_names_the_host_and_the_cause():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    api = HttpApi("valdi", f"http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(TransportError) as e:
        api.request("GET", "/v1/vm")
    message = str(e.value)
    assert f"cannot connect to http://127.0.0.1:{port}: connection refused" in message
    assert "ConnectError" not in message


def test_a_raw_network_error_is_described_by_host_and_cause_not_its_class():
    import httpx

    from reconciler.providers.http import describe_failure
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(httpx.ConnectError) as e:
        httpx.get(f"http://127.0.0.1:{port}/presigned?Signature=abc", timeout=5)
    text = describe_failure(e.value)
    assert text == f"cannot connect to http://127.0.0.1:{port}: connection refused"
