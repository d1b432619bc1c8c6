"""The state file's one-pass decoding (state/decode.py) reads every document exactly as the
general reading does (json, check, from_dict), and a damaged one fails with the same line."""
from __future__ import annotations

import json

import pytest

from reconciler.errors import StateError
from reconciler.state import decode, local
from reconciler.state.local import LocalStateStore

ENTRY = {"kind": "valohai.datum", "id": "d-1", "last_applied": {"store": "s", "url": "s3://b/1", "tags": ["x"],
                                                                "properties": {"n": 1.5, "big": 10 ** 30}},
         "outputs": {"id": "d-1", "uri": "s3://b/1", "size": 2}, "secrets": {}, "protected": True,
         "deletion_policy": "release", "adopted": False, "depends_on": ["valohai.datum.b"],
         "sensitive_paths": [], "file": "m.yaml", "expires_at": None, "unknown_later_field": 1}


def doc(**changes):
    d = {"version": 1, "lineage": "L", "serial": 4,
         "resources": {"valohai.datum.a": dict(ENTRY), "valohai.datum.b": {"kind": "valohai.datum", "id": "d-2"}},
         "pending": {"valohai.datum.c": {"kind": "valohai.datum", "spec": {"url": "s3://b/3"}}},
         "outputs": {"o": {"value": 1, "sensitive": False}}, "forgotten": {},
         "expired": {"x.y": {"at": "2026-01-01T00:00:00Z"}}, "events": [{"at": "t", "event": "e"}]}
    d.update(changes)
    return d


def general(path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(local, "fast_read", lambda *a: None)
        return LocalStateStore(path).read()


@pytest.mark.parametrize("text", [
    json.dumps(doc()),
    json.dumps(doc(pending={}, outputs={}, events=[])),
    json.dumps({"version": 1, "lineage": "L", "serial": 0}),
    json.dumps(doc()).replace('"n": 1.5', '"n": NaN'),  # JSON's reader takes it, msgspec does not
    json.dumps(doc(resources={"a.b": {**ENTRY, "sensitive_paths": [1]}})),  # a list: any items
])
def test_the_one_pass_reading_is_the_general_reading(tmp_path, monkeypatch, text):
    path = tmp_path / "state.json"
    path.write_text(text)
    fast, slow = LocalStateStore(path).read(), general(path, monkeypatch)
    assert fast == slow
    assert json.dumps(fast.to_dict(), sort_keys=True) == json.dumps(slow.to_dict(), sort_keys=True)


def test_repeated_strings_are_shared_and_entries_keep_their_own_containers(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc(resources={f"valohai.datum.{i}": {**ENTRY, "id": f"d-{i}",
                                                                     "outputs": {"id": f"d-{i}"},
                                                                     "secrets": {"k": "v"} if i < 2 else {}}
                                              for i in range(4)})))
    read = list(LocalStateStore(path).read().resources.values())
    assert read[0].kind is read[1].kind and read[0].file is read[2].file
    assert read[1].outputs["id"] is read[1].id
    assert read[0].last_applied is not read[1].last_applied and read[0].secrets is not read[1].secrets
    # an empty container is one for all the entries (they are values: never edited in place)
    assert read[2].secrets == {} and read[2].secrets is read[3].secrets


def test_sealed_secrets_take_the_general_reading():
    sealed = doc(resources={"a.b": {**ENTRY, "secrets": {"$fernet": "x"}}})
    assert decode.fast_read(json.dumps(sealed), "s", 1) is None


@pytest.mark.parametrize("damage", [
    lambda d: d.update(version=99), lambda d: d.update(serial="7"), lambda d: d.update(resources=[]),
    lambda d: d["resources"]["valohai.datum.a"].update(protected="yes"),
    lambda d: d["resources"]["valohai.datum.a"].pop("id"),
    lambda d: d["resources"]["valohai.datum.a"].update(depends_on=[1]),
    lambda d: d.update(events={}), lambda d: d.update(forgotten={"a": {"kind": 1}}),
    lambda d: d.update(pending={"a": {"kind": "k", "spec": "nope"}}),
])
def test_a_damaged_state_fails_with_the_same_line_either_way(tmp_path, monkeypatch, damage):
    d = doc()
    damage(d)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(d))
    with pytest.raises(StateError) as fast:
        LocalStateStore(path).read()
    with pytest.raises(StateError) as slow:
        general(path, monkeypatch)
    assert str(fast.value) == str(slow.value)


def test_a_recorded_spec_equal_to_the_manifests_is_read_as_that_object(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc()))
    store = LocalStateStore(path)
    same, other = dict(ENTRY["last_applied"]), {"store": "s", "url": "s3://b/2"}
    store.specs = {"valohai.datum.a": same, "valohai.datum.b": other}
    read = store.read()
    assert read.resources["valohai.datum.a"].last_applied is same
    assert read.resources["valohai.datum.b"].last_applied == {} and other == {"store": "s", "url": "s3://b/2"}
