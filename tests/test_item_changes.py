"""What changed inside a value (diffing.item_changes): a table of named cases."""
from __future__ import annotations

import pytest

from reconciler.config.model import UNKNOWN
from reconciler.plan.diffing import item_changes
from reconciler.plan.model import ItemChange as I

FORTY = [f"t{i:02d}" for i in range(40)]
FILES = [{"path": f"f{i}.csv", "md5": str(i)} for i in range(200)]


def edited(files, index, md5):
    out = [dict(f) for f in files]
    out[index]["md5"] = md5
    return out


@pytest.mark.parametrize("why, path, old, new, want", [
    ("one tag added to forty", "tags", FORTY, FORTY + ["new"], (I("add", "", None, "new"),)),
    ("tags reordered: no change", "tags", ["a", "b"], ["b", "a"], ()),
    ("a tag swapped", "spec.tags", ["a", "b"], ["a", "c"], (I("remove", "", "b", None), I("add", "", None, "c"))),
    ("users compared as a set of records", "permissions.users",
     [{"email": "a", "role": "viewer"}, {"email": "b", "role": "editor"}],
     [{"email": "b", "role": "editor"}, {"email": "a", "role": "viewer"}, {"email": "c", "role": "viewer"}],
     (I("add", "", None, {"email": "c", "role": "viewer"}),)),
    ("one file of 200 edited, by position", "files", FILES, edited(FILES, 57, "new"), (I("change", "[57].md5", "57", "new"),)),
    ("an ordered list grows at its end", "ports", [22, 80], [22, 80, 443], (I("add", "[2]", None, 443),)),
    ("a nested dict: key removed, changed, added", "properties", {"a": 1, "b": {"c": 2}}, {"b": {"c": 3}, "d": 4},
     (I("remove", "a", 1, None), I("change", "b.c", 2, 3), I("add", "d", None, 4))),
    ("equal values: nothing (the == fast path)", "tags", FORTY, list(FORTY), ()),
    ("a scalar: shown whole, no items", "name", "a", "b", ()),
    ("list to dict: shown whole", "x", [1], {"a": 1}, ()),
    ("an unknown inside: shown whole", "details", {"a": 1}, {"a": UNKNOWN}, ()),
])
def test_item_changes(why, path, old, new, want):
    assert item_changes(path, old, new) == want, why


def test_a_kind_may_name_more_unordered_fields():
    assert item_changes("folders", ["a", "b"], ["b", "a"], unordered={"folders"}) == ()
    assert item_changes("folders", ["a", "b"], ["b", "a"]) != ()
