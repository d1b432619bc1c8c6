"""What a resource kind promises the engine (Crossplane's Observe/Create/Update/Delete, batched).

The contract, which every kind keeps:

* `observe` never changes anything. It reads in batches: ONE listing (paged) per kind
  per plan, never a GET per resource. It returns an entry for every wanted address:
  the live object, or None when it does not exist (deleted outside us, or never made).
* `create`, `update` and `delete` are idempotent from the engine's point of view:
  deleting an object that is already gone succeeds; a create whose intent was
  journaled is first looked up by its natural key (Wanted.lookup) so that a retry
  after a crash never makes a second object.
* `diff` is pure: it answers two questions separately (Pulumi's dynamic provider):
  which fields changed, and which of those force a replacement. It only compares
  fields the manifest sets (left-scoped); a field removed from the manifest is reset
  only if `last_applied` shows we had set it.
* Nothing a kind returns in `Live.attrs` or raises in an error carries a secret; secrets
  go in `Live.outputs` under names listed in `sensitive` and stay in the state.
* One engine decides: a kind never calls another kind.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from reconciler.errors import Problem
from reconciler.model import FieldChange, Resource


@dataclass
class Live:
    id: str
    attrs: dict[str, Any]  # normalised, in manifest shape (what diff compares against)
    outputs: dict[str, Any] = field(default_factory=dict)  # what ${addr.attr} may reference
    adopted: bool = False  # found by natural key, not created by us (e.g. "adopt existing")
    # what the manifest's local files hold now (a public key, file digests), read by
    # observe so that diff, which is pure and has no folder to read from, can compare
    local: dict[str, Any] = field(default_factory=dict)


@dataclass
class Wanted:
    address: str
    id: str | None  # remote id from the state, if we have one
    spec: dict[str, Any] | None  # desired spec (None: only in state, about to be deleted)
    last_applied: dict[str, Any] | None = None
    lookup: bool = False  # may be found by natural key (journaled create, adoption)
    outputs: dict[str, Any] = field(default_factory=dict)  # last known outputs from the state
    base_dir: str | None = None  # the declaring file's folder: relative file paths start here
    secrets: dict[str, Any] = field(default_factory=dict)  # sensitive outputs from the state
    # (keys an API returned once): a kind may rewrite a file the user asked for from them
    probe: bool = False  # about to be created: report an unmanaged object with its natural key
    # (a kind with `natural_key_conflicts` returns it, and the plan refuses to make a second)

    def resolve_path(self, path: str) -> Path:
        """A spec's local file path, as KindContext.resolve_path resolves it at apply time."""
        p = Path(path)
        return p if p.is_absolute() else Path(self.base_dir or ".") / p


@dataclass
class Diff:
    changes: list[FieldChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "will stop the VM"

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def replace(self) -> list[str]:
        return [c.path for c in self.changes if c.forces_replacement]


@dataclass(frozen=True)
class DeletionPolicy:
    """What one deletion policy of a kind does, as the plan shows it."""

    action: str  # the plan action it is: "delete", "forget", "release" or "orphan"
    effect: str  # what happens to the object, in a reviewer's words


# what a kind that says nothing of its policies gets
DEFAULT_DELETION_EFFECTS = {
    "delete": DeletionPolicy("delete", "it is deleted in the service"),
    "orphan": DeletionPolicy("orphan", "reconciler stops managing it; the object stays in the service"),
}


@dataclass
class KindContext:
    """What a kind's calls get: the provider's API client, a progress line, the options."""

    api: Any
    base_dir: Path = Path(".")  # manifest folder: relative file paths start here
    progress: Callable[[str], None] = lambda message: None
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"vm_timeout": 1200}

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p


@runtime_checkable
class Kind(Protocol):
    name: str  # "valdi.vm": also the manifest's `kind:`
    schema: str  # "valdi.vm.schema.json" in schemas/
    sensitive: set[str]  # attribute / field names never printed ("password", "secret_access_key")
    outputs: set[str]  # attributes other resources may reference as ${<address>.<attr>}; has "id"
    deletion_policies: tuple[str, ...]  # first is the default: ("delete", "orphan"), ("release", "delete")
    # optional: deletion_effects: dict[str, DeletionPolicy], what each policy does (the plan's
    # action and words); policies it leaves out get DEFAULT_DELETION_EFFECTS

    def observe(self, ctx: KindContext, wanted: list[Wanted]) -> dict[str, Live | None]: ...

    def diff(self, spec: dict, live: Live, last_applied: dict | None) -> Diff: ...

    def create(self, ctx: KindContext, spec: dict) -> Live: ...

    def update(self, ctx: KindContext, live: Live, spec: dict, diff: Diff) -> Live: ...

    def delete(self, ctx: KindContext, live: Live, policy: str, last_applied: dict | None) -> None: ...

    # Optional, looked up with getattr:
    #   check(ctx, resources: list[Resource]) -> list[Problem]
    #       plan-time checks against live catalogs (VM shapes, custom-metadata schema);
    #       read-only, called before any write.
    #   check_offline(resources: list[Resource]) -> list[Problem]
    #       checks that need no API (local files exist, ...); run by `validate`.
    #   hourly_cost(ctx, attrs: dict) -> float | None
    #   cost_unknown(ctx, attrs: dict) -> str | None
    #       why the cost is unknown (a price the catalog leaves out); shown with the action.
    #       USD per hour of an object in this shape (VMs: running or stopped).
    #   create_many(ctx, specs: list[dict]) -> list[Live | Exception]
    #   update_many(ctx, items: list[tuple[Live, dict, Diff]]) -> list[Live | Exception]
    #       batch endpoints (Valohai metadata/apply); same contract as the single calls.
    #   natural_key_conflicts = True
    #       observe answers a Wanted with `probe` with an object we do not manage that has
    #       the natural key (VM name, key name, bucket, asset name): a plan-time conflict
    #       that offers `reconciler import`, never a second object of the same name.
    #   unpriced: bool
    #       objects of this kind cost money but the API publishes no price (the plan says so).
    #   unordered: set[str]
    #       list fields compared as sets when the plan shows what changed inside them
    #       (tags, users, groups are always).
    #   plan_notes(spec, live, last_applied) -> list[str]
    #       warnings shown with the action (e.g. "the API cannot delete SSH keys").


class Provider(Protocol):
    """One API: builds its client from the manifest's `providers.<name>` block and env vars."""

    name: str  # "valdi", "valohai", "codeocean"
    kinds: list[Kind]

    def connect(self, config: dict[str, Any]) -> Any:
        """Return an API client. `config` is the manifest block; missing fields fall back
        to the environment (VALDI_EMAIL, ...). Makes no request until first used."""
        ...


__all__ = ["Live", "Wanted", "Diff", "DeletionPolicy", "DEFAULT_DELETION_EFFECTS", "KindContext", "Kind", "Provider", "Problem", "Resource"]
