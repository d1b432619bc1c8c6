"""The watch loop: every interval, read the manifests again, plan, report what moved, and
with auto-apply make it true, under the same state lock and protections as `apply`.

    run:  load manifests ─▶ [lock, with auto-apply] ─▶ read state ─▶ observe ─▶ plan
          ─▶ report drift / pending (a line each when it appears, changes or clears)
          ─▶ [apply what policy.select allows] ─▶ backoff bookkeeping ─▶ unlock
    sleep: the interval (± jitter), or less when a backing-off resource is due

The plan is made for "now" (the workspace's clock): an expired resource is destroyed or
stopped, a power-schedule window starts or stops its VM, as their moments pass; notices go
out 2 h and 30 min before a deadline. A plan a deny policy fails is not applied at all.

Stopping (SIGTERM, SIGINT, or stop()): the sleep and a wait for the lock end at once; a
run in progress may finish for `finish_grace` seconds, then every new API request is
refused (Interrupted), so the applier records what it has, writes the state and frees
the lock. A create cut short stays journaled in the state, and the next run finds the
object by its natural key instead of making a second one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from reconciler.engine.applier import Applier
from reconciler.engine import timeline as timeline_mod
from reconciler.engine.planner import PlanOptions, PlanResult
from reconciler.engine.runner import Workspace, after_apply, guardrails, observe, online_checks
from reconciler.errors import ApplyError, LockError, ReconcilerError
from reconciler.plan.model import Action
from reconciler.providers.http import add_request_hook
from reconciler.state.base import StateStore
from reconciler.watch import notify
from reconciler.watch.backoff import Backoff
from reconciler.watch.drift import Moved, find_drift, find_pending
from reconciler.watch.eventlog import EventLog, field_text, moved_fields
from reconciler.watch.metrics import Health, Metrics
from reconciler.watch.policy import ALL, select, unexplained_errors

LOCK_POLL = 0.5  # seconds per attempt while waiting for the state lock


class Interrupted(ReconcilerError):
    """A request refused because the watch is stopping."""


@dataclass
class WatchConfig:
    interval: float = 60.0
    jitter: float = 0.0  # a fraction: 0.1 spreads each sleep over interval ± 10 %
    auto_apply: str | None = None  # None (report only), "all" or "changes"
    parallelism: int = 8
    finish_grace: float = 2.0  # seconds a run in progress may go on after a stop
    # one run per process (--once, from cron every `interval`): an expiry notice is sent by
    # the run in the interval after its threshold passes, not by every run after it
    once: bool = False


@dataclass
class RunOutcome:
    result: str  # ok | failed | error | interrupted | denied (a policy denies the plan: nothing applied)
    drift: dict[str, Moved] = field(default_factory=dict)
    pending: dict[str, Moved] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class Watch:
    def __init__(self, config: WatchConfig, load: Callable[[], Workspace],
                 open_store: Callable[[Workspace], StateStore], log: EventLog,
                 metrics: Metrics | None = None, health: Health | None = None,
                 notifier: notify.Notifier | None = None):
        self.config = config
        self.load = load
        self.open_store = open_store
        self.log = log
        self.metrics = metrics or Metrics()
        self.health = health or Health(config.interval)
        self.notifier = notifier
        self.backoff = Backoff(config.interval)
        self._stop = threading.Event()
        self._stop_at = 0.0
        self._location = ""
        self._reported: dict[str, dict[str, Any]] = {"drift": {}, "pending": {}, "held": {}}
        self._last_error: str | None = None  # a run that failed as a whole
        self._last_warning: str | None = None
        self._noticed: set[tuple[str, str, Any]] = set()  # expiry notices sent: (address, 2h|30m, deadline)

    # -- lifecycle -------------------------------------------------------------------
    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop_at = time.monotonic()
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_forever(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            if self._stop.is_set():
                break
            self._stop.wait(self._next_sleep())

    def _next_sleep(self) -> float:
        j = self.config.jitter
        delay = self.config.interval * (1 + random.uniform(-j, j)) if j else self.config.interval
        retry = self.backoff.next_retry() if self.config.auto_apply else None
        if retry is not None:
            delay = min(delay, max(0.0, retry - self.backoff.clock()) + 0.01)
        return max(0.0, delay)

    def _on_request(self, api: str, request: Any) -> None:
        self.metrics.api_requests.labels(api).inc()
        self.health.request_sent()
        if self._stop.is_set() and time.monotonic() - self._stop_at >= self.config.finish_grace:
            raise Interrupted("the watch is stopping: the run was cut short; the next run completes it")

    # -- one run ---------------------------------------------------------------------
    def run_once(self) -> RunOutcome:
        started = time.monotonic()
        self.health.run_started()
        remove_hook = add_request_hook(self._on_request)
        try:
            outcome = self._run()
        except Interrupted:
            outcome = RunOutcome("interrupted")
        except ReconcilerError as e:
            outcome = RunOutcome("interrupted" if self.stopping else "error")
            self._error(str(e))
        except Exception as e:  # noqa: BLE001 - one bad run must not end the service
            outcome = RunOutcome("error")
            self._error(f"internal error: {e.__class__.__name__}: {e}")
        finally:
            remove_hook()
        outcome.seconds = time.monotonic() - started
        if outcome.result in ("ok", "failed") and self._last_error:
            self.log.emit("recovered", "the run completed again")
            self._last_error = None
        m = self.metrics
        m.runs.labels(outcome.result).inc()
        m.duration.observe(outcome.seconds)
        m.last_run.set(time.time())
        if outcome.result in ("ok", "failed", "denied"):
            m.drifted.set(len(outcome.drift))
            m.pending.set(len(outcome.pending))
        m.failed.set(len(self.backoff.failing))
        self.health.run_finished()
        self.log.emit("run", f"{outcome.result} in {outcome.seconds:.2f}s: {len(outcome.drift)} drifted, "
                             f"{len(outcome.pending)} pending, {len(outcome.applied)} applied, "
                             f"{len(outcome.failed)} failed",
                      result=outcome.result, seconds=round(outcome.seconds, 3), drifted=len(outcome.drift),
                      pending=len(outcome.pending), applied=len(outcome.applied), failed=len(outcome.failed))
        return outcome

    def _run(self) -> RunOutcome:
        ws = self.load()
        try:
            store = self.open_store(ws)
            self._location = store.location
            if hasattr(store, "command"):
                store.command = "watch"  # PostgreSQL history names who wrote
            if not self.config.auto_apply:
                return self._plan_and_report(ws, store)
            with self._locked(store) as got:
                if not got:
                    return RunOutcome("interrupted")
                return self._plan_and_report(ws, store)
        finally:
            ws.close()

    @contextlib.contextmanager
    def _locked(self, store: StateStore) -> Iterator[bool]:
        """The state lock, waiting its turn (and saying so) until it is free or we stop."""
        waited_from = None
        with contextlib.ExitStack() as stack:
            while True:
                try:
                    stack.enter_context(store.lock("watch", timeout=0.0 if waited_from is None else LOCK_POLL))
                    break
                except LockError as e:
                    if waited_from is None:
                        waited_from = time.monotonic()
                        self.health.waiting_for_lock = True
                        self.log.emit("lock_wait", f"waiting its turn: {e}", level="warning")
                    if self._stop.is_set():
                        self.health.waiting_for_lock = False
                        yield False
                        return
            self.health.waiting_for_lock = False
            if waited_from is not None:
                self.log.emit("lock_acquired", f"got the state lock after {time.monotonic() - waited_from:.1f}s")
            yield True

    def _plan(self, ws: Workspace, state) -> tuple[PlanResult, dict]:
        online_checks(ws)
        live = observe(ws, state)
        now = ws.clock()  # expiry and schedules: the desired state at this moment
        timeline = timeline_mod.desired_at(ws.manifest.resources, state, now)
        result = ws.plan_resources(state, live, PlanOptions(), timeline.resources)
        result.plan.manifest_digest = ws.manifest.digest
        guardrails(ws, result, timeline, now)
        self._expiry_notices(timeline, now)
        return result, live

    def _expiry_notices(self, timeline: timeline_mod.Timeline, now: Any) -> None:
        """A line (and a --notify notice) 2 h and 30 min before each deadline, once each."""
        for address, label, due in timeline_mod.due_notices(timeline, now):
            key = (address, label, due)
            left = (due - now).total_seconds()
            threshold = dict((b, a) for a, b in timeline_mod.NOTICES)[label]
            if key in self._noticed or (self.config.once and left <= threshold - self.config.interval):
                continue
            self._noticed.add(key)
            text = f"expires in {left / 60:.0f} min (the {label} notice)" if left < 3600 else \
                f"expires in {left / 3600:.1f} h (the {label} notice)"
            self.log.emit("expiry_notice", text, address=address, deadline=due.isoformat(), level="warning")
            if self.notifier:
                self.notifier.send({"event": "expiry_notice", "text": f"reconciler: {address} {text}",
                                    "address": address, "deadline": due.isoformat(), "state": self._location})

    def _plan_and_report(self, ws: Workspace, store: StateStore) -> RunOutcome:
        state = store.read()
        result, live = self._plan(ws, state)
        pending = find_pending(result, state, ws.kinds)
        for address, m in pending.items():
            if m.what == "interrupted" and address in self.backoff.failing:
                # its create failed here, in front of us (a 400, a failed asset), and is retried after
                # its backoff: still an addition, not a create some interrupted run left behind
                pending[address] = dataclasses.replace(m, what="added")
        outcome = RunOutcome("ok", drift=find_drift(result, state, live, ws.kinds), pending=pending)
        verbs = {a: s.action.type.verb for a, s in result.steps.items()}
        self._report_moves("drift", outcome.drift, verbs)
        self._report_moves("pending", outcome.pending, verbs)
        mode = self.config.auto_apply
        denied = result.plan.denied
        if denied:
            names = ", ".join(dict.fromkeys(f"{r.name}" + (f" ({r.address})" if r.address else "") for r in denied))
            self._error(f"denied by policy, nothing applied: {names}")
            outcome.result = "denied"
            return outcome
        stable_held = select(result, mode or ALL, {}).held  # without backoff: reported once
        errors = unexplained_errors(result, stable_held)
        if not mode:
            warning = "\n".join(result.errors) or None
            if warning and warning != self._last_warning:
                self.log.emit("plan_warning", "an apply would refuse this plan:\n" + warning, level="warning")
            self._last_warning = warning
            return outcome
        self._report_held(stable_held)
        if errors:
            self._error("nothing applied: " + "\n".join(errors))
            outcome.result = "error"
            return outcome
        self.backoff.keep_only({a for a, s in result.steps.items() if s.action.is_change})
        selection = select(result, mode, self.backoff.waiting())
        selection.result.timeline = result.timeline  # what expired: recorded after the apply
        outcome.held = selection.held
        self._apply(ws, store, state, selection.result, outcome)
        return outcome

    # -- applying --------------------------------------------------------------------
    def _apply(self, ws: Workspace, store: StateStore, state, result: PlanResult, outcome: RunOutcome) -> None:
        applier = Applier(result, ws.kinds, lambda k: ws.context(k), store, state,
                          parallelism=self.config.parallelism, on_event=self._on_apply_event)
        try:
            applier.run()
        except ApplyError:
            pass  # the report below has every failure
        finally:
            if after_apply(ws, state, result):  # expires: deadlines of new objects, tombstones
                store.write(state)
        from reconciler.engine import outputs
        if not applier.report.failed and outputs.record(ws.manifest, ws.kinds, state):
            store.write(state)  # top-level outputs, as `reconciler apply` keeps them
        report = applier.report
        outcome.applied = list(report.done)
        recovered = [a for a in report.done if self.backoff.succeeded(a)]
        for address in recovered:
            self.log.emit("recovered", "applied after earlier failures", address=address)
        if recovered and self.notifier:
            self.notifier.send(notify.recovered_payload(recovered, self._location))
        if self.stopping and report.failed:
            outcome.result = "interrupted"
            for address in report.failed:
                self.log.emit("interrupted", "stopped before it finished; the next run completes it",
                              address=address, level="warning")
            return
        fresh: dict[str, tuple[str, int, float]] = {}
        for address, error in report.failed.items():
            before = self.backoff.failing.get(address)
            entry = self.backoff.failed(address, error)
            wait = entry.retry_at - self.backoff.clock()
            self.log.emit("apply_failed", f"{error} (failure {entry.count} in a row; next try in {wait:.0f}s)",
                          address=address, level="error", error=error, failures=entry.count,
                          retry_in_seconds=round(wait, 1))
            if before is None or before.error != error:
                fresh[address] = (error, entry.count, wait)
        # still failing, waiting out their backoff: not tried this run, but not ok either
        outcome.failed = {**{a: f.error for a, f in self.backoff.failing.items()}, **report.failed}
        if outcome.failed or report.skipped:
            outcome.result = "failed"
        if fresh and self.notifier:
            self.notifier.send(notify.failure_payload(fresh, self._location))

    def _on_apply_event(self, action: Action, status: str, seconds: float | None, detail: str | None) -> None:
        verb = action.type.verb + (" (adopt)" if action.adopt else "")
        if status == "start":
            self.log.emit("apply", f"{verb}: {'; '.join(action.reasons)}", address=action.address, action=verb)
        elif status == "done":
            self.log.emit("applied", f"{verb} done in {seconds or 0:.1f}s", address=action.address, action=verb,
                          seconds=round(seconds or 0, 3))
        elif status == "skipped":
            self.log.emit("apply_skipped", detail or "", address=action.address, level="warning")

    # -- reporting -------------------------------------------------------------------
    def _report_moves(self, what: str, found: dict[str, Moved], verbs: dict[str, str]) -> None:
        """A line for each resource whose drift (or pending change) appeared, changed or cleared."""
        seen: dict[str, Moved] = self._reported[what]
        new = [m for a, m in sorted(found.items()) if a not in seen or seen[a].signature != m.signature]
        gone = [seen.pop(a) for a in sorted(set(seen) - set(found))]
        for m in new:
            self.log.emit(what, _describe(what, m, verbs.get(m.address)), address=m.address, kind=m.kind,
                          what=m.what, action=verbs.get(m.address),
                          changes=moved_fields(m, "live" if what == "drift" else "manifest") or None)
            seen[m.address] = m
        for m in gone:
            self.log.emit(f"{what}_cleared", "live matches what was applied again" if what == "drift"
                          else "nothing left to apply", address=m.address, kind=m.kind)
        if what == "drift" and self.notifier:
            if new:
                self.notifier.send(notify.drift_payload("drift", new, self._location))
            if gone:
                self.notifier.send(notify.drift_payload("drift_cleared", gone, self._location))

    def _report_held(self, held: dict[str, str]) -> None:
        seen = self._reported["held"]
        for address, why in sorted(held.items()):
            if seen.get(address) != (why,):
                self.log.emit("held", f"not applied: {why}", address=address, level="warning")
                seen[address] = (why,)
        for address in set(seen) - set(held):
            del seen[address]

    def _error(self, message: str) -> None:
        if message != self._last_error:  # one line when it starts or changes, not every interval
            self.log.emit("error", message, level="error")
            self._last_error = message


def _describe(what: str, m: Moved, verb: str | None) -> str:
    plan = f" (plan: {verb})" if verb else ""
    if what == "drift":
        if m.what == "deleted":
            return f"deleted outside reconciler{plan}"
        return "changed outside reconciler: " + "; ".join(f"{field_text(f)}" for f in m.fields) + \
            " (applied -> live)" + plan
    if m.what == "added":
        return f"added to the manifests{plan}"
    if m.what == "removed":
        return f"removed from the manifests{plan}"
    if m.what == "interrupted":
        return f"a create an interrupted run journaled{plan}"
    return "changed in the manifests: " + "; ".join(field_text(f) for f in m.fields) + " (applied -> manifest)" + plan
