"""What a reviewer relies on, through the CLI with the in-memory kind: drift is the live
services moving (not manifest edits), refresh-only plan and apply, targeting that says
the plan is partial, `show --split`, and the refusals (typos, --target X --exclude X,
destroy --replace)."""
from __future__ import annotations

import json
import textwrap

import jsonschema
import pytest
from click.testing import CliRunner
from memkind import MemoryApi, MemoryProvider

from reconciler.cli import common, main
from reconciler.config.validation import load_schema

TWO = """
resources:
  - kind: test.item
    name: base
    spec: {name: base, value: 1, tags: [a, b, c]}
  - kind: test.item
    name: other
    spec: {name: other, value: 2}
"""
FORMATS = ("text", "json", "markdown")


@pytest.fixture
def api(monkeypatch):
    api = MemoryApi()
    monkeypatch.setattr(common, "providers", lambda: {"test": MemoryProvider(api)})
    return api


@pytest.fixture
def project(tmp_path):
    (tmp_path / "main.yaml").write_text(textwrap.dedent(TWO))
    return tmp_path


def run(*args):
    result = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return result.exit_code, result.output


def edit_live(api: MemoryApi, name: str, **values) -> None:
    """Someone changes the object in the service's console."""
    for attrs in api.objects.values():
        if attrs["name"] == name:
            attrs.update(values)


def test_manifest_edit_is_pending_change_not_drift(api, project):
    assert run("apply", str(project), "--auto-approve")[0] == 0
    (project / "main.yaml").write_text(textwrap.dedent(TWO).replace("value: 1", "value: 9"))
    for fmt in FORMATS:
        code, out = run("drift", str(project), "--format", fmt)
        assert code == 0, out
    assert "No drift" in run("drift", str(project))[1]
    assert run("plan", str(project), "--detailed-exitcode")[0] == 2  # the edit is a pending change


def test_outside_change_is_drift_in_every_format_and_refresh_only_apply_records_it(api, project):
    assert run("apply", str(project), "--auto-approve")[0] == 0
    edit_live(api, "base", value=5)
    api.objects.pop(next(i for i, o in api.objects.items() if o["name"] == "other"))
    code, text = run("drift", str(project))
    assert code == 2
    assert "test.item.base [id=" in text and "~ value: 1 -> 5" in text
    assert "test.item.other [id=" in text and "deleted outside reconciler" in text
    code, doc = run("drift", str(project), "--format", "json")
    jsonschema.validate(json.loads(doc), load_schema("plan.schema.json"))
    drift = {d["address"]: d for d in json.loads(doc)["drift"]}
    assert drift["test.item.base"]["changes"][0] | {} == {"path": "value", "before": 1, "after": 5,
                                                          "forces_replacement": False, "sensitive": False,
                                                          "items": []}
    assert drift["test.item.other"]["gone"] is True
    code, md = run("drift", str(project), "--format", "markdown")
    assert code == 2 and "changed outside reconciler" in md and "deleted outside reconciler" in md
    # plan --refresh-only shows the same and proposes nothing
    code, out = run("plan", str(project), "--refresh-only", "--detailed-exitcode")
    assert code == 2 and "~ value: 1 -> 5" in out and "Plan:" not in out
    # apply --refresh-only records the live values; nothing in the service changes
    calls = len(api.calls)
    code, out = run("apply", str(project), "--refresh-only", "--auto-approve")
    assert code == 0 and "Recorded the live values of 2 resources" in out
    assert [c for c in api.calls[calls:] if c[0] != "observe"] == []
    assert run("drift", str(project))[0] == 0
    # the manifest still says value 1: that is now a pending change, and other is created again
    code, out = run("plan", str(project), "--detailed-exitcode")
    assert code == 2 and "5 -> 1" in out and "test.item.other will be created" in out


def test_target_says_the_plan_is_partial_in_every_format(api, project):
    code, out = run("plan", str(project), "--target", "test.item.base")
    assert code == 0 and "This plan is partial (--target test.item.base)" in out and "test.item.other" in out
    doc = json.loads(run("plan", str(project), "--exclude", "test.item.other", "--format", "json")[1])
    assert doc["partial"] == {"targets": [], "excludes": ["test.item.other"], "left_out": ["test.item.other"]}
    md = run("plan", str(project), "--exclude", "test.item.other", "--format", "markdown")[1]
    assert "This plan is partial" in md


@pytest.mark.parametrize("args, message", [
    (("--target", "test.item.bsae"), "did you mean test.item.base?"),
    (("--exclude", "test.item.othre"), "did you mean test.item.other?"),
    (("--target", "test.item.base", "--exclude", "test.item.base"), "both a --target and an --exclude"),
])
def test_targeting_mistakes_are_errors(api, project, args, message):
    code, out = run("plan", str(project), *args)
    assert code == 1 and message in out
    assert not [c for c in api.calls if c[0] != "observe"]


def test_destroy_replace_is_refused(api, project):
    run("apply", str(project), "--auto-approve")
    code, out = run("destroy", str(project), "--replace", "test.item.base", "--auto-approve")
    assert code == 1 and "destroy --replace" in out
    assert not [c for c in api.calls if c[0] == "delete"]


def test_one_tag_added_shows_as_one_item(api, project):
    run("apply", str(project), "--auto-approve")
    (project / "main.yaml").write_text(textwrap.dedent(TWO).replace("[a, b, c]", "[c, a, b, d]"))
    code, out = run("plan", str(project))
    assert '~ tags: 1 added\n          + "d"' in out


def test_show_split_writes_pages_that_together_name_every_resource(api, tmp_path):
    body = "resources:\n" + "".join(
        f"  - {{kind: test.item, name: r{i}, spec: {{name: r{i}, value: {i}, note: '{'x' * 300}'}}}}\n"
        for i in range(400))
    (tmp_path / "main.yaml").write_text(body)
    plan = tmp_path / "plan.bin"
    assert run("plan", str(tmp_path), "-o", str(plan))[0] == 0
    out_dir = tmp_path / "pages"
    code, out = run("show", str(plan), "--format", "markdown", "--split", str(out_dir))
    assert code == 0, out
    pages = sorted(out_dir.glob("*.md"))
    assert [p.name for p in pages[:2]] == ["001.md", "002.md"]
    texts = [p.read_text() for p in pages]
    assert all(len(t) <= 65536 for t in texts)
    assert "Plan: 400 to add" in texts[0] and not any("Plan:" in t for t in texts[1:])
    joined = "".join(texts)
    assert all(f"<code>test.item.r{i}</code>" in joined for i in range(400))
    assert run("show", str(plan), "--split", str(out_dir))[0] != 0  # markdown only


def test_show_split_never_removes_what_it_did_not_write(api, project, tmp_path):
    plan = tmp_path / "plan.bin"
    assert run("plan", str(project), "-o", str(plan))[0] == 0
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("001.md", "002.md", "100.md"):
        (docs / name).write_text(f"the user's {name}")
    code, out = run("show", str(plan), "--format", "markdown", "--split", str(docs))
    assert code == 1 and len(out.strip().splitlines()) == 1 and f"--split {docs}" in out, out
    assert {p.name: p.read_text() for p in docs.iterdir()} == {n: f"the user's {n}" for n in ("001.md", "002.md", "100.md")}
    odd = tmp_path / "odd"
    (odd / "001.md").mkdir(parents=True)  # a directory named like a page
    code, out = run("show", str(plan), "--format", "markdown", "--split", str(odd))
    assert code == 1 and len(out.strip().splitlines()) == 1 and "internal error" not in out, out
    assert (odd / "001.md").is_dir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, out = run("show", str(plan), "--format", "markdown", "--split", str(a_file))
    assert code == 1 and "not a folder" in out and a_file.read_text() == "x", out
    # its own earlier pages are replaced: a second run into the same folder works
    pages = tmp_path / "pages"
    for _ in range(2):
        code, out = run("show", str(plan), "--format", "markdown", "--split", str(pages))
        assert code == 0, out
    assert sorted(p.name for p in pages.glob("*.md")) == ["001.md"]


def test_a_saved_refresh_only_plan_applies_as_a_record(api, project, tmp_path):
    run("apply", str(project), "--auto-approve")
    edit_live(api, "other", value=3)
    saved = tmp_path / "refresh.bin"
    code, out = run("plan", str(project), "--refresh-only", "-o", str(saved))
    assert code == 0 and "value: 2 -> 3" in out
    assert "value: 2 -> 3" in run("show", str(saved))[1]
    code, out = run("apply", str(saved))
    assert code == 0 and "Recorded the live values of 1 resource" in out
    assert run("drift", str(project))[0] == 0


def test_targeted_drift_checks_only_the_target_and_says_so(api, project):
    run("apply", str(project), "--auto-approve")
    edit_live(api, "other", value=3)
    code, out = run("plan", str(project), "--refresh-only", "--target", "test.item.base", "--detailed-exitcode")
    assert code == 0 and "This plan is partial" in out and "test.item.other" in out
    assert run("plan", str(project), "--refresh-only", "--target", "test.item.bsae")[0] == 1


def test_drift_of_a_secret_is_masked_and_never_recorded_as_the_mask(api, project, tmp_path):
    (project / "main.yaml").write_text(textwrap.dedent("""
        resources:
          - kind: test.item
            name: base
            spec: {name: base, secret: hunter2-applied, extra: {token: tok-applied}}
        """))
    run("apply", str(project), "--auto-approve")
    edit_live(api, "base", secret="hunter2-live", extra={"token": "tok-live"})
    for fmt in FORMATS:
        code, out = run("drift", str(project), "--format", fmt)
        assert code == 2 and "hunter2" not in out and "tok-" not in out, out
    assert run("apply", str(project), "--refresh-only", "--auto-approve")[0] == 0
    state = json.loads((project / ".reconciler" / "state.json").read_text())
    assert "(sensitive)" not in json.dumps(state)
