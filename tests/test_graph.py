"""graph, table-driven: references and depends_on become edges, waves put every
dependency first, cycles are spelled out, and closures go both ways."""
from __future__ import annotations

import pytest

from reconciler.config.model import Position, Ref, Resource, Template
from reconciler.engine import graph
from reconciler.errors import CycleError


def res(name: str, spec: dict | None = None, depends_on: tuple[str, ...] = ()) -> Resource:
    return Resource("t.x", name, spec or {}, Position("m.yaml", 1, 1), depends_on=list(depends_on))


def ref(name: str, attribute: str = "id") -> Ref:
    return Ref(f"t.x.{name}", attribute)


@pytest.mark.parametrize("value, addresses", [
    ("plain", []),
    (ref("a"), ["t.x.a"]),
    (Template(("s3://", ref("a", "bucket"), "/", ref("b"))), ["t.x.a", "t.x.b"]),
    ({"k": [ref("a"), {"deep": ref("b")}], "n": 1}, ["t.x.a", "t.x.b"]),
    ((ref("a"),), ["t.x.a"]),
], ids=["scalar", "ref", "template", "nested", "tuple"])
def test_iter_refs(value, addresses):
    assert [r.address for r in graph.iter_refs(value)] == addresses


# (id, resources, expected graph)
BUILD = [
    ("no edges", [res("a"), res("b")], {"t.x.a": set(), "t.x.b": set()}),
    ("reference", [res("a"), res("b", {"x": ref("a")})], {"t.x.a": set(), "t.x.b": {"t.x.a"}}),
    ("depends_on", [res("a"), res("b", depends_on=("t.x.a",))], {"t.x.a": set(), "t.x.b": {"t.x.a"}}),
    ("outside the set is dropped", [res("b", {"x": ref("gone")})], {"t.x.b": set()}),
    ("self reference is no edge", [res("a", {"x": ref("a", "name")})], {"t.x.a": set()}),
]


@pytest.mark.parametrize("resources, expected", [c[1:] for c in BUILD], ids=[c[0] for c in BUILD])
def test_build(resources, expected):
    assert graph.build(resources) == expected


DIAMOND = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}, "e": set()}


@pytest.mark.parametrize("g, waves", [
    ({}, []),
    ({"a": set()}, [["a"]]),
    ({"b": {"a"}, "a": set()}, [["a"], ["b"]]),
    (DIAMOND, [["a", "e"], ["b", "c"], ["d"]]),
], ids=["empty", "one", "chain", "diamond"])
def test_waves_put_dependencies_first_and_sorted(g, waves):
    assert graph.waves(g) == waves
    assert graph.order(g) == [a for w in waves for a in w]


@pytest.mark.parametrize("roots, dependants, dependencies", [
    (["a"], {"a", "b", "c", "d"}, {"a"}),
    (["d"], {"d"}, {"a", "b", "c", "d"}),
    (["b", "e"], {"b", "d", "e"}, {"a", "b", "e"}),
    ([], set(), set()),
])
def test_closures(roots, dependants, dependencies):
    assert graph.dependants(DIAMOND, roots) == dependants
    assert graph.dependencies_of(DIAMOND, roots) == dependencies


def test_no_cycle_in_a_dag_and_a_cycle_is_spelled_out():
    assert graph.find_cycle(DIAMOND) is None
    resources = [res("a", {"x": ref("b")}), res("b", {"x": ref("c")}), res("c", depends_on=("t.x.a",))]
    with pytest.raises(CycleError) as e:
        graph.check_cycles(resources)
    message = str(e.value)
    assert message.startswith("m.yaml:1:1: ") and "dependency cycle: " in message
    chain = message.split("dependency cycle: ")[1].split(" -> ")
    assert chain[0] == chain[-1] and set(chain) == {"t.x.a", "t.x.b", "t.x.c"}
    # read as "x uses y": every step follows an edge of the manifest
    uses = {"t.x.a": "t.x.b", "t.x.b": "t.x.c", "t.x.c": "t.x.a"}
    assert all(uses[x] == y for x, y in zip(chain, chain[1:]))


@pytest.mark.parametrize("address, known, expected", [
    ("t.x.a", ["t.x.a", "t.x.a[0]"], ["t.x.a"]),
    ("t.x.p", ["t.x.p[b]", "t.x.p[a]", "t.x.pq[a]", "t.x.p[c"], ["t.x.p[a]", "t.x.p[b]"]),
    ("t.x.none", ["t.x.a"], []),
])
def test_instances(address, known, expected):
    assert graph.instances(address, known) == expected


def test_a_graph_without_edges_is_ordered_as_its_sorted_addresses():
    """The planner orders an edgeless graph (every no-op plan of independent resources) with
    sorted() instead of graphlib: the same order."""
    g = {f"t.x.{n}": set() for n in ("b", "a10", "a2", "c[0]", "c[\"k\"]", "A")}
    assert graph.order(g) == sorted(g)
