"""What a resource kind promises the engine: `Kind`, Crossplane's ExternalClient, batched.

A kind is a class that inherits `Kind`, sets `name` and `schema`, and writes the five
calls below. Everything else has a default here, so the engine reads every attribute
and calls every hook directly (no getattr, no second default elsewhere).

The contract, which every kind keeps:

* `observe` never changes anything. It reads in batches: ONE listing (paged) per kind
  per plan, never a GET per resource. It returns an entry for every wanted address:
  the live object, or None when it does not exist (deleted outside us, or never made).
  None is an answer, not an error: the plan then proposes a create.
* `create`, `update` and `delete` are idempotent from the engine's point of view:
  calling one again after a crash or a timeout leaves the same object behind. Deleting
  an object that is already gone succeeds (a 404 on delete is success). A create whose
  intent was journaled is first looked up by its natural key (Wanted.lookup) so that a
  retry after a crash never makes a second object.
* `diff` is pure (no API call, no file read: what it needs from local files `observe`
  put in `Live.local`): it answers two questions separately (Pulumi's dynamic provider):
  which fields changed, and which of those force a replacement. It only compares
  fields the manifest sets (left-scoped); a field removed from the manifest is reset
  only if `last_applied` shows we had set it.
* `update` changes in place exactly what `diff` reported, and returns the new Live. A
  kind whose changes are instructions (a volume's uploads and deletes) puts its own
  operation enum and the path as a tuple in FieldChange.op / .key, and `update` reads
  those, never the display text in FieldChange.new. Errors are typed (errors.NotFound,
  Conflict, ...): a client turns an API's wording into a type once, at the boundary.
* Nothing a kind returns in `Live.attrs` or raises in an error carries a secret; secrets
  go in `Live.outputs` under names listed in `sensitive` and stay in the state.
* One engine decides: a kind never calls another kind, never orders work, never
  retries a whole step, never writes the state. It answers the engine's questions.

The optional hooks are real methods that do nothing here; a kind overrides the ones it
needs. Whether a kind overrides the batch, cost or online-check hooks is recorded once,
when the class is defined (`batches_creates`, `batches_updates`, `prices`,
`checks_online`): the engine groups, prices or connects only for kinds that do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import AbstractSet, Any, Callable, ClassVar, Mapping, Protocol

from reconciler.config.model import Resource
from reconciler.errors import Problem
from reconciler.plan.model import FieldChange


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


class Kind:
    """The base of every resource kind. See the module docstring for the contract."""

    # -- what a kind declares ------------------------------------------------------
    name: str = ""  # "valdi.vm": also the manifest's `kind:`
    # the spec's JSON schema: a file name in schemas/ ("valdi.vm.schema.json"); a kind
    # written in tests may carry it inline as a dict, or None for no spec check
    schema: str | dict[str, Any] | None = None
    sensitive: AbstractSet[str] = frozenset()  # field/attribute names never printed ("password")
    # attributes other resources may reference as ${<address>.<attr>}; has "id"
    outputs: AbstractSet[str] = frozenset({"id"})
    # the first is the default: ("delete", "orphan"), ("release", "delete")
    deletion_policies: tuple[str, ...] = ("delete",)
    # what each policy does (the plan's action and words); the policies it leaves out
    # get DEFAULT_DELETION_EFFECTS
    deletion_effects: Mapping[str, DeletionPolicy] = MappingProxyType({})
    # observe answers a Wanted with `probe` with an object we do not manage that has the
    # natural key (VM name, key name, bucket, asset name): a plan-time conflict that
    # offers `reconciler import`, never a second object of the same name
    natural_key_conflicts: bool = False
    unpriced: bool = False  # its objects cost money but the API publishes no price
    # list fields compared as sets when the plan shows what changed inside them (tags,
    # users, groups are always)
    unordered: AbstractSet[str] = frozenset()
    # spec fields naming local files, held to reconciler.config.localfiles' rules:
    # {"public_key_file": "read", "files[].source": "read", "credentials_file": "write"}
    local_files: Mapping[str, str] = MappingProxyType({})
    # `reconciler discover`: objects whose specs differ only in the last path segment of
    # the first field (a URL) and in the values of the second (a mapping) are written as
    # one for_each block: ("url", "properties") for datums under one prefix
    discover_group: tuple[str, str] | None = None

    # -- set when the class is defined, from the hooks it overrides ------------------
    batches_creates: ClassVar[bool] = False  # overrides create_many
    batches_updates: ClassVar[bool] = False  # overrides update_many
    prices: ClassVar[bool] = False  # overrides hourly_cost
    checks_online: ClassVar[bool] = False  # overrides check
    discovers: ClassVar[bool] = False  # overrides discover

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.batches_creates = cls.create_many is not Kind.create_many
        cls.batches_updates = cls.update_many is not Kind.update_many
        cls.prices = cls.hourly_cost is not Kind.hourly_cost
        cls.checks_online = cls.check is not Kind.check
        cls.discovers = cls.discover is not Kind.discover

    # -- the five calls every kind writes ------------------------------------------
    def observe(self, ctx: KindContext, wanted: list[Wanted]) -> dict[str, Live | None]:
        """The live object of every wanted address, or None; read-only, one listing."""
        raise NotImplementedError

    def diff(self, spec: dict, live: Live, last_applied: dict | None) -> Diff:
        """Pure: what changed in the fields the spec sets, and what forces replacement."""
        raise NotImplementedError

    def create(self, ctx: KindContext, spec: dict) -> Live:
        raise NotImplementedError

    def update(self, ctx: KindContext, live: Live, spec: dict, diff: Diff) -> Live:
        raise NotImplementedError

    def delete(self, ctx: KindContext, live: Live, policy: str, last_applied: dict | None) -> None:
        """Carry out the deletion policy; an object already gone is success."""
        raise NotImplementedError

    # -- optional hooks: no-ops here ------------------------------------------------
    def check(self, ctx: KindContext, resources: list[Resource]) -> list[Problem]:
        """Plan-time checks against live catalogs (VM shapes, custom-metadata schema);
        read-only, called before any write."""
        return []

    def discover(self, ctx: KindContext) -> list[Live]:
        """`reconciler discover`: every object of this kind the credentials see, read from
        the listing observe reads (no write, no per-object GET). Each Live's `attrs` is a
        spec that, once imported, plans no change; it holds no secret and no local path."""
        return []

    def check_offline(self, resources: list[Resource]) -> list[Problem]:
        """Checks that need no API (local files exist, ...); run by `validate` too."""
        return []

    def hourly_cost(self, ctx: KindContext, attrs: dict) -> float | None:
        """USD per hour of an object in this shape (VMs: running or stopped)."""
        return None

    def cost_unknown(self, ctx: KindContext, attrs: dict) -> str | None:
        """Why the cost is unknown (a price the catalog leaves out); shown with the action."""
        return None

    def create_many(self, ctx: KindContext, specs: list[dict]) -> list[Live | Exception]:
        """A batch endpoint (Valohai metadata/apply); the same contract as `create`, one
        result or exception per spec, in order."""
        return [_attempt(self.create, ctx, spec) for spec in specs]

    def update_many(self, ctx: KindContext, items: list[tuple[Live, dict, Diff]]) -> list[Live | Exception]:
        """A batch endpoint; the same contract as `update`, one result per item, in order."""
        return [_attempt(self.update, ctx, *item) for item in items]

    def plan_notes(self, spec: dict | None, live: Live | None, last_applied: dict | None) -> list[str]:
        """Warnings shown with the action (e.g. "the API cannot delete SSH keys")."""
        return []


class Catalogue:
    """A read-only listing that `lookups:` pick one row of (Terraform's data sources):
    VALDI's flavours, Valohai's stores, Code Ocean's data assets. `rows` reads through the
    provider client's cached listings, the ones a plan reads anyway, and changes nothing.
    Rows use the service's own field names; the lookup's `where` compares them."""

    name: str = ""  # "valdi.flavor": the lookup's `kind:`

    def rows(self, api: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def more_rows(self, api: Any) -> list[dict[str, Any]]:
        """A wider listing, read only when `rows` has no match (none by default)."""
        return []

    def label(self, row: Mapping[str, Any]) -> str:
        """A candidate as a reader knows it: its name and key fields, never a bare UUID."""
        return repr(row.get("name"))


def _attempt(call: Callable[..., Live], *args: Any) -> Live | Exception:
    try:
        return call(*args)
    except Exception as e:  # noqa: BLE001 - one result per item, as a batch endpoint answers
        return e


class Provider(Protocol):
    """One API: builds its client from the manifest's `providers.<name>` block and env vars."""

    name: str  # "valdi", "valohai", "codeocean"
    kinds: list[Kind]

    def connect(self, config: dict[str, Any]) -> Any:
        """Return an API client. `config` is the manifest block; missing fields fall back
        to the environment (VALDI_EMAIL, ...). Makes no request until first used."""
        ...


__all__ = ["Catalogue", "Live", "Wanted", "Diff", "DeletionPolicy", "DEFAULT_DELETION_EFFECTS", "KindContext", "Kind", "Provider", "Problem", "Resource"]
