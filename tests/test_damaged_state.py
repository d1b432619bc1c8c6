"""A hand-edited or damaged state file: one line naming the file and the field, exit 1,
before any API call. The sandbox's emulator.db is private like the state."""
from __future__ import annotations

import json
import stat

import pytest
from conftest import cli
from crash_harness import copy_example


@pytest.fixture
def applied(tmp_path, sandbox_env):
    d = tmp_path / "m"
    d.mkdir()
    copy_example("valohai.yaml", d)
    state = tmp_path / "state.json"
    code, out = cli("--state", str(state), "apply", str(d), "--auto-approve")
    assert code == 0, out
    return d, state


def _entry(doc):
    return next(iter(doc["resources"].values()))


@pytest.mark.parametrize("damage, field", [
    (lambda d: d.pop("lineage"), "lineage"),
    (lambda d: d.update(lineage=""), "lineage"),
    (lambda d: d.update(version=99), "version"),
    (lambda d: d.update(serial="7"), "serial"),
    (lambda d: d.update(resources=[]), "resources"),
    (lambda d: _entry(d).update(last_applied=["not", "a", "mapping"]), ".last_applied"),
    (lambda d: _entry(d).update(outputs="oops"), ".outputs"),
    (lambda d: _entry(d).update(secrets=3), ".secrets"),
    (lambda d: _entry(d).update(protected="yes"), ".protected"),
    (lambda d: _entry(d).pop("id"), ".id"),
    (lambda d: _entry(d).update(depends_on=[1]), ".depends_on"),
    (lambda d: d.update(pending={"valohai.datum.x": {"kind": "valohai.datum", "spec": "nope"}}), ".spec"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_damaged_state_is_one_line_naming_file_and_field_before_any_call(applied, admin, damage, field):
    d, state = applied
    doc = json.loads(state.read_text())
    damage(doc)
    state.write_text(json.dumps(doc))
    admin.delete("/_emulator/requests")
    for command in (["plan", str(d)], ["apply", str(d), "--auto-approve"]):
        code, out = cli("--state", str(state), *command)
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert code == 1 and len(lines) == 1, out
        assert str(state) in lines[0] and field in lines[0] and "internal error" not in out, out
    assert sum(admin.get("/_emulator/requests").json()["counts"].values()) == 0  # not one call


def test_the_sandbox_database_is_private(tmp_path):
    from reconciler.emulator.store import Store
    store = Store(tmp_path / "sandbox" / "emulator.db")
    assert stat.S_IMODE((tmp_path / "sandbox" / "emulator.db").stat().st_mode) == 0o600
    del store
