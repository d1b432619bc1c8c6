"""The dependency graph: references and depends_on become edges; waves come from
topological generations (stdlib graphlib); cycles are reported with the cycle spelled out."""
from __future__ import annotations

from graphlib import CycleError as _GraphlibCycle
from graphlib import TopologicalSorter
from typing import Any, Iterable, cast

from reconciler.config import walk
from reconciler.config.model import Ref, Resource, Template
from reconciler.errors import CycleError, Problem

iter_refs = walk.refs  # every reference inside a spec value, depth first


def dependencies(resource: Resource) -> set[str]:
    found: set[str] = set(resource.depends_on)
    _collect(resource.spec, found)
    return found


_LEAVES = (str, int, float, bool, type(None))


def _collect(value: Any, found: set[str]) -> None:
    """The addresses referenced inside a value (iter_refs without a generator per level:
    this runs over every field of every spec)."""
    if isinstance(value, dict):
        for v in value.values():
            if not isinstance(v, _LEAVES):
                _collect(v, found)
    elif isinstance(value, (list, tuple)):
        for v in value:
            if not isinstance(v, _LEAVES):
                _collect(v, found)
    elif isinstance(value, Ref):
        found.add(value.address)
    elif isinstance(value, Template):
        found.update(p.address for p in value.parts if isinstance(p, Ref))


# the dependencies of a resource that has none (most of them: an empty set is 216 bytes, at
# 100,000 resources 21 MiB): one for all, frozen, since a graph's sets are only read once built
_NO_DEPENDENCIES = cast(set[str], frozenset())


def build(resources: Iterable[Resource]) -> dict[str, set[str]]:
    """address -> the addresses it depends on (only addresses that are in the set)."""
    resources = list(resources)
    known = {r.address for r in resources}
    return {r.address: {d for d in dependencies(r) if d in known and d != r.address} or _NO_DEPENDENCIES
            for r in resources}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    # a node that depends on nothing is in no cycle: at 100,000 resources, most of them
    linked = {a: deps for a, deps in graph.items() if deps}
    try:
        TopologicalSorter(linked).prepare()
    except _GraphlibCycle as e:
        cycle = list(e.args[1])  # graphlib gives [a, b, ..., a]
        return cycle
    return None


def check_cycles(resources: list[Resource]) -> None:
    graph = build(resources)
    cycle = find_cycle(graph)
    if cycle:
        # graphlib lists the cycle against the edge direction; show it as "a -> b" = a uses b
        cycle = list(reversed(cycle))
        first = next(r for r in resources if r.address == cycle[0])
        pos = first.position
        raise CycleError(Problem(pos.file, pos.line, pos.column, first.address,
                                 "dependency cycle: " + " -> ".join(cycle)))


def waves(graph: dict[str, set[str]]) -> list[list[str]]:
    """Generations: every node's dependencies are in an earlier wave. Sorted for stable output."""
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    result = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        result.append(ready)
        sorter.done(*ready)
    return result


def order(graph: dict[str, set[str]]) -> list[str]:
    return [a for wave in waves(graph) for a in wave]


def dependants(graph: dict[str, set[str]], roots: Iterable[str]) -> set[str]:
    """Everything that depends, directly or not, on any of roots (roots included)."""
    reverse: dict[str, set[str]] = {a: set() for a in graph}
    for a, deps in graph.items():
        for d in deps:
            reverse.setdefault(d, set()).add(a)
    return _closure(reverse, roots)


def dependencies_of(graph: dict[str, set[str]], roots: Iterable[str]) -> set[str]:
    """Roots and everything they depend on, transitively."""
    return _closure(graph, roots)


def _closure(edges: dict[str, set[str]], roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(edges.get(node, ()))
    return seen


def instances(address: str, known: Iterable[str]) -> list[str]:
    """The address itself if known, else the instances of a for_each / count block
    (`valohai.datum.part` -> `valohai.datum.part[p0]`, ...)."""
    if address in known:
        return [address]
    prefix = address + "["
    return sorted(a for a in known if a.startswith(prefix) and a.endswith("]"))


def to_dot(graph: dict[str, set[str]]) -> str:
    lines = ["digraph reconciler {", "  rankdir=LR;"]
    for node in sorted(graph):
        lines.append(f'  "{node}";')
    for node in sorted(graph):
        for dep in sorted(graph[node]):
            lines.append(f'  "{node}" -> "{dep}";')
    lines.append("}")
    return "\n".join(lines) + "\n"
