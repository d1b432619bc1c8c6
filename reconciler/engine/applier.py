"""Executes a plan: creates and updates in dependency order, deletes in reverse, walking
the graph as a ready queue (an action starts when what it uses is done; independent
actions run concurrently, bounded), the state written after every step.

Order (after OpenTofu's transform_destroy_edge.go). `vm` uses `key` (vm -> key):

    forward phase (create / update / replace)      delete phase (reverse)
    wave 1:  key                                    wave 1:  vm     (dependants first)
    wave 2:  vm   (after key: it needs key.id)      wave 2:  key    (after everything using it)

    replace X = delete old X, then create new X, inside X's forward step; the intent is
    journaled first, so a crash between the two leaves a `pending` entry, not a hole.

    replace X and Y where Y uses X (a combined data asset and what it combines, a VM and
    its key): old Y must go before old X can (the API refuses to delete what is in use),
    so such chains delete their old objects first, dependants first (Terraform's
    destroy-before-create order), then create in the forward phase. A crash after those
    deletes leaves state entries whose objects are gone: the next plan creates them.

Crash safety: before a create starts, its intent goes into state.pending and the state is
written. After it finishes, the object moves into state.resources and pending is cleared.
A crash in between leaves the pending entry; the next plan looks the object up by its
natural key (Wanted.lookup) and records it instead of creating a second one.

A failure stops the dependants of the failed action (forward: what uses it; delete phase:
what it uses), lets independent branches finish, and is reported in the summary.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any, Callable, Mapping

from reconciler.config.sensitivity import derived_paths
from reconciler.engine import expiry, graph, moves, recorded, recovery
from reconciler.engine.planner import PlanResult, Step, ignored, resolve, state_outputs
from reconciler.errors import ApiError, ApplyError, CreatedIncomplete, ReconcilerError
from reconciler.plan.diffing import has_unknown
from reconciler.plan.model import Action, ActionType
from reconciler.plan.planfile import fingerprint
from reconciler.plan.scope import declaring_file
from reconciler.providers.contract import CreatesInBatches, Diff, Kind, KindContext, Live, UpdatesInBatches, Wanted
from reconciler.providers.http import describe_failure
from reconciler.state.base import ResourceState, StateDoc, StateStore

# event(action, status, seconds, detail): status in start | done | failed | skipped
Event = Callable[[Action, str, float | None, str | None], None]
# progress(address, message): a kind's status while it works on that address (a wait)
Progress = Callable[[str, str], None]


@dataclass
class ApplyReport:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


class Applier:
    def __init__(self, result: PlanResult, kinds: Mapping[str, Kind],
                 context: Callable[[str], KindContext], store: StateStore, state: StateDoc,
                 parallelism: int = 8, on_event: Event | None = None, on_progress: Progress | None = None):
        self.result = result
        self.kinds = kinds
        self.context = context
        self.store = store
        self.state = state
        self.parallelism = max(1, parallelism)
        self.on_event = on_event or (lambda *a: None)
        self.on_progress = on_progress
        self.report = ApplyReport()
        self._blocked: dict[str, str] = {}  # address -> why it must not run

    # -- driving -------------------------------------------------------------------
    def run(self) -> ApplyReport:
        steps = self.result.steps
        g = self.result.graph
        if self.result.plan.moves:  # `moved:`: the state's entries take their new addresses first
            moves.rename(self.state, [(old, new) for old, new in self.result.plan.moves])
            self._dirty = True
        forward = {a for a, s in steps.items() if not s.action.type.removes}
        deletes = {a for a, s in steps.items() if s.action.type.removes}
        fwd_graph = {a: {d for d in g.get(a, ()) if d in forward} for a in forward}
        # delete phase: reverse edges, so dependants go first
        rev_graph: dict[str, set[str]] = {a: set() for a in deletes}
        for a in deletes:
            for d in g.get(a, ()):
                if d in deletes:
                    rev_graph[d].add(a)
        with ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="apply") as pool:
            self._delete_replaced_chains(pool)
            self._run_graph(pool, fwd_graph, forward=True)
            self._run_graph(pool, rev_graph, forward=False)
        if self._dirty:
            self._write()
        if self.report.failed or self.report.skipped:
            lines = [f"  {a}: {why}" for a, why in self.report.failed.items()]
            lines += [f"  {a}: skipped ({why})" for a, why in self.report.skipped.items()]
            raise ApplyError(f"Apply failed: {len(self.report.done)} done, {len(self.report.failed)} "
                             f"failed, {len(self.report.skipped)} skipped.\n" + "\n".join(lines),
                             failures=self.report.failed)
        return self.report

    def _run_graph(self, pool: ThreadPoolExecutor, edges: dict[str, set[str]], forward: bool) -> None:
        """A ready queue (graphlib get_ready/done): an action starts as soon as everything
        it waits for is done, so an unrelated action never waits for a slow VM."""
        sorter = TopologicalSorter(edges)
        sorter.prepare()
        futures: dict[Future, tuple[list[Step], float]] = {}
        specs: dict[str, dict] = {}
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            if ready:
                finished = self._start(pool, ready, futures, specs)
                if finished:
                    sorter.done(*finished)
                continue
            if not futures:
                raise RuntimeError("the apply graph has nothing ready and nothing running")
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            changed = False
            for fut in done:
                group, started = futures.pop(fut)
                results = fut.result()  # _execute_group never raises
                for step, outcome in zip(group, results, strict=True):
                    changed |= self._record(step, outcome, specs.get(step.action.address), forward,
                                            time.monotonic() - started)
                sorter.done(*(step.action.address for step in group))
            if changed:
                self._write()

    def _start(self, pool: ThreadPoolExecutor, ready: list[str], futures: dict, specs: dict[str, dict]) -> list[str]:
        """Start what is ready; returns the addresses finished at once (no-ops, skips)."""
        steps = self.result.steps
        runnable: list[Step] = []
        finished: list[str] = []
        for address in ready:
            step = steps[address]
            if address in self._blocked:
                self._skip(step, self._blocked[address])
                finished.append(address)
                continue
            if not step.action.is_change:
                self._sync_noop(step)
                finished.append(address)
                continue
            runnable.append(step)
        # journal every create that starts now in one write
        creates = [s for s in runnable if s.action.type in (ActionType.CREATE, ActionType.REPLACE)
                   and not s.action.adopt]
        for step in list(runnable):
            if step.resource is not None and not step.action.type.removes:
                spec = self._resolve(step)
                if spec is None:
                    runnable.remove(step)
                    self._skip(step, "a value it references is not known (its dependency did not apply)")
                    finished.append(step.action.address)
                    continue
                specs[step.action.address] = spec
        for step in creates:
            if step.action.address in specs:
                self.state.pending[step.action.address] = {
                    "kind": step.action.kind, "spec": specs[step.action.address], "started_at": time.time(),
                    "sensitive_paths": self._derived(step)}
        if creates:
            self._write()
        if runnable and hasattr(self.store, "check_lock"):  # a lost lock stops before any API call
            self.store.check_lock()
        if runnable:
            self._owned = [(a, rs.kind, rs.id) for a, rs in self.state.resources.items()]  # for lookups
        for group in self._groups(runnable):
            for s in group:
                self.on_event(s.action, "start", None, None)
            futures[pool.submit(self._execute_group, group, specs)] = (group, time.monotonic())
        return finished

    def _delete_replaced_chains(self, pool: ThreadPoolExecutor) -> None:
        """Old objects of replacements that other replacements use: dependants first."""
        steps, g = self.result.steps, self.result.graph
        replaced = {a for a, s in steps.items() if s.action.type is ActionType.REPLACE and s.live is not None}
        chained = {a for a in replaced if (graph.dependants(g, [a]) - {a}) & replaced}
        chained |= {d for a in chained for d in graph.dependants(g, [a]) if d in replaced}
        if not chained:
            return
        rev: dict[str, set[str]] = {a: set() for a in chained}
        for a in chained:
            for d in g.get(a, ()):
                if d in chained:
                    rev[d].add(a)
        failed: set[str] = set()
        for wave in graph.waves(rev):
            runnable = [a for a in wave if not (graph.dependants(g, [a]) - {a}) & failed]
            futures = {pool.submit(self._delete_old, steps[a]): a for a in runnable}
            for fut, address in futures.items():
                error = fut.result()
                step = steps[address]
                if error is None:
                    step.live = None  # the forward step only creates now
                    continue
                failed.add(address)
                self._record(step, error, None, forward=True, seconds=0.0)  # blocks its dependants
                for d in graph.dependencies_of(g, [address]) - {address}:  # and keeps what it uses
                    self._blocked.setdefault(d, f"{address} failed")

    def _ctx(self, kind_name: str, address: str) -> KindContext:
        """The kind's context, its progress lines tagged with the address they are about."""
        ctx = self.context(kind_name)
        if self.on_progress is not None:
            report = self.on_progress
            ctx = dataclasses.replace(ctx, progress=lambda message: report(address, message))
        return ctx

    def _delete_old(self, step: Step) -> BaseException | None:
        try:
            self._delete_replaced(self._ctx(step.action.kind, step.action.address), step)
        except BaseException as e:  # noqa: BLE001 - reported per step
            return e
        return None

    def _delete_replaced(self, ctx: KindContext, step: Step) -> None:
        """The old object of a replacement goes by the resource's own deletion policy
        (replacing a datum releases it; an SSH key VALDI cannot delete is forgotten)."""
        kind = self.kinds[step.action.kind]
        policy = (step.resource.deletion_policy if step.resource and step.resource.deletion_policy
                  else kind.deletion_policies[0])
        last = step.last_applied
        kind.delete(ctx, _observed(step), policy, last)

    def _groups(self, steps: list[Step]) -> list[list[Step]]:
        """Batchable steps of one kind go together (create_many / update_many)."""
        groups: list[list[Step]] = []
        batch: dict[tuple[str, str], list[Step]] = {}
        for step in steps:
            kind = self.kinds[step.action.kind]
            a = step.action
            key = None
            if a.type is ActionType.CREATE and not a.adopt and isinstance(kind, CreatesInBatches):
                key = (a.kind, "create")
            elif self._updates(a) and isinstance(kind, UpdatesInBatches):
                key = (a.kind, "update")  # updates and take-overs of existing objects
            if key:
                batch.setdefault(key, []).append(step)
            else:
                groups.append([step])
        groups.extend(batch.values())
        return groups

    # -- executing (worker threads: no state mutation here) -------------------------
    def _execute_group(self, group: list[Step], specs: dict[str, dict]) -> list[Any]:
        try:
            if len(group) > 1 or (group and self._is_batch(group[0])):
                return self._execute_batch(group, specs)
            return [self._execute(group[0], specs.get(group[0].action.address))]
        except BaseException as e:  # noqa: BLE001 - reported per step
            return [e] * len(group)

    @staticmethod
    def _updates(a: Action) -> bool:
        return a.type is ActionType.UPDATE or (a.type is ActionType.CREATE and a.adopt)

    def _is_batch(self, step: Step) -> bool:
        kind = self.kinds[step.action.kind]
        a = step.action
        return (a.type is ActionType.CREATE and not a.adopt and isinstance(kind, CreatesInBatches)) or \
               (self._updates(a) and isinstance(kind, UpdatesInBatches))

    def _execute_batch(self, group: list[Step], specs: dict[str, dict]) -> list[Any]:
        kind = self.kinds[group[0].action.kind]
        label = group[0].action.address if len(group) == 1 else f"{group[0].action.kind} (x{len(group)})"
        ctx = self._ctx(group[0].action.kind, label)
        if group[0].action.type is ActionType.CREATE and not group[0].action.adopt:
            assert isinstance(kind, CreatesInBatches)  # _groups batches only the kinds that can
            try:
                made = answered(kind.create_many(ctx, [specs[s.action.address] for s in group]), len(group),
                                f"{kind.name} create_many")
            except Exception as e:  # noqa: BLE001 - each create is resolved on its own below
                made = [e] * len(group)
            # an error, or no answer, is resolved on its own (looked up by natural key before any
            # create), and fails alone: the other items keep their own outcome
            return [_outcome(functools.partial(self._create, s, specs[s.action.address], first_error=m))
                    if isinstance(m, Exception) else m for s, m in zip(group, made, strict=True)]
        results: list[Any] = [s.live for s in group]  # a take-over with nothing to change
        items: list[tuple[Live, dict, Diff]] = []
        where: list[int] = []
        for i, s in enumerate(group):
            spec = specs[s.action.address]
            last = s.last_applied
            diff = self._fresh_diff(kind, s, spec, last)
            if diff.changed:
                items.append((_observed(s), spec, diff))
                where.append(i)
        if items:
            assert isinstance(kind, UpdatesInBatches)  # _groups batches only the kinds that can
            try:
                outcomes = answered(kind.update_many(ctx, items), len(items), f"{kind.name} update_many")
            except Exception as e:  # noqa: BLE001 - each update is tried again on its own below
                outcomes = [e] * len(items)
            for i, (live, spec, diff), outcome in zip(where, items, outcomes, strict=True):
                if isinstance(outcome, Exception) and recovery.transient(outcome):
                    try:
                        outcome = recovery.retry(lambda: kind.update(ctx, live, spec, diff))
                    except Exception as e:  # noqa: BLE001 - reported per step
                        outcome = e
                results[i] = outcome
        return results

    def _fresh_diff(self, kind: Kind, step: Step, spec: dict, last: dict | None) -> Diff:
        """Re-diff with references now resolved; keep the plan's ignore_changes filtering."""
        if step.diff is not None and not has_unknown(step.spec):
            return step.diff
        diff = kind.diff(spec, _observed(step), last)
        ignore = step.resource.lifecycle.ignore_changes if step.resource else ()
        diff.changes = [c for c in diff.changes if not ignored(c.path, ignore)]
        return diff

    def _execute(self, step: Step, spec: dict | None) -> Any:
        a = step.action
        kind = self.kinds[a.kind]
        ctx = self._ctx(a.kind, a.address)
        if step.resource is not None:  # relative file paths start at the declaring file's folder
            ctx = dataclasses.replace(ctx, base_dir=Path(step.resource.base_dir))
        last = step.last_applied
        if a.type.removes:
            if a.type is not ActionType.FORGET:  # delete, release and orphan: the kind's call
                recovery.retry(lambda: kind.delete(ctx, _observed(step), a.policy or "delete", last))
            return None
        assert spec is not None, a.address  # resolved for every step that is not a removal
        if a.type is ActionType.REPLACE:
            if step.live is not None:  # None when a replaced chain already deleted it
                recovery.retry(lambda: self._delete_replaced(ctx, step))
            return self._create(step, spec, ctx)
        if a.type is ActionType.CREATE and not a.adopt:
            return self._create(step, spec, ctx)
        diff = self._fresh_diff(kind, step, spec, last)
        return recovery.retry(lambda: kind.update(ctx, _observed(step), spec, diff)) if diff.changed else step.live

    def _create(self, step: Step, spec: dict, ctx: KindContext | None = None,
                first_error: BaseException | None = None) -> Any:
        """A create that survives in-doubt failures without a duplicate (see recovery.py)."""
        kind = self.kinds[step.action.kind]
        if ctx is None:
            ctx = self._ctx(step.action.kind, step.action.address)
            if step.resource is not None:
                ctx = dataclasses.replace(ctx, base_dir=Path(step.resource.base_dir))
        return recovery.create(kind, ctx, spec, lambda: self._lookup(kind, ctx, step, spec),
                               first_error=first_error)

    def _lookup(self, kind: Kind, ctx: KindContext, step: Step, spec: dict) -> Live | None:
        """The object an in-doubt create may have made: the kind's natural-key lookup, with
        every object other addresses own (and a replaced one) claimed, so none is taken."""
        address = step.action.address
        wanted = [Wanted(address, None, spec, lookup=True,
                         base_dir=step.resource.base_dir if step.resource else None)]
        wanted += [Wanted(f"{a}#owned", rid, None) for a, k, rid in self._owned if k == step.action.kind]
        if step.prior is not None:
            wanted.append(Wanted(f"{address}#replaced", step.prior.id, None))
        return kind.observe(ctx, wanted).get(address)

    # -- recording (main thread) ----------------------------------------------------
    def _record(self, step: Step, outcome: Any, spec: dict | None, forward: bool, seconds: float) -> bool:
        a = step.action
        stored = False
        if isinstance(outcome, CreatedIncomplete) and isinstance(outcome.live, Live):
            self._store_live(step, outcome.live, spec)  # it exists: never made twice, secrets kept
            outcome, stored = outcome.cause, True
        if isinstance(outcome, BaseException):
            message = str(outcome) if isinstance(outcome, ReconcilerError) else describe_failure(outcome)
            self.report.failed[a.address] = message
            self.on_event(a, "failed", seconds, message)
            self._block_after(a.address, forward)
            return stored
        if a.type.removes:
            self.state.resources.pop(a.address, None)
            self.state.pending.pop(a.address, None)
            if a.type is not ActionType.DELETE and step.live is not None and not (step.prior and step.prior.adopted):
                # made by us and left in the service: a later create of the same content takes it back
                self.state.forgotten[a.address] = {"kind": a.kind, "id": step.live.id,
                                                   "fingerprint": fingerprint(step.live.attrs)}
            timeline = self.result.timeline
            if timeline is not None and a.address in timeline.expired:  # in this step's write: never re-made
                expiry.tombstone(self.state, a.address, timeline.clock())
        else:
            self._store_live(step, outcome, spec)
        self.report.done.append(a.address)
        self.on_event(a, "done", seconds, outcome.id if isinstance(outcome, Live) else None)
        return True

    def _store_live(self, step: Step, live: Live, spec: dict | None) -> None:
        a = step.action
        derived = self._derived(step)
        outputs, secrets = recorded.split(live, derived)  # an output echoing a derived field is a secret too
        resource = step.resource
        prior = step.prior
        ours = self.state.forgotten.pop(a.address, {}).get("id") == live.id  # made by an earlier apply
        adopted = (prior.adopted if prior else (a.adopt and step.pending is None and not ours)) \
            or (live.adopted and not ours)
        policy = resource.deletion_policy if resource and resource.deletion_policy else None
        # an expires: deadline is the object's: kept until a replace makes a new one, and a new
        # one is written with the object (a crash before a later write would move it)
        expires_at = prior.expires_at if prior and a.type is not ActionType.REPLACE else None
        timeline = self.result.timeline
        if expires_at is None and timeline is not None:
            expires_at = expiry.made(self.state, resource, a.address, timeline.clock())
        self.state.resources[a.address] = ResourceState(
            kind=a.kind, id=live.id, last_applied=spec or {},
            outputs=outputs,
            secrets={**(prior.secrets if prior and a.type is not ActionType.REPLACE else {}), **secrets},
            protected=bool(resource and resource.lifecycle.prevent_destroy),
            deletion_policy=policy, adopted=bool(adopted),
            depends_on=sorted(self.result.graph.get(a.address, ())), sensitive_paths=derived,
            file=(declaring_file(resource.position.file, self.result.root) if resource and self.result.root
                  else prior.file if prior else None),
            expires_at=expires_at)
        self.state.pending.pop(a.address, None)

    def _derived(self, step: Step) -> list[str]:
        """Spec paths holding values derived from a secret: sealed at rest, masked by state show."""
        if step.resource is None:
            return []
        derived = step.derived or derived_paths(step.resource.spec, self.kinds)  # the plan followed references
        return sorted(set(derived) | set(step.resource.sensitive_paths))

    def _sync_noop(self, step: Step) -> None:
        """Nothing to change remotely, but the state may still learn something: outputs,
        protection, deletion policy, or an object found after an interrupted apply."""
        if step.resource is None or step.live is None:
            return
        spec = self._resolve(step) or (step.prior.last_applied if step.prior else {})
        before = step.prior
        # an object found after an interrupted create or replace: its id and the spec it was
        # made from are recorded together (never the new id with the old object's spec)
        self._store_live(step, step.live, spec if before is None or step.live.id != before.id
                         else before.last_applied)
        after = self.state.resources[step.action.address]
        if before is None or after != before:
            self._dirty = True

    def _skip(self, step: Step, why: str) -> None:
        self.report.skipped[step.action.address] = why
        self.on_event(step.action, "skipped", None, why)
        self._block_after(step.action.address, forward=not step.action.type.removes)

    def _block_after(self, address: str, forward: bool) -> None:
        g = self.result.graph
        if forward:
            blocked = graph.dependants(g, [address]) - {address}
        else:  # a failed delete: what it uses must stay
            blocked = graph.dependencies_of(g, [address]) - {address}
        for b in blocked:
            self._blocked.setdefault(b, f"{address} failed")

    def _resolve(self, step: Step) -> dict | None:
        """The spec with references resolved from what is applied so far."""
        assert step.resource is not None, step.action.address  # a removal has no spec
        spec = resolve(step.resource.spec, state_outputs(self.state))
        return None if has_unknown(spec) else spec

    _dirty = False
    _owned: list = []

    def _write(self) -> None:
        self.store.write(self.state)
        self._dirty = False


def _outcome(call: Callable[[], Any]) -> Any:
    """call's result, or the exception it raised: one item's outcome in a batch."""
    try:
        return call()
    except Exception as e:  # noqa: BLE001 - reported per step
        return e


def answered(results: list[Any], count: int, what: str) -> list[Any]:
    """A batch's answers, one per item in order. A short (or long) answer cannot be matched
    to its items: those without an answer are in doubt (a long one, all of them), never done."""
    results = list(results)
    if len(results) == count:
        return results
    doubt = ApiError(f"{what} answered {len(results)} results for {count} items: the outcome is in doubt",
                     endpoint=what)
    doubt.in_doubt = True
    return results + [doubt] * (count - len(results)) if len(results) < count else [doubt] * count


def _observed(step: Step) -> Live:
    """The object an update, a delete or a take-over acts on: the plan observed it."""
    assert step.live is not None, step.action.address
    return step.live

