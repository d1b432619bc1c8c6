"""Expiry at its edges, through the CLI against the emulator with an injected clock:
a crash right after the state write of an expiry's teardown (or of a create) leaves the
tombstone (or the deadline) already written; `extend` of an `at:` resource whose fixed
deadline has passed brings it back for the extension; a `moved:` block carries the
tombstone and the deadline to the new address."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import Infra, cli

from reconciler.cli import common
from reconciler.state.local import LocalStateStore

KEY = (Path(__file__).resolve().parent.parent / "examples" / "keys" / "deploy.pub").read_text()
START = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime = START):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class Crash(BaseException):
    """The process dies: nothing after this point reaches the state."""


def manifest(vm_extra: str = "", vm_name: str = "trainer", moved: str = "") -> str:
    return f"""
providers:
  valdi: {{email: "${{env.VALDI_EMAIL}}", password: "${{env.VALDI_PASSWORD}}"}}
{moved}
resources:
  - kind: valdi.ssh_key
    name: deploy
    spec: {{name: deploy, public_key_file: deploy.pub}}
  - kind: valdi.vm
    name: {vm_name}
    spec:
      name: trainer
      provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e
      details: {{flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030, ssh_key_id: "${{valdi.ssh_key.deploy.id}}"}}
      power: running
{vm_extra}"""


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(common, "clock", c)
    return c


@pytest.fixture
def infra(tmp_path, sandbox_env, clock):
    d = tmp_path / "infra"
    d.mkdir()
    (d / "deploy.pub").write_text(KEY)

    def make(text: str) -> Infra:
        (d / "m.yaml").write_text(text)
        return Infra(d, "m.yaml")
    return make


@pytest.fixture
def crash_after_write(monkeypatch):
    """crash_after_write(when): the first state write whose document satisfies `when`
    reaches the file, then the process 'dies' (every later write is lost too)."""
    real = LocalStateStore.write

    def arm(when):
        dead = []

        def write(self, doc):
            if dead:
                raise Crash("already dead")
            real(self, doc)
            if when(doc):
                dead.append(True)
                raise Crash("killed right after this write")
        monkeypatch.setattr(LocalStateStore, "write", write)

        def disarm():
            monkeypatch.setattr(LocalStateStore, "write", real)
        return disarm
    return arm


def vms(admin) -> list[dict]:
    return admin.get("/_emulator/docs/valdi_vm").json()["items"]


def crashed_apply(work: Infra) -> None:
    with pytest.raises(Crash):
        work.apply()


def test_a_crash_right_after_the_expiry_teardown_is_written_never_brings_the_vm_back(infra, admin, clock,
                                                                                        crash_after_write):
    work = infra(manifest(vm_extra="    expires: {after: 5s}\n"))
    assert work.apply()[0] == 0 and len(vms(admin)) == 1
    clock.advance(seconds=6)
    disarm = crash_after_write(lambda doc: "valdi.vm.trainer" not in doc.resources)
    crashed_apply(work)
    disarm()
    assert vms(admin) == []
    code, out = work.plan("--detailed-exitcode")  # not made again: the tombstone came with the teardown
    assert code == 0 and "expired and destroyed at 2026-12-03T12:00:06Z" in out, out
    assert work.apply()[0] == 0 and vms(admin) == []


def test_a_crash_right_after_a_create_is_written_keeps_the_deadline_it_was_made_with(infra, admin, clock,
                                                                                       crash_after_write):
    work = infra(manifest(vm_extra="    expires: {after: 5h}\n"))
    disarm = crash_after_write(lambda doc: "valdi.vm.trainer" in doc.resources)
    crashed_apply(work)
    disarm()
    clock.advance(hours=1)
    code, out = work.plan()
    assert code == 0 and "valdi.vm.trainer: expires in 4h (at 2026-12-03T17:00:00Z; then destroy)" in out, out


def test_a_crash_right_after_a_replace_is_written_gives_the_new_object_its_own_deadline(infra, admin, clock,
                                                                                          crash_after_write):
    work = infra(manifest(vm_extra="    expires: {after: 5h}\n"))
    assert work.apply()[0] == 0
    first = work.state()["resources"]["valdi.vm.trainer"]["id"]
    clock.advance(hours=1)
    disarm = crash_after_write(lambda doc: "valdi.vm.trainer" in doc.resources
                               and doc.resources["valdi.vm.trainer"].id != first)
    with pytest.raises(Crash):
        work.apply("--replace", "valdi.vm.trainer")
    disarm()
    clock.advance(hours=1)
    code, out = work.plan()  # the new VM's 5h run from its making, 13:00
    assert code == 0 and "valdi.vm.trainer: expires in 4h (at 2026-12-03T18:00:00Z; then destroy)" in out, out


def test_extend_of_an_at_resource_past_its_deadline_brings_it_back_for_the_extension(infra, admin, clock):
    work = infra(manifest(vm_extra="    expires: {at: 2026-12-03T13:00:00Z}\n"))
    assert work.apply()[0] == 0 and len(vms(admin)) == 1
    clock.advance(hours=2)  # 14:00: the fixed deadline has passed
    assert work.apply()[0] == 0 and vms(admin) == []
    code, out = cli("--state", str(work.path / "state.json"), "extend", "valdi.vm.trainer", "1h", str(work.path))
    assert code == 0 and "2026-12-03T15:00:00Z" in out, out
    code, out = work.plan("--detailed-exitcode")
    assert code == 2 and "valdi.vm.trainer will be created" in out, out
    assert "valdi.vm.trainer: expires in 1h (at 2026-12-03T15:00:00Z; then destroy)" in out, out
    assert work.apply()[0] == 0 and len(vms(admin)) == 1
    clock.advance(minutes=30)
    code, out = work.plan("--detailed-exitcode")  # kept for the hour it was given
    assert code == 0 and "expires in 30m (at 2026-12-03T15:00:00Z; then destroy)" in out, out
    clock.advance(minutes=31)
    assert work.apply()[0] == 0 and vms(admin) == []  # then it goes again, and stays gone
    code, out = work.plan("--detailed-exitcode")
    assert code == 0 and "expired and destroyed at 2026-12-03T15:01:00Z" in out, out


def test_an_extension_not_applied_in_time_lapses(infra, admin, clock):
    work = infra(manifest(vm_extra="    expires: {at: 2026-12-03T13:00:00Z}\n"))
    assert work.apply()[0] == 0
    clock.advance(hours=2)
    assert work.apply()[0] == 0 and vms(admin) == []
    assert cli("--state", str(work.path / "state.json"), "extend", "valdi.vm.trainer", "1h", str(work.path))[0] == 0
    clock.advance(hours=2)
    code, out = work.plan("--detailed-exitcode")
    assert code == 0 and "expired and destroyed at 2026-12-03T14:00:00Z" in out, out


MOVED = "moved:\n  - {from: valdi.vm.trainer, to: valdi.vm.gpu}\n"


def test_a_moved_block_keeps_the_tombstone_of_an_expired_vm(infra, admin, clock):
    work = infra(manifest(vm_extra="    expires: {after: 5s}\n"))
    assert work.apply()[0] == 0
    clock.advance(seconds=6)
    assert work.apply()[0] == 0 and vms(admin) == []
    work = infra(manifest(vm_extra="    expires: {after: 5s}\n", vm_name="gpu", moved=MOVED))
    code, out = work.plan()
    assert "valdi.vm.gpu will be created" not in out, out
    assert "valdi.vm.gpu: expired and destroyed at 2026-12-03T12:00:06Z" in out, out
    code, out = work.apply()
    assert code == 0 and vms(admin) == [], out
    assert list(work.state()["expired"]) == ["valdi.vm.gpu"]
    code, out = cli("--state", str(work.path / "state.json"), "extend", "valdi.vm.gpu", "1h", str(work.path))
    assert code == 0, out
    assert work.apply()[0] == 0 and len(vms(admin)) == 1


def test_a_moved_block_keeps_the_deadline_of_a_live_vm(infra, admin, clock):
    work = infra(manifest(vm_extra="    expires: {after: 5h}\n"))
    assert work.apply()[0] == 0
    clock.advance(hours=1)
    work = infra(manifest(vm_extra="    expires: {after: 5h}\n", vm_name="gpu", moved=MOVED))
    code, out = work.apply()
    assert code == 0 and "valdi.vm.trainer has moved to valdi.vm.gpu" in out, out
    code, out = work.plan("--detailed-exitcode")
    assert code == 0 and "valdi.vm.gpu: expires in 4h (at 2026-12-03T17:00:00Z; then destroy)" in out, out


def test_state_mv_moves_a_tombstone(infra, admin, clock):
    work = infra(manifest(vm_extra="    expires: {after: 5s}\n"))
    assert work.apply()[0] == 0
    clock.advance(seconds=6)
    assert work.apply()[0] == 0 and vms(admin) == []
    code, out = cli("--state", str(work.path / "state.json"), "state", "mv", "valdi.vm.trainer", "valdi.vm.gpu",
                    str(work.path))
    assert code == 0, out
    work = infra(manifest(vm_extra="    expires: {after: 5s}\n", vm_name="gpu"))
    code, out = work.plan("--detailed-exitcode")
    assert code == 0 and "valdi.vm.gpu: expired and destroyed at 2026-12-03T12:00:06Z" in out, out
