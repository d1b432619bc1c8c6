"""What the user wrote, as frozen plain data: a manifest becomes `Resource`s, `Output`s and
references (`Ref`) with the `Position` each came from. The plan's vocabulary is plan/model.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import AbstractSet, Any, Mapping


@dataclass(frozen=True, slots=True)  # one per resource and more: 100,000s of them
class Position:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class _Unknown:
    """A value that depends on a resource not yet applied: shown as (known after apply)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"

    def __reduce__(self):
        return (_Unknown, ())


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Ref:
    """`${<kind>.<name>.<attribute>}`: an output of another resource in the manifest."""

    address: str
    attribute: str

    def __str__(self) -> str:
        return f"${{{self.address}.{self.attribute}}}"


@dataclass(frozen=True)
class Template:
    """A string with references inside it, e.g. "s3://${valdi.volume.data.bucket_name}/x"."""

    parts: tuple  # of str | Ref

    def __str__(self) -> str:
        return "".join(str(p) for p in self.parts)


@dataclass(frozen=True)
class Lifecycle:
    prevent_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()


_NO_LIFECYCLE = Lifecycle()  # frozen: one for every resource that declares none


@dataclass(slots=True)  # one per resource (100,000s): no attribute dict each
class Resource:
    """One desired object, as the manifest declares it."""

    kind: str
    name: str
    spec: dict[str, Any]  # may hold Ref / Template values until resolved
    position: Position
    lifecycle: Lifecycle = _NO_LIFECYCLE
    deletion_policy: str | None = None  # None = the kind's default
    depends_on: list[str] = field(default_factory=list)  # explicit extra edges (addresses)
    # where each field stands: "spec.details.vcpus", "spec.files[2].path", "lifecycle" -> Position
    positions: Mapping[str, Position] = field(default_factory=dict)  # a view of the file's positions
    base_dir: str = "."  # folder of the manifest file: relative file paths start here
    # spec paths ("properties.token") whose value came from a sensitive variable
    # (a shared empty frozenset when there are none: an empty set is 216 bytes a resource)
    sensitive_paths: AbstractSet[str] = frozenset()
    expires: dict[str, Any] | None = None  # {after: 8h | at: RFC 3339, action: destroy|stop}
    schedule: list[dict[str, Any]] | None = None  # power windows: [{power, cron, duration, timezone}]

    @property
    def address(self) -> str:
        return f"{self.kind}.{self.name}"

    def where(self, path: str = "") -> Position:
        """The most precise position known for a field path (falls back to its parents)."""
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path.rsplit(".", 1)[0] if "." in path else ""
        return self.position


@dataclass
class Output:
    """A top-level `outputs:` entry: a value (may hold references) computed after apply."""

    name: str
    value: Any
    position: Position
    sensitive: bool = False  # declared so, or read a sensitive variable
    description: str = ""


@dataclass
class Manifest:
    resources: list[Resource]
    providers: dict[str, dict[str, Any]]  # may hold credentials: never render
    # problems in a provider block (e.g. a missing ${env.X}); reported only if that
    # provider is used, so one manifest folder can mention all three APIs
    provider_problems: dict[str, list]
    variables: dict[str, Any]
    backend: dict[str, Any] | None
    files: list[str]
    digest: str  # sha256 over what the files say (parsed: comments and layout do not count), in order
    root: str  # the folder the state lives beside
    outputs: dict[str, Output] = field(default_factory=dict)
    sensitive_variables: frozenset = frozenset()  # declared so, or read by a providers/backend block
    # a digest of every input of the load (files, variables, environment read, tool version);
    # set only when a manifest cache took part (config/cache.py)
    inputs_key: str = ""
    policies: list[Any] = field(default_factory=list)  # config.policies.Policy: the manifests', then files'
    moved: list["Move"] = field(default_factory=list)  # chains resolved: each source -> its final target
    imports: list["Import"] = field(default_factory=list)
    lookups: dict[str, "Lookup"] = field(default_factory=dict)
    files_read: list[str] = field(default_factory=list)  # local files file(path) read (resolved paths)
    file_digests: dict[str, str] = field(default_factory=dict)  # relative path -> its part of `digest`


@dataclass(frozen=True)
class Move:
    """A `moved:` entry: the object the state knows as `source` is now `target` (a block
    renamed, a block given for_each, an instance renamed). Plain data."""

    source: str
    target: str
    position: Position  # of the entry's `to`, where errors about it point
    source_position: Position | None = None  # of its `from`: errors about the source point there
    entry: str = "moved"  # its field path, "moved[2]", for those errors


@dataclass(frozen=True)
class Import:
    """An `imports:` entry: the live object `id` becomes the declared `to` at the next apply."""

    to: str
    id: str
    position: Position


@dataclass(frozen=True)
class Lookup:
    """A `lookups:` entry: one row of a read-only catalogue (VALDI flavours, Valohai stores,
    Code Ocean data assets), chosen by `where` (the catalogue's own field names)."""

    name: str
    kind: str
    where: Mapping[str, Any]
    position: Position
    positions: Mapping[str, Position] = field(default_factory=dict)  # "where.gpu_type" -> Position
