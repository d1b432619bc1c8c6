"""The three-way merge of datum properties, tags and alias (pure; no API)."""
from __future__ import annotations

import pytest

from reconciler.errors import ApiError
from reconciler.providers.valohai import properties as p
from reconciler.providers.valohai.client import _url_errors


def live(props=None, tags=(), aliases=()):
    return {"properties": dict(props or {}), "tags": list(tags), "alias": aliases[0] if aliases else None,
            "aliases": list(aliases)}


@pytest.mark.parametrize("name,spec,have,last,body", [
    ("up to date", {"properties": {"a": 1}}, live({"a": 1}), {"properties": {"a": 1}}, {}),
    ("new key", {"properties": {"a": 1}}, live({}), None, {"a": 1}),
    ("changed value", {"properties": {"a": 2}}, live({"a": 1}), {"properties": {"a": 1}}, {"a": 2}),
    ("others' keys are not drift", {"properties": {"a": 1}}, live({"a": 1, "theirs": 5}), None, {}),
    ("a key we set and dropped is removed", {"properties": {}}, live({"a": 1, "b": 2}),
     {"properties": {"a": 1, "b": 2}}, {"a": None, "b": None}),
    ("a dropped key someone already removed: nothing", {"properties": {}}, live({}),
     {"properties": {"a": 1}}, {}),
    ("a key others set is never removed", {}, live({"theirs": 1}), {"properties": {"a": 1}}, {}),
    ("values are replaced whole", {"properties": {"cfg": {"x": 1}}}, live({"cfg": {"x": 1, "y": 2}}),
     None, {"cfg": {"x": 1}}),
    ("1 and 1.0 are equal, True and 1 are not", {"properties": {"a": 1.0, "b": True}},
     live({"a": 1, "b": 1}), None, {"b": True}),
    ("our tag added, others kept", {"tags": ["ours"]}, live(tags=["theirs"]), None,
     {"valohai.tags": ["theirs", "ours"]}),
    ("our dropped tag removed, others kept", {"tags": []}, live(tags=["theirs", "old"]),
     {"tags": ["old"]}, {"valohai.tags": ["theirs"]}),
    ("tags in another order are equal", {"tags": ["a", "b"]}, live(tags=["b", "a"]), None, {}),
    ("our tag removed elsewhere is added back", {"tags": ["a"]}, live(tags=["theirs"]), {"tags": ["a"]},
     {"valohai.tags": ["theirs", "a"]}),
    ("our dropped tag someone already removed: nothing", {"tags": ["a"]}, live(tags=["a", "theirs"]),
     {"tags": ["a", "old"]}, {}),
    ("a dropped tag and a kept one", {"tags": ["a"]}, live(tags=["a", "old"]), {"tags": ["a", "old"]},
     {"valohai.tags": ["a"]}),
    ("equal strings and numbers", {"properties": {"s": "x", "n": 2, "f": 0.5}},
     live({"s": "x", "n": 2.0, "f": 0.5}), {"properties": {"s": "x", "n": 2, "f": 0.5}}, {}),
    ("true where we want 1 is a change", {"properties": {"a": 1}}, live({"a": True}), None, {"a": 1}),
    ("a key we keep and one we dropped", {"properties": {"a": 1}}, live({"a": 1, "b": 2}),
     {"properties": {"a": 1, "b": 2}}, {"b": None}),
    ("alias set", {"alias": "prod"}, live(), None, {"valohai.alias": "prod"}),
    ("alias already here among others", {"alias": "prod"}, live(aliases=["x", "prod"]), None, {}),
    ("alias we set and dropped is detached", {}, live(aliases=["prod"]), {"alias": "prod"},
     {"valohai.alias": None}),
    ("alias we set that moved away: nothing", {}, live(aliases=[]), {"alias": "prod"}, {}),
])
def test_diff_sends_only_what_is_ours(name, spec, have, last, body):
    assert p.body_for(p.diff(spec, have, last)) == body, name


def test_release_removes_only_what_we_set():
    have = live({"a": 1, "theirs": 2}, tags=["t", "ours"], aliases=["prod"])
    last = {"properties": {"a": 1, "gone": 3}, "tags": ["ours"], "alias": "prod"}
    assert p.release_body(have, last) == {"a": None, "valohai.tags": ["t"], "valohai.alias": None}
    assert p.release_body(live({"theirs": 1}), {"properties": {"a": 1}}) == {}


def test_after_applies_a_body_like_valohai_does():
    have = live({"a": 1, "b": 2}, tags=["x"], aliases=["old"])
    got = p.after(have, {"a": None, "c": 3, "valohai.tags": ["y"], "valohai.alias": "new"})
    assert got["properties"] == {"b": 2, "c": 3} and got["tags"] == ["y"]
    assert got["alias"] == "new" and got["aliases"] == ["old", "new"]
    assert have["properties"] == {"a": 1, "b": 2}  # not mutated


@pytest.mark.parametrize("name,body,urls,expected", [
    ("bulk error names each url",
     {"urls": [{"url": "s3://b/1", "message": "s3://b/1 already exists in st", "code": None},
               {"url": "s3://b/2", "message": "Not found in st: 's3://b/2'", "code": "adoptable_file_not_found"}]},
     ["s3://b/1", "s3://b/2", "s3://b/3"],
     {"s3://b/1": True, "s3://b/2": False}),
    ("documented single answer", {"url": [{"message": "s3://b/1 already exists in st", "code": None}]},
     ["s3://b/1"], {"s3://b/1": True}),
    ("unwrapped object", {"message": "Not found in st: 's3://b/1'", "code": "adoptable_file_not_found"},
     ["s3://b/1"], {"s3://b/1": False}),
    ("a server without the bulk form", {"url": ["This field is required."]}, ["s3://b/1", "s3://b/2"], None),
    ("field error without urls", {"url": [{"message": "This field is required.", "code": "required"}]},
     ["s3://b/1"], None),
])
def test_adopt_errors_are_read_per_url(name, body, urls, expected):
    found = _url_errors(ApiError("x", status=400, body=body), urls)
    assert (None if found is None else {u: v[0] for u, v in found.items()}) == expected, name
