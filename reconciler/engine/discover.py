"""`reconciler discover`: the live objects no state manages, written as a manifest that
takes them over (Terraform's `import` blocks with -generate-config-out, plus for_each).

    kinds' discover()  ->  not managed, --match  ->  names  ->  groups  ->  references  ->  YAML

* Names come from the remote names (a VM's name, a key's name, a bucket, an asset's
  name, a datum's file name), made valid (`[a-z0-9][a-z0-9_-]*`) and unique per kind,
  also against the addresses the manifests already declare.
* A regular group (a kind's `discover_group`: datums under one prefix with the same
  property names, three or more) is one for_each block keyed by file name.
* A value equal to the id of another object written here, or of one the state manages,
  becomes a reference: a VM's `ssh_key_id: ${valdi.ssh_key.deploy.id}`.
* Every object gets an `imports:` entry; a `$${` escapes any `${` a remote value holds.
* No secret is written: a value the one sensitivity rule hides (a property named `token`,
  a value holding a secret the run handles) becomes `${var.NAME}` of a sensitive
  variable declared without a value, and such an object is neither grouped nor named
  after a remote name that holds a secret.

Read-only: the kinds read their listings; nothing is written to a service or the state.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from reconciler.config.expressions import INSTANCE_KEY
from reconciler.config.sensitivity import field_names, hidden_leaves, holds_secret
from reconciler.providers.contract import Discovers, Kind, KindContext, Live
from reconciler.state.base import StateDoc

MIN_GROUP = 3  # fewer alike objects are written one by one
# what depends on what comes later in the file (keys before VMs, assets they combine first)
ORDER = ("valdi.ssh_key", "valdi.volume", "valdi.vm", "valohai.datum", "codeocean.data_asset")


@dataclass
class Block:
    kind: str
    name: str
    spec: dict[str, Any]
    ids: dict[str, str]  # instance key ("" for a plain block) -> remote id
    for_each: dict[str, Any] | list[str] | None = None
    variables: dict[str, str] = field(default_factory=dict)  # sensitive variable -> its type


    @property
    def address(self) -> str:
        return f"{self.kind}.{self.name}"


@dataclass
class Discovered:
    blocks: list[Block] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # kind -> objects already managed

    @property
    def count(self) -> int:
        return sum(len(b.ids) for b in self.blocks)


def discover(kinds: Mapping[str, Kind], context: Callable[[str], KindContext], state: StateDoc,
             declared: Iterable[str] = (), match: str | None = None) -> Discovered:
    """Every unmanaged object of these kinds (read through each kind's listing)."""
    managed = {rs.id for rs in state.resources.values()}
    taken = {a.split("[", 1)[0] for a in declared}
    out = Discovered()
    for kind_name in sorted(kinds, key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k)):
        kind = kinds[kind_name]
        if not isinstance(kind, Discovers):
            continue
        found = kind.discover(context(kind_name))
        fresh = [lv for lv in found if lv.id not in managed]
        out.skipped[kind_name] = len(found) - len(fresh)
        if match:
            fresh = [lv for lv in fresh if fnmatch.fnmatchcase(_remote_name(lv), match)]
        out.blocks += _blocks(kind, fresh, taken)
    _reference(out.blocks, {rs.id: a for a, rs in state.resources.items()})
    out.blocks = _used_first(out.blocks)
    return out


def _used_first(blocks: list[Block]) -> list[Block]:
    """Within a kind, a block that refers to others of its kind (a combined asset) after them."""
    def refers(b: Block) -> bool:
        return f"${{{b.kind}." in repr(b.spec)
    kinds = list(dict.fromkeys(b.kind for b in blocks))
    return [b for k in kinds for late in (False, True) for b in blocks if b.kind == k and refers(b) == late]


def _remote_name(lv: Live) -> str:
    a = lv.attrs
    return str(a.get("name") or a.get("bucket_name") or a.get("url") or lv.id)


def _blocks(kind: Kind, lives: list[Live], taken: set[str]) -> list[Block]:
    groups: dict[tuple, list[Live]] = {}
    singles: list[Live] = []
    names = field_names(kind)
    secret = {lv.id: [p for p, _v in hidden_leaves(lv.attrs, names)] for lv in lives}
    if kind.discover_group:
        for lv in lives:
            key = None if secret[lv.id] else _group_key(lv.attrs, kind.discover_group)
            if key is None:
                singles.append(lv)
            else:
                groups.setdefault(key, []).append(lv)
        for key, members in list(groups.items()):
            if len(members) < MIN_GROUP:
                singles += groups.pop(key)
    else:
        singles = list(lives)
    blocks = []
    for members in groups.values():
        path_field, map_field = kind.discover_group or ("", "")
        first = members[0].attrs
        folder = first[path_field].rsplit("/", 1)[0]
        keyed = {m.attrs[path_field].rsplit("/", 1)[1]: m for m in members}
        valued = any(m.attrs.get(map_field) for m in members)
        spec: dict[str, Any] = {}
        for k, v in first.items():
            if k == path_field:
                spec[k] = _escape(folder) + "/${each.key}"
            elif k == map_field:
                spec[k] = "${each.value}"
            else:
                spec[k] = _escape(v)
        if valued and map_field not in spec:
            spec[map_field] = "${each.value}"
        for_each: Any = {key: _escape(m.attrs.get(map_field) or {}) for key, m in keyed.items()} if valued \
            else list(keyed)
        name = _unique(_slug(folder.rsplit("/", 1)[-1]) or kind.name.rsplit(".", 1)[-1], kind.name, taken)
        blocks.append(Block(kind.name, name, spec, {key: m.id for key, m in keyed.items()}, for_each))
    for lv in singles:
        label = _remote_name(lv)
        base = "" if holds_secret(label) else _slug(label.rsplit("/", 1)[-1] if "://" in label else label)
        name = _unique(base or kind.name.rsplit(".", 1)[-1], kind.name, taken)
        variables: dict[str, str] = {}
        spec = _as_variables(_escape(lv.attrs), set(secret[lv.id]), f"{kind.name.rsplit('.', 1)[-1]}_{name}",
                             variables)
        blocks.append(Block(kind.name, name, spec, {"": lv.id}, variables=variables))
    return blocks


_VARIABLE_TYPES = ((bool, "boolean"), ((int, float), "number"), (list, "list"), (dict, "map"))


def _as_variables(value: Any, paths: set[str], stem: str, variables: dict[str, str], path: str = "") -> Any:
    """`value` with the leaves at `paths` replaced by references to new sensitive variables."""
    if path in paths:
        name = re.sub(r"[^A-Za-z0-9_]+", "_", f"{stem}_{path}").strip("_")
        while name in variables:
            name += "_"
        variables[name] = next((t for types, t in _VARIABLE_TYPES if isinstance(value, types)), "string")
        return f"${{var.{name}}}"
    if isinstance(value, dict):
        return {k: _as_variables(v, paths, stem, variables, f"{path}.{k}" if path else str(k))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_as_variables(v, paths, stem, variables, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _group_key(attrs: Mapping[str, Any], group: tuple[str, str]) -> tuple | None:
    """Objects alike but for the path's last segment and the mapping's values, or None."""
    path_field, map_field = group
    path = attrs.get(path_field)
    if not isinstance(path, str) or "/" not in path or attrs.get("alias"):
        return None  # an alias names one datum: never one of many
    folder, _, leaf = path.rpartition("/")
    if not INSTANCE_KEY.fullmatch(leaf) or "${" in path:
        return None
    mapping = attrs.get(map_field) or {}
    if not isinstance(mapping, dict):
        return None
    rest = tuple(sorted((k, repr(v)) for k, v in attrs.items() if k not in (path_field, map_field)))
    return (folder, tuple(sorted(mapping)), rest)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return re.sub(r"-{2,}", "-", slug)[:100]


def _unique(base: str, kind: str, taken: set[str]) -> str:
    name, n = base, 2
    while f"{kind}.{name}" in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(f"{kind}.{name}")
    return name


def _escape(value: Any) -> Any:
    """A remote value holding "${" stays text in the manifest."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


def _reference(blocks: list[Block], managed: Mapping[str, str]) -> None:
    """Ids of objects written here (plain blocks) or managed already -> references."""
    addresses = dict(managed)
    for b in blocks:
        if b.for_each is None:
            addresses[b.ids[""]] = b.address
        else:
            addresses.update({rid: f"{b.address}[{key}]" for key, rid in b.ids.items()})

    def swap(value: Any, own: set[str]) -> Any:
        if isinstance(value, str) and value in addresses and value not in own:
            return f"${{{addresses[value]}.id}}"
        if isinstance(value, dict):
            return {k: swap(v, own) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v, own) for v in value]
        return value

    for b in blocks:
        b.spec = swap(b.spec, set(b.ids.values()))


def manifest_text(found: Discovered, header: str) -> str:
    """The manifest: resources, then an imports: entry for every object."""
    import yaml

    resources = []
    imports = []
    variables = {name: {"type": kind, "sensitive": True, "description": f"the live value of {b.address}: "
                        f"not written here (set RECONCILER_VAR_{name})"}
                 for b in found.blocks for name, kind in b.variables.items()}
    for b in found.blocks:
        item: dict[str, Any] = {"kind": b.kind, "name": b.name}
        if b.for_each is not None:
            item["for_each"] = b.for_each
        item["spec"] = b.spec
        resources.append(item)
        imports += [{"to": f"{b.address}[{key}]" if key else b.address, "id": rid} for key, rid in b.ids.items()]
    document = {"variables": variables} if variables else {}
    body = yaml.safe_dump({**document, "resources": resources, "imports": imports}, sort_keys=False, allow_unicode=True,
                          width=110, default_flow_style=False)
    return header + body
