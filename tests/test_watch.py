"""`reconciler watch` against the emulator: a change made in the service's own API (as a
console would) is reported and, with --auto-apply, put back within a few intervals; the
metrics and the webhook follow; a failing resource backs off while another converges;
protections and =changes hold deletes back; a manual apply's lock is waited for; SIGTERM
mid-apply exits 0 and the next run completes the work without a duplicate; replicas on
one PostgreSQL state take turns."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from conftest import Infra, api_calls, cli
from crash_harness import copy_example

from reconciler.emulator.core import SANDBOX
from reconciler.engine.runner import load_workspace
from reconciler.providers import load_providers
from reconciler.state.local import LocalStateStore
from reconciler.watch.backoff import Backoff, delay_after
from reconciler.watch.eventlog import EventLog
from reconciler.watch.loop import Watch, WatchConfig
from reconciler.watch.metrics import Health, Metrics, MetricsServer
from reconciler.watch.notify import Notifier

pytest_plugins = ["pg"]

ASSET = """\
  - kind: codeocean.data_asset
    name: {name}
    spec:
      name: {title}
      mount: {name}
      tags: [{tags}]
      source: {{aws: {{bucket: sandbox-bucket, prefix: {prefix}}}}}
"""


def manifest(*assets: dict) -> str:
    return "resources:\n" + "".join(ASSET.format(**{"tags": "training", "prefix": "data/", **a}) for a in assets)


DATA = {"name": "data", "title": "Watched data"}
BROKEN = {"name": "broken", "title": "Broken data", "prefix": "no-such-folder/"}


class Lines:
    """The watch's JSON log, kept as parsed events (thread-safe enough: append only)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def write(self, text: str) -> None:
        for line in text.splitlines():
            self.events.append(json.loads(line))

    def flush(self) -> None:
        pass

    def of(self, event: str, address: str | None = None) -> list[dict]:
        return [e for e in list(self.events) if e["event"] == event and (address is None or e.get("address") == address)]


def wait_until(check, timeout: float = 8.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def work(tmp_path, sandbox_env):
    (tmp_path / "m.yaml").write_text(manifest(DATA))
    return Infra(tmp_path, "m.yaml")


def make_watch(infra: Infra, interval: float = 0.2, auto_apply: str | None = "all", notifier=None,
               metrics: Metrics | None = None) -> tuple[Watch, Lines]:
    lines = Lines()
    providers = load_providers()
    watch = Watch(WatchConfig(interval=interval, auto_apply=auto_apply, finish_grace=0.0),
                  load=lambda: load_workspace([str(infra.path)], providers),
                  open_store=lambda ws: LocalStateStore(infra.path / "state.json"),
                  log=EventLog("json", out=lines), metrics=metrics, notifier=notifier)
    return watch, lines


class Running:
    """A watch in a background thread, stopped (and joined) on exit."""

    def __init__(self, watch: Watch):
        self.watch = watch
        self.thread = threading.Thread(target=watch.run_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.watch.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the watch did not stop"


def co(path: str, method: str = "GET", **kw) -> httpx.Response:
    """The Code Ocean API as a user's console would call it."""
    return httpx.request(method, f"{os.environ['CODEOCEAN_DOMAIN']}/api/v1{path}",
                         auth=(SANDBOX["codeocean_token"], ""), timeout=10, **kw)


def console_edit(asset_id: str, **fields) -> httpx.Response:
    """A console edit: PUT carries the four fields seed 003 requires, as they are, with `fields` changed."""
    now = co(f"/data_assets/{asset_id}").json()
    return co(f"/data_assets/{asset_id}", "PUT",
              json={**{k: now[k] for k in ("name", "description", "tags", "mount")}, **fields})


def assets(admin) -> dict[str, dict]:
    return {d["name"]: d for d in admin.get("/_emulator/docs/co_asset").json()["items"]}


class Webhook:
    """A local receiver for --notify posts."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def seconds_between(a: dict, b: dict) -> float:
    from datetime import datetime
    parse = lambda e: datetime.fromisoformat(e["time"].replace("Z", "+00:00"))  # noqa: E731
    return (parse(b) - parse(a)).total_seconds()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{") and line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


# -- report, heal, metrics, notices --------------------------------------------------------
def test_a_console_edit_is_reported_healed_counted_and_notified(work, admin):
    assert work.apply()[0] == 0
    asset_id = work.state()["resources"]["codeocean.data_asset.data"]["id"]
    hook, metrics = Webhook(), Metrics()
    health = Health(0.2)
    server = MetricsServer(metrics, health, 0, "127.0.0.1").start()
    watch, lines = make_watch(work, notifier=Notifier(hook.url), metrics=metrics)
    watch.health = health
    base = f"http://127.0.0.1:{server.port}"
    started = time.time()
    try:
        with Running(watch):
            wait_until(lambda: lines.of("run"), what="a first run")
            assert lines.of("drift") == [] and httpx.get(f"{base}/healthz").status_code == 200
            assert console_edit(asset_id, tags=["training", "edited-in-console"]).is_success
            drift = wait_until(lambda: lines.of("drift", "codeocean.data_asset.data"), what="drift")[0]
            assert drift["what"] == "changed" and drift["action"] == "update"
            assert drift["changes"] == [{"field": "tags", "applied": ["training"],
                                         "live": ["edited-in-console", "training"], "sensitive": False}]
            wait_until(lambda: lines.of("drift_cleared", "codeocean.data_asset.data"), what="healed")
            assert lines.of("applied", "codeocean.data_asset.data")[0]["action"] == "update"
            assert assets(admin)["Watched data"]["tags"] == ["training"]
            wait_until(lambda: metric(httpx.get(f"{base}/metrics").text, "reconciler_drifted_resources") == 0,
                       what="the gauge back at 0")
            text = httpx.get(f"{base}/metrics").text
        assert len(lines.of("drift")) == 1  # one line when it appeared, not one per interval
        assert metric(text, 'reconciler_runs_total{result="ok"}') >= 3
        assert metric(text, 'reconciler_api_requests_total{api="codeocean"}') >= 3
        assert metric(text, 'reconciler_api_requests_total{api="valdi"}') == 0
        assert started <= metric(text, "reconciler_last_run_timestamp_seconds") <= time.time()
        assert metric(text, "reconciler_run_duration_seconds_count") >= 3
        assert metric(text, "reconciler_failed_resources") == 0
        time.sleep(0.7)  # over 3 intervals without a run: stale
        assert httpx.get(f"{base}/healthz").status_code == 503
        watch.notifier.close()
        events = [p["event"] for p in hook.received]
        assert events == ["drift", "drift_cleared"], hook.received
        assert hook.received[0]["resources"] == [{"address": "codeocean.data_asset.data",
                                                  "kind": "codeocean.data_asset", "what": "changed",
                                                  "fields": ["tags"]}]
        assert "codeocean.data_asset.data (tags)" in hook.received[0]["text"]
        assert "edited-in-console" not in json.dumps(hook.received)  # names and fields, never values
    finally:
        server.stop()
        hook.close()


def test_without_auto_apply_it_reports_drift_and_pending_and_changes_nothing(work, admin):
    assert work.apply()[0] == 0
    asset_id = work.state()["resources"]["codeocean.data_asset.data"]["id"]
    watch, lines = make_watch(work, auto_apply=None)
    with Running(watch):
        wait_until(lambda: lines.of("run"), what="a first run")
        assert console_edit(asset_id, tags=["by-hand"]).is_success
        admin.delete("/_emulator/requests")
        work.edit("mount: data", "mount: data-v2")  # a git pull beside the watch
        wait_until(lambda: lines.of("drift") and lines.of("pending"), what="drift and pending")
        runs = len(lines.of("run"))
        wait_until(lambda: len(lines.of("run")) >= runs + 2, what="two more runs")
    (drift,), (pending,) = lines.of("drift"), lines.of("pending")
    assert drift["changes"][0]["field"] == "tags" and drift["changes"][0]["live"] == ["by-hand"]
    assert pending["changes"] == [{"field": "mount", "applied": "data", "manifest": "data-v2", "sensitive": False}]
    writes = [k for k in api_calls(admin) if not k.startswith(("GET", "POST /api/v1/data_assets/search"))]
    assert writes == [] and assets(admin)["Watched data"]["tags"] == ["by-hand"]


# -- backoff ------------------------------------------------------------------------------
def test_backoff_doubles_from_1s_to_60s_then_every_interval_per_resource():
    assert [delay_after(n, 300) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 300, 300]
    now = [0.0]
    b = Backoff(interval=300, clock=lambda: now[0])
    b.failed("a", "boom")
    b.failed("a", "boom")
    b.failed("b", "boom")
    assert b.waiting() == {"a": 2.0, "b": 1.0} and b.next_retry() == 1.0
    now[0] = 1.5
    assert b.waiting() == {"a": 0.5}  # b is due again; a still waits
    assert b.succeeded("a") and not b.succeeded("a")
    b.keep_only(set())
    assert b.failing == {}


def test_a_failing_resource_backs_off_while_another_converges(tmp_path, sandbox_env, admin):
    (tmp_path / "m.yaml").write_text(manifest(DATA, BROKEN))
    work = Infra(tmp_path, "m.yaml")
    hook = Webhook()
    watch, lines = make_watch(work, interval=0.2, notifier=Notifier(hook.url))
    now = [0.0]
    watch.backoff.clock = lambda: now[0]  # the backoff's clock, moved by hand: runs wait on nothing
    broken, data = "codeocean.data_asset.broken", "codeocean.data_asset.data"

    def tried(advance: float = 0.0) -> bool:
        """One run, `advance` seconds on; whether it tried the broken resource again."""
        now[0] += advance
        before = len(lines.of("apply", broken))
        watch.run_once()
        return len(lines.of("apply", broken)) > before

    assert tried() and lines.of("applied", data) and lines.of("apply_failed", broken)
    asset_id = assets(admin)["Watched data"]["id"]
    assert console_edit(asset_id, tags=["moved"]).is_success
    # backing off the broken one (1 s, then 2 s), the good one heals meanwhile
    assert [tried(), tried(0.5), tried(0.5)] == [False, False, True]
    assert lines.of("drift_cleared", data) and assets(admin)["Watched data"]["tags"] == ["training"]
    assert [tried(1.5), tried(0.5), tried(3.5), tried(0.5)] == [False, True, False, True]
    failures = lines.of("apply_failed", broken)
    assert [f["retry_in_seconds"] for f in failures] == [1, 2, 4, 8]
    assert "no objects found" in failures[0]["error"]
    assert watch.metrics.failed._value.get() == 1
    watch.notifier.close()
    failed_notices = [p for p in hook.received if p["event"] == "apply_failed"]
    assert len(failed_notices) == 1 and failed_notices[0]["resources"][0]["address"] == broken
    hook.close()


# -- protections --------------------------------------------------------------------------
def test_changes_mode_never_deletes_and_prevent_destroy_is_held_back(tmp_path, sandbox_env, admin):
    keep = {"name": "keep", "title": "Kept data"}
    gone = {"name": "gone", "title": "Gone data"}
    (tmp_path / "m.yaml").write_text(manifest(DATA, keep, gone).replace(
        "name: keep\n", "name: keep\n    lifecycle: {prevent_destroy: true}\n"))
    work = Infra(tmp_path, "m.yaml")
    assert work.apply()[0] == 0
    fresh = {"name": "fresh", "title": "Fresh data"}
    (tmp_path / "m.yaml").write_text(manifest({**DATA, "tags": "training, v2"}, {**keep, "prefix": "data/x/"}, fresh)
                                     .replace("name: keep\n", "name: keep\n    lifecycle: {prevent_destroy: true}\n"))
    admin.delete("/_emulator/requests")
    watch, lines = make_watch(work, auto_apply="changes")
    assert watch.run_once().result == "ok"
    held = {e["address"]: e["message"] for e in lines.of("held")}
    assert "never creates, deletes" in held["codeocean.data_asset.gone"]
    assert "never creates" in held["codeocean.data_asset.fresh"]  # updates only: nothing new is made
    assert "prevent_destroy" in held["codeocean.data_asset.keep"]
    assert [e["address"] for e in lines.of("applied")] == ["codeocean.data_asset.data"]
    assert not [k for k in api_calls(admin) if k.startswith(("DELETE", "POST /api/v1/data_assets "))]
    watch.config.auto_apply = "all"
    assert watch.run_once().result == "ok"
    assert set(assets(admin)) == {"Watched data", "Kept data", "Fresh data"}  # gone deleted, protected kept
    assert len(lines.of("held", "codeocean.data_asset.keep")) == 1  # said once, not every run


def test_a_manual_apply_holding_the_lock_is_waited_for(work, admin):
    manual = LocalStateStore(work.path / "state.json").lock("apply")
    manual.__enter__()  # a manual apply in progress
    watch, lines = make_watch(work)
    try:
        with Running(watch):
            wait_until(lambda: lines.of("lock_wait"), what="the watch waiting")
            time.sleep(0.5)
            assert not lines.of("apply") and "`apply`" in lines.of("lock_wait")[0]["message"]
            assert len(lines.of("lock_wait")) == 1 and watch.health.check()[0]  # waiting its turn is healthy
            manual.__exit__(None, None, None)
            manual = None
            wait_until(lambda: lines.of("applied", "codeocean.data_asset.data"), what="the apply after the lock")
    finally:
        if manual is not None:
            manual.__exit__(None, None, None)
    assert lines.of("lock_acquired") and "Watched data" in assets(admin)


# -- as a process: signals, replicas ---------------------------------------------------------
class Process:
    """`reconciler watch` in a child process, its JSON log lines read as they come."""

    def __init__(self, *args: str):
        code = "from reconciler.cli import main; main()"
        self.proc = subprocess.Popen([sys.executable, "-c", code, "--no-color", *args, "--log-format", "json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.events: list[dict] = []
        self.raw: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.raw.append(line)
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def of(self, event: str) -> list[dict]:
        return [e for e in list(self.events) if e["event"] == event]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 25.0) -> int:
        """The exit code after the signal. Giving up at `timeout` catches a hang, not a slow
        machine: a watch that waited out its 30 s create instead of cutting it short is
        caught by what the state holds afterwards (the intent still pending)."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"still running {timeout} s after the signal:\n" + "".join(self.raw)) from None


def test_sigterm_mid_apply_exits_0_and_the_next_run_completes_without_a_duplicate(work, admin):
    admin.post("/_emulator/config", json={"asset_ready_delay": 30})  # the create hangs in draft
    state = work.path / "state.json"
    p = Process("--state", str(state), "watch", str(work.path), "--interval", "300ms", "--auto-apply",
                "--metrics-port", "0", "--metrics-host", "127.0.0.1")
    wait_until(lambda: api_calls(admin).get("POST /api/v1/data_assets"), timeout=15, what="the create sent")
    port = p.of("start")[0]["metrics_port"]
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    assert 'reconciler_api_requests_total{api="codeocean"}' in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert p.stop() == 0, "".join(p.raw)
    assert p.of("stopping") and p.of("stopped") or p.of("abandoned"), "".join(p.raw)
    journaled = json.loads(state.read_text())
    assert "codeocean.data_asset.data" in journaled["pending"]  # the intent was written before the create
    with LocalStateStore(state).lock("apply"):  # the lock went with the process
        pass
    admin.post("/_emulator/config", json={"asset_ready_delay": 0.1})
    watch, lines = make_watch(work)
    assert watch.run_once().result == "ok", lines.events
    after = json.loads(state.read_text())
    assert after["pending"] == {} and "codeocean.data_asset.data" in after["resources"]
    assert len([d for d in admin.get("/_emulator/docs/co_asset").json()["items"]
                if d["name"] == "Watched data"]) == 1  # found, not made again
    assert watch.run_once().result == "ok" and not lines.of("apply", "codeocean.data_asset.data")[1:]


@pytest.mark.postgres
def test_replicas_on_one_postgres_state_take_turns(work, admin, pg_url):
    admin.post("/_emulator/config", json={"asset_ready_delay": 60})  # the first apply stays in progress
    args = ("--state", pg_url, "watch", str(work.path), "--interval", "300ms", "--auto-apply")
    first = Process(*args)
    try:
        wait_until(lambda: first.of("apply"), timeout=15, what="the first replica applying")
        second = Process(*args)
        try:
            wait = wait_until(lambda: second.of("lock_wait"), timeout=15, what="the second replica waiting")
            assert "`watch`" in wait[0]["message"]  # it names the holder
            admin.post("/_emulator/config", json={"asset_ready_delay": 0.1})  # let the apply finish
            wait_until(lambda: second.of("lock_acquired") and second.of("run"), timeout=15,
                       what="the second replica's turn")
            assert not second.of("apply")  # nothing left to do: the first one did it
        finally:
            assert second.stop() == 0
    finally:
        assert first.stop(signal.SIGINT) == 0  # Ctrl-C stops as cleanly
    assert "SIGINT" in first.of("stopping")[0]["message"]
    assert len(assets(admin)) == 1 and len(first.of("applied")) == 1


def test_a_vm_password_never_reaches_the_log(tmp_path, sandbox_env, admin, monkeypatch):
    copy_example("valdi.yaml", tmp_path)
    work = Infra(tmp_path, "valdi.yaml")
    monkeypatch.setenv("VM_PASSWORD", "Vm-pass-93kd81Lq")
    work.edit("provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e\n      details:\n        flavor_id: "
              "94d76997-44ec-4f1e-8291-231de42b6030\n        ssh_key_id: ${valdi.ssh_key.deploy.id}\n        ipv4: true",
              "provider_id: 66730e5d-98d2-45f6-8aaa-6ad8cdcbc285\n      details:\n"
              "        hostnode: b2ce5479-fa59-483f-86ba-0aa128051821\n        gpu_model: a100-pcie-80gb\n"
              "        operating_system: Ubuntu 22.04 LTS\n        gpu_count: 1\n        vcpus: 8\n        ram: 32\n"
              "        storage: 100\n        external_ports: \"{21297}\"\n        internal_ports: \"{22}\"\n"
              "        password: ${env.VM_PASSWORD}")
    assert work.apply()[0] == 0
    monkeypatch.setenv("VM_PASSWORD", "New-pass-55ab02Zz")  # a new password: the VM must be replaced
    watch, lines = make_watch(work, auto_apply="changes")
    assert watch.run_once().result == "ok"
    text = json.dumps(lines.events)
    pending = lines.of("pending", "valdi.vm.trainer")[0]
    assert [c["field"] for c in pending["changes"]] == ["details.password"] and pending["changes"][0]["sensitive"]
    assert lines.of("held", "valdi.vm.trainer")  # a replace: never under =changes, and it is protected
    assert "Vm-pass-93kd81Lq" not in text and "New-pass-55ab02Zz" not in text
    assert len(admin.get("/_emulator/docs/valdi_vm").json()["items"]) == 1


@pytest.mark.parametrize("args, message", [
    (("--interval", "soon"), "not a duration"),
    (("--interval", "0s"), "longer than 0"),
    (("--interval", "99999999999999999999999999h"), "over the limit"),  # was an internal OverflowError
    (("--jitter", "150%"), "below 100%"),
    (("--auto-apply", "everything"), "not all or changes"),
], ids=["interval", "zero-interval", "huge-interval", "jitter", "auto-apply"])
def test_bad_flags_are_refused_before_anything_runs(work, admin, args, message):
    code, out = cli("watch", str(work.path), *args)
    assert code == 1 and message in out
    assert api_calls(admin) == {}


def test_bad_manifests_at_start_are_one_line_each_exit_1_and_no_api_call(work, admin):
    work.edit("tags: [training]", "tags: training")
    code, out = cli("--state", str(work.path / "state.json"), "watch", str(work.path), "--auto-apply")
    assert code == 1 and re.search(r"m\.yaml:\d+:\d+: .*tags", out), out
    assert api_calls(admin) == {}


def test_health_is_stale_after_3_intervals_unless_a_long_run_still_talks_or_waits_for_the_lock():
    now = [0.0]
    health = Health(10, clock=lambda: now[0])
    now[0] = 29
    assert health.check()[0]
    health.run_started()
    health.request_sent()
    now[0] = 45  # a long run (a VM provisioning), its last poll 16 s ago
    assert health.check()[0]
    now[0] = 60  # no request for 31 s: stuck
    assert not health.check()[0]
    health.waiting_for_lock = True
    assert health.check()[0]
    health.waiting_for_lock = False
    health.run_finished()
    assert health.check()[0] and health.check()[1]["status"] == "ok"


def test_jitter_spreads_the_sleep_and_a_due_retry_wakes_the_loop_early(work):
    watch, _ = make_watch(work, interval=10)
    watch.config.jitter = 0.1
    sleeps = {round(watch._next_sleep(), 3) for _ in range(50)}
    assert all(9 <= s <= 11 for s in sleeps) and len(sleeps) > 10
    watch.backoff.failed("codeocean.data_asset.data", "boom")  # due again in 1 s
    assert watch._next_sleep() <= 1.1


def test_a_manifest_broken_by_a_pull_is_said_once_and_the_watch_goes_on(work, admin):
    watch, lines = make_watch(work, auto_apply=None)
    assert watch.run_once().result == "ok"
    work.edit("tags: [training]", "tags: training")
    assert [watch.run_once().result for _ in range(3)] == ["error"] * 3
    (error,) = lines.of("error")
    assert re.search(r"m\.yaml:\d+:\d+: .*tags", error["message"])
    work.edit("tags: training", "tags: [training]")
    assert watch.run_once().result == "ok" and lines.of("recovered")
    assert watch.metrics.runs.labels("error")._value.get() == 3


def test_an_undeliverable_notice_is_logged_without_the_webhook_url():
    said = []
    notifier = Notifier("http://127.0.0.1:9/services/T0/B0/secret-path-token", on_error=said.append)
    notifier.send({"event": "drift", "text": "x"})
    notifier.close(timeout=10)
    assert len(said) == 1 and "drift notification was not delivered" in said[0]
    assert "secret-path-token" not in said[0] and "127.0.0.1" not in said[0]


def test_runs_in_backoff_count_as_failed_and_a_recovery_is_logged_and_notified(tmp_path, sandbox_env, admin):
    (tmp_path / "m.yaml").write_text(manifest(DATA, BROKEN))
    work = Infra(tmp_path, "m.yaml")
    hook = Webhook()
    watch, lines = make_watch(work, notifier=Notifier(hook.url))
    broken = "codeocean.data_asset.broken"
    assert watch.run_once().result == "failed"
    waiting = watch.run_once()  # the broken asset waits out its backoff: not tried, still not ok
    assert waiting.result == "failed" and broken in waiting.failed
    assert len(lines.of("apply", broken)) == 1
    assert watch.metrics.runs.labels("ok")._value.get() == 0  # runs_total{result} does not flap
    # a create that failed in front of the watch is not reported as one an interrupted run left
    assert not [e for e in lines.of("pending", broken) if e.get("what") == "interrupted"]
    (tmp_path / "m.yaml").write_text(manifest(DATA, {**BROKEN, "prefix": "data/"}))
    watch.backoff.clock = lambda: time.monotonic() + 3600  # its retry is due
    assert watch.run_once().result == "ok"
    assert lines.of("recovered", broken)
    watch.notifier.close()
    recovered = [p for p in hook.received if p["event"] == "recovered"]
    assert len(recovered) == 1 and recovered[0]["resources"] == [{"address": broken}]
    assert "recovered" in recovered[0]["text"]
    hook.close()


def test_changes_mode_help_says_in_place_updates_only():
    code, out = cli("watch", "--help")
    text = " ".join(out.split())
    assert "=changes: in-place updates only" in text and "never a create, delete or replace" in text
