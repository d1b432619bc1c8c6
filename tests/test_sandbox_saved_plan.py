"""The GitOps flow in the sandbox: `--sandbox plan . -o plan.bin`, then `--sandbox apply
plan.bin`, as a user tries it before any account; and the saved-plan papercuts: a comment
is no change, a second apply says the plan was applied, a plan applied from another
folder finds its manifests."""
from __future__ import annotations

import json

import pytest
from conftest import cli
from crash_harness import copy_example


@pytest.fixture
def folder(tmp_path, monkeypatch):
    d = tmp_path / "infra"
    d.mkdir()
    copy_example("valohai.yaml", d)
    for name in ("VALOHAI_TOKEN", "VALOHAI_HOST", "VALOHAI_PROJECT", "RECONCILER_STATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(d)
    return d


def test_a_plan_saved_in_the_sandbox_applies_in_the_sandbox(folder):
    code, out = cli("--sandbox", "plan", ".", "-o", "plan.bin")
    assert code == 0, out
    assert "reconciler --sandbox apply plan.bin" in out  # the hint repeats --sandbox
    code, out = cli("--sandbox", "apply", "plan.bin")
    assert code == 0, out
    assert "Apply complete!" in out
    code, out = cli("--sandbox", "plan", ".", "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out


def test_a_second_apply_of_the_same_plan_says_it_was_applied(folder):
    assert cli("--sandbox", "plan", ".", "-o", "plan.bin")[0] == 0
    assert cli("--sandbox", "apply", "plan.bin")[0] == 0
    code, out = cli("--sandbox", "apply", "plan.bin")
    assert code == 1
    assert "this plan was already applied" in out
    assert "lineage" not in out and out.count("\n  - ") == 0, out  # one reason, not the list


def test_a_comment_elsewhere_leaves_the_plan_valid_and_a_real_edit_names_the_file(folder):
    (folder / "other.yaml").write_text("variables:\n  team: vision\n")
    assert cli("--sandbox", "plan", ".", "-o", "plan.bin")[0] == 0
    with (folder / "other.yaml").open("a") as f:
        f.write("# who owns this: the vision team\n")
    (folder / "other.yaml").write_text("variables:   {team: vision}   # reflowed\n")
    code, out = cli("--sandbox", "apply", "plan.bin")
    assert code == 0, out
    (folder / "other.yaml").write_text("variables:\n  team: audio\n")
    assert cli("--sandbox", "plan", ".", "-o", "plan3.bin")[0] == 0
    (folder / "other.yaml").write_text("variables:\n  team: vision\n  region: eu\n")
    code, out = cli("--sandbox", "apply", "plan3.bin")
    assert code == 1 and "other.yaml changed" in out, out


def test_a_plan_applied_from_another_folder_uses_the_folder_it_was_made_in(folder, tmp_path, monkeypatch):
    assert cli("--sandbox", "plan", ".", "-o", "plan.bin")[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out = cli("--sandbox", "apply", str(folder / "plan.bin"))
    assert code == 0, out
    assert "Using the manifests the plan was made from" in out and str(folder) in out
    assert not (elsewhere / ".reconciler").exists()  # the sandbox and state of the plan's folder
    state = json.loads((folder / ".reconciler" / "sandbox" / "state.json").read_text())
    assert "valohai.datum.train-set" in state["resources"]
