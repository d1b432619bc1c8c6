"""`moved:` entries: refactor without destroying (Terraform's `moved` blocks).

    moved:
      - {from: valdi.vm.old, to: valdi.vm.trainer}              # a block renamed
      - {from: valohai.datum.part, to: 'valohai.datum.part[p0]'} # a block given for_each
      - {from: 'valohai.datum.a[x]', to: 'valohai.datum.b[y]'}   # an instance renamed
      - {from: valohai.datum.old, to: valohai.datum.new}         # two for_each blocks: every key

Rules, checked at load (one line each, file:line:col): both ends are addresses of the
same kind; the `from` is no longer declared; the final `to` is (an intermediate one of a
chain a -> b -> c need not be); no two entries move to one address or from one address; no
cycle. Chains resolve here, so the engine sees each source with its final target.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Collection

from reconciler.config.model import Move, Position
from reconciler.errors import Problem

ADDRESS = re.compile(r"^(?P<block>[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9_-]*)"
                     r"(?:\[(?P<key>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})\])?$")


def kind_of(address: str) -> str:
    return address.rsplit(".", 1)[0] if "[" not in address else address.split("[", 1)[0].rsplit(".", 1)[0]


def entries(value: Any, locate: Callable[[str], Position], problems: list[Problem]) -> list[Move]:
    """The `moved:` list of one document (the schema checked the shape and the addresses)."""
    out: list[Move] = []
    if not isinstance(value, list):
        return out
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("from"), str) or not isinstance(item.get("to"), str):
            continue  # the schema reported it
        where = f"moved[{i}]"
        if not (ADDRESS.fullmatch(item["from"]) and ADDRESS.fullmatch(item["to"])):
            continue  # the schema's address pattern reported it
        if kind_of(item["from"]) != kind_of(item["to"]):
            problems.append(_problem(locate(f"{where}.to"), f"{where}.to",
                                     f"a move keeps the kind: {item['from']} is a {kind_of(item['from'])}, "
                                     f"{item['to']} a {kind_of(item['to'])}"))
            continue
        if item["from"] == item["to"]:
            problems.append(_problem(locate(f"{where}.to"), f"{where}.to", "from and to are the same address"))
            continue
        out.append(Move(item["from"], item["to"], locate(f"{where}.to"), locate(f"{where}.from"), where))
    return out


def resolve(moves: list[Move], declared: Collection[str], problems: list[Problem]) -> list[Move]:
    """Each source with its final target (chains followed). `declared`: the manifests'
    addresses, for_each / count blocks included as their block address."""
    by_source: dict[str, Move] = {}
    by_target: dict[str, Move] = {}
    for m in moves:
        # a block given for_each keeps its address as a block: moving its one object into an
        # instance of it (`part` -> `part[p0]`) is what the move is for, not a leftover
        if m.source in declared and not m.target.startswith(m.source + "["):
            problems.append(_problem(_from(m), f"{m.entry}.from", f"{m.source} is still declared in the manifests: "
                                     "remove its block (it is now the move's `to`), or the move"))
            continue
        if m.source in by_source:
            problems.append(_problem(_from(m), f"{m.entry}.from", f"{m.source} is moved twice (also at "
                                     f"{_from(by_source[m.source])}); keep one entry"))
            continue
        if m.target in by_target:
            problems.append(_problem(m.position, f"{m.entry}.to", f"two moves to {m.target}: from {m.source} and from "
                                     f"{by_target[m.target].source} (at {by_target[m.target].position}); "
                                     "an address holds one object"))
            continue
        by_source[m.source], by_target[m.target] = m, m
    out: list[Move] = []
    for m in by_source.values():
        target, seen = m.target, {m.source}
        while target in by_source:
            if target in seen:
                problems.append(_problem(_from(m), f"{m.entry}.from", f"the moves from {m.source} go round in a "
                                         f"circle through {target}"))
                break
            seen.add(target)
            target = by_source[target].target
        else:
            if target not in declared:
                problems.append(_problem(m.position, f"{m.entry}.to", f"{target} is not declared in the manifests: "
                                         "a move must end at a resource block or instance"))
                continue
            out.append(Move(m.source, target, m.position, m.source_position, m.entry))
    return out


def _from(m: Move) -> Position:
    """Where the entry's `from` is written (its `to` for a Move made without it)."""
    return m.source_position or m.position


def _problem(pos: Position, path: str, message: str) -> Problem:
    return Problem(pos.file, pos.line, pos.column, path, message)
