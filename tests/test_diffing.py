"""diffing.left_diff, table-driven (kopf's style): only what the spec sets is compared;
a key we applied before and the spec dropped is reset; replacement, opaque blobs,
sensitivity and unknown values are marked on the change."""
from __future__ import annotations

import pytest

from reconciler.config.model import UNKNOWN, Ref
from reconciler.plan.diffing import left_diff, same

R = Ref("valdi.volume.v", "id")

# (id, spec, live, last_applied, options, expected [(path, old, new, forces, sensitive)])
CASES = [
    ("equal", {"a": 1}, {"a": 1}, None, {}, []),
    ("changed", {"a": 1}, {"a": 2}, None, {}, [("a", 2, 1, False, False)]),
    ("added", {"a": 1}, {}, None, {}, [("a", None, 1, False, False)]),
    ("server-added keys are not ours", {"a": 1}, {"a": 1, "server": "x"}, None, {}, []),
    ("int and float alike", {"a": 1}, {"a": 1.0}, None, {}, []),
    ("bool is not int", {"a": True}, {"a": 1}, None, {}, [("a", 1, True, False, False)]),
    ("nested: only the changed leaf", {"d": {"x": 1, "y": 2}}, {"d": {"x": 1, "y": 3, "z": 9}}, None, {},
     [("d.y", 3, 2, False, False)]),
    ("nested under a non-dict", {"d": {"x": 1}}, {"d": "flat"}, None, {}, [("d.x", None, 1, False, False)]),
    ("dropped key we applied is reset", {"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2}, {},
     [("b", 2, None, False, False)]),
    ("dropped key already gone: nothing", {"a": 1}, {"a": 1}, {"a": 1, "b": 2}, {}, []),
    ("dropped nested key we applied", {"d": {"x": 1}}, {"d": {"x": 1, "y": 2}}, {"d": {"x": 1, "y": 2}}, {},
     [("d.y", 2, None, False, False)]),
    ("a key someone else set is kept", {"a": 1}, {"a": 1, "theirs": 2}, {"a": 1}, {}, []),
    ("lists compare whole", {"t": ["a", "b"]}, {"t": ["b", "a"]}, None, {}, [("t", ["b", "a"], ["a", "b"], False, False)]),
    ("replace_on prefix", {"d": {"flavor": "b"}, "n": 1}, {"d": {"flavor": "a"}, "n": 2}, None,
     {"replace_on": ["d"]}, [("d.flavor", "a", "b", True, False), ("n", 2, 1, False, False)]),
    ("opaque compares whole", {"d": {"x": 1}}, {"d": {"x": 1, "extra": 2}}, None, {"opaque": ["d"]},
     [("d", {"x": 1, "extra": 2}, {"x": 1}, False, False)]),
    ("sensitive names marked", {"password": "new"}, {"password": "old"}, None, {"sensitive": ["password"]},
     [("password", "old", "new", False, True)]),
    ("a reference is unknown", {"v": R}, {"v": "vol-1"}, None, {}, [("v", "vol-1", UNKNOWN, False, False)]),
    ("a dict holding a reference is walked", {"d": {"v": R, "x": 1}}, {"d": {"v": "a", "x": 1}}, None, {},
     [("d.v", "a", UNKNOWN, False, False)]),
    ("prefix", {"a": 1}, {"a": 2}, None, {"prefix": "spec."}, [("spec.a", 2, 1, False, False)]),
    ("live None", {"a": 1}, None, None, {}, [("a", None, 1, False, False)]),
]


@pytest.mark.parametrize("spec, live, last, options, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_left_diff(spec, live, last, options, expected):
    changes = left_diff(spec, live, last, **options)
    assert [(c.path, c.old, c.new, c.forces_replacement, c.sensitive) for c in changes] == expected


@pytest.mark.parametrize("a, b, equal", [(1, 1.0, True), (True, 1, False), (False, 0, False), (True, True, True),
                                         ("1", 1, False), (None, None, True), ([1], [1.0], True)])
def test_same(a, b, equal):
    assert same(a, b) is equal
