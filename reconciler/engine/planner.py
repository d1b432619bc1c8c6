"""desired resources + state + live objects -> Plan.

Pure: no I/O of its own. The kinds' diff() is pure; hourly_cost() may read a catalog
the provider client has cached.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from typing import AbstractSet, Any, Callable, Collection, Mapping, Sequence

from reconciler.config import walk
from reconciler.config.hints import did_you_mean
from reconciler.config.model import UNKNOWN, Ref, Resource, Template
from reconciler.config.sensitivity import (
    Taint,
    covers,
    derived_paths,
    field_names,
    hidden,
    register,
)
from reconciler.engine import fastpath, graph
from reconciler.errors import PlanError
from reconciler.plan.diffing import item_changes, live_only
from reconciler.plan.model import Action, ActionType, Drift, FieldChange, Plan
from reconciler.plan.planfile import fingerprint
from reconciler.providers.contract import (
    DEFAULT_DELETION_EFFECTS,
    DeletionPolicy,
    Diff,
    Kind,
    KindContext,
    Live,
    Priced,
)
from reconciler.state.base import ResourceState, StateDoc, applied_spec


@dataclass(slots=True)
class Step:
    """What the applier needs for one action, beyond what the plan shows. Slots: one per
    resource in the plan, no attribute dict each."""

    action: Action
    resource: Resource | None  # desired; None when the address is only in the state
    live: Live | None
    prior: ResourceState | None
    diff: Diff | None = None
    pending: dict | None = None  # journaled create from an interrupted apply
    spec: dict | None = None  # the desired spec with known references resolved
    derived: list[str] = field(default_factory=list)  # spec paths derived from a secret: sealed at rest
    moved: list[FieldChange] = field(default_factory=list)  # replace-forcing live moves: drift, not acted on

    @property
    def last_applied(self) -> dict | None:
        return applied_spec(self.prior, self.pending, self.live.id if self.live is not None else None)


@dataclass
class PlanResult:
    plan: Plan
    steps: dict[str, Step]
    graph: dict[str, set[str]]  # address -> dependencies, over every address in the plan
    errors: list[str] = field(default_factory=list)
    root: str = ""  # the manifest folder: the state records declaring files relative to it
    live: dict[str, Live | None] = field(default_factory=dict)  # what the plan read
    noops: dict[str, str] = field(default_factory=dict)  # verified no-ops, for the next plan (fastpath.py)
    timeline: Any = None  # engine.timeline.Timeline: expiry and schedules at the plan's moment


@dataclass(frozen=True)
class PlanOptions:
    """What the command line asked of one plan (a default argument, so never mutated)."""

    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    destroy: bool = False
    refresh_only: bool = False
    # how this run was invoked, for the commands a message offers: the global flags
    # (`--sandbox`, `--state PATH`) and the manifest paths, shell-quoted
    flags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def import_command(self, address: str, remote_id: str) -> str:
        import shlex
        return shlex.join(["reconciler", *self.flags, "import", address, remote_id, *self.paths])


def state_outputs(state: StateDoc) -> Callable[[str, str], Any]:
    """Reference lookup from what the state recorded: outputs, then secrets, then the id."""
    def lookup(address: str, attribute: str) -> Any:
        rs = state.resources.get(address)
        if rs is None:
            return UNKNOWN
        if attribute in rs.outputs:
            return rs.outputs[attribute]
        if attribute in rs.secrets:
            register(rs.secrets[attribute])  # never shown in a log line or message from here on
            return rs.secrets[attribute]
        return rs.id if attribute == "id" else UNKNOWN
    return lookup


def resolve(value: Any, outputs: Callable[[str, str], Any]) -> Any:
    """Substitute references with known outputs, or UNKNOWN. Parts without a reference
    are shared, not copied (a spec without references comes back as it is): nothing
    edits a spec in place, and 100,000 copies of specs are 100,000 copies."""
    if isinstance(value, Ref):
        return outputs(value.address, value.attribute)
    if isinstance(value, Template):
        parts = [outputs(p.address, p.attribute) if isinstance(p, Ref) else p for p in value.parts]
        if any(p is UNKNOWN for p in parts):
            return UNKNOWN
        return "".join(str(p) for p in parts)
    if isinstance(value, dict):  # leaves skipped without a call: this runs over every spec field
        out = None
        for k, v in value.items():
            if not isinstance(v, _LEAVES):
                new = resolve(v, outputs)
                if new is not v:
                    if out is None:
                        out = dict(value)
                    out[k] = new
        return value if out is None else out
    if isinstance(value, list):
        changed = None
        for i, v in enumerate(value):
            if not isinstance(v, _LEAVES):
                new = resolve(v, outputs)
                if new is not v:
                    if changed is None:
                        changed = list(value)
                    changed[i] = new
        return value if changed is None else changed
    return value


_LEAVES = (str, int, float, type(None))  # bool is an int


def _made_and_forgotten(step: Step, state: StateDoc, lv: Live) -> bool:
    """The object an earlier apply made and then forgot (a key VALDI cannot delete),
    unchanged since, and what the manifest asks for now: taking it back is no surprise."""
    remembered = state.forgotten.get(step.action.address) or {}
    return (remembered.get("id") == lv.id and remembered.get("kind") == step.action.kind
            and remembered.get("fingerprint") == fingerprint(lv.attrs)
            and step.action.type is ActionType.CREATE and step.action.adopt and not step.action.changes)


def conflict_message(address: str, kind_name: str, lv: Live, options: PlanOptions | None = None,
                     dangling: str | None = None, forgotten: bool = False) -> str:
    """A plan that would make a second object with an existing one's natural key refuses,
    naming the import command exactly as this run would need it (flags, paths).
    `dangling`: the id the state recorded, which answers nothing any more."""
    name = lv.attrs.get("name") or lv.attrs.get("bucket_name") or lv.outputs.get("name")
    named = f"a {kind_name} {('named ' + repr(name) + ' ') if name else ''}"
    command = (options or PlanOptions()).import_command(address, lv.id)
    if dangling:
        return (f"{address}: the state records id {dangling}, which no longer exists in the live service, but "
                f"{named}exists (id {lv.id}); creating {address} would make a second one. Take it over with "
                f"`{command}`, or give the resource another name.")
    if forgotten:
        return (f"{address}: {named}made by an earlier apply and forgotten exists in the live service "
                f"(id {lv.id}), but its content is not what the manifest asks for now; creating {address} "
                f"would make a second one. Take it over with `{command}`, or give the resource another name.")
    return (f"{address}: {named}already exists in the live "
            f"service (id {lv.id}) and reconciler does not manage it; creating {address} would make a second one. "
            f"Take it over with `{command}`, or give the resource another name.")


def ignored(path: str, ignore: tuple[str, ...]) -> bool:
    """Is a changed field under lifecycle.ignore_changes? (`spec.` may be written or not)"""
    for prefix in ignore:
        prefix = prefix[5:] if prefix.startswith("spec.") else prefix
        if path == prefix or path.startswith(prefix + "."):
            return True
    return False


def _mark_sensitive(changes: list[FieldChange], sensitive: set[str],
                    derived: Sequence[str] = ()) -> list[FieldChange]:
    """Mark changes of secret fields, and of fields holding a value derived from a secret."""
    out = []
    for c in changes:
        hit = c.sensitive or hidden(c.path, sensitive, derived, (c.old, c.new))
        out.append(dc_replace(c, sensitive=True) if hit and not c.sensitive else c)
    return out


def _mark_derived(changes: list[FieldChange], paths: AbstractSet[str]) -> list[FieldChange]:
    """Changes at, above or below a spec path filled from a sensitive variable are sensitive."""
    if not paths:
        return changes
    def hit(p: str) -> bool:
        return any(p == s or s.startswith((p + ".", p + "[")) or p.startswith((s + ".", s + "["))
                   for s in paths)
    return [dc_replace(c, sensitive=True) if not c.sensitive and hit(c.path) else c for c in changes]


def masked_changes(changes: list[FieldChange], sensitive: set[str]) -> list[FieldChange]:
    """Changes as the plan shows them: a sensitive field inside a shown value (a VM's
    details.password in `+ details = {...}`) is masked. The applier keeps the real ones."""
    if not sensitive:
        return changes
    return [c if c.sensitive else dc_replace(c, old=_mask(c.old, sensitive), new=_mask(c.new, sensitive))
            for c in changes]


def _mask(value: Any, sensitive: set[str]) -> Any:
    return walk.masked(value, sensitive.__contains__, "(sensitive)")


def deletion_effect(kind: Kind, policy: str) -> DeletionPolicy:
    """What a kind says one of its deletion policies does (its own words, or the defaults)."""
    found = kind.deletion_effects.get(policy) or DEFAULT_DELETION_EFFECTS.get(policy)
    return found or DeletionPolicy(policy if policy in ("forget", "release", "orphan") else "delete",
                                   f"deletion policy {policy}")


def live_values(spec: Mapping[str, Any], live: Live | None, kind: Kind) -> str:
    """The live object's values of the fields the spec sets, short, secrets masked: what
    an import takes over."""
    if live is None:
        return "live: (not read)"
    shown = []
    for key in spec:
        if key in live.attrs:
            value = "(sensitive)" if key in kind.sensitive else _mask(live.attrs[key], set(kind.sensitive))
            text = value if isinstance(value, str) and value == "(sensitive)" else json.dumps(value, default=str)
            shown.append(f"{key} = {text if len(text) <= 60 else text[:57] + '...'}")
    return "live: " + (", ".join(shown) or "(no field the spec sets)")


def live_name(live: Live | None) -> str | None:
    """The object's own name in its service, for a reviewer to recognise it."""
    if live is None:
        return None
    for source, key in ((live.attrs, "name"), (live.outputs, "name"), (live.attrs, "bucket_name")):
        if isinstance(source.get(key), str) and source[key]:
            return source[key]
    return None


def _name_shown(live: Live | None, derived: Sequence[str]) -> str | None:
    """live_name, masked when the name is derived from a secret (a name built from a key)."""
    name = live_name(live)
    if name is not None and derived and (covers(derived, "name") or covers(derived, "bucket_name")):
        return "(sensitive)"
    return name


def with_items(changes: list[FieldChange], kind: Kind) -> list[FieldChange]:
    """Each change to a list or dict value carries what changed inside it."""
    unordered = kind.unordered
    out = []
    for c in changes:
        if not c.sensitive and c.old is not None and c.new is not None and not c.items:
            items = item_changes(c.path, c.old, c.new, unordered)
            if items:
                c = dc_replace(c, items=items)
        out.append(c)
    return out


def make_plan(desired: list[Resource], state: StateDoc, live: dict[str, Live | None],
              kinds: Mapping[str, Kind], context: Callable[[str], KindContext],
              options: PlanOptions = PlanOptions(), imports: Mapping[str, str] | None = None,
              seen: Mapping[str, str] | None = None, plain: Mapping[str, dict] | None = None) -> PlanResult:
    """`imports`: address -> id of the `imports:` entries the state does not hold yet.
    `seen`: the no-ops an earlier plan verified (address -> fastpath digest).
    `plain`: address -> a spec known to hold no reference (resolving it gives it back)."""
    imports = imports or {}
    by_addr = {r.address: r for r in desired}
    noops: dict[str, str] = {}
    if options.destroy:
        by_addr = {}
    # the graph covers desired resources and state-only ones (their recorded edges)
    g: dict[str, set[str]] = graph.build(by_addr.values())
    fast = _FastPath(seen or {}, noops, g)
    for address, recorded_state in state.resources.items():
        if address not in by_addr:
            g[address] = {d for d in recorded_state.depends_on if d in state.resources or d in by_addr}
    for address in state.pending:  # an interrupted create may have made its object: finish or remove it
        g.setdefault(address, set())
    for d in list(g.values()):
        for dep in d:
            g.setdefault(dep, set())
    steps: dict[str, Step] = {}
    errors: list[str] = []
    plan_warnings: list[str] = []
    unknown_outputs: set[str] = set()  # addresses created or replaced: outputs unknown
    drift: list[Drift] = []  # replace-forcing fields that moved in the service, not in the manifest

    recorded = state_outputs(state)
    taint = Taint(by_addr.values())  # secrets followed through references, asked on demand

    def outputs(address: str, attribute: str) -> Any:
        if address in unknown_outputs:
            return UNKNOWN
        lv = live.get(address)
        if lv is not None and attribute in lv.outputs:
            return lv.outputs[attribute]
        return recorded(address, attribute)

    # once: the actions are listed in the same order below (no edge at all: one wave, sorted)
    ordered = graph.order(g) if any(g.values()) else sorted(g)
    priced: dict[str, bool] = {}
    for address in ordered:
        resource = by_addr.get(address)
        prior = state.resources.get(address)
        lv = live.get(address)
        kind_name = resource.kind if resource else (prior.kind if prior else state.pending[address]["kind"])
        kind = kinds.get(kind_name)
        if kind is None:
            errors.append(f"{address}: the state holds a {kind_name} but no provider offers that kind")
            continue
        if resource is not None:
            step = _plan_desired(resource, prior, lv, kind, outputs, options, state, kinds, taint, fast,
                                 plain or {}, address)
            if step.moved:
                drift.append(_held_back(step, plan_warnings))
            if address in imports and step.action.adopt:
                step.action.imported = True
                step.action.reasons[0] = f"will be imported: {imports[address]} exists and is taken under management"
                step.action.reasons.insert(1, live_values(step.spec or {}, lv, kind))
            elif lv is not None and address not in state.pending and kind.natural_key_conflicts:
                if prior is None and _made_and_forgotten(step, state, lv):
                    step.action.reasons[0] = "will be adopted: made by an earlier apply and forgotten"
                elif prior is None:
                    errors.append(conflict_message(address, resource.kind, lv, options,
                                                   forgotten=address in state.forgotten))
                elif lv.id != prior.id:  # the recorded id answers nothing; the natural key found this
                    errors.append(conflict_message(address, resource.kind, lv, options, dangling=prior.id))
            if step.action.type in (ActionType.CREATE, ActionType.REPLACE) and not step.action.adopt:
                unknown_outputs.add(address)
            if step.action.type is ActionType.REPLACE and (
                    resource.lifecycle.prevent_destroy or (prior and prior.protected)):
                errors.append(f"{address} is protected by prevent_destroy but the plan must replace it "
                              f"({'; '.join(step.action.reasons)}). Lift the protection in the manifest "
                              "first if you mean it.")
        elif prior is not None or address in state.pending:
            step = _plan_removal(address, prior, lv, kind, state, options)
            if step.action.type is not ActionType.FORGET and prior is not None and prior.protected:
                errors.append(
                    f"{address} is protected by prevent_destroy and would be "
                    f"{'destroyed' if options.destroy else 'destroyed because it left the manifests'}. "
                    "Nothing was changed. To destroy it, put its block back with "
                    f"`lifecycle: {{prevent_destroy: false}}` and apply, or run "
                    f"`reconciler state unprotect {address}`; to stop managing it without touching it, "
                    f"run `reconciler state rm {address}`.")
        else:
            continue
        deps = g.get(address)
        step.action.depends_on = sorted(deps) if deps else _NOTHING
        notes = kind.plan_notes(step.spec, lv, prior.last_applied if prior else None)
        if notes:  # a new list: a verified no-op's is the shared empty one
            step.action.warnings = [*step.action.warnings, *notes]
        if kind_name not in priced:  # a Protocol isinstance costs more than the rest of a no-op
            priced[kind_name] = isinstance(kind, Priced)
        if priced[kind_name]:
            _add_cost(step, kind, context)
        steps[address] = step

    partial = _apply_targeting(steps, g, options)
    if partial:
        plan_warnings.append(partial_note(partial))
    actions = [steps[a].action for a in ordered if a in steps]
    unpriced = [a.address for a in actions if a.is_change and a.cost_before is None and a.cost_after is None
                and kinds[a.kind].unpriced]
    plan = Plan(actions=actions, warnings=plan_warnings, state_lineage=state.lineage,
                state_serial=state.serial, destroy=options.destroy, refresh_only=options.refresh_only,
                partial=partial, unpriced=unpriced, drift=drift)
    return PlanResult(plan=plan, steps=steps, graph=g, errors=errors, noops=noops)


# A verified no-op's empty lists, its reasons and its diff: one each for all of them (at
# 100,000 no-ops, some 60 MiB of copies). Nothing edits a no-op's lists in place: an
# import's or an adoption's reasons are rewritten only on the full path (no prior state),
# and notes and dependencies are set as new lists above.
_NOTHING: list[Any] = []
_UP_TO_DATE = ["up to date"]
_NO_DIFF = Diff(changes=_NOTHING, notes=_NOTHING)


@dataclass
class _FastPath:
    seen: Mapping[str, str]  # verified no-ops of an earlier plan
    found: dict[str, str]  # this plan's
    graph: Mapping[str, set[str]]

    def step(self, resource: Resource, spec: dict, prior: ResourceState | None, lv: Live | None, kind: Kind,
             pending: dict | None, options: PlanOptions, derived: Callable[[], list[str]],
             address: str) -> Step | None:
        """A no-op without a diff (engine/fastpath.py), or None: take the full path."""
        if address not in self.seen:  # a cold cache: nothing to compare with
            return None
        if address in options.replace or address.split("[")[0] in options.replace \
                or not fastpath.eligible(resource, spec, prior, lv, kind, pending, names=False):
            return None
        assert lv is not None and prior is not None  # eligible
        if not fastpath.unchanged(address, spec, lv, self.seen):  # a remembered digest: no secret's name
            return None
        # no edge, no reference: nothing in the spec can derive from a secret
        derived_ = derived() if self.graph.get(address) else []
        if derived_:  # a digest of a secret is never kept (one an older version wrote is not used)
            return None
        self.found[address] = self.seen[address]
        action = Action(address, resource.kind, ActionType.NOOP, _UP_TO_DATE, _NOTHING, remote_id=lv.id,
                        warnings=_NOTHING, remote_name=_name_shown(lv, [*derived_, *resource.sensitive_paths]))
        return Step(action, resource, lv, prior, _NO_DIFF, pending=pending, spec=spec, derived=_NOTHING,
                    moved=_NOTHING)

    def verified(self, resource: Resource, spec: dict, prior: ResourceState | None, lv: Live, kind: Kind,
                 pending: dict | None, raw: Diff, derived: Sequence[str]) -> None:
        """A full diff found nothing at all: the next plan may skip it (unless a digest of
        it would be a digest of a secret)."""
        if not raw.changes and not raw.notes and not derived \
                and fastpath.eligible(resource, spec, prior, lv, kind, pending):
            fastpath.remember(resource.address, spec, lv, self.found)


def _plan_desired(resource: Resource, prior: ResourceState | None, lv: Live | None, kind: Kind,
                  outputs: Callable, options: PlanOptions, state: StateDoc,
                  kinds: Mapping[str, Kind] | None = None, taint: Taint | None = None,
                  fast: _FastPath | None = None, plain: Mapping[str, dict] | None = None,
                  address: str | None = None) -> Step:
    address = address or resource.address  # the graph's string: one per address in the plan
    spec = resource.spec if plain and plain.get(address) is resource.spec else resolve(resource.spec, outputs)
    pending = state.pending.get(address)
    def find_derived() -> list[str]:
        return list(derived_paths(resource.spec, kinds or {}, taint=taint))

    quick = fast.step(resource, spec, prior, lv, kind, pending, options, find_derived, address) if fast else None
    if quick is not None:
        return quick
    # resolve() gives back the spec itself only when it holds no reference: nothing derived
    derived = _NOTHING if spec is resource.spec else find_derived()
    if lv is None:
        sensitive = set(field_names(kind))
        reason = ("it no longer exists in the live service (deleted outside reconciler)"
                  if prior else "it is in the manifests but not in the live service")
        changes = [FieldChange(k, None, v, False, k in sensitive) for k, v in spec.items()]
        changes = _mark_derived(_mark_sensitive(changes, sensitive, derived), resource.sensitive_paths)
        action = Action(address, resource.kind, ActionType.CREATE, [reason], masked_changes(changes, sensitive),
                        remote_id=prior.id if prior else None)
        return Step(action, resource, None, prior, pending=pending, spec=spec, derived=derived)
    last_applied = applied_spec(prior, pending, lv.id)
    diff = kind.diff(spec, lv, last_applied)
    if fast is not None:
        fast.verified(resource, spec, prior, lv, kind, pending, diff, derived)
    if not diff.changes and not diff.notes and prior is not None \
            and address not in options.replace and address.split("[")[0] not in options.replace:
        # the equality fast path: a no-op shares the fast path's lists (no change to mark or mask)
        action = Action(address, resource.kind, ActionType.NOOP, _UP_TO_DATE, _NOTHING, remote_id=lv.id,
                        warnings=_NOTHING, remote_name=_name_shown(lv, [*derived, *resource.sensitive_paths]))
        return Step(action, resource, lv, prior, _NO_DIFF, pending=pending, spec=spec, derived=derived,
                    moved=_NOTHING)
    sensitive = set(field_names(kind))
    changes = [c for c in diff.changes if not ignored(c.path, resource.lifecycle.ignore_changes)]
    changes = _mark_derived(_mark_sensitive(changes, sensitive, derived), resource.sensitive_paths)
    changes, moved = live_only(changes, spec, last_applied)
    diff = Diff(changes=changes, notes=list(diff.notes))
    adopt = prior is None
    if address in options.replace or address.split("[")[0] in options.replace:  # the block: every instance
        atype, reasons = ActionType.REPLACE, ["replacement requested with --replace"]
    elif diff.replace:
        atype = ActionType.REPLACE
        reasons = [f"{', '.join(diff.replace)} cannot change in place: forces replacement"]
    elif diff.changed:
        atype, reasons = ActionType.UPDATE, [f"{', '.join(c.path for c in changes)} changed"]
    elif adopt:
        atype = ActionType.CREATE
        reasons = ["found after an interrupted apply; recorded in the state" if pending
                   else "already exists in the live service: adopt existing"]
    else:
        atype, reasons = ActionType.NOOP, ["up to date"]
    if adopt and atype is ActionType.UPDATE:
        atype = ActionType.CREATE  # taking it over is what the user sees; update happens inside
        reasons.insert(0, "found after an interrupted apply" if pending
                       else "already exists in the live service: adopt existing")
    action = Action(address, resource.kind, atype, reasons + diff.notes,
                    with_items(masked_changes(changes, sensitive), kind), remote_id=lv.id,
                    adopt=adopt and atype is ActionType.CREATE,
                    remote_name=_name_shown(lv, [*derived, *resource.sensitive_paths]))
    if atype is ActionType.REPLACE:  # the old object goes by the resource's deletion policy
        action.policy = (resource.deletion_policy or (prior.deletion_policy if prior else None)
                         or kind.deletion_policies[0])
        # said for every policy: a reviewer reads that a replace destroys (a VM's disk with it)
        action.effect = f"the old object: {deletion_effect(kind, action.policy).effect}"
    return Step(action, resource, lv, prior, diff, pending=pending, spec=spec, derived=derived,
                moved=masked_changes(moved, sensitive))


def _held_back(step: Step, warnings: list[str]) -> Drift:
    """A replace-forcing field the service moved but the manifest did not: shown as drift
    (last applied -> live) with a warning, never acted on; `--replace` forces it."""
    a = step.action
    fields = ", ".join(c.path for c in step.moved)
    warnings.append(f"{a.address}: {fields} differs in the live service but not in the manifest; "
                    f"not replaced (`--replace {a.address}` forces it)")
    return Drift(a.address, a.kind, a.remote_id, a.remote_name,
                 changes=[dc_replace(c, old=c.new, new=c.old, forces_replacement=False) for c in step.moved])


def _plan_removal(address: str, prior: ResourceState | None, lv: Live | None, kind: Kind,
                  state: StateDoc, options: PlanOptions) -> Step:
    kind_name = prior.kind if prior else state.pending[address]["kind"]
    policy = (prior.deletion_policy if prior and prior.deletion_policy else kind.deletion_policies[0])
    remote_id = lv.id if lv is not None else (prior.id if prior else None)
    if lv is None:
        why = ("already gone from the live service; only the state entry is removed" if prior is not None
               else "an interrupted create made nothing; its journal entry is dropped")
        action = Action(address, kind_name, ActionType.FORGET, [why], remote_id=remote_id, policy=policy)
        return Step(action, None, None, prior, pending=state.pending.get(address))
    effect = deletion_effect(kind, policy)
    reason = "destroy requested" if options.destroy else "it is no longer in the manifests"
    if prior is None:
        reason += "; made by an interrupted create (found by its natural key)"
    action = Action(address, kind_name, ActionType[effect.action.upper()], [reason], remote_id=remote_id,
                    policy=policy, effect=effect.effect, remote_name=live_name(lv))
    return Step(action, None, lv, prior, pending=state.pending.get(address))


def _add_cost(step: Step, kind: Kind, context: Callable[[str], KindContext]) -> None:
    if not isinstance(kind, Priced):
        return
    cost = kind.hourly_cost
    ctx = context(step.action.kind)
    a = step.action
    try:
        before = cost(ctx, step.live.attrs) if step.live is not None else None
        after = cost(ctx, step.spec) if step.spec is not None and not a.type.removes else None
    except Exception:  # a cost we cannot compute must not block a plan
        return
    try:  # a price the catalog leaves out: say so, never $0
        shape = step.spec if step.spec is not None else (step.live.attrs if step.live is not None else None)
        why = kind.cost_unknown(ctx, shape) if shape is not None else None
    except Exception:  # like a cost, a note we cannot compute must not block a plan
        why = None
    if why and a.is_change:
        a.warnings.append(why)
    if a.type is ActionType.CREATE and not a.adopt:
        before = None
    if a.type.removes:  # only a delete stops the bill; what we forget goes on costing
        after = (0.0 if a.type is ActionType.DELETE else None) if before is not None else None
        if a.type is not ActionType.DELETE:
            before = None
    if before is None and after is None:
        return
    a.cost_before, a.cost_after = before, after


def _selection_flags(options: PlanOptions) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("--target", options.targets), ("--exclude", options.excludes), ("--replace", options.replace))


def named(options: PlanOptions, known: Collection[str]) -> None:
    """PlanError for a --target / --exclude / --replace address that is none of `known`
    nor a block of their instances, with a "did you mean". The runner asks it of every
    address the manifests and the state hold before any API call; the planner again of
    its graph."""
    for flag, addresses in _selection_flags(options):
        for address in addresses:
            if not graph.instances(address, known):
                hint = did_you_mean(address, known, quote=False)
                raise PlanError(f"{flag} {address}: no such resource in the manifests or the state{hint}")


def selected(g: dict[str, set[str]], options: PlanOptions) -> set[str] | None:
    """The addresses --target / --exclude keep (None: no selection). A name that is not in
    the graph gets a "did you mean"; one address both targeted and excluded is an error."""
    named(options, g)
    expanded: dict[str, list[str]] = {}
    for flag, addresses in _selection_flags(options):
        # a for_each / count block's address stands for all its instances
        expanded[flag] = [x for a in addresses for x in graph.instances(a, g)]
    both = sorted(set(expanded["--target"]) & set(expanded["--exclude"]))
    if both:
        raise PlanError(f"{both[0]} is both a --target and an --exclude; name it in one of them")
    if not options.targets and not options.excludes:
        return None
    # --target keeps what the targets depend on; --exclude drops what depends on the excluded
    keep = graph.dependencies_of(g, expanded["--target"]) if options.targets else set(g)
    return keep - (graph.dependants(g, expanded["--exclude"]) if options.excludes else set())


def _apply_targeting(steps: dict[str, Step], g: dict[str, set[str]],
                     options: PlanOptions) -> dict[str, list[str]] | None:
    """Keep what --target / --exclude select; returns what the plan left out (None: whole)."""
    keep = selected(g, options)
    if keep is None:
        return None
    left_out = sorted(a for a, step in steps.items() if a not in keep and step.action.is_change)
    for address in [a for a in steps if a not in keep]:
        del steps[address]
    return {"targets": list(options.targets), "excludes": list(options.excludes), "left_out": left_out}


def partial_note(partial: dict[str, list[str]]) -> str:
    flags = " ".join([f"--target {t}" for t in partial["targets"]] + [f"--exclude {e}" for e in partial["excludes"]])
    left = partial["left_out"]
    shown = ", ".join(left[:20]) + (f" and {len(left) - 20} more" if len(left) > 20 else "")
    return (f"This plan is partial ({flags}): "
            + (f"{len(left)} pending change{'s' if len(left) != 1 else ''} left out: {shown}." if left
               else "nothing else has a pending change.")
            + " Run a plan without --target/--exclude to see everything.")
