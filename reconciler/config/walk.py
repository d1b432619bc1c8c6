"""The walks over spec-shaped values (dicts, lists, references), written once.

Paths are the ones messages and the state use: "spec.details.vcpus", "files[2].path";
a walk that starts at "" gives "details.vcpus". A Template counts as one leaf whose
references all sit at its path.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

from reconciler.config.model import Ref, Template


def refs(value: Any) -> Iterator[Ref]:
    """Every reference inside a value, depth first (no paths: the cheap walk)."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Template):
        yield from (p for p in value.parts if isinstance(p, Ref))
    elif isinstance(value, dict):
        for v in value.values():
            yield from refs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from refs(v)


# exact types that hold no reference: not walked into, and no path is built for them
# (a spec of 100,000 resources is mostly such leaves)
_BARE = frozenset({str, int, float, bool, type(None)})


def refs_at(value: Any, path: str = "") -> Iterator[tuple[str, Ref]]:
    """(field path, reference) for every reference inside a value, depth first."""
    if isinstance(value, Ref):
        yield path, value
    elif isinstance(value, Template):
        for p in value.parts:
            if isinstance(p, Ref):
                yield path, p
    elif isinstance(value, dict):
        for k, v in value.items():
            if type(v) not in _BARE:
                yield from refs_at(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):  # specs hold lists (YAML, JSON); tuples only in code
        for i, v in enumerate(value):
            if type(v) not in _BARE:
                yield from refs_at(v, f"{path}[{i}]")


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(field path, value) for every value that is not a non-empty dict or list."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)) and value:
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def masked(value: Any, hide: Callable[[Any], bool], replacement: str,
           leaf: Callable[[Any], Any] | None = None) -> Any:
    """A copy of a value where every field that is set (not None) and whose key `hide`
    accepts reads `replacement`, at any depth; `leaf` maps the other leaves (scrubbing)."""
    if isinstance(value, dict):
        return {k: (replacement if v is not None and hide(k) else masked(v, hide, replacement, leaf))
                for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, hide, replacement, leaf) for v in value]
    return leaf(value) if leaf is not None else value


def copy_plain(value: Any) -> Any:
    """A fresh copy of plain YAML data (dicts, lists, scalars, references): what expression
    evaluation may then fill in without touching the parsed manifest."""
    if isinstance(value, dict):
        return {k: copy_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_plain(v) for v in value]
    return value
