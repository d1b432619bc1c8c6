"""`lookups:`: read-only data from the services' catalogues (Terraform's data sources).

    lookups:
      a6000: {kind: valdi.flavor, where: {gpu_type: "RTX A6000 48GB", gpu_count: 1}}
      store: {kind: valohai.store, where: {name: sandbox-store}}
    ... ${lookup.a6000.flavor_id}, ${lookup.a6000.provider_id}, ${lookup.store.id}

Here: the shape, and that every ${lookup.NAME.x} names a declared lookup. The engine
picks the one matching row at plan time from the listings the plan reads anyway; a
`where` field the catalogue lacks, or zero or several matches, is a plan-time error.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from reconciler.config.model import Lookup, Position
from reconciler.errors import Problem

PREFIX = "lookup."


def entries(value: Any, locate: Callable[[str], Position], positions: Mapping[str, Position],
            known: dict[str, Lookup], problems: list[Problem]) -> None:
    """Add one document's lookups to `known` (a name declared twice is an error)."""
    if not isinstance(value, dict):
        return
    for name, block in value.items():
        if not isinstance(block, dict) or not isinstance(block.get("kind"), str) \
                or not isinstance(block.get("where"), dict):
            continue  # the schema reported it
        pos = locate(f"lookups.{name}")
        if name in known:
            problems.append(Problem(pos.file, pos.line, pos.column, f"lookups.{name}",
                                    f"lookup '{name}' is declared twice (also at {known[name].position})"))
            continue
        where_positions = {f"where.{k}": locate(f"lookups.{name}.where.{k}") for k in block["where"]}
        known[name] = Lookup(name, block["kind"], dict(block["where"]), pos, where_positions)


def name_of(address: str) -> str | None:
    """`lookup.a6000` -> "a6000"; None for a resource address."""
    return address[len(PREFIX):] if address.startswith(PREFIX) else None
