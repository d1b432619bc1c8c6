"""The file store writes the state in pieces, copying unchanged entries from the file it
wrote last: what lands on disk is the same bytes a whole-document encoding gives, reads
back equal, is private from the first byte, and never takes bytes from a file someone
else changed."""
from __future__ import annotations

import json
import os
import stat

import pytest

from reconciler.errors import StaleStateError
from reconciler.state import crypto
from reconciler.state.base import ResourceState, StateDoc
from reconciler.state.local import LocalStateStore


def datum(i: int, version: int = 1) -> ResourceState:
    return ResourceState(kind="valohai.datum", id=f"d-{i}",
                         last_applied={"store": "s", "url": f"s3://b/{i:05}.csv", "tags": ["é", "ü"],
                                       "properties": {"index": i, "version": version}},
                         outputs={"id": f"d-{i}", "name": f"{i:05}.csv"}, depends_on=[], file="bench.yaml")


def whole(doc: StateDoc, env: dict | None = None) -> bytes:
    """The documented layout, encoded at once: one entry a line inside resources and pending."""
    sealed = crypto.seal_doc(doc.to_dict(), env or {})
    lines = []
    for key, value in sealed.items():
        if key in ("resources", "pending") and value:
            inner = ",\n".join(f"    {json.dumps(a)}: {json.dumps(e)}" for a, e in value.items())
            lines.append(f"  {json.dumps(key)}: {{\n{inner}\n  }}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def edited(doc: StateDoc, step: int) -> None:
    """What an apply does between writes: entries replaced, added, removed; pending moves."""
    for i in range(step, 300, 37):
        doc.resources[f"valohai.datum.f{i:05}"] = datum(i, version=step + 2)
    doc.resources.pop(f"valohai.datum.f{step * 11:05}", None)
    doc.resources[f"valohai.datum.new{step}"] = datum(1000 + step)
    doc.pending = {f"valohai.datum.p{step}": {"kind": "valohai.datum", "spec": {"url": f"s3://b/p{step}"},
                                              "started_at": 1.5, "sensitive_paths": []}}
    if step == 3:
        doc.resources.clear()  # every entry gone: an empty section
    doc.outputs = {"count": {"value": len(doc.resources), "sensitive": False}}


@pytest.mark.parametrize("env", [{}, {crypto.ENV: "k" * 32}], ids=["clear", "sealed"])
def test_each_write_is_the_whole_encoding_and_reads_back_equal(tmp_path, env):
    path = tmp_path / "state.json"
    store = LocalStateStore(path, env=env)
    doc = StateDoc(resources={f"valohai.datum.f{i:05}": datum(i) for i in range(300)})
    doc.resources["valdi.volume.v"] = ResourceState(kind="valdi.volume", id="v", secrets={"key": "s3cr3t-value"})
    for step in range(6):
        store.write(doc)
        written = path.read_bytes()
        if not env:  # sealed secrets differ on every encryption: compared by what they decrypt to
            assert written == whole(doc)
        again = LocalStateStore(path, env=env).read()
        assert again.to_dict() == doc.to_dict()
        edited(doc, step)


def test_the_state_file_is_private(tmp_path):
    path = tmp_path / "state.json"
    store = LocalStateStore(path, env={})
    doc = StateDoc(resources={"valohai.datum.a": datum(1)})
    store.write(doc)
    doc.resources["valohai.datum.b"] = datum(2)
    store.write(doc)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".state.json-")]  # no temporary left


def test_an_entry_edited_in_place_by_hand_is_not_copied_from_the_old_bytes(tmp_path):
    """Someone rewrites the file in place (same inode, serial kept): the next write encodes
    every entry again instead of copying bytes that are no longer what this store wrote."""
    path = tmp_path / "state.json"
    store = LocalStateStore(path, env={})
    doc = StateDoc(resources={f"valohai.datum.f{i}": datum(i) for i in range(5)})
    store.write(doc)
    text = path.read_text()
    with open(path, "r+") as f:  # same length, other bytes
        f.write(text.replace('"d-3"', '"x-3"'))
    doc.resources["valohai.datum.f0"] = datum(0, version=9)
    store.write(doc)
    assert path.read_bytes() == whole(doc)


def test_a_state_replaced_by_another_writer_is_refused_and_left_as_it_is(tmp_path):
    path = tmp_path / "state.json"
    mine = LocalStateStore(path, env={})
    doc = StateDoc(resources={"valohai.datum.a": datum(1)})
    mine.write(doc)
    theirs = LocalStateStore(path, env={})
    other = theirs.read()
    other.resources["valohai.datum.b"] = datum(2)
    theirs.write(other)
    before = path.read_bytes()
    doc.resources["valohai.datum.c"] = datum(3)
    with pytest.raises(StaleStateError):
        mine.write(doc)
    assert path.read_bytes() == before


def test_a_write_that_fails_midway_leaves_the_last_file_and_the_next_write_whole(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    store = LocalStateStore(path, env={})
    doc = StateDoc(resources={f"valohai.datum.f{i}": datum(i) for i in range(50)})
    store.write(doc)
    before = path.read_bytes()
    real = json.dumps

    def failing(value, *a, **k):
        if isinstance(value, dict) and value.get("id") == "d-1000":
            raise OSError(28, "No space left on device")
        return real(value, *a, **k)

    doc.resources["valohai.datum.g"] = datum(1000)
    monkeypatch.setattr(json, "dumps", failing)
    with pytest.raises(OSError):
        store.write(doc)
    monkeypatch.setattr(json, "dumps", real)
    assert path.read_bytes() == before and doc.serial == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".state.json-")]
    store.write(doc)
    assert path.read_bytes() == whole(doc)


def test_unchanged_entries_are_copied_not_kept_in_memory(tmp_path):
    """The store keeps where each entry is in its last file, not the entry's text."""
    path = tmp_path / "state.json"
    store = LocalStateStore(path, env={})
    doc = StateDoc(resources={f"valohai.datum.f{i:05}": datum(i) for i in range(100)})
    store.write(doc)
    spans = store._last.spans["resources"]
    assert all(isinstance(offset, int) and isinstance(length, int) for _, offset, length in spans.values())
    raw = path.read_bytes()
    entry, offset, length = spans["valohai.datum.f00042"]
    assert entry is doc.resources["valohai.datum.f00042"]
    assert raw[offset:offset + length].startswith(b'    "valohai.datum.f00042": {')
    doc.resources = {**doc.resources, "valohai.datum.f00042": datum(42, version=5)}
    store.write(doc)
    assert path.read_bytes() == whole(doc)
    assert os.fstat(store._last.fd).st_ino == path.stat().st_ino
