"""One retry layer with one budget (issue 25, item 6): the HTTP layer's retries and the
engine's recovery spend the same 8 attempts and the same deadline, Retry-After is
honoured up to the deadline, a refused connection is given up on within 10 s, and each
retry is one line to the retry hooks and one debug line naming its cause. Time is a
fake clock: no test waits for real."""
from __future__ import annotations

import logging
import socket

import pytest
from conftest import cli

from reconciler.emulator.core import SANDBOX
from reconciler.engine import recovery
from reconciler.errors import ApiError, TransportError
from reconciler.providers import budget, http
from reconciler.providers.http import HttpApi

TOKEN = SANDBOX["valohai_token"]
ME = "/api/v0/users/me/"


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@pytest.fixture
def fake_time(monkeypatch):
    ft = FakeTime()
    monkeypatch.setattr(budget, "clock", ft.now, raising=False)
    monkeypatch.setattr(budget, "sleep", ft.sleep, raising=False)
    return ft


def sent(admin, path: str) -> int:
    return sum(1 for e in admin.get("/_emulator/requests", params={"full": "1"}).json()["log"] if e["path"] == path)


def valohai(emulator, ft: FakeTime) -> HttpApi:
    return HttpApi("Valohai", emulator.url, headers={"Authorization": f"Token {TOKEN}"}, sleep=ft.sleep)


def test_a_503_with_retry_after_60_makes_at_most_8_requests_within_its_deadline(emulator, admin, fake_time):
    admin.post("/_emulator/faults", json={"pattern": f"GET {ME}", "kinds": [503], "retry_after": 60})
    api = valohai(emulator, fake_time)
    with pytest.raises(ApiError):
        recovery.retry(lambda: api.request("GET", ME), sleep=fake_time.sleep)
    assert sent(admin, ME) <= 8
    assert sum(fake_time.slept) <= budget.DEFAULT_DEADLINE
    assert all(s >= 60 for s in fake_time.slept)  # never earlier than the server asked


def test_the_two_layers_share_8_attempts(emulator, admin, fake_time):
    admin.post("/_emulator/faults", json={"pattern": f"GET {ME}", "kinds": [503], "retry_after": 0.5})
    api = valohai(emulator, fake_time)
    with pytest.raises(ApiError):
        recovery.retry(lambda: api.request("GET", ME), sleep=fake_time.sleep)
    assert sent(admin, ME) == 8


def test_the_deadline_is_a_flag_and_an_environment_variable(emulator, admin, fake_time, monkeypatch):
    admin.post("/_emulator/faults", json={"pattern": f"GET {ME}", "kinds": [503], "retry_after": 30})
    monkeypatch.setenv("RECONCILER_CALL_DEADLINE", "90")
    with pytest.raises(ApiError):
        valohai(emulator, fake_time).request("GET", ME)
    assert sent(admin, ME) == 4  # waits of 30 s at 0, 30, 60 and 90 s
    budget.set_deadline(10)
    try:
        admin.delete("/_emulator/requests")
        with pytest.raises(ApiError):
            valohai(emulator, fake_time).request("GET", ME)
        assert sent(admin, ME) == 1  # a 30 s wait does not fit in 10 s: no retry
    finally:
        budget.set_deadline(None)


@pytest.mark.parametrize("raw", ["inf", "nan", "1e400", "0", "-5", "soon"])
def test_a_call_deadline_from_the_environment_that_is_no_usable_number_is_the_default(raw):
    assert budget.deadline_seconds({"RECONCILER_CALL_DEADLINE": raw}) == budget.DEFAULT_DEADLINE


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_gives_up_within_10_s_and_then_fails_fast(fake_time):
    api = HttpApi("VALDI", f"http://127.0.0.1:{closed_port()}", backoff=2.0, max_backoff=8.0)
    with pytest.raises(TransportError) as err:
        api.request("GET", "/v1/vm")
    assert "connection refused" in str(err.value)
    assert sum(fake_time.slept) <= budget.CONNECT_GIVE_UP
    before = api.stats["requests"]
    with pytest.raises(TransportError):
        api.request("GET", "/volume")
    assert api.stats["requests"] == before + 1  # the host still refuses: no second 10 s


def test_each_retry_is_one_hook_line_and_one_debug_line_with_its_cause(emulator, admin, fake_time, caplog):
    admin.post("/_emulator/faults", json={"pattern": f"GET {ME}", "kinds": [503], "retry_after": 1, "times": 2})
    seen: list[tuple] = []
    remove = http.add_retry_hook(lambda *a: seen.append(a))
    try:
        with caplog.at_level(logging.DEBUG, logger="reconciler.providers.http"):
            assert valohai(emulator, fake_time).request("GET", ME)["username"]
    finally:
        remove()
    assert len(seen) == 2 and all("503" in s[2] for s in seen)
    lines = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert len(lines) == 2 and all("503" in line for line in lines)


VALDI_ONLY = """\
providers:
  valdi: {email: a@example.com, password: pw-123456}
resources:
  - kind: valdi.volume
    name: scratch
    spec: {bucket_name: scratch-bucket}
"""


@pytest.mark.parametrize("command", ["plan", "doctor"])
def test_an_unreachable_endpoint_fails_within_10_s(command, tmp_path, fake_time, monkeypatch):
    (tmp_path / "main.yaml").write_text(VALDI_ONLY)
    monkeypatch.setenv("VALDI_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    attempts: list[str] = []
    remove = http.add_request_hook(lambda api, request: attempts.append(request.url.path))
    try:
        code, out = cli("--state", str(tmp_path / "state.json"), command, str(tmp_path))
    finally:
        remove()
    assert code == 1 and "connection refused" in out, out
    assert fake_time.t - 1000.0 <= budget.CONNECT_GIVE_UP
    assert len(attempts) <= 16


def test_scattered_blips_over_a_long_wait_do_not_end_it(emulator, admin, fake_time, monkeypatch):
    """A wait polls many times; one 429 before each of 12 polls is 12 retries in one step,
    more than its 8 attempts, yet each poll recovered: the wait goes on and ends well.
    A poll that gives up still ends it."""
    from reconciler.providers import shared
    monkeypatch.setattr(shared, "POLL_FIRST", 0.001)
    monkeypatch.setattr(shared, "POLL_MAX", 0.001)
    api = valohai(emulator, fake_time)
    polls = []

    def check() -> tuple[bool, str]:
        admin.post("/_emulator/faults", json={"pattern": f"GET {ME}", "kinds": [429], "times": 1,
                                              "retry_after": 0.01})
        api.request("GET", ME)
        polls.append(1)
        return len(polls) >= 12, "pending"

    with budget.call():  # one engine step
        shared.wait_for(check, "the thing", 600, lambda _: None, api="valohai")
    assert len(polls) == 12 and sent(admin, ME) == 24

    admin.post("/_emulator/faults", json={"pattern": f"GET {ME}", "kinds": [429], "retry_after": 0.01})
    with budget.call(), pytest.raises(ApiError):
        shared.wait_for(lambda: (api.request("GET", ME), (False, "pending"))[1], "the thing", 600,
                        lambda _: None, api="valohai")
    assert sent(admin, ME) == 24 + 8
