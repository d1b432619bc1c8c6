"""reconciler.config.walk, table-driven: the one walk over spec-shaped values gives the same
paths the messages and the state use."""
from __future__ import annotations

import pytest

from reconciler.config import walk
from reconciler.config.model import Ref, Template

A, B = Ref("t.x.a", "id"), Ref("t.x.b", "name")
SPEC = {"n": 1, "d": {"r": A, "l": [B, {"t": Template(("s3://", A, "/", B))}]}, "e": {}, "z": []}


def test_refs_depth_first():
    assert list(walk.refs(SPEC)) == [A, B, A, B]


@pytest.mark.parametrize("start, expected", [
    ("spec", [("spec.d.r", A), ("spec.d.l[0]", B), ("spec.d.l[1].t", A), ("spec.d.l[1].t", B)]),
    ("", [("d.r", A), ("d.l[0]", B), ("d.l[1].t", A), ("d.l[1].t", B)]),
])
def test_refs_at(start, expected):
    assert list(walk.refs_at(SPEC, start)) == expected


@pytest.mark.parametrize("value, start, expected", [
    (SPEC, "r", [("r.n", 1), ("r.d.r", A), ("r.d.l[0]", B), ("r.d.l[1].t", SPEC["d"]["l"][1]["t"]),
                 ("r.e", {}), ("r.z", [])]),
    ("x", "k", [("k", "x")]),
    ({}, "k", [("k", {})]),
    ({"a": {"b": None}}, "", [("a.b", None)]),
])
def test_leaves(value, start, expected):
    assert list(walk.leaves(value, start)) == expected


@pytest.mark.parametrize("value, expected", [
    ({"password": "p", "n": 1}, {"password": "(x)", "n": 1}),
    ({"password": None}, {"password": None}),  # unset stays unset: nothing to hide
    ({"d": [{"password": "p"}, "s"]}, {"d": [{"password": "(x)"}, "S"]}),
    ("s", "S"),
])
def test_masked_hides_set_fields_at_any_depth_and_maps_leaves(value, expected):
    upper = lambda v: v.upper() if isinstance(v, str) else v  # noqa: E731
    assert walk.masked(value, {"password"}.__contains__, "(x)", upper) == expected
