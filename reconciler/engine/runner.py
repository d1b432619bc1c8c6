"""One run of the tool: manifests -> validated resources -> live reads -> plan -> apply.

The CLI stays thin by calling this; the engine modules stay pure by being called from
here. Providers arrive as a registry argument, so the engine imports none of them.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from reconciler.config.cache import ManifestCache
from reconciler.config.model import Manifest, Resource
from reconciler.engine import graph, recorded
from reconciler.engine import policies as policy_engine
from reconciler.engine import timeline as timeline_mod
from reconciler.engine.clock import Clock, system_now
from reconciler.engine.drift import find_drift
from reconciler.engine.planner import (
    PlanOptions,
    PlanResult,
    make_plan,
    named,
    partial_note,
    resolve,
    selected,
    state_outputs,
)
from reconciler.errors import ManifestError, PlanError, Problem, StateError
from reconciler.plan.model import ActionType, Drift, Plan
from reconciler.providers.contract import Catalogue, ChecksOnline, Kind, KindContext, Live, Wanted
from reconciler.state.base import ResourceState, StateDoc, applied_spec


@dataclass
class Workspace:
    """Manifests loaded and validated, with the providers that serve their kinds."""

    manifest: Manifest
    providers: dict[str, Any]  # name -> Provider
    kinds: dict[str, Kind] = field(default_factory=dict)  # kind name -> Kind
    kind_provider: dict[str, str] = field(default_factory=dict)
    progress: Callable[[str], None] = lambda m: None
    options: dict[str, Any] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)
    # provider names -> {name: Provider}: loads providers on demand (None: all are given)
    loader: Callable[[set[str] | None], dict[str, Any]] | None = None
    _client_lock: Any = field(default_factory=threading.RLock)
    cache: ManifestCache | None = None  # also keeps the planner's verified no-ops

    def plan_resources(self, state: StateDoc, live: dict[str, Live | None],
                       options: PlanOptions = PlanOptions(), resources: list[Resource] | None = None,
                       imports: Mapping[str, str] | None = None, plain: Mapping[str, dict] | None = None
                       ) -> PlanResult:
        """make_plan over the manifests (or `resources`: the desired state at a moment), with
        the no-ops the last plan over this state verified. `plain`: observe's specs without references."""
        seen = self.cache.noops(state.lineage) if self.cache is not None else {}
        desired = self.manifest.resources if resources is None else resources
        result = make_plan(desired, state, live, self.kinds, lambda kind: self.context(kind), options,
                           imports=imports, seen=seen, plain=plain)
        if self.cache is not None:
            self.cache.remember_noops(state.lineage, result.noops, seen)
        return result
    clock: Clock = system_now  # "now" for expiry and power schedules (tests inject one)

    def __post_init__(self) -> None:
        self._add(self.providers)

    def _add(self, providers: dict[str, Any]) -> None:
        for pname, provider in providers.items():
            self.providers[pname] = provider
            for kind in provider.kinds:
                self.kinds[kind.name] = kind
                self.kind_provider[kind.name] = pname

    def ensure_kinds(self, kind_names: Iterable[str]) -> None:
        """Load the providers of these kinds if they are not loaded yet (kinds the state
        holds but the manifests no longer use)."""
        missing = {k.split(".", 1)[0] for k in kind_names if k not in self.kinds}
        if missing and self.loader is not None:
            self._add({n: p for n, p in self.loader(missing).items() if n not in self.providers})

    def client(self, kind_name: str) -> Any:
        pname = self.kind_provider[kind_name]
        with self._client_lock:  # checks and observe ask from several threads
            return self._client(pname)

    def _client(self, pname: str) -> Any:
        if pname not in self._clients:
            problems = self.manifest.provider_problems.get(pname) if self.manifest.provider_problems else None
            if problems:
                raise ManifestError(problems)
            self._clients[pname] = self.providers[pname].connect(dict(self.manifest.providers.get(pname) or {}))
        return self._clients[pname]

    def catalogue(self, name: str) -> Catalogue:
        """The catalogue a lookup reads ("valdi.flavor"), its provider loaded if need be."""
        self.ensure_kinds([name])
        for provider in self.providers.values():
            for catalogue in getattr(provider, "catalogues", ()):  # fakes in tests may have none
                if catalogue.name == name:
                    return catalogue
        raise PlanError(f"no provider offers the lookup kind {name}")

    def api_for(self, name: str) -> Any:
        """The API client of the provider a kind or catalogue name starts with."""
        with self._client_lock:
            return self._client(name.split(".", 1)[0])

    def context(self, kind_name: str, base_dir: str | None = None) -> KindContext:
        return KindContext(api=self.client(kind_name), base_dir=Path(base_dir or self.manifest.root),
                           progress=self.progress, options=self.options)

    def release_reads(self) -> None:
        """The clients forget the listings they keep for this run (those that can)."""
        for client in self._clients.values():
            release = getattr(client, "release", None)
            if release:
                release()

    def close(self) -> None:
        for client in self._clients.values():
            close = getattr(client, "close", None)
            if close:
                close()


def load_workspace(paths: list[str], providers: dict[str, Any] | Callable[[set[str] | None], dict[str, Any]],
                   env: Mapping[str, str] | None = None,
                   progress: Callable[[str], None] = lambda m: None, inputs: Any = None,
                   require_values: bool = True, policy_files: list[str] | None = None,
                   clock: Clock = system_now, cache: ManifestCache | None = None) -> Workspace:
    """Load, validate and check for cycles. Raises ManifestError; makes no API call.
    `inputs`: variable values from the command line (variables.Inputs).
    `providers`: name -> Provider, or a loader called with the provider names the
    manifests use (None: all), so that only those are imported.
    `cache`: what an earlier load of the same inputs found (config/cache.py)."""
    from reconciler.config.manifest import load_manifest
    from reconciler.config.validation import local_problems, validate
    from reconciler.engine import outputs

    env = env if env is not None else os.environ
    manifest = load_manifest(paths, env, inputs, require_values, cache)
    if policy_files:  # an organisation's policies, kept outside the repository
        from reconciler.config.policies import load_files

        # a copy: the loaded manifest may be the one a memory cache keeps for the next run
        manifest = replace(manifest, policies=[*manifest.policies, *load_files(policy_files)])
    from reconciler.config.sensitivity import credentials
    from reconciler.providers.http import register_secret
    for name in manifest.sensitive_variables:  # kept out of --debug logs and API error messages
        register_secret(manifest.variables.get(name))
    used = {r.kind.split(".", 1)[0] for r in manifest.resources}
    for value in credentials(manifest.providers, env, used).values():  # and every credential in use
        register_secret(value)
    if callable(providers):
        used = {r.kind.split(".", 1)[0] for r in manifest.resources} | set(manifest.providers) \
            | {lk.kind.split(".", 1)[0] for lk in manifest.lookups.values()}
        ws = Workspace(manifest=manifest, providers=dict(providers(used)), progress=progress, loader=providers)
        ws.ensure_kinds(r.kind for r in manifest.resources)  # an unknown kind: all loaded, to list them
    else:
        ws = Workspace(manifest=manifest, providers=providers, progress=progress)
    ws.clock = clock
    ws.cache = cache
    # a policy may name kinds of a service these manifests do not use (an organisation's
    # file): their provider is loaded to check the names, never connected to
    ws.ensure_kinds(name for policy in manifest.policies for name in policy.kinds())
    # policies (some come from files outside the folder) and the timeline: checked every time
    always = policy_engine.problems(manifest.policies, ws.kinds) + timeline_mod.problems(manifest.resources, ws.kinds)
    if cache is not None and cache.checked_clean(manifest, ws.kinds):
        problems = local_problems(manifest, ws.kinds) + always  # local files may have moved since
        if problems:
            raise ManifestError(problems)
        return ws
    problems = validate(manifest, ws.kinds) + outputs.problems(manifest, ws.kinds) + always
    if problems:
        raise ManifestError(problems)
    graph.check_cycles(manifest.resources)
    if cache is not None:
        cache.remember_clean(manifest, ws.kinds)
    return ws


def online_checks(ws: Workspace, resources: list[Resource] | None = None) -> None:
    """Plan-time checks against live catalogs (read-only), before anything is written."""
    resources = ws.manifest.resources if resources is None else resources
    problems: list[Problem] = []
    by_kind: dict[str, list[Resource]] = {}
    for r in resources:
        by_kind.setdefault(r.kind, []).append(r)
    # connects only to the APIs whose kinds check
    checks = [(kind_name, items, kind) for kind_name, items in by_kind.items()
              if isinstance(kind := ws.kinds[kind_name], ChecksOnline)]
    if checks:
        with ThreadPoolExecutor(max_workers=min(8, len(checks))) as pool:  # each reads its own API
            for found in pool.map(lambda c: c[2].check(ws.context(c[0]), c[1]) or [], checks):
                problems.extend(found)
    if problems:
        raise ManifestError(problems)


def observe(ws: Workspace, state: StateDoc, addresses: set[str] | None = None,
            imports: Mapping[str, str] | None = None, probe_managed: bool = False,
            plain: dict[str, dict] | None = None) -> dict[str, Live | None]:
    """ONE batched observe per kind, the kinds read concurrently. `imports`: address -> id
    of objects to read by id before the state knows them. `probe_managed`: a managed
    resource whose id answers nothing is looked for by its natural key too (a plan must
    not create a second one); drift wants the recorded object or nothing. `plain`: filled
    with address -> the spec found without any reference (the planner need not walk it again)."""
    imports = imports or {}
    desired = {r.address: r for r in ws.manifest.resources}
    every = set(state.resources) | set(desired) | set(state.pending)  # the state's strings kept: one per address
    ws.ensure_kinds([rs.kind for rs in state.resources.values()]
                    + [p["kind"] for p in state.pending.values() if isinstance(p, dict) and "kind" in p])
    with ThreadPoolExecutor(max_workers=8) as early:
        # the listings are requested now, read while the questions below are prepared
        fetching = _prefetch(ws, state, early) if addresses is None else {}
        return _observe(ws, state, desired, every, addresses, imports, probe_managed, plain, fetching)


def _prefetch(ws: Workspace, state: StateDoc, pool: ThreadPoolExecutor) -> dict[str, Future]:
    """kind name -> its prefetch (the listings its observe reads), for the kinds that have one."""
    names = {r.kind for r in ws.manifest.resources} | {rs.kind for rs in state.resources.values()}
    out: dict[str, Future] = {}
    for name in sorted(names):
        kind = ws.kinds.get(name)
        if kind is not None and callable(getattr(kind, "prefetch", None)):
            out[name] = pool.submit(_fetch, ws, kind, name)
    return out


def _fetch(ws: Workspace, kind: Any, name: str) -> None:
    kind.prefetch(ws.context(name))


def _observe(ws: Workspace, state: StateDoc, desired: dict[str, Resource], every: set[str],
             addresses: set[str] | None, imports: Mapping[str, str], probe_managed: bool,
             plain: dict[str, dict] | None, fetching: Mapping[str, Future]) -> dict[str, Live | None]:
    wanted_by_kind: dict[str, list[Wanted]] = {}
    known = state_outputs(state)
    for address in sorted(every if addresses is None else every & addresses):
        r = desired.get(address)
        prior = state.resources.get(address)
        pending = state.pending.get(address)
        kind_name = r.kind if r else (prior.kind if prior else state.pending[address]["kind"])
        if kind_name not in ws.kinds:
            continue  # the planner reports it
        spec: Any
        if r is not None and prior is not None and prior.last_applied is r.spec:
            spec = r.spec  # shared with the state's record as it was read: plain JSON, no reference
        else:
            spec = resolve(r.spec, known) if r else (pending or {}).get("spec")
        if plain is not None and r is not None and spec is r.spec:
            plain[address] = spec
        wanted_by_kind.setdefault(kind_name, []).append(Wanted(
            address=address, id=prior.id if prior else imports.get(address),
            spec=spec,
            last_applied=applied_spec(prior, pending),
            # the entry's own dicts, not copies (100,000 of each at scale): an entry is a value
            # and the kinds only read a Wanted's outputs and secrets
            lookup=pending is not None, outputs=prior.outputs if prior else {},
            probe=r is not None and pending is None and address not in imports and (prior is None or probe_managed),
            base_dir=r.base_dir if r else None, secrets=prior.secrets if prior else {}))
    live: dict[str, Live | None] = {}
    if not wanted_by_kind:
        return live

    def one(kind_name: str) -> dict[str, Live | None]:
        if kind_name in fetching:
            fetching[kind_name].result()  # its failure is observe's (the listing is not asked twice)
        first = wanted_by_kind[kind_name][0].address
        base = desired[first].base_dir if first in desired else None
        return ws.kinds[kind_name].observe(ws.context(kind_name, base), wanted_by_kind[kind_name])

    with ThreadPoolExecutor(max_workers=min(8, len(wanted_by_kind))) as pool:
        for result in pool.map(one, sorted(wanted_by_kind)):
            live.update(result)
    return live


def share_applied(resources: Iterable[Resource], state: StateDoc) -> None:
    """A recorded spec equal to the manifest's (every unchanged resource's) is replaced by the
    manifest's own object, as an apply records it: one copy of each spec in memory, not two
    (at 100,000 resources, tens of MiB), and the fast path's comparison finds them identical.
    Specs are never edited in place (resolve shares them too); the entries stay values."""
    recorded = state.resources
    for r in resources:
        prior = recorded.get(r.address)
        if prior is not None and prior.last_applied is not r.spec and prior.last_applied == r.spec:
            recorded[r.address] = replace(prior, last_applied=r.spec)


def drift(ws: Workspace, state: StateDoc, addresses: set[str] | None = None) -> list[Drift]:
    """What moved in the live services since the last apply, per resource and per field
    (before: last applied, after: live); objects deleted outside are `gone`. Reads the
    managed objects only (one batched listing per kind); the manifests' edits play no part."""
    return find_drift(state, observe(ws, state, _managed(state, addresses)), ws.kinds)


def _managed(state: StateDoc, addresses: set[str] | None) -> set[str]:
    return set(state.resources) if addresses is None else set(state.resources) & addresses


def _refresh_only_plan(ws: Workspace, state: StateDoc, options: PlanOptions) -> PlanResult:
    """Terraform's refresh-only plan: drift only, no action proposed."""
    if options.replace:
        raise PlanError("--replace proposes a change; a refresh-only plan proposes none")
    # the same checks and selection as a plan's, over the managed objects
    addresses = selected({a: set(r.depends_on) & set(state.resources) for a, r in state.resources.items()},
                         options)
    live = observe(ws, state, _managed(state, addresses))
    found = find_drift(state, live, ws.kinds)
    plan_ = Plan(actions=[], refresh_only=True, drift=found, state_lineage=state.lineage,
                 state_serial=state.serial)
    if addresses is not None:
        plan_.partial = {"targets": list(options.targets), "excludes": list(options.excludes),
                         "left_out": sorted(set(state.resources) - addresses)}
        plan_.warnings.append(partial_note(plan_.partial).replace("pending change", "resource"))
    return PlanResult(plan=plan_, steps={}, graph={}, live=live)


def plan(ws: Workspace, state: StateDoc, options: PlanOptions = PlanOptions(),
         fingerprint: Callable[[dict], str] | None = None,
         elsewhere: Callable[[set[str]], dict[str, tuple[str, str]]] | None = None,
         shown_only: bool = False) -> PlanResult:
    """`elsewhere`: which remote ids other states of the same backend manage (id ->
    (workspace, address)); taking one of those over is refused. `shown_only`: nothing will
    be applied in this process, so the listings are let go once observe has read them."""
    from reconciler.engine import imports as importing
    from reconciler.engine import moves
    from reconciler.plan import scope

    # a --target nothing declares nor records is said before any listing is read
    named(options, {r.address for r in ws.manifest.resources} | set(state.resources) | set(state.pending)
          | {m.target for m in ws.manifest.moved})
    # the store's document is untouched: the applier renames it when it applies the plan
    state, moved, move_notes = (state, [], []) if options.refresh_only else moves.planned(state, ws.manifest.moved)
    if ws.manifest.lookups and not options.destroy:
        from reconciler.engine import lookups

        ws.manifest = lookups.substituted(ws.manifest, ws.catalogue, ws.api_for)
    wanted_imports = {} if options.destroy or options.refresh_only else importing.pending(ws.manifest.imports, state)
    leave = scope.left_out(ws.manifest, state)
    state = scope.narrowed(state, leave)  # other files' resources: neither read nor planned
    share_applied(ws.manifest.resources, state)
    if options.refresh_only:
        result = _refresh_only_plan(ws, state, options)
        live = result.live
    else:
        plain: dict[str, dict] = {}
        with ThreadPoolExecutor(max_workers=1) as pool:
            # the checks read the same cached listings as observe: both at once, checks win
            checks = pool.submit(online_checks, ws) if not options.destroy else None
            try:
                live = observe(ws, state, imports=wanted_imports, probe_managed=True, plain=plain)
            finally:
                if checks is not None:
                    checks.result()
        if shown_only:
            ws.release_reads()
        importing.check_found(ws.manifest.imports, wanted_imports, live, ws.manifest.resources)
        now = ws.clock()
        timeline = timeline_mod.desired_at(ws.manifest.resources, state, now)
        result = ws.plan_resources(state, live, options, timeline.resources, imports=wanted_imports, plain=plain)
        result.live = live
        _record_moves(result.plan, moved)
        guardrails(ws, result, timeline, now)
        if not options.destroy:  # Terraform's "Objects have changed outside": from what was read already
            # a verified no-op (engine/fastpath.py) has none: its spec is the last applied one and
            # its diff against the live object was empty
            # (the others, listed directly: at 100,000 no-ops, no set of every address twice over)
            loud = {a for a in state.resources
                    if a not in result.noops or (lv := live.get(a)) is None or lv.local}
            result.plan.drift = find_drift(state, live, ws.kinds, loud)
    result.plan.warnings.extend(move_notes)
    result.root = ws.manifest.root
    left = scope.note(leave, ws.manifest.root)
    if left:
        result.plan.warnings.append(left)
    if elsewhere is not None:
        result.errors += _managed_elsewhere(result, elsewhere)
    if result.errors:
        raise PlanError("\n".join(result.errors))
    from reconciler.config import localfiles
    writing = [s.resource for s in result.steps.values() if s.resource is not None and not s.action.adopt
               and s.action.type in (ActionType.CREATE, ActionType.REPLACE)]
    problems = localfiles.overwrites(writing, ws.kinds)
    if problems:
        raise ManifestError(problems)
    result.plan.manifest_digest = ws.manifest.digest
    if ws.manifest.outputs or state.outputs:
        from reconciler.engine import outputs

        result.plan.output_changes = outputs.planned_changes(ws.manifest, ws.kinds, state, live,
                                                             result.plan.actions, options.destroy)
    if fingerprint:
        result.plan.fingerprints = {a: (fingerprint(lv.attrs) if lv is not None else None)
                                    for a, lv in live.items()}
    return result


def _managed_elsewhere(result: PlanResult, elsewhere: Callable[[set[str]], dict[str, tuple[str, str]]]) -> list[str]:
    """Adoptions of objects another workspace of this backend manages: refused by name."""
    adopting = {a.remote_id: a.address for a in result.plan.actions if a.adopt and a.remote_id}
    found = elsewhere(set(adopting)) if adopting else {}
    return [f"{adopting[rid]}: the live object {rid} is already managed as {address} by workspace {workspace} "
            f"of the same state backend; two states would undo each other's changes. Manage it in one of them."
            for rid, (workspace, address) in sorted(found.items())]


def _record_moves(plan_: Plan, moved: list[tuple[str, str]]) -> None:
    """The plan lists the moves, and each moved action says where it came from."""
    plan_.moves = [[old, new] for old, new in moved]
    by_target = {new: old for old, new in moved}
    for a in plan_.actions:
        if a.address in by_target:
            a.moved_from = by_target[a.address]


def guardrails(ws: Workspace, result: PlanResult, timeline: timeline_mod.Timeline, now: Any) -> None:
    """Expiry and schedules said in the plan; every policy evaluated over it."""
    result.timeline = timeline
    timeline.clock = ws.clock  # the applier stamps deadlines and tombstones with each step's write
    timeline_mod.annotate(result, timeline, ws.kinds, lambda k: ws.context(k))
    result.plan.time_notes = timeline.notes
    facts = policy_engine.Facts(result, ws.kinds, lambda k: ws.context(k), now, timeline.deadlines,
                                timeline_mod.scheduled_hourly(timeline))
    result.plan.policy_results = policy_engine.evaluate(ws.manifest.policies, facts)


def after_apply(ws: Workspace, state: StateDoc, result: PlanResult) -> bool:
    """Deadlines of objects just made, tombstones of expired ones: True if `state` changed."""
    from reconciler.engine import expiry

    expired = set(result.timeline.expired) if result.timeline is not None else set()
    return expiry.record(ws.manifest.resources, state, ws.clock(), expired)


def declared_resource(ws: Workspace, address: str) -> Resource:
    """The manifest's resource at `address`, for `import`; a block with for_each or
    count names one of its instances instead."""
    resource = next((r for r in ws.manifest.resources if r.address == address), None)
    if resource is not None:
        return resource
    some = graph.instances(address, [r.address for r in ws.manifest.resources])[:3]
    if some:
        raise StateError(f"{address} has for_each or count: import one instance, e.g. {some[0]}")
    raise StateError(f"{address} is not declared in the manifests: add its block first, then import")


def import_object(ws: Workspace, doc: StateDoc, address: str, remote_id: str) -> ResourceState:
    """`terraform import`: read the object `remote_id` through its kind's observe (it must
    exist and be visible) and record it in `doc` as the adopted `address`. The next plan
    shows how it differs from the manifest."""
    resource = declared_resource(ws, address)
    kind = ws.kinds[resource.kind]
    spec = resolve(resource.spec, state_outputs(doc))
    prior = doc.resources.get(address)
    if prior is not None:  # a recorded id that answers nothing (a restored backup) may be replaced
        still = kind.observe(ws.context(resource.kind, resource.base_dir),
                             [Wanted(address, prior.id, spec, None, base_dir=resource.base_dir)]).get(address)
        if still is not None and still.id == prior.id:
            raise StateError(f"{address} is already managed (id {prior.id}); "
                             f"`reconciler state rm {address}` first to point it elsewhere")
    taken = next((a for a, rs in doc.resources.items() if rs.id == remote_id and a != address), None)
    if taken:
        raise StateError(f"{remote_id} is already managed as {taken}")
    wanted = Wanted(address, remote_id, spec, None, base_dir=resource.base_dir)
    live = kind.observe(ws.context(resource.kind, resource.base_dir), [wanted]).get(address)
    if live is None or live.id != remote_id:  # one found by its natural key (a datum's URL) is another object
        raise StateError(f"no {resource.kind} with id {remote_id} is visible with these credentials")
    outputs, secrets = recorded.split(live)
    imported = doc.resources[address] = ResourceState(
        kind=resource.kind, id=live.id, last_applied={}, outputs=outputs,
        secrets={k: v for k, v in secrets.items() if v is not None},
        protected=resource.lifecycle.prevent_destroy, deletion_policy=resource.deletion_policy,
        adopted=True)
    return imported
