"""What a resource kind promises the engine: `Kind`, Crossplane's ExternalClient, batched.

A kind is a class that inherits `Kind[ApiClient]`, sets `name` and `schema`, and writes
the five abstract calls below; Python refuses to make an instance of a kind that leaves
one out (`TypeError` at `VmKind()`, long before a plan). `ctx.api` is its provider's
client, typed by that parameter, so mypy checks every call a kind makes on it.

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
* Secrets the API returns (a volume's access keys, a generated private key) travel in
  `Live.secrets`, apart from `Live.outputs`, as Crossplane's ConnectionDetails travel
  apart from the observation: the engine seals them in the state's `secrets` and never
  prints them, whatever they are called. Nothing in `Live.attrs`, `Live.outputs` or an
  error carries a secret. `sensitive` names the spec fields that hold one (a VM's
  password) and, again, the secrets it returns: a plan masks a reference to one before
  any Live exists.
* One engine decides: a kind never calls another kind, never orders work, never
  retries a whole step, never writes the state. It answers the engine's questions.

What only some kinds can do is a capability: a small Protocol below (`CreatesInBatches`,
`UpdatesInBatches`, `Priced`, `ChecksOnline`, `HasGpus`, `Discovers`). A kind has it by writing its methods and
the engine asks `isinstance(kind, Priced)`: there is no flag to set, so none can lie.
`check_offline` and `plan_notes` cost nothing to ask, so they are no-ops here instead.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import AbstractSet, Any, Callable, Generic, Mapping, Protocol, TypeVar, runtime_checkable

from reconciler.config.model import Resource
from reconciler.errors import Problem
from reconciler.plan.model import FieldChange


@dataclass(slots=True)  # one per object a plan reads (100,000s): no attribute dict each
class Live:
    id: str
    attrs: dict[str, Any]  # normalised, in manifest shape (what diff compares against)
    outputs: dict[str, Any] = field(default_factory=dict)  # what ${addr.attr} may reference
    adopted: bool = False  # found by natural key, not created by us (e.g. "adopt existing")
    # what the manifest's local files hold now (a public key, file digests), read by
    # observe so that diff, which is pure and has no folder to read from, can compare
    local: dict[str, Any] = field(default_factory=dict)
    # secrets the API returned (access keys, a private key): recorded in the state's
    # secrets, never in outputs, never printed; ${addr.attr} may still reference them
    secrets: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)  # one per resource observe asks about: no attribute dict each
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


ApiT = TypeVar("ApiT")  # a provider's API client: ValdiClient, ValohaiClient, CodeOceanClient


@dataclass
class KindContext(Generic[ApiT]):
    """What a kind's calls get: the provider's API client, a progress line, the options."""

    api: ApiT
    base_dir: Path = Path(".")  # manifest folder: relative file paths start here
    progress: Callable[[str], None] = lambda message: None
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"vm_timeout": 1200}

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p


class Kind(ABC, Generic[ApiT]):
    """The base of every resource kind. See the module docstring for the contract."""

    # -- what a kind declares ------------------------------------------------------
    name: str = ""  # "valdi.vm": also the manifest's `kind:`
    # the spec's JSON schema: a file name in schemas/ ("valdi.vm.schema.json"); a kind
    # written in tests may carry it inline as a dict, or None for no spec check
    schema: str | dict[str, Any] | None = None
    # spec fields holding a secret ("password"), and the secrets it returns in
    # Live.secrets, by name, so a reference to one is known secret before any apply
    sensitive: AbstractSet[str] = frozenset()
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
    # `reconciler discover` (a kind that Discovers): objects whose specs differ only in the
    # last path segment of the first field (a URL) and in the values of the second (a
    # mapping) are written as one for_each block: ("url", "properties") for datums
    discover_group: tuple[str, str] | None = None

    # -- the five calls every kind writes ------------------------------------------
    @abstractmethod
    def observe(self, ctx: KindContext[ApiT], wanted: list[Wanted]) -> dict[str, Live | None]:
        """The live object of every wanted address, or None; read-only, one listing."""

    @abstractmethod
    def diff(self, spec: dict, live: Live, last_applied: dict | None) -> Diff:
        """Pure: what changed in the fields the spec sets, and what forces replacement."""

    @abstractmethod
    def create(self, ctx: KindContext[ApiT], spec: dict) -> Live:
        """Make the object; its API-returned secrets go in Live.secrets."""

    @abstractmethod
    def update(self, ctx: KindContext[ApiT], live: Live, spec: dict, diff: Diff) -> Live:
        """Change in place exactly what `diff` reported."""

    @abstractmethod
    def delete(self, ctx: KindContext[ApiT], live: Live, policy: str, last_applied: dict | None) -> None:
        """Carry out the deletion policy; an object already gone is success."""

    # -- free to ask, so every kind answers: no-ops here ----------------------------
    def check_offline(self, resources: list[Resource]) -> list[Problem]:
        """Checks that need no API (local files exist, ...); run by `validate` too."""
        return []

    def plan_notes(self, spec: dict | None, live: Live | None, last_applied: dict | None) -> list[str]:
        """Warnings shown with the action (e.g. "the API cannot delete SSH keys")."""
        return []


# -- capabilities: a kind has one by writing its methods; the engine asks isinstance() --


@runtime_checkable
class CreatesInBatches(Protocol):
    """A batch create endpoint (Valohai metadata/apply): the engine groups a kind's creates."""

    def create_many(self, ctx: KindContext[Any], specs: list[dict]) -> list[Live | Exception]:
        """The same contract as `create`: one result or exception per spec, in order."""
        ...


@runtime_checkable
class UpdatesInBatches(Protocol):
    """A batch update endpoint: the engine groups a kind's updates and take-overs."""

    def update_many(self, ctx: KindContext[Any], items: list[tuple[Live, dict, Diff]]) -> list[Live | Exception]:
        """The same contract as `update`: one result or exception per item, in order."""
        ...


@runtime_checkable
class Priced(Protocol):
    """Objects with a price in the API's catalog: the plan shows what an action costs."""

    def hourly_cost(self, ctx: KindContext[Any], attrs: dict) -> float | None:
        """USD per hour of an object in this shape (VMs: running or stopped)."""
        ...

    def cost_unknown(self, ctx: KindContext[Any], attrs: dict) -> str | None:
        """Why the cost is unknown (a price the catalog leaves out); shown with the action."""
        ...


@runtime_checkable
class ChecksOnline(Protocol):
    """Plan-time checks against live catalogs (VM shapes, custom-metadata schema):
    read-only, called before any write; the engine connects only for the kinds that have them."""

    def check(self, ctx: KindContext[Any], resources: list[Resource]) -> list[Problem]:
        ...


@runtime_checkable
class HasGpus(Protocol):
    """Objects with GPUs the catalog names: the `gpus` policy reads their type and count."""

    def gpus(self, ctx: KindContext[Any], attrs: dict) -> tuple[tuple[str, ...], int] | None:
        """The GPU names (code and type, as the catalogue says) and count of an object in
        this shape; None: the catalogue does not know the shape."""
        ...


@runtime_checkable
class Discovers(Protocol):
    """`reconciler discover`: every object of this kind the credentials see, read from the
    listing observe reads (no write, no per-object GET). Each Live's `attrs` is a spec
    that, once imported, plans no change; it holds no secret and no local path."""

    def discover(self, ctx: KindContext[Any]) -> list[Live]:
        ...


CAPABILITIES: tuple[type, ...] = (CreatesInBatches, UpdatesInBatches, Priced, ChecksOnline, HasGpus,
                                  Discovers)


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


def only(results: list[Live | Exception]) -> Live:
    """The answer of a batch of one, raised if it failed: how a batching kind writes its
    `create` and `update` (`return only(self.create_many(ctx, [spec]))`)."""
    (result,) = results
    if isinstance(result, Exception):
        raise result
    return result


class Provider(Protocol):
    """One API: builds its client from the manifest's `providers.<name>` block and env vars."""

    name: str  # "valdi", "valohai", "codeocean"
    kinds: list[Kind]

    def connect(self, config: dict[str, Any]) -> Any:
        """Return an API client. `config` is the manifest block; missing fields fall back
        to the environment (VALDI_EMAIL, ...). Makes no request until first used."""
        ...


__all__ = ["Live", "Wanted", "Diff", "DeletionPolicy", "DEFAULT_DELETION_EFFECTS", "KindContext", "Kind",
           "CreatesInBatches", "UpdatesInBatches", "Priced", "ChecksOnline", "HasGpus", "Discovers", "CAPABILITIES",
           "only", "Catalogue", "Provider", "Problem", "Resource"]
