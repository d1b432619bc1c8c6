"""The plan as data: `Action`s (the symbol each shows is its enum value), the `FieldChange`s
that explain them, drift, and the `Plan` renderers and the applier read. Frozen plain data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class ActionType(Enum):
    """The value is the symbol a plan shows (OpenTofu's action.go: `.` is its Forget).

    DELETE, FORGET, RELEASE and ORPHAN all end our management of an object; only DELETE
    removes it from the service:

        delete   the object is deleted in the service
        forget   the service cannot delete it (or it is already gone): only the state entry goes
        release  what we set on it is removed (a datum's properties, tags, alias); it is kept
        orphan   the user asked to keep it (deletion_policy: orphan): only the state entry goes
    """

    CREATE = "+"
    UPDATE = "~"
    REPLACE = "-/+"
    DELETE = "-"
    FORGET = "."
    RELEASE = "<"
    ORPHAN = "o"
    NOOP = "="

    @property
    def verb(self) -> str:
        return "no-op" if self is ActionType.NOOP else self.name.lower()

    @property
    def removes(self) -> bool:
        """Ends our management of the object (the address leaves the state)."""
        return self in REMOVALS


REMOVALS = frozenset({ActionType.DELETE, ActionType.FORGET, ActionType.RELEASE, ActionType.ORPHAN})


@dataclass(frozen=True)
class ItemChange:
    """One item inside a list or nested value: op is "add", "remove" or "change"; path is
    relative to the field ("[3]", "[3].name", "owner"); sets have no index ("")."""

    op: str
    path: str
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class FieldChange:
    path: str  # dotted, relative to spec: "details.flavor_id", "properties.owner"
    old: Any
    new: Any
    forces_replacement: bool = False
    sensitive: bool = False
    # what changed inside a list or dict value (empty: show old and new whole)
    items: tuple[ItemChange, ...] = ()
    # for a kind whose changes are instructions (a volume's uploads and deletes): its own
    # operation enum and the path as keys (a file name may hold dots), so its update reads
    # what to do by type, never from the display text in `new`. Not shown, not saved.
    op: Enum | None = field(default=None, compare=False)
    key: tuple[str, ...] = field(default=(), compare=False)


@dataclass(slots=True)  # one per resource in a plan: no attribute dict each (100,000: ~20 MiB)
class Action:
    address: str
    kind: str
    type: ActionType
    reasons: list[str]  # why, in words: "flavor_id forces replacement", "up to date"
    changes: list[FieldChange] = field(default_factory=list)
    remote_id: str | None = None
    depends_on: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # hourly cost in USD before and after; None where the kind has no cost
    cost_before: float | None = None
    cost_after: float | None = None
    adopt: bool = False  # a create that takes over an object that exists already
    policy: str | None = None  # the deletion policy a removal (or a replace's old object) follows
    effect: str | None = None  # the kind's words for what that policy does to the object
    remote_name: str | None = None  # the live object's name in the service
    moved_from: str | None = None  # the address the state knew it by (`moved:`)
    imported: bool = False  # an adoption an `imports:` entry asked for, by id

    @property
    def is_change(self) -> bool:
        return self.type is not ActionType.NOOP



@dataclass
class Drift:
    """A managed object that moved outside reconciler: live values against the last applied
    ones (FieldChange.old = last applied, .new = live), or gone altogether."""

    address: str
    kind: str
    remote_id: str | None
    remote_name: str | None = None
    gone: bool = False
    changes: list[FieldChange] = field(default_factory=list)


HOURS_PER_MONTH = 730


@dataclass
class PolicyResult:
    """One policy checked against one resource (or the plan as a whole: address None).
    `values` are what decided it (a total, a GPU count, the missing keys), never a secret."""

    name: str
    enforcement: str  # deny | warn
    passed: bool
    message: str
    address: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    overridden: dict[str, Any] | None = None  # {who, reason, at}: applied anyway

    @property
    def denies(self) -> bool:
        return not self.passed and self.enforcement == "deny" and self.overridden is None


@dataclass
class TimeNote:
    """What an `expires:` or `schedule:` means for a resource now ("expires in 3h12m")."""

    address: str
    what: str  # expires | expired | schedule
    text: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    actions: list[Action]  # in dependency order
    warnings: list[str] = field(default_factory=list)
    manifest_digest: str = ""
    state_lineage: str = ""
    state_serial: int = 0
    fingerprints: dict[str, str | None] = field(default_factory=dict)  # address -> live digest
    destroy: bool = False
    refresh_only: bool = False
    drift: list[Drift] = field(default_factory=list)  # objects that moved outside reconciler
    # --target / --exclude: {"targets": [...], "excludes": [...], "left_out": [addresses]}
    partial: dict[str, list[str]] | None = None
    unpriced: list[str] = field(default_factory=list)  # changed resources that cost money, price unknown
    # top-level outputs that change: FieldChange(name, before, after, sensitive=...)
    output_changes: list[FieldChange] = field(default_factory=list)
    # [from, to] address pairs the state is renamed by (`moved:`): no destroy, no create
    moves: list[list[str]] = field(default_factory=list)
    policy_results: list[PolicyResult] = field(default_factory=list)  # every policy, every plan
    time_notes: list[TimeNote] = field(default_factory=list)  # expiry and power schedules now

    @property
    def denied(self) -> list[PolicyResult]:
        """Failed deny policies not overridden: the plan cannot be applied (exit 3)."""
        return [r for r in self.policy_results if r.denies]

    def count(self, *types: ActionType) -> int:
        return sum(1 for a in self.actions if a.type in types)

    @property
    def has_changes(self) -> bool:
        if self.refresh_only:
            return bool(self.drift)
        return bool(self.moves) or any(a.is_change for a in self.actions)

    @property
    def changes_outputs_only(self) -> bool:
        """No resource changes, but top-level outputs would change (an edited expression):
        an apply records the new values, so a pipeline sees this as changes (exit 2)."""
        return not self.refresh_only and not self.has_changes and bool(self.output_changes)

    @property
    def cost_delta(self) -> float | None:
        deltas = [(a.cost_after or 0.0) - (a.cost_before or 0.0) for a in self.actions
                  if a.cost_before is not None or a.cost_after is not None]
        return sum(deltas) if deltas else None
