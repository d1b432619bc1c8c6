"""The CLI end to end with the in-memory test kind: plan -> apply -> plan, exit codes,
protection, validation errors, state commands, locks."""
from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner
from memkind import MemoryApi, MemoryProvider

from reconciler.cli import common, main


@pytest.fixture
def api(monkeypatch):
    api = MemoryApi()
    monkeypatch.setattr(common, "providers", lambda names=None: {"test": MemoryProvider(api)})
    return api


@pytest.fixture
def project(tmp_path):
    def write(body: str, name: str = "main.yaml"):
        (tmp_path / name).write_text(textwrap.dedent(body))
        return tmp_path
    return write


def run(*args, input=None):
    result = CliRunner().invoke(main, ["--no-color", *args], input=input, catch_exceptions=False)
    return result.exit_code, result.output


TWO = """
resources:
  - kind: test.item
    name: base
    spec: {name: base, value: 1, size: 2}
  - kind: test.item
    name: user
    spec: {name: user, value: "${test.item.base.id}"}
"""


def test_plan_apply_plan_round_trip(api, project):
    d = project(TWO)
    code, out = run("plan", str(d), "--detailed-exitcode")
    assert code == 2 and "Plan: 2 to add, 0 to change, 0 to destroy." in out
    assert "(known after apply)" in out
    code, out = run("apply", str(d), "--auto-approve")
    assert code == 0, out
    assert [c[1] for c in api.calls if c[0] == "create"] == ["base", "user"]
    code, out = run("plan", str(d), "--detailed-exitcode")
    assert code == 0 and "No changes" in out


def test_editing_one_field_shows_just_that_field(api, project):
    d = project(TWO)
    run("apply", str(d), "--auto-approve")
    project(TWO.replace("value: 1,", "value: 7,"))
    code, out = run("plan", str(d), "--detailed-exitcode")
    assert code == 2
    assert "value" in out and "1 -> 7" in out
    assert "size" not in out
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in out


def test_removing_a_resource_destroys_it_and_destroy_goes_in_reverse(api, project):
    d = project(TWO)
    run("apply", str(d), "--auto-approve")
    project(TWO.split("  - kind: test.item\n    name: user")[0])
    code, out = run("apply", str(d), "--auto-approve")
    assert code == 0 and ("delete", "user") in api.calls
    project(TWO)
    run("apply", str(d), "--auto-approve")
    api.calls.clear()
    code, out = run("destroy", str(d), "--auto-approve")
    assert code == 0, out
    assert [c[1] for c in api.calls if c[0] == "delete"] == ["user", "base"]
    assert api.objects == {}


def test_prevent_destroy_blocks_with_a_clear_error(api, project):
    d = project(TWO.replace("spec: {name: base, value: 1, size: 2}",
                            "spec: {name: base, value: 1, size: 2}\n    lifecycle: {prevent_destroy: true}"))
    assert run("apply", str(d), "--auto-approve")[0] == 0
    code, out = run("destroy", str(d), "--auto-approve")
    assert code == 1 and "protected by prevent_destroy" in out
    assert len(api.objects) == 2


def test_apply_without_terminal_or_flag_refuses(api, project):
    d = project(TWO)
    code, out = run("apply", str(d))
    assert code == 1 and "--auto-approve" in out
    assert not [c for c in api.calls if c[0] == "create"]


@pytest.mark.parametrize("body, fragment", [
    ("resources:\n  - kind: test.nope\n    name: a\n    spec: {}\n", "test.nope"),
    ("resources:\n  - kind: test.item\n    name: a\n    spec: {name: a}\n"
     "  - kind: test.item\n    name: a\n    spec: {name: a}\n", "test.item.a"),
    ("resources:\n  - kind: test.item\n    name: a\n    spec: {value: '${test.item.ghost.id}'}\n", "ghost"),
    ("resources:\n  - kind: test.item\n    name: a\n    spec: {value: '${test.item.b.nope}'}\n"
     "  - kind: test.item\n    name: b\n    spec: {}\n", "nope"),
    ("resources:\n  - kind: test.item\n    name: a\n    spec: {value: '${test.item.b.id}'}\n"
     "  - kind: test.item\n    name: b\n    spec: {value: '${test.item.a.id}'}\n", "cycle"),
    ("resources:\n  - kind: test.item\n    name: a\n    spec: {value: '${env.RECONCILER_TEST_UNSET_VAR}'}\n",
     "RECONCILER_TEST_UNSET_VAR"),
], ids=["unknown-kind", "duplicate-address", "missing-reference", "missing-attribute", "cycle", "missing-env"])
def test_validate_reports_file_line_and_makes_no_api_call(api, project, body, fragment):
    d = project(body)
    for command in ("validate", "plan"):
        code, out = run(command, str(d))
        assert code == 1, out
        assert fragment in out
        assert "main.yaml:" in out and "Traceback" not in out
    assert api.calls == []


def test_state_list_show_rm(api, project):
    d = project(TWO)
    run("apply", str(d), "--auto-approve")
    code, out = run("state", "list", str(d))
    assert code == 0 and "test.item.base" in out and "test.item.user" in out
    code, out = run("state", "show", "test.item.base", str(d))
    shown = json.loads(out)
    assert shown["secrets"] == {"token": "(sensitive)"} and "tok-" not in out
    code, out = run("state", "rm", "test.item.user", str(d))
    assert code == 0
    assert len(api.objects) == 2  # not touched
    code, out = run("plan", str(d), "--detailed-exitcode")
    assert code == 2 and "1 to add" in out


def test_second_apply_fails_at_once_naming_the_lock_holder(api, project):
    from reconciler.state.local import LocalStateStore

    d = project(TWO)
    store = LocalStateStore(d / ".reconciler" / "state.json")
    with store.lock("apply"):
        code, out = run("apply", str(d), "--auto-approve")
    assert code == 1 and "locked" in out and "pid" in out


def test_unprotecting_a_create_that_did_not_finish_is_one_line(api, project):
    d = project(TWO)
    run("apply", str(d), "--auto-approve")
    state_file = d / ".reconciler" / "state.json"
    doc = json.loads(state_file.read_text())
    doc["pending"]["test.item.extra"] = {"kind": "test.item", "spec": {"name": "extra"}, "started_at": 0}
    state_file.write_text(json.dumps(doc))
    code, out = run("state", "unprotect", "test.item.extra", str(d))
    assert code == 1 and "internal error" not in out
    assert "did not finish" in out and len([ln for ln in out.splitlines() if ln.strip()]) == 1, out
    assert run("state", "unprotect", "test.item.base", str(d))[0] == 0
