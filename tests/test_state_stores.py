"""The state-store contract, run against the file store and a real PostgreSQL server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from types import SimpleNamespace

import pytest

from reconciler.errors import LockError, StaleStateError, StateError
from reconciler.state import local as local_store
from reconciler.state import postgres as postgres_store
from reconciler.state.base import ResourceState, StateDoc
from reconciler.state.select import open_location, open_store

pytest_plugins = ["pg"]
SECRET = "secret-access-key-value-0123456789"


@pytest.fixture(params=["file", "postgres"])
def location(request, tmp_path):
    if request.param == "file":
        return str(tmp_path / "state.json")
    return request.getfixturevalue("pg_url")


def doc_with_secret() -> StateDoc:
    doc = StateDoc()
    doc.resources["valdi.volume.data"] = ResourceState(kind="valdi.volume", id="v-1", outputs={"id": "v-1"},
                                                       secrets={"secret_access_key": SECRET})
    return doc


def raw_bytes(location: str) -> str:
    if location.startswith("postgresql://"):
        import psycopg

        from reconciler.state.postgres import split_url
        dsn, workspace, _ = split_url(location)
        import zlib
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT doc::text FROM reconciler_state WHERE workspace=%s", (workspace,)).fetchall()
            packed = conn.execute("SELECT packed FROM reconciler_history WHERE workspace=%s", (workspace,)).fetchall()
        return "\n".join([r[0] for r in rows] + [zlib.decompress(p[0]).decode() for p in packed])
    with open(location) as f:
        return f.read()


def test_empty_then_round_trip(location):
    store = open_location(location, {})
    assert store.read().serial == 0
    doc = doc_with_secret()
    store.write(doc)
    assert doc.serial == 1
    again = store.read()
    assert again.to_dict() == doc.to_dict()


def test_stale_serial_is_refused_and_nothing_overwritten(location):
    store = open_location(location, {})
    doc = doc_with_secret()
    store.write(doc)
    first, second = store.read(), store.read()
    first.resources.pop("valdi.volume.data")
    store.write(first)
    second.resources["x.y.z"] = ResourceState(kind="x.y", id="1")
    with pytest.raises(StaleStateError, match="Nothing was overwritten|nothing was overwritten"):
        store.write(second)
    assert list(store.read().resources) == []


def test_lock_is_exclusive_and_names_the_holder(location):
    store, other = open_location(location, {}), open_location(location, {})
    with store.lock("apply"):
        with pytest.raises(LockError, match=r"pid \d+.*apply"):
            with other.lock("apply"):
                pass
    with other.lock("apply"):
        pass


def test_lock_timeout_waits_for_the_holder(location, monkeypatch):
    """Taken only after the holder lets go, having waited: the holder lets go when told to,
    once the waiter has been refused at least once (its naps are counted, not timed)."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from reconciler.state.select import open_location
        with open_location({location!r}, {{}}).lock("apply"):
            print("locked", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    naps: list[float] = []
    napping = threading.Event()

    def nap(seconds: float) -> None:
        naps.append(seconds)
        napping.set()
        time.sleep(seconds)
    fake = SimpleNamespace(monotonic=time.monotonic, sleep=nap)
    monkeypatch.setattr(local_store, "time", fake)
    monkeypatch.setattr(postgres_store, "time", fake)
    taken_after: list[int] = []

    def wait_for_lock() -> None:
        with open_location(location, {}).lock("apply", timeout=120):
            taken_after.append(len(naps))
    waiter = threading.Thread(target=wait_for_lock)
    waiter.start()
    assert napping.wait(60), "the waiter never found the lock held"
    proc.stdin.write("go\n")
    proc.stdin.flush()
    waiter.join(120)
    proc.wait(10)
    assert taken_after and taken_after[0] >= 1  # refused while held, then taken



def test_kill_9_frees_the_lock_at_once(location):
    script = textwrap.dedent(f"""
        import sys, time
        from reconciler.state.select import open_location
        with open_location({location!r}, {{}}).lock("apply"):
            print("locked", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(LockError):
        with open_location(location, {}).lock("apply"):
            pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with open_location(location, {}).lock("apply", timeout=5):  # postgres notices the closed socket
        pass


def test_secrets_encrypted_at_rest_with_the_key(location):
    env = {"RECONCILER_STATE_KEY": "correct horse battery staple"}
    store = open_location(location, env)
    store.write(doc_with_secret())
    assert SECRET not in raw_bytes(location)
    assert store.read().resources["valdi.volume.data"].secrets["secret_access_key"] == SECRET
    with pytest.raises(StateError, match="RECONCILER_STATE_KEY"):
        open_location(location, {}).read()
    with pytest.raises(StateError, match="wrong key"):
        open_location(location, {"RECONCILER_STATE_KEY": "nope"}).read()


def test_a_password_in_the_last_applied_spec_is_sealed_too(location):
    """A VM's details.password is needed for three-way diffs, so it is kept, but sealed."""
    env = {"RECONCILER_STATE_KEY": "correct horse battery staple"}
    doc = doc_with_secret()
    vm_password = "vm-password-Zq81xk0"
    doc.resources["valdi.vm.a"] = ResourceState(
        kind="valdi.vm", id="vm-1", last_applied={"name": "a", "details": {"flavor_id": "f", "password": vm_password},
                                                  "power": "running"})
    store = open_location(location, env)
    store.write(doc)
    assert vm_password not in raw_bytes(location) and "(sealed)" in raw_bytes(location)
    back = store.read().resources["valdi.vm.a"]
    assert back.last_applied == {"name": "a", "details": {"flavor_id": "f", "password": vm_password},
                                 "power": "running"}
    assert back.secrets == {}
    doc = store.read()
    doc.pending["valdi.vm.b"] = {"kind": "valdi.vm", "spec": {"details": {"password": vm_password}}, "started_at": 1}
    store.write(doc)
    assert vm_password not in raw_bytes(location)
    assert store.read().pending["valdi.vm.b"]["spec"]["details"]["password"] == vm_password


def test_without_a_key_secrets_stay_in_the_state_only(location):
    store = open_location(location, {})
    store.write(doc_with_secret())
    assert SECRET in raw_bytes(location)


def test_migrate_round_trip_unchanged(tmp_path, pg_url):
    from click.testing import CliRunner

    from reconciler.cli import main

    path = tmp_path / "state.json"
    store = open_location(str(path), {})
    doc = doc_with_secret()
    store.write(doc)
    store.write(doc)
    before = store.read().to_dict()
    runner = CliRunner()
    r = runner.invoke(main, ["--state", str(path), "state", "migrate", "--to", pg_url])
    assert r.exit_code == 0, r.output
    assert open_location(pg_url, {}).read().to_dict() == before
    back = tmp_path / "back.json"
    r = runner.invoke(main, ["--state", pg_url, "state", "migrate", "--to", str(back)])
    assert r.exit_code == 0, r.output
    assert open_location(str(back), {}).read().to_dict() == before


def test_precedence_flag_env_backend_default(tmp_path, pg_url):
    env = {"RECONCILER_STATE": str(tmp_path / "env.json")}
    assert open_store(str(tmp_path / "flag.json"), env, None, tmp_path).location.endswith("flag.json")
    assert open_store(None, env, {"path": "b.json"}, tmp_path).location.endswith("env.json")
    assert open_store(None, {}, {"url": pg_url}, tmp_path).location.startswith("postgresql://")
    assert open_store(None, {}, None, tmp_path).location.endswith(".reconciler/state.json")


WRITER = textwrap.dedent("""
    import sys, time
    from reconciler.errors import LockError
    from reconciler.state.base import ResourceState
    from reconciler.state.select import open_location
    url, n, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    store = open_location(url, {})
    try:
        with store.lock("apply", timeout=timeout):
            for i in range(n):
                doc = store.read()
                doc.resources[f"t.k.r{i}"] = ResourceState(kind="t.k", id=str(i))
                store.write(doc)
            time.sleep(0.5)
    except LockError as e:
        print("LOCKED:", e)
        sys.exit(3)
""")


def test_eight_workspaces_and_a_contended_pair_lose_no_update(pg_server):
    import uuid
    base = pg_server + ("&" if "?" in pg_server else "?")
    urls = [f"{base}workspace=load-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    pair = f"{base}workspace=pair-{uuid.uuid4().hex[:8]}"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, u, "5", "30"]) for u in urls]
    a = subprocess.Popen([sys.executable, "-c", WRITER, pair, "5", "30"])
    time.sleep(0.3)
    b = subprocess.Popen([sys.executable, "-c", WRITER, pair, "5", "30"])  # waits its turn
    c = subprocess.Popen([sys.executable, "-c", WRITER, pair, "1", "0"], stdout=subprocess.PIPE, text=True)
    codes = [p.wait(120) for p in procs]
    assert codes == [0] * 8
    assert all(open_location(u, {}).read().serial == 5 for u in urls)
    assert a.wait(120) == 0 and b.wait(120) == 0
    out, _ = c.communicate(timeout=120)
    assert c.returncode in (0, 3)
    if c.returncode == 3:
        assert "held by" in out
    final = open_location(pair, {}).read()
    assert final.serial == 10 + (1 if c.returncode == 0 else 0)
    history = open_location(pair, {}).history(limit=100)
    assert sorted(h["serial"] for h in history) == list(range(1, final.serial + 1))
    print(f"\n8 workspaces x 5 writes: all serial 5; contended pair: serial {final.serial}, "
          f"third writer {'waited' if c.returncode == 0 else 'failed at once naming the holder'}")


def test_history_lists_serials_with_command_and_changes(pg_url):
    from click.testing import CliRunner

    from reconciler.cli import main

    store = open_location(pg_url, {})
    store.command = "apply"
    doc = StateDoc()
    store.write(doc)
    doc.resources["valdi.vm.a"] = ResourceState(kind="valdi.vm", id="1")
    store.write(doc)
    out = CliRunner().invoke(main, ["--state", pg_url, "state", "history"]).output
    lines = out.strip().splitlines()
    assert lines[0].startswith("serial 2") and "apply" in lines[0] and "+valdi.vm.a" in lines[0]
    assert lines[1].startswith("serial 1")
